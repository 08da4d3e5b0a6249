"""Losses and metrics for the three tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.runtime.metrics import macro_f1, perplexity, word_prf
from rnnkit.runtime.tagging import bmes_spans

from .batches import IGNORE, Batch, LMStream, SequenceSet
from .model import RNNModel, State, detach_state

__all__ = ["batch_loss", "evaluate", "evaluate_sums", "loss_sum", "metrics_from", "primary_metric", "rows_of",
           "target_count", "word_prf"]


def primary_metric(task: str, tag_scheme: str) -> tuple[str, bool]:
    """The validation metric that picks the best model, and whether higher is better."""
    if task == "lm":
        return "loss", False
    if task == "tag" and tag_scheme == "bmes":
        return "word_f1", True
    return "accuracy", True


def batch_loss(model: RNNModel, batch: Batch, task: str, state: State | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, State]:
    """Mean loss over the batch's real targets; returns (loss, logits, state)."""
    logits, state = model(batch.tokens, state)  # (B, T, n_out)
    if task == "classify":
        last = logits[torch.arange(logits.shape[0]), batch.lengths.to(logits.device) - 1]  # (B, C)
        return F.cross_entropy(last, batch.targets), last, state
    loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE)
    return loss, logits, state


def loss_sum(model: torch.nn.Module, batch: Batch, task: str, state: State | None = None,
             ) -> tuple[torch.Tensor, State]:
    """The loss summed over the batch's real targets (one worker's rows of a global batch); with the state.

    A worker divides it by the global batch's :func:`target_count`, so the workers' gradients
    average to the one-process gradient of the mean.
    """
    logits, state = model(batch.tokens, state)  # (b, T, n_out)
    if task == "classify":
        last = logits[torch.arange(logits.shape[0]), batch.lengths.to(logits.device) - 1]  # (b, C)
        return F.cross_entropy(last, batch.targets, reduction="sum"), state
    return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE, reduction="sum"), state


def target_count(batch: Batch, task: str) -> int:
    """The targets :func:`batch_loss` averages over: texts (classify), real tokens (lm, tag)."""
    return len(batch.targets) if task == "classify" else int((batch.targets != IGNORE).sum())


def rows_of(batch: Batch, part: slice) -> Batch:
    """The rows ``part`` of ``batch`` (one worker's share), as a Batch of their own."""
    lengths = batch.lengths[part]
    return Batch(batch.tokens[part], batch.targets[part], lengths, int(lengths.sum()))


@torch.no_grad()
def evaluate(model: RNNModel, data: LMStream | SequenceSet, task: str, *, tag_scheme: str = "none",
             labels: list[str] | None = None, batch_size: int = 64,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Loss and the task's metrics on ``data`` (model in eval mode; no RNG is used)."""
    sums = evaluate_sums(model, data, task, tag_scheme=tag_scheme, labels=labels, batch_size=batch_size,
                         device=device)
    return metrics_from(sums, task, tag_scheme)


@torch.no_grad()
def evaluate_sums(model: RNNModel, data: LMStream | SequenceSet, task: str, *, tag_scheme: str = "none",
                  labels: list[str] | None = None, batch_size: int = 64, device: torch.device | str = "cpu",
                  rows: Callable[[int], slice] | None = None) -> dict[str, Any]:
    """What :func:`metrics_from` turns into metrics: sums and counts, so that workers that each scored
    their share merge exactly by adding them up. ``rows(n)``: this worker's rows of a batch of ``n``."""
    was_training = model.training
    model.eval()
    try:
        if isinstance(data, LMStream):
            return _lm_sums(model, data, device, rows)
        return _sequence_sums(model, data, task, tag_scheme, labels or [], batch_size, device, rows)
    finally:
        model.train(was_training)


def metrics_from(sums: dict[str, Any], task: str, tag_scheme: str = "none") -> dict[str, float]:
    """The metrics of :func:`evaluate` from (merged) :func:`evaluate_sums`."""
    count = int(sums["count"])
    if task == "lm":
        loss = sums["loss"] / max(count, 1)
        return {"loss": loss, "perplexity": perplexity(loss), "tokens": count}
    metrics = {"loss": sums["loss"] / max(count, 1), "accuracy": int(sums["correct"]) / max(count, 1), "count": count}
    if task == "classify":
        metrics["macro_f1"] = macro_f1(sums["confusion"].numpy())
    if tag_scheme == "bmes":
        hit, n_gold, n_pred = (int(x) for x in sums["spans"].tolist())
        precision = hit / n_pred if n_pred else 0.0
        recall = hit / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics.update(word_precision=precision, word_recall=recall, word_f1=f1)
    return metrics


def _lm_sums(model: RNNModel, data: LMStream, device, rows) -> dict[str, Any]:
    total, count, state = 0.0, 0, None
    part = rows(data.data.shape[0]) if rows else slice(None)
    for batch in data.batches():
        tokens, targets = batch.tokens[part], batch.targets[part]
        if not len(tokens):
            break
        logits, state = model(tokens.to(device), state)
        state = detach_state(state)
        total += F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(), reduction="sum").item()
        count += targets.numel()
    return {"loss": total, "count": count}


def _sequence_sums(model, data: SequenceSet, task, tag_scheme, labels, batch_size, device, rows):
    total, count, correct = 0.0, 0, 0
    spans = torch.zeros(3, dtype=torch.long)  # words in both, in the gold, in the prediction
    confusion = torch.zeros(max(len(labels), 1), max(len(labels), 1), dtype=torch.long)
    for indices in data.order(batch_size, 0, 0, shuffle=False):
        if rows:
            indices = indices[rows(len(indices))]
            if not indices:
                continue
        batch = data.batch(indices)
        batch.tokens, batch.targets = batch.tokens.to(device), batch.targets.to(device)
        loss, logits, _ = batch_loss(model, batch, task)
        pred = logits.argmax(-1)
        if task == "classify":
            n = len(indices)
            correct += int((pred == batch.targets).sum())
            for g, p in zip(batch.targets.tolist(), pred.tolist()):
                confusion[g, p] += 1
        else:
            mask = batch.targets != IGNORE
            n = int(mask.sum())
            correct += int(((pred == batch.targets) & mask).sum())
            if tag_scheme == "bmes":
                for row in range(len(indices)):  # the tagged positions (a lookahead shifts them)
                    tagged = mask[row]
                    gold = set(bmes_spans([labels[i] for i in batch.targets[row][tagged].tolist()]))
                    guess = set(bmes_spans([labels[i] for i in pred[row][tagged].tolist()]))
                    spans += torch.tensor([len(gold & guess), len(gold), len(guess)])
        total += loss.item() * n
        count += n
    return {"loss": total, "count": count, "correct": correct, "confusion": confusion, "spans": spans}
