"""portable's numpy executor for the NNEF operators that portable's ONNX -> NNEF route emits.

It computes in the artifact's precision (`scalar` tensors as float32 or float64, `integer` as int64, `logical`
as bool) and runs on any batch size: the batch in `external(shape = ...)` is where nnef-tools needed a number,
not a limit. Operators follow the NNEF 1.0 specification: shapes carry implicit trailing singleton dimensions, so
a lower-rank operand of a binary operator is padded on the right, not on the left as numpy does.

The operator table is one function per operator, covering the NNEF 1.0 operators nnef-tools emits (and the
rest of the specification's sliding-window, resize, normalization and activation operators): vectorized numpy,
no torch. Sliding windows (conv, deconv, pooling) loop over the window's taps only, each a strided slice of
the whole batch: convolution is im2col into one batched BLAS product per group, pooling one ufunc pass per
tap, transposed convolution one einsum plus one strided add per tap. (scipy.signal has no grouped, strided,
dilated N-d convolution; torch would make a 2 GB library a dependency of running an artifact.) Fragments a
graph defines (nnef-tools' erf, lp_pool, ...) are lowered by the `nnef` parser into these operators. An
operator missing from the table raises CannotRunError (the model is fine; this runtime cannot run it) before
anything runs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import CannotRunError, NNEFError

OpFn = Callable[..., Any]
OPERATORS: dict[str, OpFn] = {}


def nnef_op(*names: str) -> Callable[[OpFn], OpFn]:
    """Register the numpy implementation of NNEF operators `names` (called with inputs, attributes, dtype)."""

    def deco(fn: OpFn) -> OpFn:
        for n in names:
            OPERATORS[n] = fn
        return fn

    return deco


def _align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NNEF broadcasting: pad the lower rank with trailing singleton dimensions."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim < b.ndim and a.ndim > 0:
        a = a.reshape(a.shape + (1,) * (b.ndim - a.ndim))
    elif b.ndim < a.ndim and b.ndim > 0:
        b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    return a, b


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> OpFn:
    def run(x: Any, y: Any, **_: Any) -> np.ndarray:
        return fn(*_align(x, y))

    return run


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> OpFn:
    return lambda x, **_: fn(np.asarray(x))


for _name, _fn in {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
                   "min": np.minimum, "max": np.maximum, "lt": np.less, "gt": np.greater, "le": np.less_equal,
                   "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal, "and": np.logical_and,
                   "or": np.logical_or}.items():
    OPERATORS[_name] = _binary(_fn)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # split by sign so exp never overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


for _name, _fn in {"copy": lambda v: v, "neg": np.negative, "rcp": np.reciprocal, "exp": np.exp, "log": np.log,
                   "abs": np.abs, "sign": np.sign, "not": np.logical_not, "floor": np.floor, "ceil": np.ceil,
                   "round": np.round, "sqr": np.square, "sqrt": np.sqrt, "rsqrt": lambda v: 1 / np.sqrt(v),
                   "log2": np.log2, "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
                   "sigmoid": _sigmoid, "softplus": lambda v: np.logaddexp(v, 0)}.items():
    OPERATORS[_name] = _unary(_fn)


# element-wise operators that may write into their first operand when it is a temporary seen for the last time
# (saves allocating and page-faulting a fresh batch-sized array per operator)
UFUNCS: dict[str, Callable[..., Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "min": np.minimum,
    "max": np.maximum, "exp": np.exp, "log": np.log, "abs": np.abs, "neg": np.negative, "sqrt": np.sqrt,
    "tanh": np.tanh, "relu": lambda v, out: np.maximum(v, 0, out=out)}
_VIEW_OPS = ("copy", "reshape", "squeeze", "unsqueeze", "transpose", "slice")


@nnef_op("leaky_relu")
def _leaky_relu(x: np.ndarray, *, alpha: float, **_: Any) -> np.ndarray:
    return np.where(x < 0, x * np.asarray(alpha, x.dtype), x)


@nnef_op("elu")
def _elu(x: np.ndarray, *, alpha: float = 1.0, **_: Any) -> np.ndarray:
    return np.where(x < 0, np.asarray(alpha, x.dtype) * np.expm1(np.minimum(x, 0)), x)


@nnef_op("select")
def _select(cond: Any, a: Any, b: Any, **_: Any) -> np.ndarray:
    cond, a = _align(cond, a)
    cond, b = _align(cond, b)
    a, b = _align(a, b)
    if a.dtype == b.dtype == np.int64 and cond.dtype == np.bool_ and a.shape == b.shape == cond.shape:
        # branch-free for integers (node indices of a tree traversal): b + (a - b) * cond, exact in int64's
        # wrap-around arithmetic, 2x faster than np.where on an unpredictable condition
        out = np.subtract(a, b)
        out *= cond
        out += b
        return out
    return np.where(cond, a, b)


@nnef_op("clamp")
def _clamp(x: Any, a: Any, b: Any, **_: Any) -> np.ndarray:
    return np.minimum(*_align(np.maximum(*_align(x, a)), b))


@nnef_op("matmul")
def _matmul(a: np.ndarray, b: np.ndarray, *, transposeA: bool = False, transposeB: bool = False,
            **_: Any) -> np.ndarray:
    a = np.swapaxes(a, -1, -2) if transposeA else a
    b = np.swapaxes(b, -1, -2) if transposeB else b
    return np.matmul(a, b)


@nnef_op("linear")
def _linear(x: np.ndarray, w: np.ndarray, bias: Any = 0.0, **_: Any) -> np.ndarray:
    return np.matmul(x, w.T) + np.asarray(bias, dtype=x.dtype)


def _reducer(fn: Callable[..., np.ndarray]) -> OpFn:
    def run(x: np.ndarray, *, axes: list[int], **_: Any) -> np.ndarray:
        return fn(x, axis=tuple(axes), keepdims=True) if axes else x

    return run


OPERATORS["sum_reduce"] = _reducer(np.sum)


def _extreme_reducer(fn: Callable[..., np.ndarray], big: bool) -> OpFn:
    """max/min reduce; over an empty axis it gives the identity (-inf for max, +inf for min) as ONNX does."""
    def run(x: np.ndarray, *, axes: list[int], **_: Any) -> np.ndarray:
        if not axes:
            return x
        x = np.asarray(x)
        if x.size == 0:
            if x.dtype.kind == "f":
                initial: Any = -np.inf if big else np.inf
            elif x.dtype.kind in "iu":
                initial = np.iinfo(x.dtype).min if big else np.iinfo(x.dtype).max
            else:
                initial = not big
            return fn(x, axis=tuple(axes), keepdims=True, initial=initial)
        return fn(x, axis=tuple(axes), keepdims=True)

    return run


OPERATORS["max_reduce"] = _extreme_reducer(np.max, True)
OPERATORS["min_reduce"] = _extreme_reducer(np.min, False)
OPERATORS["mean_reduce"] = _reducer(np.mean)


def _arg_reduce(fn: Callable[..., np.ndarray]) -> OpFn:
    def run(x: np.ndarray, *, axes: list[int], **_: Any) -> np.ndarray:
        if len(axes) != 1:
            moved = np.moveaxis(x, axes, list(range(x.ndim - len(axes), x.ndim)))
            flat = moved.reshape(moved.shape[:x.ndim - len(axes)] + (-1,))
            idx = fn(flat, axis=-1)
            return np.expand_dims(idx, axis=tuple(axes)).astype(np.int64)
        return np.expand_dims(fn(x, axis=axes[0]), axes[0]).astype(np.int64)

    return run


OPERATORS["argmax_reduce"] = _arg_reduce(np.argmax)
OPERATORS["argmin_reduce"] = _arg_reduce(np.argmin)


@nnef_op("softmax")
def _softmax(x: np.ndarray, *, axes: list[int] = (1,), **_: Any) -> np.ndarray:
    ax = tuple(axes)
    if x.size == 0:
        return np.array(x, dtype=np.result_type(x, np.float32))
    e = np.subtract(x, np.maximum.reduce(x, axis=ax, keepdims=True))
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=ax, keepdims=True)
    return e


@nnef_op("reshape")
def _reshape(x: np.ndarray, *, shape: list[int], axis_start: int = 0, axis_count: int = -1,
             **_: Any) -> np.ndarray:
    end = x.ndim if axis_count == -1 else axis_start + axis_count
    part = [x.shape[axis_start + i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(tuple(x.shape[:axis_start]) + tuple(part) + tuple(x.shape[end:]))


@nnef_op("squeeze")
def _squeeze(x: np.ndarray, *, axes: list[int], **_: Any) -> np.ndarray:
    return np.squeeze(x, axis=tuple(axes)) if axes else x


@nnef_op("unsqueeze")
def _unsqueeze(x: np.ndarray, *, axes: list[int], **_: Any) -> np.ndarray:
    return np.expand_dims(x, axis=tuple(axes)) if axes else x


@nnef_op("transpose")
def _transpose(x: np.ndarray, *, axes: list[int], **_: Any) -> np.ndarray:
    perm = list(axes) + list(range(len(axes), x.ndim))
    return np.transpose(x, perm)


@nnef_op("concat")
def _concat(values: list[np.ndarray], *, axis: int, **_: Any) -> np.ndarray:
    return np.concatenate([np.asarray(v) for v in values], axis=axis)


@nnef_op("split")
def _split(x: np.ndarray, *, axis: int, ratios: list[int], **_: Any) -> list[np.ndarray]:
    unit = x.shape[axis] // sum(ratios)
    cuts = np.cumsum([r * unit for r in ratios])[:-1]
    return np.split(x, cuts, axis=axis)


@nnef_op("slice")
def _slice(x: np.ndarray, *, axes: list[int], begin: list[int], end: list[int], stride: list[int] = (),
           **_: Any) -> np.ndarray:
    index = [slice(None)] * x.ndim
    strides = list(stride) or [1] * len(axes)
    for ax, b, e, s in zip(axes, begin, end, strides):
        if e == 0 and s == 1:  # NNEF: an end of 0 means the end of the dimension
            e = x.shape[ax]
        index[ax] = slice(b, e, s)
    return x[tuple(index)]


@nnef_op("gather")
def _gather(x: np.ndarray, idx: np.ndarray, *, axis: int = 0, **_: Any) -> np.ndarray:
    return np.take(x, np.asarray(idx, dtype=np.int64), axis=axis)


@nnef_op("tile")
def _tile(x: np.ndarray, *, repeats: list[int], **_: Any) -> np.ndarray:
    return np.tile(x, repeats)


@nnef_op("add_n")
def _add_n(values: list[np.ndarray], **_: Any) -> np.ndarray:
    total = np.asarray(values[0])
    for v in values[1:]:
        total = np.add(*_align(total, v))
    return total


@nnef_op("l1_normalization", "l2_normalization")
def _lp_normalization(x: np.ndarray, *, axes: list[int], bias: float = 0.0, epsilon: float = 0.0,
                      _p: int = 2, **_: Any) -> np.ndarray:
    ax = tuple(axes)
    norm = np.sum(np.abs(x), axis=ax, keepdims=True) if _p == 1 else np.sqrt(np.sum(x * x, axis=ax, keepdims=True))
    return x / np.maximum(norm + bias, epsilon)



# -- more element-wise operators ------------------------------------------------------------------------------
for _name, _fn in {"tan": np.tan, "sinh": np.sinh, "cosh": np.cosh, "asin": np.arcsin, "acos": np.arccos,
                   "atan": np.arctan, "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
                   "rsqr": lambda v: 1 / np.square(v), "silu": lambda v: v * _sigmoid(v)}.items():
    OPERATORS[_name] = _unary(_fn)


@nnef_op("div")
def _div(x: Any, y: Any, **_: Any) -> np.ndarray:
    x, y = _align(x, y)
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":  # integer division truncates towards zero
        q = np.abs(x) // np.where(y == 0, 1, np.abs(y))
        return (q * np.sign(x) * np.sign(y)).astype(np.result_type(x, y))
    return np.divide(x, y)


@nnef_op("pow")
def _pow(x: Any, y: Any, **_: Any) -> np.ndarray:
    x, y = _align(x, y)
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        return np.power(x, np.maximum(y, 0))
    return np.power(x, y)


@nnef_op("gelu")
def _gelu(x: np.ndarray, **_: Any) -> np.ndarray:
    """The NNEF 1.0 definition: x * sigmoid(1.702 x)."""
    return x * _sigmoid(np.asarray(1.702, x.dtype) * x)


@nnef_op("selu")
def _selu(x: np.ndarray, *, alpha: float = 1.67326319, _lambda_: float | None = None, **kw: Any) -> np.ndarray:
    lam = kw.get("lambda", 1.05070102) if _lambda_ is None else _lambda_
    return np.asarray(lam, x.dtype) * _elu(x, alpha=alpha)


@nnef_op("prelu")
def _prelu(x: Any, alpha: Any, **_: Any) -> np.ndarray:
    x, a = _align(x, alpha)
    return np.where(x < 0, a * x, x)


@nnef_op("softabs")
def _softabs(x: np.ndarray, *, epsilon: float, **_: Any) -> np.ndarray:
    return np.sqrt(x * x + np.asarray(epsilon, x.dtype))


OPERATORS["any_reduce"] = _reducer(np.any)
OPERATORS["all_reduce"] = _reducer(np.all)


@nnef_op("sum_reduce")
def _sum_reduce(x: np.ndarray, *, axes: list[int], normalize: bool = False, **_: Any) -> np.ndarray:
    if not axes:
        return x
    return (np.mean if normalize else np.sum)(x, axis=tuple(axes), keepdims=True)


@nnef_op("moments")
def _moments(x: np.ndarray, *, axes: list[int], **_: Any) -> list[np.ndarray]:
    mean = np.mean(x, axis=tuple(axes), keepdims=True)
    return [mean, np.mean(np.square(x - mean), axis=tuple(axes), keepdims=True)]


@nnef_op("stack")
def _stack(values: list[np.ndarray], *, axis: int, **_: Any) -> np.ndarray:
    return np.stack([np.asarray(v) for v in values], axis=axis)


@nnef_op("unstack")
def _unstack(x: np.ndarray, *, axis: int, **_: Any) -> list[np.ndarray]:
    return [np.take(x, i, axis=axis) for i in range(x.shape[axis])]


@nnef_op("copy_n")
def _copy_n(x: np.ndarray, *, times: int, **_: Any) -> list[np.ndarray]:
    return [x] * times


@nnef_op("pad")
def _pad_op(x: np.ndarray, *, padding: list[tuple[int, int]], border: str = "constant", value: float = 0.0,
            **_: Any) -> np.ndarray:
    return _pad(x, list(padding) + [(0, 0)] * (x.ndim - len(padding)), border, value)


_BORDERS = {"constant": "constant", "ignore": "constant", "replicate": "edge", "reflect": "reflect",
            "reflect-even": "symmetric"}


def _pad(x: np.ndarray, padding: list[tuple[int, int]], border: str, value: Any = 0.0) -> np.ndarray:
    """Pad (or crop, for negative amounts) every axis; `border` as NNEF names it."""
    if border not in _BORDERS:
        raise NNEFError(f"unknown NNEF border '{border}'; NNEF defines {', '.join(_BORDERS)}")
    crop = tuple(slice(-p if p < 0 else 0, x.shape[i] + q if q < 0 else None) for i, (p, q) in enumerate(padding))
    x = x[crop]
    pos = [(max(p, 0), max(q, 0)) for p, q in padding]
    if not any(p or q for p, q in pos):
        return x
    mode = _BORDERS[border]
    if mode == "constant":
        return np.pad(x, pos, mode="constant", constant_values=np.asarray(value).astype(x.dtype))
    return np.pad(x, pos, mode=mode)


def _same_padding(shape: list[int], size: list[int], stride: list[int], dilation: list[int]) -> list[tuple[int, int]]:
    out = [(n + s - 1) // s for n, s in zip(shape, stride)]
    dilated = [(k - 1) * d + 1 for k, d in zip(size, dilation)]
    total = [max(0, (o - 1) * s + dk - n) for o, s, dk, n in zip(out, stride, dilated, shape)]
    return [(t // 2, (t + 1) // 2) for t in total]


def _window_params(x: np.ndarray, size: list[int], padding: Any, stride: Any, dilation: Any) -> tuple[Any, ...]:
    r = x.ndim
    stride = list(stride) or [1] * r
    dilation = list(dilation) or [1] * r
    padding = [tuple(p) for p in padding] or _same_padding(list(x.shape), list(size), stride, dilation)
    return list(size), padding, stride, dilation


def _windows(xp: np.ndarray, size: list[int], stride: list[int], dilation: list[int],
             axes: list[int]) -> np.ndarray:
    """A strided view: xp's shape with each axis in `axes` turned into output positions, plus one trailing
    window axis per axis in `axes` (in order)."""
    from numpy.lib.stride_tricks import sliding_window_view

    dil = [(size[a] - 1) * dilation[a] + 1 for a in axes]
    v = sliding_window_view(xp, dil, axis=axes)
    outer = [slice(None)] * xp.ndim
    for a in axes:
        outer[a] = slice(None, None, stride[a])
    inner = [slice(None, None, dilation[a]) for a in axes]
    return v[tuple(outer + inner)]


def _tap_slices(shape: tuple[int, ...], size: list[int], stride: list[int], dilation: list[int],
                axes: list[int]) -> tuple[list[int], list[tuple[slice, ...]]]:
    """The output extent of a sliding window over `axes` of a (padded) array of `shape`, and for each tap of
    the window the strided slice that gathers that tap for every output position."""
    out = [(shape[a] - ((size[a] - 1) * dilation[a] + 1)) // stride[a] + 1 for a in axes]
    taps = []
    for tap in np.ndindex(*[size[a] for a in axes]):
        sl = [slice(None)] * len(shape)
        for a, t, o in zip(axes, tap, out):
            sl[a] = slice(t * dilation[a], t * dilation[a] + (o - 1) * stride[a] + 1, stride[a])
        taps.append(tuple(sl))
    return out, taps


def _pool(x: np.ndarray, size: list[int], border: str, padding: Any, stride: Any, dilation: Any,
          kind: str) -> np.ndarray:
    """Max, sum or average over sliding windows: one vectorized pass per window tap (k*k passes over the
    output), which beats reducing a strided window view over its small trailing axes."""
    size, padding, stride, dilation = _window_params(x, size, padding, stride, dilation)
    axes = [a for a in range(x.ndim) if size[a] != 1 or stride[a] != 1 or tuple(padding[a]) != (0, 0)]
    if not axes:
        return x
    if kind == "max":
        if x.dtype.kind == "f":
            fill: Any = -np.inf if border == "ignore" else 0.0
        else:
            fill = np.iinfo(x.dtype).min if border == "ignore" else 0
        xp = _pad(x, padding, "constant" if border == "ignore" else border, fill)
        out, taps = _tap_slices(xp.shape, size, stride, dilation, axes)
        if any(o <= 0 for o in out):
            raise NNEFError(f"max_pool window {size} does not fit the padded input {list(xp.shape)}")
        acc = np.array(xp[taps[0]])
        for sl in taps[1:]:
            np.maximum(acc, xp[sl], out=acc)
        return acc
    xp = _pad(x, padding, "constant" if border == "ignore" else border, 0.0)
    out, taps = _tap_slices(xp.shape, size, stride, dilation, axes)
    acc = np.array(xp[taps[0]])
    for sl in taps[1:]:
        np.add(acc, xp[sl], out=acc)
    if kind == "sum":
        return acc
    if border == "ignore":
        ones = _pad(np.ones([x.shape[a] if a in axes else 1 for a in range(x.ndim)], x.dtype),
                    [padding[a] if a in axes else (0, 0) for a in range(x.ndim)], "constant", 0.0)
        _, otaps = _tap_slices(ones.shape, size, stride, dilation, axes)
        count = np.array(ones[otaps[0]])
        for sl in otaps[1:]:
            np.add(count, ones[sl], out=count)
        return acc / np.where(count > 0, count, 1)
    acc /= np.asarray(np.prod(size), acc.dtype)
    return acc


@nnef_op("max_pool")
def _max_pool(x: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (), stride: Any = (),
              dilation: Any = (), **_: Any) -> np.ndarray:
    return _pool(x, size, border, padding, stride, dilation, "max")


@nnef_op("avg_pool")
def _avg_pool(x: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (), stride: Any = (),
              dilation: Any = (), **_: Any) -> np.ndarray:
    return _pool(x, size, border, padding, stride, dilation, "avg")


@nnef_op("rms_pool")
def _rms_pool(x: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (), stride: Any = (),
              dilation: Any = (), **_: Any) -> np.ndarray:
    return np.sqrt(_pool(np.square(x), size, border, padding, stride, dilation, "avg"))


@nnef_op("box")
def _box(x: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (), stride: Any = (),
         dilation: Any = (), normalize: bool = False, **_: Any) -> np.ndarray:
    return _pool(x, size, border, padding, stride, dilation, "avg" if normalize else "sum")


@nnef_op("argmax_pool")
def _argmax_pool(x: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (), stride: Any = (),
                 dilation: Any = (), **_: Any) -> np.ndarray:
    """The index of each window's maximum, flattened within the window (what `sample` takes)."""
    size, padding, stride, dilation = _window_params(x, size, padding, stride, dilation)
    fill = -np.inf if border == "ignore" else 0.0
    xp = _pad(x, padding, "constant" if border == "ignore" else border, fill)
    axes = list(range(x.ndim))
    v = _windows(xp, size, stride, dilation, axes)
    flat = v.reshape(v.shape[:x.ndim] + (-1,))
    return np.argmax(flat, axis=-1).astype(np.int64)


@nnef_op("sample")
def _sample(x: np.ndarray, index: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (),
            stride: Any = (), dilation: Any = (), **_: Any) -> np.ndarray:
    size, padding, stride, dilation = _window_params(x, size, padding, stride, dilation)
    xp = _pad(x, padding, "constant" if border == "ignore" else border, 0.0)
    v = _windows(xp, size, stride, dilation, list(range(x.ndim)))
    flat = v.reshape(v.shape[:x.ndim] + (-1,))
    return np.take_along_axis(flat, np.asarray(index, np.intp)[..., None], axis=-1)[..., 0]


@nnef_op("max_pool_with_index")
def _max_pool_with_index(x: np.ndarray, **attrs: Any) -> list[np.ndarray]:
    index = _argmax_pool(x, **attrs)
    return [_sample(x, index, **attrs), index]


@nnef_op("nearest_downsample")
def _nearest_downsample(x: np.ndarray, *, factor: list[int], **_: Any) -> np.ndarray:
    return x[(slice(None), slice(None)) + tuple(slice(None, None, f) for f in factor)]


@nnef_op("area_downsample")
def _area_downsample(x: np.ndarray, *, factor: list[int], **_: Any) -> np.ndarray:
    f = [1, 1] + list(factor)
    return _pool(x, f, "constant", [(0, 0)] * x.ndim, f, [1] * x.ndim, "avg")


@nnef_op("nearest_upsample")
def _nearest_upsample(x: np.ndarray, *, factor: list[int], **_: Any) -> np.ndarray:
    for i, f in enumerate(factor):
        x = np.repeat(x, f, axis=2 + i)
    return x


def _interp_axis(x: np.ndarray, axis: int, src: np.ndarray, clamp: bool) -> np.ndarray:
    """Linear interpolation along `axis` at fractional source positions `src` (out-of-range neighbours are
    clamped to the edge, or count as zeros)."""
    n = x.shape[axis]
    i0 = np.floor(src).astype(np.int64)
    w1 = (src - i0).astype(x.dtype)
    i1 = i0 + 1
    shape = [1] * x.ndim
    shape[axis] = len(src)

    def take(i: np.ndarray) -> np.ndarray:
        valid = (i >= 0) & (i < n)
        v = np.take(x, np.clip(i, 0, n - 1), axis=axis)
        return v if clamp else v * valid.astype(x.dtype).reshape(shape)

    if clamp:
        src = np.clip(src, 0, n - 1)
        i0 = np.floor(src).astype(np.int64)
        w1 = (src - i0).astype(x.dtype)
        i1 = np.minimum(i0 + 1, n - 1)
    return take(i0) * (1 - w1).reshape(shape) + take(i1) * w1.reshape(shape)


def _upsample_weights(factor: int, symmetric: bool) -> np.ndarray:
    if symmetric:
        w = [1 - (i + 0.5) / factor for i in range(factor)]
        return np.asarray(list(reversed(w)) + w)
    return np.asarray([1 - abs(i) / factor for i in range(-factor + 1, factor)])


@nnef_op("multilinear_upsample")
def _multilinear_upsample(x: np.ndarray, *, factor: list[int], method: str = "symmetric",
                          border: str = "replicate", **_: Any) -> np.ndarray:
    """As the NNEF specification defines it: 'aligned', and 'symmetric' with the 'replicate' border, are linear
    interpolation (align-corners and half-pixel); the others a depthwise deconvolution with linear weights
    (computed separably, one axis at a time)."""
    if method not in ("aligned", "symmetric", "asymmetric"):
        raise NNEFError(f"multilinear_upsample has no method '{method}'")
    if method == "aligned" or (method == "symmetric" and border == "replicate"):
        for i, f in enumerate(factor):
            axis, n = 2 + i, x.shape[2 + i]
            dst = np.arange(n * f, dtype=np.float64)
            if method == "aligned":
                src = dst * (n - 1) / (n * f - 1) if n * f > 1 else np.zeros_like(dst)
            else:
                src = (dst + 0.5) / f - 0.5
            x = _interp_axis(x, axis, src, True)
        return x
    symmetric = method == "symmetric"
    for i, f in enumerate(factor):
        axis, n = 2 + i, x.shape[2 + i]
        moved = np.moveaxis(x, axis, -1)
        lead = moved.shape[:-1]
        flat = moved.reshape((-1, 1, n))
        w = _upsample_weights(f, symmetric).astype(x.dtype).reshape(1, 1, -1)
        if symmetric:
            pad = [(f - 1, f - 1)]
        else:
            if border == "replicate":
                flat = np.concatenate([flat[:, :, :1], flat], axis=2)
            p = f if border == "replicate" else f // 2
            pad = [(p, p)]
        y = _deconv(flat, w, 0.0, padding=pad, stride=[f], output_shape=[flat.shape[0], 1, n * f])
        x = np.moveaxis(y.reshape(lead + (n * f,)), -1, axis)
    return np.ascontiguousarray(x)


@nnef_op("local_response_normalization")
def _lrn(x: np.ndarray, *, size: list[int], alpha: float = 1.0, beta: float = 0.5, bias: float = 1.0,
         **_: Any) -> np.ndarray:
    sigma = np.asarray(bias, x.dtype) + np.asarray(alpha, x.dtype) * _pool(
        np.square(x), size, "constant", (), (), (), "avg")
    return x / np.power(sigma, np.asarray(beta, x.dtype))


@nnef_op("local_mean_normalization")
def _lmn(x: np.ndarray, *, size: list[int], **_: Any) -> np.ndarray:
    return x - _pool(x, size, "constant", (), (), (), "avg")


@nnef_op("local_variance_normalization")
def _lvn(x: np.ndarray, *, size: list[int], bias: float = 0.0, epsilon: float = 0.0, **_: Any) -> np.ndarray:
    sigma = np.sqrt(_pool(np.square(x), size, "constant", (), (), (), "avg"))
    return x / np.maximum(sigma + np.asarray(bias, x.dtype), np.asarray(epsilon, x.dtype))


@nnef_op("local_contrast_normalization")
def _lcn(x: np.ndarray, *, size: list[int], bias: float = 0.0, epsilon: float = 0.0, **_: Any) -> np.ndarray:
    return _lvn(_lmn(x, size=size), size=size, bias=bias, epsilon=epsilon)


@nnef_op("batch_normalization")
def _batch_norm(x: np.ndarray, mean: Any, variance: Any, offset: Any, scale: Any, *, epsilon: float,
                **_: Any) -> np.ndarray:
    _, mean = _align(x, mean)
    _, variance = _align(x, variance)
    _, offset = _align(x, offset)
    _, scale = _align(x, scale)
    k = scale / np.sqrt(variance + np.asarray(epsilon, x.dtype))
    return (x - mean) * k + offset


def _conv_bias(out: np.ndarray, bias: Any) -> np.ndarray:
    b = np.asarray(bias, out.dtype)
    if b.ndim == 0:
        return out + b if b != 0 else out
    b = b.reshape(-1)
    return out + b.reshape((1, -1) + (1,) * (out.ndim - 2))


_LETTERS = "abcdefhijklmpqrstuvwxyz"


@nnef_op("conv")
def _conv(x: np.ndarray, w: np.ndarray, bias: Any = 0.0, *, border: str = "constant", padding: Any = (),
          stride: Any = (), dilation: Any = (), groups: int = 1, **_: Any) -> np.ndarray:
    """Convolution as im2col: each kernel tap's strided slice is copied once into a [N, G, C/G * K, positions]
    matrix, then one batched matrix product per group (BLAS) gives the output directly in NCHW order."""
    r = x.ndim - 2
    if x.dtype.kind != "f":
        x = x.astype(w.dtype)
    groups = x.shape[1] if groups == 0 else groups
    stride = list(stride) or [1] * r
    dilation = list(dilation) or [1] * r
    padding = [tuple(p) for p in padding] or _same_padding(list(x.shape[2:]), list(w.shape[2:]), stride, dilation)
    xp = _pad(x, [(0, 0), (0, 0)] + padding, border if border != "ignore" else "constant", 0.0)
    n, c = x.shape[:2]
    o = w.shape[0]
    cg, og = c // groups, o // groups
    axes = list(range(2, x.ndim))
    out, taps = _tap_slices(xp.shape, [1, 1] + list(w.shape[2:]), [1, 1] + stride, [1, 1] + dilation, axes)
    if any(v <= 0 for v in out):
        raise NNEFError(f"conv filter {list(w.shape)} does not fit the padded input {list(xp.shape)}")
    positions = int(np.prod(out))
    k = len(taps)
    dt = np.result_type(xp.dtype, w.dtype)
    # per-sample columns [N, G, C/G * K, positions]: the batched product lands directly in NCHW order
    cols = np.empty((n, groups, cg, k, positions), dtype=dt)
    for t, sl in enumerate(taps):
        cols[:, :, :, t, :] = xp[sl].reshape(n, groups, cg, positions)
    wm = w.reshape(groups, og, cg * k).astype(dt, copy=False)
    res = np.matmul(wm[None], cols.reshape(n, groups, cg * k, positions))  # [N, G, O/G, positions]
    res = res.reshape((n, o) + tuple(out))
    b = np.asarray(bias, dt)
    if b.ndim == 0:
        if b != 0:
            res += b
    else:
        res += b.reshape((1, -1) + (1,) * r)
    return res


@nnef_op("deconv")
def _deconv(x: np.ndarray, w: np.ndarray, bias: Any = 0.0, *, border: str = "constant", padding: Any = (),
            stride: Any = (), dilation: Any = (), output_shape: Any = (), groups: int = 1, **_: Any) -> np.ndarray:
    """Transposed convolution: each kernel tap adds a strided slice of one einsum's result."""
    import nnef.shapes

    r = x.ndim - 2
    if border not in ("constant", "ignore"):
        raise NNEFError(f"portable's NNEF executor runs deconv with the 'constant' border only, not '{border}'")
    stride = list(stride) or [1] * r
    dilation = list(dilation) or [1] * r
    n, c = x.shape[:2]
    if groups == 0:
        groups = output_shape[1] if output_shape else w.shape[0]
    o = w.shape[1] * groups
    if output_shape:
        out_shape = [n, o] + list(output_shape[2:])
    else:
        out_shape = list(nnef.shapes.deconv_shape(list(x.shape), list(w.shape), [1, o], border=border,
                                                  padding=[tuple(p) for p in padding], stride=stride,
                                                  dilation=dilation, groups=groups, output_shape=[]))
        out_shape[0] = n
    padding = [tuple(p) for p in padding] or _same_padding(out_shape[2:], list(w.shape[2:]), stride, dilation)
    ks = w.shape[2:]
    xg = x.reshape((n, groups, c // groups) + x.shape[2:])
    wg = w.reshape((groups, c // groups, o // groups) + tuple(ks))
    sp, kl = _LETTERS[:r], _LETTERS[r:2 * r]
    y = np.einsum(f"NGC{sp},GCO{kl}->NGO{sp}{kl}", xg, wg, optimize=True)
    full = [(s - 1) * st + (k - 1) * d + 1 for s, st, k, d in zip(x.shape[2:], stride, ks, dilation)]
    acc = np.zeros((n, groups, o // groups) + tuple(full), dtype=y.dtype)
    for tap in np.ndindex(*ks):
        dst = tuple(slice(t * d, t * d + (s - 1) * st + 1, st)
                    for t, d, s, st in zip(tap, dilation, x.shape[2:], stride))
        acc[(slice(None),) * 3 + dst] += y[(Ellipsis,) + tap]
    acc = acc.reshape((n, o) + tuple(full))
    crop = [(p, out_shape[2 + i] + p) for i, (p, _) in enumerate(padding)]
    need = [max(0, e - f) for (_, e), f in zip(crop, full)]
    if any(need):
        acc = np.pad(acc, [(0, 0), (0, 0)] + [(0, k) for k in need])
    out = acc[(slice(None), slice(None)) + tuple(slice(b, e) for b, e in crop)]
    return _conv_bias(np.ascontiguousarray(out), bias)


@nnef_op("debox")
def _debox(x: np.ndarray, *, size: list[int], border: str = "constant", padding: Any = (), stride: Any = (),
           dilation: Any = (), output_shape: Any = (), normalize: bool = False, **_: Any) -> np.ndarray:
    c = x.shape[1]
    w = np.full([c, 1] + list(size[2:]), 1.0 / np.prod(size) if normalize else 1.0, dtype=x.dtype)
    return _deconv(x, w, 0.0, border=border, padding=list(padding)[2:], stride=list(stride)[2:],
                   dilation=list(dilation)[2:], output_shape=output_shape, groups=c)


@nnef_op("separable_conv")
def _separable_conv(x: np.ndarray, plane: np.ndarray, point: np.ndarray, bias: Any = 0.0, *, groups: int = 1,
                    **attrs: Any) -> np.ndarray:
    return _conv(_conv(x, plane, 0.0, groups=0, **attrs), point, bias, groups=groups)


# ----------------------------------------------------------------------------------------------------------
#: im2col block per chunk of samples: small enough to stay in cache while the matrix product reads it
CHUNK_BYTES = 1 << 21


class ConvKernel:
    """A convolution whose filter and bias are constants, compiled once per input shape: the im2col matrix of a
    chunk of samples (with a row of ones, so the bias is one more filter column) is written into a reused buffer
    whose padding cells stay zero, one BLAS product per chunk lands in NCHW order, and the activation and
    pooling that follow (relu, max/avg pooling over the spatial axes) run on the chunk while it is in cache."""

    def __init__(self, w: np.ndarray, bias: Any, *, border: str = "constant", padding: Any = (), stride: Any = (),
                 dilation: Any = (), groups: int = 1, **_: Any) -> None:
        self.w = np.ascontiguousarray(w)
        b = np.asarray(bias, w.dtype)
        self.bias = np.broadcast_to(b.reshape(-1) if b.ndim else b, (w.shape[0],)).astype(w.dtype)
        self.border, self.padding = border, [tuple(p) for p in padding]
        r = w.ndim - 2
        self.stride = list(stride) or [1] * r
        self.dilation = list(dilation) or [1] * r
        self.groups = groups
        self.relu = False
        self.pool: dict[str, Any] | None = None
        self._plans: dict[tuple[Any, ...], Any] = {}
        self._free: dict[tuple[Any, ...], list[np.ndarray]] = {}

    def _plan(self, shape: tuple[int, ...]) -> dict[str, Any]:
        w = self.w
        r = w.ndim - 2
        c = shape[1]
        groups = c if self.groups == 0 else self.groups
        o, cg, og = w.shape[0], c // groups, w.shape[0] // groups
        if cg * groups != c or w.shape[1] != cg:
            raise NNEFError(f"conv filter {list(w.shape)} does not match the input {list(shape)} in {groups} groups")
        ks = list(w.shape[2:])
        padding = self.padding or _same_padding(list(shape[2:]), ks, self.stride, self.dilation)
        zero_border = self.border in ("constant", "ignore")
        spatial = list(shape[2:]) if zero_border else [n + p + q for n, (p, q) in zip(shape[2:], padding)]
        pads = padding if zero_border else [(0, 0)] * r
        out = tuple((n + p + q - ((k - 1) * d + 1)) // s + 1
                    for n, (p, q), k, d, s in zip(shape[2:], padding, ks, self.dilation, self.stride))
        if any(v <= 0 for v in out):
            raise NNEFError(f"conv filter {list(w.shape)} does not fit the padded input {list(shape)}")
        whole = (slice(None),) * 3
        copies = []  # (destination in the tap view, source in the input chunk); the padding cells stay zero
        for t, tap in enumerate(np.ndindex(*ks)):
            dst, src = [], []
            for a in range(r):
                s, d, p, n, k = self.stride[a], self.dilation[a], pads[a][0], spatial[a], tap[a]
                lo = max(0, -(-(p - k * d) // s))
                hi = min(out[a] - 1, (n - 1 + p - k * d) // s)
                if hi < lo:
                    break
                dst.append(slice(lo, hi + 1))
                begin = lo * s + k * d - p
                src.append(slice(begin, begin + (hi - lo) * s + 1, s))
            else:
                copies.append((whole + (t,) + tuple(dst), whole + tuple(src)))
        k = int(np.prod(ks))
        wm = np.concatenate([w.reshape(groups, og, cg * k), self.bias.reshape(groups, og, 1)], axis=2)
        positions = int(np.prod(out))
        per_sample = groups * (cg * k + 1) * positions * w.dtype.itemsize
        chunk = max(1, CHUNK_BYTES // max(per_sample, 1))  # buffers hold a whole chunk whatever the batch
        plan = {"groups": groups, "cg": cg, "og": og, "k": k, "out": out, "o": o, "positions": positions,
                "padding": padding, "copies": copies, "wm": np.ascontiguousarray(wm), "chunk": chunk,
                "pool_taps": None}
        pool = self.pool
        size = pool["size"] if pool is not None else []
        stride = (pool["stride"] or [1] * len(size)) if pool is not None else []
        dilation = (pool["dilation"] or [1] * len(size)) if pool is not None else []
        pool_pad = (pool["padding"] or _same_padding([1, o, *out], size, stride, dilation)) if pool else []
        if pool is not None and not any(p or q for p, q in pool_pad):
            # no padding: the window taps are fixed strided slices of the block, reduced straight into the result
            pout, taps = _tap_slices((1, o) + out, size, stride, dilation, list(range(2, len(size))))
            if all(v > 0 for v in pout):
                plan["pool_taps"] = taps
                plan["pool_out"] = (o,) + tuple(pout)
                plan["pool_scale"] = 1.0 / float(np.prod(size))
        return plan

    def _buffer(self, key: tuple[Any, ...], shape: tuple[int, ...], dtype: Any, ones_row: int | None) -> np.ndarray:
        free = self._free.setdefault(key, [])
        try:
            return free.pop()
        except IndexError:
            buf = np.zeros(shape, dtype)
            if ones_row is not None:
                buf[:, :, ones_row, :] = 1
            return buf

    def __call__(self, x: Any, **_: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != self.w.dtype:
            x = x.astype(self.w.dtype)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        key = x.shape[1:]  # plans and buffers per sample shape: any batch size reuses them
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 8:  # a graph fed many sample shapes: keep memory bounded
                self._plans.clear()
                self._free.clear()
            plan = self._plans[key] = self._plan(x.shape)
        groups, cg, og, k, out, o = plan["groups"], plan["cg"], plan["og"], plan["k"], plan["out"], plan["o"]
        chunk, wm, copies, pool_taps = plan["chunk"], plan["wm"], plan["copies"], plan["pool_taps"]
        if self.border not in ("constant", "ignore"):
            x = _pad(x, [(0, 0), (0, 0)] + list(plan["padding"]), self.border, 0.0)
        n = x.shape[0]
        cols_key = ("cols", key)
        cols = self._buffer(cols_key, (chunk, groups, cg * k + 1, plan["positions"]), x.dtype, cg * k)
        taps = cols[:, :, :cg * k, :].reshape((chunk, groups, cg, k) + out)
        xg = x.reshape((n, groups, cg) + x.shape[2:])
        pool, relu = self.pool, self.relu
        tmp = None
        try:
            if pool is None:
                result = np.empty((n, groups, og, plan["positions"]), x.dtype)
            else:
                tmp = self._buffer(("out", key), (chunk, groups, og, plan["positions"]), x.dtype, None)
                result = np.empty((n,) + plan["pool_out"], x.dtype) if pool_taps is not None else None
            for start in range(0, n, chunk):
                nc = min(chunk, n - start)
                tv, xs = taps[:nc], xg[start:start + nc]
                for dst, src in copies:
                    tv[dst] = xs[src]
                block = result[start:start + nc] if pool is None else tmp[:nc]
                np.matmul(wm, cols[:nc], out=block)
                if pool is None:
                    if relu:
                        np.maximum(block, 0, out=block)
                    continue
                b4 = block.reshape((nc, o) + out)
                if pool_taps is None:  # padded pooling: the general operator
                    if relu:
                        np.maximum(b4, 0, out=b4)
                    pooled = _pool(b4, **pool)
                    if result is None:
                        result = np.empty((n,) + pooled.shape[1:], x.dtype)
                    result[start:start + nc] = pooled
                    continue
                dst = result[start:start + nc]
                if pool["kind"] == "max":  # relu commutes with max: applied to the 4x smaller pooled block
                    np.copyto(dst, b4[pool_taps[0]])
                    for sl in pool_taps[1:]:
                        np.maximum(dst, b4[sl], out=dst)
                    if relu:
                        np.maximum(dst, 0, out=dst)
                else:
                    if relu:
                        np.maximum(b4, 0, out=b4)
                    np.copyto(dst, b4[pool_taps[0]])
                    for sl in pool_taps[1:]:
                        np.add(dst, b4[sl], out=dst)
                    dst *= np.asarray(plan["pool_scale"], x.dtype)
        finally:
            self._free.setdefault(cols_key, []).append(cols)
            if tmp is not None:
                self._free.setdefault(("out", key), []).append(tmp)
        return result.reshape((n, o) + out) if pool is None else result


# ----------------------------------------------------------------------------------------------------------
class Executor:
    """A parsed NNEF graph compiled into a list of numpy calls."""

    def __init__(self, graph: Any, variables: dict[str, np.ndarray], *, dtype: str = "float32") -> None:
        self.dtype = np.dtype(dtype)
        self.inputs: list[str] = list(graph.inputs)
        self.outputs: list[str] = list(graph.outputs)
        self._consts: dict[str, Any] = {}
        self._steps: list[tuple[OpFn, list[Any], dict[str, Any], list[str], str]] = []
        self._input_dtypes: dict[str, Any] = {}
        self._kinds: list[str] = []
        missing = sorted({op.name for op in graph.operations
                          if op.name not in OPERATORS and op.name not in ("external", "variable", "constant",
                                                                          "cast")})
        if missing:
            raise CannotRunError(f"the converted model cannot run here: portable's NNEF executor lacks "
                                 f"{', '.join(missing)} (it implements {', '.join(sorted(OPERATORS))}, cast, "
                                 "constant, external and variable)")
        for op in graph.operations:
            out_names = [str(v) for v in _flatten(list(op.outputs.values()))]
            if op.name == "external":
                self._input_dtypes[out_names[0]] = self._np(op.dtype)
                continue
            if op.name == "variable":
                data = variables[str(op.attribs["label"])]
                self._consts[out_names[0]] = data.astype(self._np(op.dtype), copy=False)
                continue
            if op.name == "constant":
                shape = list(op.attribs["shape"])
                vals = np.asarray(op.attribs["value"], dtype=self._np(op.dtype))
                self._consts[out_names[0]] = (np.full(shape, vals.ravel()[0], vals.dtype) if vals.size == 1
                                              else vals.reshape(shape))
                continue
            args = list(op.inputs.values())
            attrs = dict(op.attribs)
            if op.name == "l1_normalization":
                attrs["_p"] = 1
            fn = _cast_to(self._np(op.dtype)) if op.name == "cast" else OPERATORS[op.name]
            self._steps.append((fn, args, attrs, out_names, self._np(op.dtype)))
            self._kinds.append(op.name)
        self._fold_constants()
        self._fuse_convolutions()
        self._fuse_one_hot_selection()
        self._fuse_tree_steps()
        self._fuse_leaf_sums()
        self._inplace = self._plan_in_place()
        self._uses_blas = any(k in ("conv", "deconv", "matmul", "linear", "separable_conv", "fused_conv")
                              for k in self._kinds)
        self._program = self._compile()

    def _fold_constants(self) -> None:
        """Run once, now, every step whose operands are all constants (broadcast copies of variables, …)."""
        steps, kinds = [], []
        with np.errstate(all="ignore"):
            for step, kind in zip(self._steps, self._kinds):
                fn, args, attrs, outs, out_dtype = step
                names = [str(a) for a in _flatten(args) if type(a).__name__ == "Identifier"]
                if len(outs) == 1 and names and all(n in self._consts for n in names):
                    r = np.asarray(fn(*[_resolve(a, self._consts, self.dtype) for a in args], **attrs))
                    self._consts[outs[0]] = r.astype(out_dtype) if r.dtype.kind == "f" else r
                    continue
                steps.append(step)
                kinds.append(kind)
        self._steps, self._kinds = steps, kinds

    def _const_arg(self, arg: Any) -> Any:
        """The value of a constant operand (a constant tensor or a literal), or None."""
        if type(arg).__name__ == "Identifier":
            return self._consts.get(str(arg))
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return np.asarray(arg, self.dtype)
        return None

    def _fuse_convolutions(self) -> None:
        """Each convolution with constant filter and bias becomes a ConvKernel, which absorbs what only it feeds:
        a batch normalization with constant statistics (folded into the filter and bias now), then relu, then a
        max or average pooling over the spatial axes."""
        steps, kinds = list(self._steps), list(self._kinds)
        dropped: set[int] = set()
        consumers = self._consumers()  # indices stay valid: steps are replaced or dropped only at the end
        for i, kind in enumerate(kinds):
            if kind != "conv" or self.dtype.kind != "f":
                continue
            fn, args, attrs, outs, out_dtype = steps[i]
            w = self._const_arg(args[1])
            bias = self._const_arg(args[2]) if len(args) > 2 else np.zeros((), self.dtype)
            if w is None or bias is None or w.dtype != self.dtype or w.ndim < 3:
                continue
            kernel = ConvKernel(w, bias, **attrs)
            out = outs[0]

            def only_next(name: str, want: tuple[str, ...]) -> int | None:
                users = consumers.get(name, [])
                if len(users) != 1 or name in self.outputs or kinds[users[0]] not in want or users[0] in dropped:
                    return None
                return users[0]

            j = only_next(out, ("batch_normalization",))
            if j is not None and str(steps[j][1][0]) == out:
                stats = [self._const_arg(a) for a in steps[j][1][1:5]]
                if all(v is not None for v in stats):
                    mean, var, offset, scale = (np.broadcast_to(np.asarray(v, np.float64).reshape(-1),
                                                                (w.shape[0],)) for v in stats)
                    eps = float(steps[j][2].get("epsilon", 0.0))
                    factor = scale / np.sqrt(var + eps)
                    kernel.w = np.ascontiguousarray(
                        (w * factor.reshape((-1,) + (1,) * (w.ndim - 1))).astype(self.dtype))
                    kernel.bias = ((kernel.bias - mean) * factor + offset).astype(self.dtype)
                    out = steps[j][3][0]
                    dropped.add(j)
            j = only_next(out, ("relu",))
            if j is not None:
                kernel.relu = True
                out = steps[j][3][0]
                dropped.add(j)
            j = only_next(out, ("max_pool", "avg_pool"))
            if j is not None:
                pattrs = dict(steps[j][2])
                size = list(pattrs.get("size", []))
                stride = list(pattrs.get("stride", [])) or [1] * len(size)
                padding = [tuple(p) for p in pattrs.get("padding", [])]
                if len(size) == w.ndim and size[:2] == [1, 1] and stride[:2] == [1, 1] and \
                        (not padding or padding[:2] == [(0, 0), (0, 0)]):
                    kernel.pool = {"size": size, "border": pattrs.get("border", "constant"), "padding": padding,
                                   "stride": stride, "dilation": list(pattrs.get("dilation", [])),
                                   "kind": "max" if kinds[j] == "max_pool" else "avg"}
                    out = steps[j][3][0]
                    dropped.add(j)
            steps[i] = (kernel, [args[0]], {}, [out], out_dtype)
            kinds[i] = "fused_conv"
        self._steps = [st for j, st in enumerate(steps) if j not in dropped]
        self._kinds = [k for j, k in enumerate(kinds) if j not in dropped]

    def _const_name(self, value: np.ndarray, hint: str) -> str:
        name = f"__portable_{hint}_{len(self._consts)}"
        while name in self._consts:
            name += "_"
        self._consts[name] = value
        return name

    def _consumers(self) -> dict[str, list[int]]:
        users: dict[str, list[int]] = {}
        for i, (_, args, _, _, _) in enumerate(self._steps):
            for a in _flatten(args):
                if type(a).__name__ == "Identifier":
                    users.setdefault(str(a), []).append(i)
        return users

    def _fuse_one_hot_selection(self) -> None:
        """`sum_reduce(select(eq(i, arange(F)), x, 0.0), axes=[2])` -- how portable's tree traversal reads each
        row's feature in NNEF, which has no per-row gather -- becomes one `take_along_axis`."""
        producer, uses = self._graph_maps()
        drop: set[int] = set()
        for i, kind in enumerate(self._kinds):
            fn, args, attrs, outs, out_dtype = self._steps[i]
            if kind != "sum_reduce" or list(attrs.get("axes", [])) != [2]:
                continue
            w = producer.get(str(args[0]))
            if w is None or self._kinds[w] != "select" or uses.get(str(args[0])) != 1:
                continue
            cond, x, zero = self._steps[w][1]
            if type(zero).__name__ == "Identifier" or float(zero) != 0.0 or uses.get(str(cond)) != 1:
                continue
            e = producer.get(str(cond))
            if e is None or self._kinds[e] != "eq":
                continue
            idx, cols = (str(v) for v in self._steps[e][1])
            c = self._consts.get(cols)
            if c is None or c.ndim != 3 or c.shape[:2] != (1, 1) or \
                    not np.array_equal(c.ravel(), np.arange(c.shape[2])):
                continue
            ident = type(cond)
            self._steps[i] = (_take_feature, [ident(idx), x, ident(cols)], {}, outs, out_dtype)
            drop.update((w, e))
            # the feature ids usually come from a constant table indexed by each row's node: look them up as
            # integers (checked once, here) instead of comparing floats per call
            u = producer.get(idx)
            if u is None or self._kinds[u] != "unsqueeze" or list(self._steps[u][2].get("axes", [])) != [2]:
                continue
            g = producer.get(str(self._steps[u][1][0]))
            if g is None or self._kinds[g] != "gather" or int(self._steps[g][2].get("axis", 0)) != 0:
                continue
            table_name, node = (str(v) if type(v).__name__ == "Identifier" else None for v in self._steps[g][1])
            table = self._consts.get(table_name) if table_name else None
            if table is None or node is None or table.ndim != 1 or table.size == 0 or \
                    not np.array_equal(table, np.floor(table)) or table.min() < 0 or table.max() >= c.shape[2]:
                continue
            ints = self._const_name(table.astype(np.intp), "feature_ids")
            self._steps[i] = (_take_feature_by_node, [ident(node), x, ident(ints)], {}, outs, out_dtype)
            # the unsqueeze and the gather feeding it go too unless something else reads them (`eq` was the
            # unsqueeze's reader, and is gone)
            if uses.get(idx) == 1:
                drop.add(u)
                if uses.get(self._steps[g][3][0]) == 1:
                    drop.add(g)
        if drop:
            self._steps = [st for j, st in enumerate(self._steps) if j not in drop]
            self._kinds = [k for j, k in enumerate(self._kinds) if j not in drop]

    # -- tree traversals (portable's gather formulation of tree ensembles) ---------------------------------------
    def _graph_maps(self) -> tuple[dict[str, int], dict[str, int]]:
        producer = {outs[0]: i for i, (_, _, _, outs, _) in enumerate(self._steps) if len(outs) == 1}
        uses: dict[str, int] = {}
        for _, args, _, _, _ in self._steps:
            for a in _flatten(args):
                if type(a).__name__ == "Identifier":
                    uses[str(a)] = uses.get(str(a), 0) + 1
        for n in self.outputs:
            uses[n] = uses.get(n, 0) + 1
        return producer, uses

    def _table_gather(self, name: str, producer: dict[str, int], node: str | None = None) -> np.ndarray | None:
        """The constant 1-D table that step output `name` gathers (axis 0) by index `node` (any index if None)."""
        i = producer.get(name)
        if i is None or self._kinds[i] != "gather" or int(self._steps[i][2].get("axis", 0)) != 0:
            return None
        table, idx = self._steps[i][1]
        if type(table).__name__ != "Identifier" or type(idx).__name__ != "Identifier":
            return None
        if node is not None and str(idx) != node:
            return None
        t = self._consts.get(str(table))
        return t if t is not None and t.ndim == 1 else None

    def _fuse_tree_steps(self) -> None:
        """One level of the tree traversal -- pick each row's feature at its node, compare with the node's
        threshold (NaN routed by the node's flag), move to the true or false child -- as one step."""
        producer, uses = self._graph_maps()
        ident = None
        drop: set[int] = set()
        for i, kind in enumerate(self._kinds):
            if kind != "select" or i in drop:
                continue
            go, yes, no = (str(a) if type(a).__name__ == "Identifier" else None for a in self._steps[i][1])
            if go is None or yes is None or no is None or go not in producer:
                continue
            y_at = producer.get(yes)
            node = str(self._steps[y_at][1][1]) if y_at is not None and self._kinds[y_at] == "gather" else None
            t_yes = self._table_gather(yes, producer, node) if node else None
            t_no = self._table_gather(no, producer, node) if node else None
            if t_yes is None or t_no is None or t_yes.dtype.kind not in "iu" or len(t_yes) != len(t_no):
                continue
            chain = [producer[yes], producer[no]]
            g = producer[go]
            nan_table = None
            if self._kinds[g] == "or":  # le(v, thr) or (isnan(v) and nan_flag[node] > c)
                a, b = (str(v) for v in self._steps[g][1])
                le_at, and_at = producer.get(a), producer.get(b)
                if le_at is None or and_at is None or self._kinds[le_at] != "le" or self._kinds[and_at] != "and":
                    continue
                n_, gt_ = (str(v) for v in self._steps[and_at][1])
                not_at, gt_at = producer.get(n_), producer.get(gt_)
                if not_at is None or gt_at is None or self._kinds[not_at] != "not" or self._kinds[gt_at] != "gt":
                    continue
                eq_at = producer.get(str(self._steps[not_at][1][0]))
                flag, cut = self._steps[gt_at][1]
                flags = self._table_gather(str(flag), producer, node)
                cut_v = self._const_arg(cut)
                if eq_at is None or self._kinds[eq_at] != "eq" or flags is None or cut_v is None or \
                        cut_v.size != 1:
                    continue
                nan_table = flags > cut_v.reshape(())
                chain += [g, and_at, not_at, gt_at, eq_at, producer[str(flag)]]
                g = le_at
            if self._kinds[g] != "le":
                continue
            v, thr = (str(a) for a in self._steps[g][1])
            thresholds = self._table_gather(thr, producer, node)
            if nan_table is not None and [str(a) for a in self._steps[chain[6]][1]] != [v, v]:
                continue
            sq = producer.get(v)
            if thresholds is None or sq is None or self._kinds[sq] != "squeeze" or \
                    list(self._steps[sq][2].get("axes", [])) != [2]:
                continue
            tf = producer.get(str(self._steps[sq][1][0]))
            if tf is None or self._steps[tf][0] is not _take_feature_by_node or \
                    str(self._steps[tf][1][0]) != node:
                continue
            chain += [g, producer[thr], sq, tf]
            n_nodes = len(t_yes)
            if not (len(thresholds) == n_nodes and (nan_table is None or len(nan_table) == n_nodes)):
                continue
            internal = {self._steps[j][3][0] for j in chain}
            inside: dict[str, int] = {}
            for k in [*chain, i]:
                for a in _flatten(self._steps[k][1]):
                    inside[str(a)] = inside.get(str(a), 0) + 1
            if any(uses.get(name, 0) > inside.get(name, 0) for name in internal):
                continue  # an intermediate is read outside the level
            features = self._consts[str(self._steps[tf][1][2])]
            x = self._steps[tf][1][1]
            ident = type(self._steps[i][1][0])
            children = np.stack([t_no.astype(np.intp), t_yes.astype(np.intp)], axis=1).reshape(-1)
            step = _TreeLevel(features, thresholds.astype(self.dtype), children,
                              None if nan_table is None or not nan_table.any() else nan_table)
            self._steps[i] = (step, [ident(node), x], {}, self._steps[i][3], self._steps[i][4])
            self._kinds[i] = "tree_level"
            drop.update(chain)
        if drop:
            self._steps = [st for j, st in enumerate(self._steps) if j not in drop]
            self._kinds = [k for j, k in enumerate(self._kinds) if j not in drop]

    def _fuse_leaf_sums(self) -> None:
        """sum_reduce or mean_reduce(gather(values[M, K], node[N, T]), axes = [1]): one gather and one contiguous
        sum per target (numpy reduces a middle axis far slower than the last)."""
        producer, uses = self._graph_maps()
        for i, kind in enumerate(self._kinds):
            if kind not in ("sum_reduce", "mean_reduce") or list(self._steps[i][2].get("axes", [])) != [1]:
                continue
            src = str(self._steps[i][1][0])
            g = producer.get(src)
            if g is None or self._kinds[g] != "gather" or uses.get(src) != 1 or \
                    int(self._steps[g][2].get("axis", 0)) != 0:
                continue
            table, idx = self._steps[g][1]
            values = self._consts.get(str(table)) if type(table).__name__ == "Identifier" else None
            if values is None or values.ndim != 2 or type(idx).__name__ != "Identifier":
                continue
            columns = np.ascontiguousarray(values.T)
            step = _LeafSum(columns, kind == "mean_reduce" or bool(self._steps[i][2].get("normalize", False)))
            self._steps[i] = (step, [idx], {}, self._steps[i][3], self._steps[i][4])
            self._kinds[i] = "leaf_sum"
            self._steps[g] = (_nothing, [], {}, [f"__portable_dead_{g}"], self._steps[g][4])
            self._kinds[g] = "copy"

    def _plan_in_place(self) -> list[Any]:
        """For each step, the ufunc to run in place on its first operand, or None (view-aware last use)."""
        parent: dict[str, str] = {}

        def root(n: str) -> str:
            while parent.get(n, n) != n:
                n = parent[n]
            return n

        first_arg: list[str | None] = []
        last: dict[str, int] = {}
        for i, ((_, args, _, outs, _), kind) in enumerate(zip(self._steps, self._kinds)):
            names = [str(a) for a in _flatten(args) if type(a).__name__ == "Identifier"]
            if kind in _VIEW_OPS and names:
                parent[outs[0]] = root(names[0])
            for n in names:
                last[root(n)] = i
            first_arg.append(str(args[0]) if args and type(args[0]).__name__ == "Identifier" else None)
        for n in list(last):  # a view's later uses keep its base alive
            last[root(n)] = max(last[root(n)], last[n])
        pinned = {root(n) for n in [*self.inputs, *self.outputs, *self._consts]}
        plan = []
        for i, kind in enumerate(self._kinds):
            a = first_arg[i]
            ok = kind in UFUNCS and a is not None and root(a) not in pinned and last.get(root(a)) == i
            plan.append(UFUNCS[kind] if ok else None)
        return plan

    def _np(self, nnef_dtype: Any) -> Any:
        return {"scalar": self.dtype, "integer": np.int64, "logical": np.bool_}.get(str(nnef_dtype), self.dtype)

    @classmethod
    def from_files(cls, files: dict[str, bytes], *, dtype: str = "float32") -> Executor:
        """Parse graph.nnef and read the variables' `.dat` files."""
        from .reader import read_tensor_bytes

        graph = parse_graph(files["graph.nnef"].decode())
        variables = {}
        for op in graph.operations:
            if op.name == "variable":
                label = str(op.attribs["label"])
                variables[label] = read_tensor_bytes(files[label.lstrip("/") + ".dat"])
        return cls(graph, variables, dtype=dtype)

    def _compile(self) -> list[Callable[[dict[str, Any]], None]]:
        """One closure per step, its literal operands resolved once: running the graph is a loop of calls."""
        program = []
        for (fn, args, attrs, outs, out_dtype), ufunc in zip(self._steps, self._inplace):
            program.append(_compile_step(fn, [_operand(a, self.dtype) for a in args], attrs, outs,
                                         np.dtype(out_dtype), ufunc))
        return program

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by NNEF name for inputs by NNEF name (floats converted to the artifact's precision)."""
        env: dict[str, Any] = dict(self._consts)
        for name in self.inputs:
            env[name] = np.asarray(feeds[name]).astype(self._input_dtypes.get(name, self.dtype), copy=False)
        with np.errstate(all="ignore"), _one_blas_thread(self._uses_blas):
            for step in self._program:
                step(env)
        return {n: env[n] for n in self.outputs}


def _operand(arg: Any, dtype: np.dtype) -> tuple[str, Any]:
    """('name', tensor name) | ('value', literal resolved now) | ('list', [operands])."""
    if isinstance(arg, (list, tuple)):
        return "list", [_operand(a, dtype) for a in arg]
    if type(arg).__name__ == "Identifier":
        return "name", str(arg)
    return "value", _resolve(arg, {}, dtype)


def _fetch(op: tuple[str, Any], env: dict[str, Any]) -> Any:
    kind, v = op
    if kind == "name":
        return env[v]
    if kind == "value":
        return v
    return [_fetch(o, env) for o in v]


def _compile_step(fn: OpFn, ops: list[tuple[str, Any]], attrs: dict[str, Any], outs: list[str],
                  out_dtype: np.dtype, ufunc: Any) -> Callable[[dict[str, Any]], None]:
    single = len(outs) == 1
    out = outs[0] if single else None
    names = [v for k, v in ops if k == "name"] if all(k == "name" for k, _ in ops) else None

    def store(env: dict[str, Any], result: Any) -> None:
        if single:
            r = result if type(result) is np.ndarray else np.asarray(result)
            if r.dtype != out_dtype and r.dtype.kind == "f":
                r = r.astype(out_dtype)
            env[out] = r
        else:
            for n, r in zip(outs, result):
                env[n] = r

    if ufunc is not None:
        def step(env: dict[str, Any]) -> None:
            values = [_fetch(o, env) for o in ops]
            if _writable_like(values, out_dtype):
                if len(values) == 2:
                    a, b = _align(*values)
                    store(env, ufunc(a, b, out=a))
                else:
                    store(env, ufunc(values[0], out=values[0]))
            else:
                store(env, fn(*values, **attrs))
    elif names is not None and len(names) == 1:
        (name,) = names

        def step(env: dict[str, Any]) -> None:
            store(env, fn(env[name], **attrs))
    elif names is not None:
        def step(env: dict[str, Any]) -> None:
            store(env, fn(*[env[n] for n in names], **attrs))
    else:
        def step(env: dict[str, Any]) -> None:
            store(env, fn(*[_fetch(o, env) for o in ops], **attrs))
    return step


def parse_graph(text: str) -> Any:
    """Parse graph.nnef with the `nnef` parser, lowering the fragments the document defines (nnef-tools' erf,
    lp_pool, lstm_loop, depth_to_space, ...) into standard operators unless the executor runs them directly."""
    import re

    import nnef

    defined = set(re.findall(r"\bfragment\s+(\w+)", text))
    lowered = sorted(n for n in defined if n not in OPERATORS)
    if lowered:
        check_lowering(text, lowered)
    return nnef.parse_string(text, lowered=lowered)


_LOWERING_PROBE = """
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
cap = 4 << 30 if hard == resource.RLIM_INFINITY else min(4 << 30, hard)
resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
import nnef
graph = nnef.parse_string(sys.stdin.read(), lowered=sys.argv[1].split(","))
print(len(graph.operations))
"""
_LOWERED_OK: set[str] = set()  # sha256 of documents whose lowering was probed and finished


def check_lowering(text: str, lowered: list[str]) -> None:
    """Refuse a document whose fragments cannot be expanded safely, before the `nnef` C++ parser expands them in
    this process: a fragment that calls itself (directly or through others) makes it recurse until it crashes,
    and fragments that each call the previous one twice expand exponentially (hours, gigabytes). A call cycle
    among the document's fragments is found in the text; anything else the parser itself meets expanding them
    (loops over ranges included) is tried first in a child process bounded by `max_nnef_lowering_ms` and 4 GiB."""
    import hashlib
    import re
    import subprocess
    import sys

    from ...limits import LIMITS, LimitError

    key = hashlib.sha256(text.encode()).hexdigest() + ",".join(lowered)
    if key in _LOWERED_OK:
        return
    body = {}
    for m in re.finditer(r"\bfragment\s+(\w+)[^{;]*\{([^}]*)\}", text):
        body[m.group(1)] = set(re.findall(r"\b(\w+)\s*[(<]", m.group(2))) & set(lowered)
    color: dict[str, int] = {}  # 1: on the current call path, 2: done
    for start in sorted(body):
        if color.get(start):
            continue
        color[start], path, stack = 1, [start], [iter(sorted(body[start]))]
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                color[path.pop()] = 2
                stack.pop()
            elif color.get(callee) == 1:
                cycle = " -> ".join(path[path.index(callee):] + [callee])
                raise NNEFError(f"fragment '{callee}' calls itself ({cycle}): the NNEF parser would expand it "
                                "without end")
            elif not color.get(callee):
                color[callee] = 1
                path.append(callee)
                stack.append(iter(sorted(body.get(callee, ()))))
    limit = LIMITS.max_nnef_lowering_ms
    names = ", ".join(lowered[:4]) + (f" and {len(lowered) - 4} more" if len(lowered) > 4 else "")
    try:
        done = subprocess.run([sys.executable, "-c", _LOWERING_PROBE, ",".join(lowered)], input=text, text=True,
                              capture_output=True, timeout=limit / 1000.0)
    except subprocess.TimeoutExpired:
        raise LimitError(f"expanding the fragments ({names}) took longer than {limit:,} ms",
                         "max_nnef_lowering_ms") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        why = (f"the parser died (signal {-done.returncode})" if done.returncode < 0 else
               "it ran out of memory (4 GiB at most)" if "MemoryError" in done.stderr or "bad_alloc" in done.stderr else last)
        raise NNEFError(f"the NNEF parser cannot expand the fragments ({names}): {why}")
    _LOWERED_OK.add(key)


def _take_feature(idx: np.ndarray, x: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x[n, 0, idx[n, t, 0]] as [N, T, 1]; the select-and-sum it replaces when the shapes are unusual."""
    n_feat = cols.shape[2]
    if idx.ndim == 3 and idx.shape[2] == 1 and x.ndim == 3 and x.shape[1] == 1 and x.shape[2] == n_feat and \
            x.shape[0] == idx.shape[0]:
        k = idx[:, :, 0]
        if k.size == 0 or (k.min() >= 0 and k.max() < n_feat and np.array_equal(k, np.floor(k))):
            return np.take_along_axis(x[:, 0, :], k.astype(np.intp), axis=1)[:, :, None]
    picked = np.where(np.equal(*_align(idx, cols)), x, np.zeros((), x.dtype))
    return np.sum(picked, axis=2, keepdims=True)


def _nothing(**_: Any) -> np.ndarray:
    return np.zeros(0)


class _TreeLevel:
    """One step down every tree for every row: node [N, T] -> child [N, T]."""

    def __init__(self, features: np.ndarray, thresholds: np.ndarray, children: np.ndarray,
                 nan_true: np.ndarray | None) -> None:
        self.features, self.thresholds, self.children, self.nan_true = features, thresholds, children, nan_true

    def __call__(self, node: Any, x: Any, **_: Any) -> np.ndarray:
        node = np.asarray(node)
        if node.dtype != np.intp:
            node = node.astype(np.intp)
        n_nodes = len(self.thresholds)
        if not (node.ndim == 2 and x.ndim == 3 and x.shape[1] == 1 and x.shape[0] == node.shape[0]) or \
                (node.size and (node.min() < 0 or node.max() >= n_nodes)):
            raise NNEFError(f"a tree traversal step got node indices outside 0..{n_nodes - 1} or a feature "
                            f"tensor of shape {list(x.shape)}")
        n, f = x.shape[0], x.shape[2]
        flat = np.ascontiguousarray(x[:, 0, :]).reshape(-1)
        k = np.take(self.features, node)
        k += (np.arange(n, dtype=np.intp) * f)[:, None]
        v = np.take(flat, k)
        go = np.less_equal(v, np.take(self.thresholds, node))
        if self.nan_true is not None:
            missing = np.isnan(v)
            if missing.any():
                go |= missing & np.take(self.nan_true, node)
        node2 = node + node  # child pairs are stored (false, true) per node
        node2 += go
        return np.take(self.children, node2).astype(np.int64, copy=False)


class _LeafSum:
    def __init__(self, columns: np.ndarray, normalize: bool) -> None:
        self.columns, self.normalize = columns, normalize

    def __call__(self, node: Any, **_: Any) -> np.ndarray:
        node = np.asarray(node)
        if node.ndim != 2:
            values = np.take(self.columns.T, node, axis=0)
            return (np.mean if self.normalize else np.sum)(values, axis=1, keepdims=True)
        out = np.empty((node.shape[0], 1, self.columns.shape[0]), self.columns.dtype)
        for j, col in enumerate(self.columns):
            picked = np.take(col, node)
            out[:, 0, j] = picked.mean(axis=1) if self.normalize else picked.sum(axis=1)
        return out


def _take_feature_by_node(node: np.ndarray, x: np.ndarray, features: np.ndarray) -> np.ndarray:
    """x[n, 0, features[node[n, t]]] as [N, T, 1]: each row's feature at each tree's current node."""
    node = np.asarray(node)
    if node.ndim == 2 and x.ndim == 3 and x.shape[1] == 1 and x.shape[0] == node.shape[0] and node.size and \
            node.dtype.kind in "iu" and node.min() >= 0 and node.max() < len(features):
        n, f = x.shape[0], x.shape[2]
        flat = np.ascontiguousarray(x[:, 0, :]).reshape(-1)
        k = np.take(features, node)
        k += (np.arange(n, dtype=np.intp) * f)[:, None]
        return np.take(flat, k)[:, :, None]
    # anything unusual: the selection it replaces
    ids = np.take(features, node).astype(x.dtype)[..., None]
    return _take_feature(ids, x, np.arange(x.shape[2], dtype=x.dtype).reshape(1, 1, -1))


def _writable_like(values: list[Any], dtype: Any) -> bool:
    """The first operand can take the result: a writable array of the result's dtype and shape."""
    a = values[0]
    if not isinstance(a, np.ndarray) or not a.flags.writeable or a.dtype != dtype or len(values) > 2 or \
            a.dtype.kind != "f":
        return False
    if len(values) == 1:
        return True
    x, y = _align(a, values[1])
    try:
        return np.broadcast_shapes(x.shape, y.shape) == x.shape and np.result_type(x, y) == a.dtype
    except ValueError:
        return False


_BLAS: Any = None


def _one_blas_thread(needed: bool = True) -> Any:
    """BLAS on one thread while the graph runs: these matrices are small (features x hidden units, a chunk of
    im2col columns), and OpenBLAS 0.3.31's threads made a 10,000 x 20 x 64 product 10x slower on a shared 2-core
    machine. Uses threadpoolctl (installed with scikit-learn) when present, through its per-library controllers
    (a few microseconds, where `ThreadpoolController.limit` costs tens); the limit is scoped to this call."""
    global _BLAS
    import contextlib

    if not needed:
        return contextlib.nullcontext()
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # not installed, or an unknown BLAS it cannot drive
            _BLAS = []
    return _BlasLimit(_BLAS) if _BLAS else contextlib.nullcontext()


class _BlasLimit:
    """Set every BLAS to one thread on entry and back to what it had on exit."""

    def __init__(self, libs: list[Any]) -> None:
        self.libs = libs
        self.before: list[int] = []

    def __enter__(self) -> None:
        self.before = [lib.get_num_threads() for lib in self.libs]
        for lib, n in zip(self.libs, self.before):
            if n != 1:
                lib.set_num_threads(1)

    def __exit__(self, *exc: Any) -> None:
        for lib, n in zip(self.libs, self.before):
            if n != 1:
                lib.set_num_threads(n)


def _cast_to(dtype: Any) -> OpFn:
    return lambda x, **_: np.asarray(x).astype(dtype)


def _flatten(values: list[Any]) -> list[Any]:
    out = []
    for v in values:
        out.extend(_flatten(v) if isinstance(v, (list, tuple)) else [v])
    return out


def _resolve(arg: Any, env: dict[str, Any], dtype: np.dtype) -> Any:
    """An operator argument: a tensor by name, a literal, or a list of either."""
    if isinstance(arg, (list, tuple)):
        return [_resolve(a, env, dtype) for a in arg]
    if type(arg).__name__ == "Identifier":
        return env[str(arg)]
    if isinstance(arg, bool):
        return np.asarray(arg)
    if isinstance(arg, float):
        return np.asarray(arg, dtype=dtype)
    if isinstance(arg, int):
        return np.asarray(arg, dtype=np.int64)
    return arg
