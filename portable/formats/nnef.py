"""The `nnef` format: a folder with `graph.nnef` and `.dat` tensors, or that folder as `.nnef.tgz`.

Writing and the executor come in the NNEF issue.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError
from ..registry import LoadOptions, register_format


@register_format("nnef", extensions=(".nnef", ".nnef.tgz"), target=True, priority=35,
                 description="an NNEF model: folder with graph.nnef and .dat tensors, or .nnef.tgz")
class NnefFormat:
    """An NNEF model: folder with graph.nnef and .dat tensors, or .nnef.tgz."""

    @staticmethod
    def sniff(source: Any) -> bool:
        if not isinstance(source, (str, Path)):
            return False
        p = Path(source)
        return (p.is_dir() and (p / "graph.nnef").is_file()) or p.name.lower().endswith(".nnef.tgz")

    @staticmethod
    def load(source: Any, options: LoadOptions) -> Any:
        raise MissingDependencyError("loading NNEF models comes in a later issue of portable")
