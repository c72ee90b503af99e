"""KBinsDiscretizer (ordinal) before trees, certified by the tree method (issue 19).

A tree split on a bin code is a threshold on the raw value at one of the bin edges (the code is the number of
inner edges <= x, compared exactly: scikit-learn's searchsorted of the float64 edges, portable's GreaterOrEqual
against the edges rounded up to the graph's dtype). Before, neither reading followed the discretizer ("no affine
reading: the step KBinsDiscretizer has no affine reading", "the converted model is not a tree ensemble portable can
read in full"). Compared with scikit-learn and onnxruntime on dense rows of the domain.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

from .mutants import benchmark_mutations


def _fit(seed: int, strategy: str = "kmeans", bins: int = 4, dtype: str = "float32", forest: bool = False):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import KBinsDiscretizer
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(600, 6, n_informative=4, n_classes=3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RandomForestClassifier(10, max_depth=5, random_state=seed) if forest else \
            DecisionTreeClassifier(max_depth=5, random_state=seed)
        est = make_pipeline(KBinsDiscretizer(bins, encode="ordinal", strategy=strategy), model).fit(X, y)
        art = portable.convert(est, "onnx", data=X, check=False, dtype=dtype)
    return est, art, X


def _dense(dom, n: int, seed: int, X: np.ndarray, est) -> np.ndarray:
    """Random rows of the box, plus rows at each bin edge and the float32 values either side of it."""
    rng = np.random.default_rng(seed)
    lo, hi = dom.box("X", X.shape[1])
    x = rng.uniform(lo, hi, (n, X.shape[1]))
    edges = est.steps[0][1].bin_edges_
    for j, e in enumerate(edges):
        for v in e[1:-1]:
            near = np.array([np.nextafter(np.float32(v), np.float32(-np.inf)), np.float32(v),
                             np.nextafter(np.float32(v), np.float32(np.inf)), v], np.float64)
            rows = x[rng.integers(0, n, len(near))].copy()
            rows[:, j] = near
            x = np.r_[x, rows]
    return np.clip(x, lo, hi)


def _proba_diff(est, art, x: np.ndarray) -> float:
    xs = x.astype(np.float32).astype(np.float64) if art.signature.inputs[0].dtype == "float32" else x
    got = np.asarray(art.run({"X": xs.astype(art.signature.inputs[0].dtype)})["probabilities"], np.float64)
    return float(np.abs(got - est.predict_proba(xs)).max())


@pytest.mark.parametrize("strategy", ["uniform", "quantile", "kmeans"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kbins_ordinal_tree_certified_and_bound_holds(strategy: str, dtype: str) -> None:
    est, art, X = _fit(0, strategy, dtype=dtype, forest=strategy == "quantile")
    res = portable.certify(est, art, data=X)
    for out, cert in res.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.reason)
    assert _proba_diff(est, art, _dense(res.domain, 5_000, 1, X, est)) <= res.certificates["probabilities"].bound


def _move_edge(proto, by: float):
    """The artifact with one bin edge of the discretizer moved (`by` of the column's scale)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    ge = next(n for n in m.graph.node if n.op_type == "GreaterOrEqual")
    init = next(i for i in m.graph.initializer if i.name == ge.input[1])
    e = numpy_helper.to_array(init).copy()
    e[0, 0, 1] += by
    init.CopyFrom(numpy_helper.from_array(e, init.name))
    return m


def test_kbins_tree_mutations_refuted_with_counterexamples_scikit_learn_reproduces() -> None:
    est, art, X = _fit(0)
    muts = benchmark_mutations(art, ("threshold", "leaf"), 2, seed=4) + [("edge", _move_edge(art.proto, 0.3))]
    refuted = {}
    for kind, proto in muts:
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=X)
        cert = res.certificates["probabilities"]
        if cert.status == "certified":  # then no row of the domain differs beyond the bound
            assert _proba_diff(est, mutated, _dense(res.domain, 5_000, 2, X, est)) <= cert.bound, kind
            continue
        assert cert.status == "refuted", (kind, cert.reason)
        refuted[kind] = refuted.get(kind, 0) + 1
        row = np.asarray(cert.counterexample["inputs"]["X"], np.float64).reshape(1, -1)
        assert _proba_diff(est, mutated, row) > cert.tolerance, kind
    assert refuted.get("leaf") and refuted.get("edge"), refuted


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), strategy=st.sampled_from(["uniform", "quantile", "kmeans"]),
       bins=st.integers(2, 7), dtype=st.sampled_from(["float32", "float64"]))
def test_kbins_tree_certificate_sound_against_dense_sampling(seed: int, strategy: str, bins: int,
                                                             dtype: str) -> None:
    est, art, X = _fit(seed, strategy, bins, dtype)
    res = portable.certify(est, art, data=X)
    cert = res.certificates["probabilities"]
    assert cert.bound is not None, cert.reason
    assert _proba_diff(est, art, _dense(res.domain, 3_000, seed, X, est)) <= cert.bound
    assert cert.status == "certified", cert.reason


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
