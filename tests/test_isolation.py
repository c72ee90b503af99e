"""Crash isolation (issue 12, item 3): an untrusted original model runs in a worker process with a time and
memory limit; a segfault, a hang or a memory blow-up becomes a clear error (CLI exit 1), never the caller's
crash. In-memory estimators are trusted and run in-process."""
from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import portable
from portable.errors import ModelCrashedError

from .hostile.crashy import Misbehaves
from .hostile.run import assert_clean_failure, run_cli

TRUST = ["tests.hostile.crashy"]


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def good_onnx(tmp_path_factory, iris):
    X, y = iris
    path = tmp_path_factory.mktemp("onnx") / "logreg.onnx"
    portable.convert(LogisticRegression(max_iter=500).fit(X, y), to="onnx", check=False).save(path)
    return path


def _pickle(tmp_path: Path, iris, how: str, after: int = 0) -> Path:
    X, y = iris
    path = tmp_path / f"{how}.pkl"
    path.write_bytes(pickle.dumps(Misbehaves(how, after).fit(X, y)))
    return path


@pytest.mark.parametrize("how,expect", [("segv", "SIGSEGV"), ("exit", "exited with code 3")])
def test_a_crashing_original_is_reported_and_the_caller_survives(tmp_path, iris, how, expect):
    X, _ = iris
    model = portable.load(_pickle(tmp_path, iris, how, after=5), trust=TRUST)
    assert model.isolate
    out = model.run({"X": X[:5]})  # fine on small batches: the worker loaded the model once
    assert out["probabilities"].shape == (5, 3)
    with pytest.raises(ModelCrashedError, match=f"crashed.*{expect}.*batch of 150 row") as info:
        model.run({"X": X})
    assert str(model.origin.path) in str(info.value)
    with pytest.raises(ModelCrashedError):  # stays failed: no restart loop
        model.run({"X": X[:2]})


def test_a_hanging_original_is_stopped(tmp_path, iris, monkeypatch):
    X, _ = iris
    monkeypatch.setenv("PORTABLE_ORIGINAL_TIMEOUT", "5")
    model = portable.load(_pickle(tmp_path, iris, "hang"), trust=TRUST)
    start = time.monotonic()
    with pytest.raises(ModelCrashedError, match="hung on a batch of 150 row.*5 s"):
        model.run({"X": X})
    pid = None if model._runner.proc is None else model._runner.proc.pid
    assert pid is None  # the worker was stopped
    assert time.monotonic() - start < 120


def test_a_memory_hungry_original_is_stopped(tmp_path, iris, monkeypatch):
    X, _ = iris
    monkeypatch.setenv("PORTABLE_ORIGINAL_MEMORY", str(3 << 30))
    model = portable.load(_pickle(tmp_path, iris, "memory"), trust=TRUST)
    with pytest.raises(ModelCrashedError, match="out of memory|crashed"):
        model.run({"X": X})


def test_cli_check_reports_the_crash_with_exit_1(tmp_path, iris, good_onnx):
    path = _pickle(tmp_path, iris, "segv")
    run = run_cli("check", str(path), str(good_onnx), "--trust", TRUST[0], "--samples", "50", timeout=300,
                  cwd=Path(__file__).resolve().parents[1])
    message = assert_clean_failure(run, needle="crashed")
    assert "SIGSEGV" in message


def test_isolated_results_match_in_process(tmp_path, iris):
    X, y = iris
    est = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path / "lr.pkl"
    path.write_bytes(pickle.dumps(est))
    model = portable.load(path)
    assert model.isolate
    out = model.run({"X": X})
    np.testing.assert_array_equal(out["label"], est.predict(X))
    np.testing.assert_array_equal(out["probabilities"], est.predict_proba(X))
    pid = model._runner.proc.pid
    model.close()
    assert model._runner is None
    with pytest.raises(OSError):
        os.kill(pid, 0)


def test_in_memory_estimators_run_in_process(iris):
    X, y = iris
    model = portable.load(LogisticRegression(max_iter=500).fit(X, y))
    assert not getattr(model, "isolate", False)
    assert model.run({"X": X})["label"].shape == (150,)


def test_an_idle_worker_exits_and_is_restarted(tmp_path, iris, monkeypatch):
    X, y = iris
    monkeypatch.setenv("PORTABLE_ORIGINAL_IDLE", "1")
    path = tmp_path / "lr.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(X, y)))
    model = portable.load(path)
    first = model.run({"X": X})["label"]
    proc = model._runner.proc
    proc.wait(timeout=60)  # exits on its own once idle
    assert proc.returncode == 0
    np.testing.assert_array_equal(model.run({"X": X})["label"], first)


def test_a_worker_that_cannot_load_the_file_says_why_every_time(tmp_path, iris):
    """The worker loads the file itself; when it cannot (the file changed after the caller loaded it, or the
    worker's loader refused it), the caller gets that reason, for this batch and every later one. The worker
    used to stay up with no model and answer every later batch 'unknown request' (how a GridSearchCV pickle's
    conversion failed: 'the original pickle model failed on generated inputs: unknown request')."""
    from portable.errors import PortableError

    X, y = iris
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(X, y)))
    model = portable.load(path)
    assert model.isolate
    path.write_bytes(b"\x80\x04this is not a pickle any more")
    for _ in range(2):
        with pytest.raises(PortableError) as info:
            model.run({"X": X[:5]})
        assert "unknown request" not in str(info.value) and "pickle" in str(info.value), str(info.value)
    model.close()
