"""Hostile inputs of a third pass (issue 12, verified on files nobody had seen): each case of `tests/hostile/fresh.py`
runs through the real command line in its own subprocess under RLIMIT_AS and a timeout, and must end with exit
code 1, one short paragraph naming the problem, no traceback, no crash, no hang."""
from __future__ import annotations

import pytest

from .hostile.fresh import CASES, function_bomb
from .hostile.run import assert_clean_failure, run_cli


@pytest.mark.parametrize("name", list(CASES))
def test_fresh_hostile_input(tmp_path, name):
    argv, needle = CASES[name](tmp_path)
    run = run_cli(*argv, timeout=180)
    assert_clean_failure(run, needle=needle)


def test_the_function_bomb_really_expands_exponentially():
    """Control for the function-bomb cases: onnx's own inliner turns 12 local functions, each calling the previous
    twice, into 2**11 nodes; 30 of them (the corpus's file, a few KB) are 2**29, which onnx.checker and onnxruntime
    expand. portable counts the expansion first and refuses it."""
    import onnx
    import onnx.inliner

    model = onnx.load_model_from_string(function_bomb(12))
    assert len(onnx.inliner.inline_local_functions(model).graph.node) == 2 ** 11


def test_a_model_within_max_onnx_nodes_still_loads():
    import onnx

    import portable
    import portable.limits

    model = onnx.load_model_from_string(function_bomb(12))
    assert portable.load(model).signature.inputs[0].name == "X"
    with portable.limits.override(max_onnx_nodes=2 ** 11 - 1):
        with pytest.raises(portable.limits.LimitError, match="max_onnx_nodes"):
            portable.load(model)


def test_inspect_shows_a_model_whose_check_metadata_nests_100000_deep(tmp_path):
    """`portable inspect` parsed portable.check with json.loads and caught only ValueError: the RecursionError
    became "the model nested too deeply ... please report it" (exit 1). The metadata is now read within max_depth
    and shown as the text it is."""
    from .hostile.fresh import onnx_with_metadata

    path = onnx_with_metadata(tmp_path / "deep_check.onnx", "portable.check", "[" * 100_000 + "]" * 100_000)
    run = run_cli("inspect", str(path), timeout=180)
    assert run.returncode == 0, run.output[-2000:]
    assert "Traceback" not in run.output and "portable.check" in run.output
