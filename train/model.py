"""Embedding → RNN | GRU | LSTM (n layers) → Linear, batch first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from rnnkit.runtime.contract import ACTIVATIONS, CELLS
from rnnkit.runtime.errors import ConfigError

__all__ = ["ModelConfig", "RNNModel", "State"]

# The recurrent state: h (layers, B, H) for rnn/gru; (h, c) for lstm.
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass(frozen=True)
class ModelConfig:
    """The architecture. ``n_out`` is the vocabulary size for lm, the label count otherwise."""

    cell: str
    vocab_size: int
    n_out: int
    embed: int = 64
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.0
    tie_weights: bool = False
    activation: str = "tanh"  # rnn: tanh or relu (nn.RNN's nonlinearity); GRU and LSTM have fixed ones

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.activation not in ACTIVATIONS or (self.activation != "tanh" and self.cell != "rnn"):
            raise ConfigError(f"activation {self.activation!r} does not fit a {self.cell} cell: an rnn takes "
                              f"{' or '.join(ACTIVATIONS)}, a gru or lstm only tanh")
        for name in ("vocab_size", "n_out", "embed", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and (self.embed != self.hidden or self.vocab_size != self.n_out):
            raise ConfigError(
                f"tied weights need embed == hidden and an lm (got embed={self.embed}, "
                f"hidden={self.hidden}); set --embed equal to --hidden or drop --tie-weights"
            )

    def to_dict(self) -> dict:
        return asdict(self)


class RNNModel(nn.Module):
    """The one model rnnkit trains.

    >>> m = RNNModel(ModelConfig(cell="gru", vocab_size=10, n_out=3, embed=4, hidden=8))
    >>> logits, state = m(torch.zeros(2, 5, dtype=torch.long))
    >>> tuple(logits.shape), tuple(state.shape)
    ((2, 5, 3), (1, 2, 8))
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed)
        self.drop = nn.Dropout(c.dropout)
        extra = {"nonlinearity": c.activation} if c.cell == "rnn" else {}
        self.rnn = _MODULES[c.cell](
            c.embed, c.hidden, num_layers=c.layers, batch_first=True,
            dropout=c.dropout if c.layers > 1 else 0.0, **extra,
        )
        self.head = nn.Linear(c.hidden, c.n_out)
        if c.tie_weights:
            self.head.weight = self.embedding.weight
        nn.init.normal_(self.embedding.weight, std=0.1)

    def load_embedding_rows(self, ids: Sequence[int], vectors: Any) -> None:
        """Set the embedding rows of token ``ids`` (n,) to ``vectors`` (n, E), e.g. pretrained word vectors."""
        weight = self.embedding.weight  # (V, E)
        with torch.no_grad():
            weight[torch.as_tensor(ids, dtype=torch.long, device=weight.device)] = torch.as_tensor(
                vectors, dtype=weight.dtype, device=weight.device)

    def init_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """A zero state for ``batch`` sequences."""
        c = self.config
        device = device or self.embedding.weight.device
        h = torch.zeros(c.layers, batch, c.hidden, device=device)  # (L, B, H)
        return (h, torch.zeros_like(h)) if c.cell == "lstm" else h

    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens (B, T) int64 → logits (B, T, n_out), state."""
        if state is None:
            state = self.init_state(tokens.shape[0], tokens.device)
        x = self.drop(self.embedding(tokens))  # (B, T, E)
        y, state = self.rnn(x, state)  # (B, T, H)
        return self.head(self.drop(y)), state


def detach_state(state: State) -> State:
    """Cut the graph between BPTT chunks while keeping the values (the carried state)."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
