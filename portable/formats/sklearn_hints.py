"""`SklearnModel.input_hints()`: what a fitted scikit-learn estimator (or XGBoost / LightGBM / CatBoost model,
or a pipeline of them) says about its inputs, in the format-neutral terms of `portable.hints`.

The walk follows the estimator's columns through pipelines, column transformers, feature selectors and
elementwise affine steps (scalers), so a tree behind a scaler reports its thresholds with the scaler's affine
map and the checker can reach them in raw input units. Recorded: ranges (scaler statistics, Gaussian NB
variances, `data=`-free quantiles of KBinsDiscretizer edges and QuantileTransformer), tree splits of every kind
(scikit-learn trees and forests, HistGradientBoosting, XGBoost, LightGBM with its |x| <= 1e-35 zero rule,
CatBoost), encoder categories and whether unknown ones are accepted, imputer fill values, kinks (Binarizer
thresholds, clip bounds), training points of neighbour and kernel models, whether NaN is accepted, and the
quantity `predict` follows (`Decision`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..hints import LEQ, LT, MEMBER, Column, Decision, InputHints, Points, TreeEnsemble, TreeNodes, TreeOutput


@dataclass
class _Space:
    """How an estimator's input columns relate to raw columns: column k is `a[k] * raw + b[k]` of raw column
    `cols[k]` (an index into the walk's column list), or derived (`cols[k] == -1`). `nan[k]`: a NaN in the raw
    column reaches column k as NaN (every step before it takes NaN and passes it on); None: every column."""

    cols: np.ndarray
    a: np.ndarray
    b: np.ndarray
    nan: np.ndarray | None = None

    def nan_mask(self) -> np.ndarray:
        return np.ones(len(self.cols), dtype=bool) if self.nan is None else self.nan

    @staticmethod
    def raw(cols: Sequence[int]) -> "_Space":
        n = len(cols)
        return _Space(np.asarray(cols, dtype=np.int64), np.ones(n), np.zeros(n))

    def sub(self, idx: Sequence[int] | np.ndarray) -> "_Space":
        idx = np.asarray(idx, dtype=np.int64)
        return _Space(self.cols[idx], self.a[idx], self.b[idx], None if self.nan is None else self.nan[idx])

    def to_raw(self, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (v - self.b[k]) / self.a[k]

    def then(self, scale: np.ndarray, offset: np.ndarray) -> "_Space":
        """After an elementwise `x * scale + offset` step."""
        return _Space(self.cols, self.a * scale, self.b * scale + offset, self.nan)


def _spread(center: Any, scale: Any, k: float = 3.0) -> tuple[np.ndarray, np.ndarray] | None:
    if center is None:
        return None
    center = np.asarray(center, float)
    scale = np.ones_like(center) if scale is None else np.asarray(scale, float)
    return center - k * scale, center + k * scale


# Where each estimator says its inputs live: (low, high) per input column, in the estimator's own units.
# where an elementwise function of a FunctionTransformer is defined (finite): outside, scikit-learn rejects the NaN
# or infinity it makes, or the model propagates it; the open ends are a step inside, so float32 keeps them inside
_DOMAINS: dict[Any, tuple[float, float]] = {
    np.log: (1e-30, np.inf), np.log2: (1e-30, np.inf), np.log10: (1e-30, np.inf), np.log1p: (-1 + 1e-6, np.inf),
    np.sqrt: (0.0, np.inf), np.arcsin: (-1.0, 1.0), np.arccos: (-1.0, 1.0)}

_RANGES: dict[str, Callable[[Any], tuple[np.ndarray, np.ndarray] | None]] = {
    "StandardScaler": lambda e: _spread(e.mean_, e.scale_),
    "RobustScaler": lambda e: _spread(e.center_, e.scale_),
    "MinMaxScaler": lambda e: (e.data_min_, e.data_max_),
    "MaxAbsScaler": lambda e: (-e.max_abs_, e.max_abs_),
    "GaussianNB": lambda e: ((e.theta_ - 3 * np.sqrt(e.var_)).min(0), (e.theta_ + 3 * np.sqrt(e.var_)).max(0)),
    "PowerTransformer": lambda e: _power_range(e),
}


def _power_range(e: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """A standardizing PowerTransformer's raw values at -3 and +3 of its output (its inverse transform; the
    output is standardized on the training data, so most training values lie between)."""
    if not getattr(e, "standardize", False):
        return None
    n = len(e.lambdas_)
    with np.errstate(all="ignore"):
        lo, hi = e.inverse_transform(np.full((2, n), [[-3.0], [3.0]]))
    ok = np.isfinite(lo) & np.isfinite(hi)
    return (np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)) if ok.any() else None


def _samuelson(e: Any, center: Any, scale: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """How far from its mean a training value can be, given the mean, the (population) standard deviation and
    the number of values: at most std * sqrt(n - 1) (Samuelson's inequality)."""
    n = getattr(e, "n_samples_seen_", None)
    if center is None or scale is None or n is None:
        return None
    k = np.sqrt(np.maximum(np.asarray(n, float) - 1.0, 1.0))
    return _spread(center, np.asarray(scale, float) * k, 1.0)


# How far each estimator's training data may have reached (beyond the range above), in its own units: the
# checker draws some values out to there and past it (a change that shows only in the tails of the data).
# RobustScaler keeps no count nor extremes: ten interquartile ranges (scale_) either side of the median.
_REACH: dict[str, Callable[[Any], tuple[np.ndarray, np.ndarray] | None]] = {
    "StandardScaler": lambda e: _samuelson(e, e.mean_, e.scale_),
    "RobustScaler": lambda e: _spread(e.center_, e.scale_, 10.0),
    "MinMaxScaler": lambda e: (e.data_min_, e.data_max_),
    "MaxAbsScaler": lambda e: (-e.max_abs_, e.max_abs_),
}


def _affine(center: Any, scale: Any) -> tuple[Any, Any]:
    """(multiplier, offset) of `(x - center) / scale`."""
    c = 0.0 if center is None else np.asarray(center, float)
    s = 1.0 if scale is None else np.asarray(scale, float)
    return 1 / s, -c / s


# Elementwise affine steps a tree behind them sees through: x -> multiplier * x + offset.
_AFFINE: dict[str, Callable[[Any], tuple[Any, Any]]] = {
    "StandardScaler": lambda e: _affine(e.mean_ if e.with_mean else None, e.scale_),
    "RobustScaler": lambda e: _affine(e.center_, e.scale_),
    "MinMaxScaler": lambda e: (e.scale_, e.min_),
    "MaxAbsScaler": lambda e: _affine(None, e.scale_),
}
_SELECTORS = {"SimpleImputer", "VarianceThreshold", "SelectKBest", "SelectPercentile", "SelectFromModel"}
_PLAIN_TREES = {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"}
# classifiers whose predict is the argmax of predict_proba even though some also have a decision_function
_BY_PROBA = {"RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier", "ExtraTreeClassifier",
             "BaggingClassifier", "KNeighborsClassifier", "RadiusNeighborsClassifier", "MLPClassifier",
             "GaussianProcessClassifier", "CalibratedClassifierCV", "VotingClassifier", "GaussianNB",
             "MultinomialNB", "BernoulliNB", "ComplementNB", "CategoricalNB", "XGBClassifier", "XGBRFClassifier",
             "LGBMClassifier", "CatBoostClassifier", "LabelPropagation", "LabelSpreading"}


def _width_out(step: Any) -> int | None:
    """How many columns a fitted transformer gives, when it says."""
    try:
        return len(step.get_feature_names_out())
    except Exception:
        return None


def takes_nan(est: Any) -> bool:
    """Whether the whole model accepts NaN: scikit-learn's `allow_nan` tag, asked of every step of a pipeline
    (a pipeline's own tag only reflects its first step). Imputers are found by the walk instead."""
    if hasattr(est, "steps"):
        return all(takes_nan(s) for _, s in est.steps if s is not None and s != "passthrough")
    if hasattr(est, "transformers_"):
        return False
    if type(est).__module__.split(".")[0] in ("xgboost", "lightgbm", "catboost"):
        return True
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(est).input_tags.allow_nan)
    except Exception:  # older scikit-learn or a non-scikit-learn estimator: say no
        return False


def _passes_nan(step: Any) -> bool:
    """Whether a NaN entering `step` leaves it as NaN: the step takes NaN and is not an imputer."""
    miss = getattr(step, "missing_values", None)
    if isinstance(miss, float) and np.isnan(miss):
        return False
    if type(step).__name__ == "FunctionTransformer" and step.func is None:  # the identity (a remainder passthrough)
        return True
    return takes_nan(step)


def sklearn_hints(model: Any) -> InputHints:
    """The hints of a `SklearnModel` (see the module docstring)."""
    est = model.estimator
    hints = InputHints()
    specs = model.signature.inputs
    if len(specs) == 1 and specs[0].name == "X":
        width = specs[0].shape[1] if len(specs[0].shape) > 1 and specs[0].shape[1] else \
            int(getattr(est, "n_features_in_", 0) or 0)
        columns: list[Column] = [("X", j) for j in range(width)]
        names = getattr(est, "feature_names_in_", None)
        if names is not None:
            hints.frame_columns = [str(c) for c in names]
        space = _Space.raw(range(width))
    else:
        columns = [(s.name, 0) for s in specs]
        index = {s.name: k for k, s in enumerate(specs)}
        feat_names = [str(c) for c in getattr(est, "feature_names_in_", [s.name for s in specs])]
        space = _Space.raw([index.get(c, -1) for c in feat_names])
    learner = _Learner(hints, columns)
    # columns a boosting model encodes itself from a pandas `category` dtype (HistGradientBoosting,
    # XGBoost, LightGBM): their categories, in the library's code order (a code indexes this list)
    for name, cats in (getattr(model, "categories", None) or {}).items():
        k = next((j for j, c in enumerate(columns) if c == (name, 0)), None)
        if k is None:
            continue
        learner.codes[k] = list(cats)
        h = hints.column(columns[k])
        h.categories = h.categories + [c for c in cats if c not in h.categories]
        h.unseen_ok = True  # an unknown category is read as missing
        h.nan_ok = True
        hints.learned("category dtypes")
    if takes_nan(est):
        learner.nan_all(space)
    try:
        learner.visit(est, space)
    except Exception as exc:  # learning is best effort: a surprise here must not break the check
        hints.notes.append(f"could not learn input ranges from {type(est).__name__}: {type(exc).__name__}: {exc}")
    learner.flush()
    try:
        hints.ensemble = _ensemble(model, learner, space)
    except Exception as exc:  # best effort, as above: the view is for certification only
        hints.notes.append(f"could not read {type(est).__name__} as a tree ensemble: {type(exc).__name__}: {exc}")
    hints.decision = _decision(model)
    hints.ties = _ties(model)
    k = getattr(_final(model.estimator), "n_neighbors", None) if hints.ties is not None else None
    hints.neighbours = int(k) if isinstance(k, (int, np.integer)) and k > 0 else None
    return hints


def _neighbour_members(est: Any, prep: Callable[[Any], Any] | None = None
                       ) -> list[tuple[Callable[[Any], Any] | None, Any]]:
    """The neighbour models inside `est` (itself, a pipeline's last step, members of a bagging, voting, stacking,
    one-vs-rest or multi-output ensemble, a search's best estimator, RFE's estimator, the bases of a calibrated
    classifier), each with what turns the model's input into that member's input."""
    def then(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return f if prep is None else (lambda X: f(prep(X)))

    if hasattr(est, "steps"):
        return _neighbour_members(est.steps[-1][1], then(est[:-1].transform) if len(est.steps) > 1 else prep)
    if (hasattr(est, "_fit_X") and (hasattr(est, "n_neighbors") or hasattr(est, "radius"))) or _pairwise_svm(est):
        return [(prep, est)]
    if hasattr(est, "best_estimator_"):  # a search
        return _neighbour_members(est.best_estimator_, prep)
    if hasattr(est, "support_") and hasattr(est, "estimator_"):  # RFE: the selected columns
        keep = np.flatnonzero(est.support_)
        return _neighbour_members(est.estimator_, then(lambda X: np.asarray(X)[:, keep]))
    calibrated = getattr(est, "calibrated_classifiers_", None)  # CalibratedClassifierCV: each fold's base
    if isinstance(calibrated, list):
        return [m for cc in calibrated for m in _neighbour_members(getattr(cc, "estimator", None), prep)]
    members = getattr(est, "estimators_", None)
    if not isinstance(members, list):
        return []
    found: list[tuple[Callable[[Any], Any] | None, Any]] = []
    columns = getattr(est, "estimators_features_", None)  # bagging: each member sees its own columns
    for i, member in enumerate(members):
        if columns is not None:
            cols = np.asarray(columns[i])
            found += _neighbour_members(member, then(lambda X, c=cols: np.asarray(X)[:, c]))
        else:
            found += _neighbour_members(member, prep)
    return found


def _pairwise_svm(est: Any) -> bool:
    """A libsvm classifier (SVC, NuSVC) of more than two classes: it predicts by one-vs-one votes."""
    return type(est).__name__ in ("SVC", "NuSVC") and len(getattr(est, "classes_", ())) > 2 and \
        hasattr(est, "_decision_function")


def _ties(model: Any) -> Callable[[Mapping[str, np.ndarray], float], np.ndarray] | None:
    """For neighbour models (and ensembles or pipelines holding them): rows whose k-th and (k+1)-th nearest
    training points are equally far (or whose nearest points lie on the radius) for any of them, within relative
    rounding; for multiclass SVMs, rows where a one-vs-one decision is within rounding of 0."""
    members = _neighbour_members(model.estimator)
    if not members:
        return None

    def tied(final: Any, X: Any, rtol: float) -> np.ndarray:
        if _pairwise_svm(final):
            # the label (and the one-vs-rest scores, votes + confidences) follow the signs of the pairwise
            # decisions: one within rounding of 0 is a vote two correct implementations may cast differently
            d = np.abs(np.asarray(final._decision_function(X), dtype=np.float64))
            scale = np.maximum(d.max(axis=1, initial=0.0), 1.0)
            return (d <= 10 * rtol * scale[:, None]).any(axis=1)
        n_fit = final.n_samples_fit_
        k = getattr(final, "n_neighbors", None)
        if k is not None and k < n_fit:
            d = final.kneighbors(X, k + 1, return_distance=True)[0]
            return np.abs(d[:, k] - d[:, k - 1]) <= 4 * rtol * np.maximum(d[:, k], 1e-300) + 1e-300
        r = getattr(final, "radius", None)
        if r is None:
            return np.zeros(len(X), dtype=bool)
        wide = final.radius_neighbors(X, r * (1 + 4 * rtol), return_distance=False)
        narrow = final.radius_neighbors(X, r * (1 - 4 * rtol), return_distance=False)
        return np.array([len(a) != len(b) for a, b in zip(wide, narrow)])

    def ties(inputs: Mapping[str, np.ndarray], rtol: float) -> np.ndarray:
        import warnings

        X = model.to_frame_or_array(dict(inputs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = np.zeros(len(X), dtype=bool)
            for prep, final in members:
                out |= tied(final, X if prep is None else prep(X), rtol)
            return out

    return ties


def _final(est: Any) -> Any:
    while hasattr(est, "steps"):
        est = est.steps[-1][1]
    return est


_NEAREST_CENTRE = ("KMeans", "MiniBatchKMeans")  # predict = the nearest of cluster_centers_ (transform's argmin)


def _decision(model: Any) -> Decision | None:
    """What `predict` follows: `decision_function` for linear models, SVMs, boosting and discriminant analysis,
    `predict_proba` for forests, neighbours, naive Bayes and networks (their predict is its argmax)."""
    est = model.estimator
    outs = model.signature.output_names
    final = _final(est)
    name = type(final).__name__
    if "label" in outs and name in _NEAREST_CENTRE and hasattr(est, "transform"):
        def distances(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return -np.asarray(est.transform(model.to_frame_or_array(dict(inputs))), dtype=np.float64)

        # predict is the nearest centre: the argmax of the negated distances to the centres
        return Decision("label", "transform", distances, np.arange(len(final.cluster_centers_)), kind="score")
    if "label" not in outs or not hasattr(est, "classes_"):
        return None
    if hasattr(est, "decision_function") and name not in _BY_PROBA:
        method, kind = "decision_function", "score"
    elif hasattr(est, "predict_proba"):
        method, kind = "predict_proba", "probability"
    else:
        return None

    def compute(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(getattr(est, method)(model.to_frame_or_array(dict(inputs))), dtype=np.float64)

    return Decision("label", method, compute, np.asarray(est.classes_), kind=kind)


class _Learner:
    """Walks a fitted estimator, tracking which raw column each estimator column is, and records ranges, tree
    splits, categories and known points."""

    def __init__(self, hints: InputHints, columns: list[Column]) -> None:
        self.hints = hints
        self.columns = columns
        self.points: list[np.ndarray] = []
        self.codes: dict[int, list[Any]] = {}  # raw column -> its categories by code (a category dtype)

    def col(self, k: int) -> Column:
        return self.columns[k]

    def flush(self) -> None:
        if self.points:
            rows = np.concatenate(self.points)
            if len(rows) > 2000:
                rows = rows[np.random.default_rng(0).choice(len(rows), 2000, replace=False)]
            self.hints.points.append(Points(list(self.columns), rows, "training points"))

    # -- the walk --------------------------------------------------------------------------------------------
    def visit(self, est: Any, space: _Space) -> None:
        if est is None or isinstance(est, str) or not np.any(space.cols >= 0):
            return
        name = type(est).__name__
        if hasattr(est, "steps"):
            self._pipeline(est, space)
        elif hasattr(est, "transformers_"):
            self._columns(est, space)
        else:
            self._leaf(est, space, name)
            self._nested(est, space)

    def _pipeline(self, est: Any, space: _Space) -> None:
        for _, step in est.steps:
            if step is None or step == "passthrough":
                continue
            self._visit_step(step, space)
            try:
                nxt = self._through(step, space)
            except Exception:  # a step whose columns cannot be followed: what comes after reads derived columns
                nxt = None
            if nxt is None:
                return
            space = nxt

    def _visit_step(self, step: Any, space: _Space) -> None:
        """`visit(step, space)`; a surprise in one step is a note, and the other steps are still learned from."""
        try:
            self.visit(step, space)
        except Exception as exc:
            self.hints.notes.append(f"could not learn input ranges from {type(step).__name__}: "
                                    f"{type(exc).__name__}: {exc}")

    def _through(self, step: Any, space: _Space) -> _Space | None:
        """The space after an elementwise affine step (a scaler), or None when the columns become derived."""
        name = type(step).__name__
        if hasattr(step, "steps"):  # a pipeline inside: through each of its steps
            for _, sub in step.steps:
                if sub is None or sub == "passthrough":
                    continue
                space = self._through(sub, space)
                if space is None:
                    return None
            return space
        if hasattr(step, "transformers_"):
            return self._through_columns(step, space)
        out = self._through_leaf(step, space, name)
        if out is not None and not _passes_nan(step):
            out = _Space(out.cols, out.a, out.b, np.zeros(len(out.cols), dtype=bool))
        return out

    def _through_leaf(self, step: Any, space: _Space, name: str) -> _Space | None:
        if name in _AFFINE:
            scale, offset = _AFFINE[name](step)
            n = len(space.cols)
            return space.then(np.broadcast_to(np.asarray(scale, float), n),
                              np.broadcast_to(np.asarray(offset, float), n))
        if name in _SELECTORS:
            out = space.sub(np.flatnonzero(step.get_support())) if hasattr(step, "get_support") else space
            indicator = getattr(step, "indicator_", None)
            if indicator is not None:  # add_indicator: derived 0/1 columns after the imputed ones
                extra = len(getattr(indicator, "features_", []))
                out = _Space(np.concatenate([out.cols, np.full(extra, -1)]), np.concatenate([out.a, np.ones(extra)]),
                             np.concatenate([out.b, np.zeros(extra)]),
                             np.concatenate([out.nan_mask(), np.zeros(extra, dtype=bool)]))
            width = _width_out(step)
            return out if width is None or width == len(out.cols) else None
        if name == "FunctionTransformer" and step.func is None:
            return space
        return None

    def _through_columns(self, ct: Any, space: _Space) -> _Space | None:
        """The space after a ColumnTransformer: its transformers' outputs side by side, in its order (columns
        passed through or scaled keep their raw column, the others are derived)."""
        mapping = getattr(ct, "_transformer_to_input_indices", {})
        parts = []
        for tname, trans, _ in ct.transformers_:
            idx = mapping.get(tname)
            if trans == "drop" or idx is None or not len(idx):
                continue
            sub = space.sub(idx)
            if isinstance(trans, str):  # passthrough
                parts.append(sub)
                continue
            width = _width_out(trans)
            try:
                out = self._through(trans, sub)
            except Exception:
                out = None
            if out is None or (width is not None and width != len(out.cols)):
                if width is None:
                    return None
                out = _Space(np.full(width, -1), np.ones(width), np.zeros(width))
            parts.append(out)
        if not parts:
            return None
        out = _Space(np.concatenate([p.cols for p in parts]), np.concatenate([p.a for p in parts]),
                     np.concatenate([p.b for p in parts]), np.concatenate([p.nan_mask() for p in parts]))
        width = _width_out(ct)
        return out if width is None or width == len(out.cols) else None

    def _columns(self, ct: Any, space: _Space) -> None:
        mapping = getattr(ct, "_transformer_to_input_indices", {})
        for tname, trans, _ in ct.transformers_:
            idx = mapping.get(tname)
            if idx is None or not len(idx) or trans in ("drop", "passthrough"):
                continue
            self._visit_step(trans, space.sub(idx))

    def _nested(self, est: Any, space: _Space) -> None:
        subs = getattr(est, "estimators_", None)
        feats = getattr(est, "estimators_features_", None)
        if subs is not None and not isinstance(subs, str):
            flat = list(np.ravel(np.asarray(subs, dtype=object))) if not isinstance(subs, list) else subs
            flat = [s[1] if isinstance(s, tuple) else s for s in flat]
            if feats is None and flat and all(type(t).__name__ in _PLAIN_TREES for t in flat):
                self._sk_trees(space, [t.tree_ for t in flat], type(est).__name__)  # forests: one pass
                return
            for i, sub in enumerate(flat):
                sp = space.sub(feats[i]) if feats is not None and i < len(feats) else space
                if hasattr(sub, "fit"):
                    self.visit(sub, sp)
        for attr in ("estimator_", "base_estimator_", "best_estimator_", "regressor_"):
            sub = getattr(est, attr, None)
            if sub is not None and hasattr(sub, "fit"):
                self.visit(sub, space)
        for cal in getattr(est, "calibrated_classifiers_", []) or []:
            self.visit(getattr(cal, "estimator", None), space)

    def _leaf(self, est: Any, space: _Space, name: str) -> None:
        hints = self.hints
        if hasattr(est, "predict") and takes_nan(est):
            # a predictor that routes missing values (HistGradientBoosting, trees, boosting libraries) behind
            # steps that pass NaN on (passthrough columns, scalers): those raw columns take NaN
            self.nan_all(_Space(np.where(space.nan_mask(), space.cols, -1), space.a, space.b))
        if getattr(est, "tree_", None) is not None:
            self._sk_trees(space, [est.tree_], name)
        if hasattr(est, "_predictors"):  # HistGradientBoosting
            self._hgb(est, space)
        lib = type(est).__module__.split(".")[0]
        if lib in ("xgboost", "lightgbm", "catboost"):
            self._boosting(est, space, lib)
        if name in _RANGES:
            lo_hi = _RANGES[name](est)
            if lo_hi is not None:
                self._range(space, *lo_hi, name)
        if name in _REACH:
            try:
                reach = _REACH[name](est)
            except (AttributeError, TypeError, ValueError):  # a scaler fitted without that statistic
                reach = None
            if reach is not None:
                self._range(space, *reach, name, reach=True)
        miss = getattr(est, "missing_values", None)
        if isinstance(miss, float) and np.isnan(miss):  # an imputer: whatever follows never sees the NaN
            self.nan_all(space)
            stats = getattr(est, "statistics_", None)
            if stats is not None and np.asarray(stats).dtype.kind == "f":
                self._values(space, np.asarray(stats, float), "imputer fill values")
        if hasattr(est, "categories_"):
            self._categories(est, space)
        if isinstance(getattr(est, "vocabulary_", None), dict) and hasattr(est, "build_analyzer"):
            self._vocabulary(est, space)
        if name == "FunctionTransformer":
            self._domain(est, space)
        if name == "Binarizer":
            self._values(space, np.broadcast_to(float(est.threshold), space.cols.shape), "kinks", kink=True)
        if name == "KBinsDiscretizer" and hasattr(est, "bin_edges_"):
            for j, edges in enumerate(est.bin_edges_):
                if j < len(space.cols):
                    self._values(space.sub([j]), np.asarray(edges, float)[1:-1], "bin edges", kink=True)
        if name == "QuantileTransformer" and hasattr(est, "quantiles_"):
            q = np.asarray(est.quantiles_, float)
            for j in range(min(q.shape[1], len(space.cols))):
                c = space.cols[j]
                if c >= 0 and space.a[j] == 1.0 and space.b[j] == 0.0:
                    h = self.hints.column(self.col(c))
                    h.quantiles = q[:, j].tolist()
                    h.widen(float(q[0, j]), float(q[-1, j]))
            hints.learned("quantiles")
        for attr in ("_fit_X", "support_vectors_", "cluster_centers_", "means_", "centroids_"):
            pts = getattr(est, attr, None)
            if pts is not None and not hasattr(pts, "toarray"):
                pts = np.asarray(pts, dtype=np.float64)
                if pts.ndim == 2 and pts.shape[1] == len(space.cols):
                    self._points(space, pts, name)
                break

    # -- recorders -------------------------------------------------------------------------------------------
    def _domain(self, est: Any, space: _Space) -> None:
        """The raw values a FunctionTransformer's elementwise function is defined on (`_DOMAINS`)."""
        bounds = _DOMAINS.get(getattr(est, "func", None)) if not getattr(est, "kw_args", None) else None
        if bounds is None:
            return
        k = np.arange(len(space.cols))
        ends = np.stack([space.to_raw(k, np.full(len(k), b)) for b in bounds])  # a negative scale swaps them
        for j, c in enumerate(space.cols):
            if c >= 0 and space.a[j] != 0 and not np.isnan(ends[:, j]).any():
                self.hints.column(self.col(c)).restrict(float(ends[:, j].min()), float(ends[:, j].max()))
        self.hints.learned(f"the domain of {getattr(est.func, '__name__', 'a function')}")

    def _range(self, space: _Space, lo: Any, hi: Any, source: str, *, reach: bool = False) -> None:
        lo = np.broadcast_to(np.asarray(lo, float), space.cols.shape)
        hi = np.broadcast_to(np.asarray(hi, float), space.cols.shape)
        k = np.arange(len(space.cols))
        rlo, rhi = space.to_raw(k, lo), space.to_raw(k, hi)
        for j, c in enumerate(space.cols):
            if c >= 0:
                col = self.hints.column(self.col(c))
                if reach:
                    col.extend(float(rlo[j]), float(rhi[j]))
                else:
                    col.widen(float(rlo[j]), float(rhi[j]))
        self.hints.learned(source)

    def _values(self, space: _Space, vals: np.ndarray, source: str, *, kink: bool = False) -> None:
        k = np.arange(len(space.cols))
        raw = space.to_raw(k, np.asarray(vals, float)) if len(vals) == len(k) else None
        for j, c in enumerate(space.cols):
            if c < 0:
                continue
            v = raw[j:j + 1] if raw is not None else space.to_raw(np.full(len(vals), j), np.asarray(vals, float))
            v = [float(x) for x in np.ravel(v) if np.isfinite(x)]
            if not v:
                continue
            self.hints.add_values(self.col(c), v, widen=False)
            if kink:
                h = self.hints.column(self.col(c))
                h.kinks = sorted(set(h.kinks) | set(v))
        self.hints.learned(source)

    def nan_all(self, space: _Space) -> None:
        for c in space.cols:
            if c >= 0:
                self.hints.column(self.col(c)).nan_ok = True

    def _points(self, space: _Space, pts: np.ndarray, source: str) -> None:
        k = np.arange(len(space.cols))
        raw = space.to_raw(k[None, :], pts)
        self._range(space, pts.min(0), pts.max(0), source)
        rows = np.full((len(pts), len(self.columns)), np.nan)
        ok = space.cols >= 0
        rows[:, space.cols[ok]] = raw[:, ok]
        self.points.append(rows)
        # integer-valued training points: the model saw integers only in those columns
        for j in np.flatnonzero(ok):
            col = raw[:, j]
            if len(col) and np.all(np.isfinite(col)) and np.all(col == np.round(col)):
                self.hints.column(self.col(space.cols[j])).integer = True

    def _categories(self, est: Any, space: _Space) -> None:
        unseen = getattr(est, "handle_unknown", "error") in ("ignore", "infrequent_if_exist", "use_encoded_value")
        for j, cats in enumerate(est.categories_):
            if j >= len(space.cols) or space.cols[j] < 0:
                continue
            h = self.hints.column(self.col(space.cols[j]))
            cats = np.asarray(cats)
            if cats.dtype.kind in "OUS":
                vals = [str(c) for c in cats if not (isinstance(c, float) and np.isnan(c))]
                h.categories = h.categories + [v for v in vals if v not in h.categories]
                if any(isinstance(c, float) and np.isnan(c) for c in cats) or None in list(cats):
                    h.nan_ok = True
            else:
                nums = cats.astype(np.float64)
                fin = [float(v) for v in nums if np.isfinite(v)]
                h.categories = sorted(set(h.categories) | set(fin))
                h.values = sorted(set(h.values) | set(fin))
                if np.isnan(nums).any():
                    h.nan_ok = True
                if fin:
                    h.widen(min(fin), max(fin))
                    if all(v == round(v) for v in fin):
                        h.integer = True
            h.unseen_ok = bool(h.unseen_ok) or unseen
        self.hints.learned("encoder categories")

    def _vocabulary(self, est: Any, space: _Space) -> None:
        """A text vectorizer's vocabulary: documents made of its terms (each term alone, and a few seeded
        documents of two to four terms), so that every term's column is reached, and long documents of 8 to 2,048
        terms, where sums and their rounding grow; any other document is valid."""
        if len(space.cols) != 1 or space.cols[0] < 0:
            return
        terms = sorted(est.vocabulary_, key=est.vocabulary_.get)
        if not terms:
            return
        from ..hints import vocabulary_documents

        sep = "" if getattr(est, "analyzer", "word") in ("char", "char_wb") else " "
        docs = vocabulary_documents(terms, sep)
        h = self.hints.column(self.col(space.cols[0]))
        seen = set(h.categories)
        h.categories = h.categories + [d for d in docs if d not in seen and not seen.add(d)]
        h.unseen_ok = True
        self.hints.learned("vectorizer vocabulary")

    # -- trees -----------------------------------------------------------------------------------------------
    def _add(self, space: _Space, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray,
             right: np.ndarray, source: str, *, mode: Any = None, missing: Any = None, zero_eps: float = 0.0,
             values: np.ndarray | None = None, roots: np.ndarray | None = None, dtype: str | None = None,
             members: dict[int, Any] | None = None) -> None:
        feature = np.asarray(feature, dtype=np.int64)
        left = np.asarray(left, dtype=np.int64)
        split = (left >= 0) & (feature >= 0) & (feature < len(space.cols))
        fk = np.where(split, feature, 0)
        cols = np.where(split, space.cols[fk], -1)
        n = len(feature)
        self.hints.trees.append(TreeNodes(
            list(self.columns), cols, np.where(left >= 0, np.asarray(threshold, float), np.nan), left,
            np.asarray(right, dtype=np.int64), mode=mode, missing=missing,
            scale=np.where(split, space.a[fk], 1.0), offset=np.where(split, space.b[fk], 0.0),
            zero_eps=np.full(n, zero_eps), values=values, roots=roots, dtype=dtype, source=source,
            members=members or None))
        self.hints.learned("tree thresholds")

    def _sk_trees(self, space: _Space, trees: list[Any], source: str) -> None:
        """Several fitted `sklearn.tree._tree.Tree`s at once, as one set of node arrays."""
        sizes = np.array([t.node_count for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        shift = np.repeat(offsets, sizes)

        def cat(attr: str) -> np.ndarray:
            return np.concatenate([getattr(t, attr) for t in trees])
        left, right = cat("children_left"), cat("children_right")
        miss = None
        if all(getattr(t, "missing_go_to_left", None) is not None for t in trees):
            miss = cat("missing_go_to_left").astype(np.int8)
        self._add(space, cat("feature"), cat("threshold"), np.where(left >= 0, left + shift, -1),
                  np.where(right >= 0, right + shift, -1), source, missing=miss, roots=offsets)

    def _hgb(self, est: Any, space: _Space) -> None:
        parts, bitsets = [], []
        for it in est._predictors:
            for pred in it:
                parts.append(pred.nodes)
                bitsets.append(getattr(pred, "raw_left_cat_bitsets", None))
        if not parts:
            return
        pre = getattr(est, "_preprocessor", None)
        cats: dict[int, Any] = {}  # preprocessed feature -> the encoder's categories (a category's code: its index)
        if pre is not None:
            # categorical features from the dtype: the trees read the preprocessor's output, which puts the
            # encoded categorical columns first, then the numerical ones
            order = np.full(len(space.cols), -1, dtype=np.int64)
            for tname, out in pre.output_indices_.items():
                idx = pre._transformer_to_input_indices.get(tname, [])
                order[np.arange(len(space.cols))[out]] = idx
            enc = pre.named_transformers_.get("encoder")
            out = np.arange(len(space.cols))[pre.output_indices_.get("encoder", slice(0, 0))]
            for k, j in enumerate(out):
                cats[int(j)] = list(enc.categories_[k]) if enc is not None else None
            space = _Space(np.where(order >= 0, space.cols[np.maximum(order, 0)], -1), space.a[np.maximum(order, 0)],
                           space.b[np.maximum(order, 0)], space.nan_mask()[np.maximum(order, 0)] & (order >= 0))
        sizes = np.array([len(p) for p in parts])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        shift = np.repeat(offsets, sizes)
        nodes = np.concatenate(parts)
        leaf = nodes["is_leaf"] == 1
        feat = np.where(leaf, -1, nodes["feature_idx"].astype(np.int64))
        mode = np.full(len(nodes), LEQ, np.uint8)
        members: dict[int, Any] = {}
        if "is_categorical" in nodes.dtype.names:
            categorical = (nodes["is_categorical"] == 1) & ~leaf
            for i in np.flatnonzero(categorical):
                t = int(np.searchsorted(offsets, i, side="right") - 1)
                names = cats.get(int(feat[i]))
                bits = bitsets[t]
                if names is None or bits is None:
                    feat[i] = -1
                    continue
                row = np.asarray(bits[int(nodes["bitset_idx"][i])], dtype=np.uint64)
                # the categories whose code's bit is set go left
                sent = [c for code, c in enumerate(names) if isinstance(c, str) and code < 32 * len(row)
                        and (int(row[code // 32]) >> (code % 32)) & 1]
                members[int(i)] = np.asarray(sent, dtype=object)
                mode[i] = MEMBER
        left = np.where(leaf, -1, nodes["left"].astype(np.int64) + shift)
        right = np.where(leaf, -1, nodes["right"].astype(np.int64) + shift)
        self._add(space, feat, nodes["num_threshold"].astype(np.float64), left, right, "HistGradientBoosting",
                  mode=mode, missing=nodes["missing_go_to_left"].astype(np.int8), roots=offsets,
                  values=nodes["value"].astype(np.float64)[:, None], members=members)

    def _boosting(self, est: Any, space: _Space, lib: str) -> None:
        """XGBoost, LightGBM and CatBoost trees, read the way portable's converters read them."""
        from ..converters.sklearn import boosting

        if lib == "xgboost":
            table = boosting._xgb_model(est)[0]
            # XGBoost compares float32 features with float32 thresholds, `x < t`
            dtype, eps, source = "float32", 0.0, "XGBoost"
        elif lib == "lightgbm":
            table = boosting._lgbm_table(est)[0]
            dtype, eps, source = None, 1e-35, "LightGBM"  # LightGBM reads |x| <= 1e-35 as 0
        else:
            table = boosting._catboost_table(est)[0]
            dtype, eps, source = "float32", 0.0, "CatBoost"
        mode = np.full(len(table.left), LEQ, np.uint8) if table.mode is None else table.mode.astype(np.uint8)
        feat = np.asarray(table.feature, np.int64).copy()
        members: dict[int, Any] = {}
        for i in np.flatnonzero(mode == MEMBER):
            # a membership split on a column the library codes from its category dtype: the categories sent
            # left, by name; any other membership split reads something the walk cannot name
            f = int(feat[i])
            names = self.codes.get(int(space.cols[f])) if 0 <= f < len(space.cols) else None
            codes = (table.members or {}).get(int(i))
            if names is None or codes is None:
                feat[i] = -1
                continue
            members[int(i)] = np.asarray([names[int(c)] for c in np.asarray(codes, np.float64)
                                          if np.isfinite(c) and 0 <= int(c) < len(names) and c == int(c)],
                                         dtype=object)
        self._add(space, feat, table.threshold, table.left, table.right, source, mode=mode,
                  missing=table.missing_left.astype(np.int8), zero_eps=eps, values=table.values,
                  roots=table.roots, dtype=dtype, members=members)


# ---- the whole model as a tree ensemble (portable.hints.TreeEnsemble, for certification) -------------------------

_PURE = {"VarianceThreshold", "SelectKBest", "SelectPercentile", "SelectFromModel"}  # column selection only


def _ensemble(model: Any, learner: _Learner, space: _Space) -> TreeEnsemble | None:
    """The model as `TreeEnsemble` when its outputs depend on its inputs through trees alone (a tree model,
    possibly behind scalers, imputers, feature selectors, one-hot and ordinal encoders and column
    transformers of them), else None. Imputers count as the identity: the domain of a certificate holds no
    missing values unless it says so."""
    from ..hints import derive_splits

    est = model.estimator
    while getattr(est, "best_estimator_", None) is not None:  # a fitted search predicts with its best estimator
        est = est.best_estimator_
    steps = [s for _, s in est.steps if s is not None and s != "passthrough"] if hasattr(est, "steps") else [est]
    strings = {s.name for s in model.signature.inputs if s.is_string}
    # scalers' exact arithmetic is followed for float inputs (fed as float32, numpy's in-place operations compute
    # in float64 and store float32: the recipes' `castin`); integer inputs are left to the rounding interval
    wide = {s.name for s in model.signature.inputs if s.dtype == "float64"}
    derived: list[tuple[Any, ...]] | None = [
        ("cat", int(c)) if c >= 0 and learner.columns[c][0] in strings else
        ("num", int(c), 1.0, 0.0, () if c >= 0 and learner.columns[c][0] in wide else None) for c in space.cols]
    if any(d[1] < 0 for d in derived):
        return None
    final = steps[-1]
    inverse = None
    if type(final).__name__ == "TransformedTargetRegressor" and getattr(final, "regressor_", None) is not None:
        if final.inverse_func is not np.exp or getattr(final, "transformer_", None) is not None and \
                type(final.transformer_).__name__ != "FunctionTransformer":
            return None  # only a log target (inverse np.exp) is read
        inverse, final = "exp", final.regressor_
        steps = steps[:-1] + [final]
    native = dict(getattr(model, "categories", None) or {})
    if native and len(steps) == 1 and type(final).__module__.split(".")[0] in ("xgboost", "lightgbm"):
        # the library reads a pandas category column as its code: the position among the fitted categories
        # (a category outside them is missing: NaN, routed where each split sends a missing value)
        derived = [("ord", d[1], {str(v): float(k) for k, v in enumerate(native[learner.columns[d[1]][0]])},
                    float("nan"))
                   if d[0] == "cat" and learner.columns[d[1]][0] in native else d for d in derived]
    for step in steps[:-1]:
        derived = _derive(step, derived)
        if derived is None:
            return None
    pre = getattr(final, "_preprocessor", None)
    if pre is not None and hasattr(final, "_predictors"):  # HistGradientBoosting's own category encoder
        derived = _derive(pre, derived)
        if derived is None:
            return None
    build = _ENSEMBLES.get(type(final).__name__)
    if build is None:
        return None
    got = build(final)
    if got is None:
        return None
    parts, base, outs, source = got
    ident = _Space.raw(range(len(derived)))
    slots: list[Column] = [("", k) for k in range(len(derived))]
    trees = parts(ident, slots) if callable(parts) else _nodes(ident, slots, parts, source)
    trees = derive_splits(trees, trees.feature, derived, learner.columns)
    names = set(model.signature.output_names)
    if inverse == "exp":
        outs = {k: TreeOutput("columns", v.k, v.a, v.b, fn=["exp"] * len(v.k)) for k, v in outs.items()
                if v.kind == "columns" and all(f == "identity" for f in v.fn) and not np.any(v.d) and
                np.all(v.c == 1)}
    # XGBoost sums its trees in float32 (and returns float32); the others in float64
    acc = "float32" if type(final).__module__.split(".")[0] == "xgboost" else "float64"
    return TreeEnsemble(trees, np.asarray(base, np.float64), {k: v for k, v in outs.items() if k in names},
                        accumulate=acc, source=f"{type(final).__module__.split('.')[0]} {source}")


def _ops(n: int, *parts: tuple[str, Any]) -> list[tuple[tuple[str, float, str], ...]]:
    """Per column, the operations a scaler applies, in its order (`portable.hints.derive_splits`): numpy's
    in-place `X -= mean_` computes in float64 and stores in X's own dtype (`castin`: float32 when the data was
    fed as float32)."""
    cols = [np.broadcast_to(np.asarray(v, np.float64), (n,)) for _, v in parts]
    return [tuple(x for (op, _), c in zip(parts, cols) for x in ((op, float(c[j]), "float64"), ("castin", 0.0, "")))
            for j in range(n)]


# scikit-learn's scalers, operation by operation (X -= mean_; X /= scale_ ...), for splits read through them
_RECIPES: dict[str, Callable[[Any, int], list[Any]]] = {
    "StandardScaler": lambda e, n: _ops(n, *([("sub", e.mean_)] if e.with_mean else []),
                                        *([("div", e.scale_)] if e.with_std else [])),
    "RobustScaler": lambda e, n: _ops(n, *([("sub", e.center_)] if e.with_centering else []),
                                      *([("div", e.scale_)] if e.with_scaling else [])),
    "MinMaxScaler": lambda e, n: _ops(n, ("mul", e.scale_), ("add", e.min_)),
    "MaxAbsScaler": lambda e, n: _ops(n, ("div", e.scale_)),
}


def _missing(c: Any) -> bool:
    return c is None or (isinstance(c, float) and np.isnan(c))


def _derive(step: Any, derived: list[tuple[Any, ...]]) -> list[tuple[Any, ...]] | None:
    """What `step`'s output columns are in raw terms (see `portable.hints.derive_splits`), or None when the
    step is not one the tree certificate reads through."""
    name = type(step).__name__
    if hasattr(step, "steps"):
        for _, sub in step.steps:
            if sub is None or sub == "passthrough":
                continue
            derived = _derive(sub, derived)  # type: ignore[assignment]
            if derived is None:
                return None
        return derived
    if hasattr(step, "transformers_"):
        mapping = getattr(step, "_transformer_to_input_indices", {})
        out: list[tuple[Any, ...]] = []
        for tname, trans, _ in step.transformers_:
            idx = mapping.get(tname)
            if trans == "drop" or idx is None or not len(idx):
                continue
            sub = [derived[i] for i in idx]
            if len({d[4] is None for d in sub if d[0] == "num"}) > 1:  # mixed dtypes: upcast, arithmetic unknown
                sub = [d[:4] + (None,) if d[0] == "num" else d for d in sub]
            got = sub if trans == "passthrough" else _derive(trans, sub)
            if got is None:
                return None
            out += got
        return out
    if name in _AFFINE:
        scale, offset = _AFFINE[name](step)
        n = len(derived)
        scale, offset = np.broadcast_to(np.asarray(scale, float), n), np.broadcast_to(np.asarray(offset, float), n)
        if any(d[0] != "num" for d in derived):
            return None
        steps = _RECIPES.get(name, lambda e, n: [None] * n)(step, n)
        return [("num", d[1], d[2] * s, d[3] * s + o, None if d[4] is None or r is None else d[4] + r)
                for d, s, o, r in zip(derived, scale, offset, steps)]
    if name in _PURE:
        return [derived[i] for i in np.flatnonzero(step.get_support())]
    if name == "FunctionTransformer" and (step.func is None or getattr(getattr(step.func, "func", None), "__name__",
                                                                       "") == "check_array"):
        return derived  # the identity, or HistGradientBoosting's check_array to float64 (exact)
    if name == "SimpleImputer":
        stats = np.asarray(step.statistics_)
        if getattr(step, "add_indicator", False) or (stats.dtype.kind == "f" and np.isnan(stats).any()):
            return None
        return derived
    if name == "OneHotEncoder":
        if getattr(step, "drop_idx_", None) is not None or getattr(step, "_infrequent_enabled", False):
            return None
        out = []
        for d, cats in zip(derived, step.categories_):
            if d[0] != "cat":
                return None
            out += [("ind", d[1], "\x00missing" if _missing(c) else str(c)) for c in cats]
        return out
    if name == "TargetEncoder":  # each category's learned encoding (transform, not fit_transform's cross fit)
        enc = getattr(step, "encodings_", None)
        if enc is None or len(enc) != len(derived) or any(d[0] != "cat" for d in derived):
            return None
        return [("ord", d[1], {str(c): float(v) for c, v in zip(cats, e) if not _missing(c)})
                for d, cats, e in zip(derived, step.categories_, enc)]
    if name == "KBinsDiscretizer" and getattr(step, "encode", None) == "ordinal":
        # the code: how many inner edges are <= x, compared in float64 (numpy's searchsorted of the float64 edges)
        if getattr(step, "dtype", None) not in (None, np.float64) or len(step.bin_edges_) != len(derived) or \
                any(d[0] != "num" or d[2] != 1.0 or d[3] != 0.0 for d in derived):
            return None
        return [("bin", d[1], np.asarray(e, np.float64)[1:-1]) for d, e in zip(derived, step.bin_edges_)]
    if name == "OrdinalEncoder":
        if getattr(step, "_infrequent_enabled", False):
            return None
        out = []
        for d, cats in zip(derived, step.categories_):
            if d[0] != "cat":
                return None
            # a category it does not know: `unknown_value` (NaN: read as missing, as HistGradientBoosting's own
            # encoder does); with handle_unknown="error" none reaches the trees
            unknown = float(step.unknown_value) if getattr(step, "handle_unknown", "error") == \
                "use_encoded_value" else None
            out.append(("ord", d[1], {str(c): k for k, c in enumerate(cats) if not _missing(c)}, unknown))
        return out
    return None


def _nodes(space: _Space, columns: list[Column], parts: list[tuple[Any, np.ndarray]], source: str) -> TreeNodes:
    """One TreeNodes of several trees: `parts` holds (tree arrays, leaf values [n_nodes, K]) per tree, the
    arrays a scikit-learn `Tree` or a dict of `feature threshold left right missing dtype` (HistGradientBoosting)."""
    feats, thr, left, right, miss, vals, roots, modes = [], [], [], [], [], [], [], []
    members: dict[int, np.ndarray] = {}
    start = 0
    dtype = None
    for tree, values in parts:
        if isinstance(tree, dict):
            f, t, lc, rc, m, dtype = (tree["feature"], tree["threshold"], tree["left"], tree["right"],
                                      tree["missing"], tree.get("dtype"))
            for i, v in (tree.get("members") or {}).items():  # membership splits (native categories)
                members[int(i) + start] = v
        else:  # scikit-learn trees compare float32(x) with a float64 threshold
            f, t, lc, rc = tree.feature, tree.threshold, tree.children_left, tree.children_right
            m = getattr(tree, "missing_go_to_left", None)
            m = np.zeros(len(f), np.int8) if m is None else np.asarray(m).astype(np.int8)
            dtype = "float32"
        lc, rc = np.asarray(lc, np.int64), np.asarray(rc, np.int64)
        roots.append(start)
        feats.append(np.asarray(f, np.int64))
        thr.append(np.asarray(t, np.float64))
        left.append(np.where(lc >= 0, lc + start, -1))
        right.append(np.where(rc >= 0, rc + start, -1))
        miss.append(np.asarray(m, np.int8))
        modes.append(np.asarray(tree["mode"], np.uint8) if isinstance(tree, dict) and "mode" in tree
                     else np.full(len(lc), LEQ, np.uint8))
        vals.append(np.asarray(values, np.float64).reshape(len(lc), -1))
        start += len(lc)
    feature, left_a = np.concatenate(feats), np.concatenate(left)
    split = (left_a >= 0) & (feature >= 0) & (feature < len(space.cols))
    fk = np.where(split, feature, 0)
    cols = np.where(split, space.cols[fk], -1)
    return TreeNodes(list(columns), cols, np.where(left_a >= 0, np.concatenate(thr), np.nan), left_a,
                     np.concatenate(right), mode=np.concatenate(modes), missing=np.concatenate(miss),
                     scale=np.where(split, space.a[fk], 1.0), offset=np.where(split, space.b[fk], 0.0),
                     members=members or None, values=np.concatenate(vals), roots=np.asarray(roots, np.int64),
                     dtype=dtype, source=source)


def _label(classes: Any, k: Any, a: Any = 1.0, b: Any = 0.0, rule: str = "argmax") -> TreeOutput:
    return TreeOutput("label", k, a, b, rule=rule, classes=np.asarray(classes))


def _proba(tree: Any) -> np.ndarray:
    """A classifier tree's leaf probabilities (its value rows normalised, as predict_proba does)."""
    v = np.asarray(tree.value, np.float64)[:, 0, :]
    norm = v.sum(axis=1, keepdims=True)
    return v / np.where(norm == 0, 1.0, norm)


def _forest(est: Any) -> tuple | None:
    trees = [t for t in est.estimators_] if hasattr(est, "estimators_") else [est]
    if getattr(est, "n_outputs_", 1) != 1 and hasattr(est, "classes_"):
        return _multi_output_forest(est, trees)
    if getattr(est, "estimators_features_", None) is not None:
        return None
    n = len(trees)
    if hasattr(est, "classes_"):
        parts = [(t.tree_, _proba(t.tree_) / n) for t in trees]
        K = len(est.classes_)
        outs = {"probabilities": TreeOutput("columns", np.arange(K), 1.0, 0.0),
                "label": _label(est.classes_, np.arange(K))}
    else:
        parts = [(t.tree_, np.asarray(t.tree_.value, np.float64)[:, :, 0] / n) for t in trees]
        K = parts[0][1].shape[1]
        outs = {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0)}
    return parts, np.zeros(K), outs, type(est).__name__


def _multi_output_forest(est: Any, trees: list[Any]) -> tuple:
    """A forest classifier of several targets: per target o, its leaves' class frequencies (normalised per
    target, as predict_proba does) in score columns of their own; outputs `probabilities_o` and `label_o`."""
    n = len(trees)
    sizes = [len(c) for c in est.classes_]
    offsets = np.r_[0, np.cumsum(sizes)].astype(int)
    parts = []
    for t in trees:
        v = np.asarray(t.tree_.value, np.float64)
        cols = []
        for o, size in enumerate(sizes):
            vo = v[:, o, :size]
            norm = vo.sum(axis=1, keepdims=True)
            cols.append(vo / np.where(norm == 0, 1.0, norm))
        parts.append((t.tree_, np.concatenate(cols, axis=1) / n))
    outs: dict[str, TreeOutput] = {}
    for o, size in enumerate(sizes):
        k = np.arange(offsets[o], offsets[o + 1])
        outs[f"probabilities_{o}"] = TreeOutput("columns", k, 1.0, 0.0)
        outs[f"label_{o}"] = _label(est.classes_[o], k)
    return parts, np.zeros(int(offsets[-1])), outs, type(est).__name__


def _classifier_outputs(classes: Any, K: int, a: float = 1.0) -> dict[str, TreeOutput]:
    if K == 1:  # binary: p = logistic(a raw), probabilities [1 - p, p], label classes[raw > 0] (decision_function)
        return {"probabilities": TreeOutput("columns", [0, 0], a, 0.0, fn=["logistic", "logistic"],
                                            c=[-1.0, 1.0], d=[1.0, 0.0]),
                "label": _label(classes, [0], rule="threshold")}
    return {"probabilities": TreeOutput("softmax", np.arange(K), 1.0, 0.0), "label": _label(classes, np.arange(K))}


def _gradient_boosting(est: Any) -> tuple | None:
    loss = getattr(est, "loss", "")
    if loss not in ("log_loss", "exponential", "squared_error", "absolute_error", "huber", "quantile"):
        return None
    stages = np.asarray(est.estimators_, dtype=object)
    K = stages.shape[1]
    lr = float(est.learning_rate)
    parts = []
    for i in range(stages.shape[0]):
        for k in range(K):
            tree = stages[i, k].tree_
            v = np.zeros((tree.node_count, K))
            v[:, k] = lr * np.asarray(tree.value, np.float64)[:, 0, 0]
            parts.append((tree, v))
    init = getattr(est, "init_", None)
    if not (init == "zero" or type(init).__name__ in ("DummyClassifier", "DummyRegressor")):
        return None  # an init estimator that depends on the input
    base = np.asarray(est._raw_predict_init(np.zeros((1, est.n_features_in_))), np.float64).reshape(-1)
    if hasattr(est, "classes_"):
        # the exponential loss's half logit link: p = logistic(2 raw) (its label, raw >= 0, the same sign)
        a = 2.0 if loss == "exponential" else 1.0
        return parts, base, _classifier_outputs(est.classes_, K, a), type(est).__name__
    return parts, base, {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0)}, type(est).__name__


def _hist_gradient_boosting(est: Any) -> tuple | None:
    from sklearn._loss.link import IdentityLink, LogitLink, MultinomialLogit

    link = est._loss.link
    parts = []
    K = len(est._predictors[0]) if est._predictors else 1
    for it in est._predictors:
        for k, pred in enumerate(it):
            nodes = pred.nodes
            leaf = nodes["is_leaf"] == 1
            v = np.zeros((len(nodes), K))
            v[:, k] = nodes["value"]
            cat = (nodes["is_categorical"] == 1) & ~leaf
            mode = np.where(cat, MEMBER, LEQ).astype(np.uint8)
            # a categorical split sends the codes whose bit is set in its raw left bitset to the left child
            bitsets = np.asarray(getattr(pred, "raw_left_cat_bitsets", np.zeros((0, 8))), np.uint32)
            members = {}
            for i in np.flatnonzero(cat):
                bits = bitsets[int(nodes["bitset_idx"][i])]
                members[int(i)] = np.array([c for c in range(32 * len(bits)) if (int(bits[c // 32]) >> (c % 32)) & 1],
                                           np.float64)
            parts.append(({"feature": np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
                           "threshold": nodes["num_threshold"],
                           "left": np.where(leaf, -1, nodes["left"].astype(np.int64)),
                           "right": np.where(leaf, -1, nodes["right"].astype(np.int64)),
                           "missing": nodes["missing_go_to_left"], "dtype": None, "mode": mode,
                           "members": members}, v))
    base = np.asarray(est._baseline_prediction, np.float64).reshape(-1)
    if hasattr(est, "classes_"):
        if not isinstance(link, (LogitLink, MultinomialLogit)):
            return None
        return parts, base, _classifier_outputs(est.classes_, K), type(est).__name__
    if not isinstance(link, IdentityLink):
        return None
    return parts, base, {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0)}, type(est).__name__


def _table_trees(table: Any, targets: np.ndarray, K: int, scale: float, dtype: str | None, eps: float,
                 source: str) -> Callable[[_Space, list[Column]], TreeNodes]:
    """TreeNodes from a boosting library's node table as portable's converters read it (one target per tree,
    leaf values times `scale`)."""
    def make(space: _Space, columns: list[Column]) -> TreeNodes:
        n = len(table.left)
        sizes = np.diff(np.r_[table.roots, n])
        per_node = np.repeat(np.asarray(targets, np.int64), sizes)
        values = np.zeros((n, K))
        values[np.arange(n), per_node] = np.asarray(table.values, np.float64)[:, 0] * scale
        feature = np.asarray(table.feature, np.int64)
        left = np.asarray(table.left, np.int64)
        split = (left >= 0) & (feature >= 0) & (feature < len(space.cols))
        fk = np.where(split, feature, 0)
        mode = np.full(n, LEQ, np.uint8) if table.mode is None else np.asarray(table.mode, np.uint8)
        return TreeNodes(list(columns), np.where(split, space.cols[fk], -1),
                         np.where(left >= 0, np.asarray(table.threshold, np.float64), np.nan), left,
                         np.asarray(table.right, np.int64), mode=mode,
                         missing=np.asarray(table.missing_left).astype(np.int8),
                         scale=np.where(split, space.a[fk], 1.0), offset=np.where(split, space.b[fk], 0.0),
                         zero_eps=np.full(n, eps), members=dict(getattr(table, "members", None) or {}) or None,
                         values=values, roots=np.asarray(table.roots, np.int64), dtype=dtype, source=source)
    return make


def _boosting_outputs(est: Any, K: int, kind: str, a: float = 1.0) -> dict[str, TreeOutput] | None:
    """Outputs of a boosting library's model from its raw scores: `binary` ([1 - p, p], p = logistic(a raw)),
    `softmax`, `ova` (logistic per class), `raw`, `logistic` (a regressor's logistic of the score)."""
    if kind == "binary":
        return {"probabilities": TreeOutput("columns", [0, 0], a, 0.0, fn=["logistic", "logistic"], c=[-1.0, 1.0],
                                            d=[1.0, 0.0]),
                "label": _label(est.classes_, [0], a, 0.0, rule="threshold")}
    if kind == "logitraw":  # XGBoost's binary:logitraw: predict_proba is [1 - raw, raw], predict is raw > 0.5
        # (as the ONNX reading writes identity columns: u = a raw + b per column, the first maximum)
        return {"probabilities": TreeOutput("columns", [0, 0], np.array([-1.0, 1.0]), np.array([1.0, 0.0]),
                                            fn=["identity", "identity"]),
                "label": _label(est.classes_, [0, 0], np.array([-1.0, 1.0]), np.array([1.0, 0.0]))}
    if kind == "softmax":
        return {"probabilities": TreeOutput("softmax", np.arange(K), 1.0, 0.0),
                "label": _label(est.classes_, np.arange(K))}
    if kind == "ova":
        return {"probabilities": TreeOutput("columns", np.arange(K), a, 0.0, fn=["logistic"] * K),
                "label": _label(est.classes_, np.arange(K), a)}
    if kind == "raw":
        return {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0)}
    if kind == "logistic":
        return {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0, fn=["logistic"] * K)}
    if kind == "exp":  # a log link (Poisson, gamma, Tweedie): the prediction is exp(raw)
        return {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0, fn=["exp"] * K)}
    return None


def _xgboost(est: Any) -> tuple | None:
    from ..converters.sklearn import boosting

    if est.missing is not None and not np.isnan(est.missing):
        return None
    table, info, base, objective = boosting._xgb_model(est)
    K = len(base)
    if boosting._is_classifier(est):
        kind = {"binary:logistic": "binary", "binary:logitraw": "logitraw", "reg:logistic": "binary",
                "multi:softprob": "softmax", "multi:softmax": "softmax"}.get(objective)
    else:
        kind = "exp" if objective in boosting._LOG_BASE else ("logistic" if objective == "reg:logistic" else "raw")
    outs = _boosting_outputs(est, K, kind) if kind else None
    if outs is None:
        return None
    # XGBoost compares float32 features with float32 splits
    return _table_trees(table, info, K, 1.0, "float32", 0.0, "XGBoost"), base, outs, type(est).__name__


def _lightgbm(est: Any) -> tuple | None:
    from ..converters.sklearn import boosting

    table, target, cats = boosting._lgbm_table(est)
    if getattr(table, "zero_missing", None):
        return None  # zero-as-missing: not read as plain thresholds
    K = int(target.max()) + 1 if len(target) else 1
    objective = str(est.booster_.dump_model().get("objective", "regression")).split()
    name, params = objective[0], dict(p.split(":", 1) for p in objective[1:] if ":" in p)
    sig = float(params.get("sigmoid", 1.0))
    if boosting._is_classifier(est):
        kind = {"binary": "binary", "cross_entropy": "binary", "xentropy": "binary", "multiclass": "softmax",
                "multiclassova": "ova"}.get(name)
    else:
        kind = "exp" if name in ("poisson", "gamma", "tweedie") else (
            "logistic" if name in ("cross_entropy", "xentropy") else "raw")
    outs = _boosting_outputs(est, K, kind, sig) if kind else None
    if outs is None:
        return None
    # LightGBM compares doubles and reads |x| <= 1e-35 as 0
    return _table_trees(table, target, K, 1.0, None, 1e-35, "LightGBM"), np.zeros(K), outs, type(est).__name__


def _catboost(est: Any) -> tuple | None:
    from ..converters.sklearn import boosting

    table, scale, bias = boosting._catboost_table(est)
    K = len(bias)
    loss = str(est.get_all_params().get("loss_function", "RMSE"))
    if boosting._is_classifier(est):
        kind = {"Logloss": "binary", "CrossEntropy": "binary", "MultiClass": "softmax"}.get(loss)
    else:
        kind = None if loss.split(":")[0] in ("Poisson", "Tweedie") else ("raw" if loss.split(":")[0] in (
            "RMSE", "MAE", "Quantile", "MAPE", "Huber", "Lq", "Expectile") else None)
    outs = _boosting_outputs(est, K, kind) if kind else None
    if outs is None:
        return None
    n_trees = len(table.roots)
    values = np.asarray(table.values, np.float64) * scale  # [n, K] already: every leaf carries every target

    def make(space: _Space, columns: list[Column]) -> TreeNodes:
        nodes = _table_trees(table, np.zeros(n_trees, np.int64), 1, 1.0, "float32", 0.0, "CatBoost")(space,
                                                                                                    columns)
        nodes.values = values.reshape(len(values), -1)
        return nodes
    return make, bias, outs, type(est).__name__


def _isolation_forest(est: Any) -> tuple | None:
    """IsolationForest: each leaf holds its path length (depth + c(samples in the leaf) - 1, scikit-learn's own
    per-node tables); `raw` is their sum over the T trees; `decision_function = -2^(-raw / (T c(max_samples))) -
    offset_` (an `exp` column: `-exp(a raw) - offset_`, a = -ln 2 / (T c(max_samples))), and `predict` is -1 where
    that is negative: `a raw - ln(-offset_) > 0` (a threshold rule, classes [1, -1])."""
    from sklearn.ensemble._iforest import _average_path_length

    trees = list(est.estimators_)
    denom = float(len(trees) * _average_path_length([est._max_samples])[0])
    offset = float(est.offset_)
    if not trees or not denom > 0 or not offset < 0:
        return None
    parts = []
    for t, feats, depth, avg in zip(trees, est.estimators_features_, est._decision_path_lengths,
                                    est._average_path_length_per_tree):
        tree = t.tree_
        f = np.asarray(tree.feature, np.int64)
        feats = np.asarray(feats, np.int64)
        # a tree fitted on a subset of the columns reads column feats[f] (all of them, in order, when it is not)
        f = np.where(f >= 0, feats[np.maximum(f, 0)], f) if len(feats) != est.n_features_in_ else f
        v = (np.asarray(depth, np.float64) + np.asarray(avg, np.float64) - 1.0)[:, None]
        parts.append(({"feature": f, "threshold": tree.threshold, "left": tree.children_left,
                       "right": tree.children_right, "missing": np.zeros(len(f), np.int8), "dtype": "float32"}, v))
    a = -np.log(2.0) / denom
    outs = {"scores": TreeOutput("columns", [0], a, 0.0, fn=["exp"], c=[-1.0], d=[-offset]),
            "label": TreeOutput("label", [0], a, -np.log(-offset), rule="threshold", strict=True,
                                classes=np.array([1, -1]))}
    return parts, np.zeros(1), outs, "IsolationForest"


_ENSEMBLES: dict[str, Callable[[Any], tuple | None]] = {
    "IsolationForest": _isolation_forest,
    **{n: _xgboost for n in ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor", "XGBRanker")},
    **{n: _lightgbm for n in ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")},
    **{n: _catboost for n in ("CatBoostClassifier", "CatBoostRegressor")},
    **{n: _forest for n in ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
                            "ExtraTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
                            "ExtraTreesClassifier", "ExtraTreesRegressor")},
    "GradientBoostingClassifier": _gradient_boosting, "GradientBoostingRegressor": _gradient_boosting,
    "HistGradientBoostingClassifier": _hist_gradient_boosting,
    "HistGradientBoostingRegressor": _hist_gradient_boosting,
}


__all__ = ["sklearn_hints", "takes_nan", "LT"]
