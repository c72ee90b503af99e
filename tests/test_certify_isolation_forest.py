"""IsolationForest certificates (issue 19): the trees' path lengths (depth + c(samples in the leaf) - 1) summed,
`decision_function = -2^(-sum / (T c(max_samples))) - offset_`, and `predict` -1 where that is negative.

Before, the original had no tree reading ("not a tree ensemble portable can read in full") and the converted graph's
`Pow` / `Less` / `Where` after its trees were not followed: both outputs were not certifiable. Everything is
compared with scikit-learn (decision_function, predict) and onnxruntime on the artifact.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

from .mutants import benchmark_mutations


def _fit(seed: int, n_estimators: int = 40, max_features: float = 1.0, max_samples: object = "auto"):
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0, 1, (400, 5)), rng.uniform(-6, 6, (40, 5))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = IsolationForest(n_estimators=n_estimators, max_features=max_features, max_samples=max_samples,
                              random_state=seed).fit(X)
        art = portable.convert(est, "onnx", data=X, check=False)
    return est, art, X


def _dense(dom, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = dom.box("X", 5)
    x = rng.uniform(lo, hi, (n, 5))
    x[: n // 10] = np.where(rng.random((n // 10, 5)) < 0.5, lo, hi)  # corners
    return x


def _onnx(art, x: np.ndarray) -> dict[str, np.ndarray]:
    return art.run({"X": x.astype(np.float32)})


def test_isolation_forest_certified_and_bound_holds() -> None:
    est, art, X = _fit(0)
    res = portable.certify(est, art, data=X)
    for out, cert in res.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.reason)
    x = _dense(res.domain, 20_000, 1)
    got = _onnx(art, x)
    want = est.decision_function(x.astype(np.float32))
    diff = np.abs(np.asarray(got["scores"], np.float64).reshape(-1) - want).max()
    assert diff <= res.certificates["scores"].bound
    # labels agree except where the decision is within the proved bound of 0 (a near-tie)
    bad = np.asarray(got["label"]).reshape(-1) != est.predict(x.astype(np.float32))
    assert np.all(np.abs(want[bad]) <= res.certificates["scores"].bound)


def test_isolation_forest_feature_subsets_certified() -> None:
    est, art, X = _fit(3, n_estimators=25, max_features=0.6, max_samples=128)
    res = portable.certify(est, art, data=X)
    for out, cert in res.certificates.items():
        assert cert.status == "certified", (out, cert.reason)
    x = _dense(res.domain, 10_000, 2)
    diff = np.abs(np.asarray(_onnx(art, x)["scores"], np.float64).reshape(-1) -
                  est.decision_function(x.astype(np.float32))).max()
    assert diff <= res.certificates["scores"].bound


def test_isolation_forest_mutations_refuted_with_verified_counterexamples() -> None:
    est, art, X = _fit(0)
    refuted = {}
    for kind, proto in benchmark_mutations(art, ("threshold", "leaf"), 3, seed=5):
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=X)
        cert = res.certificates["scores"]
        if cert.status != "refuted":
            assert cert.status == "certified", (kind, cert.reason)
            x = _dense(res.domain, 5_000, 3)
            assert np.abs(np.asarray(_onnx(mutated, x)["scores"], np.float64).reshape(-1) -
                          est.decision_function(x.astype(np.float32))).max() <= cert.bound
            continue
        refuted[kind] = refuted.get(kind, 0) + 1
        row = np.asarray(cert.counterexample["inputs"]["X"], np.float64).reshape(1, -1)
        assert cert.counterexample["verified"] is True
        d = abs(float(np.ravel(_onnx(mutated, row)["scores"])[0]) - float(est.decision_function(
            row.astype(np.float32))[0]))
        assert d > cert.tolerance, (kind, d)
    assert refuted.get("threshold") and refuted.get("leaf"), refuted


def test_isolation_forest_changed_offset_refuted() -> None:
    """The offset (the predict threshold) written wrong: scores and labels part everywhere."""
    import onnx
    from onnx import numpy_helper

    est, art, X = _fit(0)
    m = onnx.ModelProto()
    m.CopyFrom(art.proto)
    sub = next(n for n in m.graph.node if n.op_type == "Sub")
    init = next(i for i in m.graph.initializer if i.name == sub.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(0.01), init.name))
    res = portable.certify(est, portable.load(m), data=X)
    assert res.certificates["scores"].status == "refuted"
    assert res.certificates["scores"].counterexample["verified"] is True


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30), feats=st.sampled_from([1.0, 0.6]))
def test_isolation_forest_certificate_sound_against_dense_sampling(seed: int, n: int, feats: float) -> None:
    est, art, X = _fit(seed, n_estimators=n, max_features=feats)
    res = portable.certify(est, art, data=X)
    cert = res.certificates["scores"]
    assert cert.bound is not None, cert.reason
    x = _dense(res.domain, 5_000, seed)
    diff = np.abs(np.asarray(_onnx(art, x)["scores"], np.float64).reshape(-1) -
                  est.decision_function(x.astype(np.float32))).max()
    assert diff <= cert.bound
    assert cert.status == "certified", cert.reason


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
