"""Mixed precision for a training step: CUDA autocast in bf16 or fp16, fp16 with a gradient scaler."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from typing import Any

import torch

from rnnkit.runtime.errors import CheckpointError, ConfigError

from .config import AMP_MODES

__all__ = ["Precision"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# What torch.amp.GradScaler.state_dict() holds, and the type of each.
_SCALER_STATE = {"scale": float, "growth_factor": float, "backoff_factor": float, "growth_interval": int,
                 "_growth_tracker": int}


class Precision:
    """How a step computes: float32 (``amp=None``), or CUDA autocast in bf16 or fp16.

    The step goes ``with p.autocast(): loss = ...``, then ``p.backward(loss)``,
    ``norm = p.unscale_and_clip(optimizer, params, clip)``, ``p.step(optimizer)``. With fp16
    the loss is scaled before backward (``torch.amp.GradScaler``) so small gradients do not
    underflow; a step whose scaled gradients overflowed is skipped and the scale lowered, so
    there (``skips_overflow``) a non-finite gradient norm is the scaler's business, not a
    diverged run. ``state_dict()`` is the scaler's state (``{}`` without one), which last.pt
    keeps under ``"precision"``; a run may resume under another ``amp``, and a scaler with no
    stored state starts afresh.

    >>> p = Precision(None, torch.device("cpu"))
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> with p.autocast():
    ...     loss = model(torch.ones(1, 2)).sum()
    >>> p.backward(loss)
    >>> bool(p.unscale_and_clip(opt, model.parameters(), 1.0) >= 0), p.step(opt), p.state_dict()
    (True, True, {})
    """

    def __init__(self, amp: str | None, device: torch.device | str) -> None:
        device = torch.device(device)
        if amp is not None and amp not in AMP_MODES:
            raise ConfigError(f"amp must be bf16 or fp16 (or None), got {amp!r}")
        if amp is not None and device.type != "cuda":
            raise ConfigError(f"--amp {amp} trains under CUDA autocast and this run's device is {device.type}: "
                              "it needs --device cuda and a CUDA GPU torch can see; drop --amp to train in float32")
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError("--amp bf16 needs a GPU with bfloat16 (Ampere or later); use --amp fp16")
        self.amp = amp
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.skips_overflow = self.scaler is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's context: autocast on CUDA in the chosen dtype, or nothing."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=_DTYPES[self.amp])

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale_and_clip(self, optimizer: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter],
                         clip: float) -> torch.Tensor:
        """Clip the true (unscaled) gradients to norm ``clip``; their norm before clipping (0-dim tensor)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        return torch.nn.utils.clip_grad_norm_(params, clip)

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Step ``optimizer``; False when fp16's scaled gradients overflowed and the step was skipped."""
        if self.scaler is None:
            optimizer.step()
            return True
        before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= before  # the scale drops exactly when the step was skipped

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scaler is None else dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the scaler from ``state`` (from last.pt); ``{}``, or no scaler now, keeps what there is."""
        if not isinstance(state, dict):
            raise CheckpointError(f"the precision state is a {type(state).__name__}, not a dict")
        if self.scaler is None or not state:
            return
        problem = _scaler_problem(state)
        if problem:
            raise CheckpointError(f"the gradient scaler's state is damaged: {problem}")
        self.scaler.load_state_dict(state)


def _scaler_problem(state: dict[str, Any]) -> str | None:
    if set(state) != set(_SCALER_STATE):
        return f"its keys are {sorted(map(str, state))[:8]}, not {sorted(_SCALER_STATE)}"
    for key, kind in _SCALER_STATE.items():
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            return f"{key} is not a number"
        if not (math.isfinite(value) and value > 0) and key != "_growth_tracker":
            return f"{key} is {value!r}, not a finite number above 0"
    if state["_growth_tracker"] < 0:
        return "_growth_tracker is below 0"
    return None
