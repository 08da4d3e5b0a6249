"""Train → export → run in the runtime, on data where the answer is known."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("torch")

from rnnkit.export import export_onnx
from rnnkit.runtime import load_model
from rnnkit.train import TrainConfig, train


def test_a_tagger_that_reads_ahead_tags_by_the_next_letter_after_export(tmp_path):
    """Each letter's tag is the letter after it: only reading ahead can get it, end to end."""
    rng = random.Random(1)
    lines = []
    for _ in range(80):
        word = "".join(rng.choice("abc") for _ in range(rng.randint(4, 9)))
        lines.append(" ".join(f"{ch}/{nxt}" for ch, nxt in zip(word, word[1:] + ".")))
    data = tmp_path / "next.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train(TrainConfig(task="tag", data=str(data), out=str(tmp_path / "run"), lookahead=1, hidden=24, embed=8,
                      lr=0.03, epochs=20, patience=0, seed=0))
    export_onnx(tmp_path / "run", tmp_path / "next.onnx")
    model = load_model(tmp_path / "next.onnx", providers="cpu")
    assert model.metadata.lookahead == 1
    for word in ("abcab", "ccba", "bacabcab"):
        assert [tag for _, tag in model.tag(word)] == list(word[1:] + ".")
