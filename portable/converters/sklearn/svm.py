"""Kernel SVMs (SVC, NuSVC, SVR, NuSVR, OneClassSVM) in the input's dtype: onnxruntime has no double SVM kernels.

SVC/NuSVC with probability=True compute libsvm's probabilities in float64 in either dtype (see `svc`)."""
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
    """Kernel SVC: libsvm's one-vs-one decisions, votes, and scikit-learn's ovr scores; with probability=True,
    libsvm's Platt probabilities coupled pairwise (`_libsvm_probabilities`) in the graph's dtype (skl2onnx's
    SVMClassifier computes them in float32 in onnxruntime, 1e-5 off in a float64 graph)."""
    if est.kernel == "precomputed" or callable(est.kernel):
        raise UseSkl2onnx
    if est.probability is True and not em.double:
        # Platt's sigmoid multiplies the decision values' float32 error (by |probA_|: 6.7e-5 off, past the
        # check's 1e-5, for a linear 5-class SVC): a float32 graph computes in float64, as libsvm does, and
        # rounds the probabilities once at the end
        from onnx import TensorProto

        x = em.node("Cast", [em.input()], "x64", to=TensorProto.DOUBLE)
        em.double, em.dtype = True, np.float64
        try:
            proba = _svc(em, est, x)[1]
        finally:
            em.double, em.dtype = False, np.float32
        return [None, em.node("Cast", [proba], "proba32", to=TensorProto.FLOAT)]
    return _svc(em, est, em.input())


def _svc(em: Emitter, est: Any, x: str) -> list[Any]:
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    k = kernel(em, x, sv, est.kernel, gamma=est._gamma, degree=est.degree, coef0=est.coef0)
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
    # probability is 'deprecated' (not True) by default in scikit-learn 1.9
    proba = _libsvm_probabilities(em, est, dec, n_class) if est.probability is True else None
    if n_class == 2:
        score = em.node("Neg", [dec], "score")
        em.label(score, est.classes_, binary_raw=score, strict=False)
        return [None, score if proba is None else proba]
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
    return [None, scores if proba is None else proba]


@sklearn_converter("sklearn.svm.OneClassSVM", kind="outlier", replaces=True)
def one_class_svm(em: Emitter, est: Any) -> list[Any]:
    dec = _svm_decision(em, est)
    return [sign_label(em, dec, strict=True), dec]


def _libsvm_probabilities(em: Emitter, est: Any, dec: str, k: int) -> str:
    """`predict_proba` as scikit-learn's libsvm computes it (`svm_predict_probability`), in the graph's dtype.

    `dec` `[N, k(k-1)/2]` holds libsvm's one-vs-one decision values (pairs (i, j), i < j, in order). Each pair's
    Platt probability r_ij (`_platt`), then libsvm's `multiclass_probability` (Wu, Lin & Weng 2004), used for two
    classes too (scikit-learn's libsvm has no closed form for k = 2): Q_tt = sum_j r_jt^2, Q_tj = -r_jt r_tj,
    p = 1/k, and at most max(100, k) sweeps; each sweep first recomputes Qp and pQp and stops the row once
    max_t |Qp_t - pQp| < 0.005 / k, else updates t = 0..k-1 in turn (`_coupling_loop`). The sums run in
    libsvm's order, so float64 graphs agree with scikit-learn to rounding."""
    big_q, diag = _coupling_matrix(em, _platt(em, est, dec, k), k)
    return _coupling_loop(em, dec, big_q, diag, k)


def _platt(em: Emitter, est: Any, dec: str, k: int) -> str:
    """r_ij `[N, pairs]`: 1 / (1 + exp(dec A + B)) in libsvm's form that never subtracts from 1
    (`sigmoid_predict`), clipped to [1e-7, 1 - 1e-7] (`min_prob`)."""
    n_pairs = k * (k - 1) // 2
    # the arrays libsvm predicts with (`probA_` / `probB_` are deprecated properties over them in 1.9)
    a = np.asarray(est._probA if hasattr(est, "_probA") else est.probA_, dtype=np.float64)
    b = np.asarray(est._probB if hasattr(est, "_probB") else est.probB_, dtype=np.float64)
    fab = em.node("Add", [em.node("Mul", [dec, em.const(a.reshape(1, n_pairs))], "da"),
                          em.const(b.reshape(1, n_pairs))], "fapb")
    e = em.node("Exp", [em.node("Neg", [em.node("Abs", [fab], "absf")], "nabsf")], "ef")  # exp(-|fApB|)
    one_e = em.node("Add", [em.const(1.0), e], "onee")
    sig = em.node("Where", [em.node("GreaterOrEqual", [fab, em.const(0.0)], "fpos"),
                            em.node("Div", [e, one_e], "sigp"), em.node("Div", [em.const(1.0), one_e], "sign")],
                  "sig")
    min_prob = 1e-7
    return em.node("Min", [em.node("Max", [sig, em.const(min_prob)], "rlo"), em.const(1.0 - min_prob)], "r")


def _coupling_matrix(em: Emitter, r: str, k: int) -> tuple[str, str]:
    """libsvm's Q `[N, k, k]` and its diagonal `[N, k]` from the pairs' r `[N, pairs]`."""
    n_pairs = k * (k - 1) // 2
    # R [N, k, k]: R[i, j] = r_ij, R[j, i] = 1 - r_ij, R[t, t] = 0, gathered from [r, 1 - r, 0]
    zero = em.node("Mul", [em.node("Gather", [r, em.const([0], dtype=np.int64)], "r0", axis=1), em.const(0.0)],
                   "zero")
    table = em.node("Concat", [r, em.node("Sub", [em.const(1.0), r], "r1"), zero], "rtab", axis=1)
    index = np.full((k, k), 2 * n_pairs, dtype=np.int64)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    for q, (i, j) in enumerate(pairs):
        index[i, j], index[j, i] = q, n_pairs + q
    big_r = em.node("Reshape", [em.node("Gather", [table, em.const(index.reshape(-1), dtype=np.int64)], "rflat",
                                        axis=1), em.const([-1, k, k], dtype=np.int64)], "bigr")
    # Q_tt = ((0 + R[0, t]^2) + R[1, t]^2) + ... (R[t, t] = 0 adds nothing), in libsvm's order
    sq = em.node("Mul", [big_r, big_r], "rsq")
    diag = em.node("Gather", [sq, em.const(0, dtype=np.int64)], "sqj", axis=1)
    for j in range(1, k):
        diag = em.node("Add", [diag, em.node("Gather", [sq, em.const(j, dtype=np.int64)], "sqj", axis=1)], "qdiag")
    # Q_tj = -R[j, t] R[t, j] off the diagonal (-0 on it, where Q_tt is added)
    off = em.node("Neg", [em.node("Mul", [big_r, em.node("Transpose", [big_r], "rt", perm=[0, 2, 1])], "rrt")],
                  "qoff")
    col = em.node("Unsqueeze", [diag, em.const([1], dtype=np.int64)], "qd1") \
        if em.container.target_opset_any_domain("") >= 13 else em.node("Unsqueeze", [diag], "qd1", axes=[1])
    return em.node("Add", [off, em.node("Mul", [col, em.const(np.eye(k))], "qdm")], "bigq"), diag


def _coupling_loop(em: Emitter, dec: str, big_q: str, diag: str, k: int) -> str:
    """libsvm's sweeps as an ONNX Loop over all rows, each row frozen (Where) once it met libsvm's stop.

    The body names no outer-scope value (its constants are Constant nodes; Q and its diagonal are carried
    through unchanged), so skl2onnx's pruning of unused initializers cannot break it."""
    from onnx import TensorProto, helper, numpy_helper

    n = em.node("Gather", [em.node("Shape", [dec], "shape"), em.const([0], dtype=np.int64)], "nrows", axis=0)
    p0 = em.node("Expand", [em.const(np.full((1, k), 1.0 / k)),
                            em.node("Concat", [n, em.const([k], dtype=np.int64)], "pshape", axis=0)], "p0")
    done0 = em.node("Expand", [em.const(np.zeros((1, 1), dtype=bool), dtype=np.bool_),
                               em.node("Concat", [n, em.const([1], dtype=np.int64)], "dshape", axis=0)], "done0")
    nodes: list[Any] = []
    opset = em.container.target_opset_any_domain("")

    def op(kind: str, *xs: str, **attrs: Any) -> str:
        out = em.name(f"b{kind.lower()}")
        nodes.append(helper.make_node(kind, list(xs), [out], name=em.name(f"B{kind}"), **attrs))
        return out

    def const(value: Any, np_dtype: Any = None) -> str:
        out = em.name("bc")
        nodes.append(helper.make_node("Constant", [], [out], name=em.name("BConstant"),
                                      value=numpy_helper.from_array(np.asarray(value, np_dtype or em.dtype), out)))
        return out

    def col(x: str, j: int) -> str:  # x[:, j:j+1]
        return op("Gather", x, const([j], np.int64), axis=1)

    it, cond_in, p_in, done_in, q_in, d_in = (em.name(h) for h in ("it", "cin", "pin", "din", "qin", "dgin"))
    p_cols = [col(p_in, j) for j in range(k)]
    qp = op("Mul", op("Gather", q_in, const(0, np.int64), axis=2), p_cols[0])  # Qp_t = sum_j Q_tj p_j, j's order
    for j in range(1, k):
        qp = op("Add", qp, op("Mul", op("Gather", q_in, const(j, np.int64), axis=2), p_cols[j]))
    pqp = op("Mul", p_cols[0], col(qp, 0))  # pQp = sum_t p_t Qp_t, t's order
    for t in range(1, k):
        pqp = op("Add", pqp, op("Mul", p_cols[t], col(qp, t)))
    gap = op("Abs", op("Sub", qp, pqp))
    err = op("ReduceMax", gap, const([1], np.int64), keepdims=1) if opset >= 18 else \
        op("ReduceMax", gap, axes=[1], keepdims=1)
    done = op("Or", done_in, op("Less", err, const(0.005 / k)))
    p, one, two, eye = p_in, const(1.0), const(2.0), np.eye(k)
    for t in range(k):  # libsvm's update of p_t, pQp, Qp and p, in t's order
        qp_t, q_tt = col(qp, t), col(d_in, t)
        diff = op("Div", op("Sub", pqp, qp_t), q_tt)
        p = op("Add", p, op("Mul", diff, const(eye[t:t + 1])))  # p_t += diff (the others + 0)
        one_d = op("Add", one, diff)
        step = op("Mul", diff, op("Add", op("Mul", diff, q_tt), op("Mul", two, qp_t)))
        pqp = op("Div", op("Div", op("Add", pqp, step), one_d), one_d)
        qp = op("Div", op("Add", qp, op("Mul", diff, op("Gather", q_in, const(t, np.int64), axis=1))), one_d)
        p = op("Div", p, one_d)
    p_out = op("Where", done, p_in, p)
    going = op("Cast", op("ReduceMax", op("Cast", op("Not", done), to=TensorProto.INT64), keepdims=0),
               to=TensorProto.BOOL)
    outs = [going, p_out, op("Identity", done), op("Identity", q_in), op("Identity", d_in)]
    elem = TensorProto.DOUBLE if em.double else TensorProto.FLOAT
    kinds = [TensorProto.BOOL, elem, TensorProto.BOOL, elem, elem]
    body = helper.make_graph(
        nodes, em.name("libsvm_coupling"),
        [helper.make_tensor_value_info(it, TensorProto.INT64, []),
         helper.make_tensor_value_info(cond_in, TensorProto.BOOL, [])]
        + [helper.make_tensor_value_info(v, kind, None) for v, kind in zip((p_in, done_in, q_in, d_in), kinds[1:])],
        [helper.make_tensor_value_info(going, TensorProto.BOOL, [])]
        + [helper.make_tensor_value_info(v, kind, None) for v, kind in zip(outs[1:], kinds[1:])])
    results = [em.name(h) for h in ("proba", "doneo", "qo", "dgo")]
    em.container.nodes.append(helper.make_node(
        "Loop", [em.const(np.array(max(100, k)), dtype=np.int64), em.const(np.array(True), dtype=np.bool_),
                 p0, done0, big_q, diag], results, name=em.name("libsvm_pairwise_coupling"), body=body))
    em.container.node_domain_version_pair_sets.add(("", opset))
    return results[0]
