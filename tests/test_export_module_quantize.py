"""export_module(quantize=...): a user's module written quantized, checked as a checkpoint's export is."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from rnnkit.export import export_module, verify  # noqa: E402
from rnnkit.export.factory import load_factory  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import ConfigError, RnnkitWarning  # noqa: E402

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(40, 32)
            self.rnn = nn.LSTM(32, 64, batch_first=True)
            self.fc = nn.Linear(64, 40)

        def forward(self, x, h=None):
            out, h = self.rnn(self.embedding(x), h)
            return self.fc(out), h

    def make():
        torch.manual_seed(0)
        return CharLM()
''')
VOCAB = [chr(97 + i) for i in range(26)] + [str(i) for i in range(10)] + [" ", ".", ",", "!"]  # no specials


@pytest.fixture
def lm(tmp_path, monkeypatch):
    (tmp_path / "quantmods.py").write_text(MODELS, encoding="utf-8")
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_int8_module_is_smaller_agrees_with_fp32_and_verifies(lm):
    with pytest.warns(RnnkitWarning, match="a module brings no validation data, so the int8 metric change is unknown"):
        report = export_module(load_factory("quantmods:make"), lm / "lm.int8.onnx", task="lm", vocab=VOCAB,
                               quantize="int8")
    q = report.quantization
    assert q["mode"] == "int8" and q["batch_invariant"] is True and q["invariance"]["ok"]
    assert q["size_ratio"] < 0.5 and "metric" not in q
    assert q["vs_fp32"]["top1_agreement"] >= 0.95 and 0 < q["max_abs_diff"] < 0.05
    model = load_model(lm / "lm.int8.onnx")
    assert model.metadata.quantization["mode"] == "int8" and model.metadata.bos is False
    logits = model.stream().feed("abc")
    assert np.all(logits[:4] == -1e4) and np.all(logits[4:] > -100)  # specials the module never had stay −1e4
    checked = verify("quantmods:make", lm / "lm.int8.onnx")
    assert checked.ok, checked.failures
    assert checked.parity.atol == q["atol"] and checked.agreement["rate"] >= 0.95


def test_the_cli_writes_a_quantized_module(lm):
    result = CliRunner().invoke(cli, ["export-module", "quantmods:make", "--vocab", "vocab.txt", "--task", "lm",
                                      "--out", "lm.int8.onnx", "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "Warning: a module brings no validation data" in result.output
    lines = result.output.splitlines()
    assert any(line.startswith("int8: ") and "size ×0." in line for line in lines)
    assert any(line.startswith("int8: vs fp32 max |Δ|") for line in lines)
    assert load_model(lm / "lm.int8.onnx").metadata.quantization["mode"] == "int8"


def test_an_unknown_quantization_is_refused_before_anything_runs(lm):
    with pytest.raises(ConfigError, match="unknown quantization 'int2'"):
        export_module(load_factory("quantmods:make"), lm / "x.onnx", task="lm", vocab=VOCAB, quantize="int2")
    assert not (lm / "x.onnx").exists()
