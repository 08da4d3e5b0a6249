"""Issue 4, bad checkpoints: one typed error with a clear message; on the CLI one ``Error:`` line, exit 1."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import CheckpointError  # noqa: E402
from rnnkit.train.model import ModelConfig, RNNModel  # noqa: E402


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("good"), task="classify", cell="gru")


def _payload(good) -> dict:
    return torch.load(good, weights_only=True)


def make_bad(kind: str, good, folder):
    """Write a bad checkpoint of ``kind`` into ``folder``; return its path."""
    path = folder / f"{kind}.pt"
    if kind == "missing":
        return path
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random-bytes":
        path.write_bytes(bytes(range(256)) * 16)
    elif kind == "json":
        path = folder / "checkpoint.json"
        path.write_text(json.dumps({"rnnkit_checkpoint": 1, "task": "lm"}), encoding="utf-8")
    elif kind == "foreign-torch-file":
        torch.save({"a": 1}, path)
    elif kind == "newer-format":
        torch.save({**_payload(good), "rnnkit_checkpoint": 99}, path)
    elif kind == "pickled-module":
        torch.save(RNNModel(ModelConfig(cell="gru", vocab_size=10, n_out=2, embed=4, hidden=4)), path)
    elif kind == "lacks-weights":
        payload = _payload(good)
        del payload["model"]
        torch.save(payload, path)
    elif kind == "weights-do-not-fit":
        payload = _payload(good)
        payload["model_config"] = {**payload["model_config"], "hidden": payload["model_config"]["hidden"] + 1}
        torch.save(payload, path)
    elif kind == "empty-folder":
        path = folder / "run"
        path.mkdir()
    return path


BAD = {  # kind → words the message must contain
    "missing": "no checkpoint at",
    "truncated": "truncated",
    "empty": "truncated",
    "random-bytes": "not a",
    "json": "not a",
    "foreign-torch-file": "not an rnnkit checkpoint",
    "newer-format": "checkpoint format 99",
    "pickled-module": "pickled",
    "lacks-weights": "lacks model",
    "weights-do-not-fit": "do not fit",
    "empty-folder": "no checkpoint at",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_checkpoint_is_a_checkpoint_error_with_a_clear_message(good, tmp_path, kind):
    path = make_bad(kind, good, tmp_path)
    out = tmp_path / "out.onnx"
    with pytest.raises(CheckpointError) as info:
        export_onnx(path, out)
    message = str(info.value)
    assert BAD[kind] in message
    assert "\n" not in message and len(message) < 400
    assert str(path.name) in message
    if kind not in ("pickled-module",):
        assert "pickled" not in message
    assert not out.exists()


@pytest.mark.parametrize("kind", list(BAD))
def test_the_cli_answers_a_bad_checkpoint_with_one_error_line(good, tmp_path, kind):
    path = make_bad(kind, good, tmp_path)
    out = tmp_path / "x.onnx"
    result = CliRunner().invoke(cli, ["export", str(path), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not an exception click had to catch
    assert result.stdout == ""
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert BAD[kind] in lines[0]
    if kind not in ("pickled-module",):
        assert "pickled" not in lines[0]
    assert not out.exists()


def test_a_training_folder_is_a_checkpoint(good, tmp_path):
    report = export_onnx(good.parent, tmp_path / "a.onnx")
    assert report.spec.task == "classify" and load_model(tmp_path / "a.onnx").task == "classify"
    result = CliRunner().invoke(cli, ["export", str(good.parent), "--out", str(tmp_path / "b.onnx")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {tmp_path / 'b.onnx'}")
    assert (tmp_path / "a.onnx").read_bytes() != b""
    assert load_model(tmp_path / "b.onnx").metadata.vocab.tokens == report.spec.vocab.tokens
