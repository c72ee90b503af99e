"""GradientBoosting with an initial estimator: converted from a constant start only, refused otherwise."""
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

import portable
from portable.errors import UnsupportedModelError

X, y = make_classification(400, 6, n_informative=4, n_classes=3, random_state=0)


@pytest.mark.parametrize("model", [
    GradientBoostingClassifier(n_estimators=8, init=LogisticRegression(max_iter=500), random_state=0),
    GradientBoostingClassifier(n_estimators=8, init=LogisticRegression(max_iter=500), subsample=0.7, random_state=0),
    GradientBoostingRegressor(n_estimators=8, init=Ridge(), random_state=0),
], ids=["clf", "clf_subsample", "reg"])
def test_row_dependent_init_is_refused(model):
    model.fit(X, y)
    with pytest.raises(UnsupportedModelError, match="init="):
        portable.convert(model, "onnx", check=False)


@pytest.mark.parametrize("model", [
    GradientBoostingClassifier(n_estimators=8, init="zero", random_state=0),
    GradientBoostingClassifier(n_estimators=8, init=DummyClassifier(strategy="prior"), random_state=0),
    GradientBoostingRegressor(n_estimators=8, init=DummyRegressor(strategy="median"), random_state=0),
], ids=["zero", "dummy_prior", "dummy_median"])
def test_constant_init_matches_sklearn(model):
    model.fit(X, y)
    art = portable.convert(model, "onnx", dtype="float64", check=False)
    out = art.run({"X": X})
    if hasattr(model, "predict_proba"):
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), rtol=1e-10, atol=1e-12)
        assert (out["label"] == model.predict(X)).all()
    else:
        np.testing.assert_allclose(out["variable"][:, 0], model.predict(X), rtol=1e-10, atol=1e-10)
