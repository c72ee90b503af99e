"""The loader's speed paths do what the slow paths do: the trees' links are checked in chunks of about
`internals._CHUNK_NODES` nodes (a corrupt tree in any chunk, at any chunk boundary, is still refused with its
attribute), and scikit-learn's `TreePredictor.__setstate__` is done without its per-predictor exception only when
its code is the one `onepass._PREDICTOR_SOURCE` spells, giving what scikit-learn's own gives (a cast included)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.tree._tree import Tree

from portable.errors import CorruptModelError
from portable.safety import internals, onepass, safe_load

from .hostile.corrupt import Reduce


@pytest.fixture(scope="module")
def forest():
    rng = np.random.RandomState(0)
    X = rng.rand(400, 6)
    y = (X[:, 0] + rng.rand(400) > 1).astype(int)
    return RandomForestClassifier(n_estimators=40, max_depth=8, random_state=0).fit(X, y)


def _with_bad_tree(model, k: int, field: str, value: int):
    model = pickle.loads(pickle.dumps(model))
    func, args, state = model.estimators_[k].tree_.__reduce__()
    state = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in state.items()}
    inner = int(np.flatnonzero(state["nodes"]["left_child"] != -1)[-1])
    state["nodes"][field][inner] = value
    model.estimators_[k].tree_ = Reduce(Tree, args, state)
    return model


@pytest.mark.parametrize("chunk", [1, 50, 300, 8192])
def test_chunked_tree_check_matches_the_whole(forest, chunk, monkeypatch):
    monkeypatch.setattr(internals, "_CHUNK_NODES", chunk)
    trees = [e.tree_ for e in forest.estimators_]
    nodes = [t.__getstate__()["nodes"] for t in trees]
    counts = [t.node_count for t in trees]
    feats = [t.n_features for t in trees]
    assert sum(counts) > 3000  # several chunks of 300 nodes, trees larger than a chunk of 50
    assert internals._node_chunks_ok(nodes, counts, feats)
    assert internals._node_links_ok(nodes, np.asarray(counts, np.int64), feats)
    for k in (0, 17, 39):
        bad = [n.copy() for n in nodes]
        inner = int(np.flatnonzero(bad[k]["left_child"] != -1)[-1])
        bad[k]["left_child"][inner] = inner  # a self loop
        assert not internals._node_chunks_ok(bad, counts, feats)
        assert not internals._node_links_ok(bad, np.asarray(counts, np.int64), feats)


@pytest.mark.parametrize("chunk", [1, 50, 8192])
@pytest.mark.parametrize("k", [0, 21, 39])
@pytest.mark.parametrize("field, value", [("left_child", 10 ** 6), ("feature", 10 ** 9), ("right_child", 0)])
def test_a_corrupt_tree_in_any_chunk_is_refused(forest, chunk, k, field, value, tmp_path, monkeypatch):
    monkeypatch.setattr(internals, "_CHUNK_NODES", chunk)
    path = tmp_path / "forest.pkl"
    path.write_bytes(pickle.dumps(forest, protocol=4))
    safe_load(path)  # the clean forest loads
    path.write_bytes(pickle.dumps(_with_bad_tree(forest, k, field, value), protocol=4))
    with pytest.raises(CorruptModelError) as err:
        safe_load(path)
    assert f"estimators_[{k}].tree_" in str(err.value)


@pytest.fixture(scope="module")
def hgb():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 4)
    y = (X[:, 0] > 0.5).astype(int)
    return HistGradientBoostingClassifier(max_iter=6, random_state=0).fit(X, y)


def test_scikit_learn_predictor_setstate_is_recognised_only_as_spelled():
    from sklearn.ensemble._hist_gradient_boosting import predictor

    known = onepass._known_predictor_setstate(TreePredictor.__setstate__)
    ns: dict = {}
    exec(compile(onepass._PREDICTOR_SOURCE, predictor.__file__, "exec", dont_inherit=True), ns)
    assert known == (onepass._code_key(TreePredictor.__setstate__.__code__) ==
                     onepass._code_key(ns["TreePredictor"].__setstate__.__code__))
    changed = onepass._PREDICTOR_SOURCE.replace('casting="same_kind"', 'casting="unsafe"')
    ns = {"PREDICTOR_RECORD_DTYPE": PREDICTOR_RECORD_DTYPE}
    exec(compile(changed, predictor.__file__, "exec", dont_inherit=True), ns)
    assert not onepass._known_predictor_setstate(ns["TreePredictor"].__setstate__)
    assert not onepass._known_predictor_setstate(lambda self, state: None)


def test_predictors_load_as_scikit_learn_loads_them(hgb, tmp_path):
    # the second predictor's nodes in another record layout (feature_idx as int32): scikit-learn's __setstate__
    # casts it back; the first keeps the file's own dtype object, as with pickle.load
    model = pickle.loads(pickle.dumps(hgb))
    narrow = np.dtype([(n, "<i4" if n == "feature_idx" else PREDICTOR_RECORD_DTYPE.fields[n][0])
                       for n in PREDICTOR_RECORD_DTYPE.names])
    model._predictors[1][0].nodes = model._predictors[1][0].nodes.astype(narrow)
    path = tmp_path / "hgb.pkl"
    path.write_bytes(pickle.dumps(model, protocol=4))
    with open(path, "rb") as f:
        plain = pickle.load(f)
    loaded, _notes = safe_load(path)
    X = np.random.RandomState(1).rand(200, 4)
    np.testing.assert_array_equal(loaded.predict_proba(X), plain.predict_proba(X))
    for mine, theirs in zip((p for it in loaded._predictors for p in it), (p for it in plain._predictors for p in it)):
        assert sorted(mine.__dict__) == sorted(theirs.__dict__)
        assert mine.nodes.dtype == theirs.nodes.dtype == PREDICTOR_RECORD_DTYPE
        np.testing.assert_array_equal(mine.nodes, theirs.nodes)
    assert loaded._predictors[1][0].nodes.dtype is not loaded._predictors[0][0].nodes.dtype  # cast: a new one


def test_loads_on_several_threads_keep_their_own_pass(forest, hgb, tmp_path):
    # the running pass's session is a module-level slot guarded by the pass's lock: loads on other threads wait
    # for it, and each gets its own objects and checks (a corrupt file among them is still refused)
    import threading

    files = {"forest": (forest, tmp_path / "f.pkl"), "hgb": (hgb, tmp_path / "h.pkl"),
             "bad": (_with_bad_tree(forest, 5, "left_child", 10 ** 6), tmp_path / "b.pkl")}
    for model, path in files.values():
        path.write_bytes(pickle.dumps(model, protocol=4))
    X = np.random.RandomState(2).rand(50, 6)
    want = {"forest": forest.predict_proba(X), "hgb": hgb.predict_proba(X[:, :4])}
    errors: list = []

    def work(name: str) -> None:
        try:
            for _ in range(4):
                try:
                    model, _notes = safe_load(files[name][1])
                except CorruptModelError:
                    if name != "bad":
                        raise
                    continue
                assert name != "bad"
                got = model.predict_proba(X if name == "forest" else X[:, :4])
                np.testing.assert_array_equal(got, want[name])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append((name, exc))

    threads = [threading.Thread(target=work, args=(name,)) for name in ("forest", "hgb", "bad") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert onepass._SESSION[0] is None
