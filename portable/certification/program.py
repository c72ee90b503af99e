"""A model read as a `Program`: affine/polynomial pieces (`Sym`) between nonlinear stages, with rounding bounds.

Both readers (`sklearn_program` for scikit-learn estimators, `onnx_program` for ONNX graphs) build one through the
same operations, so the two models of a pair come out in the same terms: stage 0 computes polynomials of the raw
inputs; each nonlinearity (ReLU, tanh, the logistic, softmax, an L1 normalisation) ends a stage and its outputs
become the next stage's variables. The last stage's polynomials (or an argmax over them, for labels) are the
outputs. Every operation also bounds the rounding error of the model's own float arithmetic (unit roundoff `u`:
2^-24 for float32 tensors, 2^-53 for float64; the analysis itself computes in float64, whose roundoff is added).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .symbolic import FUNC_ULPS, U32, U64, Cat, NotSymbolic, Space, Sym, const_sym, gamma

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softmax", "l1norm", "exp", "identity")


@dataclass
class Stage:
    """One nonlinearity: `act` applied to the polynomials `pre` (a 1-d Sym of the previous stage)."""

    act: str
    pre: Sym
    lo: np.ndarray  # this side's interval of the stage's outputs
    hi: np.ndarray
    rel_own: float = 0.0  # the relative rounding error of computing the act (and normalising its outputs again)


@dataclass
class Label:
    """A label output: `classes[argmax(scores)]` (first index on ties), scores a 1-d Sym."""

    scores: Sym
    classes: np.ndarray | None = None


@dataclass
class Program:
    space: Space
    side: str
    stages: list[Stage] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # name -> Sym (1-d) | Label
    notes: list[str] = field(default_factory=list)
    arith: set[str] = field(default_factory=set)

    # -- helpers -------------------------------------------------------------------------------------------------
    def u(self, dtype: Any) -> float:
        dt = np.dtype(dtype) if not isinstance(dtype, float) else None
        uu = dtype if isinstance(dtype, float) else (U32 if dt == np.float32 else U64)
        self.arith.add("float32" if uu == U32 else "float64")
        return uu + U64  # the analysis computes its compositions in float64 too

    def mag(self, s: Sym) -> np.ndarray:
        return self.space.magnitude(s.C, self.side)

    def const(self, value: Any, stage: int = 0) -> Sym:
        return const_sym(value, self.space, stage)

    def _same_stage(self, *syms: Sym) -> int:
        """The stage of a value combining syms: the latest (a value of an earlier stage, such as a stacked model's
        decision scores beside another's probabilities, is a skip connection: its variables are the same in both
        models, so it carries no difference from the stages it skips)."""
        stages = {s.stage for s in syms if np.any(self.space.pad(s.C)[..., 1:]) or s.stage}
        return max(stages) if stages else 0

    # -- affine operations ---------------------------------------------------------------------------------------
    def matmul(self, s: Sym, W: np.ndarray, dtype: Any) -> Sym:
        """s (shape [..., n]) @ W [n, k]: the exact product plus gamma_n |W|^T (|s| + E) + |W|^T E."""
        s = s.padded(self.space)
        W = np.asarray(W, dtype=np.float64)
        if s.C.ndim != 2 or W.ndim != 2 or W.shape[0] != s.C.shape[0]:
            raise NotSymbolic(f"a matrix product of shapes {s.shape} and {W.shape}")
        C = np.einsum("nm,nk->km", s.C, W)
        aW = np.abs(W)
        n = self.space.terms(s.C, s.E) if self.space.nonzero else W.shape[0]
        E = aW.T @ s.E + gamma(n, self.u(dtype)) * (self.space.abs_dot(aW.T, s.C, self.side) + aW.T @ s.E)
        return Sym(C, E, s.stage, _nan_any(s, W.shape[1]))

    def add(self, a: Sym, b: Sym, dtype: Any, sign: float = 1.0) -> Sym:
        a, b = a.padded(self.space), b.padded(self.space)
        stage = self._same_stage(a, b)
        C = a.C + sign * b.C
        E0 = a.E + b.E
        out = Sym(C, E0, stage, _nan_or(a, b, C.shape[:-1]))
        out.E = np.broadcast_to(E0, C.shape[:-1]) + self.u(dtype) * self.mag(out)
        return out

    def scale(self, s: Sym, c: Any, dtype: Any) -> Sym:
        """s * c (c constant, broadcast)."""
        s = s.padded(self.space)
        c = np.asarray(c, dtype=np.float64)
        C = s.C * c[..., None]
        out = Sym(C, np.abs(c) * s.E, s.stage, s.nan)
        out.E = np.broadcast_to(out.E, C.shape[:-1]) + self.u(dtype) * self.mag(out)
        return out

    def multiply(self, a: Sym, b: Sym, dtype: Any) -> Sym:
        """Elementwise product of two polynomials (degree <= 2 after the product)."""
        a, b = a.padded(self.space), b.padded(self.space)
        stage = self._same_stage(a, b)
        shape = np.broadcast_shapes(a.shape, b.shape)
        A = np.broadcast_to(a.C, shape + (a.C.shape[-1],)).reshape(-1, a.C.shape[-1])
        B = np.broadcast_to(b.C, shape + (b.C.shape[-1],)).reshape(-1, b.C.shape[-1])
        rows = []
        for ra, rb in zip(A, B):
            out: dict[int, float] = {}
            for i in np.nonzero(ra)[0]:
                for j in np.nonzero(rb)[0]:
                    k = self.space.multiply(int(i), int(j))
                    if k is not None:
                        out[k] = out.get(k, 0.0) + ra[i] * rb[j]
            rows.append(out)
        C = np.zeros((len(rows), self.space.size))
        for r, out in enumerate(rows):
            for k, v in out.items():
                C[r, k] = v
        C = C.reshape(shape + (self.space.size,))
        ma, mb = np.broadcast_to(self.mag(a), shape), np.broadcast_to(self.mag(b), shape)
        ea, eb = np.broadcast_to(a.E, shape), np.broadcast_to(b.E, shape)
        res = Sym(C, ma * eb + mb * ea + ea * eb, stage, _nan_or(a, b, shape))
        res.E = res.E + self.u(dtype) * self.mag(res)
        return res

    def column_function(self, s: Sym, name: str, dtype: Any) -> Sym:
        """log or sqrt of each element of s, an element being a x + b (+ c where its raw column is NaN) of one
        numeric column: a new variable of that column's group, f(a x + b), exact at the column's extremes
        (monotone). Its rounding: the input's error times f's largest slope on the range, plus f's own."""
        from .symbolic import column_function

        space = self.space
        s = s.padded(space)
        if s.C.ndim != 2 or s.stage:
            raise NotSymbolic(f"a {name} of a value that is not one row of raw columns")
        C = np.zeros((s.C.shape[0], space.size))
        E = np.zeros(s.C.shape[0])
        Es = np.broadcast_to(s.E, (s.C.shape[0],))
        for r, row in enumerate(s.C):
            nz = [m for m in np.nonzero(row)[0] if m != 0]
            keys = [space.vars[space.monomials[m][0]] if len(space.monomials[m]) == 1 else None for m in nz]
            xs = [(m, k) for m, k in zip(nz, keys) if k is not None and k[0] == "x"]
            ns = [(m, k) for m, k in zip(nz, keys) if k is not None and k[0] == "n"]
            if len(xs) != 1 or len(xs) + len(ns) != len(nz) or any(k[1] != xs[0][1][1] for _, k in ns):
                raise NotSymbolic(f"a {name} of a combination of columns")
            col = xs[0][1][1]
            a, b = float(row[xs[0][0]]), float(row[0])
            g = space.groups[space.column_group(col)]
            vals = [float(v) for v in g.categories] if g.categories else [g.lo, g.hi]
            zlo, zhi = min(a * v + b for v in vals) - Es[r], max(a * v + b for v in vals) + Es[r]
            points = [zlo, zhi]
            if g.nan:
                c = b + (float(row[ns[0][0]]) if ns else 0.0)
                points.append(c)
                zlo, zhi = min(zlo, c - Es[r]), max(zhi, c + Es[r])
            if (name == "log" and zlo <= 0) or (name == "sqrt" and zlo < 0):
                raise NotSymbolic(f"a {name} of values that reach {zlo:.3g}")
            if name.startswith("clip") and a < 0:  # keep the variable non-decreasing in the column
                name, a, b = _flip_clip(name), -a, -b
                sign = -1.0
            else:
                sign = 1.0
            extra = 0.0
            if name.startswith("clip"):  # the other side's clip of nearly the same argument and bounds, if any
                name, a, b, extra = _near_clip(space, col, name, a, b, max(abs(v) for v in vals))
            f = space.func_var(col, name, a, b)
            space.mono((f,))
            C = space.pad(C)
            C[r, space.index[(f,)]] = sign
            if g.nan:
                nv = space.var(("n", col), space.column_group(col))
                C = space.pad(C)
                C[r, space.mono((nv,))] = sign * float(column_function(name, sign, 0.0, points[2]))
            if name.startswith("clip"):  # a selection: exact, and 1-Lipschitz
                E[r] = Es[r] + extra
                continue
            slope = 1.0 / zlo if name == "log" else (0.5 / np.sqrt(zlo) if zlo > 0 else np.inf)
            mag = max(abs(float(column_function(name, 1.0, 0.0, p))) for p in (zlo, zhi))
            E[r] = (slope * Es[r] if Es[r] > 0 else 0.0) + FUNC_ULPS * self.u(dtype) * mag
        return Sym(space.pad(C), E, 0)

    # -- stages ----------------------------------------------------------------------------------------------------
    def activate(self, s: Sym, act: str, dtype: Any) -> Sym:
        """End the current stage with `act` over the last axis of s (1-d); the outputs are new variables."""
        if act not in ACTIVATIONS:
            raise NotSymbolic(f"the nonlinearity {act}")
        if act == "identity":
            return s
        s = s.padded(self.space)
        if act == "l1norm":
            pair = self._complementary_pair(s, dtype)
            if pair is not None:
                return pair
        if act == "l1norm" and self._is_stage_output(s, ("softmax", "l1norm")):
            # L1 normalisation of a probability vector is the identity; only its rounding remains
            n = s.shape[0]
            self.stages[-1].rel_own += (n + 2) * self.u(dtype) * (1 + self.stages[-1].rel_own)
            return Sym(s.C, s.E * (1 + (n + 2) * self.u(dtype)) + (n + 2) * self.u(dtype) * self.mag(s), s.stage)
        if s.C.ndim != 2:
            raise NotSymbolic(f"a {act} over a tensor of shape {s.shape}")
        if has_nan(s):
            raise NotSymbolic(f"NaN reaches a {act} without imputation")
        sibling = bool(self.stages) and s.stage == self.stages[-1].pre.stage and s.stage < len(self.stages)
        if s.stage != len(self.stages) and not sibling:
            raise NotSymbolic("a nonlinearity applied to an earlier stage")
        zlo, zhi = self.space.range(s.C, self.side)
        zlo, zhi = zlo - s.E, zhi + s.E
        if act == "l1norm" and self._nonnegative(s):  # rounding cannot make a sigmoid's output negative
            zlo = np.maximum(zlo, 0.0)
        lo, hi = act_interval(act, zlo, zhi)
        E = act_error(act, zlo, zhi, s.E, lo, hi, self.u(dtype))
        rel = own_relative(act, len(lo), self.u(dtype))
        if sibling:
            # a nonlinearity beside the last one (another model of an ensemble, another fold of a calibration):
            # its units join that stage as a block
            last = self.stages[-1]
            n0 = len(last.lo)
            pre = Sym(np.concatenate([self.space.pad(last.pre.C), self.space.pad(s.C)]),
                      np.concatenate([np.broadcast_to(last.pre.E, (n0,)), np.broadcast_to(s.E, (len(lo),))]),
                      s.stage)
            last.act = join_blocks(blocks(last.act, n0) + [(act, len(lo))])
            last.pre, last.lo, last.hi = pre, np.concatenate([last.lo, lo]), np.concatenate([last.hi, hi])
            last.rel_own = max(last.rel_own, rel)
            st = len(self.stages)
        else:
            n0 = 0
            st = len(self.stages) + 1
            self.stages.append(Stage(act, s, lo, hi, rel))
        idx = []
        for i in range(len(lo)):
            g = self.space.hidden_group(st, n0 + i, self.side, lo[i], hi[i])
            v = self.space.var(("h", st, n0 + i), g)
            idx.append(self.space.mono((v,)))
        C = np.zeros((len(lo), self.space.size))
        C[np.arange(len(lo)), idx] = 1.0
        return Sym(C, E, st)


    def _nonnegative(self, s: Sym) -> bool:
        """Each element of s is a nonnegative combination of outputs of the last stage that are >= 0 exactly and
        in float (a sigmoid, softmax, exp, ReLU or L1-normalised unit), with no constant term."""
        if not s.stage or s.stage > len(self.stages) or s.C.ndim != 2:
            return False
        st = self.stages[s.stage - 1]
        acts = np.concatenate([[a] * k for a, k in blocks(st.act, len(st.lo))])
        C = self.space.pad(s.C)
        if np.any(C[:, 0] != 0) or np.any(C < 0):
            return False
        for m in np.nonzero(C.any(axis=0))[0]:
            vs = self.space.monomials[m]
            key = self.space.vars[vs[0]] if len(vs) == 1 else None
            if key is None or key[:2] != ("h", s.stage) or \
                    acts[key[2]] not in ("sigmoid", "softmax", "exp", "relu", "l1norm") or st.lo[key[2]] < 0:
                return False
        return True

    def _complementary_pair(self, s: Sym, dtype: Any) -> Sym | None:
        """The L1 normalisation of the two units of a logistic stage over [-z, z] (a binary linear model's
        probabilities, skl2onnx normalises them): the identity up to sigmoid(-z') + sigmoid(z') - 1, at most
        (E0 + E1) / 4 plus the logistic's own rounding. None when s is not such a pair."""
        st = self.stages[-1] if self.stages else None
        if st is None or st.act != "sigmoid" or len(st.lo) != 2 or s.C.ndim != 2 or s.shape[0] != 2 or \
                not self._is_stage_output(s, ("sigmoid",)):
            return None
        P = self.space.pad(st.pre.C)
        if not np.array_equal(P[0], -P[1]) or float(np.min(st.lo)) < 0.0:
            return None
        pe = np.broadcast_to(st.pre.E, (2,))
        off = float(pe.sum()) / 4 + 2 * st.rel_own + 2 * self.u(dtype)  # |the computed sum - 1|
        if off >= 0.5:
            return None
        rel = off / (1 - off) + 4 * self.u(dtype)
        return Sym(s.C, np.broadcast_to(s.E, (2,)) * (1 + rel) + rel * self.mag(s), s.stage, s.nan)

    def _is_stage_output(self, s: Sym, acts: tuple[str, ...]) -> bool:
        """s is exactly the outputs of one block of the last stage (the whole stage when it has one), in order,
        and that block's act is one of acts."""
        if not self.stages or s.stage != len(self.stages) or s.C.ndim != 2:
            return False
        st = self.stages[-1]
        C = self.space.pad(s.C)
        first = None
        for m in np.nonzero(C[0])[0]:
            vs = self.space.monomials[m]
            if len(vs) == 1 and self.space.vars[vs[0]][:2] == ("h", s.stage):
                first = self.space.vars[vs[0]][2]
        if first is None:
            return False
        i0 = 0
        for a, n in blocks(st.act, len(st.lo)):
            if i0 == first and n == C.shape[0] and a in acts:
                want = np.zeros_like(C)
                for i in range(n):
                    v = self.space.var_index.get(("h", s.stage, i0 + i))
                    if v is None:
                        return False
                    want[i, self.space.index[(v,)]] = 1.0
                return bool(np.array_equal(want, C))
            i0 += n
        return False


ELEMENTWISE = ("relu", "tanh", "sigmoid", "exp", "identity")


def blocks(act: str, n: int) -> list[tuple[str, int]]:
    """The blocks of a stage's act: `(act, units)` each. A stage of parallel nonlinearities (an ensemble's
    members, a calibration's folds) is written `sigmoid[1]+softmax[3]`; a plain act is one block of n units."""
    if "[" not in act:
        return [(act, n)]
    out = []
    for part in act.split("+"):
        name, k = part[:-1].split("[")
        out.append((name, int(k)))
    return out


def join_blocks(parts: list[tuple[str, int]]) -> str:
    """The act of a stage of blocks; neighbouring blocks of one elementwise act merge (they are one map)."""
    merged: list[tuple[str, int]] = []
    for a, k in parts:
        if merged and merged[-1][0] == a and a in ELEMENTWISE:
            merged[-1] = (a, merged[-1][1] + k)
        else:
            merged.append((a, k))
    if len(merged) == 1:
        return merged[0][0]
    return "+".join(f"{a}[{k}]" for a, k in merged)


def per_block(act: str, func: Any, *arrays: np.ndarray) -> Any:
    """func(block act, *array slices) per block, results concatenated (tuples elementwise)."""
    n = len(arrays[0])
    res, i = [], 0
    for a, k in blocks(act, n):
        res.append(func(a, *[x[i:i + k] for x in arrays]))
        i += k
    if isinstance(res[0], tuple):
        return tuple(np.concatenate([r[j] for r in res]) for j in range(len(res[0])))
    return np.concatenate(res)


def act_interval(act: str, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound interval of act(z) for z in [lo, hi] (elementwise, or the softmax / L1 vector maps)."""
    if "[" in act:
        return per_block(act, act_interval, lo, hi)
    if act == "relu":
        return np.maximum(lo, 0), np.maximum(hi, 0)
    if act == "tanh":
        return np.tanh(lo), np.tanh(hi)
    if act == "sigmoid":
        return _sigmoid(lo), _sigmoid(hi)
    if act == "exp":
        return np.exp(lo), np.exp(hi)
    if act == "softmax":
        n = len(lo)
        plo, phi = np.zeros(n), np.ones(n)
        for i in range(n):
            others_hi = np.delete(hi, i)
            others_lo = np.delete(lo, i)
            plo[i] = 1.0 / (1.0 + np.sum(np.exp(np.minimum(others_hi - lo[i], 700))))
            phi[i] = 1.0 / (1.0 + np.sum(np.exp(np.minimum(others_lo - hi[i], 700))))
        return plo, phi
    if act == "l1norm":
        if np.any(lo < 0):
            raise NotSymbolic("an L1 normalisation of values that may be negative")
        tot_lo, tot_hi = lo.sum(), hi.sum()
        if tot_lo <= 0:
            raise NotSymbolic("an L1 normalisation of values whose sum may be 0")
        plo = lo / np.maximum(lo + (tot_hi - hi), 1e-300)
        phi = np.minimum(hi / np.maximum(hi + (tot_lo - lo), 1e-300), 1.0)
        return plo, phi
    raise NotSymbolic(f"the nonlinearity {act}")


def lipschitz(act: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per unit, the largest slope of an elementwise act on [lo, hi]."""
    if "[" in act:
        return per_block(act, lipschitz, lo, hi)
    if act == "relu":
        return np.where(hi <= 0, 0.0, 1.0)
    if act == "tanh":
        m = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
        return 1 - np.tanh(m) ** 2
    if act == "sigmoid":
        m = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
        s = _sigmoid(m)
        return s * (1 - s)
    if act == "exp":
        return np.exp(hi)
    raise NotSymbolic(f"no elementwise slope for {act}")


def vector_change(act: str, dz: np.ndarray, lo: np.ndarray, hi: np.ndarray, plo: np.ndarray,
                  phi: np.ndarray) -> np.ndarray:
    """A bound on |act(z') - act(z)| per output when |z'_i - z_i| <= dz_i and both lie in [lo - dz, hi + dz]
    (plo, phi: the outputs' interval)."""
    if "[" in act:
        return per_block(act, vector_change, dz, lo, hi, plo, phi)
    if act == "softmax":
        # mean value theorem: d p_i = sum_j p_i (delta_ij - p_j) dz_j, and softmax ignores a common shift:
        # |d p_i| <= 2 p_i (1 - p_i) * max_j |dz_j| <= min(0.5, 2 phi_i) * max |dz|
        return np.minimum(0.5, 2 * phi * (1 - plo)) * np.max(dz) * np.ones_like(dz)
    if act == "l1norm":
        s_lo = np.sum(np.maximum(lo - dz, 0))
        if s_lo <= 0:
            raise NotSymbolic("an L1 normalisation whose sum may reach 0")
        n = len(dz)
        # d p_i = (dz_i - p_i sum_j dz_j) / S  ->  |d p_i| <= (dz_i + phi_i sum dz) / S_min
        return (dz + phi * np.sum(dz)) / s_lo * np.ones(n)
    return lipschitz(act, lo - dz, hi + dz) * dz


def own_relative(act: str, n: int, u: float) -> float:
    """The relative error of evaluating act in float arithmetic (see act_error)."""
    if "[" in act:
        return max(own_relative(a, k, u) for a, k in blocks(act, n))
    return 0.0 if act == "relu" else ((n + FUNC_ULPS) if act in ("softmax", "l1norm") else FUNC_ULPS) * u


def act_error(act: str, zlo: np.ndarray, zhi: np.ndarray, E: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              u: float) -> np.ndarray:
    """Rounding error after act: the input's error carried through, plus the function's own error."""
    if "[" in act:
        E = np.broadcast_to(E, np.shape(lo))
        return per_block(act, lambda a, *xs: act_error(a, *xs, u), zlo, zhi, E, lo, hi)
    mag = np.maximum(np.abs(lo), np.abs(hi))
    if act == "relu":
        return E.copy()
    carried = vector_change(act, E, zlo, zhi, lo, hi)
    return carried + own_relative(act, len(lo), u) * mag


def apply_blocks(act: str, z: np.ndarray, apply: Any) -> np.ndarray:
    """apply(block act, z[:, block]) per block of a stage (z: [n points, units])."""
    out, i = [], 0
    for a, k in blocks(act, z.shape[1]):
        out.append(apply(a, z[:, i:i + k]))
        i += k
    return np.concatenate(out, axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _near_clip(space: Any, col: Any, name: str, a: float, b: float, xmax: float) -> tuple[str, float, float, float]:
    """An existing clip variable of the column within float32 rounding of clip(a x + b, lo, hi) (the two sides
    store their constants in different precisions), and the largest difference between the two functions: clip
    is 1-Lipschitz in its argument and its bounds, so |clip(a x + b, lo, hi) - clip(a' x + b', lo', hi')| <=
    |a - a'| max|x| + |b - b'| + max(|lo - lo'|, |hi - hi'|). Else (name, a, b) itself, with no extra error."""
    from .symbolic import clip_bounds

    lo, hi = clip_bounds(name)
    for f in space.funcs_of.get(col, []):
        key = space.vars[f]
        b2 = clip_bounds(key[2])
        if b2 is None or (key[2], key[3], key[4]) == (name, a, b):
            continue
        a2, c2 = float(key[3]), float(key[4])
        if any(np.isinf(p) != np.isinf(q) or (np.isinf(p) and p != q) for p, q in zip((lo, hi), b2)):
            continue
        d = [abs(p - q) for p, q in zip((lo, hi), b2) if np.isfinite(p)]
        scale = abs(a2) * xmax + abs(c2) + max([abs(p) for p in b2 if np.isfinite(p)] + [0.0])
        extra = abs(a - a2) * xmax + abs(b - c2) + max(d + [0.0])
        if (a > 0) == (a2 > 0) and extra <= 1e-5 * max(scale, 1e-300):
            return key[2], a2, c2, extra
    return name, a, b, 0.0


def _flip_clip(name: str) -> str:
    """-clip(-z, lo, hi) = clip(z, -hi, -lo): the name of the function of the negated argument."""
    from .symbolic import clip_bounds, clip_name

    lo, hi = clip_bounds(name)
    return clip_name(-hi, -lo)


def has_nan(s: Sym) -> bool:
    return s.nan is not None and bool(np.any(s.nan != -1))


def _nan_any(s: Sym, k: int) -> np.ndarray | None:
    """NaN sources after a reduction over all elements: -2 (several) wherever any element may be NaN."""
    return np.full(k, -2, dtype=np.int64) if has_nan(s) else None


def _nan_or(a: Sym, b: Sym, shape: tuple[int, ...]) -> np.ndarray | None:
    """Elementwise NaN sources of a combination: the one source, or -2 where two different ones meet."""
    if not has_nan(a) and not has_nan(b):
        return None
    na = np.full(shape, -1) if a.nan is None else np.broadcast_to(a.nan, shape)
    nb = np.full(shape, -1) if b.nan is None else np.broadcast_to(b.nan, shape)
    return np.where(na == -1, nb, np.where((nb == -1) | (nb == na), na, -2))


def cat_to_sym(c: Cat, prog: Program) -> Sym:
    """A categorical tensor whose values are numbers, as a Sym linear in the category indicators."""
    space = prog.space
    flat = c.items.reshape(-1)
    C = np.zeros((len(flat), space.size))
    rows = []
    for r, (g, vals) in enumerate(flat):
        entries = []
        for k, v in enumerate(vals):
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise NotSymbolic(f"a string value '{v}' used as a number") from None
            if g is None:
                entries.append((0, fv))
            else:
                col = space.groups[g].column
                entries.append((space.mono((space.var(("e", col, k), g),)), fv))
        rows.append(entries)
    C = np.zeros((len(flat), space.size))
    for r, entries in enumerate(rows):
        for m, v in entries:
            C[r, m] += v
    return Sym(C.reshape(c.shape + (space.size,)), np.zeros(c.shape), 0)


def sym_table(s: Sym, prog: Program) -> Cat:
    """A Sym whose elements each depend on at most one categorical column, as a table per category (for
    elementwise ops a polynomial cannot express: comparisons, lookups)."""
    space = prog.space
    C = space.pad(s.C).reshape(-1, space.size)
    items = np.empty(len(C), dtype=object)
    for r, row in enumerate(C):
        nz = [m for m in np.nonzero(row)[0] if m != 0]
        groups = {space.var_group[v] for m in nz for v in space.monomials[m]}
        if not groups:
            items[r] = (None, (row[0],))
            continue
        if len(groups) > 1 or not space.groups[next(iter(groups))].categories:
            raise NotSymbolic("a comparison or lookup of a value that depends on a continuous input")
        g = groups.pop()
        grp = space.groups[g]
        if grp.nan and any(space.vars[v][0] in ("x", "n") for m in nz for v in space.monomials[m]):
            raise NotSymbolic("a comparison or lookup of an integer column that may be NaN")
        x = space.var_index.get(("x", grp.column))
        vals = []
        for k, cat in enumerate(grp.categories):
            point = {v: 1.0 for v in [space.var_index.get(("e", grp.column, k))] if v is not None}
            if x is not None:
                point[x] = float(cat)
            vals.append(row[0] + sum(row[m] * np.prod([point.get(v, 0.0) for v in space.monomials[m]])
                                     for m in nz))
        items[r] = (g, tuple(vals))
    return Cat(items.reshape(s.shape))
