"""Builders for the conformance table: PFA expressions for typed literals and functions, and the evaluator."""
from __future__ import annotations

import base64
import itertools
import math
from typing import Any

_names = itertools.count()

ARR = {"type": "array", "items": "double"}


def D(x: float) -> dict:
    return {"double": x}


def F(x: float) -> dict:
    return {"float": x}


def L(x: int) -> dict:
    return {"long": x}


def S(s: str) -> dict:
    return {"string": s}


def B(b: bytes) -> dict:
    return {"base64": base64.b64encode(b).decode()}


def T(t: Any, value: Any) -> dict:
    return {"type": t, "value": value}


def A(items: list, t: Any = "double") -> dict:
    return {"type": {"type": "array", "items": t}, "value": items}


def AA(rows: list, t: Any = "double") -> dict:
    return A(rows, {"type": "array", "items": t})


def M(d: dict, t: Any = "double") -> dict:
    return {"type": {"type": "map", "values": t}, "value": d}


def MM(d: dict) -> dict:
    return M(d, {"type": "map", "values": "double"})


def rtype(fields: dict, name: str | None = None) -> dict:
    return {"type": "record", "name": name or f"R{next(_names)}",
            "fields": [{"name": k, "type": t} for k, t in fields.items()]}


def REC(fields: dict, value: dict) -> dict:
    return {"type": rtype(fields), "value": value}


def ARECS(fields: dict, values: list) -> dict:
    return {"type": {"type": "array", "items": rtype(fields)}, "value": values}


def FN(params: list, ret: Any, body: Any) -> dict:
    return {"params": [{p: t} for p, t in params], "ret": ret, "do": body}


def REF(name: str, **fill: Any) -> dict:
    return {"fcn": name, **({"fill": fill} if fill else {})}


LT = FN([("a", "double"), ("b", "double")], "boolean", {"<": ["a", "b"]})
ABSDIFF = REF("metric.absDiff")


class Err:
    """Expected runtime error with the spec's code."""

    def __init__(self, code: int | None) -> None:
        self.code = code

    def __repr__(self) -> str:
        return f"Err({self.code})"


class Approx:
    def __init__(self, value: Any, rel: float = 1e-12, abs_: float = 0.0) -> None:
        self.value, self.rel, self.abs = value, rel, abs_


def evaluate(expr: Any, **doc: Any) -> Any:
    from portable.formats.pfa.reader import parse
    from portable.formats.pfa.rows import RowEngine

    d = {"input": "null", "output": "null", "action": [expr]}
    d.update(doc)
    return RowEngine(parse(d), seed=doc.pop("seed", None) if "seed" in doc else None).action_one(None)


def same(got: Any, want: Any, rel: float = 1e-12, abs_: float = 0.0) -> bool:
    if isinstance(want, Approx):
        return same(got, want.value, want.rel, want.abs)
    if isinstance(want, float) or isinstance(got, float) and isinstance(want, int) and not isinstance(want, bool):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return False
        if math.isnan(want):
            return math.isnan(got)
        if math.isinf(want):
            return got == want
        return abs(got - want) <= max(rel * abs(want), abs_, 1e-300)
    if isinstance(want, (list, tuple)):
        return isinstance(got, list) and len(got) == len(want) and all(same(g, w, rel, abs_) for g, w in zip(got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(same(got[k], want[k], rel, abs_) for k in want)
    return type(got) is type(want) and got == want


class Check:
    """Expected: a property of the result (for pseudorandom functions), described in words."""

    def __init__(self, what: str, test: Any) -> None:
        self.what, self.test = what, test

    def __repr__(self) -> str:
        return f"Check({self.what})"
