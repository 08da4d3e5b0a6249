"""``rnnkit export``."""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import warnings
from collections.abc import Iterator

import click

from rnnkit.runtime.contract import TASKS
from rnnkit.runtime.errors import ModuleError, RnnkitWarning
from rnnkit.runtime.text import printable, printable_json
from rnnkit.runtime.vocab import SPECIALS

from .exporter import TOKENIZERS, ExportReport, export_module, export_onnx
from .factory import is_factory_spec, load_factory, load_weights, read_tokens
from .graph import DEFAULT_OPSET
from .quantize import MODES

__all__ = ["export", "export_module_cmd"]

_MODULE_DEFAULTS = inspect.signature(export_module).parameters  # the library's defaults are the CLI's


_QUANTIZE_HELP = ("Write a quantized model: int8 (about a quarter of the size; answers independent of the batch "
                  "and of chunking), int4 (about a fifth; larger loss), int8-dynamic (onnxruntime's per-call "
                  "scales: fastest LSTM, answers depend on the batch).")


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the .onnx file.")
@click.option("--opset", type=click.IntRange(14), default=DEFAULT_OPSET, show_default=True, help="ONNX opset.")
@click.option("--atol", type=click.FloatRange(0, min_open=True), default=1e-5, show_default=True,
              help="Parity gate: largest |torch − onnxruntime| / max(1, largest |value|) allowed per output.")
@click.option("--quantize", type=click.Choice(list(MODES)), default=None, help=_QUANTIZE_HELP)
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
    with warnings_as_lines():
        report = export_onnx(checkpoint, out, opset=opset, atol=atol, quantize=quantize, max_drop=max_drop,
                             skip_parity=skip_parity, overwrite=force)
    _report(report, atol, as_json)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """rnnkit's warnings of the block, each printed as one ``Warning:`` line on stderr (not Python's
    file:line and source line), also when the block raises."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RnnkitWarning)
        try:
            yield
        finally:
            for w in caught:
                click.echo(f"Warning: {printable(w.message)}", err=True)


def _report(report: ExportReport, atol: float, as_json: bool) -> None:
    if as_json:
        click.echo(printable_json(report.to_dict(), indent=2))
    else:
        _summary(report, atol)


def _summary(report: ExportReport, atol: float) -> None:
    click.echo(f"wrote {printable(report.path)} ({report.size_bytes / 1024:.1f} KiB, {report.spec.task}, "
               f"{report.spec.cell} × {report.spec.layers}) in {report.seconds:.1f}s")
    if report.module:
        call = report.module["call"]
        forward = report.module["forward"]
        click.echo(f"found: {printable(report.module['parts'])}")
        fixed = f" (batch {call['batch']} only)" if call["batch"] else ""
        click.echo(f"call: {printable(forward)}{fixed}")
        if report.module["specials"]:
            named = ", ".join(f"{name} = id {i}" for name, i in report.module["specials"].items())
            click.echo(f"specials: {named}")
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


def _specials(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    named: dict[str, str] = {}
    for value in values:
        name, eq, token = value.partition("=")
        if not eq or not token:
            raise click.BadParameter(f"{value!r} is not NAME=TOKEN (e.g. bos=<s>)", ctx, param)
        if name not in SPECIALS:
            raise click.BadParameter(f"{name!r} is not one of rnnkit's specials ({', '.join(SPECIALS)})", ctx, param)
        if name in named:
            raise click.BadParameter(f"{name} is named twice", ctx, param)
        named[name] = token
    return named


@click.command("export-module")
@click.argument("factory")
@click.option("--vocab", required=True, type=click.Path(), metavar="FILE",
              help="The module's vocabulary: one token a line (line number from 0 = id), or .json (a list, or an "
                   "object token → id).")
@click.option("--labels", type=click.Path(), metavar="FILE",
              help="classify, tag: the labels in output order, one a line (or .json).")
@click.option("--weights", type=click.Path(), metavar="STATE_DICT",
              help="Load this torch.save(model.state_dict()) file into the module (weights only, never code).")
@click.option("--task", required=True, type=click.Choice(TASKS), help="What the module's outputs are.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the .onnx file.")
@click.option("--tokenizer", type=click.Choice(list(TOKENIZERS)), default=_MODULE_DEFAULTS["tokenizer"].default,
              show_default=True, help="How text is cut into the vocabulary's tokens (as given: no lowercasing).")
@click.option("--special", "specials", multiple=True, metavar="NAME=TOKEN", callback=_specials,
              help=f"Map a vocabulary token onto an rnnkit special ({', '.join(SPECIALS)}), e.g. --special bos=<s>; "
                   "repeatable. Tokens spelled <pad>, <unk>, <bos>, <eos> are mapped already.")
@click.option("--opset", type=click.IntRange(14), default=_MODULE_DEFAULTS["opset"].default, show_default=True,
              help="ONNX opset.")
@click.option("--atol", type=click.FloatRange(0, min_open=True), default=_MODULE_DEFAULTS["atol"].default,
              show_default=True,
              help="Parity gate: largest |module − onnxruntime| / max(1, largest |value|) allowed per output.")
@click.option("--quantize", type=click.Choice(list(MODES)), default=None,
              help=_QUANTIZE_HELP + " A module brings no validation data: the agreement with fp32 is reported.")
@click.option("--force", is_flag=True, help="Replace an existing file at --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Log every parity comparison.")
def export_module_cmd(factory: str, vocab: str, labels: str | None, weights: str | None, task: str, out: str,
                      tokenizer: str, specials: dict[str, str], opset: int, atol: float, quantize: str | None,
                      force: bool, as_json: bool, verbose: bool) -> None:
    """Export your own torch module, named FACTORY (package.module:factory), to one ONNX file.

    FACTORY is imported with the current folder on the import path: `mymodels:make` calls
    make() from mymodels.py (an nn.Module instance is used as it is; a class or function is
    called with no arguments). The module is Embedding (or one-hot) → RNN/GRU/LSTM → Linear
    → optional (Log)Softmax, written the way the tutorials write it; how its forward is
    called is found by calling it. The file is written only when the module's own forward
    and the file agree within --atol.

    \b
    Example:
      rnnkit export-module mymodels:make --vocab vocab.txt --labels labels.txt \\
          --weights weights.pt --task classify --out names.onnx
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    # what the user's module prints is not rnnkit's output
    with warnings_as_lines(), contextlib.redirect_stdout(sys.stderr):
        try:
            module = load_factory(factory)
        except ModuleError as e:
            if not is_factory_spec(factory):  # not a factory at all: a bad argument
                raise click.BadParameter(str(e), param_hint="'FACTORY'") from e
            raise
        if weights is not None:
            load_weights(module, weights)
        report = export_module(module, out, task=task, vocab=read_tokens(vocab, "vocabulary"),
                               labels=read_tokens(labels, "labels") if labels is not None else None,
                               tokenizer=tokenizer, specials=specials, opset=opset, atol=atol,
                               quantize=quantize, overwrite=force, source=factory)
    _report(report, atol, as_json)
