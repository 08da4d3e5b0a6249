"""``rnnkit train``."""

from __future__ import annotations

import logging
from typing import Any

import click

from rnnkit.runtime.contract import CELLS, TASKS

from .config import TrainConfig
from .trainer import train as run_training

__all__ = ["train"]


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True,
              help="lm: next token; classify: one label per text; tag: one label per token.")
@click.option("--data", required=True, metavar="SOURCE",
              help="A file (.txt for lm; .tsv/.jsonl for classify; token/TAG lines for tag) "
                   "or builtin:NAME (hello, reviews, segmentation, pos).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the checkpoint and reports.")
@click.option("--level", type=click.Choice(["char", "word"]), default=None,
              help="Tokens: characters, or words cut by jieba. Default char (tag data decides itself).")
@click.option("--cell", type=click.Choice(CELLS), default="gru", show_default=True, help="Recurrent cell.")
@click.option("--layers", type=click.IntRange(1), default=1, show_default=True, help="Stacked recurrent layers.")
@click.option("--embed", type=click.IntRange(1), default=64, show_default=True, help="Embedding size.")
@click.option("--hidden", type=click.IntRange(1), default=128, show_default=True, help="Hidden state size.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Dropout on embeddings, between layers and before the output.")
@click.option("--tie-weights", is_flag=True, help="lm only: share embedding and output weights (embed = hidden).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True, help="Passes over the data.")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Stop after this many optimizer steps.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Sequences per step.")
@click.option("--bptt", type=click.IntRange(1), default=64, show_default=True,
              help="lm: tokens per truncated-BPTT chunk.")
@click.option("--max-len", type=click.IntRange(1), default=256, show_default=True,
              help="classify: tokens read per text; tag: window length.")
@click.option("--lookahead", type=click.IntRange(0, 16), default=None,
              help="tag: tokens read past a token before tagging it (default 2; 0 tags at once).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=3e-3, show_default=True,
              help="Peak learning rate (AdamW, warmup then cosine decay).")
@click.option("--weight-decay", type=click.FloatRange(0), default=0.01, show_default=True, help="AdamW weight decay.")
@click.option("--clip", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Gradient norm clipping.")
@click.option("--patience", type=click.IntRange(0), default=3, show_default=True,
              help="Stop after this many epochs without a better validation metric (0: never).")
@click.option("--min-freq", type=click.IntRange(1), default=1, show_default=True,
              help="Drop tokens seen fewer times from the vocabulary.")
@click.option("--max-vocab", type=click.IntRange(5), default=None, help="Cap the vocabulary size.")
@click.option("--lowercase", is_flag=True, help="Lowercase text before tokenizing.")
@click.option("--no-normalize", is_flag=True, help="Skip NFKC normalisation.")
@click.option("--no-hmm", is_flag=True, help="word level: turn off jieba's HMM for unknown words.")
@click.option("--valid-fraction", type=click.FloatRange(0, 0.5, max_open=True), default=0.1, show_default=True,
              help="Share of the data held out for validation.")
@click.option("--test-fraction", type=click.FloatRange(0, 0.5, max_open=True), default=0.1, show_default=True,
              help="Share of the data held out for the final test.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Use a seeded random subset of N examples.")
@click.option("--whole-file", is_flag=True, help="lm: read the file as one document instead of one per line.")
@click.option("--skip-bad", is_flag=True, help="Skip malformed lines (and count them) instead of stopping.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split, init and batches.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (cuDNN kernels on a GPU).")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@click.option("--save-every", type=click.IntRange(1), default=200, show_default=True,
              help="Steps between resumable snapshots (last.pt).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
def train(resume: bool, quiet: bool, no_normalize: bool, no_hmm: bool, **options: Any) -> None:
    """Train an Embedding → RNN/GRU/LSTM → Linear model.

    The best model (by the validation metric) goes to OUT/checkpoint.pt; OUT/last.pt lets
    --resume continue an interrupted run. Metrics go to OUT/metrics.csv and metrics.json, the
    loss curve to OUT/loss.png.

    \b
    Examples:
      rnnkit train --task tag --data builtin:hello --out runs/hello --epochs 100
      rnnkit train --task classify --data builtin:reviews --level word --out runs/sentiment
    """
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = TrainConfig(normalize=None if no_normalize else "NFKC", hmm=not no_hmm, **options)
    result = run_training(config, resume=resume, progress=not quiet)
    m = result.metrics
    sizes = result.split.get("sizes", {})
    click.echo(f"split (seed {config.seed}): train {sizes.get('train')}, valid {sizes.get('valid')}, "
               f"test {sizes.get('test')}")
    if result.skipped:
        click.echo(f"skipped {result.skipped} malformed lines (--skip-bad)")
    click.echo(f"best epoch {m.get('best_epoch')}: valid {_fmt(m.get('valid', {}))}")
    click.echo(f"test: {_fmt(m.get('test', {}))}")
    if "tokens_per_second" in m:
        click.echo(f"trained {m.get('train_tokens', 0):,} tokens in {m.get('train_seconds', 0):.1f}s "
                   f"({m['tokens_per_second']:,.0f} tokens/s)")
    click.echo(f"checkpoint: {result.checkpoint}")
    for name, path in result.files.items():
        click.echo(f"{name.replace('_', '.')}: {path}")


def _fmt(metrics: dict[str, Any]) -> str:
    keys = ("loss", "perplexity", "accuracy", "macro_f1", "word_f1")
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics) or "-"
