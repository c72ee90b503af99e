"""CalibratedClassifierCV over linear bases (LinearSVC, LogisticRegression, RidgeClassifier, SGD...) and over
bases calibrated by their probabilities (naive Bayes, trees, forests, k-NN, networks: no decision_function).

skl2onnx 1.20 fails on a binary base with a one-column decision_function (ArrayFeatureExtractor out of range in
onnxruntime) and calibrates isotonic over LogisticRegression's probabilities instead of its decision_function
(wrong by 0.06). portable computes what `_CalibratedClassifier.predict_proba` computes: the base's
decision_function, one sigmoid or isotonic calibrator per class, normalization, and the mean over the
cross-validation folds. skl2onnx 1.20 also read an isotonic calibrator at the threshold nearest to a base's
probability instead of interpolating between thresholds (CalibratedClassifierCV(GaussianNB(), method="isotonic")
off by 0.04). Other bases (non-linear ones with a decision_function) go to skl2onnx's converter.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .common import linear_coefs, linear_scores
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .simple import isotonic


@sklearn_converter("sklearn.calibration.CalibratedClassifierCV", kind="classifier", replaces=True)
def calibrated_classifier(em: Emitter, est: Any) -> list[Any]:
    if not all(linear_coefs(cc.estimator) is not None or _by_proba(cc.estimator)
               for cc in est.calibrated_classifiers_):
        raise UseSkl2onnx
    x = em.input()
    n_class = len(est.classes_)
    folds = [_fold(em, x, cc, n_class) for cc in est.calibrated_classifiers_]
    proba = folds[0]
    for f in folds[1:]:
        proba = em.node("Add", [proba, f], "sum")
    if len(folds) > 1:
        proba = em.node("Div", [proba, em.const(float(len(folds)))], "mean")
    em.label(proba, est.classes_)
    return [None, proba]


def _fold(em: Emitter, x: str, cc: Any, n_class: int) -> str:
    if cc.method not in ("sigmoid", "isotonic"):
        raise UnsupportedModelError(f"CalibratedClassifierCV(method='{cc.method}') is not supported "
                                    "(sigmoid, isotonic)")
    if linear_coefs(cc.estimator) is not None:
        w, b = linear_coefs(cc.estimator)
        scores = linear_scores(em, x, w, b[None, :], "dec")
    else:  # the base's probabilities: of the second class only for two classes (_get_response_values)
        scores = _base_probabilities(em, cc.estimator)
        if n_class == 2:
            scores = em.node("Gather", [scores, em.const([1], dtype=np.int64)], "p1", axis=1)
    inner = list(np.searchsorted(np.asarray(cc.classes), np.asarray(cc.estimator.classes_)))
    cols: dict[int, str] = {}
    for j, cal in enumerate(cc.calibrators):
        col = em.node("Gather", [scores, em.const([j], dtype=np.int64)], "col", axis=1)
        k = 1 if n_class == 2 else int(inner[j])
        if cc.method == "sigmoid":  # _SigmoidCalibration: 1 / (1 + exp(a f + b))
            z = em.node("Add", [em.node("Mul", [col, em.const(float(cal.a_))], "af"), em.const(float(cal.b_))],
                        "afb")
            cols[k] = em.node("Sigmoid", [em.node("Neg", [z], "nz")], "p")
        else:
            cols[k] = isotonic(em, col, cal)
    if n_class == 2:
        return em.node("Concat", [em.node("Sub", [em.const([[1.0]]), cols[1]], "p0"), cols[1]], "proba", axis=1)
    zero = em.node("Mul", [cols[next(iter(cols))], em.const(0.0)], "zero")
    p = em.node("Concat", [cols.get(k, zero) for k in range(n_class)], "pk", axis=1)
    den = em.reduce_sum(p, 1, keepdims=1)
    nonzero = em.node("Not", [em.node("Equal", [den, em.const(0.0)], "dz")], "dnz")
    safe = em.node("Where", [nonzero, den, em.const(1.0)], "safe")
    return em.node("Where", [nonzero, em.node("Div", [p, safe], "norm"), em.const(1.0 / n_class)], "proba")


def _by_proba(base: Any) -> bool:
    """scikit-learn calibrates `decision_function` when the base has one, else `predict_proba`."""
    return not hasattr(base, "decision_function") and hasattr(base, "predict_proba")


def _base_probabilities(em: Emitter, base: Any) -> str:
    """The fold's base classifier as an operator of its own (its converter: portable's or skl2onnx's) on this
    converter's input; its probabilities."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    from .bridge import declared_outputs

    alias = sklearn_operator_name_map.get(type(base))
    if alias is None:
        raise UseSkl2onnx
    op = em.scope.declare_local_operator(alias, base)
    op.inputs.append(em.operator.inputs[0])
    for name, typ in declared_outputs(base, em.operator.inputs[0]):
        op.outputs.append(em.scope.declare_local_variable(f"calibrated_base_{name}", typ))
    return op.outputs[1].full_name
