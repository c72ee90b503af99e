"""Constant and one-dimensional models: DummyClassifier/Regressor, IsotonicRegression, KernelRidge."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter
from .common import kernel, rows


@sklearn_converter("sklearn.dummy.DummyClassifier", kind="classifier")
def dummy_classifier(em: Emitter, est: Any) -> list[Any]:
    if est.strategy in ("stratified", "uniform"):
        raise UnsupportedModelError(f"DummyClassifier(strategy='{est.strategy}') predicts random labels; that is "
                                    "not a function of the input, so there is nothing to convert")
    if getattr(est, "n_outputs_", 1) != 1:
        raise UnsupportedModelError("multi-output DummyClassifier is not supported")
    classes = np.asarray(est.classes_)
    prior = np.asarray(est.class_prior_, dtype=np.float64)
    if est.strategy == "prior":
        proba = prior
        label_idx = int(np.argmax(prior))
    else:
        label_idx = int(np.argmax(prior)) if est.strategy == "most_frequent" else \
            int(np.flatnonzero(classes == est.constant)[0])
        proba = np.zeros(len(classes))
        proba[label_idx] = 1.0
    x = em.input()
    p = rows(em, x, proba)
    em.label(p, classes)
    return [None, p]


@sklearn_converter("sklearn.dummy.DummyRegressor", kind="regressor")
def dummy_regressor(em: Emitter, est: Any) -> list[Any]:
    return [rows(em, em.input(), np.asarray(est.constant_, dtype=np.float64).ravel())]


@sklearn_converter("sklearn.isotonic.IsotonicRegression", kind="regressor")
def isotonic_regression(em: Emitter, est: Any) -> list[Any]:
    return [isotonic(em, em.input(), est)]


def isotonic(em: Emitter, x: str, est: Any) -> str:
    """scipy's interp1d over the thresholds (searchsorted 'left'), NaN or clipping outside them; `[N, 1]`."""
    xs = np.asarray(est.X_thresholds_, dtype=np.float64)
    ys = np.asarray(est.y_thresholds_, dtype=np.float64)
    if est.out_of_bounds == "clip":
        x = em.node("Clip", [x, em.const(xs[0]), em.const(xs[-1])], "clipped")
    if len(xs) == 1:
        y = em.node("Add", [em.node("Mul", [x, em.const(0.0)], "z"), em.const(ys[0])], "y")
    else:
        # the count of thresholds below x, in floats (exact below 2^24 thresholds): NNEF's sum_reduce, clamp and
        # sub take scalars only (an int64 count failed the NNEF parser)
        below = em.node("Cast", [em.node("Less", [em.const(xs[None, :]), x], "lt")], "ltf",
                        to=11 if em.double else 1)
        count = em.node("Clip", [em.reduce("ReduceSum", below, 1), em.const(1.0), em.const(float(len(xs) - 1))],
                        "count")
        hi = em.node("Cast", [count], "hi", to=7)
        lo = em.node("Cast", [em.node("Sub", [count, em.const(1.0)], "below1")], "lo", to=7)
        g = {n: em.node("Gather", [em.const(a), i], n, axis=0)
             for n, a, i in (("xlo", xs, lo), ("xhi", xs, hi), ("ylo", ys, lo), ("yhi", ys, hi))}
        slope = em.node("Div", [em.node("Sub", [g["yhi"], g["ylo"]], "dy"),
                                em.node("Sub", [g["xhi"], g["xlo"]], "dx")], "slope")
        xflat = em.node("Reshape", [x, em.const([-1], dtype=np.int64)], "xf")
        y = em.node("Add", [em.node("Mul", [slope, em.node("Sub", [xflat, g["xlo"]], "off")], "rise"), g["ylo"]],
                    "yf")
        y = em.node("Reshape", [y, em.const([-1, 1], dtype=np.int64)], "y")
    if est.out_of_bounds == "nan":
        out = em.node("Or", [em.node("Less", [x, em.const(xs[0])], "lo_out"),
                             em.node("Greater", [x, em.const(xs[-1])], "hi_out")], "out")
        y = em.node("Where", [out, em.const(np.nan), y], "ynan")
    return y


@sklearn_converter("sklearn.kernel_ridge.KernelRidge", kind="regressor")
def kernel_ridge(em: Emitter, est: Any) -> list[Any]:
    if callable(est.kernel) or est.kernel == "precomputed":
        raise UnsupportedModelError(f"KernelRidge with a {est.kernel!r} kernel cannot be converted")
    params = dict(est.kernel_params or {})
    k = kernel(em, em.input(), est.X_fit_, est.kernel, gamma=params.get("gamma", est.gamma),
               degree=params.get("degree", est.degree), coef0=params.get("coef0", est.coef0))
    dual = np.asarray(est.dual_coef_, dtype=np.float64)
    return [em.node("MatMul", [k, em.const(dual.reshape(dual.shape[0], -1))], "pred")]
