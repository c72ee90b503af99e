"""skl2onnx-compatible converters for what skl2onnx 1.20 lacks or gets wrong, installed on first conversion.

`register_all()` (idempotent) puts portable's tree converters (`portable.converters.sklearn_trees`) in place of
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
    from .. import boosting, sklearn_trees
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
    from ..sklearn_trees import attach_pending

    attach_pending(proto.graph)
    if not any(n.op_type == "TreeEnsemble" and n.domain == "ai.onnx.ml" for n in _all_nodes(proto.graph)):
        return
    for op in proto.opset_import:
        if op.domain == "ai.onnx.ml":
            op.version = max(op.version, ML_OPSET)
            return
    proto.opset_import.add(domain="ai.onnx.ml", version=ML_OPSET)


def _all_nodes(graph: Any) -> Any:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g.node:
                yield from _all_nodes(attr.g)
            for g in attr.graphs:
                yield from _all_nodes(g)
