"""Comparison of two models' outputs by output kind: labels exactly, numbers within tolerances by dtype and kind.

A label that differs only on a row where the quantity the original's label follows (its `decision_function`,
raw margin or probabilities: `portable.hints.Decision`, see `judge_on_decision`) puts the two classes within
tolerance of each other is a *near-tie*: counted separately, not as a mismatch. Without such a quantity the
original's probabilities (or scores) are used. Shapes and dtype kinds compare strictly.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SignatureMismatchError
from ..model import Model, TensorSpec


@dataclass(frozen=True)
class Tolerance:
    """|converted - original| <= atol * scale + rtol * |original|, elementwise.

    `scale` is the output's magnitude on the batch (90th percentile of |original|, at least 1) when `scaled`,
    else 1: a value
    computed in float32 carries rounding relative to the numbers summed into it, not to itself, so a regression
    output near 0 among outputs near 5,000 is as uncertain as they are. An atol the user passes is absolute.
    """

    rtol: float
    atol: float
    scaled: bool = True


# Why these numbers: float32 holds about 7 significant digits and a model sums hundreds of terms, so a correct
# float32 artifact agrees with a float64 original to ~1e-6 of the output's magnitude, and a kernel or tree sum
# whose terms cancel to ~1e-5 of it; atol 1e-4 of the magnitude (rtol 1e-5 of the value) leaves room for that. A branch taken the other way at a split, a wrong coefficient or a lost term is far larger
# (skl2onnx 1.20's float32 forest with targets in the thousands is off by up to 7.7e3 on boundary rows).
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("float32", "probability"): Tolerance(rtol=1e-4, atol=1e-5),
    ("float32", "score"): Tolerance(rtol=1e-5, atol=1e-4),
    ("float32", "value"): Tolerance(rtol=1e-5, atol=1e-4),
    ("float64", "probability"): Tolerance(rtol=1e-7, atol=1e-9),
    ("float64", "score"): Tolerance(rtol=1e-7, atol=1e-8),
    ("float64", "value"): Tolerance(rtol=1e-7, atol=1e-8),
}


_NARROW: dict[Any, str] = {}  # (dtype, dtype) -> the narrower float dtype's name
_TOLERANCES: dict[Any, Tolerance] = {}  # the arguments of tolerance_for -> its answer (a check makes few)


def tolerance_for(kind: str, dtypes: tuple[np.dtype, np.dtype], rtol: float | None = None,
                  atol: float | None = None) -> Tolerance:
    """The default tolerance for an output kind compared at the narrower of two dtypes, with overrides."""
    key = (kind, dtypes, rtol, atol)
    try:
        return _TOLERANCES[key]
    except (KeyError, TypeError):  # not seen yet, or unhashable dtype descriptions
        pass
    tol = _tolerance_for(kind, dtypes, rtol, atol)
    if len(_TOLERANCES) < 256:
        try:
            _TOLERANCES[key] = tol
        except TypeError:
            pass
    return tol


def _tolerance_for(kind: str, dtypes: tuple[np.dtype, np.dtype], rtol: float | None,
                   atol: float | None) -> Tolerance:
    narrow = _NARROW.get(dtypes)
    if narrow is None:
        narrow = "float64" if all(np.dtype(d) == np.float64 for d in dtypes if np.dtype(d).kind == "f") else "float32"
        try:
            _NARROW[dtypes] = narrow
        except TypeError:  # unhashable dtype descriptions
            pass
    base = TOLERANCES[(narrow, kind if kind in ("probability", "score") else "value")]
    return Tolerance(base.rtol if rtol is None else rtol, base.atol if atol is None else atol, scaled=atol is None)


def kind_of(spec: TensorSpec) -> str:
    if spec.kind:
        return spec.kind
    return {"label": "label", "probabilities": "probability", "scores": "score"}.get(spec.name, "value")


def scores_named(original: Model, converted: Model) -> Model:
    """skl2onnx names a classifier's decision scores `probabilities` (or `output_probability`) also for models
    without predict_proba (SVC, LinearSVC, RidgeClassifier), where portable's scikit-learn side gives `scores`: an
    ONNX model with label/probabilities checked against one with label/scores has its output read as scores (a
    renamed copy, kept on the model for the next check). Part of matching the outputs: a caller of
    `match_outputs` calls it first and runs the model it returns (the sampled and the streaming check do)."""
    outs = converted.signature.outputs
    if converted.format != "onnx" or len(outs) != 2 or {t.name for t in outs} != {"label", "probabilities"} or \
            set(original.signature.output_names) != {"label", "scores"}:
        return converted
    kept = converted.__dict__.get("_as_scores")
    if kept is None:
        from ..formats.onnx import with_output_names  # (lazily: the comparison knows no format)

        kept = with_output_names(converted, {"probabilities": "scores"},  # type: ignore[arg-type]
                                 "the ONNX model's output 'probabilities' holds decision scores (the original has "
                                 "no predict_proba): compared as 'scores'")
        converted.__dict__["_as_scores"] = kept
    return kept


def match_outputs(original: Model, converted: Model, notes: list[str] | None = None) -> list[tuple[str, str]]:
    """(name, kind) of the outputs both models have; raises SignatureMismatchError when they differ.

    Boolean and integer labels are compared by value (False/True as 0/1), with a note in `notes`: skl2onnx
    gives int64 labels for a classifier fitted on boolean targets.
    """
    sa, sb = original.signature, converted.signature
    na, nb = sa.output_names, sb.output_names
    if set(na) != set(nb):
        raise SignatureMismatchError(
            f"the models have different outputs: the original {original.format} model gives {na}, the converted "
            f"{converted.format} model gives {nb}")
    out = []
    for name in na:
        a, b = sa.output(name), sb.output(name)
        ka, kb = _dkind(a.dtype), _dkind(b.dtype)
        if {ka, kb} == {"bool", "int"}:
            if notes is not None:
                notes.append(f"output '{name}' is {a.dtype} in the original and {b.dtype} in the converted model; "
                             "compared as 0/1")
            ka = kb = "int"
        if ka != kb:
            raise SignatureMismatchError(f"output '{name}' is {a.dtype} in the original and {b.dtype} in the "
                                         "converted model")
        if len(a.shape) and len(b.shape) and len(a.shape) != len(b.shape):
            raise SignatureMismatchError(f"output '{name}' has rank {len(a.shape)} in the original and "
                                         f"{len(b.shape)} in the converted model")
        kind = kind_of(a) if a.kind else kind_of(b)
        if ka != "float" and kind != "label":
            kind = "label"  # integers, strings and booleans compare exactly
        out.append((name, kind))
    return out


_DKINDS: dict[Any, str] = {}


def _dkind(dtype: str | np.dtype) -> str:
    kind = _DKINDS.get(dtype)
    if kind is None:
        if isinstance(dtype, str) and dtype in ("str", "object", "string"):
            kind = "str"
        else:
            k = np.dtype(dtype).kind
            kind = {"f": "float", "i": "int", "u": "int", "b": "bool", "U": "str", "S": "str", "O": "str"}.get(k, k)
        _DKINDS[dtype] = kind
    return kind


@dataclass
class OutputResult:
    """How one output compared. `bad` flags mismatching rows; `severity` ranks rows (worst first)."""

    name: str
    kind: str
    dtypes: tuple[str, str]
    shapes: tuple[tuple[int, ...], tuple[int, ...]]
    mismatches: int = 0
    near_ties: int = 0
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    tolerance: Tolerance | None = None
    worst_row: int | None = None
    error: str | None = None
    bad: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)
    severity: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    differ: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)  # labels, ties too

    @property
    def ok(self) -> bool:
        return self.error is None and self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        """Every DESIGN §6 field, null where it does not apply (a label's numeric differences and tolerances,
        a number's near-ties)."""
        label = self.kind == "label"
        return {"name": self.name, "kind": self.kind, "dtype": list(self.dtypes), "exact": label,
                "max_abs_diff": None if label else self.max_abs_diff,
                "max_rel_diff": None if label else self.max_rel_diff,
                "atol": self.tolerance.atol if self.tolerance and not label else None,
                "rtol": self.tolerance.rtol if self.tolerance and not label else None,
                "mismatches": self.mismatches, "near_ties": self.near_ties if label or self.near_ties else None,
                "worst_row": self.worst_row, "error": self.error}


def compare(outputs: list[tuple[str, str]], a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], n: int,
            rtol: float | None = None, atol: float | None = None,
            tolerances: Mapping[str, Tolerance] | None = None) -> list[OutputResult]:
    """Compare the outputs `a` (original) and `b` (converted) of an `n`-row batch; a numeric output named in
    `tolerances` is compared with that tolerance as it is (not scaled by this batch's magnitudes)."""
    results = []
    numeric = {}
    for name, kind in outputs:
        va, vb = np.asarray(a[name]), np.asarray(b[name])
        r = OutputResult(name, kind, (_name(va.dtype), _name(vb.dtype)), (va.shape, vb.shape), bad=_NO_ROWS,
                         severity=_NO_VALUES, differ=_NO_ROWS)
        if va.shape != vb.shape:
            r.error = f"shape {list(vb.shape)} in the converted model, {list(va.shape)} in the original"
        elif len(va) != n:
            r.error = f"{len(va)} rows out for {n} rows in"
        elif (ka := _dkind(va.dtype)) != (kb := _dkind(vb.dtype)) and {ka, kb} != {"bool", "int"}:
            r.error = f"dtype {vb.dtype} in the converted model, {va.dtype} in the original"
        elif kind == "label":
            _labels(r, va, vb)
        else:
            tol = tolerances.get(name) if tolerances else None
            _numbers(r, va, vb, tolerance_for(kind, (va.dtype, vb.dtype), rtol, atol) if tol is None else
                     Tolerance(tol.rtol, tol.atol, scaled=False))
            numeric[name] = (kind, va, r.tolerance)
        if r.error:
            r.bad = np.ones(n, dtype=bool)
            r.severity = np.full(n, np.inf)
            r.mismatches = n
        results.append(r)
    _near_ties(results, numeric)
    return results


_NO_ROWS = np.zeros(0, dtype=bool)  # placeholders until a comparison sets a result's per-row arrays
_NO_VALUES = np.zeros(0)
_NO_ROWS.flags.writeable = _NO_VALUES.flags.writeable = False


_ZEROS: dict[tuple[int, Any], np.ndarray] = {}


def _zeros(n: int, dtype: Any) -> np.ndarray:
    """`np.zeros(n, dtype)`, read only and shared (a result's `bad` and `severity` when no row differs: nothing
    writes into them, a comparison that changes them makes new arrays)."""
    key = (n, dtype)
    z = _ZEROS.get(key)
    if z is None:
        if len(_ZEROS) >= 16:
            _ZEROS.clear()
        z = _ZEROS[key] = np.zeros(n, dtype=dtype)
        z.flags.writeable = False
    return z


def no_rows(n: int) -> np.ndarray:
    """A read-only mask of `n` rows, none set."""
    return _zeros(n, np.bool_)


_NAMES: dict[np.dtype, str] = {}


def _name(dtype: np.dtype) -> str:
    """`dtype.name`, remembered (numpy computes it in Python, which costs more than comparing 1,000 values)."""
    name = _NAMES.get(dtype)
    if name is None:
        name = _NAMES[dtype] = dtype.name
    return name


def _labels(r: OutputResult, va: np.ndarray, vb: np.ndarray) -> None:
    if va.dtype.kind in "OUS" or vb.dtype.kind in "OUS":
        try:
            va, vb = va.astype(str), vb.astype(str)
        except (TypeError, ValueError):  # rows that hold lists (a PFA emit document): compared as their repr
            va, vb = (np.array([repr(x) for x in v.tolist()]) for v in (va, vb))
    elif va.dtype.kind == "b" or vb.dtype.kind == "b":
        va, vb = va.astype(np.int64), vb.astype(np.int64)
    n = len(va)
    differ = np.not_equal(va, vb).reshape(n, -1)
    r.bad = r.differ = differ[:, 0] if differ.shape[1] == 1 else _rowwise(np.logical_or, differ)
    r.mismatches = int(np.count_nonzero(r.bad))
    if r.mismatches:
        r.severity = r.bad.astype(float)
        r.worst_row = int(np.argmax(r.bad))
    else:
        r.severity = _zeros(n, np.float64)


_TINY = float(np.finfo(np.float64).tiny)
_F64 = np.dtype(np.float64)


def _numbers(r: OutputResult, va: np.ndarray, vb: np.ndarray, tol: Tolerance) -> None:
    r.tolerance = tol
    n = len(va)
    x = va.reshape(n, -1)  # read only
    if x.dtype != _F64:
        x = x.astype(np.float64)
    if not x.size:
        r.max_abs_diff = r.max_rel_diff = 0.0
        r.bad, r.severity = np.zeros(n, dtype=bool), np.zeros(n)
        return
    y = vb.reshape(n, -1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # one pass of numpy per quantity, in place where possible
        # |x - y|, computed in float64 (y widened first: numpy's mixed-dtype loop costs four times more)
        diff = y.astype(np.float64)
        np.subtract(x, diff, out=diff)
        np.abs(diff, out=diff)
        mag = np.abs(x)
        top = float(np.maximum.reduce(diff, axis=None))  # NaN when any element is NaN
        finite = math.isfinite(top)
        if not finite:  # equal infinities and NaN on both sides agree; any other NaN does not
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
            mag = np.where(np.isfinite(mag), mag, 0.0)
            top = float(diff.max())
        # allowed = atol * scale + rtol * |x|, floored at the smallest normal number
        if tol.scaled:
            # the 90th percentile (by partition: np.percentile costs more than the rest of the comparison): far-out
            # special rows must not loosen the tolerance of every other row
            # (mag is finite here: a non-finite original value makes `top` non-finite, and then mag's
            # non-finite values were made 0 above)
            if r.kind == "probability" and float(np.maximum.reduce(mag, axis=None)) <= 1.0:
                scale = 1.0  # no value above 1, so no percentile above 1: one pass instead of a partition
            else:
                flat = mag.reshape(-1)
                if flat.size > 512:  # an evenly strided sample estimates the percentile well enough
                    flat = flat[:: flat.size // 256]
                k = int(0.9 * (flat.size - 1))
                part = flat.copy()  # what np.partition does, without its dispatch
                part.partition(k)
                scale = max(1.0, float(part[k]))
            if scale != 1.0:
                tol = _absolute(tol, scale)
                r.tolerance = tol  # the report gives the absolute tolerance it used
        allowed = np.multiply(mag, tol.rtol)
        allowed += tol.atol
        if not tol.atol > _TINY:
            np.maximum(allowed, _TINY, out=allowed)
        ratio = np.divide(diff, allowed, out=allowed)
        rel = np.divide(diff, mag, out=mag if finite else None)  # no relative difference where |x| = 0:
        top_rel = float(np.maximum.reduce(rel, axis=None))  # 0/0 and d/0 make it non-finite, then fixed
        if not math.isfinite(top_rel):
            zero = (np.abs(x) if finite else np.where(np.isfinite(x), np.abs(x), 0.0)) == 0
            rel[zero] = 0.0
            top_rel = float(np.maximum.reduce(rel, axis=None))
    # row maxima column by column: numpy's axis=1 reduction over a few columns is ten times slower
    r.severity = ratio.reshape(n) if ratio.shape[1] == 1 else _rowwise(np.maximum, ratio)
    r.worst_row = int(r.severity.argmax())
    if r.severity[r.worst_row] > 1.0:
        r.bad = r.severity > 1.0
        r.mismatches = int(np.count_nonzero(r.bad))
    else:  # no row is beyond the tolerance
        r.bad = no_rows(n)
        r.mismatches = 0
    r.max_abs_diff = top
    r.max_rel_diff = top_rel


_ABSOLUTE: dict[tuple[float, float, float], Tolerance] = {}


def _absolute(tol: Tolerance, scale: float) -> Tolerance:
    """`Tolerance(tol.rtol, tol.atol * scale, scaled=False)`, remembered for the latest few (a pair checked again
    on the same rows scales its tolerance the same way: the frozen dataclass costs more to make than to find)."""
    key = (tol.rtol, tol.atol, scale)
    got = _ABSOLUTE.get(key)
    if got is None:
        if len(_ABSOLUTE) >= 256:
            _ABSOLUTE.clear()
        got = _ABSOLUTE[key] = Tolerance(tol.rtol, tol.atol * scale, scaled=False)
    return got


def _rowwise(op: np.ufunc, m: np.ndarray) -> np.ndarray:
    """`op` reduced along each row of a 2-D array (max, or, ...), as a loop over its columns when it has few."""
    if m.shape[1] > 32:
        return op.reduce(m, axis=1)
    if not m.shape[1]:  # rows of no values (an empty array output): nothing differs
        return np.zeros(m.shape[0], dtype=m.dtype)
    out = m[:, 0].copy()
    for j in range(1, m.shape[1]):
        op(out, m[:, j], out=out)
    return out


def _near_ties(results: list[OutputResult], numeric: dict[str, tuple[str, np.ndarray, Tolerance]]) -> None:
    """Label mismatches on rows where the original's top two probabilities (or scores) tie within tolerance."""
    if not any(r.kind == "label" and r.mismatches and not r.error for r in results):
        return
    source = next(((v, t) for k, v, t in numeric.values() if k == "probability"), None) or \
        next(((v, t) for k, v, t in numeric.values() if k == "score"), None)
    if source is None:
        return
    vals, tol = source
    vals = vals.reshape(len(vals), -1).astype(np.float64)
    if vals.shape[1] == 1:
        gap, top = np.abs(vals[:, 0]), np.abs(vals[:, 0])
        limit = tol.atol + tol.rtol * top
    else:
        part = np.sort(vals, axis=1)
        gap, top = part[:, -1] - part[:, -2], np.abs(part[:, -1])
        limit = 2 * (tol.atol + tol.rtol * top)
    tied = gap <= limit
    for r in results:
        if r.kind != "label" or r.error or not r.mismatches:
            continue
        ties = r.bad & tied
        r.near_ties = int(ties.sum())
        r.bad = r.bad & ~tied
        r.severity = r.bad.astype(float)
        r.mismatches = int(r.bad.sum())
        r.worst_row = int(np.argmax(r.bad)) if r.mismatches else None


def judge_on_decision(r: OutputResult, rows: np.ndarray, values: np.ndarray, decision: Any,
                      narrow: np.dtype) -> None:
    """Re-judge the label rows `rows` (all rows whose labels differ) on `values`, the original's decision
    quantity on those rows (`[n, C]` in the order of `decision.classes`, or `[n]`/`[n, 1]` for one score
    against `decision.threshold`): a near-tie where the gap between the top two (or the score and the
    threshold) is within twice the quantity's tolerance, a mismatch elsewhere."""
    if not len(rows):
        return
    v = values.reshape(len(rows), -1)
    tol = tolerance_for(decision.kind if decision.kind in ("probability", "score") else "score",
                        (np.dtype(narrow), np.dtype(np.float64)))
    mag = np.abs(v[np.isfinite(v)])
    scale = max(1.0, float(np.percentile(mag, 90))) if mag.size and decision.kind != "probability" else 1.0
    if v.shape[1] == 1:
        gap, top = np.abs(v[:, 0] - decision.threshold), np.abs(v[:, 0])
    else:
        part = np.sort(v, axis=1)
        gap, top = part[:, -1] - part[:, -2], np.abs(part[:, -1])
    limit = 2 * (tol.atol * scale + tol.rtol * top)
    tied = np.zeros(len(r.differ), dtype=bool)
    tied[rows] = gap <= limit
    r.bad = r.differ & ~tied
    r.near_ties = int((r.differ & tied).sum())
    r.severity = r.bad.astype(float)
    r.mismatches = int(r.bad.sum())
    r.worst_row = int(np.argmax(r.bad)) if r.mismatches else None


def failing_rows(results: list[OutputResult], n: int) -> np.ndarray:
    """The rows any (comparable) output disagrees on."""
    bad = np.zeros(n, dtype=bool)
    for r in results:
        if not r.error:
            bad |= r.bad
    return np.flatnonzero(bad)


def excuse_tied(results: list[OutputResult], rows: np.ndarray, tied_rows: np.ndarray, n: int) -> tuple[
        np.ndarray, list[OutputResult]]:
    """Count the disagreements on `rows[tied_rows]` (the original decided them by a tie) as near-ties.

    Returns the tied-row mask over all `n` rows and the results that changed."""
    tied = np.zeros(n, dtype=bool)
    tied[rows[np.asarray(tied_rows, dtype=bool)]] = True
    changed = []
    for r in results:
        if r.error or not (r.bad & tied).any():
            continue
        r.near_ties += int((r.bad & tied).sum())
        r.bad = r.bad & ~tied
        r.severity = np.where(tied, 0.0, r.severity)
        r.mismatches = int(r.bad.sum())
        changed.append(r)
    return tied, changed
