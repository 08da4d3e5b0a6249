"""Catalogue cases: embeddings (``train(embeddings=)``, ``rnnkit train --embeddings``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from catalogue import Case, Ctx

from rnnkit.runtime import datafiles
from rnnkit.train.config import TrainConfig
from rnnkit.train.trainer import train

WORDS = ["good", "bad", "film", "plot", "was", "the"]


def reviews(c: Ctx) -> Path:
    lines = [f"{'pos' if i % 2 else 'neg'}\tthe {WORDS[2 + i % 2]} was {WORDS[i % 2]}" for i in range(20)]
    return c.once("emb-reviews", lambda: c.file("emb-reviews.tsv", ("\n".join(lines) + "\n").encode()))


def vectors(name: str, data: bytes):
    """A vectors file the case writes; ``vectors("x", b"")`` is an empty one."""
    return lambda c: c.once(f"emb-{name}", lambda: c.file(name, data))


def glove(*rows: str) -> bytes:
    return "".join(f"{row}\n" for row in rows).encode()


def f4(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


GOOD = [f"{w} 0.1 0.2 0.3 0.4" for w in WORDS]  # rows of 4 values for every word of the data


def api(file, **changes):
    """train() on the small reviews with the vectors ``file(c)`` makes."""
    def call(c: Ctx):
        options = {"task": "classify", "data": str(reviews(c)), "out": str(c.fresh("run")), "level": "word",
                   "embed": 4, "hidden": 8, "epochs": 1, "device": "cpu", "threads": 1,
                   "embeddings": None if file is None else str(file(c)), **changes}
        return train(TrainConfig(**options))
    return call


def cli(file, *extra: str, task: str = "classify", hidden: str = "8"):
    """``rnnkit train`` on the same reviews (with no --embed: the vectors' size)."""
    return lambda c: ["train", "--task", task, "--data", reviews(c), "--out", c.fresh("run"), "--level", "word",
                      "--hidden", hidden, "--epochs", "1", "--device", "cpu", "--threads", "1", "--quiet",
                      *(["--embeddings", file(c)] if file else []), *extra]


def case(file, *extra: str, **changes) -> Case:
    return Case(api(file, **changes), cli(file, *extra))


CASES: dict[str, Case] = {
    "E281": case(lambda c: c.fifo("vectors.fifo")),
    "E282": Case(api(vectors("big.vec", glove(*GOOD) * 4)), cli(vectors("big.vec", glove(*GOOD) * 4)),
                 patch=lambda mp: mp.setattr(datafiles, "MAX_DATA_BYTES", 100)),
    "E283": case(vectors("empty.vec", b"")),
    "E284": case(vectors("wide.vec", b"6 70000\n")),
    "E285": case(vectors("count.vec", b"9 4\n" + glove(*GOOD))),
    "E286": case(vectors("cut.bin", b"2 4\ngood " + f4(1, 2, 3, 4) + b"\nbad " + f4(1, 2, 3, 4)[:9])),
    "E287": case(vectors("short-row.txt", glove(*GOOD[:2], "film 0.1 0.2 0.3", *GOOD[3:]))),
    "E288": case(vectors("word-value.txt", glove(*GOOD[:2], "film 0.1 0.2 zero 0.4"))),
    "E289": case(vectors("nan.txt", glove("good 0.1 nan 0.3 0.4", *GOOD[1:]))),
    "E290": case(vectors("latin1.txt", glove(*GOOD) + "plötzlich 1 2 3 4\n".encode("latin-1"))),
    "E291": case(vectors("twice.txt", glove(*GOOD, "film 0.5 0.6 0.7 0.8"))),
    "E292": case(vectors("other.txt", glove("chat 1 2 3 4", "chien 5 6 7 8"))),
    "E293": case(vectors("glove.4d.txt", glove(*GOOD)), "--embed", "8", embed=8),
    "E294": Case(api(None, freeze_embeddings=True), cli(None, "--freeze-embeddings")),
    "E295": Case(api(vectors("glove.4d.txt", glove(*GOOD)), task="lm", tie_weights=True, hidden=4,
                     freeze_embeddings=True),
                 cli(vectors("glove.4d.txt", glove(*GOOD)), "--tie-weights", "--freeze-embeddings", task="lm",
                     hidden="4")),
}
