"""The execution model in the sequential tier: methods, begin/end, cells and pools, control flow, errors.

Each expected value is worked out by hand (or with plain Python) from the document's meaning in the spec."""
from __future__ import annotations

import numpy as np
import pytest

import portable
from portable.errors import PFAError, PFARuntimeError

ARR = {"type": "array", "items": "double"}


def test_emit_returns_the_values_emitted_per_record():
    doc = {"input": "int", "output": "int", "method": "emit",
           "action": [{"for": {"i": 0}, "while": {"<": ["i", "input"]}, "step": {"i": {"+": ["i", 1]}},
                       "do": [{"if": {"==": [{"%": ["i", 2]}, 0]}, "then": {"emit": [{"*": ["i", 10]}]}}]}]}
    m = portable.load(doc)
    out = m.run({"input": np.array([0, 1, 4])})["output"]
    assert [list(o) for o in out] == [[], [0], [0, 20]]


def test_fold_tally_and_merge():
    doc = {"input": "double", "output": "double", "method": "fold", "zero": 0.0,
           "action": [{"+": ["tally", "input"]}], "merge": [{"+": ["tallyOne", "tallyTwo"]}]}
    m = portable.load(doc)
    out = m.run({"input": np.array([1.0, 2.0, 3.5])})["output"]
    np.testing.assert_array_equal(out, [1.0, 3.0, 6.5])
    np.testing.assert_array_equal(m.run({"input": np.array([1.0])})["output"], [7.5])  # the tally persists
    assert m.merge(2.0, 5.5) == 7.5
    m.reset()
    np.testing.assert_array_equal(m.run({"input": np.array([1.0])})["output"], [1.0])


def test_begin_end_and_cells_persist_across_runs():
    doc = {"input": "double", "output": "double",
           "cells": {"n": {"type": "int", "init": 0}, "seen": {"type": "double", "init": 0.0},
                     "bye": {"type": "boolean", "init": False}},
           "begin": [{"cell": "seen", "to": 100.0}],
           "end": [{"cell": "bye", "to": True}],
           "action": [{"cell": "n", "to": {"params": [{"k": "int"}], "ret": "int", "do": {"+": ["k", 1]}}},
                      {"cell": "seen", "to": {"+": [{"cell": "seen"}, "input"]}}]}
    m = portable.load(doc)
    np.testing.assert_array_equal(m.run({"input": np.array([1.0, 2.0])})["output"], [101.0, 103.0])
    np.testing.assert_array_equal(m.run({"input": np.array([3.0])})["output"], [106.0])
    assert m.cells["n"] == 3
    m.end()
    assert m.cells["bye"] is True


def test_pools_to_init_and_delete():
    doc = {"input": "string", "output": "int",
           "pools": {"counts": {"type": "int", "init": {"seed": 5}}},
           "action": [{"if": {"==": ["input", {"string": "drop"}]},
                       "then": [{"pool": "counts", "del": {"string": "seed"}}, -1],
                       "else": {"pool": "counts", "path": ["input"], "init": 0,
                                "to": {"params": [{"c": "int"}], "ret": "int", "do": {"+": ["c", 1]}}}}]}
    m = portable.load(doc)
    out = m.run({"input": np.array(["a", "seed", "a", "drop", "seed"])})["output"]
    assert list(out) == [1, 6, 2, -1, 1]
    assert m.pools["counts"] == {"a": 2, "seed": 1}


def test_rollback_cells_restore_on_error():
    doc = {"input": "double", "output": "double",
           "cells": {"total": {"type": "double", "init": 0.0, "rollback": True},
                     "tries": {"type": "int", "init": 0}},
           "action": [{"cell": "tries", "to": {"+": [{"cell": "tries"}, 1]}},
                      {"cell": "total", "to": {"+": [{"cell": "total"}, "input"]}},
                      {"if": {"<": ["input", 0.0]}, "then": {"error": "negative", "code": -3}},
                      {"cell": "total"}]}
    m = portable.load(doc)
    m.run({"input": np.array([1.0, 2.0])})
    with pytest.raises(PFARuntimeError) as info:
        m.run({"input": np.array([-5.0])})
    assert info.value.code == -3
    assert m.cells["total"] == 3.0 and m.cells["tries"] == 3  # rollback cell restored, the other kept


def test_try_filters_errors_into_null():
    doc = {"input": "int", "output": ["int", "null"],
           "action": [{"try": [{"//": [10, "input"]}], "filter": [18040]}]}
    m = portable.load(doc)
    out = m.run({"input": np.array([2, 0, 5])})["output"]
    assert list(out[[0, 2]]) == [5, 2] and np.isnan(out[1])
    other = {"input": "int", "output": ["int", "null"],
             "action": [{"try": [{"//": [10, "input"]}], "filter": ["something else"]}]}
    with pytest.raises(PFARuntimeError):
        portable.load(other).run({"input": np.array([0])})


def test_loops_while_until_foreach_forkey():
    doc = {"input": ARR, "output": "double",
           "action": [{"let": {"s": 0.0, "i": 0, "m": {"new": {"a": 1.0, "b": 2.0},
                                                        "type": {"type": "map", "values": "double"}}}},
                      {"foreach": "x", "in": "input", "do": {"set": {"s": {"+": ["s", "x"]}}}},
                      {"while": {"<": ["i", 3]}, "do": {"set": {"i": {"+": ["i", 1]}, "s": {"+": ["s", 1.0]}}}},
                      {"do": {"set": {"s": {"*": ["s", 2.0]}}}, "until": {">": ["s", 100.0]}},
                      {"forkey": "k", "forval": "v", "in": "m", "do": {"set": {"s": {"+": ["s", "v"]}}}},
                      "s"]}
    m = portable.load(doc)

    def by_hand(xs):
        s = sum(xs) + 3.0
        while True:
            s *= 2.0
            if s > 100.0:
                break
        return s + 3.0
    x = np.array([[1.0, 2.0], [30.0, 40.0]])
    np.testing.assert_array_equal(m.run({"input": x})["output"], [by_hand(r) for r in x])


def test_user_functions_recursion_and_closures():
    doc = {"input": "int", "output": "long",
           "fcns": {"fact": {"params": [{"n": "int"}], "ret": "long",
                             "do": {"if": {"<=": ["n", 1]}, "then": {"long": 1},
                                    "else": {"*": ["n", {"u.fact": [{"-": ["n", 1]}]}]}}}},
           "action": [{"u.fact": ["input"]}]}
    m = portable.load(doc)
    assert list(m.run({"input": np.array([1, 5, 20])})["output"]) == [1, 120, 2432902008176640000]
    closure = {"input": "double", "output": ARR, "action": [
        {"let": {"k": {"*": ["input", 2.0]}}},
        {"a.map": [{"type": ARR, "value": [1.0, 2.0]},
                   {"params": [{"x": "double"}], "ret": "double", "do": {"+": ["x", "k"]}}]}]}
    np.testing.assert_array_equal(portable.load(closure).run({"input": np.array([10.0])})["output"], [[21.0, 22.0]])


def test_cast_ifnotnull_upcast_and_unions():
    doc = {"input": ["double", "string", "null"], "output": "string",
           "action": [{"cast": "input", "cases": [
               {"as": "double", "named": "d", "do": {"s.number": ["d", None, 1]}},
               {"as": "string", "named": "s", "do": {"s.upper": "s"}},
               {"as": "null", "named": "n", "do": {"string": "none"}}]}]}
    m = portable.load(doc)
    assert m.tier == "sequential" and m.signature.inputs[0].dtype == "object"
    out = m.run({"input": np.array([2.25, "ab", None], dtype=object)})["output"]
    assert list(out) == ["2.2", "AB", "none"]  # format(2.25, ".1f") rounds half to even
    nn = {"input": {"type": "record", "name": "R", "fields": [{"name": "a", "type": ["double", "null"]},
                                                             {"name": "b", "type": ["double", "null"]}]},
          "output": "double",
          "action": [{"ifnotnull": {"x": "input.a", "y": "input.b"}, "then": {"+": ["x", "y"]}, "else": -1.0}]}
    out = portable.load(nn).run({"a": np.array([1.0, np.nan]), "b": np.array([2.0, 3.0])})["output"]
    np.testing.assert_array_equal(out, [3.0, -1.0])


def test_pack_unpack_round_trip():
    doc = {"input": "int", "output": "double",
           "action": [{"let": {"b": {"pack": [{"int32": "input"}, {"little double": {"/": ["input", 4]}}]}}},
                      {"unpack": "b", "format": [{"i": "int32"}, {"d": "little double"}],
                       "then": {"+": ["i", "d"]}, "else": -1.0}]}
    m = portable.load(doc)
    np.testing.assert_array_equal(m.run({"input": np.array([8, -4])})["output"], [10.0, -5.0])


def test_log_and_predefined_symbols():
    doc = {"input": "double", "output": "long", "name": "counter",
           "action": [{"log": ["input", "name"], "namespace": "test"}, "actionsStarted"]}
    m = portable.load(doc)
    assert list(m.run({"input": np.array([1.5, 2.5])})["output"]) == [1, 2]
    assert m._rows.state.logs[-1] == ("test", [2.5, "counter"])


def test_seeded_random_numbers_repeat():
    doc = {"input": "double", "output": "double", "randseed": 42, "action": [{"rand.double": [0.0, 1.0]}]}
    a = portable.load(doc).run({"input": np.zeros(5)})["output"]
    b = portable.load(doc).run({"input": np.zeros(5)})["output"]
    np.testing.assert_array_equal(a, b)
    m = portable.load(doc)
    m.reset(seed=7)
    c = m.run({"input": np.zeros(5)})["output"]
    assert not np.array_equal(a, c) and ((0 <= c) & (c <= 1)).all()


def test_string_processing_document_is_scored_and_refused_for_onnx():
    doc = {"input": "string", "output": "int",
           "action": [{"a.len": [{"re.findall": ["input", {"string": "[[:digit:]]+"}]}]}]}
    m = portable.load(doc)
    assert list(m.run({"input": np.array(["a1b22", "none", "7"])})["output"]) == [2, 0, 1]
    with pytest.raises(portable.PortableError) as info:
        portable.convert(m, to="onnx", check=False)
    assert info.value.where == "action[0].a.len[0].re.findall"


def test_semantic_errors_name_the_place():
    with pytest.raises(PFAError) as info:
        portable.load({"input": "double", "output": "double", "action": [{"set": {"nope": 1.0}}, "input"]})
    assert info.value.where == "action[0].set.nope"
    with pytest.raises(PFAError) as info:
        portable.load({"input": "double", "output": "double", "method": "fold", "zero": 0.0,
                       "merge": [{"+": ["tally", "tallyTwo"]}], "action": ["input"]})
    assert info.value.where.startswith("merge[0]")
