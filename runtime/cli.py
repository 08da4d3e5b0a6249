"""The ``rnnkit`` command: a click group whose subcommands load on demand.

The root lives in the runtime so ``rnnkit --help`` and the runtime commands start without
importing torch. ``train`` and ``export`` are imported only when run; on a base install they
answer with one line naming the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any

import click

from .errors import ConfigError, MissingDependencyError, RnnkitError
from .text import printable

# name → (module:attribute, short help). The help is here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("rnnkit.train.cli:train", "Train a model on a corpus (needs rnnkit[train])."),
    "datasets": ("rnnkit.train.cli:datasets", "List the built-in corpora and their sizes (needs rnnkit[train])."),
    "export": ("rnnkit.export.cli:export", "Export a checkpoint to one ONNX file (needs rnnkit[train])."),
    "export-module": ("rnnkit.export.cli:export_module_cmd",
                      "Export your own torch module to one ONNX file (needs rnnkit[train])."),
    "verify": ("rnnkit.export.verify_cli:verify_cmd",
               "Check an ONNX file still gives its torch source's answers (needs rnnkit[train])."),
    "inspect": ("rnnkit.runtime.commands:inspect_cmd", "Show what an exported model is and holds."),
    "generate": ("rnnkit.runtime.commands:generate", "Generate text from a language model."),
    "classify": ("rnnkit.runtime.commands:classify", "Label texts with a classifier."),
    "tag": ("rnnkit.runtime.commands:tag", "Tag the tokens of a text (and cut words)."),
    "evaluate": ("rnnkit.runtime.commands:evaluate", "Score a model on labelled data (accuracy, F1, perplexity)."),
    "stream": ("rnnkit.runtime.commands:stream", "Run a model over stdin line by line, printing as it goes."),
    "bench": ("rnnkit.runtime.commands:bench", "Measure a model's step latency and throughput here."),
}
_EXTRAS = {"torch": "train", "onnx": "train", "tqdm": "train"}
EXIT_PIPE = 141  # the reader of stdout went away (`rnnkit … | head`): what a shell reports for SIGPIPE


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in self.lazy:
            return super().get_command(ctx, name)
        target = self.lazy[name][0]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            missing = (e.name or "").split(".")[0]
            if missing not in _EXTRAS:
                raise
            return _needs_extra(name, missing, _EXTRAS[missing])
        command = getattr(module, attr)
        _guard(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1]) for name in self.list_commands(ctx) if name in self.lazy]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as e:
            raise click.UsageError(printable(e), ctx) from e
        except RnnkitError as e:
            raise click.ClickException(printable(e)) from e
        except BrokenPipeError:  # `rnnkit … | head`: nothing more to say, to anyone
            _silence_stdout()
            ctx.exit(EXIT_PIPE)
        except OSError as e:
            raise click.ClickException(printable(_os_error(e))) from e


def _guard(command: click.Command) -> None:
    """Turn a bad option value raised inside ``command`` into a usage error of that command."""
    callback = command.callback
    if callback is None or getattr(callback, "rnnkit_guarded", False):
        return

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except ConfigError as e:
            raise click.UsageError(printable(e), click.get_current_context()) from e

    guarded.rnnkit_guarded = True  # type: ignore[attr-defined]
    command.callback = guarded


def _needs_extra(name: str, module: str, extra: str) -> click.Command:
    def fail(**_: Any) -> None:
        raise click.ClickException(
            f"`rnnkit {name}` needs {module}, which is not installed: pip install 'rnnkit[{extra}]'"
        )

    return click.Command(
        name, callback=fail, add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=f"Needs rnnkit[{extra}].",
    )


def _silence_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it once more at exit, into the broken pipe."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def _os_error(e: OSError) -> str:
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{where}"


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnkit", prog_name="rnnkit")
def cli() -> None:
    """rnnkit — small recurrent text models for the edge.

    Train an Embedding → RNN/GRU/LSTM → Linear model (rnnkit train), export it to one ONNX
    file (rnnkit export) — or export your own torch module (rnnkit export-module) — and run
    that file anywhere with numpy and onnxruntime; rnnkit verify checks it still gives torch's
    answers.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Unexpected errors print one line; ``RNNKIT_DEBUG=1`` shows the traceback.

    Every message is printed with its control characters escaped (it may quote a path, a label or
    a text). A closed stdout or stderr (``>&-``) is /dev/null: the command runs, its output is lost.
    """
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (lives until exit)
    try:
        code = cli.main(args=argv, prog_name="rnnkit", standalone_mode=False)
        if isinstance(code, int):  # click returns the code of ctx.exit() (e.g. after --help)
            sys.exit(code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.message = printable(e.message)  # click's own messages quote arguments too
        e.show()
        sys.exit(e.exit_code)
    except MissingDependencyError as e:
        click.echo(f"Error: {printable(e)}", err=True)
        sys.exit(1)
    except Exception as e:  # a bug in rnnkit: still one line unless asked for more
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        click.echo(f"Error: internal error {type(e).__name__}: {printable(e)} (set RNNKIT_DEBUG=1 for the "
                   "traceback)", err=True)
        sys.exit(70)
