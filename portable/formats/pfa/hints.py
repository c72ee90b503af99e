"""`PfaModel.input_hints()`: what a PFA document says about its inputs, in `portable.hints` terms.

- The constants its expressions compare each input field with, and the string literals it uses (candidate
  categories of string inputs), from `PfaModel.input_values()`.
- Its trees: cells and pools holding tree records (`field` / `operator` / `value` with `pass` / `fail`
  children, and `missing` for `model.tree.missingWalk`) become `TreeNodes`, so the checker reaches every
  node with the field at the threshold and its neighbours (and null where a node has a `missing` branch).
- A document that is one tree and nothing else (its action is `model.tree.simpleWalk(input, cell,
  model.tree.simpleTest)` over numeric fields, with number or string leaves) also has the `TreeEnsemble` view
  certification compares structurally (`_walk_ensemble`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...hints import MODE_NAMES, Column, InputHints, TreeEnsemble, TreeNodes, TreeOutput

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
    hints.ensemble = _walk_ensemble(model, columns, index)
    return hints


_NUMBERS = ("int", "long", "float", "double")


def _walk_ensemble(model: Any, columns: list[Column], index: dict[str, int]) -> TreeEnsemble | None:
    """The `TreeEnsemble` view of a document whose output is one tree's leaf: its action is the single
    expression `model.tree.simpleWalk(input, {"cell": name}, fcn(d, t) -> model.tree.simpleTest(d, t))`, no
    `begin`/`end`, every split compares a non-nullable numeric input field with a number (`<`, `<=`, `>`, `>=`,
    as simpleTest compares them: in double), and the leaves are numbers (output `double`/`float`: the leaf's
    value) or strings (output `string`: the leaf's label, as one-hot score columns). None for anything else:
    then the document is not certified as trees."""
    from . import types as T

    doc = model.doc
    if len(doc.action) != 1 or doc.begin or doc.end or not isinstance(doc.input, T.Record):
        return None
    expr = doc.action[0]
    if not isinstance(expr, dict) or set(expr) != {"model.tree.simpleWalk"}:
        return None
    args = expr["model.tree.simpleWalk"]
    if not isinstance(args, list) or len(args) != 3 or args[0] != "input":
        return None
    ref, fcn = args[1], args[2]
    if not isinstance(ref, dict) or set(ref) != {"cell"} or not isinstance(ref["cell"], str):
        return None
    if not isinstance(fcn, dict) or not isinstance(fcn.get("params"), list) or len(fcn["params"]) != 2:
        return None
    names = [next(iter(p)) for p in fcn["params"] if isinstance(p, dict) and len(p) == 1]
    body = fcn.get("do")
    body = body[0] if isinstance(body, list) and len(body) == 1 else body
    if len(names) != 2 or body != {"model.tree.simpleTest": names}:
        return None
    cell = doc.cells.get(ref["cell"])
    out = model.signature.outputs
    if cell is None or len(out) != 1 or not isinstance(doc.output, T.Prim):
        return None
    for name, ftype in doc.input.fields.items():
        if not (isinstance(ftype, T.Prim) and ftype.name in _NUMBERS) and name in index:
            return None
    leaves: list[Any] = []
    tree = _tree(cell.init, columns, index, leaves)
    if tree is None:
        return None
    split = tree.left >= 0
    if np.any(tree.feature[split] < 0) or np.any(tree.mode[split] > 3):
        return None
    found = [v for v, s in zip(leaves, split) if not s]
    if doc.output.name in ("double", "float") and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in found):
        values = np.zeros((len(leaves), 1))
        values[~split, 0] = np.asarray(found, dtype=np.float64)
        outputs = {out[0].name: TreeOutput("columns", np.arange(1), 1.0, 0.0)}
    elif doc.output.name == "string" and all(isinstance(v, str) for v in found):
        classes = sorted(set(found))
        values = np.zeros((len(leaves), len(classes)))
        values[np.flatnonzero(~split), [classes.index(v) for v in found]] = 1.0
        outputs = {out[0].name: TreeOutput("label", np.arange(len(classes)), 1.0, 0.0,
                                           classes=np.asarray(classes, dtype=object))}
    else:
        return None
    tree.values = values
    tree.roots = np.zeros(1, dtype=np.int64)
    return TreeEnsemble(tree, np.zeros(values.shape[1]), outputs, accumulate="float64", terms=0,
                        source="PFA model.tree.simpleWalk")


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


def _tree(root: dict[str, Any], columns: list[Column], index: dict[str, int],
          leaves: list[Any] | None = None) -> TreeNodes | None:
    """The tree under `root` as `TreeNodes` (pass: left, fail: right); `leaves`, when given, receives each node's
    leaf value in node order (None for splits)."""
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
        if leaves is not None:
            leaves.append(None if is_split else node)
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
                stack.append((child if isinstance(child, dict) and _TREE_KEYS <= set(child) or leaves is not None
                              else None, i, side))
            if len(feature) > 200_000:
                break
    if not any(f >= 0 for f in feature):
        return None
    # leaves (non-tree children) are nodes without children
    return TreeNodes(list(columns), np.array(feature), np.array(threshold), np.array(left), np.array(right),
                     mode=np.array(mode), missing=np.array(missing), source="PFA tree")


__all__ = ["pfa_hints"]
