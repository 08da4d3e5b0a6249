"""The shape of every tensor a graph computes, in terms of the batch ``B`` and sequence ``T``.

The loader's allow-list says which operators a graph may use; this says how large their
outputs can be. Each activation's shape is worked out from the declared inputs — tokens
``(B, T)``, states ``(layers, B, hidden)`` — and the constants, for exactly the operators
rnnkit's exporters write. A tensor may hold ``B`` once and ``T`` once, never a product of them
(an ``Add`` of a sequence and its transpose would be ``T × T``), and the sum of what every
activation holds per token is the memory budget of a call, so a chain of ``Concat`` that
doubles a tensor at each link makes the model costlier to run, never unbounded.
"""

from __future__ import annotations

from collections.abc import Sequence

from .contract import INPUT_TOKENS, ModelSpec
from .onnxfile import Node

__all__ = ["ShapeRefused", "Usage", "broadcast", "elements", "infer_shapes"]

Dim = int | str  # a size, or "B" / "T"
Shape = tuple[Dim, ...]
_SYMBOLS = ("B", "T")


class ShapeRefused(ValueError):
    """The graph computes a tensor whose shape rnnkit cannot bound (the message says which)."""


class Usage:
    """What the activations hold: elements per token of one row (tensors with ``T``) and per row."""

    def __init__(self) -> None:
        self.per_token = 0
        self.per_row = 0
        self.workspace = 0  # the recurrent kernels' gates, per token of one row

    def add(self, shape: Shape) -> None:
        static = elements(shape)
        if "T" in shape:
            self.per_token += static
        elif "B" in shape:
            self.per_row += static


# operator → (fewest inputs, most inputs, most outputs) of the nodes rnnkit's exporters write
_ARITY = {
    "Cast": (1, 1, 1), "Abs": (1, 1, 1), "Round": (1, 1, 1), "Transpose": (1, 1, 1), "Clip": (3, 3, 1),
    "ReduceMax": (1, 2, 1), "Squeeze": (1, 2, 1), "Slice": (3, 5, 1), "Concat": (1, 1 << 16, 1),
    "Gather": (2, 2, 1), "GatherBlockQuantized": (3, 3, 1), "DequantizeLinear": (2, 3, 1),
    "DynamicQuantizeLinear": (1, 1, 3), "MatMul": (2, 2, 1), "MatMulInteger": (2, 4, 1), "MatMulNBits": (3, 3, 1),
    "Add": (2, 2, 1), "Mul": (2, 2, 1), "Div": (2, 2, 1), "Max": (2, 2, 1),
    "RNN": (3, 6, 2), "GRU": (3, 6, 2), "LSTM": (3, 8, 3), "DynamicQuantizeLSTM": (3, 12, 3),
}


def infer_shapes(nodes: Sequence[Node], spec: ModelSpec, constants: dict[str, tuple[int, ...]],
                 values: dict[str, tuple[int, ...]]) -> tuple[dict[str, Shape], Usage]:
    """Every tensor's shape and what the activations hold; raise :class:`ShapeRefused`."""
    shapes: dict[str, Shape] = {name: tuple(dims) for name, dims in constants.items()}
    shapes[INPUT_TOKENS] = ("B", "T")
    for name in spec.input_names[1:]:
        shapes[name] = (spec.layers, "B", spec.hidden)
    usage = Usage()
    for node in nodes:
        if all(out in constants for out in node.outputs):
            continue  # a constant (or a fold of constants), sized by the caller
        _check_arity(node, shapes)
        if node.op_type == "Clip" and any(b not in constants or elements(constants[b]) != 1 or len(constants[b]) > 1
                                          for b in node.inputs[1:]):
            raise ShapeRefused(f"Clip with bounds {list(node.inputs[1:])} that are not scalar constants")
        outs = _outputs(node, shapes, values, spec, usage)
        if len([o for o in node.outputs if o]) > len(outs):
            raise ShapeRefused(f"{node.op_type} with {len(node.outputs)} outputs")
        for name, shape in zip(node.outputs, outs):
            if not name:
                continue
            for symbol in _SYMBOLS:
                if shape.count(symbol) > 1:
                    raise ShapeRefused(f"{node.op_type} computes a tensor of shape {_show(shape)}, which grows "
                                       f"with {symbol} × {symbol}")
            shapes[name] = shape
            usage.add(shape)
    return shapes, usage


def _check_arity(node: Node, shapes: dict[str, Shape]) -> None:
    fewest, most, outputs = _ARITY.get(node.op_type, (0, 0, 0))
    given = len(node.inputs)
    if not fewest <= given <= most or len(node.outputs) > outputs or not node.outputs:
        raise ShapeRefused(f"{node.op_type} with {given} inputs and {len(node.outputs)} outputs")
    for name in node.inputs[:fewest]:
        if name not in shapes:  # a required input left empty, or one nothing computes
            raise ShapeRefused(f"{node.op_type} without its input {name!r}")


def _outputs(node: Node, shapes: dict[str, Shape], values: dict[str, tuple[int, ...]], spec: ModelSpec,
             usage: Usage) -> list[Shape]:
    op, attrs = node.op_type, node.attributes
    if any(i and i not in shapes for i in node.inputs):
        raise ShapeRefused(f"{node.op_type} reads a tensor whose shape is unknown")
    ins = [shapes[i] if i else () for i in node.inputs]
    if op in ("Cast", "DequantizeLinear", "Abs", "Round", "Clip"):
        return [ins[0]]
    if op == "ReduceMax":  # the int8 head's scale of each row: over its static last axis, kept as 1
        axes = list(attrs["axes"].ints) if "axes" in attrs else _const(node, 1, values, "axes")
        keep = attrs["keepdims"].i if "keepdims" in attrs else 1
        x = ins[0]
        if not x or not isinstance(x[-1], int) or [_axis(a, len(x)) for a in axes] != [len(x) - 1] or keep != 1:
            raise ShapeRefused(f"ReduceMax over axes {axes} (keepdims {keep}) of a tensor of shape {_show(x)}, "
                               "not over its last axis alone, of a fixed size")
        return [(*x[:-1], 1)]
    if op == "GatherBlockQuantized":  # data (rows, width × bits / 8)
        bits = attrs["bits"].i if "bits" in attrs else 4
        return [ins[1] + (ins[0][1] * 8 // bits,)]
    if op == "MatMulNBits":
        a, k, n = ins[0], attrs["K"].i, attrs["N"].i
        if not a or a[-1] != k or not isinstance(a[-1], int):
            raise ShapeRefused(f"MatMulNBits of K = {k} reads a tensor of shape {_show(a)}")
        return [(*a[:-1], n)]
    if op == "DynamicQuantizeLinear":
        return [ins[0], (), ()]
    if op == "Gather":
        return [ins[1] + ins[0][1:]]
    if op == "Transpose":
        perm = list(attrs["perm"].ints) if "perm" in attrs else list(range(len(ins[0])))[::-1]
        if sorted(perm) != list(range(len(ins[0]))):
            raise ShapeRefused(f"Transpose with perm {perm} of a rank-{len(ins[0])} tensor")
        return [tuple(ins[0][p] for p in perm)]
    if op == "Squeeze":
        axes = list(attrs["axes"].ints) if "axes" in attrs else _const(node, 1, values, "axes")
        axes = sorted({_axis(a, len(ins[0])) for a in axes})
        if not axes or any(ins[0][a] != 1 for a in axes):
            raise ShapeRefused(f"Squeeze of axes {axes} of a tensor of shape {_show(ins[0])}")
        return [tuple(d for a, d in enumerate(ins[0]) if a not in axes)]
    if op == "Slice":
        return [_slice(node, ins[0], values)]
    if op == "Concat":
        return [_concat(node, ins)]
    if op in ("RNN", "GRU", "LSTM", "DynamicQuantizeLSTM"):
        x = ins[0]
        if len(x) != 3 or x[0] != "T" or x[1] != "B" or not isinstance(x[2], int):
            raise ShapeRefused(f"{op} reads a sequence of shape {_show(x)}, not (T, B, features)")
        hidden = attrs["hidden_size"].i
        usage.workspace += {"RNN": 1, "GRU": 3}.get(op, 4) * hidden
        return [("T", 1, "B", hidden), (1, "B", hidden), (1, "B", hidden)][: len(node.outputs)]
    if op in ("MatMul", "MatMulInteger"):  # a sum over a fixed axis: never over the batch or the text
        a, b = ins[0], ins[1]
        if len(b) != 2 or not a or a[-1] != b[0] or not isinstance(b[0], int):
            raise ShapeRefused(f"{op} of shapes {_show(a)} and {_show(b)}")
        return [(*a[:-1], b[1])]
    if op in ("Add", "Mul", "Div", "Max"):
        return [broadcast(op, ins)]
    raise ShapeRefused(f"{op} has no shape rule")  # the allow-list names no other operator


def _slice(node: Node, x: Shape, values: dict[str, tuple[int, ...]]) -> Shape:
    if "starts" in node.attributes:  # opset < 10 kept them as attributes
        starts, ends = list(node.attributes["starts"].ints), list(node.attributes["ends"].ints)
        axes = list(node.attributes["axes"].ints) if "axes" in node.attributes else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts, ends = _const(node, 1, values, "starts"), _const(node, 2, values, "ends")
        axes = _const(node, 3, values, "axes") if len(node.inputs) > 3 and node.inputs[3] else list(range(len(starts)))
        steps = _const(node, 4, values, "steps") if len(node.inputs) > 4 and node.inputs[4] else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ShapeRefused("Slice with starts, ends, axes and steps of different lengths")
    out = list(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(axis, len(x))
        if not isinstance(x[axis], int) or step == 0:
            raise ShapeRefused(f"Slice along axis {axis} of shape {_show(x)} (step {step})")
        out[axis] = len(range(*slice(start, end, step).indices(x[axis])))
    return tuple(out)


def _concat(node: Node, ins: list[Shape]) -> Shape:
    if not ins or len({len(s) for s in ins}) != 1:
        raise ShapeRefused("Concat of tensors of different ranks")
    axis = _axis(node.attributes["axis"].i if "axis" in node.attributes else 0, len(ins[0]))
    total = 0
    for shape in ins:
        if not isinstance(shape[axis], int) or any(shape[a] != ins[0][a] for a in range(len(shape)) if a != axis):
            raise ShapeRefused(f"Concat of shapes {[_show(s) for s in ins]} along axis {axis}")
        total += shape[axis]
    return (*ins[0][:axis], total, *ins[0][axis + 1 :])


def broadcast(op: str, ins: Sequence[Shape]) -> Shape:
    """numpy's broadcast of ``ins``; a size meets ``B`` or ``T`` only where it is 1."""
    rank = max(len(s) for s in ins)
    out: list[Dim] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in ins if axis - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise ShapeRefused(f"{op} broadcasts shapes {[_show(s) for s in ins]}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _const(node: Node, index: int, values: dict[str, tuple[int, ...]], what: str) -> list[int]:
    name = node.inputs[index] if index < len(node.inputs) else ""
    if name not in values:
        raise ShapeRefused(f"{node.op_type} takes its {what} from {name!r}, which is not a small integer constant")
    return list(values[name])


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeRefused(f"axis {axis} of a rank-{rank} tensor")
    return axis % rank


def elements(shape: Shape) -> int:
    """The product of a shape's static sizes (all of it, for a constant's)."""
    n = 1
    for d in shape:
        if isinstance(d, int):
            n *= d
    return n


def _show(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
