"""Meta-estimators that predict with one fitted inner estimator: their conversion is the inner one's.

skl2onnx 1.20 handles GridSearchCV this way but not RandomizedSearchCV, the successive-halving searches,
SelfTrainingClassifier, or the threshold classifiers (which add a threshold on the inner probabilities).
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ....errors import UnsupportedModelError

DELEGATES: dict[str, str] = {
    "sklearn.model_selection.RandomizedSearchCV": "best_estimator_",
    "sklearn.model_selection.HalvingGridSearchCV": "best_estimator_",
    "sklearn.model_selection.HalvingRandomSearchCV": "best_estimator_",
    "sklearn.semi_supervised.SelfTrainingClassifier": "estimator_",
}
THRESHOLDS = ("sklearn.model_selection.FixedThresholdClassifier",
              "sklearn.model_selection.TunedThresholdClassifierCV")
NAMES = [p.rsplit(".", 1)[1] for p in (*DELEGATES, *THRESHOLDS)] + ["VotingClassifier", "RFE", "RFECV",
                                                                    "TransformedTargetRegressor"]
REGISTERED: list[bool] = []


def _no_zipmap(scope: Any, inner: Any) -> None:
    """portable never wants ZipMap: tell the inner classifier's converter so when it knows the option."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter

    alias = sklearn_operator_name_map.get(type(inner))
    try:
        allowed = get_converter(alias).get_allowed_options() or {} if alias else {}
    except Exception:
        allowed = {}
    if "zipmap" in allowed:
        scope.add_options(id(inner), {"zipmap": False})


def _delegate(attr: str) -> Any:
    def parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        from skl2onnx._parse import _parse_sklearn

        inner = getattr(model, attr)
        _no_zipmap(scope, inner)
        return _parse_sklearn(scope, inner, inputs, custom_parsers=custom_parsers)
    return parser


def _threshold_parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    from skl2onnx._parse import _parse_sklearn

    inner = model.estimator_
    method = model._get_response_method()
    if not hasattr(inner, "predict_proba") or (method != "predict_proba" and not (
            isinstance(method, list) and method and method[0] == "predict_proba")):
        raise UnsupportedModelError(f"{type(model).__name__} converts when it thresholds predict_proba; this one "
                                    f"uses {method}")
    _no_zipmap(scope, inner)
    outs = _parse_sklearn(scope, inner, inputs, custom_parsers=custom_parsers)
    op = scope.declare_local_operator("PortableThreshold", model)
    op.inputs = [outs[1]]
    from .estimators import _label_type

    op.outputs.append(scope.declare_local_variable("label", _label_type(model)))
    op.outputs.append(scope.declare_local_variable("probabilities", type(outs[1].type)([None, 2])))
    return op.outputs


def _threshold_convert(scope: Any, operator: Any, container: Any) -> None:
    from ..trees import Emitter

    est = operator.raw_operator
    em = Emitter(scope, operator, container)
    proba = operator.inputs[0].full_name
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
    table = em.const(classes.astype(str)) if classes.dtype.kind in "OUS" else \
        em.const(classes.astype(np.int64), dtype=np.int64)
    em.node("Gather", [table, mapped], out=operator.outputs[0].full_name, axis=0)
    em.output(1, proba)


def _rfe_parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """RFE/RFECV predict with `estimator_` on the selected columns: a column gather, then the estimator."""
    from skl2onnx._parse import _parse_sklearn

    keep = np.flatnonzero(model.support_)
    op = scope.declare_local_operator("PortableSelectColumns", model)
    op.inputs = inputs
    op.outputs.append(scope.declare_local_variable("selected", type(inputs[0].type)([None, len(keep)])))
    _no_zipmap(scope, model.estimator_)
    return _parse_sklearn(scope, model.estimator_, op.outputs, custom_parsers=custom_parsers)


def _select_columns(scope: Any, operator: Any, container: Any) -> None:
    from ..trees import Emitter

    em = Emitter(scope, operator, container)
    keep = np.flatnonzero(operator.raw_operator.support_).astype(np.int64)
    em.node("Gather", [operator.inputs[0].full_name, em.const(keep, dtype=np.int64)],
            out=operator.outputs[0].full_name, axis=1)


# numpy functions a TransformedTargetRegressor may use as inverse_func, and their ONNX operators
_UFUNCS = {"exp": "Exp", "log": "Log", "sqrt": "Sqrt", "tanh": "Tanh", "abs": "Abs"}


def _ttr_parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """TransformedTargetRegressor: the regressor, then the target transformer's inverse."""
    from skl2onnx._parse import _parse_sklearn

    outs = _parse_sklearn(scope, model.regressor_, inputs, custom_parsers=custom_parsers)
    op = scope.declare_local_operator("PortableInverseTarget", model)
    op.inputs = [outs[0]]
    op.outputs.append(scope.declare_local_variable("variable", type(outs[0].type)([None, None])))
    return op.outputs


def _inverse_target(scope: Any, operator: Any, container: Any) -> None:
    from ..trees import Emitter
    from .estimators import _affine, affine_map

    est = operator.raw_operator
    em = Emitter(scope, operator, container)
    y = em.node("Reshape", [operator.inputs[0].full_name,
                            em.const([-1, est._training_dim if est._training_dim > 1 else 1], dtype=np.int64)],
                "y2")
    trans = est.transformer_
    inverse = getattr(trans, "inverse_func", None)
    if type(trans).__name__ == "FunctionTransformer" and inverse is not None:
        name = getattr(inverse, "__name__", "")
        if name == "expm1":
            out = em.node("Sub", [em.node("Exp", [y], "e"), em.const(1.0)], "inv")
        elif name == "log1p":
            out = em.node("Log", [em.node("Add", [y, em.const(1.0)], "y1")], "inv")
        elif name in _UFUNCS:
            out = em.node(_UFUNCS[name], [y], "inv")
        else:
            raise UnsupportedModelError(f"TransformedTargetRegressor with inverse_func={name or inverse!r} has no "
                                        "ONNX form (supported: affine transformers, exp, expm1, log, log1p, sqrt)")
    else:
        n = est._training_dim if est._training_dim > 1 else 1
        a, b = affine_map(lambda z: np.asarray(trans.inverse_transform(z)).reshape(len(z), -1), n,
                          what=f"the inverse of {type(trans).__name__}")
        out = _affine(em, y, a, b)
    em.output(0, out)


def _voting_without_flatten(original: Any) -> Any:
    """skl2onnx 1.20 refuses VotingClassifier(flatten_transform=True), an option of `transform` only."""
    import copy

    def convert(scope: Any, operator: Any, container: Any) -> None:
        est = operator.raw_operator
        if not getattr(est, "flatten_transform", False):
            return original(scope, operator, container)
        clone = copy.copy(est)
        clone.flatten_transform = False
        operator.raw_operator = clone
        try:
            original(scope, operator, container)
        finally:
            operator.raw_operator = est
    convert._portable = True  # type: ignore[attr-defined]
    return convert


def register() -> None:
    """Register the delegating parsers (and the threshold converter) with skl2onnx."""
    from skl2onnx.common._registration import get_converter, register_converter

    voting = get_converter("SklearnVotingClassifier")
    if not getattr(voting, "_portable", False):
        register_converter("SklearnVotingClassifier", _voting_without_flatten(voting), overwrite=True,
                           options=voting.get_allowed_options())
    from skl2onnx import update_registered_converter
    from skl2onnx._parse import update_registered_parser
    from skl2onnx.common._registration import register_shape_calculator

    for path, attr in DELEGATES.items():
        cls = _class(path)
        if cls is not None:
            update_registered_parser(cls, _delegate(attr))
    for alias, func, parser, path in (
            ("PortableSelectColumns", _select_columns, _rfe_parser, "sklearn.feature_selection.RFE"),
            ("PortableSelectColumns", _select_columns, _rfe_parser, "sklearn.feature_selection.RFECV"),
            ("PortableInverseTarget", _inverse_target, _ttr_parser, "sklearn.compose.TransformedTargetRegressor")):
        register_converter(alias, func, overwrite=True)
        register_shape_calculator(alias, lambda op: None, overwrite=True)
        cls = _class(path)
        if cls is not None:
            update_registered_parser(cls, parser)
    register_converter("PortableThreshold", _threshold_convert, overwrite=True)
    register_shape_calculator("PortableThreshold", lambda op: None, overwrite=True)
    for path in THRESHOLDS:
        cls = _class(path)
        if cls is not None:
            update_registered_converter(cls, "PortableThreshold", lambda op: None, _threshold_convert,
                                        parser=_threshold_parser)
    REGISTERED.append(True)


def _class(path: str) -> Any:
    module, name = path.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
