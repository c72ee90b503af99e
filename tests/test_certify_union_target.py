"""Affine readings of two steps unseen models used (issue 19): a FeatureUnion (parallel affine blocks, PCA next
to a SelectKBest, concatenated; with transformer weights) and a TransformedTargetRegressor whose transformer is
an affine scaler (its inverse_transform applied to the regressor's prediction).

Each correct conversion is certified by the affine method, with a bound not below the largest difference found
against scikit-learn on dense rows of the domain and within the tolerance; each coefficient / intercept mutation
that changes an output beyond the tolerance on those rows is refuted with a counterexample both sides reproduce.
"""
from __future__ import annotations

import numpy as np
import pytest

import portable
from portable.certification import CERTIFIED, REFUTED

from .mutants import benchmark_mutations


def _model(name: str):
    from sklearn import compose, decomposition, feature_selection, linear_model, pipeline, preprocessing
    from sklearn.datasets import make_classification, make_regression

    if name.startswith("union"):
        X, y = make_classification(500, 8, n_informative=5, n_classes=3, random_state=5)
        union = pipeline.FeatureUnion([("p", decomposition.PCA(3)), ("k", feature_selection.SelectKBest(k=3))],
                                      transformer_weights={"p": 2.0, "k": 0.5} if name == "union_weighted" else None)
        return pipeline.make_pipeline(union, linear_model.LogisticRegression(max_iter=500)).fit(X, y), X
    X, y = make_regression(500, 6, noise=3, random_state=5)
    scaler = {"ttr_standard": preprocessing.StandardScaler(), "ttr_robust": preprocessing.RobustScaler(),
              "ttr_maxabs": preprocessing.MaxAbsScaler()}[name]
    est = compose.TransformedTargetRegressor(regressor=linear_model.Ridge(), transformer=scaler)
    return est.fit(X, y + 40.0), X


def _dense(result, n: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(0)
    cols = sorted(result.domain.columns.items(), key=lambda kv: kv[0][1])
    return np.stack([rng.uniform(c.lo, c.hi, n) for _, c in cols], axis=1)


def _outputs(est, X: np.ndarray) -> dict[str, np.ndarray]:
    if hasattr(est, "predict_proba"):
        return {"label": est.predict(X), "probabilities": est.predict_proba(X)}
    return {"variable": est.predict(X).astype(np.float64)}


@pytest.mark.parametrize("name", ["union", "union_weighted", "ttr_standard", "ttr_robust", "ttr_maxabs"])
def test_certified_sound_and_mutations_refuted(name: str) -> None:
    est, X = _model(name)
    art = portable.convert(est, to="onnx", dtype="float64", check=False, data=X)
    result = portable.certify(est, art, data=X)
    rows = np.concatenate([_dense(result), X])
    want, got = _outputs(est, rows), art.run({art.signature.inputs[0].name: rows})
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED and cert.method == "affine", (out, cert.reason)
        if out == "label":
            assert np.all(np.asarray(got[out]).reshape(-1) == want[out].reshape(-1))
        else:
            diff = np.abs(np.asarray(got[out], np.float64).reshape(want[out].shape) - want[out]).max()
            assert diff <= cert.bound <= cert.tolerance, (out, diff, cert.bound, cert.tolerance)
    muts = benchmark_mutations(art, ("coefficient", "intercept"), 2, seed=3)
    assert muts
    refuted = 0
    for kind, proto in muts:
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=X)
        b = mutated.run({art.signature.inputs[0].name: rows})
        for out, cert in res.certificates.items():
            if out == "label":
                continue
            differs = np.abs(np.asarray(b[out], np.float64).reshape(want[out].shape) - want[out]) > cert.tolerance
            if cert.status == CERTIFIED:
                assert not np.any(differs), (kind, out)
            if np.any(differs):
                assert cert.status == REFUTED and cert.counterexample["verified"], (kind, out, cert)
                x = np.asarray(cert.counterexample["inputs"][art.signature.inputs[0].name], np.float64)
                w = _outputs(est, x.reshape(1, -1))[out]
                g = np.asarray(mutated.run({art.signature.inputs[0].name: x.reshape(1, -1)})[out], np.float64)
                assert np.abs(g.reshape(w.shape) - w).max() > cert.tolerance
                refuted += 1
    assert refuted, "no mutation was refuted"
