"""The `pfa` format: PFA documents (Portable Format for Analytics), JSON or YAML.

`reader` parses and checks a document, `types` holds its Avro types, `engine` (with `special` and the `lib_*`
function modules) scores a whole batch at once with numpy, and `PfaModel` makes it a portable `Model`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..._io import sha256_bytes, sha256_file
from ...model import Origin
from ...registry import LoadOptions, register_format
from .model import PfaModel
from .reader import Document, parse, read_file

EXTENSIONS = (".pfa", ".json", ".yaml", ".yml")


@register_format("pfa", extensions=EXTENSIONS, priority=40,
                 description="a PFA document (Portable Format for Analytics), JSON or YAML")
class PfaFormat:
    """A PFA document (Portable Format for Analytics), JSON or YAML."""

    @staticmethod
    def sniff(source: Any) -> bool:
        if isinstance(source, dict):
            return "input" in source and ("action" in source or "output" in source)
        return isinstance(source, (str, Path)) and Path(source).suffix.lower() in EXTENSIONS

    @staticmethod
    def load(source: Any, options: LoadOptions) -> PfaModel:
        """Read and check a document (path or dict).

        Raises:
            PFAError: the document is malformed, breaks the spec, or uses a construct portable refuses.
        """
        if isinstance(source, dict):
            doc = parse(source)
            digest = sha256_bytes(json.dumps(source, sort_keys=True, default=str).encode("utf-8"))
            return PfaModel(doc, origin=Origin("pfa", name=doc.name or "pfa document", sha256=digest,
                                               library="pfa"))
        doc = read_file(source)
        path = Path(source)
        origin = Origin("pfa", name=doc.name or path.name, path=str(path), sha256=sha256_file(path), library="pfa")
        return PfaModel(doc, origin=origin)


__all__ = ["Document", "PfaFormat", "PfaModel", "parse", "read_file"]
