"""The Emitter: how portable's converters write ONNX nodes into skl2onnx's scope and container.

It knows skl2onnx's objects only by duck typing (scope, operator, container), so it imports no skl2onnx; the
numerical pieces it shares with the other ONNX writers come from `portable.onnx_builder`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ... import onnx_builder

if TYPE_CHECKING:
    from .trees import Forest

ML = "ai.onnx.ml"

class Emitter:
    """Small helper around skl2onnx's scope/container: unique names, constants, nodes in one dtype."""

    def __init__(self, scope: Any, operator: Any, container: Any) -> None:
        self.scope, self.operator, self.container = scope, operator, container
        kind = type(operator.inputs[0].type).__name__
        # an input that is not a float tensor (strings, integers): the declared output's float type decides
        self.double = kind == "DoubleTensorType" or (
            kind != "FloatTensorType" and bool(operator.outputs)
            and type(operator.outputs[0].type).__name__ == "DoubleTensorType")
        self.dtype = np.float64 if self.double else np.float32
        # skl2onnx 1.20 makes names unique by scanning every name it has (and add_node every node name), which
        # is quadratic: 11,000 nodes take 20 s. This emitter's names carry a prefix of their own instead: the
        # emitter's ordinal in this conversion (counted on its container), so names, and skl2onnx's node order
        # (it sorts by name among equals), are the same in every process.
        k = getattr(container, "_portable_emitters", 0) + 1
        container._portable_emitters = k
        self._prefix = f"p{k:08x}"
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._prefix}_{self._count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        arr = np.asarray(value)
        if arr.dtype.kind not in "OUS":
            arr = arr.astype(dtype or self.dtype)
        n = self.name(hint)
        if arr.dtype.kind in "OUS":
            from onnx import TensorProto, helper

            self.container.initializers.append(
                helper.make_tensor(n, TensorProto.STRING, arr.shape, [str(v).encode() for v in arr.ravel()]))
        else:
            self.container.initializers.append(numpy_helper.from_array(arr, n))
        return n

    def node(self, op: str, inputs: list[str], hint: str = "t", out: str | None = None, **attrs: Any) -> str:
        """One standard-domain node, appended to skl2onnx's container without its quadratic name checks."""
        from onnx import helper

        o = out or self.name(hint)
        self.container.nodes.append(helper.make_node(op, inputs, [o], name=self.name(op), **attrs))
        self.container.node_domain_version_pair_sets.add(("", self.container.target_opset_any_domain("")))
        return o

    def reduce(self, op: str, x: str, axis: int, *, keepdims: int = 0) -> str:
        """A Reduce* node over one axis, with `axes` as an input or an attribute as the opset wants."""
        opset = self.container.target_opset_any_domain("")
        if opset >= 18 or (op == "ReduceSum" and opset >= 13):
            return self.node(op, [x, self.const([axis], dtype=np.int64)], op.lower(), keepdims=keepdims)
        return self.node(op, [x], op.lower(), axes=[axis], keepdims=keepdims)

    def topk(self, x: str, k: int, *, largest: bool) -> tuple[str, str]:
        """TopK over axis 1, sorted: (values, int64 indices); equal values keep the lower index first."""
        from onnx import helper

        vals, idx = self.name("topv"), self.name("topi")
        self.container.nodes.append(helper.make_node("TopK", [x, self.const([k], dtype=np.int64)], [vals, idx],
                                                     axis=1, largest=int(largest), sorted=1, name=self.name("TopK")))
        self.container.node_domain_version_pair_sets.add(("", self.container.target_opset_any_domain("")))
        return vals, idx

    def input(self) -> str:
        """The operator's input as a float tensor of this emitter's dtype."""
        from onnx import TensorProto

        x = self.operator.inputs[0]
        kind = type(x.type).__name__
        if kind in ("DoubleTensorType", "FloatTensorType"):
            return x.full_name
        return self.node("Cast", [x.full_name], "xcast", to=TensorProto.DOUBLE if self.double else TensorProto.FLOAT)

    def width(self) -> int | None:
        """The number of columns of the operator's (2-D) input, when its type says."""
        shape = getattr(self.operator.inputs[0].type, "shape", None)
        if shape is None or len(shape) != 2 or not isinstance(shape[1], (int, np.integer)):
            return None
        return int(shape[1])

    def as_float32_then_back(self, x: str) -> str:
        """scikit-learn's trees compare float32(x) with double thresholds: round the input the same way."""
        from onnx import TensorProto

        if not self.double:
            return x
        x32 = self.node("Cast", [x], "x32", to=TensorProto.FLOAT)
        return self.node("Cast", [x32], "x32d", to=TensorProto.DOUBLE)

    def ensemble(self, x: str, forest: Forest, hint: str = "trees", aggregate: int = 1, *,
                 average: bool = False, base: Any = None, width: int | None = None,
                 original_sum: str = "float64") -> str:
        """A TreeEnsemble node; its (large) attributes are attached by `attach_pending` after skl2onnx is done.

        `average`: the sum over trees divided by the number of trees; `base`: `[n_targets]` added last. Both are
        folded into the tree operator where its formulation can hold them (`aggregate_function`,
        `base_values`: the same float operations in the same order), else written as Div/Add after it.
        `width`: the number of columns of `x`, when known: splits that send missing values left then read a
        negated copy of their column instead of tracking missing values (`trees.negate_missing_left`).
        `original_sum`: the dtype the original library sums the trees in (`trees.sums_in_double`).

        skl2onnx copies the graph several times while it builds and cleans the model; for a 300-tree forest
        that is ~17 MB per copy, so the node travels through skl2onnx empty and gets its arrays at the end.
        """
        import uuid

        from .trees import PENDING, PENDING_KEY, Pending

        o = self.name(hint)
        name = self.name("TreeEnsemble")
        # the key into PENDING is unique across concurrent conversions; it travels as an attribute (removed by
        # attach_pending) so that the node's name stays the same in every process
        key = uuid.uuid4().hex
        # version 3 in skl2onnx's bookkeeping (it refuses ai.onnx.ml 5); sklearn_extra.finalize() declares 5
        self.container.add_node("TreeEnsemble", [x], [o], op_domain=ML, op_version=3, name=name,
                                **{PENDING_KEY: key})
        while len(PENDING) >= 64:  # left by conversions that failed before attach_pending: drop the oldest
            PENDING.pop(next(iter(PENDING)))
        PENDING[key] = Pending(forest, self.dtype, aggregate, average,
                               None if base is None else np.asarray(base, dtype=np.float64).reshape(-1),
                               None if width is None else int(width), original_sum)
        return o

    def label(self, scores: str, classes: np.ndarray, *, binary_raw: str | None = None,
              strict: bool = True) -> None:
        """Write output 0 as `classes[argmax(scores)]`, or `classes[raw > 0]` (`>= 0` unless strict)."""
        from onnx import TensorProto

        if binary_raw is not None:
            cmp = self.node("Greater" if strict else "GreaterOrEqual", [binary_raw, self.const([0.0])], "pos")
            idx = self.node("Cast", [cmp], "idx", to=TensorProto.INT64)
            idx = self.node("Reshape", [idx, self.const([-1], dtype=np.int64)], "idx1")
        else:
            idx = self.node("ArgMax", [scores], "idx", axis=1, keepdims=0)
        cls = np.asarray(classes)
        if cls.dtype.kind in "OUS":
            table = self.const(cls.astype(str), "classes")
        else:
            table = self.const(cls.astype(np.int64), "classes", dtype=np.int64)
        # a Gather even for classes 0..K-1 (where the index is the label): the class table is what the
        # mutation benchmark and certification read labels from
        self.node("Gather", [table, idx], out=self.operator.outputs[0].full_name, axis=0)

    @property
    def ops(self) -> onnx_builder.Ops:
        """This emitter as the shared builder's interface (`portable.onnx_builder`)."""
        return onnx_builder.Ops(node=lambda op, *xs, **at: self.node(op, list(xs), op.lower(), **at),
                                const=self.const, float64=self.double,
                                int_const=lambda v: self.const(v, dtype=np.int64))

    def reduce_sum(self, x: str, axis: int, keepdims: int = 0) -> str:
        return self.reduce("ReduceSum", x, axis, keepdims=keepdims)

    def output(self, i: int, value: str) -> None:
        self.node("Identity", [value], out=self.operator.outputs[i].full_name)

