"""What a quantized file is checked for before it may exist, and the figures its report states.

* **Invariance**: a row's outputs (logits and state) are the same whether its text runs alone,
  among other rows of a batch, whole, token by token or in uneven chunks — within
  ``INVARIANCE_TOL × max(1, |x|)``, on the checkpoint's own validation texts.
* **Closeness to fp32**: max |Δ| of the logits and the top-1 agreement (next token for an lm,
  label at each step for a tagger, label at the last step for a classifier) of the quantized
  file against the fp32 file, on the same texts.
* **Speed and size**: a batch-1 step's time and the file's size, as ratios to fp32, measured
  here at export (one thread, CPU).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import load_model
from rnnkit.runtime.model import Model

from .parity import differences

__all__ = ["INVARIANCE_TOL", "compare_with_fp32", "invariance", "step_ratio"]

INVARIANCE_TOL = 1e-6  # max |Δ| / max(1, |x|) between one row's outputs computed two ways
_MAX_TEXTS = 8
_MAX_LEN = 48  # tokens of each text the invariance check runs (token by token: one call each)
_NEIGHBOURS = 4  # other rows of the batch a text shares


def texts_for_checks(real: Sequence[Sequence[int]], vocab_size: int, seed: int = 0) -> list[list[int]]:
    """The id sequences the checks run: the checkpoint's texts, else random ones."""
    texts = [list(ids[:_MAX_LEN]) for ids in real if len(ids)][:_MAX_TEXTS]
    if texts:
        return texts
    rng = np.random.default_rng(seed)
    return [rng.integers(4, vocab_size, n).tolist() for n in (1, 7, 33)]


def invariance(path: Path, texts: Sequence[Sequence[int]], *, seed: int = 0) -> dict[str, Any]:
    """How far a text's outputs move between running alone, batched and chunked.

    Returns ``{"max_scaled_diff", "worst", "cases", "ok"}``; ``worst`` names the comparison.
    """
    model = load_model(path, providers="cpu", threads=1)
    rng = np.random.default_rng(seed)
    worst, where, cases = 0.0, "", 0
    for number, ids in enumerate(texts):
        tokens = np.asarray([ids], np.int64)
        alone = _outputs(model, tokens)
        comparisons = {"batched": _batched(model, tokens, rng), "token by token": _chunked(model, tokens, [1])}
        if tokens.shape[1] > 3:
            comparisons["uneven chunks"] = _chunked(model, tokens, [1, 2, 5])
        for how, got in comparisons.items():
            cases += 1
            d = max(differences(a, g)[1] for a, g in zip(alone, got))
            if d > worst or not where:
                worst, where = d, f"text {number} ({len(ids)} tokens) alone vs {how}"
    return {"max_scaled_diff": worst, "worst": where, "cases": cases, "ok": worst <= INVARIANCE_TOL}


def _outputs(model: Model, tokens: np.ndarray) -> list[np.ndarray]:
    logits, state = model.run(tokens)
    return [logits[0], *(s[:, 0] for s in state)]


def _batched(model: Model, tokens: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The text as row 2 of a batch of other rows (random ids) of its length."""
    others = rng.integers(4, len(model.vocab), (_NEIGHBOURS, tokens.shape[1]))
    batch = np.concatenate([others[:2], tokens, others[2:]]).astype(np.int64)
    logits, state = model.run(batch)
    return [logits[2], *(s[:, 2] for s in state)]


def _chunked(model: Model, tokens: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """The text in calls of ``sizes`` tokens, the last size repeated, the state carried."""
    state, pieces, at, n = None, [], 0, 0
    while at < tokens.shape[1]:
        size = sizes[min(n, len(sizes) - 1)]
        logits, state = model.run(tokens[:, at : at + size], state)
        pieces.append(logits[0])
        at, n = at + size, n + 1
    return [np.concatenate(pieces), *(s[:, 0] for s in state)]


def compare_with_fp32(fp32: Path, quantized: Path, texts: Sequence[Sequence[int]], task: str) -> dict[str, Any]:
    """max |Δ| of the logits and top-1 agreement of the quantized file against the fp32 one."""
    a, b = (load_model(p, providers="cpu", threads=1) for p in (fp32, quantized))
    diff, agree, total = 0.0, 0, 0
    for ids in texts:
        tokens = np.asarray([ids], np.int64)
        x, y = a.run(tokens)[0][0], b.run(tokens)[0][0]
        diff = max(diff, float(np.max(np.abs(x - y))))
        if task == "classify":
            x, y = x[-1:], y[-1:]
        agree += int(np.sum(x.argmax(-1) == y.argmax(-1)))
        total += len(x)
    return {"max_abs_diff": diff, "top1_agreement": agree / total if total else 1.0, "compared": total,
            "what": {"lm": "next token", "classify": "label", "tag": "tag"}[task]}


def step_ratio(fp32: Path, quantized: Path, *, seconds: float = 0.25) -> float:
    """A batch-1, one-token step's time, quantized over fp32 (medians, one thread, CPU)."""
    times = []
    for path in (fp32, quantized):
        model = load_model(path, providers="cpu", threads=1)
        token = np.array([[4 % len(model.vocab)]], np.int64)
        state = model.start_state(1)
        model.run(token, state)  # warm-up
        runs = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(runs) < 5:
            start = time.perf_counter()
            model.run(token, state, out=state)
            runs.append(time.perf_counter() - start)
        times.append(float(np.median(runs)))
    return times[1] / times[0]
