"""The snapshot byte format shared by ``Stream`` and ``TagStream`` (docs/FORMAT.md, *Snapshots*).

    magic "RNNKSNAP" · u16 version · u32 header length      (little-endian)
    header: UTF-8 JSON object
    body: float32 little-endian — each state array (layers × 1 × hidden, C order), then the
          last logits (n_out) when the header's "logits" is not null
    blake2b-128 digest of everything before it

A snapshot is untrusted input: every field is checked before anything is restored, and one
that does not fit the model is refused with a ``StateError``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import StateError

if TYPE_CHECKING:
    from .model import Model

__all__ = ["KINDS", "VERSION", "pack", "unpack"]

MAGIC = b"RNNKSNAP"
VERSION = 2  # 2 added "kind" (stream or tag); version 1 snapshots are streams and still restore
KINDS = {"stream": "model.stream(snapshot)", "tag": "model.tag_stream(snapshot)"}
_HEADER = struct.Struct("<8sHI")  # magic, version, header length
_DIGEST = 16


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST).digest()


def pack(model: Model, kind: str, state: Sequence[np.ndarray], logits: np.ndarray | None, *, pending: str,
         consumed: int, extra: dict[str, Any] | None = None) -> bytes:
    """Snapshot bytes of one stream: its state arrays (layers, 1, hidden), last logits, counters."""
    header: dict[str, Any] = {
        "kind": kind, "model": model.identity, "states": len(state), "shape": list(state[0].shape),
        "pending": pending, "consumed": consumed, "logits": None if logits is None else int(logits.size),
    }
    if extra:
        header[kind] = extra
    raw = json.dumps(header, ensure_ascii=False).encode("utf-8")
    arrays = [*state, *([] if logits is None else [logits])]
    body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
    data = _HEADER.pack(MAGIC, VERSION, len(raw)) + raw + body
    return data + _digest(data)


def unpack(model: Model, data: Any, kind: str) -> tuple[dict[str, Any], list[np.ndarray], np.ndarray | None]:
    """The header, state arrays and logits of a ``kind`` snapshot of ``model``; ``StateError`` otherwise."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a snapshot is bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        magic, version, size = _HEADER.unpack_from(data)
        header = json.loads(data[_HEADER.size : _HEADER.size + size].decode("utf-8"))
    except (struct.error, ValueError, RecursionError) as e:  # ValueError: bad UTF-8 or JSON
        raise StateError("this is not a stream snapshot (or it is truncated)") from e
    if magic != MAGIC or version not in (1, VERSION) or not isinstance(header, dict):
        raise StateError("this is not a stream snapshot of this rnnkit version")
    if header.get("model") != model.identity:
        raise StateError("this snapshot was taken from another model; restore it with the model that made it")
    found = header.get("kind", "stream") if version == 1 else header.get("kind")
    if found != kind:
        if isinstance(found, str) and found in KINDS:
            raise StateError(f"this is a {found} snapshot, not a {kind} one: restore it with {KINDS[found]}")
        raise StateError("this snapshot is corrupt (its header does not fit the model)")
    shape = model.metadata.state_shape(1)
    n_logits, pending, consumed = header.get("logits"), header.get("pending"), header.get("consumed")
    if (header.get("states") != model.metadata.n_state or header.get("shape") != list(shape)
            or (n_logits is not None and (type(n_logits) is not int or n_logits != model.n_out))
            or not isinstance(pending, str) or type(consumed) is not int or consumed < 0):
        raise StateError("this snapshot is corrupt (its header does not fit the model)")
    size_state = int(np.prod(shape))
    body = data[_HEADER.size + size : -_DIGEST]
    if len(body) != 4 * (model.metadata.n_state * size_state + (n_logits or 0)):
        raise StateError("this snapshot is truncated or corrupt")
    if _digest(data[:-_DIGEST]) != data[-_DIGEST:]:
        raise StateError("this snapshot was edited or damaged (its checksum does not match)")
    flat = np.frombuffer(body, dtype="<f4").astype(np.float32)
    state = [flat[i * size_state : (i + 1) * size_state].reshape(shape) for i in range(model.metadata.n_state)]
    logits = flat[model.metadata.n_state * size_state :].copy() if n_logits else None
    return header, state, logits
