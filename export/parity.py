"""torch versus onnxruntime, output by output, before a model file is allowed to exist."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.runtime import load_model
from rnnkit.runtime.contract import ModelSpec
from rnnkit.runtime.errors import ParityError
from rnnkit.train.model import RNNModel

__all__ = ["DEFAULT_SHAPES", "ParityReport", "check_parity", "differences", "raise_on_mismatches", "record"]

log = logging.getLogger(__name__)
DEFAULT_SHAPES = ((1, 1), (1, 2), (3, 17), (4, 64), (2, 300))  # (batch, seq)


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
    ``columns`` limits the logits compared to those (an exported module's own outputs, not the
    constant logits of specials it never had, which would loosen a relative tolerance);
    ``report`` collects into an existing report. Every mismatch is collected before
    :class:`ParityError` is raised.
    """
    model = model.eval().cpu()
    onnx_model = load_model(onnx_path, providers="cpu", threads=1)  # the one way a file is run
    spec = onnx_model.metadata
    output_names = spec.output_names
    rng = np.random.default_rng(seed)
    report = report if report is not None else ParityReport(atol)
    keep = slice(None) if columns is None else np.asarray(columns, np.int64)

    def compare(case: str, tokens: np.ndarray, state: list[np.ndarray]) -> None:
        expected = _torch_run(model, tokens, state)
        logits, new = onnx_model.run(tokens, state)
        expected[0], logits = expected[0][..., keep], logits[..., keep]
        for name, e, g in zip(output_names, expected, [logits, *new]):
            record(report, case, name, e, g)

    for batch, seq in shapes:
        tokens = rng.integers(0, len(spec.vocab), (batch, seq), dtype=np.int64)
        compare(f"random b={batch} t={seq}", tokens, _random_state(rng, spec, batch))
    real = [list(ids) for ids in real_ids if len(ids)]
    if real:
        width = min(max(map(len, real)), 512)
        tokens = np.zeros((min(len(real), 8), width), dtype=np.int64)
        for row, ids in enumerate(real[: len(tokens)]):
            tokens[row, : min(len(ids), width)] = ids[:width]
        compare(f"real b={len(tokens)} t={width}", tokens, spec.zero_state(len(tokens)))

    # Streaming: one ONNX call per token, state fed back, against torch on the whole sequence.
    tokens = rng.integers(0, len(spec.vocab), (2, stream_len), dtype=np.int64)
    state = _random_state(rng, spec, 2)
    expected = _torch_run(model, tokens, state)
    steps = []
    for t in range(stream_len):
        logits, state = onnx_model.run(tokens[:, t : t + 1], state)
        steps.append(logits[..., keep])
    record(report, f"stream t={stream_len}", output_names[0], expected[0][..., keep], np.concatenate(steps, axis=1))
    for name, e, g in zip(output_names[1:], expected[1:], state):
        record(report, f"stream t={stream_len}", name, e, g)

    for case in report.cases:
        log.info("%s %s %s: max |Δ| %.2e", "✓" if case["ok"] else "✗", case["case"], case["output"],
                 case["max_abs_diff"])
    if raise_on_mismatch:
        raise_on_mismatches(report)
    return report


def raise_on_mismatches(report: ParityReport) -> None:
    """:class:`ParityError` naming the worst of ``report``'s mismatches, if it has any."""
    if not report.mismatches:
        return
    atol = report.atol
    worst = max(report.mismatches, key=lambda m: m["max_scaled_diff"])
    raise ParityError(
        f"ONNX and torch disagree in {len(report.mismatches)} of {len(report.cases)} comparisons "
        f"(worst: {worst['output']} in {worst['case']}, max |Δ| {worst['max_abs_diff']:.2e}, "
        f"{worst['max_scaled_diff']:.2e} relative to max(1, max |x|), > atol {atol:g}); nothing was written"
        + ("; differences this small are float32 rounding over long sequences: --atol 1e-4 accepts them"
           if worst["max_scaled_diff"] < 10 * atol else ""),
        report.mismatches,
    )


def record(report: ParityReport, case: str, output: str, expected: np.ndarray, got: np.ndarray) -> None:
    """Add the comparison of ``got`` with ``expected`` (torch's) to ``report``."""
    if expected.shape != got.shape:
        report.cases.append({"case": case, "output": output, "shape": list(got.shape),
                             "expected_shape": list(expected.shape), "max_abs_diff": float("inf"),
                             "max_scaled_diff": float("inf"), "tolerance": report.atol, "ok": False})
        return
    diff, scaled = differences(expected, got)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size and np.isfinite(expected).all() else 1.0
    report.cases.append({"case": case, "output": output, "shape": list(got.shape), "max_abs_diff": diff,
                         "max_scaled_diff": scaled, "tolerance": report.atol * scale, "ok": scaled <= report.atol})


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
def _torch_run(model: RNNModel, tokens: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
    t_state = [torch.from_numpy(s) for s in state]
    logits, out = model(torch.from_numpy(tokens), tuple(t_state) if len(t_state) == 2 else t_state[0])
    out = out if isinstance(out, tuple) else (out,)
    return [logits.numpy(), *(s.numpy() for s in out)]


def _random_state(rng: np.random.Generator, spec: ModelSpec, batch: int) -> list[np.ndarray]:
    return [rng.uniform(-0.9, 0.9, spec.state_shape(batch)).astype(np.float32) for _ in range(spec.n_state)]
