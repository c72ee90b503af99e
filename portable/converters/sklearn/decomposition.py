"""Decompositions whose transform is affine (read off scikit-learn), and LatentDirichletAllocation."""
from __future__ import annotations

from typing import Any

import numpy as np

from .emit import Emitter
from .registry import sklearn_converter
from .common import rows, affine_map, affine, dense


@sklearn_converter("sklearn.decomposition.FactorAnalysis", "sklearn.decomposition.FastICA", "sklearn.cross_decomposition.PLSSVD",
       "sklearn.decomposition.SparsePCA", "sklearn.decomposition.MiniBatchSparsePCA",
       "sklearn.cluster.FeatureAgglomeration", "sklearn.random_projection.SparseRandomProjection",
       "sklearn.preprocessing.KernelCenterer", kind="transformer")
def affine_transformer(em: Emitter, est: Any) -> list[Any]:
    a, b = affine_map(lambda z: dense(est.transform(z)), est.n_features_in_, what=type(est).__name__)
    return [affine(em, em.input(), a, b)]


@sklearn_converter("sklearn.cross_decomposition.PLSRegression", "sklearn.cross_decomposition.CCA",
       "sklearn.cross_decomposition.PLSCanonical", kind="regressor", replaces=True)
def affine_regressor(em: Emitter, est: Any) -> list[Any]:
    a, b = affine_map(lambda z: np.asarray(est.predict(z)).reshape(len(z), -1), est.n_features_in_,
                      what=type(est).__name__)
    return [affine(em, em.input(), a, b)]


_EULER = 0.577215664901532860606512090082402431


def _lda_psi(x: np.ndarray) -> np.ndarray:
    """scikit-learn's own digamma (sklearn/decomposition/_online_lda_fast.pyx), in numpy."""
    x = np.asarray(x, dtype=np.float64).copy()
    tiny = x <= 1e-6
    result = np.zeros_like(x)
    for _ in range(6):
        small = x < 6
        result -= np.where(small, 1.0 / x, 0.0)
        x = np.where(small, x + 1, x)
    r = 1.0 / x
    result += np.log(x) - 0.5 * r
    r = r * r
    result -= r * ((1.0 / 12.0) - r * ((1.0 / 120.0) - r * (1.0 / 252.0)))
    return np.where(tiny, -_EULER - 1.0 / np.where(tiny, x, 1.0), result)


def _psi_node(em: Emitter, x: str) -> str:
    """The same digamma as graph nodes (x > 1e-6 here: document-topic counts plus a positive prior)."""
    acc = None
    for _ in range(6):
        small = em.node("Less", [x, em.const(6.0)], "small")
        step = em.node("Where", [small, em.node("Reciprocal", [x], "inv"), em.const(0.0)], "step")
        acc = step if acc is None else em.node("Add", [acc, step], "acc")
        x = em.node("Where", [small, em.node("Add", [x, em.const(1.0)], "x1"), x], "xs")
    r = em.node("Reciprocal", [x], "r")
    head = em.node("Sub", [em.node("Log", [x], "logx"), em.node("Mul", [r, em.const(0.5)], "hr")], "head")
    r2 = em.node("Mul", [r, r], "r2")
    poly = em.node("Sub", [em.const(1.0 / 120.0), em.node("Mul", [r2, em.const(1.0 / 252.0)], "a")], "p1")
    poly = em.node("Sub", [em.const(1.0 / 12.0), em.node("Mul", [r2, poly], "b")], "p2")
    result = em.node("Sub", [head, em.node("Mul", [r2, poly], "tail")], "psi0")
    return em.node("Sub", [result, acc], "psi")


@sklearn_converter("sklearn.decomposition.LatentDirichletAllocation", kind="transformer")
def latent_dirichlet_allocation(em: Emitter, est: Any) -> list[Any]:
    """The variational E-step, unrolled: `max_doc_update_iter` updates, each row frozen once its mean change
    falls below `mean_change_tol` (scikit-learn stops that row's loop there), then normalized. Computed in
    float64 (a float32 model returns float32)."""
    out_float = not em.double
    x = em.input()
    if out_float:
        em.double, em.dtype = True, np.float64
        x = em.node("Cast", [x], "x64", to=11)
    try:
        beta = np.asarray(est.exp_dirichlet_component_, dtype=np.float64)  # [K, W]
        k = beta.shape[0]
        prior = float(est.doc_topic_prior_)
        eps = float(np.finfo(np.float64).eps)
        doc = rows(em, x, np.ones(k))
        exp_doc = rows(em, x, np.exp(_lda_psi(np.ones(k)) - _lda_psi(np.array([float(k)]))))
        done = em.node("Cast", [em.node("Mul", [em.reduce("ReduceSum", doc, 1, keepdims=1), em.const(0.0)], "z")],
                       "done0", to=9)
        for _ in range(est.max_doc_update_iter):
            norm_phi = em.node("Add", [em.node("MatMul", [exp_doc, em.const(beta)], "phi"), em.const(eps)], "nphi")
            new = em.node("Mul", [exp_doc, em.node("MatMul", [em.node("Div", [x, norm_phi], "cn"),
                                                              em.const(beta.T)], "cb")], "upd")
            new = em.node("Add", [new, em.const(prior)], "withprior")
            psi_all = _psi_node(em, new)
            psi_sum = _psi_node(em, em.reduce("ReduceSum", new, 1, keepdims=1))
            new_exp = em.node("Exp", [em.node("Sub", [psi_all, psi_sum], "elog")], "newexp")
            change = em.reduce("ReduceMean", em.node("Abs", [em.node("Sub", [doc, new], "dd")], "ad"), 1, keepdims=1)
            doc = em.node("Where", [done, doc, new], "doc")
            exp_doc = em.node("Where", [done, exp_doc, new_exp], "expdoc")
            done = em.node("Or", [done, em.node("Less", [change, em.const(float(est.mean_change_tol))], "conv")],
                           "done")
        out = em.node("Div", [doc, em.reduce("ReduceSum", doc, 1, keepdims=1)], "theta")
    finally:
        if out_float:
            em.double, em.dtype = False, np.float32
    return [em.node("Cast", [out], "theta32", to=1) if out_float else out]
