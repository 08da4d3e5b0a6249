"""Which tokenizer a run trains with: what the options say, and what the data says where they do not."""

from __future__ import annotations

import logging

from rnnkit.runtime.errors import ConfigError
from rnnkit.runtime.tokenizers import CharTokenizer, Tokenizer, WhitespaceTokenizer, WordTokenizer

from .config import TrainConfig
from .data import Dataset

__all__ = ["choose_tokenizer", "han_share"]

log = logging.getLogger(__name__)


def choose_tokenizer(c: TrainConfig, dataset: Dataset) -> Tokenizer:
    """The tokenizer the options and the data ask for (docs/DECISIONS.md, "Which tokenizer").

    Tag data decides its level (one character per token, or words); ``--tokenizer`` means words.
    Words are cut by jieba when the data is Chinese (at least half of its letters are Han
    characters), else on whitespace. Whitespace tokens are dropped for tag models (their lines
    never hold one) and for whitespace words, and kept otherwise, unless ``keep_whitespace`` says.
    """
    level = "word" if c.tokenizer else c.level
    if c.task == "tag" and dataset.level_hint:
        if level and level != dataset.level_hint:
            given = f"--tokenizer {c.tokenizer}" if c.tokenizer else f"--level {level}"
            raise ConfigError(f"{c.data} is tagged per {dataset.level_hint}; drop {given} "
                              f"or use --level {dataset.level_hint}")
        level = dataset.level_hint
    segmenter = None
    if level == "word":
        segmenter = c.tokenizer or ("jieba" if han_share(_sample_text(dataset)) >= 0.5 else "whitespace")
        how = "given" if c.tokenizer else ("the data is Chinese" if segmenter == "jieba" else "the data is not Chinese")
        other = "whitespace" if segmenter == "jieba" else "jieba"
        log.info("words cut by %s (%s; --tokenizer %s to change it)", segmenter, how, other)
        if segmenter == "whitespace" and not c.hmm:
            raise ConfigError("--no-hmm is for words cut by jieba, and these are cut on whitespace; drop --no-hmm "
                              "or pass --tokenizer jieba")
    keep = c.keep_whitespace
    if keep is None:
        keep = not (c.task == "tag" or segmenter == "whitespace")
    common = {"normalize": c.normalize, "lowercase": c.lowercase, "keep_whitespace": keep}
    if segmenter == "jieba":
        return WordTokenizer(hmm=c.hmm, **common)
    if segmenter == "whitespace":
        return WhitespaceTokenizer(**common)
    return CharTokenizer(**common)


_SAMPLE_CHARS = 1 << 20  # enough text to tell the language; more only costs time


def _sample_text(dataset: Dataset) -> str:
    """The start of the data's text (tokens of tag data), at most _SAMPLE_CHARS characters."""
    parts, size = [], 0
    for example in dataset.examples:
        text = example if dataset.task == "lm" else example[0] if dataset.task == "classify" else "".join(example[0])
        parts.append(text[: _SAMPLE_CHARS - size])
        size += len(parts[-1])
        if size >= _SAMPLE_CHARS:
            break
    return "".join(parts)


def han_share(text: str) -> float:
    """The share of Han characters (jieba's range, U+4E00–U+9FD5) among the letters of ``text``.

    >>> han_share("我爱北京 ok")
    0.6666666666666666
    """
    letters = han = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            han += "\u4e00" <= ch <= "\u9fd5"
    return han / letters if letters else 0.0
