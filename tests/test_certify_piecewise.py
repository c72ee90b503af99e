"""Certificates for the piecewise pieces of affine pipelines (issue 19): an encoder's "infrequent" column (ONNX
ReduceMax of its hits), one encoder over an integer and a string column, and np.clip (ONNX Max/Min). Each
realistic pipeline is certified with a bound no smaller than the difference on dense rows, and every mutation of
the mutation benchmark that changes an output is refuted with a counterexample scikit-learn and onnxruntime
confirm; a property test checks clip bounds for soundness against dense samples."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable
from portable.certification.core import CERTIFIED, REFUTED
from portable.formats.sklearn import SklearnModel

from .mutants import benchmark_mutations
from .test_certify_affine import _near_ties, sample_domain

PIECEWISE = ["titanic_onehot_max_categories", "titanic_onehot_infrequent_drop_first",
             "house_onehot_max_categories_integer_and_string", "house_clip_function"]


def _differs(a, b, out, cert) -> np.ndarray:
    """Rows where the two models' output differs beyond what the sampled check excuses."""
    if out.startswith("label"):
        d = np.asarray(a[out]).astype(str) != np.asarray(b[out]).astype(str)
        return d & ~_near_ties(a) if ("probabilities" in a or "scores" in a) else d
    va, vb = np.asarray(a[out], float), np.asarray(b[out], float)
    return np.abs(va - vb).reshape(len(va), -1).max(axis=1) > cert.tolerance


@pytest.mark.parametrize("name", PIECEWISE)
def test_piecewise_pipelines_certified_and_mutations_refuted(name):
    from . import pipelines

    est, df, _ = pipelines.build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", check=False, data=df)
        result = portable.certify(est, art, data=df)
    model = SklearnModel(est, data=df)
    feeds = sample_domain(model, result.domain, 2000)
    a, b = model.run(feeds), art.run(feeds)
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED and cert.method == "affine", (out, cert)
        if not out.startswith("label"):
            diff = np.abs(np.asarray(a[out], float) - np.asarray(b[out], float)).max()
            assert cert.bound >= diff, (out, cert.bound, diff)
    muts = benchmark_mutations(art, ("coefficient", "intercept", "label", "category"), 2, seed=3)
    assert muts
    refuted = 0
    for kind, proto in muts:
        mutated = portable.load(proto)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = portable.certify(est, mutated, data=df)
        b = mutated.run(feeds)
        for out, cert in res.certificates.items():
            differs = _differs(a, b, out, cert)
            if cert.status == CERTIFIED and not out.startswith("label"):
                assert not np.any(differs), (kind, out)
            if np.any(differs):
                assert cert.status == REFUTED and cert.counterexample["verified"], (kind, out, cert)
                ce = cert.counterexample["inputs"]  # the counterexample, run again by both libraries
                ra, rb = model.run(ce)[out], mutated.run(ce)[out]
                assert not np.array_equal(np.asarray(ra), np.asarray(rb))
                refuted += 1
    assert refuted, "no mutation changed an output"


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), lo=st.floats(-2.0, 1.0), width=st.floats(0.1, 3.0),
       one_sided=st.sampled_from([None, "a_min", "a_max"]), mutate=st.booleans())
def test_clip_bound_is_sound(seed, lo, width, one_sided, mutate):
    """np.clip then a linear model: the certified bound is never below the largest difference on dense rows
    (scikit-learn against onnxruntime), and a changed coefficient beyond tolerance is refuted and verified."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 3)) * rng.uniform(0.5, 3, 3)
    y = X @ rng.normal(size=3) + rng.normal(size=200)
    kw = {"a_min": lo, "a_max": lo + width}
    if one_sided:
        kw[one_sided] = None
    est = make_pipeline(StandardScaler(), FunctionTransformer(np.clip, kw_args=kw), LinearRegression()).fit(X, y)
    art = portable.convert(est, to="onnx", check=False, data=X)
    if mutate:
        from .test_certify_affine import _mutate

        art = _mutate(art, "coefficients", 0, 1.0 + rng.uniform(0.01, 0.2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = portable.certify(est, art, data=X)
    cert = res.certificates["variable"]
    model = SklearnModel(est, data=X)
    feeds = sample_domain(model, res.domain, 3000, seed=seed)
    diff = np.abs(np.asarray(model.run(feeds)["variable"], float) - np.asarray(art.run(feeds)["variable"], float))
    if cert.status == CERTIFIED:
        assert cert.bound >= diff.max()
    elif diff.max() > cert.tolerance:
        assert cert.status == REFUTED and cert.counterexample["verified"], cert
    if not mutate:
        assert cert.status == CERTIFIED


def test_multiclass_sigmoid_calibration_is_read_and_a_mutation_refuted():
    """CalibratedClassifierCV(method='sigmoid') over three classes: the ONNX graph's per-fold normalisation (a
    "sum == 0" guard, provably never true, then a division by the sum) reads as an L1 normalisation in the same unit
    order as scikit-learn's; a changed coefficient is refuted with a counterexample both libraries confirm, and the
    correct conversion is never refuted (its bound stays above the dense-sampled difference)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from .test_certify_affine import _mutate_initializer

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make_pipeline(StandardScaler(), CalibratedClassifierCV(LinearSVC(), cv=3)).fit(X, y)
        art = portable.convert(est, to="onnx", check=False, data=X)
        res = portable.certify(est, art, data=X)
    good = res.certificates["probabilities"]
    assert good.status == CERTIFIED and good.bound is not None, good
    model = SklearnModel(est, data=X)
    feeds = sample_domain(model, res.domain, 2000)
    diff = np.abs(np.asarray(model.run(feeds)["probabilities"]) - np.asarray(art.run(feeds)["probabilities"]))
    assert good.bound >= diff.max()
    weight = next(n.input[1] for n in art.proto.graph.node if n.op_type == "MatMul")
    mutated = _mutate_initializer(art, weight, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bad = portable.certify(est, mutated, data=X).certificates["probabilities"]
    assert bad.status == REFUTED and bad.counterexample["verified"], bad
    ce = bad.counterexample["inputs"]
    a, b = np.asarray(model.run(ce)["probabilities"]), np.asarray(mutated.run(ce)["probabilities"])
    assert np.abs(a - b).max() > bad.tolerance
