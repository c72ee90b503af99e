"""Seeded single mutations of converted ONNX artifacts, and an independent test of whether a mutation is real.

Used by the checker's mutation benchmark (`benchmarks/bench_mutation.py`) and available to anything else that
needs subtly wrong artifacts (e.g. a certification benchmark):

    from benchmarks.mutations import KINDS, sites, pick_sites, mutate, mutations, verification_rows, real

`mutations(proto, rng, per_kind=2, n_train=None)` yields `(kind, site, mutated_proto, info)` for every kind of
issue 13: coefficient x (1 +- 1e-3); tree threshold moved 1-4 float32 steps at a random depth; leaf value changed
by 10% of the leaves' spread; two class labels swapped; two categories of an encoder swapped; intercept changed
by 1e-3 relative (1e-3 absolute at 0); one k-NN training point moved by 10% of each feature's spread (`n_train`:
the number of training points, which identifies their initializer). `real(original, mutated, rows, ...)` says
whether some row of `verification_rows(...)` (training rows, 20,000 uniform rows over 1.5x the training box, and
rows constructed for the mutation: every float32 value between a tree split's old and new threshold on a row
that reaches the node, a moved training point's old and new positions and the midpoints to its neighbours)
differs outside the checker's tolerance. Nothing here uses the checker's own input generation.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np

KINDS = ("coefficient", "threshold", "leaf", "label", "category", "intercept", "knn_point")


def _attr(node: Any, name: str) -> Any:
    return next((a for a in node.attribute if a.name == name), None)


def _floats(a: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(a.t).copy() if a.type == a.TENSOR else np.asarray(a.floats, dtype=np.float64)


def _set_floats(a: Any, v: np.ndarray) -> None:
    from onnx import numpy_helper

    if a.type == a.TENSOR:
        a.t.CopyFrom(numpy_helper.from_array(v.astype(numpy_helper.to_array(a.t).dtype), a.t.name))
    else:
        del a.floats[:]
        a.floats.extend(v.astype(np.float32).tolist())


def _consumers(graph: Any) -> dict[str, list[Any]]:
    use: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            use.setdefault(i, []).append(n)
    return use


def sites(proto: Any, kind: str, n_train: int | None) -> list[tuple[Any, ...]]:
    """Where a mutation of `kind` can go: (tag, node-or-initializer index, attribute name, element index)."""
    from onnx import numpy_helper

    g = proto.graph
    use = _consumers(g)
    sites: list[tuple[Any, ...]] = []
    for k, init in enumerate(g.initializer):
        if init.data_type not in (1, 11):
            continue
        arr = numpy_helper.to_array(init)
        users = [n.op_type for n in use.get(init.name, [])]
        if kind == "coefficient" and arr.ndim >= 2 and arr.size > 1 and any(u in ("MatMul", "Gemm") for u in users):
            sites += [("init", k, None, j) for j in range(arr.size)]
        if kind == "intercept" and arr.size >= 1 and any(u == "Add" for u in users) and \
                not any(u in ("MatMul", "Gemm") for u in users) and arr.ndim <= 2 and arr.size <= 64:
            sites += [("init", k, None, j) for j in range(arr.size)]
        if kind == "knn_point" and n_train and arr.ndim == 2 and arr.shape[0] == n_train and arr.shape[1] >= 1:
            sites += [("init", k, None, j) for j in range(arr.shape[0])]
        if kind == "leaf" and arr.size > 1 and any(u == "Gather" for u in users):  # leaf values read by index
            sites += [("init", k, None, j) for j in range(arr.size)]
    for k, node in enumerate(g.node):
        op = node.op_type
        if "_roworder_" in node.name:  # the key tree that orders rows for speed: changing it changes no output
            continue
        if kind == "coefficient":
            for name in ("coefficients",):
                a = _attr(node, name)
                if a is not None and op in ("LinearClassifier", "LinearRegressor", "SVMClassifier", "SVMRegressor"):
                    sites += [("attr", k, name, j) for j in range(len(_floats(a)))]
        if kind == "intercept":
            for name in ("intercepts", "rho", "base_values", "offset"):
                a = _attr(node, name)
                if a is not None and op in ("LinearClassifier", "LinearRegressor", "SVMClassifier", "SVMRegressor",
                                            "TreeEnsembleRegressor", "TreeEnsembleClassifier", "Scaler"):
                    sites += [("attr", k, name, j) for j in range(len(_floats(a)))]
        if kind == "threshold" and op in ("TreeEnsemble", "TreeEnsembleRegressor", "TreeEnsembleClassifier"):
            name = "nodes_splits" if op == "TreeEnsemble" else "nodes_values"
            a = _attr(node, name) or _attr(node, "nodes_values_as_tensor")
            if a is not None:
                sites += [("thr", k, a.name, j) for j in _inner_nodes(node)]
        if kind == "leaf":
            for name in ("leaf_weights", "target_weights", "class_weights"):
                a = _attr(node, name)
                if a is not None:
                    sites += [("attr", k, name, j) for j in range(len(_floats(a)))]
        if kind == "label":
            for name in ("classlabels_ints", "classlabels_int64s", "classlabels_strings"):
                a = _attr(node, name)
                if a is not None and len(a.ints or a.strings) > 1:
                    sites.append(("swap", k, name, 0))
        if kind == "category" and op in ("OneHotEncoder", "LabelEncoder", "CategoryMapper"):
            for name in ("cats_strings", "cats_int64s", "keys_strings", "keys_int64s"):
                a = _attr(node, name)
                if a is not None and len(a.ints or a.strings) > 1:
                    sites.append(("swap", k, name, 0))
    if kind == "label":  # class constants read by Gather / ArrayFeatureExtractor after an ArgMax
        for k, init in enumerate(g.initializer):
            if init.data_type in (6, 7, 8) and any(n.op_type in ("Gather", "ArrayFeatureExtractor")
                                                   for n in use.get(init.name, [])):
                arr = numpy_helper.to_array(init)
                if arr.ndim == 1 and 1 < arr.size <= 100 and len(set(arr.tolist())) == arr.size and \
                        (n_train is None or arr.size != n_train):
                    sites.append(("swap_init", k, None, 0))
    return sites


def _inner_nodes(node: Any) -> list[int]:
    if node.op_type == "TreeEnsemble":
        return list(range(len(_attr(node, "nodes_featureids").ints)))
    modes = [m.decode() if isinstance(m, bytes) else m for m in _attr(node, "nodes_modes").strings]
    return [j for j, m in enumerate(modes) if m != "LEAF"]


def _depths(node: Any) -> dict[int, int]:
    """Depth of each interior node of a tree ensemble (index in the split arrays)."""
    depth: dict[int, int] = {}
    if node.op_type == "TreeEnsemble":
        tid = list(_attr(node, "nodes_truenodeids").ints)
        tl = list(_attr(node, "nodes_trueleafs").ints)
        fid = list(_attr(node, "nodes_falsenodeids").ints)
        fl = list(_attr(node, "nodes_falseleafs").ints)
        stack = [(int(r), 0) for r in _attr(node, "tree_roots").ints]
        while stack:
            i, d = stack.pop()
            if i in depth:
                continue
            depth[i] = d
            if not tl[i]:
                stack.append((tid[i], d + 1))
            if not fl[i]:
                stack.append((fid[i], d + 1))
        return depth
    trees = list(_attr(node, "nodes_treeids").ints)
    ids = list(_attr(node, "nodes_nodeids").ints)
    pos = {(t, n): j for j, (t, n) in enumerate(zip(trees, ids))}
    tids, fids = list(_attr(node, "nodes_truenodeids").ints), list(_attr(node, "nodes_falsenodeids").ints)
    for j, (t, n) in enumerate(zip(trees, ids)):
        if n == 0:
            depth[j] = 0
    changed = True
    while changed:
        changed = False
        for j in list(depth):
            for c in (tids[j], fids[j]):
                q = pos.get((trees[j], c))
                if q is not None and q not in depth:
                    depth[q] = depth[j] + 1
                    changed = True
    return depth


def mutate(proto: Any, kind: str, site: tuple[Any, ...], rng: np.random.Generator) -> tuple[Any, dict[str, Any]]:
    from onnx import numpy_helper

    p = copy.deepcopy(proto)
    g = p.graph
    tag, k, name, j = site
    info: dict[str, Any] = {"kind": kind}
    if tag == "init":
        init = g.initializer[k]
        arr = numpy_helper.to_array(init).copy()
        flat = arr.reshape(arr.shape[0], -1) if kind == "knn_point" else arr.reshape(-1)
        if kind == "leaf":
            spread = float(np.std(flat)) or 1.0
            flat[j] = flat[j] + rng.choice([-1, 1]) * 0.1 * spread
        elif kind == "knn_point":
            spread = np.std(arr, axis=0) + 1e-12
            old = flat[j].copy()
            flat[j] = flat[j] + 0.1 * spread * rng.choice([-1, 1], size=spread.shape)
            info.update(old=old, new=flat[j].copy())
        elif kind == "coefficient":
            flat[j] = flat[j] * (1 + rng.choice([-1, 1]) * 1e-3)
        else:
            flat[j] = flat[j] * (1 + 1e-3) if flat[j] != 0 else flat[j] + 1e-3
        init.CopyFrom(numpy_helper.from_array(flat.reshape(arr.shape).astype(arr.dtype), init.name))
    elif tag == "attr":
        a = _attr(g.node[k], name)
        v = _floats(a).astype(np.float64)
        if kind == "leaf":
            spread = float(np.std(v)) or 1.0
            v[j] = v[j] + rng.choice([-1, 1]) * 0.1 * spread
            info["leaf"] = j
        elif kind == "coefficient":
            v[j] = v[j] * (1 + rng.choice([-1, 1]) * 1e-3)
        else:
            v[j] = v[j] * (1 + 1e-3) if v[j] != 0 else v[j] + 1e-3
        _set_floats(a, v)
    elif tag == "thr":
        node = g.node[k]
        a = _attr(node, name)
        v = _floats(a)
        steps = int(rng.integers(1, 5)) * int(rng.choice([-1, 1]))
        old = v[j]
        x = np.float32(v[j])
        for _ in range(abs(steps)):
            x = np.nextafter(x, np.float32(np.inf if steps > 0 else -np.inf))
        v[j] = x
        _set_floats(a, v)
        info.update(node=k, split=j, old=float(old), new=float(x), steps=steps)
    elif tag in ("swap", "swap_init"):
        if tag == "swap":
            a = _attr(g.node[k], name)
            vals = list(a.ints) if a.ints else list(a.strings)
            i1, i2 = rng.choice(len(vals), 2, replace=False)
            vals[i1], vals[i2] = vals[i2], vals[i1]
            if a.ints:
                del a.ints[:]
                a.ints.extend(vals)
            else:
                del a.strings[:]
                a.strings.extend(vals)
        else:
            init = g.initializer[k]
            arr = numpy_helper.to_array(init).copy()
            i1, i2 = rng.choice(len(arr), 2, replace=False)
            arr[[i1, i2]] = arr[[i2, i1]]
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    return p, info


def pick_sites(proto: Any, kind: str, sites: list[tuple[Any, ...]], rng: np.random.Generator,
                n: int) -> list[tuple[Any, ...]]:
    if not sites:
        return []
    if kind == "threshold":  # a random depth first, then a node at that depth
        out = []
        by_node: dict[int, list[tuple[Any, ...]]] = {}
        for s in sites:
            by_node.setdefault(s[1], []).append(s)
        for _ in range(n):
            k = list(by_node)[int(rng.integers(0, len(by_node)))]
            depth = _depths(proto.graph.node[k])
            levels = sorted({depth.get(s[3], 0) for s in by_node[k]})
            lvl = levels[int(rng.integers(0, len(levels)))]
            at = [s for s in by_node[k] if depth.get(s[3], 0) == lvl]
            out.append(at[int(rng.integers(0, len(at)))])
        return out
    idx = rng.choice(len(sites), min(n, len(sites)), replace=False)
    return [sites[i] for i in idx]


# ---- is the mutation real? ---------------------------------------------------------------------------------

def verification_rows(X: np.ndarray, info: dict[str, Any], proto: Any, rng: np.random.Generator) -> np.ndarray:
    lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * 1.5 + 1e-9
    rows = [X, mid + rng.uniform(-1, 1, (20000, X.shape[1])) * half]
    if info["kind"] == "threshold":
        rows.append(_reaching_rows(proto, info, X))
    if info["kind"] == "knn_point" and np.size(info["old"]) == X.shape[1]:
        # (a k-NN model behind transformers keeps its points in derived units: nothing to construct in raw ones)
        old, new = np.asarray(info["old"], float), np.asarray(info["new"], float)
        d = np.linalg.norm(X - old, axis=1)
        near = X[np.argsort(d)[:20]]
        rows += [old[None], new[None], (near + old) / 2, (near + new) / 2]
    return np.concatenate(rows).astype(np.float64)


def _tree_arrays(node: Any) -> tuple[list[int], np.ndarray, list[int], list[int], list[int]]:
    """(feature, threshold, mode code, true child, false child) per node of a tree ensemble (-1: a leaf child);
    v5 `TreeEnsemble` lists interior nodes only, v1/v3 every node."""
    if node.op_type == "TreeEnsemble":
        feat = list(_attr(node, "nodes_featureids").ints)
        thr = _floats(_attr(node, "nodes_splits")).astype(np.float64)
        modes = [int(m) for m in _floats(_attr(node, "nodes_modes"))]
        tid, tl = list(_attr(node, "nodes_truenodeids").ints), list(_attr(node, "nodes_trueleafs").ints)
        fid, fl = list(_attr(node, "nodes_falsenodeids").ints), list(_attr(node, "nodes_falseleafs").ints)
        return feat, thr, modes, [-1 if lf else t for t, lf in zip(tid, tl)], [-1 if lf else f for f, lf in zip(fid, fl)]
    names = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3}
    trees, ids = list(_attr(node, "nodes_treeids").ints), list(_attr(node, "nodes_nodeids").ints)
    pos = {(t, n): j for j, (t, n) in enumerate(zip(trees, ids))}
    a = _attr(node, "nodes_values_as_tensor") or _attr(node, "nodes_values")
    modes = [names.get(m.decode() if isinstance(m, bytes) else m, 9) for m in _attr(node, "nodes_modes").strings]
    tids, fids = list(_attr(node, "nodes_truenodeids").ints), list(_attr(node, "nodes_falsenodeids").ints)
    return (list(_attr(node, "nodes_featureids").ints), _floats(a).astype(np.float64), modes,
            [pos.get((t, c), -1) if m != 9 else -1 for t, c, m in zip(trees, tids, modes)],
            [pos.get((t, c), -1) if m != 9 else -1 for t, c, m in zip(trees, fids, modes)])


def _reaching_rows(proto: Any, info: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Rows reaching the mutated tree node, with its feature on every float32 value between the old and the new
    threshold and one step beyond on each side."""
    feat, splits, modes, tchild, fchild = _tree_arrays(proto.graph.node[info["node"]])
    parent: dict[int, tuple[int, bool]] = {}
    for i in range(len(feat)):
        if tchild[i] >= 0:
            parent[tchild[i]] = (i, True)
        if fchild[i] >= 0:
            parent[fchild[i]] = (i, False)
    if max(feat) >= X.shape[1]:  # the tree reads derived columns (behind a transformer): nothing to construct
        return np.zeros((0, X.shape[1]))
    lo, hi = np.full(X.shape[1], -np.inf), np.full(X.shape[1], np.inf)
    n = info["split"]
    while n in parent:
        p, true = parent[n]
        if modes[p] in (0, 1):  # x <= t / x < t is the true branch
            if true:
                hi[feat[p]] = min(hi[feat[p]], splits[p])
            else:
                lo[feat[p]] = max(lo[feat[p]], splits[p])
        elif modes[p] in (2, 3):
            if true:
                lo[feat[p]] = max(lo[feat[p]], splits[p])
            else:
                hi[feat[p]] = min(hi[feat[p]], splits[p])
        n = p
    base = np.median(X, axis=0)
    for f in range(X.shape[1]):
        if not (lo[f] < base[f] <= hi[f]):
            base[f] = (lo[f] + hi[f]) / 2 if np.isfinite(lo[f]) and np.isfinite(hi[f]) else (
                hi[f] - abs(hi[f]) * 0.1 - 1e-3 if np.isfinite(hi[f]) else lo[f] + abs(lo[f]) * 0.1 + 1e-3)
    a, b = sorted((np.float32(info["old"]), np.float32(info["new"])))
    vals = [np.nextafter(a, np.float32(-np.inf))]
    x = a
    while x <= b:
        vals.append(x)
        x = np.nextafter(x, np.float32(np.inf))
    vals.append(x)
    rows = np.repeat(base[None, :], len(vals), axis=0)
    rows[:, feat[info["split"]]] = np.asarray(vals, dtype=np.float64)
    return rows


def real(sk: Any, mutated: Any, rows: np.ndarray, frame_cols: Any, X: Any, *, base: Any = None,
         est: Any = None, unknown: str | None = None) -> bool:
    """Whether `mutated` differs from `sk` outside the checker's tolerance on some row of `rows` (as numbers,
    fed by `feeds`). A row counts only where the unmutated artifact `base` (when given) agrees with `sk`, and
    not where a neighbour model `est` decides its result by a tie (its k-th and (k+1)-th nearest training points
    equally far within float32 rounding, which two correct implementations may break differently).
    `unknown`: see `feeds`."""
    from portable.equivalence.compare import match_outputs

    outputs = match_outputs(sk, mutated)
    for start in range(0, len(rows), 1000):  # in blocks: a block scikit-learn rejects is skipped
        block = rows[start:start + 1000]
        fed = feeds(sk, block, frame_cols, X, unknown=unknown)
        try:
            a = sk.run(fed)
        except Exception:
            continue
        if _differs(outputs, a, mutated.run(fed), len(block), base, fed, est, sk):
            return True
    return False


def _differs(outputs: Any, a: Any, b: Any, n: int, base: Any, fed: Any, est: Any, sk: Any) -> bool:
    from portable.equivalence.compare import compare, failing_rows

    bad = np.zeros(n, dtype=bool)
    bad[failing_rows(compare(outputs, a, b, n), n)] = True
    if bad.any() and base is not None:
        bad[failing_rows(compare(outputs, a, base.run(fed), n), n)] = False
    if bad.any() and est is not None:
        bad &= ~tied_rows(est, sk.to_frame_or_array(dict(fed)))
    return bool(bad.any())


def tied_rows(est: Any, X: Any) -> np.ndarray:
    """Rows whose result a k-NN model (the final step of `est`) decides by a tie: its k-th and (k+1)-th nearest
    training points equally far within float32 rounding (scikit-learn's own distances)."""
    final = est
    while hasattr(final, "steps"):
        final = final.steps[-1][1]
    k = getattr(final, "n_neighbors", None)
    if k is None or not hasattr(final, "kneighbors") or k >= final.n_samples_fit_:
        return np.zeros(len(X), dtype=bool)
    Xt = est[:-1].transform(X) if hasattr(est, "steps") else X
    d = final.kneighbors(Xt, k + 1, return_distance=True)[0]
    return np.abs(d[:, k] - d[:, k - 1]) <= 1e-5 * np.maximum(d[:, k], 1e-30) + 1e-12


def proven(sk: Any, art: Any, report: Any, est: Any = None) -> bool:
    """Whether a NOT equivalent report's counterexamples, run again on `sk` and `art`, differ outside the
    tolerance (not at a neighbour tie): the checker found a real disagreement, not a false alarm."""
    from portable.equivalence.compare import match_outputs

    outputs = match_outputs(sk, art)
    specs = {s.name: s for s in sk.signature.inputs}
    for ex in report.counterexamples:
        inputs = ex.get("inputs") or {}
        try:
            fed = {k: (np.asarray(v).astype(str) if specs[k].is_string else np.asarray(v, dtype=specs[k].dtype))
                   for k, v in inputs.items()}
            a, b = sk.run(fed), art.run(fed)
        except Exception:
            continue
        n = len(next(iter(fed.values())))
        if _differs(outputs, a, b, n, None, fed, est, sk):
            return True
    return False


def feeds(model: Any, rows: np.ndarray, frame_cols: Any, X: Any, *, unknown: str | None = None
          ) -> dict[str, np.ndarray]:
    """Numeric rows as the model's inputs: a string column's codes index its categories; with `unknown`, a
    negative code is that (unknown) category instead of the first one."""
    spec = model.signature.inputs
    if frame_cols is None:
        return {spec[0].name: rows.astype(spec[0].dtype if spec[0].dtype.startswith("float") else np.float64)}
    out = {}
    for j, s in enumerate(spec):
        col = rows[:, j]
        if s.is_string:
            low = -1 if unknown is not None else 0
            idx = np.clip(np.round(np.nan_to_num(col)).astype(np.int64), low, len(frame_cols[j]) - 1)
            vals = np.asarray(frame_cols[j], dtype=object)[np.maximum(idx, 0)]
            if unknown is not None:
                vals[idx < 0] = unknown
            out[s.name] = vals.astype(str).reshape(-1, 1)
        elif s.dtype.startswith("int"):
            out[s.name] = np.round(np.nan_to_num(col)).astype(s.dtype).reshape(-1, 1)
        else:
            out[s.name] = col.astype(s.dtype).reshape(-1, 1)
    return out


def numeric(X: Any) -> tuple[np.ndarray, Any]:
    """A DataFrame as numbers (string columns as category codes) and the categories per column."""
    if not hasattr(X, "columns"):
        return np.asarray(X, dtype=np.float64), None
    cols, cats = [], []
    for c in X.columns:
        v = X[c].to_numpy()
        if v.dtype.kind in "OUS":
            u = sorted({x for x in v.tolist() if isinstance(x, str)})
            pos = {x: i for i, x in enumerate(u)}
            cols.append(np.array([pos.get(x, 0) for x in v], dtype=np.float64))
            cats.append(u or [""])
        else:
            cols.append(v.astype(np.float64))
            cats.append(None)
    return np.stack(cols, axis=1), cats


def mutations(proto: Any, rng: np.random.Generator, per_kind: int = 2,
              n_train: int | None = None) -> Iterator[tuple[str, tuple[Any, ...], Any, dict[str, Any]]]:
    """Up to `per_kind` seeded single mutations of `proto` per kind: (kind, site, mutated proto, info)."""
    for kind in KINDS:
        for site in pick_sites(proto, kind, sites(proto, kind, n_train), rng, per_kind):
            mutated, info = mutate(proto, kind, site, rng)
            yield kind, site, mutated, info
