"""``load_model`` and ``Model``: one exported file, shared by every stream and thread."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .batcher import StreamBatcher
from .contract import ModelSpec
from .engine import StepBinding, check_finite
from .errors import (
    BudgetError,
    ConfigError,
    InputError,
    MetadataError,
    ModelFileError,
    NonFiniteError,
    StateError,
    TaskError,
)
from .evaluation import Evaluation, evaluate_model
from .graphcheck import DEFAULT_CALL_BYTES, Budget, check_model, required_onnxruntime
from .onnxfile import OnnxFormatError, read_onnx
from .pretokenized import given_tokens, tag_token_lists, token_ids, token_lists
from .sampling import Sampler, StopMatcher, continuation
from .session import Providers, check_onnxruntime_version, make_session, read_model_file
from .stream import FEED_CHARS, Stream
from .tagging import TagResult, TagStream, join_tags
from .text import byte_size
from .tokenizers import Tokenizer, tokenizer_from_config
from .unicode import warn_unicode_version

__all__ = ["Model", "Prediction", "TagResult", "TensorInfo", "load_model"]


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output as onnxruntime reports it (``shape`` holds names for dynamic axes)."""

    name: str
    type: str
    shape: tuple[int | str | None, ...]


@dataclass(frozen=True)
class Prediction:
    """A classification: the best label, its probability, and every label's probability."""

    label: str
    score: float
    scores: dict[str, float] = field(repr=False)


def load_model(path: str | Path, *, providers: Providers = "auto", threads: int | None = 1,
               spin: bool = False, fallback: bool = False, sess_options: Any = None,
               max_call_bytes: int = DEFAULT_CALL_BYTES) -> Model:
    """Load an rnnkit ONNX file.

    >>> model = load_model("sentiment.onnx")  # doctest: +SKIP
    >>> model.classify("这本书很好看").label  # doctest: +SKIP
    'pos'

    ``providers`` is ``"auto"``, ``"cpu"``, ``"cuda"`` or onnxruntime's own list; ``threads``
    the intra-op threads (default 1: best for streaming steps); ``fallback=True`` turns a CUDA
    that cannot start into a warning and CPU. ``max_call_bytes`` caps the memory one session
    call may need (default 2 GiB): longer texts go through in several calls, and a batch too
    large even for one token is refused before anything is allocated.

    The file is read and its graph checked before onnxruntime sees it: only the graphs rnnkit's
    exporters write are loaded (docs/FORMAT.md, "What a loader accepts").
    """
    path = Path(path)
    if not isinstance(max_call_bytes, int) or isinstance(max_call_bytes, bool) or max_call_bytes < 1:
        raise ConfigError(f"max_call_bytes must be a positive integer, got {max_call_bytes!r}")
    data = read_model_file(path)
    try:
        graph = read_onnx(data)
    except OnnxFormatError as e:
        raise ModelFileError(f"{path} is not an ONNX model or is truncated ({e}); "
                             "re-export it with `rnnkit export`") from e
    if not graph.has_graph:
        raise ModelFileError(f"{path} is not an ONNX model or is truncated (it has no graph); "
                             "re-export it with `rnnkit export`")
    spec = ModelSpec.from_metadata(graph.metadata)
    budget = check_model(graph, spec, path, max_call_bytes=max_call_bytes)
    check_onnxruntime_version(spec.quantization, path, graph_needs=required_onnxruntime(graph))
    external = any(t.external is not None for t in graph.initializers)
    session, used = make_session(path, providers=providers, threads=threads, spin=spin, fallback=fallback,
                                 sess_options=sess_options, data=None if external else data)
    warn_unicode_version(spec.unicode)
    return Model(session, path, used, spec=spec, budget=budget, identity=hashlib.sha256(data).hexdigest())


CALL_STEPS = 256  # steps per session call for long inputs: memory stays that of 256 steps, calls stay few


class Model:
    """A loaded model: the shared engine under every stream, and the task-level calls.

    The model holds no per-call state: streams own theirs, so one model serves many streams
    in many threads (a single ``Stream`` must not be used by two threads at once).

    The engine calls, which streams, batchers, benchmarks and exporters use and nothing more:
    ``metadata`` (the :class:`ModelSpec`: I/O names, state shapes, zero state), ``start_state``
    and ``start_logits`` (where every stream begins), ``run`` (tokens and a state in, logits and
    the new state out, optionally into the caller's arrays) and ``step_binding`` (one-token
    steps over preallocated buffers). ``session`` is the onnxruntime session itself, for
    measuring against and for tools; nothing in rnnkit runs it except through these calls.
    """

    def __init__(self, session: Any, path: Path, providers: list[str], *, spec: ModelSpec, budget: Budget,
                 identity: str) -> None:
        self._session = session
        self.path = path
        self.providers = providers
        # Steps bind their CPU buffers with IOBinding; on a GPU each bound step would copy them over
        self._iobinding = providers == ["CPUExecutionProvider"]
        self.metadata: ModelSpec = spec
        self.budget = budget
        self.tokenizer: Tokenizer = tokenizer_from_config(spec.tokenizer)
        self.vocab = spec.vocab
        self.task = spec.task
        self.labels = list(spec.labels)
        self.n_out = spec.n_out
        self.identity = identity  # the SHA-256 of the bytes the session was built from
        self.inputs = tuple(TensorInfo(a.name, a.type, tuple(a.shape)) for a in session.get_inputs())
        self.outputs = tuple(TensorInfo(a.name, a.type, tuple(a.shape)) for a in session.get_outputs())
        if [o.name for o in self.outputs] != list(spec.output_names):  # run() reads outputs by position
            raise MetadataError(f"inconsistent model: onnxruntime reports outputs {[o.name for o in self.outputs]}, "
                                f"not {list(spec.output_names)}; re-export it", None)
        self._start_state, self._start_logits = self._start()

    # -- the engine -------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The onnxruntime ``InferenceSession`` (shared; for baselines and tools, not for streams)."""
        return self._session

    def zero_state(self, batch: int = 1) -> list[np.ndarray]:
        """Zero state arrays, each (layers, batch, hidden) float32."""
        return self.metadata.zero_state(batch)

    def start_state(self, batch: int = 1) -> list[np.ndarray]:
        """New arrays holding where every stream starts, each (layers, batch, hidden): after
        ``<bos>`` for an lm that learned it (its documents were framed so), zeros otherwise."""
        return [np.repeat(s, batch, axis=1) for s in self._start_state]

    def start_logits(self) -> np.ndarray | None:
        """A copy of the logits (n_out,) a stream starts with: an lm's after ``<bos>``, else None
        (an lm without ``<bos>`` predicts nothing before its first token)."""
        return None if self._start_logits is None else self._start_logits.copy()

    def step_binding(self, batch: int = 1, *, iobinding: bool | None = None) -> StepBinding:
        """Buffers and a call for one-token steps of ``batch`` rows (zero state to begin with).

        ``iobinding`` defaults to the session's best: IOBinding on CPU, plain runs elsewhere.
        """
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ConfigError(f"batch must be a positive integer, got {batch!r}")
        use = self._iobinding if iobinding is None else bool(iobinding)
        self.call_length(batch)  # a batch too large for even one step is refused before its buffers exist
        return StepBinding(self._session, self.metadata, batch, iobinding=use)

    def call_length(self, batch: int = 1) -> int:
        """The most steps one session call of ``batch`` rows carries in ``run_chunks``: ``CALL_STEPS``,
        fewer where ``max_call_bytes`` needs; raise :class:`BudgetError` if not even one fits."""
        fits = self.budget.max_seq(batch)
        if fits < 1:
            need, cap = self.budget.call_bytes(batch, 1), self.budget.max_call_bytes
            token = byte_size(self.budget.row_bytes)
            raise BudgetError(f"a batch of {batch} rows needs {byte_size(need)} a step ({token} "
                              f"a token: logits {self.n_out}, state {self.metadata.layers} × {self.metadata.hidden}), "
                              f"more than the {byte_size(cap)} a call may use: use smaller batches or raise "
                              "max_call_bytes", need, cap)
        return min(CALL_STEPS, fits)

    def run(self, tokens: np.ndarray, state: Sequence[np.ndarray] | None = None, *,
            out: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """One session call: tokens (B, T) int64 → logits (B, T, n_out), new state.

        ``state`` defaults to zeros (note: an lm's streams start after ``<bos>``, not at zeros,
        unless ``metadata.bos`` is False: pass ``start_state(B)``). With ``out`` (arrays shaped
        like the state, which may be the state arrays themselves) the new state is written into
        them and they are returned.
        A call larger than ``max_call_bytes`` raises :class:`BudgetError` before it runs (long
        texts go through ``run_chunks``); outputs that are not finite raise
        :class:`NonFiniteError`, and ``out`` is left as it was.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer) or 0 in tokens.shape:
            raise InputError(f"tokens must be a non-empty (batch, seq) integer array, got shape {tokens.shape} "
                             f"of {tokens.dtype}")
        batch, seq = tokens.shape
        need, cap = self.budget.call_bytes(batch, seq), self.budget.max_call_bytes
        if need > cap:
            token = byte_size(self.budget.row_bytes)
            raise BudgetError(f"a call of {batch} × {seq} tokens needs {byte_size(need)} ({token} "
                              f"a token), more than the {byte_size(cap)} a call may use: feed it through "
                              "run_chunks or streams, use smaller batches, or raise max_call_bytes", need, cap)
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= len(self.vocab):
            raise InputError(f"token id {lo if lo < 0 else hi} is outside the vocabulary (0..{len(self.vocab) - 1})")
        spec = self.metadata
        if state is None:
            state = spec.zero_state(batch)
        state = list(state)
        want = spec.state_shape(batch)
        for what, arrays in (("state", state), ("out", out)):
            if arrays is not None and (len(arrays) != spec.n_state or any(np.shape(a) != want for a in arrays)):
                raise StateError(f"{what} must be {spec.n_state} array(s) of shape {want} (layers, batch, hidden), "
                                 f"got {[np.shape(a) for a in arrays]}")
        state = [np.asarray(a, np.float32) for a in state]
        for a in state:  # onnxruntime's clamped activations can hide a NaN state: refuse it here
            check_finite(a, "state", given=True)
        feed = spec.feed(tokens.astype(np.int64, copy=False), state)
        logits, *new = self._session.run(None, feed)
        check_finite(logits, "logits")
        for a in new:
            check_finite(a, "state")
        if out is None:
            return logits, new
        for dst, src in zip(out, new):
            np.copyto(dst, src)
        return logits, list(out)

    def run_chunks(self, tokens: np.ndarray, state: Sequence[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """Run tokens (B, T) from ``state`` in calls of at most ``call_length(B)`` steps.

        After each call the new state is in ``state`` (arrays (layers, B, hidden), updated in
        place) and ``(first step, logits (B, t, n_out))`` is yielded, so a caller keeps what it
        needs — the last step, an argmax — and memory stays bounded whatever T is. fp32 files
        give the same numbers as one call.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or 0 in tokens.shape:
            raise InputError(f"tokens must be a non-empty (batch, seq) integer array, got shape {tokens.shape}")
        length = self.call_length(tokens.shape[0])
        for start in range(0, tokens.shape[1], length):
            logits, _ = self.run(tokens[:, start : start + length], state, out=state)
            yield start, logits

    def _start(self) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Where every stream begins: after ``<bos>`` for an lm that learned it (documents were
        framed so), else zeros and no logits.

        One step runs at load either way (an lm's ``<bos>``, else the last token id, its result
        discarded), so a graph onnxruntime cannot run, or whose weights give NaN, fails here
        rather than at the first call. Its sizes were checked from the file's bytes before the
        session existed.
        """
        import onnxruntime

        after_bos = self.task == "lm" and self.metadata.bos
        token = self.vocab.bos_id if after_bos else len(self.vocab) - 1
        quiet = onnxruntime.RunOptions()
        quiet.log_severity_level = 4  # the failure is ours to report, not onnxruntime's to print
        try:
            out = self._session.run(None, self.metadata.feed(np.array([[token]], np.int64), self.zero_state(1)),
                                    quiet)
        except Exception as e:  # onnxruntime's pybind errors
            why = " ".join(str(e).split())[:200]
            raise MetadataError(f"inconsistent model: onnxruntime cannot run one step of the graph ({why}); "
                                "re-export the model", None) from e
        if not all(np.isfinite(a).all() for a in out):
            raise NonFiniteError(f"{self.path}: one step of the model gives NaN or infinite values; its weights "
                                 "are corrupt: re-export a good checkpoint")
        if not after_bos:
            return self.zero_state(1), None
        logits, *state = out
        return state, logits[0, -1].copy()

    # -- streams ----------------------------------------------------------------------------
    def stream(self, snapshot: bytes | None = None, *, key: bytes | str | None = None) -> Stream:
        """A new stream at the start state, or one restored from ``Stream.snapshot()`` bytes.

        ``key`` (bytes, or a str encoded UTF-8) signs the stream's snapshots with HMAC-SHA256;
        with ``snapshot``, only bytes signed with that key restore. Without a key, a signed
        snapshot is refused too: a snapshot that was signed is meant to be checked.
        """
        if snapshot is not None:
            return Stream.restore(self, snapshot, key=key)
        return Stream(self, key=key)

    def batcher(self) -> StreamBatcher:
        """Steps and feeds many live streams (and tag streams) in one session call."""
        return StreamBatcher(self)

    def tag_stream(self, snapshot: bytes | None = None, *, key: bytes | str | None = None) -> TagStream:
        """Tags text as it arrives: ``feed`` returns the tokens (and words) whose tags are settled.

        With ``snapshot`` (``TagStream.snapshot()`` bytes), the tag stream as it was then.
        ``key`` signs and checks snapshots as ``stream(key=...)`` does.
        """
        self._require("tag", "tag_stream")
        if snapshot is not None:
            return TagStream.restore(self, snapshot, key=key)
        return TagStream(self, key=key)

    # -- text in, ids out -------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, self.vocab)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, self.vocab)

    # -- tasks ------------------------------------------------------------------------------
    def generate(self, prompt: str = "", *, max_tokens: int = 100, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop: str | Sequence[str] | None = None) -> Iterator[str]:
        """Yield text pieces continuing ``prompt`` (lm models). ``temperature=0`` is greedy.

        Ends at ``<eos>``, after ``max_tokens`` tokens, or before the first ``stop`` string. A
        model trained without ``<bos>`` (``metadata.bos`` False) needs a prompt with at least one
        token to begin from; one without ``<eos>`` ends only at ``max_tokens`` or a stop string.
        """
        self._require("lm", "generate")
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be str, got {type(prompt).__name__}")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise ConfigError(f"max_tokens must be a non-negative integer, got {max_tokens!r}")
        sampler = Sampler(temperature, top_k, top_p, seed)
        matcher = StopMatcher(stop)
        if not self.metadata.bos and not self.encode(prompt):
            raise InputError("this model was trained without <bos>, so it cannot begin a text: give generate a "
                             "prompt (one with at least one token)")
        return continuation(self, prompt, max_tokens, sampler, matcher)

    def classify(self, texts: str | Sequence[str] | None = None, *, tokens: Sequence[str] | Sequence[Sequence[str]]
                 | None = None, batch_size: int = 64) -> Prediction | list[Prediction]:
        """Label one text (→ Prediction) or many (→ list), read at each text's last token.

        Texts of uneven length share a batch: padding comes after a text, where a one-way
        RNN cannot see it. ``tokens=`` instead of texts takes text already cut: one list of str
        (→ Prediction) or a list of such lists (→ list), read as ``tag(tokens=)`` reads them.

        >>> model.classify(tokens=["这本书", "很", "好看"]).label  # doctest: +SKIP
        'pos'
        """
        self._require("classify", "classify")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if given_tokens("classify", texts, tokens):
            single, lists = token_lists(tokens, "classify")
            preds = self._classify_ids([token_ids(self, t) for t in lists], [None] * len(lists), batch_size)
            return preds[0] if single else preds
        single = isinstance(texts, str)
        if not single and (isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable)):
            raise TypeError(f"texts must be str or a sequence of str, got {type(texts).__name__}")
        items = [texts] if single else list(texts)
        preds: list[Prediction | None] = [None] * len(items)
        ids: list[list[int]] = [[] for _ in items]
        for i, text in enumerate(items):
            if isinstance(text, str) and len(text) > FEED_CHARS:  # read as a stream: memory of one piece
                preds[i] = self._classify_long(text)
            else:
                ids[i] = self._ids(text)
        preds = self._classify_ids(ids, preds, batch_size)
        return preds[0] if single else preds

    def _classify_ids(self, ids: list[list[int]], preds: list[Prediction | None],
                      batch_size: int) -> list[Prediction]:
        """``preds`` with every missing one filled in from ``ids``, in batches of similar length."""
        order = sorted((i for i in range(len(ids)) if preds[i] is None), key=lambda i: len(ids[i]))
        batch_size = max(1, min(batch_size, self.budget.max_batch()))  # as many rows as max_call_bytes allows
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            width = len(ids[chunk[-1]])
            tokens = np.full((len(chunk), width), self.vocab.pad_id, np.int64)  # (B, T)
            for row, i in enumerate(chunk):
                tokens[row, : len(ids[i])] = ids[i]
            last = [len(ids[i]) - 1 for i in chunk]
            for start, logits in self.run_chunks(tokens, self.start_state(len(chunk))):  # (B, t, n_out)
                for row, i in enumerate(chunk):
                    if start <= last[row] < start + logits.shape[1]:
                        preds[i] = self.prediction(logits[row, last[row] - start])
        return preds  # type: ignore[return-value]

    def _classify_long(self, text: str) -> Prediction:
        stream = self.stream()
        stream.feed(text)
        logits = stream.flush()
        if logits is None:
            raise InputError("a text has no tokens (it is empty or only whitespace); nothing to classify")
        return self.prediction(logits)

    def prediction(self, logits: np.ndarray) -> Prediction:
        """Softmax of one step's logits (n_out,) as a Prediction."""
        z = logits.astype(np.float64) - np.max(logits)
        p = np.exp(z)
        p /= p.sum()
        best = int(np.argmax(p))
        return Prediction(self.labels[best], float(p[best]), dict(zip(self.labels, map(float, p))))

    def tag(self, texts: str | Sequence[str] | None = None, *, tokens: Sequence[str] | Sequence[Sequence[str]]
            | None = None, batch_size: int = 64) -> TagResult | list[TagResult]:
        """Tag every token of a text (→ TagResult) or of many (→ list, ``batch_size`` texts a
        batched call): ``[(token, tag), ...]`` with tokens as spans of the text.

        For a B/M/E/S segmentation model, ``result.words`` holds the cut words. A tagger that
        reads ahead (``metadata.lookahead`` = k) is fed k ``<pad>`` tokens after the text, and
        the tag of token t is read at step t + k. A text's tags do not depend on the texts it
        shares a batch with.

        ``tokens=`` instead of texts tags text already cut into tokens, as given: one list of str
        (→ TagResult) or a list of such lists (→ list). Each token is normalised as the tokenizer
        normalises text and looked up in the vocabulary (unknown → ``<unk>``); the result's tokens
        are the ones given, its spans their places in ``"".join(tokens)``, its words joined tokens.

        >>> model.tag(tokens=list("我爱北京")).words  # doctest: +SKIP
        ['我', '爱', '北京']
        """
        self._require("tag", "tag")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if given_tokens("tag", texts, tokens):
            single, lists = token_lists(tokens, "tag")
            results = tag_token_lists(self, lists, batch_size)
            return results[0] if single else results
        if isinstance(texts, str):
            result = TagStream(self).end(texts)  # one session call: the text and the lookahead pads
            if not result:
                raise InputError("the text has no tokens to tag (it is empty or only whitespace)")
            return result
        if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be str or a sequence of str, got {type(texts).__name__}")
        texts = list(texts)
        for text in texts:
            self._text(text)
        results: list[TagResult] = []
        batch_size = max(1, min(batch_size, self.budget.max_batch()))  # as many rows as max_call_bytes allows
        batcher = self.batcher()
        for at in range(0, len(texts), batch_size):
            chunk = texts[at : at + batch_size]
            streams = [TagStream(self) for _ in chunk]
            settled = batcher.feed(streams, chunk)
            for i, (first, rest) in enumerate(zip(settled, batcher.flush(streams)), at):
                result = join_tags([first, rest])
                if not result:
                    raise InputError(f"text {i} has no tokens to tag (it is empty or only whitespace)")
                results.append(result)
        return results

    def evaluate(self, data: str | PathLike | Sequence[Any], *, batch_size: int = 64,
                 skip_bad: bool = False) -> Evaluation:
        """Score the model on a labelled file (read by training's reader for the model's task; ``skip_bad``
        skips bad lines) or a list of examples in training's shapes; see :mod:`rnnkit.runtime.evaluation`.

        >>> model.evaluate("test.tsv").metrics["accuracy"]  # doctest: +SKIP
        0.91
        """
        return evaluate_model(self, data, batch_size=batch_size, skip_bad=skip_bad)

    # -- helpers ----------------------------------------------------------------------------
    def _require(self, task: str, call: str) -> None:
        if self.task != task:
            fits = {"lm": "generate/stream", "classify": "classify/stream", "tag": "tag/stream"}[self.task]
            raise TaskError(f"{call}() needs {_a(task)} model; {self.path.name} is {_a(self.task)} model "
                            f"(use {fits})")

    def _text(self, text: Any) -> str:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        return text

    def _ids(self, text: Any) -> list[int]:
        ids = self.encode(self._text(text))
        if not ids:
            raise InputError("a text has no tokens (it is empty or only whitespace); nothing to classify")
        return ids

    def __repr__(self) -> str:
        s = self.metadata
        extra = (f", activation={s.activation!r}" if s.activation != "tanh" else "") + (
            f", bos={s.bos}, eos={s.eos}" if not (s.bos and s.eos) else "")
        return (f"Model({self.path.name!r}, task={s.task!r}, cell={s.cell!r}, layers={s.layers}, "
                f"hidden={s.hidden}, vocab={len(s.vocab)}{extra}, providers={self.providers})")


def _a(task: str) -> str:
    return f"an {task}" if task == "lm" else f"a {task}"
