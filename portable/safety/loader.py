"""`safe_load`: unpickle a pickle, joblib or skops file, resolving only allowlisted globals.

Plain pickles go through the C unpickler twice: first a dry run in which every allowed global is a stub (C
speed, nothing built) so that the numpy dtype states and scikit-learn Cython states numpy and scikit-learn
apply unchecked can be checked (`states.py`), then the real load, with the same restricted `find_class`.
joblib files (their arrays follow the pickle opcodes as raw bytes) go through joblib's own `NumpyUnpickler`
with the restriction and the state checks in its BUILD, never through `joblib.load`; skops archives go through
`skops.io` with `trusted=` computed from the allowlist. A refusal stops the load at the first refused global;
a static scan of the file then names every refused global. While loading, `guard.guarded()` blocks process,
network and file-writing side effects as a second wall.
"""
from __future__ import annotations

import contextlib
import gc
import pickle
import warnings
from pathlib import Path
from typing import IO, Any


from ..errors import InputError, PortableError, UnsafePickleError
from . import guard
from .allowlist import Verdict, canonical, judge, load_global, trust_tuple
from .container import Container, open_stream, read_bytes, sniff
from .states import BadState, check_build_state, check_state, check_tuple_state, code_size
from .internals import validate_loaded
from .table import Refused, World, _shape, role_of
from .scan import JOBLIB_WRAPPER, ScanError, scan_stream

#: A unique key for a live object. Not `id()`: that is an audited event, and the guard's audit hook (a Python
#: function, installed for good once a file is loaded) would then run for every object a walk visits.
_ident = object.__hash__


class _Refusal(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.name)
        self.verdict = verdict


class _NeedsJoblib(Exception):
    """The plain stream names joblib's array wrapper: restart with joblib's unpickler."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], trust: tuple[str, ...]) -> None:
        super().__init__(file)
        self._trust = trust

    def find_class(self, module: str, name: str) -> Any:
        if canonical(module, name) == JOBLIB_WRAPPER:
            raise _NeedsJoblib
        verdict, obj = load_global(module, name, self._trust)
        if not verdict.allowed:
            raise _Refusal(verdict)
        return obj


# -- the dry run: the C unpickler over stubs, every call and BUILD checked against the table ----------------------
class _GlobalStub(Exception):
    """Stands in for an allowed global during the dry run. Calling it (REDUCE, NEWOBJ, INST, OBJ) is checked by
    the table (`table.World.check_call`) and builds a `_Node` standing for the object the real load builds."""

    _g_role: str | None = None
    _target: Any = None
    _world: Any = None

    def __new__(cls, *args: Any) -> Any:
        if not args and cls._g_role == "py_class":  # the commonest call: a Python class created empty
            node = BaseException.__new__(_Node)
        else:
            node = BaseException.__new__(_NODES[cls._world.check_call(cls, args)], *args)
        node.func = cls
        return node

    class _NoBuild:
        """BUILD on a global itself would set attributes of a library class for the whole process."""

        def __get__(self, obj: Any, owner: Any) -> Any:
            if obj is None:
                raise Refused(f"the file sets attributes of the global {owner._world.name(owner)} itself")
            return None

    __setstate__ = _NoBuild()


class _Node(Exception):
    """An object the real load builds, standing in the dry run: BUILD, SETITEMS, APPENDS and calls are checked."""

    _kind = "obj"
    func: Any = None
    state: Any = None
    built = False

    def __setstate__(self, state: Any) -> None:
        if self.built:
            raise Refused("an object whose state is set twice")
        self.built = True
        self.state = state
        self._check(state)

    def _check(self, state: Any) -> None:
        check_build_state(state)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise Refused("a call of an object built inside the file (only listed reconstructors may be called)")

    def _container(self, want: tuple[str, ...]) -> None:
        target = getattr(self.func, "_target", None)
        if self._kind not in ("value", "trusted") or not isinstance(target, type) or not any(
                c.__name__ in want for c in target.__mro__):
            raise Refused(f"items added to a {self._kind} object that is not a container")

    def __setitem__(self, key: Any, value: Any) -> None:
        self._container(("dict",))

    def append(self, value: Any) -> None:
        self._container(("list", "deque"))

    def extend(self, values: Any) -> None:
        self._container(("list", "deque"))

    def add(self, value: Any) -> None:
        self._container(("set",))


class _ExtNode(_Node):
    _kind = "ext"

    def _check(self, state: Any) -> None:
        target = getattr(self.func, "_target", None)
        if self.func is not None and self.func._g_role in ("newobj", "pyx_unpickle") and self.args:
            target = self.args[0]._target
        check_tuple_state(target, state)
        check_build_state(state)
        _plain_state(self.func._world, state)


class _DtypeNode(_Node):
    _kind = "dtype"
    used = False
    info: Any = None
    honest: Any = None

    def _check(self, state: Any) -> None:
        if self.used:
            raise Refused("a numpy dtype whose state is set after an array already uses it")
        self.honest = None
        self.honest = self.resolve(0, state)

    def resolve(self, depth: int = 0, state: Any = None) -> Any:
        """The honest numpy dtype this node stands for (checked against its state)."""
        if self.honest is not None and state is None:
            return self.honest

        def child(obj: Any) -> Any:
            if not isinstance(obj, _DtypeNode):
                raise BadState("a structured numpy dtype with a field that is not a dtype")
            obj.used = True
            return obj.resolve(depth + 1)

        code = self.args[0]
        honest = check_state(code_size(code), self.state if state is None else state, child, depth, code=code)
        self.honest = honest
        return honest


class _ArrayNode(_Node):
    _kind = "array"

    def _check(self, state: Any) -> None:
        self.func._world.check_array_state(state)


class _MaskedNode(_Node):
    _kind = "marray"

    def _check(self, state: Any) -> None:
        self.func._world.check_marray_state(state)


class _NoBuildNode(_Node):
    def _check(self, state: Any) -> None:
        raise Refused(f"a state given to a {self._kind}, which takes none")


class _DataNode(_Node):
    def _check(self, state: Any) -> None:
        check_build_state(state)
        _plain_state(self.func._world, state)


class _TrustedNode(_Node):
    _kind = "trusted"

    def _check(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _TrustedNode()

    def _container(self, want: tuple[str, ...]) -> None:
        pass


_NODES: dict[str, type] = {
    "obj": _Node, "ext": _ExtNode, "dtype": _DtypeNode, "array": _ArrayNode, "marray": _MaskedNode,
    "bytes": type("_BytesNode", (_NoBuildNode,), {"_kind": "bytes"}),
    "scalar": type("_ScalarNode", (_NoBuildNode,), {"_kind": "scalar"}),
    "value": type("_ValueNode", (_DataNode,), {"_kind": "value"}),
    "bitgen": type("_BitgenNode", (_DataNode,), {"_kind": "bitgen"}),
    "trusted": _TrustedNode,
}


def _plain_state(world: World, state: Any, depth: int = 0) -> None:
    """A state of an extension type or a numpy.random object: plain data, dicts of it, other built objects."""
    if type(state) is dict:
        if depth > 8:
            raise Refused("a state that nests too deeply")
        for k, v in state.items():
            if type(k) is not str:
                raise Refused("a state with keys that are not strings")
            _plain_state(world, v, depth + 1)
    elif type(state) in (tuple, list):
        for v in state:
            _plain_state(world, v, depth + 1)
    else:
        world.plain(state, "a state")


class _StubWorld(World):
    """The table's view of the dry run: globals are `_GlobalStub` classes, built objects are `_Node`s."""

    def role(self, x: Any) -> str | None:
        return getattr(x, "_g_role", None) if isinstance(x, type) else None

    def kind(self, x: Any) -> str | None:
        if isinstance(x, _Node):
            return x._kind
        if type(x) in (bytes, bytearray):
            return "bytes"
        return None

    def target(self, x: Any) -> Any:
        return x._target

    def dtype_info(self, x: Any) -> tuple[int, bool]:
        info = x.info
        if info is None:
            x.used = True
            honest = x.resolve()
            if not hasattr(honest, "itemsize"):
                raise Refused("a numpy dtype that cannot be rebuilt honestly")
            info = x.info = (honest.itemsize, honest.hasobject)
        return info

    def bytes_len(self, x: Any) -> int | None:
        if type(x) in (bytes, bytearray):
            return len(x)
        if isinstance(x, _Node) and x._kind == "bytes":
            return len(x.args[0])
        if isinstance(x, _Node) and x._kind == "value" and x.func._target in (bytes, bytearray):
            return len(x.args[0]) if x.args else 0
        return None


class _DryRun(pickle.Unpickler):
    """The C unpickler with every allowed global replaced by a stub: parses the stream and checks every call and
    state against the table without building anything, so that nothing a file asks for reaches a library
    unchecked."""

    def __init__(self, file: IO[bytes], trust: tuple[str, ...]) -> None:
        super().__init__(file)
        self._trust = trust
        self._stubs: dict[int, type] = {}
        self.world = _StubWorld()
        self.renamed = False  # a Python 2 name was mapped, as the real unpickler only does for protocols 0-2

    def find_class(self, module: str, name: str) -> Any:
        mapped = canonical(module, name)
        if mapped == JOBLIB_WRAPPER:
            raise _NeedsJoblib
        self.renamed = self.renamed or mapped != (module, name)
        verdict, obj = load_global(module, name, self._trust)
        if not verdict.allowed:
            raise _Refusal(verdict)
        stub = self._stubs.get(_ident(obj))
        if stub is None:
            role = "trusted" if verdict.trusted else role_of(obj)
            stub = type("Global", (_GlobalStub,), {"_g_role": role, "_target": obj, "_world": self.world})
            self._stubs[_ident(obj)] = stub
        return stub


class _RealWorld(World):
    """The table's view inside joblib's pure-Python unpickler: real objects, globals known by identity."""

    def __init__(self) -> None:
        self.globals: dict[int, tuple[Any, str]] = {}
        self.kinds: dict[int, tuple[Any, str]] = {}
        self.built: set[int] = set()
        self.used: set[int] = set()

    def role(self, x: Any) -> str | None:
        got = self.globals.get(_ident(x))
        return got[1] if got is not None and got[0] is x else None

    def kind(self, x: Any) -> str | None:
        got = self.kinds.get(_ident(x))
        if got is not None and got[0] is x:
            return got[1]
        import numpy as np

        if type(x) in (bytes, bytearray):
            return "bytes"
        if isinstance(x, np.dtype):
            return "dtype"
        if type(x) is np.ndarray:
            return "array"
        return None

    def target(self, x: Any) -> Any:
        return x

    def dtype_info(self, x: Any) -> tuple[int, bool]:
        self.used.add(_ident(x))
        return x.itemsize, x.hasobject

    def bytes_len(self, x: Any) -> int | None:
        return len(x) if type(x) in (bytes, bytearray) else None

    def check_build(self, inst: Any, state: Any) -> None:
        import numpy as np

        kind = self.kind(inst)
        if self.role(inst) is not None:
            raise Refused(f"the file sets attributes of the global {self.name(inst)} itself")
        if kind == "trusted":
            return
        if _ident(inst) in self.built:
            raise Refused("an object whose state is set twice")
        self.built.add(_ident(inst))
        if kind == "dtype" and isinstance(inst, np.dtype):
            if _ident(inst) in self.used:
                raise Refused("a numpy dtype whose state is set after an array already uses it")

            def child(obj: Any) -> Any:
                if not isinstance(obj, np.dtype):
                    raise BadState("a structured numpy dtype with a field that is not a dtype")
                return obj

            check_state(inst.itemsize, state, child, code=inst.str)
        elif kind == "array":
            self.check_array_state(state)
        elif kind == "marray":
            self.check_marray_state(state)
        elif kind == "obj":
            check_build_state(state)
        elif kind in ("ext", "value", "bitgen", "wrapper"):
            check_tuple_state(type(inst), state)
            check_build_state(state)
            if kind != "wrapper":
                _plain_state(self, state)
        else:
            raise Refused(f"a state given to a {kind or type(inst).__name__}, which takes none")


def _joblib_unpickler(stream: IO[bytes], trust: tuple[str, ...]) -> Any:
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    world = _RealWorld()

    class RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc, valid-type]
        """joblib's unpickler (it reads the raw array bytes after each wrapper) with every global, call and state
        checked against the table, on the real objects."""

        dispatch = NumpyUnpickler.dispatch.copy()

        def _tag(self, obj: Any, kind: str) -> Any:
            world.kinds[_ident(obj)] = (obj, kind)
            return obj

        def load_reduce(self) -> None:
            args = self.stack.pop()
            func = self.stack[-1]
            kind = world.check_call(func, args)
            self.stack[-1] = self._tag(func(*args), kind)

        def load_newobj(self) -> None:
            args = self.stack.pop()
            cls = self.stack.pop()
            kind = world.check_call(cls, args)
            self.append(self._tag(cls.__new__(cls, *args), kind))

        def load_newobj_ex(self) -> None:
            kwargs = self.stack.pop()
            if kwargs:
                raise Refused("a NEWOBJ_EX call with keyword arguments")
            self.load_newobj()

        def load_inst(self) -> None:
            raise Refused("a protocol-0 INST instantiation (old-style classes; no model pickle uses it)")

        def load_obj(self) -> None:
            raise Refused("a protocol-1 OBJ instantiation (old-style classes; no model pickle uses it)")

        def load_build(self) -> None:
            state = self.stack[-1]
            inst = self.stack[-2]
            if world.kind(inst) == "wrapper":
                _check_wrapper_state(world, state)
                self.stack.pop()
                inst.__dict__.update(state)
                if inst.dtype.hasobject:  # the object array is a nested pickle: read it through the table too
                    inner = RestrictedNumpyUnpickler("", self.file_handle, ensure_native_byte_order=True,
                                                     mmap_mode=None)
                    array = inner.load()
                    if type(array) is not __import__("numpy").ndarray or not array.dtype.hasobject:
                        raise Refused("a joblib object array whose nested pickle is not an object array")
                    self.stack[-1] = self._tag(array, "array")
                else:
                    self.stack[-1] = self._tag(inst.read(self, True), "array")
                return
            world.check_build(inst, state)
            NumpyUnpickler.load_build(self)

        def _check_container(self, obj: Any, want: tuple[type, ...]) -> None:
            if type(obj) not in want and world.kind(obj) != "trusted":
                raise Refused(f"items added to a {type(obj).__name__}, which is not a container")

        def load_setitem(self) -> None:
            self._check_container(self.stack[-3], _DICTS)
            NumpyUnpickler.load_setitem(self)

        def load_setitems(self) -> None:
            self._check_container(self.metastack[-1][-1], _DICTS)
            NumpyUnpickler.load_setitems(self)

        def load_append(self) -> None:
            self._check_container(self.stack[-2], _LISTS)
            NumpyUnpickler.load_append(self)

        def load_appends(self) -> None:
            self._check_container(self.metastack[-1][-1], _LISTS)
            NumpyUnpickler.load_appends(self)

        def load_additems(self) -> None:
            self._check_container(self.metastack[-1][-1], (set,))
            NumpyUnpickler.load_additems(self)

        for _op, _fn in ((pickle.REDUCE, load_reduce), (pickle.NEWOBJ, load_newobj),
                         (pickle.NEWOBJ_EX, load_newobj_ex), (pickle.INST, load_inst), (pickle.OBJ, load_obj),
                         (pickle.BUILD, load_build), (pickle.SETITEM, load_setitem),
                         (pickle.SETITEMS, load_setitems), (pickle.APPEND, load_append),
                         (pickle.APPENDS, load_appends), (pickle.ADDITEMS, load_additems)):
            dispatch[_op[0]] = _fn

        def find_class(self, module: str, name: str) -> Any:
            if canonical(module, name) == JOBLIB_WRAPPER:
                world.globals[_ident(NumpyArrayWrapper)] = (NumpyArrayWrapper, "wrapper_class")
                return NumpyArrayWrapper
            verdict, obj = load_global(module, name, trust)
            if not verdict.allowed:
                raise _Refusal(verdict)
            world.globals[_ident(obj)] = (obj, "trusted" if verdict.trusted else role_of(obj))
            return obj

    return RestrictedNumpyUnpickler("", stream, ensure_native_byte_order=True, mmap_mode=None)


def _check_wrapper_state(world: _RealWorld, state: Any) -> None:
    """joblib's NumpyArrayWrapper state: a validated dtype, a shape, an order; joblib then reads the bytes."""
    if type(state) is not dict or not {"dtype", "shape", "order"} <= set(state) or not set(state) <= {
            "subclass", "allow_mmap", "shape", "order", "dtype", "numpy_array_alignment_bytes"}:
        raise Refused("a joblib array wrapper with an unexpected state")
    if state.get("subclass") is not None and world.role(state["subclass"]) != "ndarray":
        raise Refused("a joblib array of a class other than numpy.ndarray (numpy.matrix and other subclasses run "
                      "code over the data)")
    _shape(state["shape"], "a joblib array")
    world.dtype_arg(state["dtype"], "a joblib array")
    if state["order"] not in ("C", "F"):
        raise Refused("a joblib array with an unknown memory order")
    if type(state.get("allow_mmap", False)) is not bool or type(
            state.get("numpy_array_alignment_bytes") or 0) is not int:
        raise Refused("a joblib array wrapper with mistyped flags")


_DICTS = (dict, __import__("collections").OrderedDict, __import__("collections").defaultdict,
          __import__("collections").Counter)
_LISTS = (list, __import__("collections").deque)


def safe_load(path: Path, *, trust: Any = ()) -> tuple[Any, list[str]]:
    """Load the object in a pickle, joblib or skops file without resolving any global off the allowlist.

    Args:
        path: the file; its kind is found from its content, not its extension.
        trust: fully qualified names or package prefixes (`xgboost`) to admit on purpose.

    Returns:
        The object and notes for the report (a model pickled with another scikit-learn version, ...).

    Raises:
        UnsafePickleError: the file imports globals that are not on the allowlist (all of them are named).
        InputError: the file is missing, empty, truncated, corrupt, or not a pickle/joblib/skops file.
    """
    path = Path(path)
    trust = trust_tuple(trust)
    data = read_bytes(path)
    container = sniff(path, data)
    if container.kind == "skops":
        from .skops_io import load_skops

        return load_skops(path, data, trust)
    with warnings.catch_warnings(record=True) as caught, _collector_paused():
        warnings.simplefilter("always")
        obj = _load_pickle(path, data, container, trust)
    return obj, version_notes(caught)


@contextlib.contextmanager
def _collector_paused() -> Any:
    """Pause Python's cyclic garbage collector for the duration of one load (restored as it was on every exit).

    The loader allocates many small objects that die young without cycles (the dry run's stand-ins, the walk's
    stack); each few hundred of them start a collection, and every so often a full one that traverses every object
    of the process (scikit-learn's and scipy's modules included): that, not the checks, was most of a warm load's
    time. Unpickling libraries commonly do the same."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: Audit events let through while loading a file whose user passed --trust (native code of trusted packages).
TRUSTED_NATIVE = ("ctypes.",)


def _load_pickle(path: Path, data: bytes, container: Container, trust: tuple[str, ...]) -> Any:
    try:
        with guard.guarded(allow=TRUSTED_NATIVE if trust else ()):
            if container.compression:
                obj = _joblib_unpickler(open_stream(path, data, container), trust).load()
            else:
                try:
                    renamed = _dry_run(_ViewReader(data), trust)
                    if renamed:
                        obj = _RestrictedUnpickler(open_stream(path, data, container), trust).load()
                    else:
                        # The same bytes make the same find_class calls (STACK_GLOBAL takes only str, which a
                        # stub is not), so the real load resolves exactly the globals the dry run admitted and
                        # makes exactly the calls it checked; pickle.loads reads bytes without a file object's
                        # per-read overhead.
                        obj = pickle.loads(data)
                except _NeedsJoblib:
                    obj = _joblib_unpickler(open_stream(path, data, container), trust).load()
        blocked = guard.tripped()
        validate_loaded(obj, path, trust)  # states.check_graph and the fitted internals, in one walk
    except _Refusal as exc:
        raise refusal_error(path, data, container, trust, first=exc.verdict) from None
    except Refused as exc:
        raise UnsafePickleError(f"refused to load: the file asks for {exc}. portable's loader only rebuilds data "
                                "through a fixed table of reconstructors with checked arguments, so nothing was "
                                "run; `portable audit FILE` shows the same refusal", path=path,
                                refused=[str(exc)]) from None
    except guard.GuardTripped as exc:
        blocked = exc.event
    except PortableError:
        raise
    except BadState as exc:
        raise InputError(f"corrupt pickle: it holds {exc}; numpy or scikit-learn would accept it and then read "
                         "memory outside the file's data, so portable refuses it", path=path) from None
    except RecursionError:
        raise InputError("the pickle nests too deeply to rebuild", path=path) from None
    except MemoryError:
        raise InputError("not enough memory to rebuild the model's arrays (MemoryError); the process's memory is "
                         "limited or the machine is short of it", path=path) from None
    except BaseException as exc:  # anything a corrupt stream or a library's reconstructor raises
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise describe_failure(path, data, container, exc) from None
    if blocked:
        raise UnsafePickleError(f"loading the file attempted a side effect ('{blocked}') and was stopped; the "
                                "file is not a plain model pickle", path=path, refused=[blocked])
    return obj


class _ViewReader:
    """A read-only file over bytes for the dry run's C unpickler: `read` returns views of the file's bytes
    (io.BytesIO copies each read, so every array in the file was copied once more than the real load copies it)."""

    __slots__ = ("_data", "_view", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data, self._view, self._pos = data, memoryview(data), 0

    def read(self, n: int | None = -1) -> memoryview:
        start = self._pos
        end = len(self._data) if n is None or n < 0 else min(start + n, len(self._data))
        self._pos = end
        return self._view[start:end]

    def readinto(self, buf: Any) -> int:
        start = self._pos
        n = min(len(buf), len(self._data) - start)
        memoryview(buf).cast("B")[:n] = self._view[start:start + n]
        self._pos = start + n
        return n

    def readline(self, limit: int = -1) -> memoryview:
        start = self._pos
        i = self._data.find(b"\n", start)
        end = len(self._data) if i < 0 else i + 1
        self._pos = end
        return self._view[start:end]

    def peek(self, n: int = 0) -> memoryview:
        return self._view[self._pos:self._pos + max(n, 1)]


def _dry_run(stream: IO[bytes], trust: tuple[str, ...]) -> bool:
    """Run the dry run; True when it mapped a Python 2 name. Its unpickler (whose memo holds a copy of every byte
    string in the file) and its stubs are dropped before the real load starts, so the two never share memory."""
    dry = _DryRun(stream, trust)
    dry.load()
    renamed = dry.renamed
    dry.memo.clear()
    return renamed


def refusal_error(path: Path, data: bytes, container: Container, trust: tuple[str, ...],
                  first: Verdict | None = None) -> UnsafePickleError:
    """An UnsafePickleError naming every refused global in the file (found by a static scan)."""
    refused: dict[str, Verdict] = {}
    if first is not None:
        refused[first.name] = first
    try:
        found = scan_stream(open_stream(path, data, container))
        for module, name in found.imports:
            if (module, name) == JOBLIB_WRAPPER:
                continue
            v = judge(module, name, trust)
            if not v.allowed:
                refused.setdefault(v.name, v)
    except Exception:  # noqa: BLE001 - a damaged stream: the refusal found by the unpickler stands on its own
        pass
    return unsafe_error(path, list(refused.values()))


def unsafe_error(path: Path, refused: list[Verdict]) -> UnsafePickleError:
    names = sorted(v.name for v in refused)
    lines = "; ".join(f"{v.name} ({v.reason})" for v in sorted(refused, key=lambda v: v.name))
    admit = sorted(v.name for v in refused if v.trustable)
    one = len(names) == 1
    msg = (f"refused to load: the file imports {'a global' if one else f'{len(names)} globals'} that "
           f"{'is' if one else 'are'} not on the allowlist: {lines}. Nothing after the refusal was run.")
    if admit:
        flags = " ".join(f"--trust {n}" for n in admit)
        msg += (f" If you trust this file and where it came from, admit {'it' if len(admit) == 1 else 'them'} "
                f"with `{flags}` (Python: trust={admit!r}).")
    if len(admit) < len(names):
        msg += " A name that walks through a module cannot be trusted: no legitimate pickle spells one."
    msg += " `portable audit FILE` lists everything the file imports."
    return UnsafePickleError(msg, path=path, refused=names)


def describe_failure(path: Path, data: bytes, container: Container, exc: BaseException) -> InputError:
    """Turn an unpickling failure into a clear message: truncated, not a pickle, corrupt, or not rebuildable."""
    what = container.describe()
    try:
        found = scan_stream(open_stream(path, data, container))
    except ScanError as err:
        at = f"byte {err.pos}" if err.pos is not None else "the start"
        if err.truncated:
            return InputError(f"truncated {what}: the data ends at {at} before the pickle is complete "
                              f"({err}); the file was cut short (an interrupted copy or download?)", path=path)
        if not container.compression and not err.pos:
            return InputError(f"not a pickle: the first byte {data[:1]!r} is not a pickle opcode", path=path)
        if not container.compression and (err.pos or 0) < 16 and _looks_like_text(data):
            return InputError(f"not a pickle: the file is text ({data[:40].decode(errors='replace')!r}...) that "
                              f"does not parse as a protocol-0 pickle ({err} at {at})", path=path)
        return InputError(f"corrupt {what} at {at}: {err}", path=path)
    except Exception as err:  # zlib.error, lzma.LZMAError, EOFError, OSError: the compressed stream is damaged
        return InputError(f"corrupt or truncated {container.compression}-compressed stream: "
                          f"{type(err).__name__}: {err}", path=path)
    recorded = ", ".join(f"{lib} {'/'.join(sorted(v))}" for lib, v in found.versions.items())
    hint = f" The file records {recorded}; it may need that version to be rebuilt." if recorded else ""
    return InputError(f"the {what} is well-formed but rebuilding its objects failed: "
                      f"{type(exc).__name__}: {exc}.{hint}", path=path)


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def version_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """Notes for the report from warnings raised while loading (scikit-learn's InconsistentVersionWarning)."""
    groups: dict[tuple[str, str], list[str]] = {}
    others: list[str] = []
    for w in caught:
        msg = w.message
        original = getattr(msg, "original_sklearn_version", None)
        if original is not None:
            key = (str(original), str(getattr(msg, "current_sklearn_version", "?")))
            groups.setdefault(key, []).append(str(getattr(msg, "estimator_name", "?")))
        elif "version" in str(msg).lower() and not issubclass(w.category, DeprecationWarning):
            others.append(f"warning while loading: {msg}")
    notes = []
    for (original, current), names in sorted(groups.items()):
        shown = ", ".join(sorted(set(names)))
        notes.append(f"pickled with scikit-learn {original} but loaded with scikit-learn {current} ({shown}): "
                     "scikit-learn does not promise the same predictions across versions; the equivalence check "
                     "compares the conversion with the model as loaded here")
    return notes + sorted(set(others))
