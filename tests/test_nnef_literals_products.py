"""NNEF: infinite constants (an IterativeImputer's clip bounds) and product reductions (PolynomialFeatures of
degree 3) convert, and agree with scikit-learn and with nnef-tools' own interpreter."""
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

import portable

XR, YR = make_regression(300, 5, noise=3, random_state=0)
XN = XR.copy()
XN[np.random.default_rng(0).random(XN.shape) < 0.1] = np.nan
XC, YC = make_classification(300, 4, random_state=0)

CASES = {
    "iterative_imputer": (lambda: make_pipeline(IterativeImputer(max_iter=5, random_state=0), Ridge()), XN, YR),
    "poly3": (lambda: make_pipeline(PolynomialFeatures(3, include_bias=False), StandardScaler(),
                                    Lasso(alpha=0.1, max_iter=5000)), XR, YR),
    "poly4_interactions": (lambda: make_pipeline(PolynomialFeatures(4, interaction_only=True),
                                                 LogisticRegression(max_iter=2000)), XC, YC),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_converts_and_matches_sklearn(name, dtype, tmp_path):
    make, X, y = CASES[name]
    model = make().fit(X, y)
    nnef = portable.convert(model, "nnef", dtype=dtype, data=X)
    assert nnef.report.equivalent, nnef.report.summary_line()
    out = nnef.run({"X": X.astype(dtype)})
    if "probabilities" in out:
        got, want = out["probabilities"], model.predict_proba(X)
    else:
        got, want = out["variable"].reshape(-1), model.predict(X)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, atol=(1e-4 if dtype == "float32" else 1e-11) * scale)
    if dtype == "float32":  # nnef-tools' interpreter reads the same folder (rank-0 variables included)
        from nnef_tools.interpreter.pytorch import Interpreter

        nnef.save(tmp_path / "m.nnef")
        rows = X[:97].astype(np.float32)  # the folder's static batch
        theirs = Interpreter(str(tmp_path / "m.nnef"), device="cpu")([rows])
        first = np.asarray(list(theirs.values())[-1] if isinstance(theirs, dict) else theirs[-1])
        mine = nnef.run({"X": rows})
        key = "probabilities" if "probabilities" in mine else "variable"
        np.testing.assert_allclose(first.reshape(mine[key].shape), mine[key], rtol=1e-5, atol=1e-5 * scale)
