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

import pickle
import warnings
from pathlib import Path
from typing import IO, Any

from ..errors import InputError, PortableError, UnsafePickleError
from . import guard
from .allowlist import Verdict, canonical, judge, load_global, trust_tuple
from .container import Container, open_stream, read_bytes, sniff
from .states import (BadState, check_build_state, check_graph, check_real_state, check_state, check_tuple_state,
                     code_size, tuple_state_minimum)
from .scan import JOBLIB_WRAPPER, ScanError, scan_stream


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


class _Stub(Exception):
    """A stand-in for an allowlisted global during the dry run.

    BaseException's C `__new__`/`__init__` accept any arguments (kept in `.args`), so NEWOBJ and REDUCE on a
    stub cost no Python call. BUILD checks the state's attribute names (`states.check_build_state`): in the dry
    run a name computed by a call is a stub, not a str, and is refused, so the real load sets only literal names.
    """

    __setstate__ = staticmethod(check_build_state)

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:  # a call of an object the file built
        return _Stub()

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on dict subclasses (Bunch)
        pass

    def append(self, value: Any) -> None:  # APPENDS on list subclasses
        pass

    def extend(self, values: Any) -> None:
        pass

    def add(self, value: Any) -> None:  # ADDITEMS on set subclasses
        pass


class _DtypeStub(_Stub):
    """Stands in for numpy.dtype: keeps the BUILD state (a tuple) for the check."""

    record: list[_DtypeStub] = []
    dtype_state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.dtype_state = state
        type(self).record.append(self)


class _CheckedStub(_Stub):
    """Stands in for a class whose real `__setstate__` trusts the length of its state tuple."""

    target: Any = None

    def __setstate__(self, state: Any) -> None:
        check_tuple_state(type(self).target, state)
        check_build_state(state)


class _NewObjStub(_Stub):
    """Stands in for scikit-learn's `newObj(cls)` reconstructor: the BUILD that follows is `cls`'s."""

    def __setstate__(self, state: Any) -> None:
        cls = self.args[0] if self.args else None
        check_tuple_state(getattr(cls, "target", None), state)
        check_build_state(state)


class _DryRun(pickle.Unpickler):
    """The C unpickler with every allowed global replaced by a stub: parses the stream and checks dtype states
    without building anything, so that corrupt states never reach numpy."""

    def __init__(self, file: IO[bytes], trust: tuple[str, ...]) -> None:
        super().__init__(file)
        self._trust = trust
        self._stubs: dict[int, type] = {}
        self.dtypes: list[_DtypeStub] = []
        self.renamed = False  # a Python 2 name was mapped, as the real unpickler only does for protocols 0-2

    def find_class(self, module: str, name: str) -> Any:
        mapped = canonical(module, name)
        if mapped == JOBLIB_WRAPPER:
            raise _NeedsJoblib
        self.renamed = self.renamed or mapped != (module, name)
        verdict, obj = load_global(module, name, self._trust)
        if not verdict.allowed:
            raise _Refusal(verdict)
        stub = self._stubs.get(id(obj))
        if stub is None:
            import numpy as np

            if obj is np.dtype:
                stub = type("DtypeStub", (_DtypeStub,), {"record": self.dtypes})
            elif tuple_state_minimum(obj) is not None:
                stub = type("CheckedStub", (_CheckedStub,), {"target": obj})
            elif getattr(obj, "__name__", None) == "newObj":  # an allowlisted reconstructor (judged above)
                stub = type("NewObjStub", (_NewObjStub,), {})
            else:
                stub = type("Stub", (_Stub,), {"target": obj})
            self._stubs[id(obj)] = stub
        return stub

    def check_dtypes(self) -> None:
        def child_size(obj: Any, depth: int = 1) -> int:
            if not isinstance(obj, _DtypeStub):
                raise BadState("a structured numpy dtype with a field that is not a dtype")
            if not obj.args:
                raise BadState("a numpy dtype built without a type code")
            return check_state(code_size(obj.args[0]), obj.dtype_state, lambda o: child_size(o, depth + 1),
                               depth)

        for stub in self.dtypes:
            child_size(stub)


def _joblib_unpickler(stream: IO[bytes], trust: tuple[str, ...]) -> Any:
    import numpy as np
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc, valid-type]
        """joblib's unpickler (it reads the raw array bytes after each wrapper) with the allowlist, and with
        dtype states checked before numpy applies them."""

        dispatch = NumpyUnpickler.dispatch.copy()

        def load_build(self) -> None:
            if len(self.stack) >= 2:
                if isinstance(self.stack[-2], np.dtype):
                    check_real_state(self.stack[-1])
                else:
                    check_tuple_state(type(self.stack[-2]), self.stack[-1])
                    check_build_state(self.stack[-1])
            NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

        def find_class(self, module: str, name: str) -> Any:
            if canonical(module, name) == JOBLIB_WRAPPER:
                return NumpyArrayWrapper
            verdict, obj = load_global(module, name, trust)
            if not verdict.allowed:
                raise _Refusal(verdict)
            return obj

    try:
        return RestrictedNumpyUnpickler("", stream, ensure_native_byte_order=True, mmap_mode=None)
    except TypeError:  # joblib < 1.3 has no ensure_native_byte_order
        return RestrictedNumpyUnpickler("", stream, mmap_mode=None)


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = _load_pickle(path, data, container, trust)
    return obj, version_notes(caught)


#: Audit events let through while loading a file whose user passed --trust (native code of trusted packages).
TRUSTED_NATIVE = ("ctypes.",)


def _load_pickle(path: Path, data: bytes, container: Container, trust: tuple[str, ...]) -> Any:
    try:
        with guard.guarded(allow=TRUSTED_NATIVE if trust else ()):
            if container.compression:
                obj = _joblib_unpickler(open_stream(path, data, container), trust).load()
            else:
                try:
                    dry = _DryRun(open_stream(path, data, container), trust)
                    dry.load()
                    dry.check_dtypes()
                    if dry.renamed:
                        obj = _RestrictedUnpickler(open_stream(path, data, container), trust).load()
                    else:
                        # The same bytes make the same find_class calls (STACK_GLOBAL takes only str, which a
                        # stub is not), so the real load resolves exactly the globals the dry run admitted;
                        # pickle.loads reads bytes without a file object's per-read overhead.
                        obj = pickle.loads(data)
                except _NeedsJoblib:
                    obj = _joblib_unpickler(open_stream(path, data, container), trust).load()
        blocked = guard.tripped()
        check_graph(obj)
    except _Refusal as exc:
        raise refusal_error(path, data, container, trust, first=exc.verdict) from None
    except guard.GuardTripped as exc:
        blocked = exc.event
    except PortableError:
        raise
    except BadState as exc:
        raise InputError(f"corrupt pickle: it holds {exc}; numpy or scikit-learn would accept it and then read "
                         "memory outside the file's data, so portable refuses it", path=path) from None
    except RecursionError:
        raise InputError("the pickle nests too deeply to rebuild", path=path) from None
    except BaseException as exc:  # anything a corrupt stream or a library's reconstructor raises
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise describe_failure(path, data, container, exc) from None
    if blocked:
        raise UnsafePickleError(f"loading the file attempted a side effect ('{blocked}') and was stopped; the "
                                "file is not a plain model pickle", path=path, refused=[blocked])
    return obj


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
