"""Multi-output and multilabel classifiers: one output per target (DESIGN §4, `SklearnModel`'s signature).

- multi-output trees and forests (`DecisionTreeClassifier`, `ExtraTreeClassifier`, `RandomForestClassifier`,
  `ExtraTreesClassifier` fitted on `y` `[N, T]`): `label_0 … label_{T-1}` `[N]` and `probabilities_0 …
  probabilities_{T-1}` `[N, C_k]`, as `predict(X)[:, k]` and `predict_proba(X)[k]`; one TreeEnsemble holds every
  target's class fractions;
- multilabel `MLPClassifier` (fitted on an indicator matrix): `label_k` = `predict(X)[:, k]` (0/1: the logistic
  output above 0.5) and `probabilities` `[N, T]` = `predict_proba(X)`;
- multilabel `RidgeClassifier` / `RidgeClassifierCV`: `label_k` (decision above 0) and `scores` `[N, T]` =
  `decision_function(X)`.

skl2onnx parses a classifier into one label and one probability output, so these estimators get a parser of
their own for one conversion (`install`), which adds one step computing all the outputs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .emit import Emitter

TREES = ("DecisionTreeClassifier", "ExtraTreeClassifier", "RandomForestClassifier", "ExtraTreesClassifier")
MULTILABEL = ("MLPClassifier", "RidgeClassifier", "RidgeClassifierCV")


def is_multi_output(est: Any) -> bool:
    """An estimator this module converts (a multi-output tree/forest or a multilabel MLP/ridge classifier)."""
    name = type(est).__name__
    if name in TREES and isinstance(getattr(est, "classes_", None), list):
        return True
    binarizer = getattr(est, "_label_binarizer", None)
    return name in MULTILABEL and str(getattr(binarizer, "y_type_", "")).startswith("multilabel")


def install(estimator: Any) -> None:
    """For this conversion, parse every multi-output estimator inside `estimator` with `_parse`."""
    from skl2onnx._parse import sklearn_parsers_map

    from ...formats.sklearn import walk

    targets = {id(e): e for e in walk(estimator) if is_multi_output(e)}
    for cls in {type(e) for e in targets.values()}:
        original = sklearn_parsers_map.get(cls)

        def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None,
                  _original: Any = original) -> list[Any]:
            if id(model) in targets:
                return _parse(scope, model, inputs)
            if _original is not None:
                return _original(scope, model, inputs, custom_parsers=custom_parsers)
            from skl2onnx._parse import _parse_sklearn_simple_model

            return _parse_sklearn_simple_model(scope, model, inputs, custom_parsers=custom_parsers)

        sklearn_parsers_map[cls] = parse


def _parse(scope: Any, model: Any, inputs: list[Any]) -> list[Any]:
    from ...formats.sklearn import output_specs
    from .bridge import step

    outs = []
    for spec in output_specs(model):
        if spec.name.startswith("label_"):
            outs.append((spec.name, "str" if spec.dtype == "str" else "int64", [None]))
        else:
            outs.append((spec.name, "float", [None, spec.shape[1]]))
    func = _trees if type(model).__name__ in TREES else _mlp if type(model).__name__ == "MLPClassifier" else _ridge
    return step(scope, model, inputs, func, outs)


def _labels(em: Emitter, scores: list[str], classes: list[np.ndarray]) -> list[str]:
    out = []
    for s, cls in zip(scores, classes):
        idx = em.node("ArgMax", [s], "idx", axis=1, keepdims=0)
        cls = np.asarray(cls)
        table = em.const(cls.astype(str)) if cls.dtype.kind in "OUS" else em.const(cls.astype(np.int64),
                                                                                     dtype=np.int64)
        out.append(em.node("Gather", [table, idx], "label", axis=0))
    return out


def _trees(em: Emitter, est: Any) -> list[str]:
    from .trees import build, concat_trees

    trees = [est] if hasattr(est, "tree_") else list(est.estimators_)
    n_classes = [len(c) for c in est.classes_]
    values = []
    for t in trees:
        per_target = []
        for k, c in enumerate(n_classes):
            v = t.tree_.value[:, k, :c].astype(np.float64)
            s = v.sum(axis=1, keepdims=True)
            per_target.append(np.divide(v, s, out=np.zeros_like(v), where=s != 0))
        values.append(np.concatenate(per_target, axis=1))
    forest = build(concat_trees([t.tree_ for t in trees], values))
    total = em.ensemble(em.as_float32_then_back(em.input()), forest, width=est.n_features_in_)
    mean = total if len(trees) == 1 else em.node("Div", [total, em.const([float(len(trees))])], "mean")
    starts = np.concatenate([[0], np.cumsum(n_classes)])
    probas = [em.node("Slice", [mean, em.const([starts[k]], dtype=np.int64), em.const([starts[k + 1]], dtype=np.int64),
                                em.const([1], dtype=np.int64)], "proba") for k in range(len(n_classes))]
    if len(trees) == 1:  # DecisionTree.predict_proba renormalizes each target's fractions
        probas = [_renormalize(em, p) for p in probas]
    labels = _labels(em, probas, est.classes_)
    names = [s.name for s in _specs(est)]
    return [labels[int(n[6:])] if n.startswith("label_") else probas[int(n[14:])] for n in names]


def _renormalize(em: Emitter, p: str) -> str:
    s = em.reduce("ReduceSum", p, 1, keepdims=1)
    s = em.node("Where", [em.node("Equal", [s, em.const(0.0)], "zero"), em.const(1.0), s], "norm")
    return em.node("Div", [p, s], "renorm")


def _specs(est: Any) -> Any:
    from ...formats.sklearn import output_specs

    return output_specs(est)


def _mlp(em: Emitter, est: Any) -> list[str]:
    h = em.input()
    acts = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid"}
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = em.node("Add", [em.node("MatMul", [h, em.const(np.asarray(w, dtype=np.float64))], "mm"),
                            em.const(np.asarray(b, dtype=np.float64)[None, :])], "lin")
        last = i == len(est.coefs_) - 1
        act = est.out_activation_ if last else est.activation
        if act != "identity":
            h = em.node(acts[act], [h], act)
    return _multilabel_outputs(em, est, h, threshold=0.5)


def _ridge(em: Emitter, est: Any) -> list[str]:
    coef = np.asarray(est.coef_, dtype=np.float64)
    scores = em.node("Add", [em.node("MatMul", [em.input(), em.const(coef.T)], "mm"),
                             em.const(np.asarray(est.intercept_, dtype=np.float64).reshape(1, -1))], "scores")
    return _multilabel_outputs(em, est, scores, threshold=0.0)


def _multilabel_outputs(em: Emitter, est: Any, values: str, threshold: float) -> list[str]:
    from onnx import TensorProto

    outs = []
    for spec in _specs(est):
        if spec.name.startswith("label_"):
            k = int(spec.name[6:])
            col = em.node("Gather", [values, em.const(k, dtype=np.int64)], "col", axis=1)
            outs.append(em.node("Cast", [em.node("Greater", [col, em.const(threshold)], "pos")], "label",
                                to=TensorProto.INT64))
        else:
            outs.append(values)
    return outs
