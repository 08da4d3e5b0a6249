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

from rnnkit.runtime.contract import rnnkit_version
from rnnkit.runtime.errors import CheckpointError, WriteError
from rnnkit.runtime.files import atomic_path
from rnnkit.runtime.tokenizers import Tokenizer, tokenizer_from_config
from rnnkit.runtime.vocab import Vocabulary

from .model import ModelConfig, RNNModel

__all__ = [
    "BEST_NAME",
    "CHECKPOINT_VERSION",
    "LAST_NAME",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_VERSION = 1
BEST_NAME = "checkpoint.pt"  # the best model so far: what export reads
LAST_NAME = "last.pt"  # the latest state: what --resume reads
_REQUIRED = ("task", "model_config", "tokenizer", "vocab", "labels", "model")


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
    if path.is_dir():
        path = path / name
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train one with `rnnkit train --out DIR`")
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
    if not isinstance(version, int) or version > CHECKPOINT_VERSION or version < 1:
        raise CheckpointError(
            f"{path} is checkpoint format {version!r}; this rnnkit reads {CHECKPOINT_VERSION}: upgrade rnnkit"
        )
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it is damaged or not from rnnkit train")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[RNNModel, Tokenizer, Vocabulary]:
    """Rebuild the model (in eval mode), its tokenizer and vocabulary."""
    try:
        with torch.random.fork_rng(devices=[]):  # building a module draws init weights: not the caller's RNG
            model = RNNModel(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint weights do not fit its model config: {_detail(e)}") from e
    vocab = Vocabulary(ckpt["vocab"])
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(
            f"checkpoint vocabulary has {len(vocab)} tokens but the model {model.config.vocab_size}"
        )
    return model.eval(), tokenizer_from_config(ckpt["tokenizer"]), vocab


def _detail(e: BaseException) -> str:
    """The informative line of a load_state_dict error (the first one is only a heading)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else _first_line(e))[:300]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
