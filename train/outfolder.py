"""The --out folder of a training run: what a run writes there, --force, and what --resume may change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rnnkit.runtime.errors import CheckpointError, ConfigError, WriteError

from .checkpoint import BEST_NAME, LAST_NAME, load_checkpoint
from .config import LAUNCH_OPTIONS, TrainConfig

__all__ = ["LOCK_NAME", "OUTPUT_NAMES", "killed_before_first_snapshot", "resumed_config", "start_over"]

log = logging.getLogger(__name__)
# Options that may differ between an interrupted run and its resumption: where it runs and on how
# many processes (LAUNCH_OPTIONS: the workers, nodes, restarts and --amp), and how the folder is
# spelled (it is the folder the run was loaded from); --force only steers a start.
_RESUMABLE_CHANGES = ("device", "threads", "out", "force", *LAUNCH_OPTIONS)
# What a run writes into --out: all that --force removes (anything else there is left alone).
OUTPUT_NAMES = (BEST_NAME, LAST_NAME, "metrics.csv", "metrics.json", "loss.png")
LOCK_NAME = ".rnnkit-train.lock"  # held (flock) by the run writing the folder


def start_over(out: Path) -> None:
    """Remove what a previous run wrote into ``out`` (--force); only regular files, only rnnkit's."""
    for name in OUTPUT_NAMES:  # train() refused any that is not a regular file (or a link to one)
        try:
            (out / name).unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise WriteError(f"--force cannot remove {out / name}: {e.strerror or e}; remove it yourself") from e
    log.info("--force: starting the run in %s over", out)


def killed_before_first_snapshot(out: Path, config: TrainConfig) -> bool:
    """True when ``out`` holds only the first epoch's best checkpoint of this very config.

    The end of an epoch writes checkpoint.pt, then last.pt; a run killed between the two in its
    first epoch (before any --save-every snapshot) left nothing to resume from, and starting it
    again is exactly what resuming it would do.
    """
    if not (out / BEST_NAME).is_file():
        return False
    try:
        best = load_checkpoint(out)
        first = best.get("progress", {}).get("epoch") == 0 and "test" not in best.get("metrics", {})
        resumed_config(config, best)
    except (CheckpointError, ConfigError):
        return False
    return first


def resumed_config(given: TrainConfig, ckpt: dict[str, Any]) -> TrainConfig:
    try:
        stored = TrainConfig.from_dict(ckpt.get("train_config", {}))
    except (ConfigError, TypeError) as e:  # an edited file: it is the checkpoint that is wrong, not the options
        raise CheckpointError(f"the checkpoint's training options are damaged: {str(e)[:200]}") from e
    changed = [k for k, v in given.to_dict().items()
               if k not in _RESUMABLE_CHANGES and v != getattr(stored, k)]
    if changed:
        raise ConfigError(f"--resume must use the interrupted run's options; these differ: {', '.join(changed)}")
    return TrainConfig.from_dict({**stored.to_dict(), **{k: getattr(given, k) for k in _RESUMABLE_CHANGES}})
