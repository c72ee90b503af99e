"""Float32 tree regressors whose float32 sum may err by more than the check's atol sum in float64 and round once
(`trees.sums_in_double`, issue 19; behind the switch `trees.WIDEN_SUMS`, off by default for speed): onnxruntime's output is then float32(scikit-learn's / LightGBM's float64
prediction) exactly, and the certificate, which adds that one rounding (2^-24 of the value), proves the conversion
also where the outputs reach 0. Compared with the real libraries (scikit-learn, LightGBM, onnxruntime)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable

warnings.filterwarnings("ignore")


def _models() -> list[tuple[str, object, np.ndarray]]:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = load_diabetes(return_X_y=True)
    out = [("hgb", HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(X, y), X)]
    try:
        import lightgbm as lgb

        out.append(("lightgbm", lgb.LGBMRegressor(n_estimators=100, num_leaves=15, verbose=-1).fit(X, y), X))
    except ImportError:
        pass
    return out


MODELS = _models()


@pytest.fixture(autouse=True)
def _widen(monkeypatch: pytest.MonkeyPatch) -> None:
    from portable.converters.sklearn import trees

    monkeypatch.setattr(trees, "WIDEN_SUMS", True)


@pytest.mark.parametrize("name,est,X", MODELS, ids=[m[0] for m in MODELS])
def test_float32_regressor_sums_in_double_and_is_certified(name: str, est: object, X: np.ndarray) -> None:
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    assert "sums in float64" in art.metadata.get("portable.trees.formulation", "")
    rng = np.random.default_rng(0)
    rows = (X[rng.integers(0, len(X), 5000)] + rng.normal(0, 0.02, (5000, X.shape[1]))).astype(np.float32)
    got = art.run({art.signature.inputs[0].name: rows})["variable"].ravel()
    assert got.dtype == np.float32
    # one rounding of the library's own float64 prediction (a float32 sum of 100 leaves errs by ~1e-3 here)
    np.testing.assert_array_equal(got, est.predict(rows).astype(np.float32))
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == "certified", cert.reason
    assert "rounded to float32 once" in cert.arithmetic


def test_certificate_counts_the_final_rounding() -> None:
    """Soundness: a float64 tree artifact whose output is cast to float32 at the end differs from scikit-learn by
    that rounding (up to 2^-24 of a large value); the certificate's bound as a function of the value (score
    bound + final_rounding_relative |value|) covers every row, and the Cast is not read as exact (before: a
    score bound of ~1e-11 and nothing for the rounding)."""
    import onnx
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 4))
    y = 1e6 + 1e5 * X[:, 0] + 3e4 * np.sin(3 * X[:, 1])
    est = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(X, y)
    art = portable.convert(est, to="onnx", dtype="float64", check=False)
    proto = onnx.ModelProto()
    proto.CopyFrom(art.proto)
    out = proto.graph.output[0]
    for n in proto.graph.node:
        n.output[:] = [o + "_d" if o == out.name else o for o in n.output]
    proto.graph.node.append(onnx.helper.make_node("Cast", [out.name + "_d"], [out.name], to=onnx.TensorProto.FLOAT))
    out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    cast = portable.load(proto)
    rows = rng.normal(size=(20000, 4))
    got = cast.run({cast.signature.inputs[0].name: rows})[out.name].ravel().astype(np.float64)
    ref = est.predict(rows)
    diff = np.abs(got - ref)
    assert diff.max() > 1e-3  # the rounding of values ~1e6 is real
    cert = portable.certify(est, cast, data=X).certificates[out.name]
    bound = cert.details["score_bound"] + cert.details["final_rounding_relative"] * (np.abs(ref) + 1)
    assert np.all(diff <= bound)


def test_no_widening_where_the_float32_sum_is_relative() -> None:
    """A single tree (one term) keeps its float32 formulation: its float32 output is one rounding of the leaf."""
    from sklearn.datasets import load_diabetes
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    est = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, y * 1000)
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    assert "sums in float64" not in art.metadata.get("portable.trees.formulation", "")
    rows = X.astype(np.float32)
    got = art.run({art.signature.inputs[0].name: rows})["variable"].ravel()
    np.testing.assert_array_equal(got, est.predict(rows).astype(np.float32))


def test_nnef_of_a_widened_regressor_sums_in_float32() -> None:
    """NNEF has one precision: the double sums are written back in float32 before lowering (trees.narrow_sums);
    the NNEF artifact passes the check against scikit-learn, like the float32 artifact did before."""
    pytest.importorskip("nnef_tools")
    est, X = MODELS[0][1], MODELS[0][2]
    art = portable.convert(est, to="nnef", dtype="float32", data=X)
    assert art.report.equivalent, str(art.report)
    assert "sums in float64" in portable.convert(est, to="onnx", dtype="float32", check=False).metadata[
        "portable.trees.formulation"]
