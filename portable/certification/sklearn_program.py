"""Read a fitted scikit-learn estimator as a `Program` (see `program`): one reader per estimator class,
registered with `@reads`.

Numeric steps are written from the fitted attributes (scalers, PCA/TruncatedSVD, linear and logistic models,
linear SVMs, naive Bayes, polynomial features, MLPs, numeric imputation). Encoders and string imputers are
column-separable maps of finitely many categories, so their reading asks scikit-learn itself: each category of each
column is transformed once, and the result is exactly linear in the category indicators. Pipelines and
ColumnTransformers compose their steps. scikit-learn computes in float64: the rounding bounds use u = 2^-53.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .onnx_program import _concat_values, _take, input_value
from .program import Label, Program, cat_to_sym, sym_table
from .symbolic import U64, Cat, NotSymbolic, Space, Sym, clip_name, gamma

F64 = "float64"
READERS: dict[str, Callable[[Program, Any, Any], Any]] = {}
FINAL: dict[str, Callable[[Program, Any, Any], dict[str, Any]]] = {}


def reads(*names: str, final: bool = False) -> Callable:
    def deco(func: Callable) -> Callable:
        for n in names:
            (FINAL if final else READERS)[n] = func
        return func
    return deco


class Frame:
    """Columns by name (a DataFrame-fitted model's inputs): each a width-1 Sym or Cat."""

    def __init__(self, columns: dict[str, Any]) -> None:
        self.columns = columns

    def select(self, names: list[str]) -> Any:
        vals = [self.columns[n] for n in names]
        return vals


def read_sklearn(model: Any, space: Space, side: str) -> Program:
    """The Program of a portable SklearnModel (NotSymbolic when some step has no reading)."""
    prog = Program(space, side)
    prog.arith.add("float64")
    specs = model.signature.inputs
    cuts = getattr(space, "cuts", None)  # text vectorizers read as their outputs (see `text`)
    if len(specs) == 1 and specs[0].name == "X":
        if specs[0].is_string and not cuts:
            raise NotSymbolic("a model of documents (text)")
        x: Any = None if specs[0].is_string else input_value(prog, "X", int(specs[0].shape[1]), False)
    else:
        x = Frame({t.name: (None if t.is_string and cuts and t.name in cuts.get("inputs", ())
                            else input_value(prog, t.name, 1, t.is_string)) for t in specs})
    outs = _final(prog, model.estimator, x)
    for spec in model.signature.outputs:
        if spec.name not in outs:
            raise NotSymbolic(f"the output {spec.name} of {type(model.estimator).__name__}")
        v = outs[spec.name]
        prog.outputs[spec.name] = v if isinstance(v, Label) else Sym(v.C.reshape(-1, v.C.shape[-1]),
                                                                    np.asarray(v.E).reshape(-1), v.stage)
    return prog


def _final(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    name = type(est).__name__
    if name == "Pipeline":
        for _, step in est.steps[:-1]:
            x = transform(prog, step, x)
        return _final(prog, est.steps[-1][1], x)
    if name in FINAL:
        return FINAL[name](prog, est, x)
    if name in READERS:
        return {"variable": _as_sym(prog, transform(prog, est, x))}
    raise NotSymbolic(f"{name} has no affine reading")


def transform(prog: Program, est: Any, x: Any) -> Any:
    if est in (None, "passthrough"):
        return x
    cuts = getattr(prog.space, "cuts", None)
    if cuts and id(est) in cuts:  # a text vectorizer: its outputs are the domain's variables
        cut_name, width = cuts[id(est)]
        return input_value(prog, cut_name, width, False)
    name = type(est).__name__
    if name not in READERS:
        raise NotSymbolic(f"the step {name} has no affine reading")
    return READERS[name](prog, est, x)


def _as_sym(prog: Program, x: Any) -> Sym:
    if isinstance(x, Frame):
        x = list(x.columns.values())
    if isinstance(x, list):
        return _concat_values(prog, [_as_sym(prog, v) for v in x], -1)
    if isinstance(x, Cat):
        return cat_to_sym(x, prog)
    return x


@reads("Pipeline")
def _pipeline(prog: Program, est: Any, x: Any) -> Any:
    for _, step in est.steps:
        x = transform(prog, step, x)
    return x


@reads("ColumnTransformer")
def _column_transformer(prog: Program, est: Any, x: Any) -> Any:
    names = list(getattr(est, "feature_names_in_", []))
    idx = getattr(est, "_transformer_to_input_indices", None)
    if idx is None:
        raise NotSymbolic("a ColumnTransformer without its column indices")
    parts = []
    for tname, trans, _cols in est.transformers_:
        if trans == "drop":
            continue
        cols = list(idx.get(tname, []))
        if not cols:
            continue
        if isinstance(x, Frame):
            sub: Any = [x.columns[names[i]] for i in cols]
            # columns of both kinds stay a list: an encoder reads each by category (`_by_category`)
            sub = sub[0] if len(sub) == 1 else (sub if _is_cat(sub) else _join(prog, sub))
        else:
            sub = _take(x, np.asarray(cols), -1)
        out = transform(prog, trans, sub)
        parts.append(out)
    return _join(prog, parts)


def _join(prog: Program, parts: list[Any]) -> Any:
    if all(isinstance(p, Cat) for p in parts):
        return Cat(np.concatenate([p.items for p in parts]))
    return _concat_values(prog, [_as_sym(prog, p) for p in parts], -1)


@reads("FeatureUnion")
def _feature_union(prog: Program, est: Any, x: Any) -> Any:
    """Parallel transformers of the same input, their outputs side by side (each times its weight)."""
    weights = est.transformer_weights or {}
    parts = []
    for name, trans in est.transformer_list:
        if trans is None or trans == "drop":
            continue
        out = x if trans == "passthrough" else transform(prog, trans, x)
        if weights.get(name) is not None:
            s = _as_sym(prog, out)
            out = prog.scale(s, np.full(s.C.shape[:-1], float(weights[name])), F64)
        parts.append(out)
    if not parts:
        raise NotSymbolic("a FeatureUnion whose transformers are all dropped")
    return _join(prog, parts)


@reads("SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr", "SelectFwe", "GenericUnivariateSelect",
       "VarianceThreshold", "SelectFromModel", "RFE", "RFECV", "SequentialFeatureSelector")
def _selector(prog: Program, est: Any, x: Any) -> Any:
    """A feature selector keeps the columns of its support, unchanged."""
    return _take(_as_sym(prog, x), np.flatnonzero(est.get_support()), -1)


# -- numeric transformers ---------------------------------------------------------------------------------------------
def _affine(prog: Program, x: Any, sub: Any = None, mul: Any = None, add: Any = None) -> Sym:
    s = _as_sym(prog, x)
    if sub is not None:
        s = prog.add(s, prog.const(np.asarray(sub, dtype=np.float64)), F64, -1.0)
    if mul is not None:
        s = prog.scale(s, np.asarray(mul, dtype=np.float64), F64)
    if add is not None:
        s = prog.add(s, prog.const(np.asarray(add, dtype=np.float64)), F64)
    return s


@reads("StandardScaler")
def _std(prog: Program, est: Any, x: Any) -> Sym:
    return _affine(prog, x, est.mean_ if est.with_mean else None, 1.0 / est.scale_ if est.with_std else None)


@reads("MinMaxScaler")
def _minmax(prog: Program, est: Any, x: Any) -> Sym:
    if est.clip:
        raise NotSymbolic("MinMaxScaler(clip=True) clips (not affine)")
    return _affine(prog, x, None, est.scale_, est.min_)


@reads("MaxAbsScaler")
def _maxabs(prog: Program, est: Any, x: Any) -> Sym:
    return _affine(prog, x, None, 1.0 / est.scale_)


@reads("RobustScaler")
def _robust(prog: Program, est: Any, x: Any) -> Sym:
    return _affine(prog, x, est.center_ if est.with_centering else None,
                   1.0 / est.scale_ if est.with_scaling else None)


@reads("PCA", "IncrementalPCA")
def _pca(prog: Program, est: Any, x: Any) -> Sym:
    s = _affine(prog, x, est.mean_)
    W = est.components_.T
    if est.whiten:
        W = W / np.sqrt(est.explained_variance_)
    return prog.matmul(s, W, F64)


@reads("TruncatedSVD")
def _svd(prog: Program, est: Any, x: Any) -> Sym:
    return prog.matmul(_as_sym(prog, x), est.components_.T, F64)


@reads("PolynomialFeatures")
def _poly(prog: Program, est: Any, x: Any) -> Sym:
    s = _as_sym(prog, x)
    cols = []
    for powers in est.powers_:
        term = prog.const(np.ones(1))
        for j, p in enumerate(powers):
            for _ in range(int(p)):
                term = prog.multiply(term, _take(s, np.array([j]), -1), F64)
        cols.append(term)
    return _concat_values(prog, cols, -1)


@reads("FunctionTransformer")
def _function(prog: Program, est: Any, x: Any) -> Any:
    if est.func is None:
        return x
    if est.func is np.clip:
        kw = dict(est.kw_args or {})
        lo, hi = kw.pop("a_min", kw.pop("min", None)), kw.pop("a_max", kw.pop("max", None))
        if kw or (lo is None and hi is None) or np.ndim(lo) or np.ndim(hi):
            raise NotSymbolic("np.clip with arguments other than scalar a_min/a_max")
        name = clip_name(-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))
        return prog.column_function(_as_sym(prog, x), name, F64)
    if est.kw_args:
        raise NotSymbolic("a FunctionTransformer with arguments")
    if est.func is np.log1p:
        return prog.column_function(prog.add(_as_sym(prog, x), prog.const(np.ones(1)), F64), "log", F64)
    if est.func in (np.log, np.sqrt):
        return prog.column_function(_as_sym(prog, x), est.func.__name__, F64)
    raise NotSymbolic(f"a FunctionTransformer of {getattr(est.func, '__name__', est.func)}")


@reads("SimpleImputer")
def _imputer(prog: Program, est: Any, x: Any) -> Any:
    if _is_cat(x):
        return _by_category(prog, est, x, strings_out=True)
    from .onnx_program import _isnan, _where

    s = _as_sym(prog, x)
    if not (isinstance(est.missing_values, float) and np.isnan(est.missing_values)):
        raise NotSymbolic("a SimpleImputer of a value other than NaN")
    if np.any(np.isnan(np.asarray(est.statistics_, dtype=np.float64))):
        raise NotSymbolic("a SimpleImputer that drops an all-missing column")
    cond = _isnan(prog, None, {}, [s], F64)[0]
    out = _where(prog, None, {}, [cond, np.asarray(est.statistics_, dtype=np.float64), s], F64)[0]
    if est.add_indicator:
        out = _concat_values(prog, [out, _take(cond, np.asarray(est.indicator_.features_), -1)], -1)
    return out


def _is_cat(x: Any) -> bool:
    return isinstance(x, Cat) or (isinstance(x, list) and any(isinstance(v, Cat) for v in x))


@reads("OneHotEncoder", "OrdinalEncoder", "TargetEncoder")
def _encoder(prog: Program, est: Any, x: Any) -> Sym:
    return _by_category(prog, est, x, strings_out=False)


def _by_category(prog: Program, est: Any, x: Any, *, strings_out: bool) -> Any:
    """A column-separable transformer of categorical columns, evaluated by scikit-learn on each category."""
    cat = x if isinstance(x, Cat) else None
    if cat is None:
        if isinstance(x, list):
            cat = Cat(np.concatenate([(v if isinstance(v, Cat) else sym_table(v, prog)).items for v in x]))
        else:
            cat = sym_table(x, prog)
    items = list(cat.items.reshape(-1))
    m = len(items)
    base = [vals[0] for _, vals in items]
    rows, where = [list(base)], []
    for j, (g, vals) in enumerate(items):
        for k, v in enumerate(vals):
            r = list(base)
            r[j] = v
            rows.append(r)
            where.append((j, g, k))
    out = _call(est, rows, m)
    space = prog.space
    if strings_out:
        res = np.empty(m, dtype=object)
        tabs: dict[int, list[Any]] = {j: [] for j in range(m)}
        for (j, g, k), row in zip(where, out[1:]):
            tabs[j].append(_norm(row[j]))
        for j, (g, vals) in enumerate(items):
            res[j] = (g, tuple(tabs[j]))
        return Cat(res)
    out = np.asarray(out, dtype=np.float64)
    C = np.zeros((out.shape[1], space.size))
    C[:, 0] = out[0]
    for (j, g, k), row in zip(where, out[1:]):
        d = row - out[0]
        if g is None or not np.any(d):
            continue
        mono = space.mono((space.var(("e", space.groups[g].column, k), g),))
        C = space.pad(C)
        C[:, mono] += d
    return Sym(space.pad(C), np.zeros(out.shape[1]), 0)


def _norm(v: Any) -> Any:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else v


def _call(est: Any, rows: list[list[Any]], m: int) -> np.ndarray:
    import warnings

    names = getattr(est, "feature_names_in_", None)
    data = [[np.nan if v == "" else v for v in r] for r in rows]
    if names is not None:
        import pandas as pd

        X: Any = pd.DataFrame(data, columns=list(names), dtype=object)
        for c in X.columns:
            try:
                X[c] = pd.to_numeric(X[c])
            except (ValueError, TypeError):
                pass
    else:
        X = np.array(data, dtype=object)
        try:
            X = X.astype(np.float64)
        except (ValueError, TypeError):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = est.transform(X)
        except Exception as exc:
            raise NotSymbolic(f"{type(est).__name__} refuses a category of the domain: {exc}") from None
    if hasattr(out, "toarray"):
        out = out.toarray()
    return np.asarray(out, dtype=object)


@reads("MissingIndicator")
def _missing(prog: Program, est: Any, x: Any) -> Sym:
    from .onnx_program import _isnan

    s = _as_sym(prog, x)
    return _take(_isnan(prog, None, {}, [s], F64)[0], np.asarray(est.features_), -1)


# -- final estimators -------------------------------------------------------------------------------------------------
def _linear(prog: Program, est: Any, x: Any) -> Sym:
    s = _as_sym(prog, x)
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    b = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
    return prog.add(prog.matmul(s, coef.T, F64), prog.const(np.broadcast_to(b, (coef.shape[0],)).copy()), F64)


@reads("LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDRegressor", "LinearSVR", "HuberRegressor",
       "BayesianRidge", "ARDRegression", "LassoLars", "Lars", "RidgeCV", "LassoCV", "ElasticNetCV",
       "TheilSenRegressor", "QuantileRegressor", "OrthogonalMatchingPursuit", final=True)
def _regressor(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    return {"variable": _linear(prog, est, x)}


def _binary_scores(prog: Program, d: Sym) -> Sym:
    """[0, d]: argmax is class 1 exactly when d > 0 (scikit-learn's rule)."""
    return _concat_values(prog, [prog.const(np.zeros(1)), d], -1)


@reads("LinearSVC", "SGDClassifier", "RidgeClassifier", "RidgeClassifierCV", "Perceptron",
       "PassiveAggressiveClassifier", "LogisticRegression", "LogisticRegressionCV", "LinearDiscriminantAnalysis",
       final=True)
def _classifier(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    d = _linear(prog, est, x)
    if _multilabel(est):  # one yes/no label per column: label_j is 1 where its score is above 0
        out = {f"label_{j}": Label(_binary_scores(prog, _take(d, np.array([j]), -1)), np.array([0, 1]))
               for j in range(d.shape[0])}
        out["scores"] = d
        return out
    classes = np.asarray(est.classes_)
    binary = len(classes) == 2
    out: dict[str, Any] = {}
    proba = hasattr(est, "predict_proba") and type(est).__name__ not in ("SGDClassifier",) or \
        (type(est).__name__ == "SGDClassifier" and est.loss in ("log_loss", "modified_huber"))
    # LinearDiscriminantAnalysis predicts like a logistic regression: expit of its (affine) decision_function for
    # two classes, its softmax for more
    if type(est).__name__.startswith("LogisticRegression") or type(est).__name__ == "LinearDiscriminantAnalysis":
        if binary:
            scores = _concat_values(prog, [prog.scale(d, np.asarray(-1.0), F64), d], -1)
            out["label"] = Label(scores, classes)
            out["probabilities"] = prog.activate(scores, "sigmoid", F64)
        else:
            out["label"] = Label(d, classes)
            out["probabilities"] = prog.activate(d, "softmax", F64)
        return out
    if proba:
        raise NotSymbolic(f"{type(est).__name__}({est.loss}) probabilities")
    out["label"] = Label(_binary_scores(prog, d) if binary else d, classes)
    out["scores"] = d
    return out


def _multilabel(est: Any) -> bool:
    lb = getattr(est, "_label_binarizer", None)
    return str(getattr(lb, "y_type_", "")).startswith("multilabel")


@reads("GaussianNB", final=True)
def _gaussian_nb(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    s = _as_sym(prog, x)
    var = np.asarray(est.var_, dtype=np.float64)
    theta = np.asarray(est.theta_, dtype=np.float64)
    jll = []
    for c in range(len(est.classes_)):
        diff = prog.add(s, prog.const(theta[c]), F64, -1.0)
        sq = prog.scale(prog.multiply(diff, diff, F64), -0.5 / var[c], F64)
        tot = prog.matmul(sq, np.ones((len(theta[c]), 1)), F64)
        const = np.log(est.class_prior_[c]) - 0.5 * np.sum(np.log(2.0 * np.pi * var[c]))
        jll.append(prog.add(tot, prog.const(np.array([const])), F64))
    j = _concat_values(prog, jll, -1)
    # predict_proba is exp(jll - logsumexp(jll)) (scipy's logsumexp, shifted by the maximum)
    return {"label": Label(j, np.asarray(est.classes_)), "probabilities": prog.softmax_lse(j, F64)}


@reads("MultinomialNB", "ComplementNB", "BernoulliNB", "CategoricalNB", final=True)
def _discrete_nb(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    name = type(est).__name__
    if name == "CategoricalNB" or (name == "BernoulliNB" and est.binarize is not None):
        raise NotSymbolic(f"{name}'s joint log-likelihood is not linear here")
    s = _as_sym(prog, x)
    W = np.asarray(est.feature_log_prob_, dtype=np.float64)
    b = np.asarray(est.class_log_prior_, dtype=np.float64)
    if name == "ComplementNB" and len(est.classes_) > 1:
        b = np.zeros_like(b)  # its joint log-likelihood is X @ feature_log_prob_.T alone
    if name == "BernoulliNB":
        neg = np.log1p(-np.exp(W))
        b = b + neg.sum(axis=1)
        W = W - neg
    j = prog.add(prog.matmul(s, W.T, F64), prog.const(b), F64)
    # predict_proba is exp(jll - logsumexp(jll)) (scipy's logsumexp, shifted by the maximum)
    return {"label": Label(j, np.asarray(est.classes_)), "probabilities": prog.softmax_lse(j, F64)}


_ACT = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "identity", "softmax": "softmax"}


def _mlp_forward(prog: Program, est: Any, x: Any) -> Sym:
    s = _as_sym(prog, x)
    n = len(est.coefs_)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        s = prog.add(prog.matmul(s, np.asarray(W, dtype=np.float64), F64), prog.const(np.asarray(b, np.float64)), F64)
        act = est.activation if i < n - 1 else None
        if act is not None:
            s = prog.activate(s, _ACT[act], F64)
    return s


@reads("MLPRegressor", final=True)
def _mlp_regressor(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    return {"variable": _mlp_forward(prog, est, x)}


@reads("MLPClassifier", final=True)
def _mlp_classifier(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    z = _mlp_forward(prog, est, x)
    if _multilabel(est) and est.out_activation_ == "logistic":  # label_j: 1 where its probability is above 0.5
        h = prog.activate(z, "sigmoid", F64)
        out = {f"label_{j}": Label(_concat_values(prog, [prog.const(np.full(1, 0.5), h.stage),
                                                         _take(h, np.array([j]), -1)], -1), np.array([0, 1]))
               for j in range(h.shape[0])}
        out["probabilities"] = h
        return out
    classes = np.asarray(est.classes_)
    if est.out_activation_ == "softmax":
        p = prog.activate(z, "softmax", F64)
        return {"label": Label(p, classes), "probabilities": p}
    if est.out_activation_ == "logistic" and len(classes) == 2:
        h = prog.activate(z, "sigmoid", F64)
        one = prog.const(np.ones(1), h.stage)
        p = _concat_values(prog, [prog.add(one, h, F64, -1.0), h], -1)
        return {"label": Label(p, classes), "probabilities": p}
    raise NotSymbolic(f"MLPClassifier with output activation {est.out_activation_}")


@reads("MultiOutputClassifier", final=True)
def _multi_output_classifier(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    """One model per target, each on the same inputs: output `o` of target j is `o_j` (label_j, probabilities_j),
    each read as that model alone (their nonlinearities are blocks of one stage)."""
    out: dict[str, Any] = {}
    for j, sub in enumerate(est.estimators_):
        out.update({f"{k}_{j}": v for k, v in _final(prog, sub, x).items()})
    return out


@reads("MultiOutputRegressor", final=True)
def _multi_output_regressor(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    parts = []
    for sub in est.estimators_:
        got = _final(prog, sub, x)
        if set(got) != {"variable"}:
            raise NotSymbolic(f"MultiOutputRegressor of {type(sub).__name__}")
        parts.append(got["variable"])
    return {"variable": _concat_values(prog, parts, -1)}


@reads("KNeighborsClassifier", "KNeighborsRegressor", "RadiusNeighborsClassifier", "RadiusNeighborsRegressor",
       final=True)
def _neighbors(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    raise NotSymbolic(f"{type(est).__name__} predicts from its nearest training points: a function that is piecewise "
                      "over a partition of the inputs by distances to every training point, neither affine nor a "
                      "tree, so no method bounds it (the sampled check stands alone)")


@reads("KNNImputer")
def _knn_imputer(prog: Program, est: Any, x: Any) -> Any:
    raise NotSymbolic("KNNImputer fills a missing value with the mean of the nearest training rows: piecewise over a "
                      "partition by distances to every training row, neither affine nor a tree, so no method bounds "
                      "it (the sampled check stands alone)")


@reads("ClassifierChain", final=True)
def _classifier_chain(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    raise NotSymbolic("ClassifierChain feeds each model's predicted label (a step function of the inputs) to the "
                      "next models as a feature: not an affine composition")


@reads("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV", final=True)
def _search(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    if not hasattr(est, "best_estimator_"):
        raise NotSymbolic(f"{type(est).__name__}(refit=False) predicts nothing")
    return _final(prog, est.best_estimator_, x)


@reads("TransformedTargetRegressor", final=True)
def _transformed_target(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    inverse = {np.expm1: -1.0, np.exp: 0.0}
    t = est.transformer_
    if t is not None and type(t).__name__ in _AFFINE_INVERSE:  # an affine scaler of the target: its inverse
        z = _final(prog, est.regressor_, x)["variable"]
        return {"variable": _affine(prog, z, *_AFFINE_INVERSE[type(t).__name__](t))}
    if t is not None and type(t).__name__ != "FunctionTransformer" or \
            est.inverse_func not in inverse:
        raise NotSymbolic("TransformedTargetRegressor with an inverse other than exp/expm1")
    z = _final(prog, est.regressor_, x)["variable"]
    h = prog.activate(_as_sym(prog, z), "exp", F64)
    return {"variable": prog.add(h, prog.const(np.full(h.shape, inverse[est.inverse_func]), h.stage), F64)}


# the inverse_transform of a target scaler as (sub, mul, add), in scikit-learn's order of operations
_AFFINE_INVERSE: dict[str, Callable[[Any], tuple[Any, Any, Any]]] = {
    "StandardScaler": lambda t: (None, t.scale_ if t.with_std else None, t.mean_ if t.with_mean else None),
    "RobustScaler": lambda t: (None, t.scale_ if t.with_scaling else None, t.center_ if t.with_centering else None),
    "MaxAbsScaler": lambda t: (None, t.scale_, None),
}


def _rbf_kernel(prog: Program, est: Any, x: Any) -> Sym:
    """exp(-gamma |x - sv_i|^2) per support vector: a separable quadratic in each column, then exp. libsvm
    computes |x|^2 + |sv|^2 - 2 x.sv in float64 (cancellation: bounded by gamma_(n+3) times the terms' sizes)."""
    if est.kernel != "rbf":
        raise NotSymbolic(f"{type(est).__name__}(kernel={est.kernel!r}): only the RBF kernel is read")
    s = _as_sym(prog, x)
    space = prog.space
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    gamma_ = float(est._gamma)
    n = sv.shape[1]
    lin = space.pad(s.C)
    if lin.ndim != 2 or lin.shape[0] != n:
        raise NotSymbolic("an SVM over a tensor that is not a row of columns")
    sq = [prog.multiply(_take(s, np.array([j]), -1), _take(s, np.array([j]), -1), F64) for j in range(n)]
    sqC = sum(space.pad(q.C)[0] for q in sq)
    lin = space.pad(s.C)
    C = -gamma_ * (sqC[None, :] - 2 * sv @ lin + (sv ** 2).sum(axis=1)[:, None] * np.eye(1, space.size))
    mx = prog.mag(s)
    terms = (mx ** 2).sum() + (sv ** 2).sum(axis=1) + 2 * np.abs(sv) @ mx
    E = gamma_ * (gamma(n + 3, U64 * 2) * terms + 2 * np.abs(sv) @ s.E + 2 * mx @ s.E + (s.E ** 2).sum())
    pre = Sym(C, E, s.stage)
    return prog.activate(pre, "exp", F64)


@reads("SVR", "NuSVR", final=True)
def _svr(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    k = _rbf_kernel(prog, est, x)
    coef = np.asarray(est.dual_coef_, dtype=np.float64).T
    b = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
    return {"variable": prog.add(prog.matmul(k, coef, F64), prog.const(b, k.stage), F64)}


@reads("SVC", "NuSVC", final=True)
def _svc(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    proba = hasattr(est, "predict_proba")
    if len(est.classes_) != 2 or proba:
        raise NotSymbolic(f"{type(est).__name__} with {len(est.classes_)} classes"
                          + (" and Platt probabilities" if proba else "") + ": only binary scores are read")
    k = _rbf_kernel(prog, est, x)
    d = prog.add(prog.matmul(k, np.asarray(est.dual_coef_, dtype=np.float64).T, F64),
                 prog.const(np.asarray(est.intercept_, dtype=np.float64).reshape(-1), k.stage), F64)
    return {"label": Label(_binary_scores(prog, d), np.asarray(est.classes_)), "scores": d}


# -- ensembles of readable models: calibration, voting, stacking ----------------------------------------------------
_LINEAR_DECISION = ("LinearSVC", "SGDClassifier", "RidgeClassifier", "RidgeClassifierCV", "Perceptron",
                    "PassiveAggressiveClassifier", "LogisticRegression", "LogisticRegressionCV")


def _decision(prog: Program, est: Any, x: Any) -> Sym:
    """decision_function of a linear classifier (through a pipeline's transformers): [1] binary, [k] else."""
    name = type(est).__name__
    if name == "Pipeline":
        for _, step in est.steps[:-1]:
            x = transform(prog, step, x)
        return _decision(prog, est.steps[-1][1], x)
    if name in ("GridSearchCV", "RandomizedSearchCV") and hasattr(est, "best_estimator_"):
        return _decision(prog, est.best_estimator_, x)
    if name in _LINEAR_DECISION:
        return _linear(prog, est, x)
    if name in ("SVC", "NuSVC") and getattr(est, "kernel", None) == "linear" and len(est.classes_) == 2:
        return _linear(prog, est, x)
    raise NotSymbolic(f"the decision function of {name}")


@reads("CalibratedClassifierCV", final=True)
def _calibrated(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    """The mean over folds of each fold's calibrated probabilities. Sigmoid calibration of a linear decision d:
    p = 1 / (1 + exp(a d + b)), a logistic of an affine map (binary: [1 - p, p]; several classes: each class's
    p normalised to sum 1, an L1 normalisation)."""
    classes = np.asarray(est.classes_)
    k = len(classes)
    folds = []
    for cc in est.calibrated_classifiers_:
        if any(type(c).__name__ != "_SigmoidCalibration" for c in cc.calibrators):
            raise NotSymbolic("CalibratedClassifierCV(method='isotonic'): a step function of the decision")
        d = _decision(prog, cc.estimator, x)
        units = []
        for j, cal in enumerate(cc.calibrators):
            dj = _take(d, np.array([j]), -1)
            z = prog.add(prog.scale(dj, np.asarray(-float(cal.a_)), F64), prog.const(np.array([-float(cal.b_)])),
                         F64)
            units.append(prog.activate(z, "sigmoid", F64))
        folds.append(units)
    parts = []
    for units in folds:
        if k == 2:
            p = units[0]
            parts.append(_concat_values(prog, [prog.add(prog.const(np.ones(1), p.stage), p, F64, -1.0), p], -1))
        else:
            if len(units) != k:
                raise NotSymbolic("a calibrated classifier whose folds saw fewer classes")
            parts.append(_concat_values(prog, units, -1))
    if k != 2:
        parts = [prog.activate(p, "l1norm", F64) for p in parts]
    proba = _mean(prog, parts, np.ones(len(parts)))
    return {"label": Label(proba, classes), "probabilities": proba}


def _mean(prog: Program, parts: list[Sym], weights: np.ndarray) -> Sym:
    """sum w_i parts_i / sum w (numpy's average)."""
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    total = None
    for wi, p in zip(w, parts):
        term = prog.scale(_as_sym(prog, p), np.asarray(wi), F64)
        total = term if total is None else prog.add(total, term, F64)
    return total


def _member_weights(est: Any) -> np.ndarray:
    w = getattr(est, "weights", None)
    members = [e for _, e in est.estimators if e != "drop"]
    if w is None:
        return np.ones(len(members))
    return np.asarray([wi for wi, (_, e) in zip(w, est.estimators) if e != "drop"], dtype=np.float64)


@reads("VotingClassifier", final=True)
def _voting_classifier(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    if est.voting != "soft":
        raise NotSymbolic("VotingClassifier(voting='hard'): a majority of labels")
    probs = [_final(prog, e, x)["probabilities"] for e in est.estimators_]
    proba = _mean(prog, probs, _member_weights(est))
    return {"label": Label(proba, np.asarray(est.classes_)), "probabilities": proba}


@reads("VotingRegressor", final=True)
def _voting_regressor(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    preds = [_final(prog, e, x)["variable"] for e in est.estimators_]
    return {"variable": _mean(prog, preds, _member_weights(est))}


def _stack_features(prog: Program, est: Any, x: Any, classifier: bool) -> Sym:
    parts = []
    for member, method in zip(est.estimators_, est.stack_method_):
        if member == "drop":
            continue
        if method == "predict_proba":
            p = _final(prog, member, x)["probabilities"]
            if len(est.classes_) == 2:
                p = _take(p, np.array([1]), -1)
        elif method == "decision_function":
            p = _decision(prog, member, x)
        elif method == "predict" and not classifier:
            p = _final(prog, member, x)["variable"]
        else:
            raise NotSymbolic(f"a stacked member's {method}")
        parts.append(_as_sym(prog, p))
    if est.passthrough:
        parts.append(_as_sym(prog, x))
    return _concat_values(prog, parts, -1)


@reads("StackingClassifier", final=True)
def _stacking_classifier(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    out = dict(_final(prog, est.final_estimator_, _stack_features(prog, est, x, True)))
    lab = out.get("label")
    if isinstance(lab, Label):
        out["label"] = Label(lab.scores, np.asarray(est.classes_))
    return out


@reads("StackingRegressor", final=True)
def _stacking_regressor(prog: Program, est: Any, x: Any) -> dict[str, Any]:
    return _final(prog, est.final_estimator_, _stack_features(prog, est, x, False))
