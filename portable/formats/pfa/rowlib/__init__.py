"""The PFA library over plain Python values, one record at a time (the row-by-row tier, rows.py).

Each family lives in its own `lib_*.py` module and registers its functions here:

    @fn("s.len")                      plain: called with the argument values
    def s_len(s): return len(s)

    @factory("m.abs")                 specialised when compiled: `make(b)` gets a `Binding` (argument types
    def m_abs(b): ...                 b.ts, return type b.rt, engine state b.st) and returns the callable

`ROWLIB` is the one inventory (name -> Entry); `coverage()` compares it with the spec's 449 functions.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .. import sigs
from .. import types as T
from ..rows import PFAErr


class Binding:
    def __init__(self, comp: Any, ts: list[Any] | None, rt: Any, where: str) -> None:
        self.comp = comp
        self.ts = ts or []
        self.rt = rt
        self.where = where
        self.st = comp.st if comp is not None else None

    def t(self, i: int) -> Any:
        return self.ts[i] if i < len(self.ts) else None


class Entry:
    def __init__(self, name: str, impl: Callable[..., Any], kind: str, ret: Any = None) -> None:
        self.name = name
        self.impl = impl
        self.kind = kind
        self.ret = ret  # optional override: argtypes -> return type
        ar = sigs.arities(name)
        self.arity = ar or None

    def bind(self, comp: Any, ts: list[Any] | None, where: str, rt: Any = None) -> Callable[..., Any]:
        if self.kind == "plain":
            return self.impl
        return self.impl(Binding(comp, ts, rt, where))


ROWLIB: dict[str, Entry] = {}


def fn(*names: str, ret: Any = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            ROWLIB[n] = Entry(n, f, "plain", ret)
        return f
    return deco


def factory(*names: str, ret: Any = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            ROWLIB[n] = Entry(n, f, "factory", ret)
        return f
    return deco


def err(message: str, code: int | None = None) -> PFAErr:
    return PFAErr(message, code)


def sized(n: int, what: str) -> None:
    """Refuse to build a string, bytes or array of more than `max_pfa_value_items` items (characters, bytes,
    elements): one call (`s.repeat(s, 2**31)`, `a.combinations`) or a loop that doubles a value reaches gigabytes
    before the routine's timeout is next read."""
    from ....limits import LIMITS, LimitError

    if n > LIMITS.max_pfa_value_items:
        raise LimitError(f"{what} would hold {n:,} items", "max_pfa_value_items")


def is_int_type(t: Any) -> bool:
    return isinstance(t, T.Prim) and t.name in ("int", "long")


def num_kind(t: Any) -> str | None:
    """'int', 'long', 'float', 'double' for a static numeric type, else None."""
    return t.name if isinstance(t, T.Prim) and t.name in T.NUMERIC_RANK else None


def safe(f: Callable[[float], float]) -> Callable[[float], float]:
    """A math function with IEEE results instead of Python's ValueError/OverflowError."""
    def g(x: float) -> float:
        try:
            return f(x)
        except (ValueError, ZeroDivisionError):
            return math.nan
        except OverflowError:
            return math.inf
    return g


def coverage() -> tuple[int, int, list[str]]:
    """(implemented, in the spec, names not implemented) over libfcns.xml."""
    spec = sigs.table()
    missing = sorted(n for n in spec if n not in ROWLIB)
    return len(spec) - len(missing), len(spec), missing


from . import (lib_core, lib_math, lib_string, lib_regex, lib_cast, lib_array, lib_map, lib_la,  # noqa: E402,F401
               lib_stat, lib_prob, lib_model, lib_metric, lib_rand, lib_time, lib_misc)
