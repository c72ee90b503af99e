"""Core library: arithmetic, comparison, logic and bitwise operators."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import types as T
from .library import arity, pfa_function
from .values import Val

_ARITH = {"+": ("add", 18000), "-": ("sub", 18010), "*": ("mul", 18020)}
_INT_BOUNDS = {"int": (-2**31, 2**31 - 1)}


def numeric_pair(ev: Any, args: list[Val], name: str, where: str) -> tuple[Val, Val, T.AvroType]:
    arity(ev, args, 2, name, where)
    a, b = args
    for i, v in enumerate(args):
        if isinstance(v, Val) and not T.is_numeric(v.type):
            raise ev.error(f"{name} needs numbers; argument {i} is {v.type.describe()}", f"{where}[{i}]")
    return a, b, T.wider(a.type, b.type)


def _check_int(ev: Any, out: Any, t: T.AvroType, code: int, where: str, exact: Any = None) -> None:
    """PFA ints are 32-bit and longs 64-bit: results outside their range are runtime errors `code` / `code+1`.

    `exact` is the result computed in float64 (numpy's int64 arithmetic wraps silently)."""
    if ev.b.name != "numpy":
        return
    if t.name == "int":
        lo, hi = _INT_BOUNDS["int"]
        arr = np.asarray(out)
        ev.runtime_error("int overflow", code, where, (arr < lo) | (arr > hi))
    elif exact is not None:
        ev.runtime_error("long overflow", code + 1, where, np.abs(np.asarray(exact)) >= 2.0**63)


def _long_overflow(opname: str, a: Any, b: Any, r: Any) -> Any:
    """Rows where the int64 result `r` of `a op b` wrapped around (exact: no float rounding at the limits)."""
    a, b, r = (np.asarray(v, dtype=np.int64) for v in (a, b, r))
    with np.errstate(all="ignore"):
        if opname == "add":
            return ((a ^ r) & (b ^ r)) < 0
        if opname == "sub":
            return ((a ^ b) & (a ^ r)) < 0
        lowest = np.int64(-2**63)
        safe_a = np.where(a == 0, 1, a)
        wrong = (a != 0) & (r // safe_a != b)
        return wrong | ((a == -1) & (b == lowest)) | ((b == -1) & (a == lowest))


def _arith(sym: str) -> Any:
    opname, code = _ARITH[sym]

    def impl(ev: Any, args: list[Val], where: str) -> Val:
        a, b, t = numeric_pair(ev, args, sym, where)
        out = ev.apply(opname, t, a, b, dtype=ev.dtype_of(t))
        if T.is_integer(t) and ev.b.name == "numpy":
            if t.name == "long":
                bad = _long_overflow(opname, ev.tensor(a, "int64"), ev.tensor(b, "int64"), out.data)
                ev.runtime_error("long overflow", code + 1, where, bad)
            else:
                _check_int(ev, out.data, t, code, where)
        return out
    return impl


for _s in _ARITH:
    pfa_function(_s)(_arith(_s))


@pfa_function("/")
def divide(ev: Any, args: list[Val], where: str) -> Val:
    a, b, _ = numeric_pair(ev, args, "/", where)
    dt = ev.dtype_of(T.DOUBLE)
    return ev.apply("div", T.DOUBLE, a, b, dtype=dt)


@pfa_function("//")
def floordiv(ev: Any, args: list[Val], where: str) -> Val:
    a, b, t = numeric_pair(ev, args, "//", where)
    if not T.is_integer(t):
        raise ev.error("// is integer division: both arguments must be int or long", where)
    y = ev.tensor(b, "int64")
    if ev.b.name == "numpy":
        ev.runtime_error("integer division by zero", 18040, where, ev.op("eq", y, np.asarray(0)))
    return ev.apply("floordiv", t, a, b, dtype="int64")


@pfa_function("u-")
def negate(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "u-", where)
    v = args[0]
    if T.is_integer(v.type) and ev.b.name == "numpy":
        lowest = -2**31 if v.type.name == "int" else -2**63
        ev.runtime_error(f"{v.type.name} overflow", 18050 if v.type.name == "int" else 18051, where,
                         np.asarray(ev.tensor(v)) == lowest)
    return ev.apply("neg", v.type, v)


@pfa_function("%")
def modulo(ev: Any, args: list[Val], where: str) -> Val:
    a, b, t = numeric_pair(ev, args, "%", where)
    if T.is_integer(t) and ev.b.name == "numpy":
        ev.runtime_error("integer division by zero", 18060, where, ev.op("eq", ev.tensor(b), np.asarray(0)))
    return ev.apply("mod", t, a, b, dtype=ev.dtype_of(t))


@pfa_function("%%")
def remainder(ev: Any, args: list[Val], where: str) -> Val:
    a, b, t = numeric_pair(ev, args, "%%", where)
    if T.is_integer(t) and ev.b.name == "numpy":
        ev.runtime_error("integer division by zero", 18070, where, ev.op("eq", ev.tensor(b), np.asarray(0)))
    return ev.apply("rem", t, a, b, dtype=ev.dtype_of(t))


@pfa_function("**")
def power(ev: Any, args: list[Val], where: str) -> Val:
    a, b, t = numeric_pair(ev, args, "**", where)
    if T.is_integer(t):
        exact = ev.op("pow", ev.tensor(a, "float64"), ev.tensor(b, "float64"))
        _check_int(ev, exact, t, 18080, where, exact)
        if ev.b.name == "numpy" and bool(np.all(np.asarray(ev.tensor(b)) >= 0)):
            return ev.apply("pow", t, a, b, dtype="int64")  # exact integer powers
        return Val(t, ev.cast(ev.op("floor", exact), "int64"), a.const and b.const)
    return ev.apply("pow", t, a, b, dtype=ev.dtype_of(t))


# -- comparison -------------------------------------------------------------------------------------------------
def compare_operands(ev: Any, args: list[Val], name: str, where: str) -> tuple[Any, Any, list[Val]]:
    arity(ev, args, 2, name, where)
    a, b = args
    if T.is_numeric(a.type) and T.is_numeric(b.type):
        dt = ev.dtype_of(T.wider(a.type, b.type))
        return ev.tensor(a, dt), ev.tensor(b, dt), [a, b]
    if T.is_stringlike(a.type) and T.is_stringlike(b.type):
        return ev.tensor(a, "str"), ev.tensor(b, "str"), [a, b]
    if a.type == T.BOOLEAN and b.type == T.BOOLEAN:
        return ev.tensor(a, "bool"), ev.tensor(b, "bool"), [a, b]
    if a.const and b.const and name in ("==", "!="):
        return np.asarray(a.data == b.data), np.asarray(True), [a, b]
    raise ev.unsupported(f"{name} between {a.type.describe()} and {b.type.describe()} is not supported "
                         "per record", where)


def _cmp(sym: str, opname: str) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        x, y, vals = compare_operands(ev, args, sym, where)
        return ev.result(T.BOOLEAN, ev.op(opname, x, y), *vals)
    return impl


for _s, _o in (("==", "eq"), ("!=", "ne"), ("<", "lt"), ("<=", "le"), (">", "gt"), (">=", "ge")):
    pfa_function(_s)(_cmp(_s, _o))


@pfa_function("cmp")
def cmp(ev: Any, args: list[Val], where: str) -> Val:
    x, y, vals = compare_operands(ev, args, "cmp", where)
    gt = ev.cast(ev.op("gt", x, y), "int64")
    lt = ev.cast(ev.op("lt", x, y), "int64")
    return ev.result(T.INT, ev.op("sub", gt, lt), *vals)


def _minmax(name: str, opname: str) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        a, b, t = numeric_pair(ev, args, name, where)
        return ev.apply(opname, t, a, b, dtype=ev.dtype_of(t))
    return impl


pfa_function("max")(_minmax("max", "maximum"))
pfa_function("min")(_minmax("min", "minimum"))


# -- logic -------------------------------------------------------------------------------------------------------
def _bools(ev: Any, args: list[Val], name: str, n: int, where: str) -> list[Val]:
    arity(ev, args, n, name, where)
    for i, v in enumerate(args):
        if v.type != T.BOOLEAN:
            raise ev.error(f"{name} needs booleans; argument {i} is {v.type.describe()}", f"{where}[{i}]")
    return args


def _logic(sym: str, opname: str) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        a, b = _bools(ev, args, sym, 2, where)
        return ev.apply(opname, T.BOOLEAN, a, b, dtype="bool")
    return impl


for _s, _o in (("&&", "and"), ("||", "or"), ("^^", "xor")):
    pfa_function(_s)(_logic(_s, _o))


@pfa_function("!")
def logical_not(ev: Any, args: list[Val], where: str) -> Val:
    a, = _bools(ev, args, "!", 1, where)
    return ev.apply("not", T.BOOLEAN, a, dtype="bool")


def _bitwise(sym: str, opname: str) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        a, b, t = numeric_pair(ev, args, sym, where)
        if not T.is_integer(t):
            raise ev.error(f"{sym} is bitwise: arguments must be int or long", where)
        return ev.apply(opname, t, a, b, dtype="int64")
    return impl


for _s, _o in (("&", "bitand"), ("|", "bitor"), ("^", "bitxor")):
    pfa_function(_s)(_bitwise(_s, _o))


@pfa_function("~")
def bitnot(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "~", where)
    return ev.apply("bitnot", args[0].type, args[0], dtype="int64")


__all__ = ["compare_operands", "numeric_pair"]
