"""skl2onnx-compatible converters for what skl2onnx 1.20 lacks or gets wrong, installed on first conversion.

`register_all()` (idempotent) puts portable's tree converters (`portable.converters.sklearn.trees`) in place of
skl2onnx's and registers converters for the estimators skl2onnx has none for (this package's modules). It runs
when the `sklearn -> onnx` converter runs, never at `import portable`, because it imports skl2onnx.
"""
from __future__ import annotations

from typing import Any

ML_OPSET = 5  # TreeEnsemble needs ai.onnx.ml opset 5

_done = False


def register_all() -> None:
    """Register portable's converters with skl2onnx (each converter once per process)."""
    global _done
    from .. import boosting
    from .. import trees as sklearn_trees
    from . import estimators

    if not _done:
        sklearn_trees.register()
        _done = True
    boosting.register()  # XGBoost, LightGBM, CatBoost: only those the process has imported
    estimators.register()  # registers what is not registered yet


def finalize(proto: Any) -> None:
    """Attach the pending TreeEnsemble attributes, and declare ai.onnx.ml opset 5 when there are such nodes.

    skl2onnx 1.20 refuses to declare ai.onnx.ml above 3, so portable's converters add `TreeEnsemble` under
    version 3 in skl2onnx's bookkeeping and the opset is raised here, after conversion.
    """
    from ..trees import attach_pending

    attach_pending(proto.graph)
    _free_output_names(proto.graph)
    if not any(n.op_type == "TreeEnsemble" and n.domain == "ai.onnx.ml" for n in _all_nodes(proto.graph)):
        return
    for op in proto.opset_import:
        if op.domain == "ai.onnx.ml":
            op.version = max(op.version, ML_OPSET)
            return
    proto.opset_import.add(domain="ai.onnx.ml", version=ML_OPSET)


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
