"""scikit-learn's FrozenEstimator (`sklearn.frozen`) wrapping a fitted model, alone or as a pipeline step, loads
from pickle and joblib files, converts and checks like the model it wraps (issue 12 leftovers: it loaded, but
`portable convert` stopped at skl2onnx's "Unable to find a shape calculator for FrozenEstimator").

Oracles: scikit-learn's own predictions of the wrapped model, against the written ONNX file run by onnxruntime.
"""
from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from click.testing import CliRunner

from portable.cli import cli

ort = pytest.importorskip("onnxruntime")
frozen = pytest.importorskip("sklearn.frozen")


def _models() -> dict:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    yr = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    lr = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    rf = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, yr)
    step = make_pipeline(frozen.FrozenEstimator(StandardScaler().fit(X)), LogisticRegression().fit(X, y))
    return {"frozen_classifier": (frozen.FrozenEstimator(lr), lr, X, "pickle"),
            "frozen_regressor": (frozen.FrozenEstimator(rf), rf, X, "joblib"),
            "frozen_step": (step, step, X, "pickle")}


@pytest.mark.parametrize("name", ["frozen_classifier", "frozen_regressor", "frozen_step"])
def test_frozen_estimator_converts_and_checks_like_the_model_it_wraps(name, tmp_path):
    model, inner, X, how = _models()[name]
    src = tmp_path / f"{name}.{'joblib' if how == 'joblib' else 'pkl'}"
    if how == "joblib":
        joblib.dump(model, src)
    else:
        src.write_bytes(pickle.dumps(model, protocol=5))
    out = tmp_path / f"{name}.onnx"
    result = CliRunner().invoke(cli, ["convert", str(src), "--to", "onnx", "-o", str(out), "--samples", "200"])
    assert result.exit_code == 0, result.output
    assert "EQUIVALENT" in result.output, result.output
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: X.astype(np.float32)}
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    if hasattr(inner, "predict_proba"):
        np.testing.assert_array_equal(got["label"], inner.predict(X))
        np.testing.assert_allclose(got["probabilities"], inner.predict_proba(X), atol=1e-4)
    else:
        np.testing.assert_allclose(np.ravel(got["variable"]), inner.predict(X), rtol=1e-4, atol=1e-4)
    result = CliRunner().invoke(cli, ["check", str(src), str(out), "--samples", "200"])
    assert result.exit_code == 0 and "EQUIVALENT" in result.output, result.output
