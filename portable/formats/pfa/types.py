"""Avro types as PFA uses them: parsing schemas (named types, recursive records) and checking JSON values.

A value in a PFA document (a cell's `init`, a `value` literal) is Avro JSON: a union value is tagged with its
branch (`{"double": 7}`), null is `null`. `decode` checks such a value against its type and returns plain
Python data with the tags removed, raising PFAError with the JSON path of the first thing that is wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...errors import PFAError

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
NUMERIC_RANK = {"int": 0, "long": 1, "float": 2, "double": 3}
INT_RANGE = {"int": (-2**31, 2**31 - 1), "long": (-2**63, 2**63 - 1)}


class AvroType:
    """Base class of the type objects; `name` is the Avro type name (`double`, `array`, a record's name)."""

    name: str = "?"

    def describe(self) -> str:
        return self.name


@dataclass(eq=False)
class Prim(AvroType):
    name: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prim) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(eq=False)
class Array(AvroType):
    items: AvroType
    name: str = "array"

    def describe(self) -> str:
        return f"array<{self.items.describe()}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Array) and other.items == self.items

    def __hash__(self) -> int:
        return hash(("array", self.items))


@dataclass(eq=False)
class Map(AvroType):
    values: AvroType
    name: str = "map"

    def describe(self) -> str:
        return f"map<{self.values.describe()}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and other.values == self.values

    def __hash__(self) -> int:
        return hash(("map", self.values))


@dataclass(eq=False)
class Record(AvroType):
    name: str
    fields: dict[str, AvroType] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(("record", self.name))


@dataclass(eq=False)
class Enum(AvroType):
    name: str
    symbols: tuple[str, ...] = ()

    def __hash__(self) -> int:
        return hash(("enum", self.name))


@dataclass(eq=False)
class Fixed(AvroType):
    name: str
    size: int = 0

    def __hash__(self) -> int:
        return hash(("fixed", self.name))


@dataclass(eq=False)
class Union(AvroType):
    types: tuple[AvroType, ...]
    name: str = "union"

    def describe(self) -> str:
        return "union[" + ", ".join(t.describe() for t in self.types) + "]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Union) and other.types == self.types

    def __hash__(self) -> int:
        return hash(("union", self.types))

    @property
    def non_null(self) -> tuple[AvroType, ...]:
        return tuple(t for t in self.types if not is_null(t))

    @property
    def nullable(self) -> bool:
        return any(is_null(t) for t in self.types)


@dataclass(eq=False)
class FcnType(AvroType):
    """The type of a function argument (not an Avro type; PFA's own)."""

    params: tuple[AvroType, ...]
    ret: AvroType
    name: str = "function"


NULL, BOOLEAN, INT, LONG, FLOAT, DOUBLE, STRING, BYTES = (Prim(n) for n in (
    "null", "boolean", "int", "long", "float", "double", "string", "bytes"))


def is_null(t: AvroType) -> bool:
    return isinstance(t, Prim) and t.name == "null"


def is_numeric(t: AvroType) -> bool:
    return isinstance(t, Prim) and t.name in NUMERIC_RANK


def is_integer(t: AvroType) -> bool:
    return isinstance(t, Prim) and t.name in ("int", "long")


def is_stringlike(t: AvroType) -> bool:
    return isinstance(t, Enum) or (isinstance(t, Prim) and t.name == "string")


def accepts(decl: AvroType, t: AvroType | None) -> bool:
    """Whether a value of static type `t` may be given where `decl` is declared (the spec's type acceptance:
    numbers widen int -> long -> float -> double, unions take any branch's values, arrays and maps their items').
    Unknown static types (None) and named types are accepted: only a sure mismatch says False."""
    if t is None or decl == t:
        return True
    if isinstance(t, Union):
        return all(accepts(decl, b) for b in t.types)
    if isinstance(decl, Union):
        return any(accepts(b, t) for b in decl.types)
    if isinstance(decl, Prim) and isinstance(t, Prim):
        if decl.name in NUMERIC_RANK and t.name in NUMERIC_RANK:
            return NUMERIC_RANK[decl.name] >= NUMERIC_RANK[t.name]
        return decl.name == t.name
    if isinstance(decl, Array) and isinstance(t, Array):
        return accepts(decl.items, t.items)
    if isinstance(decl, Map) and isinstance(t, Map):
        return accepts(decl.values, t.values)
    if isinstance(decl, (Record, Enum, Fixed)) and isinstance(t, (Record, Enum, Fixed)):
        return type(decl) is type(t)
    if not isinstance(decl, (Prim, Array, Map, Record, Enum, Fixed)) or \
            not isinstance(t, (Prim, Array, Map, Record, Enum, Fixed)):
        return True  # a function type or something this check does not model
    return False


def wider(a: AvroType, b: AvroType) -> AvroType:
    """The numeric type both `a` and `b` promote to (PFA: int < long < float < double)."""
    return a if NUMERIC_RANK[a.name] >= NUMERIC_RANK[b.name] else b


def nullable_inner(t: AvroType) -> AvroType | None:
    """For `[X, "null"]` the type X; None for anything else."""
    if isinstance(t, Union) and t.nullable and len(t.non_null) == 1:
        return t.non_null[0]
    return None


def numpy_dtype(t: AvroType) -> str:
    """The numpy dtype name that holds values of a primitive-like type (DESIGN §4)."""
    inner = nullable_inner(t)
    if inner is not None:
        t = inner
    if isinstance(t, Enum):
        return "str"
    if isinstance(t, Prim):
        return {"boolean": "bool", "int": "int64", "long": "int64", "float": "float32", "double": "float64",
                "string": "str", "null": "float64"}.get(t.name, "object")
    return "object"


class TypeNames:
    """The named types of one document (records, enums, fixed), filled while schemas are parsed."""

    def __init__(self) -> None:
        self.named: dict[str, AvroType] = {}
        self.schemas: dict[str, Any] = {}  # name -> the JSON that defined it

    def parse(self, schema: Any, where: str, path: Any = None) -> AvroType:
        """Parse an Avro schema in JSON form.

        Raises:
            PFAError: the schema is malformed or refers to an unknown named type.
        """
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return Prim(schema)
            if schema in self.named:
                return self.named[schema]
            short = schema.rsplit(".", 1)[-1]
            if short in self.named:
                return self.named[short]
            known = ", ".join(sorted(self.named)) or "none"
            raise PFAError(f"unknown type '{schema}' (named types defined so far: {known})",
                           path=path, where=where)
        if isinstance(schema, list):
            if not schema:
                raise PFAError("a union must have at least one type", path=path, where=where)
            return Union(tuple(self.parse(s, f"{where}[{i}]", path) for i, s in enumerate(schema)))
        if not isinstance(schema, dict) or "type" not in schema:
            raise PFAError(f"not an Avro type: {_short(schema)}", path=path, where=where)
        kind = schema["type"]
        if kind == "array":
            return Array(self.parse(schema.get("items"), f"{where}.items", path))
        if kind == "map":
            return Map(self.parse(schema.get("values"), f"{where}.values", path))
        if kind in ("record", "enum", "fixed"):
            return self._named(schema, kind, where, path)
        if isinstance(kind, (str, list, dict)) and kind not in ("record", "enum", "fixed", "array", "map"):
            return self.parse(kind, f"{where}.type", path)
        raise PFAError(f"not an Avro type: {_short(schema)}", path=path, where=where)

    def _named(self, schema: dict[str, Any], kind: str, where: str, path: Any) -> AvroType:
        name = schema.get("name")
        if not isinstance(name, str) or not name:
            raise PFAError(f"an Avro {kind} needs a 'name'", path=path, where=where)
        name = name.rsplit(".", 1)[-1]
        if name in self.named:
            if self.schemas.get(name) == schema:
                return self.named[name]  # the same definition met again (an expression evaluated once more)
            raise PFAError(f"the type name '{name}' is defined twice", path=path, where=where)
        self.schemas[name] = schema
        if kind == "enum":
            symbols = schema.get("symbols")
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                raise PFAError(f"enum '{name}' needs a list of string 'symbols'", path=path, where=where)
            twice = _repeated(symbols)
            if twice is not None:
                raise PFAError(f"enum '{name}' lists the symbol '{_clip(twice)}' twice (Avro symbols are unique)",
                               path=path, where=f"{where}.symbols")
            t: AvroType = Enum(name, tuple(symbols))
            self.named[name] = t
            return t
        if kind == "fixed":
            size = schema.get("size")
            if type(size) is not int or size < 0:
                raise PFAError(f"fixed '{name}' needs a 'size' that is a non-negative integer, not {_short(size)}",
                               path=path, where=f"{where}.size")
            t = Fixed(name, size)
            self.named[name] = t
            return t
        rec = Record(name)
        self.named[name] = rec  # registered before its fields, so a field may refer to the record itself
        try:
            return self._fields(rec, schema, where, path)
        except BaseException:  # a record that failed is not defined: a second reading must fail the same way
            del self.named[name], self.schemas[name]
            raise

    def _fields(self, rec: Record, schema: dict[str, Any], where: str, path: Any) -> Record:
        name = rec.name
        fields = schema.get("fields")
        if not isinstance(fields, list):
            raise PFAError(f"record '{name}' needs a list of 'fields'", path=path, where=where)
        from ...limits import check_size

        check_size(len(fields), "max_record_fields", f"the number of fields of record '{name}'", path=path,
                   where=where)
        for i, f in enumerate(fields):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or "type" not in f:
                raise PFAError("a record field needs a 'name' and a 'type'", path=path,
                               where=f"{where}.fields[{i}]")
            if f["name"] in rec.fields:  # a dict would keep the last one silently; another engine, the first
                raise PFAError(f"record '{name}' has two fields named '{_clip(f['name'])}' (Avro field names are "
                               "unique)", path=path, where=f"{where}.fields[{i}]")
            rec.fields[f["name"]] = self.parse(f["type"], f"{where}.fields[{i}].type", path)
        return rec


def _repeated(items: list[str]) -> str | None:
    seen: set[str] = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return None


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decode(value: Any, t: AvroType, where: str, path: Any = None) -> Any:
    """Check Avro JSON `value` against `t` and return it untagged (ints stay int, doubles become float).

    Raises:
        PFAError: the value does not match the type; `where` extended to the offending element.
    """
    def bad(msg: str) -> PFAError:
        return PFAError(msg, path=path, where=where)

    if isinstance(t, Prim):
        n = t.name
        if n == "null":
            if value is not None:
                raise bad(f"expected null, found {_short(value)}")
            return None
        if n == "boolean":
            if not isinstance(value, bool):
                raise bad(f"expected a boolean, found {_short(value)}")
            return value
        if n in ("int", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise bad(f"expected an {n}, found {_short(value)}")
            lo, hi = INT_RANGE[n]
            if not lo <= value <= hi:
                raise bad(f"{value} is out of range for an {n}")
            return value
        if n in ("float", "double"):
            if isinstance(value, str) and value in ("inf", "-inf", "nan"):
                return float(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(f"expected a {n}, found {_short(value)}")
            return float(value)
        if n in ("string", "bytes"):
            if not isinstance(value, str):
                raise bad(f"expected a {n}, found {_short(value)}")
            return value
    if isinstance(t, Enum):
        if value not in t.symbols:
            raise bad(f"'{value}' is not a symbol of enum {t.name} ({', '.join(t.symbols)})")
        return value
    if isinstance(t, Fixed):
        if not isinstance(value, str):
            raise bad(f"expected fixed {t.name} as a string, found {_short(value)}")
        return value
    if isinstance(t, Array):
        if not isinstance(value, list):
            raise bad(f"expected an array ({t.describe()}), found {_short(value)}")
        return [decode(v, t.items, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if isinstance(t, Map):
        if not isinstance(value, dict):
            raise bad(f"expected a map ({t.describe()}), found {_short(value)}")
        return {k: decode(v, t.values, f"{where}.{k}", path) for k, v in value.items()}
    if isinstance(t, Record):
        if not isinstance(value, dict):
            raise bad(f"expected a {t.name} record, found {_short(value)}")
        extra = sorted(set(value) - set(t.fields))
        if extra:
            raise bad(f"record {t.name} has no field(s) {', '.join(extra)}; its fields are "
                      f"{', '.join(t.fields)}")
        out = {}
        for fname, ftype in t.fields.items():
            if fname not in value:
                if isinstance(ftype, Union) and ftype.nullable:
                    out[fname] = None
                    continue
                raise bad(f"record {t.name} is missing field '{fname}'")
            out[fname] = decode(value[fname], ftype, f"{where}.{fname}", path)
        return out
    if isinstance(t, Union):
        if value is None:
            if t.nullable:
                return None
            raise bad(f"null is not allowed by {t.describe()}")
        if not isinstance(value, dict) or len(value) != 1:
            raise bad(f"a value of {t.describe()} must be tagged with its branch, like "
                      f"{{\"{_branch_name(t.non_null[0])}\": ...}}; found {_short(value)}")
        (tag, inner), = value.items()
        for b in t.types:
            if _branch_name(b) == tag or (getattr(b, "name", None) == tag.rsplit(".", 1)[-1]
                                          and not isinstance(b, (Array, Map))):
                return decode(inner, b, f"{where}.{tag}", path)
        raise bad(f"'{tag}' is not a branch of {t.describe()}")
    raise bad(f"cannot check a value of type {t.describe()}")


def _branch_name(t: AvroType) -> str:
    return t.name


def branch_of(value: Any, t: AvroType) -> AvroType:
    """For a decoded value of union `t`, the branch it belongs to (records by their fields)."""
    if not isinstance(t, Union):
        return t
    for b in t.types:
        if matches(value, b):
            return b
    return t.types[0]


def matches(value: Any, t: AvroType) -> bool:
    """Whether an untagged Python value fits type `t` (used to tell union branches apart)."""
    if isinstance(t, Prim):
        return {"null": value is None, "boolean": isinstance(value, bool),
                "int": isinstance(value, int) and not isinstance(value, bool),
                "long": isinstance(value, int) and not isinstance(value, bool),
                "float": isinstance(value, float), "double": isinstance(value, float),
                "string": isinstance(value, str), "bytes": isinstance(value, str)}[t.name]
    if isinstance(t, Enum):
        return isinstance(value, str) and value in t.symbols
    if isinstance(t, Record):
        return isinstance(value, dict) and set(value) == set(t.fields)
    if isinstance(t, Array):
        return isinstance(value, list)
    if isinstance(t, Map):
        return isinstance(value, dict)
    if isinstance(t, Union):
        return any(matches(value, b) for b in t.types)
    return False


def literal_type(value: Any) -> AvroType:
    """The type PFA gives a bare JSON number literal: int if it fits 32 bits, then long, else double."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        lo, hi = INT_RANGE["int"]
        if lo <= value <= hi:
            return INT
        lo, hi = INT_RANGE["long"]
        return LONG if lo <= value <= hi else DOUBLE  # beyond 64 bits only a double holds it
    if isinstance(value, float) and not math.isnan(value):
        return DOUBLE
    return DOUBLE
