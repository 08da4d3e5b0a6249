"""Generating text: the next token chosen from logits (greedy, temperature, top-k, top-p), stop
strings, and the loop of ``Model.generate``."""

from __future__ import annotations

import math
import numbers
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError, NonFiniteError
from .rng import SplitMix64

if TYPE_CHECKING:
    from .model import Model

__all__ = ["MAX_SEED", "Sampler", "SplitMix64", "StopMatcher", "continuation"]

MAX_SEED = 2**32 - 1  # the seed range training shares (rnnkit.train.config.MAX_SEED)


@dataclass(frozen=True)
class Sampler:
    """``temperature=0`` is greedy; ``top_k``/``top_p`` restrict the candidates; ``seed`` repeats runs
    (the same text in every rnnkit runtime: SplitMix64 and the steps of docs/FORMAT.md, *Generation*).

    Any finite temperature ≥ 0 works, however small: the scaled logits are taken relative to
    their maximum, so they never overflow, and as the temperature goes to 0 sampling becomes
    greedy (a draw among the tokens tied for the top logit), as it does in exact arithmetic.

    >>> s = Sampler(temperature=1e-300, seed=0)
    >>> s.choose(np.array([1.0, 3.0, 2.0]), s.rng())
    1
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        t, k, p = self.temperature, self.top_k, self.top_p
        if not (_is_number(t) and 0 <= t < math.inf):
            raise ConfigError(f"temperature must be a finite number ≥ 0 (0 is greedy), got {t!r}")
        if k is not None and not (_is_int(k) and k >= 1):
            raise ConfigError(f"top_k must be a positive integer, got {k!r}")
        if p is not None and not (_is_number(p) and 0 < p <= 1):
            raise ConfigError(f"top_p must be in (0, 1], got {p!r}")
        if self.seed is not None and not (_is_int(self.seed) and 0 <= self.seed <= MAX_SEED):
            raise ConfigError(f"seed must be an integer in 0..{MAX_SEED}, got {str(self.seed)[:40]}")

    def rng(self) -> SplitMix64:
        """The generator of one generation: SplitMix64 from ``seed``, or from the OS when it is None."""
        return SplitMix64(secrets.randbits(64) if self.seed is None else self.seed)

    def choose(self, logits: np.ndarray, rng: SplitMix64, banned: Sequence[int] = ()) -> int:
        """One token id from logits (n_out,), never one of ``banned``; one ``rng.uniform()`` unless greedy.

        Every step is float64 and in a fixed order (docs/FORMAT.md, *Generation*), so another
        runtime given the same logits and seed picks the same id. Logits that are not all finite
        (a broken model or state) raise NonFiniteError rather than sample from NaN probabilities.
        """
        z = np.array(logits, dtype=np.float64)  # (n_out,)
        if not np.isfinite(z).all():
            raise NonFiniteError("the logits hold NaN or infinity, so there is nothing to sample from: the "
                                 "model's weights or the stream's state are broken; reset the stream or re-export "
                                 "the model")
        z[list(banned)] = -np.inf
        if self.temperature == 0:
            return int(np.argmax(z))  # the first of the highest: a tie goes to the lowest id
        # Shift first, then divide: every value is ≤ 0, so a tiny temperature sends the others to
        # -inf (weight 0) instead of the top ones to +inf (inf - inf = NaN).
        with np.errstate(over="ignore"):
            z = (z - np.max(z)) / self.temperature
        if self.top_k is not None and self.top_k < z.size:
            k = int(self.top_k)
            kth = np.partition(z, -k)[-k]  # the k-th largest, duplicates counted: ties at it all stay
            z[z < kth] = -np.inf
        w = np.exp(z)  # the top token's weight is exp(0) = 1, so the total is ≥ 1
        if self.top_p is not None and self.top_p < 1:
            order = np.argsort(-w, kind="stable")  # heaviest first, ties by lower id
            running = np.cumsum(w[order])  # sequential sums, as every runtime adds them
            size = int(np.searchsorted(running, self.top_p * running[-1], side="left")) + 1
            kept = np.zeros(w.size, dtype=bool)
            kept[order[:size]] = True  # the shortest prefix holding top_p of the weight
            w = np.where(kept, w, 0.0)
        running = np.cumsum(w)
        target = rng.uniform() * running[-1]
        token = int(np.searchsorted(running, target, side="right"))  # the first id whose sum passes target
        return token if token < w.size else int(np.flatnonzero(w)[-1])


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


class StopMatcher:
    """Releases generated text while holding back what could still become a stop string."""

    def __init__(self, stop: str | Sequence[str] | None) -> None:
        if stop is None:
            stops = []
        else:
            stops = [stop] if isinstance(stop, str) or not isinstance(stop, Iterable) else list(stop)
        if any(not isinstance(s, str) or not s for s in stops):
            raise ConfigError(f"stop must be a non-empty string or a list of them, got {stop!r}")
        self.stops = stops
        self.held = ""
        self.stopped = False

    def push(self, piece: str) -> str:
        """Add a piece; return the text that is now safe to emit ('' if held back or stopped)."""
        if self.stopped:
            return ""
        text = self.held + piece
        hits = [(text.find(s), s) for s in self.stops if s in text]
        if hits:
            self.stopped = True
            self.held = ""
            return text[: min(i for i, _ in hits)]
        keep = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        out, self.held = self.held, ""
        return "" if self.stopped else out


def continuation(model: Model, prompt: str, max_tokens: int, sampler: Sampler, matcher: StopMatcher,
                 ) -> Iterator[str]:
    """The text pieces ``model.generate`` yields (its arguments already checked): ``prompt`` read from
    a fresh stream, then a token at a time until ``<eos>``, ``max_tokens`` or a stop string."""
    stream = model.stream()
    stream.feed(prompt)
    logits = stream.flush()  # never None here: a model without <bos> was given a prompt with tokens
    rng = sampler.rng()
    v = model.vocab
    # <eos> of a model that never learned it has a constant −1e4 logit: banned too, to say so
    banned = (v.pad_id, v.unk_id, v.bos_id, *(() if model.metadata.eos else (v.eos_id,)))
    # Words cut on whitespace are written back with one space between them; the first after an
    # empty prompt, or one ending in whitespace, needs none.
    sep = model.tokenizer.separator
    glue = "" if not prompt or prompt[-1].isspace() else sep
    for i in range(max_tokens):
        token = sampler.choose(logits, rng, banned)
        if token == v.eos_id:
            break
        text = matcher.push(glue + v.token(token))
        glue = sep
        if text:
            yield text
        if matcher.stopped:
            return
        if i + 1 < max_tokens:  # the last token's logits would go unused
            logits = stream.step(token)
    tail = matcher.flush()
    if tail:
        yield tail
