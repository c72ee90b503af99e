"""Imputers: SimpleImputer, MissingIndicator, KNNImputer, IterativeImputer."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter
from .common import affine, linear_coefs


@sklearn_converter("sklearn.impute.MissingIndicator", kind="transformer")
def missing_indicator(em: Emitter, est: Any) -> list[Any]:
    from onnx import TensorProto

    x = em.input()
    cols = em.node("Gather", [x, em.const(np.asarray(est.features_, dtype=np.int64), dtype=np.int64)], "cols",
                   axis=1)
    mv = est.missing_values
    if isinstance(mv, float) and np.isnan(mv):
        miss = em.node("IsNaN", [cols], "miss")
    else:
        miss = em.node("Equal", [cols, em.const(float(mv))], "miss")
    return [em.node("Cast", [miss], "missf", to=TensorProto.BOOL)]


@sklearn_converter("sklearn.impute.SimpleImputer", kind="transformer", replaces=True)
def simple_imputer(em: Emitter, est: Any) -> list[Any]:
    """SimpleImputer in the input's dtype (skl2onnx's `Imputer` node has no double kernel in onnxruntime), on
    numbers and on strings, with `add_indicator`.

    In a string input the empty string is a missing value (ONNX strings have no NaN): NaN, None and pd.NA in a
    DataFrame's string column are fed as "" (`portable.formats.sklearn.MISSING_STRING`).
    """
    stats = np.asarray(est.statistics_)
    strings = type(em.operator.inputs[0].type).__name__ == "StringTensorType"
    mv = est.missing_values
    if strings:
        if est.add_indicator:
            raise UnsupportedModelError("SimpleImputer(add_indicator=True) on string columns mixes strings and "
                                        "indicator numbers in one output; ONNX tensors have one type")
        x = em.operator.inputs[0].full_name
        token = mv if isinstance(mv, str) else ""
        miss = em.node("Equal", [x, em.const(np.asarray([token]))], "miss")
        if not isinstance(mv, str) and mv is not None and not _is_nan(mv):
            miss = em.node("Or", [miss, em.node("Equal", [x, em.const(np.asarray([str(mv)]))], "miss2")], "miss")
        keep = np.array([i for i, v in enumerate(stats) if isinstance(v, str) or not _is_nan(v)], dtype=np.int64)
        fill = np.asarray(["" if not isinstance(v, str) and _is_nan(v) else str(v) for v in stats])
        filled = em.node("Where", [miss, em.const(fill[None, :]), x], "filled")
        if len(keep) != len(stats) and not getattr(est, "keep_empty_features", False):
            filled = em.node("Gather", [filled, em.const(keep, dtype=np.int64)], "kept", axis=1)
        return [filled]
    stats = np.asarray([np.nan if v is None else float(v) for v in stats.ravel()], dtype=np.float64)
    keep = np.flatnonzero(~np.isnan(stats)) if not getattr(est, "keep_empty_features", False) else \
        np.arange(len(stats))
    x = em.input()
    miss = em.node("IsNaN", [x], "miss") if mv is None or _is_nan(mv) else \
        em.node("Equal", [x, em.const(float(mv))], "miss")
    filled = em.node("Where", [miss, em.const(np.nan_to_num(stats, nan=0.0)[None, :]), x], "filled")
    if len(keep) != len(stats):
        filled = em.node("Gather", [filled, em.const(keep, dtype=np.int64)], "kept", axis=1)
    if est.add_indicator and est.indicator_ is not None and len(est.indicator_.features_):
        cols = em.node("Gather", [miss, em.const(np.asarray(est.indicator_.features_, dtype=np.int64),
                                                 dtype=np.int64)], "indcols", axis=1)
        ind = em.node("Cast", [cols], "ind", to=11 if em.double else 1)
        filled = em.node("Concat", [filled, ind], "withind", axis=1)
    return [filled]


def _is_nan(v: Any) -> bool:
    try:
        return bool(v != v) or v is None or str(v) == "<NA>"
    except (TypeError, ValueError):
        return str(v) == "<NA>"


@sklearn_converter("sklearn.impute.KNNImputer", kind="transformer", replaces=True)
def knn_imputer(em: Emitter, est: Any) -> list[Any]:
    """Mean of the k nearest donors by nan-euclidean distance, per column, in the input's dtype."""
    mv = est.missing_values
    if not (isinstance(mv, float) and np.isnan(mv)) or est.weights != "uniform" or est.add_indicator or \
            est.metric != "nan_euclidean":
        raise UseSkl2onnx
    fit = np.asarray(est._fit_X, dtype=np.float64)
    mask_fit = np.asarray(est._mask_fit_X, dtype=bool)
    valid = np.asarray(est._valid_mask, dtype=bool)
    n_feat = fit.shape[1]
    x = em.input()
    diff = em.node("Sub", [em.node("Unsqueeze", [x, em.const([1], dtype=np.int64)], "x3"),
                           em.const(fit[None, :, :])], "diff")
    present = em.node("Not", [em.node("IsNaN", [diff], "nd")], "present")
    sq = em.node("Where", [present, em.node("Mul", [diff, diff], "d2"), em.const(0.0)], "sq")
    count = em.reduce("ReduceSum", em.node("Cast", [present], "pf", to=11 if em.double else 1), 2)
    dist = em.node("Sqrt", [em.node("Div", [em.node("Mul", [em.reduce("ReduceSum", sq, 2), em.const(float(n_feat))],
                                                    "scaled"), count], "d2w")], "dist")
    big = em.node("Where", [em.node("IsNaN", [dist], "dn"), em.const(np.inf), dist], "dinf")
    cols = []
    for c in range(n_feat):
        if not valid[c] and not getattr(est, "keep_empty_features", False):
            continue
        xc = em.node("Gather", [x, em.const([c], dtype=np.int64)], "xc", axis=1)
        donors = np.flatnonzero(~mask_fit[:, c])
        if not valid[c] or len(donors) == 0:
            cols.append(em.node("Where", [em.node("IsNaN", [xc], "m"), em.const(0.0), xc], "col"))
            continue
        k = min(est.n_neighbors, len(donors))
        dd = em.node("Gather", [big, em.const(donors.astype(np.int64), dtype=np.int64)], "dd", axis=1)
        vals, idx = em.topk(dd, k, largest=False)
        finite = em.node("Cast", [em.node("Less", [vals, em.const(np.inf)], "fin")], "finf",
                         to=11 if em.double else 1)
        picked = em.node("Gather", [em.const(fit[donors, c]), idx], "picked", axis=0)
        total = em.reduce("ReduceSum", em.node("Mul", [picked, finite], "pw"), 1, keepdims=1)
        n = em.reduce("ReduceSum", finite, 1, keepdims=1)
        mean = em.node("Div", [total, n], "mean")
        col_mean = float(np.mean(fit[donors, c]))
        imputed = em.node("Where", [em.node("Greater", [n, em.const(0.0)], "any"), mean, em.const(col_mean)], "imp")
        cols.append(em.node("Where", [em.node("IsNaN", [xc], "m"), imputed, xc], "col"))
    return [em.node("Concat", cols, "imputed", axis=1) if len(cols) > 1 else cols[0]]


@sklearn_converter("sklearn.impute.IterativeImputer", kind="transformer")
def iterative_imputer(em: Emitter, est: Any) -> list[Any]:
    """Mean imputation, then each fitted round-robin step: a linear model of the other columns, clipped."""
    mv = est.missing_values
    if not (isinstance(mv, float) and np.isnan(mv)) or est.sample_posterior or est.add_indicator:
        raise UnsupportedModelError("IterativeImputer converts with missing_values=nan, sample_posterior=False "
                                    "and add_indicator=False")
    x = em.input()
    empty = np.asarray(est._is_empty_feature, dtype=bool)
    keep = np.arange(len(empty)) if est.keep_empty_features else np.flatnonzero(~empty)
    stats = np.nan_to_num(np.asarray(est.initial_imputer_.statistics_, dtype=np.float64))
    miss = em.node("IsNaN", [x], "miss")
    if est.keep_empty_features:  # empty columns are not "missing": they keep the initial imputation
        miss = em.node("And", [miss, em.const(~empty[None, :], dtype=bool)], "missk")
    filled = em.node("Where", [em.node("IsNaN", [x], "nan"), em.const(stats[None, :]), x], "filled")
    cols, misses = [], []
    for j in keep:
        idx = em.const([int(j)], dtype=np.int64)
        cols.append(em.node("Gather", [filled, idx], "col", axis=1))
        misses.append(em.node("Gather", [miss, idx], "mcol", axis=1))
    lo, hi = np.asarray(est._min_value, dtype=np.float64), np.asarray(est._max_value, dtype=np.float64)
    for step in est.imputation_sequence_ if est.n_iter_ else []:
        lin = linear_coefs(step.estimator)
        if lin is None:
            raise UnsupportedModelError(f"IterativeImputer converts with linear estimators; this one uses "
                                        f"{type(step.estimator).__name__}")
        f, nb = int(step.feat_idx), [int(i) for i in step.neighbor_feat_idx]
        xin = em.node("Concat", [cols[i] for i in nb], "nb", axis=1) if len(nb) > 1 else cols[nb[0]]
        pred = em.node("Max", [em.node("Min", [affine(em, xin, lin[0], lin[1][None, :]), em.const(hi[f])],
                                       "lo"), em.const(lo[f])], "clipped")
        cols[f] = em.node("Where", [misses[f], pred, cols[f]], "imputed")
    return [em.node("Concat", cols, "out", axis=1) if len(cols) > 1 else cols[0]]
