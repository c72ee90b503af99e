"""Symbolic values for the affine and bound-propagation methods: a model read as polynomials over its inputs.

Every numeric tensor a model computes (one row; the batch axis dropped) is a `Sym`: per element a polynomial of
degree <= 2 in *variables* of a shared `Space`, plus a bound on the rounding error the model's own float arithmetic
adds to it. Variables are

- `("x", col)`: a numeric input column (0 when the column is NaN), `("n", col)`: 1 when that column is NaN;
- `("e", col, k)`: 1 when a categorical column holds its k-th category (an encoder is linear in these);
- `("h", stage, i)`: unit i after the stage-th nonlinearity (a hidden layer, a softmax), bounded by an interval.

Each raw column is one *group* of variables with a finite list of extreme points (numeric: `lo`, `hi`, the NaN
point; categorical: one vertex per category), and the domain is the product of the groups, so the largest value of
a polynomial whose monomials each stay within one group is the sum of per-group maxima: exact. Products across
groups (PolynomialFeatures' cross terms) are bounded by interval arithmetic: sound, and said so (`exact=False`).

A string tensor is a `Cat`: per element, the raw categorical column it depends on and the string it holds for each
category; string ops (imputation, comparisons, encoders) are evaluated category by category, exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..hints import Column
from .core import Domain

U32, U64 = 2.0 ** -24, 2.0 ** -53
# transcendental functions (exp, tanh, the logistic) are not correctly rounded in any runtime: assumed accurate to
# FUNC_ULPS units in the last place (MLAS and numpy/scipy are within a few)
FUNC_ULPS = 16
MAX_ENUM = 256  # integer columns with fewer values than this are enumerated


COLUMN_FUNCTIONS = ("log", "sqrt", "clip")


def clip_name(lo: float, hi: float) -> str:
    """The column function clip(z, lo, hi) (np.clip; +-inf for a one-sided Max/Min)."""
    return f"clip({float(lo)!r},{float(hi)!r})"


def clip_bounds(name: str) -> tuple[float, float] | None:
    if not name.startswith("clip("):
        return None
    lo, hi = name[5:-1].split(",")
    return float(lo), float(hi)


def column_function(name: str, a: float, b: float, x: Any) -> Any:
    """f(a x + b) for a column function (monotone on its domain: log, sqrt, clip(lo, hi))."""
    z = a * np.asarray(x, dtype=np.float64) + b
    bounds = clip_bounds(name)
    if bounds is not None:
        return np.clip(z, *bounds)
    return np.log(z) if name == "log" else np.sqrt(z)


class NotSymbolic(Exception):
    """The model (or this part of it) has no reading in these terms: the method does not apply."""


def binade(M: Any) -> Any:
    """2^floor(log2 M) elementwise (0 where M is 0): a rounding to nearest of a value of magnitude at most M errs
    by at most u times this (half an ulp of M's binade; a value rounded up to 2^(e+1) came from below it)."""
    M = np.asarray(M, dtype=np.float64)
    _, e = np.frexp(M)  # M = f 2^e, f in [0.5, 1): exact
    return np.where(M > 0, np.ldexp(1.0, e - 1), 0.0)


def sum_rounding(n: int, M: Any, u: float, products: bool = True, terms: Any = None, partial: Any = None) -> Any:
    """A bound on the rounding error of a dot product (or sum) of at most n nonzero terms, in any order, whose
    terms' absolute values sum to at most M (u: the model's unit roundoff plus the analysis's float64 one). The
    error is the sum of the operations' local errors (additions carry them unchanged): the products' at most
    u sum|terms| <= u M, and the at most n - 1 additions of nonzero values', each u times the binade of its
    result, at most M (1 + gamma_n) in magnitude. Never above gamma_n M; up to 2x below it.

    `terms` [n, k]: each term's largest magnitude; `partial` [n - 1, k]: a bound on |the exact sum of any j of
    the terms| for j = 2..n (`Space.partial_sums`: over a norm ball, and signed, smaller than the sum of the
    magnitudes); an addition's computed result is then at most that plus gamma_n M (the rounding so far)."""
    uu = max(u - U64, 0.0)
    M = np.asarray(M, dtype=np.float64)
    g = gamma(n, u)
    P = binade(M * (1 + g) * (1 + 1e-9))
    tiny = 2.0 ** -149 if uu >= U32 / 2 else 2.0 ** -1074  # a subnormal result errs by half its spacing
    adds = max(n - 1, 0) * P
    if terms is not None and n > 1:
        # in any order (a sequence or a tree of additions), the i-th largest addition sums at most n - i + 1
        # nonzero terms, so its result is at most the sum of the n - i + 1 largest terms' magnitudes T
        T = np.cumsum(-np.sort(-np.asarray(terms, dtype=np.float64), axis=0), axis=0)[1:n]  # sizes 2..n
        T = np.minimum(T, M)
        adds = np.minimum(adds, binade(T * (1 + g) * (1 + 1e-9)).sum(axis=0))
    if partial is not None and n > 1:
        T = np.asarray(partial, dtype=np.float64)[:n - 1]
        if len(T) < n - 1:  # fewer sizes given: the largest bounds the rest
            T = np.concatenate([T, np.repeat(T[-1:], n - 1 - len(T), axis=0)])
        T = np.minimum(T, M) + g * M
        adds = np.minimum(adds, binade(T * (1 + 1e-9)).sum(axis=0))
    out = (uu * ((M if products else 0.0) + adds) + U64 * n * M + n * tiny) / (1 - n * u)
    return np.minimum(out, g * M + n * tiny) if np.all(np.isfinite(M)) else g * M


def gamma(n: int, u: float) -> float:
    """The standard forward error constant of an n-term dot product: n u / (1 - n u) (Higham, Thm 3.1)."""
    return n * u / (1.0 - n * u)


@dataclass
class Group:
    """One raw column (or one hidden unit): its variables and the points its values range over."""

    kind: str  # numeric | categorical | hidden
    column: Any
    lo: float = 0.0
    hi: float = 0.0
    nan: bool = False
    integer: bool = False
    categories: list[Any] = field(default_factory=list)


class Space:
    """The variables and monomials both models are read over (shared, so their coefficients compare)."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.monomials: list[tuple[int, ...]] = [()]
        self.index: dict[tuple[int, ...], int] = {(): 0}
        self.vars: list[tuple] = []
        self.var_index: dict[tuple, int] = {}
        self.var_group: list[int] = []
        self.groups: list[Group] = []
        self.group_index: dict[Any, int] = {}
        self.hidden: dict[str, dict[tuple[int, int], tuple[float, float]]] = {}
        self.version = 0  # bumped when an interval changes (cached tables are then stale)
        #: norm balls the domain also lies in: (norm "l1" | "l2", the columns, signed). A normalised text vector
        #: (TfidfVectorizer's rows) is in the box [0, 1]^n and in the unit l2 ball: a linear function's largest
        #: value over both is the smaller of the two maxima (the ball's: the norm of its positive coefficients)
        self.balls: list[tuple[str, frozenset, bool]] = []
        #: a ball's radius when it is not 1 (a Normalizer's rows as scikit-learn rounds them: 1 + a few ulps)
        self.ball_radius: dict[frozenset, float] = {}
        #: (columns, K): at most K of these columns are nonzero at once (a document holds at most K distinct terms):
        #: a dot product over them adds at most K nonzero terms, and only those round (x + 0 is exact)
        self.nonzero: list[tuple[frozenset, int]] = []
        self.funcs_of: dict[Any, list[int]] = {}  # column -> its function variables (`func_var`)
        #: columns that take integer values only (a CountVectorizer's counts), though their box is an interval
        self.integral: set[Any] = set()
        #: (column -> vocabulary index, `documents.Documents`): these columns are the tf-idf vector of a document of
        #: that set (a dot product over them rounds as `Documents.rounding` bounds, in float32)
        self.documents: list[tuple[dict[Any, int], Any]] = []

    # -- variables and monomials --------------------------------------------------------------------------------
    def var(self, key: tuple, group: int) -> int:
        if key not in self.var_index:
            self.var_index[key] = len(self.vars)
            self.vars.append(key)
            self.var_group.append(group)
        return self.var_index[key]

    def mono(self, vs: tuple[int, ...]) -> int:
        vs = tuple(sorted(vs))
        if vs not in self.index:
            self.index[vs] = len(self.monomials)
            self.monomials.append(vs)
        return self.index[vs]

    @property
    def size(self) -> int:
        return len(self.monomials)

    def column_group(self, col: Column) -> int:
        """The group of a raw input column (created on first use from the domain)."""
        if col in self.group_index:
            return self.group_index[col]
        dc = self.domain.columns.get(col)
        if dc is None:
            raise NotSymbolic(f"the domain has no column {col[0]}[{col[1]}]")
        if dc.categories is not None:
            g = Group("categorical", col, categories=list(dc.categories), nan=dc.nan)
        else:
            if dc.lo is None or dc.hi is None or not (np.isfinite(dc.lo) and np.isfinite(dc.hi)):
                raise NotSymbolic(f"the domain's column {col[0]}[{col[1]}] is not a finite interval")
            g = Group("numeric", col, lo=float(dc.lo), hi=float(dc.hi), nan=dc.nan, integer=dc.integer)
            if dc.integer:
                self.integral.add(col)
            if dc.integer and np.ceil(dc.lo) <= np.floor(dc.hi) and np.floor(dc.hi) - np.ceil(dc.lo) < MAX_ENUM:
                # few integers: each is a point of the group (an encoder may read them as categories)
                g.categories = [int(k) for k in np.arange(np.ceil(dc.lo), np.floor(dc.hi) + 1)]
        self.group_index[col] = len(self.groups)
        self.groups.append(g)
        return len(self.groups) - 1

    def hidden_group(self, stage: int, i: int, side: str, lo: float, hi: float) -> int:
        key = ("h", stage, i)
        self.version += 1
        self.hidden.setdefault(side, {})[(stage, i)] = (float(lo), float(hi))
        if key not in self.group_index:
            self.group_index[key] = len(self.groups)
            self.groups.append(Group("hidden", key, lo=float(lo), hi=float(hi)))
        return self.group_index[key]

    def hull_hidden(self) -> None:
        """Hidden groups span both models' intervals (for the joint analysis)."""
        self.version += 1
        for g in self.groups:
            if g.kind == "hidden":
                ivs = [h[g.column[1:]] for h in self.hidden.values() if g.column[1:] in h]
                g.lo, g.hi = min(i[0] for i in ivs), max(i[1] for i in ivs)

    def multiply(self, a: int, b: int) -> int | None:
        """The monomial index of monomial a times monomial b; None when it is identically 0 (x·n, e_k·e_j)."""
        memo = self.__dict__.setdefault("_products", {})
        if (a, b) not in memo:
            memo[(a, b)] = self._multiply(a, b)
        return memo[(a, b)]

    def _multiply(self, a: int, b: int) -> int | None:
        vs = list(self.monomials[a]) + list(self.monomials[b])
        out: list[int] = []
        for v in sorted(vs):
            key = self.vars[v]
            if key[0] in ("n", "e") and v in out:  # indicators: e·e = e
                continue
            out.append(v)
        for i, v in enumerate(out):
            for w in out[i + 1:]:
                if self.var_group[v] == self.var_group[w] and v != w and self.vars[v][0] != "h":
                    return None  # x·n = 0 (x is 0 where NaN); two categories of one column exclude each other
        if len(out) > 2:
            raise NotSymbolic("a polynomial of degree above 2")
        return self.mono(tuple(out))

    # -- per-group points -----------------------------------------------------------------------------------------
    def _group_points(self, g: Group, side: str | None = None) -> list[dict[int, float]]:
        """The extreme points of a group as {variable: value} (variables absent are 0)."""
        if g.kind == "categorical":
            pts = []
            for k in range(len(g.categories)):
                v = self.var_index.get(("e", g.column, k))
                pts.append({} if v is None else {v: 1.0})
            return pts
        if g.kind == "hidden":
            lo, hi = g.lo, g.hi
            if side is not None and g.column[1:] in self.hidden.get(side, {}):
                lo, hi = self.hidden[side][g.column[1:]]
            v = self.var_index[g.column]
            return [{v: lo}, {v: hi}]
        x = self.var_index.get(("x", g.column))
        n = self.var_index.get(("n", g.column))
        if g.categories:  # an enumerated integer column: every value, with its indicator
            pts = []
            for k, val in enumerate(g.categories):
                p = {x: float(val)} if x is not None else {}
                e = self.var_index.get(("e", g.column, k))
                if e is not None:
                    p[e] = 1.0
                pts.append(p)
        else:
            pts = [{x: g.lo} if x is not None else {}, {x: g.hi} if x is not None else {}]
        funcs = self.funcs_of.get(g.column, [])
        if funcs:  # f(a x + b) of the column, monotone: its extremes are at the column's
            vals = [float(g.categories[k]) for k in range(len(pts))] if g.categories else [g.lo, g.hi]
            for p, val in zip(pts, vals):
                for f in funcs:
                    p[f] = column_function(*self.vars[f][2:], val)
        if g.nan:
            pts.append({n: 1.0} if n is not None else {})
        return pts

    def func_var(self, column: Any, name: str, a: float, b: float) -> int:
        """The variable f(a x + b) of a numeric column (0 where the column is NaN)."""
        g = self.column_group(column)
        key = ("f", column, name, float(a), float(b))
        if key not in self.var_index:
            self.version += 1
            self.funcs_of.setdefault(column, []).append(self.var(key, g))
        return self.var_index[key]

    def _monomials_by_group(self) -> tuple[dict[int, list[int]], list[int]]:
        within: dict[int, list[int]] = {}
        cross: list[int] = []
        for m, vs in enumerate(self.monomials):
            if not vs:
                continue
            gs = {self.var_group[v] for v in vs}
            if len(gs) == 1:
                within.setdefault(gs.pop(), []).append(m)
            else:
                cross.append(m)
        return within, cross

    def var_range(self, v: int, side: str | None = None) -> tuple[float, float]:
        g = self.groups[self.var_group[v]]
        vals = [p.get(v, 0.0) for p in self._group_points(g, side)]
        key = self.vars[v]
        if key[0] == "x" and g.nan:
            vals.append(0.0)
        return min(vals), max(vals)

    # -- bounds -----------------------------------------------------------------------------------------------------
    def _tables(self, side: str | None) -> tuple[list[tuple[int, np.ndarray, list[dict[int, float]], np.ndarray]],
                                                  list[int]]:
        """Per group: its monomials, extreme points and the monomials' values there (cached per state)."""
        key = (self.size, len(self.vars), side, self.version)
        cache = self.__dict__.setdefault("_table_cache", {})
        if key not in cache:
            within, cross = self._monomials_by_group()
            tabs = []
            simple: list[tuple[int, int, float, float]] = []  # (monomial, variable, lo, hi) of one-variable groups
            coupled: dict[frozenset, list[tuple[int, int, float, float]]] = {}  # those in a ball or sparsity set
            for gi, monos in within.items():
                g = self.groups[gi]
                pts = self._group_points(g, side)
                if len(monos) == 1 and len(self.monomials[monos[0]]) == 1 and len(pts) == 2 and \
                        g.kind in ("numeric", "hidden") and not g.categories:
                    v = self.monomials[monos[0]][0]
                    cols = self._coupled_id(g, monos) if (self.balls or self.nonzero) else None
                    if all(set(p) == {v} for p in pts):
                        if cols is None:
                            simple.append((monos[0], v, pts[0][v], pts[1][v]))
                        else:
                            coupled.setdefault(cols, []).append((monos[0], v, pts[0][v], pts[1][v]))
                        continue
                vals = np.stack([self._mono_values(monos, p) for p in pts], axis=1)  # [len(monos), n_pts]
                tabs.append((gi, np.asarray(monos), pts, vals))
            cache.clear()
            def cols4(rows: list[tuple[int, int, float, float]]) -> tuple[np.ndarray, ...]:
                arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
                return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], arr[:, 3]

            cache[key] = (tabs, cross, cols4(simple), {c: cols4(r) for c, r in coupled.items()})
        return cache[key]

    def maximize(self, C: np.ndarray, side: str | None = None, want_arg: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """The largest value of each polynomial (rows of C: [m, size]) over the domain, and (want_arg) the exact
        arguments (per row, the per-group extreme points chosen, as a variable-value matrix [m, n_vars]).

        Returns (max, argmax values, exact): exact is False when cross-group products were bounded by intervals.
        """
        C = self.pad(np.atleast_2d(C))
        m = C.shape[0]
        loose = False
        total = C[:, 0].copy()
        arg = np.zeros((m, len(self.vars))) if want_arg else None
        tabs, cross, (s_monos, s_vars, s_lo, s_hi), coupled = self._tables(side)
        if len(s_monos):  # groups of one variable and two extreme points, all at once
            S = C[:, s_monos]
            at_lo, at_hi = S * s_lo, S * s_hi
            total += np.maximum(at_lo, at_hi).sum(axis=1)
            if arg is not None:
                arg[:, s_vars] = np.where(at_hi > at_lo, s_hi, s_lo)
        for cols, (c_monos, c_vars, c_lo, c_hi) in coupled.items():  # the same, within a ball / sparsity set
            S = C[:, c_monos]
            at_lo, at_hi = S * c_lo, S * c_hi
            T = np.maximum(at_lo, at_hi)
            val, point = self._coupled_max(cols, T, S, bool(np.all((c_lo <= 0) & (c_hi >= 0))))
            total += val
            if arg is not None:
                box_pt = np.where(at_hi > at_lo, c_hi, c_lo)
                arg[:, c_vars] = np.where(np.isnan(point), box_pt, point)
        ball_parts: dict[int, list[Any]] = {}
        for gi, monos, pts, vals in tabs:
            sub = C[:, monos]
            if not sub.any():
                continue
            g = self.groups[gi]
            contrib = sub @ vals  # [m, n_pts]
            best = contrib.argmax(axis=1)
            top = contrib[np.arange(m), best]
            best_x = None
            if self.funcs_of.get(g.column) and len(monos) > 1:
                # x and f(x) together: the largest value may lie inside; each monomial's own largest value bounds it
                top = np.maximum(top, (sub[:, :, None] * vals[None, :, :]).max(axis=2).sum(axis=1))
                loose = True
            elif g.kind != "categorical" and not g.categories:
                top, best_x = self._interior(C, list(monos), g, side, top)
            total += top
            b = self._coupled_id(g, monos) if (self.balls or self.nonzero) else None
            if b is not None:
                part = ball_parts.setdefault(b, [[], [], [], True])
                part[0].append(top)
                part[1].append(sub[:, 0])
                part[2].append(self.var_index[("x", g.column)])
                part[3] = part[3] and g.lo <= 0.0 <= g.hi
            if arg is None:
                continue
            for r in range(m):
                if best_x is not None and best_x[r] is not None:
                    arg[r, self.var_index[("x", g.column) if g.kind == "numeric" else g.column]] = best_x[r]
                else:
                    for v, val in pts[best[r]].items():
                        arg[r, v] = val
        for cols, (tops, coefs, vs, zero_ok) in ball_parts.items():
            T = np.stack(tops, axis=1)
            box = T.sum(axis=1)
            val, point = self._coupled_max(cols, T, np.stack(coefs, axis=1), zero_ok)
            better = val < box
            total -= np.where(better, box - val, 0.0)
            if arg is not None:
                for r in np.nonzero(better)[0]:
                    arg[r, vs] = np.where(np.isnan(point[r]), arg[r, vs], point[r])
        exact = not loose
        for mo in cross:
            c = C[:, mo]
            if not np.any(c):
                continue
            exact = False
            a, b = self.monomials[mo]
            la, ha = self.var_range(a, side)
            lb, hb = self.var_range(b, side)
            prods = [la * lb, la * hb, ha * lb, ha * hb]
            total += np.maximum(c * min(prods), c * max(prods))
        return total, arg, exact

    def exact_in(self, C: np.ndarray, E: Any, u: float) -> bool:
        """Every polynomial of C is an integer combination of integral columns plus an integer, with no error,
        and its magnitude is below 1 / u: rounding it to that precision is exact."""
        C = self.pad(np.atleast_2d(C)).reshape(-1, self.size)
        if np.any(np.asarray(E) != 0) or np.any(C != np.round(C)):
            return False
        for m in np.nonzero(C[:, 1:].any(axis=0))[0] + 1:
            vs = self.monomials[m]
            if len(vs) != 1 or self.vars[vs[0]][0] != "x" or self.vars[vs[0]][1] not in self.integral:
                return False
        return bool(np.all(self.magnitude(C) < 1.0 / u))

    def _coupled_id(self, g: Group, monos: Any) -> frozenset | None:
        """The column set (a ball's, a sparsity's) a numeric group belongs to, when its only monomial is its
        variable x (else None: the box alone bounds it)."""
        if g.kind != "numeric" or g.nan or g.categories or len(monos) != 1:
            return None
        v = self.var_index.get(("x", g.column))
        if v is None or self.monomials[int(monos[0])] != (v,):
            return None
        return next((cols for _, cols, _ in self.balls if g.column in cols), None) or \
            next((cols for cols, _ in self.nonzero if g.column in cols), None)

    def _coupled_max(self, cols: frozenset, T: np.ndarray, c: np.ndarray, zero_ok: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the largest c.x over the box (per-column maxima T [m, n]) intersected with the set's ball
        and sparsity (at most k columns nonzero), and a point where it is attained (NaN: the box's point)."""
        m, n = c.shape
        best, point = T.sum(axis=1), np.full((m, n), np.nan)
        k = next((k for cs, k in self.nonzero if cs == cols), None)
        k = k if k is not None and k < n and zero_ok else None
        if k is not None:
            order = np.argsort(-T, axis=1)
            val = np.take_along_axis(T, order[:, :k], axis=1).sum(axis=1)
            pt = np.full((m, n), np.nan)
            np.put_along_axis(pt, order[:, k:], 0.0, axis=1)
            take = val < best
            best, point = np.where(take, val, best), np.where(take[:, None], pt, point)
        ball = next((b for b in self.balls if b[1] == cols), None)
        if ball is not None:
            norm, _, signed = ball
            R = self.ball_radius.get(cols, 1.0)
            cc = c if signed else np.maximum(c, 0.0)
            if norm == "l2":
                sq = cc ** 2
                if k is not None:  # a unit vector with k nonzero terms: Cauchy-Schwarz on its support
                    sq = np.where(np.argsort(np.argsort(-sq, axis=1), axis=1) < k, sq, 0.0)
                val = np.sqrt(sq.sum(axis=1))
                pt = np.where(sq > 0, cc, 0.0) / np.where(val > 0, val, 1.0)[:, None]
            else:
                a = np.abs(cc)
                j = a.argmax(axis=1)
                val = a[np.arange(m), j]
                pt = np.zeros_like(c)
                pt[np.arange(m), j] = np.sign(cc[np.arange(m), j])
            val, pt = val * R, pt * R
            take = val < best
            best, point = np.where(take, val, best), np.where(take[:, None], pt, point)
        return best, point

    def terms(self, C: np.ndarray, E: Any) -> int:
        """How many of the elements of a 1-d value (polynomials C [n, size], errors E) may be nonzero at once: the
        n of a dot product's rounding bound gamma_n (exact zeros add no rounding)."""
        C = self.pad(C).reshape(-1, self.size)
        E = np.broadcast_to(np.asarray(E, dtype=np.float64), (C.shape[0],))
        live = [j for j in range(C.shape[0]) if np.any(C[j]) or E[j] > 0]
        n = len(live)
        for cols, k in self.nonzero:
            hits = 0
            for j in live:
                nz = np.nonzero(C[j])[0]
                if len(nz) == 1 and nz[0] != 0 and len(self.monomials[nz[0]]) == 1 \
                        and self.vars[self.monomials[nz[0]][0]][1] in cols:
                    hits += 1
            n -= max(0, hits - k)
        return max(n, 1)

    def abs_dot(self, A: np.ndarray, C: np.ndarray, side: str | None = None) -> np.ndarray:
        """A bound on sum_j A[k, j] |s_j| over the domain (A >= 0; s_j the polynomials of C [n, size]): A times
        the elements' magnitudes, or over a ball, for elements that are its variables, the ball's bound."""
        C = self.pad(C)
        mag = self.magnitude(C, side)
        out = A @ mag
        sets = {cols: norm for norm, cols, _ in self.balls}
        for cols, _ in self.nonzero:
            sets.setdefault(cols, None)
        for cols, norm in sets.items():
            rows, coef = [], []
            for j in range(C.shape[0]):
                nz = np.nonzero(C[j])[0]
                if len(nz) == 1 and nz[0] != 0:
                    vs = self.monomials[nz[0]]
                    if len(vs) == 1 and self.vars[vs[0]][0] == "x" and self.vars[vs[0]][1] in cols \
                            and self.groups[self.var_group[vs[0]]].lo <= 0.0:
                        rows.append(j)
                        coef.append(abs(C[j, nz[0]]))
            if not rows:
                continue
            T = A[:, rows] * mag[rows]  # each term's largest |contribution|
            box = T.sum(axis=1)
            best = box
            k = next((k for cs, k in self.nonzero if cs == cols), None)
            if k is not None and k < len(rows):
                best = np.minimum(best, -np.sort(-T, axis=1)[:, :k].sum(axis=1))
            if norm is not None:
                a = A[:, rows] * np.asarray(coef)
                if norm == "l2":
                    sq = a ** 2
                    if k is not None and k < len(rows):
                        sq = -np.sort(-sq, axis=1)[:, :k]
                    best = np.minimum(best, np.sqrt(sq.sum(axis=1)) * self.ball_radius.get(cols, 1.0))
                else:
                    best = np.minimum(best, a.max(axis=1) * self.ball_radius.get(cols, 1.0))
            out = out - box + best
        return out

    def document_rows(self, C: np.ndarray, E: Any) -> tuple[Any, np.ndarray, np.ndarray] | None:
        """When every element of a 1-d value (polynomials C [n, size], errors E) that may be nonzero is a multiple of
        one column of a `documents` set (with at most the rounding of a float32 input as error): (the set's
        Documents, each element's vocabulary index (-1: the element is 0), its coefficient); else None."""
        if not self.documents:
            return None
        C = self.pad(C).reshape(-1, self.size)
        E = np.broadcast_to(np.asarray(E, dtype=np.float64), (C.shape[0],))
        for where, docs in self.documents:
            idx = np.full(C.shape[0], -1)
            coef = np.zeros(C.shape[0])
            ok = True
            for j in range(C.shape[0]):
                nz = np.nonzero(C[j])[0]
                if not len(nz) and E[j] == 0:
                    continue
                if len(nz) != 1 or nz[0] == 0 or len(self.monomials[nz[0]]) != 1:
                    ok = False
                    break
                v = self.monomials[nz[0]][0]
                key = self.vars[v]
                g = self.groups[self.var_group[v]]
                # the element may carry the rounding of a vector fed as float32 (relative, within the set's
                # allowance for the converted vector), no other error
                if key[0] != "x" or key[1] not in where or \
                        E[j] > (U32 + U64) * max(abs(g.lo), abs(g.hi)) * (1 + 1e-9):
                    ok = False
                    break
                idx[j], coef[j] = where[key[1]], C[j, nz[0]]
            live = idx[idx >= 0]
            if ok and len(live) and len(np.unique(live)) == len(live):
                return docs, idx, coef
        return None

    def partial_sums(self, W: np.ndarray, C: np.ndarray, E: Any, side: str | None, n: int) -> np.ndarray | None:
        """Per output k of a dot product sum_i W[i, k] s_i (s_i the polynomials of C [m, size], each off by at most
        E[i]), a bound on |the exact sum of any j of its terms|, j = 2..n ([n - 1, k]; `sum_rounding`'s
        `partial`), when some s_i are the variables of a norm ball (else None). Such a subset's sum is at most the
        other terms' j largest magnitudes, plus over the ball, by Cauchy-Schwarz, the norm of the j largest of
        its coefficients (l2; l1: the largest one) -- and when the ball's variables are nonnegative (a tf-idf
        row), of its positive or of its negative coefficients, whichever is larger (terms of opposite signs
        cancel: a partial sum of nonnegative x is at most the positive terms' sum or the negative terms') --
        plus the terms' errors |W[i, k]| E[i]. At most K variables of a `nonzero` set count."""
        if not self.balls or n < 2:
            return None
        C = self.pad(C)
        W = np.asarray(W, dtype=np.float64)
        m = C.shape[0]
        E = np.broadcast_to(np.asarray(E, dtype=np.float64), (m,))
        mag = self.magnitude(C, side)
        aW = np.abs(W)
        best = None
        for norm, cols, signed in self.balls:
            rows, coef, nonneg = [], [], True
            for j in range(m):
                nz = np.nonzero(C[j])[0]
                if len(nz) == 1 and nz[0] != 0:
                    vs = self.monomials[nz[0]]
                    if len(vs) == 1 and self.vars[vs[0]][0] == "x" and self.vars[vs[0]][1] in cols:
                        g = self.groups[self.var_group[vs[0]]]
                        if g.lo > 0.0 or g.hi < 0.0 or g.nan:  # outside the ball's box: not one of its points
                            continue
                        nonneg = nonneg and g.lo >= 0.0
                        rows.append(j)
                        coef.append(C[j, nz[0]])
            if len(rows) < 2:
                continue
            r = len(rows)
            K = next((k for cs, k in self.nonzero if cs == cols), r)
            rest = np.setdiff1d(np.arange(m), rows)

            def tops(v: np.ndarray) -> np.ndarray:  # [len(v) + 1, k]: the sums of the 0..len(v) largest
                return np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(-np.sort(-v, axis=0), axis=0)])

            restT = tops(aW[rest] * (mag[rest] + E[rest])[:, None])
            errT = tops(aW[rows] * E[rows][:, None])
            a = W[rows] * np.asarray(coef)[:, None]  # [r, k]: the ball variables' coefficients

            def ball(v: np.ndarray) -> np.ndarray:  # [r + 1, k]: the ball's bound on the sum of 0..r terms
                if norm == "l2":
                    return np.sqrt(tops(v ** 2))
                return np.concatenate([np.zeros((1, v.shape[1])), np.maximum.accumulate(-np.sort(-v, axis=0))])

            ballT = np.maximum(ball(np.maximum(a, 0.0)), ball(np.maximum(-a, 0.0))) \
                if nonneg and not signed else ball(np.abs(a))
            ballT = ballT * self.ball_radius.get(cols, 1.0)
            j = np.arange(2, n + 1)
            T = restT[np.minimum(j, len(rest))] + ballT[np.minimum(j, min(r, K))] + errT[np.minimum(j, r)]
            best = T if best is None else np.minimum(best, T)
        return best

    def _interior(self, C: np.ndarray, monos: list[int], g: Group, side: str | None,
                  top: np.ndarray) -> tuple[np.ndarray, list[float | None]]:
        """A group's quadratic term a x² + b x peaks inside [lo, hi] when a < 0: add that vertex."""
        key = ("x", g.column) if g.kind == "numeric" else g.column
        v = self.var_index.get(key)
        best: list[float | None] = [None] * C.shape[0]
        if v is None or (v,) not in self.index or (v, v) not in self.index:
            return top, best
        i1, i2 = self.index[(v,)], self.index[(v, v)]
        lo, hi = (g.lo, g.hi)
        if g.kind == "hidden" and side is not None and g.column[1:] in self.hidden.get(side, {}):
            lo, hi = self.hidden[side][g.column[1:]]
        a, b = C[:, i2], C[:, i1]
        top = top.copy()
        for r in np.nonzero(a < 0)[0]:
            xs = -b[r] / (2 * a[r])
            cands = [np.floor(xs), np.ceil(xs)] if g.integer else [xs]
            for x in cands:
                if lo <= x <= hi:
                    val = a[r] * x * x + b[r] * x
                    if val > top[r]:
                        top[r], best[r] = val, float(x)
        return top, best

    def _mono_values(self, monos: list[int], point: dict[int, float]) -> np.ndarray:
        return np.array([np.prod([point.get(v, 0.0) for v in self.monomials[mo]]) for mo in monos])

    def range(self, C: np.ndarray, side: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) of each polynomial of C [..., size] over the domain (sound; exact unless cross terms)."""
        shape = C.shape[:-1]
        flat = self.pad(C.reshape(-1, C.shape[-1]))
        hi = self.maximize(flat, side)[0]
        lo = -self.maximize(-flat, side)[0]
        centred = self.centred_range(flat)
        if centred is not None:  # both bounds are sound: keep the tighter of each
            lo, hi = np.maximum(lo, centred[0]), np.minimum(hi, centred[1])
        return lo.reshape(shape), hi.reshape(shape)

    def centred_range(self, C: np.ndarray, max_nan: int = 3) -> tuple[np.ndarray, np.ndarray] | None:
        """(min, max) of each polynomial of C [m, size] by its centred form, when it has cross-group products
        (PolynomialFeatures' x_i x_j) of numeric columns only (else None: `maximize` is exact or this does not
        apply). Each column is written x = c + d with c its interval's centre and |d| <= r its half-width; then
        p = p(c) + sum_i (g_i d_i + q_i d_i^2) + sum_{i<j} q_ij d_i d_j, whose per-column parts are maximised
        exactly on [-r_i, r_i] and whose cross terms lie within +-|q_ij| r_i r_j. Far tighter than the products of
        the raw intervals when the box is far from 0 (a year column times an area column: p's terms cancel).
        A column that may be NaN (x = 0, n = 1 there) is taken both ways (at most `max_nan` such columns)."""
        nzm = np.nonzero(np.any(C != 0, axis=0))[0]
        if not any(len(self.monomials[m]) == 2 and self.var_group[self.monomials[m][0]]
                   != self.var_group[self.monomials[m][1]] for m in nzm):
            return None
        used = sorted({v for m in nzm for v in self.monomials[m]})
        for v in used:
            key = self.vars[v]
            if key[0] not in ("x", "n") or self.groups[self.var_group[v]].kind != "numeric":
                return None
        nan_groups = sorted({self.var_group[v] for v in used if self.groups[self.var_group[v]].nan})
        if len(nan_groups) > max_nan:
            return None
        m_rows = C.shape[0]
        lo_all = np.full(m_rows, np.inf)
        hi_all = np.full(m_rows, -np.inf)
        for case in range(2 ** len(nan_groups)):
            missing = {g for i, g in enumerate(nan_groups) if case >> i & 1}
            c, r = {}, {}
            for v in used:
                g = self.groups[self.var_group[v]]
                miss = self.var_group[v] in missing
                if self.vars[v][0] == "n":
                    c[v], r[v] = (1.0 if miss else 0.0), 0.0
                elif miss:
                    c[v], r[v] = 0.0, 0.0
                else:
                    c[v], r[v] = (g.lo + g.hi) / 2, (g.hi - g.lo) / 2
            const = np.zeros(m_rows)
            size = np.zeros(m_rows)  # sum of |terms|: the float64 analysis' own rounding is relative to it
            lin = {v: np.zeros(m_rows) for v in used}
            quad = {v: np.zeros(m_rows) for v in used}
            cross = np.zeros(m_rows)
            for m in nzm:
                a = C[:, m]
                vs = self.monomials[m]
                if not vs:
                    const += a
                    size += np.abs(a)
                elif len(vs) == 1:
                    v = vs[0]
                    const += a * c[v]
                    lin[v] += a
                    size += np.abs(a) * (abs(c[v]) + r[v])
                elif vs[0] == vs[1]:
                    v = vs[0]
                    const += a * c[v] ** 2
                    lin[v] += 2 * a * c[v]
                    quad[v] += a
                    size += np.abs(a) * (abs(c[v]) + r[v]) ** 2
                else:
                    v, w = vs
                    const += a * c[v] * c[w]
                    lin[v] += a * c[w]
                    lin[w] += a * c[v]
                    cross += np.abs(a) * r[v] * r[w]
                    size += np.abs(a) * (abs(c[v]) + r[v]) * (abs(c[w]) + r[w])
            lo, hi = const - cross, const + cross
            for v in used:
                rv = r[v]
                if rv == 0.0:
                    continue
                g_, q_ = lin[v], quad[v]
                ends = np.stack([-g_ * rv + q_ * rv * rv, g_ * rv + q_ * rv * rv])
                pmin, pmax = ends.min(axis=0), ends.max(axis=0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    d = np.where(q_ != 0, -g_ / (2 * q_), np.nan)
                inside = np.abs(d) <= rv
                vert = np.where(inside, g_ * d + q_ * d * d, np.nan)
                pmin = np.where(inside, np.minimum(pmin, vert), pmin)
                pmax = np.where(inside, np.maximum(pmax, vert), pmax)
                lo, hi = lo + pmin, hi + pmax
            slack = 64 * U64 * size * (1 + len(nzm))  # the float64 arithmetic of this expansion
            lo_all = np.minimum(lo_all, lo - slack)
            hi_all = np.maximum(hi_all, hi + slack)
        return lo_all, hi_all

    def magnitude(self, C: np.ndarray, side: str | None = None) -> np.ndarray:
        lo, hi = self.range(C, side)
        return np.maximum(np.abs(lo), np.abs(hi))

    def pad(self, C: np.ndarray) -> np.ndarray:
        if C.shape[-1] == self.size:
            return C
        return np.concatenate([C, np.zeros(C.shape[:-1] + (self.size - C.shape[-1],))], axis=-1)

    def evaluate(self, C: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The polynomials of C [..., size] at variable values [n_points, n_vars] -> [n_points, ...]."""
        C = self.pad(C)
        values = np.concatenate([values, np.zeros((values.shape[0], len(self.vars) - values.shape[1]))], axis=1)
        for column, fs in self.funcs_of.items():  # function variables follow their column's value
            x, nn = self.var_index.get(("x", column)), self.var_index.get(("n", column))
            for f in fs:
                if x is None:
                    continue
                with np.errstate(all="ignore"):
                    v = column_function(*self.vars[f][2:], values[:, x])
                missing = values[:, nn] > 0.5 if nn is not None else np.zeros(len(values), dtype=bool)
                values[:, f] = np.where(missing, 0.0, v)
        mv = np.ones((values.shape[0], self.size))
        by_degree = self.__dict__.setdefault("_by_degree", {})
        if by_degree.get("size") != self.size:
            by_degree.clear()
            by_degree["size"] = self.size
            for deg in (1, 2):
                by_degree[deg] = [m for m, vs in enumerate(self.monomials) if len(vs) == deg]
        for deg in (1, 2):
            ms = by_degree[deg]
            if not ms:
                continue
            idx = np.array([self.monomials[m] for m in ms])
            mv[:, ms] = values[:, idx[:, 0]] if deg == 1 else values[:, idx[:, 0]] * values[:, idx[:, 1]]
        shape = C.shape[:-1]
        return (mv @ C.reshape(-1, self.size).T).reshape((values.shape[0],) + shape)


@dataclass
class Sym:
    """A numeric tensor of one row: polynomials C [*shape, monomials], rounding error bound E [*shape], and the
    stage (0: the raw inputs' variables; s: the variables after the s-th nonlinearity)."""

    C: np.ndarray
    E: np.ndarray
    stage: int = 0
    # per element, the variable of the NaN indicator that makes it NaN (a raw column not imputed yet): -1 none,
    # -2 several
    nan: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.C.shape[:-1]

    def padded(self, space: Space) -> "Sym":
        return Sym(space.pad(self.C), self.E, self.stage, self.nan)


@dataclass
class Cat:
    """A string (or otherwise non-numeric) tensor of one row: per element, (group of the raw categorical column,
    the value for each of its categories); or a constant (group None, (value,))."""

    items: np.ndarray  # object [*shape] of (group | None, tuple of values)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.items.shape


def const_sym(value: Any, space: Space, stage: int = 0) -> Sym:
    a = np.asarray(value, dtype=np.float64)
    C = np.zeros(a.shape + (space.size,))
    C[..., 0] = a
    return Sym(C, np.zeros(a.shape), stage)
