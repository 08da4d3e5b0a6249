"""The runtime's commands: inspect, generate, classify, tag, evaluate, stream, bench. No torch here."""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
from collections.abc import Callable, Iterator
from io import TextIOBase, TextIOWrapper
from itertools import chain, islice
from pathlib import Path
from typing import Any

import click
import numpy as np

from .errors import ConfigError, InputError, ProviderError
from .model import Model, load_model
from .sampling import MAX_SEED
from .session import CPU_HINT, MAX_THREADS
from .text import printable, printable_json

__all__ = ["bench", "classify", "evaluate", "generate", "inspect_cmd", "stream", "tag"]


def _session_options(f: Callable) -> Callable:
    f = click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=1, show_default=True,
                     help="onnxruntime intra-op threads.")(f)
    f = click.option("--providers", default="auto", show_default=True,
                     help="auto, cpu, cuda, or a comma-separated list of onnxruntime providers.")(f)
    return click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))(f)


def _load(model_path: str, providers: str, threads: int) -> Model:
    chosen: Any = providers if "," not in providers and "Provider" not in providers else \
        [p.strip() for p in providers.split(",") if p.strip()]
    try:
        return load_model(model_path, providers=chosen, threads=threads)
    except ConfigError as e:  # only --providers can be wrong here (click checks --threads)
        raise click.BadParameter(str(e), param_hint="'--providers'") from e
    except ProviderError as e:  # the library's advice names its keywords: here it is an option
        raise ProviderError(str(e).replace(CPU_HINT, "pass --providers cpu to run on CPU")) from e


MAX_TEXT_LINE = 1 << 20  # characters in one text of `classify --file`: an endless line is refused, not read
_PIECE = 1 << 16  # characters of a longer stdin line that `stream` feeds at a time


def _stdin() -> Any:
    if sys.stdin is None:  # started with stdin closed (`<&-`)
        raise InputError("stdin is closed: nothing to read; pipe or redirect the text into it (… < texts.txt)")
    return sys.stdin


def _open_file(path: str) -> Any:
    """``--file PATH`` opened for reading as bytes; a folder, pipe, device or socket is refused (a pipe
    with no writer would block forever, a device like /dev/zero never ends)."""
    def refuse(why: str) -> click.BadParameter:
        return click.BadParameter(f"{printable(path)} {why}", param_hint="'--file'")

    def kind(mode: int) -> click.BadParameter:
        if stat.S_ISDIR(mode):
            return refuse("is a folder; give a file with one text per line")
        return refuse("is not a regular file (a pipe, a device or a socket: reading it could block or never end); "
                      "give a file, or '-' and send the text to stdin")

    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise kind(mode)
        # O_NONBLOCK: should the path turn into a pipe after the check, opening it still cannot block
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise refuse(f"cannot be read: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise kind(mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _lines(source: Any, name: str, *, limit: int) -> Iterator[tuple[str, bool]]:
    """``(text, ended)`` for the lines of ``source`` (a binary or text stream) read as UTF-8, without
    their line ends, at most ``limit`` characters at a time: a longer line comes in pieces, all but
    its last with ``ended`` False. Undecodable bytes are an InputError."""
    binary = getattr(source, "buffer", None)  # a text stream's bytes: read as UTF-8 whatever the locale
    if binary is None and not isinstance(source, TextIOBase):
        binary = source
    text = source if binary is None else TextIOWrapper(binary, encoding="utf-8", newline=None)
    try:
        while True:
            line = text.readline(limit)
            if not line:
                return
            ended = line.endswith("\n") or len(line) < limit  # short without a line end: the last line
            yield line.removesuffix("\n"), ended
    except UnicodeDecodeError as e:
        raise InputError(f"{name} is not UTF-8 text (byte {e.object[e.start:e.start + 1]!r}); "
                         "give UTF-8 text") from None
    finally:
        if binary is not None:  # leave stdin (or the file) open for its owner
            text.detach()


def _echo_json(value: Any) -> None:
    click.echo(printable_json(value))


def _echo_line(line: str) -> None:
    """One line of output, whatever the file or text it shows holds (see runtime/text.py)."""
    click.echo(printable(line))


@click.command("inspect")
@_session_options
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def inspect_cmd(model_path: str, providers: str, threads: int, as_json: bool) -> None:
    """Show what MODEL is: task, architecture, vocabulary, labels, tokenizer, I/O, provenance."""
    model = _load(model_path, providers, threads)
    info = describe(model)
    echo = _echo_line  # every value comes from the file: printed with its control characters escaped
    if as_json:
        click.echo(printable_json(info, indent=2))
        return
    s = model.metadata
    echo(f"{info['path']}  ({info['size_bytes'] / 1024:.1f} KiB, format {s.format})")
    echo(f"task:          {s.task}" + (f" ({s.tag_scheme})" if s.task == "tag" else ""))
    activation = f", {s.activation}" if s.activation != "tanh" else ""  # an rnn's default is tanh
    echo(f"architecture:  Embedding({len(s.vocab)}, {s.embed}) → {s.cell.upper()} × {s.layers} "
         f"(hidden {s.hidden}{activation}) → Linear({s.hidden}, {model.n_out})")
    if s.task == "lm" and not (s.bos and s.eos):
        echo(f"framing:       {_framing_words(s.bos, s.eos)}")
    echo(f"vocabulary:    {len(s.vocab)} tokens, e.g. {' '.join(map(repr, info['vocab_sample'][:12]))}")
    if s.labels:
        shown = ", ".join(s.labels[:20]) + (f" … ({len(s.labels)})" if len(s.labels) > 20 else "")
        echo(f"labels:        {shown}")
    echo(f"tokenizer:     {_tokenizer_words(s.tokenizer)}" + (f", Unicode {s.unicode}" if s.unicode else ""))
    for io in info["inputs"] + info["outputs"]:
        echo(f"{io['kind']:<7}        {io['name']:<7} {io['type']:<22} {io['shape']}")
    q = s.quantization
    echo(f"quantization:  {q.get('mode')}" + (f"; computed quantized: {_counts(q.get('quantized_ops'))}"
                                               if q.get("mode") != "none" else ""))
    if q.get("weight_only_ops"):
        echo(f"               weights stored int8, computed fp32: {_counts(q['weight_only_ops'])}")
    if q.get("mode", "none") != "none":
        invariant = q.get("batch_invariant") is True
        echo("               batch-invariant: " + ("yes (a text's answers do not depend on its batch or chunking)"
                                                    if invariant else "no (answers depend on the batch and chunking)"))
        if q.get("operators"):
            echo(f"               operators: {', '.join(q['operators'])} (onnxruntime ≥ "
                 f"{q.get('min_onnxruntime', '?')})")
    p = s.provenance
    echo(f"provenance:    rnnkit {p.get('rnnkit')}, torch {p.get('torch')}, onnx {p.get('onnx')}, "
         f"created {p.get('created')}")
    for n, line in enumerate(_metric_lines(s.metrics)):
        echo(f"{'metrics:' if n == 0 else '':<15}{line}")
    echo(f"providers:     {', '.join(model.providers)}")


def _framing_words(bos: bool, eos: bool) -> str:
    """How an lm's texts begin and end, for a model trained without ``<bos>`` or ``<eos>``."""
    return ", ".join([
        "<bos>" if bos else "no <bos> (streams start at zero state; generate needs a prompt)",
        "<eos>" if eos else "no <eos> (it never ends a text itself)",
    ])


def _tokenizer_words(config: dict[str, Any]) -> str:
    """``{"kind": "word", "hmm": true, …}`` → ``word (jieba 0.42.1, precise, HMM on), NFKC, …``."""
    kind = str(config.get("kind"))
    if kind == "word" and config.get("segmenter") == "whitespace":
        kind += " (cut on whitespace)"
    elif kind == "word":
        extra = [f"jieba {config['jieba_version']}" if config.get("jieba_version") else "jieba",
                 *([str(config["mode"])] if config.get("mode") else []),
                 f"HMM {'on' if config.get('hmm', True) else 'off'}"]
        kind += f" ({', '.join(extra)})"
    return ", ".join([kind, f"normalize {config.get('normalize') or 'off'}",
                      "lowercased" if config.get("lowercase") else "case kept",
                      "whitespace kept" if config.get("keep_whitespace") else "whitespace dropped"])


def _counts(ops: Any) -> str:
    """``{"GRU": 2, "MatMul": 1}`` → ``GRU ×2, MatMul ×1`` (``none`` when empty)."""
    if not isinstance(ops, dict) or not ops:
        return "none"
    return ", ".join(f"{op} ×{n}" for op, n in ops.items())


def _metric_lines(metrics: dict[str, Any], *, most: int = 8) -> list[str]:
    """Training's figures as lines: ``valid: accuracy 0.9234, loss 0.2126, …`` then the scalars."""
    lines, scalars = [], []
    for key, value in metrics.items():
        if isinstance(value, dict):
            figures = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()
                       if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
            lines.append(f"{key}: {', '.join(figures[:12])}")
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            scalars.append(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
    if scalars:
        lines.append(", ".join(scalars))
    return [line[:300] for line in lines[:most]]


def describe(model: Model) -> dict[str, Any]:
    """Everything ``rnnkit inspect`` shows, as plain values."""
    s = model.metadata

    def io(kind: str, arg: Any) -> dict[str, Any]:
        return {"kind": kind, "name": arg.name, "type": arg.type, "shape": list(arg.shape)}

    return {
        "path": str(model.path), "size_bytes": Path(model.path).stat().st_size, "format": s.format,
        "task": s.task, "tag_scheme": s.tag_scheme, "cell": s.cell, "layers": s.layers, "hidden": s.hidden,
        "embed": s.embed, "activation": s.activation if s.cell == "rnn" else None,
        "framing": {"bos": s.bos, "eos": s.eos} if s.task == "lm" else None, "n_out": model.n_out,
        "vocab_size": len(s.vocab), "vocab_sample": s.vocab.tokens[4:44],
        "labels": list(s.labels), "tokenizer": s.tokenizer, "unicode": s.unicode, "quantization": s.quantization,
        "provenance": s.provenance, "metrics": s.metrics, "providers": model.providers,
        "inputs": [io("input", a) for a in model.inputs],
        "outputs": [io("output", a) for a in model.outputs],
    }


class _FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click lets both through its bounds)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


@click.command()
@_session_options
@click.option("--prompt", default="", help="Text to continue.")
@click.option("--max-tokens", type=click.IntRange(0), default=100, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=_FiniteFloat(0), default=1.0, show_default=True,
              help="0 is greedy (and so, in effect, is a tiny one).")
@click.option("--top-k", type=click.IntRange(1), default=None, help="Sample from the k likeliest tokens.")
@click.option("--top-p", type=_FiniteFloat(0, 1, min_open=True), default=None,
              help="Sample from the smallest set of tokens with this much probability.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Seed for reproducible sampling.")
@click.option("--stop", multiple=True, help="Stop before this text (repeatable).")
def generate(model_path: str, providers: str, threads: int, prompt: str, max_tokens: int, temperature: float,
             top_k: int | None, top_p: float | None, seed: int | None, stop: tuple[str, ...]) -> None:
    """Continue --prompt with a language model, printing pieces as they come."""
    model = _load(model_path, providers, threads)
    # generate() checks the task and options before the first piece: no prompt is printed before an error
    pieces = model.generate(prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                            top_p=top_p, seed=seed, stop=list(stop) or None)
    # the text is the product: its line ends and tabs print as they are, other control characters escaped
    click.echo(printable(prompt, lines=True), nl=False)
    for piece in pieces:
        click.echo(printable(piece, lines=True), nl=False)
        sys.stdout.flush()
    click.echo()


@click.command()
@_session_options
@click.argument("texts", nargs=-1)
@click.option("--file", "file_", metavar="FILE", default=None,
              help="Read one text per line from this file ('-' for stdin), classifying as it reads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Texts per session call.")
def classify(model_path: str, providers: str, threads: int, texts: tuple[str, ...], file_: str | None,
             as_json: bool, batch_size: int) -> None:
    """Label TEXTS (or the lines of --file) with a classifier.

    --file must be a regular file or '-' (stdin); its lines are read and labelled --batch-size
    at a time, so an endless stdin is labelled as it comes, in bounded memory. A text is at most
    1,048,576 characters.
    """
    looked = file_ is None  # whether --file's first lines were checked for a label column
    for model, batch in _batches(model_path, providers, threads, texts, file_, batch_size):
        if not looked:
            looked = True
            _warn_if_labelled(model, batch, model_path, file_)
        for text, p in zip(batch, model.classify(batch, batch_size=batch_size)):
            if as_json:
                _echo_json({"text": text, "label": p.label, "score": p.score, "scores": p.scores})
            else:
                click.echo(f"{printable(p.label)}\t{p.score:.4f}\t{printable(text)}")


def _warn_if_labelled(model: Model, lines: list[str], model_path: str, file_: str) -> None:
    """One warning on stderr when most ``lines`` read ``label<TAB>text`` with the model's labels: the
    user likely meant to score the model on them, and would otherwise get the label in every text."""
    labels = set(model.labels) if model.task == "classify" else set()
    labelled = sum(1 for line in lines if "\t" in line and line.partition("\t")[0].strip() in labels)
    if labels and labelled * 2 > len(lines):
        name, save = ("stdin", "save them to a file and ") if file_ == "-" else (file_, "")
        data = "FILE" if file_ == "-" else file_
        click.echo(printable(f"Warning: the first column of {name} looks like a label (label<TAB>text); to score the "
                             f"model on these lines, {save}run `rnnkit evaluate {model_path} --data {data}`; "
                             "classifying each whole line"), err=True)


@click.command()
@_session_options
@click.option("--data", metavar="FILE", required=True,
              help="Labelled data of the model's task, read as training reads it: classify TSV `label<TAB>text` "
                   "or JSONL; tag `token/TAG` lines; lm one document per line.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
              help="Examples per session call.")
@click.option("--skip-bad", is_flag=True, help="Skip (and count) malformed lines instead of stopping at the first.")
def evaluate(model_path: str, providers: str, threads: int, data: str, as_json: bool, batch_size: int,
             skip_bad: bool) -> None:
    """Score MODEL on the labelled examples of --data.

    classify: accuracy, macro F1, precision/recall/F1 per label and the confusion matrix; tag:
    token accuracy (and word precision/recall/F1 for a B/M/E/S model), tagging each line's
    tokens as given; lm: perplexity and loss a token, each line a document from <bos> to <eos>
    (framed as the model was trained: without <bos>, from its second token).
    Examples whose label or tags the model does not know are left out and counted.
    """
    model = _load(model_path, providers, threads)
    report = model.evaluate(data, batch_size=batch_size, skip_bad=skip_bad)
    if as_json:
        click.echo(printable_json(report.to_dict(), indent=2))
        return
    for line in report.lines():
        _echo_line(line)


def _batches(model_path: str, providers: str, threads: int, texts: tuple[str, ...], file_: str | None,
             batch_size: int) -> Iterator[tuple[Model, list[str]]]:
    """The loaded model and the texts (arguments, then --file's non-blank lines) ``batch_size`` at
    a time, read as they are used; a usage error when there are none."""
    if not texts and file_ is None:
        raise click.UsageError("give texts as arguments or --file")
    name = "stdin" if file_ == "-" else file_
    owned = None if file_ in (None, "-") else _open_file(file_)
    source = _stdin() if file_ == "-" else owned
    with owned or contextlib.nullcontext():
        model = _load(model_path, providers, threads)
        items = chain(texts, () if source is None else _file_texts(source, name))
        done = 0
        while batch := list(islice(items, batch_size)):
            yield model, batch
            done += len(batch)
    if not done:
        raise click.UsageError(f"{printable(name)} holds no texts (only blank lines): give texts as arguments or "
                               "--file with one text per line")


def _file_texts(source: Any, name: str) -> Iterator[str]:
    """The non-blank lines of ``source``; one longer than ``MAX_TEXT_LINE`` characters is an InputError."""
    for number, (line, ended) in enumerate(_lines(source, name, limit=MAX_TEXT_LINE + 1), 1):
        if not ended or len(line) > MAX_TEXT_LINE:
            raise InputError(f"line {number} of {printable(name)} is longer than {MAX_TEXT_LINE:,} characters; "
                             "give one text per line")
        if line.strip():
            yield line


@click.command()
@_session_options
@click.argument("texts", nargs=-1)
@click.option("--file", "file_", metavar="FILE", default=None,
              help="Read one text per line from this file ('-' for stdin), tagging as it reads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (tokens, tags, words) per text.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Texts per session call.")
def tag(model_path: str, providers: str, threads: int, texts: tuple[str, ...], file_: str | None, as_json: bool,
        batch_size: int) -> None:
    """Tag every token of TEXTS (or of each line of --file); a B/M/E/S model also prints the cut words.

    Each text prints as one line of token/tag pairs (and, for B/M/E/S, a line of words). --file
    must be a regular file or '-' (stdin); its non-blank lines are tagged --batch-size at a time,
    so an endless stdin is tagged as it comes, in bounded memory.
    """
    for model, batch in _batches(model_path, providers, threads, texts, file_, batch_size):
        for result in model.tag(batch, batch_size=batch_size):
            if as_json:
                _echo_json({"tokens": [t for t, _ in result], "tags": [g for _, g in result], "words": result.words})
                continue
            _echo_line(" ".join(f"{t}/{g}" for t, g in result))
            if result.words is not None:
                _echo_line(" / ".join(result.words))


@click.command()
@_session_options
@click.option("--keep-newlines", is_flag=True, help="Feed each line's newline to the model too.")
@click.option("--flush-every-line", is_flag=True,
              help="Each line is a whole text: word models consume it all, tag models end it.")
@click.option("--reset-each-line", is_flag=True, help="Start every line from a fresh stream (implies the above).")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="lm: next tokens to show.")
def stream(model_path: str, providers: str, threads: int, keep_newlines: bool, flush_every_line: bool,
           reset_each_line: bool, top: int) -> None:
    """Read stdin line by line as one live text and print the output as it settles.

    classify: the running label; lm: the likeliest next tokens; tag: the tokens and tags (or
    B/M/E/S words) whose tags are settled, words running across lines. A line prints only when
    it consumed something: a word model holds back the open word until more text comes (or
    until the end of the input, or of the line with --flush-every-line). A line longer than
    65,536 characters is fed (and printed) in pieces of that size, so no line is held whole.
    """
    stdin = _stdin()
    model = _load(model_path, providers, threads)
    whole_lines = flush_every_line or reset_each_line
    newline = "\n" if keep_newlines else ""
    pieces = _lines(stdin, "stdin", limit=_PIECE)  # (text, whether its line ended there)
    if model.task == "tag":
        ts = model.tag_stream()
        for text, ended in pieces:
            if ended:
                _echo_tags(ts.end(text + newline) if whole_lines else ts.feed(text + newline))
            else:
                _echo_tags(ts.feed(text))
        _echo_tags(ts.end())
        return
    s, starts = model.stream(), True
    for text, ended in pieces:
        if reset_each_line and starts:
            s.reset()
        logits = s.feed(text + newline if ended else text)
        if ended and whole_lines and s.pending:
            logits = s.flush()
        _echo_running(model, logits, top)
        starts = ended
    if s.pending:
        _echo_running(model, s.flush(), top)


def _echo_tags(result: Any) -> None:
    """One line of settled tokens (or words); a line end inside one is shown as ``\\n`` (and every
    other control character escaped), so the output stays one line per piece."""
    if result:
        line = " ".join(f"{t}/{g}" for t, g in result) if result.words is None else " / ".join(result.words)
        _echo_line(line)
        sys.stdout.flush()


def _echo_running(model: Model, logits: np.ndarray | None, top: int) -> None:
    if logits is None:
        return
    if model.task == "classify":
        p = model.prediction(logits)
        click.echo(f"{printable(p.label)}\t{p.score:.4f}")
    else:  # repr escapes what a token holds
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = np.argsort(-probs)[:top]
        click.echo("  ".join(f"{model.vocab.token(int(i))!r} {probs[i]:.3f}" for i in best))
    sys.stdout.flush()


@click.command()
@_session_options
@click.option("--steps", type=click.IntRange(10), default=2000, show_default=True, help="Steps per measurement.")
@click.option("--streams", default="1,8,64", show_default=True, help="Batcher sizes to measure.")
@click.option("--seq", type=click.IntRange(1), default=128, show_default=True, help="Whole-text length.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(model_path: str, providers: str, threads: int, steps: int, streams: str, seq: int, as_json: bool) -> None:
    """Measure MODEL here: step latency against a bare session.run, batched streams, whole texts."""
    from .bench import measure

    try:
        sizes = [int(x) for x in streams.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"give comma-separated positive integers, got {streams!r}", param_hint="'--streams'")
    model = _load(model_path, providers, threads)
    figures = measure(model, steps=steps, stream_counts=sizes, seq=seq)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    st = figures["step"]
    click.echo(f"{model!r}")
    click.echo(f"step (batch 1): Stream.step {st['stream_us']:.1f} µs, bare session.run {st['bare_us']:.1f} µs "
               f"(ratio {st['ratio']:.2f})")
    for row in figures["batcher"]:
        click.echo(f"{row['streams']:>4} streams: {row['tokens_per_s']:,.0f} tokens/s batched vs "
                   f"{row['single_tokens_per_s']:,.0f} one call each (×{row['speedup']:.1f})")
    w = figures["whole"]
    click.echo(f"whole texts: batch {w['batch']} × {w['seq']} tokens: {w['tokens_per_s']:,.0f} tokens/s")
