"""Logarithm, powers of two and the normal quantile that give the same bits on every machine.

numpy's `log`, `log1p`, `exp`, `sin` and `cos` are not correctly rounded, and which implementation runs depends on
the CPU: on a machine with AVX-512 numpy calls SVML for float32 `log1p` and float64 `log`/`exp`, with AVX2 its own
float32 `sin`/`cos` (fused multiply-adds) and the C library's `log1pf`, on an older x86 or another architecture the
C library's. Their last bits differ, so rows a check generated from them differed between an AMD EPYC (AVX2) and an
Intel Xeon (AVX-512) for the same pair and seed. What follows uses only addition, subtraction, multiplication,
division, `sqrt`, `floor`, `frexp` and `ldexp`, which IEEE 754 rounds exactly and numpy computes the same way
everywhere (its ufuncs never contract a multiply and an add into a fused multiply-add). The results are accurate
to about 1e-12 relative: they are for generating inputs, where only their being the same everywhere matters.
"""
from __future__ import annotations

import numpy as np

_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476


def log(x: np.ndarray) -> np.ndarray:
    """The natural logarithm of positive finite float64 values: x = m 2**e with m in [sqrt(1/2), sqrt(2)), then
    log m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172, by its series to s**21."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)
    e = e - low
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = np.full_like(s, 1.0 / 21)
    for k in range(19, 0, -2):
        acc *= s2
        acc += 1.0 / k
    acc *= s
    acc *= 2.0
    return e * _LN2 + acc


def exp2(x: np.ndarray) -> np.ndarray:
    """2**x for finite float64 x: 2**floor(x) exactly (`ldexp`) times 2**f, f in [0, 1), by the series of
    exp(f ln 2) to its 16th term (error below 1e-15)."""
    x = np.asarray(x, dtype=np.float64)
    k = np.floor(x)
    t = (x - k) * _LN2
    acc = np.full_like(t, 1.0)
    for n in range(16, 0, -1):
        acc *= t * (1.0 / n)
        acc += 1.0
    return np.ldexp(acc, k.astype(np.int64))


# Acklam's rational approximation of the standard normal quantile (relative error below 1.2e-9)
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)


def _poly(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    acc = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        acc *= x
        acc += c
    return acc


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """The standard normal distribution's quantile at probabilities p in (0, 1) (float64), by Acklam's
    rational approximation: a rational function of p - 1/2 in the middle, of sqrt(-2 log p) in the tails."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty_like(p)
    low, high = p < 0.02425, p > 1 - 0.02425
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = _poly(_A, r) * q / (_poly(_B, r) * r + 1.0)
    for sel, tail, sign in ((low, p[low], 1.0), (high, 1.0 - p[high], -1.0)):
        if tail.size:
            t = np.sqrt(-2.0 * log(tail))
            out[sel] = sign * _poly(_C, t) / (_poly(_D, t) * t + 1.0)
    return out
