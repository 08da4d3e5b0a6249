"""Catalogue cases: ``rnnkit export-module`` given a factory, weights or token files it cannot use.

Every case runs in a folder of user files (a package with factories that fail each its own way,
weights, vocabularies), made once and made the current folder, as a user runs the command.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import torch
from catalogue import Case, Ctx, malicious_pickle

from rnnkit.export import export_module
from rnnkit.export.factory import load_factory, load_weights, read_tokens

MODELS = textwrap.dedent("""
    from torch import nn


    class Model(nn.Module):
        def __init__(self, n_chars=10, hidden=16, n_labels=2):
            super().__init__()
            self.emb = nn.Embedding(n_chars, 8)
            self.rnn = nn.GRU(8, hidden, batch_first=True)
            self.fc = nn.Linear(hidden, n_labels)

        def forward(self, x):
            out, _ = self.rnn(self.emb(x))
            return self.fc(out[:, -1])


    def make():
        return Model()


    def make_fails():
        raise RuntimeError("cannot find the corpus")


    def make_config():
        return {"hidden": 16}


    def make_sized(n_chars):
        return Model(n_chars)
""")
MODULE = "rnnkit_case_models"  # names no other test imports: a module stays in sys.modules once imported
_FOLDER: list[tempfile.TemporaryDirectory] = []


def user_folder() -> Path:
    """The folder of user files (made on first use, removed at exit)."""
    if _FOLDER:
        return Path(_FOLDER[0].name)
    _FOLDER.append(tempfile.TemporaryDirectory(prefix="rnnkit-user-"))
    root = Path(_FOLDER[0].name)
    files = {
        f"{MODULE}.py": MODELS,
        "rnnkit_case_syntax.py": "from torch import nn\n\ndef make(:\n    return nn.GRU(8, 8)\n",
        "rnnkit_case_imports.py": "import rnnkit_case_absent_dependency\n",
        "rnnkit_case_raises.py": 'raise ValueError("no data here")\n',
        "vocab.txt": "".join(f"{c}\n" for c in "abcdefghij"),
        "labels.txt": "neg\npos\n",
        "vocab-gap.txt": "a\n\nb\n",
        "vocab-twice.txt": "a\nb\na\n",
        "vocab-wrapped.json": '{"vocab": ["a", "b"]}',
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "vocab-latin1.txt").write_bytes("a\nschön\n".encode("latin-1"))
    namespace: dict = {}
    exec(MODELS, namespace)
    state = namespace["make"]().state_dict()
    torch.save(state, root / "w.pt")
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, root / "no-head.pt")
    torch.save({**state, "emb.weight": torch.zeros(12, 8)}, root / "grown.pt")
    (root / "cut.pt").write_bytes((root / "w.pt").read_bytes()[:400])
    malicious_pickle(root / "evil.pt", root / "pwned")
    return root


def here(monkeypatch) -> None:
    monkeypatch.chdir(user_folder())


def export_args(c: Ctx, factory: str = f"{MODULE}:make", *extra: str, vocab: str = "vocab.txt",
                out: Path | None = None) -> list:
    return ["export-module", factory, "--vocab", vocab, "--labels", "labels.txt", "--task", "classify",
            "--out", out or c.fresh("m.onnx"), *extra]


def user_case(api, *cli_extra: str, factory: str = f"{MODULE}:make", vocab: str = "vocab.txt") -> Case:
    return Case(api, lambda c: export_args(c, factory, *cli_extra, vocab=vocab), patch=here)


def made():
    return load_factory(f"{MODULE}:make")


CASES: dict[str, Case] = {
    # the factory
    "E350": user_case(lambda c: load_factory(MODULE), factory=MODULE),
    "E351": user_case(lambda c: load_factory("w.pt"), factory="w.pt"),
    "E352": user_case(lambda c: load_factory("rnnkit_case_nowhere:make"), factory="rnnkit_case_nowhere:make"),
    "E353": user_case(lambda c: load_factory("rnnkit_case_imports:make"), factory="rnnkit_case_imports:make"),
    "E354": user_case(lambda c: load_factory("rnnkit_case_syntax:make"), factory="rnnkit_case_syntax:make"),
    "E355": user_case(lambda c: load_factory("rnnkit_case_raises:make"), factory="rnnkit_case_raises:make"),
    "E356": user_case(lambda c: load_factory(f"{MODULE}:build"), factory=f"{MODULE}:build"),
    "E357": user_case(lambda c: load_factory(f"{MODULE}:make_fails"), factory=f"{MODULE}:make_fails"),
    "E358": user_case(lambda c: load_factory(f"{MODULE}:make_config"), factory=f"{MODULE}:make_config"),
    "E359": user_case(lambda c: load_factory(f"{MODULE}:make_sized"), factory=f"{MODULE}:make_sized"),
    # the weights
    "E360": user_case(lambda c: load_weights(made(), "none.pt"), "--weights", "none.pt"),
    "E361": user_case(lambda c: load_weights(made(), "evil.pt"), "--weights", "evil.pt"),
    "E362": user_case(lambda c: load_weights(made(), "cut.pt"), "--weights", "cut.pt"),
    "E363": user_case(lambda c: load_weights(made(), "no-head.pt"), "--weights", "no-head.pt"),
    "E364": user_case(lambda c: load_weights(made(), "grown.pt"), "--weights", "grown.pt"),
    # the vocabulary
    "E365": user_case(lambda c: read_tokens("vocab-latin1.txt"), vocab="vocab-latin1.txt"),
    "E366": user_case(lambda c: read_tokens("vocab-gap.txt"), vocab="vocab-gap.txt"),
    "E367": user_case(lambda c: read_tokens("vocab-twice.txt"), vocab="vocab-twice.txt"),
    "E368": user_case(lambda c: read_tokens("vocab-wrapped.json"), vocab="vocab-wrapped.json"),
    # the output
    "E369": Case(lambda c: export_module(made(), c.clf, task="classify", vocab=read_tokens("vocab.txt"),
                                         labels=["neg", "pos"]),
                 lambda c: export_args(c, out=c.clf), patch=here),
}
