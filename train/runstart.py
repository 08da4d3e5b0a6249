"""Where a training run starts: the checks of --out, the last.pt it resumes, a finished run's result,
and what a worker restarted by the elastic launcher resumes from."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.runtime.errors import CheckpointError, ConfigError
from rnnkit.runtime.files import check_replaceable, check_writable

from .checkpoint import BEST_NAME, LAST_NAME, load_checkpoint
from .config import TrainConfig
from .distributed import launch_id, restart_count
from .outfolder import OUTPUT_NAMES, killed_before_first_snapshot, resumed_config
from .resume_checks import check_resumable

__all__ = ["TrainResult", "busy_message", "check_out", "restarted", "start_from"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    out: Path
    checkpoint: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    split: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    skipped: int = 0  # malformed lines left out (--skip-bad)
    curve: list[dict[str, Any]] = field(default_factory=list)  # the logged (smoothed) training loss, by step
    embeddings: dict[str, Any] | None = None  # what --embeddings covered (as in metrics.json)


def check_out(config: TrainConfig, resume: bool) -> None:
    """What --out and the resume flags must be before the run locks the folder."""
    out = Path(config.out)
    if resume and config.force:
        raise ConfigError("--force starts the run in --out over and --resume continues it: pass one of them")
    if resume and not out.is_dir():
        raise CheckpointError(f"nothing to resume in {out}: no {LAST_NAME}; start the run without --resume")
    check_writable(out, "--out folder")  # before the data is read and an epoch is spent
    for name in OUTPUT_NAMES:  # a device or a pipe planted under an output's name is never replaced
        check_replaceable(out / name)


def busy_message(out: Path):
    def busy(pid: str) -> str:  # a function, not a template: the folder's name may hold "{" or "}"
        return f"{out} is in use by another training run (pid {pid}); wait for it to end or choose another --out"

    return busy


def restarted(config: TrainConfig, resume: bool) -> tuple[bool, TrainConfig]:
    """A worker the elastic launcher restarted continues from last.pt (or starts again without one)."""
    out = Path(config.out)
    if (out / LAST_NAME).is_file():
        if config.force and load_checkpoint(out, name=LAST_NAME).get("launch") != launch_id():
            return resume, config  # the run --force replaces, not yet replaced: start over still
        log.info("restart %d: resuming from %s", restart_count(), out / LAST_NAME)
        return True, dataclasses.replace(config, force=False)  # --force was done: this launch wrote last.pt
    if not config.force and (out / BEST_NAME).is_file():
        return True, config  # killed before its first snapshot: --resume starts it again
    return resume, config


def start_from(config: TrainConfig, out: Path, *, resume: bool) -> tuple[TrainConfig, dict | None, TrainResult | None]:
    """What the run starts from: its config, the last.pt it resumes (or None), or its result when it is done."""
    state = None
    if resume and not (out / LAST_NAME).is_file() and killed_before_first_snapshot(out, config):
        log.warning("the run in %s stopped before its first snapshot (%s); starting it again", out, LAST_NAME)
        resume = False
    elif resume:
        if not (out / LAST_NAME).is_file():
            raise CheckpointError(f"nothing to resume in {out}: no {LAST_NAME}; start the run without --resume")
        state = load_checkpoint(out, name=LAST_NAME)
        check_resumable(state, out / LAST_NAME)
        config = resumed_config(config, state)
        if state["progress"].get("done"):
            best = load_checkpoint(out)
            if "test" in best.get("metrics", {}):
                log.info("the run in %s already finished; nothing to resume", out)
                return config, state, _result_from(out, best)
            # Stopped after its last epoch but before the test and the final reports: do those.
    elif not config.force and ((out / LAST_NAME).exists() or (out / BEST_NAME).exists()):
        raise ConfigError(f"{out} already holds a training run: pass --resume to continue it, "
                          "--force to start over, or choose another --out")
    return config, state, None


def _result_from(out: Path, best: dict[str, Any]) -> TrainResult:
    names = {"metrics_csv": "metrics.csv", "metrics_json": "metrics.json", "loss_png": "loss.png"}
    files = {key: out / name for key, name in names.items() if (out / name).is_file()}
    return TrainResult(out, out / BEST_NAME, best.get("metrics", {}), best.get("history", []),
                       best.get("split", {}), files, best.get("data", {}).get("skipped", 0),
                       embeddings=best.get("embeddings"), curve=best.get("curve", []))


