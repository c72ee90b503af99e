"""s.*: strings (Python slice conventions where the spec says so)."""
from __future__ import annotations

import math
import re
from typing import Any

from . import err, factory, fn, sized
from .. import types as T

fn("s.len")(lambda s: len(s))
fn("s.substr")(lambda s, start, end: s[start:end])


@fn("s.substrto")
def substrto(s: str, start: int, end: int, replacement: str) -> str:
    n = len(s)
    a = _norm(start, n)
    b = _norm(end, n)
    if b < a:
        b = a
    return s[:a] + replacement + s[b:]


def _norm(i: int, n: int) -> int:
    if i < 0:
        i += n
    return min(max(i, 0), n)


fn("s.contains")(lambda h, n: n in h)
fn("s.count")(lambda h, n: h.count(n) if n else 0)
fn("s.index")(lambda h, n: h.find(n))
fn("s.rindex")(lambda h, n: h.rfind(n))
fn("s.startswith")(lambda h, n: h.startswith(n))
fn("s.endswith")(lambda h, n: h.endswith(n))
@fn("s.join")
def s_join(a: list, sep: str) -> str:
    sized(sum(map(len, a)) + len(sep) * max(len(a) - 1, 0), "s.join's string")
    return sep.join(a)



fn("s.split")(lambda s, sep: s.split(sep) if sep else [])
@fn("s.concat")
def s_concat(x: str, y: str) -> str:
    sized(len(x) + len(y), "s.concat's string")
    return x + y


@fn("s.repeat")
def s_repeat(s: str, n: int) -> str:
    sized(len(s) * max(n, 0), "s.repeat's string")
    return s * max(n, 0)



fn("s.lower")(lambda s: s.lower())
fn("s.upper")(lambda s: s.upper())
fn("s.lstrip")(lambda s, chars: s.lstrip(chars))
fn("s.rstrip")(lambda s, chars: s.rstrip(chars))
fn("s.strip")(lambda s, chars: s.strip(chars))
@fn("s.replaceall")
def s_replaceall(s: str, o: str, r: str) -> str:
    if not o:
        return s
    if len(r) > len(o):
        sized(len(s) + s.count(o) * (len(r) - len(o)), "s.replaceall's string")
    return s.replace(o, r)



fn("s.replacefirst")(lambda s, o, r: s.replace(o, r, 1) if o else s)


@fn("s.replacelast")
def replacelast(s: str, o: str, r: str) -> str:
    if not o:
        return s
    i = s.rfind(o)
    return s if i < 0 else s[:i] + r + s[i + len(o):]


@fn("s.translate")
def translate(s: str, old: str, new: str) -> str:
    table: dict[int, Any] = {}
    for i, c in enumerate(old):
        if ord(c) not in table:
            table[ord(c)] = new[i] if i < len(new) else None
    return s.translate(table)


def _width_fmt(x: Any, width: int, zero: bool, conv: str, code: int) -> str:
    sized(abs(width), "a string padded to its width")
    if zero:
        if width < 0:
            raise err("negative width cannot be used with zero-padding", code)
        return "" if width == 0 else format(x, f"0{width}{conv}")
    if width < 0:
        return format(x, f"<{-width}{conv}")
    return "" if width == 0 else format(x, f"{width}{conv}")


@fn("s.hex")
def s_hex(x: int, width: int | None = None, zero: bool = False) -> str:
    if x < 0:
        raise err("negative number", 39111)
    if width is None:
        return format(x, "x")
    return _width_fmt(x, width, zero, "x", 39110)


@fn("s.int")
def s_int(x: int, width: int | None = None, zero: bool = False) -> str:
    if width is None:
        return str(x)
    return _width_fmt(x, width, zero, "d", 39240)


@factory("s.number")
def s_number(b: Any) -> Any:
    def run(*args: Any) -> str:
        x = args[0]
        if isinstance(x, int) and (len(args) == 1 or len(args) == 3 and isinstance(args[2], bool)):
            if len(args) == 1:
                return str(x)
            return _width_fmt(x, args[1], args[2], "d", 39120)
        if len(args) == 3:
            _, width, precision = args
            lo, hi = 0.0001, 100000.0
        else:
            _, width, precision, lo, hi = args
        return _number(float(x), width, precision, lo, hi)
    return run


def _number(x: float, width: int | None, precision: int | None, lo: float, hi: float) -> str:
    if precision is not None and precision < 0:
        raise err("negative precision", 39121)
    sized(max(abs(width or 0), precision or 0), "s.number's string")  # format() builds it in one C call
    if math.isnan(x):
        body = "nan"
    elif math.isinf(x):
        body = "inf" if x > 0 else "-inf"
    else:
        if x == 0.0:
            x = 0.0
        v = abs(x)
        conv = "f" if v == 0.0 or lo <= v <= hi else "e"
        body = format(x, f".{6 if precision is None else precision}{conv}")
        if precision is None:
            m = re.search(r"\.[0-9]+?(0+)(e|$)", body)
            if m is not None:
                body = body[:m.start(1)] + body[m.end(1):]
    if width is None or width == 0:
        return body if width is None else ""
    if width < 0:
        return body.ljust(-width)
    return body.rjust(width)


__all__ = ["T"]
