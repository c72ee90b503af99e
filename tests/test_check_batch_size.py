"""The checker runs some rows again in small batches: an artifact whose result depends on the batch size (an `If`
on the row count, as portable's CatBoost artifacts choose their formulation) is compared in both computations.

The artifacts here are written by hand with onnx.helper, an `If` on the row count choosing between two copies of
a linear model; the original is scikit-learn's LinearRegression, run by scikit-learn.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import portable

pytest.importorskip("onnxruntime")
from sklearn.linear_model import LinearRegression  # noqa: E402

COEF = np.array([1.5, -2.0, 0.25])


def _original() -> LinearRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    return LinearRegression().fit(x, x @ COEF + 0.5)


def _switch(est: LinearRegression, small_coef: np.ndarray, limit: int, tmp_path) -> portable.Model:
    """`variable = X @ coef + intercept`, with `small_coef` for batches of fewer than `limit` rows."""
    def branch(name: str, coef: np.ndarray) -> helper.GraphProto:
        w = numpy_helper.from_array(coef.reshape(3, 1).astype(np.float64), f"{name}_w")
        b = numpy_helper.from_array(np.array([est.intercept_], dtype=np.float64), f"{name}_b")
        nodes = [helper.make_node("MatMul", ["Xd", w.name], [f"{name}_m"]),
                 helper.make_node("Add", [f"{name}_m", b.name], [f"{name}_y"])]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.DOUBLE,
                                                                                 None)], [w, b])

    nodes = [helper.make_node("Cast", ["X"], ["Xd"], to=TensorProto.DOUBLE),
             helper.make_node("Shape", ["X"], ["rows"], start=0, end=1),
             helper.make_node("Less", ["rows", "limit"], ["small"]),
             helper.make_node("Squeeze", ["small"], ["cond"]),
             helper.make_node("If", ["cond"], ["variable"], then_branch=branch("small", small_coef),
                              else_branch=branch("large", est.coef_))]
    graph = helper.make_graph(
        nodes, "switch", [helper.make_tensor_value_info("X", TensorProto.DOUBLE, ["N", 3])],
        [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, ["N", 1])],
        [numpy_helper.from_array(np.array([limit], dtype=np.int64), "limit")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"switch_{limit}.onnx"
    path.write_bytes(proto.SerializeToString())
    return portable.load(path)


@pytest.mark.parametrize("limit", [2, 4, 40])
def test_a_result_that_depends_on_the_batch_size_is_not_equivalent(limit: int, tmp_path) -> None:
    """Batches of fewer than `limit` rows take a changed coefficient: the whole batch agrees with scikit-learn,
    some rows run alone or in a few rows do not, and the check says so with a counterexample that reproduces."""
    est = _original()
    model = _switch(est, COEF * [1, 1, 1.01], limit, tmp_path)
    x = np.random.default_rng(1).normal(size=(200, 3))
    np.testing.assert_allclose(model.run({"X": x})["variable"].ravel(), est.predict(x), rtol=1e-12)
    assert abs(model.run({"X": x[:1]})["variable"][0, 0] - est.predict(x[:1])[0]) > 1e-6
    report = portable.check(est, model)
    assert not report.equivalent
    assert any("depends on the batch size" in n for n in report.notes), report.notes
    assert report.outputs[0]["mismatches"] > 0
    found = report.counterexamples[0]
    assert "run in a batch of" in found["found_by"]
    rows = np.asarray(found["inputs"]["X"])
    assert len(rows) < limit
    got = model.run({"X": rows})["variable"].ravel()
    assert np.abs(got - est.predict(rows)).max() > 1e-6  # the counterexample is the failing batch itself


def test_the_same_computation_at_every_batch_size_is_equivalent(tmp_path) -> None:
    """Both branches the same: no false alarm, no note."""
    est = _original()
    report = portable.check(est, _switch(est, est.coef_, 4, tmp_path))
    assert report.equivalent, report
    assert not any("batch size" in n for n in report.notes)


def test_a_converted_model_that_fails_on_small_batches_is_not_equivalent(tmp_path) -> None:
    """A small-batch branch that cannot run on one row (a Reshape to pairs of values) fails rows the original
    runs."""
    est = _original()
    proto = _switch(est, est.coef_, 3, tmp_path).proto
    switch = proto.graph.node[-1]
    small = next(a.g for a in switch.attribute if a.name == "then_branch")
    pairs = numpy_helper.from_array(np.array([-1, 2], dtype=np.int64), "pairs")
    small.initializer.append(pairs)
    small.node[1].op_type, small.node[1].input[:] = "Reshape", ["small_m", "pairs"]
    path = tmp_path / "broken.onnx"
    path.write_bytes(proto.SerializeToString())
    model = portable.load(path)
    with pytest.raises(Exception):
        model.run({"X": np.zeros((1, 3))})
    report = portable.check(est, model)
    assert not report.equivalent
    assert any("the converted model fails" in c["found_by"] for c in report.counterexamples)


def test_rows_alone_only_for_graphs_that_neither_branch_on_nor_read_the_row_count():
    # the small-batch runs are skipped for a graph that cannot choose its computation by the row count, and kept
    # for one that can (an If on Shape, as the CatBoost size switch)
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import portable

    X = np.random.default_rng(0).normal(size=(100, 3))
    plain = portable.convert(LogisticRegression().fit(X, X[:, 0] > 0), "onnx", check=False)
    assert plain.input_hints().rows_alone
    import onnx
    from onnx import helper

    proto = onnx.ModelProto()
    proto.CopyFrom(plain.proto)
    proto.graph.node.append(helper.make_node("Shape", ["X"], ["x_shape"]))
    from portable.formats.onnx import OnnxModel

    assert not OnnxModel(proto).input_hints().rows_alone
