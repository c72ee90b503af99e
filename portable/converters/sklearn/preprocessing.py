"""Preprocessing transformers skl2onnx 1.20 lacks or converts in float32 only."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter


@sklearn_converter("sklearn.feature_selection.SequentialFeatureSelector", kind="transformer")
def feature_selector(em: Emitter, est: Any) -> list[Any]:
    keep = np.asarray(est.get_support(indices=True), dtype=np.int64)
    if keep.size == 0:
        raise UnsupportedModelError(f"{type(est).__name__} selected no feature: its output is empty")
    return [em.node("Gather", [em.input(), em.const(keep, dtype=np.int64)], "selected", axis=1)]


@sklearn_converter("sklearn.preprocessing.Binarizer", kind="transformer", replaces=True)
def binarizer(em: Emitter, est: Any) -> list[Any]:
    """`x > threshold`. In float32 the threshold is the largest float32 <= it: for float32 x, `x > t` exactly when
    `x > floor32(t)` (skl2onnx rounds it to nearest, so x = float32(0.2) > 0.2 came out 0 instead of 1)."""
    from .trees import floor32

    t = float(est.threshold)
    c = np.asarray(t if em.double else float(floor32(np.array([t]))[0]))
    gt = em.node("Greater", [em.input(), em.const(c)], "gt")
    return [em.node("Cast", [gt], "binary", to=11 if em.double else 1)]


@sklearn_converter("sklearn.preprocessing.Normalizer", kind="transformer", replaces=True)
def normalizer(em: Emitter, est: Any) -> list[Any]:
    """Each row divided by its norm, as `sklearn.preprocessing.normalize`: l1 = sum |x|, l2 = sqrt(sum x^2),
    max = max |x|; a norm below 10 eps(float64) counts as 1 (`_handle_zeros_in_scale`), so a zero row stays 0.

    skl2onnx writes ONNX's `Normalizer`, whose MAX divides by the largest signed value: a row whose largest
    magnitude is negative came out scaled by a wrong (even negative) norm, and a zero row gave NaN. In a float32
    artifact the norm is taken in float64 (`normalize`): scikit-learn normalises the float64 row, and a float32
    norm with a float32 threshold (10 eps32 = 1.2e-6) left rows of norm 1e-7 unnormalised.
    """
    return [normalize(em, em.input(), est, ())]


# the elementwise scalers a Normalizer reads in float64 with them (`ScaledNormalizer`)
NORMALIZER_SCALERS = ("StandardScaler", "RobustScaler", "MaxAbsScaler", "MinMaxScaler")


class ScaledNormalizer:
    """Elementwise scalers (`NORMALIZER_SCALERS`) followed by a Normalizer, one step of a pipeline in a
    conversion (`bridge._fix_normalizer_chains`): x / ||x|| is discontinuous at x = 0, and a centring scaler maps
    rows of its data's range to (nearly) 0. Computed step by step in float32 (skl2onnx's Scaler: float32 offset
    and scale), the centred value of a row near the centre is the float32 rounding error of the scaling and of
    the centre, in no relation to scikit-learn's float64 value: its direction, and so the normalised row, came
    out anywhere (a float32 artifact differed from scikit-learn by up to 491 on rows of the data's box). The
    chain is computed in float64 with scikit-learn's operations in its order (subtract, then divide; multiply,
    then add), so a float32 input row gives the normaliser the very vector scikit-learn gives it; the result is
    rounded to float32 once (a relative error of each output, whose magnitude is at most 1)."""

    def __init__(self, scalers: list[Any], normalizer: Any) -> None:
        self.scalers, self.normalizer = list(scalers), normalizer

    def __sklearn_tags__(self) -> Any:  # skl2onnx's pipeline parser asks whether each step is a classifier
        return self.normalizer.__sklearn_tags__()


def scaled_normalizer(em: Emitter, wrapped: ScaledNormalizer) -> list[Any]:
    return [normalize(em, em.input(), wrapped.normalizer, wrapped.scalers)]


def chains_scalers(est: Any) -> bool:
    """Whether `est` is a scaler `ScaledNormalizer` computes exactly as scikit-learn (dense, fitted)."""
    name = type(est).__name__
    if name not in NORMALIZER_SCALERS or type(est).__module__.split(".")[0] != "sklearn":
        return False
    need = {"StandardScaler": ("mean_", "scale_"), "RobustScaler": ("center_", "scale_"),
            "MaxAbsScaler": ("scale_",), "MinMaxScaler": ("scale_", "min_")}[name]
    return all(hasattr(est, a) for a in need)


def _scale64(em: Emitter, x: str, est: Any) -> str:
    """One scaler in float64, scikit-learn's operations in its order."""
    name = type(est).__name__

    def const(v: Any) -> str:
        return em.const(np.asarray(v, dtype=np.float64).reshape(1, -1), dtype=np.float64)

    def clip(x: str, lo: float, hi: float) -> str:
        return em.node("Min", [em.node("Max", [x, em.const(lo, dtype=np.float64)], "clo"),
                               em.const(hi, dtype=np.float64)], "clipped")

    if name == "StandardScaler":
        if est.with_mean and est.mean_ is not None:
            x = em.node("Sub", [x, const(est.mean_)], "centred")
        if est.with_std and est.scale_ is not None:
            x = em.node("Div", [x, const(est.scale_)], "scaled")
    elif name == "RobustScaler":
        if est.with_centering and est.center_ is not None:
            x = em.node("Sub", [x, const(est.center_)], "centred")
        if est.with_scaling and est.scale_ is not None:
            x = em.node("Div", [x, const(est.scale_)], "scaled")
    elif name == "MaxAbsScaler":
        x = em.node("Div", [x, const(est.scale_)], "scaled")
        if getattr(est, "clip", False):
            x = clip(x, -1.0, 1.0)
    else:  # MinMaxScaler
        x = em.node("Add", [em.node("Mul", [x, const(est.scale_)], "scaled"), const(est.min_)], "shifted")
        if getattr(est, "clip", False):
            x = clip(x, float(est.feature_range[0]), float(est.feature_range[1]))
    return x


def normalize(em: Emitter, x: str, est: Any, scalers: Any) -> str:
    """`scalers` then `est` (a Normalizer) on `x`, in float64 whatever the artifact's dtype (see
    `ScaledNormalizer`), rounded once to the artifact's dtype."""
    from onnx import TensorProto

    if not em.double:
        x = em.node("Cast", [x], "x64", to=TensorProto.DOUBLE)
    for s in scalers:
        x = _scale64(em, x, s)
    if est.norm == "l1":
        norm = em.reduce("ReduceSum", em.node("Abs", [x], "absx"), 1, keepdims=1)
    elif est.norm == "l2":
        norm = em.node("Sqrt", [em.reduce("ReduceSum", em.node("Mul", [x, x], "sq"), 1, keepdims=1)], "l2")
    elif est.norm == "max":
        norm = em.reduce("ReduceMax", em.node("Abs", [x], "absx"), 1, keepdims=1)
    else:
        raise UnsupportedModelError(f"Normalizer(norm={est.norm!r}) is not a norm scikit-learn knows")
    tiny = 10 * np.finfo(np.float64).eps
    small = em.node("Less", [norm, em.const(tiny, dtype=np.float64)], "small")
    safe = em.node("Where", [small, em.const(1.0, dtype=np.float64), norm], "norm")
    out = em.node("Div", [x, safe], "normalized")
    return out if em.double else em.node("Cast", [out], "normalized32", to=TensorProto.FLOAT)


@sklearn_converter("sklearn.preprocessing.KBinsDiscretizer", kind="transformer", replaces=True)
def kbins_discretizer(em: Emitter, est: Any) -> list[Any]:
    """Bin index = number of inner edges <= x (searchsorted, side='right'); one-hot encodings made dense."""
    from .trees import ceil32

    edges = [np.asarray(e, dtype=np.float64)[1:-1] for e in est.bin_edges_]
    width = max(1, max(len(e) for e in edges))
    pad = np.full((len(edges), width), np.inf)
    for j, e in enumerate(edges):
        pad[j, :len(e)] = e
    if not em.double:
        pad = ceil32(pad).astype(np.float64)
    x = em.input()
    ge = em.node("GreaterOrEqual", [em.node("Unsqueeze", [x, em.const([2], dtype=np.int64)], "x3"),
                                    em.const(pad[None])], "ge")
    ordinal = em.reduce("ReduceSum", em.node("Cast", [ge], "gef", to=11 if em.double else 1), 2)
    if est.encode == "ordinal":
        return [ordinal]
    nb = np.asarray(est.n_bins_, dtype=np.int64)
    mb = int(nb.max())
    hot = em.node("Equal", [em.node("Unsqueeze", [ordinal, em.const([2], dtype=np.int64)], "o3"),
                            em.const(np.arange(mb, dtype=np.float64)[None, None, :])], "hot")
    flat = em.node("Reshape", [em.node("Cast", [hot], "hotf", to=11 if em.double else 1),
                               em.const([0, -1], dtype=np.int64)], "flat")
    keep = np.concatenate([j * mb + np.arange(b) for j, b in enumerate(nb)]).astype(np.int64)
    return [em.node("Gather", [flat, em.const(keep, dtype=np.int64)], "onehot", axis=1)]


@sklearn_converter("sklearn.preprocessing.PolynomialFeatures", kind="transformer", replaces=True)
def polynomial_features(em: Emitter, est: Any) -> list[Any]:
    powers = np.asarray(est.powers_, dtype=np.float64)
    x3 = em.node("Unsqueeze", [em.input(), em.const([1], dtype=np.int64)], "x3")
    terms = em.node("Pow", [x3, em.const(powers[None])], "terms")
    return [em.reduce("ReduceProd", terms, 2)]


@sklearn_converter("sklearn.preprocessing.PowerTransformer", kind="transformer", replaces=True)
def power_transformer(em: Emitter, est: Any) -> list[Any]:
    """Yeo-Johnson / Box-Cox per column (scipy's formulas, expm1/log1p spelled with Exp/Log), then scaling."""
    x = em.input()
    eps = np.finfo(np.float64).eps
    cols = []
    for i, lam in enumerate(np.asarray(est.lambdas_, dtype=np.float64)):
        c = em.node("Gather", [x, em.const([i], dtype=np.int64)], "c", axis=1)
        if est.method == "box-cox":
            logx = em.node("Log", [c], "logx")
            out = logx if lam == 0 else em.node("Div", [em.node("Sub", [em.node(
                "Exp", [em.node("Mul", [logx, em.const(lam)], "lx")], "ex"), em.const(1.0)], "em1"),
                em.const(lam)], "bc")
        else:
            pos = em.node("GreaterOrEqual", [c, em.const(0.0)], "pos")
            lp = em.node("Log", [em.node("Add", [em.node("Abs", [c], "ac"), em.const(1.0)], "a1")], "log1p")
            if abs(lam) < eps:
                p_val = lp
            else:
                p_val = em.node("Div", [em.node("Sub", [em.node("Exp", [em.node("Mul", [lp, em.const(lam)],
                                                                                "lp")], "ep"), em.const(1.0)],
                                                "pm1"), em.const(lam)], "pval")
            if abs(lam - 2) > eps:
                n_val = em.node("Neg", [em.node("Div", [em.node("Sub", [em.node("Exp", [em.node(
                    "Mul", [lp, em.const(2 - lam)], "ln")], "en"), em.const(1.0)], "nm1"), em.const(2 - lam)],
                    "nq")], "nval")
            else:
                n_val = em.node("Neg", [lp], "nval")
            out = em.node("Where", [pos, p_val, n_val], "yj")
        cols.append(out)
    y = em.node("Concat", cols, "pt", axis=1) if len(cols) > 1 else cols[0]
    if est.standardize:
        sc = est._scaler
        mean = np.asarray(sc.mean_ if sc.with_mean else np.zeros(len(cols)), dtype=np.float64)
        scale = np.asarray(sc.scale_ if sc.with_std else np.ones(len(cols)), dtype=np.float64)
        y = em.node("Div", [em.node("Sub", [y, em.const(mean[None, :])], "yc"), em.const(scale[None, :])], "ys")
    return [y]


@sklearn_converter("sklearn.preprocessing.TargetEncoder", kind="transformer", replaces=True)
def target_encoder(em: Emitter, est: Any) -> list[Any]:
    """Look each value up among the fitted categories (exact equality); unknown values get the target mean."""
    strings = type(em.operator.inputs[0].type).__name__ == "StringTensorType"
    x = em.operator.inputs[0].full_name if strings else em.input()
    n_classes = len(est.classes_) if est.target_type_ == "multiclass" else 1
    means = np.atleast_1d(np.asarray(est.target_mean_, dtype=np.float64))
    outs = []
    for e, enc in enumerate(est.encodings_):
        f = e // n_classes
        cats = np.asarray(est.categories_[f])
        col = em.node("Gather", [x, em.const([f], dtype=np.int64)], "col", axis=1)
        if strings:  # a missing value is "" in a string input; a NaN category matches it
            known = np.array([isinstance(c, str) for c in cats])
            names = np.array([c if isinstance(c, str) else "" for c in cats])
            hit = em.node("Equal", [col, em.const(names[None, :])], "hit")
            if known.all():
                hit = em.node("And", [hit, em.node("Not", [em.node("Equal", [col, em.const(np.array([[""]]))],
                                                                    "empty")], "nonempty")], "hitk")
        else:
            if cats.dtype.kind not in "fiub":
                raise UnsupportedModelError("TargetEncoder with string categories needs a string input column")
            cats = cats.astype(np.float64)
            known = ~np.isnan(cats)
            hit = em.node("Equal", [col, em.const(np.where(known, cats, 0.0)[None, :])], "hit")
            hit = em.node("And", [hit, em.const(known[None, :], dtype=bool)], "hitk")
            if not known.all():
                hit = em.node("Or", [hit, em.node("And", [em.node("IsNaN", [col], "nan"),
                                                          em.const(~known[None, :], dtype=bool)], "nanhit")],
                              "hitn")
        hitf = em.node("Cast", [hit], "hitf", to=11 if em.double else 1)
        value = em.reduce("ReduceSum", em.node("Mul", [hitf, em.const(np.asarray(enc, dtype=np.float64)[None, :])],
                                               "ev"), 1, keepdims=1)
        found = em.node("Greater", [em.reduce("ReduceSum", hitf, 1, keepdims=1), em.const(0.0)], "found")
        outs.append(em.node("Where", [found, value, em.const([[means[e % n_classes]]])], "enc"))
    return [em.node("Concat", outs, "te", axis=1) if len(outs) > 1 else outs[0]]


@sklearn_converter("sklearn.preprocessing.SplineTransformer", kind="transformer")
def spline_transformer(em: Emitter, est: Any) -> list[Any]:
    """B-spline bases as piecewise polynomials (scipy's PPoly.from_spline), evaluated by Horner's rule."""
    from scipy.interpolate import BSpline, PPoly

    deg = est.degree
    if est.extrapolation == "periodic" or (est.extrapolation == "linear" and deg == 0):
        raise UnsupportedModelError(f"SplineTransformer(extrapolation={est.extrapolation!r}, degree={deg}) is not "
                                    "supported")
    breaks, coefs, f_lo, f_hi, d_lo, d_hi, lo, hi = [], [], [], [], [], [], [], []
    for f, spl in enumerate(est.bsplines_):
        cols = [PPoly.from_spline(BSpline(spl.t, spl.c[:, j], spl.k)) for j in range(spl.c.shape[1])]
        breaks.append(cols[0].x)
        coefs.append(np.stack([p.c for p in cols], axis=-1))  # [k+1, n_int, n_splines]
        # scikit-learn 1.9 raises its loop's `degree` by one for linear extrapolation of degree <= 1, so every
        # feature after the first takes its range from the next knot: do the same
        d = deg + 1 if est.extrapolation == "linear" and deg <= 1 and f > 0 else deg
        xmin, xmax = spl.t[d], spl.t[-d - 1]
        lo.append(xmin)
        hi.append(xmax)
        f_lo.append(spl(xmin))
        f_hi.append(spl(xmax))
        d_lo.append(spl(xmin, nu=1))
        d_hi.append(spl(xmax, nu=1))
    b = np.stack(breaks)  # [F, n_int + 1]
    c = np.stack(coefs)  # [F, k+1, n_int, S]
    n_feat, k1, n_int, n_spl = c.shape
    x = em.input()
    x3 = em.node("Unsqueeze", [x, em.const([2], dtype=np.int64)], "x3")  # [N, F, 1]
    # the interval index counted in the float type (exact: a few knots) and cast once: NNEF has no integer
    # arithmetic (sum_reduce/add of an integer tensor fail its parser)
    ge = em.node("Cast", [em.node("GreaterOrEqual", [x3, em.const(b[None, :, 1:-1])], "ge")], "gef",
                 to=11 if em.double else 1)
    idxf = em.node("Add", [em.reduce("ReduceSum", ge, 2), em.const((np.arange(n_feat) * n_int)[None, :])], "idxf")
    idx = em.node("Cast", [idxf], "idx", to=7)  # [N, F]
    table = em.const(c.transpose(0, 2, 1, 3).reshape(n_feat * n_int, k1, n_spl))
    pieces = em.node("Gather", [table, idx], "pieces", axis=0)  # [N, F, k+1, S]
    left = em.node("Gather", [em.const(b[:, :-1].reshape(-1)), idx], "left", axis=0)  # [N, F]
    dx = em.node("Unsqueeze", [em.node("Sub", [x, left], "dx0"), em.const([2], dtype=np.int64)], "dx")
    val = None
    for m in range(k1):
        cm = em.node("Gather", [pieces, em.const(m, dtype=np.int64)], "cm", axis=2)  # [N, F, S]
        val = cm if val is None else em.node("Add", [em.node("Mul", [val, dx], "vdx"), cm], "horner")
    lo_a, hi_a = np.asarray(lo)[None, :, None], np.asarray(hi)[None, :, None]
    if est.extrapolation in ("constant", "linear"):
        below = em.node("Less", [x3, em.const(lo_a)], "below")
        above = em.node("Greater", [x3, em.const(hi_a)], "above")
        n_edge = deg if est.extrapolation == "constant" or deg > 1 else deg + 1
        first = np.zeros((1, n_spl), bool)
        first[0, :n_edge] = True
        last = first[:, ::-1].copy()
        if est.extrapolation == "constant":  # inside the range, scikit-learn zeroes rows outside it first
            outside = em.node("Or", [below, above], "outside")
            val = em.node("Where", [outside, em.const(0.0), val], "vin")
        if est.extrapolation == "constant":
            low_v = em.const(np.where(first, np.stack(f_lo), 0.0)[None])
            high_v = em.const(np.where(last, np.stack(f_hi), 0.0)[None])
        else:
            low_v = em.node("Mul", [em.node("Add", [em.node("Mul", [em.node("Sub", [x3, em.const(lo_a)], "dl"),
                                                                    em.const(np.stack(d_lo)[None])], "sl"),
                                                    em.const(np.stack(f_lo)[None])], "ll"),
                                    em.const(first.astype(np.float64)[None])], "lowv")
            high_v = em.node("Mul", [em.node("Add", [em.node("Mul", [em.node("Sub", [x3, em.const(hi_a)], "dh"),
                                                                     em.const(np.stack(d_hi)[None])], "sh"),
                                                     em.const(np.stack(f_hi)[None])], "lh"),
                                     em.const(last.astype(np.float64)[None])], "highv")
        val = em.node("Where", [below, low_v, val], "vlo")
        val = em.node("Where", [above, high_v, val], "vhi")
    if est.handle_missing == "zeros":
        val = em.node("Where", [em.node("IsNaN", [x3], "nan"), em.const(0.0), val], "vnan")
    if not est.include_bias:
        val = em.node("Gather", [val, em.const(np.arange(n_spl - 1), dtype=np.int64)], "nobias", axis=2)
    return [em.node("Reshape", [val, em.const([0, -1], dtype=np.int64)], "splines")]
