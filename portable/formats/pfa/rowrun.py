"""Batch <-> records for the sequential tier: numpy columns in, one Python record per row, numpy columns out."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import PFARuntimeError
from ...limits import LimitError
from . import clock
from . import types as T
from .rows import PFAErr, conform


def column(arr: Any, t: T.AvroType, spec: Any) -> list[Any]:
    """One input column as a list of engine values of type `t`."""
    a = np.asarray(arr)
    if spec.dtype == "object":
        return [_plain(v, t) for v in a.tolist()] if a.dtype != object else [_plain(v, t) for v in a]
    if T.is_null(t):
        return [None] * len(a)
    vals = a.tolist()
    inner = T.nullable_inner(t)
    if inner is not None and T.is_numeric(inner):
        if T.is_integer(inner):
            return [None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v) for v in vals]
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in vals]
    if inner is not None and T.is_stringlike(inner):
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in vals]
    if inner is not None and isinstance(inner, T.Prim) and inner.name == "boolean":
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v) for v in vals]
    if isinstance(t, T.Prim) and t.name == "float":
        return [float(np.float32(v)) for v in vals] if a.dtype != np.float32 else vals
    return vals


def _plain(v: Any, t: T.AvroType) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(t, T.Prim) and t.name == "bytes" and isinstance(v, str):
        return v.encode("latin-1")
    if isinstance(t, T.Fixed) and isinstance(v, str):
        return v.encode("latin-1")
    if isinstance(t, T.Union) and isinstance(v, dict) and len(v) == 1:
        (tag, inner), = v.items()
        for b in t.types:
            if getattr(b, "name", None) == tag.rsplit(".", 1)[-1] and not isinstance(b, (T.Array, T.Map)):
                return _plain(inner, b)
    if isinstance(t, T.Array) and isinstance(v, list):
        return [_plain(x, t.items) for x in v]
    if isinstance(t, T.Map) and isinstance(v, dict):
        return {k: _plain(x, t.values) for k, x in v.items()}
    if isinstance(t, T.Record) and isinstance(v, dict):
        return {k: _plain(v.get(k), ft) for k, ft in t.fields.items()}
    return conform(v, t)


def records(model: Any, inputs: dict[str, np.ndarray]) -> list[Any]:
    t = model.doc.input
    specs = model.signature.inputs
    n = len(np.asarray(next(iter(inputs.values())))) if inputs else 0
    if isinstance(t, T.Record):
        names = [s.name for s in specs]
        cols = [column(inputs[s.name], t.fields[s.name], s) for s in specs]
        return [dict(zip(names, vals)) for vals in zip(*cols)] if cols else [{} for _ in range(n)]
    return column(inputs[specs[0].name], t, specs[0])


def run_rows(model: Any, engine: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    rows = records(model, inputs)
    engine.run_begin()
    out: list[Any] = []
    append = out.append
    one = engine.action_one
    i = 0
    ms, own = engine.budgets["action"]
    armed = clock.arm(ms, own)
    local, now, seconds = clock.local_state(), clock.now, ms / 1000.0
    try:
        if engine.method == "map" and not engine.rollback:
            st = engine.state
            action = engine.action
            if engine.uses_predefined:
                for i, datum in enumerate(rows):
                    append(one(datum))
            else:
                for i, datum in enumerate(rows):
                    local.deadline = now() + seconds  # each action has its own timeout
                    append(action({"input": datum}))
                st.started += len(rows)
                st.finished += len(rows)
        else:
            for i, datum in enumerate(rows):
                append(one(datum))
    except PFAErr as exc:
        raise PFARuntimeError(f"{exc.message} (record {i})", code=exc.code, where=exc.where) from None
    except RecursionError:
        raise PFARuntimeError(f"recursion too deep (record {i})", where="action") from None
    except clock.RoutineTimeout as exc:
        raise clock.RoutineTimeout(exc.ms, exc.own, where=f"action (record {i})",
                                   path=getattr(model.doc, "path", None)) from None
    except LimitError as exc:  # a value a library function would build beyond max_pfa_value_items
        raise LimitError(exc.what, exc.limit, where=f"action (record {i})",
                         path=getattr(model.doc, "path", None)) from None
    finally:
        clock.disarm(armed)
    return outputs(model, out)


def outputs(model: Any, values: list[Any]) -> dict[str, np.ndarray]:
    t = model.doc.output
    specs = model.signature.outputs
    if model.doc.method == "emit":
        arr = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            arr[i] = v
        return {specs[0].name: arr}
    if isinstance(t, T.Record):
        return {s.name: _out_column([v[s.name] if isinstance(v, dict) else None for v in values], s)
                for s in specs}
    return {specs[0].name: _out_column(values, specs[0])}


def _out_column(vals: list[Any], spec: Any) -> np.ndarray:
    if spec.dtype == "object":
        arr = np.empty(len(vals), dtype=object)
        for i, v in enumerate(vals):
            arr[i] = v
        return arr
    if spec.dtype == "str":
        return np.array(["" if v is None else v for v in vals], dtype=np.str_) if vals else np.array([], dtype=np.str_)
    if spec.dtype.startswith("float"):
        if vals and any(v is None for v in vals):
            vals = [np.nan if v is None else v for v in vals]
            if any(isinstance(v, list) for v in vals):
                vals = [v if isinstance(v, list) else [] for v in vals]
    try:
        return np.asarray(vals, dtype=spec.dtype)
    except (ValueError, TypeError):
        arr = np.empty(len(vals), dtype=object)
        for i, v in enumerate(vals):
            arr[i] = v
        return arr
