"""Tag results, B/M/E/S words, and tagging text as it arrives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .stream import Stream

if TYPE_CHECKING:
    from .model import Model

__all__ = ["TagResult", "TagStream", "bmes_spans", "bmes_words"]


class TagResult(list):
    """``[(token, tag), ...]`` over the caller's text; ``words`` holds the cut words of a B/M/E/S model.

    ``spans[i]`` is the ``[start, end)`` of token i in the text (for a ``TagStream``: in all the
    text fed since it started).
    """

    def __init__(self, pairs: list[tuple[str, str]], spans: list[tuple[int, int]],
                 words: list[str] | None) -> None:
        super().__init__(pairs)
        self.spans = spans
        self.words = words


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


def _settled_words(tags: Sequence[str]) -> int:
    """How many leading tags end whole words whatever tags come next (0 if none do)."""
    n = len(tags)
    if n and tags[-1] in ("E", "S"):
        return n
    for i in range(n - 1, 0, -1):
        if tags[i] in ("B", "S") or tags[i - 1] in ("E", "S"):
            return i
    return 0


class TagStream:
    """Tags text that arrives in pieces, handing over each token once its tag is settled.

    >>> ts = model.tag_stream()                 # doctest: +SKIP
    >>> ts.feed("我爱北京").words                 # doctest: +SKIP
    ['我', '爱']
    >>> ts.end().words                           # doctest: +SKIP
    ['北京']

    A tag is settled once the tagger has read the ``lookahead`` tokens after it (a word model
    also holds back the trailing text jieba could still cut differently); a B/M/E/S model hands
    over whole words only. Everything ``feed`` and ``end`` return, joined, equals
    ``model.tag(whole_text)`` however the text was cut into pieces. ``peek`` shows the open tail
    as if the text ended now, without changing anything. Like a ``Stream``, a tag stream is for
    one thread at a time; the model it came from is shared.
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._stream = Stream(model)
        self._k = model.metadata.lookahead
        self._bmes = model.metadata.tag_scheme == "bmes"
        self.reset()

    def feed(self, text: str) -> TagResult:
        """Consume ``text``; return the tokens (and words) settled by it, in order."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        self._pending += text
        n = self._model.tokenizer.split_point(self._pending)
        chunk, self._pending = self._pending[:n], self._pending[n:]
        self._consume(chunk)
        return self._hand_over(final=False)

    def end(self, text: str = "") -> TagResult:
        """The text ends (with ``text``, if given): tag everything still open, return it, start over."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        text, self._pending = self._pending + text, ""
        self._consume(text, final=True)
        result = self._hand_over(final=True)
        self.reset()
        return result

    def peek(self) -> TagResult:
        """What ``end()`` would return now, leaving the stream exactly as it is."""
        twin = TagStream.__new__(TagStream)
        twin.__dict__.update(self.__dict__, _stream=self._stream.fork(), _tokens=list(self._tokens),
                             _tags=list(self._tags))
        return twin.end()

    def reset(self) -> None:
        """Back to the start, with nothing fed."""
        self._stream.reset()
        self._pending = ""  # fed text not yet tokenized (a word model's open jieba block)
        self._offset = 0  # where _pending starts in all the text fed since the start
        # consumed, not yet handed over: (text, start, end, the text between it and the token before)
        self._tokens: list[tuple[str, int, int, str]] = []
        self._tail = ""  # consumed text after the last token (whitespace a tokenizer drops)
        self._tags: list[str] = []  # the settled tags of _tokens[:len(_tags)]

    @property
    def pending(self) -> str:
        """Text fed but not yet tokenized (word models only)."""
        return self._pending

    def _consume(self, chunk: str, *, final: bool = False) -> None:
        """Tokenize and run ``chunk``; ``final``: the text ends with it, so read ahead with
        ``lookahead`` pads in the same call (the last tokens' tags come that many steps later)."""
        tokens = self._model.tokenizer.tokenize_spans(chunk)
        base, end = self._offset, 0
        self._offset += len(chunk)
        for t in tokens:
            gap = self._tail + chunk[end : t.start]
            self._tokens.append((chunk[t.start : t.end], base + t.start, base + t.end, gap))
            self._tail, end = "", t.end
        self._tail += chunk[end:]
        ids = self._model.vocab.encode(t.text for t in tokens)
        if final and len(self._tags) < len(self._tokens):
            ids += [self._model.vocab.pad_id] * self._k
        if ids:  # the output at step t is the tag of token t − lookahead
            skip = max(0, self._k - self._stream.consumed)  # outputs before the first token's tag
            logits = self._stream._run_ids(ids)  # (T, n_labels)
            self._tags += [self._model.labels[i] for i in np.argmax(logits[skip:], axis=-1)]

    def _hand_over(self, *, final: bool) -> TagResult:
        n = len(self._tags)
        if self._bmes and not final:
            n = _settled_words(self._tags)
        tokens, tags = self._tokens[:n], self._tags[:n]
        del self._tokens[:n], self._tags[:n]
        words = None
        if self._bmes:  # a word runs from its first token to its last, with the text between them
            words = [tokens[a][0] + "".join(gap + text for text, _, _, gap in tokens[a + 1 : b])
                     for a, b in bmes_spans(tags)]
        return TagResult([(text, tag) for (text, _, _, _), tag in zip(tokens, tags)],
                         [(start, end) for _, start, end, _ in tokens], words)
