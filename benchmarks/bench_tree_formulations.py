"""Tree ensembles: the candidate ONNX formulations of the same float32 trees, timed in onnxruntime with one
thread, at 1 and 10,000 rows. This is the measurement behind the formulation portable chooses (recorded in the
artifact's metadata `portable.trees.formulation`, see `portable/converters/sklearn/trees.py`).

Every candidate is built from portable's own artifact for the model (same trees, same float32 thresholds), so
only the formulation differs:

- *chosen*: portable's artifact as it is;
- *splits not oriented by training cover*: XGBoost's trees with every split's left child on onnxruntime's true
  branch, reading x itself (before `trees.orient_by_cover`, which puts the child with the larger training cover
  on the false branch, the next node in onnxruntime's layout);
- *rows in their own order*: bagged forests (float32, ~80 trees or more) without the row ordering
  (`trees._row_order`: rows sorted by their leaves in the first two trees before the forest, put back after;
  the previous round's artifact); *rows ordered by the first tree's leaf only* / *by the first three trees'*:
  the same ordering with another number of key trees (`trees.ROW_ORDER_KEY_TREES`);
- *missing-value tracks*: the same artifact with `nodes_missing_value_tracks_true` where scikit-learn sends NaN
  left, instead of reading a negated copy of those columns (`Neg` + `Concat`, `trees.negate_missing_left`; the
  previous round's artifact). The candidates below are built from this form (their trees read x itself);
- *one multi-target operator*: the per-class single-target ensembles of a boosting model merged into one
  `TreeEnsembleRegressor` with K targets (the previous round's formulation); for forests with many classes,
  whose chosen artifact has one single-target operator per tree (leaf indices, Gather of the leaf table), the
  trees joined into one K-target operator (`onnx_trees.join_per_tree`);
- *separate post-processing nodes*: the averaging / base values as `Div` / `Add` nodes after the operator
  instead of its `aggregate_function` / `base_values` (the previous round's graphs);
- *TreeEnsembleClassifier (ai.onnx.ml 3)*: one operator for labels and probabilities (weights pre-divided by
  the number of trees for forests; base values and a SOFTMAX post-transform for boosting) — what
  skl2onnx/onnxmltools write;
- *mixed modes, no missing-value tracks*: nodes whose missing values go left rewritten as `x > t` with their
  branches swapped, so that no node needs a missing-value track (onnxruntime then loses its same-mode loop);
- *GEMM* (Hummingbird-style, standard ONNX ops: one MatMul picks every split's feature, a comparison, a
  batched MatMul per tree finds the leaf, a MatMul reads its value), for trees of depth <= 3 only (the
  intermediates grow with 2^depth; XGBoost's depth-6 trees would need a [10,000 x 18,900] matrix). Not exact for
  missing values (NaN * 0 in the MatMul); measured as a speed candidate.

Times are the best of interleaved rounds in *thread CPU time* (onnxruntime with one intra-op thread runs in the
calling thread): the machine is shared, and CPU time is what a load on the other core disturbs least.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from ._util import table
from .bench_tree_speed import FEATURES, _models

ML = "ai.onnx.ml"


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _graph(nodes: list[Any], outputs: list[tuple[str, int]], inits: list[Any], opset: int = 17) -> Any:
    from onnx import TensorProto, helper

    g = helper.make_graph(nodes, "candidate", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, FEATURES])],
                          [helper.make_tensor_value_info(n, t, None) for n, t in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(ML, 3)])
    m.ir_version = 8
    return m


def _joined(proto: Any) -> Any | None:
    """A per-tree artifact (one single-target operator per tree + Gather of the leaf table) with its trees joined
    into one multi-target operator (`onnx_trees.join_per_tree`, the previous round's float32 forests), or None."""
    import onnx
    from portable.formats.onnx_trees import join_per_tree

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return copy if join_per_tree(copy.graph) else None


def _one_operator(proto: Any) -> tuple[dict[str, Any], Any]:
    """The artifact's trees as one TreeEnsembleRegressor's attributes (per-class ensembles merged, per-tree
    ensembles joined), and the graph with that one operator in their place."""
    from portable.formats.onnx_trees import _merge_split

    proto = _joined(proto) or proto
    trees = [n for n in proto.graph.node if n.op_type == "TreeEnsembleRegressor"]
    graph = proto.graph
    if len(trees) > 1:
        graph, trees = _merge_split(proto.graph, trees)
    return _attrs(trees[0]), graph


def _with_graph(proto: Any, graph: Any) -> Any:
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    m.graph.CopyFrom(graph)
    return m


def _separate_post(proto: Any, graph: Any) -> Any | None:
    """aggregate_function AVERAGE / base_values written as Div / Add nodes after the operator."""
    from onnx import helper, numpy_helper

    op = next(n for n in graph.node if n.op_type == "TreeEnsembleRegressor")
    at = _attrs(op)
    avg = at.get("aggregate_function", b"SUM") == b"AVERAGE"
    base = at.get("base_values")
    if not avg and not base:
        return None
    n_trees = len(set(at["nodes_treeids"]))
    new = helper.make_node("TreeEnsembleRegressor", list(op.input), ["raw_sum"], domain=ML,
                           **{k: v for k, v in at.items() if k not in ("aggregate_function", "base_values")})
    nodes, inits, cur = [new], [], "raw_sum"
    if avg:
        inits.append(numpy_helper.from_array(np.array([n_trees], np.float32), "n_trees"))
        nodes.append(helper.make_node("Div", [cur, "n_trees"], ["raw_mean"]))
        cur = "raw_mean"
    if base:
        inits.append(numpy_helper.from_array(np.asarray(base, np.float32)[None, :], "base"))
        nodes.append(helper.make_node("Add", [cur, "base"], ["raw_base"]))
        cur = "raw_base"
    nodes.append(helper.make_node("Identity", [cur], [op.output[0]]))
    rest = [n for n in graph.node if n is not op]
    g = helper.make_graph(nodes + rest, "g", list(graph.input), list(graph.output),
                          list(graph.initializer) + inits)
    return _with_graph(proto, g)


def _classifier(at: dict[str, Any], est: Any, forest: bool) -> Any:
    from onnx import TensorProto, helper

    cl = {("class_" + k[len("target_"):] if k.startswith("target_") else k): v for k, v in at.items()
          if k not in ("n_targets", "aggregate_function", "base_values", "post_transform")}
    n_classes = len(est.classes_)
    cl["classlabels_int64s"] = list(range(n_classes))
    if forest:
        cl["class_weights"] = (np.asarray(cl["class_weights"]) / len(set(at["nodes_treeids"]))).tolist()
        if n_classes == 2:  # skl2onnx's binary form: weights of class 1 only (portable's p1), [1 - p, p] out
            cl["class_ids"] = [1] * len(cl["class_ids"])
    else:
        if "base_values" in at:
            cl["base_values"] = list(at["base_values"])
        cl["post_transform"] = "SOFTMAX" if n_classes > 2 else "LOGISTIC"
        if n_classes == 2:
            return None
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain=ML, **cl)
    return _graph([node], [("label", TensorProto.INT64), ("probabilities", TensorProto.FLOAT)], [])


def _mixed_modes(proto: Any, graph: Any) -> Any | None:
    """Missing-left nodes as `x > t` (`x >= t`) with swapped branches: no missing-value tracks at all."""
    from onnx import helper

    ops = [n for n in graph.node if n.op_type == "TreeEnsembleRegressor"]
    at = _attrs(ops[0])
    miss = np.asarray(at.get("nodes_missing_value_tracks_true", []), bool)
    if not miss.any():
        return None
    modes = list(at["nodes_modes"])
    tr, fa = list(at["nodes_truenodeids"]), list(at["nodes_falsenodeids"])
    flip = {b"BRANCH_LEQ": b"BRANCH_GT", b"BRANCH_LT": b"BRANCH_GTE"}
    for i in np.flatnonzero(miss):
        if modes[i] in flip:
            modes[i] = flip[modes[i]]
            tr[i], fa[i] = fa[i], tr[i]
    at = {**at, "nodes_modes": modes, "nodes_truenodeids": tr, "nodes_falsenodeids": fa,
          "nodes_missing_value_tracks_true": [0] * len(miss)}
    new = helper.make_node("TreeEnsembleRegressor", list(ops[0].input), list(ops[0].output), domain=ML, **at)
    g = helper.make_graph([new if n is ops[0] else n for n in graph.node], "g", list(graph.input),
                          list(graph.output), list(graph.initializer))
    return _with_graph(proto, g)


def _gemm(proto: Any, graph: Any, at: dict[str, Any]) -> Any | None:
    """Hummingbird's GEMM formulation in standard ops, for trees of depth <= 3 (see the module docstring)."""
    from onnx import helper, numpy_helper

    tree = np.asarray(at["nodes_treeids"])
    nid = np.asarray(at["nodes_nodeids"])
    modes = np.asarray(at["nodes_modes"])
    if set(modes.tolist()) - {b"BRANCH_LEQ", b"BRANCH_LT", b"LEAF"} or len(set(modes.tolist()) - {b"LEAF"}) > 1:
        return None
    feat, thr = np.asarray(at["nodes_featureids"]), np.asarray(at["nodes_values"], np.float32)
    tn, fn = np.asarray(at["nodes_truenodeids"]), np.asarray(at["nodes_falsenodeids"])
    k = int(at.get("n_targets", 1))
    trees = sorted(set(tree.tolist()))
    pos = {(t, i): j for j, (t, i) in enumerate(zip(tree.tolist(), nid.tolist()))}
    per = []
    for t in trees:
        js = np.flatnonzero(tree == t)
        inner = [j for j in js if modes[j] != b"LEAF"]
        leaves = [j for j in js if modes[j] == b"LEAF"]
        per.append((inner, leaves))
    imax = max(len(i) for i, _ in per)
    lmax = max(len(lv) for _, lv in per)
    if imax > 7:
        return None
    T = len(trees)
    A = np.zeros((FEATURES, T * imax), np.float32)
    B = np.full(T * imax, np.inf, np.float32)
    C = np.zeros((T, imax, lmax), np.float32)
    D = np.full((T, 1, lmax), -1.0, np.float32)
    V = np.zeros((T, lmax, k), np.float32)
    leaf_val = np.zeros((len(tree), k))
    for tt, n, c, w in zip(at["target_treeids"], at["target_nodeids"], at["target_ids"], at["target_weights"]):
        leaf_val[pos[(tt, n)], c] += w
    for ti, (inner, leaves) in enumerate(per):
        col = {j: ti * imax + q for q, j in enumerate(inner)}
        for j, q in col.items():
            A[feat[j], q] = 1.0
            B[q] = thr[j]
        lcol = {j: q for q, j in enumerate(leaves)}
        t = trees[ti]

        def walk(j: int, path: list[tuple[int, int]]) -> None:
            if modes[j] == b"LEAF":
                q = lcol[j]
                for node, side in path:
                    C[ti, col[node] - ti * imax, q] = 1.0 if side else -1.0
                D[ti, 0, q] = sum(side for _, side in path)
                V[ti, q] = leaf_val[j]
                return
            walk(pos[(t, int(tn[j]))], path + [(j, 1)])
            walk(pos[(t, int(fn[j]))], path + [(j, 0)])

        walk(inner[0] if inner else leaves[0], [])
    cmp = "LessOrEqual" if b"BRANCH_LEQ" in modes else "Less"
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((A, "gA"), (B, "gB"), (C, "gC"), (D, "gD"), (V, "gV"), (np.array([-1, T, imax], np.int64), "gshape"),
              (np.array([0], np.int64), "gaxis"))]
    base = at.get("base_values")
    nodes = [helper.make_node("MatMul", ["X", "gA"], ["gxa"]), helper.make_node(cmp, ["gxa", "gB"], ["gcmp"]),
             helper.make_node("Cast", ["gcmp"], ["gcf"], to=1), helper.make_node("Reshape", ["gcf", "gshape"], ["gc3"]),
             helper.make_node("Transpose", ["gc3"], ["gct"], perm=[1, 0, 2]),
             helper.make_node("MatMul", ["gct", "gC"], ["gp"]), helper.make_node("Equal", ["gp", "gD"], ["gh"]),
             helper.make_node("Cast", ["gh"], ["ghf"], to=1), helper.make_node("MatMul", ["ghf", "gV"], ["gy"])]
    ops = [n for n in graph.node if n.op_type == "TreeEnsembleRegressor"]
    out = ops[0].output[0]
    nodes.append(helper.make_node("ReduceSum", ["gy", "gaxis"], ["gsum" if base else out], keepdims=0))
    if base:
        inits.append(numpy_helper.from_array(np.asarray(base, np.float32)[None, :], "gbase"))
        nodes.append(helper.make_node("Add", ["gsum", "gbase"], [out]))
    rest = [n for n in graph.node if n is not ops[0]]
    g = helper.make_graph(nodes + rest, "g", list(graph.input), list(graph.output),
                          list(graph.initializer) + inits)
    return _with_graph(proto, g)


def _tree_form(est: Any) -> Any:
    """portable's float32 artifact with every ensemble as a tree operator (CatBoost's symmetric trees too, which
    portable writes with standard operators: `boosting._oblivious`)."""
    import portable
    from portable.converters.sklearn import boosting

    keep = boosting.OBLIVIOUS_FORM
    boosting.OBLIVIOUS_FORM = False
    try:
        return portable.convert(est, to="onnx", dtype="float32", check=False).proto
    finally:
        boosting.OBLIVIOUS_FORM = keep


def _tracked(est: Any) -> Any:
    """portable's float32 artifact with missing-value tracks instead of negated columns (and splits not oriented
    by training cover)."""
    from portable.converters.sklearn import trees

    keep, keep_orient, keep_key = trees.negate_missing_left, trees.orient_by_cover, trees._key_trees
    trees.negate_missing_left = lambda forest, width: None
    trees.orient_by_cover = lambda forest, width: None  # the candidates below read x itself
    trees._key_trees = lambda forest: None  # ... in its own row order
    try:
        return _tree_form(est)
    finally:
        trees.negate_missing_left, trees.orient_by_cover, trees._key_trees = keep, keep_orient, keep_key


def _key_trees(est: Any, count: int) -> Any:
    """portable's float32 artifact with its rows ordered by their leaves in the first `count` trees."""
    from portable.converters.sklearn import trees

    keep = trees.ROW_ORDER_KEY_TREES
    trees.ROW_ORDER_KEY_TREES = count
    try:
        return _tree_form(est)
    finally:
        trees.ROW_ORDER_KEY_TREES = keep


def _unoriented(est: Any) -> Any:
    """portable's float32 artifact without `trees.orient_by_cover` (XGBoost: every split `x < t` with its left
    child on onnxruntime's true branch, the previous round's artifact)."""
    from portable.converters.sklearn import trees

    keep = trees.orient_by_cover
    trees.orient_by_cover = lambda forest, width: None
    try:
        return _tree_form(est)
    finally:
        trees.orient_by_cover = keep


def _formulation(proto: Any) -> str:
    return next((p.value for p in proto.metadata_props if p.key == "portable.trees.formulation"), "?")


def _session(proto: Any) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run() -> str:
    import portable

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(1)
    data = rng.normal(size=(10_000, FEATURES)).astype(np.float32) * 1.5
    rows_out = []
    for name, est in _models():
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        chosen_proto = art.proto
        proto = _tracked(est)
        at, merged = _one_operator(proto)
        forest = "RandomForest" in name
        cands: dict[str, Any] = {f"chosen: {art.metadata.get('portable.trees.formulation', '?')}": chosen_proto}
        from portable.formats.onnx_trees import without_row_order

        unordered = without_row_order(chosen_proto.graph)
        if unordered is not chosen_proto.graph:
            cands["rows in their own order (previous round's artifact)"] = _with_graph(chosen_proto, unordered)
            for count, label in ((1, "the first tree's leaf only"), (3, "the first three trees' leaves")):
                other = _key_trees(est, count)
                if without_row_order(other.graph) is not other.graph:
                    cands[f"rows ordered by {label}"] = other
        trees_proto = _tree_form(est)  # the chosen artifact, unless it has no tree operator (CatBoost)
        if trees_proto.SerializeToString() != chosen_proto.SerializeToString():
            label = f"{_formulation(trees_proto)} (previous round's artifact)"
            cands[label] = trees_proto
        unoriented = _unoriented(est)
        if unoriented.SerializeToString() != trees_proto.SerializeToString():
            cands["splits not oriented by training cover (previous round's artifact)"] = unoriented
        if proto.SerializeToString() not in (trees_proto.SerializeToString(), unoriented.SerializeToString()):
            cands["missing-value tracks (previous round's artifact)"] = proto
        joined = _joined(chosen_proto)
        if joined is not None:
            cands["one multi-target operator instead of one per tree (previous round's choice)"] = joined
        elif len([n for n in proto.graph.node if n.op_type == "TreeEnsembleRegressor"]) > 1:
            cands["one multi-target operator"] = _with_graph(proto, merged)
        sep = _separate_post(proto, merged)
        if sep is not None:
            cands["separate post-processing nodes (Div / Add)"] = sep
        if hasattr(est, "predict_proba"):
            clf = _classifier(at, est, forest)
            if clf is not None:
                cands["TreeEnsembleClassifier (ai.onnx.ml 3)"] = clf
        mixed = _mixed_modes(proto, merged)
        if mixed is not None:
            cands["mixed modes, no missing-value tracks"] = mixed
        gemm = _gemm(proto, merged, at)
        if gemm is not None:
            cands["GEMM (standard ops)"] = gemm
        sessions = {}
        for label, m in cands.items():
            try:
                sessions[label] = _session(m)
            except Exception as exc:  # a candidate onnxruntime refuses is reported, not fatal
                rows_out.append([name, label, "fails", "", "fails", "", type(exc).__name__])
        # every candidate computes what the chosen artifact computes (on rows without missing values)
        ref = dict(zip([o.name for o in sessions[next(iter(sessions))].get_outputs()],
                       next(iter(sessions.values())).run(None, {"X": data[:200]})))
        notes = {}
        for k, s in sessions.items():
            got = dict(zip([o.name for o in s.get_outputs()], s.run(None, {"X": data[:200]})))
            same = all(np.allclose(np.asarray(got[o], np.float64), np.asarray(v, np.float64), rtol=1e-4, atol=1e-5)
                       for o, v in ref.items() if o in got)
            notes[k] = "" if same else "differs from the chosen artifact"
        times: dict[str, dict[int, float]] = {k: {} for k in sessions}
        for rows in (1, 10_000):
            x = data[:rows]
            number, rounds = (300, 5) if rows == 1 else (1, 7)
            best = {k: float("inf") for k in sessions}
            for _ in range(rounds):
                for k, s in sessions.items():
                    t0 = time.thread_time()
                    for _ in range(number):
                        s.run(None, {"X": x})
                    best[k] = min(best[k], (time.thread_time() - t0) / number * 1000)
            for k in sessions:
                times[k][rows] = best[k]
        chosen = next(iter(sessions))
        for k in sessions:
            t1, t10 = times[k][1], times[k][10_000]
            rows_out.append([name, k, f"{t1 * 1000:.1f}", f"{times[chosen][1] / t1:.2f}x",
                             f"{t10:.1f}", f"{times[chosen][10_000] / t10:.2f}x", notes[k]])
    return ("## Tree ensembles: candidate formulations (bench_tree_formulations)\n\n"
            "The same float32 trees in each candidate ONNX formulation, one onnxruntime thread, best of "
            "interleaved rounds in thread CPU time (the machine was shared with other work: CPU time is what that "
            "disturbs least). *chosen / candidate* below 1: the candidate is slower than what portable chose. "
            "GEMM only for trees of depth <= 3 and not exact for missing values (see the script).\n\n"
            + table(["model", "formulation", "1 row, us", "chosen / candidate", "10,000 rows, ms",
                     "chosen / candidate", "note"], rows_out))
