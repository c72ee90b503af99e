"""prob.dist.*: densities, distribution functions and quantiles, computed by scipy.stats (exact to its precision).

Parameter checks and error codes follow the spec: `code` is "invalid parameterization", `code + 1` "invalid input"
(a non-finite x, or p outside [0, 1] for a quantile). Geometric counts failures before the first success;
hypergeometric(x; m, n, k) draws k from m successes and n failures; negative binomial counts failures before
`size` successes.
"""
from __future__ import annotations

import math
from typing import Any

from . import err, fn


def _stats() -> Any:
    from scipy import stats

    return stats


def _finite(*xs: float) -> bool:
    return all(not (math.isnan(float(v)) or math.isinf(float(v))) for v in xs)


def _family(name: str, base: int, check: Any, make: Any, discrete: bool = False) -> None:
    """Registers <name>PDF, <name>CDF, <name>QF with codes base, base+10, base+20."""
    def pdf(x: float, *params: Any) -> float:
        if not _finite(*params) or not check(*params):
            raise err("invalid parameterization", base)
        if not _finite(x):
            raise err("invalid input", base + 1)
        d, args = make(*params)
        if discrete:
            return float(d.pmf(x, *args))
        return float(d.pdf(x, *args))

    def cdf(x: float, *params: Any) -> float:
        if not _finite(*params) or not check(*params):
            raise err("invalid parameterization", base + 10)
        if not _finite(x):
            raise err("invalid input", base + 11)
        d, args = make(*params)
        return float(d.cdf(x, *args))

    def qf(p: float, *params: Any) -> float:
        if not _finite(*params) or not (check(*params, qf=True) if name == "negativeBinomial" else check(*params)):
            raise err("invalid parameterization", base + 20)
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise err("invalid input", base + 21)
        d, args = make(*params)
        q = float(d.ppf(p, *args))
        if discrete and hasattr(d, "support"):
            q = max(q, float(d.support(*args)[0]))  # scipy puts p = 0 one below the support
        return q

    fn(f"prob.dist.{name}PDF")(pdf)
    fn(f"prob.dist.{name}CDF")(cdf)
    fn(f"prob.dist.{name}QF")(qf)


class _Point:
    """A degenerate distribution: all mass at one point."""

    def __init__(self, at: float) -> None:
        self.at = at

    def pdf(self, x: float, *a: Any) -> float:
        return math.inf if x == self.at else 0.0

    def pmf(self, x: float, *a: Any) -> float:
        return 1.0 if x == self.at else 0.0

    def cdf(self, x: float, *a: Any) -> float:
        return 1.0 if x >= self.at else 0.0

    def ppf(self, p: float, *a: Any) -> float:
        return self.at


def _gauss_params(args: tuple) -> tuple[float, float]:
    if len(args) == 1:
        rec = args[0]
        return rec["mean"], math.sqrt(rec["variance"]) if rec["variance"] >= 0 else math.nan
    return args[0], args[1]


def _gauss_ok(args: tuple) -> bool:
    if len(args) == 1:
        return _finite(args[0]["mean"], args[0]["variance"]) and args[0]["variance"] >= 0
    return _finite(*args) and args[1] >= 0


@fn("prob.dist.gaussianLL")
def gaussian_ll(x: float, *args: Any) -> float:
    if not _gauss_ok(args):
        raise err("invalid parameterization", 13000)
    if not _finite(x):
        raise err("invalid input", 13001)
    mu, sigma = _gauss_params(args)
    if sigma == 0:
        return math.inf if x == mu else -math.inf
    return -(x - mu) ** 2 / (2 * sigma ** 2) - math.log(sigma) - 0.5 * math.log(2 * math.pi)


@fn("prob.dist.gaussianCDF")
def gaussian_cdf(x: float, *args: Any) -> float:
    if not _gauss_ok(args):
        raise err("invalid parameterization", 13010)
    if not _finite(x):
        raise err("invalid input", 13011)
    mu, sigma = _gauss_params(args)
    if sigma == 0:
        return 1.0 if x >= mu else 0.0
    return 0.5 * math.erfc(-(x - mu) / (sigma * math.sqrt(2)))


@fn("prob.dist.gaussianQF")
def gaussian_qf(p: float, *args: Any) -> float:
    if not _gauss_ok(args):
        raise err("invalid parameterization", 13020)
    if not 0.0 <= p <= 1.0:
        raise err("invalid input", 13021)
    mu, sigma = _gauss_params(args)
    if p == 0:
        return -math.inf
    if p == 1:
        return math.inf
    if sigma == 0:
        return mu
    return float(_stats().norm.ppf(p, mu, sigma))


def _expon(lam: float) -> Any:
    if lam == 0:
        return _Point(0.0) if False else _ExpZero(), ()
    return _stats().expon, (0.0, 1.0 / lam)


class _ExpZero:
    def pdf(self, x: float) -> float:
        return 0.0

    def cdf(self, x: float) -> float:
        return 0.0

    def ppf(self, p: float) -> float:
        return math.inf if p == 1.0 else 0.0


_family("exponential", 13030, lambda lam: lam >= 0, _expon)
_family("chi2", 13060, lambda dof: dof >= 0,
        lambda dof: (_Point(0.0), ()) if dof == 0 else (_stats().chi2, (dof,)))
_family("gamma", 13120, lambda shape, scale: shape >= 0 and scale >= 0,
        lambda shape, scale: (_Point(0.0), ()) if shape == 0 or scale == 0 else
        (_stats().gamma, (shape, 0.0, scale)))
_family("beta", 13150, lambda a, b: a > 0 and b > 0, lambda a, b: (_stats().beta, (a, b)))
_family("cauchy", 13180, lambda loc, scale: scale > 0, lambda loc, scale: (_stats().cauchy, (loc, scale)))
_family("f", 13210, lambda d1, d2: d1 > 0 and d2 > 0, lambda d1, d2: (_stats().f, (d1, d2)))
_family("lognormal", 13240, lambda m, s: s > 0, lambda m, s: (_stats().lognorm, (s, 0.0, math.exp(m))))
_family("t", 13270, lambda dof: dof > 0, lambda dof: (_stats().t, (dof,)))
_family("uniform", 13330, lambda lo, hi: lo < hi, lambda lo, hi: (_stats().uniform, (lo, hi - lo)))
_family("weibull", 13420, lambda shape, scale: shape > 0 and scale > 0,
        lambda shape, scale: (_stats().weibull_min, (shape, 0.0, scale)))
_family("binomial", 13300, lambda size, prob: size >= 0 and 0 <= prob <= 1,
        lambda size, prob: (_stats().binom, (size, prob)), discrete=True)
_family("geometric", 13360, lambda prob: 0 < prob <= 1,
        lambda prob: (_stats().geom, (prob, -1)), discrete=True)
_family("negativeBinomial", 13450, lambda size, prob, qf=False: (size > 0 if qf else size >= 0) and 0 <= prob <= 1,
        lambda size, prob: (_Point(0.0), ()) if size == 0 or prob == 1 else (_stats().nbinom, (size, prob)),
        discrete=True)


def _poisson(lam: float) -> Any:
    if lam == 0:
        return _Point(0.0), ()
    return _stats().poisson, (lam,)


_family("poisson", 13090, lambda lam: lam >= 0, _poisson, discrete=True)


def _hyper_ok(m: int, n: int, k: int) -> bool:
    return m + n >= k and m >= 0 and n >= 0 and m + n > 0 and k >= 0


_family("hypergeometric", 13390, _hyper_ok, lambda m, n, k: (_stats().hypergeom, (m + n, m, k)), discrete=True)
