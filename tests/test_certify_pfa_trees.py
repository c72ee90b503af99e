"""PFA trees are certified structurally against their ONNX conversion (issue 19, item 2: "structural tree
comparison (... PFA trees)"). A document whose action is `model.tree.simpleWalk(input, cell,
model.tree.simpleTest)` over numeric fields has a `TreeEnsemble` reading (`formats/pfa/hints._walk_ensemble`), and
portable's PFA compiler writes one tree's leaf index gathered from a 1-D table of leaf values or labels, which the
ONNX reading follows (`formats/onnx_trees._leaf_table`). Before, both documents were "not certifiable".

The oracle is an independent walk of the document's tree written here (PFA's simpleTest: the field compared with
the value by the operator; pass takes the first child), run against onnxruntime on the converted model."""
from __future__ import annotations

import json
import operator

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

FIELDS = ["a", "b", "c"]
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _doc(tree: dict, labels: bool) -> dict:
    leaf = "string" if labels else "double"
    node = {"type": "record", "name": "Node", "fields": [
        {"name": "field", "type": {"type": "enum", "name": "F", "symbols": FIELDS}},
        {"name": "operator", "type": "string"}, {"name": "value", "type": "double"},
        {"name": "pass", "type": [leaf, "Node"]}, {"name": "fail", "type": [leaf, "Node"]}]}
    return {"input": {"type": "record", "name": "Row", "fields": [{"name": f, "type": "double"} for f in FIELDS]},
            "output": leaf, "cells": {"tree": {"type": node, "init": _encode(tree, leaf)}},
            "action": [{"model.tree.simpleWalk": ["input", {"cell": "tree"}, {
                "params": [{"d": "Row"}, {"t": "Node"}], "ret": "boolean",
                "do": {"model.tree.simpleTest": ["d", "t"]}}]}]}


def _encode(t: dict, leaf: str) -> dict:
    """A tree node in PFA's JSON encoding: children are tagged with their union branch (`Node` or the leaf type)."""
    def child(c):
        return {"Node": _encode(c, leaf)} if isinstance(c, dict) else {leaf: c}
    return {"field": t["field"], "operator": t["operator"], "value": t["value"], "pass": child(t["pass"]),
            "fail": child(t["fail"])}


def _walk(t, row: dict) -> object:
    while isinstance(t, dict):
        t = t["pass"] if OPS[t["operator"]](row[t["field"]], t["value"]) else t["fail"]
    return t


@st.composite
def trees(draw, labels: bool, depth: int = 0):
    if depth >= 4 or (depth > 0 and draw(st.booleans())):
        if labels:
            return draw(st.sampled_from(["lo", "mid", "hi", "top"]))
        return draw(st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 3)))
    return {"field": draw(st.sampled_from(FIELDS)), "operator": draw(st.sampled_from(list(OPS))),
            "value": draw(st.floats(-5, 5, allow_nan=False, width=32).map(float)),
            "pass": draw(trees(labels, depth + 1)), "fail": draw(trees(labels, depth + 1))}


def _convert(tree: dict, labels: bool, tmp_path) -> tuple[str, str]:
    doc = _doc(tree, labels)
    src = tmp_path / "tree.pfa.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "tree.onnx"
    portable.convert(str(src), to="onnx", check=False).save(str(out), force=True)
    return str(src), str(out)


def _thresholds(t, got: dict) -> dict:
    if isinstance(t, dict):
        got.setdefault(t["field"], set()).add(t["value"])
        _thresholds(t["pass"], got)
        _thresholds(t["fail"], got)
    return got


def _rows(tree: dict, rng: np.random.Generator, n: int = 400) -> dict[str, np.ndarray]:
    cols = {f: rng.uniform(-6, 6, n) for f in FIELDS}
    for f, vals in _thresholds(tree, {}).items():  # every threshold and its float64 neighbours
        for v in vals:
            for x in (np.nextafter(v, -np.inf), v, np.nextafter(v, np.inf)):
                for g in FIELDS:
                    cols[g] = np.append(cols[g], x if g == f else rng.uniform(-6, 6))
    return cols


def _run_onnx(path: str, cols: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return np.asarray(sess.run(None, {k: cols[k] for k in names})[0]).reshape(-1)


def _certified(tree: dict, labels: bool, tmp_path_factory) -> tuple[str, dict]:
    """The tree's document converted to ONNX, and its certificate, which must be `certified`."""
    src, out = _convert(tree, labels, tmp_path_factory.mktemp("pfa"))
    cert = portable.certify(src, out).to_dict()["certificates"]["output"]
    assert cert["status"] == "certified", cert
    return out, cert


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(tree=trees(False).filter(lambda t: isinstance(t, dict)))
def test_pfa_tree_certified_and_the_bound_is_sound(tree, tmp_path_factory) -> None:
    out, cert = _certified(tree, False, tmp_path_factory)
    assert cert["method"] == "trees"
    cols = _rows(tree, np.random.default_rng(0))
    want = np.array([_walk(tree, {f: cols[f][i] for f in FIELDS}) for i in range(len(cols["a"]))], dtype=float)
    assert np.abs(_run_onnx(out, cols) - want).max() <= cert["bound"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(tree=trees(True).filter(lambda t: isinstance(t, dict)))
def test_pfa_label_tree_certified(tree, tmp_path_factory) -> None:
    out, cert = _certified(tree, True, tmp_path_factory)
    cols = _rows(tree, np.random.default_rng(1))
    want = [_walk(tree, {f: cols[f][i] for f in FIELDS}) for i in range(len(cols["a"]))]
    assert [str(v) for v in _run_onnx(out, cols)] == want


def test_a_moved_threshold_is_refuted_with_a_verified_counterexample(tmp_path) -> None:
    tree = {"field": "a", "operator": "<=", "value": 0.5,
            "pass": {"field": "b", "operator": ">", "value": -1.25, "pass": 3.0,
                     "fail": {"field": "c", "operator": "<", "value": 2.0, "pass": -1.5, "fail": 0.25}},
            "fail": {"field": "c", "operator": "<=", "value": 0.0, "pass": 7.5, "fail": 10.0}}
    src, out = _convert(tree, False, tmp_path)
    assert portable.certify(src, out).certified
    model = onnx.load(out)
    node = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    moved = False
    for a in node.attribute:
        if a.name in ("nodes_splits", "nodes_values_as_tensor"):
            arr = onnx.numpy_helper.to_array(a.t).copy()
            j = int(np.flatnonzero(arr == -1.25)[0])
            arr[j] = np.nextafter(np.nextafter(arr[j], np.inf), np.inf)  # two float64 steps up
            a.t.CopyFrom(onnx.numpy_helper.from_array(arr, a.t.name))
            moved = True
    assert moved
    bad = tmp_path / "moved.onnx"
    onnx.save(model, str(bad))
    cert = portable.certify(src, str(bad)).to_dict()["certificates"]["output"]
    assert cert["status"] == "refuted", cert
    ce = cert["counterexample"]
    assert ce["verified"]
    cols = {f: np.asarray(ce["inputs"][f], dtype=np.float64) for f in FIELDS}
    want = _walk(tree, {f: float(cols[f][0]) for f in FIELDS})
    assert _run_onnx(str(bad), cols)[0] != want  # the mutated artifact really differs there


def test_a_tree_with_string_splits_is_not_certified_but_says_why(tmp_path) -> None:
    from pathlib import Path

    example = Path(__file__).parent / "data" / "pfa" / "tree_simpleWalk_mixed_types.yaml"
    if not example.exists():
        pytest.skip("no copy of the shared PFA example")
    out = tmp_path / "mixed.onnx"
    portable.convert(str(example), to="onnx", check=False).save(str(out))
    cert = portable.certify(str(example), str(out)).to_dict()["certificates"]["output"]
    assert cert["status"] == "not certifiable" and cert["reason"]
