"""A tag stream is a full stream: snapshot/restore, fork, reset and peek continue exactly as the
original would, and threads running their own tag streams on one model equal running them one by one."""

from __future__ import annotations

import random
import threading

import pytest
from tagstreams import (
    ALL,
    LONG,
    MODELS,
    TWO_LAYERS,
    WORDS,
    cut,
    header_of,
    model_id,
    same,
    same_state,
    whole,
)
from test_runtime_tagstream import joined


@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_each_model_gives_more_than_one_tag(models, kwargs):
    """The control: a tagger giving one tag everywhere would make the equalities below weak."""
    model = models(**kwargs)
    assert len({tag for text in ALL for _, tag in model.tag(text)}) > 1
    assert len(LONG) >= 300


# -- 1. snapshot, fork, reset, peek ----------------------------------------------------------------
@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_a_restored_snapshot_continues_like_the_original(models, kwargs):
    model = models(**kwargs)
    rng = random.Random(11)
    ts = model.tag_stream()  # one for all texts: end() starts it over, so later snapshots follow an end
    for text in ALL:
        for _ in range(3):
            parts = cut(text, rng)
            at = rng.randint(0, len(parts))
            handed = [ts.feed(piece) for piece in parts[:at]]
            data = ts.snapshot()
            assert header_of(data)["kind"] == "tag"
            restored = model.tag_stream(data)
            assert restored.snapshot() == data and restored.pending == ts.pending
            same_state(restored, ts, exact=True)
            mine, theirs = list(handed), list(handed)
            for piece in parts[at:]:
                mine.append(ts.feed(piece))
                theirs.append(restored.feed(piece))
                same(theirs[-1], mine[-1])
                same_state(restored, ts, exact=True)
            mine.append(ts.end())
            theirs.append(restored.end())
            same(theirs[-1], mine[-1])
            assert joined(mine) == joined(theirs) == whole(model.tag(text))


@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_a_fork_continues_like_the_original_and_apart_from_it(models, kwargs):
    model = models(**kwargs)
    rng = random.Random(12)
    for text in ALL:
        for _ in range(3):
            parts = cut(text, rng)
            at = rng.randint(0, len(parts))
            ts = model.tag_stream()
            handed = [ts.feed(piece) for piece in parts[:at]]
            fork, spare = ts.fork(), ts.fork()
            before = ts.snapshot()
            assert fork.snapshot() == before
            forked = [fork.feed(piece) for piece in parts[at:]] + [fork.end()]
            assert ts.snapshot() == before  # feeding the fork left the original alone…
            own = [ts.feed(piece) for piece in parts[at:]] + [ts.end()]
            assert spare.snapshot() == before  # …and feeding the original left a fork alone
            for a, b in zip(forked, own, strict=True):
                same(a, b)
            assert joined(handed + own) == joined(handed + forked) == whole(model.tag(text))


@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_reset_then_feeding_again_is_a_fresh_tag_stream(models, kwargs):
    model = models(**kwargs)
    rng = random.Random(13)
    fresh = model.tag_stream().snapshot()
    ts = model.tag_stream()
    for text in ALL:
        parts = cut(text, rng)
        for piece in parts[: rng.randint(1, len(parts))]:
            ts.feed(piece)
        ts.reset()
        assert ts.snapshot() == fresh and ts.pending == ""
        got = [ts.feed(piece) for piece in parts] + [ts.end()]
        assert joined(got) == whole(model.tag(text))  # spans count from the reset


@pytest.mark.parametrize("kwargs", MODELS, ids=model_id)
def test_peek_shows_what_end_would_and_changes_nothing(models, kwargs):
    model = models(**kwargs)
    rng = random.Random(14)
    for text in ALL:
        ts = model.tag_stream()
        handed, fed = [], ""
        for piece in cut(text, rng):
            handed.append(ts.feed(piece))
            fed += piece
            before = ts.snapshot()
            peeked = ts.peek()
            assert ts.snapshot() == before
            same(ts.peek(), peeked)
            assert joined([*handed, peeked]) == whole(model.tag_stream().end(fed))  # the text as if it ended now
        assert joined([*handed, ts.end()]) == whole(model.tag(text))


# -- 4. threads ------------------------------------------------------------------------------------
def session(model, seed):
    """One caller's work: tag streams fed in random pieces, parked and restored, forked, batched.

    Returns, per text: the text, what the restored stream and the forked one (batched with a third)
    handed over, the third's text and results, and the snapshots at the end.
    """
    rng = random.Random(seed)
    batcher = model.batcher()
    a, b, c = model.tag_stream(), model.tag_stream(), model.tag_stream()
    out = []
    for text in rng.sample(ALL, 3):
        parts, other = cut(text, rng), rng.choice(ALL)
        got_a, got_b, got_c, fed_c = [], [], [], ""
        for i, piece in enumerate(parts):
            if i == len(parts) // 2:
                a, b = model.tag_stream(a.snapshot()), b.fork()
            got_a.append(a.feed(piece))
            rb, rc = batcher.feed([b, c], [piece, other[i::len(parts)]])
            fed_c += other[i::len(parts)]
            got_b.append(rb)
            got_c.append(rc)
        got_a.append(a.end())
        rc, rb = batcher.flush([c, b])
        got_b.append(rb)
        got_c.append(rc)
        out.append((text, joined(got_a), joined(got_b), fed_c, joined(got_c), a.snapshot(), b.snapshot()))
    return out


def in_threads(model, n):
    """``session(model, seed)`` for seeds 0..n-1, each in its own thread, all started at once."""
    got, errors = [None] * n, []
    start = threading.Barrier(n)

    def run(seed):
        try:
            start.wait()
            got[seed] = session(model, seed)
        except BaseException as e:  # re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return got


@pytest.mark.parametrize("kwargs", [TWO_LAYERS, WORDS], ids=model_id)
def test_threads_with_their_own_tag_streams_on_one_model_equal_running_one_by_one(models, kwargs):
    model = models(**kwargs)
    want = [session(model, seed) for seed in range(8)]
    for text, got_a, got_b, fed_c, got_c, _, _ in (row for rows in want for row in rows):
        assert got_a == got_b == whole(model.tag(text))
        assert got_c == whole(model.tag_stream().end(fed_c))
    for _ in range(2):
        assert in_threads(model, 8) == want
