"""Certification of tree ensembles: a proved bound on the difference of two models made of trees alone.

Both models describe themselves as a `portable.hints.TreeEnsemble` (through `Model.input_hints()`): trees whose
leaves add values to K raw scores, a base, and per output the function of the raw scores it is (identity,
logistic, softmax, a label taken by argmax or by a threshold). The proof has three steps:

1. Routing. Every split is put in the input's own terms: "x <= m goes to this child", where `m` is the largest
   value *of the input dtype* that the implementation sends to the low side (a float32 artifact's threshold is
   right iff every float32 input routes as the original's float64 comparison of that input does; a model that
   casts to float32 before comparing routes by the rounded value, which moves `m` to the rounding midpoint).
   A split behind a scaler, whose arithmetic is not known exactly, gets an interval `[m_lo, m_hi]` where the
   input may go either way. Each tree's leaves become boxes of the domain (empty ones dropped).
2. Leaves. The trees are matched in order; for each pair the reachable pairs of leaves are those whose boxes
   intersect (node by node, when the two trees have the same structure and equivalent thresholds: the leaf with
   itself). The tree's contribution to the difference is the largest difference of the paired leaf values.
3. Aggregation. Raw score differences add over the trees, with the bases and a rounding bound for the sum in
   each side's arithmetic (`n * u / (1 - n * u)` of the largest partial sum, or, when smaller, u per addition
   times the largest sum it can hold: `_sum_rounding`; u = 2^-24 for float32);
   a post transform propagates it by its Lipschitz constant (1/4 for the logistic function, 1/2 for softmax in
   the max norm) plus its own rounding. A label is exact wherever the decision margin exceeds twice the bound.

A refutation names the pair of leaves (a box) where the difference is attained and a point of the input dtype
inside it; `portable.certify` verifies it by running both models.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..hints import GT, GTE, LEQ, LT, MEMBER, RAW, AllBut, TreeEnsemble, TreeNodes
from .core import CERTIFIED, REFUTED, Certificate, Context, Domain, certification_method, not_certifiable

MAX_PAIRS = 4_000_000      # leaf pairs examined per pair of trees before refusing
MAX_NODES = 2_000_000      # nodes per model
U = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}
LIPSCHITZ = {"identity": 1.0, "logistic": 0.25, "softmax": 0.5}
POST_ULPS = 16             # rounding of exp/logistic/softmax in the runtime, in units of the dtype's u


class Refusal(Exception):
    """The tree method cannot speak about this pair of models (the reason says why)."""


# ---- the input dtype's value grid --------------------------------------------------------------------------

def _floor(t: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest value of `dtype` <= t (t float64)."""
    f = t.astype(dtype).astype(np.float64)
    over = f > t
    if over.any():
        f[over] = np.nextafter(f[over].astype(dtype), dtype.type(-np.inf)).astype(np.float64)
    return f


def _below(t: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest value of `dtype` < t."""
    f = _floor(t, dtype)
    eq = f == t
    if eq.any():
        f[eq] = np.nextafter(f[eq].astype(dtype), dtype.type(-np.inf)).astype(np.float64)
    return f


def _next(m: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.nextafter(m.astype(dtype), dtype.type(np.inf)).astype(np.float64)


def _rounds_to_at_most(F: np.ndarray) -> np.ndarray:
    """For float32 values F: the largest float64 x with float32(x) <= F (round to nearest, ties to even)."""
    up = np.nextafter(F.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mid = np.where(np.isfinite(up), F + (up - F) / 2, np.finfo(np.float64).max)
        down = mid.astype(np.float32).astype(np.float64) <= F
    return np.where(down, mid, np.nextafter(mid, -np.inf))


# ---- splits in the input's terms ---------------------------------------------------------------------------

@dataclass
class Splits:
    """One model's split nodes as "x[col] <= m goes to `low`" (the others to `high`; NaN to `nan_child`);
    `m_lo < m_hi` where the arithmetic leaves a rounding interval in which the input may go either way."""

    col: np.ndarray
    m_lo: np.ndarray
    m_hi: np.ndarray
    low: np.ndarray
    high: np.ndarray
    nan_child: np.ndarray
    cat_col: np.ndarray | None = None  # per node: the categorical domain column a membership split tests, or -1
    cat_mask: dict[int, np.ndarray] | None = None  # node -> per category of that column: sent low (left)


def _ordered(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floats of `dtype` as integers in the same order (for bisection over the representable values)."""
    bits = np.asarray(x, dtype).view(np.int64 if dtype == np.float64 else np.int32).astype(np.int64)
    mask = np.int64(0x7FFFFFFFFFFFFFFF) if dtype == np.float64 else np.int64(0x7FFFFFFF)
    return np.where(bits < 0, -(bits & mask), bits)


def _unordered(k: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float64:
        bits = np.where(k < 0, (-k) | np.int64(-(2 ** 63)), k).astype(np.int64)
        return bits.view(np.float64)
    bits = np.where(k < 0, (-k) | (2 ** 31), k).astype(np.int64).astype(np.uint32)
    return bits.view(np.float32).astype(np.float64)


def _apply(recipe: tuple[tuple[str, float, str], ...], x: np.ndarray, narrow: bool,
           fed: np.dtype = np.dtype(np.float64)) -> np.ndarray:
    """The compared value of raw `x` (float64 array) after `recipe`, bit for bit (overflow to inf, as the
    implementations do)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _apply_raw(recipe, x, narrow, np.dtype(fed))


def _apply_raw(recipe: tuple[tuple[str, float, str], ...], x: np.ndarray, narrow: bool,
               fed: np.dtype) -> np.ndarray:
    v = x.astype(np.float64)
    for op, c, dt in recipe:
        if op == "cast32" or (op == "castin" and fed == np.float32):  # castin: back to the dtype fed
            v = v.astype(np.float32).astype(np.float64)
            continue
        if op == "castin":
            continue
        t = np.float32 if dt == "float32" else np.float64
        a, b = v.astype(t), t(c)
        v = {"sub": a - b, "add": a + b, "mul": a * b, "div": a / b}[op].astype(np.float64)
    return v.astype(np.float32).astype(np.float64) if narrow else v


def _exact_through(trees: TreeNodes, nodes: np.ndarray, closed: np.ndarray, dt: np.dtype, m_lo: np.ndarray,
                   m_hi: np.ndarray) -> np.ndarray:
    """For splits whose value is a known increasing computation of the raw input (`trees.recipes`): the
    largest input of dtype `dt` sent to the low side, found by bisection over the representable values, and
    written to `m_lo`/`m_hi` (equal: no uncertainty). Returns which of `nodes` were done."""
    done = np.zeros(len(nodes), bool)
    narrow = trees.dtype == "float32"
    big = float(np.finfo(dt).max)
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}  # splits with the same operations, bisected together
    for j, i in enumerate(nodes):
        recipe = trees.recipes.get(int(i))
        if not recipe or any(op in ("mul", "div") and not c > 0 for op, c, _ in recipe):
            continue  # unknown or decreasing: left to the rounding interval
        groups.setdefault(tuple((op, d) for op, _, d in recipe), []).append(j)
    for sig, js in groups.items():
        sel = np.asarray(js, np.int64)
        idx = nodes[sel]
        recipe = tuple((op, np.array([trees.recipes[int(i)][k][1] for i in idx], np.float64), d)
                       for k, (op, d) in enumerate(sig))
        t, cl = trees.threshold[idx], closed[idx]

        def low(x: np.ndarray) -> np.ndarray:
            v = _apply(recipe, x, narrow, dt)  # type: ignore[arg-type]
            return np.where(cl, v <= t, v < t)
        n = len(idx)
        at_lo, at_hi = low(np.full(n, -big)), low(np.full(n, big))
        m = np.where(at_lo, big, float(np.nextafter(np.asarray(-big, dt), dt.type(-np.inf))))
        todo = at_lo & ~at_hi
        if todo.any():
            # low(a) holds and low(b) does not; split at 0 first so that b - a fits in int64
            zero = low(np.zeros(n))
            a = np.where(zero, 0, _ordered(np.full(n, -big), dt)).astype(np.int64)
            b = np.where(zero, _ordered(np.full(n, big), dt), 0).astype(np.int64)
            while True:
                act = todo & (b - a > 1)
                if not act.any():
                    break
                mid = a + (b - a) // 2
                lm = low(_unordered(np.where(act, mid, a), dt))
                a = np.where(act & lm, mid, a)
                b = np.where(act & ~lm, mid, b)
            m = np.where(todo, _unordered(a, dt), m)
        m_lo[idx] = m_hi[idx] = m
        done[sel] = True
    return done


def splits_of(trees: TreeNodes, index: dict[Any, int], dtypes: list[np.dtype],
              cat_index: dict[Any, int] | None = None, cats: list[list[str]] | None = None) -> Splits:
    """The canonical splits of `trees` over the domain columns `index` (column -> position) whose inputs are fed
    in `dtypes` (per position), and membership splits over the categorical columns `cat_index` (with their
    categories `cats`). Raises Refusal for splits the method cannot express."""
    cat_index, cats = cat_index or {}, cats or []
    n = len(trees)
    split = trees.left >= 0
    col = np.full(n, -1, np.int64)
    cat_col = np.full(n, -1, np.int64)
    cat_mask: dict[int, np.ndarray] = {}
    m_lo, m_hi = np.full(n, np.nan), np.full(n, np.nan)
    low, high = trees.left.copy(), trees.right.copy()
    nan_child = np.where(trees.missing == 1, trees.left, trees.right)
    modes = trees.mode
    for i in np.flatnonzero(split):
        f = int(trees.feature[i])
        if f < 0:
            raise Refusal(f"a split ({trees.source}, node {i}) tests a derived value (an encoded category or a "
                          "transformed column), not a raw input column")
        c = trees.columns[f]
        if modes[i] == MEMBER and c in cat_index:
            k = cat_index[c]
            cat_col[i] = k
            given = (trees.members or {}).get(int(i), [])
            sent = {str(v) for v in given}
            # AllBut: every category but those named goes left (the ones the encoder does not know among them)
            cat_mask[int(i)] = np.array([(v not in sent) if isinstance(given, AllBut) else (v in sent)
                                         for v in cats[k]], dtype=bool)
            continue
        if c not in index:
            raise Refusal(f"a split reads column {c}, which is not a numeric column of the domain")
        col[i] = index[c]
    bad = split & (cat_col < 0) & ~np.isin(modes, [LEQ, LT, GTE, GT])
    if bad.any():
        raise Refusal(f"{int(bad.sum())} splits of {trees.source} test equality or set membership of numbers")
    split = split & (cat_col < 0)
    closed = np.isin(modes, [LEQ, GT])  # the low side is v <= t (else v < t)
    flip = np.isin(modes, [GTE, GT])    # the low side is the false branch: the right child
    low = np.where(flip, trees.right, trees.left)
    high = np.where(flip, trees.left, trees.right)
    t = trees.threshold
    # RAW: an encoder's exact comparison of the raw value (bin edges), in the input's own dtype
    raw = np.zeros(n, bool)
    for i, r in (trees.recipes or {}).items():
        if r == RAW:
            raw[i] = True
    plain = split & (trees.scale == 1.0) & (trees.offset == 0.0) & (trees.exact | raw)
    for i in (trees.recipes or {}):  # a known computation (a rounding to float32 on the way): followed exactly
        if (trees.recipes or {}).get(i) and not raw[i]:
            plain[i] = False
    idx = np.flatnonzero(split)
    dts = {np.dtype(d) for d in dtypes}
    for dt in dts:
        here = np.array([dtypes[col[i]] == dt for i in idx], dtype=bool) if len(idx) else np.zeros(0, bool)
        sel = idx[here]
        if not len(sel):
            continue
        ex = sel[plain[sel]]
        narrow = trees.dtype == "float32" and dt == np.float64
        if len(ex):
            m = np.where(closed[ex], _floor(t[ex], dt), _below(t[ex], dt))
            if narrow:  # the value compared is float32(x): x goes low iff it rounds to at most the float32 bound
                with np.errstate(over="ignore"):
                    F = np.where(closed[ex], _floor(t[ex], np.dtype(np.float32)),
                                 _below(t[ex], np.dtype(np.float32)))
                m = np.where(raw[ex], m, _rounds_to_at_most(F))
            m_lo[ex] = m_hi[ex] = m
        un = sel[~plain[sel]]
        if len(un) and trees.recipes:  # splits behind scalers whose arithmetic is known exactly
            done = _exact_through(trees, un, closed, dt, m_lo, m_hi)
            un = un[~done]
        if len(un):
            scale, offset = trees.scale[un], trees.offset[un]
            if np.any(scale == 0) or not np.all(np.isfinite(scale)):
                raise Refusal(f"a split of {trees.source} reads its column with scale 0")
            u = U["float32"] if (trees.dtype == "float32" or dt == np.float32) else U["float64"]
            with np.errstate(over="ignore"):
                mid = (t[un] - offset) / scale
                slack = 16 * u * (np.abs(t[un]) + np.abs(offset)) / np.abs(scale) + 16 * u * np.abs(mid) + \
                    float(np.finfo(dt).tiny)
            m_lo[un] = _floor(mid - slack, dt)
            m_hi[un] = _floor(mid + slack, dt)
            neg = scale < 0  # x >= ... goes to the side v <= t: the children swap
            lo_c, hi_c = low[un].copy(), high[un].copy()
            low[un] = np.where(neg, hi_c, lo_c)
            high[un] = np.where(neg, lo_c, hi_c)
    eps = trees.zero_eps
    z = split & (eps > 0) & (np.abs(trees.raw_threshold()) <= eps)
    if z.any():  # LightGBM reads |x| <= 1e-35 as 0: a threshold that close to 0 is uncertain there
        m_lo[z] = np.minimum(m_lo[z], -eps[z])
        m_hi[z] = np.maximum(m_hi[z], eps[z])
    return Splits(col, m_lo, m_hi, low, high, nan_child, cat_col, cat_mask)


# ---- leaf boxes ----------------------------------------------------------------------------------------------

@dataclass
class Boxes:
    """The leaves of one tree reachable in the domain, with their boxes (`lo <= x <= hi`, or NaN where `nan`)."""

    leaf: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    nan: np.ndarray
    cats: np.ndarray  # [leaves, categorical columns, categories]: the categories the box admits


def tree_nodes(trees: TreeNodes, root: int) -> list[int]:
    out, stack = [], [int(root)]
    while stack:
        i = stack.pop()
        out.append(i)
        if trees.left[i] >= 0:
            stack += [int(trees.right[i]), int(trees.left[i])]
    return out


def leaf_boxes(sp: Splits, root: int, left: np.ndarray, lo: np.ndarray, hi: np.ndarray, nan: np.ndarray,
               dtypes: list[np.dtype], integer: np.ndarray, cats: np.ndarray) -> Boxes:
    leaves, los, his, nans, catss = [], [], [], [], []
    stack = [(int(root), lo, hi, nan, cats)]
    while stack:
        i, blo, bhi, bnan, bcat = stack.pop()
        if left[i] < 0:
            leaves.append(i)
            los.append(blo)
            his.append(bhi)
            nans.append(bnan)
            catss.append(bcat)
            continue
        k = sp.cat_col[i] if sp.cat_col is not None else -1
        if k >= 0:  # membership: the categories sent left, and the others
            mask = np.zeros(bcat.shape[1], bool)
            mask[:len(sp.cat_mask[int(i)])] = sp.cat_mask[int(i)]
            for child, keep in ((sp.low[i], mask), (sp.high[i], ~mask)):
                ccat = bcat.copy()
                ccat[k] &= keep
                if ccat[k].any():
                    stack.append((int(child), blo, bhi, bnan, ccat))
            continue
        c = sp.col[i]
        # low side: x <= m_hi (surely up to m_lo, possibly up to m_hi); high side: x >= next(m_lo)
        for child, is_low in ((sp.low[i], True), (sp.high[i], False)):
            clo, chi, cnan = blo.copy(), bhi.copy(), bnan.copy()
            if is_low:
                chi[c] = min(chi[c], sp.m_hi[i])
            else:
                clo[c] = max(clo[c], float(_next(np.array([sp.m_lo[i]]), dtypes[c])[0]))
            cnan[c] = bnan[c] and child == sp.nan_child[i]
            if _nonempty(clo[c], chi[c], integer[c]) or cnan[c]:
                stack.append((int(child), clo, chi, cnan, bcat))
    n = len(leaves)
    return Boxes(np.asarray(leaves, np.int64), np.asarray(los).reshape(n, -1), np.asarray(his).reshape(n, -1),
                 np.asarray(nans, bool).reshape(n, -1), np.asarray(catss, bool).reshape((n,) + cats.shape))


def _nonempty(lo: float, hi: float, integer: bool) -> bool:
    if integer:
        return np.ceil(lo) <= np.floor(hi)
    return lo <= hi


def leaf_pairs(a: Boxes, b: Boxes, integer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) indices into `a.leaf`, `b.leaf` of the leaves whose boxes intersect."""
    if len(a.leaf) * len(b.leaf) > MAX_PAIRS:
        raise Refusal(f"{len(a.leaf)} x {len(b.leaf)} leaf pairs in one pair of trees exceed the limit "
                      f"({MAX_PAIRS})")
    ia, ib = [], []
    step = max(1, 2_000_000 // max(1, len(b.leaf) * a.lo.shape[1]))
    for s in range(0, len(a.leaf), step):
        lo = np.maximum(a.lo[s:s + step, None, :], b.lo[None, :, :])
        hi = np.minimum(a.hi[s:s + step, None, :], b.hi[None, :, :])
        if integer.any():
            lo = np.where(integer, np.ceil(lo), lo)
            hi = np.where(integer, np.floor(hi), hi)
        ok = ((lo <= hi) | (a.nan[s:s + step, None, :] & b.nan[None, :, :])).all(axis=2)
        if a.cats.shape[1]:
            ok &= (a.cats[s:s + step, None] & b.cats[None]).any(axis=3).all(axis=2)
        i, j = np.nonzero(ok)
        ia.append(i + s)
        ib.append(j)
    return np.concatenate(ia), np.concatenate(ib)


def representative(lo: np.ndarray, hi: np.ndarray, nan: np.ndarray, dtypes: list[np.dtype],
                   integer: np.ndarray, center: np.ndarray) -> np.ndarray:
    """A point of the box in the input dtype: the domain's center clipped into the box when it is inside the
    domain's column range, else the box's midpoint; NaN where the box admits only NaN."""
    x = np.empty(len(lo))
    for c in range(len(lo)):
        l, h = lo[c], hi[c]
        if integer[c]:
            l, h = np.ceil(l), np.floor(h)
        if not l <= h:
            x[c] = np.nan if nan[c] else l
            continue
        v = min(max(center[c], l), h)
        if not (l < center[c] < h):
            v = l / 2 + h / 2
        v = float(np.asarray(v).astype(dtypes[c]))
        if integer[c]:
            v = float(np.round(v))
        x[c] = min(max(v, l), h) if dtypes[c] == np.float64 else float(np.clip(np.float32(v), l, h))
    return x


# ---- the method ---------------------------------------------------------------------------------------------

@dataclass
class Side:
    ens: TreeEnsemble
    splits: Splits
    roots: np.ndarray
    dtype: str


def _side(ens: TreeEnsemble, index: dict[Any, int], dtypes: list[np.dtype], cat_index: dict[Any, int],
          cats: list[list[str]]) -> Side:
    if len(ens.trees) > MAX_NODES:
        raise Refusal(f"{len(ens.trees)} nodes exceed the limit ({MAX_NODES})")
    return Side(ens, splits_of(ens.trees, index, dtypes, cat_index, cats), np.asarray(ens.trees.roots, np.int64),
                ens.accumulate)


def _gamma(n: int, u: float) -> float:
    return n * u / (1 - n * u)


def _sum_rounding(T: int, terms: int, u: float, pos: np.ndarray, neg: np.ndarray, mags: list[np.ndarray],
                  as_stored: bool = False) -> np.ndarray:
    """A bound on the rounding of one side's scores (per score column): T trees' leaves and the base added in
    any order (a sequence or a tree of additions), then `terms` + 2 further operations on the sum.

    The smaller of gamma_n max(pos, neg) (n = T + terms + 2: every operation's result is at most the largest
    partial sum, max(pos, neg), times 1 + gamma_n) and the sum of each operation's own rounding, u times its
    result: the i-th largest of the T additions sums at most T + 2 - i terms, so its exact result is at most the
    sum of the T + 2 - i largest term magnitudes, and at most max(pos, neg) (a partial sum's positive terms add
    up to at most pos, its negative ones to at most neg); rounding so far adds gamma_n of that. The further
    operations' results are at most max(pos, neg) (1 + gamma_n) each. Relative (u |result|, not u times its
    binade): an implementation may sum the leaves scaled (a forest's unscaled values, divided at the end), and a
    relative bound does not change with the scale. `as_stored`: the side adds the values as the view holds them
    (`TreeEnsemble.summed_as_stored`, a linear model's coefficients): u times the binade of each result then."""
    from .symbolic import binade

    n = T + terms + 2
    g = _gamma(n, u)
    P = np.maximum(pos, neg)
    coarse = g * P
    if T < 1 or u >= 1 or not mags:
        return coarse
    M = np.sort(np.asarray(mags, np.float64), axis=0)[::-1]  # [T + 1, J], largest first
    tops = np.minimum(np.cumsum(M, axis=0)[1:], P)  # the sums of the 2 .. T + 1 largest
    grow = (1 + g) * (1 + 1e-9)
    size = binade if as_stored else (lambda v: v)
    local = size(tops * grow).sum(axis=0) + max(terms + 2, 0) * size(P * grow)
    tiny = 2.0 ** -149 if u >= 2.0 ** -25 else 2.0 ** -1074  # a subnormal result errs by half its spacing
    fine = (u * local + n * tiny) / (1 - n * u)
    return np.minimum(coarse, fine)


def _extent(*terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of the positive parts, sum of the negative parts) of constant terms."""
    pos = sum(np.maximum(np.asarray(v, np.float64), 0) for v in terms)
    neg = sum(np.maximum(-np.asarray(v, np.float64), 0) for v in terms)
    return np.asarray(pos, np.float64).copy(), np.asarray(neg, np.float64).copy()


@certification_method("trees", priority=10)
def certify_trees(original: Any, converted: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    """The tree method (see the module docstring). None when neither model is a tree ensemble."""
    ha, hb = ctx.hints_original, ctx.hints_converted
    ea, eb = getattr(ha, "ensemble", None), getattr(hb, "ensemble", None)
    if ea is None and eb is None:
        from .binned import views  # a KBinsDiscretizer's one-hot bins before a linear model: trees too

        try:
            got = views(original, converted)
        except Exception:  # noqa: BLE001 - a view that cannot be read is no view
            got = None
        if got is None:
            return None
        ea, eb = got
    if ea is None or eb is None:
        which, other = ("original", eb) if ea is None else ("converted", ea)
        reason = (f"the {which} model is not a tree ensemble portable can read in full (the other is: "
                  f"{other.source}); its outputs may depend on its inputs otherwise than through trees")
        if which == "converted" and ctx.make_feeds is not None:
            # nothing is proved, but points of the domain where both models are run may still show that they
            # part: refuted only when one reproduces a difference beyond the tolerance (`portable.certify`)
            from .members import _sample

            try:
                rows, cols = _sample(domain, 512)
                batch = ctx.make_feeds(rows, cols)
            except Exception:  # noqa: BLE001 - no candidates: the reason stands alone
                batch = None
            if batch:
                return {name: Certificate(name, REFUTED, reason=reason, candidates=[batch],
                                          details={"unreadable": True}) for name in ctx.outputs}
        return {name: not_certifiable(name, reason) for name in ctx.outputs}
    started = time.perf_counter()
    try:
        certs = TreeProof(ea, eb, domain, ctx).run()
    except Refusal as exc:
        return {name: not_certifiable(name, str(exc)) for name in ctx.outputs}
    for c in certs.values():
        c.seconds = time.perf_counter() - started
    return certs


class TreeProof:
    """One comparison of two tree ensembles over a domain (see the module docstring)."""

    def __init__(self, ea: TreeEnsemble, eb: TreeEnsemble, domain: Domain, ctx: Context) -> None:
        self.ctx, self.domain = ctx, domain
        cols = [c for c, d in domain.columns.items() if d.categories is None]
        self.cols = cols
        self.index = {c: k for k, c in enumerate(cols)}
        self.dtypes = [np.dtype(ctx.inputs.get(c[0], "float64")) if ctx.inputs.get(c[0], "float64") in
                       ("float32", "float64") else np.dtype(np.float64) for c in cols]
        dcol = [domain.columns[c] for c in cols]
        self.lo = np.array([d.lo for d in dcol], np.float64)
        self.hi = np.array([d.hi for d in dcol], np.float64)
        self.nan = np.array([d.nan for d in dcol], bool)
        self.integer = np.array([d.integer for d in dcol], bool)
        with np.errstate(over="ignore"):
            self.center = np.clip(np.where(np.isfinite(self.lo / 2 + self.hi / 2), self.lo / 2 + self.hi / 2, 0.0),
                                  self.lo, self.hi)
        self.catcols = [c for c, d in domain.columns.items() if d.categories is not None]
        self.cat_index = {c: k for k, c in enumerate(self.catcols)}
        self.cat_values = [[str(v) for v in domain.columns[c].categories] for c in self.catcols]
        width = max([len(v) for v in self.cat_values] + [1])
        self.cat_all = np.zeros((len(self.catcols), width), bool)
        for k, v in enumerate(self.cat_values):
            self.cat_all[k, :len(v)] = True
        self.a = _side(ea, self.index, self.dtypes, self.cat_index, self.cat_values)
        self.b = _side(eb, self.index, self.dtypes, self.cat_index, self.cat_values)
        if len(self.a.roots) != len(self.b.roots):
            raise Refusal(f"the original has {len(self.a.roots)} trees and the converted model "
                          f"{len(self.b.roots)}: trees are compared one to one")
        self.matched = self._match()
        self.uncertain = int(sum(np.sum(sd.splits.m_lo < sd.splits.m_hi) for sd in (self.a, self.b)))
        self.candidates: list[np.ndarray] = []
        self.identical_trees = 0

    # -- which tree of one side is which of the other ------------------------------------------------------------
    def _key(self, s: Side, t: int) -> tuple[tuple[int, ...], tuple[Any, ...]]:
        """(the targets a tree writes, its splits in a canonical order): the low child first, and a membership
        split as the set holding the column's first category (either side may store a category split the other
        way round, the children swapped)."""
        nodes = tree_nodes(s.ens.trees, s.roots[t])
        v = np.asarray(s.ens.trees.values)[nodes]
        targets = tuple(np.flatnonzero(np.any(v != 0, axis=0)).tolist())
        sp, left = s.splits, s.ens.trees.left
        shape: list[Any] = []
        stack = [int(s.roots[t])]
        while stack:
            i = stack.pop()
            if left[i] < 0:
                shape.append(None)
                continue
            lo_c, hi_c = int(sp.low[i]), int(sp.high[i])
            if sp.cat_col[i] >= 0:
                mask = sp.cat_mask[int(i)]
                if len(mask) and not mask[0]:
                    mask, lo_c, hi_c = ~mask, hi_c, lo_c
                shape.append(("cat", int(sp.cat_col[i]), tuple(mask.tolist())))
            else:
                shape.append((int(sp.col[i]), float(sp.m_lo[i]), float(sp.m_hi[i])))
            stack += [hi_c, lo_c]
        return targets, tuple(shape)

    def _point(self, lo: np.ndarray, hi: np.ndarray, nan: np.ndarray, cats: np.ndarray,
               center: np.ndarray | None = None) -> list[Any]:
        """A point of a box: its numeric columns in the input dtype, then a category it admits per categorical
        column."""
        with np.errstate(invalid="ignore"):
            x = representative(lo, hi, nan, self.dtypes, self.integer,
                               self.center if center is None else np.where(np.isfinite(center), center, self.center))
        chosen = [self.cat_values[k][int(np.argmax(cats[k]))] if cats[k].any() else self.cat_values[k][0]
                  for k in range(len(self.catcols))]
        return list(x) + chosen

    def _match(self) -> list[tuple[int, int]]:
        """Pairs (original tree, converted tree): equal targets and splits first (the converted model may
        store the trees in another order, e.g. by class), the rest by targets in order."""
        T = len(self.a.roots)
        ka = [self._key(self.a, t) for t in range(T)]
        kb = [self._key(self.b, t) for t in range(T)]
        pool: dict[Any, list[int]] = {}
        for t, k in enumerate(kb):
            pool.setdefault(k, []).append(t)
        pairs, rest_a = [], []
        # trees of the same splits may differ in their leaves: the one at the same place among the trees of its
        # targets first (a mutated tree's twin elsewhere in the ensemble is not its partner), then by splits
        ga: dict[Any, list[int]] = {}
        gb: dict[Any, list[int]] = {}
        for t in range(T):
            ga.setdefault(ka[t][0], []).append(t)
            gb.setdefault(kb[t][0], []).append(t)
        same = set()
        for targets, ts in ga.items():
            for t, u in zip(ts, gb.get(targets, [])):
                if ka[t] == kb[u]:
                    same.add(t)
                    pool[kb[u]].remove(u)
                    pairs.append((t, u))
        for t, k in enumerate(ka):
            if t in same:
                continue
            if pool.get(k):
                pairs.append((t, pool[k].pop(0)))
            else:
                rest_a.append(t)
        rest_b: dict[Any, list[int]] = {}
        for k, ts in pool.items():
            for t in ts:
                rest_b.setdefault(k[0], []).append(t)
        for ts in rest_b.values():
            ts.sort()
        unmatched = []
        for t in rest_a:
            got = rest_b.get(ka[t][0])
            if got:
                pairs.append((t, got.pop(0)))
            else:
                unmatched.append(t)
        # the rest in order (the two sides may number their scores differently: a binary classifier's one
        # score against two probabilities)
        left_b = sorted(t for ts in rest_b.values() for t in ts)
        pairs += list(zip(unmatched, left_b))
        return sorted(pairs)

    # -- per pair of trees: reachable leaf pairs --------------------------------------------------------------
    def _boxes(self, s: Side, t: int) -> Boxes:
        return leaf_boxes(s.splits, int(s.roots[t]), s.ens.trees.left, self.lo, self.hi, self.nan, self.dtypes,
                          self.integer, self.cat_all)

    def _same_structure(self, t: int, u: int) -> bool:
        na, nb = tree_nodes(self.a.ens.trees, self.a.roots[t]), tree_nodes(self.b.ens.trees, self.b.roots[u])
        if len(na) != len(nb):
            return False
        ia, ib = np.asarray(na), np.asarray(nb)
        sa, sb = self.a.splits, self.b.splits
        la, lb = self.a.ens.trees.left[ia] >= 0, self.b.ens.trees.left[ib] >= 0
        if not np.array_equal(la, lb):
            return False
        pos_a = {n: k for k, n in enumerate(na)}
        pos_b = {n: k for k, n in enumerate(nb)}

        def rel(side: Splits, nodes: np.ndarray, pos: dict[int, int], arr: np.ndarray) -> np.ndarray:
            return np.array([pos.get(int(x), -1) for x in arr[nodes]])
        s = la
        ca, cb = sa.cat_col[ia], sb.cat_col[ib]
        if not np.array_equal(ca, cb) or any(not np.array_equal(sa.cat_mask[int(x)], sb.cat_mask[int(y)])
                                             for x, y, c in zip(ia, ib, ca) if c >= 0):
            return False
        return (np.array_equal(sa.col[ia][s], sb.col[ib][s]) and np.array_equal(sa.m_lo[ia][s], sb.m_lo[ib][s])
                and np.array_equal(sa.m_hi[ia][s], sb.m_hi[ib][s])
                and np.array_equal(rel(sa, ia, pos_a, sa.low)[s], rel(sb, ib, pos_b, sb.low)[s])
                and np.array_equal(rel(sa, ia, pos_a, sa.nan_child)[s], rel(sb, ib, pos_b, sb.nan_child)[s])
                and np.array_equal(sa.m_lo[ia][s], sa.m_hi[ia][s]))

    def pairs(self, t: int, u: int) -> tuple[Boxes, Boxes, np.ndarray, np.ndarray]:
        ba, bb = self._boxes(self.a, t), self._boxes(self.b, u)
        if self._same_structure(t, u) and len(ba.leaf) == len(bb.leaf):
            self.identical_trees += 1  # node by node: every input reaches the same leaf on both sides
            k = np.arange(len(ba.leaf))
            return ba, bb, k, k
        ia, ib = leaf_pairs(ba, bb, self.integer)
        return ba, bb, ia, ib

    # -- the whole proof ---------------------------------------------------------------------------------------
    def run(self) -> dict[str, Certificate]:
        ea, eb = self.a.ens, self.b.ens
        jobs: dict[str, tuple[Any, Any]] = {}
        certs: dict[str, Certificate] = {}
        for name in self.ctx.outputs:
            oa, ob = ea.outputs.get(name), eb.outputs.get(name)
            if oa is None or ob is None:
                certs[name] = not_certifiable(name, f"output '{name}' is not read from the trees' scores by "
                                              f"{'the original' if oa is None else 'the converted model'}")
                continue
            jobs[name] = (oa, ob)
        cols_a, cols_b, owners = [], [], []
        for name, (oa, ob) in jobs.items():
            ka, kb = oa.score_columns(), ob.score_columns()
            if len(ka) != len(kb):
                certs[name] = not_certifiable(name, f"output '{name}' reads {len(ka)} scores in the original and "
                                              f"{len(kb)} in the converted model")
                continue
            cols_a += ka
            cols_b += kb
            owners += [name] * len(ka)
        J = len(cols_a)
        kA = np.array([c[0] for c in cols_a], np.int64)
        aA = np.array([c[1] for c in cols_a], np.float64)
        bA = np.array([c[2] for c in cols_a], np.float64)
        kB = np.array([c[0] for c in cols_b], np.int64)
        aB = np.array([c[1] for c in cols_b], np.float64)
        bB = np.array([c[2] for c in cols_b], np.float64)
        va, vb = _values(ea), _values(eb)
        T = len(self.a.roots)
        # per tree, e = (original's leaf term) - (converted's): its midpoint moves into the base difference and
        # its half-range bounds the tree's share (a constant offset between the sides cancels exactly)
        shift = (aA * ea.base[kA] + bA) - (aB * eb.base[kB] + bB) if J else np.zeros(0)
        spread = np.zeros(J)
        # every partial sum of the terms (base, constant, one leaf per tree), in whatever order a side adds them,
        # lies within [-neg, pos]: its rounding is at most u |partial| per addition
        pos_a, neg_a = _extent(aA * ea.base[kA], bA)
        pos_b, neg_b = _extent(aB * eb.base[kB], bB)
        # each term's largest magnitude, per score column (the base and constant first, then one per tree)
        mag_a, mag_b = [np.abs(aA * ea.base[kA] + bA)], [np.abs(aB * eb.base[kB] + bB)]
        # the range of the original's score columns (exact arithmetic), for the tolerance's relative part
        s_lo = aA * ea.base[kA] + bA if J else np.zeros(0)
        s_hi = s_lo.copy()
        worst: list[tuple[float, np.ndarray]] = []
        probes = 0
        self._ranges: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for t, u in self.matched:
            ba, bb, ia, ib = self.pairs(t, u)
            if not len(ia) or not J:
                continue
            e = va[ba.leaf[ia]][:, kA] * aA - vb[bb.leaf[ib]][:, kB] * aB
            emax, emin = e.max(axis=0), e.min(axis=0)
            shift += (emax + emin) / 2
            spread += (emax - emin) / 2
            ta, tb = va[ba.leaf][:, kA] * aA, vb[bb.leaf][:, kB] * aB
            pos_a += np.maximum(ta.max(axis=0), 0)
            neg_a += np.maximum(-ta.min(axis=0), 0)
            pos_b += np.maximum(tb.max(axis=0), 0)
            neg_b += np.maximum(-tb.min(axis=0), 0)
            mag_a.append(np.abs(ta).max(axis=0))
            mag_b.append(np.abs(tb).max(axis=0))
            s_lo += ta.min(axis=0)
            s_hi += ta.max(axis=0)
            self._ranges.append((ba.lo, ba.hi, ba.nan, ta))
            for j in range(J):
                if emax[j] == emin[j]:
                    continue
                for p in {int(e[:, j].argmax()), int(e[:, j].argmin())}:
                    lo = np.maximum(ba.lo[ia[p]], bb.lo[ib[p]])
                    hi = np.minimum(ba.hi[ia[p]], bb.hi[ib[p]])
                    nan = ba.nan[ia[p]] & bb.nan[ib[p]]
                    cats = ba.cats[ia[p]] & bb.cats[ib[p]]
                    worst.append((float(emax[j] - emin[j]), self._point(lo, hi, nan, cats), (lo, hi, nan, cats)))
            if probes < 96:  # points of the first trees' leaves: a label or base change shows on some of them
                for k in range(min(len(bb.leaf), 32, 96 - probes)):
                    self.candidates.append(self._point(bb.lo[k], bb.hi[k], bb.nan[k], bb.cats[k]))
                    probes += 1
        worst.sort(key=lambda w: -w[0])
        # and random points of the widest leaf pairs' boxes: where a post transform's slope is small (a logistic
        # or softmax far from 0.5) the representative point may hide a score difference the box does show
        rng = np.random.default_rng(0)
        with np.errstate(over="ignore", invalid="ignore"):
            # (bounds within +-1e307: numpy's uniform refuses a range wider than the largest double, which an
            # unbounded domain's box has, and one whose high is below its low: a box outside the domain)
            def spread_point(box: tuple[Any, ...]) -> Any:
                lo = np.clip(np.maximum(box[0], self.lo), -1e307, 1e307)
                return self._point(*box[:2], box[2], box[3],
                                   center=rng.uniform(lo, np.maximum(lo, np.clip(np.minimum(box[1], self.hi),
                                                                                 -1e307, 1e307))))

            spread_pts = [spread_point(box) for _, _, box in worst[:8] for _ in range(32)]
        self.candidates = [w[1] for w in worst[:48]] + spread_pts + self.candidates
        self.candidates.append(self._point(self.lo, self.hi, self.nan, self.cat_all))
        ua, ub = U[ea.accumulate], U[eb.accumulate]
        rounding = _sum_rounding(T, ea.terms, ua, pos_a, neg_a, mag_a, getattr(ea, "summed_as_stored", False)) + \
            _sum_rounding(T, eb.terms, ub, pos_b, neg_b, mag_b, getattr(eb, "summed_as_stored", False))
        self.s_range = (s_lo - rounding, s_hi + rounding)
        diff = np.abs(shift) + spread
        delta = diff + rounding
        for name, (oa, ob) in jobs.items():
            if name in certs:
                continue
            sel = np.array([o == name for o in owners], bool)
            certs[name] = self._output(name, oa, ob, delta[sel], diff[sel], rounding[sel], max(ua, ub),
                                       (self.s_range[0][sel], self.s_range[1][sel]))
            if certs[name].status == REFUTED and oa.kind == "columns" and sel.sum() <= 4 and \
                    set(oa.fn) <= {"identity", "exp"}:
                # the tolerance is taken where the output comes closest to 0 over the range the trees' extremes
                # allow, a sum of each tree's smallest and largest leaf: loose when no input reaches them
                # together. Bound the range by cells of the domain (branch and bound) and try again.
                rng = self._refined_range(np.flatnonzero(sel), aA * ea.base[kA] + bA)
                if rng is not None:
                    lo_r, hi_r = rng
                    again = self._output(name, oa, ob, delta[sel], diff[sel], rounding[sel], max(ua, ub),
                                         (lo_r - rounding[sel], hi_r + rounding[sel]))
                    again.details["range_refined"] = [float(lo_r.min()), float(hi_r.max())]
                    if again.status == CERTIFIED:
                        certs[name] = again
        feeds = None
        for c in certs.values():
            if c.status == REFUTED:  # to be verified by running both models where the difference should be
                if feeds is None and self.ctx.make_feeds is not None:
                    rows = np.empty((len(self.candidates), len(self.cols) + len(self.catcols)), dtype=object)
                    rows[:] = self.candidates
                    feeds = self.ctx.make_feeds(rows, self.cols + self.catcols)
                c.candidates = [feeds] if feeds is not None else []
        return certs

    def _refined_range(self, cols: np.ndarray, base: np.ndarray, budget: int = 3000,
                       seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray] | None:
        """Per score column in `cols`, (a lower, an upper bound) of the original's exact score over the domain,
        tighter than the sum of each tree's extremes: best-first branch and bound over boxes of the domain, a box's
        bound being the base plus, per tree, the extreme of the leaves whose boxes meet it (a superset of the leaves
        its inputs reach: sound), the box with the worst bound split at a leaf boundary inside it. Stops after
        `budget` boxes or `seconds`. None when there are no trees."""
        import heapq

        if not self._ranges:
            return None
        LO = np.concatenate([r[0] for r in self._ranges])
        HI = np.concatenate([r[1] for r in self._ranges])
        NAN = np.concatenate([r[2] for r in self._ranges])
        TV = np.concatenate([r[3] for r in self._ranges])
        sizes = np.array([len(r[0]) for r in self._ranges])
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        integer = self.integer
        started = time.perf_counter()

        def bound(clo: np.ndarray, chi: np.ndarray, cnan: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
            ilo, ihi = np.maximum(LO, clo), np.minimum(HI, chi)
            if integer.any():
                ilo, ihi = np.where(integer, np.ceil(ilo), ilo), np.where(integer, np.floor(ihi), ihi)
            ok = ((ilo <= ihi) | (NAN & cnan)).all(axis=1)
            per = np.minimum.reduceat(np.where(ok, v, np.inf), starts)
            return float(per.sum()), ok

        out_lo, out_hi = [], []
        for j in cols:
            got = []
            for sign in (1.0, -1.0):  # the smallest of sign * score
                v = sign * TV[:, j]
                heap: list[tuple[float, int, np.ndarray, np.ndarray]] = []
                b0, _ = bound(self.lo, self.hi, self.nan, v)
                heap.append((b0, 0, self.lo.copy(), self.hi.copy()))
                count = 1
                while heap and count < budget and time.perf_counter() - started < seconds:
                    b, _, clo, chi = heap[0]
                    if not np.isfinite(b):
                        break
                    _, ok = bound(clo, chi, self.nan, v)
                    # split at a boundary of the leaves meeting the box: the column where they have the most
                    inner = (HI[ok] < chi) & (HI[ok] >= clo)
                    counts = inner.sum(axis=0)
                    if not counts.any():
                        break  # the box lies within one leaf per tree: its bound is exact
                    c = int(np.argmax(counts))
                    m = float(np.median(HI[ok][inner[:, c], c]))
                    heapq.heappop(heap)
                    nxt = float(_next(np.array([m]), self.dtypes[c])[0])
                    for lo_c, hi_c in ((clo[c], m), (nxt, chi[c])):
                        if not _nonempty(lo_c, hi_c, bool(integer[c])):
                            continue
                        a_lo, a_hi = clo.copy(), chi.copy()
                        a_lo[c], a_hi[c] = lo_c, hi_c
                        bb, _ = bound(a_lo, a_hi, self.nan, v)
                        count += 1
                        heapq.heappush(heap, (bb, count, a_lo, a_hi))
                best = heap[0][0] if heap else np.inf
                got.append(sign * (best + sign * float(base[j])))
            out_lo.append(got[0])
            out_hi.append(got[1])
        return np.asarray(out_lo), np.asarray(out_hi)

    def _tie(self, oa: Any, d: float) -> tuple[float, float] | None:
        """(largest gap between the top two probabilities where the labels may differ, the gap the sampled check
        calls a near-tie: twice the probability output's tolerance at the top probability), when the original
        reads its probabilities from the same scores as its label; else None. The labels can differ only where
        the top two decision scores are within 2d (a threshold rule: the score within d of 0)."""
        for pname, kind in self.ctx.outputs.items():
            po = self.a.ens.outputs.get(pname)
            if kind != "probability" or po is None or po.kind == "label" or set(po.k.tolist()) != set(oa.k.tolist()):
                continue
            if oa.rule == "threshold":  # p = logistic(s), the gap |2p - 1| <= |s| / 2
                if po.kind != "columns" or any(f != "logistic" for f in po.fn):
                    continue
                # p may read a multiple of the label's score (the exponential loss: logistic(2 raw))
                ratio = float(np.max(np.abs(po.a))) / max(float(np.min(np.abs(oa.a))), 1e-300)
                return d / 2 * ratio * float(np.max(np.abs(po.c))), 2 * self.ctx.allowed(pname, 0.5)
            k = max(len(oa.k), 2)
            if po.kind == "softmax":  # p1 - p2 = p1 (1 - e^-(s1 - s2)) <= s1 - s2
                gap = 2 * d
            elif all(f == "identity" for f in po.fn):
                gap = 2 * d * float(np.max(np.abs(po.c)))
            elif all(f == "logistic" for f in po.fn):
                gap = 2 * d * 0.25 * float(np.max(np.abs(po.c)))
            else:
                continue
            return gap, 2 * self.ctx.allowed(pname, 1.0 / k)
        return None

    def _value_bound(self, name: str, oa: Any, delta: np.ndarray, u: float,
                     s_range: tuple[np.ndarray, np.ndarray], ob: Any = None) -> tuple[float, float]:
        """(bound, tolerance) of a numeric output whose score columns differ by at most `delta`: the bound at the
        value where it comes closest to (or goes furthest past) the tolerance `atol * scale + rtol * |value|`.

        A logistic column `c * s(z) + d` moves by at most `|c| s (1 - s) delta e^delta` (the slope at the mean
        value point is within e^delta of the original's s (1 - s)) and by at most `|c| delta / 4`; a softmax's
        p_i by `2 p_i (1 - p_i) max(delta) e^(4 max(delta))` and by `max(delta) / 2`; an identity column by
        `|c| delta` over the original's range of values. Each adds the post transform's own rounding."""
        ctx = self.ctx
        rt = ctx.rtol.get(name, 0.0)
        if not len(delta):
            return 0.0, ctx.allowed(name, 0.0)
        # a side computed in float64 and rounded to float32 once at the end (TreeOutput.rounded) errs by at most
        # u32 |its value| (+ half the smallest subnormal); its value is within the other bounds of the original's
        r = U["float32"] * (int(oa.rounded) + int(getattr(ob, "rounded", False))) if ob is not None else 0.0
        tiny = 2.0 ** -150 * 2
        if oa.kind == "softmax":
            dm = float(delta.max())
            # a side may renormalise its softmax (an L1 Normalizer after it): `post_ulps` more units of u
            ulps = POST_ULPS + max(getattr(oa, "post_ulps", 0), getattr(ob, "post_ulps", 0))
            cols = [("softmax", 1.0, 0.0, 0.5 * dm, 2 * dm * np.exp(min(4 * dm, 50.0)), ulps * u, 0.0, 1.0)]
        else:
            cols = []
            for j, f in enumerate(oa.fn):
                c, dd, dj = float(oa.c[j]), float(oa.d[j]), float(delta[j])
                lo, hi = float(s_range[0][j]), float(s_range[1][j])
                if f == "identity":
                    cols.append(("identity", c, dd, abs(c) * dj, 0.0, 4 * u * abs(dd), lo, hi))
                elif f == "exp":  # c e^s + d moves by |c| e^s (e^delta - 1): relative to the value when d = 0
                    cols.append(("exp", c, dd, dj, 0.0, POST_ULPS * u, lo, hi))
                else:
                    ulps = POST_ULPS + max(getattr(oa, "post_ulps", 0), getattr(ob, "post_ulps", 0))
                    cols.append(("logistic", c, dd, LIPSCHITZ["logistic"] * abs(c) * dj,
                                 abs(c) * dj * np.exp(min(dj, 50.0)), ulps * u * abs(c) + 4 * u * abs(dd),
                                 float(_sigmoid(lo)), float(_sigmoid(hi))))
        # atol's scale: no lower than any batch of rows of the domain gives it (the smallest |value| proved)
        floors = []
        for kind, c, dd, flat, curve, own, lo, hi in cols:
            if kind == "exp":
                vals = [c * float(np.exp(min(lo, 700.0))) + dd, c * float(np.exp(min(hi, 700.0))) + dd]
            elif kind == "identity":
                vals = [c * lo + dd, c * hi + dd]
            elif kind == "logistic":  # lo, hi: the logistic's range
                vals = [c * max(lo, 0.0) + dd, c * min(hi, 1.0) + dd]
            else:  # softmax probabilities
                vals = [0.0, 1.0]
            floors.append(0.0 if min(vals) <= 0 <= max(vals) else min(abs(v) for v in vals))
        a0 = ctx.allowed(name, 0.0, min(floors))
        self.atol_scale = ctx.atol_scale(name, min(floors))
        worst_excess, worst = -np.inf, (0.0, a0)
        for kind, c, dd, flat, curve, own, lo, hi in cols:
            if kind == "exp":
                # bound |c| w (e^delta - 1 + own) + 4u|d| against a0 + rt |c w + d| for w = e^s in [e^lo, e^hi]:
                # both linear in w where c w + d keeps its sign, so the worst is at an end (or the sign change)
                ws = [float(np.exp(min(lo, 700.0))), float(np.exp(min(hi, 700.0)))]
                if c and dd and ws[0] < -dd / c < ws[1]:
                    ws.append(-dd / c)
                rel = float(np.expm1(flat)) + own
                rel, fixed = rel + r * (1 + rel), 4 * u * abs(dd) + r * abs(dd) + (tiny if r else 0.0)
                ex, b, t = max((abs(c) * w * rel + fixed - (a0 + rt * abs(c * w + dd)),
                                abs(c) * w * rel + fixed, a0 + rt * abs(c * w + dd)) for w in ws)
            elif kind == "identity":
                # |value| = |c s + d| over s in [lo, hi]: the tolerance is smallest where it is smallest
                vals = [c * lo + dd, c * hi + dd]
                vmin = 0.0 if min(vals) <= 0 <= max(vals) else min(abs(v) for v in vals)
                b, t = flat + own, a0 + rt * vmin
                ex = b - t
                if r:  # linear in |value|: the worst at the smallest or the largest |value|; when within the
                    # tolerance at both, the bound reported is the largest (a bound on every row's difference)
                    ends = [(flat + own + r * (v + flat + own) + tiny - (a0 + rt * v),
                             flat + own + r * (v + flat + own) + tiny, a0 + rt * v)
                            for v in (vmin, max(abs(v) for v in vals))]
                    ex = max(e[0] for e in ends)
                    _, b, t = max(ends) if ex > 0 else max(ends, key=lambda e: e[1])
            else:
                # f(p) = min(flat, curve p (1 - p)) + own against a0 + rt |c p + d| over p in [lo, hi]
                if r:  # |c p + d| <= |c| + |d| (p in [0, 1]), plus what the value may move by
                    own += r * (abs(c) + abs(dd) + flat + own) + tiny
                ex, b, t = _worst_excess(flat, curve, own, a0, rt, c, dd, max(lo, 0.0), min(hi, 1.0))
            if ex > worst_excess:
                worst_excess, worst = ex, (b, t)
        return float(worst[0]), float(worst[1])

    def _output(self, name: str, oa: Any, ob: Any, delta: np.ndarray, diff: np.ndarray, rounding: np.ndarray,
                u: float, s_range: tuple[np.ndarray, np.ndarray] | None = None) -> Certificate:
        ctx = self.ctx
        arithmetic = (f"leaf values as stored by each side; sums of {len(self.a.roots)} trees bounded by "
                      f"n*u/(1-n*u) of the largest partial sum, or u per addition of the largest sum it can hold "
                      f"(u = 2^-{int(-np.log2(u))}); routing in "
                      f"the input dtype ({', '.join(sorted({str(d) for d in self.dtypes}))})")
        if getattr(oa, "rounded", False) or getattr(ob, "rounded", False):
            arithmetic += ("; the converted output summed in float64 and rounded to float32 once at the end: at most "
                           "2^-24 of its value")
        details: dict[str, Any] = {"trees": len(self.a.roots), "identical_routing": self.identical_trees,
                                   "score_bound": float(delta.max()) if len(delta) else 0.0,
                                   "leaf_and_base_difference": float(diff.max()) if len(diff) else 0.0,
                                   "rounding": float(rounding.max()) if len(rounding) else 0.0,
                                   "original": self.a.ens.source, "converted": self.b.ens.source}
        problem = oa.differs_from(ob)
        if problem:
            return Certificate(name, REFUTED, method="trees", reason=f"the outputs are computed differently: "
                               f"{problem}", details=details, arithmetic=arithmetic)
        d = float(delta.max()) if len(delta) else 0.0
        if oa.kind == "label":
            allowed = ctx.allowed(name, 0.0)
            details["exact_where_margin_exceeds"] = 2 * d if oa.rule == "argmax" else d
            tie = self._tie(oa, d)
            if tie is not None:
                details["probability_gap_where_labels_may_differ"], details["near_tie_tolerance"] = tie[0], tie[1]
            if d <= allowed or (tie is not None and tie[0] <= tie[1]):
                return Certificate(name, CERTIFIED, method="trees", bound=0.0, identical=False, tolerance=allowed,
                                   arithmetic=arithmetic, details={**details, "decision_bound": d,
                                                                   "near_ties_only": True})
            return Certificate(name, REFUTED, method="trees", bound=d, tolerance=allowed,
                               arithmetic=arithmetic, reason=f"the decision scores may differ by {d:.3g}, more "
                               f"than the tie tolerance {allowed:.3g}", details=details)
        bound, allowed = self._value_bound(name, oa, delta, u, s_range, ob)
        details["atol_scale"] = getattr(self, "atol_scale", 1.0)
        if getattr(oa, "rounded", False) or getattr(ob, "rounded", False):  # |difference| <= score bound + this |value|
            details["final_rounding_relative"] = U["float32"] * (int(getattr(oa, "rounded", False)) +
                                                                 int(getattr(ob, "rounded", False)))
        identical = bound == 0.0
        if bound > allowed and self.uncertain:
            details["uncertain_splits"] = self.uncertain
        if bound <= allowed:
            return Certificate(name, CERTIFIED, method="trees", bound=float(bound), identical=identical,
                               tolerance=allowed, arithmetic=arithmetic, details=details)
        why = f"the proved bound {bound:.3g} exceeds the tolerance {allowed:.3g}"
        if self.uncertain:
            why += (f" ({self.uncertain} splits read their column through a scaler whose arithmetic differs "
                    "between the two models: an input within rounding of such a threshold may take different "
                    "branches on the two sides)")
        return Certificate(name, REFUTED, method="trees", bound=float(bound), tolerance=allowed,
                           arithmetic=arithmetic, reason=why, details=details)


def _sigmoid(z: float) -> float:
    return float(0.5 * (1 + np.tanh(0.5 * np.clip(z, -1e300, 1e300))))


def _worst_excess(flat: float, curve: float, own: float, a0: float, rt: float, c: float, d: float, lo: float,
                  hi: float) -> tuple[float, float, float]:
    """The largest excess of `min(flat, curve p (1 - p)) + own` over the tolerance `a0 + rt |c p + d|` for p in
    [lo, hi], with the bound and tolerance there. Piecewise concave: its maximum is at an end, at the sign change
    of c p + d, where curve p (1 - p) meets flat, or at a vertex of a concave piece; all are tried."""
    pts = {lo, hi}
    if c and lo < -d / c < hi:
        pts.add(-d / c)
    if curve > 0:
        disc = 1 - 4 * flat / curve
        if disc > 0:
            pts |= {0.5 - np.sqrt(disc) / 2, 0.5 + np.sqrt(disc) / 2}
        for sgn in (1.0, -1.0):
            pts.add((curve - rt * sgn * c) / (2 * curve))
    best = (-np.inf, 0.0, a0)
    for p in pts:
        p = min(max(float(p), lo), hi)
        b = min(flat, curve * p * (1 - p)) + own
        t = a0 + rt * abs(c * p + d)
        if b - t > best[0]:
            best = (b - t, b, t)
    return best


def _values(ens: TreeEnsemble) -> np.ndarray:
    v = ens.trees.values
    if v is None:
        raise Refusal(f"the trees of {ens.source} carry no leaf values")
    v = np.asarray(v, np.float64)
    return v.reshape(len(v), -1)


__all__ = ["certify_trees", "TreeProof", "Refusal", "splits_of", "leaf_boxes", "leaf_pairs"]
