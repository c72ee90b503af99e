"""Float32 artifacts of linear models that read text sum their dot products over many inputs in float64
(`portable.converters.sklearn.common.linear_scores`, `WIDE_SUMS`): their scores are scikit-learn's, computed on
the float32 vector, rounded once to float32. A float32 MatMul over hundreds of terms errs by many ulps of the
scores (onnxruntime's summation order), and its worst order by far more, beyond what a certificate can prove.
Dense models keep float32 sums (the Cast would make them slower than scikit-learn); the tests of the mechanism
on dense matrices switch it on for them (`wide`)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable
from portable.converters.sklearn import common
from portable.converters.sklearn.common import WIDE_DOT


@pytest.fixture
def wide(monkeypatch):
    """Every model counts as reading text: its wide linear heads sum in float64."""
    monkeypatch.setattr(common, "reads_text", lambda est: True)


def _data(n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, n_features)) * rng.uniform(0.1, 10.0, n_features)
    y = (X[:, :5].sum(axis=1) + rng.normal(size=600) > 0).astype(int) + (X[:, 5] > 1).astype(int)
    return X, y


def _models():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import RidgeClassifier
    from sklearn.svm import LinearSVC

    return [("linear_svc_binary", LinearSVC(max_iter=5000), "scores", True),
            ("ridge_classifier_3", RidgeClassifier(), "scores", False),
            ("calibrated_linear_svc", CalibratedClassifierCV(LinearSVC(max_iter=5000), cv=3), None, True)]


@pytest.mark.parametrize("name,est,output,binary", _models(), ids=[m[0] for m in _models()])
def test_wide_linear_scores_are_rounded_once(wide, name, est, output, binary):
    X, y = _data(3 * WIDE_DOT)
    if binary:
        y = (y > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
    ops = [n.op_type for n in art.proto.graph.node]
    assert "Cast" in ops, ops
    X32 = X.astype(np.float32)
    got = art.run({art.signature.inputs[0].name: X32})
    assert np.array_equal(np.asarray(got["label"]).reshape(-1), est.predict(X32.astype(np.float64)))
    if output is None:
        return
    want = np.asarray(est.decision_function(X32.astype(np.float64)), dtype=np.float64).reshape(len(X), -1)
    have = np.asarray(got[output], dtype=np.float64).reshape(len(X), -1)
    # one float32 rounding of the float64 scores (the float64 sums' own error is ~1e-16 of them)
    assert np.all(np.abs(have - want) <= np.spacing(np.abs(want).astype(np.float32)) * 0.5 + 1e-12 * np.abs(want)), \
        float(np.max(np.abs(have - want)))


def test_narrow_linear_scores_stay_float32(wide):
    """Below WIDE_DOT inputs the graph is the plain float32 MatMul + Add (no Cast), as before."""
    from sklearn.svm import LinearSVC

    X, y = _data(WIDE_DOT - 1)
    est = LinearSVC(max_iter=5000).fit(X, (y > 0).astype(int))
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    ops = [n.op_type for n in art.proto.graph.node]
    assert "Cast" not in ops[:ops.index("MatMul") + 2], ops
    assert "MatMul" in ops


@pytest.mark.parametrize("targets", [1, 2])
def test_wide_linear_regressor_heads_sum_in_float64(wide, targets):
    """skl2onnx's LinearRegressor over many inputs (widen_linear_heads): the float32 artifact's predictions
    differ from scikit-learn's on the float32 inputs by at most one rounding of the result plus the float32
    coefficients' rounding (2^-24 sum |x_i w_i|); a float32 sum of 384 terms (before) errs by up to 15 times
    that."""
    from sklearn.linear_model import LinearRegression, Ridge

    X, _ = _data(3 * WIDE_DOT)
    y = X[:, :5].sum(axis=1) if targets == 1 else np.c_[X[:, :5].sum(axis=1), X[:, 7]]
    est = (LinearRegression() if targets == 1 else Ridge()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
    X32 = X.astype(np.float32)
    got = art.run({art.signature.inputs[0].name: X32})
    have = np.asarray(next(iter(got.values())), dtype=np.float64).reshape(len(X), -1)
    want = np.asarray(est.predict(X32.astype(np.float64)), dtype=np.float64).reshape(len(X), -1)
    W = np.atleast_2d(est.coef_).reshape(-1, X.shape[1])
    allowed = 0.5 * np.spacing(np.abs(want).astype(np.float32)) + \
        2.0 ** -24 * (np.abs(X32.astype(np.float64)) @ np.abs(W).T + np.abs(est.intercept_)) * 1.0001
    assert np.all(np.abs(have - want) <= allowed), float(np.max(np.abs(have - want) / allowed))


def test_wide_logistic_regression_head_keeps_its_outputs(wide):
    """A binary and a 3-class LogisticRegression over many inputs: the LinearClassifier reads float64 scores
    through identity coefficients, and labels and probabilities are scikit-learn's."""
    from sklearn.linear_model import LogisticRegression

    X, y = _data(3 * WIDE_DOT)
    for yy in ((y > 0).astype(int), y):
        est = LogisticRegression(max_iter=3000).fit(X, yy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            art = portable.convert(est, to="onnx", dtype="float32", check=False)
        ops = [n.op_type for n in art.proto.graph.node]
        assert ops[:5] == ["Cast", "MatMul", "Add", "Cast", "LinearClassifier"], ops
        X32 = X.astype(np.float32)
        got = art.run({art.signature.inputs[0].name: X32})
        assert np.array_equal(np.asarray(got["label"]).reshape(-1), est.predict(X32.astype(np.float64)))
        assert np.max(np.abs(got["probabilities"] - est.predict_proba(X32.astype(np.float64)))) < 1e-6


@pytest.mark.parametrize("kind", ["linear_svc", "logistic_regression", "ridge"])
def test_wide_dense_linear_models_are_certified(wide, kind):
    """Float32 artifacts of linear models over 384 dense columns are certified over the data's box (before,
    with float32 sums, LinearSVC's bound was 1.4e-3 against a tolerance of 1.2e-3 and LogisticRegression's
    7.2e-4 against 6e-5: not certifiable), and the bound holds on rows drawn inside the box, scikit-learn
    against onnxruntime."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    from portable.certification.core import CERTIFIED

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 384))
    y = (X[:, :10].sum(axis=1) > 0).astype(int)
    est, output = {"linear_svc": (LinearSVC(max_iter=3000), "scores"),
                   "logistic_regression": (LogisticRegression(max_iter=3000), "probabilities"),
                   "ridge": (Ridge(), "variable")}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, X[:, :10].sum(axis=1) if kind == "ridge" else y)
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=X)
    for name, cert in result.certificates.items():
        assert cert.status == CERTIFIED, (name, cert.bound, cert.tolerance, cert.reason)
    cert = result.certificates[output]
    lo, hi = X.min(axis=0), X.max(axis=0)
    R = lo + (hi - lo) * rng.random((20000, X.shape[1]))
    R[::2] = np.where(rng.random((10000, X.shape[1])) < 0.5, lo, hi)  # corners too
    R32 = R.astype(np.float32)
    got = np.asarray(art.run({art.signature.inputs[0].name: R32})[output], dtype=np.float64)
    Rd = R32.astype(np.float64)
    want = {"scores": lambda: est.decision_function(Rd), "probabilities": lambda: est.predict_proba(Rd),
            "variable": lambda: est.predict(Rd)}[output]()
    observed = float(np.max(np.abs(got.reshape(len(R), -1) - np.asarray(want, np.float64).reshape(len(R), -1))))
    assert cert.bound >= observed, (cert.bound, observed)


@pytest.mark.parametrize("kind", ["linear_svc", "logistic_regression", "ridge"])
def test_dense_models_keep_float32_sums_and_text_models_sum_in_float64(kind):
    """Without a text vectorizer the float32 artifact of a wide linear model is the plain float32 product (a Cast
    of a dense 10,000 x 384 input to double made a LogisticRegression's artifact 2-3x slower than scikit-learn);
    behind a TfidfVectorizer the same model's head sums in float64."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    make = {"linear_svc": lambda: LinearSVC(max_iter=3000), "logistic_regression": lambda: LogisticRegression(),
            "ridge": lambda: Ridge()}[kind]
    X, y = _data(3 * WIDE_DOT)
    y = (y > 0).astype(int)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3 * WIDE_DOT)]
    docs = [" ".join(rng.choice(words, 30)) for _ in range(400)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = portable.convert(make().fit(X, y), to="onnx", dtype="float32", check=False)
        text = portable.convert(make_pipeline(TfidfVectorizer(), make()).fit(docs, y[:400]), to="onnx",
                                dtype="float32", check=False)
    def to_double(art):
        return [n.name for n in art.proto.graph.node
                if n.op_type == "Cast" and any(a.name == "to" and a.i == 11 for a in n.attribute)]

    assert not to_double(dense), to_double(dense)
    assert to_double(text), [n.op_type for n in text.proto.graph.node]
