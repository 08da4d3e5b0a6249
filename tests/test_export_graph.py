"""Issue 4, graph shape: native recurrent ops, the contract's names, symbolic axes, one checked file."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from factory import tiny_checkpoint  # noqa: E402
from onnx import TensorProto  # noqa: E402
from onnx.external_data_helper import uses_external_data  # noqa: E402

from rnnkit.export import export_onnx  # noqa: E402
from rnnkit.runtime.contract import (  # noqa: E402
    INPUT_C0,
    INPUT_H0,
    INPUT_TOKENS,
    OUTPUT_CN,
    OUTPUT_HN,
    OUTPUT_LOGITS,
)

CELLS = ("rnn", "gru", "lstm")
LAYERS, HIDDEN = 2, 12


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """cell → (path, onnx.ModelProto, checkpoint model_config) of a 2-layer lm export."""
    out = {}
    for cell in CELLS:
        folder = tmp_path_factory.mktemp(cell)
        ckpt = tiny_checkpoint(folder / "run", task="lm", cell=cell, layers=LAYERS, hidden=HIDDEN)
        path = folder / "out" / "model.onnx"
        export_onnx(ckpt, path)
        config = torch.load(ckpt, weights_only=True)["model_config"]
        out[cell] = path, onnx.load(str(path)), config
    return out


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("cell", CELLS)
def test_the_recurrence_is_one_native_op_per_layer_not_an_unrolled_loop(graphs, cell):
    _, model, _ = graphs[cell]
    ops = [n.op_type for n in model.graph.node]
    native = cell.upper()
    assert ops.count(native) == LAYERS
    assert not {"Loop", "Scan", "If"} & set(ops)
    assert not {"RNN", "GRU", "LSTM"} - {native} & set(ops)
    for node in model.graph.node:
        if node.op_type == native:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["hidden_size"] == HIDDEN
            assert attrs.get("direction", b"forward") == b"forward"


def test_gru_nodes_reset_after_the_linear_map_as_torch_does(graphs):
    """onnxscript's GRU lowering without linear_before_reset=1 gives silently wrong numbers."""
    _, model, _ = graphs["gru"]
    grus = [n for n in model.graph.node if n.op_type == "GRU"]
    assert grus
    for node in grus:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs.get("linear_before_reset") == 1, node.name


@pytest.mark.parametrize("cell", CELLS)
def test_inputs_and_outputs_are_the_contract_with_symbolic_batch_and_seq(graphs, cell):
    _, model, config = graphs[cell]
    lstm = cell == "lstm"
    inputs = {i.name: i for i in model.graph.input}
    outputs = {o.name: o for o in model.graph.output}
    assert list(inputs) == [INPUT_TOKENS, INPUT_H0] + ([INPUT_C0] if lstm else [])
    assert list(outputs) == [OUTPUT_LOGITS, OUTPUT_HN] + ([OUTPUT_CN] if lstm else [])
    assert dims(inputs[INPUT_TOKENS]) == ["batch", "seq"]
    assert dims(outputs[OUTPUT_LOGITS]) == ["batch", "seq", config["vocab_size"]]
    for name in (*list(inputs)[1:], *list(outputs)[1:]):
        assert dims({**inputs, **outputs}[name]) == [LAYERS, "batch", HIDDEN], name
    assert inputs[INPUT_TOKENS].type.tensor_type.elem_type == TensorProto.INT64
    for v in [*list(inputs.values())[1:], *outputs.values()]:
        assert v.type.tensor_type.elem_type == TensorProto.FLOAT, v.name


@pytest.mark.parametrize("cell", CELLS)
def test_the_file_passes_the_full_checker_and_strict_shape_inference(graphs, cell):
    path, model, _ = graphs[cell]
    onnx.checker.check_model(model, full_check=True)
    onnx.checker.check_model(str(path), full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    out = {o.name: dims(o) for o in inferred.graph.output}
    assert out[OUTPUT_LOGITS][:2] == ["batch", "seq"]


@pytest.mark.parametrize("cell", CELLS)
def test_the_weights_are_inside_the_one_file(graphs, cell):
    path, model, _ = graphs[cell]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no .data, no temp left behind
    assert model.graph.initializer
    for tensor in model.graph.initializer:
        assert not uses_external_data(tensor), tensor.name
        assert tensor.data_location == TensorProto.DEFAULT
    stored = sum(np.prod(t.dims) for t in model.graph.initializer)
    params = sum(p.numel() for p in torch.load(path.parent.parent / "run" / "checkpoint.pt",
                                               weights_only=True)["model"].values())
    assert stored >= params


@pytest.mark.parametrize("cell", CELLS)
def test_onnxruntime_runs_every_batch_and_length_without_a_warning(graphs, cell, capfd):
    path, _, config = graphs[cell]
    capfd.readouterr()
    options = onnxruntime.SessionOptions()  # default log severity: warnings are printed
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    n_state = 2 if cell == "lstm" else 1
    for batch in (1, 2, 64):
        for seq in (1, 7, 1000):
            feed = {INPUT_TOKENS: rng.integers(0, config["vocab_size"], (batch, seq), dtype=np.int64)}
            for name in (INPUT_H0, INPUT_C0)[:n_state]:
                feed[name] = rng.standard_normal((LAYERS, batch, HIDDEN)).astype(np.float32)
            out = session.run(None, feed)
            assert out[0].shape == (batch, seq, config["vocab_size"])
            assert all(s.shape == (LAYERS, batch, HIDDEN) for s in out[1:])
            assert all(np.isfinite(o).all() for o in out)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""
