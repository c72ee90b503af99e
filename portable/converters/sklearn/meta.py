"""Meta-estimators whose prediction is an inner estimator's, plus a step of their own.

Searches (`best_estimator_`), FrozenEstimator (`estimator`, as it is), self-training, RFE/RFECV (a column gather
first), the threshold classifiers (a threshold on the inner probabilities) and TransformedTargetRegressor (the
inverse target transform after). They are parsers: skl2onnx parses the inner estimator (portable's converters
included) through `bridge.parse`, and `bridge.step` adds the step of their own.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ...formats.sklearn import output_specs
from .common import affine, affine_map
from .emit import Emitter
from .registry import sklearn_converter


def _bridge() -> Any:
    from . import bridge

    return bridge


@sklearn_converter("sklearn.model_selection.GridSearchCV", "sklearn.model_selection.RandomizedSearchCV",
                   "sklearn.model_selection.HalvingGridSearchCV", "sklearn.model_selection.HalvingRandomSearchCV",
                   kind="meta", style="parser")
def search(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """A fitted search predicts with `best_estimator_` (refit=True); without it there is nothing to convert."""
    if not hasattr(model, "best_estimator_"):
        raise UnsupportedModelError(f"{type(model).__name__}(refit=False) has no best_estimator_ to convert")
    return _bridge().parse(scope, model.best_estimator_, inputs, custom_parsers)


@sklearn_converter("sklearn.semi_supervised.SelfTrainingClassifier", kind="meta", style="parser")
def self_training(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    return _bridge().parse(scope, model.estimator_, inputs, custom_parsers)


@sklearn_converter("sklearn.frozen.FrozenEstimator", kind="meta", style="parser")
def frozen(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """FrozenEstimator predicts, transforms and scores with the fitted estimator it wraps (`estimator`), as it is:
    the conversion is the wrapped estimator's."""
    return _bridge().parse(scope, model.estimator, inputs, custom_parsers)


THRESHOLDS = ("sklearn.model_selection.FixedThresholdClassifier",
              "sklearn.model_selection.TunedThresholdClassifierCV")


@sklearn_converter(*THRESHOLDS, kind="meta", style="parser")
def threshold_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    inner = model.estimator_
    method = model._get_response_method()
    if not hasattr(inner, "predict_proba") or (method != "predict_proba" and not (
            isinstance(method, list) and method and method[0] == "predict_proba")):
        raise UnsupportedModelError(f"{type(model).__name__} converts when it thresholds predict_proba; this one "
                                    f"uses {method}")
    b = _bridge()
    outs = b.parse(scope, inner, inputs, custom_parsers)
    label = "str" if np.asarray(model.classes_).dtype.kind in "OUS" else "int64"
    return b.step(scope, model, [outs[1]], _threshold, [("label", label, [None]),
                                                        ("probabilities", "float", [None, 2])])


def _threshold(em: Emitter, est: Any) -> list[Any]:
    proba = em.operator.inputs[0].full_name
    classes = np.asarray(est.classes_)
    pos_label = est.pos_label if type(est).__name__ == "FixedThresholdClassifier" else \
        est._curve_scorer._get_pos_label()
    if pos_label is None:
        pos, order = 1, np.array([0, 1])
    else:
        pos = int(np.flatnonzero(classes == pos_label)[0])
        order = np.array([int(np.flatnonzero(classes != pos_label)[0]), pos])
    threshold = est.best_threshold_ if hasattr(est, "best_threshold_") else \
        (0.5 if est.threshold == "auto" else float(est.threshold))
    score = em.node("Gather", [proba, em.const([pos], dtype=np.int64)], "pos", axis=1)
    hit = em.node("GreaterOrEqual", [score, em.const(float(threshold))], "hit")
    idx = em.node("Reshape", [em.node("Cast", [hit], "hiti", to=7), em.const([-1], dtype=np.int64)], "hit1")
    mapped = em.node("Gather", [em.const(order, dtype=np.int64), idx], "mapped", axis=0)
    table = _class_table(em, classes)
    return [em.node("Gather", [table, mapped], "label", axis=0), proba]


@sklearn_converter("sklearn.feature_selection.RFE", "sklearn.feature_selection.RFECV", kind="meta", style="parser")
def rfe(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """RFE/RFECV predict with `estimator_` on the selected columns: a column gather, then the estimator."""
    b = _bridge()
    keep = int(np.sum(model.support_))
    cols = b.step(scope, model, inputs, _select_columns, [("selected", "float", [None, keep])])
    return b.parse(scope, model.estimator_, cols, custom_parsers)


def _class_table(em: Emitter, classes: Any) -> str:
    """The classes as a constant to Gather labels from (strings, or int64: `bridge.class_table`)."""
    table, kind = _bridge().class_table(np.asarray(classes))
    return em.const(table) if kind == "str" else em.const(table, dtype=np.int64)


def _select_columns(em: Emitter, est: Any) -> list[Any]:
    keep = np.flatnonzero(est.support_).astype(np.int64)
    return [em.node("Gather", [em.input(), em.const(keep, dtype=np.int64)], "sel", axis=1)]


@sklearn_converter("sklearn.compose.TransformedTargetRegressor", kind="meta", style="parser")
def transformed_target(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """TransformedTargetRegressor: the regressor, then the target transformer's inverse."""
    b = _bridge()
    outs = b.parse(scope, model.regressor_, inputs, custom_parsers)
    n = model._training_dim if model._training_dim > 1 else 1
    return b.step(scope, model, [outs[0]], _inverse_target, [("variable", "float", [None, n])])


def _inverse_target(em: Emitter, est: Any) -> list[Any]:
    from .functions import apply

    n = est._training_dim if est._training_dim > 1 else 1
    y = em.node("Reshape", [em.input(), em.const([-1, n], dtype=np.int64)], "y2")
    trans = est.transformer_
    if type(trans).__name__ == "FunctionTransformer":
        return [apply(em, y, trans.inverse_func, trans.inv_kw_args,
                      owner="TransformedTargetRegressor's inverse_func")]
    a, b = affine_map(lambda z: np.asarray(trans.inverse_transform(z)).reshape(len(z), -1), n,
                      what=f"the inverse of {type(trans).__name__}")
    return [affine(em, y, a, b)]


@sklearn_converter("sklearn.multioutput.MultiOutputClassifier", kind="meta", style="parser")
def multi_output_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """One classifier per target: `label_k` and `probabilities_k` for each (`SklearnModel`'s signature)."""
    b = _bridge()
    outs: list[Any] = []
    for est in model.estimators_:
        o = b.parse(scope, est, inputs, custom_parsers)
        outs.extend(o[:2] if hasattr(model, "predict_proba") else o[:1])
    return outs


@sklearn_converter("sklearn.multioutput.ClassifierChain", kind="meta", style="parser")
def classifier_chain(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """Each classifier of the chain sees X and the labels predicted before it (as numbers); outputs `label_k`
    per target and `probabilities` `[N, T]` (each target's probability of its class index 1, as scikit-learn)."""
    if getattr(model, "chain_method_", "predict") != "predict":
        raise UnsupportedModelError(f"ClassifierChain(chain_method='{model.chain_method_}') is not supported "
                                    "(chain_method='predict')")
    if any(np.asarray(c).dtype.kind in "OUS" for c in model.classes_):
        raise UnsupportedModelError("ClassifierChain with string classes: the chain feeds labels as numbers")
    b = _bridge()
    labels: list[Any] = []
    probas: list[Any] = []
    for est in model.estimators_:
        x = inputs if not labels else b.step(scope, model, inputs + labels, _augment,
                                             [("xaug", "float", [None, None])])
        o = b.parse(scope, est, x, custom_parsers)
        labels.append(o[0])
        probas.append(o[1])
    pos = [list(model.order_).index(k) for k in range(len(model.order_))]
    # fresh variables in target order (skl2onnx lists graph outputs in the order variables were declared)
    outs = [b.step(scope, model, [labels[p]], _identity, [("label", "int64", [None])])[0] for p in pos]
    if hasattr(model, "predict_proba") and all(len(c) == 2 for c in model.classes_):
        outs += b.step(scope, model, [probas[p] for p in pos], _column_one,
                       [("probabilities", "float", [None, len(pos)])])
    return outs


def _augment(em: Emitter, est: Any) -> list[Any]:
    ins = em.operator.inputs
    to = 11 if em.double else 1
    cols = [em.node("Reshape", [em.node("Cast", [v.full_name], "lf", to=to), em.const([-1, 1], dtype=np.int64)],
                    "l2") for v in ins[1:]]
    return [em.node("Concat", [em.input(), *cols], "xaug", axis=1)]


def _identity(em: Emitter, est: Any) -> list[Any]:
    return [em.operator.inputs[0].full_name]


def _column_one(em: Emitter, est: Any) -> list[Any]:
    cols = [em.node("Gather", [v.full_name, em.const([1], dtype=np.int64)], "p1", axis=1)
            for v in em.operator.inputs]
    return [em.node("Concat", cols, "proba", axis=1) if len(cols) > 1 else cols[0]]


@sklearn_converter("sklearn.ensemble.StackingClassifier", kind="meta", style="parser")
def stacking_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """StackingClassifier as `_concatenate_predictions` builds its final estimator's input: per member the column(s)
    of its `stack_method_` (predict_proba: the probabilities, the last column only for two classes;
    decision_function: the scores; predict: the predicted label code), then the input itself with
    `passthrough`; the final estimator's label code mapped back to the classes.

    skl2onnx 1.20 read every member's probabilities or raw scores and dropped the first probability column of a
    binary stack only when every member used predict_proba: a binary stack of a LogisticRegression and a
    LinearSVC, or any stack_method='predict', handed its final estimator other columns than scikit-learn's."""
    b = _bridge()
    members = []
    for est, method in zip(model.estimators_, model.stack_method_):
        if isinstance(est, str):  # "drop"
            continue
        if method == "decision_function" and hasattr(est, "predict_proba"):
            raise UnsupportedModelError(
                f"StackingClassifier member {type(est).__name__} with stack_method='decision_function': its "
                "converter outputs probabilities; use stack_method='auto' or 'predict_proba'")
        if method not in ("predict_proba", "decision_function", "predict"):
            raise UnsupportedModelError(f"StackingClassifier(stack_method='{method}') is not supported")
        outs = b.parse(scope, est, inputs, custom_parsers)
        members.append(b.step(scope, _Member(model, method), [outs[0] if method == "predict" else outs[1]],
                              _member_columns, [("stacked", _float(b), [None, None])])[0])
    if model.passthrough:
        if len(inputs) != 1:
            raise UnsupportedModelError("StackingClassifier(passthrough=True) on several input columns")
        members.append(inputs[0])
    stacked = b.step(scope, model, members, _concat_columns, [("stacked", _float(b), [None, None])])
    final = b.parse(scope, model.final_estimator_, stacked, custom_parsers)
    second = output_specs(model)[1]  # probabilities, or the final estimator's scores
    label = "str" if np.asarray(model.classes_).dtype.kind in "OUS" else "int64"
    decode = _label_from_proba if second.name == "probabilities" and _predicts_by_proba(model.final_estimator_) \
        else _decode_label
    return b.step(scope, model, [final[0], final[1]], decode,
                  [("label", label, [None]), (second.name, "float", list(second.shape))])


def _predicts_by_proba(final: Any) -> bool:
    """A final estimator whose predict is the argmax of its predict_proba (forests, naive Bayes, neighbours...),
    or a logistic regression, whose probabilities are monotone in its decision function: the stack's label is
    then read from its probabilities (as skl2onnx does, which lets a certificate read the label from them). Other
    finals (an SVC with probability=True, whose Platt probabilities can disagree with its predict) give their own
    label."""
    from ...formats.sklearn_hints import _BY_PROBA

    name = type(final).__name__
    return name in _BY_PROBA or name == "LogisticRegression"


class _Member:
    """What `_member_columns` needs of one stacking member."""

    def __init__(self, stack: Any, method: str) -> None:
        self.method = method
        self.binary = len(stack.classes_) == 2

    def __sklearn_tags__(self) -> Any:  # skl2onnx asks an operator's raw model whether it is a classifier
        from sklearn.base import BaseEstimator

        return BaseEstimator().__sklearn_tags__()


def _float(b: Any) -> str:
    """The conversion's float type: a stack's columns are in it whatever its members output (skl2onnx's
    probabilities are float32 in some float64 graphs)."""
    return "float64" if b._CONVERSION[-1:] == ["float64"] else "float32"


def _to(em: Emitter) -> int:
    """The ONNX type code of the step's first declared output."""
    return 11 if type(em.operator.outputs[0].type).__name__ == "DoubleTensorType" else 1


def _cast(em: Emitter, v: Any) -> str:
    """`v` in the step's output float type (no node when it already is: the certificate of a stack's members
    looks for the last tensor that computes a member's output, and an identity Cast would be that one)."""
    same = type(v.type).__name__ == type(em.operator.outputs[0].type).__name__
    return v.full_name if same else em.node("Cast", [v.full_name], "x", to=_to(em))


def _member_columns(em: Emitter, member: _Member) -> list[Any]:
    x = _cast(em, em.operator.inputs[0])
    if member.method == "predict":  # the label code (the members were fitted on the encoded target)
        return [em.node("Reshape", [x, em.const([-1, 1], dtype=np.int64)], "c")]
    if not member.binary:  # [N, K] probabilities or scores
        return [x]
    # two classes: the probability of the second, or the one score ([N], [N, 1], or [N, 2] as [-s, s]); no
    # node that keeps the member's whole output (a stack's certificate finds the members' last such tensor)
    if len(em.operator.inputs[0].type.shape) != 2:
        return [em.node("Reshape", [x, em.const([-1, 1], dtype=np.int64)], "x2")]
    return [em.node("Gather", [x, em.const([-1], dtype=np.int64)], "last", axis=1)]


def _concat_columns(em: Emitter, est: Any) -> list[Any]:
    cols = [_cast(em, v) for v in em.operator.inputs]
    return [em.node("Concat", cols, "stacked", axis=1) if len(cols) > 1 else cols[0]]


def _decode_label(em: Emitter, est: Any) -> list[Any]:
    code = em.node("Reshape", [em.operator.inputs[0].full_name, em.const([-1], dtype=np.int64)], "code")
    table = _class_table(em, est.classes_)
    return [em.node("Gather", [table, em.node("Cast", [code], "ci", to=7)], "label", axis=0),
            em.operator.inputs[1].full_name]


@sklearn_converter("sklearn.ensemble.StackingRegressor", kind="meta", style="parser")
def stacking_regressor(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """StackingRegressor: each member's prediction as one column, the input itself with `passthrough`, then the
    final estimator. A parser, so that members reading a DataFrame's columns by name (a pipeline each, with its
    own ColumnTransformer) get all the columns: skl2onnx 1.20's converter takes one input."""
    b = _bridge()
    cols = []
    for est in model.estimators_:
        if isinstance(est, str):
            continue
        out = b.parse(scope, est, inputs, custom_parsers)[0]
        cols.append(b.step(scope, model, [out], _one_column, [("pred", _float(b), [None, 1])])[0])
    if model.passthrough:
        if len(inputs) != 1:
            raise UnsupportedModelError("StackingRegressor(passthrough=True) on several input columns")
        cols.append(inputs[0])
    stacked = b.step(scope, model, cols, _concat_columns, [("stacked", _float(b), [None, None])])
    return b.parse(scope, model.final_estimator_, stacked, custom_parsers)


def _one_column(em: Emitter, est: Any) -> list[Any]:
    return [em.node("Reshape", [_cast(em, em.operator.inputs[0]), em.const([-1, 1], dtype=np.int64)], "col")]


def _label_from_proba(em: Emitter, est: Any) -> list[Any]:
    proba = em.operator.inputs[1].full_name
    idx = em.node("ArgMax", [proba], "code", axis=1, keepdims=0)
    table = _class_table(em, est.classes_)
    return [em.node("Gather", [table, idx], "label", axis=0), proba]
