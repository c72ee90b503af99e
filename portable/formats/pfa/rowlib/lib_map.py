"""map.*: maps (Python dicts); sets are maps from base64 Avro serialisations to the objects."""
from __future__ import annotations

import base64
from functools import cmp_to_key
from typing import Any

from ..rows import compare
from .. import types as T
from . import err, factory, fn
from .lib_cast import avro_encode


def _vals(b: Any, i: int = 0) -> Any:
    t = b.t(i)
    return t.values if isinstance(t, T.Map) else None


def set_key(x: Any, t: Any) -> str:
    return base64.b64encode(avro_encode(x, t)).decode("ascii")


fn("map.len")(lambda m: len(m))
fn("map.keys")(lambda m: list(m.keys()))
fn("map.values")(lambda m: list(m.values()))


@fn("map.containsKey")
def contains_key(m: dict, key: Any) -> bool:
    if callable(key):
        return any(key(k) for k in m)
    return key in m


@fn("map.containsValue")
def contains_value(m: dict, value: Any) -> bool:
    if callable(value):
        return any(value(v) for v in m.values())
    return any(v == value for v in m.values())


@factory("map.add")
def add(b: Any) -> Any:
    t = _vals(b)

    def run(m: dict, *args: Any) -> dict:
        out = dict(m)
        if len(args) == 2:
            out[args[0]] = args[1]
        else:
            out[set_key(args[0], t)] = args[0]
        return out
    return run


@fn("map.remove")
def remove(m: dict, key: str) -> dict:
    if key not in m:
        return m
    out = dict(m)
    del out[key]
    return out


fn("map.only")(lambda m, keys: {k: v for k, v in m.items() if k in set(keys)})
fn("map.except")(lambda m, keys: {k: v for k, v in m.items() if k not in set(keys)})
fn("map.update")(lambda base, overlay: {**base, **overlay})
fn("map.split")(lambda m: [{k: v} for k, v in m.items()])


@fn("map.join")
def join(a: list) -> dict:
    out: dict = {}
    for m in a:
        out.update(m)
    return out


def _arg(name: str, code: int, sign: int, with_n: bool, with_lt: bool) -> None:
    @factory(name)
    def make(b: Any) -> Any:
        t = _vals(b)

        def run(m: dict, *rest: Any) -> Any:
            if not m:
                raise err("empty map", code)
            n = rest[0] if with_n else 1
            lt = rest[-1] if with_lt else None
            if with_n and n < 0:
                raise err("n < 0", code + 1)
            if lt is not None:
                def cmp(x: Any, y: Any) -> int:
                    return -1 if lt(x, y) else (1 if lt(y, x) else 0)
            else:
                def cmp(x: Any, y: Any) -> int:
                    return compare(x, y, t)
            keys = sorted(m, key=cmp_to_key(lambda k1, k2: (sign * -cmp(m[k1], m[k2])) or
                                            ((k1 > k2) - (k1 < k2))))
            return keys[:n] if with_n else keys[0]
        return run


_arg("map.argmax", 26120, 1, False, False)
_arg("map.argmin", 26130, -1, False, False)
_arg("map.argmaxLT", 26140, 1, False, True)
_arg("map.argminLT", 26150, -1, False, True)
_arg("map.argmaxN", 26160, 1, True, False)
_arg("map.argminN", 26170, -1, True, False)
_arg("map.argmaxNLT", 26180, 1, True, True)
_arg("map.argminNLT", 26190, -1, True, True)


@factory("map.toset")
def toset(b: Any) -> Any:
    t = b.t(0)
    it = t.items if isinstance(t, T.Array) else None
    return lambda a: {set_key(x, it): x for x in a}


fn("map.fromset")(lambda s: list(s.values()))


@factory("map.in")
def in_(b: Any) -> Any:
    t = _vals(b)
    return lambda s, x: set_key(x, t) in s


fn("map.union")(lambda a, b: {**a, **b})
fn("map.intersection")(lambda a, b: {k: v for k, v in a.items() if k in b})
fn("map.diff")(lambda a, b: {k: v for k, v in a.items() if k not in b})
fn("map.symdiff")(lambda a, b: {**{k: v for k, v in a.items() if k not in b},
                                 **{k: v for k, v in b.items() if k not in a}})
fn("map.subset")(lambda little, big: all(k in big for k in little))
fn("map.disjoint")(lambda a, b: not any(k in b for k in a))

fn("map.map")(lambda m, f: {k: f(v) for k, v in m.items()})
fn("map.mapWithKey")(lambda m, f: {k: f(k, v) for k, v in m.items()})
fn("map.filter")(lambda m, f: {k: v for k, v in m.items() if f(v)})
fn("map.filterWithKey")(lambda m, f: {k: v for k, v in m.items() if f(k, v)})


@fn("map.filterMap")
def filter_map(m: dict, f: Any) -> dict:
    out = {}
    for k, v in m.items():
        y = f(v)
        if y is not None:
            out[k] = y
    return out


@fn("map.filterMapWithKey")
def filter_map_with_key(m: dict, f: Any) -> dict:
    out = {}
    for k, v in m.items():
        y = f(k, v)
        if y is not None:
            out[k] = y
    return out


@fn("map.flatMap")
def flat_map(m: dict, f: Any) -> dict:
    out: dict = {}
    for v in m.values():
        out.update(f(v))
    return out


@fn("map.flatMapWithKey")
def flat_map_with_key(m: dict, f: Any) -> dict:
    out: dict = {}
    for k, v in m.items():
        out.update(f(k, v))
    return out


@fn("map.zipmap")
def zipmap(*args: Any) -> dict:
    *maps, f = args
    keys = set(maps[0])
    if any(set(m) != keys for m in maps[1:]):
        raise err("misaligned maps", 26370)
    return {k: f(*[m[k] for m in maps]) for k in maps[0]}


@fn("map.zipmapWithKey")
def zipmap_with_key(*args: Any) -> dict:
    *maps, f = args
    keys = set(maps[0])
    if any(set(m) != keys for m in maps[1:]):
        raise err("misaligned maps", 26380)
    return {k: f(k, *[m[k] for m in maps]) for k in maps[0]}


fn("map.corresponds")(lambda a, b, f: set(a) == set(b) and all(f(a[k], b[k]) for k in a))
fn("map.correspondsWithKey")(lambda a, b, f: set(a) == set(b) and all(f(k, a[k], b[k]) for k in a))
