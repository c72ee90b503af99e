"""XGBoost and LightGBM options that change what the model computes, converted and run with onnxruntime against
the library's own predictions: `missing=0.0`, dart, random forests, `zero_as_missing`, one-vs-all, rankers and
custom objectives (raw scores, said in the artifact's notes)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    X[rng.random(X.shape) < 0.2] = 0.0
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int)


CASES = {
    "xgb_missing_zero": lambda: xgb.XGBClassifier(n_estimators=8, missing=0.0),
    "xgb_dart": lambda: xgb.XGBClassifier(n_estimators=8, booster="dart", rate_drop=0.2, random_state=0),
    "xgb_rf_classifier": lambda: xgb.XGBRFClassifier(n_estimators=6, random_state=0),
    "xgb_rf_regressor": lambda: xgb.XGBRFRegressor(n_estimators=6, random_state=0),
    "lgbm_zero_as_missing": lambda: lgb.LGBMClassifier(n_estimators=8, zero_as_missing=True, verbose=-1),
    "lgbm_multiclassova": lambda: lgb.LGBMClassifier(n_estimators=8, objective="multiclassova", verbose=-1),
    "xgb_ranker": lambda: xgb.XGBRanker(n_estimators=8),
    "lgbm_ranker": lambda: lgb.LGBMRanker(n_estimators=8, min_child_samples=5, verbose=-1),
    "xgb_ranker_ndcg": lambda: xgb.XGBRanker(n_estimators=8, objective="rank:ndcg"),
    "lgbm_ranker_xendcg": lambda: lgb.LGBMRanker(n_estimators=8, objective="rank_xendcg", min_child_samples=5,
                                                 verbose=-1),
    "xgb_regressor_custom_objective": lambda: xgb.XGBRegressor(n_estimators=8, objective=_squared),
    "lgbm_regressor_custom_objective": lambda: lgb.LGBMRegressor(n_estimators=8, objective=_squared, verbose=-1),
    "xgb_classifier_custom_objective": lambda: xgb.XGBClassifier(n_estimators=8, objective=_logistic),
}
RAW_SCORES = {"xgb_ranker", "lgbm_ranker", "xgb_ranker_ndcg", "lgbm_ranker_xendcg", "xgb_regressor_custom_objective",
              "lgbm_regressor_custom_objective"}


def _squared(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return y_pred - y_true, np.ones_like(y_pred)


def _logistic(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = 1.0 / (1.0 + np.exp(-y_pred))
    return p - y_true, p * (1.0 - p)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_boosting_option_matches_library(case: str, dtype: str) -> None:
    import onnxruntime as ort

    import portable

    X, y = _data(0)
    Xt, _ = _data(1)
    model = CASES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "multiclassova" in case:
            y = np.digitize(np.nan_to_num(X[:, 0]), [-0.5, 0.5])
        if "ranker" in case:
            model.fit(X, y, group=[30] * 10)
        else:
            model.fit(X, y)
    art = portable.convert(model, to="onnx", dtype=dtype, check=False)
    assert any("raw" in n for n in art.notes) == (case in RAW_SCORES)
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": Xt.astype(dtype)})))
    if hasattr(model, "predict_proba"):
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(Xt), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out["label"], model.predict(Xt))
    else:
        np.testing.assert_allclose(out["variable"].ravel(), model.predict(Xt), rtol=1e-5, atol=1e-5)


def test_lightgbm_classifier_with_custom_objective_is_refused() -> None:
    """LightGBM's predict and predict_proba return raw scores there: no labels or probabilities to reproduce."""
    import portable

    X, y = _data(0)
    model = lgb.LGBMClassifier(n_estimators=4, objective=_logistic, verbose=-1).fit(X, y)
    with pytest.raises(portable.PortableError, match="custom objective"):
        portable.convert(model, to="onnx", check=False)
