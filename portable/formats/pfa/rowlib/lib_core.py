"""Core library: arithmetic (with int/long overflow by static type), comparison, logic, Kleene logic, bitwise."""
from __future__ import annotations

import math
import operator
from typing import Any

from ..rows import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, compare, f32
from . import err, factory, fn, num_kind


def _bounded(kind: str | None, code: int) -> Any:
    """A function that checks/rounds an arithmetic result for static type `kind`."""
    if kind == "int":
        def chk(r: Any) -> Any:
            if INT_MIN <= r <= INT_MAX:
                return r
            raise err("int overflow", code)
    elif kind == "long":
        def chk(r: Any) -> Any:
            if LONG_MIN <= r <= LONG_MAX:
                return r
            raise err("long overflow", code + 1)
    elif kind == "float":
        chk = f32
    elif kind == "double":
        def chk(r: Any) -> Any:
            return float(r)
    else:
        def chk(r: Any) -> Any:
            if isinstance(r, int) and not LONG_MIN <= r <= LONG_MAX:
                raise err("long overflow", code + 1)
            return r
    return chk


def _arith(sym: str, code: int, op: Any, fast: Any) -> None:
    @factory(sym)
    def make(b: Any) -> Any:
        kind = num_kind(b.rt)
        if kind == "double" and num_kind(b.t(0)) == "double" and num_kind(b.t(1)) == "double":
            return fast  # float op float is a float (inf on overflow, never an exception)
        if kind == "double":
            def dbl(x: Any, y: Any) -> Any:
                try:
                    return float(op(x, y))
                except OverflowError:
                    return math.inf
            return dbl
        chk = _bounded(kind, code)

        def run(x: Any, y: Any) -> Any:
            return chk(op(x, y))
        return run


_arith("+", 18000, lambda x, y: x + y, operator.add)
_arith("-", 18010, lambda x, y: x - y, operator.sub)
_arith("*", 18020, lambda x, y: x * y, operator.mul)


def fdiv(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        x = float(x)
        if math.isnan(x) or x == 0:
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, float(y))


@fn("/")
def divide(x: Any, y: Any) -> float:
    try:
        return float(x) / float(y)
    except ZeroDivisionError:
        return fdiv(float(x), float(y))
    except OverflowError:
        return float(x / y)


@factory("//")
def floordiv(b: Any) -> Any:
    chk = _bounded(num_kind(b.rt), 18040)

    def run(x: int, y: int) -> int:
        if y == 0:
            raise err("integer division by zero", 18040)
        return chk(x // y) if num_kind(b.rt) != "int" else _int_or_overflow(x // y)
    return run


def _int_or_overflow(r: int) -> int:
    if INT_MIN <= r <= INT_MAX:
        return r
    raise err("int overflow", 18040)


@factory("u-")
def negate(b: Any) -> Any:
    kind = num_kind(b.rt)
    if kind in ("int", "long"):
        low, code = (INT_MIN, 18050) if kind == "int" else (LONG_MIN, 18051)

        def neg(x: int) -> int:
            if x == low:
                raise err(f"{kind} overflow", code)
            return -x
        return neg
    return lambda x: -x


@factory("%")
def modulo(b: Any) -> Any:
    kind = num_kind(b.rt)

    def run(k: Any, n: Any) -> Any:
        if isinstance(k, int) and isinstance(n, int) and kind not in ("float", "double"):
            if n == 0:
                raise err("integer division by zero", 18060)
            return k % n
        k, n = float(k), float(n)
        if n == 0 or math.isinf(k) or math.isnan(k) or math.isnan(n):
            return math.nan
        if math.isinf(n):
            return k if (k >= 0) == (n > 0) or k == 0 else n
        r = math.fmod(k, n)
        if r != 0 and (r < 0) != (n < 0):
            r += n
        return f32(r) if kind == "float" else r
    return run


@factory("%%")
def remainder(b: Any) -> Any:
    kind = num_kind(b.rt)

    def run(k: Any, n: Any) -> Any:
        if isinstance(k, int) and isinstance(n, int) and kind not in ("float", "double"):
            if n == 0:
                raise err("integer division by zero", 18070)
            r = abs(k) % abs(n)
            return -r if k < 0 else r
        k, n = float(k), float(n)
        if n == 0 or math.isinf(k) or math.isnan(k) or math.isnan(n):
            return math.nan
        r = math.fmod(k, n)
        return f32(r) if kind == "float" else r
    return run


@factory("**")
def power(b: Any) -> Any:
    kind = num_kind(b.rt)
    chk = _bounded(kind, 18080)

    def run(x: Any, y: Any) -> Any:
        if kind in ("int", "long") or (kind is None and isinstance(x, int) and isinstance(y, int)):
            if y < 0:
                if x in (1, -1):
                    return x ** (-y % 2 + 0) if x == -1 else 1
                if x == 0:
                    raise err("int overflow" if kind == "int" else "long overflow", 18080 if kind == "int"
                              else 18081)
                return 0
            if abs(x) > 1 and y > 64:
                raise err("int overflow" if kind == "int" else "long overflow", 18080 if kind == "int" else 18081)
            return chk(x ** y)
        try:
            r = math.pow(float(x), float(y))
        except OverflowError:
            r = math.inf if x > 0 or float(y) % 2 == 0 else -math.inf
        except ValueError:
            r = math.nan
        return f32(r) if kind == "float" else r
    return run


# -- comparison ---------------------------------------------------------------------------------------------
def _is_plain(t: Any) -> bool:
    from .. import types as T

    return isinstance(t, T.Prim) and t.name not in ("null",)


def _cmp_factory(sym: str, test: Any, plain: Any) -> None:
    @factory(sym)
    def make(b: Any) -> Any:
        t0, t1 = b.t(0), b.t(1)
        if _is_plain(t0) and _is_plain(t1):
            return plain
        t = t0 if t0 is not None else t1

        def run(x: Any, y: Any) -> bool:
            return test(compare(x, y, t))
        return run


_cmp_factory("==", lambda c: c == 0, lambda x, y: x == y)
_cmp_factory("!=", lambda c: c != 0, lambda x, y: x != y)
_cmp_factory("<", lambda c: c < 0, lambda x, y: x < y)
_cmp_factory("<=", lambda c: c <= 0, lambda x, y: x <= y)
_cmp_factory(">", lambda c: c > 0, lambda x, y: x > y)
_cmp_factory(">=", lambda c: c >= 0, lambda x, y: x >= y)


@factory("cmp")
def cmp_(b: Any) -> Any:
    t = b.t(0)
    return lambda x, y: compare(x, y, t)


@factory("max")
def max_(b: Any) -> Any:
    t = b.t(0)
    kind = num_kind(b.rt)

    def run(x: Any, y: Any) -> Any:
        if isinstance(x, float) and math.isnan(x) or isinstance(y, float) and math.isnan(y):
            return math.nan
        r = x if compare(x, y, t) >= 0 else y
        return float(r) if kind in ("float", "double") else r
    return run


@factory("min")
def min_(b: Any) -> Any:
    t = b.t(0)
    kind = num_kind(b.rt)

    def run(x: Any, y: Any) -> Any:
        if isinstance(x, float) and math.isnan(x) or isinstance(y, float) and math.isnan(y):
            return math.nan
        r = x if compare(x, y, t) <= 0 else y
        return float(r) if kind in ("float", "double") else r
    return run


# -- logic (&&, || and the Kleene forms short-circuit: compiled specially in rows.Compiler.call) ------------
fn("&&")(lambda x, y: x and y)
fn("||")(lambda x, y: x or y)
fn("^^")(lambda x, y: x != y)
fn("!")(lambda x: not x)


@fn("&&&")
def kleene_and(x: Any, y: Any) -> Any:
    if x is False or y is False:
        return False
    if x is True and y is True:
        return True
    return None


@fn("|||")
def kleene_or(x: Any, y: Any) -> Any:
    if x is True or y is True:
        return True
    if x is False and y is False:
        return False
    return None


@fn("!!!")
def kleene_not(x: Any) -> Any:
    return None if x is None else not x


def _wrap(kind: str | None, r: int) -> int:
    if kind == "int":
        r &= 0xFFFFFFFF
        return r - (1 << 32) if r >= 1 << 31 else r
    r &= 0xFFFFFFFFFFFFFFFF
    return r - (1 << 64) if r >= 1 << 63 else r


def _bit(sym: str, op: Any) -> None:
    @factory(sym)
    def make(b: Any) -> Any:
        kind = num_kind(b.rt)
        return lambda x, y: _wrap(kind, op(x, y))


_bit("&", lambda x, y: x & y)
_bit("|", lambda x, y: x | y)
_bit("^", lambda x, y: x ^ y)


@factory("~")
def bitnot(b: Any) -> Any:
    kind = num_kind(b.rt)
    return lambda x: _wrap(kind, ~x)
