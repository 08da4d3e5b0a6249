"""What a training run leaves next to its checkpoint: metrics.csv, metrics.json, loss.png."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from rnnkit.runtime.files import atomic_path

__all__ = ["csv_fields", "plot_loss", "write_metrics"]

log = logging.getLogger(__name__)
CSV_FIELDS = ("epoch", "step", "tokens", "seconds", "lr", "train_loss", "valid_loss", "valid_metric",
              "tokens_per_second")


def csv_fields(metric: str | None) -> tuple[str, ...]:
    """metrics.csv's columns: ``valid_metric`` named for the metric it holds (``valid_accuracy``)."""
    return tuple(f"valid_{metric}" if f == "valid_metric" and metric else f for f in CSV_FIELDS)


def write_metrics(out: Path, history: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Path]:
    """Write the per-epoch history as CSV and everything as JSON, atomically."""
    csv_path, json_path = out / "metrics.csv", out / "metrics.json"
    metric = summary.get("metric")
    fields = csv_fields(metric)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, f"valid_{metric}": row.get("valid_metric")} if metric else row for row in history)
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps({"history": history, **summary}, indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    return {"metrics_csv": csv_path, "metrics_json": json_path}


def plot_loss(out: Path, history: list[dict[str, Any]], title: str) -> Path | None:
    """Train and validation loss per epoch as ``loss.png``; None (and a warning) without matplotlib.

    A bare ``Figure`` draws with Agg without pyplot, so the host application's backend and
    pyplot's figure list are left alone.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed, so no loss plot: pip install 'rnnkit[plot]'")
        return None
    if not history:
        return None
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.subplots()
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["train_loss"] for h in history], marker="o", label="train")
    ax.plot(steps, [h["valid_loss"] for h in history], marker="o", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "loss.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
