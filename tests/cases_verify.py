"""Catalogue cases: what ``rnnkit verify`` cannot compare (exit 2), apart from a file that disagrees (exit 1)."""

from __future__ import annotations

import json

import onnx
import torch
from catalogue import Case, Ctx, plain_onnx
from torch import nn

from rnnkit.export import export_module
from rnnkit.export.verify import verify

VOCAB = ["a", "b", "c", "d", " "]


def tiny_gru() -> nn.Module:
    """A factory for the cases: ``cases_verify:tiny_gru`` (tests/ is on the import path)."""

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(5, 4)
            self.rnn = nn.GRU(4, 6, batch_first=True)
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            out, _ = self.rnn(self.embedding(x))
            return self.fc(out[:, -1])

    torch.manual_seed(0)
    return Tiny()


def exported(c: Ctx) -> str:
    def make():
        path = c.path("tiny-module.onnx")
        export_module(tiny_gru(), path, task="classify", vocab=VOCAB, labels=["no", "yes"], overwrite=True)
        return path
    return str(c.once("tiny-module", make))


def with_source_ids(c: Ctx, source: list[int]) -> str:
    """``exported`` with its recorded module ids replaced."""
    def make():
        model = onnx.load(exported(c))
        props = {p.key: p for p in model.metadata_props}
        provenance = json.loads(props["rnnkit.provenance"].value)
        provenance["module"]["source_ids"] = source
        props["rnnkit.provenance"].value = json.dumps(provenance)
        path = c.path("tiny-module-ids.onnx")
        onnx.save(model, str(path))
        return path
    return str(c.once(f"ids-{source}", make))


def plain(c: Ctx) -> str:
    return str(c.once("plain-verify", lambda: plain_onnx(c.path("plain-verify.onnx"))))


def too_big_vocab(c: Ctx) -> str:
    return str(c.file("big-vocab.txt", "\n".join([*VOCAB, "e", "f"]).encode() + b"\n"))


CASES: dict[str, Case] = {
    "E370": Case(lambda c: verify(c.clf.parent, c.clf, weights=c.clf.parent / "checkpoint.pt"),
                 lambda c: ["verify", str(c.clf.parent), str(c.clf), "--weights", str(c.clf.parent / "checkpoint.pt")]),
    "E371": Case(lambda c: verify("cases_verify:tiny_gru", c.clf),
                 lambda c: ["verify", "cases_verify:tiny_gru", str(c.clf)]),
    "E372": Case(lambda c: verify("cases_verify:tiny_gru", with_source_ids(c, [-1, -1, -1, -1, 0, 0, 1, 2, 3])),
                 lambda c: ["verify", "cases_verify:tiny_gru", with_source_ids(c, [-1, -1, -1, -1, 0, 0, 1, 2, 3])]),
    "E373": Case(lambda c: verify(c.clf.parent, plain(c)),
                 lambda c: ["verify", str(c.clf.parent), plain(c)]),
    "E374": Case(lambda c: verify(c.clf.parent, c.clf, atol=0.0),
                 lambda c: ["verify", str(c.clf.parent), str(c.clf), "--atol", "0"]),
    "E375": Case(lambda c: verify("cases_verify:tiny_gru", exported(c), vocab=[*VOCAB, "e", "f"]),
                 lambda c: ["verify", "cases_verify:tiny_gru", exported(c), "--vocab", too_big_vocab(c)]),
}
