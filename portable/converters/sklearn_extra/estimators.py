"""Converters for scikit-learn estimators that skl2onnx 1.20 cannot convert."""
from __future__ import annotations


def register() -> None:
    """Register every converter of this module with skl2onnx."""
