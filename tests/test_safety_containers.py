"""The loader against what people pickle (issue 12): the scikit-learn containers and tutorial pipelines portable
converts (tests/hostile/container_sweep.py: ensembles, ColumnTransformer over DataFrames with strings and column
selectors, FeatureUnion, target transforms with ufuncs, calibration, one-vs-rest, multi-output, searches, feature
selection...), each saved with pickle, joblib and skops, load with no --trust and compute what pickle.loads /
joblib.load / skops compute. Before this round 29 of the 99 files were refused.
"""
from __future__ import annotations

import numpy as np
import pytest

from .hostile.container_sweep import FORMATS, containers, sweep

NAMES = [name for name, _ in containers()]


@pytest.mark.parametrize("how", FORMATS)
def test_containers_load_as_the_libraries_load_them(how):
    out = sweep("containers", formats=(how,))
    assert not out.skipped and not out.not_saved, out.summary()
    assert not out.refused and not out.mishandled, out.summary()
    assert len(out.loaded) == len(NAMES)


def test_column_selectors_and_library_made_objects(tmp_path):
    """The three general causes, one model each: `make_column_selector(dtype_include=object)` and
    `dtype_include=np.number` keep builtins.object / numpy.number as values; IsotonicRegression.__setstate__ builds
    a scipy interp1d that keeps one of its own methods as an attribute (the walk of joblib and skops loads judged it
    as a value the file kept); np.log1p kept by FunctionTransformer."""
    import pickle

    import joblib
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import make_column_selector, make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    import portable

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.choice(["x", "y"], 60)})
    y = (df.a > 0).astype(int).to_numpy()
    X = df[["a"]].to_numpy()
    models = [
        (make_pipeline(make_column_transformer((StandardScaler(), make_column_selector(dtype_include=np.number)),
                                               (OneHotEncoder(), make_column_selector(dtype_include=object))),
                       LogisticRegression()).fit(df, y), df),
        (CalibratedClassifierCV(DecisionTreeClassifier(max_depth=2), cv=3, method="isotonic").fit(X, y), X),
        (make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(np.abs(X), y), np.abs(X)),
    ]
    for i, (est, data) in enumerate(models):
        pkl, jbl = tmp_path / f"m{i}.pkl", tmp_path / f"m{i}.joblib"
        pkl.write_bytes(pickle.dumps(est, protocol=5))
        joblib.dump(est, jbl)
        for path in (pkl, jbl):
            loaded = portable.load(path).estimator
            np.testing.assert_array_equal(loaded.predict_proba(data), est.predict_proba(data))
            assert portable.audit(path).safe


def test_the_first_load_in_a_process_of_a_file_naming_ndarray_before_reconstruct(tmp_path):
    """A masked array names numpy.ndarray (`_mareconstruct(MaskedArray, ndarray, ...)`) before any plain array
    names `_reconstruct`, as GridSearchCV's and RandomizedSearchCV's cv_results_ do: the first such load in a
    fresh process (every CLI run, every isolated worker) was refused ('objects placed where the loader cannot
    check them'): the stand-in function for `_reconstruct`, made by that load, referenced ndarray's stand-in
    after the pass had counted its references. Each load in its own fresh process, bounded in time."""
    import pickle
    import subprocess
    import sys

    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y = np.arange(60.0).reshape(30, 2), np.arange(30) % 2
    search = RandomizedSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, n_iter=2, cv=3,
                                random_state=0).fit(X, y)
    files = {"masked_then_plain.pkl": [np.ma.masked_array([1.0, 2.0], mask=[0, 1]), np.arange(3)],
             "search.pkl": search}
    for name, obj in files.items():
        path = tmp_path / name
        path.write_bytes(pickle.dumps(obj, protocol=5))
        code = ("import sys; from portable.safety import safe_load; obj, _ = safe_load(sys.argv[1]); "
                "print(type(obj).__name__)")
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, (name, proc.stderr[-600:])
        assert proc.stdout.strip() == type(obj).__name__
