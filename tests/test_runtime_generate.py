"""Generation: seeds, greedy, top-k/top-p, stop strings, max_tokens, <eos>, never a special token."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import onnx
import pytest
from factory import tiny_onnx
from onnx import numpy_helper

from rnnkit.runtime import ConfigError, load_model
from rnnkit.runtime import model as model_module
from rnnkit.runtime.sampling import Sampler, SplitMix64, StopMatcher

BANNED = ("<pad>", "<unk>", "<bos>")


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_model(tiny_onnx(tmp_path_factory.mktemp("lm"), task="lm", cell="lstm", layers=2))


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    return load_model(tiny_onnx(tmp_path_factory.mktemp("wlm"), task="lm", cell="gru", level="word"))


def greedy_chain(model, prompt, max_tokens):
    """Greedy continuation computed from whole-sequence ``model.run`` calls, not from streams."""
    v = model.vocab
    ids = [v.bos_id, *model.encode(prompt)]
    out = []
    for _ in range(max_tokens):
        logits, _ = model.run(np.array([ids]))
        z = logits[0, -1].astype(np.float64)
        z[[v.pad_id, v.unk_id, v.bos_id]] = -np.inf
        token = int(np.argmax(z))
        if token == v.eos_id:
            break
        out.append(v.token(token))
        ids.append(token)
    return out


def long_sample(model, prompt, length):
    """A seed whose sampled continuation of ``prompt`` is at least ``length`` pieces long."""
    for seed in range(50):
        pieces = list(model.generate(prompt, max_tokens=40, seed=seed))
        if len(pieces) >= length:
            return seed, pieces
    raise AssertionError("every sample ended early")


@pytest.mark.parametrize("name", ["lm", "word_lm"])
def test_same_seed_same_pieces_other_seeds_differ(request, name):
    model = request.getfixturevalue(name)
    runs = [list(model.generate("这本书", max_tokens=30, seed=seed)) for seed in (1, 1, 2, 3, 4)]
    assert runs[0] == runs[1]
    assert len({"".join(r) for r in runs[1:]}) > 1
    assert list(model.generate("这本书", max_tokens=30, seed=1, top_p=0.9, top_k=20)) == list(
        model.generate("这本书", max_tokens=30, seed=1, top_p=0.9, top_k=20))


@pytest.mark.parametrize("name", ["lm", "word_lm"])
@pytest.mark.parametrize("prompt", ["", "我爱", "hello"])
def test_temperature_zero_and_top_k_one_are_greedy(request, name, prompt):
    model = request.getfixturevalue(name)
    expected = greedy_chain(model, prompt, 25)
    assert list(model.generate(prompt, max_tokens=25, temperature=0)) == expected
    assert list(model.generate(prompt, max_tokens=25, top_k=1, seed=123)) == expected
    assert list(model.generate(prompt, max_tokens=25, top_k=1, temperature=3.0)) == expected


def test_max_tokens_caps(lm):
    assert list(lm.generate("我", max_tokens=0, seed=0)) == []
    for n in (1, 5, 17):
        pieces = list(lm.generate("我", max_tokens=n, seed=0, temperature=0.5))
        assert 1 <= len(pieces) <= n  # one char token per piece; <eos> may end it sooner
    seed, pieces = long_sample(lm, "我", 12)
    assert list(lm.generate("我", max_tokens=12, seed=seed)) == pieces[:12]


def test_special_tokens_are_never_produced(lm, word_lm):
    for model in (lm, word_lm):
        for seed in range(10):
            pieces = list(model.generate("", max_tokens=60, temperature=5.0, seed=seed))
            assert not set(pieces) & {*BANNED, "<eos>"}


def test_stop_string_ends_output_right_before_it(lm):
    seed, pieces = long_sample(lm, "这", 10)
    text = "".join(pieces)
    for stop in (text[4:6], text[7], [text[8:10], text[5:7]]):
        first = min(text.find(s) for s in ([stop] if isinstance(stop, str) else stop))
        got = "".join(lm.generate("这", max_tokens=40, seed=seed, stop=stop))
        assert got == text[:first]
        assert all(s not in got for s in ([stop] if isinstance(stop, str) else stop))
    # a stop string that never appears changes nothing
    assert list(lm.generate("这", max_tokens=40, seed=seed, stop="\x00never")) == pieces


class Scripted:
    """Stands in for Sampler: returns scripted ids and records what it was told to avoid."""

    script: ClassVar[list[int]] = []
    banned: ClassVar[list[tuple[int, ...]]] = []

    def __init__(self, *args):
        Sampler(*args)  # the real option checks still run

    def rng(self):
        return None

    def choose(self, logits, rng, banned=()):
        Scripted.banned.append(tuple(banned))
        return Scripted.script.pop(0)


def test_eos_ends_generation_and_specials_are_banned(lm, monkeypatch):
    monkeypatch.setattr(model_module, "Sampler", Scripted)
    v = lm.vocab
    Scripted.script, Scripted.banned = [5, 6, v.eos_id, 7], []
    assert list(lm.generate("我", max_tokens=10)) == [v.token(5), v.token(6)]
    assert Scripted.script == [7]
    assert all(set(b) == {v.pad_id, v.unk_id, v.bos_id} for b in Scripted.banned)


def test_eos_from_the_model_itself_ends_generation(lm, tmp_path):
    graph = onnx.load(str(lm.path))
    bias = next(i for i in graph.graph.initializer if list(i.dims) == [lm.n_out])  # the output layer's bias
    values = numpy_helper.to_array(bias).copy()
    values[lm.vocab.eos_id] = 1e4
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(graph, str(tmp_path / "eos.onnx"))
    eos = load_model(tmp_path / "eos.onnx")
    assert list(eos.generate("我爱", max_tokens=20, seed=0)) == []
    assert list(eos.generate("我爱", max_tokens=20, temperature=0)) == []


def test_stop_and_max_tokens_flush_held_text(lm):
    # a held-back stop prefix is released when generation ends without the stop string
    seed, pieces = long_sample(lm, "这", 6)
    stop = pieces[5] + "\x00"  # starts like the 6th piece, never completes
    got = list(lm.generate("这", max_tokens=6, seed=seed, stop=stop))
    assert "".join(got) == "".join(pieces[:6]) and got[-1] == pieces[5]


# -- Sampler and StopMatcher on known inputs -----------------------------------------------------
LOGITS = np.array([0.0, 3.0, 2.5, -1.0, 1.0, 2.0, 0.5, -2.0])


def draws(sampler_kwargs, n=400, banned=()):
    return {Sampler(seed=seed, **sampler_kwargs).choose(LOGITS, SplitMix64(seed), banned) for seed in range(n)}


def test_sampler_top_k_keeps_only_the_k_best():
    assert draws({"top_k": 3}) == {1, 2, 5}
    assert draws({"top_k": 1}) == {1}
    assert draws({"top_k": 3}, banned=(1,)) == {2, 5, 4}
    assert draws({"top_k": 100}) == set(range(8))  # k beyond the vocabulary: no restriction


def test_sampler_top_p_keeps_the_smallest_nucleus():
    p = np.exp(LOGITS - LOGITS.max())
    p /= p.sum()
    order = np.argsort(-p)
    for top_p in (0.3, 0.5, 0.8, 0.95):
        size = int(np.argmax(np.cumsum(p[order]) >= top_p)) + 1
        assert draws({"top_p": top_p}) == set(order[:size].tolist())
    assert draws({"top_p": 1.0}) == set(range(8))
    assert draws({"top_p": 0.5, "top_k": 1}) == {1}


def test_sampler_greedy_and_banned():
    rng = SplitMix64(0)
    assert Sampler(temperature=0).choose(LOGITS, rng) == 1
    assert Sampler(temperature=0).choose(LOGITS, rng, banned=(1, 2)) == 5
    assert 1 not in draws({"temperature": 10.0}, banned=(1,))
    assert draws({"temperature": 0.05}) == {1}  # cold: the best token only


def test_sampler_follows_the_probabilities():
    rng = SplitMix64(7)
    sampler = Sampler(temperature=1.0)
    counts = np.bincount([sampler.choose(LOGITS, rng) for _ in range(4000)], minlength=8) / 4000
    p = np.exp(LOGITS - LOGITS.max())
    np.testing.assert_allclose(counts, p / p.sum(), atol=0.03)


@pytest.mark.parametrize("kwargs", [
    {"temperature": -1}, {"temperature": float("nan")}, {"temperature": float("inf")}, {"temperature": "hot"},
    {"top_k": 0}, {"top_k": 2.5}, {"top_k": True}, {"top_p": 0}, {"top_p": 1.5}, {"top_p": float("nan")},
])
def test_bad_sampler_options(lm, kwargs):
    with pytest.raises(ConfigError):
        Sampler(**kwargs)
    with pytest.raises(ConfigError):
        lm.generate("x", **kwargs)


@pytest.mark.parametrize("kwargs", [{"max_tokens": -1}, {"max_tokens": 2.0}, {"stop": ""}, {"stop": ["a", ""]},
                                    {"stop": [3]}, {"stop": 3}])
def test_bad_generate_options(lm, kwargs):
    with pytest.raises(ConfigError):
        lm.generate("x", **kwargs)


def test_stop_matcher_across_pieces():
    m = StopMatcher("</s>")
    assert [m.push(p) for p in ("ab", "c<", "/s", ">d")] == ["ab", "c", "", ""]
    assert m.stopped and m.flush() == "" and m.push("more") == ""

    m = StopMatcher(["END", "ND!"])
    assert [m.push(p) for p in ("xE", "N", "x", "EN", "D")] == ["x", "", "ENx", "", ""]
    assert m.stopped

    m = StopMatcher("abc")
    assert [m.push(p) for p in ("a", "b", "x")] == ["", "", "abx"]
    assert m.push("ab") == "" and m.flush() == "ab"  # generation ended: held text is released

    m = StopMatcher(["cd", "abcd"])  # the earliest match wins
    assert m.push("zabcd") == "z"
    m = StopMatcher(["cd", "abcd"])
    assert [m.push(p) for p in ("zab", "c", "d")] == ["z", "", ""]

    m = StopMatcher(None)
    assert m.push("<") == "<" and not m.stopped


def test_stop_matcher_output_never_contains_stop_property():
    rng = np.random.default_rng(3)
    alphabet = list("ab<>/")
    for _ in range(500):
        stop = "".join(rng.choice(alphabet, rng.integers(1, 4)))
        text = "".join(rng.choice(alphabet, rng.integers(0, 20)))
        cuts = sorted(rng.integers(0, len(text) + 1, rng.integers(0, 5)).tolist())
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        m = StopMatcher(stop)
        out = "".join(m.push(p) for p in pieces) + m.flush()
        expected = text[: text.find(stop)] if stop in text else text
        assert out == expected, (stop, pieces)
