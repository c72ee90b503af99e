"""Pipelines and ensembles users build that portable could not convert, or converted wrong (stop 21's sweep):
"passthrough"/None pipeline steps, RFE inside a pipeline, stacking classifiers whose members' columns
skl2onnx builds differently from scikit-learn, and stacks/votes of per-member pipelines over a DataFrame.

Each test compares the artifact, run by onnxruntime, with scikit-learn's own predictions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import portable
from portable.errors import UnsupportedModelError

pytest.importorskip("skl2onnx")


def _xy(n_classes: int = 2, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(n, 8, n_informative=5, n_classes=n_classes, random_state=5)


def _agree(est, art, X, proba: bool = True, atol: float = 1e-5) -> None:
    feeds = {"X": np.asarray(X, dtype=art.signature.inputs[0].dtype)}
    got = art.run(feeds)
    np.testing.assert_array_equal(got["label"], est.predict(X))
    if proba:
        np.testing.assert_allclose(got["probabilities"], est.predict_proba(X), atol=atol)


@pytest.mark.parametrize("skip", ["passthrough", None])
@pytest.mark.parametrize("where", ["first", "middle"])
def test_pipeline_steps_that_are_passthrough_or_none(skip, where) -> None:
    """scikit-learn skips a "passthrough" (or None) step; skl2onnx 1.20 asked the string for its tags and failed
    ('str' object has no attribute '__sklearn_tags__'), and a first such step left the input width unknown."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy(3)
    steps = [("skip", skip), ("s", StandardScaler()), ("m", LogisticRegression())] if where == "first" else \
        [("s", StandardScaler()), ("skip", skip), ("m", LogisticRegression())]
    pipe = Pipeline(steps).fit(X, y)
    art = portable.convert(pipe, to="onnx", dtype="float64", check=False)
    assert art.signature.inputs[0].shape[1] == 8
    _agree(pipe, art, X, atol=1e-10)
    assert portable.check(pipe, art).equivalent


@pytest.mark.parametrize("cls", ["RFE", "RFECV"])
def test_rfe_as_the_last_step_of_a_pipeline(cls) -> None:
    """A Pipeline hands each classifier step zipmap options; RFE is a classifier through its estimator, not by
    class, and skl2onnx refused the option ("Option 'zipmap' not in [] for class 'RFE'")."""
    from sklearn import feature_selection
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy(3)
    sel = getattr(feature_selection, cls)(LogisticRegression(), **({"n_features_to_select": 4} if cls == "RFE"
                                                                   else {"cv": 3}))
    pipe = make_pipeline(StandardScaler(), sel).fit(X, y)
    art = portable.convert(pipe, to="onnx", dtype="float64", check=False)
    _agree(pipe, art, X, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("members,method", [
    (("lr", "svc"), "auto"),      # binary: predict_proba's last column and decision_function's one column
    (("lr", "ridge"), "auto"),
    (("lr", "tree"), "predict"),  # the members' predicted label codes
])
@pytest.mark.parametrize("passthrough", [False, True])
def test_stacking_classifier_columns_as_scikit_learn_builds_them(n_classes, members, method, passthrough) -> None:
    """skl2onnx 1.20 dropped the first probability column of a binary stack only when every member used
    predict_proba, and read probabilities for stack_method='predict': the final estimator got other columns
    (onnxruntime failed on the LinearClassifier, or the labels differed)."""
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    make = {"lr": LogisticRegression, "svc": LinearSVC, "ridge": RidgeClassifier,
            "tree": lambda: DecisionTreeClassifier(max_depth=4, random_state=0)}
    X, y = _xy(n_classes)
    labels = np.array(["cat", "dog", "eel"])[y]
    stack = StackingClassifier([(m, make[m]()) for m in members], stack_method=method,
                               passthrough=passthrough).fit(X, labels)
    art = portable.convert(stack, to="onnx", dtype="float64", check=False)
    _agree(stack, art, X, atol=1e-9)


def test_stacking_classifier_refuses_decision_function_of_a_probabilistic_member() -> None:
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    X, y = _xy(3)
    stack = StackingClassifier([("lr", LogisticRegression()), ("svc", LinearSVC())],
                               stack_method="decision_function").fit(X, y)
    with pytest.raises(UnsupportedModelError, match="decision_function"):
        portable.convert(stack, to="onnx", check=False)


def _frame(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})


def _frame_feeds(df: pd.DataFrame, dtype: str) -> dict[str, np.ndarray]:
    return {"a": df[["a"]].to_numpy().astype(dtype), "b": df[["b"]].to_numpy().astype(dtype),
            "c": df[["c"]].to_numpy(str)}


@pytest.mark.parametrize("kind", ["StackingClassifier", "VotingClassifier", "StackingRegressor", "VotingRegressor"])
def test_ensembles_of_per_member_pipelines_over_a_dataframe(kind) -> None:
    """Each member a pipeline with its own ColumnTransformer over a DataFrame with a string column: refused
    ("fitted directly on a DataFrame with string columns"), and skl2onnx's StackingRegressor takes one input."""
    from sklearn import ensemble
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    df = _frame()
    onehot = ColumnTransformer([("o", OneHotEncoder(handle_unknown="ignore"), ["c"]),
                                ("n", StandardScaler(), ["a", "b"])])
    ordinal = ColumnTransformer([("o", OrdinalEncoder(), ["c"])], remainder="passthrough")
    classify = kind.endswith("Classifier")
    linear = make_pipeline(onehot, LogisticRegression() if classify else Ridge())
    tree = make_pipeline(ordinal, (DecisionTreeClassifier if classify else DecisionTreeRegressor)(max_depth=4,
                                                                                                   random_state=0))
    extra = {"voting": "soft"} if kind == "VotingClassifier" else {}
    est = getattr(ensemble, kind)([("lin", linear), ("tree", tree)], **extra)
    y = ((df.a > 0) ^ (df.c == "y")).astype(int) if classify else 2 * df.a + df.b + (df.c == "z")
    est.fit(df, y)
    art = portable.convert(est, to="onnx", dtype="float64", data=df, check=False)
    got = art.run(_frame_feeds(df, "float64"))
    if classify:
        np.testing.assert_array_equal(got["label"], est.predict(df))
        np.testing.assert_allclose(got["probabilities"], est.predict_proba(df), atol=1e-9)
    else:
        np.testing.assert_allclose(got["variable"].reshape(-1), est.predict(df), atol=1e-9)
    assert portable.check(est, art, data=df).equivalent


@pytest.mark.parametrize("final", ["svc_probability", "linear_svc", "forest"])
def test_stacking_classifier_label_follows_its_final_estimators_predict(final) -> None:
    """The stack's label is its final estimator's predict: an SVC(probability=True)'s own label (its Platt
    probabilities' argmax can differ), a LinearSVC's (no probabilities: the stack outputs its scores)."""
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    X, y = _xy(2)
    fin = {"svc_probability": lambda: SVC(probability=True, random_state=0), "linear_svc": LinearSVC,
           "forest": lambda: RandomForestClassifier(10, max_depth=4, random_state=0)}[final]()
    stack = StackingClassifier([("lr", LogisticRegression()), ("svc", LinearSVC()),
                                ("tree", DecisionTreeClassifier(max_depth=4, random_state=0))],
                               final_estimator=fin).fit(X, y)
    art = portable.convert(stack, to="onnx", dtype="float64", check=False)
    got = art.run({"X": X})
    np.testing.assert_array_equal(got["label"], stack.predict(X))
    if final == "linear_svc":
        np.testing.assert_allclose(got["scores"].reshape(-1), stack.decision_function(X), atol=1e-9)
    else:  # skl2onnx's SVC computes Platt's probabilities in float32 (left as it is here)
        np.testing.assert_allclose(got["probabilities"], stack.predict_proba(X),
                                   atol=1e-6 if final == "svc_probability" else 1e-9)


@pytest.mark.parametrize("base", ["gaussian_nb", "mlp", "scaled_nb"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_isotonic_calibration_of_a_probabilistic_base_interpolates(base, n_classes) -> None:
    """CalibratedClassifierCV(GaussianNB(), method="isotonic"): skl2onnx 1.20 read each isotonic calibrator at
    the threshold nearest to the base's probability instead of interpolating (0.04 off in float64). Bases
    without decision_function are calibrated on their predict_proba, now converted by portable."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy(n_classes, 900)
    make = {"gaussian_nb": GaussianNB, "mlp": lambda: MLPClassifier((8,), max_iter=300, random_state=0),
            "scaled_nb": lambda: make_pipeline(StandardScaler(), GaussianNB())}[base]
    cal = CalibratedClassifierCV(make(), method="isotonic", cv=3).fit(X[:600], y[:600])
    art = portable.convert(cal, to="onnx", dtype="float64", check=False)
    _agree(cal, art, X[600:], atol=1e-12)
    auto = portable.convert(cal, to="onnx")  # float32 where it is equivalent, else float64
    assert portable.check(cal, auto, seed=1).equivalent


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_k_nn_distance_ties_inside_a_calibrated_classifier_are_ties(method) -> None:
    """The checker's rows equidistant to two training points change a k-NN's neighbours; a bare k-NN excuses
    them as ties, a calibrated one did not (NOT equivalent on one such row, both dtypes)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _xy(3, 900)
    cal = CalibratedClassifierCV(KNeighborsClassifier(), method=method, cv=3).fit(X[:600], y[:600])
    art = portable.convert(cal, to="onnx", dtype="float64", check=False)
    _agree(cal, art, X[600:], atol=1e-12)
    assert all(portable.check(cal, art, seed=s).equivalent for s in range(3))


@pytest.mark.parametrize("after", ["knn_classifier", "knn_regressor", "tree"])
def test_linear_discriminant_analysis_as_a_feature_step(after) -> None:
    """LDA before another step: the next step reads its transform (the discriminant projection); skl2onnx 1.20
    handed it LDA's predicted label and the graph failed onnx.checker (Scan: 'differ in rank')."""
    from sklearn.datasets import make_classification
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(900, 8, n_informative=8, n_redundant=0, n_classes=4, random_state=5)
    nxt = {"knn_classifier": KNeighborsClassifier, "knn_regressor": KNeighborsRegressor,
           "tree": lambda: DecisionTreeClassifier(max_depth=4, random_state=0)}[after]()
    pipe = make_pipeline(LinearDiscriminantAnalysis(n_components=2), nxt).fit(X, y)
    art = portable.convert(pipe, to="onnx", dtype="float64", check=False)
    got = art.run({"X": X})
    if after == "knn_regressor":
        np.testing.assert_allclose(got["variable"].reshape(-1), pipe.predict(X), atol=1e-9)
    else:
        np.testing.assert_array_equal(got["label"], pipe.predict(X))
    assert portable.check(pipe, art).equivalent


def test_certify_reads_skl2onnx_probabilities_as_scores() -> None:
    """skl2onnx names a LinearSVC's decision scores 'probabilities'; check read them as scores, certify stopped
    at 'the models have different outputs'."""
    import skl2onnx
    from sklearn.svm import LinearSVC

    X, y = _xy(3)
    est = LinearSVC().fit(X, y)
    onx = skl2onnx.to_onnx(est, X[:1].astype(np.float32))
    result = portable.certify(est, onx, data=X)
    assert {k: c.status for k, c in result.certificates.items()} == {"label": "certified", "scores": "certified"}
