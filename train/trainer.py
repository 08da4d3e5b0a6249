"""The training loop: AdamW, clipping, warmup + cosine schedule, early stopping, resume.

On several workers (``distributed``) every rank runs this loop on its share of each global batch,
through DistributedDataParallel; what the run writes is rank 0's (``runstate``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rnnkit.runtime.errors import CheckpointError, ConfigError, MetadataError, TrainingError
from rnnkit.runtime.files import exclusive_lock
from rnnkit.runtime.vocab import Vocabulary

from .batches import LMStream, SequenceSet, encode_split, largest_batch, tokenize_examples
from .checkpoint import BEST_NAME, LAST_NAME, load_checkpoint, save_checkpoint
from .config import DEFAULT_EPOCHS, TrainConfig, check_exportable_model, check_model_size
from .data import check_exportable, load_data, split_examples
from .distributed import World, in_worker, restart_count, share
from .embeddings import check_dimension, probe_embeddings, read_embeddings
from .evaluate import batch_loss, evaluate, evaluate_sums, loss_sum, metrics_from, primary_metric, rows_of, target_count
from .model import ModelConfig, RNNModel, detach_state
from .outfolder import LOCK_NAME
from .precision import Precision
from .report import curve_every
from .runstart import TrainResult, busy_message, check_out, restarted, start_from
from .runstate import Snapshots, rank_seed
from .tokenizing import choose_tokenizer

__all__ = ["TrainResult", "train"]

log = logging.getLogger(__name__)
# An epoch end writes checkpoint.pt, last.pt and the reports once --save-every steps or a 20th of
# the run have passed since the last one that did: a run of many tiny epochs (small data repeated
# to reach min_steps) would otherwise spend its time writing files; epochs that long always write.
_EPOCH_END_WRITES = 20


def train(config: TrainConfig, *, resume: bool = False, progress: bool | None = None) -> TrainResult:
    """Train a model as ``config`` says; write ``checkpoint.pt`` (best) and ``last.pt`` to ``config.out``.

    ``progress``: a progress bar on stderr; by default (None) only when stderr is a terminal, so
    a notebook or shell shows the run moving and a log file or pipe gets nothing extra.

    With ``resume=True`` the run continues from ``out/last.pt`` and ends where an uninterrupted
    run with the same config would have ended, bit for bit on CPU. Resuming a finished run
    returns its result and writes nothing. A folder that holds a run needs ``resume=True`` or
    ``config.force`` (start over: the previous run's checkpoints and reports are removed, other
    files are left alone; only once the new run's data and options have passed every check, just
    before it writes its first file, so a run that cannot start leaves the previous one intact).

    One run writes a folder at a time: the run holds a lock on ``out/.rnnkit-train.lock``
    (``flock``, released by the operating system however the process ends), and a second run
    into the same folder raises WriteError naming the first one's pid.

    The best epoch is chosen on the validation split. With no validation data
    (``valid_fraction=0``) it is chosen on the training split instead, with a warning: an
    explicit choice to train on everything should still give a best checkpoint and an int8
    check sample, and "full" splits of tiny data already measure fit the same way. With no
    test data (``test_fraction=0``) the final test is skipped and ``metrics["test"]`` is ``{}``.

    >>> cfg = TrainConfig(task="tag", data="builtin:hello", out="runs/hello")  # 300 one-step epochs
    >>> train(cfg).metrics["valid"]["accuracy"]  # doctest: +SKIP
    1.0

    ``config.nproc_per_node`` > 1 (or ``nnodes`` other than "1") starts the workers through
    torchrun's elastic launcher (:func:`rnnkit.train.launch.launch`); in a worker (RANK and
    WORLD_SIZE set, as torchrun sets them) this trains that worker's share. A restarted worker
    resumes from ``out/last.pt`` by itself.
    """
    if (config.nproc_per_node > 1 or config.nnodes != "1") and not in_worker():
        from .launch import launch

        return launch(config, resume=resume, progress=progress)
    if in_worker() and restart_count():
        resume, config = restarted(config, resume)
    world = World.from_env(config.device)
    if world.distributed:
        return _train_worker(config, world, resume=resume, progress=progress)
    check_out(config, resume)

    with exclusive_lock(Path(config.out) / LOCK_NAME, busy_message(Path(config.out))):
        shown = _stderr_is_terminal() if progress is None else bool(progress)
        return _train_locked(config, Path(config.out), resume=resume, progress=shown)


def _train_locked(config: TrainConfig, out: Path, *, resume: bool, progress: bool) -> TrainResult:
    config, state, finished = start_from(config, out, resume=resume)
    if finished is not None:
        return finished
    # With --force the previous run's files stay until the new run writes its first (_Run._clear_old_run).
    return _Run(config, state, progress).run()


def _train_worker(config: TrainConfig, world: World, *, resume: bool, progress: bool | None) -> TrainResult:
    """One worker of several: rank 0 checks and locks --out and reads last.pt; every rank trains."""
    if config.batch_size % world.world_size:
        raise ConfigError(f"--batch-size {config.batch_size} is the global batch and must divide by the "
                          f"{world.world_size} workers; choose a multiple of {world.world_size}")
    out = Path(config.out)
    with world.session(), contextlib.ExitStack() as held:
        def claim() -> tuple[TrainConfig, dict | None, TrainResult | None]:
            check_out(config, resume)
            held.enter_context(exclusive_lock(out / LOCK_NAME, busy_message(out)))
            return start_from(config, out, resume=resume)

        config, state, finished = world.main_decides(claim)
        if finished is not None:
            return finished
        shown = world.is_main and (_stderr_is_terminal() if progress is None else bool(progress))
        return _Run(config, state, shown, world).run()


class _Run(Snapshots):
    def __init__(self, config: TrainConfig, resumed: dict | None, progress: bool, world: World | None = None) -> None:
        self.config = c = config
        self.world = world = world or World()
        self.out = Path(c.out)
        self.progress_bar = progress
        if c.threads:
            torch.set_num_threads(c.threads)
        self.device = world.device if world.distributed else _device(c.device)
        self.precision = Precision(c.amp, self.device)
        started = time.perf_counter()
        if c.embeddings and not resumed:  # vectors of the wrong size are refused before the data is read
            check_dimension(probe_embeddings(c.embeddings), c.embed)
        self.dataset = load_data(c.data, c.task, skip_bad=c.skip_bad, whole_file=c.whole_file,
                                 limit=c.limit, seed=c.seed)
        check_exportable(self.dataset, c.limit)
        if resumed and resumed["data"]["fingerprint"] != self.dataset.fingerprint:
            raise CheckpointError(f"the data {c.data} changed since the interrupted run; "
                                  "resume with the same data or start a new --out")
        self.tokenizer = choose_tokenizer(c, self.dataset)
        self.split = split_examples(self.dataset.examples, c.task, seed=c.seed,
                                    valid=c.valid_fraction, test=c.test_fraction)
        train_items, valid_items, test_items = (tokenize_examples(part, c.task, self.tokenizer) for part in
                                                (self.split.train, self.split.valid, self.split.test))
        if resumed:
            try:
                self.vocab = Vocabulary(resumed["vocab"])
            except (ConfigError, MetadataError) as e:  # an edited file: the checkpoint is wrong, not the options
                raise CheckpointError(f"{self.out / LAST_NAME} cannot be resumed: its vocabulary is damaged: "
                                      f"{str(e)[:200]}") from e
        else:
            docs = train_items if c.task == "lm" else [tokens for tokens, _ in train_items]
            self.vocab = Vocabulary.build(docs, min_freq=c.min_freq, max_size=c.max_vocab)
        self.labels = list(resumed["labels"]) if resumed else self.dataset.labels
        self.train_data, self.valid_data, self.test_data = (
            self._encode(items, name) for items, name in
            ((train_items, "train"), (valid_items, "validation"), (test_items, "test")))
        self.selected_on = "validation"
        if len(self.valid_data) == 0:
            self.selected_on = "train"
            log.warning("no validation data (valid-fraction %g): the best epoch is chosen on the training "
                        "data, so its scores measure fit, not generalisation", c.valid_fraction)
            self.valid_data = self.train_data
        log.info("data ready in %.1fs: %s", time.perf_counter() - started, self.split.describe())

        n_out = len(self.vocab) if c.task == "lm" else len(self.labels)
        # What export would refuse, or memory could not hold, is refused before a weight exists.
        check_exportable_model(c, tokenizer=self.tokenizer.to_config(), vocab=self.vocab, labels=self.labels,
                               tag_scheme=self.dataset.tag_scheme)
        check_model_size(c, vocab_size=len(self.vocab), n_out=n_out, **largest_batch(self.train_data, c.batch_size))
        torch.manual_seed(c.seed)
        self.model_config = ModelConfig(cell=c.cell, vocab_size=len(self.vocab), n_out=n_out,
                                        embed=c.embed, hidden=c.hidden, layers=c.layers,
                                        dropout=c.dropout, tie_weights=c.tie_weights)
        self.model = RNNModel(self.model_config).to(self.device)
        self.embeddings = self._pretrained(resumed)
        # Frozen weights stay out of the optimizer, so AdamW's weight decay cannot move them either.
        trained = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trained, lr=c.lr, weight_decay=c.weight_decay)
        self.steps_per_epoch = (len(self.train_data) if c.task == "lm"
                                else self.train_data.n_batches(c.batch_size))
        if self.steps_per_epoch == 0:
            raise ConfigError(f"the training split of {c.data} is too small to make one batch")
        if c.task == "lm" and self.train_data.data.shape[0] < world.world_size:
            raise ConfigError(f"the training text of {c.data} makes {self.train_data.data.shape[0]} stream rows, fewer "
                              f"than the {world.world_size} workers that would each carry some; use fewer workers "
                              "or more text")
        self.epochs = c.epochs_for(self.steps_per_epoch)
        if c.epochs is None and self.epochs > DEFAULT_EPOCHS:
            log.info("%d steps an epoch: %d epochs make the %d steps of --min-steps", self.steps_per_epoch,
                     self.epochs, c.min_steps)
        self.planned = self.epochs * self.steps_per_epoch
        if c.max_steps:
            self.planned = min(self.planned, c.max_steps)
        self.curve_every = curve_every(self.planned)
        # The smoothed loss averages about as many steps as lie between two logged points (10 at least).
        self.ema_beta = 1 - 1 / max(10, self.curve_every)
        self.write_every = max(1, min(c.save_every, self.planned // _EPOCH_END_WRITES))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.metric_name, self.higher_is_better = primary_metric(c.task, self.dataset.tag_scheme)
        # loss_sum/loss_count: the epoch's training loss so far, so a resumed epoch reports
        # the same mean as an uninterrupted one; loss_ema: the moving average before its debiasing.
        self.pos = {"epoch": 0, "batch": 0, "step": 0, "tokens": 0, "seconds": 0.0, "loss_sum": 0.0,
                    "loss_count": 0, "loss_ema": 0.0, "best": None, "best_epoch": None, "bad_epochs": 0,
                    "done": False}
        self.history: list[dict[str, Any]] = []  # one record per validation (at each epoch end)
        self.curve: list[dict[str, Any]] = []  # the smoothed training loss every curve_every steps
        self.best_payload: dict[str, Any] | None = None  # a better checkpoint.pt, until the next write
        self.written_step: int | None = None  # the step of the last epoch end that wrote its files
        self.carry = None
        self.saved_step: int | None = None  # the step of the last.pt this run wrote or resumed from
        self.old_run_left = c.force  # --force: the previous run's files, until this run writes its first
        if world.rank:  # rank 0 draws dropout as one process does; every other rank from a stream of its own
            torch.manual_seed(rank_seed(c.seed, world.rank))
        if resumed:
            self._restore(resumed)
        # The step runs through DDP, which averages the gradients; the model itself keeps its plain names.
        self.net = self.model
        if world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _pretrained(self, resumed: dict | None) -> dict[str, Any] | None:
        """Start the embedding rows from --embeddings and freeze them if asked; the record of what was covered.

        A resumed run does not read the file again: last.pt holds the weights and the record.
        """
        c = self.config
        if c.freeze_embeddings:
            self.model.embedding.weight.requires_grad_(False)
        if not c.embeddings:
            return None
        if resumed:
            return resumed.get("embeddings")
        vectors = read_embeddings(c.embeddings, self.vocab, self.tokenizer)
        self.model.load_embedding_rows(vectors.ids, vectors.vectors)
        log.info("embeddings: %s", vectors.describe())
        return {**vectors.record(), "frozen": c.freeze_embeddings}

    # -- data -------------------------------------------------------------------------------
    def _encode(self, items: list, name: str) -> LMStream | SequenceSet:
        c = self.config
        data, dropped = encode_split(items, c.task, self.vocab, self.labels, max_len=c.max_len, bptt=c.bptt,
                                     lookahead=c.lookahead,
                                     batch_size=c.batch_size if name == "train" else 10)
        if dropped:
            log.warning("%d %s examples had no tokens or an unknown label and were left out", dropped, name)
        if len(data) == 0 and name == "train" and c.task != "lm":
            raise ConfigError(f"no usable {name} examples in {c.data}")
        return data

    # -- loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        bar = _progress_bar(self.planned, self.pos["step"], enabled=self.progress_bar)
        try:
            with _logs_above(bar):
                self._loop(bar)
        except KeyboardInterrupt:
            bar.close()
            if self.saved_step is not None:  # (a last.pt of the run --force replaces is not this run's)
                log.warning("interrupted at step %d; --resume (resume=True) continues from the last snapshot, %s",
                            self.pos["step"], self.out / LAST_NAME)
            raise
        finally:
            bar.close()
        return self._finish()

    def _loop(self, bar) -> None:
        c, pos, beta = self.config, self.pos, self.ema_beta
        while pos["epoch"] < self.epochs and not pos["done"]:
            epoch_start = time.perf_counter()
            self.model.train()
            for batch in self._epoch_batches(pos["epoch"], pos["batch"]):
                loss = self._step(batch)
                pos["loss_sum"] += loss
                pos["loss_count"] += 1
                pos["batch"] += 1
                pos["loss_ema"] = beta * pos["loss_ema"] + (1 - beta) * loss
                elapsed = pos["seconds"] + time.perf_counter() - epoch_start
                bar.set_postfix(epoch=pos["epoch"] + 1, loss=f"{self._smoothed_loss():.3f}",
                                tok_s=f"{pos['tokens'] / max(elapsed, 1e-9):,.0f}", refresh=False)
                bar.update(1)  # redraws at most every mininterval
                if pos["step"] % self.curve_every == 0:
                    self._log_point(elapsed)
                if pos["step"] >= self.planned:
                    break
                if pos["step"] % c.save_every == 0:
                    pos["seconds"] += time.perf_counter() - epoch_start
                    epoch_start = time.perf_counter()
                    self._save_last()
            pos["seconds"] += time.perf_counter() - epoch_start
            self._end_epoch()

    def _epoch_batches(self, epoch: int, start: int):
        c = self.config
        if c.task == "lm":
            if start == 0:
                self.carry = None
            yield from self.train_data.batches(start)
            return
        order = self.train_data.order(c.batch_size, c.seed, epoch)
        for indices in order[start:]:
            yield self.train_data.batch(indices)

    def _step(self, batch) -> float:
        c, dev = self.config, self.device
        if self.world.distributed:
            loss, value, norm_value = self._shard_step(batch)
        else:
            batch.tokens, batch.targets = batch.tokens.to(dev), batch.targets.to(dev)
            with self.precision.autocast():
                loss, _, state = batch_loss(self.model, batch, c.task, self.carry)
            if c.task == "lm":
                self.carry = detach_state(state)
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward(loss)
            norm = self.precision.unscale_and_clip(self.optimizer, self.model.parameters(), c.clip)
            # One sync for both, as loss.item() alone cost; checked before the step changes a weight.
            value, norm_value = torch.stack([loss.detach().float(), norm.to(loss.device)]).tolist()
        if not math.isfinite(value):
            raise self._diverged(f"the loss is {value}", after=False)
        if not math.isfinite(norm_value) and not self.precision.skips_overflow:  # fp16: the scaler skips the step
            raise self._diverged(f"the gradient norm is {norm_value}", after=False)
        self.precision.step(self.optimizer)
        self.scheduler.step()
        self.pos["step"] += 1
        self.pos["tokens"] += batch.n_tokens
        return value

    def _shard_step(self, batch) -> tuple[torch.Tensor, float, float]:
        """Backward on this worker's rows of the global ``batch``: (loss, the global mean loss, the gradient norm).

        The loss is the rows' sum over the global batch's target count, times the workers, so
        DDP's average of the gradients is the one-process gradient of the global mean. A rank left
        without rows (a short last batch) runs one row at weight 0: every rank joins each all-reduce.
        """
        c, dev, w = self.config, self.device, self.world
        count = max(target_count(batch, c.task), 1)
        mine, weight = rows_of(batch, share(len(batch.tokens), w.rank, w.world_size)), 1.0
        if len(mine.tokens) == 0:
            mine, weight = rows_of(batch, slice(0, 1)), 0.0
        mine.tokens, mine.targets = mine.tokens.to(dev), mine.targets.to(dev)
        with self.precision.autocast():
            total, state = loss_sum(self.net, mine, c.task, self.carry)
        if c.task == "lm":
            self.carry = detach_state(state)
        loss = total * (weight * w.world_size / count)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        norm = self.precision.unscale_and_clip(self.optimizer, self.model.parameters(), c.clip)
        # One all-reduce: the global loss sum (NaN on any rank is NaN on all); the norm is the same on every rank.
        summed, norm_value = w.sum_tensor(torch.stack([total.detach().float() * weight, norm.to(total.device)
                                                       / w.world_size])).tolist()
        return loss, summed / count, norm_value

    def _diverged(self, what: str, *, after: bool = True) -> TrainingError:
        """The error that stops a run whose numbers stopped being numbers; nothing of it was saved.

        ``after``: the numbers went bad after the steps done so far, not within the next one.
        """
        pos = self.pos
        step = pos["step"] if after else pos["step"] + 1
        kept = [f"{LAST_NAME} (step {self.saved_step})"] if self.saved_step is not None else []
        kept += [BEST_NAME] if pos["best_epoch"] is not None else []
        said = f"{' and '.join(kept)} in {self.out} keep the last good weights" if kept else "no checkpoint was written"
        return TrainingError(f"training diverged at step {step} (epoch {pos['epoch'] + 1}): {what}; {said}; "
                             f"start again (--force) with a lower --lr (now {self.config.lr:g}) or --clip")

    def _smoothed_loss(self) -> float:
        """The training loss as an exponential moving average, debiased as Adam debiases its
        moments: the average starts at 0, so after t steps it is divided by 1 - β**t."""
        return self.pos["loss_ema"] / (1 - self.ema_beta ** max(self.pos["step"], 1))

    def _log_point(self, seconds: float) -> None:
        pos = self.pos
        self.curve.append({"step": pos["step"], "epoch": pos["epoch"] + 1, "tokens": pos["tokens"],
                           "seconds": round(seconds, 3), "lr": self.scheduler.get_last_lr()[0],
                           "train_loss": self._smoothed_loss()})

    def _check_finite_weights(self) -> None:
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise self._diverged("the weights hold NaN or infinity")

    def _end_epoch(self) -> None:
        c, pos = self.config, self.pos
        if not self.curve or self.curve[-1]["step"] != pos["step"]:
            self._log_point(pos["seconds"])  # every validation has the training loss of its step beside it
        valid = self._evaluate(self.valid_data)
        if not math.isfinite(valid["loss"]):
            raise self._diverged(f"the validation loss is {valid['loss']}")
        self._check_finite_weights()
        value = valid[self.metric_name]
        record = {"epoch": pos["epoch"] + 1, "step": pos["step"], "tokens": pos["tokens"],
                  "seconds": round(pos["seconds"], 3), "lr": self.scheduler.get_last_lr()[0],
                  "train_loss": pos["loss_sum"] / max(pos["loss_count"], 1),
                  "valid_loss": valid["loss"], "valid_metric": value,
                  "tokens_per_second": pos["tokens"] / max(pos["seconds"], 1e-9), "valid": valid}
        self.history.append(record)
        # Ties on the metric (common on small data) are broken by the validation loss.
        key = (value if self.higher_is_better else -value, -valid["loss"])
        best = pos["best"]
        improved = best is None or key > tuple(best)
        log.info("epoch %d: train loss %.4f, valid %s %.4f%s", pos["epoch"] + 1, record["train_loss"],
                 self.metric_name, value, " (best)" if improved else "")
        if improved:
            pos.update(best=list(key), best_epoch=pos["epoch"] + 1, bad_epochs=0)
        else:
            pos["bad_epochs"] += 1
        # Early stopping waits for min_steps: small data repeats its epochs to make them.
        stop_early = bool(c.patience and pos["bad_epochs"] >= c.patience
                          and pos["step"] >= min(c.steps_floor, self.planned))
        if stop_early:
            log.info("no improvement for %d epochs: stopping early", c.patience)
        done = stop_early or pos["step"] >= self.planned or pos["epoch"] + 1 >= self.epochs
        write = done or self.written_step is None or pos["step"] - self.written_step >= self.write_every
        if improved and self.world.is_main:  # the weights are copied when kept for a later write
            self.best_payload = self._payload(best=True, metrics={"valid": valid}, copy=not write)
        pos["epoch"] += 1
        pos.update(batch=0, loss_sum=0.0, loss_count=0, done=done)
        if write:
            self._flush_best()
            self._write_reports()
            self._save_last()
            self.written_step = pos["step"]

    def _evaluate(self, data) -> dict[str, float]:
        c, w = self.config, self.world
        if not w.distributed:
            return evaluate(self.model, data, c.task, tag_scheme=self.dataset.tag_scheme, labels=self.labels,
                            device=self.device)
        sums = evaluate_sums(self.model, data, c.task, tag_scheme=self.dataset.tag_scheme, labels=self.labels,
                             device=self.device, rows=lambda n: share(n, w.rank, w.world_size))
        return metrics_from(w.sum_all(sums), c.task, self.dataset.tag_scheme)

    def _finish(self) -> TrainResult:
        best = self.world.main_decides(lambda: load_checkpoint(self.out))
        self.model.load_state_dict(best["model"])
        if len(self.test_data):
            test = self._evaluate(self.test_data)
        else:
            log.info("no test data (test-fraction %g): no final test", self.config.test_fraction)
            test = {}
        metrics = {**best["metrics"], "test": test, "best_epoch": self.pos["best_epoch"],
                   "selected_on": self.selected_on,
                   "train_seconds": round(self.pos["seconds"], 3), "train_tokens": self.pos["tokens"],
                   "tokens_per_second": self.pos["tokens"] / max(self.pos["seconds"], 1e-9),
                   "world_size": self.world.world_size, "device": str(self.device)}
        best["metrics"] = metrics
        best["history"] = self.history
        best["curve"] = self.curve
        if self.world.is_main:
            save_checkpoint({k: v for k, v in best.items() if k not in _HEADER}, self.out / BEST_NAME)
        files = self._write_reports(metrics)
        return TrainResult(self.out, self.out / BEST_NAME, metrics, self.history, self.split.summary(), files,
                           self.dataset.skipped, embeddings=self.embeddings, curve=self.curve)
    def _lr_factor(self, step: int) -> float:
        warm = int(self.config.warmup * self.planned)
        if step < warm:
            return (step + 1) / warm
        done = min(1.0, (step - warm) / max(1, self.planned - warm))
        return 0.1 + 0.45 * (1 + math.cos(math.pi * done))


_HEADER = ("rnnkit_checkpoint", "rnnkit", "torch", "created")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def _progress_bar(total: int, initial: int, *, enabled: bool):
    from tqdm.auto import tqdm

    # Redrawn in place on a terminal; into a log file or CI pipe, a line every 30 s is enough.
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                desc="training", leave=True, mininterval=interval)


def _logs_above(bar):
    """Print log lines above a live progress bar instead of through it."""
    if bar.disable:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(tqdm_class=type(bar))
