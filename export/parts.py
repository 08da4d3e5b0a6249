"""Find the parts of a user's torch module by type: Embedding (or one-hot) → RNN | GRU | LSTM → Linear.

A module written the way tutorials write them holds an ``nn.Embedding`` (or feeds one-hot vectors
to an ``nn.RNN`` whose ``input_size`` is the vocabulary), one recurrent layer, an optional
``nn.Linear`` head and an optional ``nn.(Log)Softmax``. Anything else that computes — a second
recurrent layer, a cell stepped by a Python loop, attention, a normalisation, an activation
between the parts — cannot be written as rnnkit's graph, and is named in the error.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from rnnkit.runtime.errors import ModuleError

__all__ = ["SUPPORTED", "ModuleParts", "find_parts", "rnn_from_cell"]

SUPPORTED = ("nn.Embedding (or one-hot inputs) → one nn.RNN, nn.GRU or nn.LSTM (any num_layers, batch_first "
             "either way) → an optional nn.Linear → an optional nn.LogSoftmax or nn.Softmax")
_RECURRENT = {nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}
_CELLS = {nn.RNNCell: nn.RNN, nn.GRUCell: nn.GRU, nn.LSTMCell: nn.LSTM}
_NEUTRAL = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)  # nothing in eval mode
_ATTENTION = (nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder,
              nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


@dataclass(frozen=True)
class ModuleParts:
    """The layers found in a module, with their attribute paths (``"rnn"``, ``"encoder.fc"``)."""

    rnn: nn.RNNBase
    rnn_name: str
    embedding: nn.Embedding | None = None
    embedding_name: str | None = None
    head: nn.Linear | None = None
    head_name: str | None = None
    softmax: str | None = None  # "log_softmax", "softmax" or None: a module the forward may end with

    @property
    def cell(self) -> str:
        return _RECURRENT[type(self.rnn)]

    @property
    def activation(self) -> str:
        return getattr(self.rnn, "nonlinearity", "tanh")

    @property
    def inputs(self) -> int:
        """The width of what the RNN reads a step: the embedding's, or the one-hot vocabulary's."""
        return self.rnn.input_size

    @property
    def outputs(self) -> int:
        """The width of the module's output a step: the head's, or the RNN's hidden state."""
        return self.head.out_features if self.head is not None else self.rnn.hidden_size

    def describe(self) -> str:
        rnn = self.rnn
        parts = [f"{self.embedding_name} (Embedding {self.embedding.num_embeddings}×{self.embedding.embedding_dim})"
                 if self.embedding is not None else f"one-hot {rnn.input_size}",
                 f"{self.rnn_name} ({type(rnn).__name__} {rnn.input_size}→{rnn.hidden_size} × {rnn.num_layers}"
                 f"{', relu' if self.activation == 'relu' else ''}{', batch_first' if rnn.batch_first else ''})"]
        if self.head is not None:
            parts.append(f"{self.head_name} (Linear {self.head.in_features}→{self.head.out_features})")
        if self.softmax:
            parts.append(self.softmax.replace("_", " ").title().replace(" ", ""))
        return " → ".join(parts)


def find_parts(module: nn.Module) -> ModuleParts:
    """The Embedding, recurrent layer, head and softmax of ``module``; :class:`ModuleError` naming
    what was found when it is not Embedding/one-hot → RNN/GRU/LSTM → Linear → (Log)Softmax."""
    if not isinstance(module, nn.Module):
        raise ModuleError(f"expected a torch.nn.Module, got {type(module).__name__}; a factory must return the "
                          "model itself")
    found: dict[str, list[tuple[str, nn.Module]]] = {k: [] for k in
                                                     ("embedding", "rnn", "linear", "softmax", "cell", "other")}
    owned: set[int] = set()
    for name, m in module.named_modules():
        where = name or "the module itself"
        if isinstance(m, nn.Embedding):
            kind = "embedding"
        elif type(m) in _RECURRENT:
            kind = "rnn"
        elif isinstance(m, nn.Linear) and not isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear):
            kind = "linear"
        elif isinstance(m, (nn.LogSoftmax, nn.Softmax)):
            kind = "softmax"
        elif type(m) in _CELLS:
            kind = "cell"
        elif isinstance(m, _NEUTRAL):
            continue
        elif isinstance(m, _ATTENTION) or next(m.children(), None) is None:
            kind = "other"  # a leaf rnnkit has no place for: attention, a norm, a conv, an activation…
        else:
            continue  # a container (the module itself, Sequential, ModuleList…): its children are walked
        found[kind].append((where, m))
        owned.update(id(p) for p in m.parameters())
        if isinstance(m, _ATTENTION):
            break
    _refuse_what_cannot_map(module, found, owned)
    (rnn_name, rnn), = found["rnn"]
    embedding_name, embedding = found["embedding"][0] if found["embedding"] else (None, None)
    head_name, head = found["linear"][0] if found["linear"] else (None, None)
    softmax = None
    if found["softmax"]:
        softmax = "log_softmax" if isinstance(found["softmax"][0][1], nn.LogSoftmax) else "softmax"
    parts = ModuleParts(rnn, rnn_name, embedding, embedding_name, head, head_name, softmax)
    _check_fit(parts)
    return parts


def _refuse_what_cannot_map(module: nn.Module, found: dict, owned: set[int]) -> None:
    names = {k: ", ".join(f"{n!r} ({type(m).__name__})" for n, m in v) for k, v in found.items()}
    if found["cell"]:
        name, cell = found["cell"][0]
        equivalent = _CELLS[type(cell)].__name__
        raise ModuleError(f"found {names['cell']}: a cell the module steps through the text with its own Python loop, "
                          f"which rnnkit cannot trace into one graph; hand its weights to the equivalent one-layer "
                          f"nn.{equivalent} with rnnkit.export.rnn_from_cell(model.{name}) and call that over the "
                          "whole sequence (README, Export your own torch model)")
    attention = [(n, m) for n, m in found["other"] if isinstance(m, _ATTENTION)]
    if attention:
        raise ModuleError(f"found {type(attention[0][1]).__name__} {attention[0][0]!r}: attention reads the whole "
                          f"text at once, and rnnkit's streams read it token by token; rnnkit maps {SUPPORTED}")
    if not found["rnn"]:
        hand = _hand_written_recurrence(found)
        if hand:
            raise ModuleError(hand)
        raise ModuleError(f"found no nn.RNN, nn.GRU or nn.LSTM in {type(module).__name__}"
                          f"{' (it has ' + names['linear'] + ')' if found['linear'] else ''}; rnnkit maps {SUPPORTED}")
    if len(found["rnn"]) > 1:
        raise ModuleError(f"found {len(found['rnn'])} recurrent layers ({names['rnn']}); rnnkit maps one: stack layers "
                          "with num_layers of a single nn.RNN, nn.GRU or nn.LSTM")
    for kind, what in (("embedding", "embeddings"), ("linear", "nn.Linear layers"), ("softmax", "softmax layers")):
        if len(found[kind]) > 1:
            raise ModuleError(f"found {len(found[kind])} {what} ({names[kind]}); rnnkit maps at most one: {SUPPORTED}")
    if found["other"]:
        raise ModuleError(f"found {names['other']}, which has no place in rnnkit's graph; rnnkit maps {SUPPORTED}")
    loose = [n for n, p in module.named_parameters() if id(p) not in owned]
    if loose:
        raise ModuleError(f"parameter {loose[0]!r} belongs to no layer rnnkit maps (a learned initial state, a "
                          f"scale…); rnnkit maps {SUPPORTED}")


def _hand_written_recurrence(found: dict) -> str | None:
    """The message for a Linear over cat(x, h) used as the recurrence (a tutorial's first RNN), if it is one."""
    widths = [m.embedding_dim for _, m in found["embedding"]]
    for name, linear in found["linear"]:
        for width in widths:
            if linear.in_features == width + linear.out_features:
                return (f"{name!r} (Linear {linear.in_features}→{linear.out_features}) reads cat(x, h): a recurrence "
                        "written by hand, stepped by the module's own loop. With no activation it is linear "
                        "(h_t = W_x x_t + W_h h_t−1 + b): its state grows or fades geometrically with the text's "
                        "length, so rnnkit does not map it; write the recurrence as nn.RNN (tanh), which is the "
                        "same layer with an activation, and train that")
    return None


def _check_fit(parts: ModuleParts) -> None:
    rnn = parts.rnn
    if rnn.bidirectional:
        raise ModuleError(f"{parts.rnn_name!r} ({type(rnn).__name__}) is bidirectional: its backward direction reads "
                          "text that has not arrived yet, so it cannot stream; rnnkit maps forward recurrent layers")
    if getattr(rnn, "proj_size", 0):
        raise ModuleError(f"{parts.rnn_name!r} is an LSTM with proj_size={rnn.proj_size}, which ONNX's LSTM has no "
                          "place for; rnnkit maps LSTMs without projections")
    if parts.embedding is not None and parts.embedding.embedding_dim != rnn.input_size:
        raise ModuleError(f"{parts.embedding_name!r} gives vectors of {parts.embedding.embedding_dim} but "
                          f"{parts.rnn_name!r} reads {rnn.input_size}: the embedding does not feed the RNN")
    if parts.head is not None and parts.head.in_features != rnn.hidden_size:
        raise ModuleError(f"{parts.head_name!r} reads {parts.head.in_features} values but {parts.rnn_name!r} gives "
                          f"{rnn.hidden_size}: the Linear is not the RNN's output layer")


def rnn_from_cell(cell: nn.RNNCell | nn.GRUCell | nn.LSTMCell, *, batch_first: bool = True) -> nn.RNNBase:
    """The one-layer ``nn.RNN``/``nn.GRU``/``nn.LSTM`` that computes what ``cell`` stepped over a sequence does.

    Stepping a cell in a Python loop (``for x in xs: h = cell(x, h)``) cannot be traced into one
    graph with dynamic length; the equivalent layer holds the same weights (``weight_ih`` →
    ``weight_ih_l0``, …) and gives the same outputs in one call:

    >>> cell = nn.GRUCell(8, 16)
    >>> rnn = rnn_from_cell(cell)  # use it as self.rnn = rnn in a module the exporter can map
    """
    kind = _CELLS.get(type(cell))
    if kind is None:
        raise ModuleError(f"rnn_from_cell takes an nn.RNNCell, nn.GRUCell or nn.LSTMCell, got {type(cell).__name__}")
    extra = {"nonlinearity": cell.nonlinearity} if isinstance(cell, nn.RNNCell) else {}
    rnn = kind(cell.input_size, cell.hidden_size, num_layers=1, bias=cell.bias, batch_first=batch_first, **extra)
    state = {"weight_ih_l0": cell.weight_ih, "weight_hh_l0": cell.weight_hh}
    if cell.bias:
        state.update(bias_ih_l0=cell.bias_ih, bias_hh_l0=cell.bias_hh)
    rnn.load_state_dict({k: v.detach().clone() for k, v in state.items()})
    return rnn.to(cell.weight_ih.device, cell.weight_ih.dtype)
