"""A second unseen set for issue 13's independent verification: models and pipelines that are in neither the
sample table, the realistic pipelines nor `unseen_mutations.py` (TransformedTargetRegressor, one-vs-rest/one/output
code, multi-output, bagging with feature subsets, IsolationForest, ExtraTrees, AdaBoost, HistGradientBoosting with
NaN, SGD/Perceptron/PassiveAggressive/Ridge classifiers, Lasso/ElasticNet/Huber/Quantile/Poisson/Gamma/Tweedie,
KernelRidge, PLS, Gaussian/Bernoulli/Categorical naive Bayes, NearestCentroid, RadiusNeighbors, KMeans, PCA with
whitening, FastICA, KernelPCA, SplineTransformer, PolynomialFeatures, PowerTransformer, QuantileTransformer,
MaxAbsScaler, KBinsDiscretizer(ordinal), SimpleImputer strategies, tf-idf with n-grams, sublinear tf and character
n-grams, DataFrames with string, category, integer and missing columns through OrdinalEncoder(unknown_value),
TargetEncoder, OneHotEncoder and Binarizer, XGBoost/LightGBM/CatBoost with NaN and categories), each converted to
ONNX (float32) and mutated by the kinds of `unseen_mutations.candidates` and by these further kinds:

op_swap[A->B] (Add<->Sub, Mul<->Div, Max<->Min, Less<->LessOrEqual, Greater<->GreaterOrEqual on a node with a
constant operand), relu_removed, base_values, aggregate_function, init_element (one element of a float
initializer x (1 + 1e-3)), epsilon (a tiny constant x 10), cast_internal (a float32 tensor rounded through
float16), label_changed (one class label replaced by a new one), gather_swap (two constant indices of a
Gather / ArrayFeatureExtractor swapped), imputer_op_fill (an `Imputer` node's fill value), tree_missing_nan (a
node that routes missing values: its direction flipped).

A mutation is real when some row of an independent set differs outside the checker's tolerance
(`unseen_mutations.verification`: training rows, 20,000 uniform rows over 1.5x the training box, missing values
and unknown categories per column, rows reaching a mutated tree node, rows on a moved constant), or when the
checker's counterexample, run again, differs (`mutations.proven`). Each real one is checked with
`portable.check(samples=1000)` for seeds 0-2 without data and seed 0 with `data=` the training rows.

    python -m benchmarks.unseen_mutations2 [name-prefix ...]   (--false-alarms: the unmutated artifacts, seeds 0-9)
"""
from __future__ import annotations

import copy
import sys
import time
import warnings
import zlib
from typing import Any

import numpy as np

from .mutations import _attr, _tree_arrays, numeric, proven
from .unseen_mutations import (_change_one, _get, _init, _init_arr, _put, _real, _set, candidates, feeds_u,
                               narrowed, verification)

SEEDS = (0, 1, 2)


# ---- the models -----------------------------------------------------------------------------------------------

def _data(kind):
    from sklearn.datasets import load_iris, load_diabetes, load_wine, load_breast_cancer
    if kind == "iris":
        return load_iris(return_X_y=True)
    if kind == "wine":
        X, y = load_wine(return_X_y=True); return X[:, :6], y
    if kind == "cancer":
        X, y = load_breast_cancer(return_X_y=True); return X[:, :8], y
    if kind == "diabetes":
        return load_diabetes(return_X_y=True)
    if kind == "pos":  # positive targets
        X, y = load_diabetes(return_X_y=True); return X, y / 100.0
    if kind == "counts":
        X, y = load_diabetes(return_X_y=True); return X, np.round(y / 30.0)
    if kind == "bin01":
        X, _ = load_iris(return_X_y=True); return (X > np.median(X, 0)).astype(float), load_iris(return_X_y=True)[1]
    if kind == "cat_int":
        rng = np.random.default_rng(0); X = rng.integers(0, 4, (300, 4)).astype(float)
        return X, (X[:, 0] + X[:, 1] * (X[:, 2] > 1) > 3).astype(int)
    if kind == "nan_cls":
        X, y = load_wine(return_X_y=True); X = X[:, :6].copy()
        X[np.random.default_rng(1).random(X.shape) < 0.12] = np.nan; return X, y
    if kind == "nan_reg":
        X, y = load_diabetes(return_X_y=True); X = X[:, :6].copy()
        X[np.random.default_rng(2).random(X.shape) < 0.12] = np.nan; return X, y
    if kind == "multi_reg":
        X, y = load_diabetes(return_X_y=True); return X, np.stack([y, X[:, 2] * 100 + y / 3], 1)
    raise KeyError(kind)

def _frame(n=400, seed=3):
    import pandas as pd
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"size": rng.gamma(3, 20, n), "rooms": rng.integers(1, 7, n),
                       "zone": rng.choice(["north", "south", "east", "west", "centre"], n),
                       "kind": rng.choice(["flat", "house", "loft"], n, p=[.5, .35, .15]),
                       "age": rng.normal(30, 15, n)})
    df.loc[rng.random(n) < 0.08, "age"] = np.nan
    y = (df["size"] / 20 + df["rooms"] + (df.zone == "centre") * 3 - (df.kind == "loft") * 2
         + np.nan_to_num(df.age, nan=30) / 15 + rng.normal(0, 1, n))
    return df, y.to_numpy()

def _text(n=240, seed=5):
    rng = np.random.default_rng(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
    docs, y = [], []
    for i in range(n):
        k = int(rng.integers(2, 9)); ws = list(rng.choice(words, k))
        docs.append(" ".join(ws)); y.append(int(("beta" in ws) + ("sigma" in ws) + ("tau pi" in " ".join(ws)) > 0))
    return np.array(docs, dtype=object), np.array(y)

def b(make, kind):
    def build():
        X, y = _data(kind)
        return make().fit(X, y), X, None
    return build

def bf(make, target="reg"):
    def build():
        df, y = _frame()
        if target == "cls":
            y = (y > np.median(y)).astype(int)
        elif target == "cls3":
            y = np.digitize(y, np.quantile(y, [.33, .66]))
        return make().fit(df, y), df, df
    return build

def bt(make_vec, make_model):
    def build():
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline
        X, y = _text()
        df = pd.DataFrame({"doc": X})
        est = make_pipeline(ColumnTransformer([("t", make_vec(), "doc")]), make_model()).fit(df, y)
        return est, df, df
    return build

def models():
    from sklearn import linear_model as lm, ensemble as en, preprocessing as pp, decomposition as de, \
        naive_bayes as nb, neighbors as ne, cluster as cl, impute as im, multiclass as mc, \
        multioutput as mo, cross_decomposition as cd, compose as co, tree as tr
    from sklearn.pipeline import make_pipeline
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.kernel_ridge import KernelRidge
    LR = lambda: lm.LogisticRegression(max_iter=2000)
    out = [
        ("ttr_sqrt_ridge", b(lambda: co.TransformedTargetRegressor(lm.Ridge(), func=np.sqrt, inverse_func=np.square), "diabetes")),
        ("ovr_logreg", b(lambda: mc.OneVsRestClassifier(LR()), "wine")),
        ("ovo_svc_lin", b(lambda: mc.OneVsOneClassifier(lm.LogisticRegression(max_iter=2000)), "iris")),
        ("output_code", b(lambda: mc.OutputCodeClassifier(lm.RidgeClassifier(), code_size=2, random_state=0), "iris")),
        ("multi_out_ridge", b(lambda: mo.MultiOutputRegressor(lm.Ridge()), "multi_reg")),
        ("bagging_cls", b(lambda: en.BaggingClassifier(tr.DecisionTreeClassifier(max_depth=4), n_estimators=5, random_state=0), "wine")),
        ("bagging_reg_feat", b(lambda: en.BaggingRegressor(tr.DecisionTreeRegressor(max_depth=4), n_estimators=5, max_features=0.7, random_state=0), "diabetes")),
        ("isolation_forest", b(lambda: en.IsolationForest(n_estimators=10, random_state=0), "wine")),
        ("extra_trees_cls", b(lambda: en.ExtraTreesClassifier(8, max_depth=6, random_state=0), "wine")),
        ("extra_trees_reg", b(lambda: en.ExtraTreesRegressor(8, max_depth=6, random_state=0), "diabetes")),
        ("adaboost_cls", b(lambda: en.AdaBoostClassifier(n_estimators=10, random_state=0), "wine")),
        ("adaboost_reg", b(lambda: en.AdaBoostRegressor(n_estimators=10, random_state=0), "diabetes")),
        ("hgb_cls_nan", b(lambda: en.HistGradientBoostingClassifier(max_iter=15, random_state=0), "nan_cls")),
        ("hgb_reg_nan", b(lambda: en.HistGradientBoostingRegressor(max_iter=15), "nan_reg")),
        ("sgd_hinge", b(lambda: make_pipeline(pp.StandardScaler(), lm.SGDClassifier(random_state=0)), "wine")),
        ("perceptron", b(lambda: make_pipeline(pp.StandardScaler(), lm.Perceptron(random_state=0)), "wine")),
        ("passive_aggr", b(lambda: make_pipeline(pp.RobustScaler(), lm.PassiveAggressiveClassifier(random_state=0)), "cancer")),
        ("ridge_cls", b(lambda: lm.RidgeClassifier(), "wine")),
        ("lasso", b(lambda: lm.Lasso(alpha=0.1), "diabetes")),
        ("elastic", b(lambda: lm.ElasticNet(alpha=0.01), "diabetes")),
        ("huber", b(lambda: make_pipeline(pp.StandardScaler(), lm.HuberRegressor(max_iter=500)), "diabetes")),
        ("quantile_reg", b(lambda: lm.QuantileRegressor(quantile=0.7, alpha=0.0), "diabetes")),
        ("poisson", b(lambda: lm.PoissonRegressor(), "counts")),
        ("gamma", b(lambda: lm.GammaRegressor(), "pos")),
        ("tweedie", b(lambda: lm.TweedieRegressor(power=1.5), "pos")),
        ("kernel_ridge", b(lambda: KernelRidge(kernel="rbf", gamma=0.1), "diabetes")),
        ("pls", b(lambda: cd.PLSRegression(2), "diabetes")),
        ("gaussian_nb", b(lambda: nb.GaussianNB(), "wine")),
        ("bernoulli_nb", b(lambda: nb.BernoulliNB(binarize=0.0), "diabetes_cls") if False else b(lambda: nb.BernoulliNB(), "bin01")),
        ("categorical_nb", b(lambda: nb.CategoricalNB(), "cat_int")),
        ("nearest_centroid", b(lambda: ne.NearestCentroid(), "wine")),
        ("radius_nn", b(lambda: make_pipeline(pp.StandardScaler(), ne.RadiusNeighborsClassifier(radius=2.0, outlier_label="most_frequent")), "iris")),
        ("kmeans", b(lambda: cl.KMeans(4, n_init=2, random_state=0), "wine")),
        ("minibatch_kmeans_lr", b(lambda: make_pipeline(cl.MiniBatchKMeans(5, n_init=2, random_state=0), LR()), "iris")),
        ("pca_whiten_lr", b(lambda: make_pipeline(de.PCA(3, whiten=True), LR()), "wine")),
        ("fastica_ridge", b(lambda: make_pipeline(de.FastICA(3, random_state=0, max_iter=500), lm.Ridge()), "diabetes")),
        ("kernel_pca_lr", b(lambda: make_pipeline(de.KernelPCA(3, kernel="rbf", gamma=0.1), LR()), "iris")),
        ("spline_ridge", b(lambda: make_pipeline(pp.SplineTransformer(n_knots=4), lm.Ridge()), "diabetes")),
        ("poly_lr", b(lambda: make_pipeline(pp.PolynomialFeatures(2), pp.StandardScaler(), LR()), "iris")),
        ("power_ridge", b(lambda: make_pipeline(pp.PowerTransformer(), lm.Ridge()), "diabetes")),
        ("quantile_uniform_lr", b(lambda: make_pipeline(pp.QuantileTransformer(n_quantiles=50), LR()), "wine")),
        ("maxabs_lr", b(lambda: make_pipeline(pp.MaxAbsScaler(), LR()), "wine")),
        ("kbins_ordinal_ridge", b(lambda: make_pipeline(pp.KBinsDiscretizer(4, encode="ordinal", strategy="quantile"), lm.Ridge()), "diabetes")),
        ("imputer_median_lr", b(lambda: make_pipeline(im.SimpleImputer(strategy="median"), pp.StandardScaler(), LR()), "nan_cls")),
        ("imputer_constant_ridge", b(lambda: make_pipeline(im.SimpleImputer(strategy="constant", fill_value=-1.0), lm.Ridge()), "nan_reg")),
        ("imputer_mostfreq_tree", b(lambda: make_pipeline(im.SimpleImputer(strategy="most_frequent", add_indicator=True), tr.DecisionTreeRegressor(max_depth=5, random_state=0)), "nan_reg")),
        ("tfidf_ngram_sublinear", bt(lambda: TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LR)),
        ("tfidf_char", bt(lambda: TfidfVectorizer(analyzer="char", ngram_range=(2, 3), max_features=200), lm.RidgeClassifier)),
        ("frame_ordinal_unknown_gbr", bf(lambda: make_pipeline(co.ColumnTransformer([
            ("c", pp.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["zone", "kind"]),
            ("n", im.SimpleImputer(), ["size", "rooms", "age"])]), en.GradientBoostingRegressor(n_estimators=15, random_state=0)))),
        ("frame_target_enc_lr", bf(lambda: make_pipeline(co.ColumnTransformer([
            ("c", pp.TargetEncoder(random_state=0), ["zone", "kind"]),
            ("n", make_pipeline(im.SimpleImputer(strategy="median"), pp.StandardScaler()), ["size", "rooms", "age"])]), LR()), "cls")),
        ("frame_onehot_binarizer_svc", bf(lambda: make_pipeline(co.ColumnTransformer([
            ("c", pp.OneHotEncoder(handle_unknown="ignore"), ["zone", "kind"]),
            ("b", pp.Binarizer(threshold=3.5), ["rooms"]),
            ("n", make_pipeline(im.SimpleImputer(strategy="mean"), pp.RobustScaler()), ["size", "age"])]), lm.LogisticRegression(max_iter=2000)), "cls3")),
        ("frame_normalizer_knn", bf(lambda: make_pipeline(co.ColumnTransformer([
            ("n", make_pipeline(im.SimpleImputer(), pp.Normalizer(norm="l1")), ["size", "rooms", "age"])]), ne.KNeighborsRegressor(4)))),
    ]
    try:
        import xgboost, lightgbm, catboost
        out += [
            ("xgb_nan_cls", b(lambda: xgboost.XGBClassifier(n_estimators=10, max_depth=3), "nan_cls")),
            ("lgbm_nan_reg", b(lambda: lightgbm.LGBMRegressor(n_estimators=10, num_leaves=8, verbose=-1), "nan_reg")),
            ("catboost_nan_reg", b(lambda: catboost.CatBoostRegressor(iterations=10, depth=3, verbose=0, random_seed=0), "nan_reg")),
            ("frame_hgb_cat", bf_cat(lambda: en.HistGradientBoostingRegressor(max_iter=15, categorical_features="from_dtype"))),
            ("frame_xgb_cat", bf_cat(lambda: xgboost.XGBRegressor(n_estimators=10, max_depth=3, enable_categorical=True, tree_method="hist"))),
            ("frame_lgbm_cat", bf_cat(lambda: lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1, min_child_samples=5), "cls")),
        ]
    except ImportError:
        pass
    return out

def bf_cat(make, target="reg"):
    def build():
        df, y = _frame()
        df = df.copy()
        for c in ("zone", "kind"):
            df[c] = df[c].astype("category")
        if target == "cls":
            y = (y > np.median(y)).astype(int)
        return make().fit(df, y), df, df
    return build


# ---- further mutation kinds -----------------------------------------------------------------------------------

SWAPS = {"Add": "Sub", "Sub": "Add", "Mul": "Div", "Div": "Mul", "Max": "Min", "Min": "Max", "Less": "LessOrEqual",
         "LessOrEqual": "Less", "Greater": "GreaterOrEqual", "GreaterOrEqual": "Greater"}


def more_candidates(proto: Any, rng: np.random.Generator) -> list[tuple[str, Any, dict[str, Any]]]:
    """(kind, mutated proto, info) for the kinds above, one or two seeded sites per kind."""
    from onnx import TensorProto, helper

    out: list[tuple[str, Any, dict[str, Any]]] = []
    g0 = proto.graph
    inits = {i.name for i in g0.initializer}
    producer = {o: n for n in g0.node for o in n.output}

    def each(pred: Any) -> list[int]:
        return [k for k, n in enumerate(g0.node) if "_roworder_" not in n.name and pred(n)]

    def pick(ks: list[int], n: int = 1) -> list[int]:
        return [] if not ks else sorted(rng.choice(ks, min(n, len(ks)), replace=False).tolist())

    def fresh() -> tuple[Any, Any]:
        p = copy.deepcopy(proto)
        return p, p.graph

    def const_of(n: Any) -> str | None:
        return next((i for i in n.input if i in inits and _init_arr(_init(g0, i)).dtype.kind == "f"), None)

    # an operator swapped, on a node with a constant operand (the comparisons: the constant's values probed)
    for k in pick(each(lambda n: n.op_type in SWAPS and const_of(n) is not None), 3):
        p, g = fresh()
        op = g.node[k].op_type
        g.node[k].op_type = SWAPS[op]
        c = _init_arr(_init(g0, const_of(g0.node[k]))).reshape(-1)
        info: dict[str, Any] = {}
        if op in ("Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Max", "Min") and c.size:
            info["probe"] = c[:64].astype(np.float64)
        out.append((f"op_swap[{op}->{SWAPS[op]}]", p, info))
    # ReLU removed
    for k in pick(each(lambda n: n.op_type == "Relu")):
        p, g = fresh()
        g.node[k].op_type = "Identity"
        out.append(("relu_removed", p, {}))
    # tree ensembles: base_values, aggregate_function, a missing-value route flipped where NaN is routed
    for k in pick(each(lambda n: n.op_type in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"))):
        n0 = g0.node[k]
        p, g = fresh()
        n = g.node[k]
        a = _attr(n, "base_values")
        width = int(_get(_attr(n, "n_targets"))) if _attr(n, "n_targets") is not None else \
            len(set(_get(_attr(n, "class_ids")))) if _attr(n, "class_ids") is not None else 1
        v = list(_get(a)) if a is not None else [0.0] * width
        j = int(rng.integers(0, len(v)))
        v[j] = v[j] * (1 + 1e-3) if v[j] != 0 else 1e-3
        _set(n, "base_values", [float(x) for x in v])
        out.append(("base_values", p, {}))
        if n0.op_type == "TreeEnsembleRegressor":
            p, g = fresh()
            cur = _get(_attr(g.node[k], "aggregate_function")).decode() if _attr(g.node[k], "aggregate_function") \
                else "SUM"
            _set(g.node[k], "aggregate_function", {"SUM": "AVERAGE", "AVERAGE": "SUM", "MIN": "MAX",
                                                  "MAX": "MIN"}[cur])
            out.append((f"aggregate_function[{cur}]", p, {}))
        tracks = _attr(n0, "nodes_missing_value_tracks_true")
        if tracks is not None and any(_get(tracks)):
            ones = [j for j, t in enumerate(_get(tracks)) if t]
            j = ones[int(rng.integers(0, len(ones)))]
            p, g = fresh()
            t = list(_get(_attr(g.node[k], "nodes_missing_value_tracks_true")))
            t[j] = 0
            _set(g.node[k], "nodes_missing_value_tracks_true", t)
            out.append(("tree_missing_nan", p, {"tree": k, "split": j, "at": "nan"}))
    # one element of a float initializer
    sized = [i for i in g0.initializer if i.data_type in (1, 11) and _init_arr(i).size >= 2]
    for j in (rng.choice(len(sized), min(2, len(sized)), replace=False) if sized else []):
        p, g = fresh()
        old, new = _change_one(_init(g, sized[int(j)].name), rng, lambda x: x * (1 + 1e-3) if x != 0 else 1e-3)
        out.append(("init_element", p, {"probe": np.array([old, new])}))
    # an epsilon: a tiny nonzero float constant x 10
    tiny = [i for i in g0.initializer if i.data_type in (1, 11) and _init_arr(i).size <= 4 and
            np.any((np.abs(_init_arr(i)) > 0) & (np.abs(_init_arr(i)) < 1e-4))]
    if tiny:
        p, g = fresh()
        init = _init(g, tiny[int(rng.integers(0, len(tiny)))].name)
        arr = _init_arr(init)
        small = (np.abs(arr) > 0) & (np.abs(arr) < 1e-4)
        arr[small] = arr[small] * 10
        _put(init, arr)
        out.append(("epsilon", p, {}))
    # a float32 tensor rounded through float16 (a Cast's `to` narrowed) after a Cast to float
    for k in pick(each(lambda n: n.op_type == "Cast" and _get(_attr(n, "to")) == TensorProto.FLOAT)):
        p, g = fresh()
        n = g.node[k]
        y = n.output[0]
        n.output[0] = y + "_mh"
        _set(n, "to", TensorProto.FLOAT16)
        g.node.insert(k + 1, helper.make_node("Cast", [y + "_mh"], [y], to=TensorProto.FLOAT))
        out.append(("cast_internal[float16]", p, {}))
    # a class label replaced by a new one (attributes, or a constant read by Gather after an ArgMax)
    for k in pick(each(lambda n: any(_attr(n, a) is not None for a in ("classlabels_int64s", "classlabels_ints",
                                                                       "classlabels_strings")))):
        p, g = fresh()
        n = g.node[k]
        a = next(a for a in ("classlabels_int64s", "classlabels_ints", "classlabels_strings") if _attr(n, a))
        v = list(_get(_attr(n, a)))
        j = int(rng.integers(0, len(v)))
        v[j] = v[j] + b"x" if isinstance(v[j], bytes) else max(v) + 7
        _set(n, a, v)
        out.append(("label_changed", p, {}))
    gathered = [k for k in each(lambda n: n.op_type in ("Gather", "ArrayFeatureExtractor") and n.input[0] in inits
                                and n.input[1] in producer and producer[n.input[1]].op_type in ("ArgMax", "ArgMin",
                                                                                              "Cast", "Reshape"))]
    for k in pick(gathered):
        p, g = fresh()
        init = _init(g, g.node[k].input[0])
        arr = _init_arr(init)
        if arr.ndim == 1 and 1 < arr.size <= 100:
            j = int(rng.integers(0, arr.size))
            if arr.dtype.kind in "OSU":
                arr[j] = (arr[j].decode() if isinstance(arr[j], bytes) else str(arr[j])) + "x"
                arr = arr.astype(object)
            else:
                arr[j] = arr.max() + 7
            _put(init, arr)
            out.append(("label_changed", p, {}))
    # two constant column indices of a Gather / ArrayFeatureExtractor swapped
    idx = [k for k in each(lambda n: n.op_type in ("Gather", "ArrayFeatureExtractor") and len(n.input) == 2
                           and n.input[1] in inits and _init_arr(_init(g0, n.input[1])).dtype.kind == "i"
                           and len(set(_init_arr(_init(g0, n.input[1])).reshape(-1).tolist())) >= 2)]
    for k in pick(idx):
        p, g = fresh()
        init = _init(g, g.node[k].input[1])
        arr = _init_arr(init)
        flat = arr.reshape(-1)
        i1, i2 = rng.choice(flat.size, 2, replace=False)
        while flat[i1] == flat[i2]:
            i1, i2 = rng.choice(flat.size, 2, replace=False)
        flat[[i1, i2]] = flat[[i2, i1]]
        _put(init, flat.reshape(arr.shape))
        out.append(("gather_swap", p, {}))
    # an ONNX-ML Imputer's fill value
    for k in pick(each(lambda n: n.op_type == "Imputer" and _attr(n, "imputed_value_floats") is not None)):
        p, g = fresh()
        v = list(_get(_attr(g.node[k], "imputed_value_floats")))
        j = int(rng.integers(0, len(v)))
        v[j] = v[j] * 1.01 if v[j] else 0.01
        _set(g.node[k], "imputed_value_floats", [float(x) for x in v])
        out.append(("imputer_op_fill", p, {"nan": True}))
    return out


def _probe_rows(X: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Rows with each column, in turn, on each probed value and its float32 neighbours (a comparison's constant
    read on a raw column)."""
    vals = []
    for v in probe:
        v32 = np.float32(v)
        vals += [float(v), float(v32), float(np.nextafter(v32, np.float32(np.inf))),
                 float(np.nextafter(v32, np.float32(-np.inf)))]
    vals = np.asarray(vals)
    head = np.nan_to_num(X[:5], nan=0.0)
    rows = []
    for j in range(X.shape[1]):
        r = np.repeat(head, len(vals), axis=0)
        r[:, j] = np.tile(vals, len(head))
        rows.append(r)
    return np.concatenate(rows)


# ---- run --------------------------------------------------------------------------------------------------------

def _ratio(rep: Any) -> str:
    """An equivalent verdict's largest max_abs_diff / atol over the numeric outputs (how near the tolerance)."""
    r = [o["max_abs_diff"] / o["atol"] for o in rep.outputs if o.get("max_abs_diff") is not None and o.get("atol")]
    return f"eq({max(r):.2f})" if r else "eq"


def run(prefixes: list[str], seeds: tuple[int, ...] = SEEDS, with_data: bool = True,
        onnx_pair: bool = False) -> list[dict[str, Any]]:
    """`onnx_pair`: also check the unmutated ONNX artifact against the mutated one (seed 0; everything the
    checker knows then comes from the ONNX side's hints)."""
    import portable

    results = []
    for name, build in models():
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        try:
            est, X, data = build()
            Xn, frame_cols = numeric(X)
            sk = portable.load(est, data=data)
            art = portable.convert(est, to="onnx", dtype="float32", check=False, data=data)
        except Exception as exc:
            print(f"{name}: not converted ({type(exc).__name__}: {exc})", flush=True)
            continue
        found = []
        try:
            found += candidates(art.proto, rng, Xn.shape[1])
        except Exception as exc:
            print(f"{name}: unseen_mutations.candidates failed ({type(exc).__name__}: {exc})", flush=True)
        try:
            found += more_candidates(art.proto, rng)
        except Exception as exc:
            print(f"{name}: more_candidates failed ({type(exc).__name__}: {exc})", flush=True)
        for kind, proto, info in found:
            rec: dict[str, Any] = {"model": name, "kind": kind}
            try:
                m = portable.load(proto)
                m.run(feeds_u(sk, Xn[:2], frame_cols, X))
            except Exception as exc:
                rec["status"] = f"breaks ({type(exc).__name__})"
                results.append(rec)
                print(rec, flush=True)
                continue
            vrows = verification(Xn, frame_cols, info, art.proto, rng)
            if "probe" in info and frame_cols is None:
                vrows = np.concatenate([vrows, _probe_rows(Xn, info["probe"])])
            is_real = _real(sk, m, art, vrows, frame_cols, X, est)
            verdicts = []
            for seed in seeds:
                rep = None
                try:
                    rep = portable.check(sk, m, samples=1000, seed=seed)
                    verdicts.append(_ratio(rep) if rep.equivalent else "NOT")
                except Exception as exc:
                    verdicts.append(f"error:{type(exc).__name__}")
                if rep is not None and not rep.equivalent and not is_real and proven(sk, m, rep, est):
                    is_real = "shown by the checker's counterexample"
            if with_data:
                try:
                    rep = portable.check(sk, m, samples=1000, seed=0, data=X)
                    verdicts.append("data:" + (_ratio(rep) if rep.equivalent else "NOT"))
                    if not rep.equivalent and not is_real and proven(sk, m, rep, est):
                        is_real = "shown by the checker's counterexample"
                except Exception as exc:
                    verdicts.append(f"data:error:{type(exc).__name__}")
            if onnx_pair:
                try:
                    rep = portable.check(art, m, samples=1000, seed=0)
                    verdicts.append("onnx:" + (_ratio(rep) if rep.equivalent else "NOT"))
                except Exception as exc:
                    verdicts.append(f"onnx:error:{type(exc).__name__}")
            rec["real"] = is_real
            rec["verdicts"] = verdicts
            missed = any(":eq" in v or v.startswith("eq") for v in verdicts)
            rec["status"] = ("MISSED" if is_real and missed else "caught" if is_real else
                             "not real; flagged" if any(v.endswith("NOT") for v in verdicts) else "not real; eq")
            results.append(rec)
            print(rec, flush=True)
    return results


def false_alarms(prefixes: list[str]) -> None:
    """unseen_false_alarms' sweep (seeds 0-9 on the unmutated float32 artifacts) over this set's models."""
    from .unseen_false_alarms import run

    run((name, build) for name, build in models()
        if not prefixes or any(name.startswith(p) for p in prefixes))

if __name__ == "__main__":
    warnings.simplefilter("ignore")
    from threadpoolctl import threadpool_limits

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with threadpool_limits(limits=1):
        if "--false-alarms" in sys.argv:
            false_alarms(args)
            sys.exit(0)
        t0 = time.perf_counter()
        res = run(args, seeds=(0,) if "--quick" in sys.argv else SEEDS, with_data="--no-data" not in sys.argv,
                  onnx_pair="--onnx" in sys.argv)
    real = [r for r in res if r.get("real")]
    missed = [r for r in res if r.get("status") == "MISSED"]
    kinds = sorted({r["kind"].split("[")[0] for r in res})
    print(f"\n{len(res)} mutations of {len({r['model'] for r in res})} models, {len(kinds)} kinds; real {len(real)}; "
          f"caught {len(real) - len(missed)}; missed {len(missed)} ({time.perf_counter() - t0:.0f} s)")
    for r in missed:
        print("MISSED", r)
