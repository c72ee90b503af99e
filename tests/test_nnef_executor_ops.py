"""portable's NNEF executor against nnef-tools' PyTorch interpreter (the reference implementation of NNEF's
operators) on generated graphs: convolution and deconvolution (groups, stride, dilation, explicit and automatic
padding), pooling (max, average and rms, every border), resizing, normalization, activations and reductions,
in float32 and float64."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nnef = pytest.importorskip("nnef")
pytest.importorskip("nnef_tools")

from portable.formats.nnef.executor import Executor, parse_graph  # noqa: E402

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _graph(body: str, shapes: dict[str, list[int]], variables: dict[str, np.ndarray]) -> str:
    lines = [f"    {n} = external<scalar>(shape = {s});" for n, s in shapes.items()]
    lines += [f"    {n} = variable<scalar>(shape = {list(v.shape)}, label = '{n}');" for n, v in variables.items()]
    ins = ", ".join(shapes)
    return f"version 1.0;\n\ngraph G({ins}) -> (y)\n{{\n" + "\n".join(lines) + f"\n{body}\n}}\n"


def _compare(text: str, feeds: dict[str, np.ndarray], variables: dict[str, np.ndarray], dtype: str,
             rtol: float = 1e-4) -> None:
    from nnef_tools.interpreter.pytorch import Interpreter

    graph = parse_graph(text)
    nnef.infer_shapes(graph)
    ours = Executor(graph, variables, dtype=dtype).run(feeds)["y"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        (Path(tmp) / "graph.nnef").write_text(text)
        for name, value in variables.items():  # the interpreter computes in float32: float64 is checked against it
            with open(Path(tmp) / f"{name}.dat", "wb") as f:
                nnef.write_tensor(f, np.asarray(value, np.float32))
        ref = Interpreter(tmp, device="cpu")([np.asarray(feeds[n], np.float32) for n in graph.inputs])["y"]
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol)


@st.composite
def conv_case(draw):
    rank = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 2]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 3))
    k = [draw(st.integers(1, 3)) for _ in range(rank)]
    stride = [draw(st.integers(1, 2)) for _ in range(rank)]
    dil = [draw(st.integers(1, 2)) for _ in range(rank)]
    size = [draw(st.integers(max(kk * d, 3), 7)) for kk, d in zip(k, dil)]
    auto = draw(st.booleans())
    pad = [] if auto else [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank)]
    return rank, groups, cin, cout, k, stride, dil, size, pad


@SETTINGS
@given(conv_case(), st.sampled_from(["float32", "float64"]), st.integers(0, 2**31 - 1))
def test_conv_agrees_with_nnef_tools(case, dtype, seed):
    rank, groups, cin, cout, k, stride, dil, size, pad = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=[2, cin] + size).astype(dtype)
    w = rng.normal(size=[cout, cin // groups] + k).astype(dtype)
    b = rng.normal(size=[1, cout]).astype(dtype)
    body = (f"    y = conv(x, w, b, padding = {pad}, stride = {stride}, dilation = {dil}, groups = {groups});")
    text = _graph(body, {"x": list(x.shape)}, {"w": w, "b": b})
    _compare(text, {"x": x}, {"w": w, "b": b}, dtype)


@SETTINGS
@given(conv_case(), st.integers(0, 2**31 - 1))
def test_deconv_agrees_with_nnef_tools(case, seed):
    rank, groups, cin, cout, k, stride, dil, size, pad = case
    # the interpreter adds the bias before padding an output longer than the full transposed convolution, so
    # those columns get no bias; the specification (and ONNX's output_padding) gives them the bias: not compared
    if not pad:
        for n, s_, kk, d in zip(size, stride, k, dil):
            full, out = (n - 1) * s_ + (kk - 1) * d + 1, n * s_
            before = max(0, (n - 1) * s_ + (kk - 1) * d + 1 - out) // 2
            assume(full >= before + out)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=[2, cin] + size).astype(np.float32)
    w = rng.normal(size=[cin, cout // groups] + k).astype(np.float32)
    b = rng.normal(size=[1, cout]).astype(np.float32)
    body = (f"    y = deconv(x, w, b, padding = {pad}, stride = {stride}, dilation = {dil}, groups = {groups});")
    text = _graph(body, {"x": list(x.shape)}, {"w": w, "b": b})
    _compare(text, {"x": x}, {"w": w, "b": b}, "float32")


@SETTINGS
@given(st.sampled_from(["max_pool", "avg_pool", "rms_pool"]), st.sampled_from(["constant", "ignore"]),
       st.integers(1, 3), st.integers(1, 2), st.booleans(), st.integers(0, 2**31 - 1))
def test_pooling_agrees_with_nnef_tools(op, border, k, stride, auto, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=[2, 3, 7, 6]).astype(np.float32)
    pad = "[]" if auto else f"[(0, 0), (0, 0), ({k // 2}, {(k - 1) // 2}), (1, 0)]"
    body = f"    y = {op}(x, size = [1, 1, {k}, 2], stride = [1, 1, {stride}, {stride}], padding = {pad}, " \
           f"border = '{border}');"
    if op == "rms_pool":
        x = np.abs(x)
    _compare(_graph(body, {"x": list(x.shape)}, {}), {"x": x}, {}, "float32")


@SETTINGS
@given(conv_case(), st.sampled_from(["max_pool", "avg_pool", None]), st.booleans(), st.booleans(),
       st.sampled_from(["float32", "float64"]), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_fused_conv_chain_agrees_with_nnef_tools(case, pool, norm, relu, dtype, batch, seed):
    """conv -> batch_normalization -> relu -> pooling, which the executor compiles into one kernel (the
    normalization folded into the filter, the rest run per chunk of samples), over several chunks."""
    import portable.formats.nnef.executor as ex

    rank, groups, cin, cout, k, stride, dil, size, pad = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=[batch, cin] + size).astype(dtype)
    v = {"w": rng.normal(size=[cout, cin // groups] + k).astype(dtype), "b": rng.normal(size=[1, cout]).astype(dtype)}
    lines = [f"    c = conv(x, w, b, padding = {pad}, stride = {stride}, dilation = {dil}, groups = {groups});"]
    last = "c"
    if norm:
        v.update(m=rng.normal(size=[1, cout]), s=rng.uniform(0.5, 2, size=[1, cout]),
                 o=rng.normal(size=[1, cout]), var=rng.uniform(0.5, 2, size=[1, cout]))
        v = {n: a.astype(dtype) for n, a in v.items()}
        lines.append(f"    n = batch_normalization({last}, m, var, o, s, epsilon = 0.001);")
        last = "n"
    if relu:
        lines.append(f"    r = relu({last});")
        last = "r"
    if pool:
        window = [1, 1] + [min(2, 1 + i) for i in range(rank)]
        lines.append(f"    y = {pool}({last}, size = {window}, stride = {window}, border = 'ignore');")
    else:
        lines.append(f"    y = copy({last});")
    text = _graph("\n".join(lines), {"x": list(x.shape)}, v)
    chunk = ex.CHUNK_BYTES
    ex.CHUNK_BYTES = 1  # one sample per chunk: the loop, the last partial chunk and the reused buffers
    try:
        graph = parse_graph(text)
        nnef.infer_shapes(graph)
        if len(Executor(graph, v, dtype=dtype)._kinds) > 2:
            raise AssertionError("the chain was not fused")
        _compare(text, {"x": x}, v, dtype)
    finally:
        ex.CHUNK_BYTES = chunk


# not compared: softmax over several axes (the interpreter divides by the sum of x, not of exp(x - max)) and gelu
# (the interpreter computes the exact erf form; the NNEF specification defines x * sigmoid(1.702 x), which the
# executor follows); nor multilinear_upsample's deconvolution modes (the interpreter calls numpy's removed
# reshape(newshape=)) and prelu with a [1, C] alpha (torch wants a 1-D weight)
@pytest.mark.parametrize("body", [
    "    y = multilinear_upsample(x, factor = [2, 3], method = 'symmetric', border = 'replicate');",
    "    y = rms_pool(abs(x), size = [1, 1, 3, 3], border = 'ignore');",
    "    y = multilinear_upsample(x, factor = [2, 2], method = 'aligned');",
    "    y = nearest_upsample(x, factor = [2, 3]);",
    "    y = nearest_downsample(x, factor = [2, 2]);",
    "    y = area_downsample(x, factor = [2, 2]);",
    "    y = local_response_normalization(x, size = [1, 3, 1, 1], alpha = 0.001, beta = 0.75, bias = 1.0);",
    "    y = batch_normalization(x, m, v, o, s, epsilon = 0.001);",
    "    y = l2_normalization(x, axes = [1], epsilon = 1e-6);",
    "    y = softmax(x, axes = [2]);",
    "    y = selu(x);",
    "    y = elu(x, alpha = 0.5);",
    "    y = leaky_relu(x, alpha = 0.2);",
    "    y = softplus(x);",
    "    y = silu(x);",
    "    y = pad(x, padding = [(0, 0), (0, 0), (1, 2), (2, 1)], border = 'reflect');",
    "    y = pad(x, padding = [(0, 0), (0, 0), (1, 2), (2, 1)], border = 'replicate');",
    "    y = pad(x, padding = [(0, 0), (0, 0), (1, 0), (0, 1)], border = 'constant', value = 2.0);",
    "    y = tile(x, repeats = [1, 2, 1, 3]);",
    "    y = slice(x, axes = [2, 3], begin = [1, -3], end = [4, 4], stride = [2, 1]);",
    "    y = clamp(x, -0.5, 0.5);",
    "    y = sum_reduce(x, axes = [2, 3], normalize = true);",
    "    y = argmax_reduce(x, axes = [1]);",
    "    y = matmul(x, x, transposeB = true);",
    "    [a, b] = split(x, axis = 3, ratios = [1, 1]);\n    y = concat([b, a], axis = 2);",
    "    [a, b, c, d] = unstack(x, axis = 1);\n    y = stack([d, c, b, a], axis = 3);",
])
@pytest.mark.parametrize("dtype", ["float32"])
def test_operator_agrees_with_nnef_tools(body, dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=[2, 4, 6, 4]).astype(dtype)
    variables = {"m": rng.normal(size=[1, 4]), "v": rng.uniform(0.5, 2, size=[1, 4]), "o": rng.normal(size=[1, 4]),
                 "s": rng.normal(size=[1, 4])}
    variables = {k: v.astype(dtype) for k, v in variables.items() if k in body.replace("(x, ", " ").split("y =")[1]}
    _compare(_graph(body, {"x": list(x.shape)}, variables), {"x": x}, variables, dtype)
