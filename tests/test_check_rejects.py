"""Rows the original rejects (a text vectorizer reads the empty string, portable's missing text, as a missing
document and refuses it) are found by bisection, which ran a scikit-learn pipeline about a hundred times per check of
1,000 rows. A pair remembers the values only rejected rows held, so its next checks run the original once on the
other rows and bisect only the predicted ones: the same rows dropped, the same verdict and numbers, far fewer runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import portable


@pytest.fixture(scope="module")
def text_pair():
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "slow", "fast", "great", "awful", "price", "food"])
    docs = [" ".join(rng.choice(words, rng.integers(1, 8))) for _ in range(300)]
    y = np.array([("good" in d or "great" in d) for d in docs], dtype=int)
    frame = pd.DataFrame({"review": docs})
    est = make_pipeline(ColumnTransformer([("text", TfidfVectorizer(), "review")]), LogisticRegression())
    est.fit(frame, y)
    return est, frame


def _counted(model):
    calls = [0]
    run = model.run

    def counting(inputs):
        calls[0] += 1
        return run(inputs)
    model.run = counting
    return calls


def test_rejected_rows_are_predicted_and_the_check_is_the_same(text_pair):
    est, frame = text_pair
    original = portable.load(est, data=frame)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=frame)
    # scikit-learn itself refuses the missing document the checker's empty string stands for
    with pytest.raises((ValueError, AttributeError)):
        est.predict(pd.DataFrame({"review": [np.nan]}))
    first = portable.check(original, art, samples=1000, seed=1)
    assert first.rejected_by_original > 0, first.notes  # the batch holds empty documents
    calls = _counted(original)
    again = portable.check(original, art, samples=1000, seed=2)  # the pair learned which values are rejected
    runs = calls[0]
    # the same check on a pair that learned nothing (new models: a new plan), bisecting the whole batch
    fresh_original = portable.load(est, data=frame)
    fresh_art = portable.convert(est, to="onnx", dtype="float32", check=False, data=frame)
    fresh_calls = _counted(fresh_original)
    fresh = portable.check(fresh_original, fresh_art, samples=1000, seed=2)
    assert again.rejected_by_original == fresh.rejected_by_original > 0
    assert again.rows == fresh.rows and again.generation == fresh.generation
    assert again.equivalent and fresh.equivalent
    assert again.outputs == fresh.outputs
    assert runs < fresh_calls[0] / 3, (runs, fresh_calls[0])


def test_a_prediction_that_is_wrong_costs_runs_not_rows(text_pair):
    """A remembered value that the original accepts after all (here: planted) is bisected like any predicted row
    and kept: the rows compared are those of a pair that remembers nothing."""
    from portable.equivalence import _PLANS

    est, frame = text_pair
    original = portable.load(est, data=frame)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=frame)
    portable.check(original, art, samples=1000, seed=1)
    plan = _PLANS[art][2]
    f = next(i for i, feat in enumerate(plan.features) if feat.is_string)
    drawn = [v for v in np.unique(plan.memo["generated"][1].txt[:, f].astype(str)) if v]
    plan.memo["rejects"]["bad"] |= {(f, drawn[0])}  # a value the original accepts
    again = portable.check(original, art, samples=1000, seed=3)
    fresh = portable.check(portable.load(est, data=frame),
                           portable.convert(est, to="onnx", dtype="float32", check=False, data=frame),
                           samples=1000, seed=3)
    assert again.rows == fresh.rows and again.rejected_by_original == fresh.rejected_by_original
    assert again.outputs == fresh.outputs
