"""Math library: `m.*`, link functions `m.link.*` (and their old names `model.reg.norm.*`), kernels
`m.kernel.*`."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import types as T
from .library import arity, pfa_function
from .values import Val


def _double_arg(ev: Any, v: Val, name: str, where: str) -> Any:
    if not T.is_numeric(v.type):
        raise ev.error(f"{name} needs a number, found {v.type.describe()}", where)
    return ev.tensor(v, ev.dtype_of(T.DOUBLE))


def _unary(name: str, opname: str) -> Callable[..., Val]:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 1, name, where)
        return ev.result(T.DOUBLE, ev.op(opname, _double_arg(ev, args[0], name, where)), args[0])
    return impl


for _n, _o in (("m.acos", "acos"), ("m.asin", "asin"), ("m.atan", "atan"), ("m.cos", "cos"), ("m.cosh", "cosh"),
               ("m.exp", "exp"), ("m.expm1", "expm1"), ("m.ln", "log"), ("m.log10", "log10"),
               ("m.ln1p", "log1p"), ("m.sin", "sin"), ("m.sinh", "sinh"), ("m.sqrt", "sqrt"), ("m.tan", "tan"),
               ("m.tanh", "tanh"), ("m.rint", "rint"), ("m.special.erf", "erf")):
    pfa_function(_n)(_unary(_n, _o))


def _binary(name: str, opname: str) -> Callable[..., Val]:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 2, name, where)
        x, y = (_double_arg(ev, a, name, f"{where}[{i}]") for i, a in enumerate(args))
        return ev.result(T.DOUBLE, ev.op(opname, x, y), *args)
    return impl


for _n, _o in (("m.atan2", "atan2"), ("m.hypot", "hypot")):
    pfa_function(_n)(_binary(_n, _o))


@pfa_function("m.copysign")
def copysign(ev: Any, args: list[Val], where: str) -> Val:
    """mag with the sign of sign; ints stay ints (A -> A in the spec)."""
    arity(ev, args, 2, "m.copysign", where)
    a, b = args
    if T.is_integer(a.type) and T.is_integer(b.type):
        t = T.wider(a.type, b.type)
        m = ev.op("abs", ev.tensor(a, "int64"))
        neg = ev.op("lt", ev.tensor(b, "int64"), np.asarray(0, dtype="int64"))
        return ev.result(t, ev.op("where", neg, ev.op("neg", m), m), a, b)
    return _binary("m.copysign", "copysign")(ev, args, where)


@pfa_function("m.pi")
def pi(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 0, "m.pi", where)
    return Val(T.DOUBLE, math.pi, True)


@pfa_function("m.e")
def e(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 0, "m.e", where)
    return Val(T.DOUBLE, math.e, True)


@pfa_function("m.log")
def log_base(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "m.log", where)
    x = _double_arg(ev, args[0], "m.log", where)
    if not T.is_integer(args[1].type):
        raise ev.error(f"m.log's base is an int, found {args[1].type.describe()}", f"{where}[1]")
    if ev.b.name == "numpy":
        ev.runtime_error("base must be positive", 27170, where,
                         np.asarray(ev.tensor(args[1], "int64")) <= 0)
    base = _double_arg(ev, args[1], "m.log", where)
    return ev.result(T.DOUBLE, ev.op("div", ev.op("log", x), ev.op("log", base)), *args)


@pfa_function("m.abs")
def absolute(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "m.abs", where)
    v = args[0]
    if not T.is_numeric(v.type):
        raise ev.error(f"m.abs needs a number, found {v.type.describe()}", where)
    if T.is_integer(v.type) and ev.b.name == "numpy":
        lowest, code = (-2**31, 27020) if v.type.name == "int" else (-2**63, 27021)
        ev.runtime_error(f"{v.type.name} overflow", code, where, np.asarray(ev.tensor(v)) == lowest)
    return ev.apply("abs", v.type, v)


def _rounding(name: str, opname: str) -> Callable[..., Val]:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 1, name, where)
        return ev.result(T.DOUBLE, ev.op(opname, _double_arg(ev, args[0], name, where)), args[0])
    return impl


pfa_function("m.floor")(_rounding("m.floor", "floor"))
pfa_function("m.ceil")(_rounding("m.ceil", "ceil"))


@pfa_function("m.round")
def round_half_up(ev: Any, args: list[Val], where: str) -> Val:
    """The spec's m.round: floor(x + 0.5), an int for a float and a long for a double."""
    arity(ev, args, 1, "m.round", where)
    v = args[0]
    x = _double_arg(ev, v, "m.round", where)
    r = ev.op("floor", ev.op("add", x, np.asarray(0.5, dtype=ev.dtype_of(T.DOUBLE))))
    t = T.INT if v.type == T.FLOAT else T.LONG
    if ev.b.name == "numpy":
        lo, hi = (-2**31, 2**31 - 1) if t == T.INT else (-2.0**63, 2.0**63)
        bad = ~np.isfinite(r) | (r < lo) | (r > hi) if t == T.INT else ~np.isfinite(r) | (r < lo) | (r >= hi)
        ev.runtime_error(f"{t.name} overflow", 27190 if t == T.INT else 27191, where, bad)
    return ev.result(t, ev.cast(r, "int64"), v)


@pfa_function("m.signum")
def signum(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "m.signum", where)
    v = args[0]
    x = _double_arg(ev, v, "m.signum", where)
    return ev.result(T.INT, ev.cast(ev.op("sign", x), "int64"), v)


# -- link functions --------------------------------------------------------------------------------------------
def _link(name: str, fn: Callable[[Any, Any], Any]) -> Callable[..., Val]:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 1, name, where)
        v = args[0]
        t = v.type
        if isinstance(t, T.Map):
            if v.const:
                keys = list(v.data)
                out = fn(ev, np.asarray([v.data[k] for k in keys], dtype="float64"))
                return Val(t, dict(zip(keys, (float(o) for o in out))), True)
            return Val(t, {k: ev.result(T.DOUBLE, fn(ev, ev.tensor(x, ev.dtype_of(T.DOUBLE))), x)
                           for k, x in v.data.items()}, False)
        if not (T.is_numeric(t) or isinstance(t, T.Array) and T.is_numeric(t.items)):
            raise ev.error(f"{name} needs a double, an array or a map of doubles; found {t.describe()}", where)
        out_t = T.DOUBLE if T.is_numeric(t) else T.Array(T.DOUBLE)
        return ev.result(out_t, fn(ev, ev.tensor(v, ev.dtype_of(T.DOUBLE))), v)
    return impl


def _one(ev: Any, x: Any) -> Any:
    return np.asarray(1.0, dtype=ev.dtype_of(T.DOUBLE))


def _c(ev: Any, value: float) -> Any:
    return np.asarray(value, dtype=ev.dtype_of(T.DOUBLE))


def _logit(ev: Any, x: Any) -> Any:
    return ev.op("div", _c(ev, 1.0), ev.op("add", _c(ev, 1.0), ev.op("exp", ev.op("neg", x))))


def _probit(ev: Any, x: Any) -> Any:
    return ev.op("div", ev.op("add", ev.op("erf", ev.op("div", x, _c(ev, math.sqrt(2.0)))), _c(ev, 1.0)),
                 _c(ev, 2.0))


def _cloglog(ev: Any, x: Any) -> Any:
    return ev.op("sub", _c(ev, 1.0), ev.op("exp", ev.op("neg", ev.op("exp", x))))


def _loglog(ev: Any, x: Any) -> Any:
    return ev.op("exp", ev.op("neg", ev.op("exp", x)))


def _cauchit(ev: Any, x: Any) -> Any:
    return ev.op("add", _c(ev, 0.5), ev.op("mul", _c(ev, 1.0 / math.pi), ev.op("atan", x)))


def _softplus(ev: Any, x: Any) -> Any:
    return ev.op("log", ev.op("add", _c(ev, 1.0), ev.op("exp", x)))


def _relu(ev: Any, x: Any) -> Any:
    return ev.op("maximum", x, _c(ev, 0.0))


def _tanh(ev: Any, x: Any) -> Any:
    return ev.op("tanh", x)


def softmax_tensor(ev: Any, x: Any) -> Any:
    """exp(x_i) / sum_j exp(x_j) along the last axis, shifted by the maximum so that it cannot overflow."""
    b = ev.backend_for(x)
    m = b.unsqueeze(b.reduce("max", x, axis=-1), -1)
    z = ev.op("exp", ev.op("sub", x, m))
    return ev.op("div", z, b.unsqueeze(b.reduce("sum", z, axis=-1), -1))


def _softmax(ev: Any, x: Any) -> Any:
    return softmax_tensor(ev, x)


_LINKS = {"softmax": _softmax, "logit": _logit, "probit": _probit, "cloglog": _cloglog, "loglog": _loglog,
          "cauchit": _cauchit, "softplus": _softplus, "relu": _relu, "tanh": _tanh}

for _n, _f in _LINKS.items():
    pfa_function(f"m.link.{_n}")(_link(f"m.link.{_n}", _f))
    if _n in ("softmax", "logit", "probit", "cloglog", "loglog", "cauchit"):
        # PFA 0.7's names for the same functions, still written by some exporters
        pfa_function(f"model.reg.norm.{_n}")(_link(f"model.reg.norm.{_n}", _f))


@pfa_function("m.link.softmax", "model.reg.norm.softmax")
def softmax(ev: Any, args: list[Val], where: str) -> Val:
    """m.link.softmax of an array (along its items) or of a map (across its keys)."""
    arity(ev, args, 1, "m.link.softmax", where)
    v = args[0]
    if T.is_numeric(v.type):
        raise ev.error("m.link.softmax needs an array or a map of doubles", where)
    if v.const and len(v.data) == 0:
        from ...errors import PFARuntimeError

        raise PFARuntimeError("empty input", code=25000, where=where)
    if isinstance(v.type, T.Map) and not v.const:
        keys = list(v.data)
        stacked = ev.b.stack([ev.tensor(v.data[k], ev.dtype_of(T.DOUBLE)) for k in keys], axis=-1)
        sm = softmax_tensor(ev, stacked)
        return Val(v.type, {k: Val(T.DOUBLE, ev.b.take(sm, i, axis=-1), False) for i, k in enumerate(keys)},
                   False)
    return _link("m.link.softmax", _softmax)(ev, args, where)


# -- kernels ---------------------------------------------------------------------------------------------------
def _vectors(ev: Any, args: list[Val], name: str, where: str) -> tuple[Any, Any]:
    x, y = args[0], args[1]
    for i, v in enumerate((x, y)):
        if not (isinstance(v.type, T.Array) and T.is_numeric(v.type.items)):
            raise ev.error(f"{name} needs arrays of doubles; argument {i} is {v.type.describe()}", f"{where}[{i}]")
    dt = ev.dtype_of(T.DOUBLE)
    return ev.tensor(x, dt), ev.tensor(y, dt)


def dot_last(ev: Any, x: Any, y: Any) -> Any:
    b = ev.backend_for(x, y)
    return b.reduce("sum", ev.op("mul", x, y), axis=-1)


@pfa_function("m.kernel.linear")
def k_linear(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "m.kernel.linear", where)
    x, y = _vectors(ev, args, "m.kernel.linear", where)
    return ev.result(T.DOUBLE, dot_last(ev, x, y), *args)


@pfa_function("m.kernel.rbf")
def k_rbf(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 3, "m.kernel.rbf", where)
    x, y = _vectors(ev, args, "m.kernel.rbf", where)
    g = _double_arg(ev, args[2], "m.kernel.rbf", where)
    d = ev.op("sub", x, y)
    sq = ev.backend_for(d).reduce("sum", ev.op("mul", d, d), axis=-1)
    return ev.result(T.DOUBLE, ev.op("exp", ev.op("neg", ev.op("mul", g, sq))), *args)


@pfa_function("m.kernel.poly")
def k_poly(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 5, "m.kernel.poly", where)
    x, y = _vectors(ev, args, "m.kernel.poly", where)
    g, c, deg = (_double_arg(ev, a, "m.kernel.poly", where) for a in args[2:])
    return ev.result(T.DOUBLE, ev.op("pow", ev.op("add", ev.op("mul", g, dot_last(ev, x, y)), c), deg), *args)


@pfa_function("m.kernel.sigmoid")
def k_sigmoid(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 4, "m.kernel.sigmoid", where)
    x, y = _vectors(ev, args, "m.kernel.sigmoid", where)
    g, c = (_double_arg(ev, a, "m.kernel.sigmoid", where) for a in args[2:])
    return ev.result(T.DOUBLE, ev.op("tanh", ev.op("add", ev.op("mul", g, dot_last(ev, x, y)), c)), *args)
