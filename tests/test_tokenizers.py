import itertools
import re
import unicodedata
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.runtime import (
    CharTokenizer,
    ConfigError,
    MetadataError,
    RnnkitWarning,
    Vocabulary,
    WordTokenizer,
    tokenizer_from_config,
)
from rnnkit.runtime.tokenizers import MAX_HELD

# Arbitrary Unicode, surrogates excluded (Python strings from files never hold them unpaired).
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200)
cjk = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), max_size=50)
mixed = st.text(
    alphabet=st.sampled_from(list("我爱北京天安门上海人民的。，！ \t\n\rabcXYZ019.-%#&é\u0301😀\x00\u200b")),
    max_size=80,
)
TOKENIZERS = [
    CharTokenizer(),
    CharTokenizer(normalize=None),
    CharTokenizer(lowercase=True, keep_whitespace=False),
    WordTokenizer(),
    WordTokenizer(hmm=False, normalize=None),
]
IDS = ["char-nfkc", "char-raw", "char-lower-nows", "word-hmm", "word-nohmm-raw"]


def _normalized(tok, text):
    return "".join(tok._pieces(text))


@pytest.mark.parametrize("tok", TOKENIZERS, ids=IDS)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=st.one_of(any_text, cjk, mixed))
def test_round_trip_for_in_vocabulary_text(tok, text):
    vocab = Vocabulary.build([tok.tokenize(text)])
    ids = tok.encode(text, vocab)
    assert all(i >= 4 for i in ids)
    expected = _normalized(tok, text)
    if not tok.keep_whitespace:
        expected = "".join(t for t in tok.tokenize(text))
    assert tok.decode(ids, vocab) == expected
    if tok.normalize is None and tok.keep_whitespace and not tok.lowercase:
        assert tok.decode(ids, vocab) == text


@pytest.mark.parametrize("tok", TOKENIZERS, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(text=st.one_of(any_text, mixed))
def test_spans_cover_the_text_in_order(tok, text):
    spans = tok.tokenize_spans(text)
    # in order; spans overlap only where one input character normalised into several that
    # were cut apart (e.g. "¼" → "1⁄4")
    for a, b in itertools.pairwise(spans):
        assert a.start <= b.start and a.end <= b.end
        assert a.end <= b.start or len(tok.normalize_token(text[b.start : a.end])) > 1
    if tok.keep_whitespace:
        covered = set()
        for s in spans:
            covered.update(range(s.start, s.end))
        assert covered == set(range(len(text)))


@pytest.mark.parametrize("tok", TOKENIZERS, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(text=any_text)
def test_unknown_tokens_become_unk_and_never_raise(tok, text):
    vocab = Vocabulary.build([["我"]])
    ids = tok.encode(text, vocab)
    assert len(ids) == len(tok.tokenize(text))
    assert set(ids) <= {vocab.unk_id, vocab.id("我")}
    tok.decode(ids, vocab)


@pytest.mark.parametrize("tok", TOKENIZERS, ids=IDS)
@settings(max_examples=80, deadline=None)
@given(text=mixed, cuts=st.lists(st.integers(0, 80), max_size=6))
def test_chunked_tokenization_equals_whole_text(tok, text, cuts):
    """What a stream does: tokenize the safe prefix, keep the rest for the next chunk."""
    pending, got, exact = "", [], True
    bounds = sorted({min(c, len(text)) for c in cuts} | {len(text)})
    start = 0
    for end in bounds:
        pending += text[start:end]
        start = end
        split = tok.find_split(pending)
        exact &= split.exact
        got += tok.tokenize(pending[: split.index])
        pending = pending[split.index :]
    got += tok.tokenize(pending)
    if exact:
        assert got == tok.tokenize(text)
    else:  # a forced cut only ever ends a run of jieba block characters longer than MAX_HELD
        assert max(map(len, re.findall("[\u4e00-\u9fd5a-zA-Z0-9+#&._%-]+", text))) > MAX_HELD


def test_edge_texts():
    for tok in (CharTokenizer(), WordTokenizer()):
        assert tok.tokenize("") == []
        assert tok.tokenize("   ") == [" ", " ", " "]
    assert CharTokenizer(keep_whitespace=False).tokenize(" \t\n") == []
    long = "我爱北京天安门。" * 12_500  # 100k characters
    assert len(CharTokenizer().tokenize(long)) == 100_000
    assert WordTokenizer().detokenize(WordTokenizer().tokenize(long)) == long


def test_normalisation_and_case():
    assert CharTokenizer().tokenize("ＡＢ１") == ["A", "B", "1"]
    assert CharTokenizer(normalize=None).tokenize("ＡＢ") == ["Ａ", "Ｂ"]
    assert CharTokenizer(lowercase=True).tokenize("AbÇ") == ["a", "b", "ç"]
    # a compatibility character may normalise to several characters: still one token, one span
    [t] = CharTokenizer().tokenize_spans("ﬁ")
    assert (t.text, t.start, t.end) == ("fi", 0, 1)
    assert unicodedata.normalize("NFKC", "ﬁ") == "fi"


def test_word_tokenizer_cuts_words_and_hmm_switch():
    assert WordTokenizer().tokenize("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert WordTokenizer().tokenize("他来到了网易杭研大厦") != WordTokenizer(hmm=False).tokenize("他来到了网易杭研大厦")


def test_word_streaming_waits_for_a_block_border():
    tok = WordTokenizer()
    assert tok.split_point("我爱北京天安") == 0  # the word may go on
    assert tok.split_point("我爱。北京") == 3
    assert tok.split_point("你好 ") == 3
    assert tok.split_point("ok\r") == 2  # "\r\n" is one token


def test_type_errors():
    with pytest.raises(TypeError, match="must be str"):
        CharTokenizer().tokenize(b"bytes")
    with pytest.raises(TypeError, match="must be str"):
        WordTokenizer().tokenize(None)


def test_config_round_trip_and_bad_configs():
    for tok in TOKENIZERS:
        assert tokenizer_from_config(tok.to_config()) == tok
    with pytest.raises(MetadataError, match="unknown tokenizer kind"):
        tokenizer_from_config({"kind": "bpe"})
    with pytest.raises(MetadataError, match="normalize"):
        tokenizer_from_config({"kind": "char", "normalize": "NFD"})
    with pytest.raises(ConfigError):
        CharTokenizer(normalize="nope")


def test_other_jieba_version_warns_once():
    cfg = {**WordTokenizer().to_config(), "jieba_version": "0.1.0-test"}
    with pytest.warns(RnnkitWarning, match=r"jieba 0\.1\.0-test"):
        tokenizer_from_config(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokenizer_from_config(cfg)


def test_lone_surrogates_are_replaced():
    assert CharTokenizer().tokenize("a\ud800b") == ["a", "\ufffd", "b"]


def test_bmes_spans_cut_every_character_once():
    from rnnkit.runtime.tagging import bmes_spans, bmes_words

    assert bmes_words("我爱北京", ["S", "S", "B", "E"]) == ["我", "爱", "北京"]
    assert bmes_spans(["M", "E", "B", "B", "M"]) == [(0, 2), (2, 3), (3, 5)]
    assert bmes_spans([]) == []
    for tags in (["E", "E", "E"], ["B", "B"], ["S", "M", "M"]):
        spans = bmes_spans(tags)
        assert [i for a, b in spans for i in range(a, b)] == list(range(len(tags)))
