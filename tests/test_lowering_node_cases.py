"""The ONNX-ML lowering (`--standard-ops`) on every ai.onnx.ml node test of the installed onnx, and on the edge
cases the lowering got wrong: each lowered model runs in onnxruntime and in onnx.reference and gives the outputs
onnx ships with the case (or onnx.reference's outputs on the original model)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import portable  # noqa: E402
from portable.converters.onnx_standard import ML_DOMAIN, lower_proto  # noqa: E402
from tests.nnef_node_sweep import _close, cases  # noqa: E402


def ml_cases() -> list:
    return [c for c in cases() if any(n.domain == ML_DOMAIN for n in c.model.graph.node)]


def _run(engine: str, proto, feeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if engine == "onnxruntime":
            return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
        return ReferenceEvaluator(proto).run(None, feeds)


def test_every_ml_node_case_is_collected() -> None:
    assert len(ml_cases()) >= 8


@pytest.mark.parametrize("engine", ["onnxruntime", "reference"])
@pytest.mark.parametrize("name", [c.name for c in ml_cases()])
def test_lowered_ml_node_case_agrees(name: str, engine: str) -> None:
    case = next(c for c in ml_cases() if c.name == name)
    low = lower_proto(case.model).proto
    assert not any(n.domain == ML_DOMAIN for n in low.graph.node)
    onnx.checker.check_model(low, full_check=True)
    names = [i.name for i in low.graph.input]
    for inputs, outputs in case.data_sets:
        got = _run(engine, low, dict(zip(names, inputs)))
        for g, w in zip(got, outputs):
            assert _close(g, w, case.rtol, case.atol), (g, w)


def _model(node, inputs, outputs, ml: int, ir: int = 8):
    g = h.make_graph([node], "g", inputs, outputs)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 13), h.make_opsetid(ML_DOMAIN, ml)], ir_version=ir)


def test_softmax_zero_rows_of_zeros_share_evenly() -> None:
    node = h.make_node("TreeEnsembleClassifier", ["X"], ["L", "P"], domain=ML_DOMAIN,
                       nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
                       nodes_values=[0.5, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                       nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], class_treeids=[0, 0, 0, 0],
                       class_nodeids=[1, 1, 2, 2], class_ids=[0, 1, 0, 1], class_weights=[0.0, 0.0, 2.0, -1.0],
                       classlabels_int64s=[0, 1], post_transform="SOFTMAX_ZERO")
    m = _model(node, [h.make_tensor_value_info("X", T.FLOAT, [None, 1])],
               [h.make_tensor_value_info("L", T.INT64, [None]), h.make_tensor_value_info("P", T.FLOAT, [None, 2])], 3)
    x = np.array([[0.1], [0.9], [0.3]], np.float32)
    want = ReferenceEvaluator(m).run(None, {"X": x})
    np.testing.assert_allclose(want[1][0], [0.5, 0.5])
    low = lower_proto(m).proto
    for engine in ("onnxruntime", "reference"):
        np.testing.assert_allclose(_run(engine, low, {"X": x})[1], want[1], rtol=1e-6)
    art = portable.convert(m, to="nnef", check=False)
    np.testing.assert_allclose(art.run({"X": x})["P"], want[1], rtol=1e-6)


def test_feature_vectorizer_cuts_and_pads_to_inputdimensions() -> None:
    node = h.make_node("FeatureVectorizer", ["A", "B"], ["Y"], domain=ML_DOMAIN, inputdimensions=[2, 4])
    m = _model(node, [h.make_tensor_value_info("A", T.FLOAT, [None, 3]), h.make_tensor_value_info("B", T.FLOAT, [None, 2])],
               [h.make_tensor_value_info("Y", T.FLOAT, [None, 6])], 1)
    feeds = {"A": np.arange(6, dtype=np.float32).reshape(2, 3), "B": np.arange(4, dtype=np.float32).reshape(2, 2)}
    want = ReferenceEvaluator(m).run(None, feeds)[0]
    assert want.shape == (2, 6)
    low = lower_proto(m).proto
    for engine in ("onnxruntime", "reference"):
        np.testing.assert_array_equal(_run(engine, low, feeds)[0], want)


@pytest.mark.parametrize("elem", [T.FLOAT, T.DOUBLE])
@pytest.mark.parametrize("n_supports", [0, 2])
def test_linear_svm_regressor_lowers_and_passes_the_checker(elem: int, n_supports: int) -> None:
    extra = dict(support_vectors=[1.0, 2.0, 3.0, 4.0]) if n_supports else {}
    node = h.make_node("SVMRegressor", ["X"], ["Y"], domain=ML_DOMAIN, kernel_type="LINEAR", n_supports=n_supports,
                       coefficients=[0.5, -0.25], rho=[0.1], kernel_params=[0.0, 0.0, 1.0], **extra)
    m = _model(node, [h.make_tensor_value_info("X", elem, [None, 2])], [h.make_tensor_value_info("Y", T.FLOAT, [None, 1])],
               1)
    x = np.random.default_rng(0).random((5, 2)).astype(np.float32 if elem == T.FLOAT else np.float64)
    want = ReferenceEvaluator(m).run(None, {"X": x})[0]
    low = lower_proto(m).proto
    onnx.checker.check_model(low, full_check=True)
    for engine in ("onnxruntime", "reference"):
        np.testing.assert_allclose(_run(engine, low, {"X": x})[0], want, rtol=1e-6)


def test_ir3_model_keeps_a_valid_ir_version() -> None:
    node = h.make_node("Binarizer", ["X"], ["Y"], domain=ML_DOMAIN, threshold=0.5)
    m = h.make_model(h.make_graph([node], "g", [h.make_tensor_value_info("X", T.FLOAT, [None, 3])],
                                  [h.make_tensor_value_info("Y", T.FLOAT, [None, 3])]),
                     opset_imports=[h.make_opsetid(ML_DOMAIN, 1)], ir_version=3)
    low = lower_proto(m).proto
    assert low.ir_version >= 4
    onnx.checker.check_model(low, full_check=True)
    x = np.array([[0.1, 0.6, 0.5]], np.float32)
    np.testing.assert_array_equal(_run("onnxruntime", low, {"X": x})[0], [[0, 1, 0]])
