"""Soak: a million streaming steps on one model, watching the process's memory for leaks.

The work mixes everything a long-lived server does: single steps on a pool of streams, text
fed in chunks, batched steps, and periodic snapshot/restore, fork and reset cycles, with
streams created and dropped all along. Resident memory (RSS) is read after a warm-up and then
at regular points; the goal is growth under 5 MB from the warm-up to the end.

    python -m benchmarks.soak --steps 1000000 [--model MODEL.onnx] [--json]

Without ``--model`` a small random char lm (GRU, 2 layers, hidden 64) is exported first (needs
rnnkit[train]); with one, only the runtime is imported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import Model, load_model

GOAL_MB = 5.0
TEXT = "这本书很好看，我喜欢。质量太差了，不推荐！hello world 我爱北京天安门 快递很快，包装也好。"


def rss_bytes() -> int:
    """Resident memory of this process: psutil when installed, else /proc/self/status."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("cannot read this process's memory: install psutil") from None
    return psutil.Process().memory_info().rss


def small_model(folder: Path) -> Path:
    """Export a random char lm small enough that the step, not the matmul, is what is measured."""
    import torch

    from rnnkit.export import export_onnx
    from rnnkit.runtime import CharTokenizer, Vocabulary
    from rnnkit.train.checkpoint import save_checkpoint
    from rnnkit.train.model import ModelConfig, RNNModel

    tokenizer = CharTokenizer()
    vocab = Vocabulary.build([tokenizer.tokenize(TEXT)])
    torch.manual_seed(0)
    config = ModelConfig(cell="gru", vocab_size=len(vocab), n_out=len(vocab), embed=32, hidden=64, layers=2)
    ckpt = save_checkpoint({
        "task": "lm", "tag_scheme": "none", "model_config": config.to_dict(), "train_config": {},
        "tokenizer": tokenizer.to_config(), "vocab": vocab.tokens, "labels": [],
        "model": RNNModel(config).state_dict(), "metrics": {}, "data": {"source": "random"}, "valid_sample": [],
    }, folder / "soak.pt")
    export_onnx(ckpt, folder / "soak.onnx", overwrite=True)
    return folder / "soak.onnx"


def soak(model: Model, steps: int, *, warmup: int | None = None, pool: int = 8, samples: int = 10,
         seed: int = 0) -> dict[str, Any]:
    """Run ``steps`` token steps of mixed stream work; return the RSS figures (bytes) and the time.

    ``warmup`` steps (default a tenth, at least 20,000 where there are that many) run before the
    baseline is read: caches, arenas and the allocator settle in them.
    """
    if warmup is None:
        warmup = min(steps // 2, max(steps // 10, 20_000))
    rng = np.random.default_rng(seed)
    size = len(model.vocab)
    streams = [model.stream() for _ in range(pool)]
    batcher = model.batcher()
    chunks = [TEXT[i : i + 7] for i in range(0, len(TEXT), 7)]
    done, i, baseline, points = 0, 0, None, []
    warm_at = time.perf_counter()
    every = max((steps - warmup) // samples, 1)
    next_sample = warmup
    started = time.perf_counter()
    while done < steps:
        tokens = rng.integers(4, size, 64)  # drawn in blocks: the loop, not numpy, should dominate
        for token in tokens.tolist():
            s = streams[i % pool]
            s.step(token)
            done += 1
            i += 1
            if i % 100 == 0:  # one batched step over the whole pool
                batcher.step(streams, rng.integers(4, size, pool).tolist())
                done += pool
            if i % 250 == 0:
                s.feed(chunks[i // 250 % len(chunks)])
            if i % 1000 == 0:  # snapshot → restore replaces the stream
                streams[i % pool] = model.stream(s.snapshot())
            if i % 2000 == 0:
                s.reset()
            if i % 5000 == 0:  # a fork lives a few steps and is dropped
                fork = s.fork()
                for t in rng.integers(4, size, 5).tolist():
                    fork.step(t)
                batcher.feed([fork, streams[(i + 1) % pool]], ["我爱", "北京"])
            if i % 20000 == 0:  # the whole pool is replaced by new streams
                streams = [model.stream() for _ in range(pool)]
            if done >= next_sample:
                gc.collect()
                rss = rss_bytes()
                if baseline is None:
                    baseline = rss
                    warm_at = time.perf_counter()
                points.append({"steps": done, "rss": rss})
                next_sample += every
            if done >= steps:
                break
    seconds = time.perf_counter() - started
    gc.collect()
    final = rss_bytes()
    if points[-1]["steps"] == done:
        points.pop()
    points.append({"steps": done, "rss": final})
    peak = max(p["rss"] for p in points)
    return {
        "steps": done, "warmup_steps": warmup, "seconds": round(seconds, 2),
        "us_per_step": round(1e6 * seconds / done, 2),
        "measured_seconds": round(time.perf_counter() - warm_at, 2),
        "rss_baseline": baseline, "rss_final": final, "rss_peak": peak,
        "growth": final - baseline, "peak_growth": peak - baseline,
        "goal_bytes": int(GOAL_MB * 2**20), "goal_met": final - baseline < GOAL_MB * 2**20,
        "points": points,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="token steps in all (default 1,000,000)")
    parser.add_argument("--warmup", type=int, default=None, help="steps before the baseline (default a tenth)")
    parser.add_argument("--model", type=Path, default=None, help="an rnnkit .onnx (default: a small random lm)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    with tempfile.TemporaryDirectory(prefix="rnnkit-soak-") as work:
        path = args.model or small_model(Path(work))
        model = load_model(path, providers="cpu", threads=1)
        figures = {"model": repr(model), "pid": os.getpid(), **soak(model, args.steps, warmup=args.warmup)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    mb = 2**20
    print(f"{figures['model']}")
    print(f"{figures['steps']:,} steps in {figures['seconds']:.1f}s ({figures['us_per_step']:.1f} µs a step, "
          f"everything included); baseline after {figures['warmup_steps']:,} warm-up steps")
    for p in figures["points"]:
        print(f"  {p['steps']:>10,} steps: RSS {p['rss'] / mb:8.2f} MB")
    verdict = "met" if figures["goal_met"] else "MISSED"
    print(f"RSS growth after warm-up: {figures['growth'] / mb:+.2f} MB (peak {figures['peak_growth'] / mb:+.2f} MB); "
          f"goal < {GOAL_MB:g} MB: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
