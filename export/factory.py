"""A user's own model, from the command line: ``package.module:factory``, a state dict, token files.

``rnnkit export-module`` and ``rnnkit verify`` name a user's torch module the way entry points
do (``mymodels:make``): :func:`load_factory` imports ``mymodels`` from the current folder and
calls ``make()``. :func:`load_weights` loads a ``torch.save(model.state_dict())`` file into it
(weights only: a file is untrusted, it never runs code), and :func:`read_tokens` reads its
vocabulary or labels (a text file, one token a line, or JSON). Every failure is one line saying
what was wrong and what to do.

>>> module = load_factory("mymodels:make")  # doctest: +SKIP
>>> load_weights(module, "weights.pt")  # doctest: +SKIP
>>> vocab = read_tokens("vocab.txt")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
import json
import keyword
import os
import pickle
import sys
import traceback
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit.runtime.datafiles import decode_utf8, label_problem, open_regular, surrogate_problem
from rnnkit.runtime.errors import CheckpointError, DataError, ModuleError
from rnnkit.runtime.text import byte_size

# The archive checks every rnnkit checkpoint gets, before torch unpacks anything.
from rnnkit.train.checkpoint import MAX_CHECKPOINT_BYTES, archive_problem, tensor_problem

__all__ = ["MAX_TOKEN_FILE_BYTES", "STATE_DICT_KEYS", "is_factory_spec", "load_factory", "load_weights",
           "read_tokens"]

MAX_TOKEN_FILE_BYTES = 64 << 20  # a model file holds at most a few MB of vocabulary; more is not a vocabulary
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")  # where training scripts keep the weights
_EXAMPLE = "write package.module:factory, e.g. mymodels:make for make() in mymodels.py"
_WRAP = "a factory takes no arguments: wrap it, e.g. def make(): return Model(...)"
_ZIP_MAGIC = b"PK\x03\x04"
_SHOWN = 3  # keys named in a message


# -- the module ---------------------------------------------------------------------------------
def is_factory_spec(text: str) -> bool:
    """Whether ``text`` reads as ``package.module:attr`` (dotted identifiers, one colon) and is no existing path.

    >>> is_factory_spec("mymodels:make"), is_factory_spec("runs/hello")
    (True, False)
    """
    module, colon, attr = text.partition(":")
    if not colon or not _dotted(module) or not _dotted(attr):
        return False
    try:
        return not Path(text).exists()
    except (OSError, ValueError):  # a name too long for the file system is no path either
        return True


def load_factory(spec: str) -> nn.Module:
    """The ``nn.Module`` that ``spec`` (``package.module:attr``) names, imported from the current folder.

    ``attr`` (dotted attributes allowed: ``mymodels:Zoo.make``) is the module itself, or a
    callable taking no arguments (a function, a class) that returns one. :class:`ModuleError`
    says what went wrong: no such module, an import or syntax error in it, no such attribute,
    a factory that needs arguments, raises, or returns something else.

    >>> model = load_factory("mymodels:make")  # doctest: +SKIP
    """
    module_name, _, attr = spec.partition(":")
    if not is_factory_spec(spec) or module_name.endswith(".py"):  # mymodels.py:make is a file, not a module
        raise ModuleError(_not_a_spec(spec))
    module = _import(module_name)
    obj: Any = module
    where = module_name
    for name in attr.split("."):
        try:
            value = getattr(obj, name)
        except AttributeError:
            raise ModuleError(f"{where} has no attribute {name!r}{_offer(obj)}; {_EXAMPLE}") from None
        except Exception as e:  # a property or a module's __getattr__ of the user's code
            raise ModuleError(f"reading {name!r} of {where} raised {_raised(e)}") from e
        obj, where = value, f"{where}{'.' if where != module_name else ':'}{name}"
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ModuleError(f"{spec} is {_a(obj)}, neither a torch.nn.Module nor a function that returns one; "
                          f"{_EXAMPLE}")
    try:
        inspect.signature(obj).bind()
    except TypeError as e:
        wrap = _WRAP.replace("Model", obj.__name__) if isinstance(obj, type) else _WRAP
        raise ModuleError(f"{spec} needs arguments ({e}); {wrap}") from None
    except ValueError:  # no signature to read (a builtin): calling it tells
        pass
    try:
        made = obj()
    except (Exception, SystemExit) as e:
        raise ModuleError(f"{spec}() raised {_raised(e)}; fix the factory, or call it in Python and pass the module "
                          "to rnnkit.export.export_module") from e
    if isinstance(made, type) and issubclass(made, nn.Module):
        raise ModuleError(f"{spec}() returned the class {made.__name__}, not a module: return {made.__name__}(...)")
    if not isinstance(made, nn.Module):
        raise ModuleError(f"{spec}() returned {_a(made)}, not a torch.nn.Module: return the model itself")
    return made


def _not_a_spec(spec: str) -> str:
    module, _, attr = spec.partition(":")
    try:
        exists = Path(spec).exists()
    except (OSError, ValueError):
        exists = False
    if exists:
        return (f"{spec!r} is a file or folder, not a factory: {_EXAMPLE}; a checkpoint or training folder is "
                "exported with `rnnkit export`")
    if module.endswith(".py"):
        return (f"{spec!r} names a file: name its module, {Path(module).stem}:{attr or 'make'}, and run in the folder "
                "that holds it")
    return f"{spec!r} is not a factory: {_EXAMPLE}"


def _dotted(text: str) -> bool:
    return bool(text) and all(p.isidentifier() and not keyword.iskeyword(p) for p in text.split("."))


def _import(name: str) -> Any:
    """``importlib.import_module(name)`` with the current folder first on ``sys.path``, taken off again after."""
    try:
        here = os.getcwd()
    except OSError as e:
        raise ModuleError(f"cannot import {name}: the current folder is gone ({e.strerror}); cd to the folder that "
                          f"holds {name.split('.')[0]}.py") from None
    sys.path.insert(0, here)
    importlib.invalidate_caches()  # the file may have been written a moment ago: look again
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing and (missing == name or name.startswith(missing + ".")):
            top = name.split(".")[0]
            raise ModuleError(f"no module named {missing!r} in {here} or on the import path: run from the folder "
                              f"that holds {top}.py (or the package {top}/)") from None
        raise ModuleError(f"importing {name} failed: it imports {missing or e}, which is not installed here: install "
                          "it, or run in the environment the model was written for") from None
    except SyntaxError as e:
        raise ModuleError(f"{e.filename}:{e.lineno}: syntax error ({e.msg}), importing {name}: fix the file") \
            from None
    except SystemExit as e:
        raise ModuleError(f"importing {name} exited (SystemExit {e.code!r}): it runs a script when imported; put that "
                          "under `if __name__ == \"__main__\":`") from None
    except Exception as e:
        raise ModuleError(f"importing {name} raised {_raised(e)}; fix the module (its top level runs on import)") \
            from e
    finally:
        if here in sys.path:
            sys.path.remove(here)  # the first occurrence, ours; what the module added itself stays


def _raised(e: BaseException) -> str:
    """``TypeError: message`` (first line), and where in the user's code it was raised."""
    lines = str(e).strip().splitlines()
    text = f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if "importlib" not in f.filename and f.filename != __file__]
    return f"{text} (at {mine[-1].filename}:{mine[-1].lineno})" if mine else text


def _offer(obj: Any) -> str:
    """``; it has Model, make`` : what ``obj`` defines that could be a factory (modules, their classes, functions)."""
    home = getattr(obj, "__name__", None)
    names = []
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if name.startswith("_"):
            continue
        maker = (isinstance(value, type) and issubclass(value, nn.Module)) or inspect.isfunction(value)
        if isinstance(value, nn.Module) or (maker and getattr(value, "__module__", None) == home):
            names.append(name)
    if not names:
        return " (and defines no nn.Module, nn.Module subclass or function)"
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f" (it has {', '.join(names[:5])}{more})"


def _a(value: Any) -> str:
    kind = type(value).__name__
    return "None" if value is None else f"{'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind}"


# -- the weights --------------------------------------------------------------------------------
def load_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load the state dict at ``path`` into ``module`` (strict): weights only, never code.

    The file is what ``torch.save(model.state_dict(), path)`` writes, or a dict holding the state
    dict under ``"state_dict"``, ``"model_state_dict"`` or ``"model"`` (a training checkpoint).
    :class:`CheckpointError` names what does not fit: a key missing or unexpected, a shape.

    >>> load_weights(model, "weights.pt")  # doctest: +SKIP
    """
    name = os.fspath(path)
    payload = _load_torch_file(name)
    problem = tensor_problem(payload)
    if problem:
        raise CheckpointError(f"{name} is damaged or was edited: {problem}")
    state = _state_dict(payload, name)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{name} does not fit {type(module).__name__}: {_key_problem(missing, unexpected)}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{name} does not fit {type(module).__name__}: {key} is {tuple(value.shape)} in "
                                  f"the file and {tuple(own[key].shape)} in the module; build the module with the "
                                  "sizes it was trained with")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{name}: {key} holds NaN or infinity (training diverged): use weights saved "
                                  "before it did")
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:  # a dtype that cannot be copied, say
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise CheckpointError(f"{name} does not fit {type(module).__name__}: {(lines[-1] if lines else e)!s:.300}") \
            from e


def _load_torch_file(name: str) -> Any:
    """What ``torch.load(weights_only=True)`` gives for a regular file torch.save wrote, checked before it is read."""
    try:
        fd = open_regular(name, cap=MAX_CHECKPOINT_BYTES, what="weights",
                          hint="give the file torch.save(model.state_dict(), path) wrote",
                          too_big=lambda size: f"is {byte_size(size)}, more than the "
                                               f"{byte_size(MAX_CHECKPOINT_BYTES)} a weights file may be")
    except DataError as e:
        raise CheckpointError(str(e)) from None
    not_torch = (f"{name} is not a file torch.save wrote (empty, truncated, or another format); save the weights "
                 "with torch.save(model.state_dict(), path)")
    with os.fdopen(fd, "rb") as f:
        head = f.read(4)
        if head[:2] == b"\x80\x02":  # torch's legacy format is a bare pickle: refused, as for checkpoints
            raise CheckpointError(f"{name} is in torch's legacy (pre-1.6) format, which rnnkit does not load; load it "
                                  "in torch and save it again")
        if head != _ZIP_MAGIC:
            raise CheckpointError(not_torch)
        try:
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                members = archive.infolist()
        except Exception as e:  # a damaged archive fails zipfile in many ways (BadZipFile, NotImplementedError…)
            raise CheckpointError(not_torch) from e
        problem = archive_problem(members, os.fstat(f.fileno()).st_size)
        if problem:
            raise CheckpointError(f"{name} {problem}; it is damaged or not a file torch.save wrote (it could "
                                  "expand to fill memory)")
        f.seek(0)
        try:
            with warnings.catch_warnings():  # torch warns about what damaged bytes claim (a pickle protocol…)
                warnings.simplefilter("ignore")
                return torch.load(f, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(f"{name} holds pickled Python objects (e.g. a whole module saved with "
                                  "torch.save(model)), which weights_only loading refuses: a file could run code; "
                                  "save model.state_dict() instead") from e
        except Exception as e:  # torch's reader fails damaged bytes in many ways (RuntimeError, IndexError…)
            raise CheckpointError(not_torch) from e


def _state_dict(payload: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(payload, Mapping):
        for key in STATE_DICT_KEYS:
            if isinstance(payload.get(key), Mapping):
                payload = payload[key]
                break
    if not isinstance(payload, Mapping) or not payload:
        what = "an empty dict" if isinstance(payload, Mapping) else _a(payload)
        raise CheckpointError(f"{name} holds {what}, not a state dict; save the weights with "
                              "torch.save(model.state_dict(), path)")
    bad = next(((k, v) for k, v in payload.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)),
               None)
    if bad is not None:
        raise CheckpointError(f"{name} is not a state dict: {str(bad[0])[:60]!r} holds {_a(bad[1])}, not a tensor "
                              f"(a state dict maps names to tensors; a checkpoint keeps it under "
                              f"{' or '.join(repr(k) for k in STATE_DICT_KEYS)})")
    return dict(payload)


def _key_problem(missing: list[str], unexpected: list[str]) -> str:
    for prefix in ("module.", "_orig_mod.", "model."):
        if unexpected and all(k.startswith(prefix) for k in unexpected) and \
                set(missing) <= {k[len(prefix):] for k in unexpected}:
            return (f"every key of the file starts with {prefix!r} ({_names(unexpected)}): the state dict of a wrapped "
                    "model (DataParallel, torch.compile…); save the inner model's state_dict(), or strip the prefix")
    parts = [f"missing {_names(missing)}"] if missing else []
    parts += [f"unexpected {_names(unexpected)}"] if unexpected else []
    return f"{', '.join(parts)}; build the module as it was when the weights were saved"


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return f"{shown} and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else shown


# -- vocabulary and labels ----------------------------------------------------------------------
def read_tokens(path: str | os.PathLike, what: str = "vocabulary") -> list[str] | dict[str, int]:
    """A vocabulary (or labels) file: ``.json`` holding a list (index = id) or an object token → id;
    otherwise text, one token a line, line ``n`` (from 0) being id ``n``.

    A text line is its token exactly, only the line ending (``\\n``, ``\\r\\n``) removed: a line of
    one space is the token ``" "``; a final newline does not make an empty token. UTF-8 (a BOM is
    dropped), at most :data:`MAX_TOKEN_FILE_BYTES`. An empty line, a token given twice, an empty
    file or JSON of another shape raise :class:`DataError` with the path and line.

    >>> read_tokens("labels.txt", "labels")  # doctest: +SKIP
    ['neg', 'pos']
    """
    name = os.fspath(path)
    fd = open_regular(name, cap=MAX_TOKEN_FILE_BYTES, what=what, too_big=lambda size: (
        f"the file is {byte_size(size)}, more than the {byte_size(MAX_TOKEN_FILE_BYTES)} a {what} file may be: "
        "is this the right file?"))
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_TOKEN_FILE_BYTES + 1)  # it may have grown since it was opened
        except OSError as e:
            raise DataError(f"cannot read the file ({e.strerror})", path=name) from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise DataError(f"the file is more than the {byte_size(MAX_TOKEN_FILE_BYTES)} a {what} file may be",
                        path=name)
    text = decode_utf8(data, name)
    noun = "label" if what.startswith("label") else "token"
    if not text:
        raise DataError(f"is empty: a {what} file holds one {noun} a line (or a .json list)", path=name)
    if Path(name).suffix.lower() == ".json":
        return _json_tokens(text, name, what, noun)
    return _line_tokens(text, name, what, noun)


def _line_tokens(text: str, name: str, what: str, noun: str) -> list[str]:
    lines = text.split("\n")  # not splitlines: U+2028 and the like may be tokens
    if lines[-1] == "":
        lines.pop()
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        token = line[:-1] if line.endswith("\r") else line
        if not token:
            raise DataError(f"the line is empty: a {what} file holds one {noun} a line, the line number (from 0) is "
                            f"its id; remove the line (a {noun} that holds a line break can be given in a .json list)",
                            path=name, line=i + 1)
        if token in seen:
            raise DataError(f"{token!r} is also on line {seen[token] + 1}: each {noun} is listed once (its line "
                            "number is its id)", path=name, line=i + 1)
        if noun == "label" and label_problem(token):
            raise DataError(str(label_problem(token)), path=name, line=i + 1)
        seen[token] = i
    return list(seen)


def _json_tokens(text: str, name: str, what: str, noun: str) -> list[str] | dict[str, int]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        for key, value in items:
            if key in keys:
                raise DataError(f"the JSON object lists {key!r} twice: each {noun} has one id", path=name)
            keys[key] = value
        return keys

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg}, column {e.colno})", path=name, line=e.lineno) from None
    except RecursionError:
        raise DataError("nests JSON too deeply to be a list of tokens", path=name) from None
    shape = f"a {what} .json file holds a list of {noun}s (index = id) or an object {noun} → id"
    if isinstance(value, list):
        seen: dict[str, int] = {}
        for i, token in enumerate(value):
            if not isinstance(token, str) or not token:
                raise DataError(f"item {i} is {_a(token) if not isinstance(token, str) else 'an empty string'}, not "
                                f"a {noun}: {shape}", path=name)
            if token in seen:
                raise DataError(f"items {seen[token]} and {i} are both {token!r}: each {noun} is listed once",
                                path=name)
            seen[token] = i
        tokens = value
    elif isinstance(value, dict):
        for token, i in value.items():
            if isinstance(i, list):  # {"vocab": [...]}: the list is inside
                raise DataError(f"{token!r} holds a list: give that list alone (index = id), or an object {noun} → "
                                "id", path=name)
            if not token or isinstance(i, bool) or not isinstance(i, int) or i < 0:
                raise DataError(f"{token!r} → {i!r}: {shape}, ids being integers from 0", path=name)
        tokens = list(value)
    else:
        raise DataError(f"holds {_a(value)}: {shape}", path=name)
    if not tokens:
        raise DataError(f"holds no {noun}s: {shape}", path=name)
    for token in tokens:
        problem = surrogate_problem(token, f"the {noun} {token[:20]!r}") or \
            (label_problem(token) if noun == "label" else None)
        if problem:
            raise DataError(problem, path=name)
    return value
