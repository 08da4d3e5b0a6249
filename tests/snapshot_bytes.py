"""Snapshot bytes by docs/FORMAT.md alone (hashlib, not rnnkit's code), for the tests that forge them."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

MAGIC = b"RNNKSNAP"
UNSIGNED, SIGNED = 4, 5  # what rnnkit writes; 1, 2 (unsigned) and 3 (signed) are older and still restore


def digest(data: bytes, version: int) -> bytes:
    """The 16-byte digest of a snapshot's bytes: SHA-256's first 16 from version 4 on, blake2b-128 before."""
    if version >= UNSIGNED:
        return hashlib.sha256(data).digest()[:16]
    return hashlib.blake2b(data, digest_size=16).digest()


def is_signed(version: int) -> bool:
    return version in (3, SIGNED)


def header_bytes(header: dict[str, Any], version: int) -> bytes:
    """The header as a writer of ``version`` spells it: compact from version 4 on, with spaces before."""
    if version >= UNSIGNED:
        return json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return json.dumps(header, ensure_ascii=False).encode("utf-8")


def seal(data: bytes, version: int, key: bytes | None = None) -> bytes:
    """``data`` (magic, version, header, body) with its digest, and its HMAC-SHA256 when ``key`` is given."""
    data += digest(data, version)
    return data + hmac.new(key, data, hashlib.sha256).digest() if key is not None else data
