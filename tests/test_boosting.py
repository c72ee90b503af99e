"""XGBoost, LightGBM and CatBoost models through portable's TreeEnsemble converter, against the libraries.

LightGBM and CatBoost compute in float64 and must agree to 1e-9 in float64; XGBoost computes in float32 itself,
so its float64 conversion agrees to float32 rounding. Each library's tests skip when it is not installed (the
`boost` extra installs xgboost-cpu and lightgbm).
"""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import portable

pytest.importorskip("skl2onnx")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 5))
Y_CLASS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
Y_REG = 1000 * X[:, 0] + 300 * np.sin(X[:, 1]) + 5000
X_NAN = np.where(RNG.random(X.shape) < 0.1, np.nan, X)
XT = np.where(RNG.random((400, 5)) < 0.1, np.nan, RNG.normal(size=(400, 5)) * 1.3)

# library -> float64 tolerance (the library's own arithmetic)
TOL64 = {"xgboost": 2e-6, "lightgbm": 1e-9, "catboost": 1e-9}


def _models(lib: str) -> list:
    mod = pytest.importorskip(lib)
    if lib == "xgboost":
        return [mod.XGBClassifier(n_estimators=8, max_depth=3), mod.XGBRegressor(n_estimators=8),
                mod.XGBRegressor(n_estimators=5, objective="count:poisson")]
    if lib == "lightgbm":
        return [mod.LGBMClassifier(n_estimators=8, verbose=-1), mod.LGBMRegressor(n_estimators=8, verbose=-1),
                mod.LGBMRegressor(n_estimators=5, objective="poisson", verbose=-1)]
    return [mod.CatBoostClassifier(iterations=8, depth=3, verbose=0, thread_count=1, allow_writing_files=False),
            mod.CatBoostRegressor(iterations=8, depth=4, verbose=0, thread_count=1, allow_writing_files=False)]


def _targets(est) -> list[np.ndarray]:
    if type(est).__name__.endswith("Classifier"):
        return [Y_CLASS, (Y_CLASS > 0).astype(int)]
    poisson = "poisson" in str(est.get_params().get("objective"))
    return [np.exp(X[:, 0]) if poisson else Y_REG]


def _compare(est, x: np.ndarray, dtype: str, tol: float) -> None:
    out = portable.convert(est, to="onnx", check=False, dtype=dtype).run({"X": x.astype(dtype)})
    xs = x.astype(dtype)
    if "variable" in out:
        want = np.asarray(est.predict(xs), dtype=np.float64)
        got = out["variable"].ravel()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    else:
        np.testing.assert_array_equal(out["label"].ravel(), np.asarray(est.predict(xs)).ravel())
        np.testing.assert_allclose(out["probabilities"], est.predict_proba(xs), rtol=tol, atol=tol)


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm", "catboost"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_boosted_models_agree_with_their_library(lib: str, dtype: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in _models(lib):
            for y in _targets(est):
                model = type(est)(**est.get_params()).fit(X_NAN, y)
                _compare(model, XT, dtype, TOL64[lib] if dtype == "float64" else 2e-5)


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_boosted_model_inside_a_pipeline(lib: str) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    est = _models(lib)[0]
    pipe = make_pipeline(StandardScaler(), est).fit(X, Y_CLASS)
    out = portable.convert(pipe, to="onnx", check=False, dtype="float64").run({"X": XT})
    assert any(n.op_type in ("TreeEnsemble", "TreeEnsembleRegressor") and n.domain == "ai.onnx.ml" for n in
               portable.convert(pipe, to="onnx", check=False).proto.graph.node)
    xt = np.nan_to_num(XT)
    out = portable.convert(pipe, to="onnx", check=False, dtype="float64").run({"X": xt})
    np.testing.assert_array_equal(out["label"], pipe.predict(xt))
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(xt), rtol=TOL64[lib], atol=TOL64[lib])


def test_lightgbm_categorical_splits() -> None:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 3))
    x[:, 1] = rng.integers(0, 12, 600)
    y = 500 * np.isin(x[:, 1], [2, 5, 7]) + 100 * x[:, 0] + 3000
    est = lgb.LGBMRegressor(n_estimators=15, min_data_per_group=5, cat_smooth=1, verbose=-1)
    est.fit(x, y, categorical_feature=[1])
    xt = rng.normal(size=(500, 3))
    xt[:, 1] = rng.integers(-1, 15, 500) + rng.choice([0.0, 0.4], 500)
    xt[rng.random(500) < 0.1, 1] = np.nan
    _compare(est, xt, "float64", 1e-9)


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_early_stopping_uses_the_best_iteration(lib: str) -> None:
    mod = pytest.importorskip(lib)
    xv, yv = X[:100], Y_REG[:100] + RNG.normal(size=100) * 2000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if lib == "xgboost":
            est = mod.XGBRegressor(n_estimators=200, learning_rate=0.5, early_stopping_rounds=3)
            est.fit(X, Y_REG, eval_set=[(xv, yv)], verbose=False)
            assert est.best_iteration < 199
        else:
            est = mod.LGBMRegressor(n_estimators=200, learning_rate=0.5, verbose=-1)
            est.fit(X, Y_REG, eval_set=[(xv, yv)], callbacks=[mod.early_stopping(3, verbose=False)])
            assert 0 < est.best_iteration_ < 200
    _compare(est, XT, "float64", TOL64[lib])


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm", "catboost"])
def test_pickled_boosted_model_needs_trust(lib: str, tmp_path) -> None:
    from portable.errors import UnsafePickleError

    est = _models(lib)[0].fit(X, Y_CLASS)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    with pytest.raises(UnsafePickleError):
        portable.load(path)
    try:
        model = portable.load(path, trust=(lib,))
    except UnsafePickleError as exc:
        # XGBoost pickles its booster as a bytearray restored through ctypes; whether `--trust xgboost` admits
        # that is the pickle loader's decision (portable.safety), not the converter's
        pytest.skip(f"portable's safe loader refuses this {lib} pickle even with trust=('{lib}',): {exc}")
    # an unpickled CatBoost model answers n_features_in_ = 0: the input was [N, 0] and skl2onnx failed
    assert model.signature.inputs[0].shape == (None, X.shape[1])
    art = portable.convert(model, to="onnx", check=False, dtype="float32")
    out = art.run({"X": XT.astype(np.float32)})
    np.testing.assert_array_equal(out["label"].ravel(), np.asarray(est.predict(XT.astype(np.float32))).ravel())


# values LightGBM's predict reads as 0.0 (|x| <= kZeroThreshold = 1e-35f), their neighbours, and NaN
C35 = float(np.float32(1e-35))
TINY = np.array([0.0, -0.0, C35, -C35, 1e-36, -1e-36, np.nextafter(C35, 1), np.nextafter(-C35, -1), 1e-30, -1e-30,
                 np.nan])


def _tiny_grid(width: int, col: int, rng) -> np.ndarray:
    x = rng.normal(size=(len(TINY) * 40, width))
    x[:, col] = np.tile(TINY, 40)
    return x


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("options", [{}, {"zero_as_missing": True}])
def test_lightgbm_reads_tiny_values_as_zero(dtype: str, options: dict) -> None:
    """A column of exact zeros, NaN and values on both sides gives LightGBM splits at +-1e-35; its predict reads
    |x| <= 1e-35 as 0.0 (and, with zero_as_missing, 0.0 as missing). The artifact had x = -1e-35 on the wrong side."""
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 4))
    x[rng.random(2000) < 0.3, 2] = 0.0
    if not options:
        x[rng.random(2000) < 0.1, 2] = np.nan
    y = 3 * (x[:, 2] > 0) - 2 * (x[:, 2] < 0) + (x[:, 2] == 0) + x[:, 0]
    est = lgb.LGBMRegressor(n_estimators=20, verbose=-1, **options).fit(x, y)
    thr = est.booster_.trees_to_dataframe()["threshold"].dropna().to_numpy(dtype=float)
    assert np.any(np.abs(thr) <= 1e-34), "no split at +-1e-35: the test would not test anything"
    xt = _tiny_grid(4, 2, rng)
    if options:
        xt = np.nan_to_num(xt)
    xt = xt.astype(dtype).astype(np.float64)
    got = portable.convert(est, to="onnx", check=False, dtype=dtype).run({"X": xt.astype(dtype)})["variable"].ravel()
    want = est.predict(xt)
    np.testing.assert_allclose(got, want, rtol=1e-9 if dtype == "float64" else 2e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lightgbm_categorical_values_truncate_toward_zero(dtype: str) -> None:
    """LightGBM reads a categorical value as static_cast<int>(x): -0.5 and -1e-36 are category 0, -1 is none."""
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    x[:, 0] = rng.integers(0, 5, 3000)
    y = 3.0 * (x[:, 0] == 0) + 2.0 * (x[:, 0] == 2) + x[:, 1]
    est = lgb.LGBMRegressor(n_estimators=20, verbose=-1, min_data_per_group=5, cat_smooth=1)
    est.fit(x, y, categorical_feature=[0])
    xt = rng.normal(size=(400, 3))
    xt[:, 0] = rng.choice([-0.5, -0.999, -1e-36, -1.0, -1.5, 0.0, 0.7, 1.5, 2.2, 4.9, 1e12, -1e12, np.nan], 400)
    xt = xt.astype(dtype).astype(np.float64)
    got = portable.convert(est, to="onnx", check=False, dtype=dtype).run({"X": xt.astype(dtype)})["variable"].ravel()
    np.testing.assert_allclose(got, est.predict(xt), rtol=1e-9 if dtype == "float64" else 2e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["Depthwise", "Lossguide"])
@pytest.mark.parametrize("classes", [0, 2, 3])
def test_catboost_non_symmetric_trees(policy: str, classes: int) -> None:
    """CatBoost's Depthwise and Lossguide trees (JSON `trees`, not `oblivious_trees`): a KeyError before."""
    cb = pytest.importorskip("catboost")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1200, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    extra = {"max_leaves": 12} if policy == "Lossguide" else {"depth": 5}
    if classes:
        y = np.digitize(np.nan_to_num(x[:, 0]), [-0.4, 0.4] if classes == 3 else [0.0])
        est = cb.CatBoostClassifier(iterations=15, grow_policy=policy, verbose=0, thread_count=1,
                                    allow_writing_files=False, **extra)
    else:
        y = 3 * np.nan_to_num(x[:, 1]) + np.nan_to_num(x[:, 2])
        est = cb.CatBoostRegressor(iterations=15, grow_policy=policy, nan_mode="Max", verbose=0, thread_count=1,
                                   allow_writing_files=False, **extra)
    est.fit(x, y)
    xt = rng.normal(size=(500, 5))
    xt[rng.random(xt.shape) < 0.15] = np.nan
    for dtype, tol in (("float64", 1e-9), ("float32", 2e-5)):
        _compare(est, xt, dtype, tol)
    report = portable.check(est, portable.convert(est, to="onnx", check=False))
    assert report.equivalent, report


def test_catboost_multiclass_labels_are_one_per_row() -> None:
    """CatBoost's multiclass predict returns an [N, 1] column: the check compared it with the artifact's [N]
    labels and called every row a mismatch ("shape [N] in the converted model, [N, 1] in the original")."""
    cb = pytest.importorskip("catboost")
    est = cb.CatBoostClassifier(iterations=10, depth=3, verbose=0, thread_count=1, allow_writing_files=False)
    est.fit(X, Y_CLASS)
    assert np.asarray(est.predict(X[:3])).shape == (3, 1)
    report = portable.check(est, portable.convert(est, to="onnx", check=False))
    assert report.equivalent, report


def _oblivious_ops(model) -> set[str]:
    """The operators of the graph and, where the converter chose by batch size (an `If`), of the large batches'
    branch."""
    ops = {n.op_type for n in model.proto.graph.node}
    for n in model.proto.graph.node:
        if n.op_type == "If":
            ops |= {m.op_type for a in n.attribute if a.name == "else_branch" for m in a.g.node}
    return ops


def _switch_limit(model) -> int:
    """The row count from which the artifact takes its large batches' branch (0: no choice by batch size)."""
    limit = [i for i in model.proto.graph.initializer if i.name.endswith("_bysize_limit")]
    return int(np.asarray(__import__("onnx").numpy_helper.to_array(limit[0])).reshape(-1)[0]) if limit else 0


def _compare_batches(est, model, x: np.ndarray, dtype: str, tol: float) -> None:
    """The artifact against the library on batches of 1, 2 and 3 rows, just below and at its switch's limit, and
    all the rows at once: both branches of a choice by batch size."""
    limit = _switch_limit(model)
    sizes = [1, 2, 3] + ([limit - 1, limit] if limit else []) + [len(x)]
    for size in sizes:
        for start in range(0, min(len(x), 3 * size), size):
            xs = x[start:start + size].astype(dtype)
            out = model.run({"X": xs})
            if "variable" in out:
                want = np.asarray(est.predict(xs), dtype=np.float64).reshape(-1)
                np.testing.assert_allclose(out["variable"].ravel(), want, rtol=tol, atol=tol * np.abs(want).max())
            else:
                np.testing.assert_array_equal(out["label"].ravel(), np.asarray(est.predict(xs)).ravel())
                np.testing.assert_allclose(out["probabilities"], est.predict_proba(xs), rtol=tol, atol=tol)


@pytest.mark.parametrize("nan_mode", ["Min", "Max"])
@pytest.mark.parametrize("classes", [0, 2, 3])
def test_catboost_symmetric_trees_as_leaf_indices(nan_mode: str, classes: int) -> None:
    """CatBoost's symmetric trees are written as leaf indices with standard operators (no tree operator,
    boosting._oblivious), NaN going where the feature's treatment says, in both dtypes; the graph's readers
    (hints, certificate, the NNEF lowering) read them as one tree ensemble (onnx_trees.without_oblivious)."""
    cb = pytest.importorskip("catboost")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 6))
    x[rng.random(x.shape) < 0.1] = np.nan
    if classes:
        y = np.digitize(np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 3]), [-0.4, 0.4] if classes == 3 else [0.0])
        est = cb.CatBoostClassifier(iterations=25, depth=4, nan_mode=nan_mode, verbose=0, thread_count=1,
                                    allow_writing_files=False)
    else:
        y = 3 * np.nan_to_num(x[:, 1]) + np.nan_to_num(x[:, 2]) ** 2
        est = cb.CatBoostRegressor(iterations=25, depth=5, nan_mode=nan_mode, verbose=0, thread_count=1,
                                   allow_writing_files=False)
    est.fit(x, y)
    xt = rng.normal(size=(700, 6)) * 1.4
    xt[rng.random(xt.shape) < 0.15] = np.nan
    xt[:5, 0] = [np.inf, -np.inf, 0.0, -0.0, np.nan]
    for dtype, tol in (("float64", 1e-9), ("float32", 2e-5)):
        model = portable.convert(est, to="onnx", check=False, dtype=dtype)
        assert not _oblivious_ops(model) & {"TreeEnsemble", "TreeEnsembleRegressor"}
        assert "oblivious trees as leaf indices" in model.metadata["portable.trees.formulation"]
        assert _switch_limit(model) > 3 and "If" in _oblivious_ops(model)  # small batches: one tree operator
        assert f"fewer than {_switch_limit(model)} rows" in model.metadata["portable.trees.formulation"]
        _compare(est, xt, dtype, tol)
        _compare_batches(est, model, xt, dtype, tol)
        report = portable.check(est, model)
        assert report.equivalent, report
    nnef = portable.convert(est, to="nnef", check=False)
    out = nnef.run({"X": xt.astype(np.float32)})
    want = est.predict_proba(xt.astype(np.float32)) if classes else est.predict(xt.astype(np.float32))
    got = out["probabilities"] if classes else out["variable"].ravel()
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_catboost_symmetric_trees_of_several_depths(tmp_path) -> None:
    """Symmetric trees shallower than the deepest (padded with never-true levels), and a tree without a split:
    a model whose JSON export was cut down and loaded back into CatBoost, which is the reference."""
    import json

    cb = pytest.importorskip("catboost")
    est = cb.CatBoostRegressor(iterations=6, depth=4, verbose=0, thread_count=1, allow_writing_files=False)
    est.fit(X_NAN, Y_REG)
    path = tmp_path / "model.json"
    est.save_model(str(path), format="json")
    doc = json.loads(path.read_text())
    trees = doc["oblivious_trees"]
    for t, depth in zip(trees, [4, 2, 0, 3, 1, 4]):  # keep the first `depth` splits: the low bits of the index
        t["splits"] = t["splits"][:depth]
        t["leaf_values"] = t["leaf_values"][:2 ** depth]
        t["leaf_weights"] = t["leaf_weights"][:2 ** depth]
    path.write_text(json.dumps(doc))
    cut = cb.CatBoostRegressor()
    cut.load_model(str(path), format="json")
    assert {len(t["splits"]) for t in trees} == {0, 1, 2, 3, 4}
    for dtype, tol in (("float64", 1e-9), ("float32", 2e-5)):
        model = portable.convert(cut, to="onnx", check=False, dtype=dtype)
        assert not _oblivious_ops(model) & {"TreeEnsemble", "TreeEnsembleRegressor"}
        got = model.run({"X": XT.astype(dtype)})["variable"].ravel()
        np.testing.assert_allclose(got, cut.predict(XT.astype(dtype)), rtol=tol, atol=tol * 5000)
        _compare_batches(cut, model, XT, dtype, tol * 5000 / np.abs(cut.predict(XT)).max())


def test_catboost_symmetric_trees_are_certified_as_before() -> None:
    """The certificate reads the standard-operator trees as the tree ensemble they are: a CatBoost classifier's
    probabilities are certified against CatBoost's own trees (as with the previous TreeEnsemble artifact)."""
    cb = pytest.importorskip("catboost")
    est = cb.CatBoostClassifier(iterations=8, depth=3, verbose=0, thread_count=1, allow_writing_files=False)
    est.fit(X_NAN, Y_CLASS)
    for dtype in ("float32", "float64"):
        model = portable.convert(est, to="onnx", check=False, dtype=dtype)
        assert not _oblivious_ops(model) & {"TreeEnsemble", "TreeEnsembleRegressor"}
        cert = portable.certify(est, model).certificates["probabilities"]
        assert cert.status == "certified" and cert.method == "trees", cert.reason
        got = model.run({"X": XT.astype(dtype)})["probabilities"]
        assert np.abs(got - est.predict_proba(XT.astype(dtype))).max() <= cert.bound


def test_catboost_choice_by_batch_size_is_read_only_when_its_branches_agree(tmp_path) -> None:
    """Small batches take one tree operator, large ones the standard-op form (boosting._oblivious, an `If` on
    the row count). The readers (hints, certificate, lowering) read the large batches' branch only after checking
    that the small batches' branch is exactly its reading (onnx_trees.without_size_switch): a threshold changed
    in the small branch alone makes the graph unreadable as trees, and the certificate is not given; the check
    runs rows in small batches too, and finds the changed branch."""
    from onnx import numpy_helper

    from portable.formats.onnx_trees import without_size_switch

    cb = pytest.importorskip("catboost")
    est = cb.CatBoostClassifier(iterations=8, depth=3, verbose=0, thread_count=1, allow_writing_files=False)
    est.fit(X_NAN, Y_CLASS)
    for dtype in ("float32", "float64"):
        model = portable.convert(est, to="onnx", check=False, dtype=dtype)
        graph = model.proto.graph
        read = without_size_switch(graph)
        assert read is not graph and not any(n.op_type == "If" for n in read.node)
        assert portable.certify(est, model).certificates["probabilities"].status == "certified"
        switch = next(n for n in graph.node if n.op_type == "If")
        small = next(a.g for a in switch.attribute if a.name == "then_branch")
        tree = next(n for n in small.node if n.op_type.startswith("TreeEnsemble"))
        for a in tree.attribute:  # the first tree's root split moved by 0.25
            if a.name == "nodes_values":
                a.floats[0] += 0.25
            elif a.name == "nodes_splits":
                splits = numpy_helper.to_array(a.t).copy()
                splits[0] += 0.25
                a.t.CopyFrom(numpy_helper.from_array(splits, a.t.name))
        assert without_size_switch(graph) is graph
        (tmp_path / f"{dtype}.onnx").write_bytes(model.proto.SerializeToString())
        mutated = portable.load(tmp_path / f"{dtype}.onnx")
        cert = portable.certify(est, mutated).certificates["probabilities"]
        assert cert.status != "certified"
        # the small branch now differs from CatBoost on some single rows; the large batches' branch does not
        xs = XT.astype(dtype)
        single = np.vstack([mutated.run({"X": xs[i:i + 1]})["probabilities"] for i in range(len(xs))])
        assert np.abs(single - est.predict_proba(xs)).max() > 1e-6
        np.testing.assert_allclose(mutated.run({"X": xs})["probabilities"], est.predict_proba(xs), atol=1e-5)
        # the check runs some rows again alone and in a few rows: it compares the small batches' branch too
        report = portable.check(est, mutated)
        assert not report.equivalent and any("depends on the batch size" in n for n in report.notes), report
