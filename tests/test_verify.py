"""``rnnkit verify`` / ``rnnkit.export.verify``: a file agrees with its torch source, or the report says where not."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import onnx  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint, tiny_onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnx_edits import rewrite_metadata  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.export.verify import assert_parity, verify  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import ModelNotFoundError, ParityError  # noqa: E402

TEXTS = "Hello World\n好的 ok\nthe quick brown fox\n"


def texts(folder: Path) -> Path:
    path = folder / "texts.txt"
    path.write_text(TEXTS, encoding="utf-8")
    return path


def tamper(src: Path, dst: Path, *, by: float = 0.05) -> Path:
    """A copy of ``src`` with one weight of its largest float initializer moved by ``by``."""
    model = onnx.load(str(src))
    init = max((i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT),
               key=lambda i: int(np.prod(i.dims)))
    values = numpy_helper.to_array(init).copy()
    values.flat[values.size // 2] += by
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    onnx.save(model, str(dst))
    return dst


@pytest.mark.parametrize("task,cell", [("classify", "gru"), ("lm", "lstm"), ("tag", "rnn")])
def test_a_file_agrees_with_its_checkpoint(tmp_path, task, cell):
    path = tiny_onnx(tmp_path, task=task, cell=cell)
    report = verify(tmp_path / "checkpoint.pt", path, data=texts(tmp_path))
    assert report.ok, report.failures
    cases = {c["case"] for c in report.parity.cases}
    assert {"random b=3 t=17", "stream t=24", "--data (3 texts)"} <= cases
    assert {c["check"] for c in report.checks} >= {"task", "vocabulary", "tokenizer", "tokenization of --data"}
    assert report.agreement["rate"] == 1.0 and report.agreement["total"] > 0
    assert report.data == {"path": str(tmp_path / "texts.txt"), "texts": 3,
                           "tokens": report.data["tokens"]} and report.data["tokens"] > 20


def test_the_cli_prints_a_row_per_comparison_and_exits_0(tmp_path):
    path = tiny_onnx(tmp_path, task="classify")
    result = CliRunner().invoke(cli, ["verify", str(tmp_path), str(path), "--data", str(texts(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("verify ") and "(checkpoint)" in lines[0] and "(fp32)" in lines[0]
    header = lines[1].split()
    assert header[:3] == ["check", "output", "shape"] and "tolerance" in header
    assert any(line.startswith("random b=2 t=300") and line.rstrip().endswith("✓") for line in lines)
    assert any(line.startswith("agreement: labels 3/3 (100.00%)") for line in lines)
    assert lines[-1].startswith("verify: passed")
    as_json = CliRunner().invoke(cli, ["verify", str(tmp_path), str(path), "--json"])
    report = json.loads(as_json.output)
    assert as_json.exit_code == 0 and report["ok"] is True and report["kind"] == "checkpoint"
    assert all(c["ok"] for c in report["comparisons"]) and len(report["comparisons"]) >= 14


def test_one_changed_weight_fails_with_exit_1(tmp_path):
    path = tiny_onnx(tmp_path, task="classify", cell="lstm")
    bad = tamper(path, tmp_path / "tampered.onnx")
    report = verify(tmp_path, bad)
    assert not report.ok and report.parity.mismatches
    assert all(c["ok"] for c in report.checks)  # the metadata is untouched: the numbers give it away
    result = CliRunner().invoke(cli, ["verify", str(tmp_path), str(bad)])
    assert result.exit_code == 1, result.output
    assert "✗" in result.output and result.output.splitlines()[-1].startswith("verify: FAILED")
    with pytest.raises(ParityError, match="does not give"):
        assert_parity(tmp_path, bad)
    assert assert_parity(tmp_path, path).ok


def test_a_weight_moved_by_less_than_the_tolerance_passes_and_a_tighter_atol_catches_it(tmp_path):
    path = tiny_onnx(tmp_path, task="classify")
    nudged = tamper(path, tmp_path / "nudged.onnx", by=3e-5)  # moves the outputs by about 4e-6
    assert verify(tmp_path, nudged).ok
    tight = verify(tmp_path, nudged, atol=1e-6)
    assert not tight.ok and tight.parity.atol == 1e-6
    assert verify(tmp_path, path, atol=1e-6).ok  # the untouched file is well within it
    assert CliRunner().invoke(cli, ["verify", str(tmp_path), str(nudged), "--atol", "1e-6"]).exit_code == 1


def test_a_tokenizer_mismatch_is_caught_in_the_metadata_and_on_the_texts(tmp_path):
    path = tiny_onnx(tmp_path, task="classify")
    config = {p.key: p.value for p in onnx.load(str(path)).metadata_props}["rnnkit.tokenizer"]
    changed = {**json.loads(config), "lowercase": not json.loads(config)["lowercase"]}
    other = rewrite_metadata(path, tmp_path / "lower.onnx", tokenizer=json.dumps(changed))
    report = verify(tmp_path, other, data=texts(tmp_path))
    failed = {c["check"]: c["detail"] for c in report.checks if not c["ok"]}
    assert set(failed) == {"tokenizer", "tokenization of --data"}
    assert "lowercase" in failed["tokenizer"] and "texts tokenize differently" in failed["tokenization of --data"]
    assert CliRunner().invoke(cli, ["verify", str(tmp_path), str(other)]).exit_code == 1


def test_a_file_of_another_model_is_not_compared_number_by_number(tmp_path):
    tiny_checkpoint(tmp_path / "a", task="classify", hidden=12)
    other = tiny_onnx(tmp_path / "b", task="classify", hidden=16)
    report = verify(tmp_path / "a", other)
    assert not report.ok
    assert [c["check"] for c in report.checks if not c["ok"]] == ["hidden"]
    assert not report.parity.cases and "not compared" in report.parity.skipped[0]


def test_an_int8_file_is_held_to_the_tolerance_its_export_stored(tmp_path):
    ckpt = tiny_checkpoint(tmp_path, task="classify", hidden=64, embed=32)
    path = tmp_path / "m.int8.onnx"
    export = export_onnx(ckpt, path, quantize="int8", max_drop=1.0)
    stored = export.quantization["atol"]
    report = verify(tmp_path, path)
    assert report.quantization == "int8" and report.parity.atol == stored
    assert report.ok, report.failures
    assert 0.5 <= report.agreement["rate"] <= 1.0 and report.agreement["max_abs_diff"] > 0
    assert not verify(tmp_path, path, atol=1e-7).ok  # int8 is not fp32: a tight tolerance fails it
    out = CliRunner().invoke(cli, ["verify", str(tmp_path), str(path)]).output
    assert "(int8)" in out.splitlines()[0] and "stored by the quantized export" in out


@pytest.mark.parametrize("args,says", [
    (["{ckpt}", "{missing}"], "no model file at"),
    (["{missing_dir}", "{model}"], "no checkpoint at"),
    (["{ckpt}", "{model}", "--data", "{missing}"], "file does not exist"),
    (["{ckpt}", "{model}", "--atol", "0"], "--atol"),
    (["{ckpt}", "{model}", "--weights", "{ckpt}"], "for a package.module:factory source"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, says):
    model = tiny_onnx(tmp_path, task="classify")
    names = {"ckpt": str(tmp_path / "checkpoint.pt"), "model": str(model), "missing": str(tmp_path / "nope.onnx"),
             "missing_dir": str(tmp_path / "no-run")}
    result = CliRunner().invoke(cli, ["verify", *(a.format(**names) for a in args)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says.lower() in errors[0].lower()
    assert "Traceback" not in result.output


def test_a_missing_model_raises_its_typed_error(tmp_path):
    tiny_checkpoint(tmp_path, task="classify")
    with pytest.raises(ModelNotFoundError):
        verify(tmp_path, tmp_path / "nope.onnx")


MODULE = textwrap.dedent('''
    import torch
    from torch import nn

    class Names(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(8, 6)
            self.rnn = nn.GRU(6, 10, num_layers=2, batch_first=True)
            self.fc = nn.Linear(10, 3)

        def forward(self, x, h=None):
            out, h = self.rnn(self.embedding(x), h)
            return torch.log_softmax(self.fc(out[:, -1]), dim=-1), h

    def make():
        torch.manual_seed(0)
        return Names()
''')


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_module_source_agrees_and_a_tampered_copy_does_not(user_package):
    from rnnkit.export import export_module
    from rnnkit.export.factory import load_factory

    vocab = ["a", "b", "c", "d", "e", "f", " ", "<unk>"]
    path = user_package / "names.onnx"
    export_module(load_factory("usermodels:make"), path, task="classify", vocab=vocab, labels=["x", "y", "z"])
    (user_package / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    report = verify("usermodels:make", path, data=texts(user_package))
    assert report.ok, report.failures
    assert report.kind == "module"
    assert any(c["case"].startswith("module forward") for c in report.parity.cases)
    bad = tamper(path, user_package / "tampered.onnx")
    result = CliRunner().invoke(cli, ["verify", "usermodels:make", str(bad)])
    assert result.exit_code == 1, result.output
    good = CliRunner().invoke(cli, ["verify", "usermodels:make", str(path), "--vocab", "vocab.txt"])
    assert good.exit_code == 0, good.output
    (user_package / "other.txt").write_text("\n".join(["b", "a", *vocab[2:]]) + "\n", encoding="utf-8")
    swapped = CliRunner().invoke(cli, ["verify", "usermodels:make", str(path), "--vocab", "other.txt"])
    assert swapped.exit_code == 1 and "vocabulary" in swapped.output



class Wide(torch.nn.Module):
    """5,000 tokens: random texts touch a few hundred rows."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(5000, 8)
        self.rnn = torch.nn.GRU(8, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.rnn(self.embedding(x))
        return self.fc(out[:, -1])


def wide() -> Wide:
    torch.manual_seed(0)
    return Wide()


def test_every_embedding_row_is_compared_however_large_the_vocabulary(tmp_path):
    from rnnkit.export import export_module

    path = tmp_path / "wide.onnx"
    export_module(wide(), path, task="classify", vocab=[chr(0x4E00 + i) for i in range(5000)], labels=["a", "b"])
    model = onnx.load(str(path))
    embedding = next(i for i in model.graph.initializer if list(i.dims) == [5004, 8])
    rows = numpy_helper.to_array(embedding).copy()
    rows[4 + 4321, 3] += 0.05  # the row of module id 4321, a token no random text is likely to hold
    embedding.CopyFrom(numpy_helper.from_array(rows, embedding.name))
    onnx.save(model, str(tmp_path / "row.onnx"))
    assert verify("test_verify:wide", path).ok
    report = verify("test_verify:wide", tmp_path / "row.onnx")
    assert not report.ok
    assert {m["case"] for m in report.parity.mismatches} >= {"every token"}
    every = [c for c in report.parity.cases if c["case"] == "every token"]
    assert {c["output"] for c in every} == {"logits", "hn"} and every[0]["shape"][0] == 5004
