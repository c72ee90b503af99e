"""Lowering ONNX-ML (`ai.onnx.ml`) operators to standard ONNX operators.

The lowered model runs on any ONNX runtime without `ai.onnx.ml` support, and it is the first step of the
`onnx -> nnef` route: NNEF has no operators for classic machine learning, and nnef-tools 1.0.11 converts only
standard ONNX operators. Every lowering emits operators that nnef-tools' converter maps to NNEF (MatMul, Gemm,
Gather, Where, comparisons, element-wise arithmetic, Softmax, ArgMax, Reshape, Concat, Reduce*), and writes
exactly the outputs of the node it replaces, so the rest of the graph is untouched.

Trees are lowered in one of two formulations (DESIGN: "chosen by depth and size"), recorded in the model's
metadata under `portable.lowering.trees`:

- `gemm`: the matrix formulation (as in Hummingbird): each node's feature is gathered, the decisions are
  compared at once, and leaf reachability and leaf values are two batched matrix products, one block per
  tree. Fast for shallow trees; its size grows as 4^depth. Set membership (MEMBER) nodes lower here only.
- `gather`: index traversal: every row keeps one node index per tree and steps down `max_depth` times,
  gathering the node's feature, threshold and children. Its size grows linearly with the number of nodes.
  Each row's feature value is read with GatherElements, or, on the way to NNEF (which has no per-row
  gather), with a one-hot mask over the features.

Both route missing values (NaN) as `nodes_missing_value_tracks_true` says, which is how converters encode
scikit-learn's "NaN goes to the child with more samples". Normalizer MAX divides by max |x|, as the
specification's reference evaluator and scikit-learn do (onnxruntime 1.32 divides by max x). String-valued
OneHotEncoder and LabelEncoder lower in plain ONNX (opset 19's Equal on strings), never on the way to NNEF.

Not lowered (an `UnsupportedModelError` names the node): PROBIT post-transforms, SVMs with probability
estimates (libsvm's pairwise coupling is an iterative solver), EQ/NEQ tree nodes, MEMBER nodes in ensembles
too large for the GEMM formulation, and the operators missing from LOWERINGS (CategoryMapper,
DictVectorizer, CastMap, …).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import onnx_builder
from ..errors import ConversionError, UnsupportedModelError
from ..registry import ConvertOptions, require

ML_DOMAIN = "ai.onnx.ml"
MIN_OPSET = 13  # Softmax over the last axis, Unsqueeze/ReduceSum with axes as inputs
STRING_OPSET = 19  # Equal on strings (string-valued encoders, plain ONNX only)

# A tree ensemble takes the GEMM formulation when it is at most this deep and its per-row matrix work
# (trees x internal nodes x leaves of the largest tree) stays under this bound; otherwise the gather traversal.
# Measured on 100-tree forests over 10,000 rows (numpy executor and onnxruntime): GEMM wins up to depth 4
# (2.4x faster at depth 4 in the executor), the traversal from depth 6 (1.7x faster in the executor, 4x in
# onnxruntime with GatherElements).
GEMM_MAX_DEPTH = 4
GEMM_MAX_CELLS = 1 << 21

Lowering = Callable[["_Builder", Any], None]
LOWERINGS: dict[str, Lowering] = {}


def lowers(*op_types: str) -> Callable[[Lowering], Lowering]:
    """Register a lowering for the `ai.onnx.ml` operators `op_types`."""

    def deco(fn: Lowering) -> Lowering:
        for op in op_types:
            LOWERINGS[op] = fn
        return fn

    return deco


# ----------------------------------------------------------------------------------------------------------
# the builder: fresh names, constants and nodes appended to the new graph
# ----------------------------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, proto: Any, opset: int, *, for_nnef: bool = False) -> None:
        self.onnx = require("onnx", purpose="lowering ONNX-ML")
        self.opset = opset
        self.for_nnef = for_nnef
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.notes: dict[str, str] = {}
        self.zipmaps: list[str] = []  # outputs that were ZipMap's sequence of maps and are now tensors
        self.types: dict[str, int] = {}
        self.ranks: dict[str, int] = {}
        self.shapes: dict[str, list[int | None]] = {}
        self._used: set[str] = set()
        self._count = 0
        g = proto.graph
        for n in g.node:
            self._used.update(n.input)
            self._used.update(n.output)
        for coll in (g.input, g.output, g.value_info):
            for vi in coll:
                self._used.add(vi.name)
                self._remember(vi)
        self.values: dict[str, np.ndarray] = {}
        for init in g.initializer:
            self.values[init.name] = self.onnx.numpy_helper.to_array(init)
            self._used.add(init.name)
            self.types[init.name] = init.data_type
            self.ranks[init.name] = len(init.dims)
            self.shapes[init.name] = list(init.dims)
        self.node: Any = None  # the node being lowered, for names and errors

    def _remember(self, vi: Any) -> None:
        t = vi.type
        if t.HasField("tensor_type"):
            self.types[vi.name] = t.tensor_type.elem_type
            if t.tensor_type.HasField("shape"):
                self.ranks[vi.name] = len(t.tensor_type.shape.dim)
                self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                                        for d in t.tensor_type.shape.dim]

    def fresh(self, hint: str) -> str:
        base = f"{self.node.name or self.node.op_type}_{hint}" if self.node is not None else hint
        while True:
            self._count += 1
            name = f"{base}_{self._count}"
            if name not in self._used:
                self._used.add(name)
                return name

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        if arr.dtype.kind in "OUS":
            t = self.onnx.helper.make_tensor(name, self.onnx.TensorProto.STRING, arr.shape,
                                             [str(v).encode() for v in arr.ravel()])
        else:
            t = self.onnx.numpy_helper.from_array(arr, name)
        self.initializers.append(t)
        self.types[name] = t.data_type
        self.ranks[name] = arr.ndim
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        name = out or self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [name], name=self.fresh(op_type),
                                                     **attrs))
        return name

    # -- helpers used by several lowerings -------------------------------------------------------------
    def elem(self, name: str) -> int:
        return self.types.get(name, self.onnx.TensorProto.FLOAT)

    def np_dtype(self, name: str) -> np.dtype:
        return np.dtype(self.onnx.helper.tensor_dtype_to_np_dtype(self.elem(name)))

    def float_input(self, name: str) -> tuple[str, np.dtype]:
        """The input as float (double stays double; ints and bools become float32), and that dtype."""
        dt = self.np_dtype(name)
        if dt == np.float64 or dt == np.float32:
            return name, dt
        return self.op("Cast", [name], to=self.onnx.TensorProto.FLOAT), np.dtype(np.float32)

    def float32_rounded_source(self, name: str) -> str | None:
        """A double tensor whose float32 rounding `name` is, cast back to double: `name` is `Cast(to=double)` of a
        float32 tensor `float32_cast_source` reads (Identity allowed between); how scikit-learn's float64 trees
        see their input."""
        onnx = self.onnx
        producer = {o: n for n in self.nodes for o in n.output}
        outer = self._through_identity(producer, name)
        if self.elem(name) != onnx.TensorProto.DOUBLE or not self._cast(outer, onnx.TensorProto.DOUBLE):
            return None
        return self.float32_cast_source(str(outer.input[0]))

    def _through_identity(self, producer: dict[str, Any], n: str) -> Any:
        node = producer.get(n)
        while node is not None and node.op_type == "Identity" and node.domain in ("", "ai.onnx"):
            node = producer.get(node.input[0])
        return node

    def _cast(self, node: Any, to: int) -> bool:
        return node is not None and node.op_type == "Cast" and node.domain in ("", "ai.onnx") and \
            any(a.name == "to" and a.i == to for a in node.attribute)

    def float32_cast_source(self, name: str, depth: int = 0) -> str | None:
        """A double tensor whose float32 rounding is `name`, or None: `name` is `Cast(to=float)` of a double
        tensor, or Neg / Concat / `Where(IsNaN(v), c, v)` (c a constant) of such roundings, which rounding to
        nearest commutes with (portable's float64 trees read `[x, -x]` made from the rounding of x,
        converters.sklearn.trees._negated_input); the double counterparts of those nodes are added."""
        onnx = self.onnx
        producer = {o: n for n in self.nodes for o in n.output}
        node = self._through_identity(producer, name)
        if node is None or node.domain not in ("", "ai.onnx") or depth > 8:
            return None
        if self._cast(node, onnx.TensorProto.FLOAT):
            return str(node.input[0]) if self.types.get(node.input[0]) == onnx.TensorProto.DOUBLE else None
        if node.op_type == "Neg":
            src = self.float32_cast_source(node.input[0], depth + 1)
            return None if src is None else self.op("Neg", [src])
        if node.op_type == "Concat":
            srcs = [self.float32_cast_source(i, depth + 1) for i in node.input]
            if any(v is None for v in srcs):
                return None
            axis = next(a.i for a in node.attribute if a.name == "axis")
            return self.op("Concat", [str(v) for v in srcs], axis=axis)
        if node.op_type == "Where" and len(node.input) == 3:
            cond = producer.get(node.input[0])
            fill = self.values.get(node.input[1])
            if cond is None or cond.op_type != "IsNaN" or cond.input[0] != node.input[2] or fill is None or \
                    fill.dtype != np.float32:
                return None
            src = self.float32_cast_source(node.input[2], depth + 1)
            if src is None:
                return None
            return self.op("Where", [self.op("IsNaN", [src]), self.const(fill.astype(np.float64), "fill"), src])
        return None

    def cast_to(self, name: str, dtype: np.dtype, out: str | None = None) -> str:
        to = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.op("Cast", [name], out=out, to=to)

    def finish(self, name: str, out: str, dtype: np.dtype | None = None) -> None:
        """Write `name` into the node's output `out`, cast to the output's declared (or given) type."""
        want = self.types.get(out)
        if dtype is not None:
            want = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        if want is not None and (name not in self.types or want != self.elem(name)):  # unknown: cast anyway
            self.op("Cast", [name], out=out, to=want)
        else:
            self.op("Identity", [name], out=out)

    def reduce(self, op_type: str, x: str, axes: list[int], keepdims: int = 1) -> str:
        """A Reduce* node with `axes` as an input or an attribute, whichever the opset wants."""
        as_input = self.opset >= 18 or (op_type == "ReduceSum" and self.opset >= 13)
        if as_input:
            return self.op(op_type, [x, self.const(np.array(axes, dtype=np.int64), "axes")], keepdims=keepdims)
        return self.op(op_type, [x], axes=axes, keepdims=keepdims)

    def post_transform(self, scores: str, how: str, dtype: np.dtype) -> str:
        if how == "NONE":
            return scores
        if how == "LOGISTIC":
            return self.op("Sigmoid", [scores])
        if how == "SOFTMAX":
            return self.op("Softmax", [scores], axis=-1)
        if how == "SOFTMAX_ZERO":
            # as the specification's reference (and onnxruntime): scores within 1e-7 of zero become
            # v * exp(-max), the others exp(v - max); a row summing to zero is 0.5 everywhere
            m = self.reduce("ReduceMax", scores, [-1])
            tiny = self.const(np.array(1e-7, dtype))
            nonzero = self.op("Greater", [self.op("Abs", [scores]), tiny])
            e = self.op("Where", [nonzero, self.op("Exp", [self.op("Sub", [scores, m])]),
                                  self.op("Mul", [scores, self.op("Exp", [self.op("Neg", [m])])])])
            total = self.reduce("ReduceSum", e, [-1])
            empty = self.op("Equal", [total, self.const(np.zeros((), dtype))])
            safe = self.op("Where", [empty, self.const(np.ones((), dtype)), total])
            return self.op("Where", [empty, self.const(np.array(0.5, dtype)), self.op("Div", [e, safe])])
        raise UnsupportedModelError(f"post_transform {how} has no lowering to standard ONNX operators",
                                    where=f"node '{self.node.name}' ({self.node.op_type})")

    def fail(self, why: str) -> UnsupportedModelError:
        return UnsupportedModelError(why, where=f"node '{self.node.name}' ({self.node.op_type})")


def _attrs(node: Any) -> dict[str, Any]:
    onnx = require("onnx")
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if a.type == onnx.AttributeProto.TENSOR:
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def _pick(at: dict[str, Any], *names: str) -> Any:
    for n in names:
        v = at.get(n)
        if v is not None and (not hasattr(v, "__len__") or len(v)):
            return np.asarray(v)
    return None


def _classes(at: dict[str, Any], ints: str = "classlabels_ints", strings: str = "classlabels_strings") -> np.ndarray:
    if at.get(strings):
        return np.asarray(at[strings], dtype=object)
    return np.asarray(at.get(ints) or [], dtype=np.int64)


def _label(b: _Builder, scores: str, classes: np.ndarray, out: str) -> None:
    """out = classes[argmax(scores)] (the first maximum, as onnxruntime and numpy pick)."""
    idx = b.op("ArgMax", [scores], axis=-1, keepdims=0)
    b.op("Gather", [b.const(classes.astype(str) if classes.dtype == object else classes, "classes"), idx], out=out,
         axis=0)


# ----------------------------------------------------------------------------------------------------------
# preprocessing and linear models
# ----------------------------------------------------------------------------------------------------------
@lowers("Scaler")
def _scaler(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    x, dt = b.float_input(node.input[0])
    offset = np.asarray(at.get("offset", [0.0]), dtype=dt)
    scale = np.asarray(at.get("scale", [1.0]), dtype=dt)
    y = b.op("Mul", [b.op("Sub", [x, b.const(offset, "offset")]), b.const(scale, "scale")])
    b.finish(y, node.output[0])


@lowers("Normalizer")
def _normalizer(b: _Builder, node: Any) -> None:
    norm = _attrs(node).get("norm", "MAX")
    x, dt = b.float_input(node.input[0])
    if norm == "L2":
        div = b.op("Sqrt", [b.reduce("ReduceSum", b.op("Mul", [x, x]), [1])])
    elif norm == "L1":
        div = b.reduce("ReduceSum", b.op("Abs", [x]), [1])
    elif norm == "MAX":
        div = b.reduce("ReduceMax", b.op("Abs", [x]), [1])
    else:
        raise b.fail(f"unknown norm '{norm}'")
    div = b.op("Max", [div, b.const(np.array(1e-30, dt))])
    b.finish(b.op("Div", [x, div]), node.output[0])


@lowers("Binarizer")
def _binarizer(b: _Builder, node: Any) -> None:
    x, dt = b.float_input(node.input[0])
    t = b.const(np.array(_attrs(node).get("threshold", 0.0), dt), "threshold")
    b.finish(b.cast_to(b.op("Greater", [x, t]), dt), node.output[0])


@lowers("Imputer")
def _imputer(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    x = node.input[0]
    dt = b.np_dtype(x)
    if dt.kind == "f":
        values = np.asarray(at.get("imputed_value_floats") or [0.0], dtype=dt)
        replaced = float(at.get("replaced_value_float", 0.0))
    else:
        values = np.asarray(at.get("imputed_value_int64s") or [0], dtype=dt)
        replaced = int(at.get("replaced_value_int64", 0))
    if dt.kind == "f" and np.isnan(replaced):
        # NaN is the only value not equal to itself (IsNaN has no NNEF counterpart)
        missing = b.op("Not", [b.op("Equal", [x, x])])
    else:
        missing = b.op("Equal", [x, b.const(np.array(replaced, dt), "replaced")])
    b.op("Where", [missing, b.const(values, "imputed"), x], out=node.output[0])


@lowers("FeatureVectorizer")
def _feature_vectorizer(b: _Builder, node: Any) -> None:
    """Each input (a column when 1-D) takes exactly `inputdimensions[i]` columns, as onnxruntime does: wider
    inputs are cut, narrower ones padded with zeros."""
    dims = list(_attrs(node).get("inputdimensions") or [])
    parts = []
    for i, name in enumerate(node.input):
        x, _ = b.float_input(name)
        shape = b.shapes.get(name)
        if b.ranks.get(name, 2) == 1:
            x = b.op("Reshape", [x, b.const(np.array([-1, 1], np.int64), "shape")])
            shape = [None, 1]
        if i < len(dims):
            width = shape[-1] if shape else None
            if width is None or width < dims[i]:  # zeros after, enough to fill; then the first columns
                x = b.op("Pad", [x, b.const(np.array([0, 0, 0, dims[i]], np.int64), "pads")], mode="constant")
            if width != dims[i]:
                x = b.op("Slice", [x, b.const(np.array([0], np.int64), "starts"),
                                   b.const(np.array([dims[i]], np.int64), "ends"),
                                   b.const(np.array([1], np.int64), "axes")])
        parts.append(x)
    y = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=1)
    b.finish(y, node.output[0], np.float32)


@lowers("ArrayFeatureExtractor")
def _array_feature_extractor(b: _Builder, node: Any) -> None:
    """onnxruntime's shapes: indices are flattened; a 1-D input gives `[1, k]`, others `[..., k]`."""
    data, idx = node.input
    rank = b.ranks.get(data, 2)  # unknown: the [N, C] output of another ai.onnx.ml operator
    if idx in b.values:  # constant indices (the usual case): flatten them here
        flat = b.const(b.values[idx].reshape(-1), "indices")
    else:
        flat = b.op("Reshape", [idx, b.const(np.array([-1], np.int64), "shape")])
    if rank == 1:
        picked = b.op("Gather", [data, flat], axis=0)
        b.op("Reshape", [picked, b.const(np.array([1, -1], np.int64), "shape")], out=node.output[0])
    else:
        b.op("Gather", [data, flat], out=node.output[0], axis=rank - 1)


def _strings_allowed(b: _Builder, what: str) -> None:
    if b.for_nnef:
        raise b.fail(f"{what} over strings cannot go to NNEF, which has no strings; encode to integers first")
    if b.opset < 19:
        raise b.fail(f"{what} over strings needs Equal on strings, which standard ONNX has from opset 19 "
                     f"(the model has {b.opset})")


@lowers("LabelEncoder")
def _label_encoder(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    keys = _pick(at, "keys_tensor", "keys_int64s", "keys_floats", "keys_strings")
    values = _pick(at, "values_tensor", "values_int64s", "values_floats", "values_strings")
    if keys is None or values is None:
        raise b.fail("a LabelEncoder without keys or values")
    if keys.dtype.kind in "OUS" or values.dtype.kind in "OUS":
        _strings_allowed(b, "LabelEncoder")
    default = _pick(at, "default_tensor")
    if default is None:
        default = np.asarray(at.get("default_string", "_Unused") if values.dtype.kind in "OUS" else
                             at.get("default_int64", -1) if values.dtype.kind in "iu" else
                             at.get("default_float", -0.0))
    x = node.input[0]
    # Equal, Gather and Where exist in every runtime for 32/64-bit numbers, bool and strings only (onnxruntime
    # has no int16 Where): narrower integers are compared and picked as int64 and cast back at the end
    wide = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32), np.dtype(np.int64)}
    x_dt = b.np_dtype(x)
    if keys.dtype.kind not in "OUS" and x_dt not in wide:
        x, x_dt = b.cast_to(x, np.int64 if x_dt.kind in "iub" else np.float32), \
            np.dtype(np.int64 if x_dt.kind in "iub" else np.float32)
    keys = keys.astype(object) if keys.dtype.kind in "OUS" else keys.astype(x_dt)
    final = None
    if values.dtype.kind in "OUS":
        values, default = values.astype(object), default.astype(object)
    elif node.output[0] in b.types:  # the attribute lists come as float64 / int64; the output type decides
        values = values.astype(b.np_dtype(node.output[0]))
        if values.dtype not in wide:
            final = values.dtype
            values = values.astype(np.int64 if values.dtype.kind in "iub" else np.float32)
    match = b.op("Equal", [b.op("Unsqueeze", [x, b.const(np.array([-1], np.int64), "axes")]),
                           b.const(keys, "keys")])
    hits = b.cast_to(match, np.int32)
    found = b.op("Greater", [b.reduce("ReduceMax", hits, [-1], keepdims=0), b.const(np.array(0, np.int32))])
    picked = b.op("Gather", [b.const(values, "values"), b.op("ArgMax", [hits], axis=-1, keepdims=0)], axis=0)
    out = b.op("Where", [found, picked, b.const(default.reshape(()).astype(values.dtype), "default")],
               out=node.output[0] if final is None else None)
    if final is not None:
        b.cast_to(out, final, out=node.output[0])


@lowers("OneHotEncoder")
def _one_hot_encoder(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    x = node.input[0]
    if at.get("cats_strings"):
        _strings_allowed(b, "OneHotEncoder")
        cats, xi = np.asarray(at["cats_strings"], dtype=object), x
    else:
        cats = np.asarray(at.get("cats_int64s") or [], dtype=np.int64)
        xi = x if b.np_dtype(x).kind in "iu" else b.cast_to(x, np.int64)
    eq = b.op("Equal", [b.op("Unsqueeze", [xi, b.const(np.array([-1], np.int64), "axes")]),
                        b.const(cats, "cats")])
    b.finish(b.cast_to(eq, np.float32), node.output[0])


@lowers("LinearRegressor")
def _linear_regressor(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    x, dt = b.float_input(node.input[0])
    coef = np.asarray(at["coefficients"], dtype=dt)
    k = int(at.get("targets", 1))
    w = coef.reshape(k, -1).T
    y = b.op("MatMul", [x, b.const(w, "coef")])
    if at.get("intercepts"):
        y = b.op("Add", [y, b.const(np.asarray(at["intercepts"], dtype=dt), "intercepts")])
    b.finish(b.post_transform(y, at.get("post_transform", "NONE"), dt), node.output[0])


@lowers("LinearClassifier")
def _linear_classifier(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    x, dt = b.float_input(node.input[0])
    classes = _classes(at)
    coef = np.asarray(at["coefficients"], dtype=dt)
    rows = len(classes) if len(classes) > 2 and coef.size % len(classes) == 0 else 1
    intercepts = np.asarray(at.get("intercepts") or np.zeros(rows), dtype=dt)
    w = coef.reshape(len(intercepts), -1).T
    s = b.op("Add", [b.op("MatMul", [x, b.const(w, "coef")]), b.const(intercepts, "intercepts")])
    if w.shape[1] == 1 and len(classes) == 2:  # one score: onnxruntime writes [-s, s]
        s = b.op("Concat", [b.op("Neg", [s]), s], axis=1)
    elif w.shape[1] == 1:
        raise b.fail("a one-score LinearClassifier needs exactly two classes")
    scores = b.post_transform(s, at.get("post_transform", "NONE"), dt)
    _label(b, scores, classes, node.output[0])
    b.finish(scores, node.output[1])


# ----------------------------------------------------------------------------------------------------------
# support vector machines
# ----------------------------------------------------------------------------------------------------------
def _kernel(b: _Builder, x: str, sv: np.ndarray, kind: str, params: list[float], dt: np.dtype) -> str:
    """[N, n_sv] kernel values between the rows of x and the support vectors (`portable.onnx_builder.kernel`,
    in its `[N, n_sv]`-memory expanded form)."""
    gamma, coef0, degree = (list(params) + [0.0, 0.0, 0.0])[:3]
    if kind not in ("LINEAR", "RBF", "POLY", "SIGMOID"):
        raise b.fail(f"unknown kernel_type '{kind}'")
    ops = onnx_builder.Ops(node=lambda op, *xs, **at: b.op(op, list(xs), **at),
                           const=lambda v: b.const(np.asarray(v, dtype=dt)), float64=dt == np.float64)
    return onnx_builder.kernel(ops, x, sv, kind.lower(), gamma=gamma, degree=degree, coef0=coef0, expanded=True)


@lowers("SVMRegressor")
def _svm_regressor(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    x, dt = b.float_input(node.input[0])
    coef = np.asarray(at["coefficients"], dtype=np.float64)
    rho = float(np.asarray(at.get("rho", [0.0]))[0])
    n_sv = int(at.get("n_supports", 0))
    if n_sv > 0:
        sv = np.asarray(at["support_vectors"], dtype=np.float64).reshape(n_sv, -1)
        k = _kernel(b, x, sv, at.get("kernel_type", "LINEAR"), at.get("kernel_params", []), dt)
        s = b.op("MatMul", [k, b.const(coef.reshape(-1, 1).astype(dt), "coef")])
    else:
        s = b.op("MatMul", [x, b.const(coef.reshape(-1, 1).astype(dt), "coef")])
    s = b.op("Add", [s, b.const(np.array(rho, dt), "rho")])
    if at.get("one_class"):
        s = b.op("Where", [b.op("Greater", [s, b.const(np.array(0, dt))]), b.const(np.array(1, dt)),
                           b.const(np.array(-1, dt))])
    b.finish(b.post_transform(s, at.get("post_transform", "NONE"), dt), node.output[0])


@lowers("SVMClassifier")
def _svm_classifier(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    if at.get("prob_a"):
        raise b.fail("SVMs with probability estimates (probability=True) use libsvm's iterative pairwise "
                     "coupling, which has no standard-operator lowering; use probability=False")
    x, dt = b.float_input(node.input[0])
    classes = _classes(at)
    per_class = [int(v) for v in at.get("vectors_per_class") or []]
    n_sv = sum(per_class)
    if n_sv == 0:
        raise b.fail("linear-mode SVMClassifier (no support vectors) is not supported")
    sv = np.asarray(at["support_vectors"], dtype=np.float64).reshape(n_sv, -1)
    coef = np.asarray(at["coefficients"], dtype=np.float64).reshape(-1, n_sv)
    rho = np.asarray(at["rho"], dtype=np.float64)
    n_cls = len(per_class)
    start = np.concatenate([[0], np.cumsum(per_class)[:-1]]).astype(int)
    pairs = [(i, j) for i in range(n_cls) for j in range(i + 1, n_cls)]
    w = np.zeros((n_sv, len(pairs)))
    vote_i = np.zeros((len(pairs), n_cls))
    vote_j = np.zeros((len(pairs), n_cls))
    for p, (i, j) in enumerate(pairs):
        si, sj = slice(start[i], start[i] + per_class[i]), slice(start[j], start[j] + per_class[j])
        w[si, p] = coef[j - 1, si]
        w[sj, p] = coef[i, sj]
        vote_i[p, i] = vote_j[p, j] = 1.0
    k = _kernel(b, x, sv, at.get("kernel_type", "LINEAR"), at.get("kernel_params", []), dt)
    s = b.op("Add", [b.op("MatMul", [k, b.const(w.astype(dt), "dual_coef")]), b.const(rho.astype(dt), "rho")])
    if len(pairs) == 1:
        if np.all(coef >= 0):
            raise b.fail("a binary SVMClassifier with only positive coefficients is not supported")
        # onnxruntime: class 0 when s > 0, scores [-s, s]
        pos = b.op("Greater", [s, b.const(np.array(0, dt))])
        idx = b.op("Where", [pos, b.const(np.array([0], np.int64)), b.const(np.array([1], np.int64))])
        idx = b.op("Reshape", [idx, b.const(np.array([-1], np.int64), "shape")])
        b.op("Gather", [b.const(classes.astype(str) if classes.dtype == object else classes, "classes"), idx],
             out=node.output[0], axis=0)
        scores = b.op("Concat", [b.op("Neg", [s]), s], axis=1)
    else:
        pos = b.cast_to(b.op("Greater", [s, b.const(np.array(0, dt))]), dt)
        neg = b.op("Sub", [b.const(np.array(1, dt)), pos])
        votes = b.op("Add", [b.op("MatMul", [pos, b.const(vote_i.astype(dt), "vote_i")]),
                             b.op("MatMul", [neg, b.const(vote_j.astype(dt), "vote_j")])])
        _label(b, votes, classes, node.output[0])
        scores = s
    b.finish(b.post_transform(scores, at.get("post_transform", "NONE"), dt), node.output[1])


# ----------------------------------------------------------------------------------------------------------
# tree ensembles
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Tree:
    """One tree with local node indices; `value[n]` is a leaf's contribution to each target."""

    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    strict: list[bool] = field(default_factory=list)  # True: x < t, False: x <= t
    nan_yes: list[bool] = field(default_factory=list)  # a missing value (NaN) goes to the `true` child
    true: list[int] = field(default_factory=list)
    false: list[int] = field(default_factory=list)
    leaf: list[bool] = field(default_factory=list)
    value: dict[int, dict[int, float]] = field(default_factory=dict)
    members: dict[int, list[float]] = field(default_factory=dict)  # MEMBER nodes: the set of values

    def add(self, feature: int = 0, threshold: float = 0.0, strict: bool = False, leaf: bool = False,
            nan_yes: bool = False) -> int:
        self.nan_yes.append(nan_yes)
        self.feature.append(feature)
        self.threshold.append(threshold)
        self.strict.append(strict)
        self.true.append(-1)
        self.false.append(-1)
        self.leaf.append(leaf)
        return len(self.leaf) - 1

    def depth(self) -> int:
        best, stack = 0, [(0, 0)]
        while stack:
            n, d = stack.pop()
            if self.leaf[n]:
                best = max(best, d)
            else:
                stack += [(self.true[n], d + 1), (self.false[n], d + 1)]
        return best


_MODES = {"BRANCH_LEQ": (False, False), "BRANCH_LT": (True, False), "BRANCH_GTE": (True, True),
          "BRANCH_GT": (False, True)}  # mode -> (strict comparison, swap children)
_MODES_V5 = {0: "BRANCH_LEQ", 1: "BRANCH_LT", 2: "BRANCH_GTE", 3: "BRANCH_GT", 4: "BRANCH_EQ", 5: "BRANCH_NEQ",
             6: "MEMBER"}


def _trees_v3(b: _Builder, at: dict[str, Any], prefix: str) -> list[_Tree]:
    """TreeEnsembleClassifier / TreeEnsembleRegressor attributes -> trees (GT/GTE become LEQ/LT, swapped)."""
    tids = list(at["nodes_treeids"])
    nids = list(at["nodes_nodeids"])
    feats = list(at["nodes_featureids"])
    vals = _pick(at, "nodes_values_as_tensor", "nodes_values")
    vals = list(vals) if vals is not None else [0.0] * len(tids)
    modes = list(at["nodes_modes"])
    t_true, t_false = list(at["nodes_truenodeids"]), list(at["nodes_falsenodeids"])
    tracks = list(at.get("nodes_missing_value_tracks_true") or [0] * len(tids))
    order = sorted(set(tids))
    local: dict[tuple[int, int], int] = {}
    trees = {t: _Tree() for t in order}
    for k, (t, n) in enumerate(zip(tids, nids)):
        mode = modes[k]
        if mode == "LEAF":
            local[t, n] = trees[t].add(leaf=True)
            continue
        if mode not in _MODES:
            raise b.fail(f"tree nodes with mode {mode} are not supported (only LEQ, LT, GTE, GT)")
        strict, swap = _MODES[mode]
        # NaN follows the ONNX true branch when tracked; children swap for GT/GTE, so the flag does too
        local[t, n] = trees[t].add(int(feats[k]), float(vals[k]), strict, nan_yes=bool(tracks[k]) != swap)
    for k, (t, n) in enumerate(zip(tids, nids)):
        if modes[k] == "LEAF":
            continue
        i = local[t, n]
        yes, no = local[t, int(t_true[k])], local[t, int(t_false[k])]
        if _MODES[modes[k]][1]:
            yes, no = no, yes
        trees[t].true[i], trees[t].false[i] = yes, no
    weights = _pick(at, f"{prefix}_weights_as_tensor", f"{prefix}_weights")
    for t, n, target, w in zip(at[f"{prefix}_treeids"], at[f"{prefix}_nodeids"], at[f"{prefix}_ids"], weights):
        leaf = trees[t].value.setdefault(local[t, n], {})
        leaf[int(target)] = leaf.get(int(target), 0.0) + float(w)
    out = [trees[t] for t in order]
    for tree in out:
        _root_first(b, tree)
    return out


def _root_first(b: _Builder, tree: _Tree) -> None:
    """The root must be node 0: the one node that is nobody's child."""
    children = set(tree.true) | set(tree.false)
    roots = [n for n in range(len(tree.leaf)) if n not in children]
    if len(roots) != 1:
        raise b.fail(f"a tree has {len(roots)} roots")
    r = roots[0]
    if r != 0:
        perm = [r] + [n for n in range(len(tree.leaf)) if n != r]
        where = {old: new for new, old in enumerate(perm)}
        for attr in ("feature", "threshold", "strict", "leaf", "nan_yes"):
            vals = getattr(tree, attr)
            setattr(tree, attr, [vals[o] for o in perm])
        tree.true = [where.get(tree.true[o], -1) for o in perm]
        tree.false = [where.get(tree.false[o], -1) for o in perm]
        tree.value = {where[k]: v for k, v in tree.value.items()}
        tree.members = {where[k]: v for k, v in tree.members.items()}


def _trees_v5(b: _Builder, at: dict[str, Any]) -> list[_Tree]:
    """TreeEnsemble (ai.onnx.ml opset 5) attributes -> trees."""
    splits = np.asarray(at["nodes_splits"], dtype=np.float64).ravel()
    modes = np.asarray(at["nodes_modes"]).ravel()
    feats = list(at["nodes_featureids"])
    t_true, t_false = list(at["nodes_truenodeids"]), list(at["nodes_falsenodeids"])
    leaf_true = list(at.get("nodes_trueleafs") or [0] * len(feats))
    leaf_false = list(at.get("nodes_falseleafs") or [0] * len(feats))
    targets = list(at["leaf_targetids"])
    weights = np.asarray(at["leaf_weights"], dtype=np.float64).ravel()
    tracks = list(at.get("nodes_missing_value_tracks_true") or [0] * len(feats))
    sets: dict[int, list[float]] = {}
    if at.get("membership_values") is not None:  # one NaN-terminated run of values per MEMBER node, in order
        runs, cur = [], []
        for v in np.asarray(at["membership_values"], dtype=np.float64).ravel():
            if np.isnan(v):
                runs.append(cur)
                cur = []
            else:
                cur.append(float(v))
        if cur:  # the last run may end without a NaN (onnxruntime reads NaN as a separator)
            runs.append(cur)
        member_nodes = [i for i, m in enumerate(modes) if int(m) == 6]
        if len(runs) != len(member_nodes):
            raise b.fail(f"{len(member_nodes)} MEMBER nodes but {len(runs)} sets in membership_values")
        sets = dict(zip(member_nodes, runs))

    def visit(tree: _Tree, i: int, is_leaf: bool) -> int:
        if is_leaf:
            n = tree.add(leaf=True)
            tree.value[n] = {int(targets[i]): float(weights[i])}
            return n
        mode = _MODES_V5.get(int(modes[i]), str(modes[i]))
        if mode == "MEMBER":
            if i not in sets:
                raise b.fail("a MEMBER node without membership_values")
            n = tree.add(int(feats[i]), 0.0, False, nan_yes=bool(tracks[i]))
            tree.members[n] = sets[i]
            tree.true[n] = visit(tree, int(t_true[i]), bool(leaf_true[i]))
            tree.false[n] = visit(tree, int(t_false[i]), bool(leaf_false[i]))
            return n
        if mode not in _MODES:
            raise b.fail(f"tree nodes with mode {mode} are not supported (only LEQ, LT, GTE, GT, MEMBER)")
        strict, swap = _MODES[mode]
        n = tree.add(int(feats[i]), float(splits[i]), strict, nan_yes=bool(tracks[i]) != swap)
        yes = visit(tree, int(t_true[i]), bool(leaf_true[i]))
        no = visit(tree, int(t_false[i]), bool(leaf_false[i]))
        tree.true[n], tree.false[n] = (no, yes) if swap else (yes, no)
        return n

    out = []
    for root in at["tree_roots"]:
        tree = _Tree()
        visit(tree, int(root), False)
        out.append(tree)
    return out


def _leq_thresholds(tree: _Tree, dt: np.dtype) -> np.ndarray:
    """Thresholds in the compute dtype such that `x <= t'` means the node's comparison (x < t or x <= t)."""
    t = np.asarray(tree.threshold, dtype=dt)
    strict = np.asarray(tree.strict, dtype=bool)
    if strict.any():
        t = np.where(strict, np.nextafter(t, np.array(-np.inf, dt)), t)
    return t


_F32_MAX = float(np.finfo(np.float32).max)
_F32_OVERFLOW = _F32_MAX + 2.0 ** 103  # the first double that rounds to float32 infinity (a tie, to even)


def float32_le_bound(t: Any) -> np.ndarray:
    """The largest double `d` with `float32(d) <= t`, elementwise for double `t` (NaN stays NaN): for every
    double x, `float32(x) <= t` exactly when `x <= float32_le_bound(t)` (rounding to nearest, ties to even, as
    numpy and onnxruntime cast). By symmetry `float32(x) < t` exactly when `x < -float32_le_bound(-t)`."""
    t = np.asarray(t, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        f = t.astype(np.float32)
        f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)  # largest float32 <= t
        lo = f.astype(np.float64)
        mid = (lo + np.nextafter(f, np.float32(np.inf)).astype(np.float64)) / 2  # exact: 25 bits
        mid = np.where(lo == _F32_MAX, _F32_OVERFLOW, mid)
        mid = np.where(lo == -np.inf, -_F32_OVERFLOW, mid)
        mid = np.where(lo == np.inf, np.inf, mid)
        # the midpoint itself rounds to `lo` or to the float32 above it (ties to even): numpy's cast decides
        down = mid.astype(np.float32).astype(np.float64) <= t
        return np.where(down, mid, np.nextafter(mid, -np.inf))


def _unround(tree: _Tree) -> None:
    """Thresholds for a double input that the model compares only after rounding it to float32: every split
    becomes `x <= t'` with `t'` from float32_le_bound (exact for every double x, infinities included)."""
    t = np.asarray(tree.threshold, np.float64)
    strict = np.asarray(tree.strict, dtype=bool)
    leq = np.where(strict, np.nextafter(-float32_le_bound(-t), -np.inf), float32_le_bound(t))
    tree.threshold = [float(v) for v in leq]
    tree.strict = [False] * len(leq)


def _merge_per_target_trees(trees: list[_Tree]) -> list[_Tree]:
    """Trees with the same splits whose leaves give disjoint targets (a multiclass model stored once per class, as
    TreeEnsemble v5 writes one target per leaf) become one tree with multi-target leaves: each tree is then
    traversed once whatever the number of classes. Exact for every aggregate: each target still gets its
    values from the same trees (the others gave the aggregate's identity, as they still do)."""
    groups: dict[tuple[Any, ...], list[_Tree]] = {}
    order: list[tuple[Any, ...]] = []
    for tree in trees:
        key = (tuple(tree.feature), tuple(tree.threshold), tuple(tree.strict), tuple(tree.nan_yes), tuple(tree.true),
               tuple(tree.false), tuple(tree.leaf), tuple(sorted((k, tuple(v)) for k, v in tree.members.items())))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(tree)
    out = []
    for key in order:
        pending = groups[key]
        while pending:
            base, rest = pending[0], []
            merged = _Tree(list(base.feature), list(base.threshold), list(base.strict), list(base.nan_yes),
                           list(base.true), list(base.false), list(base.leaf),
                           {n: dict(v) for n, v in base.value.items()}, dict(base.members))
            used = {t for v in base.value.values() for t in v}
            for other in pending[1:]:
                targets = {t for v in other.value.values() for t in v}
                if targets & used:
                    rest.append(other)
                    continue
                used |= targets
                for n, v in other.value.items():
                    merged.value.setdefault(n, {}).update(v)
            out.append(merged)
            pending = rest
    return out


def _forest(b: _Builder, x: str, dt: np.dtype, trees: list[_Tree], n_targets: int, aggregate: str) -> str:
    """[N, n_targets]: the trees' leaf values aggregated (SUM, AVERAGE, MIN, MAX); records the formulation."""
    n_given = len(trees)
    trees = _merge_per_target_trees(trees)
    depth = max(t.depth() for t in trees)
    inner = max(sum(not lf for lf in t.leaf) for t in trees)
    leaves = max(sum(t.leaf) for t in trees)
    small = len(trees) * max(inner, 1) * leaves <= GEMM_MAX_CELLS
    has_sets = any(t.members for t in trees)
    # NNEF: portable's executor runs the gather traversal as one fused step per level (faster than the three
    # products of the GEMM formulation at every depth measured), so GEMM only where sets need it
    use_gemm = small and (has_sets or (depth <= GEMM_MAX_DEPTH and not b.for_nnef))
    if has_sets and not use_gemm:
        raise b.fail(f"MEMBER (set membership) nodes lower in the GEMM formulation only, and these {len(trees)} "
                     f"trees are too large for it ({len(trees)} x {inner} x {leaves} > {GEMM_MAX_CELLS})")
    # MIN/MAX take only the trees whose leaf has the target: the others give +-FLT_MAX, as onnxruntime does
    fill = {"MIN": np.finfo(np.float32).max, "MAX": -np.finfo(np.float32).max}.get(aggregate, 0.0)
    per_tree, tree_axis = (_gemm(b, x, dt, trees, n_targets, fill), 0) if use_gemm else \
        (_gather(b, x, dt, trees, n_targets, fill), 1)
    merged = f" merged from {n_given} per-target trees" if len(trees) != n_given else ""
    b.notes[b.node.name or b.node.op_type] = (f"{'gemm' if use_gemm else 'gather'} (trees={len(trees)}{merged}, "
                                              f"max_depth={depth})")
    op = {"SUM": "ReduceSum", "AVERAGE": "ReduceMean", "MIN": "ReduceMin", "MAX": "ReduceMax"}.get(aggregate)
    if op is None:
        raise b.fail(f"unknown aggregate_function {aggregate}")
    if aggregate == "AVERAGE" and len(trees) != n_given:  # the average is over the trees as given
        total = b.reduce("ReduceSum", per_tree, [tree_axis], keepdims=0)
        return b.op("Div", [total, b.const(np.array(n_given, dt), "n_trees")])
    return b.reduce(op, per_tree, [tree_axis], keepdims=0)


def _gemm(b: _Builder, x: str, dt: np.dtype, trees: list[_Tree], k: int, fill: float) -> str:
    """[T, N, K] per-tree values by three matrix products (decisions, leaf reachability, leaf values)."""
    inner = max(1, max(sum(not lf for lf in t.leaf) for t in trees))
    leaves = max(sum(t.leaf) for t in trees)
    nt = len(trees)
    sel = np.zeros(nt * inner, np.int64)
    thr = np.zeros(nt * inner, dt)
    nan_yes = np.zeros(nt * inner, dt)
    pairs: list[tuple[int, int, float]] = []  # (column, feature, value) for MEMBER nodes
    path = np.zeros((nt, inner, leaves), dt)
    need = np.full((nt, 1, leaves), -1.0, dt)  # padding leaves are never reached
    vals = np.zeros((nt, leaves, k), dt)
    for ti, tree in enumerate(trees):
        nodes = [n for n in range(len(tree.leaf)) if not tree.leaf[n]]
        lvs = [n for n in range(len(tree.leaf)) if tree.leaf[n]]
        col = {n: i for i, n in enumerate(nodes)}
        lcol = {n: i for i, n in enumerate(lvs)}
        t_leq = _leq_thresholds(tree, dt)
        for n, i in col.items():
            sel[ti * inner + i] = tree.feature[n]
            thr[ti * inner + i] = t_leq[n]
            nan_yes[ti * inner + i] = tree.nan_yes[n]
            pairs += [(ti * inner + i, tree.feature[n], v) for v in tree.members.get(n, [])]
        for n, j in lcol.items():
            need[ti, 0, j] = 0
            vals[ti, j, :] = fill
            for target, w in tree.value.get(n, {}).items():
                vals[ti, j, target] = (0 if vals[ti, j, target] == fill else vals[ti, j, target]) + w
        stack = [(0, [])]
        while stack:  # walk down keeping the (node, went_true) pairs above each leaf
            n, above = stack.pop()
            if tree.leaf[n]:
                for a, went_true in above:
                    path[ti, col[a], lcol[n]] = 1 if went_true else -1
                    need[ti, 0, lcol[n]] += 1 if went_true else 0
                continue
            stack += [(tree.true[n], above + [(n, True)]), (tree.false[n], above + [(n, False)])]
    # a Gather rather than a one-hot product: NaN and inf in one feature must not leak into the others
    xa = b.op("Gather", [x, b.const(sel, "select")], axis=1)
    decide = b.op("LessOrEqual", [xa, b.const(thr, "thresholds")])
    if pairs:  # x in set: one equality per (node, value), summed per node by a product
        cols = sorted({c for c, _, _ in pairs})
        on_pair = np.zeros((len(pairs), nt * inner), dt)
        for p, (c, _, _) in enumerate(pairs):
            on_pair[p, c] = 1
        xp = b.op("Gather", [x, b.const(np.array([f for _, f, _ in pairs], np.int64), "member_features")], axis=1)
        hits = b.cast_to(b.op("Equal", [xp, b.const(np.array([v for _, _, v in pairs], dt), "member_values")]), dt)
        member = b.op("Greater", [b.op("MatMul", [hits, b.const(on_pair, "member_nodes")]),
                                  b.const(np.array(0.5, dt))])
        is_set = np.zeros(nt * inner, dt)
        is_set[cols] = 1
        mask = b.op("Greater", [b.const(is_set, "is_member"), b.const(np.array(0.5, dt))])
        # And/Or rather than Where: onnxruntime 1.32 has no Where over booleans
        decide = b.op("Or", [b.op("And", [mask, member]), b.op("And", [b.op("Not", [mask]), decide])])
    decide = _nan_routed(b, xa, decide, nan_yes, None)
    decide = b.cast_to(decide, dt)
    decide = b.op("Reshape", [decide, b.const(np.array([-1, nt, inner], np.int64), "shape")])
    decide = b.op("Transpose", [decide], perm=[1, 0, 2])
    reach = b.op("MatMul", [decide, b.const(path, "paths")])
    hit = b.cast_to(b.op("Equal", [reach, b.const(need, "path_len")]), dt)
    return b.op("MatMul", [hit, b.const(vals, "leaf_values")])


def _gather(b: _Builder, x: str, dt: np.dtype, trees: list[_Tree], k: int, fill: float) -> str:
    """[N, T, K] per-tree values by stepping every row's node index down each tree `max_depth` times."""
    offsets = np.cumsum([0] + [len(t.leaf) for t in trees])[:-1]
    feat, thr, yes, no, nan_yes = [], [], [], [], []
    vals = np.zeros((int(offsets[-1]) + len(trees[-1].leaf), k), dt)
    for off, tree in zip(offsets, trees):
        t_leq = _leq_thresholds(tree, dt)
        for n in range(len(tree.leaf)):
            g = int(off) + n
            if tree.leaf[n]:  # leaves point at themselves, so extra steps keep rows where they are
                feat.append(0), thr.append(0), yes.append(g), no.append(g), nan_yes.append(0)
                vals[g, :] = fill
                for target, w in tree.value.get(n, {}).items():
                    vals[g, target] = (0 if vals[g, target] == fill else vals[g, target]) + w
            else:
                feat.append(tree.feature[n]), thr.append(t_leq[n]), nan_yes.append(tree.nan_yes[n])
                yes.append(int(off) + tree.true[n]), no.append(int(off) + tree.false[n])
    feat_a, thr_a = np.asarray(feat, np.int64), np.asarray(thr, dt)
    yes_a, no_a = np.asarray(yes, np.int64), np.asarray(no, np.int64)
    roots = offsets.astype(np.int64)
    depth = max(t.depth() for t in trees)
    n_feat = int(feat_a.max()) + 1
    # the first step needs no per-row gather: every row is at the roots
    xf = b.op("Gather", [x, b.const(feat_a[roots], "root_features")], axis=1)
    nan_a = np.asarray(nan_yes, dt)
    go = b.op("LessOrEqual", [xf, b.const(thr_a[roots], "root_thresholds")])
    go = _nan_routed(b, xf, go, nan_a[roots], None)
    t_nan = b.const(nan_a, "nan_true") if nan_a.any() else None
    idx = b.op("Where", [go, b.const(yes_a[roots], "root_true"), b.const(no_a[roots], "root_false")])
    if depth > 1:
        t_thr = b.const(thr_a, "thresholds")
        t_yes, t_no = b.const(yes_a, "true_children"), b.const(no_a, "false_children")
    if depth > 1 and b.for_nnef:
        x3 = b.op("Unsqueeze", [x, b.const(np.array([1], np.int64), "axes")])  # [N, 1, F]
        x3 = b.op("Slice", [x3, b.const(np.array([0], np.int64)), b.const(np.array([n_feat], np.int64)),
                            b.const(np.array([2], np.int64))])
        # feature ids as floats: NNEF compares scalars only (exact: ids are small integers)
        t_featf = b.const(feat_a.astype(dt), "features_f")
        columns = b.const(np.arange(n_feat, dtype=dt), "columns")
        zero = b.const(np.array(0, dt), "zero")
        axes_last = b.const(np.array([-1], np.int64), "axes")
    elif depth > 1:
        t_feat = b.const(feat_a, "features")
    for _ in range(depth - 1):
        if b.for_nnef:  # NNEF has no per-row gather (GatherElements): pick the feature by a one-hot mask
            f = b.op("Unsqueeze", [b.op("Gather", [t_featf, idx], axis=0), axes_last])  # [N, T, 1]
            picked = b.op("Where", [b.op("Equal", [f, columns]), x3, zero])  # [N, T, F], one value per row
            xf = b.reduce("ReduceSum", picked, [2], keepdims=0)
        else:
            xf = b.op("GatherElements", [x, b.op("Gather", [t_feat, idx], axis=0)], axis=1)
        go = b.op("LessOrEqual", [xf, b.op("Gather", [t_thr, idx], axis=0)])
        if t_nan is not None:
            go = _nan_routed(b, xf, go, None, b.op("Gather", [t_nan, idx], axis=0), nan_a.dtype)
        idx = b.op("Where", [go, b.op("Gather", [t_yes, idx], axis=0), b.op("Gather", [t_no, idx], axis=0)])
    return b.op("Gather", [b.const(vals, "leaf_values"), idx], axis=0)


def _nan_routed(b: _Builder, xf: str, go: str, table: np.ndarray | None, gathered: str | None,
                dt: np.dtype | None = None) -> str:
    """`go` with NaN rows sent to the true child where the node says so (a 0/1 float table: NNEF has no
    logical variables nnef-tools writes). `x <= t` is already False for NaN, so all-zero tables need nothing."""
    if table is not None:
        if not table.any():
            return go
        gathered = b.const(table, "nan_true")
    isnan = b.op("Not", [b.op("Equal", [xf, xf])])
    # the table's dtype (an op's output has no recorded type: np_dtype would say float32 for a double table)
    wants = b.op("Greater", [gathered, b.const(np.array(0.5, table.dtype if table is not None else dt))])
    return b.op("Or", [go, b.op("And", [isnan, wants])])


def _ensemble_scores(b: _Builder, node: Any, trees: list[_Tree], k: int, aggregate: str,
                     base: np.ndarray | None) -> tuple[str, np.dtype]:
    x, dt = b.float_input(node.input[0])
    source = b.float32_rounded_source(x) if b.for_nnef and not any(t.members for t in trees) else None
    if source is None and b.for_nnef and dt == np.float32 and not any(t.members for t in trees):
        source = b.float32_cast_source(x)  # trees walking the float32 rounding of a double tensor itself
        if source is not None:
            dt = np.dtype(np.float64)
    if source is not None:
        # NNEF has one precision for scalars: the rounding through float32 before the trees (scikit-learn's
        # trees compare float32(x) with double thresholds) cannot be written, so it moves into the thresholds
        x = source
        for tree in trees:
            _unround(tree)
    s = _forest(b, x, dt, trees, k, aggregate)
    if base is not None and len(base) and np.any(base != 0):
        s = b.op("Add", [s, b.const(np.asarray(base, dt).reshape(-1), "base_values")])
    return s, dt


@lowers("TreeEnsembleRegressor")
def _tree_regressor(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    trees = _trees_v3(b, at, "target")
    k = int(at.get("n_targets", 1))
    s, dt = _ensemble_scores(b, node, trees, k, at.get("aggregate_function", "SUM"),
                             _pick(at, "base_values_as_tensor", "base_values"))
    s = b.post_transform(s, at.get("post_transform", "NONE"), dt)
    if np.dtype(dt) != np.float32:  # the operator's output is float32 whatever its input (a double sum, rounded)
        s = b.op("Cast", [s], to=b.onnx.TensorProto.FLOAT)
    b.finish(s, node.output[0])


@lowers("TreeEnsemble")
def _tree_ensemble(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    trees = _trees_v5(b, at)
    agg = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}[int(at.get("aggregate_function", 1))]
    post = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}[int(at.get("post_transform", 0))]
    s, dt = _ensemble_scores(b, node, trees, int(at.get("n_targets", 1)), agg, None)
    b.finish(b.post_transform(s, post, dt), node.output[0])


@lowers("TreeEnsembleClassifier")
def _tree_classifier(b: _Builder, node: Any) -> None:
    at = _attrs(node)
    classes = _classes(at, "classlabels_int64s", "classlabels_strings")
    trees = _trees_v3(b, at, "class")
    ids = {int(i) for i in at["class_ids"]}
    post = at.get("post_transform", "NONE")
    binary = len(ids) == 1 and len(classes) == 2
    k = 1 if binary else len(classes)
    base = _pick(at, "base_values_as_tensor", "base_values")
    if binary:
        only = ids.pop()
        for t in trees:  # the one class's weights become column 0
            t.value = {n: {0: v.get(only, 0.0)} for n, v in t.value.items()}
        base = None if base is None else np.asarray(base).ravel()[:1]
    s, dt = _ensemble_scores(b, node, trees, k, "SUM", base)
    if binary:  # onnxruntime: [1 - s, s] without a transform, [-s, s] before one
        first = b.op("Sub", [b.const(np.array(1, dt)), s]) if post in ("NONE", "PROBIT") else b.op("Neg", [s])
        s = b.op("Concat", [first, s], axis=1)
    scores = b.post_transform(s, post, dt)
    _label(b, scores, classes, node.output[0])
    b.finish(scores, node.output[1])


@lowers("ZipMap")
def _zipmap(b: _Builder, node: Any) -> None:
    b.op("Identity", [node.input[0]], out=node.output[0])
    b.zipmaps.append(node.output[0])


# ----------------------------------------------------------------------------------------------------------
# the pass
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoweringResult:
    """A lowered model and what was done: `trees` maps each tree node to its formulation."""

    proto: Any
    lowered: dict[str, int]
    trees: dict[str, str]

    @property
    def formulation(self) -> str:
        kinds = sorted({v.split(" ")[0] for v in self.trees.values()})
        return "+".join(kinds) if kinds else "none"


def lower_proto(proto: Any, *, for_nnef: bool = False) -> LoweringResult:
    """A copy of `proto` with every `ai.onnx.ml` node replaced by standard ONNX operators.

    Args:
        for_nnef: use only operators nnef-tools converts (the gather traversal then selects each row's
            feature with a one-hot mask instead of GatherElements).

    Raises:
        UnsupportedModelError: a node has no lowering (the message names it and lists what is supported).
        ConversionError: the lowered model fails `onnx.checker`.
    """
    onnx = require("onnx", purpose="lowering ONNX-ML")
    from ..formats.onnx import check_proto

    src = onnx.ModelProto()
    src.CopyFrom(proto)
    from ..formats.onnx_trees import join_per_tree, without_row_order

    unordered = without_row_order(src.graph)  # the rows' order around a forest is onnxruntime's speed alone
    if unordered is not src.graph:
        src.graph.CopyFrom(unordered)
    join_per_tree(src.graph)  # a forest written one tree per operator is lowered as one forest
    if any(n.domain == ML_DOMAIN for n in src.graph.node) and not any(o.domain == ML_DOMAIN for o in src.opset_import):
        # trees read from standard operators (onnx_trees.without_oblivious: CatBoost's symmetric trees)
        src.opset_import.add(domain=ML_DOMAIN, version=5 if any(n.op_type == "TreeEnsemble" for n in src.graph.node)
                             else 3)
    opsets = {o.domain or "": o.version for o in src.opset_import}
    strings = not for_nnef and any(
        n.domain == ML_DOMAIN and n.op_type in ("OneHotEncoder", "LabelEncoder") and
        any(a.name in ("cats_strings", "keys_strings", "values_strings") or
            (a.name in ("keys_tensor", "values_tensor", "default_tensor") and
             a.t.data_type == onnx.TensorProto.STRING) for a in n.attribute)
        for n in src.graph.node)
    need = STRING_OPSET if strings else MIN_OPSET
    if "" not in opsets and all(n.domain == ML_DOMAIN for n in src.graph.node):
        # a model importing only ai.onnx.ml has no standard operator to convert: it simply gains the opset
        src.opset_import.append(onnx.helper.make_opsetid("", need))
        opsets[""] = need
    if opsets.get("", 0) < need and any(n.domain == ML_DOMAIN for n in src.graph.node):
        try:
            src = onnx.version_converter.convert_version(src, need)
        except Exception as exc:
            raise ConversionError(f"could not move the model from opset {opsets.get('', 0)} to {need} "
                                  f"before lowering: {exc}") from None
        opsets = {o.domain or "": o.version for o in src.opset_import}
    try:
        inferred = onnx.shape_inference.infer_shapes(src)
    except Exception:
        inferred = src
    b = _Builder(inferred, opsets.get("", MIN_OPSET), for_nnef=for_nnef)
    counts: dict[str, int] = {}
    for node in src.graph.node:
        if node.domain != ML_DOMAIN:
            b.nodes.append(node)
            continue
        fn = LOWERINGS.get(node.op_type)
        if fn is None:
            raise UnsupportedModelError(
                f"the ai.onnx.ml operator {node.op_type} has no lowering to standard ONNX operators; lowered: "
                f"{', '.join(sorted(LOWERINGS))}", where=f"node '{node.name}'")
        b.node = node
        fn(b, node)
        b.node = None
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    g = src.graph
    del g.node[:]
    g.node.extend(_live(b.nodes, [o.name for o in g.output]) if for_nnef else b.nodes)
    g.initializer.extend(b.initializers)
    del g.value_info[:]  # stale for the replaced nodes; runtimes infer them again
    for out in g.output:
        if out.name in b.zipmaps:
            out.type.CopyFrom(onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, [None, None]))
    kept = [o for o in src.opset_import if o.domain != ML_DOMAIN]
    del src.opset_import[:]
    src.opset_import.extend(kept)
    # the lowering adds initializers that are not graph inputs (IR >= 4) and standard operators of opset `need`:
    # an older IR version (IR 3 requires every initializer to be an input) moves up to what the opsets need
    try:
        least = onnx.helper.find_min_ir_version_for(list(src.opset_import), ignore_unknown=True)
    except Exception:
        least = 7
    src.ir_version = max(src.ir_version, least, 4)
    if any(n.domain == ML_DOMAIN for n in g.node):
        raise ConversionError("an ai.onnx.ml node survived lowering")
    check_proto(src, produced=True)
    return LoweringResult(src, counts, dict(b.notes))


def _live(nodes: list[Any], outputs: list[str]) -> list[Any]:
    """`nodes` without those whose results nothing uses (e.g. a float32 rounding moved into tree thresholds)."""
    needed = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output if o):
            keep.append(node)
            needed.update(i for i in node.input if i)
            needed.update(_subgraph_names(node))
    return keep[::-1]


def _subgraph_names(node: Any) -> set[str]:
    """Every tensor name the node's subgraphs (If/Loop/Scan bodies) read, outer-scope names included."""
    names: set[str] = set()
    graphs = [a.g for a in node.attribute if a.HasField("g")] + [g for a in node.attribute for g in a.graphs]
    for g in graphs:
        for n in g.node:
            names.update(i for i in n.input if i)
            names.update(_subgraph_names(n))
    return names


def lower_model(model: Any, options: ConvertOptions | None = None) -> Any:
    """An `OnnxModel` whose graph uses standard ONNX operators only, with the lowering in its metadata."""
    from ..formats.onnx import OnnxModel

    result = lower_proto(model.proto)
    out = OnnxModel(result.proto, origin=model.origin, path=None, runtime=getattr(model, "runtime", "onnxruntime"))
    out.report, out.notes, out.route, out.dtype = model.report, list(model.notes), list(model.route), model.dtype
    out.set_metadata("portable.lowering", ",".join(f"{k}x{v}" for k, v in sorted(result.lowered.items())) or "none")
    if result.trees:
        out.set_metadata("portable.lowering.trees", result.formulation)
        out.set_metadata("portable.lowering.trees.detail",
                         "; ".join(f"{k}: {v}" for k, v in sorted(result.trees.items())))
    return out


__all__ = ["GEMM_MAX_CELLS", "GEMM_MAX_DEPTH", "LOWERINGS", "LoweringResult", "lower_model", "lower_proto",
           "lowers"]
