"""Signed snapshots and restored values: what a server that hands snapshots to clients relies on.

The byte layout is checked against docs/FORMAT.md with hashlib/hmac alone, not rnnkit's code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import numpy as np
import pytest
from snapshot_bytes import SIGNED, UNSIGNED, digest, header_bytes, seal

import rnnkit.runtime.snapshot as snapshot_module
from rnnkit.runtime import ConfigError, StateError

KEY = b"k" * 32
HEADER = struct.Struct("<8sHI")


def layout(data: bytes, key: bytes | None) -> tuple[int, dict, np.ndarray]:
    """The version, header and body of a snapshot read by FORMAT.md, its digest and signature checked."""
    magic, version, size = HEADER.unpack_from(data)
    assert magic == b"RNNKSNAP"
    if key is not None:
        assert version == SIGNED
        assert hmac.compare_digest(hmac.new(key, data[:-32], hashlib.sha256).digest(), data[-32:])
        data = data[:-32]
    assert version == (SIGNED if key is not None else UNSIGNED)
    assert hashlib.sha256(data[:-16]).digest()[:16] == data[-16:]
    header = json.loads(data[HEADER.size : HEADER.size + size].decode("utf-8"))
    return version, header, np.frombuffer(data[HEADER.size + size : -16], dtype="<f4")


@pytest.fixture(params=[dict(task="lm", cell="gru"), dict(task="classify", cell="lstm", layers=2),
                        dict(task="classify", cell="rnn", level="word")], ids=["lm-gru", "clf-lstm", "clf-word"])
def model(request, models):
    return models(**request.param)


@pytest.fixture
def tagger(models):
    return models(task="tag", cell="gru", lookahead=1)


def fed(model, key=None, text="这本书很好看我喜"):
    s = model.stream(key=key)
    s.feed(text)
    return s


# -- the format ------------------------------------------------------------------------------------
def test_a_signed_snapshot_is_the_unsigned_layout_plus_an_hmac(model):
    s = fed(model)
    version, header, values = layout(s.snapshot(key=KEY), KEY)
    plain_version, plain_header, plain_values = layout(s.snapshot(), None)
    assert (version, plain_version) == (5, 4) and header.pop("signed") == "hmac-sha256"
    assert header == plain_header and "signed" not in plain_header
    np.testing.assert_array_equal(values, plain_values)


@pytest.mark.parametrize("version", [5, 3])
def test_a_snapshot_signed_by_the_document_restores(model, version):
    """Another runtime that follows FORMAT.md makes signed bytes rnnkit restores (version 5, and the older 3)."""
    s = fed(model)
    _, header, values = layout(s.snapshot(), None)
    header["signed"] = "hmac-sha256"
    raw = header_bytes(header, version)
    data = seal(HEADER.pack(b"RNNKSNAP", version, len(raw)) + raw + values.tobytes(), version, KEY)
    if version == 5:
        assert data == s.snapshot(key=KEY)  # the very bytes rnnkit writes
    restored = model.stream(data, key=KEY)
    assert restored.consumed == s.consumed and restored.pending == s.pending
    np.testing.assert_array_equal(restored.logits, s.logits)
    for a, b in zip(restored.state, s.state):
        np.testing.assert_array_equal(a, b)


def test_a_restored_signed_stream_continues_exactly(model):
    s = fed(model)
    twin = model.stream(s.snapshot(key=KEY), key=KEY)
    np.testing.assert_array_equal(twin.feed("得很好"), s.feed("得很好"))
    np.testing.assert_array_equal(twin.flush(), s.flush())


# -- keys ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("same", [KEY.decode(), bytearray(KEY), memoryview(KEY)])
def test_a_key_may_be_str_or_any_bytes(model, same):
    data = fed(model).snapshot(key=KEY)
    assert model.stream(data, key=same).consumed == fed(model).consumed
    assert fed(model).snapshot(key=same) == data
    assert model.stream(fed(model).snapshot(key="密钥"), key="密钥".encode()).consumed > 0  # UTF-8


@pytest.mark.parametrize(("key", "error"), [(b"", ConfigError), ("", ConfigError), ("\udcff", ConfigError),
                                            (1, TypeError), (["k"], TypeError), (True, TypeError)])
def test_a_bad_key_is_refused_wherever_it_is_given(model, key, error):
    data = fed(model).snapshot()
    for call in (lambda: fed(model).snapshot(key=key), lambda: model.stream(key=key),
                 lambda: model.stream(data, key=key)):
        with pytest.raises(error):
            call()


def test_a_keyed_stream_signs_every_snapshot_and_its_forks_do_too(model):
    s = fed(model, key=KEY)
    for data in (s.snapshot(), s.fork().snapshot()):
        assert layout(data, KEY)[0] == 5
        with pytest.raises(StateError, match="is signed"):
            model.stream(data)
    s.reset()
    assert layout(s.snapshot(), KEY)[0] == 5
    other = b"o" * 32
    layout(s.snapshot(key=other), other)  # an explicit key wins
    restored = model.stream(fed(model).snapshot(key=KEY), key=KEY)
    layout(restored.snapshot(), KEY)  # a stream restored with a key keeps it
    layout(restored.fork().snapshot(), KEY)


def test_a_keyed_stream_stepped_in_a_batcher_still_signs(models):
    model = models(task="lm", cell="gru")
    streams = [model.stream(key=KEY) for _ in range(3)]
    batcher = model.batcher()
    batcher.feed(streams, ["我爱", "北京", "天安门"])
    batcher.step(streams, [5, 6, 7])
    for s in streams:
        restored = model.stream(s.snapshot(), key=KEY)
        np.testing.assert_array_equal(restored.logits, s.logits)


def test_tag_streams_sign_like_streams(tagger):
    ts = tagger.tag_stream(key=KEY)
    ts.feed("我爱北京")
    data = ts.snapshot()
    layout(data, KEY)
    layout(ts.fork().snapshot(), KEY)
    layout(tagger.tag_stream(ts.snapshot(key=None), key=KEY).snapshot(), KEY)
    restored = tagger.tag_stream(data, key=KEY)
    assert restored.end("天安门") == ts.end("天安门")
    for key, match in ((None, "is signed"), (b"x" * 32, "does not match")):
        with pytest.raises(StateError, match=match):
            tagger.tag_stream(data, key=key)
    plain = tagger.tag_stream()
    plain.feed("我")
    with pytest.raises(StateError, match="not signed"):
        tagger.tag_stream(plain.snapshot(), key=KEY)


# -- forgeries ---------------------------------------------------------------------------------------
def test_every_flipped_bit_and_every_cut_of_a_signed_snapshot_is_refused(models):
    model = models(task="lm", cell="gru")
    data = fed(model).snapshot(key=KEY)
    for i in range(len(data)):
        for bit in range(8):
            forged = data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
            with pytest.raises(StateError):
                model.stream(forged, key=KEY)
        with pytest.raises(StateError):
            model.stream(data[:i], key=KEY)
    with pytest.raises(StateError):
        model.stream(data + b"\x00", key=KEY)


def test_the_signature_is_checked_before_anything_is_parsed(models, monkeypatch):
    model = models(task="lm", cell="gru")
    for version in (5, 3):
        junk = HEADER.pack(b"RNNKSNAP", version, 5) + b"[[[[[" + b"\x00" * 64
        forged = junk + hmac.new(b"attacker", junk, hashlib.sha256).digest()
        with pytest.raises(StateError, match="signature does not match"):
            model.stream(forged, key=KEY)
    compared = []
    real = snapshot_module.hmac.compare_digest
    monkeypatch.setattr(snapshot_module.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    model.stream(fed(model).snapshot(key=KEY), key=KEY)
    assert compared == [1]  # a constant-time comparison, not ==


def test_an_unsigned_copy_of_a_signed_snapshot_is_refused_with_the_key(models):
    model = models(task="lm", cell="gru")
    data = fed(model).snapshot(key=KEY)
    _, header, values = layout(data, KEY)
    unsigned = {k: v for k, v in header.items() if k != "signed"}
    for version, head in ((4, unsigned), (4, header), (2, unsigned), (2, header), (1, header)):
        raw = json.dumps(head).encode()
        stripped = seal(HEADER.pack(b"RNNKSNAP", version, len(raw)) + raw + values.tobytes(), version)
        with pytest.raises(StateError, match="not signed"):
            model.stream(stripped, key=KEY)
        if head is header:  # still saying "signed" in a version that is not: corrupt
            with pytest.raises(StateError, match="corrupt"):
                model.stream(stripped)


# -- what is restored --------------------------------------------------------------------------------
def test_a_value_that_is_not_finite_anywhere_is_refused(model):
    data = fed(model).snapshot()
    values = layout(data, None)[2]
    body_start = HEADER.size + HEADER.unpack_from(data)[2]
    for i in range(len(values)):
        for bad in (np.nan, np.inf, -np.inf):
            changed = values.copy()
            changed[i] = bad
            forged = seal(data[:body_start] + changed.tobytes(), UNSIGNED)
            with pytest.raises(StateError, match="NaN or infinity"):
                model.stream(forged)
    big = values.copy()
    big[0] = np.finfo(np.float32).max  # finite: restores
    forged = data[:body_start] + big.tobytes()
    assert model.stream(forged + digest(forged, UNSIGNED)).consumed > 0


def test_a_not_finite_value_is_refused_even_when_signed(tagger):
    ts = tagger.tag_stream(key=KEY)
    ts.feed("我爱北京")
    _, header, values = layout(ts.snapshot(), KEY)
    values = values.copy()
    values[-1] = np.nan
    raw = header_bytes(header, SIGNED)
    data = seal(HEADER.pack(b"RNNKSNAP", SIGNED, len(raw)) + raw + values.tobytes(), SIGNED, KEY)
    with pytest.raises(StateError, match="NaN or infinity"):
        tagger.tag_stream(data, key=KEY)


@pytest.mark.parametrize("changes", [{"consumed": 2**53 + 1}, {"consumed": -1}, {"consumed": 1.0},
                                     {"pending": "\ud800"}, {"pending": "a\udfffb"}])
def test_counters_and_texts_every_runtime_reads_alike(models, changes):
    model = models(task="lm", cell="gru")
    _, header, values = layout(fed(model).snapshot(), None)
    header.update(changes)
    raw = json.dumps(header).encode()  # ensure_ascii: a lone surrogate travels as a \\u escape
    for version in (UNSIGNED, 2):
        data = HEADER.pack(b"RNNKSNAP", version, len(raw)) + raw + values.tobytes()
        with pytest.raises(StateError, match="corrupt"):
            model.stream(seal(data, version))


def test_the_largest_counter_restores(models):
    model = models(task="lm", cell="gru")
    _, header, values = layout(fed(model).snapshot(), None)
    header["consumed"] = 2**53
    raw = header_bytes(header, UNSIGNED)
    data = HEADER.pack(b"RNNKSNAP", UNSIGNED, len(raw)) + raw + values.tobytes()
    assert model.stream(seal(data, UNSIGNED)).consumed == 2**53


def test_a_signed_tag_streams_inner_stream_signs_too(tmp_path):
    from factory import tiny_onnx

    from rnnkit.runtime import StateError, load_model

    model = load_model(tiny_onnx(tmp_path, task="tag", cell="gru"))
    secret = b"k" * 32
    for ts in (model.tag_stream(key=secret), model.tag_stream(model.tag_stream(key=secret).snapshot(), key=secret)):
        ts.feed("我爱北京")
        inner = ts.stream.snapshot()
        assert model.stream(inner, key=secret).consumed == ts.stream.consumed
        with pytest.raises(StateError):
            model.stream(inner)  # signed: refused without the key
        fork = ts.fork()
        assert model.stream(fork.stream.snapshot(), key=secret).consumed == ts.stream.consumed
