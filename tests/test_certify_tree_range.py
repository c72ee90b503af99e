"""The range of a tree ensemble's output over the domain, bounded by branch and bound (issue 19).

house_xgboost in float64 was not certifiable: XGBoost sums its 30 trees in float32 (a rounding of up to 0.51 on
house prices), and the check's tolerance (1e-4 + 1e-5 |value|, atol scaled by the outputs' magnitude only as far as
the certificate proves it) was taken at output 0, because the range the certificate proved was each tree's smallest
leaf plus each tree's largest, [-3165, 251322]. Bounding the range over boxes of the domain (a box's bound: the base
plus, per tree, the extreme leaf among those whose boxes meet it) proves the prices stay above ~15,000, where the
tolerance is 1.69: certified. Compared with XGBoost and onnxruntime on dense rows; a hypothesis test checks the
refined range against the real library's predictions.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

from .test_certify_unknown_categories import _dense as dense


def _feeds(art, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {s.name: (frame[[s.name]].astype(str).to_numpy() if s.is_string else
                     frame[[s.name]].to_numpy().astype(s.dtype)) for s in art.signature.inputs}


def _dense(dom, like: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`test_certify_unknown_categories._dense` without the unseen category, in the frame's numeric dtypes."""
    rows = dense(dom, like, n, seed, unseen=False)
    return rows.astype({k: like[k].dtype for k in like.columns if like[k].dtype.kind in "fi"})


def test_house_xgboost_float64_certified_and_bound_holds() -> None:
    pytest.importorskip("xgboost")
    from .pipelines import build

    est, df, _ = build("house_xgboost")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float64", check=False, data=df)
    res = portable.certify(est, art, data=df)
    cert = res.certificates["variable"]
    assert cert.status == "certified", cert.reason
    lo, hi = cert.details["range_refined"]
    rows = _dense(res.domain, df, 20_000, 0)
    want = np.asarray(est.predict(rows), np.float64)
    got = np.asarray(art.run(_feeds(art, rows))["variable"], np.float64).reshape(-1)
    assert lo <= want.min() and want.max() <= hi
    assert np.abs(got - want).max() <= cert.bound


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shift=st.floats(50, 5_000), depth=st.integers(2, 5),
       n=st.integers(5, 60))
def test_refined_range_contains_every_prediction(seed: int, shift: float, depth: int, n: int) -> None:
    """Regressors whose outputs stay far from 0: when the certificate bounds the range by branch and bound, every
    prediction of the real library on dense rows of the domain lies inside it."""
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (300, 4))
    y = shift + 40 * X[:, 0] + 25 * np.sin(3 * X[:, 1]) + rng.normal(0, 5, 300)
    est = GradientBoostingRegressor(n_estimators=n, max_depth=depth, random_state=seed).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    from portable.certification import trees

    proof_ranges = []
    original = trees.TreeProof._refined_range

    def spy(self, cols, base, **kw):
        got = original(self, cols, base, **kw)
        proof_ranges.append(got)
        return got

    trees.TreeProof._refined_range = spy
    try:
        res = portable.certify(est, art, data=X)
        # the branch and bound itself, on this ensemble, whether the certificate needed it or not
        ea = portable.load(est).input_hints().ensemble
        proof = trees.TreeProof(ea, art.input_hints().ensemble, res.domain, _ctx(est, art, res))
        proof.run()
        lo, hi = proof._refined_range(np.array([0]), np.asarray(ea.base, np.float64))
    finally:
        trees.TreeProof._refined_range = original
    box_lo, box_hi = res.domain.box("X", 4)
    x = rng.uniform(box_lo, box_hi, (20_000, 4)).astype(np.float32).astype(np.float64)
    x[:2_000] = np.where(rng.random((2_000, 4)) < 0.5, box_lo, box_hi)
    pred = est.predict(x.astype(np.float32))
    assert lo[0] <= pred.min() + 1e-9 * abs(pred.min()) and pred.max() <= hi[0] + 1e-9 * abs(pred.max())
    # and it is no looser than the sum of each tree's extremes
    leaves = [t[0].tree_.value[t[0].tree_.children_left < 0, 0, 0] * est.learning_rate for t in est.estimators_]
    assert lo[0] >= float(ea.base[0]) + sum(v.min() for v in leaves) - 1e-6
    for got in proof_ranges:
        if got is not None:
            assert got[0][0] <= pred.min() + 1e-9 * abs(pred.min())


def _ctx(est, art, res):
    from portable.certification.core import Context
    from portable.equivalence import load_model

    a, b = load_model(est), load_model(art)
    return Context(outputs={"variable": "value"}, atol={"variable": 1e-4}, rtol={"variable": 1e-5},
                   inputs={"X": "float32"}, hints_original=a.input_hints(), hints_converted=b.input_hints())


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
