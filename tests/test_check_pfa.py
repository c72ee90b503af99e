"""The checker learns from PFA documents: tree thresholds, compared constants and string literals."""
from __future__ import annotations

import numpy as np
import onnx

import portable
from portable.equivalence.inputs import assemble, build_plan, generate

TREE_DOC = {
    "input": {"type": "record", "name": "In", "fields": [{"name": "size", "type": "double"},
                                                          {"name": "color", "type": "string"}]},
    "output": "string",
    "action": [{"if": {"==": ["input.color", {"string": "red"}]},
                "then": {"if": {">": ["input.size", 1234.5]}, "then": {"string": "big red"},
                         "else": {"string": "small red"}},
                "else": {"string": "other"}}],
}


def _outcomes(doc, samples=400):
    model = portable.load(doc)
    art = portable.convert(doc, to="onnx", check=False)
    plan = build_plan(model, art)
    batch = generate(plan, samples, np.random.default_rng(0))
    return model, art, set(model.run(assemble(plan, batch))["output"].tolist())


def test_generated_rows_reach_every_branch_of_an_expression():
    _, _, seen = _outcomes(TREE_DOC)
    assert seen == {"big red", "small red", "other"}


def test_a_moved_threshold_is_caught():
    model, art, _ = _outcomes(TREE_DOC)
    broken = onnx.ModelProto()
    broken.CopyFrom(art.proto)
    moved = False
    for init in broken.graph.initializer:  # the compiled constant 1234.5, moved by one part in 10^6
        arr = onnx.numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and arr.size == 1 and float(arr.reshape(-1)[0]) == 1234.5:
            init.CopyFrom(onnx.numpy_helper.from_array(arr + 1234.5e-6 * np.sign(arr), init.name))
            moved = True
    for node in broken.graph.node:
        for attr in node.attribute:
            if attr.name == "value" and attr.t.data_type in (onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT):
                arr = onnx.numpy_helper.to_array(attr.t)
                if arr.size == 1 and float(arr.reshape(-1)[0]) == 1234.5:
                    attr.t.CopyFrom(onnx.numpy_helper.from_array(arr + 1234.5e-6, attr.t.name))
                    moved = True
    assert moved, "the compiled graph no longer holds the threshold as a constant; update this test"
    report = portable.check(model, portable.load(broken), samples=400)
    assert not report.equivalent
    size = report.counterexamples[0]["inputs"]["size"]
    assert 1234.5 <= float(np.asarray(size).reshape(-1)[0]) <= 1234.5 + 1234.5e-6


def test_shared_tree_example_reaches_every_leaf(tmp_path):
    from pathlib import Path

    doc = Path(__file__).parent / "data" / "pfa" / "tree_simpleWalk_mixed_types.yaml"
    _, _, seen = _outcomes(str(doc))
    assert seen == {"yes-yes", "yes-no", "no-yes", "no-no"}
