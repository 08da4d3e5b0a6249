"""rnnkit's exporter: checkpoint → one ONNX file (needs torch and onnx)."""

from .exporter import ExportReport, export_module, export_onnx
from .graph import DEFAULT_OPSET, trace_to_onnx
from .parity import ParityReport, check_parity
from .parts import rnn_from_cell
from .quantize import MODES as QUANTIZE_MODES
from .quantize import quantize_model

__all__ = ["DEFAULT_OPSET", "QUANTIZE_MODES", "ExportReport", "ParityReport", "check_parity", "export_module",
           "export_onnx", "quantize_model", "rnn_from_cell", "trace_to_onnx"]
