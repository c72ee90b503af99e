"""Certification method `affine` (issue 19): proved bounds for affine compositions, checked against scikit-learn and
onnxruntime on dense samples of the domain (soundness), against the sampled difference of a really different
conversion (tightness), and mutated artifacts refuted with a counterexample both runtimes confirm."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable
from portable.certification.affine import certify_affine
from portable.certification.core import CERTIFIED, REFUTED, Context, Domain, DomainColumn
from portable.equivalence.compare import tolerance_for
from portable.formats.sklearn import SklearnModel

from .mutants import benchmark_mutations
from .sample_models import SAMPLE_MODELS, inputs_for

AFFINE_SAMPLES = ["logreg_multiclass", "logreg_binary", "scaler_pca_logreg", "column_transformer_frame"]


def domain_of(model, X) -> Domain:
    """The box (and categories) of the rows X, per input column of `model`."""
    cols = {}
    for spec in model.signature.inputs:
        if hasattr(X, "columns"):
            v = X[spec.name]
            if spec.is_string:
                cols[(spec.name, 0)] = DomainColumn(categories=sorted({"" if c is None or c != c else str(c)
                                                                       for c in v}))
            else:
                a = v.to_numpy(dtype=float)
                cols[(spec.name, 0)] = DomainColumn(lo=float(np.nanmin(a)), hi=float(np.nanmax(a)),
                                                    nan=bool(np.isnan(a).any()), integer=spec.dtype == "int64")
        else:
            a = np.asarray(X, dtype=float)
            for j in range(a.shape[1]):
                cols[(spec.name, j)] = DomainColumn(lo=float(a[:, j].min()), hi=float(a[:, j].max()))
    return Domain(cols, "data")


def context_of(model, converted, rows, dtype: str = "float32") -> Context:
    """The tolerances a sampled check of `rows` uses: atol scaled by the 90th percentile of |output| on them, as
    an absolute atol (what `check --certify` passes: a certificate within that check's tolerance)."""
    outs = {o.name: o.kind for o in model.signature.outputs}
    ref = model.run(rows)
    atol, rtol = {}, {}
    for name, kind in outs.items():
        if kind == "label":
            continue
        t = tolerance_for(kind, (np.dtype("float64"), np.dtype(dtype)))
        scale = max(1.0, float(np.percentile(np.abs(ref[name]), 90))) if kind != "probability" else 1.0
        atol[name], rtol[name] = t.atol * scale, t.rtol
    return Context(outputs=outs, atol=atol, rtol=rtol, dtype=dtype,
                   inputs={s.name: s.dtype for s in converted.signature.inputs})


def certify(est, X, converted=None, data=None, domain=None):
    model = SklearnModel(est, data=data)
    if converted is None:
        converted = portable.convert(est, to="onnx", check=False, data=data)
    rows = inputs_for(model, X)
    domain = domain or domain_of(model, X)
    return certify_affine(model, converted, domain, context_of(model, converted, rows)), model, converted, domain


def sample_domain(model, domain: Domain, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n rows of the domain: its corners and uniform points (categories at random)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in model.signature.inputs:
        width = int(spec.shape[1]) if len(spec.shape) > 1 else 1
        cols = []
        for j in range(width):
            c = domain.columns[(spec.name, j)]
            if c.categories is not None:
                cols.append(rng.choice(np.asarray(c.categories, dtype=object), n))
            else:
                u = rng.random(n)
                v = np.where(u < 0.2, c.lo, np.where(u < 0.4, c.hi, c.lo + rng.random(n) * (c.hi - c.lo)))
                cols.append(np.round(v) if c.integer else v)
        arr = np.stack(cols, axis=1)
        feeds[spec.name] = arr.astype(str) if spec.is_string else arr.astype(spec.dtype)
    return feeds


def sampled_difference(model, converted, feeds, name) -> float:
    a, b = model.run(feeds)[name], converted.run(feeds)[name]
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


@pytest.mark.parametrize("name", AFFINE_SAMPLES)
def test_sample_models_are_certified(name):
    est, X, data = dict(SAMPLE_MODELS)[name]()
    certs, model, conv, domain = certify(est, X, data=data)
    assert certs is not None
    assert certs["label"].status == CERTIFIED, certs["label"]
    feeds = sample_domain(model, domain, 2000)
    for out, cert in certs.items():
        assert cert.method == "affine"
        if out != "label":
            assert cert.status == CERTIFIED, cert
            assert cert.bound >= sampled_difference(model, conv, feeds, out)


def _mutate(converted, attr: str, index: int, factor: float):
    import onnx

    proto = onnx.ModelProto()
    proto.CopyFrom(converted.proto)
    for node in proto.graph.node:
        for a in node.attribute:
            if a.name == attr:
                vals = list(a.floats)
                vals[index] = vals[index] * factor + (0.5 if vals[index] == 0 else 0.0)
                del a.floats[:]
                a.floats.extend(vals)
                return portable.load(proto)
    raise AssertionError(f"no attribute {attr}")


@pytest.mark.parametrize("name,attr", [("logreg_multiclass", "coefficients"), ("logreg_binary", "intercepts"),
                                       ("scaler_pca_logreg", "offset"), ("column_transformer_frame", "coefficients")])
def test_mutations_are_refuted_with_a_verified_counterexample(name, attr):
    est, X, data = dict(SAMPLE_MODELS)[name]()
    conv = portable.convert(est, to="onnx", check=False, data=data)
    certs, model, mutated, _ = certify(est, X, converted=_mutate(conv, attr, 1, 1.5), data=data)
    refuted = [c for c in certs.values() if c.status == REFUTED]
    assert refuted, {k: (c.status, c.bound, c.reason) for k, c in certs.items()}
    for c in refuted:
        ce = c.counterexample
        assert ce["verified"]
        feeds = {k: np.asarray(v, dtype=model.signature.input(k).dtype if not model.signature.input(k).is_string
                               else str) for k, v in ce["inputs"].items()}
        a, b = model.run(feeds)[c.output], mutated.run(feeds)[c.output]
        assert np.any(np.asarray(a).astype(str) != np.asarray(b).astype(str))


# -- properties: random scaler + linear pipelines over random boxes --------------------------------------------------
def _pipeline(seed: int, kind: str):
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

    rng = np.random.default_rng(seed)
    n, f = 80, int(rng.integers(2, 6))
    X = rng.normal(0, 1, (n, f)) * rng.uniform(0.1, 100, f) + rng.uniform(-50, 50, f)
    scaler = [StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler][seed % 4]()
    if kind == "regressor":
        y = X @ rng.normal(size=f) + rng.normal(size=n)
        return make_pipeline(scaler, [LinearRegression, Ridge][seed % 2]()).fit(X, y), X
    y = (X[:, 0] > np.median(X[:, 0])).astype(int) + (X[:, 1] > np.median(X[:, 1])).astype(int) * (seed % 2)
    return make_pipeline(scaler, LogisticRegression(max_iter=500)).fit(X, y), X


def _box(X, rng) -> np.ndarray:
    lo, hi = X.min(axis=0), X.max(axis=0)
    a, b = rng.uniform(-0.5, 1.0, len(lo)), rng.uniform(0.0, 1.5, len(lo))
    return np.stack([lo + a * (hi - lo), lo + np.maximum(a + 0.05, b) * (hi - lo)], axis=1)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["regressor", "classifier"]),
       mutate=st.booleans())
def test_bound_is_sound_and_tight(seed, kind, mutate):
    warnings.filterwarnings("ignore")
    est, X = _pipeline(seed, kind)
    rng = np.random.default_rng(seed)
    box = _box(X, rng)
    domain = Domain({("X", j): DomainColumn(lo=float(l), hi=float(h)) for j, (l, h) in enumerate(box)}, "user")
    conv = portable.convert(est, to="onnx", check=False)
    attr = "coefficients"
    if mutate:
        conv = _mutate(conv, attr, 0, 1.0 + rng.uniform(0.001, 0.1))
    certs, model, _, _ = certify(est, X, converted=conv, domain=domain)
    feeds = sample_domain(model, domain, 4000, seed)
    name = "variable" if kind == "regressor" else "probabilities"
    observed = sampled_difference(model, conv, feeds, name)
    cert = certs[name]
    assert cert.bound >= observed, (cert.bound, observed)  # soundness
    if mutate and kind == "regressor":
        assert cert.bound <= 10 * observed, (cert.bound, observed)  # tightness


# -- the realistic pipelines -----------------------------------------------------------------------------------------
PIPELINES = ["titanic_logistic_regression", "titanic_constant_imputers", "titanic_mean_imputer_add_indicator",
             "titanic_onehot_drop_first", "titanic_onehot_min_frequency", "titanic_column_selector",
             "titanic_remainder_scaler", "titanic_integer_column_onehot", "titanic_set_output_pandas",
             "titanic_grid_search", "titanic_linear_svc", "house_ridge_log_target", "house_polynomial_ridge"]


@pytest.mark.parametrize("name", PIPELINES)
def test_realistic_pipelines_are_certified(name):
    from . import pipelines

    est, df, _ = pipelines.build(name)
    certs, model, conv, domain = certify(est, df, data=df)
    assert certs is not None
    feeds = sample_domain(model, domain, 1000)
    for out, cert in certs.items():
        assert cert.status == CERTIFIED, cert
        if out != "label":
            assert cert.bound >= sampled_difference(model, conv, feeds, out)


def _mutate_initializer(converted, name: str, delta: float):
    import onnx
    from onnx import numpy_helper

    proto = onnx.ModelProto()
    proto.CopyFrom(converted.proto)
    for i, init in enumerate(proto.graph.initializer):
        if init.name == name:
            arr = numpy_helper.to_array(init).copy()
            arr.flat[0] += delta
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
            return portable.load(proto)
    raise AssertionError(f"no initializer {name}")


def test_a_wrong_fill_value_is_refuted_at_a_missing_value():
    """The numeric imputer's fill value changed: the models differ only where a value is missing, and the
    counterexample has NaN there."""
    from . import pipelines

    est, df, _ = pipelines.build("titanic_logistic_regression")
    conv = portable.convert(est, to="onnx", check=False, data=df)
    fill = next(n.input[1] for n in conv.proto.graph.node if n.op_type == "Where"
                and any(i.name == n.input[1] and i.data_type == 1 for i in conv.proto.graph.initializer))
    certs, model, mutated, _ = certify(est, df, converted=_mutate_initializer(conv, fill, 40.0), data=df)
    cert = certs["probabilities"]
    assert cert.status == REFUTED and cert.counterexample["verified"], cert
    assert np.isnan(np.asarray(cert.counterexample["inputs"]["age"], dtype=float)).all()


# -- the mutation benchmark's mutations, through portable.certify ----------------------------------------------------


MUTATED = [("sample", "logreg_binary"), ("sample", "column_transformer_frame"), ("sample", "mlp_classifier"),
           ("pipeline", "titanic_logistic_regression")]
if os.environ.get("PORTABLE_SLOW"):  # the rest of the affine/MLP rows (about a minute more)
    MUTATED += [("sample", "logreg_multiclass"), ("sample", "scaler_pca_logreg"), ("sample", "mlp_regressor"),
                ("pipeline", "house_polynomial_ridge"), ("pipeline", "titanic_integer_column_onehot")]


@pytest.mark.parametrize("table,name", MUTATED)
def test_benchmark_mutations_are_refuted(table, name):
    """Every mutation the mutation benchmark makes (coefficients, intercepts, class labels, categories) that
    changes an output beyond the tolerance on dense rows is refuted with a counterexample both runtimes confirm;
    a certified output never differs beyond its bound."""
    from . import pipelines

    if table == "sample":
        est, X, data = dict(SAMPLE_MODELS)[name]()
    else:
        est, X, _ = pipelines.build(name)
        data = X
    art = portable.convert(est, to="onnx", check=False, data=data)
    model = SklearnModel(est, data=data)
    muts = benchmark_mutations(art, ("coefficient", "intercept", "label", "category"), 2, seed=3)
    assert muts
    for kind, proto in muts:
        mutated = portable.load(proto)
        result = portable.certify(est, mutated, data=X)
        feeds = sample_domain(model, result.domain, 1000)
        a, b = model.run(feeds), mutated.run(feeds)
        for out, cert in result.certificates.items():
            assert cert.method in ("affine", "ibp"), (kind, out, cert)
            if out == "label":  # not counting the near-ties the sampled check excuses
                differs = (np.asarray(a[out]).astype(str) != np.asarray(b[out]).astype(str)) & ~_near_ties(a)
            else:
                differs = np.abs(np.asarray(a[out], float) - np.asarray(b[out], float)) > cert.tolerance
            if cert.status == CERTIFIED and out != "label":
                assert not np.any(differs), (kind, out)
            if np.any(differs):
                assert cert.status == REFUTED and cert.counterexample["verified"], (kind, out, cert)


def _near_ties(outputs) -> np.ndarray:
    """Rows the original decided by a near-tie, as portable.equivalence.compare excuses them (float32
    tolerances): top two probabilities within 2 (atol + rtol top), or a one-column score within tol of 0."""
    kind = "probability" if "probabilities" in outputs else "score"
    v = np.asarray(outputs["probabilities" if kind == "probability" else "scores"], float)
    v = v.reshape(len(v), -1)
    t = tolerance_for(kind, (np.dtype("float64"), np.dtype("float32")))
    if v.shape[1] == 1:
        return np.abs(v[:, 0]) <= t.atol + t.rtol * np.abs(v[:, 0])
    top = np.sort(v, axis=1)
    return top[:, -1] - top[:, -2] <= 2 * (t.atol + t.rtol * top[:, -1])


@pytest.mark.parametrize("nb", ["GaussianNB", "MultinomialNB"])
def test_naive_bayes_bounds_are_sound(nb):
    """Naive Bayes: the joint log-likelihood (quadratic per column for GaussianNB, linear for MultinomialNB) and
    the exp(z - logsumexp z) idiom of the ONNX graph read as a softmax; the bound holds on dense rows."""
    import sklearn.naive_bayes as skn
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    est = getattr(skn, nb)().fit(X, y)
    certs, model, conv, domain = certify(est, X)
    feeds = sample_domain(model, domain, 2000)
    assert certs["probabilities"].method == "affine"
    assert certs["probabilities"].status != REFUTED
    assert certs["probabilities"].bound >= sampled_difference(model, conv, feeds, "probabilities")
