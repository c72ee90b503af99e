"""portable's numpy executor for the NNEF operators that portable's ONNX -> NNEF route emits.

It computes in the artifact's precision (`scalar` tensors as float32 or float64, `integer` as int64, `logical`
as bool) and runs on any batch size: the batch in `external(shape = ...)` is where nnef-tools needed a number,
not a limit. Operators follow the NNEF 1.0 specification: shapes carry implicit trailing singleton dimensions, so
a lower-rank operand of a binary operator is padded on the right, not on the left as numpy does.

The operator table is one function per operator; an operator missing from it is reported with the list of
those supported, before anything runs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import NNEFError

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
OPERATORS["max_reduce"] = _reducer(np.max)
OPERATORS["min_reduce"] = _reducer(np.min)
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
    e = np.subtract(x, np.max(x, axis=ax, keepdims=True))
    np.exp(e, out=e)
    e /= np.sum(e, axis=ax, keepdims=True)
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
            raise NNEFError(f"portable's NNEF executor does not implement {', '.join(missing)}; it implements "
                            f"{', '.join(sorted(OPERATORS))}, cast, constant, external and variable")
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
        self._fuse_one_hot_selection()
        self._inplace = self._plan_in_place()

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

    def _fuse_one_hot_selection(self) -> None:
        """`sum_reduce(select(eq(i, arange(F)), x, 0.0), axes=[2])` -- how portable's tree traversal reads each
        row's feature in NNEF, which has no per-row gather -- becomes one `take_along_axis`."""
        producer = {outs[0]: i for i, (_, _, _, outs, _) in enumerate(self._steps) if len(outs) == 1}
        uses: dict[str, int] = {}
        for _, args, _, _, _ in self._steps:
            for a in _flatten(args):
                if type(a).__name__ == "Identifier":
                    uses[str(a)] = uses.get(str(a), 0) + 1
        for n in self.outputs:
            uses[n] = uses.get(n, 0) + 1
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
        if drop:
            self._steps = [st for j, st in enumerate(self._steps) if j not in drop]
            self._kinds = [k for j, k in enumerate(self._kinds) if j not in drop]

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
        import nnef

        from .reader import read_tensor_bytes

        graph = nnef.parse_string(files["graph.nnef"].decode())
        variables = {}
        for op in graph.operations:
            if op.name == "variable":
                label = str(op.attribs["label"])
                variables[label] = read_tensor_bytes(files[label.lstrip("/") + ".dat"])
        return cls(graph, variables, dtype=dtype)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by NNEF name for inputs by NNEF name (floats converted to the artifact's precision)."""
        env: dict[str, Any] = dict(self._consts)
        for name in self.inputs:
            env[name] = np.asarray(feeds[name]).astype(self._input_dtypes.get(name, self.dtype), copy=False)
        with np.errstate(all="ignore"), _one_blas_thread():
            for (fn, args, attrs, outs, out_dtype), ufunc in zip(self._steps, self._inplace):
                values = [_resolve(a, env, self.dtype) for a in args]
                if ufunc is not None and _writable_like(values, out_dtype):
                    result = ufunc(*_align(*values), out=_align(*values)[0]) if len(values) == 2 else \
                        ufunc(values[0], out=values[0])
                else:
                    result = fn(*values, **attrs)
                if len(outs) == 1:
                    r = np.asarray(result)
                    if r.dtype != out_dtype and r.dtype.kind == "f":
                        r = r.astype(out_dtype)
                    env[outs[0]] = r
                else:
                    for n, r in zip(outs, result):
                        env[n] = r
        return {n: env[n] for n in self.outputs}


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


def _writable_like(values: list[Any], dtype: Any) -> bool:
    """The first operand can take the result: a writable array of the result's dtype and shape."""
    a = values[0]
    if not isinstance(a, np.ndarray) or not a.flags.writeable or a.dtype != dtype or len(values) > 2:
        return False
    if len(values) == 1:
        return True
    x, y = _align(a, values[1])
    try:
        return np.broadcast_shapes(x.shape, y.shape) == x.shape and np.result_type(x, y) == a.dtype
    except ValueError:
        return False


_CONTROLLER: Any = None


def _one_blas_thread() -> Any:
    """BLAS on one thread while the graph runs: these matrices are small (features x hidden units), and
    OpenBLAS 0.3.31's threads made a 10,000 x 20 x 64 product 10x slower on a shared 2-core machine. Uses
    threadpoolctl (installed with scikit-learn) when present; scopes the limit to this call only."""
    global _CONTROLLER
    import contextlib

    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        except ImportError:
            _CONTROLLER = False
    return _CONTROLLER.limit(limits=1, user_api="blas") if _CONTROLLER else contextlib.nullcontext()


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
