"""The checker's input generation: tree boundaries, learned ranges, special values, shrinking, reproducibility.

Which side of a split a row takes is decided by scikit-learn's own `decision_path`; counterexamples are replayed
through scikit-learn and onnxruntime.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings, strategies as st

import portable
from portable.equivalence import check
from portable.equivalence.inputs import BOUNDARY, SPECIAL, UNSEEN, assemble, build_plan, generate
from portable.model import Model, Signature, TensorSpec

from .sample_models import SAMPLE_MODELS
from .test_check import Edited


def _tree(depth: int = 3):
    from sklearn.datasets import make_classification
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, random_state=1)
    return DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)


def _sides(est, X: np.ndarray, feature_of=None) -> list[int]:
    """Split nodes of `est` that rows of X do NOT reach with values on both sides of the threshold (within a
    few float32 spacings of it), as scikit-learn's decision_path sees them."""
    t = est.tree_
    path = est.decision_path(X).toarray().astype(bool)
    missed = []
    for node in np.flatnonzero(t.children_left >= 0):
        f, thr = t.feature[node], t.threshold[node]
        col = X[:, f] if feature_of is None else feature_of(X)[:, f]
        near = np.abs(col - thr) <= 4 * abs(float(np.spacing(np.float32(thr)))) + 1e-12
        reach = path[:, node] & near
        if not ((reach & path[:, t.children_left[node]]).any() and (reach & path[:, t.children_right[node]]).any()):
            missed.append(int(node))
    return missed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_boundary_rows_take_both_sides_of_every_split(dtype):
    est = _tree()
    sk = portable.load(est)
    other = portable.convert(est, to="onnx", check=False, dtype=dtype)
    plan = build_plan(sk, other)
    batch = generate(plan, 300, np.random.default_rng(0))
    X = assemble(plan, batch)["X"].astype(np.float64)[batch.source == BOUNDARY]
    assert len(X) and not _sides(est, X)
    if dtype == "float64":  # the float64 threshold itself and its float64 neighbours are there
        t = est.tree_
        node = int(np.flatnonzero(t.children_left >= 0)[0])
        col = X[:, t.feature[node]]
        thr = t.threshold[node]
        assert {thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf)} <= set(col.tolist())


def test_boundary_rows_reach_splits_behind_a_scaler():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(100, 20, (300, 3))
    pipe = make_pipeline(StandardScaler(), DecisionTreeRegressor(max_depth=3, random_state=0))
    pipe.fit(X, X[:, 0] - X[:, 1] ** 2 / 100)
    sk = portable.load(pipe)
    plan = build_plan(sk, sk)
    batch = generate(plan, 300, np.random.default_rng(0))
    rows = assemble(plan, batch)["X"][batch.source == BOUNDARY]
    scaler, tree = pipe.steps[0][1], pipe.steps[1][1]
    scaled = scaler.transform(rows)
    n_splits = int((tree.tree_.children_left >= 0).sum())
    # thresholds are mapped back through the scaler: every split is reached, on both sides, up to rounding
    assert len(_sides(tree, scaled)) <= n_splits // 4


def test_forest_boundary_rows_are_bounded():
    from sklearn.datasets import make_regression
    from sklearn.ensemble import RandomForestRegressor

    X, y = make_regression(200, 5, random_state=0)
    est = RandomForestRegressor(50, random_state=0).fit(X, y)
    sk = portable.load(est)
    plan = build_plan(sk, sk)
    total = int(sum((t.tree_.children_left >= 0).sum() for t in est.estimators_))
    assert int((plan.trees.feature >= 0).sum()) == total  # every split of every tree is known
    batch = generate(plan, 1000, np.random.default_rng(0))
    # more split nodes than max(MIN_NODES, samples) but their rows within BOUNDARY_CELLS: every one is tested,
    # each on a few rows of each of its PATHS base rows
    from portable.equivalence.inputs import MIN_NODES, PATHS, ROWS_PER_PATH, tested_nodes

    assert total > max(MIN_NODES, 1000)
    assert tested_nodes(plan, 1000) == (total, total)
    n_boundary = int((batch.source == BOUNDARY).sum())
    assert (batch.source != BOUNDARY).sum() == 1000 and PATHS * total <= n_boundary <= ROWS_PER_PATH * PATHS * total
    rep = check(sk, sk, samples=1000)
    assert rep.to_dict()["boundary"] == {"split_nodes": total, "tested": total}


def test_ranges_learned_from_scaler_and_from_data():
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(1000, 10, 200), rng.uniform(-5e-3, 5e-3, 200)])
    pipe = make_pipeline(StandardScaler(), LinearRegression()).fit(X, X[:, 0])
    sk = portable.load(pipe)
    scaler = pipe.steps[0][1]
    plan = build_plan(sk, sk)
    np.testing.assert_allclose([f.lo for f in plan.features], scaler.mean_ - 3 * scaler.scale_)
    np.testing.assert_allclose([f.hi for f in plan.features], scaler.mean_ + 3 * scaler.scale_)
    batch = generate(plan, 500, np.random.default_rng(0))
    cloud = batch.num[batch.source != SPECIAL]
    inside = (np.abs(cloud - scaler.mean_) <= 5 * scaler.scale_).all(axis=1)
    assert inside.mean() > 0.95
    plan = build_plan(sk, sk, data=X)
    np.testing.assert_allclose([f.lo for f in plan.features], X.min(axis=0), rtol=1e-12)
    np.testing.assert_allclose([f.hi for f in plan.features], X.max(axis=0), rtol=1e-12)


@pytest.mark.parametrize("handle_unknown", ["ignore", "error"])
def test_categories_and_unseen_values(handle_unknown):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    est, X, data = dict(SAMPLE_MODELS)["column_transformer_frame"]()
    est = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                                           ("cat", OneHotEncoder(handle_unknown=handle_unknown), ["city"])]),
                        LogisticRegression(max_iter=1000)).fit(X, est.predict(X))
    sk = portable.load(est, data=X)
    art = portable.convert(est, to="onnx", check=False, dtype="float32", data=X)
    plan = build_plan(sk, art)
    city = next(f for f in plan.features if f.slot == "city")
    encoder = est.steps[0][1].named_transformers_["cat"]
    # the encoder's categories, and "" and UNSEEN (other strings) where the encoder ignores unknown ones
    assert [v for v in city.values if v not in ("", UNSEEN)] == list(encoder.categories_[0])
    assert ("" in city.values) == (handle_unknown == "ignore")
    assert (UNSEEN in city.values) == (handle_unknown == "ignore")
    cities = set(assemble(plan, generate(plan, 200, np.random.default_rng(0)))["city"].ravel().tolist())
    assert set(encoder.categories_[0]) <= cities
    # tried where the original ignores unknown categories; where it says it rejects them (handle_unknown="error")
    # such rows would only be dropped, after runs of the original to find them
    assert (UNSEEN in cities) == (handle_unknown == "ignore")
    rep = check(sk, art, samples=200)
    assert rep.equivalent
    assert rep.rejected_by_original == 0  # no generated row is one the original says it rejects


def test_nan_rows_only_for_models_that_take_them():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.utils import get_tags

    X, y = make_classification(300, 4, random_state=0)
    for est in (HistGradientBoostingClassifier(max_iter=10), RandomForestClassifier(5), LogisticRegression()):
        sk = portable.load(est.fit(X, y))
        plan = build_plan(sk, sk)
        batch = generate(plan, 200, np.random.default_rng(0))
        assert np.isnan(batch.num).any() == get_tags(est).input_tags.allow_nan, type(est).__name__
    imputed = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y)  # the imputer takes NaN
    plan = build_plan(portable.load(imputed), portable.load(imputed))
    assert np.isnan(generate(plan, 200, np.random.default_rng(0)).num).any()


def test_nan_rows_find_what_runtimes_really_do_with_missing_values():
    """Whatever skl2onnx and onnxruntime do with NaN, the checker's verdict agrees with them."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(300, 4, random_state=0)
    est = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    rows = X[:100].astype(np.float32)
    rows[:, 1] = np.nan
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"X": rows})[0]
    differs = bool((np.abs(got - est.predict_proba(rows.astype(np.float64))) > 1e-3).any())
    rep = check(est, art, samples=300)
    assert rep.equivalent != differs
    if differs:
        assert any(np.isnan(np.asarray(c["inputs"]["X"], dtype=float)).any() for c in rep.counterexamples)


def test_hypothesis_shrinks_a_region_bug_to_one_simple_row():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(X, y)
    art = portable.convert(est, to="onnx", check=False, dtype="float32")

    def bug(inputs, out):  # wrong only where petal length exceeds 5
        p = out["probabilities"]
        out["probabilities"] = (p + np.where(inputs["X"][:, 2:3] > 5, 0.01, 0.0)).astype(p.dtype)
        return out

    broken = Edited(art, bug)
    rep = check(est, broken, samples=300, data=X)
    assert not rep.equivalent
    c = rep.counterexamples[0]
    assert c["found_by"] == "shrunk by hypothesis" and len(c["inputs"]["X"]) == 1
    x = np.asarray(c["inputs"]["X"], dtype=np.float32)
    assert x[0, 2] > 5
    simple = [f.simple for f in build_plan(portable.load(est), broken, data=X).features]
    assert [v for j, v in enumerate(x[0]) if j != 2] == pytest.approx([s for j, s in enumerate(simple) if j != 2],
                                                                      rel=1e-6)
    want = est.predict_proba(x.astype(np.float64))
    assert np.abs(broken.run({"X": x})["probabilities"] - want).max() > 1e-3


def test_hypothesis_shrinks_a_one_row_bug_to_that_row():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(X, y)
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    bad_row = X[17].astype(np.float32)

    def bug(inputs, out):  # wrong on exactly one input row
        hit = (np.asarray(inputs["X"], dtype=np.float32) == bad_row).all(axis=1)
        out["label"] = np.where(hit, (out["label"] + 1) % 3, out["label"])
        return out

    rep = check(est, Edited(art, bug), samples=200, data=X)
    assert not rep.equivalent
    c = rep.counterexamples[0]
    assert c["found_by"] == "shrunk by hypothesis"
    np.testing.assert_array_equal(np.asarray(c["inputs"]["X"], dtype=np.float32), bad_row[None, :])
    assert c["original"]["label"] == est.predict(bad_row[None, :].astype(np.float64)).tolist()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_generation_is_seeded_and_float32_exact(seed):
    est = _tree(depth=4)
    plan = _tree_plan(est)
    a = generate(plan, 120, np.random.default_rng(seed))
    b = generate(plan, 120, np.random.default_rng(seed))
    np.testing.assert_array_equal(a.num, b.num)
    x = a.num[np.isfinite(a.num)]
    np.testing.assert_array_equal(x.astype(np.float32).astype(np.float64), x)


_PLANS: dict[int, object] = {}


def _tree_plan(est):
    if id(est) not in _PLANS:
        _PLANS.clear()
        _PLANS[id(est)] = (est, build_plan(portable.load(est), portable.convert(est, to="onnx", check=False,
                                                                              dtype="float32")))
    return _PLANS[id(est)][1]


class Shaped(Model):
    """A numpy model with PFA-style inputs: an int64 vector, a string column and a [N, 2, 3] float tensor."""

    format = "numpy"

    def __init__(self, dtype: str = "float64") -> None:
        super().__init__()
        self.dt = dtype

    @property
    def signature(self) -> Signature:
        return Signature((TensorSpec("count", "int64", (None,)), TensorSpec("word", "str", (None, 1)),
                          TensorSpec("grid", self.dt, (None, 2, 3))),
                         (TensorSpec("output", "float64", (None,), "value"),
                          TensorSpec("label", "str", (None,), "label")))

    def _run(self, inputs):
        g = np.asarray(inputs["grid"], dtype=np.float64)
        return {"output": g.sum(axis=(1, 2)) * inputs["count"],
                "label": np.char.add(np.asarray(inputs["word"]).reshape(-1).astype(str), "!")}


def test_any_shapes_and_dtypes_generate_and_compare():
    rep = check(Shaped("float64"), Shaped("float32"), samples=100)
    assert rep.equivalent, rep.summary_line()
    plan = build_plan(Shaped(), Shaped("float32"))
    arrays = assemble(plan, generate(plan, 50, np.random.default_rng(0)))
    assert arrays["count"].shape == (50,) and arrays["count"].dtype == np.int64
    assert arrays["word"].shape == (50, 1) and arrays["word"].dtype.kind == "U"
    assert arrays["grid"].shape == (50, 2, 3) and arrays["grid"].dtype == np.float32


def test_boundary_rows_behind_a_scaler_find_a_real_float32_disagreement():
    """A MinMaxScaler computed in float32 moves rows across a tree threshold that scikit-learn (float64 scaler,
    float32 tree) keeps on the other side; float64 fixes it."""
    from sklearn.datasets import make_classification
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(200, 5, n_informative=3, random_state=0)
    est = make_pipeline(MinMaxScaler(), DecisionTreeClassifier(max_depth=4, random_state=0)).fit(X * 100, y)
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    rep = check(est, art, samples=300)
    assert not rep.equivalent
    x = np.asarray(rep.counterexamples[0]["inputs"]["X"], dtype=np.float32)
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"X": x})[0]
    assert np.abs(got - est.predict_proba(x.astype(np.float64))).max() > 1e-3
    auto = portable.convert(est, to="onnx", samples=300)
    assert auto.dtype == "float64" and auto.report.equivalent


# ---- the fast paths keep what the checker checks --------------------------------------------------------

def test_the_bump_is_standard_normal():
    from scipy import stats

    from portable.equivalence.inputs import _normal, _normal_table

    rng = np.random.default_rng(0)
    for shape in [(3000, 1), (301, 7), (200_000,)]:
        z = _normal(rng.random(shape, dtype=np.float32))
        assert z.shape == shape and z.dtype == np.float32 and np.isfinite(z).all()
        assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    base, _ = _normal_table()  # the table's knots are the normal quantiles, as scipy computes them
    k = np.arange(1, len(base))
    np.testing.assert_allclose(base[1:], stats.norm.ppf(k / len(base)), rtol=1e-6, atol=1e-6)


def test_deterministic_math_agrees_with_numpy():
    from scipy import stats

    from portable import _detmath

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.random(10_000), [2.0 ** -24, 0.5, 1.0, 1e-300, 3.7e5]])
    np.testing.assert_allclose(_detmath.log(x), np.log(x), rtol=1e-14, atol=1e-15)
    y = rng.uniform(-20, 20, 10_000)
    np.testing.assert_allclose(_detmath.exp2(y), np.exp2(y), rtol=1e-14)
    p = np.concatenate([rng.random(10_000), [1e-12, 0.02, 0.5, 0.98, 1 - 1e-12]])
    np.testing.assert_allclose(_detmath.normal_quantile(p), stats.norm.ppf(p), rtol=2e-9, atol=1e-9)


def test_seeded_generator_is_default_rng_even_after_use():
    from portable.equivalence import _rng

    for seed in (0, 7, 0):
        want = np.random.default_rng(seed).random(5)
        got = _rng(seed).random(5)  # the kept generator was advanced by the call before: restored first
        np.testing.assert_array_equal(got, want)


def test_float32_cloud_rows_are_float32_values_within_the_ranges():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(3.0, 2.0, (200, 4))
    est = LogisticRegression().fit(X, X[:, 0] > 3)
    plan = build_plan(portable.load(est), portable.convert(est, to="onnx", check=False, dtype="float32"),
                      data=X)
    batch = generate(plan, 2000, np.random.default_rng(1))
    np.testing.assert_array_equal(batch.num, batch.num.astype(np.float32).astype(np.float64))
    cloud = batch.num[batch.source == 0]
    inside = (cloud >= plan.lo) & (cloud <= plan.hi)
    assert 0.85 < inside.mean() < 1.0  # the uniform rows and most of the normal bump
    assert np.abs(np.median(cloud, axis=0) - (plan.lo + plan.hi) / 2).max() < 0.1 * (plan.hi - plan.lo).max()


def test_a_kept_plan_is_the_plan_build_plan_makes(logreg_pair):
    from portable.equivalence import _PLANS

    sk, art = logreg_pair
    first = check(sk, art, samples=300, seed=5).to_dict()
    assert art in _PLANS
    again = check(sk, art, samples=300, seed=5).to_dict()
    _PLANS.clear()
    fresh = check(sk, art, samples=300, seed=5).to_dict()
    for d in (first, again, fresh):
        d.pop("seconds")
    assert first == again == fresh
    other = portable.load(_logreg_fit(1.0))  # another original for the same artifact: its own plan
    assert check(other, art, samples=300, seed=5).to_dict()["learned"] == first["learned"]
    assert _PLANS[art][0]() is other


def _logreg_fit(shift: float):
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(shift, 1.0, (200, 3))
    return LogisticRegression().fit(X, X[:, 0] > shift)


@pytest.fixture
def logreg_pair():
    est = _logreg_fit(0.0)
    return portable.load(est), portable.convert(est, to="onnx", check=False, dtype="float32")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from(["max", "or"]))
def test_rowwise_reduction_is_numpys(n, k, op):
    from portable.equivalence.compare import _rowwise

    m = np.random.default_rng(n * 100 + k).normal(size=(n, k))
    if op == "or":
        m = m > 1.0
        np.testing.assert_array_equal(_rowwise(np.logical_or, m), m.any(axis=1))
    else:
        np.testing.assert_array_equal(_rowwise(np.maximum, m), m.max(axis=1))
