"""Hostile and corrupt inputs found by a second pass over portable (issue 12, "verified on hostile files nobody
here has seen"), beyond `files.py`'s corpus. Every file is written by these functions.

`CASES` maps a case's name to a function `build(base) -> Case` that writes the case's files below `base` and
returns the command line to run, the exit codes allowed, a phrase the one-paragraph message must hold, and a check
of the files afterwards. `test_hostile_unseen` runs them all through `cli_harness` in one subprocess under a time
and memory bound (a segfault fails the test that was running, named in the harness's `.running` file).
"""
from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .files import Case

CASES: dict[str, Callable[[Path], Case]] = {}


def case(name: str) -> Callable[[Callable[[Path], Case]], Callable[[Path], Case]]:
    def register(build: Callable[[Path], Case]) -> Callable[[Path], Case]:
        CASES[name] = build
        return build
    return register


def _save(model, path: Path, ir_version: int = 8) -> Path:
    model.ir_version = ir_version
    path.write_bytes(model.SerializeToString())
    return path


def _relu_onnx(path: Path, x, y) -> Path:
    from onnx import helper as h

    return _save(h.make_model(h.make_graph([h.make_node("Relu", ["X"], ["Y"])], "g", [x], [y]),
                              opset_imports=[h.make_opsetid("", 17)]), path)


def build_unseen(base: Path, names: list[str] | None = None) -> list[Case]:
    """Write the cases (all, or those named) below `base` and return them, each named."""
    base.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in CASES.items():
        if names is not None and name not in names:
            continue
        c = build(base)
        c.name = name
        out.append(c)
    return out


# ---- ONNX inputs the checker generates rows for ----------------------------------------------------------------

@case("an ONNX input of width 0 ([N, 0]) is checked, not a KeyError")
def _zero_width(base: Path) -> Case:
    from onnx import TensorProto as TP
    from onnx import helper as h

    path = _relu_onnx(base / "zero_width.onnx", h.make_tensor_value_info("X", TP.FLOAT, [None, 0]),
                      h.make_tensor_value_info("Y", TP.FLOAT, [None, 0]))
    return Case("", ["check", str(path), str(path), "--samples", "20"], codes=(0,))


@case("an ONNX model without inputs is refused by the check, not reported NOT equivalent to itself")
def _no_inputs(base: Path) -> Case:
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    y = h.make_tensor_value_info("Y", TP.FLOAT, [None, 2])
    node = h.make_node("Constant", [], ["Y"], value=nh.from_array(np.ones((1, 2), np.float32)))
    path = _save(h.make_model(h.make_graph([node], "g", [], [y]), opset_imports=[h.make_opsetid("", 17)]),
                 base / "constant.onnx")
    return Case("", ["check", str(path), str(path), "--samples", "20"], needle="takes no inputs")
