"""Issue 6, untrusted files: checkpoints run no code, models read no data outside their folder,
metadata is capped, and the readers of untrusted bytes raise nothing but rnnkit's errors (fuzzed).
"""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import onnx  # noqa: E402
from factory import tiny_checkpoint, tiny_onnx  # noqa: E402
from onnx_edits import externalize  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import (  # noqa: E402
    CharTokenizer,
    CheckpointError,
    MetadataError,
    ModelFileError,
    ModelSpec,
    RnnkitWarning,
    StateError,
    Vocabulary,
    WordTokenizer,
    load_model,
    tokenizer_from_config,
)
from rnnkit.runtime.contract import KEYS, MAX_DEPTH, MAX_LABELS, MAX_VALUE_BYTES, MAX_VOCAB  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.train.config import TrainConfig  # noqa: E402
from rnnkit.train.trainer import train  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- checkpoints run no code ---------------------------------------------------------------------
def evil_checkpoint(path, marker):
    """A torch file that creates the folder ``marker`` (os.mkdir) when unpickled by a trusting reader."""
    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    torch.save({"rnnkit_checkpoint": 1, "task": "lm", "model": {"w": Payload()}}, path)
    return path


def test_the_payload_is_real_when_trusted(tmp_path):
    """The control: torch.load without weights_only runs the payload, so the tests below mean something."""
    marker = tmp_path / "pwned"
    torch.load(evil_checkpoint(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.is_dir()


def test_a_malicious_checkpoint_runs_nothing(tmp_path):
    """E45: load_checkpoint, export and --resume refuse the pickle and create no file."""
    marker = tmp_path / "pwned"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        export_onnx(evil, tmp_path / "m.onnx")
    run = tmp_path / "run"
    run.mkdir()
    evil_checkpoint(run / "last.pt", marker)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        train(TrainConfig(task="tag", data="builtin:hello", out=str(run), hidden=8, embed=4), resume=True)
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists()


# -- model files read nothing outside their folder -----------------------------------------------


def test_external_data_outside_the_folder_is_refused(tmp_path):
    """E23, E24: ``../x.bin`` and an absolute path are refused; the same data inside the folder loads."""
    src = tiny_onnx(tmp_path / "src", task="classify", cell="gru")
    inside, weights = externalize(src, tmp_path / "inside", "weights.bin")
    (tmp_path / "inside" / "weights.bin").write_bytes(weights)
    (tmp_path / "secret.bin").write_bytes(weights)
    ok = load_model(inside)
    assert ok.classify("好").scores == pytest.approx(load_model(src).classify("好").scores, abs=1e-6)
    for name, location in (("up", "../secret.bin"), ("absolute", str(tmp_path / "secret.bin")),
                           ("deep", "sub/../../secret.bin")):
        path, _ = externalize(src, tmp_path / name, location)
        with pytest.raises(ModelFileError, match="refers to weight data outside its folder; refused") as info:
            load_model(path)
        assert str(path) in str(info.value)


# -- graphs that do not fit their metadata ---------------------------------------------------------
def test_outputs_in_another_order_are_refused(tmp_path):
    """session.run returns outputs in graph order: a graph listing hn before logits must not load."""
    src = tiny_onnx(tmp_path, task="lm", cell="gru")
    model = onnx.load(str(src))
    outputs = list(model.graph.output)
    del model.graph.output[:]
    model.graph.output.extend(reversed(outputs))
    onnx.save(model, str(tmp_path / "swapped.onnx"))
    with pytest.raises(MetadataError, match="inconsistent model"):
        load_model(tmp_path / "swapped.onnx")


# -- metadata caps -------------------------------------------------------------------------------
def valid_props() -> dict[str, str]:
    return ModelSpec(task="classify", cell="gru", layers=1, hidden=8, embed=4, tokenizer=CharTokenizer().to_config(),
                     vocab=Vocabulary.build([list("好书不错差")]), labels=("neg", "pos"),
                     provenance={"rnnkit": "0", "created": "2026"}).to_metadata()


def test_an_oversized_value_is_refused_before_it_is_parsed_or_copied():
    """E16: 32 MiB + 1 byte of metrics: MetadataError naming the key, with no allocation of that size."""
    props = {**valid_props(), KEYS.METRICS: "x" * (MAX_VALUE_BYTES + 1)}
    tracemalloc.start()
    try:
        with pytest.raises(MetadataError, match="larger than") as info:
            ModelSpec.from_metadata(props)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.key == KEYS.METRICS
    assert peak < 1_000_000, f"refusing a {MAX_VALUE_BYTES}-byte value allocated {peak} bytes"
    wide = "好" * (MAX_VALUE_BYTES // 3 + 1)  # fewer characters than the cap, more UTF-8 bytes
    with pytest.raises(MetadataError, match="larger than") as info:
        ModelSpec.from_metadata({**valid_props(), KEYS.PROVENANCE: wide})
    assert info.value.key == KEYS.PROVENANCE


@pytest.mark.parametrize(("key", "value", "says"), [
    (KEYS.VOCAB, json.dumps(["a"] * (MAX_VOCAB + 1)), f"more than {MAX_VOCAB} items"),
    (KEYS.LABELS, json.dumps([str(i) for i in range(MAX_LABELS + 1)]), f"more than {MAX_LABELS} items"),
    (KEYS.LABELS, json.dumps(["neg", "p" * 513]), "longer than 512"),
    (KEYS.METRICS, '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", f"deeper than {MAX_DEPTH}"),
    (KEYS.QUANTIZATION, '{"mode": "none", "metric": ' + '{"a": ' * 40 + "1" + "}" * 41, f"deeper than {MAX_DEPTH}"),
    (KEYS.LAYERS, "99999", "implausibly large"),
    (KEYS.FORMAT, "²", "must be an integer"),
    (KEYS.FORMAT, "1\n", "must be an integer"),
])
def test_capped_metadata_names_the_key(key, value, says):
    with pytest.raises(MetadataError, match=says) as info:
        ModelSpec.from_metadata({**valid_props(), key: value})
    assert info.value.key == key


def test_values_at_the_caps_are_read():
    deep = '{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"  # the object is level 1
    value = ModelSpec.from_metadata({**valid_props(), KEYS.METRICS: deep}).metrics["a"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == []


# -- fuzzing the readers of untrusted input ------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)  # lone surrogates too
PROPS = valid_props()


@FUZZ
@given(key=st.sampled_from(sorted(PROPS)), value=st.one_of(any_text, json_values.map(json.dumps)))
def test_fuzz_one_metadata_value(key, value):
    try:
        spec = ModelSpec.from_metadata({**PROPS, key: value})
    except MetadataError as e:
        assert e.key is None or e.key.startswith("rnnkit.")
    else:
        assert spec.to_metadata()  # what was read is valid enough to write again


@FUZZ
@given(st.dictionaries(st.one_of(st.sampled_from(sorted(PROPS)), any_text), st.one_of(any_text, json_values),
                       max_size=20))
def test_fuzz_whole_metadata(props):
    try:
        spec = ModelSpec.from_metadata(props)
    except MetadataError as e:
        assert e.key is None or e.key.startswith("rnnkit.")
    else:
        assert spec.to_metadata()


@FUZZ
@given(st.one_of(st.integers(), st.lists(any_text), st.none(), st.binary()))
def test_fuzz_metadata_of_the_wrong_python_type(props):
    with pytest.raises(TypeError):
        ModelSpec.from_metadata(props)


@FUZZ
@given(st.one_of(any_text, json_values.map(json.dumps),
                 st.lists(any_text, max_size=8).map(lambda t: json.dumps(["<pad>", "<unk>", "<bos>", "<eos>", *t])),
                 st.integers(1, 3000).map(lambda n: "[" * n)))
def test_fuzz_vocabulary_json(text):
    try:
        vocab = Vocabulary.from_json(text)
    except MetadataError as e:
        assert e.key == "rnnkit.vocab"
    else:
        assert Vocabulary.from_json(vocab.to_json()) == vocab


@FUZZ
@given(st.one_of(st.binary(), st.integers(), st.none(), st.lists(st.text())))
def test_fuzz_vocabulary_json_of_the_wrong_python_type(value):
    with pytest.raises(TypeError):
        Vocabulary.from_json(value)


@FUZZ
@given(kind=st.sampled_from(["char", "word", "bpe", 3, None]),
       extra=st.dictionaries(st.sampled_from(["normalize", "lowercase", "keep_whitespace", "hmm", "mode",
                                              "jieba_version"]) | st.text(max_size=6), json_values, max_size=6))
def test_fuzz_tokenizer_config(kind, extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RnnkitWarning)  # another jieba_version: a warning, not an error
        try:
            tok = tokenizer_from_config({"kind": kind, **extra})
        except MetadataError as e:
            assert e.key == "rnnkit.tokenizer"
        else:
            assert tokenizer_from_config(tok.to_config()) == tok
            assert "".join(tok.tokenize("Ab 好")) != ""


TOKENIZERS = [CharTokenizer(), CharTokenizer(normalize=None, lowercase=True, keep_whitespace=False),
              WordTokenizer(), WordTokenizer(hmm=False, normalize="NFC", keep_whitespace=False)]


@FUZZ
@given(tok=st.sampled_from(TOKENIZERS), text=any_text)
def test_fuzz_tokenizers(tok, text):
    spans = tok.tokenize_spans(text)
    assert all(0 <= t.start < t.end <= len(text) for t in spans)
    assert 0 <= tok.split_point(text) <= len(text)
    vocab = Vocabulary.build([tok.tokenize("我爱北京 hello")])
    ids = tok.encode(text, vocab)
    assert all(0 <= i < len(vocab) for i in ids)
    tok.decode(ids, vocab)


@FUZZ
@given(tok=st.sampled_from(TOKENIZERS), value=st.one_of(st.binary(), st.integers(), st.none(), st.lists(st.text())))
def test_fuzz_tokenizers_with_the_wrong_python_type(tok, value):
    with pytest.raises(TypeError):
        tok.tokenize(value)


@pytest.fixture(scope="module")
def lm(models):
    return models(task="lm", cell="lstm", layers=2)


def snapshot_of(model) -> bytes:
    s = model.stream()
    s.feed("我爱北京")
    return s.snapshot()


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_snapshot_bytes(lm, data):
    with pytest.raises(StateError):
        lm.stream(data)


@FUZZ
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), insert=st.binary(min_size=1, max_size=8))
def test_fuzz_damaged_snapshots(lm, cut, flip, insert):
    """E40, E41: any truncation, bit flip or insertion of a real snapshot is refused."""
    good = snapshot_of(lm)
    cut, flip = cut % len(good), flip % len(good)
    damaged = [good[:cut], good[:flip] + bytes([good[flip] ^ 0x10]) + good[flip + 1 :],
               good[:cut] + insert + good[cut:]]
    for data in damaged:
        with pytest.raises(StateError, match="snapshot"):
            lm.stream(data)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["model", "states", "shape", "pending", "consumed", "logits", "x"]),
                              json_values, max_size=4))
def test_fuzz_snapshot_headers_with_a_valid_checksum(lm, fields):
    """A crafted snapshot (its checksum recomputed) is checked field by field: StateError or a sound stream."""
    import hashlib

    good = snapshot_of(lm)
    _, _, size = struct.unpack_from("<8sHI", good)
    header = {**json.loads(good[14 : 14 + size]), **fields}
    raw = json.dumps(header).encode()
    data = struct.pack("<8sHI", b"RNNKSNAP", 4, len(raw)) + raw + good[14 + size : -16]
    data += hashlib.sha256(data).digest()[:16]
    try:
        stream = lm.stream(data)
    except StateError:
        return
    assert isinstance(stream.pending, str) and stream.consumed >= 0
    assert stream.step(5).shape == (lm.n_out,)


def test_an_edited_snapshot_is_refused_and_the_original_still_restores(lm):
    """E41: one flipped bit in the state floats changes no check but the checksum."""
    good = snapshot_of(lm)
    i = len(good) - 100
    edited = good[:i] + bytes([good[i] ^ 0x01]) + good[i + 1 :]
    with pytest.raises(StateError, match="checksum"):
        lm.stream(edited)
    restored = lm.stream(good)
    original = lm.stream()
    original.feed("我爱北京")
    np.testing.assert_array_equal(restored.step(6), original.step(6))


# -- checkpoints with fields of the wrong type ---------------------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), task="tag", cell="lstm")


@pytest.mark.parametrize("change", [
    {"vocab": 5}, {"vocab": ["<pad>", "<unk>", "<bos>", "<eos>", 7]}, {"labels": "BEMS"}, {"labels": None},
    {"model_config": "gru"}, {"model_config": {"cell": "gru"}}, {"tokenizer": ["char"]}, {"tokenizer": {"kind": 3}},
    {"task": 1}, {"task": "translate"}, {"tag_scheme": "iob"}, {"metrics": []}, {"data": "x"}, {"split": 0},
    {"valid_sample": 3}, {"valid_sample": [["ab", ["B"]]]}, {"valid_sample": [[["a"], ["B", "E"]]]},
    {"model": [1]}, {"model": {"w": 1.0}}, {"rnnkit_checkpoint": True}, {"rnnkit_checkpoint": "1"},
    {"created": 5},
], ids=lambda change: "-".join(f"{k}={str(v)[:12]}" for k, v in change.items()))
def test_checkpoint_fields_of_the_wrong_type_are_checkpoint_errors(ckpt, tmp_path, change):
    """E47: a torch file that loads can still hold anything: export says what, in one line."""
    payload = torch.load(ckpt, weights_only=True)
    payload.update(change)
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError) as info:
        export_onnx(tmp_path / "edited.pt", tmp_path / "m.onnx")
    assert "\n" not in str(info.value) and "edited.pt" in str(info.value)
    assert not (tmp_path / "m.onnx").exists()


def test_a_checkpoint_claiming_a_huge_model_allocates_nothing(ckpt, tmp_path, monkeypatch):
    """The config is checked against the stored tensors' shapes before a real module is built."""
    from rnnkit.train import checkpoint

    payload = torch.load(ckpt, weights_only=True)
    payload["model_config"] = {**payload["model_config"], "hidden": 60_000, "layers": 50}  # ~1.4 TB of LSTM
    torch.save(payload, tmp_path / "huge.pt")
    built = []
    real = checkpoint.RNNModel

    def spy(config):
        built.append(str(torch.get_default_device()))
        return real(config)

    monkeypatch.setattr(checkpoint, "RNNModel", spy)
    with pytest.raises(CheckpointError, match="do not fit its model config"):
        export_onnx(tmp_path / "huge.pt", tmp_path / "m.onnx")
    assert built == ["meta"]
    export_onnx(ckpt, tmp_path / "ok.onnx")  # the spy is sound: a good checkpoint builds a real one too
    assert built == ["meta", "meta", "cpu"]
