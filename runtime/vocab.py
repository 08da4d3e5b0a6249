"""Token ↔ id mapping with fixed special tokens."""

from __future__ import annotations

import hashlib
import json
import operator
from collections import Counter
from collections.abc import Iterable, Sequence

from .errors import ConfigError, MetadataError

__all__ = ["SPECIALS", "Vocabulary"]

# Fixed ids: 0..3 in every rnnkit vocabulary. The names are reserved: a text token spelled
# like one of them is not the special token; it encodes as unknown (see docs/FORMAT.md).
SPECIALS = {"pad": "<pad>", "unk": "<unk>", "bos": "<bos>", "eos": "<eos>"}
_SPECIAL_NAMES = tuple(SPECIALS.values())
MAX_TOKEN_CHARS = 512  # longer tokens are left out of vocabularies (the model format caps them)


class Vocabulary:
    """An ordered list of tokens; the index of a token is its id.

    Ids 0–3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``. Unknown tokens encode as ``unk_id``
    and never raise.

    >>> v = Vocabulary.build([["a", "b", "a"]])
    >>> v.encode(["a", "z"])
    [4, 1]
    >>> v.decode([4, 5])
    ['a', 'b']
    """

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tuple(tokens[:4]) != _SPECIAL_NAMES:
            raise ConfigError(
                f"a vocabulary must start with {list(_SPECIAL_NAMES)}; build one with Vocabulary.build()"
            )
        regular = tokens[4:]
        for token in regular:
            if not isinstance(token, str) or not token:
                raise ConfigError(f"vocabulary tokens must be non-empty strings, got {token!r}")
        index = {token: i for i, token in enumerate(regular, start=4)}
        if len(index) != len(regular) or any(t in _SPECIAL_NAMES for t in regular):
            dupes = sorted(t for t, n in Counter(regular).items() if n > 1 or t in _SPECIAL_NAMES)
            raise ConfigError(f"vocabulary has duplicate or reserved tokens: {dupes[:5]}")
        self._tokens = tokens
        self._index = index

    @classmethod
    def build(
        cls,
        sequences: Iterable[Iterable[str]],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Count tokens and keep those seen at least ``min_freq`` times.

        ``max_size`` caps the total size, the four specials included. Order is deterministic:
        most frequent first, ties by the token's code points. Tokens longer than 512 characters
        are left out (they encode as unknown).
        """
        if min_freq < 1:
            raise ConfigError(f"min_freq must be at least 1, got {min_freq}")
        if max_size is not None and max_size < len(_SPECIAL_NAMES) + 1:
            raise ConfigError(f"max_size must be at least 5 (4 specials + 1 token), got {max_size}")
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        for name in _SPECIAL_NAMES:
            counts.pop(name, None)
        counts.pop("", None)
        for token in [t for t in counts if len(t) > MAX_TOKEN_CHARS]:  # a URL-sized "word": unk
            del counts[token]
        kept = sorted(
            (t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max_size - len(_SPECIAL_NAMES)]
        return cls([*_SPECIAL_NAMES, *kept])

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __getitem__(self, token_id: int) -> str:
        """The token of id ``token_id`` (``vocab[4]``); negative ids count from the end, as in a list."""
        try:
            index = operator.index(token_id)  # int and numpy's integers; not float, not str
        except TypeError:
            index = None
        if index is None or isinstance(token_id, bool):
            raise TypeError(f"vocabulary ids are integers, got {type(token_id).__name__}")
        if not -len(self._tokens) <= index < len(self._tokens):
            raise IndexError(f"token id {index} is outside the vocabulary (0..{len(self._tokens) - 1})")
        return self._tokens[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(tuple(self._tokens))

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, sample={self._tokens[4:10]!r})"

    @property
    def tokens(self) -> list[str]:
        """All tokens, index = id (a copy)."""
        return list(self._tokens)

    def id(self, token: str) -> int:
        """The id of ``token``, or ``unk_id``."""
        return self._index.get(token, self.unk_id)

    def token(self, id_: int) -> str:
        """The token with this id."""
        if not 0 <= id_ < len(self._tokens):
            raise ConfigError(f"token id {id_} is outside the vocabulary (0..{len(self) - 1})")
        return self._tokens[id_]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get, unk = self._index.get, self.unk_id
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.token(int(i)) for i in ids]

    def to_json(self) -> str:
        """The JSON list stored in a model's ``rnnkit.vocab`` metadata."""
        return json.dumps(self._tokens, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """The vocabulary of ``to_json()`` text (a model's ``rnnkit.vocab``); MetadataError if malformed."""
        if not isinstance(text, str):
            raise TypeError(f"vocabulary JSON must be str, got {type(text).__name__}")
        try:
            tokens = json.loads(text)
        except (ValueError, RecursionError) as e:  # ValueError: JSONDecodeError
            raise MetadataError(f"vocabulary is not valid JSON ({e}); re-export the model", "rnnkit.vocab") from e
        if not isinstance(tokens, list):
            raise MetadataError("vocabulary must be a JSON list of strings", "rnnkit.vocab")
        long = next((i for i, t in enumerate(tokens) if isinstance(t, str) and len(t) > MAX_TOKEN_CHARS), None)
        if long is not None:
            raise MetadataError(f"vocabulary token {long} is longer than {MAX_TOKEN_CHARS} characters", "rnnkit.vocab")
        try:
            return cls(tokens)
        except ConfigError as e:
            raise MetadataError(str(e), "rnnkit.vocab") from e

    def checksum(self) -> str:
        """sha256 of the canonical JSON of the token list (``rnnkit.vocab_sha256``)."""
        return vocab_checksum(self._tokens)


def vocab_checksum(tokens: Sequence[str]) -> str:
    data = json.dumps(list(tokens), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()
