"""Kernel approximations (RBFSampler, Nystroem, chi2 samplers, PolynomialCountSketch) and BernoulliRBM."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter
from .common import kernel, rows, affine


@sklearn_converter("sklearn.kernel_approximation.RBFSampler", kind="transformer")
def rbf_sampler(em: Emitter, est: Any) -> list[Any]:
    proj = affine(em, em.input(), np.asarray(est.random_weights_), np.asarray(est.random_offset_)[None, :])
    return [em.node("Mul", [em.node("Cos", [proj], "cos"), em.const((2.0 / est.n_components) ** 0.5)], "rbf")]


@sklearn_converter("sklearn.kernel_approximation.SkewedChi2Sampler", kind="transformer")
def skewed_chi2_sampler(em: Emitter, est: Any) -> list[Any]:
    logx = em.node("Log", [em.node("Add", [em.input(), em.const(float(est.skewedness))], "xs")], "logx")
    proj = affine(em, logx, np.asarray(est.random_weights_), np.asarray(est.random_offset_)[None, :])
    scale = np.sqrt(2.0) / np.sqrt(est.n_components)
    return [em.node("Mul", [em.node("Cos", [proj], "cos"), em.const(scale)], "chi2")]


@sklearn_converter("sklearn.kernel_approximation.AdditiveChi2Sampler", kind="transformer")
def additive_chi2_sampler(em: Emitter, est: Any) -> list[Any]:
    steps = est.sample_steps
    interval = est.sample_interval if est.sample_interval is not None else {1: 0.8, 2: 0.5, 3: 0.4}[steps]
    x = em.input()
    nz = em.node("Not", [em.node("Equal", [x, em.const(0.0)], "z")], "nz")
    zero = em.const(0.0)
    safe = em.node("Where", [nz, x, em.const(1.0)], "safe")  # log/sqrt only where x != 0, as scikit-learn does
    parts = [em.node("Where", [nz, em.node("Sqrt", [em.node("Mul", [safe, em.const(float(interval))], "xi")],
                                                      "s0"), zero], "p0")]
    log_step = em.node("Mul", [em.node("Log", [safe], "lx"), em.const(float(interval))], "logstep")
    step = em.node("Mul", [safe, em.const(2.0 * interval)], "step")
    for j in range(1, steps):
        factor = em.node("Sqrt", [em.node("Div", [step, em.const(float(np.cosh(np.pi * j * interval)))], "st")],
                         "factor")
        arg = em.node("Mul", [log_step, em.const(float(j))], "arg")
        for op in ("Cos", "Sin"):
            v = em.node("Mul", [factor, em.node(op, [arg], op.lower())], "fv")
            parts.append(em.node("Where", [nz, v, zero], "pj"))
    return [em.node("Concat", parts, "chi2", axis=1)]


@sklearn_converter("sklearn.kernel_approximation.Nystroem", kind="transformer")
def nystroem(em: Emitter, est: Any) -> list[Any]:
    if callable(est.kernel) or est.kernel == "precomputed":
        raise UnsupportedModelError(f"Nystroem with a {est.kernel!r} kernel cannot be converted")
    params = est._get_kernel_params()
    k = kernel(em, em.input(), est.components_, est.kernel, gamma=params.get("gamma"),
               degree=params.get("degree", 3), coef0=params.get("coef0", 1))
    return [em.node("MatMul", [k, em.const(np.asarray(est.normalization_).T)], "ny")]


@sklearn_converter("sklearn.neural_network.BernoulliRBM", kind="transformer")
def bernoulli_rbm(em: Emitter, est: Any) -> list[Any]:
    a = affine(em, em.input(), np.asarray(est.components_).T, np.asarray(est.intercept_hidden_)[None, :])
    return [em.node("Sigmoid", [a], "hidden")]


@sklearn_converter("sklearn.kernel_approximation.PolynomialCountSketch", kind="transformer")
def polynomial_count_sketch(em: Emitter, est: Any) -> list[Any]:
    """Count sketches (linear maps), multiplied in the Fourier domain: the DFTs are written as matrices."""
    n_c = est.n_components
    x = em.node("Mul", [em.input(), em.const(float(np.sqrt(est.gamma)))], "xg")
    if est.coef0 != 0:
        x = em.node("Concat", [x, rows(em, x, [np.sqrt(est.coef0)])], "xg1", axis=1)
    n_in = est.indexHash_.shape[1]
    k = np.arange(n_c)
    angle = 2 * np.pi * np.outer(k, k) / n_c
    cos, sin = np.cos(angle), np.sin(angle)
    re = im = None
    for d in range(est.degree):
        h = np.zeros((n_in, n_c))
        np.add.at(h, (np.arange(n_in), est.indexHash_[d]), est.bitHash_[d])
        sketch = em.node("MatMul", [x, em.const(h)], "sketch")
        # fft: X_k = sum_n x_n (cos - i sin)(2 pi k n / N)
        a = em.node("MatMul", [sketch, em.const(cos)], "re")
        b = em.node("Neg", [em.node("MatMul", [sketch, em.const(sin)], "ims")], "im")
        if re is None:
            re, im = a, b
        else:
            re, im = (em.node("Sub", [em.node("Mul", [re, a], "ra"), em.node("Mul", [im, b], "ib")], "pre"),
                      em.node("Add", [em.node("Mul", [re, b], "rb"), em.node("Mul", [im, a], "ia")], "pim"))
    # real part of the inverse fft: (1/N) sum_k (re cos - im sin)
    out = em.node("Sub", [em.node("MatMul", [re, em.const(cos / n_c)], "rc"),
                          em.node("MatMul", [im, em.const(sin / n_c)], "is")], "sketchout")
    return [out]
