"""Certificates for tree models whose outputs go through a link other than the identity, or whose converted
graph fills missing values with a constant before its trees (issue 19, unseen models):

- XGBoost `reg:logistic` and XGBRFClassifier (random forests in XGBoost, num_parallel_tree > 1) on data with NaN:
  portable's graph reads NaN as the lowest float32 (`Where(IsNaN(x), lowest, x)`), so a missing value goes where
  that constant goes at each split (the reading took the Where for the identity and paired NaN cells wrongly:
  bounds 3.08 and 2.3);
- log links (`count:poisson`, LightGBM `poisson`): the prediction is exp(raw), crossed with its slope;
- GradientBoostingClassifier(loss="exponential"): probabilities logistic(2 raw), label raw >= 0.

Each correct conversion is certified, and its bound is not below the largest difference found against the real
library on dense samples of the domain (NaN included where the domain holds it) and within the tolerance; a
mutated artifact (one leaf value changed) is refuted with a counterexample the real library and onnxruntime
reproduce.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable

from .mutants import benchmark_mutations


def _data(nan: bool) -> np.ndarray:
    from sklearn.datasets import make_classification

    X, y = make_classification(600, 6, n_informative=4, n_classes=3, random_state=3)
    X = X.astype(np.float32)
    if nan:
        X[np.random.default_rng(1).random(X.shape) < 0.08] = np.nan
    return X, y


def _model(name: str) -> tuple[object, np.ndarray]:
    from sklearn.ensemble import GradientBoostingClassifier

    if name.startswith(("xgb", "lgbm")):
        pytest.importorskip("xgboost" if name.startswith("xgb") else "lightgbm")
    X, y = _data(nan=name in ("xgb_reg_logistic", "xgbrf_classifier", "lgbm_poisson"))
    count = np.abs(np.nan_to_num(X[:, 0]) * 2).round() + (y == 1)
    if name == "xgb_reg_logistic":
        import xgboost

        est = xgboost.XGBRegressor(n_estimators=20, max_depth=4, objective="reg:logistic").fit(X, (y == 1) * 1.0)
    elif name == "xgbrf_classifier":
        import xgboost

        est = xgboost.XGBRFClassifier(n_estimators=8, max_depth=4).fit(X, y)
    elif name == "xgb_poisson":
        import xgboost

        est = xgboost.XGBRegressor(n_estimators=6, max_depth=3, objective="count:poisson").fit(X, count)
    elif name == "lgbm_poisson":
        import lightgbm

        est = lightgbm.LGBMRegressor(n_estimators=20, objective="poisson", verbose=-1).fit(X, count)
    else:
        est = GradientBoostingClassifier(loss="exponential", subsample=0.7, n_estimators=30,
                                         random_state=0).fit(X, (y == 1).astype(int))
    return est, X


def _outputs(est: object, X: np.ndarray) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(est, "predict_proba"):
            return {"label": np.asarray(est.predict(X)), "probabilities": np.asarray(est.predict_proba(X), np.float64)}
        return {"variable": np.asarray(est.predict(X), np.float64)}


def _dense(result: portable.certification.driver.Certification, n: int = 20000) -> np.ndarray:
    rng = np.random.default_rng(0)
    cols = sorted(result.domain.columns.items(), key=lambda kv: kv[0][1])
    X = np.empty((n, len(cols)), np.float32)
    for j, (_, c) in enumerate(cols):
        X[:, j] = rng.uniform(c.lo, c.hi, n)
        if c.nan:
            X[rng.random(n) < 0.15, j] = np.nan
    return X


@pytest.mark.parametrize("name", ["xgb_reg_logistic", "xgbrf_classifier", "xgb_poisson", "lgbm_poisson",
                                  "gbc_exponential"])
def test_link_certified_sound_and_leaf_mutation_refuted(name: str) -> None:
    est, X = _model(name)
    art = portable.convert(est, to="onnx", check=False, data=X)
    result = portable.certify(est, art, data=X)
    for out, cert in result.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.reason)
        assert cert.bound <= cert.tolerance
    rows = np.concatenate([_dense(result), X])
    want = _outputs(est, rows)
    got = art.run({art.signature.inputs[0].name: rows})
    for out, cert in result.certificates.items():
        if out == "label":
            assert np.all(np.asarray(got[out]).reshape(-1).astype(str) == want[out].reshape(-1).astype(str))
        else:
            diff = np.abs(np.asarray(got[out], np.float64).reshape(want[out].shape) - want[out]).max()
            assert diff <= cert.bound, (out, diff, cert.bound)
    refuted = 0
    for _, proto in benchmark_mutations(art, ("leaf",), 2, seed=1):
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=X)
        for out, cert in res.certificates.items():
            if cert.status != "refuted":
                continue
            refuted += 1
            cex = cert.counterexample
            assert cex["verified"] is True
            x = np.asarray(cex["inputs"][art.signature.inputs[0].name], np.float32).reshape(1, -1)
            w, g = _outputs(est, x)[out], np.asarray(mutated.run({art.signature.inputs[0].name: x})[out])
            if out == "label":
                assert str(w.reshape(-1)[0]) != str(g.reshape(-1)[0])
            else:
                assert np.abs(g.astype(np.float64).reshape(w.shape) - w).max() > cert.tolerance
    assert refuted, "no leaf mutation was refuted"
