"""P9: the JavaScript runtime's step time against the Python runtime's, on the same file and ids.

Node runs onnxruntime-node, Chromium runs onnxruntime-web's WebAssembly build (headless, one
thread); both through js/tools/bench.js. Skipped, saying why, where js/node_modules is missing
(``cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci``) or Chromium is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import load_model
from rnnkit.runtime.bench import bare_steps, median_time

from .models import SIZES, SMALL, random_model

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "js"


def js_rows(work: Path, quick: bool) -> list[dict[str, Any]]:
    missing = _missing()
    if missing:
        print(f"P9 skipped: {missing}", flush=True)
        return [{"skipped": missing}]
    rows = []
    for size in (SMALL, SIZES["char"]):
        path, _ = random_model(work / "p9", "gru", size)
        n = 200 if quick else 1000
        ids = np.random.default_rng(0).integers(4, size.vocab, n).tolist()
        repeats = 3 if quick else 5
        model = load_model(path, providers="cpu", threads=1)
        stream = model.stream()

        def python_steps(stream=stream, ids=ids) -> None:
            for t in ids:
                stream.step(t)

        python, _ = median_time(python_steps, repeats=repeats)
        bare, _ = median_time(bare_steps(model, ids), repeats=repeats)
        ids_file = work / "p9" / "ids.json"
        ids_file.write_text(json.dumps(ids))
        row: dict[str, Any] = {"cell": "gru", "size": size.name, "vocab": size.vocab, "hidden": size.hidden,
                               "python_us": 1e6 * python / n, "python_bare_ort_us": 1e6 * bare / n}
        for where in ("node", "chromium"):
            found = _run_js(where, path, ids_file, repeats)
            row[where] = found
            if "rnnkit_us" in found:
                found["vs_python"] = found["rnnkit_us"] / row["python_us"]
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _missing() -> str:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "onnxruntime-node").is_dir():
        return "js/node_modules is missing: cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci"
    return ""


def _run_js(where: str, path: Path, ids_file: Path, repeats: int) -> dict[str, Any]:
    cmd = ["node", str(JS / "tools" / "bench.js"), "--model", str(path), "--ids", str(ids_file),
           "--repeats", str(repeats), *(["--browser"] if where == "chromium" else [])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return {"failed": lines[-1] if lines else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _line(r: dict[str, Any]) -> str:
    parts = [f"P9 gru {r['size']:<5} h{r['hidden']:<3} Python {r['python_us']:6.1f} µs/step"]
    for where in ("node", "chromium"):
        found = r[where]
        if "rnnkit_us" in found:
            parts.append(f"{where} {found['rnnkit_us']:6.1f} µs (×{found['vs_python']:.2f} Python, "
                         f"×{found['vs_bare_ort']:.2f} its bare ORT)")
        else:
            parts.append(f"{where}: {found.get('failed', 'no result')}")
    return " | ".join(parts)
