"""Issue 6, load: one model shared by 16 threads gives exactly what running them one after another
gives, and a long soak of stream work does not grow the process's memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")  # the tiny models are exported here

ROOT = Path(__file__).resolve().parent.parent
THREADS, STEPS = 16, 1000
TEXT = "这本书很好看，我喜欢。质量太差了，不推荐！hello world 我爱北京天安门 快递很快，包装也好。"


def work(model, seed: int) -> dict[str, np.ndarray]:
    """About 1000 token steps of one kind (by seed): step, feed, batcher, or step with snapshot/fork/reset.

    Returns every logits row it saw, the final states and how many tokens it stepped.
    """
    rng = np.random.default_rng(seed)
    size = len(model.vocab)
    seen, mode, steps = [], seed % 4, STEPS
    if mode == 0:  # single steps on one stream
        streams = [model.stream()]
        for token in rng.integers(4, size, STEPS).tolist():
            seen.append(streams[0].step(token))
    elif mode == 1:  # text fed in uneven chunks
        streams = [model.stream()]
        while streams[0].consumed < STEPS:
            start = int(rng.integers(0, len(TEXT)))
            logits = streams[0].feed(TEXT[start : start + int(rng.integers(1, 12))])
            if logits is not None:
                seen.append(logits)
        seen.append(streams[0].flush())
        steps = streams[0].consumed
    elif mode == 2:  # a batcher over three streams of this thread, steps and fed text
        streams = [model.stream() for _ in range(3)]
        batcher = model.batcher()
        for i in range(STEPS // 3):
            if i % 50 == 49:
                seen += [x for x in batcher.feed(streams, ["我爱", "北京天安门", "hello "]) if x is not None]
            seen.extend(batcher.step(streams, rng.integers(4, size, 3).tolist()))
        steps = sum(s.consumed for s in streams)
    else:  # steps with snapshot → restore, fork and reset cycles
        streams = [model.stream()]
        for i, token in enumerate(rng.integers(4, size, STEPS).tolist()):
            seen.append(streams[0].step(token))
            if i % 97 == 96:
                streams[0] = model.stream(streams[0].snapshot())
            if i % 211 == 210:
                streams[0] = streams[0].fork()
            if i % 499 == 498:
                streams[0].reset()
    return {"logits": np.stack(seen), "state": np.concatenate([np.concatenate(s.state) for s in streams]),
            "consumed": np.array([s.consumed for s in streams]), "steps": np.array(steps)}


@pytest.mark.parametrize(("cell", "level"), [("lstm", "char"), ("gru", "word")])
def test_sixteen_threads_on_one_model_equal_running_them_one_by_one(models, cell, level):
    model = models(task="lm", cell=cell, layers=2, level=level)
    alone = [work(model, seed) for seed in range(THREADS)]
    together: list[dict | BaseException | None] = [None] * THREADS
    barrier = threading.Barrier(THREADS)

    def run(seed: int) -> None:
        try:
            barrier.wait()
            together[seed] = work(model, seed)
        except BaseException as e:  # reported below, with the thread's seed
            together[seed] = e

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, (expected, got) in enumerate(zip(alone, together)):
        assert isinstance(got, dict), f"thread {seed}: {got!r}"
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"thread {seed} (mode {seed % 4}): {key}")
    assert min(int(r["steps"]) for r in alone) >= STEPS - 1  # every thread stepped ~1000 tokens


def test_a_short_soak_does_not_grow_memory(models):
    """The leak check of benchmarks/soak.py (the 1,000,000-step run is `python -m benchmarks.soak`)."""
    model = models(task="lm", cell="gru", layers=2)
    result = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--steps", "40000", "--warmup", "10000",
                             "--model", str(model.path), "--json"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["steps"] >= 40000 and len(figures["points"]) >= 5
    assert figures["rss_baseline"] > 10 * 2**20  # a real reading, not a zero
    assert figures["growth"] < 20 * 2**20, figures["points"]
    assert figures["peak_growth"] < 20 * 2**20, figures["points"]
