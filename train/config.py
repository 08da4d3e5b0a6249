"""Training options, built once at the edge (CLI or caller) and passed down."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from rnnkit.runtime.contract import CELLS, MAX_LOOKAHEAD, TASKS
from rnnkit.runtime.errors import ConfigError

__all__ = ["DEFAULT_LOOKAHEAD", "LEVELS", "TrainConfig"]

DEFAULT_LOOKAHEAD = 2  # tokens a tagger reads past a token before tagging it
LEVELS = ("char", "word")  # what a token is: a character, or a word cut by jieba


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``train()`` needs besides the model architecture.

    ``max_len`` caps the tokens per text for classify (the first ``max_len`` are read) and
    splits long tagged sequences into windows; lm trains on a continuous token stream cut
    into ``bptt``-long chunks instead.

    ``lookahead`` (tag only): how many tokens past a token the tagger reads before it tags it.
    A one-way RNN cannot see what follows a character, yet whether it ends a word depends on
    it; reading 2 more tokens (the default for tag) is what lets it decide. ``None`` picks 2
    for tag and 0 for the other tasks.
    """

    task: str
    data: str
    out: str
    level: str | None = None  # char | word; None = "char" unless the data says otherwise
    cell: str = "gru"
    layers: int = 1
    embed: int = 64
    hidden: int = 128
    dropout: float = 0.0
    tie_weights: bool = False
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 32
    bptt: int = 64
    max_len: int = 256
    lookahead: int | None = None
    lr: float = 3e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup: float = 0.02  # fraction of the planned steps with a rising learning rate
    patience: int = 3  # epochs without improvement before stopping early (0 = never)
    seed: int = 0
    device: str = "auto"
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    min_freq: int = 1
    max_vocab: int | None = None
    normalize: str | None = "NFKC"
    lowercase: bool = False
    hmm: bool = True
    skip_bad: bool = False
    whole_file: bool = False
    limit: int | None = None
    save_every: int = 200  # steps between resumable snapshots (last.pt)
    threads: int | None = None
    valid_sample: int = 2000  # validation examples kept in the checkpoint (int8 checks at export)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.level is not None and self.level not in LEVELS:
            raise ConfigError(f"level must be char or word, got {self.level!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.lookahead is None:
            object.__setattr__(self, "lookahead", DEFAULT_LOOKAHEAD if self.task == "tag" else 0)
        if not 0 <= self.lookahead <= MAX_LOOKAHEAD:
            raise ConfigError(f"lookahead must be in 0..{MAX_LOOKAHEAD}, got {self.lookahead}")
        if self.lookahead and self.task != "tag":
            raise ConfigError("--lookahead is for --task tag only")
        positive = ("layers", "embed", "hidden", "epochs", "batch_size", "bptt", "max_len", "min_freq",
                    "save_every", "valid_sample")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "max_vocab", "limit", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {value}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.clip <= 0 or self.weight_decay < 0 or not 0 <= self.warmup < 1 or self.patience < 0:
            raise ConfigError("clip must be > 0, weight-decay ≥ 0, warmup in [0, 1), patience ≥ 0")
        # Checked here, before any data is read; ModelConfig checks the same for other callers.
        if self.tie_weights and self.task != "lm":
            raise ConfigError("--tie-weights is for --task lm only: other tasks' outputs are labels, not tokens")
        if self.tie_weights and self.embed != self.hidden:
            raise ConfigError(f"--tie-weights needs embed == hidden (got embed={self.embed}, "
                              f"hidden={self.hidden}); set --embed equal to --hidden or drop --tie-weights")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
