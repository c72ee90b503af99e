"""Lowering ai.onnx.ml to standard ONNX operators (`--standard-ops`), checked against scikit-learn,
onnxruntime on the original graph, and onnx's reference evaluator."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

import portable
from portable.converters.onnx_standard import GEMM_MAX_DEPTH, lower_proto
from portable.errors import UnsupportedModelError
from portable.formats.onnx import OnnxModel
from portable.registry import ConvertOptions

H = onnx.helper
TP = onnx.TensorProto


def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification, make_regression

    if kind == "binary":
        return make_classification(240, 6, n_informative=4, random_state=seed)
    if kind == "multi":
        return make_classification(240, 6, n_informative=4, n_classes=3, random_state=seed)
    X, y = make_regression(240, 6, noise=2.0, random_state=seed)
    return X, y


def _models() -> dict[str, tuple]:
    """id -> (make estimator, data kind). Unusual rows say why."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, Normalizer, StandardScaler
    from sklearn.svm import SVC, SVR, LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logreg-binary": (lambda: LogisticRegression(), "binary"),
        "logreg-multi": (lambda: LogisticRegression(), "multi"),
        "linearsvc-binary": (lambda: LinearSVC(), "binary"),  # LinearClassifier + ArrayFeatureExtractor
        "linearsvc-multi": (lambda: LinearSVC(), "multi"),
        "svc-rbf": (lambda: SVC(), "multi"),
        "svc-rbf-binary": (lambda: SVC(), "binary"),  # one pairwise score: [-s, s]
        "svc-poly": (lambda: SVC(kernel="poly", degree=2), "multi"),
        "svc-sigmoid": (lambda: SVC(kernel="sigmoid", gamma=0.05), "multi"),
        "svc-linear": (lambda: SVC(kernel="linear"), "multi"),
        "svr-rbf": (lambda: SVR(C=10.0), "regression"),
        "linreg": (lambda: LinearRegression(), "regression"),
        "mlp": (lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0), "multi"),  # ArrayFeatureExtractor only
        "tree-deep": (lambda: DecisionTreeClassifier(random_state=0), "multi"),
        "forest-shallow": (lambda: RandomForestClassifier(8, max_depth=4, random_state=0), "multi"),
        "forest-deep": (lambda: RandomForestClassifier(6, max_depth=12, random_state=0), "multi"),
        "gb-binary": (lambda: GradientBoostingClassifier(n_estimators=6, random_state=0), "binary"),  # [-s, s]
        "gb-multi": (lambda: GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0), "multi"),
        "gb-regressor": (lambda: GradientBoostingRegressor(n_estimators=6, random_state=0), "regression"),
        "scaler-pca-logreg": (lambda: make_pipeline(StandardScaler(), PCA(3), LogisticRegression()), "multi"),
        "kmeans": (lambda: KMeans(3, n_init=2, random_state=0), "multi"),  # no ai.onnx.ml at all
        "normalizer-l1": (lambda: make_pipeline(Normalizer("l1"), LogisticRegression()), "multi"),
        "normalizer-max": (lambda: make_pipeline(Normalizer("max"), LogisticRegression()), "multi"),
        "binarizer": (lambda: make_pipeline(Binarizer(threshold=0.2), LogisticRegression()), "binary"),
    }


MODELS = _models()

# where onnxruntime itself departs from the ONNX-ML specification, the lowering follows the specification,
# onnx.reference and scikit-learn, and the test compares against the reference evaluator instead
ORT_DEPARTS = {"normalizer-max": "onnxruntime 1.32 divides by max(x); scikit-learn and onnx.reference by max(|x|)"}


@functools.cache
def _converted(name: str) -> tuple:
    make, kind = MODELS[name]
    X, y = _data(kind)
    est = make().fit(X, y)
    onnx_model = portable.convert(est, to="onnx", check=False, dtype="float32")
    lowered = portable.api._run_route(onnx_model, [], ConvertOptions(standard_ops=True))
    return est, X.astype(np.float32), onnx_model, lowered


def _inputs(X: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(200, X.shape[1])).astype(np.float32) * X.std(axis=0).astype(np.float32) * 2
    return {"X": np.concatenate([X[:200], wide])}


def _assert_same(expected: dict[str, np.ndarray], got: dict[str, np.ndarray], *, atol: float = 2e-5) -> None:
    for name, want in expected.items():
        have = got[name]
        if want.dtype.kind in "OUSbi" or name == "label":
            diff = np.flatnonzero(np.asarray(want).astype(str).ravel() != np.asarray(have).astype(str).ravel())
            assert diff.size == 0, f"{name}: {diff.size} of {want.size} labels differ, first at row {diff[:5]}"
        else:
            np.testing.assert_allclose(np.asarray(have, np.float64), np.asarray(want, np.float64), rtol=1e-4,
                                       atol=atol, err_msg=name)


@pytest.mark.parametrize("name", list(MODELS))
def test_lowered_has_no_ml_nodes_and_agrees(name: str) -> None:
    est, X, original, lowered = _converted(name)
    assert not [n.op_type for n in lowered.proto.graph.node if n.domain == "ai.onnx.ml"]
    assert "ai.onnx.ml" not in {o.domain for o in lowered.proto.opset_import}
    feeds = _inputs(X)
    ort_original = (original.with_runtime("reference") if name in ORT_DEPARTS else original).run(feeds)
    ort_lowered = lowered.run(feeds)
    _assert_same(ort_original, ort_lowered, atol=1e-4 if "svr" in name or "regressor" in name else 2e-5)
    reference = portable.load(est).run(feeds)
    if "label" in reference:  # scikit-learn's own labels; probabilities are compared through the original
        np.testing.assert_array_equal(ort_lowered["label"][:200], reference["label"][:200])


def test_lowered_runs_on_the_reference_evaluator() -> None:
    _, X, original, lowered = _converted("forest-deep")
    ref = lowered.with_runtime("reference")
    _assert_same(original.run({"X": X[:50]}), ref.run({"X": X[:50]}))


@pytest.mark.parametrize("name, formulation", [("forest-shallow", "gemm"), ("forest-deep", "gather"),
                                               ("tree-deep", "gather"), ("gb-binary", "gemm")])
def test_tree_formulation_is_chosen_by_depth_and_recorded(name: str, formulation: str) -> None:
    est, _, _, lowered = _converted(name)
    meta = lowered.metadata
    assert meta["portable.lowering.trees"] == formulation
    depth = max(e.get_depth() for e in np.ravel(getattr(est, "estimators_", [est])))
    assert (depth <= GEMM_MAX_DEPTH) == (formulation == "gemm")
    ops = {n.op_type for n in lowered.proto.graph.node}
    assert ("GatherElements" in ops) == (formulation == "gather")  # NNEF has none: onnx -> nnef lowers for_nnef


def test_convert_with_standard_ops_option_and_provenance() -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data("multi")
    est = RandomForestClassifier(3, max_depth=3, random_state=0).fit(X, y)
    art = portable.convert(est, to="onnx", check=False, options=ConvertOptions(standard_ops=True))
    assert not any(n.domain == "ai.onnx.ml" for n in art.proto.graph.node)
    assert art.metadata["portable.source.format"] == "sklearn"
    assert art.metadata["portable.lowering"].startswith("TreeEnsemble")


def test_cli_standard_ops(tmp_path) -> None:
    from click.testing import CliRunner
    from sklearn.linear_model import LogisticRegression

    from portable.cli import cli as main

    X, y = _data("multi")
    src = tmp_path / "m.onnx"
    portable.convert(LogisticRegression().fit(X, y), to="onnx", check=False).save(src)
    out = tmp_path / "low.onnx"
    res = CliRunner().invoke(main, ["convert", str(src), "--to", "onnx", "--standard-ops", "-o", str(out),
                                    "--no-check"])
    assert res.exit_code == 0, res.output
    proto = onnx.load(str(out))
    assert {n.domain for n in proto.graph.node} <= {""}
    before = OnnxModel(onnx.load(str(src))).run({"X": X[:20].astype(np.float32)})
    _assert_same(before, OnnxModel(proto).run({"X": X[:20].astype(np.float32)}))


# ------------------------------------------------------------------------------------------------------
# hand-built ai.onnx.ml graphs for operators skl2onnx does not emit above, run on onnxruntime
# ------------------------------------------------------------------------------------------------------
def _ml_model(nodes: list, inputs: list, outputs: list, ml: int = 3, inits: tuple = ()) -> OnnxModel:
    graph = H.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    proto = H.make_model(graph, opset_imports=[H.make_opsetid("", 17), H.make_opsetid("ai.onnx.ml", ml)])
    proto.ir_version = 8 if ml < 4 else 9
    onnx.checker.check_model(proto)
    return OnnxModel(proto)


def _check_lowering(model: OnnxModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    lowered = OnnxModel(lower_proto(model.proto).proto)
    assert all(n.domain == "" for n in lowered.proto.graph.node)
    want, got = model.run(feeds), lowered.run(feeds)
    _assert_same(want, got, atol=1e-6)
    return got


def _vi(name: str, elem: int, shape: list) -> object:
    return H.make_tensor_value_info(name, elem, shape)


def test_preprocessing_operators() -> None:
    nodes = [
        H.make_node("Imputer", ["X"], ["imp"], domain="ai.onnx.ml", imputed_value_floats=[1.0, 2.0, 3.0],
                    replaced_value_float=float("nan")),
        H.make_node("Scaler", ["imp"], ["sc"], domain="ai.onnx.ml", offset=[0.5, -1.0, 2.0], scale=[2.0, 0.5, 1.0]),
        H.make_node("Binarizer", ["sc"], ["bin"], domain="ai.onnx.ml", threshold=0.25),
        H.make_node("Normalizer", ["sc"], ["l2"], domain="ai.onnx.ml", norm="L2"),
        H.make_node("ArrayFeatureExtractor", ["sc", "idx"], ["afe"], domain="ai.onnx.ml"),
        H.make_node("FeatureVectorizer", ["afe", "bin"], ["fv"], domain="ai.onnx.ml", inputdimensions=[2, 3]),
    ]
    outs = [_vi("bin", TP.FLOAT, [None, 3]), _vi("l2", TP.FLOAT, [None, 3]), _vi("fv", TP.FLOAT, [None, 5])]
    model = _ml_model(nodes, [_vi("X", TP.FLOAT, [None, 3])], outs,
                      inits=[onnx.numpy_helper.from_array(np.array([2, 0], np.int64), "idx")])
    X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    X[::7, 1] = np.nan
    got = _check_lowering(model, {"X": X})
    assert not np.isnan(got["fv"]).any()


def test_numeric_label_encoder_and_one_hot() -> None:
    nodes = [
        H.make_node("LabelEncoder", ["c"], ["mapped"], domain="ai.onnx.ml", keys_int64s=[3, 7, 11],
                    values_floats=[0.5, -1.5, 2.0], default_float=-9.0),
        H.make_node("OneHotEncoder", ["c"], ["onehot"], domain="ai.onnx.ml", cats_int64s=[7, 11, 3, 5], zeros=1),
    ]
    model = _ml_model(nodes, [_vi("c", TP.INT64, [None])],
                      [_vi("mapped", TP.FLOAT, [None]), _vi("onehot", TP.FLOAT, [None, 4])])
    c = np.array([3, 7, 11, 5, 4, 3, 0, 11], np.int64)
    got = _check_lowering(model, {"c": c})
    np.testing.assert_array_equal(got["mapped"], [0.5, -1.5, 2.0, -9.0, -9.0, 0.5, -9.0, 2.0])


def _v5_model(modes: list[int], aggregate: int, post: int) -> OnnxModel:
    """Two trees over 2 features in TreeEnsemble (ai.onnx.ml opset 5) form; tree 1 is a single split."""
    t = onnx.numpy_helper.from_array
    node = H.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml",
        nodes_featureids=[0, 1, 1], nodes_splits=t(np.array([0.5, -0.25, 1.0], np.float32)),
        nodes_modes=t(np.array(modes, np.uint8)), nodes_truenodeids=[1, 0, 3], nodes_trueleafs=[0, 1, 1],
        nodes_falsenodeids=[2, 1, 4], nodes_falseleafs=[1, 1, 1], tree_roots=[0, 2],
        leaf_targetids=[0, 1, 1, 0, 1], leaf_weights=t(np.array([1.0, 2.0, -1.0, 0.25, 4.0], np.float32)),
        n_targets=2, aggregate_function=aggregate, post_transform=post)
    return _ml_model([node], [_vi("X", TP.FLOAT, [None, 2])], [_vi("Y", TP.FLOAT, [None, 2])], ml=5)


@functools.cache
def _v5_pair(modes: tuple[int, ...], aggregate: int) -> tuple[OnnxModel, OnnxModel]:
    model = _v5_model(list(modes), aggregate, 0)
    return model.with_runtime("reference"), OnnxModel(lower_proto(model.proto).proto)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from([0.5, -0.25, 1.0, 0.0, 3.0, -2.0, 0.49999997]), min_size=8, max_size=8))
def test_tree_ensemble_v5_modes_at_thresholds(values: list[float]) -> None:
    """Inputs right at the split values exercise LEQ / LT / GTE / GT exactly (GT and GTE swap children).

    Compared with onnx.reference; onnxruntime 1.32 applies a two-target LOGISTIC post_transform as if the
    ensemble were a binary classifier, so post transforms are checked through the classifiers above.
    """
    X = np.asarray(values, np.float32).reshape(4, 2)
    for modes in ((0, 0, 0), (1, 2, 3), (3, 1, 2)):
        for aggregate in (1, 0, 3):  # SUM, AVERAGE, MAX
            ref, lowered = _v5_pair(modes, aggregate)
            _assert_same(ref.run({"X": X}), lowered.run({"X": X}), atol=1e-6)


def test_zipmap_is_removed() -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = _data("multi")
    proto = to_onnx(LogisticRegression().fit(X, y), X[:1].astype(np.float32))  # ZipMap on
    assert any(n.op_type == "ZipMap" for n in proto.graph.node)
    lowered = lower_proto(proto).proto
    assert not any(n.op_type == "ZipMap" for n in lowered.graph.node)
    out = OnnxModel(lowered).run({"X": X[:10].astype(np.float32)})
    np.testing.assert_allclose(out["output_probability"], LogisticRegression().fit(X, y).predict_proba(X[:10]),
                               atol=1e-5)


def test_unsupported_operators_are_named() -> None:
    from skl2onnx import to_onnx
    from sklearn.svm import SVC

    X, y = _data("multi")
    est = SVC(probability=True, random_state=0).fit(X, y)
    # skl2onnx's own converter: an SVMClassifier with prob_a (portable's converter writes libsvm's coupling as a
    # standard Loop instead)
    proto = to_onnx(est, X[:1].astype(np.float32))
    assert any(n.op_type == "SVMClassifier" and any(a.name == "prob_a" for a in n.attribute)
               for n in proto.graph.node)
    with pytest.raises(UnsupportedModelError, match="probability"):
        lower_proto(proto)
    node = H.make_node("OneHotEncoder", ["c"], ["o"], domain="ai.onnx.ml", cats_strings=["a", "b"])
    model = _ml_model([node], [_vi("c", TP.STRING, [None])], [_vi("o", TP.FLOAT, [None, 2])])
    with pytest.raises(UnsupportedModelError, match="strings.*NNEF"):
        lower_proto(model.proto, for_nnef=True)
    node = H.make_node("CategoryMapper", ["c"], ["o"], domain="ai.onnx.ml", cats_strings=["a"], cats_int64s=[1])
    model = _ml_model([node], [_vi("c", TP.STRING, [None])], [_vi("o", TP.INT64, [None])])
    with pytest.raises(UnsupportedModelError, match="CategoryMapper.*lowered: .*TreeEnsemble"):
        lower_proto(model.proto)


# Disagreements the path-aware checker (issue 13) found here are fixed in the converters: KMeans (skl2onnx took the
# square root of a distance that rounds below 0: NaN at a centre) and Binarizer(0.2) in float32 (a threshold
# rounded to nearest float32). None is left.
_FOUND: dict[str, str] = {}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=_FOUND[n], strict=False))
                                  if n in _FOUND else n for n in MODELS])
def test_checker_accepts_lowered(name: str) -> None:
    est, _, _, lowered = _converted(name)
    report = portable.api.check(est, lowered, samples=200, seed=2)
    assert report.equivalent, report.to_dict()


def _categorical_hgb() -> tuple:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 6, 400), rng.normal(size=(400, 3))]
    y = ((X[:, 0] % 2 == 0) ^ (X[:, 1] > 0)).astype(int)
    return HistGradientBoostingClassifier(max_iter=8, categorical_features=[0], random_state=0).fit(X, y), X


def test_set_membership_splits_lower_in_gemm_form() -> None:
    """HistGradientBoosting's categorical splits arrive as TreeEnsemble MEMBER nodes (portable's tree converter)."""
    est, X = _categorical_hgb()
    original = portable.convert(est, to="onnx", check=False, dtype="float32")
    if not any(n.op_type == "TreeEnsemble" for n in original.proto.graph.node):
        pytest.skip("sklearn -> onnx does not emit TreeEnsemble v5 for this model")
    lowered = portable.api._run_route(original, [], ConvertOptions(standard_ops=True))
    assert lowered.metadata["portable.lowering.trees"] == "gemm"
    rows = X[:120].astype(np.float32)
    want = portable.load(est).run({"X": rows})
    got = lowered.run({"X": rows})
    np.testing.assert_array_equal(got["label"], want["label"])
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
    # missing and unseen categories: as the source ONNX computes them (its converter decides those)
    rows[::7, 0] = np.nan
    rows[::11, 0] = 9
    _assert_same(original.run({"X": rows}), lowered.run({"X": rows}), atol=1e-6)
    # NNEF lowers every other tree in the gather form, and sets in the GEMM form
    art = portable.convert(original, to="nnef", check=False)
    assert art.meta["lowering"]["trees"] == "gemm"
    _assert_same(original.run({"X": rows}), art.run({"X": rows}), atol=1e-5)


def test_string_encoders_lower_in_plain_onnx_only() -> None:
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.DataFrame({"x": np.arange(60.0), "city": ["paris", "lyon", "nice", "paris", "lille", "nice"] * 10})
    est = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["city"]),
                                                (StandardScaler(), ["x"])),
                        LogisticRegression()).fit(df, (np.arange(60) % 3 == 0).astype(int))
    art = portable.convert(est, to="onnx", data=df, check=False, options=ConvertOptions(standard_ops=True))
    assert {n.domain for n in art.proto.graph.node} == {""}
    feeds = {"x": df[["x"]].to_numpy(), "city": np.array(["nice", "paris", "rome", "lille"] * 15).reshape(-1, 1)}
    frame = pd.DataFrame({"x": feeds["x"].ravel(), "city": feeds["city"].ravel()})
    np.testing.assert_array_equal(art.run(feeds)["label"], est.predict(frame))
    np.testing.assert_allclose(art.run(feeds)["probabilities"], est.predict_proba(frame), atol=1e-5)

    node = H.make_node("LabelEncoder", ["s"], ["y"], domain="ai.onnx.ml", keys_strings=["a", "b", "c"],
                       values_int64s=[7, 8, 9], default_int64=-1)
    graph = H.make_graph([node], "g", [_vi("s", TP.STRING, [None])], [_vi("y", TP.INT64, [None])])
    proto = H.make_model(graph, opset_imports=[H.make_opsetid("", 19), H.make_opsetid("ai.onnx.ml", 3)])
    proto.ir_version = 9
    model = OnnxModel(proto)
    got = _check_lowering(model, {"s": np.array(["c", "a", "zz", "b"], dtype=object)})
    np.testing.assert_array_equal(got["y"], [9, 7, -1, 8])
    with pytest.raises(UnsupportedModelError, match="NNEF"):
        lower_proto(proto, for_nnef=True)


def _per_class_v5(est, aggregate: int) -> OnnxModel:
    """A scikit-learn forest classifier written as TreeEnsemble v5 the way per-target writers do it: every tree
    once per class, each leaf carrying that class's probability (divided by the number of trees for SUM)."""
    feats, splits, t_ids, t_leaf, f_ids, f_leaf, roots, targets, weights = [], [], [], [], [], [], [], [], []
    n_trees = len(est.estimators_)
    n_classes = len(est.classes_)
    for c in range(n_classes):
        for tree in est.estimators_:
            t = tree.tree_
            inner = [n for n in range(t.node_count) if t.children_left[n] >= 0]
            leaves = [n for n in range(t.node_count) if t.children_left[n] < 0]
            base_i, base_l = len(feats), len(targets)
            pos_i = {n: base_i + k for k, n in enumerate(inner)}
            pos_l = {n: base_l + k for k, n in enumerate(leaves)}
            roots.append(pos_i[0])
            for n in inner:
                feats.append(int(t.feature[n]))
                splits.append(float(t.threshold[n]))
                for child, ids, is_leaf in ((t.children_left[n], t_ids, t_leaf), (t.children_right[n], f_ids, f_leaf)):
                    leaf = t.children_left[child] < 0
                    ids.append(pos_l[child] if leaf else pos_i[child])
                    is_leaf.append(int(leaf))
            for n in leaves:
                proba = t.value[n, 0] / t.value[n, 0].sum()
                targets.append(c)
                weights.append(proba[c] / (n_trees if aggregate == 1 else 1.0))
    a = onnx.numpy_helper.from_array
    node = H.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", nodes_featureids=feats,
        nodes_splits=a(np.array(splits, np.float32)), nodes_modes=a(np.zeros(len(feats), np.uint8)),
        nodes_truenodeids=t_ids, nodes_trueleafs=t_leaf, nodes_falsenodeids=f_ids, nodes_falseleafs=f_leaf,
        tree_roots=roots, leaf_targetids=targets, leaf_weights=a(np.array(weights, np.float32)),
        n_targets=n_classes, aggregate_function=aggregate, post_transform=0)
    X = est.n_features_in_
    return _ml_model([node], [_vi("X", TP.FLOAT, [None, X])], [_vi("Y", TP.FLOAT, [None, n_classes])], ml=5)


@pytest.mark.parametrize("aggregate", [1, 0, 3])  # SUM, AVERAGE, MAX
def test_per_class_trees_are_traversed_once(aggregate: int) -> None:
    """A v5 ensemble storing each tree once per class lowers to one traversal per tree (the copies merged into
    multi-target leaves), for onnxruntime and NNEF, computing what the original does (and scikit-learn's
    predict_proba for SUM)."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data("multi")
    est = RandomForestClassifier(6, max_depth=5, random_state=0).fit(X, y)
    model = _per_class_v5(est, aggregate)
    rows = np.random.default_rng(3).normal(size=(400, X.shape[1])).astype(np.float32) * X.std(axis=0).astype(
        np.float32)
    want = model.run({"X": rows})["Y"]
    if aggregate == 1:
        np.testing.assert_allclose(want, est.predict_proba(rows), atol=1e-6)
    for for_nnef in (False, True):
        result = lower_proto(model.proto, for_nnef=for_nnef)
        (detail,) = result.trees.values()
        assert "trees=6 merged from 18 per-target trees" in detail
        got = OnnxModel(result.proto).run({"X": rows})["Y"]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    art = portable.convert(model, to="nnef", check=False)
    np.testing.assert_allclose(art.run({"X": rows})["Y"], want, rtol=1e-6, atol=1e-6)
