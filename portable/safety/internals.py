"""Validate the fitted internals of a loaded model before any library code runs on them.

scikit-learn's compiled code trusts its fitted arrays: a tree whose child index is -7 or points back at itself, a
feature index of 10**9, a KDTree whose `idx_array` points outside its data, a sparse matrix whose `indices` run
past its columns, or an SVM whose support counts disagree with its coefficients make `predict` read outside
its buffers (a segfault) or loop for ever. A pickle can carry any of these with nothing but allowlisted names,
so every loaded model is checked here, right after unpickling and before the checker or a converter touches
it. A failure is a `CorruptModelError` naming the attribute path (`steps[1][1].estimators_[3].tree_.feature[17]`)
and the reason.

Checked: every `sklearn.tree._tree.Tree` (node arrays, acyclic, leaves, feature range, value shape), every
HistGradientBoosting `TreePredictor` (nodes, categorical bitsets), KDTree/BallTree arrays, scipy.sparse
matrices (CSR/CSC/BSR/COO/DIA/LIL/DOK), libsvm-based SVMs (support vectors, dual coefficients, counts),
encoders' categories, nearest-neighbour fits (`_fit_X`, `_y`), and XGBoost/LightGBM/CatBoost boosters (their
own dumps). Vectorised with numpy: a 300-tree forest takes a few milliseconds.
"""
from __future__ import annotations

from itertools import repeat
from operator import attrgetter, is_, itemgetter
from typing import Any

import functools

import numpy as np

from ..errors import CorruptModelError

#: A unique key for a live object. Not `id()`: that is an audited event, and the guard's audit hook (a Python
#: function, installed for good once a file is loaded) would then run for every object a walk visits.
_ident = object.__hash__

_MAX_OBJECTS = 2_000_000


class _Bad(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where, self.reason = where, reason


def validate_model(root: Any, path: Any = None) -> None:
    """Walk `root` (a loaded object) and validate every fitted internal found; CorruptModelError on the first bad
    one, naming its attribute path."""
    try:
        _walk(root)
    except _Bad as exc:
        raise CorruptModelError(f"the model is corrupt: {exc.reason}; scikit-learn's compiled code would read "
                                "outside its buffers or loop for ever on it, so portable refuses it before running "
                                "anything", path=path, where=exc.where or "the top-level object") from None


def _p(where: str) -> str:
    return f"{where}." if where else ""


class _Entry:
    """Where an object was found: its parent entry and the key or attribute that leads to it (the path is only
    spelled out when something is wrong)."""

    __slots__ = ("parent", "key", "attr")

    def __init__(self, parent: _Entry | None, key: Any, attr: bool) -> None:
        self.parent, self.key, self.attr = parent, key, attr

    def path(self) -> str:
        parts: list[str] = []
        e: _Entry | None = self
        while e is not None and e.parent is not None:
            parts.append(f".{e.key}" if e.attr else f"[{e.key!r}]" if not isinstance(e.key, int) else f"[{e.key}]")
            e = e.parent
        return "".join(reversed(parts)).lstrip(".")


_ROOT = _Entry(None, None, False)


def validate_loaded(root: Any, path: Any = None, trust: tuple[str, ...] = ()) -> None:
    """`states.check_graph` and `validate_model` in one walk of a freshly loaded object (the loader's last step):
    HostileState for an array-protocol attribute or a class/callable kept as a value, BadState for a malformed dtype;
    CorruptModelError for a fitted internal that fails validation."""
    try:
        _walk(root, graph=tuple(trust))
    except _Bad as exc:
        raise CorruptModelError(f"the model is corrupt: {exc.reason}; scikit-learn's compiled code would read "
                                "outside its buffers or loop for ever on it, so portable refuses it before running "
                                "anything", path=path, where=exc.where or "the top-level object") from None


def validate_recorded(session: Any, root: Any, path: Any = None) -> None:
    """Validate the fitted internals the loader's checked pass (`onepass.Session`) recorded as their states were
    set: all trees and all HGB predictors together (each with the estimators that hold it), KD/Ball trees, sparse
    matrices, SVMs, encoders and neighbour fits. On a failure the loaded object is walked to name the attribute."""
    try:
        owners: dict[int, list[Any]] = {}
        for obj, holder in session.owners:
            owners.setdefault(_ident(obj), []).append(holder)
        if session.trees:
            _trees([(t, _ROOT, o) for t in session.trees for o in owners.get(_ident(t), [None])])
        if session.predictors:
            _hgb_predictors(_predictors_found(session))
        for tree in session.binary:
            _binary_tree(tree, "")
        for m in session.sparse:
            _sparse(m, "")
        for est in session.estimators:
            _estimator(est, est.__dict__, "")
    except _Bad as exc:
        validate_model(root, path)  # names the attribute path when the object is reachable from the root
        raise CorruptModelError(f"the model is corrupt: {exc.reason}; scikit-learn's compiled code would read "
                                "outside its buffers or loop for ever on it, so portable refuses it before running "
                                "anything", path=path, where=exc.where or "an object in the file") from None


def _predictors_found(session: Any) -> list[tuple[Any, _Entry, Any]]:
    """(predictor, where, owner) for every HGB predictor the checked pass recorded, once per estimator that runs it
    (`_predictor_owners`), with None for a predictor no estimator runs. The common file -- each estimator's
    `_predictors` a list of lists, no predictor in two places -- is matched with C-level maps."""
    import itertools

    preds = session.predictors
    owner_of: dict[int, Any] = {}
    placed = 0
    flat: list[Any] = []
    runs: list[tuple[Any, int]] = []
    for est in session.estimators:
        held = est.__dict__.get("_predictors")
        if held is None:
            continue
        if type(held) is not list or not {list}.issuperset(map(type, held)):
            break  # another grouping: the general search below
        n = len(flat)
        flat.extend(itertools.chain.from_iterable(held))
        runs.append((est, len(flat) - n))
    else:
        # the estimators' predictors, in order, are exactly the ones recorded (each recorded once: a second state
        # is refused), so each has one owner: one C-level pass of identity comparisons
        if len(flat) == len(preds) and all(map(is_, flat, preds)):
            return list(zip(preds, itertools.repeat(_ROOT),
                            itertools.chain.from_iterable(itertools.repeat(est, n) for est, n in runs)))
        for est, _n in runs:
            held = est.__dict__["_predictors"]
            owner_of.update(zip(map(_ident, itertools.chain.from_iterable(held)), itertools.repeat(est)))
            placed += sum(map(len, held))
        if len(owner_of) == placed:  # nothing met twice: each predictor has at most one owner
            return list(zip(preds, itertools.repeat(_ROOT), map(owner_of.get, map(_ident, preds))))
    owners: dict[int, list[Any]] = {}
    _predictor_owners(session, owners)
    return [(p, _ROOT, o) for p in preds for o in owners.get(_ident(p), [None])]


def _predictor_owners(session: Any, owners: dict[int, list[Any]]) -> None:
    """Add to `owners` the estimators that run each recorded HGB predictor: those whose `_predictors` hold it,
    however nested (lists, tuples, sets, dict keys and values, a few levels deep: HistGradientBoosting iterates
    two), so that each predictor's feature indices are checked against its estimator's feature count."""
    import collections

    predictors = set(map(_ident, session.predictors))
    containers = (list, tuple, set, frozenset, collections.deque)
    for est in session.estimators:
        held = est.__dict__.get("_predictors")
        if held is None:
            continue
        stack = [(held, 0)]
        while stack:
            x, depth = stack.pop()
            t = type(x)
            if t in containers:
                items: Any = x
            elif isinstance(x, dict):
                items = [*x.keys(), *x.values()]
            else:
                continue
            for v in items:
                key = _ident(v)
                if key in predictors:
                    owners.setdefault(key, []).append(est)
                elif depth < 4:
                    stack.append((v, depth + 1))


def _walk(root: Any, graph: tuple[str, ...] | None = None) -> None:
    """Find and validate every fitted internal below `root`. With `graph` (the trust tuple), also apply
    `states.check_graph`'s checks to every object on the way (classes, functions, dtypes, dict keys and the
    attributes of every instance included)."""
    import types

    import scipy.sparse as sp

    import functools

    from .bunch import dict_verdict
    from .table import Refused
    from .states import (ARRAY_PROTOCOL_ATTRIBUTES, HostileState, _check_built_dtype, _leaf_types, _value_verdict,
                         made_by_library, partial_verdict)

    seen: set[int] = set()
    trees: list[tuple[Any, _Entry, Any]] = []
    predictors: list[tuple[Any, _Entry, Any]] = []
    sparse_types: dict[type, bool] = {}
    stack: list[tuple[Any, _Entry, Any]] = [(root, _ROOT, None)]
    pop, push = stack.pop, stack.append
    checking = graph is not None
    leaves = _leaf_types() if checking else _leaves()
    functions = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, np.ufunc, type(np.mean),
                 types.BuiltinMethodType)
    while stack:
        obj, entry, owner = pop()
        kind = type(obj)
        if kind in leaves or _ident(obj) in seen:
            continue
        seen.add(_ident(obj))
        if len(seen) > _MAX_OBJECTS:
            raise _Bad(entry.path(), "more than two million objects")
        if checking:
            if isinstance(obj, type) or isinstance(obj, functions):
                # an attribute of an object library code made (`states.made_by_library`) is the library's choice
                why = None if entry.attr and owner is not None and made_by_library(type(owner)) else \
                    _value_verdict(obj, graph)  # type: ignore[arg-type]
                if why is not None:
                    raise HostileState(why)
                continue
            if isinstance(obj, np.dtype):
                _check_built_dtype(obj)
                continue
            if kind is functools.partial:
                why = partial_verdict(obj, graph)
                if why is not None:
                    raise HostileState(why)
                continue
        if kind is dict or isinstance(obj, dict):
            if checking and kind is not dict and kind not in _PLAIN_DICTS:  # a Bunch: its items (`bunch.py`)
                why = dict_verdict(obj, graph or ())
                if why is not None:
                    raise Refused(f"{why} (at {entry.path() or 'the top-level object'})")
            if checking and not leaves.issuperset(map(type, obj.keys())):
                for k in obj.keys():
                    if type(k) not in leaves:
                        push((k, _Entry(entry, "<a key>", True), owner))
            if not leaves.issuperset(map(type, obj.values())):  # one C-level pass for a big vocabulary
                for k, v in obj.items():
                    if type(v) not in leaves:
                        push((v, _Entry(entry, k, False), owner))
            continue
        if kind is list or kind is tuple or isinstance(obj, (list, tuple, set, frozenset)):
            if not leaves.issuperset(map(type, obj)):
                for i, v in enumerate(obj):
                    if type(v) not in leaves:
                        push((v, _Entry(entry, i, False), owner))
            continue
        if kind is np.ndarray or isinstance(obj, np.ndarray):
            dt = obj.dtype
            if checking and dt.fields and _ident(dt) not in seen:  # each dtype object once
                seen.add(_ident(dt))
                _check_built_dtype(dt)
            if dt.hasobject:
                for i, v in enumerate(obj.ravel().tolist()):
                    push((v, _Entry(entry, i, False), owner))
            continue
        mod = kind.__module__ or ""
        name = kind.__name__
        if mod == "sklearn.tree._tree" and name == "Tree":
            trees.append((obj, entry, owner))
        else:
            is_sparse = sparse_types.get(kind)
            if is_sparse is None:  # depends on the type only: asked once per class
                is_sparse = sparse_types[kind] = bool(sp.issparse(obj))
            if is_sparse:
                _sparse(obj, entry.path())
            elif name == "TreePredictor" and mod.startswith("sklearn."):
                predictors.append((obj, entry, owner))  # checked all together below
            elif mod.startswith("sklearn.neighbors._") and name.startswith(("KDTree", "BallTree")):
                _binary_tree(obj, entry.path())
            elif mod.startswith("xgboost") and name == "Booster":
                _xgboost(obj, entry.path())
            elif mod.startswith("lightgbm") and name == "Booster":
                _lightgbm(obj, entry.path())
            elif mod.startswith("catboost") and hasattr(obj, "get_tree_leaf_counts"):
                _catboost(obj, entry.path())
        attrs = getattr(obj, "__dict__", None)
        if type(attrs) is not dict:
            continue
        if checking and not ARRAY_PROTOCOL_ATTRIBUTES.isdisjoint(attrs):
            bad = sorted(k for k in attrs if k in ARRAY_PROTOCOL_ATTRIBUTES)
            raise HostileState(f"a {name} whose state sets {', '.join(bad)} (an array that would point at memory of "
                           "the file's choosing)")
        if mod.startswith("sklearn."):
            if "support_vectors_" in attrs or "categories_" in attrs or "_fit_X" in attrs:
                _estimator(obj, attrs, entry.path())
        for k, v in attrs.items():
            t = type(v)
            if t in leaves:
                continue
            if t is np.ndarray and not v.dtype.hasobject:
                if checking and v.dtype.fields and _ident(v.dtype) not in seen:
                    seen.add(_ident(v.dtype))
                    _check_built_dtype(v.dtype)
                continue
            push((v, _Entry(entry, k, True), obj))
    if trees:
        _trees(trees)
    if predictors:
        _hgb_predictors(predictors)


#: dict subclasses that are plain containers (their items are not attributes).
_PLAIN_DICTS = frozenset({__import__("collections").OrderedDict, __import__("collections").defaultdict,
                          __import__("collections").Counter})


def _leaves() -> frozenset:
    global _LEAVES
    if _LEAVES is None:
        scalars = {t for t in np.sctypeDict.values() if isinstance(t, type) and not issubclass(t, np.object_)}
        _LEAVES = frozenset({str, bytes, int, float, bool, complex, type(None), np.dtype, type} | scalars
                            | {type(np.dtype("f8"))})
    return _LEAVES


_LEAVES: frozenset | None = None


# -- scikit-learn trees ----------------------------------------------------------------------------------------
def _n_features_of(owner: Any) -> int | None:
    n = getattr(owner, "__dict__", {}).get("n_features_in_") if owner is not None else None
    return n if type(n) is int or isinstance(n, np.integer) else None


def _check_tree_links(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, where: str) -> None:
    """`left`/`right` child indices of internal nodes (`~leaf`): in range, each non-root node the child of exactly
    one node, the root of none, and reachable from the root (so acyclic)."""
    n = len(left)
    internal = ~leaf
    kids = np.concatenate([left[internal], right[internal]]).astype(np.int64, copy=False)
    if kids.size and (kids.min() < 1 or kids.max() >= n):
        bad = int(np.flatnonzero(internal & ((left < 1) | (left >= n) | (right < 1) | (right >= n)))[0])
        raise _Bad(f"{where}[{bad}]", f"node {bad} has a child index outside [1, {n})")
    counts = np.bincount(kids, minlength=n)
    if n and (counts[1:] != 1).any():
        bad = int(np.flatnonzero(counts[1:] != 1)[0]) + 1
        raise _Bad(f"{where}[{bad}]", f"node {bad} is the child of {int(counts[bad])} nodes (a tree needs one)")
    idx = np.arange(n)
    if ((left[internal] > idx[internal]) & (right[internal] > idx[internal])).all():
        return  # children always after their parent (how scikit-learn builds trees): no cycle
    seen = np.zeros(n, bool)
    frontier = np.array([0])
    while frontier.size:
        seen[frontier] = True
        inner = frontier[internal[frontier]]
        frontier = np.concatenate([left[inner], right[inner]]).astype(np.int64)
        if seen[frontier].any():
            raise _Bad(where, "the nodes form a cycle")
    if not seen.all():
        bad = int(np.flatnonzero(~seen)[0])
        raise _Bad(f"{where}[{bad}]", f"node {bad} is not reachable from the root (the links form a cycle)")


def _concat_records(arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Concatenate C-contiguous arrays whose dtype the caller checked is `dtype`, as raw bytes: one C-level copy
    (`bytes.join` reads each array's buffer; numpy's own concatenate promotes the fields of each structured array
    in Python, and a view per array costs a call each). Read-only. BufferError for an array that is not
    contiguous."""
    return np.frombuffer(b"".join(arrays), dtype)


def _distinct(objs: list[Any]) -> Any:
    """The distinct objects of `objs` by identity (a file's memo gives one dtype object per layout). The common
    case, one object repeated, is told by one C-level pass of identity comparisons."""
    if objs and all(map(is_, objs, repeat(objs[0]))):
        return objs[:1]
    return dict(zip(map(_ident, objs), objs)).values()


def _links_ok(left: np.ndarray, right: np.ndarray, internal: np.ndarray, counts: np.ndarray) -> bool:
    """The fast acceptance test for many trees' concatenated node arrays (`counts` nodes each, `counts` >= 1;
    `left`/`right` int64 local child indices of every node, `internal` the global indices of the nodes that are
    not leaves): every internal node's children lie after it and inside its own tree, and every node but each
    tree's root has exactly one parent (so each tree is a tree: in range, acyclic, all nodes reachable).

    Each tree of m nodes has (m - 1) / 2 internal ones; their 2 (m - 1) / 2 = m - 1 children, when distinct and
    each after its parent inside its tree (never a root), are exactly the tree's other nodes. Distinctness is one
    scatter into a flag per node; no per-node count (bincount) and no boolean compress. False means "check each
    tree alone"."""
    n, t, k = len(left), len(counts), len(internal)
    if 2 * k != n - t:
        return False
    if k == 0:
        return True
    starts = np.zeros(t, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    tree = np.repeat(np.arange(t), counts).take(internal)  # each internal node's tree
    after = internal - starts.take(tree) + 1  # its local index + 1: where its children may start
    room = (counts.take(tree) - after).view(np.uint64)  # how many nodes follow it in its tree (>= 0)
    # a child's place among the nodes that follow its parent, in [0, room) as an unsigned word: a child at or
    # before its parent, or past its tree, wraps or exceeds (int64 arithmetic wraps, and wrapping is one-to-one)
    lo, ro = left.take(internal) - after, right.take(internal) - after
    if not (lo.view(np.uint64) < room).all() or not (ro.view(np.uint64) < room).all():
        return False
    seen = np.zeros(n, np.bool_)
    first = internal + 1
    seen[first + lo] = True
    seen[first + ro] = True
    return int(np.count_nonzero(seen)) == 2 * k


def _trees(found: list[tuple[Any, _Entry, Any]]) -> None:
    """All scikit-learn trees at once: a few numpy operations over the concatenated node arrays (a forest of 300
    trees costs about as much as one tree); a tree that fails is then checked alone for the message."""
    try:
        nodes_list, counts, feats = [], [], []
        dtype = None
        for tree, _entry, owner in found:
            n, cap = tree.node_count, tree.capacity
            nf = tree.n_features
            want = _n_features_of(owner)
            if not 1 <= n <= cap or nf < 1 or (want is not None and nf != want) or tree.max_depth > n \
                    or tree.max_depth < 0:
                raise IndexError
            nodes = tree.__getstate__()["nodes"]  # a view of the tree's own node buffer (no copy)
            if len(nodes) != n:
                raise IndexError
            if nodes.dtype is not dtype:  # one dtype object for every tree (scikit-learn's NODE_DTYPE)
                if dtype is not None or not _node_layout(nodes.dtype):
                    raise TypeError
                dtype = nodes.dtype
            nodes_list.append(nodes)
            counts.append(n)
            feats.append(nf)
        ok = _node_chunks_ok(nodes_list, counts, feats)
    except (IndexError, ValueError, KeyError, TypeError, BufferError):
        ok = False
    if ok:
        return
    for tree, entry, owner in found:
        _tree(tree, entry.path(), owner)


#: How many tree nodes `_node_chunks_ok` checks at once: 8192 records of 64 bytes (512 KiB) and the columns read from
#: them stay in a core's cache while a few numpy operations pass over them. One join of a whole forest (8 MiB for 300
#: trees of depth 12) was a fresh mapping of memory on every load (page faults) and each later pass over it a read
#: from memory: the forest's trees took 4.4 ms that way, 3.2 ms in chunks of 8192 nodes.
_CHUNK_NODES = 8192


def _node_chunks_ok(nodes_list: list[np.ndarray], counts: list[int], feats: list[int]) -> bool:
    """`_node_links_ok` over consecutive groups of trees of about `_CHUNK_NODES` nodes (a tree larger than that
    alone): the same checks, tree by tree, on data that stays in cache."""
    i, n = 0, len(nodes_list)
    while i < n:
        j, total = i + 1, counts[i]
        while j < n and total + counts[j] <= _CHUNK_NODES:
            total += counts[j]
            j += 1
        if not _node_links_ok(nodes_list[i:j], np.asarray(counts[i:j], np.int64), feats[i:j]):
            return False
        i = j
    return True


def _node_layout(dtype: np.dtype) -> bool:
    """scikit-learn's tree node record as `_node_links_ok` reads it: 64 bytes, native int64 children and feature
    at bytes 0, 8 and 16, the missing-values flag a byte at 56."""
    f = dtype.fields or {}
    i8 = np.dtype(np.int64)
    return dtype.itemsize == 64 and all(name in f and f[name][0] == i8 and f[name][1] == off for name, off in (
        ("left_child", 0), ("right_child", 8), ("feature", 16))) and "missing_go_to_left" in f and \
        f["missing_go_to_left"][0] == np.dtype(np.uint8) and f["missing_go_to_left"][1] == 56


def _node_links_ok(nodes_list: list[np.ndarray], counts: np.ndarray, feats: list[int]) -> bool:
    """The fast acceptance test for many trees' node records (`_node_layout`): leaves have neither child, the
    missing-values flag is 0 or 1, each internal node's feature lies in [0, n_features) and its children after it
    inside its own tree, and every node but each tree's root has exactly one parent (so each tree is a tree: in
    range, acyclic, all nodes reachable). The records are copied once as 64-bit words and their three first words
    once more as columns; nothing indexes the records by field. False means "check each tree alone"."""
    words = _concat_records(nodes_list, np.dtype(np.int64)).reshape(-1, 8)
    if int(words.view(np.uint8)[:, 56].max()) > 1:
        return False
    left, right, feature = np.array(words[:, :3].T, order="C")  # one copy of the three first words, as columns
    del words
    leaf = left == -1
    if not np.array_equal(right == -1, leaf):
        return False
    internal = np.flatnonzero(~leaf)
    nf = np.asarray(feats)
    # an internal node's feature in [0, n_features): as unsigned words, a negative one is past any n_features
    bound = np.uint64(nf[0]) if (nf == nf[0]).all() else np.repeat(nf, counts).take(internal).astype(np.uint64)
    if not (feature.take(internal).view(np.uint64) < bound).all():
        return False
    return _links_ok(left, right, internal, counts)


def _tree(tree: Any, where: str, owner: Any) -> None:
    where = f"{where}"
    n, cap = int(tree.node_count), int(tree.capacity)
    if not 1 <= n <= cap:
        raise _Bad(f"{_p(where)}node_count", f"node_count {n} is outside [1, capacity {cap}]")
    n_features, n_outputs = int(tree.n_features), int(tree.n_outputs)
    expected = _n_features_of(owner)
    if n_features < 1 or (expected is not None and n_features != expected):
        raise _Bad(f"{_p(where)}n_features", f"the tree reads {n_features} features but the model takes {expected}")
    n_classes = np.asarray(tree.n_classes)
    if n_outputs < 1 or n_classes.shape != (n_outputs,) or (n_classes < 1).any() or \
            n_classes.max() != tree.max_n_classes:
        raise _Bad(f"{_p(where)}n_classes", "class counts that disagree with n_outputs / max_n_classes")
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    leaf = left == -1
    if ((right == -1) != leaf).any():
        bad = int(np.flatnonzero((right == -1) != leaf)[0])
        raise _Bad(f"{_p(where)}children_right[{bad}]", "a node with one child (leaves have neither)")
    _check_tree_links(left, right, leaf, f"{_p(where)}children_left")
    feature = np.asarray(tree.feature)[~leaf]
    if feature.size and (feature.min() < 0 or feature.max() >= n_features):
        bad = int(np.flatnonzero(~leaf)[np.flatnonzero((feature < 0) | (feature >= n_features))[0]])
        raise _Bad(f"{_p(where)}feature[{bad}]", f"feature index {int(np.asarray(tree.feature)[bad])} outside "
                                              f"[0, {n_features})")
    missing = np.asarray(tree.missing_go_to_left)
    if missing.size and missing.max() > 1:
        raise _Bad(f"{_p(where)}missing_go_to_left", "a flag other than 0 or 1")
    if tuple(np.shape(tree.value)) != (n, n_outputs, int(tree.max_n_classes)):
        raise _Bad(f"{_p(where)}value", f"shape {np.shape(tree.value)} for {n} nodes")
    if not 0 <= int(tree.max_depth) <= n:
        raise _Bad(f"{_p(where)}max_depth", f"max_depth {tree.max_depth} for {n} nodes")


_DICT_OF, _FIRST, _THIRD = attrgetter("__dict__"), itemgetter(0), itemgetter(2)
_DTYPE_OF, _SHAPE_OF, _NDIM_OF = attrgetter("dtype"), attrgetter("shape"), attrgetter("ndim")
_NODES, _BINNED_BITS, _RAW_BITS = itemgetter("nodes"), itemgetter("binned_left_cat_bitsets"), \
    itemgetter("raw_left_cat_bitsets")


def _hgb_predictors(found: list[tuple[Any, _Entry, Any]]) -> None:
    """All HistGradientBoosting predictors at once, like `_trees`: their node arrays are concatenated (one copy)
    and checked with a few numpy operations, and the per-predictor facts (array types, layouts, bitset shapes,
    the owner's feature count) are gathered with C-level maps rather than a Python loop; a predictor that fails is
    then checked alone for the message."""
    try:
        ok = _hgb_nodes_ok(found)
    except (IndexError, ValueError, KeyError, TypeError, BufferError, AttributeError):
        ok = False
    if ok:
        return
    for pred, entry, owner in found:
        _hgb_predictor(pred, entry.path(), owner)


def _hgb_nodes_ok(found: list[tuple[Any, _Entry, Any]]) -> bool:
    """The fast acceptance test of `_hgb_predictors`: every predictor's `nodes` a non-empty 1-D array of
    scikit-learn's record layout and its two bitset arrays (n, 8) uint32; flags 0 or 1; each internal node's
    feature in [0, its owner's feature count) and, when categorical, its bitset index below its bitset count;
    the links a tree per predictor (`_links_ok`). False (or an exception) means "check each predictor alone".

    The records are packed (fields at odd offsets): the fields are read as byte columns of the concatenated
    records (`_hgb_columns`), each group copied once into an aligned array, rather than field by field."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    attrs = list(map(_DICT_OF, map(_FIRST, found)))
    nodes_list = list(map(_NODES, attrs))
    b1, b2 = list(map(_BINNED_BITS, attrs)), list(map(_RAW_BITS, attrs))
    bits = b1 + b2
    if not {np.ndarray}.issuperset(map(type, nodes_list)) or not {np.ndarray}.issuperset(map(type, bits)):
        return False
    for dt in _distinct(list(map(_DTYPE_OF, nodes_list))):  # a file's memo: one dtype object, compared once
        if dt != PREDICTOR_RECORD_DTYPE:
            return False
    for dt in _distinct(list(map(_DTYPE_OF, bits))):
        if dt != np.uint32:
            return False
    for shape in set(map(_SHAPE_OF, bits)):
        if len(shape) != 2 or shape[1] != 8:
            return False
    if set(map(_NDIM_OF, nodes_list)) != {1}:
        return False
    counts = np.fromiter(map(len, nodes_list), np.int64, len(nodes_list))
    if counts.min() < 1:
        return False
    cols = _hgb_columns(PREDICTOR_RECORD_DTYPE)
    buf = b"".join(nodes_list)  # the records, concatenated in one C-level copy
    size = PREDICTOR_RECORD_DTYPE.itemsize
    n = len(buf) // size

    def column(name: str) -> np.ndarray:  # one field of every record: a strided view of the bytes
        off, code = cols[name]
        return np.ndarray((n,), code, buf, off, (size,))

    owners = list(map(_THIRD, found))
    bound = {}
    for owner in _distinct(owners):  # each estimator's feature count, asked once
        n_features = _hgb_n_features(owner if owner is not None and hasattr(owner, "__dict__") else None)
        bound[_ident(owner)] = n_features if n_features is not None else np.iinfo(np.int64).max
    limit: Any = next(iter(bound.values())) if len(bound) == 1 else np.repeat(
        np.fromiter(map(bound.__getitem__, map(_ident, owners)), np.int64, len(owners)), counts)
    is_leaf, is_cat = column("is_leaf"), column("is_categorical")
    if max(int(is_leaf.max()), int(column("missing_go_to_left").max()), int(is_cat.max())) > 1:
        return False
    leaf = is_leaf.astype(np.bool_)  # 0 or 1: checked above
    feature = column("feature_idx").copy()  # aligned: the record's field is not
    if not (((feature >= 0) & (feature < limit)) | leaf).all():
        return False
    cat = is_cat.astype(np.bool_) & ~leaf
    if cat.any():
        n_bits = np.fromiter(map(min, map(len, b1), map(len, b2)), np.int64, len(b1))
        if not (column("bitset_idx")[cat] < np.repeat(n_bits, counts)[cat]).all():
            return False
    return _links_ok(column("left").astype(np.int64), column("right").astype(np.int64), np.flatnonzero(~leaf),
                     counts)


@functools.lru_cache(maxsize=4)
def _hgb_columns(dtype: np.dtype) -> dict[str, tuple[int, np.dtype]]:
    """(offset, dtype) of the fields of scikit-learn's predictor record that `_hgb_nodes_ok` reads; KeyError or
    ValueError (the caller then checks each predictor alone) for a layout without them or with other types."""
    f = dtype.fields
    want = {"missing_go_to_left": "u1", "is_leaf": "u1", "is_categorical": "u1", "feature_idx": "=i8",
            "bitset_idx": "=u4", "left": "=u4", "right": "=u4"}
    out = {}
    for name, code in want.items():
        sub, off = f[name][:2]
        if sub != np.dtype(code) or sub.byteorder not in ("=", "|"):
            raise ValueError(name)
        out[name] = (off, sub)
    return out


def _hgb_predictor(pred: Any, where: str, owner: Any) -> None:
    attrs = pred.__dict__
    nodes = attrs.get("nodes")
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.dtype.names is None or len(nodes) < 1:
        raise _Bad(f"{_p(where)}nodes", "not a 1-D array of predictor nodes")
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    if nodes.dtype != PREDICTOR_RECORD_DTYPE:
        raise _Bad(f"{_p(where)}nodes", "a node array of another layout")
    leaf = nodes["is_leaf"].astype(bool)
    if nodes["is_leaf"].max() > 1:
        raise _Bad(f"{_p(where)}nodes", "an is_leaf flag other than 0 or 1")
    _check_tree_links(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf, f"{_p(where)}nodes")
    feat = nodes["feature_idx"][~leaf]
    hgb = owner if owner is not None and hasattr(owner, "__dict__") else None
    n_features = _hgb_n_features(hgb)
    if feat.size and (feat.min() < 0 or (n_features is not None and feat.max() >= n_features)):
        raise _Bad(f"{_p(where)}nodes['feature_idx']", f"a feature index outside [0, {n_features})")
    for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bits = attrs.get(name)
        if not isinstance(bits, np.ndarray) or bits.ndim != 2 or bits.shape[1] != 8 or bits.dtype != np.uint32:
            raise _Bad(f"{_p(where)}{name}", "not an (n, 8) uint32 bitset array")
        cat = (~leaf) & nodes["is_categorical"].astype(bool)
        if cat.any() and nodes["bitset_idx"][cat].max() >= bits.shape[0]:
            raise _Bad(f"{_p(where)}nodes['bitset_idx']", f"a bitset index past the {bits.shape[0]} bitsets")
    if nodes["missing_go_to_left"].max() > 1 or nodes["is_categorical"].max() > 1:
        raise _Bad(f"{_p(where)}nodes", "a flag other than 0 or 1")


def _hgb_n_features(hgb: Any) -> int | None:
    """The columns an HGB estimator's predictors may read: its `_n_features` and its `n_features_in_`, the smaller
    of the two when both are there. scikit-learn checks the rows it predicts on against `n_features_in_` only, so
    a file whose `_n_features` says more (10**7 against 3) and whose nodes read column 5,000,000 passed this check
    and made `predict` read far outside the rows (SIGSEGV)."""
    # the predictors hang off `_predictors` of the estimator; `owner` is the list's owner when reached that way
    if hgb is None:
        return None
    n = hgb.__dict__.get("_n_features")
    inner = int(n) if type(n) is int or isinstance(n, np.integer) else None
    outer = _n_features_of(hgb)
    if inner is None or outer is None:
        return outer if inner is None else inner
    return min(inner, int(outer))


# -- neighbours ---------------------------------------------------------------------------------------------------
def _binary_tree(tree: Any, where: str) -> None:
    try:
        state = tree.__getstate__()
    except Exception as exc:
        raise _Bad(where, f"its state cannot be read ({type(exc).__name__})") from None
    data, idx, node_data, bounds, leaf_size, n_levels, n_nodes = state[:7]
    data, idx, node_data, bounds = (np.asarray(a) for a in (data, idx, node_data, bounds))
    if data.ndim != 2:
        raise _Bad(f"{_p(where)}data", "not a 2-D array")
    n, d = data.shape
    if idx.shape != (n,) or (n and _past(idx, n)):
        raise _Bad(f"{_p(where)}idx_array", f"indices outside [0, {n}) or not one per sample")
    if n_nodes != len(node_data) or n_nodes < 1 or n_levels < 1 or n_levels > 64 or n_nodes != 2 ** n_levels - 1:
        raise _Bad(f"{_p(where)}node_data", f"{len(node_data)} nodes for n_nodes={n_nodes}, n_levels={n_levels}")
    if node_data.dtype.names is None or not {"idx_start", "idx_end", "is_leaf"} <= set(node_data.dtype.names):
        raise _Bad(f"{_p(where)}node_data", "not a node record array")
    start, end, is_leaf = node_data["idx_start"], node_data["idx_end"], node_data["is_leaf"]
    if start.dtype.kind == "i" and end.dtype == start.dtype:
        # as unsigned words a negative index is past any n: end in [0, n] and start in [0, end], in two passes
        su, eu = (a.view(a.dtype.str.replace("i", "u", 1)) for a in (start, end))
        bad_range = ((su > eu) | (eu > n)).any()
    else:
        bad_range = ((start < 0) | (end < start) | (end > n)).any()
    if bad_range:
        bad = int(np.flatnonzero((start < 0) | (end < start) | (end > n))[0])
        raise _Bad(f"{_p(where)}node_data[{bad}]", f"an index range outside [0, {n}]")
    # node i's children are 2i+1 and 2i+2 (n_nodes = 2**n_levels - 1, checked above): the nodes from
    # (n_nodes - 1) // 2 on are the last level, which must be all leaves
    if (is_leaf[(n_nodes - 1) // 2:] == 0).any():
        raise _Bad(f"{_p(where)}node_data", "a node marked internal on the last level (its children do not exist)")
    if bounds.ndim != 3 or bounds.shape[1:] != (n_nodes, d) or bounds.shape[0] not in (1, 2):
        raise _Bad(f"{_p(where)}node_bounds", f"shape {bounds.shape} for {n_nodes} nodes of {d} features")
    if int(leaf_size) < 1:
        raise _Bad(f"{_p(where)}leaf_size", "not positive")
    weight = state[12] if len(state) > 12 else None
    if weight is not None and np.shape(weight) != (n,):
        raise _Bad(f"{_p(where)}sample_weight", "not one weight per sample")
    metric = state[11] if len(state) > 11 else None
    if metric is not None and hasattr(metric, "__getstate__"):
        mstate = metric.__getstate__()
        for i, arr in enumerate(mstate[1:3] if isinstance(mstate, tuple) else ()):
            arr = np.asarray(arr)
            if arr.size > 1 and d not in arr.shape:
                raise _Bad(f"{_p(where)}dist_metric", f"a metric parameter of shape {arr.shape} for {d} features")


def _past(idx: np.ndarray, n: int) -> bool:
    """Whether an integer index array holds an index outside [0, n): one pass (as unsigned words a negative index
    is past any n); other dtypes by their minimum and maximum."""
    kind = idx.dtype.kind
    if kind == "i":
        return bool(idx.view(idx.dtype.str.replace("i", "u", 1)).max() >= n)
    if kind == "u":
        return bool(idx.max() >= n)
    return bool(idx.min() < 0 or idx.max() >= n)


def _estimator(est: Any, attrs: dict, where: str) -> None:
    name = type(est).__name__
    if "_fit_X" in attrs and "n_samples_fit_" in attrs:
        fit_x = attrs["_fit_X"]
        n = attrs["n_samples_fit_"]
        if np.shape(fit_x)[0] != n:
            raise _Bad(f"{_p(where)}_fit_X", f"{np.shape(fit_x)[0]} rows for n_samples_fit_={n}")
        y = attrs.get("_y")
        if y is not None and np.shape(y)[0] != n:
            raise _Bad(f"{_p(where)}_y", f"{np.shape(y)[0]} labels for {n} fitted samples")
        tree = attrs.get("_tree")
        if tree is not None and hasattr(tree, "__getstate__") and not isinstance(tree, dict):
            data = np.asarray(tree.__getstate__()[0])
            if data.shape != np.shape(fit_x):
                raise _Bad(f"{_p(where)}_tree.data", f"shape {data.shape} but _fit_X is {np.shape(fit_x)}")
    if "support_vectors_" in attrs and "_n_support" in attrs:
        _svm(est, attrs, where)
    if "categories_" in attrs and name.endswith("Encoder"):
        _categories(attrs, where)


def _svm(est: Any, a: dict, where: str) -> None:
    sv, support, n_support = a["support_vectors_"], np.asarray(a.get("support_")), np.asarray(a["_n_support"])
    import scipy.sparse as sp

    dual, intercept = a.get("_dual_coef_", a.get("dual_coef_")), np.asarray(a.get("_intercept_"))
    dual = dual if sp.issparse(dual) else np.asarray(dual)

    if bool(a.get("_sparse")) != sp.issparse(sv):
        raise _Bad(f"{_p(where)}_sparse", "the sparse flag disagrees with the support vectors")
    l = sv.shape[0] if len(sv.shape) == 2 else -1
    if a.get("kernel") == "precomputed" and l == 0 and support.ndim == 1:
        l = len(support)  # no vectors kept: libsvm reads the kernel's columns support_ of the rows given
    if l < 0 or support.shape != (l,) or len(dual.shape) != 2 or dual.shape[1] != l:
        raise _Bad(f"{_p(where)}support_vectors_", f"{l} support vectors, support_ {support.shape}, dual_coef_ "
                                                f"{dual.shape}")
    if n_support.ndim != 1 or (n_support < 0).any():
        raise _Bad(f"{_p(where)}_n_support", "not a vector of non-negative counts")
    shape_fit = a.get("shape_fit_")
    n_fit = shape_fit[0] if isinstance(shape_fit, tuple) and shape_fit else None
    if l and n_fit is not None and (support.min() < 0 or support.max() >= n_fit):
        raise _Bad(f"{_p(where)}support_", f"indices outside [0, {n_fit})")
    classes = a.get("classes_")
    if classes is not None and type(est).__name__ in ("SVC", "NuSVC"):
        k = len(classes)
        if len(n_support) != k or int(n_support.sum()) != l or dual.shape[0] != k - 1 or \
                intercept.shape != (k * (k - 1) // 2,):
            raise _Bad(f"{_p(where)}_n_support", f"counts {n_support.tolist()} / dual_coef_ {dual.shape} / intercept "
                                              f"{intercept.shape} disagree with {k} classes and {l} vectors")
        for p in ("_probA", "_probB"):
            if np.size(a.get(p, ())) not in (0, k * (k - 1) // 2):
                raise _Bad(f"{_p(where)}{p}", "not one value per pair of classes")
    elif dual.shape[0] != 1 or intercept.size != 1:
        raise _Bad(f"{_p(where)}dual_coef_", f"shape {dual.shape} / intercept {intercept.shape} for a one-output SVM")
    n_features = _n_features_of(est)
    if l and a.get("kernel") != "precomputed" and n_features is not None and sv.shape[1] != n_features:
        raise _Bad(f"{_p(where)}support_vectors_", f"{sv.shape[1]} columns for {n_features} features")


_ARRAY_TYPE, _ONE, _HASOBJECT = frozenset({np.ndarray}), frozenset({1}), attrgetter("hasobject")
#: The exact types of categories that need no isinstance test (one C-level pass over a list of strings).
_CATEGORY_TYPES = frozenset({str, bytes, int, float, type(None)})


def _categories(a: dict, where: str) -> None:
    cats = a["categories_"]
    # the common list (exact arrays, all 1-D) in C-level passes; anything else item by item
    if not (type(cats) is list and _ARRAY_TYPE.issuperset(map(type, cats)) and _ONE.issuperset(map(_NDIM_OF, cats))) \
            and (not isinstance(cats, list) or not all(isinstance(c, np.ndarray) and c.ndim == 1 for c in cats)):
        raise _Bad(f"{_p(where)}categories_", "not a list of 1-D arrays")
    n = a.get("n_features_in_")
    if n is not None and len(cats) != n:
        raise _Bad(f"{_p(where)}categories_", f"{len(cats)} lists of categories for {n} features")
    # object arrays' items: strings or numbers (none to look at in the common case, arrays of strings or numbers)
    for i, c in enumerate(cats if any(map(_HASOBJECT, map(_DTYPE_OF, cats))) else ()):
        if c.dtype.hasobject and not _CATEGORY_TYPES.issuperset(map(type, items := c.tolist())) and not all(
                isinstance(v, (str, bytes, int, float, type(None), np.generic)) for v in items):
            raise _Bad(f"{_p(where)}categories_[{i}]", "categories that are not strings or numbers")
    drop = a.get("drop_idx_")
    if drop is not None:
        drop = np.asarray(drop, dtype=object)
        if drop.shape != (len(cats),) or any(d is not None and not (0 <= int(d) < len(cats[i]))
                                             for i, d in enumerate(drop.tolist())):
            raise _Bad(f"{_p(where)}drop_idx_", "an index outside its feature's categories")


# -- scipy.sparse -------------------------------------------------------------------------------------------------
def _sparse(m: Any, where: str) -> None:
    a = m.__dict__
    shape = a.get("_shape")
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(type(s) is int and 0 <= s < 1 << 40
                                                                  for s in shape)):
        raise _Bad(f"{_p(where)}_shape", "not two non-negative integers")
    fmt = m.format
    if fmt in ("csr", "csc", "bsr"):
        indptr, indices, data = (np.asarray(a.get(k)) for k in ("indptr", "indices", "data"))
        if fmt == "bsr":
            if data.ndim != 3:
                raise _Bad(f"{_p(where)}data", "not a 3-D block array")
            r, c = data.shape[1:]
            if r < 1 or c < 1 or shape[0] % r or shape[1] % c:
                raise _Bad(f"{_p(where)}data", f"blocks of {r}x{c} do not tile {shape}")
            major, minor = shape[0] // r, shape[1] // c
        else:
            major, minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
        if indptr.ndim != 1 or indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu" or \
                indptr.shape != (major + 1,):
            raise _Bad(f"{_p(where)}indptr", f"{indptr.shape} pointers for {major} rows/columns")
        if indptr[0] != 0 or (np.diff(indptr) < 0).any():
            raise _Bad(f"{_p(where)}indptr", "not starting at 0 and non-decreasing")
        nnz = int(indptr[-1])
        if indices.ndim != 1 or len(indices) < nnz or len(data) < nnz:
            raise _Bad(f"{_p(where)}indices", f"{len(indices)} indices / {len(data)} values for {nnz} entries")
        if nnz and (indices[:nnz].min() < 0 or indices[:nnz].max() >= minor):
            raise _Bad(f"{_p(where)}indices", f"a column/row index outside [0, {minor})")
    elif fmt == "coo":
        coords = a.get("coords")
        if coords is None:
            coords = (a.get("row"), a.get("col"))
        data = np.asarray(a.get("data"))
        if not isinstance(coords, tuple) or len(coords) != 2:
            raise _Bad(f"{_p(where)}coords", "not a (row, col) pair")
        for axis, c in enumerate(coords):
            c = np.asarray(c)
            if c.shape != data.shape or c.dtype.kind not in "iu" or (c.size and (c.min() < 0 or
                                                                                 c.max() >= shape[axis])):
                raise _Bad(f"{_p(where)}coords[{axis}]", f"indices outside [0, {shape[axis]}) or not one per value")
    elif fmt == "dia":
        data, offsets = np.asarray(a.get("data")), np.asarray(a.get("offsets"))
        if data.ndim != 2 or offsets.shape != (data.shape[0],) or offsets.dtype.kind not in "iu":
            raise _Bad(f"{_p(where)}offsets", "one offset per stored diagonal")
    elif fmt == "lil":
        rows, data = a.get("rows"), a.get("data")
        if not (isinstance(rows, np.ndarray) and isinstance(data, np.ndarray) and rows.shape == (shape[0],)
                and data.shape == (shape[0],)):
            raise _Bad(f"{_p(where)}rows", "not one list per row")
        for i, (r, d) in enumerate(zip(rows.tolist(), data.tolist())):
            if not (isinstance(r, list) and isinstance(d, list) and len(r) == len(d)
                    and all(type(c) is int and 0 <= c < shape[1] for c in r)):
                raise _Bad(f"{_p(where)}rows[{i}]", f"column indices outside [0, {shape[1]})")
    elif fmt == "dok":
        for key in dict.keys(m) if isinstance(m, dict) else getattr(m, "_dict", {}).keys():
            if not (isinstance(key, tuple) and len(key) == 2 and all(
                    type(k) is int and 0 <= k < s for k, s in zip(key, shape))):
                raise _Bad(f"{where}[{key!r}]", "a key outside the matrix")
    else:
        raise _Bad(where, f"a sparse matrix of the unknown format {fmt!r}")


# -- boosters (only reachable with --trust) --------------------------------------------------------------------
def _xgboost(booster: Any, where: str) -> None:
    import json

    try:
        model = json.loads(bytes(booster.save_raw(raw_format="json")))
        learner = model["learner"]
        n_features = int(learner["learner_model_param"]["num_feature"])
        trees = learner["gradient_booster"]["model"].get("trees", [])
    except Exception as exc:
        raise _Bad(where, f"its model cannot be dumped ({type(exc).__name__}: {exc})") from None
    for t, tree in enumerate(trees):
        left, right = np.asarray(tree["left_children"]), np.asarray(tree["right_children"])
        leaf = left == -1
        if left.shape != right.shape or ((right == -1) != leaf).any():
            raise _Bad(f"{_p(where)}trees[{t}]", "a node with one child")
        _check_tree_links(left, right, leaf, f"{_p(where)}trees[{t}].left_children")
        feat = np.asarray(tree["split_indices"])[~leaf]
        if feat.size and (feat.min() < 0 or (n_features and feat.max() >= n_features)):
            raise _Bad(f"{_p(where)}trees[{t}].split_indices", f"a feature index outside [0, {n_features})")


def _lightgbm(booster: Any, where: str) -> None:
    try:
        model = booster.dump_model()
    except Exception as exc:
        raise _Bad(where, f"its model cannot be dumped ({type(exc).__name__}: {exc})") from None
    n_features = int(model.get("max_feature_idx", -1)) + 1
    for t, info in enumerate(model.get("tree_info", [])):
        stack = [(info.get("tree_structure", {}), 0)]
        while stack:
            node, depth = stack.pop()
            if depth > 10000:
                raise _Bad(f"{_p(where)}tree_info[{t}]", "a tree deeper than 10000 levels")
            if "split_feature" in node:
                if not 0 <= int(node["split_feature"]) < max(n_features, 1):
                    raise _Bad(f"{_p(where)}tree_info[{t}]", f"a split on feature {node['split_feature']} outside "
                                                          f"[0, {n_features})")
                stack.extend((node[k], depth + 1) for k in ("left_child", "right_child") if k in node)


def _catboost(model: Any, where: str) -> None:
    try:
        counts = np.asarray(model.get_tree_leaf_counts())
    except Exception as exc:
        raise _Bad(where, f"its trees cannot be read ({type(exc).__name__}: {exc})") from None
    if (counts < 1).any():
        raise _Bad(f"{_p(where)}tree_leaf_counts", "a tree without leaves")
