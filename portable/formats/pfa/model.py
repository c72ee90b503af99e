"""`PfaModel`: a loaded PFA document as a portable `Model`, scored in batches by the vectorized engine.

Inputs and outputs follow DESIGN §4: a record input gives one input per field (`[N]` for a primitive, `[N, D]`
for an array, `[N, K, D]` for an array of arrays); any other input is one input named `input`; outputs alike,
with `output` for a non-record. Strings are numpy str arrays; a nullable number takes NaN for null.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import PFAError, UnsupportedModelError
from ...model import Model, Origin, Signature, TensorSpec
from . import types as T
from .engine import Evaluator
from .reader import Document
from .special import dispatch
from .values import NumpyBackend, Val


def tensor_spec(name: str, t: T.AvroType, where: str, path: Any, output: bool = False) -> TensorSpec:
    """The TensorSpec for a value of Avro type `t` (DESIGN §4), or UnsupportedModelError."""
    depth = 0
    leaf = t
    while isinstance(leaf, T.Array):
        leaf, depth = leaf.items, depth + 1
    inner = T.nullable_inner(leaf)
    ok = isinstance(leaf, (T.Prim, T.Enum)) and leaf != T.NULL and leaf != T.BYTES or (
        inner is not None and isinstance(inner, (T.Prim, T.Enum)))
    if not ok or depth > 2:
        raise UnsupportedModelError(f"'{name}' has type {t.describe()}, which portable cannot pass as a tensor "
                                    "(primitives, enums, nullable numbers and arrays of them are supported)",
                                    path=path, where=where)
    dtype = T.numpy_dtype(leaf)
    if inner is not None and dtype != "str":
        dtype = "float64"
    kind = ""
    if output:
        kind = "label" if dtype == "str" else "value"
    return TensorSpec(name, dtype, (None,) * (depth + 1), kind)


def io_specs(t: T.AvroType, default: str, where: str, path: Any, output: bool = False) -> tuple[TensorSpec, ...]:
    if isinstance(t, T.Record):
        return tuple(tensor_spec(n, ft, f"{where}.fields.{n}", path, output) for n, ft in t.fields.items())
    return (tensor_spec(default, t, where, path, output),)


def check_functions(doc: Document) -> None:
    """Refuse, at load time, calls to library functions the engine does not have."""
    from .library import LIBRARY

    def scan(expr: Any, where: str) -> None:
        if isinstance(expr, list):
            for i, e in enumerate(expr):
                scan(e, f"{where}[{i}]")
        elif isinstance(expr, dict):
            if dispatch(expr) is None and len(expr) == 1:
                (name, args), = expr.items()
                if not name.startswith("u.") and name not in LIBRARY:
                    import difflib

                    close = difflib.get_close_matches(name, list(LIBRARY), n=3)
                    hint = f" (did you mean {', '.join(close)}?)" if close else ""
                    raise UnsupportedModelError(f"function '{name}' is not a PFA library function portable "
                                                f"supports{hint}", path=doc.path, where=f"{where}.{name}")
                if name.startswith("u.") and name[2:] not in doc.fcns:
                    raise PFAError(f"unknown user function '{name}'", path=doc.path, where=f"{where}.{name}")
                scan(args, f"{where}.{name}")
                return
            if "fcn" in expr and isinstance(expr["fcn"], str):
                fname = expr["fcn"]
                if not fname.startswith("u.") and fname not in LIBRARY:
                    raise UnsupportedModelError(f"function '{fname}' is not a PFA library function portable "
                                                "supports", path=doc.path, where=f"{where}.fcn")
            for k, v in expr.items():
                if k in ("type", "value", "params", "ret", "as", "string", "doc", "fcn"):
                    continue
                if k in ("let", "set", "new", "ifnotnull", "fill") and isinstance(v, dict):
                    for name, sub in v.items():
                        scan(sub, f"{where}.{k}.{name}")
                    continue
                scan(v, f"{where}.{k}")

    scan(doc.action, "action")
    for name, f in doc.fcns.items():
        scan(f.body, f"{f.where}.do")


_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


class PfaModel(Model):
    """A PFA document, run by portable's vectorized numpy engine."""

    format = "pfa"

    def __init__(self, doc: Document, *, origin: Origin | None = None) -> None:
        super().__init__(origin=origin or Origin("pfa", name=doc.name, path=doc.path))
        self.doc = doc
        self._persist: dict[Any, Any] = {}
        self._signature = Signature(io_specs(doc.input, "input", "input", doc.path),
                                    io_specs(doc.output, "output", "output", doc.path, output=True))
        check_functions(doc)
        self._signature = Signature(self._infer_widths(), self._signature.outputs)
        self._dry_run()

    def _dry_run(self) -> None:
        """Score two dummy rows, so that unknown symbols, wrong types and unsupported constructs are reported
        when the document is loaded (PFA runtime errors on dummy values are expected and ignored)."""
        lengths = sorted(_constant_lengths(self.doc)) or [1]
        trial = {s.name: _dummy(s, lengths[0]) for s in self.signature.inputs}
        try:
            self._run(trial)
        except (PFAError, UnsupportedModelError):
            raise
        except Exception:
            pass

    def _infer_widths(self) -> tuple[TensorSpec, ...]:
        """Fix the width D of `[N, D]` array inputs the document only works with (the length of its
        coefficient vectors, say): try each length of a constant numeric array in the document on a dummy
        row, and keep D when exactly one length runs."""
        specs = list(self._signature.inputs)
        free = [i for i, s in enumerate(specs) if len(s.shape) == 2 and s.dtype != "str"]
        if not free or len(free) > 2:
            return tuple(specs)
        lengths = sorted(_constant_lengths(self.doc))[:12]
        for i in free:
            works = []
            for d in lengths:
                trial = {s.name: _dummy(s, d if j == i else (lengths[0] if j in free else 1))
                         for j, s in enumerate(specs)}
                try:
                    self._run(trial)
                except Exception:
                    continue
                works.append(d)
            if len(works) == 1:
                specs[i] = TensorSpec(specs[i].name, specs[i].dtype, (None, works[0]), specs[i].kind)
        return tuple(specs)

    @property
    def signature(self) -> Signature:
        return self._signature

    def input_val(self, inputs: dict[str, np.ndarray], ev: Evaluator) -> Val:
        t = self.doc.input
        if isinstance(t, T.Record):
            fields = {}
            for spec in self.signature.inputs:
                fields[spec.name] = Val(t.fields[spec.name], _as(inputs[spec.name], spec), False)
            return Val(t, fields, False)
        spec = self.signature.inputs[0]
        return Val(t, _as(inputs[spec.name], spec), False)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(inputs.values()))) if inputs else 0
        ev = Evaluator(self.doc, NumpyBackend(n), self._persist)
        try:
            out = ev.run(self.input_val(inputs, ev))
            return self.outputs(ev, out)
        finally:
            for entry in self._persist.values():
                entry[0].release()

    def outputs(self, ev: Evaluator, out: Val) -> dict[str, np.ndarray]:
        t = self.doc.output
        if isinstance(t, T.Record):
            fields = out.data if not out.const else {k: Val(ft, out.data[k], True) for k, ft in t.fields.items()}
            vals = {spec.name: fields[spec.name] for spec in self.signature.outputs}
        else:
            vals = {self.signature.outputs[0].name: out}
        result = {}
        for spec in self.signature.outputs:
            v = ev.broadcast(vals[spec.name]) if vals[spec.name].const else vals[spec.name]
            arr = np.asarray(ev.tensor(v))
            if spec.dtype == "str":
                arr = arr.astype(np.str_)
            elif arr.dtype.name != spec.dtype:
                arr = arr.astype(spec.dtype)
            result[spec.name] = arr
        return result

    def input_hints(self) -> dict[str, list[Any]]:
        """Values worth generating for each input, for an equivalence checker: the thresholds and string
        constants that the document's tree nodes (cells and pools holding `field`/`operator`/`value` records)
        compare that input field with. Empty when the document has no such trees."""
        names = set(self.signature.input_names)
        found: dict[str, set[Any]] = {}

        def scan(v: Any) -> None:
            if isinstance(v, list):
                for x in v:
                    scan(x)
            elif isinstance(v, dict):
                if {"field", "operator", "value"} <= set(v) and v["field"] in names:
                    vals = v["value"] if isinstance(v["value"], list) else [v["value"]]
                    for x in vals:
                        if isinstance(x, (int, float, str)) and not isinstance(x, bool):
                            found.setdefault(v["field"], set()).add(x)
                for x in v.values():
                    scan(x)

        for c in list(self.doc.cells.values()) + list(self.doc.pools.values()):
            scan(c.init)
        # the expressions: `input.field` (or a let-bound copy) compared with a number, and every string literal,
        # which is a candidate for each string input (`{"==": ["input.color", {"string": "red"}]}`)
        strings: set[str] = set()
        specs = {t.name: t for t in self.signature.inputs}

        def scan_expr(v: Any) -> None:
            if isinstance(v, list):
                if len(v) == 1 and isinstance(v[0], str):
                    strings.add(v[0])
                for x in v:
                    scan_expr(x)
            elif isinstance(v, dict):
                if set(v) == {"string"} and isinstance(v["string"], str):
                    strings.add(v["string"])
                for op, args in v.items():
                    if op in _COMPARISONS and isinstance(args, list) and len(args) == 2:
                        refs = [a[6:] for a in args if isinstance(a, str) and a.startswith("input.")]
                        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
                        if refs and nums and refs[0] in names:
                            found.setdefault(refs[0], set()).add(nums[0])
                    scan_expr(args)

        raw = self.doc.raw or {}
        scan_expr(raw.get("action"))
        scan_expr(raw.get("fcns"))
        for name, spec in specs.items():
            if spec.is_string and strings:
                found.setdefault(name, set()).update(strings)
        return {k: sorted(vals, key=lambda x: (isinstance(x, str), str(x) if isinstance(x, str) else x))
                for k, vals in found.items()}

    def info(self) -> dict[str, Any]:
        d = self.doc
        calls: dict[str, int] = {}

        def scan(expr: Any) -> None:
            if isinstance(expr, list):
                for e in expr:
                    scan(e)
            elif isinstance(expr, dict):
                if dispatch(expr) is None and len(expr) == 1:
                    (name, args), = expr.items()
                    calls[name] = calls.get(name, 0) + 1
                    scan(args)
                    return
                for k, v in expr.items():
                    if k not in ("type", "value", "params", "ret"):
                        scan(v)
                if isinstance(expr.get("fcn"), str):
                    calls[expr["fcn"]] = calls.get(expr["fcn"], 0) + 1

        scan(d.action)
        for f in d.fcns.values():
            scan(f.body)
        return {
            "name": d.name or None,
            "input type": d.input.describe(),
            "output type": d.output.describe(),
            "cells": {n: c.type.describe() for n, c in d.cells.items()},
            "pools": {n: c.type.describe() for n, c in d.pools.items()},
            "user functions": sorted(f"u.{n}" for n in d.fcns),
            "library functions": dict(sorted(calls.items())),
            "metadata": d.metadata,
            "engine": "portable vectorized numpy engine (batch scoring)",
        }


def _constant_lengths(doc: Document) -> set[int]:
    found: set[int] = set()

    def scan(v: Any) -> None:
        if isinstance(v, list):
            if v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                found.add(len(v))
            for x in v:
                scan(x)
        elif isinstance(v, dict):
            for x in v.values():
                scan(x)

    for cell in list(doc.cells.values()) + list(doc.pools.values()):
        scan(cell.init)
    scan(doc.action)
    for f in doc.fcns.values():
        scan(f.body)
    return {n for n in found if n > 0}


def _dummy(spec: TensorSpec, width: int) -> np.ndarray:
    shape = (2,) + tuple(width if d is None else d for d in spec.shape[1:])
    if spec.dtype == "str":
        return np.full(shape, "", dtype=np.str_)
    return np.zeros(shape, dtype=spec.dtype)


def _as(x: Any, spec: TensorSpec) -> np.ndarray:
    a = np.asarray(x)
    if spec.dtype == "str":
        return a.astype(np.str_)
    if len(spec.shape) == 1 and a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    return a.astype(spec.dtype, copy=False)
