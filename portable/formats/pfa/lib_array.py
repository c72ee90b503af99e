"""Array, linear-algebra and map functions: `a.*`, `la.*`, `map.*`.

A batched array of primitives is a tensor `[N, D]`; functions that take a function argument (`a.map`,
`a.zipmap`) call it once on whole tensors when the items are primitives (every scalar operation is
elementwise), and once per item for a constant array of records (a forest of trees, say).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import PFARuntimeError
from . import types as T
from .engine import Fn
from .library import arity, pfa_function
from .values import Val


def array_arg(ev: Any, v: Any, name: str, where: str) -> T.Array:
    if not isinstance(v, Val) or not isinstance(v.type, T.Array):
        raise ev.error(f"{name} needs an array, found {getattr(v, 'type', v)!s}", where)
    return v.type


def _tensorish(t: T.AvroType) -> bool:
    return isinstance(t, (T.Prim, T.Enum)) or T.nullable_inner(t) is not None


def _items(ev: Any, v: Val, where: str) -> Any:
    return ev.tensor(v, ev.dtype_of(v.type.items))


@pfa_function("a.len")
def length(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "a.len", where)
    v = args[0]
    array_arg(ev, v, "a.len", where)
    if v.const:
        return Val(T.INT, len(v.data), True)
    if isinstance(v.data, list):
        return Val(T.INT, len(v.data), True)
    return Val(T.INT, ev.b.length(v.data), False)


def _empty_error(ev: Any, v: Val, code: int, where: str) -> None:
    if v.const and len(v.data) == 0:
        raise PFARuntimeError("empty array", code=code, where=where)
    if not v.const and ev.b.name == "numpy" and np.shape(v.data)[-1] == 0:
        ev.runtime_error("empty array", code, where)


def _reduction(name: str, red: str, code: int | None, keep_type: bool) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 1, name, where)
        v = args[0]
        t = array_arg(ev, v, name, where)
        if not T.is_numeric(t.items) and red not in ("max", "min"):
            raise ev.error(f"{name} needs an array of numbers, found {t.describe()}", where)
        if code is not None:
            _empty_error(ev, v, code, where)
        x = _items(ev, v, where)
        out_t = t.items if keep_type else T.DOUBLE
        if red in ("max", "min") and T.is_stringlike(t.items):
            if ev.backend_for(x).name != "numpy":
                raise ev.unsupported(f"{name} of strings cannot be compiled (ONNX has no string ordering)", where)
            if v.const:
                return Val(out_t, (max if red == "max" else min)(v.data), True)
            srt = np.sort(np.asarray(x), axis=-1)
            return ev.result(out_t, srt[..., -1] if red == "max" else srt[..., 0], v)
        if red == "mean":
            x = ev.cast(x, ev.dtype_of(T.DOUBLE))
        if v.const and len(v.data) == 0:
            return Val(out_t, {"sum": 0, "mean": float("nan"), "prod": 1}.get(red, float("nan")), True)
        return ev.result(out_t, ev.backend_for(x).reduce(red, x, axis=-1), v)
    return impl


pfa_function("a.sum")(_reduction("a.sum", "sum", None, True))
pfa_function("a.product")(_reduction("a.product", "prod", None, True))
_plain_mean = _reduction("a.mean", "mean", None, False)


@pfa_function("a.mean")
def mean(ev: Any, args: list[Val], where: str) -> Val:
    """a.mean; over a forest of numeric tree walks the ONNX compiler emits one averaging TreeEnsemble."""
    v = args[0] if len(args) == 1 else None
    if v is not None and not v.const and v.origin is not None and v.origin[0] == "forest" \
            and hasattr(ev.b, "forest_mean") and T.is_numeric(v.type.items):
        return Val(T.DOUBLE, ev.b.forest_mean(v.origin[1]), False)
    return _plain_mean(ev, args, where)
pfa_function("a.max")(_reduction("a.max", "max", 15240, True))
pfa_function("a.min")(_reduction("a.min", "min", 15250, True))


def _arg(name: str, red: str, code: int) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 1, name, where)
        v = args[0]
        array_arg(ev, v, name, where)
        _empty_error(ev, v, code, where)
        x = _items(ev, v, where)
        return ev.result(T.INT, ev.backend_for(x).reduce(red, x, axis=-1), v)
    return impl


pfa_function("a.argmax")(_arg("a.argmax", "argmax", 15320))
pfa_function("a.argmin")(_arg("a.argmin", "argmin", 15330))


@pfa_function("a.logsumexp")
def logsumexp(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "a.logsumexp", where)
    v = args[0]
    array_arg(ev, v, "a.logsumexp", where)
    if v.const and len(v.data) == 0:
        return Val(T.DOUBLE, float("nan"), True)
    x = ev.tensor(v, ev.dtype_of(T.DOUBLE))
    b = ev.backend_for(x)
    m = b.reduce("max", x, axis=-1)
    s = b.reduce("sum", ev.op("exp", ev.op("sub", x, b.unsqueeze(m, -1))), axis=-1)
    return ev.result(T.DOUBLE, ev.op("add", m, ev.op("log", s)), v)


@pfa_function("a.subseq")
def subseq(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 3, "a.subseq", where)
    v, start, end = args
    array_arg(ev, v, "a.subseq", where)
    if not (start.const and end.const):
        raise ev.unsupported("a.subseq with start or end computed per record is not supported", where)
    s, e = int(start.data), int(end.data)
    if v.const:
        return Val(v.type, list(v.data)[s:e], True)
    if isinstance(v.data, list):
        return Val(v.type, v.data[s:e], False)
    return Val(v.type, ev.b.slice(v.data, s, e, axis=1), False)


# -- functions of functions ----------------------------------------------------------------------------------
def _fn_arg(ev: Any, f: Any, name: str, where: str) -> Fn:
    if not isinstance(f, Fn):
        raise ev.error(f"{name} needs a function argument ({{\"fcn\": ...}} or an inline function)", where)
    return f


def element_vals(ev: Any, v: Val) -> list[Val]:
    """The items of a constant array, or of a batched array held as a list of Vals."""
    if v.const:
        return [Val(v.type.items, x, True) for x in v.data]
    if isinstance(v.data, np.ndarray):  # a batched [N, K, ...] tensor: its K items
        return [Val(v.type.items, np.take(v.data, i, axis=1), False) for i in range(np.shape(v.data)[1])]
    return list(v.data)


def _stack_results(ev: Any, results: list[Val], where: str) -> Val:
    t = results[0].type if results else T.NULL
    if all(r.const for r in results):
        return Val(T.Array(t), [r.data for r in results], True)
    if _tensorish(t):
        dt = ev.dtype_of(t)
        tensors = [ev.tensor(ev.broadcast(r) if r.const else r, dt) for r in results]
        origin = None
        if all(r.origin is not None and r.origin[0] == "tree" for r in results):
            origin = ("forest", [r.origin for r in results])
        return Val(T.Array(t), ev.b.stack(tensors, axis=1), False, origin)
    if isinstance(t, T.Array) and _tensorish(t.items):
        dt = ev.dtype_of(t.items)
        return Val(T.Array(t), ev.b.stack([ev.tensor(ev.broadcast(r) if r.const else r, dt) for r in results],
                                          axis=1), False)
    return Val(T.Array(t), results, False)


@pfa_function("a.map")
def amap(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, 2, "a.map", where)
    v, f = args[0], _fn_arg(ev, args[1], "a.map", where)
    t = array_arg(ev, v, "a.map", where)
    if not v.const and not isinstance(v.data, list) and _tensorish(t.items):
        out = f(ev, [Val(t.items, v.data, False)], where)  # elementwise over the whole [N, D] tensor
        return Val(T.Array(out.type), ev.tensor(out), False)
    if v.const and _tensorish(t.items) and len(v.data) > 64:
        out = f(ev, [Val(t.items, ev.const_array(v), True)], where)
        return Val(T.Array(out.type), out.data, True)
    return _stack_results(ev, [f(ev, [x], f"{where}[{i}]") for i, x in enumerate(element_vals(ev, v))], where)


@pfa_function("a.zipmap")
def zipmap(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, (3, 4), "a.zipmap", where)
    arrays, f = args[:-1], _fn_arg(ev, args[-1], "a.zipmap", where)
    types = [array_arg(ev, a, "a.zipmap", f"{where}[{i}]") for i, a in enumerate(arrays)]
    if all(_tensorish(t.items) for t in types) and not all(a.const for a in arrays):
        # every scalar operation is elementwise, so one call on the whole [N, D] tensors maps every item
        ins = [Val(t.items, ev.tensor(a, ev.dtype_of(t.items)), a.const) for a, t in zip(arrays, types)]
        out = f(ev, ins, where)
        return Val(T.Array(out.type), out.data, out.const)
    items = [element_vals(ev, a) for a in arrays]
    if len({len(i) for i in items}) != 1:
        raise PFARuntimeError("misaligned arrays", code=15650, where=where)
    return _stack_results(ev, [f(ev, list(row), f"{where}[{i}]") for i, row in enumerate(zip(*items))], where)


# -- mode ---------------------------------------------------------------------------------------------------------
def mode_from_votes(ev: Any, votes: Any, classes: np.ndarray, average: bool) -> Any:
    """The class with most votes per row; ties give the median of the tied classes (sorted ascending), as
    the spec says: the lower median, or for float classes the mean of the two middle ones."""
    b = ev.backend_for(votes)
    f = ev.dtype_of(T.DOUBLE)
    top = b.unsqueeze(b.reduce("max", votes, axis=-1), -1)
    tied = ev.cast(ev.op("eq", votes, top), f)
    k = b.reduce("sum", tied, axis=-1)
    rank = ev.op("floor", ev.op("div", ev.op("sub", k, np.asarray(1.0, f)), np.asarray(2.0, f)))
    cum = b.cumsum(tied, axis=-1)
    def pick(r: Any) -> Any:
        hit = ev.op("and", ev.op("eq", cum, b.unsqueeze(ev.op("add", r, np.asarray(1.0, f)), -1)),
                    ev.op("gt", tied, np.asarray(0.0, f)))
        return b.reduce("argmax", ev.cast(hit, f), axis=-1)
    lo = pick(rank)
    if not average:
        return b.gather(classes, lo)
    hi = pick(ev.op("floor", ev.op("div", k, np.asarray(2.0, f))))
    vals = classes.astype(f)
    return ev.op("div", ev.op("add", b.gather(vals, lo), b.gather(vals, hi)), np.asarray(2.0, f))


@pfa_function("a.mode")
def mode(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "a.mode", where)
    v = args[0]
    t = array_arg(ev, v, "a.mode", where)
    _empty_error(ev, v, 15470, where)
    average = t.items in (T.DOUBLE, T.FLOAT)
    if v.const:
        x = ev.const_array(v)
        classes, inv = np.unique(x, return_inverse=True)
        votes = np.bincount(inv, minlength=len(classes)).astype(float)[None, :]
        out = np.asarray(mode_from_votes(ev, votes, classes, average))[0]
        return Val(t.items, out.item() if hasattr(out, "item") else out, True)
    if v.origin is not None and v.origin[0] == "forest" and hasattr(ev.b, "forest_votes"):
        votes, classes = ev.b.forest_votes(v.origin[1])
        return Val(t.items, mode_from_votes(ev, votes, classes, average), False)
    if ev.b.name != "numpy":
        raise ev.unsupported("a.mode of an array computed per record compiles only for forests of trees "
                             "(a.map of tree walks over a cell)", where)
    x = np.asarray(v.data)
    classes, inv = np.unique(x, return_inverse=True)
    inv = inv.reshape(x.shape)
    votes = np.zeros((x.shape[0], len(classes)))
    rows = np.arange(x.shape[0])
    for j in range(x.shape[1]):
        np.add.at(votes, (rows, inv[:, j]), 1.0)
    return Val(t.items, mode_from_votes(ev, votes, classes, average), False)


# -- linear algebra ------------------------------------------------------------------------------------------------
def _depth(t: T.AvroType) -> int:
    d = 0
    while isinstance(t, T.Array):
        t, d = t.items, d + 1
    return d


def _la_arg(ev: Any, v: Val, name: str, where: str) -> int:
    t = v.type
    d = _depth(t)
    leaf = t
    while isinstance(leaf, T.Array):
        leaf = leaf.items
    if d not in (1, 2) or not T.is_numeric(leaf):
        if isinstance(t, T.Map):
            raise ev.unsupported(f"{name} on maps is not supported (use arrays)", where)
        raise ev.error(f"{name} needs a vector or a matrix of doubles, found {t.describe()}", where)
    return d


@pfa_function("la.dot")
def la_dot(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "la.dot", where)
    x, y = args
    dx, dy = _la_arg(ev, x, "la.dot", f"{where}[0]"), _la_arg(ev, y, "la.dot", f"{where}[1]")
    if dx != 2:
        raise ev.error("la.dot's first argument is a matrix (array of arrays)", where)
    dt = ev.dtype_of(T.DOUBLE)
    a, b = ev.tensor(x, dt), ev.tensor(y, dt)
    if x.const and y.const and (len(a) == 0 or a.ndim < 2):
        raise PFARuntimeError("too few rows/cols", code=24051, where=where)
    if ev.b.name == "numpy" or (x.const and y.const):
        inner_b = np.shape(b)[-1] if dy == 1 else np.shape(b)[-2]
        if np.shape(a)[-1] != inner_b:
            raise PFARuntimeError("misaligned matrices", code=24050, where=where)
    be = ev.backend_for(a, b)
    if dy == 1:
        if x.const:
            out = be.matmul(b, ev.np.transpose(a))  # [N, D] @ [D, P]
        elif y.const:
            out = be.matmul(a, b)  # [N, P, D] @ [D]
        else:
            out = be.reduce("sum", ev.op("mul", a, be.unsqueeze(b, 1)), axis=-1)
        return ev.result(T.Array(T.DOUBLE), out, x, y)
    return ev.result(T.Array(T.Array(T.DOUBLE)), be.matmul(a, b), x, y)


def _elementwise(name: str, opname: str) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 2, name, where)
        x, y = args
        dx, dy = _la_arg(ev, x, name, f"{where}[0]"), _la_arg(ev, y, name, f"{where}[1]")
        if dx != dy:
            raise ev.error(f"{name} needs two vectors or two matrices", where)
        dt = ev.dtype_of(T.DOUBLE)
        a, b = ev.tensor(x, dt), ev.tensor(y, dt)
        if x.const and y.const and np.shape(a) != np.shape(b):
            raise PFARuntimeError("misaligned matrices", code=24030 if opname == "add" else 24040, where=where)
        if ev.b.name == "numpy" and not (x.const and y.const) and np.shape(a)[-dx:] != np.shape(b)[-dx:]:
            raise PFARuntimeError("misaligned matrices", code=24030 if opname == "add" else 24040, where=where)
        return ev.result(x.type if dx == 1 else T.Array(T.Array(T.DOUBLE)), ev.op(opname, a, b), x, y)
    return impl


pfa_function("la.add")(_elementwise("la.add", "add"))
pfa_function("la.sub")(_elementwise("la.sub", "sub"))


@pfa_function("la.scale")
def la_scale(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "la.scale", where)
    x, alpha = args
    d = _la_arg(ev, x, "la.scale", where)
    dt = ev.dtype_of(T.DOUBLE)
    a, s = ev.tensor(x, dt), ev.tensor(alpha, dt)
    if not alpha.const:
        for _ in range(d):
            s = ev.b.unsqueeze(s, -1)
    return ev.result(T.Array(T.DOUBLE) if d == 1 else T.Array(T.Array(T.DOUBLE)), ev.op("mul", a, s), x, alpha)


@pfa_function("la.transpose")
def la_transpose(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "la.transpose", where)
    x = args[0]
    if _la_arg(ev, x, "la.transpose", where) != 2:
        raise ev.error("la.transpose needs a matrix", where)
    a = ev.tensor(x, ev.dtype_of(T.DOUBLE))
    if x.const:
        if a.size == 0:
            raise PFARuntimeError("too few rows/cols", code=24060, where=where)
        return Val(x.type, a.T, True)
    return Val(x.type, ev.b.transpose(a), False)


# -- maps -----------------------------------------------------------------------------------------------------------
def map_arg(ev: Any, v: Any, name: str, where: str) -> T.Map:
    if not isinstance(v, Val) or not isinstance(v.type, T.Map):
        raise ev.error(f"{name} needs a map", where)
    return v.type


@pfa_function("map.len")
def map_len(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "map.len", where)
    map_arg(ev, args[0], "map.len", where)
    return Val(T.INT, len(args[0].data), True)


@pfa_function("map.keys")
def map_keys(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "map.keys", where)
    map_arg(ev, args[0], "map.keys", where)
    return Val(T.Array(T.STRING), list(args[0].data), True)


@pfa_function("map.values")
def map_values(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "map.values", where)
    t = map_arg(ev, args[0], "map.values", where)
    m = args[0]
    if m.const:
        return Val(T.Array(t.values), list(m.data.values()), True)
    return _stack_results(ev, list(m.data.values()), where)


@pfa_function("map.containsKey")
def map_contains_key(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "map.containsKey", where)
    m, k = args
    map_arg(ev, m, "map.containsKey", where)
    if not k.const:
        keys = np.asarray(list(m.data), dtype=np.str_)
        return Val(T.BOOLEAN, ev.b.isin(ev.tensor(k, "str"), list(keys)), False)
    return Val(T.BOOLEAN, k.data in m.data, True)


@pfa_function("map.add")
def map_add(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 3, "map.add", where)
    m, k, v = args
    map_arg(ev, m, "map.add", where)
    if not k.const:
        raise ev.unsupported("map.add with a key computed per record is not supported", where)
    if m.const and v.const:
        return Val(m.type, {**m.data, k.data: v.data}, True)
    base = m.data if not m.const else {kk: Val(m.type.values, vv, True) for kk, vv in m.data.items()}
    return Val(m.type, {**base, k.data: v}, False)
