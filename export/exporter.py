"""``export_onnx``: checkpoint → one checked, parity-proven, self-describing ONNX file."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit.runtime import load_model
from rnnkit.runtime.contract import TASKS, ModelSpec, rnnkit_version
from rnnkit.runtime.errors import CheckpointError, ConfigError, ModuleError, QuantizationError, RnnkitWarning
from rnnkit.runtime.files import atomic_path
from rnnkit.runtime.tokenizers import CharTokenizer, Tokenizer, WhitespaceTokenizer, WordTokenizer
from rnnkit.runtime.unicode import UNICODE_VERSION
from rnnkit.train.batches import tokenize_examples
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint

from .graph import DEFAULT_OPSET, spec_from_checkpoint, stamp_metadata, trace_to_onnx
from .module import (
    attributes_of,
    build_model,
    detect_call,
    framing_of,
    module_parity,
    output_columns,
    restore_attributes,
    source_ids,
)
from .parity import ParityReport, check_parity, raise_on_mismatches
from .parts import find_parts
from .quantgate import compare_with_fp32, invariance, step_ratio, texts_for_checks
from .quantize import MODES, onnx_metric, quantize_model

__all__ = ["TOKENIZERS", "ExportReport", "export_module", "export_onnx", "label_names", "sample_ids",
           "tokenizer_named"]

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
    module: dict[str, Any] | None = None  # export_module: the parts found and how the forward is called

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size_bytes": self.size_bytes, "seconds": round(self.seconds, 3),
                "task": self.spec.task, "cell": self.spec.cell,
                "parity": self.parity.to_dict() if self.parity else None,
                "quantization": self.quantization, "module": self.module}


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
    real = sample_ids(ckpt, tokenizer, vocab)
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
            source = _Source(ckpt["task"], lambda q: spec_from_checkpoint(ckpt, quantization=q),
                             lambda path: onnx_metric(path, ckpt, tokenizer, vocab), len(ckpt.get("valid_sample", [])),
                             "the checkpoint has no validation sample")
            fp32, quant, spec = _write_quantized(quantize, fp32, source, model, real, max_drop)
        shutil.copyfile(fp32, final)
    size = out.stat().st_size
    log.info("wrote %s (%.1f KiB) in %.1fs", out, size / 1024, time.perf_counter() - started)
    return ExportReport(out, spec, size, time.perf_counter() - started, parity, quant)


@dataclass(frozen=True)
class _Source:
    """What quantizing needs of where the model came from: a checkpoint, or a user's module."""

    task: str
    spec_for: Callable[[dict[str, Any]], ModelSpec]  # the file's metadata with this quantization
    metric: Callable[[Path], tuple[str, float, bool] | None] | None  # (name, value, higher is better) of a file
    examples: int  # how many the metric reads
    no_metric: str  # why there is no metric, when there is none
    columns: Any = None  # the logit columns compared with torch (an lm module's own)


def _write_quantized(mode: str, fp32: Path, source: _Source, model, real: list[list[int]],
                     max_drop: float) -> tuple[Path, dict[str, Any], ModelSpec]:
    """The ``mode`` file beside ``fp32``, checked and stamped: its path, its report, its metadata."""
    if mode == "int8-dynamic":
        warnings.warn("int8-dynamic quantizes activations with one scale per call: a text's answers "
                      "depend on the other texts of its batch and on how it is cut into calls; "
                      "--quantize int8 does not", RnnkitWarning, stacklevel=3)
    small = fp32.with_name(f"model.{mode}.onnx")
    quant = _quantize(mode, fp32, small, source, model, max_drop, real)
    # the full report, then the ratio again: that of the file as written, metadata included
    stamp_metadata(small, source.spec_for(quant))
    quant["size_ratio"] = round(small.stat().st_size / fp32.stat().st_size, 4)
    spec = source.spec_for(quant)
    stamp_metadata(small, spec)
    if quant["size_ratio"] >= 1:
        warnings.warn(f"{mode} did not make the file smaller (×{quant['size_ratio']:.2f}): the layers "
                      "are too small for smaller weights to outweigh the scales and nodes quantization "
                      "adds; the fp32 model is the better file", RnnkitWarning, stacklevel=3)
    return small, quant, spec


def _quantize(mode: str, fp32: Path, small: Path, source: _Source, model, max_drop: float,
              real: list[list[int]]) -> dict[str, Any]:
    info = quantize_model(fp32, small, mode)
    info["size_ratio"] = round(small.stat().st_size / fp32.stat().st_size, 4)
    stamp_metadata(small, source.spec_for(info))  # a loader checks the mode's operators
    texts = texts_for_checks(real, len(source.spec_for(info).vocab))
    info["invariance"] = invariance(small, texts)
    if info["batch_invariant"] and not info["invariance"]["ok"]:
        inv = info["invariance"]
        raise QuantizationError(
            f"{mode}: a text's answers moved by {inv['max_scaled_diff']:.2e} (relative) between {inv['worst']}, "
            "more than a batch-invariant file may; nothing was written: the fp32 file is exact, and "
            "--quantize int8-dynamic accepts answers that depend on the batch")
    # The error against torch moves with the input: the largest difference over a few draws,
    # and a tolerance with headroom for other inputs.
    seen = max(check_parity(model, small, atol=float("inf"), real_ids=real, seed=seed, raise_on_mismatch=False,
                            columns=source.columns).max_abs_diff for seed in range(_DRAWS))
    info["max_abs_diff"] = seen
    info["atol"] = _round_up(_HEADROOM * seen)
    info["vs_fp32"] = compare_with_fp32(fp32, small, texts, source.task)
    info["step_ratio"] = round(step_ratio(fp32, small), 4)
    before = source.metric(fp32) if source.metric else None
    after = source.metric(small) if source.metric else None
    if before is None or after is None:
        warnings.warn(f"{source.no_metric}, so the {mode} metric change is unknown", RnnkitWarning, stacklevel=4)
        return info
    name, b, higher = before
    a = after[1]
    # relative to the fp32 value; absolute where that is 0 (e.g. an accuracy of 0)
    drop = ((b - a) if higher else (a - b)) / (abs(b) or 1.0)
    info["metric"] = {"name": name, "fp32": b, "quantized": a, "relative_drop": drop, "examples": source.examples}
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


def sample_ids(ckpt: dict[str, Any], tokenizer, vocab) -> list[list[int]]:
    """Token ids of up to 8 of the checkpoint's validation examples (at most 300 tokens each)."""
    sample = (ckpt.get("valid_sample") or [])[:8]
    task = ckpt["task"]
    items = tokenize_examples(sample if task == "lm" else [tuple(e) for e in sample], task, tokenizer)
    tokens = items if task == "lm" else [t for t, _ in items]
    return [vocab.encode(t)[:300] for t in tokens if t]


# export_module's tokenizers by name: text is cut as given (no normalisation, no lowercasing),
# since a module's vocabulary holds its tokens as its own code cut them.
TOKENIZERS = {
    "char": lambda: CharTokenizer(normalize=None, lowercase=False, keep_whitespace=True),
    "jieba": lambda: WordTokenizer(normalize=None, lowercase=False, keep_whitespace=True),
    "whitespace": lambda: WhitespaceTokenizer(normalize=None, lowercase=False),
}


def export_module(module: nn.Module, out: str | Path, *, task: str, vocab: Sequence[str] | Mapping[str, int],
                  labels: Sequence[str] | Mapping[str, int] | None = None, tokenizer: str | Tokenizer = "char",
                  specials: Mapping[str, str] | None = None, opset: int = DEFAULT_OPSET, atol: float = 1e-5,
                  quantize: str | None = None, overwrite: bool = False, source: str | None = None) -> ExportReport:
    """Export a torch module written like the tutorials' (Embedding or one-hot → RNN/GRU/LSTM → Linear
    → (Log)Softmax) to one rnnkit file, proven to give the module's own outputs.

    ``vocab`` is the module's: a list (index = id) or a dict token → id; ``labels`` (classify,
    tag) likewise, in output order. Tokens named ``<pad>``/``<unk>``/``<bos>``/``<eos>``, or
    named in ``specials`` (``{"bos": "<s>"}``), become rnnkit's specials; an lm without a
    ``<bos>`` token starts its streams at zero state, and its logits for specials it never had
    are −1e4. ``tokenizer``: ``"char"``, ``"jieba"``, ``"whitespace"`` (text taken as given) or
    a runtime :class:`Tokenizer`. The file is written only when the parity gate passed: rnnkit's
    copy of the parts against the file (random states, streaming), and the module's own forward,
    called as it expects, against the file at every shape it accepts. ``quantize`` writes a
    quantized file as :func:`export_onnx` does, with the same checks but no validation metric
    (a module brings no validation data; the agreement with the fp32 file is measured instead).

    >>> export_module(model, "names.onnx", task="classify", vocab=chars, labels=countries)  # doctest: +SKIP
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not atol > 0:  # NaN too
        raise ConfigError(f"atol must be > 0, got {atol}")
    if quantize is not None and quantize not in MODES:
        raise ConfigError(f"unknown quantization {quantize!r}; choose one of {', '.join(MODES)}")
    started = time.perf_counter()
    out = Path(out)
    tok = tokenizer_named(tokenizer)
    parts = find_parts(module)
    rows = parts.embedding.num_embeddings if parts.embedding is not None else parts.inputs
    ids = source_ids(vocab, rows=rows, specials=specials)
    names = label_names(labels, task)
    model = build_model(parts, ids, task, len(names))
    _warn_unreachable(tok, ids.vocab.tokens[4:], tokenizer if isinstance(tokenizer, str) else tok.kind)
    modes = [(m, m.training) for m in module.modules()]  # each its own: a user may keep a part in eval mode
    attributes = attributes_of(module)  # a forward may keep a copy of what it computed (self.last = out)
    # nn.Embedding(max_norm=) renormalises its rows in place when the forward runs: put them back after
    renormed = parts.embedding.weight.detach().clone() \
        if parts.embedding is not None and parts.embedding.max_norm is not None else None
    module.eval()
    try:
        call = detect_call(module, parts, ids, model, task, atol=atol)
        info = {"class": f"{type(module).__module__}.{type(module).__qualname__}", "factory": source,
                "parts": parts.describe(), "call": call.to_dict(), "forward": call.describe(),
                **ids.to_dict()}
        bmes = task == "tag" and set(names) == {"B", "M", "E", "S"} and tok.kind == "char"
        spec = ModelSpec(
            task=task, cell=parts.cell, layers=parts.rnn.num_layers, hidden=parts.rnn.hidden_size,
            embed=parts.inputs, tokenizer=tok.to_config(), vocab=ids.vocab, labels=tuple(names),
            tag_scheme=("bmes" if bmes else "tags") if task == "tag" else "none", activation=parts.activation,
            unicode=UNICODE_VERSION,
            **dict(zip(("bos", "eos"), framing_of(ids, parts.outputs) if task == "lm" else (True, True))),
            provenance={"rnnkit": rnnkit_version(), "torch": str(torch.__version__),
                        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "module": info},
        )
        columns = output_columns(ids, task, parts.outputs)
        with atomic_path(out, overwrite=overwrite) as final, \
                tempfile.TemporaryDirectory(prefix="rnnkit-export-") as work:
            path = Path(work) / "model.onnx"
            trace_to_onnx(model, path, opset=opset)
            stamp_metadata(path, spec)
            parity = check_parity(model, path, atol=atol, columns=columns, raise_on_mismatch=False)
            module_parity(module, parts, ids, call, load_model(path, providers="cpu", threads=1), task, parity,
                          model=model)
            raise_on_mismatches(parity)
            quant = None
            if quantize is not None:
                quantizing = _Source(task, lambda q: dataclasses.replace(spec, quantization=q), None, 0,
                                     "a module brings no validation data", columns=columns)
                path, quant, spec = _write_quantized(quantize, path, quantizing, model, [], max_drop=math.inf)
            shutil.copyfile(path, final)
    finally:
        for m, training in modes:
            m.training = training
        restore_attributes(module, attributes)
        if renormed is not None:
            with torch.no_grad():
                parts.embedding.weight.copy_(renormed)
    size = out.stat().st_size
    log.info("wrote %s (%.1f KiB) from %s in %.1fs", out, size / 1024, parts.describe(), time.perf_counter() - started)
    return ExportReport(out, spec, size, time.perf_counter() - started, parity, quant, info)


def tokenizer_named(tokenizer: str | Tokenizer) -> Tokenizer:
    """The tokenizer of a :data:`TOKENIZERS` name (text taken as given), or ``tokenizer`` itself."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    if tokenizer not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}, or pass a "
                          "rnnkit.runtime tokenizer")
    return TOKENIZERS[tokenizer]()


def label_names(labels: Sequence[str] | Mapping[str, int] | None, task: str) -> list[str]:
    """The labels in output order, from a list or a dict label → output; checked for ``task``."""
    if task == "lm":
        if labels:
            raise ConfigError("an lm predicts tokens and takes no labels")
        return []
    if not labels:
        raise ConfigError(f"a {task} model needs its labels, in output order (a list, or a dict label → output)")
    if isinstance(labels, Mapping):
        order = sorted(labels.items(), key=lambda p: p[1])
        if [i for _, i in order] != list(range(len(order))):
            raise ModuleError(f"label outputs must be 0..{len(order) - 1}, each once; got {sorted(labels.values())}")
        labels = [name for name, _ in order]
    names = list(labels)
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ModuleError(f"labels must be distinct non-empty strings, got {names[:10]}")
    return names


def _warn_unreachable(tok: Tokenizer, tokens: list[str], name: str) -> None:
    """Warn about vocabulary tokens the tokenizer never produces (a text can never reach them)."""
    if tok.kind == "word" and getattr(tok, "segmenter", "jieba") == "jieba":
        return  # jieba cuts a word alone as it may not in context: no cheap exact test
    lost = [t for t in tokens if tok.tokenize(t) != [t]]
    if lost:
        warnings.warn(f"{len(lost)} of the vocabulary's {len(tokens)} tokens never come out of the {name} tokenizer "
                      f"(e.g. {lost[0]!r}): no text reaches them; check that tokenizer cuts text as the module's "
                      "own code did", RnnkitWarning, stacklevel=3)
