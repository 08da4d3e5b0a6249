"""Models for the benchmarks: realistic sizes, random weights, exported like any other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.export import export_onnx
from rnnkit.runtime import CharTokenizer, Vocabulary, WordTokenizer
from rnnkit.train.checkpoint import save_checkpoint
from rnnkit.train.model import ModelConfig, RNNModel


@dataclass(frozen=True)
class Size:
    name: str
    level: str
    vocab: int
    embed: int
    hidden: int
    layers: int = 1


# A character model of Chinese text and a word model with a large vocabulary.
SIZES = {
    "char": Size("char", "char", vocab=4000, embed=64, hidden=256),
    "word": Size("word", "word", vocab=50000, embed=128, hidden=256),
}
# A small streaming classifier: little work a token, so per-call overhead is most of a step.
SMALL = Size("small", "char", vocab=4000, embed=32, hidden=64)


def random_model(folder: Path, cell: str, size: Size, *, task: str = "lm", seed: int = 0,
                 quantize: str | None = None) -> tuple[Path, RNNModel]:
    """Export a randomly initialised model of ``size``; return the ONNX path and the torch model."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = [f"t{i}" for i in range(size.vocab - 4)]
    vocab = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", *tokens])
    tokenizer = WordTokenizer() if size.level == "word" else CharTokenizer()
    torch.manual_seed(seed)
    labels = ["neg", "pos"] if task == "classify" else []
    config = ModelConfig(cell=cell, vocab_size=len(vocab), n_out=len(labels) or len(vocab), embed=size.embed,
                         hidden=size.hidden, layers=size.layers)
    model = RNNModel(config).eval()
    ckpt = save_checkpoint({
        "task": task, "tag_scheme": "none", "model_config": config.to_dict(), "train_config": {},
        "tokenizer": tokenizer.to_config(), "vocab": vocab.tokens, "labels": labels, "model": model.state_dict(),
        "metrics": {}, "data": {"source": "random"}, "valid_sample": [],
    }, folder / f"{cell}-{size.name}-{task}.pt")
    out = folder / f"{cell}-{size.name}-{task}{'.int8' if quantize else ''}.onnx"
    export_onnx(ckpt, out, overwrite=True, quantize=quantize)
    return out, model


def weight_bytes_per_step(size: Size, cell: str) -> int:
    """Bytes of fp32 weights one batch-1 step must read: one embedding row, the cell, the head."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    cell_params = 0
    for layer in range(size.layers):
        inp = size.embed if layer == 0 else size.hidden
        cell_params += gates * size.hidden * (inp + size.hidden + 2)
    head = size.hidden * size.vocab + size.vocab
    return 4 * (size.embed + cell_params + head)
