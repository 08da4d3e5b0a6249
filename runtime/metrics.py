"""Scores of predictions against gold answers, in numpy: what training's validation and
``Model.evaluate`` both report.

>>> m = confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], 2)
>>> m.tolist()
[[1, 1], [0, 2]]
>>> round(macro_f1(m), 4)
0.7333
>>> word_prf([{(0, 2), (2, 3)}], [{(0, 2), (2, 3)}])
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import InputError

__all__ = ["class_scores", "confusion_matrix", "macro_f1", "perplexity", "word_prf"]


def perplexity(loss: float) -> float:
    """``exp(loss)`` of a mean loss in nats a token, capped at e^50 so a diverged model reads as huge, not inf.

    >>> round(perplexity(1.0), 4), perplexity(1e6) == math.exp(50)
    (2.7183, True)
    """
    return math.exp(min(loss, 50.0))


def confusion_matrix(gold: Sequence[int], pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes) int64: rows are gold class ids, columns predicted ones."""
    gold_ids, pred_ids = np.asarray(gold, np.int64), np.asarray(pred, np.int64)
    if gold_ids.shape != pred_ids.shape or gold_ids.ndim != 1:
        raise InputError(f"gold and pred must be two id lists of one length, got shapes {gold_ids.shape} and "
                         f"{pred_ids.shape}")
    if gold_ids.size and (min(gold_ids.min(), pred_ids.min()) < 0 or max(gold_ids.max(), pred_ids.max()) >= n_classes):
        raise InputError(f"class ids must be in 0..{n_classes - 1}")
    counts = np.bincount(gold_ids * n_classes + pred_ids, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _prf(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 (n,) float64; 0 where a class has no predictions or no gold."""
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    precision = tp / np.maximum(confusion.sum(0), 1)
    recall = tp / np.maximum(confusion.sum(1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return precision, recall, f1


def macro_f1(confusion: np.ndarray) -> float:
    """The mean F1 over every class of ``confusion`` (rows gold, columns predicted).

    A class with no gold examples and no predictions counts as F1 0: the figure is over the
    model's classes, not over those a sample happens to hold.
    """
    if not len(confusion):
        return 0.0
    return float(_prf(confusion)[2].mean())


def class_scores(confusion: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """``{label: {"precision", "recall", "f1", "support"}}`` in the order of ``labels``
    (``support``: the gold examples of that class)."""
    precision, recall, f1 = _prf(confusion)
    support = np.asarray(confusion).sum(1)
    return {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])} for i, label in enumerate(labels)}


def word_prf(gold: Iterable[set], pred: Iterable[set]) -> tuple[float, float, float]:
    """Precision, recall and F1 of predicted word spans against gold spans (one set per sentence)."""
    hit = n_gold = n_pred = 0
    for g, p in zip(gold, pred):
        hit += len(g & p)
        n_gold += len(g)
        n_pred += len(p)
    precision = hit / n_pred if n_pred else 0.0
    recall = hit / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
