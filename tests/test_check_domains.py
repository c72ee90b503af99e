"""The domains of elementwise functions (`np.log1p`, `np.sqrt`, ...) inside a pipeline are input hints: the checker
draws inside them instead of generating rows scikit-learn rejects (NaN out of a log) and bisecting them away."""
from __future__ import annotations

import numpy as np
import pytest

import portable
from portable.equivalence.inputs import build_plan, generate


def _pipeline(func):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(50, 20, size=(200, 3))) + 1
    y = np.log1p(X[:, 0]) + np.sqrt(X[:, 1]) - X[:, 2] / 100
    prep = ColumnTransformer([("f", FunctionTransformer(func), [0, 1]), ("rest", StandardScaler(), [2])])
    return make_pipeline(prep, LinearRegression()).fit(X, y), X


@pytest.mark.parametrize("func", [np.log1p, np.sqrt, np.log])
def test_generated_rows_stay_in_the_domain(func):
    est, _ = _pipeline(func)
    original = portable.load(est)
    art = portable.convert(est, to="onnx", dtype="float64", check=False)
    rows = generate(build_plan(original, art), 1000, np.random.default_rng(0)).num
    with np.errstate(all="ignore"):  # numpy itself: no NaN or infinity out of the function on any generated row
        assert np.isfinite(func(rows[:, :2])).all()
    assert (rows[:, 2] < 0).any()  # the unrestricted column still takes negative values
    report = portable.check(original, art, samples=1000)
    assert report.equivalent and report.rejected_by_original == 0 and report.rows >= 1000
    assert any("domain" in s for s in report.learned)


def test_a_changed_coefficient_behind_the_log_is_caught():
    est, X = _pipeline(np.log1p)
    mutated_est, _ = _pipeline(np.log1p)
    mutated_est[-1].coef_ = est[-1].coef_ * np.array([1 + 1e-3, 1, 1])
    # the mutation is real: scikit-learn's own predictions on the training rows differ beyond float64 rounding
    assert np.abs(est.predict(X) - mutated_est.predict(X)).max() > 1e-6
    mutated = portable.convert(mutated_est, to="onnx", dtype="float64", check=False)
    report = portable.check(portable.load(est), mutated, samples=1000)
    assert not report.equivalent and report.rejected_by_original == 0


def test_a_scale_before_the_function_moves_the_domain():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

    rng = np.random.default_rng(1)
    X = np.abs(rng.normal(5, 2, size=(100, 2))) + 1
    # scaled to [0, 1] on the training rows, then sqrt: defined where x >= the training minimum
    est = make_pipeline(MinMaxScaler(), FunctionTransformer(np.sqrt), LinearRegression()).fit(X, X[:, 0])
    original = portable.load(est)
    art = portable.convert(est, to="onnx", dtype="float64", check=False)
    rows = generate(build_plan(original, art), 1000, np.random.default_rng(0)).num
    scaled = est[0].transform(rows)
    assert (scaled >= 0).all() and (scaled < 0.01).any()
    report = portable.check(original, art, samples=1000)
    assert report.equivalent and report.rejected_by_original == 0
