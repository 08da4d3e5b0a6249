"""rnnkit's exporter: checkpoint → one ONNX file (needs torch and onnx)."""

from .exporter import ExportReport, export_onnx
from .graph import DEFAULT_OPSET, trace_to_onnx
from .parity import ParityReport, check_parity
from .quantize import quantize_int8

__all__ = ["DEFAULT_OPSET", "ExportReport", "ParityReport", "check_parity", "export_onnx", "quantize_int8",
           "trace_to_onnx"]
