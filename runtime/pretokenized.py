"""Text that is already cut into tokens: ``model.tag(tokens=...)`` and ``model.classify(tokens=...)``.

A token is normalised the way the model's tokenizer normalises text (``normalize_token``) and
looked up in the vocabulary (unknown → ``<unk>``); nothing is cut again, so the model reads
exactly the tokens given, as training read a tagged corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .tagging import TagResult, bmes_words

if TYPE_CHECKING:
    from .model import Model

__all__ = ["given_tokens", "tag_token_lists", "token_ids", "token_lists", "token_result"]

_ONE_OR_MANY = "tokens= takes one list of str tokens, or a list of such lists"


def given_tokens(call: str, texts: Any, tokens: Any) -> bool:
    """Whether a call was given ``tokens=`` rather than texts; both, or neither, is a TypeError."""
    if (texts is None) == (tokens is None):
        raise TypeError(f"{call}() takes texts or tokens= (text already cut into tokens): one of them, "
                        f"not {'both' if tokens is not None else 'neither'}")
    return tokens is not None


def token_lists(tokens: Any, call: str) -> tuple[bool, list[list[str]]]:
    """``(single, lists)``: ``tokens`` as token lists, and whether it was one list (a list of str).

    ``[]`` is one empty list, as ``""`` is one empty text: an :class:`InputError` as that text is
    (so is an empty str token). A token that is not a str is a ``TypeError``.
    """
    if isinstance(tokens, (str, bytes, bytearray)) or not isinstance(tokens, Iterable):
        raise TypeError(f"{_ONE_OR_MANY}; got {type(tokens).__name__}")
    items = list(tokens)
    if not items or any(isinstance(t, str) for t in items):
        return True, [_checked(items, None, call)]
    lists = []
    for i, item in enumerate(items):
        if isinstance(item, (bytes, bytearray)) or not isinstance(item, Iterable):
            raise TypeError(f"{_ONE_OR_MANY}; item {i} is {type(item).__name__}")
        lists.append(_checked(list(item), i, call))
    return False, lists


def _checked(tokens: list, index: int | None, call: str) -> list[str]:
    where = "" if index is None else f" of list {index}"
    if not tokens:
        raise InputError(f"{'the token list' if index is None else f'token list {index}'} is empty; nothing to {call}")
    for j, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(f"tokens must be str: token {j}{where} is {type(token).__name__}")
        if not token:
            raise InputError(f"token {j}{where} is an empty string; a token holds at least one character")
    return tokens


def token_ids(model: Model, tokens: Sequence[str]) -> list[int]:
    """The vocabulary ids of ``tokens``, each normalised as the model's tokenizer normalises text."""
    normalize = model.tokenizer.normalize_token
    return model.vocab.encode(normalize(t) for t in tokens)


def tag_token_lists(model: Model, lists: list[list[str]], batch_size: int) -> list[TagResult]:
    """Tag each token list as given, ``batch_size`` lists a session call (within ``max_call_bytes``).

    Rows are padded with ``<pad>`` after the tokens, which is what a tagger that reads ahead
    (``lookahead`` k) is fed past the end anyway: the tag of token t is read at step t + k. A
    result's tokens are the caller's tokens, its spans their places in ``"".join(tokens)``.
    """
    k, labels = model.metadata.lookahead, model.labels
    bmes = model.metadata.tag_scheme == "bmes"
    ids = [token_ids(model, tokens) for tokens in lists]
    results: list[TagResult | None] = [None] * len(lists)
    rows = max(1, min(batch_size, model.budget.max_batch()))
    order = sorted(range(len(lists)), key=lambda i: len(ids[i]))
    for at in range(0, len(order), rows):
        chunk = order[at : at + rows]
        width = len(ids[chunk[-1]]) + k
        batch = np.full((len(chunk), width), model.vocab.pad_id, np.int64)  # (B, T)
        for row, i in enumerate(chunk):
            batch[row, : len(ids[i])] = ids[i]
        best = np.empty((len(chunk), width), np.int64)  # (B, T): each step's likeliest tag
        for start, logits in model.run_chunks(batch, model.start_state(len(chunk))):  # (B, t, n_labels)
            best[:, start : start + logits.shape[1]] = logits.argmax(-1)
        for row, i in enumerate(chunk):
            tags = [labels[j] for j in best[row, k : k + len(ids[i])]]
            results[i] = token_result(lists[i], tags, bmes)
    return results  # type: ignore[return-value]


def token_result(tokens: list[str], tags: list[str], bmes: bool) -> TagResult:
    """A TagResult over ``tokens`` as they were given: spans in ``"".join(tokens)``, words joined tokens."""
    spans, end = [], 0
    for token in tokens:
        spans.append((end, end + len(token)))
        end += len(token)
    return TagResult(list(zip(tokens, tags)), spans, bmes_words(tokens, tags) if bmes else None)
