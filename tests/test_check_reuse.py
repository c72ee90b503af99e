"""A pair checked again finds what its first check learned (the input plan, the label-boundary pool, the rows of
a seed used before), and decides the same: the checker's cost for a pair checked many times (one check per seed,
a notebook run again) is its warm cost."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")

import portable  # noqa: E402
from portable.equivalence import _PLANS  # noqa: E402


def _frame_pair():
    """A pipeline fitted on a DataFrame whose string column no step reads (the ColumnTransformer drops it): the
    estimator's fitted attributes alone say float64 for it, the artifact (converted with data) says str, so the
    check types the original's columns from the artifact's."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(5, 2, 200),
                          "city": rng.choice(["paris", "lyon", "nice"], 200), "note": rng.choice(["x", "y"], 200)})
    y = ((frame.a + (frame.city == "nice")) > 0.5).astype(int)
    est = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]),
                        LogisticRegression()).fit(frame, y)
    return est, portable.convert(est, to="onnx", check=False, data=frame)


def test_a_pair_whose_original_takes_the_artifacts_column_types_keeps_its_plan():
    est, art = _frame_pair()
    original = portable.load(est)  # no data: 'note' is float64 to the fitted attributes alone
    assert original.signature.input("note").dtype != art.signature.input("note").dtype
    first = portable.check(original, art, samples=200)
    kept = _PLANS[art]
    plan, pool = kept[2], kept[2].memo.get("edges")
    second = portable.check(original, art, samples=200)
    again = _PLANS[art]
    assert again[2] is plan and again[2].memo.get("edges") is pool  # learned once, not on every check
    assert first.equivalent and second.equivalent
    assert first.to_dict()["outputs"] == second.to_dict()["outputs"]
    assert first.generation == second.generation and first.rows == second.rows


def test_the_typed_original_is_not_kept_past_its_pair():
    import gc
    import weakref

    est, art = _frame_pair()
    original = portable.load(est)
    portable.check(original, art, samples=50)
    gone = weakref.ref(art)
    del art
    gc.collect()
    assert gone() is None
