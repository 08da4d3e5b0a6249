"""rnnkit's exporter: a checkpoint or your own torch module → one ONNX file, and checks that it
still gives torch's answers (needs torch and onnx)."""

from .exporter import ExportReport, export_module, export_onnx
from .graph import DEFAULT_OPSET, trace_to_onnx
from .parity import ParityReport, check_parity
from .parts import rnn_from_cell
from .quantize import MODES as QUANTIZE_MODES
from .quantize import quantize_model
from .verify import VerifyReport, assert_parity, verify

__all__ = ["DEFAULT_OPSET", "QUANTIZE_MODES", "ExportReport", "ParityReport", "VerifyReport", "assert_parity",
           "check_parity", "export_module", "export_onnx", "quantize_model", "rnn_from_cell", "trace_to_onnx",
           "verify"]
