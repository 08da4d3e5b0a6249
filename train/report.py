"""What a training run leaves next to its checkpoint: metrics.csv, metrics.json, loss.png."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from rnnkit.runtime.files import atomic_path
from rnnkit.runtime.metrics import perplexity

__all__ = ["CURVE_KEYS", "CURVE_ROWS", "csv_fields", "curve_every", "loss_figure", "plot_loss", "report_rows",
           "write_metrics"]

log = logging.getLogger(__name__)
CSV_FIELDS = ("step", "epoch", "tokens", "seconds", "lr", "train_loss", "valid_loss", "valid_metric",
              "tokens_per_second")
CURVE_KEYS = ("step", "epoch", "tokens", "seconds", "lr", "train_loss")  # one logged point of training
CURVE_ROWS = 500  # training-loss points a run logs at most (plus one at each validation)
_MARKED = 40  # validations loss.png draws as points; more are drawn as a line only


def curve_every(planned: int) -> int:
    """Steps between two logged training-loss points: every step for runs of up to ``CURVE_ROWS`` steps.

    >>> curve_every(300), curve_every(20_000)
    (1, 40)
    """
    return max(1, -(-planned // CURVE_ROWS))


def shown_metric(metric: str | None) -> str | None:
    """The validation metric metrics.csv and loss.png show: lm's is its loss, so perplexity is shown."""
    return "perplexity" if metric == "loss" else metric


def csv_fields(metric: str | None) -> tuple[str, ...]:
    """metrics.csv's columns: ``valid_metric`` named for the metric it holds (``valid_accuracy``)."""
    shown = shown_metric(metric)
    return tuple(f"valid_{shown}" if f == "valid_metric" and shown else f for f in CSV_FIELDS)


def report_rows(history: list[dict[str, Any]], curve: list[dict[str, Any]], metric: str | None,
                ) -> list[dict[str, Any]]:
    """metrics.csv's rows, by step: one per logged point of ``curve`` (``train_loss`` is the
    smoothed loss), with the validation columns filled where a validation (a ``history``
    record) ran and empty elsewhere.
    """
    name = csv_fields(metric)[CSV_FIELDS.index("valid_metric")]
    rows = {r["step"]: {**r, "tokens_per_second": r["tokens"] / max(r["seconds"], 1e-9)} for r in curve}
    for record in history:
        row = rows.setdefault(record["step"], {k: record.get(k) for k in (*CURVE_KEYS, "tokens_per_second")
                                               if k != "train_loss"})
        row["valid_loss"] = record["valid_loss"]
        # lm's metric is its loss; its perplexity, as evaluate computes it, is what is shown
        row[name] = perplexity(record["valid_loss"]) if metric == "loss" else record["valid_metric"]
    return [rows[step] for step in sorted(rows)]


def write_metrics(out: Path, history: list[dict[str, Any]], summary: dict[str, Any],
                  curve: list[dict[str, Any]] = ()) -> dict[str, Path]:
    """Write :func:`report_rows` as CSV and everything as JSON, atomically."""
    csv_path, json_path = out / "metrics.csv", out / "metrics.json"
    metric = summary.get("metric")
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=csv_fields(metric), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(report_rows(history, list(curve), metric))
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps({"history": history, "curve": list(curve), **summary}, indent=2,
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    return {"metrics_csv": csv_path, "metrics_json": json_path}


def loss_figure(history: list[dict[str, Any]], curve: list[dict[str, Any]], metric: str | None, title: str):
    """The figure of ``loss.png``: by step, the smoothed training loss (a line), the validation
    loss (points on a line) and, on a second axis, the validation metric; None without data.

    A bare ``Figure`` draws with Agg without pyplot, so the host application's backend and
    pyplot's figure list are left alone.
    """
    from matplotlib.figure import Figure

    rows = report_rows(history, curve, metric)
    if not rows:
        return None
    name = csv_fields(metric)[CSV_FIELDS.index("valid_metric")]
    trained = [r for r in rows if r.get("train_loss") is not None]
    validated = [r for r in rows if r.get("valid_loss") is not None]
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    lone = {"marker": "o"} if len(trained) == 1 else {}  # one step: a dot, since a line needs two
    ax.plot([r["step"] for r in trained], [r["train_loss"] for r in trained], color="C0",
            label="train (smoothed)", **lone)
    steps = [r["step"] for r in validated]
    few = len(validated) <= _MARKED  # each validation a point; beyond, the points would merge into a band
    ax.plot(steps, [r["valid_loss"] for r in validated], color="C1", marker="o" if few else None,
            label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles = ax.get_lines()
    if metric and validated:
        shown = name.removeprefix("valid_")
        other = ax.twinx()
        handles += other.plot(steps, [r[name] for r in validated], color="C2", marker="s" if few else None,
                              linestyle="--", label=f"validation {shown}")
        other.set_ylabel(shown)
        if shown == "perplexity":
            other.set_yscale("log")
    # below the axes, where no curve can hide under it
    fig.legend(handles=handles, labels=[h.get_label() for h in handles], loc="outside lower center", ncols=3)
    return fig


def plot_loss(out: Path, history: list[dict[str, Any]], title: str, *, curve: list[dict[str, Any]] = (),
              metric: str | None = None) -> Path | None:
    """:func:`loss_figure` as ``out/loss.png``; None (and a warning) without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("matplotlib is not installed, so no loss plot: pip install 'rnnkit[plot]'")
        return None
    fig = loss_figure(history, list(curve), metric, title)
    if fig is None:
        return None
    path = out / "loss.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
