"""Normalizer (x / ||x||) in certificates (issue 19, an unseen model): discontinuous where its input is 0.

After a centring scaler, rows of the domain map to (nearly) 0, where float32 and float64 give the normaliser's
input different directions: the conversion, correct operation by operation, differs there by far more than the
tolerance. The certificate must say so with a counterexample both real libraries reproduce (scikit-learn and
onnxruntime, run here on it), not certify nor stay silent; a normaliser whose input stays away from 0 is not
certifiable (no bound implemented), and never refuted without a reproduced difference."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable
from portable.certification.core import NOT_CERTIFIABLE, REFUTED


def _fit(norm: str, centred: bool):
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, Normalizer, RobustScaler, StandardScaler

    X, y = make_regression(600, 8, noise=3, random_state=5)
    if not centred:
        X = np.abs(X) + 1.0  # positive rows: ||x|| >= 1 over the box
    steps = [StandardScaler(with_mean=False), MaxAbsScaler()] + ([RobustScaler(quantile_range=(10, 90))]
                                                                  if centred else [])
    return make_pipeline(*steps, Normalizer(norm=norm), Ridge()).fit(X, y), X


def _onnx_run(art, inputs):
    import onnxruntime as ort

    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    spec = sess.get_inputs()[0]
    x = np.asarray(inputs[spec.name], dtype=np.float32 if spec.type == "tensor(float)" else np.float64)
    return np.asarray(sess.run(None, {spec.name: x})[0], float).reshape(-1)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_a_normalizer_after_centring_is_refuted_where_its_input_vanishes(norm):
    warnings.filterwarnings("ignore")
    est, X = _fit(norm, centred=True)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == REFUTED, cert
    ce = cert.counterexample
    assert ce and ce["verified"]
    row = np.asarray(ce["inputs"]["X"], dtype=np.float64)
    assert np.all((row >= X.min(axis=0)) & (row <= X.max(axis=0)))  # a row of the domain (the data's box)
    ya = est.predict(row)
    yb = _onnx_run(art, {"X": row})
    assert np.max(np.abs(ya - yb)) > 1e-4 + 1e-5 * np.max(np.abs(ya)), (ya, yb)  # real, beyond the tolerance


def test_a_normalizer_away_from_zero_is_not_certifiable_and_not_refuted():
    warnings.filterwarnings("ignore")
    est, X = _fit("l2", centred=False)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == NOT_CERTIFIABLE, cert
    assert "Normalizer" in (cert.reason or "")
