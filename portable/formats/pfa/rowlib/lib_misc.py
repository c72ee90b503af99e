"""interp.*: binning, nearest-neighbour and linear interpolation over tables of {x, to} records."""
from __future__ import annotations

import math
from typing import Any

from . import err, fn


@fn("interp.bin")
def bin_(x: float, *args: Any) -> int:
    if len(args) == 3:
        numbins, low, high = args
        if low >= high or math.isnan(low) or math.isnan(high):
            raise err("bad histogram range", 22000)
        if numbins < 1:
            raise err("bad histogram scale", 22001)
        if math.isnan(x) or x < low or x >= high:
            raise err("x out of range", 22002)
        out = int(math.floor(numbins * (x - low) / (high - low)))
        if out < 0 or out >= numbins:
            raise err("x out of range", 22002)
        return out
    origin, width = args
    if math.isnan(origin) or math.isinf(origin):
        raise err("bad histogram range", 22000)
    if width <= 0 or math.isnan(width):
        raise err("bad histogram scale", 22001)
    if math.isnan(x) or math.isinf(x):
        raise err("x out of range", 22002)
    return int(math.floor((x - origin) / width))


@fn("interp.nearest")
def nearest(datum: Any, table: list, metric: Any = None) -> Any:
    if not table:
        raise err("table must have at least one entry", 22010)
    best, bestd = None, None
    for item in table:
        if metric is not None:
            d = metric(datum, item["x"])
        elif isinstance(datum, list):
            if len(item["x"]) != len(datum):
                raise err("inconsistent dimensionality", 22011)
            d = sum((a - b) ** 2 for a, b in zip(datum, item["x"]))
        else:
            d = abs(datum - item["x"])
        if best is None or d < bestd:
            best, bestd = item, d
    return best["to"]


def _closest(datum: float, table: list, code: int) -> tuple[dict, dict, bool]:
    below = above = None
    bd = ad = None
    for item in table:
        x = item["x"]
        if x <= datum and (below is None or datum - x < bd):
            below, bd = item, datum - x
        if datum < x and (above is None or x - datum < ad):
            above, ad = item, x - datum
    if below is not None and above is not None:
        return below, above, True
    one = two = None
    od = td = None
    for item in table:
        d = abs(datum - item["x"])
        if one is None or d < od:
            two, td = one, od
            one, od = item, d
        elif (two is None or d < td) and d != od:
            two, td = item, d
    if two is None:
        raise err("table must have at least two distinct x values", code)
    return one, two, False


def _interp(datum: float, one: dict, two: dict, code: int) -> Any:
    u = (datum - one["x"]) / (two["x"] - one["x"])
    a, b = one["to"], two["to"]
    if isinstance(a, list):
        if len(a) != len(b):
            raise err("inconsistent dimensionality", code)
        return [(1.0 - u) * p + u * q for p, q in zip(a, b)]
    return (1.0 - u) * a + u * b


@fn("interp.linear")
def linear(datum: float, table: list) -> Any:
    one, two, _ = _closest(datum, table, 22020)
    return _interp(datum, one, two, 22021)


@fn("interp.linearFlat")
def linear_flat(datum: float, table: list) -> Any:
    one, two, between = _closest(datum, table, 22030)
    if not between:
        return one["to"]
    return _interp(datum, one, two, 22031)


@fn("interp.linearMissing")
def linear_missing(datum: float, table: list) -> Any:
    one, two, between = _closest(datum, table, 22040)
    if not between and one["x"] != datum:
        return None
    return _interp(datum, one, two, 22041)
