"""Certification method `ibp` (issue 19): interval bound propagation through an MLP and its ONNX conversion.
The proved bound is never below the largest difference scikit-learn and onnxruntime show on dense samples."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable
from portable.certification.core import CERTIFIED, REFUTED, Domain, DomainColumn
from portable.certification.ibp import certify_ibp
from portable.formats.sklearn import SklearnModel

from .sample_models import SAMPLE_MODELS, inputs_for
from .test_certify_affine import context_of, domain_of, sample_domain, sampled_difference


def _certify(est, X, conv, domain, data=None):
    model = SklearnModel(est, data=data)
    return certify_ibp(model, conv, domain, context_of(model, conv, inputs_for(model, X))), model


@pytest.mark.parametrize("name", ["mlp_classifier", "mlp_regressor"])
def test_sample_mlps(name):
    est, X, data = dict(SAMPLE_MODELS)[name]()
    conv = portable.convert(est, to="onnx", check=False, data=data)
    model = SklearnModel(est, data=data)
    domain = domain_of(model, X)
    certs, model = _certify(est, X, conv, domain, data)
    assert certs is not None and all(c.method == "ibp" for c in certs.values())
    feeds = sample_domain(model, domain, 2000)
    for out, cert in certs.items():
        assert cert.status != REFUTED, cert
        if out != "label":
            assert cert.bound >= sampled_difference(model, conv, feeds, out)
        assert cert.status == CERTIFIED, cert


def test_mutated_weight_is_refuted():
    est, X, data = dict(SAMPLE_MODELS)["mlp_regressor"]()
    conv = portable.convert(est, to="onnx", check=False, data=data)
    import onnx
    from onnx import numpy_helper

    proto = onnx.ModelProto()
    proto.CopyFrom(conv.proto)
    for i, init in enumerate(proto.graph.initializer):
        if init.name == "intercepts1":
            arr = numpy_helper.to_array(init).copy()
            arr.flat[0] += 5.0
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    mutated = portable.load(proto)
    model = SklearnModel(est, data=data)
    certs, _ = _certify(est, X, mutated, domain_of(model, X), data)
    assert certs["variable"].status == REFUTED and certs["variable"].counterexample["verified"]


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), act=st.sampled_from(["relu", "tanh", "logistic"]),
       classifier=st.booleans(), mutate=st.booleans())
def test_bound_is_sound(seed, act, classifier, mutate):
    warnings.filterwarnings("ignore")
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(seed)
    f = int(rng.integers(2, 5))
    X = rng.normal(0, 1, (120, f)) * rng.uniform(0.5, 3, f)
    hidden = tuple(int(h) for h in rng.integers(2, 8, int(rng.integers(1, 3))))
    if classifier:
        y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 1] > 0) * (seed % 2)
        est = MLPClassifier(hidden_layer_sizes=hidden, activation=act, max_iter=200, random_state=seed).fit(X, y)
    else:
        est = MLPRegressor(hidden_layer_sizes=hidden, activation=act, max_iter=200, random_state=seed)
        est.fit(X, X @ rng.normal(size=f))
    conv = portable.convert(est, to="onnx", check=False)
    if mutate:
        conv = _mutate_initializer(conv, rng)
    lo, hi = X.min(axis=0), X.max(axis=0)
    domain = Domain({("X", j): DomainColumn(lo=float(lo[j]), hi=float(hi[j])) for j in range(f)}, "user")
    certs, model = _certify(est, X, conv, domain)
    feeds = sample_domain(model, domain, 3000, seed)
    name = "probabilities" if classifier else "variable"
    assert certs[name].bound >= sampled_difference(model, conv, feeds, name)


def _mutate_initializer(conv, rng):
    import onnx
    from onnx import numpy_helper

    proto = onnx.ModelProto()
    proto.CopyFrom(conv.proto)
    inits = [i for i, t in enumerate(proto.graph.initializer) if t.name.startswith("coefficient")]
    i = inits[int(rng.integers(0, len(inits)))]
    init = proto.graph.initializer[i]
    arr = numpy_helper.to_array(init).copy()
    arr.flat[int(rng.integers(0, arr.size))] *= 1.0 + rng.uniform(0.01, 0.5)
    proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    return portable.load(proto)


@pytest.mark.parametrize("name", ["svr", "svc_scores_binary"])
def test_rbf_svms_are_sound(name):
    """RBF kernels are read (a separable quadratic per support vector, then exp): the bound holds on dense rows.
    (With hundreds of support vectors the worst-case float32 dot-product bound exceeds the tolerance, so these
    conversions are not certifiable, never refuted.)"""
    est, X, data = dict(SAMPLE_MODELS)[name]()
    conv = portable.convert(est, to="onnx", check=False)
    model = SklearnModel(est)
    domain = domain_of(model, X)
    certs, model = _certify(est, X, conv, domain)
    feeds = sample_domain(model, domain, 1000)
    for out, cert in certs.items():
        assert cert.method == "ibp" and cert.status != REFUTED, cert
        if out != "label":
            assert cert.bound >= sampled_difference(model, conv, feeds, out)


def test_rbf_svc_mutation_is_refuted():
    import onnx
    from onnx import numpy_helper

    est, X, _ = dict(SAMPLE_MODELS)["svc_scores_binary"]()
    conv = portable.convert(est, to="onnx", check=False)
    proto = onnx.ModelProto()
    proto.CopyFrom(conv.proto)
    for i, init in enumerate(proto.graph.initializer):  # one dual coefficient, 1% off
        arr = numpy_helper.to_array(init)
        if arr.ndim == 2 and arr.shape[1] == 1 and arr.shape[0] > 10:
            arr = arr.copy()
            arr[3] *= 1.01
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
            break
    result = portable.certify(est, portable.load(proto), data=X)
    assert result.certificates["scores"].status == REFUTED
    assert result.certificates["scores"].counterexample["verified"]


@pytest.mark.parametrize("name", ["svr", "mlp_regressor"])
def test_uncertified_hidden_programs_say_what_stops_them(name):
    """svr and mlp_regressor (float32) stay not certifiable; the reason names the rounding bound alone against the
    unscaled tolerance and the output range proved through the hidden units, and that range really is looser than
    what dense rows show (it reaches 0; the sampled outputs stay above 1)."""
    import re

    warnings.filterwarnings("ignore")
    est, X, data = dict(SAMPLE_MODELS)[name]()
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=data)
    cert = portable.certify(est, art, data=data).certificates["variable"]
    assert cert.status == "not certifiable"
    m = re.search(r"rounding alone \(([-0-9.e]+).*output range proved through the hidden units, \[([-0-9.e]+), "
                  r"([-0-9.e]+)\]", cert.reason)
    assert m, cert.reason
    rounding, lo, hi = (float(g) for g in m.groups())
    assert rounding > cert.tolerance and lo <= 0.0 <= hi
    rows = np.random.default_rng(0).uniform(np.min(X, 0), np.max(X, 0), (20000, np.shape(X)[1]))
    y = est.predict(rows)
    assert lo <= y.min() and y.max() <= hi and y.min() > 1.0
