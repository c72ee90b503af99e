"""Kernel SVMs (SVC, NuSVC, SVR, NuSVR, OneClassSVM) in the input's dtype: onnxruntime has no double SVM kernels."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .common import kernel, sign_label


@sklearn_converter("sklearn.svm.SVR", "sklearn.svm.NuSVR", kind="regressor", replaces=True)
def svr(em: Emitter, est: Any) -> list[Any]:
    """Kernel SVM regression in the input's dtype (onnxruntime has no double SVMRegressor)."""
    return [_svm_decision(em, est)]


def _svm_decision(em: Emitter, est: Any) -> str:
    if est.kernel == "precomputed" or callable(est.kernel):
        raise UnsupportedModelError(f"{type(est).__name__} with a {est.kernel!r} kernel cannot be converted")
    k = kernel(em, em.input(), est.support_vectors_, est.kernel, gamma=est._gamma, degree=est.degree,
               coef0=est.coef0)
    dual = np.asarray(est.dual_coef_, dtype=np.float64)
    return em.node("Add", [em.node("MatMul", [k, em.const(dual.T)], "kd"),
                           em.const(np.asarray(est.intercept_, dtype=np.float64).reshape(1, -1))], "dec")


def binary_svc_score(em: Emitter, est: Any) -> str:
    """A two-class kernel SVC's decision_function `[N, 1]` (libsvm's one decision, negated)."""
    if est.kernel == "precomputed" or callable(est.kernel) or len(est.classes_) != 2:
        raise UnsupportedModelError(f"{type(est).__name__} with a {est.kernel!r} kernel cannot be converted")
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    k = kernel(em, em.input(), sv, est.kernel, gamma=est._gamma, degree=est.degree, coef0=est.coef0)
    coef = np.asarray(est._dual_coef_, dtype=np.float64).reshape(1, -1)
    dec = em.node("Add", [em.node("MatMul", [k, em.const(coef.T)], "km"),
                          em.const(np.asarray(est._intercept_, dtype=np.float64)[None, :])], "ovo")
    return em.node("Neg", [dec], "score")


@sklearn_converter("sklearn.svm.SVC", "sklearn.svm.NuSVC", kind="classifier", replaces=True)
def svc(em: Emitter, est: Any) -> list[Any]:
    """Kernel SVC without probabilities: libsvm's one-vs-one decisions, votes, and scikit-learn's ovr scores."""
    if est.probability is True or est.kernel == "precomputed" or callable(est.kernel):
        raise UseSkl2onnx  # probability is 'deprecated' (not True) by default in scikit-learn 1.9
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    k = kernel(em, em.input(), sv, est.kernel, gamma=est._gamma, degree=est.degree, coef0=est.coef0)
    coef = np.asarray(est._dual_coef_, dtype=np.float64)
    n_class = len(est.classes_)
    start = np.concatenate([[0], np.cumsum(est._n_support)])
    pairs = [(i, j) for i in range(n_class) for j in range(i + 1, n_class)]
    m = np.zeros((sv.shape[0], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        m[start[i]:start[i + 1], p] = coef[j - 1, start[i]:start[i + 1]]
        m[start[j]:start[j + 1], p] = coef[i, start[j]:start[j + 1]]
    dec = em.node("Add", [em.node("MatMul", [k, em.const(m)], "km"),
                          em.const(np.asarray(est._intercept_, dtype=np.float64)[None, :])], "ovo")
    if n_class == 2:
        score = em.node("Neg", [dec], "score")
        em.label(score, est.classes_, binary_raw=score, strict=False)
        return [None, score]
    vi = np.zeros((len(pairs), n_class))
    vj = np.zeros((len(pairs), n_class))
    for p, (i, j) in enumerate(pairs):
        vi[p, i] = vj[p, j] = 1.0
    to_float = 11 if em.double else 1
    won = em.node("Cast", [em.node("Greater", [dec, em.const(0.0)], "gt")], "won", to=to_float)
    votes = em.node("Add", [em.node("MatMul", [won, em.const(vi - vj)], "wv"), em.const(vj.sum(0)[None, :])],
                    "votes")
    if est.decision_function_shape == "ovo":
        scores = dec
    else:
        kept = em.node("Cast", [em.node("GreaterOrEqual", [dec, em.const(0.0)], "ge")], "kept", to=to_float)
        ovr_votes = em.node("Add", [em.node("MatMul", [kept, em.const(vi - vj)], "kv"),
                                    em.const(vj.sum(0)[None, :])], "ovrv")
        conf = em.node("MatMul", [em.node("Neg", [dec], "negdec"), em.const(vj - vi)], "conf")
        squash = em.node("Div", [conf, em.node("Mul", [em.node("Add", [em.node("Abs", [conf], "ac"),
                                                                       em.const(1.0)], "ac1"),
                                                      em.const(3.0)], "den")], "squash")
        scores = em.node("Add", [ovr_votes, squash], "ovr")
    em.label(scores if est.break_ties else votes, est.classes_)
    return [None, scores]


@sklearn_converter("sklearn.svm.OneClassSVM", kind="outlier", replaces=True)
def one_class_svm(em: Emitter, est: Any) -> list[Any]:
    dec = _svm_decision(em, est)
    return [sign_label(em, dec, strict=True), dec]
