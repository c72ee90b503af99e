"""portable's own ONNX pass before nnef-tools: what nnef-tools 1.0.11 maps wrongly or cannot map, made right.

Run on a standard-ops ONNX model (after the ONNX-ML lowering) before nnef-tools converts it:

1. **Refusals first**: tensor types NNEF cannot hold (bfloat16, float8, 4-bit and 2-bit integers, strings,
   complex), training-mode operators (Dropout, BatchNormalization with `training_mode`), random operators.
2. **Function expansion**: an operator nnef-tools has no mapping for but that ONNX defines as a function
   (LayerNormalization, Gelu, Mish, HardSwish, Celu, Attention, ...) is replaced by its function body, taken from
   onnx's own operator schemas (`OpSchema.get_function_with_opset_version` / context-dependent functions).
3. **Constant folding**: every node whose inputs are all constants, and `Shape`/`Size` of tensors whose shapes
   onnx's shape inference knows statically, is evaluated with `onnx.reference` and becomes an initializer
   (the shape subgraphs exporters write: Shape -> Gather -> Concat -> Reshape). The batch dimension stays
   symbolic here, so nothing that depends on the batch size is baked in.
4. **Unrolling**: LSTM, GRU and RNN over a static sequence length become their gates, step by step.
5. **Rewrites** of the operators nnef-tools maps wrongly or not at all into ones it maps right: Elu/Selu/HardSigmoid with
   their parameters, Flatten on any axis, variadic Max/Min/Sum/Mean, Softmax/LogSoftmax/Hardmax on any axis
   (opset >= 13 means the last axis by default), LpNormalization of a zero vector (0, not NaN), inference-mode
   Dropout as Identity, Reciprocal, Cast between types NNEF keeps in one precision, pooling with auto_pad,
   ceil mode and LpPool's p, Space/DepthToSpace, GatherElements (a one-hot mask), ArgMax/ArgMin's
   select_last_index, Resize/Upsample (per-axis maps taken from onnx.reference), Expand adding dimensions,
   MatMul with 1-D operands, negative Gather indices.

Every node-case outcome is measured by tests/test_nnef_node_cases.py (ONNX's backend node tests, and their
constant-parameter variants): a rewrite exists because a case was wrong or refused without it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedModelError
from ..registry import require

# ONNX operators nnef-tools maps (its `_Transforms` keys), minus those this pass rewrites itself
NNEF_TOOLS_OPS = frozenset((
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalMaxPool", "GlobalAveragePool",
    "GlobalLpPool", "ReduceMin", "ReduceMax", "ReduceMean", "ReduceSum", "ReduceL1", "ReduceL2", "ArgMin", "ArgMax",
    "BatchNormalization", "Relu", "Sigmoid", "Tanh", "Softplus", "Not", "Identity", "Erf", "Mish",
    "Abs", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Exp",
    "Log", "Neg", "Sqrt", "Ceil", "Floor", "Round", "Add", "Sub", "Mul", "Div", "Pow", "And", "Or",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "LeakyRelu", "PRelu", "Transpose", "Reshape",
    "Squeeze", "Unsqueeze", "MatMul", "Gemm", "LRN", "Concat", "Split", "Softmax", "Where", "Clip",
    "Pad", "Tile", "Expand", "Slice", "MeanVarianceNormalization", "InstanceNormalization",
    "Upsample", "Resize", "Constant", "Gather", "Cast", "LSTM", "GRU", "RNN", "DepthToSpace", "SpaceToDepth", "Max", "Min", "Sum"))
# rewritten here (into operators of NNEF_TOOLS_OPS)
REWRITTEN = frozenset(("Elu", "Selu", "HardSigmoid", "Flatten", "Max", "Min", "Sum", "Mean", "Softmax",
                       "LogSoftmax", "Hardmax", "LpNormalization", "Dropout", "Reciprocal", "Cast", "CastLike",
                       "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum", "ReduceProd", "Xor", "Softsign", "IsNaN",
                       "ThresholdedRelu", "Shrink"))
RANDOM_OPS = frozenset(("RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli",
                        "Multinomial"))
TRAINING_OPS = frozenset(("Gradient", "Momentum", "Adagrad", "Adam"))
_NNEF_TYPES = {"FLOAT", "DOUBLE", "FLOAT16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
               "UINT64", "BOOL"}
_MAX_EXPANSION_ROUNDS = 8


class Pass:
    """One model's pass: shape-aware helpers around a ModelProto edited in place."""

    def __init__(self, proto: Any) -> None:
        self.onnx = require("onnx")
        self.h = self.onnx.helper
        self.proto = proto
        self.g = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
        self._count = 0
        self.types: dict[str, Any] = {}
        self.consts: dict[str, np.ndarray] = {}

    # -- helpers ---------------------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        self._count += 1
        return f"{base}__p{self._count}"

    def infer(self) -> None:
        """Types and shapes of every tensor onnx's shape inference can tell."""
        onnx = self.onnx
        try:
            inferred = onnx.shape_inference.infer_shapes(self.proto, data_prop=True)
        except Exception as exc:
            raise UnsupportedModelError(f"onnx shape inference failed: {str(exc).splitlines()[0][:300]}") from None
        self.types = {}
        for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
            self.types[vi.name] = vi.type
        for init in self.g.initializer:
            self.types[init.name] = self.h.make_tensor_type_proto(init.data_type, list(init.dims))
        self.consts = {i.name: self.onnx.numpy_helper.to_array(i) for i in self.g.initializer}

    def elem(self, name: str) -> int:
        t = self.types.get(name)
        return t.tensor_type.elem_type if t is not None and t.HasField("tensor_type") else 0

    def shape(self, name: str) -> list[int | None] | None:
        t = self.types.get(name)
        if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim]

    def const(self, value: Any, like: str | int, name: str = "c") -> str:
        """An initializer holding `value` in the element type of tensor `like` (or element type `like`)."""
        onnx = self.onnx
        elem = like if isinstance(like, int) else (self.elem(like) or onnx.TensorProto.FLOAT)
        np_type = onnx.helper.tensor_dtype_to_np_dtype(elem)
        arr = np.asarray(value, dtype=np_type)
        n = self.fresh(name)
        self.g.initializer.append(onnx.numpy_helper.from_array(arr, n))
        self.consts[n] = arr
        self.types[n] = self.h.make_tensor_type_proto(elem, list(arr.shape))
        return n

    def attrs(self, node: Any) -> dict[str, Any]:
        out = {}
        for a in node.attribute:
            v = self.h.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out


# ----------------------------------------------------------------------------------------------------------
# 1. refusals
# ----------------------------------------------------------------------------------------------------------
def refuse_unsupported(p: Pass) -> None:
    onnx = p.onnx
    names = {v: k for k, v in onnx.TensorProto.DataType.items()}

    def check_type(name: str, where: str) -> None:
        e = p.elem(name)
        if e and names.get(e) not in _NNEF_TYPES:
            raise UnsupportedModelError(f"{where} '{name}' is {names.get(e, e)}; NNEF holds only scalars (float32 "
                                        "or float64), integers and logicals")

    for vi in p.g.input:
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedModelError(f"the input '{vi.name}' is not a tensor; NNEF graphs take tensors only")
        check_type(vi.name, "the input")
    for vi in p.g.output:
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedModelError(f"the output '{vi.name}' is not a tensor; NNEF graphs give tensors only")
        check_type(vi.name, "the output")
    used = {i for n in p.g.node for i in n.input}
    for init in p.g.initializer:
        if init.name in used:
            check_type(init.name, "the initializer")
    for node in p.g.node:
        at = p.attrs(node)
        where = f"{node.op_type} node '{node.name or node.output[0]}'"
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(f"the {where} is in domain '{node.domain}'; NNEF has no counterpart")
        if node.op_type in RANDOM_OPS:
            raise UnsupportedModelError(f"the {where} draws random numbers; NNEF graphs are deterministic")
        if node.op_type in TRAINING_OPS:
            raise UnsupportedModelError(f"the {where} is a training operator; NNEF describes inference")
        if node.op_type == "BatchNormalization" and (at.get("training_mode") or len(node.output) > 1 and
                                                     any(node.output[1:])):
            raise UnsupportedModelError(f"the {where} is in training mode (it updates running statistics); "
                                        "NNEF describes inference — export the model in eval mode")
        if node.op_type == "Dropout":
            training = node.input[2] if len(node.input) > 2 else ""
            if training and (training not in p.consts or bool(np.asarray(p.consts[training]).ravel()[0])):
                raise UnsupportedModelError(f"the {where} is in training mode (random); NNEF describes inference "
                                            "— export the model in eval mode")
            if len(node.output) > 1 and node.output[1]:
                raise UnsupportedModelError(f"the {where} gives its mask as an output; NNEF's inference graph "
                                            "has no dropout mask")
        for a in node.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise UnsupportedModelError(f"the {where} holds a subgraph (control flow); NNEF graphs are "
                                            "straight-line")
        if node.op_type in ("Cast", "CastLike"):
            to = at.get("to") if node.op_type == "Cast" else p.elem(node.input[1])
            if to and names.get(to) not in _NNEF_TYPES:
                raise UnsupportedModelError(f"the {where} casts to {names.get(to, to)}; NNEF holds only scalars, "
                                            "integers and logicals")
        for o in node.output:
            if o:
                check_type(o, f"the {where} computes")


# ----------------------------------------------------------------------------------------------------------
# 2. function expansion
# ----------------------------------------------------------------------------------------------------------
def _function_body(p: Pass, node: Any) -> Any:
    onnx = p.onnx
    try:
        schema = onnx.defs.get_schema(node.op_type, p.opset, node.domain)
    except Exception:
        return None
    fp = onnx.FunctionProto()
    if schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= p.opset]
        if not versions:
            return None
        fp.ParseFromString(schema.get_function_with_opset_version(max(versions)))
        return fp
    if schema.has_context_dependent_function:
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= p.opset]
        if not versions:
            return None
        types = []
        for i in node.input:
            t = p.types.get(i) if i else None
            if i and t is None:
                return None
            types.append((t or onnx.TypeProto()).SerializeToString())
        try:
            raw = schema.get_context_dependent_function_with_opset_version(max(versions), node.SerializeToString(),
                                                                         types)
        except Exception:
            return None
        if not raw:
            return None
        fp.ParseFromString(raw)
        return fp
    return None


def _inline(p: Pass, node: Any, fp: Any) -> list[Any]:
    onnx = p.onnx
    prefix = p.fresh(node.op_type) + "_"
    names = {}
    for i, name in enumerate(fp.input):
        names[name] = node.input[i] if i < len(node.input) else ""
    for i, name in enumerate(fp.output):
        if i < len(node.output) and node.output[i]:
            names[name] = node.output[i]
    attrs = {a.name: a for a in node.attribute}
    defaults = {a.name: a for a in fp.attribute_proto}

    def rn(n: str) -> str:
        return names.get(n, prefix + n if n else "")

    out = []
    for inner in fp.node:
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        new.name = prefix + inner.name if inner.name else ""
        del new.input[:]
        new.input.extend(rn(i) for i in inner.input)
        del new.output[:]
        new.output.extend(rn(o) for o in inner.output)
        kept = []
        for a in inner.attribute:
            if a.ref_attr_name:
                src = attrs.get(a.ref_attr_name) or defaults.get(a.ref_attr_name)
                if src is None:
                    continue
                b = onnx.AttributeProto()
                b.CopyFrom(src)
                b.name = a.name
                kept.append(b)
            elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                return []  # control flow: not expanded (constant folding may still evaluate the node)
            else:
                kept.append(a)
        del new.attribute[:]
        new.attribute.extend(kept)
        out.append(new)
    return out


def expand_functions(p: Pass, keep: frozenset[str]) -> bool:
    """Replace each node whose operator is not in `keep` by its ONNX function body (repeatedly)."""
    changed = False
    for _ in range(_MAX_EXPANSION_ROUNDS):
        p.infer()
        nodes, any_now = [], False
        for node in p.g.node:
            if node.op_type not in keep and node.domain in ("", "ai.onnx"):
                fp = _function_body(p, node)
                body = _inline(p, node, fp) if fp is not None else []
                if body:
                    nodes.extend(body)
                    any_now = True
                    continue
            nodes.append(node)
        if not any_now:
            break
        del p.g.node[:]
        p.g.node.extend(nodes)
        changed = True
    return changed


# ----------------------------------------------------------------------------------------------------------
# 3. constant folding
# ----------------------------------------------------------------------------------------------------------
def fold_constants(p: Pass) -> None:
    """Evaluate (with onnx.reference) every node whose inputs are constants, and Shape/Size of static shapes."""
    onnx = p.onnx
    from onnx.reference import ReferenceEvaluator

    for _ in range(_MAX_EXPANSION_ROUNDS):
        p.infer()
        folded = False
        graph_outputs = {o.name for o in p.g.output}
        keep = []
        for node in p.g.node:
            outs = [o for o in node.output if o]
            if node.op_type in RANDOM_OPS or not outs or any(o in graph_outputs for o in outs):
                keep.append(node)
                continue
            values = None
            if node.op_type in ("Shape", "Size") and node.input[0] not in p.consts:
                shp = p.shape(node.input[0])
                if shp is not None and all(d is not None for d in shp):
                    at = p.attrs(node)
                    if node.op_type == "Size":
                        values = [np.asarray(int(np.prod(shp)), dtype=np.int64)]
                    else:
                        r = len(shp)
                        start, end = at.get("start", 0), at.get("end", r)
                        start, end = max(0, start + r if start < 0 else start), min(r, end + r if end < 0 else end)
                        values = [np.asarray(shp[start:end], dtype=np.int64)]
            elif all((i == "" or i in p.consts) for i in node.input):
                try:
                    ev = ReferenceEvaluator(node, opsets={"": p.opset})
                    values = ev.run(None, {i: p.consts[i] for i in node.input if i})
                except Exception:
                    values = None
            if values is None:
                keep.append(node)
                continue
            for name, v in zip(node.output, values):
                if name:
                    arr = np.asarray(v)
                    if arr.dtype == object:
                        keep.append(node)
                        break
                    p.g.initializer.append(onnx.numpy_helper.from_array(arr, name))
                    p.consts[name] = arr
            else:
                folded = True
                continue
        del p.g.node[:]
        p.g.node.extend(keep)
        if not folded:
            break
    used = {i for n in p.g.node for i in n.input} | {o.name for o in p.g.output}
    inits = [i for i in p.g.initializer if i.name in used]
    del p.g.initializer[:]
    p.g.initializer.extend(inits)
    # IR >= 4: initializers need not be inputs; drop those that are listed as inputs too
    init_names = {i.name for i in p.g.initializer}
    ins = [vi for vi in p.g.input if vi.name not in init_names]
    if len(ins) != len(p.g.input):
        del p.g.input[:]
        p.g.input.extend(ins)
        if p.proto.ir_version < 4:
            p.proto.ir_version = 4


# ----------------------------------------------------------------------------------------------------------
# 4. rewrites
# ----------------------------------------------------------------------------------------------------------
def rewrite(p: Pass) -> None:
    onnx = p.onnx
    h = p.h
    p.infer()
    nodes: list[Any] = []

    def add(op: str, inputs: list[str], outputs: list[str] | None = None, **kw: Any) -> str:
        outs = outputs or [p.fresh(op.lower())]
        nodes.append(h.make_node(op, inputs, outs, **kw))
        return outs[0]

    def axes_input(axes: list[int]) -> list[str]:
        return [p.const(np.asarray(axes, np.int64), onnx.TensorProto.INT64, "axes")]

    def reduce(op: str, x: str, axes: list[int], out: str | None = None, keepdims: int = 1) -> str:
        if p.opset >= 18 or (op == "ReduceSum" and p.opset >= 13):
            return add(op, [x, *axes_input(axes)], [out] if out else None, keepdims=keepdims)
        return add(op, [x], [out] if out else None, axes=axes, keepdims=keepdims)

    def reduce_axes(node: Any, rank: int) -> list[int] | None:
        at = p.attrs(node)
        if "axes" in at:
            axes = list(at["axes"])
        elif len(node.input) > 1 and node.input[1]:
            if node.input[1] not in p.consts:
                return None
            axes = [int(a) for a in np.asarray(p.consts[node.input[1]]).ravel()]
        else:
            axes = []
        if not axes and at.get("noop_with_empty_axes", 0):
            return []
        return [a + rank if a < 0 else a for a in axes] or list(range(rank))

    made = {o: n for n in p.g.node for o in n.output}

    def small_integer(name: str) -> bool:
        """An integer tensor float32 holds exactly: a constant within +-2**24, or indices of ArgMax/ArgMin."""
        if _kind(p.elem(name)) != "integer":
            return False
        if name in p.consts:
            v = np.asarray(p.consts[name])
            return v.size == 0 or bool(np.abs(v.astype(np.float64)).max() < 2 ** 24)
        src = made.get(name)
        return src is not None and src.op_type in ("ArgMax", "ArgMin")

    for node in p.g.node:
        at = p.attrs(node)
        op = node.op_type
        x = node.input[0] if node.input else ""
        y = node.output[0] if node.output else ""
        shp = p.shape(x) if x else None
        rank = len(shp) if shp is not None else None
        where = f"{op} node '{node.name or y}'"
        if op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual") and len(node.input) == 2 and \
                all(small_integer(i) for i in node.input):
            # NNEF compares scalars only (`eq` on integers fails its parser): class indices (skl2onnx's hard
            # voting compares ArgMax with the class positions) are compared as the floats that hold them exactly
            add(op, [add("Cast", [i], to=onnx.TensorProto.FLOAT) for i in node.input], [y])
        elif op in ("Elu", "Selu"):
            alpha = at.get("alpha", 1.0 if op == "Elu" else 1.67326319217681884765625)
            neg = add("Mul", [add("Sub", [add("Exp", [x]), p.const(1.0, x)]), p.const(alpha, x)])
            if op == "Elu":
                add("Where", [add("Less", [x, p.const(0.0, x)]), neg, x], [y])
            else:
                gamma = at.get("gamma", 1.05070102214813232421875)
                sel = add("Where", [add("Less", [x, p.const(0.0, x)]), neg, x])
                add("Mul", [sel, p.const(gamma, x)], [y])
        elif op == "HardSigmoid":
            lin = add("Add", [add("Mul", [x, p.const(at.get("alpha", 0.2), x)]), p.const(at.get("beta", 0.5), x)])
            add("Clip", [lin, p.const(0.0, x), p.const(1.0, x)], [y])
        elif op == "Flatten":
            if rank is None:
                raise UnsupportedModelError(f"the {where} flattens a tensor of unknown rank")
            axis = at.get("axis", 1)
            axis = axis + rank if axis < 0 else axis
            lead, trail = shp[:axis], shp[axis:]
            if all(d is not None for d in trail):
                shape = [-1 if lead else 1, int(np.prod(trail))]
            elif all(d is not None for d in lead):
                shape = [int(np.prod(lead)), -1]
            else:
                raise UnsupportedModelError(f"the {where} flattens around several free dimensions")
            add("Reshape", [x, p.const(np.asarray(shape, np.int64), onnx.TensorProto.INT64, "shape")], [y])
        elif op in ("Max", "Min", "Sum", "Mean"):
            ins = [i for i in node.input if i]
            binop = {"Max": "Max", "Min": "Min", "Sum": "Add", "Mean": "Add"}[op]
            if len(ins) == 1 and op != "Mean":
                add("Identity", ins, [y])
                continue
            acc = ins[0]
            for k, other in enumerate(ins[1:]):
                last = k == len(ins) - 2 and op != "Mean"
                acc = add(binop, [acc, other], [y] if last else None)
            if op == "Mean":
                add("Div", [acc, p.const(float(len(ins)), y)], [y])
            elif len(ins) == 1:
                add("Identity", ins, [y])
        elif op in ("Softmax", "LogSoftmax", "Hardmax"):
            if rank is None:
                raise UnsupportedModelError(f"the {where} works on a tensor of unknown rank")
            axis = at.get("axis", -1 if p.opset >= 13 else 1)
            axis = axis + rank if axis < 0 else axis
            axes = [axis] if p.opset >= 13 else list(range(axis, rank))
            if op == "Hardmax":
                # one-hot of the first maximum along the axis (opset >= 13; earlier: flattened trailing axes)
                if len(axes) != 1 or shp[axis] is None:
                    raise UnsupportedModelError(f"the {where} on several axes cannot be converted to NNEF")
                idx = add("ArgMax", [x], axis=axis, keepdims=1)
                rng = np.arange(shp[axis], dtype=np.int64).reshape([-1] + [1] * (rank - axis - 1))
                eq = add("Equal", [idx, p.const(rng, onnx.TensorProto.INT64, "range")])
                add("Where", [eq, p.const(1.0, x), p.const(0.0, x)], [y])
                continue
            if op == "Softmax" and len(axes) == 1:
                add("Softmax", [x], [y], axis=axis)
                continue
            m = reduce("ReduceMax", x, axes)
            d = add("Sub", [x, m])
            e = add("Exp", [d])
            s = reduce("ReduceSum", e, axes)
            if op == "Softmax":
                add("Div", [e, s], [y])
            else:
                add("Sub", [d, add("Log", [s])], [y])
        elif op == "LpNormalization":
            if rank is None:
                raise UnsupportedModelError(f"the {where} works on a tensor of unknown rank")
            axis = at.get("axis", -1)
            axis = axis + rank if axis < 0 else axis
            pw = at.get("p", 2)
            if pw not in (1, 2):
                raise UnsupportedModelError(f"the {where} has p={pw}; ONNX defines p = 1 or 2")
            norm = reduce("ReduceL1" if pw == 1 else "ReduceL2", x, [axis])
            zero = add("Equal", [norm, p.const(0.0, x)])
            safe = add("Where", [zero, p.const(1.0, x), norm])
            add("Div", [x, safe], [y])
        elif op == "Dropout":
            add("Identity", [x], [y])
        elif op == "Reciprocal":
            add("Div", [p.const(1.0, x), x], [y])
        elif op in ("Cast", "CastLike"):
            to = at.get("to") if op == "Cast" else p.elem(node.input[1])
            src = p.elem(x)
            if not to or not src:
                raise UnsupportedModelError(f"the {where} casts between types shape inference cannot tell")
            kind = _kind(to)
            if kind == _kind(src):
                add("Identity", [x], [y])
            else:
                add("Cast", [x], [y], to=int(to))
        elif op == "ReduceSumSquare" or op in ("ReduceLogSum", "ReduceLogSumExp", "ReduceProd"):
            axes = reduce_axes(node, rank) if rank is not None else None
            if axes is None:
                raise UnsupportedModelError(f"{op} with computed axes cannot be converted to NNEF")
            keepdims = at.get("keepdims", 1)
            if not axes:
                add("Identity", [x], [y]) if op != "ReduceSumSquare" else add("Mul", [x, x], [y])
                if op == "ReduceLogSum":
                    nodes.pop()
                    add("Log", [x], [y])
                elif op == "ReduceLogSumExp":
                    nodes.pop()
                    add("Identity", [x], [y])
                continue
            if op == "ReduceSumSquare":
                reduce("ReduceSum", add("Mul", [x, x]), axes, y, keepdims)
            elif op == "ReduceLogSum":
                add("Log", [reduce("ReduceSum", x, axes, None, keepdims)], [y])
            elif op == "ReduceLogSumExp":
                m = reduce("ReduceMax", x, axes)
                s = reduce("ReduceSum", add("Exp", [add("Sub", [x, m])]), axes)
                r = add("Add", [add("Log", [s]), m])
                if keepdims:
                    add("Identity", [r], [y])
                else:
                    add("Squeeze", [r, *axes_input(axes)], [y]) if p.opset >= 13 else \
                        add("Squeeze", [r], [y], axes=axes)
            elif shp is not None and all(shp[a] is not None for a in axes) and \
                    int(np.prod([shp[a] for a in axes])) <= 64:
                # NNEF has no product reduction: along axes of known small length (PolynomialFeatures' degree,
                # a product of a few columns), the product of the slices, one Mul each, in the order of the axis
                i64 = onnx.TensorProto.INT64
                acc = x
                for a in axes:
                    parts = [add("Slice", [acc, p.const(np.asarray([i]), i64, "start"),
                                           p.const(np.asarray([i + 1]), i64, "end"), p.const(np.asarray([a]), i64,
                                                                                            "axis")])
                             for i in range(shp[a])]
                    acc = parts[0]
                    for part in parts[1:]:
                        acc = add("Mul", [acc, part])
                if keepdims:
                    add("Identity", [acc], [y])
                else:
                    add("Squeeze", [acc, *axes_input(axes)], [y]) if p.opset >= 13 else \
                        add("Squeeze", [acc], [y], axes=axes)
            else:
                raise UnsupportedModelError(f"the {where} multiplies along axes of unknown or large length (over "
                                            "64 elements); NNEF has no product reduction")
        elif op in ("MaxPool", "AveragePool", "LpPool") and shp is not None and \
                all(d is not None for d in shp[2:]):
            _pool(p, node, at, shp, add)
        elif op in ("SpaceToDepth", "DepthToSpace") and shp is not None and len(shp) == 4 and \
                all(d is not None for d in shp[1:]):
            b = at["blocksize"]
            _, c, hh, ww = shp
            i64 = onnx.TensorProto.INT64
            if op == "SpaceToDepth":
                perm = [0, 3, 5, 1, 2, 4] if at.get("mode", "DCR") == "DCR" else [0, 1, 3, 5, 2, 4]
                r1, r2 = [0, c, hh // b, b, ww // b, b], [0, c * b * b, hh // b, ww // b]
            elif at.get("mode", "DCR") == "DCR":
                r1, perm, r2 = [0, b, b, c // (b * b), hh, ww], [0, 3, 4, 1, 5, 2], [0, c // (b * b), hh * b, ww * b]
            else:
                r1, perm, r2 = [0, c // (b * b), b, b, hh, ww], [0, 1, 4, 2, 5, 3], [0, c // (b * b), hh * b, ww * b]
            t = add("Transpose", [add("Reshape", [x, p.const(np.asarray(r1), i64, "shape")])], perm=perm)
            add("Reshape", [t, p.const(np.asarray(r2), i64, "shape")], [y])
        elif op == "GatherElements" and shp is not None and p.shape(node.input[1]) is not None and \
                shp[at.get("axis", 0)] is not None:
            # NNEF has no per-element gather: compare the indices with every position and sum what matches
            axis = at.get("axis", 0)
            axis = axis + rank if axis < 0 else axis
            n_ax = shp[axis]
            ishp = p.shape(node.input[1])
            if any(v is None for v in ishp) or any(a is None for a in shp):
                raise UnsupportedModelError(f"the {where} gathers with free dimensions")
            i64 = onnx.TensorProto.INT64
            src = x
            cut = [j for j in range(rank) if j != axis and ishp[j] != shp[j]]
            if cut:
                src = add("Slice", [x, p.const(np.zeros(len(cut), np.int64), i64, "s"),
                                    p.const(np.asarray([ishp[j] for j in cut]), i64, "e"),
                                    p.const(np.asarray(cut), i64, "a")])
            scal = 11 if p.elem(x) == 11 else onnx.TensorProto.FLOAT
            idx = add("Cast", [node.input[1]], to=scal)
            idx = add("Where", [add("Less", [idx, p.const(0.0, scal)]),
                                add("Add", [idx, p.const(float(n_ax), scal)]), idx])
            idx_u = add("Unsqueeze", [idx, p.const(np.asarray([rank]), i64, "axes")]) if p.opset >= 13 else \
                add("Unsqueeze", [idx], axes=[rank])
            perm = list(range(rank + 1))
            perm[axis], perm[rank] = rank, axis
            x_u = add("Unsqueeze", [src, p.const(np.asarray([rank]), i64, "axes")]) if p.opset >= 13 else \
                add("Unsqueeze", [src], axes=[rank])
            x_t = add("Transpose", [x_u], perm=perm)  # the gathered axis moved last, size 1 in its place
            mask = add("Equal", [idx_u, p.const(_positions(n_ax, rank), scal, "pos")])
            zero = p.const(0, x)
            picked = add("Where", [mask, x_t, zero])
            r = reduce("ReduceSum", picked, [rank], None, 0)
            add("Identity", [r], [y])
        elif op in ("ArgMax", "ArgMin") and at.get("select_last_index") and shp is not None and \
                shp[at.get("axis", 0)] is not None:
            axis = at.get("axis", 0)
            axis = axis + rank if axis < 0 else axis
            i64 = onnx.TensorProto.INT64
            rev = add("Slice", [x, p.const(np.asarray([-1]), i64, "s"), p.const(np.asarray([-(2 ** 31)]), i64, "e"),
                                p.const(np.asarray([axis]), i64, "a"), p.const(np.asarray([-1]), i64, "st")])
            k = add(op, [rev], axis=axis, keepdims=at.get("keepdims", 1))
            add("Sub", [p.const(np.asarray(shp[axis] - 1, np.int64), i64, "n"), k], [y])
        elif op == "Gather" and node.input[1] in p.consts and shp is not None and \
                shp[at.get("axis", 0)] is not None and np.any(np.asarray(p.consts[node.input[1]]) < 0):
            # NNEF's gather takes indices in [0, n): negative ones are counted from the end here
            n_ax = shp[at.get("axis", 0)]
            idx = np.asarray(p.consts[node.input[1]])
            fixed = p.const(np.where(idx < 0, idx + n_ax, idx), node.input[1], "indices")
            add("Gather", [x, fixed], [y], **at)
        elif op in ("Resize", "Upsample") and shp is not None and all(d is not None for d in shp):
            _resize(p, node, at, shp, add)
        elif op == "Expand" and shp is not None and p.shape(y) is not None and \
                all(d is not None for d in shp + p.shape(y)):
            # nnef-tools tiles by the ratio of the input's own dimensions: wrong when Expand adds dimensions
            out_shape = p.shape(y)
            src = x
            if len(out_shape) > rank:
                lead = list(range(len(out_shape) - rank))
                i64 = onnx.TensorProto.INT64
                src = add("Unsqueeze", [x, p.const(np.asarray(lead), i64, "axes")]) if p.opset >= 13 else \
                    add("Unsqueeze", [x], axes=lead)
            full = [1] * (len(out_shape) - rank) + list(shp)
            reps = [o // i for o, i in zip(out_shape, full)]
            add("Tile", [src, p.const(np.asarray(reps, np.int64), onnx.TensorProto.INT64, "repeats")], [y])
        elif op == "MatMul" and (len(p.shape(node.input[0]) or [0, 0]) == 1 or
                                 len(p.shape(node.input[1]) or [0, 0]) == 1):
            # ONNX's 1-D operands (a row vector before, a column vector after, then dropped): explicit here,
            # as nnef-tools broadcasts them as leading dimensions
            a, b_ = node.input[0], node.input[1]
            i64 = onnx.TensorProto.INT64
            ra, rb = len(p.shape(a)), len(p.shape(b_))

            def unsq(v: str, axis: int) -> str:
                return add("Unsqueeze", [v, p.const(np.asarray([axis]), i64, "axes")]) if p.opset >= 13 else \
                    add("Unsqueeze", [v], axes=[axis])

            drop = []
            if ra == 1:
                a = unsq(a, 0)
                drop.append(-2)
            if rb == 1:
                b_ = unsq(b_, 1)
                drop.append(-1)
            mm = add("MatMul", [a, b_])
            out_rank = max(ra + (1 if ra == 1 else 0), rb + (1 if rb == 1 else 0))
            axes = sorted(out_rank + d for d in drop)
            add("Squeeze", [mm, p.const(np.asarray(axes), i64, "axes")], [y]) if p.opset >= 13 else \
                add("Squeeze", [mm], [y], axes=axes)
        elif op == "IsNaN":  # NaN is the one value that differs from itself
            add("Not", [add("Equal", [x, x])], [y])
        elif op == "Xor":
            add("And", [add("Or", [x, node.input[1]]), add("Not", [add("And", [x, node.input[1]])])], [y])
        elif op == "Softsign":
            add("Div", [x, add("Add", [add("Abs", [x]), p.const(1.0, x)])], [y])
        elif op == "ThresholdedRelu":
            add("Where", [add("Greater", [x, p.const(at.get("alpha", 1.0), x)]), x, p.const(0.0, x)], [y])
        elif op == "Shrink":
            lambd, bias = at.get("lambd", 0.5), at.get("bias", 0.0)
            lo = add("Less", [x, p.const(-lambd, x)])
            hi = add("Greater", [x, p.const(lambd, x)])
            add("Where", [lo, add("Add", [x, p.const(bias, x)]),
                          add("Where", [hi, add("Sub", [x, p.const(bias, x)]), p.const(0.0, x)])], [y])
        elif op in ("ReduceMin", "ReduceMax", "ReduceMean", "ReduceSum", "ReduceL1", "ReduceL2") and \
                rank is not None and (len(node.input) > 1 or "axes" in at or at.get("noop_with_empty_axes")):
            axes = reduce_axes(node, rank)
            if axes is None:
                raise UnsupportedModelError(f"{op} with computed axes cannot be converted to NNEF")
            if not axes:
                add("Identity", [x], [y])
            else:
                reduce(op, x, axes, y, at.get("keepdims", 1))
        else:
            nodes.append(node)
    del p.g.node[:]
    p.g.node.extend(nodes)


def _positions(n: int, rank: int) -> np.ndarray:
    """0..n-1 laid along the last of rank + 1 axes."""
    return np.arange(n, dtype=np.float64).reshape([1] * rank + [n])


def _pool(p: Pass, node: Any, at: dict[str, Any], shp: list[Any], add: Any) -> None:
    """MaxPool/AveragePool/LpPool with explicit padding and no ceil mode or auto_pad (nnef-tools gets
    SAME_LOWER, ceil mode, and LpPool's p wrong): the padded windows are computed here as ONNX defines them."""
    onnx = p.onnx
    x, y = node.input[0], node.output[0]
    sp = shp[2:]
    r = len(sp)
    k = list(at["kernel_shape"])
    s = list(at.get("strides", [1] * r))
    d = list(at.get("dilations", [1] * r))
    dk = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    auto = at.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    pads = list(at.get("pads", [0] * 2 * r))
    begin, end = pads[:r], pads[r:]
    ceil = bool(at.get("ceil_mode", 0))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max(0, (-(-n // st) - 1) * st + kk - n) for n, st, kk in zip(sp, s, dk)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        begin, end = (small, big) if auto == "SAME_UPPER" else (big, small)
        out = [-(-n // st) for n, st in zip(sp, s)]
    elif auto == "VALID":
        begin, end = [0] * r, [0] * r
        out = [(n - kk) // st + 1 if not ceil else -(-(n - kk) // st) + 1 for n, kk, st in zip(sp, dk, s)]
    else:
        out = []
        for n, b, e, kk, st in zip(sp, begin, end, dk, s):
            span = n + b + e - kk
            o = (-(-span // st) if ceil else span // st) + 1
            if ceil and (o - 1) * st >= n + b:
                o -= 1
            out.append(o)
    extra = [max(0, (o - 1) * st + kk - (n + b + e)) for o, st, kk, n, b, e in zip(out, s, dk, sp, begin, end)]
    i64 = onnx.TensorProto.INT64
    common = {"kernel_shape": k, "strides": s}
    if any(dd != 1 for dd in d):
        common["dilations"] = d
    if node.op_type == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedModelError("MaxPool's Indices output cannot be converted to NNEF")
        add("MaxPool", [x], [y], pads=begin + [e + x_ for e, x_ in zip(end, extra)], **common)
        return
    include = bool(at.get("count_include_pad", 0)) or node.op_type == "LpPool"
    src = x
    if node.op_type == "LpPool":
        pw = float(at.get("p", 2))
        src = add("Pow", [add("Abs", [x]), p.const(pw, x)])
    if include and any(begin + end + extra):
        # the explicit pads count in the average (or sum), the ceil-mode overhang does not
        pad_vals = [0, 0] + list(begin) + [0, 0] + [e + x_ for e, x_ in zip(end, extra)] if node.op_type == \
            "LpPool" else [0, 0] + list(begin) + [0, 0] + list(end)
        src = add("Pad", [src, p.const(np.asarray(pad_vals), i64, "pads")], mode="constant")
        rest = [0] * r + ([0] * r if node.op_type == "LpPool" else extra)
        avg = add("AveragePool", [src], pads=rest, count_include_pad=0, **common)
    else:
        avg = add("AveragePool", [src], pads=begin + [e + x_ for e, x_ in zip(end, extra)],
                  count_include_pad=0, **common)
    if node.op_type == "AveragePool":
        add("Identity", [avg], [y])
        return
    total = add("Mul", [avg, p.const(float(np.prod(k)), x)])
    add("Pow", [total, p.const(1.0 / pw, x)], [y])


_ACTS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign", "softplus": "Softplus",
         "leakyrelu": "LeakyRelu", "thresholdedrelu": "ThresholdedRelu", "hardsigmoid": "HardSigmoid", "elu": "Elu",
         "affine": "Affine", "scaledtanh": "ScaledTanh"}


def unroll_recurrent(p: Pass) -> None:
    """LSTM, GRU and RNN with a static sequence length, unrolled step by step into matrix products and
    element-wise operators (as ONNX defines each gate), every direction and layout."""
    onnx = p.onnx
    h = p.h
    i64 = onnx.TensorProto.INT64
    if not any(n.op_type in ("LSTM", "GRU", "RNN") for n in p.g.node):
        return
    p.infer()
    nodes: list[Any] = []

    def add(op: str, inputs: list[str], outputs: list[str] | None = None, **kw: Any) -> str:
        outs = outputs or [p.fresh(op.lower())]
        nodes.append(h.make_node(op, inputs, outs, **kw))
        return outs[0]

    def ints(v: list[int], name: str = "i") -> str:
        return p.const(np.asarray(v, np.int64), i64, name)

    def squeeze(x: str, axes: list[int]) -> str:
        return add("Squeeze", [x, ints(axes)]) if p.opset >= 13 else add("Squeeze", [x], axes=axes)

    def unsqueeze(x: str, axes: list[int]) -> str:
        return add("Unsqueeze", [x, ints(axes)]) if p.opset >= 13 else add("Unsqueeze", [x], axes=axes)

    def cut(x: str, axis: int, b: int, e: int) -> str:
        return add("Slice", [x, ints([b]), ints([e]), ints([axis])])

    for node in p.g.node:
        op = node.op_type
        if op not in ("LSTM", "GRU", "RNN"):
            nodes.append(node)
            continue
        at = p.attrs(node)
        where = f"{op} node '{node.name or node.output[0]}'"
        ins = list(node.input) + [""] * (8 - len(node.input))
        x, w, r, b, seq_lens, h0 = ins[:6]
        c0, peep = (ins[6], ins[7]) if op == "LSTM" else ("", "")
        xs = p.shape(x)
        layout = at.get("layout", 0)
        if xs is None or any(d is None for d in xs):
            raise UnsupportedModelError(f"the {where} runs over a sequence of unknown length; NNEF needs the "
                                        "static shapes of an export with fixed sequence length and batch")
        if seq_lens:
            lens = p.consts.get(seq_lens)
            if lens is None or not np.all(np.asarray(lens) == (xs[0] if layout == 0 else xs[1])):
                raise UnsupportedModelError(f"the {where} has per-sequence lengths; NNEF cannot stop a sequence "
                                            "early")
        if at.get("input_forget", 0):
            raise UnsupportedModelError(f"the {where} couples its input and forget gates (input_forget=1), "
                                        "which portable does not unroll")
        seq, batch = (xs[0], xs[1]) if layout == 0 else (xs[1], xs[0])
        hidden = at["hidden_size"]
        direction = at.get("direction", "forward")
        dirs = 2 if direction == "bidirectional" else 1
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        default_acts = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[op]
        names = list(at.get("activations", [])) or default_acts * dirs
        if len(names) == len(default_acts) and dirs == 2:
            names = names * 2
        alphas = list(at.get("activation_alpha", []))
        betas = list(at.get("activation_beta", []))
        clip = at.get("clip")
        x_seq = add("Transpose", [x], perm=[1, 0, 2]) if layout == 1 else x
        zeros = p.const(np.zeros([batch, hidden]), x)
        y_dirs, h_dirs, c_dirs = [], [], []

        def act(v: str, k: int) -> str:
            name = _ACTS.get(names[k].lower())
            if name is None:
                raise UnsupportedModelError(f"the {where} uses activation '{names[k]}'")
            alpha = alphas[k] if k < len(alphas) else None
            beta = betas[k] if k < len(betas) else None
            if name in ("Sigmoid", "Tanh", "Relu", "Softsign", "Softplus"):
                return add(name, [v])
            if name == "Affine":
                return add("Add", [add("Mul", [v, p.const(alpha, x)]), p.const(beta, x)])
            if name == "ScaledTanh":
                return add("Mul", [add("Tanh", [add("Mul", [v, p.const(beta, x)])]), p.const(alpha, x)])
            kw = {"alpha": alpha} if alpha is not None else {}
            if name == "HardSigmoid" and beta is not None:
                kw["beta"] = beta
            return add(name, [v], **kw)

        def pre(v: str) -> str:
            return add("Clip", [v, p.const(-clip, x), p.const(clip, x)]) if clip is not None else v

        for d in range(dirs):
            reverse = direction == "reverse" or d == 1
            ak = d * len(default_acts)
            wd = add("Transpose", [squeeze(cut(w, 0, d, d + 1), [0])], perm=[1, 0])   # [I, G*H]
            rd = add("Transpose", [squeeze(cut(r, 0, d, d + 1), [0])], perm=[1, 0])   # [H, G*H]
            if b:
                bd = squeeze(cut(b, 0, d, d + 1), [0])
                wb, rb = cut(bd, 0, 0, gates * hidden), cut(bd, 0, gates * hidden, 2 * gates * hidden)
            else:
                wb = rb = p.const(np.zeros([gates * hidden]), x)
            hp = squeeze(cut(h0, 0, d, d + 1), [0]) if h0 else zeros
            cp = squeeze(cut(c0, 0, d, d + 1), [0]) if c0 else zeros
            if peep:
                pd = squeeze(cut(peep, 0, d, d + 1), [0])
                p_i, p_o, p_f = (cut(pd, 0, k * hidden, (k + 1) * hidden) for k in range(3))
            steps = list(range(seq))[::-1] if reverse else list(range(seq))
            outs: dict[int, str] = {}
            for t in steps:
                xt = squeeze(cut(x_seq, 0, t, t + 1), [0])
                xw = add("Add", [add("MatMul", [xt, wd]), wb])
                if op == "GRU":
                    xz, xr, xh = (cut(xw, 1, k * hidden, (k + 1) * hidden) for k in range(3))
                    rz, rr = cut(rd, 1, 0, hidden), cut(rd, 1, hidden, 2 * hidden)
                    rh = cut(rd, 1, 2 * hidden, 3 * hidden)
                    bz, br, bh = (cut(rb, 0, k * hidden, (k + 1) * hidden) for k in range(3))
                    z = act(pre(add("Add", [add("Add", [xz, add("MatMul", [hp, rz])]), bz])), ak)
                    rg = act(pre(add("Add", [add("Add", [xr, add("MatMul", [hp, rr])]), br])), ak)
                    if at.get("linear_before_reset", 0):
                        hh = add("Mul", [rg, add("Add", [add("MatMul", [hp, rh]), bh])])
                    else:
                        hh = add("Add", [add("MatMul", [add("Mul", [rg, hp]), rh]), bh])
                    ht = act(pre(add("Add", [xh, hh])), ak + 1)
                    one_minus = add("Sub", [p.const(1.0, x), z])
                    hp = add("Add", [add("Mul", [one_minus, ht]), add("Mul", [z, hp])])
                else:
                    g = add("Add", [add("Add", [xw, add("MatMul", [hp, rd])]), rb])
                    if op == "RNN":
                        hp = act(pre(g), ak)
                    else:
                        gi, go, gf, gc = (cut(g, 1, k * hidden, (k + 1) * hidden) for k in range(4))
                        if peep:
                            gi = add("Add", [gi, add("Mul", [p_i, cp])])
                            gf = add("Add", [gf, add("Mul", [p_f, cp])])
                        i_ = act(pre(gi), ak)
                        f_ = act(pre(gf), ak)
                        c_ = act(pre(gc), ak + 1)
                        cp = add("Add", [add("Mul", [f_, cp]), add("Mul", [i_, c_])])
                        if peep:
                            go = add("Add", [go, add("Mul", [p_o, cp])])
                        o_ = act(pre(go), ak)
                        hp = add("Mul", [o_, act(cp, ak + 2)])
                outs[t] = hp
            y_dirs.append(add("Concat", [unsqueeze(outs[t], [0]) for t in range(seq)], axis=0))  # [S, B, H]
            h_dirs.append(unsqueeze(hp, [0]))
            c_dirs.append(unsqueeze(cp, [0]))
        outputs = list(node.output) + [""] * 3
        y_out, h_out, c_out = outputs[:3]
        if y_out:
            y = add("Concat", [unsqueeze(v, [1]) for v in y_dirs], axis=1)  # [S, D, B, H]
            add("Transpose", [y], [y_out], perm=[2, 0, 1, 3]) if layout == 1 else add("Identity", [y], [y_out])
        for out, parts in ((h_out, h_dirs), (c_out if op == "LSTM" else "", c_dirs)):
            if out:
                v = add("Concat", parts, axis=0)  # [D, B, H]
                add("Transpose", [v], [out], perm=[1, 0, 2]) if layout == 1 else add("Identity", [v], [out])
    del p.g.node[:]
    p.g.node.extend(nodes)


def _resize(p: Pass, node: Any, at: dict[str, Any], shp: list[int], add: Any) -> None:
    """Resize (and Upsample) with constant scales or sizes, as one linear map per resized axis, each taken from
    onnx's own reference implementation run on unit vectors: nearest (every coordinate transformation and
    rounding mode) becomes a Gather of fixed indices, linear and cubic (antialiased or not) a MatMul by the
    interpolation matrix. Exact by construction; what is not separable per axis is refused."""
    onnx = p.onnx
    from onnx.reference import ReferenceEvaluator

    x, y = node.input[0], node.output[0]
    where = f"{node.op_type} node '{node.name or y}'"
    r = len(shp)
    ins = list(node.input) + [""] * 4
    if node.op_type == "Upsample":
        scales_name = ins[1]
        roi, sizes_name = "", ""
    else:
        roi, scales_name, sizes_name = (ins[1], ins[2], ins[3]) if p.opset >= 11 else ("", ins[1], "")
    for name in (roi, scales_name, sizes_name):
        if name and name not in p.consts:
            raise UnsupportedModelError(f"the {where} resizes by computed scales or sizes; NNEF needs them fixed")
    if at.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        raise UnsupportedModelError(f"the {where} crops (tf_crop_and_resize), which portable does not convert")
    if at.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise UnsupportedModelError(f"the {where} keeps the aspect ratio "
                                    f"({at['keep_aspect_ratio_policy']}), which portable does not convert")
    axes = [a + r if a < 0 else a for a in at.get("axes", list(range(r)))]
    scales = np.ones(r)
    sizes = None
    if node.op_type == "Upsample" and "scales" in at:
        scales = np.asarray(at["scales"], np.float64)
    elif scales_name and np.asarray(p.consts[scales_name]).size:
        scales[axes] = np.asarray(p.consts[scales_name], np.float64).ravel()
    elif sizes_name and np.asarray(p.consts[sizes_name]).size:
        sizes = np.asarray(shp, np.int64)
        sizes[axes] = np.asarray(p.consts[sizes_name], np.int64).ravel()
    else:
        raise UnsupportedModelError(f"the {where} has neither scales nor sizes")
    mode = at.get("mode", "nearest")
    probe_attrs = {k: v for k, v in at.items() if k not in ("axes", "keep_aspect_ratio_policy")}
    opset = p.opset if node.op_type == "Resize" and p.opset >= 11 else 10  # Upsample-9 is Resize-10
    elem = p.elem(x) or onnx.TensorProto.FLOAT
    np_dt = onnx.helper.tensor_dtype_to_np_dtype(elem)
    current = x
    i64 = onnx.TensorProto.INT64
    for a in range(r):
        n = shp[a]
        out_n = int(sizes[a]) if sizes is not None else int(np.floor(n * scales[a]))
        if out_n == n and (sizes is not None or scales[a] == 1.0):
            continue
        if out_n <= 0:
            raise UnsupportedModelError(f"the {where} resizes axis {a} to nothing")
        inputs = (["X", "", "S"] if sizes is None else ["X", "", "", "Z"]) if opset >= 11 else ["X", "S"]
        attrs = probe_attrs if opset >= 11 else {"mode": mode}
        rnode = onnx.helper.make_node("Resize", inputs, ["Y"], **attrs)
        ev = ReferenceEvaluator(rnode, opsets={"": opset})
        probe_shape = [n, n]
        feed: dict[str, np.ndarray] = {}
        if sizes is None:
            feed["S"] = np.asarray([1.0, scales[a]], np.float32)
        else:
            feed["Z"] = np.asarray([n, out_n], np.int64)
        feed["X"] = np.eye(n, dtype=np.float64).reshape(probe_shape)
        try:
            m = np.asarray(ev.run(None, feed)[0], np.float64)  # [n, out_n]: row j = the image of unit vector j
        except Exception as exc:
            raise UnsupportedModelError(f"the {where} could not be evaluated by onnx's reference "
                                        f"({type(exc).__name__}: {exc})") from None
        if m.shape != (n, out_n):
            raise UnsupportedModelError(f"the {where} gives an unexpected shape on axis {a}")
        perm = [i for i in range(r) if i != a] + [a]
        inv = list(np.argsort(perm))
        onehot = np.all(np.isin(m, (0.0, 1.0))) and np.all(m.sum(axis=0) == 1.0)
        if mode == "nearest" or onehot:
            if not onehot:
                raise UnsupportedModelError(f"the {where} does not pick one source per output on axis {a}")
            idx = np.argmax(m, axis=0).astype(np.int64)
            current = add("Gather", [current, p.const(idx, i64, "indices")], axis=a)
        else:
            moved = add("Transpose", [current], perm=perm)
            prod = add("MatMul", [moved, p.const(m.astype(np_dt), elem, "interp")])
            current = add("Transpose", [prod], perm=[int(v) for v in inv])
    add("Identity", [current], [y])


_BROADCASTING = frozenset(("Where", "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Pow", "Mod", "Equal", "Less",
                           "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"))


def batch_free_shapes(p: Pass) -> None:
    """Tensors shaped by `Shape(x)` have shapes that depend on the batch: nnef-tools refuses them ("tensors with
    dynamic shape"), and folding the `Shape` would fix the batch. Run on the static-batch graph, so the shapes
    compared are known.
    `ConstantOfShape(Shape(x))`, a tensor of one value shaped like `x` (skl2onnx's hard voting writes its 0s and
    1s so): where every consumer is a broadcasting elementwise operator that has another operand of `x`'s shape,
    the fill becomes a one-element constant of its value (broadcasting gives the same result). The `Shape` and
    `ConstantOfShape` nodes left unused are removed. (skl2onnx's QuantileTransformer, `Reshape(t, Shape(x))`,
    also computes integer indices, which NNEF cannot: it stays refused.)"""
    onnx = p.onnx
    p.infer()
    made = {o: n for n in p.g.node for o in n.output}
    users: dict[str, list[Any]] = {}
    for n in p.g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    outputs = {o.name for o in p.g.output}
    dead: set[int] = set()
    for node in p.g.node:
        src = made.get(node.input[0]) if node.op_type == "ConstantOfShape" and node.input else None
        if src is None or src.op_type != "Shape" or p.attrs(src) or node.output[0] in outputs:
            continue
        y, shape = node.output[0], p.shape(src.input[0])
        if shape is None or any(d is None for d in shape):
            continue
        uses = users.get(y, [])
        if not uses or not all(u.op_type in _BROADCASTING and any(i != y and p.shape(i) == shape for i in u.input)
                               for u in uses):
            continue
        value = p.attrs(node).get("value")
        arr = onnx.numpy_helper.to_array(value).reshape(1) if value is not None else np.zeros(1, np.float32)
        scalar = p.const(arr, onnx.helper.np_dtype_to_tensor_dtype(arr.dtype), "fill")
        for u in uses:
            for k, i in enumerate(u.input):
                if i == y:
                    u.input[k] = scalar
        dead.add(id(node))
    if not dead:
        return
    keep = [n for n in p.g.node if id(n) not in dead]
    used = {i for n in keep for i in n.input} | outputs
    keep = [n for n in keep if n.op_type != "Shape" or any(o in used for o in n.output)]
    del p.g.node[:]
    p.g.node.extend(keep)


def _kind(elem: int) -> str:
    if elem in (1, 10, 11, 16):  # float, float16, double, bfloat16
        return "scalar"
    if elem == 9:
        return "logical"
    return "integer"


def prepare(proto: Any) -> None:
    """The whole pass, in place."""
    p = Pass(proto)
    p.infer()
    refuse_unsupported(p)
    expand_functions(p, NNEF_TOOLS_OPS | REWRITTEN)
    fold_constants(p)
    p.infer()
    refuse_unsupported(p)
    unroll_recurrent(p)
    rewrite(p)
    fold_constants(p)
