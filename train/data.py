"""Training data: files or built-in corpora → examples → a train/valid/test split.

Examples are plain Python values, never tokens (the trainer tokenizes them with
``rnnkit.runtime``'s tokenizers, the same code that serves the model):

- ``lm``: ``str``, one document;
- ``classify``: ``(text, label)``;
- ``tag``: ``(tokens, tags)``, two lists of the same non-zero length.

Files are regular files of at most :data:`MAX_DATA_BYTES` bytes (a pipe or a device is refused
before it is read), UTF-8 (a leading BOM is dropped). Lines are split on ``"\\n"`` only (a trailing
``"\\r"`` is dropped), so line numbers in messages match what an editor shows; empty and
whitespace-only lines are ignored everywhere; a line longer than :data:`MAX_LINE_CHARS` is a bad
line. Labels and tags must be what a model file can hold (see :func:`load_data`). This module
needs only the standard library and rnnkit's runtime, so it imports without torch.

>>> ds = load_data("builtin:hello", "tag")
>>> ds.examples, ds.labels, ds.level_hint
([(['h', 'e', 'l', 'l', 'o'], ['o', 'h', 'l', 'o', 'l'])], ['h', 'l', 'o'], 'char')
>>> split_examples(ds.examples, "tag", seed=0).mode
'full'
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import random
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rnnkit.runtime.contract import MAX_LABELS, MAX_VALUE_BYTES, TASKS
from rnnkit.runtime.errors import ConfigError, DataError

from .corpora import BUILTIN_PREFIX, builtin_names, label_problem, load_builtin, surrogate_problem
from .corpora import decode_utf8 as _decode
from .corpora import parse_tagged as _parse_tagged
from .corpora import text_lines as _text_lines

__all__ = [
    "MAX_DATA_BYTES",
    "MAX_LINE_CHARS",
    "Dataset",
    "Split",
    "builtin_names",
    "check_exportable",
    "load_data",
    "read_labeled",
    "read_tagged",
    "read_text",
    "split_examples",
]

logger = logging.getLogger(__name__)

_LABELED_SUFFIXES = (".tsv", ".txt", ".jsonl")
_BMES = frozenset("BMES")
_MIN_SHUFFLED = 10  # fewer examples than this: valid and test are the training set itself
_MIN_CHARS = 100  # lm text shorter than this is not cut into parts
_SKIP_HINT = "fix it, or pass --skip-bad (skip_bad=True) to skip bad lines"
# rnnkit holds a corpus in memory, tokenized (some 60 bytes a token): 1 GiB of text is ~100× the
# largest built-in corpus and already tens of GB as tokens.
MAX_DATA_BYTES = 1 << 30
MAX_LINE_CHARS = 1 << 20  # one example (a line); classify reads only its first max_len tokens anyway


@dataclass(frozen=True)
class Dataset:
    """Examples of one task and where they came from.

    ``tag_scheme`` is ``"bmes"`` (B/M/E/S character tags, uppercased), ``"tags"`` (any other
    tags) or ``"none"`` (lm, classify). ``level_hint`` is ``"char"`` when every tag token is
    one character, ``"word"`` for other tagged data and ``None`` for lm and classify.
    ``fingerprint`` is a sha256 of the task and the examples: same data, same value.
    """

    task: str
    examples: list = field(repr=False)  # tens of thousands of items: keep reprs and logs short
    source: str
    tag_scheme: str
    level_hint: str | None
    skipped: int
    fingerprint: str

    @cached_property
    def labels(self) -> list[str]:
        """Sorted distinct labels (classify) or tags (tag); ``[]`` for lm.

        A ``bmes`` dataset always has all four tags, seen or not: they are the contract of a
        segmenter, and a small sample may lack ``M``.
        """
        if self.task == "classify":
            return sorted({label for _, label in self.examples})
        if self.task != "tag":
            return []
        if self.tag_scheme == "bmes":
            return sorted(_BMES)
        seen: set[str] = set()
        for _, tags in self.examples:
            seen.update(tags)
        return sorted(seen)


def load_data(
    source: str,
    task: str,
    *,
    skip_bad: bool = False,
    whole_file: bool = False,
    limit: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Read ``source`` (``builtin:NAME`` or a file path) as examples of ``task``.

    ``whole_file`` (lm only) makes the whole file one document instead of one per line.
    ``limit`` keeps a random subset of that many examples, chosen by ``seed``, in file order.

    >>> load_data("builtin:hello", "lm").examples
    ['hello']
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if whole_file and task != "lm":
        raise ConfigError("whole_file (--whole-file) applies to --task lm only")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    skipped = 0
    if source.startswith(BUILTIN_PREFIX):
        examples = load_builtin(source[len(BUILTIN_PREFIX):], task)
        if whole_file:
            examples = ["\n".join(examples)]
    elif task == "lm":
        examples, skipped = read_text(source, whole_file=whole_file, skip_bad=skip_bad)
    elif task == "classify":
        examples, skipped = read_labeled(source, skip_bad=skip_bad)
    else:
        examples, skipped = read_tagged(source, skip_bad=skip_bad)
    scheme, level_hint = "none", None
    if task == "tag":
        examples, scheme, level_hint = _tag_scheme(examples)
    if limit is not None and limit < len(examples):
        keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
        examples = [examples[i] for i in keep]
    logger.info("%s: %d %s examples (%d bad lines skipped)", source, len(examples), task, skipped)
    return Dataset(task, examples, source, scheme, level_hint, skipped, _fingerprint(task, examples))


def check_exportable(dataset: Dataset, limit: int | None = None) -> None:
    """Refuse data whose model no file could hold: what export would refuse, said before training.

    :func:`load_data` checked each label on its line (length, characters). This checks the
    label set (at least two, at most MAX_LABELS, a JSON list within the metadata's size cap) and
    that no JSONL text smuggled in a lone surrogate, which would become a vocabulary token no
    model file can spell. ``train`` calls it on the data it read; ``limit`` only words the message.

    >>> check_exportable(load_data("builtin:hello", "tag"))
    """
    if dataset.task == "classify":
        for i, (text, _) in enumerate(dataset.examples):
            problem = not text.isascii() and surrogate_problem(text, f"the text of example {i + 1}")
            if problem:
                raise DataError(f"{problem}; fix its \\u escape in the file", path=dataset.source)
    if dataset.task == "lm":
        return
    labels = dataset.labels
    what = "label" if dataset.task == "classify" else "tag"
    if len(labels) < 2:
        after = f" (after --limit {limit})" if limit is not None else ""
        raise DataError(f"every example{after} has the {what} {labels[0]!r}: a {dataset.task} model needs at least "
                        f"2 {what}s; add examples of another one", path=dataset.source)
    if len(labels) > MAX_LABELS:
        raise DataError(f"{len(labels):,} distinct {what}s, more than the {MAX_LABELS:,} a model file holds; "
                        f"is the {what} column the right one?", path=dataset.source)
    size = len(json.dumps(labels, ensure_ascii=False).encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise DataError(f"the {what}s take {size:,} bytes as JSON, more than the {MAX_VALUE_BYTES:,} a model file's "
                        f"metadata holds; use fewer or shorter {what}s", path=dataset.source)


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
    if suffix not in _LABELED_SUFFIXES:
        raise DataError(
            f"cannot read classification data from a {suffix or 'suffix-less'} file; "
            f"use {', '.join(_LABELED_SUFFIXES)} (TSV `label<TAB>text` or JSONL)", path=name)
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
    a token cannot contain whitespace. Tags are kept as written here; :func:`load_data`
    uppercases B/M/E/S character tags.
    """
    name, text = _read(path)
    bad = _BadLines(name, skip_bad)
    examples = _parse_tagged(_lines(text, bad), lambda lineno, problem: bad.add(lineno, problem))
    return _finish(examples, bad.done(), name), bad.count


@dataclass(frozen=True)
class Split:
    """Train/valid/test parts of a list of examples.

    ``mode`` says how they were made: ``"shuffled"`` (random, disjoint), ``"contiguous"`` (lm
    text cut by characters) or ``"full"`` (data too small to split: all three are the
    whole list, so valid and test scores measure fit, not generalisation).
    """

    train: list
    valid: list
    test: list
    seed: int
    fractions: tuple[float, float, float]
    mode: str = "shuffled"

    def describe(self) -> str:
        """One line for a person: the sizes, how the parts were made, and the seed."""
        shares = "/".join(f"{round(100 * f):g}" for f in self.fractions)
        how = {"shuffled": f"shuffled {shares}%", "contiguous": f"contiguous {shares}% of the text",
               "full": "too small to split: valid and test are the training data"}.get(self.mode, self.mode)
        return (f"train {len(self.train):,}, valid {len(self.valid):,}, test {len(self.test):,} "
                f"({how}, seed {self.seed})")

    def summary(self) -> dict[str, Any]:
        """Plain values for a checkpoint or report."""
        return {
            "seed": self.seed,
            "fractions": list(self.fractions),
            "mode": self.mode,
            "sizes": {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)},
        }


def split_examples(examples: list, task: str, *, seed: int, valid: float = 0.1,
                   test: float = 0.1) -> Split:
    """Split ``examples`` deterministically by ``seed``.

    With 10 or more examples, ``round(n * valid)`` and ``round(n * test)`` examples (at least
    one each unless the fraction is 0) are drawn at random; every part keeps source order.
    lm data with fewer than 10 documents (e.g. one whole-file document) is joined with
    ``"\\n"`` and cut by characters into train, valid, test (one document each). Smaller data
    (under 10 examples, or lm text under 100 characters) is not split: all three parts are
    the full list.

    >>> s = split_examples([str(i) for i in range(20)], "lm", seed=1)
    >>> [len(s.train), len(s.valid), len(s.test)]
    [16, 2, 2]
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not (0 <= valid < 0.5 and 0 <= test < 0.5 and valid + test < 1):
        raise ConfigError(f"valid and test fractions must each be in [0, 0.5), got {valid} and {test}")
    fractions = (round(1 - valid - test, 10), valid, test)
    n = len(examples)
    if n >= _MIN_SHUFFLED:
        n_valid, n_test = _part_size(n, valid), _part_size(n, test)
        if n_valid + n_test >= n:
            raise ConfigError(f"valid {valid} and test {test} leave no training examples out of {n}")
        order = list(range(n))
        random.Random(seed).shuffle(order)
        parts = (order[n_valid + n_test:], order[:n_valid], order[n_valid:n_valid + n_test])
        train, valid_part, test_part = ([examples[i] for i in sorted(p)] for p in parts)
        return Split(train, valid_part, test_part, seed, fractions)
    if task == "lm":
        text = "\n".join(examples)
        if len(text) >= _MIN_CHARS:
            length = len(text)
            end_train = length - round(length * valid) - round(length * test)
            end_valid = length - round(length * test)
            chars = (text[:end_train], text[end_train:end_valid], text[end_valid:])
            train, valid_part, test_part = ([part] if part else [] for part in chars)
            logger.info("lm split by characters: %d train, %d valid, %d test",
                        end_train, end_valid - end_train, length - end_valid)
            return Split(train, valid_part, test_part, seed, fractions, mode="contiguous")
    logger.info("only %d examples: train, valid and test are all the full data", n)
    return Split(list(examples), list(examples), list(examples), seed, fractions, mode="full")


def _part_size(n: int, fraction: float) -> int:
    return max(1, round(n * fraction)) if fraction > 0 else 0


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
    for lineno, line in _text_lines(text):
        if len(line) > MAX_LINE_CHARS:
            bad.add(lineno, f"the line is {len(line):,} characters long, more than the {MAX_LINE_CHARS:,} of one "
                            f"example{hint}")
            continue
        yield lineno, line


def _read(path: str | os.PathLike) -> tuple[str, str]:
    """(name, text) of a UTF-8 file, with typed errors for a missing, unreadable or unbounded one.

    The file is opened without blocking (a pipe with no writer would wait forever) and must be
    a regular file: a pipe or a device (``/dev/zero``) could be read without end.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise DataError("file does not exist; check the path", path=name) from None
    except IsADirectoryError:
        raise DataError("is a directory, not a data file", path=name) from None
    except OSError as e:
        if e.errno == errno.ENXIO:  # a socket (or a device with nothing behind it)
            raise DataError(_NOT_REGULAR, path=name) from None
        raise DataError(f"cannot read the file ({e.strerror})", path=name) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DataError("is a directory, not a data file", path=name)
        raise DataError(_NOT_REGULAR, path=name)
    if info.st_size > MAX_DATA_BYTES:
        os.close(fd)
        raise DataError(_too_big(info.st_size), path=name)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_DATA_BYTES + 1)  # the file may have grown since fstat
        except OSError as e:
            raise DataError(f"cannot read the file ({e.strerror})", path=name) from None
    if len(data) > MAX_DATA_BYTES:
        raise DataError(_too_big(len(data)), path=name)
    return name, _decode(data, name)


_NOT_REGULAR = "is not a regular file (a pipe, socket or device); save the data to a file and give its path"


def _too_big(size: int) -> str:
    return (f"the file is {size:,} bytes, more than the {MAX_DATA_BYTES:,} rnnkit reads; train on a sample "
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


def _tag_scheme(examples: list) -> tuple[list, str, str]:
    """(examples, scheme, level_hint): B/M/E/S character data gets uppercased tags."""
    seen: set[str] = set()
    single_chars = True
    for tokens, tags in examples:
        seen.update(tags)
        if single_chars and len("".join(tokens)) != len(tokens):
            single_chars = False
    if not single_chars:
        return examples, "tags", "word"
    if {t.upper() for t in seen} <= _BMES:
        if not seen <= _BMES:
            # Tags never hold whitespace (they come from whitespace-split lines), and one
            # join/upper/split per line is ~3x faster than a comprehension over 1.8M tags.
            examples = [(tokens, " ".join(tags).upper().split(" ")) for tokens, tags in examples]
        return examples, "bmes", "char"
    return examples, "tags", "char"


def _fingerprint(task: str, examples: list) -> str:
    blob = json.dumps([task, examples], ensure_ascii=False, separators=(",", ":"))
    # JSONL may smuggle lone surrogates in as \ud800 escapes; they must still hash.
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

