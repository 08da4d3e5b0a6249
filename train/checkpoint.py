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
``torch.load(weights_only=True)``: no pickled classes, ever. Before torch sees a file, its zip
directory is read: torch.save stores every member uncompressed, so a compressed member, a
member larger than ``MAX_MEMBER_BYTES``, members larger than ``MAX_CHECKPOINT_BYTES`` in all or
than the file itself (entries that overlap) can only be a damaged or hostile file (a
decompression bomb), and are refused before anything is unpacked.
"""

from __future__ import annotations

import datetime as _dt
import math
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
    "MAX_CHECKPOINT_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "check_resumable",
    "check_resume_fits",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
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
_MAX_COUNT = 1 << 53  # progress counters beyond this are not counts a run reached (nor exact as floats)
_RNG_SHAPE = torch.get_rng_state().shape  # (5056,): the CPU generator's state
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
    _check_archive(path)
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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as e:
        raise CheckpointError(_LEGACY.format(path=path) if head[:2] == b"\x80\x02" else not_torch) from e
    if head != _ZIP_MAGIC:  # a pickle with a zip appended would be loaded by torch's legacy reader
        raise CheckpointError(_LEGACY.format(path=path) if head[:2] == b"\x80\x02" else not_torch)
    problem = _archive_problem(members, size)
    if problem:
        raise CheckpointError(f"{path} {problem}; it is damaged or not a file torch.save wrote (it could expand "
                              "to fill memory): give the checkpoint.pt that `rnnkit train` wrote")


def _archive_problem(members: list[zipfile.ZipInfo], size: int) -> str | None:
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
            return f"has a member ({name}) of {_size(m.file_size)}, more than the {_size(MAX_MEMBER_BYTES)} allowed"
        total += m.file_size
    if total > MAX_CHECKPOINT_BYTES:
        return f"unpacks to {_size(total)}, more than the {_size(MAX_CHECKPOINT_BYTES)} allowed"
    if total > size:  # stored members cannot hold more than the file: entries overlap
        return f"declares {_size(total)} of members in a file of {_size(size)} (entries that overlap)"
    return None


def _size(n: float) -> str:
    units = ("bytes", "KiB", "MiB", "GiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.0f} bytes" if i == 0 else f"{n:.1f} {units[i]}"


def _short(text: str, keep: int = 60) -> str:
    return repr(text) if len(text) <= keep else repr(f"{text[: keep // 2]}…{text[-keep // 2 :]}")


def check_resumable(ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise CheckpointError unless ``ckpt`` (a loaded ``last.pt``) holds what --resume reads.

    Every field is checked for its type, its range and its agreement with the others (the
    counters, the best epoch, the history, the optimizer's and the scheduler's step, the random
    state, the carried state): an edited or forged file fails here in one line, not halfway
    through an epoch, and never resumes silently wrong. What needs the data and the model
    (the batches of an epoch, the shapes of the state) is checked by ``check_resume_fits``.
    """
    missing = [k for k in ("train_config", "progress", "history", "data", "optimizer", "scheduler", "rng")
               if k not in ckpt]
    problem = f"it lacks {', '.join(missing)}" if missing else _resume_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path} cannot be resumed: {problem}; start over with --force or choose another --out")


def check_resume_fits(ckpt: dict[str, Any], path: str | Path, model: torch.nn.Module,
                      optimizer: torch.optim.Optimizer, *, batches_per_epoch: int, planned: int,
                      carry_shape: tuple[int, ...] | None) -> None:
    """Raise CheckpointError unless a checked ``last.pt`` fits the rebuilt ``model``, the data and
    the run's ``optimizer`` settings; ``carry_shape`` is the lm's (layers, rows, hidden), else None."""
    problem = _fit_problem(ckpt, model, optimizer, batches_per_epoch, planned, carry_shape)
    if problem:
        raise CheckpointError(f"{path} cannot be resumed: {problem}; start over with --force or choose another --out")


def _resume_problem(ckpt: dict[str, Any]) -> str | None:
    return (_progress_problem(ckpt["progress"]) or _history_problem(ckpt["history"], ckpt["progress"]["epoch"])
            or _rng_problem(ckpt["rng"]) or _optimizer_problem(ckpt["optimizer"], ckpt["progress"]["step"])
            or _scheduler_problem(ckpt["scheduler"], ckpt["progress"]["step"]) or _carry_problem(ckpt)
            or (None if isinstance(ckpt["data"].get("fingerprint"), str) else "data.fingerprint is not a string")
            or (None if ckpt["task"] == "lm" or 0 < len(set(ckpt["labels"])) == len(ckpt["labels"])
                else "labels are empty or repeat a label"))


def _progress_problem(progress: dict[str, Any]) -> str | None:
    for key, kinds in _PROGRESS_TYPES.items():
        value = progress.get(key)
        if key not in progress or not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
            return f"progress.{key} is missing or of the wrong type"
    for key in ("epoch", "batch", "step", "tokens", "loss_count", "bad_epochs"):
        if not 0 <= progress[key] < _MAX_COUNT:
            return f"progress.{key} is {progress[key]}, not a count of 0 or more"
    for key in ("seconds", "loss_sum"):
        if not (math.isfinite(progress[key]) and progress[key] >= 0):
            return f"progress.{key} is {progress[key]}, not a finite number of 0 or more"
    best, best_epoch, epoch = progress["best"], progress["best_epoch"], progress["epoch"]
    if best is not None and (len(best) != 2 or not all(_finite_number(x) for x in best)):
        return "progress.best is not a pair of finite numbers"
    if (best is None) != (best_epoch is None):
        return "progress.best and progress.best_epoch disagree (one is missing)"
    if best_epoch is not None and not 1 <= best_epoch <= epoch:
        return f"progress.best_epoch is {best_epoch}, not an epoch done (1 … {epoch})"
    if epoch and best is None:
        return f"progress.best is missing after {epoch} epochs"
    if progress["bad_epochs"] > epoch - (best_epoch or 0):
        return f"progress.bad_epochs is {progress['bad_epochs']}, more than the epochs since the best"
    if progress["loss_count"] > progress["batch"]:
        return f"progress.loss_count is {progress['loss_count']}, more than the batches of the epoch"
    if progress["step"] < epoch:
        return f"progress.step is {progress['step']}, fewer than the {epoch} epochs done"
    return None


def _history_problem(history: list, epochs: int) -> str | None:
    if len(history) != epochs:
        return f"history holds {len(history)} epochs, progress.epoch says {epochs}"
    for i, record in enumerate(history):
        if not isinstance(record, dict) or record.get("epoch") != i + 1 or isinstance(record.get("epoch"), bool):
            return f"history[{i}] is not the record of epoch {i + 1}"
        if not _plain_value(record):
            return f"history[{i}] holds something other than plain numbers and text"
    return None


def _rng_problem(rng: dict[str, Any]) -> str | None:
    state = rng.get("torch")
    if not (isinstance(state, torch.Tensor) and state.dtype == torch.uint8 and state.shape == _RNG_SHAPE):
        return "rng.torch is not the state of torch's random generator"
    cuda = rng.get("cuda")
    if cuda is not None and not (isinstance(cuda, list) and all(isinstance(t, torch.Tensor) for t in cuda)):
        return "rng.cuda is not a list of CUDA generator states"
    return None


def _optimizer_problem(optimizer: dict[str, Any], step: int) -> str | None:
    state, groups = optimizer.get("state"), optimizer.get("param_groups")
    if not isinstance(state, dict) or not isinstance(groups, list) or not groups:
        return "optimizer is not an optimizer's state dict"
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            return f"optimizer.param_groups[{i}] is not a parameter group"
        betas = group.get("betas")
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_finite_number(b) and 0 <= b < 1
                                                                             for b in betas)):
            return f"optimizer.param_groups[{i}].betas is not a pair in [0, 1)"
        for key in ("lr", "initial_lr", "eps", "weight_decay"):
            if key in group and not (_finite_number(group[key]) and group[key] >= 0):
                return f"optimizer.param_groups[{i}].{key} is {group[key]!r:.40}, not a finite number of 0 or more"
    for index, entry in state.items():
        if not isinstance(entry, dict) or not all(isinstance(v, torch.Tensor) for v in entry.values()):
            return f"optimizer.state[{index!r:.20}] is not a dict of tensors"
        if not all(torch.isfinite(v).all() for v in entry.values() if v.is_floating_point()):
            return f"optimizer.state[{index!r:.20}] holds NaN or infinity"
        if "step" in entry and not (entry["step"].numel() == 1 and 0 <= float(entry["step"]) <= step):
            return f"optimizer.state[{index!r:.20}].step is not a step of this run (0 … {step})"
        if "exp_avg_sq" in entry and bool((entry["exp_avg_sq"] < 0).any()):
            return f"optimizer.state[{index!r:.20}].exp_avg_sq holds negative values"
    return None


def _scheduler_problem(scheduler: dict[str, Any], step: int) -> str | None:
    last, base = scheduler.get("last_epoch"), scheduler.get("base_lrs")
    if not isinstance(last, int) or isinstance(last, bool) or last != step:
        return f"scheduler.last_epoch is {last!r:.20}, but progress.step is {step}"
    if not isinstance(base, list) or not base or not all(_finite_number(x) and x > 0 for x in base):
        return "scheduler.base_lrs is not a list of finite learning rates"
    last_lr = scheduler.get("_last_lr", [])
    if not isinstance(last_lr, list) or not all(_finite_number(x) and x >= 0 for x in last_lr):
        return "scheduler._last_lr is not a list of finite learning rates"
    return None


def _carry_problem(ckpt: dict[str, Any]) -> str | None:
    carry = ckpt.get("carry")
    if carry is None:
        return None
    if ckpt["task"] != "lm":
        return f"it carries a state between batches, which only lm runs do (this is {ckpt['task']})"
    parts = list(carry) if isinstance(carry, (tuple, list)) else [carry]
    cell = ckpt["model_config"].get("cell")
    if len(parts) != (2 if cell == "lstm" else 1) or not all(isinstance(t, torch.Tensor) for t in parts):
        return f"carry is not the state of a {cell!r:.10} cell"
    if not all(t.dtype == torch.float32 and t.dim() == 3 and t.shape == parts[0].shape for t in parts):
        return "carry is not float32 tensors of shape (layers, rows, hidden)"
    if not all(torch.isfinite(t).all() for t in parts):
        return "carry holds NaN or infinity"
    return None


def _fit_problem(ckpt: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 batches_per_epoch: int, planned: int, carry_shape: tuple[int, ...] | None) -> str | None:
    progress = ckpt["progress"]
    mismatch = _shape_mismatch(ckpt["model"], model.state_dict())
    if mismatch:
        return f"its weights do not fit this run's model: {mismatch}"
    if progress["batch"] > batches_per_epoch:
        return f"progress.batch is {progress['batch']}, but an epoch of this data has {batches_per_epoch} batches"
    if progress["step"] > planned:
        return f"progress.step is {progress['step']}, more than the {planned} steps this run plans"
    params = list(model.parameters())
    groups = ckpt["optimizer"]["param_groups"]
    ids = [i for group in groups for i in group["params"]]
    if (not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            or sorted(ids) != list(range(len(params)))):
        return f"the optimizer holds {len(ids)} parameters, the model has {len(params)}"
    if len(groups) != len(optimizer.param_groups):
        return f"the optimizer has {len(groups)} parameter groups, this run {len(optimizer.param_groups)}"
    for i, (stored, fresh) in enumerate(zip(groups, optimizer.param_groups)):
        changed = sorted(k for k in fresh if k not in ("params", "lr") and stored.get(k, fresh[k]) != fresh[k])
        if changed:  # e.g. maximize=True would climb the loss: the options of the run decide these
            return f"optimizer.param_groups[{i}].{changed[0]} is {stored[changed[0]]!r:.30}, this run's is " \
                   f"{fresh[changed[0]]!r:.30}"
    base = [group["initial_lr"] for group in optimizer.param_groups if "initial_lr" in group]
    if base and ckpt["scheduler"]["base_lrs"] != base:
        return f"scheduler.base_lrs is {ckpt['scheduler']['base_lrs']!r:.40}, this run's --lr gives {base!r:.40}"
    for index, entry in ckpt["optimizer"]["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            return f"optimizer.state names parameter {index!r:.20}, which the model does not have"
        for key, value in entry.items():
            if key != "step" and tuple(value.shape) != tuple(params[index].shape):
                return (f"optimizer.state[{index}].{key} has shape {tuple(value.shape)}, the parameter "
                        f"{tuple(params[index].shape)}")
    if not all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point()):
        return "the weights hold NaN or infinity (the run diverged)"
    carry = ckpt.get("carry")
    if carry is not None:
        shape = tuple((carry[0] if isinstance(carry, (tuple, list)) else carry).shape)
        if shape != carry_shape:
            return f"carry has shape {shape}, the model and data need {carry_shape}"
    return None


def _shape_mismatch(stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str | None:
    """The first weight whose name or shape differs between two state dicts, said in words; or None."""
    have = {k: tuple(v.shape) for k, v in stored.items()}
    need = {k: tuple(v.shape) for k, v in expected.items()}
    if have == need:
        return None
    name = (sorted(set(have) ^ set(need)) or [k for k in need if have[k] != need[k]])[0]
    return f"{name} is {have.get(name, 'missing')}, the config needs {need.get(name, 'none')}"


def _finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _plain_value(value: Any, depth: int = 0) -> bool:
    """A value json.dumps writes as it is: text, numbers, booleans, None, and lists and dicts of them."""
    if depth > 8:
        return False
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_value(v, depth + 1) for k, v in value.items())
    return False


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
