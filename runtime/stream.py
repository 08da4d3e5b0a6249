"""Streams own recurrent state; a batcher steps many of them in one session call."""

from __future__ import annotations

import json
import operator
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError, StateError, TaskError

if TYPE_CHECKING:
    from .model import Model, Prediction

__all__ = ["Stream", "StreamBatcher"]

_MAGIC = b"RNNKSNAP"
_SNAPSHOT_VERSION = 1
_HEADER = struct.Struct("<8sHI")  # magic, version, header length


class Stream:
    """One text being read (or written) token by token, with its own state.

    >>> s = model.stream()            # doctest: +SKIP
    >>> s.feed("这本书")               # doctest: +SKIP
    >>> s.prediction().label          # doctest: +SKIP
    'pos'

    ``feed`` takes text in any chunks. A word model holds back the trailing text that could
    still change how jieba cuts it (the last run of Chinese/alphanumeric characters) until
    more text or ``flush()`` arrives, so chunked feeding cuts exactly the words of the whole
    text. A stream is not thread-safe; the model it came from is.
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._names = model._input_names
        self._tokens = np.zeros((1, 1), np.int64)  # (1, 1), reused by every step
        self.reset()

    # -- advancing --------------------------------------------------------------------------
    def step(self, token_id: int) -> np.ndarray:
        """Advance one token; return the logits (n_out,) after it.

        Text still held back by ``feed`` is consumed first, so the order is kept.
        """
        if self._pending:
            self.flush()
        try:
            token = operator.index(token_id)
        except TypeError:
            raise TypeError(f"token_id must be an int, got {type(token_id).__name__}") from None
        if not 0 <= token < self._size:
            raise InputError(f"token id {token} is outside the vocabulary (0..{self._size - 1})")
        self._tokens[0, 0] = token
        self._feed[self._names[0]] = self._tokens
        out = self._run(None, self._feed)
        self._set(out)
        self.consumed += 1
        return self._logits

    def feed(self, text: str) -> np.ndarray | None:
        """Tokenize and consume ``text``; return the logits of the last consumed step, or None."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        self._pending += text
        tokenizer = self._model.tokenizer
        n = tokenizer.split_point(self._pending)
        if n == 0:
            return None
        chunk, self._pending = self._pending[:n], self._pending[n:]
        return self._advance(self._model.encode(chunk))

    def flush(self) -> np.ndarray | None:
        """Consume any held-back text; return the latest logits (None before any step)."""
        if self._pending:
            chunk, self._pending = self._pending, ""
            self._advance(self._model.encode(chunk))
        return self._logits

    def _advance(self, ids: list[int]) -> np.ndarray | None:
        if not ids:
            return None
        self._feed[self._names[0]] = np.array([ids], np.int64)  # (1, T)
        self._set(self._run(None, self._feed))
        self.consumed += len(ids)
        return self._logits

    def _set(self, out: list[np.ndarray]) -> None:
        self._logits = out[0][0, -1]
        for name, value in zip(self._names[1:], out[1:]):
            self._feed[name] = value

    # -- reading ----------------------------------------------------------------------------
    @property
    def logits(self) -> np.ndarray | None:
        """Logits (n_out,) after the last consumed token (for lm: of the next token)."""
        return self._logits

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """Copies of the state arrays, each (layers, 1, hidden)."""
        return tuple(self._feed[n].copy() for n in self._names[1:])

    @property
    def pending(self) -> str:
        """Text fed but not yet consumed (word models only)."""
        return self._pending

    def prediction(self) -> Prediction | None:
        """The running classification of what was consumed so far (None before any token)."""
        if self._model.task != "classify":
            raise TaskError(f"prediction() needs a classify model; this is a {self._model.task} model")
        return None if self._logits is None else self._model.prediction(self._logits)

    # -- lifecycle --------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the start state, with nothing pending."""
        m = self._model
        self._run = m._session.run
        self._size = len(m.vocab)
        self._feed = {self._names[0]: self._tokens}
        for name, s in zip(self._names[1:], m._start_state):
            self._feed[name] = s.copy()
        self._logits = None if m._start_logits is None else m._start_logits.copy()
        self._pending = ""
        self.consumed = 0

    def fork(self) -> Stream:
        """An independent copy that continues from here."""
        twin = Stream(self._model)
        twin._copy_from(self)
        return twin

    def _copy_from(self, other: Stream) -> None:
        for name in self._names[1:]:
            self._feed[name] = other._feed[name].copy()
        self._logits = None if other._logits is None else other._logits.copy()
        self._pending = other._pending
        self.consumed = other.consumed

    def snapshot(self) -> bytes:
        """The stream as bytes (state, pending text, last logits); restore with ``model.stream(b)``."""
        header = json.dumps({
            "model": self._model.identity, "states": len(self._names) - 1,
            "shape": list(self._feed[self._names[1]].shape), "pending": self._pending,
            "consumed": self.consumed, "logits": None if self._logits is None else int(self._logits.size),
        }).encode("utf-8")
        arrays = [self._feed[n] for n in self._names[1:]]
        if self._logits is not None:
            arrays.append(self._logits)
        body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
        return _HEADER.pack(_MAGIC, _SNAPSHOT_VERSION, len(header)) + header + body

    @classmethod
    def restore(cls, model: Model, data: bytes) -> Stream:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a snapshot is bytes, got {type(data).__name__}")
        data = bytes(data)
        try:
            magic, version, size = _HEADER.unpack_from(data)
            header = json.loads(data[_HEADER.size : _HEADER.size + size].decode("utf-8"))
        except (struct.error, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StateError("this is not a stream snapshot (or it is truncated)") from e
        if magic != _MAGIC or version != _SNAPSHOT_VERSION or not isinstance(header, dict):
            raise StateError("this is not a stream snapshot of this rnnkit version")
        if header.get("model") != model.identity:
            raise StateError("this snapshot was taken from another model; restore it with the model that made it")
        stream = cls(model)
        shapes = [tuple(stream._feed[n].shape) for n in stream._names[1:]]
        n_logits = header.get("logits")
        sizes = [int(np.prod(s)) for s in shapes] + ([n_logits] if n_logits else [])
        body = data[_HEADER.size + size :]
        if header.get("states") != len(shapes) or len(body) != 4 * sum(sizes):
            raise StateError("this snapshot is truncated or corrupt")
        flat = np.frombuffer(body, dtype="<f4").astype(np.float32)
        offset = 0
        for name, shape, n in zip(stream._names[1:], shapes, sizes):
            stream._feed[name] = flat[offset : offset + n].reshape(shape).copy()
            offset += n
        stream._logits = flat[offset:].copy() if n_logits else None
        stream._pending = str(header.get("pending", ""))
        stream.consumed = int(header.get("consumed", 0))
        return stream


class StreamBatcher:
    """Advances many streams of one model together: one session call per step, not per stream.

    States are stacked on the batch axis, run, and scattered back; each stream afterwards is
    exactly what stepping it alone would have made it.

    >>> b = model.batcher()                    # doctest: +SKIP
    >>> logits = b.step(streams, token_ids)    # (len(streams), n_out)  # doctest: +SKIP
    """

    def __init__(self, model: Model) -> None:
        self._model = model

    def step(self, streams: Sequence[Stream], token_ids: Sequence[int]) -> np.ndarray:
        """One token per stream; returns logits (B, n_out)."""
        streams = self._check(streams)
        if len(token_ids) != len(streams):
            raise InputError(f"{len(streams)} streams but {len(token_ids)} token ids")
        for s in streams:
            if s._pending:
                s.flush()
        size = len(self._model.vocab)
        tokens = np.empty((len(streams), 1), np.int64)  # (B, 1)
        for row, t in enumerate(token_ids):
            t = operator.index(t)
            if not 0 <= t < size:
                raise InputError(f"token id {t} is outside the vocabulary (0..{size - 1})")
            tokens[row, 0] = t
        logits = self._run(streams, tokens)
        for s in streams:
            s.consumed += 1
        return logits[:, -1]

    def feed(self, streams: Sequence[Stream], texts: Sequence[str]) -> list[np.ndarray | None]:
        """Feed one text chunk per stream; returns each stream's latest logits (None if nothing consumed)."""
        streams = self._check(streams)
        if len(texts) != len(streams):
            raise InputError(f"{len(streams)} streams but {len(texts)} texts")
        ids = []
        for s, text in zip(streams, texts):
            if not isinstance(text, str):
                raise TypeError(f"text must be str, got {type(text).__name__}")
            s._pending += text
            n = self._model.tokenizer.split_point(s._pending)
            chunk, s._pending = s._pending[:n], s._pending[n:]
            ids.append(self._model.encode(chunk) if chunk else [])
        done = [0] * len(streams)
        result: list[np.ndarray | None] = [None] * len(streams)
        while True:
            active = [i for i in range(len(streams)) if done[i] < len(ids[i])]
            if not active:
                return result
            # every active stream has at least `width` tokens left: one call moves them all
            width = min(len(ids[i]) - done[i] for i in active)
            tokens = np.array([ids[i][done[i] : done[i] + width] for i in active], np.int64)  # (B, width)
            self._run([streams[i] for i in active], tokens)
            for i in active:
                done[i] += width
                streams[i].consumed += width
                result[i] = streams[i]._logits

    def _run(self, streams: list[Stream], tokens: np.ndarray) -> np.ndarray:
        names = self._model._input_names
        state = [np.concatenate([s._feed[n] for s in streams], axis=1) for n in names[1:]]  # (L, B, H)
        logits, new = self._model.run(tokens, state)  # (B, T, n_out)
        for row, s in enumerate(streams):
            for name, value in zip(names[1:], new):
                s._feed[name] = np.ascontiguousarray(value[:, row : row + 1])
            s._logits = logits[row, -1].copy()
        return logits

    def _check(self, streams: Sequence[Stream]) -> list[Stream]:
        streams = list(streams)
        for s in streams:
            if not isinstance(s, Stream) or s._model is not self._model:
                raise StateError("every stream must come from the batcher's model (model.stream())")
        if len({id(s) for s in streams}) != len(streams):
            raise InputError("the same stream appears twice in one batch")
        return streams
