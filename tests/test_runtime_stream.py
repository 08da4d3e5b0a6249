"""Streams: token-by-token equals whole-sequence, chunked word feeding, snapshots, forks, the batcher, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.runtime import StateError

TEXT = "这本书很好看，我喜欢。hello world 😀"
ATOL = 1e-5


def whole(model, ids):
    """Logits (T, n_out) and state of the whole sequence in one session call, from the stream start."""
    if model.task == "lm":  # an lm stream starts after <bos>
        logits, state = model.run(np.array([[model.vocab.bos_id, *ids]]))
        return logits[0, 1:], state
    logits, state = model.run(np.array([ids]))
    return logits[0], state


def assert_same_state(a, b, atol=ATOL):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


@pytest.mark.parametrize("task", ["lm", "classify", "tag"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_token_by_token_equals_whole_sequence(models, cell, layers, task):
    model = models(task=task, cell=cell, layers=layers)
    ids = model.encode(TEXT)
    assert len(ids) == len(TEXT)  # char model: one token per character
    expected, expected_state = whole(model, ids)
    assert not np.allclose(expected[0], expected[-1])  # the state really moves

    stepped = model.stream()
    for i, t in enumerate(ids):
        np.testing.assert_allclose(stepped.step(t), expected[i], atol=ATOL, rtol=0)
    assert stepped.consumed == len(ids)
    assert_same_state(stepped.state, expected_state)

    by_char = model.stream()
    for i, ch in enumerate(TEXT):
        np.testing.assert_allclose(by_char.feed(ch), expected[i], atol=ATOL, rtol=0)
    assert_same_state(by_char.state, expected_state)

    at_once = model.stream()
    np.testing.assert_allclose(at_once.feed(TEXT), expected[-1], atol=ATOL, rtol=0)
    np.testing.assert_allclose(at_once.logits, expected[-1], atol=ATOL, rtol=0)
    assert_same_state(at_once.state, expected_state)


def test_lm_stream_starts_after_bos(models):
    model = models(task="lm", cell="gru")
    logits, _ = model.run(np.array([[model.vocab.bos_id]]))
    np.testing.assert_allclose(model.stream().logits, logits[0, -1], atol=ATOL, rtol=0)
    assert models(task="classify").stream().logits is None


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bound_steps_equal_plain_session_runs(models, cell):
    model = models(task="lm", cell=cell, layers=2)
    bound, plain = model.step_binding(2), model.step_binding(2, iobinding=False)  # plain: as on a GPU
    assert bound.iobinding and not plain.iobinding  # a CPU session binds its buffers
    for binding in (bound, plain):
        for dst, src in zip(binding.state, model.start_state(2)):
            np.copyto(dst, src)
    alone = model.stream()
    for t in [5, 9, 4, 11, 5, 5, 30, 7] * 4:
        expected = alone.step(t)
        for binding in (bound, plain):
            binding.tokens[:, 0] = [t, 9]
            np.testing.assert_allclose(binding.step()[0, 0], expected, atol=1e-7, rtol=0)
            assert_same_state([a[:, :1] for a in binding.state], alone.state, atol=1e-7)
        assert_same_state(bound.state, plain.state, atol=1e-7)
    first = alone.step(6)
    alone.step(8)
    assert not np.array_equal(first, alone.logits)  # a step's logits stay as they were after later steps


# -- word models fed in chunks ------------------------------------------------------------------
ALPHABET = list("我爱北京天安门质量太差了这本书很好看喜欢写得不错快递包装也一般内容推荐") + list(
    "abcHeloWrd0123") + list(" ，。！!,.？?-_%#&+\n\r\t😀ＡＢ１")


def spy_encode(model):
    """Record every id the model's streams consume (streams encode through ``model.encode``)."""
    seen = []
    original = model.encode

    def encode(text):
        ids = original(text)
        seen.extend(ids)
        return ids

    model.encode = encode
    return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_word_chunks_consume_the_ids_of_the_whole_text(models, data):
    model = models(task="lm", cell="gru", level="word")
    text = data.draw(st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=40), label="text")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8), label="cuts"))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    expected_ids = model.encode(text)

    seen = spy_encode(model)
    try:
        s = model.stream()
        fed = ""
        for chunk in chunks:
            s.feed(chunk)
            fed += chunk
            assert fed.endswith(s.pending)  # only the tail is ever held back
            assert len(seen) == s.consumed
        assert s.flush() is s.logits
        assert s.pending == ""
    finally:
        del model.encode
    assert seen == expected_ids
    assert s.consumed == len(expected_ids)

    reference = model.stream()
    reference.feed(text)
    reference.flush()
    np.testing.assert_allclose(s.logits, reference.logits, atol=ATOL, rtol=0)
    assert_same_state(s.state, reference.state)


def test_word_stream_holds_back_the_unfinished_block(models):
    model = models(task="classify", cell="gru", level="word")
    s = model.stream()
    assert s.feed("我爱北京天安") is None  # one run of Chinese characters: could still grow
    assert (s.pending, s.consumed) == ("我爱北京天安", 0)
    s.feed("门，hel")
    assert s.pending == "hel"
    assert s.consumed == len(model.encode("我爱北京天安门，"))
    s.feed("lo")
    assert s.pending == "hello"
    assert s.prediction() is not None
    s.flush()
    assert s.pending == ""
    assert s.consumed == len(model.encode("我爱北京天安门，hello"))
    whole_text = model.classify("我爱北京天安门，hello")
    assert s.prediction().label == whole_text.label
    assert s.prediction().score == pytest.approx(whole_text.score, abs=ATOL)


def test_step_consumes_pending_text_first(models):
    model = models(task="lm", cell="lstm", level="word")
    a, b = model.stream(), model.stream()
    a.feed("我爱北京")
    assert a.pending == "我爱北京"
    a.step(5)
    b.feed("我爱北京")
    b.flush()
    b.step(5)
    np.testing.assert_allclose(a.logits, b.logits, atol=ATOL, rtol=0)
    assert a.consumed == b.consumed == len(model.encode("我爱北京")) + 1


# -- snapshot, fork, reset -----------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("task", ["lm", "classify"])
def test_snapshot_fork_and_reset_reproduce(models, cell, task):
    model = models(task=task, cell=cell, layers=2, level="word")
    s = model.stream()
    s.feed("这本书很好看，我喜")  # "我喜" is held back as pending
    assert s.pending
    restored = model.stream(s.snapshot())
    twin = s.fork()
    for other in (restored, twin):
        assert (other.pending, other.consumed) == (s.pending, s.consumed)
        np.testing.assert_array_equal(other.logits, s.logits)
        assert_same_state(other.state, s.state, atol=0)

    for t in (s, restored, twin):
        t.feed("欢。hello")
        t.step(7)
    for other in (restored, twin):
        np.testing.assert_array_equal(other.logits, s.logits)
        assert_same_state(other.state, s.state, atol=0)
        assert other.consumed == s.consumed


def test_fork_is_independent(models):
    model = models(task="lm", cell="lstm", layers=2)
    s = model.stream()
    s.feed("我爱")
    before, state_before = s.logits.copy(), s.state
    twin = s.fork()
    twin.feed("北京天安门")
    np.testing.assert_array_equal(s.logits, before)
    assert_same_state(s.state, state_before, atol=0)
    assert s.consumed == 2 and twin.consumed == 7
    s.step(9)
    assert not np.allclose(s.logits, twin.logits)
    copy = model.stream(twin.snapshot())
    copy.step(4)
    assert twin.consumed == 7  # the restored copy does not drive its source


@pytest.mark.parametrize("task", ["lm", "classify"])
def test_reset_returns_to_the_start(models, task):
    model = models(task=task, cell="gru", level="word")
    fresh = model.stream()
    s = model.stream()
    s.feed("这本书很好看")
    s.step(6)
    s.reset()
    assert (s.consumed, s.pending) == (0, "")
    assert_same_state(s.state, fresh.state, atol=0)
    if task == "lm":
        np.testing.assert_array_equal(s.logits, fresh.logits)
    else:
        assert s.logits is None
    np.testing.assert_array_equal(s.feed("我爱北京，"), fresh.feed("我爱北京，"))


def test_snapshot_of_a_fresh_classifier_stream_has_no_logits(models):
    model = models(task="classify", cell="lstm")
    restored = model.stream(model.stream().snapshot())
    assert restored.logits is None and restored.prediction() is None and restored.consumed == 0


# -- the batcher ---------------------------------------------------------------------------------
def positioned_streams(model):
    """Streams at different places: fresh, after some characters, after steps, with pending text."""
    fresh = model.stream()
    fed = model.stream()
    fed.feed("这本书很好看")
    stepped = model.stream()
    for t in (5, 9, 4, 11):
        stepped.step(t)
    held = model.stream()
    held.feed("质量太差了，不推荐")  # a word model holds back "不推荐"
    return [fresh, fed, stepped, held]


@pytest.mark.parametrize(("cell", "layers", "level"), [("lstm", 2, "word"), ("gru", 1, "char"), ("rnn", 2, "word")])
def test_batcher_step_equals_stepping_alone(models, cell, layers, level):
    model = models(task="lm", cell=cell, layers=layers, level=level)
    streams = positioned_streams(model)
    alone = [s.fork() for s in streams]
    batcher = model.batcher()
    for round_ in range(3):
        ids = [4 + (round_ * 7 + i * 3) % (len(model.vocab) - 4) for i in range(len(streams))]
        logits = batcher.step(streams, ids)
        assert logits.shape == (len(streams), model.n_out)
        for row, (s, a, t) in enumerate(zip(streams, alone, ids)):
            expected = a.step(t)
            np.testing.assert_allclose(logits[row], expected, atol=1e-6, rtol=0)
            np.testing.assert_allclose(s.logits, expected, atol=1e-6, rtol=0)
            assert_same_state(s.state, a.state, atol=1e-6)
            assert (s.consumed, s.pending) == (a.consumed, a.pending)


def test_batcher_of_one_stream_steps_it_alone(models):
    model = models(task="lm", cell="lstm", layers=2)
    streams, twins = [model.stream(), model.stream()], [model.stream(), model.stream()]
    batcher = model.batcher()
    batcher.step(streams, [5, 6])  # the batcher now holds both streams' state
    for twin, t in zip(twins, (5, 6)):
        twin.step(t)
    for t in (7, 8, 9):
        out = batcher.step(streams[:1], [t])
        assert out.shape == (1, model.n_out)
        np.testing.assert_array_equal(out[0], twins[0].step(t))
    for s, twin in zip(streams, twins):  # the other stream kept its row's state
        for a, b in zip(s.state, twin.state):
            np.testing.assert_array_equal(a, b)
    assert streams[0].consumed == 4 and streams[1].consumed == 1


@pytest.mark.parametrize(("task", "cell", "level"), [("classify", "lstm", "word"), ("lm", "gru", "char"),
                                                     ("tag", "rnn", "char")])
def test_batcher_feed_uneven_texts_equals_feeding_alone(models, task, cell, level):
    model = models(task=task, cell=cell, layers=2, level=level)
    streams = positioned_streams(model)
    alone = [s.fork() for s in streams]
    batcher = model.batcher()
    for texts in (["", "，我喜欢。", "hello world", "很好！"],
                  ["快递很快，包装也好。", "", "写得不错", "内容一般般"]):
        got = batcher.feed(streams, texts)
        for g, s, a, text in zip(got, streams, alone, texts):
            expected = a.feed(text)
            if expected is None:
                assert g is None
            else:
                np.testing.assert_allclose(g, expected, atol=1e-6, rtol=0)
            assert (s.consumed, s.pending) == (a.consumed, a.pending)
            assert_same_state(s.state, a.state, atol=1e-6)
            if a.logits is None:
                assert s.logits is None
            else:
                np.testing.assert_allclose(s.logits, a.logits, atol=1e-6, rtol=0)


def test_batcher_refuses_bad_batches_without_moving_any_stream(models):
    model = models(task="lm", cell="gru", level="word")
    other = models(task="lm", cell="lstm", level="word")
    batcher = model.batcher()
    a, b = model.stream(), model.stream()
    a.feed("我爱北京")
    snapshot = [x.snapshot() for x in (a, b)]
    with pytest.raises(StateError, match="batcher's model"):
        batcher.step([a, other.stream()], [5, 5])
    with pytest.raises(ValueError, match="twice"):
        batcher.step([a, a], [5, 5])
    with pytest.raises(ValueError, match="2 streams but 1"):
        batcher.step([a, b], [5])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        batcher.step([a, b], [5, len(model.vocab)])
    with pytest.raises(TypeError):
        batcher.feed([a, b], ["天安门", b"x"])
    assert [x.snapshot() for x in (a, b)] == snapshot
    assert batcher.step([], []).shape == (0, model.n_out)
    assert batcher.feed([], []) == []


# -- threads -------------------------------------------------------------------------------------
def work(model, seed):
    """A few hundred steps and feeds on two streams of one worker; returns everything it saw."""
    rng = np.random.default_rng(seed)
    streams = [model.stream(), model.stream()]
    seen = []
    for i in range(150):
        for s in streams:
            if i % 50 == 49:
                s.feed("这本书很好看，")
            seen.append(s.step(int(rng.integers(4, len(model.vocab)))))
    return np.stack(seen), [np.concatenate(s.state) for s in streams]


@pytest.mark.parametrize(("cell", "level"), [("lstm", "char"), ("gru", "word")])
def test_threads_share_one_model(models, cell, level):
    model = models(task="lm", cell=cell, layers=2, level=level)
    sequential = [work(model, seed) for seed in range(8)]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def run(seed):
        barrier.wait()
        results[seed] = work(model, seed)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (seq_logits, seq_state), got in zip(sequential, results):
        assert got is not None
        np.testing.assert_array_equal(got[0], seq_logits)
        for x, y in zip(got[1], seq_state):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_batchers_holding_state_never_change_what_a_stream_reads(models, cell):
    """Random interleavings of batched steps (two batchers), single steps, feeds, reads, snapshots,
    forks and resets leave every stream exactly where stepping it alone leaves a twin."""
    import random

    model = models(task="lm", cell=cell, layers=2)
    rng = random.Random(7)
    n = 6
    streams = [model.stream() for _ in range(n)]
    twins = [model.stream() for _ in range(n)]  # the same work, one stream at a time, no batcher
    batchers = [model.batcher(), model.batcher()]
    size = len(model.vocab)
    repeats = 0  # batched steps that found the state already held

    def check(i):
        np.testing.assert_array_equal(streams[i].logits, twins[i].logits)
        for a, b in zip(streams[i].state, twins[i].state):
            np.testing.assert_array_equal(a, b)
        assert streams[i].consumed == twins[i].consumed

    for _ in range(300):
        op = rng.choice(["same", "same", "same", "subset", "other", "step", "feed", "read", "snap", "fork",
                         "reset"])
        repeats += op == "same" and all(s.holder is batchers[0] for s in streams)
        if op in ("same", "subset", "other"):
            batcher = batchers[1] if op == "other" else batchers[0]
            picked = list(range(n)) if op == "same" else sorted(rng.sample(range(n), rng.randint(1, n)))
            ids = [rng.randrange(4, size) for _ in picked]
            out = batcher.step([streams[i] for i in picked], ids)
            for row, (i, t) in enumerate(zip(picked, ids)):
                np.testing.assert_array_equal(out[row], twins[i].step(t))
        else:
            i = rng.randrange(n)
            if op == "step":
                t = rng.randrange(4, size)
                np.testing.assert_array_equal(streams[i].step(t), twins[i].step(t))
            elif op == "feed":
                streams[i].feed("我爱")
                twins[i].feed("我爱")
            elif op == "snap":
                streams[i] = model.stream(streams[i].snapshot())
            elif op == "fork":
                streams[i] = streams[i].fork()
            elif op == "reset":
                streams[i].reset()
                twins[i].reset()
        held = [s.holder for s in streams]
        for i in range(n):  # reads: they must not disturb a batcher that holds the stream
            check(i)
        assert [s.holder for s in streams] == held
    assert repeats > 20  # the batcher did find its streams' state already held, many times
