"""Goldens for the JavaScript runtime: tiny models trained and exported by rnnkit, and what the
Python runtime answers on them.

    .venv/bin/python js/tools/goldens.py --out js/test/goldens

Writes ``OUT/models/*.onnx`` and ``OUT/goldens.json``::

    {"versions": {...}, "models": {name: {...}}, "load": {...}, "text": {...}}

``models[name]`` holds the file (relative to OUT), the task, the tolerance kind ("fp32" or
"int8") and model-behaviour goldens made by the Python runtime (encode, run, streams,
generate, classify, tag, tag streams, batcher, snapshots). The sections "load" and "text"
come from ``js/tools/goldens_{load,text}.py``: each module's ``write(out_dir,
models) -> dict``, where ``models`` maps a name to ``{"path": Path, "task": str}``; a module
that does not exist yet is skipped with a note.

Numbers: every float32 array (logits, states) is a flat list of floats rounded to 9
significant digits, which reads back as the exact float32; its shape is stored next to it
(``dims``). Probabilities (classify scores) are float64 rounded the same way. Snapshots are
base64 of their bytes. Keys are camelCase, as the JavaScript API names things.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models train fastest on one thread

import numpy as np

HERE = Path(__file__).resolve().parent
SECTIONS = ("load", "text")  # js/tools/goldens_<section>.py

# Real text the models read: reviews, news, mixed scripts, emoji, whitespace runs.
CHINESE = ["这本书很好看，我喜欢。", "质量太差了，不推荐！", "快递很快，包装也好。", "内容一般般", "写得不错"]
MIXED = ["Great book 😀 好", "iPhone-12 的电池 不错", "  两个  空格\t和制表符\n"]
NEWS = ["中国人民银行今天宣布降低存款准备金率。", "我爱北京天安门", "迈向充满希望的新世纪"]
WORDS = ["新世纪 的 中国 人民", "经济 发展  很 快", "  一九九八年 新年 讲话 "]

# name: (training options, export options); "module" is a tiny torch module exported with export_module.
JOBS: dict[str, dict[str, Any]] = {
    "char_lm": dict(train=dict(task="lm", data="builtin:reviews", cell="gru", embed=16, hidden=32, limit=400,
                               max_vocab=300, epochs=1, max_steps=200, batch_size=16, bptt=32)),
    "char_lm_int8": dict(same="char_lm", quantize="int8"),
    "word_classify": dict(train=dict(task="classify", data="builtin:reviews", level="word", cell="gru", embed=16,
                                     hidden=24, limit=1500, max_vocab=800, epochs=2, max_steps=150, batch_size=16,
                                     max_len=64)),
    "bmes_tag": dict(train=dict(task="tag", data="builtin:segmentation", cell="gru", embed=16, hidden=24,
                                limit=600, max_vocab=600, epochs=2, max_steps=150, batch_size=16, max_len=64)),
    "ws_lm": dict(train=dict(task="lm", data="ws", tokenizer="whitespace", cell="lstm", layers=2, embed=12,
                             hidden=16, max_vocab=400, epochs=1, max_steps=100, batch_size=16, bptt=24)),
    "relu_lm_nobos": dict(module=True),
}


def f32(a: Any) -> list[float]:
    """A float32 array as a flat list that reads back exactly (9 significant digits)."""
    return [float(f"{x:.9g}") for x in np.asarray(a, np.float32).ravel().tolist()]


def f64(x: float) -> float:
    return float(f"{x:.9g}")


def arrays(state: Any) -> dict[str, Any]:
    state = [np.asarray(a) for a in state]
    return {"dims": [list(a.shape) for a in state], "values": [f32(a) for a in state]}


def maybe(logits: Any) -> list[float] | None:
    return None if logits is None else f32(logits)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- making the models --------------------------------------------------------------------------
def whitespace_corpus(path: Path) -> Path:
    """People's Daily lines as space-separated words (the B/M/E/S tags cut them)."""
    from rnnkit.runtime.tagging import bmes_words
    from rnnkit.train.corpora import load_builtin

    lines = []
    for chars, tags in load_builtin("segmentation", "tag")[:500]:
        lines.append(" ".join(bmes_words(chars, [t.upper() for t in tags])))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def relu_module(path: Path) -> Path:
    """A tutorial-style Embedding → RNN(relu) → Linear lm without <bos>/<eos>, trained a few steps."""
    import torch
    from torch import nn

    from rnnkit.export import export_module

    text = "".join(CHINESE + NEWS)
    chars = sorted(set(text))
    vocab = ["<pad>", "<unk>", *chars]

    class CharRNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(len(vocab), 8)
            self.rnn = nn.RNN(8, 12, batch_first=True, nonlinearity="relu")
            self.head = nn.Linear(12, len(vocab))

        def forward(self, x):  # (B, T) → (B, T, V)
            out, _ = self.rnn(self.embed(x))
            return self.head(out)

    torch.manual_seed(0)
    module = CharRNN()
    ids = torch.tensor([[vocab.index(c) for c in text]])
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(module(ids[:, :-1])[0], ids[0, 1:])
        loss.backward()
        opt.step()
    export_module(module, path, task="lm", vocab=vocab, tokenizer="char", overwrite=True)
    return path


def make_models(out: Path, work: Path) -> dict[str, dict[str, Any]]:
    from rnnkit.export import export_onnx
    from rnnkit.train import TrainConfig, train

    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, dict[str, Any]] = {}
    for name, job in JOBS.items():
        started = time.perf_counter()
        path = models_dir / f"{name}.onnx"
        if job.get("module"):
            relu_module(path)
        else:
            folder = work / job.get("same", name)
            if "train" in job:
                options = dict(job["train"])
                if options["data"] == "ws":
                    options["data"] = str(whitespace_corpus(work / "ws.txt"))
                train(TrainConfig(out=str(folder), seed=0, patience=0, **options), progress=False)
            export_onnx(folder, path, overwrite=True, quantize=job.get("quantize"), max_drop=10.0)
        made[name] = {"path": path, "task": None, "tolerance": "int8" if job.get("quantize") else "fp32"}
        print(f"  {name}: {path.stat().st_size / 1024:.0f} KiB in {time.perf_counter() - started:.1f}s", flush=True)
    return made


# -- what the Python runtime answers ------------------------------------------------------------
def segmenter(model) -> str:
    """ "char", "jieba" or "whitespace": how the model's tokenizer cuts text."""
    config = model.tokenizer.to_config()
    return "char" if config["kind"] == "char" else config.get("segmenter", "jieba")


def texts_for(model) -> list[str]:
    if segmenter(model) == "whitespace":
        return WORDS
    return CHINESE[:3] + MIXED + NEWS[:1]


def chunks_of(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def run_goldens(model) -> list[dict[str, Any]]:
    """model.run on id batches, from the start state and from zeros (Python's default)."""
    texts = texts_for(model)
    ids = [model.encode(t) for t in texts]
    ids = [i for i in ids if i]
    width = min(len(i) for i in ids[:2])
    batches = [[ids[0][:width]], [ids[0][:width], ids[1][:width]], [[len(model.vocab) - 1, 0, 1, 2, 3]]]
    out = []
    for batch in batches:
        tokens = np.array(batch, np.int64)
        for start in ("start", "zero"):
            state = model.start_state(len(batch)) if start == "start" else None
            logits, new = model.run(tokens, state)
            out.append({"ids": batch, "from": start, "dims": list(logits.shape), "logits": f32(logits),
                        "state": arrays(new)})
    return out


def stream_goldens(model) -> list[dict[str, Any]]:
    out = []
    for text in texts_for(model)[:4]:
        for size in (1, 4):
            s = model.stream()
            feeds = []
            for piece in chunks_of(text, size):
                logits = s.feed(piece)
                feeds.append({"text": piece, "logits": maybe(logits), "pending": s.pending, "consumed": s.consumed})
            flushed = s.flush()
            out.append({"text": text, "chunk": size, "feeds": feeds, "flush": maybe(flushed),
                        "pending": s.pending, "consumed": s.consumed, "state": arrays(s.state)})
    s = model.stream()
    steps = []
    for token in [len(model.vocab) - 1, 4, 5, 3]:
        steps.append(f32(s.step(token)))
    out.append({"steps": [len(model.vocab) - 1, 4, 5, 3], "logits": steps})
    return out


def generate_goldens(model) -> list[dict[str, Any]]:
    prompt = "新世纪 的" if segmenter(model) == "whitespace" else "这本书"
    if not model.metadata.bos:
        prompt = "我"
    cases = [
        dict(prompt=prompt, maxTokens=20, temperature=0),
        dict(prompt="" if model.metadata.bos else prompt, maxTokens=15, temperature=0),
        dict(prompt=prompt, maxTokens=25, temperature=1.0, seed=1),
        dict(prompt=prompt, maxTokens=25, temperature=0.8, topK=20, seed=7),
        dict(prompt=prompt, maxTokens=25, temperature=1.2, topP=0.9, seed=42),
        dict(prompt=prompt, maxTokens=25, temperature=0.7, topK=10, topP=0.8, seed=4294967295),
        dict(prompt=prompt, maxTokens=40, temperature=1.0, seed=3, stop=["，", "。"]),
        dict(prompt=prompt, maxTokens=40, temperature=1.0, seed=3, stop="的"),
        dict(prompt=prompt, maxTokens=0, temperature=0),
    ]
    out = []
    for case in cases:
        kwargs = {"max_tokens": case["maxTokens"], "temperature": case["temperature"], "top_k": case.get("topK"),
                  "top_p": case.get("topP"), "seed": case.get("seed"), "stop": case.get("stop")}
        pieces = list(model.generate(case["prompt"], **kwargs))
        out.append({"prompt": case.pop("prompt"), "options": case, "pieces": pieces})
    return out


def prediction(p) -> dict[str, Any]:
    return {"label": p.label, "score": f64(p.score), "scores": {k: f64(v) for k, v in p.scores.items()}}


def classify_goldens(model) -> dict[str, Any]:
    texts = CHINESE + MIXED
    single = [{"text": t, **prediction(model.classify(t))} for t in texts]
    batch = [prediction(p) for p in model.classify(texts)]
    running = []
    for text in texts[:3]:
        s = model.stream()
        trail = []
        for piece in chunks_of(text, 2):
            s.feed(piece)
            p = s.prediction()
            trail.append({"text": piece, "pending": s.pending, "prediction": None if p is None else prediction(p)})
        s.flush()
        running.append({"text": text, "feeds": trail, "final": prediction(s.prediction())})
    return {"single": single, "batch": {"texts": texts, "results": batch}, "streams": running}


def tag_result(r) -> dict[str, Any]:
    return {"pairs": [list(p) for p in r], "spans": [list(s) for s in r.spans], "words": r.words}


def tag_goldens(model) -> dict[str, Any]:
    texts = NEWS + CHINESE[:2] + MIXED
    single = [{"text": t, **tag_result(model.tag(t))} for t in texts]
    batch = [tag_result(r) for r in model.tag(texts)]
    streams = []
    for text in texts[:4] + MIXED:
        for size in (1, 4):
            ts = model.tag_stream()
            feeds = []
            for piece in chunks_of(text, size):
                r = ts.feed(piece)
                feeds.append({"text": piece, **tag_result(r), "pending": ts.pending, "peek": tag_result(ts.peek())})
            streams.append({"text": text, "chunk": size, "feeds": feeds, "end": tag_result(ts.end())})
    ts = model.tag_stream()
    ts.feed(texts[0][:5])
    ended = tag_result(ts.end(texts[0][5:]))
    return {"single": single, "batch": {"texts": texts, "results": batch}, "streams": streams,
            "endWithText": {"feed": texts[0][:5], "end": texts[0][5:], "result": ended}}


def batcher_goldens(model) -> dict[str, Any]:
    texts = texts_for(model)[:3]
    b = model.batcher()
    out: dict[str, Any] = {"texts": texts}
    if model.task == "tag":
        streams = [model.tag_stream() for _ in texts]
        fed = b.feed(streams, texts)
        out["feed"] = [tag_result(r) for r in fed]
        out["flush"] = [tag_result(r) for r in b.flush(streams)]
        return out
    streams = [model.stream() for _ in texts]
    fed = b.feed(streams, texts)
    out["feed"] = [maybe(x) for x in fed]
    out["pending"] = [s.pending for s in streams]
    out["flush"] = [maybe(x) for x in b.flush(streams)]
    ids = [[4, len(model.vocab) - 1, 5], [6, 7, 4]]
    out["stepIds"] = ids
    out["steps"] = [f32(b.step(streams, row)) for row in ids]  # each (B, n_out)
    out["stepDims"] = [len(texts), model.n_out]
    out["states"] = [arrays(s.state) for s in streams]
    return out


def snapshot_goldens(model) -> list[dict[str, Any]]:
    """Snapshots taken mid-stream (unsigned and signed), and what the stream gives next."""
    out = []
    text = texts_for(model)[0]
    half = len(text) // 2
    for key in (None, "golden-key"):
        if model.task == "tag":
            ts = model.tag_stream(key=key)
            ts.feed(text[:half])
            snap = ts.snapshot()
            out.append({"kind": "tag", "key": key, "fed": text[:half], "snapshot": b64(snap), "pending": ts.pending,
                        "next": {"feed": text[half:], "result": tag_result(ts.feed(text[half:])),
                                 "end": tag_result(ts.end())}})
        s = model.stream(key=key)
        s.feed(text[:half])
        snap = s.snapshot()
        entry = {"kind": "stream", "key": key, "fed": text[:half], "snapshot": b64(snap), "pending": s.pending,
                 "consumed": s.consumed, "logits": maybe(s.logits), "state": arrays(s.state)}
        nxt = s.feed(text[half:])
        entry["next"] = {"feed": text[half:], "logits": maybe(nxt), "pending": s.pending,
                         "flush": maybe(s.flush()), "step": f32(s.step(4))}
        out.append(entry)
    return out


def model_goldens(name: str, info: dict[str, Any], out: Path) -> dict[str, Any]:
    from rnnkit.runtime import load_model

    model = load_model(info["path"], providers="cpu", threads=1)
    info["task"] = model.task
    spec = model.metadata
    samples = [*texts_for(model), "", " ", "\u00a0x\u3000y", "ＡＢＣ ｄｅｆ", "e\u0301 Å ﬁ"]
    g: dict[str, Any] = {
        "file": str(info["path"].relative_to(out)), "task": model.task, "tolerance": info["tolerance"],
        "identity": model.identity, "vocabSize": len(model.vocab), "nOut": model.n_out, "labels": model.labels,
        "cell": spec.cell, "layers": spec.layers, "hidden": spec.hidden, "bos": spec.bos, "eos": spec.eos,
        "tokenizer": segmenter(model),
        "encode": [{"text": t, "ids": model.encode(t), "decode": model.decode(model.encode(t))} for t in samples],
        "start": {"state": arrays(model.start_state()), "logits": maybe(model.start_logits())},
        "run": run_goldens(model),
        "stream": stream_goldens(model),
        "batcher": batcher_goldens(model),
        "snapshots": snapshot_goldens(model),
    }
    if model.task == "lm":
        g["generate"] = generate_goldens(model)
    elif model.task == "classify":
        g["classify"] = classify_goldens(model)
    else:
        g["tag"] = tag_goldens(model)
    return g


def versions() -> dict[str, str]:
    from importlib.metadata import version

    import onnxruntime

    return {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "jieba": version("jieba"), "numpy": np.__version__, "unicode": unicodedata.unidata_version,
            "rnnkit": version("rnnkit")}


def sections(out: Path, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found = {}
    for section in SECTIONS:
        file = HERE / f"goldens_{section}.py"
        if not file.exists():
            print(f"note: {file.name} does not exist yet; section {section!r} skipped", flush=True)
            continue
        started = time.perf_counter()
        spec = importlib.util.spec_from_file_location(f"goldens_{section}", file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        found[section] = module.write(out, {n: {"path": m["path"], "task": m["task"]} for n, m in models.items()})
        print(f"  section {section}: {time.perf_counter() - started:.1f}s", flush=True)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="js/test/goldens", help="folder for models/ and goldens.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    out = Path(args.out).resolve()
    shutil.rmtree(out / "models", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rnnkit-goldens-") as work:
        models = make_models(out, Path(work))
    goldens: dict[str, Any] = {"versions": versions(), "models": {}}
    for name, info in models.items():
        goldens["models"][name] = model_goldens(name, info, out)
    goldens.update(sections(out, models))
    tmp = out / "goldens.json.tmp"
    tmp.write_text(json.dumps(goldens, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(out / "goldens.json")
    size = (out / "goldens.json").stat().st_size
    print(f"wrote {out / 'goldens.json'} ({size / 1024:.0f} KiB, {len(models)} models) in "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
