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
from .quantize import onnx_metric, quantize_int8

__all__ = ["ExportReport", "export_onnx"]

log = logging.getLogger(__name__)
_INT8_DRAWS = 3  # parity runs (seeds) that measure the int8 error
_INT8_HEADROOM = 2.0  # the int8 tolerance reported, as a multiple of the largest error seen


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
    torch/onnxruntime parity gate (``atol``), and for ``quantize="int8"`` a validation metric
    that drops by at most ``max_drop`` (relative). Otherwise nothing is written at ``out`` and
    a typed error says why.

    >>> export_onnx("runs/hello", "hello.onnx")  # doctest: +SKIP
    ExportReport(path=PosixPath('hello.onnx'), ...)
    """
    if quantize not in (None, "int8"):
        raise ConfigError(f"unknown quantization {quantize!r}; the one supported is int8")
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
        if quantize == "int8":
            int8 = Path(work) / "model.int8.onnx"
            quant = _quantize(fp32, int8, ckpt, model, tokenizer, vocab, max_drop, real)
            stamp_metadata(int8, spec_from_checkpoint(ckpt, quantization=quant))
            # again, so the recorded ratio is that of the file as written, metadata included
            quant["size_ratio"] = round(int8.stat().st_size / fp32.stat().st_size, 4)
            spec = spec_from_checkpoint(ckpt, quantization=quant)
            stamp_metadata(int8, spec)
            if quant["size_ratio"] >= 1:
                kept = ", ".join(quant["not_quantized_ops"]) or "the graph"
                warnings.warn(f"int8 did not make the file smaller (×{quant['size_ratio']:.2f}): {kept} computes in "
                              "fp32 and the layers are too small to gain; the fp32 model is the better file",
                              RnnkitWarning, stacklevel=2)
            fp32 = int8
        shutil.copyfile(fp32, final)
    size = out.stat().st_size
    log.info("wrote %s (%.1f KiB) in %.1fs", out, size / 1024, time.perf_counter() - started)
    return ExportReport(out, spec, size, time.perf_counter() - started, parity, quant)


def _quantize(fp32: Path, int8: Path, ckpt, model, tokenizer, vocab, max_drop: float,
              real: list[list[int]]) -> dict[str, Any]:
    info: dict[str, Any] = {"mode": "int8",
                            "method": "onnxruntime.quantize_dynamic (weights int8 in a 7-bit range, "
                                      "activations quantized per call)",
                            **quantize_int8(fp32, int8)}
    info["size_ratio"] = round(int8.stat().st_size / fp32.stat().st_size, 4)
    stamp_metadata(int8, spec_from_checkpoint(ckpt, quantization=info))  # a loader checks int8's operators
    # Activations are quantized with each call's own range, so the error moves with the input:
    # the largest difference over a few draws, and a tolerance with headroom for other inputs.
    seen = max(check_parity(model, int8, atol=float("inf"), real_ids=real, seed=seed,
                            raise_on_mismatch=False).max_abs_diff for seed in range(_INT8_DRAWS))
    info["max_abs_diff"] = seen
    info["atol"] = _round_up(_INT8_HEADROOM * seen)
    before = onnx_metric(fp32, ckpt, tokenizer, vocab)
    after = onnx_metric(int8, ckpt, tokenizer, vocab)
    if before is None or after is None:
        warnings.warn("the checkpoint has no validation sample, so the int8 metric change is unknown",
                      RnnkitWarning, stacklevel=3)
        return info
    name, b, higher = before
    a = after[1]
    # relative to the fp32 value; absolute where that is 0 (e.g. an accuracy of 0)
    drop = ((b - a) if higher else (a - b)) / (abs(b) or 1.0)
    info["metric"] = {"name": name, "fp32": b, "int8": a, "relative_drop": drop,
                      "examples": len(ckpt.get("valid_sample", []))}
    log.info("int8 %s: fp32 %.4f → int8 %.4f (relative drop %.2f%%)", name, b, a, 100 * drop)
    if drop > max_drop:
        raise QuantizationError(
            f"int8 lowers validation {name} from {b:.4f} to {a:.4f} ({100 * drop:.2f}% > --max-drop "
            f"{100 * max_drop:.2f}%); nothing was written: keep fp32 or raise --max-drop"
        )
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
