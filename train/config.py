"""Training options, built once at the edge (CLI or caller) and passed down."""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from rnnkit.runtime.contract import CELLS, KEYS, MAX_DIM, MAX_LOOKAHEAD, MAX_VOCAB, TASKS, ModelSpec
from rnnkit.runtime.errors import ConfigError, DataError, MetadataError
from rnnkit.runtime.tokenizers import SEGMENTERS
from rnnkit.runtime.vocab import Vocabulary

__all__ = ["AMP_MODES", "DEFAULT_EPOCHS", "DEFAULT_LOOKAHEAD", "LAUNCH_OPTIONS", "LEVELS", "MAX_PARAMETERS", "MAX_SEED",
           "MAX_STEP_ELEMENTS", "MAX_THREADS", "MAX_WORKERS", "TrainConfig", "check_exportable_model",
           "check_model_size", "node_range"]

DEFAULT_LOOKAHEAD = 2  # tokens a tagger reads past a token before tagging it
DEFAULT_EPOCHS = 10  # passes over the data when epochs is not given (more when min_steps needs them)
LEVELS = ("char", "word")  # what a token is: a character, or a word cut by jieba

MAX_SEED = 2**32 - 1  # the seed range numpy and most tools share; torch's own limit is larger
MAX_THREADS = 1024  # torch starts every thread it is told to (100,000 crash it); no CPU has more cores
# An exported model is one protobuf message (at most 2 GiB) holding its fp32 weights: 2.0 GB of them
# leaves room for the graph and the metadata.
MAX_PARAMETERS = 500_000_000
MAX_STEP_ELEMENTS = 1 << 31  # floats in one step's logits and states (8 GiB): no step that size fits memory
MAX_WORKERS = 1024  # processes per node, and nodes: beyond it a value is a typo (no node has more cores or GPUs)
AMP_MODES = ("bf16", "fp16")  # autocast dtypes on CUDA (fp16 with a gradient scaler)
# How a run is launched (workers, nodes, restarts, mixed precision), not what it computes: a run may
# resume under other values of these (resumed_config and the checkpoint identity checks skip them).
LAUNCH_OPTIONS = ("nproc_per_node", "nnodes", "rdzv_endpoint", "node_rank", "max_restarts", "amp")
_NNODES = re.compile(r"[0-9]{1,9}(:[0-9]{1,9})?")
_ENDPOINT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:(?P<port>[0-9]{1,9}))?")
_MANY = 10**12  # a count no run reaches (steps, examples, a frequency): beyond it a value is a typo
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_MOST_EPOCHS = 1_000_000

# Integer fields: name → (least, most). The most for layers/embed/hidden is what a model file may declare.
_INTS = {
    "layers": (1, MAX_DIM), "embed": (1, MAX_DIM), "hidden": (1, MAX_DIM), "min_steps": (0, _MANY),
    "batch_size": (1, 1 << 20), "bptt": (1, 1 << 20), "max_len": (1, 1 << 20), "patience": (0, 1_000_000),
    "min_freq": (1, _MANY), "save_every": (1, _MANY), "valid_sample": (1, _MANY), "seed": (0, MAX_SEED),
    "lookahead": (0, MAX_LOOKAHEAD), "nproc_per_node": (1, MAX_WORKERS), "max_restarts": (0, 1000),
}
_OPTIONAL_INTS = {"epochs": (1, _MOST_EPOCHS), "max_steps": (1, _MANY), "max_vocab": (5, MAX_VOCAB),
                  "limit": (1, _MANY), "threads": (1, MAX_THREADS), "node_rank": (0, MAX_WORKERS - 1)}
# Float fields: name → (least, most or None, least allowed, most allowed). NaN and infinity never are.
_FLOATS = {
    "lr": (0.0, None, False, True), "weight_decay": (0.0, None, True, True), "clip": (0.0, None, False, True),
    "dropout": (0.0, 1.0, True, False), "warmup": (0.0, 1.0, True, False),
    "valid_fraction": (0.0, 0.5, True, False), "test_fraction": (0.0, 0.5, True, False),
}


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

    ``epochs``: passes over the training data. ``None`` (the default) is
    :data:`DEFAULT_EPOCHS`, or more whole epochs when those would make fewer than
    ``min_steps`` optimizer steps: small data gets enough steps to learn, and early stopping
    waits for them. An explicit ``epochs`` is exact and ``min_steps`` plays no part (giving
    ``min_steps`` other than its default with it is refused). ``max_steps`` caps every run.

    ``embeddings``: a file of pretrained word vectors (word2vec text or binary, GloVe; see
    :mod:`rnnkit.train.embeddings`) whose rows start the embedding of the tokens they cover;
    their size must be ``embed``. ``freeze_embeddings`` keeps the whole embedding as it starts
    (not with ``tie_weights``, which would freeze the output layer too).

    ``nproc_per_node`` > 1 trains on that many processes through torchrun's elastic launcher
    (:mod:`rnnkit.train.launch`); ``batch_size`` stays the global batch, split across all the
    workers, so it must divide by their number. ``nnodes`` (``"2"`` or ``"1:4"``),
    ``rdzv_endpoint`` (``host:port``, needed by more than one node) and ``node_rank`` (a fixed
    rank for this node: a static rendezvous) are torchrun's; ``max_restarts`` restarts the
    workers that many times after a failure, each time from ``last.pt``. ``amp`` (``"bf16"`` or
    ``"fp16"``) trains under autocast on a CUDA device. None of these changes what a run
    computes beyond float rounding, and a run may resume under other values of them.
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
    epochs: int | None = None  # None: DEFAULT_EPOCHS, raised to reach min_steps (see epochs_for)
    min_steps: int = 300  # optimizer steps a run with epochs=None makes at least (0: no minimum)
    max_steps: int | None = None
    batch_size: int = 32
    bptt: int = 64
    max_len: int = 256
    lookahead: int | None = None
    lr: float = 3e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup: float = 0.02  # fraction of the planned steps with a rising learning rate
    patience: int = 3  # epochs without improvement before stopping early (0 = never), not before min_steps
    seed: int = 0
    device: str = "auto"
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    min_freq: int = 1
    max_vocab: int | None = None
    normalize: str | None = "NFKC"
    lowercase: bool = False
    hmm: bool = True
    tokenizer: str | None = None  # word level: jieba | whitespace; None = jieba for Chinese data, else whitespace
    keep_whitespace: bool | None = None  # None = drop for tag and whitespace words, keep otherwise
    skip_bad: bool = False
    whole_file: bool = False
    limit: int | None = None
    save_every: int = 200  # steps between resumable snapshots (last.pt)
    force: bool = False  # start over in an --out that holds a run: its checkpoints and reports are removed first
    threads: int | None = None
    valid_sample: int = 2000  # validation examples kept in the checkpoint (int8 checks at export)
    embeddings: str | None = None  # pretrained word vectors (word2vec text or binary, GloVe) for the embedding
    freeze_embeddings: bool = False  # keep the embedding as the vectors give it (needs embeddings)
    nproc_per_node: int = 1  # workers on this node; more than 1 launches them through torchrun's elastic launcher
    nnodes: str = "1"  # torchrun's --nnodes: "2", or "1:4" for an elastic range of nodes
    rdzv_endpoint: str | None = None  # host:port of the rendezvous (c10d) for many nodes; None: standalone, one node
    node_rank: int | None = None  # this node's fixed rank (a static rendezvous); None: ranks as nodes arrive
    max_restarts: int = 0  # torchrun's elastic restarts after a worker fails; restarted workers resume from last.pt
    amp: str | None = None  # bf16 | fp16: autocast on CUDA (fp16 with a gradient scaler); None: float32

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.level is not None and self.level not in LEVELS:
            raise ConfigError(f"level must be char or word, got {self.level!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.tokenizer is not None and self.tokenizer not in SEGMENTERS:
            raise ConfigError(f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(SEGMENTERS)}")
        if self.tokenizer is not None and self.level == "char":
            raise ConfigError(f"--tokenizer {self.tokenizer} says how words are cut: use it with --level word "
                              "(or without --level), not --level char")
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.lookahead is None:
            object.__setattr__(self, "lookahead", DEFAULT_LOOKAHEAD if self.task == "tag" else 0)
        for name, (least, most) in {**_INTS, **_OPTIONAL_INTS}.items():
            _check_int(name, getattr(self, name), least, most, optional=name in _OPTIONAL_INTS)
        for name, bounds in _FLOATS.items():
            _check_float(name, getattr(self, name), *bounds)
        if self.lookahead and self.task != "tag":
            raise ConfigError("--lookahead is for --task tag only")
        if self.epochs is not None and self.min_steps != _default_of("min_steps"):
            raise ConfigError(f"--epochs {self.epochs} is exact and --min-steps {self.min_steps} only raises the "
                              "default epoch count: pass one of them")
        recurrent = _recurrent_parameters(self.cell, self.layers, self.embed, self.hidden)
        if recurrent > MAX_PARAMETERS:
            raise ConfigError(f"the {self.cell.upper()} layers ({self.layers} × hidden {self.hidden}) would hold "
                              f"{recurrent:,} weights, more than the {MAX_PARAMETERS:,} a model file holds; "
                              "lower --hidden or --layers")
        # Checked here, before any data is read; ModelConfig checks the same for other callers.
        if self.tie_weights and self.task != "lm":
            raise ConfigError("--tie-weights is for --task lm only: other tasks' outputs are labels, not tokens")
        if self.tie_weights and self.embed != self.hidden:
            raise ConfigError(f"--tie-weights needs embed == hidden (got embed={self.embed}, "
                              f"hidden={self.hidden}); set --embed equal to --hidden or drop --tie-weights")
        self._check_embeddings()
        self._check_launch()

    def epochs_for(self, steps_per_epoch: int) -> int:
        """The epochs a run makes when an epoch is ``steps_per_epoch`` optimizer steps.

        >>> TrainConfig(task="tag", data="builtin:hello", out="x").epochs_for(1)  # one example
        300
        >>> TrainConfig(task="tag", data="builtin:hello", out="x").epochs_for(1000)
        10
        >>> TrainConfig(task="tag", data="builtin:hello", out="x", epochs=1).epochs_for(1)
        1
        """
        if self.epochs is not None:
            return self.epochs
        return min(max(DEFAULT_EPOCHS, -(-self.min_steps // steps_per_epoch)), _MOST_EPOCHS)

    @property
    def steps_floor(self) -> int:
        """Optimizer steps before early stopping may end the run: ``min_steps`` when it applies."""
        return self.min_steps if self.epochs is None else 0

    def _check_embeddings(self) -> None:
        """The vectors file is read by train(); here only what the options alone show."""
        if isinstance(self.embeddings, os.PathLike):
            object.__setattr__(self, "embeddings", os.fspath(self.embeddings))
        if self.embeddings is not None and not isinstance(self.embeddings, str):
            raise TypeError(f"embeddings must be a path (str), got {type(self.embeddings).__name__}")
        if self.embeddings == "":
            raise ConfigError("--embeddings is an empty path; give a vectors file")
        if self.freeze_embeddings and not self.embeddings:
            raise ConfigError("--freeze-embeddings needs --embeddings: there are no pretrained vectors to freeze")
        if self.freeze_embeddings and self.tie_weights:
            raise ConfigError("--freeze-embeddings with --tie-weights would freeze the output layer too (they are "
                              "one matrix); drop one of them")

    def _check_launch(self) -> None:
        """The launch options alone; a worker also checks ``batch_size`` against its real world size."""
        if isinstance(self.nnodes, numbers.Integral) and not isinstance(self.nnodes, bool):
            object.__setattr__(self, "nnodes", str(self.nnodes))
        least, most = node_range(self.nnodes)
        if self.rdzv_endpoint is not None:
            _check_endpoint(self.rdzv_endpoint)
        if most > 1 and self.rdzv_endpoint is None:
            raise ConfigError(f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT, where the nodes meet "
                              "(the same on every node)")
        if self.node_rank is not None:
            if self.rdzv_endpoint is None:
                raise ConfigError("--node-rank needs --rdzv-endpoint HOST:PORT (the host of rank 0)")
            if least != most:
                raise ConfigError(f"--node-rank fixes this node's rank, which needs a fixed number of nodes; "
                                  f"--nnodes is {self.nnodes}: give one number or drop --node-rank")
            if self.node_rank >= most:
                raise ConfigError(f"node-rank must be in 0..{most - 1} for --nnodes {self.nnodes}, "
                                  f"got {self.node_rank}")
        workers = self.nproc_per_node * least
        if self.batch_size % workers:
            raise ConfigError(f"--batch-size {self.batch_size} is the global batch and must divide by the "
                              f"{workers} workers (--nproc-per-node {self.nproc_per_node}"
                              f"{f' × --nnodes {least}' if least > 1 else ''}); choose a multiple of {workers}")
        if self.amp is not None and self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be bf16 or fp16 (or None), got {_shown(self.amp)}")
        if self.amp is not None and self.device == "cpu":
            raise ConfigError(f"--amp {self.amp} trains under CUDA autocast: it needs --device cuda (or auto "
                              "on a machine with a GPU), not --device cpu")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def check_model_size(config: TrainConfig, *, vocab_size: int, n_out: int, rows: int, seq: int) -> None:
    """Refuse, before any weight is allocated, a model or a step larger than rnnkit can hold.

    ``rows`` × ``seq`` is the largest training batch the data makes (B, T). The weights must fit
    a model file (:data:`MAX_PARAMETERS`); one step's logits and per-layer states (B, T, n_out +
    layers × hidden) must stay under :data:`MAX_STEP_ELEMENTS` floats.
    """
    c = config
    embedding = vocab_size * c.embed
    output = (0 if c.tie_weights else c.hidden * n_out) + n_out
    total = embedding + _recurrent_parameters(c.cell, c.layers, c.embed, c.hidden) + output
    if total > MAX_PARAMETERS:
        raise ConfigError(f"the model would have {total:,} weights (embedding {vocab_size:,} × {c.embed}, "
                          f"output {c.hidden} × {n_out:,}), more than the {MAX_PARAMETERS:,} a model file holds; "
                          "lower --embed, --hidden or --layers, or cap the vocabulary with --max-vocab")
    step = rows * seq * (n_out + c.layers * c.hidden)
    if step > MAX_STEP_ELEMENTS:
        raise ConfigError(f"one training step would hold {step:,} floats (batch {rows} × {seq} tokens × "
                          f"({n_out:,} outputs + {c.layers} × {c.hidden} state)), more than "
                          f"{MAX_STEP_ELEMENTS:,}; lower --batch-size, --bptt or --max-len")


def check_exportable_model(config: TrainConfig, *, tokenizer: dict[str, Any], vocab: Vocabulary,
                           labels: Sequence[str], tag_scheme: str) -> None:
    """Refuse, before training, a model that export would refuse to write.

    The metadata the model would carry is validated by the contract's own
    :meth:`ModelSpec.to_metadata`, the check export and every reader make, so the two cannot
    drift; its strings must also have a UTF-8 spelling, as an ONNX file's must.
    """
    c = config
    spec = ModelSpec(task=c.task, cell=c.cell, layers=c.layers, hidden=c.hidden, embed=c.embed, tokenizer=tokenizer,
                     vocab=vocab, labels=tuple(labels) if c.task != "lm" else (),
                     tag_scheme=tag_scheme if c.task == "tag" else "none",
                     lookahead=c.lookahead if c.task == "tag" else 0,
                     provenance={"rnnkit": "", "created": ""})
    try:
        props = spec.to_metadata()
        for value in props.values():
            value.encode("utf-8")
    except MetadataError as e:
        if e.key in (KEYS.LAYERS, KEYS.HIDDEN, KEYS.EMBED, KEYS.LOOKAHEAD):
            raise ConfigError(f"a model of these options could not be exported: {e}") from e
        hint = {KEYS.VOCAB: "cap the vocabulary with --max-vocab or raise --min-freq",
                KEYS.LABELS: "fix the labels"}.get(e.key, "fix the data")
        raise DataError(f"a model trained on this data could not be exported: {e}; {hint}", path=c.data) from e
    except UnicodeEncodeError as e:
        raise DataError(f"a model trained on this data could not be exported: a token or label holds "
                        f"U+{ord(e.object[e.start]):04X}, a lone surrogate no model file can spell; fix the data",
                        path=c.data) from e


def node_range(nnodes: Any) -> tuple[int, int]:
    """The (least, most) nodes of torchrun's ``--nnodes``: ``"2"`` → (2, 2), ``"1:4"`` → (1, 4).

    >>> node_range("1:4")
    (1, 4)
    """
    if not isinstance(nnodes, str):
        raise TypeError(f"nnodes must be a string such as '2' or '1:4', got {type(nnodes).__name__}")
    if not _NNODES.fullmatch(nnodes):
        raise ConfigError(f"nnodes must be a number of nodes or a range MIN:MAX (2, 1:4), got {_shown(nnodes)}")
    least, _, most = nnodes.partition(":")
    bounds = int(least), int(most or least)
    if not 1 <= bounds[0] <= bounds[1] <= MAX_WORKERS:
        raise ConfigError(f"nnodes must be 1..{MAX_WORKERS} nodes, or MIN:MAX with 1 ≤ MIN ≤ MAX ≤ {MAX_WORKERS}, "
                          f"got {_shown(nnodes)}")
    return bounds


def _check_endpoint(endpoint: Any) -> None:
    if not isinstance(endpoint, str):
        raise TypeError(f"rdzv_endpoint must be a string HOST:PORT, got {type(endpoint).__name__}")
    match = _ENDPOINT.fullmatch(endpoint)
    port = match and match["port"]
    if not match or (port is not None and not 1 <= int(port) <= 65535):
        raise ConfigError(f"rdzv-endpoint must be HOST:PORT (a host name or address, a port 1..65535), "
                          f"got {_shown(endpoint)}")


def _recurrent_parameters(cell: str, layers: int, embed: int, hidden: int) -> int:
    """Weights and biases of the recurrent layers (torch's layout: two biases per gate)."""
    gates = _GATES[cell]
    first = gates * hidden * (embed + hidden + 2)
    return first + (layers - 1) * gates * hidden * (2 * hidden + 2)


def _check_int(name: str, value: Any, least: int, most: int, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not least <= value <= most:
        raise ConfigError(f"{name.replace('_', '-')} must be in {least}..{most}, got {_shown(value)}{_default(name)}")


def _check_float(name: str, value: Any, least: float, most: float | None, least_ok: bool, most_ok: bool) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond float's range
        x = math.inf
    if math.isfinite(x) and (x >= least if least_ok else x > least) and \
            (most is None or (x <= most if most_ok else x < most)):
        return
    if most is None:
        allowed = f"{'≥' if least_ok else '>'} {least:g}"
    else:
        allowed = f"in {'[' if least_ok else '('}{least:g}, {most:g}{']' if most_ok else ')'}"
    raise ConfigError(f"{name.replace('_', '-')} must be a finite number {allowed}, got {_shown(value)}"
                      f"{_default(name)}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _default(name: str) -> str:
    default = _default_of(name)
    return "" if default is None else f" (the default is {default:g})"


def _default_of(name: str) -> Any:
    return next(f.default for f in fields(TrainConfig) if f.name == name)
