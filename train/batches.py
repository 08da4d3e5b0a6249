"""Examples → id tensors → batches, per task. Deterministic: order comes from (seed, epoch)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from rnnkit.runtime.tokenizers import Tokenizer
from rnnkit.runtime.vocab import Vocabulary

__all__ = ["Batch", "LMStream", "SequenceSet", "encode_lm", "encode_sequences", "encode_split", "largest_batch",
           "tokenize_examples"]

IGNORE = -100  # target of a padded position (CrossEntropyLoss ignore_index)
_BUCKET = 50  # batches per length bucket: similar lengths share a batch, order stays random


@dataclass
class Batch:
    tokens: torch.Tensor  # (B, T) int64, padded with pad_id
    targets: torch.Tensor  # (B, T) for lm/tag (IGNORE where padded); (B,) for classify
    lengths: torch.Tensor  # (B,) real lengths
    n_tokens: int


class LMStream:
    """One continuous token stream: every document framed as ``<bos> text <eos>``.

    Cut into ``batch`` parallel rows (word_language_model's ``batchify``) and read in chunks
    of ``bptt`` tokens; the state carries from one chunk to the next.
    """

    def __init__(self, ids: torch.Tensor, batch: int, bptt: int) -> None:
        rows = max(1, min(batch, (len(ids) - 1) // 2))
        width = len(ids) // rows
        self.data = ids[: rows * width].view(rows, width)  # (B, N)
        self.bptt = bptt
        self.n_tokens = rows * (width - 1)

    def __len__(self) -> int:
        return max(0, math.ceil((self.data.shape[1] - 1) / self.bptt))

    def batches(self, start: int = 0) -> Iterator[Batch]:
        rows, width = self.data.shape
        for i in range(start * self.bptt, width - 1, self.bptt):
            n = min(self.bptt, width - 1 - i)
            x = self.data[:, i : i + n]  # (B, n)
            y = self.data[:, i + 1 : i + 1 + n]  # (B, n)
            yield Batch(x, y, torch.full((rows,), n), rows * n)


class SequenceSet:
    """Padded batches of whole sequences (classify and tag)."""

    def __init__(self, seqs: list[list[int]], targets: list, pad_id: int, per_token: bool) -> None:
        self.seqs = seqs
        self.targets = targets
        self.pad_id = pad_id
        self.per_token = per_token
        self.n_tokens = sum(map(len, seqs))

    def __len__(self) -> int:
        return len(self.seqs)

    def n_batches(self, batch_size: int) -> int:
        return math.ceil(len(self.seqs) / batch_size)

    def order(self, batch_size: int, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
        """The batches of one epoch as index lists: shuffled, then bucketed by length."""
        n = len(self.seqs)
        if not shuffle:
            idx = sorted(range(n), key=lambda i: len(self.seqs[i]))
            return [idx[i : i + batch_size] for i in range(0, n, batch_size)]
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        idx = torch.randperm(n, generator=g).tolist()
        batches = []
        span = batch_size * _BUCKET
        for b in range(0, n, span):
            bucket = sorted(idx[b : b + span], key=lambda i: len(self.seqs[i]))
            batches += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
        perm = torch.randperm(len(batches), generator=g).tolist()
        return [batches[i] for i in perm]

    def batch(self, indices: Sequence[int]) -> Batch:
        seqs = [self.seqs[i] for i in indices]
        lengths = torch.tensor([len(s) for s in seqs])
        width = int(lengths.max())
        tokens = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)  # (B, T)
        for row, s in enumerate(seqs):
            tokens[row, : len(s)] = torch.tensor(s)
        if self.per_token:
            targets = torch.full((len(seqs), width), IGNORE, dtype=torch.long)  # (B, T)
            for row, i in enumerate(indices):
                targets[row, : len(self.targets[i])] = torch.tensor(self.targets[i])
        else:
            targets = torch.tensor([self.targets[i] for i in indices])  # (B,)
        return Batch(tokens, targets, lengths, int(lengths.sum()))


def encode_lm(docs: Sequence[list[str]], vocab: Vocabulary) -> torch.Tensor:
    """Tokenized documents as one id stream (N,), each ``<bos> ids <eos>``."""
    ids: list[int] = []
    for tokens in docs:
        ids.append(vocab.bos_id)
        ids += vocab.encode(tokens)
        ids.append(vocab.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def encode_sequences(
    items: Sequence[tuple[list[str], object]], task: str, vocab: Vocabulary,
    label_index: dict[str, int], max_len: int, lookahead: int = 0,
) -> tuple[SequenceSet, int]:
    """classify: the first ``max_len`` tokens of each text; tag: windows of ``max_len`` tokens.

    ``items`` are (tokens, label) or (tokens, tags). Returns the set and how many examples
    were dropped (no tokens, or a label the model does not know).

    A tagger with ``lookahead`` k reads k tokens past each token before it tags it: a window
    is followed by the next k ids of its text (``<pad>`` past the end) and its tags are
    shifted k steps later, so the tag of token t is read at step t + k.
    """
    seqs: list[list[int]] = []
    targets: list = []
    dropped = 0
    for tokens, target in items:
        ids = vocab.encode(tokens)
        if not ids or (task == "classify" and target not in label_index):
            dropped += 1
            continue
        if task == "classify":
            seqs.append(ids[:max_len])
            targets.append(label_index[target])
            continue
        tag_ids = [label_index.get(t, IGNORE) for t in target]
        for i in range(0, len(ids), max_len):
            tags = tag_ids[i : i + max_len]
            window = ids[i : i + len(tags) + lookahead]  # the right context the text has…
            seqs.append(window + [vocab.pad_id] * (len(tags) + lookahead - len(window)))  # …then <pad>
            targets.append([IGNORE] * lookahead + tags)
    return SequenceSet(seqs, targets, vocab.pad_id, per_token=task == "tag"), dropped


def tokenize_examples(examples: Sequence, task: str, tokenizer: Tokenizer) -> list:
    """lm: token lists; classify: (tokens, label); tag: (normalised tokens, tags)."""
    if task == "lm":
        return [tokenizer.tokenize(text) for text in examples]
    if task == "classify":
        return [(tokenizer.tokenize(text), label) for text, label in examples]
    return [([tokenizer.normalize_token(t) for t in tokens], tags) for tokens, tags in examples]


def encode_split(items: Sequence, task: str, vocab: Vocabulary, labels: Sequence[str], *,
                 batch_size: int, bptt: int, max_len: int, lookahead: int = 0,
                 ) -> tuple[LMStream | SequenceSet, int]:
    """Tokenized items of one split as the data the loop reads, and how many were dropped."""
    if task == "lm":
        return LMStream(encode_lm(items, vocab), batch_size, bptt), 0
    index = {label: i for i, label in enumerate(labels)}
    return encode_sequences(items, task, vocab, index, max_len, lookahead if task == "tag" else 0)


def largest_batch(data: LMStream | SequenceSet, batch_size: int) -> dict[str, int]:
    """``rows`` and ``seq`` of the largest batch ``data`` makes (B, T), to size a step before it runs."""
    if isinstance(data, LMStream):
        rows, width = data.data.shape  # (B, N)
        return {"rows": int(rows), "seq": min(data.bptt, max(int(width) - 1, 0))}
    return {"rows": min(batch_size, len(data.seqs)), "seq": max(map(len, data.seqs), default=0)}
