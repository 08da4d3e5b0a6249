"""``StepBinding``: one-token steps of a fixed batch over buffers it owns.

The engine call under every stream and batcher. A step is one session call with no feed dict
and no output allocation: on a CPU session the buffers are bound once with onnxruntime's
IOBinding (measured: 17 → 12 µs a step on a tiny model); elsewhere (a GPU session, where a
binding to host memory would copy every step) it is a plain ``session.run`` whose outputs are
copied into the same buffers, so callers see one behaviour.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .contract import ModelSpec
from .errors import NonFiniteError

__all__ = ["StepBinding", "check_finite"]


class StepBinding:
    """Buffers for ``batch`` rows and the call that advances them one token.

    >>> b = model.step_binding(batch=2)       # doctest: +SKIP
    >>> b.tokens[:, 0] = [5, 9]               # (B, 1) int64: the next token of each row
    >>> logits = b.step()                     # (B, 1, n_out); b.state is the new state

    ``state`` is the list of arrays, each (layers, batch, hidden), that the next ``step`` reads;
    write into them (never rebind them) to set a row's state. A step reads one set of state
    arrays and writes the other, then the two swap, so ``state`` names different arrays after
    every step: read it again after stepping. ``logits`` is overwritten by the next step; a step
    whose logits are not finite raises :class:`NonFiniteError` and leaves ``state`` as it was.
    A binding is for one thread at a time; the session under it is shared.
    """

    def __init__(self, session: Any, spec: ModelSpec, batch: int, *, iobinding: bool) -> None:
        self.batch = batch
        self.iobinding = iobinding
        self._session = session
        self._spec = spec
        self.tokens = np.zeros((batch, 1), np.int64)  # (B, 1)
        # (B, 1, n_out), made on first use: a stream that only a batcher steps never needs its own
        self._logits: np.ndarray | None = None
        self._finite: np.ndarray | None = None  # where step() writes which logits are finite
        self._sides = (spec.zero_state(batch), spec.zero_state(batch))  # each: n arrays (L, B, H)
        self._side = 0
        self._bound: list[Any] | None = None  # the two IOBindings, made on the first step

    @property
    def logits(self) -> np.ndarray:
        """The last step's logits (B, 1, n_out); overwritten by the next step."""
        if self._logits is None:
            self._logits = np.zeros((self.batch, 1, self._spec.n_out), np.float32)
            self._finite = np.empty(self._logits.shape, bool)
        return self._logits

    @property
    def state(self) -> list[np.ndarray]:
        """The state arrays the next step reads, each (layers, batch, hidden)."""
        return self._sides[self._side]

    def step(self) -> np.ndarray:
        """Advance every row by its token in ``tokens``; return ``logits`` (B, 1, n_out)."""
        if self.iobinding:
            if self._bound is None:
                self._bound = [self._bind(side) for side in (0, 1)]
            self._session.run_with_iobinding(self._bound[self._side])
        else:
            out = self._session.run(None, self._spec.feed(self.tokens, self._sides[self._side]))
            np.copyto(self.logits, out[0])
            for dst, src in zip(self._sides[1 - self._side], out[1:]):
                np.copyto(dst, src)
        logits = self.logits
        if not np.isfinite(logits, out=self._finite).all():  # before the swap: every row keeps its state
            check_finite(logits, "logits")
        self._side ^= 1
        return self.logits

    def _bind(self, side: int) -> Any:
        """An IOBinding reading state set ``side`` and writing the other one."""
        import onnxruntime

        wrap = onnxruntime.OrtValue.ortvalue_from_numpy  # on CPU: shares the numpy array's memory
        spec = self._spec
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(spec.input_names[0], wrap(self.tokens))
        for name, array in zip(spec.input_names[1:], self._sides[side]):
            binding.bind_ortvalue_input(name, wrap(array))
        binding.bind_ortvalue_output(spec.output_names[0], wrap(self.logits))
        for name, array in zip(spec.output_names[1:], self._sides[1 - side]):
            binding.bind_ortvalue_output(name, wrap(array))
        return binding


def check_finite(array: np.ndarray, what: str, *, given: bool = False) -> None:
    """Raise :class:`NonFiniteError` if ``array`` holds NaN or ±inf.

    ``given``: the array came from the caller (a state to start from), not from the model.
    (``np.isfinite``, not a BLAS product: BLAS threads left spinning after one would slow the
    session call that follows.)
    """
    if np.isfinite(array).all():
        return
    if given:
        raise NonFiniteError(f"the {what} given holds NaN or infinite values; start from model.start_state() "
                             "or a good snapshot")
    raise NonFiniteError(f"the model gave NaN or infinite {what}: its weights or the state it was given are "
                         "corrupt; reload the model and restart the stream (or restore a good snapshot)")
