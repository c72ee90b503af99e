"""CalibratedClassifierCV over linear bases (LinearSVC, LogisticRegression, RidgeClassifier, SGD...) and over
bases calibrated by their probabilities (naive Bayes, trees, forests, k-NN, networks: no decision_function).

skl2onnx 1.20 fails on a binary base with a one-column decision_function (ArrayFeatureExtractor out of range in
onnxruntime) and calibrates isotonic over LogisticRegression's probabilities instead of its decision_function
(wrong by 0.06). portable computes what `_CalibratedClassifier.predict_proba` computes: the base's
decision_function, one sigmoid or isotonic calibrator per class, normalization, and the mean over the
cross-validation folds (a base's decision_function: a linear model's, a Pipeline ending in one, or the `scores`
of a base whose converter gives exactly it, such as an SVC). skl2onnx 1.20 also read an isotonic calibrator at the threshold nearest to a base's
probability instead of interpolating between thresholds (CalibratedClassifierCV(GaussianNB(), method="isotonic")
off by 0.04). Other bases go to skl2onnx's converter.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .common import linear_coefs, linear_scores
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .simple import isotonic


@sklearn_converter("sklearn.calibration.CalibratedClassifierCV", kind="classifier", style="parser", replaces=True)
def calibrated_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """Each fold's calibrated probabilities (`_fold`), then their mean and its label. A parser, so that a fold's
    base may be a Pipeline ending in a linear model (its steps before the model parsed by their converters, the
    model's decision_function and the calibrators here): skl2onnx 1.20's converter, which took those, failed in
    onnxruntime on a binary one (ArrayFeatureExtractor index out of range) and, over a StandardScaler +
    LogisticRegression, gave probabilities off by 0.49. Other bases (non-linear ones with a decision_function)
    are left to skl2onnx's parser and converter."""
    from skl2onnx._parse import _parse_sklearn_classifier

    from .bridge import parse, step

    n_class = len(model.classes_)
    if not all(_linear_pipeline(cc.estimator) or linear_coefs(cc.estimator) is not None or _by_proba(cc.estimator)
               or _by_scores(cc.estimator, n_class) for cc in model.calibrated_classifiers_):
        return _parse_sklearn_classifier(scope, model, inputs, custom_parsers)
    folds = []
    for cc in model.calibrated_classifiers_:
        base, feeds = cc.estimator, inputs
        if _linear_pipeline(base):
            from sklearn.pipeline import Pipeline

            feeds = parse(scope, Pipeline(base.steps[:-1]), inputs, custom_parsers)[:1]
            base = base.steps[-1][1]
        elif len(inputs) != 1:
            raise UnsupportedModelError("CalibratedClassifierCV over several input columns needs a Pipeline base "
                                        "that reads them")
        folds.append(step(scope, _Fold(cc, base, n_class), feeds, _fold_step,
                          [("proba", "float", [None, n_class])])[0])
    label = "str" if np.asarray(model.classes_).dtype.kind in "OUS" else "int64"
    return step(scope, model, folds, _mean, [("label", label, [None]), ("probabilities", "float", [None, n_class])])


def _linear_pipeline(base: Any) -> bool:
    """A fitted Pipeline of transforms ending in a linear model (its decision_function is linear in them)."""
    steps = getattr(base, "steps", None)
    return bool(steps) and len(steps) > 1 and linear_coefs(steps[-1][1]) is not None and \
        all(s not in (None, "passthrough") for _, s in steps[:-1])


class _Fold:
    """One fold: its calibrated classifier, the base whose scores it calibrates (a Pipeline's last step), and the
    number of classes."""

    def __init__(self, cc: Any, base: Any, n_class: int) -> None:
        self.cc, self.base, self.n_class = cc, base, n_class

    def __sklearn_tags__(self) -> Any:  # skl2onnx asks an operator's raw model whether it is a classifier
        from sklearn.base import BaseEstimator

        return BaseEstimator().__sklearn_tags__()


def _fold_step(em: Emitter, fold: _Fold) -> list[Any]:
    return [_fold(em, em.input(), fold.cc, fold.n_class, fold.base)]


def _mean(em: Emitter, model: Any) -> list[Any]:
    folds = [v.full_name for v in em.operator.inputs]
    proba = folds[0]
    for f in folds[1:]:
        proba = em.node("Add", [proba, f], "sum")
    if len(folds) > 1:
        proba = em.node("Div", [proba, em.const(float(len(folds)))], "mean")
    em.label(proba, model.classes_)
    return [None, proba]


def _fold(em: Emitter, x: str, cc: Any, n_class: int, base: Any) -> str:
    if cc.method not in ("sigmoid", "isotonic"):
        raise UnsupportedModelError(f"CalibratedClassifierCV(method='{cc.method}') is not supported "
                                    "(sigmoid, isotonic)")
    if linear_coefs(base) is not None:
        w, b = linear_coefs(base)
        scores = linear_scores(em, x, w, b[None, :], "dec")
    else:  # the base's scores, or its probabilities: of the second class only for two classes
        scores = _base_probabilities(em, base)
        if n_class == 2 and _by_proba(base):
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


def _by_scores(base: Any, n_class: int) -> bool:
    """A base calibrated by its decision_function whose converter outputs exactly it as `scores` (one column for
    two classes; an SVC's, skl2onnx 1.20's calibration of which failed in onnxruntime on two classes)."""
    from ...formats.sklearn import output_specs

    if not hasattr(base, "decision_function"):
        return False
    try:
        specs = output_specs(base)
    except Exception:
        return False
    width = 1 if n_class == 2 else n_class
    return len(specs) > 1 and specs[1].name == "scores" and tuple(specs[1].shape[1:]) == (width,)


def _base_probabilities(em: Emitter, base: Any) -> str:
    """The fold's base classifier as an operator of its own (its converter: portable's or skl2onnx's) on this
    converter's input; its second output (probabilities, or the scores of `_by_scores`)."""
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
