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

from .symbolic import FUNC_ULPS, U32, U64, Cat, NotSymbolic, Space, Sym, binade, const_sym, gamma, sum_rounding

# dot products over documents with more outputs, terms or vocabulary keep the ball's bound (the proof's cost grows
# with outputs x vocabulary x distinct terms: 747 x 741 takes a few seconds per output)
DOC_OUTPUTS, DOC_VOCABULARY, DOC_TERMS = 16, 20000, 4000
ACTIVATIONS = ("relu", "tanh", "sigmoid", "softmax", "l1norm", "exp", "identity")


@dataclass
class Stage:
    """One nonlinearity: `act` applied to the polynomials `pre` (a 1-d Sym of the previous stage)."""

    act: str
    pre: Sym
    lo: np.ndarray  # this side's interval of the stage's outputs
    hi: np.ndarray
    rel_own: float = 0.0  # the relative rounding error of computing the act (and normalising its outputs again)
    abs_own: float = 0.0  # an absolute rounding error of computing the act, beside the relative one (log-sum-exp)
    #: per unit, the error bound E of the computed outputs (as activate returned them), and for positive units
    #: (logistic, exp, softmax) the relative one: |computed / exact - 1| <= rel_out (NaN: none)
    out_E: np.ndarray | None = None
    rel_out: np.ndarray | None = None


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
        carried = aW.T @ s.E
        terms = aW * (self.mag(s) + np.broadcast_to(s.E, (W.shape[0],)))[:, None]  # [n, k]: |w x| at most
        partial = self.space.partial_sums(W, s.C, s.E, self.side, n)
        M = self.space.abs_dot(aW.T, s.C, self.side) + carried
        u = self.u(dtype)
        R = sum_rounding(n, M, u, terms=terms, partial=partial)
        docs = self.space.document_rows(s.C, s.E) if u - U64 >= U32 / 2 and W.shape[1] <= DOC_OUTPUTS else None
        if docs is not None and (len(docs[0].idf) > DOC_VOCABULARY or docs[0].max_terms > DOC_TERMS
                                 or len(docs[0].idf) * docs[0].max_terms * W.shape[1] > 2e6):
            docs = None
        if docs is not None:  # a float32 dot product over a document's tf-idf vector: over documents, not the ball
            D, idx, coef = docs
            live = idx >= 0
            R = np.array(R, dtype=np.float64, copy=True).reshape(-1)
            for k in range(W.shape[1]):
                w = np.zeros(len(D.idf))
                w[idx[live]] = W[live, k] * coef[live]
                tv = np.zeros(len(D.idf))
                tv[idx[live]] = terms[live, k]
                R[k] = min(R[k], D.rounding(w, float(M[k]), u, tv, None if partial is None else partial[:, k]))
        E = carried + R
        return Sym(C, E, s.stage, _nan_any(s, W.shape[1]))

    def add(self, a: Sym, b: Sym, dtype: Any, sign: float = 1.0) -> Sym:
        a, b = a.padded(self.space), b.padded(self.space)
        stage = self._same_stage(a, b)
        C = a.C + sign * b.C
        E0 = a.E + b.E
        out = Sym(C, E0, stage, _nan_or(a, b, C.shape[:-1]))
        out.E = np.broadcast_to(E0, C.shape[:-1]) + sum_rounding(2, self.mag(out) + E0, self.u(dtype), products=False)
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
    def softmax_lse(self, s: Sym, dtype: Any) -> Sym:
        """softmax(s) computed as exp(s - logsumexp(s)), the log-sum-exp shifted by the maximum
        (m + log(sum exp(s - m)), m = max s: onnxruntime's and onnx's reference ReduceLogSumExp, scipy's
        logsumexp under scikit-learn's naive Bayes `predict_proba`). Its rounding is not relative to |s| but
        to the log-sum-exp L alone (lse_rounding): the outputs are softmax(s) (s with its own error E, carried
        as for any softmax) times exp(eta) with |eta| <= lse_rounding, plus the subtraction's rounding
        u |s_i - L| p_i <= u (1/e + |eta|) (absolute) and exp's own."""
        s = s.padded(self.space)
        if s.C.ndim != 2:
            raise NotSymbolic(f"a softmax over a tensor of shape {s.shape}")
        zlo, zhi = self.space.range(s.C, self.side)
        return self.activate(s, "softmax", dtype, own=lse_softmax_rounding(zlo - s.E, zhi + s.E, self.u(dtype)))

    def activate(self, s: Sym, act: str, dtype: Any, own: tuple[float, float] | None = None) -> Sym:
        """End the current stage with `act` over the last axis of s (1-d); the outputs are new variables.
        `own`: (relative, absolute) rounding of computing the act, when it is not the plain act's
        (`own_relative`)."""
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
            # and its errors are relative (far below 1e-3): a unit is at least its exact lower bound (1 - 1e-3),
            # less an underflow (so a sum of units that cannot all vanish stays positive)
            zlo = np.maximum(zlo, np.maximum(self.space.range(s.C, self.side)[0] * (1 - 1e-3) - 1e-30, 0.0))
        lo, hi = act_interval(act, zlo, zhi)
        rel = own_relative(act, len(lo), self.u(dtype))
        absolute_failed = NotSymbolic(f"an unbounded {act} error")
        try:
            E = act_error(act, zlo, zhi, s.E, lo, hi, self.u(dtype))
        except NotSymbolic as exc:  # an L1 normalisation whose sum, less its absolute errors, may reach 0
            if act != "l1norm":
                raise
            E, absolute_failed = np.full(len(lo), np.inf), exc
        if act == "l1norm":
            rel_in = self._relative_inputs(s)
            if rel_in is not None:  # a normalisation of positive units: their errors are relative
                E = np.minimum(E, l1norm_relative_change(rel_in, lo, hi) + rel * np.maximum(np.abs(lo), np.abs(hi)))
            if np.any(np.isinf(E)):
                raise absolute_failed
        absolute = 0.0
        if own is not None:  # the act's own rounding replaced by the given one
            E = act_error(act, zlo, zhi, s.E, lo, hi, 0.0) + own[0] * np.maximum(np.abs(lo), np.abs(hi)) + own[1]
            rel, absolute = own
        E = np.broadcast_to(E, lo.shape).astype(np.float64)
        rel_out = unit_relative(act, np.broadcast_to(s.E, lo.shape), rel) if absolute == 0.0 else np.full(len(lo), np.nan)
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
            last.abs_own = max(last.abs_own, absolute)
            last.out_E = np.concatenate([last.out_E, E]) if last.out_E is not None else None
            last.rel_out = np.concatenate([last.rel_out, rel_out]) if last.rel_out is not None else None
            st = len(self.stages)
        else:
            n0 = 0
            st = len(self.stages) + 1
            self.stages.append(Stage(act, s, lo, hi, rel, absolute, E, rel_out))
        idx = []
        for i in range(len(lo)):
            g = self.space.hidden_group(st, n0 + i, self.side, lo[i], hi[i])
            v = self.space.var(("h", st, n0 + i), g)
            idx.append(self.space.mono((v,)))
        C = np.zeros((len(lo), self.space.size))
        C[np.arange(len(lo)), idx] = 1.0
        return Sym(C, E, st)


    def _relative_inputs(self, s: Sym) -> np.ndarray | None:
        """When each element of s (1-d) is one positive unit of the last stage (coefficient 1, no constant), with
        no error beyond that unit's own: per element, the relative error bound of that unit; else None."""
        units = stage_units(self.space, s, s.stage)
        if units is None or s.stage > len(self.stages):
            return None
        st = self.stages[s.stage - 1]
        if st.rel_out is None or st.out_E is None:
            return None
        rel = st.rel_out[units]
        if np.any(np.isnan(rel)) or np.any(np.broadcast_to(s.E, rel.shape) > st.out_E[units] * (1 + 1e-9)):
            return None
        return rel

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
        (E0 + E1) / 4 plus the logistic's own rounding; over [z0, z1] with z0 + z1 = delta (not exactly -z0: a
        changed coefficient), (max |delta| + E0 + E1) / 4. None when s is not such a pair."""
        st = self.stages[-1] if self.stages else None
        if st is None or s.C.ndim != 2 or s.shape[0] != 2 or not self._is_stage_output(s, ("sigmoid",)):
            return None
        units = stage_units(self.space, s, s.stage)  # (the pair may be one block of a stage of several models)
        if units is None:
            return None
        P = self.space.pad(st.pre.C)[units]
        if float(np.min(st.lo[units])) < 0.0:
            return None
        # the units' inputs z0, z1 with z0 + z1 = delta (0 for [-z, z]): sigmoid(z0) + sigmoid(z1) - 1 =
        # sigmoid(z1) - sigmoid(-z0) is at most |delta| / 4 (the logistic's slope)
        delta = 0.0 if np.array_equal(P[0], -P[1]) else float(self.space.magnitude((P[0] + P[1])[None], self.side)[0])
        pe = np.broadcast_to(st.pre.E, (len(st.lo),))[units]
        off = (delta + float(pe.sum())) / 4 + 2 * st.rel_own + 2 * self.u(dtype)  # |the computed sum - 1|
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


def stage_units(space: Space, s: Sym, k: int) -> np.ndarray | None:
    """The units of stage k (1-based) that the elements of s (1-d) are, each exactly one with coefficient 1 and
    no constant term; None otherwise."""
    if not k or s.stage != k or s.C.ndim != 2:
        return None
    C = space.pad(s.C)
    units = []
    for row in C:
        nz = np.nonzero(row)[0]
        if len(nz) != 1 or nz[0] == 0 or row[nz[0]] != 1.0 or len(space.monomials[nz[0]]) != 1:
            return None
        key = space.vars[space.monomials[nz[0]][0]]
        if key[0] != "h" or key[1] != k:
            return None
        units.append(key[2])
    return np.asarray(units, dtype=np.int64)


def unit_relative(act: str, dz: np.ndarray, rel_own: float) -> np.ndarray:
    """Per unit of a stage, a bound on |act(z') / act(z) - 1| (computed with relative rounding rel_own) when
    |z' - z| <= dz, for positive units: |d log sigmoid(z)| = (1 - sigmoid) |dz| <= |dz|, |d log exp(z)| = |dz|,
    |d log softmax_i| <= |dz_i| + max |dz| over its block. NaN for units with no relative bound."""
    out, i = [], 0
    dz = np.asarray(dz, dtype=np.float64)
    for a, k in blocks(act, len(dz)):
        d = dz[i:i + k]
        if a in ("sigmoid", "exp"):
            out.append(np.expm1(d + rel_own) * (1 + 1e-9))
        elif a == "softmax":
            out.append(np.expm1(d + np.max(d) + rel_own) * (1 + 1e-9))
        else:
            out.append(np.full(k, np.nan))
        i += k
    return np.concatenate(out) if out else np.zeros(0)


def l1norm_relative_change(rel: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A bound on |p'_i - p_i| for p = v / sum(v), p' = v' / sum(v'), v > 0, when |v'_j / v_j - 1| <= rel_j (one
    normalised block; lo, hi: p's interval): p'_i / p_i = (1 + r_i) / (1 + sum_j p_j r_j), and
    |r_i - sum_j p_j r_j| <= 2 (1 - p_i) max r, so |p'_i - p_i| <= 2 p_i (1 - p_i) max r / (1 - max r)."""
    r = float(np.max(rel)) if len(rel) else 0.0
    if not r < 0.5:
        return np.full(len(lo), np.inf)
    q = np.where((lo <= 0.5) & (hi >= 0.5), 0.25, np.maximum(lo * (1 - lo), hi * (1 - hi)))
    return 2 * q * r / (1 - r) * (1 + 1e-9)


def lse_rounding(zlo: np.ndarray, zhi: np.ndarray, u: float) -> float:
    """A bound on |L' - lse(z')| where L' = fl(m + fl(log(fl(sum fl(exp(fl(z'_i - m))))))), m = max z' (z' the
    float values in [zlo, zhi], n of them): each term exp(x (1 + d)) (1 + d') with x <= 0 errs by at most
    exp(x) (u |x| + F u) <= u / e + F u exp(x); the sum S in [1, n] of n such terms adds gamma_(n-1) S, so
    S' = S (1 + e_S) with |e_S| <= (n / e + F + n - 1) u (first order, inflated); log adds |log(1 + e_S)| and
    its own F u |log S'|; the final addition u |L'|, |L'| <= max(|max zlo|, |max zhi| + log n) + the rest."""
    n = len(zlo)
    e_s = gamma(n - 1, u) + (n / np.e + FUNC_ULPS) * u * (1 + 2 * FUNC_ULPS * u)
    e_log = -np.log1p(-e_s) + FUNC_ULPS * u * (np.log(n) + e_s + 1e-300)
    big = max(abs(float(np.max(zlo))), abs(float(np.max(zhi)) + np.log(n))) + e_log
    last = (u - U64) * float(binade(big * (1 + u) * (1 + 1e-9))) + U64 * big  # fl(log S' + m)
    return float((e_log + last) / (1 - u) * (1 + 1e-9))


def lse_softmax_rounding(zlo: np.ndarray, zhi: np.ndarray, u: float) -> tuple[float, float]:
    """(relative, absolute) rounding of exp(fl(z_i - L')) (L' the computed log-sum-exp, `lse_rounding`) against
    softmax(z) for float z in [zlo, zhi]: q_i = softmax(z)_i exp(-eta) exp(d (z_i - L')) (1 + d'), |d| <= u,
    |d'| <= F u; p_i u |z_i - L'| = u p_i |log p_i - eta| <= u (1/e + |eta|) is the absolute part."""
    eta = lse_rounding(zlo, zhi, u)
    rel = float(np.expm1(eta + FUNC_ULPS * u)) * (1 + 1e-6)
    return rel, u * (1 / np.e + eta) * (1 + rel) * (1 + 1e-6)


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
