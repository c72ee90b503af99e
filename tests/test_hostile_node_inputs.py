"""An ONNX node with a huge number of inputs is refused before nnef-tools reads it (max_node_inputs): nnef-tools'
graph builder is quadratic in them (a Sum of 200,000 inputs converted for over 72 minutes)."""
from __future__ import annotations

from pathlib import Path

from .test_hostile_extremes import _assert_clean


def _wide_sum(path: Path, inputs: int) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones(1, np.float32), "c")]
    graph = helper.make_graph([helper.make_node("Sum", ["X"] + ["c"] * inputs, ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_wide_node_to_nnef_is_refused(tmp_path):
    _wide_sum(tmp_path / "wide.onnx", 60_000)
    result = _assert_clean("wide_sum_nnef", ["convert", "wide.onnx", "--to", "nnef", "-o", "wide.nnef"], tmp_path,
                           (1,), "max_node_inputs")
    assert "60,001 inputs" in result["stderr"] + result["stdout"]
    assert not (tmp_path / "wide.nnef").exists()


def test_limit_can_be_raised_for_a_trusted_model(tmp_path):
    _wide_sum(tmp_path / "sum.onnx", 40)
    _assert_clean("narrow_sum_nnef_limit", ["--limit", "max_node_inputs=20", "convert", "sum.onnx", "--to", "nnef",
                                            "-o", "a.nnef"], tmp_path, (1,), "max_node_inputs")
    result = _assert_clean("narrow_sum_nnef", ["convert", "sum.onnx", "--to", "nnef", "-o", "b.nnef"], tmp_path,
                           (0,), "")
    assert (tmp_path / "b.nnef").exists(), result
