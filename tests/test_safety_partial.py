"""`functools.partial` in the reconstructor table: scikit-learn's own `partial(check_array, ...)` (kept by
HistGradientBoosting fitted with `categorical_features`) loads and converts without `--trust`, through the checked
pass and through joblib's unpickler; any other partial, or check_array anywhere else, is refused by `load` and not
called SAFE by `audit`."""
from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_array

import portable
from portable.errors import PortableError
from portable.safety import safe_load


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    X = rng.rand(n, 5)
    X[:, 1] = rng.randint(0, 6, n)
    X[:, 3] = rng.randint(0, 3, n)
    return X


@pytest.fixture(scope="module")
def fitted():
    X = _data(400, 0)
    y = (X[:, 0] + (X[:, 1] % 2) > 1.0).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=15, categorical_features=[1, 3], random_state=0).fit(X, y)
    reg = HistGradientBoostingRegressor(max_iter=15, categorical_features=[False, True, False, True, False],
                                        random_state=0).fit(X, X[:, 0] * 3 + X[:, 1])
    return {"classifier": clf, "regressor": reg}


def _partials(model):
    """The functools.partial objects a fitted model holds (in its preprocessor's transformers)."""
    return [t.func for _, t, _ in model._preprocessor.transformers_ if isinstance(getattr(t, "func", None),
                                                                              functools.partial)]


def _write(tmp_path, model, how: str, name: str):
    path = tmp_path / f"{name}.{how}"
    if how == "pkl":
        path.write_bytes(pickle.dumps(model, protocol=4))
    else:
        joblib.dump(model, path)
    return path


@pytest.mark.parametrize("how", ["pkl", "joblib"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_hgb_with_categorical_features_loads_without_trust(fitted, tmp_path, how, kind):
    model = fitted[kind]
    held = _partials(model)
    assert held and all(p.func is check_array for p in held)  # what scikit-learn really keeps
    path = _write(tmp_path, model, how, kind)
    assert portable.audit(path).safe
    loaded, _notes = safe_load(path)
    for p in _partials(loaded):
        assert p.func is check_array and p.args == () and p.keywords == held[0].keywords
    X = _data(300, 7)
    if kind == "classifier":
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    else:
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    m = portable.load(path)  # the model as the checker runs it (in its isolated worker)
    try:
        out = m.run({"X": X})
    finally:
        m.close()
    want = model.predict_proba(X) if kind == "classifier" else model.predict(X)
    got = out["probabilities"] if kind == "classifier" else next(iter(out.values()))
    np.testing.assert_allclose(np.asarray(got).reshape(want.shape), want, rtol=1e-12)


@pytest.mark.parametrize("how", ["pkl", "joblib"])
def test_hgb_with_categorical_features_converts_without_trust(fitted, tmp_path, how):
    model = fitted["classifier"]
    path = _write(tmp_path, model, how, "clf")
    out = tmp_path / f"clf-{how}.onnx"
    proc = subprocess.run([sys.executable, "-m", "portable", "convert", str(path), "--to", "onnx", "-o", str(out),
                           "--samples", "300"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "EQUIVALENT" in proc.stdout
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    X = _data(500, 11)
    name = sess.get_inputs()[0].name
    want_type = sess.get_inputs()[0].type
    feed = X.astype(np.float64 if "double" in want_type else np.float32)
    outputs = sess.run(None, {name: feed})
    np.testing.assert_array_equal(outputs[0].ravel(), model.predict(feed.astype(np.float64)))
    probs = outputs[1]
    if isinstance(probs, list):
        probs = np.array([[row[k] for k in sorted(row)] for row in probs])
    np.testing.assert_allclose(probs, model.predict_proba(feed.astype(np.float64)), atol=1e-5)


class _Reduce:
    """An object that pickles as the call `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _ReduceState(_Reduce):
    """An object that pickles as `func(*args)` followed by a BUILD with `state`."""

    def __init__(self, func, args, state):
        super().__init__(func, *args)
        self.state = state

    def __reduce__(self):
        return self.func, self.args, self.state


def _with_attribute():
    p = functools.partial(check_array, ensure_all_finite=False)
    p.note = "x"
    return p


def _hostile() -> dict[str, object]:
    return {
        "partial(os.system)": functools.partial(os.system, "echo owned"),
        "partial(np.mean), a reviewed value function": functools.partial(np.mean, axis=0),
        "partial(check_array) with a positional argument": functools.partial(check_array, [[1.0]]),
        "partial(check_array) with an estimator keyword": functools.partial(check_array,
                                                                            estimator=LogisticRegression()),
        "partial(check_array) with a keyword that is no parameter": functools.partial(check_array, bogus=1),
        "partial(check_array) with a ufunc keyword": functools.partial(check_array, dtype=np.add),
        "partial(check_array) with a RandomState keyword": functools.partial(check_array,
                                                                             dtype=np.random.RandomState),
        "partial(check_array) with a nested list keyword": functools.partial(check_array, dtype=[[np.float64]]),
        "partial(check_array) with attributes": _with_attribute(),
        "partial of a partial": _Reduce(functools.partial, functools.partial(check_array, ensure_2d=False)),
        "partial(check_array) whose state names np.mean": _ReduceState(functools.partial, (check_array,),
                                                                        (np.mean, (), {"axis": 0}, None)),
        "check_array kept as a value": FunctionTransformer(func=check_array),
        "check_array called by the file": _Reduce(check_array, [[1.0, 2.0]]),
        "functools.reduce": _Reduce(functools.reduce, max, [1, 2]),
    }


@pytest.mark.parametrize("how", ["pkl", "joblib"])
@pytest.mark.parametrize("label", list(_hostile()))
def test_other_partials_are_refused_and_flagged(tmp_path, label, how):
    obj = _hostile()[label]
    if "partial" in label and "kept" not in label:
        obj = FunctionTransformer(func=obj)  # where a model would keep it
    path = _write(tmp_path, obj, how, "hostile")
    with pytest.raises(PortableError) as info:
        portable.load(path)
    assert "Traceback" not in str(info.value)
    assert "partial" in str(info.value) or "check_array" in str(info.value) or "system" in str(info.value) or \
        "reduce" in str(info.value), str(info.value)
    assert not portable.audit(path).safe
