"""The evaluator: walks a PFA document's expressions once per batch, over all N records at a time.

Every expression evaluates to a `Val` (values.py). Special forms (`let`, `if`, `attr`, `new`, `cell`, …) are
handled here; library functions live in the `lib_*` modules and are looked up in `library.LIBRARY`. `if` and
`cond` with a batched condition evaluate both branches and merge them row by row, so there is no per-record
Python loop anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...errors import PFAError, PFARuntimeError, UnsupportedModelError
from . import types as T
from .clock import tick
from .reader import Document, FcnDef, parse_fcndef
from .values import NumpyBackend, Val


class Scope:
    """Symbols visible at one point: a chain of frames; `set` writes into the frame that defines the name."""

    def __init__(self, frames: list[dict[str, Val]] | None = None) -> None:
        self.frames = frames or [{}]

    def child(self) -> "Scope":
        return Scope(self.frames + [{}])

    def lookup(self, name: str) -> Val | None:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        return None

    def define(self, name: str, val: Val) -> None:
        self.frames[-1][name] = val

    def assign(self, name: str, val: Val) -> bool:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = val
                return True
        return False

    def copy(self) -> "Scope":
        return Scope([dict(f) for f in self.frames])


@dataclass
class Fn:
    """A function value (argument of a library function): user, inline or library function."""

    name: str
    params: tuple[T.AvroType, ...] | None
    ret: T.AvroType | None
    impl: Callable[["Evaluator", list[Any], str], Val]
    body: Any = None  # for inline/user functions: the FcnDef (lets the tree functions recognise idioms)

    def __call__(self, ev: "Evaluator", args: list[Any], where: str) -> Val:
        return self.impl(ev, args, where)


class Evaluator:
    """Evaluates one document over one batch, with a backend (numpy, or the ONNX compiler's)."""

    def __init__(self, doc: Document, backend: Any, persist: dict[Any, Any] | None = None) -> None:
        from .library import LIBRARY

        self.doc = doc
        self.b = backend
        self.np = NumpyBackend()
        self.lib = LIBRARY
        self.cache: dict[Any, Any] = {}  # for this batch
        self.persist = persist if persist is not None else {}  # across batches: flattened trees
        self.guard: Any = None  # rows on which the current branch runs (batched bool) or None for all
        self.call_depth = 0

    # -- errors ----------------------------------------------------------------------------------------------
    def error(self, msg: str, where: str) -> PFAError:
        return PFAError(msg, path=self.doc.path, where=where)

    def unsupported(self, msg: str, where: str) -> UnsupportedModelError:
        return UnsupportedModelError(msg, path=self.doc.path, where=where)

    def runtime_error(self, msg: str, code: int | None, where: str, rows: Any = None) -> None:
        """Raise PFA runtime error `code` if any row on the current path (and in `rows`) hits it."""
        if self.b.name != "numpy":
            return  # a compiled graph has no exceptions: the engine is the reference for runtime errors
        mask = rows
        if self.guard is not None:
            mask = self.guard if mask is None else self.op("and", mask, self.guard)
        if mask is None or bool(np.any(mask)):
            raise PFARuntimeError(msg, code=code, where=where)

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, input_val: Val) -> Val:
        scope = Scope([{"input": input_val}])
        out = self.block(self.doc.action, scope, "action")
        return self.coerce(out, self.doc.output, "output")

    def block(self, exprs: list[Any], scope: Scope, where: str) -> Val:
        result = Val(T.NULL, None, True)
        for i, e in enumerate(exprs):
            tick()  # a routine's clock, where one is armed (the load's trial rows): straight-line code is bounded too
            result = self.eval(e, scope, f"{where}[{i}]")
        return result

    # -- tensors ---------------------------------------------------------------------------------------------
    def dtype_of(self, t: T.AvroType) -> str:
        dt = T.numpy_dtype(t)
        inner = T.nullable_inner(t)
        if inner is not None and T.numpy_dtype(inner) != "str":
            dt = "float64"  # nullable numbers and booleans hold null as NaN
        if dt == "float64" and self.b.float_dtype != "float64":
            return self.b.float_dtype
        return dt

    def const_array(self, v: Val, dtype: str | None = None) -> np.ndarray:
        data = v.data
        elem = v.type
        while isinstance(elem, T.Array):
            elem = elem.items
        dt = dtype or self.dtype_of(elem)
        if data is None:
            return np.array(np.nan)
        return np.asarray(data, dtype=np.str_ if dt == "str" else dt)

    def tensor(self, v: Val, dtype: str | None = None) -> Any:
        """The numpy constant or backend tensor that holds a primitive or array-of-primitives Val."""
        if v.const:
            return self.const_array(v, dtype)
        if isinstance(v.data, (dict, list)):
            if isinstance(v.data, list) and all(isinstance(x, Val) for x in v.data):
                return self.b.stack([self.tensor(x, dtype) for x in v.data], axis=1)
            raise self.unsupported(f"a batched {v.type.describe()} cannot be used as a tensor", "?")
        if dtype is not None:
            return self.b.cast(v.data, dtype)
        return v.data

    def op(self, name: str, *args: Any) -> Any:
        """Apply an elementwise operation to tensors, folding it with numpy when every argument is constant."""
        if all(isinstance(a, (np.ndarray, np.generic, int, float, bool, str)) for a in args):
            return self.np.op(name, *[np.asarray(a) for a in args])
        return self.b.op(name, *args)

    def cast(self, x: Any, dtype: str) -> Any:
        if isinstance(x, (np.ndarray, np.generic)):
            return self.np.cast(x, dtype)
        return self.b.cast(x, dtype)

    def backend_for(self, *xs: Any) -> Any:
        return self.np if all(isinstance(x, (np.ndarray, np.generic)) for x in xs) else self.b

    def result(self, t: T.AvroType, data: Any, *inputs: Val) -> Val:
        """A computed Val: constant when every input it came from is constant."""
        return Val(t, data, all(v.const for v in inputs))

    def apply(self, name: str, t: T.AvroType, *vals: Val, dtype: str | None = None) -> Val:
        """Elementwise operation `name` on Vals, result of type `t` (operands cast to `dtype` if given)."""
        return self.result(t, self.op(name, *[self.tensor(v, dtype) for v in vals]), *vals)

    def num(self, v: Val, where: str, dtype: str | None = None) -> Any:
        if not (T.is_numeric(v.type) or T.nullable_inner(v.type) is not None
                and T.is_numeric(T.nullable_inner(v.type))):
            raise self.error(f"expected a number, found {v.type.describe()}", where)
        return self.tensor(v, dtype)

    # -- evaluation ------------------------------------------------------------------------------------------
    def eval(self, expr: Any, scope: Scope, where: str) -> Val:
        if expr is None:
            return Val(T.NULL, None, True)
        if isinstance(expr, bool):
            return Val(T.BOOLEAN, expr, True)
        if isinstance(expr, int):
            return Val(T.literal_type(expr), expr, True)
        if isinstance(expr, float):
            return Val(T.DOUBLE, expr, True)
        if isinstance(expr, str):
            return self.symbol(expr, scope, where)
        if isinstance(expr, list):
            if len(expr) == 1 and isinstance(expr[0], str):
                return Val(T.STRING, expr[0], True)
            raise self.error("a JSON array is not an expression here (a one-string array is a string literal)",
                             where)
        if not isinstance(expr, dict):
            raise self.error(f"not an expression: {expr!r}", where)
        if "@" in expr:  # a locator mark (source position), allowed in any JSON object of a document
            expr = {k: v for k, v in expr.items() if k != "@"}
        from .special import SPECIAL_FORMS, dispatch

        form = dispatch(expr)
        if form is not None:
            return SPECIAL_FORMS[form](self, expr, scope, where)
        if len(expr) != 1:
            raise self.error(f"an object with keys {sorted(expr)} is neither a special form nor a function call",
                             where)
        (name, args), = expr.items()
        arglist = args if isinstance(args, list) else [args]
        return self.call(name, arglist, scope, f"{where}.{name}")

    def symbol(self, name: str, scope: Scope, where: str) -> Val:
        if "." in name:
            head, *rest = name.split(".")
            base = self.symbol(head, scope, where)
            path = [Val(T.INT, int(p), True) if p.lstrip("-").isdigit() else Val(T.STRING, p, True)
                    for p in rest]
            return self.walk_path(base, path, where)
        v = scope.lookup(name)
        if v is None:
            known = sorted({k for f in scope.frames for k in f})
            raise self.error(f"unknown symbol '{name}'; symbols in scope: {', '.join(known)}", where)
        return v

    def args(self, arglist: list[Any], scope: Scope, where: str) -> list[Any]:
        out = []
        for i, a in enumerate(arglist):
            here = f"{where}[{i}]"
            if isinstance(a, dict) and ("fcn" in a or ("params" in a and "do" in a)):
                out.append(self.function(a, scope, here))
            else:
                out.append(self.eval(a, scope, here))
        return out

    def call(self, name: str, arglist: list[Any], scope: Scope, where: str) -> Val:
        fn = self.lookup_fn(name, where)
        args = self.args(arglist, scope, where)
        try:
            return fn(self, args, where)
        except UnsupportedModelError as exc:
            if exc.where is None:  # raised by a backend: say where in the document
                raise UnsupportedModelError(f"{name}: {exc.message}", path=self.doc.path, where=where) from None
            raise

    def lookup_fn(self, name: str, where: str) -> Fn:
        if name.startswith("u."):
            f = self.doc.fcns.get(name[2:])
            if f is None:
                raise self.error(f"unknown user function '{name}'; defined: "
                                 f"{', '.join('u.' + n for n in self.doc.fcns) or 'none'}", where)
            return self.user_fn(f)
        impl = self.lib.get(name)
        if impl is None:
            import difflib

            close = difflib.get_close_matches(name, list(self.lib), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise self.unsupported(f"function '{name}' is not a PFA library function portable supports{hint}",
                                   where)
        return Fn(name, None, None, impl)

    def user_fn(self, f: FcnDef, closure: Scope | None = None) -> Fn:
        def impl(ev: Evaluator, args: list[Any], where: str) -> Val:
            if len(args) != len(f.params):
                raise ev.error(f"{f.name or 'function'} takes {len(f.params)} argument(s), got {len(args)}", where)
            if ev.call_depth > 50:
                raise ev.unsupported("recursive user functions are not supported", where)
            frame = {}
            for (pname, ptype), a in zip(f.params, args):
                frame[pname] = a if isinstance(a, Fn) else ev.coerce(a, ptype, where)
            # an anonymous function reads the symbols of its enclosing scope (spec: closures, read-only)
            cells = Scope([dict(fr) for fr in closure.frames] + [frame]) if closure is not None else Scope([frame])
            ev.call_depth += 1
            try:
                out = ev.block(f.body, cells, f"{f.where}.do" if f.where else where)
            finally:
                ev.call_depth -= 1
            return ev.coerce(out, f.ret, where)

        return Fn(f.name, tuple(t for _, t in f.params), f.ret, impl, body=f)

    def function(self, spec: dict[str, Any], scope: Scope, where: str) -> Fn:
        """A function argument: `{"fcn": name}` (optionally with `fill`) or an inline definition."""
        if "fcn" in spec:
            fn = self.lookup_fn(spec["fcn"], where)
            if "fill" in spec:
                fill = {k: self.eval(v, scope, f"{where}.fill.{k}") for k, v in spec["fill"].items()}
                base = fn
                if spec["fcn"].startswith("u."):
                    fdef = self.doc.fcns[spec["fcn"][2:]]
                    order = [p for p, _ in fdef.params]

                    def filled(ev: Evaluator, args: list[Any], w: str) -> Val:
                        it = iter(args)
                        full = [fill[p] if p in fill else next(it) for p in order]
                        return base(ev, full, w)

                    return Fn(spec["fcn"], None, None, filled)
                raise self.unsupported("'fill' is supported for user functions only", where)
            return fn
        fdef = parse_fcndef(spec, self.doc.types, where, self.doc.path)
        fdef.where = where
        return self.user_fn(fdef, closure=scope)

    # -- values ----------------------------------------------------------------------------------------------
    def coerce(self, v: Val, t: T.AvroType, where: str) -> Val:
        """Check that `v` can be used as type `t` (with numeric promotion) and convert numbers if needed."""
        if isinstance(v, Fn):
            raise self.error("a function is not a value", where)
        if T.is_numeric(t) and T.is_numeric(v.type) and v.type != t:
            if T.NUMERIC_RANK[v.type.name] > T.NUMERIC_RANK[t.name]:
                raise self.error(f"expected {t.describe()}, found {v.type.describe()} (no implicit narrowing)",
                                 where)
            dt = self.dtype_of(t)
            if v.const:
                return Val(t, float(v.data) if dt.startswith("float") else v.data, True)
            return Val(t, self.tensor(v, dt), False, v.origin)
        if isinstance(t, T.Union) and not isinstance(v.type, T.Union):
            inner = T.nullable_inner(t)
            if inner is not None and T.is_numeric(inner) and T.is_numeric(v.type):
                if v.const:
                    return Val(t, v.data, True)
                return Val(t, self.tensor(v, self.dtype_of(t)), False)
            return Val(t, v.data, v.const, v.origin)
        if isinstance(t, T.Array) and isinstance(v.type, T.Array) and T.is_numeric(t.items) \
                and T.is_numeric(v.type.items) and t.items != v.type.items:
            if v.const:
                return Val(t, v.data, True)
            return Val(t, self.tensor(v, self.dtype_of(t.items)), False, v.origin)
        return v

    def walk_path(self, base: Val, path: list[Val], where: str) -> Val:
        v = base
        for i, key in enumerate(path):
            here = f"{where}.path[{i}]"
            t = v.type
            inner = T.nullable_inner(t)
            if inner is not None and not isinstance(inner, T.Prim):
                t = inner
            if isinstance(t, T.Record):
                if not key.const or not isinstance(key.data, str):
                    raise self.error("a record field name must be a literal string", here)
                if key.data not in t.fields:
                    raise self.error(f"record {t.name} has no field '{key.data}'; fields: {', '.join(t.fields)}",
                                     here)
                ft = t.fields[key.data]
                v = Val(ft, v.data[key.data], True) if v.const else v.data[key.data]
            elif isinstance(t, T.Map):
                if not key.const:
                    raise self.unsupported("a map key computed per record is not supported", here)
                if v.const:
                    if key.data not in v.data:
                        raise PFARuntimeError(f"key '{key.data}' not found in map", code=2001, where=here)
                    v = Val(t.values, v.data[key.data], True)
                else:
                    if key.data not in v.data:
                        raise PFARuntimeError(f"key '{key.data}' not found in map", code=2001, where=here)
                    v = v.data[key.data]
            elif isinstance(t, T.Array):
                if not T.is_integer(key.type):
                    raise self.error(f"an array index must be an int, found {key.type.describe()}", here)
                v = self.index(v, key, here)
            else:
                raise self.error(f"cannot index into a {t.describe()}", here)
        return v

    def index(self, arr: Val, key: Val, where: str) -> Val:
        t = arr.type
        assert isinstance(t, T.Array)
        if key.const:
            k = int(key.data)
            if arr.const:
                n = len(arr.data)
                if not -n <= k < n or k < 0:
                    raise PFARuntimeError(f"index {k} out of range (array of length {n})", code=2000,
                                          where=where)
                return Val(t.items, arr.data[k], True)
            if isinstance(arr.data, list):
                return arr.data[k]
            return Val(t.items, self.b.take(arr.data, k, axis=1), False)
        idx = key.data
        if arr.const:
            table = self.const_array(arr) if _is_tensorish(t.items) else None
            if table is None:
                return self.gather_records(arr, key, where)
            if self.b.name == "numpy":
                n = len(table)
                bad = (idx < 0) | (idx >= n)
                self.runtime_error(f"index out of range (array of length {n})", 2000, where, bad)
            return Val(t.items, self.b.gather(table, idx), False)
        return Val(t.items, self.b.take_along(self.tensor(arr), idx), False)

    def gather_records(self, arr: Val, key: Val, where: str) -> Val:
        """A constant array of records indexed per row: one batched Val per field."""
        rt = arr.type.items
        if not isinstance(rt, T.Record):
            raise self.unsupported(f"indexing a constant {arr.type.describe()} per record is not supported",
                                   where)
        fields = {}
        for fname, ftype in rt.fields.items():
            col = Val(T.Array(ftype), [r[fname] for r in arr.data], True)
            fields[fname] = self.index(col, key, where)
        return Val(rt, fields, False)

    def broadcast(self, v: Val) -> Val:
        """A constant made into a batch (for outputs that do not depend on the input)."""
        if not v.const:
            return v
        t = v.type
        if isinstance(t, T.Record):
            return Val(t, {k: self.broadcast(Val(ft, v.data[k], True)) for k, ft in t.fields.items()}, False)
        elem = t
        while isinstance(elem, T.Array):
            elem = elem.items
        return Val(t, self.b.broadcast(self.const_array(v), self.dtype_of(elem)), False)

    def merge(self, cond: Any, a: Val, b: Val, where: str) -> Val:
        """Row-wise choice between two values of the same type (both branches of a batched `if`)."""
        if isinstance(a.type, T.Record) and isinstance(b.type, T.Record):
            ad = a.data if not a.const else {k: Val(ft, a.data[k], True) for k, ft in a.type.fields.items()}
            bd = b.data if not b.const else {k: Val(ft, b.data[k], True) for k, ft in b.type.fields.items()}
            return Val(a.type, {k: self.merge(cond, ad[k], bd[k], where) for k in ad}, False)
        if a.origin == "error":  # rows that reach an `error` form raised already (engine) or take the other side
            return b
        if b.origin == "error":
            return a
        t = unify(a.type, b.type)
        if t is None:
            raise self.unsupported(f"branches of types {a.type.describe()} and {b.type.describe()} cannot be "
                                   "merged row by row", where)
        if isinstance(t, T.Prim) and t.name == "null":
            return Val(T.NULL, None, True)
        depth, elem = 0, t
        while isinstance(elem, T.Array):
            elem, depth = elem.items, depth + 1
        dt = self.dtype_of(t if T.nullable_inner(t) is not None else elem)
        x = self.tensor(a, dt) if a.data is not None else np.array(np.nan)
        y = self.tensor(b, dt) if b.data is not None else np.array(np.nan)
        c = cond
        for _ in range(depth):  # a row's condition covers every element of its array
            c = self.backend_for(c).unsqueeze(c, -1)
        return Val(t, self.op("where", c, x, y), False)


def unify(a: T.AvroType, b: T.AvroType) -> T.AvroType | None:
    """The type both branches of a conditional share (numeric promotion, null makes a nullable number)."""
    if a == b:
        return a
    if T.is_numeric(a) and T.is_numeric(b):
        return T.wider(a, b)
    if isinstance(a, T.Prim) and a.name == "null" and isinstance(b, T.Prim):
        return T.Union((b, T.NULL))
    if isinstance(b, T.Prim) and b.name == "null" and isinstance(a, T.Prim):
        return T.Union((a, T.NULL))
    if T.is_stringlike(a) and T.is_stringlike(b):
        return T.STRING
    if isinstance(a, T.Array) and isinstance(b, T.Array):
        inner = unify(a.items, b.items)
        return T.Array(inner) if inner is not None else None
    if isinstance(a, T.Union) and T.nullable_inner(a) is not None:
        return a if unify(T.nullable_inner(a), b) is not None or (isinstance(b, T.Prim) and b.name == "null") \
            else None
    if isinstance(b, T.Union):
        return unify(b, a)
    return None


def _is_tensorish(t: T.AvroType) -> bool:
    while isinstance(t, T.Array):
        t = t.items
    return isinstance(t, (T.Prim, T.Enum)) or T.nullable_inner(t) is not None
