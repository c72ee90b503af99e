"""Pickles that read or write process memory through allowlisted names (issue 12, item 1).

The control tests prove each payload really reads (or writes) memory when loaded without portable: in a
subprocess, pointed at a buffer that subprocess owns. Then the same files, as plain pickles of every protocol,
joblib files (compressed or not) and hidden inside a fitted model, are refused by `load` (exit 1 from the CLI,
one paragraph, no traceback) and flagged by `audit`.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import portable
from portable.errors import InputError

from .hostile.memory import OBJECTS, in_a_model
from .hostile.run import assert_clean_failure, run_cli, run_python

_CONTROL = r"""
import ctypes, pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
from tests.hostile.memory import BUILDERS
secret = np.frombuffer(b"portable-secret!", dtype=np.uint8).copy()
read = np.asarray(pickle.loads(BUILDERS["ufunc_read"](secret.ctypes.data, 16))).tobytes()
print("ufunc_read", read == secret.tobytes())
read = np.asarray(pickle.loads(BUILDERS["matrix_read"](secret.ctypes.data, 16))).tobytes()
print("matrix_read", read == secret.tobytes())
target = np.zeros(16, np.uint8)
pickle.loads(BUILDERS["matrix_write"](target.ctypes.data, 16))
print("matrix_write", bool((target == 1).all()))
owned = "a string this process owns"
ctypes.pythonapi.Py_IncRef(ctypes.py_object(owned))  # the wild array will drop a reference it never took
ctypes.pythonapi.Py_IncRef(ctypes.py_object(owned))
arr = pickle.loads(BUILDERS["dtype_flags"](id(owned), 16))
print("dtype_flags", arr.tolist()[0] is owned)
"""


def test_memory_payloads_really_work_without_portable():
    """The control: plain pickle.loads reads a buffer by its address, writes one, and turns bytes into a pointer."""
    run = run_python(_CONTROL, str(Path(__file__).resolve().parents[1]), timeout=120)
    assert run.returncode == 0, run.output
    results = dict(line.split() for line in run.stdout.strip().splitlines())
    assert results == {"ufunc_read": "True", "matrix_read": "True", "matrix_write": "True",
                       "dtype_flags": "True"}, run.output


def _files(tmp_path: Path) -> list[tuple[str, Path]]:
    import joblib

    buf = np.zeros(16, np.uint8)  # an address of ours: the files are never loaded without portable anyway
    out = []
    for name, make in OBJECTS.items():
        for protocol in (2, 5):
            path = tmp_path / f"{name}-p{protocol}.pkl"
            path.write_bytes(pickle.dumps(make(buf.ctypes.data, 16), protocol=protocol))
            out.append((f"{name}-p{protocol}", path))
        hidden = tmp_path / f"{name}-in-model.pkl"
        hidden.write_bytes(pickle.dumps(in_a_model(make(buf.ctypes.data, 16)), protocol=4))
        out.append((f"{name}-in-model", hidden))
        for compress in (0, 3):
            path = tmp_path / f"{name}-z{compress}.joblib"
            joblib.dump(in_a_model(make(buf.ctypes.data, 16)) if compress else make(buf.ctypes.data, 16), path,
                        compress=compress)
            out.append((f"{name}-joblib-z{compress}", path))
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> list[tuple[str, Path]]:
    return _files(tmp_path_factory.mktemp("memory"))


def test_every_memory_file_is_refused_by_load_and_flagged_by_audit(hostile):
    assert len(hostile) >= 20
    for label, path in hostile:
        with pytest.raises(InputError):
            portable.load(path)
        result = portable.audit(path)
        assert not result.safe, (label, result.to_text())
        assert not result.verdict.startswith("SAFE"), label


def test_cli_refuses_memory_files_cleanly(hostile):
    chosen = {"ufunc_read-p2", "matrix_write-in-model", "dtype_flags-joblib-z3"}
    for label, path in hostile:
        if label not in chosen:
            continue
        run = run_cli("convert", str(path), "--to", "onnx", "-o", str(path.with_suffix(".onnx")), timeout=180)
        assert_clean_failure(run)
        assert not path.with_suffix(".onnx").exists(), label
    label, path = next(h for h in hostile if h[0] == "dtype_flags-p5")
    run = run_cli("audit", str(path), "--json", timeout=180)
    assert run.returncode == 1, (label, run.output)
    report = json.loads(run.stdout)
    assert report["safe"] is False and "disagrees with its type code" in report["refusal"], report


def test_ufuncs_are_kept_as_values_and_never_called(tmp_path):
    """A numpy ufunc is what the tutorials pass to FunctionTransformer and TransformedTargetRegressor
    (func=np.log1p, inverse_func=np.expm1): kept as a value it loads from pickle, joblib and skops files and computes
    what scikit-learn's own load computes. What made ufuncs dangerous is a file *calling* one (REDUCE) over an
    array-protocol object: any call of a ufunc by a file is refused, even over a validated array, by load and audit
    (skops archives never call the functions they name)."""
    import joblib
    import skops.io as sio
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from .hostile.memory import _Reduce

    X = np.arange(1.0, 13.0).reshape(6, 2)
    y = X @ np.array([1.0, 2.0])
    models = [make_pipeline(FunctionTransformer(np.log1p), LinearRegression()).fit(X, y),
              TransformedTargetRegressor(LinearRegression(), func=np.log1p, inverse_func=np.expm1).fit(X, y)]
    for i, est in enumerate(models):
        paths = [tmp_path / f"m{i}.pkl", tmp_path / f"m{i}.joblib", tmp_path / f"m{i}.skops"]
        paths[0].write_bytes(pickle.dumps(est, protocol=5))
        joblib.dump(est, paths[1])
        sio.dump(est, paths[2])
        for path in paths:
            loaded = portable.load(path).estimator
            np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
            assert portable.audit(path).safe
    for name, obj in (("positive", _Reduce(np.positive, (np.arange(3.0),))),
                      ("add", _Reduce(np.add, (np.arange(3.0), 1.0))),
                      ("log1p in a model", in_a_model(_Reduce(np.log1p, (np.arange(3.0),))))):
        assert isinstance(pickle.loads(pickle.dumps(obj)), (np.ndarray, object))  # the control: it computes
        for path in (tmp_path / "call.pkl", tmp_path / "call.joblib"):
            path.write_bytes(pickle.dumps(obj, protocol=5)) if path.suffix == ".pkl" else joblib.dump(obj, path)
            # a ufunc of one array is kept as a value and refused when called; one of two (np.add) not even that
            why, audit_why = (("not on the allowlist: numpy.add", "--trust numpy.add") if name == "add" else
                              ("not call", "not call"))
            with pytest.raises(InputError, match=why):
                portable.load(path)
            result = portable.audit(path)
            assert not result.safe and audit_why in result.verdict, (name, result.to_text())
    np_add_value = tmp_path / "add_value.pkl"  # np.add kept as a value (never called): refused by name
    np_add_value.write_bytes(pickle.dumps(FunctionTransformer(np.add), protocol=5))
    with pytest.raises(InputError, match="numpy.add"):
        portable.load(np_add_value)
    assert not portable.audit(np_add_value).safe


def test_refused_memory_write_leaves_the_target_untouched(tmp_path):
    """The sentinel: the write payload points at a buffer of this process; after portable refuses the file (as
    pickle, joblib and inside a model), the buffer is still all zeros."""
    import joblib

    target = np.zeros(16, np.uint8)
    make = OBJECTS["matrix_write"]
    paths = [tmp_path / "w.pkl", tmp_path / "w.joblib", tmp_path / "w-model.pkl"]
    paths[0].write_bytes(pickle.dumps(make(target.ctypes.data, 16), protocol=5))
    joblib.dump(make(target.ctypes.data, 16), paths[1])
    paths[2].write_bytes(pickle.dumps(in_a_model(make(target.ctypes.data, 16)), protocol=2))
    for path in paths:
        with pytest.raises(InputError):
            portable.load(path)
        assert not portable.audit(path).safe
    assert not target.any()
