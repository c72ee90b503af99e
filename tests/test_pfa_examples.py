"""Every document in tests/data/pfa (copies of shared/pfa/examples): the engine and the compiled ONNX graph
give the reference engine's (titus2) recorded outputs, doubles within 1e-12 relative and strings exactly; the CLI
converts and checks them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import portable
from portable.api import check as check_models  # 

EXAMPLES = Path(__file__).parent / "data" / "pfa"
DOCS = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".yaml", ".json") and ".vectors." not in p.name)
RTOL = 1e-12


def test_the_examples_are_here():
    assert len(DOCS) == 6


def _stem(p: Path) -> str:
    return p.name.split(".")[0]


def _untag(v):
    return next(iter(v.values())) if isinstance(v, dict) and len(v) == 1 else v


def _feeds(model, inputs: list) -> dict[str, np.ndarray]:
    if isinstance(inputs[0], dict):
        return {s.name: np.array([_untag(r[s.name]) for r in inputs]) for s in model.signature.inputs}
    return {"input": np.array(inputs, dtype=float)}


def _compare(out: dict[str, np.ndarray], refs: list, who: str) -> int:
    """Compare outputs row by row with the recorded ones; returns how many rows had a reference value."""
    checked = 0
    for i, ref in enumerate(refs):
        if isinstance(ref, dict) and "error" in ref:
            # titus crashed (code null: a Python OverflowError, see the examples' README): no reference value
            assert ref["code"] is None, ref
            continue
        expected = ref if isinstance(ref, dict) and set(ref) <= set(out) else {"output": ref}
        for name, want in expected.items():
            got = out[name][i]
            if isinstance(want, str):
                assert str(got) == want, f"{who}: row {i} output {name}: {got!r} != {want!r}"
            else:
                np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=RTOL, atol=0,
                                           err_msg=f"{who}: row {i} output {name}")
        checked += 1
    return checked


@pytest.fixture(scope="module", params=DOCS, ids=_stem)
def example(request):
    doc = request.param
    vectors = json.loads((EXAMPLES / f"{_stem(doc)}.vectors.json").read_text())
    model = portable.load(str(doc))
    return doc, model, vectors


def test_engine_matches_reference(example):
    doc, model, vectors = example
    out = model.run(_feeds(model, vectors["inputs"]))
    assert _compare(out, vectors["outputs"], "engine") >= 182


def test_onnx_matches_reference(example):
    doc, model, vectors = example
    art = portable.convert(model, to="onnx", check=False)
    assert art.dtype == "float64"
    out = art.run(_feeds(model, vectors["inputs"]))
    assert _compare(out, vectors["outputs"], "onnx") >= 182
    assert [s.name for s in art.signature.inputs] == [s.name for s in model.signature.inputs]
    assert [s.name for s in art.signature.outputs] == [s.name for s in model.signature.outputs]
    for a, b in zip(art.signature.inputs + art.signature.outputs, model.signature.inputs + model.signature.outputs):
        assert (a.dtype, len(a.shape)) == (b.dtype, len(b.shape))


def test_tree_example_is_one_tree_ensemble():
    model = portable.load(str(EXAMPLES / "tree_simpleWalk_mixed_types.yaml"))
    ops = portable.convert(model, to="onnx", check=False).info()["operators"]
    assert ops.get("ai.onnx.ml:TreeEnsemble") == 1


def test_neural_crash_rows_are_finite_as_the_spec_says():
    # titus raised OverflowError on [0, 30]; IEEE arithmetic gives logit(-25) (see the examples' README)
    model = portable.load(str(EXAMPLES / "neural_simpleLayers_xor.yaml"))
    out = model.run({"input": np.array([[0.0, 30.0]])})["output"]
    np.testing.assert_allclose(out[0, 0], 1.0 / (1.0 + np.exp(25.0)), rtol=1e-12)


def test_check_passes_on_generated_inputs(example):
    doc, model, _ = example
    art = portable.convert(model, to="onnx", check=False)
    report = check_models(model, art, samples=200, seed=1)
    assert report.equivalent, report


def test_cli_convert_check_inspect(tmp_path):
    from click.testing import CliRunner

    from portable.cli import cli

    src = tmp_path / "tree.yaml"
    shutil.copy(EXAMPLES / "tree_simpleWalk_mixed_types.yaml", src)
    out = tmp_path / "tree.onnx"
    r = CliRunner().invoke(cli, ["convert", str(src), "--to", "onnx", "-o", str(out), "--no-check"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["check", str(src), str(out), "--samples", "200"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["inspect", str(src)])
    assert r.exit_code == 0, r.output
    assert "model.tree.simpleWalk" in r.output and "three" in r.output


def test_float32_conversion_is_checked_equivalent(example):
    doc, model, _ = example
    art = portable.convert(model, to="onnx", dtype="float32", check=False)
    assert art.dtype == "float32"
    assert all(s.dtype != "float64" for s in art.signature.inputs + art.signature.outputs)
    report = check_models(model, art, samples=200, seed=2)
    assert report.equivalent, report


def test_input_hints_name_the_tree_constants():
    model = portable.load(str(EXAMPLES / "tree_simpleWalk_mixed_types.yaml"))
    assert model.input_values() == {"one": [12.0], "two": [3.5], "three": ["TEST"]}
    hints = model.input_hints()  # the same constants, and the tree itself (path-aware boundary rows)
    assert hints.column(("one", 0)).values == [12.0] and hints.column(("three", 0)).categories == ["TEST"]
    assert hints.trees and {float(t) for t in hints.trees[0].threshold if t == t} >= {12.0}
