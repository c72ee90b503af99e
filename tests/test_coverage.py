"""Coverage over `sklearn.utils.all_estimators()`: each inference-capable estimator converts to ONNX and agrees
with scikit-learn in float32 and float64, or is listed in `portable.coverage.EXPECTED_FAILURES` with a reason
(and then must really fail: the xfail is strict, so the table cannot go stale).

Estimators are built by scikit-learn's own test-instance generator (small, fast settings), fitted on a tiny
positive matrix; `RECIPES` changes the data or parameters where an estimator needs something else.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import portable
from portable import coverage

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
X = RNG.uniform(0.1, 3, (60, 4))
XT = RNG.uniform(0.05, 3.2, (50, 4))
Y_CLASS = (X[:, 0] + X[:, 1] > 3.1).astype(int) + (X[:, 2] > 2.2)
Y_REG = X @ [1.0, 2.0, -1.0, 0.5] + 1
NAN_X = np.where(RNG.random(X.shape) < 0.15, np.nan, X)
NAN_XT = np.where(RNG.random(XT.shape) < 0.15, np.nan, XT)
INT_X = RNG.integers(0, 3, (60, 4)).astype(float)
INT_XT = RNG.integers(0, 3, (50, 4)).astype(float)


@dataclass
class Recipe:
    """How to fit and feed one estimator when the defaults do not fit it."""

    params: dict[str, Any] = field(default_factory=dict)
    x: np.ndarray | None = None
    xt: np.ndarray | None = None
    y: str = "auto"  # auto | class | binary | reg | reg2


RECIPES: dict[str, Recipe] = {
    # categories must be small integers seen in training
    "CategoricalNB": Recipe(x=INT_X, xt=INT_XT),
    "OneHotEncoder": Recipe(x=INT_X, xt=INT_XT),
    "OrdinalEncoder": Recipe(x=INT_X, xt=INT_XT),
    # missing values are the point of these
    "MissingIndicator": Recipe(x=NAN_X, xt=NAN_XT),
    "SimpleImputer": Recipe(x=NAN_X, xt=NAN_XT),
    "KNNImputer": Recipe(x=NAN_X, xt=NAN_XT),
    "IterativeImputer": Recipe(x=NAN_X, xt=NAN_XT),
    "HistGradientBoostingClassifier": Recipe(x=NAN_X, xt=NAN_XT),
    "HistGradientBoostingRegressor": Recipe(x=NAN_X, xt=NAN_XT),
    # one feature only
    "IsotonicRegression": Recipe(x=X[:, :1], xt=XT[:, :1]),
    # a kernel matrix in, against the 60 training points
    "KernelCenterer": Recipe(x=X @ X.T, xt=XT @ X.T),
    "SparseCoder": Recipe(params={"dictionary": RNG.normal(size=(5, 4))}),
    # binary only
    "FixedThresholdClassifier": Recipe(y="binary"),
    "TunedThresholdClassifierCV": Recipe(y="binary"),
    # multi-output targets
    "MultiTaskLasso": Recipe(y="reg2"), "MultiTaskElasticNet": Recipe(y="reg2"),
    "MultiTaskLassoCV": Recipe(y="reg2"), "MultiTaskElasticNetCV": Recipe(y="reg2"),
    "CCA": Recipe(y="reg2"), "PLSCanonical": Recipe(y="reg2"), "PLSRegression": Recipe(y="reg2"),
    "PLSSVD": Recipe(y="reg2"), "RegressorChain": Recipe(y="reg2"), "MultiOutputRegressor": Recipe(y="reg2"),
    "ClassifierChain": Recipe(y="class2"), "MultiOutputClassifier": Recipe(y="class2"),
    # settings that make the estimator deterministic or able to predict new points
    "DummyClassifier": Recipe(params={"strategy": "prior"}),
    # hard voting has neither predict_proba nor decision_function, and portable's sklearn signature wants one
    "VotingClassifier": Recipe(params={"voting": "soft"}),
    "LocalOutlierFactor": Recipe(params={"novelty": True}),
    "NuSVC": Recipe(params={"nu": 0.3}),
    "RadiusNeighborsClassifier": Recipe(params={"radius": 4.0}),
    "RadiusNeighborsRegressor": Recipe(params={"radius": 4.0}),
    "RadiusNeighborsTransformer": Recipe(params={"radius": 4.0}),
    # selectors that keep something on this data
    "SelectPercentile": Recipe(params={"percentile": 50}, y="class"),
    "SelectFdr": Recipe(y="class"), "SelectFpr": Recipe(y="class"), "SelectFwe": Recipe(y="class"),
    "SelectKBest": Recipe(y="class"), "GenericUnivariateSelect": Recipe(y="class"),
    "NeighborhoodComponentsAnalysis": Recipe(y="class"),
    "SequentialFeatureSelector": Recipe(y="class"),
    "RFE": Recipe(y="class"), "RFECV": Recipe(y="class"),
    "QuantileTransformer": Recipe(params={"n_quantiles": 10}),  # skl2onnx 1.20 takes seconds per 60 quantiles
}

TOL = {"float64": 1e-9, "float32": 1e-4}


def _rows() -> list[Any]:
    return [r for r in coverage.estimator_table() if r.status in ("converts", "fails")]


def _instance(name: str) -> Any:
    from sklearn.utils import all_estimators
    from sklearn.utils._test_common.instance_generator import _construct_instances

    cls = dict(all_estimators())[name]
    est = next(iter(_construct_instances(cls)))
    recipe = RECIPES.get(name, Recipe())
    params = dict(recipe.params)
    if "random_state" in est.get_params():
        params.setdefault("random_state", 0)
    return est.set_params(**params)


def _target(est: Any, recipe: Recipe) -> np.ndarray:
    from sklearn.base import is_classifier

    kind = recipe.y if recipe.y != "auto" else ("class" if is_classifier(est) else "reg")
    return {"class": Y_CLASS, "binary": (Y_CLASS > 0).astype(int), "reg": Y_REG,
            "reg2": np.c_[Y_REG, 2 * Y_REG - 1], "class2": np.c_[Y_CLASS, (Y_CLASS > 0).astype(int)]}[kind]


def assert_outputs_match(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], dtype: str) -> None:
    """Labels (and booleans) exactly; numbers with a tolerance by dtype, relative to the output's scale."""
    assert set(got) == set(ref), f"outputs {sorted(got)} != {sorted(ref)}"
    for name, a in ref.items():
        b = np.asarray(got[name])
        a = np.asarray(a)
        assert a.size == b.size, f"{name}: shape {b.shape} != scikit-learn's {a.shape}"
        a, b = a.reshape(b.shape) if a.ndim != b.ndim else a, b
        if a.dtype.kind == "b" or b.dtype.kind == "b":  # indicators: compare as 0/1
            a, b = a.astype(np.float64), b.astype(np.float64)
        if name == "label" or a.dtype.kind in "OUS" or b.dtype.kind in "OUS":
            bad = a.astype(str) != b.astype(str)
            assert not bad.any(), f"{name}: {int(bad.sum())} of {bad.size} labels differ"
            continue
        tol = TOL[dtype]
        scale = max(1.0, float(np.nanmax(np.abs(a))) if a.size else 1.0)
        np.testing.assert_allclose(b.astype(np.float64), a.astype(np.float64), rtol=tol, atol=tol * scale,
                                   err_msg=f"{name} ({dtype})")


def convert_and_compare(est: Any, xt: np.ndarray) -> None:
    ref = portable.load(est)
    for dtype in ("float32", "float64"):
        art = portable.convert(est, to="onnx", check=False, dtype=dtype)
        feeds = {"X": xt.astype(dtype)}
        assert_outputs_match(ref.run(feeds), art.run(feeds), dtype)


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r.name)
def test_estimator_converts(row: Any, request: pytest.FixtureRequest) -> None:
    if row.status == "fails":
        request.applymarker(pytest.mark.xfail(strict=True, reason=row.reason))
    recipe = RECIPES.get(row.name, Recipe())
    est = _instance(row.name)
    x = recipe.x if recipe.x is not None else X
    xt = recipe.xt if recipe.xt is not None else XT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x, _target(est, recipe))
        convert_and_compare(est, xt)


def test_table_is_complete_and_reasoned() -> None:
    rows = coverage.estimator_table()
    names = {r.name for r in rows}
    stale = (set(coverage.EXPECTED_FAILURES) | set(coverage.NOT_A_MATRIX) | set(coverage.BATCH_DEPENDENT)) - names
    assert not stale, f"listed but not in all_estimators(): {sorted(stale)}"
    assert all(r.reason for r in rows if r.status != "converts")
    s = coverage.summary(rows)
    assert s["converts"] + len(coverage.EXPECTED_FAILURES) == s["inference_capable"]


@pytest.mark.parametrize("name", sorted(coverage.BATCH_DEPENDENT))
def test_batch_dependent_estimators_really_are(name: str) -> None:
    """The table's claim, measured: transforming rows one at a time differs from transforming the batch."""
    from sklearn.utils import all_estimators

    x = np.random.default_rng(0).uniform(0, 3, (60, 6))
    est = dict(all_estimators())[name](n_components=3, random_state=0)  # scikit-learn's defaults otherwise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x)
        whole = est.transform(x)[:5]
        alone = np.vstack([est.transform(x[i:i + 1]) for i in range(5)])
    assert np.max(np.abs(whole - alone)) > 1e-9


def test_transductive_estimator_says_so() -> None:
    from sklearn.cluster import DBSCAN

    from portable.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="transductive"):
        portable.convert(DBSCAN().fit(X), to="onnx", check=False)


def test_cli_prints_the_table() -> None:
    from click.testing import CliRunner

    from portable.cli import cli

    result = CliRunner().invoke(cli, ["formats", "--estimators"])
    assert result.exit_code == 0, result.output
    assert "RandomForestRegressor" in result.output and "TSNE" in result.output
    s = coverage.summary()
    assert f"{s['converts']} of {s['inference_capable']}" in result.output


def _variants() -> list[tuple[str, Any, str]]:
    """Non-default settings of portable's own converters: (id, estimator, target kind)."""
    from sklearn import (cluster, dummy, ensemble, impute, kernel_approximation, kernel_ridge, neighbors,
                         preprocessing, svm)
    from sklearn.gaussian_process import GaussianProcessClassifier

    return [
        ("radius-classifier-distance", neighbors.RadiusNeighborsClassifier(radius=4.0, weights="distance"), "class"),
        ("radius-regressor-distance", neighbors.RadiusNeighborsRegressor(radius=4.0, weights="distance"), "reg"),
        ("spline-linear", preprocessing.SplineTransformer(extrapolation="linear", n_knots=4), "none"),
        ("spline-continue-quantile", preprocessing.SplineTransformer(extrapolation="continue", knots="quantile",
                                                                     include_bias=False, degree=2), "none"),
        ("kbins-onehot-dense", preprocessing.KBinsDiscretizer(n_bins=4, encode="onehot-dense"), "none"),
        ("kbins-ordinal-quantile", preprocessing.KBinsDiscretizer(n_bins=5, encode="ordinal"), "none"),
        ("svc-poly-binary", svm.SVC(kernel="poly", degree=2), "binary"),
        ("svc-sigmoid-ovo", svm.SVC(kernel="sigmoid", decision_function_shape="ovo", gamma=0.1), "class"),
        ("svc-break-ties", svm.SVC(break_ties=True), "class"),
        ("one-class-svm", svm.OneClassSVM(gamma=0.5), "none"),
        ("linear-svc-binary", svm.LinearSVC(), "binary"),
        ("kernel-ridge-rbf", kernel_ridge.KernelRidge(kernel="rbf", gamma=0.3), "reg2"),
        ("nystroem-poly", kernel_approximation.Nystroem(kernel="poly", degree=2, n_components=10), "none"),
        ("dummy-most-frequent", dummy.DummyClassifier(strategy="most_frequent"), "class"),
        ("dummy-constant", dummy.DummyClassifier(strategy="constant", constant=2), "class"),
        ("dummy-regressor-median", dummy.DummyRegressor(strategy="median"), "reg"),
        ("power-box-cox", preprocessing.PowerTransformer(method="box-cox"), "none"),
        ("target-encoder-binary", preprocessing.TargetEncoder(), "binary-int"),
        ("target-encoder-continuous", preprocessing.TargetEncoder(), "reg-int"),
        ("adaboost-binary", ensemble.AdaBoostClassifier(n_estimators=5), "binary"),
        ("gpc-binary", GaussianProcessClassifier(), "binary"),
        ("birch-no-global", cluster.Birch(n_clusters=None, threshold=0.3), "none"),
        ("imputer-median", impute.SimpleImputer(strategy="median"), "nan"),
        ("missing-indicator-all", impute.MissingIndicator(features="all"), "nan"),
        ("knn-imputer-k2", impute.KNNImputer(n_neighbors=2), "nan"),
        ("random-trees-embedding", ensemble.RandomTreesEmbedding(n_estimators=3, max_depth=3), "none"),
    ]


@pytest.mark.parametrize("case", _variants(), ids=lambda c: c[0])
def test_converter_variants(case: tuple[str, Any, str]) -> None:
    _, est, target = case
    x, xt = X, XT
    if target == "nan":
        x, xt = NAN_X, NAN_XT
    elif target.endswith("-int"):
        x, xt = INT_X, INT_XT
    y = {"class": Y_CLASS, "binary": (Y_CLASS > 0).astype(int), "binary-int": (Y_CLASS > 0).astype(int),
         "reg": Y_REG, "reg-int": Y_REG, "reg2": np.c_[Y_REG, -Y_REG], "none": None, "nan": None}[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x) if y is None else est.fit(x, y)
        convert_and_compare(est, xt)
