"""la.*: linear algebra on dense arrays (lists of lists) or sparse maps of maps (missing entries are zero)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import err, fn


def _is_mat(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(r, list) for r in x) and bool(x)


def _ragged(x: list) -> bool:
    return len({len(r) for r in x}) > 1


def _keys(x: dict) -> tuple[list[str], list[str]]:
    rows = sorted(x)
    cols = sorted({c for r in x.values() for c in r})
    return rows, cols


def _m2a(x: dict, rows: list[str], cols: list[str]) -> np.ndarray:
    return np.array([[x.get(r, {}).get(c, 0.0) for c in cols] for r in rows], dtype=float).reshape(len(rows),
                                                                                                     len(cols))


def _a2m(a: np.ndarray, rows: list[str], cols: list[str]) -> dict:
    return {r: {c: float(a[i, j]) for j, c in enumerate(cols)} for i, r in enumerate(rows)}


@fn("la.map")
def la_map(x: Any, f: Any) -> Any:
    if isinstance(x, dict):
        return {k: {c: f(v) for c, v in row.items()} for k, row in x.items()}
    return [[f(v) for v in row] for row in x]


@fn("la.scale")
def scale(x: Any, alpha: float) -> Any:
    if isinstance(x, dict):
        return {k: ({c: v * alpha for c, v in r.items()} if isinstance(r, dict) else r * alpha)
                for k, r in x.items()}
    return [[v * alpha for v in r] if isinstance(r, list) else r * alpha for r in x]


def _zip(x: Any, y: Any, f: Any, code: int) -> Any:
    if isinstance(x, dict):
        keys = sorted(set(x) | set(y))
        if any(isinstance(v, dict) for v in list(x.values()) + list(y.values())):
            cols = sorted({c for m in (x, y) for r in m.values() for c in r})
            return {k: {c: f(x.get(k, {}).get(c, 0.0), y.get(k, {}).get(c, 0.0)) for c in cols} for k in keys}
        return {k: f(x.get(k, 0.0), y.get(k, 0.0)) for k in keys}
    if len(x) != len(y):
        raise err("misaligned matrices", code)
    out2 = []
    for a, b in zip(x, y):
        if isinstance(a, list):
            if len(a) != len(b):
                raise err("misaligned matrices", code)
            out2.append([f(u, v) for u, v in zip(a, b)])
        else:
            out2.append(f(a, b))
    return out2


fn("la.zipmap")(lambda x, y, f: _zip(x, y, f, 24020))
fn("la.add")(lambda x, y: _zip(x, y, lambda a, b: a + b, 24030))
fn("la.sub")(lambda x, y: _zip(x, y, lambda a, b: a - b, 24040))


def _finite(vals: Any) -> bool:
    return all(not (math.isnan(v) or math.isinf(v)) for v in vals)


@fn("la.dot")
def dot(x: Any, y: Any) -> Any:
    if isinstance(x, dict):
        rows, inner_x = _keys(x)
        if not rows or not inner_x:
            raise err("too few rows/cols", 24051)
        if y and all(isinstance(v, dict) for v in y.values()):
            inner_y, cols = _keys(y)
            inner = sorted(set(inner_x) | set(inner_y))
            if not cols:
                raise err("too few rows/cols", 24051)
            xm, ym = _m2a(x, rows, inner), _m2a(y, inner, cols)
            if not _finite(xm.ravel()) or not _finite(ym.ravel()):
                raise err("contains non-finite value", 24052)
            return _a2m(xm @ ym, rows, cols)
        inner = sorted(set(inner_x) | set(y))
        if not y:
            raise err("too few rows/cols", 24051)
        xm = _m2a(x, rows, inner)
        yv = np.array([y.get(k, 0.0) for k in inner], dtype=float)
        if not _finite(xm.ravel()) or not _finite(yv):
            raise err("contains non-finite value", 24052)
        out = xm @ yv
        return {r: float(out[i]) for i, r in enumerate(rows)}
    if not x or not x[0] or not y or (isinstance(y[0], list) and not y[0]):
        raise err("too few rows/cols", 24051)
    if _ragged(x) or (isinstance(y[0], list) and _ragged(y)):
        raise err("misaligned matrices", 24050)
    xm = np.array(x, dtype=float)
    ym = np.array(y, dtype=float)
    if not _finite(xm.ravel()) or not _finite(ym.ravel()):
        raise err("contains non-finite value", 24052)
    if xm.shape[1] != ym.shape[0]:
        raise err("misaligned matrices", 24050)
    out = xm @ ym
    return out.tolist()


def _check_arr(x: list, code: int, square: bool = False, finite: bool = False) -> np.ndarray:
    if not x or not x[0]:
        raise err("too few rows/cols", code)
    if _ragged(x):
        raise err("ragged columns", code + 1)
    if square and len(x) != len(x[0]):
        raise err("non-square matrix", code + 2)
    a = np.array(x, dtype=float)
    if finite and not _finite(a.ravel()):
        raise err("non-finite matrix", code + 3)
    return a


@fn("la.transpose")
def transpose(x: Any) -> Any:
    if isinstance(x, dict):
        rows, cols = _keys(x)
        if not rows or not cols:
            raise err("too few rows/cols", 24060)
        if any(set(r) != set(cols) for r in x.values()):
            raise err("ragged columns", 24061)
        return {c: {r: x[r][c] for r in rows} for c in cols}
    if not x or not x[0]:
        raise err("too few rows/cols", 24060)
    if _ragged(x):
        raise err("ragged columns", 24061)
    return [list(col) for col in zip(*x)]


@fn("la.inverse")
def inverse(x: Any) -> Any:
    if isinstance(x, dict):
        rows, cols = _keys(x)
        if not rows or not cols:
            raise err("too few rows/cols", 24070)
        return _a2m(np.linalg.pinv(_m2a(x, rows, cols)), cols, rows)
    a = _check_arr(x, 24070)
    if a.shape[0] == a.shape[1]:
        try:
            return np.linalg.inv(a).tolist()
        except np.linalg.LinAlgError:
            return np.full(a.shape, np.nan).tolist()
    return np.linalg.pinv(a).tolist()


@fn("la.trace")
def trace(x: Any) -> float:
    if isinstance(x, dict):
        return float(sum(x[k][k] for k in x if k in x[k]))
    if not x:
        return 0.0
    if _ragged(x):
        raise err("ragged columns", 24080)
    return float(sum(x[i][i] for i in range(min(len(x), len(x[0])))))


@fn("la.det")
def det(x: Any) -> float:
    if isinstance(x, dict):
        rows, cols = _keys(x)
        keys = sorted(set(rows) | set(cols))
        if not rows or not cols:
            raise err("too few rows/cols", 24090)
        return float(np.linalg.det(_m2a(x, keys, keys)))
    a = _check_arr(x, 24090, square=True)
    if not _finite(a.ravel()):
        return math.nan
    return float(np.linalg.det(a))


def _same(a: float, b: float, tol: float) -> bool:
    if math.isinf(a) and math.isinf(b):
        return (a > 0) == (b > 0)
    if math.isnan(a) and math.isnan(b):
        return True
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) < tol


@fn("la.symmetric")
def symmetric(x: Any, tol: float) -> bool:
    if isinstance(x, dict):
        keys = sorted(set(x) | {c for r in x.values() for c in r})
        if not keys or all(len(r) == 0 for r in x.values()):
            raise err("too few rows/cols", 24100)
        return all(_same(x.get(i, {}).get(j, 0.0), x.get(j, {}).get(i, 0.0), tol) for i in keys for j in keys)
    a = _check_arr(x, 24100, square=True)
    n = a.shape[0]
    return all(_same(a[i, j], a[j, i], tol) for i in range(n) for j in range(n))


def _eigen(a: np.ndarray) -> np.ndarray:
    symm = (a + a.T) * 0.5
    evals, evects = np.linalg.eigh(symm)
    n = a.shape[0]
    vecs = [evects[:, i] * (-1.0 if evects[0, i] < 0.0 else 1.0) for i in range(n)]
    scale = [1.0 / math.sqrt(abs(e)) if e != 0 else math.inf for e in evals]
    order = np.argsort(scale, kind="stable")
    return np.array([[vecs[order[i]][j] * scale[order[i]] for j in range(n)] for i in range(n)])


@fn("la.eigenBasis")
def eigen_basis(x: Any) -> Any:
    if isinstance(x, dict):
        keys = sorted(set(x) | {c for r in x.values() for c in r})
        if not keys or all(len(r) == 0 for r in x.values()):
            raise err("too few rows/cols", 24110)
        m = _m2a(x, keys, keys)
        if not _finite(m.ravel()):
            raise err("non-finite matrix", 24113)
        out = _eigen(m)
        return {str(i): {k: float(out[i, j]) for j, k in enumerate(keys)} for i in range(len(keys))}
    return _eigen(_check_arr(x, 24110, square=True, finite=True)).tolist()


@fn("la.truncate")
def truncate(x: Any, keep: Any) -> Any:
    if isinstance(x, dict):
        rows, cols = _keys(x)
        if not rows or not cols:
            raise err("too few rows/cols", 24120)
        return {k: v for k, v in x.items() if k in set(keep)}
    if not x or not x[0]:
        raise err("too few rows/cols", 24120)
    if _ragged(x):
        raise err("ragged columns", 24121)
    return x[:max(keep, 0)]
