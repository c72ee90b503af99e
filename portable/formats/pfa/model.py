"""`PfaModel`: a loaded PFA document as a portable `Model`, scored by one of two tiers.

- the vectorized tier (engine.py): a pure document (one output per input, no state written, no emit, no random
  numbers) whose every construct the numpy engine supports is scored a whole batch at once, and compiles to ONNX;
- the sequential tier (rows.py): every other valid document (state written, method emit or fold, begin/end,
  loops, try, rand.*, strings processed by s.*/re.*, any library function) is scored record by record, in order.
  Cells and pools persist from one `run()` to the next, like a scoring engine's state (`reset()` restores them).

Inputs and outputs follow DESIGN §4: a record input gives one input per field (`[N]` for a primitive, `[N, D]`
for an array, `[N, K, D]` for an array of arrays); any other input is one input named `input`; outputs alike,
with `output` for a non-record. Strings are numpy str arrays; a nullable number takes NaN for null. Values that
are no tensor (maps, records inside records, bytes, unions of several types) travel as object arrays of plain
Python values (sequential tier only). `input: "null"` gives one ignored input `input` (its length is the number
of records). What `run()` returns per method:

- map: the action's result for each record;
- fold: the tally after each record (the last row is the fold's result; `merge(a, b)` combines two tallies);
- emit: `output` is an object array whose row i is the list of values emitted while scoring record i.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import PFAError, UnsupportedModelError
from ...limits import LimitError
from ...model import Model, Origin, Signature, TensorSpec
from . import types as T
from .engine import Evaluator
from .reader import Document
from .special import dispatch
from .values import NumpyBackend, Val


def tensor_spec(name: str, t: T.AvroType, where: str, path: Any, output: bool = False,
                objects: bool = False) -> TensorSpec:
    """The TensorSpec for a value of Avro type `t` (DESIGN §4), or UnsupportedModelError (with `objects`: an
    object array of plain Python values instead)."""
    if T.is_null(t):
        return TensorSpec(name, "float64", (None,), "value" if output else "")
    depth = 0
    leaf = t
    while isinstance(leaf, T.Array):
        leaf, depth = leaf.items, depth + 1
    inner = T.nullable_inner(leaf)
    ok = isinstance(leaf, (T.Prim, T.Enum)) and leaf != T.NULL and leaf != T.BYTES or (
        inner is not None and isinstance(inner, (T.Prim, T.Enum)))
    if (not ok or depth > 2) and objects:
        return TensorSpec(name, "object", (None,), "value" if output else "")
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


def io_specs(t: T.AvroType, default: str, where: str, path: Any, output: bool = False,
             objects: bool = False) -> tuple[TensorSpec, ...]:
    if isinstance(t, T.Record):
        return tuple(tensor_spec(n, ft, f"{where}.fields.{n}", path, output, objects)
                     for n, ft in t.fields.items())
    return (tensor_spec(default, t, where, path, output, objects),)


def check_functions(doc: Document) -> None:
    """Refuse, at load time, calls to library functions the engine does not have."""
    from .library import LIBRARY

    def scan(expr: Any, where: str) -> None:
        if isinstance(expr, list):
            for i, e in enumerate(expr):
                scan(e, f"{where}[{i}]")
        elif isinstance(expr, dict):
            expr = {k: v for k, v in expr.items() if k != "@"}
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

    def __init__(self, doc: Document, *, origin: Origin | None = None, seed: int | None = None) -> None:
        super().__init__(origin=origin or Origin("pfa", name=doc.name, path=doc.path))
        self.doc = doc
        self.seed = seed
        self._persist: dict[Any, Any] = {}
        self._rows: Any = None  # the sequential tier's engine (state lives there)
        self.tier = "vectorized"
        self.tier_reason: tuple[str, str] | None = None  # (construct, JSON path) that needs the sequential tier
        from .reader import stateful_construct

        stateful = stateful_construct(doc)
        if stateful is None:
            try:
                self._setup_vectorized()
                return
            except (PFAError, UnsupportedModelError) as exc:
                vec_error = exc
            try:
                self._setup_sequential()
            except (PFAError, UnsupportedModelError) as exc:
                raise (exc if isinstance(vec_error, UnsupportedModelError) else vec_error) from None
            self.tier_reason = (vec_error.message if hasattr(vec_error, "message") else str(vec_error),
                                vec_error.where or "action")
            return
        self.tier_reason = stateful
        self._setup_sequential()

    def _setup_vectorized(self) -> None:
        doc = self.doc
        self.tier = "vectorized"
        self._signature = Signature(io_specs(doc.input, "input", "input", doc.path),
                                    io_specs(doc.output, "output", "output", doc.path, output=True))
        check_functions(doc)
        self._signature = Signature(self._infer_widths(), self._signature.outputs)
        self._dry_run()

    def _setup_sequential(self) -> None:
        from .rows import RowEngine

        doc = self.doc
        self.tier = "sequential"
        self._rows = RowEngine(doc, self.seed)  # compiles everything: unknown symbols, functions, types
        action = self._rows.action_type
        if doc.method in ("map", "fold") and not T.accepts(doc.output, action):
            raise PFAError(f"the action returns {action.describe()}, but the document's output is declared "
                           f"{doc.output.describe()} (a semantic error: the value cannot be given as the output)",
                           path=doc.path, where="action")
        outs = io_specs(doc.output, "output", "output", doc.path, output=True, objects=True)
        if doc.method == "emit":
            outs = (TensorSpec("output", "object", (None,), "value"),)
        self._signature = Signature(io_specs(doc.input, "input", "input", doc.path, objects=True), outs)
        self._signature = Signature(self._infer_widths(), self._signature.outputs)

    @property
    def stateful(self) -> bool:
        """Whether scoring depends on the records scored before (state written, emit/fold, begin/end, rand)."""
        return self.tier == "sequential" and self.tier_reason is not None and self._stateful_reason()

    def _stateful_reason(self) -> bool:
        from .reader import stateful_construct

        return stateful_construct(self.doc) is not None

    def reset(self, seed: int | None = None) -> None:
        """Back to the initial cells, pools, random state and tally (sequential tier)."""
        if seed is not None:
            self.seed = seed
        if self._rows is not None:
            from .rows import RowEngine

            self._rows = RowEngine(self.doc, self.seed)

    def end(self) -> None:
        """Run the document's `end` (sequential tier; a no-op without one)."""
        if self._rows is not None:
            self._rows.run_end()

    def merge(self, a: Any, b: Any) -> Any:
        """Method fold: combine two tallies with the document's `merge`."""
        if self._rows is None or self.doc.method != "fold":
            raise PFAError("merge is defined for method fold only", path=self.doc.path, where="merge")
        return self._rows.merge(a, b)

    @property
    def cells(self) -> dict[str, Any]:
        """The current cell values (sequential tier: after the records scored so far)."""
        if self._rows is not None:
            return self._rows.state.cells
        from .rows import from_avro_json

        return {n: from_avro_json(c.init, c.type) for n, c in self.doc.cells.items()}

    @property
    def pools(self) -> dict[str, Any]:
        if self._rows is not None:
            return self._rows.state.pools
        from .rows import from_avro_json

        return {n: {k: from_avro_json(v, c.type) for k, v in c.init.items()} for n, c in self.doc.pools.items()}

    def _dry_run(self) -> None:
        """Score two dummy rows, so that unknown symbols, wrong types and unsupported constructs are reported
        when the document is loaded (PFA runtime errors on dummy values are expected and ignored)."""
        lengths = sorted(_constant_lengths(self.doc)) or [1]
        trial = {s.name: _dummy(s, lengths[0]) for s in self.signature.inputs}
        try:
            self._trial(trial)
        except (PFAError, UnsupportedModelError, LimitError):
            raise
        except Exception:
            pass

    def _infer_widths(self) -> tuple[TensorSpec, ...]:
        """Fix the width D of `[N, D]` array inputs the document only works with (the length of its
        coefficient vectors, say): try each length of a constant numeric array in the document on a dummy
        row, and keep D when exactly one length runs."""
        specs = list(self._signature.inputs)
        free = [i for i, s in enumerate(specs) if len(s.shape) == 2 and s.dtype not in ("str", "object")]
        if not free or len(free) > 2:
            return tuple(specs)
        indexed = _indexed_widths(self.doc)
        lengths = sorted(_constant_lengths(self.doc))[:12]
        for i in free:
            need = indexed.get(specs[i].name)
            if need is not None and need not in lengths:
                lengths = sorted(set(lengths) | {need})
            works = []
            for d in lengths:
                trial = {s.name: _dummy(s, d if j == i else (lengths[0] if j in free else 1))
                         for j, s in enumerate(specs)}
                try:
                    self._trial(trial)
                except LimitError:  # a trial that ran out of time: the next widths would too
                    raise
                except Exception:
                    continue
                works.append(d)
            if len(works) > 1 and need is not None and need in works:
                works = [need]
            if len(works) == 1:
                specs[i] = TensorSpec(specs[i].name, specs[i].dtype, (None, works[0]), specs[i].kind)
        return tuple(specs)

    def _trial(self, inputs: dict[str, np.ndarray]) -> Any:
        """Score dummy rows without touching the state of the sequential tier."""
        if self.tier == "sequential":
            from .rows import RowEngine

            return self._run_rows(inputs, RowEngine(self.doc, self.seed))
        # one dummy row: the action routine's timeout (max_pfa_routine_ms, or the document's own) applies as it
        # does to each record of the sequential tier; 100,000 straight-line `let`s ran minutes per trial unbounded
        from . import clock

        options = self.doc.raw.get("options") if isinstance(self.doc.raw, dict) else None
        armed = clock.arm(*clock.budget(options, "action"))
        try:
            return self._run(inputs)
        except clock.RoutineTimeout as exc:
            raise clock.RoutineTimeout(exc.ms, exc.own, where="action (a trial row while loading)",
                                       path=self.doc.path) from None
        finally:
            clock.disarm(armed)

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
        if self.tier == "sequential":
            return self._run_rows(inputs)
        try:
            return self._run_vectorized(inputs)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError, FloatingPointError) as exc:
            # the vectorized engine met a case it does not handle: the row-by-row engine is the reference
            from .rows import RowEngine

            try:
                engine = RowEngine(self.doc, self.seed)
            except (PFAError, UnsupportedModelError):
                raise exc from None
            self.notes.append(f"a batch was scored record by record ({type(exc).__name__} in the vectorized "
                              "engine)")
            return self._run_rows(inputs, engine)

    def _run_vectorized(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(inputs.values()))) if inputs else 0
        ev = Evaluator(self.doc, NumpyBackend(n), self._persist)
        try:
            out = ev.run(self.input_val(inputs, ev))
            return self.outputs(ev, out)
        finally:
            for entry in self._persist.values():
                entry[0].release()

    def _run_rows(self, inputs: dict[str, np.ndarray], engine: Any = None) -> dict[str, np.ndarray]:
        from .rowrun import run_rows

        return run_rows(self, engine if engine is not None else self._rows, inputs)

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

    def input_hints(self) -> Any:
        """What the document says about its inputs (`portable.hints.InputHints`): see `pfa/hints.py`."""
        from .hints import pfa_hints

        return pfa_hints(self)

    def input_values(self) -> dict[str, list[Any]]:
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
                expr = {k: v for k, v in expr.items() if k != "@"}
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


def _indexed_widths(doc: Document) -> dict[str, int]:
    """Input name -> 1 + the largest constant index the document takes from that array input
    (`input.3`, `{"attr": "input", "path": [3]}`, `input.field.3`): the least width those inputs must have."""
    found: dict[str, int] = {}
    rec = isinstance(doc.input, T.Record)

    def note(parts: list[Any]) -> None:
        if not parts or parts[0] != "input":
            return
        rest = parts[1:]
        name = "input"
        if rec and rest and isinstance(rest[0], str) and not rest[0].lstrip("-").isdigit():
            name, rest = rest[0], rest[1:]
        if rest and isinstance(rest[0], int) and not isinstance(rest[0], bool) and rest[0] >= 0:
            found[name] = max(found.get(name, 0), rest[0] + 1)

    def scan(v: Any) -> None:
        if isinstance(v, str) and v.startswith("input."):
            note(["input"] + [int(p) if p.isdigit() else p for p in v.split(".")[1:]])
        elif isinstance(v, list):
            for x in v:
                scan(x)
        elif isinstance(v, dict):
            if isinstance(v.get("attr"), str) and isinstance(v.get("path"), list):
                base = v["attr"].split(".")
                parts: list[Any] = [int(p) if p.isdigit() else p for p in base]
                for p in v["path"]:
                    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str):
                        parts.append(p[0])
                    elif isinstance(p, dict) and set(p) == {"string"}:
                        parts.append(p["string"])
                    elif isinstance(p, int) and not isinstance(p, bool):
                        parts.append(p)
                    else:
                        break
                note(parts)
            for x in v.values():
                scan(x)

    scan(doc.action)
    for f in doc.fcns.values():
        scan(f.body)
    return found


def _dummy(spec: TensorSpec, width: int) -> np.ndarray:
    shape = (2,) + tuple(width if d is None else d for d in spec.shape[1:])
    if spec.dtype == "object":
        return np.full(2, None, dtype=object)
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
