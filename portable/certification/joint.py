"""The difference of two `Program`s over a domain, stage by stage, and the certificates it proves.

Stage 0 is exact: both models' first polynomials are read over the same variables, so the largest difference over
the domain is the largest value of their difference (`Space.maximize`: a sum of per-column maxima, exact for
affine and per-column quadratic pieces). Each nonlinearity carries a per-unit bound on the difference through its
slope on the units' interval (`program.vector_change`), and the next stage's difference is

    |P_A(h_A) - P_B(h_B)| <= max_h |(P_A - P_B)(h)| + sum_i |coef_A,i| |h_A,i - h_B,i|

with h ranging over both models' intervals of the units (interval bound propagation; sound, looser with depth).
Every stage adds both models' own rounding bounds. Labels are proved equal wherever the decision margin exceeds
twice the scores' difference bound.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import CERTIFIED, NOT_CERTIFIABLE, REFUTED, Certificate, Context, Domain, labels_differ, magnitude_floor, \
    not_certifiable
from .program import Label, Program, _sigmoid, apply_blocks, blocks, l1norm_relative_change, stage_units, \
    unit_relative, vector_change
from .symbolic import FUNC_ULPS, U32, NotSymbolic, Space, Sym, gamma


@dataclass
class Bound:
    """Per element of an output: the exact range of the coefficient difference, and the total bound."""

    lo: np.ndarray  # smallest (P_A - P_B) over the domain (stage 0: exact)
    hi: np.ndarray
    total: np.ndarray  # bound on |A - B| including propagated differences and rounding
    exact: bool


def align(pa: Program, pb: Program) -> None:
    if len(pa.stages) != len(pb.stages):
        raise NotSymbolic(f"the models have {len(pa.stages)} and {len(pb.stages)} nonlinear stages")
    for k, (a, b) in enumerate(zip(pa.stages, pb.stages), 1):
        if a.act != b.act or len(a.lo) != len(b.lo):
            raise NotSymbolic(f"stage {k} differs: {a.act}[{len(a.lo)}] and {b.act}[{len(b.lo)}]")


def propagate(pa: Program, pb: Program) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per stage (1..), bounds on |h_A - h_B| and on the stage's input difference |z_A - z_B| per unit."""
    space = pa.space
    space.hull_hidden()
    dh: list[np.ndarray] = []
    dzs: list[np.ndarray] = []
    for sa, sb in zip(pa.stages, pb.stages):
        d = diff(space, sa.pre, sb.pre, dh)
        za, zb = space.range(sa.pre.C), space.range(sb.pre.C)
        zlo, zhi = np.minimum(za[0] - sa.pre.E, zb[0] - sb.pre.E), np.maximum(za[1] + sa.pre.E, zb[1] + sb.pre.E)
        plo, phi = np.minimum(sa.lo, sb.lo), np.maximum(sa.hi, sb.hi)
        dz = d.total
        dzs.append(dz)
        try:
            change = np.minimum(vector_change(sa.act, dz, zlo, zhi, plo, phi), phi - plo)
        except NotSymbolic:  # an L1 normalisation whose sum, less the absolute difference, may reach 0
            if "l1norm" not in sa.act or not dzs[:-1]:
                raise
            change = phi - plo
        if "l1norm" in sa.act and dzs[:-1]:
            change = np.minimum(change, _l1norm_relative(pa, pb, len(dzs), dzs[-2], plo, phi))
        dh.append(change)
    return dh, dzs


def _l1norm_relative(pa: Program, pb: Program, k: int, dz_prev: np.ndarray, plo: np.ndarray,
                     phi: np.ndarray) -> np.ndarray:
    """Per unit of stage k (1-based), for its L1 normalisations of positive units of stage k - 1 (the same units,
    coefficient 1, in both models): the exact outputs differ by at most 2 p (1 - p) r / (1 - r), r the units'
    largest relative difference (|d log sigmoid|, |d log exp| <= |dz|; softmax: 2 max |dz| over its block);
    elsewhere inf."""
    space = pa.space
    sa, sb = pa.stages[k - 1], pb.stages[k - 1]
    prev = pa.stages[k - 2]
    out = np.full(len(sa.lo), np.inf)
    rel = unit_relative(prev.act, dz_prev, 0.0)
    Pa, Pb = space.pad(sa.pre.C), space.pad(sb.pre.C)
    i0 = 0
    for act, n in blocks(sa.act, len(sa.lo)):
        if act == "l1norm" and np.array_equal(Pa[i0:i0 + n], Pb[i0:i0 + n]):
            units = stage_units(space, Sym(Pa[i0:i0 + n], np.zeros(n), k - 1), k - 1)
            if units is not None and not np.any(np.isnan(rel[units])):
                out[i0:i0 + n] = l1norm_relative_change(rel[units], plo[i0:i0 + n], phi[i0:i0 + n])
        i0 += n
    return out


def relative_bound(pa: Program, pb: Program, oa: Sym, ob: Sym,
                   dzs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """When each output is a unit p of the last logistic/softmax stage (or 1 - p), or a weighted mean of such
    units (w >= 0, sum w = 1: an ensemble's average, a calibration's folds), in both models: arrays (c, r, a) with
    |o_A - o_B| <= c o (1 - o) + r o + a, o the original's output. By the mean value theorem a logistic moves by
    s(1 - s) d at a point xi with s(1 - s) within a factor e^(2d) of p(1 - p) (a softmax by 2 p_i (1 - p_i)
    max|d| over its block, within e^(4 max d)); the act's rounding is relative to p; for a mean, sum w_i c_i
    p_i (1 - p_i) <= max c * o (1 - o) (p (1 - p) is concave), and the two models' weights' difference and the
    averaging's rounding add to a. None otherwise."""
    k = len(pa.stages)
    if not k:
        return None
    st = pa.stages[-1]
    parts = blocks(st.act, len(st.lo))
    if any(a not in ("sigmoid", "softmax") for a, _ in parts):
        return None
    space = pa.space
    A, B = space.pad(oa.C), space.pad(ob.C)
    if A.shape != B.shape or A.ndim != 2:
        return None
    dz = dzs[k - 1]
    cu = np.zeros_like(dz)
    i0 = 0
    for act, n in parts:
        d = dz[i0:i0 + n]
        cu[i0:i0 + n] = 2 * np.max(d) * np.exp(4 * np.max(d)) if act == "softmax" else d * np.exp(2 * d)
        i0 += n
    own = (st.rel_own + pb.stages[-1].rel_own) * float(np.exp(2 * np.max(dz)))
    absown = st.abs_own + pb.stages[-1].abs_own
    unit_of = {}
    for m, vs in enumerate(space.monomials):
        if len(vs) == 1 and space.vars[vs[0]][0] == "h" and space.vars[vs[0]][1] == k:
            unit_of[m] = space.vars[vs[0]][2]
    n_out = A.shape[0]
    c, r, a = np.zeros(n_out), np.zeros(n_out), np.zeros(n_out)
    for i in range(n_out):
        nz = [m for m in np.nonzero(A[i] != 0)[0] if m != 0]
        if not nz or any(m not in unit_of for m in nz) or np.any(B[i][[m for m in np.nonzero(B[i])[0]
                                                                      if m != 0 and m not in unit_of]]):
            return None
        w = A[i, nz]
        c0 = A[i, 0]
        total = float(w.sum())
        if c0 == 0.0 and np.all(w > 0) and abs(total - 1.0) <= 1e-9:
            pass
        elif c0 == 1.0 and np.all(w < 0) and abs(total + 1.0) <= 1e-9:
            pass
        else:
            return None
        units = [unit_of[m] for m in nz]
        c[i] = float(np.max(cu[units])) * (1.0 + 1e-9)
        r[i] = own
        slack = float(np.sum(np.abs(A[i] - B[i])))  # the weights' difference, h in [0, 1]
        if len(nz) == 1 and slack == 0.0:
            a[i] = ((own + 4 * U32) if c0 == 1.0 else 0.0) + absown  # 1 - p adds its own rounding
        else:
            a[i] = slack + (own if c0 == 1.0 else 0.0) + absown + 2 * gamma(len(nz) + 2, U32) + 1e-9 * c[i]
    return c, r, a


def diff(space: Space, a: Sym, b: Sym, dh: list[np.ndarray]) -> Bound:
    """The difference bound of two 1-d Syms of the same stage."""
    A, B = space.pad(a.C), space.pad(b.C)
    if A.shape != B.shape:
        raise NotSymbolic(f"outputs of shapes {A.shape[:-1]} and {B.shape[:-1]}")
    D = A - B
    hi, _, exact = space.maximize(D)
    lo = -space.maximize(-D)[0]
    total = np.maximum(np.abs(lo), np.abs(hi)) + a.E + b.E
    stage = max(a.stage, b.stage)
    if stage:
        carried = np.zeros(A.shape[0])
        for m, vs in enumerate(space.monomials):
            if not vs or not np.any(A[:, m]):
                continue
            keys = [space.vars[v] for v in vs]
            if all(k[0] != "h" for k in keys):
                continue  # a skip connection: the same raw variables on both sides, no carried difference
            if len(vs) != 1 or keys[0][0] != "h":
                raise NotSymbolic("a product of hidden units")
            _, st, i = keys[0]
            carried += np.abs(A[:, m]) * dh[st - 1][i]
        total = total + carried
    return Bound(lo, hi, total, exact)


# -- evaluating programs at points -----------------------------------------------------------------------------------
def run(prog: Program, values: np.ndarray) -> dict[str, np.ndarray]:
    """Both programs' outputs at points given as base-variable values [n, n_vars] (float64, exact reading)."""
    space = prog.space
    vals = np.concatenate([values, np.zeros((len(values), len(space.vars) - values.shape[1]))], axis=1)
    for k, st in enumerate(prog.stages, 1):
        z = space.evaluate(st.pre.C, vals)
        h = _apply(st.act, z)
        for i in range(h.shape[1]):
            v = space.var_index[("h", k, i)]
            vals[:, v] = h[:, i]
    out = {}
    for name, o in prog.outputs.items():
        if isinstance(o, Label):
            s = space.evaluate(o.scores.C, vals)
            idx = s.argmax(axis=1)
            out[name] = idx if o.classes is None else np.asarray(o.classes)[idx]
        else:
            out[name] = space.evaluate(o.C, vals)
    return out


def _apply(act: str, z: np.ndarray) -> np.ndarray:
    if "[" in act:  # a stage of parallel blocks (program.blocks)
        return apply_blocks(act, z, _apply)
    if act == "relu":
        return np.maximum(z, 0)
    if act == "tanh":
        return np.tanh(z)
    if act == "sigmoid":
        return _sigmoid(z)
    if act == "exp":
        return np.exp(z)
    if act == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if act == "l1norm":
        return z / z.sum(axis=1, keepdims=True)
    raise NotSymbolic(act)


def sample_points(space: Space, n: int, seed: int = 0) -> np.ndarray:
    """n random points of the domain (base variables), corners included with probability 1/2 per column."""
    rng = np.random.default_rng(seed)
    vals = np.zeros((n, len(space.vars)))
    for gi, g in enumerate(space.groups):
        if g.kind == "hidden":
            continue
        if g.kind == "categorical":
            ks = rng.integers(0, len(g.categories), n)
            for k in range(len(g.categories)):
                v = space.var_index.get(("e", g.column, k))
                if v is not None:
                    vals[:, v] = ks == k
            continue
        x = space.var_index.get(("x", g.column))
        if g.categories:
            ks = rng.integers(0, len(g.categories), n)
            for k in range(len(g.categories)):
                v = space.var_index.get(("e", g.column, k))
                if v is not None:
                    vals[:, v] = ks == k
            if x is not None:
                vals[:, x] = np.asarray(g.categories, dtype=np.float64)[ks]
            continue
        u = rng.random(n)
        pts = np.where(u < 0.25, g.lo, np.where(u < 0.5, g.hi, g.lo + rng.random(n) * (g.hi - g.lo)))
        if g.integer:
            pts = np.round(pts)
        if x is not None:
            vals[:, x] = pts
        if g.nan:
            nn = space.var_index.get(("n", g.column))
            isnan = rng.random(n) < 0.1
            if nn is not None:
                vals[:, nn] = isnan
            if x is not None:
                vals[isnan, x] = 0.0
    return vals


def to_inputs(space: Space, point: np.ndarray, specs: Any, dtypes: dict[str, str] | None = None
              ) -> dict[str, np.ndarray]:
    """Model inputs (one row) for a point of the base variables (float inputs in `dtypes[name]` when given: the
    dtype the check feeds both models)."""
    point = np.concatenate([point, np.zeros(len(space.vars) - len(point))])
    feeds = {}
    for spec in specs:
        width = int(np.prod([d for d in spec.shape[1:]])) if len(spec.shape) > 1 else 1
        row: list[Any] = []
        for j in range(width):
            gi = space.group_index.get((spec.name, j))
            if gi is None:
                row.append("" if spec.is_string else 0.0)
                continue
            g = space.groups[gi]
            if g.kind == "categorical":
                k = next((k for k in range(len(g.categories))
                          if space.var_index.get(("e", g.column, k)) is not None
                          and point[space.var_index[("e", g.column, k)]] > 0.5), 0)
                row.append(g.categories[k])
                continue
            nv = space.var_index.get(("n", g.column))
            xv = space.var_index.get(("x", g.column))
            if nv is not None and point[nv] > 0.5:
                row.append(np.nan)
            else:
                row.append(point[xv] if xv is not None else g.lo)
        arr = np.array(row, dtype=object if spec.is_string else None)
        if spec.is_string:
            arr = arr.astype(str)
        elif spec.dtype.startswith("int"):
            arr = np.round(arr.astype(np.float64)).astype(spec.dtype)
        else:
            want = (dtypes or {}).get(spec.name, spec.dtype)
            arr = arr.astype(want if want.startswith("float") else spec.dtype)
        shape = (1,) + tuple(d if d is not None else width for d in spec.shape[1:]) if len(spec.shape) > 1 else (1,)
        feeds[spec.name] = arr.reshape(shape)
    return feeds


# -- certificates ----------------------------------------------------------------------------------------------------
def certify_programs(pa: Program, pb: Program, original: Any, converted: Any, domain: Domain, ctx: Context,
                     method: str, t0: float) -> dict[str, Certificate]:
    """Certificates for every output both programs read (see the module docstring)."""
    space = pa.space
    align(pa, pb)
    dh, dzs = propagate(pa, pb)
    arith = _arithmetic(pa, pb)
    certs: dict[str, Certificate] = {}
    cand = None
    agree = _coefficient_agreement(pa, pb)
    for name in ctx.outputs:
        oa, ob = pa.outputs.get(name), pb.outputs.get(name)
        if oa is None or ob is None:
            certs[name] = not_certifiable(name, f"the {method} reading has no output {name} on both sides")
            continue
        try:
            if isinstance(oa, Label) != isinstance(ob, Label):
                raise NotSymbolic("one model's label is not a label in the other")
            sa, sb = (oa.scores, ob.scores) if isinstance(oa, Label) else (oa, ob)
            d = diff(space, sa, sb, dh)
        except NotSymbolic as exc:
            certs[name] = not_certifiable(name, str(exc))
            continue
        if cand is None:
            cand = _candidates(pa, pb, space)
        if isinstance(oa, Label):
            cert = _label_cert(name, oa, ob, d, pa, pb, original, converted, ctx, cand)
        else:
            cert = _value_cert(name, oa, ob, d, pa, pb, original, converted, ctx, cand,
                               relative_bound(pa, pb, oa, ob, dzs))
        cert.method, cert.arithmetic = method, arith
        cert.domain = domain.to_dict()
        cert.details.setdefault("stages", [s.act for s in pa.stages])
        cert.details["exact_over_domain"] = bool(d.exact and not pa.stages)
        if agree is not None:
            cert.details["coefficients_agree_to"] = agree  # relative, over every stage and output
            if agree <= SAME_COEFFICIENTS:
                cert.details["same_function"] = ("the same composition with the same coefficients up to float32 "
                                                 "rounding (identical=False: the float arithmetic differs)")
        cert.seconds = time.perf_counter() - t0
        certs[name] = cert
    return certs


SAME_COEFFICIENTS = 2.0 ** -20  # a few float32 roundings of each composed coefficient


def _coefficient_agreement(pa: Program, pb: Program) -> float | None:
    """The largest coefficient difference of the two readings (stage inputs and outputs), relative to the
    largest coefficient of each polynomial; None when their shapes differ."""
    space = pa.space
    pairs = [(a.pre, b.pre) for a, b in zip(pa.stages, pb.stages)]
    for name, oa in pa.outputs.items():
        ob = pb.outputs.get(name)
        if ob is not None and isinstance(oa, Label) == isinstance(ob, Label):
            pairs.append((oa.scores, ob.scores) if isinstance(oa, Label) else (oa, ob))
    worst = 0.0
    for a, b in pairs:
        A, B = space.pad(a.C), space.pad(b.C)
        if A.shape != B.shape:
            return None
        scale = np.maximum(np.abs(A).max(axis=-1, keepdims=True), 1e-300)
        worst = max(worst, float(np.max(np.abs(A - B) / scale, initial=0.0)))
    return worst


def _arithmetic(pa: Program, pb: Program) -> str:
    parts = []
    for p, who in ((pa, "original"), (pb, "converted")):
        dts = " and ".join(sorted(p.arith)) or "float64"
        parts.append(f"{who}: {dts}")
    return ("; ".join(parts) + ". Rounding bounded per operation: dot products of n terms by "
            "gamma_n = n u / (1 - n u) times sum |w||x| (u = 2^-24 for float32, 2^-53 for float64), additions "
            f"and scalings by u |result|, exp/tanh/logistic/softmax assumed within {FUNC_ULPS} ulp; inputs read in "
            "the model's dtype")


def _candidates(pa: Program, pb: Program, space: Space) -> np.ndarray:
    pts = [sample_points(space, 512)]
    for p, q in ((pa, pb), (pb, pa)):
        first = [st.pre for st in p.stages[:1]] + [o if not isinstance(o, Label) else o.scores
                                                    for o in p.outputs.values()]
        other = [st.pre for st in q.stages[:1]] + [o if not isinstance(o, Label) else o.scores
                                                    for o in q.outputs.values()]
        for a, b in zip(first, other):
            if a.stage or b.stage or space.pad(a.C).shape != space.pad(b.C).shape:
                continue
            D = space.pad(a.C) - space.pad(b.C)
            pts.append(space.maximize(D, want_arg=True)[1])
            pts.append(space.maximize(-D, want_arg=True)[1])
    n = max(p.shape[1] for p in pts)
    return np.concatenate([np.pad(p, ((0, 0), (0, n - p.shape[1]))) for p in pts])


def _verify(name: str, point: np.ndarray, original: Any, converted: Any, ctx: Context, space: Space,
            label: bool) -> dict[str, Any]:
    """Run both models at the point (the counterexample of a refuted certificate)."""
    inputs = to_inputs(space, point, original.signature.inputs, ctx.inputs)
    ce: dict[str, Any] = {"inputs": {k: v.tolist() for k, v in inputs.items()}, "verified": False}
    run_a = ctx.run_original or original.run
    run_b = ctx.run_converted or converted.run
    try:
        all_a = run_a(inputs)
        a = np.asarray(all_a[name])
        b = np.asarray(run_b(to_inputs(space, point, converted.signature.inputs, ctx.inputs))[name])
    except Exception as exc:  # a model refusing the point: the counterexample stays unverified
        ce["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ce
    ce["original"], ce["converted"] = a.tolist(), b.tolist()
    if label:
        ce["verified"] = bool(np.any(labels_differ(a, b))) and not _near_tie(all_a, ctx)
    else:
        gap = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(-1)
        ce["difference"] = float(np.max(gap))
        # elementwise, as the check compares: each value's tolerance grows with that value
        # (the atol scale of a check of this row: its own magnitude, or the domain's scale when smaller)
        ce["verified"] = bool(np.any(gap > ctx.allowed_at(name, a.reshape(-1))))
    return ce


def _excess(name: str, ctx: Context, lo: np.ndarray, hi: np.ndarray, total: np.ndarray,
            rel: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> tuple[float, float, float]:
    """(bound, tolerance, excess): the largest |A - B| the analysis allows, the tolerance where that bound is
    attained, and the largest excess of the difference bound over the tolerance (<= 0: certified). The tolerance
    `atol * scale + rtol * |original|` grows with the value, so both are compared over the output's range."""
    bound, tol, excess = 0.0, 0.0, -np.inf
    # atol's scale: no lower than any batch of rows of the domain gives it (the smallest |value| proved)
    floor = magnitude_floor(lo[:len(total)], hi[:len(total)])
    a_s = ctx.allowed(name, 0.0, floor)
    rt = ctx.rtol.get(name, 0.0)
    for i in range(len(total)):
        lo_i, hi_i = float(lo[i]), float(hi[i])
        m0 = 0.0 if lo_i <= 0 <= hi_i else min(abs(lo_i), abs(hi_i))
        ex = total[i] - (a_s + rt * m0)  # the absolute bound against the smallest tolerance
        bi, ti = float(total[i]), a_s + rt * m0
        if rel is not None:
            c, r, a = float(rel[0][i]), float(rel[1][i]), float(rel[2][i])
            p0, p1 = max(lo_i, 0.0), min(hi_i, 1.0)
            # c p (1 - p) + r p + a - a_s - rt p: concave in p, largest at p* (clipped to the range)
            p = float(np.clip((c + r - rt) / (2 * c), p0, p1)) if c > 0 else (p1 if r > rt else p0)
            ex = min(ex, c * p * (1 - p) + r * p + a - a_s - rt * p)
            q = float(np.clip(0.5 + r / (2 * c), p0, p1)) if c > 0 else p1
            f = c * q * (1 - q) + r * q + a
            if f < bi:
                bi, ti = f, a_s + rt * q
        if bi > bound:
            bound, tol = bi, ti
        excess = max(excess, ex)
    return bound, float(tol), float(excess)


def _near_tie(outs: dict[str, np.ndarray], ctx: Context) -> bool:
    """The original decided its label by a near-tie, as the sampled check excuses it: its top two probabilities
    (else scores) within twice the tolerance (one column: the score within the tolerance of 0)."""
    kinds = ctx.outputs
    src = next((n for n, k in kinds.items() if k == "probability" and n in outs), None) or \
        next((n for n, k in kinds.items() if k == "score" and n in outs), None)
    if src is None:
        return False
    v = np.asarray(outs[src], dtype=np.float64).reshape(-1)
    a0 = ctx.atol.get(src, 0.0) * ctx.row_scale(src, v)
    if v.size == 1:
        return bool(abs(v[0]) <= a0 + ctx.rtol.get(src, 0.0) * abs(v[0]))
    top2 = np.sort(v)[-2:]
    return bool(top2[1] - top2[0] <= 2 * (a0 + ctx.rtol.get(src, 0.0) * abs(top2[1])))


def _value_cert(name: str, oa: Sym, ob: Sym, d: Bound, pa: Program, pb: Program, original: Any, converted: Any,
                ctx: Context, cand: np.ndarray,
                rel: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Certificate:
    space = pa.space
    lo, hi = space.range(oa.C, pa.side)
    lo, hi = lo - oa.E, hi + oa.E
    bound, allowed, excess = _excess(name, ctx, lo, hi, d.total, rel)
    details: dict[str, Any] = {"coefficient_difference_bound": float(max(np.max(np.abs(d.lo), initial=0),
                                                                           np.max(np.abs(d.hi), initial=0))),
                               "rounding_bound": float(np.max(oa.E + ob.E, initial=0.0)),
                               "atol_scale": ctx.atol_scale(name, magnitude_floor(lo, hi))}
    if rel is not None:
        details["bound_form"] = "c p (1 - p) + r p + a with c <= %.3g, r <= %.3g, a <= %.3g (p: the original's " \
            "value)" % (float(np.max(rel[0])), float(np.max(rel[1])), float(np.max(rel[2])))
    if excess <= 0:
        return Certificate(output=name, status=CERTIFIED, bound=bound, tolerance=allowed, details=details)
    ce = {}
    for pts in (cand, sample_points(space, 4096, seed=1)):  # more random points when the first do not show it
        ya, yb = run(pa, pts)[name], run(pb, pts)[name]
        ya = np.asarray(ya, float).reshape(len(pts), -1)
        gap = np.abs(ya - np.asarray(yb, float).reshape(len(pts), -1))
        # the points where the predicted difference is largest against the tolerance there (it grows with |value|)
        a0 = ctx.allowed(name, 0.0, magnitude_floor(lo, hi))
        ratio = np.max(gap / np.maximum(a0 + ctx.rtol.get(name, 0.0) * np.abs(ya), 1e-300), axis=1)
        order = np.argsort(-ratio)[:8]
        details["predicted_difference"] = float(np.max(gap[order[0]]))
        for best in order:
            ce = _verify(name, pts[best], original, converted, ctx, space, label=False)
            if ce["verified"]:
                return Certificate(output=name, status=REFUTED, bound=bound, tolerance=allowed, counterexample=ce,
                                   details=details)
            if ratio[best] <= 1.0:
                break
    return Certificate(output=name, status=NOT_CERTIFIABLE, bound=bound, tolerance=allowed, details=details,
                       counterexample=ce, reason=f"the proved bound {bound:.3g} exceeds the tolerance {allowed:.3g} "
                       "and no input was found where the difference does (the bound may be loose)")


def _label_links(prog: Program, label: Label) -> set[str]:
    """The numeric outputs whose certificate implies the label's: the label is the argmax of that output itself,
    of the scores a logistic/softmax stage turns into it (both monotone), or of [0, s] for a one-column score."""
    space = prog.space
    L = space.pad(label.scores.C)
    links = set()
    for name, o in prog.outputs.items():
        if isinstance(o, Label):
            continue
        O = space.pad(o.C)
        if O.shape == L.shape and np.array_equal(O, L):
            links.add(name)
        elif O.shape[0] == 1 and L.shape[0] == 2 and np.array_equal(L[1], O[0]) and \
                (not np.any(L[0]) or np.array_equal(L[0], -O[0])):  # [0, s] or [-s, s]: class 1 iff s > 0
            links.add(name)
        elif prog.stages and prog._is_stage_output(o, ("sigmoid", "softmax")):
            pre = space.pad(prog.stages[-1].pre.C)
            if pre.shape == L.shape and np.array_equal(pre, L):
                links.add(name)
    return links


def _class_names(classes: Any) -> np.ndarray:
    """Class labels as strings, booleans as 0/1 (the sampled check compares boolean labels as integers)."""
    c = np.asarray(classes)
    return (c.astype(np.int64) if c.dtype.kind == "b" else c).astype(str)


def _rows_differ(la: Any, lb: Any, n: int) -> np.ndarray:
    """Per row of `n`, whether the labels differ (as the check compares them)."""
    if not n:
        return np.zeros(0, dtype=bool)
    return labels_differ(la, lb).reshape(n, -1).any(axis=1)


def label_search(pa: Program, pb: Program, name: str, cand: np.ndarray, pairs: int = 64, seed: int = 0
                 ) -> np.ndarray:
    """Points where the two models' labels differ by the exact reading: among the candidates, and on the original's
    decision boundaries (bisection between candidates of different labels, moving the numeric columns only),
    where a difference of the decision scores flips the label first."""
    la, lb = run(pa, cand)[name], run(pb, cand)[name]
    found = [cand[_rows_differ(la, lb, len(cand))]]
    space = pa.space
    move = np.zeros(cand.shape[1], dtype=bool)
    for g in space.groups:
        v = space.var_index.get(("x", g.column))
        if g.kind == "numeric" and not g.categories and v is not None and v < len(move):
            move[v] = True
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(cand), (2, pairs))
    P, Q = cand[i], cand[i].copy()
    Q[:, move] = cand[j][:, move]
    lp = run(pa, P)[name].astype(str)
    keep = lp != run(pa, Q)[name].astype(str)
    P, Q, lp = P[keep], Q[keep], lp[keep]
    if not len(P):
        return np.concatenate(found)
    ta, tb = _boundaries(pa, name, P, Q, lp), _boundaries(pb, name, P, Q, lp)
    ok = ~np.isnan(tb) & (ta != tb)
    # between the two boundaries the labels differ; nearest the converted model's boundary the original's
    # margin is largest (not a near-tie)
    for f in (1e-6, 1e-3, 0.1, 0.5):
        t = (tb - (tb - ta) * f)[ok]
        pts = P[ok] + t[:, None] * (Q[ok] - P[ok])
        found.append(pts[_rows_differ(run(pa, pts)[name], run(pb, pts)[name], len(pts))])
    return np.concatenate(found)


def _boundaries(prog: Program, name: str, P: np.ndarray, Q: np.ndarray, lp: np.ndarray) -> np.ndarray:
    """Per segment P -> Q, where (by bisection) prog's label first stops being lp (NaN: never on the segment)."""
    t0, t1 = np.zeros(len(P)), np.ones(len(P))
    never = run(prog, Q)[name].astype(str) == lp
    for _ in range(48):
        t = (t0 + t1) / 2
        same = run(prog, P + t[:, None] * (Q - P))[name].astype(str) == lp
        t0, t1 = np.where(same, t, t0), np.where(same, t1, t)
    return np.where(never, np.nan, t1)


def _label_cert(name: str, oa: Label, ob: Label, d: Bound, pa: Program, pb: Program, original: Any,
                converted: Any, ctx: Context, cand: np.ndarray) -> Certificate:
    ca = None if oa.classes is None else _class_names(oa.classes)
    cb = None if ob.classes is None else _class_names(ob.classes)
    k = len(d.total)
    ca = np.arange(k).astype(str) if ca is None else ca
    cb = np.arange(k).astype(str) if cb is None else cb
    t = np.sort(d.total)[::-1]
    margin = float(t[0] + t[1]) if k > 1 else float(t[0]) * 2
    dmax = float(np.max(d.total))
    allowed = ctx.allowed(name, 0.0)
    details: dict[str, Any] = {"decision_bound": dmax, "exact_where_margin_exceeds": margin,
                               "meaning": "the two models' labels are proved equal on every input whose decision "
                                          "margin (top score minus the runner-up) exceeds the bound"}
    links = _label_links(pa, oa) & _label_links(pb, ob)
    same_classes = len(ca) == len(cb) and bool(np.all(ca == cb))
    if same_classes and dmax <= allowed:
        return Certificate(output=name, status=CERTIFIED, bound=0.0, tolerance=allowed,
                           details={**details, "near_ties_only": True})
    if same_classes and links:
        details["implied_by"] = sorted(links)  # certified when that output is (see certify_by_splitting)
    flips = label_search(pa, pb, name, cand)
    if len(flips) or not same_classes:
        pt = flips[0] if len(flips) else cand[0]
        ce = _verify(name, pt, original, converted, ctx, pa.space, label=True)
        if ce["verified"]:
            return Certificate(output=name, status=REFUTED, bound=margin, tolerance=allowed, counterexample=ce,
                               details=details, reason="the labels differ at a verified input")
    if not same_classes:
        return Certificate(output=name, status=NOT_CERTIFIABLE, bound=margin, details=details,
                           reason=f"the class lists differ: {list(ca)} and {list(cb)}")
    return Certificate(output=name, status=NOT_CERTIFIABLE, bound=margin, tolerance=allowed, details=details,
                       reason=f"the decision scores may differ by {dmax:.3g}, more than the tie tolerance "
                       f"{allowed:.3g}, and no input was found where the labels differ")
