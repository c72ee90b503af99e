"""What portable refuses or reports, at load time, with the file and the JSON path of the construct."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import portable
from portable.errors import PFAError, PFARuntimeError, UnsupportedModelError

BASE = {"input": "double", "output": "double", "action": [{"+": ["input", 1]}]}


def doc(**changes):
    d = copy.deepcopy(BASE)
    d.update(changes)
    return d


# Stateful or order-dependent documents load and are scored record by record (the sequential tier); ONNX cannot
# express them, so converting one is refused naming the construct and its JSON path.
# (case id, document, words the ONNX refusal must contain, JSON path it must name)
SEQUENTIAL = [
    ("method emit", doc(method="emit", action=[{"emit": ["input"]}]), "method emit", "method"),
    ("method fold", doc(method="fold", zero=0.0, merge=[{"+": ["tallyOne", "tallyTwo"]}],
                        action=[{"+": ["tally", "input"]}]), "method fold", "method"),
    ("begin", doc(begin=[{"log": [{"string": "hi"}]}]), "'begin'", "begin"),
    ("end", doc(end=[{"log": [{"string": "bye"}]}]), "'end'", "end"),
    ("cell write", doc(cells={"c": {"type": "double", "init": 0.0}},
                       action=[{"cell": "c", "to": "input"}, "input"]), "writing cell 'c'", "action[0]"),
    ("pool write", doc(pools={"p": {"type": "double", "init": {}}},
                       action=[{"pool": "p", "path": [["x"]], "to": "input", "init": 0.0}, "input"]),
     "writing pool 'p'", "action[0]"),
    ("rand call", doc(action=[{"+": ["input", {"rand.gaussian": [0.0, 1.0]}]}]), "rand.gaussian",
     "action[0].+[1].rand.gaussian"),
    ("rand fcn ref", doc(input={"type": "array", "items": "double"}, output={"type": "array", "items": "double"},
                         action=[{"a.map": ["input", {"fcn": "rand.double", "fill": {"low": 0.0}}]}]),
     "rand.double", "action[0].a.map[1].fcn"),
    ("while loop", doc(action=[{"let": {"x": "input"}}, {"while": {"<": ["x", 10.0]}, "do": [
        {"set": {"x": {"+": ["x", 1.0]}}}]}, "x"]), "while", "action[1]"),
    ("foreach", doc(action=[{"let": {"s": 0.0}}, {"foreach": "x", "in": {"value": [1.0],
                                                                        "type": {"type": "array", "items": "double"}},
                                                 "do": [{"set": {"s": {"+": ["s", "x"]}}}]}, "s"]),
     "foreach", "action[1]"),
    ("log", doc(action=[{"log": ["input"]}, "input"]), "'log'", "action[0]"),
    ("nested in a user function", doc(fcns={"f": {"params": [{"x": "double"}], "ret": "double",
                                                  "do": [{"rand.double": [0.0, 1.0]}]}},
                                      action=[{"u.f": ["input"]}]), "rand.double", "fcns.f.do[0].rand.double"),
]

REFUSED = [
    ("emit outside method emit", doc(action=[{"emit": ["input"]}]), PFAError, "emit", "action[0].emit"),
    ("unknown function", doc(action=[{"m.nosuch": ["input"]}]), UnsupportedModelError, "m.nosuch",
     "action[0].m.nosuch"),
    ("unknown user function", doc(action=[{"u.g": ["input"]}]), PFAError, "u.g", "action[0].u.g"),
    ("fold without merge", doc(method="fold", zero=0.0), PFAError, "'zero' and 'merge'", "method"),
]


@pytest.mark.parametrize("case,document,words,where", SEQUENTIAL, ids=[r[0] for r in SEQUENTIAL])
def test_stateful_documents_run_in_order_and_are_not_compiled(case, document, words, where):
    model = portable.load(document)
    assert model.tier == "sequential"
    model.run({s.name: np.ones((3,) + (2,) * (len(s.shape) - 1)) for s in model.signature.inputs})
    with pytest.raises(UnsupportedModelError) as info:
        portable.convert(model, to="onnx", check=False)
    assert words in str(info.value), str(info.value)
    assert info.value.where is not None and info.value.where.startswith(where), info.value.where


MALFORMED = [
    ("missing action", {"input": "double", "output": "double"}, "needs 'action'", None),
    ("unknown top-level", doc(colour="red"), "colour", None),
    ("bad type", doc(input={"type": "array"}), "not an Avro type", "input.items"),
    ("unknown named type", doc(input="Datum"), "unknown type 'Datum'", "input"),
    ("cell init vs type", doc(cells={"tree": {"type": {"type": "record", "name": "TreeNode", "fields": [
        {"name": "value", "type": "double"}, {"name": "pass", "type": ["string", "TreeNode"]}]},
        "init": {"value": 1.0, "pass": {"TreeNode": {"value": "x", "pass": {"string": "leaf"}}}}}}),
     "expected a double", "cells.tree.init.pass.TreeNode.value"),
    ("untagged union", doc(cells={"u": {"type": ["string", "double"], "init": 3.0}}), "tagged", "cells.u.init"),
    ("unknown symbol", doc(action=[{"+": ["inptu", 1]}]), "unknown symbol 'inptu'", "action[0].+[0]"),
    ("let twice", doc(action=[{"let": {"x": 1}}, {"let": {"x": 2}}, "input"]), "already defined",
     "action[1].let.x"),
    ("record field", doc(input={"type": "record", "name": "R", "fields": [{"name": "a", "type": "double"}]},
                         action=["input.b"]), "no field 'b'", "action[0].path[0]"),
    ("non-boolean if", doc(action=[{"if": "input", "then": 1.0, "else": 2.0}]), "must be boolean",
     "action[0].if"),
]


@pytest.mark.parametrize("case,document,err,words,where", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_up_front(case, document, err, words, where):
    with pytest.raises(err) as info:
        portable.load(document)
    assert words in str(info.value)
    assert info.value.where is not None and info.value.where.startswith(where), info.value.where


@pytest.mark.parametrize("case,document,words,where", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_documents(case, document, words, where):
    with pytest.raises(PFAError) as info:
        portable.load(document)
    assert words in str(info.value)
    if where is not None:
        assert info.value.where == where, info.value.where


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("input: double\noutput: double\naction:\n  - {m.sqrt: [inptu]}\n")
    with pytest.raises(PFAError) as info:
        portable.load(str(path))
    assert str(path) in str(info.value) and "action[0].m.sqrt[0]" in str(info.value)
    bad = tmp_path / "bad.pfa"
    bad.write_text("{input: [unclosed")
    with pytest.raises(PFAError, match="not valid JSON"):
        portable.load(str(bad))


def test_empty_document_says_empty_file(tmp_path):
    """A 0-byte (or whitespace-only) .pfa is "<file>: empty file" from load and from the CLI (exit 1)."""
    from click.testing import CliRunner

    from portable.cli import cli

    for name, text in (("empty.pfa", ""), ("blank.pfa", " \n\t\n")):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(PFAError) as info:
            portable.load(str(path))
        assert str(info.value).startswith(f"{path}: empty file"), str(info.value)
        assert "NoneType" not in str(info.value)
        r = CliRunner().invoke(cli, ["inspect", str(path)])
        assert r.exit_code == 1 and "empty file" in r.output and "Traceback" not in r.output, r.output


def test_cli_reports_refusal_with_exit_code_1(tmp_path):
    from click.testing import CliRunner

    from portable.cli import cli

    path = tmp_path / "emit.json"
    path.write_text('{"input": "double", "output": "double", "method": "emit", "action": [{"emit": ["input"]}]}')
    r = CliRunner().invoke(cli, ["convert", str(path), "--to", "onnx"])
    assert r.exit_code == 1
    assert "method emit" in r.output


# -- runtime errors carry the spec's codes -------------------------------------------------------------------------
RUNTIME = [
    ("a.max of empty", {"input": {"type": "array", "items": "double"}, "output": "double",
                        "action": [{"a.max": ["input"]}]}, {"input": np.zeros((3, 0))}, 15240),
    ("int overflow", {"input": "int", "output": "int", "action": [{"*": ["input", 1000000]}]},
     {"input": np.array([1, 5000])}, 18020),
    ("error form", {"input": "double", "output": "double",
                    "action": [{"if": {">": ["input", 0.0]}, "then": {"error": "positive", "code": -7},
                                "else": "input"}]}, {"input": np.array([-1.0, 2.0])}, -7),
    ("errorOnNull", {"input": ["double", "null"], "output": "double", "action": [{"impute.errorOnNull": ["input"]}]},
     {"input": np.array([1.0, np.nan])}, 21000),
    ("long overflow", {"input": "long", "output": "long", "action": [{"+": ["input", {"long": 9223372036854775000}]}]},
     {"input": np.array([1, 10**4])}, 18001),
    ("u- of the lowest int", {"input": "int", "output": "int", "action": [{"u-": "input"}]},
     {"input": np.array([3, -2**31])}, 18050),
    ("// by zero", {"input": "int", "output": "int", "action": [{"//": [7, "input"]}]}, {"input": np.array([2, 0])},
     18040),
    ("%% by zero", {"input": "int", "output": "int", "action": [{"%%": [7, "input"]}]}, {"input": np.array([0])},
     18070),
    ("** int overflow", {"input": "int", "output": "int", "action": [{"**": ["input", 40]}]},
     {"input": np.array([1, 2])}, 18080),
    ("m.round overflow", {"input": "double", "output": "long", "action": [{"m.round": ["input"]}]},
     {"input": np.array([1e300])}, 27191),
]


@pytest.mark.parametrize("case,document,inputs,code", RUNTIME, ids=[r[0] for r in RUNTIME])
def test_runtime_errors_have_codes(case, document, inputs, code):
    model = portable.load(document)
    with pytest.raises(PFARuntimeError) as info:
        model.run(inputs)
    assert info.value.code == code


def test_error_form_on_rows_that_do_not_reach_it_is_silent():
    model = portable.load(RUNTIME[2][1])
    out = model.run({"input": np.array([-1.0, -2.0])})["output"]
    np.testing.assert_array_equal(out, [-1.0, -2.0])


# -- what the ONNX compiler cannot express is refused with the place in the document ----------------------------------
NOT_COMPILABLE = [
    ("string ordering", {"input": "string", "output": "boolean", "action": [{"<": ["input", ["m"]]}]},
     "action[0].<", "string operation"),
    ("a.mode of a computed array", {"input": {"type": "array", "items": "string"}, "output": "string",
                                    "action": [{"a.mode": "input"}]}, "action[0].a.mode", "forests"),
    ("unconditional error", {"input": "double", "output": "double", "action": [{"error": "no"}]}, "action[0]",
     "always raises"),
]


@pytest.mark.parametrize("case,document,where,words", NOT_COMPILABLE, ids=[c[0] for c in NOT_COMPILABLE])
def test_onnx_refusals_name_the_place(case, document, where, words):
    model = portable.load(document)
    with pytest.raises(UnsupportedModelError) as info:
        portable.convert(model, to="onnx", check=False)
    assert words in str(info.value) and info.value.where == where, (str(info.value), info.value.where)
