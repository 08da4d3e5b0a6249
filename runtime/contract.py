"""The ONNX contract: tensor names, metadata keys, their schemas, the format version.

Defined once, here. ``rnnkit.export`` writes a model's metadata with :meth:`ModelSpec.to_metadata`
and the runtime reads it back with :meth:`ModelSpec.from_metadata`; both validate. The prose
version of this module is docs/FORMAT.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import FormatVersionError, MetadataError
from .schema import schema_errors
from .vocab import MAX_TOKEN_CHARS, SPECIALS, Vocabulary, vocab_checksum

__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "FORMAT_VERSION",
    "INPUT_C0",
    "INPUT_H0",
    "INPUT_TOKENS",
    "KEYS",
    "OUTPUT_CN",
    "OUTPUT_HN",
    "OUTPUT_LOGITS",
    "QUANTIZATION_MODES",
    "SCHEMAS",
    "TAG_SCHEMES",
    "TASKS",
    "ModelSpec",
    "format_for",
]

FORMAT_VERSION = 3  # the newest format this reader reads; a writer records the oldest that holds its file
# What each format added: a reader of an older one would misread it (docs/FORMAT.md, Versioning).
#   2: word tokenizers that are not jieba ("segmenter": "whitespace")
#   3: language models framed without <bos> or without <eos> ("rnnkit.framing")
# none; int8 (row-wise, batch-invariant; or, without "batch_invariant", onnxruntime's dynamic
# scheme of files written before); int4; int8-dynamic (per-call scales, not batch-invariant)
QUANTIZATION_MODES = ("none", "int8", "int4", "int8-dynamic")
PREFIX = "rnnkit."

# Graph inputs and outputs. Shapes: tokens int64 [batch, seq]; h0/c0 float32
# [layers, batch, hidden]; logits float32 [batch, seq, n_out]; hn/cn like h0.
INPUT_TOKENS, INPUT_H0, INPUT_C0 = "tokens", "h0", "c0"
OUTPUT_LOGITS, OUTPUT_HN, OUTPUT_CN = "logits", "hn", "cn"

TASKS = ("lm", "classify", "tag")
CELLS = ("rnn", "gru", "lstm")
TAG_SCHEMES = ("none", "tags", "bmes")  # "bmes": B/M/E/S character tags that cut words
ACTIVATIONS = ("tanh", "relu")  # an rnn cell's nonlinearity; GRU and LSTM have fixed ones

# Caps on what a reader accepts, so a hostile file cannot make it allocate without bound.
MAX_VALUE_BYTES = 32 * 1024 * 1024
MAX_VOCAB = 2_000_000
MAX_LABELS = 100_000
MAX_DIM = 1 << 16
MAX_LOOKAHEAD = 16
MAX_STATE = 1 << 20  # layers × hidden: one row's state tensor, 4 MiB of float32
MAX_MATRIX = 1 << 30  # vocabulary × embed, hidden × n_out: one weight matrix, 4 GiB of float32
MAX_DEPTH = 32  # nesting of a JSON value: deeper than any rnnkit writes, shallow enough to walk safely


class KEYS:
    """Metadata keys (ONNX ``metadata_props``; every value is a string)."""

    FORMAT = PREFIX + "format"
    TASK = PREFIX + "task"
    CELL = PREFIX + "cell"
    LAYERS = PREFIX + "layers"
    HIDDEN = PREFIX + "hidden"
    EMBED = PREFIX + "embed"
    TOKENIZER = PREFIX + "tokenizer"
    VOCAB = PREFIX + "vocab"
    VOCAB_SHA256 = PREFIX + "vocab_sha256"
    SPECIALS = PREFIX + "specials"
    LABELS = PREFIX + "labels"
    TAG_SCHEME = PREFIX + "tag_scheme"
    LOOKAHEAD = PREFIX + "lookahead"
    QUANTIZATION = PREFIX + "quantization"
    PROVENANCE = PREFIX + "provenance"
    METRICS = PREFIX + "metrics"
    # optional: absent means the default (docs/FORMAT.md)
    ACTIVATION = PREFIX + "activation"  # rnn cells: "tanh" (default) or "relu"
    FRAMING = PREFIX + "framing"  # lm: {"bos": bool, "eos": bool}, both true by default (format 3 otherwise)
    UNICODE = PREFIX + "unicode"  # the Unicode version of the tables that normalised the text; absent: unknown


_INT = {"type": "string", "pattern": r"^[1-9][0-9]{0,5}$"}
_JSON_OBJECT = {"type": "object"}

# One schema per key. Plain strings are checked as strings; JSON values are parsed first.
SCHEMAS: dict[str, dict[str, Any]] = {
    KEYS.FORMAT: {"type": "string", "pattern": r"^[0-9]{1,6}$"},
    KEYS.TASK: {"type": "string", "enum": list(TASKS)},
    KEYS.CELL: {"type": "string", "enum": list(CELLS)},
    KEYS.LAYERS: _INT,
    KEYS.HIDDEN: _INT,
    KEYS.EMBED: _INT,
    KEYS.TOKENIZER: {
        "type": "object",
        "required": ["kind", "normalize", "lowercase", "keep_whitespace"],
        "properties": {
            "kind": {"enum": ["char", "word"]},
            "normalize": {"enum": ["NFKC", "NFC", None]},
            "lowercase": {"type": "boolean"},
            "keep_whitespace": {"type": "boolean"},
            "hmm": {"type": "boolean"},
            "mode": {"enum": ["precise"]},
            "jieba_version": {"type": "string", "maxLength": 64},
            "segmenter": {"enum": ["jieba", "whitespace"]},
        },
        "additionalProperties": False,
    },
    KEYS.VOCAB: {
        "type": "array",
        "minItems": 5,
        "maxItems": MAX_VOCAB,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_CHARS},
    },
    KEYS.VOCAB_SHA256: {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    KEYS.SPECIALS: {
        "type": "object",
        "required": list(SPECIALS),
        "properties": {name: {"type": "integer", "enum": [i]} for i, name in enumerate(SPECIALS)},
        "additionalProperties": False,
    },
    KEYS.LABELS: {
        "type": "array",
        "maxItems": MAX_LABELS,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_CHARS},
    },
    KEYS.TAG_SCHEME: {"type": "string", "enum": list(TAG_SCHEMES)},
    KEYS.LOOKAHEAD: {"type": "string", "pattern": "^(0|[1-9]|1[0-6])$"},
    KEYS.QUANTIZATION: {
        "type": "object",
        "required": ["mode"],
        "properties": {
            "mode": {"enum": list(QUANTIZATION_MODES)},
            # False, or missing (files written before int8 became row-wise): a text's answers may
            # depend on its batch neighbours and on how it is cut into calls
            "batch_invariant": {"type": "boolean"},
            "operators": {"type": "array", "maxItems": 64,
                          "items": {"type": "string", "pattern": r"^([a-z][a-z.]{0,40}\.)?[A-Z][A-Za-z0-9]{0,40}$"}},
            "min_onnxruntime": {"type": "string", "pattern": r"^[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3})?$"},
            "method": {"type": "string"},
            "quantized_ops": {"type": "object", "additionalProperties": {"type": "integer"}},
            "not_quantized_ops": {"type": "object", "additionalProperties": {"type": "integer"}},
            "weight_only_ops": {"type": "object", "additionalProperties": {"type": "integer"}},
            "size_ratio": {"type": "number"},
            "max_abs_diff": {"type": "number"},
            "atol": {"type": "number"},
            "step_ratio": {"type": "number"},
            "invariance": {"type": "object"},
            "vs_fp32": {"type": "object"},
            "metric": {"type": "object"},
        },
    },
    KEYS.PROVENANCE: {
        "type": "object",
        "required": ["rnnkit", "created"],
        "properties": {"rnnkit": {"type": "string"}, "created": {"type": "string"}},
    },
    KEYS.METRICS: _JSON_OBJECT,
    KEYS.ACTIVATION: {"type": "string", "enum": list(ACTIVATIONS)},
    KEYS.FRAMING: {
        "type": "object",
        "required": ["bos", "eos"],
        "properties": {"bos": {"type": "boolean"}, "eos": {"type": "boolean"}},
        "additionalProperties": False,
    },
    KEYS.UNICODE: {"type": "string", "pattern": r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"},
}
_JSON_KEYS = {KEYS.TOKENIZER, KEYS.VOCAB, KEYS.SPECIALS, KEYS.LABELS, KEYS.QUANTIZATION,
              KEYS.PROVENANCE, KEYS.METRICS, KEYS.FRAMING}
OPTIONAL = (KEYS.ACTIVATION, KEYS.FRAMING, KEYS.UNICODE)
REQUIRED = tuple(k for k in SCHEMAS if k not in OPTIONAL)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ModelSpec:
    """Everything a runtime needs to know about a model besides its weights.

    ``tokenizer`` is the tokenizer's ``to_config()`` dict; ``labels`` is empty for ``lm``.
    ``bos``/``eos``: whether an lm learned rnnkit's ``<bos>`` and ``<eos>`` (a torch module
    exported with ``export_module`` may have neither): without ``<bos>`` streams start at zero
    state with no logits, without ``<eos>`` the model never ends a text itself. ``unicode``: the
    Unicode version of the writer's tables (``unicodedata.unidata_version``), None if unrecorded.
    """

    task: str
    cell: str
    layers: int
    hidden: int
    embed: int
    tokenizer: dict[str, Any]
    vocab: Vocabulary
    labels: tuple[str, ...] = ()
    tag_scheme: str = "none"
    lookahead: int = 0  # tag: the tag of token t is read from the logits at step t + lookahead
    quantization: dict[str, Any] = field(default_factory=lambda: {"mode": "none"})
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format: int | None = None  # None: the oldest format that holds this model (format_for)
    activation: str = "tanh"  # rnn cells: the recurrence's nonlinearity
    bos: bool = True
    eos: bool = True
    unicode: str | None = None

    def __post_init__(self) -> None:
        if self.format is None:
            object.__setattr__(self, "format", format_for(self.tokenizer, bos=self.bos, eos=self.eos))

    @property
    def n_out(self) -> int:
        """Size of the logits' last axis: the vocabulary for ``lm``, else the labels."""
        return len(self.vocab) if self.task == "lm" else len(self.labels)

    @property
    def state_names(self) -> tuple[tuple[str, str], ...]:
        """(input, output) name pairs of the recurrent state."""
        pairs = ((INPUT_H0, OUTPUT_HN),)
        return (*pairs, (INPUT_C0, OUTPUT_CN)) if self.cell == "lstm" else pairs

    @property
    def input_names(self) -> tuple[str, ...]:
        return (INPUT_TOKENS, *(i for i, _ in self.state_names))

    @property
    def output_names(self) -> tuple[str, ...]:
        return (OUTPUT_LOGITS, *(o for _, o in self.state_names))

    @property
    def n_state(self) -> int:
        """How many state tensors go in (and come out): 2 for LSTM (h, c), else 1."""
        return len(self.state_names)

    def state_shape(self, batch: int = 1) -> tuple[int, int, int]:
        """The shape of each state tensor: (layers, batch, hidden)."""
        return (self.layers, batch, self.hidden)

    def zero_state(self, batch: int = 1) -> list[np.ndarray]:
        """Zero state arrays, each (layers, batch, hidden) float32."""
        return [np.zeros(self.state_shape(batch), np.float32) for _ in range(self.n_state)]

    def feed(self, tokens: np.ndarray, state: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's inputs by name: tokens (B, T) int64, then the state arrays in order."""
        return dict(zip(self.input_names, (tokens, *state)))

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` strings; validated exactly as a reader will."""
        props = {
            KEYS.FORMAT: str(self.format),
            KEYS.TASK: self.task,
            KEYS.CELL: self.cell,
            KEYS.LAYERS: str(self.layers),
            KEYS.HIDDEN: str(self.hidden),
            KEYS.EMBED: str(self.embed),
            KEYS.TOKENIZER: _dumps(self.tokenizer),
            KEYS.VOCAB: self.vocab.to_json(),
            KEYS.VOCAB_SHA256: self.vocab.checksum(),
            KEYS.SPECIALS: _dumps({name: i for i, name in enumerate(SPECIALS)}),
            KEYS.LABELS: _dumps(list(self.labels)),
            KEYS.TAG_SCHEME: self.tag_scheme,
            KEYS.LOOKAHEAD: str(self.lookahead),
            KEYS.QUANTIZATION: _dumps(self.quantization),
            KEYS.PROVENANCE: _dumps(self.provenance),
            KEYS.METRICS: _dumps(self.metrics),
        }
        if self.activation != "tanh":
            props[KEYS.ACTIVATION] = self.activation
        if not (self.bos and self.eos):
            props[KEYS.FRAMING] = _dumps({"bos": self.bos, "eos": self.eos})
        if self.unicode is not None:
            props[KEYS.UNICODE] = self.unicode
        ModelSpec.from_metadata(props)
        return props

    @classmethod
    def from_metadata(cls, props: dict[str, str]) -> ModelSpec:
        """Parse and validate ``metadata_props``; raise :class:`MetadataError` naming the key."""
        if not isinstance(props, Mapping):
            raise TypeError(f"metadata must be a mapping of strings, got {type(props).__name__}")
        if not any(isinstance(k, str) and k.startswith(PREFIX) for k in props):
            raise MetadataError(
                "this ONNX file has no rnnkit metadata; export models with `rnnkit export`",
                KEYS.FORMAT,
            )
        _check_version(props.get(KEYS.FORMAT))
        values: dict[str, Any] = {}
        for key in (*REQUIRED, *OPTIONAL):
            if key not in props:
                if key in OPTIONAL:
                    continue
                raise MetadataError(f"metadata key {key!r} is missing; re-export the model", key)
            raw = props[key]
            if not isinstance(raw, str):
                raise MetadataError(f"metadata {key!r} must be a string, got {type(raw).__name__}", key)
            if _utf8_size(raw) > MAX_VALUE_BYTES:
                raise MetadataError(f"metadata {key!r} is larger than {MAX_VALUE_BYTES} bytes", key)
            value: Any = raw
            if key in _JSON_KEYS:
                try:
                    value = json.loads(raw)
                except (ValueError, RecursionError) as e:  # ValueError: JSONDecodeError
                    raise MetadataError(f"metadata {key!r} is not valid JSON ({e})", key) from e
                if _depth(value) > MAX_DEPTH:
                    raise MetadataError(f"metadata {key!r} is nested deeper than {MAX_DEPTH} levels", key)
            errors = schema_errors(value, SCHEMAS[key])
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                raise MetadataError(f"metadata {key!r} is invalid: {errors[0]}{more}", key)
            values[key] = value

        for key in (KEYS.VOCAB, KEYS.LABELS):  # JSON escapes can spell a lone surrogate, which no text holds
            if _SURROGATE.search("".join(values[key])):
                raise MetadataError(f"metadata {key!r} holds a lone surrogate (\\ud800-\\udfff), which is not "
                                    "text; re-export the model from clean data", key)
        vocab = Vocabulary.from_json(props[KEYS.VOCAB])
        if vocab_checksum(vocab.tokens) != values[KEYS.VOCAB_SHA256]:
            raise MetadataError(
                "the vocabulary does not match its checksum: the file was edited or corrupted",
                KEYS.VOCAB_SHA256,
            )
        task, labels = values[KEYS.TASK], tuple(values[KEYS.LABELS])
        scheme = values[KEYS.TAG_SCHEME]
        if task == "lm" and labels:
            raise MetadataError("an lm model must have no labels", KEYS.LABELS)
        if task != "lm" and len(labels) < 2:
            raise MetadataError(f"a {task} model needs at least 2 labels, got {len(labels)}", KEYS.LABELS)
        if (task == "tag") != (scheme != "none"):
            raise MetadataError(f"tag_scheme {scheme!r} does not fit task {task!r}", KEYS.TAG_SCHEME)
        if task != "tag" and values[KEYS.LOOKAHEAD] != "0":
            raise MetadataError(f"only a tag model reads ahead; a {task} model's lookahead must be 0",
                                KEYS.LOOKAHEAD)
        if scheme == "bmes" and set(labels) != {"B", "M", "E", "S"}:
            raise MetadataError(f"a bmes tagger needs labels B, M, E, S, got {list(labels)}", KEYS.LABELS)
        _check_tokenizer(values[KEYS.TOKENIZER], int(values[KEYS.FORMAT]))
        cell = values[KEYS.CELL]
        activation = values.get(KEYS.ACTIVATION, "tanh")
        if activation != "tanh" and cell != "rnn":
            raise MetadataError(f"only an rnn cell takes an activation; a {cell} cell's are fixed", KEYS.ACTIVATION)
        framing = values.get(KEYS.FRAMING, {"bos": True, "eos": True})
        if task != "lm" and KEYS.FRAMING in values:
            raise MetadataError(f"only an lm is framed by <bos> and <eos>; a {task} model takes no framing",
                                KEYS.FRAMING)
        if not (framing["bos"] and framing["eos"]) and int(values[KEYS.FORMAT]) < 3:
            raise MetadataError(f"an lm framed without <bos> or <eos> needs model format 3, and the file says "
                                f"format {values[KEYS.FORMAT]}; re-export the model", KEYS.FRAMING)
        for key in (KEYS.LAYERS, KEYS.HIDDEN, KEYS.EMBED):
            if int(values[key]) > MAX_DIM:
                raise MetadataError(f"metadata {key!r} = {values[key]} is implausibly large", key)
        layers, hidden, embed = (int(values[k]) for k in (KEYS.LAYERS, KEYS.HIDDEN, KEYS.EMBED))
        n_out = len(vocab) if task == "lm" else len(labels)
        for product, cap, what, key in (
            (layers * hidden, MAX_STATE, f"layers × hidden = {layers} × {hidden}", KEYS.HIDDEN),
            (len(vocab) * embed, MAX_MATRIX, f"vocabulary × embed = {len(vocab)} × {embed}", KEYS.EMBED),
            (hidden * n_out, MAX_MATRIX, f"hidden × outputs = {hidden} × {n_out}", KEYS.HIDDEN),
            (hidden * max(hidden, embed), MAX_MATRIX, f"hidden × max(hidden, embed) = {hidden} × {max(hidden, embed)}",
             KEYS.HIDDEN),
        ):
            if product > cap:
                raise MetadataError(f"metadata sizes {what} = {product} exceed what rnnkit loads ({cap}); "
                                    "the file is not a model rnnkit can run", key)
        return cls(
            task=task,
            cell=cell,
            layers=int(values[KEYS.LAYERS]),
            hidden=int(values[KEYS.HIDDEN]),
            embed=int(values[KEYS.EMBED]),
            tokenizer=values[KEYS.TOKENIZER],
            vocab=vocab,
            labels=labels,
            tag_scheme=scheme,
            lookahead=int(values[KEYS.LOOKAHEAD]),
            quantization=values[KEYS.QUANTIZATION],
            provenance=values[KEYS.PROVENANCE],
            metrics=values[KEYS.METRICS],
            format=int(values[KEYS.FORMAT]),
            activation=activation,
            bos=framing["bos"],
            eos=framing["eos"],
            unicode=values.get(KEYS.UNICODE),
        )

    def check_graph(self, *, n_out: int | None, layers: int | None, hidden: int | None,
                    vocab_rows: int | None = None) -> None:
        """Check the metadata against the graph's static dimensions (``None`` = unknown)."""
        checks = (
            (n_out, self.n_out, KEYS.VOCAB if self.task == "lm" else KEYS.LABELS,
             "the logits' last axis is {}", "vocabulary size" if self.task == "lm" else "label count"),
            (layers, self.layers, KEYS.LAYERS, "the state's layer axis is {}", "layers"),
            (hidden, self.hidden, KEYS.HIDDEN, "the state's hidden axis is {}", "hidden"),
            (vocab_rows, len(self.vocab), KEYS.VOCAB, "the embedding has {} rows", "vocabulary size"),
        )
        for actual, expected, key, what, name in checks:
            if actual is not None and actual != expected:
                raise MetadataError(
                    f"inconsistent model: {what.format(actual)} but the metadata's {name} is "
                    f"{expected}; re-export the model",
                    key,
                )


def format_for(tokenizer: Mapping[str, Any], *, bos: bool = True, eos: bool = True) -> int:
    """The oldest format that holds a model with this tokenizer config and framing: 3 for an lm
    without ``<bos>`` or ``<eos>``, 2 for a word tokenizer that is not jieba, else 1."""
    if not (bos and eos):
        return 3
    return 2 if isinstance(tokenizer, Mapping) and tokenizer.get("segmenter", "jieba") != "jieba" else 1


def _check_tokenizer(tokenizer: dict[str, Any], version: int) -> None:
    """What the schema cannot say: which keys go with which kind and segmenter, and the format they need."""
    segmenter = tokenizer.get("segmenter")
    if tokenizer["kind"] == "char":
        if segmenter is not None or any(k in tokenizer for k in ("hmm", "mode", "jieba_version")):
            raise MetadataError("a char tokenizer takes no segmenter, hmm, mode or jieba_version", KEYS.TOKENIZER)
        return
    if format_for(tokenizer) > version:
        raise MetadataError(f"a {segmenter} word tokenizer needs model format {format_for(tokenizer)}, and the "
                            f"file says format {version}; re-export the model", KEYS.TOKENIZER)
    if segmenter in (None, "jieba") and "jieba_version" not in tokenizer:
        raise MetadataError("a word tokenizer must record its jieba_version", KEYS.TOKENIZER)
    if segmenter == "whitespace" and any(k in tokenizer for k in ("hmm", "mode", "jieba_version")):
        raise MetadataError("a whitespace tokenizer takes no hmm, mode or jieba_version (those are jieba's)",
                            KEYS.TOKENIZER)


def _check_version(raw: Any) -> None:
    if raw is None:
        raise MetadataError(f"metadata key {KEYS.FORMAT!r} is missing; re-export the model", KEYS.FORMAT)
    if not isinstance(raw, str) or not re.fullmatch("[0-9]{1,6}", raw):  # ASCII digits: "²".isdigit() too
        raise MetadataError(f"metadata {KEYS.FORMAT!r} must be an integer, got {str(raw)[:20]!r}",
                            KEYS.FORMAT)
    version = int(raw)
    if version > FORMAT_VERSION:
        raise FormatVersionError(
            f"model format {version} is newer than this rnnkit reads ({FORMAT_VERSION}): "
            "upgrade rnnkit",
            KEYS.FORMAT,
        )
    if version < 1:
        raise FormatVersionError(f"unknown model format {version}; re-export the model", KEYS.FORMAT)


def _utf8_size(text: str) -> int:
    """The UTF-8 size of ``text``, without encoding it when its length already decides."""
    if len(text) > MAX_VALUE_BYTES or text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar is 0), walked without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        todo.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def rnnkit_version() -> str:
    """The installed rnnkit's version (recorded in checkpoints and model provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnnkit")
    except PackageNotFoundError:
        return "0+unknown"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
