"""More ONNX operators for the symbolic reading (`onnx_program`), registered in its table: those ensembles of
readable models use (a voting ensemble's `Sum` of its members' weighted outputs). Imported by `affine.read_model`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_program import _const, _row_const, op
from .program import Program


@op("Sum")
def _sum(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    """Elementwise sum of its inputs (each addition rounded in the graph's dtype)."""
    vals = [prog.const(_row_const(v)) if isinstance(v, np.ndarray) else _const(prog, v) for v in ins if v is not None]
    total = vals[0]
    for v in vals[1:]:
        total = prog.add(total, v, dt)
    return [total]


@op("Slice")
def _slice(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    """A slice of constant bounds along the last (feature) axis of a one-row value."""
    from .onnx_program import _axis, _take
    from .symbolic import NotSymbolic

    data = ins[0]
    if any(not isinstance(v, np.ndarray) for v in ins[1:] if v is not None):
        raise NotSymbolic("a Slice whose bounds depend on the inputs")
    starts, ends = (np.asarray(v, dtype=np.int64).reshape(-1) for v in ins[1:3])
    axes = np.asarray(ins[3], dtype=np.int64).reshape(-1) if len(ins) > 3 and ins[3] is not None \
        else np.arange(len(starts))
    steps = np.asarray(ins[4], dtype=np.int64).reshape(-1) if len(ins) > 4 and ins[4] is not None \
        else np.ones(len(starts), dtype=np.int64)
    shape = data.shape if hasattr(data, "shape") else None
    if shape is None or len(shape) != 1:
        raise NotSymbolic("a Slice of a value that is not one row of features")
    out = data
    for s0, e0, ax, st in zip(starts, ends, axes, steps):
        ax = int(ax)
        if ax == 0 or (ax < 0 and ax != -1):
            if ax == 0 and (s0, e0, st) in ((0, np.iinfo(np.int64).max, 1),):
                continue
            if ax == 0:
                raise NotSymbolic("a Slice along the batch axis")
        _axis(ax if ax > 0 else -1, out)
        idx = np.arange(shape[0])[slice(int(s0), int(e0), int(st))]
        out = _take(out, idx, -1)
    return [out]


@op("Log", "Sqrt")
def _column_function(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    """log/sqrt of raw columns (a FunctionTransformer's): function variables of the columns (see program)."""
    return [prog.column_function(_const(prog, ins[0]), node.op_type.lower(), dt)]
