"""Certification method `members`: an ensemble whose members need different methods (a soft VotingClassifier of a
random forest and a logistic regression: trees are certified routing-exact, the linear model over the box).

1. The original is a scikit-learn soft `VotingClassifier` (alone or at the end of a Pipeline); its members are
   read as models of their own: the Pipeline's steps before the ensemble followed by the member.
2. In the converted ONNX graph, each member's probabilities are found: the intermediate tensor whose values on
   points of the domain match the member's `predict_proba` (finding it by sampling is only a search: what is
   proved is step 3). Each member is cut out of the graph (the nodes its tensor depends on, over the graph's
   inputs) and `portable.certify` proves a bound `d_i` on the difference of the member's probabilities with that
   member's own method.
3. The rest of the graph (the combination, with the members' tensors as its inputs) is read as a Program over
   the box of the members' outputs (`[0, 1]` widened by `d_i`) and compared with scikit-learn's weighted mean
   exactly (the largest difference of the coefficients over the box, plus the graph's rounding). Then
   `|conv(y_b) - mean(y_a)| <= |conv(y_b) - mean(y_b)| + sum_i w_i d_i / sum_i w_i` plus scikit-learn's own
   rounding of the mean. The label is the argmax of the probabilities: certified (near-ties only) when they are.

A member refuted with a verified counterexample gives its inputs as the ensemble's candidates; `portable.certify`
runs both whole models on them.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .core import (CERTIFIED, REFUTED, Certificate, Context, Domain, DomainColumn, certification_method,
                   not_certifiable, refuted_or_not)

METHOD = "members"
SAMPLES = 48


def _ensemble(est: Any) -> tuple[list[Any], Any] | None:
    """(steps before, soft VotingClassifier) or None."""
    from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
    from sklearn.pipeline import Pipeline

    steps: list[Any] = []
    while isinstance(est, Pipeline):
        steps += list(est.steps[:-1])
        est = est.steps[-1][1]
    if isinstance(est, VotingClassifier) and est.voting == "soft" and hasattr(est, "estimators_"):
        return steps, est
    if isinstance(est, VotingRegressor) and hasattr(est, "estimators_"):
        return steps, est
    if isinstance(est, (StackingClassifier, StackingRegressor)) and hasattr(est, "final_estimator_"):
        return steps, est
    return None


def _regressor(ens: Any) -> bool:
    return not hasattr(ens, "classes_")


@certification_method(METHOD, priority=40)
def certify_members(original: Any, converted: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    est, proto = getattr(original, "estimator", None), getattr(converted, "proto", None)
    if est is None or proto is None:
        return None
    found = _ensemble(est)
    if found is None:
        return _hard_voting(est, domain, ctx)
    if _regressor(found[1]) and all(type(m).__module__.startswith("sklearn.linear_model")
                                    for m in found[1].estimators_ if not isinstance(m, str)):
        return None  # linear members alone: the affine method reads the whole ensemble, and better
    t0 = time.perf_counter()
    try:
        return _certify_ensemble(original, converted, domain, ctx, *found, t0)
    except _Refuse as exc:
        kind = "voting" if found[1].__class__.__name__.startswith("Voting") else "stacking"
        return {name: not_certifiable(name, f"{kind} over members certified one by one: {exc}")
                for name in ctx.outputs}


class _Refuse(Exception):
    pass


def _hard_voting(est: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    """A hard VotingClassifier (alone or at the end of a Pipeline): nothing is proved -- its label is the weighted
    majority of its members' labels, and a member's label may differ from scikit-learn's wherever its own decision
    is within rounding of its boundary, a near-tie the ensemble's label does not show -- but random points of the
    domain, run through both models by `portable.certify`, refute a conversion whose labels part elsewhere."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.pipeline import Pipeline

    while isinstance(est, Pipeline):
        est = est.steps[-1][1]
    if not (isinstance(est, VotingClassifier) and est.voting == "hard") or ctx.make_feeds is None:
        return None
    reason = ("VotingClassifier(voting='hard'): the label is the weighted majority of the members' labels, not "
              "proved (a member's label is exact only away from its own decision boundary, and the ensemble's "
              "label shows no near-tie there)")
    try:
        rows, cols = _sample(domain, 4096)
        batch = ctx.make_feeds(rows, cols)
    except Exception:  # noqa: BLE001 - no candidates: the reason stands alone
        batch = None
    return refuted_or_not(ctx.outputs, reason, batch)


def _members(ens: Any) -> list[Any]:
    """The fitted members that take part (a stacking's "drop" ones do not)."""
    if hasattr(ens, "stack_method_"):
        if ens.passthrough and not _regressor(ens):
            raise _Refuse("passthrough=True (the final estimator also reads the features)")
        out = []
        for m, how in zip(ens.estimators_, ens.stack_method_):
            if isinstance(m, str):
                continue
            if how != ("predict" if _regressor(ens) else "predict_proba"):
                raise _Refuse(f"a member stacked by its {how} (only predict_proba is read)")
            out.append(m)
        return out
    return list(ens.estimators_)


def _member_models(steps: list[Any], vote: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    from ..equivalence import load_model

    out = []
    for i, m in enumerate(_members(vote)):
        sub = Pipeline(list(steps) + [(f"member_{i}", m)]) if steps else m
        out.append(load_model(sub))
    return out


def _sample(domain: Domain, n: int, seed: int = 0) -> tuple[np.ndarray, list[Any]]:
    rng = np.random.default_rng(seed)
    cols = list(domain.columns)
    rows = np.empty((n, len(cols)), dtype=object)
    for j, c in enumerate(cols):
        col = domain.columns[c]
        if col.categories is not None:
            rows[:, j] = [col.categories[k] for k in rng.integers(0, len(col.categories), n)]
        else:
            v = rng.uniform(col.lo, col.hi, n) if col.hi > col.lo else np.full(n, col.lo)
            rows[:, j] = np.round(v) if col.integer else v
    return rows, cols


FLOAT_ML = {"LinearRegressor", "TreeEnsembleRegressor", "Scaler", "Normalizer", "SVMRegressor"}


def _intermediates(proto: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every float tensor of the graph on `feeds` (onnxruntime)."""
    import onnx
    import onnxruntime as ort

    inferred = onnx.shape_inference.infer_shapes(proto)
    typed = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    del m.graph.output[:]
    names = []
    for node in proto.graph.node:
        for o in node.output:
            vi = typed.get(o)
            if vi is None and node.domain == "ai.onnx.ml" and node.op_type in FLOAT_ML and o == node.output[0]:
                # shape inference leaves these untyped: their first output is float32 whatever they read
                vi = onnx.helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None)
            if vi is not None and vi.type.tensor_type.elem_type in (1, 11) and o not in names:
                m.graph.output.append(vi)
                names.append(o)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    known = {i.name for i in sess.get_inputs()}
    got = sess.run(names, {k: v for k, v in feeds.items() if k in known})
    return dict(zip(names, got))


def _cut(proto: Any, outputs: dict[str, str], inputs: list[str] | None = None, label: bool = False,
         raw_ok: bool = False) -> Any:
    """The graph computing `outputs` (tensor -> output name), tensors of `inputs` made graph inputs (float, [N, C]
    as inferred), nodes nothing needs dropped. `inputs=None` keeps the graph's own inputs."""
    import onnx
    from onnx import helper

    inferred = onnx.shape_inference.infer_shapes(proto)
    typed = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    g = proto.graph
    producer = {o: n for n in g.node for o in n.output}
    stop = set(inputs or [])
    need, keep = list(outputs), set()
    while need:
        t = need.pop()
        n = producer.get(t)
        if n is None or t in stop or id(n) in keep:
            continue
        keep.add(id(n))
        need.extend(i for i in n.input if i)
    nodes = [n for n in g.node if id(n) in keep]
    used = {i for n in nodes for i in n.input} | set(outputs)
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    for t, name in outputs.items():
        if t != name:
            m.graph.node.append(helper.make_node("Identity", [t], [name]))
    del m.graph.output[:]
    for node in g.node:  # shape inference leaves these untyped: their first output is float32
        if node.domain == "ai.onnx.ml" and node.op_type in FLOAT_ML and node.output[0] not in typed:
            typed[node.output[0]] = helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, [None, 1])
    for t, name in outputs.items():
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(typed[t])
        vi.name = name
        m.graph.output.append(vi)
    if label:  # the member's label: the argmax of its probabilities (its classes are the encoded 0..K-1)
        name = next(iter(outputs.values()))
        m.graph.node.append(helper.make_node("ArgMax", [name], ["label"], axis=1, keepdims=0))
        m.graph.output.insert(0, helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None]))
    if inputs is not None:
        del m.graph.input[:]
        for t in inputs:
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(typed[t])
            m.graph.input.append(vi)
        raw = {i.name for i in proto.graph.input} & used
        if raw and not raw_ok:
            raise _Refuse(f"the combination reads the inputs {sorted(raw)} besides the members' outputs")
        for vi in proto.graph.input:  # a stacking's passthrough: the features too
            if vi.name in raw:
                m.graph.input.append(vi)
    kept_init = [i for i in m.graph.initializer if i.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept_init)
    return m


def _certify_ensemble(original: Any, converted: Any, domain: Domain, ctx: Context, steps: list[Any], vote: Any,
                    t0: float) -> dict[str, Certificate]:
    from ..equivalence.inputs import feed
    from ..formats.onnx import OnnxModel
    from .driver import certify

    prob = next((n for n, k in ctx.outputs.items() if k != "label"), None)
    if prob is None:
        raise _Refuse("no probability output")
    regress = _regressor(vote)
    what = "variable" if regress else "probabilities"  # each member's output
    if regress and steps:
        raise _Refuse("steps before a regressor ensemble (its members' ranges are read on the raw inputs)")
    members = _member_models(steps, vote)
    rows, cols = _sample(domain, SAMPLES)
    arrays = ctx.make_feeds(rows, cols)
    proto = converted.proto
    inter = _intermediates(proto, feed(arrays, converted))
    tensors: list[str] = []
    worst: list[float] = []  # per member, the largest difference of its tensor from the member on the samples
    for i, mm in enumerate(members):
        want = np.asarray(mm.run(feed(arrays, mm))[what], np.float64)
        want = want.reshape(len(want), -1)
        # the median over the rows: a member that differs on a few rows (a changed leaf) is still found
        errs = {name: float(np.median(np.abs(np.asarray(v, np.float64).reshape(want.shape) - want).max(axis=1)))
                for name, v in inter.items() if np.size(v) == want.size and np.shape(v)[:1] == want.shape[:1]
                and name not in tensors}
        err = min(errs.values(), default=np.inf)
        # the last tensor (in the graph's order) that matches as well: the combination after it is the least
        best = [name for name, e in errs.items() if e <= err + 1e-9][-1] if errs else None
        if best is None or not np.isfinite(err):
            raise _Refuse(f"member {i} ({type(_members(vote)[i]).__name__}): no tensor of the converted graph "
                          "computes its probabilities")
        tensors.append(best)
        worst.append(float(np.abs(np.asarray(inter[best], np.float64).reshape(want.shape) - want).max()))
    # 2. each member by its own method
    bounds, subs, cands = [], {}, []
    for i, (mm, t) in enumerate(zip(members, tensors)):
        sub = OnnxModel(_cut(proto, {t: what}, label=not regress))
        res = certify(mm, sub, domain)
        c = res.certificates.get(what)
        name = type(_members(vote)[i]).__name__
        if c is not None and c.status == CERTIFIED and c.bound is None and c.identical:
            c.bound = 0.0  # the same function
        if c is None or c.bound is None and c.status != REFUTED:
            why = f"member {i} ({name}) has no certificate: {c.reason if c is not None else 'no output'}"
            if worst[i] <= ctx.allowed(prob):
                raise _Refuse(why)
            # it differs on the sampled points: those are candidates of a refutation (verified on the whole models)
            cands.append({k: np.asarray(v) for k, v in arrays.items()})
            subs[f"member {i} ({name}, tensor {t})"] = {"status": c.status if c is not None else None,
                                                        "reason": why, "sampled_difference": worst[i]}
            bounds.append(np.inf)
            continue
        if c.status == REFUTED and c.counterexample:
            cands.append({k: np.asarray(v) for k, v in c.counterexample["inputs"].items()})
        d = float(c.bound) if c.bound is not None else np.inf
        bounds.append(d)
        subs[f"member {i} ({name}, tensor {t})"] = {"method": c.method, "status": c.status, "bound": c.bound}
    # 3. the combination
    stacking = hasattr(vote, "stack_method_")
    ranges = [_member_range(m, domain) for m in _members(vote)] if regress else None
    if not np.all(np.isfinite(bounds)):
        combined, tail_bound, own = np.inf, np.inf, 0.0
    elif regress:
        boxes = [(lo - d, hi + d) for (lo, hi), d in zip(ranges, bounds)]
        if stacking:
            tail_bound = _stack_tail(proto, tensors, prob, vote, bounds, ctx, t0, boxes=boxes, domain=domain)
            combined, own = _linear_lipschitz(vote, bounds, boxes, domain)
        else:
            from .symbolic import U64, gamma

            w = np.asarray(vote._weights_not_none if vote.weights is not None else np.ones(len(members)),
                           np.float64)
            w = w / w.sum()
            combined = float(np.dot(w, bounds))
            tail_bound = _tail(proto, tensors, prob, w, bounds, boxes=boxes)
            # numpy's weighted average of the members' float64 predictions: its own rounding
            big = max(max(abs(lo), abs(hi)) for lo, hi in boxes)
            own = gamma(2 * len(members) + 2, U64) * big
    elif stacking:
        tail_bound = _stack_tail(proto, tensors, prob, vote, bounds, ctx, t0)
        combined, own = _stack_lipschitz(vote, bounds)
    else:
        from .symbolic import U64, gamma

        w = np.asarray(vote._weights_not_none if vote.weights is not None else np.ones(len(members)), np.float64)
        w = w / w.sum()
        combined = float(np.dot(w, bounds))
        tail_bound = _tail(proto, tensors, prob, w, bounds)
        own = gamma(len(members) + 1, U64) * (1.0 + max(bounds))
    total = combined + tail_bound + own
    shown = total if np.isfinite(total) else None
    allowed = ctx.allowed(prob)
    if regress and ranges is not None and np.all(np.isfinite(bounds)):
        # the tolerance where the prediction comes closest to 0 over the domain (atol scaled as far as proved)
        lo, hi = _output_range(vote, ranges, domain)
        vmin = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
        allowed = ctx.allowed(prob, vmin, vmin)
    details = {"members": subs, "combination_bound": tail_bound if np.isfinite(tail_bound) else None,
               "members_bound": combined if np.isfinite(combined) else None,
               "meaning": ("stacking: each member's probabilities bounded by its own method, the final estimator read "
                           "from the graph over the members' output box and compared with scikit-learn's, the "
                           "members' bounds crossed with its Lipschitz constant") if stacking else (
                           "soft voting: each member's probabilities bounded by its own method, the weighted mean "
                           "read from the graph and compared with scikit-learn's")}
    out: dict[str, Certificate] = {}
    secs = time.perf_counter() - t0
    if total <= allowed:
        out[prob] = Certificate(prob, CERTIFIED, METHOD, bound=total, tolerance=allowed, details=details,
                                arithmetic=ctx.dtype, seconds=secs)
    elif cands:
        out[prob] = Certificate(prob, REFUTED, METHOD, bound=shown, tolerance=allowed, details=details,
                                arithmetic=ctx.dtype, seconds=secs, candidates=cands,
                                reason="a member differs from its converted part")
    else:
        # the members agree and the combination's bound exceeds the tolerance: random points of the domain are
        # the candidates (a changed final estimator parts the models almost everywhere); refuted only when one
        # reproduces a difference beyond the tolerance (`portable.certify`), else not certifiable
        rows, cols = _sample(domain, 512, seed=1)
        cands = [{k: np.asarray(v) for k, v in arrays.items()},
                 {k: np.asarray(v) for k, v in ctx.make_feeds(rows, cols).items()}]
        out[prob] = Certificate(prob, REFUTED, METHOD, bound=shown, tolerance=allowed, details=details,
                                arithmetic=ctx.dtype, seconds=secs, candidates=cands,
                                reason=f"the proved bound {total:.3g} exceeds the tolerance {allowed:.3g}")
    for name, kind in ctx.outputs.items():
        if kind != "label":
            continue
        c = out[prob]
        why = _label_tail(proto, prob, name, vote.classes_) if c.status == CERTIFIED else None
        if why is not None:  # the converted label is not classes[argmax(probabilities)]
            out[name] = Certificate(name, REFUTED, METHOD, details={"label_tail": why}, seconds=secs,
                                    candidates=[{k: np.asarray(v) for k, v in arrays.items()}],
                                    reason=why) if why.startswith("the converted label maps") else \
                not_certifiable(name, why)
        elif c.status == CERTIFIED:
            out[name] = Certificate(name, CERTIFIED, METHOD, bound=0.0, details={
                "near_ties_only": True, "implied_by": [prob],
                "meaning": f"the label is the argmax of {prob}, certified within the check's tolerance: the labels "
                           "agree except where the original's top two values tie within that tolerance"},
                seconds=secs)
        elif c.status == REFUTED:
            out[name] = Certificate(name, REFUTED, METHOD, bound=shown, details=details, seconds=secs,
                                    candidates=list(cands), reason=c.reason)
        else:
            out[name] = not_certifiable(name, c.reason or "")
    return out


LABEL_TAIL_OPS = {"ArgMax", "Gather", "ArrayFeatureExtractor", "Cast", "Reshape", "Identity", "Squeeze", "Flatten",
                  "Unsqueeze"}


def _label_tail(proto: Any, prob: str, label: str, classes: Any) -> str | None:
    """None when the converted graph computes `label` as classes[argmax(prob)] (one ArgMax over the classes' axis
    of `prob` itself, then lookups, casts and reshapes only, mapping each class's column to that class: checked
    on the one-hot rows, which a lookup of the argmax index determines); else why not."""
    import onnxruntime as ort

    try:
        tail = _cut(proto, {label: label}, inputs=[prob])
    except (_Refuse, KeyError) as exc:
        return f"the label is not read from {prob} ({exc})"
    ops = {n.op_type for n in tail.graph.node}
    if not ops <= LABEL_TAIL_OPS:
        return f"the label is computed from {prob} by {sorted(ops - LABEL_TAIL_OPS)}"
    arg = [n for n in tail.graph.node if n.op_type == "ArgMax"]
    at = {a.name: a.i for a in arg[0].attribute} if len(arg) == 1 else {}
    if len(arg) != 1 or arg[0].input[0] != prob or at.get("axis", 0) not in (1, -1) or at.get("select_last_index"):
        return f"the label is not one ArgMax over the classes of {prob}"
    k = len(classes)
    elem = tail.graph.input[0].type.tensor_type.elem_type
    eye = np.eye(k, dtype=np.float64 if elem == 11 else np.float32)
    try:
        got = ort.InferenceSession(tail.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {prob: eye})[0]
    except Exception as exc:  # noqa: BLE001 - the reason says it
        return f"the label's computation from {prob} does not run alone ({type(exc).__name__})"
    got = np.asarray(got).reshape(-1).astype(str)
    want = np.asarray(classes).reshape(-1)
    want = (want.astype(np.int64) if want.dtype.kind == "b" else want).astype(str)  # booleans as the check: 0/1
    if got.shape != want.shape or np.any(got != want):
        return (f"the converted label maps the columns of {prob} to the classes {got.tolist()}, scikit-learn to "
                f"{want.tolist()}")
    return None


def _member_box(proto: Any, tensors: list[str], prob: str, bounds: list[float],
                boxes: list[tuple[float, float]] | None = None, domain: Domain | None = None
                ) -> tuple[Any, Domain, dict]:
    """The graph after the members (their tensors as its inputs), the box `[-d_i, 1 + d_i]` of the members'
    outputs (or `boxes`, a regressor's members' ranges widened by d_i), and each member tensor's width. With
    `domain`, the graph's own inputs the combination reads (a stacking's passthrough) keep their box there."""
    tail = _cut(proto, {prob: prob}, inputs=list(dict.fromkeys(tensors)), raw_ok=domain is not None)
    widths = {}
    for vi in tail.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) <= 1 and vi.name in tensors and boxes is not None:
            # a regressor member's prediction, untyped or [N]: one column, written as [N, 1] for the reading
            from onnx import TensorProto

            elem = vi.type.tensor_type.elem_type or TensorProto.FLOAT
            vi.type.tensor_type.elem_type = elem
            shape = vi.type.tensor_type.shape
            del shape.dim[:]
            shape.dim.add()
            shape.dim.add().dim_value = 1
            widths[vi.name] = 1
            continue
        if len(dims) != 2 or not dims[1].HasField("dim_value"):
            raise _Refuse(f"the member tensor {vi.name} has no fixed width")
        widths[vi.name] = int(dims[1].dim_value)
    if boxes is None:
        boxes = [(-d, 1.0 + d) for d in bounds]
    cols = {(t, j): DomainColumn(lo=lo, hi=hi) for t, (lo, hi) in zip(tensors, boxes) for j in range(widths[t])}
    for name in widths:
        if name not in tensors and domain is not None:
            for j in range(widths[name]):
                col = domain.columns.get((name, j))
                if col is None or col.categories is not None or col.nan:
                    raise _Refuse(f"the passthrough column {(name, j)} is not a numeric column of the domain")
                cols[(name, j)] = col
    return tail, Domain(cols, "member outputs"), widths


def _tail_program(proto: Any, tensors: list[str], prob: str, bounds: list[float],
                  boxes: list[tuple[float, float]] | None = None, domain: Domain | None = None
                  ) -> tuple[Any, Any, dict]:
    """The graph after the members (their tensors as inputs) read over their outputs' box `[-d_i, 1 + d_i]`
    (or `boxes`)."""
    from .onnx_program import read_onnx
    from .symbolic import NotSymbolic, Space

    tail, dom, widths = _member_box(proto, tensors, prob, bounds, boxes, domain)
    space = Space(dom)
    try:
        pb = read_onnx(tail, space, "converted")
    except NotSymbolic as exc:
        raise _Refuse(f"the combination has no reading: {exc}") from None
    return pb, dom, widths


def _stack_tail(proto: Any, tensors: list[str], prob: str, stack: Any, bounds: list[float], ctx: Context,
                t0: float, boxes: list[tuple[float, float]] | None = None, domain: Domain | None = None) -> float:
    """The largest difference, at the same member outputs, of the graph's final estimator and scikit-learn's
    (`joint.certify_programs` over the members' output box)."""
    from .joint import certify_programs
    from .onnx_program import input_value
    from .program import Program
    from .sklearn_program import _as_sym, _concat_values, _final, _take
    from .symbolic import NotSymbolic, Sym

    regress = _regressor(stack)
    pb, dom, widths = _tail_program(proto, tensors, prob, bounds, boxes, domain if regress else None)
    pa = Program(pb.space, "original")
    try:
        parts = []
        for t in tensors:
            p = input_value(pa, t, widths[t], False)
            if not regress and len(stack.classes_) == 2:
                p = _take(p, np.array([1]), -1)
            parts.append(_as_sym(pa, p))
        if regress and stack.passthrough:  # scikit-learn appends the features after the predictions
            for name in [n for n in widths if n not in tensors]:
                parts.append(_as_sym(pa, input_value(pa, name, widths[name], False)))
        outs = _final(pa, stack.final_estimator_, _concat_values(pa, parts, -1))
    except NotSymbolic as exc:
        raise _Refuse(f"the final estimator has no reading: {exc}") from None
    v = outs.get("variable" if regress else "probabilities")
    if not isinstance(v, Sym):
        raise _Refuse("the final estimator gives no probabilities")
    pa.outputs[prob] = Sym(v.C.reshape(-1, v.C.shape[-1]), np.asarray(v.E).reshape(-1), v.stage)
    sub = Context(outputs={prob: ctx.outputs[prob]}, atol={prob: np.inf}, rtol={prob: 0.0}, dtype=ctx.dtype)
    try:
        cert = certify_programs(pa, pb, None, None, dom, sub, METHOD, t0)[prob]
    except NotSymbolic as exc:
        raise _Refuse(f"the final estimators cannot be compared: {exc}") from None
    if cert.bound is None or not np.isfinite(cert.bound):
        raise _Refuse(f"the final estimators cannot be compared: {cert.reason}")
    return float(cert.bound)


def _member_range(member: Any, domain: Domain) -> tuple[float, float]:
    """A regressor member's range over the domain (its numeric input `X`): a tree ensemble's base plus each
    tree's smallest and largest leaf; a linear model's `coef_ . x + intercept_` over the box (exact, widened by
    a float64 rounding bound)."""
    from ..equivalence import load_model
    from .symbolic import U64, gamma

    coef = getattr(member, "coef_", None)
    if coef is not None and np.ndim(coef) == 1 and type(member).__module__.startswith("sklearn.linear_model"):
        lo, hi = domain.box("X", len(coef))
        if np.isnan(lo).any():
            raise _Refuse("a linear member reads columns outside the numeric box")
        c = np.asarray(coef, np.float64)
        b = float(np.asarray(getattr(member, "intercept_", 0.0), np.float64).reshape(-1)[0])
        top = float(np.sum(np.maximum(c * lo, c * hi))) + b
        bot = float(np.sum(np.minimum(c * lo, c * hi))) + b
        slack = gamma(len(c) + 2, U64) * (float(np.sum(np.abs(c) * np.maximum(np.abs(lo), np.abs(hi)))) + abs(b))
        return bot - slack, top + slack
    ens = getattr(load_model(member).input_hints(), "ensemble", None)
    if ens is not None and ens.targets == 1 and "variable" in ens.outputs:
        o = ens.outputs["variable"]
        if o.kind == "columns" and o.fn == ["identity"]:
            v = np.asarray(ens.trees.values, np.float64)[:, 0]
            leaf = ens.trees.left < 0
            tree_of = np.searchsorted(np.asarray(ens.trees.roots), np.arange(len(v)), side="right") - 1
            lo = float(ens.base[0]) + sum(float(v[leaf & (tree_of == t)].min()) for t in range(len(ens.trees.roots)))
            hi = float(ens.base[0]) + sum(float(v[leaf & (tree_of == t)].max()) for t in range(len(ens.trees.roots)))
            a, b, c, d = float(o.a[0]), float(o.b[0]), float(o.c[0]), float(o.d[0])
            ends = sorted([c * (a * lo + b) + d, c * (a * hi + b) + d])
            slack = gamma(len(ens.trees.roots) + 4, U64) * (abs(lo) + abs(hi) + abs(b) + abs(d)) * (1 + abs(a * c))
            return ends[0] - slack, ends[1] + slack
    raise _Refuse(f"the range of the member {type(member).__name__} over the domain is not read")


def _output_range(ens: Any, ranges: list[tuple[float, float]], domain: Domain) -> tuple[float, float]:
    """The range of a regressor ensemble's prediction over the domain from its members' ranges: a voting's
    weighted mean of them, a stacking's linear final estimator over them and the passthrough features' box
    (interval arithmetic; a float64 rounding bound added)."""
    from .symbolic import U64, gamma

    lo = np.array([r[0] for r in ranges])
    hi = np.array([r[1] for r in ranges])
    if not hasattr(ens, "stack_method_"):
        w = np.asarray(ens._weights_not_none if ens.weights is not None else np.ones(len(ranges)), np.float64)
        w = w / w.sum()
        a, b = float(np.dot(w, lo)), float(np.dot(w, hi))
    else:
        fe = ens.final_estimator_
        c = np.asarray(getattr(fe, "coef_", np.zeros(0)), np.float64).reshape(-1)
        if len(c) < len(ranges):
            return -np.inf, np.inf
        if len(c) > len(ranges):
            xl, xh = domain.box("X", len(c) - len(ranges))
            lo, hi = np.r_[lo, xl], np.r_[hi, xh]
        b0 = float(np.asarray(fe.intercept_, np.float64).reshape(-1)[0])
        a = float(np.sum(np.minimum(c * lo, c * hi))) + b0
        b = float(np.sum(np.maximum(c * lo, c * hi))) + b0
    slack = gamma(2 * len(lo) + 4, U64) * (abs(a) + abs(b) + float(np.sum(np.maximum(np.abs(lo), np.abs(hi)))))
    return a - slack, b + slack


def _linear_lipschitz(stack: Any, bounds: list[float], boxes: list[tuple[float, float]],
                      domain: Domain) -> tuple[float, float]:
    """(how far scikit-learn's linear final estimator moves when each member's prediction moves by d_i:
    sum |coef_i| d_i, twice its own float64 rounding over the members' boxes and the passthrough features)."""
    from .symbolic import U64, gamma

    fe = stack.final_estimator_
    coef = getattr(fe, "coef_", None)
    if coef is None or np.ndim(coef) != 1 or not type(fe).__module__.startswith("sklearn.linear_model"):
        raise _Refuse(f"a final {type(fe).__name__} (the Lipschitz bound reads a linear model)")
    c = np.asarray(coef, np.float64)
    n = len(bounds)
    move = float(np.dot(np.abs(c[:n]), bounds))
    big = [max(abs(lo), abs(hi)) for lo, hi in boxes]
    if len(c) > n:
        lo, hi = domain.box("X", len(c) - n)
        big += list(np.maximum(np.abs(lo), np.abs(hi)))
    b = abs(float(np.asarray(fe.intercept_, np.float64).reshape(-1)[0]))
    own = 2 * (gamma(len(c) + 2, U64) * (float(np.dot(np.abs(c), big)) + b) + 64 * U64)
    return move, own


def _stack_lipschitz(stack: Any, bounds: list[float]) -> tuple[float, float]:
    """(how far scikit-learn's final logistic regression moves when each member's probabilities move by d_i,
    twice its own float64 rounding). Binary: |d sigmoid| <= |dz| / 4; softmax: |d p_i| <= max_k |dz_k| / 2."""
    from .symbolic import U64, gamma

    fe = stack.final_estimator_
    if type(fe).__name__ != "LogisticRegression":
        raise _Refuse(f"a final {type(fe).__name__} (the Lipschitz bound reads a LogisticRegression)")
    W = np.atleast_2d(np.asarray(fe.coef_, np.float64))
    per = 1 if len(stack.classes_) == 2 else len(stack.classes_)
    d = np.repeat(np.asarray(bounds, np.float64), per)
    if W.shape[1] != len(d):
        raise _Refuse(f"the final estimator reads {W.shape[1]} features, the members give {len(d)}")
    dz = np.abs(W) @ d
    move = float(dz.max()) / 4 if W.shape[0] == 1 else float(dz.max()) / 2
    z = np.abs(W).sum(axis=1) * (1.0 + float(np.max(bounds))) + np.abs(np.asarray(fe.intercept_, np.float64))
    own = 2 * (gamma(W.shape[1] + 2, U64) * float(z.max()) + 64 * U64)
    return move, own


def _tail(proto: Any, tensors: list[str], prob: str, w: np.ndarray, bounds: list[float],
          boxes: list[tuple[float, float]] | None = None) -> float:
    """The largest difference over the members' output box between the graph's combination and the exact
    weighted mean (the coefficients' difference over the box, plus the graph's rounding)."""
    from .onnx_program import input_value
    from .program import Program
    from .symbolic import Sym

    pb, dom, widths = _tail_program(proto, tensors, prob, bounds, boxes)
    space = pb.space
    out = pb.outputs.get(prob)
    if pb.stages or not isinstance(out, Sym):
        raise _Refuse("the combination is not affine in the members' outputs")
    ref = Program(space, "original")
    C = np.zeros_like(space.pad(out.C))
    for t, wi in zip(tensors, w):
        s = input_value(ref, t, widths[t], False)
        C = C + wi * space.pad(s.C)
    D = space.pad(out.C) - C
    return float(np.max(space.magnitude(D, "converted") + np.broadcast_to(out.E, D.shape[:-1])))


__all__ = ["certify_members"]
