"""portable's tree-ensemble converters (`ai.onnx.ml` TreeEnsemble v5) against scikit-learn itself.

float64 must agree to rounding (1e-9 relative); float32 must take every branch scikit-learn takes (its trees
compare float32 inputs) and agree to float32 rounding in the leaf sums.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import portable

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

from sklearn import ensemble, tree  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 6))
Y_REG = 1000 * X[:, 0] + 300 * np.sin(3 * X[:, 1]) + 50 * X[:, 2] ** 2 + 5000  # targets in the thousands
Y_CLASS = (X[:, 0] + np.sin(2 * X[:, 1]) > 0.3).astype(int) + (X[:, 2] > 0.8)
XT = RNG.normal(size=(400, 6)) * 1.5

# (estimator, target): small and fast, covering every family and binary/multiclass
MODELS = [
    (tree.DecisionTreeRegressor(max_depth=6, random_state=0), Y_REG),
    (tree.ExtraTreeRegressor(max_depth=6, random_state=0), Y_REG),
    (ensemble.RandomForestRegressor(n_estimators=15, max_depth=8, random_state=0), Y_REG),
    (ensemble.RandomForestRegressor(n_estimators=5, random_state=0), np.c_[Y_REG, -Y_REG / 7]),  # two outputs
    (ensemble.ExtraTreesRegressor(n_estimators=10, random_state=0), Y_REG),
    (ensemble.GradientBoostingRegressor(n_estimators=20, random_state=0), Y_REG),
    (ensemble.GradientBoostingRegressor(n_estimators=10, loss="huber", random_state=0), Y_REG),
    (ensemble.HistGradientBoostingRegressor(max_iter=20, random_state=0), Y_REG),
    (ensemble.HistGradientBoostingRegressor(max_iter=10, loss="poisson", random_state=0), Y_REG),
    (tree.DecisionTreeClassifier(max_depth=5, random_state=0), Y_CLASS),
    (ensemble.RandomForestClassifier(n_estimators=12, random_state=0), Y_CLASS),
    (ensemble.RandomForestClassifier(n_estimators=12, random_state=0), (Y_CLASS > 0).astype(int)),  # binary
    (ensemble.ExtraTreesClassifier(n_estimators=8, random_state=0), np.array(["a", "b", "c"])[Y_CLASS]),
    (ensemble.GradientBoostingClassifier(n_estimators=15, random_state=0), Y_CLASS),
    (ensemble.GradientBoostingClassifier(n_estimators=15, random_state=0), (Y_CLASS > 0).astype(int)),
    (ensemble.GradientBoostingClassifier(n_estimators=10, loss="exponential", random_state=0),
     (Y_CLASS > 0).astype(int)),
    (ensemble.HistGradientBoostingClassifier(max_iter=15, random_state=0), Y_CLASS),
    (ensemble.HistGradientBoostingClassifier(max_iter=15, random_state=0), (Y_CLASS > 0).astype(int)),
]


def _compare(est, x: np.ndarray, dtype: str, rtol: float) -> None:
    art = portable.convert(est, to="onnx", check=False, dtype=dtype)
    got = art.run({"X": x.astype(dtype)})
    xs = x.astype(dtype)
    if "variable" in got:
        want = est.predict(xs).reshape(len(x), -1)
        np.testing.assert_allclose(got["variable"], want, rtol=rtol, atol=rtol * np.abs(want).max())
    else:
        np.testing.assert_array_equal(got["label"].astype(str), est.predict(xs).astype(str))
        np.testing.assert_allclose(got["probabilities"], est.predict_proba(xs), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("est,y", MODELS, ids=lambda v: type(v).__name__ if hasattr(v, "fit") else "")
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 2e-5)])
def test_tree_models_agree_with_sklearn(est, y, dtype: str, rtol: float) -> None:
    est.fit(X, y)
    _compare(est, XT, dtype, rtol)


def test_float64_random_forest_in_the_thousands_is_exact() -> None:
    """The issue's case: skl2onnx's float64 forest does not load; float32 is off by ~0.15."""
    est = ensemble.RandomForestRegressor(n_estimators=50, random_state=0).fit(X, Y_REG)
    art = portable.convert(est, to="onnx", check=False, dtype="float64")
    got = art.run({"X": XT})["variable"].ravel()
    want = est.predict(XT)
    assert np.max(np.abs(got - want) / np.abs(want)) < 1e-9
    types = {(n.domain, n.op_type) for n in art.proto.graph.node}
    assert ("ai.onnx.ml", "TreeEnsemble") in types
    assert not {t for t in types if t[1] in ("TreeEnsembleRegressor", "TreeEnsembleClassifier")}
    assert {o.domain: o.version for o in art.proto.opset_import}["ai.onnx.ml"] == 5


@pytest.mark.parametrize("categorical", [None, [3, 4]])
def test_float64_hist_gradient_boosting_with_nans_is_exact(categorical) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 5))
    x[:, 3] = rng.integers(0, 9, 500)
    x[:, 4] = rng.integers(0, 4, 500)
    y = 900 * x[:, 0] + 400 * (x[:, 3] == 2) + 120 * x[:, 4] + 7000
    x[rng.random(x.shape) < 0.12] = np.nan
    xt = rng.normal(size=(800, 5))
    xt[:, 3] = rng.integers(-2, 12, 800) + rng.choice([0.0, 0.5], 800)  # unknown, negative, non-integer codes
    xt[:, 4] = rng.integers(0, 4, 800)
    xt[rng.random(xt.shape) < 0.15] = np.nan
    reg = ensemble.HistGradientBoostingRegressor(max_iter=40, categorical_features=categorical,
                                                 random_state=0).fit(x, y)
    got = portable.convert(reg, to="onnx", check=False, dtype="float64").run({"X": xt})["variable"].ravel()
    want = reg.predict(xt)
    assert np.max(np.abs(got - want) / np.abs(want)) < 1e-9
    clf = ensemble.HistGradientBoostingClassifier(max_iter=20, categorical_features=categorical,
                                                  random_state=0).fit(x, y > np.nanmedian(y))
    out = portable.convert(clf, to="onnx", check=False, dtype="float64").run({"X": xt})
    np.testing.assert_array_equal(out["label"], clf.predict(xt))
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(xt), rtol=1e-9, atol=1e-12)


def test_decision_tree_with_missing_values() -> None:
    x = np.where(RNG.random(X.shape) < 0.2, np.nan, X)
    est = ensemble.RandomForestClassifier(n_estimators=10, random_state=0).fit(x, Y_CLASS)
    xt = np.where(RNG.random(XT.shape) < 0.2, np.nan, XT)
    for dtype in ("float64", "float32"):
        _compare(est, xt, dtype, 1e-9 if dtype == "float64" else 2e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_isolation_forest(dtype: str) -> None:
    for max_features in (1.0, 0.5):
        est = ensemble.IsolationForest(n_estimators=20, max_features=max_features, random_state=0).fit(X)
        out = portable.convert(est, to="onnx", check=False, dtype=dtype).run({"X": XT.astype(dtype)})
        xs = XT.astype(dtype)
        np.testing.assert_array_equal(out["label"].ravel(), est.predict(xs))
        tol = 1e-12 if dtype == "float64" else 1e-6
        np.testing.assert_allclose(out["scores"].ravel(), est.decision_function(xs), rtol=tol, atol=tol)


def test_tree_inside_a_pipeline() -> None:
    pipe = make_pipeline(StandardScaler(), ensemble.RandomForestRegressor(n_estimators=5, random_state=0))
    pipe.fit(X, Y_REG)
    art = portable.convert(pipe, to="onnx", check=False, dtype="float64")
    assert any(n.op_type == "TreeEnsemble" for n in art.proto.graph.node)
    got = art.run({"X": XT})["variable"].ravel()
    np.testing.assert_allclose(got, pipe.predict(XT), rtol=1e-9)


def test_reference_runtime_agrees() -> None:
    """onnx's own reference evaluator reads the same TreeEnsemble attributes the same way."""
    est = ensemble.GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, Y_CLASS)
    art = portable.convert(est, to="onnx", check=False, dtype="float64")
    ref = art.with_runtime("reference").run({"X": XT[:50]})
    np.testing.assert_allclose(ref["probabilities"], est.predict_proba(XT[:50]), rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (20, 6), elements=st.floats(-3, 3) | st.just(np.nan)), st.sampled_from([0, 1, 2]))
def test_float32_form_takes_every_branch_sklearn_takes(x: np.ndarray, snap: int) -> None:
    """Inputs on, just below and just above float32-rounded thresholds: labels must match exactly."""
    est = _SNAP_MODEL
    thr = est.tree_.threshold[est.tree_.feature >= 0]
    feat = est.tree_.feature[est.tree_.feature >= 0]
    x = x.copy()
    for i in range(min(len(thr), len(x))):
        t32 = np.float32(thr[i])
        x[i, feat[i]] = [t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))][snap]
    x32 = x.astype(np.float32)
    out = portable.convert(est, to="onnx", check=False, dtype="float32").run({"X": x32})
    np.testing.assert_array_equal(out["label"], est.predict(x32))


_SNAP_MODEL = tree.DecisionTreeClassifier(max_depth=8, random_state=0).fit(X, Y_CLASS)


# -- one traversal per tree, whatever the number of classes (issue 18) --------------------------------------------

def _split_nodes(proto) -> int:
    """Interior (split) nodes over every tree ensemble of an ONNX graph."""
    from onnx import helper

    total = 0
    for node in proto.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "TreeEnsemble":
            total += len(attrs["nodes_featureids"])
        elif node.op_type in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"):
            total += sum(m != b"LEAF" for m in attrs["nodes_modes"])
    return total


def _sklearn_split_nodes(est) -> int:
    trees = [est] if hasattr(est, "tree_") else list(np.ravel(est.estimators_))
    return sum(int((t.tree_.children_left >= 0).sum()) for t in trees)


@pytest.mark.parametrize("n_classes", [3, 5, 10])
@pytest.mark.parametrize("kind", ["forest", "extra"])
def test_multiclass_forest_is_stored_once(n_classes: int, kind: str) -> None:
    from sklearn.datasets import make_classification

    Xc, yc = make_classification(600, 8, n_informative=6, n_classes=n_classes, random_state=n_classes)
    cls = ensemble.RandomForestClassifier if kind == "forest" else ensemble.ExtraTreesClassifier
    est = cls(n_estimators=12, max_depth=7, random_state=0).fit(Xc, yc)
    xt = np.random.default_rng(n_classes).normal(size=(300, 8)) * 2
    want = est.predict_proba(xt.astype(np.float32))
    for dtype, tol in (("float32", 2e-6), ("float64", 1e-12)):
        art = portable.convert(est, to="onnx", check=False, dtype=dtype)
        assert _split_nodes(art.proto) <= 1.05 * _sklearn_split_nodes(est)
        assert "one traversal per tree" in art.metadata["portable.trees.formulation"]
        out = art.run({"X": xt})
        np.testing.assert_allclose(out["probabilities"], want, rtol=0, atol=tol)
        np.testing.assert_array_equal(out["label"], est.predict(xt.astype(np.float32)))


def test_multiclass_hgb_with_categories_stays_one_traversal_in_v5() -> None:
    """Set-membership splits need TreeEnsemble v5; multi-target leaves there go through leaf indices."""
    rng = np.random.default_rng(3)
    Xc = np.c_[rng.integers(0, 6, 500), rng.normal(size=(500, 3))]
    yc = (Xc[:, 0] % 3 + (Xc[:, 1] > 0)).astype(int)
    est = ensemble.HistGradientBoostingClassifier(max_iter=10, categorical_features=[0], random_state=0).fit(Xc, yc)
    xt = np.c_[rng.integers(0, 6, 200), rng.normal(size=(200, 3))]
    for dtype, tol in (("float32", 2e-5), ("float64", 1e-12)):
        art = portable.convert(est, to="onnx", check=False, dtype=dtype)
        assert any(n.op_type == "TreeEnsemble" for n in art.proto.graph.node)
        assert _split_nodes(art.proto) <= 1.05 * sum(
            int((~p.nodes["is_leaf"].astype(bool)).sum()) for stage in est._predictors for p in stage)
        out = art.run({"X": xt})
        np.testing.assert_allclose(out["probabilities"], est.predict_proba(xt), rtol=tol, atol=tol)


def test_multi_output_regressor_and_one_leaf_trees() -> None:
    """Two targets per leaf, and trees that are a single leaf (constant target), in both formulations."""
    est = ensemble.RandomForestRegressor(n_estimators=6, random_state=0).fit(X, np.c_[Y_REG, -Y_REG / 7])
    stump = ensemble.RandomForestRegressor(n_estimators=3, random_state=0).fit(X, np.full(len(X), 4.5))
    for model, y in ((est, est.predict(XT.astype(np.float32))), (stump, np.full(len(XT), 4.5))):
        for dtype, tol in (("float32", 1e-6), ("float64", 1e-12)):
            art = portable.convert(model, to="onnx", check=False, dtype=dtype)
            got = art.run({"X": XT})["variable"].reshape(y.shape)
            np.testing.assert_allclose(got, y, rtol=tol)
            assert _split_nodes(art.proto) <= max(1.05 * _sklearn_split_nodes(model), len(model.estimators_))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_traversal_formulations_lower_to_standard_ops(dtype: str) -> None:
    """The leaf-index (float64) and multi-target TreeEnsembleRegressor (float32) graphs lower to standard ops."""
    from sklearn.datasets import make_classification

    from portable.registry import ConvertOptions

    Xc, yc = make_classification(500, 6, n_informative=4, n_classes=3, random_state=0)
    est = ensemble.RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(Xc, yc)
    art = portable.convert(est, to="onnx", check=False, dtype=dtype)
    lowered = portable.api._run_route(art, [], ConvertOptions(standard_ops=True))
    assert not any(n.domain == "ai.onnx.ml" for n in lowered.proto.graph.node)
    z = np.random.default_rng(0).normal(size=(2000, 6)) * 2
    got = lowered.run({"X": z})["probabilities"]
    np.testing.assert_allclose(got, est.predict_proba(z.astype(np.float32)), rtol=0,
                               atol=1e-12 if dtype == "float64" else 2e-6)


def test_many_class_forest_is_one_single_target_operator_per_tree() -> None:
    """float32 forests with many classes (issue 18): one single-target TreeEnsembleRegressor per tree whose leaf
    weights index a `[leaves, classes]` table (Concat, Gather, ReduceSum), so onnxruntime adds one number per tree
    instead of walking each leaf's class list. Same probabilities as scikit-learn with NaN routed per node, at 0,
    1 and 2,000 rows; the split nodes are scikit-learn's; the lowering to standard ops joins the trees back into
    one forest; the tree certification reads it."""
    import onnx
    from sklearn.datasets import make_classification

    from portable.formats.onnx_trees import join_per_tree
    from portable.registry import ConvertOptions

    Xc, yc = make_classification(900, 6, n_informative=5, n_redundant=0, n_classes=6, random_state=6)
    est = ensemble.RandomForestClassifier(n_estimators=9, max_depth=6, random_state=0).fit(Xc, yc)
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    assert "per tree, leaf indices" in art.metadata["portable.trees.formulation"]
    assert [n.op_type for n in art.proto.graph.node].count("TreeEnsembleRegressor") == 9
    assert _split_nodes(art.proto) == _sklearn_split_nodes(est)
    rng = np.random.default_rng(6)
    xt = rng.normal(size=(2000, 6)) * 2
    xt[rng.random(xt.shape) < 0.2] = np.nan  # trained without NaN: scikit-learn still routes it per node
    x = xt.astype(np.float32)
    want = est.predict_proba(x.astype(np.float64))
    out = art.run({"X": x})
    np.testing.assert_allclose(out["probabilities"], want, rtol=0, atol=2e-6)
    close = np.sort(want, axis=1)[:, -1] - np.sort(want, axis=1)[:, -2] > 1e-5
    np.testing.assert_array_equal(out["label"][close], est.predict(x)[close])
    for rows in (0, 1):
        got = art.run({"X": x[:rows]})["probabilities"]
        assert got.shape == (rows, 6)
        np.testing.assert_allclose(got, want[:rows], rtol=0, atol=2e-6)
    joined = onnx.ModelProto()
    joined.CopyFrom(art.proto)
    assert join_per_tree(joined.graph) == 1
    assert [n.op_type for n in joined.graph.node].count("TreeEnsembleRegressor") == 1
    assert _split_nodes(joined) == _sklearn_split_nodes(est)
    lowered = portable.api._run_route(art, [], ConvertOptions(standard_ops=True))
    assert not any(n.domain == "ai.onnx.ml" for n in lowered.proto.graph.node)
    z = np.nan_to_num(x)
    np.testing.assert_allclose(lowered.run({"X": z})["probabilities"], est.predict_proba(z), rtol=0, atol=2e-6)
    certs = portable.certify(est, art).certificates
    assert all(c.status == "certified" and c.method == "trees" for c in certs.values()), \
        {k: c.reason for k, c in certs.items()}


# -- the formulation chosen per model (issue 18): folded post-processing, one single-target ensemble per class --

def _multiclass_models() -> list[tuple[str, object, float]]:
    """(name, fitted model, float64 tolerance: the library's own arithmetic) with 4 classes."""
    from sklearn.datasets import make_classification

    Xc, yc = make_classification(800, 8, n_informative=6, n_classes=4, random_state=4)
    out = [("gb", ensemble.GradientBoostingClassifier(n_estimators=12, max_depth=3, random_state=0).fit(Xc, yc),
            1e-12),
           ("hgb", ensemble.HistGradientBoostingClassifier(max_iter=12, random_state=0).fit(Xc, yc), 1e-12),
           ("rf", ensemble.RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0).fit(Xc, yc),
            1e-12)]
    try:
        import xgboost

        out.append(("xgb", xgboost.XGBClassifier(n_estimators=10, max_depth=4, n_jobs=1).fit(Xc, yc), 2e-6))
    except ImportError:
        pass
    try:
        import lightgbm

        out.append(("lgbm", lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(Xc, yc), 1e-12))
    except ImportError:
        pass
    return out


def _native_split_nodes(est) -> int:
    if hasattr(est, "estimators_"):
        return sum(int((t.tree_.children_left >= 0).sum()) for t in np.ravel(est.estimators_))
    if hasattr(est, "_predictors"):
        return sum(int((~p.nodes["is_leaf"].astype(bool)).sum()) for s in est._predictors for p in s)
    if hasattr(est, "get_booster"):
        df = est.get_booster().trees_to_dataframe()
        return int((df.Feature != "Leaf").sum())
    return int(est.booster_.trees_to_dataframe().split_feature.notna().sum())


def test_chosen_formulations_match_the_libraries_in_float64_and_float32() -> None:
    """Whatever formulation is chosen: float64 agrees with scikit-learn / XGBoost / LightGBM to their own
    rounding, float32 to float32 rounding; multiclass artifacts keep the original's split-node count (<= 1.05x);
    the choice is in the metadata."""
    xt = np.random.default_rng(7).normal(size=(500, 8)) * 1.7
    xt[::37, 3] = np.nan  # missing values take each node's missing branch
    for name, est, tol64 in _multiclass_models():
        if name in ("rf", "gb"):
            xt_m = np.nan_to_num(xt) if name == "gb" else xt
        else:
            xt_m = xt
        for dtype, tol in (("float64", tol64), ("float32", 3e-5)):
            art = portable.convert(est, to="onnx", check=False, dtype=dtype)
            assert _split_nodes(art.proto) <= 1.05 * _native_split_nodes(est), name
            formulation = art.metadata["portable.trees.formulation"]
            assert "one traversal per tree" in formulation
            x = xt_m.astype(dtype)
            out = art.run({"X": x})
            want = est.predict_proba(x)
            np.testing.assert_allclose(out["probabilities"], want, rtol=tol, atol=tol, err_msg=f"{name} {dtype}")
            close = np.sort(want, axis=1)[:, -1] - np.sort(want, axis=1)[:, -2] > 1e-5  # no near-ties
            np.testing.assert_array_equal(out["label"][close], est.predict(x)[close])
            if name != "rf":  # boosting: a single-target ensemble per class (float64 too since h18d)
                ops = [n.op_type for n in art.proto.graph.node]
                op = "TreeEnsembleRegressor" if dtype == "float32" else "TreeEnsemble"
                assert ops.count(op) == 4 and "per class" in formulation, (name, dtype, ops)


def test_post_processing_is_folded_into_the_tree_operator() -> None:
    """float32: the mean of a forest and a boosting model's initial score are the tree operator's own
    aggregate_function / base_values (no Div / Add node after it), and no Identity copies into an output; the
    float64 form writes them as Div / Add in float64. Both agree with scikit-learn."""
    from onnx import helper, numpy_helper

    rf = ensemble.RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(X, Y_REG)
    gb = ensemble.GradientBoostingRegressor(n_estimators=15, random_state=0).fit(X, Y_REG)
    for est in (rf, gb):
        for dtype, tol in (("float32", 1e-6), ("float64", 1e-12)):
            art = portable.convert(est, to="onnx", check=False, dtype=dtype)
            ops = [n.op_type for n in art.proto.graph.node]
            if dtype == "float32":
                # Neg + Concat: the negated columns that replace missing-value tracking (negate_missing_left);
                # a leading Cast to double where the sum is done in float64 (trees.sums_in_double)
                widened = ops[0] == "Cast"
                assert ops[widened:] == ["Neg", "Concat", "TreeEnsembleRegressor"], ops
                at = {a.name: helper.get_attribute_value(a)
                      for a in art.proto.graph.node[-1].attribute}
                if est is rf:
                    assert at["aggregate_function"] == b"AVERAGE"
                else:
                    base = numpy_helper.to_array(at["base_values_as_tensor"]) if widened else at["base_values"]
                    assert np.isclose(base[0], gb.init_.constant_.ravel()[0], rtol=1e-6)
            else:
                assert ("Div" in ops) == (est is rf) and ("Add" in ops) == (est is gb)
            got = art.run({"X": XT.astype(dtype)})["variable"].ravel()
            np.testing.assert_allclose(got, est.predict(XT.astype(dtype)), rtol=tol)


# -- missing values routed without missing-value tracking (issue 18) ------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negated_columns_route_missing_values_as_scikit_learn_does(dtype: str) -> None:
    """Splits that send NaN left read a negated copy of their column (`-x < -t` -> right), so the artifact tracks
    no missing values (onnxruntime's fast loop) and still routes NaN, +-inf and values at the thresholds as
    scikit-learn does: trees trained with and without NaN, forests, HistGradientBoosting, in onnxruntime."""
    from onnx import helper

    rng = np.random.default_rng(5)
    Xa = rng.normal(size=(400, 5))
    ya = (Xa[:, 0] + Xa[:, 1] ** 2 > 0.5).astype(int) + (Xa[:, 2] > 0)
    Xnan = Xa.copy()
    Xnan[rng.random(Xa.shape) < 0.2] = np.nan
    models = [ensemble.RandomForestClassifier(8, max_depth=6, random_state=0).fit(Xa, ya),
              ensemble.RandomForestRegressor(8, max_depth=6, random_state=0).fit(Xnan, Xa[:, 0]),
              ensemble.ExtraTreesClassifier(8, random_state=0).fit(Xnan, ya),
              tree.DecisionTreeRegressor(max_depth=6, random_state=0).fit(Xnan, Xa[:, 1]),
              ensemble.HistGradientBoostingRegressor(max_iter=15).fit(Xnan, Xa[:, 0])]
    est0 = models[0].estimators_[0].tree_
    thr = est0.threshold[est0.children_left >= 0]
    Xt = rng.normal(size=(2000, 5))
    Xt[rng.random(Xt.shape) < 0.3] = np.nan
    Xt[:len(thr), 0] = thr  # values at the thresholds
    for est in models:
        art = portable.convert(est, to="onnx", check=False, dtype=dtype)
        assert "negated input columns" in art.metadata["portable.trees.formulation"]
        for node in art.proto.graph.node:
            for a in node.attribute:
                if a.name == "nodes_missing_value_tracks_true":
                    assert not any(helper.get_attribute_value(a)), type(est).__name__
        x = Xt.astype(dtype)
        xs = x.astype(np.float64)
        out = art.run({"X": x})
        if hasattr(est, "predict_proba"):
            want, got = est.predict_proba(xs), out["probabilities"]
        else:
            want, got = est.predict(xs), next(iter(out.values())).ravel()
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{type(est).__name__} {dtype}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negated_columns_in_boosting_libraries_and_multi_output_forests(dtype: str) -> None:
    """LightGBM, XGBoost and multi-output forests trained with NaN get the negated-column routing too (they were
    written with missing-value tracks before): no tracked node, and the library's own predictions on rows with
    30% NaN."""
    from onnx import helper

    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(1500, 6))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int) + np.isnan(X[:, 2])
    Y2 = np.c_[y, (np.nan_to_num(X[:, 3]) > 0).astype(int)]
    models = [lightgbm.LGBMClassifier(n_estimators=15, verbose=-1).fit(X, y),
              lightgbm.LGBMRegressor(n_estimators=15, verbose=-1).fit(X, y * 1.5),
              xgboost.XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1).fit(X, y),
              ensemble.RandomForestClassifier(6, max_depth=5, random_state=0).fit(X, Y2),
              ensemble.RandomForestRegressor(6, max_depth=5, random_state=0).fit(X, np.c_[y, y * 2.0])]
    Xt = rng.normal(size=(2000, 6))
    Xt[rng.random(Xt.shape) < 0.3] = np.nan
    x = Xt.astype(dtype)
    xs = x.astype(np.float64)
    for est in models:
        name = type(est).__name__
        art = portable.convert(est, to="onnx", check=False, dtype=dtype)
        # XGBoost: its splits oriented by training cover (the columns also route NaN exactly)
        oriented = name.startswith("XGB")
        assert ("training cover" if oriented else "negated input columns") in \
            art.metadata["portable.trees.formulation"], name
        for node in art.proto.graph.node:
            for a in node.attribute:
                if a.name == "nodes_missing_value_tracks_true":
                    assert not any(helper.get_attribute_value(a)), name
        out = art.run({"X": x})
        if hasattr(est, "predict_proba"):
            want = est.predict_proba(xs)
            if isinstance(want, list):  # multi-output classifier: one probability table per output
                want = np.concatenate(want, axis=1)
                got = np.concatenate([out[k] for k in sorted(out) if k.startswith("probabilities")], axis=1)
            else:
                got = out["probabilities"]
        else:
            want, got = est.predict(xs), next(iter(out.values()))
        # XGBoost sums its trees in float32 whatever the input
        tol = 1e-5 if dtype == "float32" or name.startswith("XGB") else 1e-12
        np.testing.assert_allclose(np.asarray(got).reshape(np.shape(want)), want, rtol=tol, atol=tol,
                                   err_msg=f"{name} {dtype}")


# -- XGBoost: the frequent child on onnxruntime's fall-through branch (issue 18) -----------------------------------

@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2 ** 16), st.sampled_from([0.0, 0.05, 0.3]), st.sampled_from([2, 3]),
       st.sampled_from(["float32", "float64"]))
def test_xgboost_oriented_by_cover_routes_as_xgboost(seed: int, nan_rate: float, n_classes: int,
                                                     dtype: str) -> None:
    """XGBoost artifacts (float32 and float64) put each split's larger child (XGBoost's hessian sums) on onnxruntime's false
    branch, reading -x where that swaps the branches and a NaN-filled column where NaN must then take the true
    branch: XGBoost's own probabilities on rows with NaN, values at the thresholds and +-inf, models trained with
    and without NaN (default directions of both kinds); no missing-value tracks, one split mode, as many split
    nodes as XGBoost's."""
    from onnx import helper, numpy_helper

    xgboost = pytest.importorskip("xgboost")
    rng = np.random.default_rng(seed)
    Xa = rng.normal(size=(500, 4))
    Xa[rng.random(Xa.shape) < nan_rate] = np.nan
    y = ((np.nan_to_num(Xa[:, 0]) + np.nan_to_num(Xa[:, 1], nan=1.0) > 0).astype(int)
         + (np.isnan(Xa[:, 2]) | (Xa[:, 3] > 0.5))) % n_classes
    est = xgboost.XGBClassifier(n_estimators=6, max_depth=4, n_jobs=1, random_state=seed).fit(Xa, y)
    art = portable.convert(est, to="onnx", check=False, dtype=dtype)
    trees = est.get_booster().trees_to_dataframe()
    splits = trees[trees.Feature != "Leaf"]
    assert _split_nodes(art.proto) == len(splits)
    Xt = rng.normal(size=(1500, 4))
    Xt[rng.random(Xt.shape) < 0.3] = np.nan
    thr = splits.Split.to_numpy(np.float64)
    Xt[:len(thr), 1] = thr[:1500]  # values at the thresholds
    Xt[-20:-10, 2], Xt[-10:, 3] = np.inf, -np.inf
    x = Xt.astype(dtype)
    # both dtypes (float64 `TreeEnsemble` v5 since h18d): oriented, no tracks, one split mode
    assert "training cover" in art.metadata["portable.trees.formulation"]
    for node in art.proto.graph.node:
        at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "TreeEnsembleRegressor":
            assert not any(at["nodes_missing_value_tracks_true"])
            assert len(set(at["nodes_modes"]) - {b"LEAF"}) == 1
        elif node.op_type == "TreeEnsemble":
            assert not any(at["nodes_missing_value_tracks_true"])
            assert len(set(numpy_helper.to_array(at["nodes_modes"]).tolist())) == 1
    np.testing.assert_allclose(art.run({"X": x})["probabilities"], est.predict_proba(x), rtol=1e-5, atol=1e-6)


def test_orient_by_cover_puts_the_larger_child_on_the_false_branch() -> None:
    """`trees.orient_by_cover` on XGBoost's trees: every split's false child (the right one in the NodeTable) has
    at least its true child's cover, and the leaves keep their values."""
    xgboost = pytest.importorskip("xgboost")
    from portable.converters.sklearn import boosting, trees

    est = xgboost.XGBRegressor(n_estimators=5, max_depth=4).fit(X, Y_REG)
    table, info, _, _ = boosting._xgb_model(est)
    forest = trees._build_one_target_per_tree(table, info)
    got = trees.orient_by_cover(forest, X.shape[1])
    assert got is not None
    oriented, kinds = got
    t = oriented.table
    inner = t.left >= 0
    assert np.all(t.cover[t.right[inner]] >= t.cover[t.left[inner]])
    assert kinds[0] == "x" and set(kinds) <= set(trees.ORIENT_KINDS)
    np.testing.assert_array_equal(oriented.leaf_weights, forest.leaf_weights)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-2 ** 63, 2 ** 63 - 1), st.integers(0, 2 ** 22)), max_size=50),
       st.lists(st.floats(width=32, allow_nan=False), max_size=20), st.lists(st.integers(0, 2), max_size=20))
def test_attributes_written_as_wire_bytes_parse_as_onnx_helper_writes_them(ints: list[int], floats: list[float],
                                                                         modes: list[int]) -> None:
    """The tree attributes are written as protobuf wire bytes (trees.varints, wire_*): parsed into a node they
    read back as the same values and types as protobuf's own writer gives."""
    from onnx import AttributeProto, helper, numpy_helper

    from portable.converters.sklearn import trees

    table = [b"BRANCH_LEQ", b"BRANCH_LT", b"LEAF"]
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml")
    trees.set_attributes(node, [trees.wire_ints("a", ints), trees.wire_floats("b", floats),
                                trees.wire_strings("c", np.asarray(modes, np.int64), table),
                                trees.wire_int("d", 7), trees.wire_string("e", b"SUM"),
                                trees.wire_tensor("f", np.asarray(floats, np.float64))])
    got = {a.name: a for a in node.attribute}
    assert [a.name for a in node.attribute] == list("abcdef")
    want = {"a": (AttributeProto.INTS, ints), "b": (AttributeProto.FLOATS, np.asarray(floats, np.float32).tolist()),
            "c": (AttributeProto.STRINGS, [table[m] for m in modes]), "d": (AttributeProto.INT, 7),
            "e": (AttributeProto.STRING, b"SUM")}
    for name, (kind, value) in want.items():
        assert got[name].type == kind, name
        v = helper.get_attribute_value(got[name])
        assert (list(v) if isinstance(value, list) else v) == value, name
        # the same bytes as protobuf's own writer for the same message
        ref = AttributeProto(name=name, type=kind)
        if kind == AttributeProto.INTS:
            ref.ints.extend(value)
        elif kind == AttributeProto.FLOATS:
            ref.floats.extend(value)
        elif kind == AttributeProto.STRINGS:
            ref.strings.extend(value)
        elif kind == AttributeProto.INT:
            ref.i = value
        else:
            ref.s = value
        assert got[name].SerializeToString() == ref.SerializeToString(), name
    assert got["f"].type == AttributeProto.TENSOR
    np.testing.assert_array_equal(numpy_helper.to_array(got["f"].t), np.asarray(floats, np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["regressor", "classifier-2", "classifier-5"])
def test_bagged_forest_rows_ordered_by_a_key_tree(kind: str, dtype: str) -> None:
    """Forests of ~80 trees or more run their rows in the order of their leaves in the first two trees, then put
    them back (trees._row_order; float64: a TreeEnsemble v5 key): the same values as scikit-learn, NaN routed by
    scikit-learn's rule, at 0, 1 and many rows; what reads the trees (check, certificate, NNEF lowering) sees
    the forest without it."""
    from sklearn.datasets import make_classification

    from portable.converters.sklearn.trees import ROW_ORDER
    from portable.formats.onnx_trees import without_row_order

    n = int(kind.split("-")[1]) if "-" in kind else 2
    Xc, yc = make_classification(1500, 6, n_informative=4, n_classes=n, random_state=n)
    rng = np.random.default_rng(n)
    Xc[rng.random(Xc.shape) < 0.05] = np.nan  # trained with NaN: scikit-learn routes it per split
    if kind == "regressor":
        est = ensemble.RandomForestRegressor(n_estimators=100, max_depth=6, random_state=0).fit(Xc, yc.astype(float))
    else:
        est = ensemble.RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0).fit(Xc, yc)
    xt = (rng.normal(size=(700, 6)) * 2).astype(dtype)
    xt[rng.random(xt.shape) < 0.1] = np.nan
    art = portable.convert(est, to="onnx", dtype=dtype, check=False)
    assert ROW_ORDER in art.metadata["portable.trees.formulation"]
    tol = {"float32": (2e-5, 2e-6), "float64": (1e-12, 1e-15)}[dtype]
    assert without_row_order(art.proto.graph) is not art.proto.graph
    assert _split_nodes(art.proto) <= 1.05 * _sklearn_split_nodes(est)
    assert art.run({"X": xt[:0]})["variable" if kind == "regressor" else "probabilities"].shape[0] == 0
    for rows in (700, 1):
        out = art.run({"X": xt[:rows]})
        if kind == "regressor":
            np.testing.assert_allclose(out["variable"].reshape(-1), est.predict(xt[:rows]), rtol=0, atol=tol[0])
        else:
            np.testing.assert_allclose(out["probabilities"], est.predict_proba(xt[:rows]), rtol=0, atol=tol[1])
    assert portable.check(est, art, samples=300).equivalent
    result = portable.certify(est, art, data=Xc[:300])
    for out_name, cert in result.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out_name, cert.reason)
    nnef = portable.convert(est, to="nnef", dtype=dtype, check=False)
    got = nnef.run({"X": xt[:50]})
    key = "variable" if kind == "regressor" else "probabilities"
    want = est.predict(xt[:50]) if kind == "regressor" else est.predict_proba(xt[:50])
    np.testing.assert_allclose(np.asarray(got[key], np.float64).reshape(want.shape), want, rtol=0, atol=tol[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shallow_boosting_rows_ordered_by_root_splits(dtype: str) -> None:
    """A gradient boosting of shallow trees runs its rows sorted by the outcomes of its first distinct root splits
    (trees._key_roots: Gather-by-MatMul, Less, Cast, MatMul, TopK) and puts them back: every row computed as
    without the ordering (bit for bit), the same values as scikit-learn, at 0, 1 and many rows, NaN and inf in
    the input included; the check, the certificate and the NNEF lowering read the forest without it."""
    import onnxruntime as ort
    from sklearn.datasets import make_regression

    from portable.converters.sklearn.trees import ROOT_ORDER
    from portable.formats.onnx_trees import without_row_order

    X, y = make_regression(2000, 8, noise=3.0, random_state=1)
    est = ensemble.GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0).fit(X, y)
    rng = np.random.default_rng(2)
    xt = (rng.normal(size=(900, 8)) * 1.5).astype(dtype)
    art = portable.convert(est, to="onnx", dtype=dtype, check=False)
    assert ROOT_ORDER in art.metadata["portable.trees.formulation"]
    assert _split_nodes(art.proto) == _sklearn_split_nodes(est)  # the key is no tree: no split node added
    plain = art.proto.__class__()
    plain.CopyFrom(art.proto)
    plain.graph.CopyFrom(without_row_order(art.proto.graph))
    assert len(plain.graph.node) < len(art.proto.graph.node)
    s_art = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    s_plain = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    odd = xt.copy()
    odd[rng.random(odd.shape) < 0.1] = np.nan  # scikit-learn refuses NaN here: compared with the plain graph only
    odd[rng.random(odd.shape) < 0.02] = np.inf
    for rows in (0, 1, 900):
        for x in (odd[:rows], xt[:rows]):
            got, want = s_art.run(None, {"X": x})[0], s_plain.run(None, {"X": x})[0]
            np.testing.assert_array_equal(got, want)
        if rows:  # got: xt's
            tol = 1e-9 if dtype == "float64" else 2e-4
            np.testing.assert_allclose(got.reshape(-1), est.predict(xt[:rows]), rtol=tol, atol=tol)
    assert portable.check(est, art, samples=300).equivalent
    # the certificate reads the trees through the ordering: the same verdict as for the graph without it
    unordered = portable.convert(est, to="onnx", dtype=dtype, check=False)
    unordered.proto.graph.CopyFrom(plain.graph)
    result = portable.certify(est, art, data=X[:300])
    again = portable.certify(est, unordered, data=X[:300])
    for out_name, cert in result.certificates.items():
        assert cert.method == "trees", (out_name, cert.reason)
        assert (cert.status, cert.reason) == (again.certificates[out_name].status,
                                              again.certificates[out_name].reason), out_name
    nnef = portable.convert(est, to="nnef", dtype=dtype, check=False)
    got = np.asarray(nnef.run({"X": xt[:50]})["variable"], np.float64).reshape(-1)
    np.testing.assert_allclose(got, est.predict(xt[:50]), rtol=2e-4 if dtype == "float32" else 1e-9, atol=1e-6)


def test_deep_boosting_and_few_trees_are_not_ordered() -> None:
    """The root-split key is for shallow trees (measured) with enough distinct root splits."""
    from sklearn.datasets import make_regression

    from portable.converters.sklearn.trees import ROOT_ORDER

    X, y = make_regression(800, 8, random_state=1)
    for est in (ensemble.GradientBoostingRegressor(n_estimators=60, max_depth=6, random_state=0).fit(X, y),
                ensemble.GradientBoostingRegressor(n_estimators=5, max_depth=3, random_state=0).fit(X, y)):
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        assert ROOT_ORDER not in art.metadata["portable.trees.formulation"]


# -- float64 boosting: one single-target TreeEnsemble v5 per class (h18d, issue 18) -------------------------------

def _at_thresholds(rng: np.random.Generator, thr_by_feature: dict[int, np.ndarray], n: int, width: int) -> np.ndarray:
    """Rows with 20% NaN, then each feature's split thresholds (and their float64 neighbours) in its column."""
    x = rng.normal(size=(n, width)) * 1.5
    x[rng.random(x.shape) < 0.2] = np.nan
    for f, thr in thr_by_feature.items():
        t = np.concatenate([thr, np.nextafter(thr, -np.inf), np.nextafter(thr, np.inf)])[:n]
        x[:len(t), f] = t
    x[-6:-3, 0], x[-3:, 1] = np.inf, -np.inf
    return x


@pytest.mark.parametrize("kind", ["gb", "hgb", "lgbm"])
def test_float64_boosting_per_class_ensembles_match_the_library(kind: str) -> None:
    """float64 multiclass boosting is one single-target `TreeEnsemble` v5 per class, then Concat (onnxruntime's
    single-target loop, 1.1-1.2x faster at 10,000 rows than one 3-target operator): the library's own
    probabilities on rows with NaN (not for GradientBoosting, which refuses them), at every split threshold and its
    float64 neighbours, and +-inf."""
    from sklearn.datasets import make_classification

    rng = np.random.default_rng(11)
    Xc, yc = make_classification(900, 6, n_informative=5, n_redundant=0, n_classes=3, random_state=3)
    Xn = Xc.copy()
    Xn[rng.random(Xn.shape) < 0.15] = np.nan  # trained with NaN: both missing directions occur
    if kind == "gb":
        est = ensemble.GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0).fit(Xc, yc)
        thr = {f: np.concatenate([e.tree_.threshold[e.tree_.feature == f] for e in est.estimators_.ravel()])
               for f in range(6)}
    elif kind == "hgb":
        est = ensemble.HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(Xn, yc)
        nodes = np.concatenate([p.nodes for it in est._predictors for p in it])
        inner = ~nodes["is_leaf"].astype(bool)
        thr = {f: nodes["num_threshold"][inner & (nodes["feature_idx"] == f)] for f in range(6)}
    else:
        lightgbm = pytest.importorskip("lightgbm")
        est = lightgbm.LGBMClassifier(n_estimators=15, verbose=-1, n_jobs=1).fit(Xn, yc)
        df = est.booster_.trees_to_dataframe()
        df = df[df.split_feature.notna()]
        thr = {f: df.threshold[df.split_feature == f"Column_{f}"].to_numpy(np.float64) for f in range(6)}
    x = _at_thresholds(rng, thr, 3000, 6)
    if kind == "gb":  # GradientBoostingClassifier refuses NaN and inf at predict
        x = np.where(np.isfinite(x), x, rng.normal(size=x.shape))
    art = portable.convert(est, to="onnx", check=False, dtype="float64")
    formulation = art.metadata["portable.trees.formulation"]
    assert "TreeEnsemble (ai.onnx.ml 5) per class" in formulation, formulation
    assert [n.op_type for n in art.proto.graph.node].count("TreeEnsemble") == 3
    got, want = art.run({"X": x})["probabilities"], est.predict_proba(x)
    # to the libraries' own rounding (their softmax is not onnxruntime's; a row routed wrongly at one split
    # moves its probabilities by far more)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # what reads the graph's trees (formats.onnx_trees) reads the per-class operators as one forest
    result = portable.certify(est, art)
    for out, cert in result.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.reason)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_order_below_opset_15_counts_rows_with_shape_and_slice(dtype: str) -> None:
    """The row ordering's GatherND / ScatterND form (h18d) counts the rows with Shape(start=0, end=1) from opset
    15 and Shape + Slice below: at opset 13 the forest still runs ordered, equals scikit-learn on rows with NaN
    and values at thresholds at 0, 1 and 500 rows, and reads without the ordering."""
    from portable.formats.onnx_trees import without_row_order
    from portable.registry import ConvertOptions

    rng = np.random.default_rng(5)
    Xr = rng.normal(size=(1200, 5))
    Xr[rng.random(Xr.shape) < 0.05] = np.nan
    est = ensemble.RandomForestRegressor(n_estimators=90, max_depth=5, random_state=0).fit(
        Xr, np.nan_to_num(Xr[:, 0]) * 2 + np.isnan(Xr[:, 1]))
    art = portable.convert(est, to="onnx", dtype=dtype, check=False,
                           options=ConvertOptions(dtype=dtype, target_opset=13))
    assert max(o.version for o in art.proto.opset_import if o.domain in ("", "ai.onnx")) < 15
    ops = [n.op_type for n in art.proto.graph.node if "_roworder_" in n.name]
    assert {"Slice", "GatherND", "ScatterND"} <= set(ops), ops
    assert without_row_order(art.proto.graph) is not art.proto.graph
    xt = (rng.normal(size=(500, 5)) * 2).astype(dtype)
    xt[rng.random(xt.shape) < 0.1] = np.nan
    t0 = est.estimators_[0].tree_
    thr = t0.threshold[(t0.feature == 0) & np.isfinite(t0.threshold)]
    xt[:len(thr), 0] = thr[:500]  # values at the thresholds (sklearn's inf ones split NaN from the rest)
    tol = 2e-5 if dtype == "float32" else 1e-12
    for rows in (500, 1, 0):
        got = art.run({"X": xt[:rows]})["variable"].reshape(-1)
        assert got.shape == (rows,)
        if rows:
            np.testing.assert_allclose(got, est.predict(xt[:rows]), rtol=0, atol=tol)
