"""The runtime's commands: inspect, generate, classify, tag, stream, bench. No torch here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from .errors import ConfigError, InputError
from .model import Model, load_model

__all__ = ["bench", "classify", "generate", "inspect_cmd", "stream", "tag"]


def _session_options(f: Callable) -> Callable:
    f = click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
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


def _lines(source: Iterable[str], name: str) -> Iterator[str]:
    """The lines of a text stream without their line ends; undecodable bytes are an InputError."""
    try:
        for line in source:
            yield line.rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise InputError(f"{name} is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})") from None


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


@click.command("inspect")
@_session_options
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def inspect_cmd(model_path: str, providers: str, threads: int, as_json: bool) -> None:
    """Show what MODEL is: task, architecture, vocabulary, labels, tokenizer, I/O, provenance."""
    model = _load(model_path, providers, threads)
    info = describe(model)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    s = model.metadata
    click.echo(f"{info['path']}  ({info['size_bytes'] / 1024:.1f} KiB, format {s.format})")
    click.echo(f"task:          {s.task}" + (f" ({s.tag_scheme})" if s.task == "tag" else ""))
    click.echo(f"architecture:  Embedding({len(s.vocab)}, {s.embed}) → {s.cell.upper()} × {s.layers} "
               f"(hidden {s.hidden}) → Linear({s.hidden}, {model.n_out})")
    click.echo(f"vocabulary:    {len(s.vocab)} tokens, e.g. {' '.join(map(repr, info['vocab_sample'][:12]))}")
    if s.labels:
        shown = ", ".join(s.labels[:20]) + (f" … ({len(s.labels)})" if len(s.labels) > 20 else "")
        click.echo(f"labels:        {shown}")
    click.echo(f"tokenizer:     {json.dumps(s.tokenizer, ensure_ascii=False)}")
    for io in info["inputs"] + info["outputs"]:
        click.echo(f"{io['kind']:<7}        {io['name']:<7} {io['type']:<22} {io['shape']}")
    q = s.quantization
    click.echo(f"quantization:  {q.get('mode')}" + (f" {json.dumps(q.get('quantized_ops'))}" if q.get("mode") != "none"
                                                     else ""))
    if q.get("weight_only_ops"):
        click.echo(f"               weights stored int8, computed fp32: {json.dumps(q['weight_only_ops'])}")
    p = s.provenance
    click.echo(f"provenance:    rnnkit {p.get('rnnkit')}, torch {p.get('torch')}, onnx {p.get('onnx')}, "
               f"created {p.get('created')}")
    if s.metrics:
        click.echo(f"metrics:       {json.dumps(s.metrics, ensure_ascii=False)[:300]}")
    click.echo(f"providers:     {', '.join(model.providers)}")


def describe(model: Model) -> dict[str, Any]:
    """Everything ``rnnkit inspect`` shows, as plain values."""
    s = model.metadata

    def io(kind: str, arg: Any) -> dict[str, Any]:
        return {"kind": kind, "name": arg.name, "type": arg.type, "shape": list(arg.shape)}

    return {
        "path": str(model.path), "size_bytes": Path(model.path).stat().st_size, "format": s.format,
        "task": s.task, "tag_scheme": s.tag_scheme, "cell": s.cell, "layers": s.layers, "hidden": s.hidden,
        "embed": s.embed, "n_out": model.n_out, "vocab_size": len(s.vocab), "vocab_sample": s.vocab.tokens[4:44],
        "labels": list(s.labels), "tokenizer": s.tokenizer, "quantization": s.quantization,
        "provenance": s.provenance, "metrics": s.metrics, "providers": model.providers,
        "inputs": [io("input", a) for a in model.inputs],
        "outputs": [io("output", a) for a in model.outputs],
    }


@click.command()
@_session_options
@click.option("--prompt", default="", help="Text to continue.")
@click.option("--max-tokens", type=click.IntRange(0), default=100, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=click.FloatRange(0), default=1.0, show_default=True, help="0 is greedy.")
@click.option("--top-k", type=click.IntRange(1), default=None, help="Sample from the k likeliest tokens.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Sample from the smallest set of tokens with this much probability.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--stop", multiple=True, help="Stop before this text (repeatable).")
def generate(model_path: str, providers: str, threads: int, prompt: str, max_tokens: int, temperature: float,
             top_k: int | None, top_p: float | None, seed: int | None, stop: tuple[str, ...]) -> None:
    """Continue --prompt with a language model, printing pieces as they come."""
    model = _load(model_path, providers, threads)
    # generate() checks the task and options before the first piece: no prompt is printed before an error
    pieces = model.generate(prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                            top_p=top_p, seed=seed, stop=list(stop) or None)
    click.echo(prompt, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)
        sys.stdout.flush()
    click.echo()


@click.command()
@_session_options
@click.argument("texts", nargs=-1)
@click.option("--file", "file_", type=click.File("r", encoding="utf-8"), default=None,
              help="Read one text per line from this file ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Texts per session call.")
def classify(model_path: str, providers: str, threads: int, texts: tuple[str, ...], file_, as_json: bool,
             batch_size: int) -> None:
    """Label TEXTS (or the lines of --file) with a classifier."""
    items = list(texts)
    if file_ is not None:
        items += [line for line in _lines(file_, file_.name) if line.strip()]
    if not items:
        raise click.UsageError("give texts as arguments or --file")
    model = _load(model_path, providers, threads)
    for text, p in zip(items, model.classify(items, batch_size=batch_size)):
        if as_json:
            _echo_json({"text": text, "label": p.label, "score": p.score, "scores": p.scores})
        else:
            click.echo(f"{p.label}\t{p.score:.4f}\t{text}")


@click.command()
@_session_options
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print tokens, tags and words as JSON.")
def tag(model_path: str, providers: str, threads: int, text: str, as_json: bool) -> None:
    """Tag every token of TEXT; a B/M/E/S model also prints the cut words."""
    model = _load(model_path, providers, threads)
    result = model.tag(text)
    if as_json:
        _echo_json({"tokens": [t for t, _ in result], "tags": [g for _, g in result], "words": result.words})
        return
    click.echo(" ".join(f"{t}/{g}" for t, g in result))
    if result.words is not None:
        click.echo(" / ".join(result.words))


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
    until the end of the input, or of the line with --flush-every-line).
    """
    model = _load(model_path, providers, threads)
    whole_lines = flush_every_line or reset_each_line
    newline = "\n" if keep_newlines else ""
    lines = _lines(sys.stdin, "stdin")
    if model.task == "tag":
        ts = model.tag_stream()
        for text in lines:
            _echo_tags(ts.end(text + newline) if whole_lines else ts.feed(text + newline))
        _echo_tags(ts.end())
        return
    s = model.stream()
    for text in lines:
        if reset_each_line:
            s.reset()
        logits = s.feed(text + newline)
        if whole_lines and s.pending:
            logits = s.flush()
        _echo_running(model, logits, top)
    if s.pending:
        _echo_running(model, s.flush(), top)


def _echo_tags(result: Any) -> None:
    """One line of settled tokens (or words); a line end inside one is shown as ``\\n``, so the
    output stays one line per piece."""
    if result:
        line = " ".join(f"{t}/{g}" for t, g in result) if result.words is None else " / ".join(result.words)
        click.echo(line.replace("\r", "\\r").replace("\n", "\\n"))
        sys.stdout.flush()


def _echo_running(model: Model, logits: np.ndarray | None, top: int) -> None:
    if logits is None:
        return
    if model.task == "classify":
        p = model.prediction(logits)
        click.echo(f"{p.label}\t{p.score:.4f}")
    else:
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
