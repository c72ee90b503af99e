"""PFA documents as real producers write them, from fitted scikit-learn models, checked against scikit-learn.

The exporters below follow the idioms the spec's model functions expect (the aardpfark / sklearn-to-pfa
style): `model.reg.linear` + `m.link.softmax` for logistic regression, a recursive `TreeNode` cell walked by
`model.tree.simpleWalk` + `simpleTest`, a forest as `a.map` of walks over a cell of trees + `a.mode`,
`model.cluster.closest` for k-means and `model.neural.simpleLayers` for an MLP.
"""
from __future__ import annotations

from collections import Counter
from statistics import median_low

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import portable

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
ARRAY = {"type": "array", "items": "double"}
MATRIX = {"type": "array", "items": ARRAY}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    # float32-representable inputs: scikit-learn's trees compare float32 copies of X
    X = X.astype(np.float32).astype(np.float64)
    rng = np.random.default_rng(0)
    extra = (X[rng.integers(0, len(X), 300)] + rng.normal(0, 0.3, (300, 4))).astype(np.float32).astype(float)
    return X, np.array(CLASSES)[y], np.vstack([X, extra])


def record_input() -> dict:
    return {"type": "record", "name": "Iris", "fields": [{"name": f, "type": "double"} for f in FEATURES]}


def feeds(X: np.ndarray) -> dict[str, np.ndarray]:
    return {f: X[:, i] for i, f in enumerate(FEATURES)}


# -- exporters -----------------------------------------------------------------------------------------------------
def export_logistic(scaler: StandardScaler, lr: LogisticRegression) -> dict:
    return {
        "name": "iris_logreg",
        "input": ARRAY,
        "output": {"type": "record", "name": "Out", "fields": [{"name": "label", "type": "string"},
                                                                {"name": "probabilities", "type": ARRAY}]},
        "cells": {
            "scaler": {"type": {"type": "record", "name": "Scaler", "fields": [
                {"name": "mean", "type": ARRAY}, {"name": "scale", "type": ARRAY}]},
                "init": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}},
            "model": {"type": {"type": "record", "name": "Linear", "fields": [
                {"name": "coeff", "type": MATRIX}, {"name": "const", "type": ARRAY}]},
                "init": {"coeff": lr.coef_.tolist(), "const": lr.intercept_.tolist()}},
            "classes": {"type": {"type": "array", "items": "string"}, "init": list(lr.classes_)},
        },
        "action": [
            {"let": {"z": {"a.zipmap": [{"la.sub": ["input", {"cell": "scaler", "path": [["mean"]]}]}, {"cell": "scaler", "path": [["scale"]]},
                                        {"params": [{"u": "double"}, {"s": "double"}], "ret": "double",
                                         "do": {"/": ["u", "s"]}}]}}},
            {"let": {"p": {"m.link.softmax": {"model.reg.linear": ["z", {"cell": "model"}]}}}},
            {"new": {"label": {"cell": "classes", "path": [{"a.argmax": ["p"]}]}, "probabilities": "p"},
             "type": "Out"},
        ],
    }


def tree_type() -> dict:
    return {"type": "record", "name": "TreeNode", "fields": [
        {"name": "field", "type": {"type": "enum", "name": "Fields", "symbols": FEATURES}},
        {"name": "operator", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "pass", "type": ["string", "TreeNode"]},
        {"name": "fail", "type": ["string", "TreeNode"]}]}


def export_tree_nodes(tree, classes) -> dict:
    t = tree.tree_

    def node(i: int) -> dict:
        left, right = t.children_left[i], t.children_right[i]
        return {"field": FEATURES[t.feature[i]], "operator": "<=", "value": float(t.threshold[i]),
                "pass": child(left), "fail": child(right)}

    def child(i: int) -> dict:
        if t.children_left[i] == -1:
            return {"string": str(classes[int(np.argmax(t.value[i]))])}
        return {"TreeNode": node(i)}

    return node(0)


def export_tree(dt: DecisionTreeClassifier) -> dict:
    return {
        "input": record_input(), "output": "string",
        "cells": {"tree": {"type": tree_type(), "init": export_tree_nodes(dt, dt.classes_)}},
        "action": {"model.tree.simpleWalk": ["input", {"cell": "tree"},
                                             {"params": [{"d": "Iris"}, {"t": "TreeNode"}], "ret": "boolean",
                                              "do": {"model.tree.simpleTest": ["d", "t"]}}]},
    }


def export_forest(rf: RandomForestClassifier) -> dict:
    return {
        "input": record_input(), "output": "string",
        "cells": {"forest": {"type": {"type": "array", "items": tree_type()},
                             "init": [export_tree_nodes(e, rf.classes_) for e in rf.estimators_]}},
        "action": {"a.mode": {"a.map": [{"cell": "forest"}, {
            "params": [{"tree": "TreeNode"}], "ret": "string",
            "do": {"model.tree.simpleWalk": ["input", "tree", {"fcn": "model.tree.simpleTest"}]}}]}},
    }


def export_kmeans(km: KMeans) -> dict:
    return {
        "input": ARRAY, "output": "int",
        "cells": {"clusters": {"type": {"type": "array", "items": {"type": "record", "name": "Cluster", "fields": [
            {"name": "center", "type": ARRAY}, {"name": "id", "type": "int"}]}},
            "init": [{"center": c.tolist(), "id": i} for i, c in enumerate(km.cluster_centers_)]}},
        "action": {"attr": {"model.cluster.closest": ["input", {"cell": "clusters"}]}, "path": [["id"]]},
    }


def export_mlp(mlp: MLPClassifier) -> dict:
    layers = [{"weights": W.T.tolist(), "bias": b.tolist()} for W, b in zip(mlp.coefs_, mlp.intercepts_)]
    return {
        "input": ARRAY, "output": ARRAY,
        "cells": {"layers": {"type": {"type": "array", "items": {"type": "record", "name": "Layer", "fields": [
            {"name": "weights", "type": MATRIX}, {"name": "bias", "type": ARRAY}]}}, "init": layers}},
        "action": {"m.link.softmax": {"model.neural.simpleLayers": ["input", {"cell": "layers"},
                                                                    {"fcn": "m.link.relu"}]}},
    }


# -- tests ------------------------------------------------------------------------------------------------------------
def _both(doc: dict, inputs: dict[str, np.ndarray]) -> tuple[dict, dict, object]:
    model = portable.load(doc)
    art = portable.convert(model, to="onnx", check=False)
    return model.run(inputs), art.run(inputs), art


def test_logistic_regression(iris):
    X, y, Xt = iris
    scaler = StandardScaler().fit(X)
    lr = LogisticRegression(max_iter=500).fit(scaler.transform(X), y)
    eng, onx, _ = _both(export_logistic(scaler, lr), {"input": Xt})
    want = lr.predict_proba(scaler.transform(Xt))
    np.testing.assert_allclose(eng["probabilities"], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(onx["probabilities"], want, rtol=1e-12, atol=1e-15)
    assert (eng["label"] == lr.predict(scaler.transform(Xt))).all()
    assert (onx["label"] == eng["label"]).all()


def test_decision_tree(iris):
    X, y, Xt = iris
    dt = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y)
    eng, onx, art = _both(export_tree(dt), feeds(Xt))
    assert (eng["output"] == dt.predict(Xt)).all()
    assert (onx["output"] == dt.predict(Xt)).all()
    assert art.info()["operators"]["ai.onnx.ml:TreeEnsemble"] == 1


def spec_mode(votes: list[str]) -> str:
    """The spec's a.mode: the most common value; ties give the median of the tied values (lower median)."""
    counts = Counter(votes)
    top = max(counts.values())
    return median_low(sorted(v for v, c in counts.items() if c == top))


def test_random_forest_as_map_and_mode(iris):
    X, y, Xt = iris
    rf = RandomForestClassifier(n_estimators=12, max_depth=5, random_state=0).fit(X, y)
    eng, onx, art = _both(export_forest(rf), feeds(Xt))
    per_tree = np.stack([rf.classes_[e.predict(Xt).astype(int)] for e in rf.estimators_], axis=1)
    want = np.array([spec_mode(list(row)) for row in per_tree])
    assert (eng["output"] == want).all()
    assert (onx["output"] == want).all()
    assert np.mean(want == rf.predict(Xt)) > 0.95  # hard voting agrees with scikit-learn's soft voting mostly
    ops = art.info()["operators"]
    assert ops["ai.onnx.ml:TreeEnsemble"] == 1, ops  # the whole forest is one ensemble


def export_forest_regressor(rf: RandomForestRegressor) -> dict:
    def nodes(est):
        t = est.tree_

        def node(i):
            def child(j):
                if t.children_left[j] == -1:
                    return {"double": float(t.value[j][0][0])}
                return {"RNode": node(j)}
            return {"field": FEATURES[t.feature[i]], "operator": "<=", "value": float(t.threshold[i]),
                    "pass": child(t.children_left[i]), "fail": child(t.children_right[i])}
        return node(0)

    rtype = {"type": "record", "name": "RNode", "fields": [
        {"name": "field", "type": {"type": "enum", "name": "Fields", "symbols": FEATURES}},
        {"name": "operator", "type": "string"}, {"name": "value", "type": "double"},
        {"name": "pass", "type": ["double", "RNode"]}, {"name": "fail", "type": ["double", "RNode"]}]}
    return {"input": record_input(), "output": "double",
            "cells": {"forest": {"type": {"type": "array", "items": rtype},
                                 "init": [nodes(e) for e in rf.estimators_]}},
            "action": {"a.mean": {"a.map": [{"cell": "forest"}, {
                "params": [{"tree": "RNode"}], "ret": "double",
                "do": {"model.tree.simpleTree": ["input", "tree"]}}]}}}


def test_random_forest_regressor_as_map_and_mean(iris):
    X, _, Xt = iris
    target = X[:, 3] * 2 + X[:, 0]
    rf = RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0).fit(X[:, :3], target)
    Xr = Xt.copy()
    eng, onx, art = _both(export_forest_regressor(rf), feeds(Xr))
    want = rf.predict(Xr[:, :3])
    np.testing.assert_allclose(eng["output"], want, rtol=1e-12)
    np.testing.assert_allclose(onx["output"], want, rtol=1e-12)
    assert art.info()["operators"]["ai.onnx.ml:TreeEnsemble"] == 1


def test_kmeans(iris):
    X, _, Xt = iris
    km = KMeans(n_clusters=4, n_init=3, random_state=0).fit(X)
    eng, onx, _ = _both(export_kmeans(km), {"input": Xt})
    assert (eng["output"] == km.predict(Xt)).all()
    assert (onx["output"] == km.predict(Xt)).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp(iris):
    X, y, Xt = iris
    mlp = MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=300, random_state=0).fit(X, y)
    eng, onx, _ = _both(export_mlp(mlp), {"input": Xt})
    want = mlp.predict_proba(Xt)
    np.testing.assert_allclose(eng["output"], want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(onx["output"], want, rtol=1e-10, atol=1e-14)


def test_exported_document_round_trips_through_a_file(iris, tmp_path):
    import json

    X, y, Xt = iris
    dt = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    path = tmp_path / "tree.pfa"
    path.write_text(json.dumps(export_tree(dt)))
    art = portable.convert(str(path), to="onnx", check=False)
    art.save(tmp_path / "tree.onnx")
    again = portable.load(str(tmp_path / "tree.onnx"))
    assert (again.run(feeds(Xt))["output"] == dt.predict(Xt)).all()
    assert again.info()["metadata"]["portable.source.format"] == "pfa"


def test_flattened_trees_are_reused_across_batches(iris):
    X, y, Xt = iris
    rf = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=1).fit(X, y)
    model = portable.load(export_forest(rf))
    per_tree = np.stack([rf.classes_[e.predict(Xt).astype(int)] for e in rf.estimators_], axis=1)
    want = np.array([spec_mode(list(row)) for row in per_tree])
    for part in (slice(0, 7), slice(100, 400), slice(3, 4)):  # different batch sizes, same model object
        assert (model.run(feeds(Xt[part]))["output"] == want[part]).all()
