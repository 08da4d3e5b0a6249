import json

import pytest

from rnnkit.runtime import (
    CharTokenizer,
    FormatVersionError,
    MetadataError,
    ModelSpec,
    Vocabulary,
    WordTokenizer,
)
from rnnkit.runtime.contract import FORMAT_VERSION, KEYS, MAX_VALUE_BYTES, OPTIONAL, SCHEMAS


def make_spec(**overrides):
    fields = dict(
        task="classify", cell="gru", layers=2, hidden=16, embed=8,
        tokenizer=CharTokenizer().to_config(),
        vocab=Vocabulary.build([list("好书不错差")]),
        labels=("neg", "pos"),
        provenance={"rnnkit": "0.1.0", "created": "2026-01-01T00:00:00Z", "torch": "2.13.0"},
        metrics={"valid": {"accuracy": 0.9}},
    )
    fields.update(overrides)
    return ModelSpec(**fields)


@pytest.mark.parametrize("spec", [
    make_spec(),
    make_spec(task="lm", labels=(), cell="lstm"),
    make_spec(task="tag", labels=("B", "E", "M", "S"), tag_scheme="bmes", cell="rnn", layers=1, lookahead=2),
    make_spec(tokenizer=WordTokenizer(hmm=False).to_config(),
              quantization={"mode": "int8", "quantized_ops": {"LSTM": 1}}),
], ids=["classify", "lm", "tag-bmes", "word-int8"])
def test_write_then_read_round_trip(spec):
    props = spec.to_metadata()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in props.items())
    assert all(k.startswith("rnnkit.") for k in props)
    assert ModelSpec.from_metadata(props) == spec


def test_every_key_has_a_schema_and_is_written():
    assert set(make_spec().to_metadata()) == set(SCHEMAS) - set(OPTIONAL)


def test_tokens_may_be_any_character():
    vocab = Vocabulary.build([["|", ",", '"', "\n", "\\", "😀", " "]])
    spec = make_spec(vocab=vocab, task="lm", labels=())
    assert ModelSpec.from_metadata(spec.to_metadata()).vocab == vocab


def _props(**changes):
    props = make_spec().to_metadata()
    for key, value in changes.items():
        key = "rnnkit." + key
        if value is None:
            del props[key]
        else:
            props[key] = value
    return props


@pytest.mark.parametrize("changes, error, key, match", [
    ({"task": None}, MetadataError, KEYS.TASK, "missing"),
    ({"format": str(FORMAT_VERSION + 1)}, FormatVersionError, KEYS.FORMAT, "newer"),
    ({"format": "0"}, FormatVersionError, KEYS.FORMAT, "unknown model format"),
    ({"format": "one"}, MetadataError, KEYS.FORMAT, "integer"),
    ({"task": "translate"}, MetadataError, KEYS.TASK, "not one of"),
    ({"layers": "0"}, MetadataError, KEYS.LAYERS, "does not match"),
    ({"hidden": "16.5"}, MetadataError, KEYS.HIDDEN, "does not match"),
    ({"vocab": "[1, 2"}, MetadataError, KEYS.VOCAB, "not valid JSON"),
    ({"vocab": json.dumps(["<pad>", "<unk>", "<bos>", "<eos>", 5])}, MetadataError, KEYS.VOCAB, "expected string"),
    ({"labels": '"pos"'}, MetadataError, KEYS.LABELS, "expected array"),
    ({"labels": '["pos", "pos"]'}, MetadataError, KEYS.LABELS, "not unique"),
    ({"labels": '["pos"]'}, MetadataError, KEYS.LABELS, "at least 2"),
    ({"specials": '{"pad": 1, "unk": 0, "bos": 2, "eos": 3}'}, MetadataError, KEYS.SPECIALS, "not one of"),
    ({"tokenizer": '{"kind": "char"}'}, MetadataError, KEYS.TOKENIZER, "missing required"),
    ({"vocab_sha256": "0" * 64}, MetadataError, KEYS.VOCAB_SHA256, "checksum"),
    ({"tag_scheme": "bmes"}, MetadataError, KEYS.TAG_SCHEME, "does not fit"),
    ({"lookahead": "2"}, MetadataError, KEYS.LOOKAHEAD, "lookahead must be 0"),
    ({"lookahead": "17"}, MetadataError, KEYS.LOOKAHEAD, "does not match"),
    ({"lookahead": None}, MetadataError, KEYS.LOOKAHEAD, "missing"),
    ({"quantization": "[]"}, MetadataError, KEYS.QUANTIZATION, "expected object"),
    ({"provenance": "{}"}, MetadataError, KEYS.PROVENANCE, "missing required"),
    ({"metrics": "x" * (MAX_VALUE_BYTES + 1)}, MetadataError, KEYS.METRICS, "larger than"),
])
def test_malformed_metadata_names_the_key(changes, error, key, match):
    with pytest.raises(error, match=match) as info:
        ModelSpec.from_metadata(_props(**changes))
    assert info.value.key == key


def test_file_without_rnnkit_metadata():
    with pytest.raises(MetadataError, match="no rnnkit metadata"):
        ModelSpec.from_metadata({"producer": "someone"})


def test_inconsistent_graph_is_refused():
    spec = make_spec()
    spec.check_graph(n_out=2, layers=2, hidden=16, vocab_rows=len(spec.vocab))
    with pytest.raises(MetadataError, match="label count is 2") as info:
        spec.check_graph(n_out=3, layers=2, hidden=16)
    assert info.value.key == KEYS.LABELS
    with pytest.raises(MetadataError, match="the embedding has 10 rows"):
        spec.check_graph(n_out=2, layers=2, hidden=16, vocab_rows=len(spec.vocab) + 1)
    lm = make_spec(task="lm", labels=())
    with pytest.raises(MetadataError, match="vocabulary size"):
        lm.check_graph(n_out=len(lm.vocab) - 1, layers=None, hidden=None)


def test_writer_validates_too():
    with pytest.raises(MetadataError, match="at least 2 labels"):
        make_spec(labels=("only",)).to_metadata()


def test_format_doc_states_every_schema_as_the_code_does():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    for key, schema in SCHEMAS.items():
        assert f"`{key}`\n```json\n{json.dumps(schema, ensure_ascii=False)}\n```" in doc, key
    assert f"(format {FORMAT_VERSION})" in doc


def test_unknown_extra_keys_are_ignored():
    props = {**make_spec().to_metadata(), "rnnkit.future_key": "x", "other": "y"}
    assert ModelSpec.from_metadata(props) == make_spec()


@pytest.mark.parametrize(("key", "value"), [("layers", "2\n"), ("lookahead", "0\n"), ("format", "1\n"),
                                            ("vocab_sha256", "0" * 64 + "\n"), ("unicode", "14.0.0\n")])
def test_a_pattern_is_matched_to_the_end_of_the_text_as_json_schema_does(key, value):
    """JSON Schema's (ECMA-262) ``$`` is the end of the text; Python's also matches before a final newline."""
    props = {**make_spec().to_metadata(), "rnnkit." + key: value}
    with pytest.raises(MetadataError):
        ModelSpec.from_metadata(props)


def test_the_unicode_version_is_optional_and_round_trips():
    spec = make_spec(unicode="14.0.0")
    assert spec.to_metadata()[KEYS.UNICODE] == "14.0.0" and KEYS.UNICODE not in make_spec().to_metadata()
    assert ModelSpec.from_metadata(spec.to_metadata()) == spec
    assert ModelSpec.from_metadata(make_spec().to_metadata()).unicode is None
