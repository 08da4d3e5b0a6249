"""Quantized files that stream exactly: int8 and int4 of every cell give a text the same answers
alone, in any batch, whole or in any chunks, through Stream, StreamBatcher and classify; the
per-call scheme is reachable only by name, says what it is, and older int8 files keep loading."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402
from factory import TEXTS, tiny_checkpoint  # noqa: E402
from onnx_edits import rewrite_metadata  # noqa: E402

import rnnkit.export.exporter as exporter  # noqa: E402
import rnnkit.export.quantize as quantize  # noqa: E402
from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.export.quantgate import INVARIANCE_TOL  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.errors import (  # noqa: E402
    ConfigError,
    MetadataError,
    ModelFileError,
    QuantizationError,
    RnnkitWarning,
)
from rnnkit.runtime.session import check_onnxruntime_version  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint  # noqa: E402

CELLS = ["rnn", "gru", "lstm"]
MODES = ["int8", "int4"]
# Texts of other users: what shares a batch with the text under test.
OTHERS = ["质量太差了，不推荐！", "hello world hello world", "快递很快", "内", "Great book 😀 写得不错，很喜欢"]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """The issue's bar: bit-identical, or within 1e-6 × max(1, |x|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= INVARIANCE_TOL * max(1.0, float(np.max(np.abs(a))))


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return {cell: tiny_checkpoint(tmp_path_factory.mktemp(f"ckpt-{cell}"), task="classify", cell=cell, layers=2,
                                  hidden=40, embed=32) for cell in ("gru", "lstm")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(task, cell, mode) → exported file; embed 32 (int4's embedding blocks), hidden 40 (a padded block)."""
    made = {}

    def get(task: str, cell: str, mode: str | None):
        key = (task, cell, mode)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"{task}-{cell}-{mode}")
            ckpt = tiny_checkpoint(folder, task=task, cell=cell, layers=2, hidden=40, embed=32)
            with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
                warnings.simplefilter("ignore")  # tiny files may not shrink; int8-dynamic warns by design
                patch.setattr(quantize, "HEAD_COMPUTE_INT8", 0)  # int8 products even in tiny heads
                report = export_onnx(ckpt, folder / "model.onnx", quantize=mode, max_drop=1.0)
            made[key] = folder / "model.onnx", report
        return made[key]
    return get


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell", CELLS)
def test_a_stream_gives_the_same_logits_whole_and_in_any_chunks(files, cell, mode):
    path, report = files("lm", cell, mode)
    assert report.quantization["batch_invariant"] is True and report.quantization["invariance"]["ok"]
    model = load_model(path)
    text = TEXTS[0] + TEXTS[6] + TEXTS[4]
    whole = model.stream()
    ids = whole.take_ids(text, final=True)
    expected = whole.feed_ids(ids, every=True)  # (len, n_out): one session call
    one_by_one = model.stream()
    stepped = np.stack([one_by_one.step(i) for i in ids])
    assert close(expected, stepped)
    for cuts in ([1, 2, 3], [5, 7], [len(ids) - 1]):
        s, at, pieces = model.stream(), 0, []
        for size in [*cuts, len(ids)]:
            if at < len(ids):
                pieces.append(s.feed_ids(ids[at : at + size], every=True))
                at += size
        assert close(expected, np.concatenate(pieces))
        assert all(close(a, b) for a, b in zip(s.state, one_by_one.state))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell", CELLS)
def test_a_stream_in_a_batcher_gives_what_it_gives_alone(files, cell, mode):
    path, _ = files("lm", cell, mode)
    model = load_model(path)
    mine = model.stream()
    ids = mine.take_ids(TEXTS[0] + TEXTS[1], final=True)
    alone = np.stack([mine.step(i) for i in ids])
    rng = np.random.default_rng(0)
    for neighbours in (1, 4, 15):
        batcher = model.batcher()
        streams = [model.stream() for _ in range(neighbours + 1)]
        for other in streams[1:]:  # the neighbours already hold different texts
            other.feed(OTHERS[int(rng.integers(len(OTHERS)))])
        rows = []
        for i in ids:
            step = [i, *rng.integers(4, len(model.vocab), neighbours).tolist()]
            rows.append(batcher.step(streams, step)[0])
        assert close(alone, np.stack(rows)), neighbours
        assert all(close(a, b) for a, b in zip(mine.state, streams[0].state))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell", CELLS)
def test_classify_gives_a_text_the_same_scores_in_any_batch(files, cell, mode):
    path, _ = files("classify", cell, mode)
    model = load_model(path)
    text = TEXTS[0]
    alone = model.classify(text).scores
    two_threads = load_model(path, threads=2)  # onnxruntime splits the work between threads: same sums
    for runner, batch, size in ((model, [*OTHERS, text], 64), (model, [text, *OTHERS, *OTHERS], 3),
                                (model, [OTHERS[1], text], 1), (two_threads, [*OTHERS * 8, text], 64)):
        got = runner.classify(batch, batch_size=size)[batch.index(text)].scores
        assert got.keys() == alone.keys()
        assert all(abs(got[k] - alone[k]) <= INVARIANCE_TOL for k in alone), (size, got, alone)


@pytest.mark.parametrize("mode", MODES)
def test_a_tagger_tags_a_text_the_same_alone_and_among_others(files, mode):
    path, _ = files("tag", "gru", mode)
    model = load_model(path)
    text = TEXTS[0] + TEXTS[4]
    alone = model.tag(text)
    streams = [model.tag_stream() for _ in range(4)]
    batcher = model.batcher()
    pieces = [text[:3], text[3:4], text[4:]]
    results = [batcher.feed(streams, [piece, *OTHERS[:3]])[0] for piece in pieces]
    results.append(batcher.flush(streams)[0])
    assert [pair for r in results if r is not None for pair in r] == list(alone)


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_int8_computes_in_int8_only_a_head_large_enough_to_gain(tmp_path, monkeypatch, task):
    ckpt = tiny_checkpoint(tmp_path / "run", task=task, cell="gru", hidden=40, embed=32)
    n_out = load_checkpoint(ckpt)["model"]["head.weight"].shape[0]
    for bound, int8_head in ((40 * n_out, True), (40 * n_out + 1, False)):
        monkeypatch.setattr(quantize, "HEAD_COMPUTE_INT8", bound)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = export_onnx(ckpt, tmp_path / "m.onnx", quantize="int8", max_drop=1.0, overwrite=True).quantization
        ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
        assert ("MatMulInteger" in ops) == int8_head and ("MatMul" in ops) != int8_head
        assert q["quantized_ops"] == ({"MatMul": 1} if int8_head else {})
        assert ("MatMul" in q["weight_only_ops"]) != int8_head and q["invariance"]["ok"]
        assert q["operators"] == (["Abs", "Cast", "Clip", "Div", "MatMulInteger", "Max", "Mul", "ReduceMax", "Round"]
                                  if int8_head else ["Cast", "Mul"])
    assert 40 * n_out + 1 == quantize.HEAD_COMPUTE_INT8
    monkeypatch.undo()
    assert quantize.HEAD_COMPUTE_INT8 == 1 << 18  # by default a tiny model's head is folded, not int8-computed


@pytest.mark.parametrize("cell", CELLS)
def test_int4_is_smaller_than_int8_and_reports_what_it_needs(files, cell):
    fp32, _ = files("lm", cell, None)
    int8, _ = files("lm", cell, "int8")
    int4, report = files("lm", cell, "int4")
    assert int4.stat().st_size < int8.stat().st_size < fp32.stat().st_size
    q = report.quantization
    assert q["mode"] == "int4" and q["batch_invariant"] is True
    assert q["operators"] == ["Cast", "Mul", "com.microsoft.GatherBlockQuantized", "com.microsoft.MatMulNBits"]
    assert q["min_onnxruntime"] == "1.22" and q["quantized_ops"] == {"Gather": 1, "MatMul": 1}
    assert q["weight_only_ops"] == {cell.upper(): 2}
    ops = {n.op_type: n for n in onnx.load(str(int4)).graph.node}
    head = ops["MatMulNBits"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in head.attribute}
    assert attrs == {"K": 40, "N": report.spec.n_out, "bits": 4, "block_size": 32, "accuracy_level": 4}
    # the scheme's loss is larger than int8's, and stated
    assert q["vs_fp32"]["max_abs_diff"] > files("lm", cell, "int8")[1].quantization["vs_fp32"]["max_abs_diff"]


@pytest.mark.parametrize(("embed", "block"), [(64, 64), (96, 32)])
def test_int4_embeddings_use_blocks_of_64_where_they_divide_the_width(tmp_path, embed, block):
    ckpt = tiny_checkpoint(tmp_path / "run", task="lm", cell="gru", hidden=40, embed=embed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = export_onnx(ckpt, tmp_path / "m.onnx", quantize="int4", max_drop=1.0).quantization
    node = next(n for n in onnx.load(str(tmp_path / "m.onnx")).graph.node if n.op_type == "GatherBlockQuantized")
    assert {a.name: a.i for a in node.attribute}["block_size"] == block and q["invariance"]["ok"]
    assert f"int4 embedding (GatherBlockQuantized, blocks of {block})" in q["method"]


def test_int4_with_an_embedding_width_that_is_not_whole_blocks_keeps_an_int8_embedding(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "run", task="lm", cell="gru", hidden=40, embed=24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = export_onnx(ckpt, tmp_path / "m.onnx", quantize="int4", max_drop=1.0).quantization
    assert q["quantized_ops"] == {"MatMul": 1} and q["weight_only_ops"] == {"Gather": 1, "GRU": 1}
    assert "its width 24 is not a multiple of 32" in q["method"]
    assert "com.microsoft.GatherBlockQuantized" not in q["operators"] and q["invariance"]["ok"]
    load_model(tmp_path / "m.onnx").stream().feed("hello")


def test_int8_dynamic_is_reachable_by_name_warns_and_says_it_is_not_invariant(files, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "run", task="lm", cell="lstm", layers=2, hidden=64, embed=32)
    with pytest.warns(RnnkitWarning, match="int8-dynamic quantizes activations with one scale per call"):
        report = export_onnx(ckpt, tmp_path / "m.onnx", quantize="int8-dynamic", max_drop=1.0)
    q = report.quantization
    assert q["mode"] == "int8-dynamic" and q["batch_invariant"] is False
    assert "com.microsoft.DynamicQuantizeLSTM" in q["operators"] and "DynamicQuantizeLinear" in q["operators"]
    assert not q["invariance"]["ok"] and q["invariance"]["max_scaled_diff"] > INVARIANCE_TOL  # measured, by design
    model = load_model(tmp_path / "m.onnx")
    text = TEXTS[0] + TEXTS[1]
    alone = model.stream()
    ids = alone.take_ids(text, final=True)
    whole = alone.feed_ids(ids, every=True)
    stepped = model.stream()
    assert not close(whole, np.stack([stepped.step(i) for i in ids]))  # what the row-wise int8 fixes
    shown = CliRunner().invoke(cli, ["inspect", str(tmp_path / "m.onnx")]).stdout
    assert "               batch-invariant: no (answers depend on the batch and chunking)" in shown.splitlines()


def test_unknown_modes_are_refused_by_the_library_and_the_cli(ckpts, tmp_path):
    with pytest.raises(ConfigError, match="unknown quantization 'int2'; choose one of int8, int4, int8-dynamic"):
        export_onnx(ckpts["gru"], tmp_path / "m.onnx", quantize="int2")
    result = CliRunner().invoke(cli, ["export", str(ckpts["gru"]), "--out", str(tmp_path / "m.onnx"),
                                      "--quantize", "dynamic"])
    assert result.exit_code == 2 and "'int8', 'int4', 'int8-dynamic'" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_int8_files_written_before_it_was_row_wise_keep_loading(files, tmp_path):
    """Their metadata says mode int8 without batch_invariant: the dynamic scheme's operators."""
    path, report = files("lm", "lstm", "int8-dynamic")
    old = {k: v for k, v in report.quantization.items() if k in ("method", "quantized_ops", "not_quantized_ops",
                                                                 "weight_only_ops", "size_ratio", "max_abs_diff")}
    legacy = rewrite_metadata(path, tmp_path / "legacy.onnx", quantization=json.dumps({"mode": "int8", **old}))
    model = load_model(legacy)
    assert model.metadata.quantization.get("batch_invariant") is None
    assert model.stream().feed("hello") is not None
    shown = CliRunner().invoke(cli, ["inspect", str(legacy)])
    assert shown.exit_code == 0 and "batch-invariant: no" in shown.stdout
    # the same graph may not claim to be row-wise
    claim = rewrite_metadata(path, tmp_path / "claim.onnx",
                             quantization=json.dumps({"mode": "int8", "batch_invariant": True}))
    with pytest.raises(ModelFileError, match=r"uses operator \w*[Qq]uantize\w*, which .* for quantization 'int8'"):
        load_model(claim)


@pytest.mark.parametrize(("installed", "refused"), [("1.21.1", True), ("1.22.0", False), ("1.22.0.dev20250101", False),
                                                    ("1.9.0", True), ("2.0", False), ("1.23.0+cu121", False)])
def test_a_file_needing_a_newer_onnxruntime_is_refused_by_version(installed, refused, tmp_path):
    q = {"mode": "int4", "operators": ["com.microsoft.MatMulNBits"], "min_onnxruntime": "1.22"}
    if refused:
        with pytest.raises(ModelFileError, match=rf"needs onnxruntime ≥ 1\.22 for com\.microsoft\.MatMulNBits; "
                                                 rf"this one is {installed}: upgrade it"):
            check_onnxruntime_version(q, tmp_path / "m.onnx", installed)
    else:
        check_onnxruntime_version(q, tmp_path / "m.onnx", installed)
    check_onnxruntime_version({"mode": "int8"}, tmp_path / "m.onnx", "1.17.0")  # files before: no minimum


def test_the_loader_applies_the_minimum_version(files, monkeypatch):
    import onnxruntime

    int4, _ = files("lm", "gru", "int4")
    int8, _ = files("lm", "gru", "int8")
    monkeypatch.setattr(onnxruntime, "__version__", "1.17.3")
    with pytest.raises(ModelFileError, match=r"needs onnxruntime ≥ 1\.22"):
        load_model(int4)
    assert load_model(int8).metadata.quantization["min_onnxruntime"] == "1.17"
    result = CliRunner().invoke(cli, ["inspect", str(int4)])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "needs onnxruntime ≥ 1.22" in result.stderr


def test_a_file_that_is_not_invariant_is_refused_unless_its_mode_allows_it(ckpts, tmp_path, monkeypatch):
    real = exporter.invariance

    def moved(path, texts, **kw):
        return {**real(path, texts, **kw), "max_scaled_diff": 3e-4, "worst": "text 0 (9 tokens) alone vs batched",
                "ok": False}

    monkeypatch.setattr(exporter, "invariance", moved)
    out = tmp_path / "m.onnx"
    for mode in MODES:
        moved_by = rf"{mode}: a text's answers moved by 3\.00e-04 \(relative\) between text 0 \(9 tokens\) alone vs"
        with pytest.raises(QuantizationError, match=moved_by + r" batched.*nothing was written"):
            export_onnx(ckpts["gru"], out, quantize=mode, max_drop=1.0)
        assert not out.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = export_onnx(ckpts["gru"], out, quantize="int8-dynamic", max_drop=1.0)
    assert report.quantization["invariance"]["ok"] is False and out.exists()


def test_int4_refused_by_max_drop_says_how_to_accept_it(ckpts, tmp_path, monkeypatch):
    def metric(path, ckpt, tokenizer, vocab):
        return "accuracy", (0.80 if "int4" in path.name else 0.90), True

    monkeypatch.setattr(exporter, "onnx_metric", metric)
    out = tmp_path / "m.onnx"
    with pytest.raises(QuantizationError) as info:
        export_onnx(ckpts["lstm"], out, quantize="int4")
    message = str(info.value)
    assert message.startswith("int4 lowers validation accuracy from 0.9000 to 0.8000 (11.11% > --max-drop 1.00%)")
    assert "use --quantize int8, or accept the loss with --max-drop 0.12" in message and not out.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = export_onnx(ckpts["lstm"], out, quantize="int4", max_drop=0.12)
    assert report.quantization["metric"]["quantized"] == 0.8


@pytest.mark.parametrize("installed", ["1.22.0rc1", "1.21.9rc12", "1.22"])
def test_pre_releases_count_as_their_release(installed, tmp_path):
    q = {"mode": "int4", "min_onnxruntime": "1.22.1"}
    with pytest.raises(ModelFileError, match=r"needs onnxruntime ≥ 1\.22\.1"):
        check_onnxruntime_version(q, tmp_path / "m.onnx", installed)
    check_onnxruntime_version({"mode": "int4", "min_onnxruntime": "1.22"}, tmp_path / "m.onnx", "1.22.0")


def test_what_the_graph_needs_counts_when_the_metadata_does_not_say(files, tmp_path, monkeypatch):
    import onnxruntime

    int4, report = files("lm", "gru", "int4")
    silent = {k: v for k, v in report.quantization.items() if k not in ("min_onnxruntime", "operators")}
    quiet = rewrite_metadata(int4, tmp_path / "quiet.onnx", quantization=json.dumps(silent))
    monkeypatch.setattr(onnxruntime, "__version__", "1.21.1")
    with pytest.raises(ModelFileError, match=r"needs onnxruntime ≥ 1\.22 for its operators; this one is 1\.21\.1"):
        load_model(quiet)


@pytest.mark.parametrize("mode", MODES)
def test_a_file_written_at_opset_18_takes_reducemax_axes_as_an_input(tmp_path, mode, monkeypatch):
    monkeypatch.setattr(quantize, "HEAD_COMPUTE_INT8", 0)
    ckpt = tiny_checkpoint(tmp_path / "run", task="lm", cell="lstm", hidden=40, embed=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = export_onnx(ckpt, tmp_path / "m.onnx", quantize=mode, opset=18, max_drop=1.0).quantization
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert {o.domain: o.version for o in model.opset_import}[""] == 18 and q["invariance"]["ok"]
    if mode == "int8":
        reduce = next(n for n in model.graph.node if n.op_type == "ReduceMax")
        assert len(reduce.input) == 2 and not [a for a in reduce.attribute if a.name == "axes"]
    assert load_model(tmp_path / "m.onnx").stream().feed("hello") is not None


def _edit_head(path, out, edit):
    model = onnx.load(str(path))
    edit(model.graph)
    out.write_bytes(model.SerializeToString())
    return out


def test_a_scale_shared_across_the_batch_is_refused_though_the_file_claims_invariance(files, tmp_path):
    """Transposing the batch last and reducing over it would mix rows: the reduced axis must be fixed."""
    from onnx import helper

    path, _ = files("lm", "gru", "int8")

    def batch_last(graph):
        nodes = list(graph.node)
        reduce = next(n for n in nodes if n.op_type == "ReduceMax")
        at = nodes.index(reduce)
        source = reduce.input[0]  # (B, T, hidden)
        graph.node.insert(at, helper.make_node("Transpose", [source], ["moved"], perm=[1, 2, 0]))  # (T, hidden, B)
        reduce.input[0] = "moved"
        del reduce.attribute[:]
        reduce.attribute.extend([helper.make_attribute("axes", [-1]), helper.make_attribute("keepdims", 1)])

    hostile = _edit_head(path, tmp_path / "mixed.onnx", batch_last)
    with pytest.raises(ModelFileError, match=r"ReduceMax over axes \[-1\] .* not over its last axis alone, of a "
                                             r"fixed size"):
        load_model(hostile)


@pytest.mark.parametrize("edit", ["no inputs", "extra output", "clip bound computed"])
def test_malformed_quantized_nodes_are_refused_not_crashed_on(files, tmp_path, edit):
    path, _ = files("lm", "gru", "int8")

    def change(graph):
        nodes = list(graph.node)
        if edit == "no inputs":
            node = next(n for n in nodes if n.op_type == "Round")
            del node.input[:]
        elif edit == "extra output":
            node = next(n for n in nodes if n.op_type == "Abs")
            node.output.append("spare")
        else:
            node = next(n for n in nodes if n.op_type == "Clip")
            node.input[1] = next(n for n in nodes if n.op_type == "Div").output[0]  # the row scale: (B, T, 1)

    hostile = _edit_head(path, tmp_path / "bad.onnx", change)
    with pytest.raises((ModelFileError, MetadataError)) as info:
        load_model(hostile)
    assert "\n" not in str(info.value) and "refused" in str(info.value)


def test_the_oldest_onnxruntime_is_the_one_the_package_promises():
    import re
    from pathlib import Path

    from rnnkit.runtime.graphcheck import OLDEST_ONNXRUNTIME

    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"onnxruntime>=([0-9.]+)"', pyproject).group(1) == OLDEST_ONNXRUNTIME
