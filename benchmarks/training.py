"""Benchmarks that train: P3 (int8 versus fp32 on trained models) and P6 (training throughput)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.export import export_onnx
from rnnkit.runtime import CharTokenizer, Vocabulary, load_model
from rnnkit.runtime.bench import median_time
from rnnkit.train import TrainConfig, train
from rnnkit.train.batches import LMStream, encode_lm
from rnnkit.train.data import load_data
from rnnkit.train.model import ModelConfig, RNNModel

# (task, level, cell): the cells onnxruntime quantizes (lstm) and one it does not (gru)
P3_MODELS = (("classify", "word", "lstm"), ("classify", "word", "gru"), ("lm", "char", "lstm"))


def int8_versus_fp32(work: Path, quick: bool) -> list[dict[str, Any]]:
    rows = []
    for task, level, cell in P3_MODELS:
        folder = work / f"p3-{task}-{cell}"
        config = TrainConfig(task=task, data="builtin:reviews", out=str(folder), level=level, cell=cell,
                             embed=64, hidden=256, epochs=1, limit=2000 if quick else 8000, batch_size=32,
                             max_len=128, max_steps=60 if quick else 250, patience=0, valid_sample=1000)
        train(config)
        fp32, int8 = folder / "fp32.onnx", folder / "int8.onnx"
        # P3 measures int8, not the parity gate (see P1 and the tests): give float32 noise room
        export_onnx(folder, fp32, overwrite=True, atol=1e-4)
        report = export_onnx(folder, int8, overwrite=True, quantize="int8", max_drop=1.0, atol=1e-4)
        q = report.quantization or {}
        latency = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            model = load_model(path, providers="cpu", threads=1)
            ids = np.random.default_rng(0).integers(4, len(model.vocab), 500).tolist()
            stream = model.stream()

            def steps(stream=stream, ids=ids) -> None:
                for t in ids:
                    stream.step(t)

            latency[name], _ = median_time(steps, repeats=3 if quick else 7)
        metric = q.get("metric", {})
        row = {"task": task, "level": level, "cell": cell, "size_ratio": int8.stat().st_size / fp32.stat().st_size,
               "latency_ratio": latency["int8"] / latency["fp32"], "fp32_step_us": 1e6 * latency["fp32"] / 500,
               "int8_step_us": 1e6 * latency["int8"] / 500, "metric": metric.get("name"),
               "fp32_metric": metric.get("fp32"), "int8_metric": metric.get("int8"),
               "relative_drop": metric.get("relative_drop"), "quantized_ops": q.get("quantized_ops"),
               "not_quantized_ops": q.get("not_quantized_ops"), "weight_only_ops": q.get("weight_only_ops")}
        rows.append(row)
        cell_quantized = cell.upper() in (q.get("quantized_ops") or {})
        latency_goal = "ok" if row["latency_ratio"] <= 0.6 else "MISSED"
        print(f"P3 {task:<8} {level} {cell:<4} size ×{row['size_ratio']:.2f} "
              f"{'ok' if row['size_ratio'] <= 0.35 else 'MISSED'} | step ×{row['latency_ratio']:.2f} "
              f"{latency_goal if cell_quantized else '(cell not quantized by ORT: no goal)'} | "
              f"{row['metric']} {row['fp32_metric']:.4f} → {row['int8_metric']:.4f} "
              f"(drop {100 * row['relative_drop']:+.2f}% {'ok' if row['relative_drop'] <= 0.01 else 'MISSED'})",
              flush=True)
    return rows


def training_throughput(work: Path, quick: bool) -> dict[str, Any]:
    """rnnkit's trainer versus a plain word_language_model-style loop: same model, data, optimizer.

    Both run once untimed first (the first steps of a process pay for allocator and kernel
    warm-up), then alternate, so neither side gets the warm machine.
    """
    steps = 40 if quick else 150
    common = {"cell": "lstm", "embed": 64, "hidden": 256, "layers": 1}
    base = TrainConfig(task="lm", data="builtin:reviews", out=str(work / "p6"), limit=3000, epochs=1,
                       batch_size=32, bptt=64, max_steps=steps, patience=0, save_every=10**6, **common)
    texts = load_data("builtin:reviews", "lm", limit=3000).examples
    tok = CharTokenizer()
    docs = [tok.tokenize(t) for t in texts]
    vocab = Vocabulary.build(docs)
    data = LMStream(encode_lm(docs, vocab), 32, 64)

    def ours(trial: int, n_steps: int) -> float:
        config = TrainConfig.from_dict({**base.to_dict(), "out": str(work / f"p6-{trial}"), "max_steps": n_steps})
        return train(config).metrics["tokens_per_second"]

    def plain(n_steps: int) -> float:
        torch.manual_seed(0)
        model = RNNModel(ModelConfig(vocab_size=len(vocab), n_out=len(vocab), **common))
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        hidden, count = None, 0
        start = time.perf_counter()
        for n, batch in enumerate(data.batches()):
            if n == n_steps:
                break
            if hidden is not None:
                hidden = tuple(h.detach() for h in hidden)  # repackage_hidden
            logits, hidden = model(batch.tokens, hidden)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            count += batch.n_tokens
        return count / (time.perf_counter() - start)

    ours(-1, 10)
    plain(10)
    mine, theirs = [], []
    for trial in range(3):
        mine.append(ours(trial, steps))
        theirs.append(plain(steps))
    out = {"rnnkit_tokens_per_s": statistics.median(mine), "plain_loop_tokens_per_s": statistics.median(theirs),
           "spread": max(mine) - min(mine), "steps": steps, "model": common, "threads": torch.get_num_threads()}
    out["ratio"] = out["rnnkit_tokens_per_s"] / out["plain_loop_tokens_per_s"]
    print(f"P6 training lstm h256 char: rnnkit {out['rnnkit_tokens_per_s']:,.0f} tok/s vs plain loop "
          f"{out['plain_loop_tokens_per_s']:,.0f} → ×{out['ratio']:.2f} {'ok' if out['ratio'] >= 1.0 else 'MISSED'}",
          flush=True)
    return out
