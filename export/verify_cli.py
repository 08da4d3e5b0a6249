"""``rnnkit verify``: exit 0 when the ONNX file gives its source's answers, 1 when it does not, 2 on bad input."""

from __future__ import annotations

import contextlib
import sys

import click

from rnnkit.runtime.contract import TASKS
from rnnkit.runtime.errors import RnnkitError
from rnnkit.runtime.text import printable, printable_json

from .cli import warnings_as_lines
from .exporter import TOKENIZERS
from .verify import verify

__all__ = ["verify_cmd"]


class BadInput(click.ClickException):
    """A file or factory verify cannot use: exit 2, apart from 1 (the file disagrees)."""

    exit_code = 2


@click.command("verify")
@click.argument("source")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Your own texts, one per line: compared token by token, and checked to tokenize the same.")
@click.option("--atol", type=click.FloatRange(0, min_open=True), default=None,
              help="Largest |torch − onnxruntime| / max(1, largest |value|) allowed [default: 1e-5, or for a "
                   "quantized file the tolerance its export stored].")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="A package.module:factory source: load this state_dict into the module (weights_only).")
@click.option("--vocab", type=click.Path(dir_okay=False), default=None,
              help="A package.module:factory source: its vocabulary file (default: the ids recorded in MODEL).")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="A package.module:factory source: its labels file, compared with MODEL's.")
@click.option("--task", type=click.Choice(TASKS), default=None,
              help="A package.module:factory source: the task it was exported for, compared with MODEL's.")
@click.option("--tokenizer", type=click.Choice(list(TOKENIZERS)), default=None,
              help="A package.module:factory source: how its own code cut text, compared with MODEL's and used "
                   "for --data (default: MODEL's, not compared).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(source: str, model: str, data: str | None, atol: float | None, weights: str | None,
               vocab: str | None, labels: str | None, task: str | None, tokenizer: str | None, as_json: bool) -> None:
    """Check that MODEL.onnx gives the answers of SOURCE: a checkpoint, a training folder, or a torch
    module's package.module:factory (the current folder is on the import path).

    Compares the metadata (task, architecture, tokenizer, vocabulary, labels) and the outputs on
    random ids at several batch × sequence shapes, token by token against the whole sequence, on
    the texts of --data, and for a module its own forward; prints one row per comparison and how
    often the predictions agree. Exit 0: every comparison agrees; 1: one does not (as a failing
    test); 2: bad input.

    \b
    Example:
      rnnkit verify runs/intents intents.onnx --data tests/texts.txt
      rnnkit verify mymodels:make model.onnx --weights weights.pt
    """
    # what a user's module prints is not the report
    with warnings_as_lines(), contextlib.redirect_stdout(sys.stderr):
        try:
            report = verify(source, model, data=data, atol=atol, weights=weights, task=task, tokenizer=tokenizer,
                            vocab=_read(vocab, "vocabulary"), labels=_read(labels, "labels"))
        except RnnkitError as e:
            raise BadInput(printable(e)) from e
    if as_json:
        click.echo(printable_json(report.to_dict(), indent=2))
    else:
        click.echo(f"verify {printable(report.source)} ({report.kind}) against {printable(report.model)} "
                   f"({report.quantization if report.quantization != 'none' else 'fp32'})")
        for line in report.table():
            click.echo(printable(line))
    if not report.ok:
        click.get_current_context().exit(1)


def _read(path: str | None, what: str):
    if path is None:
        return None
    from .factory import read_tokens

    return read_tokens(path, what)
