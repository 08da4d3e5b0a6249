"""Starting the workers of a run on many processes: torchrun's elastic launcher, called from Python.

``train(TrainConfig(nproc_per_node=N))`` and ``rnnkit train --nproc-per-node N`` come here; the
workers run :func:`rnnkit.train.distributed.worker_main`. ``torchrun --nproc-per-node N -m
rnnkit.train …`` starts the same workers without this module (torchrun is the launcher then).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnkit.runtime import errors
from rnnkit.runtime.errors import CheckpointError, RnnkitError, TrainingError

from .checkpoint import BEST_NAME, LAST_NAME, load_checkpoint
from .config import TrainConfig, node_range

if TYPE_CHECKING:
    from .runstart import TrainResult

__all__ = ["launch"]

log = logging.getLogger(__name__)
_MULTI_NODE_RUN_ID = "rnnkit-train"  # every node of a run must name the same rendezvous; one run per endpoint
# torch's loggers that speak of the workers' ends (a box of details, "terminating process …").
_TORCH_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing")
_MONITOR_SECONDS = 0.1  # how often the launcher looks at its workers: a dead one is seen within this
_NO_SHARED_STORE = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")  # those the launcher handles (torch's default)


def launch(config: TrainConfig, *, resume: bool = False, progress: bool | None = None) -> TrainResult:
    """Run ``config`` on ``config.nproc_per_node`` workers of this node (and ``config.nnodes`` nodes).

    One node uses torchrun's standalone rendezvous: a c10d store on a free local port, so runs
    never collide on a fixed one. More nodes meet at ``config.rdzv_endpoint`` (c10d, ranks
    given as the nodes arrive), or in a static rendezvous there when ``config.node_rank`` fixes
    this node's rank. Workers that do not say otherwise (``threads``) share this machine's
    cores between them. A worker that dies (killed, or an error) ends the run with one
    TrainingError line (the error's own class when it was one of rnnkit's) that says which
    rank, how it ended and where ``--resume`` continues; with ``max_restarts`` the launcher
    first restarts the workers that many times, and they resume from ``last.pt`` themselves.

    >>> cfg = TrainConfig(task="tag", data="builtin:hello", out="runs/hello2", nproc_per_node=2)
    >>> launch(cfg).metrics["world_size"]  # doctest: +SKIP
    2
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .distributed import worker_main
    from .runstart import check_out

    least, most = node_range(config.nnodes)
    if most == 1 or config.node_rank == 0:  # rank 0 writes here: what it would refuse, refused before a worker starts
        check_out(config, resume)
    values = config.to_dict()
    if config.threads is None:  # N workers each starting a thread per core would fight over the cores
        values["threads"] = max(1, _cores() // config.nproc_per_node)
    backend, endpoint, run_id, rdzv = _rendezvous(config)
    _start_resource_tracker()
    with tempfile.TemporaryDirectory(prefix="rnnkit-launch-") as logs, _quiet_launcher(), _signals_kept(), \
            _own_store_per_attempt():
        launcher = LaunchConfig(
            min_nodes=least, max_nodes=most, nproc_per_node=config.nproc_per_node, run_id=run_id,
            rdzv_backend=backend, rdzv_endpoint=endpoint, rdzv_configs=rdzv, max_restarts=config.max_restarts,
            monitor_interval=_MONITOR_SECONDS, start_method="spawn", logs_specs=DefaultLogsSpecs(log_dir=logs))
        log.info("training on %d processes%s", config.nproc_per_node * least,
                 "" if most == 1 else f" per node × {config.nnodes} nodes")
        try:
            returned = elastic_launch(launcher, worker_main)(values, resume, progress)
        except ChildFailedError as e:
            raise _worker_failed(e, Path(config.out)) from None
        except SignalException as e:
            if e.sigval == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise TrainingError(f"the launcher got {signal.Signals(e.sigval).name} and stopped its workers; "
                                f"{_resume_hint(Path(config.out))}") from None
    return _result(Path(returned.get(0) or config.out), here=0 in returned)


def _rendezvous(config: TrainConfig) -> tuple[str, str, str, dict[str, Any]]:
    """torchrun's rendezvous for ``config``: (backend, endpoint, run id, backend options)."""
    if config.rdzv_endpoint is None:  # torchrun --standalone: a c10d store here, on a port the OS picks
        return "c10d", "localhost:0", str(uuid.uuid4()), {}
    if config.node_rank is not None:  # torchrun's default rendezvous: the node's rank is given
        return "static", config.rdzv_endpoint, _MULTI_NODE_RUN_ID, {"rank": config.node_rank}
    return "c10d", config.rdzv_endpoint, _MULTI_NODE_RUN_ID, {}


def _worker_failed(e: Any, out: Path) -> RnnkitError:
    """One line for a failed worker group: the first worker to fail, how, and what --resume will do."""
    rank, failure = e.get_first_failure()
    if failure.exitcode < 0:
        how = f"was killed by {failure.signal_name()}"
    else:
        message = failure.message  # from the worker's error file: {"message": "Class: text", "extraInfo": …}
        if isinstance(message, dict):
            message = message.get("message")
        message = message if isinstance(message, str) else ""
        name, _, text = message.partition(": ")
        kind = getattr(errors, name, None)
        first = " ".join(text.split("\n", 1)[0].split()) if text else ""
        if isinstance(kind, type) and issubclass(kind, RnnkitError) and first:
            return kind(first)  # the worker's own error, as one process would have raised it
        how = f"failed with {name}: {first[:300]}" if first else f"exited with code {failure.exitcode}"
    return TrainingError(f"worker {rank} (pid {failure.pid}) {how}; the run stopped; {_resume_hint(out)}")


def _resume_hint(out: Path) -> str:
    step = None
    with contextlib.suppress(CheckpointError, KeyError, TypeError, OSError):
        step = load_checkpoint(out, name=LAST_NAME)["progress"]["step"]
    if step is None:
        return f"nothing to resume yet (no {LAST_NAME} in {out}): start the run again"
    return f"--resume continues from {out / LAST_NAME} (step {step})"


def _result(out: Path, *, here: bool) -> TrainResult:
    """What the workers' run wrote, read back: the TrainResult one process returns.

    Rank 0 writes; a node without it (``here`` False) may not see its folder: its result is
    then empty (no metrics).
    """
    from .runstart import TrainResult, _result_from

    if not here and not (out / BEST_NAME).is_file():
        return TrainResult(out, out / BEST_NAME, {}, [], {})
    return _result_from(out, load_checkpoint(out, name=BEST_NAME))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """Give back the signal handlers the launcher replaces (Ctrl-C, SIGTERM, …) and never restores:
    after a run, Ctrl-C in the caller's process is KeyboardInterrupt again."""
    if threading.current_thread() is not threading.main_thread():  # the launcher leaves them alone there
        yield
        return
    names = [name for name in _SIGNALS if hasattr(signal, name)]
    kept = {name: signal.getsignal(getattr(signal, name)) for name in names}
    try:
        yield
    finally:
        for name, handler in kept.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(getattr(signal, name), handler)


@contextlib.contextmanager
def _own_store_per_attempt() -> Iterator[None]:
    """Give each attempt of the worker group a TCP store of its own (torch's opt-out of sharing the rendezvous store).

    Shared, the store outlives a restart and its workers read it unprefixed: a restarted group
    can read the gloo addresses of the group it replaces and wait for dead peers (seen: both new
    workers stuck in init_process_group after a kill with --max-restarts). With the opt-out, rank
    0 of each attempt hosts a fresh store on a port the rendezvous picks.
    """
    before = os.environ.get(_NO_SHARED_STORE)
    os.environ[_NO_SHARED_STORE] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_NO_SHARED_STORE, None)
        else:
            os.environ[_NO_SHARED_STORE] = before


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if it is not running yet) with its stderr on /dev/null.

    The launcher's queues live on in the workers; a worker that was killed never returns its
    share, and the tracker says so in a warning when the launcher exits, after rnnkit's one line.
    It has nothing else to say: the leaked semaphores are cleaned up all the same.
    """
    from multiprocessing import resource_tracker

    if os.environ.get("RNNKIT_DEBUG"):
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no real stderr descriptor
        kept = os.dup(2)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            resource_tracker.ensure_running()
        finally:
            os.dup2(kept, 2)
            os.close(kept)


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """Keep torch.distributed.elastic's own log lines (a dead worker's box of details) off stderr:
    the run's outcome is rnnkit's one line. ``RNNKIT_DEBUG=1`` lets them through."""
    if os.environ.get("RNNKIT_DEBUG"):
        yield
        return
    loggers = [logging.getLogger(name) for name in _TORCH_LOGGERS]
    null = logging.NullHandler()
    before = [(logger.propagate, logger.handlers) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [null], False
    try:
        yield
    finally:
        for logger, (propagate, handlers) in zip(loggers, before):
            logger.handlers, logger.propagate = handlers, propagate
