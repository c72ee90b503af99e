"""Gaussian mixtures: labels and posteriors as scikit-learn gives them, near the data and far from it."""
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

import portable

X, _ = make_classification(900, 8, n_informative=5, n_classes=3, random_state=5)
TRAIN = X[:600]
# held-out rows, rows far from every mean (|log-density| ~1e4-1e6), and the origin's neighbourhood
TEST = np.r_[X[600:], np.random.default_rng(0).normal(0, 6, (300, 8)), np.eye(8) * -1.0]


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mixture_matches_sklearn(cls, cov, dtype):
    m = cls(n_components=3, covariance_type=cov, random_state=0).fit(TRAIN)
    art = portable.convert(m, "onnx", dtype=dtype, check=False)
    out = art.run({"X": TEST.astype(dtype)})
    want = m.predict_proba(TEST)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"], want, atol=2e-6 if dtype == "float32" else 1e-7)
    # the label is the argmax of the posteriors: equal where scikit-learn's top two are not within rounding
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    assert (out["label"][clear] == m.predict(TEST)[clear]).all()
    assert portable.check(m, art, samples=1000, data=TRAIN).equivalent
    assert portable.check(m, art, samples=1000, seed=3).equivalent
