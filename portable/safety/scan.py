"""Static scan of a pickle stream: every global it imports and every call it makes, without running anything.

The scan walks `pickletools.genops` with a symbolic stack and memo, so `STACK_GLOBAL` (protocol 4+) names are
recovered from the strings it pops, memoised or not. Calls (`REDUCE`, `NEWOBJ`, `NEWOBJ_EX`, `INST`, `OBJ`) are
counted per callable. joblib files interleave raw array bytes with the pickle opcodes; after the `BUILD` of a
`NumpyArrayWrapper` the scan computes the array's size from the wrapper's (literal) state and skips its bytes,
or scans the nested pickle an object array is stored as.
"""
from __future__ import annotations

import copyreg
import io
import os
import pickletools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
CALL_OPS = frozenset({"REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ"})
_LITERAL_OPS = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
    "BINUNICODE8", "FLOAT", "BINFLOAT",
})
_DTYPE_CODE = re.compile(r"^[a-zA-Z?]\d{0,3}$")
_MAX_SKIP_CHUNK = 1 << 24


class ScanError(Exception):
    """The stream cannot be parsed; `truncated` when it ends early, `pos` is the byte offset of the opcode that
    fails, `unknown` when its byte is no pickle opcode at all."""

    def __init__(self, message: str, pos: int | None, truncated: bool = False, unknown: bool = False) -> None:
        super().__init__(message)
        self.pos, self.truncated, self.unknown = pos, truncated, unknown


class _Global:
    __slots__ = ("key",)

    def __init__(self, module: str, name: str) -> None:
        self.key = (module, name)


class _Obj:
    __slots__ = ("func", "args", "state")

    def __init__(self, func: Any, args: Any) -> None:
        self.func, self.args, self.state = func, args, None


_PLACEHOLDER = object()


@dataclass
class ScanResult:
    """What a scan found. Keys of `imports` and `calls` are (module, name) as spelled in the file."""

    protocol: int | None = None
    opcodes: int = 0
    imports: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)
    anonymous_calls: int = 0
    versions: dict[str, set[str]] = field(default_factory=dict)
    arrays_skipped: int = 0
    persistent_ids: int = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values()) + self.anonymous_calls

    def add_version(self, library: str, version: str) -> None:
        self.versions.setdefault(library, set()).add(version)


def scan_stream(f: IO[bytes]) -> ScanResult:
    """Scan one pickle stream (and any joblib arrays inside it) from the current position of `f`."""
    result = ScanResult()
    _scan(f, result, nested=False)
    return result


def _scan(f: IO[bytes], r: ScanResult, nested: bool) -> None:
    stack: list[Any] = []
    meta: list[list[Any]] = []
    memo: dict[int, Any] = {}
    pos: int | None = None

    def pop() -> Any:
        if not stack:
            raise ScanError("stack underflow", pos)
        return stack.pop()

    def pop_mark() -> list[Any]:
        nonlocal stack
        if not meta:
            raise ScanError("MARK expected", pos)
        items, stack = stack, meta.pop()
        return items

    def call(func: Any, args: Any) -> None:
        if isinstance(func, _Global):
            r.calls[func.key] += 1
        else:
            r.anonymous_calls += 1
        stack.append(_Obj(func, args))

    def global_(module: Any, name: Any) -> _Global:
        if not isinstance(module, str) or not isinstance(name, str):
            g = _Global("<computed>", "<not a literal string>")
        else:
            g = _Global(module, name)
        r.imports[g.key] += 1
        return g

    def set_item(d: Any, k: Any, v: Any) -> None:
        if isinstance(d, dict) and isinstance(k, (str, int, bytes, float, bool, type(None))):
            d[k] = v
            if k == "_sklearn_version" and isinstance(v, str):
                r.add_version("scikit-learn", v)

    stopped = False
    tell = getattr(f, "tell", None)
    nxt = _tell(tell)  # where the next opcode starts: genops fails inside an opcode's argument before yielding it
    from ..limits import LIMITS

    # each opcode costs this loop a few microseconds: a file of millions of cheap ones (`N0N0...`, a run of BININT)
    # is bounded by their count, not only by its size (the count is shared with any nested stream: `r.opcodes`)
    cap = LIMITS.max_pickle_opcodes
    try:
        for op, arg, pos in pickletools.genops(f):
            nxt = _tell(tell)
            r.opcodes += 1
            if r.opcodes > cap:
                raise opcode_limit_error(cap)
            name = op.name
            if name in _LITERAL_OPS:
                stack.append(arg)
            elif name == "PROTO":
                if not nested:
                    r.protocol = arg
            elif name == "FRAME":  # advisory, but an unpickler reads (allocates) the whole frame at once
                left = _remaining(f)
                if left is not None and arg > left:
                    raise ScanError(f"a frame declares {arg:,} bytes, but only {left:,} bytes of the stream remain",
                                    pos, truncated=True)
            elif name == "READONLY_BUFFER":
                pass
            elif name == "STOP":
                if not stack:
                    raise ScanError("STOP with nothing on the stack to return", pos)
                stopped = True
                break
            elif name == "MARK":
                meta.append(stack)
                stack = []
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name == "NEXT_BUFFER":
                stack.append(_PLACEHOLDER)
            elif name in ("EMPTY_LIST", "EMPTY_SET"):
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "APPEND":
                v = pop()
                if not stack:
                    raise ScanError("stack underflow", pos)
                if isinstance(stack[-1], list):
                    stack[-1].append(v)
            elif name in ("APPENDS", "ADDITEMS"):
                items = pop_mark()
                if stack and isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif name in ("LIST", "FROZENSET", "TUPLE"):
                items = pop_mark()  # rebinds `stack`: take the items before appending to it
                stack.append(tuple(items) if name == "TUPLE" else items)
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise ScanError("stack underflow", pos)
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif name == "DICT":
                items = pop_mark()
                d: dict[Any, Any] = {}
                for k, v in zip(items[::2], items[1::2]):
                    set_item(d, k, v)
                stack.append(d)
            elif name == "SETITEM":
                v, k = pop(), pop()
                if not stack:
                    raise ScanError("stack underflow", pos)
                set_item(stack[-1], k, v)
            elif name == "SETITEMS":
                items = pop_mark()
                if stack:
                    for k, v in zip(items[::2], items[1::2]):
                        set_item(stack[-1], k, v)
            elif name == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1] if stack else pop())
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise ScanError(f"memo key {arg} was never stored", pos)
                stack.append(memo[arg])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1] if stack else pop()
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else pop()
            elif name in ("GLOBAL", "INST"):
                module, _, qual = str(arg).partition(" ")
                g = global_(module, qual)
                if name == "GLOBAL":
                    stack.append(g)
                else:
                    call(g, tuple(pop_mark()))
            elif name == "STACK_GLOBAL":
                qual, module = pop(), pop()
                stack.append(global_(module, qual))
            elif name in ("EXT1", "EXT2", "EXT4"):
                key = copyreg._inverted_registry.get(arg)  # type: ignore[attr-defined]
                if key is None:
                    raise ScanError(f"extension code {arg} is not registered", pos)
                stack.append(global_(*key))
            elif name == "REDUCE":
                args, func = pop(), pop()
                call(func, args)
            elif name == "NEWOBJ":
                args, cls = pop(), pop()
                call(cls, args)
            elif name == "NEWOBJ_EX":
                _kw, args, cls = pop(), pop(), pop()
                call(cls, args)
            elif name == "OBJ":
                items = pop_mark()
                if not items:
                    raise ScanError("OBJ without a class", pos)
                call(items[0], tuple(items[1:]))
            elif name == "BUILD":
                state = pop()
                target = stack[-1] if stack else pop()
                if isinstance(target, _Obj):
                    target.state = state
                    if isinstance(target.func, _Global) and target.func.key == JOBLIB_WRAPPER:
                        _skip_joblib_array(f, state, r, pos)
            elif name in ("PERSID", "BINPERSID"):
                if name == "BINPERSID":
                    pop()
                r.persistent_ids += 1
                stack.append(_PLACEHOLDER)
            else:  # an opcode pickletools knows and we do not: say so rather than guess
                raise ScanError(f"unsupported opcode {name}", pos)
    except ScanError as exc:
        if exc.pos is None:  # raised before genops yielded this opcode's position
            exc.pos = pos
        raise
    except UnicodeDecodeError as exc:  # a ValueError too: a text argument that does not decode
        raise ScanError(f"{type(exc).__name__}: {exc}", nxt) from None
    except ValueError as exc:  # pickletools: bad opcode, bad argument, or the data ends
        msg = str(exc)
        truncated = "exhausted" in msg or "remain" in msg or "but only" in msg or "not enough data" in msg
        unknown = msg.startswith("at position") and "unknown" in msg
        raise ScanError(msg, nxt, truncated=truncated, unknown=unknown) from None
    except (OverflowError, MemoryError, IndexError) as exc:
        raise ScanError(f"{type(exc).__name__}: {exc}", nxt) from None
    if not stopped:
        raise ScanError("the stream ends before its STOP opcode", nxt, truncated=True)


def opcode_limit_error(cap: int) -> Exception:
    """The LimitError of a stream with more than `cap` opcodes (`max_pickle_opcodes`); the caller adds the file."""
    from ..limits import LimitError

    return LimitError(f"the pickle stream has more than {cap:,} opcodes (millions of cheap opcodes make a small "
                      "file take minutes to read)", "max_pickle_opcodes")


def _tell(tell: Any) -> int | None:
    try:
        return tell() if tell is not None else None
    except (OSError, ValueError, AttributeError):
        return None


def _remaining(f: IO[bytes]) -> int | None:
    """Bytes left after the current position of an in-memory or on-disk stream; None for a decompressing one
    (whose end is only found by decompressing it all, and whose length `max_compression_ratio` bounds)."""
    try:
        if isinstance(f, io.BytesIO):
            return f.getbuffer().nbytes - f.tell()
        return os.fstat(f.fileno()).st_size - f.tell()
    except (OSError, ValueError, AttributeError):
        return None


def _skip_joblib_array(f: IO[bytes], state: Any, r: ScanResult, pos: int | None) -> None:
    """Skip (or scan, for object arrays) the array data joblib writes right after a wrapper's BUILD."""
    if not isinstance(state, dict):
        raise ScanError("a joblib array wrapper without a state dict", pos)
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ScanError("a joblib array wrapper with a non-literal shape", pos)
    itemsize, has_object = _dtype_size(dtype, pos)
    r.arrays_skipped += 1
    if has_object:
        _scan(f, r, nested=True)
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        pad = f.read(1)
        if len(pad) != 1:
            raise ScanError("the file ends inside a joblib array", pos, truncated=True)
        _skip(f, pad[0], pos)
    count = 1
    for n in shape:
        count *= n
    _skip(f, count * itemsize, pos)


def _dtype_size(dtype: Any, pos: int | None) -> tuple[int, bool]:
    """(itemsize, has_object) of a dtype rebuilt symbolically as numpy.dtype(code, False, True) + BUILD state."""
    if not (isinstance(dtype, _Obj) and isinstance(dtype.args, tuple) and dtype.args
            and isinstance(dtype.args[0], str) and _DTYPE_CODE.match(dtype.args[0])):
        raise ScanError("a joblib array wrapper with a dtype that is not a literal numpy dtype", pos)
    code = dtype.args[0]
    st = dtype.state if isinstance(dtype.state, tuple) else ()
    flags = st[7] if len(st) > 7 and isinstance(st[7], int) else 0
    if code.startswith("O") or flags & 1:
        return 8, True
    if len(st) > 5 and isinstance(st[5], int) and st[5] > 0:
        return st[5], False
    import numpy as np

    try:  # parses a short type code such as 'f8' or 'i4'; nothing from the file is imported or called
        return np.dtype(code).itemsize, False
    except TypeError:
        raise ScanError(f"unknown numpy type code {code!r} in a joblib array", pos) from None


def _skip(f: IO[bytes], n: int, pos: int | None) -> None:
    while n > 0:
        chunk = f.read(min(n, _MAX_SKIP_CHUNK))
        if not chunk:
            raise ScanError("the file ends inside a joblib array", pos, truncated=True)
        n -= len(chunk)
