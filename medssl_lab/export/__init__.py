"""The encoder out of the package: safetensors + config.json for MONAI, TorchScript, ONNX, and a model card."""

from medssl_lab.export.encoder import ExportMismatch, ExportReport, check_images, export_encoder
from medssl_lab.export.formats import FILE_NAMES, FORMATS

__all__ = ["FILE_NAMES", "FORMATS", "ExportMismatch", "ExportReport", "check_images", "export_encoder"]
