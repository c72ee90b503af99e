"""a.*: arrays (Python lists), ordered by the spec's (Avro's) sort order or a user lessThan function."""
from __future__ import annotations

import itertools
import math
from functools import cmp_to_key
from typing import Any

from ..rows import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, compare
from .. import types as T
from . import err, factory, fn, num_kind, sized


def _items(b: Any, i: int = 0) -> Any:
    t = b.t(i)
    return t.items if isinstance(t, T.Array) else None


def _norm(i: int, n: int) -> int:
    if i < 0:
        i += n
    return min(max(i, 0), n)


fn("a.len")(lambda a: len(a))
fn("a.subseq")(lambda a, start, end: a[start:end])


def _need(a: list, code: int) -> None:
    if not a:
        raise err("empty array", code)


@fn("a.head")
def head(a: list) -> Any:
    _need(a, 15020)
    return a[0]


@fn("a.tail")
def tail(a: list) -> list:
    _need(a, 15030)
    return a[1:]


@fn("a.last")
def last(a: list) -> Any:
    _need(a, 15040)
    return a[-1]


@fn("a.init")
def init(a: list) -> list:
    _need(a, 15050)
    return a[:-1]


@fn("a.subseqto")
def subseqto(a: list, start: int, end: int, replacement: list) -> list:
    n = len(a)
    s, e = _norm(start, n), _norm(end, n)
    return a[:s] + list(replacement) + a[max(s, e):]


def _is_sub(h: list, needle: list, at: int) -> bool:
    return h[at:at + len(needle)] == needle


def _needle_kind(b: Any) -> str:
    t1 = b.t(1)
    if isinstance(t1, (T.FcnType,)) or t1.__class__.__name__ == "LibRef":
        return "fn"
    t0 = b.t(0)
    if isinstance(t1, T.Array) and isinstance(t0, T.Array) and t0.items != t1:
        return "seq"
    if t1 is None:
        return "dyn"
    return "item"


def _kind_of(kind: str, needle: Any) -> str:
    if kind != "dyn":
        return kind
    if callable(needle):
        return "fn"
    return "seq" if isinstance(needle, list) else "item"


@factory("a.contains")
def a_contains(b: Any) -> Any:
    kind = _needle_kind(b)

    def run(h: list, needle: Any) -> bool:
        k = _kind_of(kind, needle)
        if k == "fn":
            return any(needle(x) for x in h)
        if k == "seq":
            return any(_is_sub(h, needle, i) for i in range(len(h) - len(needle) + 1)) if needle else True
        return needle in h
    return run


@factory("a.count")
def a_count(b: Any) -> Any:
    kind = _needle_kind(b)

    def run(h: list, needle: Any) -> int:
        k = _kind_of(kind, needle)
        if k == "fn":
            return sum(1 for x in h if needle(x))
        if k == "seq":
            if not needle:
                return 0
            n, i, c = len(needle), 0, 0
            while i <= len(h) - n:
                if h[i:i + n] == needle:
                    c += 1
                    i += n
                else:
                    i += 1
            return c
        return sum(1 for x in h if x == needle)
    return run


@factory("a.index")
def a_index(b: Any) -> Any:
    kind = _needle_kind(b)

    def run(h: list, needle: Any) -> int:
        k = _kind_of(kind, needle)
        for i in range(len(h)):
            if k == "fn" and needle(h[i]) or k == "seq" and _is_sub(h, needle, i) or k == "item" and h[i] == needle:
                return i
        return -1
    return run


@factory("a.rindex")
def a_rindex(b: Any) -> Any:
    kind = _needle_kind(b)

    def run(h: list, needle: Any) -> int:
        k = _kind_of(kind, needle)
        for i in range(len(h) - 1, -1, -1):
            if k == "fn" and needle(h[i]) or k == "seq" and i + len(needle) <= len(h) and _is_sub(h, needle, i) \
                    or k == "item" and h[i] == needle:
                return i
        return -1
    return run


@factory("a.startswith")
def a_startswith(b: Any) -> Any:
    kind = _needle_kind(b)

    def run(h: list, needle: Any) -> bool:
        if _kind_of(kind, needle) == "seq":
            return h[:len(needle)] == needle
        return bool(h) and h[0] == needle
    return run


@factory("a.endswith")
def a_endswith(b: Any) -> Any:
    kind = _needle_kind(b)

    def run(h: list, needle: Any) -> bool:
        if _kind_of(kind, needle) == "seq":
            return len(needle) <= len(h) and h[len(h) - len(needle):] == needle
        return bool(h) and h[-1] == needle
    return run


@fn("a.concat")
def a_concat(a: list, b: list) -> list:
    sized(len(a) + len(b), "a.concat's array")
    return a + b


@fn("a.append")
def a_append(a: list, item: Any) -> list:
    sized(len(a) + 1, "a.append's array")
    return a + [item]


@fn("a.cycle")
def cycle(a: list, item: Any, max_length: int) -> list:
    if max_length < 0:
        raise err("maxLength out of range", 15150)
    if max_length == 0:
        return []
    return (a + [item])[-max_length:]


def _index(a: list, i: int, code: int, inclusive_end: bool = False) -> int:
    n = len(a)
    j = i + n if i < 0 else i
    if not 0 <= j < n + (1 if inclusive_end else 0):
        raise err("index out of range", code)
    return j


@fn("a.insert")
def insert(a: list, index: int, item: Any) -> list:
    j = _index(a, index, 15160, inclusive_end=True)
    return a[:j] + [item] + a[j:]


@fn("a.replace")
def replace(a: list, index: int, item: Any) -> list:
    j = _index(a, index, 15170)
    return a[:j] + [item] + a[j + 1:]


@fn("a.remove")
def remove(a: list, *where: int) -> list:
    if len(where) == 2:
        n = len(a)
        s, e = _norm(where[0], n), _norm(where[1], n)
        return a[:s] + a[max(s, e):]
    j = _index(a, where[0], 15180)
    return a[:j] + a[j + 1:]


@fn("a.rotate")
def rotate(a: list, steps: int) -> list:
    if steps < 0:
        raise err("steps out of range", 15190)
    if not a:
        return a
    k = steps % len(a)
    return a[k:] + a[:k]


def _key(t: Any) -> Any:
    return cmp_to_key(lambda x, y: compare(x, y, t))


def _lt_key(lt: Any) -> Any:
    return cmp_to_key(lambda x, y: -1 if lt(x, y) else (1 if lt(y, x) else 0))


@factory("a.sort")
def sort(b: Any) -> Any:
    t = _items(b)
    return lambda a: sorted(a, key=_key(t))


fn("a.sortLT")(lambda a, lt: sorted(a, key=_lt_key(lt)))


@factory("a.shuffle")
def shuffle(b: Any) -> Any:
    def run(a: list) -> list:
        out = list(a)
        b.st.rng.shuffle(out)
        return out
    return run


fn("a.reverse")(lambda a: a[::-1])


def _has_nan(a: list) -> bool:
    return any(isinstance(x, float) and math.isnan(x) for x in a)


def _extreme(name: str, code: int, sign: int, arg: bool, with_lt: bool) -> None:
    @factory(name)
    def make(b: Any) -> Any:
        t = _items(b)

        def run(a: list, lt: Any = None) -> Any:
            _need(a, code)
            best = 0
            for i in range(1, len(a)):
                if with_lt:
                    better = lt(a[best], a[i]) if sign > 0 else lt(a[i], a[best])
                else:
                    c = compare(a[i], a[best], t)
                    better = c * sign > 0
                if better:
                    best = i
            if not with_lt and not arg and _has_nan(a):
                return math.nan
            return best if arg else a[best]
        return run


_extreme("a.max", 15240, 1, False, False)
_extreme("a.min", 15250, -1, False, False)
_extreme("a.maxLT", 15260, 1, False, True)
_extreme("a.minLT", 15270, -1, False, True)
_extreme("a.argmax", 15320, 1, True, False)
_extreme("a.argmin", 15330, -1, True, False)
_extreme("a.argmaxLT", 15340, 1, True, True)
_extreme("a.argminLT", 15350, -1, True, True)


def _topn(name: str, code: int, sign: int, arg: bool, with_lt: bool) -> None:
    @factory(name)
    def make(b: Any) -> Any:
        t = _items(b)

        def run(a: list, n: int, lt: Any = None) -> list:
            _need(a, code)
            if n < 0:
                raise err("n < 0", code + 1)
            if with_lt:
                cmp = (lambda x, y: -1 if lt(x, y) else (1 if lt(y, x) else 0))
            else:
                cmp = (lambda x, y: compare(x, y, t))
            order = sorted(range(len(a)), key=cmp_to_key(lambda i, j: (sign * -cmp(a[i], a[j])) or (i - j)))
            top = order[:n]
            return top if arg else [a[i] for i in top]
        return run


_topn("a.maxN", 15280, 1, False, False)
_topn("a.minN", 15290, -1, False, False)
_topn("a.maxNLT", 15300, 1, False, True)
_topn("a.minNLT", 15310, -1, False, True)
_topn("a.argmaxN", 15360, 1, True, False)
_topn("a.argminN", 15370, -1, True, False)
_topn("a.argmaxNLT", 15380, 1, True, True)
_topn("a.argminNLT", 15390, -1, True, True)


def _bounded_total(kind: str | None, value: Any, code: int) -> Any:
    if kind == "int" and not INT_MIN <= value <= INT_MAX:
        raise err("int overflow", code)
    if kind == "long" and not LONG_MIN <= value <= LONG_MAX:
        raise err("long overflow", code + 1)
    return value


@factory("a.sum")
def a_sum(b: Any) -> Any:
    kind = num_kind(_items(b))
    if kind in ("int", "long"):
        return lambda a: _bounded_total(kind, sum(a), 15400)
    return lambda a: float(sum(a)) if a else 0.0


@factory("a.product")
def a_product(b: Any) -> Any:
    kind = num_kind(_items(b))
    if kind in ("int", "long"):
        return lambda a: _bounded_total(kind, math.prod(a), 15410)
    return lambda a: float(math.prod(a))


@fn("a.lnsum")
def lnsum(a: list) -> float:
    total = 0.0
    for x in a:
        if x <= 0 or math.isnan(x):
            return math.nan
        total += math.log(x)
    return total


fn("a.mean")(lambda a: sum(a) / len(a) if a else math.nan)


@fn("a.geomean")
def geomean(a: list) -> float:
    if not a:
        return math.nan
    return math.pow(math.prod(a), 1.0 / len(a)) if all(x > 0 for x in a) and math.prod(a) not in (0.0, math.inf) \
        else math.exp(sum(math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan) for x in a) / len(a))


def _is_float(t: Any) -> bool:
    return isinstance(t, T.Prim) and t.name in ("float", "double")


def median_of(a: list, t: Any) -> Any:
    sa = sorted(a, key=_key(t))
    half = len(sa) // 2
    if len(sa) % 2:
        return sa[half]
    if _is_float(t) or (t is None and isinstance(sa[0], float)):
        return (sa[half - 1] + sa[half]) / 2.0
    return sa[half - 1]


@factory("a.median")
def median(b: Any) -> Any:
    t = _items(b)

    def run(a: list) -> Any:
        _need(a, 15450)
        return median_of(a, t)
    return run


@factory("a.ntile")
def ntile(b: Any) -> Any:
    t = _items(b)

    def run(a: list, p: float) -> Any:
        _need(a, 15460)
        if math.isnan(p):
            raise err("p not a number", 15461)
        sa = sorted(a, key=_key(t))
        if p <= 0.0:
            return sa[0]
        if p >= 1.0:
            return sa[-1]
        k = (len(sa) - 1.0) * p
        f = math.floor(k)
        if _is_float(t) or (t is None and isinstance(sa[0], float)):
            c = math.ceil(k)
            if f == c:
                return sa[int(k)]
            return sa[int(f)] * (c - k) + sa[int(c)] * (k - f)
        return sa[int(f)] if len(sa) % 2 == 1 else sa[int(k)]
    return run


@factory("a.mode")
def mode(b: Any) -> Any:
    t = _items(b)

    def run(a: list) -> Any:
        _need(a, 15470)
        counts: list[list[Any]] = []
        for x in a:
            for c in counts:
                if c[0] == x and type(c[0]) is type(x):
                    c[1] += 1
                    break
            else:
                counts.append([x, 1])
        top = max(c[1] for c in counts)
        return median_of([c[0] for c in counts if c[1] == top], t)
    return run


@fn("a.logsumexp")
def logsumexp(a: list) -> float:
    if not a:
        return math.nan
    m = max(a)
    if math.isinf(m) or math.isnan(m):
        return m
    return m + math.log(sum(math.exp(x - m) for x in a))


def _uniq(a: list) -> list:
    out: list[Any] = []
    for x in a:
        if x not in out:
            out.append(x)
    return out


fn("a.distinct")(_uniq)
fn("a.seteq")(lambda a, b: all(x in b for x in a) and all(x in a for x in b))
fn("a.union")(lambda a, b: _uniq(a + b))
fn("a.intersection")(lambda a, b: _uniq([x for x in a if x in b]))
fn("a.diff")(lambda a, b: _uniq([x for x in a if x not in b]))
fn("a.symdiff")(lambda a, b: _uniq([x for x in a if x not in b] + [x for x in b if x not in a]))
fn("a.subset")(lambda little, big: all(x in big for x in little))
fn("a.disjoint")(lambda a, b: not any(x in b for x in a))

fn("a.map")(lambda a, f: [f(x) for x in a])
fn("a.mapWithIndex")(lambda a, f: [f(i, x) for i, x in enumerate(a)])
fn("a.filter")(lambda a, f: [x for x in a if f(x)])
fn("a.filterWithIndex")(lambda a, f: [x for i, x in enumerate(a) if f(i, x)])
fn("a.filterMap")(lambda a, f: [y for y in (f(x) for x in a) if y is not None])
fn("a.filterMapWithIndex")(lambda a, f: [y for y in (f(i, x) for i, x in enumerate(a)) if y is not None])


@fn("a.flatMap")
def a_flat_map(a: list, f: Any) -> list:
    return a_flatten([f(x) for x in a])


@fn("a.flatMapWithIndex")
def a_flat_map_with_index(a: list, f: Any) -> list:
    return a_flatten([f(i, x) for i, x in enumerate(a)])




@fn("a.zipmap")
def zipmap(*args: Any) -> list:
    *arrays, f = args
    if len({len(x) for x in arrays}) > 1:
        raise err("misaligned arrays", 15650)
    return [f(*xs) for xs in zip(*arrays)]


@fn("a.zipmapWithIndex")
def zipmap_with_index(*args: Any) -> list:
    *arrays, f = args
    if len({len(x) for x in arrays}) > 1:
        raise err("misaligned arrays", 15660)
    return [f(i, *xs) for i, xs in enumerate(zip(*arrays))]


@fn("a.reduce")
def reduce(a: list, f: Any) -> Any:
    _need(a, 15670)
    acc = a[0]
    for x in a[1:]:
        acc = f(acc, x)
    return acc


@fn("a.reduceRight")
def reduce_right(a: list, f: Any) -> Any:
    _need(a, 15680)
    acc = a[-1]
    for x in reversed(a[:-1]):
        acc = f(x, acc)
    return acc


@fn("a.fold")
def fold(a: list, zero: Any, f: Any) -> Any:
    acc = zero
    for x in a:
        acc = f(acc, x)
    return acc


@fn("a.foldRight")
def fold_right(a: list, zero: Any, f: Any) -> Any:
    acc = zero
    for x in reversed(a):
        acc = f(x, acc)
    return acc


fn("a.takeWhile")(lambda a, f: list(itertools.takewhile(f, a)))
fn("a.dropWhile")(lambda a, f: list(itertools.dropwhile(f, a)))
fn("a.any")(lambda a, f: any(f(x) for x in a))
fn("a.all")(lambda a, f: all(f(x) for x in a))
fn("a.corresponds")(lambda a, b, f: len(a) == len(b) and all(f(x, y) for x, y in zip(a, b)))
fn("a.correspondsWithIndex")(lambda a, b, f: len(a) == len(b) and all(f(i, x, y)
                                                                      for i, (x, y) in enumerate(zip(a, b))))


@fn("a.slidingWindow")
def sliding_window(a: list, size: int, step: int) -> list:
    if size < 1:
        raise err("size < 1", 15770)
    if step < 1:
        raise err("step < 1", 15771)
    sized((len(a) // step + 1) * min(size, len(a)), "a.slidingWindow's arrays")
    return [a[s:s + size] for s in range(0, len(a), step) if len(a[s:s + size]) == size]


@fn("a.combinations")
def combinations(a: list, size: int) -> list:
    if size < 1:
        raise err("size < 1", 15780)
    sized(math.comb(len(a), size) * size, "a.combinations' arrays")
    return [list(c) for c in itertools.combinations(a, size)]


@fn("a.permutations")
def permutations(a: list) -> list:
    if len(a) > 9:
        raise err("too many permutations (portable's limit: arrays of at most 9 items)", None)
    return [list(p) for p in itertools.permutations(a)]


@fn("a.flatten")
def a_flatten(a: list) -> list:
    sized(sum(map(len, a)), "a.flatten's array")
    return [y for x in a for y in x]


@fn("a.groupby")
def groupby(a: list, f: Any) -> dict:
    out: dict[str, list] = {}
    for x in a:
        out.setdefault(f(x), []).append(x)
    return out
