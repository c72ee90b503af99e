"""The rounding of a float32 dot product over the tf-idf vectors of documents, not over the whole unit ball.

A dot product w.x of n nonzero terms, summed in any order (a sequence or a tree of additions), errs by at most u
times the binade of each addition's result (`symbolic.sum_rounding`), and an addition whose result sums j terms is
at most the largest |sum of j terms| (`Space.partial_sums` bounds it over the unit l2 ball). Over the ball a few
large terms can hold a partial sum in a high binade while hundreds of tiny ones are added, each rounding by half
an ulp of it. A document's vector cannot: it is x = z / ||z||_2 with, on its k distinct terms, z_i = idf_i t_i,
t_i = tf(c_i) for counts 1 <= c_i <= C (tf(c) = 1 + ln c with sublinear tf, c, or 1 for binary counts), the counts
summing to at most `max_total`: each of its terms weighs at least idf_i / ||z||, and the counts a few terms can
take are limited.

`Documents.reach` proves, for a threshold T and a support size k, the largest j such that no such document has j
or fewer terms whose w_i x_i sum to T or more. For the terms P (|P| <= j) of a document of norm r = ||z|| in a
band [r1, r2]: the other k - |P| >= k - j terms weigh at least the k - j smallest idf_i^2 (L) in ||z||^2, so
sum_{i in P} idf_i^2 t_i^2 <= r2^2 - L, and they take at least one count each, so the counts of P sum to at most
max_total - k + j. For multipliers mu, gamma >= 0, sum_P a_i t_i (a_i = w_i idf_i) is then at most
sum_P g_i + mu (r2^2 - L) + gamma (max_total - k + j), g_i = max over t in [1, tf(C)] of
a_i t - mu idf_i^2 t^2 - gamma c(t) (concave in t: found by bisection, its upper bound by the tangent at the point
found), and sum_P g_i is at most the sum of the j largest positive g_i. When that is below T r1 for some (mu,
gamma) of a grid, in every band from the smallest norm of a k-term document to the largest, every such partial
sum is below T. Any multipliers give a sound bound: they are searched for on a grid, never assumed.

More terms only make a partial sum smaller (they add to the norm), so what is proved at k holds for every
document of k or more terms: `Documents.rounding` bounds the dot product's rounding for the documents of k in
[k1, k2] with the partial sums proved at k1 and n = k2 terms, and takes the largest over cells covering 1..K.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .symbolic import U32, binade, gamma, sum_rounding

#: the converted vector's entries are within REL_X + gamma_K (float32) of the exact x = z / ||z|| relatively
#: (float32 idf weights, logarithm, products and division: a few ulps; the norm's sum of K squares: gamma_K): the
#: partial sums' thresholds allow for it (the text method checks the converted vector on the domain's documents)
REL_X = 64 * U32
CELLS = 12  # support sizes k: cells [k1, k2] up to K, geometric
LEVELS = 4  # binade boundaries tried below the ball bound's highest one
BAND = 1.004  # the norm bands' ratio r2 / r1
_NMU, _NG = 28, 12  # multiplier grids (mu for the norm, gamma for the counts' total)


@dataclass
class Documents:
    """The tf-idf vectors (unit l2 norm) of documents of at most `max_terms` distinct terms, each counted at most
    `max_count` times and `max_total` times in all (the domain's documents' most)."""

    idf: np.ndarray  # [V] each term's weight (1 without idf)
    tf: str  # "sublinear" | "raw" | "binary"
    max_count: int
    max_total: int
    max_terms: int

    def describe(self) -> str:
        return (f"at most {self.max_terms} distinct terms, each at most {self.max_count} times and "
                f"{self.max_total} term occurrences in all")

    def tf_of(self, c: Any) -> Any:
        """The tf of counts c (>= 1)."""
        c = np.asarray(c, dtype=np.float64)
        if self.tf == "sublinear":
            return 1.0 + np.log(c)
        return c if self.tf == "raw" else np.ones_like(c)

    @property
    def tmax(self) -> float:
        C = float(self.max_count)
        return 1.0 + float(np.log(C)) if self.tf == "sublinear" else (C if self.tf == "raw" else 1.0)

    def _per_term(self, a: np.ndarray, q: np.ndarray, mu: np.ndarray, g: np.ndarray) -> np.ndarray:
        """An upper bound on max over t in [1, tmax] of a t - mu q t^2 - g c(t), c(t) the count of tf t
        ([grid, V] for mu, g [grid, 1])."""
        lo, hi = 1.0, self.tmax
        if self.tf == "binary" or hi <= lo:
            return a - mu * q - g
        if self.tf == "raw":  # c = t: a concave quadratic
            k = a - g
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(mu * q > 0, k / (2 * mu * q), np.where(k > 0, hi, lo))
            t = np.clip(t, lo, hi)
            return k * t - mu * q * t * t + 1e-12 * (np.abs(k) * hi + mu * q * hi * hi)

        def deriv(t: np.ndarray) -> np.ndarray:  # c(t) = e^(t - 1)
            return a - 2 * mu * q * t - g * np.exp(t - 1.0)

        tl = np.full(np.broadcast_shapes(a.shape, mu.shape), lo)
        th = np.full_like(tl, hi)
        for _ in range(40):  # the derivative decreases: bisection for its zero
            tm = 0.5 * (tl + th)
            up = deriv(tm) > 0
            tl, th = np.where(up, tm, tl), np.where(up, th, tm)
        t = 0.5 * (tl + th)
        val = a * t - mu * q * t * t - g * np.exp(t - 1.0)
        # concave: the tangent at t bounds it on [lo, hi]
        d = deriv(t)
        return val + np.maximum(d * (hi - t), d * (lo - t)) + 1e-12 * (np.abs(a) * hi + mu * q * hi * hi +
                                                                     g * np.exp(hi - 1.0))

    def reach(self, w: np.ndarray, T: Any, k: int) -> np.ndarray:
        """Per threshold of T: the largest j (0 when none) proved: no document of k distinct terms has j or fewer
        terms whose w_i x_i sum to T or more (w [V]: the coefficients)."""
        T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        V = len(w)
        k = int(min(k, V))
        out = np.zeros(len(T), dtype=int)
        a = np.asarray(w, dtype=np.float64) * self.idf
        if k < 1 or not np.any(a > 0):
            return np.where(T > 0, k, 0) if k >= 1 else out
        q = self.idf ** 2
        Lcum = np.concatenate([[0.0], np.cumsum(np.sort(q))])  # the m smallest idf^2 summed
        r_lo = float(np.sqrt(Lcum[k]))
        r_hi = float(np.sqrt(np.sort(q)[::-1][:k].sum()) * self.tmax) * (1 + 1e-12)
        amax = float(np.max(np.abs(a)))
        mus = np.concatenate([[0.0], np.geomspace(1e-7, 10.0, _NMU - 1)]) * amax / float(q.min())
        gs = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, _NG - 1)]) * amax
        MU, GG = np.repeat(mus, _NG), np.tile(gs, _NMU)
        g = self._per_term(a[None, :], q[None, :], MU[:, None], GG[:, None])  # [grid, V]
        # exactly p terms in P (p = 1..k): the p largest values
        top = np.cumsum(-np.sort(-g, axis=1), axis=1)[:, :k]  # [grid, k]
        p = np.arange(1, k + 1)
        L = Lcum[k - p]  # the other k - p terms' least weight in ||z||^2
        nb = int(np.ceil(np.log(max(r_hi / r_lo, 1.0 + 1e-12)) / np.log(BAND))) + 1
        r1 = r_lo * BAND ** np.arange(nb)
        r1 = r1[r1 < r_hi] if np.any(r1 < r_hi) else np.array([r_lo])
        r2 = np.minimum(r1 * BAND, r_hi)
        best = np.full((len(r1), k), np.inf)  # per band and p: the smallest bound on sum_P a_i t_i
        room = np.maximum(r2[:, None] ** 2 - L[None, :], 0.0)  # [bands, k]
        counts = np.maximum(self.max_total - k + p, 0).astype(np.float64)
        for i in range(len(MU)):
            np.minimum(best, top[i][None, :] + GG[i] * counts[None, :] + MU[i] * room, out=best)
        best *= 1 + 1e-9
        for i, t in enumerate(T):
            if t <= 0:
                continue
            fail = np.flatnonzero(np.any(best >= t * r1[:, None], axis=0))  # p not proved
            out[i] = int(fail[0]) if len(fail) else k  # p = fail + 1 fails: proved for every p <= fail
        return out

    def rounding(self, w: np.ndarray, M: float, u: float, terms: np.ndarray, partial: np.ndarray | None
                 ) -> float:
        """A bound on the rounding error of sum_i w_i x_i (float32 products and additions, in any order) for every
        document of the set: w [V] (the model's weights as float64), M >= sum |w_i x_i| over the set (with the
        errors carried), terms [V] each term's largest |w_i x_i|, partial [>= K - 1] the ball's bound on |any j
        terms| (j = 2..K) or None."""
        K = int(min(self.max_terms, len(w)))  # terms a document holds
        nnz = int(np.count_nonzero(w))  # products that are not 0 (adding 0 is exact)
        terms = np.asarray(terms, dtype=np.float64)[:, None]
        if min(K, nnz) < 2:
            return float(sum_rounding(max(min(K, nnz), 1), np.array([M]), u, terms=terms)[0])
        P0 = np.full(K - 1, M) if partial is None else np.asarray(partial, dtype=np.float64).reshape(-1)[:K - 1]
        if len(P0) < K - 1:
            P0 = np.concatenate([P0, np.repeat(P0[-1:], K - 1 - len(P0))])
        P0 = np.minimum(P0, M)
        rel = REL_X + gamma(K + 2, U32)
        edges = np.unique(np.concatenate([[1], np.geomspace(max(2, K // 8), K, CELLS).astype(int), [K]]))
        worst = 0.0
        for k1, k2 in zip(edges[:-1], edges[1:]):
            n = int(min(k2, nnz))
            g = gamma(n, u)
            P = P0[:n - 1].copy()
            if k1 >= 2:
                B = float(binade(np.array([(P.max() + g * M) * (1 + 1e-9)]))[0])
                Bs = B / 2.0 ** np.arange(LEVELS)
                # partial sums proved below T_c put every addition of j <= reach terms below the boundary B
                Tc = Bs / (1 + 2e-9) - (g + 2 * rel) * M
                ok = Tc > 0
                if np.any(ok):
                    r = np.minimum(self.reach(w, Tc[ok], int(k1)), self.reach(-w, Tc[ok], int(k1)))
                    for t, rr in zip(Tc[ok], r):
                        if rr >= 2:
                            P[:rr - 1] = np.minimum(P[:rr - 1], t + rel * (1 + rel) * M)
            e = float(sum_rounding(n, np.array([M]), u, terms=terms, partial=P[:, None])[0])
            worst = max(worst, e)
        return worst
