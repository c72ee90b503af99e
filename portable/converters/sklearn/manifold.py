"""Manifold learners with an out-of-sample transform: Isomap, LocallyLinearEmbedding."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter
from .common import sqdist, rows, affine_map, affine


@sklearn_converter("sklearn.manifold.Isomap", kind="transformer")
def isomap(em: Emitter, est: Any) -> list[Any]:
    """Geodesic distances through the k nearest training points (min over them of the distance to the point
    plus the point's training geodesics), then the fitted kernel PCA, an affine map read off scikit-learn."""
    nbrs = est.nbrs_
    if est.n_neighbors is None or nbrs.effective_metric_ not in ("euclidean", "minkowski") or (
            nbrs.effective_metric_ == "minkowski" and nbrs.effective_metric_params_.get("p", 2) != 2):
        raise UnsupportedModelError("Isomap converts with n_neighbors and the euclidean metric")
    fit_x = np.asarray(nbrs._fit_X, dtype=np.float64)
    dist = em.node("Sqrt", [em.node("Max", [sqdist(em, em.input(), fit_x), em.const(0.0)], "d2")], "dist")
    near, idx = em.topk(dist, est.n_neighbors, largest=False)
    geo = em.node("Gather", [em.const(np.asarray(est.dist_matrix_, dtype=np.float64)), idx], "geo", axis=0)
    through = em.node("Add", [geo, em.node("Unsqueeze", [near, em.const([2], dtype=np.int64)], "near3")], "through")
    g = em.reduce("ReduceMin", through, 1)
    k = em.node("Mul", [em.node("Mul", [g, g], "g2"), em.const(-0.5)], "kern")
    a, b = affine_map(lambda z: est.kernel_pca_.transform(z), len(fit_x), what="Isomap's kernel PCA")
    return [affine(em, k, a, b)]


@sklearn_converter("sklearn.manifold.LocallyLinearEmbedding", kind="transformer")
def locally_linear_embedding(em: Emitter, est: Any) -> list[Any]:
    """Barycenter weights of each point over its k nearest training points (the regularized k x k system
    solved by Gaussian elimination, unrolled: it is symmetric positive definite), applied to their embedding."""
    nbrs = est.nbrs_
    if nbrs.effective_metric_ not in ("euclidean", "minkowski") or (
            nbrs.effective_metric_ == "minkowski" and nbrs.effective_metric_params_.get("p", 2) != 2):
        raise UnsupportedModelError("LocallyLinearEmbedding converts with the euclidean metric")
    k = est.n_neighbors
    fit_x = np.asarray(nbrs._fit_X, dtype=np.float64)
    x = em.input()
    _, idx = em.topk(sqdist(em, x, fit_x), k, largest=False)
    a = em.node("Gather", [em.const(fit_x), idx], "nbr", axis=0)  # [N, k, F]
    c = em.node("Sub", [a, em.node("Unsqueeze", [x, em.const([1], dtype=np.int64)], "x3")], "c")
    g = em.node("MatMul", [c, em.node("Transpose", [c], "ct", perm=[0, 2, 1])], "g")  # [N, k, k]
    eye = np.eye(k)
    trace = em.reduce("ReduceSum", em.reduce("ReduceSum", em.node("Mul", [g, em.const(eye[None])], "gd"), 2), 1,
                      keepdims=1)  # [N, 1]
    r = em.node("Where", [em.node("Greater", [trace, em.const(0.0)], "pos"),
                          em.node("Mul", [trace, em.const(float(est.reg))], "rt"), em.const(float(est.reg))], "r")
    g = em.node("Add", [g, em.node("Mul", [em.node("Unsqueeze", [r, em.const([2], dtype=np.int64)], "r3"),
                                           em.const(eye[None])], "ri")], "greg")
    ones = em.node("Unsqueeze", [rows(em, x, np.ones(k)), em.const([2], dtype=np.int64)], "ones3")  # [N, k, 1]
    m = em.node("Concat", [g, ones], "aug", axis=2)  # [N, k, k+1]: G | 1
    for p in range(k - 1):  # forward elimination, no pivoting (SPD)
        row = em.node("Gather", [m, em.const(p, dtype=np.int64)], "row", axis=1)  # [N, k+1]
        col = em.node("Gather", [m, em.const(p, dtype=np.int64)], "col", axis=2)  # [N, k]
        piv = em.node("Gather", [row, em.const([p], dtype=np.int64)], "piv", axis=1)  # [N, 1]
        below = (np.arange(k) > p).astype(np.float64)[None, :]
        f = em.node("Mul", [em.node("Div", [col, piv], "f0"), em.const(below)], "f")
        m = em.node("Sub", [m, em.node("Mul", [em.node("Unsqueeze", [f, em.const([2], dtype=np.int64)], "f3"),
                                               em.node("Unsqueeze", [row, em.const([1], dtype=np.int64)], "r3")],
                                       "fr")], "elim")
    w: list[str | None] = [None] * k
    for i in range(k - 1, -1, -1):  # back substitution
        row = em.node("Gather", [m, em.const(i, dtype=np.int64)], "brow", axis=1)  # [N, k+1]
        acc = em.node("Gather", [row, em.const([k], dtype=np.int64)], "rhs", axis=1)
        for j in range(i + 1, k):
            mij = em.node("Gather", [row, em.const([j], dtype=np.int64)], "mij", axis=1)
            acc = em.node("Sub", [acc, em.node("Mul", [mij, w[j]], "mw")], "acc")
        w[i] = em.node("Div", [acc, em.node("Gather", [row, em.const([i], dtype=np.int64)], "mii", axis=1)], "w")
    ws = em.node("Concat", w, "ws", axis=1)  # [N, k]
    ws = em.node("Div", [ws, em.reduce("ReduceSum", ws, 1, keepdims=1)], "wn")
    emb = em.node("Gather", [em.const(np.asarray(est.embedding_, dtype=np.float64)), idx], "emb", axis=0)
    return [em.reduce("ReduceSum", em.node("Mul", [emb, em.node("Unsqueeze", [ws, em.const([2], dtype=np.int64)],
                                                                   "w3")], "we"), 1)]
