"""FORMAT.md's "Details an implementation needs", held to the code: the rules as written give rnnkit's answers."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

from rnnkit.runtime.vocab import SPECIALS, vocab_checksum

DOC = (Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md").read_text(encoding="utf-8")
TRICKY = ["<pad>", "<unk>", "<bos>", "<eos>", 'a"b', "back\\slash", "\n", "\t", "\b\f\r", "\x01\x1f", "\x7f",
          "é", "中文", "\u2028", "😀", " "]


def test_the_whitespace_listed_is_pythons_isspace():
    section = DOC[DOC.index("- **Whitespace**"):DOC.index("- **The vocabulary**")]
    listed: set[int] = set()
    for first, last in re.findall(r"U\+([0-9A-F]{4})(?:–U\+([0-9A-F]{4}))?", section):
        listed.update(range(int(first, 16), int(last or first, 16) + 1))
    assert listed == {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert f"({len(listed)} code points)" in section


def _json_string(token: str) -> str:
    """A token as FORMAT.md says vocab_sha256 writes it, by hand (no json module)."""
    named = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    return '"' + "".join(named.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in token) + '"'


def test_the_vocab_sha256_rule_in_words_gives_the_checksum():
    tokens = [*SPECIALS.values(), *TRICKY[4:]]
    by_hand = "[" + ",".join(_json_string(t) for t in tokens) + "]"
    assert hashlib.sha256(by_hand.encode("utf-8")).hexdigest() == vocab_checksum(tokens)


def _metadata_from_bytes(data: bytes) -> dict[str, str]:
    """FORMAT.md's recipe: ModelProto field 14, entries of key (1) and value (2)."""
    def varint(at: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            byte = data[at]
            value |= (byte & 0x7F) << shift
            at, shift = at + 1, shift + 7
            if byte < 0x80:
                return value, at

    def fields(start: int, end: int):
        at = start
        while at < end:
            tag, at = varint(at)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                _, at = varint(at)
            elif wire == 1:
                at += 8
            elif wire == 5:
                at += 4
            else:
                assert wire == 2
                length, at = varint(at)
                yield number, at, at + length
                at += length

    props = {}
    for number, start, end in fields(0, len(data)):
        if number == 14:
            entry = {n: data[a:b].decode("utf-8") for n, a, b in fields(start, end)}
            props[entry[1]] = entry[2]
    return props


def test_the_metadata_recipe_reads_what_onnx_reads(tmp_path):
    pytest.importorskip("torch")
    import onnx
    from factory import tiny_onnx

    path = tiny_onnx(tmp_path, task="tag")
    expected = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert _metadata_from_bytes(path.read_bytes()) == expected and "rnnkit.vocab" in expected


def test_decoding_and_tagged_text_are_as_written(tmp_path):
    pytest.importorskip("torch")
    from factory import tiny_onnx

    from rnnkit.runtime import load_model

    tagger = load_model(tiny_onnx(tmp_path / "tag", task="tag"))
    result = tagger.tag("Ａb  c")
    assert [token for token, _ in result] == ["Ａ", "b", " ", " ", "c"]  # the caller's code points
    assert "".join(result.words) == "Ａb  c"  # words are slices of the caller's text, covering it
    lm = load_model(tiny_onnx(tmp_path / "lm", task="lm"))
    assert lm.decode([0, 1, 2, 3]) == "\ufffd"
    assert lm.stream().feed("") is None


def test_greedy_ties_go_to_the_lowest_id_and_banned_ids_never_come_out():
    import numpy as np

    from rnnkit.runtime.sampling import Sampler

    greedy = Sampler(0.0, None, None, 0)
    logits = np.array([9.0, 9.0, 1.0, 3.0, 3.0, 0.5], np.float32)
    assert greedy.choose(logits, greedy.rng(), banned=(0, 1, 2)) == 3
