"""Trace a trained model into the ONNX graph of the contract, and stamp its metadata.

The exporter is torch's TorchScript one (``dynamo=False``): with torch 2.13 the dynamo
exporter froze the sequence axis of GRU/LSTM graphs, while TorchScript emits native
``RNN``/``GRU``/``LSTM`` ops whose batch and sequence axes stay dynamic. The parity suite
(tests/test_export_parity.py) is what keeps this choice honest.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from rnnkit.runtime.contract import (
    INPUT_C0,
    INPUT_H0,
    INPUT_TOKENS,
    OUTPUT_CN,
    OUTPUT_HN,
    OUTPUT_LOGITS,
    ModelSpec,
    rnnkit_version,
)
from rnnkit.runtime.errors import CheckpointError, ExportError, MetadataError
from rnnkit.runtime.unicode import UNICODE_VERSION
from rnnkit.train.model import RNNModel

__all__ = ["DEFAULT_OPSET", "GraphModule", "max_opset", "spec_from_checkpoint", "stamp_metadata", "trace_to_onnx"]

DEFAULT_OPSET = 17
MIN_OPSET = 14
_EMBEDDING = "model.embedding.weight"


class GraphModule(nn.Module):
    """The model with the state as explicit tensors: (tokens, h0[, c0]) → (logits, hn[, cn])."""

    def __init__(self, model: RNNModel) -> None:
        super().__init__()
        self.model = model
        self.lstm = model.config.cell == "lstm"

    def forward(self, tokens: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None = None):
        state = (h0, c0) if self.lstm else h0  # (L, B, H)
        logits, state = self.model(tokens, state)  # (B, T, n_out)
        return (logits, *state) if self.lstm else (logits, state)


def trace_to_onnx(model: RNNModel, path: Path, *, opset: int = DEFAULT_OPSET) -> None:
    """Export ``model`` (eval mode) to ``path`` with dynamic batch and sequence axes."""
    top = max_opset()
    if not MIN_OPSET <= opset <= top:
        raise ExportError(f"opset {opset} is not supported; use {MIN_OPSET}..{top}")
    c = model.config
    lstm = c.cell == "lstm"
    graph = GraphModule(model.eval().cpu()).eval()
    # batch > 1 and seq > 1 in the example, so neither axis can be specialised to 1
    tokens = torch.randint(0, c.vocab_size, (3, 5), generator=torch.Generator().manual_seed(0))  # (B, T)
    h0 = torch.zeros(c.layers, 3, c.hidden)  # (L, B, H)
    args = (tokens, h0, torch.zeros_like(h0)) if lstm else (tokens, h0)
    inputs = [INPUT_TOKENS, INPUT_H0] + ([INPUT_C0] if lstm else [])
    outputs = [OUTPUT_LOGITS, OUTPUT_HN] + ([OUTPUT_CN] if lstm else [])
    seq_axes = {0: "batch", 1: "seq"}
    dynamic = {INPUT_TOKENS: seq_axes, OUTPUT_LOGITS: seq_axes}
    dynamic.update({name: {1: "batch"} for name in inputs[1:] + outputs[1:]})
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy and that RNN tracing converts
        # tensors to bools; neither applies to this fixed-shape-free graph (parity proves it).
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                graph, args, str(path), input_names=inputs, output_names=outputs,
                dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True,
            )
        except Exception as e:  # torch raises many types here; the message is what matters
            raise ExportError(f"torch.onnx.export failed: {str(e).splitlines()[0][:300]}") from e
    _unshare_initializers(path)


def _unshare_initializers(path: Path) -> None:
    """Give each weight its own initializer again: torch's exporter writes two of equal value once,
    the second as an Identity of the first, and a module without biases (``bias=False``) gives
    rnnkit's copy equal zero biases in every layer; rnnkit's graphs hold no Identity nodes."""
    model = onnx.load(str(path))
    graph = model.graph
    values = {t.name: t for t in graph.initializer}
    shared = [n for n in graph.node if n.op_type == "Identity" and n.input[0] in values]
    if not shared:
        return
    for node in shared:
        copy = onnx.TensorProto()
        copy.CopyFrom(values[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
        graph.node.remove(node)
    onnx.save(model, str(path))


def max_opset() -> int:
    """The highest opset that both onnx and torch's exporter know.

    onnx may know newer opsets than torch can write; torch then fails and dumps its whole IR
    graph to stderr, so the range is checked here first.
    """
    try:
        from torch.onnx._constants import ONNX_MAX_OPSET as torch_max
    except ImportError:  # a private module; every torch since 2.1 writes opset 20
        torch_max = 20
    return min(torch_max, onnx.defs.onnx_opset_version())


def spec_from_checkpoint(ckpt: dict[str, Any], *, quantization: dict | None = None) -> ModelSpec:
    """The metadata of the model in ``ckpt``, validated as a reader will validate it.

    Raises :class:`CheckpointError` when the checkpoint's vocabulary, labels or task do not
    describe its model (e.g. 3 labels for a 2-way output layer): no file could be right.
    """
    from rnnkit.runtime.vocab import Vocabulary

    mc = ckpt["model_config"]
    metrics = ckpt.get("metrics", {})
    spec = ModelSpec(
        task=ckpt["task"],
        cell=mc["cell"],
        layers=mc["layers"],
        hidden=mc["hidden"],
        embed=mc["embed"],
        tokenizer=ckpt["tokenizer"],
        vocab=Vocabulary(ckpt["vocab"]),
        labels=tuple(ckpt["labels"]) if ckpt["task"] != "lm" else (),
        tag_scheme=ckpt.get("tag_scheme", "none") if ckpt["task"] == "tag" else "none",
        lookahead=(ckpt.get("train_config", {}).get("lookahead") or 0) if ckpt["task"] == "tag" else 0,
        quantization=quantization or {"mode": "none"},
        activation=mc.get("activation", "tanh"),
        unicode=UNICODE_VERSION,
        provenance={
            "rnnkit": rnnkit_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": str(torch.__version__),
            "onnx": onnx.__version__,
            "trained_with": {"rnnkit": ckpt.get("rnnkit"), "torch": ckpt.get("torch"),
                             "created": ckpt.get("created")},
            "data": ckpt.get("data", {}).get("source"),
            "split": ckpt.get("split", {}),
        },
        metrics={k: v for k, v in metrics.items() if k in ("valid", "test", "best_epoch", "selected_on")},
    )
    what = "tokens in its vocabulary" if spec.task == "lm" else "labels"
    if spec.n_out != mc["n_out"]:
        raise CheckpointError(f"the checkpoint lists {spec.n_out} {what} but its model has {mc['n_out']} outputs; "
                              "it is damaged or was edited: restore it or retrain")
    try:
        spec.to_metadata()
    except MetadataError as e:
        raise CheckpointError(f"the checkpoint cannot describe its model: {e}; retrain it or fix that value") from e
    return spec


def stamp_metadata(path: Path, spec: ModelSpec) -> None:
    """Write ``spec`` into the file's ``metadata_props`` and check graph and metadata agree."""
    model = onnx.load(str(path))
    rows = next((int(init.dims[0]) for init in model.graph.initializer if init.name == _EMBEDDING), None)
    logits = next(o for o in model.graph.output if o.name == OUTPUT_LOGITS)
    n_out = logits.type.tensor_type.shape.dim[-1].dim_value or None
    try:
        spec.check_graph(n_out=n_out, layers=None, hidden=None, vocab_rows=rows)
        props = spec.to_metadata()
    except MetadataError as e:
        raise ExportError(f"the checkpoint is inconsistent: {e}") from e
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "rnnkit"
    model.producer_version = spec.provenance["rnnkit"]
    model.doc_string = (f"rnnkit {spec.task} model: {spec.cell} × {spec.layers}, hidden {spec.hidden}, "
                        f"{len(spec.vocab)} tokens" + (f", {len(spec.labels)} labels" if spec.labels else ""))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
