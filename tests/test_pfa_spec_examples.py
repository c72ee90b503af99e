"""The complete documents of the PFA specification's examples (tests/data/pfa/spec): load, score as the spec
describes them (expected values by hand), and compile when pure and numeric."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import portable

SPEC = Path(__file__).parent / "data" / "pfa" / "spec"


def test_degenerate_document():
    m = portable.load(str(SPEC / "degenerate.json"))
    assert m.run({"input": np.zeros(2)})["output"].shape == (2,)


def test_increment():
    m = portable.load(str(SPEC / "increment.json"))
    x = np.array([1.5, -3.0])
    np.testing.assert_array_equal(m.run({"input": x})["output"], x + 1)
    np.testing.assert_array_equal(portable.convert(m, to="onnx", check=False).run({"input": x})["output"], x + 1)


def test_tree():
    m = portable.load(str(SPEC / "tree.json"))
    one = np.array([1, 1, 20, 20])
    two = np.array([4.0, 3.5, 0.0, 0.0])
    three = np.array(["x", "x", "TEST", "other"])
    want = ["yes-yes", "yes-no", "no-yes", "no-no"]
    assert list(m.run({"one": one, "two": two, "three": three})["output"]) == want
    art = portable.convert(m, to="onnx", check=False)
    assert list(art.run({"one": one, "two": two, "three": three})["output"]) == want


@pytest.mark.parametrize("name,inputs,want", [("counter_fcn.json", np.zeros(3), [1, 2, 3]),
                                              ("counter_inline.json", np.array([5, -2, 10]), [5, 3, 13])])
def test_counters(name, inputs, want):
    m = portable.load(str(SPEC / name))
    assert m.tier == "sequential"
    assert list(m.run({"input": inputs})["output"]) == want
    with pytest.raises(portable.PortableError):
        portable.convert(m, to="onnx", check=False)
