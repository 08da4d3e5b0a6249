"""Training on many processes: who this process is (``World``), its process group, and the few
collectives the training loop needs.

A worker is a process started by torchrun's elastic launcher (``rnnkit train --nproc-per-node N``
or ``torchrun --nproc-per-node N -m rnnkit.train``), which sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``. Every worker reads the data and builds every global batch exactly as one process
does; rank r then takes its contiguous share of the rows (:func:`share`). With ``WORLD_SIZE`` 1,
or outside a launcher, :class:`World` is the one process and every helper here does nothing, so
one-process training is the code it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from rnnkit.runtime.errors import ConfigError, TrainingError

__all__ = ["World", "in_worker", "launch_id", "restart_count", "share", "worker_main"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_CPU = torch.device("cpu")


def in_worker() -> bool:
    """True in a process a torchrun launcher started (it set RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def restart_count() -> int:
    """How often the elastic launcher restarted this worker's group (0 on the first attempt)."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def launch_id() -> str | None:
    """The id of this launch (torchrun's run id, fresh for every rnnkit launch), None outside one."""
    return os.environ.get("TORCHELASTIC_RUN_ID") if in_worker() else None


def share(n: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous part of ``n`` rows; the parts differ by one row at most.

    >>> [share(5, r, 2) for r in range(2)]
    [slice(0, 2, None), slice(2, 5, None)]
    """
    return slice(n * rank // world_size, n * (rank + 1) // world_size)


@dataclass(frozen=True)
class World:
    """This process among the workers of one run: ``rank`` of ``world_size`` (0 of 1 alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = _CPU  # where collectives put their tensors

    @property
    def is_main(self) -> bool:
        """Rank 0: the one worker that writes files, holds the lock, draws the bar and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str) -> World:
        """This process as the launcher's environment says, on the device ``device`` names.

        Alone, the trainer reads ``device`` as it always did. Among several workers a GPU run puts
        one rank on each GPU: ``cuda`` (or ``auto`` where CUDA is there) means ``cuda:LOCAL_RANK``.
        """
        size = int(os.environ.get("WORLD_SIZE", "1")) if in_worker() else 1
        if size <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda:"):
            raise ConfigError(f"--device {device} puts every worker on one GPU; with several workers give "
                              "--device cuda: worker LOCAL_RANK uses GPU LOCAL_RANK")
        if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
            if not torch.cuda.is_available():
                raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
            if local >= torch.cuda.device_count():
                raise ConfigError(f"worker {local} of this node has no GPU of its own ({torch.cuda.device_count()} "
                                  "seen): start at most one worker per GPU (--nproc-per-node)")
            return cls(rank, local, size, torch.device("cuda", local))
        return cls(rank, local, size, torch.device("cpu"))

    @contextlib.contextmanager
    def session(self) -> Iterator[World]:
        """The process group for the run (gloo on CPU, nccl on CUDA), destroyed at the end; a no-op alone."""
        if not self.distributed or dist.is_initialized():
            yield self
            return
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo", rank=self.rank,
                                world_size=self.world_size)
        if not self.is_main:  # one voice: the other workers say only what goes wrong
            logging.getLogger("rnnkit").setLevel(logging.WARNING)
        try:
            yield self
        finally:
            dist.destroy_process_group()

    # -- collectives (each is called by every rank at the same point; alone they return at once) --
    def sum(self, values: list[float]) -> list[float]:
        """The sums over all ranks of ``values`` (float64)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def sum_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over all ranks (a new tensor, on ``t``'s device)."""
        if not self.distributed:
            return t
        out = t.to(self.device, copy=True)
        dist.all_reduce(out)
        return out.to(t.device)

    def sum_all(self, sums: dict[str, Any]) -> dict[str, Any]:
        """``sums`` (numbers and tensors) added up over all ranks, key by key."""
        if not self.distributed:
            return sums
        numbers = [k for k, v in sums.items() if not isinstance(v, torch.Tensor)]
        merged: dict[str, Any] = dict(zip(numbers, self.sum([float(sums[k]) for k in numbers])))
        merged.update({k: self.sum_tensor(v) for k, v in sums.items() if isinstance(v, torch.Tensor)})
        return merged

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank: one decision for all."""
        return bool(self.sum([float(flag)])[0]) if self.distributed else flag

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (pickled: plain values and CPU tensors)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def main_decides(self, decide: Callable[[], T]) -> T:
        """Run ``decide`` on rank 0 alone; every rank returns its value or raises its error.

        What reads or locks the output folder happens once: the other ranks wait for rank 0's
        verdict instead of racing it (and on several nodes they may not see the folder at all).
        """
        if not self.distributed:
            return decide()
        verdict: tuple[bool, Any] = (True, None)
        failed: Exception | None = None
        if self.is_main:
            try:
                verdict = (True, decide())
            except Exception as e:
                failed = e
                verdict = (False, _portable(e))
        ok, value = self.broadcast(verdict)
        if failed is not None:
            raise failed
        if not ok:
            raise value
        return value


def worker_main(config: dict[str, Any], resume: bool, progress: bool | None) -> str | None:
    """One worker of ``rnnkit train --nproc-per-node N``: what torchrun's elastic launcher starts.

    ``config`` is ``TrainConfig.to_dict()`` (plain values cross the process boundary). Returns the
    output folder on rank 0 (the launcher builds the TrainResult from its files), None elsewhere.
    """
    from .config import TrainConfig
    from .trainer import train

    if not logging.getLogger().handlers:  # a spawned worker starts with no logging set up
        logging.basicConfig(level=logging.INFO if progress is not False else logging.WARNING, format="%(message)s")
    result = train(TrainConfig.from_dict(config), resume=resume, progress=progress)
    return str(result.out) if int(os.environ.get("RANK", "0")) == 0 else None


def _portable(error: Exception) -> Exception:
    """``error`` as the other ranks can unpickle it: itself, or a TrainingError with its message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return TrainingError(f"rank 0 stopped the run: {error}")
    return error
