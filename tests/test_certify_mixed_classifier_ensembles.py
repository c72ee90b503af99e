"""Classifier ensembles mixing tree and linear members, fitted and converted as a user would (make_classification,
`portable.convert(est, "onnx", data=X)`, float32), certified with `portable.certify(est, artifact, data=X)`
(issue 19):

- a soft VotingClassifier (random forest + scaled logistic regression) and a StackingClassifier (random forest +
  logistic regression, final logistic regression) are certified by the members method: no row of dense samples
  of the domain differs beyond the tolerance, and labels agree outside near-ties; an artifact with a member's
  coefficient or a tree leaf changed is refuted with a counterexample both libraries reproduce;
- a hard VotingClassifier (decision tree + logistic regression + gradient boosting) is not certified (its label
  is a majority of the members' labels, nothing is proved), but an artifact whose logistic member votes the other
  way is refuted with a verified counterexample (random points of the domain run through both models; before:
  "not certifiable", nothing was tried).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable
from portable.equivalence.compare import tolerance_for

from .mutants import benchmark_mutations


def _fit(kind: str):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import (GradientBoostingClassifier, RandomForestClassifier, StackingClassifier,
                                  VotingClassifier)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, random_state=0)
    rf = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "soft_voting":
            est = VotingClassifier([("rf", rf), ("lr", make_pipeline(StandardScaler(), LogisticRegression()))],
                                   voting="soft")
        elif kind == "stacking":
            est = StackingClassifier([("rf", rf), ("lr", LogisticRegression())], final_estimator=LogisticRegression())
        else:
            est = VotingClassifier([("dt", DecisionTreeClassifier(max_depth=4, random_state=0)),
                                    ("lr", LogisticRegression()),
                                    ("gb", GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0))],
                                   voting="hard")
        est.fit(X, y)
        art = portable.convert(est, "onnx", data=X)
    return est, art, X


def _rows(res, X: np.ndarray, n: int, seed: int) -> np.ndarray:
    lo, hi = res.domain.box("X", X.shape[1])
    return np.random.default_rng(seed).uniform(lo, hi, (n, X.shape[1])).astype(np.float32)


def _beyond(est, art, x: np.ndarray) -> int:
    """Rows whose probabilities differ beyond the check's float32 tolerance."""
    want = est.predict_proba(x.astype(np.float64))
    got = np.asarray(art.run({"X": x})["probabilities"], np.float64)
    t = tolerance_for("probability", (np.dtype("float32"), np.dtype("float64")))
    return int(np.sum((np.abs(got - want) > t.atol + t.rtol * np.abs(want)).any(axis=1)))


@pytest.mark.parametrize("kind", ["soft_voting", "stacking"])
def test_soft_voting_and_stacking_of_trees_and_linear_members_certified(kind) -> None:
    est, art, X = _fit(kind)
    res = portable.certify(est, art, data=X)
    for out, cert in res.certificates.items():
        assert cert.status == "certified" and cert.method == "members", (out, cert.status, cert.reason)
    x = _rows(res, X, 20_000, 1)
    assert _beyond(est, art, x) == 0
    p = est.predict_proba(x.astype(np.float64))
    top = np.sort(p, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-3
    got = np.asarray(art.run({"X": x})["label"]).reshape(-1)
    assert np.all(got[clear] == est.predict(x.astype(np.float64))[clear])


@pytest.mark.parametrize("kind", ["soft_voting", "stacking"])
def test_mutated_member_of_a_mixed_ensemble_is_refuted(kind) -> None:
    est, art, X = _fit(kind)
    refuted = 0
    for mkind, proto in benchmark_mutations(art, ("coefficient", "leaf"), 2, seed=3):
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=X)
        cert = res.certificates["probabilities"]
        if cert.status != "refuted":  # then no dense row differs beyond the tolerance
            assert _beyond(est, mutated, _rows(res, X, 20_000, 2)) == 0, (mkind, cert.status, cert.reason)
            continue
        refuted += 1
        assert cert.counterexample["verified"]
        row = np.asarray(cert.counterexample["inputs"]["X"], np.float32).reshape(1, -1)
        assert _beyond(est, mutated, row) == 1, mkind
    assert refuted >= 2


def _flip_linear_member(proto):
    """The artifact with its LinearClassifier member's coefficients and intercepts negated: it votes the other
    way."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    node = next(n for n in m.graph.node if n.op_type == "LinearClassifier")
    for a in node.attribute:
        if a.name in ("coefficients", "intercepts"):
            vals = [-v for v in a.floats]
            del a.floats[:]
            a.floats.extend(vals)
    return m


def test_hard_voting_not_certified_and_a_flipped_member_refuted() -> None:
    est, art, X = _fit("hard_voting")
    res = portable.certify(est, art, data=X)
    cert = res.certificates["label"]
    assert cert.status == "not certifiable" and "hard" in cert.reason, (cert.status, cert.reason)
    mutated = portable.load(_flip_linear_member(art.proto))
    res = portable.certify(est, mutated, data=X)
    cert = res.certificates["label"]
    assert cert.status == "refuted" and cert.counterexample["verified"], (cert.status, cert.reason)
    row = np.asarray(cert.counterexample["inputs"]["X"], np.float32).reshape(1, -1)
    assert np.asarray(mutated.run({"X": row})["label"]).reshape(-1)[0] != est.predict(row.astype(np.float64))[0]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
