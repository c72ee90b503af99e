"""Request bodies -> input arrays, validated against the model's signature; outputs -> JSON-ready values.

A body is records (`[{"age": 31, "city": "lyon"}, ...]`) or columns (`{"age": [...], "city": [...]}`). Good
requests take numpy's vectorised path; only a body numpy cannot convert is walked value by value, to name the
field and the row of the first problems. Missing values: JSON `null` is NaN in a float input; other dtypes have
no missing value, so `null` there is refused.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..model import Signature, TensorSpec

MAX_PROBLEMS = 20


class RequestError(Exception):
    """A request portable cannot score: an HTTP status and a list of problems ({field, row, msg})."""

    def __init__(self, status: int, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.problems}


def _problem(field: str | None, row: int | None, msg: str) -> dict[str, Any]:
    if field is not None and len(field) > 100:  # a client's unknown key, echoed: never megabytes of it
        field = f"{field[:60]}... ({len(field):,} characters)"
    loc = [x for x in ("body", row, field) if x is not None]
    return {"loc": loc, "field": field, "row": row, "msg": msg}


def parse(body: Any, signature: Signature, *, max_rows: int) -> tuple[dict[str, np.ndarray], str]:
    """Validate a decoded JSON body; returns (arrays by input name, "records" | "columns").

    Raises:
        RequestError: 422 naming the fields and rows at fault; 413 for a batch over `max_rows`.
    """
    names = signature.input_names
    if isinstance(body, list):
        return _arrays(_records_to_columns(body, names, max_rows), signature), "records"
    if isinstance(body, dict):
        try:
            return _arrays(_check_columns(body, names, max_rows), signature), "columns"
        except RequestError as exc:
            if exc.status != 422 or not body:
                raise
            try:  # a single record sent without its list ({"X": [1, 2, 3]} for an input X of shape [N, 3])
                return _arrays(_records_to_columns([body], names, max_rows), signature), "records"
            except RequestError:
                raise exc from None
    raise RequestError(422, "the body must be a JSON array of records or an object of columns",
                       [_problem(None, None, f"got a JSON {_json_type(body)}")])


def _arrays(columns: dict[str, list[Any]], signature: Signature) -> dict[str, np.ndarray]:
    arrays, problems = {}, []
    for spec in signature.inputs:
        try:
            arrays[spec.name] = coerce(columns[spec.name], spec)
        except RequestError as exc:
            problems += exc.problems
    if problems:
        raise RequestError(422, "the request does not match the model's inputs", problems[:MAX_PROBLEMS])
    return arrays


def _records_to_columns(rows: list[Any], names: list[str], max_rows: int) -> dict[str, list[Any]]:
    _check_rows(len(rows), max_rows)
    try:
        columns = {n: [r[n] for r in rows] for n in names}
        if all(len(r) == len(names) for r in rows):  # every input is there: nothing else may be
            return columns
    except (KeyError, TypeError):
        pass
    problems = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            problems.append(_problem(None, i, f"a record must be a JSON object, not {_json_type(r)}"))
        else:
            problems += [_problem(n, i, "missing field") for n in names if n not in r]
            problems += [_problem(k, i, f"unknown field; the model's inputs are {names}") for k in r if k not in names]
        if len(problems) >= MAX_PROBLEMS:
            break
    raise RequestError(422, "records must be objects with every input", problems[:MAX_PROBLEMS])


def _check_columns(body: dict[str, Any], names: list[str], max_rows: int) -> dict[str, list[Any]]:
    problems = [_problem(n, None, "missing field") for n in names if n not in body]
    problems += [_problem(k, None, f"unknown field; the model's inputs are {names}") for k in body if k not in names]
    problems += [_problem(n, None, f"a column must be a JSON array, not {_json_type(body[n])}")
                 for n in names if n in body and not isinstance(body[n], list)]
    if problems:
        raise RequestError(422, "the columns do not match the model's inputs", problems[:MAX_PROBLEMS])
    lengths = {n: len(body[n]) for n in names}
    if len(set(lengths.values())) > 1:
        raise RequestError(422, "columns of different lengths",
                           [_problem(n, None, f"{k} rows") for n, k in lengths.items()])
    _check_rows(next(iter(lengths.values()), 0), max_rows)
    return body


def _check_rows(n: int, max_rows: int) -> None:
    if n == 0:
        raise RequestError(422, "no rows to score", [_problem(None, None, "the batch is empty")])
    if n > max_rows:
        raise RequestError(413, f"a batch of {n:,} rows is over the limit of {max_rows:,} rows per request",
                           [_problem(None, None, f"send at most {max_rows:,} rows")])


# -- one column ------------------------------------------------------------------------------------------------

def coerce(values: list[Any], spec: TensorSpec) -> np.ndarray:
    """One input's values (a list, one entry per row) as an array of the spec's dtype and shape.

    Raises:
        RequestError: 422 with the row and what was wrong.
    """
    row_shape = tuple(spec.shape[1:])
    if spec.is_string:  # null is a missing value: written "", the artifacts' missing string
        values = _nulls_as_empty(values)
    try:  # text as objects: numpy's fixed-width strings would drop trailing NUL characters
        a = np.array(values, dtype=object) if spec.is_string else np.asarray(values)
    except (ValueError, TypeError):  # ragged rows
        a = None
    if a is not None and spec.is_string and _all_text(values, a.ndim):
        if len(row_shape) == 1 and row_shape[0] == 1 and a.ndim == 1:
            a = a.reshape(-1, 1)
        if _shape_ok(a.shape[1:], row_shape):
            return a
    if a is not None and a.dtype.kind != "O":
        if len(row_shape) == 1 and row_shape[0] == 1 and a.ndim == 1:
            a = a.reshape(-1, 1)
        if _shape_ok(a.shape[1:], row_shape):
            out = _cast(a, spec)
            if out is not None:
                return out
    problems = _diagnose(values, spec, row_shape)
    if problems:
        raise RequestError(422, "invalid values", problems)
    # every value is valid: the slow path only meets nulls (NaN) in a float input, or ragged-looking lists
    try:
        a = np.array(values, dtype=np.float64 if spec.is_float else None)
    except (OverflowError, ValueError, TypeError) as exc:  # e.g. an integer beyond float64
        raise RequestError(422, "invalid values", [_problem(spec.name, None, f"cannot be read as {spec.dtype}: "
                                                                             f"{exc}")]) from None
    if len(row_shape) == 1 and row_shape[0] == 1 and a.ndim == 1:
        a = a.reshape(-1, 1)
    out = _cast(a, spec) if _shape_ok(a.shape[1:], row_shape) else None
    if out is None:
        raise RequestError(422, "invalid values", [_problem(spec.name, None, f"cannot be read as {spec.dtype} "
                                                            "(a value out of its range?)")])
    return out


def _all_text(values: list[Any], depth: int) -> bool:
    """Whether every leaf is a JSON string: numpy turns a number among strings into text, silently."""
    if depth <= 1:
        return all(type(v) is str for v in values)
    return all(_all_text(v, depth - 1) for v in values)


def _nulls_as_empty(values: Any) -> Any:
    if values is None:
        return ""
    if isinstance(values, list):
        return [_nulls_as_empty(v) for v in values]
    return values


def _shape_ok(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))


def _cast(a: np.ndarray, spec: TensorSpec) -> np.ndarray | None:
    """`a` in the spec's dtype when its kind fits, else None (the caller then finds the faulty rows)."""
    kind = a.dtype.kind
    if spec.is_string:
        return None  # text took its own path in `coerce`; anything else is the caller's error path
    if spec.dtype == "bool":
        return a if kind == "b" else None
    if spec.is_float:
        return a.astype(spec.dtype, copy=False) if kind in "iuf" else None
    if kind in "iu":
        return a.astype(spec.dtype, copy=False)
    if kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(spec.dtype)
    return None


def _diagnose(values: list[Any], spec: TensorSpec, row_shape: tuple[int | None, ...]) -> list[dict[str, Any]]:
    """Walk the values and name each faulty row (up to MAX_PROBLEMS); the path of bad requests and of nulls."""
    problems = []
    first_shape: tuple[int, ...] | None = None
    for i, v in enumerate(values):
        if row_shape == (1,) and not isinstance(v, list):  # one value per row may come without its list
            msg, shape = _check_leaf(v, spec), (1,)
        else:
            msg, shape = _check_value(v, spec, row_shape)
        if msg is None and shape is not None:
            if not _shape_ok(shape, row_shape):
                msg = f"expected shape {_shape_text(row_shape)}, got {_shape_text(shape)}"
            elif first_shape is None:
                first_shape = shape
            elif shape != first_shape:
                msg = f"shape {_shape_text(shape)} differs from the first row's {_shape_text(first_shape)}"
        if msg:
            problems.append(_problem(spec.name, i, msg))
            if len(problems) >= MAX_PROBLEMS:
                break
    return problems


def _check_value(v: Any, spec: TensorSpec, want: tuple[int | None, ...]) -> tuple[str | None, tuple[int, ...] | None]:
    """(problem, shape) of one row's value: nested lists as deep as `want` (the row's shape, None where free) with
    leaves of the spec's dtype. A list of the wrong length is answered from its length alone: a row of millions of
    values for a 3-value input costs no walk over its values."""
    if not want:
        return _check_leaf(v, spec), ()
    if not isinstance(v, list):
        return f"expected an array ({len(want)}-dimensional), got {_json_type(v)}", None
    if want[0] is not None and len(v) != want[0]:
        return None, (len(v),) + (None,) * (len(want) - 1)
    shapes = set()
    for item in v:
        msg, shape = _check_value(item, spec, want[1:])
        if msg:
            return msg, None
        if shape is not None and None in shape:  # a wrong length further down: report it with this row
            return None, (len(v),) + shape
        shapes.add(shape)
    if len(shapes) > 1:
        return "ragged nested lists", None
    return None, (len(v),) + (shapes.pop() if shapes else ())


def _check_leaf(v: Any, spec: TensorSpec) -> str | None:
    t = _json_type(v)
    if spec.is_string:
        return None if isinstance(v, str) else f"expected a string, got {t}"
    if spec.dtype == "bool":
        return None if isinstance(v, bool) else f"expected true or false, got {t}"
    if v is None:
        return None if spec.is_float else f"missing value (null) is not allowed for {spec.dtype}"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"expected a number, got {t}"
    if not spec.is_float and (isinstance(v, float) and not v.is_integer()):
        return f"expected an integer, got {v!r}"
    return None


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# -- outputs -----------------------------------------------------------------------------------------------------

def outputs_json(outputs: Mapping[str, np.ndarray], orient: str) -> dict[str, Any]:
    """Outputs by name: `{"outputs": {name: column}}`, or `{"predictions": [record, ...]}` for records in."""
    cols = {n: _plain(a) for n, a in outputs.items()}
    if orient == "records":
        names = list(cols)  # rows of 2-D arrays stay numpy (orjson writes float32 as float32); scalars as Python's
        rows = [c if isinstance(c, list) else c.tolist() if c.ndim == 1 else list(c) for c in cols.values()]
        return {"predictions": [dict(zip(names, row)) for row in zip(*rows)]}
    return {"outputs": cols}


def _plain(a: np.ndarray) -> Any:
    """orjson writes numeric numpy arrays itself (fast); strings and objects become lists."""
    a = np.asarray(a)
    if a.dtype.kind in "OUS":
        return a.astype(str).tolist()
    return np.ascontiguousarray(a)
