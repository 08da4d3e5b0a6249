"""rnnkit's runtime: tokenizers, the model format, and torch-free inference.

Imports nothing heavy: onnxruntime and jieba load on first use; torch, onnx and click never.
"""

from .batcher import StreamBatcher
from .contract import FORMAT_VERSION, ModelSpec
from .engine import StepBinding
from .errors import (
    BudgetError,
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
    ModuleError,
    NonFiniteError,
    ParityError,
    ProviderError,
    QuantizationError,
    RnnkitError,
    RnnkitWarning,
    StateError,
    TaskError,
    TrainingError,
    WriteError,
)
from .evaluation import Evaluation
from .model import Model, Prediction, TagResult, TensorInfo, load_model
from .stream import Stream
from .tagging import TagStream
from .tokenizers import CharTokenizer, Tokenizer, WhitespaceTokenizer, WordTokenizer, tokenizer_from_config
from .vocab import Vocabulary

__all__ = [
    "FORMAT_VERSION",
    "BudgetError",
    "CharTokenizer",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Evaluation",
    "ExportError",
    "FormatVersionError",
    "InputError",
    "MetadataError",
    "MissingDependencyError",
    "Model",
    "ModelFileError",
    "ModelNotFoundError",
    "ModelSpec",
    "ModuleError",
    "NonFiniteError",
    "ParityError",
    "Prediction",
    "ProviderError",
    "QuantizationError",
    "RnnkitError",
    "RnnkitWarning",
    "StateError",
    "StepBinding",
    "Stream",
    "StreamBatcher",
    "TagResult",
    "TagStream",
    "TaskError",
    "TensorInfo",
    "Tokenizer",
    "TrainingError",
    "Vocabulary",
    "WhitespaceTokenizer",
    "WordTokenizer",
    "WriteError",
    "load_model",
    "tokenizer_from_config",
]
