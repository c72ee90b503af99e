"""The vectorised acceptance tests of the loader's internals checks (`internals._hgb_nodes_ok`, the KD/Ball tree
checks) never accept a corrupt predictor or tree: each corruption below makes the fast test say no (and the full
load refuse the file), while the untouched models pass it."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neighbors import KNeighborsClassifier

from portable.errors import CorruptModelError
from portable.safety import internals, safe_load


@pytest.fixture(scope="module")
def hgb():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 4)
    X[:, 1] = rng.randint(0, 5, 300)
    y = ((X[:, 0] > 0.5) ^ (X[:, 1] % 2 == 1)).astype(int)
    return HistGradientBoostingClassifier(max_iter=8, categorical_features=[1], random_state=0).fit(X, y)


def _found(model):
    return [(p, internals._ROOT, model) for it in model._predictors for p in it]


def _inner(nodes, categorical=None):
    mask = nodes["is_leaf"] == 0
    if categorical is not None:
        mask &= nodes["is_categorical"] == categorical
    return int(np.flatnonzero(mask)[0])


def _nodes_of_first_with(model, categorical):
    for it in model._predictors:
        for p in it:
            if ((p.nodes["is_leaf"] == 0) & (p.nodes["is_categorical"] == 1)).any() or not categorical:
                return p.nodes
    raise AssertionError("no predictor with a categorical split")


HGB_CORRUPTIONS = {
    "feature negative": lambda n: n["feature_idx"].__setitem__(_inner(n), -1),
    "feature past the last": lambda n: n["feature_idx"].__setitem__(_inner(n), 4),
    "is_leaf 2": lambda n: n["is_leaf"].__setitem__(0, 2),
    "missing flag 2": lambda n: n["missing_go_to_left"].__setitem__(0, 2),
    "is_categorical 2": lambda n: n["is_categorical"].__setitem__(0, 2),
    "bitset index past the bitsets": lambda n: n["bitset_idx"].__setitem__(_inner(n, 1), 10 ** 6),
    "left child past the tree": lambda n: n["left"].__setitem__(_inner(n), len(n)),
    "child before its parent": lambda n: n["right"].__setitem__(_inner(n), 0),
    "two parents": lambda n: n["left"].__setitem__(_inner(n), n["right"][_inner(n)]),
}


@pytest.mark.parametrize("label", list(HGB_CORRUPTIONS))
def test_hgb_fast_check_refuses(hgb, tmp_path, label):
    assert internals._hgb_nodes_ok(_found(hgb))
    bad = copy.deepcopy(hgb)
    HGB_CORRUPTIONS[label](_nodes_of_first_with(bad, "bitset" in label))
    assert not internals._hgb_nodes_ok(_found(bad))
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(bad, protocol=4))
    with pytest.raises(CorruptModelError):
        safe_load(path)


def _kd_with(mutate):
    rng = np.random.RandomState(0)
    est = KNeighborsClassifier(algorithm="kd_tree", leaf_size=5).fit(rng.rand(200, 3), np.arange(200) % 2)
    state = list(est._tree.__getstate__())
    state[1], state[2] = state[1].copy(), state[2].copy()
    mutate(state)
    est._tree.__setstate__(tuple(state))
    return est


KD_CORRUPTIONS = {
    "index negative": lambda s: s[1].__setitem__(3, -1),
    "index past the data": lambda s: s[1].__setitem__(3, 200),
    "range start negative": lambda s: s[2]["idx_start"].__setitem__(1, -3),
    "range end before start": lambda s: s[2]["idx_end"].__setitem__(1, s[2]["idx_start"][1] - 1),
    "range end past the data": lambda s: s[2]["idx_end"].__setitem__(1, 201),
    "internal node on the last level": lambda s: s[2]["is_leaf"].__setitem__(len(s[2]) - 1, 0),
}


@pytest.mark.parametrize("label", list(KD_CORRUPTIONS))
def test_kd_tree_check_refuses(tmp_path, label):
    internals._binary_tree(_kd_with(lambda s: None)._tree, "")
    bad = _kd_with(KD_CORRUPTIONS[label])
    with pytest.raises(internals._Bad):
        internals._binary_tree(bad._tree, "")
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(bad, protocol=4))
    with pytest.raises(CorruptModelError):
        safe_load(path)


def test_index_range_check_reads_byte_order():
    assert internals._past(np.array([0, 5, -1], ">i8"), 10)
    assert not internals._past(np.array([0, 9], ">i8"), 10)
    assert internals._past(np.array([0, 10], np.int32), 10)
    assert not internals._past(np.array([0, 9], np.uint16), 10)
    assert internals._past(np.array([0.0, -1.0]), 10)
