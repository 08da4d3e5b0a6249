"""Tag results, B/M/E/S words, and tagging text as it arrives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import StateError
from .snapshot import Key, check_key, pack, unpack
from .stream import Stream

if TYPE_CHECKING:
    from .model import Model

__all__ = ["TagResult", "TagStream", "bmes_spans", "bmes_words", "join_tags"]


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


def join_tags(parts: Sequence[TagResult]) -> TagResult:
    """What a tag stream returned piece by piece, as one result (``feed``s, then ``end``)."""
    pairs = [pair for part in parts for pair in part]
    spans = [span for part in parts for span in part.spans]
    words = None if any(part.words is None for part in parts) else [w for part in parts for w in part.words]
    return TagResult(pairs, spans, words)


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


@dataclass
class _Open:
    """What a tag stream has read but not yet handed over."""

    pending: str = ""  # fed text not yet tokenized (a word model's open jieba block)
    offset: int = 0  # where `pending` starts in all the text fed since the start
    # consumed, not handed over: (text, start, end, the text between it and the token before)
    tokens: list[tuple[str, int, int, str]] = field(default_factory=list)
    tail: str = ""  # consumed text after the last token (whitespace a tokenizer drops)
    tags: list[str] = field(default_factory=list)  # the settled tags of tokens[:len(tags)]

    def copy(self) -> _Open:
        return _Open(self.pending, self.offset, list(self.tokens), self.tail, list(self.tags))

    def to_json(self) -> dict[str, Any]:
        """The snapshot header's ``"tag"`` object (``pending`` travels in the header itself)."""
        return {"offset": self.offset, "tokens": [list(t) for t in self.tokens], "tail": self.tail,
                "tags": self.tags}

    @classmethod
    def from_json(cls, value: Any, pending: str, labels: Sequence[str], *, consumed: int, lookahead: int) -> _Open:
        """Check a snapshot's ``"tag"`` object field by field (it is untrusted) and rebuild it.

        The open tokens must fit the state's counter too: the tags of the last
        ``min(consumed, lookahead)`` tokens read are not known yet, and those are the untagged ones.
        """
        bad = StateError("this tag stream snapshot is corrupt (its open tokens do not fit the model)")
        if not isinstance(value, dict) or set(value) != {"offset", "tokens", "tail", "tags"}:
            raise bad
        offset, tokens, tail, tags = value["offset"], value["tokens"], value["tail"], value["tags"]
        if type(offset) is not int or offset < 0 or not isinstance(tail, str) or not isinstance(tokens, list):
            raise bad
        if not isinstance(tags, list) or len(tags) > len(tokens) or not all(isinstance(t, str) and t in labels
                                                                            for t in tags):
            raise bad
        checked, previous = [], 0
        for t in tokens:
            if not (isinstance(t, list) and len(t) == 4 and isinstance(t[0], str) and t[0]
                    and type(t[1]) is int and type(t[2]) is int and isinstance(t[3], str)
                    and previous <= t[1] < t[2] <= offset):
                raise bad
            checked.append((t[0], t[1], t[2], t[3]))
            previous = t[2]
        if len(checked) - len(tags) != min(consumed, lookahead):
            raise bad
        return cls(pending, offset, checked, tail, list(tags))


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
    as if the text ended now, without changing anything.

    A tag stream is a full stream: ``snapshot()`` (restore with ``model.tag_stream(snapshot)``;
    signed when it was given a key, as a ``Stream`` is), ``fork()``, ``reset()``, and a
    ``StreamBatcher`` feeds many at once. ``stream`` is the :class:`Stream` holding its recurrent
    state (read it; stepping it directly would put it out of step with the tokens). Like a
    ``Stream``, a tag stream is for one thread at a time; the model it came from is shared.
    """

    def __init__(self, model: Model, *, stream: Stream | None = None, held: _Open | None = None,
                 key: Key | None = None) -> None:
        # ``stream`` and ``held``: the parts of a forked or restored tag stream
        self.model = model
        self._key = check_key(key)  # signs this tag stream's snapshots (and its forks')
        self.stream = Stream(model, key=key) if stream is None else stream  # its snapshots signed alike
        self._k = model.metadata.lookahead
        self._bmes = model.metadata.tag_scheme == "bmes"
        self._open = _Open() if held is None else held

    def feed(self, text: str) -> TagResult:
        """Consume ``text``; return the tokens (and words) settled by it, in order."""
        return self.accept(self._run(self.take_ids(text)))

    def end(self, text: str = "") -> TagResult:
        """The text ends (with ``text``, if given): tag everything still open, return it, start over."""
        return self.accept(self._run(self.take_ids(text, final=True)), final=True)

    def peek(self) -> TagResult:
        """What ``end()`` would return now, leaving the stream exactly as it is."""
        return self.fork().end()

    def reset(self) -> None:
        """Back to the start, with nothing fed."""
        self.stream.reset()
        self._open = _Open()

    def fork(self) -> TagStream:
        """An independent copy that continues from here."""
        return TagStream(self.model, stream=self.stream.fork(), held=self._open.copy(), key=self._key)

    def snapshot(self, *, key: Key | None = None) -> bytes:
        """The tag stream as bytes, in the stream snapshot format; restore with ``model.tag_stream(b)``.

        With ``key`` (default: the tag stream's own key, if it was given one) the bytes are
        signed with HMAC-SHA256, as ``Stream.snapshot`` does.
        """
        s = self.stream
        key = self._key if key is None else check_key(key)
        return pack(self.model, "tag", s.state, s.logits, pending=self._open.pending, consumed=s.consumed,
                    extra=self._open.to_json(), key=key)

    @classmethod
    def restore(cls, model: Model, data: bytes, *, key: Key | None = None) -> TagStream:
        """The tag stream ``snapshot()`` wrote, for the model that wrote it (with ``key``: signed with it)."""
        key = check_key(key)
        header, state, logits = unpack(model, data, "tag", key=key)
        held = _Open.from_json(header.get("tag"), header["pending"], model.labels, consumed=header["consumed"],
                               lookahead=model.metadata.lookahead)
        stream = Stream(model, key=key)
        stream.load(state, logits, header["consumed"])
        return cls(model, stream=stream, held=held, key=key)

    @property
    def pending(self) -> str:
        """Text fed but not yet tokenized (word models only)."""
        return self._open.pending

    # -- the engine side --------------------------------------------------------------------
    def take_ids(self, text: str = "", *, final: bool = False) -> list[int]:
        """Engine call: add ``text`` and take the ids to run now (with ``final``, the rest of the
        text and the ``lookahead`` pads that read past it); the caller runs them on ``stream``
        and passes every step's logits to ``accept``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        held, tokenizer = self._open, self.model.tokenizer
        text = held.pending + text
        n = len(text) if final else tokenizer.split_point(text)
        chunk, held.pending = text[:n], text[n:]
        tokens = tokenizer.tokenize_spans(chunk)
        base, end = held.offset, 0
        held.offset += len(chunk)
        for t in tokens:
            gap = held.tail + chunk[end : t.start]
            held.tokens.append((chunk[t.start : t.end], base + t.start, base + t.end, gap))
            held.tail, end = "", t.end
        held.tail += chunk[end:]
        ids = self.model.vocab.encode(t.text for t in tokens)
        if final and len(held.tags) < len(held.tokens):
            ids += [self.model.vocab.pad_id] * self._k
        return ids

    def accept(self, logits: np.ndarray, *, final: bool = False) -> TagResult:
        """Engine call: take every step's logits (T, n_labels) of the ids ``take_ids`` gave (run on
        ``stream``); return the tokens they settle (all of them when ``final``, which starts over)."""
        held = self._open
        if len(logits):  # the output at step t is the tag of token t − lookahead
            skip = max(0, self._k - (self.stream.consumed - len(logits)))  # outputs before the first token's tag
            held.tags += [self.model.labels[i] for i in np.argmax(logits[skip:], axis=-1)]
        n = len(held.tags)
        if self._bmes and not final:
            n = _settled_words(held.tags)
        tokens, tags = held.tokens[:n], held.tags[:n]
        del held.tokens[:n], held.tags[:n]
        words = None
        if self._bmes:  # a word runs from its first token to its last, with the text between them
            words = [tokens[a][0] + "".join(gap + text for text, _, _, gap in tokens[a + 1 : b])
                     for a, b in bmes_spans(tags)]
        result = TagResult([(text, tag) for (text, _, _, _), tag in zip(tokens, tags)],
                           [(start, end) for _, start, end, _ in tokens], words)
        if final:
            self.reset()
        return result

    def _run(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.empty((0, self.model.n_out), np.float32)
        return self.stream.feed_ids(ids, every=True)
