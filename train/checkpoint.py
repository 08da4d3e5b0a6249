"""Checkpoints: a dict of plain values plus state dicts, written atomically, loaded safely.

Layout (``CHECKPOINT_VERSION`` 1)::

    {"rnnkit_checkpoint": 1, "rnnkit": "0.1.0", "torch": "2.13.0", "created": iso-8601,
     "task": "lm" | "classify" | "tag", "tag_scheme": "none" | "tags" | "bmes",
     "model_config": {...}, "train_config": {...},
     "tokenizer": {...}, "vocab": [tokens], "labels": [labels],
     "model": state_dict, "optimizer": state_dict, "scheduler": state_dict,
     "progress": {"epoch", "batch", "step", "tokens", "seconds", "loss_sum", "loss_count",
                  "best", "best_epoch", "bad_epochs", "done"},
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor] or None}, "carry": lm state tensors or None,
     "history": [per-epoch metrics], "metrics": {...},
     "split": {...}, "data": {"source", "fingerprint", "skipped"}, "valid_sample": [...]}

``checkpoint.pt`` (the best model) has no ``optimizer``, ``scheduler``, ``rng`` or ``carry``;
``last.pt`` (for --resume) has no ``valid_sample``. Everything loads with
``torch.load(weights_only=True)``: no pickled classes, ever.
"""

from __future__ import annotations

import datetime as _dt
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from rnnkit.runtime.contract import TAG_SCHEMES, TASKS, rnnkit_version
from rnnkit.runtime.errors import CheckpointError, ConfigError, MetadataError, WriteError
from rnnkit.runtime.files import atomic_path
from rnnkit.runtime.tokenizers import Tokenizer, tokenizer_from_config
from rnnkit.runtime.vocab import Vocabulary

from .model import ModelConfig, RNNModel

__all__ = [
    "BEST_NAME",
    "CHECKPOINT_VERSION",
    "LAST_NAME",
    "check_resumable",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_VERSION = 1
BEST_NAME = "checkpoint.pt"  # the best model so far: what export reads
LAST_NAME = "last.pt"  # the latest state: what --resume reads
_REQUIRED = ("task", "model_config", "tokenizer", "vocab", "labels", "model")
# The type of every field a reader uses (when present): a file that torch loads can still hold
# anything, and export or --resume must fail with a CheckpointError, not deep inside.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "task": str, "tag_scheme": str, "model_config": dict, "train_config": dict, "tokenizer": dict,
    "vocab": list, "labels": list, "model": dict, "optimizer": dict, "scheduler": dict, "progress": dict,
    "rng": dict, "history": list, "metrics": dict, "split": dict, "data": dict, "valid_sample": list,
    "rnnkit": str, "torch": str, "created": str,
}
_PROGRESS_TYPES: dict[str, type | tuple[type, ...]] = {
    "epoch": int, "batch": int, "step": int, "tokens": int, "seconds": (int, float), "loss_sum": (int, float),
    "loss_count": int, "best": (list, type(None)), "best_epoch": (int, type(None)), "bad_epochs": int,
    "done": bool,
}


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file + rename); a failure raises WriteError."""
    payload = {
        "rnnkit_checkpoint": CHECKPOINT_VERSION,
        "rnnkit": rnnkit_version(),
        "torch": str(torch.__version__),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **payload,
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except RuntimeError as e:
        # torch's zip writer reports a failed write (disk full, file size limit) as RuntimeError.
        raise WriteError(f"could not write {path}: {_first_line(e)}; the previous file (if any) is untouched") from e
    return Path(path)


def resolve_checkpoint(path: str | Path, name: str = BEST_NAME) -> Path:
    """``path`` itself, or ``path/name`` when ``path`` is a training output folder."""
    path = Path(path)
    try:
        if path.is_dir():
            path = path / name
        if not path.exists():
            raise CheckpointError(f"no checkpoint at {path}; train one with `rnnkit train --out DIR`")
        if not path.is_file():  # reading a FIFO or a device would block or never end
            raise CheckpointError(f"{path} is not a regular file (a pipe or a device); give a checkpoint.pt")
        with open(path, "rb"):
            pass
    except OSError as e:  # a folder on the way or the file itself not readable, a name too long…
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}; check the path and its permissions") from e
    return path


def load_checkpoint(path: str | Path, *, name: str = BEST_NAME) -> dict[str, Any]:
    """Load and check a checkpoint (a file, or a training folder's ``name``)."""
    path = resolve_checkpoint(path, name)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip; anything else is not a checkpoint
        raise CheckpointError(f"{path} is not a torch checkpoint (truncated, or not a file torch.save wrote); "
                              "give the checkpoint.pt that `rnnkit train` wrote")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} holds pickled Python objects (e.g. a whole module saved with torch.save(model)); "
            "rnnkit loads only plain checkpoints for safety: save model.state_dict() instead"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a torch file): {_first_line(e)}"
        ) from e
    if not isinstance(ckpt, dict) or "rnnkit_checkpoint" not in ckpt:
        raise CheckpointError(f"{path} is a torch file but not an rnnkit checkpoint")
    version = ckpt["rnnkit_checkpoint"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} has a damaged format field ({version!r:.20}); it is not a checkpoint "
                              "rnnkit wrote")
    if version > CHECKPOINT_VERSION or version < 1:
        raise CheckpointError(
            f"{path} is checkpoint format {version!r}; this rnnkit reads {CHECKPOINT_VERSION}: upgrade rnnkit"
        )
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it is damaged or not from rnnkit train")
    problem = _field_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path} is damaged or was edited: {problem}; restore it or retrain")
    return ckpt


def check_resumable(ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise CheckpointError unless ``ckpt`` (a loaded ``last.pt``) holds what --resume reads."""
    missing = [k for k in ("train_config", "progress", "history", "data", "optimizer", "scheduler", "rng")
               if k not in ckpt]
    problem = f"it lacks {', '.join(missing)}" if missing else None
    if not problem:
        progress = ckpt["progress"]
        bad = [k for k, kinds in _PROGRESS_TYPES.items()
               if k not in progress or not isinstance(progress[k], kinds)
               or (isinstance(progress[k], bool) and kinds is int)]
        if bad:
            problem = f"progress.{bad[0]} is missing or of the wrong type"
        elif not isinstance(ckpt["data"].get("fingerprint"), str):
            problem = "data.fingerprint is not a string"
        elif not isinstance(ckpt["rng"].get("torch"), torch.Tensor):
            problem = "rng.torch is not a tensor"
    if problem:
        raise CheckpointError(f"{path} cannot be resumed: {problem}; start a new run with another --out")


def _field_problem(ckpt: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a loaded checkpoint, or None."""
    for key, kinds in _FIELD_TYPES.items():
        if key in ckpt and not isinstance(ckpt[key], kinds):
            return f"{key} is of type {type(ckpt[key]).__name__}, not {_kind_names(kinds)}"
    if ckpt["task"] not in TASKS:
        return f"task {ckpt['task']!r} is not one of {', '.join(TASKS)}"
    if ckpt.get("tag_scheme", "none") not in TAG_SCHEMES:
        return f"tag_scheme {ckpt['tag_scheme']!r} is not one of {', '.join(TAG_SCHEMES)}"
    for key in ("vocab", "labels"):
        if not all(isinstance(t, str) for t in ckpt[key]):
            return f"{key} holds something other than strings"
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt["model"].items()):
        return "model is not a state dict of named tensors"
    bad = next((i for i, e in enumerate(ckpt.get("valid_sample", [])) if not _sample_ok(e, ckpt["task"])), None)
    if bad is not None:
        return f"valid_sample[{bad}] is not a {ckpt['task']} example"
    return None


def _sample_ok(example: Any, task: str) -> bool:
    """One stored validation example: lm text, [text, label], or [tokens, tags] of equal length."""
    if task == "lm":
        return isinstance(example, str)
    if not isinstance(example, (list, tuple)) or len(example) != 2:
        return False
    if task == "classify":
        return all(isinstance(x, str) for x in example)
    tokens, tags = example
    return (isinstance(tokens, (list, tuple)) and isinstance(tags, (list, tuple)) and len(tokens) == len(tags)
            and all(isinstance(x, str) for x in (*tokens, *tags)))


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[RNNModel, Tokenizer, Vocabulary]:
    """Rebuild the model (in eval mode), its tokenizer and vocabulary."""
    try:
        config = ModelConfig(**ckpt["model_config"])
        with torch.device("meta"):  # the shapes the config implies, without allocating them
            expected = {k: tuple(v.shape) for k, v in RNNModel(config).state_dict().items()}
        stored = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
        if stored != expected:
            name = (sorted(set(stored) ^ set(expected)) or [k for k in expected if stored[k] != expected[k]])[0]
            raise CheckpointError(f"checkpoint weights do not fit its model config: {name} is "
                                  f"{stored.get(name, 'missing')}, the config needs {expected.get(name, 'none')}")
        with torch.random.fork_rng(devices=[]):  # building a module draws init weights: not the caller's RNG
            model = RNNModel(config)
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError, ConfigError) as e:
        raise CheckpointError(f"checkpoint weights do not fit its model config: {_detail(e)}") from e
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise CheckpointError("checkpoint weights hold NaN or infinity (training diverged): "
                              "retrain with a lower --lr or export an earlier checkpoint")
    try:
        vocab = Vocabulary(ckpt["vocab"])
        tokenizer = tokenizer_from_config(ckpt["tokenizer"])
    except (ConfigError, MetadataError) as e:
        raise CheckpointError(f"checkpoint vocabulary or tokenizer is damaged: {e}") from e
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(
            f"checkpoint vocabulary has {len(vocab)} tokens but the model {model.config.vocab_size}"
        )
    return model.eval(), tokenizer, vocab


def _detail(e: BaseException) -> str:
    """The informative line of a load_state_dict error (the first one is only a heading)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else _first_line(e))[:300]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
