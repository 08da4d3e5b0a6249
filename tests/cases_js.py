"""Catalogue cases of what the Python and JavaScript runtimes now share, E376–E389: the Unicode
version a file records (``rnnkit.unicode``) and snapshot versions 4 and 5 (SHA-256 digests)."""

from __future__ import annotations

import hashlib

from catalogue import Case, Ctx
from onnx_edits import rewrite_metadata

from rnnkit.runtime import load_model


def bad_unicode(c: Ctx):
    return c.once("unicode-short", lambda: rewrite_metadata(c.lm, c.path("unicode-short.onnx"), unicode="14.0"))


def blake2b_sealed(c: Ctx) -> bytes:
    """A version 4 snapshot sealed with the digest of versions 1–3 (blake2b-128), not SHA-256's."""
    s = load_model(c.lm).stream()
    s.feed("我爱")
    data = s.snapshot()[:-16]
    return data + hashlib.blake2b(data, digest_size=16).digest()


CASES: dict[str, Case] = {
    "E376": Case(lambda c: load_model(bad_unicode(c)), lambda c: ["inspect", bad_unicode(c)]),
    "E377": Case(lambda c: load_model(c.lm).stream(blake2b_sealed(c))),
}
