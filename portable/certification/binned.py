"""A KBinsDiscretizer's one-hot bins before a linear model, read as trees for the `trees` method (issue 19).

`KBinsDiscretizer(encode="onehot" | "onehot-dense")` followed by a linear model is an additive piecewise-constant
function: score_k(x) = b_k + sum over columns j of W[k, (j, bin_j(x_j))], bin_j(x) the number of the column's
inner edges <= x. Each column is then one tree: a chain of splits `x < edge` (compared exactly in the dtype the
input is fed, as `portable.hints.derive_splits` reads a KBinsDiscretizer's ordinal code) whose leaves hold that
column's coefficients, one per bin; the intercept is the base. Both sides are read this way:

- scikit-learn: a Pipeline of the discretizer (on raw numeric columns) and a linear regressor (its predict is
  X @ coef_ + intercept_) or a LogisticRegression (binary: [1 - p, p], p = logistic of the decision; more classes:
  the softmax of the decisions); its arithmetic is float64;
- ONNX: the graph portable writes for it, `x >= edges` (GreaterOrEqual), ReduceSum (the bin code), Equal with the
  codes 0..W-1 (the one-hot), plumbing (Cast, Reshape, Gather), then an ai.onnx.ml `LinearRegressor` or
  `LinearClassifier` (which onnxruntime computes in float32: the one-hot's zero terms add nothing, so each score
  is a float32 sum of one coefficient per column and the intercept, in some order: `accumulate="float32"`).

The `trees` method then proves what it proves for trees: routing (the artifact's float32 edges route every
float32 input as scikit-learn's float64 `searchsorted` does, or the input where they part is a counterexample),
leaf pairs (coefficients), the rounding of the sums and of the post transform, labels outside near-ties.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hints import LT, TreeEnsemble, TreeNodes, TreeOutput, derive_splits

# an L1 Normalizer after a softmax (skl2onnx's and portable's multinomial LogisticRegression): the division by the
# float32 sum of K probabilities, each within POST_ULPS u of its exact value, moves each by at most
# (POST_ULPS K + K + 2) u more (the sum is within (POST_ULPS + 1) K u of 1)
_NORMALIZER_ULPS = 18
_POST_ULPS = 16  # trees.POST_ULPS: a sigmoid's or exp's own rounding in the runtime, in units of u


def views(original: Any, converted: Any) -> tuple[TreeEnsemble, TreeEnsemble] | None:
    """(original's view, converted's view) when the original is a KBinsDiscretizer one-hot Pipeline of a linear
    model and the converted model the ONNX graph of one, else None."""
    a = sklearn_view(original)
    if a is None:
        return None
    b = onnx_view(converted)
    return None if b is None else (a, b)


# ---- the trees of a binned linear model ----------------------------------------------------------------------

def _chains(columns: list[Any], edges: list[np.ndarray], W: np.ndarray, slot: list[list[int]],
            source: str) -> TreeNodes:
    """One tree per column j: splits `code < c + 1` (c = 0..n_bins - 2) down a chain, leaf c holding W[:, slot[j][c]]
    (0 where the bin has no column of W), then read on the raw column through the edges."""
    K = W.shape[0]
    feature, threshold, left, right, values, roots = [], [], [], [], [], []
    for j, e in enumerate(edges):
        nb = len(e) + 1
        start = len(feature)
        roots.append(start)
        # nodes: split c at start + 2c (c < nb - 1), leaf c at start + 2c + 1, the last leaf at start + 2(nb - 1)
        for c in range(nb):
            leaf_val = W[:, slot[j][c]] if slot[j][c] >= 0 else np.zeros(K)
            if c < nb - 1:
                s = len(feature)
                feature += [j, -1]
                threshold += [c + 1.0, np.nan]
                left += [s + 1, -1]
                right += [s + 2, -1]
                values += [np.zeros(K), leaf_val]
            else:
                feature.append(-1)
                threshold.append(np.nan)
                left.append(-1)
                right.append(-1)
                values.append(leaf_val)
    n = len(feature)
    nodes = TreeNodes([("", j) for j in range(len(edges))], np.asarray(feature), np.asarray(threshold),
                      np.asarray(left), np.asarray(right), mode=np.full(n, LT, np.uint8),
                      values=np.asarray(values, np.float64).reshape(n, K), roots=np.asarray(roots, np.int64),
                      source=source)
    feat = np.asarray(feature, np.int64)
    return derive_splits(nodes, feat, [("bin", j, np.asarray(e, np.float64)) for j, e in enumerate(edges)],
                         columns)


# ---- scikit-learn ----------------------------------------------------------------------------------------------

_GLM = ("Poisson", "Gamma", "Tweedie", "RANSAC", "TheilSen")


def _linear_final(est: Any) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(W [K, n_in], b [K], kind) of a linear regressor ("regressor") or a LogisticRegression ("logistic")."""
    mod, name = type(est).__module__, type(est).__name__
    if not mod.startswith("sklearn.linear_model") or any(g in name for g in _GLM):
        return None
    coef, icpt = getattr(est, "coef_", None), getattr(est, "intercept_", None)
    if coef is None:
        return None
    coef = np.atleast_2d(np.asarray(coef, np.float64))
    b = np.broadcast_to(np.asarray(0.0 if icpt is None else icpt, np.float64), (coef.shape[0],)).copy()
    if hasattr(est, "classes_"):
        if not name.startswith("LogisticRegression") or not hasattr(est, "predict_proba"):
            return None
        mc = getattr(est, "multi_class", "auto")
        if len(est.classes_) > 2 and mc not in ("auto", "multinomial", "deprecated"):
            return None  # one-vs-rest probabilities: normalised logistic units, not a softmax
        return coef, b, "logistic"
    return coef, b, "regressor"


def _raw_columns(model: Any, est: Any) -> list[Any] | None:
    """The raw Column each feature the pipeline reads comes from (as `portable.formats.sklearn_hints`)."""
    specs = model.signature.inputs
    width = int(getattr(est, "n_features_in_", 0) or 0)
    if len(specs) == 1 and specs[0].name == "X":
        return [("X", j) for j in range(width)] if not specs[0].is_string else None
    names = [str(c) for c in getattr(est, "feature_names_in_", [s.name for s in specs])]
    by = {s.name: s for s in specs}
    if any(n not in by or by[n].is_string for n in names):
        return None
    return [(n, 0) for n in names]


def sklearn_view(model: Any) -> TreeEnsemble | None:
    est = getattr(model, "estimator", None)
    while getattr(est, "best_estimator_", None) is not None:
        est = est.best_estimator_
    steps = [s for _, s in getattr(est, "steps", []) if s is not None and s != "passthrough"]
    if len(steps) != 2 or type(steps[0]).__name__ != "KBinsDiscretizer":
        return None
    kb, final = steps
    if getattr(kb, "encode", None) not in ("onehot", "onehot-dense") or \
            getattr(kb, "dtype", None) not in (None, np.float64) or not hasattr(kb, "bin_edges_"):
        return None
    lin = _linear_final(final)
    columns = _raw_columns(model, est)
    if lin is None or columns is None or len(columns) != len(kb.bin_edges_):
        return None
    W, b, kind = lin
    inner = [np.asarray(e, np.float64)[1:-1] for e in kb.bin_edges_]
    n_bins = [len(e) + 1 for e in inner]
    if W.shape[1] != sum(n_bins):
        return None
    offsets = np.r_[0, np.cumsum(n_bins)].astype(int)
    slot = [[int(offsets[j] + c) for c in range(n_bins[j])] for j in range(len(inner))]
    trees = _chains(columns, inner, W, slot, "scikit-learn KBinsDiscretizer bins")
    K = W.shape[0]
    if kind == "regressor":
        outs = {"variable": TreeOutput("columns", np.arange(K), 1.0, 0.0)}
    elif K == 1:  # binary: p = logistic(decision), [1 - p, p]; label classes[decision > 0]
        outs = {"probabilities": TreeOutput("columns", [0, 0], 1.0, 0.0, fn=["logistic", "logistic"],
                                            c=[-1.0, 1.0], d=[1.0, 0.0]),
                "label": TreeOutput("label", [0], 1.0, 0.0, rule="threshold", classes=np.asarray(final.classes_))}
    else:
        outs = {"probabilities": TreeOutput("softmax", np.arange(K), 1.0, 0.0),
                "label": TreeOutput("label", np.arange(K), 1.0, 0.0, classes=np.asarray(final.classes_))}
    names = set(model.signature.output_names)
    # terms=-2: a score is the base and one coefficient per column added (T additions, the one-hot's other
    # products are 0 and add exactly), nothing after (the trees method counts T + terms + 2 operations)
    ens = TreeEnsemble(trees, b, {k: v for k, v in outs.items() if k in names}, accumulate="float64", terms=-2,
                       source=f"scikit-learn KBinsDiscretizer({kb.encode}) + {type(final).__name__}")
    ens.summed_as_stored = True  # the coefficients are added as they are (the trees method's rounding bound)
    return ens


# ---- ONNX ------------------------------------------------------------------------------------------------------

def onnx_view(model: Any) -> TreeEnsemble | None:
    proto = getattr(model, "proto", None)
    if proto is None:
        return None
    from ..formats.onnx_trees import Cols, Label, Soft, _attrs, _column_step, _const, _step, input_width

    graph = proto.graph
    consts: dict[str, Any] = {i.name: i for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and "value" in _attrs(n):
            consts[n.output[0]] = _attrs(n)["value"]
    init = set(consts)
    linear = [n for n in graph.node if n.op_type in ("LinearClassifier", "LinearRegressor", "MatMul")]
    if len(linear) != 1:
        return None
    op = linear[0]
    add = None
    if op.op_type == "MatMul":  # a float64 artifact: MatMul by the coefficients [n_in, K], then Add the intercept
        users = [n for n in graph.node if op.output[0] in n.input]
        add = users[0] if len(users) == 1 and users[0].op_type == "Add" else None
        if add is None or op.input[1] not in consts:
            return None
    columns: list[Any] = []
    cols: dict[str, list[tuple[Any, ...]]] = {}
    for vi in graph.input:
        if vi.name in init:
            continue
        t = vi.type.tensor_type
        dims, width = input_width(vi)
        if len(dims) > 2 or not width or t.elem_type not in (1, 11):  # float or double
            return None
        cols[vi.name] = [("num", len(columns) + j, 1.0, 0.0, ()) for j in range(width)]
        columns += [(vi.name, j) for j in range(width)]
    producer = {o: n for n in graph.node for o in n.output}
    for n in graph.node:
        if list(n.output) == list(op.output):
            break
        ins = [i for i in n.input if i in cols]
        if not ins:
            continue
        x = cols[n.input[0]] if n.input and n.input[0] in cols else None
        if n.op_type == "Equal" and x is not None and all(d[0] == "bin" for d in x) and len(n.input) == 2:
            got = _one_hot(n, x, consts, producer)
        else:
            got = _column_step(n, cols, {}, consts, False)
        if not isinstance(got, list):
            return None
        cols[n.output[0]] = got
    x = cols.get(op.input[0])
    if x is None or not x or any(d[0] != "hot" for d in x):
        return None
    at = _attrs(op)
    acc = "float32"  # ai.onnx.ml's linear operators compute in float32 whatever they are fed
    if add is not None:
        m = _const(consts, op.input[1])
        other = add.input[1] if add.input[0] == op.output[0] else add.input[0]
        c = _const(consts, other) if other in consts else None
        if m is None or c is None or m.ndim != 2 or m.shape[0] != len(x) or c.size != m.shape[1] or \
                m.dtype != c.dtype or m.dtype not in (np.float32, np.float64):
            return None
        acc = "float64" if m.dtype == np.float64 else "float32"
        W, b, K = np.asarray(m, np.float64).T, np.asarray(c, np.float64).reshape(-1), m.shape[1]
    else:
        coef = np.asarray(at.get("coefficients", []), np.float64)
        icpt = np.asarray(at.get("intercepts", []), np.float64)
        K = int(at.get("targets", 1)) if op.op_type == "LinearRegressor" else len(icpt)
        if K < 1 or coef.size != K * len(x):
            return None
        b = icpt if icpt.size == K else (np.zeros(K) if icpt.size == 0 else None)
        if b is None:
            return None
        W = coef.reshape(K, len(x))
    # per raw column: its edges (the same wherever it appears) and the input position of each bin's indicator
    edges: dict[int, np.ndarray] = {}
    slot: dict[int, dict[int, int]] = {}
    for p, (_, k, e, code) in enumerate(x):
        if k in edges and not np.array_equal(edges[k], e):
            return None
        edges[k] = e
        if not 0 <= code <= len(e):
            continue  # a padding code no input of this column takes: its indicator is always 0
        if code in slot.setdefault(k, {}):
            return None
        slot[k][code] = p
    if sorted(edges) != list(range(len(columns))):
        return None  # a column the model does not read through its bins (or bins of nothing)
    trees = _chains(columns, [edges[k] for k in range(len(columns))], W,
                    [[slot[k].get(c, -1) for c in range(len(edges[k]) + 1)] for k in range(len(columns))],
                    "ONNX KBinsDiscretizer bins")
    post = at.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else str(post)
    syms: dict[str, Any] = {}
    ident = Cols(list(range(K)), [1.0] * K, [0.0] * K, ["identity"] * K)
    outs: dict[str, TreeOutput] = {}
    if add is not None:
        syms[add.output[0]] = ident
        op = add
    elif op.op_type == "LinearRegressor":
        if post != "NONE":
            return None
        syms[op.output[0]] = ident
    else:
        classes = at.get("classlabels_ints", at.get("classlabels_strings"))
        if classes is None or len(classes) != max(K, 2) or K < 2 or int(at.get("multi_class", 0)) != (K > 2):
            return None
        classes = np.asarray([c.decode() if isinstance(c, bytes) else c for c in classes])
        if K == 2:
            # the two rows are a decision s and its negation (portable's and skl2onnx's binary layout): scores
            # [-s, s] read as [1 - logistic(s), logistic(s)] of the score column s = -raw0 (column 0), raw1; the
            # label, argmax(raw0, raw1), is raw1 > 0 wherever |s| exceeds the rounding of the two sums
            # (logistic(raw0) = 1 - logistic(-raw0) whatever raw0 is; the label only when the rows are negations)
            if post != "LOGISTIC":
                return None
            syms[op.output[1]] = Cols([0, 1], [-1.0, 1.0], [0.0, 0.0], ["logistic", "logistic"], [-1.0, 1.0],
                                      [1.0, 0.0])
            if np.array_equal(W[0], -W[1]) and b[0] == -b[1]:
                outs[op.output[0]] = TreeOutput("label", [1], 1.0, 0.0, rule="threshold", classes=classes)
        else:
            if post != "SOFTMAX":
                return None
            syms[op.output[1]] = Soft(list(range(K)), [1.0] * K, [0.0] * K)
            outs[op.output[0]] = TreeOutput("label", np.arange(K), 1.0, 0.0, classes=classes)
    extra: dict[str, int] = {}
    # a float64 binary graph (MatMul + Add of decision columns [-s, s]): its label ArgMax(raw) is raw1 > 0, and
    # its probabilities Sigmoid(raw) / ReduceSum(Abs(Sigmoid(raw))) are [1 - p, p], the division by a sum within
    # the raw scores' rounding (T + 1) P u / 4 each, and the two sigmoids' own, of 1 adding at most
    # (T + 1) P + 2 POST_ULPS + 8 units of u (P: the largest |partial sum|)
    negated = add is not None and K == 2 and np.array_equal(W[0], -W[1]) and b[0] == -b[1]
    P = float(np.abs(b).max()) + sum(float(np.abs(W[:, list(v.values())]).max()) for v in slot.values() if v)
    norm: dict[str, Any] = {"ulps": int(np.ceil((len(columns) + 1) * P)) + 2 * _POST_ULPS + 8}
    after = False
    for n in graph.node:
        if list(n.output) == list(op.output):
            after = True
            continue
        if not after or not any(i in syms for i in n.input):
            continue
        src = syms.get(n.input[0]) if n.input else None
        if n.op_type == "Normalizer" and isinstance(src, Soft) and _attrs(n).get("norm") in (b"L1", "L1"):
            syms[n.output[0]] = src
            extra[n.output[0]] = extra.get(n.input[0], 0) + _NORMALIZER_ULPS * K
            continue
        got = _after_matmul(n, src, syms, consts, negated, norm)
        if got is not None:
            syms[n.output[0]], more = got
            if more:
                extra[n.output[0]] = extra.get(n.input[0], 0) + more
            continue
        got = _step(n, syms, consts, K, None)
        if got is None:
            continue
        syms[n.output[0]] = got
        if n.input[0] in extra:
            extra[n.output[0]] = extra[n.input[0]]
    for o in graph.output:
        s = syms.get(o.name)
        if isinstance(s, Cols):
            outs[o.name] = TreeOutput("columns", s.k, s.a, s.b, fn=s.fn, c=s.c, d=s.d)
        elif isinstance(s, Soft):
            outs[o.name] = TreeOutput("softmax", s.k, s.a, s.b)
        elif isinstance(s, Label) and o.name not in outs:
            outs[o.name] = TreeOutput("label", s.index.k, s.index.a, s.index.b, rule=s.index.rule,
                                      strict=s.index.strict, classes=s.classes)
        if o.name in outs and extra.get(o.name):
            outs[o.name].post_ulps = extra[o.name]  # read by the trees method's post-transform rounding
    ens = TreeEnsemble(trees, b, outs, accumulate=acc, terms=-2, source=f"ONNX KBins one-hot + {op.op_type}")
    ens.summed_as_stored = True
    return ens


def _after_matmul(n: Any, src: Any, syms: dict[str, Any], consts: dict[str, Any], negated: bool,
                  norm: dict[str, Any]) -> tuple[Any, int] | None:
    """(symbol, extra units of u) of a node after a MatMul + Add reading that `_step` does not follow: the
    binary graph's threshold label and normalised sigmoid (see `onnx_view`), a class lookup by
    ArrayFeatureExtractor; None otherwise."""
    from ..formats.onnx_trees import Cols, Index, Label, _attrs, _const

    op, ins = n.op_type, list(n.input)
    ident = isinstance(src, Cols) and src.fn == ["identity", "identity"] and list(src.k) == [0, 1] and \
        list(src.a) == [1.0, 1.0] and list(src.b) == [0.0, 0.0]
    if negated and ident and op == "ArgMax" and _attrs(n).get("axis", 0) in (1, -1) and \
            not _attrs(n).get("select_last_index", 0):
        return Index("threshold", [1], [1.0], [0.0], strict=True), 0
    if negated and ident and op == "Sigmoid":
        norm["sigmoid"] = n.output[0]
        return Cols([0, 1], [-1.0, 1.0], [0.0, 0.0], ["logistic", "logistic"], [-1.0, 1.0], [1.0, 0.0]), 0
    if op == "Abs" and ins and ins[0] == norm.get("sigmoid"):
        norm["abs"] = n.output[0]
        return src, 0
    if op == "ReduceSum" and ins and ins[0] == norm.get("abs") and _attrs(n).get("keepdims", 1) == 1:
        axes = _const(consts, ins[1]) if len(ins) > 1 and ins[1] else np.asarray(_attrs(n).get("axes", []))
        if axes is not None and axes.reshape(-1).tolist() in ([1], [-1]):
            norm["sum"] = n.output[0]
            return src, 0
        return None
    if op == "Div" and len(ins) == 2 and ins[0] == norm.get("sigmoid") and ins[1] == norm.get("sum"):
        return syms[ins[0]], norm["ulps"]
    if op == "ArrayFeatureExtractor" and len(ins) == 2 and isinstance(syms.get(ins[1]), Index) and \
            ins[0] in consts:
        classes = _const(consts, ins[0])
        if classes is not None and classes.ndim == 1:
            return Label(syms[ins[1]], classes), 0
    return None


def _one_hot(n: Any, x: list[tuple[Any, ...]], consts: dict[str, Any], producer: dict[str, Any]
             ) -> list[tuple[Any, ...]] | None:
    """Equal(bin codes [N, C, 1], codes [1, 1, W]) -> [N, C, W] indicators, flattened row-major as the Reshape
    after it reads them: ("hot", raw column, its edges, code)."""
    from ..formats.onnx_trees import _attrs, _const

    v = _const(consts, n.input[1])
    up = producer.get(n.input[0])
    if v is None or v.ndim != 3 or v.shape[:2] != (1, 1) or up is None or up.op_type != "Unsqueeze":
        return None
    axes = _const(consts, up.input[1]) if len(up.input) > 1 else np.asarray(_attrs(up).get("axes", []))
    if axes is None or axes.reshape(-1).tolist() not in ([2], [-1]):
        return None
    codes = v.reshape(-1).astype(np.float64)
    if not np.all(codes == np.round(codes)):
        return None
    return [("hot", d[1], d[2], int(c)) for d in x for c in codes]
