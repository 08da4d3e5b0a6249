"""The parity gate's float64 judge: beyond atol, a file agrees only when it is as near the exact answer as torch."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from factory import tiny_checkpoint  # noqa: E402

from rnnkit.export import check_parity, export_onnx  # noqa: E402
from rnnkit.export.parity import FLOAT64_FACTOR, ParityReport, raise_on_mismatches, record  # noqa: E402
from rnnkit.runtime.errors import ParityError  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402

TRUTH = np.linspace(-0.9, 0.9, 24).reshape(2, 3, 4)


def judged(torch_error: float, file_error: float, *, atol: float = 1e-5) -> dict:
    report = ParityReport(atol)
    record(report, "case", "logits", (TRUTH + torch_error).astype(np.float32),
           (TRUTH + file_error).astype(np.float32), exact=lambda: TRUTH)
    return report.cases[0]


def test_within_atol_the_float64_answer_is_never_computed():
    report = ParityReport(1e-5)
    record(report, "case", "logits", TRUTH.astype(np.float32), (TRUTH + 5e-6).astype(np.float32),
           exact=lambda: pytest.fail("computed"))
    assert report.cases[0]["ok"] and "float64" not in report.cases[0]


def test_a_file_closer_to_the_exact_answer_than_torch_agrees():
    case = judged(3e-5, -1e-5)  # they differ by 4e-5, but torch is the one that is further off
    assert case["ok"] and case["max_abs_diff"] > 3e-5
    assert case["float64"]["torch"] == pytest.approx(3e-5, rel=1e-2)
    assert case["float64"]["allowed"] == pytest.approx(FLOAT64_FACTOR * 3e-5, rel=1e-2)


def test_a_file_further_off_than_twice_torch_does_not():
    case = judged(2e-6, 2e-5)  # torch is near exact: the file's 2e-5 is the file's own error
    assert not case["ok"] and case["float64"]["file"] == pytest.approx(2e-5, rel=1e-2)
    assert not judged(3e-5, 1e-3)["ok"]  # a real difference stays one, however torch rounds


def test_every_comparison_beyond_atol_is_judged_by_float64_and_by_the_rule(tmp_path):
    """An atol no float32 kernel meets: every comparison is judged, and agrees exactly when the file
    is within FLOAT64_FACTOR of torch's own distance from the float64 answer."""
    export_onnx(tiny_checkpoint(tmp_path, task="lm", cell="lstm"), tmp_path / "m.onnx")
    model, _, _ = model_from_checkpoint(load_checkpoint(tmp_path / "checkpoint.pt"))
    report = check_parity(model, tmp_path / "m.onnx", atol=1e-9, raise_on_mismatch=False)
    judged = [c for c in report.cases if c["max_scaled_diff"] > 1e-9]
    assert len(judged) > len(report.cases) / 2
    for case in judged:
        exact = case["float64"]
        assert case["ok"] == (exact["file"] <= max(1e-9, FLOAT64_FACTOR * exact["torch"]))
        assert 0 < exact["torch"] < 1e-5 and exact["file"] < 1e-5  # both near exact: float32 rounding


@pytest.mark.parametrize("exact,says", [
    ({"torch": 1.8e-6, "file": 1.3e-5, "allowed": 1e-5}, "float32 rounding that long, saturated sequences amplify "
                                                          "(onnxruntime's kernels are 1.3e-05 from the float64 answer"),
    ({"torch": 3e-8, "file": 7e-5, "allowed": 1e-5}, "more than float32 rounding: the file computes something else"),
])
def test_a_refusal_says_whether_it_is_rounding_or_a_real_difference(exact, says):
    report = ParityReport(1e-5)
    report.cases.append({"case": "random b=2 t=300", "output": "logits", "shape": [2, 300, 4],
                         "max_abs_diff": exact["file"], "max_scaled_diff": exact["file"], "ok": False,
                         "float64": exact})
    with pytest.raises(ParityError, match=re.escape(says)):
        raise_on_mismatches(report)
