"""The tree ensembles of an ONNX model, checked before onnx.checker, onnxruntime or portable's own readers walk
them (issue 12, DESIGN §8).

onnx.checker does not look inside a `TreeEnsembleClassifier`/`TreeEnsembleRegressor` (ai.onnx.ml 1-3) or a
`TreeEnsemble` (ai.onnx.ml 5): a node whose child is itself, two nodes that are each other's child, a tree 12,000
deep, a child or a target id that names no node pass it. onnxruntime builds its trees recursively and crashes
the process (SIGSEGV) on a tree some ten thousand deep; portable's input generation and its lowering to
standard ONNX (and so to NNEF) walked a cycle for ever or raised raw KeyError/IndexError tracebacks. So every
tree node of a model (main graph, subgraphs, model-local functions) is checked here, in numpy passes over the
attributes, before anything else reads it:

- the per-node attributes have one entry per node; modes are known; node ids are unique within their tree;
- every child a branch names is a node of the same tree (ai.onnx.ml 5: a leaf or inner node that exists);
- no node is its own descendant (a cycle), and no tree is deeper than `max_tree_depth` (portable.limits);
- every leaf weight names an existing node and an output column (`target_ids`/`class_ids`/`leaf_targetids`).

A model that fails is an InputError (a ConversionError for a model a converter produced) naming the node and the
tree; a deep tree is a LimitError naming `max_tree_depth`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConversionError, InputError

_V3 = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_V3_MODES = frozenset({"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "LEAF"})
_V3_PER_NODE = ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
                "nodes_falsenodeids")
_V3_OPTIONAL = ("nodes_values", "nodes_values_as_tensor", "nodes_hitrates", "nodes_hitrates_as_tensor",
                "nodes_missing_value_tracks_true")
_V5_PER_NODE = ("nodes_featureids", "nodes_splits", "nodes_modes", "nodes_truenodeids", "nodes_trueleafs",
                "nodes_falsenodeids", "nodes_falseleafs")


class _Bad(Exception):
    pass


def _tree_nodes(proto: Any) -> list[tuple[Any, str]]:
    """The tree-ensemble nodes of the model (main graph, subgraphs, local functions) with where each is."""
    out = []
    todo: list[tuple[Any, str]] = [(n, "") for n in proto.graph.node]
    todo += [(n, f"function {f.name!r}: ") for f in proto.functions for n in f.node]
    while todo:
        node, where = todo.pop()
        if node.domain == "ai.onnx.ml" and (node.op_type in _V3 or node.op_type == "TreeEnsemble"):
            out.append((node, where))
        for a in node.attribute:
            if a.HasField("g"):
                todo.extend((n, where) for n in a.g.node)
            for g in a.graphs:
                todo.extend((n, where) for n in g.node)
    return out


def _values(a: Any) -> Any:
    """An attribute's values without onnx.helper's per-item conversion (ints, floats, strings, or a tensor)."""
    if a.ints:
        return np.array(a.ints, np.int64)  # (protobuf's container converts in one C call; fromiter: per item)
    if a.floats:
        return np.array(a.floats, np.float64)
    if a.strings:
        return list(a.strings)
    if a.HasField("t"):
        from onnx import numpy_helper

        try:
            return numpy_helper.to_array(a.t).reshape(-1)
        except Exception as exc:  # a tensor whose bytes disagree with its dims
            raise _Bad(f"attribute {a.name} is not a readable tensor ({type(exc).__name__})") from None
    if a.HasField("i"):
        return int(a.i)
    return np.zeros(0, np.int64)


def _ints(at: dict[str, Any], key: str) -> np.ndarray:
    v = at.get(key)
    if v is None:
        return np.zeros(0, np.int64)
    if isinstance(v, list) or not isinstance(v, np.ndarray) or v.dtype.kind not in "iub":
        raise _Bad(f"{key} is not a list of integers")
    return v.astype(np.int64, copy=False)


def check_trees(proto: Any, *, path: Any = None, produced: bool = False) -> None:
    """Refuse a model with a malformed or too deep tree ensemble (see the module's documentation)."""
    err = ConversionError if produced else InputError
    what = "the ONNX model the conversion produced" if produced else "the ONNX model"
    for node, where in _tree_nodes(proto):
        at = {a.name: a for a in node.attribute}
        label = where + (f"node {node.name!r} ({node.op_type})" if node.name else f"an unnamed {node.op_type} node")
        try:
            values = {k: _values(a) for k, a in at.items() if k.startswith(("nodes_", "target_", "class_",
                                                                             "leaf_", "tree_"))}
            depth = _v5(values, at) if node.op_type == "TreeEnsemble" else _v3(values, at, node.op_type)
        except _Bad as bad:
            raise err(f"{what} has a malformed tree ensemble at {label}: {bad}", path=path) from None
        from ..limits import LIMITS, LimitError

        if depth > LIMITS.max_tree_depth:
            raise LimitError(f"{what} has a tree at least {depth:,} levels deep at {label} (onnxruntime builds "
                             "trees recursively and crashes on one some ten thousand deep)", "max_tree_depth",
                             path=path)


def _v3(v: dict[str, Any], at: dict[str, Any], op: str) -> int:
    n = len(v.get("nodes_nodeids", ()))
    for key in _V3_PER_NODE:
        if len(v.get(key, ())) != n:
            raise _Bad(f"{key} has {len(v.get(key, ())):,} entries for {n:,} nodes")
    for key in _V3_OPTIONAL:
        if key in v and len(v[key]) not in (0, n):
            raise _Bad(f"{key} has {len(v[key]):,} entries for {n:,} nodes")
    modes = np.array(v["nodes_modes"], dtype=bytes) if n else np.zeros(0, "S1")
    unknown = [m for m in np.unique(modes).tolist() if m.decode(errors="replace") not in _V3_MODES]
    if unknown:
        raise _Bad(f"unknown node mode {unknown[0].decode(errors='replace')[:40]!r}")
    tree, nid = _ints(v, "nodes_treeids"), _ints(v, "nodes_nodeids")
    feat, true_, false_ = _ints(v, "nodes_featureids"), _ints(v, "nodes_truenodeids"), _ints(v, "nodes_falsenodeids")
    branch = modes != b"LEAF"
    if (feat[branch] < 0).any():
        i = int(np.flatnonzero(branch & (feat < 0))[0])
        raise _Bad(f"node {nid[i]} of tree {tree[i]} splits on the negative feature {feat[i]}")
    prefix = "class" if op == "TreeEnsembleClassifier" else "target"
    t_tree, t_node, t_id = (_ints(v, f"{prefix}_{k}") for k in ("treeids", "nodeids", "ids"))
    weights = v.get(f"{prefix}_weights", v.get(f"{prefix}_weights_as_tensor", ()))
    if not len(t_tree) == len(t_node) == len(t_id) == len(weights):
        raise _Bad(f"{prefix}_treeids/_nodeids/_ids/_weights have {len(t_tree)}/{len(t_node)}/{len(t_id)}/"
                   f"{len(weights)} entries")
    located = _numbered(tree, nid, true_, false_, branch, t_tree, t_node) or \
        _located(tree, nid, true_, false_, branch, t_tree, t_node)
    if isinstance(located, str):
        raise _Bad(located)
    left, right = located
    depth = _depth(left, right, n, lambda i: f"node {nid[i]} of tree {tree[i]}")
    if op == "TreeEnsembleClassifier":
        labels = [at[k] for k in ("classlabels_int64s", "classlabels_strings") if k in at]
        outputs = max(sum(len(a.ints) + len(a.strings) for a in labels), 2)
    else:
        outputs = int(at["n_targets"].i) if "n_targets" in at else 1
    if len(t_id) and (t_id.min() < 0 or t_id.max() >= outputs):
        i = int(np.flatnonzero((t_id < 0) | (t_id >= outputs))[0])
        raise _Bad(f"{prefix}_ids[{i}] = {t_id[i]} is not one of the {outputs} outputs")
    return depth


def _numbered(tree: np.ndarray, nid: np.ndarray, true_: np.ndarray, false_: np.ndarray, branch: np.ndarray,
              t_tree: np.ndarray, t_node: np.ndarray) -> Any:
    """Children and leaf-weight nodes located when each tree's nodes are listed together and numbered in order,
    from 0 in each tree or across the model (what converters write): positions by arithmetic. (left, right),
    an error, or None when the nodes are not numbered so."""
    n = len(nid)
    if not n:
        return None
    starts = np.r_[0, np.flatnonzero(tree[1:] != tree[:-1]) + 1]
    if len(starts) > 1 and (np.diff(tree[starts]) <= 0).any():  # a tree listed in two runs: the general way
        return None
    sizes = np.diff(np.r_[starts, n])
    seg = np.repeat(np.arange(len(starts)), sizes)
    if np.array_equal(nid, np.arange(n)):
        base = np.zeros(len(starts), np.int64)  # numbered across the model
    elif np.array_equal(nid, np.arange(n) - starts[seg]):
        base = starts  # numbered within each tree
    else:
        return None
    lo, hi = starts - base, starts - base + sizes  # the ids of each tree's nodes: [lo, hi)
    out = []
    for which, child in (("true", true_), ("false", false_)):
        bad = branch & ((child < lo[seg]) | (child >= hi[seg]))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return f"node {nid[i]} of tree {tree[i]} names the {which} child {child[i]}, which is not a node of its tree"
        out.append(np.where(branch, base[seg] + child, -1))
    if len(t_tree):
        at = np.minimum(np.searchsorted(tree[starts], t_tree), len(starts) - 1)
        ok = (tree[starts][at] == t_tree) & (t_node >= lo[at]) & (t_node < hi[at])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            return f"leaf weight {i} names node {t_node[i]} of tree {t_tree[i]}, which does not exist"
    return tuple(out)


def _located(tree: np.ndarray, nid: np.ndarray, true_: np.ndarray, false_: np.ndarray, branch: np.ndarray,
             t_tree: np.ndarray, t_node: np.ndarray) -> Any:
    """The same for nodes numbered any way (ids are any 64-bit numbers): positions by sorting (tree, id) keys in
    compact codes. (left, right) or an error."""
    n = len(nid)
    _, tcode = np.unique(tree, return_inverse=True)
    ids, codes = np.unique(np.concatenate([nid, true_, false_]), return_inverse=True)
    width = len(ids)
    key = tcode * width + codes[:n]
    order = np.argsort(key, kind="stable")
    skey = key[order]
    if n and (np.diff(skey) == 0).any():
        i = int(order[np.flatnonzero(np.diff(skey) == 0)[0]])
        return f"node id {nid[i]} appears twice in tree {tree[i]}"
    out = []
    for which, child, part in (("true", true_, codes[n:2 * n]), ("false", false_, codes[2 * n:])):
        k = tcode * width + part
        at = np.minimum(np.searchsorted(skey, k), max(n - 1, 0))
        missing = branch & ((skey[at] != k) if n else True)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            return f"node {nid[i]} of tree {tree[i]} names the {which} child {child[i]}, which is not a node of its tree"
        out.append(np.where(branch, order[at], -1))
    if len(t_tree):
        trees = np.unique(tree)
        ti = np.minimum(np.searchsorted(trees, t_tree), max(len(trees) - 1, 0))
        ni = np.minimum(np.searchsorted(ids, t_node), max(width - 1, 0))
        ok = np.zeros(len(t_tree), bool) if not n else (trees[ti] == t_tree) & (ids[ni] == t_node)
        k = ti * width + ni
        hit = np.minimum(np.searchsorted(skey, k), max(n - 1, 0))
        ok &= (skey[hit] == k) if n else False
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            return f"leaf weight {i} names node {t_node[i]} of tree {t_tree[i]}, which does not exist"
    return tuple(out)


def _v5(v: dict[str, Any], at: dict[str, Any]) -> int:
    feat = _ints(v, "nodes_featureids")
    n = len(feat)
    for key in _V5_PER_NODE:
        if len(v.get(key, ())) != n:
            raise _Bad(f"{key} has {len(v.get(key, ())):,} entries for {n:,} inner nodes")
    if "nodes_missing_value_tracks_true" in v and len(v["nodes_missing_value_tracks_true"]) not in (0, n):
        raise _Bad("nodes_missing_value_tracks_true has one entry per inner node or none")
    modes = np.asarray(v["nodes_modes"])
    if modes.dtype.kind not in "iu" or (n and (modes.min() < 0 or modes.max() > 6)):
        raise _Bad("nodes_modes holds a mode other than 0-6")
    if (feat < 0).any():
        raise _Bad(f"inner node {int(np.flatnonzero(feat < 0)[0])} splits on a negative feature")
    targets = _ints(v, "leaf_targetids")
    n_leaves = len(targets)
    if len(v.get("leaf_weights", ())) != n_leaves:
        raise _Bad(f"leaf_weights has {len(v.get('leaf_weights', ())):,} entries for {n_leaves:,} leaf_targetids")
    outputs = int(at["n_targets"].i) if "n_targets" in at else 1
    if n_leaves and (targets.min() < 0 or targets.max() >= outputs):
        raise _Bad(f"a leaf_targetids entry is not one of the {outputs} outputs")
    roots = _ints(v, "tree_roots")
    if (roots < 0).any() or (roots >= n).any():
        raise _Bad(f"a tree root is not one of the {n:,} inner nodes")
    child = {}
    for side in ("true", "false"):
        ids, leaf = _ints(v, f"nodes_{side}nodeids"), _ints(v, f"nodes_{side}leafs") != 0
        bound = np.where(leaf, n_leaves, n)
        bad = (ids < 0) | (ids >= bound)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _Bad(f"inner node {i} names the {side} {'leaf' if leaf[i] else 'node'} {ids[i]}, which does not "
                       "exist")
        child[side] = np.where(leaf, -1, ids)
    return _depth(child["true"], child["false"], n, lambda i: f"inner node {i}") + 1


def _depth(left: np.ndarray, right: np.ndarray, n: int, name: Any) -> int:
    """Levels below the roots (edges of the longest path) of the graph of nodes `0..n-1` whose children are
    `left`/`right` (-1: none), peeled level by level from the nodes nobody points at; a node never peeled is on
    a cycle. Stops one level past `max_tree_depth` (the caller refuses that)."""
    from ..limits import LIMITS

    if not n:
        return 0
    indeg = np.bincount(np.concatenate([left[left >= 0], right[right >= 0]]), minlength=n)
    frontier = np.flatnonzero(indeg == 0)
    peeled, level = 0, -1
    while frontier.size:
        level += 1
        if level > LIMITS.max_tree_depth:
            return level
        peeled += frontier.size
        ch = np.concatenate([left[frontier], right[frontier]])
        ch = ch[ch >= 0]
        if not ch.size:
            break
        parents, count = np.unique(ch, return_counts=True)  # a level's work is the size of the level
        indeg[parents] -= count
        frontier = parents[indeg[parents] == 0]
    if peeled < n:
        on_cycle = np.flatnonzero(indeg > 0)
        raise _Bad(f"{name(int(on_cycle[0]))} lies on or below a cycle of child links (a node that is its own "
                   "descendant)")
    return max(level, 0)


__all__ = ["check_trees"]
