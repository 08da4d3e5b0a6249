"""onnxruntime sessions: providers, threads, and load errors turned into ours."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelFileError, ModelNotFoundError, ProviderError, RnnkitWarning

__all__ = ["CPU_HINT", "MAX_FILE_BYTES", "Providers", "check_onnxruntime_version", "make_session", "read_model_file"]

log = logging.getLogger(__name__)
Providers = str | Sequence[str | tuple[str, dict[str, Any]]]
_CPU, _CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
_warned_two_packages = False
MAX_THREADS = 256  # intra-op threads: more than any host has cores to give one recurrent model
# How a ProviderError says to run on CPU instead; the CLI says it with its own option.
CPU_HINT = "pass providers='cpu' (or fallback=True) to run on CPU"
MAX_FILE_BYTES = (2 << 30) - 1  # protobuf's own limit: larger weights go in external data files


def _ort():
    import onnxruntime

    return onnxruntime


def _version(text: str) -> tuple[int, int, int]:
    """``"1.20.1"`` → (1, 20, 1), ``"1.22"`` → (1, 22, 0): each part's leading digits, so a
    pre-release or local suffix ("1.22.0rc1", "1.21.0.dev2024", "1.22.0+cu12") is dropped."""
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = re.match(r"[0-9]+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return (*parts, 0, 0, 0)[:3]


def check_onnxruntime_version(quantization: dict[str, Any], path: Path, installed: str | None = None, *,
                              graph_needs: str | None = None) -> None:
    """Refuse a file whose operators need a newer onnxruntime than the one installed.

    A quantized file records ``min_onnxruntime`` (int4's GatherBlockQuantized is newer than the
    lower bound rnnkit supports); ``graph_needs`` is what the graph's own operators need, which
    counts even where the metadata says less. An older runtime would otherwise fail inside
    session creation with a kernel error.
    """
    needs = [v for v in (quantization.get("min_onnxruntime"), graph_needs) if v]
    if not needs:
        return
    need = max(needs, key=_version)
    installed = installed or _ort().__version__
    if _version(installed) < _version(need):
        ops = ", ".join(quantization.get("operators") or ()) or "its operators"
        raise ModelFileError(f"{path} ({quantization.get('mode')}) needs onnxruntime ≥ {need} for {ops}; this "
                             f"one is {installed}: upgrade it (pip install -U onnxruntime), or export the model "
                             "with --quantize int8, which runs on every supported onnxruntime")


def read_model_file(path: str | Path) -> bytes:
    """The bytes of the model file at ``path``: a regular, readable file of at most 2 GiB."""
    path = Path(path)
    _check_readable(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ModelFileError(f"{path} is {size} bytes, more than an ONNX file can hold (2 GiB); "
                                     "re-export it with its weights in external data")
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}; check the path and its permissions") from e
    if len(data) > MAX_FILE_BYTES:  # it grew while we read it
        raise ModelFileError(f"{path} grew past 2 GiB while it was read; refused")
    return data


def make_session(path: str | Path, *, providers: Providers = "auto", threads: int | None = 1,
                 spin: bool = False, fallback: bool = False, sess_options: Any = None,
                 data: bytes | None = None):
    """An ``InferenceSession`` for ``path`` and the providers it really uses.

    With ``data`` (the file's bytes, already checked), the session is built from those very
    bytes, so a file replaced on disk after the check cannot slip in.

    ``providers``: ``"auto"`` (CUDA when onnxruntime-gpu sees a GPU, else CPU), ``"cpu"``,
    ``"cuda"``, or a list in onnxruntime's own form. ``threads`` sets intra-op threads (1 is
    fastest for one-token steps and kindest to the host app; ``None`` lets onnxruntime pick);
    ``spin=False`` stops idle worker threads from busy-waiting. ``sess_options`` replaces all
    of these with your own ``onnxruntime.SessionOptions``.
    """
    ort = _ort()
    _check_single_package()
    path = Path(path)
    if data is None:
        _check_readable(path)
    if sess_options is not None and not isinstance(sess_options, ort.SessionOptions):
        raise TypeError(f"sess_options must be an onnxruntime.SessionOptions, got {type(sess_options).__name__}")
    wanted, missing = _providers(providers, ort.get_available_providers(), fallback)
    if missing:
        warnings.warn(f"{', '.join(missing)} requested but this onnxruntime has only "
                      f"{ort.get_available_providers()}; running on CPU (pip install 'rnnkit[gpu]' for CUDA)",
                      RnnkitWarning, stacklevel=3)
    options = sess_options or _options(ort, threads, spin)
    try:
        session = ort.InferenceSession(str(path) if data is None else data, options, providers=wanted)
    except Exception as e:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, …)
        raise ModelFileError(_load_error(path, e)) from e
    used = session.get_providers()
    if _CUDA in [_name(p) for p in wanted] and _CUDA not in used:
        message = (f"CUDA was requested but onnxruntime could not start it (providers in use: {used}); "
                   "check the GPU driver and CUDA/cuDNN libraries")
        if not fallback:
            raise ProviderError(f"{message}, or {CPU_HINT}")
        warnings.warn(message + "; running on CPU", RnnkitWarning, stacklevel=3)
    return session, used


def _check_readable(path: Path) -> None:
    """Refuse a path onnxruntime could not open, with our words rather than its error number."""
    try:
        if not path.exists():
            raise ModelNotFoundError(f"no model file at {path}")
        if path.is_dir():
            raise ModelFileError(f"{path} is a folder; give the .onnx file")
        if not path.is_file():  # reading a FIFO or a device would block or never end
            raise ModelFileError(f"{path} is not a regular file (a pipe or a device); give the .onnx file")
        with open(path, "rb"):
            pass
    except ModelFileError:
        raise
    except OSError as e:  # a folder on the way or the file itself not readable, a name too long…
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}; check the path and its permissions") from e


def _name(provider: str | tuple[str, dict[str, Any]]) -> str:
    return provider if isinstance(provider, str) else provider[0]


def _providers(providers: Providers, available: list[str], fallback: bool) -> tuple[list, list[str]]:
    """The provider list to ask onnxruntime for, and the requested ones dropped by ``fallback``."""
    if isinstance(providers, str):
        name = providers.lower()
        if name == "auto":
            return ([_CUDA, _CPU] if _CUDA in available else [_CPU]), []
        if name == "cpu":
            return [_CPU], []
        if name == "cuda":
            providers = [_CUDA, _CPU]
        elif providers.endswith("ExecutionProvider"):  # onnxruntime's own name, given alone
            providers = [providers]
        else:
            raise ConfigError(f"providers must be 'auto', 'cpu', 'cuda' or a list of onnxruntime providers "
                              f"(e.g. {available}), got {providers!r}")
    try:
        wanted = list(providers)
    except TypeError:
        raise TypeError(f"providers must be a str or a list, got {type(providers).__name__}") from None
    if not wanted:
        raise ConfigError("providers is an empty list; pass 'auto' or name at least one provider")
    for p in wanted:
        if not isinstance(p, str) and not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                           and isinstance(p[1], dict)):
            raise TypeError(f"a provider is a name or a (name, options) pair, got {p!r}")
    missing = [_name(p) for p in wanted if _name(p) not in available]
    if missing and not fallback:
        hint = ": pip install 'rnnkit[gpu]' (it replaces onnxruntime with onnxruntime-gpu)" if _CUDA in missing else ""
        raise ProviderError(f"{', '.join(missing)} requested but this onnxruntime has only {available}{hint}, "
                            f"or {CPU_HINT}")
    wanted = [p for p in wanted if _name(p) in available]
    if _CPU not in [_name(p) for p in wanted]:
        wanted.append(_CPU)
    return wanted, missing


def _options(ort, threads: int | None, spin: bool):
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or not 1 <= threads <= MAX_THREADS):
        raise ConfigError(f"threads must be an integer from 1 to {MAX_THREADS} or None, got {threads!r} "
                          f"(this machine has {os.cpu_count()} cores)")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the host app's stderr is not ours to fill
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _load_error(path: Path, e: Exception) -> str:
    text = str(e).replace("\n", " ")
    if "escapes model directory" in text or "Absolute path not allowed" in text:
        return f"{path} refers to weight data outside its folder; refused for safety"
    if "Protobuf parsing failed" in text or "INVALID_PROTOBUF" in text or "No graph was found" in text:
        return f"{path} is not an ONNX model or is truncated; re-export it with `rnnkit export`"
    if "external data" in text.lower() or "GetExtDataFromTensorProto" in text:
        return f"{path} needs weight data that is missing next to it: {text[:200]}"
    return f"onnxruntime cannot load {path}: {text[:300]}"


def _check_single_package() -> None:
    """onnxruntime and onnxruntime-gpu share one module; with both installed, which wins is luck."""
    global _warned_two_packages
    if _warned_two_packages:
        return
    _warned_two_packages = True
    installed = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            importlib.metadata.version(dist)
            installed.append(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    if len(installed) == 2:
        warnings.warn("both onnxruntime and onnxruntime-gpu are installed; keep one: "
                      "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu",
                      RnnkitWarning, stacklevel=3)
