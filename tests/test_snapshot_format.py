"""Snapshot bytes as docs/FORMAT.md describes them: read and written here without rnnkit's code."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
from snapshot_bytes import header_bytes, seal

from rnnkit.runtime import StateError

HEADER = struct.Struct("<8sHI")
KEY = b"s" * 32


def read(data: bytes) -> tuple[int, dict, np.ndarray]:
    """The version, header and float32 body of an unsigned snapshot, by the layout in FORMAT.md."""
    magic, version, size = HEADER.unpack_from(data)
    assert magic == b"RNNKSNAP"
    assert hashlib.sha256(data[:-16]).digest()[:16] == data[-16:]
    header = json.loads(data[HEADER.size : HEADER.size + size].decode("utf-8"))
    return version, header, np.frombuffer(data[HEADER.size + size : -16], dtype="<f4")


def write(version: int, header: dict, arrays: list[np.ndarray], key: bytes | None = None) -> bytes:
    """Snapshot bytes of any version by FORMAT.md: SHA-256 from version 4 on, blake2b-128 before."""
    raw = header_bytes(header, version)
    body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
    return seal(HEADER.pack(b"RNNKSNAP", version, len(raw)) + raw + body, version, key)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_stream_snapshot_is_laid_out_as_documented(models, cell):
    model = models(task="lm", cell=cell, layers=2, level="word")
    s = model.stream()
    s.feed("这本书很好看我喜")
    version, header, body = read(s.snapshot())
    assert version == 4 and header["kind"] == "stream"
    assert header["model"] == hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert header["states"] == len(s.state) and header["shape"] == [2, 1, model.metadata.hidden]
    assert (header["pending"], header["consumed"], header["logits"]) == (s.pending, s.consumed, model.n_out)
    expected = np.concatenate([*(a.ravel() for a in s.state), s.logits])  # h0, (c0,) then the logits
    np.testing.assert_array_equal(body, expected)


def test_snapshots_written_from_the_document_restore(models):
    """A writer that follows FORMAT.md alone (another runtime) makes bytes rnnkit restores: version 4 and 5,
    and the older 1, 2 (blake2b) and 3 (blake2b, signed) that earlier rnnkits wrote."""
    model = models(task="classify", cell="lstm", level="word")
    s = model.stream()
    s.feed("质量太差了，不推荐")
    header = {"kind": "stream", "model": hashlib.sha256(model.path.read_bytes()).hexdigest(),
              "states": 2, "shape": list(s.state[0].shape), "pending": s.pending, "consumed": s.consumed,
              "logits": model.n_out}
    signed = {**header, "signed": "hmac-sha256"}
    assert write(4, header, [*s.state, s.logits]) == s.snapshot()  # byte for byte what rnnkit writes
    assert write(5, signed, [*s.state, s.logits], KEY) == s.snapshot(key=KEY)
    for version, head, key in ((4, header, None), (5, signed, KEY), (3, signed, KEY), (2, header, None),
                               (1, {k: v for k, v in header.items() if k != "kind"}, None)):
        restored = model.stream(write(version, head, [*s.state, s.logits], key), key=key)
        np.testing.assert_array_equal(restored.logits, s.logits)
        assert restored.consumed == s.consumed and restored.pending == s.pending
        assert restored.prediction() == s.prediction()
    with pytest.raises(StateError, match="tag_stream"):  # the other kind names the call that reads it
        model.stream(write(4, {**header, "kind": "tag"}, [*s.state, s.logits]))


def test_the_header_is_compact_json_in_the_documented_key_order(models):
    model = models(task="tag", cell="gru", lookahead=1)
    ts = model.tag_stream()
    ts.feed("我爱 北京")
    for key, order in ((None, []), (KEY, ["signed"])):
        data = ts.snapshot(key=key)
        _, _, size = HEADER.unpack_from(data)
        raw = data[HEADER.size : HEADER.size + size]
        header = json.loads(raw)
        assert list(header) == ["kind", "model", "states", "shape", "pending", "consumed", "logits", "tag", *order]
        assert list(header["tag"]) == ["offset", "tokens", "tail", "tags"]
        assert raw == json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        assert b", " not in raw and b": " not in raw and b"\\u" not in raw  # non-ASCII as itself


def test_a_digest_of_the_other_kind_or_an_unknown_version_is_refused(models):
    model = models(task="lm", cell="gru")
    s = model.stream()
    s.feed("我爱北京")
    _, header, body = read(s.snapshot())
    data = s.snapshot()
    blake = data[:-16] + hashlib.blake2b(data[:-16], digest_size=16).digest()
    with pytest.raises(StateError, match="checksum does not match"):  # version 4 is SHA-256, not blake2b
        model.stream(blake)
    old = bytearray(write(2, header, [body]))
    old[-16:] = hashlib.sha256(bytes(old[:-16])).digest()[:16]
    with pytest.raises(StateError, match="checksum does not match"):  # version 2 is blake2b
        model.stream(bytes(old))
    low = len(data) - 20  # the lowest mantissa byte of the last logit: still a finite number
    with pytest.raises(StateError, match="checksum does not match"):
        model.stream(data[:low] + bytes([data[low] ^ 1]) + data[low + 1 :])
    for version in (0, 6, 65535):
        with pytest.raises(StateError, match="not a stream snapshot"):
            model.stream(write(version, header, [body]))


def test_a_tag_stream_snapshot_carries_its_open_tokens(models):
    model = models(task="tag", cell="gru", lookahead=2)
    ts = model.tag_stream()
    settled = ts.feed("我爱北京天安门")
    version, header, body = read(ts.snapshot())
    assert version == 4 and header["kind"] == "tag"
    tag = header["tag"]
    assert set(tag) == {"offset", "tokens", "tail", "tags"} and tag["offset"] == len("我爱北京天安门")
    open_tokens = [t[0] for t in tag["tokens"]]
    assert "".join(w for w in settled.words) + "".join(open_tokens) == "我爱北京天安门"
    assert [t[1:3] for t in tag["tokens"]] == [[i, i + 1] for i in range(len(settled), 7)]
    assert len(tag["tags"]) <= len(tag["tokens"]) and set(tag["tags"]) <= set(model.labels)
    assert header["consumed"] == 7 and body.size == np.prod(header["shape"]) + model.n_out
    with pytest.raises(StateError, match=r"model\.stream"):
        model.tag_stream(model.stream().snapshot())
