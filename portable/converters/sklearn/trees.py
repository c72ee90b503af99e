"""portable's own converters for scikit-learn tree ensembles, emitting `ai.onnx.ml` tree ensembles.

skl2onnx 1.20 writes `TreeEnsembleClassifier`/`TreeEnsembleRegressor` whose outputs are always float32, and fails
on HistGradientBoosting altogether. These converters build the trees once (`NodeTable` -> `Forest`) and choose
the ONNX formulation per model when the conversion is finalized (`attach_pending`), by what was measured
(benchmarks/bench_tree_speed.py, `benchmarks/RESULTS.md`):

- float32, no categorical (set-membership) split: `TreeEnsembleRegressor` (ai.onnx.ml 3), every leaf carrying the
  weights of all its targets, so each tree is stored and traversed once whatever the number of classes; onnxruntime
  runs it 1.2-1.3x faster than `TreeEnsemble` v5 of the same trees. Thresholds are rounded *down* to float32
  (for a float32 `x`, `x <= t` and `x <= floor32(t)` are the same test, so no split moves).
  From `PER_TREE_MIN_TARGETS` (4) targets per leaf (forests with many classes whose rows are not ordered, see
  there), one single-target `TreeEnsembleRegressor` per tree whose leaf weights are leaf indices, then Concat / Gather of the
  `[leaves, targets]` table / ReduceSum over the trees: onnxruntime walks a (target, weight) list per leaf in its
  multi-target loop, which for 10 classes cost more than the traversal itself; 1.3-1.6x faster at 10,000 rows for
  4-10 classes, ~0.1 ms at 1 row (`formats.onnx_trees.join_per_tree` joins the trees back for the lowering).
- float64 (or categorical splits): `TreeEnsemble` v5 with double thresholds. One target per leaf is v5's rule, so
  a multi-target forest is written as *leaf indices*: one v5 target per tree whose leaf weight is the leaf's
  index (exact in float64, and in float32 below 2**24 leaves), then `Gather` of a `[leaves, targets]` value table
  and `ReduceSum` over the trees: one traversal per tree, exact float64 values. When the trees compare the
  float32 rounding of the input (scikit-learn's), that operator walks the float32 values with float32 thresholds
  (`_float32_walk`: the same splits, 1.1-1.2x faster). Boosting (each tree feeds one
  class) is one single-target v5 ensemble per class, then Concat, as in float32 (onnxruntime's single-target
  loop: 1.1-1.2x faster at 10,000 rows than one K-target operator, the same sums in the same order), and
  XGBoost's splits are oriented by cover (`orient_by_cover`) in both dtypes.

- missing values (both families): onnxruntime tests `x <= t or (tracks and isnan(x))` at every node as soon as
  one node tracks missing values, and loses its one-mode loop when `<=` and `<` splits mix. scikit-learn sends
  NaN left at about half of its splits, so those splits read a negated copy of their column instead
  (`negate_missing_left`: the input becomes `[x, -x]` by Neg + Concat, `-x < -t` goes right and NaN fails it),
  and every `<` split is written as `<=` of the next lower value: exact, and 1.1-1.3x faster at 10,000 rows
  (benchmarks/bench_tree_formulations.py), for two small nodes (~1-2 us) at 1 row.

- bagged forests (averaged trees, ~80 trees or more; float32, and float64 with a `TreeEnsemble` v5 key): the
  rows are sorted by their leaves in the forest's first two trees (a copy of those trees computes the key, then
  TopK / GatherND), walked through the forest in that order and put back (ScatterND) (`_row_order`):
  onnxruntime branches at every split, and rows that share those leaves mostly share their paths through the
  other trees, so the branches are predicted. Each row is computed exactly as before. 1.1x faster at 10,000 rows
  for the forest classifiers of the benchmark, 1.8x for the regressor (all of whose trees split on the same
  feature first), in both dtypes; ~2 us at 1 row. Boosting's trees are too unlike each other for that key
  (XGBoost 1.07x, GradientBoostingRegressor 1.06x before the sort's own cost); single-target boosting of shallow
  trees is ordered by the outcomes of its first 24 distinct root splits instead (`_key_roots`, computed with
  standard operators: 1.03-1.09x for GradientBoostingRegressor, ~6 us at 1 row). The graph's readers see the
  forest without it (`onnx_trees.without_row_order`).

`TreeEnsembleRegressor` is deprecated in ai.onnx.ml 5, so one model uses one family: the choice is made for the
whole graph, and recorded in the metadata (`portable.trees.formulation`).

The node arrays are built with numpy over the concatenated `tree_` arrays of all trees, never node by node,
and written as packed tensors / repeated fields: a 300-tree forest of depth 12 converts in a fraction of a
second. The converters are skl2onnx converters (`scope, operator, container`) so that they also work inside
pipelines; `bridge.py` puts them in place of skl2onnx's for the duration of one conversion.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .emit import Emitter
from .registry import sklearn_converter

ML = "ai.onnx.ml"
LEQ, LT, MEMBER = 0, 1, 6


@dataclass
class Forest:
    """Trees in `TreeEnsemble` v5 layout: interior nodes (`nodes_*`) and leaves (`leaf_*`) as numpy arrays."""

    featureids: np.ndarray
    modes: np.ndarray
    splits: np.ndarray
    truenodeids: np.ndarray
    trueleafs: np.ndarray
    falsenodeids: np.ndarray
    falseleafs: np.ndarray
    missing_true: np.ndarray
    tree_roots: np.ndarray
    leaf_targetids: np.ndarray
    leaf_weights: np.ndarray
    membership: list[np.ndarray]
    n_targets: int
    table: "NodeTable | None" = None        # the trees this forest was built from (scikit-learn layout)
    leaf_values: np.ndarray | None = None   # [n_leaf, n_targets] when every leaf carries every target
    leaf_tree: np.ndarray | None = None     # the tree of each leaf (with leaf_values)


@dataclass
class NodeTable:
    """Trees as flat node arrays (scikit-learn's `tree_` layout) concatenated over trees.

    `left[i] < 0` marks a leaf; children are global indices; `roots` holds each tree's first node;
    `values` is `[n_nodes, n_targets]` (only leaf rows are read); `true_left[i]` says whether the node's test
    being true sends the sample left; `members[i]` is the set tested by a `BRANCH_MEMBER` node.
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    values: np.ndarray
    roots: np.ndarray
    mode: np.ndarray | None = None
    members: dict[int, np.ndarray] | None = None
    cover: np.ndarray | None = None  # how much training data reached each node (XGBoost's hessian sums), if known


def concat_trees(trees: list[Any], values: list[np.ndarray], features: list[np.ndarray] | None = None) -> NodeTable:
    """Concatenate scikit-learn `Tree` objects into one NodeTable (`values[k]` is `[n_nodes_k, n_targets]`)."""
    sizes = np.array([t.node_count for t in trees], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    shift = np.repeat(offsets, sizes)
    left = np.concatenate([t.children_left for t in trees]).astype(np.int64)
    right = np.concatenate([t.children_right for t in trees]).astype(np.int64)
    leaf = left < 0
    left = np.where(leaf, -1, left + shift)
    right = np.where(leaf, -1, right + shift)
    feat = np.concatenate([t.feature for t in trees]).astype(np.int64)
    if features is not None:  # per-tree feature subsets (IsolationForest, Bagging)
        feat = np.concatenate([np.asarray(f, dtype=np.int64)[np.maximum(t.feature, 0)]
                               for t, f in zip(trees, features)])
    feat = np.where(leaf, 0, feat)
    thr = np.concatenate([t.threshold for t in trees]).astype(np.float64)
    miss = np.concatenate([np.asarray(getattr(t, "missing_go_to_left", np.zeros(t.node_count, np.uint8)))
                           for t in trees]).astype(bool)
    return NodeTable(left, right, feat, thr, miss, np.concatenate(values, axis=0), offsets)


def build(table: NodeTable) -> Forest:
    """NodeTable -> Forest: renumber interior nodes and leaves, one copy of the trees per target."""
    is_leaf = table.left < 0
    inner = ~is_leaf
    inner_rank = np.cumsum(inner) - 1
    leaf_rank = np.cumsum(is_leaf) - 1
    n_inner, n_leaf = int(inner.sum()), int(is_leaf.sum())
    idx = np.flatnonzero(inner)
    lft, rgt = table.left[idx], table.right[idx]
    mode = np.full(n_inner, LEQ, np.uint8) if table.mode is None else table.mode[idx].astype(np.uint8)
    # a node's "true" branch is its left child (scikit-learn sends x <= t left)
    tl, fl = is_leaf[lft], is_leaf[rgt]
    tid = np.where(tl, leaf_rank[lft], inner_rank[lft])
    fid = np.where(fl, leaf_rank[rgt], inner_rank[rgt])
    feat, splits, miss = table.feature[idx], table.threshold[idx], table.missing_left[idx]
    members = [table.members[i] for i in idx[mode == MEMBER]] if table.members else []
    roots = table.roots
    root_leaf = is_leaf[roots]
    tree_roots = np.where(root_leaf, 0, inner_rank[roots])
    if root_leaf.any():  # a one-leaf tree: one interior node whose branches both reach the leaf
        k = int(root_leaf.sum())
        leaves = leaf_rank[roots[root_leaf]]
        tree_roots[root_leaf] = n_inner + np.arange(k)
        feat = np.concatenate([feat, np.zeros(k, np.int64)])
        splits = np.concatenate([splits, np.zeros(k)])
        miss = np.concatenate([miss, np.zeros(k, bool)])
        mode = np.concatenate([mode, np.full(k, LEQ, np.uint8)])
        tid, fid = np.concatenate([tid, leaves]), np.concatenate([fid, leaves])
        tl, fl = np.concatenate([tl, np.ones(k, bool)]), np.concatenate([fl, np.ones(k, bool)])
        n_inner += k
    values = table.values[is_leaf]
    n_targets = values.shape[1]
    if n_targets == 1:  # the common case: no copies
        return Forest(featureids=feat, modes=mode, splits=splits, truenodeids=tid, trueleafs=tl,
                      falsenodeids=fid, falseleafs=fl, missing_true=miss, tree_roots=tree_roots,
                      leaf_targetids=np.zeros(n_leaf, np.int64), leaf_weights=values[:, 0].astype(np.float64),
                      membership=members, n_targets=1, table=table)
    # several targets per leaf: keep the trees once; the formulation is chosen in attach_pending
    leaf_tree = _tree_of_node(table)[is_leaf]
    return Forest(featureids=feat, modes=mode, splits=splits, truenodeids=tid, trueleafs=tl,
                  falsenodeids=fid, falseleafs=fl, missing_true=miss, tree_roots=tree_roots,
                  leaf_targetids=leaf_tree.astype(np.int64), leaf_weights=np.arange(n_leaf, dtype=np.float64),
                  membership=members, n_targets=n_targets, table=table,
                  leaf_values=values.astype(np.float64), leaf_tree=leaf_tree)


def _tree_of_node(table: NodeTable) -> np.ndarray:
    """The tree index of every node (trees are stored one after the other, each from its root)."""
    order = np.argsort(table.roots, kind="stable")
    starts = np.asarray(table.roots, dtype=np.int64)[order]
    return order[np.searchsorted(starts, np.arange(len(table.left)), side="right") - 1]


def floor32(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= t, elementwise: for float32 x, `x <= t` iff `x <= floor32(t)`."""
    t = np.asarray(t, dtype=np.float64)
    f = t.astype(np.float32)
    with np.errstate(invalid="ignore"):
        over = f.astype(np.float64) > t
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f


def ceil32(t: np.ndarray) -> np.ndarray:
    """The smallest float32 >= t: for float32 x, `x < t` iff `x < ceil32(t)`."""
    t = np.asarray(t, dtype=np.float64)
    f = t.astype(np.float32)
    with np.errstate(invalid="ignore"):
        under = f.astype(np.float64) < t
    f[under] = np.nextafter(f[under], np.float32(np.inf))
    return f


def _lt_as_leq(mode: np.ndarray, thr: np.ndarray, split: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mixed BRANCH_LEQ / BRANCH_LT splits written all as BRANCH_LEQ, so that onnxruntime takes its one-mode loop.

    `thr` holds the thresholds already rounded to `dtype`; for x of that dtype, `x < c` iff `x <= pred(c)` (the
    next value of the dtype below c) for every c but -inf. Unchanged when the splits use one mode, another mode,
    or an LT threshold is -inf.
    """
    used = set(np.unique(mode[split]).tolist())
    lt = split & (mode == LT)
    if used != {LEQ, LT} or np.any(np.isneginf(thr[lt])):
        return mode, thr
    d = np.dtype(dtype).type
    thr = np.asarray(thr, dtype=np.dtype(dtype)).copy()
    thr[lt] = np.nextafter(thr[lt], d(-np.inf))
    return np.where(lt, LEQ, mode).astype(np.uint8), thr


NEGATED = "missing values routed by negated input columns (Neg + Concat), no missing-value tracking"


def negate_missing_left(forest: Forest, width: int | None) -> Forest | None:
    """The same trees without missing-value tracking, reading `[x, -x]` (`width` columns each), or None.

    onnxruntime walks every node of an ensemble through a slower test (`x <= t or (tracks and isnan(x))`) as soon
    as one node tracks missing values. A split that sends NaN to its true (left) child, `x <= t or NaN -> left`,
    is the same test as `-x < -t -> right`, NaN failing it: on column `f + width` (the negated copy of column f)
    with the children swapped, no tracking. Negation is exact, so every input routes as before, NaN included.
    None when no split tracks missing values, or one that does is not a `<=` / `<` split.
    """
    if not width or forest.table is None:
        return None
    from dataclasses import replace

    tracked = forest.missing_true.astype(bool)
    sel = tracked & np.isin(forest.modes, (LEQ, LT))
    if not sel.any() or np.any(tracked & ~sel) or forest.membership:
        return None
    swap_mode = np.where(forest.modes == LEQ, LT, LEQ).astype(np.uint8)
    t = forest.table
    inner = t.left >= 0
    mode = np.full(len(t.left), LEQ, np.uint8) if t.mode is None else np.asarray(t.mode, np.uint8)
    s = inner & t.missing_left.astype(bool)
    table = NodeTable(np.where(s, t.right, t.left), np.where(s, t.left, t.right),
                      np.where(s, t.feature + width, t.feature), np.where(s, -t.threshold, t.threshold),
                      np.zeros(len(t.left), bool), t.values, t.roots,
                      np.where(s, np.where(mode == LEQ, LT, LEQ), mode).astype(np.uint8), t.members)
    return replace(
        forest, table=table,
        featureids=np.where(sel, forest.featureids + width, forest.featureids),
        splits=np.where(sel, -forest.splits, forest.splits), modes=np.where(sel, swap_mode, forest.modes),
        truenodeids=np.where(sel, forest.falsenodeids, forest.truenodeids),
        trueleafs=np.where(sel, forest.falseleafs, forest.trueleafs),
        falsenodeids=np.where(sel, forest.truenodeids, forest.falsenodeids),
        falseleafs=np.where(sel, forest.trueleafs, forest.falseleafs),
        missing_true=np.zeros_like(forest.missing_true))


ORIENTED = ("each split's child with the larger training cover on onnxruntime's fall-through branch: splits read "
            "x or -x, with NaN as the lowest float32 where it must take the other branch (Neg, IsNaN, Where, "
            "Concat), no missing-value tracking")
ORIENT_KINDS = ("x", "negx", "xlo", "negxlo")  # x, -x, then each with NaN as LOWEST32
LOWEST32 = -float(np.finfo(np.float32).max)


def orient_by_cover(forest: Forest, width: int | None) -> tuple[Forest, list[str]] | None:
    """The same single-target trees with each split's larger child (by training cover) as its *false* branch, and
    the input column kinds they read (`ORIENT_KINDS`, in that order, `width` columns each); or None.

    onnxruntime (1.32, `tree_ensemble_common.h`) lays every tree out so that a node's false child is the next node
    and reaches its true child through a pointer: the false branch is the cheaper one, and the frequent branch
    should be it (1.1x at 10,000 rows for XGBoost, benchmarks/RESULTS.md). A split `x < t` (or `x <= t`) -> left
    whose left child is the larger becomes `-x <= -t` (`-x < -t`) -> right. Where NaN goes is kept exactly, without
    missing-value tracks, by the column each split reads: NaN fails every comparison, so a split whose NaN goes
    to its false branch reads x or -x; one whose NaN goes to its true branch reads the column with NaN as the
    lowest float32 m (not -inf: NNEF has no literal for it). `m <= t` holds for every float32 threshold but -inf,
    `m < t` for every one above m (trees with other thresholds on such splits are refused), and an actual value m
    routes the same way there. All splits stay `<=` / `<` on one side (`attributes_v3` writes them as one mode). None without cover, for several targets per leaf, or when a split
    is not a `<=` / `<` split.
    """
    t = forest.table
    if not width or t is None or t.cover is None or forest.leaf_values is not None or forest.membership or \
            t.members:
        return None
    from dataclasses import replace

    inner = t.left >= 0
    mode = np.full(len(t.left), LEQ, np.uint8) if t.mode is None else np.asarray(t.mode, np.uint8)
    if np.any(inner & ~np.isin(mode, (LEQ, LT))):
        return None
    cover = np.asarray(t.cover, np.float64)
    li, ri = np.where(inner, t.left, 0), np.where(inner, t.right, 0)
    flip = inner & (cover[li] > cover[ri])
    nan_left = inner & t.missing_left.astype(bool)
    # the kind each split reads: NaN must go to the true branch exactly when it goes left xor the split is flipped
    kind = np.where(flip, np.where(nan_left, 1, 3), np.where(nan_left, 2, 0))
    new_mode = np.where(flip, np.where(mode == LEQ, LT, LEQ), mode).astype(np.uint8)
    new_thr = np.where(flip, -t.threshold, t.threshold)
    low = inner & (kind >= 2)
    if np.any(low & (((new_mode == LT) & (new_thr <= LOWEST32)) | ((new_mode == LEQ) & (new_thr < LOWEST32)))):
        return None
    used = [k for k in range(len(ORIENT_KINDS)) if np.any(inner & (kind == k))] or [0]
    slot = np.zeros(len(ORIENT_KINDS), np.int64)
    slot[used] = np.arange(len(used))
    table = NodeTable(np.where(flip, t.right, t.left), np.where(flip, t.left, t.right),
                      np.where(inner, slot[kind] * width + t.feature, t.feature),
                      new_thr, np.zeros(len(t.left), bool), t.values, t.roots, new_mode, t.members, t.cover)
    out = replace(build(table), leaf_targetids=forest.leaf_targetids, leaf_weights=forest.leaf_weights,
                  n_targets=forest.n_targets)
    return out, [ORIENT_KINDS[k] for k in used]


def attributes(forest: Forest, dtype: Any, *, aggregate: int = 1) -> list[bytes]:
    """The `TreeEnsemble` attributes, serialized (`set_attributes` puts them on a node): packed tensors and
    packed varints written with numpy, no per-node Python work."""
    np_dtype = np.dtype(dtype)
    splits = forest.splits
    if np_dtype == np.float32:
        splits = np.where(forest.modes == LT, ceil32(splits), floor32(splits))
    else:
        splits = splits.astype(np.float64)
    modes, splits = _lt_as_leq(np.asarray(forest.modes, np.uint8), splits, np.ones(len(splits), bool), np_dtype)
    out = [
        wire_ints("nodes_featureids", forest.featureids),
        wire_tensor("nodes_modes", modes.astype(np.uint8)),
        wire_tensor("nodes_splits", splits.astype(np_dtype)),
        wire_ints("nodes_truenodeids", forest.truenodeids), wire_ints("nodes_trueleafs", forest.trueleafs),
        wire_ints("nodes_falsenodeids", forest.falsenodeids), wire_ints("nodes_falseleafs", forest.falseleafs),
        wire_ints("nodes_missing_value_tracks_true", forest.missing_true),
        wire_ints("tree_roots", forest.tree_roots),
        wire_ints("leaf_targetids", forest.leaf_targetids),
        wire_tensor("leaf_weights", forest.leaf_weights.astype(np_dtype)),
        wire_int("n_targets", forest.n_targets),
        wire_int("aggregate_function", aggregate),
        wire_int("post_transform", 0),
    ]
    if forest.membership:
        sets = [np.append(np.asarray(m, np.float64), np.nan) for m in forest.membership]
        out.append(wire_tensor("membership_values", np.concatenate(sets)[:-1].astype(np_dtype)))
    return out


# -- attributes as protobuf wire bytes ----------------------------------------------------------------------
# A 300-tree forest has ~10^5-10^6 entries per attribute: filling protobuf repeated fields from Python lists
# (`extend(a.tolist())`, a bytes object per mode string) and copying the finished AttributeProtos into the
# node cost most of a conversion. The same attributes are written here as protobuf's wire format with numpy
# (packed varints / little-endian floats, which every protobuf parser reads for repeated numeric fields) and
# parsed once, by protobuf's C parser, directly into the node.

def _field_numbers() -> dict[str, int]:
    from onnx import AttributeProto, NodeProto

    f = AttributeProto.DESCRIPTOR.fields_by_name
    return {"name": f["name"].number, "type": f["type"].number, "i": f["i"].number, "s": f["s"].number,
            "t": f["t"].number, "floats": f["floats"].number, "ints": f["ints"].number,
            "strings": f["strings"].number, "attribute": NodeProto.DESCRIPTOR.fields_by_name["attribute"].number}


_FIELDS: dict[str, int] = {}


def varints(a: Any) -> bytes:
    """Integers as concatenated protobuf varints (int64 semantics: a negative value takes ten bytes)."""
    if type(a) is list and len(a) == 1 and 0 <= a[0]:  # one key or length (most calls, per-tree ensembles)
        i, out = int(a[0]), bytearray()
        while i >= 0x80:
            out.append(i & 0x7F | 0x80)
            i >>= 7
        out.append(i)
        return bytes(out)
    v = np.asarray(a, dtype=np.int64).reshape(-1)
    if v.size == 0:
        return b""
    lo, hi = int(v.min()), int(v.max())
    if lo >= 0 and hi < 128:
        return v.astype(np.uint8).tobytes()
    u = v.astype(np.uint32) if lo >= 0 and hi < 2 ** 32 else v.view(np.uint64)
    width = 10 if lo < 0 else -(-hi.bit_length() // 7)
    one = u.dtype.type
    out = np.empty((len(u), width), np.uint8)
    n = np.ones(len(u), np.uint8)  # bytes per value
    for j in range(width):
        out[:, j] = u >> one(7 * j)
        if j:
            n += u >= one(1 << (7 * j))
    out &= 0x7F
    k = np.arange(width, dtype=np.uint8)
    out |= (k[None, :] + 1 < n[:, None]).view(np.uint8) << 7  # continuation bits
    return out[k[None, :] < n[:, None]].tobytes()


def _fields() -> dict[str, int]:
    if not _FIELDS:
        _FIELDS.update(_field_numbers())
    return _FIELDS


def _key(number: int, wire: int) -> bytes:
    return varints([number << 3 | wire])


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + varints([len(payload)]) + payload


def _attr(name: str, kind: int, body: bytes) -> bytes:
    f = _fields()
    return _delimited(f["name"], name.encode()) + _key(f["type"], 0) + varints([kind]) + body


def wire_ints(name: str, a: Any) -> bytes:
    return _attr(name, 7, _delimited(_fields()["ints"], varints(a)))


def wire_floats(name: str, a: Any) -> bytes:
    return _attr(name, 6, _delimited(_fields()["floats"], np.asarray(a, dtype="<f4").tobytes()))


def wire_strings(name: str, codes: np.ndarray, table: list[bytes]) -> bytes:
    """The strings `table[codes[i]]`."""
    chunks = np.array([_delimited(_fields()["strings"], t) for t in table] + [b""], dtype=object)[:-1]
    return _attr(name, 8, b"".join(chunks[np.asarray(codes, dtype=np.int64)].tolist()))


def wire_int(name: str, i: int) -> bytes:
    return _attr(name, 2, _key(_fields()["i"], 0) + varints([int(i)]))


def wire_string(name: str, s: bytes) -> bytes:
    return _attr(name, 3, _delimited(_fields()["s"], s))


def wire_tensor(name: str, a: np.ndarray) -> bytes:
    from onnx import numpy_helper

    return _attr(name, 4, _delimited(_fields()["t"], numpy_helper.from_array(a, name).SerializeToString()))


def set_attributes(node: Any, parts: list[bytes]) -> None:
    """Append serialized AttributeProtos to a NodeProto in place (one parse, no copies)."""
    number = _fields()["attribute"]
    node.MergeFromString(b"".join(_delimited(number, p) for p in parts))


V3_AGGREGATES = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
V3_MODES = {LEQ: "BRANCH_LEQ", LT: "BRANCH_LT"}
FLOAT32_EXACT_INTS = 2 ** 24  # leaf indices carried as float32 stay exact below this


def attributes_v3(forest: Forest, dtype: Any, *, aggregate: int = 1, base: np.ndarray | None = None) -> list[bytes]:
    """`TreeEnsembleRegressor` (ai.onnx.ml 3) attributes, serialized: each tree once, each leaf with all its targets.

    Built from the forest's NodeTable (scikit-learn layout: every tree's nodes in a block, root first, which is
    how onnxruntime finds the roots). Outputs are float32 whatever the input, so this is for float32 models.
    """
    table = forest.table
    assert table is not None
    n = len(table.left)
    leaf = table.left < 0
    mode = np.full(n, LEQ, np.uint8) if table.mode is None else np.asarray(table.mode, np.uint8)
    thr = np.where(leaf, 0.0, table.threshold)
    if np.dtype(dtype) == np.float32:
        thr = np.where(mode == LT, ceil32(thr), floor32(thr)).astype(np.float32)
    mode, thr = _lt_as_leq(mode, thr, ~leaf, dtype)
    mode_idx = np.where(leaf, 2, np.where(mode == LT, 1, 0))
    tree = _tree_of_node(table)
    leaves = np.flatnonzero(leaf)
    if forest.leaf_values is not None:  # every leaf carries every target
        vals = forest.leaf_values
        keep = vals != 0
        keep[np.arange(len(leaves)), np.argmax(np.abs(vals), axis=1)] = True  # at least one entry per leaf
        li, ti = np.nonzero(keep)
        t_nodes, t_ids, t_w = leaves[li], ti, vals[li, ti]
    else:
        t_nodes, t_ids, t_w = leaves, forest.leaf_targetids, forest.leaf_weights

    out = [
        wire_ints("nodes_treeids", tree), wire_ints("nodes_nodeids", np.arange(n)),
        wire_ints("nodes_featureids", np.where(leaf, 0, table.feature)),
        wire_strings("nodes_modes", mode_idx, [b"BRANCH_LEQ", b"BRANCH_LT", b"LEAF"]),
        wire_ints("nodes_truenodeids", np.where(leaf, 0, table.left)),
        wire_ints("nodes_falsenodeids", np.where(leaf, 0, table.right)),
        wire_ints("nodes_missing_value_tracks_true", np.where(leaf, 0, table.missing_left)),
        wire_ints("target_treeids", tree[t_nodes]), wire_ints("target_nodeids", t_nodes), wire_ints("target_ids", t_ids),
        wire_int("n_targets", int(forest.n_targets)),
        wire_string("aggregate_function", V3_AGGREGATES[aggregate].encode()),
        wire_string("post_transform", b"NONE"),
    ]
    if base is not None:
        out.append(wire_floats("base_values", base) if np.dtype(dtype) == np.float32 else
                   wire_tensor("base_values_as_tensor", np.asarray(base, np.float64)))
    if np.dtype(dtype) == np.float32:
        out += [wire_floats("nodes_values", thr), wire_floats("target_weights", t_w)]
    else:
        out += [wire_tensor("nodes_values_as_tensor", thr.astype(np.float64)),
                wire_tensor("target_weights_as_tensor", np.asarray(t_w, np.float64))]
    return out


def _tiled(forest: Forest) -> Forest:
    """The trees repeated once per target (v5's one-target-per-leaf rule, the last resort)."""
    n_targets, n_inner, n_leaf = forest.n_targets, len(forest.featureids), len(forest.leaf_targetids)
    rep = np.arange(n_targets, dtype=np.int64)
    inner_shift = np.repeat(rep * n_inner, n_inner)
    leaf_shift = np.repeat(rep * n_leaf, n_inner)

    def tile(a: np.ndarray) -> np.ndarray:
        return np.tile(a, n_targets)

    return Forest(
        featureids=tile(forest.featureids), modes=tile(forest.modes), splits=tile(forest.splits),
        truenodeids=tile(forest.truenodeids) + np.where(tile(forest.trueleafs), leaf_shift, inner_shift),
        trueleafs=tile(forest.trueleafs),
        falsenodeids=tile(forest.falsenodeids) + np.where(tile(forest.falseleafs), leaf_shift, inner_shift),
        falseleafs=tile(forest.falseleafs), missing_true=tile(forest.missing_true),
        tree_roots=(forest.tree_roots[None, :] + (rep * n_inner)[:, None]).ravel(),
        leaf_targetids=np.repeat(rep, n_leaf), leaf_weights=forest.leaf_values.T.ravel().astype(np.float64),
        membership=forest.membership * n_targets, n_targets=n_targets)


@dataclass
class Pending:
    """What a TreeEnsemble node written by `Emitter.ensemble` computes: `forest` summed (`aggregate`) in `dtype`,
    then divided by the number of trees (`average`) and plus `base` (`[n_targets]`, added last)."""

    forest: Forest
    dtype: Any
    aggregate: int = 1
    average: bool = False
    base: np.ndarray | None = None
    width: int | None = None  # the number of columns of the input (for `negate_missing_left`), when known
    original_sum: str = "float64"  # the dtype the original model sums its trees in (XGBoost: float32)


def choose_formulation(forests: list[Pending]) -> str:
    """`v3` (TreeEnsembleRegressor) for all-float32 models without set-membership splits, else `v5`."""
    for p in forests:
        if np.dtype(p.dtype) != np.float32 or p.forest.membership or p.forest.table is None:
            return "v5"
    return "v3"


# see sums_in_double. Off: measured 5-15% slower at 10,000 rows on one thread (benchmarks/bench_tree_sum_dtype.py),
# and issue 18 must not regress; on, the float32 regressors whose float32 sum can exceed the atol near output 0 are
# exact to one rounding and certifiable there (issue 19). The benchmark switches it.
WIDEN_SUMS = False
WIDENED = ("single-target tree sums in float64: Cast(float32 -> double), then TreeEnsembleRegressor (ai.onnx.ml 3) "
           "with double thresholds and leaf weights, which sums in double and rounds to float32 once at the end")


def sums_in_double(p: Pending) -> bool:
    """Whether a float32 single-target ensemble (a regressor's prediction) reads its input cast to double and
    carries double thresholds and leaf weights: onnxruntime's `TreeEnsembleRegressor` then sums in double and
    rounds the sum to float32 once, so the output is float32(the exact sum) up to 2^-53 per addition.

    Behind the switch `WIDEN_SUMS` (off: see there). Chosen where the float32 sum's worst-case rounding (`float32_sum_error`) exceeds the float32 check's atol
    (1e-4): a float32 sum of 100 boosting leaves errs by up to ~1e-3 where its partial sums are large, also at
    outputs near 0, where that is 10x the tolerance (a certificate cannot prove such a conversion near 0, and
    rightly: issue 19). The routing is unchanged (a float32 input, widened exactly to double, compared with
    the double threshold takes the branch the float32 threshold rounded down gives it). Cost measured one-threaded
    (benchmarks/bench_tree_sum_dtype.py): ~5% at 10,000 rows and ~0.5 us at 1 row; an ensemble whose float32 sum
    is provably within the atol keeps the float32 sum. Not for a library that itself sums in float32 (XGBoost):
    its float32 sum is what the artifact should reproduce."""
    return np.dtype(p.dtype) == np.float32 and p.original_sum == "float64" and not p.forest.membership and p.forest.table is not None and \
        p.forest.n_targets == 1 and p.forest.leaf_values is None and float32_sum_error(p) > FLOAT32_SUM_ATOL


FLOAT32_SUM_ATOL = 1e-4  # the float32 check's atol for values (portable.equivalence.compare.TOLERANCES)


def float32_sum_error(p: Pending) -> float:
    """A bound on the absolute part of the rounding of the ensemble's sum in float32 (any order of additions):
    every partial sum lies within [-neg, pos] (the sums of each tree's most negative / positive leaf, and the
    base), each of the n additions errs by at most u |partial sum|: gamma_n = n u / (1 - n u) of max(pos, neg).
    0 where the error is relative to the output anyway (one term, or terms all of one sign)."""
    table = p.forest.table
    leaf = np.flatnonzero(table.left < 0)
    w = np.asarray(p.forest.leaf_weights, np.float64).reshape(-1)
    if len(w) != len(leaf):
        return float("inf")
    tree = _tree_of_node(table)[leaf]
    n_trees = len(table.roots)
    hi = np.full(n_trees, -np.inf)
    lo = np.full(n_trees, np.inf)
    np.maximum.at(hi, tree, w)
    np.minimum.at(lo, tree, w)
    b = np.zeros(1) if p.base is None else np.asarray(p.base, np.float64).reshape(-1)
    if n_trees + int(np.any(b != 0)) <= 1 or lo.min(initial=0.0) >= 0 and b.min(initial=0.0) >= 0 or \
            hi.max(initial=0.0) <= 0 and b.max(initial=0.0) <= 0:
        return 0.0  # one term, or terms of one sign: every partial sum is at most the output, the error relative
    base = float(np.abs(b).max(initial=0.0))
    pos = float(np.maximum(hi, 0).sum()) + base
    neg = float(np.maximum(-lo, 0).sum()) + base
    n = n_trees + 2
    u = 2.0 ** -24
    err = n * u / (1 - n * u) * max(pos, neg)
    return err / n_trees if p.average else err


def narrow_sums(proto: Any) -> Any:
    """A copy of `proto` with the float64 sums of `sums_in_double` written back in float32 (thresholds rounded
    down to float32, `<` ones up, so no split moves; leaf weights and base values rounded): for targets that have
    one precision (NNEF), where the double sum cannot be written."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    if not any(n.op_type == "TreeEnsembleRegressor" and any(a.name == "nodes_values_as_tensor" for a in n.attribute)
               for n in out.graph.node):
        return out
    from ...formats.onnx_trees import without_row_order

    out.graph.CopyFrom(without_row_order(out.graph))  # the rows' order (in double) is not lowered either
    g = out.graph
    producer = {o: n for n in g.node for o in n.output}
    for n in g.node:
        at = {a.name: a for a in n.attribute}
        src = producer.get(n.input[0]) if n.input else None
        if n.op_type != "TreeEnsembleRegressor" or "nodes_values_as_tensor" not in at or src is None:
            continue
        # the widened input: Cast(double) of the float32 tensor, possibly through Neg / Concat
        chain, stack, ok = [], [n.input[0]], True
        while stack:
            t = stack.pop()
            p = producer.get(t)
            if p is None:
                ok = False
                break
            if p.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.DOUBLE for a in p.attribute):
                chain.append(p)
                continue
            if p.op_type not in ("Neg", "Concat"):
                ok = False
                break
            stack += list(p.input)
        if not ok or not chain:
            continue
        modes = [m.decode() if isinstance(m, bytes) else m for m in helper.get_attribute_value(at["nodes_modes"])]
        thr = numpy_helper.to_array(at["nodes_values_as_tensor"].t).astype(np.float64)
        lt = np.array([m == "BRANCH_LT" for m in modes])
        thr32 = np.where(lt, ceil32(thr), floor32(thr)).astype(np.float32)
        w = numpy_helper.to_array(at["target_weights_as_tensor"].t).astype(np.float32)
        new = [a for a in n.attribute if not a.name.endswith("_as_tensor")]
        new += [helper.make_attribute("nodes_values", thr32.tolist()), helper.make_attribute("target_weights", w.tolist())]
        if "base_values_as_tensor" in at:
            new.append(helper.make_attribute("base_values", numpy_helper.to_array(at["base_values_as_tensor"].t)
                                             .astype(np.float32).reshape(-1).tolist()))
        del n.attribute[:]
        n.attribute.extend(new)
        for c in chain:  # the Cast to double becomes an Identity (the nodes between keep their float32 meaning)
            del c.attribute[:]
            c.op_type = "Identity"
    return out


def _is_output(graph: Any, name: str) -> bool:
    """Whether tensor `name` is a graph output, or reaches one through Identity / Cast to float32 alone and is
    read by nothing else (a regressor's prediction; not a score that further float32 arithmetic reads)."""
    from onnx import TensorProto

    outputs = {o.name for o in graph.output}
    seen = set()
    while name not in outputs and name not in seen:
        seen.add(name)
        readers = [n for n in graph.node if name in n.input]
        if len(readers) != 1:
            return False
        n = readers[0]
        if not (n.op_type == "Identity" or (n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT
                                                                         for a in n.attribute))):
            return False
        name = n.output[0]
    return name in outputs


def _widen(graph: Any, pending: list[tuple[Any, "Pending"]]) -> list[tuple[Any, "Pending"]]:
    """Put a Cast(x -> double) before each pending tree node, and make it float64."""
    from dataclasses import replace

    from onnx import TensorProto, helper

    mine = {node.name: p for node, p in pending}
    nodes = list(graph.node)
    del graph.node[:]
    for n in nodes:
        if n.name not in mine:
            graph.node.append(n)
            continue
        x = n.input[0]
        n.input[0] = f"{n.name}_x_double"
        graph.node.extend([helper.make_node("Cast", [x], [n.input[0]], to=TensorProto.DOUBLE, name=f"{n.name}_to_double"),
                           n])
    by_name = {n.name: n for n in graph.node}
    return [(by_name[name], replace(p, dtype=np.float64)) for name, p in mine.items()]


PENDING_KEY = "portable_pending"  # the attribute that names a node's entry in PENDING until attach_pending
PENDING: dict[str, Pending] = {}  # PENDING_KEY value -> what the node's attributes will be

V3 = "TreeEnsembleRegressor (ai.onnx.ml 3), one traversal per tree"
V3_SPLIT = "TreeEnsembleRegressor (ai.onnx.ml 3) per class, single-target trees, one traversal per tree"
V3_PER_TREE = ("TreeEnsembleRegressor (ai.onnx.ml 3) per tree, leaf indices + Gather + ReduceSum, one traversal "
               "per tree")
V5_SPLIT = "TreeEnsemble (ai.onnx.ml 5) per class, single-target trees, one traversal per tree"
# From this many targets per leaf, a forest whose rows are not ordered (`_row_order`) is written as one single-target
# op per tree. Ordered rows make onnxruntime's multi-target loop as fast as the per-tree form at 10,000 rows (the
# 10-class forest of bench_tree_speed: 44.7 vs 45.6 ms) and 3.7x faster at 1 row (11 vs 42 us): one operator there.
PER_TREE_MIN_TARGETS = 4


def _per_tree_leaf_indices(forest: Forest) -> list[Forest] | None:
    """A multi-target forest as one single-target forest per tree whose leaf weights are the leaves' indices in
    `forest.leaf_values` (so a `Gather` of that table reads each tree's leaf values), or None when its trees are
    not stored one block after the other, or there are too many leaves for float32 indices.

    onnxruntime's single-target loop adds one number per tree and row; with several targets per leaf it walks
    a list of (target, weight) pairs per leaf instead, which costs more than the traversal itself for 10 classes
    (benchmarks/RESULTS.md, "Tree ensembles: inference speed by formulation"). Only the fields
    `attributes_v3` reads are set in the returned forests."""
    from dataclasses import replace

    t = forest.table
    if t is None or forest.leaf_values is None or t.members or len(forest.leaf_values) >= FLOAT32_EXACT_INTS:
        return None
    n = len(t.left)
    roots = np.asarray(t.roots, np.int64)
    if len(roots) == 0 or roots[0] != 0 or np.any(np.diff(roots) <= 0):
        return None
    bounds = np.append(roots, n)
    block = np.repeat(np.arange(len(roots)), np.diff(bounds))
    leaf = t.left < 0
    inner = np.flatnonzero(~leaf)
    if np.any(block[t.left[inner]] != block[inner]) or np.any(block[t.right[inner]] != block[inner]):
        return None
    leaf_rank = np.cumsum(leaf) - 1
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        left, right, is_leaf = t.left[lo:hi], t.right[lo:hi], leaf[lo:hi]
        sub = NodeTable(np.where(is_leaf, -1, left - lo), np.where(is_leaf, -1, right - lo), t.feature[lo:hi],
                        t.threshold[lo:hi], t.missing_left[lo:hi], t.values[lo:hi, :1], np.zeros(1, np.int64),
                        None if t.mode is None else t.mode[lo:hi])
        out.append(replace(forest, table=sub, leaf_values=None, leaf_tree=None, n_targets=1,
                           leaf_targetids=np.zeros(int(is_leaf.sum()), np.int64),
                           leaf_weights=leaf_rank[lo:hi][is_leaf].astype(np.float64)))
    return out


def _attach_per_tree(graph: Any, node: Any, parts: list[Forest], p: Pending, opset: int,
                     attach: dict[str, list[bytes]]) -> list[Any]:
    """`node` becomes the first of one single-target `TreeEnsembleRegressor` per tree (leaf indices, see
    `_per_tree_leaf_indices`); returns the nodes that follow it: the other trees, then `[T * N, 1]` indices
    (Concat on axis 0) -> `[T, N]` -> int64 -> Gather of the `[leaves, targets]` table -> ReduceSum over the
    trees -> Div by T for a mean -> Add of the base values. Summing over the leading axis of `[T, N, targets]`
    measured faster than over the middle one of `[N, T, targets]`."""
    from onnx import TensorProto, helper, numpy_helper

    out, dtype, forest = node.output[0], p.dtype, p.forest
    n_trees = len(parts)
    trees = []
    for k, part_forest in enumerate(parts):
        part = node if k == 0 else helper.make_node("TreeEnsembleRegressor", list(node.input), [f"{out}_leaf{k}"],
                                                    name=f"{node.name}_tree{k}", domain=ML)
        part.op_type = "TreeEnsembleRegressor"
        attach[part.name] = attributes_v3(part_forest, dtype, aggregate=1)
        trees.append(part)
    node.output[0] = f"{out}_leaf0"
    table_name, shape, axes = f"{out}_leaf_values", f"{out}_trees_rows", f"{out}_tree_axis"
    graph.initializer.append(numpy_helper.from_array(forest.leaf_values.astype(dtype), table_name))
    graph.initializer.append(numpy_helper.from_array(np.array([n_trees, -1], np.int64), shape))
    steps = [(None, None)]
    if p.average:
        steps.append(("Div", np.array([float(n_trees)])))
    if p.base is not None:
        steps.append(("Add", p.base.reshape(1, -1)))
    total = out if len(steps) == 1 else f"{out}_sum"
    if opset >= 13:
        graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), axes))
        reduce = helper.make_node("ReduceSum", [f"{out}_gathered", axes], [total], keepdims=0, name=f"{node.name}_sum")
    else:
        reduce = helper.make_node("ReduceSum", [f"{out}_gathered"], [total], axes=[0], keepdims=0,
                                  name=f"{node.name}_sum")
    after = trees[1:] + [
        helper.make_node("Concat", [q.output[0] for q in trees], [f"{out}_leaves"], axis=0, name=f"{node.name}_concat"),
        helper.make_node("Reshape", [f"{out}_leaves", shape], [f"{out}_leaves_tn"], name=f"{node.name}_reshape"),
        helper.make_node("Cast", [f"{out}_leaves_tn"], [f"{out}_leafidx"], to=TensorProto.INT64,
                         name=f"{node.name}_cast"),
        helper.make_node("Gather", [table_name, f"{out}_leafidx"], [f"{out}_gathered"], axis=0,
                         name=f"{node.name}_gather"),
        reduce,
    ]
    prev = total
    for i, (op, value) in enumerate(steps[1:], 1):
        cname = f"{out}_{op.lower()}_const"
        graph.initializer.append(numpy_helper.from_array(value.astype(dtype), cname))
        nxt = out if i == len(steps) - 1 else f"{out}_{op.lower()}"
        after.append(helper.make_node(op, [prev, cname], [nxt], name=f"{node.name}_{op.lower()}"))
        prev = nxt
    return after


def _tree_targets(forest: Forest) -> np.ndarray | None:
    """The one target each tree feeds (boosting: a tree per class and round), or None when a tree feeds several
    targets or a target has no tree."""
    if forest.table is None or forest.leaf_values is not None or forest.n_targets < 2:
        return None
    leaf_tree = _tree_of_node(forest.table)[forest.table.left < 0]
    n_trees = len(forest.table.roots)
    lo = np.full(n_trees, forest.n_targets, np.int64)
    hi = np.full(n_trees, -1, np.int64)
    np.minimum.at(lo, leaf_tree, forest.leaf_targetids)
    np.maximum.at(hi, leaf_tree, forest.leaf_targetids)
    if np.any(lo != hi) or len(np.unique(lo)) != forest.n_targets:
        return None
    return lo


def _trees_subset(forest: Forest, keep: np.ndarray) -> Forest:
    """The trees `keep` (a mask over trees) of a one-target-per-leaf forest, as one single-target forest."""
    from dataclasses import replace

    t = forest.table
    assert t is not None
    node_keep = keep[_tree_of_node(t)]
    remap = np.cumsum(node_keep) - 1
    left, right = t.left[node_keep], t.right[node_keep]
    left = np.where(left < 0, -1, remap[np.maximum(left, 0)])
    right = np.where(right < 0, -1, remap[np.maximum(right, 0)])
    members = {int(remap[i]): m for i, m in (t.members or {}).items() if node_keep[i]} or None
    sub = NodeTable(left, right, t.feature[node_keep], t.threshold[node_keep], t.missing_left[node_keep],
                    t.values[node_keep], remap[t.roots[keep]], None if t.mode is None else t.mode[node_keep],
                    members)
    leaf_keep = node_keep[t.left < 0]
    return replace(forest, table=sub, leaf_targetids=np.zeros(int(leaf_keep.sum()), np.int64),
                   leaf_weights=forest.leaf_weights[leaf_keep], n_targets=1)


def _negated_input(graph: Any, node: Any) -> tuple[str, list[Any]]:
    """The tensor `[x, -x]` for the tree node's input x, and the nodes that compute it.

    When x is scikit-learn's float32 rounding of a double input (`Cast(double)` of `Cast(float)`), the
    negation and the Concat run on the float32 rounding (`ROUND_FIRST`; rounding to nearest is symmetric, so it
    is the same tensor), then one Cast to double: half the bytes through Neg / Concat / the rows' order than in
    double, and the trees of `_float32_walk` read the float32 tensor itself. The lowering to NNEF looks through
    Neg / Concat for the rounding (`onnx_standard._Builder.float32_rounded_source`)."""
    from onnx import helper

    x, src, producer = _unrounded_source(graph, node)
    if src != x and ROUND_FIRST:
        x32 = producer[x].input[0]
        neg, both = f"{node.name}_neg_x", f"{node.name}_x_negx"
        nodes = [helper.make_node("Neg", [x32], [neg], name=f"{node.name}_neg"),
                 helper.make_node("Concat", [x32, neg], [both], axis=1, name=f"{node.name}_x_negx")]
        return _widened(both, nodes, f"{node.name}_x_negx")
    neg, both = f"{node.name}_neg_x", f"{node.name}_x_negx"
    nodes = [helper.make_node("Neg", [src], [neg], name=f"{node.name}_neg"),
             helper.make_node("Concat", [src, neg], [both], axis=1, name=f"{node.name}_x_negx")]
    return _rounded_again(both, nodes, src != x, f"{node.name}_x_negx")


def _unrounded_source(graph: Any, node: Any) -> tuple[str, str, dict[str, Any]]:
    """(x, the tensor x rounds, the producers by output) for the tree node's input x: when x is scikit-learn's
    float32 rounding of a double input (`Cast(double)` of `Cast(float)`), the double input before the rounding."""
    from onnx import TensorProto

    producer = {o: n for n in graph.node for o in n.output}

    def cast_to(n: Any, to: int) -> bool:
        return n is not None and n.op_type == "Cast" and any(a.name == "to" and a.i == to for a in n.attribute)

    x = node.input[0]
    outer = producer.get(x)
    inner = producer.get(outer.input[0]) if cast_to(outer, TensorProto.DOUBLE) else None
    return x, (inner.input[0] if cast_to(inner, TensorProto.FLOAT) else x), producer


ROUND_FIRST = True  # see _negated_input; the switch lets benchmarks time the previous order side by side


def _widened(both: str, nodes: list[Any], name: str) -> tuple[str, list[Any]]:
    """`both` (a float32 tensor computed from a float32 rounding) cast to double, and the nodes."""
    from onnx import TensorProto, helper

    return f"{both}_32d", nodes + [helper.make_node("Cast", [both], [f"{both}_32d"], to=TensorProto.DOUBLE,
                                                    name=f"{name}_32d")]


def _rounded_again(both: str, nodes: list[Any], rounded: bool, name: str) -> tuple[str, list[Any]]:
    """`both` (and the nodes computing it), rounded to float32 and back when the tree input x was so rounded."""
    from onnx import TensorProto, helper

    if rounded:
        nodes += [helper.make_node("Cast", [both], [f"{both}_32"], to=TensorProto.FLOAT, name=f"{name}_32"),
                  helper.make_node("Cast", [f"{both}_32"], [f"{both}_32d"], to=TensorProto.DOUBLE,
                                   name=f"{name}_32d")]
        both = f"{both}_32d"
    return both, nodes


def _oriented_input(graph: Any, node: Any, kinds: list[str]) -> tuple[str, list[Any]] | None:
    """The tensor of the column kinds `kinds` (`ORIENT_KINDS`) of the tree node's input x, and the nodes that
    compute it, or None when x's element type is not known here. Like `_negated_input`, computed before the
    float32 rounding of a double input, which is then applied to the whole (rounding keeps NaN, LOWEST32 and signs)."""
    from onnx import TensorProto, helper, numpy_helper

    x, src, producer = _unrounded_source(graph, node)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in list(graph.input) + list(graph.value_info)}.get(src)
    if elem is None and producer.get(src) is not None and producer[src].op_type == "Cast":
        elem = next(a.i for a in producer[src].attribute if a.name == "to")
    dtype = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}.get(elem or 0)
    if dtype is None:
        return None
    first = src != x and ROUND_FIRST  # the columns made from the float32 rounding, then one Cast (_negated_input)
    if first:
        src, dtype = producer[x].input[0], np.float32
    base = node.name
    nodes: list[Any] = []
    made = {"x": src}
    if "negx" in kinds or "negxlo" in kinds:
        made["negx"] = f"{base}_neg_x"
        nodes.append(helper.make_node("Neg", [src], [made["negx"]], name=f"{base}_neg"))
    if "xlo" in kinds or "negxlo" in kinds:
        ninf = f"{base}_ninf"
        graph.initializer.append(numpy_helper.from_array(np.array(LOWEST32, dtype), ninf))
        for kind, of in (("xlo", "x"), ("negxlo", "negx")):
            if kind in kinds:  # NaN as LOWEST32: IsNaN of the very tensor the Where fills (read as an imputation)
                made[kind] = f"{base}_{kind}"
                nodes += [helper.make_node("IsNaN", [made[of]], [f"{base}_{kind}_nan"], name=f"{base}_{kind}_nan"),
                          helper.make_node("Where", [f"{base}_{kind}_nan", ninf, made[of]], [made[kind]],
                                           name=f"{base}_{kind}")]
    if len(kinds) == 1:
        both = made[kinds[0]]
    else:
        both = f"{base}_oriented_x"
        nodes.append(helper.make_node("Concat", [made[k] for k in kinds], [both], axis=1, name=f"{base}_oriented_x"))
    if first:
        return _widened(both, nodes, f"{base}_oriented")
    return _rounded_again(both, nodes, src != x, f"{base}_oriented")


ROW_ORDER = ("rows ordered by their leaves in the first two trees before the forest (TreeEnsembleRegressor, TopK, "
             "GatherND) and put back after (ScatterND)")
ROW_ORDER_KEY_TREES = 2  # the rows are ordered by their leaves in the forest's first two trees
ROW_ORDER_MAX_SHARE = 40  # the key trees are copied: at most 1/40 of the split nodes (80 trees of equal size or more)
ROW_ORDER_TAG = "_roworder_"  # in the names of the nodes that order the rows (formats.onnx_trees.without_row_order)


def _key_trees(forest: Forest) -> Forest | None:
    """The forest's first `ROW_ORDER_KEY_TREES` trees as a single-target forest whose sum is the rows' key:
    each leaf weighs its rank in node order (scikit-learn's depth-first order: neighbouring ranks share most of
    their path), the first tree's ranks scaled past every combination of the next ones', so that the key
    orders the rows by their leaf in the first tree, then in the second (exact integers in float32 below
    2**24). None when those trees' nodes are not one block each from node 0, the forest has set-membership
    splits or fewer trees, there are too many leaves for the key, or the copy would add more than
    1 / `ROW_ORDER_MAX_SHARE` of the forest's split nodes (the artifact stays within 1.05x of the original's).
    Only the fields `attributes_v3` reads are set."""
    from dataclasses import replace

    t = forest.table
    k = ROW_ORDER_KEY_TREES
    if t is None or t.members or forest.membership or len(t.roots) <= k:
        return None
    roots = np.asarray(t.roots, np.int64)
    if roots[0] != 0 or np.any(np.diff(roots[:k + 1]) <= 0) or np.any(roots[k + 1:] < roots[k]):
        return None
    hi = int(roots[k])
    bounds = roots[:k + 1]
    block = np.repeat(np.arange(k), np.diff(bounds))
    left, right = t.left[:hi], t.right[:hi]
    is_leaf = left < 0
    inner = np.flatnonzero(~is_leaf)
    if np.any(left[inner] >= hi) or np.any(right[inner] >= hi) or np.any(block[left[inner]] != block[inner]) or \
            np.any(block[right[inner]] != block[inner]):
        return None
    if len(inner) == 0 or len(inner) * ROW_ORDER_MAX_SHARE > int(np.sum(t.left >= 0)):
        return None  # (key trees without a split would order nothing)
    leaves_per_tree = np.bincount(block[is_leaf], minlength=k)
    if float(np.prod(leaves_per_tree.astype(np.float64))) >= FLOAT32_EXACT_INTS:
        return None
    scale = np.append(np.cumprod(leaves_per_tree[::-1])[::-1][1:], 1)  # tree j's ranks times the leaves after it
    rank = np.cumsum(is_leaf) - 1 - np.r_[0, np.cumsum(leaves_per_tree)][block]  # the leaf's rank in its tree
    weights = (rank * scale[block])[is_leaf].astype(np.float64)
    sub = NodeTable(np.where(is_leaf, -1, left), np.where(is_leaf, -1, right), t.feature[:hi], t.threshold[:hi],
                    t.missing_left[:hi], t.values[:hi, :1], roots[:k], None if t.mode is None else t.mode[:hi])
    return replace(forest, table=sub, leaf_values=None, leaf_tree=None, n_targets=1,
                   leaf_targetids=np.zeros(int(is_leaf.sum()), np.int64), leaf_weights=weights)


ROOT_ORDER = ("rows ordered by the outcomes of the first trees' root splits before the forest (Gather, Less, Cast, "
              "MatMul, TopK, GatherND) and put back after (ScatterND)")
ROOT_ORDER_BITS = 24  # root splits in the key: sums of 2**j below 2**24 stay exact integers in float32
ROOT_ORDER_MIN_BITS = 12  # fewer distinct root splits gained little (benchmarks/RESULTS.md): not ordered
ROOT_ORDER_MAX_DEPTH = 4  # measured for depth-3 boosting; depth-6 boosting gained ~1.05x before the key's cost


@dataclass
class RootKey:
    """The rows' key `sum_j 2**(k-1-j) * (x[:, columns[j]] < thresholds[j])` (see `_key_roots`)."""

    columns: np.ndarray
    thresholds: np.ndarray
    width: int | None = None  # the number of columns of the tree input, when known


def _key_roots(forest: Forest) -> RootKey | None:
    """A key for boosting's shallow trees: the outcomes of the first `ROOT_ORDER_BITS` distinct root splits of the
    forest (the rows ordered by the first root split's outcome, then the second's...), or None when the trees are
    deeper than `ROOT_ORDER_MAX_DEPTH`, have set-membership splits, or have fewer than `ROOT_ORDER_MIN_BITS`
    distinct root splits.

    Boosting's trees fit different residuals, so the leaves of its first trees say little about the paths through
    the others (the key of `_key_trees`); but its trees split first on the same few features, and rows sorted by
    those splits' outcomes take predictable branches at the top of most trees. The key reads the forest's own
    input columns and thresholds and is computed with standard operators (a `TreeEnsembleRegressor` of 24 stumps
    cost onnxruntime ~12 ns per stump and row, more than the order gained); `<` for every split (a `<=` split
    differs only at x == t, and the key only orders the rows: every row is computed exactly as before)."""
    t = forest.table
    if t is None or t.members or forest.membership:
        return None
    inner = t.left >= 0
    level = np.asarray(t.roots, np.int64)  # the nodes at depth 0, 1, ...: none may split below the limit
    for _ in range(ROOT_ORDER_MAX_DEPTH):
        level = level[inner[level]]
        level = np.concatenate([t.left[level], t.right[level]])
    if inner[level].any():
        return None
    seen: set[tuple[int, float]] = set()
    columns, thresholds = [], []
    for r in np.asarray(t.roots, np.int64):
        if not inner[r] or (int(t.feature[r]), float(t.threshold[r])) in seen:
            continue
        seen.add((int(t.feature[r]), float(t.threshold[r])))
        columns.append(int(t.feature[r]))
        thresholds.append(float(t.threshold[r]))
        if len(columns) == ROOT_ORDER_BITS:
            break
    if len(columns) < ROOT_ORDER_MIN_BITS:
        return None
    return RootKey(np.asarray(columns, np.int64), np.asarray(thresholds, np.float64))


def _key_nodes(graph: Any, src: str, key: "Forest | RootKey", dtype: Any, attach: dict[str, list[bytes]], tag: str,
               family: str) -> list[Any]:
    """Nodes computing the rows' key `{tag}key` from the tree input `src`: a tree ensemble for a `Forest` key
    (`_key_trees`), Gather / Less / Cast / MatMul for a `RootKey`."""
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(key, RootKey):
        elem = TensorProto.DOUBLE if np.dtype(dtype) == np.float64 else TensorProto.FLOAT
        k = len(key.columns)
        graph.initializer.extend([
            numpy_helper.from_array(key.thresholds.astype(dtype), f"{tag}keythr"),
            numpy_helper.from_array((2.0 ** np.arange(k - 1, -1, -1)).astype(dtype).reshape(k, 1), f"{tag}keypow")])
        producer = next((n for n in graph.node if src in n.output), None)
        cast_to = [a.i for a in producer.attribute if a.name == "to"] if producer is not None and \
            producer.op_type == "Cast" else [elem]
        if key.width and cast_to == [elem]:  # the columns picked by a 0/1 matrix (onnxruntime's Gather on axis 1
            # cost ~3x more); a NaN or inf in x spreads to every key column: only the rows' order depends on the key
            pick = np.zeros((key.width, k), dtype)
            pick[key.columns, np.arange(k)] = 1
            graph.initializer.append(numpy_helper.from_array(pick, f"{tag}keycols_idx"))
            gather = helper.make_node("MatMul", [src, f"{tag}keycols_idx"], [f"{tag}keycols"], name=f"{tag}keycols")
        else:
            graph.initializer.append(numpy_helper.from_array(key.columns, f"{tag}keycols_idx"))
            gather = helper.make_node("Gather", [src, f"{tag}keycols_idx"], [f"{tag}keycols"], axis=1,
                                      name=f"{tag}keycols")
        return [
            gather,
            helper.make_node("Less", [f"{tag}keycols", f"{tag}keythr"], [f"{tag}keycmp"], name=f"{tag}keycmp"),
            helper.make_node("Cast", [f"{tag}keycmp"], [f"{tag}keybits"], to=elem, name=f"{tag}keybits"),
            helper.make_node("MatMul", [f"{tag}keybits", f"{tag}keypow"], [f"{tag}key"], name=f"{tag}key"),
        ]
    if family == "v3":
        key_node = helper.make_node("TreeEnsembleRegressor", [src], [f"{tag}key"], name=f"{tag}key", domain=ML)
        attach[key_node.name] = attributes_v3(key, dtype, aggregate=1)
    else:  # TreeEnsemble v5 (float64 models): the key's integers are exact in its output dtype
        from dataclasses import replace

        assert key.table is not None
        key_node = helper.make_node("TreeEnsemble", [src], [f"{tag}key"], name=f"{tag}key", domain=ML)
        attach[key_node.name] = attributes(replace(build(key.table), leaf_weights=np.asarray(key.leaf_weights,
                                                                                           np.float64)),
                                           dtype, aggregate=1)
    return [key_node]


def _row_order(graph: Any, node: Any, key_forest: "Forest | RootKey", dtype: Any, attach: dict[str, list[bytes]],
               family: str = "v3", opset: int = 13) -> tuple[list[Any], list[Any]]:
    """Nodes that give the tree node `node` its input rows sorted by the key `key_forest` computes (see
    `_key_trees`), and nodes that put its output (`node.output[0]` as it is now, whatever computes it in the
    end) back in the input's row order: (nodes before, nodes after). `node`'s input and output are renamed.

    onnxruntime walks one row at a time through a tree, branching at each split: rows in random order make
    the uncertain splits mispredicted branches. Rows that reach the same leaves of two trees of a bagged forest
    mostly take the same paths in its other trees, so in that order the branches are predictable
    (benchmarks/RESULTS.md, "Tree ensembles: inference speed by formulation"). Each row is computed exactly as
    before and only moved: exact in every dtype. The graph's readers see it without
    (`formats.onnx_trees.without_row_order`)."""
    from onnx import helper, numpy_helper

    tag, src, out = f"{node.name}{ROW_ORDER_TAG}", node.input[0], node.output[0]
    # the key is [N, 1]: TopK on axis 0 gives the permutation as [N, 1] indices, which GatherND reads the rows
    # with and ScatterND puts the output rows back with (5 nodes with the key's; the 10 of the first form,
    # Reshape / Shape / Slice / TopK / Gather ... Reshape / Shape / Expand / ScatterElements, cost ~2 us more
    # per call at 1 row)
    if opset >= 15:
        count = [helper.make_node("Shape", [f"{tag}key"], [f"{tag}n"], start=0, end=1, name=f"{tag}n")]
    else:
        graph.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), f"{tag}zero"),
                                  numpy_helper.from_array(np.array([1], np.int64), f"{tag}one")])
        count = [helper.make_node("Shape", [f"{tag}key"], [f"{tag}n_all"], name=f"{tag}shape"),
                 helper.make_node("Slice", [f"{tag}n_all", f"{tag}zero", f"{tag}one"], [f"{tag}n"], name=f"{tag}n")]
    before = _key_nodes(graph, src, key_forest, dtype, attach, tag, family) + count + [
        helper.make_node("TopK", [f"{tag}key", f"{tag}n"], [f"{tag}sorted_keys", f"{tag}perm"], axis=0,
                         largest=0, sorted=1, name=f"{tag}topk"),
        helper.make_node("GatherND", [src, f"{tag}perm"], [f"{tag}rows"], name=f"{tag}rows"),
    ]
    node.input[0] = f"{tag}rows"
    sorted_out = f"{tag}out"
    after = [helper.make_node("ScatterND", [sorted_out, f"{tag}perm", sorted_out], [out], name=f"{tag}back")]
    node.output[0] = sorted_out
    return before, after



# see _float32_walk; the switch lets benchmarks time the previous (float64) traversal side by side
WALK_FLOAT32 = True
WALKED32 = ("TreeEnsemble (ai.onnx.ml 5) in float32 on the float32-rounded input (the thresholds rounded down to "
            "float32: the same splits), leaf indices + Gather of the float64 leaf table + ReduceSum, one traversal "
            "per tree")


def _float32_walk(graph: Any, node: Any, forest: Forest, aggregate: int, extra: list[Any]) -> str | None:
    """For a float64 leaf-index forest (several targets per leaf) that compares float32 values: the float32 tensor
    whose Cast to double the tree node reads, or None.

    scikit-learn's trees compare float32(x) with double thresholds t, and for a float32 x, `x <= t` iff
    `x <= floor32(t)` (`x < t` iff `x < ceil32(t)`), NaN failing both: the trees walk the float32 values themselves
    with the same splits, and the leaf indices they write (exact integers in float32 below 2**24) read the float64
    leaf table as before, so the outputs are the same bits. onnxruntime walks float32 rows faster than double ones
    (1.08x at 10,000 rows for the 3- and 10-class forests of benchmarks/bench_tree_speed.py); single-target
    forests keep their double sums in the operator (the leaf-index form cost them more than it saved).
    `extra`: nodes not yet in the graph (the negated input's)."""
    if not WALK_FLOAT32 or forest.leaf_values is None or aggregate != 1 or forest.membership or \
            forest.table is None or len(forest.leaf_targetids) >= FLOAT32_EXACT_INTS:
        return None
    return _float32_source(graph, node, extra)


def _float32_source(graph: Any, node: Any, extra: list[Any]) -> str | None:
    """The float32 tensor whose Cast to double the tree node reads, when it is the float32 rounding of the input
    or the float32 columns `_negated_input` / `_oriented_input` made from it (`extra`: nodes not yet in the
    graph), else None."""
    from onnx import TensorProto

    producer = {o: n for n in list(graph.node) + list(extra) for o in n.output}

    def cast_to(n: Any, to: int) -> bool:
        return n is not None and n.op_type == "Cast" and any(a.name == "to" and a.i == to for a in n.attribute)

    outer = producer.get(node.input[0])
    inner = producer.get(outer.input[0]) if cast_to(outer, TensorProto.DOUBLE) else None
    # the rounding itself, or the float32 columns _negated_input / _oriented_input made from it
    if not cast_to(inner, TensorProto.FLOAT) and not any(inner is n for n in extra):
        return None
    return outer.input[0]


def attach_pending(graph: Any, opset: int = 13) -> str | None:
    """Write the tree ensembles of this conversion (see Emitter.ensemble) in one formulation for the whole graph.

    Chosen by measurement (benchmarks/bench_tree_speed.py; onnxruntime runs a single-target ensemble on a
    faster path than a multi-target one, and every extra node costs ~1 us per call):

    - float32 (`v3`): `TreeEnsembleRegressor` with the averaging and the base values folded into
      `aggregate_function` / `base_values` (the same float32 operations onnxruntime would run as Div / Add
      nodes). When each tree feeds one target (boosting: a tree per class and round), one single-target
      ensemble per target, then `Concat`: the trees are still stored and traversed once.
    - float64 or set-membership splits (`v5`): `TreeEnsemble` v5 (which has no base values), multi-target
      forests as leaf indices + Gather + ReduceSum, then Div / Add nodes in float64.

    Returns the formulation(s) used (`None` when the graph has no pending ensemble).
    """
    from dataclasses import replace

    from onnx import TensorProto, helper, numpy_helper

    pending = []
    for node in graph.node:
        if node.op_type != "TreeEnsemble":
            continue
        keys = [a for a in node.attribute if a.name == PENDING_KEY]
        if keys and keys[0].s.decode() in PENDING:
            pending.append((node, PENDING.pop(keys[0].s.decode())))
            node.attribute.remove(keys[0])
    from .boosting import oblivious_formulation

    # CatBoost's symmetric trees written with standard operators (boosting._oblivious) have no pending node
    oblivious = oblivious_formulation(graph)
    if not pending:
        return oblivious
    family = choose_formulation([p for _, p in pending])
    widened = family == "v3" and WIDEN_SUMS and all(sums_in_double(p) and _is_output(graph, node.output[0])
                                                    for node, p in pending)
    if widened:  # see sums_in_double
        pending = _widen(graph, pending)
    used = set()
    attach: dict[str, list[bytes]] = {}   # node name -> its serialized attributes, set once the graph is rebuilt
    new_nodes: dict[str, list[Any]] = {}  # node name -> the nodes that come right after it
    before: dict[str, list[Any]] = {}     # node name -> the nodes that come right before it
    negated: dict[tuple[str, int], str] = {}  # (input, width) -> the tensor [x, -x]
    for node, p in pending:
        forest, dtype, aggregate = p.forest, p.dtype, p.aggregate
        oriented = orient_by_cover(forest, p.width)
        n_kinds = 1  # how many column kinds (x, -x, ...) of width p.width the trees read
        made = _oriented_input(graph, node, oriented[1]) if oriented is not None and oriented[1] != ["x"] else None
        if oriented is not None and (made is not None or oriented[1] == ["x"]):  # see orient_by_cover
            forest = oriented[0]
            n_kinds = len(oriented[1])
            if made is not None:
                node.input[0], before[node.name] = made
            used.add(ORIENTED)
            untracked = None
        else:
            untracked = negate_missing_left(forest, p.width)
        if untracked is not None:  # see negate_missing_left; measured in benchmarks/bench_tree_formulations.py
            forest = untracked
            n_kinds = 2
            key = (node.input[0], int(p.width or 0))
            if key not in negated:
                negated[key], before[node.name] = _negated_input(graph, node)
            node.input[0] = negated[key]
            used.add(NEGATED)
        walk32 = rows32 = None  # float64 forests that compare float32 values: see _float32_walk
        if family == "v5" and np.dtype(dtype) == np.float64:
            made_here = [n for v in before.values() for n in v]
            walk32 = _float32_walk(graph, node, forest, aggregate, made_here)
            if walk32 is not None:
                node.input[0] = walk32
            elif ROUND_FIRST:  # the rows' order (if any) moves float32 rows, cast to double after (see below)
                rows32 = _float32_source(graph, node, made_here)
        walk_dtype = np.float32 if walk32 is not None else dtype
        order: tuple[list[Any], list[Any]] = ([], [])
        key_forest: Forest | RootKey | None = None
        if opset >= 11 and p.average:  # a bagged forest: see _row_order
            key_forest = _key_trees(forest)
            how = ROW_ORDER
        elif opset >= 11 and forest.n_targets == 1:  # boosting's shallow trees: see _key_roots (measured for one
            # target; GradientBoostingClassifier's 3 per-class ensembles gained nothing after the key's own cost)
            key_forest = _key_roots(forest)
            if key_forest is not None and p.width:  # the columns the forest reads: x, [x, -x] or the oriented kinds
                key_forest.width = n_kinds * int(p.width)
            how = ROOT_ORDER
        if key_forest is not None:
            if rows32 is not None:  # the key and the GatherND on the float32 columns, one Cast after
                node.input[0] = rows32
            order = _row_order(graph, node, key_forest, np.float32 if rows32 is not None else walk_dtype, attach,
                               family, opset)
            before[node.name] = before.get(node.name, []) + order[0]
            if rows32 is not None:
                wide = f"{node.name}_sorted_32d"  # (no ROW_ORDER_TAG: not a part of the order's pattern)
                before[node.name].append(helper.make_node("Cast", [node.input[0]], [wide], to=TensorProto.DOUBLE,
                                                          name=wide))
                node.input[0] = wide
            used.add(how)
        out = node.output[0]
        after: list[Any] = []
        if family == "v3":
            # not for rows ordered before the forest (see PER_TREE_MIN_TARGETS)
            parts = (_per_tree_leaf_indices(forest) if aggregate == 1 and forest.n_targets >= PER_TREE_MIN_TARGETS
                     and len(forest.tree_roots) > 1 and not order[0] else None)
            if parts is not None:  # many targets per leaf: one single-target ensemble per tree, then a Gather
                new_nodes[node.name] = _attach_per_tree(graph, node, parts, replace(p, forest=forest), opset,
                                                        attach) + order[1]
                used.add(V3_PER_TREE)
                continue
            targets = None if p.average or aggregate != 1 else _tree_targets(forest)
            base = p.base
            if targets is not None:  # one single-target ensemble per target, then Concat
                parts = []
                for k in range(forest.n_targets):
                    part = node if k == 0 else helper.make_node("TreeEnsembleRegressor", list(node.input),
                                                                [f"{out}_t{k}"], name=f"{node.name}_t{k}",
                                                                domain=ML)
                    part.op_type = "TreeEnsembleRegressor"
                    attach[part.name] = attributes_v3(_trees_subset(forest, targets == k), dtype, aggregate=1,
                                                      base=None if base is None else base[k:k + 1])
                    parts.append(part)
                node.output[0] = f"{out}_t0"
                after = parts[1:] + [helper.make_node("Concat", [q.output[0] for q in parts], [out], axis=1,
                                                      name=f"{node.name}_concat")]
                used.add(V3_SPLIT)
            else:
                node.op_type = "TreeEnsembleRegressor"
                agg = 0 if p.average and aggregate == 1 else aggregate
                attach[node.name] = attributes_v3(forest, dtype, aggregate=agg, base=base)
                used.add(V3)
            new_nodes[node.name] = after + order[1]
            continue
        multi = forest.leaf_values is not None
        n_trees = len(forest.tree_roots)
        exact = np.dtype(dtype) == np.float64 or len(forest.leaf_targetids) < FLOAT32_EXACT_INTS
        post = []
        if p.average:
            post.append(("Div", np.array([float(n_trees)])))
        if p.base is not None:
            post.append(("Add", p.base.reshape(1, -1)))
        final = out
        if post:  # the ensemble writes the sum; Div / Add nodes make the output
            out = f"{final}_sum"
            node.output[0] = out
        targets = None if multi or p.average or aggregate != 1 else _tree_targets(forest)
        if targets is not None:  # one single-target ensemble per target, then Concat (as for v3; see V5_SPLIT)
            parts = []
            for k in range(forest.n_targets):
                part = node if k == 0 else helper.make_node("TreeEnsemble", list(node.input), [f"{out}_t{k}"],
                                                            name=f"{node.name}_t{k}", domain=ML)
                sub = _trees_subset(forest, targets == k).table
                assert sub is not None
                attach[part.name] = attributes(build(sub), dtype, aggregate=1)
                parts.append(part)
            node.output[0] = f"{out}_t0"
            after = parts[1:] + [helper.make_node("Concat", [q.output[0] for q in parts], [out], axis=1,
                                                  name=f"{node.name}_concat")]
            used.add(V5_SPLIT)
        elif not multi:
            attach[node.name] = attributes(forest, dtype, aggregate=aggregate)
            used.add("TreeEnsemble (ai.onnx.ml 5), one traversal per tree")
        elif aggregate == 1 and exact:  # leaf indices, then one gather of the leaf value table
            idx_f, idx = f"{out}_leafidx_f", f"{out}_leafidx"
            table_name, axes = f"{out}_leaf_values", f"{out}_tree_axis"
            node.output[0] = idx_f
            index_forest = Forest(**{**forest.__dict__, "n_targets": n_trees, "leaf_values": None})
            attach[node.name] = attributes(index_forest, walk_dtype, aggregate=1)
            graph.initializer.append(numpy_helper.from_array(forest.leaf_values.astype(dtype), table_name))
            if opset >= 13:
                graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
                reduce = helper.make_node("ReduceSum", [f"{out}_gathered", axes], [out], keepdims=0,
                                          name=f"{node.name}_sum")
            else:
                reduce = helper.make_node("ReduceSum", [f"{out}_gathered"], [out], axes=[1], keepdims=0,
                                          name=f"{node.name}_sum")
            after = [
                helper.make_node("Cast", [idx_f], [idx], to=TensorProto.INT64, name=f"{node.name}_cast"),
                helper.make_node("Gather", [table_name, idx], [f"{out}_gathered"], axis=0, name=f"{node.name}_gather"),
                reduce,
            ]
            used.add(WALKED32 if walk32 is not None else
                     "TreeEnsemble (ai.onnx.ml 5) leaf indices + Gather + ReduceSum, one traversal per tree")
        else:
            attach[node.name] = attributes(_tiled(forest), dtype, aggregate=aggregate)
            used.add("TreeEnsemble (ai.onnx.ml 5), trees repeated per target")
        for i, (op, value) in enumerate(post):
            cname = f"{final}_{op.lower()}_const"
            graph.initializer.append(numpy_helper.from_array(value.astype(dtype), cname))
            nxt = final if i == len(post) - 1 else f"{final}_{op.lower()}"
            after.append(helper.make_node(op, [out, cname], [nxt], name=f"{node.name}_{op.lower()}"))
            out = nxt
        new_nodes[node.name] = after + order[1]
    # the node list is rebuilt while the tree nodes are still small (appending a node copies it)
    if any(new_nodes.values()) or before:
        nodes = list(graph.node)
        del graph.node[:]
        for n in nodes:
            graph.node.extend(before.get(n.name, []))
            graph.node.append(n)
            graph.node.extend(new_nodes.get(n.name, []))
    if before:  # the float32 rounding the trees read before (now on [x, -x]) when nothing else reads it
        for _ in range(2):
            read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
            dead = [n for n in graph.node if n.op_type == "Cast" and all(o not in read for o in n.output)]
            for n in dead:
                graph.node.remove(n)
    for n in graph.node:
        if n.name in attach:
            set_attributes(n, attach.pop(n.name))
    if attach:
        from ...errors import ConversionError

        raise ConversionError(f"tree ensemble node(s) {sorted(attach)} left the graph before their attributes were set")
    if widened:
        used.add(WIDENED)
    if oblivious:
        used.add(oblivious)
    return "; ".join(sorted(used))


def _check_options(container: Any, operator: Any, supported: tuple[str, ...] = ("zipmap", "nocl")) -> None:
    from ...errors import UnsupportedModelError

    used = []
    for key in ("decision_path", "decision_leaf", "raw_scores", "score_samples", "output_class_labels"):
        try:
            value = container.get_options(operator.raw_operator, {key: False})[key]
        except NameError:  # the option is not declared for this estimator
            continue
        if value and key not in supported:
            used.append(key)
    if used:
        raise UnsupportedModelError(f"portable's tree converter does not support the skl2onnx option(s) {used}")


# -- scikit-learn trees and forests ---------------------------------------------------------------------------

def _classifier_leaf_values(tree: Any) -> np.ndarray:
    v = tree.value[:, 0, :].astype(np.float64)
    s = v.sum(axis=1, keepdims=True)
    return np.divide(v, s, out=np.zeros_like(v), where=s != 0)


def _trees(est: Any) -> list[Any]:
    return [est] if hasattr(est, "tree_") else list(est.estimators_)


@sklearn_converter("sklearn.tree.DecisionTreeClassifier", "sklearn.tree.ExtraTreeClassifier", "sklearn.ensemble.RandomForestClassifier", "sklearn.ensemble.ExtraTreesClassifier",
                   kind="classifier", style="skl2onnx", replaces=True)
def convert_forest_classifier(scope: Any, operator: Any, container: Any) -> None:
    """DecisionTree/ExtraTree/RandomForest/ExtraTrees classifier: mean of normalized leaf class fractions."""
    _check_options(container, operator)
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    trees = _trees(est)
    values = [_classifier_leaf_values(t.tree_) for t in trees]
    n_classes = values[0].shape[1]
    binary = n_classes == 2
    if binary:  # one target: p1; p0 = 1 - p1 keeps the ensemble half the size
        values = [v[:, 1:] for v in values]
    forest = build(concat_trees([t.tree_ for t in trees], values))
    x = em.as_float32_then_back(em.input())
    proba = em.ensemble(x, forest, average=len(trees) > 1, width=est.n_features_in_)
    if binary:
        p0 = em.node("Sub", [em.const([[1.0]]), proba], "p0")
        proba = em.node("Concat", [p0, proba], "proba", axis=1)
    em.label(proba, est.classes_)
    em.output(1, proba)


@sklearn_converter("sklearn.tree.DecisionTreeRegressor", "sklearn.tree.ExtraTreeRegressor", "sklearn.ensemble.RandomForestRegressor", "sklearn.ensemble.ExtraTreesRegressor",
                   kind="regressor", style="skl2onnx", replaces=True)
def convert_forest_regressor(scope: Any, operator: Any, container: Any) -> None:
    """DecisionTree/ExtraTree/RandomForest/ExtraTrees regressor: mean of leaf values (sum, then divide)."""
    _check_options(container, operator)
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    trees = _trees(est)
    values = [t.tree_.value[:, :, 0].astype(np.float64) for t in trees]
    forest = build(concat_trees([t.tree_ for t in trees], values))
    x = em.as_float32_then_back(em.input())
    em.output(0, em.ensemble(x, forest, average=len(trees) > 1, width=est.n_features_in_))


@sklearn_converter("sklearn.ensemble.IsolationForest",
                   kind="outlier", style="skl2onnx", replaces=True)
def convert_isolation_forest(scope: Any, operator: Any, container: Any) -> None:
    """IsolationForest: label (+1/-1) and `decision_function` = -2^(-depth / (T c(max_samples))) - offset."""
    from sklearn.ensemble._iforest import _average_path_length

    from onnx import TensorProto

    _check_options(container, operator, ())
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    trees = [e.tree_ for e in est.estimators_]
    values = [(np.asarray(d, np.float64) + np.asarray(a, np.float64) - 1.0)[:, None]
              for d, a in zip(est._decision_path_lengths, est._average_path_length_per_tree)]
    feats = [np.asarray(f) for f in est.estimators_features_]
    forest = build(concat_trees(trees, values, feats))
    x = em.as_float32_then_back(em.input())
    depths = em.ensemble(x, forest, "depths", width=est.n_features_in_)
    denom = float(len(trees) * _average_path_length([est._max_samples])[0])
    if denom == 0:
        score = em.const([[-1.0]])
        score = em.node("Add", [em.node("Mul", [depths, em.const([[0.0]])]), score], "score")
    else:
        expo = em.node("Neg", [em.node("Div", [depths, em.const([[denom]])], "ratio")], "expo")
        score = em.node("Neg", [em.node("Pow", [em.const([[2.0]]), expo], "pow")], "score")
    dec = em.node("Sub", [score, em.const([[float(est.offset_)]])], "decision")
    neg = em.node("Less", [dec, em.const([[0.0]])], "neg")
    sign = em.node("Where", [neg, em.const([[-1]], dtype=np.int64), em.const([[1]], dtype=np.int64)], "sign")
    em.node("Identity", [sign], out=operator.outputs[0].full_name)
    em.output(1, dec)
    _ = TensorProto


# -- gradient boosting ------------------------------------------------------------------------------------------

def _gb_raw(em: Emitter, est: Any) -> str:
    """Raw predictions `[N, K]` of a classic GradientBoosting model: init + learning_rate * sum of trees."""
    stages = est.estimators_  # [n_stages, K] of DecisionTreeRegressor
    n_stages, k = stages.shape
    _constant_init(est)
    init = est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))
    trees, values = [], []
    for j in range(k):
        for s in range(n_stages):
            t = stages[s, j].tree_
            v = np.zeros((t.node_count, k))
            v[:, j] = est.learning_rate * t.value[:, 0, 0]
            trees.append(t)
            values.append(v)
    table = concat_trees(trees, values)
    # one target per tree is enough: each tree feeds only its own class column
    forest = _build_one_target_per_tree(table, np.repeat(np.arange(k), n_stages))
    x = em.as_float32_then_back(em.input())
    return em.ensemble(x, forest, "raw", base=init.reshape(k), width=est.n_features_in_)


def _constant_init(est: Any) -> None:
    """Refuse an initial estimator whose prediction depends on the row (`init=LogisticRegression()`): the
    graph adds one constant start, `_raw_predict_init` of a zero row, to every row's trees."""
    init = getattr(est, "init_", "zero")
    if isinstance(init, str) and init == "zero":
        return
    from sklearn.dummy import DummyClassifier, DummyRegressor

    from ...errors import UnsupportedModelError

    if isinstance(init, DummyRegressor) or (isinstance(init, DummyClassifier)
                                            and init.strategy in ("prior", "most_frequent", "constant")):
        return
    raise UnsupportedModelError(
        f"{type(est).__name__}(init={type(init).__name__}(...)): the boosting starts from that estimator's "
        "prediction for each row, and portable converts gradient boosting from a constant start only "
        "(init=None, 'zero' or a DummyClassifier/DummyRegressor)")


def _build_one_target_per_tree(table: NodeTable, tree_target: np.ndarray) -> Forest:
    """build() for trees that each feed a single target: no repetition, each tree's leaves carry its target."""
    n_targets = max(table.values.shape[1], int(tree_target.max()) + 1 if len(tree_target) else 1)
    col = np.repeat(tree_target, np.diff(np.append(table.roots, len(table.left))))
    # values either hold one column per target, or already each node's own value in one column
    vals = table.values[:, :1] if table.values.shape[1] == 1 else table.values[np.arange(len(col)), col][:, None]
    single = NodeTable(table.left, table.right, table.feature, table.threshold, table.missing_left,
                       vals, table.roots, table.mode, table.members, table.cover)
    forest = build(single)
    leaf_tree_target = col[table.left < 0]
    forest.leaf_targetids = leaf_tree_target.astype(np.int64)
    forest.n_targets = n_targets
    return forest


def _link(em: Emitter, raw: str, est: Any, *, classifier: bool) -> str:
    name = type(getattr(est, "_loss", None)).__name__
    if classifier:
        if name == "ExponentialLoss":
            raw = em.node("Mul", [raw, em.const([[2.0]])], "raw2")
            name = "HalfBinomialLoss"
        if name == "HalfBinomialLoss":
            p1 = em.node("Sigmoid", [raw], "p1")
            p0 = em.node("Sub", [em.const([[1.0]]), p1], "p0")
            return em.node("Concat", [p0, p1], "proba", axis=1)
        return em.node("Softmax", [raw], "proba", axis=1)
    if name in ("HalfPoissonLoss", "HalfGammaLoss", "HalfTweedieLoss", "HalfTweedieLossIdentity"):
        if name == "HalfTweedieLossIdentity":
            return raw
        return em.node("Exp", [raw], "pred")
    return raw


@sklearn_converter("sklearn.ensemble.GradientBoostingClassifier",
                   kind="classifier", style="skl2onnx", replaces=True)
def convert_gradient_boosting_classifier(scope: Any, operator: Any, container: Any) -> None:
    _check_options(container, operator)
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    raw = _gb_raw(em, est)
    proba = _link(em, raw, est, classifier=True)
    binary = len(est.classes_) == 2
    em.label(proba, est.classes_, binary_raw=raw if binary else None, strict=False)
    em.output(1, proba)


@sklearn_converter("sklearn.ensemble.GradientBoostingRegressor",
                   kind="regressor", style="skl2onnx", replaces=True)
def convert_gradient_boosting_regressor(scope: Any, operator: Any, container: Any) -> None:
    _check_options(container, operator, ())
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    em.output(0, _link(em, _gb_raw(em, est), est, classifier=False))


def _hgb_table(est: Any) -> tuple[NodeTable, np.ndarray]:
    """All HistGradientBoosting predictors as one NodeTable on the *original* columns, and each tree's target.

    With categorical features scikit-learn (1.4+) runs an OrdinalEncoder first (unknown and missing values
    become NaN) and moves those columns to the front; the trees then test category codes against bitsets.
    Here each categorical split becomes a `BRANCH_MEMBER` test on the raw values themselves, so the encoder
    disappears: a value in the left set goes left, a known value outside it goes right, and anything else
    (NaN, unknown or negative values) follows the node's missing-value direction.
    """
    from ...errors import UnsupportedModelError

    preds = [p for it in est._predictors for p in it]
    k = len(est._predictors[0])
    target = np.tile(np.arange(k), len(est._predictors))
    sizes = np.array([len(p.nodes) for p in preds], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    shift = np.repeat(offsets, sizes)
    allnodes = np.concatenate([p.nodes for p in preds])
    leaf = allnodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, allnodes["left"].astype(np.int64) + shift)
    right = np.where(leaf, -1, allnodes["right"].astype(np.int64) + shift)
    feat = allnodes["feature_idx"].astype(np.int64)
    miss = allnodes["missing_go_to_left"].astype(bool)
    values = np.zeros((len(allnodes), k))
    values[np.arange(len(allnodes)), np.repeat(target, sizes)] = allnodes["value"]
    is_cat = allnodes["is_categorical"].astype(bool) & ~leaf
    mode = np.where(is_cat, MEMBER, LEQ).astype(np.uint8)
    members: dict[int, np.ndarray] = {}
    pre = getattr(est, "_preprocessor", None)
    if pre is not None:
        enc = pre.named_transformers_["encoder"]
        cats = [np.asarray(c) for c in enc.categories_]
        # string categories (pandas `category` columns): the graph's input is each value's position among them
        # (`bridge.frame_codes`); a missing category stays NaN
        cats = [np.array([i if isinstance(v, str) else np.nan for i, v in enumerate(c)])
                if c.dtype.kind == "O" and any(isinstance(v, str) for v in c) else c for c in cats]
        if any(c.dtype.kind not in "fiub" for c in cats):
            raise UnsupportedModelError(
                f"{type(est).__name__} has categorical features with non-numeric categories; portable converts "
                "HistGradientBoosting whose categories are numbers")
        cats = [c[~np.isnan(c.astype(np.float64))].astype(np.float64) for c in cats]
        remap = np.asarray(est._is_categorical_remapped)
        cat_cols = np.flatnonzero(est.is_categorical_)
        original = np.concatenate([cat_cols, np.flatnonzero(~np.asarray(est.is_categorical_))])
        known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        node_tree = np.repeat(np.arange(len(preds)), sizes)
        local = np.arange(len(allnodes)) - shift
        for i in np.flatnonzero(is_cat):
            p = preds[node_tree[i]]
            node = p.nodes[local[i]]
            f = int(node["feature_idx"])
            raw = cats[int(np.flatnonzero(remap)[:f].size) if remap[f] else 0]
            codes_left = _bits(p.raw_left_cat_bitsets[node["bitset_idx"]])
            codes_known = _bits(known[f_idx_map[f]])
            codes_known = codes_known[codes_known < len(raw)]
            codes_left = codes_left[codes_left < len(raw)]
            if node["missing_go_to_left"]:
                # NaN and unknown values go left: test "in known minus left" and send that right
                members[int(i)] = raw[np.setdiff1d(codes_known, codes_left).astype(np.int64)]
                left[i], right[i] = right[i], left[i]
            else:
                members[int(i)] = raw[codes_left.astype(np.int64)]
            miss[i] = False
        feat = np.where(leaf, 0, original[feat])
    elif is_cat.any():
        raise UnsupportedModelError(f"{type(est).__name__} has categorical splits but no category encoder")
    table = NodeTable(left, right, feat, allnodes["num_threshold"].astype(np.float64), miss, values, offsets,
                      mode, members)
    return table, target


def _bits(words: np.ndarray) -> np.ndarray:
    """The set bits of a scikit-learn bitset (uint32 words), as integers."""
    bits = np.unpackbits(np.asarray(words, dtype="<u4").view(np.uint8), bitorder="little")
    return np.flatnonzero(bits)


def _hgb_raw(em: Emitter, est: Any) -> str:
    table, target = _hgb_table(est)
    forest = _build_one_target_per_tree(table, target)
    base = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    return em.ensemble(em.input(), forest, "raw", base=base, width=est.n_features_in_)


@sklearn_converter("sklearn.ensemble.HistGradientBoostingClassifier",
                   kind="classifier", style="skl2onnx", replaces=True)
def convert_hist_gradient_boosting_classifier(scope: Any, operator: Any, container: Any) -> None:
    _check_options(container, operator)
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    raw = _hgb_raw(em, est)
    proba = _link(em, raw, est, classifier=True)
    binary = len(est.classes_) == 2
    em.label(proba, est.classes_, binary_raw=raw if binary else None, strict=True)
    em.output(1, proba)


@sklearn_converter("sklearn.ensemble.HistGradientBoostingRegressor",
                   kind="regressor", style="skl2onnx", replaces=True)
def convert_hist_gradient_boosting_regressor(scope: Any, operator: Any, container: Any) -> None:
    _check_options(container, operator, ())
    em = Emitter(scope, operator, container)
    est = operator.raw_operator
    em.output(0, _link(em, _hgb_raw(em, est), est, classifier=False))


