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
from .model import Model, Prediction, TagResult, load_model
from .stream import Stream, StreamBatcher
from .tagging import TagStream
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
    "Model",
    "ModelFileError",
    "ModelNotFoundError",
    "ModelSpec",
    "ParityError",
    "Prediction",
    "ProviderError",
    "QuantizationError",
    "RnnkitError",
    "RnnkitWarning",
    "StateError",
    "Stream",
    "StreamBatcher",
    "TagResult",
    "TagStream",
    "TaskError",
    "Tokenizer",
    "Vocabulary",
    "WordTokenizer",
    "WriteError",
    "load_model",
    "tokenizer_from_config",
]
