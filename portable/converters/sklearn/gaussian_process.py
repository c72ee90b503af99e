"""GaussianProcessClassifier (Laplace approximation, probit-averaged predictions)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ... import onnx_builder
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .common import sqdist


def _rbf_kernel_params(kernel: Any) -> tuple[float, np.ndarray] | None:
    """(constant, length scales) of `c * RBF(l)` or `RBF(l)`; None for any other kernel."""
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Product

    if isinstance(kernel, RBF):
        return 1.0, np.atleast_1d(np.asarray(kernel.length_scale, dtype=np.float64))
    if isinstance(kernel, Product):
        for a, b in ((kernel.k1, kernel.k2), (kernel.k2, kernel.k1)):
            if isinstance(a, ConstantKernel) and isinstance(b, RBF):
                return float(a.constant_value), np.atleast_1d(np.asarray(b.length_scale, dtype=np.float64))
    return None


def _gpc_binary(em: Emitter, x: str, e: Any) -> tuple[str, str]:
    """Latent mean and P(class 1) of scikit-learn's binary Laplace GP classifier (RBF kernels)."""
    from scipy.linalg import solve
    from sklearn.gaussian_process._gpc import COEFS, LAMBDAS

    params = _rbf_kernel_params(e.kernel_)
    if params is None:
        raise UseSkl2onnx
    c, length = params
    xs = em.node("Div", [x, em.const(length[None, :])], "xs")
    k = em.node("Mul", [em.node("Exp", [em.node("Mul", [sqdist(em, xs, e.X_train_ / length), em.const(-0.5)],
                                                "hd")], "ek"), em.const(c)], "kstar")  # [N, n_train]
    mean = em.node("MatMul", [k, em.const((e.y_train_ - e.pi_)[:, None])], "fmean")  # [N, 1]
    m = solve(e.L_, np.diag(e.W_sr_))
    v = em.node("MatMul", [k, em.const(m.T)], "v")
    var = em.node("Sub", [em.const(c), em.reduce("ReduceSum", em.node("Mul", [v, v], "vv"), 1, keepdims=1)], "var")
    lam = LAMBDAS.ravel()[None, :]
    alpha = em.node("Div", [em.const(0.5), var], "alpha")
    gamma = em.node("Mul", [mean, em.const(lam)], "gamma")
    ratio = em.node("Sqrt", [em.node("Div", [alpha, em.node("Add", [alpha, em.const(lam ** 2)], "al")], "r")], "sr")
    erf_v = onnx_builder.erf(em.ops, em.node("Mul", [gamma, ratio], "ga"))
    num = em.node("Mul", [em.node("Sqrt", [em.node("Div", [em.const(np.pi), alpha], "pa")], "spa"), erf_v], "num")
    den = em.node("Mul", [em.node("Sqrt", [em.node("Mul", [var, em.const(2 * np.pi)], "v2")], "sv"), em.const(2.0)],
                  "den")
    integrals = em.node("Div", [num, den], "integrals")  # [N, 5]
    pi_star = em.node("Add", [em.node("MatMul", [integrals, em.const(COEFS)], "ci"),
                              em.const(0.5 * COEFS.sum())], "pistar")  # [N, 1]
    return mean, pi_star


@sklearn_converter("sklearn.gaussian_process.GaussianProcessClassifier", kind="classifier", replaces=True)
def gaussian_process_classifier(em: Emitter, est: Any) -> list[Any]:
    """Laplace GP classification with RBF kernels: binary, or one-vs-rest (probabilities normalized).

    The latent variance `k(x, x) - |v|^2` cancels badly in float32, so a float32 model computes in float64
    inside and returns float32.
    """
    x = em.input()
    if em.double:
        return _gpc(em, x, est)
    em.double, em.dtype = True, np.float64
    try:
        outs = _gpc(em, em.node("Cast", [x], "x64", to=11), est)
    finally:
        em.double, em.dtype = False, np.float32
    return [None, em.node("Cast", [outs[1]], "proba32", to=1)]


def _gpc(em: Emitter, x: str, est: Any) -> list[Any]:
    base = est.base_estimator_
    if len(est.classes_) == 2:
        mean, p1 = _gpc_binary(em, x, base)
        proba = em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p1], "p0"), p1], "proba", axis=1)
        em.label(proba, est.classes_, binary_raw=mean, strict=True)
        return [None, proba]
    if est.multi_class != "one_vs_rest":
        raise UnsupportedModelError("GaussianProcessClassifier(multi_class='one_vs_one') has no predict_proba; "
                                    "portable converts one_vs_rest")
    ps = [_gpc_binary(em, x, e)[1] for e in base.estimators_]
    p = em.node("Concat", ps, "pk", axis=1)
    proba = em.node("Div", [p, em.reduce("ReduceSum", p, 1, keepdims=1)], "proba")
    # OneVsRestClassifier.predict keeps the last of equal maxima: argmax over the reversed columns
    rev = em.node("Gather", [p, em.const(np.arange(len(ps))[::-1].copy(), dtype=np.int64)], "prev", axis=1)
    em.label(rev, np.asarray(est.classes_)[::-1])
    return [None, proba]
