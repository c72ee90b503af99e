"""The only module of portable that imports skl2onnx.

skl2onnx keeps its converters, shape calculators, parsers and class-to-alias map in module-level dicts. portable
puts its own converters there (`registry.SKLEARN_CONVERTERS`) **for the duration of one conversion** and puts
skl2onnx's own back afterwards (`installed()`), under a lock, so a user's `skl2onnx.to_onnx(...)` in the same
process computes exactly what it computes in a process that never imported portable.

What else lives here: the input types of a conversion (from `SklearnModel.signature`), the ZipMap-off options,
the outputs declared for portable's converters (from the signature's output specs), and the helpers that
meta-estimator parsers use to parse an inner estimator or to add a step of their own.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ...formats.sklearn import SklearnModel, frame_consumer, output_specs, walk
from .emit import Emitter
from .registry import Spec, UseSkl2onnx, load_all, spec_for

_LOCK = threading.RLock()
_ORIGINAL: dict[type, Any] = {}  # during a conversion: skl2onnx's own converter of a class portable replaces
_CONVERSION: list[str] = []  # during a conversion: its float dtype (numbers computed from string inputs use it)


# -- one conversion -----------------------------------------------------------------------------------------

def convert(model: SklearnModel, dtype: str, target_opset: int) -> Any:
    """`skl2onnx.convert_sklearn` of the model with portable's converters installed for this call only."""
    import skl2onnx

    consumer = _check_frame_consumer(model)
    for est in walk(model.estimator):
        spec = spec_for(est)
        if spec is not None and spec.style == "check":
            spec.func(est)
    with installed():
        if consumer is not None:
            _install_frame_parser(consumer, FrameCodes(model, dtype))
        from . import multioutput

        multioutput.install(model.estimator)
        _CONVERSION.append(dtype)
        try:
            return skl2onnx.convert_sklearn(model.estimator, initial_types=initial_types(model, dtype),
                                            options=no_zipmap_options(model.estimator),
                                            target_opset=target_opset)
        finally:
            _CONVERSION.pop()


def _check_frame_consumer(model: SklearnModel) -> Any:
    """String or category columns must reach a ColumnTransformer, or a boosting model that encodes pandas
    `category` columns itself (`SklearnModel.categories`): that one gets a step turning each such column into
    its category code (`frame_codes`). Returns that model, or None."""
    if not any(s.is_string for s in model.signature.inputs) or model.signature.input_names == ["X"]:
        return None
    est = frame_consumer(model.estimator)
    if hasattr(est, "transformers_") or _members_encode(est):
        return None
    strings = {s.name for s in model.signature.inputs if s.is_string}
    if strings and strings <= set(getattr(model, "categories", {})):
        return est
    raise UnsupportedModelError(
        f"{type(est).__name__} was fitted directly on a DataFrame with string columns "
        f"({', '.join(sorted(strings - set(getattr(model, 'categories', {}))))}), which it cannot encode itself; "
        "make them pandas `category` columns (HistGradientBoosting(categorical_features='from_dtype'), LightGBM, "
        "XGBoost(enable_categorical=True)) or put a ColumnTransformer with an OrdinalEncoder (or OneHotEncoder) "
        "before it")


def _members_encode(est: Any) -> bool:
    """A voting or stacking ensemble each of whose members starts with a ColumnTransformer (a pipeline per member,
    each with its own preprocessing), or a CalibratedClassifierCV each of whose folds' bases does: every member
    reads the DataFrame's columns by name."""
    members = [e for e in getattr(est, "estimators_", None) or [] if not isinstance(e, str)]
    if type(est).__name__ == "CalibratedClassifierCV":  # each fold's base (a pipeline, calibration.py parses it)
        members = [cc.estimator for cc in getattr(est, "calibrated_classifiers_", None) or []]
        return bool(members) and all(hasattr(frame_consumer(e), "transformers_") for e in members)
    return type(est).__name__ in ("VotingClassifier", "VotingRegressor", "StackingClassifier",
                                  "StackingRegressor") and bool(members) and \
        all(hasattr(frame_consumer(e), "transformers_") for e in members)


class FrameCodes:
    """What `frame_codes` needs: the model's input columns, the categories of the encoded ones, the dtype."""

    def __init__(self, model: SklearnModel, dtype: str) -> None:
        self.names = model.signature.input_names
        self.categories = dict(model.categories)
        self.dtype = dtype


def frame_codes(em: Emitter, frame: FrameCodes) -> list[Any]:
    """One float matrix from the DataFrame's columns: a category column becomes its code (the position of the
    value among the fitted categories, NaN when missing or unknown, as pandas' `cat.codes` read by the library),
    a numeric column its value."""
    from onnx import TensorProto

    to = TensorProto.DOUBLE if frame.dtype == "float64" else TensorProto.FLOAT
    fdt = np.float64 if frame.dtype == "float64" else np.float32
    cols = []
    for inp, name in zip(em.operator.inputs, frame.names):
        cats = frame.categories.get(name)
        if cats is None:
            cols.append(em.node("Cast", [inp.full_name], "num", to=to))
            continue
        hit = em.node("Cast", [em.node("Equal", [inp.full_name, em.const(np.asarray(cats)[None, :])], "eq")],
                      "hit", to=to)  # [N, C]
        code = em.node("MatMul", [hit, em.const(np.arange(len(cats), dtype=fdt)[:, None], dtype=fdt)], "code")
        found = em.node("Greater", [em.reduce("ReduceSum", hit, 1, keepdims=1), em.const(0.0, dtype=fdt)],
                        "found")
        cols.append(em.node("Where", [found, code, em.const(np.nan, dtype=fdt)], "codes"))
    return [em.node("Concat", cols, "frame", axis=1) if len(cols) > 1 else cols[0]]


def _install_frame_parser(consumer: Any, frame: FrameCodes) -> None:
    """Parse `consumer` on the coded matrix instead of the raw columns (for this conversion)."""
    from skl2onnx._parse import _parse_sklearn_simple_model, sklearn_parsers_map

    cls = type(consumer)
    original = sklearn_parsers_map.get(cls)

    def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        if model is consumer and len(inputs) == len(frame.names):
            inputs = step(scope, frame, inputs, frame_codes, [("codes", frame.dtype, [None, len(frame.names)])])
        if original is not None:
            return original(scope, model, inputs, custom_parsers=custom_parsers)
        return _parse_sklearn_simple_model(scope, model, inputs, custom_parsers=custom_parsers)

    sklearn_parsers_map[cls] = parse


def version() -> str:
    import skl2onnx

    return skl2onnx.__version__


@contextmanager
def installed() -> Iterator[None]:
    """portable's converters registered with skl2onnx inside the block; skl2onnx's own state restored after."""
    with _LOCK:
        saved = _snapshot()
        try:
            _install()
            yield
        finally:
            _restore(saved)
            _ORIGINAL.clear()


def _state() -> tuple[dict[Any, Any], ...]:
    from skl2onnx import _parse, _supported_operators
    from skl2onnx.common import _registration

    return (_registration._converter_pool, _registration._shape_calculator_pool,
            _supported_operators.sklearn_operator_name_map, _parse.sklearn_parsers_map)


def _snapshot() -> tuple[Any, ...]:
    from skl2onnx.common import utils_sklearn

    return tuple(dict(d) for d in _state()) + (utils_sklearn.enumerate_model_names,)


def _restore(saved: tuple[Any, ...]) -> None:
    from skl2onnx.common import utils_sklearn

    for live, old in zip(_state(), saved):
        live.clear()
        live.update(old)
    utils_sklearn.enumerate_model_names = saved[-1]


def _install() -> None:
    from skl2onnx._supported_operators import sklearn_operator_name_map

    for spec in load_all().values():
        if spec.library != "sklearn" and spec.library not in sys.modules:
            continue  # XGBoost & co are imported by the user's model, never by portable
        cls = spec.cls()
        if cls is None:
            continue
        alias = sklearn_operator_name_map.get(cls)
        if alias is not None and cls not in _ORIGINAL:
            _ORIGINAL[cls] = _converter(alias)
        if spec.style != "check":
            {"emitter": _install_emitter, "skl2onnx": _install_skl2onnx, "parser": _install_parser}[spec.style](
                spec, cls, alias)
    _fix_voting()
    _fix_column_transformer()
    _fix_transformer_clusterers()
    _fix_normalizer_chains()
    _skip_tree_internals()


def original_converter(cls: type) -> Any:
    """skl2onnx's own converter for `cls` during a conversion (for converters that wrap it)."""
    conv = _ORIGINAL.get(cls)
    if conv is None:
        raise UnsupportedModelError(f"skl2onnx has no converter for {cls.__name__}")
    return conv


def _converter(alias: str) -> Any:
    from skl2onnx.common._registration import get_converter

    try:
        return get_converter(alias)
    except Exception:
        return None


def _allowed_options(conv: Any) -> Any:
    try:
        return conv.get_allowed_options() if conv is not None else None
    except Exception:
        return None


def _install_emitter(spec: Spec, cls: type, alias: str | None) -> None:
    from skl2onnx import update_registered_converter

    # classifiers accept (and ignore: portable's parser never adds ZipMap) the options skl2onnx's pipeline
    # handling hands to a pipeline's last step
    options = {"zipmap": [True, False, "columns"], "nocl": [True, False]} if spec.kind == "classifier" else None
    options = _allowed_options(_ORIGINAL.get(cls)) or options
    if spec.kind == "classifier" and options is not None and "zipmap" not in options:
        options = {**options, "zipmap": [True, False, "columns"]}
    update_registered_converter(cls, f"Portable{spec.name}", _no_shape, _convert, parser=_parser,
                                options=options)


def _install_skl2onnx(spec: Spec, cls: type, alias: str | None) -> None:
    from skl2onnx.common._registration import get_shape_calculator, register_converter, register_shape_calculator

    if alias is None:
        return
    register_converter(alias, spec.func, overwrite=True, options=_allowed_options(_ORIGINAL.get(cls)))
    register_shape_calculator(alias, _float_outputs_follow_input(get_shape_calculator(alias)), overwrite=True)


def _install_parser(spec: Spec, cls: type, alias: str | None) -> None:
    from skl2onnx._parse import update_registered_parser
    from skl2onnx.common._registration import register_converter
    from sklearn.base import ClassifierMixin, RegressorMixin

    update_registered_parser(cls, spec.func)
    if not issubclass(cls, ClassifierMixin) and (spec.kind != "meta" or issubclass(cls, RegressorMixin)):
        return
    # a pipeline hands its last step zipmap options (portable's parsers add no ZipMap anyway), which skl2onnx
    # checks against the class's registered converter; a meta-estimator (RFE, a search) is a classifier when
    # its inner estimator is one, without deriving from ClassifierMixin
    zipmap = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
    conv = _converter(alias) if alias else None
    options = _allowed_options(conv) or {}
    if isinstance(options, str):  # "passthrough" (a search): skl2onnx hands the options to the inner estimator
        return
    if conv is not None and "zipmap" not in options:
        register_converter(alias, getattr(conv, "_fct", conv), overwrite=True, options={**options, **zipmap})
    elif alias is None:
        from skl2onnx import update_registered_converter

        update_registered_converter(cls, f"Portable{spec.name}", _no_shape, _parsed_only, parser=spec.func,
                                    options=zipmap)


def _parsed_only(scope: Any, operator: Any, container: Any) -> None:
    raise UnsupportedModelError(f"{type(operator.raw_operator).__name__} is converted by its parser only")


# -- portable's emitter-style converters inside skl2onnx ---------------------------------------------------------

def _no_shape(operator: Any) -> None:
    """The parser already declared types and shapes."""


def tensor_type(dtype: str, shape: list[Any], like: Any) -> Any:
    """A skl2onnx tensor type: `dtype` "float" follows `like`'s float type (float32 or float64)."""
    from skl2onnx.common.data_types import (BooleanTensorType, DoubleTensorType, FloatTensorType, Int64TensorType,
                                            StringTensorType)

    if dtype in ("float32", "float64"):
        return (DoubleTensorType if dtype == "float64" else FloatTensorType)(shape)
    if dtype == "float":
        if not isinstance(like.type, (DoubleTensorType, FloatTensorType)):  # numbers made from strings
            return (DoubleTensorType if _CONVERSION[-1:] == ["float64"] else FloatTensorType)(shape)
        return (DoubleTensorType if isinstance(like.type, DoubleTensorType) else FloatTensorType)(shape)
    return {"str": StringTensorType, "int64": Int64TensorType, "bool": BooleanTensorType}[dtype](shape)


def declared_outputs(est: Any, like: Any) -> list[tuple[str, Any]]:
    """The outputs of `est` as `SklearnModel`'s signature gives them, as skl2onnx types."""
    out = []
    for spec in output_specs(est):
        if spec.name == "label":
            typ = tensor_type("str" if spec.dtype == "str" else "int64", [None], like)
        elif type(est).__name__ == "SimpleImputer" and type(like.type).__name__ == "StringTensorType":
            typ = tensor_type("str", list(spec.shape), like)  # strings in, strings out
        elif type(est).__name__ == "MissingIndicator":  # a mask; scikit-learn returns bool too
            typ = tensor_type("bool", list(spec.shape), like)
        elif type(est).__name__ == "OneHotEncoder" and not _portable_one_hot(est):  # skl2onnx's float32 node
            typ = tensor_type("float32", list(spec.shape), like)
        else:
            typ = tensor_type("float", list(spec.shape), like)
        out.append((spec.name, typ))
    return out


def _portable_one_hot(est: Any) -> bool:
    from .encoders import portable_handles

    return portable_handles(est)


def _parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    from skl2onnx._supported_operators import _get_sklearn_operator_name

    op = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    op.inputs = inputs
    for name, typ in declared_outputs(model, inputs[0]):
        op.outputs.append(scope.declare_local_variable(name, typ))
    return op.outputs


def _convert(scope: Any, operator: Any, container: Any) -> None:
    est = operator.raw_operator
    spec = spec_for(est)
    em = Emitter(scope, operator, container)
    try:
        if spec is None:
            raise UseSkl2onnx
        outs = spec.func(em, est)
    except UseSkl2onnx:
        original = _ORIGINAL.get(type(est))
        if original is None:
            raise UnsupportedModelError(f"portable cannot convert this configuration of {type(est).__name__}") \
                from None
        original(scope, operator, container)
        return
    for i, name in enumerate(outs[: len(operator.outputs)]):
        if name is not None:
            em.output(i, name)


# -- helpers for meta-estimator parsers -------------------------------------------------------------------------

def parse(scope: Any, est: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    """The outputs of an inner estimator, parsed by skl2onnx (portable's converters included), without ZipMap."""
    from skl2onnx._parse import _parse_sklearn

    for name, opts in no_zipmap_options(est).items():
        scope.add_options(name, opts)
    return _parse_sklearn(scope, est, inputs, custom_parsers=custom_parsers)


_STEPS: dict[str, Callable[[Emitter, Any], list[Any]]] = {}


def step(scope: Any, model: Any, inputs: list[Any], func: Callable[[Emitter, Any], list[Any]],
         outputs: list[tuple[str, str, list[Any]]]) -> list[Any]:
    """Add an operator computed by `func(em, model)`; `outputs` are (name, dtype, shape) with dtype
    "float" (the input's float type), "int64", "str" or "bool"."""
    from skl2onnx.common._registration import register_converter, register_shape_calculator

    alias = f"PortableStep_{func.__module__.rsplit('.', 1)[1]}_{func.__name__}"
    if alias not in _STEPS:  # registered for this conversion; installed() restores skl2onnx's pools after it
        _STEPS[alias] = func
    register_converter(alias, _convert_step, overwrite=True)
    register_shape_calculator(alias, _no_shape, overwrite=True)
    op = scope.declare_local_operator(alias, model)
    op.inputs = inputs
    for name, dtype, shape in outputs:
        op.outputs.append(scope.declare_local_variable(name, tensor_type(dtype, shape, inputs[0])))
    return op.outputs


def _convert_step(scope: Any, operator: Any, container: Any) -> None:
    em = Emitter(scope, operator, container)
    outs = _STEPS[operator.type](em, operator.raw_operator)
    for i, name in enumerate(outs[: len(operator.outputs)]):
        if name is not None:
            em.output(i, name)


# -- inputs and options ---------------------------------------------------------------------------------------

def initial_types(model: SklearnModel, dtype: str) -> list[tuple[str, Any]]:
    """skl2onnx's initial types from the model's signature (a string column stays a string input, an integer
    column an int64 input)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType

    num = DoubleTensorType if dtype == "float64" else FloatTensorType
    out = []
    for spec in model.signature.inputs:
        t = StringTensorType if spec.is_string else Int64TensorType if spec.dtype == "int64" else num
        out.append((spec.name, t([None, *spec.shape[1:]])))
    return out


def no_zipmap_options(est: Any) -> dict[int, dict[str, Any]]:
    """`zipmap=False` for every nested classifier whose converter knows the option (portable wants arrays)."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.base import is_classifier

    opts: dict[int, dict[str, Any]] = {}
    for e in walk(est):
        if not is_classifier(e):
            continue
        alias = sklearn_operator_name_map.get(type(e))
        allowed = _allowed_options(_converter(alias)) if alias else None
        if allowed and "zipmap" in allowed:
            opts[id(e)] = {"zipmap": False}
    return opts


# -- fixes to skl2onnx's own converters, for one conversion ------------------------------------------------------

def _fix_voting() -> None:
    """skl2onnx 1.20's VotingClassifier and VotingRegressor, given what scikit-learn accepts.

    - `weights` as a list (the usual way to write them): skl2onnx calls `weights.sum()`, an AttributeError;
    - a `'drop'` estimator with weights: skl2onnx pairs `weights[i]` with the i-th *fitted* estimator, so every
      weight after the dropped one was shifted; scikit-learn averages with the weights of the estimators kept
      (`_weights_not_none`);
    - VotingClassifier(flatten_transform=True), an option of `transform` only, is refused.
    The converter is handed a shallow copy with the weights as an array aligned with `estimators_`.
    """
    import copy

    from skl2onnx.common._registration import register_converter

    def fixed(original: Any) -> Any:
        def convert(scope: Any, operator: Any, container: Any) -> None:
            est = operator.raw_operator
            clone = copy.copy(est)
            if getattr(est, "flatten_transform", None):
                clone.flatten_transform = False
            if est.weights is not None:
                clone.weights = np.asarray(est._weights_not_none, dtype=np.float64)
            operator.raw_operator = clone
            try:
                original(scope, operator, container)
            finally:
                operator.raw_operator = est
        return convert

    for alias in ("SklearnVotingClassifier", "SklearnVotingRegressor"):
        original = _converter(alias)
        if original is not None:
            register_converter(alias, fixed(original), overwrite=True, options=_allowed_options(original))


def _fix_column_transformer() -> None:
    """A ColumnTransformer whose columns skl2onnx 1.20 cannot find among the graph's inputs, given its fitted
    column indices instead.

    A DataFrame of numbers only is one `X` matrix (DESIGN §4), but a ColumnTransformer fitted on it names its
    columns (`["fare", "age"]`), or picks them by a boolean mask or a callable: skl2onnx looks the names up among
    the graph's inputs and fails ("Unable to find column name 'fare' among names ['X']"). The fitted
    `_transformer_to_input_indices` says which columns of its input each transformer reads; the parser is handed
    a shallow copy whose `transformers_` hold those indices. Where every name is an input (one input per
    DataFrame column), skl2onnx's own lookup is kept.
    """
    import copy

    from skl2onnx._parse import sklearn_parsers_map
    from sklearn.compose import ColumnTransformer

    from ...formats.sklearn import positional_columns

    original = sklearn_parsers_map.get(ColumnTransformer)
    if original is None:
        return

    def by_index(model: Any, inputs: list[Any]) -> Any:
        known = {v.raw_name for v in inputs} | {v.onnx_name for v in inputs}
        indices = getattr(model, "_transformer_to_input_indices", None)
        if indices is None:
            return model

        def found(cols: Any) -> bool:  # by position, or by names that are all graph inputs
            if positional_columns(cols):
                return True
            if isinstance(cols, str):
                return cols in known
            if callable(cols):
                return False
            arr = np.asarray(cols)
            return arr.dtype != bool and all(isinstance(c, str) and c in known for c in arr.tolist())

        if all(found(cols) for _, _, cols in model.transformers_):
            return model
        clone = copy.copy(model)
        clone.transformers_ = [(name, trans, [int(i) for i in indices.get(name, [])])
                               for name, trans, _ in model.transformers_]
        return clone

    def parse(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
        return original(scope, by_index(model, inputs), inputs, custom_parsers=custom_parsers)

    sklearn_parsers_map[ColumnTransformer] = parse


# clusterers whose converter's second output is their `transform` (the distances to their centres)
_DISTANCE_CLUSTERERS = ("KMeans", "MiniBatchKMeans", "BisectingKMeans", "Birch")


class _ClusterDistances:
    """A clusterer in a transformer's place: what the next step (or the union's or column transformer's
    concatenation) reads is its `transform`, the distances to its centres, not its label."""

    def __init__(self, est: Any) -> None:
        self.est = est

    def __sklearn_tags__(self) -> Any:  # skl2onnx's pipeline parser asks whether each step is a classifier
        return self.est.__sklearn_tags__()


def _cluster_distances(em: Emitter, wrapped: _ClusterDistances) -> list[Any]:
    spec = spec_for(wrapped.est)
    if spec is None:
        raise UnsupportedModelError(f"portable cannot convert {type(wrapped.est).__name__}")
    return [spec.func(em, wrapped.est)[1]]


class _DiscriminantProjection(_ClusterDistances):
    """LinearDiscriminantAnalysis as a feature step: the next step reads its `transform`, the projection on its
    discriminant axes (skl2onnx 1.20 handed it the predicted label: a pipeline LDA -> k-NN failed onnx.checker)."""

    def __sklearn_tags__(self) -> Any:  # a transformer here: the pipeline gives it no classifier options
        from sklearn.base import BaseEstimator

        return BaseEstimator().__sklearn_tags__()


def _discriminant_projection(em: Emitter, wrapped: _DiscriminantProjection) -> list[Any]:
    """`LinearDiscriminantAnalysis.transform`: (X - xbar_) @ scalings_ (svd solver) or X @ scalings_ (eigen), its
    first `_max_components` columns."""
    from .common import affine

    est = wrapped.est
    if est.solver not in ("svd", "eigen"):
        raise UnsupportedModelError(f"LinearDiscriminantAnalysis(solver='{est.solver}') has no transform")
    k = est._max_components
    w = np.asarray(est.scalings_, np.float64)[:, :k]
    b = -np.asarray(est.xbar_, np.float64) @ w if est.solver == "svd" else np.zeros(k)
    return [affine(em, em.input(), w.astype(em.dtype), b[None, :].astype(em.dtype))]


def _fix_transformer_clusterers() -> None:
    """KMeans (and MiniBatchKMeans, BisectingKMeans, Birch) as a feature step: a Pipeline step before the last,
    a FeatureUnion or ColumnTransformer member. skl2onnx 1.20 handed the next step both of the clusterer's
    outputs (label and distances: "at most 1 input(s) is(are) supported but we got 2"), or the union its label
    (an invalid Concat); scikit-learn passes on `transform`, the distances. Those containers are parsed from a
    shallow copy in which each such clusterer is a `_ClusterDistances`, one output: the distances."""
    import copy

    from skl2onnx._parse import sklearn_parsers_map
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    def wrap(est: Any) -> Any:  # est where its output feeds another step: a clusterer's distances
        if type(est).__name__ in _DISTANCE_CLUSTERERS and hasattr(est, "transform"):
            return _ClusterDistances(est)
        if type(est).__name__ == "LinearDiscriminantAnalysis" and hasattr(est, "scalings_"):
            return _DiscriminantProjection(est)
        if isinstance(est, Pipeline) and est.steps:  # a pipeline ending in a clusterer, inside another
            last = wrap(est.steps[-1][1])
            if last is not est.steps[-1][1]:
                clone = copy.copy(est)
                clone.steps = est.steps[:-1] + [(est.steps[-1][0], last)]
                return clone
        return est

    def fixed(model: Any, attr: str, at: int, last: bool = True) -> Any:
        """`model` with each estimator (position `at` of each entry of its list `attr`; not the last entry's
        unless `last`) wrapped: a shallow copy, or `model` itself when nothing changes."""
        items = list(getattr(model, attr))
        new = [(*e[:at], wrap(e[at]), *e[at + 1:]) if last or i < len(items) - 1 else e for i, e in enumerate(items)]
        if all(a[at] is b[at] for a, b in zip(new, items)):
            return model
        clone = copy.copy(model)
        setattr(clone, attr, new)
        return clone

    def parse_distances(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        est = model.est
        width = len(est.subcluster_centers_ if type(est).__name__ == "Birch" else est.cluster_centers_)
        return step(scope, model, inputs, _cluster_distances, [("distances", "float", [None, width])])

    def parse_projection(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        return step(scope, model, inputs, _discriminant_projection,
                    [("projected", "float", [None, model.est._max_components])])

    sklearn_parsers_map[_ClusterDistances] = parse_distances
    sklearn_parsers_map[_DiscriminantProjection] = parse_projection
    for cls, fix in ((Pipeline, lambda m: fixed(_without_identity_steps(m), "steps", 1, last=False)),
                     (FeatureUnion, lambda m: fixed(m, "transformer_list", 1)),
                     (ColumnTransformer, lambda m: fixed(m, "transformers_", 1))):
        original = sklearn_parsers_map.get(cls)
        if original is None:
            continue

        def parse(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None, _o: Any = original,
                  _f: Any = fix) -> Any:
            return _o(scope, _f(model), inputs, custom_parsers=custom_parsers)

        sklearn_parsers_map[cls] = parse


def _without_identity_steps(pipe: Any) -> Any:
    """A Pipeline without its "passthrough" (or None) steps, which scikit-learn skips: skl2onnx 1.20 asked the
    string for its tags and failed ("'str' object has no attribute '__sklearn_tags__'"). A shallow copy, or the
    pipeline itself when it has none; a pipeline of nothing but such steps is left to skl2onnx's own message."""
    import copy

    kept = [(name, est) for name, est in pipe.steps if est is not None and not (isinstance(est, str)
                                                                                 and est == "passthrough")]
    if len(kept) == len(pipe.steps) or not kept:
        return pipe
    clone = copy.copy(pipe)
    clone.steps = kept
    return clone


def _fix_normalizer_chains() -> None:
    """A Normalizer after elementwise scalers in a Pipeline: those steps become one
    `preprocessing.ScaledNormalizer`, computed in float64 as scikit-learn computes them (a centring scaler in
    float32 before x / ||x|| gave rows near its centre any direction). Parsed from a shallow copy of the
    pipeline."""
    import copy

    from skl2onnx._parse import sklearn_parsers_map
    from sklearn.pipeline import Pipeline

    from .preprocessing import ScaledNormalizer, chains_scalers, scaled_normalizer

    def fixed(model: Any) -> Any:
        steps = list(model.steps)
        out: list[Any] = []
        for name, est in steps:
            if type(est).__name__ == "Normalizer" and type(est).__module__.startswith("sklearn."):
                k = len(out)
                while k > 0 and chains_scalers(out[k - 1][1]):
                    k -= 1
                if k < len(out):
                    out[k:] = [(name, ScaledNormalizer([e for _, e in out[k:]], est))]
                    continue
            out.append((name, est))
        if len(out) == len(steps):
            return model
        clone = copy.copy(model)
        clone.steps = out
        return clone

    def parse_scaled(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
        width = getattr(model.normalizer, "n_features_in_", None)
        return step(scope, model, inputs, scaled_normalizer, [("normalized", "float", [None, width])])

    sklearn_parsers_map[ScaledNormalizer] = parse_scaled
    original = sklearn_parsers_map.get(Pipeline)
    if original is None:
        return

    def parse(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None, _o: Any = original) -> Any:
        return _o(scope, fixed(model), inputs, custom_parsers=custom_parsers)

    sklearn_parsers_map[Pipeline] = parse


def _skip_tree_internals() -> None:
    """Stop skl2onnx 1.20's option processing from walking into tree ensembles.

    `skl2onnx.common.utils_sklearn.enumerate_model_names` reads every public fitted attribute of every nested
    estimator, twice per conversion; on a forest that recomputes `estimators_samples_` (every tree's bootstrap
    indices) and `feature_importances_` and walks every tree: about 1 s for 300 trees, more than the whole
    conversion. Options never address the trees inside an ensemble, so the walk stops at the ensemble.
    """
    from skl2onnx.common import utils_sklearn

    original = utils_sklearn.enumerate_model_names
    trees = {s.name for s in load_all().values() if s.style == "skl2onnx" and s.library == "sklearn"}

    def enumerate_model_names(model: Any, prefix: str = "", short: bool = True) -> Any:
        if type(model).__name__ in trees and type(model).__module__.startswith("sklearn."):
            yield (prefix, model)
            return
        yield from original(model, prefix, short)

    utils_sklearn.enumerate_model_names = enumerate_model_names


def _float_outputs_follow_input(calc: Any) -> Any:
    """skl2onnx's shape calculators declare float outputs for double input: make them follow the input."""
    def shape(operator: Any) -> None:
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        calc(operator)
        n_out = getattr(operator.raw_operator, "n_outputs_", 1)
        if n_out > 1 and not hasattr(operator.raw_operator, "classes_"):  # multi-output regressors
            operator.outputs[0].type.shape = [None, n_out]
        if isinstance(operator.inputs[0].type, DoubleTensorType):
            for out in operator.outputs:
                if isinstance(out.type, FloatTensorType):
                    out.type = DoubleTensorType(out.type.shape)

    return shape


def class_table(classes: np.ndarray) -> tuple[np.ndarray, str]:
    """Classes as an ONNX-storable table and the label dtype ("str" or "int64")."""
    cls = np.asarray(classes)
    return (cls.astype(str), "str") if cls.dtype.kind in "OUS" else (cls.astype(np.int64), "int64")
