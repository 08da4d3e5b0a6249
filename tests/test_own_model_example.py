"""The README's "Export your own torch model", run as written (with a shorter training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snownlp")

from click.testing import CliRunner  # noqa: E402
from test_verify import tamper  # noqa: E402

from rnnkit.export.factory import load_factory, load_weights  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FACTORY = "examples.own_model.reviews:make"


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    out = tmp_path_factory.mktemp("own")
    done = subprocess.run([sys.executable, "examples/own_model/reviews.py", "--out", str(out), "--examples", "800",
                           "--steps", "60"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("trained 60 steps in ")
    return out


def test_the_readme_commands_export_classify_and_verify(own, monkeypatch):
    monkeypatch.chdir(ROOT)  # the factory is imported from the current folder
    runner = CliRunner()
    onnx = own / "reviews.onnx"
    exported = runner.invoke(cli, ["export-module", FACTORY, "--vocab", str(own / "vocab.txt"), "--labels",
                                   str(own / "labels.txt"), "--weights", str(own / "weights.pt"), "--task",
                                   "classify", "--out", str(onnx)])
    assert exported.exit_code == 0, exported.output
    assert "found: embedding (Embedding 3000×64) → rnn (RNN 64→64 × 1, batch_first) → fc (Linear 64→2)" \
        in exported.output
    texts = ["质量很好，推荐", "太差了，不推荐"]
    printed = runner.invoke(cli, ["classify", str(onnx), *texts])
    assert printed.exit_code == 0, printed.output

    module = load_factory(FACTORY)
    load_weights(module, own / "weights.pt")
    vocab = (own / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    index = {c: i for i, c in enumerate(vocab)}
    model = load_model(onnx)
    for text, line, prediction in zip(texts, printed.output.splitlines(), model.classify(texts)):
        ids = torch.tensor([[index.get(c, index["<unk>"]) for c in text]])
        with torch.no_grad():
            probs = module(ids, torch.zeros(1, 1, 64))[0].exp()[0].numpy()
        np.testing.assert_allclose([prediction.scores["neg"], prediction.scores["pos"]], probs, atol=1e-5)
        assert line.split("\t") == [["neg", "pos"][int(probs.argmax())], f"{probs.max():.4f}", text]

    verified = runner.invoke(cli, ["verify", FACTORY, str(onnx), "--weights", str(own / "weights.pt"), "--data",
                                   str(own / "texts.txt"), "--tokenizer", "char"])
    assert verified.exit_code == 0, verified.output
    assert any(line.startswith("tokenizer ") and line.endswith("✓ same") for line in verified.output.splitlines())
    assert "agreement: labels 50/50 (100.00%)" in verified.output
    bad = tamper(onnx, own / "tampered.onnx")
    refused = runner.invoke(cli, ["verify", FACTORY, str(bad), "--weights", str(own / "weights.pt")])
    assert refused.exit_code == 1 and "verify: FAILED" in refused.output
