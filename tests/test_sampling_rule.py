"""The seeded generator and the choice of a token, held to docs/FORMAT.md's *Generation*: SplitMix64
and every step of ``Sampler.choose`` redone here in plain Python (ints, floats, math.exp; no numpy)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from rnnkit.runtime import NonFiniteError
from rnnkit.runtime.sampling import Sampler, SplitMix64

MASK = 2**64 - 1


def splitmix64(seed: int, n: int) -> list[int]:
    """The first ``n`` outputs, by the pseudo-code in FORMAT.md."""
    state, out = seed, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) % 2**64
        z = state
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % 2**64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB % 2**64
        out.append(z ^ (z >> 31))
    return out


def by_the_document(x: list[float], banned: tuple[int, ...], temperature: float, top_k: int | None,
                    top_p: float | None, uniform) -> int:
    """FORMAT.md's seven steps, one float at a time."""
    z = [float(v) for v in x]
    for i in banned:
        z[i] = -math.inf
    if temperature == 0:
        return z.index(max(z))
    m = max(z)
    z = [(v - m) / temperature for v in z]
    if top_k is not None and top_k < len(z):
        kth = sorted(z, reverse=True)[top_k - 1]
        z = [-math.inf if v < kth else v for v in z]
    w = [math.exp(v) for v in z]
    if top_p is not None and top_p < 1:
        order = sorted(range(len(w)), key=lambda i: (-w[i], i))
        running, sums = 0.0, []
        for i in order:
            running += w[i]
            sums.append(running)
        size = next(j for j, c in enumerate(sums) if c >= top_p * sums[-1]) + 1
        kept = set(order[:size])
        w = [v if i in kept else 0.0 for i, v in enumerate(w)]
    running, sums = 0.0, []
    for v in w:
        running += v
        sums.append(running)
    target = uniform() * sums[-1]
    return next((i for i, s in enumerate(sums) if s > target), max(i for i, v in enumerate(w) if v > 0))


# -- the generator --------------------------------------------------------------------------------
def test_splitmix64_gives_the_published_outputs():
    g = SplitMix64(1234567)
    assert [g.next(), g.next()] == [6457827717110365317, 3203168211198807973]  # the reference C code's
    for seed in (0, 1, 1234567, 2**32 - 1, MASK):
        g = SplitMix64(seed)
        assert [g.next() for _ in range(1000)] == splitmix64(seed, 1000)
    assert splitmix64(0, 1) == [0xE220A8397B1DCDAF]


def test_uniform_is_the_top_53_bits():
    g, outputs = SplitMix64(99), splitmix64(99, 2000)
    values = [g.uniform() for _ in range(2000)]
    assert values == [(o >> 11) / 2**53 for o in outputs]
    assert all(0 <= v < 1 for v in values) and 0.45 < sum(values) / len(values) < 0.55


def test_a_seeded_sampler_starts_from_its_seed_and_an_unseeded_one_from_the_os():
    assert Sampler(seed=5).rng().next() == splitmix64(5, 1)[0]
    firsts = {Sampler().rng().next() for _ in range(20)}
    assert len(firsts) == 20  # 64 random bits each


# -- the choice -----------------------------------------------------------------------------------
def test_choose_is_the_documented_rule_step_by_step():
    rng = random.Random(2024)
    for trial in range(3000):
        n = rng.randint(5, 40)
        logits = np.array([rng.choice([rng.gauss(0, 3), 1.5, -2.0]) for _ in range(n)], np.float32)  # ties too
        temperature = rng.choice([0, 0.3, 1.0, 2.5, 1e-30])
        top_k = rng.choice([None, 1, 2, 5, n + 3])
        top_p = rng.choice([None, 0.1, 0.5, 0.9, 1.0])
        banned = tuple(rng.sample(range(4), rng.randint(0, 4)))
        seed = rng.randrange(2**32)
        sampler, ours = Sampler(temperature, top_k, top_p, seed), SplitMix64(seed)
        theirs = sampler.rng()
        for _ in range(3):  # one generator across several draws, as in generate
            expected = by_the_document([float(v) for v in logits], banned, temperature, top_k, top_p, ours.uniform)
            assert sampler.choose(logits, theirs, banned) == expected, (trial, logits, temperature, top_k, top_p)
        assert theirs.state == ours.state  # one uniform() a sampled token, none when greedy


def test_greedy_takes_the_lowest_id_of_a_tie_and_draws_nothing():
    g = SplitMix64(3)
    logits = np.array([1.0, 4.0, 2.0, 4.0, 4.0], np.float32)
    assert Sampler(temperature=0).choose(logits, g) == 1
    assert Sampler(temperature=0).choose(logits, g, banned=(1,)) == 3
    assert g.state == 3  # untouched


def test_top_k_keeps_every_id_tied_with_the_kth():
    logits = np.array([0.0, 5.0, 3.0, 3.0, 3.0, -1.0])
    seen = {Sampler(top_k=2, seed=s).choose(logits, SplitMix64(s)) for s in range(300)}
    assert seen == {1, 2, 3, 4}  # the 2nd largest is 3.0, which three ids share


def test_top_p_keeps_the_shortest_prefix_ties_by_lower_id():
    w = np.log(np.array([0.1, 0.4, 0.1, 0.3, 0.1]))
    draws = {p: {Sampler(top_p=p, seed=s).choose(w, SplitMix64(s)) for s in range(300)}
             for p in (0.3, 0.65, 0.75, 0.85)}
    assert draws[0.3] == {1}
    assert draws[0.65] == {1, 3}
    assert draws[0.75] == {1, 3, 0}  # of the three tied at 0.1, the lowest id comes first
    assert draws[0.85] == {1, 3, 0, 2}


def test_banned_ids_are_never_drawn_however_likely():
    logits = np.array([50.0, 50.0, 0.0, 0.0, 1.0])
    for s in range(500):
        assert Sampler(temperature=5.0, seed=s).choose(logits, SplitMix64(s), banned=(0, 1)) in {2, 3, 4}


def test_draws_follow_the_distribution():
    logits = np.array([0.0, 1.0, 2.0, -1.0, 0.5])
    sampler, g = Sampler(temperature=0.8), SplitMix64(11)
    counts = np.bincount([sampler.choose(logits, g) for _ in range(20000)], minlength=5) / 20000
    p = np.exp(logits / 0.8)
    np.testing.assert_allclose(counts, p / p.sum(), atol=0.015)


def test_logits_that_are_not_numbers_are_refused_before_any_draw():
    g = SplitMix64(1)
    with pytest.raises(NonFiniteError):
        Sampler().choose(np.array([0.0, math.nan, 1.0]), g)
    assert g.state == 1


def test_the_same_seed_writes_the_same_text(tmp_path):
    pytest.importorskip("torch")
    from factory import tiny_onnx

    from rnnkit.runtime import load_model

    lm = load_model(tiny_onnx(tmp_path, task="lm", cell="gru"))
    runs = [("".join(lm.generate("我", max_tokens=25, seed=s, top_k=20, top_p=0.95)), s) for s in (7, 7, 8)]
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) > 0
    by_hand = SplitMix64(7)
    stream, out, banned = lm.stream(), [], (0, 1, 2)
    stream.feed("我")
    logits = stream.flush()
    for _ in range(25):
        token = by_the_document([float(v) for v in logits], banned, 1.0, 20, 0.95, by_hand.uniform)
        if token == lm.vocab.eos_id:
            break
        out.append(lm.vocab.token(token))
        logits = stream.step(token)
    assert "".join(out) == runs[0][0]  # the text is the rule's, token by token
