"""``StreamBatcher``: many streams of one model advanced in one session call."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .engine import StepBinding
from .errors import InputError, StateError
from .stream import Stream, check_token_id
from .tagging import TagResult, TagStream

if TYPE_CHECKING:
    from .model import Model

__all__ = ["StreamBatcher"]

AnyStream = Stream | TagStream


class StreamBatcher:
    """Advances many streams of one model together: one session call per step, not per stream.

    ``step`` gives each stream one token id; ``feed`` one piece of text each, and ``flush`` ends
    what each holds back — for plain streams and tag streams alike (a server tagging many live
    transcripts at once). Each stream always reads exactly as if it had been run alone.

    After a ``step`` the batcher keeps the stacked state in its own binding, so stepping the same
    streams again (the serving loop) costs one session call and no per-stream copying; a stream
    takes its state back the moment it is used on its own. A batcher, like a stream, is for one
    thread at a time.

    >>> b = model.batcher()                    # doctest: +SKIP
    >>> logits = b.step(streams, token_ids)    # (len(streams), n_out)  # doctest: +SKIP
    >>> tags = b.feed(tag_streams, pieces)     # a TagResult per tag stream  # doctest: +SKIP
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._binding: StepBinding | None = None  # holds the members' state, row by row
        self._members: tuple[Stream, ...] = ()
        self._whole = False  # every member still lives in the binding

    @property
    def binding(self) -> StepBinding | None:
        """Engine call: the buffers holding the member streams' state (row i: the i-th member)."""
        return self._binding

    def released(self, stream: Stream) -> None:
        """Engine call: a member took its state back; the next step gathers the rows again."""
        self._whole = False

    def step(self, streams: Sequence[Stream], token_ids: Sequence[int]) -> np.ndarray:
        """One token per stream; returns logits (B, n_out)."""
        if not isinstance(streams, (list, tuple)):
            streams = list(streams)
        if not isinstance(token_ids, (list, tuple, np.ndarray)):
            token_ids = list(token_ids)
        if len(streams) == 1 and len(token_ids) == 1:  # nothing to batch: the stream's own step is cheaper
            return self._check(streams, text=False)[0].step(token_ids[0])[None]
        fast = self._whole and len(streams) == len(self._members) and all(map(operator.is_, streams,
                                                                              self._members))
        streams = list(streams) if fast else self._check(streams, text=False)
        tokens = self._tokens(token_ids, len(streams))  # (B, 1)
        if not streams:
            return np.empty((0, self.model.n_out), np.float32)
        binding = self._binding if fast else self._hold(streams)
        np.copyto(binding.tokens, tokens)
        logits = binding.step()  # (B, 1, n_out)
        for s in streams:
            s.consumed += 1
        return logits[:, 0].copy()

    def feed(self, streams: Sequence[AnyStream], texts: Sequence[str]) -> list[np.ndarray | TagResult | None]:
        """Feed one piece of text per stream, all in as few session calls as the lengths allow.

        Returns, per stream, what its own ``feed`` would: a stream's latest logits (None if
        nothing was consumed), a tag stream's newly settled tokens.
        """
        streams = self._check(streams, text=True)
        texts = list(texts)
        if len(texts) != len(streams):
            raise InputError(f"{len(streams)} streams but {len(texts)} texts")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"text must be str, got {type(text).__name__}")
        self.model.call_length(len(streams))  # a batch that cannot fit is refused before any text is taken
        return self._run_text(streams, [s.take_ids(t) for s, t in zip(streams, texts)], final=False)

    def flush(self, streams: Sequence[AnyStream]) -> list[np.ndarray | TagResult | None]:
        """End what each stream holds back, in as few session calls as the lengths allow.

        Returns, per stream, what its own ``flush`` would (a stream's latest logits), or for a
        tag stream what ``end()`` would: the rest of its text tagged, the tag stream started over.
        """
        streams = self._check(streams, text=True)
        self.model.call_length(len(streams))
        return self._run_text(streams, [s.take_ids(final=True) for s in streams], final=True)

    # -- the calls --------------------------------------------------------------------------
    def _hold(self, streams: list[Stream]) -> StepBinding:
        """Gather ``streams`` into the binding (their rows) and make them the members."""
        for s in streams:
            s.take_back()
            if s.pending:
                s.flush()
        for s in self._members:  # the old members still here take their state back first
            if s.holder is self:
                s.take_back()
        if self._binding is None or self._binding.batch != len(streams):
            self._binding = self.model.step_binding(len(streams))
        binding = self._binding
        for row, s in enumerate(streams):
            s.copy_state_into(binding.state, row)
            s.lend(self, row)
        self._members = tuple(streams)
        self._whole = True
        return binding

    def _run_text(self, streams: list[AnyStream], ids: list[list[int]], *, final: bool,
                  ) -> list[np.ndarray | TagResult | None]:
        tagging = [isinstance(s, TagStream) for s in streams]
        cores = [s.stream if tag else s for s, tag in zip(streams, tagging)]
        steps = self._run_ids(cores, ids, keep=tagging)
        results: list[np.ndarray | TagResult | None] = []
        for s, core, tag, n, every in zip(streams, cores, tagging, map(len, ids), steps):
            if tag:
                results.append(s.accept(every, final=final))
            else:
                results.append(core.logits if n or final else None)
        return results

    def _run_ids(self, cores: list[Stream], ids: list[list[int]], keep: list[bool]) -> list[np.ndarray]:
        """Run each stream's ids, batched while several have ids left; returns, where ``keep``,
        every step's logits (T, n_out) of that stream."""
        for s in cores:
            s.take_back()
        done = [0] * len(cores)
        kept: list[list[np.ndarray]] = [[] for _ in cores]
        while True:
            active = [i for i in range(len(cores)) if done[i] < len(ids[i])]
            if not active:
                break
            # every active stream has at least `width` ids left: one call moves them all
            width = min(min(len(ids[i]) - done[i] for i in active), self.model.call_length(len(active)))
            tokens = np.array([ids[i][done[i] : done[i] + width] for i in active], np.int64)  # (B, width)
            state = self.model.metadata.zero_state(len(active))  # (L, B, H) each
            for row, i in enumerate(active):
                cores[i].copy_state_into(state, row)
            logits, _ = self.model.run(tokens, state, out=state)  # (B, width, n_out)
            for row, i in enumerate(active):
                s = cores[i]
                s.load([a[:, row : row + 1] for a in state], logits[row, -1], s.consumed + width)
                if keep[i]:
                    kept[i].append(logits[row])
                done[i] += width
        empty = np.empty((0, self.model.n_out), np.float32)
        return [np.concatenate(k) if k else empty for k in kept]

    # -- checks -----------------------------------------------------------------------------
    def _tokens(self, token_ids: Sequence[int], n: int) -> np.ndarray:
        size = len(self.model.vocab)
        ids = np.asarray(token_ids)
        if ids.shape != (n,):
            if len(token_ids) != n:
                raise InputError(f"{n} streams but {len(token_ids)} token ids")
            ids = np.array([check_token_id(t, size) for t in token_ids], np.int64)
        elif ids.dtype.kind not in "iu" or (n and (ids.min() < 0 or ids.max() >= size)):
            ids = np.array([check_token_id(t, size) for t in token_ids], np.int64)  # raises the precise error
        return ids.astype(np.int64, copy=False).reshape(n, 1)

    def _check(self, streams: Sequence[AnyStream], *, text: bool) -> list:
        streams = list(streams)
        for s in streams:
            if not isinstance(s, (Stream, TagStream)) or s.model is not self.model:
                raise StateError("every stream must come from the batcher's model (model.stream() or "
                                 "model.tag_stream())")
            if isinstance(s, TagStream) and not text:
                raise TypeError("a tag stream reads text, not token ids: use batcher.feed() and batcher.flush()")
        cores = [s.stream if isinstance(s, TagStream) else s for s in streams]
        if len({id(s) for s in cores}) != len(cores):
            raise InputError("the same stream appears twice in one batch")
        return streams
