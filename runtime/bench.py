"""Timing a loaded model on this machine (``rnnkit bench`` and benchmarks/)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .model import Model

__all__ = ["bare_steps", "batcher_speedup", "measure", "median_time"]


def median_time(fn: Callable[[], Any], *, repeats: int = 5, number: int = 1) -> tuple[float, float]:
    """Median and spread (max − min) of the seconds one call of ``fn`` takes, after a warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times), max(times) - min(times)


def measure(model: Model, *, steps: int = 2000, stream_counts: Sequence[int] = (1, 8, 64), seq: int = 128,
            repeats: int = 5) -> dict[str, Any]:
    """Step latency (Stream.step vs a bare session.run), batcher throughput, whole-text throughput."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4, len(model.vocab), steps).tolist()

    stream = model.stream()

    def stream_steps() -> None:
        step = stream.step
        for t in ids:
            step(t)

    stream_s, stream_spread = median_time(stream_steps, repeats=repeats)
    bare_s, bare_spread = median_time(bare_steps(model, ids), repeats=repeats)
    result: dict[str, Any] = {
        "step": {"stream_us": 1e6 * stream_s / steps, "bare_us": 1e6 * bare_s / steps,
                 "ratio": stream_s / bare_s, "spread_us": 1e6 * max(stream_spread, bare_spread) / steps},
    }
    rounds = max(10, steps // 20)
    result["batcher"] = [batcher_speedup(model, n, rounds=rounds) for n in stream_counts]
    batch = 32
    whole = rng.integers(4, len(model.vocab), (batch, seq)).astype(np.int64)
    w, _ = median_time(lambda: model.run(whole), repeats=repeats)
    result["whole"] = {"batch": batch, "seq": seq, "tokens_per_s": batch * seq / w}
    return result


def bare_steps(model: Model, ids: Sequence[int]) -> Callable[[], None]:
    """The naive loop to measure against: one plain ``session.run`` per token, a feed dict in and
    fresh arrays out, the state fed back by hand."""
    spec = model.metadata
    run = model.session.run
    names = spec.input_names

    def steps() -> None:
        feed = spec.feed(np.zeros((1, 1), np.int64), spec.zero_state(1))
        tokens = feed[names[0]]
        for t in ids:
            tokens[0, 0] = t
            out = run(None, feed)
            for name, value in zip(names[1:], out[1:]):
                feed[name] = value

    return steps


def batcher_speedup(model: Model, streams: int, *, rounds: int = 50, repeats: int = 3, seed: int = 0,
                    ) -> dict[str, Any]:
    """Aggregate tokens/s of ``streams`` streams stepped by one StreamBatcher versus one call each."""
    batcher = model.batcher()
    live = [model.stream() for _ in range(streams)]
    tokens = np.random.default_rng(seed).integers(4, len(model.vocab), (rounds, streams)).tolist()

    def batched() -> None:
        for row in tokens:
            batcher.step(live, row)

    def one_each() -> None:
        for row in tokens:
            for s, t in zip(live, row):
                s.step(t)

    b, spread = median_time(batched, repeats=repeats)
    one, _ = median_time(one_each, repeats=repeats)
    return {"streams": streams, "tokens_per_s": rounds * streams / b, "spread_s": spread,
            "single_tokens_per_s": rounds * streams / one, "speedup": one / b}
