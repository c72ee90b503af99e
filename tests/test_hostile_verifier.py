"""Hostile inputs of an independent verifier's pass (issue 12): each case of `tests/hostile/verifier.py` runs
through the real command line, all of them in one subprocess under RLIMIT_AS and a timeout, and must end with its
exit code, one short paragraph naming the problem (and the file), no traceback, no crash, nothing written."""
from __future__ import annotations

import pytest

from .hostile.verifier import CASES, build_verifier
from .test_hostile_inputs import assert_case_clean, harness_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("verifier")
    cases = build_verifier(base / "files")
    return harness_results(base, cases)


@pytest.mark.parametrize("name", list(CASES))
def test_verifier_hostile_input(results, name):
    assert_case_clean(results, name)


def test_valid_tree_ensembles_still_load_and_run(tmp_path):
    """The tree check refuses nothing a converter writes: forests numbered per tree and across the model, a
    classifier, a DAG-free ai.onnx.ml 5 ensemble, all compared with scikit-learn/onnxruntime."""
    import numpy as np
    import onnxruntime as ort
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

    import portable

    from .hostile.verifier import tree_v3, tree_v5

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    for est in (RandomForestRegressor(n_estimators=3, max_depth=6, random_state=0).fit(X, X[:, 0] + X[:, 1]),
                GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, (X[:, 0] > 0) + (X[:, 1] > 0))):
        art = portable.convert(est, to="onnx", samples=50)
        art.save(tmp_path / "m.onnx", force=True)
        assert portable.check(est, tmp_path / "m.onnx", samples=50).equivalent
    v3 = tree_v3(tmp_path / "v3.onnx", [1, 0, 0], [2, 0, 0], ["BRANCH_LEQ", "LEAF", "LEAF"])
    v5 = tree_v5(tmp_path / "v5.onnx", [1, 0], [0, 1], [0, 1], [1, 1], 3)
    for path in (v3, v5):
        rows = rng.normal(size=(20, 4)).astype(np.float32)
        want = ort.InferenceSession(str(path)).run(None, {"X": rows})[0]
        got = portable.load(path).run({"X": rows})
        np.testing.assert_array_equal(next(iter(got.values())), want)


def test_a_precomputed_kernel_svc_loads_and_a_support_index_past_the_rows_is_refused(tmp_path):
    """A fitted SVC(kernel='precomputed') keeps no support vectors (libsvm reads the kernel's columns `support_` of
    the rows it is given): the loader called it corrupt ("0 support vectors, support_ (27,)"). It loads now and
    predicts as scikit-learn does; a `support_` index past the fitted rows (a read outside the row) is refused."""
    import pickle

    import numpy as np
    import pytest
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    import portable
    from portable.errors import CorruptModelError

    X, y = load_iris(return_X_y=True)
    K = X @ X.T
    est = SVC(kernel="precomputed").fit(K, y)
    (tmp_path / "svc.pkl").write_bytes(pickle.dumps(est))
    loaded = portable.load(tmp_path / "svc.pkl").estimator
    np.testing.assert_array_equal(loaded.predict(K[:20]), est.predict(K[:20]))
    est.support_[0] = len(K) + 5
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(est))
    with pytest.raises(CorruptModelError, match="support_"):
        portable.load(tmp_path / "bad.pkl")
