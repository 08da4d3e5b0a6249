"""Workers of a distributed run started by a test itself (torch.multiprocessing), so that a test can
patch what they do: stop them at a step, or record who writes the output folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import torch


class Stopped(Exception):
    """What a patched step raises on every rank: the run stops there, as if killed."""


def spawn_workers(n: int, config: dict[str, Any], *, resume: bool = False, stop_at: int | None = None,
                  record: Path | None = None) -> None:
    """Run ``config`` (TrainConfig.to_dict()) on ``n`` gloo workers through rnnkit's ``worker_main``.

    ``stop_at``: every worker raises Stopped before step ``stop_at`` (the last.pt before it stays).
    ``record``: each worker appends "rank file" to this file for every checkpoint or report it writes.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        torch.multiprocessing.spawn(_worker, args=(n, port, config, resume, stop_at, record), nprocs=n, join=True)
    except torch.multiprocessing.ProcessRaisedException as e:
        if stop_at is None or "Stopped" not in str(e):
            raise


def _worker(rank: int, n: int, port: int, config: dict, resume: bool, stop_at: int | None, record: Path | None):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from rnnkit.train import runstate, trainer
    from rnnkit.train.distributed import worker_main

    if stop_at is not None:
        step = trainer._Run._step

        def stopping(self, batch):
            if self.pos["step"] + 1 >= stop_at:
                raise Stopped(f"rank {rank} stopped before step {stop_at}")
            return step(self, batch)

        trainer._Run._step = stopping
    if record is not None:
        for module, name in ((runstate, "save_checkpoint"), (trainer, "save_checkpoint"), (runstate, "write_metrics"),
                             (runstate, "plot_loss"), (runstate, "start_over")):
            setattr(module, name, _recorded(getattr(module, name), rank, record))
    worker_main(config, resume, False)


def _recorded(write, rank: int, record: Path):
    def recorded(*args, **kwargs):
        with open(record, "a", encoding="utf-8") as f:
            f.write(f"{rank} {write.__name__}\n")
        return write(*args, **kwargs)

    return recorded
