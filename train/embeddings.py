"""Pretrained word vectors (word2vec text or binary, GloVe) → rows of a model's embedding.

Three formats, told apart by their content:

- **word2vec text** (fastText's ``.vec`` too): a header line ``count dim``, then one line
  ``word v1 … vdim`` per word;
- **GloVe text**: no header, every line ``word v1 … vdim``;
- **word2vec binary**: the header line, then per word its UTF-8 bytes up to a space, ``dim``
  little-endian float32 and an optional ``"\\n"``.

A first line of exactly two integers is a header; a header followed by bytes that text does not
hold (controls other than tab and line ends, as float32 bytes almost always do) is binary.

The file is untrusted and read as a stream: it must be a regular file of at most the data cap
(:data:`rnnkit.runtime.datafiles.MAX_DATA_BYTES`), ``dim`` at most :data:`MAX_DIM`, and every
record well formed (a word and ``dim`` values; the count its header says). Only the vectors of
words in the vocabulary are kept, and only theirs are parsed; those must be finite float32. A
file word is matched after ``tokenizer.normalize_token``: when several normalise to one token the
first wins, but a word spelled twice exactly is refused (two vectors, no way to tell which is
meant). Standard library and numpy only; the trainer copies the rows into the model.

>>> header = probe_embeddings("glove.6B.50d.txt")  # doctest: +SKIP
>>> header.format, header.dim  # doctest: +SKIP
('GloVe text', 50)
>>> vectors = read_embeddings("glove.6B.50d.txt", vocab, tokenizer)  # doctest: +SKIP
>>> vectors.describe()  # doctest: +SKIP
'GloVe text, 50 dimensions; 1,234 of 1,500 vocabulary tokens (82.3%) found'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.runtime import datafiles
from rnnkit.runtime.contract import MAX_DIM
from rnnkit.runtime.errors import ConfigError, DataError
from rnnkit.runtime.tokenizers import Tokenizer
from rnnkit.runtime.vocab import Vocabulary

__all__ = ["FORMATS", "MAX_LINE_BYTES", "PretrainedVectors", "VectorsHeader", "check_dimension", "describe",
           "probe_embeddings", "read_embeddings"]

FORMATS = ("word2vec text", "GloVe text", "word2vec binary")
MAX_LINE_BYTES = 1 << 22  # a text row of MAX_DIM values of ~20 characters fits; longer is not a row
_MAX_WORD_BYTES = 1 << 16  # a binary record's word (a vocabulary token is at most 512 characters)
_WINDOW = 4096  # bytes after a header that decide text or binary
_HEADER = re.compile(rb"[ \t]*(\d{1,30})[ \t]+(\d{1,30})[ \t]*\r?\n?")
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FIELDS = re.compile("[ \t]+")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FIRST_ID = 4  # ids 0-3 are the special tokens: they keep their initial rows


@dataclass(frozen=True)
class VectorsHeader:
    """What the start of a vectors file says: its format, the vectors' size, the header's count."""

    path: str
    format: str
    dim: int
    count: int | None  # words the header announces; None for GloVe (no header)


@dataclass(frozen=True)
class PretrainedVectors:
    """The vectors of a file that belong to a vocabulary: ``vectors[k]`` is the row of id ``ids[k]``."""

    path: str
    format: str
    dim: int
    ids: np.ndarray  # (covered,) int64, ascending, all ≥ 4
    vectors: np.ndarray  # (covered, dim) float32
    vocab: int  # the vocabulary's tokens, the four specials left out
    file_words: int  # vectors the file holds

    @property
    def covered(self) -> int:
        return len(self.ids)

    @property
    def coverage(self) -> float:
        return self.covered / self.vocab if self.vocab else 0.0

    def describe(self) -> str:
        return describe(self.record())

    def record(self) -> dict[str, Any]:
        """What metrics.json says about them (plain values)."""
        return {"path": self.path, "format": self.format, "dim": self.dim, "covered": self.covered,
                "vocab": self.vocab, "coverage": round(self.coverage, 6), "file_words": self.file_words}


def describe(record: dict[str, Any]) -> str:
    """One line about a :meth:`PretrainedVectors.record`: format, size and coverage."""
    r = record
    return (f"{r['format']}, {r['dim']} dimensions; {r['covered']:,} of {r['vocab']:,} vocabulary tokens "
            f"({100 * r['coverage']:.1f}%) found")


def probe_embeddings(path: str | os.PathLike) -> VectorsHeader:
    """The format and dimension of the vectors in ``path``, from its first line (and the bytes after a header)."""
    with _Reader(path) as reader:
        return _header(reader)


def check_dimension(header: VectorsHeader, embed: int) -> None:
    """Refuse vectors whose size is not the model's embedding size."""
    if header.dim != embed:
        raise ConfigError(f"{header.path} has {header.dim} dimensions, embed is {embed}: pass embed={header.dim}")


def read_embeddings(path: str | os.PathLike, vocab: Vocabulary, tokenizer: Tokenizer) -> PretrainedVectors:
    """The vectors in ``path`` of the tokens of ``vocab``, matched after ``tokenizer.normalize_token``.

    Raises DataError (naming the file and the line or record) for a file rnnkit cannot read as
    vectors, and when no vocabulary token has a vector.
    """
    index = {token: i for i, token in enumerate(vocab.tokens) if i >= _FIRST_ID}
    with _Reader(path) as reader:
        header = _header(reader)
        rows = _binary_rows(reader, header) if header.format == FORMATS[2] else _text_rows(reader, header)
        found: dict[int, np.ndarray] = {}
        where: dict[str, str] = {}  # file word → where it was, for the words that match a token
        words = 0
        normalize = tokenizer.normalize_token
        for place, word, values in rows:
            words += 1
            token_id = index.get(normalize(word))
            if token_id is None:
                continue
            if word in where:
                raise DataError(f"{place} repeats the word {word!r} of {where[word]}: two vectors for one word; "
                                "remove one of them", path=reader.name)
            where[word] = place
            if token_id not in found:  # several words normalising to one token: the first wins
                found[token_id] = _vector(values, header.dim, place, reader.name)
    if not found:
        raise DataError(f"no vocabulary token was found among its {_count(words, 'word')} ({header.format}): "
                        "the wrong file, or the wrong --level (word vectors need --level word)?", path=reader.name)
    ids = np.array(sorted(found), dtype=np.int64)
    vectors = np.stack([found[int(i)] for i in ids])  # (covered, dim)
    return PretrainedVectors(reader.name, header.format, header.dim, ids, vectors,
                             vocab=len(vocab) - _FIRST_ID, file_words=words)


# -- formats ---------------------------------------------------------------------------------------
def _header(reader: _Reader) -> VectorsHeader:
    first = reader.peek_line()
    if first is None:
        raise DataError("is empty; give a word2vec (text or binary) or GloVe vectors file", path=reader.name)
    match = _HEADER.fullmatch(first)
    if match is None:
        fields = _split(_decode(first, "line 1", reader.name))
        if not fields:
            raise DataError("line 1 is blank; a GloVe file's first line is a word and its vectors", path=reader.name)
        return VectorsHeader(reader.name, FORMATS[1], _checked_dim(len(fields) - 1, "line 1", reader.name), None)
    count, dim = int(match[1]), int(match[2])
    if dim == 0:
        raise DataError("its header (line 1) says 0 dimensions; give a file of vectors", path=reader.name)
    _checked_dim(dim, "its header (line 1)", reader.name)
    if count == 0:
        raise DataError("holds no vectors (its header on line 1 says 0 words)", path=reader.name)
    reader.skip(len(first))
    binary = _NOT_TEXT.search(reader.peek(_WINDOW)) is not None
    return VectorsHeader(reader.name, FORMATS[2] if binary else FORMATS[0], dim, count)


def _checked_dim(dim: int, where: str, name: str) -> int:
    if dim < 1:
        raise DataError(f"{where} holds a word but no values; give a file of vectors", path=name)
    if dim > MAX_DIM:
        raise DataError(f"{where} gives vectors of {dim:,} dimensions, more than the {MAX_DIM:,} a model holds; "
                        "use smaller vectors", path=name)
    return dim


def _text_rows(reader: _Reader, header: VectorsHeader) -> Iterator[tuple[str, str, list[str]]]:
    """(where, word, value strings) per non-blank line; the shape of every row is checked."""
    lineno = 1 if header.count is not None else 0
    seen, said = 0, "the header says" if header.count is not None else "line 1 has"
    while (line := reader.line(lineno + 1)) is not None:
        lineno += 1
        place = f"line {lineno}"
        fields = _split(_decode(line, place, reader.name))
        if not fields:
            continue
        seen += 1
        if header.count is not None and seen > header.count:
            raise DataError(f"{place} is a word beyond the {header.count:,} its header (line 1) says; fix the count "
                            "on line 1", path=reader.name)
        if len(fields) != header.dim + 1:
            raise DataError(f"{place} has {_count(len(fields) - 1, 'value')} after its word, {said} {header.dim:,}; "
                            "fix or remove the line", path=reader.name)
        yield place, fields[0], fields[1:]
    if header.count is not None and seen != header.count:
        raise DataError(f"its header (line 1) says {header.count:,} words, the file holds {seen:,}; fix the count",
                        path=reader.name)
    if seen == 0:
        raise DataError("holds no vectors (only blank lines)", path=reader.name)


def _binary_rows(reader: _Reader, header: VectorsHeader) -> Iterator[tuple[str, str, bytes]]:
    """(where, word, float32 bytes) per record, for the count the header says, then nothing but line ends."""
    size, count = 4 * header.dim, header.count or 0
    for record in range(1, count + 1):
        place = f"word2vec binary record {record:,}"
        reader.skip_while(b"\n")  # the line end some writers put after a vector
        raw = reader.until_space(_MAX_WORD_BYTES)
        if raw is None:
            if reader.ends_within(1):
                problem = f"the file ends before {place}, but its header says {count:,} words; fix the count"
            elif reader.ends_within(_MAX_WORD_BYTES):
                problem = f"{place} is cut short (the file ends inside its word); the file is truncated"
            else:
                problem = f"{place} has no space within {_MAX_WORD_BYTES:,} bytes: not a word2vec binary file"
            raise DataError(problem, path=reader.name)
        values = reader.take(size)
        word = _decode(raw, place, reader.name)
        if len(values) < size:
            raise DataError(f"{place} ({word[:40]!r}) is cut short: {len(values):,} of its {size:,} bytes; the file "
                            "is truncated (download it again)", path=reader.name)
        if not word:
            raise DataError(f"{place} has no word; the file is damaged", path=reader.name)
        yield place, word, values
    extra = reader.rest_problem()
    if extra:
        raise DataError(f"holds more than the {count:,} words its header says ({extra}); fix the count",
                        path=reader.name)


def _vector(values: list[str] | bytes, dim: int, place: str, name: str) -> np.ndarray:
    """The (dim,) float32 vector of a kept row: parsed (text) or read (binary), every value finite."""
    if isinstance(values, bytes):
        vector = np.frombuffer(values, dtype="<f4").astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(vector))
        if len(bad):
            raise DataError(f"{place}: value {bad[0] + 1} is {vector[bad[0]]}, not a finite number; the file is "
                            "damaged", path=name)
        return vector
    try:
        wide = np.array(values, dtype=np.float64)
    except ValueError:
        k = next(k for k, v in enumerate(values) if not _parses(v))
        raise DataError(f"{place}: value {k + 1} ({values[k][:40]!r}) is not a number; fix the line",
                        path=name) from None
    bad = np.flatnonzero(~(np.abs(wide) <= _FLOAT32_MAX))
    if len(bad):
        raise DataError(f"{place}: value {bad[0] + 1} ({values[bad[0]][:40]!r}) is not a finite float32 number; "
                        "fix the line", path=name)
    return wide.astype(np.float32)


def _parses(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _split(text: str) -> list[str]:
    stripped = text.strip(" \t\r\n")
    return _FIELDS.split(stripped) if stripped else []


def _decode(raw: bytes, place: str, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{place} is not UTF-8 (byte 0x{raw[e.start]:02x} at {e.start}); save the file as UTF-8",
                        path=name) from None


# -- the file --------------------------------------------------------------------------------------
class _Reader:
    """A regular file read forward through a buffer, at most the data cap of it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = os.fspath(path)
        self.cap = datafiles.MAX_DATA_BYTES
        self._file = _open_regular(self.name, self.cap)
        self._buf = b""
        self._pos = 0
        self._read = 0  # bytes taken from the file so far
        self._eof = False
        if self._fill(3) and self._buf.startswith(b"\xef\xbb\xbf"):
            self._pos = 3  # a UTF-8 byte order mark

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def _fill(self, need: int) -> bool:
        """Buffer at least ``need`` unread bytes if the file has them; False at its end."""
        while len(self._buf) - self._pos < need and not self._eof:
            try:
                chunk = self._file.read(max(need, 1 << 20))
            except OSError as e:
                raise DataError(f"cannot read the file ({e.strerror})", path=self.name) from None
            self._read += len(chunk)
            if self._read > self.cap:
                raise DataError(_too_big(self._read, self.cap), path=self.name)
            self._eof = not chunk
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0
        return len(self._buf) - self._pos >= need

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def skip(self, n: int) -> None:
        self._pos += n

    def _find(self, byte: bytes, limit: int) -> int | None:
        """The buffer index of the next ``byte`` within ``limit`` unread bytes, or None."""
        searched = 0  # unread bytes already searched
        while True:
            unread = len(self._buf) - self._pos
            end = self._pos + min(unread, limit)
            i = self._buf.find(byte, self._pos + searched, end)
            if i >= 0:
                return i
            searched = end - self._pos
            if searched >= limit or not self._fill(unread + 1):
                return None

    def ends_within(self, n: int) -> bool:
        """Whether fewer than ``n`` bytes are left."""
        return not self._fill(n)

    def peek_line(self) -> bytes | None:
        """The first line with its line end (or to the end of the file), not consumed; None for an empty file."""
        if not self._fill(1):
            return None
        end = self._find(b"\n", MAX_LINE_BYTES + 1)
        if end is None:
            if len(self._buf) - self._pos > MAX_LINE_BYTES:
                raise DataError(f"line 1 is longer than {MAX_LINE_BYTES:,} bytes: not a vectors file", path=self.name)
            return self._buf[self._pos :]
        return self._buf[self._pos : end + 1]

    def line(self, lineno: int) -> bytes | None:
        """The next line (its line end left off), or None at the end of the file."""
        if not self._fill(1):
            return None
        end = self._find(b"\n", MAX_LINE_BYTES + 1)
        if end is None and len(self._buf) - self._pos > MAX_LINE_BYTES:
            raise DataError(f"line {lineno:,} is longer than {MAX_LINE_BYTES:,} bytes: not a row of vectors",
                            path=self.name)
        stop = len(self._buf) if end is None else end
        line = self._buf[self._pos : stop]
        self._pos = stop + 1
        return line

    def skip_while(self, byte: bytes) -> None:
        while self._fill(1) and self._buf[self._pos : self._pos + 1] == byte:
            self._pos += 1

    def until_space(self, limit: int) -> bytes | None:
        """The bytes before the next space (which is consumed), or None when none comes within ``limit``."""
        end = self._find(b" ", limit)
        if end is None:
            return None
        word = self._buf[self._pos : end]
        self._pos = end + 1
        return word

    def take(self, n: int) -> bytes:
        self._fill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def rest_problem(self) -> str | None:
        """What follows the last record besides line ends and spaces, or None."""
        while self._fill(1):
            if self._buf[self._pos :].strip(b" \r\n"):
                return "more bytes follow its last record"
            self._pos = len(self._buf)
        return None


def _open_regular(name: str, cap: int):
    """``name`` opened for reading: a regular file of at most ``cap`` bytes (as the data reader wants)."""
    fd = datafiles.open_regular(name, cap=cap, what="vectors", hint="check the --embeddings path",
                                too_big=lambda size: _too_big(size, cap))
    return os.fdopen(fd, "rb", buffering=0)




def _too_big(size: int, cap: int) -> str:
    return (f"the file is {size:,} bytes, more than the {cap:,} rnnkit reads; save the vectors of fewer words "
            "(the most frequent come first) and fix the count in its header")
