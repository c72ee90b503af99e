"""What numpy legitimately writes into model pickles loads through the checked pass exactly as `pickle.load` loads
it: masked arrays (numpy.ma's 7-tuple state; GridSearchCV keeps them in `cv_results_`), structured, datetime, bool,
float16, complex, big-endian, string and object arrays, numpy scalars, sparse matrices, and models fitted on such
data (pandas frames with object `feature_names_in_`, sparse inputs). Masked arrays whose state disagrees with
itself are refused, and `audit` does not call them SAFE."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import portable
from portable.errors import InputError, UnsafePickleError
from portable.safety import safe_load


def _same(a, b, path="x", seen=None):
    """Structural equality of two loaded objects (values, types, dtypes, masks), independent of which equal
    strings happen to be shared."""
    seen = set() if seen is None else seen
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if id(a) in seen:
        return
    if not isinstance(a, (str, bytes, int, float, bool, type(None))):
        seen.add(id(a))
    if isinstance(a, np.ma.MaskedArray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), f"{path}: mask"
        _same(a.data, b.data, f"{path}.data", seen)
        _same(np.asarray(a.fill_value), np.asarray(b.fill_value), f"{path}.fill_value", seen)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.flags.f_contiguous == b.flags.f_contiguous, path
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist())):
                _same(x, y, f"{path}[{i}]", seen)
        else:
            assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif sp.issparse(a):
        assert a.format == b.format and a.shape == b.shape and a.dtype == b.dtype, path
        assert (a != b).nnz == 0, path
    elif isinstance(a, np.random.RandomState):
        _same(a.get_state(legacy=False), b.get_state(legacy=False), path, seen)
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]", seen)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]", seen)
    elif hasattr(a, "__getstate__") and type(a).__module__.startswith("sklearn.tree"):
        _same(a.__getstate__(), b.__getstate__(), path, seen)
    elif isinstance(getattr(a, "__dict__", None), dict) and not isinstance(a, type):
        _same(a.__dict__, b.__dict__, path, seen)
    elif isinstance(a, float) and a != a:
        assert b != b, path
    else:
        assert a == b, path


def _check_round_trip(obj, tmp_path, label):
    for protocol in (2, 4, 5):
        path = tmp_path / f"{label}-{protocol}.pkl".replace(" ", "_")
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        loaded, _ = safe_load(path)
        _same(loaded, pickle.loads(path.read_bytes()), label)


MASKED = {
    "float": lambda: np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=9.0),
    "no mask": lambda: np.ma.masked_array([1, 2, 3]),
    "objects": lambda: np.ma.masked_array(np.array([0.1, "a", None], dtype=object), mask=[0, 0, 1]),
    "structured": lambda: np.ma.masked_array(np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), mask=[(0, 1), (1, 0)]),
    "fortran 2-d": lambda: np.ma.masked_array(np.asfortranarray(np.arange(6.0).reshape(2, 3)), mask=np.eye(2, 3)),
    "bool": lambda: np.ma.masked_array([True, False], mask=[1, 0]),
    "strings": lambda: np.ma.masked_array(np.array(["ab", "c"]), mask=[0, 1]),
    "datetime": lambda: np.ma.masked_array(np.array(["2020-01-01", "2021-01-01"], dtype="M8[D]"), mask=[0, 1]),
    "float16": lambda: np.ma.masked_array(np.arange(3, dtype=np.float16), mask=[0, 1, 0]),
    "empty": lambda: np.ma.masked_array(np.zeros((0, 3))),
}


@pytest.mark.parametrize("label", list(MASKED))
def test_masked_arrays_load_as_pickle_loads_them(tmp_path, label):
    _check_round_trip(MASKED[label](), tmp_path, label)


def test_grid_search_results_with_masked_parameter_columns(tmp_path):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = make_classification(n_samples=80, random_state=0)
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0], "fit_intercept": [True, False]}, cv=2).fit(X, y)
    assert isinstance(search.cv_results_["param_C"], np.ma.MaskedArray)
    _check_round_trip(search, tmp_path, "grid")
    path = tmp_path / "grid.pkl"
    path.write_bytes(pickle.dumps(search))
    np.testing.assert_array_equal(safe_load(path)[0].predict_proba(X), search.predict_proba(X))


def _fitted() -> dict:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    y = np.arange(60) % 2
    df = pd.DataFrame({"a": rng.rand(60), "b": rng.choice(["x", "y", "z"], 60),
                       "c": pd.Categorical(rng.choice(["p", "q"], 60)), "d": rng.randint(0, 3, 60).astype(np.int8)})
    dates = np.array(["2020-01-01", "2021-06-01", "2022-03-04"], dtype="M8[D]")[rng.randint(0, 3, 60)][:, None]
    return {
        "scaler on float16": StandardScaler().fit(X.astype(np.float16)),
        "logistic on bool": LogisticRegression().fit(X > 0.5, y),
        "logistic on sparse": LogisticRegression().fit(sp.csr_matrix(X), y),
        "svc on sparse": SVC().fit(sp.csr_matrix(X), y),
        "knn on sparse": KNeighborsClassifier().fit(sp.csr_matrix(X), y),
        "pandas pipeline": make_pipeline(make_column_transformer((OneHotEncoder(), ["b", "c"]),
                                                                 ("passthrough", ["a", "d"])),
                                         LogisticRegression()).fit(df, y),
        "encoder on datetimes": OneHotEncoder().fit(dates),
        "ordinal on pandas": OrdinalEncoder().fit(df[["b", "c"]]),
        "label encoder": LabelEncoder().fit(["b", "a", "c"]),
        "tree with string classes": DecisionTreeClassifier(random_state=0).fit(X, np.array(["n", "p"])[y]),
        "forest with a RandomState": RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0))
        .fit(X, y),
        "int32 target": LogisticRegression().fit(X, y.astype(np.int32)),
    }


@pytest.fixture(scope="module")
def fitted():
    return _fitted()


@pytest.mark.parametrize("label", ["scaler on float16", "logistic on bool", "logistic on sparse", "svc on sparse",
                                   "knn on sparse", "pandas pipeline", "encoder on datetimes", "ordinal on pandas",
                                   "label encoder", "tree with string classes", "forest with a RandomState",
                                   "int32 target"])
def test_models_fitted_on_numpy_kinds(fitted, tmp_path, label):
    _check_round_trip(fitted[label], tmp_path, label)


VALUES = {
    "structured": lambda: np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4", (2,))]),
    "float16": lambda: np.arange(3, dtype=np.float16),
    "numpy scalars": lambda: [np.bool_(True), np.float16(1.5), np.int8(-3), np.uint64(2**63), np.complex64(1j),
                              np.datetime64("2020-01-01"), np.timedelta64(3, "s"), np.str_("a"), np.bytes_(b"b")],
    "complex": lambda: np.array([1 + 2j]),
    "big-endian": lambda: np.arange(3, dtype=">f8"),
    "strings and bytes": lambda: [np.array(["a", "bc"]), np.array([b"a", b"bc"])],
    "sparse formats": lambda: [sp.coo_matrix(np.eye(3)), sp.csc_array(np.eye(3)), sp.lil_matrix(np.eye(3)),
                               sp.dia_matrix(np.eye(3)), sp.bsr_matrix(np.eye(4))],
}


@pytest.mark.parametrize("label", list(VALUES))
def test_numpy_values(tmp_path, label):
    _check_round_trip(VALUES[label](), tmp_path, label)


def _masked_pickle(state_items: bytes, args: bytes = b"X\x01\x00\x00\x00b") -> bytes:
    """A protocol-2 pickle of `_mareconstruct(MaskedArray, ndarray, (0,), args)` with the given state items."""
    g = (b"cnumpy.ma.core\n_mareconstruct\n(cnumpy.ma\nMaskedArray\ncnumpy\nndarray\nK\x00\x85" + args + b"tR")
    dtype = b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    return b"\x80\x02" + g + b"(K\x01K\x02\x85" + dtype + state_items + b"tb."


def test_masked_array_pickle_helper_is_real(tmp_path):
    """The control: the hand-written masked array pickle below is what numpy reads."""
    data = _masked_pickle(b"\x89C\x10" + np.array([1.0, 2.0]).tobytes() + b"C\x02\x00\x01G@\"\x00\x00\x00\x00\x00\x00")
    reference = pickle.loads(data)
    assert reference.tolist() == [1.0, None] and reference.fill_value == 9.0
    path = tmp_path / "ok.pkl"
    path.write_bytes(data)
    _same(safe_load(path)[0], reference)


@pytest.mark.parametrize("label,items,args,error,words", [
    ("mask too short", b"\x89C\x10" + b"\x00" * 16 + b"C\x01\x00N", None, UnsafePickleError, "mask has 1 bytes"),
    ("mask not bytes", b"\x89C\x10" + b"\x00" * 16 + b"]N", None, UnsafePickleError, "mask has None bytes"),
    ("data too short", b"\x89C\x08" + b"\x00" * 8 + b"C\x02\x00\x00N", None, UnsafePickleError, "bytes of data"),
    ("six items", b"\x89C\x10" + b"\x00" * 16 + b"C\x02\x00\x00", None, UnsafePickleError, "masked array state"),
    ("fill is a global", b"\x89C\x10" + b"\x00" * 16 + b"C\x02\x00\x00cnumpy\nndarray\n", None, UnsafePickleError,
     "fill value"),
    ("type other than b", b"\x89C\x10" + b"\x00" * 16 + b"C\x02\x00\x00N", b"X\x01\x00\x00\x00O", UnsafePickleError,
     "type other than 'b'"),
])
def test_corrupt_masked_arrays_are_refused(tmp_path, label, items, args, error, words):
    data = _masked_pickle(items) if args is None else _masked_pickle(items, args)
    path = tmp_path / "bad.pkl"
    path.write_bytes(data)
    with pytest.raises((error, InputError), match=words):
        safe_load(path)
    assert not portable.audit(path).safe
