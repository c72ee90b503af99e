"""Decision trees: `model.tree.simpleTest`, `missingTest`, `compoundTest`, `simpleWalk`, `missingWalk`,
`simpleTree`.

A walk over a constant tree is flattened into a `TreeSpec` over a matrix of numeric feature columns: the
record's numeric fields, plus one derived 0/1 column per test that is not a plain numeric comparison (string
equality, `in`, missing values, or any user test function). The numpy backend then walks all rows level by
level; the ONNX compiler emits one `TreeEnsemble`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import PFARuntimeError
from . import types as T
from .engine import Fn
from .library import arity, pfa_function
from .values import MODES, TreeSpec, Val

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "notIn", "alwaysTrue", "alwaysFalse", "isMissing",
             "notMissing")


def _record_arg(ev: Any, v: Val, name: str, where: str) -> T.Record:
    if not isinstance(v.type, T.Record):
        raise ev.error(f"{name} needs a record datum, found {v.type.describe()}", where)
    return v.type


def _field(ev: Any, datum: Val, name: str, where: str) -> Val:
    t = datum.type
    if name not in t.fields:
        raise ev.error(f"the tree tests field '{name}', which record {t.name} does not have "
                       f"(fields: {', '.join(t.fields)})", where)
    if datum.const:
        return Val(t.fields[name], datum.data[name], True)
    return datum.data[name]


def _no_null_strings(ev: Any, fv: Val, inner: Any, where: str) -> None:
    """A str tensor cannot hold null: a nullable string field is tested record by record (sequential tier)."""
    if inner is not None and T.is_stringlike(inner) and not fv.const:
        raise ev.unsupported(f"a nullable string field ({fv.type.describe()}) cannot be tested batch-wise", where)


def _bad_value(ev: Any, fv: Val, value: Any, code: int, where: str) -> PFARuntimeError:
    return PFARuntimeError(f"bad value type: field of type {fv.type.describe()} compared with {value!r}",
                           code=code, where=where)


def test_value(ev: Any, datum: Val, node: dict[str, Any], where: str, *, missing: bool, code: int) -> Any:
    """The test of one tree node on every row: a bool tensor, or (missing=True) a float with NaN for null."""
    op, value = node.get("operator"), node.get("value")
    if op not in OPERATORS or (missing and op in ("isMissing", "notMissing")):
        raise PFARuntimeError(f"invalid comparison operator '{op}'", code=code, where=where)
    fv = _field(ev, datum, node["field"], where)
    ft = fv.type
    inner = T.nullable_inner(ft)
    _no_null_strings(ev, fv, inner, where)
    base_t = inner if inner is not None else ft
    f = ev.dtype_of(T.DOUBLE)
    if op in ("alwaysTrue", "alwaysFalse"):
        out: Any = np.asarray(op == "alwaysTrue")
    elif op in ("isMissing", "notMissing"):
        isnull = ev.op("isnan", ev.tensor(fv)) if inner is not None and not fv.const else \
            np.asarray(fv.data is None if fv.const else False)
        out = isnull if op == "isMissing" else ev.op("not", isnull)
    else:
        out = _compare(ev, fv, base_t, op, value, code + 1, where)
    if not missing:
        return out
    res = ev.cast(out, f)
    if inner is not None and not fv.const:
        res = ev.op("where", ev.op("isnan", ev.tensor(fv)), np.asarray(np.nan, f), res)
    return res


def _compare(ev: Any, fv: Val, base_t: T.AvroType, op: str, value: Any, code: int, where: str) -> Any:
    if op in ("in", "notIn"):
        if not isinstance(value, list):
            raise _bad_value(ev, fv, value, code, where)
        x = ev.tensor(fv, "str" if T.is_stringlike(base_t) else ev.dtype_of(T.DOUBLE))
        hit = ev.backend_for(x).isin(x, value) if not isinstance(x, np.ndarray) else np.isin(x, value)
        return hit if op == "in" else ev.op("not", hit)
    opname = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}[op]
    if T.is_numeric(base_t) or base_t == T.BOOLEAN:
        if isinstance(value, bool) != (base_t == T.BOOLEAN) or not isinstance(value, (int, float)):
            raise _bad_value(ev, fv, value, code, where)
        dt = ev.dtype_of(T.DOUBLE)
        return ev.op(opname, ev.tensor(fv, dt), np.asarray(float(value), dt))
    if T.is_stringlike(base_t):
        if not isinstance(value, str):
            raise _bad_value(ev, fv, value, code, where)
        return ev.op(opname, ev.tensor(fv, "str"), np.asarray(value))
    raise _bad_value(ev, fv, value, code, where)


@pfa_function("model.tree.simpleTest")
def simple_test(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "model.tree.simpleTest", where)
    datum, node = args
    _record_arg(ev, datum, "model.tree.simpleTest", where)
    nd = _node_dict(ev, node, where)
    return Val(T.BOOLEAN, test_value(ev, datum, nd, where, missing=False, code=32000), datum.const and node.const)


@pfa_function("model.tree.missingTest")
def missing_test(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "model.tree.missingTest", where)
    datum, node = args
    _record_arg(ev, datum, "model.tree.missingTest", where)
    nd = _node_dict(ev, node, where)
    return Val(T.Union((T.NULL, T.BOOLEAN)), test_value(ev, datum, nd, where, missing=True, code=32010),
               datum.const and node.const)


def _node_dict(ev: Any, node: Val, where: str) -> dict[str, Any]:
    if not node.const:
        raise ev.unsupported("tree nodes computed per record are not supported (keep the tree in a cell)", where)
    return node.data


@pfa_function("model.tree.compoundTest")
def compound_test(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, 4, "model.tree.compoundTest", where)
    datum, operator, comparisons, test = args
    if not operator.const or operator.data not in ("and", "or", "xor"):
        raise PFARuntimeError(f"unrecognized logical operator {operator.data!r}", code=32020, where=where)
    if not comparisons.const:
        raise ev.unsupported("compoundTest's comparisons must be constant", where)
    if not isinstance(test, Fn):
        raise ev.error("compoundTest's last argument is a test function", where)
    opname = {"and": "and", "or": "or", "xor": "xor"}[operator.data]
    acc: Any = np.asarray(operator.data == "and")
    const = datum.const
    for i, c in enumerate(comparisons.data):
        r = test(ev, [datum, Val(comparisons.type.items, c, True)], f"{where}[{i}]")
        acc = ev.op(opname, acc, ev.tensor(r, "bool"))
        const = const and r.const
    return Val(T.BOOLEAN, acc, const)


# -- walking ------------------------------------------------------------------------------------------------------
def _is_idiom(fn: Fn, name: str) -> bool:
    """Whether the test function is `name` itself, or an inline/user function that just calls it."""
    if fn.name == name:
        return True
    body = fn.body
    if body is None or len(body.body) != 1 or not isinstance(body.body[0], dict) or len(body.body[0]) != 1:
        return False
    (fname, fargs), = body.body[0].items()
    return fname == name and fargs == [p for p, _ in body.params]


class _Flattener:
    """Builds a TreeSpec (array form) from a nested constant tree."""

    def __init__(self, ev: Any, datum: Val, ttype: T.Record, test: Any, missing: bool, where: str) -> None:
        self.ev, self.datum, self.ttype, self.test, self.missing, self.where = ev, datum, ttype, test, missing, where
        self.rows: list[list[Any]] = []  # feature, mode, threshold, true, false, leaf
        self.leaves: list[Any] = []
        self.features = features_of(ev, datum)
        self.used: dict[Any, int] = {}
        self.builders: dict[Any, Any] = {}
        self.depth = 0
        # every numeric field is a column of every tree over this datum, so trees share one feature matrix
        for fname, ft in datum.type.fields.items():
            if T.is_numeric(ft) or ft == T.BOOLEAN:
                self.column(("field", fname), lambda fname=fname: self.ev.tensor(self.field(fname), self.f64))

    # Column builders read self.ev and self.datum when they run, so a flattened tree can be reused on the next
    # batch: `rebind` points them at the new evaluator and datum.
    @property
    def f64(self) -> str:
        return self.ev.dtype_of(T.DOUBLE)

    def field(self, name: str) -> Val:
        return _field(self.ev, self.datum, name, self.where)

    def column(self, key: Any, build: Any) -> int:
        if key not in self.used:
            self.builders[key] = build
            self.features.add(key, build)
            self.used[key] = len(self.used)
        return self.used[key]

    def release(self) -> None:
        """Drop the references to the last batch (kept between batches: the tree arrays only)."""
        self.ev = self.datum = self.features = None

    def rebind(self, ev: Any, datum: Val, test: Any) -> None:
        self.ev, self.datum, self.test = ev, datum, test
        self.features = features_of(ev, datum)
        for key in self.used:
            self.features.add(key, self.builders[key])

    def new(self) -> int:
        self.rows.append([0, 0, 0.0, -1, -1, -1])
        return len(self.rows) - 1

    def leaf(self, value: Any) -> int:
        i = self.new()
        self.rows[i][3] = self.rows[i][4] = i
        self.rows[i][5] = len(self.leaves)
        self.leaves.append(value)
        return i

    def is_node(self, value: Any) -> bool:
        return isinstance(value, dict) and set(value) == set(self.ttype.fields)

    def child(self, value: Any, depth: int) -> int:
        return self.build(value, depth) if self.is_node(value) else self.leaf(value)

    def test_node(self, feature: int, mode: int, thr: float, t: Any, f: Any, depth: int) -> int:
        i = self.new()
        self.rows[i][:3] = [feature, mode, thr]
        self.rows[i][3] = self.child(t, depth + 1) if not isinstance(t, _Ref) else t.id
        self.rows[i][4] = self.child(f, depth + 1) if not isinstance(f, _Ref) else f.id
        return i

    def build(self, node: dict[str, Any], depth: int) -> int:
        self.depth = max(self.depth, depth + 1)
        if self.test == "simple" or self.test == "missing":
            return self.build_simple(node, depth)
        # any other test function: one derived column holding its result for every row
        key = ("test", id(node))
        col = self.column(key, lambda: self._generic(node))
        if self.missing:
            mcol = self.column(("isnan", key), lambda: self.ev.cast(self.ev.op("isnan", self.features.get(key)),
                                                                   self.f64))
            self.depth = max(self.depth, depth + 2)
            return self.test_node(mcol, MODES[">"], 0.5, node["missing"],
                                  _Deferred(self, col, node, depth + 1), depth)
        return self.test_node(col, MODES[">"], 0.5, node["pass"], node["fail"], depth)

    def _generic(self, node: dict[str, Any]) -> Any:
        ev = self.ev
        out = self.test(ev, [self.datum, Val(self.ttype, node, True)], self.where)
        f = ev.dtype_of(T.DOUBLE)
        if self.missing:
            return ev.cast(ev.tensor(out), f) if not out.const else ev.b.broadcast(
                np.asarray(np.nan if out.data is None else float(out.data)), f)
        x = ev.cast(ev.tensor(out, "bool"), f)
        return x if not out.const else ev.b.broadcast(x, f)

    def build_simple(self, node: dict[str, Any], depth: int, skip_missing: bool = False) -> int:
        ev = self.ev
        op, value, fname = node.get("operator"), node.get("value"), node.get("field")
        code = 32010 if self.missing else 32060 if self.test == "simple-tree" else 32000
        if op not in OPERATORS or (self.missing and op in ("isMissing", "notMissing")):
            raise PFARuntimeError(f"invalid comparison operator '{op}'", code=code, where=self.where)
        fv = _field(ev, self.datum, fname, self.where)
        inner = T.nullable_inner(fv.type)
        _no_null_strings(ev, fv, inner, self.where)
        base_t = inner if inner is not None else fv.type
        pass_, fail = node["pass"], node["fail"]
        if self.missing and inner is not None and not skip_missing:
            mcol = self.column(("isnan", fname), lambda: self.ev.cast(
                self.ev.op("isnan", self.ev.tensor(self.field(fname))), self.f64))
            self.depth = max(self.depth, depth + 2)
            rest = dict(node)
            return self.test_node(mcol, MODES[">"], 0.5, node["missing"], _Deferred(self, None, rest, depth + 1,
                                                                                   simple=True), depth)
        if op in ("alwaysTrue", "alwaysFalse") or (op in ("isMissing", "notMissing") and inner is None):
            taken = pass_ if op in ("alwaysTrue", "notMissing") else fail
            return self.child(taken, depth)
        numeric = (T.is_numeric(base_t) or base_t == T.BOOLEAN) and op in MODES
        if numeric and isinstance(value, (int, float)) and isinstance(value, bool) == (base_t == T.BOOLEAN):
            col = self.column(("field", fname), lambda: self.ev.tensor(self.field(fname), self.f64))
            return self.test_node(col, MODES[op], float(value), pass_, fail, depth)
        if numeric or op in MODES:
            _compare(ev, fv, base_t, op, value, code + 1, self.where)  # raises on a bad value type
        key = ("cmp", fname, op, repr(value))
        col = self.column(key, lambda: self.ev.cast(test_value(self.ev, self.datum, node, self.where,
                                                               missing=False, code=code), self.f64))
        return self.test_node(col, MODES[">"], 0.5, pass_, fail, depth)

    def spec(self, root: int) -> TreeSpec:
        a = np.array(self.rows, dtype=object)
        keys = sorted(self.used, key=self.used.get)
        return TreeSpec(feature=a[:, 0].astype(np.int64), mode=a[:, 1].astype(np.int64),
                        threshold=a[:, 2].astype(np.float64), true_child=a[:, 3].astype(np.int64),
                        false_child=a[:, 4].astype(np.int64), leaf=a[:, 5].astype(np.int64),
                        depth=self.depth, columns=keys)


class _Ref:
    id: int


class _Deferred(_Ref):
    """The pass/fail part of a missing-value node, built when its parent links to it."""

    def __init__(self, fl: _Flattener, col: int | None, node: dict[str, Any], depth: int,
                 simple: bool = False) -> None:
        if simple:
            self.id = fl.build_simple(node, depth, skip_missing=True)
        else:
            self.id = fl.test_node(col, MODES[">"], 0.5, node["pass"], node["fail"], depth)


class Features:
    """The numeric feature columns of one datum, shared by every tree that walks it."""

    def __init__(self, ev: Any, datum: Val) -> None:
        self.ev, self.datum = ev, datum
        self.columns: dict[Any, Any] = {}

    def add(self, key: Any, build: Any) -> None:
        if key not in self.columns:
            col = build()
            if isinstance(col, np.ndarray) and col.ndim == 0:
                col = self.ev.b.broadcast(col, self.ev.dtype_of(T.DOUBLE))
            self.columns[key] = col

    def get(self, key: Any) -> Any:
        return self.columns[key]

    def matrix(self, keys: list[Any]) -> Any:
        cache = self.ev.cache.setdefault(("X", id(self)), {})
        k = tuple(keys)
        if k not in cache:
            cache[k] = self.ev.b.stack([self.columns[c] for c in keys], axis=1)
        return cache[k]


def features_of(ev: Any, datum: Val) -> Features:
    key = ("features", id(datum.data))
    if key not in ev.cache:
        ev.cache[key] = (Features(ev, datum), datum)  # keep datum alive so its id stays unique
    return ev.cache[key][0]


def _leaf_type(ttype: T.Record, where: str, ev: Any) -> T.AvroType:
    pt = ttype.fields.get("pass")
    if not isinstance(pt, T.Union):
        raise ev.error(f"tree node {ttype.name} needs a 'pass' field of union type [{ttype.name}, leaf]", where)
    others = [t for t in pt.types if t is not ttype and getattr(t, "name", None) != ttype.name]
    if len(others) == 1:
        return others[0]
    return T.Union(tuple(others))


def _walk(ev: Any, datum: Val, tree: Val, test: Any, missing: bool, where: str, name: str) -> Val:
    ttype = tree.type
    if not isinstance(ttype, T.Record):
        raise ev.error(f"{name} needs a tree node record, found {ttype.describe()}", where)
    _record_arg(ev, datum, name, where)
    root = _node_dict(ev, tree, where)
    if datum.const:
        datum = ev.broadcast(datum)
    body = getattr(test, "body", None)
    key = ("tree", id(root), id(datum.type), missing, test if isinstance(test, str) else id(body or test.name),
           ev.b.name)
    cached = ev.persist.get(key)
    if cached is not None:
        fl, spec, table, out_t = cached
        fl.rebind(ev, datum, test)
    else:
        fl = _Flattener(ev, datum, ttype, test, missing, where)
        top = fl.child(root, 0)
        spec = fl.spec(top)
        if top != 0:  # the root was a leaf or a resolved always-test: rotate so that node 0 is the start
            spec = _reroot(spec, top)
        leaf_t = _leaf_type(ttype, where, ev)
        table = _leaf_table(ev, fl.leaves, leaf_t, where)
        if not fl.used:
            fl.column(("zero",), lambda: np.asarray(0.0))
            spec.columns = [("zero",)]
        out_t = leaf_t if not isinstance(leaf_t, T.Union) else _common(leaf_t)
        ev.persist[key] = (fl, spec, table, out_t)
    X = fl.features.matrix(spec.columns)
    idx = ev.b.tree_walk(spec, X)
    return Val(out_t, ev.b.gather(table, idx), False, origin=("tree", spec, X, table, out_t, fl.features, idx))


def _common(t: T.Union) -> T.AvroType:
    if all(T.is_numeric(b) for b in t.types):
        out = t.types[0]
        for b in t.types[1:]:
            out = T.wider(out, b)
        return out
    if all(T.is_stringlike(b) for b in t.types):
        return T.STRING
    return t


def _leaf_table(ev: Any, leaves: list[Any], t: T.AvroType, where: str) -> np.ndarray:
    tt = _common(t) if isinstance(t, T.Union) else t
    elem = tt
    while isinstance(elem, T.Array):
        elem = elem.items
    if isinstance(elem, T.Union) or isinstance(elem, (T.Record, T.Map)):
        raise ev.unsupported(f"tree leaves of type {t.describe()} are not supported (numbers, strings, enums "
                             "and arrays of numbers are)", where)
    dt = ev.dtype_of(elem)
    return np.asarray(leaves, dtype=np.str_ if dt == "str" else dt)


def _reroot(spec: TreeSpec, top: int) -> TreeSpec:
    n = len(spec.feature)
    order = [top] + [i for i in range(n) if i != top]
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    o = np.asarray(order)
    return TreeSpec(spec.feature[o], spec.mode[o], spec.threshold[o], pos[spec.true_child[o]],
                    pos[spec.false_child[o]], spec.leaf[o], spec.depth, spec.columns)


@pfa_function("model.tree.simpleWalk")
def simple_walk(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, 3, "model.tree.simpleWalk", where)
    datum, tree, test = args
    if not isinstance(test, Fn):
        raise ev.error("simpleWalk's last argument is a test function", where)
    kind = "simple" if _is_idiom(test, "model.tree.simpleTest") else test
    return _walk(ev, datum, tree, kind, False, where, "model.tree.simpleWalk")


@pfa_function("model.tree.missingWalk")
def missing_walk(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, 3, "model.tree.missingWalk", where)
    datum, tree, test = args
    if not isinstance(test, Fn):
        raise ev.error("missingWalk's last argument is a test function", where)
    kind = "missing" if _is_idiom(test, "model.tree.missingTest") else test
    return _walk(ev, datum, tree, kind, True, where, "model.tree.missingWalk")


@pfa_function("model.tree.simpleTree")
def simple_tree(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "model.tree.simpleTree", where)
    datum, tree = args
    return _walk(ev, datum, tree, "simple", False, where, "model.tree.simpleTree")
