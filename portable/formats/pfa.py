"""The `pfa` format: PFA documents (JSON or YAML). The engine and reader come in the PFA issue."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError
from ..registry import LoadOptions, register_format

EXTENSIONS = (".pfa", ".json", ".yaml", ".yml")


@register_format("pfa", extensions=EXTENSIONS, priority=40,
                 description="a PFA document (Portable Format for Analytics), JSON or YAML")
class PfaFormat:
    """A PFA document (Portable Format for Analytics), JSON or YAML."""

    @staticmethod
    def sniff(source: Any) -> bool:
        if isinstance(source, dict):
            return "action" in source and "input" in source
        return isinstance(source, (str, Path)) and Path(source).suffix.lower() in EXTENSIONS

    @staticmethod
    def load(source: Any, options: LoadOptions) -> Any:
        raise MissingDependencyError("loading PFA documents comes in a later issue of portable")
