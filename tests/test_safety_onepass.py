"""The loader's single checked pass (`portable.safety.onepass`): what it builds is what pickle builds, with no
proxy, stand-in or BUILD hook left behind; what it refuses, `audit` does not call SAFE."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import portable
from portable.errors import InputError, UnsafePickleError
from portable.safety import onepass, safe_load


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _reachable(root):
    """Every object reachable through containers, `__dict__`s and object arrays."""
    seen, stack, out = set(), [root], []
    while stack:
        x = stack.pop()
        if id(x) in seen or isinstance(x, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(x))
        out.append(x)
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            stack.extend(x)
        elif isinstance(x, np.ndarray):
            if x.dtype.hasobject:
                stack.extend(x.ravel().tolist())
        elif isinstance(getattr(x, "__dict__", None), dict) and not isinstance(x, type):
            stack.append(x.__dict__)
    return out


def _assert_clean(obj):
    for x in _reachable(obj):
        assert type(x) not in onepass._PROXY_TYPES and type(type(x)) is not onepass._Meta and type(x) is not onepass._Meta
        assert not (type(x) is type(_reachable) and x in onepass._FUNCTIONS)  # numpy's REDUCE stand-ins
        if isinstance(x, dict):
            assert "__setstate__" not in x


@pytest.fixture(scope="module")
def models():
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    cats = np.random.RandomState(0).randint(0, 5, size=(300, 2)).astype(str)
    return {
        "forest": (RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y), X),
        "hgb": (HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y), X),
        "kd": (KNeighborsClassifier(algorithm="kd_tree").fit(X, y), X),
        "ohe": (OneHotEncoder().fit(cats), cats),
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_one_pass_builds_what_pickle_builds(models, tmp_path, protocol):
    for name, (model, X) in models.items():
        path = tmp_path / f"{name}-{protocol}.pkl"
        path.write_bytes(pickle.dumps(model, protocol=protocol))
        loaded, _ = safe_load(path)
        _assert_clean(loaded)
        reference = pickle.loads(path.read_bytes())
        if hasattr(reference, "predict_proba"):
            np.testing.assert_array_equal(loaded.predict_proba(X), reference.predict_proba(X))
        else:
            assert (loaded.transform(X) != reference.transform(X)).nnz == 0
        assert type(loaded.__dict__["n_features_in_"]) is type(reference.__dict__["n_features_in_"])


def test_container_filled_after_its_holder_is_built(tmp_path):
    """pickle appends a long list in batches of 1000: an estimator saved in the second batch whose state refers to
    the list is built while the list is half full (the list then holding an array, so its BUILD swaps inside it),
    and an array appended after it is placed where the swaps at BUILD did not look. The loader notices the
    leftover and walks the object to swap it."""
    holder = StandardScaler().fit(np.arange(6.0).reshape(3, 2))
    lst: list = [np.arange(2.0), StandardScaler(), (1, [2])] + [0] * 997 + [holder, np.arange(5.0)]
    holder.lst = lst
    path = tmp_path / "late.pkl"
    path.write_bytes(pickle.dumps(lst, protocol=4))
    with open(path, "rb") as f:
        _obj, _session, left = onepass.load(f)
    assert left  # the case really reaches the fallback
    loaded, _ = safe_load(path)
    _assert_clean(loaded)
    assert type(loaded[-1]) is np.ndarray and loaded[-1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert loaded[1000].lst is loaded and type(loaded[1000].mean_) is np.ndarray
    assert type(loaded[0]) is np.ndarray
    # the same list with nothing to swap yet when the holder is built: swapped at the end without the fallback
    lst[0] = 0
    path.write_bytes(pickle.dumps(lst, protocol=4))
    loaded, _ = safe_load(path)
    _assert_clean(loaded)
    assert type(loaded[-1]) is np.ndarray and loaded[1000].lst is loaded


def test_globals_kept_as_values_are_swapped_or_refused(tmp_path):
    ok = (b"\x80\x04" + _g("sklearn.preprocessing._data", "StandardScaler") + b")\x81}" + _s("dtype")
          + b"(" + _g("numpy", "float64") + b"K\x01t" + b"sb.")
    path = tmp_path / "value.pkl"
    path.write_bytes(ok)
    obj, _ = safe_load(path)
    assert obj.dtype == (np.float64, 1) and obj.dtype[0] is np.float64
    for module, name in (("numpy._core.multiarray", "_reconstruct"), ("sklearn.preprocessing._data",
                                                                     "StandardScaler"),
                         ("numpy", "dtype"), ("numpy._core.multiarray", "scalar")):
        bad = (b"\x80\x04" + _g("sklearn.preprocessing._data", "StandardScaler") + b")\x81}" + _s("f")
               + b"(" + _g(module, name) + b"t" + b"sb.")
        path = tmp_path / f"bad-{name}.pkl"
        path.write_bytes(bad)
        with pytest.raises(InputError, match="kept as a value"):
            safe_load(path)
        assert not portable.audit(path).safe


def test_numpy_reduce_globals_are_only_called(tmp_path):
    """numpy's `_reconstruct`, `dtype` and `scalar` stand in as plain functions (`onepass._entry`), not classes:
    given as an argument, to NEWOBJ, or with arguments the table refuses, they are refused; with arguments the
    table admits they build what pickle.load builds."""
    rec = _g("numpy._core.multiarray", "_reconstruct")
    arr = _g("numpy", "ndarray")
    std_args = b"K\x00\x85C\x01b\x87"  # ((0,), b'b') after the class
    cases = {
        "as an argument": (b"\x80\x04" + rec + rec + std_args + b"R.", UnsafePickleError),
        "NEWOBJ": (b"\x80\x04" + rec + b"(" + arr + b"K\x00\x85C\x01btR" + b")\x81.", InputError),
        "another shape": (b"\x80\x04" + rec + arr + b"K\x05\x85C\x01b\x87R.", UnsafePickleError),
        "dtype of an object": (b"\x80\x04" + _g("numpy", "dtype") + _s("O8") + b"\x89\x88\x87R.", None),
        "scalar without bytes": (b"\x80\x04" + _g("numpy._core.multiarray", "scalar") + _g("numpy", "dtype")
                                 + _s("f8") + b"\x89\x88\x87R" + b"K\x01\x86R.", UnsafePickleError),
    }
    for label, (data, error) in cases.items():
        path = tmp_path / f"{label}.pkl"
        path.write_bytes(data)
        if error is None:  # what the table admits from these globals: the same object pickle builds
            obj, _ = safe_load(path)
            reference = pickle.loads(data)
            assert type(obj) is type(reference) and not isinstance(obj, type(_g)), label
            _assert_clean(obj)
            continue
        with pytest.raises(error):
            safe_load(path)
        assert not portable.audit(path).safe, label


def test_refusals_of_the_pass(tmp_path):
    scaler = _g("sklearn.preprocessing._data", "StandardScaler") + b")\x81"
    cases = {
        "twice": (b"\x80\x04" + scaler + b"}b}b.", UnsafePickleError, "set twice"),
        "protocol attribute": (b"\x80\x04" + scaler + b"}" + _s("__array_interface__") + b"K\x01sb.", InputError,
                               "__array_interface__"),
        "hook name": (b"\x80\x04" + scaler + b"}" + _s("__setstate__") + b"K\x01sb.", InputError, "__setstate__"),
        "global built": (b"\x80\x04" + _g("sklearn.preprocessing._data", "StandardScaler") + b"}b.",
                         UnsafePickleError, "sets attributes of the global"),
        "items into a matrix": (b"\x80\x04" + _g("scipy.sparse._csr", "csr_matrix") + b")\x81K\x01K\x02s.",
                                InputError, None),
    }
    for label, (data, error, words) in cases.items():
        path = tmp_path / f"{label}.pkl"
        path.write_bytes(data)
        with pytest.raises(error, match=words):
            safe_load(path)
        assert not portable.audit(path).safe, label


def test_estimators_of_this_version_get_the_state_scikit_learn_would_set(tmp_path):
    """Classes restored by BaseEstimator.__setstate__ get its effect without calling it (`_sklearn_setstate`):
    every estimator's attributes are those pickle.load gives, no `_sklearn_version` or hook left, no warning."""
    import warnings

    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    model = make_pipeline(ColumnTransformer([(f"c{i}", make_pipeline(StandardScaler(), MinMaxScaler()), [i])
                                             for i in range(4)]), LogisticRegression()).fit(X, y)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(model, protocol=4))
    reference = pickle.loads(path.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded, notes = safe_load(path)
    assert notes == []

    def estimators(obj, seen):
        if id(obj) in seen or not hasattr(obj, "get_params"):
            return []
        seen.add(id(obj))
        found = [obj]
        for v in vars(obj).values():
            for item in (v if isinstance(v, list) else [v]):
                for x in (item if isinstance(item, tuple) else (item,)):
                    found += estimators(x, seen)
        return found

    got, want = estimators(loaded, set()), estimators(reference, set())
    assert len(got) == len(want) > 10
    for a, b in zip(got, want):
        assert type(a) is type(b) and list(vars(a)) == list(vars(b))
        assert "_sklearn_version" not in vars(a) and "__setstate__" not in vars(a)
    np.testing.assert_array_equal(loaded.predict_proba(X), reference.predict_proba(X))
