"""Hostile and corrupt inputs of a third pass, made the way an independent verifier would (issue 12: "verified
independently on hostile files nobody here has seen"). Every file is written by these functions.

`CASES` maps a case's name to `build(base) -> Case` (see `unseen.py`); `test_hostile_verifier` runs them all
through `cli_harness` in one subprocess under a time and memory bound.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .files import Case, build_cases, registrar

CASES: dict[str, Callable[[Path], Case]] = {}
case = registrar(CASES)


def build_verifier(base: Path, names: list[str] | None = None) -> list[Case]:
    """Write the cases (all, or those named) below `base` and return them, each named."""
    return build_cases(CASES, base, names)


# ---- ONNX tree ensembles: onnx.checker does not look inside them ----------------------------------------------

def tree_v3(path: Path, true_ids: list[int], false_ids: list[int], modes: list[str], *, targets: list[int] | None = None,
            target_ids: list[int] | None = None) -> Path:
    """A TreeEnsembleRegressor (ai.onnx.ml 3) of one tree over X [N, 4]: node i splits X[0] at i / 1000 (or is a
    LEAF), its children are `true_ids[i]`/`false_ids[i]`; every leaf (or the nodes `targets`) carries a weight."""
    from onnx import TensorProto
    from onnx import helper as h

    n = len(modes)
    targets = [i for i, m in enumerate(modes) if m == "LEAF"] if targets is None else targets
    node = h.make_node(
        "TreeEnsembleRegressor", ["X"], ["variable"], domain="ai.onnx.ml", n_targets=1, post_transform="NONE",
        nodes_treeids=[0] * n, nodes_nodeids=list(range(n)), nodes_featureids=[0] * n, nodes_modes=modes,
        nodes_values=[i / 1000 for i in range(n)], nodes_truenodeids=true_ids, nodes_falsenodeids=false_ids,
        nodes_hitrates=[1.0] * n, nodes_missing_value_tracks_true=[0] * n, target_treeids=[0] * len(targets),
        target_nodeids=targets, target_ids=target_ids or [0] * len(targets),
        target_weights=[float(i) for i in range(len(targets))])
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
                         [h.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("ai.onnx.ml", 3)], ir_version=8)
    path.write_bytes(model.SerializeToString())
    return path


def chain_v3(path: Path, depth: int) -> Path:
    """One tree `depth` splits deep: node 2i splits, its true child 2i+1 is a leaf, its false child the next split."""
    n = 2 * depth + 1
    modes = ["BRANCH_LEQ" if i % 2 == 0 and i < n - 1 else "LEAF" for i in range(n)]
    true_ids = [i + 1 if m != "LEAF" else 0 for i, m in enumerate(modes)]
    false_ids = [i + 2 if m != "LEAF" else 0 for i, m in enumerate(modes)]
    return tree_v3(path, true_ids, false_ids, modes)


def tree_v5(path: Path, true_ids: list[int], true_leaf: list[int], false_ids: list[int], false_leaf: list[int],
            n_leaves: int, roots: list[int] = (0,)) -> Path:
    """A TreeEnsemble (ai.onnx.ml 5) over X [N, 4]: inner node i splits X[0] at i / 1000; its children are inner
    nodes or leaves (flags `true_leaf`/`false_leaf`); `n_leaves` leaves of weights 0, 1, ..."""
    from onnx import TensorProto
    from onnx import helper as h

    n = len(true_ids)
    node = h.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, aggregate_function=1, post_transform=0,
        nodes_featureids=[0] * n, nodes_modes=h.make_tensor("m", TensorProto.UINT8, [n], [0] * n),
        nodes_splits=h.make_tensor("s", TensorProto.FLOAT, [n], [i / 1000 for i in range(n)]),
        nodes_truenodeids=true_ids, nodes_trueleafs=true_leaf, nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leaf, tree_roots=list(roots), leaf_targetids=[0] * n_leaves,
        leaf_weights=h.make_tensor("w", TensorProto.FLOAT, [n_leaves], [float(i) for i in range(n_leaves)]))
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
                         [h.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 21), h.make_opsetid("ai.onnx.ml", 5)],
                         ir_version=10)
    path.write_bytes(model.SerializeToString())
    return path


_BRANCH, _LEAF = "BRANCH_LEQ", "LEAF"


def _tree_case(name: str, build: Callable[[Path], Path], needle: str, command: str = "check") -> None:
    def make(base: Path) -> Case:
        path = build(base / f"{name}.onnx")
        if command == "check":
            argv = ["check", str(path), str(path), "--samples", "50"]
        else:
            argv = ["convert", str(path), "--to", "nnef", "-o", str(base / f"{name}.nnef"), "--force",
                    "--samples", "50"]
        return Case("", argv, needle=needle)

    case(name)(make)


# a split whose true child is itself: the checker's tree walk (input generation) looped for ever
_tree_case("an ONNX tree node that is its own child is refused (check hung)",
           lambda p: tree_v3(p, [0, 0, 0], [2, 0, 0], [_BRANCH, _LEAF, _LEAF]), "cycle")
_tree_case("the same self-loop converted to NNEF is refused (the conversion hung)",
           lambda p: tree_v3(p, [0, 0, 0], [2, 0, 0], [_BRANCH, _LEAF, _LEAF]), "cycle", command="nnef")
# nodes 0 -> 1 -> 0: no root at all
_tree_case("two ONNX tree nodes that are each other's child are refused (check hung)",
           lambda p: tree_v3(p, [1, 0, 0, 0], [2, 3, 0, 0], [_BRANCH, _BRANCH, _LEAF, _LEAF]), "cycle")
# a tree 12,000 splits deep: onnxruntime builds its trees recursively and crashed the process (SIGSEGV)
_tree_case("an ONNX tree 12,000 deep is refused before onnxruntime crashes on it (exit 139)",
           lambda p: chain_v3(p, 12_000), "max_tree_depth")
_tree_case("an ai.onnx.ml 5 TreeEnsemble 12,000 deep is refused before onnxruntime crashes on it (exit 139)",
           lambda p: tree_v5(p, list(range(1, 12_000)) + [0], [0] * 11_999 + [1], list(range(12_000)),
                             [1] * 12_000, 12_001), "max_tree_depth")
_tree_case("an ai.onnx.ml 5 TreeEnsemble node that is its own child is refused",
           lambda p: tree_v5(p, [0, 0], [0, 1], [1, 1], [1, 1], 3), "cycle")
# lowering to standard ONNX (the NNEF route) raised KeyError/IndexError tracebacks on these
_tree_case("an ONNX tree child id that names no node is refused converting to NNEF (a KeyError traceback)",
           lambda p: tree_v3(p, [7, 0, 0], [2, 0, 0], [_BRANCH, _LEAF, _LEAF]), "not a node of its tree",
           command="nnef")
_tree_case("an ONNX leaf weight on a node that does not exist is refused converting to NNEF (a traceback)",
           lambda p: tree_v3(p, [1, 0, 0], [2, 0, 0], [_BRANCH, _LEAF, _LEAF], targets=[55, 66]),
           "does not exist", command="nnef")
_tree_case("an ONNX leaf weight for output 1,000,000 of a one-output tree is refused converting to NNEF "
           "(an IndexError traceback)",
           lambda p: tree_v3(p, [1, 0, 0], [2, 0, 0], [_BRANCH, _LEAF, _LEAF], target_ids=[10 ** 6, 0]),
           "not one of the 1 outputs", command="nnef")


@case("a scikit-learn tree 12,000 deep converted with --no-check is refused (it wrote an ONNX file onnxruntime "
      "crashes on)")
def _deep_sklearn_tree(base: Path) -> Case:
    import pickle

    import numpy as np
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    est = DecisionTreeRegressor(max_depth=2).fit(rng.normal(size=(20, 2)), rng.normal(size=20))
    _, args, state = est.tree_.__reduce__()
    depth = 12_000
    nodes = np.zeros(2 * depth + 1, dtype=state["nodes"].dtype)
    nodes["left_child"], nodes["right_child"], nodes["feature"] = -1, -1, -2
    split = np.arange(depth) * 2
    nodes["left_child"][split], nodes["right_child"][split] = split + 1, split + 2
    nodes["feature"][split], nodes["threshold"][split] = 0, np.arange(depth) / 1000
    nodes["n_node_samples"], nodes["weighted_n_node_samples"] = 1, 1.0
    tree = type(est.tree_)(*args)
    tree.__setstate__(dict(state, nodes=nodes, node_count=len(nodes), max_depth=depth,
                           values=np.arange(len(nodes), dtype=float).reshape(-1, 1, 1)))
    est.tree_ = tree
    path = base / "deep_tree.pkl"
    path.write_bytes(pickle.dumps(est))
    out = base / "deep_tree.onnx"
    return Case("", ["convert", str(path), "--to", "onnx", "-o", str(out), "--no-check"], needle="max_tree_depth",
                after=lambda: _assert_missing(out))


def _assert_missing(path: Path) -> None:
    assert not path.exists(), f"{path} was written"
