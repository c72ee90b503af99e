"""Small ONNX pieces several estimator families share: distances, kernels, constant rows, affine maps."""
from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ... import onnx_builder
from .emit import Emitter


def sqdist(em: Emitter, x: str, centers: np.ndarray) -> str:
    """Squared euclidean distances `[N, M]` from the rows of x to `centers` `[M, F]`, as differences."""
    return onnx_builder.sqdist(em.ops, x, centers, em.reduce_sum)


def l1dist(em: Emitter, x: str, centers: np.ndarray) -> str:
    return onnx_builder.l1dist(em.ops, x, centers, em.reduce_sum)


def kernel(em: Emitter, x: str, y: np.ndarray, metric: str, *, gamma: float | None = None, degree: float = 3,
           coef0: float = 1) -> str:
    """`sklearn.metrics.pairwise.pairwise_kernels(X, y, metric)` (see `portable.onnx_builder.kernel`)."""
    return onnx_builder.kernel(em.ops, x, y, metric, gamma=gamma, degree=degree, coef0=coef0,
                               reduce_sum=em.reduce_sum)


def gamma_of(est: Any, attr: str = "gamma") -> float | None:
    g = getattr(est, "gamma_of", None)
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


def affine(em: Emitter, x: str, a: np.ndarray, b: np.ndarray) -> str:
    return em.node("Add", [em.node("MatMul", [x, em.const(a)], "xa"), em.const(b)], "affine")


#: a float32 graph sums a linear model's dot products of at least this many terms in float64 (`linear_scores`),
#: when the model reads text (`WIDE_SUMS`)
WIDE_DOT = 128
#: set by `sklearn_to_onnx` while it converts a float32 model that reads text: its linear heads (over a
#: vectorizer's thousands of columns) then sum in float64. There the Cast costs little next to the vectorizer
#: (1.09x and 1.15x of the tf-idf pipelines' time on 10,000 rows); for dense inputs it would cost most of the
#: artifact's time (a LogisticRegression over 384 dense columns, 10,000 rows, one thread: 5.3-8.6 ms against
#: 0.9 ms in float32 and 2.7 ms in scikit-learn), so dense float32 heads keep float32 sums (float64 artifacts
#: are exact, and certifiable, for those who need it).
WIDE_SUMS: contextvars.ContextVar[bool] = contextvars.ContextVar("portable_wide_sums", default=False)

_TEXT_MODULE = "sklearn.feature_extraction.text"


def reads_text(est: Any) -> bool:
    """Whether `est` or one of its parts is a scikit-learn text vectorizer (CountVectorizer, TfidfVectorizer,
    HashingVectorizer, TfidfTransformer)."""
    if type(est).__module__.startswith(_TEXT_MODULE):
        return True
    try:
        parts = est.get_params(deep=True).values()
    except Exception:
        return False
    return any(type(v).__module__.startswith(_TEXT_MODULE) for v in parts)


def linear_scores(em: Emitter, x: str, coef: np.ndarray, intercept: np.ndarray, hint: str = "scores") -> str:
    """A linear model's scores `x @ coef + intercept` (`coef` `[n_in, n_out]`, `intercept` `[1, n_out]`).

    In a float32 graph of a model that reads text (`WIDE_SUMS`) with `n_in >= WIDE_DOT` inputs the product and the intercept are computed in float64 (Cast,
    MatMul and Add in double, Cast back): a float32 sum of n terms may err by up to about (n - 1) 2^-24 of the
    sum of |terms| depending on its order (onnxruntime's MLAS kernels pick one per shape and CPU), which beyond a
    hundred-odd terms reaches the float32 check's tolerances (atol 1e-5 on probabilities, 1e-4 of the outputs'
    scale on scores) -- a tf-idf linear SVC over 747 terms can err by 1.6e-4 in the worst order -- and no bound
    valid for every order can certify it. In float64 the same sum errs by 2^-29 as much; the scores are then
    rounded once to float32 (half an ulp). Narrower models keep the plain float32 product (the same graph as
    before; the float32 bound certifies them)."""
    from onnx import TensorProto

    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64).reshape(1, -1)
    if em.double or coef.shape[0] < WIDE_DOT or not WIDE_SUMS.get():
        return em.node("Add", [em.node("MatMul", [x, em.const(coef)], "xw"), em.const(intercept)], hint)
    x64 = em.node("Cast", [x], "x64", to=TensorProto.DOUBLE)
    s64 = em.node("Add", [em.node("MatMul", [x64, em.const(coef, dtype=np.float64)], "xw64"),
                          em.const(intercept, dtype=np.float64)], hint + "64")
    return em.node("Cast", [s64], hint, to=TensorProto.FLOAT)


def sign_label(em: Emitter, dec: str, *, strict: bool) -> str:
    """+1 where dec > 0 (`>= 0` unless strict), else -1, as int64 `[N]`."""
    cmp = em.node("Greater" if strict else "GreaterOrEqual", [dec, em.const(0.0)], "inl")
    lab = em.node("Where", [cmp, em.const([1], dtype=np.int64), em.const([-1], dtype=np.int64)], "lab")
    return em.node("Reshape", [lab, em.const([-1], dtype=np.int64)], "lab1")


def dense(v: Any) -> np.ndarray:
    return np.asarray(v.toarray() if hasattr(v, "toarray") else v, dtype=np.float64)


def linear_coefs(est: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(coef [n_in, n_out], intercept [n_out]) of a fitted linear model, or None for anything else."""
    coef, inter = getattr(est, "coef_", None), getattr(est, "intercept_", 0.0)
    if coef is None or not hasattr(est, "decision_function" if hasattr(est, "classes_") else "predict"):
        return None
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    return coef.T, np.broadcast_to(np.asarray(inter, dtype=np.float64), (coef.shape[0],)).copy()


def widen_linear_heads(proto: Any) -> int:
    """skl2onnx's linear heads in a float32 graph (`ai.onnx.ml` LinearClassifier and LinearRegressor, which
    onnxruntime computes in float32 whatever their input) over at least `WIDE_DOT` inputs compute their scores
    as `linear_scores` does: Cast to double, MatMul + Add in double, Cast back; the node itself then reads those
    scores through identity coefficients and zero intercepts (`1 * s + 0 * t + 0` is exact in float32), so its
    labels, post-transform and outputs are unchanged. The coefficients are the node's float32 ones, widened. Returns
    how many heads were rewritten (the graph is changed in place)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    taken = {n for node in graph.node for n in [*node.input, *node.output]} | {i.name for i in graph.initializer}
    new_nodes, count = [], 0
    for node in graph.node:
        if node.domain != "ai.onnx.ml" or node.op_type not in ("LinearClassifier", "LinearRegressor"):
            new_nodes.append(node)
            continue
        at = {a.name: a for a in node.attribute}
        coef = np.asarray(helper.get_attribute_value(at["coefficients"]), dtype=np.float32).astype(np.float64)
        inter = np.asarray(helper.get_attribute_value(at["intercepts"]), dtype=np.float32).astype(np.float64) \
            if "intercepts" in at else None
        if node.op_type == "LinearRegressor":
            rows = int(helper.get_attribute_value(at["targets"])) if "targets" in at else 1
        else:
            rows = len(inter) if inter is not None and len(inter) else 0
        if rows <= 0 or coef.size % rows or coef.size // rows < WIDE_DOT:
            new_nodes.append(node)
            continue
        if inter is None or not len(inter):
            inter = np.zeros(rows)
        base = node.output[0]
        names = {}
        for key in ("x64", "w64", "b64", "xw64", "s64", "s32"):
            k, name = 0, f"{base}_wide_{key}"
            while name in taken:
                k += 1
                name = f"{base}_wide_{key}{k}"
            taken.add(name)
            names[key] = name
        graph.initializer.extend([numpy_helper.from_array(coef.reshape(rows, -1).T.copy(), names["w64"]),
                                  numpy_helper.from_array(inter.reshape(1, rows), names["b64"])])
        new_nodes += [helper.make_node("Cast", [node.input[0]], [names["x64"]], to=TensorProto.DOUBLE,
                                       name=names["x64"]),
                      helper.make_node("MatMul", [names["x64"], names["w64"]], [names["xw64"]], name=names["xw64"]),
                      helper.make_node("Add", [names["xw64"], names["b64"]], [names["s64"]], name=names["s64"]),
                      helper.make_node("Cast", [names["s64"]], [names["s32"]], to=TensorProto.FLOAT,
                                       name=names["s32"])]
        head = helper.make_node(node.op_type, [names["s32"]], list(node.output), name=node.name, domain=node.domain)
        for a in node.attribute:
            if a.name == "coefficients":
                head.attribute.append(helper.make_attribute("coefficients", np.eye(rows).reshape(-1).tolist()))
            elif a.name == "intercepts":
                head.attribute.append(helper.make_attribute("intercepts", [0.0] * rows))
            else:
                head.attribute.append(a)
        new_nodes.append(head)
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(new_nodes)
    return count


def expit(em: Emitter, s: str) -> str:
    """1 / (1 + exp(-s)), as scipy's expit: onnxruntime's double Sigmoid rounds tails to 0 (s = -25 gives 0.0 where
    expit gives 1.4e-11)."""
    return em.node("Reciprocal", [em.node("Add", [em.const(1.0), em.node("Exp", [em.node("Neg", [s], "negs")], "e")],
                                          "den")], "p")
