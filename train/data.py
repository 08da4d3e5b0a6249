"""Training data: files or built-in corpora → examples → a train/valid/test split.

Examples are plain Python values, never tokens (the trainer tokenizes them with
``rnnkit.runtime``'s tokenizers, the same code that serves the model):

- ``lm``: ``str``, one document;
- ``classify``: ``(text, label)``;
- ``tag``: ``(tokens, tags)``, two lists of the same non-zero length.

Files are read by :mod:`rnnkit.runtime.datafiles` (``read_text``, ``read_labeled``,
``read_tagged``, re-exported here), the readers ``Model.evaluate`` uses too, so training and
evaluation accept the same files and say the same about bad lines. Labels and tags must be
what a model file can hold (see :func:`load_data`). This module needs only the standard
library and rnnkit's runtime, so it imports without torch.

>>> ds = load_data("builtin:hello", "tag")
>>> ds.examples, ds.labels, ds.level_hint
([(['h', 'e', 'l', 'l', 'o'], ['o', 'h', 'l', 'o', 'l'])], ['h', 'l', 'o'], 'char')
>>> split_examples(ds.examples, "tag", seed=0).mode
'full'
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rnnkit.runtime.contract import MAX_LABELS, MAX_VALUE_BYTES, TASKS
from rnnkit.runtime.datafiles import BMES_TAGS as _BMES
from rnnkit.runtime.datafiles import (
    MAX_DATA_BYTES,
    MAX_LINE_CHARS,
    read_labeled,
    read_tagged,
    read_text,
    surrogate_problem,
)
from rnnkit.runtime.datafiles import tag_scheme as _tag_scheme
from rnnkit.runtime.errors import ConfigError, DataError

from .corpora import BUILTIN_PREFIX, builtin_names, load_builtin

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

_MIN_SHUFFLED = 10  # fewer examples than this: valid and test are the training set itself
_MIN_CHARS = 100  # lm text shorter than this is not cut into parts


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


def _fingerprint(task: str, examples: list) -> str:
    blob = json.dumps([task, examples], ensure_ascii=False, separators=(",", ":"))
    # JSONL may smuggle lone surrogates in as \ud800 escapes; they must still hash.
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

