"""What a run keeps in --out and takes back on --resume: checkpoint.pt, last.pt and the reports.

Among several workers rank 0 alone writes. ``last.pt`` holds plain weights (the model's own names,
never DDP's), the lm state carried for every stream row of the whole global batch, and every
rank's random state (``rng["ranks"]``, one entry a rank, beside rank 0's ``rng["torch"]`` that a
one-process run keeps alone), so that a run resumes under another number of workers: the rows
are split again, a rank that existed takes its own random state back and a new rank seeds its
own from (seed, rank, step). Under the same number of workers a resumed run ends bit for bit
where an uninterrupted one ends (on CPU); under another, the same optimisation up to float
summation order, with other dropout streams.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from rnnkit.runtime.errors import CheckpointError

from .checkpoint import BEST_NAME, LAST_NAME, save_checkpoint
from .distributed import launch_id, share
from .outfolder import start_over
from .report import plot_loss, write_metrics
from .resume_checks import check_resume_fits

__all__ = ["Snapshots", "rank_seed"]

log = logging.getLogger(__name__)
_RNG_SHAPE = torch.get_rng_state().shape


class Snapshots:
    """The part of a training run that writes and reads its files (mixed into the trainer's run)."""

    def _payload(self, *, best: bool, metrics: dict | None = None, copy: bool = False,
                 ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """What checkpoint.pt (``best``) or last.pt holds now; ``copy``: weights later steps leave alone.

        ``ranks``: every worker's random state and carried rows (:meth:`_rank_state`), for last.pt.
        """
        c = self.config
        payload = {
            "task": c.task, "tag_scheme": self.dataset.tag_scheme,
            "model_config": self.model_config.to_dict(), "train_config": c.to_dict(),
            "tokenizer": self.tokenizer.to_config(), "vocab": self.vocab.tokens, "labels": self.labels,
            "model": {k: v.detach().to("cpu", copy=copy) for k, v in self.model.state_dict().items()},
            "progress": dict(self.pos), "history": list(self.history), "metrics": metrics or {},
            "split": self.split.summary(),
            "data": {"source": c.data, "fingerprint": self.dataset.fingerprint,
                     "skipped": self.dataset.skipped},
        }
        if self.embeddings:
            payload["embeddings"] = self.embeddings
        if best:
            # Examples the model was chosen on: the training split when there is no validation.
            payload["valid_sample"] = _plain((self.split.valid or self.split.train)[: c.valid_sample])
        else:
            cuda = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
            rng = {"torch": torch.get_rng_state(), "cuda": cuda}
            carry = None if self.carry is None else _to_cpu(self.carry)
            if ranks is not None:
                rng["ranks"] = [{"torch": r["torch"], "cuda": r["cuda"]} for r in ranks]
                carry = _joined([r["carry"] for r in ranks])
            payload.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                           curve=list(self.curve), rng=rng, carry=carry)
            if self.config.amp is not None:
                payload["precision"] = self.precision.state_dict()
            if launch_id() is not None:  # a restarted worker resumes only a last.pt of its own launch
                payload["launch"] = launch_id()
        return payload

    def _rank_state(self) -> dict[str, Any]:
        """This worker's part of last.pt: its random state and the state of its stream rows."""
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "carry": None if self.carry is None else _to_cpu(self.carry)}

    def _clear_old_run(self) -> None:
        """--force: remove the previous run's outputs once, just before this run writes its first file.

        Every check of the new run's data and options has passed by then: a run that cannot
        start (bad data, a model too large, an option export would refuse) leaves the old one as it was.
        """
        if self.old_run_left:
            start_over(self.out)
            self.old_run_left = False

    def _flush_best(self) -> None:
        """Write the best checkpoint kept since the last write; before last.pt, which names its epoch."""
        if self.best_payload is not None and self.world.is_main:
            self._clear_old_run()
            save_checkpoint(self.best_payload, self.out / BEST_NAME)
            self.best_payload = None

    def _save_last(self) -> None:
        self._check_finite_weights()
        ranks = self.world.gather(self._rank_state()) if self.world.distributed else None
        if self.world.is_main:
            self._flush_best()
            self._clear_old_run()
            save_checkpoint(self._payload(best=False, ranks=ranks), self.out / LAST_NAME)
        self.saved_step = self.pos["step"]

    def _restore(self, ckpt: dict[str, Any]) -> None:
        c = self.config
        rows = self.train_data.data.shape[0] if c.task == "lm" else 0
        check_resume_fits(ckpt, self.out / LAST_NAME, self.model, self.optimizer,
                          batches_per_epoch=self.steps_per_epoch, planned=self.planned,
                          carry_shape=(c.layers, rows, c.hidden) if c.task == "lm" else None)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if "precision" in ckpt:
                self.precision.load_state_dict(ckpt["precision"])
            if self.world.distributed:
                self._restore_rank_rng(ckpt["rng"])
            else:
                torch.set_rng_state(ckpt["rng"]["torch"])
                # Dropout on a GPU draws from the CUDA generator; a run moved to another device
                # continues from the same weights, but not bit for bit.
                if self.device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
                    torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:  # edited or foreign state
            detail = " ".join(str(e).split())[:200]  # torch's messages span lines
            raise CheckpointError(f"{self.out / LAST_NAME} cannot be resumed: {detail}") from e
        self.pos.update(ckpt["progress"])
        self.saved_step = self.pos["step"]
        self.history = list(ckpt["history"])
        self.curve = list(ckpt["curve"])
        self.written_step = self.saved_step
        carry = ckpt.get("carry")
        if carry is not None and self.world.distributed:  # the rows of the whole batch: this worker's share
            w = self.world
            carry = _rows(carry, share(rows, w.rank, w.world_size))
        self.carry = None if carry is None else _to_device(carry, self.device)
        stored = len(ckpt["rng"].get("ranks") or [None])
        if stored != self.world.world_size and self.world.is_main:
            log.info("last.pt was written by %d worker%s, this run has %d: the rows are split again and "
                     "dropout draws other random numbers", stored, "" if stored == 1 else "s", self.world.world_size)
        log.info("resuming at epoch %d, batch %d (step %d)", self.pos["epoch"] + 1, self.pos["batch"],
                 self.pos["step"])

    def _restore_rank_rng(self, rng: dict[str, Any]) -> None:
        """This worker's random state from last.pt: its own where it was a worker, else a fresh one.

        Rank 0 of a run saved by one process takes that process's state; a rank the saving run
        did not have seeds its generator from (seed, rank, step), so a resumed run is repeatable.
        """
        rank, ranks = self.world.rank, rng.get("ranks")
        if ranks is not None and not (isinstance(ranks, list) and all(_rng_entry_ok(r) for r in ranks)):
            raise CheckpointError(f"{self.out / LAST_NAME} cannot be resumed: rng.ranks is not a list of the "
                                  "workers' random states; start over with --force or choose another --out")
        mine = ranks[rank] if ranks and rank < len(ranks) else ({"torch": rng["torch"]} if rank == 0 else None)
        if mine is None:
            torch.manual_seed(rank_seed(self.config.seed, rank, self.pos["step"]))
            return
        torch.set_rng_state(mine["torch"])
        if self.device.type == "cuda" and isinstance(mine.get("cuda"), torch.Tensor):
            torch.cuda.set_rng_state(mine["cuda"], self.device)

    def _write_reports(self, final: dict | None = None) -> dict[str, Path]:
        if not self.world.is_main:
            return {}
        summary = {"config": self.config.to_dict(), "split": self.split.summary(),
                   "metric": self.metric_name, "final": final or {},
                   "world_size": self.world.world_size, "device": str(self.device)}
        if self.embeddings:
            summary["embeddings"] = self.embeddings
        self._clear_old_run()
        files = write_metrics(self.out, self.history, summary, self.curve)
        if final is not None:
            plot = plot_loss(self.out, self.history, f"{self.config.task} · {self.config.cell} · {self.config.data}",
                             curve=self.curve, metric=self.metric_name)
            if plot:
                files["loss_png"] = plot
        return files


def _plain(examples: list) -> list:
    """Examples as lists of plain values (tuples become lists) for a weights-only checkpoint."""
    return [list(e) if isinstance(e, tuple) else e for e in examples]


def _to_cpu(state):
    return tuple(s.cpu() for s in state) if isinstance(state, tuple) else state.cpu()


def _to_device(state, device):
    if isinstance(state, (tuple, list)):
        return tuple(s.to(device) for s in state)
    return state.to(device)



def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of worker ``rank``'s own random stream (dropout), from the run's seed and the step it starts at.

    >>> rank_seed(0, 1) != rank_seed(0, 2) != rank_seed(1, 1)
    True
    """
    return (seed * 1_000_003 + rank * 65_537 + step) % (1 << 63)


def _rng_entry_ok(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    state, cuda = entry.get("torch"), entry.get("cuda")
    return (isinstance(state, torch.Tensor) and state.dtype == torch.uint8 and state.shape == _RNG_SHAPE
            and (cuda is None or isinstance(cuda, torch.Tensor)))


def _rows(state, part: slice):
    """Rows ``part`` of a carried state (layers, rows, hidden), or of both tensors of an LSTM's."""
    if isinstance(state, (tuple, list)):
        return tuple(s[:, part].contiguous() for s in state)
    return state[:, part].contiguous()


def _joined(parts: list):
    """The carried states of the workers' rows (in rank order) as the state of all the rows."""
    if parts[0] is None:
        return None
    if isinstance(parts[0], (tuple, list)):
        return tuple(torch.cat(group, dim=1) for group in zip(*parts))
    return torch.cat(parts, dim=1)
