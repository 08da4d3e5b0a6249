"""Tiny checkpoints and ONNX models made in the test, in milliseconds (random weights).

Tests that need a *trained* model train one (see test_train_loop.py); tests of export and the
runtime only need weights that are not trivial, so they use these.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rnnkit.runtime import CharTokenizer, Vocabulary, WhitespaceTokenizer, WordTokenizer  # noqa: E402
from rnnkit.train.checkpoint import save_checkpoint  # noqa: E402
from rnnkit.train.model import ModelConfig, RNNModel  # noqa: E402

TEXTS = ["这本书很好看，我喜欢。", "质量太差了，不推荐！", "hello world", "我爱北京天安门", "快递很快，包装也好。",
         "内容一般般", "Great book 😀", "写得不错"]
BMES = ["S", "S", "B", "E", "B", "M", "E"]


def tiny_checkpoint(folder: Path, *, task: str = "classify", cell: str = "gru", layers: int = 1,
                    level: str = "char", hidden: int = 12, embed: int = 6, seed: int = 0,
                    labels: tuple[str, ...] | None = None, tag_scheme: str | None = None,
                    dropout: float = 0.0, lookahead: int = 0, keep_whitespace: bool = True) -> Path:
    """Write ``folder/checkpoint.pt`` holding a randomly initialised model; return its path."""
    # level "whitespace": words cut on whitespace (WhitespaceTokenizer); "word": jieba's
    tok = {"word": WordTokenizer, "whitespace": WhitespaceTokenizer}.get(level, CharTokenizer)(
        keep_whitespace=keep_whitespace)
    vocab = Vocabulary.build([tok.tokenize(t) for t in TEXTS])
    if task == "tag":
        labels = labels or ("B", "E", "M", "S")
        tag_scheme = tag_scheme or ("bmes" if set(labels) == {"B", "E", "M", "S"} else "tags")
    elif task == "classify":
        labels, tag_scheme = labels or ("neg", "pos"), "none"
    else:
        labels, tag_scheme = (), "none"
    n_out = len(vocab) if task == "lm" else len(labels)
    torch.manual_seed(seed)
    config = ModelConfig(cell=cell, vocab_size=len(vocab), n_out=n_out, embed=embed, hidden=hidden,
                         layers=layers, dropout=dropout)
    model = RNNModel(config)
    with torch.no_grad():  # larger than default init, so states and logits move visibly
        for p in model.parameters():
            p.mul_(1.5)
    if task == "lm":
        sample = TEXTS[:4]
    elif task == "classify":
        sample = [[t, labels[i % len(labels)]] for i, t in enumerate(TEXTS)]
    else:
        sample = [[list(t), [labels[j % len(labels)] for j in range(len(t))]] for t in TEXTS[:4]]
    payload = {
        "task": task, "tag_scheme": tag_scheme, "model_config": config.to_dict(),
        "train_config": {"task": task, "data": "test", "out": str(folder), "max_len": 64, "lookahead": lookahead},
        "tokenizer": tok.to_config(), "vocab": vocab.tokens, "labels": list(labels),
        "model": model.state_dict(), "metrics": {"valid": {"accuracy": 0.5}}, "history": [],
        "split": {"seed": seed}, "data": {"source": "test", "fingerprint": "0" * 64, "skipped": 0},
        "valid_sample": sample,
    }
    return save_checkpoint(payload, Path(folder) / "checkpoint.pt")


def tiny_onnx(folder: Path, name: str = "model.onnx", **kwargs) -> Path:
    """Export a ``tiny_checkpoint`` (same keyword arguments) to ``folder/name``."""
    from rnnkit.export import export_onnx

    ckpt = tiny_checkpoint(Path(folder), **kwargs)
    out = Path(folder) / name
    export_onnx(ckpt, out, overwrite=True)
    return out
