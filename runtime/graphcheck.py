"""What a model file may ask of onnxruntime, checked from its bytes before a session exists.

A file rnnkit did not make may hold any graph: a ``Loop`` that never ends, a constant that
folds into gigabytes while the session is built, a head wider than its metadata says. The
checks here accept exactly the graphs rnnkit's exporters write — their operators (listed per
quantization mode, every opset the exporter targets), one embedding ``Gather`` on the tokens,
``layers`` recurrent nodes of ``hidden`` units, one head of ``hidden × n_out``, static sizes
equal to the metadata — and size the memory a session needs from those declared sizes
(:class:`Budget`), so a call that would not fit is refused before anything is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .contract import INPUT_TOKENS, KEYS, ModelSpec
from .errors import MetadataError, ModelFileError, NonFiniteError
from .onnxfile import OnnxModel, Tensor
from .shapes import ShapeRefused, broadcast, elements, infer_shapes
from .text import byte_size

__all__ = ["DEFAULT_CALL_BYTES", "MAX_WEIGHT_BYTES", "OLDEST_ONNXRUNTIME", "OPERATORS", "Budget", "check_model",
           "operators_for", "required_onnxruntime"]

# onnx's TensorProto.DataType codes of the tensors rnnkit writes, and their sizes in bytes
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8}
_FLOAT, _INT64 = 1, 7
_TYPE_NAMES = {1: "tensor(float)", 7: "tensor(int64)"}

_RECURRENT = {"RNN": 1, "GRU": 3, "LSTM": 4, "DynamicQuantizeLSTM": 4}  # op → gates
_MS = "com.microsoft"
_FP32_OPS = frozenset({"Gather", "Transpose", "RNN", "GRU", "LSTM", "Constant", "Squeeze", "Slice", "Concat",
                       "MatMul", "Add"})
_FOLDS = {"Cast", "Mul"}  # int8 weights, Cast · Mul back to float32 at load (embedding, cells)
# int8: the head quantizes each row of activations by its own scale (Abs, ReduceMax … Cast to
# uint8, MatMulInteger, Cast, Mul).
_ROWWISE_OPS = _FP32_OPS | _FOLDS | {"Abs", "ReduceMax", "Max", "Div", "Round", "Clip", "MatMulInteger"}
# int8-dynamic, and int8 files written before it was row-wise: onnxruntime's quantize_dynamic.
_DYNAMIC_OPS = _FP32_OPS | _FOLDS | {"DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger"}
OPERATORS: dict[str, frozenset[tuple[str, str]]] = {
    "none": frozenset(("", op) for op in _FP32_OPS),
    "int8": frozenset(("", op) for op in _ROWWISE_OPS),
    "int4": frozenset({*(("", op) for op in _FP32_OPS | _FOLDS), (_MS, "MatMulNBits"), (_MS, "GatherBlockQuantized")}),
    "int8-dynamic": frozenset({*(("", op) for op in _DYNAMIC_OPS), (_MS, "DynamicQuantizeLSTM")}),
}
_HEADS = {"MatMul", "MatMulInteger", "MatMulNBits"}
_EMBEDDINGS = {"Gather", "GatherBlockQuantized"}


# The onnxruntime rnnkit supports (pyproject's lower bound): fp32 files and every int8 scheme run
# there. Two contrib operators' forms arrived later (measured on every release from 1.17.3):
# MatMulNBits at 8 bits and GatherBlockQuantized on uint8 data, in 1.22.
OLDEST_ONNXRUNTIME = "1.17"
_NEWER_OPERATORS = "1.22"


def required_onnxruntime(model: OnnxModel) -> str | None:
    """The onnxruntime the graph's own operators need beyond the oldest supported (None: no more),
    whatever its metadata says."""
    for node in model.nodes:
        bits = node.attributes.get("bits")
        if node.op_type == "GatherBlockQuantized" or (node.op_type == "MatMulNBits" and bits is not None
                                                       and bits.i == 8):
            return _NEWER_OPERATORS
    return None


def operators_for(quantization: dict) -> frozenset[tuple[str, str]]:
    """The (domain, operator) pairs a file of this ``quantization`` metadata may use.

    An ``int8`` file without ``"batch_invariant": true`` was written by the dynamic scheme
    before int8 became row-wise, and keeps loading with that scheme's operators.
    """
    mode = quantization.get("mode", "none")
    if mode == "int8" and quantization.get("batch_invariant") is not True:
        mode = "int8-dynamic"
    return OPERATORS.get(mode, OPERATORS["none"])


_OPSETS = {"": (14, 25), "com.microsoft": (1, 1)}  # the exporter writes opset 14 … the newest torch knows
_FOLDABLE = frozenset({"Constant", *_FOLDS})  # nodes allowed to compute from constants alone

MAX_WEIGHT_BYTES = 8 << 30  # every constant, int8 weights counted as the float32 they fold into
DEFAULT_CALL_BYTES = 2 << 30


@dataclass(frozen=True)
class Budget:
    """The memory a session call needs, from the model's declared sizes.

    ``row_bytes`` bounds what one token of one row keeps alive during a call (the embedding,
    every layer's gates and outputs, the logits before and after the bias); ``state_bytes`` is
    one row's state. A call of ``batch × seq`` tokens needs about ``batch × (seq × row_bytes +
    2 × state_bytes)``; ``max_call_bytes`` caps it.
    """

    row_bytes: int
    state_bytes: int
    weight_bytes: int
    max_call_bytes: int = DEFAULT_CALL_BYTES

    def call_bytes(self, batch: int, seq: int) -> int:
        return batch * (seq * self.row_bytes + 2 * self.state_bytes)

    def max_batch(self) -> int:
        """The most rows a call of one step may have."""
        return self.max_call_bytes // (self.row_bytes + 2 * self.state_bytes)

    def max_seq(self, batch: int) -> int:
        """The longest sequence a call of ``batch`` rows may have (0: not even one token fits)."""
        batch = max(batch, 1)  # an empty batch runs nothing; it fits where one row does
        room = self.max_call_bytes - batch * 2 * self.state_bytes
        return max(0, room // (batch * self.row_bytes))


def check_model(model: OnnxModel, spec: ModelSpec, path: Path, *, max_call_bytes: int = DEFAULT_CALL_BYTES) -> Budget:
    """Refuse a graph rnnkit's exporters would not write; return the memory it needs per call.

    Raises :class:`MetadataError` where the graph contradicts the metadata and
    :class:`ModelFileError` where it asks for what rnnkit never runs.
    """
    if not model.has_graph:
        raise ModelFileError(f"{path} is not an ONNX model or is truncated (it has no graph); "
                             "re-export it with `rnnkit export`")
    _check_io(model, spec, path)
    _check_structure(model, spec, path)
    constants, values = _check_tensors(model, path)
    weight_bytes = _check_nodes(model, spec, path, constants)
    try:
        shapes, usage = infer_shapes(model.nodes, spec, constants, values)
    except ShapeRefused as e:
        raise ModelFileError(f"{path}: {e}, which rnnkit's exporters never write; refused") from e
    for name, want in ((spec.output_names[0], ("B", "T", spec.n_out)),
                       *((o, (spec.layers, "B", spec.hidden)) for _, o in spec.state_names)):
        got = shapes.get(name)
        if got != want:
            shown = "unknown" if got is None else list(got)
            raise MetadataError(f"inconsistent model: the graph computes {name!r} of shape {shown}, "
                                f"not {list(want)}; re-export the model", None)
    # every activation alive at once, and the recurrent kernels' gates: an upper bound of a call's peak
    row_bytes = 4 * (usage.per_token + usage.workspace)
    state_bytes = 4 * max(usage.per_row, spec.n_state * spec.layers * spec.hidden)
    budget = Budget(row_bytes, state_bytes, weight_bytes, max_call_bytes)
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise ModelFileError(f"{path} declares {byte_size(weight_bytes)} of weights, more than rnnkit loads "
                             f"({byte_size(MAX_WEIGHT_BYTES)}); refused")
    if budget.max_seq(1) < 1:
        raise ModelFileError(f"{path}: one token of one row needs {byte_size(budget.call_bytes(1, 1))} "
                             f"(logits {spec.n_out}, state {spec.layers} × {spec.hidden}, embedding {spec.embed}), "
                             f"more than the {byte_size(max_call_bytes)} a call may use (max_call_bytes)")
    return budget


# -- inputs and outputs -------------------------------------------------------------------------
def _check_io(model: OnnxModel, spec: ModelSpec, path: Path) -> None:
    init_names = {t.name for t in model.initializers}
    inputs = {v.name: v for v in model.inputs if v.name not in init_names}  # old IRs list weights as inputs
    outputs = {v.name: v for v in model.outputs}
    if set(inputs) != set(spec.input_names) or list(outputs) != list(spec.output_names):
        raise MetadataError(f"inconsistent model: the graph's inputs/outputs {sorted(inputs)} → {list(outputs)} "
                            f"do not fit its metadata's cell {spec.cell!r} (expected inputs "
                            f"{list(spec.input_names)}); re-export it", None)
    for name, info in [*inputs.items(), *outputs.items()]:
        want = _INT64 if name == INPUT_TOKENS else _FLOAT
        rank = 2 if name == INPUT_TOKENS else 3
        if info.elem_type != want or info.shape is None or len(info.shape) != rank:
            shape = None if info.shape is None else [d.value if d.value is not None else d.param for d in info.shape]
            kind = _TYPE_NAMES.get(info.elem_type, info.elem_type)
            raise MetadataError(f"inconsistent model: the graph's {name!r} is {kind} "
                                f"of shape {shape}, not {_TYPE_NAMES[want]} of rank {rank}; re-export it", None)
    logits = spec.output_names[0]
    for name, info in [*inputs.items(), *outputs.items()]:
        sequence = name in (INPUT_TOKENS, logits)  # (batch, seq[, n_out]); states are (layers, batch, hidden)
        free = ((0, "batch"), (1, "sequence")) if sequence else ((1, "batch"),)
        for axis, what in free:
            if info.shape[axis].value is not None:
                raise ModelFileError(f"{path}: the graph fixes {name!r}'s {what} axis to {info.shape[axis].value}; "
                                     "rnnkit models take any batch and length: re-export it with `rnnkit export`")
        fixed = ((2, "last axis"),) if name == logits else () if sequence else ((0, "layer axis"), (2, "hidden axis"))
        for axis, what in fixed:
            if info.shape[axis].value is None:
                raise MetadataError(f"inconsistent model: the graph leaves {name!r}'s {what} dynamic; rnnkit's "
                                    "graphs fix it to the metadata's size: re-export the model", None)
        if name == logits:
            spec.check_graph(n_out=info.shape[2].value, layers=None, hidden=None)
        elif not sequence:
            spec.check_graph(n_out=None, layers=info.shape[0].value, hidden=info.shape[2].value)


# -- what the file holds besides one graph of nodes ---------------------------------------------
def _check_structure(model: OnnxModel, spec: ModelSpec, path: Path) -> None:
    if model.functions or model.training_info or model.sparse_initializers:
        what = "local functions" if model.functions else "training info" if model.training_info \
            else "sparse initializers"
        raise ModelFileError(f"{path} holds {what}, which rnnkit's exporters never write; refused")
    for domain, version in model.opsets.items():
        lo, hi = _OPSETS.get(domain or "", (None, None))
        if lo is None:
            raise ModelFileError(f"{path} imports operator set {domain!r}, which rnnkit's exporters never use; refused")
        if not lo <= version <= hi:
            raise ModelFileError(f"{path} uses opset {version} of {domain or 'ai.onnx'!r}; rnnkit reads "
                                 f"{lo}…{hi}: re-export it with `rnnkit export`")
    mode = spec.quantization.get("mode", "none")
    if mode == "int8-dynamic" and spec.quantization.get("batch_invariant") is not False:
        raise MetadataError("inconsistent model: int8-dynamic files are not batch-invariant, yet this one's "
                            "metadata does not say so; re-export the model", KEYS.QUANTIZATION)
    allowed = operators_for(spec.quantization)
    for node in model.nodes:
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        if (domain, node.op_type) not in allowed:
            where = f"{domain}." if domain else ""
            hint = " (control flow)" if node.op_type in ("Loop", "If", "Scan") else ""
            legacy = (" (a file without \"batch_invariant\": true, read as the dynamic scheme of older files)"
                      if mode == "int8" and spec.quantization.get("batch_invariant") is not True else "")
            raise ModelFileError(f"{path} uses operator {where}{node.op_type}{hint}, which rnnkit's exporters "
                                 f"do not write for quantization {mode!r}{legacy}; refused: export models with "
                                 "`rnnkit export`")
        for attribute in node.attributes.values():
            if attribute.has_graph or attribute.has_sparse:
                raise ModelFileError(f"{path}: node {node.op_type} carries a subgraph or a sparse tensor "
                                     f"({attribute.name!r}), which rnnkit's exporters never write; refused")


# -- constants ----------------------------------------------------------------------------------
def _check_tensors(model: OnnxModel, path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """The shape of every constant (initializers, Constant nodes), each checked against its bytes,
    and the values of the small integer ones (the axes and bounds of Slice and Squeeze)."""
    folder = path.parent
    shapes: dict[str, tuple[int, ...]] = {}
    values: dict[str, tuple[int, ...]] = {}
    for tensor in model.initializers:
        _check_tensor(tensor, path, folder)
        shapes[tensor.name] = tensor.dims
        _keep_value(tensor, tensor.name, values)
    for node in model.nodes:
        if node.op_type != "Constant":
            continue
        attrs = node.attributes
        if set(attrs) - {"value", "value_float", "value_floats", "value_int", "value_ints"} or len(attrs) != 1:
            raise ModelFileError(f"{path}: a Constant node with attributes {sorted(attrs)}, which rnnkit's "
                                 "exporters never write; refused")
        (name, attr), = attrs.items()
        if name == "value":
            if attr.tensor is None:
                raise ModelFileError(f"{path}: a Constant node without its tensor; the file is corrupt")
            if attr.tensor.external is not None:  # onnxruntime would look for it where the process runs
                raise ModelFileError(f"{path}: a Constant node keeps its tensor in an external file, which "
                                     "rnnkit's exporters never write; refused")
            _check_tensor(attr.tensor, path, folder)
            dims = attr.tensor.dims
        else:
            dims = () if name in ("value_float", "value_int") else (attr.count,)
        for out in node.outputs:
            shapes[out] = dims
            if name == "value":
                _keep_value(attr.tensor, out, values)
            elif name in ("value_int", "value_ints"):
                values[out] = (attr.i,) if name == "value_int" else attr.ints
    return shapes, values


def _keep_value(tensor: Tensor, name: str, values: dict[str, tuple[int, ...]]) -> None:
    if tensor.data_type == _INT64 and tensor.raw is not None and tensor.elements <= 64:
        values[name] = tuple(int(v) for v in np.frombuffer(tensor.raw, "<i8"))


def _check_tensor(tensor: Tensor, path: Path, folder: Path) -> None:
    item = _ITEMSIZE.get(tensor.data_type)
    if item is None:
        raise ModelFileError(f"{path}: tensor {tensor.name!r} has element type {tensor.data_type}, which "
                             "rnnkit's exporters never write; refused")
    need = tensor.elements * item
    if tensor.external is not None:
        _check_external(tensor, need, path, folder)
    elif tensor.raw is not None:
        if len(tensor.raw) != need:
            raise ModelFileError(f"{path}: tensor {tensor.name!r} declares {list(tensor.dims)} "
                                 f"({byte_size(need)}) but holds {byte_size(len(tensor.raw))}; the file is corrupt")
    elif tensor.elements > tensor.data_bytes:  # a typed value takes at least one byte
        raise ModelFileError(f"{path}: tensor {tensor.name!r} declares {list(tensor.dims)} but holds fewer values; "
                             "the file is corrupt")
    if tensor.data_type == _FLOAT and need:
        if tensor.external is not None:
            pieces = _external_floats(tensor, folder)
        else:
            pieces = [tensor.raw] if tensor.raw is not None else list(tensor.float_data)
        for piece in pieces:
            if not np.isfinite(np.frombuffer(piece, "<f4")).all():
                raise NonFiniteError(f"{path}: weight {tensor.name!r} holds NaN or infinite values; the file is "
                                     "corrupt or was exported from a diverged run: re-export a good checkpoint")


def _external_floats(tensor: Tensor, folder: Path):
    """The float32 values of a checked external tensor, mapped from its file 16 Mi values at a time."""
    info = tensor.external or {}
    offset = int(info.get("offset", "0"))
    values = np.memmap(folder / info["location"], dtype="<f4", mode="r", offset=offset, shape=(tensor.elements,))
    step = 1 << 24
    return (values[i : i + step] for i in range(0, tensor.elements, step))


def _check_external(tensor: Tensor, need: int, path: Path, folder: Path) -> None:
    info = tensor.external or {}
    location = info.get("location", "")
    parts = Path(location).parts
    if not location or os.path.isabs(location) or ".." in parts or "\\" in location:
        raise ModelFileError(f"{path} refers to weight data outside its folder; refused for safety")
    target = folder / location
    try:
        real, base = os.path.realpath(target), os.path.realpath(folder)
        if os.path.commonpath([real, base]) != base:
            raise ModelFileError(f"{path} refers to weight data outside its folder; refused for safety")
        if not target.exists():
            raise ModelFileError(f"{path} needs weight data that is missing next to it: {location!r}")
        if not target.is_file():
            raise ModelFileError(f"{path}: its weight data {location!r} is not a regular file; refused")
        size = target.stat().st_size
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read its weight data {location!r}: {e.strerror or e}") from e
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else size - offset
    except ValueError as e:
        raise ModelFileError(f"{path}: tensor {tensor.name!r} has an unreadable external offset or length") from e
    if offset < 0 or length != need or offset + length > size:
        raise ModelFileError(f"{path}: tensor {tensor.name!r} declares {list(tensor.dims)} ({byte_size(need)}) but "
                             f"its weight data {location!r} holds {byte_size(max(0, min(length, size - offset)))} "
                             "there; the files do not belong together")


# -- nodes --------------------------------------------------------------------------------------
def _check_nodes(model: OnnxModel, spec: ModelSpec, path: Path, constants: dict[str, tuple[int, ...]]) -> int:
    """Check each node's sizes against the metadata; return the constants' bytes once folded."""
    known = set(constants) | set(spec.input_names)
    recurrent = embedding = heads = 0
    weight_bytes = sum(4 * elements(t.dims) for t in model.initializers)
    for node in model.nodes:
        ins = [i for i in node.inputs if i]
        missing = [i for i in ins if i not in known]
        if missing:
            raise ModelFileError(f"{path}: node {node.op_type} reads {missing[0]!r} before anything computes it "
                                 "(the graph is not in order or is incomplete); refused")
        known.update(node.outputs)
        if node.op_type != "Constant" and ins and all(i in constants for i in ins):
            weight_bytes += _fold(node, constants, path)
            continue
        op = node.op_type
        if op in _RECURRENT:
            recurrent += 1
            _check_recurrent(node, spec, path)
        elif op in _EMBEDDINGS:
            embedding += 1
            _check_embedding(node, spec, path, constants)
        elif op in _HEADS:
            heads += 1
            if op == "MatMulNBits":
                _check_nbits_head(node, spec, path, constants)
                continue
            weight = node.inputs[1] if len(node.inputs) > 1 else ""
            if constants.get(weight) != (spec.hidden, spec.n_out):
                shape = list(constants.get(weight, ()))
                raise MetadataError(f"inconsistent model: the output layer's weight is {shape}, "
                                    f"not hidden × n_out = [{spec.hidden}, {spec.n_out}]; re-export the model", None)
    if recurrent != spec.layers:
        raise MetadataError(f"inconsistent model: the graph has {recurrent} recurrent layer(s) but the metadata's "
                            f"layers is {spec.layers}; re-export the model", KEYS.LAYERS)
    if embedding != 1 or heads != 1:
        raise ModelFileError(f"{path}: rnnkit's graphs have one embedding and one output layer, this one "
                             f"{embedding} and {heads}; refused")
    return weight_bytes


def _check_recurrent(node, spec: ModelSpec, path: Path) -> None:
    op = node.op_type
    want = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[spec.cell]
    if op != want and not (op == "DynamicQuantizeLSTM" and spec.cell == "lstm"):
        raise MetadataError(f"inconsistent model: the graph's cell is {op} but the metadata's is {spec.cell!r}; "
                            "re-export the model", KEYS.CELL)
    attrs = node.attributes
    size = attrs.get("hidden_size")
    if size is None or size.i != spec.hidden:
        raise MetadataError(f"inconsistent model: a {op} node has hidden_size "
                            f"{None if size is None else size.i} but the metadata's hidden is {spec.hidden}; "
                            "re-export the model", KEYS.HIDDEN)
    direction = attrs.get("direction")
    layout = attrs.get("layout")
    if (direction is not None and direction.s != b"forward") or (layout is not None and layout.i != 0):
        raise ModelFileError(f"{path}: a {op} node that is not forward and sequence-first; rnnkit's "
                             "exporters never write one; refused")
    odd = sorted({"clip", "activation_alpha", "activation_beta"} & set(attrs))
    if odd:
        raise ModelFileError(f"{path}: a {op} node with {', '.join(odd)}, which rnnkit's exporters never write; "
                             "refused")
    _check_activations(node, spec, path)


_RNN_ACTIVATIONS = {None: "tanh", ("Tanh",): "tanh", ("Relu",): "relu"}  # an RNN node's → rnnkit.activation
_FIXED_ACTIVATIONS = {"GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh"),
                      "DynamicQuantizeLSTM": ("Sigmoid", "Tanh", "Tanh")}


def _check_activations(node, spec: ModelSpec, path: Path) -> None:
    """The recurrence's nonlinearity: what the metadata says (an RNN's) or ONNX's fixed ones (GRU, LSTM)."""
    op, attr = node.op_type, node.attributes.get("activations")
    names = None if attr is None else tuple(s.decode("utf-8", "replace") for s in attr.strings)
    shown = None if names is None else [n[:20] for n in names[:4]] + (["…"] if len(names) > 4 else [])
    if op == "RNN":
        found = _RNN_ACTIVATIONS.get(names)
        if found is None:
            raise ModelFileError(f"{path}: an RNN node with activations {shown}, not Tanh or Relu; refused")
        if found != spec.activation:
            raise MetadataError(f"inconsistent model: the graph's RNN computes {found} but the metadata's "
                                f"activation is {spec.activation!r}; re-export the model", KEYS.ACTIVATION)
    elif names is not None and names != _FIXED_ACTIVATIONS[op]:
        raise ModelFileError(f"{path}: a {op} node with activations {shown}, not ONNX's defaults "
                             f"{list(_FIXED_ACTIVATIONS[op])}, which rnnkit's exporters never write; refused")


def _check_embedding(node, spec: ModelSpec, path: Path, constants: dict[str, tuple[int, ...]]) -> None:
    data, indices = [*node.inputs, "", ""][:2]
    blocked = node.op_type == "GatherBlockQuantized"
    axis = node.attributes.get("gather_axis" if blocked else "axis")
    if indices != INPUT_TOKENS or data not in constants or (axis is not None and axis.i != 0):
        raise ModelFileError(f"{path}: a {node.op_type} that is not the embedding of the tokens; rnnkit's "
                             "exporters never write one; refused")
    rows = constants[data]
    if len(rows) != 2:
        raise ModelFileError(f"{path}: the embedding has shape {list(rows)}, not [vocabulary, embed]; refused")
    if blocked:
        bits, block = _blocking(node, path)
        quantize_axis = node.attributes.get("quantize_axis")
        width = rows[1] * 8 // bits
        scales = constants.get(node.inputs[2] if len(node.inputs) > 2 else "")
        if (quantize_axis is None or quantize_axis.i not in (1, -1) or len(node.inputs) != 3
                or scales != (rows[0], -(-width // block))):
            raise ModelFileError(f"{path}: a GatherBlockQuantized embedding quantized along another axis, with "
                                 f"zero points or with scales {list(scales or ())} for data {list(rows)}, which "
                                 "rnnkit's exporters never write; refused")
        rows = (rows[0], width)
    spec.check_graph(n_out=None, layers=None, hidden=None, vocab_rows=rows[0])
    if rows[1] != spec.embed:
        raise MetadataError(f"inconsistent model: the embedding is {rows[1]} wide but the metadata's embed is "
                            f"{spec.embed}; re-export the model", KEYS.EMBED)


def _blocking(node, path: Path) -> tuple[int, int]:
    """A block-quantized node's bits and block size: 4 or 8 bits, blocks of 16 … 256 values."""
    attrs = node.attributes
    bits = attrs["bits"].i if "bits" in attrs else 4 if node.op_type == "GatherBlockQuantized" else None
    block = attrs["block_size"].i if "block_size" in attrs else None
    allowed = (4,) if node.op_type == "GatherBlockQuantized" else (4, 8)
    if bits not in allowed or block not in (16, 32, 64, 128, 256):
        raise ModelFileError(f"{path}: a {node.op_type} node with (bits, block_size) = {(bits, block)}, which "
                             "rnnkit's exporters never write; refused")
    return bits, block


def _check_nbits_head(node, spec: ModelSpec, path: Path, constants: dict[str, tuple[int, ...]]) -> None:
    """``MatMulNBits``: ``K × N`` = hidden × n_out, weights (N, blocks, block × bits / 8), one scale a block."""
    bits, block = _blocking(node, path)
    k, n = (node.attributes[a].i if a in node.attributes else None for a in ("K", "N"))
    if (k, n) != (spec.hidden, spec.n_out):
        raise MetadataError(f"inconsistent model: the output layer is MatMulNBits of K × N = {k} × {n}, not "
                            f"hidden × n_out = {spec.hidden} × {spec.n_out}; re-export the model", None)
    blocks = -(-k // block)
    weight, scales = (constants.get(node.inputs[i]) if len(node.inputs) > i else None for i in (1, 2))
    if (len(node.inputs) != 3 or weight != (n, blocks, block * bits // 8) or scales is None
            or elements(scales) != n * blocks):
        raise ModelFileError(f"{path}: a MatMulNBits head with weights {list(weight or ())}, scales "
                             f"{list(scales or ())} or zero points that do not fit K × N = {k} × {n} in blocks "
                             f"of {block}; rnnkit's exporters never write one; refused")


def _fold(node, constants: dict[str, tuple[int, ...]], path: Path) -> int:
    """A node onnxruntime computes while building the session: allowed only where it cannot grow."""
    ins = [i for i in node.inputs if i]
    if node.op_type not in _FOLDABLE:
        raise ModelFileError(f"{path}: the graph computes a constant with {node.op_type} while it loads, which "
                             "rnnkit's exporters never do; refused")
    shapes = [constants[i] for i in ins]
    if node.op_type == "Cast":
        out = shapes[0]
    else:
        try:
            out = broadcast("Mul", shapes)
        except ShapeRefused as e:
            raise ModelFileError(f"{path}: constants of shapes {[list(s) for s in shapes]} do not broadcast") from e
        if elements(out) > max(elements(s) for s in shapes):
            raise ModelFileError(f"{path}: a Mul of constants {[list(s) for s in shapes]} would build a larger "
                                 f"tensor {list(out)} while it loads; refused")
    for name in node.outputs:
        constants[name] = out
    return 4 * elements(out)


