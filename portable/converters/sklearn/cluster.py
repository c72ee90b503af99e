"""Clusterers with predict (KMeans, MeanShift, AffinityPropagation, Birch, BisectingKMeans) and EllipticEnvelope."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .trees import NodeTable, build
from .registry import sklearn_converter
from .common import sqdist, sign_label


@sklearn_converter("sklearn.covariance.EllipticEnvelope", kind="outlier")
def elliptic_envelope(em: Emitter, est: Any) -> list[Any]:
    x = em.node("Sub", [em.input(), em.const(np.asarray(est.location_)[None, :])], "centered")
    prec = np.asarray(est.get_precision(), dtype=np.float64)
    md = em.reduce("ReduceSum", em.node("Mul", [em.node("MatMul", [x, em.const(prec)], "xp"), x], "xpx"), 1,
                   keepdims=1)
    dec = em.node("Sub", [em.node("Neg", [md], "neg"), em.const(float(est.offset_))], "dec")
    return [sign_label(em, dec, strict=False), dec]


# KMeans too: skl2onnx's graph takes the square root of |x|^2 - 2 x.c + |c|^2 in float32, which rounds below 0 at a
# centre (NaN where scikit-learn gives ~0) and loses all precision there (|x|^2 ~ 5e6 leaves ~1 of a distance 0).
@sklearn_converter("sklearn.cluster.MeanShift", "sklearn.cluster.AffinityPropagation", "sklearn.cluster.KMeans",
                   "sklearn.cluster.MiniBatchKMeans", kind="clusterer", replaces=True)
def nearest_center(em: Emitter, est: Any) -> list[Any]:
    """Label and distances to the centres, through one Gemm (benchmarks/bench_kmeans.py).

    In float64 whatever the input, on data centred at the centres' mean: `|x - m|^2 - 2 (x - m).(c - m) + |c - m|^2`
    then max(., 0). The cancellation error of this form is ~eps64 * |x - m|^2, far below float32 resolution and
    below scikit-learn's own (its `transform` computes the same form uncentred, `predict` the argmin of
    `|c|^2 - 2 x.c`), so it is never NaN and ~0 at a centre; the label is the argmin of the Gemm alone (the
    |x - m|^2 column does not change it). The earlier form, sums of squared differences over an
    `[N, centres, features]` tensor, was 3-9x slower at 10,000 rows.
    """
    from onnx import TensorProto

    if getattr(est, "affinity", "euclidean") == "precomputed":
        raise UnsupportedModelError("AffinityPropagation(affinity='precomputed') predicts from a precomputed "
                                    "affinity matrix, not from features")
    c = np.asarray(est.cluster_centers_, dtype=np.float64)
    m = c.mean(axis=0, keepdims=True)
    cc = c - m
    x = em.input()
    if not em.double:
        x = em.node("Cast", [x], "x64", to=TensorProto.DOUBLE)
    xc = em.node("Sub", [x, em.const(m, dtype=np.float64)], "xc")
    # -2 (x - m).(c - m) + |c - m|^2: one Gemm (alpha = -2 is exact)
    g = em.node("Gemm", [xc, em.const(cc.T, dtype=np.float64), em.const((cc ** 2).sum(axis=1)[None, :],
                                                                          dtype=np.float64)],
                "gemm", alpha=-2.0, beta=1.0)
    label = em.node("ArgMin", [g], "label", axis=1, keepdims=0)
    xn = em.node("ReduceSumSquare", [xc], "xn", axes=[1], keepdims=1) \
        if em.container.target_opset_any_domain("") < 18 else \
        em.node("ReduceSumSquare", [xc, em.const([1], dtype=np.int64)], "xn", keepdims=1)
    d2 = em.node("Max", [em.node("Add", [g, xn], "d2raw"), em.const([[0.0]], dtype=np.float64)], "d2")
    dist = em.node("Sqrt", [d2], "dist64")
    if not em.double:
        dist = em.node("Cast", [dist], "dist", to=TensorProto.FLOAT)
    return [label, dist]


@sklearn_converter("sklearn.cluster.Birch", kind="clusterer")
def birch(em: Emitter, est: Any) -> list[Any]:
    d = sqdist(em, em.input(), est.subcluster_centers_)
    idx = em.node("ArgMin", [d], "sub", axis=1, keepdims=0)
    lab = em.node("Gather", [em.const(np.asarray(est.subcluster_labels_, dtype=np.int64), dtype=np.int64), idx],
                  "label", axis=0)
    return [lab, em.node("Sqrt", [d], "dist")]


@sklearn_converter("sklearn.cluster.BisectingKMeans", kind="clusterer")
def bisecting_kmeans(em: Emitter, est: Any) -> list[Any]:
    """Labels follow the bisection tree: at each split the nearer of two centers, i.e. a linear test."""
    x = em.input()
    shift = np.asarray(getattr(est, "_X_mean", np.zeros(est.n_features_in_)), dtype=np.float64)
    nodes: list[Any] = []
    stack = [est._bisecting_tree]
    while stack:
        n = stack.pop()
        nodes.append(n)
        if n.left is not None:
            stack.extend([n.right, n.left])
    index = {id(n): i for i, n in enumerate(nodes)}
    inner = [n for n in nodes if n.left is not None]
    if not inner:
        lab = em.node("Cast", [em.node("Mul", [em.reduce("ReduceSum", x, 1), em.const(0.0)], "z")], "label0",
                      to=7)
        return [lab, em.node("Sqrt", [sqdist(em, x, est.cluster_centers_)], "dist")]
    # left if |x-a|^2 <= |x-b|^2, i.e. 2 x.(b-a) <= |b|^2 - |a|^2  (scikit-learn takes the first on ties)
    w = np.stack([2 * ((n.right.center + shift) - (n.left.center + shift)) for n in inner], axis=1)
    t = np.array([np.sum((n.right.center + shift) ** 2) - np.sum((n.left.center + shift) ** 2) for n in inner])
    proj = em.node("MatMul", [x, em.const(w)], "proj")
    col = {id(n): i for i, n in enumerate(inner)}
    size = len(nodes)
    left = np.full(size, -1, np.int64)
    right = np.full(size, -1, np.int64)
    feat = np.zeros(size, np.int64)
    thr = np.zeros(size)
    values = np.zeros((size, 1))
    for n in nodes:
        i = index[id(n)]
        if n.left is None:
            values[i, 0] = n.label
        else:
            left[i], right[i] = index[id(n.left)], index[id(n.right)]
            feat[i], thr[i] = col[id(n)], t[col[id(n)]]
    table = NodeTable(left, right, feat, thr, np.zeros(size, bool), values, np.array([0], np.int64))
    lab_f = em.ensemble(proj, build(table), "labf")
    lab = em.node("Reshape", [em.node("Cast", [lab_f], "labi", to=7), em.const([-1], dtype=np.int64)], "label")
    return [lab, em.node("Sqrt", [sqdist(em, x, est.cluster_centers_)], "dist")]


# skl2onnx's GaussianMixture graph works in the input's float type: far from the means its float32 log-densities
# (~-1e7) keep no digit of the components' differences (posteriors [1, 1e-21, 1] that do not sum to 1, the wrong
# component), and near them it loses ~1e-3 of a posterior.
@sklearn_converter("sklearn.mixture.GaussianMixture", "sklearn.mixture.BayesianGaussianMixture", kind="clusterer",
                   replaces=True)
def gaussian_mixture(em: Emitter, est: Any) -> list[Any]:
    """Component label and posteriors, in float64 whatever the input, as scikit-learn computes them.

    The weighted log-density of component k is `c_k - |x P_k - mu_k P_k|^2 / 2` for every covariance type (P_k the
    Cholesky factor of its precision: full, tied, diagonal or spherical), where c_k (log weight, log-determinant,
    and for the Bayesian mixture its digamma terms) is scikit-learn's own weighted log-density at x = mu_k. All
    components take one MatMul of x with the factors side by side; the posteriors are a softmax of those
    log-densities (its maximum subtracted, as scikit-learn's logsumexp), the label their argmax.
    """
    from onnx import TensorProto

    means = np.asarray(est.means_, dtype=np.float64)
    k, d = means.shape
    pc = np.asarray(est.precisions_cholesky_, dtype=np.float64)
    kind = est.covariance_type
    if kind == "full":
        factors = pc
    elif kind == "tied":
        factors = np.broadcast_to(pc, (k, d, d))
    elif kind == "diag":
        factors = np.stack([np.diag(p) for p in pc])
    elif kind == "spherical":
        factors = np.stack([np.eye(d) * p for p in pc])
    else:
        raise UnsupportedModelError(f"{type(est).__name__}(covariance_type={kind!r}) is not supported")
    weight = np.concatenate(list(factors), axis=1)  # [d, k*d]: x @ weight = the k products x P_k side by side
    shift = np.concatenate([means[i] @ factors[i] for i in range(k)])  # [k*d]
    const = np.array([est._estimate_weighted_log_prob(means[i:i + 1])[0, i] for i in range(k)], dtype=np.float64)
    x = em.input()
    if not em.double:
        x = em.node("Cast", [x], "x64", to=TensorProto.DOUBLE)
    y = em.node("Sub", [em.node("MatMul", [x, em.const(weight, dtype=np.float64)], "xp"),
                        em.const(shift[None, :], dtype=np.float64)], "y")
    y3 = em.node("Reshape", [y, em.const([0, k, d], dtype=np.int64)], "y3")
    sq = em.reduce("ReduceSum", em.node("Mul", [y3, y3], "ysq"), 2)
    logp = em.node("Sub", [em.const(const[None, :], dtype=np.float64),
                           em.node("Mul", [sq, em.const([[0.5]], dtype=np.float64)], "half")], "logp")
    label = em.node("ArgMax", [logp], "label", axis=1, keepdims=0)
    top = em.reduce("ReduceMax", logp, 1, keepdims=1)
    e = em.node("Exp", [em.node("Sub", [logp, top], "shifted")], "e")
    prob = em.node("Div", [e, em.reduce("ReduceSum", e, 1, keepdims=1)], "prob64")
    if not em.double:
        prob = em.node("Cast", [prob], "prob", to=TensorProto.FLOAT)
    return [label, prob]
