"""Neighbour models portable writes itself: NearestCentroid, RadiusNeighbors*, label propagation."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .common import kernel, l1dist, sqdist


@sklearn_converter("sklearn.neighbors.NearestCentroid", kind="classifier")
def nearest_centroid(em: Emitter, est: Any) -> list[Any]:
    """Euclidean NearestCentroid: discriminant scores on features scaled by the within-class deviation."""
    if est.metric != "euclidean":
        raise UnsupportedModelError(f"NearestCentroid(metric={est.metric!r}): only the euclidean metric converts")
    x = em.input()
    std = np.asarray(est.within_class_std_dev_, dtype=np.float64)
    s = np.where(std != 0, std, 1.0)
    cn = np.asarray(est.centroids_, dtype=np.float64) / s
    xn = em.node("Div", [x, em.const(s[None, :])], "xn")
    scores = em.node("Add", [em.node("Neg", [sqdist(em, xn, cn)], "nd"),
                             em.const((2.0 * np.log(est.class_prior_))[None, :])], "disc")
    proba = em.node("Softmax", [scores], "proba", axis=1)
    if np.isclose(est.class_prior_, 1 / len(est.classes_)).all():
        em.label(em.node("Neg", [sqdist(em, x, est.centroids_)], "negd"), est.classes_)
    else:
        em.label(scores, est.classes_)
    return [None, proba]


@sklearn_converter("sklearn.semi_supervised.LabelPropagation", "sklearn.semi_supervised.LabelSpreading", kind="classifier")
def label_propagation(em: Emitter, est: Any) -> list[Any]:
    if est.kernel != "rbf":
        raise UnsupportedModelError(f"{type(est).__name__}(kernel={est.kernel!r}): only the rbf kernel converts")
    k = kernel(em, em.input(), est.X_, "rbf", gamma=est.gamma)
    p = em.node("MatMul", [k, em.const(np.asarray(est.label_distributions_, dtype=np.float64))], "p")
    proba = em.node("Div", [p, em.reduce("ReduceSum", p, 1, keepdims=1)], "proba")
    em.label(proba, est.classes_)
    return [None, proba]


def _radius_weights(em: Emitter, est: Any) -> tuple[str, str]:
    """(in-radius mask as floats, weights) `[N, n_fit]` for a euclidean radius-neighbours estimator."""
    metric = est.effective_metric_
    if metric not in ("euclidean",) and not (metric == "minkowski" and est.effective_metric_params_.get("p") == 2):
        raise UseSkl2onnx
    d2 = sqdist(em, em.input(), est._fit_X)
    inside = em.node("LessOrEqual", [d2, em.const(float(est.radius) ** 2)], "inside")
    mask = em.node("Cast", [inside], "mask", to=11 if em.double else 1)
    if est.weights == "uniform":
        return mask, mask
    if est.weights != "distance":
        raise UseSkl2onnx
    dist = em.node("Sqrt", [d2], "dist")
    # scikit-learn: 1/d, except rows with a zero distance, which weigh only their exact matches
    zero = em.node("Cast", [em.node("Equal", [dist, em.const(0.0)], "z")], "zf", to=11 if em.double else 1)
    zero_in = em.node("Mul", [zero, mask], "zin")
    any_zero = em.node("Greater", [em.reduce("ReduceMax", zero_in, 1, keepdims=1), em.const(0.0)], "anyz")
    inv = em.node("Div", [mask, em.node("Where", [em.node("Equal", [dist, em.const(0.0)], "z2"), em.const(1.0),
                                                  dist], "safe")], "inv")
    return mask, em.node("Where", [any_zero, zero_in, inv], "w")


@sklearn_converter("sklearn.neighbors.RadiusNeighborsClassifier", kind="classifier", replaces=True)
def radius_neighbors_classifier(em: Emitter, est: Any) -> list[Any]:
    """Votes of the training points inside the radius. With `outlier_label`, a row with none (skl2onnx's graph
    failed on it: an index of -1) gets scikit-learn's answer: probability 1 for the outlier label when it is a
    class (zeros otherwise), and that label."""
    if np.ndim(est._y) > 1:
        raise UseSkl2onnx
    classes = np.asarray(est.classes_)
    _, w = _radius_weights(em, est)
    onehot = (np.asarray(est._y)[:, None] == np.arange(len(classes))[None, :]).astype(np.float64)
    votes = em.node("MatMul", [w, em.const(onehot)], "votes")
    total = em.reduce("ReduceSum", votes, 1, keepdims=1)
    if est.outlier_label_ is None:
        proba = em.node("Div", [votes, total], "proba")
        em.label(proba, classes)
        return [None, proba]
    out_label = np.asarray(est.outlier_label_, dtype=object).reshape(-1)[0]
    alone = em.node("Cast", [em.node("Equal", [total, em.const(0.0)], "none")], "alone", to=11 if em.double else 1)
    at = np.flatnonzero(classes == out_label)
    if at.size == 1:  # an outlier votes once for the outlier label
        votes = em.node("Add", [votes, em.node("Mul", [alone, em.const(np.eye(len(classes))[at[0]][None, :])],
                                               "outvote")], "votes1")
    # the normalizer: the votes' sum, 1 for an outlier (its one vote, or zeros over 1)
    proba = em.node("Div", [votes, em.node("Add", [total, alone], "total1")], "proba")
    if at.size == 1:
        em.label(proba, classes)
        return [None, proba]
    if (classes.dtype.kind in "OUS") != isinstance(out_label, str):
        raise UnsupportedModelError(f"RadiusNeighborsClassifier: the outlier label {out_label!r} is not of the "
                                    "classes' type")
    # probabilities of outliers are all 0: the outlier label, one past the classes, wins the argmax there
    scores = em.node("Concat", [proba, em.node("Mul", [alone, em.const(2.0)], "flag")], "scores", axis=1)
    em.label(scores, np.concatenate([classes, np.asarray([out_label], dtype=classes.dtype)]))
    return [None, proba]


@sklearn_converter("sklearn.neighbors.RadiusNeighborsRegressor", kind="regressor", replaces=True)
def radius_neighbors_regressor(em: Emitter, est: Any) -> list[Any]:
    _, w = _radius_weights(em, est)
    y = np.asarray(est._y, dtype=np.float64).reshape(len(est._fit_X), -1)
    total = em.node("MatMul", [w, em.const(y)], "wy")
    return [em.node("Div", [total, em.reduce("ReduceSum", w, 1, keepdims=1)], "mean")]


@sklearn_converter("sklearn.neighbors.RadiusNeighborsTransformer", kind="transformer")
def radius_neighbors_transformer(em: Emitter, est: Any) -> list[Any]:
    """The radius-neighbours graph made dense: distances (or ones, mode='connectivity') inside the radius."""
    if est.effective_metric_ != "euclidean" and not (
            est.effective_metric_ == "minkowski" and est.effective_metric_params_.get("p") == 2):
        raise UnsupportedModelError("RadiusNeighborsTransformer converts with the euclidean metric only")
    d2 = sqdist(em, em.input(), est._fit_X)
    inside = em.node("LessOrEqual", [d2, em.const(float(est.radius) ** 2)], "inside")
    value = em.node("Sqrt", [d2], "dist") if est.mode == "distance" else em.const(1.0)
    return [em.node("Where", [inside, value, em.const(0.0)], "graph")]


@sklearn_converter("sklearn.neighbors.KNeighborsClassifier", kind="classifier", replaces=True)
@sklearn_converter("sklearn.neighbors.KNeighborsRegressor", kind="regressor", replaces=True)
def k_neighbors_distance(em: Emitter, est: Any) -> list[Any]:
    """k nearest neighbours with `weights="distance"` (skl2onnx 1.20 writes uniform weights for it): weights
    1/d, and where a row has neighbours at distance 0, those neighbours alone with weight 1 (as scikit-learn)."""
    if est.weights != "distance":
        raise UseSkl2onnx
    metric = est.effective_metric_
    p = est.effective_metric_params_.get("p", 2)
    fit = np.asarray(est._fit_X, dtype=np.float64)
    x = em.input()
    if metric == "euclidean" or (metric == "minkowski" and p == 2):
        dist = em.node("Sqrt", [em.node("Max", [sqdist(em, x, fit), em.const(0.0)], "d2")], "d")
    elif metric in ("manhattan", "cityblock") or (metric == "minkowski" and p == 1):
        dist = l1dist(em, x, fit)
    else:
        raise UnsupportedModelError(f"{type(est).__name__}(weights='distance') with metric '{metric}' is not "
                                    "supported (euclidean, manhattan)")
    k = int(est.n_neighbors)
    vals, idx = em.topk(dist, k, largest=False)
    zero = em.node("Cast", [em.node("Equal", [vals, em.const(0.0)], "z")], "zf", to=11 if em.double else 1)
    anyzero = em.node("Greater", [em.reduce("ReduceMax", zero, 1, keepdims=1), em.const(0.0)], "anyz")
    safe = em.node("Where", [em.node("Equal", [vals, em.const(0.0)], "z2"), em.const(1.0), vals], "safe")
    w = em.node("Where", [anyzero, zero, em.node("Reciprocal", [safe], "inv")], "w")
    if hasattr(est, "classes_"):
        if np.ndim(est._y) != 1:
            raise UnsupportedModelError("multi-output KNeighborsClassifier is not supported")
        n_class = len(est.classes_)
        ylab = em.node("Gather", [em.const(np.asarray(est._y, dtype=np.int64), dtype=np.int64), idx], "ylab",
                       axis=0)
        hot = em.node("Cast", [em.node("Equal", [em.node("Unsqueeze", [ylab, em.const([2], dtype=np.int64)], "y3"),
                                                 em.const(np.arange(n_class, dtype=np.int64)[None, None, :],
                                                          dtype=np.int64)], "hot")], "hotf",
                      to=11 if em.double else 1)
        votes = em.reduce_sum(em.node("Mul", [hot, em.node("Unsqueeze", [w, em.const([2], dtype=np.int64)],
                                                           "w3")], "wv"), 1)
        proba = em.node("Div", [votes, em.reduce_sum(votes, 1, keepdims=1)], "proba")
        em.label(proba, est.classes_)
        return [None, proba]
    y = np.asarray(est._y, dtype=np.float64)
    yv = em.node("Gather", [em.const(y.reshape(len(y), -1)), idx], "yv", axis=0)  # [N, k, T]
    num = em.reduce_sum(em.node("Mul", [yv, em.node("Unsqueeze", [w, em.const([2], dtype=np.int64)], "w3")],
                                "wy"), 1)
    return [em.node("Div", [num, em.reduce_sum(w, 1, keepdims=1)], "pred")]
