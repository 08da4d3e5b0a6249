"""Issue 4, metadata: the exported file describes itself, and `rnnkit inspect` shows it."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.contract import KEYS, OPTIONAL, ModelSpec, format_for, rnnkit_version  # noqa: E402
from rnnkit.runtime.errors import CheckpointError, RnnkitError  # noqa: E402
from rnnkit.runtime.vocab import Vocabulary  # noqa: E402
from rnnkit.train.checkpoint import save_checkpoint  # noqa: E402

KINDS = {  # name → tiny_checkpoint arguments
    "lm-word-gru": {"task": "lm", "cell": "gru", "level": "word", "layers": 1},
    "classify-char-lstm": {"task": "classify", "cell": "lstm", "layers": 2, "labels": ("neg", "neu", "pos")},
    "tag-char-rnn": {"task": "tag", "cell": "rnn", "layers": 3},
    "pos-char-gru": {"task": "tag", "cell": "gru", "labels": ("N", "V", "X")},
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """name → (checkpoint dict, exported path), exported once."""
    out = {}
    for name, kwargs in KINDS.items():
        folder = tmp_path_factory.mktemp(name)
        ckpt = tiny_checkpoint(folder, hidden=10, embed=5, **kwargs)
        path = folder / "model.onnx"
        export_onnx(ckpt, path)
        out[name] = torch.load(ckpt, weights_only=True), path
    return out


def props_of(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.mark.parametrize("name", KINDS)
def test_metadata_round_trips_and_matches_the_checkpoint(exports, name):
    ckpt, path = exports[name]
    props = props_of(path)
    required = {v for k, v in vars(KEYS).items() if k.isupper()} - set(OPTIONAL)  # optional ones: absent = default
    assert {k for k in props if k.startswith("rnnkit.")} == required | {KEYS.UNICODE}  # optional, always written
    assert props[KEYS.UNICODE] == unicodedata.unidata_version
    spec = ModelSpec.from_metadata(props)
    mc = ckpt["model_config"]
    assert spec.format == format_for(spec.tokenizer) == 1  # a char or jieba model needs nothing of format 2
    assert (spec.task, spec.cell, spec.layers, spec.hidden, spec.embed) == (
        ckpt["task"], mc["cell"], mc["layers"], mc["hidden"], mc["embed"])
    assert spec.vocab.tokens == ckpt["vocab"]
    assert props[KEYS.VOCAB_SHA256] == Vocabulary(ckpt["vocab"]).checksum()
    assert list(spec.labels) == (ckpt["labels"] if ckpt["task"] != "lm" else [])
    assert spec.n_out == mc["n_out"]
    assert spec.tokenizer == ckpt["tokenizer"]
    assert spec.tag_scheme == ckpt["tag_scheme"]
    assert spec.quantization == {"mode": "none"}
    assert spec.metrics == ckpt["metrics"]
    p = spec.provenance
    assert (p["rnnkit"], p["torch"], p["onnx"]) == (rnnkit_version(), str(torch.__version__), onnx.__version__)
    created = dt.datetime.fromisoformat(p["created"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.timezone.utc) - created) < dt.timedelta(minutes=10)
    assert p["trained_with"] == {"rnnkit": ckpt["rnnkit"], "torch": ckpt["torch"], "created": ckpt["created"]}
    assert p["data"] == ckpt["data"]["source"]
    # the file is what the runtime sees: same spec through onnxruntime's metadata map
    loaded = load_model(path)
    assert loaded.metadata == spec
    assert loaded.n_out == mc["n_out"]


def test_word_tokenizer_records_the_jieba_version(exports):
    ckpt, path = exports["lm-word-gru"]
    tokenizer = json.loads(props_of(path)[KEYS.TOKENIZER])
    assert tokenizer["kind"] == "word"
    assert tokenizer["jieba_version"] == ckpt["tokenizer"]["jieba_version"]


def _edited(folder, edit, **kwargs):
    ckpt_path = tiny_checkpoint(folder, **kwargs)
    payload = torch.load(ckpt_path, weights_only=True)
    edit(payload)
    for key in ("rnnkit_checkpoint", "rnnkit", "torch", "created"):
        payload.pop(key)
    return save_checkpoint(payload, ckpt_path)


INCONSISTENT = {
    "labels ≠ head": (lambda p: p.update(labels=["neg", "neu", "pos"]), {"task": "classify"}, "label"),
    "one label": (lambda p: p.update(labels=["x"]), {"task": "classify", "labels": ("x", "y")}, "label"),
    "bmes without B/M/E/S": (lambda p: p.update(labels=["A", "B", "C", "D"]), {"task": "tag"}, "bmes"),
    "vocab ≠ embedding": (lambda p: p.update(vocab=p["vocab"][:-1]), {"task": "lm"}, "vocabulary"),
    "unknown task": (lambda p: p.update(task="summarize"), {"task": "classify"}, "summarize"),
    "duplicate labels": (lambda p: p.update(labels=["a", "a"]), {"task": "classify"}, "label"),
}


@pytest.mark.parametrize("case", INCONSISTENT)
def test_an_inconsistent_checkpoint_is_refused_and_nothing_is_written(tmp_path, case):
    edit, kwargs, words = INCONSISTENT[case]
    ckpt = _edited(tmp_path / "run", edit, **kwargs)
    out = tmp_path / "out" / "model.onnx"
    with pytest.raises(CheckpointError, match=words) as info:
        export_onnx(ckpt, out)
    message = str(info.value)
    assert "\n" not in message and "re-export" not in message
    assert isinstance(info.value, RnnkitError)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


# -- rnnkit inspect --------------------------------------------------------------------------------
def inspect(*args) -> str:
    result = CliRunner().invoke(cli, ["inspect", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_inspect_shows_what_the_file_is(exports):
    ckpt, path = exports["classify-char-lstm"]
    mc = ckpt["model_config"]
    lines = inspect(path).splitlines()
    text = "\n".join(lines)
    field = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in lines[1:] if ":" in line}
    assert field["task"] == "classify"
    assert field["architecture"] == (f"Embedding({mc['vocab_size']}, {mc['embed']}) → LSTM × {mc['layers']} "
                                     f"(hidden {mc['hidden']}) → Linear({mc['hidden']}, 3)")
    assert field["vocabulary"].startswith(f"{len(ckpt['vocab'])} tokens")
    assert field["labels"] == "neg, neu, pos"
    tok = ckpt["tokenizer"]
    assert field["tokenizer"] == (f"{tok['kind']}, normalize {tok['normalize'] or 'off'}, "
                                  f"{'lowercased' if tok['lowercase'] else 'case kept'}, "
                                  f"{'whitespace kept' if tok['keep_whitespace'] else 'whitespace dropped'}, "
                                  f"Unicode {unicodedata.unidata_version}")
    shown = [line for line in lines if line.startswith("metrics:") or line.startswith(" " * 15)]
    assert shown[0].startswith("metrics:       ") and "{" not in "".join(shown)
    assert field["quantization"] == "none"
    for part in (f"rnnkit {rnnkit_version()}", f"torch {torch.__version__}", f"onnx {onnx.__version__}", "created 20"):
        assert part in field["provenance"]
    io = [line.split() for line in lines if line.startswith(("input ", "output "))]
    assert [(row[0], row[1]) for row in io] == [("input", "tokens"), ("input", "h0"), ("input", "c0"),
                                               ("output", "logits"), ("output", "hn"), ("output", "cn")]
    assert "'batch', 'seq'" in text


@pytest.mark.parametrize("name", KINDS)
def test_inspect_json_has_the_right_values(exports, name):
    ckpt, path = exports[name]
    mc = ckpt["model_config"]
    info = json.loads(inspect(path, "--json"))
    assert (info["task"], info["cell"], info["layers"], info["hidden"], info["embed"]) == (
        ckpt["task"], mc["cell"], mc["layers"], mc["hidden"], mc["embed"])
    assert info["vocab_size"] == len(ckpt["vocab"]) == mc["vocab_size"]
    assert info["n_out"] == mc["n_out"]
    assert info["labels"] == (ckpt["labels"] if ckpt["task"] != "lm" else [])
    assert info["tokenizer"] == ckpt["tokenizer"]
    assert info["tag_scheme"] == ckpt["tag_scheme"]
    assert info["quantization"] == {"mode": "none"}
    assert info["provenance"]["rnnkit"] == rnnkit_version()
    assert info["format"] == 1
    lstm = mc["cell"] == "lstm"
    assert [i["name"] for i in info["inputs"]] == ["tokens", "h0"] + (["c0"] if lstm else [])
    assert [o["name"] for o in info["outputs"]] == ["logits", "hn"] + (["cn"] if lstm else [])
    shapes = {io["name"]: io["shape"] for io in info["inputs"] + info["outputs"]}
    assert shapes["tokens"] == ["batch", "seq"]
    assert shapes["logits"] == ["batch", "seq", mc["n_out"]]
    assert shapes["h0"] == shapes["hn"] == [mc["layers"], "batch", mc["hidden"]]
    assert info["size_bytes"] == path.stat().st_size
