"""`PfaModel.input_hints()`: what a PFA document says about its inputs, in `portable.hints` terms.

- The constants its expressions compare each input field with, and the string literals it uses (candidate
  categories of string inputs), from `PfaModel.input_values()`.
- Its trees: cells and pools holding tree records (`field` / `operator` / `value` with `pass` / `fail`
  children, and `missing` for `model.tree.missingWalk`) become `TreeNodes`, so the checker reaches every
  node with the field at the threshold and its neighbours (and null where a node has a `missing` branch).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...hints import MODE_NAMES, Column, InputHints, TreeNodes

_TREE_KEYS = {"field", "operator", "value"}


def pfa_hints(model: Any) -> InputHints:
    hints = InputHints()
    specs = {t.name: t for t in model.signature.inputs}
    for name, vals in model.input_values().items():
        if name in specs and len(specs[name].shape) <= 1:
            hints.add_values((name, 0), vals)
            if specs[name].is_string:
                hints.column((name, 0)).unseen_ok = True  # any string is a valid input
            hints.learned("model's constants")
    # a nullable field takes NaN for null
    from . import types as T

    t_in = model.doc.input
    fields = t_in.fields if isinstance(t_in, T.Record) else {"input": t_in}
    for name, ftype in fields.items():
        if name in specs and isinstance(ftype, T.Union) and ftype.nullable and len(specs[name].shape) <= 1:
            hints.column((name, 0)).nan_ok = True
    columns: list[Column] = [(n, 0) for n, t in specs.items() if len(t.shape) <= 1 and not t.is_string]
    index = {c[0]: k for k, c in enumerate(columns)}
    cells = list(model.doc.cells.values()) + list(model.doc.pools.values())
    for c in cells:
        for root in _roots(getattr(c, "init", None)):
            t = _tree(root, columns, index)
            if t is not None:
                hints.trees.append(t)
                hints.learned("tree thresholds")
    return hints


def _roots(v: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Tree roots found in a cell's (or pool's) initial value: records with field/operator/value."""
    if depth > 8:
        return []
    if isinstance(v, dict):
        if _TREE_KEYS <= set(v) and ("pass" in v or "fail" in v):
            return [v]
        return [r for x in v.values() for r in _roots(x, depth + 1)]
    if isinstance(v, list):
        return [r for x in v for r in _roots(x, depth + 1)]
    return []


def _tree(root: dict[str, Any], columns: list[Column], index: dict[str, int]) -> TreeNodes | None:
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    mode: list[int] = []
    missing: list[int] = []
    stack: list[tuple[Any, int, bool]] = [(root, -1, True)]
    while stack:
        node, parent, is_pass = stack.pop()
        i = len(feature)
        if parent >= 0:
            (left if is_pass else right)[parent] = i
        is_split = isinstance(node, dict) and _TREE_KEYS <= set(node)
        val = node.get("value") if is_split else None
        op = MODE_NAMES.get(node.get("operator")) if is_split else None
        numeric = isinstance(val, (int, float)) and not isinstance(val, bool) and op is not None and op <= 3
        feature.append(index.get(node.get("field"), -1) if is_split and numeric else -1)
        threshold.append(float(val) if is_split and numeric else np.nan)
        left.append(-1)
        right.append(-1)
        mode.append(op if numeric else 0)
        # a node with its own `missing` branch: null takes neither side (marked as routed, so it is tried)
        missing.append(1 if is_split and "missing" in node else -1)
        if is_split:
            for key, side in (("fail", False), ("pass", True)):
                child = node.get(key)
                stack.append((child if isinstance(child, dict) and _TREE_KEYS <= set(child) else None, i, side))
            if len(feature) > 200_000:
                break
    if not any(f >= 0 for f in feature):
        return None
    # leaves (non-tree children) are nodes without children
    return TreeNodes(list(columns), np.array(feature), np.array(threshold), np.array(left), np.array(right),
                     mode=np.array(mode), missing=np.array(missing), source="PFA tree")


__all__ = ["pfa_hints"]
