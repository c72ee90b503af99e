"""SVC / NuSVC with probability=True: libsvm's Platt probabilities and pairwise coupling, against scikit-learn.

skl2onnx's SVMClassifier computes the probabilities in float32 in onnxruntime even in a float64 graph (4e-7 to
1e-5 off); portable's converter computes `svm_predict_probability` in float64 (float32 graphs too, rounding
the probabilities once at the end), so float64 artifacts agree with scikit-learn to rounding.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # probability=True is deprecated in 1.9


def _fit(est, n_classes: int, *, n: int = 400, features: int = 8, seed: int = 0, labels=None):
    from sklearn.datasets import make_classification

    X, y = make_classification(n, features, n_informative=min(features, 5), n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, random_state=seed)
    if labels is not None:
        y = np.asarray(labels)[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        est.fit(X, y)
    # evaluation rows near the training rows and far out (large decision values, clipped probabilities)
    rng = np.random.default_rng(seed)
    rows = np.vstack([X + rng.normal(scale=0.1, size=X.shape), rng.normal(scale=6.0, size=(50, features))])
    return est, rows


def _run(est, rows, dtype):
    art = portable.convert(est, "onnx", dtype=dtype, check=False)
    return art, art.run({"X": rows.astype(dtype)})


def _expected(est, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return est.predict_proba(rows), est.predict(rows)


CASES = [(k, kernel) for k in (2, 3, 5) for kernel in ("rbf", "linear", "poly")]


@pytest.mark.parametrize("n_classes,kernel", CASES)
def test_float64_probabilities_are_libsvms(n_classes, kernel):
    from sklearn.svm import SVC

    est, rows = _fit(SVC(kernel=kernel, probability=True, random_state=0), n_classes)
    _, got = _run(est, rows, "float64")
    proba, label = _expected(est, rows)
    assert got["probabilities"].dtype == np.float64
    np.testing.assert_allclose(got["probabilities"], proba, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got["label"], label)  # predict's vote, not the probabilities' argmax


@pytest.mark.parametrize("n_classes,kernel", CASES)
def test_float32_probabilities_round_libsvms(n_classes, kernel):
    from sklearn.svm import SVC

    est, rows = _fit(SVC(kernel=kernel, probability=True, random_state=0), n_classes)
    art, got = _run(est, rows, "float32")
    rows32 = rows.astype(np.float32).astype(np.float64)
    proba, label = _expected(est, rows32)
    assert got["probabilities"].dtype == np.float32
    # the float64 probabilities rounded once: within half a float32 ulp of values below 1 (2.98e-8)
    np.testing.assert_allclose(got["probabilities"], proba, rtol=0, atol=6e-8)
    np.testing.assert_array_equal(got["label"], label)
    report = portable.check(est, art, data=rows)
    assert report.equivalent, report.to_dict()


@pytest.mark.parametrize("n_classes,kernel", [(2, "rbf"), (3, "linear"), (5, "poly")])
def test_float64_check_is_equivalent(n_classes, kernel):
    from sklearn.svm import SVC

    est, rows = _fit(SVC(kernel=kernel, probability=True, random_state=0), n_classes)
    art = portable.convert(est, "onnx", dtype="float64", check=False)
    report = portable.check(est, art, data=rows)
    assert report.equivalent, report.to_dict()


@pytest.mark.parametrize("make", [
    lambda: __import__("sklearn.svm", fromlist=["NuSVC"]).NuSVC(nu=0.3, probability=True, random_state=0),
    lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(probability=True, class_weight="balanced",
                                                            random_state=0),
    lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(probability=True, break_ties=True, random_state=0),
    lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(probability=True, kernel="sigmoid", gamma=0.02,
                                                            decision_function_shape="ovo", random_state=0),
], ids=["nusvc", "class_weight", "break_ties", "sigmoid_ovo"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_variants_with_string_labels(make, n_classes):
    est, rows = _fit(make(), n_classes, labels=["cat", "dog", "eel", "fox"][:n_classes], seed=3)
    proba, label = _expected(est, rows)
    for dtype, atol in (("float64", 1e-12), ("float32", 6e-8)):
        _, got = _run(est, rows, dtype)
        if dtype == "float32":
            proba, label = _expected(est, rows.astype(np.float32).astype(np.float64))
        np.testing.assert_allclose(got["probabilities"], proba, rtol=0, atol=atol)
        np.testing.assert_array_equal(got["label"], label)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.integers(30, 200), features=st.integers(2, 6), n_classes=st.integers(2, 6),
       kernel=st.sampled_from(["rbf", "linear", "poly"]), seed=st.integers(0, 10_000))
def test_random_problems(n, features, n_classes, kernel, seed):
    from sklearn.svm import SVC

    n = max(n, 8 * n_classes)
    features = max(features, n_classes.bit_length())  # make_classification: n_classes <= 2 ** n_informative
    est, rows = _fit(SVC(kernel=kernel, probability=True, random_state=seed), n_classes, n=n,
                     features=features, seed=seed)
    _, got = _run(est, rows, "float64")
    proba, label = _expected(est, rows)
    np.testing.assert_allclose(got["probabilities"], proba, rtol=0, atol=1e-11)
    np.testing.assert_array_equal(got["label"], label)


def test_empty_batch():
    from sklearn.svm import SVC

    est, rows = _fit(SVC(probability=True, random_state=0), 3)
    for dtype in ("float64", "float32"):
        _, got = _run(est, rows[:0], dtype)
        assert got["probabilities"].shape == (0, 3) and got["label"].shape == (0,)
