"""KBinsDiscretizer one-hot ('onehot', 'onehot-dense') before a linear model, certified by the tree method
(issue 19): each column's bins are a chain of splits at its edges whose leaves hold the linear model's
coefficients (`portable.certification.binned`). Before: "no affine reading: the step KBinsDiscretizer has no
affine reading". Compared with scikit-learn and onnxruntime on dense rows of the domain, including every bin edge
and the float32 values either side of it; mutated artifacts (coefficients, intercepts, an edge moved by one
float32 step) are refuted with a counterexample both libraries reproduce.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

from .mutants import benchmark_mutations
from .test_certify_kbins import _dense


def _fit(kind: str, seed: int = 0, strategy: str = "quantile", bins: int = 5, encode: str = "onehot",
         dtype: str = "float32"):
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import KBinsDiscretizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kb = KBinsDiscretizer(bins, encode=encode, strategy=strategy)
        if kind == "regression":
            X, y = make_regression(500, 5, noise=5.0, random_state=seed)
            est = make_pipeline(kb, Ridge()).fit(X, y)
        else:
            classes = 2 if kind == "binary" else 3
            X, y = make_classification(500, 6, n_informative=4, n_classes=classes, random_state=seed)
            est = make_pipeline(kb, LogisticRegression(max_iter=2000)).fit(X, y)
        art = portable.convert(est, "onnx", data=X, check=False, dtype=dtype)
    return est, art, X


def _out(est) -> str:
    return "probabilities" if hasattr(est, "classes_") else "variable"


def _diff(est, art, x: np.ndarray) -> np.ndarray:
    """Per row, the largest |scikit-learn - onnxruntime| of the numeric output, on the values the artifact reads."""
    dt = art.signature.inputs[0].dtype
    xs = x.astype(dt).astype(np.float64)
    want = est.predict_proba(xs) if hasattr(est, "classes_") else est.predict(xs)
    got = np.asarray(art.run({"X": xs.astype(dt)})[_out(est)], np.float64)
    return np.abs(got.reshape(len(x), -1) - np.asarray(want, np.float64).reshape(len(x), -1)).max(axis=1)


def _beyond(est, art, x: np.ndarray) -> np.ndarray:
    """Per row: the numeric output differs beyond the sampled check's float32 tolerance (atol + rtol |value|,
    atol unscaled: the certificate's own rule near small outputs)."""
    from portable.equivalence.compare import tolerance_for

    dt = art.signature.inputs[0].dtype
    xs = x.astype(dt).astype(np.float64)
    want = np.asarray(est.predict_proba(xs) if hasattr(est, "classes_") else est.predict(xs), np.float64)
    got = np.asarray(art.run({"X": xs.astype(dt)})[_out(est)], np.float64).reshape(want.shape)
    t = tolerance_for("probability" if hasattr(est, "classes_") else "value", (np.dtype(dt), np.dtype("float64")))
    return (np.abs(got - want) - (t.atol + t.rtol * np.abs(want))).reshape(len(x), -1).max(axis=1) > 1e-12


def _labels_outside_ties(est, art, x: np.ndarray, margin: float) -> int:
    """Rows whose labels differ although the decision margin exceeds `margin`."""
    xs = x.astype(np.float32).astype(np.float64)
    got = np.asarray(art.run({"X": xs.astype(art.signature.inputs[0].dtype)})["label"]).reshape(-1)
    dec = np.asarray(est.decision_function(xs), np.float64)
    top = np.sort(dec, axis=1) if dec.ndim == 2 else None
    gap = np.abs(dec) if top is None else top[:, -1] - top[:, -2]
    return int(np.sum((got != est.predict(xs)) & (gap > margin)))


@pytest.mark.parametrize("kind,encode,strategy,dtype", [
    ("binary", "onehot", "quantile", "float32"),
    ("multiclass", "onehot-dense", "kmeans", "float32"),
    ("regression", "onehot-dense", "uniform", "float32"),
    ("regression", "onehot", "quantile", "float64"),
    ("binary", "onehot-dense", "uniform", "float64"),
    ("multiclass", "onehot", "quantile", "float64"),
])
def test_kbins_onehot_linear_certified_and_bound_holds(kind, encode, strategy, dtype) -> None:
    est, art, X = _fit(kind, 0, strategy, 5, encode, dtype)
    res = portable.certify(est, art, data=X)
    for out, cert in res.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.status, cert.reason)
    x = _dense(res.domain, 5_000, 1, X, est)
    assert not _beyond(est, art, x).any()
    if kind == "regression":  # an identity output's bound holds on every row (a logistic or softmax output's is
        # the bound where the difference comes closest to the tolerance)
        assert _diff(est, art, x).max() <= res.certificates[_out(est)].bound
    if "label" in res.certificates:
        assert _labels_outside_ties(est, art, x, 1e-3) == 0


def _move_edge_one_step(proto):
    """The artifact with one inner edge one float32 step lower: the float32 value just below the edge now goes
    to the upper bin (scikit-learn: the lower one)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    ge = next(n for n in m.graph.node if n.op_type == "GreaterOrEqual")
    init = next(i for i in m.graph.initializer if i.name == ge.input[1])
    e = numpy_helper.to_array(init).copy()
    e[0, 0, 1] = np.nextafter(e[0, 0, 1], np.array(-np.inf, e.dtype))
    init.CopyFrom(numpy_helper.from_array(e, init.name))
    return m


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_kbins_onehot_mutations_refuted_with_counterexamples_scikit_learn_reproduces(kind) -> None:
    est, art, X = _fit(kind, 0, "quantile", 5, "onehot-dense")
    muts = benchmark_mutations(art, ("coefficient", "intercept"), 2, seed=4) + [("edge", _move_edge_one_step(art.proto))]
    refuted = {}
    for mkind, proto in muts:
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=X)
        cert = res.certificates[_out(est)]
        if cert.status != "refuted":  # certified, or a bound too loose to say: no dense row differs beyond the
            # tolerance (a mutation within it is not a wrong conversion)
            assert not _beyond(est, mutated, _dense(res.domain, 20_000, 2, X, est)).any(), (mkind, cert.status,
                                                                                             cert.reason)
            continue
        assert cert.counterexample["verified"]
        refuted[mkind] = refuted.get(mkind, 0) + 1
        row = np.asarray(cert.counterexample["inputs"]["X"], np.float64).reshape(1, -1)
        assert _diff(est, mutated, row)[0] > cert.tolerance, mkind
    assert refuted.get("coefficient") and refuted.get("edge"), refuted


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["binary", "multiclass", "regression"]),
       strategy=st.sampled_from(["uniform", "quantile", "kmeans"]), bins=st.integers(2, 7),
       encode=st.sampled_from(["onehot", "onehot-dense"]), dtype=st.sampled_from(["float32", "float64"]))
def test_kbins_onehot_certificate_sound_against_dense_sampling(seed, kind, strategy, bins, encode, dtype) -> None:
    est, art, X = _fit(kind, seed, strategy, bins, encode, dtype)
    res = portable.certify(est, art, data=X)
    cert = res.certificates[_out(est)]
    assert cert.bound is not None, cert.reason
    x = _dense(res.domain, 3_000, seed, X, est)
    if cert.status == "certified":
        assert not _beyond(est, art, x).any()
    if kind == "regression":
        assert _diff(est, art, x).max() <= cert.bound


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
