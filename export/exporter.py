"""``export_onnx``: checkpoint → one checked, parity-proven, self-describing ONNX file."""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnkit.runtime.contract import ModelSpec
from rnnkit.runtime.errors import CheckpointError, ConfigError, QuantizationError, RnnkitWarning
from rnnkit.runtime.files import atomic_path
from rnnkit.train.batches import tokenize_examples
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint

from .graph import DEFAULT_OPSET, spec_from_checkpoint, stamp_metadata, trace_to_onnx
from .parity import ParityReport, check_parity
from .quantgate import compare_with_fp32, invariance, step_ratio, texts_for_checks
from .quantize import MODES, onnx_metric, quantize_model

__all__ = ["ExportReport", "export_onnx"]

log = logging.getLogger(__name__)
_DRAWS = 3  # parity runs (seeds) that measure a quantized file's error against torch
_HEADROOM = 2.0  # the tolerance reported, as a multiple of the largest error seen


@dataclass
class ExportReport:
    path: Path
    spec: ModelSpec
    size_bytes: int
    seconds: float
    parity: ParityReport | None
    quantization: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "seconds": round(self.seconds, 3),
                "task": self.spec.task, "cell": self.spec.cell,
                "parity": self.parity.to_dict() if self.parity else None,
                "quantization": self.quantization}


def export_onnx(checkpoint: str | Path, out: str | Path, *, opset: int = DEFAULT_OPSET, atol: float = 1e-5,
                quantize: str | None = None, max_drop: float = 0.01, skip_parity: bool = False,
                overwrite: bool = False) -> ExportReport:
    """Export a checkpoint (file or training folder) to ``out``.

    The file appears only when every check passed: ``onnx.checker``, metadata validation, the
    torch/onnxruntime parity gate (``atol``), and for a ``quantize`` mode (``"int8"``,
    ``"int4"`` or ``"int8-dynamic"``, see :mod:`rnnkit.export.quantize`) the invariance check
    (a text's outputs alone == batched == chunked, unless the mode says they may differ) and a
    validation metric that drops by at most ``max_drop`` (relative). Otherwise nothing is
    written at ``out`` and a typed error says why.

    >>> export_onnx("runs/hello", "hello.onnx")  # doctest: +SKIP
    ExportReport(path=PosixPath('hello.onnx'), ...)
    """
    if quantize is not None and quantize not in MODES:
        raise ConfigError(f"unknown quantization {quantize!r}; choose one of {', '.join(MODES)}")
    if atol <= 0 or max_drop < 0:
        raise ConfigError("atol must be > 0 and max_drop ≥ 0")
    started = time.perf_counter()
    out = Path(out)
    source = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(source)
    try:  # an inconsistent checkpoint fails here, before any file is touched
        with torch.random.fork_rng(devices=[]):  # building the model draws initial weights: keep the caller's RNG
            model, tokenizer, vocab = model_from_checkpoint(ckpt)
        spec = spec_from_checkpoint(ckpt)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from e
    real = _real_ids(ckpt, tokenizer, vocab)
    with atomic_path(out, overwrite=overwrite) as final, \
            tempfile.TemporaryDirectory(prefix="rnnkit-export-") as work:  # never beside the target
        fp32 = Path(work) / "model.onnx"
        trace_to_onnx(model, fp32, opset=opset)
        stamp_metadata(fp32, spec)
        parity = None
        if skip_parity:
            warnings.warn("--skip-parity: this model was not compared with torch", RnnkitWarning, stacklevel=2)
        else:
            parity = check_parity(model, fp32, atol=atol, real_ids=real)
        quant = None
        if quantize is not None:
            if quantize == "int8-dynamic":
                warnings.warn("int8-dynamic quantizes activations with one scale per call: a text's answers "
                              "depend on the other texts of its batch and on how it is cut into calls; "
                              "--quantize int8 does not", RnnkitWarning, stacklevel=2)
            small = Path(work) / f"model.{quantize}.onnx"
            quant = _quantize(quantize, fp32, small, ckpt, model, tokenizer, vocab, max_drop, real)
            # the full report, then the ratio again: that of the file as written, metadata included
            stamp_metadata(small, spec_from_checkpoint(ckpt, quantization=quant))
            quant["size_ratio"] = round(small.stat().st_size / fp32.stat().st_size, 4)
            spec = spec_from_checkpoint(ckpt, quantization=quant)
            stamp_metadata(small, spec)
            if quant["size_ratio"] >= 1:
                warnings.warn(f"{quantize} did not make the file smaller (×{quant['size_ratio']:.2f}): the layers "
                              "are too small for smaller weights to outweigh the scales and nodes quantization "
                              "adds; the fp32 model is the better file", RnnkitWarning, stacklevel=2)
            fp32 = small
        shutil.copyfile(fp32, final)
    size = out.stat().st_size
    log.info("wrote %s (%.1f KiB) in %.1fs", out, size / 1024, time.perf_counter() - started)
    return ExportReport(out, spec, size, time.perf_counter() - started, parity, quant)


def _quantize(mode: str, fp32: Path, small: Path, ckpt, model, tokenizer, vocab, max_drop: float,
              real: list[list[int]]) -> dict[str, Any]:
    info = quantize_model(fp32, small, mode)
    info["size_ratio"] = round(small.stat().st_size / fp32.stat().st_size, 4)
    stamp_metadata(small, spec_from_checkpoint(ckpt, quantization=info))  # a loader checks the mode's operators
    texts = texts_for_checks(real, len(vocab))
    info["invariance"] = invariance(small, texts)
    if info["batch_invariant"] and not info["invariance"]["ok"]:
        inv = info["invariance"]
        raise QuantizationError(
            f"{mode}: a text's answers moved by {inv['max_scaled_diff']:.2e} (relative) between {inv['worst']}, "
            "more than a batch-invariant file may; nothing was written: the fp32 file is exact, and "
            "--quantize int8-dynamic accepts answers that depend on the batch")
    # The error against torch moves with the input: the largest difference over a few draws,
    # and a tolerance with headroom for other inputs.
    seen = max(check_parity(model, small, atol=float("inf"), real_ids=real, seed=seed,
                            raise_on_mismatch=False).max_abs_diff for seed in range(_DRAWS))
    info["max_abs_diff"] = seen
    info["atol"] = _round_up(_HEADROOM * seen)
    info["vs_fp32"] = compare_with_fp32(fp32, small, texts, ckpt["task"])
    info["step_ratio"] = round(step_ratio(fp32, small), 4)
    before = onnx_metric(fp32, ckpt, tokenizer, vocab)
    after = onnx_metric(small, ckpt, tokenizer, vocab)
    if before is None or after is None:
        warnings.warn(f"the checkpoint has no validation sample, so the {mode} metric change is unknown",
                      RnnkitWarning, stacklevel=3)
        return info
    name, b, higher = before
    a = after[1]
    # relative to the fp32 value; absolute where that is 0 (e.g. an accuracy of 0)
    drop = ((b - a) if higher else (a - b)) / (abs(b) or 1.0)
    info["metric"] = {"name": name, "fp32": b, "quantized": a, "relative_drop": drop,
                      "examples": len(ckpt.get("valid_sample", []))}
    log.info("%s %s: fp32 %.4f → %.4f (relative drop %.2f%%)", mode, name, b, a, 100 * drop)
    if drop > max_drop:
        advice = ("int4 gives up more than int8 for its smaller file, more than a small model can often spare: "
                  f"use --quantize int8, or accept the loss with --max-drop {_round_up(drop):g}"
                  if mode == "int4" else f"keep fp32, or accept the loss with --max-drop {_round_up(drop):g}")
        raise QuantizationError(
            f"{mode} lowers validation {name} from {b:.4f} to {a:.4f} ({100 * drop:.2f}% > --max-drop "
            f"{100 * max_drop:.2f}%); nothing was written: {advice}")
    return info


def _round_up(x: float) -> float:
    """``x`` rounded up to two significant digits (a tolerance, so never below ``x``)."""
    if not math.isfinite(x) or x <= 0:
        return x
    step = 10.0 ** (math.floor(math.log10(x)) - 1)
    return max(x, float(f"{math.ceil(x / step) * step:.2g}"))  # the format drops float noise (0.0090000001)


def _real_ids(ckpt: dict[str, Any], tokenizer, vocab) -> list[list[int]]:
    sample = (ckpt.get("valid_sample") or [])[:8]
    task = ckpt["task"]
    items = tokenize_examples(sample if task == "lm" else [tuple(e) for e in sample], task, tokenizer)
    tokens = items if task == "lm" else [t for t, _ in items]
    return [vocab.encode(t)[:300] for t in tokens if t]
