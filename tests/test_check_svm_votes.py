"""Multiclass SVMs predict by one-vs-one votes: a vote within rounding of 0 is a tie, not a mismatch."""
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.svm import SVC, NuSVC

import portable

X, y = make_classification(900, 8, n_informative=5, n_classes=3, random_state=5)
TRAIN, YTRAIN = X[:600], y[:600]


def test_pairwise_vote_at_zero_is_a_tie():
    # seed 1's label-boundary rows put one one-vs-one decision of this NuSVC at ~5e-8: scikit-learn (float64)
    # and the float32 artifact cast that vote differently, so the label and the one-vs-rest scores (votes +
    # confidences) jump by 1 there; the check said NOT EQUIVALENT
    model = NuSVC(nu=0.3).fit(TRAIN, YTRAIN)
    art = portable.convert(model, "onnx", check=False)
    for seed in (0, 1, 2):
        rep = portable.check(model, art, samples=1000, seed=seed, data=TRAIN)
        assert rep.equivalent, rep.summary_line()
    # held-out rows agree with scikit-learn's own predict
    assert (art.run({"X": X[600:].astype(np.float32)})["label"] == model.predict(X[600:])).all()


@pytest.mark.parametrize("make", [lambda: NuSVC(nu=0.31), lambda: NuSVC(nu=0.3, gamma=0.13)],
                         ids=["nu", "gamma"])
def test_a_different_svm_is_still_caught(make):
    model = NuSVC(nu=0.3).fit(TRAIN, YTRAIN)
    other = portable.convert(make().fit(TRAIN, YTRAIN), "onnx", check=False)
    assert not portable.check(model, other, samples=1000, seed=1, data=TRAIN).equivalent


def test_svc_scores_still_compared():
    model = SVC().fit(TRAIN, YTRAIN)
    other = portable.convert(SVC(C=1.02).fit(TRAIN, YTRAIN), "onnx", check=False)
    assert not portable.check(model, other, samples=1000, seed=0).equivalent
