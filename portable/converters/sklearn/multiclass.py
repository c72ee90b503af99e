"""Multiclass/multioutput meta-estimators: OneVsOne, OneVsRest (without predict_proba, or over logistic members),
OutputCode, RegressorChain."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .common import affine, expit, linear_coefs, linear_scores, rows, sqdist


@sklearn_converter("sklearn.multiclass.OneVsOneClassifier", kind="classifier", replaces=True)
def one_vs_one(em: Emitter, est: Any) -> list[Any]:
    """One-vs-one over binary linear models or kernel SVCs: votes plus squashed summed confidences
    (`_ovr_decision_function`). skl2onnx's graph for kernel SVC members failed onnx.checker."""
    from .svm import binary_svc_score

    if getattr(est, "pairwise_indices_", None) is not None:
        raise UseSkl2onnx
    parts = [linear_coefs(e) for e in est.estimators_]
    if all(p is not None and p[0].shape[1] == 1 for p in parts):
        w = np.concatenate([p[0] for p in parts], axis=1)
        b = np.concatenate([p[1] for p in parts])
        dec = linear_scores(em, em.input(), w, b[None, :], "dec")
    else:
        cols = []
        for e, p in zip(est.estimators_, parts):
            if p is not None and p[0].shape[1] == 1:
                cols.append(linear_scores(em, em.input(), p[0], p[1][None, :], "dec"))
            elif type(e).__name__ in ("SVC", "NuSVC") and len(getattr(e, "classes_", ())) == 2:
                cols.append(binary_svc_score(em, e))
            else:
                raise UseSkl2onnx
        dec = em.node("Concat", cols, "dec", axis=1) if len(cols) > 1 else cols[0]
    k = len(est.classes_)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    vi = np.zeros((len(pairs), k))
    vj = np.zeros((len(pairs), k))
    for p, (i, j) in enumerate(pairs):
        vi[p, i] = vj[p, j] = 1.0
    won = em.node("Cast", [em.node("Greater", [dec, em.const(0.0)], "gt")], "won", to=11 if em.double else 1)
    votes = em.node("Add", [em.node("MatMul", [won, em.const(vj - vi)], "wv"), em.const(vi.sum(0)[None, :])],
                    "votes")
    conf = em.node("MatMul", [dec, em.const(vj - vi)], "conf")
    squash = em.node("Div", [conf, em.node("Mul", [em.node("Add", [em.node("Abs", [conf], "ac"), em.const(1.0)],
                                                           "ac1"), em.const(3.0)], "den")], "squash")
    scores = em.node("Add", [votes, squash], "ovo")
    if k == 2:
        col = em.node("Gather", [scores, em.const([1], dtype=np.int64)], "y1", axis=1)
        em.label(col, est.classes_, binary_raw=col, strict=True)
        return [None, col]
    em.label(scores, est.classes_)
    return [None, scores]


@sklearn_converter("sklearn.multiclass.OneVsRestClassifier", kind="classifier", replaces=True)
def one_vs_rest(em: Emitter, est: Any) -> list[Any]:
    """One-vs-rest over binary models without predict_proba (kernel SVC, hinge SGD, ...): the decision scores
    and scikit-learn's label (binary: the score > 0; else the class with the largest score, the first of tied
    ones). skl2onnx's graph for them failed onnx.checker (LpNormalization). With predict_proba: skl2onnx's."""
    from .svm import binary_svc_score

    if getattr(est.label_binarizer_, "y_type_", "") not in ("binary", "multiclass"):
        raise UseSkl2onnx
    if hasattr(est, "predict_proba"):
        return _one_vs_rest_logistic(em, est)
    x = em.input()
    cols = []
    for e in est.estimators_:
        lin = linear_coefs(e)
        if lin is not None and lin[0].shape[1] == 1:
            cols.append(linear_scores(em, x, lin[0], lin[1][None, :], "dec"))
        elif type(e).__name__ in ("SVC", "NuSVC") and len(getattr(e, "classes_", ())) == 2:
            cols.append(binary_svc_score(em, e))
        elif type(e).__name__ == "_ConstantPredictor":  # a class present in every row or none: a constant score
            cols.append(rows(em, x, np.asarray(e.y_, dtype=np.float64).reshape(1)))
        else:
            raise UnsupportedModelError(f"OneVsRestClassifier over {type(e).__name__} without predict_proba: "
                                        "portable converts linear models and kernel SVCs there")
    scores = em.node("Concat", cols, "ovr", axis=1) if len(cols) > 1 else cols[0]
    classes = np.asarray(est.classes_)
    if len(cols) == 1:
        em.label(scores, classes, binary_raw=scores, strict=True)
        return [None, scores]
    em.label(scores, classes)  # scikit-learn 1.9 walks the estimators in reverse so that the first tied one wins
    return [None, scores]


def _logistic_member(e: Any) -> bool:
    """A binary member whose predict_proba is [1 - expit(d), expit(d)] of its linear decision d."""
    name = type(e).__name__
    logistic = name == "LogisticRegression" or (name == "SGDClassifier" and getattr(e, "loss", "") == "log_loss")
    lin = linear_coefs(e) if logistic else None
    return lin is not None and lin[0].shape[1] == 1 and len(getattr(e, "classes_", ())) == 2


def _one_vs_rest_logistic(em: Emitter, est: Any) -> list[Any]:
    """One-vs-rest over logistic members (LogisticRegression, SGDClassifier(log_loss)) with predict_proba.

    scikit-learn's predict takes the argmax of the members' decision scores (binary: score > 0), and
    predict_proba their sigmoids, divided by their sum. Far from the training data the sigmoids of two classes
    round to the same value while their scores still differ, so skl2onnx's label (the argmax of the
    probabilities) then picks the wrong class; here the label comes from the scores, as scikit-learn's does.
    Other members: skl2onnx's graph."""
    if not est.estimators_ or not all(_logistic_member(e) for e in est.estimators_):
        raise UseSkl2onnx
    parts = [linear_coefs(e) for e in est.estimators_]
    w = np.concatenate([q[0] for q in parts], axis=1)
    s = linear_scores(em, em.input(), w, np.concatenate([q[1] for q in parts])[None, :], "dec")
    classes = np.asarray(est.classes_)
    if len(parts) == 1:  # [1 - expit(s), expit(s)]
        p = expit(em, s)
        em.label(s, classes, binary_raw=s, strict=True)
        return [None, em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p], "p0"), p], "proba", axis=1)]
    # expit(s_i) / sum_j expit(s_j) = softmax_i(log expit(s)), log expit(s) = -softplus(-s): in float32 every
    # expit rounds to 0 below s = -88 (their ratio NaN) where scikit-learn's float64 ratio is finite
    # softplus(z) = relu(z) + log(1 + exp(-|z|)) (onnxruntime has no double Softplus; this form never overflows)
    z = em.node("Neg", [s], "negs")
    tail = em.node("Log", [em.node("Add", [em.const(1.0), em.node("Exp", [em.node("Neg", [em.node("Abs", [z], "az")],
                                                                                 "naz")], "e")], "e1")], "lg")
    logp = em.node("Neg", [em.node("Add", [em.node("Relu", [z], "rz"), tail], "sp")], "logp")
    em.label(s, classes)
    return [None, em.node("Softmax", [logp], "proba", axis=1)]


@sklearn_converter("sklearn.multiclass.OutputCodeClassifier", kind="classifier")
def output_code(em: Emitter, est: Any) -> list[Any]:
    """Error-correcting output codes over linear binary models: the class whose code word is nearest."""
    n_in = est.n_features_in_
    # a code column with one class only is fitted as a _ConstantPredictor, whose decision is that constant
    parts = [(np.zeros((n_in, 1)), np.asarray(e.y_, dtype=np.float64).reshape(1))
             if type(e).__name__ == "_ConstantPredictor" else linear_coefs(e) for e in est.estimators_]
    if any(p is None or p[0].shape[1] != 1 for p in parts):
        raise UnsupportedModelError("OutputCodeClassifier converts when its binary estimators are linear models "
                                    "with a decision_function")
    w = np.concatenate([p[0] for p in parts], axis=1)
    b = np.concatenate([p[1] for p in parts])
    y = affine(em, em.input(), w, b[None, :])
    d = sqdist(em, y, np.asarray(est.code_book_, dtype=np.float64))
    em.label(em.node("Neg", [d], "negd"), est.classes_)
    return [None]


@sklearn_converter("sklearn.multioutput.RegressorChain", kind="regressor")
def regressor_chain(em: Emitter, est: Any) -> list[Any]:
    """Each link sees the inputs and the previous links' predictions; linear links only."""
    x = em.input()
    preds: list[str] = []
    for e in est.estimators_:
        lin = linear_coefs(e)
        if lin is None:
            raise UnsupportedModelError("RegressorChain converts when its links are linear models "
                                        f"(coef_/intercept_); this one has {type(e).__name__}")
        aug = em.node("Concat", [x, *preds], "aug", axis=1) if preds else x
        preds.append(affine(em, aug, lin[0], lin[1][None, :]))
    chain = em.node("Concat", preds, "chain", axis=1) if len(preds) > 1 else preds[0]
    inv = np.argsort(np.asarray(est.order_))
    return [em.node("Gather", [chain, em.const(inv.astype(np.int64), dtype=np.int64)], "ordered", axis=1)]
