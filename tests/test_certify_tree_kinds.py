"""Certificates for the tree models the first round could not read (issue 19): native categorical splits
(HistGradientBoosting, XGBoost enable_categorical, LightGBM on pandas category columns), a 100-tree XGBoost
classifier (float32 sums), fitted searches, rankers, a log target (exp of the trees' sum), a ColumnTransformer with remainder="passthrough".

Each correct conversion is certified and its bound holds against the real library on rows it never saw; each
mutated artifact (a moved threshold, a changed leaf) is refuted with a counterexample that reproduces when the
real library and onnxruntime run it again. The full sweep over every tree model of the sample table and the
pipelines is tests/test_certify_sweep.py (PORTABLE_SLOW=1).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import portable

from .mutants import benchmark_mutations

PIPELINES = ["titanic_hist_gradient_boosting_categories",
             "titanic_xgboost_categories",
             "titanic_lightgbm_categories", "titanic_randomized_search_forest", "titanic_remainder_passthrough",
             "house_lightgbm_ranker", "house_random_forest_log_target"]


def _predict(est: object, frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"label": np.asarray(est.predict(frame))} if "label" in names else \
            {"variable": np.asarray(est.predict(frame), np.float64)}
        if "probabilities" in names:
            out["probabilities"] = np.asarray(est.predict_proba(frame), np.float64)
    return out


def _feeds(art: portable.Model, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds = {}
    for s in art.signature.inputs:
        col = frame[[s.name]]
        feeds[s.name] = col.astype(str).to_numpy() if s.is_string else col.to_numpy().astype(s.dtype)
    return feeds


def _frame(cex_inputs: dict, like: pd.DataFrame) -> pd.DataFrame:
    """The counterexample as the DataFrame the pipeline was fitted on (its columns and dtypes)."""
    row = pd.DataFrame({k: [np.ravel(v)[0]] for k, v in cex_inputs.items()})[list(like.columns)]
    for c in like.columns:
        if isinstance(like[c].dtype, pd.CategoricalDtype):
            row[c] = pd.Categorical(row[c].astype(str), categories=like[c].cat.categories)
        elif like[c].dtype.kind in "iu":
            row[c] = row[c].astype(np.float64).round().astype(like[c].dtype)
        else:
            row[c] = row[c].astype(like[c].dtype)
    return row


def _differs(est: object, art: portable.Model, frame: pd.DataFrame, out: str, tol: float) -> bool:
    want = _predict(est, frame, list(art.signature.output_names))[out]
    got = np.asarray(art.run(_feeds(art, frame))[out])
    if out == "label":
        return bool(np.any(got.reshape(-1).astype(str) != want.reshape(-1).astype(str)))
    return bool(np.max(np.abs(got.astype(np.float64).reshape(want.shape) - want)) > tol)


@pytest.mark.parametrize("name", PIPELINES)
def test_tree_kind_certified_and_mutations_refuted(name: str) -> None:
    from .pipelines import build

    est, df, held = build(name)
    art = portable.convert(est, to="onnx", dtype="float64", check=False, data=df)
    result = portable.certify(est, art, data=df)
    for out, cert in result.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.reason)
    # the bound holds with the real library on rows inside the domain (held-out rows with known categories)
    rows = pd.concat([df, held]).dropna()
    for (col, _), dcol in result.domain.columns.items():
        if dcol.categories:
            rows = rows[rows[col].astype(str).isin([str(c) for c in dcol.categories])]
    assert len(rows) > 50
    if any(isinstance(t, pd.CategoricalDtype) for t in df.dtypes):
        rows = rows.astype(df.dtypes.to_dict())
    want = _predict(est, rows, list(art.signature.output_names))
    got = art.run(_feeds(art, rows))
    for out, cert in result.certificates.items():
        if out == "label":
            assert np.mean(np.asarray(got[out]).astype(str) == want[out].astype(str)) == 1.0
        else:
            diff = np.abs(np.asarray(got[out], np.float64).reshape(want[out].shape) - want[out]).max()
            assert diff <= cert.bound, (out, diff, cert.bound)
    # mutations: a moved threshold and a changed leaf, refuted at a counterexample the real libraries reproduce
    refuted = 0
    for kind, proto in benchmark_mutations(art, ("threshold", "leaf"), 1, seed=2):
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=df)
        for out, cert in res.certificates.items():
            if cert.status == "refuted":
                refuted += 1
                cex = cert.counterexample
                assert cex["verified"] is True
                assert _differs(est, mutated, _frame(cex["inputs"], df), out, cert.tolerance), (kind, out, cex)
            elif cert.status == "certified" and out != "label":  # then the rows may not differ beyond it
                diff = np.abs(np.asarray(mutated.run(_feeds(mutated, rows))[out], np.float64).reshape(
                    want[out].shape) - want[out]).max()
                assert diff <= cert.bound, (kind, out, diff, cert.bound)
    assert refuted, "no mutation was refuted"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xgboost_100_tree_classifier_float32_sums_certified(dtype: str) -> None:
    """XGBoost sums 100 trees in float32: the rounding bound (every partial sum's extent, the logistic's slope
    p (1 - p) at the original's probability, the relative tolerance) stays within the tolerance; a changed leaf
    is refuted and its counterexample reproduces with XGBoost."""
    xgb = pytest.importorskip("xgboost")
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    est = xgb.XGBClassifier(n_estimators=100, max_depth=4).fit(X, y)
    art = portable.convert(est, to="onnx", dtype=dtype, check=False)
    result = portable.certify(est, art)
    for out, cert in result.certificates.items():
        assert cert.status == "certified", (out, cert.reason)
    rng = np.random.default_rng(0)
    rows = (X[rng.integers(0, len(X), 2000)] * rng.uniform(0.9, 1.1, (2000, X.shape[1]))).astype(np.float32)
    got = art.run({"X": rows})
    diff = np.abs(np.asarray(got["probabilities"], np.float64) - est.predict_proba(rows)).max()
    assert diff <= result.certificates["probabilities"].bound
    (_, proto), = benchmark_mutations(art, ("leaf",), 1, seed=5)
    mutated = portable.load(proto)
    res = portable.certify(est, mutated)
    cert = res.certificates["probabilities"]
    assert cert.status == "refuted", cert.reason
    row = np.asarray(cert.counterexample["inputs"]["X"], np.float32)
    again = np.abs(np.asarray(mutated.run({"X": row})["probabilities"], np.float64) - est.predict_proba(row)).max()
    assert again > cert.tolerance
