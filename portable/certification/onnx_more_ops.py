"""More ONNX operators for the symbolic reading (`onnx_program`), registered in its table: those ensembles of
readable models use (a voting ensemble's `Sum` of its members' weighted outputs), ReduceMax/ReduceMin of category
tables (an encoder's infrequent column), Max/Min by constants (np.clip: a clip function of one column),
comparisons decided by a value's proved range and v / sum(v) as an L1 normalisation (a calibrated classifier's
per-fold normalisation), and `demand_order`, the order `read_onnx` reads the nodes in. Imported by
`affine.read_model`.
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
    from .onnx_program import _axes, _axis, _const, _reshape_value, _table, _take, _combine
    from .program import cat_to_sym
    from .symbolic import Cat, NotSymbolic

    s = _const(prog, ins[0])
    axes = _axes(at, ins)
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
        ns = [m for m in others
              if len(space.monomials[m]) == 1 and space.vars[space.monomials[m][0]][:2] == ("n", key[1])]
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


def _decided(prog: Program, node: Any, ins: list) -> Any:
    """A comparison of an input-dependent value with constants that has one answer over the whole domain (the
    value's proved range, widened by its rounding error, lies on one side): that answer as a constant, else None.
    (A calibrated classifier's "sum of probabilities == 0" guard, a sum of sigmoids, is never true.)"""
    from .onnx_program import _const, _row_const
    from .symbolic import Sym

    a, b = ins
    flip = False
    if isinstance(a, np.ndarray) and isinstance(b, Sym):
        a, b, flip = b, a, True
    if not (isinstance(a, Sym) and isinstance(b, np.ndarray)) or np.asarray(b).dtype.kind not in "fiub":
        return None
    s = _const(prog, a)
    lo, hi = prog.space.range(prog.space.pad(s.C), prog.side)
    lo, hi = lo - s.E, hi + s.E
    c = np.asarray(_row_const(b), dtype=np.float64)
    shape = np.broadcast_shapes(np.shape(lo), c.shape)
    lo, hi, c = (np.broadcast_to(v, shape) for v in (lo, hi, c))
    kind = node.op_type
    if flip:
        kind = {"Greater": "Less", "Less": "Greater", "GreaterOrEqual": "LessOrEqual",
                "LessOrEqual": "GreaterOrEqual"}.get(kind, kind)
    true = {"Equal": np.zeros(shape, bool), "Greater": lo > c, "Less": hi < c,
            "GreaterOrEqual": lo >= c, "LessOrEqual": hi <= c}[kind]
    false = {"Equal": (lo > c) | (hi < c), "Greater": hi <= c, "Less": lo >= c,
             "GreaterOrEqual": hi < c, "LessOrEqual": lo > c}[kind]
    if not np.all(true | false) or np.any(np.isnan(lo) | np.isnan(hi)) or (s.nan is not None and np.any(s.nan != -1)):
        return None
    return prog.const(true.astype(np.float64))


def _of_sigmoids(prog: Program, s: Any) -> bool:
    """s is a selection of sigmoid units (a one-vs-rest calibration's per-class probabilities). Other
    normalisations (exp / sum exp, read as a softmax elsewhere) keep their own reading."""
    from .program import blocks

    if not s.stage or s.stage > len(prog.stages) or not prog._nonnegative(Sym_flat(s)):
        return False
    st = prog.stages[s.stage - 1]
    return all(a == "sigmoid" for a, _ in blocks(st.act, len(st.lo)))


def Sym_flat(s: Any) -> Any:
    from .symbolic import Sym

    return Sym(s.C.reshape(-1, s.C.shape[-1]), np.broadcast_to(s.E, s.shape).reshape(-1), s.stage, None)


def _wrap_compare() -> None:
    from .onnx_program import OPS

    for name in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"):
        base = OPS[name]
        if getattr(base, "_decides", False):
            continue

        def compare(prog: Program, node: Any, at: dict, ins: list, dt: str, _base: Any = base) -> list:
            from .symbolic import Sym

            if any(isinstance(v, Sym) and v.stage for v in ins):  # values after a nonlinearity: by their range
                out = _decided(prog, node, ins)
                if out is not None:
                    return [out]
            return _base(prog, node, at, ins, dt)

        compare._decides = True  # type: ignore[attr-defined]
        OPS[name] = compare

    base_div = OPS["Div"]
    if not getattr(base_div, "_normalises", False):
        def div(prog: Program, node: Any, at: dict, ins: list, dt: str, _base: Any = base_div) -> list:
            """v / sum(v) (an L1 normalisation, a calibrated classifier's): the l1norm nonlinearity."""
            from .onnx_program import _const
            from .symbolic import Sym

            a, b = ins
            if isinstance(a, Sym) and isinstance(b, Sym) and a.stage and a.C.ndim >= 2:
                sa, sb = _const(prog, a).padded(prog.space), _const(prog, b).padded(prog.space)
                rows = sa.C.reshape(-1, prog.space.size)
                # three or more one-vs-rest sigmoids (two classes are [1 - p, p], read as they are by the members)
                if int(np.prod(sb.shape or (1,))) == 1 and len(rows) >= 3 and _of_sigmoids(prog, sa) and \
                        np.array_equal(rows.sum(axis=0), sb.C.reshape(-1, prog.space.size)[0]):
                    flat = Sym(rows, np.broadcast_to(sa.E, sa.shape).reshape(-1), sa.stage, None)
                    out = prog.activate(flat, "l1norm", dt)
                    return [Sym(out.C.reshape(sa.C.shape), np.asarray(out.E).reshape(sa.shape), out.stage)]
            return _base(prog, node, at, ins, dt)

        div._normalises = True  # type: ignore[attr-defined]
        OPS["Div"] = div


_wrap_compare()


NONLINEAR = ("Sigmoid", "Tanh", "Relu", "Softmax", "Exp", "Div", "LinearClassifier", "Normalizer")


def demand_order(graph: Any) -> list[Any]:
    """The graph's nodes in a topological order that follows the model's structure whatever order they were
    written in: by the number of nonlinear operators upstream of each (so every unit of one nonlinear stage is
    read before the next stage starts, as the reading's stages require), then in the order the outputs ask for
    them (depth first, inputs left to right: a calibrated classifier's folds, an ensemble's members in the order
    they are summed). Both models' nonlinear units then come out in the same order."""
    import heapq

    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    rank: dict[int, int] = {}
    roots = [producer.get(o.name) for o in graph.output] + list(range(len(nodes)))  # then unneeded nodes
    for root in roots:
        stack = [(root, False)]
        while stack:
            i, done = stack.pop()
            if i is None or (i in rank and not done):
                continue
            if done:
                rank[i] = len(rank) if rank.get(i, -1) < 0 else rank[i]
                continue
            rank[i] = -1
            stack.append((i, True))
            for name in reversed(list(nodes[i].input)):
                j = producer.get(name)
                if j is not None and j not in rank:
                    stack.append((j, False))
    deps = [{producer[n] for n in node.input if n in producer} for node in nodes]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    level = [0] * len(nodes)
    waiting = [len(d) for d in deps]
    ready = [(0, rank[i], i) for i in range(len(nodes)) if not deps[i]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, i = heapq.heappop(ready)
        order.append(nodes[i])
        for k in users.get(i, []):
            level[k] = max(level[k], level[i] + (nodes[i].op_type in NONLINEAR))
            waiting[k] -= 1
            if not waiting[k]:
                heapq.heappush(ready, (level[k], rank[k], k))
    if len(order) != len(nodes):  # a cycle (not a valid graph): as written
        return nodes
    return order
