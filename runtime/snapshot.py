"""The snapshot byte format shared by ``Stream`` and ``TagStream`` (docs/FORMAT.md, *Snapshots*).

    magic "RNNKSNAP" · u16 version · u32 header length      (little-endian)
    header: UTF-8 JSON object (compact, keys in a fixed order: the bytes are the same in every runtime)
    body: float32 little-endian — each state array (layers × 1 × hidden, C order), then the
          last logits (n_out) when the header's "logits" is not null
    digest of everything before it: the first 16 bytes of SHA-256 (versions 1–3: blake2b-128)
    signed versions only (5; 3): HMAC-SHA256 of everything before it, under the caller's key

Versions 4 (unsigned) and 5 (signed) are written; 1, 2 and 3 (blake2b digests, which a
browser cannot compute without a library) still restore.

A snapshot is untrusted input: every field is checked before anything is restored, and one
that does not fit the model is refused with a ``StateError``. A snapshot that leaves the
process (a server handing it to a client) can be signed: once a key is given, only snapshots
signed with that key restore, and their signature is checked before any other byte is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, StateError

if TYPE_CHECKING:
    from .model import Model

__all__ = ["KINDS", "SIGNED", "VERSION", "Key", "check_key", "pack", "unpack"]

MAGIC = b"RNNKSNAP"
VERSION = 4  # 4: SHA-256 digest, compact header; 2: "kind" (stream or tag); 1: streams only
SIGNED = 5  # a version 4 snapshot with "signed" in its header and an HMAC-SHA256 tag after its digest
_READ = {1: False, 2: False, 3: True, VERSION: False, SIGNED: True}  # version → signed
KINDS = {"stream": "model.stream(snapshot)", "tag": "model.tag_stream(snapshot)"}
_HEADER = struct.Struct("<8sHI")  # magic, version, header length
_DIGEST = 16
_TAG = 32  # HMAC-SHA256
_SIGNATURE = "hmac-sha256"
MAX_CONSUMED = 2**53  # a counter every runtime reads exactly (a JavaScript number)
Key = bytes | bytearray | memoryview | str


def check_key(key: Key | None) -> bytes | None:
    """A signing key as bytes (a ``str`` is encoded UTF-8), or None; ``ConfigError`` if empty."""
    if key is None:
        return None
    if isinstance(key, str):
        try:
            key = key.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError("a snapshot key that is a str must be encodable as UTF-8 (it holds a lone "
                              "surrogate); pass bytes") from None
    elif isinstance(key, (bytes, bytearray, memoryview)):
        key = bytes(key)
    else:
        raise TypeError(f"a snapshot key is bytes or str, got {type(key).__name__}")
    if not key:
        raise ConfigError("a snapshot key must not be empty; use a secret of 32 random bytes "
                          "(secrets.token_bytes(32))")
    return key


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _digest(data: bytes, version: int) -> bytes:
    if version < VERSION:
        return hashlib.blake2b(data, digest_size=_DIGEST).digest()
    return hashlib.sha256(data).digest()[:_DIGEST]


def pack(model: Model, kind: str, state: Sequence[np.ndarray], logits: np.ndarray | None, *, pending: str,
         consumed: int, extra: dict[str, Any] | None = None, key: bytes | None = None) -> bytes:
    """Snapshot bytes of one stream: its state arrays (layers, 1, hidden), last logits, counters;
    signed when ``key`` (bytes from ``check_key``) is given."""
    header: dict[str, Any] = {
        "kind": kind, "model": model.identity, "states": len(state), "shape": list(state[0].shape),
        "pending": pending, "consumed": consumed, "logits": None if logits is None else int(logits.size),
    }
    if extra:
        header[kind] = extra
    if key is not None:
        header["signed"] = _SIGNATURE
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    arrays = [*state, *([] if logits is None else [logits])]
    body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
    version = VERSION if key is None else SIGNED
    data = _HEADER.pack(MAGIC, version, len(raw)) + raw + body
    data += _digest(data, version)
    return data if key is None else data + _sign(key, data)


def unpack(model: Model, data: Any, kind: str, *, key: bytes | None = None,
           ) -> tuple[dict[str, Any], list[np.ndarray], np.ndarray | None]:
    """The header, state arrays and logits of a ``kind`` snapshot of ``model``; ``StateError`` otherwise.

    With ``key`` (bytes from ``check_key``) only a snapshot signed with it restores; without,
    only an unsigned one. Every value restored is finite.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a snapshot is bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        magic, version, size = _HEADER.unpack_from(data)
    except struct.error as e:
        raise StateError("this is not a stream snapshot (or it is truncated)") from e
    if magic != MAGIC or version not in _READ:
        raise StateError("this is not a stream snapshot of this rnnkit version")
    signed = _READ[version]
    if signed and key is None:
        raise StateError("this snapshot is signed: restore it with the key it was signed with (key=...)")
    if not signed and key is not None:
        raise StateError("this snapshot is not signed and a key was given: only snapshots signed with "
                         "that key restore (take them with snapshot(key=...))")
    if signed:  # the signature first: nothing of a forged snapshot is parsed
        if len(data) < _HEADER.size + _DIGEST + _TAG or not hmac.compare_digest(_sign(key, data[:-_TAG]),
                                                                               data[-_TAG:]):
            raise StateError("this snapshot's signature does not match the key: it was signed with another "
                             "key, or edited")
        data = data[:-_TAG]
    try:
        header = json.loads(data[_HEADER.size : _HEADER.size + size].decode("utf-8"))
    except (ValueError, RecursionError) as e:  # ValueError: bad UTF-8 or JSON
        raise StateError("this is not a stream snapshot (or it is truncated)") from e
    try:  # JSON escapes can spell lone surrogates, which no text holds
        json.dumps(header, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise StateError("this snapshot is corrupt (its text holds a lone surrogate, which is not Unicode "
                         "text)") from e
    except RecursionError as e:
        raise StateError("this is not a stream snapshot (or it is truncated)") from e
    if not isinstance(header, dict):
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
            or not isinstance(pending, str) or type(consumed) is not int or not 0 <= consumed <= MAX_CONSUMED
            or header.get("signed") != (_SIGNATURE if signed else None)):
        raise StateError("this snapshot is corrupt (its header does not fit the model)")
    size_state = int(np.prod(shape))
    body = data[_HEADER.size + size : -_DIGEST]
    if len(body) != 4 * (model.metadata.n_state * size_state + (n_logits or 0)):
        raise StateError("this snapshot is truncated or corrupt")
    if _digest(data[:-_DIGEST], version) != data[-_DIGEST:]:
        raise StateError("this snapshot was edited or damaged (its checksum does not match)")
    flat = np.frombuffer(body, dtype="<f4").astype(np.float32)
    if not np.isfinite(flat).all():
        raise StateError("this snapshot holds NaN or infinity in its state or logits; it is corrupt, or its "
                         "stream had diverged: start a new stream")
    state = [flat[i * size_state : (i + 1) * size_state].reshape(shape) for i in range(model.metadata.n_state)]
    logits = flat[model.metadata.n_state * size_state :].copy() if n_logits else None
    return header, state, logits
