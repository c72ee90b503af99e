"""The `pickle` format: every sample model, pickled every way people pickle, loads and converts with no --trust.

Zero false refusals is the other half of safety: a loader that refuses real models gets bypassed.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import portable
from portable.errors import InputError

from .sample_models import SAMPLE_IDS, SAMPLE_MODELS

#: (suffix, writer) for every way the sample table is saved; joblib names are what users usually pick.
WRITERS = {
    "pickle_p2": (".pkl", lambda est, path: path.write_bytes(pickle.dumps(est, protocol=2))),
    "pickle_p3": (".pkl", lambda est, path: path.write_bytes(pickle.dumps(est, protocol=3))),
    "pickle_p4": (".pickle", lambda est, path: path.write_bytes(pickle.dumps(est, protocol=4))),
    "pickle_p5": (".pkl", lambda est, path: path.write_bytes(pickle.dumps(est, protocol=5))),
    "joblib": (".joblib", lambda est, path: __import__("joblib").dump(est, path)),
    "joblib_zlib": (".joblib", lambda est, path: __import__("joblib").dump(est, path, compress=3)),
    "joblib_xz_as_pkl": (".pkl", lambda est, path: __import__("joblib").dump(est, path, compress=("xz", 1))),
}


@pytest.fixture(scope="module")
def fitted() -> dict:
    return {name: build() for name, build in SAMPLE_MODELS}


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("saved")
    out = {}
    for name, (est, _X, _data) in fitted.items():
        for how, (suffix, write) in WRITERS.items():
            path = root / f"{name}-{how}{suffix}"
            write(est, path)
            out[name, how] = path
    return out


@pytest.mark.parametrize("how", list(WRITERS))
@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_sample_model_loads_and_converts_without_trust(saved, fitted, name, how):
    path = saved[name, how]
    result = portable.audit(path)
    assert result.safe, result.to_text()
    model = portable.load(path)
    assert model.format == "pickle" and not model.notes
    est, X, data = fitted[name]
    assert type(model.estimator) is type(est)
    art = portable.convert(path, to="onnx", check=False, data=data)
    assert art.format == "onnx" and art.route[:2] == ["pickle", "sklearn"]


def test_loaded_model_predicts_like_the_original(saved, fitted):
    est, X, _ = fitted["random_forest_classifier"]
    for how in WRITERS:
        loaded = portable.load(saved["random_forest_classifier", how]).estimator
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("compressor", ["gzip", "bz2", "lzma", "lz4"])
def test_other_joblib_compressors(tmp_path, fitted, compressor):
    if compressor == "lz4":
        pytest.importorskip("lz4")
    import joblib

    est, X, _ = fitted["logreg_binary"]
    path = tmp_path / f"m.{compressor}.joblib"
    joblib.dump(est, path, compress=(compressor, 3))
    loaded = portable.load(path).estimator
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_skops_file_loads_and_converts(tmp_path, fitted):
    import skops.io as sio

    for name in ("scaler_pca_logreg", "gradient_boosting_classifier", "knn_classifier"):
        est, X, data = fitted[name]
        path = tmp_path / f"{name}.skops"
        sio.dump(est, path)
        assert portable.audit(path).safe
        loaded = portable.load(path).estimator
        np.testing.assert_allclose(loaded.predict_proba(X), est.predict_proba(X))
        assert portable.convert(path, to="onnx", check=False).format == "onnx"


def test_pickle_of_a_dataframe_is_not_a_model(tmp_path, fitted):
    _est, frame, _ = fitted["column_transformer_frame"]
    path = tmp_path / "frame.pkl"
    path.write_bytes(pickle.dumps(frame))
    with pytest.raises(InputError):  # pandas is not on the allowlist, and a frame is not a model either
        portable.load(path)
    with pytest.raises(InputError, match="not a model"):
        portable.load(path, trust=["pandas", "pyarrow"])  # pandas 3 frames are pyarrow-backed


# -- scikit-learn's own all_estimators(): slow, run with PORTABLE_SLOW=1 --------------------------------------------
#: Refusals that are the allowlist working as designed, with the reason.
EXPECTED_REFUSALS = {
    # its fitted splines are scipy.interpolate.BSpline objects (holding an array-API namespace function);
    # scipy outside scipy.sparse is not on the allowlist: --trust scipy.interpolate._bsplines.BSpline
    # --trust scipy._lib.array_api_compat.numpy._aliases.asarray admits it
    "SplineTransformer": "scipy.interpolate._bsplines.BSpline",
}


@pytest.mark.skipif(not os.environ.get("PORTABLE_SLOW"), reason="slow sweep; set PORTABLE_SLOW=1")
def test_all_estimators_sweep():
    from .hostile.estimator_sweep import sweep

    result = sweep(protocols=(2, 5))
    print(result.summary())
    assert not result.other_errors, result.other_errors
    unexpected = {k: v for k, v in result.refused.items() if EXPECTED_REFUSALS.get(k) not in v}
    assert not unexpected, unexpected
    assert len(result.loaded) >= 160


def test_version_mismatch_note_reaches_the_report(tmp_path, fitted):
    import sklearn

    est, _X, _ = fitted["logreg_binary"]
    data = pickle.dumps(est, protocol=2)
    cur, old = sklearn.__version__.encode(), b"0.24.2"
    data = data.replace(b"X" + len(cur).to_bytes(4, "little") + cur, b"X" + len(old).to_bytes(4, "little") + old)
    path = tmp_path / "old.pkl"
    path.write_bytes(data)
    art = portable.convert(path, to="onnx", samples=50)
    assert art.report.notes and "0.24.2" in art.report.notes[0] and sklearn.__version__ in art.report.notes[0]
    assert "0.24.2" in art.report.to_dict()["notes"][0]
