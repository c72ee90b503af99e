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


@op("ReduceMax", "ReduceMin")
def _reduce_extreme(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    """The largest (smallest) element along one axis of values that each depend on at most one categorical column
    (the same one): a table per category (an encoder's "no category matched" test is 1 - ReduceMax of its hits).
    max/min is a selection, exact in float, and moves by at most the largest error of its operands."""
    from .onnx_program import _axis, _const, _reshape_value, _table, _take, _combine
    from .program import cat_to_sym
    from .symbolic import Cat, NotSymbolic

    s = _const(prog, ins[0])
    axes = at.get("axes")
    if axes is None and len(ins) > 1 and ins[1] is not None:
        axes = [int(a) for a in np.asarray(ins[1]).reshape(-1)]
    if axes is None or len(axes) != 1:
        raise NotSymbolic(f"{node.op_type} over several axes (or all of them)")
    ax = _axis(axes[0], s) % len(s.shape)
    parts = [_take(s, np.array([i]), ax) for i in range(s.shape[ax])]
    pick = max if node.op_type == "ReduceMax" else min
    items = _combine([_table(prog, p, p.shape) for p in parts], lambda *v: pick(float(x) for x in v))
    out = cat_to_sym(Cat(items), prog)
    out.E = np.full(out.shape, float(np.max(np.asarray(s.E)))) if np.size(s.E) else out.E
    if not at.get("keepdims", 1):
        out = _reshape_value(out, tuple(d for i, d in enumerate(out.shape) if i != ax))
    return [out]


@op("Max", "Min")
def _max_min(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    """Max/Min of a value and constants (np.clip's ONNX form): per element, a clip of one numeric column,
    a x + b -> clip(a x + b, c, inf) for Max; a clip already (k clip(z, lo, hi) + d) narrows its bounds. Exact in
    float (a selection) and 1-Lipschitz: the operand's rounding error carries over."""
    from .onnx_program import _concat_values, _const, _row_const, _take
    from .program import _near_clip
    from .symbolic import NotSymbolic, Sym, clip_bounds, clip_name

    vals = [v for v in ins if v is not None]
    syms = [v for v in vals if not isinstance(v, np.ndarray)]
    consts = [_row_const(v) for v in vals if isinstance(v, np.ndarray)]
    if len(syms) != 1 or not consts:
        raise NotSymbolic(f"a {node.op_type} of several input-dependent values")
    s = _const(prog, syms[0]).padded(prog.space)
    if s.C.ndim != 2 or s.stage:
        raise NotSymbolic(f"a {node.op_type} of a value that is not one row of raw columns")
    pick = np.maximum if node.op_type == "Max" else np.minimum
    c = consts[0]
    for more in consts[1:]:
        c = pick(c, more)
    c = np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1), (s.shape[0],))
    space = prog.space
    parts = []
    for r in range(s.shape[0]):
        el = _take(s, np.array([r]), -1)
        row = space.pad(el.C)[0]
        nz = [m for m in np.nonzero(row)[0] if m != 0]
        fs = [m for m in nz if len(space.monomials[m]) == 1 and space.vars[space.monomials[m][0]][0] == "f"]
        cr = float(c[r])
        if not fs:  # a x + b of one column: a new clip
            name = clip_name(cr, np.inf) if node.op_type == "Max" else clip_name(-np.inf, cr)
            parts.append(prog.column_function(el, name, dt))
            continue
        others = [m for m in nz if m not in fs]
        f = space.monomials[fs[0]][0]
        key = space.vars[f]
        bounds = clip_bounds(key[2])
        ns = [m for m in others if len(space.monomials[m]) == 1 and space.vars[space.monomials[m][0]][:2] == ("n", key[1])]
        if len(fs) != 1 or bounds is None or len(ns) != len(others):
            raise NotSymbolic(f"a {node.op_type} of a value other than a clip of one column")
        k, d = float(row[fs[0]]), float(row[0])
        t = (cr - d) / k
        lo, hi = bounds
        # k f + d against c: f against t, the comparison turned around when k < 0
        op_f = pick if k > 0 else (np.minimum if node.op_type == "Max" else np.maximum)
        lo2, hi2 = float(op_f(lo, t)), float(op_f(hi, t))
        g = space.groups[space.column_group(key[1])]
        xmax = max(abs(float(v)) for v in (g.categories or [g.lo, g.hi]))
        name2, a2, b2, extra = _near_clip(space, key[1], clip_name(lo2, hi2), key[3], key[4], xmax)
        f2 = space.func_var(key[1], name2, a2, b2)
        space.mono((f2,))
        C = np.zeros((1, space.size))
        C[0, 0] = d
        C[0, space.index[(f2,)]] = k
        if ns:
            C[0, ns[0]] = float(pick(d + row[ns[0]], cr)) - d
        parts.append(Sym(space.pad(C), np.broadcast_to(el.E, (1,)) + abs(k) * extra, 0))
    return [_concat_values(prog, parts, -1) if len(parts) > 1 else parts[0]]
