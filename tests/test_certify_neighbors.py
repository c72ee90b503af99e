"""k nearest neighbours certified except at near-ties of distances (issue 19: the `neighbors` method).

Both models pick the k training points nearest a row; the certificate bounds the difference of their squared
distances and so proves the same neighbours wherever the (k+1)-th smallest squared distance exceeds the k-th by
more than its tie margin; there, a regressor's outputs differ by the targets' rounding only and a classifier's
votes are the same. Checked against scikit-learn and onnxruntime on dense rows (uniform rows of the box, rows next
to training points and halfway between two, where ties are likeliest): never beyond the bound outside the margin.
A graph with a moved training point or a changed target is not read and is refuted at the training points."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable
from portable.certification.core import CERTIFIED, NOT_CERTIFIABLE, REFUTED


def _model(name: str):
    from tests.sample_models import SAMPLE_MODELS

    warnings.filterwarnings("ignore")
    est, X, data = dict(SAMPLE_MODELS)[name]()
    return est, np.asarray(X, dtype=np.float64), data


def _run(proto, rows):
    import onnxruntime as ort

    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    spec = sess.get_inputs()[0]
    dt = np.float32 if spec.type == "tensor(float)" else np.float64
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {spec.name: rows.astype(dt)})))


def _rows(est, X, dtype, n=20000):
    rng = np.random.default_rng(0)
    fit = np.asarray(est._fit_X)
    lo, hi = X.min(0), X.max(0)
    i, j = rng.integers(0, len(fit), (2, n))
    parts = [rng.uniform(lo, hi, (n, X.shape[1])), fit[i] + 1e-4 * (hi - lo) * rng.standard_normal((n, X.shape[1])),
             (fit[i] + fit[j]) / 2, fit]
    return np.clip(np.vstack(parts), lo, hi).astype(dtype).astype(np.float64)


def _gaps(est, rows):
    """scikit-learn's (k+1)-th minus k-th smallest squared distance per row (exact float64 differences)."""
    fit = np.asarray(est._fit_X, dtype=np.float64)
    k = est.n_neighbors
    out = []
    for a in range(0, len(rows), 2000):
        d = ((rows[a:a + 2000, None, :] - fit[None, :, :]) ** 2).sum(axis=2)
        part = np.partition(d, (k - 1, k), axis=1)
        out.append(part[:, k] - part[:, k - 1])
    return np.concatenate(out)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_knn_regressor_certified_and_sound_outside_near_ties(dtype):
    est, X, data = _model("knn_regressor")
    art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=data)
    cert = portable.certify(est, art, data=data).certificates["variable"]
    assert cert.status == CERTIFIED, cert
    assert cert.details["near_ties_only"]
    margin = cert.details["distance_tie_margin"]
    rows = _rows(est, X, np.float32 if dtype == "float32" else np.float64)
    clear = _gaps(est, rows) > margin
    assert clear[:20000].mean() > 0.95  # uniform rows: the exception is a thin set
    diff = np.abs(est.predict(rows) - np.asarray(_run(art.proto, rows)["variable"], float).reshape(-1))
    assert np.max(diff[clear]) <= cert.bound, (np.max(diff[clear]), cert.bound)


def test_knn_classifier_certified_and_sound_outside_near_ties():
    est, X, data = _model("knn_classifier")
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=data)
    certs = portable.certify(est, art, data=data).certificates
    assert certs["label"].status == CERTIFIED and certs["probabilities"].status == CERTIFIED, certs
    margin = certs["label"].details["distance_tie_margin"]
    rows = _rows(est, X, np.float32)
    clear = _gaps(est, rows) > margin
    assert clear[:20000].mean() > 0.95  # uniform rows (iris' duplicates tie exactly elsewhere)
    got = _run(art.proto, rows)
    assert np.array_equal(np.asarray(got["label"]).reshape(-1)[clear], est.predict(rows)[clear])
    diff = np.abs(est.predict_proba(rows) - np.asarray(got["probabilities"], float))
    assert np.max(diff[clear]) <= certs["probabilities"].bound


def _mutated(art, what: str):
    import onnx
    from onnx import numpy_helper

    proto = onnx.ModelProto()
    proto.CopyFrom(art.proto)
    for init in proto.graph.initializer:
        a = numpy_helper.to_array(init)
        if what == "point" and a.ndim == 2 and a.shape[0] > 100:
            a = a.copy()
            a[7] += (a.max(0) - a.min(0)) * 0.05
        elif what == "classes" and a.ndim == 1 and a.shape[0] == 3 and a.dtype.kind == "i" and \
                init.name in {n.input[0] for n in proto.graph.node if n.op_type == "ArrayFeatureExtractor"}:
            a = a[[1, 0, 2]]  # the class labels read after the ArgMax, swapped (the mutation benchmark's 'label')
        elif what == "target" and a.ndim == 1 and a.shape[0] > 100:
            a = a.copy()
            a[7] = a[7] + 50 if a.dtype.kind == "f" else (a[7] + 1) % (a.max() + 1)
        else:
            continue
        init.CopyFrom(numpy_helper.from_array(a, init.name))
    return portable.load(proto)


@pytest.mark.parametrize("name,what", [("knn_regressor", "point"), ("knn_regressor", "target"),
                                       ("knn_classifier", "target"), ("knn_classifier", "classes")])
def test_a_changed_training_point_or_target_is_refuted(name, what):
    est, X, data = _model(name)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=data)
    certs = portable.certify(est, _mutated(art, what), data=data).certificates
    refuted = [c for c in certs.values() if c.status == REFUTED]
    assert refuted, certs
    assert all(c.counterexample and c.counterexample["verified"] for c in refuted)
    if what == "classes":  # the label is wrong, the probabilities are not: they may stay certified
        assert certs["label"].status == REFUTED
    else:
        assert not any(c.status == CERTIFIED for c in certs.values())


def test_distance_weights_are_not_read():
    from sklearn.neighbors import KNeighborsRegressor

    est, X, data = _model("knn_regressor")
    est = KNeighborsRegressor(5, weights="distance").fit(X, est._y)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == NOT_CERTIFIABLE
    assert "weights='distance'" in cert.reason
