"""Linear classifiers in the input's dtype: without predict_proba (LinearSVC, RidgeClassifier[CV]), SGDClassifier, LinearDiscriminantAnalysis."""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import expit, linear_scores
from .emit import Emitter
from .registry import sklearn_converter


def _linear_scores(em: Emitter, est: Any, x: str) -> str:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    inter = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).reshape(1, -1)
    return linear_scores(em, x, coef.T, inter)  # float64 sums for many inputs in float32 graphs


@sklearn_converter("sklearn.svm.LinearSVC", "sklearn.linear_model.RidgeClassifier", "sklearn.linear_model.RidgeClassifierCV",
       kind="classifier", replaces=True)
def linear_decision_classifier(em: Emitter, est: Any) -> list[Any]:
    """Linear classifiers without predict_proba: scores = X W + b; label by sign (binary) or argmax."""
    s = _linear_scores(em, est, em.input())
    binary = len(est.classes_) == 2
    em.label(s, est.classes_, binary_raw=s if binary else None, strict=True)
    return [None, s]


@sklearn_converter("sklearn.linear_model.SGDClassifier", kind="classifier", replaces=True,
                   note="the label follows decision_function, as predict does (log_loss, modified_huber)")
def sgd_probability_classifier(em: Emitter, est: Any) -> list[Any]:
    """SGDClassifier: with predict_proba (loss log_loss or modified_huber, one-vs-rest) or without (the others).

    scikit-learn's predict takes the argmax of the decision scores (binary: score > 0) while its probabilities
    saturate: a sigmoid rounds to 1.0, modified_huber's (clip(d, -1, 1) + 1) / 2 is 1 for every d >= 1, so
    several classes tie and an argmax of the probabilities (skl2onnx's label) picks the first of them. Here the
    label comes from the scores, and the probabilities are scikit-learn's (`_predict_proba_lr`, and for
    modified_huber rows of zeros become uniform)."""
    if est.loss not in ("log_loss", "modified_huber"):  # no predict_proba: the scores, as LinearSVC's
        return linear_decision_classifier(em, est)
    s = _linear_scores(em, est, em.input())
    k = len(est.classes_)
    binary = k == 2
    if est.loss == "log_loss":
        p = expit(em, s)
    else:
        p = em.node("Div", [em.node("Add", [em.node("Clip", [s, em.const(-1.0), em.const(1.0)], "clip"),
                                            em.const(1.0)], "p2"), em.const(2.0)], "p")
    if binary:
        proba = em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p], "p0"), p], "proba", axis=1)
    else:
        total = em.reduce_sum(p, 1, keepdims=1)
        if est.loss == "log_loss":
            proba = em.node("Div", [p, total], "proba")
        else:  # all-zero rows (every score <= -1) are uniform, as in scikit-learn
            zero = em.node("Equal", [total, em.const(0.0)], "zero")
            safe = em.node("Where", [zero, em.const(1.0), total], "safe")
            proba = em.node("Where", [zero, em.const(1.0 / k), em.node("Div", [p, safe], "ratio")], "proba")
    em.label(s, est.classes_, binary_raw=s if binary else None, strict=True)
    return [None, proba]


# skl2onnx 1.20 writes LinearDiscriminantAnalysis as a linear classifier whose binary case is a softmax over
# [-d, d], i.e. expit(2 d): probabilities off by up to 0.15 on rows inside the training data's box.
@sklearn_converter("sklearn.discriminant_analysis.LinearDiscriminantAnalysis", kind="classifier", replaces=True)
def linear_discriminant(em: Emitter, est: Any) -> list[Any]:
    """LinearDiscriminantAnalysis as scikit-learn predicts: d = X coef_ + intercept_ (decision_function); two
    classes: [1 - expit(d), expit(d)], label d > 0; more: softmax(d) (its maximum subtracted), label argmax."""
    s = _linear_scores(em, est, em.input())
    binary = len(est.classes_) == 2
    # Sigmoid and Softmax operators (Softmax subtracts the maximum): what the certifier reads (issue 19)
    if binary:  # [expit(-d), expit(d)]: scikit-learn's [1 - expit(d), expit(d)] within a rounding
        s = em.node("Concat", [em.node("Neg", [s], "negs"), s], "both", axis=1)  # argmax: 1 exactly when d > 0
        proba = em.node("Sigmoid", [s], "proba")
    else:
        proba = em.node("Softmax", [s], "proba", axis=1)
    em.label(s, est.classes_)
    return [None, proba]
