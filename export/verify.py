"""``verify``: does an ONNX file still give its torch source's answers? For users' own CI.

The source is a checkpoint, a training folder, or a torch module's ``package.module:factory``.
The report holds what the file says against what the source is (task, architecture, tokenizer,
vocabulary, labels), the parity comparisons of the export gate (random ids at several shapes and
random states, token-by-token streaming, and for a module its own forward called as it expects),
the user's texts from ``data``, and how often the predicted labels, tags or next tokens agree.
A quantized file is held to the tolerance its export measured and stored.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.runtime import load_model
from rnnkit.runtime.contract import ModelSpec
from rnnkit.runtime.datafiles import read_text
from rnnkit.runtime.errors import ConfigError, ModuleError, ParityError
from rnnkit.runtime.tokenizers import Tokenizer, tokenizer_from_config
from rnnkit.train.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint

from .exporter import label_names, sample_ids, tokenizer_named
from .factory import is_factory_spec, load_factory, load_weights
from .graph import spec_from_checkpoint
from .module import SourceIds, build_model, detect_call, framing_of, module_parity, output_columns, source_ids
from .parity import ParityReport, check_parity, record, torch_outputs
from .parts import find_parts

__all__ = ["VerifyReport", "assert_parity", "verify"]

MAX_TEXTS = 256  # --data texts compared (the first ones)
MAX_TOKENS = 512  # tokens of a text compared
_AGREEMENT = {"lm": "next tokens", "classify": "labels", "tag": "tags"}


@dataclass
class VerifyReport:
    source: str
    model: str
    kind: str  # "checkpoint" or "module"
    quantization: str
    parity: ParityReport
    checks: list[dict[str, Any]] = field(default_factory=list)  # {"check", "ok", "detail"}
    agreement: dict[str, Any] = field(default_factory=dict)  # {"what", "agree", "total", "rate", "on"}
    data: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks) and not self.parity.mismatches

    @property
    def failures(self) -> list[str]:
        bad = [f"{c['check']}: {c['detail']}" for c in self.checks if not c["ok"]]
        return bad + [f"{m['case']} {m['output']}: max |Δ| {m['max_abs_diff']:.2e} > {m.get('tolerance', 0):.1e}"
                      for m in self.parity.mismatches]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able values (a difference that is not finite is ``None``: JSON has no inf)."""
        return _finite({"ok": self.ok, "source": self.source, "model": self.model, "kind": self.kind,
                        "quantization": self.quantization, "atol": self.parity.atol, "checks": self.checks,
                        "comparisons": self.parity.cases, "skipped": self.parity.skipped,
                        "agreement": self.agreement, "data": self.data})

    def table(self) -> list[str]:
        """The report as lines: one per check and comparison (output, shape, max |Δ|, tolerance, ✓/✗)."""
        rows = [("check", "output", "shape", "max |Δ|", "tolerance", "")]
        for c in self.checks:
            rows.append((c["check"], "", "", "", "", ("✓ " if c["ok"] else "✗ ") + c["detail"]))
        for c in self.parity.cases:
            shape = "×".join(map(str, c["shape"]))
            rows.append((c["case"], c["output"], shape, f"{c['max_abs_diff']:.2e}", f"{c.get('tolerance', 0):.1e}",
                         "✓" if c["ok"] else "✗"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
        lines += [f"skipped: {s}" for s in self.parity.skipped]
        a = self.agreement
        if a:
            lines.append(f"agreement: {a['what']} {a['agree']}/{a['total']} ({100 * a['rate']:.2f}%) on {a['on']}")
        n = len(self.checks) + len(self.parity.cases)
        bad = len(self.failures)
        stored = ", stored by the quantized export" if self.quantization != "none" else ""
        lines.append(f"verify: {'passed' if self.ok else 'FAILED'} — {n - bad} of {n} checks agree "
                     f"(tolerance {self.parity.atol:g} × max(1, max |x|){stored})")
        return lines


def verify(source: str | os.PathLike, model: str | os.PathLike, *, data: str | os.PathLike | None = None,
           atol: float | None = None, weights: str | os.PathLike | None = None, vocab: Any = None,
           labels: Any = None, task: str | None = None, tokenizer: str | Tokenizer | None = None,
           seed: int = 0) -> VerifyReport:
    """Compare the ONNX file ``model`` with its torch ``source`` (see the module); never raises on a
    disagreement — the report says it (``report.ok``). Bad input (a missing or unreadable file, a
    factory that fails) raises its typed error.

    ``atol`` defaults to 1e-5, or for a quantized file to the tolerance its export stored.
    ``weights``, ``vocab``, ``labels``, ``task`` and ``tokenizer`` (a name of
    :data:`~rnnkit.export.exporter.TOKENIZERS` or a runtime tokenizer) apply to a
    ``package.module:factory`` source, which holds none of them: each given is compared with the
    file (without ``vocab`` the module's ids are read from the file; without ``tokenizer`` the
    file's cuts ``data``).
    """
    if atol is not None and not atol > 0:
        raise ConfigError(f"atol must be > 0, got {atol}")
    path = Path(model)
    onnx_model = load_model(path, providers="cpu", threads=1)
    spec = onnx_model.metadata
    quant = spec.quantization.get("mode", "none")
    stored = spec.quantization.get("atol")
    tol = atol if atol is not None else (float(stored) if quant != "none" and stored else 1e-5)
    report = VerifyReport(str(source), str(path), "", quant, ParityReport(tol))
    text_source = str(source)
    module = None
    if is_factory_spec(text_source):
        report.kind = "module"
        module = load_factory(text_source)
        if weights is not None:
            load_weights(module, weights)
        module.eval()  # a factory's fresh module is in training mode: dropout would move every answer
        found = _module_source(module, spec, report, vocab=vocab, labels=labels, task=task, tokenizer=tokenizer)
        torch_model, ids, parts, text_tokenizer = found
        sample: list[list[int]] = []
    else:
        if any(v is not None for v in (weights, vocab, labels, task, tokenizer)):
            raise ConfigError("--weights, --vocab, --labels, --task and --tokenizer are for a package.module:factory "
                              "source; a checkpoint holds its own")
        report.kind = "checkpoint"
        ckpt = load_checkpoint(resolve_checkpoint(source))
        with torch.random.fork_rng(devices=[]):
            torch_model, text_tokenizer, ckpt_vocab = model_from_checkpoint(ckpt)
        _compare_specs(spec_from_checkpoint(ckpt), spec, report)
        ids = parts = None
        sample = sample_ids(ckpt, text_tokenizer, ckpt_vocab)
    if not all(c["ok"] for c in report.checks if c.get("structural")):
        report.parity.skipped.append("numbers: not compared, the file's model is not the source's (see above)")
        return report
    columns = None
    if parts is not None and spec.task == "lm":
        columns = output_columns(ids, spec.task, parts.outputs)
        columns = columns[columns >= 0]
    texts = _data_ids(data, text_tokenizer, onnx_model, report) if data is not None else []
    check_parity(torch_model, path, atol=tol, real_ids=texts[:8] or sample, seed=seed, raise_on_mismatch=False,
                 columns=columns, report=report.parity)
    if module is not None:
        try:
            call = detect_call(module, parts, ids, torch_model, spec.task, atol=max(tol, 1e-5))
        except ModuleError as e:  # the forward no longer computes its parts: a disagreement, not bad input
            _check(report, "module forward", False, str(e))
        else:
            module_parity(module, parts, ids, call, onnx_model, spec.task, report.parity, model=torch_model,
                          seed=seed)
    _agreement(torch_model, onnx_model, texts, columns, report, seed)
    return report


def assert_parity(source: str | os.PathLike, model: str | os.PathLike, **kwargs: Any) -> VerifyReport:
    """:func:`verify` for pytest: raise :class:`ParityError` listing every failure unless the file agrees.

    >>> def test_model_file_matches_torch():  # doctest: +SKIP
    ...     assert_parity("runs/intents", "intents.onnx", data="tests/texts.txt")
    """
    report = verify(source, model, **kwargs)
    if not report.ok:
        failures = report.failures
        raise ParityError(f"{report.model} does not give {report.source}'s answers: {failures[0]}"
                          + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""), report.parity.mismatches)
    return report


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _check(report: VerifyReport, name: str, ok: bool, detail: str, *, structural: bool = False) -> None:
    report.checks.append({"check": name, "ok": bool(ok), "detail": detail, "structural": structural})


def _compare_specs(expected: ModelSpec, got: ModelSpec, report: VerifyReport) -> None:
    """The file's metadata against the source's: what must be equal for the file to be the source's model."""
    for name, a, b, structural in (
        ("task", expected.task, got.task, True),
        ("cell", expected.cell, got.cell, True),
        ("layers", expected.layers, got.layers, True),
        ("hidden", expected.hidden, got.hidden, True),
        ("embed", expected.embed, got.embed, True),
        ("activation", expected.activation, got.activation, False),
        ("labels", list(expected.labels), list(got.labels), True),
        ("tag scheme", expected.tag_scheme, got.tag_scheme, False),
        ("lookahead", expected.lookahead, got.lookahead, False),
        ("framing", (expected.bos, expected.eos), (got.bos, got.eos), False),
    ):
        _check(report, name, a == b, "same" if a == b else f"the source has {_short(a)}, the file {_short(b)}",
               structural=structural)
    _compare_vocab(expected.vocab.tokens, got.vocab.tokens, report)
    _compare_tokenizers(expected.tokenizer, got.tokenizer, report)


def _compare_tokenizers(source: dict[str, Any], file: dict[str, Any], report: VerifyReport) -> None:
    """Tokenizer configs, key by key; the jieba version a file was cut with is a warning at load, not a difference."""
    differ = sorted(k for k in {*source, *file} if source.get(k) != file.get(k) and k != "jieba_version")
    _check(report, "tokenizer", not differ, "same" if not differ else "; ".join(
        f"{k}: source {source.get(k)!r}, file {file.get(k)!r}" for k in differ))


def _compare_vocab(expected: list[str], got: list[str], report: VerifyReport) -> None:
    if expected == got:
        _check(report, "vocabulary", True, f"same {len(got)} tokens", structural=True)
        return
    first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
    where = (f"id {first}: source {_short(expected[first])}, file {_short(got[first])}"
             if first < min(len(expected), len(got)) else f"the source has {len(expected)} tokens, the file {len(got)}")
    _check(report, "vocabulary", False, f"differs at {where}", structural=len(expected) != len(got))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _module_source(module, spec: ModelSpec, report: VerifyReport, *, vocab: Any, labels: Any, task: str | None,
                   tokenizer: str | Tokenizer | None):
    """rnnkit's copy of the module, its ids, its parts and the tokenizer that cuts ``--data``; the
    comparisons of what the module and the options say with what the file says, in ``report``."""
    parts = find_parts(module)
    info = spec.provenance.get("module") if isinstance(spec.provenance.get("module"), dict) else {}
    rows = parts.embedding.num_embeddings if parts.embedding is not None else parts.inputs
    if vocab is not None:
        ids = source_ids(vocab, rows=rows, specials=_special_tokens(vocab, info))
        _compare_vocab(ids.vocab.tokens, spec.vocab.tokens, report)
        recorded = info.get("source_ids")
        if ids.vocab.tokens == spec.vocab.tokens and isinstance(recorded, list) and list(ids.source) != recorded:
            _check(report, "module ids", False, "the vocabulary's ids differ from those the file was exported with")
    else:
        ids = _recorded_ids(info, spec)
        reach = max(ids.source)
        fits = f"the file's ids 0..{reach} fit the module's {rows}"
        _check(report, "module ids", reach < rows, fits if reach < rows else
               f"the file was exported with ids up to {reach}, and the module reads 0..{rows - 1}", structural=True)
    if task is not None:
        _check(report, "task", task == spec.task, "same" if task == spec.task else
               f"--task {task}, the file {spec.task}", structural=True)
    if labels is not None:
        given = label_names(labels, spec.task)
        _check(report, "labels", given == list(spec.labels), "same" if given == list(spec.labels) else
               f"the source has {_short(given)}, the file {_short(list(spec.labels))}", structural=True)
    for name, a, b in (("cell", parts.cell, spec.cell), ("layers", parts.rnn.num_layers, spec.layers),
                       ("hidden", parts.rnn.hidden_size, spec.hidden), ("embed", parts.inputs, spec.embed)):
        _check(report, name, a == b, "same" if a == b else f"the module has {a}, the file {b}", structural=True)
    _check(report, "activation", parts.activation == spec.activation,
           "same" if parts.activation == spec.activation else
           f"the module has {parts.activation}, the file {spec.activation}")
    if spec.task == "lm":
        framing = framing_of(ids, parts.outputs)
        _check(report, "framing", framing == (spec.bos, spec.eos), "same" if framing == (spec.bos, spec.eos) else
               f"the module's vocabulary gives (bos, eos) = {framing}, the file {(spec.bos, spec.eos)}")
    text_tokenizer = tokenizer_from_config(spec.tokenizer)
    if tokenizer is not None:
        text_tokenizer = tokenizer_named(tokenizer)
        _compare_tokenizers(text_tokenizer.to_config(), spec.tokenizer, report)
    else:
        report.parity.skipped.append("tokenizer: not compared (a module holds none; --tokenizer names the one its "
                                     "code cut text with)")
    if not all(c["ok"] for c in report.checks if c.get("structural")):
        return None, ids, parts, text_tokenizer
    try:
        model = build_model(parts, ids, spec.task, len(spec.labels))
    except ModuleError as e:
        _check(report, "outputs", False, str(e), structural=True)
        model = None
    return model, ids, parts, text_tokenizer


def _special_tokens(vocab: Any, info: dict) -> dict[str, str]:
    """The specials named at export (recorded as module ids), as tokens of ``vocab``."""
    recorded = info.get("specials") if isinstance(info.get("specials"), dict) else {}
    pairs = dict(vocab.items()) if isinstance(vocab, dict) else {t: i for i, t in enumerate(vocab)}
    by_id = {i: t for t, i in pairs.items()}
    return {name: by_id[i] for name, i in recorded.items() if isinstance(i, int) and i in by_id}


def _recorded_ids(info: dict, spec: ModelSpec) -> SourceIds:
    """The module ids the file was exported with (``provenance.module``), checked: the file is untrusted."""
    source = info.get("source_ids")
    specials = info.get("specials") if isinstance(info.get("specials"), dict) else {}
    ok = (isinstance(source, list) and len(source) == len(spec.vocab)
          and all(isinstance(u, int) and not isinstance(u, bool) and -1 <= u < (1 << 31) for u in source))
    used = [u for u in source if u >= 0] if ok else []
    if not ok or len(set(used)) != len(used) or not used:
        raise ModuleError("the file records no usable mapping of the module's ids (provenance.module.source_ids): "
                          "it was not written by export_module, or was edited; pass the module's vocabulary with "
                          "--vocab")
    return SourceIds(spec.vocab, tuple(source), {k: v for k, v in specials.items() if isinstance(v, int)})


def _data_ids(data, tokenizer, onnx_model, report: VerifyReport) -> list[list[int]]:
    """The user's texts as the source's ids; a check that the file's own tokenizer gives the same ids."""
    texts, _ = read_text(data)
    texts = texts[:MAX_TEXTS]
    spec = onnx_model.metadata
    ours = [tokenizer.encode(t, spec.vocab)[:MAX_TOKENS] for t in texts]
    theirs = [onnx_model.encode(t)[:MAX_TOKENS] for t in texts]
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    _check(report, "tokenization of --data", not differ,
           f"the same ids for {len(texts)} texts" if not differ else
           f"{len(differ)} of {len(texts)} texts tokenize differently (first: text {differ[0] + 1}: "
           f"source {_short(ours[differ[0]][:8])}, file {_short(theirs[differ[0]][:8])})")
    report.data = {"path": str(data), "texts": len(texts), "tokens": sum(map(len, ours))}
    if spec.task == "lm" and spec.bos:
        ours = [[spec.vocab.bos_id, *ids] for ids in ours]
    return [ids for ids in ours if ids]


def _agreement(torch_model, onnx_model, texts: list[list[int]], columns, report: VerifyReport, seed: int) -> None:
    """How often torch's and the file's predictions agree: on the texts, or on random ids without them."""
    spec = onnx_model.metadata
    if texts:
        rows, on = [np.array([ids], np.int64) for ids in texts], f"{len(texts)} texts of --data"
    else:
        rng = np.random.default_rng(seed + 1)
        rows, on = [rng.integers(0, len(spec.vocab), (16, 64), dtype=np.int64)], "16 × 64 random ids"
    agree = total = 0
    worst = 0.0
    for tokens in rows:
        state = spec.zero_state(tokens.shape[0])
        expected = torch_outputs(torch_model, tokens, state)[0]
        got, _ = onnx_model.run(tokens, state)
        if columns is not None:
            expected, got = expected[..., columns], got[..., columns]
        if texts:
            record(report.parity, "data", "logits", expected, got)
        if spec.task == "classify":
            expected, got = expected[:, -1:], got[:, -1:]
        agree += int((expected.argmax(-1) == got.argmax(-1)).sum())
        total += int(np.prod(expected.shape[:-1]))
        worst = max(worst, float(np.max(np.abs(expected - got))))
    if texts:
        _merge_data_rows(report.parity, len(texts))
    report.agreement = {"what": _AGREEMENT[spec.task], "agree": agree, "total": total,
                        "rate": agree / total if total else 1.0, "on": on, "max_abs_diff": worst}


def _merge_data_rows(parity: ParityReport, n: int) -> None:
    """One table row for the texts of --data (the worst of them), not one per text."""
    rows = [c for c in parity.cases if c["case"] == "data"]
    if not rows:
        return
    parity.cases[:] = [c for c in parity.cases if c["case"] != "data"]
    worst = max(rows, key=lambda c: c["max_scaled_diff"])
    parity.cases.append({**worst, "case": f"--data ({n} texts)", "shape": worst["shape"],
                         "ok": all(c["ok"] for c in rows)})
