"""Input and output names that would print as something else (newlines, ANSI escapes, carriage returns) are
refused when an ONNX file or an NNEF folder is read: a hostile file cannot spoof `check`'s or `inspect`'s
output ("Y\\n\\nFAKE: EQUIVALENT")."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_hostile_extremes import _assert_clean

NAMES = {"newline": "Y\n\nportable check: EQUIVALENT", "ansi": "Y\x1b[2J\x1b[32mEQUIVALENT\x1b[0m",
         "carriage_return": "Y\rEQUIVALENT", "bidi": "Y\u202eTNELAVIUQE"}


def _onnx(path: Path, out_name: str) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["X"], [out_name])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [None, 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("kind", list(NAMES))
def test_onnx_names_with_control_characters_are_refused(kind, tmp_path):
    _onnx(tmp_path / "a.onnx", NAMES[kind])
    _onnx(tmp_path / "b.onnx", NAMES[kind])
    for argv in (["inspect", "a.onnx"], ["check", "a.onnx", "b.onnx", "--samples", "50"]):
        result = _assert_clean(f"{kind}_{argv[0]}", argv, tmp_path, (1,), "control characters")
        text = result["stdout"] + result["stderr"]
        assert "EQUIVALENT" not in text.replace("EQUIVALENT\\x1b", "").split("holds")[1]  # only inside the quote
        assert "\x1b" not in text and "\r" not in text


def test_nnef_metadata_names_with_control_characters_are_refused(tmp_path):
    import numpy as np

    import portable
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(50, 2))
    model = LinearRegression().fit(X, X[:, 0])
    portable.convert(portable.convert(model, "onnx", check=False), "nnef", check=False).save(tmp_path / "m.nnef")
    meta_path = tmp_path / "m.nnef" / "portable.json"
    meta = json.loads(meta_path.read_text())
    meta["outputs"][0]["name"] = NAMES["newline"]
    meta_path.write_text(json.dumps(meta))
    _assert_clean("nnef_newline", ["inspect", "m.nnef"], tmp_path, (1,), "control characters")
