"""The `sklearn` format: a fitted scikit-learn estimator or pipeline in memory.

Its signature follows DESIGN §4: one input `X` `[N, F]`, or one input per column (`[N, 1]`) when the model was
fitted on a DataFrame with non-numeric columns; outputs `label` + `probabilities` (or `scores` when there is no
`predict_proba`) for classifiers, `label` (+ `scores` from `transform`) for clusterers, `variable` for regressors
and transformers. Running it calls scikit-learn itself, so it is the reference the checker compares against.
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import InputError, NotFittedError, PortableError, UnsupportedModelError
from ..model import Model, Origin, Signature, TensorSpec
from ..registry import LoadOptions, register_format


MISSING_STRING = ""  # how a missing value (NaN, None, pd.NA) is written in a string input


def is_estimator(obj: Any) -> bool:
    """True for scikit-learn estimators and objects that follow its API (fit + get_params)."""
    return (not isinstance(obj, (str, bytes, type)) and hasattr(obj, "fit") and hasattr(obj, "get_params")
            and not isinstance(obj, Model))


def _n_features_in(est: Any) -> int | None:
    """`est.n_features_in_`; for a Pipeline whose first steps are "passthrough" (or None), that of its first real
    step (scikit-learn's Pipeline asks its first step, the string, and has none)."""
    nf = getattr(est, "n_features_in_", None)
    if nf is None and isinstance(getattr(est, "steps", None), list):
        for _, step in est.steps:
            if step is not None and not (isinstance(step, str) and step == "passthrough"):
                return _n_features_in(step)
    return nf


def walk(est: Any) -> Iterator[Any]:
    """The estimator and every estimator nested in it (pipeline steps, column transformers, meta-estimators)."""
    seen: set[int] = set()
    stack = [est]
    while stack:
        e = stack.pop()
        if id(e) in seen or not is_estimator(e):
            continue
        seen.add(id(e))
        yield e
        for attr in ("steps", "transformers_", "transformer_list", "estimators_", "estimator_", "estimators"):
            val = getattr(e, attr, None)
            if isinstance(val, list):
                for item in val:
                    stack.append(item[1] if isinstance(item, tuple) else item)
        for val in _params(e):
            if is_estimator(val):
                stack.append(val)


_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


def _params(est: Any) -> list[Any]:
    """`est.get_params(deep=False).values()`. For classes that inherit scikit-learn's own `get_params`, the
    parameter names come from a per-class cache: `_get_param_names` inspects `__init__`'s signature on every
    call, which made walking a 300-tree forest cost ~0.2 s."""
    cls = type(est)
    from sklearn.base import BaseEstimator

    if getattr(cls, "get_params", None) is not BaseEstimator.get_params:
        return list(est.get_params(deep=False).values())
    names = _PARAM_NAMES.get(cls)
    if names is None:
        names = _PARAM_NAMES[cls] = tuple(cls._get_param_names())
    return [getattr(est, name, None) for name in names]


def library_version(est: Any) -> str:
    mod = type(est).__module__.split(".")[0]
    dist = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost"}
    name = dist.get(mod, mod)
    try:
        from importlib.metadata import version

        return f"{name}=={version(name if name != 'xgboost' else 'xgboost')}"
    except Exception:
        return name


def _check_fitted(est: Any) -> None:
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except SkNotFitted as exc:
        raise NotFittedError(f"{type(est).__name__} is not fitted: call fit() before converting it") from exc
    except TypeError as exc:
        raise InputError(f"{type(est).__name__} is not a scikit-learn estimator: {exc}") from exc


def _string_columns(est: Any, takes: Any = None) -> set[str]:
    """Names of DataFrame columns that a fitted model feeds to encoders of strings (so they are strings), or to
    transformers for which `takes(transformer)` is true."""
    takes = takes or _takes_strings
    from sklearn.compose import ColumnTransformer

    names = list(getattr(est, "feature_names_in_", []))
    found: set[str] = set()
    for ct in walk(est):
        if not isinstance(ct, ColumnTransformer) or not hasattr(ct, "_transformer_to_input_indices"):
            continue
        ct_names = list(getattr(ct, "feature_names_in_", names))
        for tname, idx in ct._transformer_to_input_indices.items():
            trans = ct.named_transformers_.get(tname)
            if trans is None or not len(idx):
                continue
            if takes(trans):
                found.update(str(ct_names[i]) for i in idx if i < len(ct_names))
    return found


def positional_columns(cols: Any) -> bool:
    """Whether a ColumnTransformer's column spec picks columns by position (a slice, an integer or integers),
    which a matrix input serves; names, boolean masks and callables need the DataFrame's column names."""
    if isinstance(cols, (slice, int, np.integer)):
        return True
    if isinstance(cols, str) or callable(cols):
        return False
    return np.asarray(cols).dtype.kind in "iu"


def frame_consumer(est: Any) -> Any:
    """The estimator that receives the user's DataFrame itself: the model, or the first step of a pipeline
    (inside searches and target transforms)."""
    while True:
        if hasattr(est, "best_estimator_"):
            est = est.best_estimator_
        elif hasattr(est, "steps"):
            est = est.steps[0][1]
        elif type(est).__name__ == "TransformedTargetRegressor":
            est = est.regressor_
        else:
            return est


def fitted_categories(est: Any, data: Any = None) -> dict[str, list[str]]:
    """Columns a boosting model encodes itself from pandas `category` columns (HistGradientBoosting with
    categorical_features="from_dtype", LightGBM, XGBoost with enable_categorical), each with its categories in
    the order the library codes them (a value's code is its position; an unknown value is missing). Read from
    the fitted model; `data`'s category dtypes fill in what a library does not keep. String categories only."""
    e = frame_consumer(est)
    names = [str(n) for n in getattr(e, "feature_names_in_", getattr(e, "feature_name_", []))]
    found: dict[str, list[Any]] = {}
    pre = getattr(e, "_preprocessor", None)
    if pre is not None and names and hasattr(e, "is_categorical_") \
            and "encoder" in getattr(pre, "named_transformers_", {}):  # without column names: numeric codes
        enc = pre.named_transformers_["encoder"]
        for k, idx in enumerate(np.flatnonzero(e.is_categorical_)):
            found[names[idx]] = [c for c in enc.categories_[k] if isinstance(c, str)]
    elif hasattr(e, "booster_") and getattr(e.booster_, "pandas_categorical", None):
        cat_cols = [str(c) for c in data.columns if str(data[c].dtype) == "category"] \
            if data is not None and hasattr(data, "dtypes") else []
        if not cat_cols:  # no data: the booster's categorical features list their values in `feature_infos`
            try:
                infos = e.booster_.dump_model(num_iteration=1).get("feature_infos", {})
                cat_cols = [str(n) for n in names if (infos.get(n) or {}).get("values")]
            except Exception:
                cat_cols = []
        if len(cat_cols) == len(e.booster_.pandas_categorical):
            found = {c: list(v) for c, v in zip(cat_cols, e.booster_.pandas_categorical)}
    elif hasattr(e, "get_booster") and getattr(e, "enable_categorical", False):
        try:
            arrays = e.get_booster().get_categories(export_to_arrow=True).to_arrow()
            found = {str(n): a.to_pylist() for n, a in arrays if a is not None}
        except Exception:
            if data is not None and hasattr(data, "dtypes"):
                found = {str(c): list(data[c].cat.categories) for c in data.columns
                         if str(data[c].dtype) == "category"}
    return {c: v for c, v in found.items() if v and all(isinstance(x, str) for x in v)}


def _takes_documents(est: Any) -> bool:
    """A text vectorizer, or a pipeline (or search) that starts with one: its input is a sequence of documents."""
    while True:
        if hasattr(est, "best_estimator_"):
            est = est.best_estimator_
        elif hasattr(est, "steps"):
            est = est.steps[0][1]
        else:
            return hasattr(est, "build_analyzer")


def _encodes(trans: Any) -> bool:
    """An encoder of categories (its first step has `categories_`)."""
    first = trans.steps[0][1] if hasattr(trans, "steps") else trans
    return hasattr(first, "categories_")


def _takes_strings(trans: Any) -> bool:
    first = trans.steps[0][1] if hasattr(trans, "steps") else trans
    if hasattr(first, "build_analyzer"):  # a text vectorizer reads documents
        return True
    for attr in ("categories_", "statistics_"):
        val = getattr(first, attr, None)
        if val is None:
            continue
        arrays = val if isinstance(val, list) else [val]
        if any(np.asarray(a).dtype.kind in "OUS" and any(isinstance(v, str) for v in np.asarray(a).ravel())
               for a in arrays):
            return True
    return False


def _classes_dtype(classes: np.ndarray) -> str:
    kind = np.asarray(classes).dtype.kind
    if kind in "OUS":
        return "str"
    if kind == "b":
        return "bool"
    if kind == "f":
        return "float64"
    return "int64"


def estimator_kind(e: Any) -> str:
    """classifier | regressor | mixture | clusterer | outlier | transformer: what `e` computes for new rows."""
    from sklearn.base import is_classifier, is_clusterer, is_outlier_detector, is_regressor

    if is_classifier(e):
        return "classifier"
    if is_regressor(e):
        return "regressor"
    if hasattr(e, "predict") and hasattr(e, "predict_proba"):
        return "mixture"  # GaussianMixture & co: a component label and its posterior probabilities
    if is_clusterer(e) and hasattr(e, "predict"):
        return "clusterer"
    if is_outlier_detector(e) and hasattr(e, "predict"):
        return "outlier"
    if hasattr(e, "transform"):
        return "transformer"
    if hasattr(e, "predict"):
        return "regressor"
    raise UnsupportedModelError(
        f"{type(e).__name__} has neither predict nor transform for new data (it is transductive, like TSNE or "
        "DBSCAN), so there is no function of the input to convert")


def output_specs(e: Any) -> tuple[TensorSpec, ...]:
    """The outputs of a fitted estimator (DESIGN §4): the one place that decides them; the ONNX converters
    declare theirs from it."""
    kind = estimator_kind(e)
    final = _final_estimator(e)  # a pipeline (or search) computes what its last step computes
    if kind == "classifier" and type(final).__name__ in MULTI_OUTPUT_CLASSIFIERS and isinstance(e.classes_, list):
        return _multi_output_specs(final)
    if kind == "classifier":
        classes = np.asarray(e.classes_, dtype=object if isinstance(e.classes_, list) else None)
        binarizer = getattr(final, "_label_binarizer", None)
        multilabel = str(getattr(binarizer, "y_type_", "")).startswith("multilabel")
        name = type(final).__name__
        if isinstance(e.classes_, list) and name in MULTI_OUTPUT_TREES:
            return _multi_output_specs(final)
        if multilabel and name in MULTILABEL_CLASSIFIERS:
            t = len(classes)
            specs = [TensorSpec(f"label_{k}", "int64", (None,), "label") for k in range(t)]
            if hasattr(e, "predict_proba"):
                return (*specs, TensorSpec("probabilities", "float64", (None, t), "probability"))
            return (*specs, TensorSpec("scores", "float64", (None, t), "score"))
        if classes.ndim > 1 or isinstance(e.classes_, list) or multilabel:
            raise UnsupportedModelError(
                f"{type(e).__name__} is multi-output/multilabel (one label per target); portable's scikit-learn "
                "signature has one label output, so it converts single-output classifiers only. Convert one "
                "classifier per target instead")
        label = TensorSpec("label", _classes_dtype(classes), (None,), "label")
        if hasattr(e, "predict_proba"):
            return label, TensorSpec("probabilities", "float64", (None, len(classes)), "probability")
        if not hasattr(e, "decision_function"):  # hard voting, output codes: the label is all there is
            return (label,)
        k = 1 if len(classes) == 2 else len(classes)
        return label, TensorSpec("scores", "float64", (None, k), "score")
    if kind == "mixture":
        return (TensorSpec("label", "int64", (None,), "label"),
                TensorSpec("probabilities", "float64", (None, getattr(e, "n_components", None)), "probability"))
    if kind in ("clusterer", "outlier"):
        outs = [TensorSpec("label", "int64", (None,), "label")]
        if kind == "clusterer" and hasattr(e, "transform"):
            centers = getattr(e, "cluster_centers_", getattr(e, "subcluster_centers_", None))  # what transform measures
            width = len(centers) if centers is not None else getattr(e, "n_clusters", None)
            outs.append(TensorSpec("scores", "float64", (None, width), "score"))
        elif kind == "outlier" and hasattr(e, "decision_function"):
            outs.append(TensorSpec("scores", "float64", (None, 1), "score"))
        return tuple(outs)
    if kind == "regressor":
        return (TensorSpec("variable", "float64", (None, _n_outputs(e)), "value"),)
    n_out = None
    try:
        n_out = len(e.get_feature_names_out())
    except Exception:
        pass
    return (TensorSpec("variable", "float64", (None, n_out), "value"),)


def _final_estimator(e: Any) -> Any:
    while True:
        if hasattr(e, "best_estimator_"):
            e = e.best_estimator_
        elif hasattr(e, "steps"):
            e = e.steps[-1][1]
        else:
            return e


# one output per target (DESIGN §4): `label_0` ... `label_{T-1}` `[N]`, and per target `probabilities_k` `[N, C_k]`
# (MultiOutputClassifier) or one `probabilities` `[N, T]`, scikit-learn's own predict_proba (ClassifierChain)
MULTI_OUTPUT_CLASSIFIERS = ("MultiOutputClassifier", "ClassifierChain")
# multi-output trees: `label_k` and `probabilities_k` per target; multilabel MLP: `label_k` (0/1) and
# `probabilities` `[N, T]`; multilabel ridge: `label_k` and `scores` `[N, T]` (converters/sklearn/multioutput.py)
MULTI_OUTPUT_TREES = ("DecisionTreeClassifier", "ExtraTreeClassifier", "RandomForestClassifier",
                      "ExtraTreesClassifier")
MULTILABEL_CLASSIFIERS = ("MLPClassifier", "RidgeClassifier", "RidgeClassifierCV")


def _multi_output_specs(e: Any) -> tuple[TensorSpec, ...]:
    specs = []
    for k, cls in enumerate(e.classes_):
        specs.append(TensorSpec(f"label_{k}", _classes_dtype(np.asarray(cls)), (None,), "label"))
        if type(e).__name__ in ("MultiOutputClassifier", *MULTI_OUTPUT_TREES) and hasattr(e, "predict_proba"):
            specs.append(TensorSpec(f"probabilities_{k}", "float64", (None, len(cls)), "probability"))
    if type(e).__name__ == "ClassifierChain" and hasattr(e, "predict_proba") and \
            all(len(c) == 2 for c in e.classes_):  # scikit-learn's predict_proba takes binary targets only
        specs.append(TensorSpec("probabilities", "float64", (None, len(e.classes_)), "probability"))
    return tuple(specs)


def _n_outputs(e: Any) -> int:
    n_out = getattr(e, "n_outputs_", None)
    if n_out is not None:
        return int(n_out)
    coef, dual = getattr(e, "coef_", None), getattr(e, "dual_coef_", None)
    if coef is not None and np.ndim(coef) == 2:
        return int(np.shape(coef)[0])
    if dual is not None and np.ndim(dual) == 2 and type(e).__name__ == "KernelRidge":
        return int(np.shape(dual)[1])
    if hasattr(e, "order_"):  # RegressorChain
        return len(e.order_)
    module = type(e).__module__
    if module.startswith("xgboost.") and hasattr(e, "get_booster"):  # multi-target: one tree per target and round
        import json

        try:
            param = json.loads(e.get_booster().save_config())["learner"]["learner_model_param"]
            return max(1, int(param.get("num_target", "1") or 1))
        except Exception:  # not fitted, or not a booster with trees: the converter says why
            return 1
    if module.startswith("catboost.") and hasattr(e, "get_scale_and_bias"):  # MultiRMSE: a bias per target
        try:
            return max(1, int(np.size(e.get_scale_and_bias()[1])))
        except Exception:
            return 1
    return 1


def _keep_float32(val: Any) -> np.ndarray:
    """float64, except where the library computed in float32 (XGBoost's predictions): the check then compares
    at float32's tolerance, the precision the original has."""
    val = np.asarray(val)
    return val if val.dtype == np.float32 else val.astype(np.float64, copy=False)


class SklearnModel(Model):
    """A fitted scikit-learn estimator, run by scikit-learn itself."""

    format = "sklearn"

    def __init__(self, estimator: Any, *, origin: Origin | None = None, data: Any = None) -> None:
        try:
            _check_fitted(estimator)
            super().__init__(origin=origin or Origin("sklearn", name=type(estimator).__name__,
                                                      library=library_version(estimator)))
            self.estimator = estimator
            self._signature = self._infer_signature(data)
        except PortableError:
            raise
        except Exception as exc:  # scikit-learn's own introspection on malformed fitted attributes
            first = (str(exc).strip().splitlines() or [""])[0]
            raise InputError(f"scikit-learn cannot describe this {type(estimator).__name__} (its fitted attributes "
                             f"are malformed: {type(exc).__name__}: {first}); it is not a model portable can load",
                             path=origin.path if origin is not None else None) from None

    # -- signature -----------------------------------------------------------------------------------------
    @cached_property
    def kind(self) -> str:
        """`estimator_kind` of the estimator, found once per model (it reads scikit-learn's tags, which costs
        more than running a small model; the signature, fixed at load, was built from the same answer)."""
        return estimator_kind(self.estimator)

    def _infer_signature(self, data: Any) -> Signature:
        """One `X` matrix, or one input per DataFrame column when the frame has string columns (or integer columns
        that encoders treat as categories): a string column is a `str` input (missing = ""), an integer column
        that an encoder reads an `int64` input, the others float."""
        e = self.estimator
        names = [str(n) for n in getattr(e, "feature_names_in_", [])]
        strings: set[str] = set()
        ints: set[str] = set()
        self.categories = fitted_categories(e, data)
        if data is not None and hasattr(data, "dtypes") and names:
            from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype

            strings = {str(c) for c in data.columns if not is_numeric_dtype(data[c])}
            ints = {str(c) for c in data.columns if is_integer_dtype(data[c]) and not is_bool_dtype(data[c])}
        elif names:
            strings = _string_columns(e)
        strings |= set(self.categories) & set(names)
        ints &= _string_columns(e, _encodes) if ints else set()  # passthrough/scaled ints stay float
        if names and (strings or ints):
            inputs = tuple(TensorSpec(n, "str" if n in strings else "int64" if n in ints else "float64", (None, 1))
                           for n in names)
        elif _takes_documents(e):  # a text vectorizer first: one document per row
            inputs = (TensorSpec("X", "str", (None, 1)),)
        else:
            nf = _n_features_in(e)
            if not nf and type(e).__module__.startswith("catboost"):
                # an unpickled CatBoost model answers n_features_in_ = 0; its feature names survive the pickle
                nf = len(getattr(e, "feature_names_", None) or []) or None
            inputs = (TensorSpec("X", "float64", (None, nf)),)
        return Signature(inputs, self._infer_outputs())

    def _infer_outputs(self) -> tuple[TensorSpec, ...]:
        return output_specs(self.estimator)

    @property
    def signature(self) -> Signature:
        return self._signature

    # -- running ---------------------------------------------------------------------------------------------
    def to_frame_or_array(self, inputs: dict[str, np.ndarray]) -> Any:
        specs = self._signature.inputs
        if len(specs) == 1 and specs[0].name == "X" and specs[0].is_string:  # documents: a 1-d sequence
            return np.asarray(inputs["X"]).reshape(-1).astype(object)
        if len(specs) == 1 and specs[0].name == "X":
            x = np.asarray(inputs["X"])
            # a copy when an estimator may transform in place (copy=False: StandardScaler, Normalizer, ...; a
            # FunctionTransformer's own function; a library portable does not know): the checker hands the
            # original views of its generated rows, which the converted model reads next
            if x.dtype.kind == "f":
                x = x.astype(np.float64, copy=self._may_write_input)
            if self._frame_columns is not None and x.ndim == 2 and x.shape[1] == len(self._frame_columns):
                import pandas as pd

                return pd.DataFrame(x, columns=self._frame_columns, copy=False)
            return x
        import pandas as pd

        cols = {}
        for t in specs:
            v = np.asarray(inputs[t.name]).reshape(-1)
            if t.is_string:  # the empty string stands for a missing value (ONNX strings have no NaN)
                v = v.astype(object)
                v[v == MISSING_STRING] = np.nan
                cats = self.categories.get(t.name)
                # a column the library encodes from its `category` dtype: the fitted categories, unknown = NaN
                cols[t.name] = pd.Categorical(v, categories=cats) if cats is not None else v
            else:
                cols[t.name] = v.astype(np.int64 if t.dtype == "int64" else np.float64)
        return pd.DataFrame(cols)

    @cached_property
    def _may_write_input(self) -> bool:
        """Whether running the estimator may write into its input array: unless every estimator in it comes from
        scikit-learn, XGBoost, LightGBM or CatBoost, none is a FunctionTransformer (a user's function) and none
        has `copy=False` (a copy of 1,000 x 10 values costs a tenth of running a small model, which the
        checker's cost is measured against)."""
        for e in walk(self.estimator):
            module = type(e).__module__
            if not module.startswith(("sklearn.", "xgboost.", "lightgbm.", "catboost.")):
                return True
            if type(e).__name__ == "FunctionTransformer" or getattr(e, "copy", True) is False:
                return True
        return False

    @cached_property
    def _frame_columns(self) -> list[Any] | None:
        """The column names of a model fitted on a DataFrame of numbers whose ColumnTransformer picks columns by
        name (or by a callable or a boolean mask over names): it refuses a matrix ("Specifying the columns using
        strings is only supported for dataframes"), so its one `X` input is handed over as that DataFrame."""
        from sklearn.compose import ColumnTransformer

        e = frame_consumer(self.estimator)
        names = getattr(e, "feature_names_in_", None)
        if names is None:
            return None
        for ct in walk(self.estimator):
            if isinstance(ct, ColumnTransformer) and not all(
                    positional_columns(cols) for _, _, cols in getattr(ct, "transformers_", ())):
                return list(names)
        return None

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self._predict(inputs)
        except PortableError:
            raise
        except Exception as exc:  # scikit-learn refusing the input (unknown category, NaN, wrong width, …)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PortableError(f"scikit-learn could not run {type(self.estimator).__name__} on this input: "
                                f"{type(exc).__name__}: {first}", path=self.origin.path) from None

    def _predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import warnings

        e, X = self.estimator, self.to_frame_or_array(inputs)
        out: dict[str, np.ndarray] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "X has feature names" noise
            for spec in self._signature.outputs:
                if spec.name.startswith("label_"):  # one target of a multi-output classifier
                    val = np.asarray(e.predict(X))[:, int(spec.name[6:])]
                    val = val.astype(str) if spec.dtype == "str" else val.astype(spec.dtype)
                elif spec.name.startswith("probabilities_"):
                    val = np.asarray(e.predict_proba(X)[int(spec.name[14:])], dtype=np.float64)
                elif spec.name == "label":
                    val = np.asarray(e.predict(X))
                    if len(spec.shape) == 1 and val.ndim == 2 and val.shape[1] == 1:
                        val = val.reshape(-1)  # CatBoost's multiclass predict: one label per row, as a column
                    val = val.astype(str) if spec.dtype == "str" else val.astype(spec.dtype)
                elif spec.name == "probabilities":
                    val = _keep_float32(e.predict_proba(X))
                elif spec.name == "scores":
                    val = np.asarray(e.transform(X) if self.kind == "clusterer" else e.decision_function(X),
                                     dtype=np.float64)
                    val = val.reshape(len(val), -1)
                else:
                    fn = e.predict if self.kind == "regressor" else e.transform
                    val = fn(X)
                    if hasattr(val, "toarray"):
                        val = val.toarray()
                    val = _keep_float32(val)
                    val = val.reshape(len(val), -1)
                out[spec.name] = val
        return out

    def info(self) -> dict[str, Any]:
        return {"estimator": repr(self.estimator), "kind": self.kind, "library": self.origin.library}

    def with_data(self, data: Any) -> "SklearnModel":
        """The same model with its input types learned from sample `data` (a DataFrame's string columns)."""
        return type(self)(self.estimator, origin=self.origin, data=data)

    def input_hints(self) -> Any:
        """Ranges, tree splits, categories, training points and the quantity `predict` follows, read from the
        fitted estimator (`portable.formats.sklearn_hints`); learned once per model."""
        hints = self.__dict__.get("_hints")
        if hints is None:
            from .sklearn_hints import sklearn_hints

            hints = self.__dict__["_hints"] = sklearn_hints(self)
            if getattr(self, "isolate", False) and (hints.decision is not None or hints.ties is not None):
                # an untrusted file runs only in its isolated worker: the quantity `predict` follows and the
                # neighbour ties are computed there too (`PickleModel.remote_hints`)
                self.remote_hints(hints)
        return hints


@register_format("sklearn", description="a fitted scikit-learn estimator or pipeline in memory", priority=10)
class SklearnFormat:
    """A fitted scikit-learn estimator or pipeline in memory."""

    @staticmethod
    def sniff(source: Any) -> bool:
        return is_estimator(source)

    @staticmethod
    def load(source: Any, options: LoadOptions) -> SklearnModel:
        return SklearnModel(source)
