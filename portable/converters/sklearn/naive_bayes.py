"""CategoricalNB (skl2onnx 1.20 converts it in float32 only)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .emit import Emitter
from .registry import sklearn_converter


@sklearn_converter("sklearn.naive_bayes.CategoricalNB", kind="classifier", replaces=True)
def categorical_nb(em: Emitter, est: Any) -> list[Any]:
    x = em.node("Cast", [em.input()], "xi", to=7)
    jll = em.const(np.asarray(est.class_log_prior_, dtype=np.float64)[None, :])
    for i, table in enumerate(est.feature_log_prob_):
        col = em.node("Gather", [x, em.const(i, dtype=np.int64)], "col", axis=1)
        part = em.node("Gather", [em.const(np.asarray(table, dtype=np.float64).T), col], "part", axis=0)
        jll = em.node("Add", [jll, part], "jll")
    mx = em.reduce("ReduceMax", jll, 1, keepdims=1)
    lse = em.node("Add", [mx, em.node("Log", [em.reduce("ReduceSum", em.node(
        "Exp", [em.node("Sub", [jll, mx], "shift")], "e"), 1, keepdims=1)], "logsum")], "lse")
    proba = em.node("Exp", [em.node("Sub", [jll, lse], "logp")], "proba")
    em.label(jll, est.classes_)
    return [None, proba]
