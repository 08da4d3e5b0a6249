"""torch versus onnxruntime, output by output, before a model file is allowed to exist."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.runtime import load_model
from rnnkit.runtime.contract import ModelSpec
from rnnkit.runtime.errors import ParityError
from rnnkit.train.model import RNNModel

__all__ = ["DEFAULT_SHAPES", "FLOAT64_FACTOR", "ParityReport", "check_parity", "differences", "float64_runner", "lazy",
           "raise_on_mismatches", "random_state", "record", "torch_outputs"]

log = logging.getLogger(__name__)
DEFAULT_SHAPES = ((1, 1), (1, 2), (3, 17), (4, 64), (2, 300))  # (batch, seq)
# A comparison beyond atol still agrees when the file is within this many times torch's own
# float32 error of the float64 answer: rounding that a long, saturated sequence amplifies, which
# no float32 kernel avoids and torch itself shows.
FLOAT64_FACTOR = 2.0
_EVERY_TOKEN_ROWS = 1024  # tokens a call in the every-token comparison, at most
_EVERY_TOKEN_LOGITS = 1 << 24  # vocabulary × outputs up to which its logits are compared too, and the
# logits one of its calls may hold (an lm of 50,000 tokens: 335 rows, 64 MiB, not 1,024 rows and 200 MiB)


@dataclass
class ParityReport:
    atol: float
    cases: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # comparisons that could not run, and why

    @property
    def max_abs_diff(self) -> float:
        return max((c["max_abs_diff"] for c in self.cases), default=0.0)

    @property
    def max_scaled_diff(self) -> float:
        """Largest max|Δ| / max(1, max|x|) over the outputs: what ``atol`` is compared with."""
        return max((c["max_scaled_diff"] for c in self.cases), default=0.0)

    @property
    def mismatches(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if not c["ok"]]

    def to_dict(self) -> dict[str, Any]:
        return {"atol": self.atol, "max_abs_diff": self.max_abs_diff, "max_scaled_diff": self.max_scaled_diff,
                "cases": len(self.cases), "mismatches": self.mismatches, "skipped": self.skipped}


def check_parity(model: RNNModel, onnx_path: str | Path, *, atol: float = 1e-5,
                 shapes: Sequence[tuple[int, int]] = DEFAULT_SHAPES,
                 real_ids: Sequence[Sequence[int]] = (), stream_len: int = 24, seed: int = 0,
                 raise_on_mismatch: bool = True, columns: Sequence[int] | None = None,
                 report: ParityReport | None = None) -> ParityReport:
    """Compare every output of the ONNX file with torch on random and real token ids.

    Covers each (batch, seq) in ``shapes`` with random initial states, the ``real_ids``
    sequences, and token-by-token streaming through ONNX versus the whole sequence in torch.
    An output agrees when ``max |Δ| ≤ atol · max(1, max |x|)`` over the tensor (x = torch's
    output): absolute for outputs within ±1, relative to the tensor's largest value beyond.
    One that does not is run again in float64 (a double-precision copy of ``model``): it still
    agrees when the file's error from that is at most :data:`FLOAT64_FACTOR` times torch's own
    float32 error (the case records both under ``"float64"``). ``columns`` limits the logits
    compared to those (an exported module's own outputs, not the constant logits of specials it
    never had, which would loosen a relative tolerance); ``report`` collects into an existing
    report. Every mismatch is collected before :class:`ParityError` is raised.
    """
    model = model.eval().cpu()
    onnx_model = load_model(onnx_path, providers="cpu", threads=1)  # the one way a file is run
    spec = onnx_model.metadata
    output_names = spec.output_names
    rng = np.random.default_rng(seed)
    report = report if report is not None else ParityReport(atol)
    keep = slice(None) if columns is None else np.asarray(columns, np.int64)
    exact_run = float64_runner(model)

    def compare(case: str, tokens: np.ndarray, state: list[np.ndarray]) -> None:
        expected = torch_outputs(model, tokens, state)
        logits, new = onnx_model.run(tokens, state)
        expected[0], logits = expected[0][..., keep], logits[..., keep]
        exact = lazy(lambda: exact_run(tokens, state))
        for i, (name, e, g) in enumerate(zip(output_names, expected, [logits, *new])):
            record(report, case, name, e, g, exact=lambda i=i: _column(exact()[i], keep if i == 0 else None))

    for batch, seq in shapes:
        tokens = rng.integers(0, len(spec.vocab), (batch, seq), dtype=np.int64)
        compare(f"random b={batch} t={seq}", tokens, random_state(rng, spec, batch))
    _every_token(report, model, onnx_model, rng, keep, exact_run)
    real = [list(ids) for ids in real_ids if len(ids)]
    if real:
        width = min(max(map(len, real)), 512)
        tokens = np.zeros((min(len(real), 8), width), dtype=np.int64)
        for row, ids in enumerate(real[: len(tokens)]):
            tokens[row, : min(len(ids), width)] = ids[:width]
        compare(f"real b={len(tokens)} t={width}", tokens, spec.zero_state(len(tokens)))

    # Streaming: one ONNX call per token, state fed back, against torch on the whole sequence.
    tokens = rng.integers(0, len(spec.vocab), (2, stream_len), dtype=np.int64)
    state = random_state(rng, spec, 2)
    expected = torch_outputs(model, tokens, state)
    exact = lazy(lambda start=state: exact_run(tokens, start))
    steps = []
    for t in range(stream_len):
        logits, state = onnx_model.run(tokens[:, t : t + 1], state)
        steps.append(logits[..., keep])
    record(report, f"stream t={stream_len}", output_names[0], expected[0][..., keep], np.concatenate(steps, axis=1),
           exact=lambda: _column(exact()[0], keep))
    for i, (name, e, g) in enumerate(zip(output_names[1:], expected[1:], state), start=1):
        record(report, f"stream t={stream_len}", name, e, g, exact=lambda i=i: exact()[i])

    for case in report.cases:
        log.info("%s %s %s: max |Δ| %.2e", "✓" if case["ok"] else "✗", case["case"], case["output"],
                 case["max_abs_diff"])
    if raise_on_mismatch:
        raise_on_mismatches(report)
    return report


def _every_token(report: ParityReport, model: RNNModel, onnx_model: Any, rng: np.random.Generator, keep: Any,
                 exact_run: Callable) -> None:
    """Each token of the vocabulary as one step from a random state, so that every embedding row is
    compared (random texts miss most rows of a large vocabulary): one row per output, its worst chunk.

    The state outputs cover every row; the logits are compared too unless they would be large
    (an lm's vocabulary × vocabulary), since every head weight is in every other comparison's.
    """
    spec = onnx_model.metadata
    vocab = len(spec.vocab)
    first = 0 if vocab * spec.n_out <= _EVERY_TOKEN_LOGITS else 1  # outputs compared: logits, then the state
    part = ParityReport(report.atol)
    rows = max(16, min(_EVERY_TOKEN_ROWS, _EVERY_TOKEN_LOGITS // spec.n_out))
    for start in range(0, vocab, rows):
        tokens = np.arange(start, min(vocab, start + rows), dtype=np.int64)[:, None]  # (B, 1)
        state = random_state(rng, spec, len(tokens))
        expected = torch_outputs(model, tokens, state)
        logits, new = onnx_model.run(tokens, state)
        exact = lazy(lambda tokens=tokens, state=state: exact_run(tokens, state))
        expected[0], logits = expected[0][..., keep], logits[..., keep]
        for i, (name, e, g) in enumerate(zip(spec.output_names, expected, [logits, *new])):
            if i >= first:
                record(part, "every token", name, e, g,
                       exact=lambda i=i, exact=exact: _column(exact()[i], keep if i == 0 else None))
    for name in spec.output_names[first:]:  # a failing chunk first, else the largest difference
        cases = [c for c in part.cases if c["output"] == name]
        worst = max(cases, key=lambda c: (not c["ok"], c["max_scaled_diff"]))
        batch_axis = 0 if name == spec.output_names[0] else 1
        shape = list(worst["shape"])
        shape[batch_axis] = vocab
        report.cases.append({**worst, "shape": shape})


def raise_on_mismatches(report: ParityReport) -> None:
    """:class:`ParityError` naming the worst of ``report``'s mismatches, if it has any."""
    if not report.mismatches:
        return
    atol = report.atol
    worst = max(report.mismatches, key=lambda m: m["max_scaled_diff"])
    hint = ""
    exact = worst.get("float64")
    if exact and exact["file"] > 100 * exact["torch"]:  # torch is near exact: the file is what is off
        what = ("the module's forward computes something its parts do not" if worst["case"].startswith("module")
                else "the file computes something else")
        hint = (f"; torch is {exact['torch']:.1e} from the float64 answer and the file {exact['file']:.1e}, more "
                f"than float32 rounding: {what}")
    elif worst["max_scaled_diff"] < 10 * atol:
        where = (f" (onnxruntime's kernels are {exact['file']:.1e} from the float64 answer, torch's "
                 f"{exact['torch']:.1e})") if exact else ""
        hint = (f"; differences this small are float32 rounding that long, saturated sequences amplify{where}: "
                "--atol 1e-4 accepts them")
    raise ParityError(
        f"ONNX and torch disagree in {len(report.mismatches)} of {len(report.cases)} comparisons "
        f"(worst: {worst['output']} in {worst['case']}, max |Δ| {worst['max_abs_diff']:.2e}, "
        f"{worst['max_scaled_diff']:.2e} relative to max(1, max |x|), > atol {atol:g}); nothing was written{hint}",
        report.mismatches,
    )


def record(report: ParityReport, case: str, output: str, expected: np.ndarray, got: np.ndarray, *,
           exact: Callable[[], np.ndarray | None] | None = None) -> None:
    """Add the comparison of ``got`` with ``expected`` (torch's) to ``report``; ``exact`` gives the
    float64 answer (or None), consulted only when they differ by more than the tolerance."""
    if expected.shape != got.shape:
        report.cases.append({"case": case, "output": output, "shape": list(got.shape),
                             "expected_shape": list(expected.shape), "max_abs_diff": float("inf"),
                             "max_scaled_diff": float("inf"), "tolerance": report.atol, "ok": False})
        return
    diff, scaled = differences(expected, got)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size and np.isfinite(expected).all() else 1.0
    entry = {"case": case, "output": output, "shape": list(got.shape), "max_abs_diff": diff,
             "max_scaled_diff": scaled, "tolerance": report.atol * scale, "ok": scaled <= report.atol}
    truth = exact() if not entry["ok"] and exact is not None and np.isfinite(scaled) else None
    if truth is not None:
        own, theirs = differences(truth, expected)[1], differences(truth, got)[1]
        allowed = max(report.atol, FLOAT64_FACTOR * own)
        entry.update(ok=theirs <= allowed, tolerance=allowed * scale,
                     float64={"torch": own, "file": theirs, "allowed": allowed})
    report.cases.append(entry)


def differences(expected: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """max |Δ| and max |Δ| / max(1, max |x|) (x = ``expected``); both inf where either is not finite.

    float32 rounding grows with the size of what is summed, not of the result: an LSTM cell
    state of 30, or logits of 8 read through 256 hidden units after 200 steps, differ by ~1e-5
    between two correct kernels. So a tolerance scales with the tensor's magnitude once that
    passes 1 (onnxruntime's vectorised tanh/sigmoid add ~1e-7 a step of their own).
    """
    if not expected.size:
        return 0.0, 0.0
    diff = float(np.max(np.abs(expected.astype(np.float64) - got)))
    scaled = diff / max(1.0, float(np.max(np.abs(expected))))
    if not (np.isfinite(diff) and np.isfinite(scaled)):
        return float("inf"), float("inf")
    return diff, scaled


@torch.no_grad()
def torch_outputs(model: RNNModel, tokens: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
    """``model``'s outputs for tokens (B, T) from ``state`` (arrays (layers, B, hidden)): [logits, *state]."""
    t_state = [torch.from_numpy(s) for s in state]
    logits, out = model(torch.from_numpy(tokens), tuple(t_state) if len(t_state) == 2 else t_state[0])
    out = out if isinstance(out, tuple) else (out,)
    return [logits.numpy(), *(s.numpy() for s in out)]


def float64_runner(model: RNNModel) -> Callable[[np.ndarray, list[np.ndarray]], list[np.ndarray]]:
    """A function running a float64 copy of ``model`` (made on first call): (tokens, state) → outputs."""
    copies: list[RNNModel] = []

    def run(tokens: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
        if not copies:
            copies.append(copy.deepcopy(model).double().eval())
        return torch_outputs(copies[0], tokens, [np.asarray(s, np.float64) for s in state])
    return run


def lazy(make: Callable[[], list[np.ndarray]]) -> Callable[[], list[np.ndarray]]:
    """``make()``, computed once on the first call."""
    done: list[list[np.ndarray]] = []

    def get() -> list[np.ndarray]:
        if not done:
            done.append(make())
        return done[0]
    return get


def _column(x: np.ndarray, keep: Any) -> np.ndarray:
    return x if keep is None else x[..., keep]


def random_state(rng: np.random.Generator, spec: ModelSpec, batch: int) -> list[np.ndarray]:
    """Random state arrays (layers, batch, hidden) in ±0.9, as the gate starts its comparisons from."""
    return [rng.uniform(-0.9, 0.9, spec.state_shape(batch)).astype(np.float32) for _ in range(spec.n_state)]
