"""Data profiles and drift: what the inputs looked like when a model was converted, and how far new inputs moved.

A profile (`portable.profile` in an artifact's metadata) summarises every input feature of the data given to
`convert`/`check`: quantiles, the bins of the population stability index (PSI), the missing rate, category
frequencies, and a SHA-256 of the data. `drift(profile, arrays)` compares new inputs with it: PSI for numbers and
categories, the share of unseen categories and the change of the missing rate, each against a threshold.
numpy only: the server and `portable drift` share this module.

PSI follows the usual credit-scoring definition, sum((a - e) * ln(a / e)) over bins, with each share floored
at 1e-4 so that an empty bin counts as a large (finite) shift; 0.1-0.2 is read as a moderate shift and >= 0.2 as
a significant one, hence the default threshold. scipy and evidently were considered: scipy has no PSI, and
evidently (a large dependency with its own report stack) cannot read a profile stored in an ONNX file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import PortableError
from .limits import LimitError, load_json
from .model import Signature

PROFILE_KEY = "portable.profile"
PROFILE_VERSION = 1
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 10            # PSI bins of a continuous feature: deciles of the profiled data
DISCRETE = 20        # a numeric feature with at most this many distinct values gets one bin per value
TOP_CATEGORIES = 100  # category frequencies kept per string feature; the rest is one "other" share
MAX_FEATURES = 512   # features profiled per input (an image-sized input would not be "compact")
FLOOR = 1e-4         # smallest share in the PSI sum


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted (any one suffices).

    Attributes:
        psi: population stability index at or above which a feature drifted (0.2: a significant shift).
        missing: absolute change of the missing rate (0.1: ten points).
        unseen: share of values in categories the profile never saw (0.05).
        min_rows: fewer live rows than this and no verdict is given (PSI of a handful of rows is noise).
    """

    psi: float = 0.2
    missing: float = 0.1
    unseen: float = 0.05
    min_rows: int = 50

    def __post_init__(self) -> None:
        for name in ("psi", "missing", "unseen"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise PortableError(f"the drift threshold '{name}' must be a finite number >= 0, not {v!r}")
        if not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise PortableError(f"min_rows must be an integer >= 1, not {self.min_rows!r}")


# -- building ------------------------------------------------------------------------------------------------------

def features(name: str, x: np.ndarray, names: list[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """The 1-D features of one input array [N, ...]: the array itself, or its columns `name[j]`."""
    if x.ndim <= 1:
        return [(name, x.reshape(-1))]
    flat = x.reshape(x.shape[0], -1)
    width = min(flat.shape[1], MAX_FEATURES)
    if names is not None and len(names) == flat.shape[1]:
        labels = names
    else:
        labels = [name] if flat.shape[1] == 1 else [f"{name}[{j}]" for j in range(width)]
    return [(labels[j], flat[:, j]) for j in range(width)]


def _missing(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "f":
        return np.isnan(col)
    if col.dtype.kind == "O":
        return np.fromiter((v is None or (isinstance(v, float) and v != v) for v in col), bool, len(col))
    return np.zeros(len(col), bool)


def _is_text(col: np.ndarray) -> bool:
    return col.dtype.kind in "USO"


def _numeric_profile(values: np.ndarray) -> dict[str, Any]:
    v = values.astype(np.float64)
    if not v.size:
        return {"kind": "numeric", "edges": [], "fractions": [1.0], "quantiles": None}
    uniq = np.unique(v)
    edges = uniq if len(uniq) <= DISCRETE else np.unique(np.quantile(v, np.arange(1, BINS) / BINS))
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
    return {"kind": "numeric", "edges": edges.tolist(), "fractions": (counts / v.size).tolist(),
            "quantiles": dict(zip((f"{q:g}" for q in QUANTILES), np.quantile(v, QUANTILES).tolist())),
            "mean": float(v.mean()), "std": float(v.std())}


def _category_profile(values: np.ndarray) -> dict[str, Any]:
    cats, counts = np.unique(values.astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]
    n = max(values.size, 1)
    freq = {str(cats[i]): counts[i] / n for i in order}
    return {"kind": "categorical", "frequencies": freq, "other": max(0.0, 1.0 - sum(freq.values())),
            "distinct": int(len(cats))}


def profile_feature(name: str, col: np.ndarray) -> dict[str, Any]:
    """The profile of one feature (a 1-D column)."""
    miss = _missing(col)
    present = col[~miss]
    body = _category_profile(present) if _is_text(col) else _numeric_profile(present)
    return {"name": name, **body, "missing_rate": float(miss.mean()) if col.size else 0.0}


def data_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the inputs (names, dtypes, shapes and values), independent of dict order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h.update(f"{name}|{a.dtype.kind}|{a.shape}|".encode())
        if a.dtype.kind in "OU":
            h.update("\x00".join(map(str, a.reshape(-1).tolist())).encode())
        else:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def build_profile(arrays: Mapping[str, np.ndarray], *, feature_names: Mapping[str, list[str]] | None = None
                  ) -> dict[str, Any]:
    """A compact profile of every input in `arrays` (name -> [N, ...] array).

    Args:
        feature_names: optional column names per input (a DataFrame's columns for an input `X`).
    """
    names = feature_names or {}
    rows = {len(np.asarray(a)) for a in arrays.values()}
    if len(rows) > 1:
        raise PortableError(f"the data's inputs have different row counts: {sorted(rows)}")
    inputs = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        inputs[name] = {"dtype": a.dtype.name if a.dtype.kind not in "OU" else "str", "shape": list(a.shape[1:]),
                        "features": [profile_feature(f, col) for f, col in features(name, a, names.get(name))]}
    return {"version": PROFILE_VERSION, "rows": rows.pop() if rows else 0, "sha256": data_hash(arrays),
            "inputs": inputs}


def profile_from_data(data: Any, model: Any, signature: Signature) -> dict[str, Any] | None:
    """The profile of `data` (array, DataFrame or mapping) as the inputs of `signature`, or None when the data
    does not line up with the inputs. `model` is the model the data was meant for (it may know the DataFrame
    columns it was fitted on)."""
    from .equivalence.inputs import data_arrays

    arrays = data_arrays(data, model)
    if not arrays or set(arrays) != set(signature.input_names):
        return None
    names: dict[str, list[str]] = {}
    if hasattr(data, "columns") and len(arrays) == 1:
        (only, arr), = arrays.items()
        fitted = [str(c) for c in getattr(getattr(model, "estimator", None), "feature_names_in_", [])]
        cols = fitted or [str(c) for c in data.columns]
        if arr.ndim == 2 and arr.shape[1] == len(cols):
            names[only] = cols
    return build_profile(arrays, feature_names=names)


def input_arrays(data: Any, model: Any, profile: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """`data` (array, DataFrame or {input: array}) as the named inputs of `model`, for `drift`. A DataFrame's
    columns are picked by the profile's feature names when it has them (so extra columns, a target say, and
    another column order do no harm).

    Raises:
        PortableError: the data does not line up with the model's inputs.
    """
    from .equivalence.inputs import data_arrays

    names = model.signature.input_names
    if profile is not None and hasattr(data, "columns") and len(names) == 1 and names[0] in profile["inputs"]:
        wanted = [f["name"] for f in profile["inputs"][names[0]]["features"]]
        cols = [str(c) for c in data.columns]
        if len(wanted) > 1 and all(w in cols for w in wanted):
            return {names[0]: np.asarray(data[wanted].to_numpy())}
    arrays = data_arrays(data, model)
    if not arrays or set(arrays) != set(names):
        found = list(arrays or []) or [str(c) for c in getattr(data, "columns", [])] or type(data).__name__
        raise PortableError(f"the data does not line up with the model's inputs {names} (found {found})")
    return arrays


def to_json(profile: Mapping[str, Any]) -> str:
    return json.dumps(profile, separators=(",", ":"), allow_nan=False, default=_plain)


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)


def read_profile(metadata: Mapping[str, Any], *, path: Any = None) -> dict[str, Any] | None:
    """The profile stored in an artifact's metadata (a JSON string in ONNX, an object in portable.json)."""
    raw = metadata.get(PROFILE_KEY)
    if raw is None:
        return None
    try:
        prof = load_json(raw, path=path, what=f"the {PROFILE_KEY} metadata") if isinstance(raw, str) else raw
        if not isinstance(prof, dict) or not isinstance(prof.get("inputs"), dict):
            raise ValueError("no 'inputs'")
        for spec in prof["inputs"].values():
            for f in spec["features"]:
                f["name"], f["kind"], f["missing_rate"]  # noqa: B018 - the keys drift needs
    except (ValueError, KeyError, TypeError, LimitError) as exc:
        why = exc.what if isinstance(exc, LimitError) else exc
        raise PortableError(f"the artifact's {PROFILE_KEY} metadata is malformed ({why})", path=path) from None
    return prof


def summarize_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` with the profile and the full report shortened to one line each (for `portable inspect`)."""
    out = dict(meta)
    if PROFILE_KEY in out:
        try:
            prof = read_profile(out) or {}
            n = sum(len(spec["features"]) for spec in prof["inputs"].values())
            out[PROFILE_KEY] = f"{prof.get('rows')} rows, {n} feature(s), data sha256 {str(prof.get('sha256'))[:16]}…"
        except (PortableError, KeyError, TypeError):
            out[PROFILE_KEY] = "(malformed)"
    if "portable.report" in out:
        size = len(out["portable.report"]) if isinstance(out["portable.report"], str) else len(json.dumps(
            out["portable.report"]))
        out["portable.report"] = f"the whole check report ({size:,} bytes of JSON; `portable serve` shows it)"
    return out


# -- drift ---------------------------------------------------------------------------------------------------------

def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, np.float64), FLOOR)
    a = np.maximum(np.asarray(actual, np.float64), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _feature_drift(spec: dict[str, Any], col: np.ndarray, th: DriftThresholds) -> dict[str, Any]:
    miss = _missing(col)
    present = col[~miss]
    live_missing = float(miss.mean()) if col.size else 0.0
    out: dict[str, Any] = {"feature": spec["name"], "kind": spec["kind"], "rows": int(col.size),
                           "missing_rate": {"profile": spec["missing_rate"], "live": live_missing,
                                            "change": live_missing - spec["missing_rate"]}}
    if spec["kind"] == "categorical":
        freq = spec["frequencies"]
        values = present.astype(str)
        cats = list(freq)
        known = np.isin(values, cats)
        n = max(values.size, 1)
        live = [float(np.sum(values == c)) / n for c in cats] + [float(np.sum(~known)) / n]
        out["psi"] = psi([freq[c] for c in cats] + [spec.get("other", 0.0)], live) if values.size else 0.0
        out["unseen_share"] = float(np.sum(~known)) / n if values.size else 0.0
    else:
        edges = np.asarray(spec["edges"], np.float64)
        v = present.astype(np.float64) if not _is_text(present) else np.zeros(0)
        counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
        out["psi"] = psi(spec["fractions"], counts / max(v.size, 1)) if v.size else 0.0
        q = spec.get("quantiles") or {}
        if v.size and q:
            out["out_of_range_share"] = float(np.mean((v < q["0"]) | (v > q["1"])))
    out["drifted"] = bool(out["psi"] >= th.psi or abs(out["missing_rate"]["change"]) >= th.missing
                          or out.get("unseen_share", 0.0) >= th.unseen)
    return out


def drift(profile: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
          thresholds: DriftThresholds | None = None) -> dict[str, Any]:
    """Per-feature and per-input drift of `arrays` (name -> [N, ...]) against `profile`.

    Returns:
        {"rows", "drifted", "thresholds", "inputs": {name: {"psi": max, "drifted"}}, "features": [...]};
        `drifted` is None (no verdict) below `thresholds.min_rows` rows.
    """
    th = thresholds or DriftThresholds()
    missing = [n for n in profile["inputs"] if n not in arrays]
    if missing:
        raise PortableError(f"the data has no input(s) {missing}; the profile has {list(profile['inputs'])}")
    rows = len(np.asarray(next(iter(arrays.values())))) if arrays else 0
    feats, per_input = [], {}
    for name, spec in profile["inputs"].items():
        a = np.asarray(arrays[name])
        cols = features(name, a, [f["name"] for f in spec["features"]])
        if len(cols) != len(spec["features"]):
            raise PortableError(f"input '{name}' has {len(cols)} feature(s); the profile has "
                                f"{len(spec['features'])}")
        found = [dict(_feature_drift(f, col, th), input=name) for f, (_, col) in zip(spec["features"], cols)]
        feats += found
        per_input[name] = {"psi": max((f["psi"] for f in found), default=0.0),
                           "unseen_share": max((f.get("unseen_share", 0.0) for f in found), default=0.0),
                           "missing_rate_change": max((abs(f["missing_rate"]["change"]) for f in found),
                                                      default=0.0),
                           "drifted": any(f["drifted"] for f in found)}
    verdict = None if rows < th.min_rows else any(f["drifted"] for f in feats)
    return {"rows": rows, "profile_rows": profile.get("rows"), "profile_sha256": profile.get("sha256"),
            "drifted": verdict, "thresholds": asdict(th), "inputs": per_input, "features": feats}


def drift_text(result: Mapping[str, Any], *, limit: int = 20) -> str:
    """A short terminal summary of `drift(...)`: the verdict and the most shifted features."""
    v = result["drifted"]
    head = ("DRIFT" if v else "no drift" if v is False else "no verdict (too few rows)") + \
        f": {result['rows']:,} rows against a profile of {result.get('profile_rows') or '?'} rows"
    th = result["thresholds"]
    lines = [head, f"thresholds: PSI >= {th['psi']:g}, missing-rate change >= {th['missing']:g}, "
                   f"unseen categories >= {th['unseen']:g}", "",
             f"{'feature':<28} {'PSI':>8} {'missing Δ':>10} {'unseen':>8}  drifted"]
    ranked = sorted(result["features"], key=lambda f: -f["psi"])
    for f in ranked[:limit]:
        lines.append(f"{f['feature'][:28]:<28} {f['psi']:>8.3f} {f['missing_rate']['change']:>+10.3f} "
                     f"{f.get('unseen_share', 0.0):>8.3f}  {'yes' if f['drifted'] else ''}")
    if len(ranked) > limit:
        lines.append(f"... and {len(ranked) - limit} more feature(s)")
    return "\n".join(lines)
