"""Text → tokens, the one implementation used both to train and to serve.

Normalisation (NFKC by default, optional lowercasing) is applied **per input character**, so
every token maps back to a span of the caller's text: tags line up with what the user typed,
and text fed in chunks normalises exactly like the whole text. The cost is that a sequence of
a base letter and a combining mark is not composed into one character; see docs/FORMAT.md.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, MetadataError, MissingDependencyError, RnnkitWarning
from .vocab import Vocabulary

__all__ = ["MAX_HELD", "MAX_WORD", "SEGMENTERS", "CharTokenizer", "SplitPoint", "Tokenizer", "WhitespaceTokenizer",
           "WordTokenizer", "tokenizer_from_config"]

_NORMALIZATIONS = ("NFKC", "NFC", None)
_SURROGATE = re.compile("[\ud800-\udfff]")
# The block structure of jieba's precise mode (jieba/__init__.py, re_han_default): cuts never
# cross the border of a run of [\u4e00-\u9fd5] and these characters (_in_block), which is what
# makes chunked feeding exact.
_BLOCK_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+#&._%-")
# A word stream holds back at most this many normalised characters of a run of Chinese text
# before it cuts anyway (docs/FORMAT.md). Three longest words (16): an exact cut comes every
# few words in real text, so it is nearly always found first, and a forced cut at least one
# longest word before the end has a word boundary within the last 32 to choose from.
MAX_HELD = 48
_WINDOW = 256  # input characters find_split reads first; it reads further back only if undecided
# Scores closer than this are a tie (d): above the rounding of jieba's sums over what a stream
# holds (about 1e-14 per word per unit of score, which grows 7-19 per character of the run: under
# 1e-6 for runs shorter than about 3 million characters), below the gap between real choices.
_TIE = 1e-6
# How a word-level tokenizer cuts words: jieba (Chinese) or Unicode whitespace (English, pre-tokenized text).
SEGMENTERS = ("jieba", "whitespace")
# The whitespace tokenizer's longest token, in normalised characters: a longer run is cut into pieces of
# this size, the same way whole and streamed, so a stream never holds back more (vocabularies leave out
# longer tokens anyway, runtime/vocab.py MAX_TOKEN_CHARS).
MAX_WORD = 512


@dataclass(frozen=True)
class SplitPoint:
    """Where a stream may cut the text fed so far: ``text[:index]`` tokenizes as it will in any
    longer text, unless ``exact`` is False (a forced cut that bounds what is held back)."""

    index: int
    exact: bool


@dataclass(frozen=True)
class Token:
    """A token and the span ``[start, end)`` of the caller's text it came from."""

    text: str
    start: int
    end: int


class Tokenizer:
    """Common interface: ``tokenize``, ``detokenize``, ``encode``/``decode`` with a vocabulary."""

    kind = ""
    segmenter: str | None = None  # how a word tokenizer cuts words (SEGMENTERS); None for characters

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

    @property
    def separator(self) -> str:
        """What goes between two tokens when they are written back as text ("" but for dropped spaces)."""
        return ""

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.separator.join(tokens)

    def encode(self, text: str, vocab: Vocabulary) -> list[int]:
        """Token ids of ``text``; unknown tokens become ``vocab.unk_id``."""
        return vocab.encode(self.tokenize(text))

    def decode(self, ids: Sequence[int], vocab: Vocabulary, *, unk: str = "\ufffd") -> str:
        """Text of ``ids``; pad/bos/eos are dropped and unknown tokens render as ``unk``."""
        skip = (vocab.pad_id, vocab.bos_id, vocab.eos_id)
        return self.separator.join(
            unk if i == vocab.unk_id else vocab.token(i) for i in map(int, ids) if i not in skip
        )

    def split_point(self, text: str) -> int:
        """How much of ``text`` (a prefix length) tokenizes the same whatever follows it.

        A stream fed text in chunks tokenizes ``text[:n]`` now and keeps the rest.
        """
        return len(text)

    def find_split(self, text: str) -> SplitPoint:
        """``split_point(text)`` and whether that cut is exact for any continuation.

        >>> CharTokenizer().find_split("ab")
        SplitPoint(index=2, exact=True)
        """
        return SplitPoint(self.split_point(text), True)

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
    segmenter = "jieba"

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
        return self.find_split(text).index

    def find_split(self, text: str) -> SplitPoint:
        """Where a stream may cut ``text``: the rule of docs/FORMAT.md, "Chunked input".

        Cuts never cross the border of a jieba block, so everything before the trailing block
        is final; inside it, the last word boundary that no word of any continuation can move.
        Past MAX_HELD held-back characters it forces a cut (``exact=False``). Reads only the
        end of ``text``: the cost does not grow with what comes before.

        >>> WordTokenizer().find_split("我爱。北京")  # doctest: +SKIP
        SplitPoint(index=3, exact=True)
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        size = _WINDOW
        while True:
            offset = max(0, len(text) - size)
            found = self._split_tail(text[offset:], whole=offset == 0)
            if found is not None:
                return SplitPoint(offset + found.index, found.exact)
            size *= 4

    def _split_tail(self, tail: str, whole: bool) -> SplitPoint | None:
        """find_split of a text ending with ``tail``; None if the text before it could matter."""
        pieces = self._pieces(tail)
        normalized = "".join(pieces)
        starts, k = {}, 0  # normalised offset of each input character → its index
        for i, p in enumerate(pieces):
            starts[k] = i
            k += len(p)
        starts[k] = len(pieces)
        n = begin = len(normalized)
        while begin and _in_block(normalized[begin - 1]):
            begin -= 1
        limit = n
        if begin < n:  # the trailing block may go on in the next chunk
            if begin == 0 and not whole:  # the rule needs the whole block
                return None
            cut = _cut_block(normalized[begin:], lambda p: begin + p in starts)
            if cut.index:
                return SplitPoint(starts[begin + cut.index], cut.exact)
            limit = begin
        elif normalized.endswith("\r"):  # may be half of "\r\n"
            limit = n - 1
        for p in range(limit, 0, -1):
            inside = p < n and _in_block(normalized[p - 1]) and _in_block(normalized[p])
            crlf = normalized[p - 1] == "\r" and normalized[p:p + 1] == "\n"
            if p in starts and not inside and not crlf:
                return SplitPoint(starts[p], True)
        return SplitPoint(0, True) if whole else None

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "hmm": self.hmm, "mode": "precise",
                "jieba_version": self.jieba_version}


class WhitespaceTokenizer(Tokenizer):
    """Words split on Unicode whitespace: for English and other space-separated or pre-tokenized text.

    A token is a maximal run of non-whitespace (after per-character normalisation), cut into pieces
    of at most :data:`MAX_WORD` normalised characters. Whitespace is dropped by default and written
    back as one space between tokens; with ``keep_whitespace`` every run of whitespace is a token
    too (cut the same way) and decoding joins tokens as they are. A stream holds back the open word
    (the trailing run) until whitespace or ``flush()`` closes it.

    >>> WhitespaceTokenizer().tokenize("The  cat\tsat.")
    ['The', 'cat', 'sat.']
    >>> WhitespaceTokenizer().find_split("the ca")
    SplitPoint(index=4, exact=True)
    """

    kind = "word"
    segmenter = "whitespace"

    def __init__(self, *, keep_whitespace: bool = False, **kwargs: Any) -> None:
        super().__init__(keep_whitespace=keep_whitespace, **kwargs)

    @property
    def separator(self) -> str:
        return "" if self.keep_whitespace else " "

    def tokenize_spans(self, text: str) -> list[Token]:
        pieces = self._pieces(text)
        return [Token("".join(pieces[a:b]), a, b) for a, b, kept, _ in self._runs(pieces) if kept]

    def _runs(self, pieces: list[str]) -> Iterator[tuple[int, int, bool, bool]]:
        """(start, end, kept, closed) of every run of the pieces, in order.

        A run is a word or a stretch of whitespace, at most MAX_WORD normalised characters long;
        ``kept``: it is a token (whitespace is one only with ``keep_whitespace``); ``closed``:
        no continuation of the text can change it (it ends before the end, or is full).
        """
        n, i = len(pieces), 0
        while i < n:
            space = pieces[i].isspace()
            start, size = i, 0
            while i < n and pieces[i].isspace() == space and size + len(pieces[i]) <= MAX_WORD:
                size += len(pieces[i])
                i += 1
            yield start, i, self.keep_whitespace or not space, i < n or size == MAX_WORD

    def split_point(self, text: str) -> int:
        """The end of the last closed run: what follows is the open word (or whitespace run) a
        continuation could lengthen; dropped whitespace at the end is final."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        pieces = self._pieces(text)
        cut = 0
        for start, end, kept, closed in self._runs(pieces):
            cut = end if closed or not kept else start
        return cut

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "segmenter": self.segmenter}


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
        if config.get("kind") == "word" and config.get("segmenter", "jieba") == "whitespace":
            return WhitespaceTokenizer(**common)
        if config.get("kind") == "word" and config.get("segmenter", "jieba") == "jieba":
            tok = WordTokenizer(hmm=config.get("hmm", True),
                                jieba_version=config.get("jieba_version"), **common)
            _warn_jieba_version(tok.jieba_version)
            return tok
    except ConfigError as e:
        raise MetadataError(str(e), "rnnkit.tokenizer") from e
    if config.get("kind") == "word":
        raise MetadataError(f"unknown word segmenter {config.get('segmenter')!r:.40}; expected one of "
                            f"{', '.join(SEGMENTERS)}", "rnnkit.tokenizer")
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


def _in_block(ch: str) -> bool:
    """Whether ``ch`` belongs in a jieba block (re_han_default)."""
    return "\u4e00" <= ch <= "\u9fd5" or ch in _BLOCK_ASCII


@functools.lru_cache(maxsize=1)
def _longest_key() -> int:
    """Length of the longest key of jieba's prefix dictionary (16 for jieba 0.42.1)."""
    return max(map(len, _jieba().FREQ))


def _cut_block(block: str, allowed: Callable[[int], bool]) -> SplitPoint:
    """The cut inside the trailing jieba block ``block`` (normalised), 0 for its start.

    Rules (a)-(d) and the backstop of docs/FORMAT.md; ``allowed(p)``: p falls between input
    characters.
    """
    jb, longest = _jieba(), _longest_key()
    n = len(block)
    dag = jb.get_DAG(block)  # dag[i]: the last index of every word starting at i, ascending
    route: dict[int, tuple[float, int]] = {}
    jb.calc(block, dag, route)
    # (a) free[p]: no word of the known text crosses p
    free = [False] * (n + 1)
    reach = 0
    for p in range(1, n):
        reach = max(reach, dag[p - 1][-1])
        free[p] = reach < p
    # (b) the keys of FREQ are prefix-closed, so a word can start at i and run past the end
    # only if block[i:] is a key: no cut after the first such i
    last = next((i for i in range(max(0, n - longest), n) if block[i:] in jb.FREQ), n)
    words, x = [], 0  # (start, end) of each word of jieba's route
    while x < n:
        y = route[x][1] + 1
        # (d) where two choices score (nearly) the same, as in 忙忙忙 = 忙忙+忙 = 忙+忙忙, the
        # whole text's choice depends on how the sums of its continuation round: no cut after it
        if last > x and _near_tie(jb, block, dag, route, x):
            last = x
        words.append((x, y))
        x = y
    # (c) a multi-character word ends at the cut: it flushes the single characters jieba's HMM
    # (or, without it, the joining of single letters and digits) would merge across the cut
    exact = next((end for start, end in reversed(words)
                  if end - start > 1 and end <= last and end < n and free[end] and allowed(end)), 0)
    if n - exact <= MAX_HELD:
        return SplitPoint(exact, True)
    # Backstop: a word boundary in [n - MAX_HELD, n - longest], so no word can run past the end
    # from before it; a free one if there is one (then only merging across it could differ).
    low, high = n - MAX_HELD, n - longest
    ends = [end for _, end in words if low <= end <= high and allowed(end)]
    forced = max((end for end in ends if free[end]), default=None)
    if forced is None:
        forced = max(ends, default=None)
    if forced is None:  # every boundary falls inside one input character's normalisation
        forced = max((p for p in range(low, high + 1) if allowed(p)), default=exact)
    return SplitPoint(forced, False) if forced > exact else SplitPoint(exact, True)


def _near_tie(jb: Any, block: str, dag: dict[int, list[int]], route: dict[int, tuple[float, int]],
              x: int) -> bool:
    """Whether jieba's best and second-best word at ``x`` score within _TIE of each other."""
    if len(dag[x]) < 2:
        return False
    logtotal = math.log(jb.total)
    scores = sorted(math.log(jb.FREQ.get(block[x:y + 1]) or 1) - logtotal + route[y + 1][0] for y in dag[x])
    return scores[-1] - scores[-2] < _TIE


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
