"""`safe_load`: unpickle a pickle, joblib or skops file, resolving only allowlisted globals.

Plain pickles go through the C unpickler once (`onepass.py`): every allowed global is replaced by a stand-in
whose calls pass the reconstructor table (`table.py`) before the real reconstructor runs, and every state numpy
or scikit-learn would apply unchecked (dtypes, arrays, Cython classes, Python objects) is checked as it is set
(`states.py`); the fitted internals met on the way are validated together at the end (`internals.py`), before
anything runs them. joblib files (their arrays follow the pickle opcodes as raw bytes) and loads with `trust`
go through joblib's own `NumpyUnpickler` with the same table and checks in its opcodes, never through
`joblib.load`, followed by a walk of the loaded object; skops archives go through `skops.io` with `trusted=`
computed from the allowlist. A refusal stops the load at the first refused global; a static scan of the file
then names every refused global. While loading, `guard.guarded()` blocks process, network and file-writing side
effects as a second wall.
"""
from __future__ import annotations

import gc
import pickle
import warnings
from pathlib import Path
from typing import IO, Any


from ..errors import CorruptModelError, InputError, PortableError, UnsafePickleError, locate
from ..limits import LIMITS
from . import guard, onepass
from .allowlist import Verdict, canonical, judge, load_global, trust_tuple
from .bunch import LoadingBunch, check_bunch_state
from .bunch import finish as finish_bunches
from .container import (Container, declared_bytes_fit, open_file_stream, open_head, open_stream, read_bytes,
                        sniff)
from .internals import validate_loaded, validate_recorded
from .onepass import _plain_state
from .states import BadState, HostileState, check_build_state, check_state, check_tuple_state
from .table import Refused, World, _shape, check_items, role_of, type_name
from .scan import JOBLIB_WRAPPER, ScanError, opcode_limit_error, scan_stream

#: A unique key for a live object. Not `id()`: that is an audited event, and the guard's audit hook (a Python
#: function, installed for good once a file is loaded) would then run for every object a walk visits.
_ident = object.__hash__


_Refusal = onepass.Refusal
_NeedsJoblib = onepass.NeedsJoblib


class _RealWorld(World):
    """The table's view inside joblib's pure-Python unpickler: real objects, globals known by identity."""

    def __init__(self) -> None:
        self.globals: dict[int, tuple[Any, str]] = {}
        self.kinds: dict[int, tuple[Any, str]] = {}
        self.built: set[int] = set()
        self.used: set[int] = set()
        self.bunches: list[Any] = []  # scikit-learn Bunches built, as LoadingBunch (`bunch.finish`)
        self.opcodes = [LIMITS.max_pickle_opcodes]  # opcodes the file may still run (`max_pickle_opcodes`)

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
        elif kind == "partial":
            self.check_partial_state(inst.func, state)
        elif kind == "bunch":
            check_bunch_state(state)
        elif kind in ("ext", "value", "bitgen", "wrapper"):
            check_tuple_state(type(inst), state)
            check_build_state(state)
            if kind != "wrapper":
                _plain_state(self, state)
        else:
            raise Refused(f"a state given to a {kind or type_name(inst)}, which takes none")


def _joblib_unpickler(stream: IO[bytes], trust: tuple[str, ...]) -> Any:
    with guard.paused():  # joblib's import-time code sets environment variables: the library's doing, not the file's
        from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    world = _RealWorld()

    class RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc, valid-type]
        """joblib's unpickler (it reads the raw array bytes after each wrapper) with every global, call and state
        checked against the table, on the real objects."""

        dispatch = NumpyUnpickler.dispatch.copy()

        def _tag(self, obj: Any, kind: str) -> Any:
            world.kinds[_ident(obj)] = (obj, kind)
            if kind == "bunch":
                world.bunches.append(obj)
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
                _check_wrapper_size(state, self.file_handle)
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
            if type(obj) not in want and world.kind(obj) not in ("trusted", "bunch" if want is _DICTS else None):
                raise Refused(f"items added to a {type_name(obj)}, which is not a container")

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

        def load(self) -> Any:
            """`pickle._Unpickler.load` (which joblib's unpickler inherits) with the opcodes counted against
            `max_pickle_opcodes`: this loop runs in Python, a microsecond or more per opcode, so a file of millions
            of cheap opcodes would otherwise take minutes. The count is the file's (`world.opcodes`, shared with
            the nested pickles of object arrays)."""
            self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
            self.read = self._unframer.read
            self.readinto = self._unframer.readinto
            self.readline = self._unframer.readline
            self.metastack = []
            self.stack = []
            self.append = self.stack.append
            self.proto = 0
            read = self.read
            dispatch = self.dispatch
            left = world.opcodes
            try:
                while True:
                    key = read(1)
                    if not key:
                        raise EOFError
                    dispatch[key[0]](self)
                    left[0] -= 1
                    if left[0] < 0:
                        raise opcode_limit_error(LIMITS.max_pickle_opcodes)
            except pickle._Stop as stopinst:  # type: ignore[attr-defined]
                return stopinst.value

        def find_class(self, module: str, name: str) -> Any:
            if canonical(module, name) == JOBLIB_WRAPPER:
                world.globals[_ident(NumpyArrayWrapper)] = (NumpyArrayWrapper, "wrapper_class")
                return NumpyArrayWrapper
            verdict, obj = load_global(module, name, trust)
            if not verdict.allowed:
                raise _Refusal(verdict)
            role = "trusted" if verdict.trusted else role_of(obj)
            if role == "bunch":  # built as a plain dict, given its class once its items are checked
                obj = LoadingBunch
            world.globals[_ident(obj)] = (obj, role)
            return obj

    unpickler = RestrictedNumpyUnpickler("", stream, ensure_native_byte_order=True, mmap_mode=None)
    unpickler.world = world
    return unpickler


def _joblib_load(stream: IO[bytes], trust: tuple[str, ...]) -> Any:
    """Load with `_joblib_unpickler`, then let go of what its table view holds. The unpickler's class is made per
    load and sits in a reference cycle (freed only by the cyclic collector), and its view keeps every built object
    by identity: without the clear, each load's arrays would outlive the load, so a process loading a file again
    kept allocating fresh memory (a 16 MiB array cost page faults on every load)."""
    unpickler = _joblib_unpickler(stream, trust)
    try:
        obj = unpickler.load()
        finish_bunches(unpickler.world.bunches)  # every item final: checked, then each given its class
        return obj
    finally:
        world = unpickler.world
        world.kinds.clear()
        world.globals.clear()
        world.built.clear()
        world.used.clear()
        unpickler.memo.clear()


def _check_wrapper_size(state: dict, stream: IO[bytes]) -> None:
    """The bytes a joblib array declares (shape x item size) must fit in what the file can still hold, before
    joblib allocates the array and decompresses into it."""
    dtype = state["dtype"]
    if dtype.hasobject:
        return
    n = 1
    for d in state["shape"]:
        n *= int(d)
    check_items(n, dtype.itemsize, "a joblib array")
    why = declared_bytes_fit(stream, n * dtype.itemsize)
    if why:
        raise CorruptModelError(f"the file is truncated or corrupt: {why}")


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
    if type(path) is not str and not isinstance(path, Path):
        path = Path(path)  # a str is used as it is (messages print it alike); anything else as pickle.load's open
    trust = trust_tuple(trust) if trust else ()
    file, head = open_head(path)
    try:
        return _safe_load(path, file, head, trust)
    finally:
        file.close()


def _safe_load(path: Path, file: IO[bytes], head: bytes, trust: tuple[str, ...]) -> tuple[Any, list[str]]:
    if head.startswith(b"PK"):
        data = read_bytes(path)
        container = sniff(path, data)
        if container.kind == "skops":
            from .skops_io import load_skops

            return load_skops(path, data, trust)
    container = sniff(path, head)
    # every warning raised while loading is recorded, none shown or raised: what `warnings.catch_warnings(record=
    # True)` with `simplefilter("always")` does, with less work per load (a fresh one-filter list rather than a
    # copy of the filters and a search of it; the C warnings machinery reads `filters` and `_showwarnmsg_impl` from
    # the module, so these three names are what it sees)
    caught: list[warnings.WarningMessage] = []
    saved = warnings.filters, warnings.showwarning, warnings._showwarnmsg_impl  # type: ignore[attr-defined]
    warnings.filters = [_RECORD_EVERY_WARNING]  # type: ignore[attr-defined]
    warnings._filters_mutated()  # type: ignore[attr-defined]
    warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]  # -> _showwarnmsg_impl
    warnings._showwarnmsg_impl = caught.append  # type: ignore[attr-defined]
    # Python's cyclic garbage collector is paused for the load (restored as it was on every exit): the pass
    # allocates many small objects that die young without cycles (proxies, argument tuples), and each few
    # hundred of them would start a collection. Unpickling libraries commonly do the same.
    was = gc.isenabled()
    gc.disable()
    try:
        obj = _load_pickle(path, file, container, trust, head)
    finally:
        if was:
            gc.enable()
        warnings.filters, warnings.showwarning, warnings._showwarnmsg_impl = saved  # type: ignore[attr-defined]
        warnings._filters_mutated()  # type: ignore[attr-defined]
    return obj, version_notes(caught)


#: The one warnings filter while a file loads: record every warning (`simplefilter("always")`).
_RECORD_EVERY_WARNING = ("always", None, Warning, None, 0)


#: Audit events let through while loading a file whose user passed --trust (native code of trusted packages).
TRUSTED_NATIVE = ("ctypes.",)


def _load_pickle(path: Path, file: IO[bytes], container: Container, trust: tuple[str, ...], head: bytes) -> Any:
    """One checked pass over the file (`onepass`) for plain pickles; joblib's unpickler with the same table for
    joblib files and for loads with `trust` (whose trusted objects are opaque to the table), followed by a walk."""
    session = None
    try:
        file.seek(0)
        with guard.guarded(allow=TRUSTED_NATIVE if trust else ()):
            walk = True
            if container.compression or trust:
                obj = _joblib_load(open_file_stream(path, file, container), trust)
            elif _names_joblib_wrapper(head):  # a joblib.dump file: straight to joblib's unpickler
                obj = _joblib_load(file, trust)
            else:
                try:
                    obj, session, walk = onepass.load(file)
                    if walk:  # a proxy or stand-in left where the swaps did not reach: swap them everywhere
                        obj, left = session.walk_fix(obj)
                        if left:
                            raise Refused("objects placed where the loader cannot check them (a container filled "
                                          "after the object that holds it was built)")
                except _NeedsJoblib:
                    file.seek(0)
                    obj = _joblib_load(file, trust)
        blocked = guard.tripped()
        if walk:
            validate_loaded(obj, path, trust)  # states.check_graph and the fitted internals, in one walk
        else:
            validate_recorded(session, obj, path)  # the fitted internals recorded as their states were set
    except _Refusal as exc:
        raise refusal_error(path, _data(path), container, trust, first=exc.verdict) from None
    except Refused as exc:
        raise UnsafePickleError(f"refused to load: the file asks for {exc}. portable's loader only rebuilds data "
                                "through a fixed table of reconstructors with checked arguments, so nothing was "
                                "run; `portable audit FILE` shows the same refusal", path=path,
                                refused=[str(exc)]) from None
    except guard.GuardTripped as exc:
        blocked = exc.event
    except CorruptModelError as exc:
        if exc.path is None:  # raised inside the unpickler, which does not know the file
            raise CorruptModelError(exc.message, path=path) from None
        raise
    except PortableError as exc:  # a limit reached inside the unpickler (which does not know the file)
        raise locate(exc, path) from None
    except HostileState as exc:
        raise hostile_error(path, exc) from None
    except BadState as exc:
        raise InputError(f"corrupt pickle: it holds {exc}; numpy or scikit-learn would accept it and then read "
                         "memory outside the file's data, so portable refuses it", path=path) from None
    except RecursionError:
        raise InputError("the pickle nests too deeply to rebuild", path=path) from None
    except MemoryError:
        raise _out_of_memory(path, container) from None
    except BaseException as exc:  # anything a corrupt stream or a library's reconstructor raises
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise describe_failure(path, _data(path), container, exc) from None
    if blocked:
        raise UnsafePickleError(f"loading the file attempted a side effect ('{blocked}') and was stopped; the "
                                "file is not a plain model pickle", path=path, refused=[blocked])
    return obj


#: How much of the file's start `_names_joblib_wrapper` searches: joblib.dump names its array wrapper with the first
#: array, within a few hundred bytes to a few KiB of the start for model pickles. A search of the whole 64 KiB
#: head cost 40 us on a file of float data, as much as the rest of a small model's load.
_JOBLIB_NAME_WITHIN = 8192


def _names_joblib_wrapper(head: bytes) -> bool:
    """Whether the start of the stream (`head`: the open file's first buffer) names joblib's array wrapper
    (joblib.dump writes it with the first array). Only a shortcut: a plain pickle that merely contains the words
    goes through joblib's unpickler with the same table, and a joblib file that names it later is restarted there
    by the checked pass (`onepass.NeedsJoblib`)."""
    return head.find(b"NumpyArrayWrapper", 0, _JOBLIB_NAME_WITHIN) >= 0


def _data(path: Path) -> bytes:
    """The file's bytes, for the messages of a failed load (read only then)."""
    try:
        return read_bytes(path)
    except PortableError:
        return b""


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


def hostile_error(path: Path, exc: BadState, what: str = "file") -> UnsafePickleError:
    """The refusal of a file that holds something other than data (`states.HostileState`: a class or callable kept
    as a value, an attribute numpy or Python would take for the object's own, a Bunch whose items do that). Every
    name it imports may be allowed: it is the way they are put together that hands the reader a capability, so it
    is refused like a refused global, not reported as a damaged file."""
    return UnsafePickleError(f"refused to load: the {what} holds {exc}. That is not model data but something "
                             "numpy or Python would act on, so portable refuses the file and uses none of it; "
                             "`portable audit FILE` shows the same refusal", path=path, refused=[str(exc)])


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


def _out_of_memory(path: Path, container: Container) -> InputError:
    """A MemoryError while rebuilding: a stream that declares more bytes (a frame, a bytes object) than it holds
    makes the unpickler allocate them first; only a well-formed stream really needs the memory."""
    try:
        scan_stream(open_stream(path, _data(path), container))
    except PortableError as err:  # a limit reached while scanning (max_pickle_opcodes, max_compression_ratio)
        return locate(err, path)  # type: ignore[return-value]
    except ScanError as err:
        at = f"byte {err.pos}" if err.pos is not None else "the start"
        kind = "truncated or corrupt" if err.truncated else "corrupt"
        return InputError(f"{kind} {container.describe()} at {at}: {err}", path=path)
    except Exception:  # a damaged compressed stream, or the scan itself short of memory: say what was seen
        pass
    return InputError("not enough memory to rebuild the model's arrays (MemoryError); the process's memory is "
                      "limited or the machine is short of it", path=path)


def describe_failure(path: Path, data: bytes, container: Container, exc: BaseException) -> InputError:
    """Turn an unpickling failure into a clear message: truncated, not a pickle, corrupt, or not rebuildable."""
    what = container.describe()
    try:
        found = scan_stream(open_stream(path, data, container))
    except PortableError as err:  # a limit reached while scanning (max_pickle_opcodes, max_compression_ratio)
        return locate(err, path)  # type: ignore[return-value]
    except ScanError as err:
        at = f"byte {err.pos}" if err.pos is not None else "the start"
        if err.truncated:
            return InputError(f"truncated {what}: the data ends at {at} before the pickle is complete "
                              f"({err}); the file was cut short (an interrupted copy or download?)", path=path)
        if not container.compression and not err.pos and err.unknown:
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
                      f"{type(exc).__name__}: {str(exc).rstrip('.')}.{hint}", path=path)


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def version_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """Notes for the report from warnings raised while loading (scikit-learn's InconsistentVersionWarning)."""
    if not caught:
        return []
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
