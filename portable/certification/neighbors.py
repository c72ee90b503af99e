"""Certification method `neighbors`: k nearest neighbours (KNeighborsClassifier / KNeighborsRegressor, uniform
weights, euclidean metric), both models choosing the neighbours by distances.

Neither affine nor a tree: the prediction is piecewise constant over the cells where the set of the k nearest
training points stays the same. Both models compute the squared distance of a row to every training point (the
converted graph: a Scan of sum((x - c)^2) over the training points as its dtype holds them, then Sqrt and TopK);
the difference of the two squared distances is bounded over the domain's box (the training points' rounding, the
graph's float rounding, scikit-learn's own), so both pick the same k points wherever the (k+1)-th smallest squared
distance exceeds the k-th by more than twice that bound (a *near-tie* of distances otherwise: a certificate of
this method holds except at such near-ties, as a label's certificate holds except at near-ties of its scores).
With the same neighbours:
- a regressor's outputs are both the mean of the same k targets: they differ by the targets' rounding to the
  graph's dtype and the mean's rounding (any order of the sum);
- a classifier's votes are the same: what the graph computes from the k neighbours' classes is checked on every
  sequence of k classes (n_classes^k of them, run through the graph's part after the neighbours' classes) against
  scikit-learn's definition (probabilities: votes / k; label: the first class of the most votes).

The graph is read structurally (`_match`): the Scan's training points must be scikit-learn's rounded to its dtype,
the targets (or class indices) gathered by the neighbours' indices must be scikit-learn's, and nothing else may
read the input or the distances; any other graph is not read (not certifiable, saying what differs).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .core import (CERTIFIED, NOT_CERTIFIABLE, REFUTED, Certificate, Context, Domain, certification_method,
                   graph_links, magnitude_floor, not_certifiable, slice_after)
from .symbolic import NotSymbolic

METHOD = "neighbors"
MAX_SEQUENCES = 200_000  # class sequences run through a classifier's vote counting


def _gamma(k: int, u: float) -> float:
    return k * u / (1 - k * u)


def _estimator(original: Any) -> Any:
    if getattr(original, "format", None) not in ("sklearn", "pickle") or not hasattr(original, "estimator"):
        return None
    est = original.estimator
    if type(est).__name__ not in ("KNeighborsClassifier", "KNeighborsRegressor") or \
            not type(est).__module__.startswith("sklearn."):
        return None
    return est


@certification_method(METHOD, priority=12)
def certify_neighbors(original: Any, converted: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    """Certificates for a k-NN model (None when the original is not one)."""
    est = _estimator(original)
    if est is None:
        return None
    t0 = time.perf_counter()
    try:
        return _certify(est, original, converted, domain, ctx, t0)
    except NotSymbolic as exc:
        reason = f"k nearest neighbours: {exc}"
        batch = _candidates(est, original, converted, ctx)
        if batch is None:
            return {n: not_certifiable(n, reason) for n in ctx.outputs}
        # nothing proved; the training points (scikit-learn's and the graph's) are where a changed point or target
        # shows: portable.certify runs both models there and keeps the refutation only when one differs
        return {n: Certificate(n, REFUTED, method=METHOD, reason=reason, candidates=[batch]) for n in ctx.outputs}


def _candidates(est: Any, original: Any, converted: Any, ctx: Context) -> dict[str, np.ndarray] | None:
    """The training points of scikit-learn and of the graph's Scan (when it has one of that shape), as inputs."""
    specs = original.signature.inputs
    if len(specs) != 1 or specs[0].is_string:
        return None
    fit = np.asarray(est._fit_X, dtype=np.float64)
    rows = [fit]
    proto = getattr(converted, "proto", None)
    if proto is not None:
        from onnx import numpy_helper

        for init in proto.graph.initializer:
            if tuple(init.dims) == fit.shape:
                rows.append(numpy_helper.to_array(init).astype(np.float64))
    dt = np.float32 if ctx.inputs.get(specs[0].name) == "float32" else np.float64
    return {specs[0].name: np.concatenate(rows).astype(dt)}


def _certify(est: Any, original: Any, converted: Any, domain: Domain, ctx: Context, t0: float
             ) -> dict[str, Certificate]:
    if getattr(converted, "format", None) != "onnx" or not hasattr(converted, "proto"):
        raise NotSymbolic("the converted model is not an ONNX graph")
    if est.weights != "uniform":
        raise NotSymbolic(f"weights={est.weights!r} (uniform weights are read)")
    metric = est.effective_metric_
    if not (metric == "euclidean" or (metric == "minkowski" and est.effective_metric_params_.get("p", 2) == 2)):
        raise NotSymbolic(f"the metric {metric!r} (the euclidean distance is read)")
    fit = np.asarray(est._fit_X, dtype=np.float64)
    if fit.ndim != 2 or np.ndim(est._y) != 1:
        raise NotSymbolic("more than one output")
    specs = original.signature.inputs
    if len(specs) != 1 or specs[0].is_string:
        raise NotSymbolic("more than one input")
    x_name, n = specs[0].name, fit.shape[1]
    k = int(est.n_neighbors)
    classifier = hasattr(est, "classes_")
    m = _match(converted.proto, x_name, fit, k, est.classes_ if classifier else None, np.asarray(est._y))
    cols = [domain.columns.get((x_name, j)) for j in range(n)]
    if any(c is None or c.lo is None or c.hi is None or c.nan or c.categories for c in cols):
        raise NotSymbolic("the input columns are not numeric boxes without missing values")
    fed = ctx.inputs.get(x_name, "float64")
    if np.dtype(fed) != m["x_dtype"]:
        raise NotSymbolic(f"rows are fed as {fed}, the graph reads {m['x_dtype']}")
    lo = np.array([c.lo for c in cols])
    hi = np.array([c.hi for c in cols])
    u = float(np.finfo(m["dtype"]).eps) / 2
    u64 = float(np.finfo(np.float64).eps) / 2
    C = m["points"].astype(np.float64)
    e = np.abs(fit - C)  # the training points' rounding to the graph's dtype (exact differences)
    w = np.maximum(np.abs(lo[None, :] - fit), np.abs(hi[None, :] - fit))  # the largest |x - c| per coordinate
    far = ((w + e) ** 2).sum(axis=1)  # the largest squared distance (to the graph's points) over the box
    graph = _gamma(n + 3, u) * far  # the graph's rounding of its squared distance (difference, square, sum)
    points = (e * (2 * w + e)).sum(axis=1)  # rounded training points: |(x - c32)^2 - (x - c)^2| summed
    big = np.maximum(np.abs(lo), np.abs(hi))
    sk = _gamma(n + 4, u64) * ((big[None, :] + np.abs(fit)) ** 2).sum(axis=1)  # scikit-learn's (any formula)
    delta = float(np.max(graph + points + sk))
    # the graph orders fl(sqrt(s)): strictly when s grows by more than (1 + 5u) times
    tie = 2 * delta + 5 * u * (float(np.max(far)) + delta)
    meaning = (f"the neighbours are the same in both models (so are the outputs, within the bound) wherever the "
               f"(k+1)-th smallest squared distance to the training points exceeds the k-th by more than {tie:.3g} "
               f"(k = {k}): both models' squared distances differ by at most {delta:.3g} over the domain (the "
               f"training points as the graph holds them, its {np.dtype(m['dtype']).name} rounding, scikit-learn's "
               "float64 rounding); nearer ties of distances are not covered (as a label's near-ties)")
    arith = (f"squared distances: the graph's {np.dtype(m['dtype']).name} difference, square and sum by gamma_(n+3) "
             "of the largest squared distance over the box, the training points' rounding exactly, scikit-learn's "
             "float64 by gamma_(n+4) (|x| + |c|)^2; the neighbour order through Sqrt by (1 + 5u)")
    details = {"near_ties_only": True, "meaning": meaning, "distance_tie_margin": tie,
               "squared_distance_bound": delta, "neighbors": k}
    certs: dict[str, Certificate] = {}
    if classifier:
        prob_err, labels_ok = m["votes"]
        for name, kind in ctx.outputs.items():
            if kind == "label":
                if not labels_ok:  # some votes give another label: the training points are where it shows
                    reason = ("the graph's label is not the first class of the most votes for every sequence of "
                              "neighbour classes")
                    batch = _candidates(est, original, converted, ctx)
                    certs[name] = Certificate(name, REFUTED, method=METHOD, reason=reason, candidates=[batch]) \
                        if batch is not None else not_certifiable(name, reason)
                    continue
                certs[name] = Certificate(name, CERTIFIED, method=METHOD, bound=0.0, arithmetic=arith,
                                          details=dict(details))
            else:
                certs[name] = _numeric(name, prob_err + 2 * u64, 0.0, 1.0, ctx, arith, details,
                                       "probabilities: votes / k for every sequence of neighbour classes, run "
                                       "through the graph")
    else:
        y = np.asarray(est._y, dtype=np.float64)
        Y = float(np.max(np.abs(y)))
        ey = float(np.max(np.abs(y - m["targets"].astype(np.float64))))  # targets as the graph holds them
        um = float(np.finfo(m["mean_dtype"]).eps) / 2
        cast = um * (Y + ey) if m["mean_dtype"] != m["targets"].dtype else 0.0
        mean = _gamma(k + 3, um) * (Y + ey + cast)  # the graph's mean of k values (any order; 1/k rounded)
        bound = ey + cast + mean + _gamma(k + 1, u64) * Y  # and scikit-learn's float64 mean
        for name in ctx.outputs:
            certs[name] = _numeric(name, bound, float(y.min()), float(y.max()), ctx, arith, details,
                                   "the mean of the same k targets")
    for c in certs.values():
        c.seconds = time.perf_counter() - t0
    return certs


def _numeric(name: str, bound: float, lo: float, hi: float, ctx: Context, arith: str, details: dict,
             what: str) -> Certificate:
    floor = magnitude_floor(np.array([lo]), np.array([hi]))
    allowed = ctx.allowed(name, 0.0, floor)
    d = {**details, "outputs": what, "atol_scale": ctx.atol_scale(name, floor)}
    if bound <= allowed:
        return Certificate(name, CERTIFIED, method=METHOD, bound=bound, tolerance=allowed, arithmetic=arith, details=d)
    return Certificate(name, NOT_CERTIFIABLE, method=METHOD, bound=bound, tolerance=allowed, arithmetic=arith,
                       details=d, reason=f"outside distance near-ties the outputs differ by at most {bound:.3g}, more "
                       f"than the tolerance {allowed:.3g}")


# -- the graph ---------------------------------------------------------------------------------------------------

def _match(proto: Any, x_name: str, fit: np.ndarray, k: int, classes: Any, y: np.ndarray) -> dict[str, Any]:
    """What the graph computes, when it is the k-NN graph described in the module docstring (NotSymbolic naming
    the first difference otherwise)."""
    from onnx import numpy_helper

    g = proto.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers, producer = graph_links(g)
    outputs = {o.name for o in g.output}

    def attr(node: Any, name: str, default: Any = None) -> Any:
        from onnx import helper

        a = next((a for a in node.attribute if a.name == name), None)
        return default if a is None else helper.get_attribute_value(a)

    def only(t: str, op: str) -> Any:
        nodes = consumers.get(t, [])
        if len(nodes) != 1 or nodes[0].op_type != op or t in outputs:
            raise NotSymbolic(f"the graph's {t} is not read by one {op} only")
        return nodes[0]

    vi = next((v for v in g.input if v.name == x_name), None)
    if vi is None or vi.type.tensor_type.elem_type not in (1, 11):
        raise NotSymbolic(f"no float input {x_name}")
    x_dtype = np.dtype(np.float32 if vi.type.tensor_type.elem_type == 1 else np.float64)
    scan = only(x_name, "Scan")
    if len(scan.input) != 2 or scan.input[0] != x_name or scan.input[1] not in inits or \
            attr(scan, "num_scan_inputs") != 1:
        raise NotSymbolic("the distances are not a Scan of the input over constant training points")
    points = inits[scan.input[1]]
    if points.dtype != x_dtype or points.shape != fit.shape or \
            not np.array_equal(points, fit.astype(x_dtype)):
        raise NotSymbolic("the Scan's training points are not scikit-learn's rounded to the graph's dtype")
    for a in ("scan_input_axes", "scan_output_axes", "scan_input_directions", "scan_output_directions"):
        if any(v != 0 for v in (attr(scan, a) or [])):
            raise NotSymbolic(f"the Scan's {a}")
    body = attr(scan, "body")
    if [n.op_type for n in body.node] != ["Identity", "Sub", "ReduceSumSquare", "Identity"]:
        raise NotSymbolic("the Scan's body is not Identity, Sub, ReduceSumSquare, Identity")
    state, row = body.input[0].name, body.input[1].name
    ident, sub, red, out = body.node
    binit = {i.name: numpy_helper.to_array(i) for i in body.initializer}
    axes = attr(red, "axes") or (binit[red.input[1]].reshape(-1).tolist() if len(red.input) > 1 and
                                 red.input[1] in binit else None)
    if list(ident.input) != [state] or list(sub.input) != [state, row] or red.input[0] != sub.output[0] or \
            list(axes or []) not in ([1], [-1]) or attr(red, "keepdims", 1) != 0 or \
            list(out.input) != [red.output[0]] or [o.name for o in body.output] != [ident.output[0], out.output[0]]:
        raise NotSymbolic("the Scan's body does not compute sum((x - c)^2) over the columns")
    if consumers.get(scan.output[0]) or scan.output[0] in outputs:
        raise NotSymbolic("the Scan's state output is read")
    tr = only(scan.output[1], "Transpose")
    if list(attr(tr, "perm") or [1, 0]) != [1, 0]:
        raise NotSymbolic("the distances are not transposed to [rows, training points]")
    sq = only(tr.output[0], "Sqrt")
    topk = only(sq.output[0], "TopK")
    kk = inits.get(topk.input[1]) if len(topk.input) > 1 else None
    if kk is None or kk.reshape(-1).tolist() != [k] or attr(topk, "largest", 1) != 0 or \
            attr(topk, "axis", -1) not in (-1, 1):
        raise NotSymbolic(f"the neighbours are not the {k} smallest distances (TopK)")
    if consumers.get(topk.output[0]) or topk.output[0] in outputs:
        raise NotSymbolic("the distances themselves are read after TopK")
    flat = only(topk.output[1], "Flatten")
    afe = only(flat.output[0], "ArrayFeatureExtractor")
    if afe.input[1] != flat.output[0] or afe.input[0] not in inits:
        raise NotSymbolic("the neighbours' values are not gathered from a constant")
    table = inits[afe.input[0]]
    res: dict[str, Any] = {"x_dtype": x_dtype, "dtype": points.dtype, "points": points}
    classifier = classes is not None
    if classifier:
        if table.dtype.kind not in "iu" or table.shape != y.shape or not np.array_equal(table, y):
            raise NotSymbolic("the neighbours' classes are not scikit-learn's")
        res["votes"] = _votes(proto, afe.output[0], k, classes)
        return res
    if table.shape != y.shape or not np.array_equal(table, y.astype(table.dtype)) or table.dtype.kind != "f":
        raise NotSymbolic("the neighbours' targets are not scikit-learn's")
    res["targets"] = table
    rs = only(afe.output[0], "Reshape")
    shape = inits.get(rs.input[1])
    if shape is None or shape.reshape(-1).tolist() != [-1, k]:
        raise NotSymbolic("the gathered targets are not reshaped to [rows, k]")
    cur, mean_dtype = rs.output[0], table.dtype
    nxt = consumers.get(cur, [])
    if len(nxt) == 1 and nxt[0].op_type == "Cast":
        to = attr(nxt[0], "to")
        if to not in (1, 11):
            raise NotSymbolic("the targets are cast to a non-float type")
        mean_dtype = np.dtype(np.float32 if to == 1 else np.float64)
        cur = nxt[0].output[0]
    rm = only(cur, "ReduceMean")
    axes = attr(rm, "axes") or (inits[rm.input[1]].reshape(-1).tolist() if len(rm.input) > 1 and rm.input[1] in inits
                                else None)
    if list(axes or []) not in ([1], [-1]) or rm.output[0] not in outputs or consumers.get(rm.output[0]):
        raise NotSymbolic("the output is not the mean of the k targets")
    res["mean_dtype"] = np.dtype(mean_dtype)
    return res


def _votes(proto: Any, cut: str, k: int, classes: Any) -> tuple[float, bool]:
    """Run the graph's part after the neighbours' classes (`cut`: [rows * k] class indices) on every sequence of
    k classes: (the largest |probability - votes / k|, whether every label is the first class of the most votes)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    classes = np.asarray(classes)
    n_class = len(classes)
    if n_class ** k > MAX_SEQUENCES:
        raise NotSymbolic(f"{n_class}^{k} sequences of neighbour classes (at most {MAX_SEQUENCES:,} are run)")
    g = proto.graph
    keep, needed = slice_after(g, cut)
    if any(v.name in needed for v in g.input):
        raise NotSymbolic("the outputs read the input beside the neighbours' classes")
    produced = {o for n in keep for o in n.output}
    inits = {i.name for i in g.initializer}
    if any(t not in produced and t not in inits and t != cut for t in needed):
        raise NotSymbolic("the outputs read tensors other than the neighbours' classes and constants")
    graph = helper.make_graph(keep, "votes", [helper.make_tensor_value_info(cut, onnx.TensorProto.INT64, [None])],
                              list(g.output), [i for i in g.initializer if i.name in needed])
    m = helper.make_model(graph, opset_imports=list(proto.opset_import))
    m.ir_version = proto.ir_version
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    seqs = np.array(np.meshgrid(*[np.arange(n_class)] * k, indexing="ij")).reshape(k, -1).T  # [n_class^k, k]
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {cut: seqs.reshape(-1).astype(np.int64)})))
    counts = np.stack([(seqs == c).sum(axis=1) for c in range(n_class)], axis=1)
    want_p = counts / k
    want_l = np.argmax(counts, axis=1)
    err, labels_ok = 0.0, True
    for o in g.output:
        v = np.asarray(outs[o.name])
        if v.dtype.kind == "f" and v.size == want_p.size:
            err = max(err, float(np.max(np.abs(v.reshape(want_p.shape).astype(np.float64) - want_p))))
        elif v.size == len(seqs):
            got = v.reshape(-1)
            want = classes[want_l]
            if want.dtype.kind == "b" or got.dtype.kind == "b":
                got, want = got.astype(np.int64), want.astype(np.int64)
            labels_ok = labels_ok and bool(np.array_equal(got.astype(str), want.astype(str)))
        else:
            raise NotSymbolic(f"the output {o.name} is neither probabilities nor a label")
    return err, labels_ok

