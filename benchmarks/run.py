"""``make bench``: rnnkit against torch eager, bare onnxruntime and the hardware, in one run.

P1 streaming step (batch 1) · P2 many streams · P3 quantized vs fp32 · P4 cold start and install
size · P5 whole-text throughput · P6 training throughput · P7 live word streams · P8 hostile
input (a 1 MB prompt's memory, the largest legal metadata's load time) · P9 the JavaScript
runtime's step in Node and Chromium · P10 training on 1 process and on 2 workers. Every figure is a
median over repeats with its spread; ratios come first, goals are printed next to them, and a
missed goal says so. Results go to OUT/results.json.

    python -m benchmarks.run --out bench-out [--quick] [--only P1,P3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.runtime import load_model
from rnnkit.runtime.bench import bare_steps, batcher_speedup, median_time

from .hostile import hostile_rows
from .js import js_rows
from .models import SIZES, SMALL, random_model, weight_bytes_per_step
from .training import quantized_versus_fp32, training_on_workers, training_throughput
from .word_stream import word_stream_rows

CELLS = ("rnn", "gru", "lstm")


_BANDWIDTH = """
import os, sys, time
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"  # one core, like a batch-1 step on one intra-op thread
import numpy as np
n_bytes = int(sys.argv[1])
cols = 1024
W = np.ones((max(1, n_bytes // (4 * cols)), cols), np.float32)
x = np.ones(W.shape[0], np.float32)
loops = max(1, (256 << 20) // W.nbytes)
times = []
for _ in range(9):
    start = time.perf_counter()
    for _ in range(loops):
        x @ W
    times.append((time.perf_counter() - start) / loops)
times.sort()
print(W.nbytes / times[len(times) // 2])
"""


def read_bandwidth(n_bytes: int) -> float:
    """Bytes/s one core streams through a matrix-vector product over ``n_bytes`` of float32 weights.

    Measured at the model's own size, so weights that fit in cache get cache speed: the
    fastest any batch-1 step could read them. A fresh process pins BLAS to one thread.
    """
    r = subprocess.run([sys.executable, "-c", _BANDWIDTH, str(n_bytes)], capture_output=True, text=True,
                       check=True)
    return float(r.stdout.strip())


# -- P1 --------------------------------------------------------------------------------------
def p1_step(work: Path, quick: bool) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    rows = []
    for size in SIZES.values():
        for cell in CELLS:
            path, tmodel = random_model(work / "p1", cell, size)
            model = load_model(path, providers="cpu", threads=1)
            n = 300 if quick else (2000 if size.name == "char" else 600)
            ids = np.random.default_rng(0).integers(4, size.vocab, n).tolist()
            repeats = 3 if quick else 7

            stream = model.stream()

            def rnnkit_steps(stream=stream, ids=ids) -> None:
                for t in ids:
                    stream.step(t)

            state = tmodel.init_state(1)

            def torch_steps(tmodel=tmodel, ids=ids, state=state) -> None:
                s = state
                tok = torch.zeros(1, 1, dtype=torch.long)
                with torch.no_grad():
                    for t in ids:
                        tok[0, 0] = t
                        _, s = tmodel(tok, s)

            ours, ours_spread = median_time(rnnkit_steps, repeats=repeats)
            bare, _ = median_time(bare_steps(model, ids), repeats=repeats)
            eager, _ = median_time(torch_steps, repeats=repeats)
            n_bytes = weight_bytes_per_step(size, cell)
            limit = n_bytes / read_bandwidth(n_bytes)
            rows.append({
                "cell": cell, "size": size.name, "vocab": size.vocab, "hidden": size.hidden,
                "rnnkit_us": 1e6 * ours / n, "spread_us": 1e6 * ours_spread / n, "torch_us": 1e6 * eager / n,
                "bare_ort_us": 1e6 * bare / n, "limit_us": 1e6 * limit, "weight_bytes": n_bytes,
                "vs_torch": ours / eager, "vs_bare_ort": ours / bare, "vs_limit": ours / n / limit,
            })
            print(_p1_line(rows[-1]), flush=True)
    return rows


def _p1_line(r: dict[str, Any]) -> str:
    return (f"P1 {r['cell']:<4} {r['size']:<4} rnnkit {r['rnnkit_us']:7.1f} µs ±{r['spread_us']:.1f} | "
            f"×torch {r['vs_torch']:.2f} {_goal(r['vs_torch'] <= 0.35)} | ×ORT {r['vs_bare_ort']:.2f} "
            f"{_goal(r['vs_bare_ort'] <= 1.10)} | ×limit {r['vs_limit']:.2f} {_goal(r['vs_limit'] <= 1.5)}")


def _goal(met: bool) -> str:
    return "ok" if met else "MISSED"


# -- P2 --------------------------------------------------------------------------------------
def p2_streams(work: Path, quick: bool) -> list[dict[str, Any]]:
    """Batched streams for a streaming classifier (small per-token work: per-call overhead is what
    batching saves) and for the char lm (a 256 × 4000 output layer: batching turns memory-bound
    matrix-vector products into compute-bound matrix products, which caps the gain)."""
    rows = []
    for task, size in (("classify", SMALL), ("classify", SIZES["char"]), ("lm", SIZES["char"])):
        path, _ = random_model(work / "p2", "gru", size, task=task)
        model = load_model(path, providers="cpu", threads=1)
        bare = bare_step_rate(model, quick)
        for n in (1, 8, 64, 256):
            rounds = max(20 if quick else 60, (200 if quick else 2000) // n)  # ≥ 2,000 tokens a measurement
            r = batcher_speedup(model, n, rounds=rounds, repeats=3 if quick else 5, seed=n)
            r.update(task=task, n_out=model.n_out, hidden=size.hidden, bare_run_tokens_per_s=bare,
                     speedup_vs_bare_run=r["tokens_per_s"] / bare)
            rows.append(r)
            goal = f" {_goal(r['speedup'] >= 10)} (goal ≥ 10× at 64)" if n == 64 else ""
            print(f"P2 gru h{size.hidden:<3} {task:<8} n_out {model.n_out:>4} {n:>3} streams: batched "
                  f"{r['tokens_per_s']:>10,.0f} tok/s | ×{r['speedup']:.1f} over Stream.step each{goal} | "
                  f"×{r['speedup_vs_bare_run']:.1f} over a bare session.run each", flush=True)
    return rows


def bare_step_rate(model, quick: bool) -> float:
    """Tokens/s of one plain ``session.run`` (feed dict in, arrays out) per token: the naive server loop."""
    n = 300 if quick else 2000
    ids = [4 + t % 1000 for t in range(n)]
    seconds, _ = median_time(bare_steps(model, ids), repeats=3 if quick else 5)
    return n / seconds


# -- P4 --------------------------------------------------------------------------------------
_RUNTIME_START = """
import time, sys
t = time.perf_counter()
from rnnkit.runtime import load_model
m = load_model(sys.argv[1], providers="cpu")
s = m.stream(); s.step(5)
print(time.perf_counter() - t)
"""
_TORCH_START = """
import time, sys
t = time.perf_counter()
import torch
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint
model, _, _ = model_from_checkpoint(load_checkpoint(sys.argv[1]))
with torch.no_grad():
    model(torch.tensor([[5]]))
print(time.perf_counter() - t)
"""


def p4_cold_start(work: Path, quick: bool) -> dict[str, Any]:
    path, _ = random_model(work / "p1", "gru", SIZES["char"])
    ckpt = path.with_suffix(".pt")
    out: dict[str, Any] = {}
    for name, code, arg in (("runtime", _RUNTIME_START, path), ("torch", _TORCH_START, ckpt)):
        wall, inner = [], []
        for _ in range(3 if quick else 5):
            start = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", code, str(arg)], capture_output=True, text=True, check=True)
            wall.append(time.perf_counter() - start)
            inner.append(float(r.stdout.strip().splitlines()[-1]))
        out[name] = {"process_s": statistics.median(wall), "import_load_first_token_s": statistics.median(inner),
                     "spread_s": max(wall) - min(wall)}
    out["ratio"] = out["runtime"]["process_s"] / out["torch"]["process_s"]
    out["installed_mb"] = installed_sizes()
    print(f"P4 cold start: runtime {out['runtime']['process_s']:.2f}s vs torch {out['torch']['process_s']:.2f}s "
          f"(×{out['ratio']:.2f}); installed: base {out['installed_mb']['base']:.0f} MB, "
          f"[train] {out['installed_mb']['train']:.0f} MB", flush=True)
    return out


def installed_sizes() -> dict[str, float]:
    """MB on disk of the base install's distributions and of the [train] extras' (from RECORD files)."""
    from importlib.metadata import PackageNotFoundError, distribution

    def closure(names: list[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop().lower().replace("_", "-")
            if name in seen:
                continue
            try:
                dist = distribution(name)
            except PackageNotFoundError:
                continue
            seen.add(name)
            for req in dist.requires or []:
                if "extra ==" in req:
                    continue
                todo.append(req.split(";")[0].split("[")[0].split("(")[0].split(" ")[0]
                            .split(">")[0].split("<")[0].split("=")[0].split("!")[0].split("~")[0].strip())
        return seen

    def size(names: set[str]) -> float:
        total = 0
        for name in names:
            for f in distribution(name).files or []:
                p = f.locate()
                if os.path.isfile(p):
                    total += os.path.getsize(p)
        return total / 1e6

    base = closure(["numpy", "onnxruntime", "jieba", "click"])
    train = closure(["torch", "onnx", "tqdm"]) | base
    return {"base": size(base), "train": size(train)}


# -- P5 --------------------------------------------------------------------------------------
def p5_whole_text(work: Path, quick: bool) -> list[dict[str, Any]]:
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    rows = []
    for cell in CELLS:
        path, tmodel = random_model(work / "p1", cell, SIZES["char"])
        model = load_model(path, providers="cpu", threads=threads)
        tokens = np.random.default_rng(0).integers(4, 4000, (32, 128)).astype(np.int64)  # (B, T)
        t_tokens = torch.from_numpy(tokens)

        def eager(tmodel=tmodel, t_tokens=t_tokens) -> None:
            with torch.no_grad():
                tmodel(t_tokens)

        ours, spread = median_time(lambda model=model, tokens=tokens: model.run(tokens), repeats=3 if quick else 7)
        theirs, _ = median_time(eager, repeats=3 if quick else 7)
        rows.append({"cell": cell, "batch": 32, "seq": 128, "threads": threads,
                     "rnnkit_tokens_per_s": tokens.size / ours, "torch_tokens_per_s": tokens.size / theirs,
                     "spread_s": spread, "speedup": theirs / ours})
        r = rows[-1]
        print(f"P5 {cell:<4} 32×128: rnnkit {r['rnnkit_tokens_per_s']:>11,.0f} tok/s vs torch "
              f"{r['torch_tokens_per_s']:>11,.0f} → ×{r['speedup']:.2f} {_goal(r['speedup'] >= 1.5)}", flush=True)
    return rows


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "platform": platform.platform()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-out", help="folder for results.json")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller runs")
    parser.add_argument("--only", default="P1,P2,P3,P4,P5,P6,P7,P8,P9,P10", help="comma-separated sections")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {s.strip().upper() for s in args.only.split(",")}
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    print(f"machine: {results['machine']['cpu']} ({results['machine']['cores']} cores), "
          f"torch {results['machine']['torch']}, onnxruntime {results['machine']['onnxruntime']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        work = Path(tmp)
        sections = {"P1": p1_step, "P2": p2_streams, "P3": quantized_versus_fp32, "P4": p4_cold_start,
                    "P5": p5_whole_text, "P6": training_throughput, "P7": word_stream_rows,
                    "P8": hostile_rows, "P9": js_rows, "P10": training_on_workers}
        for name, fn in sections.items():
            if name in only:
                results[name] = fn(work, args.quick)
                (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
