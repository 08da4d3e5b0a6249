"""Catalogue cases: signed snapshots, restored values that are not numbers, and the CLI's environment
(closed stdin, ``--file`` inputs that are not files, names that are not UTF-8 or hold control characters)."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
from typing import Any

import numpy as np
from catalogue import Case, Ctx
from snapshot_bytes import digest, is_signed

from rnnkit.runtime import load_model
from rnnkit.runtime.commands import MAX_TEXT_LINE

KEY, OTHER = b"server secret 1", b"server secret 2"


def rebuild(data: bytes, *, key: bytes | None = None, version: int | None = None, body: np.ndarray | None = None,
            **changes: Any) -> bytes:
    """A snapshot rebuilt from ``data`` (signed or not) with header fields, version or body replaced, its
    checksum recomputed and, with ``key``, signed again: only the changed part can be refused."""
    _, old_version, size = struct.unpack_from("<8sHI", data)
    header = json.loads(data[14 : 14 + size])
    end = len(data) - 16 - (32 if is_signed(old_version) else 0)
    floats = np.frombuffer(data[14 + size : end], "<f4") if body is None else np.asarray(body, "<f4")
    header.update(changes)
    raw = json.dumps(header).encode()
    version = version or old_version
    out = struct.pack("<8sHI", b"RNNKSNAP", version, len(raw)) + raw + floats.tobytes()
    out += digest(out, version)
    return out + hmac.new(key, out, hashlib.sha256).digest() if key else out


def body(data: bytes) -> np.ndarray:
    """The float32 values of a snapshot (state, then logits), as a writable copy."""
    _, version, size = struct.unpack_from("<8sHI", data)
    return np.frombuffer(data[14 + size : len(data) - 16 - (32 if is_signed(version) else 0)], "<f4").copy()


def signed(c: Ctx, name: str = "lm", key: bytes = KEY) -> bytes:
    return c.once(f"signed-{name}-{key!r}", lambda: _signed(c, name, key))


def _signed(c: Ctx, name: str, key: bytes) -> bytes:
    stream = c.model(name).stream(key=key)
    stream.feed("我爱北京")
    return stream.snapshot()


def signed_tag(c: Ctx, key: bytes = KEY) -> bytes:
    ts = c.model("tagger").tag_stream(key=key)
    ts.feed("我爱北京")
    return ts.snapshot()


def with_value(data: bytes, index: int, value: float, *, key: bytes | None = None) -> bytes:
    values = body(data)
    values[index] = value
    return rebuild(data, key=key, body=values)


def flip_last_float(data: bytes) -> bytes:
    i = len(data) - 32 - 16 - 2  # in the last float of the body, before the digest and the signature
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def lm(c: Ctx):
    return c.model("lm")


def tagger(c: Ctx):
    return c.model("tagger")


def no_stdin(mp) -> None:
    mp.setattr(sys, "stdin", None)


def locked_text(c: Ctx):
    """A text file in the shared folder that only its owner may read."""
    def make():
        path = c.public / "locked.txt"
        path.write_text("好\n", encoding="utf-8")
        path.chmod(0o000)
        return path
    return c.once("locked-text", make)


def long_line(c: Ctx):
    return c.file("long.txt", b"ok\n" + b"x" * (MAX_TEXT_LINE + 1))


def device() -> str:
    return "/dev/zero"  # a device that never ends


CASES: dict[str, Case] = {
    # signed snapshots
    "E200": Case(lambda c: lm(c).stream(signed(c))),
    "E201": Case(lambda c: lm(c).stream(c.snapshot(), key=KEY)),
    "E202": Case(lambda c: lm(c).stream(signed(c), key=OTHER)),
    "E203": Case(lambda c: lm(c).stream(flip_last_float(signed(c)), key=KEY)),
    "E204": Case(lambda c: lm(c).stream(signed(c)[:-1], key=KEY)),
    "E205": Case(lambda c: tagger(c).tag_stream(signed_tag(c))),
    "E206": Case(lambda c: tagger(c).tag_stream(signed_tag(c), key=OTHER)),
    "E207": Case(lambda c: lm(c).stream(rebuild(signed(c), version=4))),  # the tag dropped, "signed" kept
    "E208": Case(lambda c: lm(c).stream().snapshot(key=b"")),
    "E209": Case(lambda c: lm(c).stream().snapshot(key=12345)),
    "E210": Case(lambda c: lm(c).stream(key="\ud800 not UTF-8")),
    "E211": Case(lambda c: lm(c).stream(signed(c), key="")),
    "E212": Case(lambda c: lm(c).stream(signed(c, "lm2"), key=KEY)),
    "E213": Case(lambda c: lm(c).stream(rebuild(signed(c), key=KEY, signed="hmac-md5"), key=KEY)),
    "E214": Case(lambda c: tagger(c).stream(signed_tag(c), key=KEY)),
    "E215": Case(lambda c: lm(c).stream(rebuild(signed(c), version=4, signed=None), key=KEY)),
    # restored values that are not numbers, or not text
    "E216": Case(lambda c: lm(c).stream(with_value(c.snapshot(), 0, float("nan")))),
    "E217": Case(lambda c: lm(c).stream(with_value(c.snapshot(), -1, float("inf")))),
    "E218": Case(lambda c: lm(c).stream(with_value(signed(c), 3, float("-inf"), key=KEY), key=KEY)),
    "E219": Case(lambda c: tagger(c).tag_stream(with_value(c.tag_snapshot(), 0, float("nan")))),
    "E220": Case(lambda c: lm(c).stream(rebuild(c.snapshot(), consumed=2**53 + 1))),
    "E221": Case(lambda c: lm(c).stream(rebuild(c.snapshot(), pending="\ud800"))),
    "E222": Case(lambda c: tagger(c).tag_stream(rebuild(c.tag_snapshot(), tag={
        "offset": 4, "tokens": [["\udc80", 0, 1, ""]], "tail": "", "tags": []}))),
    "E223": Case(lambda c: c.model("clf").stream(with_value(c.snapshot("clf"), 12, float("nan")))),
    # the CLI's environment
    "E224": Case(None, lambda c: ["stream", c.clf], patch=no_stdin),
    "E225": Case(None, lambda c: ["classify", c.clf, "--file", "-"], patch=no_stdin),
    "E226": Case(None, lambda c: ["classify", c.clf, "--file", c.fifo("texts.fifo")]),
    "E227": Case(None, lambda c: ["classify", c.clf, "--file", device()]),
    "E228": Case(None, lambda c: ["classify", c.clf, "--file", c.root]),
    "E229": Case(None, lambda c: ["classify", c.clf, "--file", c.path("no-texts.txt")]),
    "E230": Case(None, lambda c: ["classify", c.clf, "--file", "-"], stdin=b"x" * (MAX_TEXT_LINE + 1) + b"\n"),
    "E231": Case(None, lambda c: ["classify", c.clf, "--file", long_line(c)]),
    "E232": Case(None, lambda c: ["classify", c.clf, "--file", c.file("blank.txt", b"\n  \n\t\n")]),
    "E233": Case(None, lambda c: ["classify", c.clf, "--file", c.file("latin1.txt", "schön\n".encode("latin-1"))]),
    "E234": Case(None, lambda c: ["classify", c.clf, "--file", "-"], stdin=b"ok\n\xff\xfe\n"),
    "E235": Case(lambda c: load_model(c.path("gone\udcff.onnx")), lambda c: ["inspect", c.path("gone\udcff.onnx")]),
    "E236": Case(None, lambda c: ["inspect", c.path("gone\x1b[2J\x07.onnx")]),
    "E237": Case(None, lambda c: ["inspect", c.path("two\nlines.onnx")]),
    "E238": Case(None, lambda c: ["classify", c.clf, "--file", c.path("gone\udcfe\x1b.txt")]),
    "E239": Case(None, lambda c: ["classify", c.clf, "--file", locked_text(c)], nobody=True, prepare=locked_text),
}

