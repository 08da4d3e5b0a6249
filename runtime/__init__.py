"""rnnkit's runtime: tokenizers, the model format, and torch-free inference.

Imports nothing heavy: onnxruntime and jieba load on first use; torch, onnx and click never.
"""

from .contract import FORMAT_VERSION, ModelSpec
from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ExportError,
    FormatVersionError,
    InputError,
    MetadataError,
    MissingDependencyError,
    ModelFileError,
    ModelNotFoundError,
    ParityError,
    ProviderError,
    QuantizationError,
    RnnkitError,
    RnnkitWarning,
    StateError,
    TaskError,
    WriteError,
)
from .tokenizers import CharTokenizer, Tokenizer, WordTokenizer, tokenizer_from_config
from .vocab import Vocabulary

__all__ = [
    "FORMAT_VERSION",
    "CharTokenizer",
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
    "ModelSpec",
    "ParityError",
    "ProviderError",
    "QuantizationError",
    "RnnkitError",
    "RnnkitWarning",
    "StateError",
    "TaskError",
    "Tokenizer",
    "Vocabulary",
    "WordTokenizer",
    "WriteError",
    "tokenizer_from_config",
]
