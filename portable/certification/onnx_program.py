"""Read an ONNX graph as a `Program` (see `program`): one function per operator, registered with `@op`.

The operators are the ones linear models, scalers, encoders, imputers, polynomial features and MLPs become in
ONNX (portable's and skl2onnx's converters): MatMul/Gemm/Add/Sub/Mul/Div/Neg by constants, Scaler,
LinearClassifier/LinearRegressor, Normalizer, OneHotEncoder, LabelEncoder, Imputer, Cast, Concat,
FeatureVectorizer, Gather/ArrayFeatureExtractor of columns, Reshape/Flatten/Squeeze/Unsqueeze, IsNaN/Equal/Where,
Pow/ReduceProd (monomials), Relu/Tanh/Sigmoid/Softmax, ArgMax, Greater, Identity. Any other operator on a value
that depends on the inputs makes the graph unreadable (`NotSymbolic` naming it); constant subgraphs are folded
with onnx's reference evaluator.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .program import Label, Program, cat_to_sym, has_nan, sym_table
from .symbolic import U32, Cat, NotSymbolic, Space, Sym

OPS: dict[str, Callable[..., list[Any]]] = {}
F32 = "float32"


def op(*names: str) -> Callable:
    def deco(func: Callable) -> Callable:
        for n in names:
            OPS[n] = func
        return func
    return deco


class _LabelIdx:
    """The index an ArgMax (or a comparison) picked: argmax over `scores`."""

    def __init__(self, scores: Sym) -> None:
        self.scores = scores


class _LogSumExp:
    """ReduceLogSumExp of a 1-d value over its last axis (kept for the softmax idiom exp(z - logsumexp z))."""

    def __init__(self, s: Sym) -> None:
        self.s = s


class _LogSoftmax:
    """z - logsumexp(z): its Exp is softmax(z)."""

    def __init__(self, s: Sym) -> None:
        self.s = s


SYMBOLIC = (Sym, Cat, _LabelIdx, Label, _LogSumExp, _LogSoftmax)


def input_value(prog: Program, name: str, width: int, string: bool) -> Sym | Cat:
    """The value of one input of `width` columns: numeric columns as variables, categorical ones as tables."""
    space = prog.space
    items = np.empty(width, dtype=object)
    C = np.zeros((width, 0))
    cols = []
    for j in range(width):
        g = space.column_group((name, j))
        cols.append(g)
    if any(space.groups[g].kind == "categorical" for g in cols):
        for j, g in enumerate(cols):
            grp = space.groups[g]
            if grp.kind != "categorical":
                raise NotSymbolic(f"input {name} mixes categorical and numeric columns")
            items[j] = (g, tuple(grp.categories))
        cat = Cat(items)
        return cat if string else cat_to_sym(cat, prog)
    if string:
        raise NotSymbolic(f"the string input {name} has no categories in the domain")
    nan = np.full(width, -1)
    idx = []
    for j, g in enumerate(cols):
        grp = space.groups[g]
        x = space.var(("x", grp.column), g)
        idx.append(space.mono((x,)))
        if grp.nan:
            nan[j] = space.var(("n", grp.column), g)
            space.mono((nan[j],))
    C = np.zeros((width, space.size))
    C[np.arange(width), idx] = 1.0
    return Sym(C, np.zeros(width), 0, nan if np.any(nan != -1) else None)


def read_onnx(proto: Any, space: Space, side: str) -> Program:
    """The Program of an ONNX model (raises NotSymbolic when some operator has no reading)."""
    from onnx import numpy_helper

    prog = Program(space, side)
    g = proto.graph
    env: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    dtypes: dict[str, str] = {k: str(v.dtype) for k, v in env.items()}
    for vi in g.input:
        if vi.name in env:
            continue
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        width = int(np.prod([d for d in dims[1:]])) if len(dims) > 1 else 1
        if any(d is None for d in dims[1:]):
            raise NotSymbolic(f"input {vi.name} has a free inner dimension")
        string = t.elem_type == 8
        val = input_value(prog, vi.name, width, string)
        if len(dims) > 2 and isinstance(val, Sym):
            val = Sym(val.C.reshape(tuple(dims[1:]) + (space.size,)), val.E.reshape(dims[1:]), 0,
                      None if val.nan is None else val.nan.reshape(dims[1:]))
        if isinstance(val, Sym) and t.elem_type == 1 and not space.exact_in(val.C, val.E, U32):
            val.E = prog.u("float32") * prog.mag(val)  # float64 values fed as float32: rounded on the way in
        rel = getattr(space, "input_errors", {}).get(vi.name)
        if rel and isinstance(val, Sym):  # a cut whose value differs from the other side's by a relative error
            val.E = np.asarray(val.E, dtype=np.float64) + rel * prog.mag(val)
        env[vi.name] = val
        dtypes[vi.name] = {1: "float32", 11: "float64", 7: "int64", 6: "int32", 8: "str", 9: "bool"}.get(
            t.elem_type, "float32")
    from .onnx_more_ops import demand_order

    for node in demand_order(g):
        if node.domain not in ("", "ai.onnx", "ai.onnx.ml"):
            raise NotSymbolic(f"the operator {node.domain}.{node.op_type}")
        ins = [env[n] if n else None for n in node.input]
        if all(not isinstance(v, SYMBOLIC) for v in ins):
            outs = _fold(node, ins)
        else:
            func = OPS.get(node.op_type)
            if func is None:
                raise NotSymbolic(f"the ONNX operator {node.op_type} ({node.name or node.output[0]})")
            # the dtype of the first symbolic input (a log-softmax's too: float64 graphs' exp(z - logsumexp z))
            dt = next((dtypes.get(n) for n in node.input if n and isinstance(env.get(n), SYMBOLIC)
                       and dtypes.get(n)), F32)
            outs = func(prog, node, _attrs(node), ins, dt)
        for n, v in zip(node.output, outs):
            env[n] = v
            dtypes[n] = _out_dtype(node, v, dtypes, dt if not all(
                not isinstance(v, SYMBOLIC) for v in ins) else F32)
    for o in g.output:
        v = env[o.name]
        if isinstance(v, (_LogSumExp, _LogSoftmax)):
            raise NotSymbolic(f"output {o.name} is a log-sum-exp")
        if isinstance(v, _LabelIdx):
            v = Label(v.scores, None)
        if isinstance(v, Sym):
            if has_nan(v):
                raise NotSymbolic(f"NaN reaches output {o.name} without imputation")
            v = _flat(v)
        if isinstance(v, Cat):
            v = cat_to_sym(v, prog)
        prog.outputs[o.name] = v
    return prog


def _out_dtype(node: Any, v: Any, dtypes: dict[str, str], dt: str) -> str:
    if node.op_type == "Cast":
        to = next(a.i for a in node.attribute if a.name == "to")
        return {1: "float32", 11: "float64", 7: "int64", 6: "int32", 8: "str", 9: "bool"}.get(to, F32)
    if node.op_type == "ArrayFeatureExtractor" and node.input[0] in dtypes:
        return dtypes[node.input[0]]  # a gather: its data's dtype (float64 in float64 graphs)
    if node.domain == "ai.onnx.ml":
        return F32
    if isinstance(v, np.ndarray):
        return str(v.dtype)
    return dt


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold(node: Any, ins: list[Any]) -> list[Any]:
    """A node of constants only: run it with onnx's reference evaluator."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    if node.op_type == "Constant":
        from onnx import numpy_helper

        a = _attrs(node)
        if "value" in a:
            return [numpy_helper.to_array(a["value"])]
    names = [f"i{k}" for k in range(len(ins))]
    n2 = helper.make_node(node.op_type, [nm if v is not None else "" for nm, v in zip(names, ins)],
                          [f"o{k}" for k in range(len(node.output))], domain=node.domain,
                          **{a.name: helper.get_attribute_value(a) for a in node.attribute})
    g = helper.make_graph([n2], "fold", [helper.make_tensor_value_info(nm, 1, None)
                                         for nm, v in zip(names, ins) if v is not None],
                          [helper.make_tensor_value_info(f"o{k}", 1, None) for k in range(len(node.output))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 3)])
    try:
        res = ReferenceEvaluator(m).run(None, {nm: v for nm, v in zip(names, ins) if v is not None})
    except Exception as exc:
        raise NotSymbolic(f"the constant operator {node.op_type}: {exc}") from None
    return list(res)


def _flat(s: Sym) -> Sym:
    n = int(np.prod(s.shape)) if s.shape else 1
    return Sym(s.C.reshape(n, -1), np.asarray(s.E).reshape(n), s.stage, None)


def _const(prog: Program, v: Any) -> Sym:
    if isinstance(v, Sym):
        return v
    if isinstance(v, Cat):
        return cat_to_sym(v, prog)
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiub":
        return prog.const(v)
    raise NotSymbolic("a non-numeric constant in arithmetic")


def _row_const(v: np.ndarray) -> np.ndarray:
    """A constant combined with a batched value: drop a leading batch axis of size 1."""
    v = np.asarray(v)
    v = v.astype(np.float64) if v.dtype.kind in "fiub" else v
    return v[0] if v.ndim >= 2 and v.shape[0] == 1 else v


def _axes(at: dict, ins: list) -> list[int] | None:
    """A reduction's or squeeze's axes: the attribute (older opsets) or the second input (newer ones), or None."""
    axes = at.get("axes")
    if axes is None and len(ins) > 1 and ins[1] is not None:
        axes = [int(a) for a in np.asarray(ins[1]).reshape(-1)]
    return axes


def _axis(axis: int, s: Any) -> int:
    if axis == 0:
        raise NotSymbolic("an operation along the batch axis")
    return axis - 1 if axis > 0 else axis


# -- arithmetic -----------------------------------------------------------------------------------------------------
@op("ReduceLogSumExp")
def _logsumexp(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = _flat_row(_const(prog, ins[0]))
    axes = _axes(at, ins)
    if axes is None or [_axis(a, s) for a in axes] not in ([0], [-1]):
        raise NotSymbolic("a ReduceLogSumExp over an inner axis")
    return [_LogSumExp(s)]


@op("Add", "Sub")
def _add(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    sign = -1.0 if node.op_type == "Sub" else 1.0
    a, b = ins
    if isinstance(b, _LogSumExp) and sign < 0 and isinstance(a, Sym):
        if not np.array_equal(prog.space.pad(_flat_row(a).C), prog.space.pad(b.s.C)):
            raise NotSymbolic("z - logsumexp(y) with y other than z")
        return [_LogSoftmax(b.s)]
    a = prog.const(_row_const(a)) if isinstance(a, np.ndarray) else _const(prog, a)
    b = prog.const(_row_const(b)) if isinstance(b, np.ndarray) else _const(prog, b)
    return [prog.add(a, b, dt, sign)]


@op("Mul", "Div")
def _mul(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    a, b = ins
    if node.op_type == "Div":
        if isinstance(b, Sym) and isinstance(a, Sym):
            return [_l1_normalised(prog, a, b, dt)]
        if not isinstance(b, np.ndarray):
            raise NotSymbolic("a division by a value that depends on the inputs")
        return [prog.scale(_const(prog, a), 1.0 / _row_const(b), dt)]
    if isinstance(a, np.ndarray):
        a, b = b, a
    if isinstance(b, np.ndarray):
        return [prog.scale(_const(prog, a), _row_const(b), dt)]
    return [prog.multiply(_const(prog, a), _const(prog, b), dt)]


def _l1_normalised(prog: Program, a: Sym, b: Sym, dt: str) -> Sym:
    """a / b where b is the sum of a's units over its last axis: an L1 normalisation (skl2onnx's soft voting
    normalises each member's probabilities so): `Program.activate(.., "l1norm")` (the identity for a softmax or
    for a binary logistic pair over [-z, z], up to rounding)."""
    space = prog.space
    A, B = space.pad(a.C), space.pad(b.C)
    if A.ndim != 2 or B.reshape(-1, A.shape[-1]).shape[0] != 1 or not np.array_equal(B.reshape(-1), A.sum(axis=0)):
        raise NotSymbolic("a division by a value that depends on the inputs")
    if prog._is_stage_output(a, ("softmax", "l1norm")) or prog._complementary_pair(a, dt) is not None or \
            prog._nonnegative(a):  # (units >= 0 such as sigmoids: a normalisation stage of its own)
        return prog.activate(a, "l1norm", dt)
    raise NotSymbolic("a division by a value that depends on the inputs (not an L1 normalisation of "
                      "probabilities)")


@op("Abs")
def _abs(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = _const(prog, ins[0])
    lo, hi = prog.space.range(s.C, prog.side)
    if np.all(lo - s.E >= 0) or prog._nonnegative(s):  # (a sigmoid's units are >= 0 in float too: Abs is exact)
        return [s]
    if np.all(hi + s.E <= 0):
        return [prog.scale(s, np.asarray(-1.0), dt)]
    raise NotSymbolic("Abs of a value that takes both signs")


@op("Neg")
def _neg(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    return [prog.scale(_const(prog, ins[0]), np.asarray(-1.0), dt)]


@op("MatMul")
def _matmul(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    a, W = ins
    if not isinstance(W, np.ndarray) or W.ndim != 2:
        raise NotSymbolic("a matrix product with a non-constant right side")
    return [prog.matmul(_const(prog, a), W, dt)]


@op("Gemm")
def _gemm(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    a, W = ins[0], ins[1]
    if not isinstance(W, np.ndarray) or at.get("transA", 0):
        raise NotSymbolic("a Gemm with a non-constant or transposed input")
    W = np.asarray(W, dtype=np.float64)
    W = (W.T if at.get("transB", 0) else W) * at.get("alpha", 1.0)
    out = prog.matmul(_const(prog, a), W, dt)
    if len(ins) > 2 and ins[2] is not None:
        out = prog.add(out, prog.const(_row_const(ins[2]) * at.get("beta", 1.0)), dt)
    return [out]


@op("Scaler")
def _scaler(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = _const(prog, ins[0])
    off = np.asarray(at.get("offset", [0.0]), dtype=np.float32).astype(np.float64)
    sc = np.asarray(at.get("scale", [1.0]), dtype=np.float32).astype(np.float64)
    return [prog.scale(prog.add(s, prog.const(off), F32, -1.0), sc, F32)]


@op("LinearRegressor")
def _linreg(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    if at.get("post_transform", b"NONE") not in (b"NONE", "NONE"):
        raise NotSymbolic("LinearRegressor with a post transform")
    t = int(at.get("targets", 1))
    W = np.asarray(at["coefficients"], dtype=np.float32).astype(np.float64).reshape(t, -1).T
    b = np.asarray(at.get("intercepts", [0.0] * t), dtype=np.float32).astype(np.float64)
    return [prog.add(prog.matmul(_flat_row(_const(prog, ins[0])), W, F32), prog.const(b), F32)]


def _flat_row(s: Sym) -> Sym:
    return _flat(s) if s.C.ndim != 2 else s


@op("LinearClassifier")
def _linclf(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    classes = at.get("classlabels_ints")
    classes = np.asarray(classes) if classes is not None and len(classes) else \
        np.asarray([c.decode() if isinstance(c, bytes) else c for c in at.get("classlabels_strings", [])])
    coef = np.asarray(at["coefficients"], dtype=np.float32).astype(np.float64)
    b = np.asarray(at.get("intercepts", []), dtype=np.float32).astype(np.float64)
    rows = len(b) if len(b) else len(classes)
    W = coef.reshape(rows, -1).T
    scores = prog.add(prog.matmul(_flat_row(_const(prog, ins[0])), W, F32), prog.const(b), F32)
    if rows == 1 and len(classes) == 2:
        raise NotSymbolic("LinearClassifier with one coefficient row for two classes")
    post = at.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else post
    label = Label(scores, classes)
    acts = {"NONE": "identity", "LOGISTIC": "sigmoid", "SOFTMAX": "softmax"}
    if post not in acts:
        raise NotSymbolic(f"LinearClassifier post_transform {post}")
    out = [label]
    if len(node.output) > 1 and node.output[1]:
        out.append(prog.activate(scores, acts[post], F32))
    return out


@op("Normalizer")
def _normalizer(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    norm = at.get("norm", b"MAX")
    norm = norm.decode() if isinstance(norm, bytes) else norm
    if norm != "L1":
        raise NotSymbolic(f"Normalizer norm {norm}")
    return [prog.activate(_const(prog, ins[0]), "l1norm", F32)]


@op("Relu", "Tanh", "Sigmoid", "Softmax", "Exp")
def _act(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    if node.op_type == "Exp" and isinstance(ins[0], _LogSoftmax):
        # exp(z - logsumexp z) = softmax z, with the log-sum-exp's rounding (Program.softmax_lse)
        return [prog.softmax_lse(ins[0].s, dt)]
    s = _const(prog, ins[0])
    if node.op_type == "Softmax" and _axis(at.get("axis", -1), s) not in (-1, s.C.ndim - 2):
        raise NotSymbolic("a Softmax over an axis other than the last")
    return [prog.activate(_flat_row(s), node.op_type.lower(), dt)]


@op("Identity", "Cast")
def _identity(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    v = ins[0]
    if node.op_type == "Cast" and isinstance(v, Sym) and at.get("to") in (1,) and dt != F32:
        if prog.space.exact_in(v.C, v.E, U32):  # integers below 2^24 (counts): exact in float32
            return [v]
        return [prog.add(v, prog.const(np.zeros(v.shape)), F32)]  # rounding to float32
    if node.op_type == "Cast" and isinstance(v, Sym) and at.get("to") in (6, 7, 9):
        tab = sym_table(v, prog)  # integers from a categorical column: exact per category
        conv = np.vectorize(lambda t: (t[0], tuple(float(np.trunc(x)) if at["to"] != 9 else float(x != 0)
                                                   for x in t[1])), otypes=[object])
        return [Cat(conv(tab.items))]
    if node.op_type == "Cast" and isinstance(v, Cat) and at.get("to") in (1, 11, 6, 7):
        return [cat_to_sym(v, prog)]
    if node.op_type == "Cast" and isinstance(v, Label) and at.get("to") == 9 and v.classes is not None and \
            np.asarray(v.classes).dtype.kind in "biuf":  # labels of boolean classes (0/1 cast to bool)
        return [Label(v.scores, np.asarray(v.classes).astype(bool))]
    return [v]


# -- shapes ---------------------------------------------------------------------------------------------------------
def _reshape_value(v: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(v, (Label, _LabelIdx, _LogSumExp, _LogSoftmax)):
        return v
    if isinstance(v, Cat):
        return Cat(v.items.reshape(shape))
    nan = None if v.nan is None else v.nan.reshape(shape)
    return Sym(v.C.reshape(shape + (v.C.shape[-1],)), np.broadcast_to(v.E, v.shape).reshape(shape), v.stage, nan)


@op("Reshape")
def _reshape(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    v, shape = ins
    if isinstance(v, (Label, _LabelIdx, _LogSumExp, _LogSoftmax)):
        return [v]
    shape = [int(d) for d in np.asarray(shape)]
    n = int(np.prod(v.shape)) if v.shape else 1
    if len(shape) == 1:
        if n != 1:
            raise NotSymbolic("a reshape that mixes the batch axis with others")
        return [_reshape_value(v, ())]
    row = [v.shape[i - 1] if d == 0 and i - 1 < len(v.shape) else d for i, d in enumerate(shape)][1:]
    if -1 in row:
        known = int(np.prod([d for d in row if d != -1])) if len(row) > 1 else 1
        row[row.index(-1)] = n // max(known, 1)
    return [_reshape_value(v, tuple(row))]


@op("Flatten")
def _flatten(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    v = ins[0]
    if at.get("axis", 1) != 1:
        raise NotSymbolic("a Flatten at an axis other than 1")
    return [_reshape_value(v, (int(np.prod(v.shape)),))]


@op("Squeeze", "Unsqueeze")
def _squeeze(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    v = ins[0]
    if isinstance(v, (Label, _LabelIdx)):
        return [v]
    axes = _axes(at, ins)
    shape = list(v.shape)
    if node.op_type == "Squeeze":
        if axes is None:
            shape = [d for d in shape if d != 1]
        else:
            nd = len(shape) + 1
            drop = {(a % nd) - 1 for a in axes}
            if -1 in drop:
                raise NotSymbolic("a Squeeze of the batch axis")
            shape = [d for i, d in enumerate(shape) if i not in drop]
    else:
        nd = len(shape) + 1 + len(axes)
        for a in sorted(a % nd for a in axes):
            if a == 0:
                raise NotSymbolic("an Unsqueeze before the batch axis")
            shape.insert(a - 1, 1)
    return [_reshape_value(v, tuple(shape))]


def _take(v: Any, idx: np.ndarray, axis: int) -> Any:
    if isinstance(v, Cat):
        return Cat(np.take(v.items, idx, axis=axis))
    ax = axis if axis >= 0 else axis - 1  # C has the monomial axis last
    nan = None if v.nan is None else np.take(np.broadcast_to(v.nan, v.shape), idx, axis=axis)
    return Sym(np.take(v.C, idx, axis=ax), np.take(np.broadcast_to(v.E, v.shape), idx, axis=axis), v.stage, nan)


@op("Gather")
def _gather(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    data, idx = ins
    if isinstance(data, np.ndarray):  # a label lookup: classes[argmax]
        if isinstance(idx, (_LabelIdx, Label)) and at.get("axis", 0) == 0:
            base = idx.scores if isinstance(idx, _LabelIdx) else idx.scores
            classes = data if isinstance(idx, _LabelIdx) else np.asarray(data)[np.asarray(idx.classes, int)]
            return [Label(base, np.asarray(data).reshape(-1) if isinstance(idx, _LabelIdx) else classes)]
        raise NotSymbolic("a Gather of constants by a value that depends on the inputs")
    if not isinstance(idx, np.ndarray):
        raise NotSymbolic("a Gather with indices that depend on the inputs")
    return [_take(data, np.asarray(idx, dtype=np.int64), _axis(at.get("axis", 0), data))]


@op("ArrayFeatureExtractor")
def _afe(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    data, idx = ins
    if isinstance(data, np.ndarray) and isinstance(idx, _LabelIdx):
        return [Label(idx.scores, np.asarray(data).reshape(-1))]
    if isinstance(idx, np.ndarray) and not isinstance(data, np.ndarray):
        return [_take(data, np.asarray(idx, dtype=np.int64).reshape(-1), -1)]
    raise NotSymbolic("an ArrayFeatureExtractor with indices that depend on the inputs")


def _concat_values(prog: Program, vals: list[Any], axis: int) -> Any:
    if all(isinstance(v, Cat) for v in vals):
        return Cat(np.concatenate([v.items for v in vals], axis=axis))
    syms = [_const(prog, v).padded(prog.space) if not isinstance(v, np.ndarray) else prog.const(_row_const(v))
            for v in vals]
    syms = [s.padded(prog.space) for s in syms]
    stage = prog._same_stage(*syms)
    ax = axis if axis >= 0 else axis - 1
    nan = None
    if any(has_nan(s) for s in syms):
        nan = np.concatenate([np.full(s.shape, -1) if s.nan is None else np.broadcast_to(s.nan, s.shape)
                              for s in syms], axis=axis)
    return Sym(np.concatenate([s.C for s in syms], axis=ax),
               np.concatenate([np.broadcast_to(s.E, s.shape) for s in syms], axis=axis), stage, nan)


@op("Concat")
def _concat(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    return [_concat_values(prog, ins, _axis(at.get("axis", 1), ins[0]))]


@op("FeatureVectorizer")
def _fv(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    return [_concat_values(prog, [_flat_row(_const(prog, v)) for v in ins], -1)]


# -- missing values, comparisons, encoders ---------------------------------------------------------------------------
@op("IsNaN")
def _isnan(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = ins[0]
    if isinstance(s, Cat):
        s = cat_to_sym(s, prog)
    space = prog.space
    nan = np.full(s.shape, -1) if s.nan is None else np.broadcast_to(s.nan, s.shape)
    if np.any(nan == -2):
        raise NotSymbolic("IsNaN of a value that mixes several columns")
    C = np.zeros(s.shape + (space.size,))
    for pos in np.ndindex(*s.shape):
        if nan[pos] >= 0:
            C[pos + (space.mono((int(nan[pos]),)),)] = 1.0
    return [Sym(space.pad(C), np.zeros(s.shape), 0)]


def _is_indicator(prog: Program, cond: Sym, pos: tuple) -> int | None:
    row = prog.space.pad(cond.C)[pos]
    nz = np.nonzero(row)[0]
    if len(nz) == 1 and row[nz[0]] == 1.0 and len(prog.space.monomials[nz[0]]) == 1:
        return prog.space.monomials[nz[0]][0]
    return None


@op("Where")
def _where(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    cond, a, b = ins
    cond = _const(prog, cond) if not isinstance(cond, Sym) else cond
    if isinstance(a, Cat) or isinstance(b, Cat) or (isinstance(a, np.ndarray) and a.dtype.kind in "OSU"):
        return [_where_table(prog, cond, a, b)]
    a = prog.const(_row_const(a)) if isinstance(a, np.ndarray) else _const(prog, a)
    b = prog.const(_row_const(b)) if isinstance(b, np.ndarray) else _const(prog, b)
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    one = prog.const(np.ones(shape))
    take_a = prog.multiply(cond, a, "float64")
    take_b = prog.multiply(prog.add(one, cond, "float64", -1.0), b, "float64")
    out = prog.add(take_a, take_b, "float64")
    out.E = np.maximum(np.broadcast_to(a.E, shape), np.broadcast_to(b.E, shape))
    nan = np.full(shape, -1)
    bn = np.full(shape, -1) if b.nan is None else np.broadcast_to(b.nan, shape)
    an = np.full(shape, -1) if a.nan is None else np.broadcast_to(a.nan, shape)
    for pos in np.ndindex(*shape):
        ind = _is_indicator(prog, Sym(np.broadcast_to(prog.space.pad(cond.C), shape + (prog.space.size,)),
                                      cond.E, 0), pos)
        nb = -1 if (bn[pos] == -1 or (ind is not None and ind == bn[pos])) else bn[pos]
        nan[pos] = an[pos] if nb == -1 else (nb if an[pos] == -1 else -2)
    out.nan = nan if np.any(nan != -1) else None
    return [out]


def _table(prog: Program, v: Any, shape: tuple) -> np.ndarray:
    if isinstance(v, Cat):
        return np.broadcast_to(v.items, shape)
    if isinstance(v, Sym):
        return np.broadcast_to(sym_table(v, prog).items, shape)
    arr = np.broadcast_to(_row_const(v), shape)
    out = np.empty(shape, dtype=object)
    for pos in np.ndindex(*shape):
        out[pos] = (None, (arr[pos],))
    return out


def _combine(items: list[np.ndarray], func: Callable[..., Any]) -> np.ndarray:
    """Elementwise func over tables that each depend on one categorical column (the same one, or constants)."""
    out = np.empty(items[0].shape, dtype=object)
    for pos in np.ndindex(*items[0].shape):
        parts = [it[pos] for it in items]
        groups = {g for g, _ in parts if g is not None}
        if len(groups) > 1:
            raise NotSymbolic("a comparison across two categorical columns")
        g = groups.pop() if groups else None
        k = max(len(vals) for _, vals in parts)
        vals = tuple(func(*[v[i] if len(v) > 1 else v[0] for _, v in parts]) for i in range(k))
        out[pos] = (g, vals)
    return out


def _where_table(prog: Program, cond: Sym, a: Any, b: Any) -> Cat:
    shape = np.broadcast_shapes(*[_row_const(v).shape if isinstance(v, np.ndarray) else v.shape
                                  for v in (cond, a, b)])
    items = _combine([_table(prog, cond, shape), _table(prog, a, shape), _table(prog, b, shape)],
                     lambda c, x, y: x if c else y)
    return Cat(items)


@op("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual")
def _compare(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    a, b = ins
    # a one-score label (Greater/GreaterOrEqual against a constant): argmax([t, s]) (they part only on exact ties)
    if node.op_type in ("Greater", "GreaterOrEqual") and isinstance(a, Sym) and isinstance(b, np.ndarray) and \
            int(np.prod(a.shape or (1,))) == 1 and _is_categorical_free(prog, a):
        t = prog.const(np.full((1,), float(np.asarray(b).reshape(-1)[0])))
        return [_LabelIdx(_concat_values(prog, [t, _reshape_value(a, (1,))], -1))]  # argmax([t, s]): s > t
    f = {"Equal": lambda x, y: x == y, "Greater": lambda x, y: x > y, "Less": lambda x, y: x < y,
         "GreaterOrEqual": lambda x, y: x >= y, "LessOrEqual": lambda x, y: x <= y}[node.op_type]
    decided = _decided(prog, node.op_type, a, b)
    if decided is not None:
        return [decided]
    shape = np.broadcast_shapes(*[_row_const(v).shape if isinstance(v, np.ndarray) else v.shape for v in (a, b)])
    items = _combine([_table(prog, a, shape), _table(prog, b, shape)], lambda x, y: float(f(_s(x), _s(y))))
    return [cat_to_sym(Cat(items), prog)]


def _decided(prog: Program, op_type: str, a: Any, b: Any) -> np.ndarray | None:
    """A comparison of a value with a constant that has the same answer over the whole domain: that constant
    answer (a guard such as `sum == 0` before a division, when the sum is proved positive), else None. The
    value's interval is widened by its rounding bound and by 1e-30 (an underflow to 0 is an absolute error that
    relative rounding bounds do not cover)."""
    if not isinstance(a, Sym) or not isinstance(b, np.ndarray) or b.dtype.kind not in "fiu" or has_nan(a):
        return None
    lo, hi = prog.space.range(a.C, prog.side)
    if prog._nonnegative(a):
        # a nonnegative sum of units >= 0 (sigmoids): each unit and the float sum carry relative errors only (far
        # below 1e-3), so the computed value is at least lo (1 - 1e-3), less an underflow
        lo, hi = lo * (1 - 1e-3) - 1e-30, hi + a.E + 1e-30
    else:
        lo, hi = lo - a.E - 1e-30, hi + a.E + 1e-30
    t = np.asarray(b, dtype=np.float64)
    if op_type == "Equal":
        if np.all((t < lo) | (t > hi)):
            return np.zeros(np.broadcast_shapes(lo.shape, t.shape), dtype=bool)
        return None
    below, above = hi < t, lo > t  # every value below / above the constant
    if op_type in ("Less", "LessOrEqual"):
        below, above = above, below  # (a < t) is (t > a)
    if np.all(above | below):
        return np.asarray(above, dtype=bool)
    return None


@op("And", "Or", "Xor", "Not")
def _logical(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    """Boolean ops of values that each depend on one categorical (or enumerated integer) column: per category."""
    f = {"And": lambda x, y: bool(x) and bool(y), "Or": lambda x, y: bool(x) or bool(y),
         "Xor": lambda x, y: bool(x) != bool(y), "Not": lambda x: not bool(x)}[node.op_type]
    shape = np.broadcast_shapes(*[_row_const(v).shape if isinstance(v, np.ndarray) else v.shape for v in ins])
    items = _combine([_table(prog, v, shape) for v in ins], lambda *a: float(f(*a)))
    return [cat_to_sym(Cat(items), prog)]


def _is_categorical_free(prog: Program, s: Sym) -> bool:
    C = prog.space.pad(s.C).reshape(-1, prog.space.size)
    return any(prog.space.groups[prog.space.var_group[v]].kind != "categorical"
               for m in np.nonzero(C[0])[0] for v in prog.space.monomials[m])


def _s(x: Any) -> Any:
    return x.decode() if isinstance(x, bytes) else x


@op("Imputer")
def _imputer(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = _const(prog, ins[0])
    rep = at.get("replaced_value_float", np.nan)
    if not np.isnan(rep):
        raise NotSymbolic("an Imputer replacing a number other than NaN")
    fill = np.asarray(at.get("imputed_value_floats", [0.0]), dtype=np.float32).astype(np.float64)
    cond = _isnan(prog, node, at, [s], dt)[0]
    return _where(prog, node, {}, [cond, np.broadcast_to(fill, s.shape).copy(), s], dt)


@op("OneHotEncoder")
def _onehot(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    v = ins[0]
    cats = at.get("cats_strings")
    cats = [_s(c) for c in cats] if cats else [float(c) for c in at.get("cats_int64s", [])]
    zeros = at.get("zeros", 1)
    tab = _table(prog, v, v.shape)
    space = prog.space
    out = np.zeros(v.shape + (len(cats), space.size))
    for pos in np.ndindex(*v.shape):
        g, vals = tab[pos]
        for k, val in enumerate(vals):
            key = _s(val) if isinstance(cats[0] if cats else "", str) else float(val)
            if key not in cats:
                if not zeros:
                    raise NotSymbolic(f"OneHotEncoder(zeros=0) fails on the category {key!r} of the domain")
                continue
            m = 0 if g is None else space.mono((space.var(("e", space.groups[g].column, k), g),))
            out = space.pad(out) if out.shape[-1] < space.size else out
            out[pos + (cats.index(key), m)] += 1.0
    out = space.pad(out)
    return [Sym(out, np.zeros(out.shape[:-1]), 0)]


@op("LabelEncoder")
def _labelenc(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    v = ins[0]
    keys = next((list(at[k]) for k in ("keys_strings", "keys_int64s", "keys_floats") if at.get(k)), [])
    vals = next((list(at[k]) for k in ("values_strings", "values_int64s", "values_floats") if at.get(k)), [])
    keys, vals = [_s(k) for k in keys], [_s(x) for x in vals]
    default = next((_s(at[k]) for k in ("default_string", "default_int64", "default_float") if k in at
                    and (at.get("values_strings") if k == "default_string" else True)), None)
    table = dict(zip(keys, vals))
    items = _combine([_table(prog, v, v.shape)], lambda x: table.get(_s(x), default))
    out = Cat(items)
    return [out if at.get("values_strings") else cat_to_sym(out, prog)]


@op("Pow")
def _pow(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s, e = ins
    if not isinstance(e, np.ndarray) or np.any(np.asarray(e) != np.round(e)) or np.any((e < 0) | (e > 2)):
        raise NotSymbolic("a power other than 0, 1 or 2")
    s = _const(prog, s)
    e = _row_const(e)
    shape = np.broadcast_shapes(s.shape, e.shape)
    sb = Sym(np.broadcast_to(prog.space.pad(s.C), shape + (prog.space.size,)), np.broadcast_to(s.E, shape), s.stage)
    eb = np.broadcast_to(e, shape)
    sq = prog.multiply(sb, sb, dt)
    one = prog.const(np.ones(shape))
    C = np.where((eb == 0)[..., None], one.C, np.where((eb == 1)[..., None], sb.C, prog.space.pad(sq.C)))
    E = np.where(eb == 0, 0.0, np.where(eb == 1, sb.E, sq.E))
    return [Sym(prog.space.pad(C), E, s.stage)]


@op("ReduceProd", "ReduceSum")
def _reduce(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = _const(prog, ins[0])
    axes = _axes(at, ins)
    if axes is None or len(axes) != 1:
        raise NotSymbolic(f"{node.op_type} over several axes")
    ax = _axis(axes[0], s)
    ax = ax % len(s.shape)
    n = s.shape[ax]
    parts = [_take(s, np.array([i]), ax) for i in range(n)]
    acc = parts[0]
    for p in parts[1:]:
        acc = prog.multiply(acc, p, dt) if node.op_type == "ReduceProd" else prog.add(acc, p, dt)
    if not at.get("keepdims", 1):
        acc = _reshape_value(acc, tuple(d for i, d in enumerate(acc.shape) if i != ax))
    return [acc]


@op("ArgMax")
def _argmax(prog: Program, node: Any, at: dict, ins: list, dt: str) -> list:
    s = _const(prog, ins[0])
    if _axis(at.get("axis", 0), s) not in (0, -1) or s.C.ndim != 2:
        raise NotSymbolic("an ArgMax over an inner axis")
    if at.get("select_last_index", 0):
        raise NotSymbolic("ArgMax select_last_index")
    return [_LabelIdx(s)]
