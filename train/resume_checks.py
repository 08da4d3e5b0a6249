"""What ``last.pt`` must hold before --resume reads it: every field checked, in one line each.

A file that torch loads with ``weights_only=True`` can still hold anything plain: these checks
make an edited or forged ``last.pt`` fail with a CheckpointError before the run changes a
thing, never halfway through an epoch and never silently wrong. ``check_resumable`` needs only
the file; ``check_resume_fits`` also the rebuilt model, optimizer and data.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from rnnkit.runtime.errors import CheckpointError

from .checkpoint import _shape_mismatch
from .report import CURVE_KEYS, curve_every

__all__ = ["MAX_RECORD_VALUES", "check_resumable", "check_resume_fits"]

_MAX_COUNT = 1 << 53  # progress counters beyond this are not counts a run reached (nor exact as floats)
_RNG_SHAPE = torch.get_rng_state().shape  # (5056,): the CPU generator's state
# A real epoch record holds a few dozen values; the cap bounds what the reports would write out.
MAX_RECORD_VALUES = 10_000
_PROGRESS_TYPES: dict[str, type | tuple[type, ...]] = {
    "epoch": int, "batch": int, "step": int, "tokens": int, "seconds": (int, float), "loss_sum": (int, float),
    "loss_count": int, "loss_ema": (int, float), "best": (list, type(None)), "best_epoch": (int, type(None)),
    "bad_epochs": int, "done": bool,
}
# Flags of the scheduler's state (besides its numbers); "verbose" is what torch before 2.2 also wrote.
_SCHEDULER_FLAGS = ("_is_initial", "_get_lr_called_within_step", "verbose")


def check_resumable(ckpt: dict[str, Any], path: Any) -> None:
    """Raise CheckpointError unless ``ckpt`` (a loaded ``last.pt``) holds what --resume reads.

    Every field is checked for its type, its range and its agreement with the others (the
    counters, the best epoch, the history, the optimizer's and the scheduler's step, the random
    state, the carried state). What needs the data and the model (the batches of an epoch, the
    shapes of the state) is checked by ``check_resume_fits``.
    """
    missing = [k for k in ("train_config", "progress", "history", "curve", "data", "optimizer", "scheduler", "rng")
               if k not in ckpt]
    problem = f"it lacks {', '.join(missing)}" if missing else _resume_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path} cannot be resumed: {problem}; start over with --force or choose another --out")


def check_resume_fits(ckpt: dict[str, Any], path: Any, model: torch.nn.Module,
                      optimizer: torch.optim.Optimizer, *, batches_per_epoch: int, planned: int,
                      carry_shape: tuple[int, ...] | None) -> None:
    """Raise CheckpointError unless a checked ``last.pt`` fits the rebuilt ``model``, the data and
    the run's ``optimizer`` settings; ``carry_shape`` is the lm's (layers, rows, hidden), else None."""
    problem = _fit_problem(ckpt, model, optimizer, batches_per_epoch, planned, carry_shape)
    if problem:
        raise CheckpointError(f"{path} cannot be resumed: {problem}; start over with --force or choose another --out")


def _resume_problem(ckpt: dict[str, Any]) -> str | None:
    return (_progress_problem(ckpt["progress"]) or _history_problem(ckpt["history"], ckpt["progress"]["epoch"])
            or _curve_problem(ckpt["curve"], ckpt["progress"], ckpt["history"])
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
            return f"progress.{key} is {_brief(progress[key])}, not a count of 0 or more"
    for key in ("seconds", "loss_sum", "loss_ema"):
        if not (_finite_number(progress[key]) and progress[key] >= 0):
            return f"progress.{key} is {_brief(progress[key])}, not a finite number of 0 or more"
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
    seen: set[int] = set()  # the containers of all records: the trainer never puts one in two places
    for i, record in enumerate(history):
        if not isinstance(record, dict) or record.get("epoch") != i + 1 or isinstance(record.get("epoch"), bool):
            return f"history[{i}] is not the record of epoch {i + 1}"
        problem = _plain_problem(record, seen)
        if problem:
            return f"history[{i}] {problem}"
    return None


def _curve_problem(curve: list, progress: dict[str, Any], history: list) -> str | None:
    """Why ``curve`` is not the training loss a run logged up to ``progress``, with a row at the step of
    every validation in ``history`` (which metrics.csv and loss.png put side by side), or None."""
    step = 0
    for i, row in enumerate(curve):
        if not (isinstance(row, dict) and set(row) == set(CURVE_KEYS)
                and all(_finite_number(row[k]) and row[k] >= 0 for k in CURVE_KEYS)
                and all(isinstance(row[k], int) for k in ("step", "epoch", "tokens"))):
            return f"curve[{i}] is not a logged point of training ({', '.join(CURVE_KEYS)}: numbers of 0 or more)"
        if not step < row["step"] <= progress["step"]:
            return f"curve[{i}].step is {_brief(row['step'])}, not a step after {step} and by {progress['step']}"
        if not (1 <= row["epoch"] <= progress["epoch"] + 1 and row["tokens"] <= progress["tokens"]):
            return f"curve[{i}] lies beyond the run's progress (epoch {row['epoch']}, {row['tokens']} tokens)"
        step = row["step"]
    logged = {row["step"] for row in curve}
    for i, record in enumerate(history):
        where = record.get("step")
        if not isinstance(where, int) or isinstance(where, bool) or where not in logged:
            return f"history[{i}].step is {_brief(where)}, a step the curve holds no row for"
        if not all(_finite_number(record.get(k)) for k in ("valid_loss", "valid_metric")):
            return f"history[{i}] lacks a finite valid_loss and valid_metric"
    return None


def _plain_problem(record: dict, seen: set[int]) -> str | None:
    """Why ``record`` is not what json.dumps writes as it is (text, numbers, booleans, None, and
    lists and dicts of them, at most 8 deep and ``MAX_RECORD_VALUES`` in all), or None.

    A pickle can refer back to a list it already holds (its memo), so a file of a kilobyte can
    hold a list reached 50**7 times: a container met twice is refused, and the walk is bounded.
    """
    shared = "holds the same list or dict twice (a shared reference, which rnnkit never writes)"
    if id(record) in seen:
        return shared
    seen.add(id(record))
    stack, count = [(record, 0)], 0
    while stack:
        item, depth = stack.pop()
        if depth >= 8 or (isinstance(item, dict) and not all(isinstance(k, str) for k in item)):
            return "holds something other than plain numbers and text"
        for value in item.values() if isinstance(item, dict) else item:
            count += 1
            if count > MAX_RECORD_VALUES:
                return f"holds more than {MAX_RECORD_VALUES:,} values, more than an epoch's record has"
            if isinstance(value, (list, tuple, dict)):
                if id(value) in seen:  # seen as it is met: the second copy is refused before the first is walked
                    return shared
                seen.add(id(value))
                stack.append((value, depth + 1))
            elif not (value is None or isinstance(value, (str, bool, int, float))):
                return "holds something other than plain numbers and text"
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
                return f"optimizer.param_groups[{i}].{key} is {_brief(group[key])}, not a finite number of 0 or more"
    for index, entry in state.items():
        if not isinstance(entry, dict) or not all(isinstance(v, torch.Tensor) for v in entry.values()):
            return f"optimizer.state[{_brief(index)}] is not a dict of tensors"
        if not all(torch.isfinite(v).all() for v in entry.values() if v.is_floating_point()):
            return f"optimizer.state[{_brief(index)}] holds NaN or infinity"
        if "step" in entry and not (entry["step"].numel() == 1 and 0 <= float(entry["step"]) <= step):
            return f"optimizer.state[{_brief(index)}].step is not a step of this run (0 … {step})"
        if "exp_avg_sq" in entry and bool((entry["exp_avg_sq"] < 0).any()):
            return f"optimizer.state[{_brief(index)}].exp_avg_sq holds negative values"
    return None


@functools.cache
def _scheduler_keys() -> frozenset[str]:
    """The keys of the state dict of the scheduler rnnkit trains with (LambdaLR), in this torch."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    return frozenset(torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0).state_dict())


def _scheduler_problem(scheduler: dict[str, Any], step: int) -> str | None:
    # LambdaLR.load_state_dict copies every key onto the scheduler: one it never wrote (e.g.
    # "optimizer") would break the first step, so only its own keys, each of its own type, pass.
    extra = sorted(_brief(k, 40) for k in scheduler if k not in _scheduler_keys() | set(_SCHEDULER_FLAGS))
    if extra:
        return f"scheduler holds {extra[0]}, which a scheduler's state does not have"
    last, base = scheduler.get("last_epoch"), scheduler.get("base_lrs")
    if not isinstance(last, int) or isinstance(last, bool) or last != step:
        return f"scheduler.last_epoch is {_brief(last)}, but progress.step is {step}"
    if not isinstance(base, list) or not base or not all(_finite_number(x) and x > 0 for x in base):
        return "scheduler.base_lrs is not a list of finite learning rates"
    last_lr = scheduler.get("_last_lr", [])
    if not isinstance(last_lr, list) or not all(_finite_number(x) and x >= 0 for x in last_lr):
        return "scheduler._last_lr is not a list of finite learning rates"
    count = scheduler.get("_step_count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < _MAX_COUNT:
        return f"scheduler._step_count is {_brief(count)}, not a count of 0 or more"
    flag = next((k for k in _SCHEDULER_FLAGS if not isinstance(scheduler.get(k, False), bool)), None)
    if flag:
        return f"scheduler.{flag} is {_brief(scheduler[flag])}, not True or False"
    lambdas = scheduler.get("lr_lambdas", [None] * len(base))
    # rnnkit's lr_lambda is a method: its state is an empty dict (None for a plain function).
    if not (isinstance(lambdas, list) and len(lambdas) == len(base)
            and all(x is None or (isinstance(x, dict) and not x) for x in lambdas)):
        return "scheduler.lr_lambdas is not the state of rnnkit's learning-rate schedule"
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
        return f"carry is not the state of a {_brief(cell, 10)} cell"
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
    every, ends = curve_every(planned), {record["step"] for record in ckpt["history"]}
    odd = next((row["step"] for row in ckpt["curve"] if row["step"] % every and row["step"] not in ends), None)
    if odd is not None:  # a run logs every `every` steps and at each epoch end, and nothing else
        return f"curve holds step {odd}, which a run logging every {every} steps and at epoch ends never logs"
    params = [p for group in optimizer.param_groups for p in group["params"]]  # frozen weights are not there
    groups = ckpt["optimizer"]["param_groups"]
    ids = [i for group in groups for i in group["params"]]
    if (not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            or sorted(ids) != list(range(len(params)))):
        return f"the optimizer holds {len(ids)} parameters, this run's {len(params)}"
    if len(groups) != len(optimizer.param_groups):
        return f"the optimizer has {len(groups)} parameter groups, this run {len(optimizer.param_groups)}"
    for i, (stored, fresh) in enumerate(zip(groups, optimizer.param_groups)):
        # e.g. maximize=True would climb the loss: the options of the run decide these
        changed = sorted(k for k in fresh if k not in ("params", "lr") and k in stored
                         and not _same_option(stored[k], fresh[k]))
        if changed:
            key = changed[0]
            return f"optimizer.param_groups[{i}].{key} is {_brief(stored[key], 30)}, this run's is {fresh[key]!r:.30}"
    base = [group["initial_lr"] for group in optimizer.param_groups if "initial_lr" in group]
    if base and ckpt["scheduler"]["base_lrs"] != base:
        return f"scheduler.base_lrs is {ckpt['scheduler']['base_lrs']!r:.40}, this run's --lr gives {base!r:.40}"
    for index, entry in ckpt["optimizer"]["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            return f"optimizer.state names parameter {_brief(index)}, which the model does not have"
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


def _plain_kind(value: Any) -> str | None:
    """The kind of a plain option value ("number", "bool", "none", "text", "sequence"), or None."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "none"
    if isinstance(value, str):
        return "text"
    return "sequence" if isinstance(value, (list, tuple)) and all(_plain_kind(v) for v in value) else None


def _same_option(stored: Any, fresh: Any) -> bool:
    """Whether an optimizer option read from a file is the run's: the same kind of plain value, equal.

    The kind is checked first: ``==`` on a tensor (a forged option) gives a tensor, not a bool.
    """
    kind = _plain_kind(stored)
    if kind is None or kind != _plain_kind(fresh):
        return False
    if kind == "sequence":
        return len(stored) == len(fresh) and all(_same_option(a, b) for a, b in zip(stored, fresh))
    return stored == fresh


def _finite_number(x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    return math.isfinite(x) if isinstance(x, float) else x.bit_length() <= 1024  # beyond, no float holds it


def _brief(value: Any, keep: int = 20) -> str:
    """``repr(value)`` in at most ``keep`` characters; a tensor or a container by its type (its repr
    would read all of it)."""
    if value is not None and not isinstance(value, (str, int, float)):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= keep else f"{text[: keep - 1]}…"
