"""Corrupt fitted internals (issue 12, item 2): refused on load, with the attribute path, before anything runs.

The control test shows the crashers really crash or hang plain scikit-learn (in a subprocess, bounded); then
every case, as a plain pickle, a joblib file (raw and compressed) and (for a selection) a skops archive, is
refused by `portable.load` with a CorruptModelError naming the attribute, and flagged by `portable audit`; the
CLI refuses a selection with exit 1 and one paragraph, in a subprocess.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import portable
from portable.errors import CorruptModelError

from .hostile.corrupt import CASES, CRASHERS
from .hostile.run import assert_clean_failure, run_cli, run_python

WRITERS = {
    "pickle": (".pkl", lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=5))),
    "pickle_p2": (".pkl", lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=2))),
    "joblib": (".joblib", lambda obj, path: __import__("joblib").dump(obj, path)),
    "joblib_zlib": (".joblib", lambda obj, path: __import__("joblib").dump(obj, path, compress=3)),
}
SKOPS_CASES = ("tree_left_child_negative", "forest_one_bad_tree", "kdtree_idx_array", "sparse_knn_indices",
               "svc_n_support", "hgb_feature_index", "onehot_drop_idx")


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory) -> dict[tuple[str, str], tuple[Path, str]]:
    root = tmp_path_factory.mktemp("corrupt")
    out = {}
    for name, build in CASES.items():
        obj, where = build()
        for how, (suffix, write) in WRITERS.items():
            path = root / f"{name}-{how}{suffix}"
            write(obj, path)
            out[name, how] = (path, where)
        if name in SKOPS_CASES:
            import skops.io as sio

            real = pickle.loads(pickle.dumps(obj))  # unpickling is harmless; running it is not
            path = root / f"{name}.skops"
            sio.dump(real, path)
            out[name, "skops"] = (path, where)
    return out


def test_corpus_covers_every_kind(corrupt):
    assert len(CASES) >= 20
    kinds = {name.split("_")[0] for name in CASES}
    assert {"tree", "forest", "kdtree", "balltree", "sparse", "svc", "hgb", "onehot"} <= kinds


_CONTROL = r"""
import os, pickle, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
import scipy.sparse as sp
from sklearn.datasets import load_iris
from tests.hostile.corrupt import CASES
X, _ = load_iris(return_X_y=True)
for name in sys.argv[2:]:
    obj, _ = CASES[name]()
    data = pickle.dumps(obj)
    pid = os.fork()
    if pid == 0:  # the child: plain pickle.loads, then predict as any user would
        model = pickle.loads(data)
        for _ in range(3):
            model.predict(sp.csr_matrix(X) if "sparse" in name else X)
        os._exit(0)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(name, "signal" if os.WIFSIGNALED(status) else f"exit{os.WEXITSTATUS(status)}", flush=True)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print(name, "hung", flush=True)
            break
        time.sleep(0.05)
"""


def test_crashers_really_crash_or_hang_plain_scikit_learn():
    """The control: without portable these models kill (a signal) or hang the process that predicts with them."""
    run = run_python(_CONTROL, str(Path(__file__).resolve().parents[1]), *CRASHERS, timeout=240)
    outcome = dict(line.split() for line in run.stdout.strip().splitlines())
    assert set(outcome) == set(CRASHERS), run.output[-3000:]
    assert all(v in ("signal", "hung") for v in outcome.values()), outcome


@pytest.mark.parametrize("how", list(WRITERS) + ["skops"])
def test_corrupt_models_are_refused_with_the_attribute(corrupt, how):
    cases = [(name, h) for name, h in corrupt if h == how]
    assert cases
    for name, h in cases:
        path, where = corrupt[name, h]
        with pytest.raises(CorruptModelError) as info:
            portable.load(path)
        assert where in str(info.value), (name, how, str(info.value))
        assert str(path) in str(info.value)


def test_audit_flags_corrupt_models(corrupt):
    for (name, how), (path, _where) in corrupt.items():
        if how not in ("pickle", "joblib_zlib", "skops"):
            continue
        result = portable.audit(path)
        assert not result.safe and result.refusal and "corrupt" in result.refusal, (name, how, result.to_text())


@pytest.mark.parametrize("name,how", [("tree_self_loop", "pickle"), ("kdtree_idx_array", "joblib_zlib"),
                                      ("sparse_svc_indices", "pickle_p2"), ("hgb_child_index", "joblib")])
def test_cli_refuses_corrupt_models_cleanly(corrupt, name, how, tmp_path):
    path, where = corrupt[name, how]
    out = tmp_path / "out.onnx"
    run = run_cli("convert", str(path), "--to", "onnx", "-o", str(out), timeout=180)
    message = assert_clean_failure(run, needle=where)
    assert "corrupt" in message and not out.exists()
