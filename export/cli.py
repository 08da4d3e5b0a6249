"""``rnnkit export``."""

from __future__ import annotations

import logging
import warnings

import click

from rnnkit.runtime.errors import RnnkitWarning
from rnnkit.runtime.text import printable, printable_json

from .exporter import export_onnx
from .graph import DEFAULT_OPSET
from .quantize import MODES

__all__ = ["export"]


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the .onnx file.")
@click.option("--opset", type=click.IntRange(14), default=DEFAULT_OPSET, show_default=True, help="ONNX opset.")
@click.option("--atol", type=click.FloatRange(0, min_open=True), default=1e-5, show_default=True,
              help="Parity gate: largest |torch − onnxruntime| / max(1, largest |value|) allowed per output.")
@click.option("--quantize", type=click.Choice(list(MODES)), default=None,
              help="Write a quantized model: int8 (about a quarter of the size; answers independent of the "
                   "batch and of chunking), int4 (about a fifth; larger loss), int8-dynamic (onnxruntime's "
                   "per-call scales: fastest LSTM, answers depend on the batch).")
@click.option("--max-drop", type=click.FloatRange(0), default=0.01, show_default=True,
              help="--quantize: refuse when the validation metric drops by more than this (relative).")
@click.option("--skip-parity", is_flag=True, help="Do not compare with torch (warns).")
@click.option("--force", is_flag=True, help="Replace an existing file at --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Log every parity comparison.")
def export(checkpoint: str, out: str, opset: int, atol: float, quantize: str | None, max_drop: float,
           skip_parity: bool, force: bool, as_json: bool, verbose: bool) -> None:
    """Export CHECKPOINT (a checkpoint.pt or a training folder) to one ONNX file.

    The graph takes tokens [batch, seq] and the recurrent state, and returns logits and the
    new state, so one file serves whole texts and token-by-token streams. Everything needed
    to use it (tokenizer, vocabulary, labels, architecture) is stored in its metadata. The
    file is written only after onnx.checker and the torch/onnxruntime parity gate pass.

    \b
    Example:
      rnnkit export runs/hello --out hello.onnx
      rnnkit export runs/sentiment --out sentiment.int8.onnx --quantize int8
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RnnkitWarning)
        try:
            report = export_onnx(checkpoint, out, opset=opset, atol=atol, quantize=quantize, max_drop=max_drop,
                                 skip_parity=skip_parity, overwrite=force)
        finally:  # one line each, not Python's file:line and source line
            for w in caught:
                click.echo(f"Warning: {printable(w.message)}", err=True)
    if as_json:
        click.echo(printable_json(report.to_dict(), indent=2))
        return
    click.echo(f"wrote {printable(report.path)} ({report.size_bytes / 1024:.1f} KiB, {report.spec.task}, "
               f"{report.spec.cell} × {report.spec.layers}) in {report.seconds:.1f}s")
    if report.parity:
        p = report.parity
        click.echo(f"parity: {len(p.cases)} comparisons, max |Δ| {p.max_abs_diff:.2e} "
                   f"({p.max_scaled_diff:.2e} relative to max(1, max |x|) ≤ {atol:g})")
    q = report.quantization
    if q:
        mode = q["mode"]
        done = ", ".join(f"{op} ×{n}" for op, n in q["quantized_ops"].items())
        done = f"quantized {done}" if done else "no layer computes quantized"
        click.echo(f"{mode}: {done}; size ×{q['size_ratio']:.2f}; step ×{q['step_ratio']:.2f} "
                   f"(batch 1, one thread); max |Δ| vs torch {q['max_abs_diff']:.2e} (tolerance {q['atol']:.1e})")
        if q.get("weight_only_ops"):
            click.echo(f"{mode}: weights stored int8, computed in fp32: {', '.join(q['weight_only_ops'])}")
        if q.get("not_quantized_ops"):
            click.echo(f"{mode}: {', '.join(q['not_quantized_ops'])} computes in fp32: onnxruntime has no int8 "
                       "kernel for it")
        v, inv = q["vs_fp32"], q["invariance"]
        click.echo(f"{mode}: vs fp32 max |Δ| {v['max_abs_diff']:.2e}, top-1 {v['what']} agreement "
                   f"{v['top1_agreement']:.4f} over {v['compared']}")
        moved = f"max |Δ| {inv['max_scaled_diff']:.1e} relative"
        same = f"yes ({moved}, {inv['cases']} comparisons)" if inv["ok"] else f"no, by design ({moved}: {inv['worst']})"
        click.echo(f"{mode}: alone == batched == chunked: {same}")
        if "metric" in q:
            m = q["metric"]
            click.echo(f"{mode}: validation {m['name']} {m['fp32']:.4f} → {m['quantized']:.4f} "
                       f"({100 * m['relative_drop']:+.2f}% drop)")
