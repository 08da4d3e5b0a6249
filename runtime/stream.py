"""``Stream``: one caller's recurrent state over a shared ``Model``."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .engine import check_finite
from .errors import InputError, TaskError
from .snapshot import Key, check_key, pack, unpack

if TYPE_CHECKING:
    from .batcher import StreamBatcher
    from .model import Model, Prediction

FEED_CHARS = 16_384  # text tokenized at a time by feed: fed piece by piece, as a live stream would be

__all__ = ["Stream"]


class Stream:
    """One text being read (or written) token by token, with its own state.

    >>> s = model.stream()            # doctest: +SKIP
    >>> s.feed("这本书很好看。")        # doctest: +SKIP
    >>> s.prediction().label          # doctest: +SKIP
    'pos'

    ``feed`` takes text in any chunks. A word model holds back the trailing text that could
    still change how jieba cuts it (see docs/FORMAT.md, *Chunked input*) until more text or
    ``flush()`` arrives, so ``feed`` returns ``None`` while nothing new was consumed and chunked
    feeding cuts the words of the whole text. A stream is not thread-safe; the model it came
    from is.

    ``model.stream(key=...)`` gives a stream a key: every snapshot it (or a fork of it) takes
    is signed with it, and ``model.stream(snapshot, key=...)`` restores only snapshots signed
    with that key.

    The engine calls (``take_ids``, ``feed_ids``, ``copy_state_into``, ``load``, ``lend``,
    ``take_back``, ``holder``) are how a :class:`StreamBatcher` or a :class:`TagStream` runs a
    stream; an application needs only the rest.
    """

    def __init__(self, model: Model, *, key: Key | None = None) -> None:
        self.model = model
        self._key = check_key(key)  # signs this stream's snapshots (and its forks')
        self._size = len(model.vocab)
        # The stream's own buffers: tokens (1, 1), state (layers, 1, hidden), logits (1, 1, n_out).
        # Multi-token feeds write their new state into the same arrays, so they live as long as
        # the stream (a CPU session may have them bound).
        self._own = model.step_binding(1)
        self._holder: StreamBatcher | None = None  # while a batcher holds the state, in row _row of its binding
        self._row = 0
        self.reset()

    # -- advancing --------------------------------------------------------------------------
    def step(self, token_id: int) -> np.ndarray:
        """Advance one token; return the logits (n_out,) after it.

        Text still held back by ``feed`` is consumed first, so the order is kept.
        """
        token = check_token_id(token_id, self._size)
        if self._holder is not None:
            self.take_back()
        if self._pending:
            self.flush()
        own = self._own
        own.tokens[0, 0] = token
        self._logits = own.step()[0, 0].copy()
        self.consumed += 1
        return self._logits

    def feed(self, text: str) -> np.ndarray | None:
        """Tokenize and consume ``text``; return the logits of the last consumed step, or None
        when nothing new was consumed (a word model holding back an open word)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        logits = None
        for start in range(0, len(text), FEED_CHARS):  # a long text costs the memory of one piece's tokens
            ids = self.take_ids(text[start : start + FEED_CHARS])
            if ids:
                logits = self.feed_ids(ids)
        return logits

    def flush(self) -> np.ndarray | None:
        """Consume any held-back text; return the latest logits (None before any step)."""
        ids = self.take_ids(final=True)
        if ids:
            self.feed_ids(ids)
        return self.logits

    # -- reading ----------------------------------------------------------------------------
    @property
    def logits(self) -> np.ndarray | None:
        """Logits (n_out,) after the last consumed token (for lm: of the next token). Read only.

        None before the first token, except in an lm that learned ``<bos>``: it starts with the
        logits after ``<bos>``."""
        if self._holder is not None:
            return self._holder.binding.logits[self._row, 0].copy()
        return self._logits

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """Copies of the state arrays, each (layers, 1, hidden)."""
        return tuple(a.copy() for a in self._live_state())

    @property
    def pending(self) -> str:
        """Text fed but not yet consumed (word models only)."""
        return self._pending

    def prediction(self) -> Prediction | None:
        """The running classification of what was consumed so far (None before any token)."""
        if self.model.task != "classify":
            raise TaskError(f"prediction() needs a classify model; this is a {self.model.task} model "
                            "(use model.classify() only with a classifier)")
        logits = self.logits
        return None if logits is None else self.model.prediction(logits)

    # -- lifecycle --------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the start state, with nothing pending."""
        self.load(self.model.start_state(), self.model.start_logits(), 0, pending="")

    def fork(self) -> Stream:
        """An independent copy that continues from here (signing its snapshots with the same key)."""
        twin = Stream(self.model, key=self._key)
        twin.load(self._live_state(), self.logits, self.consumed, pending=self._pending)
        return twin

    def snapshot(self, *, key: Key | None = None) -> bytes:
        """The stream as bytes (state, pending text, last logits, a checksum); restore with ``model.stream(b)``.

        With ``key`` (bytes or str; default: the stream's own key, if it was given one) the
        bytes are signed with HMAC-SHA256, and only ``model.stream(b, key=key)`` restores them:
        for snapshots handed to clients that must not forge or edit them.
        """
        key = self._key if key is None else check_key(key)
        return pack(self.model, "stream", self._live_state(), self.logits, pending=self._pending,
                    consumed=self.consumed, key=key)

    @classmethod
    def restore(cls, model: Model, data: bytes, *, key: Key | None = None) -> Stream:
        """The stream ``snapshot()`` wrote, for the model that wrote it.

        With ``key``, only a snapshot signed with that key restores (and the stream keeps the key
        for its own snapshots); without, only an unsigned one.
        """
        key = check_key(key)
        header, state, logits = unpack(model, data, "stream", key=key)
        stream = cls(model, key=key)
        stream.load(state, logits, header["consumed"], pending=header["pending"])
        return stream

    # -- the engine side --------------------------------------------------------------------
    def take_ids(self, text: str = "", *, final: bool = False) -> list[int]:
        """Engine call: add ``text`` to the held-back text and take the ids ready to run now.

        Ready is what tokenizes the same whatever text follows (everything when ``final``). The
        caller runs them on this stream next: ``feed_ids`` or a batcher.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        text = self._pending + text
        n = len(text) if final else self.model.tokenizer.split_point(text)
        self._pending = text[n:]
        return self.model.encode(text[:n]) if n else []

    def feed_ids(self, ids: Sequence[int], *, every: bool = False) -> np.ndarray:
        """Engine call: consume token ids (at least one); return the last step's logits (n_out,),
        or with ``every`` every step's (T, n_out). Long inputs go through in calls of
        ``model.call_length()`` steps, so memory stays bounded unless ``every`` asks for it all.
        Held-back text is not consumed first (``step`` keeps that order)."""
        self.take_back()
        state = self._own.state
        kept = []
        for _, logits in self.model.run_chunks(np.array([ids], np.int64), state):  # tokens (1, T)
            self._logits = logits[0, -1].copy()  # a copy: a view would keep the call's logits alive
            self.consumed += logits.shape[1]
            if every:
                kept.append(logits[0])
        return np.concatenate(kept) if every else self._logits

    def copy_state_into(self, arrays: Sequence[np.ndarray], row: int) -> None:
        """Engine call: copy the state into row ``row`` of ``arrays`` (each (layers, batch, hidden))."""
        for dst, src in zip(arrays, self._live_state()):
            np.copyto(dst[:, row : row + 1], src)

    def load(self, state: Sequence[np.ndarray], logits: np.ndarray | None, consumed: int, *,
             pending: str | None = None) -> None:
        """Engine call: make ``state`` (arrays (layers, 1, hidden)), ``logits`` and ``consumed``
        this stream's own (copied), and ``pending`` its held-back text when given."""
        self.take_back()
        for src in state:
            check_finite(np.asarray(src, np.float32), "state", given=True)
        if logits is not None:
            check_finite(np.asarray(logits, np.float32), "logits", given=True)
        for own, src in zip(self._own.state, state):
            np.copyto(own, src)
        self._logits = None if logits is None else np.array(logits, np.float32)
        self.consumed = consumed
        if pending is not None:
            self._pending = pending

    @property
    def holder(self) -> StreamBatcher | None:
        """The batcher holding this stream's state in its binding, or None."""
        return self._holder

    def lend(self, batcher: StreamBatcher, row: int) -> None:
        """Engine call: the state now lives in row ``row`` of ``batcher.binding`` (copied there by it)."""
        self._holder, self._row = batcher, row

    def take_back(self) -> None:
        """Engine call: copy the state back from the batcher holding it, before changing it alone."""
        holder = self._holder
        if holder is None:
            return
        binding, row = holder.binding, self._row
        for own, held in zip(self._own.state, binding.state):
            np.copyto(own, held[:, row : row + 1])
        self._logits = binding.logits[row, 0].copy()
        self._holder = None
        holder.released(self)

    def _live_state(self) -> list[np.ndarray]:
        """The current state arrays (views into a batcher's arrays while it holds them)."""
        if self._holder is not None:
            binding, row = self._holder.binding, self._row
            return [a[:, row : row + 1] for a in binding.state]
        return self._own.state


def check_token_id(token_id: int, size: int) -> int:
    try:
        token = operator.index(token_id)
    except TypeError:
        raise TypeError(f"a token id must be an int, got {type(token_id).__name__}") from None
    if not 0 <= token < size:
        raise InputError(f"token id {token} is outside the vocabulary (0..{size - 1})")
    return token
