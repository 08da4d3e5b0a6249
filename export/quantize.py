"""Quantized files: the graph rewrites of ``--quantize int8 | int4 | int8-dynamic``.

Each mode starts from the checked fp32 file and rewrites its three weight-holding parts — the
embedding, the recurrent cells, the output layer (the "head") — then says what it did.

``int8`` (the default, batch-invariant)
    The head computes in int8 with standard ONNX operators, one activation scale **per row**:
    ``s = max |x| / 127`` over each row's hidden units, ``u8 = Round(x / s) + 128``, and
    ``MatMulInteger(u8, W8, zero point 128)`` against weights with one scale per output column,
    stored in a 7-bit range (±63): CPUs without VNNI add pairs of u8 × s8 products in 16 bits,
    which full-range weights overflow (measured: top-1 agreement 0.86 at ±127, 0.97 at ±63).
    Integer sums are exact and every other step is per element, so a row's logits do not depend
    on the other rows of its batch or on how its text was cut into calls. The embedding and the
    cells store int8 weights with one scale per row, ``Cast · Mul`` back to float32, which
    onnxruntime folds once at load: they compute exactly as fp32 files do.
``int4``
    The head is ``com.microsoft.MatMulNBits`` (4 bits, blocks of 32, ``accuracy_level`` 4: its
    activations are quantized per block of each row, so it is row-wise too) and the embedding
    ``com.microsoft.GatherBlockQuantized`` (4 bits, blocks of 64, or 32 where 64 does not divide
    its width); cells as in ``int8``. The
    file is about a fifth of fp32; its answers move further from fp32's.
``int8-dynamic``
    onnxruntime's ``quantize_dynamic``: one activation scale **per call** (``MatMulInteger``
    after ``DynamicQuantizeLinear``, ``DynamicQuantizeLSTM`` for LSTM cells). Its LSTM steps are
    the fastest, and its answers depend on the batch and the chunking: the metadata says so.
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
from onnx import TensorProto, helper, numpy_helper

from rnnkit.runtime import load_model
from rnnkit.runtime.errors import QuantizationError
from rnnkit.runtime.graphcheck import OLDEST_ONNXRUNTIME, required_onnxruntime
from rnnkit.runtime.onnxfile import read_onnx
from rnnkit.runtime.tokenizers import Tokenizer
from rnnkit.runtime.vocab import Vocabulary
from rnnkit.train.batches import encode_split, tokenize_examples
from rnnkit.train.evaluate import evaluate, primary_metric

__all__ = ["MODES", "OrtModule", "onnx_metric", "quantize_model", "store_cell_weights_int8"]

log = logging.getLogger(__name__)
_CELLS = ("RNN", "GRU", "LSTM")
_MS = "com.microsoft"
HEAD_WEIGHT_MAX = 63  # int8 head weights in ±63: u8 × s8 pairs stay within int16 on every x86 kernel
# int8 computes the head in int8 from this many weights (1 MiB of fp32) up; a smaller head is
# stored int8 and folded to fp32 like the cells: the row-wise scale costs a dozen small nodes a
# step (~25 µs here), more than an int8 product saves on a classifier's or tagger's few outputs.
HEAD_COMPUTE_INT8 = 1 << 18
BLOCK = 32  # int4: values per scale along the head's hidden axis
# and along the embedding's width: 64 where it divides (a scale is 4 bytes: 0.0625 of a byte a
# value, not 0.125; an embedding row is read, not summed over), else 32
EMBED_BLOCKS = (64, 32)
MODES = ("int8", "int4", "int8-dynamic")


def quantize_model(src: Path, dst: Path, mode: str) -> dict[str, Any]:
    """Write the ``mode`` version of the fp32 file ``src`` to ``dst``; return what it did.

    The dict is the metadata's ``quantization`` value less the measured figures: ``mode``,
    ``batch_invariant``, ``method``, ``operators`` (every operator the file uses beyond fp32's,
    as ``domain.Op``), ``min_onnxruntime``, and which ops compute quantized (``quantized_ops``),
    store int8 weights but compute in float32 (``weight_only_ops``) or stay fp32
    (``not_quantized_ops``).
    """
    if mode not in MODES:
        raise QuantizationError(f"unknown quantization {mode!r}; choose one of {', '.join(MODES)}")
    try:
        if mode == "int8-dynamic":
            info = _dynamic(src, dst)
        else:
            model = onnx.load(str(src))
            info = _rewrite(model, mode)
            onnx.checker.check_model(model, full_check=True)
            onnx.save(model, str(dst))
    except QuantizationError:
        raise
    except Exception as e:  # onnx's checker, protobuf and onnxruntime's passes raise their own types
        raise QuantizationError(f"could not quantize the model ({mode}): {str(e).splitlines()[0]}") from e
    before = _ops(onnx.load(str(src)))
    after = _ops(onnx.load(str(dst)))
    info["operators"] = sorted(after - before)
    # what the written graph's operators need (GatherBlockQuantized on uint8 data: 1.22; it
    # takes a ``bits`` attribute only from 1.23, so int4 leaves it at its default, 4)
    info["min_onnxruntime"] = required_onnxruntime(read_onnx(dst.read_bytes())) or OLDEST_ONNXRUNTIME
    return info


def _ops(model: onnx.ModelProto) -> set[str]:
    return {f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in model.graph.node}


# -- int8 and int4: rewrites of rnnkit's own graph -------------------------------------------------
def _rewrite(model: onnx.ModelProto, mode: str) -> dict[str, Any]:
    parts = _Parts(model)
    quantized: Counter[str] = Counter()
    weight_only: Counter[str] = Counter()
    block = next((b for b in EMBED_BLOCKS if parts.embed % b == 0), None) if mode == "int4" else None
    embedding_int4 = block is not None
    if embedding_int4:
        _gather_block_quantized(parts, block)
        quantized["Gather"] += 1
    else:
        _fold_int8(parts, parts.embedding.input[0], axes=(1,))
        weight_only["Gather"] += 1
    for cell in parts.cells:
        for slot in (1, 2):  # W, R: (directions, gates × hidden, inputs)
            _fold_int8(parts, cell.input[slot], axes=(0, 2))
        weight_only[cell.op_type] += 1
    head_weights = int(np.prod(parts.weights[parts.head.input[1]].dims))
    head_int8 = mode == "int8" and head_weights >= HEAD_COMPUTE_INT8
    if mode == "int4":
        _matmul_nbits(parts)
    elif head_int8:
        _rowwise_int8_head(parts)
    else:  # (hidden, n_out): one scale per output column
        _fold_int8(parts, parts.head.input[1], axes=(0,))
        weight_only["MatMul"] += 1
    if mode == "int4" or head_int8:
        quantized["MatMul"] += 1
    parts.finish()
    if mode == "int4" and _MS not in {o.domain for o in model.opset_import}:
        model.opset_import.append(helper.make_opsetid(_MS, 1))
    method = ("int8 head with one activation scale per row (MatMulInteger, u8 zero point 128, weights ±63 "
              "with one scale per column); embedding and cell weights int8 with one scale per row, "
              "folded to float32 at load")
    if mode == "int8" and not head_int8:
        method = (f"embedding, cell and output-layer weights int8 with one scale per row (per column for the "
                  f"output layer), folded to float32 at load; the output layer's {head_weights} weights compute in "
                  f"fp32 (fewer than {HEAD_COMPUTE_INT8}: an int8 product would cost more than it saves)")
    if mode == "int4":
        method = (f"int4 head (MatMulNBits, blocks of {BLOCK}, accuracy_level 4) and "
                  + (f"int4 embedding (GatherBlockQuantized, blocks of {block}); " if embedding_int4 else
                     f"int8 embedding folded at load (its width {parts.embed} is not a multiple of "
                     f"{EMBED_BLOCKS[-1]}); ")
                  + "cell weights int8 with one scale per row, folded to float32 at load")
    return {"mode": mode, "batch_invariant": True, "method": method, "quantized_ops": dict(quantized),
            "weight_only_ops": dict(weight_only), "not_quantized_ops": {}}


class _Edit:
    """A graph being rewritten: its weights, and the constant folds to place first."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.weights = {init.name: init for init in model.graph.initializer}
        self.added: list[onnx.NodeProto] = []

    def take(self, name: str) -> np.ndarray:
        """Remove weight ``name`` from the graph and return its values."""
        values = numpy_helper.to_array(self.weights[name])
        self.model.graph.initializer.remove(self.weights.pop(name))
        return values

    def constant(self, name: str, values: np.ndarray) -> str:
        self.model.graph.initializer.append(numpy_helper.from_array(values, name))
        return name


class _Parts(_Edit):
    """The embedding, cells and head of an rnnkit graph, and the nodes that replace them."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__(model)
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
        nodes = list(graph.node)
        gathers = [n for n in nodes if n.op_type == "Gather" and n.input[0] in self.weights]
        heads = [n for n in nodes if n.op_type == "MatMul" and n.input[1] in self.weights]
        self.cells = [n for n in nodes if n.op_type in _CELLS]
        if len(gathers) != 1 or len(heads) != 1 or not self.cells:
            raise QuantizationError("the graph is not rnnkit's embedding → cells → output layer; export the "
                                    "checkpoint again without --quantize to check it")
        self.embedding, self.head = gathers[0], heads[0]
        self.vocab, self.embed = self.weights[self.embedding.input[0]].dims
        users = Counter(name for node in nodes for name in node.input)
        users.update(i.name for i in graph.input)
        users.update(o.name for o in graph.output)
        shared = [name for name in (self.embedding.input[0], self.head.input[1],
                                    *(c.input[s] for c in self.cells for s in (1, 2))) if users[name] != 1]
        if shared:
            raise QuantizationError(f"weight {shared[0]!r} is used more than once; rnnkit's graphs never share one")
        self.replaced: dict[str, list[onnx.NodeProto]] = {}  # a node's output → the nodes computing it instead

    def finish(self) -> None:
        graph = self.model.graph
        nodes = []
        for node in graph.node:
            nodes.extend(self.replaced.get(node.output[0], [node]))
        del graph.node[:]
        graph.node.extend([*self.added, *nodes])


def _fold_int8(parts: _Edit, name: str, *, axes: tuple[int, ...]) -> None:
    """Store weight ``name`` as int8 with one symmetric scale per row (reduced over ``axes``);
    ``Cast(to float) · scale`` computes it again from constants, which a runtime folds at load.
    (A ``DequantizeLinear`` would say the same, but onnxruntime keeps those unfolded for its QDQ
    fusions and would dequantize on every call.)"""
    w = parts.take(name).astype(np.float32)
    scale = np.abs(w).max(axis=axes, keepdims=True) / 127
    scale[scale == 0] = 1
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    parts.constant(f"{name}.int8", q)
    parts.constant(f"{name}.scale", scale.astype(np.float32))
    parts.added += [helper.make_node("Cast", [f"{name}.int8"], [f"{name}.cast"], name=f"{name}.cast",
                                     to=TensorProto.FLOAT),
                    helper.make_node("Mul", [f"{name}.cast", f"{name}.scale"], [name], name=f"{name}.mul")]


def _rowwise_int8_head(parts: _Parts) -> None:
    head = parts.head
    x, y, name = head.input[0], head.output[0], head.input[1]
    w = parts.take(name).astype(np.float32)  # (hidden, n_out)
    column = np.abs(w).max(axis=0) / HEAD_WEIGHT_MAX
    column[column == 0] = 1
    q = np.clip(np.rint(w / column), -HEAD_WEIGHT_MAX, HEAD_WEIGHT_MAX).astype(np.int8)
    p = "head.q."
    c = {key: parts.constant(p + key, np.array(v, dtype)) for key, v, dtype in (
        ("tiny", 1e-30, np.float32), ("levels", 127, np.float32), ("offset", 128, np.float32),
        ("low", 0, np.float32), ("high", 255, np.float32), ("zero_point", 128, np.uint8))}
    weight = parts.constant(p + "weight", q)
    column_scale = parts.constant(p + "column_scale", column.astype(np.float32))
    if parts.opset >= 18:  # ReduceMax's axes became an input
        axes = parts.constant(p + "axes", np.array([-1], np.int64))
        reduce = helper.make_node("ReduceMax", [p + "abs", axes], [p + "absmax"], name=p + "absmax", keepdims=1)
    else:
        reduce = helper.make_node("ReduceMax", [p + "abs"], [p + "absmax"], name=p + "absmax", axes=[-1], keepdims=1)

    def node(op: str, ins: list[str], out: str, **attrs) -> onnx.NodeProto:
        return helper.make_node(op, ins, [out], name=out, **attrs)

    parts.replaced[head.output[0]] = [
        node("Abs", [x], p + "abs"),
        reduce,
        node("Max", [p + "absmax", c["tiny"]], p + "range"),  # a row of zeros gets a scale, not 0/0
        node("Div", [p + "range", c["levels"]], p + "row_scale"),  # (…, 1): one scale per row
        node("Div", [x, p + "row_scale"], p + "scaled"),
        node("Round", [p + "scaled"], p + "rounded"),
        node("Add", [p + "rounded", c["offset"]], p + "shifted"),
        node("Clip", [p + "shifted", c["low"], c["high"]], p + "clipped"),
        node("Cast", [p + "clipped"], p + "u8", to=TensorProto.UINT8),
        node("MatMulInteger", [p + "u8", weight, c["zero_point"]], p + "i32"),
        node("Cast", [p + "i32"], p + "sums", to=TensorProto.FLOAT),
        node("Mul", [p + "sums", column_scale], p + "columns"),
        helper.make_node("Mul", [p + "columns", p + "row_scale"], [y], name=p + "out"),
    ]


def _blocks(w: np.ndarray, bits: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``w`` (rows, k) as unsigned ``bits``-bit codes (zero point 2^(bits-1)) in blocks of ``size``
    along k, padded with zeros; returns (codes (rows, blocks, size), scales (rows, blocks))."""
    rows, k = w.shape
    blocks = -(-k // size)
    padded = np.zeros((rows, blocks * size), np.float32)
    padded[:, :k] = w
    padded = padded.reshape(rows, blocks, size)
    top = 2 ** (bits - 1) - 1
    scale = np.abs(padded).max(axis=2) / top
    scale[scale == 0] = 1
    codes = np.clip(np.rint(padded / scale[..., None]), -top, top).astype(np.int16) + 2 ** (bits - 1)
    return codes.astype(np.uint8), scale.astype(np.float32)


def _pack4(codes: np.ndarray) -> np.ndarray:
    """Two 4-bit codes a byte, the first in the low nibble."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def _matmul_nbits(parts: _Parts) -> None:
    head = parts.head
    w = parts.take(head.input[1]).astype(np.float32)  # (hidden, n_out)
    k, n = w.shape
    codes, scale = _blocks(np.ascontiguousarray(w.T), 4, BLOCK)  # (n, blocks, BLOCK)
    weight = parts.constant("head.q4.weight", _pack4(codes))
    scales = parts.constant("head.q4.scales", scale.reshape(-1))
    parts.replaced[head.output[0]] = [helper.make_node(
        "MatMulNBits", [head.input[0], weight, scales], [head.output[0]], name="head.q4", domain=_MS,
        K=k, N=n, bits=4, block_size=BLOCK, accuracy_level=4)]


def _gather_block_quantized(parts: _Parts, block: int) -> None:
    gather = parts.embedding
    w = parts.take(gather.input[0]).astype(np.float32)  # (vocab, embed), embed a multiple of block
    codes, scale = _blocks(w, 4, block)
    data = parts.constant("embedding.q4.data", _pack4(codes.reshape(w.shape[0], -1)))
    scales = parts.constant("embedding.q4.scales", scale)
    parts.replaced[gather.output[0]] = [helper.make_node(
        "GatherBlockQuantized", [data, gather.input[1], scales], [gather.output[0]], name="embedding.q4",
        domain=_MS, gather_axis=0, quantize_axis=1, block_size=block)]  # 4 bits: without ``bits``, from 1.22


# -- int8-dynamic: onnxruntime's quantize_dynamic ------------------------------------------------
def _dynamic(src: Path, dst: Path) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    before = Counter(n.op_type for n in onnx.load(str(src)).graph.node)
    with _root_logging_untouched():
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gather", "LSTM"],
                         weight_type=QuantType.QInt8, per_channel=False, reduce_range=True)
    after = Counter(n.op_type for n in onnx.load(str(dst)).graph.node)
    quantized = {}
    if after.get("DynamicQuantizeLSTM"):
        quantized["LSTM"] = after["DynamicQuantizeLSTM"]
    if after.get("MatMulInteger"):
        quantized["MatMul"] = after["MatMulInteger"]
    if after.get("DequantizeLinear") and before.get("Gather"):
        quantized["Gather"] = max(before.get("Gather", 0) - after.get("Gather", 0), 1)
    not_quantized = {op: n for op, n in before.items() if op in _CELLS and op not in quantized}
    weight_only = store_cell_weights_int8(dst)
    return {"mode": "int8-dynamic", "batch_invariant": False,
            "method": "onnxruntime.quantize_dynamic (weights int8 in a 7-bit range, activations quantized "
                      "with one scale per call: answers depend on the batch and on how a text is cut)",
            "quantized_ops": quantized, "not_quantized_ops": not_quantized, "weight_only_ops": weight_only}


def store_cell_weights_int8(path: Path) -> dict[str, int]:
    """Store the W and R matrices of every GRU/RNN node in ``path`` as int8; return op type → count.

    What ``int8-dynamic`` does for the cells onnxruntime has no int8 kernel for: each matrix
    ``[directions, gates × hidden, inputs]`` becomes int8 with one symmetric scale per row.
    """
    model = onnx.load(str(path))
    graph = model.graph
    parts = _Edit(model)
    weights = dict(parts.weights)
    users = Counter(name for node in graph.node for name in node.input)
    users.update(i.name for i in graph.input)  # an initializer that is also an input can be fed: keep it
    users.update(o.name for o in graph.output)
    done: Counter[str] = Counter()
    for node in graph.node:
        if node.op_type not in ("GRU", "RNN"):
            continue
        stored = False
        for slot in (1, 2):  # W, R
            name = node.input[slot]
            init = weights.get(name)
            if init is None or init.data_type != TensorProto.FLOAT or users[name] != 1:
                continue
            stored = True
            _fold_int8(parts, name, axes=(0, 2))
        if stored:
            done[node.op_type] += 1
    if not parts.added:
        return {}
    for node in reversed(parts.added):  # constants first: the node list stays topologically sorted
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
