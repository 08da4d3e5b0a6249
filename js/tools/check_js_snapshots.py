"""Python restores the snapshots the JavaScript runtime wrote, and continues them as JS did.

    .venv/bin/python js/tools/check_js_snapshots.py [--goldens js/test/goldens] [FILE ...]

FILE defaults to js/test/out/snapshots.json (the Node run) and, when it exists,
js/test/out/browser/snapshots.json (the Chromium run); both are written by the snapshot case
(js/test/cases/snapshot.js) through ``env.writeOut("snapshots.json", ...)``. Each holds
``{"snapshots": [entry, ...]}`` (or the bare list), an entry being::

    {"model": "char_lm",            a model of goldens.json (or "file": path relative to --goldens)
     "kind": "stream" | "tag",      what restores it: model.stream(...) or model.tag_stream(...)
     "key": null | "text",          the key it was signed with (UTF-8)
     "snapshot": "base64",
     "pending": "...",              optional: the restored stream's pending text
     "next": "text",                optional: fed after the restore; JS's answer is in
     "logits": [...] | null,          (stream) what feed(next) returned
     "result": {"pairs", "spans", "words"},  (tag) what feed(next) returned
     "flush": [...] | null,         optional (stream): flush() after that
     "end": {...},                  optional (tag): end() after that
     "tolerance": 1e-5}             optional: absolute, for the logits (default by model and run)

Exit 0 when Python restores every snapshot and gives what JS recorded; otherwise exit 1 with
one line per failure.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "js" / "test" / "out"
# Absolute tolerances, as js/test/harness.js states them: (run, model tolerance kind) → tol.
TOLERANCES = {("node", "fp32"): 1e-5, ("node", "int8"): 2e-3, ("browser", "fp32"): 1e-4, ("browser", "int8"): 2e-3}


def tag_json(r: Any) -> dict[str, Any]:
    return {"pairs": [list(p) for p in r], "spans": [list(s) for s in r.spans], "words": r.words}


def compare_logits(got: Any, want: Any, tol: float, what: str) -> str | None:
    if want is None or got is None:
        return None if want is None and got is None else f"{what}: Python gives {_none(got)}, JS recorded {_none(want)}"
    got = np.asarray(got, np.float64).ravel()
    want = np.asarray(want, np.float64).ravel()
    if got.shape != want.shape:
        return f"{what}: Python gives {got.size} logits, JS recorded {want.size}"
    worst = float(np.max(np.abs(got - want))) if got.size else 0.0
    if not worst <= tol:
        return f"{what}: logits differ by up to {worst:.3g} (tolerance {tol:g})"
    return None


def _none(x: Any) -> str:
    return "null" if x is None else "logits"


def check_entry(entry: dict[str, Any], run: str, goldens: dict[str, Any], goldens_dir: Path, cache: dict) -> list[str]:
    from rnnkit.runtime import RnnkitError, load_model

    name = entry.get("model")
    if "file" in entry:
        path, kind = goldens_dir / entry["file"], "fp32"
    elif name in goldens.get("models", {}):
        path, kind = goldens_dir / goldens["models"][name]["file"], goldens["models"][name]["tolerance"]
    else:
        return [f"model {name!r} is not in goldens.json and the entry names no file"]
    if path not in cache:
        cache[path] = load_model(path, providers="cpu", threads=1)
    model = cache[path]
    tol = float(entry.get("tolerance", TOLERANCES[(run, kind)]))
    key = entry.get("key")
    what = entry.get("kind", "stream")
    try:
        data = base64.b64decode(entry["snapshot"], validate=True)
    except (KeyError, ValueError) as e:
        return [f"no readable base64 'snapshot' ({e})"]
    try:
        s = model.tag_stream(data, key=key) if what == "tag" else model.stream(data, key=key)
    except RnnkitError as e:
        return [f"Python cannot restore it: {type(e).__name__}: {e}"]
    problems = []
    if "pending" in entry and s.pending != entry["pending"]:
        problems.append(f"pending after restore: Python {s.pending!r}, JS {entry['pending']!r}")
    if "next" not in entry:
        return problems
    if what == "tag":
        got = tag_json(s.feed(entry["next"]))
        if "result" in entry and got != entry["result"]:
            problems.append(f"tag feed(next): Python {got}, JS {entry['result']}")
        if "end" in entry and (ended := tag_json(s.end())) != entry["end"]:
            problems.append(f"tag end(): Python {ended}, JS {entry['end']}")
        return problems
    problems.append(compare_logits(s.feed(entry["next"]), entry.get("logits"), tol, "feed(next)"))
    if "flush" in entry:
        problems.append(compare_logits(s.flush(), entry["flush"], tol, "flush()"))
    return [p for p in problems if p]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path,
                        help="snapshots.json files (default: the Node and browser runs')")
    parser.add_argument("--goldens", type=Path, default=ROOT / "js" / "test" / "goldens", help="the goldens folder")
    args = parser.parse_args(argv)
    files = args.files or [OUT / "snapshots.json"] + [p for p in [OUT / "browser" / "snapshots.json"] if p.exists()]
    goldens_file = args.goldens / "goldens.json"
    failures = []
    if not goldens_file.exists():
        print(f"{goldens_file}: missing; run js/tools/goldens.py first")
        return 1
    goldens = json.loads(goldens_file.read_text(encoding="utf-8"))
    cache: dict = {}
    checked = 0
    for file in files:
        run = "browser" if file.parent.name == "browser" else "node"
        if not file.exists():
            failures.append(f"{file}: missing (the JS snapshot case writes it; run `npm test` in js/ first)")
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as e:
            failures.append(f"{file}: not JSON ({e})")
            continue
        entries = data.get("snapshots") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not entries:
            failures.append(f"{file}: no snapshots in it")
            continue
        for i, entry in enumerate(entries):
            label = f"{file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}[{i}] " \
                    f"({entry.get('model')}, {entry.get('kind', 'stream')}, key={entry.get('key')!r})"
            try:
                problems = check_entry(entry, run, goldens, args.goldens, cache)
            except Exception as e:  # a broken entry is one failure line, not a traceback
                problems = [f"{type(e).__name__}: {e}"]
            failures += [f"{label}: {p}" for p in problems]
            checked += 1
    for line in failures:
        print(line)
    if failures:
        return 1
    print(f"Python restored {checked} JS snapshots and gave the same next answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
