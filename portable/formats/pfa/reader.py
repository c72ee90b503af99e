"""Reading a PFA document: JSON or YAML text -> a checked `Document`.

The reader checks the document's structure (top-level fields, cell and pool declarations, function
definitions), parses every Avro type, checks each cell's `init` against its type, and refuses up front the
constructs portable does not run (emit/fold methods, begin/end, cell and pool writes, `rand.*`, loops) with
the construct's name and JSON path, so nothing is ever silently mis-scored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError, PFAError
from .types import AvroType, FcnType, TypeNames, decode

TOP_LEVEL = ("name", "method", "input", "output", "begin", "action", "end", "fcns", "zero", "merge", "cells",
             "pools", "randseed", "doc", "version", "metadata", "options", "@")

# Constructs that make a document stateful or order-dependent: scored row by row, in order, never compiled.
STATEFUL_FORMS = {
    "emit": "'emit' (method emit)",
    "pool-del": "removing pool entries ('pool-del')",
}
STATEFUL_PREFIXES = {
    "rand.": "random numbers ('rand.*')",
}


@dataclass
class Cell:
    name: str
    type: AvroType
    init: Any
    shared: bool = False
    rollback: bool = False


@dataclass
class FcnDef:
    name: str
    params: list[tuple[str, AvroType]]
    ret: AvroType
    body: list[Any]
    where: str

    @property
    def type(self) -> FcnType:
        return FcnType(tuple(t for _, t in self.params), self.ret)


@dataclass
class Document:
    """A parsed, checked PFA document."""

    name: str
    input: AvroType
    output: AvroType
    action: list[Any]
    cells: dict[str, Cell] = field(default_factory=dict)
    pools: dict[str, Cell] = field(default_factory=dict)
    fcns: dict[str, FcnDef] = field(default_factory=dict)
    types: TypeNames = field(default_factory=TypeNames)
    metadata: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    method: str = "map"
    begin: list[Any] = field(default_factory=list)
    end: list[Any] = field(default_factory=list)
    zero: Any = None
    merge: list[Any] = field(default_factory=list)


def read_text(text: str, path: Any = None) -> dict[str, Any]:
    """Parse JSON, or YAML when the text is not JSON.

    Raises:
        PFAError: the text is neither, or its top level is not an object.
    """
    from ... import limits

    if not text.strip():
        raise PFAError("empty file" if not text else "empty file (only whitespace)", path=path)
    try:
        data = limits.load_json(text, path=path, walk=False)  # within portable.limits (size, depth)
    except ValueError as json_exc:
        import yaml

        try:
            data = limits.load_yaml(text, path=path, walk=False)  # aliases bounded before they expand
        except (yaml.YAMLError, ValueError) as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise PFAError(f"not valid JSON ({json_exc}) nor YAML{at}: {getattr(exc, 'problem', exc)}",
                           path=path) from None
    if not isinstance(data, dict):
        raise PFAError(f"a PFA document is a JSON object; found {type(data).__name__}", path=path)
    return data


def read_file(path: str | Path) -> Document:
    from ...limits import check_file_size

    p = Path(path)
    try:
        check_file_size(p, "the PFA document")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the PFA document: {exc}", path=p) from None
    doc = parse(read_text(text, p), path=str(p))
    return doc


def _as_list(expr: Any) -> list[Any]:
    return expr if isinstance(expr, list) else [expr]


def parse(data: dict[str, Any], path: str | None = None) -> Document:
    """Check a PFA document given as a dict and return a `Document`.

    Raises:
        PFAError: the document breaks the specification or uses a construct portable refuses.
    """
    def err(msg: str, where: str | None = None) -> PFAError:
        return PFAError(msg, path=path, where=where)

    from ...limits import check_pfa_expansion, check_tree

    check_tree(data, path=path, what="the PFA document")  # depth, size, aliases: before anything recurses
    check_pfa_expansion(data, path=path)

    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise err(f"unknown top-level field(s) {', '.join(unknown)}; allowed: {', '.join(TOP_LEVEL)}")
    for req in ("input", "output", "action"):
        if req not in data:
            raise err(f"a PFA document needs '{req}'")
    method = data.get("method", "map")
    if method not in ("map", "emit", "fold"):
        raise err(f"method must be map, emit or fold, not {method!r}", "method")
    if method == "fold" and ("zero" not in data or "merge" not in data):
        raise err("method fold needs 'zero' and 'merge'", "method")
    if method != "fold":
        for key in ("zero", "merge"):
            if key in data:
                raise err(f"'{key}' belongs to method fold (this document's method is {method})", key)

    types = TypeNames()
    try:
        input_type = types.parse(data["input"], "input", path)
        output_type = types.parse(data["output"], "output", path)
    except PFAError as first:
        # a named type may be defined later in the document (in a cell, a pool or a function): register those
        # definitions first, then read input and output again
        _predefine(data, types, path)
        if not types.named:
            raise first
        input_type = types.parse(data["input"], "input", path)
        output_type = types.parse(data["output"], "output", path)
    doc = Document(name=str(data.get("name", "")), input=input_type, output=output_type,
                   action=_as_list(data["action"]), types=types, metadata=dict(data.get("metadata") or {}),
                   doc=str(data.get("doc", "")), path=path, raw=data, method=method,
                   begin=_as_list(data["begin"]) if data.get("begin") is not None else [],
                   end=_as_list(data["end"]) if data.get("end") is not None else [],
                   merge=_as_list(data["merge"]) if data.get("merge") is not None else [])
    if method == "fold":
        doc.zero = decode(data["zero"], output_type, "zero", path)

    for kind in ("cells", "pools"):
        section = data.get(kind) or {}
        if not isinstance(section, dict):
            raise err(f"'{kind}' must be an object of {kind[:-1]} declarations", kind)
        for name, spec in section.items():
            where = f"{kind}.{name}"
            if not isinstance(spec, dict) or "type" not in spec or "init" not in spec:
                raise err(f"a {kind[:-1]} needs 'type' and 'init'", where)
            extra = sorted(set(spec) - {"type", "init", "shared", "rollback", "source"})
            if extra:
                raise err(f"unknown field(s) {', '.join(extra)} in a {kind[:-1]} declaration", where)
            if spec.get("source", "embedded") != "embedded":
                raise err(f"only embedded {kind} are supported (source {spec['source']!r})", f"{where}.source")
            t = types.parse(spec["type"], f"{where}.type", path)
            if kind == "cells":
                init = decode(spec["init"], t, f"{where}.init", path)
            else:
                if not isinstance(spec["init"], dict):
                    raise err("a pool's init is an object of named values", f"{where}.init")
                init = {k: decode(v, t, f"{where}.init.{k}", path) for k, v in spec["init"].items()}
            getattr(doc, kind)[name] = Cell(name, t, init, bool(spec.get("shared")), bool(spec.get("rollback")))

    fcns = data.get("fcns") or {}
    if not isinstance(fcns, dict):
        raise err("'fcns' must be an object of function definitions", "fcns")
    for name, spec in fcns.items():
        doc.fcns[name] = parse_fcndef(spec, types, f"fcns.{name}", path, name=name)

    return doc


def _predefine(data: dict[str, Any], types: TypeNames, path: Any) -> None:
    """Register the named types that cells, pools and function signatures define (best effort: a definition
    that itself refers to a later one is left for the normal pass)."""
    for kind in ("cells", "pools"):
        for name, spec in (data.get(kind) or {}).items():
            if isinstance(spec, dict) and "type" in spec:
                try:
                    types.parse(spec["type"], f"{kind}.{name}.type", path)
                except PFAError:
                    pass
    for name, spec in (data.get("fcns") or {}).items():
        if isinstance(spec, dict):
            for i, p in enumerate(spec.get("params") or []):
                if isinstance(p, dict):
                    for pname, ptype in p.items():
                        try:
                            types.parse(ptype, f"fcns.{name}.params[{i}]", path)
                        except PFAError:
                            pass


def parse_fcndef(spec: Any, types: TypeNames, where: str, path: Any, name: str = "") -> FcnDef:
    """Parse a function definition (`{"params": [...], "ret": T, "do": ...}`)."""
    if not isinstance(spec, dict) or not {"params", "ret", "do"} <= set(spec):
        raise PFAError("a function definition needs 'params', 'ret' and 'do'", path=path, where=where)
    params = []
    if not isinstance(spec["params"], list):
        raise PFAError("'params' is a list of {name: type} objects", path=path, where=f"{where}.params")
    for i, p in enumerate(spec["params"]):
        if not isinstance(p, dict) or len(p) != 1:
            raise PFAError("each parameter is a one-entry object {name: type}", path=path,
                           where=f"{where}.params[{i}]")
        (pname, ptype), = p.items()
        params.append((pname, types.parse(ptype, f"{where}.params[{i}].{pname}", path)))
    ret = types.parse(spec["ret"], f"{where}.ret", path)
    return FcnDef(name, params, ret, _as_list(spec["do"]), where)


# Keys of special forms whose values are not expressions (types, literal data, names).
_NOT_EXPR = {"@", "type", "value", "params", "ret", "as", "doc", "error", "code", "cell", "pool", "fcn", "named",
             "string", "base64", "int", "long", "float", "double", "boolean", "null", "namespace"}


def stateful_construct(doc: Document) -> tuple[str, str] | None:
    """The first construct that makes `doc` stateful or order-dependent, as (description, JSON path), or None
    for a pure document (one output per input, computed from that input alone)."""
    if doc.method != "map":
        return f"method {doc.method}", "method"
    for phase in ("begin", "end"):
        if getattr(doc, phase):
            return f"'{phase}'", phase
    for expr, where in [(doc.action, "action")] + [(f.body, f"{f.where}.do") for f in doc.fcns.values()]:
        found = _scan_stateful(expr, where)
        if found:
            return found
    return None


def _scan_stateful(expr: Any, where: str) -> tuple[str, str] | None:
    if isinstance(expr, list):
        for i, e in enumerate(expr):
            found = _scan_stateful(e, f"{where}[{i}]")
            if found:
                return found
        return None
    if not isinstance(expr, dict):
        return None
    if "type" in expr and "value" in expr and len(set(expr) - {"@"}) == 2:
        return None  # a literal: data, not code
    if "cell" in expr and "to" in expr:
        return f"writing cell '{expr['cell']}' ('cell' with 'to')", where
    if "pool" in expr and ("to" in expr or "del" in expr):
        return f"writing pool '{expr['pool']}' ('pool' with '{'to' if 'to' in expr else 'del'}')", where
    if "log" in expr:
        return "'log' (a side effect)", where
    for key, value in expr.items():
        here = f"{where}.{key}"
        if key in STATEFUL_FORMS:
            return STATEFUL_FORMS[key], here
        for prefix, reason in STATEFUL_PREFIXES.items():
            if key.startswith(prefix) or (key == "fcn" and isinstance(value, str) and value.startswith(prefix)):
                return f"{value if key == 'fcn' else key}: {reason}", here
        if key in _NOT_EXPR:
            continue
        if key in ("new", "let", "set", "for", "step", "ifnotnull", "fill") and isinstance(value, dict):
            for k, v in value.items():
                found = _scan_stateful(v, f"{here}.{k}")
                if found:
                    return found
            continue
        found = _scan_stateful(value, here)
        if found:
            return found
    return None
