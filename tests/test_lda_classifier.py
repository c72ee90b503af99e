"""LinearDiscriminantAnalysis as a classifier: probabilities as scikit-learn's (expit / softmax of its decision)."""
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

import portable


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("solver", ["svd", "lsqr", "eigen"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lda_matches_sklearn_and_is_certified(classes, solver, dtype):
    X, y = make_classification(600, 6, n_informative=4, n_classes=classes, random_state=1)
    model = LinearDiscriminantAnalysis(solver=solver, shrinkage="auto" if solver != "svd" else None)
    model.fit(X[:400], y[:400])
    art = portable.convert(model, "onnx", dtype=dtype, data=X[:400])
    assert art.report.equivalent
    rows = np.random.default_rng(0).uniform(X.min(0), X.max(0), (20000, 6))  # dense, inside the data's box
    out = art.run({"X": rows.astype(dtype)})
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(rows),
                               atol=1e-6 if dtype == "float32" else 1e-13)
    margin = np.abs(model.decision_function(rows)).reshape(len(rows), -1)
    clear = margin.min(axis=1) > 1e-4 if classes == 2 else np.ones(len(rows), bool)
    assert (out["label"][clear] == model.predict(rows)[clear]).all()
    cert = portable.certify(model, art, data=X[:400])
    assert cert.certificates["probabilities"].status == "certified"
    assert cert.certificates["probabilities"].bound >= np.abs(out["probabilities"] - model.predict_proba(rows)).max()
