"""Linear classifiers without predict_proba (LinearSVC, RidgeClassifier[CV]) in the input's dtype."""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import linear_scores
from .emit import Emitter
from .registry import sklearn_converter


def _linear_scores(em: Emitter, est: Any, x: str) -> str:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    inter = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).reshape(1, -1)
    return linear_scores(em, x, coef.T, inter)  # float64 sums for many inputs in float32 graphs


@sklearn_converter("sklearn.svm.LinearSVC", "sklearn.linear_model.RidgeClassifier", "sklearn.linear_model.RidgeClassifierCV",
       kind="classifier", replaces=True)
def linear_decision_classifier(em: Emitter, est: Any) -> list[Any]:
    """Linear classifiers without predict_proba: scores = X W + b; label by sign (binary) or argmax."""
    s = _linear_scores(em, est, em.input())
    binary = len(est.classes_) == 2
    em.label(s, est.classes_, binary_raw=s if binary else None, strict=True)
    return [None, s]
