"""`pfa -> onnx`: compile a PFA document's expressions into an ONNX graph.

The compiler runs portable's PFA evaluator once with `OnnxBackend`, which emits graph nodes where the numpy
engine would compute: constants fold in numpy and become initializers, `if` becomes `Where`, tree walks become
one `ai.onnx.ml` `TreeEnsemble` (opset 5, double thresholds), and a forest written as `a.map` over a cell of
trees followed by `a.mode` becomes one ensemble that counts votes. Doubles stay float64 by default so the graph
computes what PFA's double semantics say; `dtype="float32"` makes double inputs, outputs and arithmetic float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import onnx_builder
from ..errors import ConversionError, PortableError, UnsupportedModelError
from ..formats.onnx import OnnxModel, check_proto, set_provenance
from ..formats.pfa.engine import Evaluator
from ..formats.pfa.model import PfaModel
from ..formats.pfa.values import TreeSpec
from ..registry import ConvertOptions, converter, require

OPSET = 21
ML_OPSET = 5


# -- functions that need care near 0, at signed zeros or at infinities (exact to a few ulps, as numpy) -------------
def _log1p(o: Any, x: Any) -> Any:
    """log(1 + x) without cancellation (Goldberg's trick): u = 1 + x; x when u == 1, else log(u) x / (u - 1)."""
    u = o.node("Add", o.const(1.0), x)
    um1 = o.node("Sub", u, o.const(1.0))
    safe = o.node("Where", o.node("Equal", um1, o.const(0.0)), o.const(1.0), um1)
    r = o.node("Mul", o.node("Log", u), o.node("Div", x, safe))
    r = o.node("Where", o.node("IsInf", u), o.node("Log", u), r)
    return o.node("Where", o.node("Equal", u, o.const(1.0)), x, r)


def _expm1(o: Any, x: Any) -> Any:
    """exp(x) - 1 without cancellation (Kahan's trick): u = exp(x); x when u == 1, -1 when u - 1 == -1, else
    (u - 1) x / log(u)."""
    u = o.node("Exp", x)
    um1 = o.node("Sub", u, o.const(1.0))
    lu = o.node("Log", u)
    safe = o.node("Where", o.node("Equal", lu, o.const(0.0)), o.const(1.0), lu)
    r = o.node("Mul", um1, o.node("Div", x, safe))
    r = o.node("Where", o.node("IsInf", u), u, r)
    r = o.node("Where", o.node("Equal", um1, o.const(-1.0)), o.const(-1.0), r)
    return o.node("Where", o.node("Equal", u, o.const(1.0)), x, r)


def _signbit(o: Any, x: Any) -> Any:
    """x < 0, or x is -0.0 (1/x is -inf)."""
    neg_zero = o.node("And", o.node("Equal", x, o.const(0.0)),
                      o.node("Less", o.node("Div", o.const(1.0), x), o.const(0.0)))
    return o.node("Or", o.node("Less", x, o.const(0.0)), neg_zero)


def _copysign(o: Any, mag: Any, sign: Any) -> Any:
    """|mag| times +-1 (a product: onnxruntime's Where drops the sign of a -0.0 it selects)."""
    neg = o.node("Cast", _signbit(o, sign), to=_float_enum(o))
    return o.node("Mul", o.node("Abs", mag), o.node("Sub", o.const(1.0), o.node("Mul", o.const(2.0), neg)))


def _float_enum(o: Any) -> int:
    """The ONNX element type of the float dtype `o` computes in."""
    import onnx

    return onnx.TensorProto.DOUBLE if o.float64 else onnx.TensorProto.FLOAT


def _int_copysign(o: Any, mag: Any, sign: Any) -> Any:
    a = o.node("Abs", mag)
    zero = o.node("Sub", sign, sign)
    return o.node("Where", o.node("Less", sign, zero), o.node("Neg", a), a)


def _atan2(o: Any, y: Any, x: Any) -> Any:
    """atan2 as numpy: atan(y/x) moved by +-pi for x < 0 (the side from y's sign bit), the axes and the signed
    zeros and infinities as C99 says."""
    base = onnx_builder.atan(o, o.node("Div", y, x))
    pi = o.const(np.pi)
    ysign = _signbit(o, y)
    xneg = _signbit(o, x)
    shifted = o.node("Where", ysign, o.node("Sub", base, pi), o.node("Add", base, pi))
    r = o.node("Where", xneg, shifted, base)
    half = _copysign(o, o.const(np.pi / 2), y)
    r = o.node("Where", o.node("Equal", x, o.const(0.0)), half, r)  # x = +-0, y != 0
    both_zero = o.node("And", o.node("Equal", x, o.const(0.0)), o.node("Equal", y, o.const(0.0)))
    r = o.node("Where", both_zero, o.node("Where", xneg, _copysign(o, pi, y), y), r)
    both_inf = o.node("And", o.node("IsInf", x), o.node("IsInf", y))
    corner = o.node("Where", xneg, o.const(3 * np.pi / 4), o.const(np.pi / 4))
    r = o.node("Where", both_inf, _copysign(o, corner, y), r)
    x_inf = o.node("And", o.node("IsInf", x), o.node("Not", o.node("IsInf", y)))
    r = o.node("Where", x_inf, o.node("Where", xneg, pi, o.const(0.0)), r)
    # atan2(y, x) has the sign of y, zeros included: restore it by a product (Where drops the sign of -0.0)
    return o.node("Where", o.node("IsNaN", r), r, _copysign(o, r, y))


_PRECISE = {"log1p": _log1p, "expm1": _expm1, "atan2": _atan2, "copysign": _copysign}


@dataclass(frozen=True)
class Sym:
    """A tensor of the graph being built: its name and numpy dtype name (`str` for strings)."""

    name: str
    dtype: str


# elementwise operators: portable op name -> ONNX op type
_SIMPLE = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "neg": "Neg", "abs": "Abs",
           "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin",
           "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "tanh": "Tanh", "floor": "Floor",
           "ceil": "Ceil", "erf": "Erf", "sign": "Sign", "minimum": "Min", "maximum": "Max", "rint": "Round",
           "bitand": "BitwiseAnd", "bitor": "BitwiseOr", "bitxor": "BitwiseXor", "bitnot": "BitwiseNot"}
_BOOL_OUT = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
             "and": "And", "or": "Or", "xor": "Xor", "not": "Not", "isnan": "IsNaN", "isinf": "IsInf"}
_REDUCE = {"sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin", "mean": "ReduceMean", "prod": "ReduceProd"}


# numpy names of PFA's functions composed by portable.onnx_builder in float64, and ONNX ops with bool outputs
_COMPOSED64 = {"erf": "erf", "sinh": "sinh", "cosh": "cosh", "atan": "arctan", "asin": "arcsin", "acos": "arccos"}
_BOOL_OPS = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN",
             "IsInf"}


class OnnxBackend:
    """Emits ONNX nodes for the evaluator's operations (same interface as `NumpyBackend`)."""

    name = "onnx"

    def __init__(self, float_dtype: str) -> None:
        self.onnx = require("onnx", purpose="PFA to ONNX")
        self.float_dtype = float_dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.batch_ref: Sym | None = None
        self._count = 0
        self._consts: dict[Any, Sym] = {}
        self.forest_ensembles = 0

    # -- plumbing --------------------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def elem_type(self, dtype: str) -> int:
        tp = self.onnx.TensorProto
        return {"float64": tp.DOUBLE, "float32": tp.FLOAT, "int64": tp.INT64, "bool": tp.BOOL, "str": tp.STRING,
                "int32": tp.INT32}[dtype]

    def node(self, op: str, inputs: list[Any], dtype: str, *, domain: str = "", n_out: int = 1,
             **attrs: Any) -> Any:
        names = [i.name if isinstance(i, Sym) else i for i in inputs]
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op, names, outs, name=outs[0], domain=domain or None,
                                                     **attrs))
        syms = [Sym(o, dtype) for o in outs]
        return syms[0] if n_out == 1 else syms

    def lift(self, x: Any, like: str | None = None) -> Sym:
        """A constant as an initializer (cast to `like`'s dtype when both are numbers of different kinds)."""
        if isinstance(x, Sym):
            return x
        a = np.asarray(x)
        if a.dtype.kind in "US":
            dtype = "str"
        elif a.dtype.kind == "b":
            dtype = "bool"
        elif like is not None and like not in ("str", "bool") and a.dtype.kind in "fiu":
            # a constant takes the dtype of the tensor it meets, except that a fraction never becomes an int
            # (the graph would then fail onnx.checker loudly instead of truncating silently)
            dtype = self.float_dtype if a.dtype.kind == "f" and not like.startswith("float") else like
        else:
            dtype = {"f": self.float_dtype if a.dtype == np.float64 else a.dtype.name, "i": "int64",
                     "u": "int64"}[a.dtype.kind]
        if dtype != "str":
            a = a.astype(dtype)
        key = (dtype, a.shape, a.tobytes() if dtype != "str" else tuple(a.ravel().tolist()))
        if key in self._consts:
            return self._consts[key]
        name = self.fresh("const")
        h = self.onnx.helper
        if dtype == "str":
            t = h.make_tensor(name, self.onnx.TensorProto.STRING, a.shape,
                              [s.encode("utf-8") for s in a.ravel().tolist()])
        else:
            t = self.onnx.numpy_helper.from_array(a, name)
        self.initializers.append(t)
        s = Sym(name, dtype)
        self._consts[key] = s
        return s

    def _operands(self, args: tuple[Any, ...]) -> list[Sym]:
        like = next((a.dtype for a in args if isinstance(a, Sym) and a.dtype != "bool"), None)
        return [self.lift(a, like) for a in args]

    def ints(self, values: list[int]) -> Sym:
        return self.lift(np.asarray(values, dtype=np.int64))

    # -- the NumpyBackend interface ---------------------------------------------------------------------------
    def op(self, name: str, *args: Any) -> Sym:
        if name == "where":
            c, a, b = args
            like = next((x.dtype for x in (a, b) if isinstance(x, Sym)), None)
            return self.node("Where", [self.lift(c), self.lift(a, like), self.lift(b, like)],
                             like or self.lift(a).dtype)
        ops = self._operands(args)
        dt = ops[0].dtype
        if any(o.dtype == "str" for o in ops) and name not in ("eq", "ne"):
            raise UnsupportedModelError(f"the string operation '{name}' has no ONNX operator (ONNX compares "
                                        "strings for equality only)")
        if name in _PRECISE:
            return _PRECISE[name](self.ops(dt), *ops) if name != "copysign" or not dt.startswith("int") else \
                _int_copysign(self.ops(dt), *ops)
        if name in ("tan", "log10", "log1p", "expm1") or (dt == "float64" and name in _COMPOSED64):
            # formulas shared with the other ONNX writers (portable.onnx_builder): no Tan kernel in onnxruntime
            # 1.32, and no float64 Erf/Sinh/Cosh/Atan/Asin/Acos
            return onnx_builder.unary(self.ops(dt), _COMPOSED64.get(name, name), ops[0])
        if name in _SIMPLE:
            return self.node(_SIMPLE[name], ops, dt)
        if name in _BOOL_OUT:
            return self.node(_BOOL_OUT[name], ops, "bool")
        if name == "ne":
            return self.node("Not", [self.node("Equal", ops, "bool")], "bool")
        if name == "hypot":
            sq = [self.node("Mul", [o, o], dt) for o in ops]
            return self.node("Sqrt", [self.node("Add", sq, dt)], dt)
        if name == "mod":
            if dt.startswith("int"):
                return self.node("Mod", ops, dt, fmod=0)
            # exact: C fmod, then moved into the divisor's sign as Python's and numpy's mod do
            r = self.node("Mod", ops, dt, fmod=1)
            zero = self.lift(0.0, dt)
            nonzero = self.node("Not", [self.node("Equal", [r, zero], "bool")], "bool")
            differ = self.node("Xor", [self.node("Less", [r, zero], "bool"),
                                       self.node("Less", [ops[1], zero], "bool")], "bool")
            fix = self.node("And", [nonzero, differ], "bool")
            return self.node("Where", [fix, self.node("Add", [r, ops[1]], dt), r], dt)
        if name == "rem":
            return self.node("Mod", ops, dt, fmod=1)
        if name == "floordiv":
            d = [self.cast(o, "float64") for o in ops]
            return self.cast(self.node("Floor", [self.node("Div", d, "float64")], "float64"), dt)
        raise UnsupportedModelError(f"the operation '{name}' has no ONNX translation in portable yet")

    def ops(self, dtype: str) -> onnx_builder.Ops:
        """This backend as the shared builder's interface, computing in `dtype`."""
        def node(op: str, *xs: Any, **attrs: Any) -> Sym:
            return self.node(op, list(xs), "bool" if op in _BOOL_OPS else dtype, **attrs)

        return onnx_builder.Ops(node=node, const=lambda v: self.lift(np.asarray(v, dtype=dtype), dtype),
                                float64=dtype == "float64", int_const=self.lift)

    def cast(self, x: Any, dtype: str) -> Any:
        if not isinstance(x, Sym):
            return np.asarray(x).astype(dtype if dtype != "str" else np.str_)
        if x.dtype == dtype:
            return x
        if dtype == "str" or x.dtype == "str":
            raise UnsupportedModelError(f"converting {x.dtype} to {dtype} has no exact ONNX translation")
        return self.node("Cast", [x], dtype, to=self.elem_type(dtype))

    def reduce(self, name: str, x: Any, axis: int = -1) -> Sym:
        x = self.lift(x)
        if name in ("argmax", "argmin"):
            return self.node("ArgMax" if name == "argmax" else "ArgMin", [x], "int64", axis=axis, keepdims=0,
                             select_last_index=0)
        return self.node(_REDUCE[name], [x, self.ints([axis])], x.dtype, keepdims=0)

    def matmul(self, x: Any, w: Any) -> Sym:
        a, b = self._operands((x, w))
        return self.node("MatMul", [a, b], a.dtype)

    def unsqueeze(self, x: Any, axis: int) -> Sym:
        x = self.lift(x)
        return self.node("Unsqueeze", [x, self.ints([axis])], x.dtype)

    def stack(self, xs: list[Any], axis: int = -1) -> Sym:
        syms = self._operands(tuple(xs))
        if any(not isinstance(x, Sym) for x in xs):
            syms = [s if isinstance(x, Sym) else self.broadcast(np.asarray(x), s.dtype) for x, s in zip(xs, syms)]
        parts = [self.unsqueeze(s, axis) for s in syms]
        return self.node("Concat", parts, syms[0].dtype, axis=axis)

    def concat(self, xs: list[Any], axis: int = -1) -> Sym:
        syms = self._operands(tuple(xs))
        return self.node("Concat", syms, syms[0].dtype, axis=axis)

    def take(self, x: Any, index: int, axis: int = -1) -> Sym:
        x = self.lift(x)
        return self.node("Gather", [x, self.lift(np.asarray(index, dtype=np.int64))], x.dtype, axis=axis)

    def slice(self, x: Any, start: int, end: int, axis: int = -1) -> Sym:
        x = self.lift(x)
        return self.node("Slice", [x, self.ints([start]), self.ints([end]), self.ints([axis])], x.dtype)

    def gather(self, table: Any, idx: Any) -> Sym:
        t = self.lift(np.asarray(table) if not isinstance(table, Sym) else table)
        return self.node("Gather", [t, self.lift(idx)], t.dtype, axis=0)

    def take_along(self, x: Any, idx: Any) -> Sym:
        x = self.lift(x)
        i = self.unsqueeze(idx, -1)
        return self.node("Squeeze", [self.node("GatherElements", [x, i], x.dtype, axis=1), self.ints([-1])],
                         x.dtype)

    def transpose(self, x: Any) -> Sym:
        x = self.lift(x)
        return self.node("Transpose", [x], x.dtype, perm=[0, 2, 1])

    def batch_shape(self) -> Sym:
        if self.batch_ref is None:
            raise UnsupportedModelError("the document has no input to take the batch size from")
        return self.node("Shape", [self.batch_ref], "int64", start=0, end=1)

    def length(self, x: Any) -> Sym:
        shape = self.node("Shape", [self.lift(x)], "int64")
        last = self.node("Gather", [shape, self.lift(np.asarray(-1, dtype=np.int64))], "int64", axis=0)
        return self.node("Expand", [last, self.batch_shape()], "int64")

    def broadcast(self, const: Any, dtype: str) -> Sym:
        c = np.asarray(const)
        c = c.astype(np.str_) if dtype == "str" else c.astype(dtype)
        shape = self.node("Concat", [self.batch_shape(), self.ints(list(c.shape))], "int64", axis=0) \
            if c.ndim else self.batch_shape()
        return self.node("Expand", [self.lift(c[None] if c.ndim == 0 else c[None, ...], dtype), shape], dtype)

    def isin(self, x: Any, values: list[Any]) -> Sym:
        x = self.lift(x)
        vals = np.asarray(values, dtype=np.str_ if x.dtype == "str" else x.dtype)
        eq = self.node("Equal", [self.unsqueeze(x, -1), self.lift(vals, x.dtype)], "bool")
        anyhit = self.node("ReduceMax", [self.cast(eq, "int64"), self.ints([-1])], "int64", keepdims=0)
        return self.cast(anyhit, "bool")

    def cumsum(self, x: Any, axis: int = -1) -> Sym:
        x = self.lift(x)
        return self.node("CumSum", [x, self.lift(np.asarray(axis, dtype=np.int64))], x.dtype)

    def argsort(self, x: Any, k: int) -> Sym:
        x = self.lift(x)
        _, idx = self.node("TopK", [x, self.ints([k])], x.dtype, n_out=2, axis=-1, largest=0, sorted=1)
        return Sym(idx.name, "int64")

    # -- trees ----------------------------------------------------------------------------------------------
    def _ensemble(self, specs: list[TreeSpec], X: Any, leaf_targets: list[np.ndarray],
                  leaf_weights: list[np.ndarray], n_targets: int, aggregate: int) -> Sym:
        """One TreeEnsemble node over trees in TreeSpec form (leaves: self-looping nodes)."""
        nh = self.onnx.numpy_helper
        feat, modes, splits, tnode, tleaf, fnode, fleaf, roots = [], [], [], [], [], [], [], []
        targets, weights = [], []
        for spec, ltarget, lweight in zip(specs, leaf_targets, leaf_weights):
            internal = np.flatnonzero(~spec.is_leaf)
            leaves = np.flatnonzero(spec.is_leaf)
            node_pos = {int(n): len(feat) + i for i, n in enumerate(internal)}
            leaf_pos = {int(n): len(targets) + i for i, n in enumerate(leaves)}
            if spec.is_leaf[0]:
                raise UnsupportedModelError("a tree that is a single leaf cannot be a TreeEnsemble")
            roots.append(node_pos[0])
            for n in internal:
                feat.append(int(spec.feature[n]))
                modes.append(int(spec.mode[n]))
                splits.append(float(spec.threshold[n]))
                for child, ids, flags in ((spec.true_child[n], tnode, tleaf), (spec.false_child[n], fnode, fleaf)):
                    c = int(child)
                    if spec.is_leaf[c]:
                        ids.append(leaf_pos[c])
                        flags.append(1)
                    else:
                        ids.append(node_pos[c])
                        flags.append(0)
            for n in leaves:
                targets.append(int(ltarget[spec.leaf[n]]))
                weights.append(float(lweight[spec.leaf[n]]))
        Xd = self.cast(self.lift(X), "float64")
        out = self.node("TreeEnsemble", [Xd], "float64", domain="ai.onnx.ml", aggregate_function=aggregate,
                        post_transform=0, n_targets=n_targets, tree_roots=roots, nodes_featureids=feat,
                        nodes_modes=nh.from_array(np.asarray(modes, dtype=np.uint8)),
                        nodes_splits=nh.from_array(np.asarray(splits, dtype=np.float64)),
                        nodes_truenodeids=tnode, nodes_trueleafs=tleaf, nodes_falsenodeids=fnode,
                        nodes_falseleafs=fleaf, leaf_targetids=targets,
                        leaf_weights=nh.from_array(np.asarray(weights, dtype=np.float64)))
        return out

    def tree_walk(self, spec: TreeSpec, X: Any) -> Sym:
        """The leaf index of each row, from a one-tree TreeEnsemble whose leaf weights are the indexes."""
        nleaves = int(spec.leaf.max()) + 1
        if spec.is_leaf[0]:
            return self.broadcast(np.asarray(int(spec.leaf[0]), dtype=np.int64), "int64")
        idx = np.arange(nleaves)
        out = self._ensemble([spec], X, [np.zeros(nleaves, dtype=np.int64)], [idx.astype(float)], 1, 1)
        flat = self.node("Reshape", [out, self.ints([-1])], "float64")
        return self.cast(flat, "int64")

    def forest_mean(self, origins: list[tuple[Any, ...]]) -> Sym:
        """The mean of a forest's numeric leaves, as one TreeEnsemble with aggregate AVERAGE."""
        try:
            return _forest_mean(self, origins)
        except UnsupportedModelError:
            stacked = self.stack([self.gather(o[3], self.tree_walk(o[1], o[2])) for o in origins], axis=1)
            return self.reduce("mean", self.cast(stacked, self.float_dtype), axis=-1)

    def forest_votes(self, origins: list[tuple[Any, ...]]) -> tuple[Sym, np.ndarray]:
        """Votes `[N, C]` of a forest (`a.map` of tree walks), as one TreeEnsemble when the trees share their
        feature matrix; the classes are the sorted distinct leaf values."""
        classes = np.unique(np.concatenate([np.asarray(o[3]) for o in origins]))
        if len({id(o[5]) for o in origins}) == 1 and not any(o[1].is_leaf[0] for o in origins):
            origins = _common_columns(origins)
            targets = [np.searchsorted(classes, np.asarray(o[3])) for o in origins]
            weights = [np.ones(len(o[3])) for o in origins]
            self.forest_ensembles += 1
            return self._ensemble([o[1] for o in origins], origins[0][2], targets, weights, len(classes), 1), \
                classes
        votes: Any = None
        for o in origins:
            value = self.gather(o[3], self.tree_walk(o[1], o[2]))
            hit = self.cast(self.node("Equal", [self.unsqueeze(value, -1), self.lift(classes, value.dtype)],
                                      "bool"), "float64")
            votes = hit if votes is None else self.node("Add", [votes, hit], "float64")
        return self.cast(votes, self.float_dtype), classes


def _forest_mean(backend: OnnxBackend, origins: list[tuple[Any, ...]]) -> Sym:
    if len({id(o[5]) for o in origins}) != 1 or any(o[1].is_leaf[0] for o in origins):
        raise UnsupportedModelError("a.mean of tree walks over different data or of single-leaf trees")
    origins = _common_columns(origins)
    targets = [np.zeros(len(o[3]), dtype=np.int64) for o in origins]
    weights = [np.asarray(o[3], dtype=np.float64) for o in origins]
    backend.forest_ensembles += 1
    out = backend._ensemble([o[1] for o in origins], origins[0][2], targets, weights, 1, 0)  # 0: AVERAGE
    return backend.cast(backend.node("Reshape", [out, backend.ints([-1])], "float64"), backend.float_dtype)


def _common_columns(origins: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Re-index trees over one feature table so that they all read the same matrix (the union of columns)."""
    import dataclasses

    keys: list[Any] = []
    for o in origins:
        keys += [k for k in o[1].columns if k not in keys]
    pos = {k: i for i, k in enumerate(keys)}
    X = origins[0][5].matrix(keys)
    out = []
    for o in origins:
        spec = o[1]
        remap = np.asarray([pos[k] for k in spec.columns], dtype=np.int64)
        feature = np.where(spec.is_leaf, 0, remap[np.clip(spec.feature, 0, len(remap) - 1)])
        out.append((o[0], dataclasses.replace(spec, feature=feature, columns=keys), X) + tuple(o[3:]))
    return out


def _input_syms(model: PfaModel, backend: OnnxBackend, dtype: str) -> tuple[list[Any], dict[str, Sym]]:
    h = backend.onnx.helper
    infos, syms = [], {}
    for spec in model.signature.inputs:
        dt = dtype if spec.dtype == "float64" else spec.dtype
        infos.append(h.make_tensor_value_info(spec.name, backend.elem_type(dt), list(spec.shape)))
        syms[spec.name] = Sym(spec.name, dt)
    return infos, syms


def _prune(nodes: list[Any], inits: list[Any], outputs: list[str]) -> tuple[list[Any], list[Any]]:
    """Drop nodes and initializers that no output depends on (per-tree walks replaced by one ensemble)."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    return kept, [t for t in inits if t.name in needed]


@converter("pfa", "onnx", requires=("onnx", "onnxruntime"))
def pfa_to_onnx(model: PfaModel, options: ConvertOptions) -> OnnxModel:
    """PFA document -> ONNX, by running portable's evaluator with a graph-building backend."""
    onnx = require("onnx", purpose="PFA to ONNX")
    if getattr(model, "tier", "vectorized") != "vectorized":
        construct, where = model.tier_reason or ("a construct the vectorized engine does not support", "action")
        raise UnsupportedModelError(f"this PFA document is scored record by record (sequential tier), which ONNX "
                                    f"cannot express: {construct}", path=model.doc.path, where=where)
    dtype = options.dtype if options.dtype in ("float32", "float64") else "float64"
    backend = OnnxBackend(dtype)
    in_infos, syms = _input_syms(model, backend, dtype)
    if syms:
        backend.batch_ref = next(iter(syms.values()))
    ev = Evaluator(model.doc, backend)
    try:
        from ..formats.pfa.values import Val
        from ..formats.pfa import types as T

        t = model.doc.input
        if isinstance(t, T.Record):
            inval = Val(t, {n: Val(t.fields[n], s, False) for n, s in syms.items()}, False)
        else:
            inval = Val(t, next(iter(syms.values())), False)
        result = ev.run(inval)
        out_names, out_infos = [], []
        fields = _output_fields(model, result)
        h = onnx.helper
        for spec in model.signature.outputs:
            v = fields[spec.name]
            v = ev.broadcast(v) if v.const else v
            dt = dtype if spec.dtype == "float64" else spec.dtype
            s = backend.cast(backend.lift(ev.tensor(v)), dt)
            if s.name != spec.name:
                if spec.name in syms:
                    raise ConversionError(f"output '{spec.name}' is computed but has the name of an input; ONNX "
                                          "needs distinct names (rename the record field)")
                backend.nodes.append(h.make_node("Identity", [s.name], [spec.name], name=f"output_{spec.name}"))
            out_names.append(spec.name)
            out_infos.append(h.make_tensor_value_info(spec.name, backend.elem_type(dt), [None] * len(spec.shape)))
    except PortableError as exc:
        if isinstance(exc, (UnsupportedModelError, ConversionError)):
            raise
        raise ConversionError(f"cannot compile the PFA document to ONNX: {exc}") from None
    nodes, inits = _prune(backend.nodes, backend.initializers, out_names)
    graph = onnx.helper.make_graph(nodes, (model.doc.name or "pfa")[:64], in_infos, out_infos, inits)
    opsets = [onnx.helper.make_opsetid("", options.target_opset or OPSET)]
    if any(n.domain == "ai.onnx.ml" for n in nodes):
        opsets.append(onnx.helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="portable",
                                   ir_version=10)
    out = OnnxModel(proto, origin=model.origin)
    set_provenance(out, dtype=dtype)
    out.dtype = dtype
    check_proto(proto, produced=True)
    out.notes.extend(model.notes)
    if backend.forest_ensembles:
        out.notes.append(f"{backend.forest_ensembles} forest(s) of a.map tree walks compiled into one TreeEnsemble")
    return out


def _output_fields(model: PfaModel, result: Any) -> dict[str, Any]:
    from ..formats.pfa import types as T
    from ..formats.pfa.values import Val

    t = model.doc.output
    if isinstance(t, T.Record):
        if result.const:
            return {k: Val(ft, result.data[k], True) for k, ft in t.fields.items()}
        return dict(result.data)
    return {model.signature.outputs[0].name: result}
