"""What portable implements of the PFA library (`portable formats --pfa`): per spec function, the tier that runs it
and whether the ONNX compiler takes it, with the reason when it does not.

- every one of the spec's 449 functions runs in the sequential (row-by-row) tier (`rowlib/`), checked by the
  conformance table `tests/test_pfa_conformance.py`;
- the vectorized tier (`lib_*.py`) and the ONNX compiler cover the numeric functions that have a batch form.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import sigs

# why a family has no batch (vectorized / ONNX) form
_NO_BATCH = {
    "s": "string processing (no ONNX string operators beyond equality)",
    "re": "regular expressions (no ONNX operator)",
    "bytes": "byte strings (no ONNX type)",
    "parse": "parsing text",
    "cast": "conversions to text or bytes, or fan-outs of strings",
    "time": "calendars and time zones",
    "rand": "pseudorandom: scored in order (stateful)",
    "stat": "state records updated per record (cells/pools)",
    "prob": "distribution functions: scipy, row by row",
    "interp": "table lookups over records",
    "map": "maps keyed per record",
    "enum": "enum metadata",
    "fixed": "fixed-size byte strings",
}


@dataclass
class Row:
    name: str
    sequential: bool
    vectorized: bool
    note: str


def library_table() -> list[Row]:
    from .library import LIBRARY
    from .rowlib import ROWLIB

    rows = []
    for name in sorted(sigs.table()):
        vec = name in LIBRARY
        family = name.split(".")[0] if "." in name else "core"
        note = "" if vec else _NO_BATCH.get(family, "higher-order or record-valued: row by row")
        rows.append(Row(name, name in ROWLIB, vec, note))
    return rows


def summary() -> dict[str, int]:
    rows = library_table()
    return {"spec": len(rows), "implemented": sum(r.sequential for r in rows),
            "vectorized": sum(r.vectorized for r in rows)}


__all__ = ["Row", "library_table", "summary"]
