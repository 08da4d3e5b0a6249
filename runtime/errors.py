"""The exceptions rnnkit raises.

Every error the library raises on bad input is a subclass of :class:`RnnkitError`; the ones
that are about a bad value are also :class:`ValueError`, so ``except ValueError`` keeps
working for callers that do not know rnnkit. Messages are one line: what was wrong, then
what to do.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ExportError",
    "FormatVersionError",
    "InputError",
    "MetadataError",
    "MissingDependencyError",
    "ModelFileError",
    "ModelNotFoundError",
    "ModuleError",
    "NonFiniteError",
    "ParityError",
    "ProviderError",
    "QuantizationError",
    "RnnkitError",
    "RnnkitWarning",
    "StateError",
    "TaskError",
    "TrainingError",
    "WriteError",
]


class RnnkitError(Exception):
    """Base class of every error rnnkit raises on purpose.

    A message is one line whatever it quotes: control characters in it (a path or a label with a
    newline, say) are escaped.
    """

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            from .text import printable

            args = (printable(args[0]), *args[1:])
        super().__init__(*args)


class RnnkitWarning(UserWarning):
    """Category of the warnings rnnkit emits (filter it with ``warnings.filterwarnings``)."""


class ConfigError(RnnkitError, ValueError):
    """An option or argument has a value rnnkit cannot use."""


class MissingDependencyError(RnnkitError, ImportError):
    """An optional dependency (torch, onnx, matplotlib, onnxruntime-gpu…) is not installed."""


class ModelFileError(RnnkitError, ValueError):
    """A model file cannot be read: not ONNX, truncated, unsafe, or not made by rnnkit."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """The model file does not exist."""


class MetadataError(RnnkitError, ValueError):
    """A model's rnnkit metadata is missing, malformed or inconsistent.

    ``key`` names the offending metadata key (``None`` when the problem spans keys).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class FormatVersionError(MetadataError):
    """The model was written in a format version this rnnkit does not know."""


class DataError(RnnkitError, ValueError):
    """Training data is malformed. ``path`` and ``line`` say where, when known."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
        self.path = path
        self.line = line


class CheckpointError(RnnkitError, ValueError):
    """A training checkpoint is missing, truncated, unsafe or of an unknown version."""


class ExportError(RnnkitError):
    """Exporting a checkpoint to ONNX failed; nothing was written at the target."""


class ParityError(ExportError, ValueError):
    """ONNX Runtime and torch disagree beyond the tolerance.

    ``mismatches`` lists every failing comparison as a dict (case, output, shape, max_abs_diff).
    """

    def __init__(self, message: str, mismatches: list[dict] | None = None) -> None:
        super().__init__(message)
        self.mismatches = list(mismatches or [])


class ModuleError(ExportError, ValueError):
    """A torch module rnnkit cannot map onto its graph, or whose forward does not give what its parts compute."""


class QuantizationError(ExportError, ValueError):
    """int8 quantization was refused (the task metric dropped too far) or failed."""


class ProviderError(RnnkitError):
    """The requested onnxruntime execution provider cannot run here."""


class InputError(RnnkitError, ValueError):
    """A text, token id or argument given to a model call cannot be used (e.g. an empty text)."""


class BudgetError(InputError):
    """A call would need more memory than the model's budget (``load_model(max_call_bytes=…)``).

    Nothing was allocated; ``needed`` and ``allowed`` are the sizes in bytes.
    """

    def __init__(self, message: str, needed: int = 0, allowed: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.allowed = allowed


class NonFiniteError(RnnkitError, ValueError):
    """A model gave (or a state holds) NaN or infinite values: its weights or the state are corrupt."""


class TaskError(RnnkitError, ValueError):
    """The call does not fit the model's task (e.g. ``generate`` on a classifier)."""


class StateError(RnnkitError, ValueError):
    """A recurrent state or stream snapshot does not belong to this model or is corrupt."""


class TrainingError(RnnkitError):
    """Training cannot go on (its loss or weights became NaN or infinite); what it wrote before stays intact."""


class WriteError(RnnkitError, OSError):
    """An output (checkpoint, model, report) could not be written; nothing was replaced."""
