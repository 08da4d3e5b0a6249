"""TagStream: tagging text that arrives in pieces equals tagging the whole text."""

from __future__ import annotations

import random

import pytest

from rnnkit.runtime import TaskError

TEXTS = ["我爱北京天安门，天安门上太阳升。", "ＡＢ我爱北京 天安门，hello！１２3", "好", "  质量  太差了 ",
         "这本书很好看，我喜欢。物流也不错", "hello world 我 爱 你"]
MODELS = [  # (kwargs for the models fixture)
    {"task": "tag", "cell": "gru", "layers": 2},  # B/M/E/S, tag at its own step
    {"task": "tag", "cell": "lstm", "lookahead": 2},  # B/M/E/S, tag two steps later
    {"task": "tag", "cell": "rnn", "lookahead": 1, "keep_whitespace": False, "seed": 1},  # words across spaces
    {"task": "tag", "cell": "gru", "lookahead": 3, "labels": ("N", "V", "X")},  # plain tags
    {"task": "tag", "cell": "lstm", "level": "word", "lookahead": 1},  # jieba words, B/M/E/S labels
]


def pieces(text, rng):
    """``text`` cut at random places (empty pieces included)."""
    cuts = sorted(rng.randint(0, len(text)) for _ in range(rng.randint(0, 6)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def joined(results):
    pairs = [p for r in results for p in r]
    spans = [s for r in results for s in r.spans]
    words = None if results[0].words is None else [w for r in results for w in r.words]
    return pairs, spans, words


@pytest.mark.parametrize("kwargs", MODELS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_fed_in_any_pieces_it_tags_like_the_whole_text(models, kwargs):
    model = models(**kwargs)
    rng = random.Random(3)
    ts = model.tag_stream()
    for text in TEXTS:
        whole = model.tag(text)
        for _ in range(8):
            results = [ts.feed(piece) for piece in pieces(text, rng)]
            results.append(ts.end())
            pairs, spans, words = joined(results)
            assert pairs == list(whole)
            assert spans == whole.spans
            assert words == whole.words


@pytest.mark.parametrize("k", [0, 2])
def test_a_tag_is_handed_over_once_the_tagger_has_read_lookahead_tokens_after_it(models, k):
    model = models(task="tag", cell="gru", lookahead=k, labels=("N", "V", "X"))
    ts = model.tag_stream()
    text = "我爱北京天安门"
    got = []
    for n, char in enumerate(text, 1):
        got += ts.feed(char)
        assert len(got) == max(0, n - k)
    rest = ts.end()
    assert len(rest) == min(k, len(text))
    assert got + rest == list(model.tag(text))


def test_bmes_words_are_handed_over_whole(models):
    model = models(task="tag", cell="lstm", lookahead=2)
    text = TEXTS[0]
    whole = model.tag(text).words
    ts = model.tag_stream()
    words = []
    for char in text:
        r = ts.feed(char)
        assert "".join(w for w in r.words) == "".join(t for t, _ in r)  # whole words, nothing else
        words += r.words
        assert words == whole[: len(words)]  # every word handed over is final
    assert words + ts.end().words == whole


def test_peek_shows_the_open_tail_and_changes_nothing(models):
    model = models(task="tag", cell="gru", lookahead=2, level="word")
    text = "我爱北京天安门，天安门上太阳升"
    ts, twin = model.tag_stream(), model.tag_stream()
    handed = []
    for piece in ("我爱北", "京天安门，", "天安门上", "太阳升"):
        handed += ts.feed(piece)
        twin.feed(piece)
        seen = handed + ts.peek()
        assert seen == list(model.tag(text[: len("".join(t for t, _ in seen))]))
        assert ts.peek() == ts.peek()
    rest = ts.end()
    assert handed + rest == list(model.tag(text))
    assert rest == twin.end() and ts.pending == ""


def test_end_starts_over(models):
    model = models(task="tag", cell="gru", lookahead=1)
    ts = model.tag_stream()
    ts.feed("我爱北京")
    ts.end()
    pairs, spans, _ = joined([ts.feed("天安门"), ts.end()])
    assert pairs == list(model.tag("天安门")) and spans == [(0, 1), (1, 2), (2, 3)]
    assert ts.end() == [] and ts.end().words == []
    pairs, spans, words = joined([ts.feed("我爱"), ts.end("北京")])  # the last piece can come with end()
    whole = model.tag("我爱北京")
    assert (pairs, spans, words) == (list(whole), whole.spans, whole.words)


def test_tag_stream_errors(models):
    with pytest.raises(TaskError, match="tag_stream"):
        models(task="lm").tag_stream()
    ts = models(task="tag").tag_stream()
    with pytest.raises(TypeError, match="text must be str"):
        ts.feed(b"abc")
    with pytest.raises(TypeError, match="text must be str"):
        ts.end(["abc"])
    assert ts.feed("") == [] and ts.feed("").words == []
