"""An ONNX file read from its bytes, without ``onnx`` or onnxruntime.

The runtime checks what a model file would make onnxruntime do *before* a session is created
(onnxruntime folds constants while it builds one, so a check afterwards is too late). This
module is the small protobuf reader that makes it possible: it walks the wire format of
``ModelProto`` and keeps what the checks need (metadata, operators, attributes, tensor shapes
and where their bytes are) without copying or decoding weights. Unknown fields are skipped, as
protobuf readers do; anything malformed raises :class:`OnnxFormatError`.

The field numbers are those of ``onnx/onnx.proto`` (IR version 3 and later).
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Attribute", "Dim", "Node", "OnnxFormatError", "OnnxModel", "Tensor", "ValueInfo", "read_onnx"]

# Caps on a file's structure: far above anything an exporter writes for one recurrent model,
# low enough that walking a hostile file stays cheap.
MAX_NODES = 20_000
MAX_TENSORS = 20_000
MAX_RANK = 8
MAX_NAME = 4096
MAX_ATTRIBUTES = 64
MAX_LIST = 1_000_000  # ints/floats in one attribute, dims of one shape…
MAX_FIELDS = 1_000_000  # fields (and packed integers) in one file: a file of tiny fields costs ~0.3 s, not minutes

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_left = threading.local()  # fields the file being read may still hold (one read per thread at a time)


class OnnxFormatError(ValueError):
    """The bytes are not a well-formed ONNX ``ModelProto`` (or exceed the reader's caps)."""


@dataclass(frozen=True)
class Dim:
    """One axis of a declared shape: ``value`` when static, ``param`` when named, neither when unknown."""

    value: int | None = None
    param: str | None = None


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: its name, element type (TensorProto.DataType) and shape."""

    name: str
    elem_type: int | None  # None: not a tensor (a sequence, a map, an optional…)
    shape: tuple[Dim, ...] | None  # None: rank unknown


@dataclass(frozen=True)
class Tensor:
    """A constant tensor: its declared dims and type, and how many bytes hold its data."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    data_bytes: int  # raw_data or the typed fields, as stored in the file
    external: dict[str, str] | None = None  # location/offset/length when stored outside the file
    raw: memoryview | None = None  # raw_data, not copied
    float_data: tuple[memoryview, ...] = ()  # float_data, packed pieces or single values, not copied

    @property
    def elements(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n


@dataclass(frozen=True)
class Attribute:
    name: str
    type: int
    i: int | None = None
    f: float | None = None
    s: bytes | None = None
    ints: tuple[int, ...] = ()
    strings: tuple[bytes, ...] = ()
    tensor: Tensor | None = None
    has_graph: bool = False  # a subgraph (g, graphs): control flow; kept only as a flag
    has_sparse: bool = False
    count: int = 0  # how many list items (floats, tensors, …) it holds


@dataclass(frozen=True)
class Node:
    op_type: str
    domain: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Attribute]


@dataclass
class OnnxModel:
    """What the checks need of a ``ModelProto``."""

    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    initializers: list[Tensor] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    has_graph: bool = False
    sparse_initializers: int = 0
    functions: int = 0
    training_info: int = 0


def read_onnx(data: bytes | bytearray | memoryview) -> OnnxModel:
    """Parse ``data`` as an ONNX ``ModelProto``; raise :class:`OnnxFormatError` if it is not one."""
    view = memoryview(data).cast("B")
    _left.fields = MAX_FIELDS
    model = OnnxModel()
    metadata: dict[str, str] = {}
    for number, wire, value in _fields(view, 0, len(view)):
        if number == 1 and wire == _VARINT:
            model.ir_version = value
        elif number == 7 and wire == _BYTES:
            if model.has_graph:
                raise OnnxFormatError("the model holds two graphs")
            model.has_graph = True
            _read_graph(view, *value, model)
        elif number == 8 and wire == _BYTES:
            domain, version = _read_opset(view, *value)
            model.opsets[domain] = version
        elif number == 14 and wire == _BYTES:
            key, text = _read_entry(view, *value)
            metadata[key] = text  # the last entry for a key wins, as in onnxruntime's map
        elif number == 20 and wire == _BYTES:
            model.training_info += 1
        elif number == 25 and wire == _BYTES:
            model.functions += 1
    model.metadata = metadata
    return model


# -- the wire format --------------------------------------------------------------------------
def _fields(view: memoryview, pos: int, end: int):
    """Yield (field number, wire type, value) for the fields in ``view[pos:end]``.

    ``value`` is an int for varints and fixed-size fields, a (start, end) pair for
    length-delimited ones.
    """
    while pos < end:
        _spend(1)
        key, pos = _varint(view, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxFormatError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(view, pos, end)
        elif wire == _BYTES:
            size, pos = _varint(view, pos, end)
            if size > end - pos:
                raise OnnxFormatError("a field runs past the end of its message (truncated file?)")
            value, pos = (pos, pos + size), pos + size
        elif wire == _FIXED32:
            if end - pos < 4:
                raise OnnxFormatError("truncated fixed32 field")
            value, pos = int.from_bytes(view[pos : pos + 4], "little"), pos + 4
        elif wire == _FIXED64:
            if end - pos < 8:
                raise OnnxFormatError("truncated fixed64 field")
            value, pos = int.from_bytes(view[pos : pos + 8], "little"), pos + 8
        else:  # 3/4: groups, which no ONNX writer uses; 6/7: invalid
            raise OnnxFormatError(f"unsupported wire type {wire}")
        yield number, wire, value


def _spend(n: int) -> None:
    _left.fields -= n
    if _left.fields < 0:
        raise OnnxFormatError(f"more than {MAX_FIELDS} fields; no model rnnkit writes has that many")


def _varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise OnnxFormatError("truncated varint")
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise OnnxFormatError("varint longer than 10 bytes")


def _int64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(view: memoryview, start: int, end: int, limit: int | None = MAX_NAME) -> str:
    if limit is not None and end - start > limit:
        raise OnnxFormatError(f"a name of {end - start} bytes (more than {limit})")
    try:
        return bytes(view[start:end]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise OnnxFormatError("a string that is not UTF-8") from e


def _ints(view: memoryview, wire: int, value: Any, out: list[int]) -> None:
    """Append a repeated int64 field's values (packed or not)."""
    if wire == _VARINT:
        out.append(_int64(value))
    elif wire == _BYTES:
        pos, end = value
        while pos < end:
            v, pos = _varint(view, pos, end)
            out.append(_int64(v))
            _spend(1)
            if len(out) > MAX_LIST:
                raise OnnxFormatError(f"a list of more than {MAX_LIST} integers")
    else:
        raise OnnxFormatError("an integer list with the wrong wire type")
    if len(out) > MAX_LIST:
        raise OnnxFormatError(f"a list of more than {MAX_LIST} integers")


# -- messages -----------------------------------------------------------------------------------
def _read_opset(view: memoryview, pos: int, end: int) -> tuple[str, int]:
    domain, version = "", 0
    for number, wire, value in _fields(view, pos, end):
        if number == 1 and wire == _BYTES:
            domain = _text(view, *value)
        elif number == 2 and wire == _VARINT:
            version = _int64(value)
    return domain, version


def _read_entry(view: memoryview, pos: int, end: int) -> tuple[str, str]:
    key = text = ""
    for number, wire, value in _fields(view, pos, end):
        if number == 1 and wire == _BYTES:
            key = _text(view, *value)
        elif number == 2 and wire == _BYTES:
            text = _text(view, *value, limit=None)  # metadata values: the contract caps their size
    return key, text


def _read_graph(view: memoryview, pos: int, end: int, model: OnnxModel) -> None:
    for number, wire, value in _fields(view, pos, end):
        if wire != _BYTES:
            continue
        if number == 1:
            model.nodes.append(_read_node(view, *value))
            if len(model.nodes) > MAX_NODES:
                raise OnnxFormatError(f"more than {MAX_NODES} nodes")
        elif number == 5:
            model.initializers.append(_read_tensor(view, *value))
            if len(model.initializers) > MAX_TENSORS:
                raise OnnxFormatError(f"more than {MAX_TENSORS} initializers")
        elif number == 11:
            model.inputs.append(_read_value_info(view, *value))
        elif number == 12:
            model.outputs.append(_read_value_info(view, *value))
        elif number == 15:
            model.sparse_initializers += 1
        if len(model.inputs) + len(model.outputs) > MAX_TENSORS:
            raise OnnxFormatError(f"more than {MAX_TENSORS} graph inputs and outputs")


def _read_node(view: memoryview, pos: int, end: int) -> Node:
    inputs: list[str] = []
    outputs: list[str] = []
    op_type = domain = name = ""
    attributes: dict[str, Attribute] = {}
    for number, wire, value in _fields(view, pos, end):
        if wire != _BYTES:
            continue
        if number == 1:
            inputs.append(_text(view, *value))
        elif number == 2:
            outputs.append(_text(view, *value))
        elif number == 3:
            name = _text(view, *value)
        elif number == 4:
            op_type = _text(view, *value)
        elif number == 7:
            domain = _text(view, *value)
        elif number == 5:
            attribute = _read_attribute(view, *value)
            attributes[attribute.name] = attribute
            if len(attributes) > MAX_ATTRIBUTES:
                raise OnnxFormatError(f"a node with more than {MAX_ATTRIBUTES} attributes")
        if len(inputs) + len(outputs) > MAX_ATTRIBUTES * 16:
            raise OnnxFormatError("a node with too many inputs or outputs")
    return Node(op_type, domain, name, tuple(inputs), tuple(outputs), attributes)


def _read_attribute(view: memoryview, pos: int, end: int) -> Attribute:
    name, kind, i, f, s, tensor = "", 0, None, None, None, None
    ints: list[int] = []
    strings: list[bytes] = []
    has_graph = has_sparse = False
    count = 0
    for number, wire, value in _fields(view, pos, end):
        if number == 1 and wire == _BYTES:
            name = _text(view, *value)
        elif number == 20 and wire == _VARINT:
            kind = value
        elif number == 3 and wire == _VARINT:
            i = _int64(value)
        elif number == 2 and wire == _FIXED32:
            f = struct.unpack("<f", value.to_bytes(4, "little"))[0]
        elif number == 4 and wire == _BYTES:
            s = bytes(view[value[0] : value[1]])
        elif number == 5 and wire == _BYTES:
            if tensor is not None:
                raise OnnxFormatError(f"attribute {name!r} has two tensors")
            tensor = _read_tensor(view, *value)
        elif number in (6, 11):
            has_graph = True
        elif number in (22, 23):
            has_sparse = True
        elif number == 8:
            _ints(view, wire, value, ints)
            count = len(ints)
        elif number == 9 and wire == _BYTES:
            strings.append(bytes(view[value[0] : value[1]]))
            count = len(strings)
        elif number == 7:  # floats: packed fixed32 or one at a time
            count += (value[1] - value[0]) // 4 if wire == _BYTES else 1
        elif number == 10:
            count += 1
        if count > MAX_LIST:
            raise OnnxFormatError(f"an attribute list of more than {MAX_LIST} items")
    return Attribute(name, kind, i, f, s, tuple(ints), tuple(strings), tensor, has_graph, has_sparse, count)


def _read_tensor(view: memoryview, pos: int, end: int) -> Tensor:
    dims: list[int] = []
    data_type, name, data_bytes = 0, "", 0
    raw: memoryview | None = None
    external: dict[str, str] = {}
    floats: list[memoryview] = []
    location = 0
    for number, wire, value in _fields(view, pos, end):
        if number == 1:
            _ints(view, wire, value, dims)
            if len(dims) > MAX_RANK:
                raise OnnxFormatError(f"a tensor of rank more than {MAX_RANK}")
        elif number == 2 and wire == _VARINT:
            data_type = value
        elif number == 8 and wire == _BYTES:
            name = _text(view, *value)
        elif number == 9 and wire == _BYTES:
            raw = view[value[0] : value[1]]
            data_bytes += value[1] - value[0]
        elif number == 4 and wire == _BYTES:  # float_data, packed: kept to check it is finite
            floats.append(view[value[0] : value[1]])
            data_bytes += value[1] - value[0]
        elif number in (4, 5, 6, 7, 10, 11):  # typed data fields, packed or not
            data_bytes += (value[1] - value[0]) if wire == _BYTES else 1
            if number == 4:
                floats.append(memoryview(value.to_bytes(4, "little")))
        elif number == 13 and wire == _BYTES:
            key, text = _read_entry(view, *value)
            external[key] = text
        elif number == 14 and wire == _VARINT:
            location = value
    if any(d < 0 for d in dims):
        raise OnnxFormatError(f"tensor {name!r} has a negative dimension {dims}")
    return Tensor(name, tuple(dims), data_type, data_bytes, external if location == 1 or external else None, raw,
                  tuple(floats))


def _read_value_info(view: memoryview, pos: int, end: int) -> ValueInfo:
    name, elem_type, shape = "", None, None
    for number, wire, value in _fields(view, pos, end):
        if number == 1 and wire == _BYTES:
            name = _text(view, *value)
        elif number == 2 and wire == _BYTES:
            if elem_type is not None or shape is not None:
                raise OnnxFormatError(f"value {name!r} has two types")
            elem_type, shape = _read_type(view, *value)
    return ValueInfo(name, elem_type, shape)


def _read_type(view: memoryview, pos: int, end: int) -> tuple[int | None, tuple[Dim, ...] | None]:
    elem_type, shape = None, None
    seen = 0
    for number, wire, value in _fields(view, pos, end):
        if number == 1 and wire == _BYTES:  # tensor_type; other kinds leave elem_type None
            seen += 1
            elem_type = 0
            for n2, w2, v2 in _fields(view, *value):
                if n2 == 1 and w2 == _VARINT:
                    elem_type = v2
                elif n2 == 2 and w2 == _BYTES:
                    if shape is not None:  # protobuf would merge the two; no writer emits that
                        raise OnnxFormatError("a tensor type with two shapes")
                    shape = _read_shape(view, *v2)
    if seen > 1:
        raise OnnxFormatError("a value with two tensor types")
    return elem_type, shape


def _read_shape(view: memoryview, pos: int, end: int) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for number, wire, value in _fields(view, pos, end):
        if number != 1 or wire != _BYTES:
            continue
        dim_value = dim_param = None
        for n2, w2, v2 in _fields(view, *value):
            if n2 == 1 and w2 == _VARINT:
                dim_value = _int64(v2)
            elif n2 == 2 and w2 == _BYTES:
                dim_param = _text(view, *v2)
        dims.append(Dim(dim_value, dim_param))
        if len(dims) > MAX_RANK:
            raise OnnxFormatError(f"a shape of rank more than {MAX_RANK}")
    return tuple(dims)
