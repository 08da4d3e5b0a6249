"""Losses and metrics for the three tasks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnkit.runtime.metrics import macro_f1, perplexity, word_prf
from rnnkit.runtime.tagging import bmes_spans

from .batches import IGNORE, Batch, LMStream, SequenceSet
from .model import RNNModel, State, detach_state

__all__ = ["batch_loss", "evaluate", "primary_metric", "word_prf"]


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


@torch.no_grad()
def evaluate(model: RNNModel, data: LMStream | SequenceSet, task: str, *, tag_scheme: str = "none",
             labels: list[str] | None = None, batch_size: int = 64,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Loss and the task's metrics on ``data`` (model in eval mode; no RNG is used)."""
    was_training = model.training
    model.eval()
    try:
        if isinstance(data, LMStream):
            return _evaluate_lm(model, data, device)
        return _evaluate_sequences(model, data, task, tag_scheme, labels or [], batch_size, device)
    finally:
        model.train(was_training)


def _evaluate_lm(model: RNNModel, data: LMStream, device) -> dict[str, float]:
    total, count, state = 0.0, 0, None
    for batch in data.batches():
        logits, state = model(batch.tokens.to(device), state)
        state = detach_state(state)
        total += F.cross_entropy(logits.flatten(0, 1), batch.targets.to(device).flatten(),
                                 reduction="sum").item()
        count += batch.targets.numel()
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": perplexity(loss), "tokens": count}


def _evaluate_sequences(model, data: SequenceSet, task, tag_scheme, labels, batch_size, device):
    total, count, correct = 0.0, 0, 0
    gold_spans: list[set] = []
    pred_spans: list[set] = []
    confusion = torch.zeros(max(len(labels), 1), max(len(labels), 1), dtype=torch.long)
    for indices in data.order(batch_size, 0, 0, shuffle=False):
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
                    gold_spans.append(set(bmes_spans([labels[i] for i in batch.targets[row][tagged].tolist()])))
                    pred_spans.append(set(bmes_spans([labels[i] for i in pred[row][tagged].tolist()])))
        total += loss.item() * n
        count += n
    metrics = {"loss": total / max(count, 1), "accuracy": correct / max(count, 1), "count": count}
    if task == "classify":
        metrics["macro_f1"] = macro_f1(confusion.numpy())
    if tag_scheme == "bmes":
        p, r, f = word_prf(gold_spans, pred_spans)
        metrics.update(word_precision=p, word_recall=r, word_f1=f)
    return metrics

