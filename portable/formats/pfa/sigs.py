"""The spec's library signatures (signatures.json, from libfcns.xml) and a best-effort resolver of return types.

The row-by-row engine computes with Python values and needs static types only where PFA's semantics depend on
them (32-bit int versus 64-bit long overflow, float rounding, the type of a `let` symbol). `resolve` matches the
argument types of a call against the function's generic signatures (wildcards `any`/`ref`, records by their
fields, functions by their parameter and return types) and returns the instantiated return type, or None when
an argument type is unknown or nothing matches; the engine then treats the result dynamically.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import types as T

_NUM = ("int", "long", "float", "double")


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """name -> {"sigs": [...], "errors": [codes], "nondeterministic"?: kind} for all 449 spec functions."""
    return json.loads((Path(__file__).with_name("signatures.json")).read_text(encoding="utf-8"))


def error_codes(name: str) -> list[int]:
    return table().get(name, {}).get("errors", [])


class LibRef(T.AvroType):
    """The type of `{"fcn": "some.library.function"}`: resolved against the parameter types it is given."""

    def __init__(self, fname: str) -> None:
        self.fname = fname
        self.name = f"fcn {fname}"


def _accepts_prim(pname: str, t: T.AvroType) -> bool:
    if not isinstance(t, T.Prim):
        return False
    if t.name == pname:
        return True
    if pname in _NUM and t.name in _NUM:
        return T.NUMERIC_RANK[t.name] <= T.NUMERIC_RANK[pname]
    return False


def _match(pat: Any, t: T.AvroType | None, b: dict[str, Any]) -> bool:
    if t is None:
        return True
    if isinstance(pat, str):
        if pat in T.PRIMITIVES:
            if isinstance(t, T.Union) and not isinstance(pat, dict):
                return False
            return _accepts_prim(pat, t)
        return True
    if "any" in pat:
        label, of = pat["any"], pat["of"]
        if isinstance(t, (T.FcnType, LibRef)):
            return False
        if of is not None and not (isinstance(t, T.Prim) and t.name in of):
            return False
        prev = b.get(label)
        if prev is None:
            b[label] = t
            return True
        return _rebind(label, prev, t, b, of)
    if "ref" in pat:
        label = pat["ref"]
        prev = b.get(label)
        if prev is None:
            b[label] = t
            return True
        if isinstance(prev, T.Record) and isinstance(t, T.Record):
            return prev.name == t.name
        return _rebind(label, prev, t, b, None)
    if "array" in pat:
        return isinstance(t, T.Array) and _match(pat["array"], t.items, b)
    if "map" in pat:
        return isinstance(t, T.Map) and _match(pat["map"], t.values, b)
    if "union" in pat:
        members = pat["union"]
        if isinstance(t, T.Union):
            rest = [m for m in t.types]
            for m in members:
                if m == "null":
                    if not any(T.is_null(x) for x in rest):
                        continue
                    rest = [x for x in rest if not T.is_null(x)]
            if not rest:
                return True
            wild = [m for m in members if isinstance(m, dict) and ("any" in m or "ref" in m)]
            if wild and len(members) - len(wild) == sum(1 for m in members if m == "null"):
                inner = rest[0] if len(rest) == 1 else T.Union(tuple(rest))
                return _match(wild[0], inner, b)
            return all(any(_match(m, x, dict(b)) for m in members) for x in rest) and all(
                any(_match(m, x, b) for m in members) for x in rest)
        return any(_match(m, t, b) for m in members)
    if "record" in pat:
        if not isinstance(t, T.Record):
            return False
        for fname, fpat in pat.get("fields", {}).items():
            if fname not in t.fields or not _match(fpat, t.fields[fname], b):
                return False
        prev = b.get(pat["record"])
        if prev is not None and prev is not t and getattr(prev, "name", None) != t.name:
            return False
        b[pat["record"]] = t
        return True
    if "enum" in pat:
        if not isinstance(t, T.Enum):
            return False
        b.setdefault(pat["enum"], t)
        return True
    if "fixed" in pat:
        if not isinstance(t, T.Fixed):
            return False
        b.setdefault(pat["fixed"], t)
        return True
    if "fn" in pat:
        if isinstance(t, LibRef):
            params = [instantiate(p, b) for p in pat["fn"]]
            ret = resolve(t.fname, params)
            return ret is None or _match(pat["ret"], ret, b)
        if not isinstance(t, T.FcnType):
            return False
        if len(t.params) != len(pat["fn"]):
            return False
        for p, pt in zip(pat["fn"], t.params):
            if isinstance(p, dict) and "ref" in p and p["ref"] in b and b[p["ref"]] is not None:
                continue  # contravariant: the argument's parameter accepts what the library passes
            if not _match(p, pt, b):
                return False
        return _match(pat["ret"], t.ret, b)
    return True


def _rebind(label: str, prev: T.AvroType, t: T.AvroType, b: dict[str, Any], of: Any) -> bool:
    if prev == t:
        return True
    if T.is_numeric(prev) and T.is_numeric(t):
        b[label] = T.wider(prev, t)
        return True
    if isinstance(prev, T.Union) or isinstance(t, T.Union):
        b[label] = _union(prev, t)
        return True
    if getattr(prev, "name", None) == getattr(t, "name", None) and isinstance(prev, (T.Record, T.Enum, T.Fixed)):
        return True
    if isinstance(prev, T.Array) and isinstance(t, T.Array):
        return prev.items == t.items or (T.is_numeric(prev.items) and T.is_numeric(t.items))
    return False


def _union(a: T.AvroType, b: T.AvroType) -> T.AvroType:
    out: list[T.AvroType] = []
    for t in (a, b):
        for x in (t.types if isinstance(t, T.Union) else (t,)):
            if x not in out:
                out.append(x)
    return out[0] if len(out) == 1 else T.Union(tuple(out))


def instantiate(pat: Any, b: dict[str, Any]) -> T.AvroType | None:
    if isinstance(pat, str):
        return T.Prim(pat) if pat in T.PRIMITIVES else None
    if "any" in pat or "ref" in pat:
        return b.get(pat.get("any") or pat.get("ref"))
    if "array" in pat:
        inner = instantiate(pat["array"], b)
        return T.Array(inner) if inner is not None else None
    if "map" in pat:
        inner = instantiate(pat["map"], b)
        return T.Map(inner) if inner is not None else None
    if "union" in pat:
        ms = [instantiate(m, b) for m in pat["union"]]
        if any(m is None for m in ms):
            return None
        out: list[T.AvroType] = []
        for m in ms:
            for x in (m.types if isinstance(m, T.Union) else (m,)):
                if x not in out:
                    out.append(x)
        return out[0] if len(out) == 1 else T.Union(tuple(out))
    for k in ("record", "enum", "fixed"):
        if k in pat:
            return b.get(pat[k])
    return None


def resolve(name: str, argtypes: list[T.AvroType | None]) -> T.AvroType | None:
    """The return type of library function `name` called with arguments of these types (None: unknown)."""
    entry = table().get(name)
    if entry is None:
        return None
    for sig in entry["sigs"]:
        params = sig["params"]
        if len(params) != len(argtypes):
            continue
        b: dict[str, Any] = {}
        ok = True
        for (_, pat), t in zip(params, argtypes):
            if not _match(pat, t, b):
                ok = False
                break
        if ok:
            return instantiate(sig["ret"], b)
    return None


def arities(name: str) -> set[int]:
    return {len(s["params"]) for s in table().get(name, {}).get("sigs", [])}
