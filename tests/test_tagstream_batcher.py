"""Tag streams in a StreamBatcher, alone, several, or mixed with plain streams: each gets what it would
get fed alone, whatever shares its batch."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from tagstreams import (
    ALL,
    BMES_K1,
    LONG,
    MODELS,
    TWO_LAYERS,
    WORDS,
    cut,
    model_id,
    same,
    same_logits,
    same_state,
    tagged_part_way,
    whole,
)
from test_runtime_tagstream import joined

from rnnkit.runtime import InputError, StateError, TagStream


# -- 2. the batcher --------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_a_batcher_feeds_tag_streams_as_if_each_ran_alone(models, kwargs, n):
    model = models(**kwargs)
    rng = random.Random(n)
    texts = [ALL[(3 * i + n) % len(ALL)] for i in range(n)]
    left = [cut(text, rng) for text in texts]
    streams, twins = [model.tag_stream() for _ in texts], [model.tag_stream() for _ in texts]
    got = [[] for _ in texts]
    batcher = model.batcher()
    while any(left):
        waiting = [i for i in range(n) if left[i]]
        chosen = rng.sample(waiting, rng.randint(1, len(waiting)))  # any of them, in any order
        pieces = [left[i].pop(0) for i in chosen]
        results = batcher.feed([streams[i] for i in chosen], pieces)
        assert len(results) == len(chosen)
        for i, piece, result in zip(chosen, pieces, results):
            same(result, twins[i].feed(piece))
            same_state(streams[i], twins[i], exact=n == 1)  # one stream: the very same session calls
            got[i].append(result)
    ends = batcher.flush(streams)
    fresh = model.tag_stream().snapshot()
    for i, text in enumerate(texts):
        same(ends[i], twins[i].end())
        assert joined([*got[i], ends[i]]) == whole(model.tag(text))
        assert streams[i].snapshot() == fresh  # flush, like end(), starts a tag stream over


@pytest.mark.parametrize("kwargs", [TWO_LAYERS, WORDS], ids=model_id)
def test_plain_streams_and_tag_streams_share_one_feed(models, kwargs):
    model = models(**kwargs)
    rng = random.Random(21)
    makers = [model.stream, model.tag_stream, model.stream, model.tag_stream, model.tag_stream]
    streams, twins = [make() for make in makers], [make() for make in makers]
    texts = ALL[: len(makers)]
    parts = [cut(text, rng) for text in texts]
    rounds = max(map(len, parts))
    parts = [p + [""] * (rounds - len(p)) for p in parts]  # every stream in every call
    got = [[] for _ in makers]
    batcher = model.batcher()
    for r in range(rounds):
        results = batcher.feed(streams, [p[r] for p in parts])
        for s, twin, p, result, mine in zip(streams, twins, parts, results, got):
            if isinstance(s, TagStream):
                same(result, twin.feed(p[r]))
                mine.append(result)
            else:
                same_logits(result, twin.feed(p[r]))  # None while nothing new was consumed
            same_state(s, twin, exact=False)
    ends = batcher.flush(streams)
    for s, twin, end, mine, text in zip(streams, twins, ends, got, texts):
        if isinstance(s, TagStream):
            same(end, twin.end())
            assert joined([*mine, end]) == whole(model.tag(text))
        else:
            same_logits(end, twin.flush())
            assert s.pending == "" and end is not None
        same_state(s, twin, exact=False)


def test_streams_the_batcher_stepped_are_then_fed_as_if_alone(models):
    model = models(**BMES_K1)
    a, b, ts = model.stream(), model.stream(), model.tag_stream()
    ta, tb, tts = model.stream(), model.stream(), model.tag_stream()
    ids = model.encode("我爱北京")
    batcher = model.batcher()
    for x, y in (ids[:2], ids[2:]):  # the second step finds them still held in the batcher's binding
        logits = batcher.step([a, b], [x, y])
        same_logits(logits[0], ta.step(x))
        same_logits(logits[1], tb.step(y))
    results = batcher.feed([b, ts, a], ["天安门", "我爱北京", "hello"])
    same_logits(results[0], tb.feed("天安门"))
    same(results[1], tts.feed("我爱北京"))
    same_logits(results[2], ta.feed("hello"))
    logits = batcher.step([a, b], [ids[0], ids[1]])
    same_logits(logits[0], ta.step(ids[0]))
    same_logits(logits[1], tb.step(ids[1]))
    for s, twin in ((a, ta), (b, tb), (ts, tts)):
        same_state(s, twin, exact=False)


@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_a_streams_answer_does_not_depend_on_what_shares_its_batch(models, kwargs):
    model = models(**kwargs)
    parts = cut(LONG, random.Random(31), most=12)
    runs = []
    for company in (0, 1, 4, 7):
        rng = random.Random(company)
        others = [model.stream() if j % 3 == 2 else model.tag_stream() for j in range(company)]
        ts = model.tag_stream()
        batcher = model.batcher()
        got, states = [], []
        for piece in parts:
            batch = [ts, *others]
            rng.shuffle(batch)
            texts = [piece if s is ts else rng.choice(ALL)[: rng.randint(0, 30)] for s in batch]
            got.append(batcher.feed(batch, texts)[batch.index(ts)])
            states.append(ts.stream.state)
        batch = [ts, *others]
        rng.shuffle(batch)
        got.append(batcher.flush(batch)[batch.index(ts)])
        assert joined(got) == whole(model.tag(LONG))
        runs.append((got, states))
    alone_got, alone_states = runs[0]
    for got, states in runs[1:]:
        for a, b in zip(got, alone_got, strict=True):
            same(a, b)
        for a, b in zip(states, alone_states, strict=True):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs", [MODELS[0], WORDS], ids=model_id)
def test_batcher_flush_of_plain_streams_returns_their_latest_logits(models, kwargs):
    model = models(**kwargs)
    fed = ["", "我爱北京天安", "hello wor", "  ", "好"]
    streams, twins = [model.stream() for _ in fed], [model.stream() for _ in fed]
    for s, twin, text in zip(streams, twins, fed):
        s.feed(text)
        twin.feed(text)
    assert any(s.pending for s in streams) == (kwargs.get("level") == "word")  # a word model holds text back
    batcher = model.batcher()
    for _ in range(2):  # the second time nothing is held back: the same logits again
        got = batcher.flush(streams)
        assert got[0] is None  # nothing ever consumed: a tagger's stream has no logits yet
        for s, twin, logits in zip(streams, twins, got):
            same_logits(logits, twin.flush())
            same_logits(logits, s.logits)
            assert s.pending == ""
            same_state(s, twin, exact=False)


def test_empty_batches_and_mismatched_texts(models):
    model = models(**TWO_LAYERS)
    batcher = model.batcher()
    assert batcher.feed([], []) == [] and batcher.flush([]) == []
    ts, twin = tagged_part_way(model), tagged_part_way(model)
    before = ts.snapshot()
    for texts in (["北京", "天安门"], []):
        with pytest.raises(InputError, match=f"1 streams but {len(texts)} texts"):
            batcher.feed([ts], texts)
    with pytest.raises(InputError, match="0 streams but 1 texts"):
        batcher.feed([], ["北京"])
    with pytest.raises(TypeError, match="text must be str"):
        batcher.feed([ts], [b"x"])
    assert ts.snapshot() == before
    result = batcher.feed([ts], [""])
    same(result[0], twin.feed(""))
    assert ts.snapshot() == before


def test_a_stream_twice_in_one_batch_is_refused_and_nothing_moves(models):
    model = models(**TWO_LAYERS)
    ts, other, s = tagged_part_way(model), tagged_part_way(model, "好"), model.stream()
    s.feed("我爱")
    batcher = model.batcher()
    before = [x.snapshot() for x in (ts, other, s)]
    for batch in ([ts, ts], [ts, ts.stream], [ts.stream, other, ts], [s, other, s]):
        with pytest.raises(InputError, match="twice") as info:
            batcher.feed(batch, ["北京"] * len(batch))
        assert isinstance(info.value, ValueError)
        with pytest.raises(InputError, match="twice"):
            batcher.flush(batch)
        assert [x.snapshot() for x in (ts, other, s)] == before


def test_a_stream_of_another_model_is_refused(models):
    model, elsewhere = models(**TWO_LAYERS), models(**MODELS[0])
    ts = tagged_part_way(model)
    before = ts.snapshot()
    batcher = model.batcher()
    for stranger in (elsewhere.tag_stream(), elsewhere.tag_stream().stream, elsewhere.stream(), "我爱"):
        with pytest.raises(StateError, match="batcher's model"):
            batcher.feed([ts, stranger], ["北京", "北京"])
        with pytest.raises(StateError, match="batcher's model"):
            batcher.flush([stranger, ts])
    assert ts.snapshot() == before


def test_batcher_step_refuses_a_tag_stream_and_moves_nothing(models):
    model = models(**TWO_LAYERS)
    ts, s, s2 = tagged_part_way(model), model.stream(), model.stream()
    s.feed("我爱")
    batcher = model.batcher()
    before = [x.snapshot() for x in (ts, s, s2)]
    for batch in ([ts], [s, ts], [s, s2, ts]):
        with pytest.raises(TypeError, match=re.escape("use batcher.feed() and batcher.flush()")):
            batcher.step(batch, [5] * len(batch))
        assert [x.snapshot() for x in (ts, s, s2)] == before
    twin = model.stream()
    twin.feed("我爱")
    same_logits(batcher.step([s, s2], [5, 6])[0], twin.step(5))  # the batcher still works
