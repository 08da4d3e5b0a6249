"""`rnnkit verify` of a `package.module:factory` source: what it compares, what fails (1), what is bad input (2)."""

from __future__ import annotations

import json
import textwrap

import onnx
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from test_verify import tamper  # noqa: E402

from rnnkit.export import export_module  # noqa: E402
from rnnkit.export.factory import load_factory  # noqa: E402
from rnnkit.export.parity import ParityReport  # noqa: E402
from rnnkit.export.verify import VerifyReport, verify  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import ParityError  # noqa: E402

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    class Clean(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(6, 4)
            self.drop = nn.Dropout(0.5)
            self.rnn = nn.LSTM(4, 8, num_layers=2, dropout=0.3, batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            out, _ = self.rnn(self.drop(self.embedding(x)))
            return self.fc(self.drop(out[:, -1]))

    class Offset(Clean):
        def forward(self, x):
            return super().forward(x) * 1.0001 + 4e-5   # a little more than its parts compute

    class WideVocab(nn.Module):                      # 12 ids in, 8 predicted: ids 8-11 are never predicted
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(12, 4)
            self.rnn = nn.GRU(4, 8, batch_first=True)
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            out, _ = self.rnn(self.embedding(x))
            return self.fc(out)

    def clean():
        torch.manual_seed(0)
        return Clean()

    def offset():
        torch.manual_seed(0)
        return Offset()

    def wide():
        torch.manual_seed(0)
        return WideVocab()

    def broken():
        raise RuntimeError("no weights here")
''')
VOCAB = ["a", "b", "c", "d", " ", "<unk>"]
LABELS = ["x", "y", "z"]


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "usermods.py").write_text(MODELS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    (tmp_path / "texts.txt").write_text("abc d\nAbc\ndcba\n", encoding="utf-8")
    path = tmp_path / "clean.onnx"
    module = load_factory("usermods:clean").eval()  # dropout off, as an export of a trained model has it
    export_module(module, path, task="classify", vocab=VOCAB, labels=LABELS)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, ["verify", *map(str, args)])


def test_a_module_with_dropout_verifies_as_it_exported(models):
    """A factory's module comes in training mode: verify switches its dropout off, as export did."""
    report = verify("usermods:clean", models / "clean.onnx", data=models / "texts.txt")
    assert report.ok, report.failures
    assert any(c["case"] == "module forward b=4 t=64" for c in report.parity.cases)
    assert any(s.startswith("tokenizer: not compared") for s in report.parity.skipped)


def test_a_forward_a_little_off_its_parts_is_refused_at_export_and_fails_verify(models):
    with pytest.raises(ParityError, match="the module's forward computes something its parts do not"):
        export_module(load_factory("usermods:offset").eval(), models / "off.onnx", task="classify", vocab=VOCAB,
                      labels=LABELS)
    assert not (models / "off.onnx").exists()
    result = run("usermods:offset", models / "clean.onnx")
    assert result.exit_code == 1, result.output  # a disagreement, not bad input
    assert "✗" in result.output


@pytest.mark.parametrize("args,check", [
    (["--task", "tag"], "task"),
    (["--tokenizer", "whitespace"], "tokenizer"),
    (["--labels", "labels.txt"], "labels"),
])
def test_what_the_options_say_is_compared_with_the_file(models, args, check):
    (models / "labels.txt").write_text("x\nz\ny\n", encoding="utf-8")
    result = run("usermods:clean", models / "clean.onnx", *args)
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if "✗" in line]
    assert failed and failed[0].startswith(check)
    agreeing = {"--task": "classify", "--tokenizer": "char", "--labels": "ok.txt"}[args[0]]
    (models / "ok.txt").write_text("x\ny\nz\n", encoding="utf-8")
    assert run("usermods:clean", models / "clean.onnx", args[0], agreeing).exit_code == 0


def test_a_file_cut_with_another_tokenizer_fails_on_the_texts(models):
    model = onnx.load(str(models / "clean.onnx"))
    props = {p.key: p for p in model.metadata_props}
    config = json.loads(props["rnnkit.tokenizer"].value)
    props["rnnkit.tokenizer"].value = json.dumps({**config, "lowercase": True})
    onnx.save(model, str(models / "lower.onnx"))
    report = verify("usermods:clean", models / "lower.onnx", tokenizer="char", data=models / "texts.txt")
    failed = {c["check"] for c in report.checks if not c["ok"]}
    assert failed == {"tokenizer", "tokenization of --data"}  # "Abc" is cut to other ids


def test_an_lm_with_ids_it_never_predicts_is_held_to_the_export_tolerance(models):
    vocab = [*"abcdefgh", "<unk>", "i", "j", "k"]  # ids 8-11 are read, never predicted
    export_module(load_factory("usermods:wide"), models / "wide.onnx", task="lm", vocab=vocab)
    report = verify("usermods:wide", models / "wide.onnx")
    assert report.ok, report.failures
    assert max(c["tolerance"] for c in report.parity.cases) < 1e-4  # no −1e4 column loosened a relative one
    assert not verify("usermods:wide", tamper(models / "wide.onnx", models / "bad.onnx")).ok


@pytest.mark.parametrize("ids", [None, True, 1.5, 7, "0,1,2", {"a": 1}, [None] * 9])
def test_recorded_ids_of_any_shape_never_crash_verify(models, ids):
    """With --vocab the vocabulary given is compared (ids that are a list, but not its ids, disagree);
    without, the file's ids are all there is, and ids that are not ids are bad input."""
    model = onnx.load(str(models / "clean.onnx"))
    props = {p.key: p for p in model.metadata_props}
    provenance = json.loads(props["rnnkit.provenance"].value)
    provenance["module"]["source_ids"] = ids
    props["rnnkit.provenance"].value = json.dumps(provenance)
    onnx.save(model, str(models / "ids.onnx"))
    with_vocab = run("usermods:clean", models / "ids.onnx", "--vocab", "vocab.txt")
    assert with_vocab.exit_code == (1 if isinstance(ids, list) else 0), with_vocab.output
    without = run("usermods:clean", models / "ids.onnx")
    assert without.exit_code == 2 and "records no usable mapping" in without.output
    assert "Traceback" not in without.output + with_vocab.output


@pytest.mark.parametrize("source,extra,says", [
    ("usermods:broken", [], "RuntimeError: no weights here"),
    ("usermods:nothing", [], "nothing"),
    ("nomodule:make", [], "nomodule"),
    ("usermods:clean", ["--weights", "junk.pt"], "junk.pt"),
    ("usermods:clean", ["--weights", "flipped.pt"], "flipped.pt"),
])
def test_bad_sources_exit_2_with_one_line(models, source, extra, says):
    (models / "junk.pt").write_bytes(b"not a torch file at all")
    torch.save(load_factory("usermods:clean").state_dict(), models / "good.pt")
    data = bytearray((models / "good.pt").read_bytes())
    data[26] = 0xFF  # the first member's name length: torch's reader once raised IndexError here
    (models / "flipped.pt").write_bytes(bytes(data))
    result = run(source, models / "clean.onnx", *extra)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in result.output


def test_json_has_no_infinity_where_a_shape_differs():
    report = VerifyReport("s", "m", "module", "none", ParityReport(1e-5))
    report.parity.cases.append({"case": "c", "output": "logits", "shape": [1, 2], "max_abs_diff": float("inf"),
                                "max_scaled_diff": float("inf"), "ok": False})
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["comparisons"][0]["max_abs_diff"] is None and json.loads(text)["ok"] is False


def test_any_byte_of_a_weights_file_damaged_gives_a_checkpoint_error(tmp_path):
    """Every single byte set to 0xff in turn: torch's reader and zipfile fail in many ways; one error type out."""
    from rnnkit.export.factory import load_weights
    from rnnkit.runtime.errors import CheckpointError

    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    outcomes = set()
    for at in range(len(data)):
        damaged = bytearray(data)
        damaged[at] = 0xFF
        (tmp_path / "bad.pt").write_bytes(bytes(damaged))
        try:
            load_weights(torch.nn.Linear(2, 2), tmp_path / "bad.pt")
            outcomes.add("loaded")
        except CheckpointError:
            outcomes.add("refused")
    assert "refused" in outcomes  # and nothing else escaped: any other exception fails the test
