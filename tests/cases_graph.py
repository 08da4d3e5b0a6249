"""Catalogue cases: model graphs that must be refused from their bytes, before onnxruntime sees them.

Each hostile file is a real exported model (``c.clf``: an LSTM classifier, hidden 12, or ``c.lm``:
a GRU lm) with one edit: an operator rnnkit's exporters never write, a size that contradicts the
metadata, a constant that would fold into a large tensor, a budget that cannot be met.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from catalogue import Case  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_edits import externalize, rewrite_metadata  # noqa: E402

from rnnkit.runtime import load_model  # noqa: E402


def int8_lm(c) -> Path:
    """A GRU lm exported with ``--quantize int8``, its head computed in int8 (its Cast·Mul folds are
    constants-only nodes)."""
    def make():
        from factory import tiny_checkpoint

        from rnnkit.export import export_onnx, quantize

        ckpt = tiny_checkpoint(c.root / "lm8", task="lm", cell="gru", hidden=32, embed=16)
        with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
            warnings.simplefilter("ignore")  # a tiny model's int8 file may not be smaller: irrelevant here
            patch.setattr(quantize, "HEAD_COMPUTE_INT8", 0)  # its head in int8, as a large model's is
            export_onnx(ckpt, c.root / "lm8" / "model.onnx", quantize="int8")
        return c.root / "lm8" / "model.onnx"
    return c.once("lm8", make)


def quantized_lm(c, mode: str) -> Path:
    """An lm exported with ``--quantize mode``: ``int4`` (a GRU, embed 32: its embedding is
    GatherBlockQuantized, its head MatMulNBits) or ``int8-dynamic`` (an LSTM: DynamicQuantizeLSTM,
    DynamicQuantizeLinear · MatMulInteger head)."""
    if mode == "int8":
        return int8_lm(c)
    key = {"int4": "lm4", "int8-dynamic": "lm8d"}[mode]

    def make():
        from factory import tiny_checkpoint

        from rnnkit.export import export_onnx

        cell, embed = ("gru", 32) if mode == "int4" else ("lstm", 16)
        ckpt = tiny_checkpoint(c.root / key, task="lm", cell=cell, hidden=32, embed=embed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a tiny model's quantized file may not be smaller: irrelevant here
            export_onnx(ckpt, c.root / key / "model.onnx", quantize=mode, max_drop=1.0)  # tiny int4: any drop
        return c.root / key / "model.onnx"
    return c.once(key, make)


_BASES = {"lm8": "int8", "lm4": "int4", "lm8d": "int8-dynamic"}  # edited()'s quantized bases


def edited(c, name: str, edit: Callable[[onnx.ModelProto], None], base: str = "clf") -> Path:
    """A copy of ``c.<base>`` changed by ``edit(model)`` (saved without onnx's checker)."""
    def make():
        model = onnx.load(str(quantized_lm(c, _BASES[base]) if base in _BASES else getattr(c, base)))
        edit(model)
        path = c.root / f"graph-{name}.onnx"
        path.write_bytes(model.SerializeToString())
        return path
    return c.once(f"graph-{name}", make)


def add_node(op: str, inputs: list[str], *, domain: str = "", initializers=(), **attrs) -> Callable:
    """An edit that appends one node (its output unused) and the constants it reads."""
    def edit(model):
        for name, array in initializers:
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
        model.graph.node.append(helper.make_node(op, inputs, [f"extra_{op}"], domain=domain or None, **attrs))
        if domain and not any(o.domain == domain for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid(domain, 1))
    return edit


def loop(model) -> None:
    """A Loop of 10¹² iterations whose body adds one to a counter."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    for name, value in (("trip", np.array(10**12, np.int64)), ("v0", np.array(0.0, np.float32))):
        model.graph.initializer.append(numpy_helper.from_array(value, name))
    model.graph.node.append(helper.make_node("Loop", ["trip", "", "v0"], ["spun"], body=body))


def if_node(model) -> None:
    branch = helper.make_graph([helper.make_node("Constant", [], ["b"], value_float=1.0)], "branch", [],
                               [helper.make_tensor_value_info("b", TensorProto.FLOAT, [])])
    model.graph.initializer.append(numpy_helper.from_array(np.array(True), "flag"))
    model.graph.node.append(helper.make_node("If", ["flag"], ["chosen"], then_branch=branch, else_branch=branch))


def one_gib() -> Callable:
    """ConstantOfShape filling 2²⁸ floats (1 GiB) while the session is built."""
    return add_node("ConstantOfShape", ["big_shape"], initializers=[("big_shape", np.array([1 << 28], np.int64))])


def set_dim(value_name: str, axis: int, *, value: int | None = None, param: str | None = None) -> Callable:
    def edit(model):
        for info in [*model.graph.input, *model.graph.output]:
            if info.name == value_name:
                dim = info.type.tensor_type.shape.dim[axis]
                if value is not None:
                    dim.dim_value = value
                else:
                    dim.dim_param = param
    return edit


def recurrent_attr(name: str, value: int) -> Callable:
    def edit(model):
        node = next(n for n in model.graph.node if n.op_type in ("RNN", "GRU", "LSTM"))
        for a in node.attribute:
            if a.name == name:
                a.i = value
    return edit


def const_product(model) -> None:
    """Two constants of 4 KiB each whose product broadcasts to 2²⁰ × 2¹⁰ floats (4 GiB)."""
    model.graph.initializer.extend([numpy_helper.from_array(np.ones((1024, 1), np.float32), "col"),
                                    numpy_helper.from_array(np.ones((1, 1 << 20), np.float32)[:, :1024], "row")])
    model.graph.node.append(helper.make_node("Mul", ["col", "row"], ["grid"]))


def const_matmul(model) -> None:
    model.graph.initializer.extend([numpy_helper.from_array(np.ones((2048, 1), np.float32), "tall"),
                                    numpy_helper.from_array(np.ones((1, 2048), np.float32), "wide")])
    model.graph.node.append(helper.make_node("MatMul", ["tall", "wide"], ["square"]))


def short_weight(model) -> None:
    init = next(i for i in model.graph.initializer if i.name == "model.embedding.weight")
    init.dims[0] = init.dims[0] * 1000  # the raw bytes stay those of the real rows


def nan_weight(model) -> None:
    init = next(i for i in model.graph.initializer if i.name == "model.embedding.weight")
    weights = numpy_helper.to_array(init).copy()
    weights[3, 2] = np.nan
    init.CopyFrom(numpy_helper.from_array(weights, init.name))


def sparse_initializer(model) -> None:
    values = numpy_helper.from_array(np.array([1.0], np.float32), "big_sparse")
    indices = numpy_helper.from_array(np.array([0], np.int64), "big_sparse_idx")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [1 << 30]))


def sparse_constant(model) -> None:
    values = numpy_helper.from_array(np.array([1.0], np.float32), "sv")
    indices = numpy_helper.from_array(np.array([0], np.int64), "si")
    model.graph.node.append(helper.make_node("Constant", [], ["dense"],
                                             sparse_value=helper.make_sparse_tensor(values, indices, [1 << 30])))


def second_head(model) -> None:
    model.graph.initializer.append(numpy_helper.from_array(np.ones((12, 100_000), np.float32)[:, :4096], "wide_head"))
    hidden = next(n for n in model.graph.node if n.op_type == "MatMul").input[0]
    model.graph.node.append(helper.make_node("MatMul", [hidden, "wide_head"], ["wide_out"]))


def gather_state(model) -> None:
    model.graph.initializer.append(numpy_helper.from_array(np.array([0, 0, 0], np.int64), "rows"))
    model.graph.node.append(helper.make_node("Gather", ["h0", "rows"], ["picked"]))


def out_of_order(model) -> None:
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))


def local_function(model) -> None:
    model.functions.append(helper.make_function("evil", "Spin", ["x"], ["y"],
                                                [helper.make_node("Identity", ["x"], ["y"])],
                                                [helper.make_opsetid("", 17)]))


def opset(version: int, domain: str = "") -> Callable:
    def edit(model):
        for o in model.opset_import:
            if o.domain == domain:
                o.version = version
                return
        model.opset_import.append(helper.make_opsetid(domain, version))
    return edit


def subgraph_attr(model) -> None:
    body = helper.make_graph([], "hidden", [], [])
    node = next(n for n in model.graph.node if n.op_type == "Add")
    node.attribute.append(helper.make_attribute("body", body))


def external_fifo(c) -> Path:
    def make():
        path, _ = externalize(c.clf, c.root / "ext-fifo", "weights.bin")
        os.mkfifo(c.root / "ext-fifo" / "weights.bin")
        return path
    return c.once("ext-fifo", make)


def external_short(c) -> Path:
    def make():
        path, weights = externalize(c.clf, c.root / "ext-short", "weights.bin")
        (c.root / "ext-short" / "weights.bin").write_bytes(weights[: len(weights) // 2])
        return path
    return c.once("ext-short", make)


def small_budget(c, name: str, max_call_bytes: int):
    return c.once(f"budget-{name}", lambda: load_model(c.lm, max_call_bytes=max_call_bytes))


def nan_state(c):
    model = c.model("lm")
    state = model.start_state(1)
    state[0][0, 0, 3] = np.nan
    return model.run(np.array([[4, 5]]), state)


def inf_binding(c):
    binding = c.model("lm").step_binding(2)
    binding.state[0][0, 1, :] = np.inf
    return binding.step()


def wire_type_3(c) -> Path:
    return c.file("group.onnx", bytes([0x0B, 0x0C]) + c.clf.read_bytes())  # a group field: no ONNX writer uses one


def squared_sequence(model) -> None:
    """The LSTM's output (T, 1, B, H) plus its transpose (1, T, B, H): a (T, T, B, H) tensor."""
    y = next(n for n in model.graph.node if n.op_type == "LSTM").output[0]
    model.graph.node.extend([helper.make_node("Transpose", [y], ["y_t"], perm=[1, 0, 2, 3]),
                             helper.make_node("Add", [y, "y_t"], ["y_sq"])])


def doubling_chain(model) -> None:
    """40 Concats, each of the last with itself: the state, 2⁴⁰ times over."""
    last = "h0"
    for i in range(40):
        model.graph.node.append(helper.make_node("Concat", [last, last], [f"twice{i}"], axis=0))
        last = f"twice{i}"


def nan_float_data(model) -> None:
    """A NaN in a weight stored in float_data rather than raw_data."""
    init = next(i for i in model.graph.initializer if i.name == "model.embedding.weight")
    weights = numpy_helper.to_array(init).copy()
    weights[2, 1] = np.nan
    init.ClearField("raw_data")
    init.float_data.extend(weights.ravel().tolist())


def external_constant(model) -> None:
    tensor = numpy_helper.from_array(np.zeros(2, np.float32), "const_ext")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "bias.bin"), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    model.graph.node.append(helper.make_node("Constant", [], ["ext_const"], value=tensor))


def many_fields(c) -> Path:
    """A valid model followed by 3 million empty unknown fields (field 99, varint 0): 9 MB."""
    return c.once("many-fields", lambda: c.file("fields.onnx", c.clf.read_bytes() + b"\x98\x06\x00" * 3_000_000))


def _node(model, op: str):
    return next(n for n in model.graph.node if n.op_type == op)


def _set_attr(op: str, name: str, value: int) -> Callable:
    """An edit that sets the int attribute ``name`` of the first ``op`` node."""
    def edit(model):
        attr = next(a for a in _node(model, op).attribute if a.name == name)
        attr.i = value
    return edit


def _replace_initializer(name: str, array: np.ndarray) -> Callable:
    """An edit that swaps a constant for ``array`` (dims and bytes agree: only the shape is wrong)."""
    def edit(model):
        init = next(i for i in model.graph.initializer if i.name == name)
        init.CopyFrom(numpy_helper.from_array(array, name))
    return edit


def reduce_over_batch(model) -> None:
    """The int8 head's row scale taken over axis 0 (the batch): one row's answer depends on the others."""
    node = _node(model, "ReduceMax")
    del node.attribute[:]
    node.attribute.extend([helper.make_attribute("axes", [0]), helper.make_attribute("keepdims", 1)])


def clip_vector_bounds(model) -> None:
    """The int8 head's Clip to [0, 255] with bounds of shape [2] (per element of a pair), not scalars."""
    _replace_initializer("head.q.low", np.array([0.0, 0.0], np.float32))(model)
    _replace_initializer("head.q.high", np.array([255.0, 255.0], np.float32))(model)


def gbq_zero_points(model) -> None:
    """A zero_points input (4 bits packed, as the data) on the GatherBlockQuantized embedding."""
    node = _node(model, "GatherBlockQuantized")
    rows = next(i for i in model.graph.initializer if i.name == node.input[2]).dims[0]
    model.graph.initializer.append(numpy_helper.from_array(np.full((rows, 1), 0x88, np.uint8), "embedding.q4.zp"))
    node.input.append("embedding.q4.zp")


def requantized(c, name: str, base: str, *, replace: bool = False, **changes) -> Path:
    """A copy of a quantized lm whose ``rnnkit.quantization`` metadata is changed.

    ``replace``: the value becomes ``changes`` alone; a change to None removes that key.
    """
    def make():
        src = quantized_lm(c, _BASES[base])
        props = {p.key: p.value for p in onnx.load(str(src)).metadata_props}
        quantization = {} if replace else json.loads(props["rnnkit.quantization"])
        quantization.update(changes)
        quantization = {k: v for k, v in quantization.items() if v is not None}  # None removes a key
        return rewrite_metadata(src, c.root / f"quant-{name}.onnx", quantization=json.dumps(quantization))
    return c.once(f"quant-{name}", make)


def _quant(name: str, base: str, *, replace: bool = False, **changes) -> Case:
    return Case(lambda c: load_model(requantized(c, name, base, replace=replace, **changes)),
                lambda c: ["inspect", requantized(c, name, base, replace=replace, **changes)])


def _graph(name: str, edit: Callable, base: str = "clf") -> Case:
    return Case(lambda c: load_model(edited(c, name, edit, base)), lambda c: ["inspect", edited(c, name, edit, base)])


CASES: dict[str, Case] = {
    "E78": _graph("loop", loop),
    "E79": _graph("if", if_node),
    "E80": _graph("constantofshape", one_gib()),
    "E81": _graph("expand", add_node("Expand", ["h0", "exp_shape"],
                                     initializers=[("exp_shape", np.array([1 << 20, 1, 1], np.int64))])),
    "E82": _graph("tile", add_node("Tile", ["h0", "reps"],
                                   initializers=[("reps", np.array([1 << 16, 1, 1], np.int64))])),
    "E83": _graph("range", add_node("Range", ["r0", "r1", "r2"], initializers=[
        ("r0", np.array(0, np.int64)), ("r1", np.array(1 << 40, np.int64)), ("r2", np.array(1, np.int64))])),
    "E84": _graph("shape", add_node("Shape", ["tokens"])),
    "E85": _graph("reshape", add_node("Reshape", ["h0", "newshape"],
                                      initializers=[("newshape", np.array([-1], np.int64))])),
    "E86": _graph("custom-domain", add_node("FusedMatMul", ["h0", "h0"], domain="com.microsoft")),
    "E87": _graph("int8-op-in-fp32", add_node("DynamicQuantizeLinear", ["h0"])),
    "E88": _graph("function", local_function),
    "E89": _graph("opset99", opset(99)),
    "E90": _graph("foreign-opset", opset(1, "evil.ops")),
    "E91": _graph("fixed-batch", set_dim("tokens", 0, value=1)),
    "E92": _graph("fixed-seq", set_dim("tokens", 1, value=64)),
    "E93": _graph("fixed-state-batch", set_dim("h0", 1, value=8)),
    "E94": _graph("dynamic-hidden", set_dim("h0", 2, param="hidden")),
    "E95": _graph("dynamic-n-out", set_dim("logits", 2, param="n_out")),
    "E96": _graph("hidden-size", recurrent_attr("hidden_size", 4096)),
    "E97": _graph("const-product", const_product, base="lm8"),
    "E98": _graph("const-matmul", const_matmul),
    "E99": _graph("short-weight", short_weight),
    "E100": _graph("nan-weight", nan_weight),
    "E101": _graph("sparse-init", sparse_initializer),
    "E102": _graph("sparse-constant", sparse_constant),
    "E103": _graph("second-head", second_head),
    "E104": _graph("gather-state", gather_state),
    "E105": _graph("out-of-order", out_of_order),
    "E106": _graph("subgraph-attr", subgraph_attr),
    "E107": Case(lambda c: load_model(c.lm, max_call_bytes=200)),
    "E108": Case(lambda c: load_model(c.lm, max_call_bytes=0)),
    "E109": Case(lambda c: small_budget(c, "run", 1 << 20).run(np.full((64, 400), 4))),
    "E110": Case(lambda c: small_budget(c, "batch", 1 << 20).step_binding(5000)),
    "E111": Case(lambda c: load_model(c.once("meta-state", lambda: rewrite_metadata(
                     c.clf, c.root / "meta-state.onnx", layers="64", hidden="65536"))),
                 lambda c: ["inspect", c.once("meta-state", lambda: rewrite_metadata(
                     c.clf, c.root / "meta-state.onnx", layers="64", hidden="65536"))]),
    "E112": Case(lambda c: load_model(c.once("meta-square", lambda: rewrite_metadata(
                     c.clf, c.root / "meta-square.onnx", hidden="40000"))),
                 lambda c: ["inspect", c.once("meta-square", lambda: rewrite_metadata(
                     c.clf, c.root / "meta-square.onnx", hidden="40000"))]),
    "E113": Case(lambda c: load_model(external_short(c)), lambda c: ["inspect", external_short(c)]),
    "E114": Case(lambda c: load_model(external_fifo(c)), lambda c: ["inspect", external_fifo(c)]),
    "E115": Case(lambda c: load_model(c.clf, threads=10**6), lambda c: ["inspect", c.clf, "--threads", "100000"]),
    "E116": Case(lambda c: load_model(wire_type_3(c)), lambda c: ["inspect", wire_type_3(c)]),
    "E117": Case(nan_state),
    "E118": Case(inf_binding),
    "E240": _graph("squared", squared_sequence),
    "E241": _graph("doubling", doubling_chain),
    "E242": _graph("nan-float-data", nan_float_data),
    "E243": _graph("external-constant", external_constant),
    "E244": Case(lambda c: load_model(many_fields(c)), lambda c: ["inspect", many_fields(c)]),
    # quantized files: int8 (row-wise), int4 (MatMulNBits, GatherBlockQuantized), int8-dynamic
    "E245": _graph("reducemax-batch", reduce_over_batch, base="lm8"),
    "E246": _quant("dynamic-as-rowwise", "lm8d", mode="int8", batch_invariant=True),
    "E247": _quant("dynamic-invariant", "lm8d", batch_invariant=True),
    "E248": _graph("nbits-k", _set_attr("MatMulNBits", "K", 64), base="lm4"),
    "E249": _graph("nbits-weight", _replace_initializer("head.q4.weight", np.zeros((56, 2, 16), np.uint8)),
                   base="lm4"),
    "E250": _graph("gbq-scales", _replace_initializer("embedding.q4.scales", np.ones((56, 2), np.float32)),
                   base="lm4"),
    "E251": _graph("gbq-zero-points", gbq_zero_points, base="lm4"),
    "E252": _graph("nbits-bits3", _set_attr("MatMulNBits", "bits", 3), base="lm4"),
    "E253": _graph("nbits-block7", _set_attr("MatMulNBits", "block_size", 7), base="lm4"),
    "E254": _quant("ort99", "lm4", min_onnxruntime="99.0"),
    "E255": _quant("int4-as-none", "lm4", replace=True, mode="none"),
    "E256": _graph("clip-vector", clip_vector_bounds, base="lm8"),
    "E257": _quant("operator-name", "lm4", operators=["Cast", "rm -rf /"]),
    "E258": _quant("ort-version", "lm4", min_onnxruntime="1.x"),
    "E259": _quant("rowwise-unmarked", "lm8", batch_invariant=None),
    "E260": _quant("int4-as-int8", "lm4", mode="int8", min_onnxruntime="1.17"),
    "E119": Case(lambda c: small_budget(c, "batcher", 1 << 20).batcher().step(
        [small_budget(c, "batcher", 1 << 20).stream() for _ in range(5000)], [4] * 5000)),
}
