"""Scoring a model on labelled data: ``Model.evaluate`` and ``rnnkit evaluate``.

What is scored, per task (the model file's task decides, and so does the reader of a path):

- ``classify``: ``accuracy``, ``macro_f1`` (over every label of the model), ``count``,
  ``per_class`` ``{label: {precision, recall, f1, support}}`` and ``confusion`` (rows gold,
  columns predicted, both in the model's label order), through ``model.classify``.
- ``tag``: ``accuracy`` over tokens, ``count`` (tokens), ``examples``; a B/M/E/S model also
  ``word_precision``, ``word_recall``, ``word_f1``. Lines are already cut into tokens, so they
  are tagged as given (``model.tag(tokens=...)``).
- ``lm``: ``loss`` (mean negative log-likelihood a token, natural log), ``perplexity``
  (``exp(loss)``), ``tokens``, ``documents`` and ``unscored``. Each document is scored on its
  own, from ``<bos>`` through its tokens to ``<eos>``, as runtime streams read text; training's
  figure runs over all documents as one stream with the state carried, so the two differ a
  little. A model framed without ``<bos>`` reads a document from the zero state and scores its
  tokens from the second on; one without ``<eos>`` scores no ``<eos>``; such a model's metrics
  add ``framing`` (``{"bos": …, "eos": …}``), and a document with nothing to score (no tokens
  at all, or one token and neither ``<bos>`` nor ``<eos>``) is left out and counted in
  ``unscored``.

An example whose gold label (or one of whose tags) the model does not know cannot be scored: it
is left out of every figure and counted in ``unscored``, with ``unknown_labels`` (classify:
examples per label) or ``unknown_tags`` (tag: tokens per tag). Data none of whose examples can
be scored is a :class:`DataError`.

>>> report = model.evaluate("test.tsv")  # doctest: +SKIP
>>> report.metrics["accuracy"], report.to_dict()["macro_f1"]  # doctest: +SKIP
(0.91, 0.9)
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .datafiles import read_labeled, read_tagged, read_text, tag_scheme
from .errors import ConfigError, DataError, InputError
from .metrics import class_scores, confusion_matrix, macro_f1, perplexity, word_prf
from .tagging import bmes_spans

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Evaluation", "evaluate_model"]

_CHUNK = 4096  # examples handed to classify/tag at a time: their results are reduced to counts as they come
_BATCH_TOKENS = 1 << 18  # lm: the most tokens in one padded batch (its ids, targets and mask)
_SHAPES = {"lm": "a str (one document)", "classify": "a (text, label) pair of str",
           "tag": "a (tokens, tags) pair of two lists of str of one length"}


@dataclass(frozen=True)
class Evaluation:
    """What ``Model.evaluate`` measured: ``metrics`` by name, and where they came from.

    ``labels`` is the model's label order (the confusion matrix's rows and columns); ``source``
    the file read (None for a list of examples); ``skipped`` the bad lines skipped with
    ``skip_bad``.
    """

    task: str
    metrics: dict[str, Any]
    labels: tuple[str, ...] = ()
    source: str | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", dict(self.metrics))  # a copy: the caller's dict stays theirs

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON: every metric under its name, then ``task``, ``labels``, ``source``
        and ``skipped_lines``."""
        return {**copy.deepcopy(self.metrics), "task": self.task, "labels": list(self.labels),
                "source": self.source, "skipped_lines": self.skipped}

    def lines(self) -> list[str]:
        """The report for a person, one line each (``rnnkit evaluate`` prints them)."""
        m = self.metrics
        where = f"{self.source}: " if self.source else ""
        skipped = f" ({self.skipped:,} bad lines skipped)" if self.skipped else ""
        if self.task == "lm":
            framing = m.get("framing", {"bos": True, "eos": True})
            span = (f"each {'<bos>' if framing['bos'] else 'from its 2nd token'} … "
                    f"{'<eos>' if framing['eos'] else 'its last token'}")
            out = [f"{where}{m['documents']:,} documents, {m['tokens']:,} tokens ({span}){skipped}",
                   f"perplexity  {m['perplexity']:.4f}", f"loss        {m['loss']:.4f} (nats a token)"]
            if m.get("unscored"):
                n = m["unscored"]
                out += ["", f"not scored: {n:,} document{'s' if n > 1 else ''} with no token to predict"]
            return out
        if self.task == "tag":
            out = [f"{where}{m['examples']:,} examples, {m['count']:,} tokens{skipped}",
                   f"token accuracy  {m['accuracy']:.4f}"]
            if "word_f1" in m:
                out += [f"word precision  {m['word_precision']:.4f}", f"word recall     {m['word_recall']:.4f}",
                        f"word F1         {m['word_f1']:.4f}"]
            return out + _unknown_lines(m, "unknown_tags", "tags")
        out = [f"{where}{m['count']:,} examples{skipped}", f"accuracy  {m['accuracy']:.4f}",
               f"macro F1  {m['macro_f1']:.4f}", ""]
        names = [_cut(label) for label in self.labels]
        w = max([5, *map(len, names)])
        out.append(f"{'label':<{w}}  precision  recall  f1      support")
        for name, label in zip(names, self.labels):
            s = m["per_class"][label]
            out.append(f"{name:<{w}}  {s['precision']:<9.4f}  {s['recall']:<6.4f}  {s['f1']:<6.4f}  {s['support']:,}")
        out.append("")
        if len(self.labels) > 20:
            out.append(f"confusion matrix: {len(self.labels)} × {len(self.labels)}, in --json (to_dict()['confusion'])")
        else:
            cells = [[f"{n:,}" for n in row] for row in m["confusion"]]
            cw = max(len(c) for c in [*names, *(c for row in cells for c in row)])
            out.append("confusion (rows: gold, columns: predicted)")
            out.append(" " * w + "  " + "  ".join(f"{n:>{cw}}" for n in names))
            out += [f"{name:<{w}}  " + "  ".join(f"{c:>{cw}}" for c in row) for name, row in zip(names, cells)]
        return out + _unknown_lines(m, "unknown_labels", "a label")


def _cut(label: str, most: int = 24) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"


def _unknown_lines(m: Mapping[str, Any], key: str, what: str) -> list[str]:
    """The examples left out: ``not scored: 3 examples with a label the model does not know: mid (3)``."""
    n = m.get("unscored")
    if not n:
        return []
    shown = ", ".join(f"{name} ({k:,})" for name, k in list(m[key].items())[:10])
    more = f", … ({len(m[key]):,} in all)" if len(m[key]) > 10 else ""
    return ["", f"not scored: {n:,} example{'s' if n > 1 else ''} with {what} the model does not know: {shown}{more}"]


def evaluate_model(model: Model, data: str | os.PathLike | Iterable[Any], *, batch_size: int = 64,
                   skip_bad: bool = False) -> Evaluation:
    """``model.evaluate(data)``: read or check the examples, run them, score them (see the module)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(skip_bad, bool):
        raise TypeError(f"skip_bad must be True or False, got {type(skip_bad).__name__}")
    task, source, skipped = model.task, None, 0
    if isinstance(data, (str, os.PathLike)):
        source = os.fspath(data)
        if not isinstance(source, str):
            raise TypeError("give the data path as str or pathlib.Path, not bytes")
        examples, skipped = _read(task, source, skip_bad)
    elif isinstance(data, (bytes, bytearray)) or not isinstance(data, Iterable):
        raise TypeError(f"data must be a path (str or pathlib.Path) or a list of examples, got {type(data).__name__}")
    else:
        examples = _checked(task, list(data))
    if task == "tag":
        examples = tag_scheme(examples)[0]  # B/M/E/S tags uppercased, as training reads them
    run = {"lm": _score_lm, "classify": _score_classify, "tag": _score_tag}[task]
    metrics = run(model, examples, batch_size, source)
    return Evaluation(task, metrics, tuple(model.labels), source, skipped)


def _read(task: str, path: str, skip_bad: bool) -> tuple[list, int]:
    if path.startswith("builtin:") and not os.path.exists(path):
        raise ConfigError(f"evaluate reads a file, not a built-in corpus ({path}): write the examples to a file "
                          "and give its path")
    reader = {"lm": read_text, "classify": read_labeled, "tag": read_tagged}[task]
    return reader(path, skip_bad=skip_bad)


def _checked(task: str, examples: list) -> list:
    """Examples given as values, in training's shapes (what a reader would have returned)."""
    if not examples:
        raise InputError("no examples to evaluate (the list is empty)")
    for i, example in enumerate(examples):
        if task == "lm":
            ok = isinstance(example, str)
        elif task == "classify":
            ok = isinstance(example, (tuple, list)) and len(example) == 2 and all(isinstance(x, str) for x in example)
        else:
            ok = (isinstance(example, (tuple, list)) and len(example) == 2
                  and all(isinstance(x, (list, tuple)) and all(isinstance(t, str) for t in x) for x in example))
        if not ok:
            raise TypeError(f"a {task} example is {_SHAPES[task]}; example {i} is {_kind(example)}")
        if task == "tag":
            tokens, tags = example
            if not tokens or len(tokens) != len(tags) or not all(tokens) or not all(tags):
                raise InputError(f"example {i} has {len(tokens)} tokens and {len(tags)} tags: a tag example has "
                                 "as many non-empty tags as non-empty tokens, at least one")
    if task == "tag":
        return [(list(tokens), list(tags)) for tokens, tags in examples]
    return [tuple(e) for e in examples] if task == "classify" else examples


def _kind(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(type(x).__name__ for x in value[:3])})"
    return f"a {type(value).__name__}"


def _none_known(source: str | None, n: int, what: str, labels: list[str]) -> DataError:
    shown = ", ".join(labels[:10]) + (", …" if len(labels) > 10 else "")
    return DataError(f"none of the {n:,} examples can be scored: the model knows no {what} of theirs (it knows "
                     f"{shown}); is this data for this model?", path=source)


def _score_classify(model: Model, examples: list, batch_size: int, source: str | None) -> dict[str, Any]:
    labels = model.labels
    index = {label: i for i, label in enumerate(labels)}
    scored = [(text, index[label]) for text, label in examples if label in index]
    unknown = Counter(label for _, label in examples if label not in index)
    if not scored:
        raise _none_known(source, len(examples), "label", labels)
    predicted: list[int] = []
    for at in range(0, len(scored), _CHUNK):
        preds = model.classify([text for text, _ in scored[at : at + _CHUNK]], batch_size=batch_size)
        predicted += [index[p.label] for p in preds]
    confusion = confusion_matrix([gold for _, gold in scored], predicted, len(labels))  # (C, C)
    return {"accuracy": float(np.trace(confusion)) / len(scored), "macro_f1": macro_f1(confusion),
            "count": len(scored), "per_class": class_scores(confusion, labels), "confusion": confusion.tolist(),
            "unscored": sum(unknown.values()), "unknown_labels": dict(sorted(unknown.items()))}


def _score_tag(model: Model, examples: list, batch_size: int, source: str | None) -> dict[str, Any]:
    known = set(model.labels)
    scored, unknown, unscored = [], Counter(), 0
    for tokens, tags in examples:
        if known.issuperset(tags):
            scored.append((tokens, tags))
        else:
            unscored += 1
            unknown.update(t for t in tags if t not in known)
    if not scored:
        raise _none_known(source, len(examples), "tag", model.labels)
    bmes = model.metadata.tag_scheme == "bmes"
    correct = total = 0
    gold_spans: list[set] = []
    pred_spans: list[set] = []
    for at in range(0, len(scored), _CHUNK):
        part = scored[at : at + _CHUNK]
        results = model.tag(tokens=[tokens for tokens, _ in part], batch_size=batch_size)
        for (_, gold), result in zip(part, results):
            pred = [tag for _, tag in result]
            correct += sum(g == p for g, p in zip(gold, pred))
            total += len(gold)
            if bmes:
                gold_spans.append(set(bmes_spans(gold)))
                pred_spans.append(set(bmes_spans(pred)))
    metrics: dict[str, Any] = {"accuracy": correct / total, "count": total, "examples": len(scored)}
    if bmes:
        p, r, f = word_prf(gold_spans, pred_spans)
        metrics.update(word_precision=p, word_recall=r, word_f1=f)
    return {**metrics, "unscored": unscored, "unknown_tags": dict(sorted(unknown.items()))}


def _score_lm(model: Model, docs: list[str], batch_size: int, source: str | None) -> dict[str, Any]:
    """Each document from the zero state: inputs ``<bos> ids``, targets ``ids <eos>``; without
    ``<bos>`` inputs ``ids`` and targets ``ids[1:]``, without ``<eos>`` no ``<eos>`` target."""
    v, spec = model.vocab, model.metadata
    framed = []  # (inputs, targets) of each document with something to score; targets[t] follows inputs[t]
    for doc in docs:
        ids = model.encode(doc)
        inputs = [v.bos_id, *ids] if spec.bos else ids
        targets = [*ids[0 if spec.bos else 1 :], *([v.eos_id] if spec.eos else [])][: len(inputs)]
        if targets:
            framed.append((inputs, targets))
    if not framed:
        lacks = " and ".join(name for name, has in (("<bos>", spec.bos), ("<eos>", spec.eos)) if not has)
        need = 1 if spec.bos or spec.eos else 2
        raise DataError(f"none of the {len(docs):,} documents has a token to predict: this model was trained "
                        f"without {lacks}, so a document needs at least {need} token{'s' * (need > 1)} to be "
                        "scored", path=source)
    order = sorted(range(len(framed)), key=lambda i: len(framed[i][0]))
    rows = max(1, min(batch_size, model.budget.max_batch()))
    total, count, at = 0.0, 0, 0
    while at < len(order):
        chunk = [order[at]]
        while (at + len(chunk) < len(order) and len(chunk) < rows
               and (len(chunk) + 1) * len(framed[order[at + len(chunk)]][0]) <= _BATCH_TOKENS):
            chunk.append(order[at + len(chunk)])
        at += len(chunk)
        width = len(framed[chunk[-1]][0])
        inputs = np.full((len(chunk), width), v.pad_id, np.int64)  # (B, T)
        targets = np.full((len(chunk), width), -1, np.int64)  # (B, T); -1 past each document's last target
        for row, i in enumerate(chunk):
            ins, outs = framed[i]
            inputs[row, : len(ins)] = ins
            targets[row, : len(outs)] = outs
        for start, logits in model.run_chunks(inputs, model.zero_state(len(chunk))):  # (B, t, V)
            step = targets[:, start : start + logits.shape[1]]  # (B, t)
            total += _nll(logits, step)
            count += int((step >= 0).sum())
    loss = total / count
    metrics = {"perplexity": perplexity(loss), "loss": loss, "tokens": count, "documents": len(framed),
               "unscored": len(docs) - len(framed)}
    return metrics if spec.bos and spec.eos else {**metrics, "framing": {"bos": spec.bos, "eos": spec.eos}}


def _nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """The summed −log softmax(logits)[target] (B, t, V) × (B, t) over targets ≥ 0, in float64."""
    top = logits.max(-1, keepdims=True)  # (B, t, 1)
    lse = np.log(np.exp(logits - top).sum(-1, dtype=np.float64)) + top[..., 0]  # (B, t)
    mask = targets >= 0
    picked = np.take_along_axis(logits, np.where(mask, targets, 0)[..., None], -1)[..., 0]  # (B, t)
    return float((lse - picked)[mask].sum())
