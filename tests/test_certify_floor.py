"""The figures a numeric output's `not certifiable` reason gives (issue 19, h23e): the smallest |output| the bound
would need proved over the domain (`floor_needed`) and the smallest |output| found on rows of the domain
(`smallest_output_found`, at `row_with_smallest_output`). Checked against scikit-learn on that row (it is a row
of the domain, and scikit-learn gives that |output| there) and against the checker's own tolerance arithmetic
(`Context.allowed`): a bound is within the tolerance of rows whose |output| is at least `floor_needed`, and not
below it. The uncertified pairs are real conversions whose any-order float32 rounding bound exceeds atol near
output 0 (bench_certify's voting_regressor and mlp_regressor)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable
from portable.certification.core import CERTIFIED, Context
from portable.certification.driver import floor_needed


def _voting():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression, Ridge

    X, y = load_diabetes(return_X_y=True)
    return VotingRegressor([("ridge", Ridge()), ("ols", LinearRegression())]).fit(X, y), X


def _mlp():
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,), max_iter=300,
                                                           random_state=0)).fit(X, y)
    return est, X


@pytest.mark.parametrize("build", [_voting, _mlp], ids=["voting_regressor", "mlp_regressor"])
def test_smallest_output_is_scikit_learns_on_a_domain_row(build):
    est, X = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
        res = portable.certify(est, art, data=X)
    c = res.certificates["variable"]
    if c.status == CERTIFIED:
        pytest.skip("certified: no figures to check")
    d = c.details
    assert d["floor_needed"] > 0
    row = np.asarray(next(iter(d["row_with_smallest_output"].values())), dtype=np.float64)
    lo = np.array([col.lo for col in res.domain.columns.values()])
    hi = np.array([col.hi for col in res.domain.columns.values()])
    assert np.all(row >= lo) and np.all(row <= hi), "the row is not in the domain"
    got = abs(float(est.predict(row.astype(np.float32).astype(np.float64))[0]))
    assert got == pytest.approx(d["smallest_output_found"], rel=1e-6, abs=1e-9)
    if d["smallest_output_found"] < d["floor_needed"]:
        assert "no such floor exists" in c.reason
        # the row's own check allows less than the bound: this bound cannot certify the output there
        assert d["tolerance_at_that_row"] < c.bound


@pytest.mark.parametrize("bound", [5e-5, 1e-4, 1.05e-4, 3e-4, 2.14e-3, 0.011, 0.5])
@pytest.mark.parametrize("scale", [1.0, 3.0, 227.0])
def test_floor_needed_is_the_smallest_magnitude_the_tolerance_covers(bound, scale):
    atol, rtol = 1e-4, 1e-5
    ctx = Context(outputs={"v": "value"}, atol={"v": atol}, rtol={"v": rtol}, scale={"v": scale})
    m = floor_needed(bound, atol, rtol, scale)
    if m == 0.0:
        assert ctx.allowed("v", 0.0, 0.0) >= bound
        return
    assert ctx.allowed("v", m, m) >= bound * (1 - 1e-9)
    below = m * (1 - 1e-6)
    assert ctx.allowed("v", below, below) < bound
