"""`onnx -> nnef`: lower ONNX-ML to standard operators, fix the shapes, then nnef-tools' ONNX converter.

nnef-tools converts standard ONNX operators only, so the model is first lowered (`onnx_standard`), then a few
standard operators nnef-tools 1.0.11 cannot take are rewritten (Gemm with alpha/beta other than 1,
ReduceSumSquare, Reduce* with `axes` as an input since opset 13/18), class labels are peeled off (NNEF has no
strings: label outputs become class indices and the label list goes to `portable.json`), and the inputs get a
static batch. Before nnef-tools, portable's own pass (`onnx_nnef_pass`) refuses what NNEF cannot hold, expands
ONNX functions, folds constant shape subgraphs, unrolls LSTM/GRU/RNN and rewrites the operators nnef-tools maps
wrongly or not at all. nnef-tools then reads, converts and writes the graph through its Python API (its
internal errors become clear refusals), and the result is validated by the `nnef` parser (with shapes) before
it becomes an `NnefModel`.

The static batch is a deliberately odd size (STATIC_BATCH): nnef-tools writes the batch of a Reshape as 0 ("copy
the input's dimension") when the target's first dimension equals the input's batch, so a batch of 1 would be
mistaken for any other dimension of size 1. The graph itself stays batch-agnostic and runs on any batch size.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConversionError, NNEFError, PortableError, UnsupportedModelError
from ..formats.nnef import NnefModel
from ..formats.onnx import OnnxModel
from ..registry import ConvertOptions, converter, require
from .onnx_nnef_pass import Pass, batch_free_shapes, prepare
from .onnx_standard import ML_DOMAIN, lower_proto

STATIC_BATCH = 97
_SHAPE_OPS = ("Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten")
_REDUCE_OPS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceSumSquare", "ReduceLogSumExp")


# ----------------------------------------------------------------------------------------------------------
# ONNX-level rewrites nnef-tools needs
# ----------------------------------------------------------------------------------------------------------
def _initializers(graph: Any) -> dict[str, Any]:
    return {i.name: i for i in graph.initializer}


def _rewrite_for_nnef_tools(proto: Any, dtype: str) -> None:
    """Gemm with alpha/beta != 1 and ReduceSumSquare become operators nnef-tools converts."""
    onnx = require("onnx")
    h = onnx.helper
    elem = onnx.TensorProto.DOUBLE if dtype == "float64" else onnx.TensorProto.FLOAT
    g = proto.graph
    nodes, extra = [], []
    count = 0

    def fresh(base: str) -> str:
        nonlocal count
        count += 1
        return f"{base}__nnef{count}"

    for node in g.node:
        at = {a.name: h.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm" and (at.get("alpha", 1.0) != 1.0 or
                                       (len(node.input) > 2 and node.input[2] and at.get("beta", 1.0) != 1.0)):
            a, b_ = node.input[0], node.input[1]
            if at.get("transA"):
                a2 = fresh(a)
                nodes.append(h.make_node("Transpose", [a], [a2], perm=[1, 0]))
                a = a2
            if at.get("transB"):
                b2 = fresh(b_)
                nodes.append(h.make_node("Transpose", [b_], [b2], perm=[1, 0]))
                b_ = b2
            y = fresh(node.output[0])
            nodes.append(h.make_node("MatMul", [a, b_], [y]))
            for key, inp in (("alpha", None), ("beta", node.input[2] if len(node.input) > 2 else "")):
                if key == "alpha" and at.get("alpha", 1.0) != 1.0:
                    c = fresh("alpha")
                    extra.append(h.make_tensor(c, elem, [], [float(at["alpha"])]))
                    y2 = fresh(node.output[0])
                    nodes.append(h.make_node("Mul", [y, c], [y2]))
                    y = y2
                if key == "beta" and inp:
                    term = inp
                    if at.get("beta", 1.0) != 1.0:
                        c = fresh("beta")
                        extra.append(h.make_tensor(c, elem, [], [float(at["beta"])]))
                        term = fresh(inp)
                        nodes.append(h.make_node("Mul", [inp, c], [term]))
                    y2 = fresh(node.output[0])
                    nodes.append(h.make_node("Add", [y, term], [y2]))
                    y = y2
            nodes.append(h.make_node("Identity", [y], [node.output[0]]))
        elif node.op_type == "ReduceSumSquare":
            sq = fresh(node.input[0])
            nodes.append(h.make_node("Mul", [node.input[0], node.input[0]], [sq]))
            nodes.append(h.make_node("ReduceSum", [sq, *node.input[1:]], list(node.output), name=node.name,
                                     **at))
        else:
            nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)


def _peel_labels(proto: Any, label_outputs: list[str]) -> dict[str, list[Any]]:
    """Label outputs computed as `classes[index]` become the index; returns {output: class list}.

    Walks back from the output through shape-only operators to a Gather from a 1-D constant; the Gather
    becomes an Identity of its indices and Casts on the way are dropped (the indices stay int64).
    """
    onnx = require("onnx")
    g = proto.graph
    producer = {o: n for n in g.node for o in n.output}
    inits = _initializers(g)
    labels: dict[str, list[Any]] = {}
    for name in label_outputs:
        chain, cur = [], name
        while cur in producer and producer[cur].op_type in _SHAPE_OPS:
            chain.append(producer[cur])
            cur = producer[cur].input[0]
        node = producer.get(cur)
        if node is None or node.op_type != "Gather" or node.input[0] not in inits:
            continue
        table = onnx.numpy_helper.to_array(inits[node.input[0]])
        if table.ndim != 1:
            continue
        labels[name] = [v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                        for v in table.tolist()] if table.dtype != object else \
            [v.decode() if isinstance(v, bytes) else str(v) for v in table]
        for n in [node, *[c for c in chain if c.op_type == "Cast"]]:
            keep_in, keep_out = (n.input[1] if n is node else n.input[0]), n.output[0]
            n.ClearField("attribute")
            n.op_type, n.domain = "Identity", ""
            del n.input[:]
            n.input.append(keep_in)
            del n.output[:]
            n.output.append(keep_out)
        for out in g.output:
            if out.name == name:
                out.type.tensor_type.elem_type = onnx.TensorProto.INT64
    return labels


def _static_batch(proto: Any, batch: int) -> None:
    """Inputs get the static batch; outputs lose their declared shapes, which shape inference recomputes."""
    for vi in proto.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
        for d in dims[1:]:
            if not d.HasField("dim_value"):
                raise NNEFError(f"the input '{vi.name}' has a free dimension beyond the batch; NNEF needs static "
                                "shapes")
    for vi in proto.graph.output:
        vi.type.tensor_type.ClearField("shape")
    del proto.graph.value_info[:]


# ----------------------------------------------------------------------------------------------------------
# nnef-tools
# ----------------------------------------------------------------------------------------------------------
def _fix_reduce_axes(graph: Any) -> None:
    """nnef-tools 1.0.11 reads Reduce* axes from an attribute only; since opset 13/18 they are an input."""
    for op in graph.operations:
        if op.type in _REDUCE_OPS and len(op.inputs) >= 2:
            axes = op.inputs[1]
            if axes.data is None:
                raise UnsupportedModelError(f"{op.type} with computed axes cannot be converted to NNEF")
            rank = len(op.inputs[0].shape)
            op.attribs["axes"] = [int(a) + rank if a < 0 else int(a) for a in np.asarray(axes.data).ravel()]
            op.inputs = (op.inputs[0],)


def _nnef_files(proto: Any) -> tuple[dict[str, bytes], list[str], list[str]]:
    """Convert with nnef-tools; returns the files of the NNEF folder and its input and output names."""
    onnx = require("onnx")
    require("nnef_tools", purpose="converting ONNX to NNEF")
    from nnef_tools.conversion.converter import ConversionError as ToolsConversionError
    from nnef_tools.conversion.onnx_to_nnef import Converter
    from nnef_tools.io.nnef import Writer
    from nnef_tools.io.onnx.reader import (
        _add_value_info_for_constants,
        onnx_model_to_graph,
    )
    from nnef_tools.optimization.onnx_optimizer import Optimizer

    _add_value_info_for_constants(proto)
    try:
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    except Exception as exc:
        raise ConversionError(f"shape inference failed on the lowered model: {exc}") from None
    try:
        graph = onnx_model_to_graph(proto)
        graph = Optimizer()(graph, only_required=True)
        _fix_reduce_axes(graph)
        graph.sort()
        conv = Converter(keep_io_names=True)
        graph = conv(graph)
    except ToolsConversionError as exc:
        details = "; ".join(str(d).splitlines()[0] for d in (exc.details or []))
        raise UnsupportedModelError(f"nnef-tools cannot convert the lowered model: {exc}"
                                    + (f" ({details})" if details else "")) from None
    except Exception as exc:  # nnef-tools internal errors (KeyError: 'BFLOAT16', assertions, ...)
        raise ConversionError(f"nnef-tools failed on the lowered model: {type(exc).__name__}: {exc}") from None
    inputs = [t.name for t in graph.inputs]
    outputs = [t.name for t in graph.outputs]
    with tempfile.TemporaryDirectory(prefix="portable-nnef-") as tmp:
        folder = os.path.join(tmp, "model")
        Writer(fragments=conv.defined_operations(),
               fragment_dependencies=conv.defined_operation_dependencies())(graph, folder)
        files = {}
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                files[p.relative_to(folder).as_posix()] = p.read_bytes()
    return files, inputs, outputs


@converter("onnx", "nnef", requires=("onnx", "nnef", "nnef_tools"))
def onnx_to_nnef(model: OnnxModel, options: ConvertOptions) -> NnefModel:
    """ONNX -> NNEF: lower ai.onnx.ml, fix shapes, convert with nnef-tools, validate with the NNEF parser."""
    onnx = require("onnx", purpose="ONNX")
    sig = model.signature
    _node_inputs(model)
    strings = [s.name for s in sig.inputs if s.is_string]
    if strings:
        raise NNEFError(f"NNEF has no string tensors, and the model takes strings in {strings}; encode them as "
                        "numbers before converting (e.g. an OrdinalEncoder fitted outside the model)",
                        path=model.origin.path)
    from ..formats.onnx_trees import OBLIVIOUS_TAG, SWITCH_TAG

    # CatBoost's symmetric trees in standard operators (and their choice by batch size) are lowered from their
    # TreeEnsemble reading too
    if any(n.domain == ML_DOMAIN or OBLIVIOUS_TAG in n.name or SWITCH_TAG in n.name for n in model.proto.graph.node):
        from .sklearn.trees import narrow_sums

        lowered = lower_proto(narrow_sums(model.proto), for_nnef=True)  # NNEF: one precision (float32 sums)
        proto, trees = lowered.proto, lowered
    else:
        proto, trees = onnx.ModelProto(), None
        proto.CopyFrom(model.proto)
    dtype = model.dtype or ("float64" if any(s.dtype == "float64" for s in sig.inputs) else "float32")
    _rewrite_for_nnef_tools(proto, dtype)
    notes = _precision_notes(proto, dtype)
    _one_precision(proto, dtype)
    label_outputs = [s.name for s in sig.outputs if s.kind == "label" or s.is_string]
    labels = _peel_labels(proto, label_outputs)
    for name in label_outputs:
        if sig.output(name).is_string and name not in labels:
            raise NNEFError(f"the string output '{name}' is not a lookup of class labels portable can peel off; "
                            "NNEF has no strings", path=model.origin.path)
    try:
        prepare(proto)
    except PortableError:
        raise
    except Exception as exc:  # a surprise in portable's own pass: a clear refusal, never a traceback
        raise ConversionError(f"portable's ONNX pass before nnef-tools failed: {type(exc).__name__}: {exc}",
                              path=model.origin.path) from None
    _static_batch(proto, STATIC_BATCH)
    batch_free_shapes(Pass(proto))
    # the graph's NNEF name must not be an operator's ("graph conv(...)" fails the parser): prefixed, sanitized
    proto.graph.name = "graph_" + re.sub(r"\W", "_", proto.graph.name or "model")
    files, nnef_inputs, nnef_outputs = _nnef_files(proto)
    _exact_literals(files, dtype)
    if len(nnef_inputs) != len(sig.inputs) or len(nnef_outputs) != len(sig.outputs):
        raise ConversionError(f"nnef-tools produced inputs {nnef_inputs} and outputs {nnef_outputs} for a model "
                              f"with {sig.input_names} and {sig.output_names}")
    extra: dict[str, Any] = {}
    if trees is not None:
        extra["lowering"] = {"operators": trees.lowered, "trees": trees.formulation, "detail": trees.trees}
    meta = NnefModel.build_metadata(model, dtype=dtype, nnef_inputs=nnef_inputs, nnef_outputs=nnef_outputs,
                                    labels=labels, extra=extra)
    out = NnefModel(files, meta, origin=model.origin)
    out.validate()
    out.dtype = dtype
    out.notes.extend(model.notes + notes)
    return out


_CALL = re.compile(r"^(\s*[\w, ]+=\s*[\w.]+(?:<\w+>)?\()(.*)(\);\s*)$")
_FLOAT = re.compile(r"^[-+]?(?:(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|inf|nan)$")


def _tensor_bytes(nnef: Any, value: np.ndarray) -> bytes:
    """An NNEF tensor file's bytes (`nnef.write_tensor` writes to a real file only)."""
    with tempfile.TemporaryDirectory(prefix="portable-nnef-") as tmp:
        path = os.path.join(tmp, "t.dat")
        with open(path, "wb") as f:
            nnef.write_tensor(f, value)
        return Path(path).read_bytes()


def _exact_literals(files: dict[str, bytes], dtype: str) -> None:
    """Float literals NNEF cannot read as written become rank-0 variables: infinities and NaN (nnef-tools writes
    `inf`, which NNEF's grammar lacks: an IterativeImputer's clip bounds), and in a float64 graph the literals
    float32 cannot hold.

    The NNEF parser (the `nnef` package, which the executor and nnef-tools' interpreter read graphs with) reads
    a literal such as `mul(x, -0.11932728198657587)` as a float32 (-0.11932728439569473): an RBF kernel's gamma
    then moves a float64 SVC's scores by 3e-8, outside float64 tolerance. A positional operand that is such a
    literal is replaced by `literalN`, declared `variable<scalar>(shape = [])` with its value in `literalN.dat`.
    """
    nnef = require("nnef")
    text = files["graph.nnef"].decode()
    lines, decls, count = [], [], 0
    for line in text.splitlines(keepends=True):
        m = _CALL.match(line.rstrip("\n"))
        if m is None or "variable<" in m.group(1) or "external<" in m.group(1):
            lines.append(line)
            continue
        args, depth, cur = [], 0, ""
        for ch in m.group(2):
            if ch == "," and depth == 0:
                args.append(cur)
                cur = ""
                continue
            depth += ch in "(["
            depth -= ch in ")]"
            cur += ch
        args.append(cur)
        changed = False
        for i, arg in enumerate(args):
            tok = arg.strip()
            if "=" in tok or not _FLOAT.match(tok) or not any(c in tok for c in ".eEin"):
                continue
            value = float(tok)
            if np.isfinite(value) and (dtype != "float64" or float(np.float32(value)) == value):
                continue
            count += 1
            name = f"literal{count}"
            while f"{name}.dat" in files:
                count += 1
                name = f"literal{count}"
            files[f"{name}.dat"] = _tensor_bytes(nnef, np.asarray(value, dtype=np.float64 if dtype == "float64"
                                                                 else np.float32))
            decls.append(f"    {name} = variable<scalar>(shape = [], label = '{name}');\n")
            args[i] = (" " if arg.startswith(" ") else "") + name
            changed = True
        lines.append(m.group(1) + ",".join(args) + m.group(3) + "\n" if changed else line)
    if not decls:
        return
    at = next(i for i, ln in enumerate(lines) if ln.strip() == "{") + 1
    files["graph.nnef"] = "".join(lines[:at] + decls + lines[at:]).encode()


def _node_inputs(model: OnnxModel) -> None:
    """Refuse a node with more inputs than `max_node_inputs` (subgraphs and functions included) before nnef-tools
    reads the model: its graph builder takes time quadratic in a node's inputs (a `Sum` of 200,000 inputs ran
    for over 72 minutes)."""
    from ..formats.onnx import _flat_nodes
    from ..limits import LIMITS, LimitError

    cap = LIMITS.max_node_inputs
    nodes = _flat_nodes(model.proto.graph.node)
    for f in model.proto.functions:
        nodes += _flat_nodes(f.node)
    for n in nodes:
        if len(n.input) > cap:
            raise LimitError(f"the ONNX node '{n.name or n.op_type}' ({n.op_type}) has {len(n.input):,} inputs, more "
                             f"than {cap:,}", "max_node_inputs", path=model.origin.path)


def _one_precision(proto: Any, dtype: str) -> None:
    """Floating constants in the artifact's precision, as the Casts between float types become copies.

    NNEF's `scalar` has one precision: a graph that computes a step in float64 from float32 inputs (a Cast to
    double, then double constants) would otherwise reach nnef-tools with float and double tensors mixed.
    """
    onnx = require("onnx")
    from onnx import numpy_helper

    want = np.float64 if dtype == "float64" else np.float32
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)

    def retyped(t: Any) -> Any:
        if t.data_type not in floats or numpy_helper.to_array(t).dtype == want:
            return None
        return numpy_helper.from_array(numpy_helper.to_array(t).astype(want), t.name)

    for i, t in enumerate(proto.graph.initializer):
        new = retyped(t)
        if new is not None:
            proto.graph.initializer[i].CopyFrom(new)
    for node in proto.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type in floats:
                    new = retyped(a.t)
                    if new is not None:
                        new.name = a.t.name
                        a.t.CopyFrom(new)
    del proto.graph.value_info[:]


def _precision_notes(proto: Any, dtype: str) -> list[str]:
    """NNEF has one precision for `scalar`: casts between float32 and float64 become copies."""
    onnx = require("onnx")
    want = onnx.TensorProto.FLOAT if dtype == "float64" else onnx.TensorProto.DOUBLE
    casts = [n.name or n.output[0] for n in proto.graph.node if n.op_type == "Cast"
             and any(a.name == "to" and a.i == want for a in n.attribute)]
    if not casts:
        return []
    other = "float32" if dtype == "float64" else "float64"
    note = (f"the ONNX graph casts to {other} in {len(casts)} place(s) ({', '.join(casts[:3])}); NNEF has one "
            f"precision for scalars, so the NNEF artifact computes those steps in {dtype}")
    return [note]
