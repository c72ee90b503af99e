"""The one place where portable's ONNX writers get their numerical formulas and onnxruntime workarounds.

Three writers emit ONNX graphs: the scikit-learn converters (`converters/sklearn/emit.py`, inside skl2onnx's
container), the PFA translation (`converters/pfa_onnx.py`) and the ONNX-ML lowering to standard operators
(`converters/onnx_standard.py`). Each keeps its own bookkeeping (names, initializers, types) and wraps it in an
`Ops`: `node(op, *inputs, **attrs)` and `const(value)` in the working float dtype. The formulas here are written
once against that interface:

- float64 versions of what onnxruntime 1.32 has for float32 only (Erf, Sinh, Cosh, Atan, Asin, Acos) and Tan,
  which it lacks in both dtypes;
- the numpy element-wise functions by their numpy names (`UNARY`), used by `FunctionTransformer`,
  `TransformedTargetRegressor` and PFA's `m.*` functions;
- the SVM / kernel-method kernels (linear, poly, rbf, sigmoid, laplacian, cosine).

numpy only at import.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UnsupportedModelError


@dataclass
class Ops:
    """A writer's node and constant makers; `float64` says which dtype `const` makes and the graph computes in."""

    node: Callable[..., Any]  # node(op, *inputs, **attrs) -> output
    const: Callable[[Any], Any]  # const(float or float array) -> input, in the working float dtype
    float64: bool
    int_const: Callable[[Any], Any] | None = None  # const(int64 array) -> input

    def ints(self, values: Any) -> Any:
        if self.int_const is None:
            raise UnsupportedModelError("this ONNX writer has no int64 constants")
        return self.int_const(np.asarray(values, dtype=np.int64))


# -- float64 functions onnxruntime 1.32 lacks ---------------------------------------------------------------

def erf(o: Ops, x: Any) -> Any:
    """erf; in float64 (onnxruntime has Erf for float32 only) the series
    erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!! (Abramowitz & Stegun 7.1.6), all terms positive,
    110 terms (within 2e-15 of scipy.special.erf on |x| <= 6), and sign(x) beyond 6, where erf is +-1 in double.
    """
    if not o.float64:
        return o.node("Erf", x)
    # in u = x^2 / 36 the coefficients stay between 1e-4 and 1e15: onnxruntime's graph optimizer loses the tiny
    # coefficients of the plain x^2 series (down to 1e-158)
    coef = [1.0]
    for n in range(1, 110):
        coef.append(coef[-1] * 2.0 * 36.0 / (2 * n + 1))
    x2 = o.node("Mul", x, x)
    u = o.node("Div", x2, o.const(36.0))
    acc = o.const(coef[-1])
    for c in reversed(coef[:-1]):
        acc = o.node("Add", o.node("Mul", acc, u), o.const(c))
    scale = o.node("Mul", o.node("Exp", o.node("Neg", x2)), o.const(2.0 / np.sqrt(np.pi)))
    series = o.node("Mul", o.node("Mul", scale, x), acc)
    far = o.node("GreaterOrEqual", o.node("Abs", x), o.const(6.0))
    return o.node("Where", far, o.node("Sign", x), series)


def sinh(o: Ops, x: Any) -> Any:
    """(e^x - e^-x)/2, and its Taylor series below |x| < 0.1 where the difference would cancel (float64)."""
    if not o.float64:
        return o.node("Sinh", x)
    big = o.node("Div", o.node("Sub", o.node("Exp", x), o.node("Exp", o.node("Neg", x))), o.const(2.0))
    z = o.node("Mul", x, x)
    poly = o.const(1.0 / 362880.0)
    for c in (1.0 / 5040.0, 1.0 / 120.0, 1.0 / 6.0, 1.0):
        poly = o.node("Add", o.node("Mul", poly, z), o.const(c))
    near0 = o.node("Less", o.node("Abs", x), o.const(0.1))
    return o.node("Where", near0, o.node("Mul", x, poly), big)


def cosh(o: Ops, x: Any) -> Any:
    if not o.float64:
        return o.node("Cosh", x)
    return o.node("Div", o.node("Add", o.node("Exp", x), o.node("Exp", o.node("Neg", x))), o.const(2.0))


def atan(o: Ops, x: Any) -> Any:
    """atan by reduction: atan(x) = sign(x) pi/2 - atan(1/x) for |x| > 1, two half-angle steps
    atan(t) = 2 atan(t / (1 + sqrt(1 + t^2))), then 13 terms of the Taylor series (|t| <= tan(pi/16))."""
    if not o.float64:
        return o.node("Atan", x)
    ax = o.node("Abs", x)
    outside = o.node("Greater", ax, o.const(1.0))
    t = o.node("Where", outside, o.node("Div", o.const(1.0), ax), ax)
    for _ in range(2):
        t = o.node("Div", t, o.node("Add", o.const(1.0), o.node("Sqrt", o.node("Add", o.const(1.0),
                                                                                  o.node("Mul", t, t)))))
    z = o.node("Mul", t, t)
    poly = o.const((-1.0) ** 12 / 25.0)
    for k in range(11, -1, -1):
        poly = o.node("Add", o.node("Mul", poly, z), o.const((-1.0) ** k / (2 * k + 1)))
    inner = o.node("Mul", o.const(4.0), o.node("Mul", t, poly))
    folded = o.node("Where", outside, o.node("Sub", o.const(np.pi / 2), inner), inner)
    return o.node("Mul", o.node("Sign", x), folded)


def asin(o: Ops, x: Any) -> Any:
    """asin(x) = atan(x / sqrt((1 - x)(1 + x)))."""
    if not o.float64:
        return o.node("Asin", x)
    root = o.node("Sqrt", o.node("Mul", o.node("Sub", o.const(1.0), x), o.node("Add", o.const(1.0), x)))
    return atan(o, o.node("Div", x, root))


def acos(o: Ops, x: Any) -> Any:
    """acos(x) = 2 atan(sqrt((1 - x) / (1 + x))), accurate near x = 1."""
    if not o.float64:
        return o.node("Acos", x)
    return o.node("Mul", o.const(2.0), atan(o, o.node("Sqrt", o.node("Div", o.node("Sub", o.const(1.0), x),
                                                                     o.node("Add", o.const(1.0), x)))))


def tan(o: Ops, x: Any) -> Any:
    """sin/cos: onnxruntime 1.32 has no Tan kernel."""
    return o.node("Div", o.node("Sin", x), o.node("Cos", x))


# -- numpy element-wise functions, by numpy name -----------------------------------------------------------

def _simple(op: str) -> Callable[[Ops, Any], Any]:
    return lambda o, x: o.node(op, x)


def _arcsinh(o: Ops, x: Any) -> Any:
    """log(x + sqrt(x^2 + 1)) on |x|, sign restored (no cancellation for negative x)."""
    ax = o.node("Abs", x)
    val = o.node("Log", o.node("Add", ax, o.node("Sqrt", o.node("Add", o.node("Mul", ax, ax), o.const(1.0)))))
    return o.node("Mul", o.node("Sign", x), val)


def _cbrt(o: Ops, x: Any) -> Any:
    """sign(x) |x|^(1/3), with one Newton step: Pow with 1/3 is off by an ulp or two."""
    ax = o.node("Abs", x)
    r = o.node("Pow", ax, o.const(1.0 / 3.0))
    safe = o.node("Where", o.node("Equal", r, o.const(0.0)), o.const(1.0), r)
    r = o.node("Sub", r, o.node("Div", o.node("Sub", o.node("Mul", o.node("Mul", r, r), r), ax),
                                o.node("Mul", o.const(3.0), o.node("Mul", safe, safe))))
    return o.node("Mul", o.node("Sign", x), r)


UNARY: dict[str, Callable[[Ops, Any], Any]] = {
    "exp": _simple("Exp"), "log": _simple("Log"), "sqrt": _simple("Sqrt"), "abs": _simple("Abs"),
    "absolute": _simple("Abs"), "fabs": _simple("Abs"), "negative": _simple("Neg"), "sign": _simple("Sign"),
    "floor": _simple("Floor"), "ceil": _simple("Ceil"), "rint": _simple("Round"), "round": _simple("Round"),
    "sin": _simple("Sin"), "cos": _simple("Cos"), "tanh": _simple("Tanh"), "arctanh": _simple("Atanh"),
    "arccosh": _simple("Acosh"), "reciprocal": _simple("Reciprocal"), "positive": _simple("Identity"),
    "sinh": sinh, "cosh": cosh, "arctan": atan, "arcsin": asin, "arccos": acos, "tan": tan, "erf": erf,
    "arcsinh": _arcsinh, "cbrt": _cbrt,
    "square": lambda o, x: o.node("Mul", x, x),
    "log1p": lambda o, x: o.node("Log", o.node("Add", x, o.const(1.0))),
    "expm1": lambda o, x: o.node("Sub", o.node("Exp", x), o.const(1.0)),
    "log2": lambda o, x: o.node("Div", o.node("Log", x), o.const(np.log(2.0))),
    "log10": lambda o, x: o.node("Div", o.node("Log", x), o.const(np.log(10.0))),
    "exp2": lambda o, x: o.node("Pow", o.const(2.0), x),
    "sigmoid": _simple("Sigmoid"), "expit": _simple("Sigmoid"),
}
# onnxruntime 1.32 lacks a float64 kernel for these (the composed forms above are used in float64)
FLOAT32_ONLY = ("Erf", "Sinh", "Cosh", "Atan", "Asin", "Acos", "Atanh", "Acosh")


def unary(o: Ops, name: str, x: Any) -> Any:
    """numpy's element-wise function `name` applied to `x`."""
    fn = UNARY.get(name)
    if fn is None:
        raise UnsupportedModelError(f"numpy.{name} has no ONNX form in portable (supported: "
                                    f"{', '.join(sorted(UNARY))})")
    if o.float64 and name in ("arctanh", "arccosh"):
        if name == "arctanh":  # 0.5 log((1 + x) / (1 - x))
            return o.node("Mul", o.const(0.5), o.node("Log", o.node("Div", o.node("Add", o.const(1.0), x),
                                                                   o.node("Sub", o.const(1.0), x))))
        return o.node("Log", o.node("Add", x, o.node("Sqrt", o.node("Sub", o.node("Mul", x, x), o.const(1.0)))))
    return fn(o, x)


# -- kernels ------------------------------------------------------------------------------------------------

def kernel(o: Ops, x: Any, y: np.ndarray, metric: str, *, gamma: float | None = None, degree: float = 3,
           coef0: float = 1, expanded: bool = False, reduce_sum: Callable[[Any, int], Any] | None = None) -> Any:
    """`sklearn.metrics.pairwise.pairwise_kernels(X, y, metric)` `[N, M]` for the kernels with a closed form.

    Squared distances are sums of squared differences (`[N, M, F]` in memory, exact to rounding) unless
    `expanded`, which uses |x|^2 - 2 x.y + |y|^2 clamped at 0 (`[N, M]` only, for large support sets and
    writers without 3-d broadcasting). `reduce_sum(t, axis)` sums over one axis (opset-dependent form).
    """
    y = np.asarray(y, dtype=np.float64)
    g = 1.0 / y.shape[1] if gamma is None else float(gamma)
    metric = metric.lower()
    dot = None
    if metric in ("linear", "poly", "polynomial", "sigmoid") or (metric == "rbf" and expanded):
        dot = o.node("MatMul", x, o.const(y.T))
    if metric == "linear":
        return dot
    if metric in ("poly", "polynomial", "sigmoid"):
        base = o.node("Add", o.node("Mul", dot, o.const(g)), o.const(float(coef0)))
        return o.node("Pow", base, o.const(float(degree))) if metric != "sigmoid" else o.node("Tanh", base)
    if metric == "rbf" and expanded:
        xx = o.node("MatMul", o.node("Mul", x, x), o.const(np.ones((y.shape[1], 1))))
        d2 = o.node("Add", o.node("Sub", xx, o.node("Mul", dot, o.const(2.0))), o.const((y * y).sum(axis=1)))
        d2 = o.node("Max", d2, o.const(0.0))
        return o.node("Exp", o.node("Mul", d2, o.const(-g)))
    if metric in ("rbf", "laplacian"):
        if reduce_sum is None:
            raise UnsupportedModelError(f"the {metric} kernel needs a ReduceSum in this writer")
        diff = o.node("Sub", o.node("Unsqueeze", x, o.ints([1])), o.const(y[None, :, :]))
        d = reduce_sum(o.node("Mul", diff, diff) if metric == "rbf" else o.node("Abs", diff), 2)
        return o.node("Exp", o.node("Mul", d, o.const(-g)))
    if metric == "cosine":
        if reduce_sum is None:
            raise UnsupportedModelError("the cosine kernel needs a ReduceSum in this writer")
        n = np.linalg.norm(y, axis=1, keepdims=True)
        yn = y / np.where(n == 0, 1, n)
        norm = o.node("Sqrt", reduce_sum(o.node("Mul", x, x), 1, keepdims=1))
        safe = o.node("Where", o.node("Equal", norm, o.const(0.0)), o.const(1.0), norm)
        return o.node("MatMul", o.node("Div", x, safe), o.const(yn.T))
    raise UnsupportedModelError(f"kernel '{metric}' has no ONNX form in portable (supported: linear, poly, "
                                "rbf, sigmoid, laplacian, cosine)")


def sqdist(o: Ops, x: Any, centers: np.ndarray, reduce_sum: Callable[..., Any]) -> Any:
    """Squared euclidean distances `[N, M]` from the rows of x to `centers` `[M, F]`, as sums of squared
    differences (exact to rounding, unlike the expanded form)."""
    c = np.asarray(centers, dtype=np.float64)
    diff = o.node("Sub", o.node("Unsqueeze", x, o.ints([1])), o.const(c[None, :, :]))
    return reduce_sum(o.node("Mul", diff, diff), 2)


def l1dist(o: Ops, x: Any, centers: np.ndarray, reduce_sum: Callable[..., Any]) -> Any:
    c = np.asarray(centers, dtype=np.float64)
    diff = o.node("Sub", o.node("Unsqueeze", x, o.ints([1])), o.const(c[None, :, :]))
    return reduce_sum(o.node("Abs", diff), 2)
