"""Certification method `affine`: both models read as compositions of affine maps (scalers, PCA, encoders,
imputers, linear and logistic models, linear SVMs, naive Bayes' log-linear part, polynomial features) followed by
output post-processing (logistic, softmax, L1 normalisation, argmax).

The largest difference of the affine (or per-column quadratic) parts over the domain box is computed exactly from
the coefficients (the maximum of a linear function over a box is a sum of per-column maxima, attained at a corner,
which is the counterexample when the bound exceeds the tolerance); the models' own float rounding is bounded per
operation (`program`), and the post-processing is crossed with its Lipschitz bound (`joint`). Labels are proved
equal wherever the decision margin exceeds twice the score bound.
"""
from __future__ import annotations

import time
from typing import Any

from .core import (CERTIFIED, NOT_CERTIFIABLE, REFUTED, Certificate, Context, Domain, certification_method,
                   not_certifiable, refuted_or_not)
from .joint import certify_programs
from .normalizer import Discontinuity
from .symbolic import NotSymbolic, Space

METHOD = "affine"
SPLIT_SECONDS, SPLIT_CAP_SECONDS = 6.0, 30.0  # time spent splitting the domain (all outputs of one pair): at
# least the first, at most the second, else twice the budget of boxes times the whole domain's read
# after this many boxes, splitting stops unless some box's bound over its tolerance is below this fraction of the
# whole domain's (an RBF SVM's worst-case rounding over hundreds of support vectors hardly shrinks with the box:
# reading boxes was most of its certification time)
FUTILE_READS, FUTILE_RATIO = 6, 0.7


_LAST: list[Any] = []  # the last pair read: (original, converted, domain, result); affine and ibp both ask


def read_pair(original: Any, converted: Any, domain: Domain) -> tuple[Any, Any]:
    """Both models as Programs over one Space (NotSymbolic when either has no reading; `Unreadable` when the
    original has one and the converted model does not). The last pair read is kept: both methods read it."""
    if _LAST and _LAST[0] is original and _LAST[1] is converted and _LAST[2] is domain:
        result = _LAST[3]
        if isinstance(result, Exception):
            raise result
        return result
    _LAST.clear()
    try:
        result = _read_pair(original, converted, domain)
    except (NotSymbolic, Unreadable) as exc:
        _LAST.extend([original, converted, domain, exc])
        raise
    _LAST.extend([original, converted, domain, result])
    return result


def forget() -> None:
    """Drop the kept reading (and with it the two models)."""
    _LAST.clear()


def _read_pair(original: Any, converted: Any, domain: Domain) -> tuple[Any, Any]:
    space = Space(domain)
    pa = read_model(original, space, "original")
    try:
        pb = read_model(converted, space, "converted")
    except NotSymbolic as exc:
        raise Unreadable(str(exc), pa) from None
    return pa, pb


class Unreadable(Exception):
    """The original model has a reading and the converted one does not: certificates say why."""

    def __init__(self, reason: str, original: Any) -> None:
        super().__init__(reason)
        self.original = original


def unreadable(exc: Unreadable, ctx: Context, method: str, original: Any = None) -> dict[str, Certificate]:
    """The converted model has no reading: nothing is proved, but the original's reading still says where two
    models are most likely to part (its extreme points, corners, random points of the domain). Each output is
    returned refuted with those inputs as candidates: `portable.certify` runs both models on them and keeps the
    refutation only with a verified counterexample (a difference beyond the tolerance both models reproduce),
    else it is not certifiable, for the reason given here."""
    reason = f"the converted model has no {method} reading: {exc}"
    try:
        batch = _original_candidates(exc.original, original, ctx) if original is not None else None
    except Exception:  # noqa: BLE001 - no candidates: the reason stands alone
        batch = None
    return refuted_or_not(ctx.outputs, reason, batch)


def _original_candidates(prog: Any, original: Any, ctx: Context) -> dict[str, Any]:
    """One batch of inputs: the points where each of the original's first affine maps and outputs is largest and
    smallest, and 256 random points of the domain (corners half the time per column)."""
    import numpy as np

    from .joint import sample_points, to_inputs
    from .program import Label

    space = prog.space
    pts = [sample_points(space, 256)]
    for s in [st.pre for st in prog.stages[:1]] + [o.scores if isinstance(o, Label) else o
                                                    for o in prog.outputs.values()]:
        if s.stage:
            continue
        C = space.pad(s.C).reshape(-1, space.size)
        pts += [space.maximize(C, want_arg=True)[1], space.maximize(-C, want_arg=True)[1]]
    n = max(p.shape[1] for p in pts)
    P = np.concatenate([np.pad(p, ((0, 0), (0, n - p.shape[1]))) for p in pts])
    rows = [to_inputs(space, p, original.signature.inputs, ctx.inputs) for p in P]
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def discontinuity(exc: Any, original: Any, ctx: Context) -> dict[str, Certificate]:
    """Every output refuted with the rows of a `Discontinuity` as candidates: `portable.certify` runs both models
    on them and keeps the refutation only with a verified counterexample (else: not certifiable, for this reason)."""
    import numpy as np

    from .joint import to_inputs

    rows = [to_inputs(exc.space, p, original.signature.inputs, ctx.inputs) for p in exc.points]
    batch = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    reason = f"not read: {exc}"
    return {name: Certificate(name, REFUTED, method=METHOD, reason=reason, candidates=[batch],
                              details={"unreadable": True, "discontinuity": str(exc)}) for name in ctx.outputs}


def read_model(model: Any, space: Space, side: str) -> Any:
    fmt = getattr(model, "format", None)
    if fmt in ("sklearn", "pickle") and hasattr(model, "estimator"):
        from . import normalizer  # noqa: F401  (registers its reader)
        from .sklearn_program import read_sklearn

        return read_sklearn(model, space, side)
    if fmt == "onnx" and hasattr(model, "proto"):
        from . import onnx_more_ops  # noqa: F401  (registers its operators)
        from .onnx_program import read_onnx

        return read_onnx(model.proto, space, side)
    raise NotSymbolic(f"no symbolic reading of the {fmt} format")


def _hidden(prog: Any) -> bool:
    """A nonlinearity whose outputs feed an affine map (a hidden layer), rather than output post-processing
    (outputs that are the stage's units themselves, or 1 minus them, or them plus a constant)."""
    import numpy as np

    if len(prog.stages) != 1:
        return len(prog.stages) > 1
    space = prog.space
    for out in prog.outputs.values():
        s = out.scores if hasattr(out, "classes") else out
        if s.stage != 1:
            continue
        for row in space.pad(s.C).reshape(-1, space.size):
            nz = [m for m in np.nonzero(row)[0] if m != 0]
            if len(nz) > 1 or (nz and abs(row[nz[0]]) != 1.0):
                return True
    return False


def certify_by_splitting(original: Any, converted: Any, domain: Domain, ctx: Context, method: str,
                         hidden: bool, t0: float, budget: int = 48) -> dict[str, Certificate] | None:
    """Certificates over the domain, splitting it into halves where a numeric output's bound exceeds the
    tolerance (the rounding and Lipschitz bounds are far tighter on small boxes, where a saturated logistic no longer
    meets the largest inputs); at most `budget` boxes are read."""
    start = time.perf_counter()
    try:
        pa, pb = read_pair(original, converted, domain)
    except Unreadable as exc:
        return None if _hidden(exc.original) != hidden else unreadable(exc, ctx, method, original)
    if _hidden(pa) != hidden or _hidden(pb) != hidden:
        return None
    certs = certify_programs(pa, pb, original, converted, domain, ctx, method, t0)
    weights = _split_weights(pa)
    # shared by the outputs: the budget of boxes decides, the time (scaled by this first read, so that a loaded
    # machine reads as many boxes) is a safety net
    once = time.perf_counter() - start
    deadline = time.perf_counter() + min(SPLIT_CAP_SECONDS, max(SPLIT_SECONDS, 2 * budget * once))
    for name, cert in certs.items():
        if cert.status != NOT_CERTIFIABLE or cert.bound is None or ctx.outputs.get(name) == "label" or not weights:
            continue
        # the worst-case rounding alone exceeds the tolerance anywhere: smaller boxes seldom help. Through hidden
        # layers (an MLP, an RBF kernel's units) the rounding and the output's range hardly shrink with a box of
        # raw columns (mlp_regressor, svr: no box of 48 certified, ~20x longer certification), so those are split
        # only when the rounding is within the whole domain's tolerance, as before
        if cert.details.get("rounding_bound", 0.0) > (cert.tolerance or 0.0 if hidden else _loosest(name, pa, ctx)):
            if hidden:
                cert.reason = (cert.reason or "") + _rounding_reason(name, cert, pa)
            continue
        certs[name] = _split(name, cert, original, converted, domain, ctx, method, weights, budget, t0, deadline)
    imply_labels(certs)
    return certs


def _rounding_reason(name: str, cert: Certificate, prog: Any) -> str:
    """Why a program with hidden units stays uncertified when its rounding bound alone exceeds the tolerance."""
    import numpy as np

    out = prog.outputs.get(name)
    if out is None or hasattr(out, "classes"):
        return ""
    lo, hi = prog.space.range(out.C, prog.side)
    lo, hi = float(np.min(lo - out.E)), float(np.max(hi + out.E))
    return (f"; the worst-case float rounding alone ({cert.details['rounding_bound']:.3g}: both models' operations, "
            f"sums in any order) exceeds the tolerance {cert.tolerance:.3g}, which is atol unscaled because the "
            f"output range proved through the hidden units, [{lo:.4g}, {hi:.4g}], reaches 0 (interval bounds of the "
            "units; smaller boxes of the raw columns hardly tighten them, so the domain is not split)")


def _loosest(name: str, prog: Any, ctx: Context) -> float:
    """The largest tolerance any box of the domain may have for a numeric output: atol at its full scale plus
    rtol times the largest |value| the program proves (a box's own bounds are at least that tight)."""
    import numpy as np

    out = prog.outputs.get(name)
    if out is None or hasattr(out, "classes"):
        return np.inf
    lo, hi = prog.space.range(out.C, prog.side)
    big = float(np.max(np.maximum(np.abs(lo - out.E), np.abs(hi + out.E)), initial=0.0))
    return ctx.atol.get(name, 0.0) * max(1.0, float(ctx.scale.get(name, 1.0))) + ctx.rtol.get(name, 0.0) * big


def imply_labels(certs: dict[str, Certificate]) -> None:
    """A label that is the argmax of an output certified within the check's tolerance is certified too (the
    labels agree except at the check's near-ties)."""
    for name, cert in certs.items():
        implied = cert.details.get("implied_by") or []
        if cert.status == NOT_CERTIFIABLE and implied and all(
                certs.get(o) is not None and certs[o].status == CERTIFIED for o in implied):
            cert.status, cert.reason, cert.bound = CERTIFIED, None, 0.0
            cert.details["near_ties_only"] = True
            cert.details["meaning"] = (f"the label is the argmax of {', '.join(implied)}, certified within the "
                                       "check's tolerance: the labels agree except where the original's top two "
                                       "values tie within that tolerance (the check's near-ties)")


def _split_weights(prog: Any) -> dict[Any, float]:
    """Per numeric column, how much the first affine map depends on it (|coefficients| summed)."""
    import numpy as np

    space = prog.space
    first = prog.stages[0].pre if prog.stages else next((o for o in prog.outputs.values()
                                                        if not hasattr(o, "classes")), None)
    if first is None:
        return {}
    C = np.abs(space.pad(first.C)).reshape(-1, space.size).sum(axis=0)
    out: dict[Any, float] = {}
    for g in space.groups:
        if g.kind == "numeric" and g.hi > g.lo:
            v = space.var_index.get(("x", g.column))
            if v is not None:
                out[g.column] = float(sum(C[m] for m, vs in enumerate(space.monomials) if v in vs))
    return {k: w for k, w in out.items() if w > 0}


def _split(name: str, cert: Certificate, original: Any, converted: Any, domain: Domain, ctx: Context,
           method: str, weights: dict[Any, float], budget: int, t0: float, deadline: float) -> Certificate:
    """Split the domain into boxes until each box's bound is within its tolerance (at most `budget` boxes read).

    A box's tolerance grows with the smallest |value| it proves (`rtol |value|`) and atol's scale with the
    smallest |value| over the whole domain (`Context.atol_scale`): a check may compare rows of every box at once,
    so every box is held to the smallest scale of all boxes (the domain's). That scale is known only once the
    boxes are read: boxes are read with atol's scale capped at the smallest scale seen so far, and a box
    certified under a larger cap than the final one is checked again at the final scale and split further when
    its bound then exceeds its tolerance."""
    import dataclasses

    import numpy as np

    atol = ctx.atol.get(name, 0.0)
    cap = float(ctx.scale.get(name, 1.0))
    queue: list[Domain] = [domain]
    leaves: list[tuple[Domain, Certificate]] = []
    keys: dict[int, float] = {}  # per queued box, its bound over its tolerance
    reads = 0
    # the smallest bound over tolerance of a box read: splitting stops when halves do not bring it down (a box's
    # tolerance grows with the smallest |value| it proves, so a bound that does not shrink may still fit)
    tightest = np.inf
    start = cert.bound / max(cert.tolerance or 0.0, 1e-300)
    while True:
        while queue and reads < budget and time.perf_counter() < deadline:
            if reads >= FUTILE_READS and tightest > FUTILE_RATIO * start:
                cert.details["split_boxes"] = reads
                cert.reason = (cert.reason or "") + (f"; splitting the domain did not bring the bound nearer its "
                                                     f"tolerance ({reads} boxes: at best {tightest:.3g} times it)")
                return cert
            box = queue.pop()
            col = max(weights, key=lambda c: weights[c] * (box.columns[c].hi - box.columns[c].lo))
            c = box.columns[col]
            if not c.hi > c.lo:  # nothing left to split (the box is a point of the split columns)
                cert.details["split_boxes"] = reads
                return cert
            mid = c.lo + (c.hi - c.lo) / 2
            sub = Context(**{**ctx.__dict__, "outputs": {name: ctx.outputs[name]},
                             "scale": {**ctx.scale, name: cap}})
            for lo, hi in ((c.lo, mid), (mid, c.hi)):
                half = Domain(dict(box.columns), box.source)
                half.columns[col] = dataclasses.replace(c, lo=lo, hi=hi, nan=c.nan and lo == c.lo)
                reads += 1
                try:
                    pa, pb = read_pair(original, converted, half)
                    got = certify_programs(pa, pb, original, converted, half, sub, method, t0)[name]
                except (NotSymbolic, Unreadable):
                    return cert
                if got.status == REFUTED:
                    got.details["split_boxes"] = reads
                    return got
                if got.bound is not None:
                    tightest = min(tightest, got.bound / max(got.tolerance or 0.0, 1e-300))
                if got.status == CERTIFIED:
                    leaves.append((half, got))
                else:  # the box furthest beyond its tolerance is split first
                    queue.append(half)
                    keys[id(half)] = got.bound / max(got.tolerance or 0.0, 1e-300) if got.bound is not None else 0
            queue.sort(key=lambda b: keys.get(id(b), 0.0))
        if queue:
            cert.details["split_boxes"] = reads
            cert.reason = (cert.reason or "") + f"; {reads} smaller boxes did not all certify"
            return cert
        # every box is held to the smallest scale of all boxes (the domain's)
        least = min(float(x.details.get("atol_scale", cap)) for _, x in leaves)
        again = []
        for box, x in leaves:
            sx = float(x.details.get("atol_scale", least))
            x.tolerance = x.tolerance - atol * (sx - least)
            x.details["atol_scale"] = least
            if x.bound > x.tolerance:
                again.append(box)
        if not again:
            break
        cap = least
        if reads >= budget or time.perf_counter() >= deadline:
            worst = max((x for _, x in leaves if x.bound > x.tolerance), key=lambda x: x.bound - x.tolerance)
            cert.details["split_boxes"] = reads
            cert.reason = (cert.reason or "") + (f"; over {len(leaves)} smaller boxes the bound {worst.bound:.3g} "
                                                 f"exceeds the tolerance {worst.tolerance:.3g} at atol's scale over "
                                                 f"the whole domain ({least:.3g})")
            return cert
        leaves = [(b, x) for b, x in leaves if x.bound <= x.tolerance]
        queue.extend(again)
    best = max((x for _, x in leaves), key=lambda x: x.bound)  # with its own box's tolerance (>= its bound)
    best.details["least_tolerance"] = min(x.tolerance for _, x in leaves)
    best.domain = domain.to_dict()
    best.details["split_boxes"] = len(leaves)
    best.details["bound_is"] = ("the largest bound over the boxes the domain was split into, with the tolerance of "
                                "its box (each box's bound is within its own tolerance)")
    best.seconds = time.perf_counter() - t0
    return best


@certification_method(METHOD, priority=20)
def certify_affine(original: Any, converted: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    """Certificates for affine compositions (None when either model is not one)."""
    try:
        return certify_by_splitting(original, converted, domain, ctx, METHOD, False, time.perf_counter())
    except Discontinuity as exc:  # nothing proved; where the two models should part, for portable.certify to run
        cut = _at_normalizer(original, converted, domain, ctx)
        if isinstance(cut, dict) and all(c.status == CERTIFIED for c in cut.values()):
            return cut
        certs = discontinuity(exc, original, ctx)
        if isinstance(cut, str):
            for c in certs.values():
                c.reason = f"{c.reason}; read at the Normalizer's output: {cut}"
        return certs
    except NotSymbolic as exc:  # the original has no reading: say why (a later method may still apply)
        if "Normalizer" in str(exc) or "clips" in str(exc):
            cut = _at_normalizer(original, converted, domain, ctx)
            if isinstance(cut, dict):
                return cut
            if isinstance(cut, str):
                return {name: not_certifiable(name, f"no affine reading: {exc}; read at the Normalizer's output: "
                                              f"{cut}") for name in ctx.outputs}
        return {name: not_certifiable(name, f"no affine reading: {exc}") for name in ctx.outputs}


def _at_normalizer(original: Any, converted: Any, domain: Domain, ctx: Context) -> Any:
    """`normalizer.certify_cut`'s certificates, None when the pair is not a scalers + Normalizer pipeline, or
    the reason it was not read (a str)."""
    from .normalizer import certify_cut

    try:
        return certify_cut(original, converted, domain, ctx, time.perf_counter())
    except NotSymbolic as exc:
        return str(exc)

