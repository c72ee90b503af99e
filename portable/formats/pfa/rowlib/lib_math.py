"""m.*, m.special.*, m.link.*, m.kernel.*, impute.*, enum.*, fixed.*: one value at a time."""
from __future__ import annotations

import math
from typing import Any

from ..rows import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, f32
from . import err, factory, fn, num_kind, safe

fn("m.pi")(lambda: math.pi)
fn("m.e")(lambda: math.e)

for _name, _f in (("m.acos", math.acos), ("m.asin", math.asin), ("m.atan", math.atan), ("m.cos", math.cos),
                  ("m.cosh", math.cosh), ("m.exp", math.exp), ("m.expm1", math.expm1), ("m.sin", math.sin),
                  ("m.sinh", math.sinh), ("m.tan", math.tan), ("m.tanh", math.tanh)):
    fn(_name)(safe(_f))


def _inf_safe(f: Any) -> Any:
    g = safe(f)

    def h(x: float) -> float:
        x = float(x)
        if math.isinf(x) or math.isnan(x):
            return x
        return g(x)
    return h


def _sqrt(x: float) -> float:
    x = float(x)
    return math.nan if x < 0 or math.isnan(x) else math.sqrt(x)


def _ln(x: float) -> float:
    x = float(x)
    if x == 0:
        return -math.inf
    if x < 0 or math.isnan(x):
        return math.nan
    return math.log(x)


def _log10(x: float) -> float:
    x = float(x)
    if x == 0:
        return -math.inf
    if x < 0 or math.isnan(x):
        return math.nan
    return math.log10(x)


def _ln1p(x: float) -> float:
    x = float(x)
    if x == -1:
        return -math.inf
    if x < -1 or math.isnan(x):
        return math.nan
    return math.log1p(x)


fn("m.sqrt")(_sqrt)
fn("m.ln")(_ln)
fn("m.log10")(_log10)
fn("m.ln1p")(_ln1p)
fn("m.floor")(_inf_safe(lambda x: float(math.floor(x))))
fn("m.ceil")(_inf_safe(lambda x: float(math.ceil(x))))
fn("m.rint")(_inf_safe(lambda x: float(round(x))))


@fn("m.atan2")
def atan2(y: float, x: float) -> float:
    return math.atan2(float(y), float(x))


@fn("m.hypot")
def hypot(x: float, y: float) -> float:
    return math.hypot(float(x), float(y))


@fn("m.log")
def log(x: float, base: int) -> float:
    if base <= 0:
        raise err("base must be positive", 27170)
    lx = _ln(x)
    return lx / math.log(base) if base != 1 else (lx / 0.0 if False else _div0(lx))


def _div0(v: float) -> float:
    if math.isnan(v) or v == 0:
        return math.nan
    return math.copysign(math.inf, v)


@factory("m.abs")
def m_abs(b: Any) -> Any:
    kind = num_kind(b.rt) or num_kind(b.t(0))
    if kind == "int":
        def a32(x: int) -> int:
            if x == INT_MIN:
                raise err("int overflow", 27020)
            return abs(x)
        return a32
    if kind == "long":
        def a64(x: int) -> int:
            if x == LONG_MIN:
                raise err("long overflow", 27021)
            return abs(x)
        return a64
    return lambda x: abs(x)


@factory("m.copysign")
def copysign(b: Any) -> Any:
    kind = num_kind(b.rt)
    if kind in ("int", "long"):
        def ci(mag: int, sign: int) -> int:
            r = abs(mag) if sign >= 0 else -abs(mag)
            lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            return r if lo <= r <= hi else lo  # |MIN| does not fit: wraps to MIN like two's complement
        return ci
    return lambda mag, sign: math.copysign(float(mag), float(sign))


@factory("m.round")
def m_round(b: Any) -> Any:
    kind = num_kind(b.rt) or "long"
    lo, hi, code = (INT_MIN, INT_MAX, 27190) if kind == "int" else (LONG_MIN, LONG_MAX, 27191)

    def run(x: float) -> int:
        x = float(x)
        if math.isnan(x) or math.isinf(x):
            raise err(f"{kind} overflow", code)
        r = math.floor(x + 0.5)
        if not lo <= r <= hi:
            raise err(f"{kind} overflow", code)
        return r
    return run


@fn("m.signum")
def signum(x: float) -> int:
    x = float(x)
    if math.isnan(x):
        return 0
    return (x > 0) - (x < 0)


# -- special functions ----------------------------------------------------------------------------------------
@fn("m.special.nChooseK")
def n_choose_k(n: int, k: int) -> int:
    if k <= 0 or k >= n:
        raise err("domain error", 36000)
    r = math.comb(n, k)
    if r > INT_MAX:
        raise err("int overflow", 36000)
    return r


@fn("m.special.lnBeta")
def ln_beta(a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        raise err("domain error", 36010)
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


fn("m.special.erf")(lambda x: math.erf(float(x)))
fn("m.special.erfc")(lambda x: math.erfc(float(x)))


@fn("m.special.lnGamma")
def ln_gamma(x: float) -> float:
    """log Gamma(x); the spec lists no error, the reference engines raise "domain error" (36050) for x <= 0."""
    x = float(x)
    if math.isnan(x) or (math.isinf(x) and x > 0):
        return math.nan
    if x <= 0:
        raise err("domain error", 36050)
    return math.lgamma(x)


# -- link functions -------------------------------------------------------------------------------------------
def _logit(x: float) -> float:
    x = float(x)
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    ex = math.exp(x)
    return ex / (1.0 + ex)


def _probit(x: float) -> float:
    return (math.erf(float(x) / math.sqrt(2.0)) + 1.0) / 2.0


def _cloglog(x: float) -> float:
    return 1.0 - math.exp(-_exp(float(x)))


def _loglog(x: float) -> float:
    return math.exp(-_exp(float(x)))  # exp(-exp(x)), as the vectorized engine and the reference engines


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _cauchit(x: float) -> float:
    return 0.5 + math.atan(float(x)) / math.pi


def _softplus(x: float) -> float:
    x = float(x)
    return max(x, 0.0) + math.log1p(math.exp(-abs(x))) if not math.isinf(x) else max(x, 0.0)


def _relu(x: float) -> float:
    x = float(x)
    return x if x > 0 else 0.0


def _link(name: str, f: Any) -> None:
    @fn(name)
    def link(x: Any) -> Any:
        if isinstance(x, list):
            return [f(v) for v in x]
        if isinstance(x, dict):
            return {k: f(v) for k, v in x.items()}
        return f(x)


for _n, _lf in (("logit", _logit), ("probit", _probit), ("cloglog", _cloglog), ("loglog", _loglog),
                ("cauchit", _cauchit), ("softplus", _softplus), ("relu", _relu), ("tanh", math.tanh)):
    _link(f"m.link.{_n}", _lf)


@fn("m.link.softmax")
def softmax(x: Any) -> Any:
    vals = list(x.values()) if isinstance(x, dict) else list(x)
    if not vals:
        raise err("empty input", 25000)
    top = max(vals)
    ex = [math.exp(v - top) for v in vals]
    tot = sum(ex)
    out = [v / tot for v in ex]
    return dict(zip(x.keys(), out)) if isinstance(x, dict) else out


# -- kernels --------------------------------------------------------------------------------------------------
def _same(x: list, y: list, code: int) -> None:
    if len(x) != len(y):
        raise err("arrays must have same length", code)


def dot(x: list, y: list) -> float:
    return math.fsum(a * b for a, b in zip(x, y)) if len(x) < 0 else sum(a * b for a, b in zip(x, y))


@fn("m.kernel.linear")
def k_linear(x: list, y: list) -> float:
    _same(x, y, 23000)
    return float(dot(x, y))


@fn("m.kernel.rbf")
def k_rbf(x: list, y: list, gamma: float) -> float:
    _same(x, y, 23010)
    return math.exp(-gamma * sum((a - b) ** 2 for a, b in zip(x, y)))


@fn("m.kernel.poly")
def k_poly(x: list, y: list, gamma: float, intercept: float, degree: float) -> float:
    _same(x, y, 23020)
    return math.pow(gamma * dot(x, y) + intercept, degree)


@fn("m.kernel.sigmoid")
def k_sigmoid(x: list, y: list, gamma: float, intercept: float) -> float:
    _same(x, y, 23030)
    return math.tanh(gamma * dot(x, y) + intercept)


# -- impute ---------------------------------------------------------------------------------------------------
@fn("impute.errorOnNull")
def error_on_null(x: Any) -> Any:
    if x is None:
        raise err("encountered null", 21000)
    return x


fn("impute.defaultOnNull")(lambda x, default: default if x is None else x)
fn("impute.isnan")(lambda x: math.isnan(x))
fn("impute.isinf")(lambda x: math.isinf(x))
fn("impute.isnum")(lambda x: not (math.isnan(x) or math.isinf(x)))


@fn("impute.errorOnNonNum")
def error_on_non_num(x: float) -> float:
    if math.isnan(x):
        raise err("encountered nan", 21050)
    if math.isinf(x):
        raise err("encountered +inf" if x > 0 else "encountered -inf", 21051 if x > 0 else 21052)
    return x


fn("impute.defaultOnNonNum")(lambda x, default: default if math.isnan(x) or math.isinf(x) else x)


# -- enum, fixed ----------------------------------------------------------------------------------------------
fn("enum.toString")(lambda x: x)


@factory("enum.toInt")
def enum_to_int(b: Any) -> Any:
    t = b.t(0)
    syms = list(getattr(t, "symbols", ()))
    return lambda x: syms.index(x)


@factory("enum.numSymbols")
def enum_num(b: Any) -> Any:
    n = len(getattr(b.t(0), "symbols", ()))
    return lambda x: n


fn("fixed.toBytes")(lambda x: bytes(x))


@fn("fixed.fromBytes")
def fixed_from_bytes(original: bytes, replacement: bytes) -> bytes:
    n = len(original)
    return bytes(replacement[:n]) + bytes(original[len(replacement):]) if len(replacement) < n else \
        bytes(replacement[:n])


__all__ = ["dot", "f32"]
