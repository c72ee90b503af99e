"""VotingRegressor / StackingRegressor mixing an affine member (Ridge) and a tree (issue 19).

The `members` method certifies each member with its own method (the Ridge: affine; the tree: trees), reads the
combination after the members from the graph over the box of the members' outputs (each member's range over the
domain: a linear model's over the box, a tree's leaves; widened by its bound) and compares it with scikit-learn's
(a weighted mean; a stacking's final Ridge, passthrough features included). Before, both were "no affine reading:
DecisionTreeRegressor has no affine reading" (cert5: voting_reg_weights, stacking_reg_passthrough).

Compared with scikit-learn's predict and onnxruntime on dense rows of the domain.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable


def _fit(kind: str, seed: int = 5, shift: float = 0.0, depth: int = 4, passthrough: bool = True):
    from sklearn.datasets import make_regression
    from sklearn.ensemble import StackingRegressor, VotingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = make_regression(600, 6, noise=3, random_state=seed)
    y = y + shift
    members = [("a", Ridge()), ("b", DecisionTreeRegressor(max_depth=depth, random_state=seed))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = VotingRegressor(members, weights=[2, 1]) if kind == "voting" else \
            StackingRegressor(members, final_estimator=Ridge(), passthrough=passthrough)
        est.fit(X, y)
        art = portable.convert(est, "onnx", data=X, check=False)
    return est, art, X


def _dense(dom, n: int, seed: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = dom.box("X", width)
    x = rng.uniform(lo, hi, (n, width))
    x[: n // 10] = np.where(rng.random((n // 10, width)) < 0.5, lo, hi)
    return x


def _diff(est, art, x: np.ndarray) -> np.ndarray:
    x32 = x.astype(np.float32)
    got = np.asarray(art.run({"X": x32})["variable"], np.float64).reshape(-1)
    return np.abs(got - est.predict(x32.astype(np.float64)))


@pytest.mark.parametrize("kind", ["voting", "stacking"])
def test_mixed_regressor_certified_away_from_zero_and_bound_holds(kind: str) -> None:
    """Predictions that stay far from 0 over the domain: the certificate's tolerance scales with them."""
    est, art, X = _fit(kind, shift=5_000.0)
    res = portable.certify(est, art, data=X)
    cert = res.certificates["variable"]
    assert cert.status == "certified" and cert.method == "members", cert.reason
    assert _diff(est, art, _dense(res.domain, 20_000, 1, X.shape[1])).max() <= cert.bound


@pytest.mark.parametrize("kind", ["voting", "stacking"])
def test_mixed_regressor_bound_through_zero_within_the_checks_tolerance(kind: str) -> None:
    """Predictions through 0: `portable.certify` proves a bound (loose against 1e-4 at output 0, where float32
    rounding of the Ridge's dot product alone may exceed it); `check --certify`, with the check's own scaled
    tolerance, certifies it."""
    est, art, X = _fit(kind)
    res = portable.certify(est, art, data=X)
    cert = res.certificates["variable"]
    assert cert.method == "members" and cert.bound is not None, cert.reason
    assert _diff(est, art, _dense(res.domain, 20_000, 2, X.shape[1])).max() <= cert.bound
    report = portable.check(est, art, data=X, certify=True)
    out = next(o for o in report.to_dict()["outputs"] if o["name"] == "variable")
    assert out["certificate"]["status"] == "certified", out["certificate"]["reason"]


def _mutate(proto, what: str):
    """A changed Ridge coefficient (the LinearRegressor's first one, +5%), a changed tree leaf (+50, beyond the tolerance at predictions near 5,000), or a moved
    tree threshold (+0.5)."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    if what == "coefficient":
        node = next(n for n in m.graph.node if n.op_type == "LinearRegressor")
        at = next(a for a in node.attribute if a.name == "coefficients")
        vals = list(at.floats)
        vals[0] *= 1.05
        node.attribute.remove(at)
        node.attribute.append(helper.make_attribute("coefficients", vals))
        return m
    node = next(n for n in m.graph.node if n.op_type.startswith("TreeEnsemble"))
    name = "target_weights" if what == "leaf" else "nodes_values"
    at = next(a for a in node.attribute if a.name in (name, name + "_as_tensor"))
    if at.type == onnx.AttributeProto.TENSOR:
        v = numpy_helper.to_array(at.t).copy()
    else:
        v = np.asarray(at.floats, np.float32).copy()
    modes = next((a for a in node.attribute if a.name == "nodes_modes"), None)
    k = 0
    if what == "threshold" and modes is not None:
        k = next(i for i, md in enumerate(modes.strings) if md != b"LEAF")
    v[k] += 50.0 if what == "leaf" else 0.5
    node.attribute.remove(at)
    node.attribute.append(helper.make_attribute(at.name, [float(x) for x in v]) if at.type != onnx.AttributeProto.TENSOR
                          else helper.make_attribute(at.name, numpy_helper.from_array(v)))
    return m


@pytest.mark.parametrize("kind", ["voting", "stacking"])
@pytest.mark.parametrize("what", ["coefficient", "leaf", "threshold"])
def test_mixed_regressor_mutations_refuted_with_counterexamples_scikit_learn_reproduces(kind: str, what: str) -> None:
    est, art, X = _fit(kind, shift=5_000.0)
    mutated = portable.load(_mutate(art.proto, what))
    res = portable.certify(est, mutated, data=X)
    cert = res.certificates["variable"]
    if cert.status == "certified":  # the change stays within the tolerance everywhere: no row differs beyond it
        # (a stacking's final Ridge weighs the tree's prediction little: +50 on a leaf moves it by less)
        assert (kind, what) in (("stacking", "leaf"), ("voting", "threshold"), ("stacking", "threshold"))
        assert _diff(est, mutated, _dense(res.domain, 20_000, 3, X.shape[1])).max() <= cert.bound
        return
    assert cert.status == "refuted", cert.reason
    assert cert.counterexample["verified"] is True
    row = np.asarray(cert.counterexample["inputs"]["X"], np.float64).reshape(1, -1)
    assert _diff(est, mutated, row)[0] > cert.tolerance


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["voting", "stacking"]), depth=st.integers(1, 6),
       shift=st.sampled_from([0.0, 3_000.0]), passthrough=st.booleans())
def test_mixed_regressor_certificate_sound_against_dense_sampling(seed: int, kind: str, depth: int, shift: float,
                                                                  passthrough: bool) -> None:
    est, art, X = _fit(kind, seed, shift, depth, passthrough)
    res = portable.certify(est, art, data=X)
    cert = res.certificates["variable"]
    assert cert.method == "members" and cert.bound is not None, cert.reason
    assert _diff(est, art, _dense(res.domain, 5_000, seed, X.shape[1])).max() <= cert.bound


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
