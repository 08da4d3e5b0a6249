"""Issue 4, the gates: parity, overwrite, int8. A file appears only when every check passed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402
from factory import tiny_checkpoint  # noqa: E402

import rnnkit.export.exporter as exporter  # noqa: E402
import rnnkit.export.parity as parity  # noqa: E402
import rnnkit.export.quantize as quantize  # noqa: E402
from rnnkit.export import check_parity, export_onnx  # noqa: E402
from rnnkit.export.quantize import onnx_metric  # noqa: E402
from rnnkit.runtime import load_model  # noqa: E402
from rnnkit.runtime.cli import cli  # noqa: E402
from rnnkit.runtime.contract import ModelSpec  # noqa: E402
from rnnkit.runtime.errors import ParityError, QuantizationError, RnnkitWarning, WriteError  # noqa: E402
from rnnkit.train.batches import encode_split, tokenize_examples  # noqa: E402
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from rnnkit.train.evaluate import evaluate  # noqa: E402


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("gates")
    return {
        "lstm": tiny_checkpoint(root / "lstm", task="classify", cell="lstm", layers=2),
        "gru": tiny_checkpoint(root / "gru", task="lm", cell="gru"),
    }


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def export(*args):
    return CliRunner().invoke(cli, ["export", *map(str, args)])


# -- the parity gate -------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_an_impossible_atol_lists_every_mismatch_and_writes_nothing(ckpts, tmp_path, cell, monkeypatch):
    # without the float64 judge, which accepts a file as near the exact answer as torch (test_parity_float64)
    monkeypatch.setattr(parity, "FLOAT64_FACTOR", 0.0)
    out = tmp_path / "model.onnx"
    with pytest.raises(ParityError) as info:
        export_onnx(ckpts[cell], out, atol=1e-12)
    mismatches = info.value.mismatches
    config = torch.load(ckpts[cell], weights_only=True)["model_config"]
    outputs = ["logits", "hn", "cn"] if cell == "lstm" else ["logits", "hn"]
    assert {m["output"] for m in mismatches} == set(outputs)
    cases = {m["case"] for m in mismatches}
    assert any(c.startswith("stream") for c in cases) and any(c.startswith("real") for c in cases)
    assert len(cases) >= 5
    for m in mismatches:
        assert {"case", "output", "shape", "max_abs_diff"} <= set(m)
        assert 1e-12 < m["max_abs_diff"] < 1e-4  # a real, small float difference, not a broken graph
        if m["output"] == "logits":
            assert m["shape"][2] == config["n_out"]
        else:
            assert (m["shape"][0], m["shape"][2]) == (config["layers"], config["hidden"])
    assert "nothing was written" in str(info.value)
    assert listing(tmp_path) == []


def test_a_failed_gate_leaves_the_good_model_at_the_target_byte_identical(ckpts, tmp_path):
    out = tmp_path / "model.onnx"
    export_onnx(ckpts["lstm"], out)
    before, mtime = out.read_bytes(), out.stat().st_mtime_ns
    with pytest.raises(ParityError):
        export_onnx(ckpts["lstm"], out, atol=1e-12, overwrite=True)
    assert out.read_bytes() == before and out.stat().st_mtime_ns == mtime
    assert listing(tmp_path) == ["model.onnx"]
    result = export(ckpts["lstm"], "--out", out, "--atol", "1e-12", "--force")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ONNX and torch disagree") and len(result.stderr.splitlines()) == 1
    assert out.read_bytes() == before


def test_the_gate_collects_every_mismatch_before_raising(ckpts, tmp_path, monkeypatch):
    out = tmp_path / "model.onnx"
    export_onnx(ckpts["lstm"], out)
    model, _, _ = model_from_checkpoint(load_checkpoint(ckpts["lstm"]))
    monkeypatch.setattr(parity, "FLOAT64_FACTOR", 0.0)  # atol alone decides
    full = check_parity(model, out, atol=1e-12, raise_on_mismatch=False)
    assert len(full.cases) == 3 * (5 + 1 + 1)  # (logits, hn, cn) × (5 shapes + every token + streaming)
    with pytest.raises(ParityError) as info:
        check_parity(model, out, atol=1e-12)
    assert info.value.mismatches == [c for c in full.cases if c["max_abs_diff"] > 1e-12]
    assert len(info.value.mismatches) >= len(full.cases) - 3
    assert f"in {len(info.value.mismatches)} of {len(full.cases)} comparisons" in str(info.value)


def test_the_gate_catches_a_graph_that_computes_something_else(ckpts, tmp_path):
    out = tmp_path / "model.onnx"
    export_onnx(ckpts["gru"], out)
    model, _, _ = model_from_checkpoint(load_checkpoint(ckpts["gru"]))
    with torch.no_grad():
        model.rnn.bias_hh_l0[: model.config.hidden] += 0.05  # the reset gate: GRU's linear_before_reset trap
    with pytest.raises(ParityError) as info:
        check_parity(model, out)
    assert {m["output"] for m in info.value.mismatches} == {"logits", "hn"}
    assert min(m["max_abs_diff"] for m in info.value.mismatches) > 1e-4


def test_skip_parity_exports_and_warns(ckpts, tmp_path):
    out = tmp_path / "model.onnx"
    with pytest.warns(RnnkitWarning, match="not compared with torch"):
        report = export_onnx(ckpts["gru"], out, skip_parity=True)
    assert report.parity is None
    assert load_model(out).task == "lm"
    result = export(ckpts["gru"], "--out", tmp_path / "cli.onnx", "--skip-parity")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Warning: --skip-parity: this model was not compared with torch\n"
    assert result.stdout.startswith(f"wrote {tmp_path / 'cli.onnx'}") and "parity:" not in result.stdout


def test_an_existing_target_needs_overwrite(ckpts, tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"someone's file")
    with pytest.raises(WriteError, match="already exists"):
        export_onnx(ckpts["gru"], out)
    assert out.read_bytes() == b"someone's file"
    result = export(ckpts["gru"], "--out", out)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: {out} already exists; pass --force to replace it\n"
    assert out.read_bytes() == b"someone's file"
    assert listing(tmp_path) == ["model.onnx"]
    result = export(ckpts["gru"], "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert load_model(out).task == "lm"
    assert "parity: 16 comparisons" in result.stdout  # 5 shapes + every token + real texts + stream, × (logits, hn)


# -- int8 ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    """cell → (fp32 path, int8 path, int8 report, checkpoint path), at sizes where weights dominate."""
    out = {}
    for cell, task in (("lstm", "classify"), ("gru", "lm")):
        folder = tmp_path_factory.mktemp(f"int8-{cell}")
        ckpt = tiny_checkpoint(folder, task=task, cell=cell, layers=2, hidden=48, embed=24)
        export_onnx(ckpt, folder / "fp32.onnx")
        with pytest.MonkeyPatch.context() as patch:  # tiny heads: int8 products where a large one has them
            patch.setattr(quantize, "HEAD_COMPUTE_INT8", 0)
            report = export_onnx(ckpt, folder / "int8.onnx", quantize="int8")
        out[cell] = folder / "fp32.onnx", folder / "int8.onnx", report, ckpt
    return out


ROWWISE = ["Abs", "Cast", "Clip", "Div", "MatMulInteger", "Max", "Mul", "ReduceMax", "Round"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_quantizes_the_head_row_by_row_and_stores_every_weight_int8(int8, cell):
    _, path, report, _ = int8[cell]
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count(cell.upper()) == 2 and "MatMul" not in ops  # the cells run as fp32 kernels
    assert not {"DynamicQuantizeLinear", "DynamicQuantizeLSTM", "DequantizeLinear"} & set(ops)
    q = report.quantization
    assert q["batch_invariant"] is True and q["operators"] == ROWWISE and q["min_onnxruntime"] == "1.17"
    assert q["quantized_ops"] == {"MatMul": 1}
    assert q["weight_only_ops"] == {"Gather": 1, cell.upper(): 2} and q["not_quantized_ops"] == {}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    head = next(n for n in graph.node if n.op_type == "MatMulInteger")
    weight, zero_point = inits[head.input[1]], inits[head.input[2]]
    assert weight.dtype == np.int8 and np.abs(weight).max() == 63  # ±63: no int16 overflow in u8 × s8 kernels
    assert zero_point.dtype == np.uint8 and zero_point == 128
    matrices = [name for name, v in inits.items() if v.dtype == np.float32 and v.ndim >= 2 and min(v.shape[-2:]) > 1]
    assert matrices == []  # embedding, cells and head are all stored int8 (biases stay fp32)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_cell_and_embedding_weights_are_within_half_a_step_and_onnxruntime_folds_them(int8, cell, tmp_path):
    fp32, path, _, _ = int8[cell]
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}
    reference = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(fp32)).graph.initializer}
    folded = [name for node in graph.node if node.op_type == cell.upper() for name in node.input[1:3]]
    folded.append(next(n for n in graph.node if n.op_type == "Gather").input[0])
    assert len(folded) == 5
    for name in folded:
        assert name not in inits  # no fp32 copy left in the file
        mul = made_by[name]
        cast = made_by[mul.input[0]]
        assert (mul.op_type, cast.op_type) == ("Mul", "Cast")
        q = onnx.numpy_helper.to_array(inits[cast.input[0]])
        scale = onnx.numpy_helper.to_array(inits[mul.input[1]])
        w = reference[name]  # the exporter keeps initializer names; int8 is within half a step of every weight
        assert q.dtype == np.int8 and q.shape == w.shape and np.all(np.abs(q * scale - w) <= scale / 2 + 1e-7)
        assert scale.size == (w.shape[0] if w.ndim == 2 else w.shape[1])  # one scale per row
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "folded.onnx")
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    after = onnx.load(str(tmp_path / "folded.onnx")).graph
    constants = {i.name: i.data_type for i in after.initializer}
    cells = [node for node in after.node if node.op_type == cell.upper()]
    assert len(cells) == 2  # each cell reads fp32 constants again: nothing is dequantized per call
    assert all(constants.get(name) == onnx.TensorProto.FLOAT for node in cells for name in node.input[1:3])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_is_smaller_loads_and_describes_itself(int8, cell):
    fp32, path, report, _ = int8[cell]
    ratio = path.stat().st_size / fp32.stat().st_size
    assert ratio < 0.5
    assert report.quantization["size_ratio"] == pytest.approx(ratio, abs=0.001)
    model = load_model(path)
    q = model.metadata.quantization
    assert q == report.quantization
    assert q["mode"] == "int8" and "one activation scale per row" in q["method"]
    assert q == ModelSpec.from_metadata({p.key: p.value for p in onnx.load(str(path)).metadata_props}).quantization
    assert model.metadata.vocab.tokens == load_model(fp32).metadata.vocab.tokens
    assert q["invariance"]["ok"] and q["invariance"]["max_scaled_diff"] <= 1e-6 and q["invariance"]["cases"] >= 8
    assert 0.5 < q["vs_fp32"]["top1_agreement"] <= 1 and 0 < q["vs_fp32"]["max_abs_diff"] < 0.1
    assert q["vs_fp32"]["what"] == ("label" if cell == "lstm" else "next token")
    assert q["step_ratio"] > 0
    shown = CliRunner().invoke(cli, ["inspect", str(path)])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert "quantization:  int8; computed quantized: MatMul ×1" in lines
    assert set(q["weight_only_ops"].items()) == {("Gather", 1), (cell.upper(), 2)}
    stored = ", ".join(f"{op} ×{n}" for op, n in q["weight_only_ops"].items())
    assert f"               weights stored int8, computed fp32: {stored}" in lines
    assert "               batch-invariant: yes (a text's answers do not depend on its batch or chunking)" in lines
    assert f"               operators: {', '.join(ROWWISE)} (onnxruntime ≥ 1.17)" in lines
    assert json.loads(CliRunner().invoke(cli, ["inspect", str(path), "--json"]).stdout)["quantization"] == q


def test_export_prints_nothing_and_leaves_torch_random_state_alone(ckpts, tmp_path, capfd):
    capfd.readouterr()
    rng = torch.get_rng_state()
    export_onnx(ckpts["lstm"], tmp_path / "a.onnx")
    export_onnx(ckpts["gru"], tmp_path / "b.onnx", quantize="int8")
    assert capfd.readouterr() == ("", "")
    assert torch.equal(torch.get_rng_state(), rng)  # a training script's seeded run is not shifted


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_stays_within_the_tolerance_it_reports(int8, cell):
    _, path, report, ckpt = int8[cell]
    q = report.quantization
    assert 0 < q["max_abs_diff"] <= q["atol"] < 0.1  # int8 changed the numbers, a little
    model, _, _ = model_from_checkpoint(load_checkpoint(ckpt))
    fresh = [check_parity(model, path, atol=q["atol"], seed=seed, shapes=((1, 1), (3, 17), (4, 64), (2, 300), (8, 40)))
             for seed in range(100, 110)]  # raises ParityError beyond the tolerance
    assert max(r.max_abs_diff for r in fresh) > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_onnx_metric_of_the_fp32_file_is_the_torch_metric(int8, cell):
    fp32, _, report, ckpt_path = int8[cell]
    ckpt = load_checkpoint(ckpt_path)
    model, tokenizer, vocab = model_from_checkpoint(ckpt)
    name, value, higher = onnx_metric(fp32, ckpt, tokenizer, vocab)
    task = ckpt["task"]
    examples = ckpt["valid_sample"] if task == "lm" else [tuple(e) for e in ckpt["valid_sample"]]
    data, _ = encode_split(tokenize_examples(examples, task, tokenizer), task, vocab, ckpt["labels"],
                           batch_size=1, bptt=256, max_len=64)
    expected = evaluate(model, data, task, labels=list(ckpt["labels"]))[name]
    assert value == pytest.approx(expected, rel=1e-5)
    assert (name, higher) == (("perplexity", False) if task == "lm" else ("accuracy", True))
    m = report.quantization["metric"]
    assert m["name"] == name and m["fp32"] == pytest.approx(value, rel=1e-9)
    assert m["relative_drop"] == pytest.approx(((m["quantized"] - m["fp32"]) if task == "lm" else
                                               (m["fp32"] - m["quantized"])) / m["fp32"])


def fake_metric(fp32_value: float, int8_value: float, name="accuracy", higher=True):
    def metric(path, ckpt, tokenizer, vocab):
        return name, (int8_value if "int8" in path.name else fp32_value), higher

    return metric


@pytest.mark.parametrize(("fp32", "int8_value", "name", "higher"), [
    (0.90, 0.80, "accuracy", True),
    (10.0, 10.5, "perplexity", False),
])
def test_int8_is_refused_when_the_metric_drops_too_far(ckpts, tmp_path, monkeypatch, fp32, int8_value, name, higher):
    monkeypatch.setattr(exporter, "onnx_metric", fake_metric(fp32, int8_value, name, higher))
    out = tmp_path / "model.onnx"
    with pytest.raises(QuantizationError, match=rf"int8 lowers validation {name}.*--max-drop") as info:
        export_onnx(ckpts["lstm"], out, quantize="int8", max_drop=0.02)
    assert "nothing was written" in str(info.value) and "\n" not in str(info.value)
    assert listing(tmp_path) == []
    result = export(ckpts["lstm"], "--out", out, "--quantize", "int8", "--max-drop", "0.02")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: int8 lowers validation {name}") and len(result.stderr.splitlines()) == 1
    assert listing(tmp_path) == []
    drop = export_onnx(ckpts["lstm"], out, quantize="int8", max_drop=0.2).quantization["metric"]["relative_drop"]
    assert drop == pytest.approx(abs(fp32 - int8_value) / fp32)


def test_a_zero_fp32_metric_is_not_a_division_by_zero(ckpts, tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "onnx_metric", fake_metric(0.0, 0.0))
    report = export_onnx(ckpts["lstm"], tmp_path / "model.onnx", quantize="int8", max_drop=0.0)
    assert report.quantization["metric"]["relative_drop"] == 0.0
    monkeypatch.setattr(exporter, "onnx_metric", fake_metric(0.0, 0.5, "perplexity", False))
    with pytest.raises(QuantizationError):
        export_onnx(ckpts["lstm"], tmp_path / "other.onnx", quantize="int8", max_drop=0.1)


def test_int8_without_a_validation_sample_warns_that_the_metric_is_unknown(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "run", cell="lstm")
    payload = torch.load(ckpt, weights_only=True)
    del payload["valid_sample"]
    torch.save(payload, ckpt)
    with pytest.warns(RnnkitWarning, match="no validation sample"):
        report = export_onnx(ckpt, tmp_path / "model.onnx", quantize="int8")
    assert "metric" not in report.quantization and report.quantization["mode"] == "int8"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_cli_says_what_int8_did(int8, tmp_path, cell):
    *_, ckpt = int8[cell]
    result = export(ckpt, "--out", tmp_path / "m.onnx", "--quantize", "int8")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'm.onnx'}") and f"{cell} × 2" in lines[0]
    assert lines[1].startswith("parity: ")
    # by default these tiny heads are stored int8 and computed in fp32 (see HEAD_COMPUTE_INT8)
    assert lines[2].startswith("int8: no layer computes quantized; size ×0.") and "; step ×" in lines[2]
    assert "max |Δ| vs torch" in lines[2] and "tolerance" in lines[2]
    assert lines[3] == f"int8: weights stored int8, computed in fp32: Gather, {cell.upper()}, MatMul"
    what = "label" if cell == "lstm" else "next token"
    assert lines[4].startswith("int8: vs fp32 max |Δ| ") and f"top-1 {what} agreement " in lines[4]
    assert lines[5].startswith("int8: alone == batched == chunked: yes (max |Δ| ")
    metric = "accuracy" if cell == "lstm" else "perplexity"
    assert lines[6].startswith(f"int8: validation {metric} ") and len(lines) == 7
    report = json.loads(export(ckpt, "--out", tmp_path / "m.onnx", "--quantize", "int8", "--force", "--json").stdout)
    assert report["quantization"]["mode"] == "int8" and report["parity"]["mismatches"] == []


def test_quantized_export_prints_nothing_and_leaves_the_hosts_logging_alone(ckpts, tmp_path, fresh_python):
    """onnxruntime's quantizer (int8-dynamic) logs through the root logger, which installs a stderr handler."""
    out = tmp_path / "m.onnx"
    done = fresh_python(f"""
        import logging, warnings
        from rnnkit.export import export_onnx
        export_onnx({str(ckpts['lstm'])!r}, {str(out)!r}, quantize="int8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            export_onnx({str(ckpts['lstm'])!r}, {str(out)!r}, quantize="int8-dynamic", overwrite=True)
        assert [str(w.message).split(":")[0] for w in caught] == ["int8-dynamic quantizes activations with one "
                                                                  "scale per call"], caught
        assert logging.getLogger().handlers == [], logging.getLogger().handlers
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    cli_run = fresh_python(f"""
        from rnnkit.runtime.cli import main
        main(["export", {str(ckpts['gru'])!r}, "--out", {str(out)!r}, "--quantize", "int8-dynamic", "--force"])
        """)
    assert cli_run.returncode == 0, cli_run.stderr
    assert cli_run.stderr.startswith("Warning: int8-dynamic quantizes activations with one scale per call: a text's")
    assert cli_run.stderr.count("\n") == 1 and "Traceback" not in cli_run.stdout
    lines = cli_run.stdout.splitlines()
    assert len(lines) == 8 and os.path.getsize(out) > 0
    assert lines[4] == "int8-dynamic: GRU computes in fp32: onnxruntime has no int8 kernel for it"
    assert lines[6].startswith("int8-dynamic: alone == batched == chunked: no, by design (max |Δ| ")


def test_int8_that_makes_the_file_larger_says_so(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "run", task="classify", cell="rnn", hidden=8, embed=4)  # weights ≪ overhead
    with pytest.warns(RnnkitWarning, match=r"int8 did not make the file smaller \(×1\.\d\d\): the layers are too"):
        report = export_onnx(ckpt, tmp_path / "model.onnx", quantize="int8")
    assert report.quantization["size_ratio"] >= 1
    assert report.quantization["weight_only_ops"] == {"Gather": 1, "RNN": 1, "MatMul": 1}


def gru_graph(path, *, w_is_input=False, zero_row=False):
    """A bare one-GRU graph (X → Y) with W and R as initializers."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 12, 3)).astype(np.float32)  # (directions, 3 × hidden, inputs)
    r = rng.normal(size=(1, 12, 4)).astype(np.float32)
    if zero_row:
        w[0, 5] = 0
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", 1, 3])]
    if w_is_input:
        inputs.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 12, 3]))
    graph = helper.make_graph(
        [helper.make_node("GRU", ["X", "W", "R"], ["Y"], hidden_size=4, linear_before_reset=1)], "g", inputs,
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["seq", 1, 1, 4])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return w, r


def test_cell_weights_int8_reproduce_each_row_and_keep_zero_rows(tmp_path):
    from rnnkit.export.quantize import store_cell_weights_int8

    path = tmp_path / "gru.onnx"
    w, _ = gru_graph(path, zero_row=True)
    x = np.random.default_rng(1).normal(size=(5, 1, 3)).astype(np.float32)
    before = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    assert store_cell_weights_int8(path) == {"GRU": 1}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    assert set(inits) == {"W.int8", "W.scale", "R.int8", "R.scale"}
    restored = inits["W.int8"] * inits["W.scale"]
    assert np.all(restored[0, 5] == 0) and np.all(np.abs(restored - w) <= inits["W.scale"] / 2 + 1e-7)
    after = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    assert 0 < np.abs(after - before).max() < 0.05


def test_cell_weights_a_caller_can_feed_stay_fp32(tmp_path):
    from rnnkit.export.quantize import store_cell_weights_int8

    path = tmp_path / "gru.onnx"
    gru_graph(path, w_is_input=True)  # W is an input with a default: replacing it would break the graph
    assert store_cell_weights_int8(path) == {"GRU": 1}  # R only
    inits = {i.name for i in onnx.load(str(path)).graph.initializer}
    assert inits == {"W", "R.int8", "R.scale"}
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
