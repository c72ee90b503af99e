"""XGBoost, LightGBM and CatBoost scikit-learn-API models as `ai.onnx.ml` TreeEnsemble (opset 5).

The trees are read from each library's own model dump (XGBoost's JSON model, LightGBM's `trees_to_dataframe`,
CatBoost's JSON export) into portable's tree builder (`trees.NodeTable`), so they share its exact
float64 form and its vectorized attribute writing, and they work inside scikit-learn pipelines (the converters
are registered with skl2onnx like the others). onnxmltools 1.16 writes the deprecated TreeEnsembleClassifier /
Regressor, which onnxruntime runs in float32 only and which cannot share a model with opset-5 TreeEnsemble.

Each library compares the way it computes: XGBoost and CatBoost in float32 (`x < t`, resp. `x > t`), LightGBM
in float64 (`x <= t`). The libraries are imported by the user's model, never by portable: `bridge.py` only
installs converters for libraries that are already imported.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from ...errors import ConversionError, UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter
from .trees import LEQ, LT, MEMBER, NodeTable, _build_one_target_per_tree

# class path -> kind; registered when the top-level module is imported
MODELS: dict[str, str] = {
    "xgboost.sklearn.XGBClassifier": "classifier",
    "xgboost.sklearn.XGBRegressor": "regressor",
    "xgboost.sklearn.XGBRFClassifier": "classifier",
    "xgboost.sklearn.XGBRFRegressor": "regressor",
    "lightgbm.sklearn.LGBMClassifier": "classifier",
    "lightgbm.sklearn.LGBMRegressor": "regressor",
    "catboost.core.CatBoostClassifier": "classifier",
    "catboost.core.CatBoostRegressor": "regressor",
}
LIBRARIES = ("xgboost", "lightgbm", "catboost")  # the prefixes a pickle needs `--trust` for


def _is_classifier(est: Any) -> bool:
    return MODELS.get(f"{type(est).__module__}.{type(est).__name__}") == "classifier" or \
        type(est).__name__.endswith("Classifier")


# -- XGBoost ------------------------------------------------------------------------------------------------

_LOGIT_BASE = {"binary:logistic", "reg:logistic"}
_LOG_BASE = {"count:poisson", "reg:gamma", "reg:tweedie"}


def _xgb_model(est: Any) -> tuple[NodeTable, np.ndarray, np.ndarray, str]:
    booster = est.get_booster()
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    if learner["gradient_booster"].get("name", "gbtree") not in ("gbtree", "dart"):
        raise UnsupportedModelError(f"XGBoost booster '{learner['gradient_booster'].get('name')}' has no trees")
    model = _xgb_trees_model(learner)
    trees, info = model["trees"], np.asarray(model["tree_info"], dtype=np.int64)
    if any(int(t.get("tree_param", {}).get("size_leaf_vector", "1") or 1) > 1 for t in trees):
        raise UnsupportedModelError("XGBoost trees with vector leaves (multi_strategy='multi_output_tree') are not "
                                    "supported; the default multi_strategy='one_output_per_tree' is")
    limit = _xgb_tree_limit(est, learner, len(trees))
    trees, info = trees[:limit], info[:limit]
    sizes = np.array([len(t["left_children"]) for t in trees], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    shift = np.repeat(offsets, sizes)
    left = np.concatenate([t["left_children"] for t in trees]).astype(np.int64)
    right = np.concatenate([t["right_children"] for t in trees]).astype(np.int64)
    leaf = left < 0
    cond = np.concatenate([np.asarray(t["split_conditions"], dtype=np.float32) for t in trees])
    k = int(info.max()) + 1 if len(info) else 1
    values = np.zeros((len(left), 1))
    values[leaf, 0] = cond[leaf]
    drop = learner["gradient_booster"].get("weight_drop")
    if drop is not None:  # dart: each tree's leaves scaled by its weight at prediction
        values[:, 0] *= np.repeat(np.asarray(drop, dtype=np.float64)[:len(trees)], sizes)
    left, right = np.where(leaf, -1, left + shift), np.where(leaf, -1, right + shift)
    default_left = np.concatenate([t["default_left"] for t in trees]).astype(bool)
    mode = np.full(len(left), LT, np.uint8)
    members: dict[int, np.ndarray] = {}
    for t, off in zip(trees, offsets):
        # categorical split (enable_categorical): the listed category codes go right, the other codes left, a
        # missing value (NaN; unknown categories arrive as NaN) the default way; written as "in the set goes
        # left" with the children swapped
        for node, seg, size in zip(t.get("categories_nodes", []), t.get("categories_segments", []),
                                   t.get("categories_sizes", [])):
            i = int(off + node)
            members[i] = np.asarray(t["categories"][seg:seg + size], dtype=np.float64)
            mode[i] = MEMBER
            left[i], right[i] = right[i], left[i]
            default_left[i] = not default_left[i]
    # the hessian sum of the training rows that reached each node: which child is the frequent one
    cover = (np.concatenate([np.asarray(t["sum_hessian"], dtype=np.float64) for t in trees])
             if trees and all(len(t.get("sum_hessian", ())) == len(t["left_children"]) for t in trees) else None)
    table = NodeTable(left, right, np.concatenate([t["split_indices"] for t in trees]).astype(np.int64),
                      cond.astype(np.float64), default_left, values, offsets, mode=mode, members=members, cover=cover)
    base = np.asarray(json.loads(learner["learner_model_param"]["base_score"].replace("E", "e"))
                      if learner["learner_model_param"]["base_score"].startswith("[")
                      else [float(learner["learner_model_param"]["base_score"])], dtype=np.float64)
    if objective in _LOGIT_BASE:
        base = np.log(base / (1 - base))
    elif objective in _LOG_BASE:
        base = np.log(base)
    base = np.broadcast_to(base.astype(np.float32).astype(np.float64), (k,)).copy()
    _xgb_verify_base(booster, table, info, base, k, limit // _trees_per_iteration(learner))
    return table, info, base, objective


def _xgb_tree_limit(est: Any, learner: dict[str, Any], n_trees: int) -> int:
    """The trees scikit-learn-API predict uses: up to the best iteration when early stopping kept one."""
    best = getattr(est, "best_iteration", None) if getattr(est, "early_stopping_rounds", None) else None
    if best is None:
        return n_trees
    return min(n_trees, (int(best) + 1) * _trees_per_iteration(learner))


def _xgb_trees_model(learner: dict[str, Any]) -> dict[str, Any]:
    gb = learner["gradient_booster"]
    return gb["gbtree"]["model"] if gb.get("name") == "dart" else gb["model"]


def _trees_per_iteration(learner: dict[str, Any]) -> int:
    params = _xgb_trees_model(learner).get("gbtree_model_param", {})
    classes = max(1, int(learner["learner_model_param"].get("num_class", "0") or 0))
    targets = max(1, int(learner["learner_model_param"].get("num_target", "1") or 1))
    parallel = int(params.get("num_parallel_tree", "1"))
    return classes * targets * parallel


def _xgb_verify_base(booster: Any, table: NodeTable, info: np.ndarray, base: np.ndarray, k: int,
                     iterations: int) -> None:
    """Check the intercept portable derived from the objective against XGBoost's own margins on a few rows."""
    import xgboost

    x = np.zeros((2, booster.num_features()), dtype=np.float32)
    x[1] = 1.0
    types = booster.feature_types
    d = xgboost.DMatrix(x, feature_names=booster.feature_names, feature_types=types,
                        enable_categorical=bool(types and "c" in types))
    rng = (0, max(1, iterations))
    margin = booster.predict(d, output_margin=True, iteration_range=rng).reshape(2, -1).astype(np.float64)
    leaves = booster.predict(d, pred_leaf=True, iteration_range=rng).reshape(2, -1).astype(np.int64)[:, :len(info)]
    node = leaves + table.roots[None, :]
    sums = np.zeros((2, k))
    for c in range(k):
        sums[:, c] = table.values[node[:, info == c], 0].sum(axis=1)
    if not np.allclose(margin, sums + base, rtol=1e-4, atol=1e-4):
        raise ConversionError(f"portable could not reproduce the intercept of this XGBoost model "
                              f"({learner_objective(booster)}); please report it")


def learner_objective(booster: Any) -> str:
    return json.loads(booster.save_config())["learner"]["objective"]["name"]


@sklearn_converter("xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRFClassifier", kind="classifier")
@sklearn_converter("xgboost.sklearn.XGBRegressor", "xgboost.sklearn.XGBRFRegressor", "xgboost.sklearn.XGBRanker",
                   kind="regressor", note="rankers give their raw scores, as their predict does")
def convert_xgboost(em: Emitter, est: Any) -> list[Any]:
    table, info, base, objective = _xgb_model(est)
    forest = _build_one_target_per_tree(table, info)
    forest.n_targets = len(base)
    x = em.as_float32_then_back(em.input())  # XGBoost compares float32 features with float32 splits
    missing = est.missing if est.missing is not None else np.nan
    if not np.isnan(missing):  # XGBoost(missing=0.0): that value takes the default branch, as NaN does
        x = em.node("Where", [em.node("Equal", [x, em.const(float(missing))], "ismiss"), em.const(np.nan), x],
                    "xmiss")
    raw = em.ensemble(x, forest, "margin", base=base, width=em.width(), original_sum="float32")
    if _is_classifier(est):
        if objective in ("binary:logistic", "binary:logitraw", "reg:logistic"):
            # binary:logitraw: XGBoost's predict_proba is [1 - margin, margin] (no sigmoid) and predict is
            # margin > 0.5, the argmax of those two columns
            p1 = raw if objective == "binary:logitraw" else em.node("Sigmoid", [raw], "p1")
            proba = em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p1], "p0"), p1], "proba", axis=1)
        elif objective == "multi:softprob" or objective == "multi:softmax":
            proba = em.node("Softmax", [raw], "proba", axis=1)
        else:
            raise UnsupportedModelError(f"XGBoost classifier objective '{objective}' is not supported")
        em.label(proba, np.asarray(est.classes_))
        return [None, proba]
    if objective in _LOG_BASE:
        return [em.node("Exp", [raw], "pred")]
    if objective == "reg:logistic":
        return [em.node("Sigmoid", [raw], "pred")]
    return [raw]


# -- LightGBM ------------------------------------------------------------------------------------------------

# LightGBM's kZeroThreshold, the float literal 1e-35f: its predict reads a row's values with |x| <= it as absent,
# that is as 0.0 (`RowFunctionFromDenseMatric` keeps only `fabs(x) > kZeroThreshold || isnan(x)`)
LGBM_ZERO32 = float(np.float32(1e-35))


def _lgbm_snapped(thr: np.ndarray) -> np.ndarray:
    """Thresholds on the raw value x of splits `snap(x) <= t`, snap(x) being 0.0 where |x| <= kZeroThreshold (c):
    for t >= 0 the tiny values join the left side (x <= max(t, c)); for -c <= t < 0 they leave it (x < -c);
    below -c nothing changes. NaN is not snapped."""
    c = LGBM_ZERO32
    below = np.nextafter(-c, -np.inf)
    return np.where(thr >= 0, np.maximum(thr, c), np.where(thr >= -c, below, thr))


def _lgbm_linear(est: Any) -> bool:
    """Whether the booster's trees have linear leaves (`linear_tree=True`, saved as `is_linear=1` per tree; the
    parameter may be absent from a booster read back from a file, so its first tree is read too)."""
    if dict(getattr(est.booster_, "params", None) or {}).get("linear_tree"):
        return True
    return "\nis_linear=1" in est.booster_.model_to_string(num_iteration=1)


def _lgbm_table(est: Any) -> tuple[NodeTable, np.ndarray, list[int]]:
    booster = est.booster_
    df = booster.trees_to_dataframe()
    k = booster.num_model_per_iteration()
    n_iter = booster.current_iteration()
    best = getattr(est, "best_iteration_", None) or 0
    if best > 0:
        n_iter = best
    df = df[df["tree_index"] < n_iter * k]
    df = df.reset_index(drop=True)
    index = {name: i for i, name in enumerate(df["node_index"])}
    is_leaf = df["left_child"].isna().to_numpy()
    left = np.array([index[c] if isinstance(c, str) else -1 for c in df["left_child"]], dtype=np.int64)
    right = np.array([index[c] if isinstance(c, str) else -1 for c in df["right_child"]], dtype=np.int64)
    names = list(booster.feature_name())
    col = {n: i for i, n in enumerate(names)}
    feat = np.array([col[f] if isinstance(f, str) else 0 for f in df["split_feature"]], dtype=np.int64)
    tree = df["tree_index"].to_numpy().astype(np.int64)
    first = np.flatnonzero(np.r_[True, tree[1:] != tree[:-1]])
    mtype = df["missing_type"].to_numpy()
    categorical = (df["decision_type"].to_numpy() == "==") & ~is_leaf
    thr = np.zeros(len(df))
    num = ~is_leaf & ~categorical
    thr[num] = df["threshold"].to_numpy()[num].astype(np.float64)
    raw_thr = thr.copy()
    thr[num] = _lgbm_snapped(thr[num])
    default_left = df["missing_direction"].to_numpy() == "left"
    # missing_type None: LightGBM reads NaN as 0.0, so NaN goes where 0.0 goes; missing_type Zero
    # (zero_as_missing=True): NaN is read as 0.0 and 0.0 takes the default branch (`convert_lightgbm` turns
    # zeros into NaN for those features, so the default branch is the missing branch)
    zero_left = 0.0 <= raw_thr
    missing_left = np.where(np.isin(mtype, ["NaN", "Zero"]), default_left, zero_left)
    members: dict[int, np.ndarray] = {}
    cat_features: list[int] = []
    for i in np.flatnonzero(categorical):
        cats = np.array([float(v) for v in str(df["threshold"][i]).split("||")])
        members[int(i)] = cats
        # NaN goes right whatever the missing type (LightGBM 4 does not read it as category 0: measured)
        missing_left[i] = False
        cat_features.append(int(feat[i]))
    values = df["value"].to_numpy().astype(np.float64)[:, None]
    if booster.dump_model(num_iteration=1).get("average_output", False):
        # boosting_type="rf": LightGBM divides the trees' sum by the number of iterations it predicts with
        # (`average_output`); each leaf carries its share, as a scikit-learn forest's do
        values = values / n_iter
    mode = np.where(categorical, MEMBER, LEQ).astype(np.uint8)
    table = NodeTable(left, right, feat, thr, missing_left.astype(bool), values, first.astype(np.int64), mode,
                      members)
    target = (np.arange(len(first)) % k).astype(np.int64)
    table.zero_missing = sorted({int(f) for f, m, leaf in zip(feat, mtype, is_leaf) if m == "Zero" and not leaf})
    return table, target, sorted(set(cat_features))


@sklearn_converter("lightgbm.sklearn.LGBMClassifier", kind="classifier")
@sklearn_converter("lightgbm.sklearn.LGBMRegressor", "lightgbm.sklearn.LGBMRanker", kind="regressor",
                   note="rankers give their raw scores, as their predict does")
def convert_lightgbm(em: Emitter, est: Any) -> list[Any]:
    if _is_classifier(est) and callable(getattr(est, "objective", None)):
        raise UnsupportedModelError(
            "LGBMClassifier with a custom objective function: LightGBM's predict and predict_proba then return raw "
            "scores, not labels and probabilities, so there is no classifier to convert; fit an LGBMRegressor "
            "with that objective for the raw scores")
    if _lgbm_linear(est):
        raise UnsupportedModelError(
            "LightGBM model fitted with linear_tree=True: its leaves are linear models of the inputs (leaf_const, "
            "leaf_coeff), not constants; portable does not convert linear-tree leaves (refit without linear_tree)")
    table, target, cat_features = _lgbm_table(est)
    forest = _build_one_target_per_tree(table, target)
    forest.n_targets = int(target.max()) + 1
    x = em.input()
    if cat_features:
        # LightGBM reads a categorical value as `static_cast<int>(x)`, truncated toward zero (-0.5 is category 0;
        # -1 and below fall outside every set): trunc(x) = x - fmod(x, 1), exact; NaN and inf give NaN (right)
        mask = np.zeros(est.n_features_in_, dtype=bool)
        mask[cat_features] = True
        trunc = em.node("Sub", [x, em.node("Mod", [x, em.const(1.0)], "xfrac", fmod=1)], "xtrunc")
        x = em.node("Where", [em.const(mask[None, :], dtype=bool), trunc, x], "xcat")
    if getattr(table, "zero_missing", None):
        # zero_as_missing: LightGBM's predict reads |x| <= kZeroThreshold as 0.0, and 0.0 takes the default branch
        zmask = np.zeros(est.n_features_in_, dtype=bool)
        zmask[table.zero_missing] = True
        tiny = em.node("LessOrEqual", [em.node("Abs", [x], "absx"), em.const(LGBM_ZERO32)], "iszero")
        isz = em.node("And", [em.const(zmask[None, :], dtype=bool), tiny], "zmiss")
        x = em.node("Where", [isz, em.const(np.nan), x], "xzero")
    raw = em.ensemble(x, forest, "raw", width=em.width())
    objective = str(est.booster_.dump_model().get("objective", "regression")).split()
    name = objective[0]
    params = dict(p.split(":", 1) for p in objective[1:] if ":" in p)
    if _is_classifier(est):
        if name in ("binary", "cross_entropy", "xentropy"):
            scaled = em.node("Mul", [raw, em.const(float(params.get("sigmoid", 1.0)))], "scaled")
            p1 = em.node("Sigmoid", [scaled], "p1")
            proba = em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p1], "p0"), p1], "proba", axis=1)
        elif name == "multiclass":
            proba = em.node("Softmax", [raw], "proba", axis=1)
        elif name == "multiclassova":  # one-vs-all: an independent sigmoid per class, not normalized
            proba = em.node("Sigmoid", [em.node("Mul", [raw, em.const(float(params.get("sigmoid", 1.0)))],
                                                "scaled")], "proba")
        else:
            raise UnsupportedModelError(f"LightGBM classifier objective '{name}' is not supported")
        em.label(proba, np.asarray(est.classes_))
        return [None, proba]
    if name in ("poisson", "gamma", "tweedie"):
        return [em.node("Exp", [raw], "pred")]
    if name in ("cross_entropy", "xentropy"):
        return [em.node("Sigmoid", [raw], "pred")]
    return [raw]


def notes(estimator: Any) -> list[str]:
    """What a converted model's user should know about its boosting steps: rankers and custom objectives give
    raw scores."""
    from ...formats.sklearn import walk

    out = []
    for e in walk(estimator):
        name = type(e).__name__
        if name in ("XGBRanker", "LGBMRanker"):
            out.append(f"{name}: the output is the raw ranking score (what its predict gives), not a rank")
        elif name.startswith(("XGB", "LGBM")) and callable(getattr(e, "objective", None)) and \
                not _is_classifier(e):
            out.append(f"{name} with a custom objective: the output is the raw score (what its predict gives); "
                       "apply the objective's link function yourself")
    return out


# -- CatBoost ------------------------------------------------------------------------------------------------

def _catboost_json(est: Any) -> dict[str, Any]:
    import os
    import tempfile

    if est.get_cat_feature_indices():
        raise UnsupportedModelError("CatBoost models with categorical features are not supported")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        est.save_model(path, format="json")
        with open(path) as fh:
            return json.load(fh)


def _catboost_table(est: Any, model: dict[str, Any] | None = None) -> tuple[NodeTable, float, np.ndarray]:
    """CatBoost's trees as one NodeTable, a split `x > border` sending the row right (left: `x <= border`).

    Symmetric (oblivious) trees, CatBoost's default, become complete binary trees in heap order: depth d gives
    2^d - 1 tests and 2^d leaves. CatBoost's leaf index has bit i set when split i says `x > border`; with the root
    testing the last split and each level the one before, the heap position of a leaf (left = 0) is exactly that
    index. Non-symmetric trees (`grow_policy` Depthwise or Lossguide) are read node by node from their nested
    JSON (`trees`). NaN goes where the feature's `nan_value_treatment` says: right for AsTrue (`nan_mode` Max),
    left otherwise (Min; AsIs means the model saw no NaN and CatBoost reads it as Min).
    """
    model = _catboost_json(est) if model is None else model
    floats = model["features_info"].get("float_features", [])
    nan_right = {f["flat_feature_index"]: f.get("nan_value_treatment") == "AsTrue" for f in floats}
    dim = int(model.get("model_info", {}).get("approx_dimension", 0) or 0)
    scale_bias = model.get("scale_and_bias", [1.0, [0.0] * max(dim, 1)])
    dim = dim or len(np.asarray(scale_bias[1], dtype=np.float64).reshape(-1)) or 1
    if "oblivious_trees" in model:
        parts = _catboost_oblivious(model["oblivious_trees"], nan_right, dim)
    elif "trees" in model:
        parts = _catboost_nonsymmetric(model["trees"], nan_right, dim)
    else:
        raise UnsupportedModelError("this CatBoost model's JSON export has neither 'oblivious_trees' nor 'trees'")
    roots, offset = [], 0
    for p in parts:
        roots.append(offset)
        offset += len(p[0])
    left, right, feat, thr, miss, vals = (np.concatenate([p[i] for p in parts]) for i in range(6))
    shift = np.repeat(np.asarray(roots, np.int64), [len(p[0]) for p in parts])
    left = np.where(left >= 0, left + shift, -1)
    right = np.where(right >= 0, right + shift, -1)
    bias = np.broadcast_to(np.asarray(scale_bias[1], dtype=np.float64).reshape(-1), (dim,)).copy()
    table = NodeTable(left, right, feat, thr, miss.astype(bool), vals, np.asarray(roots, dtype=np.int64))
    return table, float(scale_bias[0]), bias


def _catboost_oblivious(trees: list[dict[str, Any]], nan_right: dict[int, bool], dim: int
                        ) -> list[tuple[np.ndarray, ...]]:
    parts = []
    for t in trees:
        splits = t.get("splits") or []  # (null for a tree without a split)
        d = len(splits)
        leaves = np.asarray(t["leaf_values"], dtype=np.float64).reshape(2 ** d, dim)
        n_inner = 2 ** d - 1
        heap = np.arange(n_inner)
        level = np.floor(np.log2(heap + 1)).astype(np.int64)
        which = d - 1 - level
        for j in which:
            if splits[j].get("split_type", "FloatFeature") != "FloatFeature":
                raise UnsupportedModelError(f"CatBoost split type '{splits[j].get('split_type')}' is not supported")
        feat = np.array([splits[j]["float_feature_index"] for j in which], dtype=np.int64)
        border = np.array([splits[j]["border"] for j in which], dtype=np.float64)
        nanr = np.array([nan_right.get(int(f), False) for f in feat], dtype=bool)
        none = np.full(2 ** d, -1, np.int64)
        values = np.zeros((n_inner + 2 ** d, dim))
        values[n_inner:] = leaves
        parts.append((np.r_[heap * 2 + 1, none], np.r_[heap * 2 + 2, none],
                      np.r_[feat, np.zeros(2 ** d, np.int64)], np.r_[border, np.zeros(2 ** d)],
                      np.r_[~nanr, np.zeros(2 ** d, bool)], values))
    return parts


def _catboost_nonsymmetric(trees: list[dict[str, Any]], nan_right: dict[int, bool], dim: int
                           ) -> list[tuple[np.ndarray, ...]]:
    parts = []
    for t in trees:
        left, right, feat, thr, miss, vals = [], [], [], [], [], []
        stack = [(t, -1, False)]  # (node, parent, is the parent's right child); depth-first, no recursion
        while stack:
            node, parent, is_right = stack.pop()
            i = len(left)
            if parent >= 0:
                (right if is_right else left)[parent] = i
            left.append(-1)
            right.append(-1)
            if not isinstance(node, dict):
                raise UnsupportedModelError("a CatBoost tree node is not an object in the model's JSON export")
            if "split" in node:
                split = node["split"]
                if split.get("split_type", "FloatFeature") != "FloatFeature":
                    raise UnsupportedModelError(
                        f"CatBoost split type '{split.get('split_type')}' is not supported")
                f = int(split["float_feature_index"])
                feat.append(f)
                thr.append(float(split["border"]))
                miss.append(not nan_right.get(f, False))
                vals.append(np.zeros(dim))
                stack.append((node["right"], i, True))
                stack.append((node["left"], i, False))
            else:
                feat.append(0)
                thr.append(0.0)
                miss.append(False)
                vals.append(np.asarray(node["value"], dtype=np.float64).reshape(-1)[:dim])
        parts.append((np.asarray(left, np.int64), np.asarray(right, np.int64), np.asarray(feat, np.int64),
                      np.asarray(thr, np.float64), np.asarray(miss, bool), np.asarray(vals, np.float64)))
    return parts


# CatBoost's symmetric trees as leaf indices computed with standard operators (see _oblivious); the switch lets
# benchmarks time the TreeEnsemble form of the same trees side by side
OBLIVIOUS_FORM = True
OBLIVIOUS = ("oblivious trees as leaf indices with standard operators, no per-row tree walk (rows transposed; "
             "per level: Gather of the split features, Greater than the borders, Cast to uint8, Mul by 2**level, "
             "Add; GatherElements of each target's leaf table + ReduceSum over the trees)")
OBLIVIOUS_TAG = "_oblivious_"  # in the names of its nodes and constants (formats.onnx_trees.without_oblivious)
OBLIVIOUS_MIN_OPSET = 14  # Add / Mul of uint8
OBLIVIOUS_MAX_DEPTH = 8  # leaf indices in uint8
# Small batches: the same trees as one tree operator, chosen by an `If` on the row count (see _oblivious). The
# operator walks a row down a tree in ~20-30 ns while the standard-op form costs ~25-40 us of fixed per-node
# overhead at any batch; measured crossover ~1,000-2,000 row-trees (benchmarks/RESULTS.md, "CatBoost's oblivious
# trees"): batches of fewer than SWITCH_ROW_TREES / trees rows take the tree operator.
SIZE_SWITCH = True
SWITCH_ROW_TREES = 1200
SWITCH_TAG = "_bysize_"  # formats.onnx_trees.SWITCH_TAG
SWITCH_MIN_OPSET = 15  # Shape(start, end)
V5_SMALL = "TreeEnsemble (ai.onnx.ml 5) on the float32-rounded input, missing-value tracking"
SWITCHED = ("; batches of fewer than {limit} rows: the same trees as one tree operator ({small}), chosen by an "
            "If on the row count (Shape, Less)")


def _oblivious(em: Emitter, model: dict[str, Any], table: NodeTable) -> str | None:
    """The sum over CatBoost's symmetric trees, `[N, targets]` in the emitter's dtype, computed the way CatBoost
    computes it: a tree of depth d tests the same d splits on every path, so its leaf is the index
    `sum_j 2**j * (x[f_j] > b_j)`; or None where this form does not apply (non-symmetric trees, depth above
    `OBLIVIOUS_MAX_DEPTH`, an opset below `OBLIVIOUS_MIN_OPSET`, an input of unknown width).

    onnxruntime's TreeEnsemble walks one row through one tree at a time with a branch per level; CatBoost's
    depth-6 trees cost it ~18 ns per row and tree at 10,000 rows (~6 ns with every row identical: the rest
    is mispredicted branches), against ~1 ns in CatBoost. Here each level is a few passes over `[trees, rows]`
    tensors without branches: the rows transposed once (`[features, rows]`), then per level j one Gather of the
    split features of every tree (`[trees, rows]`), Greater than their float32 borders (CatBoost compares
    float32 values), Cast to uint8, Mul by 2**j and Add into the leaf index (uint8 Cast / Mul / Add cost
    onnxruntime less than Where / BitwiseOr at 1 and at 10,000 rows); the leaf values are read with
    GatherElements from a `[trees, 2**depth]` table per target (Gather of scalars cost onnxruntime ~9 ns per
    index, GatherElements <1 ns) and summed over the trees by ReduceSum (the trees in order: CatBoost's
    float64 sums). Measured in benchmarks/RESULTS.md ("CatBoost's oblivious trees"). Trees shallower than the
    deepest are padded with `x > +inf` levels (never true). NaN is CatBoost's `Min` (`x > b` false) unless the
    feature's treatment is `AsTrue`; then NaN is replaced by +inf first (IsNaN / Where). The graph's readers
    (hints, certificate, lowering) see one TreeEnsemble again (`formats.onnx_trees.without_oblivious`).

    Its ~30 nodes cost onnxruntime ~25-40 us at any batch size, where one tree operator walks a row through
    these trees in ~10 us: with `SIZE_SWITCH`, an `If` on the row count sends batches of fewer than
    `SWITCH_ROW_TREES / trees` rows to that operator (the branch `without_oblivious` reads from this form, so
    that readers can check the two agree) and the others to this form."""
    from onnx import TensorProto, helper, numpy_helper

    trees = model.get("oblivious_trees")
    width = em.width()
    if not trees or width is None or em.container.target_opset_any_domain("") < OBLIVIOUS_MIN_OPSET:
        return None
    splits = [t.get("splits") or [] for t in trees]  # (null for a tree without a split)
    if any(s.get("split_type", "FloatFeature") != "FloatFeature" for ss in splits for s in ss):
        return None
    depth = max(len(ss) for ss in splits)
    if depth > OBLIVIOUS_MAX_DEPTH:
        return None
    dim = table.values.shape[1]
    n = len(trees)
    feat = np.zeros((n, max(depth, 1)), np.int64)
    border = np.full((n, max(depth, 1)), np.inf)
    leaves = np.zeros((dim, n, 2 ** depth), em.dtype)
    for i, (t, ss) in enumerate(zip(trees, splits)):
        d = len(ss)
        feat[i, :d] = [s["float_feature_index"] for s in ss]
        border[i, :d] = [s["border"] for s in ss]
        leaves[:, i, :2 ** d] = np.asarray(t["leaf_values"], np.float64).reshape(2 ** d, dim).T
    if feat.max() >= width or np.any(border.astype(np.float32) != border):  # CatBoost's borders are float32
        return None
    floats = model["features_info"].get("float_features", [])
    nan_right = np.zeros(width, bool)
    for f in floats:
        if f.get("nan_value_treatment") == "AsTrue" and 0 <= int(f["flat_feature_index"]) < width:
            nan_right[int(f["flat_feature_index"])] = True
    tag = f"{em.name('Oblivious')}{OBLIVIOUS_TAG}"

    nodes: list[Any] = []
    inits: list[Any] = []

    def const(part: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), f"{tag}{part}"))
        return f"{tag}{part}"

    def node(op: str, inputs: list[str], part: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [f"{tag}{part}"], name=f"{tag}{part}", **attrs))
        return f"{tag}{part}"

    x = x_in = em.input()
    if em.double:
        x = node("Cast", [x], "x32", to=TensorProto.FLOAT)
    if nan_right.any():  # NaN goes right (x > b) at these features' splits: +inf does, at every border
        fill = np.where(nan_right, np.inf, np.nan).astype(np.float32)[None, :]
        x = node("Where", [node("IsNaN", [x], "isnan"), const("fill", fill), x], "filled")
    xt = node("Transpose", [x], "xt", perm=[1, 0])
    index = ""
    for j in range(max(depth, 1)):
        cols = node("Gather", [xt, const(f"feat{j}", feat[:, j])], f"cols{j}", axis=0)
        bit = node("Greater", [cols, const(f"border{j}", border[:, j:j + 1].astype(np.float32))], f"bit{j}")
        level = node("Cast", [bit], f"level{j}", to=TensorProto.UINT8)
        if j == 0:
            index = level
            continue
        level = node("Mul", [level, const(f"pow{j}", np.array(2 ** j, np.uint8))], f"weighted{j}")
        index = node("Add", [index, level], f"index{j}")
    index = node("Cast", [index], "leaf", to=TensorProto.INT32)
    axes = const("axis0", np.array([0], np.int64))
    sums = [node("ReduceSum", [node("GatherElements", [const(f"leaves{k}", leaves[k]), index], f"values{k}", axis=1),
                               axes], f"sum{k}", keepdims=1) for k in range(dim)]
    stacked = sums[0] if dim == 1 else node("Concat", sums, "sums", axis=0)
    out = node("Transpose", [stacked], "out", perm=[1, 0])
    opset = em.container.target_opset_any_domain("")
    em.container.node_domain_version_pair_sets.add(("", opset))
    limit = -(-SWITCH_ROW_TREES // n)  # batches of fewer rows take the tree operator
    small = _small_branch(nodes, inits, out, em.dtype, dim) if SIZE_SWITCH and opset >= SWITCH_MIN_OPSET \
        and limit > 1 else None
    if small is None:
        em.container.nodes.extend(nodes)
        em.container.initializers.extend(inits)
        return out
    large, small = small
    switch = tag.replace(OBLIVIOUS_TAG, SWITCH_TAG)
    em.container.initializers.append(numpy_helper.from_array(np.array([limit], np.int64), f"{switch}limit"))
    em.container.nodes += [
        helper.make_node("Shape", [x_in], [f"{switch}rows"], name=f"{switch}rows", start=0, end=1),
        helper.make_node("Less", [f"{switch}rows", f"{switch}limit"], [f"{switch}small"], name=f"{switch}small"),
        helper.make_node("If", [f"{switch}small"], [f"{switch}out"], name=f"{switch}if", then_branch=small,
                         else_branch=large)]
    # the small branch's tree operator (ai.onnx.ml 3 in skl2onnx's bookkeeping; outputs.finalize raises it to 5
    # for a TreeEnsemble)
    em.container.node_domain_version_pair_sets.add(("ai.onnx.ml", 3))
    return f"{switch}out"


def oblivious_formulation(graph: Any) -> str | None:
    """The `portable.trees.formulation` of a graph holding `_oblivious`'s form (with its small-batch switch, if
    any), or None."""
    from onnx import helper, numpy_helper

    from .trees import V3

    if any(OBLIVIOUS_TAG in n.name for n in graph.node):
        return OBLIVIOUS
    for n in graph.node:
        if n.op_type != "If" or SWITCH_TAG not in n.name:
            continue
        limit = [numpy_helper.to_array(i) for i in graph.initializer
                 if i.name == n.name.rpartition(SWITCH_TAG)[0] + SWITCH_TAG + "limit"]
        small = [helper.get_attribute_value(a) for a in n.attribute if a.name == "then_branch"]
        ops = {m.op_type for m in small[0].node} if small else set()
        return OBLIVIOUS + SWITCHED.format(limit=int(limit[0].reshape(-1)[0]) if limit else "?",
                                           small=V5_SMALL if "TreeEnsemble" in ops else V3 + ", missing-value tracking")
    return None


def _small_branch(nodes: list[Any], inits: list[Any], out: str, dtype: Any, dim: int) -> tuple[Any, Any] | None:
    """(the standard-op form as the If's large-batch branch, the same trees as one tree operator for small
    batches), or None. The small branch is exactly what the graph's readers make of the large one
    (`formats.onnx_trees.without_oblivious`), so that a reader can check the two agree
    (`formats.onnx_trees.without_size_switch`) and read one."""
    from onnx import TensorProto, helper

    from ...formats.onnx_trees import without_oblivious

    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    vi = helper.make_tensor_value_info(out, elem, [None, dim])
    large = helper.make_graph(nodes, "large_batches", [], [vi], inits)
    read = without_oblivious(large)
    if read is large:
        return None
    return large, helper.make_graph(list(read.node), "small_batches", [], [vi], list(read.initializer))


@sklearn_converter("catboost.core.CatBoostClassifier", kind="classifier")
@sklearn_converter("catboost.core.CatBoostRegressor", kind="regressor")
def convert_catboost(em: Emitter, est: Any) -> list[Any]:
    from .trees import build

    model = _catboost_json(est)
    table, scale, bias = _catboost_table(est, model)
    total = _oblivious(em, model, table) if OBLIVIOUS_FORM else None
    if total is not None:  # see _oblivious
        raw = total if scale == 1.0 else em.node("Mul", [total, em.const(scale)], "scaled")
        raw = em.node("Add", [raw, em.const(bias[None, :])], "raw")
    else:
        forest = build(table)
        x = em.as_float32_then_back(em.input())  # CatBoost compares float32 features with float32 borders
        if scale == 1.0:  # CatBoost's scale * sum + bias: the bias folded into the tree operator (added last)
            raw = em.ensemble(x, forest, "raw", base=bias, width=em.width())
        else:
            total = em.ensemble(x, forest, "raw", width=em.width())
            raw = em.node("Add", [em.node("Mul", [total, em.const(scale)], "scaled"), em.const(bias[None, :])],
                          "raw")
    loss = str(est.get_all_params().get("loss_function", "RMSE"))
    if _is_classifier(est):
        if loss in ("Logloss", "CrossEntropy"):
            p1 = em.node("Sigmoid", [raw], "p1")
            proba = em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p1], "p0"), p1], "proba", axis=1)
        elif loss == "MultiClass":
            proba = em.node("Softmax", [raw], "proba", axis=1)
        else:
            raise UnsupportedModelError(f"CatBoost classifier loss '{loss}' is not supported")
        em.label(proba, np.asarray(est.classes_))
        return [None, proba]
    if loss.split(":")[0] in ("Poisson", "Tweedie"):
        return [em.node("Exp", [raw], "pred")]
    return [raw]
