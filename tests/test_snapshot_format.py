"""Snapshot bytes as docs/FORMAT.md describes them: read and written here without rnnkit's code."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from rnnkit.runtime import StateError

HEADER = struct.Struct("<8sHI")


def read(data: bytes) -> tuple[int, dict, np.ndarray]:
    """The version, header and float32 body of a snapshot, by the layout in FORMAT.md."""
    magic, version, size = HEADER.unpack_from(data)
    assert magic == b"RNNKSNAP"
    assert hashlib.blake2b(data[:-16], digest_size=16).digest() == data[-16:]
    header = json.loads(data[HEADER.size : HEADER.size + size].decode("utf-8"))
    return version, header, np.frombuffer(data[HEADER.size + size : -16], dtype="<f4")


def write(version: int, header: dict, arrays: list[np.ndarray]) -> bytes:
    raw = json.dumps(header).encode("utf-8")
    body = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays)
    data = HEADER.pack(b"RNNKSNAP", version, len(raw)) + raw + body
    return data + hashlib.blake2b(data, digest_size=16).digest()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_stream_snapshot_is_laid_out_as_documented(models, cell):
    model = models(task="lm", cell=cell, layers=2, level="word")
    s = model.stream()
    s.feed("这本书很好看我喜")
    version, header, body = read(s.snapshot())
    assert version == 2 and header["kind"] == "stream"
    assert header["model"] == hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert header["states"] == len(s.state) and header["shape"] == [2, 1, model.metadata.hidden]
    assert (header["pending"], header["consumed"], header["logits"]) == (s.pending, s.consumed, model.n_out)
    expected = np.concatenate([*(a.ravel() for a in s.state), s.logits])  # h0, (c0,) then the logits
    np.testing.assert_array_equal(body, expected)


def test_snapshots_written_from_the_document_restore(models):
    """A writer that follows FORMAT.md alone (another runtime) makes bytes rnnkit restores, version 1 too."""
    model = models(task="classify", cell="lstm", level="word")
    s = model.stream()
    s.feed("质量太差了，不推荐")
    header = {"kind": "stream", "model": hashlib.sha256(model.path.read_bytes()).hexdigest(),
              "states": 2, "shape": list(s.state[0].shape), "pending": s.pending, "consumed": s.consumed,
              "logits": model.n_out}
    for version, head in ((2, header), (1, {k: v for k, v in header.items() if k != "kind"})):
        restored = model.stream(write(version, head, [*s.state, s.logits]))
        np.testing.assert_array_equal(restored.logits, s.logits)
        assert restored.consumed == s.consumed and restored.pending == s.pending
        assert restored.prediction() == s.prediction()
    with pytest.raises(StateError, match="tag_stream"):  # the other kind names the call that reads it
        model.stream(write(2, {**header, "kind": "tag"}, [*s.state, s.logits]))


def test_a_tag_stream_snapshot_carries_its_open_tokens(models):
    model = models(task="tag", cell="gru", lookahead=2)
    ts = model.tag_stream()
    settled = ts.feed("我爱北京天安门")
    version, header, body = read(ts.snapshot())
    assert version == 2 and header["kind"] == "tag"
    tag = header["tag"]
    assert set(tag) == {"offset", "tokens", "tail", "tags"} and tag["offset"] == len("我爱北京天安门")
    open_tokens = [t[0] for t in tag["tokens"]]
    assert "".join(w for w in settled.words) + "".join(open_tokens) == "我爱北京天安门"
    assert [t[1:3] for t in tag["tokens"]] == [[i, i + 1] for i in range(len(settled), 7)]
    assert len(tag["tags"]) <= len(tag["tokens"]) and set(tag["tags"]) <= set(model.labels)
    assert header["consumed"] == 7 and body.size == np.prod(header["shape"]) + model.n_out
    with pytest.raises(StateError, match=r"model\.stream"):
        model.tag_stream(model.stream().snapshot())
