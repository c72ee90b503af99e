"""Model, metric and imputation functions: `model.reg.*`, `model.cluster.*`, `model.neural.*`,
`model.naive.*`, `model.neighbor.*`, `model.svm.*`, `metric.*`, `impute.*`.

Model parameters come from cells, so they are constants; the datum is batched. Distances to many centres or
codebook entries are computed as one `[N, K]` tensor, then reduced.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import PFARuntimeError
from . import types as T
from .engine import Fn
from .lib_array import array_arg
from .library import arity, pfa_function
from .values import Val


def _const(ev: Any, v: Val, name: str, where: str) -> Any:
    if not v.const:
        raise ev.unsupported(f"{name}: the model parameters must be constant (a cell or a literal), not "
                             "computed per record", where)
    return v.data


def _vec(ev: Any, v: Val, name: str, where: str) -> Any:
    t = v.type
    if not (isinstance(t, T.Array) and T.is_numeric(t.items)):
        raise ev.error(f"{name} needs an array of doubles as the datum, found {t.describe()}", where)
    return ev.tensor(v, ev.dtype_of(T.DOUBLE))


def _f(ev: Any, x: Any) -> np.ndarray:
    return np.asarray(x, dtype=ev.dtype_of(T.DOUBLE))


# -- regression ------------------------------------------------------------------------------------------------
@pfa_function("model.reg.linear")
def reg_linear(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "model.reg.linear", where)
    datum, model = args
    m = _const(ev, model, "model.reg.linear", where)
    if not isinstance(m, dict) or "coeff" not in m or "const" not in m:
        raise ev.error("model.reg.linear's model is a record with 'coeff' and 'const'", f"{where}[1]")
    coeff, const = m["coeff"], m["const"]
    if isinstance(datum.type, T.Map):
        return _reg_linear_map(ev, datum, coeff, const, where)
    x = _vec(ev, datum, "model.reg.linear", f"{where}[0]")
    c = _f(ev, coeff)
    width = np.shape(x)[-1] if isinstance(x, np.ndarray) else None
    if c.ndim == 1:
        if width is not None and width != len(c):
            raise PFARuntimeError("misaligned coeff", code=31000, where=where)
        out = ev.op("add", ev.backend_for(x).matmul(x, c), _f(ev, const))
        return ev.result(T.DOUBLE, out, datum)
    if width is not None and c.size and width != c.shape[1]:
        raise PFARuntimeError("misaligned coeff", code=31000, where=where)
    if len(const) != c.shape[0]:
        raise PFARuntimeError("misaligned const", code=31001, where=where)
    out = ev.op("add", ev.backend_for(x).matmul(x, c.T.copy()), _f(ev, const))
    return ev.result(T.Array(T.DOUBLE), out, datum)


def _reg_linear_map(ev: Any, datum: Val, coeff: Any, const: Any, where: str) -> Val:
    dt = ev.dtype_of(T.DOUBLE)
    fields = datum.data if not datum.const else {k: Val(T.DOUBLE, v, True) for k, v in datum.data.items()}

    def one(row: dict[str, float], c: float) -> Val:
        acc: Any = _f(ev, c)
        for k, w in row.items():
            if k in fields:
                acc = ev.op("add", acc, ev.op("mul", ev.tensor(fields[k], dt), _f(ev, w)))
        return Val(T.DOUBLE, acc, datum.const)

    if isinstance(const, dict):
        keys = sorted(set(coeff) | set(const))
        return Val(T.Map(T.DOUBLE), {k: one(coeff.get(k, {}), const.get(k, 0.0)) for k in keys}, datum.const)
    return one(coeff, const)


# -- clustering ------------------------------------------------------------------------------------------------
def _distances(ev: Any, datum: Val, centers: list[Any], metric: Fn | None, where: str) -> Any:
    """`[N, K]` distances from the datum to each centre (Euclidean when no metric is given)."""
    if metric is None:
        x = _vec(ev, datum, "model.cluster", where)
        c = _f(ev, centers)
        b = ev.backend_for(x)
        d = ev.op("sub", b.unsqueeze(x, -2), c)  # [N, K, D]
        return ev.op("sqrt", b.reduce("sum", ev.op("mul", d, d), axis=-1))
    cols = []
    for i, c in enumerate(centers):
        cv = Val(datum.type, c, True)  # a centre has the datum's type (the metric compares the two)
        out = metric(ev, [datum, cv], f"{where}[{i}]")
        cols.append(ev.tensor(out, ev.dtype_of(T.DOUBLE)))
    return ev.backend_for(*cols).stack(cols, axis=-1)


def _clusters(ev: Any, v: Val, name: str, where: str) -> list[Any]:
    data = _const(ev, v, name, where)
    if not isinstance(data, list) or not all(isinstance(c, dict) and "center" in c for c in data):
        raise ev.error(f"{name}: clusters are an array of records with a 'center' field", where)
    if not data:
        raise PFARuntimeError("no clusters", code=29000 if name.endswith("closest") else 29001, where=where)
    return data


@pfa_function("model.cluster.closest")
def closest(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, (2, 3), "model.cluster.closest", where)
    datum, clusters = args[0], args[1]
    metric = args[2] if len(args) == 3 else None
    data = _clusters(ev, clusters, "model.cluster.closest", where)
    dist = _distances(ev, datum, [c["center"] for c in data], _plain_metric(metric), where)
    idx = ev.backend_for(dist).reduce("argmin", dist, axis=-1)
    if datum.const:
        return Val(clusters.type.items, data[int(idx)], True)
    return ev.gather_records(clusters, Val(T.INT, idx, False), where)


@pfa_function("model.cluster.closestN")
def closest_n(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, (3, 4), "model.cluster.closestN", where)
    n, datum, clusters = args[0], args[1], args[2]
    metric = args[3] if len(args) == 4 else None
    k = int(_const(ev, n, "model.cluster.closestN", where))
    if k < 0:
        raise PFARuntimeError("n must be nonnegative", code=29001, where=where)
    data = _clusters(ev, clusters, "model.cluster.closestN", where)
    dist = _distances(ev, datum, [c["center"] for c in data], _plain_metric(metric), where)
    k = min(k, len(data))
    order = ev.backend_for(dist).argsort(dist, k)
    picks = [ev.gather_records(clusters, Val(T.INT, ev.backend_for(order).take(order, j, axis=1), False), where)
             for j in range(k)]
    return Val(T.Array(clusters.type.items), picks, False)


def _plain_metric(metric: Any) -> Fn | None:
    """None when the metric is Euclidean distance on plain doubles, which is computed in one go."""
    if metric is None:
        return None
    body = getattr(metric, "body", None)
    if metric.name == "metric.simpleEuclidean":
        return None
    if body is not None and len(body.body) == 1 and isinstance(body.body[0], dict):
        (fname, fargs), = body.body[0].items() if len(body.body[0]) == 1 else ((None, None),)
        params = [p for p, _ in body.params]
        if fname == "metric.simpleEuclidean" and fargs == params:
            return None
        if fname == "metric.euclidean" and isinstance(fargs, list) and len(fargs) == 3 \
                and fargs[0] == {"fcn": "metric.absDiff"} and fargs[1:] == params \
                and all(not isinstance(t, T.Union) and not isinstance(getattr(t, "items", None), T.Union)
                        for _, t in body.params):
            return None
    return metric


# -- neural networks -------------------------------------------------------------------------------------------
@pfa_function("model.neural.simpleLayers")
def simple_layers(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, 3, "model.neural.simpleLayers", where)
    datum, model, activation = args
    layers = _const(ev, model, "model.neural.simpleLayers", where)
    if not layers:
        raise PFARuntimeError("no layers", code=11000, where=where)
    h = _vec(ev, datum, "model.neural.simpleLayers", where)
    const = datum.const
    for i, layer in enumerate(layers):
        w, b = _f(ev, layer["weights"]), _f(ev, layer["bias"])
        if w.ndim != 2 or w.shape[0] != len(b) or (isinstance(h, np.ndarray) and np.shape(h)[-1] != w.shape[1]):
            raise PFARuntimeError("weights, bias, or datum misaligned", code=11001, where=where)
        h = ev.op("add", ev.backend_for(h).matmul(h, w.T.copy()), b)
        if i < len(layers) - 1:
            h = activation(ev, [Val(T.DOUBLE, h, const)], where).data
    return Val(T.Array(T.DOUBLE), h, const)


# -- naive Bayes ------------------------------------------------------------------------------------------------
@pfa_function("model.naive.gaussian")
def naive_gaussian(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "model.naive.gaussian", where)
    datum, model = args
    params = _const(ev, model, "model.naive.gaussian", where)
    if isinstance(datum.type, T.Map):
        keys = list(params)
        if not datum.const and set(datum.data) != set(keys):
            raise PFARuntimeError("datum and classModel misaligned", code=10000, where=where)
        x = ev.b.stack([ev.tensor(datum.data[k], ev.dtype_of(T.DOUBLE)) for k in keys], axis=-1) \
            if not datum.const else _f(ev, [datum.data[k] for k in keys])
        params = [params[k] for k in keys]
    else:
        x = _vec(ev, datum, "model.naive.gaussian", where)
        if isinstance(x, np.ndarray) and np.shape(x)[-1] != len(params):
            raise PFARuntimeError("datum and classModel misaligned", code=10000, where=where)
    mean = _f(ev, [p["mean"] for p in params])
    var = _f(ev, [p["variance"] for p in params])
    if (var <= 0).any():
        raise PFARuntimeError("variance less than or equal to zero", code=10001, where=where)
    d = ev.op("sub", x, mean)
    ll = ev.op("sub", _f(ev, -0.5 * np.log(2.0 * math.pi * var)),
               ev.op("div", ev.op("mul", d, d), _f(ev, 2.0 * var)))
    return Val(T.DOUBLE, ev.backend_for(ll).reduce("sum", ll, axis=-1), datum.const)


# -- nearest neighbours ----------------------------------------------------------------------------------------
@pfa_function("model.neighbor.nearestK")
def nearest_k(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, (3, 4), "model.neighbor.nearestK", where)
    k_val, datum, codebook = args[0], args[1], args[2]
    metric = args[3] if len(args) == 4 else None
    k = int(_const(ev, k_val, "model.neighbor.nearestK", where))
    if k < 0:
        raise PFARuntimeError("k must be nonnegative", code=30010, where=where)
    book = _const(ev, codebook, "model.neighbor.nearestK", where)
    array_arg(ev, codebook, "model.neighbor.nearestK", where)
    if metric is None:
        lens = {len(c) for c in book}
        x = _vec(ev, datum, "model.neighbor.nearestK", where)
        if len(lens) > 1 or (isinstance(x, np.ndarray) and lens and np.shape(x)[-1] not in lens):
            raise PFARuntimeError("inconsistent dimensionality", code=30011, where=where)
        if not book:
            return Val(codebook.type, [], True)
        dist = _distances(ev, datum, book, None, where)
        dist = ev.op("mul", dist, dist)
    else:
        dist = _distances(ev, datum, book, metric, where)
    k = min(k, len(book))
    b = ev.backend_for(dist)
    order = b.argsort(dist, k)  # [N, k], nearest first
    table = _f(ev, book) if isinstance(codebook.type.items, T.Array) else np.asarray(book)
    full = b.gather(table, order)  # [N, k, D]
    if datum.const:
        return Val(codebook.type, np.asarray(full).tolist(), True)
    # one batched Val per neighbour, so that a.map & co. see the k items of the array
    return Val(codebook.type, [Val(codebook.type.items, b.take(full, i, axis=1), False) for i in range(k)], False)


# -- support vector machines -------------------------------------------------------------------------------------
@pfa_function("model.svm.score")
def svm_score(ev: Any, args: list[Any], where: str) -> Val:
    arity(ev, args, 3, "model.svm.score", where)
    datum, model, kernel = args
    m = _const(ev, model, "model.svm.score", where)
    if not m["posClass"] and not m["negClass"]:
        raise PFARuntimeError("no support vectors", code=12000, where=where)
    x = _vec(ev, datum, "model.svm.score", where)
    acc: Any = None
    for group in ("negClass", "posClass"):
        total: Any = _f(ev, 0.0)
        for sv in m[group]:
            if isinstance(x, np.ndarray) and np.shape(x)[-1] != len(sv["supVec"]):
                raise PFARuntimeError("support vectors must have same length as datum", code=12001, where=where)
            kv = kernel(ev, [Val(T.Array(T.DOUBLE), sv["supVec"], True), datum], where)
            total = ev.op("add", total, ev.op("mul", ev.tensor(kv, ev.dtype_of(T.DOUBLE)), _f(ev, sv["coeff"])))
        acc = total if acc is None else ev.op("add", acc, total)
    return Val(T.DOUBLE, ev.op("add", acc, _f(ev, m["const"])), datum.const)


# -- metrics ------------------------------------------------------------------------------------------------------
@pfa_function("metric.absDiff")
def abs_diff(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "metric.absDiff", where)
    dt = ev.dtype_of(T.DOUBLE)
    return ev.result(T.DOUBLE, ev.op("abs", ev.op("sub", ev.tensor(args[0], dt), ev.tensor(args[1], dt))), *args)


@pfa_function("metric.gaussianSimilarity")
def gaussian_similarity(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 3, "metric.gaussianSimilarity", where)
    dt = ev.dtype_of(T.DOUBLE)
    x, y, s = (ev.tensor(a, dt) for a in args)
    d = ev.op("sub", x, y)
    z = ev.op("div", ev.op("mul", _f(ev, -math.log(2.0)), ev.op("mul", d, d)), ev.op("mul", s, s))
    return ev.result(T.DOUBLE, ev.op("exp", z), *args)


@pfa_function("metric.simpleEuclidean")
def simple_euclidean(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "metric.simpleEuclidean", where)
    x, y = (_vec(ev, a, "metric.simpleEuclidean", where) for a in args)
    _same_dims(ev, x, y, where)
    d = ev.op("sub", x, y)
    return ev.result(T.DOUBLE, ev.op("sqrt", ev.backend_for(d).reduce("sum", ev.op("mul", d, d), axis=-1)), *args)


def _same_dims(ev: Any, x: Any, y: Any, where: str) -> None:
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and np.shape(x)[-1] != np.shape(y)[-1]:
        raise PFARuntimeError("dimensions of vectors do not match", code=28000, where=where)


def _similarities(ev: Any, args: list[Any], name: str, where: str) -> tuple[Any, Any, list[Val]]:
    """(sim(x_i, y_i) per component, the mask of components where neither is missing, the data args)."""
    sim, x, y = args[0], args[1], args[2]
    if not isinstance(sim, Fn):
        raise ev.error(f"{name}'s first argument is a similarity function", where)
    array_arg(ev, x, name, where)
    array_arg(ev, y, name, where)
    dt = ev.dtype_of(T.DOUBLE)
    xt, yt = ev.tensor(x, dt), ev.tensor(y, dt)
    _same_dims(ev, xt, yt, where)
    xi = Val(_inner(x.type.items), xt, x.const)
    yi = Val(_inner(y.type.items), yt, y.const)
    s = ev.tensor(sim(ev, [xi, yi], where), dt)
    nullable = isinstance(x.type.items, T.Union) or isinstance(y.type.items, T.Union)
    mask = None
    if nullable:
        mask = ev.op("not", ev.op("or", ev.op("isnan", xt), ev.op("isnan", yt)))
    return s, mask, [x, y]


def _inner(t: T.AvroType) -> T.AvroType:
    inner = T.nullable_inner(t)
    return inner if inner is not None else t


def _weighted_sum(ev: Any, terms: Any, mask: Any, weights: Any) -> Any:
    """sum_i I_i t_i * (sum_i q_i) / (sum_i I_i q_i): the spec's normalisation for missing components."""
    b = ev.backend_for(terms)
    if mask is None:
        return b.reduce("sum", terms, axis=-1)
    dt = ev.dtype_of(T.DOUBLE)
    kept = ev.op("where", mask, terms, _f(ev, 0.0))
    q = weights if weights is not None else ev.op("where", mask, _f(ev, 1.0), _f(ev, 1.0))
    q = ev.op("add", q, ev.op("where", mask, _f(ev, 0.0), _f(ev, 0.0)))  # q broadcast to the mask's shape
    total_q = b.reduce("sum", q, axis=-1)
    kept_q = b.reduce("sum", ev.op("mul", q, ev.cast(mask, dt)), axis=-1)
    return ev.op("div", ev.op("mul", b.reduce("sum", kept, axis=-1), total_q), kept_q)


def _metric(name: str, kind: str) -> Any:
    def impl(ev: Any, args: list[Any], where: str) -> Val:
        n_fixed = 4 if kind == "minkowski" else 3
        arity(ev, args, (n_fixed, n_fixed + 1), name, where)
        s, mask, vals = _similarities(ev, args, name, where)
        weights = None
        if len(args) == n_fixed + 1:
            weights = ev.tensor(args[-1], ev.dtype_of(T.DOUBLE))
        b = ev.backend_for(s)
        if kind in ("euclidean", "squared"):
            total = _weighted_sum(ev, ev.op("mul", s, s), mask, weights)
            out = ev.op("sqrt", total) if kind == "euclidean" else total
        elif kind == "taxicab":
            out = _weighted_sum(ev, ev.op("abs", s), mask, weights)
        elif kind == "chebyshev":
            a = ev.op("abs", s)
            if mask is not None:
                a = ev.op("where", mask, a, _f(ev, 0.0))
            out = b.reduce("max", a, axis=-1)
        else:  # minkowski
            p = ev.tensor(args[3], ev.dtype_of(T.DOUBLE))
            total = _weighted_sum(ev, ev.op("pow", ev.op("abs", s), p), mask, weights)
            out = ev.op("pow", total, ev.op("div", _f(ev, 1.0), p))
        return ev.result(T.DOUBLE, out, *vals)
    return impl


for _n, _k in (("metric.euclidean", "euclidean"), ("metric.squaredEuclidean", "squared"),
               ("metric.taxicab", "taxicab"), ("metric.chebyshev", "chebyshev"),
               ("metric.minkowski", "minkowski")):
    pfa_function(_n)(_metric(_n, _k))


# -- imputation ---------------------------------------------------------------------------------------------------
def _nullable_number(ev: Any, v: Val, name: str, where: str) -> T.AvroType:
    inner = T.nullable_inner(v.type)
    if inner is None or not (T.is_numeric(inner) or inner == T.BOOLEAN):
        raise ev.unsupported(f"{name} on {v.type.describe()}: portable supports nullable numbers (null as NaN)",
                             where)
    return inner


def _to_inner(ev: Any, x: Any, inner: T.AvroType) -> Any:
    if T.is_integer(inner):
        return ev.cast(ev.op("where", ev.op("isnan", x), _f(ev, 0.0), x), "int64")
    if inner == T.BOOLEAN:
        return ev.op("ne", x, _f(ev, 0.0))
    return ev.cast(x, ev.dtype_of(inner))


@pfa_function("impute.errorOnNull")
def error_on_null(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "impute.errorOnNull", where)
    v = args[0]
    if v.const:
        if v.data is None:
            raise PFARuntimeError("encountered null", code=21000, where=where)
        return Val(_inner(v.type), v.data, True)
    inner = _nullable_number(ev, v, "impute.errorOnNull", where)
    x = ev.tensor(v)
    if ev.b.name == "numpy":
        ev.runtime_error("encountered null", 21000, where, np.isnan(x))
    return Val(inner, _to_inner(ev, x, inner), False)


@pfa_function("impute.defaultOnNull")
def default_on_null(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "impute.defaultOnNull", where)
    v, d = args
    if v.const:
        return d if v.data is None else Val(_inner(v.type), v.data, True)
    inner = _nullable_number(ev, v, "impute.defaultOnNull", where)
    x = ev.tensor(v)
    filled = ev.op("where", ev.op("isnan", x), ev.tensor(d, ev.dtype_of(T.DOUBLE)), x)
    return ev.result(inner, _to_inner(ev, filled, inner), v, d)


def _float_pred(name: str, fn: Any) -> Any:
    def impl(ev: Any, args: list[Val], where: str) -> Val:
        arity(ev, args, 1, name, where)
        v = args[0]
        if v.type not in (T.FLOAT, T.DOUBLE):
            raise ev.error(f"{name} needs a float or a double, found {v.type.describe()}", where)
        return ev.result(T.BOOLEAN, fn(ev, ev.tensor(v)), v)
    return impl


pfa_function("impute.isnan")(_float_pred("impute.isnan", lambda ev, x: ev.op("isnan", x)))
pfa_function("impute.isinf")(_float_pred("impute.isinf", lambda ev, x: ev.op("isinf", x)))
pfa_function("impute.isnum")(_float_pred(
    "impute.isnum", lambda ev, x: ev.op("not", ev.op("or", ev.op("isnan", x), ev.op("isinf", x)))))


@pfa_function("impute.errorOnNonNum")
def error_on_non_num(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 1, "impute.errorOnNonNum", where)
    v = args[0]
    x = ev.tensor(v)
    if ev.b.name == "numpy" or v.const:
        xs = np.asarray(x)
        for code, msg, bad in ((21050, "encountered nan", np.isnan(xs)),
                               (21051, "encountered +inf", np.isposinf(xs)),
                               (21052, "encountered -inf", np.isneginf(xs))):
            if v.const:
                if bool(bad):
                    raise PFARuntimeError(msg, code=code, where=where)
            else:
                ev.runtime_error(msg, code, where, bad)
    return v


@pfa_function("impute.defaultOnNonNum")
def default_on_non_num(ev: Any, args: list[Val], where: str) -> Val:
    arity(ev, args, 2, "impute.defaultOnNonNum", where)
    v, d = args
    x = ev.tensor(v)
    bad = ev.op("or", ev.op("isnan", x), ev.op("isinf", x))
    return ev.result(v.type, ev.op("where", bad, ev.tensor(d, np.asarray(x).dtype.name
                                                          if isinstance(x, np.ndarray) else None), x), v, d)


