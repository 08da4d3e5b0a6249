"""Catalogue cases of format 3: language models framed without ``<bos>`` or ``<eos>`` (``rnnkit.framing``)
and the recurrence's nonlinearity (``rnnkit.activation``, an RNN node's ``activations``), E314–E319.

The helpers make the files: an lm exported by rnnkit whose metadata (and, without ``<eos>``, output
layer) is rewritten to look like what ``export_module`` writes for a module trained without them, and
a tiny relu RNN exported by rnnkit itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from catalogue import Case, Ctx
from factory import tiny_checkpoint
from onnx import helper, numpy_helper
from onnx_edits import rewrite_metadata

from rnnkit.export import export_onnx
from rnnkit.runtime import load_model

NEVER = -1e4  # the logit export_module gives a token the module never learned (<eos> without eos)


def framed_lm(src: Path, dst: Path, *, bos: bool, eos: bool, fmt: str = "3") -> Path:
    """A copy of the lm at ``src`` whose metadata says ``{"bos": bos, "eos": eos}`` in format ``fmt``.

    Without ``<eos>``, its output layer gives ``<eos>`` the constant logit −1e4 (weight column 0, bias
    −1e4), as a module without an ``<eos>`` row is exported.
    """
    rewrite_metadata(src, dst, format=fmt, framing=json.dumps({"bos": bos, "eos": eos}))
    if not eos:
        model = onnx.load(str(dst))
        head = next(n for n in model.graph.node if n.op_type == "MatMul")
        bias = next(n for n in model.graph.node if n.op_type == "Add" and n.output[0] == "logits")
        eos_id = 3
        for init in model.graph.initializer:
            values = numpy_helper.to_array(init).copy()
            if init.name == head.input[1]:  # (hidden, n_out)
                values[:, eos_id] = 0.0
            elif init.name in bias.input:  # (n_out,)
                values[eos_id] = NEVER
            else:
                continue
            init.CopyFrom(numpy_helper.from_array(values, init.name))
        onnx.save(model, str(dst))
    return Path(dst)


def relu_onnx(folder: Path, *, task: str = "lm", layers: int = 1, **kwargs) -> Path:
    """A tiny rnn model of ``nn.RNN(nonlinearity="relu")``, exported by rnnkit (its parity checked)."""
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = tiny_checkpoint(folder, task=task, cell="rnn", layers=layers, **kwargs)
    payload = torch.load(ckpt, weights_only=True)
    payload["model_config"] = {**payload["model_config"], "activation": "relu"}
    torch.save(payload, ckpt)
    out = folder / "model.onnx"
    export_onnx(ckpt, out, overwrite=True)
    return out


def with_recurrent_attribute(src: Path, dst: Path, name: str, value) -> Path:
    """A copy of ``src`` whose recurrent nodes carry attribute ``name`` = ``value`` (replacing any)."""
    model = onnx.load(str(src))
    for node in model.graph.node:
        if node.op_type in ("RNN", "GRU", "LSTM"):
            kept = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute(name, value)])
    onnx.save(model, str(dst))
    return Path(dst)


def no_bos(c: Ctx) -> Path:
    return c.once("nobos", lambda: framed_lm(c.lm, c.path("nobos.onnx"), bos=False, eos=False))


def relu(c: Ctx) -> Path:
    return c.once("relu", lambda: relu_onnx(c.path("relu")))


def relu_said_tanh(c: Ctx) -> Path:
    return c.once("relu-tanh", lambda: rewrite_metadata(relu(c), c.path("relu-said-tanh.onnx"), activation=None))


def sigmoid_rnn(c: Ctx) -> Path:
    return c.once("sigmoid", lambda: with_recurrent_attribute(relu(c), c.path("sigmoid.onnx"), "activations",
                                                              ["Sigmoid"]))


def one_token_docs(c: Ctx) -> Path:
    return c.file("one-token-docs.txt", "我\n好\n".encode())


def loads(path_of) -> Case:
    return Case(lambda c: load_model(path_of(c)), lambda c: ["inspect", path_of(c)])


CASES: dict[str, Case] = {
    "E314": loads(lambda c: c.once("framed-v2", lambda: framed_lm(c.lm, c.path("framed-v2.onnx"), bos=False,
                                                                  eos=True, fmt="2"))),
    "E315": Case(lambda c: load_model(no_bos(c)).evaluate(one_token_docs(c)),
                 lambda c: ["evaluate", no_bos(c), "--data", one_token_docs(c)]),
    "E316": loads(lambda c: c.once("gru-relu", lambda: rewrite_metadata(c.lm, c.path("gru-relu.onnx"),
                                                                        activation="relu"))),
    "E317": loads(relu_said_tanh),
    "E318": loads(sigmoid_rnn),
    "E319": Case(lambda c: load_model(no_bos(c)).generate(""), lambda c: ["generate", no_bos(c), "--prompt", ""]),
}
