"""One test per bug of issue 14's "Why" list; expected values computed here with numpy / by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

import portable
from portable.errors import PFARuntimeError, UnsupportedModelError

ARR = {"type": "array", "items": "double"}
MAT = {"type": "array", "items": ARR}


def onnx_of(model):
    return portable.convert(model, to="onnx", check=False)


def test_locator_marks_anywhere():
    doc = {"@": "titus2 line 1", "input": "double", "output": "double",
           "action": [{"+": ["input", 1], "@": "line 3"}, {"@": "line 4", "let": {"y": 2.0}}, {"*": ["input", "y"]}]}
    m = portable.load(doc)
    x = np.array([1.0, -2.5])
    assert m.tier == "vectorized"
    np.testing.assert_array_equal(m.run({"input": x})["output"], x * 2.0)
    np.testing.assert_array_equal(onnx_of(m).run({"input": x})["output"], x * 2.0)


def test_array_input_width_from_constant_indices():
    # SKompiler's idiom: a linear model over `input.i` with no coefficient vector in the document
    doc = {"input": ARR, "output": "double", "action": [
        {"+": [{"*": [0.5, {"attr": "input", "path": [0]}]}, {"*": [2.0, "input.3"]}]}]}
    m = portable.load(doc)
    assert m.signature.inputs[0].shape == (None, 4)
    x = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(m.run({"input": x})["output"], 0.5 * x[:, 0] + 2.0 * x[:, 3])
    report = portable.check(m, onnx_of(m), samples=50)
    assert report.equivalent


def test_naive_gaussian_posteriors_broadcast():
    model = [{"mean": 0.5, "variance": 2.0}, {"mean": -1.0, "variance": 0.5}]
    doc = {"input": ARR, "output": "double",
           "cells": {"m": {"type": {"type": "array", "items": {"type": "record", "name": "MV", "fields": [
               {"name": "mean", "type": "double"}, {"name": "variance", "type": "double"}]}}, "init": model}},
           "action": [{"model.naive.gaussian": ["input", {"cell": "m"}]}]}
    x = np.random.default_rng(3).normal(size=(7, 2))
    want = sum(-0.5 * np.log(2 * np.pi * c["variance"]) - (x[:, i] - c["mean"]) ** 2 / (2 * c["variance"])
               for i, c in enumerate(model))
    m = portable.load(doc)
    np.testing.assert_allclose(m.run({"input": x})["output"], want, rtol=1e-14)
    np.testing.assert_allclose(onnx_of(m).run({"input": x})["output"], want, rtol=1e-12)


def test_named_type_inside_let_runs_every_time():
    doc = {"input": "double", "output": "double", "action": [
        {"let": {"r": {"type": {"type": "record", "name": "P", "fields": [{"name": "a", "type": "double"}]},
                       "value": {"a": 2.0}}}}, {"*": ["input", "r.a"]}]}
    m = portable.load(doc)
    for _ in range(3):
        np.testing.assert_array_equal(m.run({"input": np.array([1.0, 3.0])})["output"], [2.0, 6.0])
    bad = dict(doc, action=[{"let": {"r": {"type": {"type": "record", "name": "P", "fields": [
        {"name": "a", "type": "double"}]}, "value": {"a": 2.0}}}},
        {"let": {"s": {"type": {"type": "record", "name": "P", "fields": [{"name": "b", "type": "int"}]},
                       "value": {"b": 1}}}}, "input"])
    with pytest.raises(portable.PortableError, match="defined twice"):
        portable.load(bad)


@pytest.mark.parametrize("op,a,b,want,over,code", [
    ("+", 9223372036854775797, 10, 2**63 - 1, 9223372036854775798, 18001),
    ("*", 2**63 - 1, 1, 2**63 - 1, None, None),
    ("-", -2**63 + 10, 10, -2**63, -2**63 + 9, 18011),
    ("*", -2**62, 2, -2**63, 2**62, 18021)])
def test_long_arithmetic_exactly_at_the_limit(op, a, b, want, over, code):
    doc = {"input": "long", "output": "long", "action": [{op: ["input", {"long": b}]}]}
    m = portable.load(doc)
    assert int(m.run({"input": np.array([a], dtype=np.int64)})["output"][0]) == want
    if over is None:
        return
    with pytest.raises(PFARuntimeError) as info:
        m.run({"input": np.array([over], dtype=np.int64)})
    assert info.value.code == code


@pytest.mark.parametrize("t,value,code", [("int", -2**31, 27020), ("long", -2**63, 27021)])
def test_abs_of_the_lowest_integer_raises(t, value, code):
    m = portable.load({"input": t, "output": t, "action": [{"m.abs": "input"}]})
    assert int(m.run({"input": np.array([-5])})["output"][0]) == 5
    with pytest.raises(PFARuntimeError) as info:
        m.run({"input": np.array([value], dtype=np.int64)})
    assert info.value.code == code


@pytest.mark.parametrize("base", [0, -1])
def test_log_with_a_non_positive_base_raises(base):
    m = portable.load({"input": "double", "output": "double", "action": [{"m.log": ["input", base]}]})
    with pytest.raises(PFARuntimeError) as info:
        m.run({"input": np.array([8.0])})
    assert info.value.code == 27170
    ok = portable.load({"input": "double", "output": "double", "action": [{"m.log": ["input", 2]}]})
    np.testing.assert_allclose(ok.run({"input": np.array([8.0, 0.5])})["output"], [3.0, -1.0], rtol=1e-15)


@pytest.mark.parametrize("fn,pick", [("a.max", max), ("a.min", min)])
def test_max_min_of_strings(fn, pick):
    words = np.array([["pear", "apple", "fig"], ["b", "c", "a"]])
    m = portable.load({"input": {"type": "array", "items": "string"}, "output": "string", "action": [{fn: "input"}]})
    assert list(m.run({"input": words})["output"]) == [pick(r) for r in words.tolist()]
    with pytest.raises(UnsupportedModelError):
        onnx_of(m)


def test_euclidean_with_a_user_similarity_function():
    doc = {"input": ARR, "output": "double",
           "fcns": {"sim": {"params": [{"a": "double"}, {"b": "double"}], "ret": "double",
                            "do": {"*": [2.0, {"m.abs": {"-": ["a", "b"]}}]}}},
           "action": [{"metric.euclidean": [{"fcn": "u.sim"}, "input", {"type": ARR, "value": [1.0, -1.0]}]}]}
    x = np.random.default_rng(4).normal(size=(6, 2))
    want = np.sqrt(((2 * np.abs(x - [1.0, -1.0])) ** 2).sum(axis=1))
    m = portable.load(doc)
    np.testing.assert_allclose(m.run({"input": x})["output"], want, rtol=1e-14)
    np.testing.assert_allclose(onnx_of(m).run({"input": x})["output"], want, rtol=1e-12)


def test_missing_walk_with_a_nullable_string_field():
    node = {"type": "record", "name": "MN", "fields": [
        {"name": "field", "type": {"type": "enum", "name": "G", "symbols": ["x", "s"]}},
        {"name": "operator", "type": "string"}, {"name": "value", "type": ["double", "string"]},
        {"name": "pass", "type": ["MN", "string"]}, {"name": "fail", "type": ["MN", "string"]},
        {"name": "missing", "type": ["MN", "string"]}]}
    doc = {"input": {"type": "record", "name": "D", "fields": [{"name": "x", "type": "double"},
                                                               {"name": "s", "type": ["string", "null"]}]},
           "output": "string",
           "cells": {"t": {"type": node, "init": {"field": "s", "operator": "==", "value": {"string": "red"},
                                                  "pass": {"string": "r"}, "fail": {"string": "o"},
                                                  "missing": {"string": "m"}}}},
           "action": [{"model.tree.missingWalk": ["input", {"cell": "t"}, {
               "params": [{"d": "D"}, {"t": "MN"}], "ret": ["boolean", "null"],
               "do": {"model.tree.missingTest": ["d", "t"]}}]}]}
    m = portable.load(doc)
    out = m.run({"x": np.zeros(3), "s": np.array(["red", None, "blue"], dtype=object)})["output"]
    assert list(out) == ["r", "m", "o"]


def test_dot_of_misaligned_sizes_is_a_pfa_error():
    m = portable.load({"input": ARR, "output": ARR, "action": [
        {"la.dot": [{"type": MAT, "value": [[1.0, 2.0], [3.0, 4.0]]}, "input"]}]})
    np.testing.assert_array_equal(m.run({"input": np.array([[1.0, 1.0]])})["output"], [[3.0, 7.0]])
    with pytest.raises(PFARuntimeError) as info:
        m.run({"input": np.ones((2, 3))})
    assert info.value.code == 24050


def test_map_over_nearest_k():
    book = [[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [1.0, 2.0]]
    doc = {"input": ARR, "output": ARR, "action": [{"a.map": [
        {"model.neighbor.nearestK": [2, "input", {"type": MAT, "value": book}]},
        {"params": [{"p": ARR}], "ret": "double", "do": {"a.sum": "p"}}]}]}
    x = np.random.default_rng(5).normal(1, 2, size=(9, 2))
    d = ((x[:, None, :] - np.array(book)[None]) ** 2).sum(-1)
    want = np.array(book).sum(1)[np.argsort(d, axis=1, kind="stable")[:, :2]]
    m = portable.load(doc)
    np.testing.assert_array_equal(m.run({"input": x})["output"], want)
    np.testing.assert_array_equal(onnx_of(m).run({"input": x})["output"], want)


@pytest.mark.parametrize("fn,ref", [("m.expm1", np.expm1), ("m.ln1p", np.log1p)])
def test_expm1_ln1p_precise_near_zero_when_compiled(fn, ref):
    x = np.array([1e-300, 1e-15, -1e-12, 1e-12, 3e-8, -0.3, 2.0, 700.0, -745.0, 1e308, 0.0, -0.0])
    if fn == "m.ln1p":
        x = x[x > -1]
    m = portable.load({"input": "double", "output": "double", "action": [{fn: "input"}]})
    got = onnx_of(m).run({"input": x})["output"]
    with np.errstate(over="ignore"):
        want = ref(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("fn,ref", [("m.atan2", np.arctan2), ("m.copysign", np.copysign)])
def test_atan2_copysign_exact_when_compiled(fn, ref):
    y = np.array([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.inf, 2.0, 0.0, 1e-300, -3.0])
    x = np.array([0.0, 0.0, -0.0, -0.0, 0.0, 0.0, np.inf, -np.inf, 2.0, -np.inf, -3.0, -1e300, 1e-200])
    doc = {"input": {"type": "record", "name": "R", "fields": [{"name": "y", "type": "double"},
                                                              {"name": "x", "type": "double"}]},
           "output": "double", "action": [{fn: ["input.y", "input.x"]}]}
    m = portable.load(doc)
    want = ref(y, x)
    for got in (m.run({"y": y, "x": x})["output"], onnx_of(m).run({"y": y, "x": x})["output"]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert (np.signbit(got) == np.signbit(want)).all()


def test_null_input():
    m = portable.load({"input": "null", "output": "double", "cells": {"k": {"type": "double", "init": 2.5}},
                       "action": [{"*": [{"cell": "k"}, {"m.pi": []}]}]})
    np.testing.assert_allclose(m.run({"input": np.zeros(3)})["output"], [2.5 * math.pi] * 3)
    c = portable.load({"input": "null", "output": "long", "method": "map",
                       "cells": {"n": {"type": "long", "init": 0}},
                       "action": [{"cell": "n", "to": {"+": [{"cell": "n"}, 1]}}]})
    assert list(c.run({"input": np.zeros(4)})["output"]) == [1, 2, 3, 4]


def test_per_record_tree_types_simple_tree():
    tn = {"type": "record", "name": "TreeNode", "fields": [
        {"name": "field", "type": {"type": "enum", "name": "F", "symbols": ["x", "s"]}},
        {"name": "operator", "type": "string"}, {"name": "value", "type": "double"},
        {"name": "pass", "type": ["TreeNode", "string"]}, {"name": "fail", "type": ["TreeNode", "string"]}]}
    doc = {"input": {"type": "record", "name": "D", "fields": [{"name": "x", "type": "double"},
                                                               {"name": "s", "type": "double"}]},
           "output": "string",
           "cells": {"t": {"type": tn, "init": {"field": "x", "operator": "<", "value": 1.0, "pass": {"string": "a"},
                                                "fail": {"TreeNode": {"field": "s", "operator": ">", "value": 0.0,
                                                                      "pass": {"string": "b"},
                                                                      "fail": {"string": "c"}}}}}},
           "action": [{"model.tree.simpleTree": ["input", {"cell": "t"}]}]}
    x = np.array([0.0, 2.0, 2.0, 1.0])
    s = np.array([0.0, 1.0, -1.0, 0.0])
    want = np.where(x < 1.0, "a", np.where(s > 0.0, "b", "c"))
    m = portable.load(doc)
    assert list(m.run({"x": x, "s": s})["output"]) == list(want)
    assert list(onnx_of(m).run({"x": x, "s": s})["output"]) == list(want)
