"""Single estimators that converted wrongly or failed (issue 11's list), against scikit-learn through
onnxruntime; multi-output and multilabel classifiers give one output per target."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, LinearSVC, NuSVC
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

X3, Y3 = make_classification(n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=0)
X2, Y2 = make_classification(n_samples=240, n_features=6, random_state=1)
MULTI = np.c_[Y2, (X2[:, 0] > 0).astype(int)]
MULTI3_ = np.c_[Y3, (X3[:, 0] > 0).astype(int)]

CASES = {
    "svc_break_ties": (lambda: SVC(break_ties=True), X3, Y3),
    "svc_ovo": (lambda: SVC(decision_function_shape="ovo"), X3, Y3),
    "nusvc_ovo": (lambda: NuSVC(decision_function_shape="ovo"), X3, Y3),
    "calibrated_linear_svc_binary": (lambda: CalibratedClassifierCV(LinearSVC(), cv=3), X2, Y2),
    "calibrated_linear_svc_multiclass": (lambda: CalibratedClassifierCV(LinearSVC(), cv=3), X3, Y3),
    "calibrated_isotonic_logistic": (lambda: CalibratedClassifierCV(LogisticRegression(), method="isotonic",
                                                                    cv=3), X3, Y3),
    "lda_one_component": (lambda: LinearDiscriminantAnalysis(n_components=1), X3, Y3),
}
MULTI_OUTPUT = {  # one output per target: label_k, and probabilities_k / probabilities / scores
    "mlp_multilabel": (lambda: MLPClassifier(max_iter=200, random_state=0), X2, MULTI),
    "ridge_classifier_cv_multilabel": (lambda: RidgeClassifierCV(), X2, MULTI),
    "multi_output_tree": (lambda: DecisionTreeClassifier(max_depth=3), X2, MULTI),
    "multi_output_forest_string_classes": (
        lambda: RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0), X3,
        np.c_[np.array(["a", "b", "c"])[Y3], np.where(X3[:, 0] > 0, "pos", "neg")]),
    "multi_output_extra_trees": (lambda: ExtraTreesClassifier(n_estimators=5, random_state=0), X3, MULTI3_),
}


def _fit(case: tuple) -> tuple:
    make, X, y = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(X, y), X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_estimator_matches_sklearn(name: str, dtype: str) -> None:
    import onnxruntime as ort

    import portable

    model, X = _fit(CASES[name])
    art = portable.convert(model, to="onnx", dtype=dtype, check=False)
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": X.astype(dtype)})))
    np.testing.assert_array_equal(out["label"], model.predict(X))
    tol = 1e-5 if dtype == "float32" else 1e-10
    if "probabilities" in out:
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), rtol=tol, atol=tol)
    if "scores" in out:
        ref = model.decision_function(X).reshape(len(X), -1)
        np.testing.assert_allclose(out["scores"], ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(MULTI_OUTPUT))
def test_multi_output_and_multilabel_give_one_output_per_target(name: str, dtype: str) -> None:
    import onnxruntime as ort

    import portable

    model, X = _fit(MULTI_OUTPUT[name])
    art = portable.convert(model, to="onnx", dtype=dtype)  # portable's own check included
    assert art.report.equivalent
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": X.astype(dtype)})))
    pred = model.predict(X)
    labels = sorted(n for n in out if n.startswith("label_"))
    assert len(labels) == pred.shape[1]
    for k in range(pred.shape[1]):
        np.testing.assert_array_equal(out[f"label_{k}"].astype(str), pred[:, k].astype(str))
    tol = 1e-5 if dtype == "float32" else 1e-10
    if "probabilities_0" in out:
        for k, p in enumerate(model.predict_proba(X)):
            np.testing.assert_allclose(out[f"probabilities_{k}"], p, rtol=tol, atol=tol)
    elif "probabilities" in out:
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), rtol=tol, atol=tol)
    else:
        np.testing.assert_allclose(out["scores"], model.decision_function(X), rtol=tol, atol=tol)


def test_other_multi_output_classifiers_are_refused_with_a_reason() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    import portable

    model = KNeighborsClassifier().fit(X2, MULTI)
    with pytest.raises(portable.PortableError, match="multi-output/multilabel"):
        portable.convert(model, to="onnx", check=False)


MULTI3 = np.c_[Y3, (X3[:, 0] > 0).astype(int), (X3[:, 1] > 0.5).astype(int)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["multi_output_classifier", "classifier_chain_binary", "classifier_chain_3class"])
def test_multi_output_classifiers_give_one_output_per_target(name: str, dtype: str) -> None:
    import onnxruntime as ort

    import portable

    X = X3
    model = {"multi_output_classifier": lambda: MultiOutputClassifier(LogisticRegression()).fit(X, MULTI3),
             "classifier_chain_binary": lambda: ClassifierChain(LogisticRegression(), order=[1, 2, 0]).fit(
                 X, np.c_[MULTI3[:, 1:], (X[:, 2] > 0).astype(int)]),
             "classifier_chain_3class": lambda: ClassifierChain(LogisticRegression(), order=[2, 0, 1]).fit(
                 X, MULTI3)}[name]()
    art = portable.convert(model, to="onnx", dtype=dtype)
    assert art.report.equivalent
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": X.astype(dtype)})))
    pred = model.predict(X)
    for k in range(pred.shape[1]):
        np.testing.assert_array_equal(out[f"label_{k}"], pred[:, k])
    tol = 1e-5 if dtype == "float32" else 1e-10
    if isinstance(model, MultiOutputClassifier):
        for k, p in enumerate(model.predict_proba(X)):
            np.testing.assert_allclose(out[f"probabilities_{k}"], p, rtol=tol, atol=tol)
    elif "probabilities" in out:
        np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), rtol=tol, atol=tol)
    else:
        assert "3class" in name  # scikit-learn's ClassifierChain.predict_proba takes binary targets only
