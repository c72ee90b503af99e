"""scikit-learn's Normalizer (norm l1, l2 or max: x / ||x|| per row) in the affine reading (issue 19).

x / ||x|| is discontinuous at x = 0 (scikit-learn leaves a zero row as it is): next to the rows where the
normaliser's input vanishes, the direction of x is decided by rounding alone, and a float32 conversion that
computes x with a different rounding than the float64 original (a centring scaler before it: x = raw - centre is
0 in float32 where float64 keeps centre - float32(centre)) gives a row of another direction, however correct each
operation is. So when the domain holds such rows (every coordinate of the normaliser's input has a range through
0), the reading stops with `Discontinuity`: its candidate inputs are the rows of the box where the input is
closest to 0 (least squares over the columns' boxes) and their nearest float32 neighbours, and the affine method
returns the outputs refuted with those candidates, which `portable.certify` keeps only when running both models
on one shows a difference beyond the tolerance (else: not certifiable). A normaliser whose input stays away from
0 over the domain has no affine reading either.

Both are read instead at the normaliser's output (`certify_cut`) when the pipeline starts with scalers and the
converted graph computes them and the norm in float64 exactly as scikit-learn does (portable's converter:
`preprocessing.ScaledNormalizer`): then both models normalise the same vector, and only what follows is bounded.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .core import graph_links
from .sklearn_program import _as_sym, reads
from .symbolic import NotSymbolic


class Discontinuity(NotSymbolic):
    """A model step is discontinuous at points of the domain: `points` (rows of the base variables, as
    `joint.sample_points` gives them) are where the two models are expected to part."""

    def __init__(self, reason: str, points: np.ndarray, space: Any) -> None:
        super().__init__(reason)
        self.points, self.space = points, space


@reads("Normalizer")
def _normalizer(prog: Any, est: Any, x: Any) -> Any:
    from .joint import sample_points

    s = _as_sym(prog, x)
    norm = getattr(est, "norm", "l2")
    what = f"the step Normalizer(norm='{norm}')"
    space = prog.space
    if s.stage or s.C.ndim != 2:
        raise NotSymbolic(f"{what} after a nonlinearity")
    C = space.pad(s.C)
    lo, hi = space.range(C, prog.side)
    lo, hi = lo - s.E, hi + s.E
    if not np.all((lo <= 0) & (hi >= 0)):
        raise NotSymbolic(f"{what} of a vector that stays away from 0 over the domain (no bound of x / ||x|| is "
                          "implemented)")
    # its input is c0 + A v over numeric columns v: the rows of the box nearest to where it vanishes
    monos = [m for m in np.nonzero(np.any(C != 0, axis=0))[0] if m != 0]
    cols = []
    for m in monos:
        vs = space.monomials[m]
        g = space.groups[space.var_group[vs[0]]]
        if len(vs) != 1 or space.vars[vs[0]][0] != "x" or g.kind != "numeric":
            raise NotSymbolic(f"{what} of a vector that is not affine in numeric columns")
        cols.append((m, vs[0], g))
    if not cols:
        raise NotSymbolic(f"{what} of a constant vector")
    from scipy.optimize import lsq_linear

    A = C[:, [m for m, _, _ in cols]]
    blo = np.array([g.lo for _, _, g in cols], dtype=np.float64)
    bhi = np.array([g.hi for _, _, g in cols], dtype=np.float64)
    scale = np.maximum(np.abs(blo), np.abs(bhi)) + 1e-300
    fit = lsq_linear(A * scale, -C[:, 0], bounds=(blo / scale, bhi / scale))
    v0 = np.clip(fit.x * scale, blo, bhi)
    base = sample_points(space, 1, seed=0)[0]
    pts = []
    rng = np.random.default_rng(0)
    for eps in (0.0, 1e-7, 1e-6, 1e-5, 1e-4):
        for _ in range(1 if eps == 0.0 else 48):
            v = np.clip(v0 * (1 + eps * rng.standard_normal(len(v0))), blo, bhi)
            v = v.astype(np.float32).astype(np.float64)  # rows a float32 input holds
            p = base.copy()
            p[[vi for _, vi, _ in cols]] = v
            pts.append(p)
    raise Discontinuity(f"{what} is discontinuous where its input is 0, and the domain holds such rows (each "
                        f"coordinate of its input ranges through 0; the nearest row found: |input| <= "
                        f"{float(np.max(np.abs(A @ v0 + C[:, 0]))):.3g})", np.array(pts), space)


# -- a Normalizer read at its output (a cut): after scalers computed exactly as scikit-learn computes them ---------

SCALERS = ("StandardScaler", "RobustScaler", "MaxAbsScaler", "MinMaxScaler")
F64 = np.finfo(np.float64)
U64 = float(F64.eps) / 2


def _ops(est: Any) -> list[tuple[str, Any]] | None:
    """What a scikit-learn scaler's dense `transform` computes, in its order, as (ONNX op, float64 constant)
    pairs (Max/Min: a clip's bounds); None for a step that is not such a scaler. Written from scikit-learn's
    `transform` (not from portable's converter: the certificate checks the converter against it), and replayed
    against scikit-learn's own `transform` before use (`_replays_sklearn`)."""
    name = type(est).__name__
    if name not in SCALERS or not type(est).__module__.startswith("sklearn."):
        return None

    def row(v: Any) -> np.ndarray:
        return np.asarray(v, dtype=np.float64).reshape(-1)

    try:
        if name == "StandardScaler":
            out = [("Sub", row(est.mean_))] if est.with_mean and est.mean_ is not None else []
            return out + ([("Div", row(est.scale_))] if est.with_std and est.scale_ is not None else [])
        if name == "RobustScaler":
            out = [("Sub", row(est.center_))] if est.with_centering and est.center_ is not None else []
            return out + ([("Div", row(est.scale_))] if est.with_scaling and est.scale_ is not None else [])
        if name == "MaxAbsScaler":
            out = [("Div", row(est.scale_))]
            return out + ([("Max", np.array([-1.0])), ("Min", np.array([1.0]))] if getattr(est, "clip", False)
                          else [])
        out = [("Mul", row(est.scale_)), ("Add", row(est.min_))]
        lo, hi = (float(v) for v in est.feature_range)
        return out + ([("Max", np.array([lo])), ("Min", np.array([hi]))] if getattr(est, "clip", False) else [])
    except AttributeError:  # not fitted
        return None


def _replay(ops: list[tuple[str, Any]], X: np.ndarray) -> np.ndarray:
    X = np.array(X, dtype=np.float64)
    for op, c in ops:
        X = {"Sub": np.subtract, "Div": np.divide, "Mul": np.multiply, "Add": np.add, "Max": np.maximum,
             "Min": np.minimum}[op](X, c)
    return X


def _grid_keys(x: np.ndarray, dt: Any) -> np.ndarray:
    """Order-preserving integer keys of the values of `dt` (float32 or float64; -0 and +0 share key 0)."""
    it, sign = (np.int32, 0x7FFFFFFF) if dt == np.float32 else (np.int64, 0x7FFFFFFFFFFFFFFF)
    bits = np.asarray(x, dtype=dt).view(it).astype(np.int64)
    return np.where(bits < 0, -(bits & sign), bits)


def _grid_values(k: np.ndarray, dt: Any) -> np.ndarray:
    it = np.int32 if dt == np.float32 else np.int64
    k = np.asarray(k, dtype=np.int64)
    neg = k < 0
    mag = np.where(neg, -k, k)
    if dt == np.float32:
        bits = (mag | np.where(neg, 0x80000000, 0)).astype(np.uint32).view(np.int32)
    else:
        bits = (mag.astype(np.uint64) | np.where(neg, np.uint64(1 << 63), np.uint64(0))).view(np.int64)
    return bits.astype(it).view(dt).astype(np.float64)


def least_nonzero(ops: list[tuple[str, Any]], lo: np.ndarray, hi: np.ndarray, dt: Any) -> np.ndarray:
    """Per column, the smallest nonzero |value| the scalers give any value of `dt` in [lo, hi]: each float
    operation (correctly rounded) is monotone in its input, so each column's value is monotone in its raw value,
    and that smallest value is at the grid values next to where it changes sign (found by bisection on the grid),
    or at an end of the column's range. inf: the column's value is 0 throughout."""
    dt = np.float32 if dt == np.float32 else np.float64
    a = _grid_keys(lo, dt)
    a = np.where(_grid_values(a, dt) < lo, a + 1, a)  # the grid's values within [lo, hi]
    b = _grid_keys(hi, dt)
    b = np.where(_grid_values(b, dt) > hi, b - 1, b)

    def f(k: np.ndarray) -> np.ndarray:
        return _replay(ops, _grid_values(k, dt)[None, :])[0]

    fa, fb = f(a), f(b)
    s = np.where(fb >= fa, 1.0, -1.0)  # nondecreasing after the sign

    def search(first_pos: bool) -> tuple[np.ndarray, np.ndarray]:
        # first_pos: the smallest key with s f > 0; else the largest key with s f < 0
        lo_k, hi_k = a.copy(), b.copy()
        ok = (s * fb > 0) if first_pos else (s * fa < 0)
        for _ in range(70):
            mid = lo_k + (hi_k - lo_k) // 2
            v = s * f(mid)
            if first_pos:
                go = v > 0
                hi_k, lo_k = np.where(go, mid, hi_k), np.where(go, lo_k, mid + 1)
            else:
                go = v < 0
                lo_k, hi_k = np.where(go, mid, lo_k), np.where(go, hi_k, mid - 1)
                lo_k = np.where(hi_k - lo_k == 1, np.where(s * f(hi_k) < 0, hi_k, lo_k), lo_k)
                hi_k = np.where(hi_k - lo_k == 1, lo_k, hi_k)
            if np.all(hi_k <= lo_k):
                break
        k = hi_k if first_pos else lo_k
        return np.where(ok, np.abs(f(k)), np.inf), ok

    pos, _ = search(True)
    neg, _ = search(False)
    return np.minimum(pos, neg)


def _gamma(k: int) -> float:
    return k * U64 / (1 - k * U64)


def _const_of(proto: Any, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for init in proto.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.output and node.output[0] == name:
            from onnx import helper

            return np.asarray(helper.get_attribute_value(node.attribute[0]) if node.attribute[0].name != "value"
                              else numpy_helper.to_array(node.attribute[0].t))
    return None


def match_graph(proto: Any, x_name: str, ops: list[tuple[str, Any]], norm: str, width: int
                ) -> tuple[str, int]:
    """The tensor of the converted graph that holds the Normalizer's output, when the graph computes the scalers
    and the normaliser from the input `x_name` with exactly these float64 operations (constants bit-equal to
    scikit-learn's) and the norm as scikit-learn defines it; (name, ONNX element type). NotSymbolic otherwise."""
    g = proto.graph
    consumers, producer = graph_links(g)
    attrs = {id(n): {a.name: a for a in n.attribute} for n in g.node}

    def fail(what: str) -> NotSymbolic:
        return NotSymbolic(f"the converted graph does not compute the scalers and Normalizer in float64 as "
                           f"scikit-learn does ({what})")

    def only(t: str, op: str) -> Any:
        nodes = consumers.get(t, [])
        if len(nodes) != 1 or nodes[0].op_type != op or nodes[0].domain not in ("", "ai.onnx") \
                or nodes[0].input[0] != t:
            raise fail(f"{t} is not read by one {op}")
        return nodes[0]

    def const_eq(name: str, want: np.ndarray) -> None:
        c = _const_of(proto, name)
        if c is None or c.dtype != np.float64 or c.size != want.size and c.size != 1 and want.size != 1:
            raise fail(f"the constant {name}")
        c = np.broadcast_to(c.reshape(-1), want.shape) if c.size == 1 else c.reshape(-1)
        w = np.broadcast_to(want, c.shape) if want.size == 1 else want
        if c.shape != w.shape or not np.array_equal(c.view(np.int64), np.asarray(w, np.float64).view(np.int64)):
            raise fail(f"the constant {name} differs from scikit-learn's")
        shape = _const_of(proto, name).shape
        if len(shape) > 2 or (len(shape) == 2 and shape[0] != 1) or (shape and shape[-1] not in (1, width)):
            raise fail(f"the constant {name} has shape {shape}")

    vi = next((v for v in g.input if v.name == x_name), None)
    if vi is None:
        raise fail(f"no input {x_name}")
    elem = vi.type.tensor_type.elem_type
    cur = x_name
    if elem == 1:
        cast = only(cur, "Cast")
        if attrs[id(cast)]["to"].i != 11:
            raise fail("the input is not cast to float64")
        cur = cast.output[0]
    elif elem != 11:
        raise fail("the input is not float32 or float64")
    for op, c in ops:
        node = only(cur, op)
        const_eq(node.input[1], c)
        cur = node.output[0]
    # the normaliser: x / where(norm < 10 eps64, 1, norm), norm of x along axis 1
    nodes = consumers.get(cur, [])
    div = [n for n in nodes if n.op_type == "Div" and n.input[0] == cur]
    if len(div) != 1:
        raise fail("no single division of the scaled rows")
    div = div[0]
    where = producer.get(div.input[1])
    if where is None or where.op_type != "Where":
        raise fail("the divisor is not a Where")
    const_eq(where.input[1], np.array([1.0]))
    less = producer.get(where.input[0])
    nrm = where.input[2]
    if less is None or less.op_type != "Less" or less.input[0] != nrm:
        raise fail("the divisor's test is not norm < threshold")
    const_eq(less.input[1], np.array([10 * F64.eps]))

    def reduced(node: Any, op: str) -> str:
        if node is None or node.op_type != op:
            raise fail(f"the norm is not a {op}")
        at = attrs[id(node)]
        if "keepdims" in at and at["keepdims"].i != 1:
            raise fail("the norm drops its axis")
        axes = list(at["axes"].ints) if "axes" in at else (
            _const_of(proto, node.input[1]).reshape(-1).tolist() if len(node.input) > 1 and node.input[1] else None)
        if axes not in ([1], [-1]):
            raise fail("the norm is not taken along the rows")
        return node.input[0]

    p = producer.get(nrm)
    if norm == "l2":
        if p is None or p.op_type != "Sqrt":
            raise fail("the l2 norm is not a Sqrt")
        sq = producer.get(reduced(producer.get(p.input[0]), "ReduceSum"))
        if sq is None or sq.op_type != "Mul" or list(sq.input) != [cur, cur]:
            raise fail("the l2 norm does not sum the squares of the scaled rows")
    else:
        ab = producer.get(reduced(p, "ReduceSum" if norm == "l1" else "ReduceMax"))
        if ab is None or ab.op_type != "Abs" or ab.input[0] != cur:
            raise fail(f"the {norm} norm does not reduce |x| of the scaled rows")
    out = div.output[0]
    if elem == 1:
        cast = only(out, "Cast")
        if attrs[id(cast)]["to"].i != 1:
            raise fail("the normalised rows are not cast back to float32")
        return cast.output[0], 1
    return out, 11


def certify_cut(original: Any, converted: Any, domain: Any, ctx: Any, t0: float) -> dict[str, Any] | None:
    """Certificates for a pipeline that starts with scalers (`SCALERS`) and a Normalizer, whose converted graph
    computes them as scikit-learn does (`match_graph`); None when the pair is not such a pair.

    The argument, over the rows the input dtype holds (`ctx.inputs`: the rows both models are fed): both models
    compute the scaled row v with the same float64 operations on the same values, so v is the same; each divides
    it by its norm of v, computed with a relative error of at most gamma_n (sums in any order; the max is exact),
    or by 1 where the norm is below 10 eps64 -- the same choice in both, except for rows whose norm is within
    that rounding of the threshold (excepted, as near-ties are; none when every nonzero v has a coordinate of at
    least `least_nonzero`, above the threshold by more than the rounding);
    the normalised rows (each in [-1, 1], scikit-learn's to its rounding) then differ by a relative
    2 (u64 + gamma_n), plus the float32 rounding of a float32 artifact. What follows the Normalizer is certified
    by the affine/ibp reading over those rows, with that difference as the converted side's input error."""
    from .core import DomainColumn, Domain
    from .joint import certify_programs
    from .onnx_program import read_onnx
    from .sklearn_program import read_sklearn
    from .symbolic import Space
    from .text import _cut_graph

    if getattr(original, "format", None) not in ("sklearn", "pickle") or not hasattr(original, "estimator") \
            or getattr(converted, "format", None) != "onnx" or not hasattr(converted, "proto"):
        return None
    est = original.estimator
    if type(est).__name__ != "Pipeline":
        return None
    steps = [s for _, s in est.steps]
    k = next((i for i, s in enumerate(steps) if type(s).__name__ == "Normalizer"
              and type(s).__module__.startswith("sklearn.")), None)
    if k is None:
        return None
    ops = [_ops(s) for s in steps[:k]]
    specs = original.signature.inputs
    if any(o is None for o in ops) or len(specs) != 1 or specs[0].is_string or len(specs[0].shape) != 2:
        return None
    chain = [p for o in ops for p in o]
    x_name, width = specs[0].name, int(specs[0].shape[1])
    norm = steps[k].norm
    dt = np.float32 if ctx.inputs.get(x_name) == "float32" else np.float64
    cols = [domain.columns.get((x_name, j)) for j in range(width)]
    if any(c is None or c.lo is None or c.hi is None or c.nan or c.categories for c in cols):
        raise NotSymbolic("the Normalizer's input columns are not numeric boxes without missing values")
    lo = np.array([c.lo for c in cols], dtype=np.float64)
    hi = np.array([c.hi for c in cols], dtype=np.float64)
    cut, elem = match_graph(converted.proto, x_name, chain, norm, width)
    _replays_sklearn(steps[:k], chain, lo, hi, dt)
    g = {"l1": _gamma(width), "l2": _gamma(width + 2), "max": 0.0}[norm]
    rel = 2.0 * (U64 + g) * (1 + 4 * (U64 + g))  # |z_b / z_a - 1| for the two float64 normalisations
    least = float(np.min(least_nonzero(chain, lo, hi, dt), initial=np.inf))
    tiny = 10 * float(F64.eps)
    # a row whose norm is within the two norms' rounding of the threshold may be divided by one model and not by
    # the other (a discontinuity both models share, at another place): such rows are excepted, as near-ties are
    # (when the scaled values cannot be that small, there are none)
    band = None if g == 0 or least * (1 - 2 * g) > tiny * (1 + 4 * U64) else (tiny / (1 + 2.5 * g + 4 * U64),
                                                                    tiny / (1 - 2.5 * g - 4 * U64))
    r = 1.0 if norm == "max" else 1.0 + 4 * g  # scikit-learn's normalised values, with their rounding
    sub_cols = dict(domain.columns)
    for j in range(width):
        sub_cols[(cut, j)] = DomainColumn(lo=-r, hi=r)
    sub = Domain(sub_cols, domain.source)
    space = Space(sub)
    # the scalers and the Normalizer all read as the cut's variables (the scalers' own reading, a clip's say, is
    # not needed: the graph was matched against them)
    space.cuts = {**{id(s): (cut, width) for s in steps[:k + 1]}, "inputs": ()}
    if norm in ("l1", "l2"):  # every row is in the ball of its norm, of radius 1 (0 for a zero row) + rounding
        ball = frozenset((cut, j) for j in range(width))
        space.balls.append((norm, ball, True))
        space.ball_radius[ball] = r
    space.input_errors = {cut: rel * (1 + U64) + (0.0 if elem == 11 else rel * 2.0 ** -24)}
    sub_proto = _cut_graph(converted.proto, cut, width, elem)
    if any(v.name == x_name for v in sub_proto.graph.input):
        raise NotSymbolic(f"the converted graph reads {x_name} beside the Normalizer's output")
    pa = read_sklearn(original, space, "original")
    pb = read_onnx(sub_proto, space, "converted")
    certs = certify_programs(pa, pb, original, converted, sub, ctx, "affine", t0)
    note = (f"read at the Normalizer's output ({cut}): both models compute its input with the same float64 "
            f"operations (scikit-learn's {k} scaler(s): {len(chain)} operations, constants bit-equal) on the same "
            f"rows of the input "
            f"dtype ({np.dtype(dt).name}: what both are fed), so they normalise the same vector; their norms differ "
            f"by rounding (relative {rel:.2g}), and no row's norm is near the 10 eps threshold (the smallest nonzero "
            f"scaled value is {least:.3g}); the bound covers what follows over the normalised rows' box "
            f"[-{r:.17g}, {r:.17g}]" + (f" and {norm} ball of that radius" if norm != "max" else ""))
    if band is not None:
        note += (f"; except rows whose scaled row's {norm} norm lies in [{band[0]:.17g}, {band[1]:.17g}] (the "
                 f"threshold 10 eps = {tiny:.3g} within both norms' rounding: one model may divide by the norm "
                 f"there and the other not; scaled values as small as {least:.3g} occur in the domain)")
    for cert in certs.values():
        if band is not None:
            cert.details["except_rows"] = (f"the {norm} norm of the scaled row within [{band[0]:.6g}, {band[1]:.6g}]"
                                           " (scikit-learn's zero-norm threshold, within rounding)")
        cert.arithmetic = (cert.arithmetic or "") + "; " + note
        cert.details["normalizer_cut"] = {"tensor": cut, "relative_error": rel, "least_nonzero": least,
                                          "rows": np.dtype(dt).name, "threshold_band": band}
        cert.domain = None
    return certs


def _replays_sklearn(steps: list[Any], chain: list[tuple[str, Any]], lo: np.ndarray, hi: np.ndarray,
                     dt: Any) -> None:
    """scikit-learn's scalers compute what `_ops` reads, bit for bit, on rows of the domain (NotSymbolic if not:
    another version of scikit-learn computing otherwise)."""
    rows = np.random.default_rng(0).uniform(lo, hi, (256, len(lo))).astype(dt).astype(np.float64)
    want = rows.copy()
    for s in steps:
        want = s.transform(want)
    if not np.array_equal(np.asarray(want, np.float64), _replay(chain, rows), equal_nan=True):
        raise NotSymbolic("scikit-learn's scalers do not compute what their reading says (another version?)")
