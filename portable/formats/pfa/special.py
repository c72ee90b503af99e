"""PFA's special forms (`let`, `set`, `if`, `cond`, `attr`, `new`, `cell`, `pool`, `do`, literals, casts).

Each form is one function `form(ev, expr, scope, where) -> Val`; `dispatch` tells which form an object is.
"""
from __future__ import annotations

import base64
from typing import Any, Callable

import numpy as np

from ...errors import PFARuntimeError
from . import types as T
from .engine import Evaluator, Scope, unify
from .values import Val

Form = Callable[[Evaluator, dict, Scope, str], Val]
SPECIAL_FORMS: dict[str, Form] = {}

# Which key identifies a form (checked in this order); the other keys the form allows.
_KEYS = [
    ("cell", {"path"}), ("pool", {"path"}), ("attr", {"path", "to"}), ("new", {"type"}),
    ("let", set()), ("set", set()), ("if", {"then", "else"}), ("cond", {"else"}), ("do", set()),
    ("cast", {"cases", "partial"}), ("upcast", {"as"}), ("ifnotnull", {"then", "else"}),
    ("string", set()), ("base64", set()), ("int", set()), ("long", set()), ("float", set()),
    ("double", set()), ("value", {"type"}), ("doc", set()), ("error", {"code"}), ("log", {"namespace"}),
    ("fcn", {"fill"}), ("params", {"ret", "do"}),
]


def dispatch(expr: dict[str, Any]) -> str | None:
    for key, others in _KEYS:
        if key in expr and set(expr) <= others | {key}:
            if key == "do" and len(expr) != 1:
                continue
            return key
    if "params" in expr and "do" in expr:
        return "params"
    return None


def form(name: str) -> Callable[[Form], Form]:
    def deco(fn: Form) -> Form:
        SPECIAL_FORMS[name] = fn
        return fn
    return deco


# -- literals -------------------------------------------------------------------------------------------------
@form("string")
def _string(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    if not isinstance(e["string"], str):
        raise ev.error("a string literal holds a JSON string", where)
    return Val(T.STRING, e["string"], True)


@form("base64")
def _base64(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    return Val(T.BYTES, base64.b64decode(e["base64"]).decode("latin-1"), True)


def _typed_literal(kind: str) -> Form:
    def lit(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
        t = T.Prim(kind)
        return Val(t, T.decode(e[kind], t, f"{where}.{kind}", ev.doc.path), True)
    return lit


for _k in ("int", "long", "float", "double"):
    SPECIAL_FORMS[_k] = _typed_literal(_k)


@form("value")
def _value(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    t = ev.doc.types.parse(e["type"], f"{where}.type", ev.doc.path)
    return Val(t, T.decode(e["value"], t, f"{where}.value", ev.doc.path), True)


# -- building values ----------------------------------------------------------------------------------------
@form("new")
def _new(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    t = ev.doc.types.parse(e.get("type"), f"{where}.type", ev.doc.path) if "type" in e else None
    body = e["new"]
    if isinstance(body, list):
        if not isinstance(t, T.Array):
            raise ev.error("'new' with a list builds an array: give it an array 'type'", where)
        items = [ev.coerce(ev.eval(x, scope, f"{where}.new[{i}]"), t.items, f"{where}.new[{i}]")
                 for i, x in enumerate(body)]
        if all(v.const for v in items):
            return Val(t, [v.data for v in items], True)
        if _tensor_elem(t.items):
            dt = ev.dtype_of(_leaf(t.items))
            return Val(t, ev.b.stack([ev.tensor(ev.broadcast(v) if v.const and not _scalar(v) else v, dt)
                                      for v in items], axis=1), False)
        return Val(t, items, False)
    if not isinstance(body, dict):
        raise ev.error("'new' takes a list (array) or an object (record or map)", where)
    if isinstance(t, T.Record):
        missing = [f for f in t.fields if f not in body and not (isinstance(t.fields[f], T.Union)
                                                                and t.fields[f].nullable)]
        extra = [f for f in body if f not in t.fields]
        if missing or extra:
            raise ev.error(f"'new' {t.name} needs fields {list(t.fields)}; missing {missing}, unknown {extra}",
                           where)
        vals = {f: ev.coerce(ev.eval(body[f], scope, f"{where}.new.{f}"), ft, f"{where}.new.{f}")
                if f in body else Val(T.NULL, None, True) for f, ft in t.fields.items()}
    elif isinstance(t, T.Map):
        vals = {k: ev.coerce(ev.eval(x, scope, f"{where}.new.{k}"), t.values, f"{where}.new.{k}")
                for k, x in body.items()}
    else:
        raise ev.error("'new' with an object needs a record or map 'type'", where)
    if all(v.const for v in vals.values()):
        return Val(t, {k: v.data for k, v in vals.items()}, True)
    return Val(t, vals, False)


def _leaf(t: T.AvroType) -> T.AvroType:
    while isinstance(t, T.Array):
        t = t.items
    return t


def _tensor_elem(t: T.AvroType) -> bool:
    leaf = _leaf(t)
    return isinstance(leaf, (T.Prim, T.Enum)) or T.nullable_inner(leaf) is not None


def _scalar(v: Val) -> bool:
    return not isinstance(v.type, T.Array)


# -- symbols and flow -----------------------------------------------------------------------------------------
@form("do")
def _do(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    body = e["do"] if isinstance(e["do"], list) else [e["do"]]
    return ev.block(body, scope.child(), f"{where}.do")


@form("let")
def _let(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    if not isinstance(e["let"], dict):
        raise ev.error("'let' takes an object {name: expression}", where)
    vals = {name: ev.eval(x, scope, f"{where}.let.{name}") for name, x in e["let"].items()}
    for name, v in vals.items():
        if scope.lookup(name) is not None:
            raise ev.error(f"symbol '{name}' is already defined (use 'set' to change it)", f"{where}.let.{name}")
        if "." in name:
            raise ev.error(f"a symbol name cannot contain dots: '{name}'", f"{where}.let.{name}")
        scope.define(name, v)
    return Val(T.NULL, None, True)


@form("set")
def _set(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    vals = {name: ev.eval(x, scope, f"{where}.set.{name}") for name, x in e["set"].items()}
    for name, v in vals.items():
        old = scope.lookup(name)
        if old is None:
            raise ev.error(f"cannot 'set' undefined symbol '{name}'", f"{where}.set.{name}")
        scope.assign(name, ev.coerce(v, old.type, f"{where}.set.{name}"))
    return Val(T.NULL, None, True)


def _branch(ev: Evaluator, body: Any, scope: Scope, where: str, guard: Any) -> tuple[Val, Scope]:
    inner = scope.copy()
    saved = ev.guard
    ev.guard = guard
    try:
        out = ev.block(body if isinstance(body, list) else [body], inner.child(), where)
    finally:
        ev.guard = saved
    return out, inner


def _and_guard(ev: Evaluator, cond: Any) -> Any:
    return cond if ev.guard is None else ev.op("and", ev.guard, cond)


def _merge_scopes(ev: Evaluator, cond: Any, scope: Scope, a: Scope, b: Scope, where: str) -> None:
    for i, frame in enumerate(scope.frames):
        for name, old in frame.items():
            va, vb = a.frames[i].get(name, old), b.frames[i].get(name, old)
            if va is not vb:
                frame[name] = ev.merge(cond, va, vb, where)


def _cond_value(ev: Evaluator, c: Val, where: str) -> Any:
    if c.type != T.BOOLEAN:
        raise ev.error(f"a condition must be boolean, found {c.type.describe()}", where)
    return c.data if c.const else ev.tensor(c)


@form("if")
def _if(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    c = ev.eval(e["if"], scope, f"{where}.if")
    cond = _cond_value(ev, c, f"{where}.if")
    has_else = "else" in e
    if c.const:
        if cond:
            return _branch_in_place(ev, e["then"], scope, f"{where}.then", has_else)
        if has_else:
            return _branch_in_place(ev, e["else"], scope, f"{where}.else", True)
        return Val(T.NULL, None, True)
    not_cond = ev.op("not", cond)
    a, sa = _branch(ev, e["then"], scope, f"{where}.then", _and_guard(ev, cond))
    if has_else:
        b, sb = _branch(ev, e["else"], scope, f"{where}.else", _and_guard(ev, not_cond))
    else:
        b, sb = Val(T.NULL, None, True), scope
    _merge_scopes(ev, cond, scope, sa, sb, where)
    if not has_else:
        return Val(T.NULL, None, True)
    return ev.merge(cond, a, b, where)


def _branch_in_place(ev: Evaluator, body: Any, scope: Scope, where: str, value: bool) -> Val:
    out = ev.block(body if isinstance(body, list) else [body], scope.child(), where)
    return out if value else Val(T.NULL, None, True)


@form("cond")
def _cond(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    clauses = e["cond"]
    if not isinstance(clauses, list) or not clauses:
        raise ev.error("'cond' takes a non-empty list of {if, then} clauses", where)
    # rewrite as nested ifs, which already merge batched branches
    nested: Any = e.get("else")
    for clause in reversed(clauses):
        if not isinstance(clause, dict) or set(clause) != {"if", "then"}:
            raise ev.error("each 'cond' clause is an object with 'if' and 'then'", where)
        nested = {"if": clause["if"], "then": clause["then"], **({"else": nested} if nested is not None or
                                                                  "else" in e else {})}
    out = _if(ev, nested, scope, where)
    return out if "else" in e else Val(T.NULL, None, True)


# -- extracting -------------------------------------------------------------------------------------------------
def _path(ev: Evaluator, e: dict, scope: Scope, where: str) -> list[Val]:
    path = e.get("path", [])
    if not isinstance(path, list):
        raise ev.error("'path' is a list of indexes", where)
    return [ev.eval(p, scope, f"{where}.path[{i}]") for i, p in enumerate(path)]


@form("attr")
def _attr(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    base = ev.eval(e["attr"], scope, f"{where}.attr")
    path = _path(ev, e, scope, where)
    if "to" not in e:
        return ev.walk_path(base, path, where)
    if not path:
        raise ev.error("'attr' with 'to' needs a non-empty 'path'", where)
    to = e["to"]
    if isinstance(to, dict) and ("fcn" in to or ("params" in to and "do" in to)):
        fn = ev.function(to, scope, f"{where}.to")
        return _replace(ev, base, path, lambda old: fn(ev, [old], f"{where}.to"), where)
    new = ev.eval(to, scope, f"{where}.to")
    return _replace(ev, base, path, lambda old: ev.coerce(new, old.type, f"{where}.to"), where)


def _replace(ev: Evaluator, v: Val, path: list[Val], change: Callable[[Val], Val], where: str) -> Val:
    """A copy of `v` with the element at `path` replaced by `change(old element)` (attr-to)."""
    key, rest = path[0], path[1:]
    old = ev.walk_path(v, [key], where)
    new = change(old) if not rest else _replace(ev, old, rest, change, where)
    t = v.type
    if isinstance(t, (T.Record, T.Map)):
        if not key.const:
            raise ev.unsupported("a key computed per record in 'attr'/'to' is not supported", where)
        fields = dict(v.data) if not v.const else None
        if v.const and new.const:
            return Val(t, {**v.data, key.data: new.data}, True)
        if fields is None:
            ftypes = t.fields if isinstance(t, T.Record) else {k: t.values for k in v.data}
            fields = {k: Val(ftypes[k], x, True) for k, x in v.data.items()}
        fields[key.data] = new
        return Val(t, fields, False)
    if isinstance(t, T.Array):
        if not key.const:
            raise ev.unsupported("an array index computed per record in 'attr'/'to' is not supported", where)
        k = int(key.data)
        if v.const and new.const:
            items = list(v.data)
            items[k] = new.data
            return Val(t, items, True)
        if isinstance(v.data, list) and not v.const:
            items = list(v.data)
            items[k] = new
            return Val(t, items, False)
        n = len(v.data) if v.const else None
        if n is None:
            raise ev.unsupported("'attr'/'to' on an array of unknown length per record is not supported", where)
        items = [Val(t.items, x, True) for x in v.data]
        items[k] = new
        dt = ev.dtype_of(_leaf(t.items))
        return Val(t, ev.b.stack([ev.tensor(ev.broadcast(x) if x.const else x, dt) for x in items], axis=1),
                   False)
    raise ev.error(f"cannot index into a {t.describe()}", where)


@form("cell")
def _cell(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    name = e["cell"]
    cell = ev.doc.cells.get(name)
    if cell is None:
        raise ev.error(f"unknown cell '{name}'; cells: {', '.join(ev.doc.cells) or 'none'}", where)
    return ev.walk_path(Val(cell.type, cell.init, True), _path(ev, e, scope, where), where)


@form("pool")
def _pool(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    name = e["pool"]
    pool = ev.doc.pools.get(name)
    if pool is None:
        raise ev.error(f"unknown pool '{name}'; pools: {', '.join(ev.doc.pools) or 'none'}", where)
    path = _path(ev, e, scope, where)
    if not path:
        raise ev.error("a pool read needs a 'path' starting with the item's name", where)
    return ev.walk_path(Val(T.Map(pool.type), pool.init, True), path, where)


# -- types and missing values ------------------------------------------------------------------------------------
@form("upcast")
def _upcast(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    t = ev.doc.types.parse(e["as"], f"{where}.as", ev.doc.path)
    return ev.coerce(ev.eval(e["upcast"], scope, f"{where}.upcast"), t, where)


@form("ifnotnull")
def _ifnotnull(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    binds = e["ifnotnull"]
    if not isinstance(binds, dict) or not binds:
        raise ev.error("'ifnotnull' takes an object {name: expression}", where)
    inner = scope.child()
    present = None
    for name, x in binds.items():
        v = ev.eval(x, scope, f"{where}.ifnotnull.{name}")
        base = T.nullable_inner(v.type)
        if base is None or not (T.is_numeric(base) or base == T.BOOLEAN):
            raise ev.unsupported(f"'ifnotnull' on {v.type.describe()}: portable supports nullable numbers "
                                 "(null held as NaN)", f"{where}.ifnotnull.{name}")
        x_t = ev.tensor(v)
        ok = ev.op("not", ev.op("isnan", x_t))
        present = ok if present is None else ev.op("and", present, ok)
        data = x_t if base != T.BOOLEAN else ev.op("ne", x_t, np.asarray(0.0))
        if T.is_integer(base):
            data = ev.cast(ev.op("where", ok, x_t, np.asarray(0.0)), "int64")
        inner.define(name, Val(base, data, v.const))
    if isinstance(present, (np.ndarray, np.generic)) and np.ndim(present) == 0:
        body = e["then"] if bool(present) else e.get("else")
        if body is None:
            return Val(T.NULL, None, True)
        return ev.block(body if isinstance(body, list) else [body], inner.child(), where)
    a, sa = _branch(ev, e["then"], inner, f"{where}.then", _and_guard(ev, present))
    if "else" not in e:
        _merge_scopes(ev, present, scope, Scope(sa.frames[:-1]), scope, where)
        return Val(T.NULL, None, True)
    b, sb = _branch(ev, e["else"], scope, f"{where}.else", _and_guard(ev, ev.op("not", present)))
    _merge_scopes(ev, present, scope, Scope(sa.frames[:len(scope.frames)]), sb, where)
    return ev.merge(present, a, b, where)


@form("cast")
def _cast(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    """cast-cases over a nullable number (null held as NaN): the `null` case and the number case become the two
    sides of a row-wise branch. Other unions are refused."""
    v = ev.eval(e["cast"], scope, f"{where}.cast")
    inner = T.nullable_inner(v.type)
    cases = e.get("cases")
    if inner is None or not (T.is_numeric(inner) or inner == T.BOOLEAN):
        raise ev.unsupported(f"'cast' of {v.type.describe()}: portable supports cast-cases over nullable numbers "
                             "(null held as NaN)", where)
    if not isinstance(cases, list) or not all(isinstance(c, dict) and {"as", "named", "do"} <= set(c)
                                              for c in cases):
        raise ev.error("'cases' is a list of {as, named, do} objects", f"{where}.cases")
    x = ev.tensor(v) if not v.const else np.asarray(np.nan if v.data is None else v.data, dtype="float64")
    present = ev.op("not", ev.op("isnan", x))
    branches: dict[str, tuple[Val, Scope]] = {}
    for i, case in enumerate(cases):
        here = f"{where}.cases[{i}]"
        t = ev.doc.types.parse(case["as"], f"{here}.as", ev.doc.path)
        if T.is_null(t):
            kind, guard, bound = "null", ev.op("not", present), Val(T.NULL, None, True)
        elif t == inner or (T.is_numeric(t) and T.is_numeric(inner)):
            data = ev.cast(ev.op("where", present, x, np.asarray(0.0)), "int64") if T.is_integer(inner) else \
                ev.op("ne", x, np.asarray(0.0)) if inner == T.BOOLEAN else x
            kind, guard, bound = "value", present, Val(inner, data, v.const)
        else:
            raise ev.error(f"case type {t.describe()} is not a branch of {v.type.describe()}", f"{here}.as")
        inner_scope = scope.child()
        inner_scope.define(case["named"], bound)
        branches[kind] = _branch(ev, case["do"], inner_scope, f"{here}.do", _and_guard(ev, guard))
    if e.get("partial") is not True and set(branches) != {"null", "value"}:
        raise ev.error("cast-cases must cover every branch of the union (or say \"partial\": true)", where)
    none = (Val(T.NULL, None, True), scope)
    (a, sa), (b, sb) = branches.get("value", none), branches.get("null", none)
    if isinstance(present, np.ndarray) and present.ndim == 0:
        chosen = (a, sa) if bool(present) else (b, sb)
        scope.frames[:] = [dict(f) for f in chosen[1].frames[:len(scope.frames)]]
        return chosen[0] if e.get("partial") is not True else Val(T.NULL, None, True)
    _merge_scopes(ev, present, scope, Scope(sa.frames[:len(scope.frames)]), Scope(sb.frames[:len(scope.frames)]),
                  where)
    if e.get("partial") is True:
        return Val(T.NULL, None, True)
    return ev.merge(present, a, b, where)


# -- misc ----------------------------------------------------------------------------------------------------------
@form("doc")
def _doc(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    return Val(T.NULL, None, True)


@form("log")
def _log(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    return Val(T.NULL, None, True)


@form("error")
def _error(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    """A user error: raised when any row reaches it (the engine); a compiled graph cannot raise, so a document
    that raises unconditionally does not compile, and rows that would raise take the other branch's value."""
    code = e.get("code")
    if ev.b.name == "numpy":
        if ev.guard is None or bool(np.any(ev.guard)):
            raise PFARuntimeError(str(e["error"]), code=code, where=where)
    elif ev.guard is None:
        raise ev.unsupported(f"the document always raises an error here ({e['error']!r})", where)
    return Val(T.NULL, None, True, origin="error")


@form("fcn")
def _fcn(ev: Evaluator, e: dict, scope: Scope, where: str) -> Val:
    raise ev.error("a function reference can only be an argument of a function call", where)


SPECIAL_FORMS["params"] = _fcn
__all__ = ["SPECIAL_FORMS", "dispatch", "unify"]
