"""The table of sample models every converter is tested on: one row per model, built on bundled datasets.

Each row is (id, builder) where builder() returns (fitted_estimator, X, data_for_convert). Unusual rows say why.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return X[:, :10], y


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _frame() -> tuple[Any, np.ndarray]:
    """A DataFrame with two numeric columns and one string column; the target depends on all three."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"age": rng.normal(40, 12, n), "income": rng.normal(50, 15, n),
                       "city": rng.choice(["paris", "lyon", "nice", "lille"], n)})
    y = ((df.age - 40) / 12 + (df.city == "nice") * 1.5 - (df.income - 50) / 15 > 0).astype(int).to_numpy()
    return df, y


def _build(make: Callable[[], Any], data: Callable[[], tuple[Any, np.ndarray]]) -> Callable[[], tuple]:
    def builder() -> tuple:
        X, y = data()
        est = make().fit(X, y)
        return est, X, (X if hasattr(X, "columns") else None)

    return builder


def _models() -> list[tuple[str, Callable[[], tuple]]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, SVR

    return [
        ("logreg_multiclass", _build(lambda: LogisticRegression(max_iter=1000), _iris)),
        ("logreg_binary", _build(lambda: LogisticRegression(max_iter=5000), _cancer)),
        ("random_forest_classifier", _build(lambda: RandomForestClassifier(10, max_depth=5, random_state=0), _iris)),
        # diabetes targets are in the hundreds: float32 leaves differ by ~1e-5 relative, within tolerance
        ("random_forest_regressor", _build(lambda: RandomForestRegressor(10, max_depth=5, random_state=0),
                                           _diabetes)),
        ("gradient_boosting_classifier", _build(lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
                                                _iris)),
        ("gradient_boosting_regressor", _build(lambda: GradientBoostingRegressor(n_estimators=20, random_state=0),
                                               _diabetes)),
        ("svc_probability", _build(lambda: SVC(probability=True, random_state=0), _iris)),
        # no predict_proba: the output is `scores`, scikit-learn's decision_function
        ("svc_scores_binary", _build(lambda: SVC(), _cancer)),
        ("svr", _build(lambda: SVR(), _diabetes)),
        ("knn_classifier", _build(lambda: KNeighborsClassifier(5), _iris)),
        ("knn_regressor", _build(lambda: KNeighborsRegressor(5), _diabetes)),
        ("mlp_classifier", _build(lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0), _iris)),
        ("mlp_regressor", _build(lambda: make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,), max_iter=300,
                                                                                     random_state=0)), _diabetes)),
        ("scaler_pca_logreg", _build(lambda: make_pipeline(StandardScaler(), PCA(3),
                                                           LogisticRegression(max_iter=1000)), _iris)),
        # fitted on a DataFrame with a string column: one input per column
        ("column_transformer_frame", _build(lambda: make_pipeline(
            ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                               ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]),
            LogisticRegression(max_iter=1000)), _frame)),
    ]


SAMPLE_MODELS = _models()
SAMPLE_IDS = [name for name, _ in SAMPLE_MODELS]


def inputs_for(model: Any, X: Any) -> dict[str, np.ndarray]:
    """Feed `X` (array or DataFrame) to a portable Model by its signature's input names and dtypes."""
    feeds = {}
    for spec in model.signature.inputs:
        if spec.name == "X" and not hasattr(X, "columns"):
            feeds["X"] = np.asarray(X, dtype=spec.dtype)
        else:
            col = X[spec.name].to_numpy().reshape(-1, 1)
            feeds[spec.name] = col.astype(str) if spec.is_string else col.astype(spec.dtype)
    return feeds
