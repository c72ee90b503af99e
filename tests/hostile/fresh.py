"""Hostile inputs of a third pass over portable (issue 12, "verified on hostile files you have not seen"), beyond
`files.py` and `unseen.py`. Every file is written by these functions; `test_hostile_fresh` runs each through the
real command line in its own subprocess under a time and memory bound.

`CASES` maps a case's name to `build(base) -> (argv, needle)`: the command line to run on the files written below
`base`, and a phrase the one-paragraph message must hold (exit code 1 unless the builder says otherwise).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .files import registrar

CASES: dict[str, Callable[[Path], tuple[list[str], str]]] = {}
case = registrar(CASES)


# ---- PFA named types that break Avro's rules ------------------------------------------------------------------

def _fixed_doc(size_json: str) -> str:
    """A PFA document with a cell of a fixed type whose `size` is given as raw JSON text."""
    return ('{"input": "double", "output": "double", "cells": {"c": {"type": {"type": "fixed", "name": "F", '
            f'"size": {size_json}}}, "init": ""}}}}, "action": ["input"]}}')


for _label, _size in (("a string", '"abc"'), ("1e999 (infinity)", "1e999"), ("null", "null"), ("a list", "[1]")):
    def _build(base: Path, _size: str = _size, _label: str = _label) -> tuple[list[str], str]:
        path = base / f"fixed_{_label.split()[0]}.pfa"
        path.write_text(_fixed_doc(_size))
        return ["inspect", str(path)], "fixed 'F' needs a 'size' that is a non-negative integer"
    # int(size) raised ValueError / OverflowError / TypeError: a traceback
    CASES[f"a PFA fixed type whose size is {_label} is refused, not a traceback"] = _build


@case("a PFA fixed type of negative size is refused (it loaded)")
def _fixed_negative(base: Path) -> tuple[list[str], str]:
    path = base / "fixed_negative.pfa"
    path.write_text(_fixed_doc("-5"))
    return ["inspect", str(path)], "fixed 'F' needs a 'size'"


@case("a PFA record with two fields of one name is refused (the first was silently dropped)")
def _duplicate_field(base: Path) -> tuple[list[str], str]:
    # the record was registered before its fields were read; the failed first reading of the input type left it
    # registered, so the reader's second reading took the name for an already defined record and kept one field
    path = base / "duplicate_field.pfa"
    path.write_text(json.dumps({
        "input": {"type": "record", "name": "R", "fields": [{"name": "a", "type": "double"},
                                                           {"name": "a", "type": "string"}]},
        "output": "double", "action": [1.0]}))
    return ["convert", str(path), "--to", "onnx", "-o", str(base / "duplicate_field.onnx"), "--samples", "20"], \
        "record 'R' has two fields named 'a'"


@case("a PFA enum that lists a symbol twice is refused")
def _duplicate_symbol(base: Path) -> tuple[list[str], str]:
    path = base / "duplicate_symbol.pfa"
    path.write_text(json.dumps({"input": {"type": "enum", "name": "E", "symbols": ["a", "b", "a"]},
                                "output": "double", "action": [1.0]}))
    return ["inspect", str(path)], "enum 'E' lists the symbol 'a' twice"


# ---- ONNX model-local functions -------------------------------------------------------------------------------

def function_bomb(depth: int) -> bytes:
    """An ONNX model of `depth` model-local functions, each calling the previous one twice: 2**(depth-1) Relu nodes
    once inlined, in a file of a few KB."""
    from onnx import TensorProto as TP
    from onnx import helper as h

    funcs, prev = [], None
    opsets = [h.make_opsetid("", 17), h.make_opsetid("bomb", 1)]
    for i in range(depth):
        if prev is None:
            nodes = [h.make_node("Relu", ["x"], ["y"])]
        else:
            nodes = [h.make_node(prev, ["x"], ["t"], domain="bomb"), h.make_node(prev, ["t"], ["y"], domain="bomb")]
        prev = f"f{i}"
        funcs.append(h.make_function("bomb", prev, ["x"], ["y"], nodes, opsets))
    x = h.make_tensor_value_info("X", TP.FLOAT, [None, 2])
    y = h.make_tensor_value_info("Y", TP.FLOAT, [None, 2])
    model = h.make_model(h.make_graph([h.make_node(prev, ["X"], ["Y"], domain="bomb")], "g", [x], [y]),
                         opset_imports=opsets, functions=funcs)
    model.ir_version = 8
    return model.SerializeToString()


@case("an ONNX model of 30 local functions each calling the previous twice (two to the 29th nodes) is refused by inspect")
def _function_bomb_inspect(base: Path) -> tuple[list[str], str]:
    path = base / "function_bomb.onnx"
    path.write_bytes(function_bomb(30))  # onnx.checker ran for ever on it
    return ["inspect", str(path)], "max_onnx_nodes"


@case("the same ONNX function bomb is refused by check")
def _function_bomb_check(base: Path) -> tuple[list[str], str]:
    path = base / "function_bomb_check.onnx"
    path.write_bytes(function_bomb(30))
    return ["check", str(path), str(path), "--samples", "20"], "max_onnx_nodes"


@case("the same ONNX function bomb converted to NNEF is refused")
def _function_bomb_convert(base: Path) -> tuple[list[str], str]:
    path = base / "function_bomb_convert.onnx"
    path.write_bytes(function_bomb(30))
    return ["convert", str(path), "--to", "nnef", "-o", str(base / "bomb.nnef")], "max_onnx_nodes"


# ---- metadata an artifact carries ------------------------------------------------------------------------------

def onnx_with_metadata(path: Path, key: str, value: str) -> Path:
    """A one-Relu ONNX model whose metadata_props hold `key: value`."""
    from onnx import TensorProto as TP
    from onnx import helper as h

    x = h.make_tensor_value_info("X", TP.FLOAT, [None, 2])
    y = h.make_tensor_value_info("Y", TP.FLOAT, [None, 2])
    model = h.make_model(h.make_graph([h.make_node("Relu", ["X"], ["Y"])], "g", [x], [y]),
                         opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    h.set_model_props(model, {key: value})
    path.write_bytes(model.SerializeToString())
    return path


@case("drift against a portable.profile nested a hundred thousand deep says the profile is malformed (a RecursionError)")
def _deep_profile(base: Path) -> tuple[list[str], str]:
    import numpy as np

    path = onnx_with_metadata(base / "deep_profile.onnx", "portable.profile", "[" * 100_000 + "]" * 100_000)
    np.save(base / "rows.npy", np.ones((5, 2), np.float32))
    return ["drift", str(path), str(base / "rows.npy")], "deep_profile.onnx: the artifact's portable.profile metadata"


# ---- PFA straight-line code ------------------------------------------------------------------------------------

@case("a PFA action of 50,000 straight-line lets stops at the routine timeout while loading (the trial rows ran unbounded)")
def _let_chain(base: Path) -> tuple[list[str], str]:
    # the load scores dummy rows through the vectorized engine, whose statements never read the routine's clock:
    # only loops, function calls and regular expressions did. 1,000,000 such lets (30 MB, within max_pfa_expansion)
    # ran minutes per trial row, and the load tries up to a dozen input widths.
    n = 50_000
    action = [{"let": {"x0": "input"}}] + [{"let": {f"x{i}": {"+": [f"x{i - 1}", 1]}}} for i in range(1, n)]
    path = base / "let_chain.pfa"
    path.write_text(json.dumps({"input": "double", "output": "double", "action": action + [f"x{n - 1}"]}))
    return ["--limit", "max_pfa_routine_ms=200", "inspect", str(path)], "exceeded timeout of 200 milliseconds"


# ---- skops archives --------------------------------------------------------------------------------------------

@case("a skops archive with two schema.json members (a refused type first, the model last) is refused, not loaded")
def _skops_duplicate_schema(base: Path) -> tuple[list[str], str]:
    # Python's zipfile (portable's audit and skops alike) reads the last member of a name; unzip and other readers
    # keep the first: one file shows a different schema to different tools. It loaded (audit: SAFE).
    import zipfile
    import warnings

    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(30, 3))
    good = base / "good.skops"
    sio.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    hostile = dict(json.loads(members["schema.json"]), __module__="subprocess", __class__="Popen")
    path = base / "duplicate_schema.skops"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        out.writestr("schema.json", json.dumps(hostile))
        for name, data in members.items():
            out.writestr(name, data)
    return ["convert", str(path), "--to", "onnx", "-o", str(base / "dup.onnx"), "--samples", "20"], \
        "two members named 'schema.json'"
