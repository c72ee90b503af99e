"""re.*: regular expressions in the spec's dialect, POSIX extended (like `grep -E`), run by the `regex` library
(mrab-regex, whose default VERSION0 behaves as Python's `re`) because it can stop a match that backtracks
catastrophically (`(a|aa)+$` on a long string of a's): every match runs within the routine's remaining time
(`clock.remaining`), and running out is the routine's timeout, not a hang.

The pattern is translated: POSIX bracket classes (`[[:alpha:]]`, `[[:digit:]]`, ...) become Python classes, and
a `]` first in a bracket is literal as in POSIX. Where the two dialects still differ, Python's behaviour wins:
alternation takes the leftmost alternative that matches (POSIX takes the longest), and Python's extra escapes
(`\\d`, `\\w`, lookarounds) are accepted although POSIX ERE does not define them. Indexes are character
positions for strings and byte positions for bytes.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import regex as re

from .. import clock
from ....errors import shorten
from . import err, fn

_CLASSES = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
            "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
            "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e", "word": r"\w"}


def translate(pattern: str) -> str:
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            buf = ["["]
            if j < n and pattern[j] == "^":
                buf.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                buf.append(r"\]")
                j += 1
            while j < n and pattern[j] != "]":
                if pattern.startswith("[:", j):
                    k = pattern.find(":]", j + 2)
                    name = pattern[j + 2:k] if k > 0 else ""
                    if name in _CLASSES:
                        buf.append(_CLASSES[name])
                        j = k + 2
                        continue
                if pattern[j] == "\\":
                    buf.append(r"\\")
                elif pattern[j] == "[":
                    buf.append(r"\[")
                else:
                    buf.append(pattern[j])
                j += 1
            buf.append("]")
            out.append("".join(buf))
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


_COUNTED = re.compile(r"\{(\d+)(?:,\d*)?\}")


def compiled_size(p: str) -> int:
    """How many atoms the regex library compiles for the (translated) pattern `p`: each counted repeat `{m}`,
    `{m,n}` or `{m,}` copies what it repeats `m` times, nested repeats multiply (compiling takes about 2 s a
    million copies, in C, before a match's timeout can stop anything). An over-estimate for odd syntax is fine."""
    stack = [[0, 0]]  # per open group: [its size, the size of its last atom]
    i, n = 0, len(p)
    while i < n:
        c, top = p[i], stack[-1]
        step = 1
        if c == "\\":
            step = 2
        elif c == "[":  # a class is one atom: skip to its closing bracket
            j = i + 1 + (p.startswith("^", i + 1))
            j += p.startswith("]", j)
            while j < n and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            step = j + 1 - i
        elif c == "(":
            stack.append([0, 0])
            i += 1
            continue
        elif c == ")" and len(stack) > 1:
            inner = stack.pop()[0]
            stack[-1][0] += inner
            stack[-1][1] = inner
            i += 1
            continue
        elif c == "{" and (m := _COUNTED.match(p, i)):
            digits = m.group(1)
            k = int(digits) if len(digits) < 19 else 1 << 62
            top[0] += top[1] * (k - 1)
            top[1] *= k
            i = m.end()
            continue
        top[0] += 1
        top[1] = 1
        i += step
    return sum(size for size, _ in stack)


@lru_cache(maxsize=512)
def _compile(pattern: Any) -> Any:
    text = pattern.decode("latin-1") if isinstance(pattern, bytes) else pattern
    py = translate(text)
    size = compiled_size(py)
    from ....limits import LIMITS, LimitError

    if size > LIMITS.max_pfa_regex_size:
        raise LimitError(f"the regular expression {shorten(text, 80)!r} repeats its parts {size:,} times",
                         "max_pfa_regex_size")
    return re.compile(py.encode("latin-1") if isinstance(pattern, bytes) else py)


def _re(pattern: Any, code: int) -> "_Timed":
    try:
        return _Timed(_compile(pattern))
    except (re.error, UnicodeError, OverflowError, RecursionError):
        raise err("bad pattern", code) from None


def _out_of_time() -> clock.RoutineTimeout:
    try:
        clock.remaining()
    except clock.RoutineTimeout as exc:
        return exc
    return clock.RoutineTimeout(0, False)  # the library stopped on a clock armed by nobody (cannot happen)


class _Timed:
    """A compiled pattern whose matches stop when the running routine's time is up."""

    __slots__ = ("p",)

    def __init__(self, p: Any) -> None:
        self.p = p

    def search(self, h: Any) -> Any:
        try:
            return self.p.search(h, timeout=clock.remaining())
        except TimeoutError:
            raise _out_of_time() from None

    def sub(self, repl: Any, h: Any, count: int = 0) -> Any:
        try:
            return self.p.sub(repl, h, count=count, timeout=clock.remaining())
        except TimeoutError:
            raise _out_of_time() from None

    def finditer(self, h: Any) -> Any:
        it = self.p.finditer(h, timeout=clock.remaining())
        while True:
            try:
                m = next(it)
            except StopIteration:
                return
            except TimeoutError:
                raise _out_of_time() from None
            yield m


def _finditer(h: Any, p: Any) -> Any:
    """Matches left to right, as POSIX regexec loops find them: an empty match right where the previous match
    ended is not another match (Python 3.7+ reports it; 'a*' on 'aaa' is one match, not two)."""
    end = -1
    for m in p.finditer(h):
        if m.start() == m.end() == end:
            continue
        end = m.end()
        yield m


@fn("re.index")
def index(h: Any, pattern: Any) -> list[int]:
    m = _re(pattern, 35000).search(h)
    return [] if m is None else [m.start(), m.end()]


fn("re.contains")(lambda h, pattern: _re(pattern, 35010).search(h) is not None)
fn("re.count")(lambda h, pattern: sum(1 for _ in _finditer(h, _re(pattern, 35020))))


@fn("re.rindex")
def rindex(h: Any, pattern: Any) -> list[int]:
    last = None
    for m in _finditer(h, _re(pattern, 35030)):
        last = m
    return [] if last is None else [last.start(), last.end()]


@fn("re.groups")
def groups(h: Any, pattern: Any) -> list[list[int]]:
    m = _re(pattern, 35040).search(h)
    if m is None:
        return []
    return [[m.start(g), m.end(g)] for g in range(0, (m.re.groups or 0) + 1)]


@fn("re.indexall")
def indexall(h: Any, pattern: Any) -> list[list[int]]:
    return [[m.start(), m.end()] for m in _finditer(h, _re(pattern, 35050))]


fn("re.findall")(lambda h, pattern: [m.group(0) for m in _finditer(h, _re(pattern, 35060))])


@fn("re.findfirst")
def findfirst(h: Any, pattern: Any) -> Any:
    m = _re(pattern, 35070).search(h)
    return None if m is None else m.group(0)


@fn("re.findgroupsfirst")
def findgroupsfirst(h: Any, pattern: Any) -> list[Any]:
    m = _re(pattern, 35080).search(h)
    if m is None:
        return []
    return [m.group(g) or h[:0] for g in range(0, m.re.groups + 1)]


@fn("re.findgroupsall")
def findgroupsall(h: Any, pattern: Any) -> list[list[Any]]:
    return [[m.group(g) or h[:0] for g in range(0, m.re.groups + 1)] for m in _finditer(h, _re(pattern, 35090))]


@fn("re.groupsall")
def groupsall(h: Any, pattern: Any) -> list[list[list[int]]]:
    return [[[m.start(g), m.end(g)] for g in range(0, m.re.groups + 1)]
            for m in _finditer(h, _re(pattern, 35100))]


def _literal(r: Any) -> Any:
    return (lambda m: r)


@fn("re.replacefirst")
def replacefirst(h: Any, pattern: Any, r: Any) -> Any:
    return _re(pattern, 35110).sub(_literal(r), h, count=1)


@fn("re.replacelast")
def replacelast(h: Any, pattern: Any, r: Any) -> Any:
    last = None
    for m in _finditer(h, _re(pattern, 35120)):
        last = m
    if last is None:
        return h
    return h[:last.start()] + r + h[last.end():]


@fn("re.split")
def split(h: Any, pattern: Any) -> list[Any]:
    p = _re(pattern, 35130)
    out = []
    pos = 0
    for m in _finditer(h, p):
        if m.end() == m.start():
            continue
        out.append(h[pos:m.start()])
        pos = m.end()
    if pos != len(h) or not out:
        out.append(h[pos:])
    if len(out) > 1 and len(out[0]) == 0:
        out = out[1:]  # a separator at the very start gives no leading empty piece (nor one at the end)
    return out


fn("re.replaceall")(lambda h, pattern, r: _re(pattern, 35140).sub(_literal(r), h))
