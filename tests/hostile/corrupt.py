"""Well-typed but corrupt fitted models (issue 12, item 2): every name in them is allowlisted and every array is a
plain array, but their internals make scikit-learn's compiled code read outside its buffers (a segfault) or
loop for ever. `CASES` maps a case name to a builder returning (object to pickle, attribute path expected in
the refusal). Built fresh by the tests; nothing is checked in.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import numpy as np


class Reduce:
    """Pickles as `func(*args)` followed by BUILD `state`: how the tests hand a library class a corrupt state."""

    def __init__(self, func: Any, args: tuple, state: Any) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple:
        return self.func, self.args, self.state


def _iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _tree_with(mutate: Callable[[dict, Any], None], forest: bool = False) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.tree._tree import Tree

    X, y = _iris()
    est = (RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0) if forest
           else DecisionTreeClassifier(max_depth=4, random_state=0)).fit(X, y)
    target = est.estimators_[3] if forest else est
    func, args, state = target.tree_.__reduce__()
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    args = list(args)
    mutate(state, args)
    target.tree_ = Reduce(Tree, tuple(args), state)
    return est


def _internal(state: dict) -> int:
    return int(np.flatnonzero(state["nodes"]["left_child"] != -1)[1])


def _set(field: str, value: Any, node: Callable[[dict], int] = lambda s: 0) -> Callable[[dict, Any], None]:
    def mutate(state: dict, args: Any) -> None:
        state["nodes"][field][node(state)] = value(state) if callable(value) else value

    return mutate


def _node_count(state: dict, args: Any) -> None:
    state["node_count"] = 10 ** 6


def _n_features(state: dict, args: Any) -> None:
    args[0] = 100


def _knn_with(mutate: Callable[[list], None], algorithm: str = "kd_tree") -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _iris()
    est = KNeighborsClassifier(algorithm=algorithm).fit(X, y)
    func, args, state = est._tree.__reduce__()
    state = [s.copy() if isinstance(s, np.ndarray) else s for s in state]
    mutate(state)
    est._tree = Reduce(func, args, tuple(state))
    return est


def _idx(state: list) -> None:
    state[1][5] = 10 ** 7


def _node_end(state: list) -> None:
    state[2]["idx_end"][0] = 10 ** 7


def _levels(state: list) -> None:
    state[5] = 40  # n_levels: 2**40 - 1 nodes claimed


def _leaf_flag(state: list) -> None:
    state[2]["is_leaf"][:] = 0


def _sparse_knn(mutate: Callable[[Any], None]) -> Any:
    import scipy.sparse as sp
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _iris()
    est = KNeighborsClassifier(algorithm="brute").fit(sp.csr_matrix(X), y)
    mutate(est._fit_X)
    return est


def _sparse_svc(mutate: Callable[[Any], None]) -> Any:
    import scipy.sparse as sp
    from sklearn.svm import SVC

    X, y = _iris()
    est = SVC().fit(sp.csr_matrix(X), y)
    mutate(est.support_vectors_)
    return est


def _col(m: Any) -> None:
    m.indices[3] = 10 ** 6


def _ptr(m: Any) -> None:
    m.indptr[5] = m.indptr[-1] + 1000


def _ptr_down(m: Any) -> None:
    m.indptr[5], m.indptr[6] = m.indptr[6], m.indptr[5] - 1


def _svc(mutate: Callable[[Any], None]) -> Any:
    from sklearn.svm import SVC

    X, y = _iris()
    est = SVC().fit(X, y)
    mutate(est)
    return est


@functools.lru_cache(maxsize=None)
def _hgb_fitted() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _iris()
    return HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)


def _hgb(mutate: Callable[[Any], None]) -> Any:
    est = copy.deepcopy(_hgb_fitted())
    mutate(est._predictors[1][2].nodes)
    return est


def _hgb_inner(nodes: np.ndarray) -> int:
    return int(np.flatnonzero(nodes["is_leaf"] == 0)[0])


def _hgb_feature_past_the_last(regroup: Callable[[list], Any]) -> Any:
    """A split on feature n_features (one past the last: only the estimator's feature count refuses it), with the
    estimator's `_predictors` regrouped (HistGradientBoosting runs any iterable of iterables of predictors)."""
    est = _hgb(lambda n: n["feature_idx"].__setitem__(_hgb_inner(n), 4))  # iris: 4 features
    est._predictors = regroup(est._predictors)
    return est


def _hgb_shared_with_a_narrower_model() -> Any:
    """Two fitted HGB models, the second on 2 features, sharing a predictor of the first that splits on feature 2
    or 3: valid for the first model, past the last feature of the second (the shared predictor must be checked
    against both owners)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    wide = copy.deepcopy(_hgb_fitted())
    X, y = _iris()
    narrow = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X[:, :2], y)
    shared = next(p for it in wide._predictors for p in it
                  if (p.nodes["feature_idx"][p.nodes["is_leaf"] == 0] >= 2).any())
    narrow._predictors[0][0] = shared
    return [wide, narrow]


def _onehot(mutate: Callable[[Any], None]) -> Any:
    from sklearn.preprocessing import OneHotEncoder

    X = np.array([["a", "x"], ["b", "y"], ["c", "x"]], dtype=object)
    est = OneHotEncoder(drop="first").fit(X)
    mutate(est)
    return est


CASES: dict[str, Callable[[], tuple[Any, str]]] = {
    "tree_left_child_negative": lambda: (_tree_with(_set("left_child", -7)), "tree_.children_left"),
    "tree_feature_huge": lambda: (_tree_with(_set("feature", 10 ** 9)), "tree_.feature"),
    "tree_feature_negative": lambda: (_tree_with(_set("feature", -5)), "tree_.feature"),
    "tree_self_loop": lambda: (_tree_with(_set("left_child", _internal, _internal)), "tree_.children_left"),
    "tree_cycle_to_root": lambda: (_tree_with(_set("right_child", 0, _internal)), "tree_.children_left"),
    "tree_one_child": lambda: (_tree_with(_set("left_child", -1)), "tree_.children_right"),
    "tree_n_features_mismatch": lambda: (_tree_with(_n_features), "tree_.n_features"),
    "forest_one_bad_tree": lambda: (_tree_with(_set("left_child", 10 ** 6), forest=True),
                                    "estimators_[3].tree_.children_left"),
    "kdtree_idx_array": lambda: (_knn_with(_idx), "_tree.idx_array"),
    "kdtree_node_end": lambda: (_knn_with(_node_end), "_tree.node_data"),
    "kdtree_levels": lambda: (_knn_with(_levels), "_tree.node_data"),
    "balltree_idx_array": lambda: (_knn_with(_idx, "ball_tree"), "_tree.idx_array"),
    "balltree_leaf_flags": lambda: (_knn_with(_leaf_flag, "ball_tree"), "_tree.node_data"),
    "sparse_knn_indices": lambda: (_sparse_knn(_col), "_fit_X.indices"),
    "sparse_knn_indptr": lambda: (_sparse_knn(_ptr), "_fit_X.indptr"),
    "sparse_knn_indptr_decreasing": lambda: (_sparse_knn(_ptr_down), "_fit_X.indptr"),
    "sparse_svc_indices": lambda: (_sparse_svc(_col), "support_vectors_.indices"),
    "svc_dual_coef_short": lambda: (_svc(lambda e: setattr(e, "_dual_coef_", e._dual_coef_[:, :-3])),
                                    "support_vectors_"),
    "svc_n_support": lambda: (_svc(lambda e: setattr(e, "_n_support", e._n_support * 3)), "_n_support"),
    "svc_support_index": lambda: (_svc(lambda e: e.support_.__setitem__(0, 10 ** 6)), "support_"),
    "hgb_child_index": lambda: (_hgb(lambda n: n["left"].__setitem__(_hgb_inner(n), 10 ** 6)), "_predictors"),
    "hgb_feature_index": lambda: (_hgb(lambda n: n["feature_idx"].__setitem__(_hgb_inner(n), 10 ** 6)),
                                  "_predictors"),
    "hgb_feature_past_the_last": lambda: (_hgb_feature_past_the_last(list), "_predictors"),
    "hgb_feature_past_the_last_in_tuples": lambda: (
        _hgb_feature_past_the_last(lambda ps: tuple(tuple(it) for it in ps)), "_predictors"),
    "hgb_feature_past_the_last_in_a_set": lambda: (
        _hgb_feature_past_the_last(lambda ps: {tuple(it) for it in ps}), "_predictors"),
    "hgb_predictor_shared_with_a_narrower_model": lambda: (_hgb_shared_with_a_narrower_model(), "_predictors"),
    "hgb_self_loop": lambda: (_hgb(lambda n: n["right"].__setitem__(_hgb_inner(n), _hgb_inner(n))),
                              "_predictors"),
    "onehot_drop_idx": lambda: (_onehot(lambda e: e.drop_idx_.__setitem__(0, 10 ** 6)), "drop_idx_"),
    "onehot_categories_count": lambda: (_onehot(lambda e: e.categories_.pop()), "categories_"),
}

#: Cases that crash (a signal) or hang plain scikit-learn on predict: the control test runs them unprotected.
#: (left_child=-7 reads just before the node array: undefined behaviour that crashed here but predicted garbage
#: in a fresh CI environment, so the control uses cases whose effect is reliable.)
CRASHERS = ("tree_feature_huge", "tree_self_loop", "kdtree_idx_array", "balltree_idx_array",
            "sparse_knn_indptr", "hgb_child_index")
