"""The `nnef` format: a folder with `graph.nnef`, `.dat` tensors and `portable.json`, or that folder as `.nnef.tgz`.

- `reader`: a folder or archive -> the artifact's files, validated by the `nnef` parser.
- `writer`: the files -> a folder or `.nnef.tgz`, atomically, refusing to overwrite without force.
- `executor`: portable's numpy executor for the NNEF operators portable emits (no torch needed).
- `artifact`: `NnefModel`, the `Model` that ties them together with `portable.json` (provenance, I/O mapping and
  the class labels that NNEF, having no strings, cannot hold).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...registry import LoadOptions, register_format
from .artifact import NnefModel

__all__ = ["NnefFormat", "NnefModel"]


@register_format("nnef", extensions=(".nnef", ".nnef.tgz"), target=True, priority=35,
                 description="an NNEF model: folder with graph.nnef and .dat tensors, or .nnef.tgz")
class NnefFormat:
    """An NNEF model: folder with graph.nnef and .dat tensors, or .nnef.tgz."""

    @staticmethod
    def sniff(source: Any) -> bool:
        if isinstance(source, NnefModel):
            return True
        if not isinstance(source, (str, Path)):
            return False
        p = Path(source)
        return (p.is_dir() and (p / "graph.nnef").is_file()) or \
            (p.is_file() and p.name.lower().endswith((".nnef.tgz", ".nnef.tar.gz")))

    @staticmethod
    def load(source: Any, options: LoadOptions) -> NnefModel:
        if isinstance(source, NnefModel):
            return source
        from .reader import read

        return read(Path(source))
