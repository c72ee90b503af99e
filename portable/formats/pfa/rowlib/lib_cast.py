"""cast.*, bytes.*, parse.*: conversions between types and encodings."""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from ..rows import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, f32, to_json
from .. import types as T
from . import err, factory, fn


@fn("cast.signed")
def signed(x: int, bits: int) -> int:
    if bits < 2 or bits > 64:
        raise err("unrepresentable unsigned number", 17000)
    r = x & ((1 << bits) - 1)
    return r - (1 << bits) if r >= 1 << (bits - 1) else r


@fn("cast.unsigned")
def unsigned(x: int, bits: int) -> int:
    if bits < 1 or bits > 63:
        raise err("unrepresentable unsigned number", 17010)
    return x & ((1 << bits) - 1)


def _round_to_int(x: Any, lo: int, hi: int, name: str, code: int) -> int:
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            raise err(f"{name} overflow", code)
        x = int(math.floor(x + 0.5))  # "rounding if necessary": half up, as m.round
    if not lo <= x <= hi:
        raise err(f"{name} overflow", code)
    return x


fn("cast.int")(lambda x: _round_to_int(x, INT_MIN, INT_MAX, "int", 17020))
fn("cast.long")(lambda x: _round_to_int(x, LONG_MIN, LONG_MAX, "long", 17030))
fn("cast.float")(lambda x: f32(x))
fn("cast.double")(lambda x: float(x))


def _fanout(name: str, code: int, conv: Any) -> None:
    @factory(name)
    def make(b: Any) -> Any:
        t0 = b.t(0)

        def run(x: Any, *rest: Any) -> list[Any]:
            if not rest:
                syms = list(getattr(t0, "symbols", ()))
                return [conv(s == x) for s in syms]
            if len(rest) == 2:
                dictionary, out_of_range = rest
                if len(set(dictionary)) != len(dictionary):
                    raise err("non-distinct values in dictionary", code)
                out = [conv(d == x) for d in dictionary]
                if out_of_range:
                    out.append(conv(x not in dictionary))
                return out
            minimum, maximum, out_of_range = rest
            out = [conv(i == x) for i in range(minimum, maximum)]
            if out_of_range:
                out.append(conv(not minimum <= x < maximum))
            return out
        return run


_fanout("cast.fanoutBoolean", 17060, bool)
_fanout("cast.fanoutInt", 17070, int)
_fanout("cast.fanoutLong", 17080, int)
_fanout("cast.fanoutFloat", 17090, float)
_fanout("cast.fanoutDouble", 17100, float)


@factory("cast.json")
def cast_json(b: Any) -> Any:
    t = b.t(0)
    return lambda x: json.dumps(to_json(x, t, tagged=True), separators=(",", ":"))


@factory("cast.avro")
def cast_avro(b: Any) -> Any:
    t = b.t(0)
    return lambda x: avro_encode(x, t)


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def avro_encode(x: Any, t: Any) -> bytes:
    """Avro binary encoding (the specification's, as `fastavro`/`avro` write it) of value `x` of type `t`."""
    import struct

    if isinstance(t, T.Prim):
        n = t.name
        if n == "null":
            return b""
        if n == "boolean":
            return b"\x01" if x else b"\x00"
        if n in ("int", "long"):
            return _zigzag(int(x))
        if n == "float":
            return struct.pack("<f", x)
        if n == "double":
            return struct.pack("<d", x)
        if n == "string":
            raw = x.encode("utf-8")
            return _zigzag(len(raw)) + raw
        if n == "bytes":
            return _zigzag(len(x)) + bytes(x)
    if isinstance(t, T.Fixed):
        return bytes(x)
    if isinstance(t, T.Enum):
        return _zigzag(t.symbols.index(x))
    if isinstance(t, T.Array):
        if not x:
            return b"\x00"
        return _zigzag(len(x)) + b"".join(avro_encode(v, t.items) for v in x) + b"\x00"
    if isinstance(t, T.Map):
        if not x:
            return b"\x00"
        return _zigzag(len(x)) + b"".join(avro_encode(k, T.STRING) + avro_encode(v, t.values)
                                          for k, v in x.items()) + b"\x00"
    if isinstance(t, T.Record):
        return b"".join(avro_encode(x[f], ft) for f, ft in t.fields.items())
    if isinstance(t, T.Union):
        from ..rows import value_fits

        for i, bt in enumerate(t.types):
            if value_fits(x, bt):
                return _zigzag(i) + avro_encode(x, bt)
    raise err(f"cannot encode a value of type {getattr(t, 'describe', lambda: '?')()} as Avro")


# -- bytes --------------------------------------------------------------------------------------------------------
fn("bytes.len")(lambda x: len(x))
fn("bytes.subseq")(lambda x, start, end: bytes(x[start:end]))


@fn("bytes.subseqto")
def bytes_subseqto(x: bytes, start: int, end: int, replacement: bytes) -> bytes:
    n = len(x)

    def norm(i: int) -> int:
        return min(max(i + n if i < 0 else i, 0), n)
    a, b = norm(start), norm(end)
    return bytes(x[:a]) + bytes(replacement) + bytes(x[max(a, b):])


_CODECS = {"Ascii": "ascii", "Latin1": "latin-1", "Utf8": "utf-8", "Utf16": "utf-16", "Utf16be": "utf-16-be",
           "Utf16le": "utf-16-le"}
_DEC = {"Ascii": 16090, "Latin1": 16100, "Utf8": 16110, "Utf16": 16120, "Utf16be": 16130, "Utf16le": 16140}
_ENC = {"Ascii": 16150, "Latin1": 16160, "Utf8": 16170, "Utf16": 16180, "Utf16be": 16190, "Utf16le": 16200}


def _is(codec: str) -> Any:
    def run(x: Any) -> bool:
        try:
            if isinstance(x, str):
                x.encode(codec)
            else:
                bytes(x).decode(codec)
            return True
        except (UnicodeError, ValueError):
            return False
    return run


def _dec(codec: str, code: int) -> Any:
    def run(x: bytes) -> str:
        try:
            return bytes(x).decode(codec)
        except (UnicodeError, ValueError):
            raise err("invalid bytes", code) from None
    return run


def _enc(codec: str, code: int) -> Any:
    def run(s: str) -> bytes:
        try:
            return s.encode(codec)
        except (UnicodeError, ValueError):
            raise err("invalid string", code) from None
    return run


for _k, _c in _CODECS.items():
    fn(f"bytes.is{_k}")(_is(_c))
    fn(f"bytes.decode{_k}")(_dec(_c, _DEC[_k]))
    fn(f"bytes.encode{_k}")(_enc(_c, _ENC[_k]))

fn("bytes.toBase64")(lambda x: base64.b64encode(bytes(x)).decode("ascii"))


@fn("bytes.fromBase64")
def from_base64(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise err("invalid base64", 16220) from None


# -- parse --------------------------------------------------------------------------------------------------------
_INT_RE = re.compile(r"[-+]?[0-9a-z]+")
_FLOAT_RE = re.compile(r"[-+]?(\.?[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?")


def _parse_int(s: str, base: int, lo: int, hi: int, msg: str, code: int) -> int:
    if base < 2 or base > 36:
        raise err("base out of range", code + 1)
    text = s.strip().lower()
    if not _INT_RE.fullmatch(text):
        raise err(msg, code)
    try:
        v = int(text, base)
    except ValueError:
        raise err(msg, code) from None
    if not lo <= v <= hi:
        raise err(msg, code)
    return v


fn("parse.int")(lambda s, base: _parse_int(s, base, INT_MIN, INT_MAX, "not an integer", 33000))
fn("parse.long")(lambda s, base: _parse_int(s, base, LONG_MIN, LONG_MAX, "not a long integer", 33010))


def _parse_float(s: str, msg: str, code: int) -> float:
    text = s.strip().lower()
    if text in ("nan", "inf", "+inf", "-inf"):
        return float(text)
    if not _FLOAT_RE.fullmatch(text):
        raise err(msg, code)
    return float(text)


fn("parse.float")(lambda s: f32(_parse_float(s, "not a single-precision float", 33020)))
fn("parse.double")(lambda s: _parse_float(s, "not a double-precision float", 33030))
