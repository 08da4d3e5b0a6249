"""Checkpoints: a dict of plain values plus state dicts, written atomically, loaded safely.

Layout (``CHECKPOINT_VERSION`` 1)::

    {"rnnkit_checkpoint": 1, "rnnkit": "0.1.0", "torch": "2.13.0", "created": iso-8601,
     "task": "lm" | "classify" | "tag", "tag_scheme": "none" | "tags" | "bmes",
     "model_config": {...}, "train_config": {...},
     "tokenizer": {...}, "vocab": [tokens], "labels": [labels],
     "model": state_dict, "optimizer": state_dict, "scheduler": state_dict,
     "progress": {"epoch", "batch", "step", "tokens", "seconds", "loss_sum", "loss_count",
                  "loss_ema", "best", "best_epoch", "bad_epochs", "done"},
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor] or None}, "carry": lm state tensors or None,
     "history": [per-epoch metrics], "curve": [the smoothed training loss, by step], "metrics": {...},
     "split": {...}, "data": {"source", "fingerprint", "skipped"}, "valid_sample": [...]}

``checkpoint.pt`` (the best model) has no ``optimizer``, ``scheduler``, ``rng`` or ``carry``;
``last.pt`` (for --resume) has no ``valid_sample``. A run with ``--embeddings`` adds
``"embeddings": {"path", "format", "dim", "covered", "vocab", "coverage", "file_words", "frozen"}``
to both (what the vectors covered; --resume reports it without reading the file again).
Everything loads with
``torch.load(weights_only=True)``: no pickled classes, ever. Before torch sees a file, its zip
directory is read: torch.save stores every member uncompressed, so a compressed member, a
member larger than ``MAX_MEMBER_BYTES``, members larger than ``MAX_CHECKPOINT_BYTES`` in all or
than the file itself (entries that overlap) can only be a damaged or hostile file (a
decompression bomb), and are refused before anything is unpacked. Once loaded, every tensor must
be dense data that its storage holds: a stride of 0 lets 4 bytes claim 2**36 elements, which
the first comparison would allocate. What --resume also needs is checked in ``resume_checks``.
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
from rnnkit.runtime.text import byte_size
from rnnkit.runtime.tokenizers import Tokenizer, tokenizer_from_config
from rnnkit.runtime.vocab import Vocabulary

from .model import ModelConfig, RNNModel

__all__ = [
    "BEST_NAME",
    "CHECKPOINT_VERSION",
    "LAST_NAME",
    "MAX_CHECKPOINT_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "archive_problem",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "tensor_problem",
]

CHECKPOINT_VERSION = 1
BEST_NAME = "checkpoint.pt"  # the best model so far: what export reads
LAST_NAME = "last.pt"  # the latest state: what --resume reads
_REQUIRED = ("task", "model_config", "tokenizer", "vocab", "labels", "model")
# One member (a tensor's storage) may be as large as the 2 GiB a single ONNX file (protobuf) can
# hold, since export writes one file; a last.pt holds the model and AdamW's two moments of the
# same size, so 8 GiB in all leaves room. Real checkpoints hold a few dozen members.
MAX_MEMBER_BYTES = 2 << 30
MAX_CHECKPOINT_BYTES = 8 << 30
MAX_MEMBERS = 10_000
_ZIP_MAGIC = b"PK\x03\x04"  # what torch itself looks for to tell its zip format from the legacy one
_LEGACY = "{path} is in torch's legacy (pre-1.6) format, which rnnkit does not load; load it in torch, save it again"
# The type of every field a reader uses (when present): a file that torch loads can still hold
# anything, and export or --resume must fail with a CheckpointError, not deep inside.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "task": str, "tag_scheme": str, "model_config": dict, "train_config": dict, "tokenizer": dict,
    "vocab": list, "labels": list, "model": dict, "optimizer": dict, "scheduler": dict, "progress": dict,
    "rng": dict, "history": list, "curve": list, "metrics": dict, "split": dict, "data": dict, "valid_sample": list,
    "rnnkit": str, "torch": str, "created": str, "embeddings": (dict, type(None)),
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
    _check_archive(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} holds pickled Python objects (e.g. a whole module saved with torch.save(model)); "
            "rnnkit loads only plain checkpoints for safety: save model.state_dict() instead"
        ) from e
    except Exception as e:  # torch's reader fails damaged bytes in many ways (RuntimeError, IndexError…)
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a torch file): {_first_line(e)}"
        ) from e
    problem = tensor_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path} is damaged or was edited: {problem}; restore it or retrain")
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


def tensor_problem(payload: Any) -> str | None:
    """The first tensor of ``payload`` that claims more than its storage holds, said in words; or None.

    torch rebuilds a tensor from the storage, shape and stride the file gives, and a stride of 0
    lets a storage of 4 bytes stand for 2**36 elements, past the archive's size caps: a comparison
    or torch.isfinite would then allocate one value per element. Every tensor is checked before
    anything reads it; each list, tuple or dict is walked once (a pickle may refer back to one it
    already holds), so the walk is as long as the file.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(payload, "checkpoint")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, torch.Tensor):
            problem = _storage_problem(value, where)
            if problem:
                return problem
            continue
        if not isinstance(value, (dict, list, tuple)) or id(value) in seen:
            continue
        seen.add(id(value))
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(key, (torch.Tensor, tuple)):
                stack.append((key, f"{where} (a key)"))
            if isinstance(item, (torch.Tensor, dict, list, tuple)):
                stack.append((item, _member_name(where, key)))
    return None


def _member_name(where: str, key: Any) -> str:
    if isinstance(key, str):
        return f"{where}.{_short(key, 40)[1:-1]}"
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}[a {type(key).__name__}]"


def _storage_problem(tensor: torch.Tensor, where: str) -> str | None:
    if tensor.layout != torch.strided:
        return f"tensor {where} is not dense ({tensor.layout}), which rnnkit never writes"
    if tensor.device.type != "cpu":  # a meta tensor: a shape with no data, which any read would fail on
        return f"tensor {where} holds no data (a {tensor.device.type} tensor), which rnnkit never writes"
    held = tensor.untyped_storage().nbytes()
    if tensor.numel() * tensor.element_size() > held:
        return f"tensor {where} claims {tensor.numel():,} elements over a storage of {held:,} bytes"
    return None


def _check_archive(path: Path) -> None:
    """Refuse, before torch unpacks anything, a file that is not torch's zip format or would expand."""
    not_torch = (f"{path} is not a torch checkpoint (truncated, or not a file torch.save wrote); "
                 "give the checkpoint.pt that `rnnkit train` wrote")
    head = b""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except Exception as e:  # a damaged archive fails zipfile in many ways (BadZipFile, NotImplementedError…)
        raise CheckpointError(_LEGACY.format(path=path) if head[:2] == b"\x80\x02" else not_torch) from e
    if head != _ZIP_MAGIC:  # a pickle with a zip appended would be loaded by torch's legacy reader
        raise CheckpointError(_LEGACY.format(path=path) if head[:2] == b"\x80\x02" else not_torch)
    problem = archive_problem(members, size)
    if problem:
        raise CheckpointError(f"{path} {problem}; it is damaged or not a file torch.save wrote (it could expand "
                              "to fill memory): give the checkpoint.pt that `rnnkit train` wrote")


def archive_problem(members: list[zipfile.ZipInfo], size: int) -> str | None:
    if len(members) > MAX_MEMBERS:
        return f"holds {len(members):,} members, more than the {MAX_MEMBERS:,} a checkpoint may have"
    seen: set[str] = set()
    total = 0
    for m in members:
        name = _short(m.filename)
        if m.filename in seen:
            return f"holds two members named {name}"
        seen.add(m.filename)
        if m.compress_type != zipfile.ZIP_STORED:
            return f"holds a compressed member ({name}), which torch.save never writes"
        if m.file_size != m.compress_size:
            return f"has a member ({name}) that declares {m.file_size:,} bytes but stores {m.compress_size:,}"
        if m.file_size > MAX_MEMBER_BYTES:
            return (f"has a member ({name}) of {byte_size(m.file_size)}, more than the "
                    f"{byte_size(MAX_MEMBER_BYTES)} allowed")
        total += m.file_size
    if total > MAX_CHECKPOINT_BYTES:
        return f"unpacks to {byte_size(total)}, more than the {byte_size(MAX_CHECKPOINT_BYTES)} allowed"
    if total > size:  # stored members cannot hold more than the file: entries overlap
        return f"declares {byte_size(total)} of members in a file of {byte_size(size)} (entries that overlap)"
    return None


def _short(text: str, keep: int = 60) -> str:
    return repr(text) if len(text) <= keep else repr(f"{text[: keep // 2]}…{text[-keep // 2 :]}")


def _shape_mismatch(stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str | None:
    """The first weight whose name or shape differs between two state dicts, said in words; or None."""
    have = {k: tuple(v.shape) for k, v in stored.items()}
    need = {k: tuple(v.shape) for k, v in expected.items()}
    if have == need:
        return None
    name = (sorted(set(have) ^ set(need)) or [k for k in need if have[k] != need[k]])[0]
    return f"{name} is {have.get(name, 'missing')}, the config needs {need.get(name, 'none')}"


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
    record = ckpt.get("embeddings") or {}
    if not all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in record.items()):
        return "embeddings is not a record of plain values"
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
            mismatch = _shape_mismatch(ckpt["model"], RNNModel(config).state_dict())
        if mismatch:
            raise CheckpointError(f"checkpoint weights do not fit its model config: {mismatch}")
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
