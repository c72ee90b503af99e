"""An ONNX graph as a `portable.hints.TreeEnsemble`: when its outputs depend on its inputs through one tree
ensemble operator alone, how they are computed from the leaves (for certification, `portable.certification`).

Read from the graph, in general terms rather than by recognising one converter's output:

- before the trees, only column plumbing and elementwise affine steps (the same ops `onnx_hints` follows);
  whether the trees compare float32 values (a float input, or a `Cast` to float on the way);
- the operator: `TreeEnsembleRegressor` (ai.onnx.ml 1/3: `target_*`, `base_values`, `aggregate_function`,
  `post_transform`) or `TreeEnsemble` (ai.onnx.ml 5: `leaf_targetids`/`leaf_weights`), including the
  *leaf-index* formulation where the leaf weights are indices into a `[leaves, targets]` table read by `Gather`
  and summed over the trees by `ReduceSum`;
- after the trees, a small symbolic evaluation of each tensor as score columns `c * fn(a * raw[k] + b) + d`
  (`Add`/`Sub`/`Mul`/`Div` by constants, `Neg`, `Sigmoid`, `Softmax`, `Concat`, `Identity`/`Cast`/`Reshape`),
  labels from `ArgMax` or a comparison with a constant, then `Gather` of a constant class list.

Anything else gives None (the model is then not certified by the tree method, with the reason).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..hints import TreeEnsemble, TreeNodes, TreeOutput

_TREE_OPS = {"TreeEnsembleRegressor", "TreeEnsemble"}
_V5_AGG = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
_V5_POST = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}
FLOAT, DOUBLE = 1, 11


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass
class Cols:
    """A tensor `[N, J]` as score columns: column j is `c[j] * fn[j](a[j] * raw[k[j]] + b[j]) + d[j]`."""

    k: list[int]
    a: list[float]
    b: list[float]
    fn: list[str]
    c: list[float] = field(default_factory=list)
    d: list[float] = field(default_factory=list)
    rounded: bool = False  # rounded to float32 once after a float64 sum (no arithmetic may follow)

    def __post_init__(self) -> None:
        self.c = self.c or [1.0] * len(self.k)
        self.d = self.d or [0.0] * len(self.k)


@dataclass
class Soft:
    """`softmax(a * raw[k] + b)` over the columns."""

    k: list[int]
    a: list[float]
    b: list[float]


@dataclass
class Index:
    """An index tensor: `argmax` of score columns, or `1 if score > 0` (`threshold`)."""

    rule: str
    k: list[int]
    a: list[float]
    b: list[float]
    strict: bool = True


@dataclass
class Label:
    index: Index
    classes: np.ndarray


@dataclass
class LeafIndex:
    """The output of a leaf-index tree ensemble (before / after `Gather` of the value table)."""

    gathered: bool = False


def _const(consts: dict[str, Any], name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    v = consts.get(name)
    if v is None:
        return None
    return v if isinstance(v, np.ndarray) else numpy_helper.to_array(v)


ROW_ORDER_TAG = "_roworder_"  # converters.sklearn.trees.ROW_ORDER_TAG
_ROW_ORDER_OPS = {"key": "TreeEnsembleRegressor", "key_flat": "Reshape", "shape": "Shape", "n": "Slice",
                  "topk": "TopK", "rows": "Gather", "perm_col": "Reshape", "out_shape": "Shape",
                  "perm_idx": "Expand", "back": "ScatterElements"}
# since h18d: the key's [N, 1] TopK indices read the rows by GatherND and put them back by ScatterND (the row
# count by Shape(start=0, end=1), or Shape + Slice below opset 15)
_ROW_ORDER_ND_OPS = ({"key": "TreeEnsembleRegressor", "n": "Shape", "topk": "TopK", "rows": "GatherND",
                      "back": "ScatterND"},
                     {"key": "TreeEnsembleRegressor", "shape": "Shape", "n": "Slice", "topk": "TopK",
                      "rows": "GatherND", "back": "ScatterND"})
_ROW_ORDER_CONSTS = ("flat", "zero", "one", "column", "keycols_idx", "keythr", "keypow")
_ROOT_KEY_OPS = {"keycols": "Gather", "keycmp": "Less", "keybits": "Cast"}


def without_row_order(graph: Any) -> Any:
    """The graph without portable's row ordering around a forest (converters.sklearn.trees._row_order: the rows
    sorted by the leaf of a key tree before the forest and put back after; both the first form, Gather /
    ScatterElements, and the GatherND / ScatterND one), as a copy where the forest reads
    and writes the rows in their own order: the same function, for what reads a graph's trees (the hints, the
    certificate, the lowering to standard operators). `graph` itself when it has none or when the nodes so
    named are not that pattern. CatBoost's symmetric trees written with standard operators come back as one
    TreeEnsemble first (`without_oblivious`): the other speed-only form these readers must not see."""
    from onnx import helper

    graph = without_oblivious(graph)
    groups = _tagged_groups(graph, ROW_ORDER_TAG)
    if not groups:
        return graph
    rename: dict[str, str] = {}
    drop: set[int] = set()
    for tag, parts in groups.items():
        ops = {k: v.op_type for k, v in parts.items()}
        if ops.get("key") == "TreeEnsemble":  # the key of a float64 (ai.onnx.ml 5) forest
            ops["key"] = "TreeEnsembleRegressor"
        if ops.get("keycols") == "MatMul":  # the key's columns picked by a 0/1 matrix
            ops["keycols"] = "Gather"
        if ops.get("key") == "MatMul" and all(ops.pop(k, None) == v for k, v in _ROOT_KEY_OPS.items()):
            ops["key"] = "TreeEnsembleRegressor"  # boosting's key: its first root splits' outcomes (_key_roots)
        if ops != _ROW_ORDER_OPS and ops not in _ROW_ORDER_ND_OPS:
            return graph
        rows, back = parts["rows"], parts["back"]
        if list(rows.input)[1:] != [f"{tag}perm"] or list(back.input[:1]) != [f"{tag}out"] or \
                list(rows.output) != [f"{tag}rows"]:
            return graph
        if back.op_type == "ScatterND" and list(back.input) != [f"{tag}out", f"{tag}perm", f"{tag}out"]:
            return graph
        rename[f"{tag}rows"] = rows.input[0]
        rename[f"{tag}out"] = back.output[0]
        drop |= {id(v) for v in parts.values()}
    nodes = []
    for n in graph.node:
        if id(n) in drop:
            continue
        c = type(n)()
        c.CopyFrom(n)
        for i, name in enumerate(c.input):  # the forest reads the rows in their own order...
            c.input[i] = rename.get(name, name)
        for i, name in enumerate(c.output):  # ... and writes what the ScatterElements wrote
            c.output[i] = rename.get(name, name)
        nodes.append(c)
    mine = {f"{tag}{k}" for tag in groups for k in _ROW_ORDER_CONSTS}
    init = [i for i in graph.initializer if i.name not in mine]
    view = helper.make_graph(nodes, graph.name, list(graph.input), list(graph.output), init,
                             value_info=list(graph.value_info))
    return view


OBLIVIOUS_TAG = "_oblivious_"  # converters.sklearn.boosting.OBLIVIOUS_TAG


def _tagged_groups(graph: Any, tag: str) -> dict[str, dict[str, Any]]:
    """The graph's nodes named `<prefix><tag><part>`, grouped by `<prefix><tag>`, each by its part."""
    groups: dict[str, dict[str, Any]] = {}
    for n in graph.node:
        if tag in n.name:
            prefix, _, part = n.name.rpartition(tag)
            groups.setdefault(prefix + tag, {})[part] = n
    return groups


def input_width(vi: Any) -> tuple[Any, int]:
    """A graph input's dimensions and its number of columns: its second dimension, 1 for a vector or a scalar,
    0 when unknown."""
    t = vi.type.tensor_type
    dims = t.shape.dim if t.HasField("shape") else []
    width = dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else (1 if len(dims) <= 1 else 0)
    return dims, width


def without_oblivious(graph: Any) -> Any:
    """The graph with CatBoost's symmetric trees written as leaf indices with standard operators
    (converters.sklearn.boosting._oblivious: Transpose, per level Gather / Greater / Cast / Mul / Add, then
    GatherElements / ReduceSum per target) replaced by one `TreeEnsemble` (ai.onnx.ml 5) of the same trees,
    as a copy: the same function for what reads a graph's trees. Each tree of depth d becomes a complete tree
    whose root tests its last split (`x <= b` goes left, i.e. bit 0; a leaf's position is then CatBoost's
    index); NaN takes the left branch (`nodes_missing_value_tracks_true`) unless the graph replaced it by +inf
    (CatBoost's `AsTrue`); several targets are read as portable's float64 multi-target form (leaf indices walked
    on the float32 values, Gather of the double `[leaves, targets]` table, ReduceSum: v5 has one target per leaf).
    A choice by batch size around them is read first (`without_size_switch`).
    `graph` itself when it has none or when the nodes so named are not that pattern."""
    from onnx import TensorProto, helper, numpy_helper

    graph = without_size_switch(graph)
    groups = _tagged_groups(graph, OBLIVIOUS_TAG)
    if not groups:
        return graph
    inits = {i.name: i for i in graph.initializer}
    replace_at: dict[int, list[Any]] = {}  # id of the group's last node -> the nodes standing for the group
    drop: set[int] = set()
    used_inits: set[str] = set()
    added: list[Any] = []
    for tag, parts in groups.items():
        made = _oblivious_ensemble(tag, parts, inits, helper, numpy_helper, TensorProto)
        if made is None:
            return graph
        nodes, consts, extra = made
        added += extra
        drop |= {id(v) for v in parts.values()}
        replace_at[id(parts["out"])] = nodes
        used_inits |= consts
    out = []
    for n in graph.node:
        if id(n) in replace_at:
            out.extend(replace_at[id(n)])
        if id(n) in drop:
            continue
        c = type(n)()
        c.CopyFrom(n)
        out.append(c)
    init = [i for i in graph.initializer if i.name not in used_inits] + added
    return helper.make_graph(out, graph.name, list(graph.input), list(graph.output), init,
                             value_info=list(graph.value_info))


SWITCH_TAG = "_bysize_"  # converters.sklearn.boosting.SWITCH_TAG


def without_size_switch(graph: Any) -> Any:
    """The graph with portable's choice by batch size (converters.sklearn.boosting._oblivious: Shape / Less /
    If, the small batches' branch one tree operator, the large batches' CatBoost's symmetric trees with standard
    operators) replaced by the large batches' branch, as a copy: what reads a graph's trees reads one function.
    Only when the small branch is exactly what `without_oblivious` reads from the large one (the converter
    writes it so): then both branches compute the same function, whichever the condition picks. `graph` itself
    when it has no such `If`, or when the branches or the nodes around them are not that pattern."""
    from onnx import helper

    switches = [n for n in graph.node if n.op_type == "If" and SWITCH_TAG in n.name]
    if not switches:
        return graph
    replace_at: dict[int, list[Any]] = {}
    prefixes, added = set(), []
    for n in switches:
        branches = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        small, large = branches.get("then_branch"), branches.get("else_branch")
        if small is None or large is None or len(n.output) != 1 or len(large.output) != 1 or \
                len(small.output) != 1 or large.input or small.input:
            return graph
        read = without_oblivious(large)
        if read is large or not _same_graph_body(read, small) or small.output[0].name != large.output[0].name:
            return graph
        inner, outer = large.output[0].name, n.output[0]
        body = []
        for m in large.node:
            c = type(m)()
            c.CopyFrom(m)
            for i, name in enumerate(c.output):
                if name == inner:
                    c.output[i] = outer
            if any(name == inner for name in c.input):
                return graph  # the branch's output is also read inside it: not the pattern
            body.append(c)
        replace_at[id(n)] = body
        added += list(large.initializer)
        prefixes.add(n.name.rpartition(SWITCH_TAG)[0] + SWITCH_TAG)
    dropped = [n for n in graph.node if SWITCH_TAG in n.name and n.op_type != "If"]
    if any(n.name.rpartition(SWITCH_TAG)[0] + SWITCH_TAG not in prefixes or n.op_type not in ("Shape", "Less")
           for n in dropped):
        return graph
    gone = {o for n in dropped for o in n.output}
    nodes = []
    for n in graph.node:
        if id(n) in replace_at:
            nodes.extend(replace_at[id(n)])
            continue
        if SWITCH_TAG in n.name:
            continue
        if any(i in gone for i in n.input):
            return graph  # the condition is read elsewhere too
        c = type(n)()
        c.CopyFrom(n)
        nodes.append(c)
    if any(o.name in gone for o in graph.output):
        return graph
    init = [i for i in graph.initializer if not any(i.name.startswith(p) for p in prefixes)] + added
    return helper.make_graph(nodes, graph.name, list(graph.input), list(graph.output), init,
                             value_info=list(graph.value_info))


def _same_graph_body(a: Any, b: Any) -> bool:
    """Two graphs with the same nodes (in order) and the same initializers (by name)."""
    if len(a.node) != len(b.node) or len(a.initializer) != len(b.initializer):
        return False
    if any(x.SerializeToString(deterministic=True) != y.SerializeToString(deterministic=True)
           for x, y in zip(a.node, b.node)):
        return False
    inits = {i.name: i.SerializeToString(deterministic=True) for i in a.initializer}
    return all(inits.get(i.name) == i.SerializeToString(deterministic=True) for i in b.initializer)


def _oblivious_ensemble(tag: str, parts: dict[str, Any], inits: dict[str, Any], helper: Any, numpy_helper: Any,
                        TensorProto: Any) -> tuple[list[Any], set[str], list[Any]] | None:
    """(the nodes standing for one oblivious group: its Cast to float32 if any, a Cast back to double for a
    float64 table, the TreeEnsemble and, for several targets, Cast / Gather / ReduceSum of its leaf indices),
    the group's constant names, the constants those nodes read; or None when it is not that pattern."""
    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    if "out" not in parts or "xt" not in parts:
        return None
    depth = 0
    while f"cols{depth}" in parts:
        depth += 1
    feats = [const(f"{tag}feat{j}") for j in range(depth)]
    borders = [const(f"{tag}border{j}") for j in range(depth)]
    tables = []
    while f"values{len(tables)}" in parts:
        tables.append(const(f"{tag}leaves{len(tables)}"))
    if depth == 0 or not tables or any(a is None for a in feats + borders + tables):
        return None
    feat = np.stack([np.asarray(f).reshape(-1) for f in feats], 1).astype(np.int64)  # [trees, levels]
    border = np.stack([np.asarray(b).reshape(-1) for b in borders], 1).astype(np.float64)
    table = np.stack(tables)  # [targets, trees, 2**levels]
    n_targets, n_trees = table.shape[0], table.shape[1]
    fill = const(f"{tag}fill")
    nan_right = np.zeros(int(feat.max()) + 1, bool) if fill is None else np.isposinf(np.asarray(fill).reshape(-1))
    src = parts["isnan"].input[0] if "isnan" in parts else parts["xt"].input[0]
    kept = []
    if "x32" in parts:  # a float64 model: the trees compare the float32 rounding
        x32 = type(parts["x32"])()
        x32.CopyFrom(parts["x32"])
        x32.name = x32.name.replace(OBLIVIOUS_TAG, "_")
        kept.append(x32)
    double = table.dtype == np.float64
    walk32 = double and n_targets > 1  # leaf indices: the walk on the float32 values (exact below 2**24 leaves)
    if double and not walk32:
        wide = tag.replace(OBLIVIOUS_TAG, "_x32d")
        kept.append(helper.make_node("Cast", [src], [wide], to=TensorProto.DOUBLE, name=wide))
        src = wide
    f_, t_, tl, tn, fl, fn, tracks, roots, rows = ([] for _ in range(9))
    n_nodes = n_leaves = 0
    for i in range(n_trees):
        real = np.isfinite(border[i])
        d = int(real.sum())
        if not real[:d].all():
            return None  # padding levels are the deepest ones only
        dd = max(d, 1)  # a tree without a split: one split whose two leaves hold its value
        heap = np.arange(2 ** dd - 1)
        which = dd - 1 - np.floor(np.log2(heap + 1)).astype(np.int64)
        fi = feat[i, which] if d else np.zeros(1, np.int64)
        roots.append(n_nodes)
        f_.extend(fi.tolist())
        t_.extend((border[i, which] if d else np.zeros(1)).tolist())
        tracks.extend(np.where(nan_right[fi], 0, 1).tolist() if d else [1])
        for side, (ids, leafs) in ((1, (tn, tl)), (2, (fn, fl))):
            child = 2 * heap + side
            is_leaf = child >= 2 ** dd - 1
            ids.extend(np.where(is_leaf, n_leaves + child - (2 ** dd - 1), n_nodes + child).tolist())
            leafs.extend(is_leaf.astype(np.int64).tolist())
        rows.append(table[:, i, :2 ** d].T if d else np.repeat(table[:, i, :1].T, 2, axis=0))  # [leaves, targets]
        n_nodes += len(heap)
        n_leaves += len(rows[-1])
    dtype = np.float64 if double else np.float32
    leaf_table = np.concatenate(rows).astype(dtype)
    out, new_inits, after = parts["out"].output[0], [], []
    if not double:  # float32 sums: read as ai.onnx.ml 3's regressor (float32 leaf weights and sums)
        return kept + [_oblivious_v3(src, out, tag, roots, f_, t_, tracks, leaf_table, helper)], \
            {i for n in parts.values() for i in n.input if i.startswith(tag)}, []
    if n_targets == 1:
        weights, leaf_targets, k = leaf_table[:, 0], np.zeros(n_leaves, np.int64), 1
    else:  # several targets: the leaves' indices into the [leaves, targets] table (trees.attach_pending's form),
        # walked in float32 as trees._float32_walk does (CatBoost's borders are float32: the same splits)
        if n_leaves >= 2 ** 24:
            return None
        dtype = np.float32
        weights = np.arange(n_leaves, dtype=dtype)
        leaf_targets = np.repeat(np.arange(n_trees), [len(r) for r in rows])
        k = n_trees
        base = tag.replace(OBLIVIOUS_TAG, "_trees")
        new_inits = [numpy_helper.from_array(leaf_table, f"{base}_leaf_values"),
                     numpy_helper.from_array(np.array([1], np.int64), f"{base}_tree_axis")]
        after = [helper.make_node("Cast", [f"{base}_leafidx_f"], [f"{base}_leafidx"], to=TensorProto.INT64,
                                  name=f"{base}_cast"),
                 helper.make_node("Gather", [f"{base}_leaf_values", f"{base}_leafidx"], [f"{base}_gathered"],
                                  axis=0, name=f"{base}_gather"),
                 helper.make_node("ReduceSum", [f"{base}_gathered", f"{base}_tree_axis"], [out], keepdims=0,
                                  name=f"{base}_sum")]
        out = f"{base}_leafidx_f"
    ens = helper.make_node(
        "TreeEnsemble", [src], [out], name=tag.replace(OBLIVIOUS_TAG, "_trees"),
        domain="ai.onnx.ml", n_targets=k, aggregate_function=1, post_transform=0, tree_roots=roots,
        nodes_featureids=f_, nodes_modes=numpy_helper.from_array(np.zeros(len(f_), np.uint8), "nodes_modes"),
        nodes_splits=numpy_helper.from_array(np.asarray(t_, dtype), "nodes_splits"),
        nodes_truenodeids=tn, nodes_trueleafs=tl, nodes_falsenodeids=fn, nodes_falseleafs=fl,
        nodes_missing_value_tracks_true=tracks, leaf_targetids=leaf_targets.tolist(),
        leaf_weights=numpy_helper.from_array(np.asarray(weights, dtype), "leaf_weights"))
    consts = {i for n in parts.values() for i in n.input if i.startswith(tag)}
    return kept + [ens] + after, consts, new_inits


def _oblivious_v3(src: str, out: str, tag: str, roots: list[int], feat: list[int], thr: list[float],
                  tracks: list[int], leaf_table: np.ndarray, helper: Any) -> Any:
    """`without_oblivious`'s complete trees as one `TreeEnsembleRegressor` (per tree, heap order: the splits,
    then the leaves; the children of node h are 2h+1 and 2h+2)."""
    n_inner = np.diff(np.r_[roots, len(feat)]).astype(np.int64)
    size = 2 * n_inner + 1
    tree = np.repeat(np.arange(len(roots)), size)
    local = np.arange(len(tree)) - np.repeat(np.r_[0, np.cumsum(size)[:-1]], size)
    inner = local < np.repeat(n_inner, size)
    f, t, tr, child = (np.zeros(len(tree), np.int64), np.zeros(len(tree)), np.zeros(len(tree), np.int64),
                       np.zeros(len(tree), np.int64))
    f[inner], t[inner], tr[inner] = feat, thr, tracks
    child[inner] = 2 * local[inner] + 1
    leaves = np.flatnonzero(~inner)  # in the order of the leaf table's rows
    k = leaf_table.shape[1]
    return helper.make_node(
        "TreeEnsembleRegressor", [src], [out], name=tag.replace(OBLIVIOUS_TAG, "_trees"), domain="ai.onnx.ml",
        n_targets=k, aggregate_function="SUM", post_transform="NONE",
        nodes_treeids=tree.tolist(), nodes_nodeids=local.tolist(), nodes_featureids=f.tolist(),
        nodes_modes=np.where(inner, "BRANCH_LEQ", "LEAF").tolist(), nodes_values=t.tolist(),
        nodes_truenodeids=np.where(inner, child, 0).tolist(), nodes_falsenodeids=np.where(inner, child + 1, 0).tolist(),
        nodes_missing_value_tracks_true=tr.tolist(), nodes_hitrates=[1.0] * len(tree),
        target_treeids=np.repeat(tree[leaves], k).tolist(), target_nodeids=np.repeat(local[leaves], k).tolist(),
        target_ids=np.tile(np.arange(k), len(leaves)).tolist(),
        target_weights=leaf_table.astype(np.float32).reshape(-1).tolist())


def tree_ensemble(graph: Any, tree_of: dict[str, TreeNodes], consts: dict[str, Any],
                  columns: list[Any]) -> TreeEnsemble | None:
    """The graph as a TreeEnsemble (see the module docstring), or None."""
    trees = [n for n in graph.node if n.op_type in _TREE_OPS or n.op_type == "TreeEnsembleClassifier"]
    if len(trees) > 1:  # one single-target ensemble per class (or per tree), concatenated: read as one ensemble
        merged = _merge_per_tree(graph, trees, consts) or _merge_split(graph, trees)
        if merged is None:
            return None
        graph, trees = merged
    if len(trees) != 1 or trees[0].op_type not in _TREE_OPS:
        return None
    op = trees[0]
    consts = dict(consts)
    for n in graph.node:
        if n.op_type == "Constant":
            at = _attrs(n)
            if "value" in at:
                consts[n.output[0]] = at["value"]
    init = {i.name for i in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    before = _derived_before(graph, op, init, consts, columns)
    if before is None:
        return None
    derived, narrow = before
    at = _attrs(op)
    nodes = _read_trees(op, at, consts, len(derived))
    if nodes is None:
        return None
    n_inner = len(at.get("nodes_featureids", []))
    feature = np.asarray(at.get("nodes_featureids", []), np.int64)
    if op.op_type == "TreeEnsemble":  # leaves follow the interior nodes in portable.hints' layout
        feature = np.r_[feature, np.full(len(nodes) - n_inner, -1)]
    from ..hints import derive_splits

    nodes, derived = _resolve_fills(nodes, feature, derived)
    nodes, derived = _unnegate(nodes, feature, derived)
    nodes = derive_splits(nodes, feature, derived, columns)
    got = _values(op, at, nodes, graph, consts)
    if got is None:
        return None
    values, base, post, acc, leaf_index = got
    nodes = replace(nodes, values=values, dtype="float32" if narrow else nodes.dtype,
                    exact=nodes.dtype != "float32" or narrow)
    K = values.shape[1]
    syms: dict[str, Any] = {}
    ident = Cols(list(range(K)), [1.0] * K, [0.0] * K, ["identity"] * K)
    if leaf_index is not None:
        syms[op.output[0]] = LeafIndex()
    elif post == "NONE":
        # ai.onnx.ml 3's regressor writes float32 whatever it sums in: a float64 sum is rounded once there
        syms[op.output[0]] = replace(ident, rounded=op.op_type == "TreeEnsembleRegressor" and acc == "float64")
    elif op.op_type == "TreeEnsembleRegressor" and acc == "float64":
        return None  # a double sum's float32 rounding after a post transform: not read
    elif post == "LOGISTIC":
        syms[op.output[0]] = Cols(list(range(K)), [1.0] * K, [0.0] * K, ["logistic"] * K)
    elif post == "SOFTMAX":
        syms[op.output[0]] = Soft(list(range(K)), [1.0] * K, [0.0] * K)
    else:
        return None
    after = False
    for n in graph.node:
        if _same(n, op):
            after = True
            continue
        if after and any(i in syms for i in n.input):
            out = _step(n, syms, consts, K, leaf_index, wide=acc == "float64", single=len(nodes.roots) == 1)
            if out is not None:
                syms[n.output[0]] = out
    outputs: dict[str, TreeOutput] = {}
    for o in graph.output:
        s = syms.get(o.name)
        if isinstance(s, Cols):
            outputs[o.name] = TreeOutput("columns", s.k, s.a, s.b, fn=s.fn, c=s.c, d=s.d, rounded=s.rounded)
        elif isinstance(s, Soft):
            outputs[o.name] = TreeOutput("softmax", s.k, s.a, s.b)
        elif isinstance(s, Label):
            outputs[o.name] = TreeOutput("label", s.index.k, s.index.a, s.index.b, rule=s.index.rule,
                                         strict=s.index.strict, classes=s.classes)
    if leaf_index is not None:  # the leaf weights were indices: the values are the table's rows
        nodes = replace(nodes, values=leaf_index)
    return TreeEnsemble(nodes, base, outputs, accumulate=acc, terms=4, source=f"ONNX {op.op_type}")


def _resolve_fills(nodes: TreeNodes, feature: np.ndarray, derived: list[tuple[Any, ...]]) -> tuple[TreeNodes, list]:
    """Splits on a column whose NaN a `Where(IsNaN(v), c, v)` replaced by a constant c (portable's trees read
    NaN as the lowest float): such a split compares c for a missing value, so NaN goes where c goes
    (`missing` 1: the true, left child; 0: the right one), and the column is v itself."""
    from ..hints import GT, GTE, LEQ, LT

    fills = [d[0] == "nanfill" for d in derived]
    if not any(fills):
        return nodes, derived
    missing = np.array(nodes.missing)
    for i in np.flatnonzero(nodes.left >= 0):
        f = int(feature[i])
        if not (0 <= f < len(derived) and fills[f]):
            continue
        c, t, m = derived[f][1], float(nodes.threshold[i]), int(nodes.mode[i])
        if m not in (LEQ, LT, GTE, GT):
            raise ValueError(f"split {i} reads a filled column with mode {m}")
        missing[i] = int({LEQ: c <= t, LT: c < t, GTE: c >= t, GT: c > t}[m])
    return replace(nodes, missing=missing), [d[2] if d[0] == "nanfill" else d for d in derived]


def _unnegate(nodes: TreeNodes, feature: np.ndarray, derived: list[tuple[Any, ...]]) -> tuple[TreeNodes, list]:
    """Splits on a negated column (`Neg`; portable's trees read `[x, -x]` instead of tracking missing values)
    as the same splits on the column itself, in the original's orientation: `-v <= t -> A, else (NaN too) B`
    is exactly `v < -t -> B, else A` with NaN going to B (negation is exact)."""
    neg = [d[0] == "negated" for d in derived]
    if not any(neg):
        return nodes, derived
    split = (nodes.left >= 0) & (feature >= 0) & (feature < len(derived))
    on_neg = split & np.array([neg[f] if 0 <= f < len(derived) else False for f in feature], dtype=bool)
    mode, threshold, missing = turn_negated(on_neg, nodes.mode, nodes.threshold, nodes.missing)
    left = np.where(on_neg, nodes.right, nodes.left)
    right = np.where(on_neg, nodes.left, nodes.right)
    plain = [d[1] if n else d for d, n in zip(derived, neg)]
    return replace(nodes, mode=mode, threshold=threshold, missing=missing, left=left, right=right), plain


def turn_negated(sel: np.ndarray, mode: np.ndarray, threshold: np.ndarray,
                 missing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the splits `sel` that test `-v` (mode, threshold and where NaN goes, `portable.hints.TreeNodes`
    conventions): the same test on `v` once their two children are swapped by the caller."""
    from ..hints import GT, GTE, LEQ, LT

    turn = {LEQ: LT, LT: LEQ, GTE: GT, GT: GTE}
    mode, threshold, missing = np.array(mode), np.array(threshold, np.float64), np.array(missing)
    for i in np.flatnonzero(sel):
        if int(mode[i]) not in turn:
            raise ValueError(f"split {i} reads a negated column with mode {int(mode[i])}")
        mode[i] = turn[int(mode[i])]
        threshold[i] = -threshold[i]
        missing[i] = 0 if missing[i] == 1 else 1  # NaN went to the (old) left child only when 1
    return mode, threshold, missing


def _read_trees(op: Any, at: dict[str, Any], consts: dict[str, Any], width: int) -> TreeNodes | None:
    """The operator's trees as `onnx_hints` reads them, over `width` placeholder columns (the features the
    operator reads; `derive_splits` maps them to raw columns)."""
    from ..hints import InputHints
    from .onnx_hints import _Space, _Walker

    walker = _Walker(InputHints(), [("", k) for k in range(width)], {}, dict(consts), {})
    space = _Space(np.arange(width))
    if op.op_type == "TreeEnsemble":
        walker._trees_v5(space, at)
    else:
        walker._trees_v3(space, at, op.op_type)
    if not walker.trees:
        return None
    nodes = walker.trees[-1]
    if op.op_type == "TreeEnsemble" and "membership_values" in at:
        # the values each BRANCH_MEMBER node tests, in the order of those nodes, NaN-delimited
        from onnx import numpy_helper

        mv = numpy_helper.to_array(at["membership_values"]).astype(np.float64).reshape(-1)
        groups = np.split(mv, np.flatnonzero(np.isnan(mv)))
        sets = [g[~np.isnan(g)] for g in groups]
        modes = numpy_helper.to_array(at["nodes_modes"]).reshape(-1)
        member_nodes = np.flatnonzero(modes == 6)
        if len(sets) < len(member_nodes):
            return None
        nodes = replace(nodes, members={int(i): sets[k] for k, i in enumerate(member_nodes)})
    return nodes


def _merge_split(graph: Any, trees: list[Any], joined: Any = None, output: str | None = None) -> tuple | None:
    """Single-target `TreeEnsembleRegressor`s on the same input whose outputs one `Concat` (axis 1) joins, in
    that order (portable's float32 boosting: one ensemble per class), as a copy of the graph with one K-target
    ensemble in their place, or None. (`joined`: that node, already found; `output`: the merged operator's
    output name when it is not the Concat's, see `_merge_per_tree`.)"""
    from onnx import helper

    if trees and all(t.op_type == "TreeEnsemble" for t in trees) and joined is None:
        return _merge_split_v5(graph, trees)
    if any(t.op_type != "TreeEnsembleRegressor" or list(t.input) != list(trees[0].input) for t in trees):
        return None
    outs = [t.output[0] for t in trees]
    cat = [joined] if joined is not None else \
        [n for n in graph.node if n.op_type == "Concat" and list(n.input) == outs]
    if len(cat) != 1 or (joined is None and _attrs(cat[0]).get("axis") not in (1, -1)):
        return None
    ats = [_attrs(t) for t in trees]
    if any(int(a.get("n_targets", 1)) != 1 or _text(a.get("post_transform", "NONE")) != "NONE" or
           _text(a.get("aggregate_function", "SUM")) != "SUM" or "nodes_values" not in a or
           any(k.endswith("_as_tensor") for k in a) for a in ats):
        return None
    merged: dict[str, list[Any]] = {}
    shift = 0
    for k, a in enumerate(ats):  # tree ids shifted past the previous parts', target k for part k
        for key in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
                    "nodes_falsenodeids", "nodes_missing_value_tracks_true", "nodes_values", "target_treeids",
                    "target_nodeids", "target_weights", "base_values"):
            v = list(a.get(key, []))
            if key in ("nodes_treeids", "target_treeids"):
                v = [int(t) + shift for t in v]
            merged.setdefault(key, []).extend(v)
        merged.setdefault("target_ids", []).extend([k] * len(a.get("target_treeids", [])))
        shift += max((int(t) for t in a.get("nodes_treeids", [])), default=-1) + 1
    if len(merged["base_values"]) not in (0, len(trees)):
        return None
    merged = {k: v for k, v in merged.items() if v}
    op = helper.make_node("TreeEnsembleRegressor", list(trees[0].input), [output or cat[0].output[0]],
                          domain="ai.onnx.ml", n_targets=len(trees), **merged)
    # the merged operator stands where the Concat was; the other nodes keep their order
    order = [op if n is cat[0] else n for n in graph.node if n is cat[0] or n not in trees]
    view = helper.make_graph(order, graph.name, list(graph.input), list(graph.output), list(graph.initializer))
    return view, [n for n in view.node if n.op_type == "TreeEnsembleRegressor"]


def _merge_split_v5(graph: Any, trees: list[Any]) -> tuple | None:
    """Single-target `TreeEnsemble`s (ai.onnx.ml 5) on the same input whose outputs one `Concat` (axis 1) joins,
    in that order (portable's float64 boosting: one ensemble per class), as a copy of the graph with one K-target
    ensemble in their place (part k's leaves target k), or None."""
    from onnx import helper, numpy_helper

    if any(list(t.input) != list(trees[0].input) for t in trees):
        return None
    outs = [t.output[0] for t in trees]
    cat = [n for n in graph.node if n.op_type == "Concat" and list(n.input) == outs]
    if len(cat) != 1 or _attrs(cat[0]).get("axis") not in (1, -1):
        return None
    ats = [_attrs(t) for t in trees]
    if any(int(a.get("n_targets", 1)) != 1 or int(a.get("post_transform", 0)) != 0 or
           int(a.get("aggregate_function", 1)) != 1 for a in ats):
        return None
    ints = ("nodes_featureids", "nodes_truenodeids", "nodes_trueleafs", "nodes_falsenodeids", "nodes_falseleafs",
            "nodes_missing_value_tracks_true", "tree_roots", "leaf_targetids")
    merged: dict[str, list[np.ndarray]] = {k: [] for k in ints + ("nodes_modes", "nodes_splits", "leaf_weights")}
    members: list[np.ndarray] = []
    inner_shift = leaf_shift = 0
    for k, a in enumerate(ats):
        v = {key: np.asarray(a.get(key, []), np.int64) for key in ints}
        t = {key: numpy_helper.to_array(a[key]).reshape(-1) for key in ("nodes_modes", "nodes_splits", "leaf_weights")}
        n_inner, n_leaf = len(v["nodes_featureids"]), len(t["leaf_weights"])
        v["nodes_truenodeids"] = v["nodes_truenodeids"] + np.where(v["nodes_trueleafs"] != 0, leaf_shift, inner_shift)
        v["nodes_falsenodeids"] = v["nodes_falsenodeids"] + np.where(v["nodes_falseleafs"] != 0, leaf_shift,
                                                                     inner_shift)
        v["tree_roots"] = v["tree_roots"] + inner_shift
        v["leaf_targetids"] = np.full(n_leaf, k, np.int64)
        for key in ints:
            merged[key].append(v[key])
        for key, arr in t.items():
            merged[key].append(arr)
        if "membership_values" in a:  # NaN-delimited sets, in the order of the BRANCH_MEMBER nodes
            members.append(numpy_helper.to_array(a["membership_values"]).reshape(-1))
        inner_shift, leaf_shift = inner_shift + n_inner, leaf_shift + n_leaf
    extra = {}
    if members:
        sep = np.array([np.nan], members[0].dtype)
        extra["membership_values"] = numpy_helper.from_array(
            np.concatenate([m for pair in zip(members, [sep] * len(members)) for m in pair][:-1]))
    op = helper.make_node(
        "TreeEnsemble", list(trees[0].input), [cat[0].output[0]], domain="ai.onnx.ml", n_targets=len(trees),
        aggregate_function=1, post_transform=0,
        **{k: np.concatenate(merged[k]).tolist() for k in ints},
        **{k: numpy_helper.from_array(np.concatenate(merged[k])) for k in ("nodes_modes", "nodes_splits",
                                                                          "leaf_weights")}, **extra)
    order = [op if n is cat[0] else n for n in graph.node if n is cat[0] or n not in trees]
    view = helper.make_graph(order, graph.name, list(graph.input), list(graph.output), list(graph.initializer))
    return view, [n for n in view.node if n.op_type == "TreeEnsemble"]


def _merge_per_tree(graph: Any, trees: list[Any], consts: dict[str, Any]) -> tuple | None:
    """One single-target, single-tree `TreeEnsembleRegressor` per tree whose `[N, 1]` leaf indices a `Concat`
    (axis 0) and a `Reshape` to `[T, -1]` stack before `Cast` / `Gather` / `ReduceSum` over axis 0 (portable's
    float32 forests with many classes), as a copy of the graph where one T-target leaf-index ensemble (`[N, T]`,
    target k for tree k) stands in place of the Reshape and the ReduceSum sums axis 1; or None."""
    from onnx import helper

    outs = [t.output[0] for t in trees]
    cat = [n for n in graph.node if n.op_type == "Concat" and list(n.input) == outs]
    if len(cat) != 1 or _attrs(cat[0]).get("axis") != 0:
        return None
    shaped = [n for n in graph.node if n.op_type == "Reshape" and n.input[0] == cat[0].output[0]]
    shape = _const(consts, shaped[0].input[1]) if len(shaped) == 1 and len(shaped[0].input) == 2 else None
    if shape is None or shape.reshape(-1).tolist() != [len(trees), -1]:
        return None
    if any(len(set(_attrs(t).get("nodes_treeids", []))) != 1 for t in trees):
        return None
    merged = _merge_split(graph, trees, cat[0], shaped[0].output[0])
    if merged is None:
        return None
    view, ops = merged
    # the sum over the trees: axis 0 of [T, N, targets] in the graph is axis 1 of [N, T, targets] in the view
    names = {shaped[0].output[0]}
    order = []
    for n in view.node:
        if n.op_type == "Reshape" and list(n.output) == list(shaped[0].output):
            continue
        if n.op_type in ("Cast", "Gather") and any(i in names for i in n.input):
            names.add(n.output[0])
        elif n.op_type == "ReduceSum" and n.input and n.input[0] in names:
            axes = _const(consts, n.input[1]) if len(n.input) > 1 and n.input[1] else \
                np.asarray(_attrs(n).get("axes", []))
            if axes is None or axes.reshape(-1).tolist() != [0]:
                return None
            n = helper.make_node("ReduceSum", [n.input[0]], list(n.output), axes=[1],
                                 keepdims=_attrs(n).get("keepdims", 1))
        order.append(n)
    view = helper.make_graph(order, view.name, list(view.input), list(view.output), list(view.initializer))
    return view, [n for n in view.node if n.op_type == "TreeEnsembleRegressor"]


def join_per_tree(graph: Any) -> int:
    """Rewrite, in place, portable's per-tree leaf-index forests (one single-target, single-tree
    `TreeEnsembleRegressor` per tree -> Concat on axis 0 -> Reshape `[T, -1]` -> Cast -> Gather of a constant
    `[leaves, targets]` table -> ReduceSum over axis 0) as one multi-target `TreeEnsembleRegressor` whose leaves
    carry their table rows (the same float32 values, summed): what the lowering to standard operators reads as
    one forest. Returns how many were rewritten."""
    from onnx import helper

    consts = {i.name: i for i in graph.initializer}
    users: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    producer = {o: n for n in graph.node for o in n.output}

    def only_user(name: str, op_type: str) -> Any:
        got = users.get(name, [])
        return got[0] if len(got) == 1 and got[0].op_type == op_type else None

    done, left = 0, set()
    for cat in [n for n in graph.node if n.op_type == "Concat" and _attrs(n).get("axis") == 0]:
        parts = [producer.get(i) for i in cat.input]
        if len(parts) < 2 or any(p is None or p.op_type != "TreeEnsembleRegressor" or p.domain != "ai.onnx.ml" or
                                 list(p.input) != list(parts[0].input) or len(users.get(p.output[0], [])) != 1
                                 for p in parts):
            continue
        shaped = only_user(cat.output[0], "Reshape")
        cast = only_user(shaped.output[0], "Cast") if shaped is not None else None
        gather = only_user(cast.output[0], "Gather") if cast is not None else None
        reduce = only_user(gather.output[0], "ReduceSum") if gather is not None else None
        if reduce is None or gather.input[1] != cast.output[0] or _attrs(gather).get("axis", 0) != 0:
            continue
        shape = _const(consts, shaped.input[1]) if len(shaped.input) > 1 else None
        table = _const(consts, gather.input[0])
        axes = _const(consts, reduce.input[1]) if len(reduce.input) > 1 and reduce.input[1] else \
            np.asarray(_attrs(reduce).get("axes", []))
        if shape is None or shape.reshape(-1).tolist() != [len(parts), -1] or table is None or table.ndim != 2 or \
                table.dtype != np.float32 or axes is None or axes.reshape(-1).tolist() != [0] or \
                _attrs(reduce).get("keepdims", 1) != 0:
            continue
        ats = [_attrs(p) for p in parts]
        if any(int(a.get("n_targets", 1)) != 1 or _text(a.get("post_transform", "NONE")) != "NONE" or
               _text(a.get("aggregate_function", "SUM")) != "SUM" or "nodes_values" not in a or
               any(k.endswith("_as_tensor") for k in a) or a.get("base_values") or
               len(set(a.get("nodes_treeids", []))) != 1 for a in ats):
            continue
        merged: dict[str, list[Any]] = {}
        ok = True
        for k, a in enumerate(ats):
            for key in ("nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
                        "nodes_falsenodeids", "nodes_values"):
                merged.setdefault(key, []).extend(a.get(key, []))
            merged.setdefault("nodes_treeids", []).extend([k] * len(a["nodes_treeids"]))
            merged.setdefault("nodes_missing_value_tracks_true", []).extend(
                a.get("nodes_missing_value_tracks_true", [0] * len(a["nodes_treeids"])))
            idx = np.trunc(np.asarray(a.get("target_weights", []), np.float64)).astype(np.int64)
            if idx.min(initial=0) < 0 or idx.max(initial=0) >= len(table):
                ok = False
                break
            rows = table[idx]
            keep = rows != 0
            keep[np.arange(len(rows)), np.argmax(np.abs(rows), axis=1)] = True  # every leaf keeps one entry
            li, ti = np.nonzero(keep)
            leaf_nodes = np.asarray(a.get("target_nodeids", []), np.int64)
            merged.setdefault("target_treeids", []).extend([k] * len(li))
            merged.setdefault("target_nodeids", []).extend(leaf_nodes[li].tolist())
            merged.setdefault("target_ids", []).extend(ti.tolist())
            merged.setdefault("target_weights", []).extend(rows[li, ti].tolist())
        if not ok:
            continue
        op = helper.make_node("TreeEnsembleRegressor", list(parts[0].input), [reduce.output[0]],
                              name=f"{reduce.name or cat.name}_forest", domain="ai.onnx.ml",
                              n_targets=int(table.shape[1]), aggregate_function="SUM", post_transform="NONE",
                              **merged)
        left.update(list(shaped.input[1:]) + list(gather.input[:1]) + list(reduce.input[1:]))
        drop = {n.output[0] for n in parts + [cat, shaped, cast, gather]}
        nodes = [op if n.output[:1] == reduce.output[:1] else n for n in graph.node if n.output[:1] == [] or
                 n.output[0] not in drop]
        del graph.node[:]
        graph.node.extend(nodes)
        done += 1
    if done:  # the leaf tables, shapes and axes nothing reads any more
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output} | \
            {i.name for i in graph.input}
        unused = [i for i in graph.initializer if i.name in left and i.name not in read]
        for i in unused:
            graph.initializer.remove(i)
    return done


def _same(n: Any, op: Any) -> bool:
    return n.op_type == op.op_type and list(n.output) == list(op.output)


_MISSING_MARKERS = {"", "nan", "NaN", "None", "none", "missing"}


def _derived_before(graph: Any, op: Any, init: set[str], consts: dict[str, Any],
                    columns: list[Any]) -> tuple[list[tuple[Any, ...]], bool] | None:
    """What each column the tree operator reads is, in raw terms (`portable.hints.derive_splits`), and whether
    the trees compare float32 values; None when the graph's inputs reach anything but the trees otherwise than
    through column plumbing, affine steps, imputers (the identity: a certificate's domain holds no missing
    values unless it says so) and category encoders."""
    index = {c: k for k, c in enumerate(columns)}
    cols: dict[str, list[tuple[Any, ...]]] = {}
    narrow: dict[str, bool] = {}
    cond: dict[str, tuple[Any, ...]] = {}
    for vi in graph.input:
        if vi.name in init:
            continue
        t = vi.type.tensor_type
        dims, width = input_width(vi)
        if len(dims) > 2 or not width or any((vi.name, j) not in index for j in range(width)):
            return None
        kind = "cat" if t.elem_type == 8 else "num"
        cols[vi.name] = [("cat", index[(vi.name, j)]) if kind == "cat" else
                         ("num", index[(vi.name, j)], 1.0, 0.0, ()) for j in range(width)]
        narrow[vi.name] = t.elem_type == FLOAT
    for n in graph.node:
        ins = [i for i in n.input if i in cols]
        if not ins or _same(n, op):
            continue
        got = _column_step(n, cols, cond, consts, any(narrow.get(i, False) for i in ins))
        if got is None:
            return None
        if got is True:  # a condition (IsNaN, Equal) recorded in `cond`
            continue
        cols[n.output[0]] = got
        flag = any(narrow.get(i, False) for i in ins)
        if n.op_type == "Cast" and _attrs(n).get("to") == FLOAT:
            flag = True
        elif n.op_type == "Cast" and _attrs(n).get("to") == DOUBLE:
            flag = False  # doubles again (a rounding to float32 on the way is in the columns' recipes)
        narrow[n.output[0]] = flag
    if any(o.name in cols for o in graph.output) or op.input[0] not in cols:
        return None
    return cols[op.input[0]], narrow[op.input[0]]


def _integer_codes(d: tuple[Any, ...]) -> bool:
    """An ordinal column whose codes (and the value of the categories outside its map) Floor and trunc keep."""
    if d[0] != "ord" or not all(float(v).is_integer() for v in d[2].values()):
        return False
    u = d[3] if len(d) > 3 else None
    return u is None or not np.isfinite(u) or float(u).is_integer()


_FILL_KEPT = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast", "CastLike", "Concat", "Gather",
              "ArrayFeatureExtractor"}  # steps a NaN fill's reading goes through to the trees


def _column_step(n: Any, cols: dict[str, list[tuple[Any, ...]]], cond: dict[str, tuple[Any, ...]],
                 consts: dict[str, Any], narrow: bool = False) -> list[tuple[Any, ...]] | bool | None:
    op, ins, at = n.op_type, list(n.input), _attrs(n)
    if op not in _FILL_KEPT and any(d[0] == "nanfill" for i in ins if i in cols for d in cols[i]):
        # a filled column read by anything but plumbing (an imputer before a scaler, an encoder): the fill is
        # dropped, the column read as before (the identity on a domain without missing values)
        cols = {**cols, **{i: [d[2] if d[0] == "nanfill" else d for d in cols[i]] for i in ins if i in cols}}
    x = cols.get(ins[0]) if ins else None
    if op in ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze") and x is not None:
        return x
    if op in ("Cast", "CastLike") and x is not None and any(d[0] == "nanfill" for d in x):
        # a cast of a column whose NaN was filled: the same cast of the column, the fill cast alike
        inner = _column_step(n, {ins[0]: [d[2] if d[0] == "nanfill" else d for d in x]}, cond, consts, narrow)
        if not isinstance(inner, list):
            return inner
        to = np.float32 if op == "Cast" and at.get("to") == FLOAT else np.float64
        return [("nanfill", float(to(d[1])), e) if d[0] == "nanfill" else e for d, e in zip(x, inner)]
    if op in ("Cast", "CastLike") and x is not None and any(d[0] == "negated" for d in x):
        # a cast of [v, -v] (rounding to nearest is symmetric): the same cast of v, still negated
        inner = _column_step(n, {ins[0]: [d[1] if d[0] == "negated" else d for d in x]}, cond, consts, narrow)
        if not isinstance(inner, list):
            return inner
        return [("negated", e) if d[0] == "negated" else e for d, e in zip(x, inner)]
    if op in ("Cast", "CastLike") and x is not None:
        to = at.get("to")
        if op == "Cast" and to not in (FLOAT, DOUBLE) and any(d[0] == "num" for d in x):
            return None
        if op == "Cast" and to == FLOAT and not narrow:  # rounds to float32: part of the exact arithmetic
            return [d[:4] + ((None if d[4] is None else d[4] + (("cast32", 0.0, "float64"),)),)
                    if d[0] == "num" else d for d in x]
        return x if op == "Cast" else [d[:4] + (None,) if d[0] == "num" else d for d in x]
    if op == "Neg" and x is not None:  # marked: the splits on it are turned around in `_unnegate`
        if any(d[0] not in ("num", "ind", "ord", "bin") for d in x):
            return None
        return [("negated", d) for d in x]
    if op == "Concat" and at.get("axis") in (1, -1):
        if not all(i in cols for i in ins):
            return None
        return [d for i in ins for d in cols[i]]
    if op in ("ArrayFeatureExtractor", "Gather") and len(ins) == 2 and x is not None and \
            (op == "ArrayFeatureExtractor" or at.get("axis", 0) in (1, -1)):
        idx = _const(consts, ins[1])
        if idx is None:
            return None
        idx = idx.reshape(-1).astype(np.int64)
        if not np.all((idx >= 0) & (idx < len(x))):
            return None
        return [x[i] for i in idx]
    if op == "GreaterOrEqual" and x is not None and len(ins) == 2 and ins[1] in consts:
        # x[:, :, None] >= edges [1, columns, width] (portable's KBinsDiscretizer): per column, its edges
        e = _const(consts, ins[1])
        if e is None or e.ndim != 3 or e.shape[0] != 1 or e.shape[1] != len(x) or \
                any(d[0] != "num" or d[2] != 1.0 or d[3] != 0.0 or d[4] != () for d in x):
            return None  # only the raw value itself, compared in the dtype it is fed
        return [("ge", d[1], np.asarray(row, np.float64)) for d, row in zip(x, e[0])]
    if op == "ReduceSum" and x is not None and all(d[0] == "ge" for d in x) and at.get("keepdims", 1) == 0:
        axes = _const(consts, ins[1]) if len(ins) > 1 and ins[1] else np.asarray(at.get("axes", []))
        if axes is None or axes.reshape(-1).tolist() != [2]:
            return None
        # the number of edges <= x: the bin code (padding edges are +inf, never reached)
        return [("bin", d[1], np.sort(d[2][np.isfinite(d[2])])) for d in x]
    if op == "IsNaN" and x is not None:
        cond[n.output[0]] = ("isnan", ins[0])
        return True
    if op == "Equal" and x is not None and len(ins) == 2:
        v = _const(consts, ins[1])
        if v is None:
            return None
        flat = [_text(c) if isinstance(c, (bytes, str)) else c for c in v.reshape(-1)]
        if v.size == 1:
            cond[n.output[0]] = ("eq", ins[0], flat[0])  # a missing-value marker (for a Where), or
        if not all(d[0] == "cat" for d in x):
            return True if v.size == 1 else None
        if v.size == 1:  # ... one indicator per column
            return [("ind", d[1], str(flat[0])) for d in x]
        if len(x) == 1:  # one-hot: an indicator per category
            return [("ind", x[0][1], str(c)) for c in flat]
        return None
    if op == "MatMul" and x is not None and len(ins) == 2 and all(d[0] == "ind" for d in x) and \
            len({d[1] for d in x}) == 1:
        m = _const(consts, ins[1])
        if m is None or m.ndim != 2 or m.shape[0] != len(x):
            return None
        cats = [d[2] for d in x]
        if len(set(cats)) != len(cats) or any(not isinstance(c, str) for c in cats):
            return None
        # each output column sums indicators of distinct categories: of 0/1 weights, the indicator of their set;
        # else a value per category (a code: 0 for a value that is none of them)
        return [("ind", x[0][1], frozenset(c for c, on in zip(cats, m[:, k]) if on))
                if np.all((m[:, k] == 0) | (m[:, k] == 1)) else
                ("ord", x[0][1], {c: float(v) for c, v in zip(cats, m[:, k])}, 0.0) for k in range(m.shape[1])]
    if op == "ReduceSum" and x is not None and all(d[0] == "ind" and isinstance(d[2], str) for d in x) and \
            len({d[1] for d in x}) == 1 and at.get("keepdims", 1) == 1:
        axes = _const(consts, ins[1]) if len(ins) > 1 and ins[1] else np.asarray(at.get("axes", []))
        if axes is None or axes.reshape(-1).tolist() not in ([1], [-1]):
            return None
        return [("ind", x[0][1], frozenset(d[2] for d in x))]  # disjoint indicators: the indicator of their set
    if op == "Greater" and x is not None and len(x) == 1 and x[0][0] == "ind" and len(ins) == 2:
        c = _const(consts, ins[1])
        if c is None or c.size != 1 or not 0 <= float(c.reshape(-1)[0]) < 1:
            return None
        cond[n.output[0]] = ("found", x[0][1], x[0][2])  # the value is one of the categories
        return True
    if op == "Not" and x is not None and all(d[0] == "ind" for d in x):
        return [("notind", d[1], d[2]) for d in x]
    if op == "And" and len(ins) == 2 and all(i in cols for i in ins):
        a, b = cols[ins[0]], cols[ins[1]]
        if len(b) == 1 and b[0][0] == "notind" and all(d[0] == "ind" and d[1] == b[0][1] for d in a):
            out_ = set(b[0][2]) if isinstance(b[0][2], frozenset) else {b[0][2]}
            # "is c and is not one of out_": the indicator of c, for every c outside out_
            if all(isinstance(d[2], str) and d[2] not in out_ for d in a):
                return a
        return None
    if op == "Mul" and x is not None and len(ins) == 2 and ins[1] in consts and \
            all(d[0] == "ind" and isinstance(d[2], str) for d in x) and len({d[1] for d in x}) == 1:
        w = _num(consts, ins[1], len(x))
        if w is None:
            return None
        return [("ordpart", d[1], {d[2]: float(v)}) for d, v in zip(x, w)]  # v where the value is c, else 0
    if op == "ReduceSum" and x is not None and all(d[0] == "ordpart" for d in x) and \
            len({d[1] for d in x}) == 1 and at.get("keepdims", 1) == 1:
        axes = _const(consts, ins[1]) if len(ins) > 1 and ins[1] else np.asarray(at.get("axes", []))
        parts = [c for d in x for c in d[2]]
        if axes is None or axes.reshape(-1).tolist() not in ([1], [-1]) or len(set(parts)) != len(parts):
            return None
        return [("ord", x[0][1], {c: v for d in x for c, v in d[2].items()}, 0.0)]  # none of them: 0
    if op == "Mod" and x is not None and len(ins) == 2 and at.get("fmod") == 1:  # fmod(x, 1): x's fraction
        c = _const(consts, ins[1])
        return [("frac", d) for d in x] if c is not None and c.size == 1 and float(c.reshape(-1)[0]) == 1.0 \
            else None
    if op == "Sub" and x is not None and len(ins) == 2 and ins[1] in cols:  # x - fmod(x, 1): trunc(x)
        fr = cols[ins[1]]
        if len(fr) != len(x) or any(e[0] != "frac" or e[1] != d for d, e in zip(x, fr)):
            return None
        return [d if _integer_codes(d) else ("trunc", d[1]) for d in x]
    if op == "Floor" and x is not None:  # the identity on integer codes; numbers are floored (not read)
        return [d if _integer_codes(d) else ("floor", d[1]) for d in x]
    if op == "Where" and len(ins) == 3 and ins[0] in consts and ins[1] in cols and ins[2] in cols:
        mask = _const(consts, ins[0]).reshape(-1).astype(bool)
        a, b = cols[ins[1]], cols[ins[2]]
        if len(a) != len(b) or mask.size not in (1, len(a)):
            return None
        mask = np.broadcast_to(mask, (len(a),))
        return [a[j] if mask[j] else b[j] for j in range(len(a))]
    if op == "Where" and len(ins) == 3 and ins[0] in cond and cond[ins[0]][0] == "found" and ins[1] in cols and \
            ins[2] in consts:
        col, known = cond[ins[0]][1], cond[ins[0]][2]
        got = cols[ins[1]]
        if len(got) == 1 and got[0][0] == "ind" and got[0][1] == col and set(got[0][2]) <= set(known):
            got = [("ord", col, {c: float(c in got[0][2]) for c in known})]  # codes 0 and 1 read as a set
        fill = _const(consts, ins[2])
        if len(got) == 1 and got[0][0] == "ord" and got[0][1] == col and set(got[0][2]) == set(known) and \
                fill is not None and fill.size == 1:
            # a known category's code; every other category takes the constant (NaN: missing)
            return [("ord", col, got[0][2], float(fill.reshape(-1)[0]))]
        return None
    if op == "Where" and len(ins) == 3 and ins[0] in cond and ins[2] in cols:
        c = cond[ins[0]]
        marker = c[2].decode() if len(c) > 2 and isinstance(c[2], bytes) else (c[2] if len(c) > 2 else None)
        if c[1] == ins[2] and c[0] == "isnan" and ins[1] in consts:
            fill = _num(consts, ins[1], len(cols[ins[2]]))
            if fill is None:
                return None
            # NaN replaced by a constant: a missing value routes as that constant does at each split (resolved
            # per split in `_resolve_fills`), the column itself unchanged
            return [("nanfill", float(v), d) if d[0] in ("num", "negated") else d
                    for d, v in zip(cols[ins[2]], fill)]
        if c[1] == ins[2] and (c[0] == "isnan" or (isinstance(marker, str) and marker in _MISSING_MARKERS)):
            return cols[ins[2]]  # fills missing values only: the identity on the domain
        return None
    if op == "Imputer" and x is not None:
        bad = at.get("replaced_value_float", float("nan"))
        return x if np.isnan(bad) and all(d[0] == "num" for d in x) else None
    if x is None or not all(i in cols or i in consts for i in ins):
        return None
    if op == "Scaler" or (op in ("Add", "Sub", "Mul", "Div") and len(ins) == 2 and ins[1] in consts):
        if any(d[0] != "num" for d in x):
            return None
        w = len(x)
        if op == "Scaler":
            # onnxruntime computes (x - offset) * scale with the float32 attributes, in float32 for a float
            # input, in double then rounded to float for a double one (measured bit for bit)
            off = np.broadcast_to(np.asarray(at.get("offset", [0.0]), np.float32).astype(np.float64), (w,))
            sc = np.broadcast_to(np.asarray(at.get("scale", [1.0]), np.float32).astype(np.float64), (w,))
            mul, add = sc, -off * sc
            steps: list[Any] = [(("sub", float(o), "float32"), ("mul", float(c), "float32")) if narrow else
                                (("sub", float(o), "float64"), ("mul", float(c), "float64"),
                                 ("cast32", 0.0, "float64")) for o, c in zip(off, sc)]
        else:
            c = _num(consts, ins[1], w)
            if c is None:
                return None
            one, zero = np.ones(w), np.zeros(w)
            mul, add = {"Add": (one, c), "Sub": (one, -c), "Mul": (c, zero), "Div": (1 / c, zero)}[op]
            kind = "float32" if narrow else "float64"
            steps = [((op.lower(), float(v), kind),) for v in c]
        return [("num", d[1], d[2] * m, d[3] * m + a, None if d[4] is None or r is None else d[4] + r)
                for d, m, a, r in zip(x, mul, add, steps)]
    if op == "LabelEncoder" and all(d[0] == "cat" for d in x):
        keys = [_text(k) for k in at.get("keys_strings", [])]
        vals = list(at.get("values_int64s", [])) or list(at.get("values_floats", []))
        if not keys or len(keys) != len(vals):
            return None
        mapping = dict(zip(keys, (float(v) for v in vals)))
        default = at.get("default_int64", -1) if "values_int64s" in at else at.get("default_float", -0.0)
        return [("ord", d[1], mapping, float(default)) for d in x]  # any other category: the default
    if op == "OneHotEncoder" and all(d[0] == "cat" for d in x):
        cats = [_text(c) for c in at.get("cats_strings", [])]
        if not cats:
            return None
        return [("ind", d[1], c) for d in x for c in cats]
    return None



def _indexed_leaves(values: np.ndarray, leaves: np.ndarray, idx: np.ndarray, table: np.ndarray,
                    n: int) -> tuple[Any, ...] | None:
    """The per-tree form's reading: each leaf's weight is an index into the [leaves, targets] table a Gather reads
    after the trees, so a leaf's values are that row of the table (None when an index is outside it)."""
    if idx.min(initial=0) < 0 or idx.max(initial=0) >= len(table):
        return None
    full = np.zeros((n, table.shape[1]))
    full[leaves] = table[idx]
    acc = "float64" if table.dtype == np.float64 else "float32"
    return values, np.zeros(table.shape[1]), "NONE", acc, full

def _values(op: Any, at: dict[str, Any], nodes: TreeNodes, graph: Any, consts: dict[str, Any]) -> tuple | None:
    """(values [n_nodes, K], base [K], post transform, accumulate dtype, leaf-index table or None)."""
    from onnx import numpy_helper

    n = len(nodes)
    if op.op_type == "TreeEnsembleRegressor":
        K = int(at.get("n_targets", 1))
        tree = np.asarray(at.get("nodes_treeids", []), np.int64)
        nid = np.asarray(at.get("nodes_nodeids", []), np.int64)
        pos = {(int(t), int(i)): j for j, (t, i) in enumerate(zip(tree, nid))}
        values = np.zeros((n, K))
        w = at.get("target_weights_as_tensor")
        weights = numpy_helper.to_array(w).astype(np.float64) if w is not None else \
            np.asarray(at.get("target_weights", []), np.float64)
        for t, i, k, v in zip(at.get("target_treeids", []), at.get("target_nodeids", []), at.get("target_ids", []),
                              weights):
            j = pos.get((int(t), int(i)))
            if j is None or not 0 <= int(k) < K:
                return None
            values[j, int(k)] += v
        b = at.get("base_values_as_tensor")
        base = numpy_helper.to_array(b).astype(np.float64) if b is not None else \
            np.asarray(at.get("base_values", np.zeros(K)), np.float64)
        base = np.broadcast_to(base if base.size else np.zeros(K), (K,)).copy()
        agg = _text(at.get("aggregate_function", "SUM"))
        post = _text(at.get("post_transform", "NONE"))
        table = _leaf_table(op, graph, consts)
        if table is not None:  # weights are leaf indices into the table (one target per tree)
            if agg != "SUM" or post != "NONE" or K != len(nodes.roots) or np.any(base != 0):
                return None
            leaves = np.asarray(nodes.left) < 0
            idx = np.trunc(values[leaves].sum(axis=1)).astype(np.int64)  # one nonzero weight per leaf
            return _indexed_leaves(values, leaves, idx, table, n)
        if agg == "AVERAGE":
            values /= max(1, len(nodes.roots))
        elif agg != "SUM":
            return None
        if w is not None and numpy_helper.to_array(w).dtype == np.float64:
            # double input and weights: onnxruntime sums in double (base values too) and writes float32, one
            # rounding at the end (read as `Cols.rounded`)
            return values, base, post, "float64", None
        # ai.onnx.ml 3's regressor keeps float32 leaf weights and returns float32 sums
        return values, base.astype(np.float32).astype(np.float64), post, "float32", None
    # TreeEnsemble (ai.onnx.ml 5)
    K = int(at.get("n_targets", 1))
    n_inner = len(at["nodes_featureids"])
    targets = np.asarray(at.get("leaf_targetids", []), np.int64)
    wt = at["leaf_weights"]
    weights = numpy_helper.to_array(wt).astype(np.float64).reshape(-1)
    acc = "float64" if numpy_helper.to_array(wt).dtype == np.float64 else "float32"
    agg = _V5_AGG.get(int(at.get("aggregate_function", 1)))
    post = _V5_POST.get(int(at.get("post_transform", 0)))
    values = np.zeros((n, K))
    leaf_rows = n_inner + np.arange(len(weights))
    if np.any(targets < 0) or np.any(targets >= K) or leaf_rows[-1:].max(initial=0) >= n:
        return None
    values[leaf_rows, targets] = weights
    table = _leaf_table(op, graph, consts)
    if table is not None:  # weights are leaf indices into the table (one target per tree)
        if agg != "SUM" or post != "NONE" or K != len(nodes.roots):
            return None
        idx = np.trunc(weights).astype(np.int64)  # what the Cast to int64 before the Gather makes of them
        return _indexed_leaves(values, leaf_rows, idx, table, n)
    if agg == "AVERAGE":
        values /= max(1, len(nodes.roots))
    elif agg != "SUM":
        return None
    return values, np.zeros(K), post, acc, None


def _leaf_table(op: Any, graph: Any, consts: dict[str, Any]) -> np.ndarray | None:
    """The `[leaves, targets]` table a leaf-index ensemble's output indexes (through `Cast`), or None.

    A one-dimensional table (one value per leaf: portable's PFA compiler writes a single tree so) is a column of
    numbers, or, for strings (class labels), its one-hot columns over the sorted labels (`_one_hot`); followed
    through `Reshape`/`Squeeze`/`Flatten`/`Identity` too, for a single tree only."""
    names = {op.output[0]}
    for n in graph.node:
        if n.op_type == "Cast" and n.input and n.input[0] in names:
            names.add(n.output[0])
        elif n.op_type in ("Reshape", "Squeeze", "Flatten", "Identity") and n.input and n.input[0] in names:
            names.add(n.output[0])
        elif n.op_type == "Gather" and len(n.input) == 2 and n.input[1] in names:
            table = _const(consts, n.input[0])
            if table is None or _attrs(n).get("axis", 0) != 0:
                return None
            # kept in its own float type: the sum after the Gather is computed in it (`_indexed_leaves`)
            if table.ndim == 2 and table.dtype.kind in "fiu":
                return table if table.dtype.kind == "f" else table.astype(np.float64)
            if table.ndim == 1 and table.dtype.kind in "fiu":
                return (table if table.dtype.kind == "f" else table.astype(np.float64)).reshape(-1, 1)
            if table.ndim == 1 and table.dtype.kind in "OUS":
                return _one_hot(table)[0]
            return None
    return None


def _one_hot(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D table of labels as `[rows, classes]` one-hot columns over its sorted distinct labels, and those."""
    labels = np.asarray([_text(v) for v in table.reshape(-1)], dtype=object)
    classes = np.asarray(sorted(set(labels.tolist())), dtype=object)
    pos = {c: j for j, c in enumerate(classes.tolist())}
    hot = np.zeros((len(labels), len(classes)))
    hot[np.arange(len(labels)), [pos[v] for v in labels.tolist()]] = 1.0
    return hot, classes


def _num(consts: dict[str, Any], name: str, width: int) -> np.ndarray | None:
    c = _const(consts, name)
    if c is None or c.dtype.kind not in "fiu" or c.size not in (1, width):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (width,)).copy()


def _step(n: Any, syms: dict[str, Any], consts: dict[str, Any], K: int, table: Any, wide: bool = False,
          single: bool = False) -> Any:
    """The symbolic value of node `n`'s first output, or None when it is not one the reading follows.

    `wide`: the trees sum in float64; a Cast to float32 of score columns is then their one final rounding
    (`Cols.rounded`), after which only reshaping is followed (any arithmetic on the rounded values: None).
    `single`: the ensemble is one tree (its leaf index gathered from a 1-D table is the output)."""
    op, ins = n.op_type, list(n.input)
    x = syms.get(ins[0]) if ins else None
    at = _attrs(n)
    rounded = [syms[i] for i in ins if isinstance(syms.get(i), Cols) and syms[i].rounded]
    if op == "Cast" and wide and at.get("to") == FLOAT and x is not None:
        if not isinstance(x, Cols):
            return None  # a float32 rounding of probabilities or labels: not read
        return replace(x, rounded=True)
    if rounded and not (op in ("Identity", "Cast", "Squeeze", "Flatten", "Reshape", "Slice") or
                        (op == "Concat" and len(rounded) == len(ins))):
        return None
    if op == "Cast" and isinstance(x, Label) and at.get("to") == 9:  # BOOL: labels of boolean classes
        return Label(x.index, np.asarray(x.classes).astype(bool)) if np.asarray(x.classes).dtype.kind in "biuf" \
            else None
    if op in ("Identity", "Cast", "CastLike", "Squeeze", "Flatten") or (op == "Reshape" and x is not None):
        if op == "Cast" and isinstance(x, (Cols, Soft)) and at.get("to") not in (FLOAT, DOUBLE):
            return None
        if op in ("Squeeze", "Flatten", "Reshape") and isinstance(x, (Cols, Soft)) and len(x.k) != 1:
            return None
        return x
    if isinstance(x, LeafIndex) and op != "ReduceSum":
        return None
    if op == "Gather" and len(ins) == 2 and ins[1] in syms:
        idx = syms[ins[1]]
        raw = _const(consts, ins[0])
        if isinstance(idx, LeafIndex) and table is not None and raw is not None and raw.ndim == 1 and single:
            # one tree's leaf value (or label) gathered from a one-dimensional table: the output itself
            if raw.dtype.kind in "fiu":
                return Cols([0], [1.0], [0.0], ["identity"])
            w = table.shape[1]
            return Label(Index("argmax", list(range(w)), [1.0] * w, [0.0] * w), _one_hot(raw)[1])
        if isinstance(idx, LeafIndex) and table is not None:
            return LeafIndex(gathered=True)
        classes = _const(consts, ins[0])
        if isinstance(idx, Index) and classes is not None and classes.ndim == 1 and at.get("axis", 0) == 0:
            return Label(idx, classes)
        return None
    if op == "ReduceSum":
        if isinstance(x, LeafIndex) and x.gathered and not at.get("keepdims", 1) == 1:
            axes = _const(consts, ins[1]) if len(ins) > 1 and ins[1] else np.asarray(at.get("axes", []))
            if axes is not None and axes.reshape(-1).tolist() == [1]:
                w = table.shape[1]
                return Cols(list(range(w)), [1.0] * w, [0.0] * w, ["identity"] * w)
        return None
    if op in ("Add", "Sub", "Mul", "Div") and len(ins) == 2:
        first = ins[0] in syms
        y = syms.get(ins[0] if first else ins[1])
        if not isinstance(y, Cols) or (ins[0] in syms and ins[1] in syms):
            return None
        c = _num(consts, ins[1] if first else ins[0], len(y.k))
        if c is None:
            return None
        return _affine(y, op, c, first)
    if op == "Neg" and isinstance(x, Cols):
        return _affine(x, "Mul", np.full(len(x.k), -1.0), True)
    if op == "Exp" and isinstance(x, Cols) and all(f == "identity" for f in x.fn):  # a log target's inverse
        return Cols(x.k, [a * c for a, c in zip(x.a, x.c)], [b * c + d for b, c, d in zip(x.b, x.c, x.d)],
                    ["exp"] * len(x.k))
    if op == "Sigmoid" and isinstance(x, Cols) and all(f == "identity" for f in x.fn):
        return Cols(x.k, [a * c for a, c in zip(x.a, x.c)], [b * c + d for b, c, d in zip(x.b, x.c, x.d)],
                    ["logistic"] * len(x.k))
    if op == "Softmax" and isinstance(x, Cols) and all(f == "identity" for f in x.fn) and \
            at.get("axis", -1) in (-1, 1):
        return Soft(x.k, x.a, x.b)
    if op == "Concat" and at.get("axis") in (1, -1):
        parts = [syms.get(i) for i in ins]
        if all(isinstance(p, Cols) for p in parts):
            return Cols(sum((p.k for p in parts), []), sum((p.a for p in parts), []), sum((p.b for p in parts), []),
                        sum((p.fn for p in parts), []), sum((p.c for p in parts), []), sum((p.d for p in parts), []),
                        rounded=bool(rounded))
        return None
    if op == "Slice" and isinstance(x, Cols) and len(ins) >= 3:  # columns of the scores (one target's classes)
        starts, ends = _const(consts, ins[1]), _const(consts, ins[2])
        axes = _const(consts, ins[3]) if len(ins) > 3 and ins[3] else np.asarray([0])
        steps = _const(consts, ins[4]) if len(ins) > 4 and ins[4] else np.asarray([1])
        if starts is None or ends is None or axes is None or steps is None or starts.size != 1 or \
                axes.reshape(-1).tolist() not in ([1], [-1]):
            return None
        sl = slice(int(starts.reshape(-1)[0]), int(min(ends.reshape(-1)[0], 2 ** 62)), int(steps.reshape(-1)[0]))
        pick = list(range(len(x.k)))[sl]
        return Cols([x.k[j] for j in pick], [x.a[j] for j in pick], [x.b[j] for j in pick], [x.fn[j] for j in pick],
                    [x.c[j] for j in pick], [x.d[j] for j in pick], rounded=x.rounded)
    if op == "ArgMax" and at.get("axis", 0) in (1, -1) and not at.get("select_last_index", 0):
        return _argmax(x)
    if op == "Pow" and len(ins) == 2 and ins[1] in syms and ins[0] in consts:  # b^v = exp(ln(b) v)
        y, base = syms[ins[1]], _const(consts, ins[0])
        if not isinstance(y, Cols) or any(f != "identity" for f in y.fn) or base is None or base.size != 1 or \
                not float(base.reshape(-1)[0]) > 0:
            return None
        ln = math.log(float(base.reshape(-1)[0]))
        return Cols(y.k, [a * c * ln for a, c in zip(y.a, y.c)], [(b * c + d) * ln for b, c, d in zip(y.b, y.c, y.d)],
                    ["exp"] * len(y.k))
    if op in ("Less", "LessOrEqual", "Greater", "GreaterOrEqual") and isinstance(x, Cols) and len(x.k) == 1 and \
            x.fn == ["exp"] and len(ins) == 2:
        return _exp_threshold(x, op, _num(consts, ins[1], 1))
    if op == "Where" and len(ins) == 3 and isinstance(syms.get(ins[0]), Index) and syms[ins[0]].rule == "threshold":
        yes, no = _const(consts, ins[1]), _const(consts, ins[2])
        if yes is None or no is None or yes.size != 1 or no.size != 1:
            return None
        return Label(syms[ins[0]], np.array([no.reshape(-1)[0], yes.reshape(-1)[0]]))  # index 1 where true
    if op in ("Greater", "GreaterOrEqual") and isinstance(x, Cols) and len(x.k) == 1 and x.fn == ["identity"]:
        c = _num(consts, ins[1], 1)
        if c is None:
            return None
        return Index("threshold", x.k, x.a, [x.b[0] - float(c[0])], strict=op == "Greater")
    return None


def _exp_threshold(x: Cols, op: str, t: np.ndarray | None) -> Index | None:
    """`c e^u + d  op  t` (u = a raw + b, one column) as a threshold on the raw score: `e^u` against
    q = (t - d) / c, turned around when c < 0; None when q <= 0 (the comparison is constant)."""
    if t is None or not x.c[0]:
        return None
    c, d, a, b = x.c[0], x.d[0], x.a[0], x.b[0]
    q = (float(t[0]) - d) / c
    if not q > 0:
        return None
    above = op in ("Greater", "GreaterOrEqual")  # v > t
    if c < 0:
        above = not above
    strict = op in ("Less", "Greater")
    lq = math.log(q)
    if above:  # u > ln q
        return Index("threshold", [x.k[0]], [a], [b - lq], strict=strict)
    return Index("threshold", [x.k[0]], [-a], [lq - b], strict=strict)


def _affine(y: Cols, op: str, c: np.ndarray, first: bool) -> Cols:
    """`y op c` (first) or `c op y` on score columns: identity columns fold it into (a, b), others into (c, d)."""
    out = Cols(list(y.k), list(y.a), list(y.b), list(y.fn), list(y.c), list(y.d))
    for j in range(len(y.k)):
        v = float(c[j])
        if op == "Div" and not first:
            return None  # type: ignore[return-value]
        mul, add = {"Add": (1.0, v), "Sub": ((1.0, -v) if first else (-1.0, v)), "Mul": (v, 0.0),
                    "Div": (1.0 / v if v else math.nan, 0.0)}[op]
        if y.fn[j] == "identity":
            out.a[j], out.b[j] = mul * y.a[j], mul * y.b[j] + add
        else:
            out.c[j], out.d[j] = mul * y.c[j], mul * y.d[j] + add
    return out


def _argmax(x: Any) -> Index | None:
    if isinstance(x, Soft):
        return Index("argmax", x.k, x.a, x.b)
    if not isinstance(x, Cols):
        return None
    if all(f == "identity" for f in x.fn):
        return Index("argmax", x.k, x.a, x.b)
    if len(x.k) == 2 and x.fn[0] == x.fn[1] and x.k[0] == x.k[1] and x.a[0] == x.a[1] and x.b[0] == x.b[1]:
        # column 1 wins iff (c1 - c0) fn(u) > d0 - d1, u = a raw + b: a threshold on u
        dc, dd = x.c[1] - x.c[0], x.d[0] - x.d[1]
        if dc <= 0:
            return None
        p = dd / dc
        if x.fn[0] == "logistic":
            if not 0 < p < 1:
                return None
            tau = math.log(p / (1 - p))
        else:
            tau = p
        return Index("threshold", [x.k[0]], [x.a[0]], [x.b[0] - tau])
    return None


__all__ = ["tree_ensemble"]
