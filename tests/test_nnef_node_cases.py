"""ONNX's own backend node tests (generated from the installed onnx) through the ONNX -> NNEF route and portable's
NNEF executor, compared with the outputs onnx ships with each case: none may be wrong (each is either correct or
clearly refused with a PortableError), and most of what NNEF can express must convert and be correct.

The whole sweep runs in a pool of two processes (well under two minutes on two cores)."""
from __future__ import annotations

import pytest

pytest.importorskip("nnef_tools")
pytest.importorskip("onnx")

from tests.nnef_node_sweep import cases, run_case, summarize, sweep  # noqa: E402

MIN_CORRECT = 700


@pytest.fixture(scope="module")
def results() -> dict[str, str]:
    return sweep(processes=2)


def test_no_node_case_is_wrong(results: dict[str, str]) -> None:
    wrong = {k: v for k, v in results.items() if v.startswith("wrong")}
    assert not wrong, wrong


def test_most_node_cases_convert_and_are_correct(results: dict[str, str]) -> None:
    counts = summarize(results)
    assert counts["correct"] >= MIN_CORRECT, counts
    assert sum(counts.values()) == len(cases())


@pytest.mark.parametrize("name", ["test_elu", "test_flatten_axis0", "test_flatten_negative_axis2", "test_max_example",
                                  "test_min_example", "test_mean_example", "test_softmax_default_axis",
                                  "test_logsoftmax_default_axis", "test_l2normalization_axis_0", "test_selu",
                                  "test_hardsigmoid", "test_reciprocal", "test_gemm_all_attributes",
                                  "test_batchnorm_example", "test_dropout_default", "test_conv_with_strides_padding",
                                  "test_maxpool_2d_ceil", "test_averagepool_2d_same_lower", "test_lppool_2d_pads"])
def test_nnef_tools_mistakes_are_fixed(name: str) -> None:
    """The mappings nnef-tools gets wrong (or cannot make) convert and agree with onnx's expected outputs."""
    case = next(c for c in cases() if c.name == name)
    assert run_case(case) == (name, "correct")


@pytest.mark.parametrize("name", ["test_training_dropout", "test_batchnorm_epsilon_training_mode",
                                  "test_cast_FLOAT_to_BFLOAT16", "test_bernoulli"])
def test_what_nnef_cannot_express_is_refused(name: str) -> None:
    case = next(c for c in cases() if c.name == name)
    outcome = run_case(case)[1]
    assert outcome.startswith("refused"), outcome


@pytest.mark.skipif(not __import__("os").environ.get("PORTABLE_SLOW"), reason="PORTABLE_SLOW=1 runs the variants")
def test_constant_parameter_variants_are_never_wrong() -> None:
    """The same cases with their parameter inputs (Resize scales, Pad pads, Slice starts, Reduce axes, ...)
    baked in as initializers, as exporters write them: none may be wrong either."""
    from tests.nnef_node_sweep import variant_sweep

    results = variant_sweep(processes=2)
    wrong = {k: v for k, v in results.items() if v.startswith("wrong")}
    assert not wrong, wrong
    assert summarize(results)["correct"] >= 600
