"""Certificates over boxes of the domain (issue 19): polynomial ranges by their centred form, and the domain split
into boxes whose tolerance grows with the smallest |value| each box proves (atol's scale held to the domain's).

Every bound is compared with the real libraries: scikit-learn's outputs and onnxruntime's on dense rows of the
domain (soundness: the proved range holds every output, the certified bound every difference), and a mutated
coefficient's difference (tightness: within 10x for these polynomial pipelines)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable
from portable.certification import affine
from portable.certification.core import CERTIFIED, Domain, DomainColumn
from portable.formats.sklearn import SklearnModel

from .test_certify_affine import _mutate, certify, sample_domain, sampled_difference


def _poly_pipeline(seed: int):
    """StandardScaler + PolynomialFeatures(2) + Ridge (or PolynomialFeatures on raw columns far from 0, whose
    cross terms cancel: a year times an area) on random data."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    rng = np.random.default_rng(seed)
    n, f = 120, int(rng.integers(2, 5))
    X = rng.normal(0, 1, (n, f)) * rng.uniform(0.5, 50, f) + rng.uniform(-200, 2000, f)
    y = X @ rng.normal(size=f) + 0.01 * (X[:, 0] - X[:, 0].mean()) * (X[:, -1] - X[:, -1].mean()) + rng.normal(size=n)
    steps = [StandardScaler()] if seed % 2 else []
    return make_pipeline(*steps, PolynomialFeatures(2), Ridge()).fit(X, y), X


def _domain(X, rng) -> Domain:
    lo, hi = X.min(axis=0), X.max(axis=0)
    a = rng.uniform(-0.2, 0.6, len(lo))
    b = np.maximum(a + 0.05, rng.uniform(0.3, 1.2, len(lo)))
    return Domain({("X", j): DomainColumn(lo=float(lo[j] + a[j] * (hi[j] - lo[j])),
                                          hi=float(lo[j] + b[j] * (hi[j] - lo[j]))) for j in range(len(lo))}, "user")


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000))
def test_polynomial_range_holds_every_output(seed):
    """The proved range of a degree-2 polynomial pipeline (centred form, intersected with the products of the
    intervals) holds scikit-learn's output on 4,000 rows of the box, corners included."""
    warnings.filterwarnings("ignore")
    est, X = _poly_pipeline(seed)
    domain = _domain(X, np.random.default_rng(seed))
    model = SklearnModel(est)
    conv = portable.convert(est, to="onnx", check=False)
    pa, _ = affine.read_pair(model, conv, domain)
    affine.forget()
    out = pa.outputs["variable"]
    lo, hi = pa.space.range(out.C, pa.side)
    feeds = sample_domain(model, domain, 4000, seed)
    y = np.asarray(model.run(feeds)["variable"], float).reshape(-1)
    slack = 1e-9 * max(1.0, float(np.max(np.abs(y))))
    assert float(lo.min()) <= y.min() + slack and y.max() - slack <= float(hi.max()), (lo, hi, y.min(), y.max())
    # the centred form is what makes it tight: the range is within 4x of the sampled spread
    assert float(hi.max() - lo.min()) <= 4 * float(y.max() - y.min()) + slack


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), mutate=st.booleans())
def test_polynomial_bound_is_sound_and_tight(seed, mutate):
    """The certified bound (whole domain or the largest over its boxes) is never below the largest difference
    between scikit-learn and onnxruntime on dense rows of the box, and within 10x of a mutated coefficient's."""
    warnings.filterwarnings("ignore")
    est, X = _poly_pipeline(seed)
    rng = np.random.default_rng(seed)
    domain = _domain(X, rng)
    conv = portable.convert(est, to="onnx", check=False)
    if mutate:
        conv = _mutate(conv, "coefficients", 1, 1.0 + rng.uniform(0.001, 0.1))
    certs, model, _, _ = certify(est, X, converted=conv, domain=domain)
    affine.forget()
    cert = certs["variable"]
    observed = sampled_difference(model, conv, sample_domain(model, domain, 4000, seed), "variable")
    assert cert.bound >= observed, (cert.bound, observed)
    if mutate and observed > 0:
        assert cert.bound <= 10 * observed, (cert.bound, observed)


@pytest.mark.parametrize("name", ["house_polynomial_ridge", "house_ridge_log_target"])
def test_house_pipelines_are_certified_over_boxes(name):
    """Both float32 house pipelines are certified at the check's own tolerance rule (atol scaled only by the
    smallest price proved over the domain): their proved ranges reached 0 before (PolynomialFeatures' raw
    cross terms; exp of a ridge), where only atol = 1e-4 remained. On 20,000 rows of the data's box no
    difference between scikit-learn and onnxruntime exceeds the certified bound, nor the tolerance a check of
    that row uses."""
    from . import pipelines

    warnings.filterwarnings("ignore")
    est, df, _ = pipelines.build(name)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=df)
    res = portable.certify(est, art, data=df)
    cert = res.certificates["variable"]
    assert cert.status == CERTIFIED, cert
    assert cert.bound <= cert.tolerance
    rng = np.random.default_rng(0)
    n = 20000
    rows = {}
    for k in df.columns:
        v = df[k]
        if v.dtype.kind in "fi":
            r = rng.uniform(v.min(), v.max(), n)
            rows[k] = np.round(r).astype(v.dtype) if v.dtype.kind == "i" else r
        else:
            rows[k] = rng.choice(v.dropna().unique(), n)
    import pandas as pd

    frame = pd.DataFrame(rows)[df.columns]
    ya = np.asarray(est.predict(frame), float).reshape(-1)
    import onnxruntime as ort

    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in sess.get_inputs():
        col = frame[spec.name].to_numpy()
        kind = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}.get(spec.type)
        feeds[spec.name] = (col.astype(kind) if kind is not None else col.astype(str).astype(object)).reshape(-1, 1)
    yb = np.asarray(sess.run(["variable"], feeds)[0], float).reshape(-1)
    gap = np.abs(ya - yb)
    assert gap.max() <= cert.bound, (gap.max(), cert.bound)
