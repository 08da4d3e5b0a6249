"""``rnnkit export-module``: a user's own package, imported from the current folder, exported and run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from rnnkit.export.factory import is_factory_spec, read_tokens  # noqa: E402
from rnnkit.runtime import DataError, load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402

# What a user writes after a tutorial (PyTorch's "classifying names"): sequence-first, the last
# hidden state through a Linear and a LogSoftmax.
MODELS = textwrap.dedent("""
    import torch
    from torch import nn


    class NameClassifier(nn.Module):
        def __init__(self, n_chars=12, hidden=16, n_labels=3):
            super().__init__()
            self.embedding = nn.Embedding(n_chars, 8)
            self.lstm = nn.LSTM(8, hidden)
            self.out = nn.Linear(hidden, n_labels)
            self.softmax = nn.LogSoftmax(dim=1)

        def forward(self, x):  # x: (seq, batch)
            output, (h, c) = self.lstm(self.embedding(x))
            return self.softmax(self.out(h[-1]))


    def make():
        return NameClassifier()
""")
CHARS = [*"abcdefghijk", " "]  # a line of one space is the token " "
LABELS = ["en", "fr", "de"]
TEXTS = ["abc", "k j", "a", "gab", "ghi jk abc"]


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A folder holding mymodels.py, its vocabulary, labels and trained weights, as the current folder."""
    (tmp_path / "mymodels.py").write_text(MODELS, encoding="utf-8")
    (tmp_path / "vocab.txt").write_text("".join(f"{c}\n" for c in CHARS), encoding="utf-8")
    (tmp_path / "labels.txt").write_text("\n".join(LABELS), encoding="utf-8")  # no final newline: the same
    namespace: dict = {}
    exec(MODELS, namespace)
    torch.manual_seed(7)  # other weights than the factory draws: proves --weights is what is exported
    trained = namespace["make"]().eval()
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "mymodels", raising=False)  # each test imports its own, and forgets it
    return tmp_path, trained


def _module_probabilities(module, texts: list[str]) -> np.ndarray:
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([[CHARS.index(c)] for c in text])  # (seq, 1)
            rows.append(module(ids).exp()[0].numpy())
    return np.array(rows)  # (texts, labels)


def test_export_module_gives_the_modules_answers(package):
    folder, trained = package
    args = ["export-module", "mymodels:make", "--vocab", "vocab.txt", "--labels", "labels.txt", "--weights", "w.pt",
            "--task", "classify", "--out", "m.onnx"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("wrote m.onnx (") and "classify, lstm × 1" in lines[0]
    assert lines[1] == "found: embedding (Embedding 12×8) → lstm (LSTM 8→16 × 1) → out (Linear 16→3) → LogSoftmax"
    assert lines[2] == "call: forward(ids (seq, batch)) → log_softmax [batch, out (last step)]"
    assert lines[3].startswith("parity: ")
    assert str(folder) not in sys.path  # the current folder was on the import path for the import only

    model = load_model(folder / "m.onnx")
    assert list(model.metadata.labels) == LABELS
    got = np.array([[p.scores[label] for label in LABELS] for p in model.classify(TEXTS)])
    np.testing.assert_allclose(got, _module_probabilities(trained, TEXTS), atol=1e-5)

    before = (folder / "m.onnx").read_bytes()
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "already exists; pass --force" in refused.stderr
    assert (folder / "m.onnx").read_bytes() == before
    replaced = CliRunner().invoke(cli, [*args, "--force", "--json"])
    assert replaced.exit_code == 0, replaced.output
    report = json.loads(replaced.stdout)
    assert report["module"]["factory"] == "mymodels:make"
    assert report["module"]["parts"].startswith("embedding (Embedding 12×8)")
    assert report["module"]["call"]["output"] == "log_softmax"


def test_export_module_imports_from_the_current_folder_in_a_real_process(package):
    folder, _ = package
    # -I: as the console script, the child has neither "" nor the current folder on sys.path
    command = [sys.executable, "-I", "-c", "from rnnkit.runtime.cli import main; main()", "export-module",
               "mymodels:NameClassifier", "--vocab", "vocab.txt", "--labels", "labels.txt", "--task", "classify",
               "--out", "class.onnx"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "found: embedding (Embedding 12×8)" in done.stdout
    assert load_model(folder / "class.onnx").classify("abc").label in LABELS


def test_export_module_usage_errors(package):
    base = ["--vocab", "vocab.txt", "--labels", "labels.txt", "--task", "classify", "--out", "m.onnx"]
    for argv, says in ((["export-module", "w.pt", *base], "is a file or folder, not a factory"),
                       (["export-module", "mymodels:make", *base, "--special", "bos"], "is not NAME=TOKEN"),
                       (["export-module", "mymodels:make", *base[:2], *base[4:]], "needs its labels")):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2, result.output
        assert says in result.stderr


def test_is_factory_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a:b").write_text("")
    assert is_factory_spec("mymodels:make") and is_factory_spec("pkg.models:Zoo.make")
    for text in ("mymodels", "a:b", "runs/hello", "my-models:make", "m:make:x", "class:make", "m:", ":make"):
        assert not is_factory_spec(text), text


@pytest.mark.parametrize(("data", "name", "tokens"), [
    (b"a\n \nb\n", "v.txt", ["a", " ", "b"]),  # one space is a token; the final newline is not one
    (b"a\r\nb", "v.txt", ["a", "b"]),
    (b"\xef\xbb\xbfa\nb\t\n", "v.txt", ["a", "b\t"]),  # BOM dropped, the rest of the line kept exactly
    (b'["a", "\\n"]', "v.json", ["a", "\n"]),
    (b'{"b": 1, "a": 0}', "v.JSON", {"b": 1, "a": 0}),
])
def test_read_tokens(tmp_path, data, name, tokens):
    (tmp_path / name).write_bytes(data)
    assert read_tokens(tmp_path / name) == tokens


@pytest.mark.parametrize(("data", "says"), [
    (b"", "v.txt: is empty"),
    (b"\n", "v.txt:1: the line is empty"),
    (b"a\nb\n\n", "v.txt:3: the line is empty"),
    (b"a\nb\na\n", "v.txt:3: 'a' is also on line 1"),
    (b"a\n\xff\n", "v.txt:2: not valid UTF-8"),
])
def test_read_tokens_refuses(tmp_path, data, says):
    (tmp_path / "v.txt").write_bytes(data)
    with pytest.raises(DataError) as info:
        read_tokens(tmp_path / "v.txt")
    assert says in str(info.value)
