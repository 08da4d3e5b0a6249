"""Model files read from their bytes before onnxruntime sees them; long inputs in bounded calls.

The catalogue (docs/ERRORS.md, ``cases_graph.py``) holds one row per kind of hostile graph; the
tests here go deeper: the reader agrees with ``onnx`` on every graph the exporter writes, a
refused file never reaches onnxruntime, damaged bytes only ever raise rnnkit's errors, and long
texts go through the session in calls of bounded length with the same answers.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import cases_graph  # noqa: E402
from factory import TEXTS, tiny_checkpoint, tiny_onnx  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.export.graph import max_opset  # noqa: E402
from rnnkit.runtime import BudgetError, NonFiniteError, RnnkitError, load_model  # noqa: E402
from rnnkit.runtime.graphcheck import OPERATORS  # noqa: E402
from rnnkit.runtime.model import CALL_STEPS  # noqa: E402
from rnnkit.runtime.onnxfile import OnnxFormatError, read_onnx  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-graph")
    made = {}
    for cell, task in itertools.product(("rnn", "gru", "lstm"), ("lm", "classify", "tag")):
        made[cell, task] = tiny_onnx(root / f"{cell}-{task}", task=task, cell=cell, layers=2,
                                     lookahead=1 if task == "tag" else 0)
    return made


class Ctx:
    """Enough of the catalogue's context for ``cases_graph``'s edits."""

    def __init__(self, root, files):
        self.root, self._made = root, {}
        self.clf, self.lm = files["lstm", "classify"], files["gru", "lm"]

    def once(self, key, make):
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def file(self, name, data):
        (self.root / name).write_bytes(data)
        return self.root / name


# -- the reader agrees with onnx -----------------------------------------------------------------
@pytest.mark.parametrize("cell,quantize,opset", list(itertools.product(("rnn", "gru", "lstm"), (None, "int8"),
                                                                       (14, max_opset()))))
def test_the_reader_sees_what_onnx_sees(tmp_path, cell, quantize, opset):
    ckpt = tiny_checkpoint(tmp_path, task="lm", cell=cell, layers=2, hidden=32, embed=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(ckpt, tmp_path / "m.onnx", quantize=quantize, opset=opset)
    data = (tmp_path / "m.onnx").read_bytes()
    ours, ref = read_onnx(data), onnx.load_from_string(data)
    assert ours.metadata == {p.key: p.value for p in ref.metadata_props}
    assert ours.opsets == {o.domain: o.version for o in ref.opset_import}
    assert [(n.op_type, n.domain, n.inputs, n.outputs) for n in ours.nodes] == \
        [(n.op_type, n.domain, tuple(n.input), tuple(n.output)) for n in ref.graph.node]
    assert [(t.name, t.dims, t.data_type, bytes(t.raw or b"")) for t in ours.initializers] == \
        [(t.name, tuple(t.dims), t.data_type, t.raw_data) for t in ref.graph.initializer]
    for mine, theirs in zip(ours.nodes, ref.graph.node):
        for a in theirs.attribute:
            got = mine.attributes[a.name]
            value = onnx.helper.get_attribute_value(a)
            if a.type == onnx.AttributeProto.INT:
                assert got.i == value
            elif a.type == onnx.AttributeProto.INTS:
                assert got.ints == tuple(value)
            elif a.type == onnx.AttributeProto.STRING:
                assert got.s == value
            elif a.type == onnx.AttributeProto.TENSOR:
                assert got.tensor.dims == tuple(value.dims)
    shapes = [(v.name, v.elem_type, [d.value if d.value is not None else d.param for d in v.shape])
              for v in (*ours.inputs, *ours.outputs)]
    assert shapes == [(v.name, v.type.tensor_type.elem_type,
                       [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim])
                      for v in (*ref.graph.input, *ref.graph.output)]
    model = load_model(tmp_path / "m.onnx")  # and the checks accept it
    mode = "int8" if quantize else "none"
    assert {(n.domain, n.op_type) for n in ours.nodes} <= OPERATORS[mode]
    assert model.identity == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("key", ["labels", "vocab"])
def test_metadata_text_that_spells_a_lone_surrogate_is_refused(files, tmp_path, key):
    import json

    from onnx_edits import rewrite_metadata

    from rnnkit.runtime import MetadataError

    src = files["lstm", "classify"]
    model = load_model(src)
    if key == "labels":
        changes = {"labels": json.dumps(["neg", "p\ud800s"])}
    else:
        tokens = [*model.vocab.tokens[:-1], "\udc80"]
        changes = {"vocab": json.dumps(tokens), "vocab_sha256": "0" * 64}  # checked before the checksum
    with pytest.raises(MetadataError, match="holds a lone surrogate"):
        load_model(rewrite_metadata(src, tmp_path / "m.onnx", **changes))


def test_every_task_and_cell_the_exporter_writes_loads(files):
    for (cell, task), path in files.items():
        model = load_model(path)
        assert (model.metadata.cell, model.task) == (cell, task)


def test_the_fp32_list_is_inside_the_int8_list():
    assert OPERATORS["none"] < OPERATORS["int8"]
    assert not {op for _, op in OPERATORS["int8"]} & {"Loop", "If", "Scan", "ConstantOfShape", "Expand", "Tile",
                                                     "Range", "Shape", "Reshape", "Resize", "Pad", "OneHot"}


# -- a refused file never reaches onnxruntime ----------------------------------------------------
HOSTILE = ["E78", "E79", "E80", "E81", "E82", "E83", "E86", "E88", "E89", "E91", "E94", "E96", "E97", "E98",
           "E99", "E100", "E101", "E102", "E103", "E105", "E106", "E111", "E113", "E114", "E116",
           *(f"E{n}" for n in range(245, 261))]  # quantized graphs


@pytest.mark.parametrize("ident", HOSTILE)
def test_a_refused_file_is_refused_before_onnxruntime_sees_it(ident, files, tmp_path, monkeypatch):
    import onnxruntime

    c = Ctx(tmp_path, files)
    case = cases_graph.CASES[ident]

    def no_session(*args, **kwargs):
        raise AssertionError(f"{ident}: onnxruntime was asked to load the file")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    with pytest.raises(RnnkitError):
        case.api(c)


def test_a_loop_file_is_refused_at_once(files, tmp_path):
    """The 10¹²-iteration Loop would hang a loader that runs the graph; the check takes milliseconds."""
    import time

    c = Ctx(tmp_path, files)
    path = cases_graph.edited(c, "loop", cases_graph.loop)
    assert path.stat().st_size < 20_000
    started = time.perf_counter()
    with pytest.raises(RnnkitError, match="Loop"):
        load_model(path)
    assert time.perf_counter() - started < 30  # a bound on a hang, not a speed measurement


# -- damaged bytes raise only rnnkit's errors ----------------------------------------------------
def test_flipped_and_cut_bytes_raise_only_rnnkit_errors(files, tmp_path):
    data = files["gru", "lm"].read_bytes()
    rng = random.Random(0)
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(150):
        damaged = bytearray(data)
        if trial % 3 == 0:
            damaged = damaged[: rng.randrange(len(damaged))]
        else:
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path = tmp_path / f"d{trial}.onnx"
        path.write_bytes(bytes(damaged))
        try:
            model = load_model(path)
        except RnnkitError as e:
            assert "\n" not in str(e)
            outcomes["refused"] += 1
        else:
            model.stream().feed("hello")
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 50  # most damage is seen


def test_random_bytes_are_not_an_onnx_file():
    rng = random.Random(1)
    refused = 0
    for _ in range(300):  # anything but OnnxFormatError escaping fails the test
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        try:
            model = read_onnx(data)
        except OnnxFormatError:
            refused += 1
        else:
            assert not model.nodes or model.has_graph
    assert refused > 200


# -- long inputs go through in bounded calls -----------------------------------------------------
def _recording(model, monkeypatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    run = model.run

    def recorded(tokens, state=None, **kwargs):
        calls.append(np.shape(tokens))
        return run(tokens, state, **kwargs)

    monkeypatch.setattr(model, "run", recorded)
    return calls


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_long_prompt_goes_through_in_bounded_calls_with_the_same_logits(cell, files, monkeypatch):
    model = load_model(files[cell, "lm"])
    text = "".join(TEXTS) * 60  # ~4,000 characters
    ids = model.encode(text)
    whole, _ = model.run(np.array([ids]), model.start_state(1))  # one call, for the reference
    calls = _recording(model, monkeypatch)
    stream = model.stream()
    logits = stream.feed(text)
    assert calls and max(t for _, t in calls) <= CALL_STEPS and sum(t for _, t in calls) == len(ids)
    np.testing.assert_allclose(logits, whole[0, -1], rtol=0, atol=1e-6)
    assert stream.consumed == len(ids)


def test_classify_and_tag_of_long_texts_use_bounded_calls(files, monkeypatch):
    clf = load_model(files["lstm", "classify"])
    short = clf.classify(TEXTS)
    long_text = "".join(TEXTS) * 40
    calls = _recording(clf, monkeypatch)
    preds = clf.classify([long_text, *TEXTS])
    assert max(t for _, t in calls) <= CALL_STEPS
    assert [p.label for p in preds[1:]] == [p.label for p in short]
    fed = clf.stream()
    fed.feed(long_text)
    assert preds[0].scores == pytest.approx(fed.prediction().scores, abs=1e-6)

    tagger = load_model(files["gru", "tag"])
    calls = _recording(tagger, monkeypatch)
    result = tagger.tag(long_text)
    assert max(t for _, t in calls) <= CALL_STEPS
    ts = tagger.tag_stream()
    pieces = [long_text[i : i + 97] for i in range(0, len(long_text), 97)]
    streamed = [pair for piece in pieces for pair in ts.feed(piece)] + list(ts.end())
    assert list(result) == streamed


def test_a_small_budget_makes_calls_shorter_not_answers_different(files, monkeypatch):
    path = files["gru", "lm"]
    free, tight = load_model(path), load_model(path, max_call_bytes=64 * 1024)
    assert tight.call_length(1) < CALL_STEPS and free.call_length(1) == CALL_STEPS
    text = "".join(TEXTS) * 30
    calls = _recording(tight, monkeypatch)
    a, b = free.stream().feed(text), tight.stream().feed(text)
    assert max(t for _, t in calls) <= tight.call_length(1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    batch = tight.batcher()
    streams = [tight.stream() for _ in range(3)]
    out = batch.feed(streams, [text, text[:500], text[:50]])
    np.testing.assert_allclose(out[0], a, rtol=0, atol=1e-6)
    with pytest.raises(BudgetError, match=r"more than the 64\.0 KiB a call may use") as info:
        tight.run(np.full((4, 2000), 4), tight.start_state(4))
    assert info.value.needed > info.value.allowed == 64 * 1024


# -- numbers that are not numbers ----------------------------------------------------------------
def test_a_step_that_gives_nan_raises_and_every_row_keeps_its_state(files):
    model = load_model(files["lstm", "lm"])
    binding = model.step_binding(3)
    binding.tokens[:, 0] = [4, 5, 6]
    binding.step()
    binding.state[1][1, 2, 5] = np.nan  # row 2's cell state, written straight into the engine's buffer
    before = [a.copy() for a in binding.state]
    with pytest.raises(NonFiniteError, match="NaN or infinite logits"):
        binding.step()
    for a, b in zip(before, binding.state):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", [0, 1])  # h, c
def test_a_non_finite_state_is_refused_where_it_comes_in(files, bad, which):
    """onnxruntime's clamped activations can turn a NaN or inf state into finite logits, so a state
    from outside is checked where it enters: ``Stream.load``, ``Model.run``."""
    model = load_model(files["lstm", "lm"])
    stream = model.stream()
    stream.feed("你好")
    good = stream.logits
    state = [a.copy() for a in stream.state]
    state[which][1, 0, 3] = bad
    with pytest.raises(NonFiniteError, match="the state given holds NaN or infinite values"):
        stream.load(state, good, stream.consumed)
    with pytest.raises(NonFiniteError, match="the state given"):
        model.run(np.array([[4]]), state)
    np.testing.assert_array_equal(stream.logits, good)
    assert np.isfinite(stream.step(5)).all()
    logits = good.copy()
    logits[7] = bad
    with pytest.raises(NonFiniteError, match="the logits given"):
        stream.load(stream.state, logits, stream.consumed)


def test_a_text_longer_than_one_piece_is_tokenized_piece_by_piece(files, monkeypatch):
    from rnnkit.runtime.stream import FEED_CHARS, Stream

    clf = load_model(files["gru", "classify"])
    text = ("".join(TEXTS) * 1000)[: 3 * FEED_CHARS + 123]
    reference = clf.stream()
    for i in range(0, len(text), 1000):  # a live stream fed in small pieces
        reference.feed(text[i : i + 1000])
    pieces: list[int] = []
    take = Stream.take_ids

    def recorded(self, piece="", **kwargs):
        pieces.append(len(piece))
        return take(self, piece, **kwargs)

    monkeypatch.setattr(Stream, "take_ids", recorded)
    pred = clf.classify([text, TEXTS[0]])[0]
    assert pieces and max(pieces) <= FEED_CHARS and sum(pieces) == len(text)
    assert pred.scores == pytest.approx(reference.prediction().scores, abs=1e-6)
    lm = load_model(files["lstm", "lm"])
    fed = lm.stream()
    fed.feed(text)
    small = lm.stream()
    for i in range(0, len(text), 777):
        small.feed(text[i : i + 777])
    np.testing.assert_allclose(fed.logits, small.logits, rtol=0, atol=1e-6)
    assert fed.consumed == small.consumed == len(lm.encode(text))


def test_what_a_graph_computes_sets_its_budget(files, tmp_path):
    """A graph whose activations are larger than rnnkit's (here: the state concatenated with
    itself 6 times, unused) still loads, but its budget counts them, so its calls are shorter."""
    c = Ctx(tmp_path, files)

    def six(model):
        last = "h0"
        for i in range(6):
            model.graph.node.append(onnx.helper.make_node("Concat", [last, last], [f"twice{i}"], axis=0))
            last = f"twice{i}"

    plain = load_model(files["lstm", "classify"], max_call_bytes=1 << 20)
    grown = load_model(cases_graph.edited(c, "six", six), max_call_bytes=1 << 20)
    assert grown.budget.state_bytes > 16 * plain.budget.state_bytes  # 2 + 4 + … + 128 copies of the state
    assert grown.call_length(8) < plain.call_length(8)
    assert grown.budget.max_batch() < 64 <= plain.budget.max_batch()  # classify shrinks its batches to fit
    assert [p.label for p in grown.classify(TEXTS)] == [p.label for p in plain.classify(TEXTS)]


def test_an_error_that_quotes_a_path_with_a_newline_is_one_line(tmp_path, files):
    from rnnkit.runtime import ModelNotFoundError

    forged = tmp_path / "m.onnx\nError: forged\x1b[2J"
    with pytest.raises(ModelNotFoundError) as info:
        load_model(forged)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
    assert "m.onnx\\nError: forged\\x1b[2J" in str(info.value)
    bad = tmp_path / "bad\nname.onnx"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(RnnkitError) as info:
        load_model(bad)
    assert "\n" not in str(info.value)
