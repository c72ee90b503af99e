"""Hostile files from an attacker's round on the loader (issue 12, "verified independently, on hostile files you
have not seen"), each written here, not checked in: every command ends with exit 1 and a message naming the file,
no traceback, within the harness's time and memory bound, and `portable audit` never says SAFE for them.

- Arrays of a zero-size dtype (`V0`, `S0`, `U0`, an empty structured dtype) that declare 2**39 or 2**78 items: the
  file holds none of their bytes, so the size check (shape x item size = the bytes given) passed; numpy built
  them, `portable convert` of a OneHotEncoder whose `categories_` held 2**39 empty strings ran for ever, a
  StandardScaler's `mean_` asked for 2 TiB, a LogisticRegression's `classes_` gave a MemoryError called "not
  enough memory". In pickle, joblib and skops files.
- A HistGradientBoosting model whose `_n_features` (10**7) says more than its `n_features_in_` (3), with nodes that
  read column 5,000,000: the predictors were checked against `_n_features`, scikit-learn checks rows against
  `n_features_in_`, so `predict` read far outside each row (SIGSEGV without portable; audit said SAFE).

Oracles: the controls load the same bytes with pickle/joblib/skops and scikit-learn (numpy builds the huge arrays;
the HGB model crashes the interpreter).
"""
from __future__ import annotations

import io
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest

from portable.errors import PortableError
from portable.safety import safe_load

from .test_hostile_inputs import run_harness

HUGE = 2 ** 39


def _zero_size_models() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = np.random.default_rng(0).random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    encoder = OneHotEncoder().fit(np.array([["a"], ["b"]]))
    encoder.categories_ = [np.ndarray((HUGE,), dtype="U0")]
    scaler = StandardScaler().fit(X)
    scaler.mean_ = np.ndarray((HUGE,), dtype="S0")
    lr = LogisticRegression().fit(X, y)
    lr.classes_ = np.ndarray((HUGE, HUGE), dtype=np.dtype([]))  # 2**78 items of an empty structured dtype
    return {"encoder_u0": encoder, "scaler_s0": scaler, "lr_v0": lr}


def _joblib_wrapper_u0() -> bytes:
    """A OneHotEncoder whose category array is a joblib array wrapper declaring 2**39 items of `<U0` (joblib.dump
    itself cannot write one: it divides by the item size)."""
    from joblib.numpy_pickle import NumpyArrayWrapper
    from sklearn.preprocessing import OneHotEncoder

    encoder = OneHotEncoder().fit(np.array([["a"], ["b"]]))
    encoder.categories_ = [NumpyArrayWrapper(np.ndarray, (HUGE,), "C", np.dtype("U0"))]
    return pickle.dumps(encoder, protocol=4)


def _hgb_feature_lie() -> object:
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = np.random.default_rng(0).random((200, 3))
    m = HistGradientBoostingRegressor(max_iter=5).fit(X, X[:, 0] * 2 + X[:, 1])
    m._n_features = 10 ** 7
    for predictors in m._predictors:
        for p in predictors:
            p.nodes["feature_idx"][p.nodes["is_leaf"] == 0] = 5_000_000
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    import skops.io as sio

    base = tmp_path_factory.mktemp("crafted")
    out: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in _zero_size_models().items():
            for proto in (2, 5):
                out[f"{name}_p{proto}"] = base / f"{name}_p{proto}.pkl"
                out[f"{name}_p{proto}"].write_bytes(pickle.dumps(model, protocol=proto))
            if name != "lr_v0":
                out[f"{name}_skops"] = base / f"{name}.skops"
                sio.dump(model, out[f"{name}_skops"])
        out["encoder_u0_joblib_wrapper"] = base / "encoder_u0_wrapper.pkl"
        out["encoder_u0_joblib_wrapper"].write_bytes(_joblib_wrapper_u0())
        hgb = _hgb_feature_lie()
        out["hgb_feature_lie_p5"] = base / "hgb_feature_lie.pkl"
        out["hgb_feature_lie_p5"].write_bytes(pickle.dumps(hgb, protocol=5))
        out["hgb_feature_lie_joblib"] = base / "hgb_feature_lie.joblib"
        joblib.dump(hgb, out["hgb_feature_lie_joblib"])
    return out


class _Case:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name, self.argv = name, argv


def test_crafted_files_are_refused_by_every_command(files, tmp_path):
    cases = []
    for name, path in files.items():
        cases.append(_Case(f"{name}:inspect", ["inspect", str(path)]))
        cases.append(_Case(f"{name}:convert", ["convert", str(path), "--to", "onnx", "-o",
                                               str(tmp_path / f"{name}.onnx"), "--samples", "50"]))
        cases.append(_Case(f"{name}:audit", ["audit", str(path)]))
    proc, results, running = run_harness(tmp_path, cases)
    assert proc.returncode == 0, f"the harness died (exit {proc.returncode}) running {running}: {proc.stderr[-2000:]}"
    problems = []
    for case, r in zip(cases, results):
        message = (r["stderr"] + r["stdout"]).strip()
        name, command = case.name.split(":")
        if r["escaped"] or r["code"] != 1 or "Traceback" in message:
            problems.append(f"{case.name}: exit {r['code']}, escaped {r['escaped']}: {message[:400]}")
        elif command == "audit" and "verdict: SAFE" in message:
            problems.append(f"{case.name}: audit says SAFE: {message[-400:]}")
        elif command != "audit" and files[name].name not in message:
            problems.append(f"{case.name}: the message does not name the file: {message[:400]}")
        elif command != "audit" and "feature" not in message and "zero-size dtype" not in message:
            problems.append(f"{case.name}: the message does not say why: {message[:400]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["encoder_u0_p5", "scaler_s0_skops", "lr_v0_p2", "encoder_u0_joblib_wrapper",
                                  "hgb_feature_lie_p5", "hgb_feature_lie_joblib"])
def test_the_loader_says_why(files, name):
    with pytest.raises(PortableError) as info:
        safe_load(files[name])
    message = str(info.value)
    want = "feature index outside [0, 3)" if name.startswith("hgb") else "zero-size dtype"
    assert want in message and "MemoryError" not in message, message


def test_controls_the_crafted_files_are_live_without_portable(files):
    """numpy builds the zero-size arrays of 2**39 items from a few hundred bytes; the HGB model loads with pickle
    and crashes the interpreter in predict."""
    encoder = pickle.loads(files["encoder_u0_p5"].read_bytes())
    assert encoder.categories_[0].shape == (HUGE,) and encoder.categories_[0].dtype.itemsize == 0
    assert files["encoder_u0_p5"].stat().st_size < 4096
    code = ("import pickle, sys, numpy as np; m = pickle.load(open(sys.argv[1], 'rb')); "
            "print(m.predict(np.random.default_rng(0).random((4, 3))))")
    proc = subprocess.run([sys.executable, "-c", code, str(files["hgb_feature_lie_p5"])], capture_output=True,
                          timeout=120)
    assert proc.returncode < 0, (proc.returncode, proc.stderr[-400:])
