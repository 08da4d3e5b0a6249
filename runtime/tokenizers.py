"""Text → tokens, the one implementation used both to train and to serve.

Normalisation (NFKC by default, optional lowercasing) is applied **per input character**, so
every token maps back to a span of the caller's text: tags line up with what the user typed,
and text fed in chunks normalises exactly like the whole text. The cost is that a sequence of
a base letter and a combining mark is not composed into one character; see docs/FORMAT.md.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, MetadataError, MissingDependencyError, RnnkitWarning
from .vocab import Vocabulary

__all__ = ["CharTokenizer", "Tokenizer", "WordTokenizer", "tokenizer_from_config"]

_NORMALIZATIONS = ("NFKC", "NFC", None)
_SURROGATE = re.compile("[\ud800-\udfff]")
# The block structure of jieba's precise mode (jieba/__init__.py, re_han_default): cuts never
# cross the border of a run of these characters, which is what makes chunked feeding exact.
_JIEBA_BLOCK = re.compile("[\u4e00-\u9fd5a-zA-Z0-9+#&._%\\-]+")


@dataclass(frozen=True)
class Token:
    """A token and the span ``[start, end)`` of the caller's text it came from."""

    text: str
    start: int
    end: int


class Tokenizer:
    """Common interface: ``tokenize``, ``detokenize``, ``encode``/``decode`` with a vocabulary."""

    kind = ""

    def __init__(self, *, normalize: str | None = "NFKC", lowercase: bool = False,
                 keep_whitespace: bool = True) -> None:
        if normalize not in _NORMALIZATIONS:
            raise ConfigError(f"normalize must be one of {_NORMALIZATIONS}, got {normalize!r}")
        self.normalize = normalize
        self.lowercase = bool(lowercase)
        self.keep_whitespace = bool(keep_whitespace)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_config() == self.to_config()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_config().items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def _pieces(self, text: str) -> list[str]:
        """One normalised piece per input character (a piece may be longer than one char)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if _SURROGATE.search(text):  # cannot be stored as UTF-8 in a model file
            text = _SURROGATE.sub("\ufffd", text)
        norm, lower = self.normalize, self.lowercase
        if norm is None and not lower:
            return list(text)
        out = []
        for ch in text:
            if norm is not None and not ch.isascii():
                ch = unicodedata.normalize(norm, ch)
            if lower:
                ch = ch.lower()
            out.append(ch)
        return out

    def tokenize_spans(self, text: str) -> list[Token]:
        raise NotImplementedError

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``, in order."""
        return [t.text for t in self.tokenize_spans(text)]

    def normalize_token(self, token: str) -> str:
        """Normalise an already-cut token (e.g. a word of a segmented corpus) as text would be."""
        return "".join(self._pieces(token))

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def encode(self, text: str, vocab: Vocabulary) -> list[int]:
        """Token ids of ``text``; unknown tokens become ``vocab.unk_id``."""
        return vocab.encode(self.tokenize(text))

    def decode(self, ids: Sequence[int], vocab: Vocabulary, *, unk: str = "\ufffd") -> str:
        """Text of ``ids``; pad/bos/eos are dropped and unknown tokens render as ``unk``."""
        skip = (vocab.pad_id, vocab.bos_id, vocab.eos_id)
        return "".join(
            unk if i == vocab.unk_id else vocab.token(i) for i in map(int, ids) if i not in skip
        )

    def split_point(self, text: str) -> int:
        """How much of ``text`` (a prefix length) tokenizes the same whatever follows it.

        A stream fed text in chunks tokenizes ``text[:n]`` now and keeps the rest.
        """
        return len(text)

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "normalize": self.normalize, "lowercase": self.lowercase,
                "keep_whitespace": self.keep_whitespace}


class CharTokenizer(Tokenizer):
    """One token per character.

    >>> CharTokenizer().tokenize("ＡI 好")
    ['A', 'I', ' ', '好']
    """

    kind = "char"

    def tokenize_spans(self, text: str) -> list[Token]:
        keep_ws = self.keep_whitespace
        return [
            Token(p, i, i + 1)
            for i, p in enumerate(self._pieces(text))
            if p and (keep_ws or not p.isspace())
        ]


class WordTokenizer(Tokenizer):
    """Words cut by jieba in precise mode (``hmm`` switches its HMM for unknown words).

    jieba is imported and its dictionary built on first use, once per process, without
    printing. The jieba version a model was trained with travels in its metadata; a runtime
    with another version warns once, because its cuts (and so the ids) may differ.

    >>> WordTokenizer().tokenize("我爱北京")  # doctest: +SKIP
    ['我', '爱', '北京']
    """

    kind = "word"

    def __init__(self, *, hmm: bool = True, jieba_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hmm = bool(hmm)
        self.jieba_version = jieba_version or _jieba_version()

    def tokenize_spans(self, text: str) -> list[Token]:
        pieces = self._pieces(text)
        if not pieces:
            return []
        normalized = "".join(pieces)
        # owner[k]: index of the input character that normalised position k came from
        owner = [i for i, p in enumerate(pieces) for _ in p]
        tokens, pos = [], 0
        for word in _jieba().cut(normalized, HMM=self.hmm):
            start, pos = pos, pos + len(word)
            if not self.keep_whitespace and word.isspace():
                continue
            tokens.append(Token(word, owner[start], owner[pos - 1] + 1))
        return tokens

    def split_point(self, text: str) -> int:
        pieces = self._pieces(text)
        normalized = "".join(pieces)
        starts, k = {}, 0  # normalised offset of each input character → its index
        for i, p in enumerate(pieces):
            starts[k] = i
            k += len(p)
        starts[k] = len(pieces)
        n = len(normalized)
        blocks = list(_JIEBA_BLOCK.finditer(normalized))
        # The trailing block may go on in the next chunk, and "\r" may be half of "\r\n".
        if blocks and blocks[-1].end() == n:
            limit = blocks[-1].start()
        elif normalized.endswith("\r"):
            limit = n - 1
        else:
            limit = n
        inside = {p for m in blocks for p in range(m.start() + 1, m.end())}
        for p in range(limit, 0, -1):
            crlf = normalized[p - 1] == "\r" and normalized[p:p + 1] == "\n"
            if p in starts and p not in inside and not crlf:
                return starts[p]
        return 0

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "hmm": self.hmm, "mode": "precise",
                "jieba_version": self.jieba_version}


def tokenizer_from_config(config: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from ``to_config()`` (as stored in ``rnnkit.tokenizer``)."""
    if not isinstance(config, dict):
        raise MetadataError("tokenizer config must be a JSON object", "rnnkit.tokenizer")
    for key, kinds, what in (("lowercase", bool, "true or false"), ("keep_whitespace", bool, "true or false"),
                             ("hmm", bool, "true or false"), ("jieba_version", str, "a string")):
        if key in config and not isinstance(config[key], kinds):
            raise MetadataError(f"tokenizer {key} must be {what}, got {config[key]!r:.40}", "rnnkit.tokenizer")
    common = {k: config[k] for k in ("normalize", "lowercase", "keep_whitespace") if k in config}
    try:
        if config.get("kind") == "char":
            return CharTokenizer(**common)
        if config.get("kind") == "word":
            tok = WordTokenizer(hmm=config.get("hmm", True),
                                jieba_version=config.get("jieba_version"), **common)
            _warn_jieba_version(tok.jieba_version)
            return tok
    except ConfigError as e:
        raise MetadataError(str(e), "rnnkit.tokenizer") from e
    raise MetadataError(f"unknown tokenizer kind {config.get('kind')!r}; expected 'char' or 'word'",
                        "rnnkit.tokenizer")


_jieba_lock = threading.Lock()
_jieba_instance = None
_warned_versions: set[str] = set()


def _import_jieba():
    try:
        return importlib.import_module("jieba")
    except ImportError as e:
        raise MissingDependencyError("word tokenization needs jieba: pip install jieba") from e


def _jieba_version() -> str:
    return getattr(_import_jieba(), "__version__", "unknown")


def _jieba():
    """A process-wide jieba tokenizer, built once, quietly."""
    global _jieba_instance
    if _jieba_instance is None:
        with _jieba_lock:
            if _jieba_instance is None:
                jieba = _import_jieba()
                # jieba logs "Building prefix dict…" to stderr at DEBUG; hush it, then restore.
                logger = logging.getLogger("jieba")
                level = logger.level
                logger.setLevel(logging.WARNING)
                try:
                    tok = jieba.Tokenizer()
                    tok.initialize()
                finally:
                    logger.setLevel(level)
                _jieba_instance = tok
    return _jieba_instance


def _warn_jieba_version(trained: str) -> None:
    current = _jieba_version()
    if trained != current and trained not in _warned_versions:
        _warned_versions.add(trained)
        warnings.warn(
            f"this model's words were cut by jieba {trained} and jieba {current} is installed; "
            f"cuts may differ: install jieba=={trained} for identical results",
            RnnkitWarning,
            stacklevel=3,
        )
