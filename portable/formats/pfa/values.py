"""How the engine holds a batch of PFA values, and the backend interface its operations go through.

A `Val` is either a constant (the same for every row: document literals, cells, anything computed only from
them; held as plain Python data or numpy arrays) or batched (one value per row): a tensor `[N]` for a
primitive, `[N, D]` for an array of primitives, `[N, K, D]` for an array of arrays, a `dict` of Vals for a record
or a map, a `list` of Vals for an array of other things. The engine folds constants with numpy and sends
everything batched to a `Backend`: `NumpyBackend` computes, the ONNX compiler's backend emits graph nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .types import AvroType


@dataclass
class Val:
    type: AvroType
    data: Any
    const: bool
    origin: Any = None  # provenance a backend may exploit (tree-walk results that form a forest)


@dataclass
class TreeSpec:
    """One decision tree in array form, with leaves as self-looping nodes so that a walk of `depth` steps
    from node 0 ends on a leaf for every row.

    Node i tests `X[:, feature[i]] <op mode[i]> threshold[i]` (modes as ONNX TreeEnsemble: 0 `<=`, 1 `<`,
    2 `>=`, 3 `>`, 4 `==`, 5 `!=`), then goes to `true_child[i]` or `false_child[i]`; `leaf[i]` is the leaf
    value index of a leaf node and -1 for a test node.
    """

    feature: np.ndarray
    mode: np.ndarray
    threshold: np.ndarray
    true_child: np.ndarray
    false_child: np.ndarray
    leaf: np.ndarray
    depth: int
    columns: list[Any] = field(default_factory=list)  # keys of the feature columns, in order

    @property
    def is_leaf(self) -> np.ndarray:
        return self.leaf >= 0


MODES = {"<=": 0, "<": 1, ">=": 2, ">": 3, "==": 4, "!=": 5}
_CMP = {0: np.less_equal, 1: np.less, 2: np.greater_equal, 3: np.greater, 4: np.equal, 5: np.not_equal}


def _erf(x: Any) -> Any:
    from scipy import special  # imported on use: loading the registry stays numpy-only

    return special.erf(x)


class NumpyBackend:
    """Computes every operation at once over the batch with numpy."""

    name = "numpy"
    float_dtype = "float64"

    def __init__(self, n: int = 0) -> None:
        self.n = n

    # the operation table: name -> numpy function; attributes as keyword arguments
    OPS: dict[str, Any] = {
        "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide, "pow": np.power,
        "mod": np.mod, "rem": np.fmod, "neg": np.negative, "abs": np.abs, "exp": np.exp, "expm1": np.expm1,
        "log": np.log, "log10": np.log10, "log1p": np.log1p, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
        "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
        "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
        "erf": _erf, "sign": np.sign, "isnan": np.isnan, "isinf": np.isinf, "hypot": np.hypot,
        "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
        "ge": np.greater_equal, "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor,
        "not": np.logical_not, "minimum": np.minimum, "maximum": np.maximum, "where": np.where,
        "bitand": np.bitwise_and, "bitor": np.bitwise_or, "bitxor": np.bitwise_xor, "bitnot": np.invert,
        "floordiv": np.floor_divide, "copysign": np.copysign, "rint": np.rint,
    }

    def op(self, name: str, *args: Any) -> Any:
        with np.errstate(all="ignore"):
            return self.OPS[name](*args)

    def cast(self, x: Any, dtype: str) -> Any:
        a = np.asarray(x)
        if dtype == "str":
            return a if a.dtype.kind == "U" else a.astype(np.str_)
        return a.astype(dtype, copy=False)

    def reduce(self, name: str, x: Any, axis: int = -1) -> Any:
        with np.errstate(all="ignore"):
            if name in ("argmax", "argmin"):
                return getattr(np, name)(x, axis=axis).astype(np.int64)
            return getattr(np, name)(x, axis=axis)

    def argsort(self, x: Any, k: int) -> Any:
        """Indexes of the k smallest values along the last axis, smallest first (stable)."""
        return np.argsort(x, axis=-1, kind="stable")[..., :k].astype(np.int64)

    def cumsum(self, x: Any, axis: int = -1) -> Any:
        return np.cumsum(x, axis=axis)

    def matmul(self, x: Any, w: Any) -> Any:
        return np.matmul(x, w)

    def stack(self, xs: list[Any], axis: int = -1) -> Any:
        return np.stack([np.broadcast_to(x, np.broadcast_shapes(*[np.shape(v) for v in xs])) for x in xs],
                        axis=axis)

    def concat(self, xs: list[Any], axis: int = -1) -> Any:
        return np.concatenate(xs, axis=axis)

    def unsqueeze(self, x: Any, axis: int) -> Any:
        return np.expand_dims(x, axis)

    def take(self, x: Any, index: int, axis: int = -1) -> Any:
        return np.take(x, index, axis=axis)

    def slice(self, x: Any, start: int, end: int, axis: int = -1) -> Any:
        sl = [slice(None)] * np.ndim(x)
        sl[axis] = slice(start, end)
        return x[tuple(sl)]

    def gather(self, table: np.ndarray, idx: Any) -> Any:
        """`table[idx]`: rows of a constant table chosen by a batched index."""
        return np.asarray(table)[idx]

    def take_along(self, x: Any, idx: Any) -> Any:
        """`x[n, idx[n]]` for a batched array `x` `[N, D]` and index `[N]`."""
        return np.take_along_axis(x, np.asarray(idx)[:, None], axis=1)[:, 0]

    def transpose(self, x: Any) -> Any:
        return np.swapaxes(x, -1, -2)

    def length(self, x: Any) -> Any:
        return np.full(np.shape(x)[0], np.shape(x)[-1], dtype=np.int64)

    def broadcast(self, const: Any, dtype: str) -> Any:
        c = np.asarray(const).astype(dtype if dtype != "str" else np.str_)
        return np.broadcast_to(c, (self.n,) + c.shape).copy()

    def isin(self, x: Any, values: list[Any]) -> Any:
        return np.isin(x, np.asarray(values))

    def tree_walk(self, spec: TreeSpec, X: Any) -> Any:
        """Leaf value index `[N]`: all rows descend one level per step (level-synchronous gathering)."""
        n, f = X.shape
        flat = np.ascontiguousarray(X).ravel()
        base = np.arange(n, dtype=np.int64) * f
        node = np.zeros(n, dtype=np.int64)
        children = np.stack([spec.false_child, spec.true_child], axis=1).ravel()  # child of i is [2i + cond]
        internal = ~spec.is_leaf
        modes = np.unique(spec.mode[internal]) if internal.any() else np.array([0])
        for _ in range(spec.depth):
            x = flat[base + spec.feature[node]]
            t = spec.threshold[node]
            if len(modes) == 1:
                cond = _CMP[int(modes[0])](x, t)
            else:
                m = spec.mode[node]
                cond = np.zeros(n, dtype=bool)
                for k in modes:
                    sel = m == k
                    cond[sel] = _CMP[int(k)](x[sel], t[sel])
            node = children[2 * node + cond]
        return spec.leaf[node]

    def forest_votes(self, origins: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Votes `[N, C]` of a forest from the leaf indexes its walks reached; classes sorted ascending."""
        classes = np.unique(np.concatenate([np.asarray(o[3]) for o in origins]))
        n = len(origins[0][6])
        c = len(classes)
        base = np.arange(n, dtype=np.int64) * c
        counts = np.zeros(n * c, dtype=np.int64)
        for o in origins:
            code_of_leaf = np.searchsorted(classes, np.asarray(o[3]))
            counts += np.bincount(base + code_of_leaf[o[6]], minlength=n * c)
        return counts.reshape(n, c).astype(np.float64), classes
