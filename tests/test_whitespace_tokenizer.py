"""Words cut on whitespace: the tokenizer, its metadata and format, how training picks it, streams."""

import json
import random

import pytest

from rnnkit.runtime import CharTokenizer, MetadataError, Vocabulary, WhitespaceTokenizer, WordTokenizer
from rnnkit.runtime.contract import FORMAT_VERSION, KEYS, ModelSpec, format_for
from rnnkit.runtime.errors import FormatVersionError
from rnnkit.runtime.tokenizers import MAX_WORD, tokenizer_from_config

# Whitespace of several kinds (NBSP and U+3000 normalise to a space; \r\n, tabs), letters that NFKC
# changes (ﬁ → fi: one input character, two normalised), and ones it leaves.
ALPHABET = ["a", "b", "Z", "é", "ﬁ", "Ｂ", "好", ".", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000", "😀"]


def stream_tokens(tok, text: str, rng: random.Random) -> tuple[list[str], int]:
    """The tokens a stream reads from ``text`` fed in random chunks, and the most it held back."""
    pending, tokens, held, fed = "", [], 0, 0
    while fed < len(text):
        chunk = text[fed : fed + rng.randint(1, 9)]
        fed += len(chunk)
        pending += chunk
        cut = tok.split_point(pending)
        tokens += tok.tokenize(pending[:cut])
        pending = pending[cut:]
        held = max(held, len(tok.normalize_token(pending)))
    return tokens + tok.tokenize(pending), held


def test_words_are_runs_of_non_whitespace_with_their_spans():
    tok = WhitespaceTokenizer()
    text = " The\u00a0cat\t\tsat  on\r\nthe ﬁle.\u3000"
    assert tok.tokenize(text) == ["The", "cat", "sat", "on", "the", "file."]
    for t in tok.tokenize_spans(text):  # every token is a span of what the caller typed
        assert tok.normalize_token(text[t.start : t.end]) == t.text
    assert tok.tokenize("") == tok.tokenize(" \t\n ") == []


def test_keeping_whitespace_makes_each_run_a_token_and_decodes_back():
    tok = WhitespaceTokenizer(keep_whitespace=True)
    text = "two  words\tand\r\nlines "
    assert tok.tokenize(text) == ["two", "  ", "words", "\t", "and", "\r\n", "lines", " "]
    assert tok.detokenize(tok.tokenize(text)) == text


def test_decoding_joins_words_with_one_space():
    tok = WhitespaceTokenizer()
    vocab = Vocabulary.build([["the", "cat", "sat"]])
    ids = tok.encode("the  cat\nsat dog", vocab)
    assert ids[-1] == vocab.unk_id
    assert tok.decode([vocab.bos_id, *ids, vocab.eos_id], vocab) == "the cat sat \ufffd"
    assert tok.detokenize(["a", "b"]) == "a b"
    assert CharTokenizer().detokenize(["a", "b"]) == "ab"  # the other tokenizers are unchanged


def test_a_word_longer_than_max_word_is_cut_into_whole_pieces_the_same_way_streamed():
    tok = WhitespaceTokenizer()
    assert [len(w) for w in tok.tokenize("x" * (2 * MAX_WORD + 7))] == [MAX_WORD, MAX_WORD, 7]
    # ﬁ normalises to two characters: a piece never splits one input character, nor passes MAX_WORD
    text = "a" + "ﬁ" * MAX_WORD
    words = tok.tokenize(text)
    assert "".join(words) == tok.normalize_token(text) and max(map(len, words)) <= MAX_WORD
    assert all(len(w) >= MAX_WORD - 1 for w in words[:-1])
    rng = random.Random(1)
    assert stream_tokens(tok, text + " end", rng)[0] == tok.tokenize(text + " end")


@pytest.mark.parametrize("keep", [False, True], ids=["drop", "keep"])
def test_random_text_in_random_chunks_tokenizes_as_the_whole_text(keep):
    tok = WhitespaceTokenizer(keep_whitespace=keep)
    rng = random.Random(7)
    for _ in range(300):
        weights = [rng.random() for _ in ALPHABET]
        text = "".join(rng.choices(ALPHABET, weights, k=rng.randint(0, 120)))
        if rng.random() < 0.1:
            text += "w" * rng.randint(MAX_WORD - 3, MAX_WORD + 600)  # a run past the cap
        tokens, held = stream_tokens(tok, text, rng)
        assert tokens == tok.tokenize(text), repr(text[:80])
        assert held <= MAX_WORD  # a stream holds back one open run at most


def test_the_open_word_is_held_back_until_whitespace_closes_it():
    tok = WhitespaceTokenizer()
    assert tok.split_point("the ca") == 4  # "ca" may go on: "cat"
    assert tok.split_point("the cat ") == 8  # closed, and the dropped space is consumed
    assert tok.split_point("word") == 0
    keep = WhitespaceTokenizer(keep_whitespace=True)
    assert keep.split_point("the cat ") == 7  # a kept space may still grow into "  "


def test_its_config_round_trips_and_says_its_segmenter():
    tok = WhitespaceTokenizer(lowercase=True)
    config = tok.to_config()
    assert config == {"kind": "word", "normalize": "NFKC", "lowercase": True, "keep_whitespace": False,
                      "segmenter": "whitespace"}
    assert tokenizer_from_config(config) == tok
    assert tok != WordTokenizer(keep_whitespace=False, lowercase=True)


def test_a_word_tokenizer_without_a_segmenter_is_jieba_as_in_every_format_1_file():
    old = {"kind": "word", "normalize": "NFKC", "lowercase": False, "keep_whitespace": True, "hmm": True,
           "mode": "precise", "jieba_version": WordTokenizer().jieba_version}
    tok = tokenizer_from_config(old)
    assert isinstance(tok, WordTokenizer) and tok.segmenter == "jieba"
    assert "segmenter" not in tok.to_config()  # new jieba files still load in format-1 readers
    assert format_for(tok.to_config()) == format_for(CharTokenizer().to_config()) == 1
    assert format_for(WhitespaceTokenizer().to_config()) == 2


def spec(tokenizer: dict, **kwargs) -> ModelSpec:
    vocab = Vocabulary.build([["a", "b"]])
    return ModelSpec(task="classify", cell="gru", layers=1, hidden=4, embed=3, tokenizer=tokenizer, vocab=vocab,
                     labels=("x", "y"), provenance={"rnnkit": "0", "created": "now"}, **kwargs)


def test_a_whitespace_model_is_written_as_format_2_and_others_as_format_1():
    props = spec(WhitespaceTokenizer().to_config()).to_metadata()
    assert props[KEYS.FORMAT] == "2"
    assert ModelSpec.from_metadata(props).tokenizer["segmenter"] == "whitespace"
    assert spec(CharTokenizer().to_config()).to_metadata()[KEYS.FORMAT] == "1"


@pytest.mark.parametrize("change, message", [
    ({"format": "1"}, "a whitespace word tokenizer needs model format 2, and the file says format 1"),
    ({"tokenizer": {"hmm": True}}, "a whitespace tokenizer takes no hmm, mode or jieba_version"),
    ({"tokenizer": {"segmenter": "spacy"}}, "'spacy' is not one of"),
    ({"tokenizer": {"kind": "char"}}, "a char tokenizer takes no segmenter"),
], ids=["format-1", "hmm", "unknown", "char"])
def test_tokenizer_metadata_that_does_not_fit_is_refused(change, message):
    props = spec(WhitespaceTokenizer().to_config()).to_metadata()
    if "format" in change:
        props[KEYS.FORMAT] = change["format"]
    if "tokenizer" in change:
        props[KEYS.TOKENIZER] = json.dumps({**json.loads(props[KEYS.TOKENIZER]), **change["tokenizer"]})
    with pytest.raises(MetadataError) as info:
        ModelSpec.from_metadata(props)
    assert message in str(info.value) and info.value.key == KEYS.TOKENIZER


def test_a_format_newer_than_the_reader_is_refused():
    props = spec(CharTokenizer().to_config()).to_metadata()
    props[KEYS.FORMAT] = str(FORMAT_VERSION + 1)
    with pytest.raises(FormatVersionError, match=f"model format {FORMAT_VERSION + 1} is newer than this rnnkit reads"):
        ModelSpec.from_metadata(props)
