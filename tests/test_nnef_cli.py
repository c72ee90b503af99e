"""The CLI tells the truth about NNEF: a converted model the executor cannot run is exit 1 ("cannot run here"),
never exit 3 ("NOT equivalent"), and nothing is written."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
pytest.importorskip("nnef_tools")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402

from portable.cli import cli  # noqa: E402
from portable.formats.nnef import executor  # noqa: E402


def conv_model(path):
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "w")
    b = onnx.numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"]),
             h.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    g = h.make_graph(nodes, "conv", [h.make_tensor_value_info("x", T.FLOAT, [None, 2, 6, 6])],
                     [h.make_tensor_value_info("y", T.FLOAT, [None, 4, 3, 3])], initializer=[w, b])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), str(path))
    return path


def test_conv_model_converts_and_checks(tmp_path):
    src = conv_model(tmp_path / "conv.onnx")
    result = CliRunner().invoke(cli, ["convert", str(src), "--to", "nnef", "-o", str(tmp_path / "conv.nnef")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "conv.nnef" / "graph.nnef").is_file()


def test_executor_lacking_an_operator_is_exit_1_not_3(tmp_path, monkeypatch):
    src = conv_model(tmp_path / "conv.onnx")
    monkeypatch.delitem(executor.OPERATORS, "conv")
    out = tmp_path / "conv.nnef"
    result = CliRunner().invoke(cli, ["convert", str(src), "--to", "nnef", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "cannot run here" in result.output and "lacks conv" in result.output
    assert "NOT equivalent" not in result.output
    assert not out.exists()
