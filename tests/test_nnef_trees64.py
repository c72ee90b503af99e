"""Tree ensembles through NNEF in float64 and float32, against scikit-learn's own predict / predict_proba.

scikit-learn's trees round their input to float32 before comparing it with double thresholds; the float64 ONNX
graph says so with Cast(float) -> Cast(double), which NNEF (one precision for scalars) cannot write. The rows here
sit on the trees' own thresholds and their float32 and float64 neighbours (midpoints between float32 values
included), where a rounding done wrong sends a row down the other branch.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("nnef")
pytest.importorskip("nnef_tools")

import portable
from portable.converters.onnx_standard import float32_le_bound


def _thresholds(est) -> dict[int, np.ndarray]:
    """feature -> the split thresholds scikit-learn's fitted trees use (their own attributes)."""
    found: dict[int, list[float]] = {}
    if hasattr(est, "_predictors"):  # HistGradientBoosting*
        for per_iter in est._predictors:
            for pred in per_iter:
                nodes = pred.nodes[~pred.nodes["is_leaf"].astype(bool)]
                for f, t in zip(nodes["feature_idx"], nodes["num_threshold"]):
                    found.setdefault(int(f), []).append(float(t))
    else:
        for tree in np.ravel(est.estimators_):
            t = tree.tree_
            inner = t.children_left >= 0
            for f, v in zip(t.feature[inner], t.threshold[inner]):
                found.setdefault(int(f), []).append(float(v))
    return {f: np.unique(v) for f, v in found.items()}


def _boundary_rows(est, X: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Rows whose every feature is a split threshold or one of its float32/float64 neighbours."""
    rng = np.random.default_rng(seed)
    rows = X[rng.integers(0, len(X), n)].astype(np.float64).copy()
    for f, ts in _thresholds(est).items():
        t = ts[rng.integers(0, len(ts), n)]
        f32 = t.astype(np.float32)
        up32 = np.nextafter(f32, np.float32(np.inf)).astype(np.float64)
        down32 = np.nextafter(f32, np.float32(-np.inf)).astype(np.float64)
        mid_up = (f32.astype(np.float64) + up32) / 2
        mid_down = (f32.astype(np.float64) + down32) / 2
        choices = np.stack([t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), f32.astype(np.float64), up32,
                            down32, mid_up, mid_down, np.nextafter(mid_up, np.inf), np.nextafter(mid_up, -np.inf),
                            np.nextafter(mid_down, -np.inf), float32_le_bound(t)])
        rows[:, f] = choices[rng.integers(0, len(choices), n), np.arange(n)]
    return rows


def _fit(kind: str):
    from sklearn.datasets import make_classification, make_regression
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    makers = {
        "forest-classifier": (lambda: RandomForestClassifier(8, max_depth=7, random_state=0), 3),
        "forest-classifier-deep": (lambda: RandomForestClassifier(5, random_state=0), 2),
        "forest-regressor": (lambda: RandomForestRegressor(8, max_depth=9, random_state=0), 0),
        "extra-trees-regressor": (lambda: ExtraTreesRegressor(6, max_depth=6, random_state=0), 0),
        "gboost-classifier": (lambda: GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0), 3),
        "gboost-binary": (lambda: GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0), 2),
        "gboost-regressor": (lambda: GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0), 0),
        "hgb-classifier": (lambda: HistGradientBoostingClassifier(max_iter=8, random_state=0), 3),
        "hgb-regressor": (lambda: HistGradientBoostingRegressor(max_iter=8, random_state=0), 0),
    }
    make, classes = makers[kind]
    if classes:
        X, y = make_classification(300, 6, n_informative=4, n_classes=classes, random_state=1)
    else:
        X, y = make_regression(300, 6, noise=1.0, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(X, y), X


KINDS = ["forest-classifier", "forest-classifier-deep", "forest-regressor", "extra-trees-regressor",
         "gboost-classifier", "gboost-binary", "gboost-regressor", "hgb-classifier", "hgb-regressor"]
_CACHE: dict = {}


def _artifact(kind: str, dtype: str):
    if (kind, dtype) not in _CACHE:
        est, X = _fit(kind)
        _CACHE[kind, dtype] = est, X, portable.convert(est, to="nnef", dtype=dtype, check=False)
    return _CACHE[kind, dtype]


def _expected(est, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if hasattr(est, "predict_proba"):
        return est.predict(rows), est.predict_proba(rows)
    return est.predict(rows), None


def _outputs(art, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    out = art.run({art.signature.inputs[0].name: rows})
    vals = list(out.values())
    if len(vals) == 2:
        return vals[0], vals[1]
    return vals[0].reshape(-1), None


@pytest.mark.parametrize("kind", KINDS)
def test_float64_trees_agree_with_scikit_learn_on_the_boundaries(kind):
    est, X, art = _artifact(kind, "float64")
    assert art.meta["portable.dtype"] == "float64"
    rows = np.concatenate([_boundary_rows(est, X, 1500, seed=0), X])
    with_nan = rows.copy()
    with_nan[::7, 1], with_nan[::11, 3] = np.nan, np.nan
    try:  # missing values where scikit-learn takes them (forests, HGB): routed by each node's missing flag
        _expected(est, with_nan[:5])
        rows = np.concatenate([rows, with_nan])
    except ValueError:
        pass
    label, proba = _expected(est, rows)
    got_label, got_proba = _outputs(art, rows)
    if proba is None:  # regressors: the same leaves, summed in another order (a few ulps at most)
        np.testing.assert_allclose(got_label, label, rtol=1e-12, atol=1e-12 * np.abs(label).max())
        return
    np.testing.assert_allclose(got_proba, proba, rtol=1e-12, atol=1e-13)
    assert np.array_equal(got_label, label)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["forest-classifier", "gboost-regressor", "hgb-classifier"]),
       seed=st.integers(0, 2**31 - 1))
def test_float64_trees_on_varying_boundary_rows(kind, seed):
    est, X, art = _artifact(kind, "float64")
    rows = _boundary_rows(est, X, 200, seed=seed)
    label, proba = _expected(est, rows)
    got_label, got_proba = _outputs(art, rows)
    if proba is None:
        np.testing.assert_allclose(got_label, label, rtol=1e-12, atol=1e-12 * np.abs(label).max())
    else:
        np.testing.assert_allclose(got_proba, proba, rtol=1e-12, atol=1e-13)
        assert np.array_equal(got_label, label)


@pytest.mark.parametrize("kind", ["forest-classifier", "forest-regressor", "gboost-classifier", "hgb-classifier",
                                  "hgb-regressor"])
def test_float32_trees_agree_with_scikit_learn(kind):
    """float32 artifacts take float32 rows, as scikit-learn's trees see them: the same leaves, values to float32
    precision (labels may differ only where two classes' probabilities are within float32 rounding)."""
    est, X, art = _artifact(kind, "float32")
    rows = np.concatenate([_boundary_rows(est, X, 1000, seed=1), X]).astype(np.float32)
    label, proba = _expected(est, rows.astype(np.float64))
    got_label, got_proba = _outputs(art, rows)
    if proba is None:
        np.testing.assert_allclose(got_label, label, rtol=2e-5, atol=2e-5 * np.abs(label).max())
        return
    np.testing.assert_allclose(got_proba, proba, rtol=1e-5, atol=1e-5)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    assert np.array_equal(np.asarray(got_label)[clear], label[clear])


def test_float32_le_bound_is_exact():
    """float32(x) <= t exactly when x <= float32_le_bound(t), checked with numpy's own rounding cast."""
    rng = np.random.default_rng(0)
    f32 = rng.normal(size=20000).astype(np.float32)
    mids = (f32.astype(np.float64) + np.nextafter(f32, np.float32(np.inf)).astype(np.float64)) / 2
    big = float(np.finfo(np.float32).max)
    t = np.concatenate([rng.normal(size=20000), f32.astype(np.float64), mids, np.nextafter(mids, np.inf),
                        np.nextafter(mids, -np.inf), rng.normal(size=2000) * 1e-40,
                        [0.0, -0.0, big, -big, big * 1.5, -big * 1.5, np.inf, -np.inf, 2.0 ** -149, 2.0 ** -150]])
    m = float32_le_bound(t)
    with np.errstate(over="ignore"):
        below = m.astype(np.float32).astype(np.float64) <= t
        above = np.nextafter(m, np.inf).astype(np.float32).astype(np.float64) > t
    assert below.all() and (above | (m == np.inf)).all()
