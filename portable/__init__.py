"""portable: make trained models portable (ONNX, NNEF) and prove the conversion computes the same thing.

Importing portable is light: numpy only. onnx, onnxruntime, skl2onnx and nnef load when a format needs them.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .api import audit, certify, check, convert, drift, export, list_converters, list_formats, load, serve
from .errors import (ConversionError, InputError, NoConverterError, NotEquivalentError, PortableError,
                     SignatureMismatchError, UnsafePickleError)
from .model import Model, Signature, TensorSpec
from .registry import ConvertOptions, LoadOptions, converter, register_format

__all__ = [
    "__version__", "load", "convert", "check", "certify", "list_formats", "list_converters", "export", "audit", "serve",
    "drift",
    "Model", "Signature", "TensorSpec", "ConvertOptions", "LoadOptions", "converter", "register_format",
    "PortableError", "InputError", "ConversionError", "NoConverterError", "NotEquivalentError",
    "SignatureMismatchError", "UnsafePickleError",
]
