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
0 over the domain is not read (no bound implemented for x / ||x|| yet): not certifiable, saying so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

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
