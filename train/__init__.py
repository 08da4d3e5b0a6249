"""rnnkit's trainer: data, the torch model, the loop and checkpoints.

``rnnkit.train.data`` works without torch; the names below load torch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ModelConfig": "model", "RNNModel": "model", "TrainConfig": "config", "TrainResult": "trainer",
    "train": "trainer", "load_checkpoint": "checkpoint", "model_from_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
