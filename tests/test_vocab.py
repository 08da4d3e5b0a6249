import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.runtime import ConfigError, MetadataError, Vocabulary

tokens = st.lists(st.lists(st.text(min_size=1, max_size=4), max_size=30), max_size=20)


def test_specials_have_fixed_ids():
    v = Vocabulary.build([["x"]])
    assert v.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)


def test_order_is_frequency_then_token():
    v = Vocabulary.build([["b", "a", "c", "c", "b", "d"]])
    assert v.tokens[4:] == ["b", "c", "a", "d"]


def test_min_freq_and_max_size():
    seqs = [["a"] * 5 + ["b"] * 3 + ["c"]]
    assert Vocabulary.build(seqs, min_freq=2).tokens[4:] == ["a", "b"]
    assert Vocabulary.build(seqs, max_size=5).tokens[4:] == ["a"]
    with pytest.raises(ConfigError, match="min_freq"):
        Vocabulary.build(seqs, min_freq=0)
    with pytest.raises(ConfigError, match="max_size"):
        Vocabulary.build(seqs, max_size=4)


def test_unknown_tokens_map_to_unk_and_reserved_names_are_not_specials():
    v = Vocabulary.build([["a", "<eos>", "<pad>"]])
    assert "<eos>" not in v
    assert v.encode(["a", "zzz", "<eos>"]) == [4, v.unk_id, v.unk_id]


@given(tokens)
def test_build_is_deterministic_whatever_the_input_order(seqs):
    flat = [t for s in seqs for t in s]
    assert Vocabulary.build(seqs) == Vocabulary.build([list(reversed(flat))])


@given(tokens)
def test_json_round_trip_and_checksum(seqs):
    v = Vocabulary.build(seqs)
    back = Vocabulary.from_json(v.to_json())
    assert back == v and back.checksum() == v.checksum()
    assert json.loads(v.to_json()) == v.tokens


def test_bad_vocabularies_are_refused():
    with pytest.raises(ConfigError, match="must start with"):
        Vocabulary(["a", "b"])
    with pytest.raises(ConfigError, match="duplicate"):
        Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "a", "a"])
    with pytest.raises(MetadataError, match="not valid JSON"):
        Vocabulary.from_json("[1,")
    with pytest.raises(MetadataError, match="JSON list"):
        Vocabulary.from_json('{"a": 1}')
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        Vocabulary.build([["a"]]).token(99)


def test_overlong_tokens_are_left_out():
    v = Vocabulary.build([["a" * 513, "b", "c" * 512]])
    assert v.tokens[4:] == ["b", "c" * 512]
    assert v.encode(["a" * 513]) == [v.unk_id]
