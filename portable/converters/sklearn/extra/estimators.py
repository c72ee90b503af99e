"""skl2onnx-compatible converters for scikit-learn estimators that skl2onnx 1.20 cannot convert (or converts
only in float32), written against the estimators' fitted attributes with standard ONNX operators in the input's
dtype, so float64 stays float64.

Each converter is a function `(emitter, estimator) -> [output names]` registered with `@extra(path, kind=...)`;
`register()` hands them to skl2onnx with a parser that declares the outputs portable's signature expects
(DESIGN §4), so they also convert inside pipelines. `EXTRAS` (names only, no skl2onnx import) is what
`portable.coverage` reports.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....errors import UnsupportedModelError
from ..trees import Emitter, NodeTable, build, concat_trees


@dataclass(frozen=True)
class Extra:
    """One registered converter: the estimator class path, the kind of outputs, the function."""

    path: str
    kind: str  # classifier | regressor | transformer | clusterer | outlier
    func: Callable[[Emitter, Any], list[Any]]
    replaces: bool = False  # True where skl2onnx has a converter that fails (float64) or is wrong

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[1]


EXTRAS: dict[str, Extra] = {}


def extra(*paths: str, kind: str, replaces: bool = False) -> Callable[[Any], Any]:
    """Register a converter for the estimator classes at `paths` (`module.Class`)."""
    def deco(func: Any) -> Any:
        for p in paths:
            e = Extra(p, kind, func, replaces)
            EXTRAS[e.name] = e
        return func
    return deco


# -- shared pieces ----------------------------------------------------------------------------------------------

def _sqdist(em: Emitter, x: str, centers: np.ndarray) -> str:
    """Squared euclidean distances `[N, M]` from the rows of x to `centers` `[M, F]`, as differences."""
    c = np.asarray(centers, dtype=np.float64)
    diff = em.node("Sub", [em.node("Unsqueeze", [x, em.const([1], dtype=np.int64)], "x3"),
                           em.const(c[None, :, :])], "diff")
    return em.reduce("ReduceSum", em.node("Mul", [diff, diff], "sq"), 2)


def _l1dist(em: Emitter, x: str, centers: np.ndarray) -> str:
    c = np.asarray(centers, dtype=np.float64)
    diff = em.node("Sub", [em.node("Unsqueeze", [x, em.const([1], dtype=np.int64)], "x3"),
                           em.const(c[None, :, :])], "diff")
    return em.reduce("ReduceSum", em.node("Abs", [diff], "absd"), 2)


def kernel(em: Emitter, x: str, y: np.ndarray, metric: str, *, gamma: float | None = None, degree: float = 3,
           coef0: float = 1) -> str:
    """`sklearn.metrics.pairwise.pairwise_kernels(X, y, metric)` for the kernels with a closed form."""
    y = np.asarray(y, dtype=np.float64)
    nf = y.shape[1]
    g = 1.0 / nf if gamma is None else float(gamma)
    if metric == "linear":
        return em.node("MatMul", [x, em.const(y.T)], "k")
    if metric in ("poly", "polynomial"):
        dot = em.node("MatMul", [x, em.const(y.T)], "dot")
        base = em.node("Add", [em.node("Mul", [dot, em.const(g)], "gdot"), em.const(float(coef0))], "base")
        return em.node("Pow", [base, em.const(float(degree))], "k")
    if metric == "sigmoid":
        dot = em.node("MatMul", [x, em.const(y.T)], "dot")
        base = em.node("Add", [em.node("Mul", [dot, em.const(g)], "gdot"), em.const(float(coef0))], "base")
        return em.node("Tanh", [base], "k")
    if metric == "rbf":
        d = _sqdist(em, x, y)
        return em.node("Exp", [em.node("Mul", [d, em.const(-g)], "gd")], "k")
    if metric == "laplacian":
        d = _l1dist(em, x, y)
        return em.node("Exp", [em.node("Mul", [d, em.const(-g)], "gd")], "k")
    if metric == "cosine":
        yn = y / np.where(np.linalg.norm(y, axis=1, keepdims=True) == 0, 1, np.linalg.norm(y, axis=1, keepdims=True))
        norm = em.node("Sqrt", [em.reduce("ReduceSum", em.node("Mul", [x, x], "xx"), 1, keepdims=1)], "xn")
        safe = em.node("Where", [em.node("Equal", [norm, em.const(0.0)], "zero"), em.const(1.0), norm], "xns")
        return em.node("MatMul", [em.node("Div", [x, safe], "xu"), em.const(yn.T)], "k")
    raise UnsupportedModelError(f"kernel '{metric}' has no ONNX form in portable (supported: linear, poly, "
                                "rbf, sigmoid, laplacian, cosine)")


def _gamma(est: Any, attr: str = "gamma") -> float | None:
    g = getattr(est, "_gamma", None)
    return g if g is not None else getattr(est, attr, None)


def rows(em: Emitter, x: str, row: np.ndarray, dtype: Any = None) -> str:
    """A constant row repeated once per input row: `[N, K]`."""
    r = np.asarray(row, dtype=dtype or em.dtype).reshape(1, -1)
    n = em.node("Slice", [em.node("Shape", [x], "shape"), em.const([0], dtype=np.int64),
                          em.const([1], dtype=np.int64)], "n")
    shape = em.node("Concat", [n, em.const([r.shape[1]], dtype=np.int64)], "nk", axis=0)
    return em.node("Expand", [em.const(r, dtype=r.dtype), shape], "rows")


def affine_map(func: Callable[[np.ndarray], np.ndarray], n_in: int, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) with func(X) = X @ A + b, read off func at 0 and at the unit vectors, and verified at random points.

    Used for estimators whose transform is affine but spread over several attributes and solver choices
    (FactorAnalysis, FastICA, PLS, SparsePCA, ...): reading the map off scikit-learn itself is exact to rounding
    and follows whatever it does internally.
    """
    zero = np.zeros((1, n_in))
    b = np.asarray(func(zero), dtype=np.float64).reshape(1, -1)
    a = np.asarray(func(np.eye(n_in)), dtype=np.float64).reshape(n_in, -1) - b
    probe = np.random.default_rng(0).normal(size=(4, n_in)) * 3
    want = np.asarray(func(probe), dtype=np.float64).reshape(4, -1)
    got = probe @ a + b
    if not np.allclose(got, want, rtol=1e-7, atol=1e-9 * max(1.0, float(np.abs(want).max()))):
        raise UnsupportedModelError(f"{what} is not an affine function of its input here; portable cannot "
                                    "express it")
    return a, b


def _affine(em: Emitter, x: str, a: np.ndarray, b: np.ndarray) -> str:
    return em.node("Add", [em.node("MatMul", [x, em.const(a)], "xa"), em.const(b)], "affine")


# -- constant and simple models ---------------------------------------------------------------------------------

@extra("sklearn.dummy.DummyClassifier", kind="classifier")
def dummy_classifier(em: Emitter, est: Any) -> list[Any]:
    if est.strategy in ("stratified", "uniform"):
        raise UnsupportedModelError(f"DummyClassifier(strategy='{est.strategy}') predicts random labels; that is "
                                    "not a function of the input, so there is nothing to convert")
    if getattr(est, "n_outputs_", 1) != 1:
        raise UnsupportedModelError("multi-output DummyClassifier is not supported")
    classes = np.asarray(est.classes_)
    prior = np.asarray(est.class_prior_, dtype=np.float64)
    if est.strategy == "prior":
        proba = prior
        label_idx = int(np.argmax(prior))
    else:
        label_idx = int(np.argmax(prior)) if est.strategy == "most_frequent" else \
            int(np.flatnonzero(classes == est.constant)[0])
        proba = np.zeros(len(classes))
        proba[label_idx] = 1.0
    x = em.input()
    p = rows(em, x, proba)
    em.label(p, classes)
    return [None, p]


@extra("sklearn.dummy.DummyRegressor", kind="regressor")
def dummy_regressor(em: Emitter, est: Any) -> list[Any]:
    return [rows(em, em.input(), np.asarray(est.constant_, dtype=np.float64).ravel())]


@extra("sklearn.impute.MissingIndicator", kind="transformer")
def missing_indicator(em: Emitter, est: Any) -> list[Any]:
    from onnx import TensorProto

    x = em.input()
    cols = em.node("Gather", [x, em.const(np.asarray(est.features_, dtype=np.int64), dtype=np.int64)], "cols",
                   axis=1)
    mv = est.missing_values
    if isinstance(mv, float) and np.isnan(mv):
        miss = em.node("IsNaN", [cols], "miss")
    else:
        miss = em.node("Equal", [cols, em.const(float(mv))], "miss")
    return [em.node("Cast", [miss], "missf", to=TensorProto.BOOL)]


@extra("sklearn.impute.SimpleImputer", kind="transformer", replaces=True)
def simple_imputer(em: Emitter, est: Any) -> list[Any]:
    """float64-capable SimpleImputer (skl2onnx's `Imputer` node has no double kernel in onnxruntime)."""
    if est.add_indicator:
        raise UnsupportedModelError("SimpleImputer(add_indicator=True) is not supported by portable's converter")
    stats = np.asarray(est.statistics_)
    if stats.dtype.kind not in "fiu":
        raise UnsupportedModelError("SimpleImputer with non-numeric statistics is not supported")
    stats = stats.astype(np.float64)
    keep = np.flatnonzero(~np.isnan(stats)) if not getattr(est, "keep_empty_features", False) else \
        np.arange(len(stats))
    x = em.input()
    mv = est.missing_values
    miss = em.node("IsNaN", [x], "miss") if isinstance(mv, float) and np.isnan(mv) else \
        em.node("Equal", [x, em.const(float(mv))], "miss")
    filled = em.node("Where", [miss, em.const(np.nan_to_num(stats, nan=0.0)[None, :]), x], "filled")
    if len(keep) != len(stats):
        filled = em.node("Gather", [filled, em.const(keep, dtype=np.int64)], "kept", axis=1)
    return [filled]


# -- linear models ----------------------------------------------------------------------------------------------

def _linear_scores(em: Emitter, est: Any, x: str) -> str:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    inter = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).reshape(1, -1)
    return em.node("Add", [em.node("MatMul", [x, em.const(coef.T)], "xw"), em.const(inter)], "scores")


@extra("sklearn.svm.LinearSVC", "sklearn.linear_model.RidgeClassifier", "sklearn.linear_model.RidgeClassifierCV",
       kind="classifier", replaces=True)
def linear_decision_classifier(em: Emitter, est: Any) -> list[Any]:
    """Linear classifiers without predict_proba: scores = X W + b; label by sign (binary) or argmax."""
    s = _linear_scores(em, est, em.input())
    binary = len(est.classes_) == 2
    em.label(s, est.classes_, binary_raw=s if binary else None, strict=True)
    return [None, s]


@extra("sklearn.svm.SVR", "sklearn.svm.NuSVR", kind="regressor", replaces=True)
def svr(em: Emitter, est: Any) -> list[Any]:
    """Kernel SVM regression in the input's dtype (onnxruntime has no double SVMRegressor)."""
    return [_svm_decision(em, est)]


def _svm_decision(em: Emitter, est: Any) -> str:
    if est.kernel == "precomputed" or callable(est.kernel):
        raise UnsupportedModelError(f"{type(est).__name__} with a {est.kernel!r} kernel cannot be converted")
    k = kernel(em, em.input(), est.support_vectors_, est.kernel, gamma=est._gamma, degree=est.degree,
               coef0=est.coef0)
    dual = np.asarray(est.dual_coef_, dtype=np.float64)
    return em.node("Add", [em.node("MatMul", [k, em.const(dual.T)], "kd"),
                           em.const(np.asarray(est.intercept_, dtype=np.float64).reshape(1, -1))], "dec")


class UseSkl2onnx(Exception):
    """Raised by a replacing converter for a configuration it leaves to skl2onnx's own converter."""


@extra("sklearn.svm.SVC", "sklearn.svm.NuSVC", kind="classifier", replaces=True)
def svc(em: Emitter, est: Any) -> list[Any]:
    """Kernel SVC without probabilities: libsvm's one-vs-one decisions, votes, and scikit-learn's ovr scores."""
    if est.probability is True or est.kernel == "precomputed" or callable(est.kernel):
        raise UseSkl2onnx  # probability is 'deprecated' (not True) by default in scikit-learn 1.9
    sv = np.asarray(est.support_vectors_, dtype=np.float64)
    k = kernel(em, em.input(), sv, est.kernel, gamma=est._gamma, degree=est.degree, coef0=est.coef0)
    coef = np.asarray(est._dual_coef_, dtype=np.float64)
    n_class = len(est.classes_)
    start = np.concatenate([[0], np.cumsum(est._n_support)])
    pairs = [(i, j) for i in range(n_class) for j in range(i + 1, n_class)]
    m = np.zeros((sv.shape[0], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        m[start[i]:start[i + 1], p] = coef[j - 1, start[i]:start[i + 1]]
        m[start[j]:start[j + 1], p] = coef[i, start[j]:start[j + 1]]
    dec = em.node("Add", [em.node("MatMul", [k, em.const(m)], "km"),
                          em.const(np.asarray(est._intercept_, dtype=np.float64)[None, :])], "ovo")
    if n_class == 2:
        score = em.node("Neg", [dec], "score")
        em.label(score, est.classes_, binary_raw=score, strict=False)
        return [None, score]
    vi = np.zeros((len(pairs), n_class))
    vj = np.zeros((len(pairs), n_class))
    for p, (i, j) in enumerate(pairs):
        vi[p, i] = vj[p, j] = 1.0
    to_float = 11 if em.double else 1
    won = em.node("Cast", [em.node("Greater", [dec, em.const(0.0)], "gt")], "won", to=to_float)
    votes = em.node("Add", [em.node("MatMul", [won, em.const(vi - vj)], "wv"), em.const(vj.sum(0)[None, :])],
                    "votes")
    if est.decision_function_shape == "ovo":
        scores = dec
    else:
        kept = em.node("Cast", [em.node("GreaterOrEqual", [dec, em.const(0.0)], "ge")], "kept", to=to_float)
        ovr_votes = em.node("Add", [em.node("MatMul", [kept, em.const(vi - vj)], "kv"),
                                    em.const(vj.sum(0)[None, :])], "ovrv")
        conf = em.node("MatMul", [em.node("Neg", [dec], "negdec"), em.const(vj - vi)], "conf")
        squash = em.node("Div", [conf, em.node("Mul", [em.node("Add", [em.node("Abs", [conf], "ac"),
                                                                       em.const(1.0)], "ac1"),
                                                      em.const(3.0)], "den")], "squash")
        scores = em.node("Add", [ovr_votes, squash], "ovr")
    em.label(scores if est.break_ties else votes, est.classes_)
    return [None, scores]


@extra("sklearn.isotonic.IsotonicRegression", kind="regressor")
def isotonic_regression(em: Emitter, est: Any) -> list[Any]:
    """scipy's interp1d over the thresholds (searchsorted 'left'), NaN or clipping outside them."""
    xs = np.asarray(est.X_thresholds_, dtype=np.float64)
    ys = np.asarray(est.y_thresholds_, dtype=np.float64)
    x = em.input()
    if est.out_of_bounds == "clip":
        x = em.node("Clip", [x, em.const(xs[0]), em.const(xs[-1])], "clipped")
    if len(xs) == 1:
        y = em.node("Add", [em.node("Mul", [x, em.const(0.0)], "z"), em.const(ys[0])], "y")
    else:
        below = em.node("Cast", [em.node("Less", [em.const(xs[None, :]), x], "lt")], "ltf", to=7)
        hi = em.node("Clip", [em.reduce("ReduceSum", below, 1), em.const(1, dtype=np.int64),
                              em.const(len(xs) - 1, dtype=np.int64)], "hi")
        lo = em.node("Sub", [hi, em.const(1, dtype=np.int64)], "lo")
        g = {n: em.node("Gather", [em.const(a), i], n, axis=0)
             for n, a, i in (("xlo", xs, lo), ("xhi", xs, hi), ("ylo", ys, lo), ("yhi", ys, hi))}
        slope = em.node("Div", [em.node("Sub", [g["yhi"], g["ylo"]], "dy"),
                                em.node("Sub", [g["xhi"], g["xlo"]], "dx")], "slope")
        xflat = em.node("Reshape", [x, em.const([-1], dtype=np.int64)], "xf")
        y = em.node("Add", [em.node("Mul", [slope, em.node("Sub", [xflat, g["xlo"]], "off")], "rise"), g["ylo"]],
                    "yf")
        y = em.node("Reshape", [y, em.const([-1, 1], dtype=np.int64)], "y")
    if est.out_of_bounds == "nan":
        out = em.node("Or", [em.node("Less", [x, em.const(xs[0])], "lo_out"),
                             em.node("Greater", [x, em.const(xs[-1])], "hi_out")], "out")
        y = em.node("Where", [out, em.const(np.nan), y], "ynan")
    return [y]


@extra("sklearn.feature_selection.SequentialFeatureSelector", kind="transformer")
def feature_selector(em: Emitter, est: Any) -> list[Any]:
    keep = np.asarray(est.get_support(indices=True), dtype=np.int64)
    if keep.size == 0:
        raise UnsupportedModelError(f"{type(est).__name__} selected no feature: its output is empty")
    return [em.node("Gather", [em.input(), em.const(keep, dtype=np.int64)], "selected", axis=1)]


@extra("sklearn.svm.OneClassSVM", kind="outlier", replaces=True)
def one_class_svm(em: Emitter, est: Any) -> list[Any]:
    dec = _svm_decision(em, est)
    return [_sign_label(em, dec, strict=True), dec]


def _sign_label(em: Emitter, dec: str, *, strict: bool) -> str:
    """+1 where dec > 0 (`>= 0` unless strict), else -1, as int64 `[N]`."""
    cmp = em.node("Greater" if strict else "GreaterOrEqual", [dec, em.const(0.0)], "inl")
    lab = em.node("Where", [cmp, em.const([1], dtype=np.int64), em.const([-1], dtype=np.int64)], "lab")
    return em.node("Reshape", [lab, em.const([-1], dtype=np.int64)], "lab1")


@extra("sklearn.kernel_ridge.KernelRidge", kind="regressor")
def kernel_ridge(em: Emitter, est: Any) -> list[Any]:
    if callable(est.kernel) or est.kernel == "precomputed":
        raise UnsupportedModelError(f"KernelRidge with a {est.kernel!r} kernel cannot be converted")
    params = dict(est.kernel_params or {})
    k = kernel(em, em.input(), est.X_fit_, est.kernel, gamma=params.get("gamma", est.gamma),
               degree=params.get("degree", est.degree), coef0=params.get("coef0", est.coef0))
    dual = np.asarray(est.dual_coef_, dtype=np.float64)
    return [em.node("MatMul", [k, em.const(dual.reshape(dual.shape[0], -1))], "pred")]


@extra("sklearn.covariance.EllipticEnvelope", kind="outlier")
def elliptic_envelope(em: Emitter, est: Any) -> list[Any]:
    x = em.node("Sub", [em.input(), em.const(np.asarray(est.location_)[None, :])], "centered")
    prec = np.asarray(est.get_precision(), dtype=np.float64)
    md = em.reduce("ReduceSum", em.node("Mul", [em.node("MatMul", [x, em.const(prec)], "xp"), x], "xpx"), 1,
                   keepdims=1)
    dec = em.node("Sub", [em.node("Neg", [md], "neg"), em.const(float(est.offset_))], "dec")
    return [_sign_label(em, dec, strict=False), dec]


# -- kernel approximations --------------------------------------------------------------------------------------

@extra("sklearn.kernel_approximation.RBFSampler", kind="transformer")
def rbf_sampler(em: Emitter, est: Any) -> list[Any]:
    proj = _affine(em, em.input(), np.asarray(est.random_weights_), np.asarray(est.random_offset_)[None, :])
    return [em.node("Mul", [em.node("Cos", [proj], "cos"), em.const((2.0 / est.n_components) ** 0.5)], "rbf")]


@extra("sklearn.kernel_approximation.SkewedChi2Sampler", kind="transformer")
def skewed_chi2_sampler(em: Emitter, est: Any) -> list[Any]:
    logx = em.node("Log", [em.node("Add", [em.input(), em.const(float(est.skewedness))], "xs")], "logx")
    proj = _affine(em, logx, np.asarray(est.random_weights_), np.asarray(est.random_offset_)[None, :])
    scale = np.sqrt(2.0) / np.sqrt(est.n_components)
    return [em.node("Mul", [em.node("Cos", [proj], "cos"), em.const(scale)], "chi2")]


@extra("sklearn.kernel_approximation.AdditiveChi2Sampler", kind="transformer")
def additive_chi2_sampler(em: Emitter, est: Any) -> list[Any]:
    steps = est.sample_steps
    interval = est.sample_interval if est.sample_interval is not None else {1: 0.8, 2: 0.5, 3: 0.4}[steps]
    x = em.input()
    nz = em.node("Not", [em.node("Equal", [x, em.const(0.0)], "z")], "nz")
    zero = em.const(0.0)
    safe = em.node("Where", [nz, x, em.const(1.0)], "safe")  # log/sqrt only where x != 0, as scikit-learn does
    parts = [em.node("Where", [nz, em.node("Sqrt", [em.node("Mul", [safe, em.const(float(interval))], "xi")],
                                                      "s0"), zero], "p0")]
    log_step = em.node("Mul", [em.node("Log", [safe], "lx"), em.const(float(interval))], "logstep")
    step = em.node("Mul", [safe, em.const(2.0 * interval)], "step")
    for j in range(1, steps):
        factor = em.node("Sqrt", [em.node("Div", [step, em.const(float(np.cosh(np.pi * j * interval)))], "st")],
                         "factor")
        arg = em.node("Mul", [log_step, em.const(float(j))], "arg")
        for op in ("Cos", "Sin"):
            v = em.node("Mul", [factor, em.node(op, [arg], op.lower())], "fv")
            parts.append(em.node("Where", [nz, v, zero], "pj"))
    return [em.node("Concat", parts, "chi2", axis=1)]


@extra("sklearn.kernel_approximation.Nystroem", kind="transformer")
def nystroem(em: Emitter, est: Any) -> list[Any]:
    if callable(est.kernel) or est.kernel == "precomputed":
        raise UnsupportedModelError(f"Nystroem with a {est.kernel!r} kernel cannot be converted")
    params = est._get_kernel_params()
    k = kernel(em, em.input(), est.components_, est.kernel, gamma=params.get("gamma"),
               degree=params.get("degree", 3), coef0=params.get("coef0", 1))
    return [em.node("MatMul", [k, em.const(np.asarray(est.normalization_).T)], "ny")]


@extra("sklearn.neural_network.BernoulliRBM", kind="transformer")
def bernoulli_rbm(em: Emitter, est: Any) -> list[Any]:
    a = _affine(em, em.input(), np.asarray(est.components_).T, np.asarray(est.intercept_hidden_)[None, :])
    return [em.node("Sigmoid", [a], "hidden")]


# -- affine transformers read off scikit-learn --------------------------------------------------------------------

@extra("sklearn.decomposition.FactorAnalysis", "sklearn.decomposition.FastICA", "sklearn.cross_decomposition.PLSSVD",
       "sklearn.decomposition.SparsePCA", "sklearn.decomposition.MiniBatchSparsePCA",
       "sklearn.cluster.FeatureAgglomeration", "sklearn.random_projection.SparseRandomProjection",
       "sklearn.preprocessing.KernelCenterer", kind="transformer")
def affine_transformer(em: Emitter, est: Any) -> list[Any]:
    a, b = affine_map(lambda z: _dense(est.transform(z)), est.n_features_in_, what=type(est).__name__)
    return [_affine(em, em.input(), a, b)]


@extra("sklearn.cross_decomposition.PLSRegression", "sklearn.cross_decomposition.CCA",
       "sklearn.cross_decomposition.PLSCanonical", kind="regressor", replaces=True)
def affine_regressor(em: Emitter, est: Any) -> list[Any]:
    a, b = affine_map(lambda z: np.asarray(est.predict(z)).reshape(len(z), -1), est.n_features_in_,
                      what=type(est).__name__)
    return [_affine(em, em.input(), a, b)]


def _dense(v: Any) -> np.ndarray:
    return np.asarray(v.toarray() if hasattr(v, "toarray") else v, dtype=np.float64)


# -- clustering and prototypes ----------------------------------------------------------------------------------

@extra("sklearn.cluster.MeanShift", "sklearn.cluster.AffinityPropagation", kind="clusterer")
def nearest_center(em: Emitter, est: Any) -> list[Any]:
    if getattr(est, "affinity", "euclidean") == "precomputed":
        raise UnsupportedModelError("AffinityPropagation(affinity='precomputed') predicts from a precomputed "
                                    "affinity matrix, not from features")
    d = _sqdist(em, em.input(), est.cluster_centers_)
    return [em.node("ArgMin", [d], "label", axis=1, keepdims=0), em.node("Sqrt", [d], "dist")]


@extra("sklearn.cluster.Birch", kind="clusterer")
def birch(em: Emitter, est: Any) -> list[Any]:
    d = _sqdist(em, em.input(), est.subcluster_centers_)
    idx = em.node("ArgMin", [d], "sub", axis=1, keepdims=0)
    lab = em.node("Gather", [em.const(np.asarray(est.subcluster_labels_, dtype=np.int64), dtype=np.int64), idx],
                  "label", axis=0)
    return [lab, em.node("Sqrt", [d], "dist")]


@extra("sklearn.cluster.BisectingKMeans", kind="clusterer")
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
        return [lab, em.node("Sqrt", [_sqdist(em, x, est.cluster_centers_)], "dist")]
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
    return [lab, em.node("Sqrt", [_sqdist(em, x, est.cluster_centers_)], "dist")]


@extra("sklearn.neighbors.NearestCentroid", kind="classifier")
def nearest_centroid(em: Emitter, est: Any) -> list[Any]:
    """Euclidean NearestCentroid: discriminant scores on features scaled by the within-class deviation."""
    if est.metric != "euclidean":
        raise UnsupportedModelError(f"NearestCentroid(metric={est.metric!r}): only the euclidean metric converts")
    x = em.input()
    std = np.asarray(est.within_class_std_dev_, dtype=np.float64)
    s = np.where(std != 0, std, 1.0)
    cn = np.asarray(est.centroids_, dtype=np.float64) / s
    xn = em.node("Div", [x, em.const(s[None, :])], "xn")
    scores = em.node("Add", [em.node("Neg", [_sqdist(em, xn, cn)], "nd"),
                             em.const((2.0 * np.log(est.class_prior_))[None, :])], "disc")
    proba = em.node("Softmax", [scores], "proba", axis=1)
    if np.isclose(est.class_prior_, 1 / len(est.classes_)).all():
        em.label(em.node("Neg", [_sqdist(em, x, est.centroids_)], "negd"), est.classes_)
    else:
        em.label(scores, est.classes_)
    return [None, proba]


@extra("sklearn.semi_supervised.LabelPropagation", "sklearn.semi_supervised.LabelSpreading", kind="classifier")
def label_propagation(em: Emitter, est: Any) -> list[Any]:
    if est.kernel != "rbf":
        raise UnsupportedModelError(f"{type(est).__name__}(kernel={est.kernel!r}): only the rbf kernel converts")
    k = kernel(em, em.input(), est.X_, "rbf", gamma=est.gamma)
    p = em.node("MatMul", [k, em.const(np.asarray(est.label_distributions_, dtype=np.float64))], "p")
    proba = em.node("Div", [p, em.reduce("ReduceSum", p, 1, keepdims=1)], "proba")
    em.label(proba, est.classes_)
    return [None, proba]


# -- trees as features ---------------------------------------------------------------------------------------

@extra("sklearn.ensemble.RandomTreesEmbedding", kind="transformer", replaces=True)
def random_trees_embedding(em: Emitter, est: Any) -> list[Any]:
    """One-hot of the leaf each tree sends a sample to, dense: TreeEnsemble with one target per leaf column."""
    trees = [e.tree_ for e in est.estimators_]
    cats = est.one_hot_encoder_.categories_
    values, offset = [], 0
    for t, c in zip(trees, cats):
        col = np.full(t.node_count, -1, np.int64)
        col[np.asarray(c, dtype=np.int64)] = offset + np.arange(len(c))
        values.append(col[:, None].astype(np.float64))
        offset += len(c)
    table = concat_trees(trees, values)
    leaf_col = table.values[:, 0].astype(np.int64)
    table.values = np.ones((len(leaf_col), 1))
    forest = build(table)
    forest.leaf_targetids = leaf_col[table.left < 0]
    forest.n_targets = offset
    x = em.as_float32_then_back(em.input())
    return [em.ensemble(x, forest, "onehot")]


@extra("sklearn.preprocessing.KBinsDiscretizer", kind="transformer", replaces=True)
def kbins_discretizer(em: Emitter, est: Any) -> list[Any]:
    """Bin index = number of inner edges <= x (searchsorted, side='right'); one-hot encodings made dense."""
    from ..trees import ceil32

    edges = [np.asarray(e, dtype=np.float64)[1:-1] for e in est.bin_edges_]
    width = max(1, max(len(e) for e in edges))
    pad = np.full((len(edges), width), np.inf)
    for j, e in enumerate(edges):
        pad[j, :len(e)] = e
    if not em.double:
        pad = ceil32(pad).astype(np.float64)
    x = em.input()
    ge = em.node("GreaterOrEqual", [em.node("Unsqueeze", [x, em.const([2], dtype=np.int64)], "x3"),
                                    em.const(pad[None])], "ge")
    ordinal = em.reduce("ReduceSum", em.node("Cast", [ge], "gef", to=11 if em.double else 1), 2)
    if est.encode == "ordinal":
        return [ordinal]
    nb = np.asarray(est.n_bins_, dtype=np.int64)
    mb = int(nb.max())
    hot = em.node("Equal", [em.node("Unsqueeze", [ordinal, em.const([2], dtype=np.int64)], "o3"),
                            em.const(np.arange(mb, dtype=np.float64)[None, None, :])], "hot")
    flat = em.node("Reshape", [em.node("Cast", [hot], "hotf", to=11 if em.double else 1),
                               em.const([0, -1], dtype=np.int64)], "flat")
    keep = np.concatenate([j * mb + np.arange(b) for j, b in enumerate(nb)]).astype(np.int64)
    return [em.node("Gather", [flat, em.const(keep, dtype=np.int64)], "onehot", axis=1)]


# -- polynomial features (skl2onnx 1.20 mixes float and double in Concat) --------------------------------------

@extra("sklearn.preprocessing.PolynomialFeatures", kind="transformer", replaces=True)
def polynomial_features(em: Emitter, est: Any) -> list[Any]:
    powers = np.asarray(est.powers_, dtype=np.float64)
    x3 = em.node("Unsqueeze", [em.input(), em.const([1], dtype=np.int64)], "x3")
    terms = em.node("Pow", [x3, em.const(powers[None])], "terms")
    return [em.reduce("ReduceProd", terms, 2)]


# -- float64-capable replacements for skl2onnx converters that mix float and double -----------------------------

@extra("sklearn.ensemble.AdaBoostClassifier", kind="classifier", replaces=True)
def adaboost_classifier(em: Emitter, est: Any) -> list[Any]:
    """SAMME with tree estimators: each leaf votes w for its class and -w/(K-1) for the others."""
    trees = est.estimators_
    if not all(hasattr(t, "tree_") for t in trees):
        raise UseSkl2onnx
    k = len(est.classes_)
    w = np.asarray(est.estimator_weights_, dtype=np.float64)[: len(trees)]
    values = []
    for t, wt in zip(trees, w):
        won = np.argmax(t.tree_.value[:, 0, :], axis=1)
        v = np.where(np.arange(k)[None, :] == won[:, None], wt, -wt / (k - 1))
        values.append(v[:, 1:] - v[:, :1] if k == 2 else v)  # binary: decision = pred1 - pred0
    forest = build(concat_trees([t.tree_ for t in trees], values))
    x = em.as_float32_then_back(em.input())
    pred = em.node("Div", [em.ensemble(x, forest, "votes"), em.const(float(w.sum()))], "pred")
    if k == 2:
        half = em.node("Mul", [pred, em.const(0.5)], "half")
        proba = em.node("Softmax", [em.node("Concat", [em.node("Neg", [half], "nhalf"), half], "pair", axis=1)],
                        "proba", axis=1)
        em.label(proba, est.classes_, binary_raw=pred, strict=True)
    else:
        proba = em.node("Softmax", [em.node("Div", [pred, em.const(float(k - 1))], "scaled")], "proba", axis=1)
        em.label(pred, est.classes_)
    return [None, proba]


@extra("sklearn.naive_bayes.CategoricalNB", kind="classifier", replaces=True)
def categorical_nb(em: Emitter, est: Any) -> list[Any]:
    x = em.node("Cast", [em.input()], "xi", to=7)
    jll = em.const(np.asarray(est.class_log_prior_, dtype=np.float64)[None, :])
    for i, table in enumerate(est.feature_log_prob_):
        col = em.node("Gather", [x, em.const(i, dtype=np.int64)], "col", axis=1)
        part = em.node("Gather", [em.const(np.asarray(table, dtype=np.float64).T), col], "part", axis=0)
        jll = em.node("Add", [jll, part], "jll")
    mx = em.reduce("ReduceMax", jll, 1, keepdims=1)
    lse = em.node("Add", [mx, em.node("Log", [em.reduce("ReduceSum", em.node(
        "Exp", [em.node("Sub", [jll, mx], "shift")], "e"), 1, keepdims=1)], "logsum")], "lse")
    proba = em.node("Exp", [em.node("Sub", [jll, lse], "logp")], "proba")
    em.label(jll, est.classes_)
    return [None, proba]


@extra("sklearn.preprocessing.PowerTransformer", kind="transformer", replaces=True)
def power_transformer(em: Emitter, est: Any) -> list[Any]:
    """Yeo-Johnson / Box-Cox per column (scipy's formulas, expm1/log1p spelled with Exp/Log), then scaling."""
    x = em.input()
    eps = np.finfo(np.float64).eps
    cols = []
    for i, lam in enumerate(np.asarray(est.lambdas_, dtype=np.float64)):
        c = em.node("Gather", [x, em.const([i], dtype=np.int64)], "c", axis=1)
        if est.method == "box-cox":
            logx = em.node("Log", [c], "logx")
            out = logx if lam == 0 else em.node("Div", [em.node("Sub", [em.node(
                "Exp", [em.node("Mul", [logx, em.const(lam)], "lx")], "ex"), em.const(1.0)], "em1"),
                em.const(lam)], "bc")
        else:
            pos = em.node("GreaterOrEqual", [c, em.const(0.0)], "pos")
            lp = em.node("Log", [em.node("Add", [em.node("Abs", [c], "ac"), em.const(1.0)], "a1")], "log1p")
            if abs(lam) < eps:
                p_val = lp
            else:
                p_val = em.node("Div", [em.node("Sub", [em.node("Exp", [em.node("Mul", [lp, em.const(lam)],
                                                                                "lp")], "ep"), em.const(1.0)],
                                                "pm1"), em.const(lam)], "pval")
            if abs(lam - 2) > eps:
                n_val = em.node("Neg", [em.node("Div", [em.node("Sub", [em.node("Exp", [em.node(
                    "Mul", [lp, em.const(2 - lam)], "ln")], "en"), em.const(1.0)], "nm1"), em.const(2 - lam)],
                    "nq")], "nval")
            else:
                n_val = em.node("Neg", [lp], "nval")
            out = em.node("Where", [pos, p_val, n_val], "yj")
        cols.append(out)
    y = em.node("Concat", cols, "pt", axis=1) if len(cols) > 1 else cols[0]
    if est.standardize:
        sc = est._scaler
        mean = np.asarray(sc.mean_ if sc.with_mean else np.zeros(len(cols)), dtype=np.float64)
        scale = np.asarray(sc.scale_ if sc.with_std else np.ones(len(cols)), dtype=np.float64)
        y = em.node("Div", [em.node("Sub", [y, em.const(mean[None, :])], "yc"), em.const(scale[None, :])], "ys")
    return [y]


@extra("sklearn.preprocessing.TargetEncoder", kind="transformer", replaces=True)
def target_encoder(em: Emitter, est: Any) -> list[Any]:
    """Look each value up among the fitted categories (exact equality); unknown values get the target mean."""
    x = em.input()
    n_classes = len(est.classes_) if est.target_type_ == "multiclass" else 1
    means = np.atleast_1d(np.asarray(est.target_mean_, dtype=np.float64))
    outs = []
    for e, enc in enumerate(est.encodings_):
        f = e // n_classes
        cats = np.asarray(est.categories_[f])
        if cats.dtype.kind not in "fiub":
            raise UnsupportedModelError("TargetEncoder with non-numeric categories: portable's input is numeric")
        cats = cats.astype(np.float64)
        col = em.node("Gather", [x, em.const([f], dtype=np.int64)], "col", axis=1)
        known = ~np.isnan(cats)
        hit = em.node("Equal", [col, em.const(np.where(known, cats, 0.0)[None, :])], "hit")
        hit = em.node("And", [hit, em.const(known[None, :], dtype=bool)], "hitk")
        if not known.all():
            hit = em.node("Or", [hit, em.node("And", [em.node("IsNaN", [col], "nan"),
                                                      em.const(~known[None, :], dtype=bool)], "nanhit")], "hitn")
        hitf = em.node("Cast", [hit], "hitf", to=11 if em.double else 1)
        value = em.reduce("ReduceSum", em.node("Mul", [hitf, em.const(np.asarray(enc, dtype=np.float64)[None, :])],
                                               "ev"), 1, keepdims=1)
        found = em.node("Greater", [em.reduce("ReduceSum", hitf, 1, keepdims=1), em.const(0.0)], "found")
        outs.append(em.node("Where", [found, value, em.const([[means[e % n_classes]]])], "enc"))
    return [em.node("Concat", outs, "te", axis=1) if len(outs) > 1 else outs[0]]


# -- radius neighbours (skl2onnx 1.20 gathers index -1 when a training point is outside a radius) --------------

def _radius_weights(em: Emitter, est: Any) -> tuple[str, str]:
    """(in-radius mask as floats, weights) `[N, n_fit]` for a euclidean radius-neighbours estimator."""
    metric = est.effective_metric_
    if metric not in ("euclidean",) and not (metric == "minkowski" and est.effective_metric_params_.get("p") == 2):
        raise UseSkl2onnx
    d2 = _sqdist(em, em.input(), est._fit_X)
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


@extra("sklearn.neighbors.RadiusNeighborsClassifier", kind="classifier", replaces=True)
def radius_neighbors_classifier(em: Emitter, est: Any) -> list[Any]:
    if est.outlier_label_ is not None or np.ndim(est._y) > 1:
        raise UseSkl2onnx
    _, w = _radius_weights(em, est)
    onehot = (np.asarray(est._y)[:, None] == np.arange(len(est.classes_))[None, :]).astype(np.float64)
    votes = em.node("MatMul", [w, em.const(onehot)], "votes")
    proba = em.node("Div", [votes, em.reduce("ReduceSum", votes, 1, keepdims=1)], "proba")
    em.label(proba, est.classes_)
    return [None, proba]


@extra("sklearn.neighbors.RadiusNeighborsRegressor", kind="regressor", replaces=True)
def radius_neighbors_regressor(em: Emitter, est: Any) -> list[Any]:
    _, w = _radius_weights(em, est)
    y = np.asarray(est._y, dtype=np.float64).reshape(len(est._fit_X), -1)
    total = em.node("MatMul", [w, em.const(y)], "wy")
    return [em.node("Div", [total, em.reduce("ReduceSum", w, 1, keepdims=1)], "mean")]


@extra("sklearn.neighbors.RadiusNeighborsTransformer", kind="transformer")
def radius_neighbors_transformer(em: Emitter, est: Any) -> list[Any]:
    """The radius-neighbours graph made dense: distances (or ones, mode='connectivity') inside the radius."""
    if est.effective_metric_ != "euclidean" and not (
            est.effective_metric_ == "minkowski" and est.effective_metric_params_.get("p") == 2):
        raise UnsupportedModelError("RadiusNeighborsTransformer converts with the euclidean metric only")
    d2 = _sqdist(em, em.input(), est._fit_X)
    inside = em.node("LessOrEqual", [d2, em.const(float(est.radius) ** 2)], "inside")
    value = em.node("Sqrt", [d2], "dist") if est.mode == "distance" else em.const(1.0)
    return [em.node("Where", [inside, value, em.const(0.0)], "graph")]


# -- multiclass and multi-target compositions of linear models ------------------------------------------------

def _linear(est: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(coef [n_in, n_out], intercept [n_out]) of a fitted linear model, or None for anything else."""
    coef, inter = getattr(est, "coef_", None), getattr(est, "intercept_", 0.0)
    if coef is None or not hasattr(est, "decision_function" if hasattr(est, "classes_") else "predict"):
        return None
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    return coef.T, np.broadcast_to(np.asarray(inter, dtype=np.float64), (coef.shape[0],)).copy()


@extra("sklearn.multiclass.OneVsOneClassifier", kind="classifier", replaces=True)
def one_vs_one(em: Emitter, est: Any) -> list[Any]:
    """One-vs-one over linear binary models: votes plus squashed summed confidences (`_ovr_decision_function`)."""
    parts = [_linear(e) for e in est.estimators_]
    if any(p is None or p[0].shape[1] != 1 for p in parts) or getattr(est, "pairwise_indices_", None) is not None:
        raise UseSkl2onnx
    w = np.concatenate([p[0] for p in parts], axis=1)
    b = np.concatenate([p[1] for p in parts])
    dec = _affine(em, em.input(), w, b[None, :])
    k = len(est.classes_)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    vi = np.zeros((len(pairs), k))
    vj = np.zeros((len(pairs), k))
    for p, (i, j) in enumerate(pairs):
        vi[p, i] = vj[p, j] = 1.0
    won = em.node("Cast", [em.node("Greater", [dec, em.const(0.0)], "gt")], "won", to=11 if em.double else 1)
    votes = em.node("Add", [em.node("MatMul", [won, em.const(vj - vi)], "wv"), em.const(vi.sum(0)[None, :])],
                    "votes")
    conf = em.node("MatMul", [dec, em.const(vj - vi)], "conf")
    squash = em.node("Div", [conf, em.node("Mul", [em.node("Add", [em.node("Abs", [conf], "ac"), em.const(1.0)],
                                                           "ac1"), em.const(3.0)], "den")], "squash")
    scores = em.node("Add", [votes, squash], "ovo")
    if k == 2:
        col = em.node("Gather", [scores, em.const([1], dtype=np.int64)], "y1", axis=1)
        em.label(col, est.classes_, binary_raw=col, strict=True)
        return [None, col]
    em.label(scores, est.classes_)
    return [None, scores]


@extra("sklearn.multiclass.OutputCodeClassifier", kind="classifier")
def output_code(em: Emitter, est: Any) -> list[Any]:
    """Error-correcting output codes over linear binary models: the class whose code word is nearest."""
    n_in = est.n_features_in_
    # a code column with one class only is fitted as a _ConstantPredictor, whose decision is that constant
    parts = [(np.zeros((n_in, 1)), np.asarray(e.y_, dtype=np.float64).reshape(1))
             if type(e).__name__ == "_ConstantPredictor" else _linear(e) for e in est.estimators_]
    if any(p is None or p[0].shape[1] != 1 for p in parts):
        raise UnsupportedModelError("OutputCodeClassifier converts when its binary estimators are linear models "
                                    "with a decision_function")
    w = np.concatenate([p[0] for p in parts], axis=1)
    b = np.concatenate([p[1] for p in parts])
    y = _affine(em, em.input(), w, b[None, :])
    d = _sqdist(em, y, np.asarray(est.code_book_, dtype=np.float64))
    em.label(em.node("Neg", [d], "negd"), est.classes_)
    return [None]


@extra("sklearn.multioutput.RegressorChain", kind="regressor")
def regressor_chain(em: Emitter, est: Any) -> list[Any]:
    """Each link sees the inputs and the previous links' predictions; linear links only."""
    x = em.input()
    preds: list[str] = []
    for e in est.estimators_:
        lin = _linear(e)
        if lin is None:
            raise UnsupportedModelError("RegressorChain converts when its links are linear models "
                                        f"(coef_/intercept_); this one has {type(e).__name__}")
        aug = em.node("Concat", [x, *preds], "aug", axis=1) if preds else x
        preds.append(_affine(em, aug, lin[0], lin[1][None, :]))
    chain = em.node("Concat", preds, "chain", axis=1) if len(preds) > 1 else preds[0]
    inv = np.argsort(np.asarray(est.order_))
    return [em.node("Gather", [chain, em.const(inv.astype(np.int64), dtype=np.int64)], "ordered", axis=1)]


@extra("sklearn.impute.KNNImputer", kind="transformer", replaces=True)
def knn_imputer(em: Emitter, est: Any) -> list[Any]:
    """Mean of the k nearest donors by nan-euclidean distance, per column, in the input's dtype."""
    mv = est.missing_values
    if not (isinstance(mv, float) and np.isnan(mv)) or est.weights != "uniform" or est.add_indicator or \
            est.metric != "nan_euclidean":
        raise UseSkl2onnx
    fit = np.asarray(est._fit_X, dtype=np.float64)
    mask_fit = np.asarray(est._mask_fit_X, dtype=bool)
    valid = np.asarray(est._valid_mask, dtype=bool)
    n_feat = fit.shape[1]
    x = em.input()
    diff = em.node("Sub", [em.node("Unsqueeze", [x, em.const([1], dtype=np.int64)], "x3"),
                           em.const(fit[None, :, :])], "diff")
    present = em.node("Not", [em.node("IsNaN", [diff], "nd")], "present")
    sq = em.node("Where", [present, em.node("Mul", [diff, diff], "d2"), em.const(0.0)], "sq")
    count = em.reduce("ReduceSum", em.node("Cast", [present], "pf", to=11 if em.double else 1), 2)
    dist = em.node("Sqrt", [em.node("Div", [em.node("Mul", [em.reduce("ReduceSum", sq, 2), em.const(float(n_feat))],
                                                    "scaled"), count], "d2w")], "dist")
    big = em.node("Where", [em.node("IsNaN", [dist], "dn"), em.const(np.inf), dist], "dinf")
    cols = []
    for c in range(n_feat):
        if not valid[c] and not getattr(est, "keep_empty_features", False):
            continue
        xc = em.node("Gather", [x, em.const([c], dtype=np.int64)], "xc", axis=1)
        donors = np.flatnonzero(~mask_fit[:, c])
        if not valid[c] or len(donors) == 0:
            cols.append(em.node("Where", [em.node("IsNaN", [xc], "m"), em.const(0.0), xc], "col"))
            continue
        k = min(est.n_neighbors, len(donors))
        dd = em.node("Gather", [big, em.const(donors.astype(np.int64), dtype=np.int64)], "dd", axis=1)
        vals, idx = em.topk(dd, k, largest=False)
        finite = em.node("Cast", [em.node("Less", [vals, em.const(np.inf)], "fin")], "finf",
                         to=11 if em.double else 1)
        picked = em.node("Gather", [em.const(fit[donors, c]), idx], "picked", axis=0)
        total = em.reduce("ReduceSum", em.node("Mul", [picked, finite], "pw"), 1, keepdims=1)
        n = em.reduce("ReduceSum", finite, 1, keepdims=1)
        mean = em.node("Div", [total, n], "mean")
        col_mean = float(np.mean(fit[donors, c]))
        imputed = em.node("Where", [em.node("Greater", [n, em.const(0.0)], "any"), mean, em.const(col_mean)], "imp")
        cols.append(em.node("Where", [em.node("IsNaN", [xc], "m"), imputed, xc], "col"))
    return [em.node("Concat", cols, "imputed", axis=1) if len(cols) > 1 else cols[0]]


@extra("sklearn.preprocessing.SplineTransformer", kind="transformer")
def spline_transformer(em: Emitter, est: Any) -> list[Any]:
    """B-spline bases as piecewise polynomials (scipy's PPoly.from_spline), evaluated by Horner's rule."""
    from scipy.interpolate import BSpline, PPoly

    deg = est.degree
    if est.extrapolation == "periodic" or (est.extrapolation == "linear" and deg == 0):
        raise UnsupportedModelError(f"SplineTransformer(extrapolation={est.extrapolation!r}, degree={deg}) is not "
                                    "supported")
    breaks, coefs, f_lo, f_hi, d_lo, d_hi, lo, hi = [], [], [], [], [], [], [], []
    for f, spl in enumerate(est.bsplines_):
        cols = [PPoly.from_spline(BSpline(spl.t, spl.c[:, j], spl.k)) for j in range(spl.c.shape[1])]
        breaks.append(cols[0].x)
        coefs.append(np.stack([p.c for p in cols], axis=-1))  # [k+1, n_int, n_splines]
        # scikit-learn 1.9 raises its loop's `degree` by one for linear extrapolation of degree <= 1, so every
        # feature after the first takes its range from the next knot: do the same
        d = deg + 1 if est.extrapolation == "linear" and deg <= 1 and f > 0 else deg
        xmin, xmax = spl.t[d], spl.t[-d - 1]
        lo.append(xmin)
        hi.append(xmax)
        f_lo.append(spl(xmin))
        f_hi.append(spl(xmax))
        d_lo.append(spl(xmin, nu=1))
        d_hi.append(spl(xmax, nu=1))
    b = np.stack(breaks)  # [F, n_int + 1]
    c = np.stack(coefs)  # [F, k+1, n_int, S]
    n_feat, k1, n_int, n_spl = c.shape
    x = em.input()
    x3 = em.node("Unsqueeze", [x, em.const([2], dtype=np.int64)], "x3")  # [N, F, 1]
    ge = em.node("Cast", [em.node("GreaterOrEqual", [x3, em.const(b[None, :, 1:-1])], "ge")], "gei", to=7)
    idx = em.node("Add", [em.reduce("ReduceSum", ge, 2), em.const((np.arange(n_feat) * n_int)[None, :],
                                                                   dtype=np.int64)], "idx")  # [N, F]
    table = em.const(c.transpose(0, 2, 1, 3).reshape(n_feat * n_int, k1, n_spl))
    pieces = em.node("Gather", [table, idx], "pieces", axis=0)  # [N, F, k+1, S]
    left = em.node("Gather", [em.const(b[:, :-1].reshape(-1)), idx], "left", axis=0)  # [N, F]
    dx = em.node("Unsqueeze", [em.node("Sub", [x, left], "dx0"), em.const([2], dtype=np.int64)], "dx")
    val = None
    for m in range(k1):
        cm = em.node("Gather", [pieces, em.const(m, dtype=np.int64)], "cm", axis=2)  # [N, F, S]
        val = cm if val is None else em.node("Add", [em.node("Mul", [val, dx], "vdx"), cm], "horner")
    lo_a, hi_a = np.asarray(lo)[None, :, None], np.asarray(hi)[None, :, None]
    if est.extrapolation in ("constant", "linear"):
        below = em.node("Less", [x3, em.const(lo_a)], "below")
        above = em.node("Greater", [x3, em.const(hi_a)], "above")
        n_edge = deg if est.extrapolation == "constant" or deg > 1 else deg + 1
        first = np.zeros((1, n_spl), bool)
        first[0, :n_edge] = True
        last = first[:, ::-1].copy()
        if est.extrapolation == "constant":  # inside the range, scikit-learn zeroes rows outside it first
            outside = em.node("Or", [below, above], "outside")
            val = em.node("Where", [outside, em.const(0.0), val], "vin")
        if est.extrapolation == "constant":
            low_v = em.const(np.where(first, np.stack(f_lo), 0.0)[None])
            high_v = em.const(np.where(last, np.stack(f_hi), 0.0)[None])
        else:
            low_v = em.node("Mul", [em.node("Add", [em.node("Mul", [em.node("Sub", [x3, em.const(lo_a)], "dl"),
                                                                    em.const(np.stack(d_lo)[None])], "sl"),
                                                    em.const(np.stack(f_lo)[None])], "ll"),
                                    em.const(first.astype(np.float64)[None])], "lowv")
            high_v = em.node("Mul", [em.node("Add", [em.node("Mul", [em.node("Sub", [x3, em.const(hi_a)], "dh"),
                                                                     em.const(np.stack(d_hi)[None])], "sh"),
                                                     em.const(np.stack(f_hi)[None])], "lh"),
                                     em.const(last.astype(np.float64)[None])], "highv")
        val = em.node("Where", [below, low_v, val], "vlo")
        val = em.node("Where", [above, high_v, val], "vhi")
    if est.handle_missing == "zeros":
        val = em.node("Where", [em.node("IsNaN", [x3], "nan"), em.const(0.0), val], "vnan")
    if not est.include_bias:
        val = em.node("Gather", [val, em.const(np.arange(n_spl - 1), dtype=np.int64)], "nobias", axis=2)
    return [em.node("Reshape", [val, em.const([0, -1], dtype=np.int64)], "splines")]


@extra("sklearn.kernel_approximation.PolynomialCountSketch", kind="transformer")
def polynomial_count_sketch(em: Emitter, est: Any) -> list[Any]:
    """Count sketches (linear maps), multiplied in the Fourier domain: the DFTs are written as matrices."""
    n_c = est.n_components
    x = em.node("Mul", [em.input(), em.const(float(np.sqrt(est.gamma)))], "xg")
    if est.coef0 != 0:
        x = em.node("Concat", [x, rows(em, x, [np.sqrt(est.coef0)])], "xg1", axis=1)
    n_in = est.indexHash_.shape[1]
    k = np.arange(n_c)
    angle = 2 * np.pi * np.outer(k, k) / n_c
    cos, sin = np.cos(angle), np.sin(angle)
    re = im = None
    for d in range(est.degree):
        h = np.zeros((n_in, n_c))
        np.add.at(h, (np.arange(n_in), est.indexHash_[d]), est.bitHash_[d])
        sketch = em.node("MatMul", [x, em.const(h)], "sketch")
        # fft: X_k = sum_n x_n (cos - i sin)(2 pi k n / N)
        a = em.node("MatMul", [sketch, em.const(cos)], "re")
        b = em.node("Neg", [em.node("MatMul", [sketch, em.const(sin)], "ims")], "im")
        if re is None:
            re, im = a, b
        else:
            re, im = (em.node("Sub", [em.node("Mul", [re, a], "ra"), em.node("Mul", [im, b], "ib")], "pre"),
                      em.node("Add", [em.node("Mul", [re, b], "rb"), em.node("Mul", [im, a], "ia")], "pim"))
    # real part of the inverse fft: (1/N) sum_k (re cos - im sin)
    out = em.node("Sub", [em.node("MatMul", [re, em.const(cos / n_c)], "rc"),
                          em.node("MatMul", [im, em.const(sin / n_c)], "is")], "sketchout")
    return [out]


def _rbf_kernel_params(kernel: Any) -> tuple[float, np.ndarray] | None:
    """(constant, length scales) of `c * RBF(l)` or `RBF(l)`; None for any other kernel."""
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Product

    if isinstance(kernel, RBF):
        return 1.0, np.atleast_1d(np.asarray(kernel.length_scale, dtype=np.float64))
    if isinstance(kernel, Product):
        for a, b in ((kernel.k1, kernel.k2), (kernel.k2, kernel.k1)):
            if isinstance(a, ConstantKernel) and isinstance(b, RBF):
                return float(a.constant_value), np.atleast_1d(np.asarray(b.length_scale, dtype=np.float64))
    return None


def erf(em: Emitter, x: str) -> str:
    """erf in the emitter's dtype; onnxruntime 1.32 has no float64 Erf kernel, so float64 sums the series
    erf(x) = 2/sqrt(pi) exp(-x^2) sum_n (2x^2)^n x / (2n+1)!!  (Abramowitz & Stegun 7.1.6) in Horner form over
    u = x^2 / 36, where the coefficients stay within a few orders of magnitude, and takes sign(x) for |x| >= 6,
    where erf is +-1 in double."""
    if not em.double:
        return em.node("Erf", [x], "erf")
    n_terms = 110
    coef = [1.0]
    for n in range(1, n_terms):
        coef.append(coef[-1] * 2.0 * 36.0 / (2 * n + 1))
    x2 = em.node("Mul", [x, x], "x2")
    u = em.node("Div", [x2, em.const(36.0)], "u")
    acc = em.const(coef[-1])
    for c in reversed(coef[:-1]):
        acc = em.node("Add", [em.node("Mul", [acc, u], "hu"), em.const(c)], "h")
    scale = em.node("Mul", [em.node("Exp", [em.node("Neg", [x2], "nx2")], "ex2"), em.const(2.0 / np.sqrt(np.pi))],
                    "scale")
    series = em.node("Mul", [em.node("Mul", [scale, x], "sx"), acc], "series")
    far = em.node("GreaterOrEqual", [em.node("Abs", [x], "ax"), em.const(6.0)], "far")
    return em.node("Where", [far, em.node("Sign", [x], "sign"), series], "erf64")


def _gpc_binary(em: Emitter, x: str, e: Any) -> tuple[str, str]:
    """Latent mean and P(class 1) of scikit-learn's binary Laplace GP classifier (RBF kernels)."""
    from scipy.linalg import solve
    from sklearn.gaussian_process._gpc import COEFS, LAMBDAS

    params = _rbf_kernel_params(e.kernel_)
    if params is None:
        raise UseSkl2onnx
    c, length = params
    xs = em.node("Div", [x, em.const(length[None, :])], "xs")
    k = em.node("Mul", [em.node("Exp", [em.node("Mul", [_sqdist(em, xs, e.X_train_ / length), em.const(-0.5)],
                                                "hd")], "ek"), em.const(c)], "kstar")  # [N, n_train]
    mean = em.node("MatMul", [k, em.const((e.y_train_ - e.pi_)[:, None])], "fmean")  # [N, 1]
    m = solve(e.L_, np.diag(e.W_sr_))
    v = em.node("MatMul", [k, em.const(m.T)], "v")
    var = em.node("Sub", [em.const(c), em.reduce("ReduceSum", em.node("Mul", [v, v], "vv"), 1, keepdims=1)], "var")
    lam = LAMBDAS.ravel()[None, :]
    alpha = em.node("Div", [em.const(0.5), var], "alpha")
    gamma = em.node("Mul", [mean, em.const(lam)], "gamma")
    ratio = em.node("Sqrt", [em.node("Div", [alpha, em.node("Add", [alpha, em.const(lam ** 2)], "al")], "r")], "sr")
    erf_v = erf(em, em.node("Mul", [gamma, ratio], "ga"))
    num = em.node("Mul", [em.node("Sqrt", [em.node("Div", [em.const(np.pi), alpha], "pa")], "spa"), erf_v], "num")
    den = em.node("Mul", [em.node("Sqrt", [em.node("Mul", [var, em.const(2 * np.pi)], "v2")], "sv"), em.const(2.0)],
                  "den")
    integrals = em.node("Div", [num, den], "integrals")  # [N, 5]
    pi_star = em.node("Add", [em.node("MatMul", [integrals, em.const(COEFS)], "ci"),
                              em.const(0.5 * COEFS.sum())], "pistar")  # [N, 1]
    return mean, pi_star


@extra("sklearn.gaussian_process.GaussianProcessClassifier", kind="classifier", replaces=True)
def gaussian_process_classifier(em: Emitter, est: Any) -> list[Any]:
    """Laplace GP classification with RBF kernels: binary, or one-vs-rest (probabilities normalized).

    The latent variance `k(x, x) - |v|^2` cancels badly in float32, so a float32 model computes in float64
    inside and returns float32.
    """
    x = em.input()
    if em.double:
        return _gpc(em, x, est)
    em.double, em.dtype = True, np.float64
    try:
        outs = _gpc(em, em.node("Cast", [x], "x64", to=11), est)
    finally:
        em.double, em.dtype = False, np.float32
    return [None, em.node("Cast", [outs[1]], "proba32", to=1)]


def _gpc(em: Emitter, x: str, est: Any) -> list[Any]:
    base = est.base_estimator_
    if len(est.classes_) == 2:
        mean, p1 = _gpc_binary(em, x, base)
        proba = em.node("Concat", [em.node("Sub", [em.const([[1.0]]), p1], "p0"), p1], "proba", axis=1)
        em.label(proba, est.classes_, binary_raw=mean, strict=True)
        return [None, proba]
    if est.multi_class != "one_vs_rest":
        raise UnsupportedModelError("GaussianProcessClassifier(multi_class='one_vs_one') has no predict_proba; "
                                    "portable converts one_vs_rest")
    ps = [_gpc_binary(em, x, e)[1] for e in base.estimators_]
    p = em.node("Concat", ps, "pk", axis=1)
    proba = em.node("Div", [p, em.reduce("ReduceSum", p, 1, keepdims=1)], "proba")
    # OneVsRestClassifier.predict keeps the last of equal maxima: argmax over the reversed columns
    rev = em.node("Gather", [p, em.const(np.arange(len(ps))[::-1].copy(), dtype=np.int64)], "prev", axis=1)
    em.label(rev, np.asarray(est.classes_)[::-1])
    return [None, proba]


@extra("sklearn.impute.IterativeImputer", kind="transformer")
def iterative_imputer(em: Emitter, est: Any) -> list[Any]:
    """Mean imputation, then each fitted round-robin step: a linear model of the other columns, clipped."""
    mv = est.missing_values
    if not (isinstance(mv, float) and np.isnan(mv)) or est.sample_posterior or est.add_indicator:
        raise UnsupportedModelError("IterativeImputer converts with missing_values=nan, sample_posterior=False "
                                    "and add_indicator=False")
    x = em.input()
    empty = np.asarray(est._is_empty_feature, dtype=bool)
    keep = np.arange(len(empty)) if est.keep_empty_features else np.flatnonzero(~empty)
    stats = np.nan_to_num(np.asarray(est.initial_imputer_.statistics_, dtype=np.float64))
    miss = em.node("IsNaN", [x], "miss")
    if est.keep_empty_features:  # empty columns are not "missing": they keep the initial imputation
        miss = em.node("And", [miss, em.const(~empty[None, :], dtype=bool)], "missk")
    filled = em.node("Where", [em.node("IsNaN", [x], "nan"), em.const(stats[None, :]), x], "filled")
    cols, misses = [], []
    for j in keep:
        idx = em.const([int(j)], dtype=np.int64)
        cols.append(em.node("Gather", [filled, idx], "col", axis=1))
        misses.append(em.node("Gather", [miss, idx], "mcol", axis=1))
    lo, hi = np.asarray(est._min_value, dtype=np.float64), np.asarray(est._max_value, dtype=np.float64)
    for step in est.imputation_sequence_ if est.n_iter_ else []:
        lin = _linear(step.estimator)
        if lin is None:
            raise UnsupportedModelError(f"IterativeImputer converts with linear estimators; this one uses "
                                        f"{type(step.estimator).__name__}")
        f, nb = int(step.feat_idx), [int(i) for i in step.neighbor_feat_idx]
        xin = em.node("Concat", [cols[i] for i in nb], "nb", axis=1) if len(nb) > 1 else cols[nb[0]]
        pred = em.node("Max", [em.node("Min", [_affine(em, xin, lin[0], lin[1][None, :]), em.const(hi[f])],
                                       "lo"), em.const(lo[f])], "clipped")
        cols[f] = em.node("Where", [misses[f], pred, cols[f]], "imputed")
    return [em.node("Concat", cols, "out", axis=1) if len(cols) > 1 else cols[0]]


@extra("sklearn.manifold.Isomap", kind="transformer")
def isomap(em: Emitter, est: Any) -> list[Any]:
    """Geodesic distances through the k nearest training points (min over them of the distance to the point
    plus the point's training geodesics), then the fitted kernel PCA, an affine map read off scikit-learn."""
    nbrs = est.nbrs_
    if est.n_neighbors is None or nbrs.effective_metric_ not in ("euclidean", "minkowski") or (
            nbrs.effective_metric_ == "minkowski" and nbrs.effective_metric_params_.get("p", 2) != 2):
        raise UnsupportedModelError("Isomap converts with n_neighbors and the euclidean metric")
    fit_x = np.asarray(nbrs._fit_X, dtype=np.float64)
    dist = em.node("Sqrt", [em.node("Max", [_sqdist(em, em.input(), fit_x), em.const(0.0)], "d2")], "dist")
    near, idx = em.topk(dist, est.n_neighbors, largest=False)
    geo = em.node("Gather", [em.const(np.asarray(est.dist_matrix_, dtype=np.float64)), idx], "geo", axis=0)
    through = em.node("Add", [geo, em.node("Unsqueeze", [near, em.const([2], dtype=np.int64)], "near3")], "through")
    g = em.reduce("ReduceMin", through, 1)
    k = em.node("Mul", [em.node("Mul", [g, g], "g2"), em.const(-0.5)], "kern")
    a, b = affine_map(lambda z: est.kernel_pca_.transform(z), len(fit_x), what="Isomap's kernel PCA")
    return [_affine(em, k, a, b)]


_EULER = 0.577215664901532860606512090082402431


def _lda_psi(x: np.ndarray) -> np.ndarray:
    """scikit-learn's own digamma (sklearn/decomposition/_online_lda_fast.pyx), in numpy."""
    x = np.asarray(x, dtype=np.float64).copy()
    tiny = x <= 1e-6
    result = np.zeros_like(x)
    for _ in range(6):
        small = x < 6
        result -= np.where(small, 1.0 / x, 0.0)
        x = np.where(small, x + 1, x)
    r = 1.0 / x
    result += np.log(x) - 0.5 * r
    r = r * r
    result -= r * ((1.0 / 12.0) - r * ((1.0 / 120.0) - r * (1.0 / 252.0)))
    return np.where(tiny, -_EULER - 1.0 / np.where(tiny, x, 1.0), result)


def _psi_node(em: Emitter, x: str) -> str:
    """The same digamma as graph nodes (x > 1e-6 here: document-topic counts plus a positive prior)."""
    acc = None
    for _ in range(6):
        small = em.node("Less", [x, em.const(6.0)], "small")
        step = em.node("Where", [small, em.node("Reciprocal", [x], "inv"), em.const(0.0)], "step")
        acc = step if acc is None else em.node("Add", [acc, step], "acc")
        x = em.node("Where", [small, em.node("Add", [x, em.const(1.0)], "x1"), x], "xs")
    r = em.node("Reciprocal", [x], "r")
    head = em.node("Sub", [em.node("Log", [x], "logx"), em.node("Mul", [r, em.const(0.5)], "hr")], "head")
    r2 = em.node("Mul", [r, r], "r2")
    poly = em.node("Sub", [em.const(1.0 / 120.0), em.node("Mul", [r2, em.const(1.0 / 252.0)], "a")], "p1")
    poly = em.node("Sub", [em.const(1.0 / 12.0), em.node("Mul", [r2, poly], "b")], "p2")
    result = em.node("Sub", [head, em.node("Mul", [r2, poly], "tail")], "psi0")
    return em.node("Sub", [result, acc], "psi")


@extra("sklearn.decomposition.LatentDirichletAllocation", kind="transformer")
def latent_dirichlet_allocation(em: Emitter, est: Any) -> list[Any]:
    """The variational E-step, unrolled: `max_doc_update_iter` updates, each row frozen once its mean change
    falls below `mean_change_tol` (scikit-learn stops that row's loop there), then normalized. Computed in
    float64 (a float32 model returns float32)."""
    out_float = not em.double
    x = em.input()
    if out_float:
        em.double, em.dtype = True, np.float64
        x = em.node("Cast", [x], "x64", to=11)
    try:
        beta = np.asarray(est.exp_dirichlet_component_, dtype=np.float64)  # [K, W]
        k = beta.shape[0]
        prior = float(est.doc_topic_prior_)
        eps = float(np.finfo(np.float64).eps)
        doc = rows(em, x, np.ones(k))
        exp_doc = rows(em, x, np.exp(_lda_psi(np.ones(k)) - _lda_psi(np.array([float(k)]))))
        done = em.node("Cast", [em.node("Mul", [em.reduce("ReduceSum", doc, 1, keepdims=1), em.const(0.0)], "z")],
                       "done0", to=9)
        for _ in range(est.max_doc_update_iter):
            norm_phi = em.node("Add", [em.node("MatMul", [exp_doc, em.const(beta)], "phi"), em.const(eps)], "nphi")
            new = em.node("Mul", [exp_doc, em.node("MatMul", [em.node("Div", [x, norm_phi], "cn"),
                                                              em.const(beta.T)], "cb")], "upd")
            new = em.node("Add", [new, em.const(prior)], "withprior")
            psi_all = _psi_node(em, new)
            psi_sum = _psi_node(em, em.reduce("ReduceSum", new, 1, keepdims=1))
            new_exp = em.node("Exp", [em.node("Sub", [psi_all, psi_sum], "elog")], "newexp")
            change = em.reduce("ReduceMean", em.node("Abs", [em.node("Sub", [doc, new], "dd")], "ad"), 1, keepdims=1)
            doc = em.node("Where", [done, doc, new], "doc")
            exp_doc = em.node("Where", [done, exp_doc, new_exp], "expdoc")
            done = em.node("Or", [done, em.node("Less", [change, em.const(float(est.mean_change_tol))], "conv")],
                           "done")
        out = em.node("Div", [doc, em.reduce("ReduceSum", doc, 1, keepdims=1)], "theta")
    finally:
        if out_float:
            em.double, em.dtype = False, np.float32
    return [em.node("Cast", [out], "theta32", to=1) if out_float else out]


@extra("sklearn.manifold.LocallyLinearEmbedding", kind="transformer")
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
    _, idx = em.topk(_sqdist(em, x, fit_x), k, largest=False)
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


# -- registration with skl2onnx ---------------------------------------------------------------------------------

def _label_type(est: Any) -> Any:
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    kind = np.asarray(est.classes_).dtype.kind
    return StringTensorType([None]) if kind in "OUS" else Int64TensorType([None])


def _n_out(est: Any, kind: str) -> int | None:
    if kind == "regressor":
        out = getattr(est, "n_outputs_", None)
        if out is None:
            coef = getattr(est, "coef_", None)
            dual = getattr(est, "dual_coef_", None)
            if coef is not None and np.ndim(coef) == 2:
                out = np.shape(coef)[0]
            elif dual is not None and np.ndim(dual) == 2 and type(est).__name__ == "KernelRidge":
                out = np.shape(dual)[1]
            elif hasattr(est, "order_"):  # RegressorChain
                out = len(est.order_)
            else:
                out = 1
        return int(out)
    try:
        return len(est.get_feature_names_out())
    except Exception:
        return None


def _outputs(est: Any, kind: str, float_type: Any) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import BooleanTensorType, Int64TensorType

    if kind == "classifier":
        n = len(est.classes_)
        if not hasattr(est, "predict_proba") and not hasattr(est, "decision_function"):
            return [("label", _label_type(est))]  # OutputCodeClassifier: labels are all it gives
        second = "probabilities" if hasattr(est, "predict_proba") else "scores"
        width = n if second == "probabilities" or n > 2 else 1
        return [("label", _label_type(est)), (second, float_type([None, width]))]
    if kind == "clusterer":
        outs = [("label", Int64TensorType([None]))]
        if hasattr(est, "transform"):
            outs.append(("scores", float_type([None, None])))
        return outs
    if kind == "outlier":
        return [("label", Int64TensorType([None])), ("scores", float_type([None, 1]))]
    if type(est).__name__ == "MissingIndicator":
        return [("variable", BooleanTensorType([None, _n_out(est, kind)]))]
    return [("variable", float_type([None, _n_out(est, kind)]))]


def _parser(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    from skl2onnx._supported_operators import _get_sklearn_operator_name
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    spec = EXTRAS[type(model).__name__]
    op = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    op.inputs = inputs
    float_type = DoubleTensorType if isinstance(inputs[0].type, DoubleTensorType) else FloatTensorType
    for name, typ in _outputs(model, spec.kind, float_type):
        op.outputs.append(scope.declare_local_variable(name, typ))
    return op.outputs


def _shape(operator: Any) -> None:
    """The parser already declared types and shapes."""


REGISTERED: set[str] = set()
ORIGINAL: dict[str, Any] = {}  # skl2onnx's converters that `replaces=True` converters fall back to


def _convert(scope: Any, operator: Any, container: Any) -> None:
    est = operator.raw_operator
    em = Emitter(scope, operator, container)
    try:
        outs = EXTRAS[type(est).__name__].func(em, est)
    except UseSkl2onnx:
        original = ORIGINAL.get(type(est).__name__)
        if original is None:
            raise UnsupportedModelError(f"portable cannot convert this configuration of {type(est).__name__}") \
                from None
        original(scope, operator, container)
        return
    for i, name in enumerate(outs[: len(operator.outputs)]):
        if name is not None:
            em.output(i, name)


def register() -> None:
    """Register every converter of this module with skl2onnx, with portable's parser for its outputs."""
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter

    for spec in list(EXTRAS.values()):
        if spec.name in REGISTERED:
            continue
        module, cls_name = spec.path.rsplit(".", 1)
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):  # an older scikit-learn without this estimator
            continue
        alias = sklearn_operator_name_map.get(cls)
        if alias and not alias.startswith("Portable") and cls_name not in ORIGINAL:
            try:
                ORIGINAL[cls_name] = get_converter(alias)
            except Exception:
                pass
        # classifiers accept (and ignore: portable's parser never adds ZipMap) the options skl2onnx's pipeline
        # handling hands to a pipeline's last step
        options = {"zipmap": [True, False, "columns"], "nocl": [True, False]} if spec.kind == "classifier" \
            else None
        if cls_name in ORIGINAL:  # the fallback may read its own options
            try:
                options = ORIGINAL[cls_name].get_allowed_options() or options
            except Exception:
                pass
        update_registered_converter(cls, f"Portable{cls_name}", _shape, _convert, parser=_parser, options=options)
        REGISTERED.add(spec.name)
    from . import wrappers

    if not wrappers.REGISTERED:
        wrappers.register()
