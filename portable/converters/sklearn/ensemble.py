"""Ensembles that are not plain tree averages: RandomTreesEmbedding, AdaBoostClassifier."""
from __future__ import annotations

from typing import Any

import numpy as np

from .emit import Emitter
from .trees import build, concat_trees
from .registry import UseSkl2onnx, sklearn_converter


@sklearn_converter("sklearn.ensemble.RandomTreesEmbedding", kind="transformer", replaces=True)
def random_trees_embedding(em: Emitter, est: Any) -> list[Any]:
    """One-hot of the leaf each tree sends a sample to, dense: TreeEnsemble with one target per leaf column."""
    trees = [e.tree_ for e in est.estimators_]
    cats = est.one_hot_encoder_.categories_
    values, offset = [], 0
    for t, c in zip(trees, cats):
        col = np.full(t.node_count, -1, np.int64)
        col[np.asarray(c, dtype=np.int64)] = offset + np.arange(len(c))
        values.append(col[:, None].astype(np.float64))
        offset += len(c)
    table = concat_trees(trees, values)
    leaf_col = table.values[:, 0].astype(np.int64)
    table.values = np.ones((len(leaf_col), 1))
    forest = build(table)
    forest.leaf_targetids = leaf_col[table.left < 0]
    forest.n_targets = offset
    x = em.as_float32_then_back(em.input())
    return [em.ensemble(x, forest, "onehot", width=est.n_features_in_)]


@sklearn_converter("sklearn.ensemble.AdaBoostClassifier", kind="classifier", replaces=True)
def adaboost_classifier(em: Emitter, est: Any) -> list[Any]:
    """SAMME with tree estimators: each leaf votes w for its class and -w/(K-1) for the others."""
    trees = est.estimators_
    if not all(hasattr(t, "tree_") for t in trees):
        raise UseSkl2onnx
    k = len(est.classes_)
    w = np.asarray(est.estimator_weights_, dtype=np.float64)[: len(trees)]
    values = []
    for t, wt in zip(trees, w):
        won = np.argmax(t.tree_.value[:, 0, :], axis=1)
        v = np.where(np.arange(k)[None, :] == won[:, None], wt, -wt / (k - 1))
        values.append(v[:, 1:] - v[:, :1] if k == 2 else v)  # binary: decision = pred1 - pred0
    forest = build(concat_trees([t.tree_ for t in trees], values))
    x = em.as_float32_then_back(em.input())
    pred = em.node("Div", [em.ensemble(x, forest, "votes", width=est.n_features_in_), em.const(float(w.sum()))], "pred")
    if k == 2:
        half = em.node("Mul", [pred, em.const(0.5)], "half")
        proba = em.node("Softmax", [em.node("Concat", [em.node("Neg", [half], "nhalf"), half], "pair", axis=1)],
                        "proba", axis=1)
        em.label(proba, est.classes_, binary_raw=pred, strict=True)
    else:
        proba = em.node("Softmax", [em.node("Div", [pred, em.const(float(k - 1))], "scaled")], "proba", axis=1)
        em.label(pred, est.classes_)
    return [None, proba]
