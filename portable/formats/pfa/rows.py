"""The sequential tier: a PFA document compiled to Python closures and scored one record at a time, in order.

This is the complete execution model of the spec: methods map/emit/fold (with merge), begin/end, cells and pools
read and written (rollback cells restored when an action fails), every special form (let/set/if/cond/while/
do-until/for/foreach/forkey-forval/cast/upcast/ifnotnull/try/error/log/attr-to/cell-to/pool-to/pool-del/
pack/unpack), user functions and the whole library of `rowlib/` over plain Python values:

    null None · boolean bool · int/long int · float/double float · string str · bytes/fixed bytes ·
    enum str · array list · map dict · record dict · union the untagged value · function a Python callable

Static types are tracked where PFA's semantics depend on them (int versus long overflow, float rounding); the
return types of library calls come from the spec's signatures (`sigs.resolve`). The vectorized engine
(engine.py) stays the tier of pure documents it supports; `PfaModel` picks the tier.
"""
from __future__ import annotations

import base64
import copy
import json
import logging
import math
import struct
from typing import Any, Callable

import numpy as np

from ...errors import PFAError, PFARuntimeError, UnsupportedModelError
from ...limits import LIMITS, LimitError
from . import clock, sigs
from . import types as T
from .reader import Document, FcnDef, parse_fcndef

Fn = Callable[[dict], Any]
tick = clock.tick
LOG = logging.getLogger("portable.pfa")

PREDEFINED = ("name", "instance", "version", "metadata", "actionsStarted", "actionsFinished")
INT_MIN, INT_MAX = -2**31, 2**31 - 1
LONG_MIN, LONG_MAX = -2**63, 2**63 - 1


class PFAErr(Exception):
    """A runtime error raised by a library function or a special form (light: carries message and code)."""

    def __init__(self, message: str, code: int | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.where = where


class UserErr(PFAErr):
    """An `error` special form reached at runtime."""


def f32(x: float) -> float:
    return float(np.float32(x))


def check_int(x: int, code: int) -> int:
    if INT_MIN <= x <= INT_MAX:
        return x
    raise PFAErr("int overflow", code)


def check_long(x: int, code: int) -> int:
    if LONG_MIN <= x <= LONG_MAX:
        return x
    raise PFAErr("long overflow", code)


def type_of_value(v: Any) -> T.AvroType | None:
    if v is None:
        return T.NULL
    if isinstance(v, bool):
        return T.BOOLEAN
    if isinstance(v, int):
        return T.literal_type(v)
    if isinstance(v, float):
        return T.DOUBLE
    if isinstance(v, str):
        return T.STRING
    return None


# --------------------------------------------------------------------------------------------------------------
# generic comparison and value conversion (the spec's ordering of every type)
def compare(a: Any, b: Any, t: T.AvroType | None = None) -> int:
    """-1/0/1 as the spec orders values: numbers, strings, booleans (false < true), arrays lexicographically,
    maps by sorted items, records field by field in order, enums by symbol position."""
    if isinstance(t, T.Enum) and isinstance(a, str) and isinstance(b, str):
        ia, ib = t.symbols.index(a), t.symbols.index(b)
        return (ia > ib) - (ia < ib)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        it = t.items if isinstance(t, T.Array) else None
        for x, y in zip(a, b):
            c = compare(x, y, it)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if isinstance(a, dict) and isinstance(b, dict):
        if isinstance(t, T.Record):
            for f, ft in t.fields.items():
                c = compare(a.get(f), b.get(f), ft)
                if c:
                    return c
            return 0
        return compare(sorted(a.items()), sorted(b.items()))
    if a is None or b is None:
        return (a is not None) - (b is not None)
    try:
        return (a > b) - (a < b)
    except TypeError:
        ka, kb = _rank(a), _rank(b)
        return (ka > kb) - (ka < kb)


def _rank(v: Any) -> int:
    return {bool: 1, int: 2, float: 2, str: 3, bytes: 4, list: 5, dict: 6}.get(type(v), 7)


def from_avro_json(value: Any, t: T.AvroType) -> Any:
    """Untagged engine value from a decoded document value (types.decode output): bytes become `bytes`."""
    if isinstance(t, T.Prim):
        if t.name == "bytes" and isinstance(value, str):
            return value.encode("latin-1")
        if t.name in ("float", "double") and isinstance(value, int):
            return float(value)
        if t.name == "float" and isinstance(value, float):
            return f32(value)
        return value
    if isinstance(t, T.Fixed) and isinstance(value, str):
        return value.encode("latin-1")
    if isinstance(t, T.Array) and isinstance(value, list):
        return [from_avro_json(v, t.items) for v in value]
    if isinstance(t, T.Map) and isinstance(value, dict):
        return {k: from_avro_json(v, t.values) for k, v in value.items()}
    if isinstance(t, T.Record) and isinstance(value, dict):
        return {k: from_avro_json(value.get(k), ft) for k, ft in t.fields.items()}
    if isinstance(t, T.Union):
        if value is None:
            return None
        return from_avro_json(value, T.branch_of(value, t))
    return value


def conform(v: Any, t: T.AvroType | None) -> Any:
    """A value made to fit declared type `t` (numbers promoted: int -> double, float rounding)."""
    if t is None:
        return v
    if isinstance(t, T.Prim):
        n = t.name
        if n == "double" and isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        if n == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return f32(v)
        return v
    if isinstance(t, T.Array) and isinstance(v, list):
        it = t.items
        if isinstance(it, T.Prim) and it.name in ("double", "float") or not isinstance(it, T.Prim):
            return [conform(x, it) for x in v]
        return v
    if isinstance(t, T.Map) and isinstance(v, dict):
        return {k: conform(x, t.values) for k, x in v.items()}
    if isinstance(t, T.Record) and isinstance(v, dict):
        return {k: conform(v.get(k), ft) for k, ft in t.fields.items()}
    if isinstance(t, T.Union) and v is not None:
        for b in t.types:
            if value_fits(v, b):
                return conform(v, b)
    return v


def value_fits(v: Any, t: T.AvroType) -> bool:
    """Whether runtime value `v` belongs to type `t` (for cast-cases and union branches)."""
    if isinstance(t, T.Prim):
        n = t.name
        if n == "null":
            return v is None
        if n == "boolean":
            return isinstance(v, bool)
        if n == "int":
            return isinstance(v, int) and not isinstance(v, bool) and INT_MIN <= v <= INT_MAX
        if n == "long":
            return isinstance(v, int) and not isinstance(v, bool)
        if n in ("float", "double"):
            return isinstance(v, float)
        if n == "string":
            return isinstance(v, str)
        if n == "bytes":
            return isinstance(v, bytes)
    if isinstance(t, T.Enum):
        return isinstance(v, str) and v in t.symbols
    if isinstance(t, T.Fixed):
        return isinstance(v, bytes) and len(v) == t.size
    if isinstance(t, T.Array):
        return isinstance(v, list) and all(value_fits(x, t.items) for x in v[:3])
    if isinstance(t, T.Map):
        return isinstance(v, dict) and all(value_fits(x, t.values) for x in list(v.values())[:3])
    if isinstance(t, T.Record):
        return isinstance(v, dict) and set(v) == set(t.fields) and all(
            value_fits(v[k], ft) for k, ft in t.fields.items())
    if isinstance(t, T.Union):
        return any(value_fits(v, b) for b in t.types)
    return False


def to_json(v: Any, t: T.AvroType | None = None, tagged: bool = False) -> Any:
    """Plain JSON form of a value (bytes as latin-1 text, non-finite floats as strings)."""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, list):
        return [to_json(x, t.items if isinstance(t, T.Array) else None, tagged) for x in v]
    if isinstance(v, dict):
        if isinstance(t, T.Record):
            return {k: to_json(v[k], ft, tagged) for k, ft in t.fields.items() if k in v}
        return {k: to_json(x, t.values if isinstance(t, T.Map) else None, tagged) for k, x in v.items()}
    if tagged and isinstance(t, T.Union) and v is not None:
        for b in t.types:
            if value_fits(v, b):
                return {_tag(b): to_json(v, b, tagged)}
    return v


def _tag(t: T.AvroType) -> str:
    return t.name if not isinstance(t, (T.Array, T.Map)) else t.name


# --------------------------------------------------------------------------------------------------------------
class State:
    """What persists between records: cells, pools, the random generator, counters, logs and emitted values."""

    def __init__(self, doc: Document, seed: int | None) -> None:
        self.cells = {n: from_avro_json(c.init, c.type) for n, c in doc.cells.items()}
        self.pools = {n: {k: from_avro_json(v, c.type) for k, v in c.init.items()} for n, c in doc.pools.items()}
        if seed is None:
            seed = doc.raw.get("randseed") if isinstance(doc.raw.get("randseed"), int) else None
        import random

        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.started = 0
        self.finished = 0
        self.logs: list[Any] = []
        self.emitted: list[Any] = []
        self.begun = False


class CScope:
    """Compile-time scope: symbol -> static type (None: unknown), with the chain of enclosing scopes."""

    def __init__(self, parent: "CScope | None" = None, sealed: bool = False) -> None:
        self.parent = parent
        self.vars: dict[str, T.AvroType | None] = {}
        self.sealed = sealed  # a function body: symbols outside are captured (read-only)
        self.captured: set[str] = set()  # (sealed scopes) outer symbols the function reads

    def child(self) -> "CScope":
        return CScope(self, False)

    def lookup(self, name: str) -> tuple[bool, T.AvroType | None]:
        s: CScope | None = self
        crossed: list[CScope] = []
        while s is not None:
            if name in s.vars:
                for sealed in crossed:
                    sealed.captured.add(name)
                return True, s.vars[name]
            if s.sealed:
                crossed.append(s)
            s = s.parent
        return False, None

    def names(self) -> set[str]:
        out: set[str] = set()
        s: CScope | None = self
        while s is not None:
            out |= set(s.vars)
            s = s.parent
        return out


class Compiler:
    """Compiles expressions to closures `f(env) -> value`; `env` is one dict per function invocation."""

    def __init__(self, doc: Document, state: State, engine: "RowEngine") -> None:
        self.doc = doc
        self.st = state
        self.engine = engine
        self.user: dict[str, Callable[..., Any]] = {}
        self.user_types: dict[str, T.FcnType] = {}
        self.method = engine.method
        from .rowlib import ROWLIB

        self.lib = ROWLIB
        self.emit_type = doc.output

    # -- errors -------------------------------------------------------------------------------------------------
    def err(self, msg: str, where: str) -> PFAError:
        return PFAError(msg, path=self.doc.path, where=where)

    # -- entry points --------------------------------------------------------------------------------------------
    def block(self, exprs: list[Any], scope: CScope, where: str) -> tuple[Fn, T.AvroType | None]:
        fns = []
        t: T.AvroType | None = T.NULL
        for i, e in enumerate(exprs):
            f, t = self.expr(e, scope, f"{where}[{i}]")
            fns.append(f)
        if not fns:
            return (lambda env: None), T.NULL
        if len(fns) == 1:
            return fns[0], t
        head, last = fns[:-1], fns[-1]

        def run(env: dict) -> Any:
            for f in head:
                f(env)
            return last(env)
        return run, t

    def body(self, e: Any, scope: CScope, where: str) -> tuple[Fn, T.AvroType | None]:
        return self.block(e if isinstance(e, list) else [e], scope, where)

    def user_fn(self, name: str, where: str) -> Callable[..., Any]:
        if name in self.user:
            return self.user[name]
        fdef = self.doc.fcns.get(name)
        if fdef is None:
            raise self.err(f"unknown user function 'u.{name}'", where)
        slot: list[Any] = []

        def late(*args: Any) -> Any:  # the definition is compiled on first reference, so functions may recur
            return slot[0](*args)
        self.user[name] = late
        self.user_types[name] = fdef.type
        slot.append(self.function(fdef, None, fdef.where))
        self.user[name] = slot[0]
        return slot[0]

    def function(self, fdef: FcnDef, outer: CScope | None, where: str,
                 capture: bool = False) -> Callable[..., Any]:
        """A function definition compiled to a Python callable taking the arguments positionally; for an inline
        function (`outer` given) a factory `env -> callable` that captures the enclosing symbols."""
        scope = CScope(outer if capture else None, sealed=True)
        names = [p for p, _ in fdef.params]
        ptypes = [t for _, t in fdef.params]
        for p, t in fdef.params:
            scope.vars[p] = t
        run, _ = self.block(fdef.body, scope, f"{where}.do")
        ret = fdef.ret
        need_ret = _needs_conform(ret)
        convs = [(i, _fast_conform(t)) for i, t in enumerate(ptypes) if _needs_conform(t)]
        n = len(names)
        fast_ret = _fast_conform(ret if need_ret else None)
        if n == 1:
            p0 = names[0]
            conv0 = convs[0][1] if convs else (lambda v: v)

            def call(*args: Any) -> Any:
                if len(args) != 1:
                    raise PFAErr(f"function takes 1 argument, got {len(args)}")
                tick()
                return fast_ret(run({p0: conv0(args[0])}))
        else:
            def call(*args: Any) -> Any:
                if len(args) != n:
                    raise PFAErr(f"function takes {n} argument(s), got {len(args)}")
                tick()
                env = dict(zip(names, args))
                for i, cv in convs:
                    env[names[i]] = cv(args[i])
                return fast_ret(run(env))
        if not capture:
            return call
        captured = sorted(scope.captured)
        if not captured:
            return lambda outer_env: call
        if n == 1:
            q0 = names[0]
            cq = convs[0][1] if convs else (lambda v: v)

            def factory1(outer_env: dict) -> Callable[..., Any]:
                base = {k: outer_env[k] for k in captured if k in outer_env}

                def call1(a: Any) -> Any:
                    tick()
                    env = dict(base)
                    env[q0] = cq(a)
                    return fast_ret(run(env))
                return call1
            return factory1

        def factory(outer_env: dict) -> Callable[..., Any]:
            base = {k: outer_env[k] for k in captured if k in outer_env}

            def calln(*args: Any) -> Any:
                tick()
                env = dict(base)
                env.update(zip(names, args))
                for i, cv in convs:
                    env[names[i]] = cv(args[i])
                return fast_ret(run(env))
            return calln
        return factory

    # -- expressions ---------------------------------------------------------------------------------------------
    def expr(self, e: Any, scope: CScope, where: str) -> tuple[Fn, T.AvroType | None]:
        if e is None:
            return (lambda env: None), T.NULL
        if isinstance(e, bool):
            return _const(e), T.BOOLEAN
        if isinstance(e, int):
            return _const(e), T.literal_type(e)
        if isinstance(e, float):
            return _const(e), T.DOUBLE
        if isinstance(e, str):
            return self.symbol(e, scope, where)
        if isinstance(e, list):
            if len(e) == 1 and isinstance(e[0], str):
                return _const(e[0]), T.STRING
            raise self.err("a JSON array is not an expression here (a one-string array is a string literal)",
                           where)
        if not isinstance(e, dict):
            raise self.err(f"not an expression: {e!r}", where)
        keys = set(e) - {"@"}
        for form, need in _FORMS:
            if need <= keys:
                return getattr(self, "f_" + form)(e, scope, where)
        if len(keys) != 1:
            raise self.err(f"an object with keys {sorted(keys)} is neither a special form nor a function call",
                           where)
        name = next(iter(keys))
        args = e[name]
        return self.call(name, args if isinstance(args, list) else [args], scope, f"{where}.{name}")

    def symbol(self, name: str, scope: CScope, where: str) -> tuple[Fn, T.AvroType | None]:
        if "." in name and not scope.lookup(name)[0]:
            head, *rest = name.split(".")
            path = [int(p) if p.lstrip("-").isdigit() else [p] for p in rest]
            return self.f_attr({"attr": head, "path": path}, scope, where)
        found, t = scope.lookup(name)
        if not found:
            raise self.err(f"unknown symbol '{name}'; symbols in scope: {', '.join(sorted(scope.names()))}",
                           where)
        if name in PREDEFINED:
            self.engine.uses_predefined = True

        def get(env: dict) -> Any:
            return env[name]
        return get, t

    def args(self, arglist: list[Any], scope: CScope, where: str) -> tuple[list[Fn], list[Any]]:
        fns, ts = [], []
        for i, a in enumerate(arglist):
            here = f"{where}[{i}]"
            if isinstance(a, dict) and ("fcn" in a or ("params" in a and "do" in a and "ret" in a)):
                f, t = self.fnarg(a, scope, here)
            else:
                f, t = self.expr(a, scope, here)
            fns.append(f)
            ts.append(t)
        return fns, ts

    def fnarg(self, a: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        """A function argument: returns a closure producing a Python callable, and its (FcnType or LibRef)."""
        if "fcn" in a:
            name = a["fcn"]
            if not isinstance(name, str):
                raise self.err("'fcn' names a function", where)
            if name.startswith("u."):
                fn = self.user_fn(name[2:], where)
                ft: Any = self.doc.fcns[name[2:]].type
                order = [p for p, _ in self.doc.fcns[name[2:]].params]
            else:
                entry = self.lib.get(name)
                if entry is None:
                    raise UnsupportedModelError(f"function '{name}' is not a PFA library function portable "
                                                "supports", path=self.doc.path, where=f"{where}.fcn")
                fn = entry.bind(self, None, where)
                ft = sigs.LibRef(name)
                order = None
            if "fill" in a:
                fills = {k: self.expr(v, scope, f"{where}.fill.{k}")[0] for k, v in a["fill"].items()}
                if order is None:
                    sig = sigs.table().get(name, {}).get("sigs", [{}])[0]
                    order = [p for p, _ in sig.get("params", [])]
                base = fn
                free = [p for p in order if p not in fills]
                if isinstance(ft, T.FcnType):
                    ft = T.FcnType(tuple(t for (p, _), t in zip(self.doc.fcns[name[2:]].params, ft.params)
                                         if p not in fills), ft.ret)
                else:
                    ft = None

                def filled(env: dict) -> Callable[..., Any]:
                    vals = {k: f(env) for k, f in fills.items()}

                    def call(*args: Any) -> Any:
                        kw = dict(vals)
                        kw.update(zip(free, args))
                        return base(*[kw[p] for p in order])
                    return call
                return filled, ft
            return (lambda env: fn), ft
        fdef = parse_fcndef(a, self.doc.types, where, self.doc.path)
        factory = self.function(fdef, scope, where, capture=True)
        return factory, fdef.type

    def call(self, name: str, arglist: list[Any], scope: CScope, where: str) -> tuple[Fn, T.AvroType | None]:
        fns, ts = self.args(arglist, scope, where)
        if name.startswith("u."):
            fn = self.user_fn(name[2:], where)
            fdef = self.doc.fcns[name[2:]]
            if len(fns) != len(fdef.params):
                raise self.err(f"{name} takes {len(fdef.params)} argument(s), got {len(fns)}", where)
            return _wrap_call(fn, fns, where), fdef.ret
        if name == "emit":
            return self.emit(fns, ts, where), T.NULL
        if name in _SHORT and len(fns) == 2:
            return _SHORT[name](*fns), (T.BOOLEAN if len(name) == 2 else T.Union((T.BOOLEAN, T.NULL)))
        entry = self.lib.get(name)
        if entry is None:
            import difflib

            close = difflib.get_close_matches(name, list(self.lib), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UnsupportedModelError(f"function '{name}' is not a PFA library function portable "
                                        f"supports{hint}", path=self.doc.path, where=where)
        ar = entry.arity
        if ar is not None and len(fns) not in ar:
            raise self.err(f"{name} takes {' or '.join(str(a) for a in sorted(ar))} argument(s), "
                           f"got {len(fns)}", where)
        rt = entry.ret(ts) if entry.ret is not None else sigs.resolve(name, ts)
        impl = entry.bind(self, ts, where, rt)
        return _wrap_call(impl, fns, where), rt

    def emit(self, fns: list[Fn], ts: list[Any], where: str) -> Fn:
        if self.method != "emit":
            raise self.err("'emit' is only available in documents with method emit", where)
        if len(fns) != 1:
            raise self.err("emit takes 1 argument", where)
        f = fns[0]
        out = self.st.emitted
        t = self.doc.output

        def run(env: dict) -> None:
            out.append(conform(f(env), t))
            return None
        return run

    # -- special forms -------------------------------------------------------------------------------------------
    def f_literal(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        t = self.doc.types.parse(e["type"], f"{where}.type", self.doc.path)
        v = from_avro_json(T.decode(e["value"], t, f"{where}.value", self.doc.path), t)
        return _const_copy(v), t

    def f_typed(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        (k, v), = ((k, v) for k, v in e.items() if k != "@")
        if k == "string":
            if not isinstance(v, str):
                raise self.err("'string' takes a string", where)
            return _const(v), T.STRING
        if k == "base64":
            try:
                return _const(base64.b64decode(v, validate=True)), T.BYTES
            except Exception:
                raise self.err("'base64' is not valid base64", where) from None
        t = T.Prim(k)
        val = T.decode(v, t, f"{where}.{k}", self.doc.path)
        return _const(from_avro_json(val, t)), t

    def f_new(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        t = self.doc.types.parse(e["type"], f"{where}.type", self.doc.path)
        spec = e["new"]
        if isinstance(spec, list):
            if not isinstance(t, T.Array):
                raise self.err(f"'new' with a JSON array builds an array, not {t.describe()}", where)
            items = [self.expr(x, scope, f"{where}.new[{i}]")[0] for i, x in enumerate(spec)]
            it = t.items if _needs_conform(t.items) else None

            def arr(env: dict) -> Any:
                return [conform(f(env), it) for f in items] if it else [f(env) for f in items]
            return arr, t
        if not isinstance(spec, dict):
            raise self.err("'new' takes an object or an array", where)
        if isinstance(t, T.Record):
            missing = [f for f in t.fields if f not in spec]
            extra = [f for f in spec if f not in t.fields]
            if extra:
                raise self.err(f"record {t.name} has no field(s) {', '.join(extra)}", where)
            if missing:
                raise self.err(f"record {t.name} needs field(s) {', '.join(missing)}", where)
        elif not isinstance(t, T.Map):
            raise self.err(f"'new' with an object builds a record or a map, not {t.describe()}", where)
        parts = [(k, self.expr(x, scope, f"{where}.new.{k}")[0],
                  t.fields[k] if isinstance(t, T.Record) else t.values) for k, x in spec.items()]

        def obj(env: dict) -> Any:
            return {k: conform(f(env), ft) for k, f, ft in parts}
        return obj, t

    def f_do(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        return self.body(e["do"], scope.child(), f"{where}.do")

    def f_let(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        spec = e["let"]
        if not isinstance(spec, dict) or not spec:
            raise self.err("'let' takes an object of new symbols", where)
        parts = []
        for name, x in spec.items():
            if scope.lookup(name)[0] and name in scope.vars or name in ("input", "tally"):
                raise self.err(f"symbol '{name}' is already defined", f"{where}.let.{name}")
            if not _valid_name(name):
                raise self.err(f"'{name}' is not a valid symbol name", f"{where}.let.{name}")
            f, t = self.expr(x, scope, f"{where}.let.{name}")
            parts.append((name, f))
            scope.vars[name] = t
        if len(parts) == 1:
            (n0, f0), = parts

            def let1(env: dict) -> None:
                env[n0] = f0(env)
            return let1, T.NULL

        def let(env: dict) -> None:
            vals = [(n, f(env)) for n, f in parts]
            env.update(vals)
        return let, T.NULL

    def f_set(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        spec = e["set"]
        if not isinstance(spec, dict) or not spec:
            raise self.err("'set' takes an object of symbols to change", where)
        parts = []
        for name, x in spec.items():
            found, t = scope.lookup(name)
            if not found:
                raise self.err(f"cannot set unknown symbol '{name}'", f"{where}.set.{name}")
            if _sealed_from(scope, name):
                raise self.err(f"symbol '{name}' belongs to an enclosing scope a function cannot change",
                               f"{where}.set.{name}")
            f, _ = self.expr(x, scope, f"{where}.set.{name}")
            parts.append((name, f, t if _needs_conform(t) else None))

        def set_(env: dict) -> None:
            vals = [(n, conform(f(env), t) if t is not None else f(env)) for n, f, t in parts]
            env.update(vals)
        return set_, T.NULL

    def f_if(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        c, ct = self.expr(e["if"], scope.child(), f"{where}.if")
        if ct is not None and ct != T.BOOLEAN:
            raise self.err(f"the condition of 'if' must be boolean, found {ct.describe()}", f"{where}.if")
        a, at = self.body(e["then"], scope.child(), f"{where}.then")
        if "else" in e:
            b, bt = self.body(e["else"], scope.child(), f"{where}.else")

            def ifelse(env: dict) -> Any:
                return a(env) if c(env) else b(env)
            return ifelse, _unify(at, bt)

        def if_(env: dict) -> None:
            if c(env):
                a(env)
        return if_, T.NULL

    def f_cond(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        cases = []
        types: list[Any] = []
        if not isinstance(e["cond"], list) or not e["cond"]:
            raise self.err("'cond' takes a list of {if, then} cases", where)
        for i, case in enumerate(e["cond"]):
            if not isinstance(case, dict) or "if" not in case or "then" not in case:
                raise self.err("each 'cond' case has 'if' and 'then'", f"{where}.cond[{i}]")
            c, _ = self.expr(case["if"], scope.child(), f"{where}.cond[{i}].if")
            a, at = self.body(case["then"], scope.child(), f"{where}.cond[{i}].then")
            cases.append((c, a))
            types.append(at)
        els = None
        if "else" in e:
            els, et = self.body(e["else"], scope.child(), f"{where}.else")
            types.append(et)

        def cond(env: dict) -> Any:
            for c, a in cases:
                if c(env):
                    return a(env)
            return els(env) if els is not None else None
        t = None
        if els is not None:
            t = types[0]
            for x in types[1:]:
                t = _unify(t, x)
        return cond, (t if els is not None else T.NULL)

    def f_while(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        c, _ = self.expr(e["while"], scope.child(), f"{where}.while")
        b, _ = self.body(e["do"], scope.child(), f"{where}.do")
        guard = LIMITS.max_pfa_loop_iterations

        def while_(env: dict) -> None:
            n = 0
            while c(env):
                b(env)
                n += 1
                if not n & 63:
                    tick()
                if n > guard:
                    raise _endless(guard)
        return while_, T.NULL

    def f_until(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        inner = scope.child()
        b, _ = self.body(e["do"], inner, f"{where}.do")
        c, _ = self.expr(e["until"], inner, f"{where}.until")
        guard = LIMITS.max_pfa_loop_iterations

        def until(env: dict) -> None:
            n = 0
            while True:
                b(env)
                if c(env):
                    break
                n += 1
                if not n & 63:
                    tick()
                if n > guard:
                    raise _endless(guard)
        return until, T.NULL

    def f_for(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        inner = scope.child()
        init = []
        if not isinstance(e["for"], dict):
            raise self.err("'for' takes an object of loop symbols", where)
        for name, x in e["for"].items():
            f, t = self.expr(x, scope, f"{where}.for.{name}")
            init.append((name, f))
            inner.vars[name] = t
        c, _ = self.expr(e["while"], inner, f"{where}.while")
        step = [(name, self.expr(x, inner, f"{where}.step.{name}")[0]) for name, x in e["step"].items()]
        b, _ = self.body(e["do"], inner.child(), f"{where}.do")
        guard = LIMITS.max_pfa_loop_iterations

        def for_(env: dict) -> None:
            env.update([(n, f(env)) for n, f in init])
            n = 0
            while c(env):
                b(env)
                env.update([(k, f(env)) for k, f in step])
                n += 1
                if not n & 63:
                    tick()
                if n > guard:
                    raise _endless(guard)
        return for_, T.NULL

    def f_foreach(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        name = e["foreach"]
        arr, at = self.expr(e["in"], scope.child(), f"{where}.in")
        inner = scope.child()
        inner.vars[name] = at.items if isinstance(at, T.Array) else None
        b, _ = self.body(e["do"], inner, f"{where}.do")

        def foreach(env: dict) -> None:
            for i, x in enumerate(arr(env)):
                env[name] = x
                b(env)
                if not i & 63:
                    tick()
        return foreach, T.NULL

    def f_forkey(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        k, v = e["forkey"], e["forval"]
        m, mt = self.expr(e["in"], scope.child(), f"{where}.in")
        inner = scope.child()
        inner.vars[k] = T.STRING
        inner.vars[v] = mt.values if isinstance(mt, T.Map) else None
        b, _ = self.body(e["do"], inner, f"{where}.do")

        def forkey(env: dict) -> None:
            for i, (key, val) in enumerate(list(m(env).items())):
                env[k] = key
                env[v] = val
                b(env)
                if not i & 63:
                    tick()
        return forkey, T.NULL

    def f_cast(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        x, _ = self.expr(e["cast"], scope.child(), f"{where}.cast")
        cases = []
        types: list[Any] = []
        for i, case in enumerate(e["cases"]):
            t = self.doc.types.parse(case["as"], f"{where}.cases[{i}].as", self.doc.path)
            inner = scope.child()
            inner.vars[case["named"]] = t
            b, bt = self.body(case["do"], inner, f"{where}.cases[{i}].do")
            cases.append((t, case["named"], b))
            types.append(bt)
        partial = bool(e.get("partial"))

        def cast(env: dict) -> Any:
            v = x(env)
            for t, name, b in cases:
                if value_fits(v, t):
                    env[name] = conform(v, t)
                    out = b(env)
                    return None if partial else out
            return None
        t = None
        if not partial and types:
            t = types[0]
            for y in types[1:]:
                t = _unify(t, y)
        return cast, (T.NULL if partial else t)

    def f_upcast(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        x, _ = self.expr(e["upcast"], scope, f"{where}.upcast")
        t = self.doc.types.parse(e["as"], f"{where}.as", self.doc.path)
        return (lambda env: conform(x(env), t)), t

    def f_ifnotnull(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        spec = e["ifnotnull"]
        parts = []
        inner = scope.child()
        for name, x in spec.items():
            f, t = self.expr(x, scope.child(), f"{where}.ifnotnull.{name}")
            parts.append((name, f))
            inner.vars[name] = _strip_null(t)
        a, at = self.body(e["then"], inner, f"{where}.then")
        b = None
        bt: Any = T.NULL
        if "else" in e:
            b, bt = self.body(e["else"], scope.child(), f"{where}.else")

        def ifnotnull(env: dict) -> Any:
            vals = [(n, f(env)) for n, f in parts]
            if all(v is not None for _, v in vals):
                env.update(vals)
                out = a(env)
                return out if b is not None else None
            return b(env) if b is not None else None
        return ifnotnull, (_unify(at, bt) if b is not None else T.NULL)

    def f_attr(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        base, t = self.expr(e["attr"], scope, f"{where}.attr")
        steps, t = self.path(e.get("path"), t, scope, where, need=True)
        if "to" in e:
            upd = self.updater(e["to"], scope, f"{where}.to")

            def attr_to(env: dict) -> Any:
                return _replace(base(env), [(k(env) if kind != "f" else k) for kind, k in steps], upd(env),
                                2002, 2003)
            return attr_to, self.expr(e["attr"], scope, where)[1]
        return self.walker(base, steps, 2000, 2001), t

    def path(self, path: Any, t: Any, scope: CScope, where: str, need: bool = False) -> tuple[list, Any]:
        if path is None:
            if need:
                raise self.err("'attr' needs a 'path'", where)
            return [], t
        if not isinstance(path, list):
            raise self.err("'path' is a JSON array of indexes", f"{where}.path")
        steps = []
        for i, p in enumerate(path):
            here = f"{where}.path[{i}]"
            inner = _strip_null(t) if isinstance(t, T.Union) else t
            if isinstance(inner, T.Record):
                key = p[0] if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str) else (
                    p.get("string") if isinstance(p, dict) and set(p) == {"string"} else None)
                if key is None:
                    raise self.err("a record field name must be a literal string", here)
                if key not in inner.fields:
                    raise self.err(f"record {inner.name} has no field '{key}'; fields: "
                                   f"{', '.join(inner.fields)}", here)
                steps.append(("f", key))
                t = inner.fields[key]
                continue
            f, kt = self.expr(p, scope, here)
            if isinstance(inner, T.Array):
                if kt is not None and not T.is_integer(kt):
                    raise self.err(f"an array index must be an int, found {kt.describe()}", here)
                t = inner.items
            elif isinstance(inner, T.Map):
                if kt is not None and kt != T.STRING:
                    raise self.err(f"a map key must be a string, found {kt.describe()}", here)
                t = inner.values
            elif inner is None:
                t = None
            else:
                raise self.err(f"cannot index into a {inner.describe()}", here)
            steps.append(("x", f))
        return steps, t

    @staticmethod
    def walker(base: Fn, steps: list, code_arr: int, code_map: int) -> Fn:
        if len(steps) == 1 and steps[0][0] == "f":
            key = steps[0][1]

            def field(env: dict) -> Any:
                return base(env)[key]
            return field

        def walk(env: dict) -> Any:
            v = base(env)
            for kind, k in steps:
                v = _step(v, k if kind == "f" else k(env), code_arr, code_map)
            return v
        return walk

    def updater(self, to: Any, scope: CScope, where: str) -> Callable[[dict], Callable[[Any], Any]]:
        """`to`: a value (replace) or a function (apply to the old value); returns env -> (old -> new)."""
        if isinstance(to, dict) and ("fcn" in to or ("params" in to and "do" in to and "ret" in to)):
            f, _ = self.fnarg(to, scope, where)
            return f
        v, _ = self.expr(to, scope, where)
        return lambda env: (lambda old, _v=v(env): _v)

    def f_cell(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        name = e["cell"]
        cell = self.doc.cells.get(name)
        if cell is None:
            raise self.err(f"unknown cell '{name}'; cells: {', '.join(self.doc.cells) or 'none'}", where)
        steps, t = self.path(e.get("path"), cell.type, scope, where)
        cells = self.st.cells
        if "to" in e:
            upd = self.updater(e["to"], scope, f"{where}.to")
            self.engine.writes = True
            ct = cell.type if _needs_conform(cell.type) else None

            if not steps:
                fast = _fast_conform(ct)

                def cell_set(env: dict) -> Any:
                    v = fast(upd(env)(cells[name]))
                    cells[name] = v
                    return v
                return cell_set, cell.type

            fast_ct = _fast_conform(ct)

            def cell_to(env: dict) -> Any:
                new = _replace(cells[name], [(k(env) if kind != "f" else k) for kind, k in steps], upd(env),
                               2006, 2007)
                cells[name] = fast_ct(new)
                return cells[name]
            return cell_to, cell.type
        if not steps:
            return (lambda env: cells[name]), t
        return self.walker(lambda env: cells[name], steps, 2004, 2005), t

    def f_pool(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        name = e["pool"]
        pool = self.doc.pools.get(name)
        if pool is None:
            raise self.err(f"unknown pool '{name}'; pools: {', '.join(self.doc.pools) or 'none'}", where)
        pools = self.st.pools
        if "del" in e:
            k, _ = self.expr(e["del"], scope, f"{where}.del")
            self.engine.writes = True

            def pool_del(env: dict) -> None:
                pools[name].pop(k(env), None)
            return pool_del, T.NULL
        path = e.get("path")
        if not isinstance(path, list) or not path:
            raise self.err("a 'pool' form needs a non-empty 'path' (its first index names the item)", where)
        key, _ = self.expr(path[0], scope, f"{where}.path[0]")
        steps, t = self.path(path[1:], pool.type, scope, where)
        if "to" in e:
            if "init" not in e:
                raise self.err("'pool' with 'to' needs an 'init'", where)
            upd = self.updater(e["to"], scope, f"{where}.to")
            init, _ = self.expr(e["init"], scope, f"{where}.init")
            self.engine.writes = True
            fast_pt = _fast_conform(pool.type)

            def pool_to(env: dict) -> Any:
                items = pools[name]
                k = key(env)
                old = items[k] if k in items else init(env)
                new = _replace(old, [(s(env) if kind != "f" else s) for kind, s in steps], upd(env), 2010, 2011)
                items[k] = fast_pt(new)
                return items[k]
            return pool_to, pool.type

        def pool_get(env: dict) -> Any:
            items = pools[name]
            k = key(env)
            if k not in items:
                raise PFAErr(f"pool item '{k}' not found", 2009)
            v = items[k]
            for kind, s in steps:
                v = _step(v, s if kind == "f" else s(env), 2008, 2009)
            return v
        return pool_get, t

    def f_try(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        b, bt = self.body(e["try"], scope.child(), f"{where}.try")
        filt = e.get("filter")
        msgs = {x for x in (filt or []) if isinstance(x, str)}
        codes = {x for x in (filt or []) if isinstance(x, int)}

        def try_(env: dict) -> Any:
            try:
                return b(env)
            except PFAErr as exc:
                if filt is None or exc.message in msgs or exc.code in codes:
                    return None
                raise
        t = bt if bt is None or T.is_null(bt) or (isinstance(bt, T.Union) and bt.nullable) else \
            T.Union((bt, T.NULL))
        return try_, t

    def f_error(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        msg = e["error"]
        code = e.get("code")
        if not isinstance(msg, str):
            raise self.err("'error' takes a string message", where)

        def error(env: dict) -> Any:
            raise UserErr(msg, code, where)
        return error, None

    def f_log(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        items = e["log"] if isinstance(e["log"], list) else [e["log"]]
        fns = [self.expr(x, scope, f"{where}.log[{i}]") for i, x in enumerate(items)]
        ns = e.get("namespace")
        logs = self.st.logs

        def log(env: dict) -> None:
            vals = [to_json(f(env), t) for f, t in fns]
            logs.append((ns, vals))
            if len(logs) > 10000:
                del logs[:5000]
            LOG.info("%s%s", f"{ns}: " if ns else "", " ".join(json.dumps(v) for v in vals))
        return log, T.NULL

    def f_doc(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        return (lambda env: None), T.NULL

    def f_fcnref(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        raise self.err("a function reference is only allowed as an argument of a function", where)

    def f_pack(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        parts = []
        for i, item in enumerate(e["pack"]):
            if not isinstance(item, dict) or len(item) != 1:
                raise self.err("each 'pack' item is {format: expression}", f"{where}.pack[{i}]")
            (fmt, x), = item.items()
            parts.append((_pack_format(fmt, self, f"{where}.pack[{i}]"),
                          self.expr(x, scope, f"{where}.pack[{i}].{fmt}")[0]))

        def pack(env: dict) -> bytes:
            out = bytearray()
            for (kind, st, _), f in parts:
                v = f(env)
                if kind == "struct":
                    out += struct.pack(st, v)
                elif kind == "pad":
                    out += b"\x00"
                elif kind == "raw":
                    if len(v) != st:
                        raise PFAErr(f"raw{st} needs {st} bytes, found {len(v)}")
                    out += v
                elif kind == "nullterminated":
                    out += v + b"\x00"
                elif kind == "lengthprefixed":
                    out += bytes([len(v)]) + v
            return bytes(out)
        return pack, T.BYTES

    def f_unpack(self, e: dict, scope: CScope, where: str) -> tuple[Fn, Any]:
        x, _ = self.expr(e["unpack"], scope, f"{where}.unpack")
        fmts = []
        inner = scope.child()
        for i, item in enumerate(e["format"]):
            (name, fmt), = item.items()
            spec = _pack_format(fmt, self, f"{where}.format[{i}]")
            fmts.append((name, spec))
            inner.vars[name] = spec[2]
        a, at = self.body(e["then"], inner, f"{where}.then")
        b = None
        if "else" in e:
            b, bt = self.body(e["else"], scope.child(), f"{where}.else")

        def unpack(env: dict) -> Any:
            data = x(env)
            pos = 0
            vals = []
            try:
                for name, (kind, st, _) in fmts:
                    if kind == "struct":
                        size = struct.calcsize(st)
                        v = struct.unpack(st, data[pos:pos + size])[0]
                        if st.endswith("?"):
                            v = bool(v)
                        pos += size
                    elif kind == "pad":
                        v = None
                        pos += 1
                        if pos > len(data):
                            raise struct.error("short")
                    elif kind == "raw":
                        if pos + st > len(data):
                            raise struct.error("short")
                        v = data[pos:pos + st]
                        pos += st
                    elif kind == "nullterminated":
                        end = data.index(b"\x00", pos)
                        v = data[pos:end]
                        pos = end + 1
                    else:
                        n = data[pos]
                        if pos + 1 + n > len(data):
                            raise struct.error("short")
                        v = data[pos + 1:pos + 1 + n]
                        pos += 1 + n
                    vals.append((name, v))
                if pos != len(data):
                    raise struct.error("length")
            except (struct.error, ValueError, IndexError):
                return b(env) if b is not None else None
            env.update(vals)
            out = a(env)
            return out if b is not None else None
        return unpack, (_unify(at, bt) if b is not None else T.NULL)


_FORMS = [  # (method suffix, keys that identify the form), most specific first
    ("literal", {"type", "value"}), ("new", {"new", "type"}), ("for", {"for", "while", "step", "do"}),
    ("until", {"do", "until"}), ("while", {"while", "do"}), ("foreach", {"foreach", "in", "do"}),
    ("forkey", {"forkey", "forval", "in", "do"}), ("cast", {"cast", "cases"}), ("upcast", {"upcast", "as"}),
    ("ifnotnull", {"ifnotnull", "then"}), ("if", {"if", "then"}), ("cond", {"cond"}), ("let", {"let"}),
    ("set", {"set"}), ("attr", {"attr"}), ("cell", {"cell"}), ("pool", {"pool"}), ("try", {"try"}),
    ("error", {"error"}), ("log", {"log"}), ("doc", {"doc"}), ("pack", {"pack"}),
    ("unpack", {"unpack", "format", "then"}), ("do", {"do"}),
    ("typed", {"string"}), ("typed", {"base64"}), ("typed", {"int"}), ("typed", {"long"}), ("typed", {"float"}),
    ("typed", {"double"}), ("typed", {"boolean"}), ("fcnref", {"fcn"}), ("fcnref", {"params", "ret", "do"}),
]


def _pack_format(fmt: str, comp: Compiler, where: str) -> tuple[str, Any, T.AvroType]:
    import re

    s = " ".join(fmt.split())
    m = re.fullmatch(r"(<|>|!|little|big|network)?\s*(unsigned)?\s*(.*)", s)
    assert m is not None
    endian, unsigned, kind = m.group(1), bool(m.group(2)), m.group(3).strip()
    e = "<" if endian in ("<", "little") else ">"
    if kind == "pad":
        return "pad", None, T.NULL
    if kind == "boolean":
        return "struct", "?", T.BOOLEAN
    table = {"byte": ("b", T.INT), "int8": ("b", T.INT), "short": ("h", T.INT), "int16": ("h", T.INT),
             "int": ("i", T.INT), "int32": ("i", T.INT), "long": ("q", T.LONG), "long long": ("q", T.LONG),
             "int64": ("q", T.LONG), "float": ("f", T.FLOAT), "float32": ("f", T.FLOAT),
             "double": ("d", T.DOUBLE), "float64": ("d", T.DOUBLE)}
    if kind in table:
        code, t = table[kind]
        if unsigned:
            code = code.upper()
            t = {"b": T.INT, "h": T.INT, "i": T.LONG, "q": T.DOUBLE}[code.lower()]
        return "struct", e + code, t
    m = re.fullmatch(r"raw\s*(\d+)", kind)
    if m:
        return "raw", int(m.group(1)), T.BYTES
    if re.fullmatch(r"null\s*terminated", kind):
        return "nullterminated", None, T.BYTES
    if re.fullmatch(r"length\s*prefixed", kind):
        return "lengthprefixed", None, T.BYTES
    raise comp.err(f"unknown pack/unpack format {fmt!r}", where)


def _and(a: Fn, b: Fn) -> Fn:
    return lambda env: a(env) and b(env)


def _or(a: Fn, b: Fn) -> Fn:
    return lambda env: a(env) or b(env)


def _kand(a: Fn, b: Fn) -> Fn:
    def run(env: dict) -> Any:
        x = a(env)
        if x is False:
            return False
        y = b(env)
        if y is False:
            return False
        return True if x is True and y is True else None
    return run


def _kor(a: Fn, b: Fn) -> Fn:
    def run(env: dict) -> Any:
        x = a(env)
        if x is True:
            return True
        y = b(env)
        if y is True:
            return True
        return False if x is False and y is False else None
    return run


_SHORT = {"&&": _and, "||": _or, "&&&": _kand, "|||": _kor}


def _const(v: Any) -> Fn:
    return lambda env: v


def _const_copy(v: Any) -> Fn:
    return lambda env: v  # values are immutable in PFA: library functions never change their arguments


def _wrap_call(impl: Callable[..., Any], fns: list[Fn], where: str) -> Fn:
    n = len(fns)
    if n == 0:
        def c0(env: dict) -> Any:
            try:
                return impl()
            except PFAErr as exc:
                if exc.where is None:
                    exc.where = where
                raise
        return c0
    if n == 1:
        a, = fns

        def c1(env: dict) -> Any:
            try:
                return impl(a(env))
            except PFAErr as exc:
                if exc.where is None:
                    exc.where = where
                raise
        return c1
    if n == 2:
        a, b = fns

        def c2(env: dict) -> Any:
            try:
                return impl(a(env), b(env))
            except PFAErr as exc:
                if exc.where is None:
                    exc.where = where
                raise
        return c2
    if n == 3:
        a, b, c = fns

        def c3(env: dict) -> Any:
            try:
                return impl(a(env), b(env), c(env))
            except PFAErr as exc:
                if exc.where is None:
                    exc.where = where
                raise
        return c3

    def cn(env: dict) -> Any:
        try:
            return impl(*[f(env) for f in fns])
        except PFAErr as exc:
            if exc.where is None:
                exc.where = where
            raise
    return cn


def _step(v: Any, k: Any, code_arr: int, code_map: int) -> Any:
    if isinstance(v, list):
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(v):
            raise PFAErr("array index not found", code_arr)
        return v[k]
    if isinstance(v, dict):
        if k not in v:
            raise PFAErr("map key not found", code_map)
        return v[k]
    raise PFAErr(f"cannot index into {type(v).__name__}", code_map)


def _replace(v: Any, keys: list[Any], upd: Callable[[Any], Any], code_arr: int, code_map: int) -> Any:
    if not keys:
        return upd(v)
    k, rest = keys[0], keys[1:]
    if isinstance(v, list):
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(v):
            raise PFAErr("array index not found", code_arr)
        out = list(v)
        out[k] = _replace(v[k], rest, upd, code_arr, code_map)
        return out
    if isinstance(v, dict):
        if k not in v:
            raise PFAErr("map key not found", code_map)
        out2 = dict(v)
        out2[k] = _replace(v[k], rest, upd, code_arr, code_map)
        return out2
    raise PFAErr("cannot index into a primitive", code_map)


def _fast_conform(t: Any) -> Callable[[Any], Any]:
    """What a value crossing into a slot of static type `t` (a function parameter or result, a cell) needs:
    numeric promotion (an int where a double is declared) and float rounding. Records, enums and the like are
    built conformant (`new`, literals, inputs) and pass unchanged, so that handing a tree or a state record to a
    function costs nothing."""
    if t is None:
        return lambda v: v
    if isinstance(t, T.Prim):
        if t.name == "double":
            return lambda v: v if type(v) is float else conform(v, t)
        if t.name == "float":
            return lambda v: conform(v, t)
        return lambda v: v
    if isinstance(t, T.Array) and isinstance(t.items, T.Prim) and t.items.name == "double":
        return lambda v: v if not v or type(v[0]) is float else conform(v, t)  # arrays are homogeneous
    if isinstance(t, (T.Array, T.Map)) and _numeric_leaf(t):
        return lambda v: conform(v, t)
    if isinstance(t, T.Union) and any(isinstance(b, T.Prim) and b.name in ("double", "float") for b in t.types):
        return lambda v: conform(v, t) if isinstance(v, int) and not isinstance(v, bool) else v
    return lambda v: v


def _numeric_leaf(t: Any) -> bool:
    while isinstance(t, (T.Array, T.Map)):
        t = t.items if isinstance(t, T.Array) else t.values
    return isinstance(t, T.Prim) and t.name in ("double", "float")


def _needs_conform(t: Any) -> bool:
    if t is None:
        return False
    if isinstance(t, T.Prim):
        return t.name in ("double", "float")
    if isinstance(t, T.Array):
        return _needs_conform(t.items)
    if isinstance(t, T.Map):
        return _needs_conform(t.values)
    if isinstance(t, (T.Record, T.Union)):
        return True
    return False


def _strip_null(t: Any) -> Any:
    if isinstance(t, T.Union):
        rest = t.non_null
        return rest[0] if len(rest) == 1 else T.Union(rest)
    return t


def _unify(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if a == b:
        return a
    if T.is_numeric(a) and T.is_numeric(b):
        return T.wider(a, b)
    out: list[T.AvroType] = []
    for t in (a, b):
        for x in (t.types if isinstance(t, T.Union) else (t,)):
            if x not in out:
                out.append(x)
    return out[0] if len(out) == 1 else T.Union(tuple(out))


def _sealed_from(scope: CScope, name: str) -> bool:
    s: CScope | None = scope
    while s is not None:
        if name in s.vars:
            return False
        if s.sealed:
            return True
        s = s.parent
    return False


def _valid_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None


# --------------------------------------------------------------------------------------------------------------
def _endless(guard: int) -> LimitError:
    """A loop past `max_pfa_loop_iterations`: the scoring run stops (a limit of portable, not a fault of the
    record: every record of a check would otherwise run its own ten million iterations)."""
    return LimitError(f"a loop ran more than {guard:,} times; portable stopped scoring", "max_pfa_loop_iterations")


class RowEngine:
    """One scoring engine instance: compiled begin/action/end/merge and the persistent state."""

    def __init__(self, doc: Document, seed: int | None = None) -> None:
        self.doc = doc
        self.method = doc.raw.get("method", "map") if isinstance(doc.raw, dict) else "map"
        self.seed = seed
        self.writes = False
        self.uses_predefined = False
        self.state = State(doc, seed)
        comp = Compiler(doc, self.state, self)
        self.compiler = comp
        top = CScope()
        for name, t in self._predefined().items():
            top.vars[name] = t
        scope = top.child()
        scope.vars["input"] = doc.input
        if self.method == "fold":
            scope.vars["tally"] = doc.output
        self.action, self.action_type = comp.block(doc.action, scope, "action")
        self.begin = comp.block(doc.begin, top.child(), "begin")[0] if doc.begin else None
        end_scope = top.child()
        if self.method == "fold":
            end_scope.vars["tally"] = doc.output
        self.end_fn = comp.block(doc.end, end_scope, "end")[0] if doc.end else None
        self.merge_fn = None
        if self.method == "fold":
            ms = CScope()
            ms.vars["tallyOne"] = doc.output
            ms.vars["tallyTwo"] = doc.output
            self.merge_fn = comp.block(doc.merge, ms, "merge")[0] if doc.merge else None
            self.tally = from_avro_json(doc.zero, doc.output)
        for name in list(doc.fcns):
            comp.user_fn(name, doc.fcns[name].where)
        self.rollback = [n for n, c in doc.cells.items() if c.rollback] + \
            [n for n, c in doc.pools.items() if c.rollback]
        self.out_type = doc.output
        options = doc.raw.get("options") if isinstance(doc.raw, dict) else None
        self.budgets = {r: clock.budget(options, r) for r in ("begin", "action", "end")}

    def _predefined(self) -> dict[str, T.AvroType]:
        return {"name": T.STRING, "instance": T.INT, "version": T.INT, "metadata": T.Map(T.STRING),
                "actionsStarted": T.LONG, "actionsFinished": T.LONG}

    def _env(self) -> dict:
        d = self.doc
        return {"name": d.name, "instance": 0, "version": d.raw.get("version", 0) if isinstance(d.raw, dict)
                else 0, "metadata": {str(k): str(v) for k, v in (d.metadata or {}).items()},
                "actionsStarted": self.state.started, "actionsFinished": self.state.finished}

    def run_begin(self) -> None:
        if self.state.begun:
            return
        self.state.begun = True
        if self.begin is not None:
            self._guarded(self.begin, self._env(), "begin", self.budgets["begin"])

    def run_end(self) -> None:
        if self.end_fn is not None:
            env = self._env()
            if self.method == "fold":
                env["tally"] = self.tally
            self._guarded(self.end_fn, env, "end", self.budgets["end"])

    def _guarded(self, fn: Fn, env: dict, where: str, budget: tuple[float, bool] | None = None) -> Any:
        saved = clock.arm(*(budget or self.budgets["action"]))
        try:
            return fn(env)
        except clock.RoutineTimeout as exc:
            raise clock.RoutineTimeout(exc.ms, exc.own, where=where, path=self.doc.path) from None
        except PFAErr as exc:
            raise PFARuntimeError(exc.message, code=exc.code, where=exc.where or where) from None
        except RecursionError:
            raise PFARuntimeError("recursion too deep (user functions calling themselves)", where=where) from None
        finally:
            clock.disarm(saved)

    def action_one(self, datum: Any) -> Any:
        """Score one record: the action's result (map), the list of emitted values (emit), the new tally (fold).

        Raises:
            PFAErr: a runtime error (cells/pools marked rollback are restored first).
        """
        st = self.state
        st.started += 1
        env = self._env()
        env["input"] = datum
        saved = None
        if self.rollback:
            saved = {n: copy.deepcopy(st.cells[n]) if n in st.cells else copy.deepcopy(st.pools[n])
                     for n in self.rollback}
        if self.method == "emit":
            mark = len(st.emitted)
        armed = clock.arm(*self.budgets["action"])
        try:
            if self.method == "fold":
                env["tally"] = self.tally
                out = conform(self.action(env), self.out_type)
                self.tally = out
            elif self.method == "emit":
                self.action(env)
                out = st.emitted[mark:]
                del st.emitted[mark:]
            else:
                out = self.action(env)
        except (PFAErr, clock.RoutineTimeout):
            if saved is not None:
                for n, v in saved.items():
                    if n in st.cells:
                        st.cells[n] = v
                    else:
                        st.pools[n] = v
            if self.method == "emit":
                del st.emitted[mark:]
            raise
        finally:
            clock.disarm(armed)
        st.finished += 1
        return out

    def merge(self, a: Any, b: Any) -> Any:
        if self.merge_fn is None:
            raise PFAError("this document has no 'merge'", path=self.doc.path, where="merge")
        return conform(self._guarded(self.merge_fn, {"tallyOne": a, "tallyTwo": b}, "merge"), self.out_type)
