"""Reading B/M/E/S character tags as words."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["bmes_spans", "bmes_words"]


def bmes_spans(tags: Sequence[str]) -> list[tuple[int, int]]:
    """Word spans ``[start, end)`` from B/M/E/S tags.

    A word starts at ``B`` or ``S`` and right after ``E`` or ``S``; so an ill-formed sequence
    (``M`` with no ``B`` before it, a ``B`` never closed) still cuts every character into
    exactly one word.

    >>> bmes_spans(["B", "E", "S", "B", "M", "E"])
    [(0, 2), (2, 3), (3, 6)]
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(tags)):
        if tags[i] in ("B", "S") or tags[i - 1] in ("E", "S"):
            spans.append((start, i))
            start = i
    if tags:
        spans.append((start, len(tags)))
    return spans


def bmes_words(chars: Sequence[str], tags: Sequence[str]) -> list[str]:
    """The words of ``chars`` cut by ``tags``."""
    return ["".join(chars[a:b]) for a, b in bmes_spans(tags)]
