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


def _nan_pair(imputed_first: bool):
    """A VotingRegressor of a forest (whose converted trees route NaN, so the artifact's hints ask for NaN cells)
    and a GradientBoostingRegressor (which refuses NaN): scikit-learn rejects every row holding NaN, except in a
    column an imputer fills first."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor, VotingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    X, y = make_regression(400, 6, noise=3, random_state=5)
    vote = VotingRegressor([("rf", RandomForestRegressor(8, max_depth=4, random_state=0)),
                            ("gb", GradientBoostingRegressor(n_estimators=15, random_state=0))])
    est = make_pipeline(ColumnTransformer([("fill", SimpleImputer(), [0])], remainder="passthrough"), vote) \
        if imputed_first else vote
    return est.fit(X, y), X


@pytest.mark.parametrize("imputed_first", [False, True])
def test_rows_rejected_for_their_nan_cells_are_found_by_one_probe_per_column(imputed_first):
    """A bisection costs about two runs of the original per rejected row (~9,600 runs of a VotingRegressor when a
    fifth of 8,000 rows hold NaN: 14 s for a check). One probe per column finds which columns' NaN the original
    rejects; the rows dropped are exactly those scikit-learn refuses."""
    from portable.equivalence import _PLANS

    est, X = _nan_pair(imputed_first)
    original = portable.load(est)
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    calls = _counted(original)
    report = portable.check(original, art, samples=1000, seed=0)
    assert report.equivalent, report.notes
    assert report.rejected_by_original > 0, report.notes
    assert calls[0] < 40, calls[0]
    batch = _PLANS[art][2].memo["generated"][1]
    nan = np.isnan(batch.num)
    refused = nan[:, 1:].any(axis=1) if imputed_first else nan.any(axis=1)
    assert report.rejected_by_original == int(refused.sum())
    # scikit-learn's own verdicts: the rows kept run as one batch; a refused row, alone, is refused
    est.predict(batch.num[~refused])
    for r in np.flatnonzero(refused)[:5]:
        with pytest.raises(ValueError):
            est.predict(batch.num[r:r + 1])
    if imputed_first:
        assert (nan[:, 0] & ~refused).any()  # NaN in the imputed column kept and compared
    calls[0] = 0
    again = portable.check(original, art, samples=1000, seed=4)  # the pair remembers the NaN columns
    assert again.equivalent and again.rejected_by_original > 0
    assert calls[0] < 40, calls[0]
