"""`SklearnModel.run` never changes the caller's arrays, even for estimators that transform in place."""
from __future__ import annotations

import numpy as np

import portable


def test_an_in_place_scaler_leaves_the_callers_input_alone():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(0).normal(3, 2, size=(50, 3))
    est = make_pipeline(StandardScaler(copy=False), LinearRegression()).fit(X.copy(), X[:, 0])
    given = X.copy()
    out = portable.load(est).run({"X": given})["variable"]
    assert np.array_equal(given, X)
    np.testing.assert_allclose(out[:, 0], est.predict(X.copy()), rtol=1e-12)
