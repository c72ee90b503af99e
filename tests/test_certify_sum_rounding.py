"""The tree method's bound on a float32 sum's rounding (`trees._sum_rounding`) against float32 sums numpy computes
in random orders (sequences and pairwise trees) of random leaves, one per tree, and a base: never below the
error (soundness), for values added as stored (u times the binade of each result) and as a relative bound."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portable.certification.trees import U, _extent, _sum_rounding


def _float32_sum(terms: np.ndarray, order: np.ndarray, pairwise: bool) -> float:
    v = [np.float32(terms[i]) for i in order]
    if not pairwise:
        acc = v[0]
        for t in v[1:]:
            acc = np.float32(acc + t)
        return float(acc)
    while len(v) > 1:
        v = [np.float32(v[i] + v[i + 1]) if i + 1 < len(v) else v[i] for i in range(0, len(v), 2)]
    return float(v[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), trees=st.integers(1, 120), leaves=st.integers(1, 8),
       scale=st.sampled_from([1e-3, 1.0, 150.0, 1e4]), skew=st.booleans())
def test_sum_rounding_bounds_float32_sums_in_any_order(seed, trees, leaves, scale, skew) -> None:
    rng = np.random.default_rng(seed)
    vals = rng.normal(size=(trees, leaves)) * scale
    if skew:  # one tree holds the base (LightGBM's first tree), the others small increments
        vals[0] += 100 * scale
    vals = vals.astype(np.float32).astype(np.float64)  # the leaves as a float32 artifact stores them
    base = float(np.float32(rng.normal() * scale))
    pos, neg = _extent(np.array([base]), np.zeros(1))
    pos = pos + np.maximum(vals.max(axis=1), 0).sum()
    neg = neg + np.maximum(-vals.min(axis=1), 0).sum()
    mags = [np.array([abs(base)])] + [np.array([np.abs(v).max()]) for v in vals]
    bounds = [float(_sum_rounding(trees, -2, U["float32"], pos, neg, mags, as_stored=s)[0]) for s in (True, False)]
    for _ in range(20):
        pick = vals[np.arange(trees), rng.integers(0, leaves, trees)]
        terms = np.r_[base, pick]
        exact = math.fsum(terms.tolist())
        got = _float32_sum(terms, rng.permutation(len(terms)), bool(rng.integers(0, 2)))
        assert abs(got - exact) <= min(bounds), (got - exact, bounds)
