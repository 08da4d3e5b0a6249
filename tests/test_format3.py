"""Format 3: language models framed without ``<bos>`` or ``<eos>`` (``rnnkit.framing``) and relu RNNs
(``rnnkit.activation``), read, run, scored, shown and checked against their graphs.

The framed files are tiny lms exported by rnnkit with their metadata rewritten (and, without
``<eos>``, its logit made the constant −1e4), as ``export_module`` writes them; the relu model is
exported by rnnkit itself. The catalogue rows are in ``cases_format3.py``.
"""

from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cases_format3 import NEVER, framed_lm, relu_onnx, with_recurrent_attribute  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from factory import tiny_onnx  # noqa: E402
from onnx_edits import rewrite_metadata  # noqa: E402

import rnnkit.runtime.model as model_module  # noqa: E402
from rnnkit.runtime import InputError, MetadataError, ModelFileError, load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.contract import FORMAT_VERSION, KEYS, ModelSpec, format_for  # noqa: E402
from rnnkit.runtime.errors import DataError  # noqa: E402
from rnnkit.runtime.sampling import Sampler  # noqa: E402
from rnnkit.train.model import ModelConfig, RNNModel  # noqa: E402

FRAMINGS = [(False, False), (False, True), (True, False)]


@pytest.fixture(scope="module")
def lm_file(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("lm"), task="lm", cell="gru", layers=2)


@pytest.fixture(scope="module")
def framed(lm_file, tmp_path_factory):
    """``framed(bos, eos)``: the tiny lm, loaded, as a file framed so (cached)."""
    cache = {}

    def get(bos: bool, eos: bool):
        if (bos, eos) not in cache:
            path = tmp_path_factory.mktemp("framed") / f"bos{bos:d}-eos{eos:d}.onnx"
            cache[bos, eos] = load_model(framed_lm(lm_file, path, bos=bos, eos=eos))
        return cache[bos, eos]

    return get


@pytest.fixture(scope="module")
def relu_file(tmp_path_factory):
    return relu_onnx(tmp_path_factory.mktemp("relu"), layers=2)


def bare_run(model, ids, state=None):
    """logits (T, n_out) of ``ids`` from ``state`` (zeros by default), straight from the session."""
    spec = model.metadata
    feed = spec.feed(np.array([ids], np.int64), spec.zero_state(1) if state is None else state)
    return model.session.run(None, feed)[0][0]


def nll(logits, target) -> float:
    z = logits.astype(np.float64)
    return float(-(z[target] - z.max() - math.log(np.exp(z - z.max()).sum())))


# -- the metadata ----------------------------------------------------------------------------------
def spec(**changes) -> ModelSpec:
    from rnnkit.runtime import CharTokenizer, Vocabulary

    tok = CharTokenizer()
    base = dict(task="lm", cell="rnn", layers=1, hidden=8, embed=4, tokenizer=tok.to_config(),
                vocab=Vocabulary.build([tok.tokenize("我爱北京天安门")]),
                provenance={"rnnkit": "0.1.0", "created": "2026-01-01T00:00:00Z"})
    return ModelSpec(**{**base, **changes})


def test_framing_and_activation_round_trip_and_need_only_the_format_framing_needs():
    assert FORMAT_VERSION == 3
    assert format_for(spec().tokenizer) == 1 and format_for(spec().tokenizer, bos=False) == 3
    plain = spec().to_metadata()
    assert KEYS.FRAMING not in plain and KEYS.ACTIVATION not in plain  # defaults are left out
    for bos, eos in FRAMINGS:
        s = spec(bos=bos, eos=eos, activation="relu")
        props = s.to_metadata()
        assert props[KEYS.FORMAT] == "3" and json.loads(props[KEYS.FRAMING]) == {"bos": bos, "eos": eos}
        assert props[KEYS.ACTIVATION] == "relu"
        assert ModelSpec.from_metadata(props) == s
    relu = spec(activation="relu")
    assert relu.format == 1 and ModelSpec.from_metadata(relu.to_metadata()).activation == "relu"


@pytest.mark.parametrize(("change", "key", "says"), [
    ({KEYS.FORMAT: "2"}, KEYS.FRAMING, "needs model format 3, and the file says format 2"),
    ({KEYS.FRAMING: '{"bos": false}'}, KEYS.FRAMING, "is invalid"),
    ({KEYS.FRAMING: '{"bos": false, "eos": true, "pad": true}'}, KEYS.FRAMING, "is invalid"),
    ({KEYS.FRAMING: '{"bos": 0, "eos": true}'}, KEYS.FRAMING, "is invalid"),
    ({KEYS.FRAMING: "no"}, KEYS.FRAMING, "not valid JSON"),
    ({KEYS.ACTIVATION: "gelu"}, KEYS.ACTIVATION, "is invalid"),
    ({KEYS.CELL: "gru", KEYS.ACTIVATION: "relu"}, KEYS.ACTIVATION, "only an rnn cell takes an activation"),
])
def test_metadata_that_does_not_hold_together_is_refused(change, key, says):
    props = {**spec(bos=False).to_metadata(), **change}
    with pytest.raises(MetadataError, match=says) as info:
        ModelSpec.from_metadata(props)
    assert info.value.key == key


def test_framing_belongs_to_an_lm_only():
    props = spec(task="classify", labels=("neg", "pos")).to_metadata()
    for framing in ('{"bos": false, "eos": false}', '{"bos": true, "eos": true}'):
        with pytest.raises(MetadataError, match="only an lm is framed by <bos> and <eos>") as info:
            ModelSpec.from_metadata({**props, KEYS.FORMAT: "3", KEYS.FRAMING: framing})
        assert info.value.key == KEYS.FRAMING
    both = {**spec().to_metadata(), KEYS.FRAMING: '{"bos": true, "eos": true}'}  # the default, spelled out
    assert ModelSpec.from_metadata(both) == spec()


def test_a_file_of_format_2_that_claims_framing_is_refused(lm_file, tmp_path):
    path = framed_lm(lm_file, tmp_path / "v2.onnx", bos=True, eos=False, fmt="2")
    with pytest.raises(MetadataError, match="needs model format 3, and the file says format 2"):
        load_model(path)


# -- streams without <bos> -------------------------------------------------------------------------
@pytest.mark.parametrize(("bos", "eos"), FRAMINGS)
def test_streams_of_a_model_without_bos_start_at_the_zero_state(framed, bos, eos):
    model = framed(bos, eos)
    zero = model.zero_state(1)
    start = model.start_state(3)
    if bos:
        np.testing.assert_array_equal(model.start_logits(), bare_run(model, [2])[-1])
        assert not np.allclose(start[0], 0)
        return
    assert model.start_logits() is None
    assert all(a.shape == (2, 3, 12) and not a.any() for a in start)
    stream = model.stream()
    assert stream.logits is None and stream.flush() is None
    ids = model.encode("我爱北京")
    first = stream.step(ids[0])
    np.testing.assert_allclose(first, bare_run(model, ids[:1], zero)[-1], rtol=1e-6, atol=1e-6)
    logits = stream.feed("爱北京")
    np.testing.assert_allclose(logits, bare_run(model, ids)[-1], rtol=1e-5, atol=1e-5)
    stream.reset()
    assert stream.logits is None and stream.consumed == 0 and not stream.state[0].any()


def test_a_model_with_bos_still_starts_after_it(framed, lm_file):
    plain, noeos = load_model(lm_file), framed(True, False)
    np.testing.assert_array_equal(plain.start_logits(), bare_run(plain, [plain.vocab.bos_id])[-1])
    learned = np.arange(plain.n_out) != plain.vocab.eos_id  # the <eos> logit is the file's only change
    np.testing.assert_array_equal(plain.start_logits()[learned], noeos.start_logits()[learned])
    np.testing.assert_array_equal(plain.start_state()[0], noeos.start_state()[0])


def test_the_eos_logit_of_a_model_without_eos_is_a_large_finite_constant(framed):
    model = framed(False, False)
    logits = model.stream().feed("我爱北京天安门")
    assert logits[model.vocab.eos_id] == pytest.approx(NEVER) and np.isfinite(logits).all()


def test_snapshots_of_a_stream_without_bos_round_trip_before_and_after_tokens(framed):
    model = framed(False, False)
    fresh = model.stream()
    data = fresh.snapshot()
    restored = model.stream(data)
    assert restored.logits is None and restored.consumed == 0 and not restored.state[0].any()
    assert restored.snapshot() == data
    np.testing.assert_array_equal(restored.feed("我爱"), fresh.feed("我爱"))
    after = fresh.snapshot()
    again = model.stream(after)
    assert again.consumed == 2
    np.testing.assert_array_equal(again.logits, fresh.logits)
    np.testing.assert_array_equal(again.step(5), fresh.step(5))
    signed = model.stream(model.stream(key=b"k" * 32).snapshot(), key=b"k" * 32)
    assert signed.logits is None


def test_the_batcher_reads_streams_without_bos_as_they_read_alone(framed):
    model = framed(False, True)
    texts = ["我爱北京", "好", "天安门很好看"]
    alone = [model.stream().feed(t) for t in texts]
    batcher = model.batcher()
    streams = [model.stream() for _ in texts]
    for got, want in zip(batcher.feed(streams, texts), alone):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    fresh = [model.stream() for _ in range(3)]  # stepped together from the zero state
    stepped = batcher.step(fresh, [5, 6, 7])
    for row, token in enumerate([5, 6, 7]):
        np.testing.assert_allclose(stepped[row], bare_run(model, [token])[-1], rtol=1e-5, atol=1e-5)
    assert batcher.feed([model.stream()], [""]) == [None]


# -- generate ------------------------------------------------------------------------------------
def test_generate_without_bos_needs_a_prompt(framed):
    with pytest.raises(InputError, match="trained without <bos>, so it cannot begin a text: give generate a prompt"):
        framed(False, True).generate("")  # refused when called, before any piece
    pieces = list(framed(False, True).generate(" ", max_tokens=3, seed=0))  # whitespace is a char model's token
    assert 1 <= len(pieces) <= 3 and all(isinstance(p, str) and p for p in pieces)


def test_generate_without_bos_continues_the_prompt_from_the_zero_state(framed):
    model = framed(False, True)
    pieces = list(model.generate("我爱", max_tokens=6, temperature=0))
    ids = model.encode("我爱")
    want = []
    for _ in range(6):
        logits = bare_run(model, ids)[-1].astype(np.float64)
        logits[[0, 1, 2]] = -np.inf
        token = int(np.argmax(logits))
        if token == model.vocab.eos_id:
            break
        want.append(model.vocab.token(token))
        ids.append(token)
    assert pieces == want and pieces
    assert list(framed(True, True).generate("", max_tokens=3, seed=0))  # with <bos>, an empty prompt begins a text


class Scripted:
    """Stands in for Sampler: returns scripted ids and records what it was told to avoid."""

    script: ClassVar[list[int]] = []
    banned: ClassVar[list[tuple[int, ...]]] = []

    def __init__(self, *args):
        Sampler(*args)

    def rng(self):
        return None

    def choose(self, logits, rng, banned=()):
        Scripted.banned.append(tuple(banned))
        return Scripted.script.pop(0)


@pytest.mark.parametrize(("bos", "eos"), [(False, False), (True, False), (False, True)])
def test_generate_bans_eos_when_the_model_never_learned_it(framed, monkeypatch, bos, eos):
    model = framed(bos, eos)
    monkeypatch.setattr(model_module, "Sampler", Scripted)
    v = model.vocab
    Scripted.script, Scripted.banned = [5, 6, 7], []
    assert list(model.generate("我", max_tokens=3)) == [v.token(5), v.token(6), v.token(7)]
    specials = {v.pad_id, v.unk_id, v.bos_id}
    assert all(set(b) == (specials if eos else specials | {v.eos_id}) for b in Scripted.banned)


def test_a_model_without_eos_writes_until_max_tokens(framed):
    model = framed(False, False)
    for seed in range(5):
        pieces = list(model.generate("我", max_tokens=12, seed=seed, temperature=2.0))
        assert len(pieces) == 12


def test_the_generate_command_refuses_an_empty_prompt_in_one_line(framed):
    result = CliRunner().invoke(cli, ["generate", str(framed(False, False).path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: this model was trained without <bos>, so it cannot begin a text: give generate a prompt "
        "(one with at least one token)"]
    ok = CliRunner().invoke(cli, ["generate", str(framed(False, False).path), "--prompt", "我", "--max-tokens", "3",
                                  "--seed", "0"])
    assert ok.exit_code == 0 and ok.stdout.startswith("我")


# -- evaluate ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("bos", "eos"), [*FRAMINGS, (True, True)])
def test_perplexity_follows_the_framing(framed, lm_file, bos, eos):
    model = framed(bos, eos) if not (bos and eos) else load_model(lm_file)
    v = model.vocab
    docs = ["我爱北京天安门", "好", "hello", "今天天气很不错"]
    total, count, unscored = 0.0, 0, 0
    for doc in docs:
        ids = model.encode(doc)
        inputs = [v.bos_id, *ids] if bos else ids
        targets = (ids if bos else ids[1:]) + ([v.eos_id] if eos else [])
        if not inputs or not targets[: len(inputs)]:
            unscored += 1
            continue
        logits = bare_run(model, inputs)  # (T, V), from the zero state
        for t, target in enumerate(targets[: len(inputs)]):
            total += nll(logits[t], target)
            count += 1
    report = model.evaluate(docs, batch_size=2)
    m = report.metrics
    assert m["tokens"] == count and m["documents"] == len(docs) - unscored and m["unscored"] == unscored
    assert m["loss"] == pytest.approx(total / count, rel=1e-5)
    assert m["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    if bos and eos:
        assert "framing" not in m and unscored == 0 and count == sum(len(model.encode(d)) + 1 for d in docs)
        assert "(each <bos> … <eos>)" in report.lines()[0]
    else:
        assert m["framing"] == {"bos": bos, "eos": eos}
    if not bos and not eos:
        assert unscored == 1 and count == sum(len(model.encode(d)) - 1 for d in docs)
        assert report.lines()[0].endswith("(each from its 2nd token … its last token)")
        assert report.lines()[-1] == "not scored: 1 document with no token to predict"


def test_evaluate_without_bos_streams_each_document_as_a_stream_reads_it(framed):
    model = framed(False, True)
    doc = "我爱北京天安门"
    stream, total, n = model.stream(), 0.0, 0
    ids = model.encode(doc)
    logits = stream.step(ids[0])
    for token in [*ids[1:], model.vocab.eos_id]:
        total += nll(logits, token)
        n += 1
        if token != model.vocab.eos_id:
            logits = stream.step(token)
    assert model.evaluate([doc]).metrics["loss"] == pytest.approx(total / n, rel=1e-5)


def test_data_with_nothing_to_predict_is_refused(framed, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("我\n好\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"short\.txt: none of the 2 documents has a token to predict: this model "
                                        r"was trained without <bos> and <eos>, so a document needs at least 2 "
                                        "tokens"):
        framed(False, False).evaluate(path)
    assert framed(False, True).evaluate(path).metrics["tokens"] == 2  # each predicts its <eos>
    result = CliRunner().invoke(cli, ["evaluate", str(framed(False, False).path), "--data", str(path)])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


# -- relu RNNs and the graph's activations ---------------------------------------------------------
def test_a_relu_rnn_exports_loads_and_computes_relu(relu_file):
    model = load_model(relu_file)
    assert model.metadata.activation == "relu" and model.metadata.format == 1
    payload = torch.load(relu_file.parent / "checkpoint.pt", weights_only=True)
    torch_model = RNNModel(ModelConfig(**payload["model_config"])).eval()
    torch_model.load_state_dict(payload["model"])
    ids = model.encode("我爱北京天安门")
    with torch.no_grad():
        want = torch_model(torch.tensor([[model.vocab.bos_id, *ids]]))[0][0, -1].numpy()
    np.testing.assert_allclose(model.stream().feed("我爱北京天安门"), want, rtol=1e-4, atol=1e-5)
    tanh = RNNModel(ModelConfig(**{**payload["model_config"], "activation": "tanh"})).eval()
    tanh.load_state_dict(payload["model"])
    with torch.no_grad():
        other = tanh(torch.tensor([[model.vocab.bos_id, *ids]]))[0][0, -1].numpy()
    assert np.abs(other - want).max() > 1e-3  # the two nonlinearities differ here: the check above means something


def test_the_graph_and_the_metadata_must_agree_on_the_activation(relu_file, tmp_path):
    said_tanh = rewrite_metadata(relu_file, tmp_path / "said-tanh.onnx", activation=None)
    with pytest.raises(MetadataError, match="the graph's RNN computes relu but the metadata's activation is "
                                            "'tanh'") as info:
        load_model(said_tanh)
    assert info.value.key == KEYS.ACTIVATION
    tanh_file = tiny_onnx(tmp_path / "tanh", task="lm", cell="rnn")
    said_relu = rewrite_metadata(tanh_file, tmp_path / "said-relu.onnx", activation="relu")
    with pytest.raises(MetadataError, match="the graph's RNN computes tanh but the metadata's activation is "
                                            "'relu'") as info:
        load_model(said_relu)
    assert info.value.key == KEYS.ACTIVATION
    bare = with_recurrent_attribute(tanh_file, tmp_path / "bare.onnx", "activations", ["Tanh"])
    assert load_model(bare).metadata.activation == "tanh"


def test_an_activation_on_a_gru_is_refused(lm_file, tmp_path):
    with pytest.raises(MetadataError, match="only an rnn cell takes an activation; a gru cell's are fixed"):
        load_model(rewrite_metadata(lm_file, tmp_path / "gru-relu.onnx", activation="relu"))


@pytest.mark.parametrize(("cell", "name", "value", "says"), [
    ("rnn", "activations", ["Sigmoid"], r"an RNN node with activations \['Sigmoid'\], not Tanh or Relu"),
    ("rnn", "activations", ["relu"], r"activations \['relu'\], not Tanh or Relu"),
    ("rnn", "activations", ["Tanh", "Tanh"], "not Tanh or Relu"),
    ("gru", "activations", ["Relu", "Tanh"], r"a GRU node with activations \['Relu', 'Tanh'\], not ONNX's defaults"),
    ("lstm", "activations", ["Sigmoid", "Relu", "Tanh"], "a LSTM node with activations"),
    ("lstm", "clip", 3.0, "a LSTM node with clip"),
    ("rnn", "activation_alpha", [0.5], "a RNN node with activation_alpha"),
    ("gru", "activation_beta", [0.5, 0.5], "a GRU node with activation_beta"),
])
def test_recurrent_nodes_rnnkit_never_writes_are_refused(tmp_path, cell, name, value, says):
    src = tiny_onnx(tmp_path / cell, task="lm", cell=cell)
    with pytest.raises(ModelFileError, match=says):
        load_model(with_recurrent_attribute(src, tmp_path / "edited.onnx", name, value))


@pytest.mark.parametrize(("cell", "defaults"), [("gru", ["Sigmoid", "Tanh"]), ("lstm", ["Sigmoid", "Tanh", "Tanh"])])
def test_onnx_default_activations_spelled_out_are_accepted(tmp_path, cell, defaults):
    src = tiny_onnx(tmp_path / cell, task="lm", cell=cell)
    spelled = load_model(with_recurrent_attribute(src, tmp_path / "spelled.onnx", "activations", defaults))
    np.testing.assert_allclose(spelled.stream().feed("我爱"), load_model(src).stream().feed("我爱"), atol=1e-6)


def test_a_quantized_relu_rnn_keeps_its_activation(relu_file, tmp_path):
    from rnnkit.export import export_onnx

    out = tmp_path / "int8.onnx"
    export_onnx(relu_file.parent / "checkpoint.pt", out, quantize="int8", max_drop=1.0)
    model = load_model(out)
    assert model.metadata.activation == "relu" and model.metadata.quantization["mode"] == "int8"
    fp32 = load_model(relu_file).stream().feed("我爱北京")
    np.testing.assert_allclose(model.stream().feed("我爱北京"), fp32, atol=0.1 * max(1.0, np.abs(fp32).max()))


# -- what inspect and repr show --------------------------------------------------------------------
def test_inspect_shows_the_activation_and_the_framing(relu_file, framed, lm_file):
    shown = CliRunner().invoke(cli, ["inspect", str(relu_file)]).stdout
    assert "→ RNN × 2 (hidden 12, relu) →" in shown and "framing:" not in shown
    nobos = CliRunner().invoke(cli, ["inspect", str(framed(False, False).path)]).stdout
    assert "format 3)" in nobos.splitlines()[0]
    assert ("framing:       no <bos> (streams start at zero state; generate needs a prompt), no <eos> (it never "
            "ends a text itself)") in nobos.splitlines()
    noeos = CliRunner().invoke(cli, ["inspect", str(framed(True, False).path)]).stdout
    assert "framing:       <bos>, no <eos> (it never ends a text itself)" in noeos.splitlines()
    plain = CliRunner().invoke(cli, ["inspect", str(lm_file)]).stdout
    assert "framing:" not in plain and "relu" not in plain
    info = json.loads(CliRunner().invoke(cli, ["inspect", str(framed(False, True).path), "--json"]).stdout)
    assert info["framing"] == {"bos": False, "eos": True} and info["activation"] is None and info["format"] == 3
    assert json.loads(CliRunner().invoke(cli, ["inspect", str(relu_file), "--json"]).stdout)["activation"] == "relu"


def test_repr_says_what_is_not_the_default(relu_file, framed, lm_file):
    assert "activation='relu'" in repr(load_model(relu_file))
    assert "bos=False, eos=True" in repr(framed(False, True))
    plain = repr(load_model(lm_file))
    assert "activation" not in plain and "bos" not in plain
