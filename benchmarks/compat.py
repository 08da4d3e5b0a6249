"""Which onnxruntime runs which quantized file, and with which numbers (not part of make bench).

    python -m benchmarks.compat make FOLDER            # every cell × fp32, int8, int4, int8-dynamic
    VENV/bin/python benchmarks/compat.py run FOLDER    # in a venv with another onnxruntime (numpy only)
    python -m benchmarks.compat compare FOLDER         # each version's logits against the newest one's

``run`` imports neither rnnkit nor torch, so it works in a venv holding just
``onnxruntime==X`` and numpy (``"numpy<2"`` for onnxruntime older than 1.19). Tiny models: the
int8 head is forced to compute in int8 (as a large model's does) so every operator is tried.
"""

from __future__ import annotations

import glob
import os
import sys
import warnings
from pathlib import Path

import numpy as np

_MODES = (None, "int8", "int4", "int8-dynamic")


def make(folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from factory import tiny_checkpoint

    from rnnkit.export import export_onnx, quantize

    quantize.HEAD_COMPUTE_INT8 = 0
    folder.mkdir(parents=True, exist_ok=True)
    for cell in ("rnn", "gru", "lstm"):
        ckpt = tiny_checkpoint(folder / f"checkpoint-{cell}", task="lm", cell=cell, layers=2, hidden=40, embed=32)
        for mode in _MODES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_onnx(ckpt, folder / f"{cell}-{mode or 'fp32'}.onnx", quantize=mode, max_drop=1.0,
                            overwrite=True)
    print(f"wrote {len(glob.glob(str(folder / '*.onnx')))} files to {folder}")


def run(folder: Path) -> None:
    import onnxruntime as ort

    version = ort.__version__
    for path in sorted(glob.glob(str(folder / "*.onnx"))):
        name = os.path.basename(path)
        try:
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own error types differ between versions
            print(f"{version} {name}: refused: {str(e).splitlines()[0][:140]}")
            continue
        inputs = {i.name: i for i in session.get_inputs()}
        layers, _, hidden = inputs["h0"].shape
        tokens = np.random.default_rng(0).integers(4, 50, (3, 17)).astype(np.int64)
        feed = {"tokens": tokens, **{n: np.zeros((layers, 3, hidden), np.float32) for n in inputs if n != "tokens"}}
        logits = session.run(None, feed)[0]
        np.save(f"{path}.{version}.npy", logits)
        print(f"{version} {name}: runs")


def compare(folder: Path) -> None:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in v.split("."))

    for path in sorted(glob.glob(str(folder / "*.onnx"))):
        found = {p[len(path) + 1 : -4]: np.load(p) for p in glob.glob(f"{path}.*.npy")}
        if not found:
            continue
        latest = max(found, key=key)
        diffs = ", ".join(f"{v} {float(np.max(np.abs(found[v] - found[latest]))):.1e}" for v in sorted(found, key=key))
        print(f"{os.path.basename(path)}: max |Δ| against {latest}: {diffs}")


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    {"make": make, "run": run, "compare": compare}[command](where)
