"""float64 NNEF artifacts keep their float64 constants: the NNEF parser reads literals as float32."""
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

import portable

X, y = make_classification(300, 6, random_state=0)
XR, YR = make_regression(300, 5, noise=2.0, random_state=0)


@pytest.mark.parametrize("make,data,target,out", [
    (lambda: SVC(), X, y, "scores"),  # gamma = 1 / (n_features * var): a literal of the RBF kernel
    (lambda: make_pipeline(StandardScaler(), SVR(gamma=0.0731)), XR, YR, "variable"),
], ids=["svc", "scaled_svr"])
def test_float64_nnef_matches_sklearn(make, data, target, out, tmp_path):
    model = make().fit(data, target)
    nnef = portable.convert(portable.convert(model, "onnx", dtype="float64", check=False), "nnef")
    assert nnef.report.equivalent, nnef.report.summary_line()
    want = model.decision_function(data) if out == "scores" else model.predict(data)
    got = nnef.run({"X": data})[out].reshape(-1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    nnef.save(tmp_path / "m.nnef")
    again = portable.load(tmp_path / "m.nnef")
    np.testing.assert_allclose(again.run({"X": data})[out].reshape(-1), want, rtol=1e-12, atol=1e-12)
