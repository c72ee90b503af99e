"""CalibratedClassifierCV over the bases users calibrate (issue 9's real pipelines, found by the unseen sweep of
stop 22): a Pipeline ending in a linear model (a StandardScaler + LinearSVC, the scikit-learn docs' pattern), the
same over a DataFrame through a ColumnTransformer, and an SVC. skl2onnx 1.20's converter, which had them, failed
in onnxruntime on two classes (ArrayFeatureExtractor index out of range) and was off by 0.49 over a
StandardScaler + LogisticRegression; the DataFrame pipeline was refused. Compared with scikit-learn's
predict_proba and predict, run through onnxruntime."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import portable


def _bases():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, LinearSVC

    return {
        "scaler_linearsvc": lambda: make_pipeline(StandardScaler(), LinearSVC()),
        "scaler_logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
        "svc_rbf": lambda: SVC(),
        "frame_linearsvc": lambda: make_pipeline(ColumnTransformer([("n", StandardScaler(), ["a", "b"]),
                                                                    ("c", OneHotEncoder(), ["c"])]), LinearSVC()),
    }


def _data(frame: bool, classes: int):
    from sklearn.datasets import make_classification

    X, y = make_classification(500, 6, n_informative=4, n_classes=classes, random_state=3)
    if not frame:
        return X, y
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": rng.choice(list("xyz"), len(X))})
    return df, y


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("base", list(_bases()))
def test_calibrated_base_agrees_with_scikit_learn(base, method, classes) -> None:
    from sklearn.calibration import CalibratedClassifierCV

    X, y = _data(base.startswith("frame"), classes)
    train = X.iloc[:350] if hasattr(X, "iloc") else X[:350]
    test = X.iloc[350:] if hasattr(X, "iloc") else X[350:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = CalibratedClassifierCV(_bases()[base](), method=method, cv=3).fit(train, y[:350])
    art = portable.convert(est, to="onnx", dtype="float64", check=False, data=train)
    from portable.equivalence.inputs import data_arrays

    got = art.run(data_arrays(test, art))
    np.testing.assert_allclose(got["probabilities"], est.predict_proba(test), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got["label"], est.predict(test))
    assert portable.check(est, art, data=train, samples=300).equivalent
