"""int8 by onnxruntime's dynamic quantization, judged on the checkpoint's validation sample.

onnxruntime quantizes MatMul (the output layer), Gather (the embedding) and LSTM
(``DynamicQuantizeLSTM``), with weights in a 7-bit range (``reduce_range``): on CPUs without
VNNI its u8 × s8 kernels add pairs of products in 16 bits, which full-range weights overflow.
It has no quantized GRU or RNN kernel, so those cells compute in
fp32. Their weight matrices are still stored as int8 (symmetric, one scale per gate row) and
turned back into fp32 by a ``Cast`` and a ``Mul`` of constants, which onnxruntime (and any
runtime that folds constants) folds once at load: the file shrinks and, with graph
optimisations on (onnxruntime's default, and always in rnnkit's runtime unless the caller's
``sess_options`` turn them off), a step costs what it did.
The report says which ops were quantized rather than letting "int8" imply all of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from rnnkit.runtime import load_model
from rnnkit.runtime.errors import QuantizationError
from rnnkit.runtime.tokenizers import Tokenizer
from rnnkit.runtime.vocab import Vocabulary
from rnnkit.train.batches import encode_split, tokenize_examples
from rnnkit.train.evaluate import evaluate, primary_metric

__all__ = ["OrtModule", "onnx_metric", "quantize_int8", "store_cell_weights_int8"]

log = logging.getLogger(__name__)
_CELLS = {"RNN", "GRU", "LSTM"}
_QUANTIZABLE = ["MatMul", "Gather", "LSTM"]


def quantize_int8(src: Path, dst: Path) -> dict[str, Any]:
    """Write the int8 version of ``src`` to ``dst``; return what was and was not quantized."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    before = Counter(n.op_type for n in onnx.load(str(src)).graph.node)
    try:
        with _root_logging_untouched():
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=_QUANTIZABLE,
                             weight_type=QuantType.QInt8, per_channel=False, reduce_range=True)
    except Exception as e:  # onnxruntime raises plain Exceptions from its graph passes
        raise QuantizationError(f"onnxruntime could not quantize the model: {str(e).splitlines()[0]}") from e
    after = Counter(n.op_type for n in onnx.load(str(dst)).graph.node)
    quantized = {}
    if after.get("DynamicQuantizeLSTM"):
        quantized["LSTM"] = after["DynamicQuantizeLSTM"]
    if after.get("MatMulInteger"):
        quantized["MatMul"] = after["MatMulInteger"]
    gathers = before.get("Gather", 0) - after.get("Gather", 0)
    if after.get("DequantizeLinear") and before.get("Gather"):
        quantized["Gather"] = max(gathers, 1)
    not_quantized = {op: n for op, n in before.items() if op in _CELLS and op not in quantized}
    if not_quantized:
        log.info("not quantized (onnxruntime has no int8 kernel): %s", ", ".join(not_quantized))
    try:
        weight_only = store_cell_weights_int8(dst)
    except Exception as e:  # onnx's checker and protobuf raise their own types
        raise QuantizationError(f"could not store the GRU/RNN weights as int8: {str(e).splitlines()[0]}") from e
    return {"quantized_ops": quantized, "not_quantized_ops": not_quantized, "weight_only_ops": weight_only}


def store_cell_weights_int8(path: Path) -> dict[str, int]:
    """Store the W and R matrices of every GRU/RNN node in ``path`` as int8; return op type → count.

    Each matrix ``[directions, gates × hidden, inputs]`` becomes int8 with one symmetric scale per
    row (``max |row| / 127``), and ``Cast(to float) · scale`` feeds the cell the fp32 weights again.
    Both inputs are constants, so a runtime folds them when it loads the model. (A
    ``DequantizeLinear`` would say the same, but onnxruntime keeps those unfolded for its QDQ
    fusions and would dequantize on every call.)
    """
    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    users = Counter(name for node in graph.node for name in node.input)
    users.update(i.name for i in graph.input)  # an initializer that is also an input can be fed: keep it
    users.update(o.name for o in graph.output)
    added: list[onnx.NodeProto] = []
    done: Counter[str] = Counter()
    for node in graph.node:
        if node.op_type not in ("GRU", "RNN"):
            continue
        stored = False
        for slot in (1, 2):  # W, R
            name = node.input[slot]
            init = weights.get(name)
            if init is None or init.data_type != onnx.TensorProto.FLOAT or users[name] != 1:
                continue
            stored = True
            w = numpy_helper.to_array(init)  # (directions, gates × hidden, inputs)
            scale = np.abs(w).max(axis=(0, 2), keepdims=True) / 127  # (1, rows, 1)
            scale[scale == 0] = 1
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            graph.initializer.remove(init)
            graph.initializer.extend([numpy_helper.from_array(q, f"{name}.int8"),
                                      numpy_helper.from_array(scale.astype(np.float32), f"{name}.scale")])
            added += [helper.make_node("Cast", [f"{name}.int8"], [f"{name}.cast"], name=f"{name}.cast",
                                       to=onnx.TensorProto.FLOAT),
                      helper.make_node("Mul", [f"{name}.cast", f"{name}.scale"], [name], name=f"{name}.mul")]
        if stored:
            done[node.op_type] += 1
    if not added:
        return {}
    for node in reversed(added):  # constants first: the node list stays topologically sorted
        graph.node.insert(0, node)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return dict(done)


@contextlib.contextmanager
def _root_logging_untouched() -> Iterator[None]:
    """Keep ``quantize_dynamic`` from printing and from configuring the host's logging.

    It logs through the root logger (``logging.warning``), which calls ``logging.basicConfig()``
    when the root has no handler: a stderr handler then stays installed in the caller's process.
    Its one warning advises shape pre-processing, which dynamic quantization of this graph does
    not need.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()  # a handler, so basicConfig() is not called behind our back

    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in str(record.msg)

    root.addHandler(guard)
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(guard)


class OrtModule:
    """An ONNX file behind the call signature of ``RNNModel``, so torch-side metrics apply."""

    training = False

    def __init__(self, path: Path) -> None:
        self.model = load_model(path, providers="cpu", threads=1)  # the one way a file is run
        self.lstm = self.model.metadata.n_state == 2

    def eval(self) -> OrtModule:
        return self

    def train(self, mode: bool = True) -> OrtModule:
        return self

    def __call__(self, tokens: torch.Tensor, state=None):
        if state is not None:  # RNNModel's form: h, or (h, c) for LSTM, as tensors or arrays
            state = [np.asarray(s, np.float32) for s in (state if isinstance(state, tuple) else (state,))]
        logits, new = self.model.run(tokens.cpu().numpy(), state)
        out = [torch.from_numpy(o) for o in (logits, *new)]
        return out[0], (tuple(out[1:]) if self.lstm else out[1])


def onnx_metric(path: Path, ckpt: dict[str, Any], tokenizer: Tokenizer, vocab: Vocabulary,
                ) -> tuple[str, float, bool] | None:
    """The task's validation metric of the ONNX file on the checkpoint's validation sample.

    Returns (name, value, higher_is_better), or None when the checkpoint holds no sample.
    """
    sample = ckpt.get("valid_sample") or []
    if not sample:
        return None
    task, scheme = ckpt["task"], ckpt.get("tag_scheme", "none")
    cfg = ckpt.get("train_config", {})
    examples = sample if task == "lm" else [tuple(e) for e in sample]
    items = tokenize_examples(examples, task, tokenizer)
    data, _ = encode_split(items, task, vocab, ckpt["labels"], batch_size=1, bptt=256,
                           max_len=cfg.get("max_len", 256), lookahead=cfg.get("lookahead") or 0)
    name, higher = primary_metric(task, scheme)
    if task == "lm":
        name, higher = "perplexity", False
    module = OrtModule(path)
    metrics = evaluate(module, data, task, tag_scheme=scheme, labels=list(ckpt["labels"]), batch_size=32)
    return name, float(metrics[name]), higher
