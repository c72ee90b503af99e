"""What portable does to skl2onnx's graph after a conversion: outputs named and shaped as the sklearn model's
signature says (DESIGN §4), TreeEnsemble attributes attached and ai.onnx.ml opset 5 declared."""
from __future__ import annotations

import re
from typing import Any

from ...errors import ConversionError
from ...formats.sklearn import SklearnModel
from ...registry import require

ML_OPSET = 5  # TreeEnsemble needs ai.onnx.ml opset 5


def finalize(proto: Any) -> None:
    """Write the pending tree ensembles (formulation chosen per graph, see trees.attach_pending) and declare
    ai.onnx.ml opset 5 when TreeEnsemble v5 nodes remain.

    skl2onnx 1.20 refuses to declare ai.onnx.ml above 3, so portable's converters add `TreeEnsemble` under
    version 3 in skl2onnx's bookkeeping and the opset is raised here, after conversion.
    """
    from .trees import attach_pending

    opset = max([op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")] or [13])
    formulation = attach_pending(proto.graph, opset)
    if formulation:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "portable.trees.formulation", formulation
    _free_output_names(proto.graph)
    _fold_output_identities(proto.graph)
    _portable_locale(proto.graph)
    _stable_names(proto)
    if not any(n.op_type == "TreeEnsemble" and n.domain == "ai.onnx.ml" for n in _all_nodes(proto.graph)):
        return
    for op in proto.opset_import:
        if op.domain == "ai.onnx.ml":
            op.version = max(op.version, ML_OPSET)
            return
    proto.opset_import.add(domain="ai.onnx.ml", version=ML_OPSET)


def _fold_output_identities(graph: Any) -> None:
    """`Identity` nodes that only copy a value into a graph output: the value's producer writes the output
    itself (other readers then read the output). Each node costs onnxruntime ~1 us per call, which is most of
    a one-row prediction of a small model. Kept when the value is a graph input, an initializer, another
    output, produced outside the main graph, or copied to several outputs."""
    outputs = {o.name for o in graph.output}
    fixed = outputs | {i.name for i in graph.input} | {i.name for i in graph.initializer}
    produced = {o for n in graph.node for o in n.output if o}
    copies: dict[str, int] = {}
    for n in graph.node:
        if n.op_type == "Identity" and n.domain in ("", "ai.onnx") and n.output[0] in outputs:
            copies[n.input[0]] = copies.get(n.input[0], 0) + 1
    for node in list(graph.node):
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx") or node.output[0] not in outputs:
            continue
        src, dst = node.input[0], node.output[0]
        if src in fixed or src not in produced or copies.get(src) != 1:
            continue
        graph.node.remove(node)
        for vi in [v for v in graph.value_info if v.name == src]:
            graph.value_info.remove(vi)
        _rename(graph, src, dst)


_RANDOM_TOKEN = re.compile(r"(?<![0-9a-z])(p[0-9a-f]{8}|TreeEnsemble_[0-9a-f]{10})(?![0-9a-z])")


def _stable_names(proto: Any) -> None:
    """The same model converts to the same bytes in every process.

    Emitters draw a random prefix for their names (they must not collide with other conversions running at the
    same time, see Emitter and trees.PENDING), and skl2onnx declares its opsets in set order, which follows
    Python's string hashing. Here each random token becomes `e<k>` by order of first appearance in the graph,
    and the opsets are sorted. Nothing is renamed when a new name would collide with one already there.
    """
    order: dict[str, str] = {}
    names: set[str] = set()

    def visit(graph: Any) -> None:
        for coll in (graph.input, graph.initializer, graph.value_info, graph.output):
            names.update(item.name for item in coll)
        for node in graph.node:
            for name in [node.name, *node.input, *node.output]:
                names.add(name)
                for token in _RANDOM_TOKEN.findall(name):
                    order.setdefault(token, f"e{len(order) + 1}" if token[0] == "p"
                                     else f"TreeEnsemble_{len(order) + 1}")
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    visit(sub)

    visit(proto.graph)
    if order:
        def new(name: str) -> str:
            return _RANDOM_TOKEN.sub(lambda m: order[m.group(1)], name) if name else name

        renamed = {n: new(n) for n in names}
        changed = {n for n in names if renamed[n] != n}
        if len(set(renamed.values())) == len(names) and not ({renamed[n] for n in changed} & (names - changed)):
            _apply_names(proto.graph, renamed)
    opsets = sorted((o.domain, o.version) for o in proto.opset_import)
    del proto.opset_import[:]
    for domain, version in opsets:
        proto.opset_import.add(domain=domain, version=version)


def _apply_names(graph: Any, renamed: dict[str, str]) -> None:
    for coll in (graph.input, graph.initializer, graph.value_info, graph.output):
        for item in coll:
            item.name = renamed.get(item.name, item.name)
    for node in graph.node:
        node.name = renamed.get(node.name, node.name)
        node.input[:] = [renamed.get(i, i) for i in node.input]
        node.output[:] = [renamed.get(o, o) for o in node.output]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _apply_names(sub, renamed)


def _portable_locale(graph: Any) -> None:
    """StringNormalizer in the C locale: skl2onnx writes `en_US.UTF-8`, which onnxruntime refuses to load on a
    machine without that locale installed (a minimal Docker image). scikit-learn lowercases with Python's
    `str.lower`; the C locale lowercases ASCII letters only, so `text.py` refuses vocabularies with non-ASCII
    letters where case matters."""
    for node in _all_nodes(graph):
        if node.op_type == "StringNormalizer":
            for attr in node.attribute:
                if attr.name == "locale":
                    attr.s = b"C"
                    break
            else:
                node.attribute.add(name="locale", type=3, s=b"C")


PORTABLE_OUTPUTS = ("label", "probabilities", "scores", "variable")


def _free_output_names(graph: Any) -> None:
    """Rename intermediate values that carry a name portable gives to outputs (DESIGN §4).

    skl2onnx names a FeatureUnion part's result `variable` and the union's output `union`; renaming the output
    to `variable` would then break single assignment. Intermediates give way instead.
    """
    outputs = {o.name for o in graph.output}
    taken = {n for node in graph.node for n in node.output} | {i.name for i in graph.input} | \
        {i.name for i in graph.initializer}
    renames = {}
    for name in PORTABLE_OUTPUTS:
        if name in taken and name not in outputs:
            new, k = f"{name}_part", 0
            while new in taken:
                k += 1
                new = f"{name}_part{k}"
            renames[name] = new
    if not renames:
        return
    for node in _all_nodes(graph):
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    for vi in graph.value_info:
        vi.name = renames.get(vi.name, vi.name)


def _all_nodes(graph: Any) -> Any:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g.node:
                yield from _all_nodes(attr.g)
            for g in attr.graphs:
                yield from _all_nodes(g)


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename a tensor everywhere in `graph`, including subgraphs that may read it from the outer scope."""
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename(sub, old, new)
    for coll in (graph.output, graph.input, graph.value_info, graph.initializer):
        for item in coll:
            if item.name == old:
                item.name = new


def _flatten_rank1(proto: Any, model: SklearnModel) -> None:
    """Outputs that scikit-learn returns as `[N]` but skl2onnx as `[N, 1]` (IsolationForest's and
    GaussianMixture's labels) get a final Reshape to `[N]`."""
    onnx = require("onnx")
    h = onnx.helper
    specs = {s.name: s for s in model.signature.outputs}
    for out in proto.graph.output:
        spec = specs.get(out.name)
        dims = out.type.tensor_type.shape.dim
        if spec is None or len(spec.shape) != 1 or len(dims) != 2:
            continue
        if dims[1].HasField("dim_value") and dims[1].dim_value != 1:
            continue
        inner = f"{out.name}__2d"
        _rename(proto.graph, out.name, inner)
        out.name = spec.name
        proto.graph.initializer.append(h.make_tensor(f"{spec.name}__shape", onnx.TensorProto.INT64, [1], [-1]))
        proto.graph.node.append(h.make_node("Reshape", [inner, f"{spec.name}__shape"], [spec.name],
                                            name=f"portable_flatten_{spec.name}"))
        del dims[1]


def _tensor_names(graph: Any, into: set[str]) -> set[str]:
    for node in graph.node:
        into.update(node.input)
        into.update(node.output)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _tensor_names(sub, into)
    into.update(i.name for i in graph.input)
    into.update(i.name for i in graph.initializer)
    return into


def normalize_inputs(proto: Any, model: SklearnModel) -> None:
    """Give the ONNX graph the sklearn model's input names (DESIGN section 4).

    skl2onnx turns a column name that is not an identifier (`"annual income"`, `"plan.x"`) into one
    (`annual_income`, `plan_x`): the graph's inputs are renamed back, in the signature's order (skl2onnx keeps
    the order of its initial types); an inner tensor that already carries one of those names is renamed first.
    """
    g = proto.graph
    inits = {i.name for i in g.initializer}
    have = [i.name for i in g.input if i.name not in inits]
    wanted = list(model.signature.input_names)
    if len(have) != len(wanted):
        raise ConversionError(f"skl2onnx produced inputs {have}; portable expected {wanted}")
    pairs = [(old, new) for old, new in zip(have, wanted) if old != new]
    if not pairs:
        return
    clash = set(wanted) & {o.name for o in g.output}
    if clash:
        raise ConversionError(f"the model's input column(s) {sorted(clash)} carry the name of one of its outputs "
                              f"({[o.name for o in g.output]}); rename the column(s) before converting")
    taken = _tensor_names(g, set())
    count = 0
    for _old, new in pairs:
        if new in taken and new not in have:  # an inner tensor has the name: it gets a fresh one
            count += 1
            while f"{new}__inner{count}" in taken:
                count += 1
            _rename(g, new, f"{new}__inner{count}")
    for old, new in pairs:
        _rename(g, old, f"{new}__tmpin")
    for _old, new in pairs:
        _rename(g, f"{new}__tmpin", new)


def declared_as_computed(proto: Any) -> None:
    """Graph outputs declared float32 that the graph computes in float64 (or the reverse) are declared as computed.

    skl2onnx types a step's outputs when it parses the pipeline, before the steps are converted: after a
    ColumnTransformer whose parts are float32 (a one-hot encoder) and float64 (a scaler), a float64 conversion
    declares the classifier's probabilities float32 while the converted nodes compute them in float64, and
    onnx.checker refuses the graph.
    """
    onnx = require("onnx")
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)
    declared = {o.name: o.type.tensor_type.elem_type for o in proto.graph.output}
    if not any(t in floats for t in declared.values()):
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    for o in probe.graph.output:  # infer what the nodes compute, not what was declared
        o.type.tensor_type.elem_type = onnx.TensorProto.UNDEFINED
    try:
        inferred = onnx.shape_inference.infer_shapes(probe).graph.output
    except Exception:
        return  # onnx.checker, which runs next, says what is wrong
    got = {o.name: o.type.tensor_type.elem_type for o in inferred}
    for o in proto.graph.output:
        have, want = declared[o.name], got.get(o.name)
        if have in floats and want in floats and have != want:
            o.type.tensor_type.elem_type = want


def boolean_labels(proto: Any, model: SklearnModel) -> None:
    """A classifier fitted on boolean targets predicts booleans: its int64 label (0/1, the classes' positions in
    [False, True]) ends in a Cast to bool, so a service gets `True`/`False` as scikit-learn's predict gives."""
    onnx = require("onnx")
    specs = {s.name: s for s in model.signature.outputs}
    for out in proto.graph.output:
        spec = specs.get(out.name)
        if spec is None or spec.dtype != "bool" or out.type.tensor_type.elem_type != onnx.TensorProto.INT64:
            continue
        inner = f"{out.name}__int"
        _rename(proto.graph, out.name, inner)
        out.name = spec.name
        out.type.tensor_type.elem_type = onnx.TensorProto.BOOL
        proto.graph.node.append(onnx.helper.make_node("Cast", [inner], [spec.name], to=onnx.TensorProto.BOOL,
                                                      name=f"portable_{spec.name}_bool"))


def normalize_outputs(proto: Any, model: SklearnModel) -> None:
    """Give the ONNX graph exactly the sklearn model's output names, and `scores` its width."""
    onnx = require("onnx")
    g = proto.graph
    wanted = model.signature.output_names
    have = [o.name for o in g.output]
    if len(have) > len(wanted) and wanted == ["label"]:
        # a hard-voting classifier has no probabilities in scikit-learn; skl2onnx still emits them
        del g.output[1:]
        have = have[:1]
    if len(have) != len(wanted):
        raise ConversionError(f"skl2onnx produced outputs {have}; portable expected {wanted}")
    # inner tensors that carry an output's name were renamed by sklearn_extra.finalize (it runs first)
    for old, new in zip(have, wanted):
        if old != new:
            _rename(g, old, f"{new}__tmp")
    for o in g.output:
        if o.name.endswith("__tmp"):
            _rename(g, o.name, o.name[:-5])
    _flatten_rank1(proto, model)
    spec = {s.name: s for s in model.signature.outputs}.get("scores")
    if spec is None or spec.shape[1] != 1:
        return
    out = next(o for o in g.output if o.name == "scores")
    dims = out.type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value == 2:
        # binary decision functions come as two columns, [-d, d] for most converters but [d, -d] for SVC:
        # keep the column that equals scikit-learn's decision_function on probe rows
        column = _decision_column(proto, model)
        _rename(g, "scores", "scores__pair")
        out.name = "scores"
        h = onnx.helper
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        if opset < 10:  # Slice took attributes until opset 10
            g.node.append(h.make_node("Slice", ["scores__pair"], ["scores"], name="portable_binary_scores",
                                      starts=[column], ends=[column + 1], axes=[1]))
        else:
            g.initializer.extend([
                h.make_tensor("scores__start", onnx.TensorProto.INT64, [1], [column]),
                h.make_tensor("scores__end", onnx.TensorProto.INT64, [1], [column + 1]),
                h.make_tensor("scores__axis", onnx.TensorProto.INT64, [1], [1]),
            ])
            g.node.append(h.make_node("Slice", ["scores__pair", "scores__start", "scores__end", "scores__axis"],
                                      ["scores"], name="portable_binary_scores"))
        dims[1].dim_value = 1


def _decision_column(proto: Any, model: SklearnModel) -> int:
    """Which of two score columns skl2onnx's graph uses for scikit-learn's binary decision_function."""
    import numpy as np

    specs = model.signature.inputs
    if len(specs) != 1 or specs[0].is_string or specs[0].shape[1] is None:
        return 1
    ort = require("onnxruntime")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, specs[0].shape[1]))
    means = getattr(model.estimator, "support_vectors_", None)
    if means is not None and len(means):
        x = means[rng.integers(0, len(means), 16)] + x * np.std(means, axis=0)
    ref = np.asarray(model.estimator.decision_function(x), dtype=np.float64).reshape(-1)
    elem = proto.graph.input[0].type.tensor_type.elem_type
    xt = x.astype(np.float64 if elem == 11 else np.float32)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    scores = np.asarray(sess.run(["scores"], {specs[0].name: xt})[0], dtype=np.float64)
    errs = [float(np.max(np.abs(scores[:, c] - ref))) for c in (0, 1)]
    return int(np.argmin(errs))


