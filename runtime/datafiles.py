"""Data files → examples: the readers training and evaluation share, with the same messages.

Examples are plain Python values, never tokens:

- ``lm``: ``str``, one document;
- ``classify``: ``(text, label)``;
- ``tag``: ``(tokens, tags)``, two lists of the same non-zero length.

Files are regular files of at most :data:`MAX_DATA_BYTES` bytes (a pipe or a device is refused
before it is read), UTF-8 (a leading BOM is dropped). Lines are split on ``"\\n"`` only (a trailing
``"\\r"`` is dropped), so line numbers in messages match what an editor shows; empty and
whitespace-only lines are ignored everywhere; a line longer than :data:`MAX_LINE_CHARS` is a bad
line. A bad line raises :class:`DataError` (``path:line: problem; fix it, or pass --skip-bad``),
or with ``skip_bad`` is skipped and counted. Labels and tags must be what a model file can hold.
Standard library only: training (``rnnkit.train.data``) and ``Model.evaluate`` both read here.

>>> examples, skipped = read_text("notes.txt")  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import errno
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import DataError
from .vocab import MAX_TOKEN_CHARS

__all__ = [
    "BMES_TAGS",
    "MAX_DATA_BYTES",
    "MAX_LINE_CHARS",
    "decode_utf8",
    "label_problem",
    "parse_tagged",
    "read_labeled",
    "read_tagged",
    "read_text",
    "surrogate_problem",
    "tag_scheme",
    "text_lines",
]

logger = logging.getLogger(__name__)

LABELED_SUFFIXES = (".tsv", ".txt", ".jsonl")
BMES_TAGS = frozenset("BMES")
_SKIP_HINT = "fix it, or pass --skip-bad (skip_bad=True) to skip bad lines"
# rnnkit holds a corpus in memory, tokenized (some 60 bytes a token): 1 GiB of text is ~100× the
# largest built-in corpus and already tens of GB as tokens.
MAX_DATA_BYTES = 1 << 30
MAX_LINE_CHARS = 1 << 20  # one example (a line); classify reads only its first max_len tokens anyway
# What a label (a class or a tag) may not hold: C0 and C1 controls and DEL (printed, they forge
# lines and terminal escapes), line and paragraph separators, and lone surrogates (they have no
# UTF-8 spelling, so no model file can hold them). A label goes into the model's metadata as is.
_NOT_IN_LABELS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_text(path: str | os.PathLike, *, whole_file: bool = False,
              skip_bad: bool = False) -> tuple[list[str], int]:
    """Plain-text lm documents: one per non-empty line, or the whole file as one.

    A line keeps everything but its line ending. ``whole_file`` keeps the text as written
    (``\\r\\n`` becomes ``\\n``). The one bad line plain text has is one longer than
    :data:`MAX_LINE_CHARS` (``skip_bad`` skips it); the whole file as one document has none.
    """
    name, text = _read(path)
    if whole_file:
        return _finish([text.replace("\r\n", "\n")] if text.strip() else [], 0, name), 0
    bad = _BadLines(name, skip_bad)
    docs = [line for _, line in _lines(text, bad, "; for one long document pass --whole-file")]
    return _finish(docs, bad.done(), name), bad.count


def read_labeled(path: str | os.PathLike, *,
                 skip_bad: bool = False) -> tuple[list[tuple[str, str]], int]:
    """Classification examples ``(text, label)`` from ``.tsv``/``.txt`` or ``.jsonl``.

    TSV lines are ``label<TAB>text`` (the text may contain more tabs). JSONL lines are
    objects with string ``"text"`` and ``"label"`` (other keys are ignored; an integer
    label such as ``1`` is read as ``"1"``, any other non-string value is bad). Labels and
    texts are stripped of surrounding whitespace and must not be empty.
    """
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix not in LABELED_SUFFIXES:
        raise DataError(
            f"cannot read classification data from a {suffix or 'suffix-less'} file; "
            f"use {', '.join(LABELED_SUFFIXES)} (TSV `label<TAB>text` or JSONL)", path=name)
    name, text = _read(path)
    parse = _parse_jsonl if suffix == ".jsonl" else _parse_tsv
    examples, bad = [], _BadLines(name, skip_bad)
    for lineno, line in _lines(text, bad):
        example = parse(line)
        if isinstance(example, str):
            bad.add(lineno, example)
        else:
            examples.append(example)
    return _finish(examples, bad.done(), name), bad.count


def read_tagged(path: str | os.PathLike, *,
                skip_bad: bool = False) -> tuple[list[tuple[list[str], list[str]]], int]:
    """Tagging examples from lines of whitespace-separated ``token/TAG``.

    The tag is what follows the **last** ``/``, so a token may contain ``/`` (``1/2/m``);
    a token cannot contain whitespace. Tags are kept as written here; :func:`tag_scheme`
    uppercases B/M/E/S character tags.
    """
    name, text = _read(path)
    bad = _BadLines(name, skip_bad)
    examples = parse_tagged(_lines(text, bad), lambda lineno, problem: bad.add(lineno, problem))
    return _finish(examples, bad.done(), name), bad.count


def tag_scheme(examples: list) -> tuple[list, str, str]:
    """``(examples, scheme, level_hint)`` of tagged examples.

    ``scheme`` is ``"bmes"`` when every token is one character and every tag is one of B/M/E/S in
    either case (the tags are then uppercased), else ``"tags"``; ``level_hint`` is ``"char"`` when
    every token is one character, else ``"word"``.

    >>> tag_scheme([(["我", "爱"], ["s", "s"])])
    ([(['我', '爱'], ['S', 'S'])], 'bmes', 'char')
    """
    seen: set[str] = set()
    single_chars = True
    for tokens, tags in examples:
        seen.update(tags)
        if single_chars and len("".join(tokens)) != len(tokens):
            single_chars = False
    if not single_chars:
        return examples, "tags", "word"
    if {t.upper() for t in seen} <= BMES_TAGS:
        if not seen <= BMES_TAGS:
            # Tags never hold whitespace (they come from whitespace-split lines), and one
            # join/upper/split per line is ~3x faster than a comprehension over 1.8M tags.
            examples = [(tokens, " ".join(tags).upper().split(" ")) for tokens, tags in examples]
        return examples, "bmes", "char"
    return examples, "tags", "char"


# -- lines -----------------------------------------------------------------------------------------
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


class _BadLines:
    """Raise on the first bad line, or count them when skipping."""

    def __init__(self, name: str, skip: bool) -> None:
        self.name, self.skip, self.count = name, skip, 0

    def add(self, lineno: int, problem: str) -> None:
        if not self.skip:
            raise DataError(f"{problem}; {_SKIP_HINT}", path=self.name, line=lineno)
        self.count += 1

    def done(self) -> int:
        if self.count:
            logger.warning("%s: skipped %d bad lines", self.name, self.count)
        return self.count


def _lines(text: str, bad: _BadLines, hint: str = "") -> Iterator[tuple[int, str]]:
    """The non-blank lines of ``text``; one longer than MAX_LINE_CHARS is a bad line."""
    for lineno, line in text_lines(text):
        if len(line) > MAX_LINE_CHARS:
            bad.add(lineno, f"the line is {len(line):,} characters long, more than the {MAX_LINE_CHARS:,} of one "
                            f"example{hint}")
            continue
        yield lineno, line


# -- files -----------------------------------------------------------------------------------------
def _read(path: str | os.PathLike) -> tuple[str, str]:
    """(name, text) of a UTF-8 file, with typed errors for a missing, unreadable or unbounded one.

    The file is opened without blocking (a pipe with no writer would wait forever) and must be
    a regular file: a pipe or a device (``/dev/zero``) could be read without end.
    """
    name = os.fspath(path)
    fd = open_regular(name)
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_DATA_BYTES + 1)  # the file may have grown since fstat
        except OSError as e:
            raise DataError(f"cannot read the file ({e.strerror})", path=name) from None
    if len(data) > MAX_DATA_BYTES:
        raise DataError(_too_big(len(data)), path=name)
    return name, decode_utf8(data, name)


def open_regular(name: str, *, cap: int | None = None, what: str = "data", hint: str = "check the path",
                 too_big: Callable[[int], str] | None = None) -> int:
    """A descriptor of ``name`` opened for blocking reads: a regular file of at most ``cap`` bytes.

    It is opened without blocking (a pipe with no writer would wait forever); a pipe, socket,
    device or folder is refused. ``what`` names the kind of file in the messages; ``cap``
    defaults to :data:`MAX_DATA_BYTES`.
    """
    cap = MAX_DATA_BYTES if cap is None else cap
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    not_regular = f"is not a regular file (a pipe, socket or device); save the {what} to a file and give its path"
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise DataError(f"file does not exist; {hint}", path=name) from None
    except IsADirectoryError:
        raise DataError(f"is a directory, not a {what} file", path=name) from None
    except OSError as e:
        if e.errno == errno.ENXIO:  # a socket (or a device with nothing behind it)
            raise DataError(not_regular, path=name) from None
        raise DataError(f"cannot read the file ({e.strerror})", path=name) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DataError(f"is a directory, not a {what} file", path=name)
        raise DataError(not_regular, path=name)
    if info.st_size > cap:
        os.close(fd)
        raise DataError((too_big or _too_big)(info.st_size), path=name)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd




def _too_big(size: int) -> str:
    return (f"the file is {size:,} bytes, more than the {MAX_DATA_BYTES:,} rnnkit reads; use a sample "
            "(e.g. `head -n 1000000`) of it")


def _finish(examples: list, skipped: int, name: str) -> list:
    if not examples:
        why = f"all {skipped} non-empty lines were bad" if skipped else "it is empty or blank"
        raise DataError(f"no examples in {name} ({why})")
    return examples


def _parse_tsv(line: str) -> tuple[str, str] | str:
    """``(text, label)``, or what is wrong with the line."""
    label, tab, text = line.partition("\t")
    label, text = label.strip(), text.strip()
    if not tab:
        return "no tab: write `label<TAB>text`"
    if not label or not text:
        return f"empty {'label' if not label else 'text'}: write `label<TAB>text`"
    return label_problem(label) or (text, label)


def _parse_jsonl(line: str) -> tuple[str, str] | str:
    """``(text, label)``, or what is wrong with the line."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        return f"not valid JSON ({e})"
    if not isinstance(obj, dict):
        return f"expected a JSON object with \"text\" and \"label\", got {type(obj).__name__}"
    missing = [key for key in ("text", "label") if key not in obj]
    if missing:
        return f"the object has no {' or '.join(repr(k) for k in missing)}"
    text, label = obj["text"], obj["label"]
    # An integer class id (0/1 sentiment sets) is a label; bool and float are not.
    if isinstance(label, int) and not isinstance(label, bool):
        label = str(label)
    if not isinstance(text, str) or not isinstance(label, str):
        return "\"text\" and \"label\" must be strings"
    text, label = text.strip(), label.strip()
    if not text or not label:
        return f"empty {'label' if not label else 'text'}"
    return label_problem(label) or (text, label)
