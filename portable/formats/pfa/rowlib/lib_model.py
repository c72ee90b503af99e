"""model.*: trees, regression, clustering, naive Bayes, neighbours, neural networks and SVMs, one record at a time."""
from __future__ import annotations

import math
from functools import cmp_to_key
from typing import Any

import numpy as np

from ..rows import compare
from . import err, fn, factory

_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "notIn", "alwaysTrue", "alwaysFalse", "isMissing", "notMissing")


def _test(datum: dict, comparison: dict, missing: bool, code: int) -> Any:
    op = comparison["operator"]
    if op not in _OPS or (missing and op in ("isMissing", "notMissing")):
        raise err("invalid comparison operator", code)
    if op == "alwaysTrue":
        return True
    if op == "alwaysFalse":
        return False
    x = datum[comparison["field"]]
    if op == "isMissing":
        return x is None
    if op == "notMissing":
        return x is not None
    if x is None:
        return None if missing else False
    value = comparison["value"]
    if op in ("in", "notIn"):
        if not isinstance(value, list):
            raise err("bad value type", code + 1)
        inside = x in value
        return inside if op == "in" else not inside
    if isinstance(value, list) or isinstance(x, (int, float)) != isinstance(value, (int, float)) and \
            not isinstance(x, bool):
        raise err("bad value type", code + 1)
    c = compare(x, value)
    return {"==": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]


fn("model.tree.simpleTest")(lambda datum, comparison: _test(datum, comparison, False, 32000))
fn("model.tree.missingTest")(lambda datum, comparison: _test(datum, comparison, True, 32010))


@fn("model.tree.compoundTest")
def compound_test(datum: dict, operator: str, comparisons: list, test: Any) -> bool:
    if operator == "and":
        return all(test(datum, c) for c in comparisons)
    if operator == "or":
        return any(test(datum, c) for c in comparisons)
    if operator == "xor":
        return sum(1 for c in comparisons if test(datum, c)) % 2 == 1
    raise err("unrecognized logical operator", 32020)


@fn("model.tree.surrogateTest")
def surrogate_test(datum: dict, comparisons: list, missing_test: Any) -> bool:
    for c in comparisons:
        r = missing_test(datum, c)
        if r is not None:
            return r
    raise err("no successful surrogate", 32030)


def _is_node(v: Any, keys: tuple[str, ...]) -> bool:
    return isinstance(v, dict) and all(k in v for k in keys)


@factory("model.tree.simpleWalk")
def simple_walk(b: Any) -> Any:
    def run(datum: dict, node: Any, test: Any) -> Any:
        for _ in range(1_000_000):
            nxt = node["pass"] if test(datum, node) else node["fail"]
            if not _is_node(nxt, ("pass", "fail")) or not _same_record(nxt, node):
                return nxt
            node = nxt
        raise err("tree too deep (more than a million levels)")
    return run


def _same_record(a: dict, b: dict) -> bool:
    return set(a) == set(b)


@fn("model.tree.missingWalk")
def missing_walk(datum: dict, node: Any, test: Any) -> Any:
    for _ in range(1_000_000):
        r = test(datum, node)
        nxt = node["missing"] if r is None else (node["pass"] if r else node["fail"])
        if not _is_node(nxt, ("pass", "fail", "missing")) or not _same_record(nxt, node):
            return nxt
        node = nxt
    raise err("tree too deep (more than a million levels)")


@fn("model.tree.simpleTree")
def simple_tree(datum: dict, node: Any) -> Any:
    for _ in range(1_000_000):
        nxt = node["pass"] if _test(datum, node, False, 32060) else node["fail"]
        if not _is_node(nxt, ("pass", "fail", "field", "operator")) or not _same_record(nxt, node):
            return nxt
        node = nxt
    raise err("tree too deep (more than a million levels)")


# -- regression ---------------------------------------------------------------------------------------------------
def _dot(row: Any, datum: Any, code: int) -> float:
    if isinstance(row, dict):
        return sum(v * datum.get(k, 0.0) for k, v in row.items())
    if len(row) != len(datum):
        raise err("misaligned coeff", code)
    return sum(a * b for a, b in zip(row, datum))


@fn("model.reg.linear")
def reg_linear(datum: Any, model: dict) -> Any:
    coeff, const = model["coeff"], model["const"]
    if isinstance(const, (int, float)):
        return _dot(coeff, datum, 31000) + const
    if isinstance(coeff, dict):
        keys = set(coeff) | set(const)
        return {k: _dot(coeff.get(k, {}), datum, 31000) + const.get(k, 0.0) for k in keys}
    if len(coeff) != len(const):
        raise err("misaligned const", 31001)
    return [_dot(row, datum, 31000) + c for row, c in zip(coeff, const)]


def _variance(datum: Any, covar: Any) -> float:
    if isinstance(datum, dict):
        dd = dict(datum)
        dd[""] = 1.0
        return sum(dd.get(i, 0.0) * v * dd.get(j, 0.0) for i, row in covar.items() for j, v in row.items())
    d = list(datum) + [1.0]
    if len(covar) != len(d) or any(len(r) != len(d) for r in covar):
        raise err("misaligned covariance", 31010)
    return float(np.asarray(d) @ np.asarray(covar, dtype=float) @ np.asarray(d))


@fn("model.reg.linearVariance")
def linear_variance(datum: Any, model: dict) -> Any:
    covar = model["covar"]
    if isinstance(covar, list) and covar and isinstance(covar[0], list) and covar[0] and \
            isinstance(covar[0][0], list):
        return [_variance(datum, c) for c in covar]
    if isinstance(covar, dict) and covar and isinstance(next(iter(covar.values())), dict) and \
            any(isinstance(v, dict) for r in covar.values() for v in r.values()):
        return {k: _variance(datum, c) for k, c in covar.items()}
    return _variance(datum, covar)


def _elementwise(obs: Any, pred: Any, f: Any, code: int, unc: Any = None, code2: int = 0) -> Any:
    if isinstance(obs, (int, float)):
        return f(obs, pred) if unc is None else f(obs, pred, unc)
    if isinstance(obs, dict):
        if set(obs) != set(pred):
            raise err("misaligned prediction", code)
        if unc is not None and set(unc) != set(obs):
            raise err("misaligned uncertainty", code2)
        return {k: f(obs[k], pred[k]) if unc is None else f(obs[k], pred[k], unc[k]) for k in obs}
    if len(obs) != len(pred):
        raise err("misaligned prediction", code)
    if unc is not None and len(unc) != len(obs):
        raise err("misaligned uncertainty", code2)
    return [f(o, p) if unc is None else f(o, p, u) for o, p, u in zip(obs, pred, unc if unc is not None else obs)]


def _pull_one(o: float, p: float, u: float) -> float:
    d = o - p
    if u == 0:
        return math.nan if d == 0 else math.copysign(math.inf, d)
    return d / u


def _mahalanobis(obs: Any, pred: Any, cov: Any, code: int) -> float:
    if isinstance(obs, dict):
        keys = sorted(obs)
        if not keys:
            raise err("too few rows/cols", code)
        if set(pred) != set(obs):
            raise err("misaligned prediction", code + 1)
        if set(cov) != set(obs) or any(set(cov[k]) != set(obs) for k in keys):
            raise err("misaligned covariance", code + 2)
        d = np.array([obs[k] - pred[k] for k in keys])
        c = np.array([[cov[i][j] for j in keys] for i in keys], dtype=float)
    else:
        if len(obs) < 1:
            raise err("too few rows/cols", code)
        if len(pred) != len(obs):
            raise err("misaligned prediction", code + 1)
        if len(cov) != len(obs) or any(len(r) != len(obs) for r in cov):
            raise err("misaligned covariance", code + 2)
        d = np.array(obs, dtype=float) - np.array(pred, dtype=float)
        c = np.array(cov, dtype=float)
    return float(math.sqrt(d @ np.linalg.pinv(c) @ d))


def _chi2_update(pull: Any, state: dict, dof_key: str) -> dict:
    if isinstance(pull, (int, float)):
        add, n = pull ** 2, 1
    elif isinstance(pull, dict):
        add, n = sum(v ** 2 for v in pull.values()), 1
    else:
        add, n = sum(v ** 2 for v in pull), 1
    out = dict(state)
    out["chi2"] = state["chi2"] + add
    out[dof_key] = state[dof_key] + n
    return out


def _reduced(state: dict, dof_key: str) -> float:
    dof = state[dof_key]
    c = state["chi2"]
    if dof == 0:
        return math.nan if c == 0 else math.inf
    return c / dof


def _chi2_prob(state: dict, dof_key: str, code: int) -> float:
    dof = state[dof_key]
    if dof < 0:
        raise err("invalid parameterization", code)
    if dof == 0:
        return 1.0 if state["chi2"] > 0 else 0.0
    from scipy import stats

    return float(stats.chi2.cdf(state["chi2"], dof))


for _prefix, _base, _dof in (("model.reg", 31020, "DOF"), ("stat.test", 38010, "dof")):
    fn(f"{_prefix}.residual")((lambda code: lambda o, p: _elementwise(o, p, lambda a, b: a - b, code))(_base))
    fn(f"{_prefix}.pull")((lambda code: lambda o, p, u: _elementwise(o, p, _pull_one, code, u, code + 1))(_base + 10))
    fn(f"{_prefix}.mahalanobis")((lambda code: lambda o, p, c: _mahalanobis(o, p, c, code))(_base + 20))
    fn(f"{_prefix}.updateChi2")((lambda k: lambda pull, state: _chi2_update(pull, state, k))(_dof))
    fn(f"{_prefix}.reducedChi2")((lambda k: lambda state: _reduced(state, k))(_dof))
    fn(f"{_prefix}.chi2Prob")((lambda k, code: lambda state: _chi2_prob(state, k, code))(_dof, _base + 50))


@fn("model.reg.gaussianProcess")
def gaussian_process(x: Any, table: list, kriging: Any, kernel: Any) -> Any:
    """Kriging as PFA's reference engines do it: features and outputs standardised, a constant trend (universal
    Kriging, or `krigingWeight` as the trend), the kernel matrix with a nugget on its diagonal ((sigma/to)^2 when
    the table has `sigma`, else 10 machine epsilons), solved by Cholesky; one fit per output dimension."""
    if not table:
        raise err("table must have at least 1 entry", 31080)
    scalar_x = isinstance(x, (int, float))
    xv = [float(x)] if scalar_x else [float(v) for v in x]
    if not xv:
        raise err("x must have at least 1 feature", 31081)
    xs = [[float(r["x"])] if scalar_x else list(r["x"]) for r in table]
    if any(len(v) != len(xv) for v in xs):
        raise err("table must have the same number of features as x", 31082)
    tos = [r["to"] for r in table]
    vector_out = isinstance(tos[0], list)
    if vector_out:
        if any(len(t) == 0 for t in tos):
            raise err("table outputs must have at least 1 dimension", 31083)
        if len({len(t) for t in tos}) > 1:
            raise err("table outputs must all have the same number of dimensions", 31084)
    if not all(math.isfinite(v) for v in xv):
        raise err("x is not finite", 31085)
    flat_to = [v for t in tos for v in (t if vector_out else [t])]
    if not all(math.isfinite(v) for v in flat_to) or not all(math.isfinite(v) for r in xs for v in r):
        raise err("table value is not finite", 31086)
    if kriging is not None and not math.isfinite(kriging):
        raise err("krigingWeight is not finite", 31087)
    X = np.array(xs, dtype=float)
    dims = len(tos[0]) if vector_out else 1
    out = []
    for d in range(dims):
        y = np.array([t[d] if vector_out else t for t in tos], dtype=float)
        if "sigma" in table[0]:
            sig = [r["sigma"][d] if vector_out else r["sigma"] for r in table]
            nugget: Any = np.array([(s_ / t_) ** 2 if t_ != 0.0 else math.inf for s_, t_ in zip(sig, y)])
        else:
            nugget = 10.0 * np.finfo(float).eps
        value, beta = _kriging(np.array(xv), X, y, kriging, nugget, kernel)
        out.append(value)
        # the reference engines fit the trend of the first output dimension and keep it for the others
        kriging = beta
    return out if vector_out else out[0]


def _kriging(xq: np.ndarray, X: np.ndarray, y: np.ndarray, beta: Any, nugget: Any,
             kernel: Any) -> tuple[float, float]:
    xm, xsd = X.mean(axis=0), X.std(axis=0)
    Xn = (X - xm) / xsd
    ym, ysd = y.mean(), y.std()
    yn = (y - ym) / ysd
    n = len(X)
    R = np.eye(n) * (1.0 + nugget)
    for i in range(n - 1):
        for j in range(i + 1, n):
            R[i, j] = R[j, i] = kernel(Xn[i].tolist(), Xn[j].tolist())
    try:
        C = np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise err("matrix of kernel results is not positive definite", 31088) from None
    Ft = np.linalg.solve(C, np.ones((n, 1)))
    Q, G = np.linalg.qr(Ft)
    Yt = np.linalg.solve(C, yn)
    b = float(np.linalg.solve(G, Q.T @ Yt)[0]) if beta is None else float(beta)
    gamma = np.linalg.solve(C.T, Yt - Ft[:, 0] * b)
    qn = ((xq - xm) / xsd).tolist()
    yq = b + sum(kernel(qn, Xn[i].tolist()) * gamma[i] for i in range(n))
    return float(ym + ysd * yq), b


# -- clustering ---------------------------------------------------------------------------------------------------
def _euclid(a: list, b: list) -> float:
    if len(a) != len(b):
        raise err("dimensions of vectors do not match", 29000)
    return math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b)))


@fn("model.cluster.closest")
def closest(datum: Any, clusters: list, metric: Any = None) -> Any:
    if not clusters:
        raise err("no clusters", 29000)
    m = metric or _euclid
    best, bestd = None, math.inf
    for c in clusters:
        d = m(datum, c["center"])
        if best is None or d < bestd:
            best, bestd = c, d
    return best


@fn("model.cluster.closestN")
def closest_n(n: int, datum: Any, clusters: list, metric: Any = None) -> list:
    if n < 0:
        raise err("n must be nonnegative", 29010)
    m = metric or _euclid
    ds = [m(datum, c["center"]) for c in clusters]
    order = sorted(range(len(clusters)), key=lambda i: (ds[i], i))
    return [clusters[i] for i in order[:n]]


@factory("model.cluster.randomSeeds")
def random_seeds(b: Any) -> Any:
    def run(data: list, k: int, new_cluster: Any) -> list:
        if k <= 0:
            raise err("k must be greater than zero", 29020)
        if len({len(d) for d in data}) > 1:
            raise err("dimensions of vectors do not match", 29022)
        uniq: list[Any] = []
        for d in data:
            if d not in uniq:
                uniq.append(d)
        if len(uniq) < k:
            raise err("not enough unique points", 29021)
        picked = b.st.rng.sample(uniq, k)
        return [new_cluster(i, p) for i, p in enumerate(picked)]
    return run


@fn("model.cluster.kmeansIteration")
def kmeans_iteration(data: list, clusters: list, metric: Any, update: Any) -> list:
    if not data:
        raise err("no data", 29030)
    if not clusters:
        raise err("no clusters", 29031)
    groups: list[list[Any]] = [[] for _ in clusters]
    for d in data:
        ds = [metric(d, c["center"]) for c in clusters]
        groups[min(range(len(ds)), key=lambda i: (ds[i], i))].append(d)
    return [update(g, c) if g else c for g, c in zip(groups, clusters)]


@fn("model.cluster.updateMean")
def update_mean(data: list, cluster: dict, weight: float) -> dict:
    if not data:
        raise err("no data", 29040)
    center = cluster["center"]
    if any(len(d) != len(center) for d in data):
        raise err("dimensions of vectors do not match", 29041)
    n = len(data)
    sums = [sum(d[i] for d in data) for i in range(len(center))]
    new = [(s + weight * c) / (n + weight) for s, c in zip(sums, center)]
    out = dict(cluster)
    out["center"] = new
    return out


# -- neighbours ---------------------------------------------------------------------------------------------------
@fn("model.neighbor.mean")
def neighbor_mean(points: list, weight: Any = None) -> list:
    if not points:
        raise err("not enough points", 30000)
    dim = len(points[0])
    if any(len(p) != dim for p in points):
        raise err("inconsistent dimensionality", 30001)
    ws = [weight(p) for p in points] if weight is not None else [1.0] * len(points)
    tot = sum(ws)
    return [sum(w * p[i] for w, p in zip(ws, points)) / tot for i in range(dim)]


def _euclid_nb(a: list, b: list) -> float:
    if len(a) != len(b):
        raise err("inconsistent dimensionality", 30011)
    return math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b)))


@fn("model.neighbor.nearestK")
def nearest_k(k: int, datum: Any, codebook: list, metric: Any = None) -> list:
    if k < 0:
        raise err("k must be nonnegative", 30010)
    m = metric or _euclid_nb
    ds = [m(datum, c) for c in codebook]
    order = sorted(range(len(codebook)), key=lambda i: (ds[i], i))
    return [codebook[i] for i in order[:k]]


@fn("model.neighbor.ballR")
def ball_r(r: float, datum: Any, codebook: list, metric: Any = None) -> list:
    m = metric or _euclid_nb
    return [c for c in codebook if m(datum, c) < r]


# -- naive Bayes --------------------------------------------------------------------------------------------------
@fn("model.naive.gaussian")
def naive_gaussian(datum: Any, model: Any) -> float:
    if isinstance(datum, dict):
        if set(datum) != set(model):
            raise err("datum and classModel misaligned", 10000)
        pairs = [(datum[k], model[k]) for k in datum]
    else:
        if len(datum) != len(model):
            raise err("datum and classModel misaligned", 10000)
        pairs = list(zip(datum, model))
    ll = 0.0
    for x, m in pairs:
        var = m["variance"]
        if var <= 0:
            raise err("variance less than or equal to zero", 10001)
        ll += -0.5 * math.log(2 * math.pi * var) - 0.5 * (x - m["mean"]) ** 2 / var
    return ll


@fn("model.naive.multinomial")
def naive_multinomial(datum: Any, model: Any) -> float:
    if isinstance(model, dict) and "values" in model and not isinstance(datum, dict) or \
            isinstance(model, dict) and set(model) == {"values"} and isinstance(model["values"], (list, dict)):
        model = model["values"]
    vals = list(model.values()) if isinstance(model, dict) else list(model)
    if not vals or not all(v > 0 for v in vals):
        raise err("classModel must be non-empty and strictly positive", 10011)
    norm = sum(vals)
    if isinstance(datum, dict):
        if set(datum) != set(model):
            raise err("datum and classModel misaligned", 10010)
        return sum(datum[k] * math.log(model[k] / norm) for k in datum)
    if len(datum) != len(model):
        raise err("datum and classModel misaligned", 10010)
    return sum(d * math.log(p / norm) for d, p in zip(datum, model))


@fn("model.naive.bernoulli")
def naive_bernoulli(datum: list, model: Any) -> float:
    if isinstance(model, dict) and set(model) == {"values"} and isinstance(model["values"], dict):
        model = model["values"]
    ll = 0.0
    for v in model.values():
        if v <= 0 or v >= 1:
            raise err("probability in classModel must be strictly between 0 and 1", 10020)
        ll += math.log(1.0 - v)
    for item in datum:
        p = model.get(item)
        if p is not None:
            ll += math.log(p) - math.log(1.0 - p)
    return ll


# -- neural networks, SVM -----------------------------------------------------------------------------------------
@fn("model.neural.simpleLayers")
def simple_layers(datum: list, model: list, activation: Any) -> list:
    if not model:
        raise err("no layers", 11000)
    x = list(datum)
    for i, layer in enumerate(model):
        w, bias = layer["weights"], layer["bias"]
        if len(w) != len(bias) or any(len(row) != len(x) for row in w):
            raise err("weights, bias, or datum misaligned", 11001)
        x = [sum(a * b for a, b in zip(row, x)) + c for row, c in zip(w, bias)]
        if i < len(model) - 1:
            x = [activation(v) for v in x]
    return x


@fn("model.svm.score")
def svm_score(datum: list, model: dict, kernel: Any) -> float:
    pos, neg = model["posClass"], model["negClass"]
    if not pos and not neg:
        raise err("no support vectors", 12000)
    total = model["const"]
    for sv in list(pos) + list(neg):
        if len(sv["supVec"]) != len(datum):
            raise err("support vectors must have same length as datum", 12001)
        total += sv["coeff"] * kernel(sv["supVec"], datum)
    return total


__all__ = ["cmp_to_key"]
