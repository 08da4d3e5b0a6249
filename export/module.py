"""A user's torch module as rnnkit's model: its ids remapped, its weights copied, its forward understood.

``source_ids`` maps the module's vocabulary onto rnnkit's (specials at ids 0–3, the module's
tokens after them in the module's id order); ``build_model`` copies the module's weights into an
:class:`RNNModel` that computes the same outputs for the remapped ids (so the rest of the exporter,
the parity gate and quantization included, is the one rnnkit's own checkpoints use);
``detect_call`` finds how the module's own ``forward`` wants to be called and how its outputs are
laid out, by calling it; ``module_parity`` then compares that forward with the ONNX file.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.runtime.errors import ModuleError
from rnnkit.runtime.vocab import MAX_TOKEN_CHARS, SPECIALS, Vocabulary
from rnnkit.train.model import ModelConfig, RNNModel

from .parity import ParityReport, differences, float64_runner, lazy, random_state, record, torch_outputs
from .parts import ModuleParts, find_parts

__all__ = ["NEVER", "ForwardCall", "SourceIds", "attributes_of", "build_model", "detect_call", "framing_of",
           "module_parity", "output_columns", "restore_attributes", "source_ids"]

NEVER = -1e4  # the logit of a token the module cannot predict: large, negative, finite
# (batch, seq) shapes the module's forward is compared at; a forward that fixes the batch size is
# compared at that size.
FORWARD_SHAPES = ((1, 1), (1, 9), (3, 17), (4, 64), (2, 300))
_PROBE = (3, 17)  # batch ≠ seq, both > 1: every layout below has its own shape
LAYOUTS = ("batch, seq, out", "seq, batch, out", "batch·seq, out", "seq·batch, out", "batch, out (last step)")
TRANSFORMS = ("logits", "log_softmax", "softmax")
# Telling the layouts and transforms apart needs no tighter tolerance than this; the parity gate
# then holds the module to the caller's atol, and names a rounding difference as one.
DETECT_ATOL = 1e-4


@dataclass(frozen=True)
class SourceIds:
    """The module's ids in rnnkit's vocabulary: ``source[r]`` is the module id of rnnkit id ``r`` (−1: none)."""

    vocab: Vocabulary
    source: tuple[int, ...]
    specials: dict[str, int]  # rnnkit special name → the module's id, for those the module has

    def to_rnnkit(self, module_ids: np.ndarray) -> np.ndarray:
        """rnnkit ids of ``module_ids`` (any shape; each must have a token)."""
        table = np.full(max(self.source) + 1, -1, np.int64)
        for r, u in enumerate(self.source):
            if u >= 0:
                table[u] = r
        return table[module_ids]

    def module_ids(self) -> np.ndarray:
        """Every module id that has a token, ascending."""
        return np.array(sorted(u for u in self.source if u >= 0), np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"source_ids": list(self.source), "specials": dict(self.specials)}


def source_ids(vocab: Sequence[str] | Mapping[str, int], *, rows: int,
               specials: Mapping[str, str] | None = None) -> SourceIds:
    """rnnkit's vocabulary for a module whose ``vocab`` is a list (index = id) or a dict token → id.

    A token named ``<pad>``, ``<unk>``, ``<bos>`` or ``<eos>`` — or named in ``specials``
    (``{"bos": "<s>", "unk": "[UNK]"}``) — becomes rnnkit's special of that name; ``rows`` is how
    many ids the module reads (its embedding's rows, or the one-hot width).
    """
    pairs = _pairs(vocab)
    named = {name: token for name, token in zip(SPECIALS, SPECIALS.values()) if token in pairs}
    for name, token in (specials or {}).items():
        if name not in SPECIALS:
            raise ModuleError(f"unknown special {name!r}; rnnkit's are {', '.join(SPECIALS)}")
        if not isinstance(token, str) or token not in pairs:
            raise ModuleError(f"the special {name} is {token!r}, which is not in the vocabulary")
        if named.get(name, token) != token and named[name] == SPECIALS[name]:
            raise ModuleError(f"both {token!r} and {SPECIALS[name]!r} would be {name}: the vocabulary has both; "
                              f"name one of them in specials")
        named[name] = token
    if len(set(named.values())) < len(named):
        raise ModuleError(f"one token is named for two specials: {named}")
    big = [u for u in pairs.values() if u >= rows]
    if big:
        raise ModuleError(f"the vocabulary has id {max(big)}, but the module reads ids 0..{rows - 1}: this vocabulary "
                          "is not the module's")
    regular = sorted(((u, t) for t, u in pairs.items() if t not in named.values()), key=lambda p: p[0])
    reserved = [t for _, t in regular if t in SPECIALS.values()]
    if reserved:
        raise ModuleError(f"the token {reserved[0]!r} is spelled like an rnnkit special but is not mapped to it")
    tokens = [*SPECIALS.values(), *(t for _, t in regular)]
    source = [pairs[named[name]] if name in named else -1 for name in SPECIALS] + [u for u, _ in regular]
    return SourceIds(Vocabulary(tokens), tuple(source), {name: pairs[t] for name, t in named.items()})


def _pairs(vocab: Sequence[str] | Mapping[str, int]) -> dict[str, int]:
    if isinstance(vocab, Mapping):
        pairs = dict(vocab.items())
    elif isinstance(vocab, Sequence) and not isinstance(vocab, (str, bytes)):
        pairs = {}
        for i, token in enumerate(vocab):
            if token in pairs:
                raise ModuleError(f"the vocabulary lists {token!r} twice (ids {pairs[token]} and {i}); each token "
                                  "needs one id")
            pairs[token] = i
    else:
        raise ModuleError(f"vocab must be a list of tokens (index = id) or a dict token → id, got "
                          f"{type(vocab).__name__}")
    if len(pairs) < 1:
        raise ModuleError("the vocabulary is empty")
    seen: dict[int, str] = {}
    for token, i in pairs.items():
        if not isinstance(token, str) or not token:
            raise ModuleError(f"vocabulary tokens must be non-empty strings, got {token!r}")
        if len(token) > MAX_TOKEN_CHARS:
            raise ModuleError(f"the token {token[:20]!r}… is {len(token)} characters, more than the {MAX_TOKEN_CHARS} "
                              "a model file holds")
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise ModuleError(f"the id of {token!r} must be a non-negative integer, got {i!r}")
        if int(i) in seen:
            raise ModuleError(f"{seen[int(i)]!r} and {token!r} share id {i}; each id names one token")
        seen[int(i)] = token
    return {t: int(i) for t, i in pairs.items()}


def build_model(parts: ModuleParts, ids: SourceIds, task: str, n_labels: int = 0) -> RNNModel:
    """rnnkit's model computing what ``parts`` compute, on rnnkit ids (an lm's logits for tokens the
    module never predicts are :data:`NEVER`)."""
    rnn = parts.rnn
    outputs = parts.outputs
    if task == "lm":
        named = {u for u in ids.source if u >= 0}
        unnamed = [u for u in range(outputs) if u not in named]
        if unnamed:
            raise ModuleError(f"the module predicts {outputs} tokens but the vocabulary names no token for output "
                              f"{unnamed[0]}{f' (and {len(unnamed) - 1} more)' if len(unnamed) > 1 else ''}: an lm's "
                              "vocabulary needs a token for every output")
    elif outputs != n_labels:
        raise ModuleError(f"the module gives {outputs} outputs a step but {n_labels} labels were given: pass the "
                          "labels in output order, one per output")
    config = ModelConfig(cell=parts.cell, vocab_size=len(ids.vocab), n_out=len(ids.vocab) if task == "lm" else outputs,
                         embed=parts.inputs, hidden=rnn.hidden_size, layers=rnn.num_layers,
                         activation=parts.activation)
    with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep the caller's RNG
        model = RNNModel(config)
    source = torch.tensor(ids.source)  # (V,)
    has = source >= 0
    with torch.no_grad():
        table = _input_table(parts)  # (rows, E)
        model.embedding.weight.zero_()
        model.embedding.weight[has] = table[source[has]]
        for name, value in model.rnn.named_parameters():
            mine = getattr(rnn, name, None)
            value.copy_(mine.detach().float() if mine is not None else torch.zeros_like(value))  # bias=False: zeros
        weight, bias = _head(parts)  # (outputs, H), (outputs,)
        if task == "lm":
            model.head.weight.zero_()
            model.head.bias.fill_(NEVER)
            predicted = has & (source < outputs)
            model.head.weight[predicted] = weight[source[predicted]]
            model.head.bias[predicted] = bias[source[predicted]]
        else:
            model.head.weight.copy_(weight)
            model.head.bias.copy_(bias)
    return model.eval()


def _input_table(parts: ModuleParts) -> torch.Tensor:
    """What the RNN reads for each module id: the embedding's rows (renormed as the layer would), or one-hot rows."""
    if parts.embedding is None:
        return torch.eye(parts.inputs)
    e = parts.embedding
    table = e.weight.detach().float().cpu().clone()
    if e.max_norm is not None:  # nn.Embedding rescales a looked-up row whose norm exceeds max_norm
        norms = table.norm(p=e.norm_type, dim=1, keepdim=True)
        table = torch.where(norms > e.max_norm, table * (e.max_norm / (norms + 1e-7)), table)
    return table


def _head(parts: ModuleParts) -> tuple[torch.Tensor, torch.Tensor]:
    h = parts.head
    if h is None:  # the hidden state is the output
        return torch.eye(parts.outputs), torch.zeros(parts.outputs)
    weight = h.weight.detach().float().cpu()
    bias = h.bias.detach().float().cpu() if h.bias is not None else torch.zeros(h.out_features)
    return weight, bias


# -- the module's own forward ---------------------------------------------------------------------

@dataclass(frozen=True)
class ForwardCall:
    """How the module's forward is called and what it returns."""

    inputs: str  # "ids" (int64) or "onehot" (float vectors)
    seq_first: bool  # inputs (seq, batch[, V]) rather than (batch, seq[, V])
    state: bool  # the hidden state is passed as the second argument
    layout: str  # one of LAYOUTS: how the output tensor holds (batch, seq, out)
    transform: str  # one of TRANSFORMS: what the outputs are of rnnkit's logits
    batch: int | None = None  # the one batch size the forward accepts, when it fixes one

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "seq_first": self.seq_first, "state": self.state, "layout": self.layout,
                "output": self.transform, "batch": self.batch}

    def describe(self) -> str:
        state = ", state" if self.state else ""
        order = "(seq, batch)" if self.seq_first else "(batch, seq)"
        return f"forward({self.inputs} {order}{state}) → {self.transform} [{self.layout}]"


def run_forward(module: nn.Module, parts: ModuleParts, call: ForwardCall, module_ids: np.ndarray,
                state: Sequence[np.ndarray] | None) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """The module's output for ``module_ids`` (B, T) from ``state``, and the state it returns (if it does)."""
    weight = parts.rnn.weight_ih_l0
    ids = torch.from_numpy(module_ids).to(weight.device)
    x = ids.t() if call.seq_first else ids
    if call.inputs == "onehot":
        x = nn.functional.one_hot(x, parts.inputs).to(weight.dtype)
    args: list[Any] = [x]
    if call.state:
        h = [torch.from_numpy(np.ascontiguousarray(s)).to(weight.device, weight.dtype) for s in state]
        args.append(tuple(h) if parts.cell == "lstm" else h[0])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nn.LogSoftmax() without dim, and other warnings of the user's code
        result = module(*args)
    out = result[0] if isinstance(result, (tuple, list)) and result else result
    if not isinstance(out, torch.Tensor):
        raise ModuleError(f"the module's forward returned {type(out).__name__}, not a tensor (or a tuple starting "
                          "with one)")
    hidden = None
    if isinstance(result, (tuple, list)) and len(result) > 1:
        h = result[1]
        h = list(h) if isinstance(h, (tuple, list)) else [h]
        if all(isinstance(t, torch.Tensor) for t in h):
            hidden = [t.detach().double().cpu().numpy() for t in h]
    return out.detach().double().cpu().numpy(), hidden  # float64: exact for a float32 module, kept for a float64 one


def to_module_space(logits: np.ndarray, columns: np.ndarray | None, layout: str, transform: str) -> np.ndarray:
    """rnnkit's logits (B, T, n_out) as the module gives them: its columns, its transform, its layout."""
    x = logits if columns is None else logits[..., columns]
    x = x.astype(np.float64)
    if transform != "logits":
        x = x - x.max(-1, keepdims=True)
        x = x - np.log(np.exp(x).sum(-1, keepdims=True))
        if transform == "softmax":
            x = np.exp(x)
    b, t, o = x.shape
    if layout == "batch, seq, out":
        return x
    if layout == "seq, batch, out":
        return x.transpose(1, 0, 2)
    if layout == "batch·seq, out":
        return x.reshape(b * t, o)
    if layout == "seq·batch, out":
        return x.transpose(1, 0, 2).reshape(t * b, o)
    return x[:, -1]


def framing_of(ids: SourceIds, outputs: int) -> tuple[bool, bool]:
    """An lm's (bos, eos): whether it reads a ``<bos>`` token, and whether it can predict ``<eos>``
    (a vocabulary's ``<eos>`` past the head's outputs is never predicted)."""
    eos = ids.specials.get("eos")
    return "bos" in ids.specials, eos is not None and eos < outputs


def output_columns(ids: SourceIds, task: str, outputs: int) -> np.ndarray | None:
    """The rnnkit logit column of each of the module's outputs (None: the same columns, classify and tag)."""
    if task != "lm":
        return None
    table = np.full(outputs, -1, np.int64)
    for r, u in enumerate(ids.source):
        if 0 <= u < outputs:
            table[u] = r
    return table


def detect_call(module: nn.Module, parts: ModuleParts, ids: SourceIds, model: RNNModel, task: str, *,
                atol: float = 1e-5) -> ForwardCall:
    """How ``module``'s forward is called and lays out its outputs, found by calling it and comparing
    with ``model`` (rnnkit's copy of its parts); :class:`ModuleError` when no way agrees."""
    takes = _positional(module)
    states = [True] if takes >= 2 else [False]
    if takes >= 2 and _second_is_optional(module):
        states = [True, False]
    kinds = ["ids"] if parts.embedding is not None else ["onehot", "ids"]
    orders = [not parts.rnn.batch_first, parts.rnn.batch_first]
    columns = output_columns(ids, task, parts.outputs)
    rng = np.random.default_rng(0)
    tried: list[str] = []
    best: tuple[float, str] | None = None
    for batch in _batches(module):
        b, t = (batch, _PROBE[1]) if batch else _PROBE
        module_ids = rng.choice(ids.module_ids(), (b, t))
        state = [rng.uniform(-0.5, 0.5, (parts.rnn.num_layers, b, parts.rnn.hidden_size)).astype(np.float32)
                 for _ in range(2 if parts.cell == "lstm" else 1)]
        for kind in kinds:
            for seq_first in orders:
                for with_state in states:
                    start = state if with_state else [np.zeros_like(s) for s in state]
                    expected = torch_outputs(model, ids.to_rnnkit(module_ids), start)[0]
                    probe = ForwardCall(kind, seq_first, with_state, LAYOUTS[0], TRANSFORMS[0], batch)
                    before = attributes_of(module)
                    try:
                        out, _ = run_forward(module, parts, probe, module_ids, start)
                    except ModuleError:
                        raise
                    except Exception as e:  # the user's code: any error means "not called this way"
                        tried.append(f"{probe.describe().split(' →')[0]}: {type(e).__name__}: "
                                     f"{' '.join(str(e).split())[:120]}")
                        restore_attributes(module, before)
                        continue
                    _refuse_carried_state(module, parts, probe, module_ids, start, out, before)
                    for layout in LAYOUTS:
                        for transform in TRANSFORMS:
                            want = to_module_space(expected, columns, layout, transform)
                            if want.shape != out.shape:
                                continue
                            _, scaled = differences(want, out)
                            if scaled <= max(atol, DETECT_ATOL):
                                return ForwardCall(kind, seq_first, with_state, layout, transform, batch)
                            if best is None or scaled < best[0]:
                                best = (scaled, f"as {layout} {transform}, it differs by {scaled:.2e}")
                    if best is None:
                        best = (float("inf"), f"its output is shaped {list(out.shape)}, which no layout of "
                                              f"(batch, seq, out) = ({b}, {t}, {parts.outputs}) gives")
    if best is None:
        raise ModuleError(f"the module's forward failed every way rnnkit called it ({tried[0] if tried else '?'}); "
                          f"it should take token ids {'(or one-hot vectors) ' if parts.embedding is None else ''}"
                          "shaped as its RNN reads them, and optionally the hidden state")
    raise ModuleError(f"the module's forward does not give what its parts compute ({parts.describe()}): {best[1]}; "
                      "something else happens between them (an activation, a residual, attention…), which rnnkit "
                      "cannot map")


def attributes_of(module: nn.Module) -> dict[tuple[str, str], Any]:
    """Every plain attribute of the module and its children (not parameters or buffers), by (path, name)."""
    return {(path, key): value for path, m in module.named_modules() for key, value in vars(m).items()
            if not key.startswith("_") and key != "training"}


def restore_attributes(module: nn.Module, before: dict[tuple[str, str], Any]) -> list[str]:
    """Put back the attributes a forward set to tensors (a carried ``self.hidden``); their names."""
    changed = []
    for path, m in module.named_modules():
        for key, value in list(vars(m).items()):
            if key.startswith("_") or key == "training":  # torch's own (an RNN's _flat_weights)
                continue
            old = before.get((path, key), _MISSING)
            held = value if isinstance(value, (tuple, list)) else (value,)
            if value is not old and any(isinstance(v, torch.Tensor) for v in held):
                changed.append(f"{path}.{key}" if path else key)
                if old is _MISSING:
                    delattr(m, key)
                else:
                    setattr(m, key, old)
    return changed


def _refuse_carried_state(module: nn.Module, parts: ModuleParts, call: ForwardCall, module_ids: np.ndarray,
                          state: Sequence[np.ndarray], out: np.ndarray, before: dict[tuple[str, str], Any]) -> None:
    """:class:`ModuleError` when the forward carries state from one call to the next in an attribute.

    A forward that sets a tensor attribute is called again on the same input: if the answer moves,
    the attribute is read back (``self.hidden`` carried), and a text's answer would depend on the
    texts before it. One that only keeps a copy (attention weights for a plot) is fine. Either
    way the attributes are put back as they were.
    """
    now = attributes_of(module)
    if now.keys() == before.keys() and all(v is before[k] for k, v in now.items()):
        return
    try:
        again, _ = run_forward(module, parts, call, module_ids, state)
        moved = again.shape != out.shape or not np.array_equal(again, out)
    except Exception:  # the second call fails: the first left something behind
        moved = True
    changed = restore_attributes(module, before)
    if moved and changed:
        raise ModuleError(f"the forward keeps state between calls in self.{changed[0]} (the same input gave "
                          "another answer the second time), so a text's answer would depend on the texts before "
                          "it; take the hidden state as forward's second argument and return it, as nn.RNN does")


_MISSING = object()


def _positional(module: nn.Module) -> int:
    """How many positional arguments ``module.forward`` takes (2 when it takes any number)."""
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _second_is_optional(module: nn.Module) -> bool:
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return True
    return len(params) < 2 or params[1].kind is params[1].VAR_POSITIONAL or params[1].default is not params[1].empty


def _batches(module: nn.Module) -> list[int | None]:
    """Batch sizes to call the forward at: any (None), then those the module's attributes fix (``self.batch_size``)."""
    fixed = sorted({int(v) for k, v in vars(module).items()
                    if "batch" in k.lower() and isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 64})
    return [None, *fixed, *([1] if 1 not in fixed else [])]


def module_parity(module: nn.Module, parts: ModuleParts, ids: SourceIds, call: ForwardCall, onnx_model: Any,
                  task: str, report: ParityReport, *, model: RNNModel, seed: int = 0) -> None:
    """Add to ``report`` the module's own forward against the ONNX file, at every shape the forward accepts.

    A comparison beyond the tolerance is judged against the float64 answer (see
    :func:`check_parity`): the module's own, run in float64; or, for a forward that cannot run in
    float64 (it builds float32 tensors itself), that of ``model`` — rnnkit's copy of the parts —
    but only where the module's float32 outputs equal the copy's within the tolerance, so a
    module that computes something a little different is never judged by its parts.
    """
    rng = np.random.default_rng(seed)
    columns = output_columns(ids, task, parts.outputs)
    shapes = [(call.batch, t) for t in (1, 9, 64, 300)] if call.batch else FORWARD_SHAPES
    spec = onnx_model.metadata
    exact_module = lazy(lambda: _float64_copy(module))
    exact_parts = float64_runner(model)
    compared = len(report.cases)
    for b, t in shapes:
        module_ids = rng.choice(ids.module_ids(), (b, t))
        state = random_state(rng, spec, b) if call.state else spec.zero_state(b)
        try:
            out, hidden = run_forward(module, parts, call, module_ids, state)
        except Exception as e:  # the user's forward refuses this shape (it fixes a length, say)
            report.skipped.append(f"module forward b={b} t={t}: the forward refused it ({type(e).__name__}: "
                                  f"{' '.join(str(e).split())[:100]})")
            continue
        tokens = ids.to_rnnkit(module_ids)
        logits, new = onnx_model.run(tokens, state)
        got = to_module_space(logits, columns, call.layout, call.transform)
        mine = [out, *(hidden or [])]

        def exact(i: int, module_ids=module_ids, state=state, tokens=tokens, mine=mine) -> np.ndarray | None:
            twin = exact_module()
            try:
                if twin is not None:
                    out64, hidden64 = run_forward(twin[0], twin[1], call, module_ids, state)
                    return out64 if i == 0 else hidden64[i - 1]
            except Exception:  # the forward builds float32 tensors itself: it cannot run in float64
                pass
            copy32, copy64 = torch_outputs(model, tokens, state), exact_parts(tokens, state)
            if i == 0:
                copy32, copy64 = (to_module_space(x[0], columns, call.layout, call.transform) for x in (copy32, copy64))
            else:
                copy32, copy64 = copy32[i], copy64[i]
            return copy64 if differences(copy32, mine[i])[1] <= report.atol else None
        record(report, f"module forward b={b} t={t}", "output", out, got, exact=lambda exact=exact: exact(0))
        if hidden is not None and [h.shape for h in hidden] == [s.shape for s in new]:
            for i, (name, e, g) in enumerate(zip(spec.output_names[1:], hidden, new), start=1):
                record(report, f"module forward b={b} t={t}", name, e, g, exact=lambda i=i, exact=exact: exact(i))
    if len(report.cases) == compared:  # the forward ran when its convention was found, then never again
        first = report.skipped[-1].split(": ", 1)[-1] if report.skipped else "?"
        report.cases.append({"case": "module forward", "output": f"output (no shape ran: {first})", "shape": [],
                             "max_abs_diff": float("inf"),
                             "max_scaled_diff": float("inf"), "tolerance": report.atol, "ok": False})


def _float64_copy(module: nn.Module) -> tuple[nn.Module, ModuleParts] | None:
    """A float64 copy of the user's module and its parts, or None when it cannot be copied."""
    try:
        twin = copy.deepcopy(module).double().eval()
    except Exception:  # the user's module may hold what deepcopy cannot copy (a lock, a file)
        return None
    return twin, find_parts(twin)
