"""metric.*: distances with a similarity function and missing-value reweighting; binary similarities."""
from __future__ import annotations

import math
from typing import Any

from . import err, fn


@fn("metric.simpleEuclidean")
def simple_euclidean(x: list, y: list) -> float:
    if len(x) != len(y):
        raise err("dimensions of vectors do not match", 28000)
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)))


fn("metric.absDiff")(lambda x, y: abs(x - y))


@fn("metric.gaussianSimilarity")
def gaussian_similarity(x: float, y: float, sigma: float) -> float:
    num = -math.log(2) * (x - y) ** 2
    den = sigma ** 2
    if den == 0:
        return math.exp(-math.inf) if num != 0 else math.nan
    return math.exp(num / den)


def _missing(name: str, code: int, inc: Any, fin: Any) -> None:
    @fn(name)
    def run(similarity: Any, x: list, y: list, weights: list | None = None) -> float:
        n = len(x)
        if weights is None:
            weights = [1.0] * n
        if len(y) != n or len(weights) != n:
            raise err("dimensions of vectors do not match", code)
        tally = numer = denom = 0.0
        for xi, yi, w in zip(x, y, weights):
            if xi is not None and yi is not None:
                tally = inc(tally, similarity(xi, yi))
                denom += w
            numer += w
        if denom == 0.0:
            return fin(math.nan)
        return fin(tally * numer / denom)


_missing("metric.euclidean", 28030, lambda t, z: t + z * z, lambda v: math.sqrt(v) if v >= 0 or math.isnan(v)
         else math.nan)
_missing("metric.squaredEuclidean", 28040, lambda t, z: t + z * z, lambda v: v)
_missing("metric.chebyshev", 28050, lambda t, z: max(t, z), lambda v: v)
_missing("metric.taxicab", 28060, lambda t, z: t + z, lambda v: v)


@fn("metric.minkowski")
def minkowski(similarity: Any, x: list, y: list, p: float, weights: list | None = None) -> float:
    n = len(x)
    if weights is None:
        weights = [1.0] * n
    if len(y) != n or len(weights) != n:
        raise err("dimensions of vectors do not match", 28070)
    if math.isnan(p) or p <= 0:
        raise err("Minkowski parameter p must be positive", 28071)
    tally = numer = denom = 0.0
    for xi, yi, w in zip(x, y, weights):
        if xi is not None and yi is not None:
            z = similarity(xi, yi)
            tally = max(tally, z) if math.isinf(p) else tally + math.pow(z, p)
            denom += w
        numer += w
    if denom == 0.0:
        return math.nan
    if math.isinf(p):
        return tally * numer / denom
    return math.pow(tally * numer / denom, 1.0 / p)


def _pairs(x: list, y: list, code: int) -> tuple[int, int, int, int]:
    if len(x) != len(y):
        raise err("dimensions of vectors do not match", code)
    a00 = a01 = a10 = a11 = 0
    for xi, yi in zip(x, y):
        if xi and yi:
            a11 += 1
        elif xi:
            a10 += 1
        elif yi:
            a01 += 1
        else:
            a00 += 1
    return a00, a01, a10, a11


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


@fn("metric.simpleMatching")
def simple_matching(x: list, y: list) -> float:
    a00, a01, a10, a11 = _pairs(x, y, 28080)
    return _div(a11 + a00, a11 + a10 + a01 + a00)


@fn("metric.jaccard")
def jaccard(x: list, y: list) -> float:
    a00, a01, a10, a11 = _pairs(x, y, 28090)
    return _div(a11, a11 + a10 + a01)


@fn("metric.tanimoto")
def tanimoto(x: list, y: list) -> float:
    a00, a01, a10, a11 = _pairs(x, y, 28100)
    return _div(a11 + a00, a11 + 2 * (a10 + a01) + a00)


@fn("metric.binarySimilarity")
def binary_similarity(x: list, y: list, c00: float, c01: float, c10: float, c11: float, d00: float, d01: float,
                      d10: float, d11: float) -> float:
    a00, a01, a10, a11 = _pairs(x, y, 28110)
    return _div(c11 * a11 + c10 * a10 + c01 * a01 + c00 * a00, d11 * a11 + d10 * a10 + d01 * a01 + d00 * a00)
