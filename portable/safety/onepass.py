"""The loader's single checked pass over a plain pickle: the C unpickler builds the real objects once, and every
reconstructor call and every state passes the reconstructor table (`table.py`) before any library code sees it.

How the C unpickler is made to check what it does, at C speed between the checks:

- `find_class` never returns an allowed global itself but its *stand-in*, a class whose `__new__` is the table:
  REDUCE and NEWOBJ of a stand-in validate the arguments (`World.check_call`) and then call the real
  reconstructor with the real arguments. numpy's `_reconstruct`, `dtype` and `scalar`, which a file only ever
  calls (REDUCE), stand in as plain functions with the same rule (`_entry`: the unpickler calls a function for less
  than a class). A stand-in kept as a value (`dtype=np.float64`) is swapped for the real global where it is found,
  and only when the table lets that global be a value.
- Objects whose state (BUILD) numpy or a Cython class would apply unchecked -- arrays, dtypes, numpy scalars,
  scikit-learn extension types (trees, neighbour trees, losses), numpy.random objects, and Python classes that
  act as containers -- are built behind a *proxy*: the unpickler sees the proxy, whose `__setstate__` validates the
  state (`check_array_state`, the dtype's flags against its code, tuple lengths, plain data) and then applies it to
  the real object. The real object replaces its proxy wherever the proxy was placed (states, containers, arguments,
  object arrays, the result).
- Plain scikit-learn objects (Python classes) are built for real at once (so that cycles and shared references stay
  what the file says) with an instance-level `__setstate__` that checks the state (attribute names literal, no
  array-protocol attribute, proxies and stand-ins swapped) before the class's own `__setstate__` runs; the hook is
  removed after the load. A second state for the same object is refused.
- The fitted internals (trees, HistGradientBoosting predictors, KD/Ball trees, sparse matrices, SVMs, encoders,
  neighbour fits) are recorded as their states are set and validated together once the stream is read
  (`internals.py`), before anything runs them.

No dry run and no walk of the loaded object are needed. A proxy or stand-in still referenced after the load (a
container filled after its holder was built -- no pickler writes that, but a file can) makes the loader fall back
to a full walk that swaps them and validates the whole graph; one still left then is refused.
"""
from __future__ import annotations

import collections
import functools
import itertools as _itertools
import operator
import pickle
import sys
import threading
import types
from typing import IO, Any

from .allowlist import canonical, load_global
from .bunch import LoadingBunch
from .bunch import finish as finish_bunches
from ..limits import LIMITS
from .scan import JOBLIB_WRAPPER, opcode_limit_error
from .states import (ARRAY_PROTOCOL_ATTRIBUTES, BadState, HostileState, check_build_state, check_state,
                     check_tuple_state, code_size, tuple_state_minimum)
from .table import _CODES, _SHAPE_MAX, MAX_ARRAY_BYTES, Refused, World, role_of

#: A unique key for a live object. Not `id()`: that is an audited event (see `guard.py`).
_ident = object.__hash__
_rc = sys.getrefcount
_DICT_OF = operator.attrgetter("__dict__")

_anew = object.__new__
#: One checked pass at a time: stand-ins are shared between loads, and the leftover check counts references.
_LOCK = threading.RLock()
#: The running pass's session (one pass at a time: `_LOCK`; a nested pass on the same thread saves and restores
#: it). A module-level slot rather than a thread-local attribute: the BUILD hooks read it for every object, and a
#: `threading.local` attribute costs a per-thread dictionary lookup each time.
_SESSION: list[Any] = [None]


class Refusal(Exception):
    def __init__(self, verdict: Any) -> None:
        super().__init__(verdict.name)
        self.verdict = verdict


class NeedsJoblib(Exception):
    """The plain stream names joblib's array wrapper: restart with joblib's unpickler."""


# -- stand-ins for globals -----------------------------------------------------------------------------------------
class _Meta(type):
    """The metaclass of stand-ins: `type(x) is _Meta` says x stands for a global."""


class _NoBuild:
    """BUILD on a global itself would set attributes of a library class for the whole process."""

    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            raise Refused(f"the file sets attributes of the global {_name(owner._target)} itself")
        return None


class _StandIn(metaclass=_Meta):
    _target: Any = None
    _role: str | None = None
    __setstate__ = _NoBuild()

    def __new__(cls, *args: Any) -> Any:  # REDUCE, NEWOBJ (and protocol 0's INST) all come here
        return _SESSION[0].call(cls, args)


class _PyClassStandIn(_StandIn):
    """A Python class of the table: NEWOBJ with no arguments builds the object for real, with a BUILD hook."""

    _hooked = False

    def __new__(cls, *args: Any) -> Any:
        if args:
            return _SESSION[0].call(cls, args)  # the table refuses it, with its reason
        obj = _anew(cls._target)
        if cls._hooked:
            obj.__dict__["__setstate__"] = _MethodType(_hook, obj)
            _HOOKED[0](obj)
            return obj
        return _SESSION[0].proxy(obj, "pyobj")


class _BunchStandIn(_StandIn):
    """scikit-learn's Bunch: NEWOBJ (or REDUCE) with no arguments builds a `bunch.LoadingBunch`, a plain dict the
    unpickler fills with SETITEMS at C speed; it becomes a Bunch at the end of the pass (`bunch.finish`)."""

    def __new__(cls, *args: Any) -> Any:
        if args:
            return _SESSION[0].call(cls, args)  # the table refuses it, with its reason
        b = _anew_dict(LoadingBunch)
        _SESSION[0].bunches.append(b)
        return b


_anew_dict = dict.__new__


class _ReconstructStandIn(_StandIn):
    """numpy's `_reconstruct`: the call of every array, with the table's rule for it (`World.check_call`) inlined
    for the one shape numpy writes; any other goes through the table itself (which refuses it with its reason)."""

    def __new__(cls, *args: Any) -> Any:
        if args == _STD[0] and type(args[1][0]) is int:  # (ndarray, (0,), b'b'); False == 0 but is no shape
            p = _anew(_ArrayProxy)
            p.obj = _RECONSTRUCT[0](_NDARRAY[0], _ZERO, _B)
            p.built = False
            _APPEND[0](p)
            return p
        return _SESSION[0].call(cls, args)


_ZERO, _B = (0,), b"b"
#: numpy's own `_reconstruct` arguments with ndarray's stand-in (set by `load`, with the function itself).
_STD: list[Any] = [None]
_RECONSTRUCT: list[Any] = [None]
#: The running pass's `proxies.append` (one pass at a time: `_LOCK`).
_APPEND: list[Any] = [None]
#: The running pass's `hooked.append`.
_HOOKED: list[Any] = [None]
_MethodType = types.MethodType
_FunctionType = types.FunctionType


class _ScalarStandIn(_StandIn):
    """numpy's `scalar(dtype, bytes)`: the table's rule (`World.check_call`) inlined for a number over a validated
    dtype (bool, integer, float, complex: no objects, no fields), which gives the real numpy scalar at once -- a
    value with nothing to check or swap later; anything else goes through the table."""

    def __new__(cls, *args: Any) -> Any:
        if len(args) == 2:
            d, raw = args
            if type(d) is _DtypeProxy and type(raw) is bytes:
                dt = d.obj
                if dt.kind in _NUMBER_KINDS and len(raw) == dt.itemsize and not dt.hasobject:
                    d.used = True
                    return cls._target(dt, raw)
        return _SESSION[0].call(cls, args)


class _DtypeStandIn(_StandIn):
    """`numpy.dtype(code, align, True)`, the call of every dtype numpy pickles: the table's rule for it
    (`World.check_call`: three arguments, a bool, a fresh copy, a plain type code) inlined for a code the table has
    already validated (`table._CODES`, filled by `check_dtype_code`); anything else goes through the table."""

    def __new__(cls, *args: Any) -> Any:
        if len(args) == 3 and args[2] is True and type(args[1]) is bool and type(args[0]) is str:
            code = args[0]
            if code in _CODES:
                obj = cls._target(code, args[1], True)
                p = _anew(_DtypeProxy)
                p.obj, p.built, p.used, p.code, p.size = obj, False, False, code, -1 if obj.hasobject else obj.itemsize
                p.key = None
                _APPEND[0](p)
                return p
        return _SESSION[0].call(cls, args)


_NUMBER_KINDS = frozenset("biufc")
#: Builtin types the table checks beyond "plain arguments" (a size, a factory).
_SIZED_BUILTINS = frozenset({bytes, bytearray, collections.defaultdict})
_STANDINS: dict[int, tuple[Any, type]] = {}


def stand_in(obj: Any) -> type:
    got = _STANDINS.get(_ident(obj))
    if got is not None and got[0] is obj:
        return got[1]
    role = role_of(obj)
    base = {"py_class": _PyClassStandIn, "reconstruct": _ReconstructStandIn, "scalar": _ScalarStandIn,
            "dtype": _DtypeStandIn, "bunch": _BunchStandIn}.get(
        role or "", _StandIn)
    body = {"_target": obj, "_role": role, "__slots__": ()}
    if role == "py_class":
        body["_hooked"] = _py_info(obj)[0]
    si = _Meta(f"StandIn[{_name(obj)}]", (base,), body)
    if len(_STANDINS) < 65536:
        _STANDINS[_ident(obj)] = (obj, si)
    return si


#: The function that stands, in the unpickler, for each global only ever called by REDUCE (numpy's `_reconstruct`,
#: `dtype` and `scalar`), and the stand-in class whose rule it applies.
_FUNCTIONS: dict[Any, type] = {}


def _entry(si: type) -> Any:
    """What `find_class` gives the unpickler for the stand-in `si`: `si` itself, or for numpy's `_reconstruct`,
    `dtype` and `scalar` (called once per array, dtype and number of a file, and only by REDUCE) a plain function
    with the same rule (`si.__new__`): the unpickler calls a function directly, a class through `type.__call__`
    and `__new__` (about 100 ns more per call). Anything but the common call goes to the table with `si`, which
    names it in its refusal; the function kept as a value is refused like `si` (`Session.value`), and it is counted
    for leftovers like any stand-in."""
    new = {_ReconstructStandIn: _reconstruct_call, _ScalarStandIn: _scalar_call, _DtypeStandIn: _dtype_call}.get(
        si.__bases__[0])
    if new is None:
        return si
    for fn, cls in _FUNCTIONS.items():
        if cls is si:
            return fn
    fn = new(si)
    fn._role, fn._target = si._role, si._target  # what `Session.role` / `target` read off a stand-in
    _FUNCTIONS[fn] = si
    return fn


#: The default of the stand-in functions' parameters: an argument the file did not pass (no file can pass it).
_NOARG: Any = object()


def _given(*args: Any) -> tuple:
    """The arguments a stand-in function was really called with (its unfilled parameters dropped)."""
    return tuple([a for a in args if a is not _NOARG])


def _reconstruct_call(si: type) -> Any:
    reconstruct, ndarray, ndarray_si = _RECONSTRUCT[0], _NDARRAY[0], _NDARRAY[1]

    # three named parameters rather than `*args`: the unpickler's call then binds them without building a tuple
    # (`more` is the shared empty tuple); anything but numpy's own call goes to the table with the same arguments
    def reconstruct_array(cls: Any = _NOARG, shape: Any = _NOARG, code: Any = _NOARG, *more: Any) -> Any:
        # (ndarray, (0,), b'b'), as `args == (ndarray, (0,), b'b')` compares them; False == 0 but is no shape
        if cls is ndarray_si and shape == _ZERO and code == _B and not more and type(shape[0]) is int:
            p = _anew(_ArrayProxy)
            p.obj = reconstruct(ndarray, _ZERO, _B)
            p.built = False
            _APPEND[0](p)
            return p
        return _SESSION[0].call(si, _given(cls, shape, code) + more)

    return reconstruct_array


def _scalar_call(si: type) -> Any:
    scalar = si._target

    def numpy_scalar(d: Any = _NOARG, raw: Any = _NOARG, *more: Any) -> Any:  # `_ScalarStandIn.__new__`
        if type(d) is _DtypeProxy and type(raw) is bytes and not more:
            dt = d.obj
            if dt.kind in _NUMBER_KINDS and len(raw) == dt.itemsize and not dt.hasobject:
                d.used = True
                return scalar(dt, raw)
        return _SESSION[0].call(si, _given(d, raw) + more)

    return numpy_scalar


def _dtype_call(si: type) -> Any:
    dtype = si._target

    def numpy_dtype(code: Any = _NOARG, align: Any = _NOARG, copy: Any = _NOARG, *more: Any) -> Any:
        # `_DtypeStandIn.__new__`
        if copy is True and type(align) is bool and type(code) is str and not more and code in _CODES:
            obj = dtype(code, align, True)
            p = _anew(_DtypeProxy)
            p.obj, p.built, p.used, p.code, p.size = obj, False, False, code, -1 if obj.hasobject else obj.itemsize
            p.key = None
            _APPEND[0](p)
            return p
        return _SESSION[0].call(si, _given(code, align, copy) + more)

    return numpy_dtype


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


# -- proxies for objects whose state a library would apply unchecked ----------------------------------------------
class _Proxy:
    """Stands, on the unpickler's stack and in its memo, for a real object whose BUILD must be checked first (one
    subclass per kind of object)."""

    __slots__ = ("obj", "built")
    kind = "?"
    __hash__ = None  # type: ignore[assignment]  # never a dict key or a set member

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.built = False

    def __setstate__(self, state: Any) -> None:
        if self.built:
            raise Refused("an object whose state is set twice")
        self.built = True
        _BUILDERS[self.kind](_SESSION[0], self, state)


class _DtypeProxy(_Proxy):
    # size: the itemsize, -1 when the dtype holds objects; key: what identifies its checked state (`_state_key`)
    __slots__ = ("used", "code", "size", "key")
    kind = "dtype"

    def __setstate__(self, state: Any) -> None:
        if self.built:
            raise Refused("an object whose state is set twice")
        self.built = True
        # `_build_dtype` inlined for a plain state (strings, integers, None: no fields, no sub-array, no metadata)
        # already checked for this type code in this process (`_GOOD_STATES`)
        # (the types of a plain state tested one by one: `_SIMPLE_STATE.issuperset(map(type, state))` made an
        # iterator per dtype; a plain state's names, sub-array and fields are None)
        if not self.used and type(state) is tuple and len(state) == 8 and state[2] is None and state[4] is None \
                and state[3] is None and type(state[0]) is int and type(state[1]) is str and \
                type(state[5]) is int and type(state[6]) is int and type(state[7]) is int:
            key = (self.code, state)
            if key in _GOOD_STATES:
                self.key = key
                d = self.obj
                d.__setstate__(state)
                self.size = -1 if d.hasobject else d.itemsize
                return
        _build_dtype(_SESSION[0], self, state)


class _ArrayProxy(_Proxy):
    __slots__ = ()
    kind = "array"

    def __setstate__(self, state: Any) -> None:
        if self.built:
            raise Refused("an object whose state is set twice")
        self.built = True
        # The common state, with the table's rule for it (`World.check_array_state`) inlined: (version, shape, a
        # validated dtype without objects, order flag, exactly shape x itemsize bytes). Anything else: the table.
        if type(state) is tuple and len(state) == 5:
            version, shape, dtype, fortran, raw = state
            if type(dtype) is _DtypeProxy and type(raw) is bytes and type(fortran) is bool and \
                    type(shape) is tuple and len(shape) <= 32:
                dtype.used = True
                n = dtype.size
                if n > 0:  # no objects (-1), and not a zero-size dtype (its item count is the table's to bound)
                    for k in shape:
                        if type(k) is not int or not 0 <= k < _SHAPE_MAX:
                            n = -1
                            break
                        n *= k
                    if n == len(raw) and n <= MAX_ARRAY_BYTES:
                        self.obj.__setstate__((version, shape, dtype.obj, fortran, raw))
                        return
        _build_array(_SESSION[0], self, state)


_PROXIES: dict[str, type] = {"dtype": _DtypeProxy, "array": _ArrayProxy}
for _kind in ("marray", "ext", "value", "bitgen", "pyobj", "scalar", "partial"):
    _PROXIES[_kind] = type(f"_{_kind.capitalize()}Proxy", (_Proxy,), {"__slots__": (), "kind": _kind})
_PROXY_TYPES = frozenset(_PROXIES.values())
_ScalarProxy = _PROXIES["scalar"]
_ExtProxy = _PROXIES["ext"]
_PyobjProxy = _PROXIES["pyobj"]


def _build_twice(state: Any) -> None:
    raise Refused("an object whose state is set twice")


def _hook(obj: Any, state: Any) -> None:
    """The instance-level `__setstate__` of a Python object built by the pass (removed after the load). The common
    state -- a dict of literal attribute names -- is checked and swapped here; anything else by `build_py`."""
    d = obj.__dict__
    d["__setstate__"] = _build_twice
    # the names literal strings and none of the refused ones, in two C-level passes; anything else: `build_py`,
    # which refuses the name with its reason
    if type(state) is not dict or not _STR.issuperset(map(type, state)) or not _NOT_ATTRIBUTES.isdisjoint(state):
        _SESSION[0].build_py(obj, d, state)
        return
    needs = _NEEDS[0]
    # proxies and stand-ins swapped: arrays, numbers and trees in this one loop (it changes no key, only values);
    # containers that hold something to swap after it (their swaps may reach this dict itself)
    rest = None
    for k, v in state.items():
        t = type(v)
        if t in needs:
            if t is _ArrayProxy or t is _ScalarProxy:
                state[k] = v.obj
            elif t is _ExtProxy and type(v.obj) in _EXT_RECORD:  # `Session.unproxy`, inlined (a tree_)
                real = state[k] = v.obj
                if _EXT_RECORD[type(real)] == "tree":
                    _SESSION[0].owners.append((real, obj))
            elif (t is list or t is tuple) and (needs.isdisjoint(map(type, v)) or _clean(v, needs)):
                pass  # nothing inside to swap (the common case: names, numbers, real objects)
            elif rest is None:
                rest = [k]
            else:
                rest.append(k)
    if rest is not None:
        s = _SESSION[0]
        for k in rest:
            v = state[k]
            t = type(v)
            if t is list:
                _swap_list(v, obj, s, 1)
            elif t is tuple:
                state[k] = _swap_tuple(v, obj, s, 1)
            else:
                state[k] = s.fix(v, obj, 1)
    _hooked, setstate, record = _PYINFO[type(obj)]
    if setstate is _sklearn_setstate and state.get("_sklearn_version", 0) == _SKLEARN[1]:
        del state["_sklearn_version"]  # `_sklearn_setstate`, inlined
        d.update(state)
    elif setstate is _predictor_setstate and type(state.get("nodes")) is _NDARRAY[0] and \
            state["nodes"].dtype is _SESSION[0].record_dtype and \
            _PREDICTOR[1]["PREDICTOR_RECORD_DTYPE"] is _SESSION[0].record_layout:
        # `_predictor_setstate`, inlined for a predictor whose nodes' dtype object it has already found to be
        # scikit-learn's record (in this pass): nothing to cast
        d.update(state)
    elif setstate is not None:
        setstate(obj, state)
    else:
        d.update(state)
    if record is not None:  # `Session.record`, inlined (it runs for every scikit-learn object)
        if record == "estimator":
            if not _RECORDED_ATTRIBUTES.isdisjoint(d):
                _SESSION[0].estimators.append(obj)
        elif record == "predictor":
            _SESSION[0].predictors.append(obj)
        else:
            _SESSION[0].sparse.append(obj)


_compress = _itertools.compress
_chain = _itertools.chain.from_iterable
_SEQS = frozenset({list, tuple})


def _clean(v: list | tuple, needs: frozenset) -> bool:
    """Whether a list or tuple holds nothing the pass swaps (no proxy, stand-in, dict or set) down to four levels of
    nested lists and tuples (a ColumnTransformer's `[(name, pipeline, [columns]), ...]`), looked at a level at a
    time with C-level passes rather than a call per nested container. False: `_swap_list`/`_swap_tuple` go in
    (what they miss is caught by the leftover check at the end of the pass anyway)."""
    for _ in range(4):
        found = needs.intersection(map(type, v))
        if not found:
            return True
        if not _SEQS.issuperset(found):
            return False
        v = list(_chain([x for x in v if type(x) is list or type(x) is tuple]))
    return False


def _hook_value(obj: Any, state: Any) -> None:
    """The instance-level `__setstate__` of a builtin container with a `__dict__` (OrderedDict, Counter)."""
    d = obj.__dict__
    d["__setstate__"] = _build_twice
    s = _SESSION[0]
    check_build_state(state)
    if type(state) is dict and "__setstate__" in state:
        raise HostileState("an object whose state sets __setstate__")
    _plain_state(s, state)
    s.apply_default(obj, d, s.fix(state, None, 0))


@functools.lru_cache(maxsize=4096)
def _py_info(cls: type) -> tuple[bool, Any, str | None]:
    """(hooked, the class's own __setstate__ function or None, what to record) for a Python class of the table.

    A class is built for real with an instance-level hook unless something would bypass or outrun the hook: a
    `__setstate__` that is not a plain function, a custom `__getattribute__`, or container methods the unpickler
    would call directly on the object (SETITEMS, APPENDS, ADDITEMS); such classes are built behind a proxy."""
    setstate = None
    for c in cls.__mro__:
        if "__setstate__" in vars(c):
            setstate = vars(c)["__setstate__"]
            break
    hooked = (setstate is None or type(setstate) is types.FunctionType) and \
        cls.__getattribute__ is object.__getattribute__ and \
        not any(hasattr(cls, m) for m in ("__setitem__", "append", "extend", "add"))
    record = None
    mod, name = cls.__module__ or "", cls.__name__
    if mod.startswith("scipy.sparse") and issubclass(cls, (_sparse().spmatrix, _sparse().sparray)):
        record = "sparse"
    elif name == "TreePredictor" and mod.startswith("sklearn."):
        record = "predictor"  # its owner (the estimator whose `_predictors` run it) is found at the end
    elif mod.startswith("sklearn."):
        record = "estimator"
    if hooked and setstate is not None and mod.startswith("sklearn."):
        if _plain_sklearn_setstate(cls, setstate):
            setstate = _sklearn_setstate
        elif record == "predictor" and cls.__mro__ == (cls, object) and vars(cls).get("__setstate__") is setstate \
                and "nodes" not in vars(cls) and _known_predictor_setstate(setstate):
            # scikit-learn's TreePredictor itself (not a subclass: its `super()` is `object`, and no class attribute
            # stands for `self.nodes`)
            _PREDICTOR[0] = setstate
            setstate = _predictor_setstate
    _PYINFO[cls] = (hooked, setstate, record)
    return hooked, setstate, record


#: scikit-learn's `BaseEstimator.__setstate__` and its version (set by `_plain_sklearn_setstate`).
_SKLEARN: list[Any] = [None, None]


def _plain_sklearn_setstate(cls: type, setstate: Any) -> bool:
    """Whether `cls` (a class of a `sklearn.` module) restores its state with `BaseEstimator.__setstate__` itself,
    with no `__setstate__` after BaseEstimator in its MRO (so that its `super().__setstate__` raises
    AttributeError and it ends in `__dict__.update`): then `_sklearn_setstate` does the same without raising."""
    base = sys.modules.get("sklearn.base")
    estimator = getattr(base, "BaseEstimator", None)
    if estimator is None or vars(estimator).get("__setstate__") is not setstate or hasattr(object, "__setstate__") \
            or type(getattr(base, "__version__", None)) is not str:
        return False
    mro = cls.__mro__
    if any("__setstate__" in vars(c) for c in mro[mro.index(estimator) + 1:]):
        return False
    _SKLEARN[:] = [setstate, base.__version__]
    return True


def _sklearn_setstate(obj: Any, state: Any) -> None:
    """`BaseEstimator.__setstate__` for a state of this scikit-learn version (the common case): the version popped
    and the rest set, as it does, without its `super().__setstate__` call that raises (an exception per object);
    any other state (another version: the InconsistentVersionWarning) goes to scikit-learn's own."""
    if type(state) is dict and state.get("_sklearn_version", 0) == _SKLEARN[1]:
        del state["_sklearn_version"]
        obj.__dict__.update(state)
    else:
        _SKLEARN[0](obj, state)


#: scikit-learn's `TreePredictor.__setstate__` as its source reads (HistGradientBoosting's predictors), compiled in a
#: class so that `super()` compiles as it does there: `_known_predictor_setstate` compares code objects with it.
_PREDICTOR_SOURCE = """
class TreePredictor:
    def __setstate__(self, state):
        try:
            super().__setstate__(state)
        except AttributeError:
            self.__dict__.update(state)

        # The dtype of feature_idx is np.intp which is platform dependent. Here, we
        # make sure that saving and loading on different bitness systems works without
        # errors. For instance, on a 64 bit Python runtime, np.intp = np.int64,
        # while on 32 bit np.intp = np.int32.
        if self.nodes.dtype != PREDICTOR_RECORD_DTYPE:
            self.nodes = self.nodes.astype(PREDICTOR_RECORD_DTYPE, casting="same_kind")
"""
#: [scikit-learn's TreePredictor.__setstate__, its module's globals] once `_known_predictor_setstate` said yes.
_PREDICTOR: list[Any] = [None, None]


def _code_key(code: types.CodeType) -> tuple:
    return (code.co_code, code.co_consts, code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
            code.co_argcount, code.co_kwonlyargcount, code.co_flags, code.co_exceptiontable)


def _known_predictor_setstate(setstate: Any) -> bool:
    """Whether `setstate` is scikit-learn's `TreePredictor.__setstate__` as `_PREDICTOR_SOURCE` spells it (the same
    code object, compiled by this interpreter, over a PREDICTOR_RECORD_DTYPE that is a numpy dtype): then
    `_predictor_setstate` does what it does. Any other version keeps its own."""
    import numpy as np

    if type(setstate) is not types.FunctionType:
        return False
    ns: dict[str, Any] = {}
    exec(compile(_PREDICTOR_SOURCE, setstate.__code__.co_filename, "exec", dont_inherit=True), ns)  # noqa: S102
    ref = ns["TreePredictor"].__setstate__.__code__
    record = setstate.__globals__.get("PREDICTOR_RECORD_DTYPE")
    # `object` without `__setstate__` (Python 3.11): its `super().__setstate__` raises AttributeError, always
    if _code_key(setstate.__code__) != _code_key(ref) or not isinstance(record, np.dtype) or \
            hasattr(object, "__setstate__"):
        return False
    _PREDICTOR[1] = setstate.__globals__  # its PREDICTOR_RECORD_DTYPE is read at each call, as it reads it
    return True


def _predictor_setstate(obj: Any, state: Any) -> None:
    """scikit-learn's `TreePredictor.__setstate__` (`_known_predictor_setstate`) for the common state, without the
    AttributeError its `super().__setstate__` raises for every predictor (`object` has no `__setstate__`) and with
    the layout comparison made once per dtype object of the file: the state set as it is when its `nodes` is an
    array of scikit-learn's record layout (then it casts nothing); anything else goes to scikit-learn's own."""
    if type(state) is dict:
        nodes = state.get("nodes")
        if type(nodes) is _NDARRAY[0]:
            dt, record = nodes.dtype, _PREDICTOR[1]["PREDICTOR_RECORD_DTYPE"]
            s = _SESSION[0]
            # `dt != record` is False: it would cast nothing (dtypes are not changed once an array uses them)
            if (dt is s.record_dtype and record is s.record_layout) or dt == record:
                s.record_dtype, s.record_layout = dt, record
                obj.__dict__.update(state)
                return
    _PREDICTOR[0](obj, state)


#: `_py_info` of the classes met so far, read by the BUILD hook without lru_cache's call.
_PYINFO: dict[type, tuple[bool, Any, str | None]] = {}


def _sparse() -> Any:
    import scipy.sparse  # imported already: the file named one of its classes

    return scipy.sparse


#: `_ext_record` of the extension classes met so far, read without lru_cache's call.
_EXT_RECORD: dict[type, str | None] = {}


@functools.lru_cache(maxsize=4096)
def _ext_record(cls: type) -> str | None:
    mod, name = cls.__module__ or "", cls.__name__
    if mod == "sklearn.tree._tree" and name == "Tree":
        return "tree"
    if mod.startswith("sklearn.neighbors._") and name.startswith(("KDTree", "BallTree")):
        return "binary"
    return None


@functools.lru_cache(maxsize=1)
def _leaves() -> frozenset[type]:
    return frozenset({str, int, float, bool, complex, type(None), bytes, bytearray, range})


@functools.lru_cache(maxsize=1024)
def _live_kind(t: type) -> str | None:
    """The kind of a real object met where the table expects plain data: a Python object of the table, or a numpy
    number (`_ScalarStandIn` gives real scalars)."""
    if role_of(t) == "py_class":
        return "obj"
    np = sys.modules.get("numpy")
    if np is not None and isinstance(t, type) and issubclass(t, np.generic) and t.__module__ == "numpy" and \
            np.dtype(t).kind in _NUMBER_KINDS:
        return "scalar"
    return None


_DICTS = (dict, collections.OrderedDict, collections.defaultdict, collections.Counter)
#: The roles of globals a file may keep as values (`table.py`; `object` as make_column_selector's dtype_include).
_VALUE_ROLES = frozenset({"value", "builtin", "stored", "object"})
_STR = frozenset({str})
#: Plain values as the table counts them (`table._PLAIN`).
_PLAIN_TYPES = frozenset({str, bytes, bytearray, int, float, bool, complex, type(None)})
#: The attributes that make an estimator's fitted internals worth validating (`internals._estimator`).
_RECORDED_ATTRIBUTES = frozenset({"support_vectors_", "categories_", "_fit_X", "_predictors"})
#: Attribute names a state may not set: numpy's array-protocol names, and the loader's own hook.
_NOT_ATTRIBUTES = ARRAY_PROTOCOL_ATTRIBUTES | {"__setstate__"}


class Session(World):
    """The table's view of one checked pass (real objects, stand-ins and proxies) and what it recorded."""

    def __init__(self, trust: tuple[str, ...]) -> None:
        self.trust = trust
        self.proxies: list[_Proxy] = []
        self.hooked: list[Any] = []
        self.standins: dict[type, int] = {}
        self.trees: list[Any] = []
        self.owners: list[tuple[Any, Any]] = []  # (tree, the estimator that holds it)
        self.predictors: list[Any] = []
        self.binary: list[Any] = []
        self.sparse: list[Any] = []
        self.estimators: list[Any] = []
        self.bunches: list[Any] = []  # the scikit-learn Bunches built, as LoadingBunch (`bunch.finish`)
        self.seen: set[int] = set()
        self.tuples: dict[int, tuple[tuple, tuple]] = {}
        self.incomplete = False  # a container nested too deeply to swap in place: the fallback walk does it
        self.walking = False  # the fallback: also swap inside every object's __dict__ and object arrays
        self.leaves = _leaves()
        self.record_dtype: Any = None  # a dtype object of the file found equal to scikit-learn's predictor record
        self.record_layout: Any = None  # ... that record (`_predictor_setstate`)
        # items the swaps may still visit in Python (`_swap_list`, `_swap_tuple`): each was pushed by an opcode, so
        # `max_pickle_opcodes` bounds them (a list of 20 million empty lists took 25 s to visit)
        self.items_left = LIMITS.max_pickle_opcodes

    # -- the World interface ------------------------------------------------------------------------------------
    def role(self, x: Any) -> str | None:
        if type(x) is _Meta:
            return x._role
        return x._role if type(x) is _FunctionType and x in _FUNCTIONS else None

    def kind(self, x: Any) -> str | None:
        t = type(x)
        if t in _PROXY_TYPES:
            return "obj" if t is _PyobjProxy else x.kind
        if t is bytes or t is bytearray:
            return "bytes"
        if t is LoadingBunch:
            return "bunch"
        return _live_kind(t)

    def target(self, x: Any) -> Any:
        return x._target

    def dtype_info(self, x: Any) -> tuple[int, bool]:
        x.used = True
        d = x.obj
        return d.itemsize, d.hasobject

    def bytes_len(self, x: Any) -> int | None:
        return len(x) if type(x) is bytes or type(x) is bytearray else None

    def dtype_of(self, x: Any) -> Any:
        return x.obj

    def array_has_objects(self, x: Any) -> bool:
        return bool(x.obj.dtype.hasobject)

    # -- calls ------------------------------------------------------------------------------------------------
    def proxy(self, obj: Any, kind: str, code: Any = None) -> _Proxy:
        p = _PROXIES[kind](obj)
        if kind == "dtype":
            p.used, p.code, p.size, p.key = False, code, -1 if obj.hasobject else obj.itemsize, None
        self.proxies.append(p)
        return p

    def call(self, si: type, args: tuple) -> Any:
        role = si._role
        if role == "builtin" and _PLAIN_TYPES.issuperset(map(type, args)) and si._target not in _SIZED_BUILTINS:
            # slice(None, 3, None), complex(1.0, 2.0), ...: the table's rule for a builtin type over plain values
            # (`World.check_call`, `World.plain`) inlined; bytes/bytearray (a size would allocate) and defaultdict
            # (a factory) take the table's path
            obj = si._target(*args)
            if type(obj).__dictoffset__:
                obj.__dict__["__setstate__"] = types.MethodType(_hook_value, obj)
                self.hooked.append(obj)
            return obj
        if role == "ext_class":  # Tree(n_features, n_classes, n_outputs), losses: the table's rule (plain data)
            real = []
            for a in args:
                t = type(a)
                if t in _PLAIN_TYPES:
                    real.append(a)
                elif t is _ArrayProxy or t is _ScalarProxy or t is _DtypeProxy:
                    real.append(a.obj)
                else:
                    break
            else:
                p = _PROXIES["ext"](si._target(*real))
                self.proxies.append(p)
                return p
        kind = self.check_call(si, args)
        if role == "py_class":
            return self.new_py(si._target)
        if role == "reconstructor":
            if kind == "bunch":  # protocols 0-1: _reconstructor(Bunch, dict, items)
                b = LoadingBunch(args[2])
                self.bunches.append(b)
                return b
            return self.new_py(args[0]._target)
        if role == "bunch":
            b = _anew_dict(LoadingBunch)
            self.bunches.append(b)
            return b
        target = si._target
        args = self.unwrap(args)
        if role == "reconstruct" or role == "frombuffer":
            return self.proxy(target(*args), "array")
        if role == "encode":
            return target(*args)
        if role == "dtype":
            return self.proxy(target(*args), "dtype", args[0])
        if role == "scalar":
            return self.proxy(target(*args), "scalar")
        if role == "builtin" or role == "object":
            obj = target(*args)
            if hasattr(type(obj), "__dictoffset__") and type(obj).__dictoffset__:
                obj.__dict__["__setstate__"] = types.MethodType(_hook_value, obj)
                self.hooked.append(obj)
            return obj
        # ext_class, value, newobj, pyx_unpickle, mareconstruct, random_*: built behind a proxy
        return self.proxy(target(*args), kind)

    def new_py(self, cls: type) -> Any:
        obj = object.__new__(cls)
        if _py_info(cls)[0]:
            obj.__dict__["__setstate__"] = types.MethodType(_hook, obj)
            self.hooked.append(obj)
            return obj
        return self.proxy(obj, "pyobj")

    def unwrap(self, x: Any) -> Any:
        """Call arguments (plain data the table has checked) with proxies and stand-ins swapped for real objects."""
        t = type(x)
        if t in _PROXY_TYPES:
            return x.obj
        if t is _Meta:
            return x._target
        if t is tuple:
            if self.leaves.issuperset(map(type, x)):
                return x
            new = tuple([self.unwrap(v) for v in x])
            return x if all(a is b for a, b in zip(new, x)) else new
        if t is list:
            if not self.leaves.issuperset(map(type, x)):
                for i, v in enumerate(x):
                    u = self.unwrap(v)
                    if u is not v:
                        x[i] = u
            return x
        return x

    # -- states -------------------------------------------------------------------------------------------------
    def build_py(self, obj: Any, d: dict, state: Any) -> None:
        """BUILD of a Python object of the table: literal attribute names, no array-protocol attribute, proxies and
        stand-ins swapped, then the class's own `__setstate__` (or pickle's default)."""
        cls = type(obj)
        _hooked, setstate, record = _py_info(cls)
        if type(state) is tuple and len(state) == 2:
            inst, slots = state
        else:
            inst, slots = state, None
        for part in (inst, slots):
            if type(part) is dict:
                if not _STR.issuperset(map(type, part)):
                    raise HostileState("an object state whose attribute names are computed at load time")
                if not _NOT_ATTRIBUTES.isdisjoint(part):
                    bad = sorted(k for k in part if k in _NOT_ATTRIBUTES)
                    raise HostileState(f"an object whose state sets {', '.join(bad)} (an array that would point at "
                                   "memory of the file's choosing)")
                needs = _NEEDS[0]
                if not needs.isdisjoint(map(type, part.values())):
                    for k, v in part.items():
                        t = type(v)
                        if t is _ArrayProxy or t is _ScalarProxy:
                            part[k] = v.obj
                        elif t in needs:
                            part[k] = self.fix(v, obj, 1)
            elif part is not None and self.fix(part, obj, 0) is not part:
                raise Refused("an object state that is not a dict of attributes")
        if setstate is not None:
            setstate(obj, state if slots is None else (inst, slots))
        else:
            self.apply_default(obj, d, state)
        if record is not None:
            self.record(obj, d, record)

    def record(self, obj: Any, d: dict, record: str) -> None:
        """Keep a built object whose fitted internals are validated at the end."""
        if True:
            if record == "estimator":
                if not _RECORDED_ATTRIBUTES.isdisjoint(d):
                    self.estimators.append(obj)
            elif record == "predictor":
                self.predictors.append(obj)
            else:
                self.sparse.append(obj)

    @staticmethod
    def apply_default(obj: Any, d: dict | None, state: Any) -> None:
        """pickle's BUILD without a `__setstate__`: the dict part into `__dict__`, the slots part by setattr."""
        slots = None
        if type(state) is tuple and len(state) == 2:
            state, slots = state
        if state is not None:
            if type(state) is not dict:
                raise pickle.UnpicklingError("state is not a dictionary")
            if d is None:
                d = obj.__dict__
            d.update(state)
        if slots is not None:
            if type(slots) is not dict:
                raise pickle.UnpicklingError("slot state is not a dictionary")
            for k, v in slots.items():
                setattr(obj, k, v)

    # -- swapping proxies and stand-ins for real objects ------------------------------------------------------
    def value(self, si: type) -> Any:
        """A global kept as a value: its real object, when the table lets it be one."""
        if si._role in _VALUE_ROLES:
            return si._target
        obj = si._target
        raise HostileState(f"the {'class' if isinstance(obj, type) else 'callable'} {_name(obj)} kept as a value (only "
                       "data, numpy scalar types and reviewed pure functions may be)")

    def unproxy(self, p: _Proxy, holder: Any) -> Any:
        obj = p.obj
        if holder is not None and (p.kind == "ext" and _ext_record(type(obj)) == "tree"):
            self.owners.append((obj, holder))
        return obj

    def fix(self, x: Any, holder: Any, depth: int) -> Any:
        """`x` with proxies and stand-ins swapped for the real objects (lists and dicts in place, tuples and
        frozensets rebuilt). Objects are not entered: their own BUILD did their swaps."""
        t = type(x)
        if not self.walking:
            if t is list:
                _swap_list(x, holder, self, depth + 1)
                return x
            if t is tuple:
                return _swap_tuple(x, holder, self, depth + 1)
        fixer = _FIXERS.get(t)
        if fixer is not None:
            return fixer(self, x, holder, depth)
        if self.walking and t not in self.leaves:
            self.fix_object(x, depth + 1)
        return x

    def _fix_list(self, x: list, holder: Any, depth: int) -> list:
        self.fix_list(x, holder, depth + 1)
        return x

    def _fix_dict(self, x: dict, holder: Any, depth: int) -> dict:
        self.fix_dict(x, holder, depth + 1)
        return x

    def _fix_tuple(self, x: tuple, holder: Any, depth: int) -> tuple:
        return self.fix_tuple(x, holder, depth + 1)

    def _fix_other(self, x: Any, holder: Any, depth: int) -> Any:
        return self.fix_other(x, holder, depth + 1)

    def _deep(self, depth: int) -> bool:
        if depth > 48:
            if self.walking:
                if depth > 300:
                    raise Refused("objects nested more than 300 deep")
                return False
            self.incomplete = True
            return True
        return False

    def fix_object(self, x: Any, depth: int) -> None:
        """(The fallback walk) swap proxies and stand-ins in an object's `__dict__` or an object array's items."""
        import numpy as np

        if isinstance(x, dict):  # a Bunch (the pass's own swaps of its items go through `bunch.finish`)
            self.fix_dict(x, None, depth)
            return
        key = _ident(x)
        if key in self.seen:
            return
        self.seen.add(key)
        self._deep(depth)
        if type(x) is np.ndarray:
            if x.dtype.hasobject:
                for i, v in enumerate(list(x.flat)):
                    u = self.fix(v, None, depth)
                    if u is not v:
                        x.flat[i] = u
            return
        if getattr(type(x), "__dictoffset__", 0):
            d = object.__getattribute__(x, "__dict__")
            if type(d) is dict:
                self.fix_dict(d, x, depth)

    def fix_bunch(self, b: Any) -> None:
        """Swap the proxies and stand-ins among a Bunch's items (and keys) for the real objects."""
        self.fix_dict(b, None, 1)

    def walk_fix(self, root: Any) -> tuple[Any, bool]:
        """The fallback: swap proxies and stand-ins everywhere reachable from `root`; True if any is still
        referenced from somewhere the walk cannot reach."""
        self.walking = True
        self.seen, self.tuples, self.incomplete = set(), {}, False
        root = self.fix(root, None, 0)
        self.tuples = {}
        return root, self.leftovers()

    def _skip(self, types_: Any) -> bool:
        """Nothing among these types to swap (or, in the fallback walk, to enter)."""
        if self.walking:
            return self.leaves.issuperset(types_)
        return _NEEDS[0].isdisjoint(types_)

    def fix_list(self, x: list, holder: Any, depth: int) -> None:
        if self._skip(map(type, x)) or self._deep(depth):
            return
        key = _ident(x)
        if key in self.seen:
            return
        self.seen.add(key)
        fix = self.fix
        for i, v in enumerate(x):
            u = fix(v, holder, depth)
            if u is not v:
                x[i] = u

    def fix_dict(self, x: dict, holder: Any, depth: int) -> None:
        if self._skip(map(type, x.values())) and self._skip(map(type, x)):
            return
        if self._deep(depth):
            return
        key = _ident(x)
        if key in self.seen:
            return
        self.seen.add(key)
        if not self._skip(map(type, x)):  # keys: stand-ins (a global as a key) are swapped, order kept
            items = [(self.fix(k, holder, depth), v) for k, v in x.items()]
            if any(a is not b for (a, _), b in zip(items, x)):
                x.clear()
                x.update(items)
        fix, leaves = self.fix, self.leaves
        for k, v in x.items():
            if type(v) not in leaves:
                u = fix(v, holder, depth)
                if u is not v:
                    x[k] = u

    def fix_tuple(self, x: tuple, holder: Any, depth: int) -> tuple:
        if self._skip(map(type, x)) or self._deep(depth):
            return x
        got = self.tuples.get(_ident(x))
        if got is not None and got[0] is x:
            return got[1]
        new = tuple([self.fix(v, holder, depth) for v in x])
        if all(a is b for a, b in zip(new, x)):
            new = x
        self.tuples[_ident(x)] = (x, new)
        return new

    def fix_other(self, x: Any, holder: Any, depth: int) -> Any:
        if self._skip(map(type, x)) or self._deep(depth):
            return x
        items = [self.fix(v, holder, depth) for v in x]
        if all(a is b for a, b in zip(items, x)):
            return x
        if type(x) is frozenset:
            return frozenset(items)
        x.clear()
        x.update(items) if type(x) is set else x.extend(items)
        return x

    # -- after the stream is read -----------------------------------------------------------------------------
    def finish(self) -> bool:
        """Remove the BUILD hooks; True when a proxy or stand-in may still be left where the swaps did not reach
        (the caller then walks the whole graph)."""
        # dict.pop(obj.__dict__, "__setstate__", None) for every hooked object, as one C-level pass
        collections.deque(map(dict.pop, map(_DICT_OF, self.hooked), _itertools.repeat("__setstate__"),
                              _itertools.repeat(None)), maxlen=0)
        self.hooked = []
        self.tuples = {}  # it keeps the tuples as read (with their proxies) alive
        left = self.incomplete or _placed(self.proxies)
        if not left:
            for si in self.standins:
                if _rc(si) > self.standins[si]:
                    left = True
                    break
        return left

    def leftovers(self) -> bool:
        if _placed(self.proxies):
            return True
        for si in self.standins:
            if _rc(si) > self.standins[si]:
                return True
        return False


def _placed(proxies: list[_Proxy]) -> bool:
    """Whether any proxy is referenced from anywhere but the session's list (a placement the swaps missed): one
    C-level pass over the reference counts."""
    return bool(proxies) and max(map(_rc, proxies)) > _RC_LISTED


#: A proxy's reference count, as `_placed` reads it, when only the session's list holds it.
_RC_LISTED = max(map(_rc, [object()]))
_FIXERS: dict[type, Any] = {
    **{t: (lambda s, x, holder, depth: s.unproxy(x, holder)) for t in _PROXY_TYPES},
    _Meta: lambda s, x, holder, depth: s.value(x),
    types.FunctionType: lambda s, x, holder, depth: s.value(_FUNCTIONS[x]) if x in _FUNCTIONS else x,
    list: Session._fix_list, tuple: Session._fix_tuple, set: Session._fix_other, frozenset: Session._fix_other,
    collections.deque: Session._fix_other, **{t: Session._fix_dict for t in _DICTS},
}
_NDARRAY: list[Any] = [None, None]  # numpy.ndarray and its stand-in
#: The types `Session.fix` acts on.
_NEEDS: list[frozenset] = [frozenset(_FIXERS)]


def _swap_list(x: list, holder: Any, s: Session, depth: int) -> None:
    """`Session.fix_list` for the pass itself (not the fallback walk), written flat: this runs for every list held
    by every object."""
    needs = _NEEDS[0]
    if needs.isdisjoint(map(type, x)):
        return
    if depth > 48:
        s.incomplete = True
        return
    key = _ident(x)
    if key in s.seen:
        return
    s.seen.add(key)
    s.items_left -= len(x)
    if s.items_left < 0:
        raise opcode_limit_error(LIMITS.max_pickle_opcodes)
    for i, v in enumerate(x):
        t = type(v)
        if t in needs:
            if t is _ArrayProxy or t is _ScalarProxy:
                x[i] = v.obj
            elif (t is list or t is tuple) and needs.isdisjoint(map(type, v)):
                pass  # nothing inside to swap: no call
            elif t is list:
                _swap_list(v, holder, s, depth + 1)
            elif t is tuple:
                u = _swap_tuple(v, holder, s, depth + 1)
                if u is not v:
                    x[i] = u
            else:
                u = s.fix(v, holder, depth + 1)
                if u is not v:
                    x[i] = u


def _swap_tuple(x: tuple, holder: Any, s: Session, depth: int) -> tuple:
    """`Session.fix_tuple` for the pass itself, written flat. A rebuilt tuple is remembered, so that every holder
    of the tuple as read gets the same new one."""
    needs = _NEEDS[0]
    if needs.isdisjoint(map(type, x)):
        return x
    if depth > 48:
        s.incomplete = True
        return x
    if s.tuples:
        got = s.tuples.get(_ident(x))
        if got is not None and got[0] is x:
            return got[1]
    s.items_left -= len(x)  # a tuple is visited again wherever it is held (`max_pickle_opcodes` bounds that too)
    if s.items_left < 0:
        raise opcode_limit_error(LIMITS.max_pickle_opcodes)
    items = None
    for i, v in enumerate(x):
        t = type(v)
        if t in needs:
            if t is _ArrayProxy or t is _ScalarProxy:
                u = v.obj
            elif (t is list or t is tuple) and needs.isdisjoint(map(type, v)):
                continue  # nothing inside to swap: no call
            elif t is list:
                _swap_list(v, holder, s, depth + 1)
                continue
            elif t is tuple:
                u = _swap_tuple(v, holder, s, depth + 1)
            else:
                u = s.fix(v, holder, depth + 1)
            if u is not v:
                if items is None:
                    items = list(x)
                items[i] = u
    if items is None:
        return x
    new = tuple(items)
    s.tuples[_ident(x)] = (x, new)
    return new


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


# -- BUILD of proxied objects, by kind --------------------------------------------------------------------------
def _build_array(s: Session, p: _Proxy, state: Any) -> None:
    s.check_array_state(state)
    if len(state) == 5:
        version, shape, dtype, fortran, raw = state
        real = (version, shape, dtype.obj, fortran, raw if type(raw) is not list else _items(s, raw))
    else:
        shape, dtype, fortran, raw = state
        real = (shape, dtype.obj, fortran, raw if type(raw) is not list else _items(s, raw))
    p.obj.__setstate__(real)


def _items(s: Session, raw: list) -> list:
    """The items of an object array: proxies and (value) stand-ins swapped."""
    s.fix_list(raw, None, 0)
    return raw


_SIMPLE_STATE = frozenset({str, int, type(None)})
#: (type code, dtype state) pairs `check_state` accepted.
_GOOD_STATES: set[tuple] = set()


def _build_dtype(s: Session, p: _Proxy, state: Any) -> None:
    if p.used:
        raise Refused("a numpy dtype whose state is set after an array already uses it")

    def child(obj: Any) -> Any:
        if type(obj) is not _DtypeProxy:
            raise BadState("a structured numpy dtype with a field that is not a dtype")
        obj.used = True
        return obj.obj

    code = p.code
    # a state checked once per process for its type code: the same (code, state) always gets the same verdict
    key = _state_key(code, state)
    if key is None or key not in _GOOD_STATES:
        check_state(code_size(code), state, child, 0, code=code)
        if key is not None and len(_GOOD_STATES) < 4096:
            _GOOD_STATES.add(key)
    elif type(state[4]) is dict:  # what check_state's `child` does for each field: its dtype is now in use
        for entry in state[4].values():
            entry[0].used = True
    p.key = key
    if type(state) is tuple and len(state) >= 5 and (state[2] is not None or state[4] is not None):
        state = _real_dtype_state(state)
    d = p.obj
    d.__setstate__(state)
    p.size = -1 if d.hasobject else d.itemsize


def _state_key(code: str, state: Any) -> tuple | None:
    """What identifies a dtype's BUILD state for `_GOOD_STATES` (None when it is not kept): a plain state
    (strings, integers, None: no fields, no sub-array, no metadata) as it is; a structured one (no sub-array, no
    metadata) with each field's dtype replaced by that dtype's own key -- a field's dtype is fully determined by
    its code and its checked state, so the same key always gets the same verdict from `check_state`."""
    if type(state) is not tuple:
        return None
    if _SIMPLE_STATE.issuperset(map(type, state)):
        return (code, state)
    if len(state) != 8 or state[2] is not None or type(state[3]) is not tuple or type(state[4]) is not dict or \
            not _STR.issuperset(map(type, state[3])) or not _SIMPLE_STATE.issuperset(map(type, state[5:])) or \
            not _SIMPLE_STATE.issuperset(map(type, state[:2])):
        return None
    items = []
    for name, entry in state[4].items():
        if type(name) is not str or type(entry) is not tuple or not 2 <= len(entry) <= 3:
            return None
        child = entry[0]
        if type(child) is not _DtypeProxy or not _SIMPLE_STATE.issuperset(map(type, entry[1:])):
            return None
        child_key = child.key if child.built else (child.code, None)
        if child_key is None:
            return None
        items.append((name, child_key) + entry[1:])
    return (code, state[:2], state[3], tuple(items), state[5:])


def _real_dtype_state(state: tuple) -> tuple:
    """A structured or sub-array dtype's state with its member dtypes' proxies swapped for the dtypes."""
    subarray, fields = state[2], state[4]
    if subarray is not None:
        subarray = (subarray[0].obj,) + tuple(subarray[1:])
    if fields is not None:
        fields = {k: (v[0].obj,) + tuple(v[1:]) for k, v in fields.items()}
    return state[:2] + (subarray, state[3], fields) + state[5:]


def _build_marray(s: Session, p: _Proxy, state: Any) -> None:
    s.check_marray_state(state)
    version, shape, dtype, fortran, raw, mask, fill = state
    p.obj.__setstate__((version, shape, dtype.obj, fortran, raw if type(raw) is not list else _items(s, raw), mask,
                        s.unwrap(fill)))


#: `states.tuple_state_minimum` of each extension class met (a walk of its MRO's names: asked once per class).
_TUPLE_MINIMUM: dict[type, int | None] = {}


def _tuple_minimum(cls: type) -> int | None:
    got = _TUPLE_MINIMUM.get(cls, _MISSING)
    if got is _MISSING:
        got = _TUPLE_MINIMUM[cls] = tuple_state_minimum(cls)
    return got  # type: ignore[return-value]


_MISSING = object()


def _build_ext(s: Session, p: _Proxy, state: Any) -> None:
    obj = p.obj
    if type(state) is dict and _STR.issuperset(map(type, state)) and ARRAY_PROTOCOL_ATTRIBUTES.isdisjoint(state) \
            and _tuple_minimum(type(obj)) is None:
        # the common state (a Tree's): a dict of plain values, checked and swapped in one loop; anything else below
        for k, v in state.items():
            t = type(v)
            if t is _ArrayProxy or t is _ScalarProxy or t is _DtypeProxy:
                state[k] = v.obj
            elif t not in _PLAIN_TYPES:
                _plain_state(s, v, 1)
                state[k] = s.fix(v, None, 1)
        _apply_ext(s, p, obj, state)
        return
    check_tuple_state(type(obj), state)
    check_build_state(state)
    _plain_state(s, state)
    state = s.fix(state, None, 0)
    _apply_ext(s, p, obj, state)


def _apply_ext(s: Session, p: _Proxy, obj: Any, state: Any) -> None:
    setstate = getattr(type(obj), "__setstate__", None)
    if setstate is not None:
        obj.__setstate__(state)
    else:
        s.apply_default(obj, None, state)
    record = _EXT_RECORD.get(type(obj), _MISSING) if p.kind == "ext" else None
    if record is _MISSING:
        record = _EXT_RECORD[type(obj)] = _ext_record(type(obj))
    if record == "tree":
        s.trees.append(obj)
    elif record == "binary":
        s.binary.append(obj)


def _build_pyobj(s: Session, p: _Proxy, state: Any) -> None:
    obj = p.obj
    s.build_py(obj, obj.__dict__, state)


def _build_partial(s: Session, p: _Proxy, state: Any) -> None:
    """`functools.partial(f)`'s state, checked by the table (`World.check_partial_state`: the same function, no
    positional arguments, plain keywords), applied with the stand-ins and proxies in it swapped."""
    obj = p.obj
    s.check_partial_state(obj.func, state)
    kwds = state[2]
    obj.__setstate__((obj.func, (), None if kwds is None else {k: s.unwrap(v) for k, v in kwds.items()}, None))


def _build_none(s: Session, p: _Proxy, state: Any) -> None:
    raise Refused(f"a state given to a {p.kind}, which takes none")


_BUILDERS = {"array": _build_array, "dtype": _build_dtype, "marray": _build_marray, "ext": _build_ext,
             "value": _build_ext, "bitgen": _build_ext, "pyobj": _build_pyobj, "scalar": _build_none,
             "partial": _build_partial}


#: The stand-in of each allowed (module, name, trust) a file named: the allowlist's verdict and the stand-in are
#: worked out once per name (refused names are not kept: they are asked again, and refused again).
_FOUND: dict[tuple[str, str, tuple[str, ...]], type] = {}


# -- the unpickler ------------------------------------------------------------------------------------------------
class _Unpickler(pickle.Unpickler):
    """The C unpickler with `find_class` giving stand-ins, for the running pass (`_SESSION`, one at a time: `_LOCK`).
    No `__init__` of its own: the C one is called directly."""

    def find_class(self, module: str, name: str) -> Any:
        s = _SESSION[0]
        key = (module, name, s.trust)
        si = _FOUND.get(key)
        if si is None:
            if canonical(module, name) == JOBLIB_WRAPPER:
                raise NeedsJoblib
            verdict, obj = load_global(module, name, s.trust)
            if not verdict.allowed:
                raise Refusal(verdict)
            # a stand-in made for the first time may keep references to stand-ins this pass has counted already
            # (numpy's _reconstruct's to ndarray's): those are the library's, not the file's placements, so they
            # are added to the counts `leftovers` compares with (else the first such file of a process was refused)
            counted = s.standins
            before = [(k, _rc(k)) for k in counted]
            si = _entry(stand_in(obj))
            for k, n in before:
                grown = _rc(k) - n
                if grown > 0:
                    counted[k] += grown
            del before
            if len(_FOUND) < 4096:
                _FOUND[key] = si
        standins = s.standins
        if si not in standins:
            standins[si] = 0  # the key's own reference, counted by the next line
            standins[si] = _rc(si)
        return si


def load(file: IO[bytes], trust: tuple[str, ...] = ()) -> tuple[Any, Session, bool]:
    """Unpickle `file` in one checked pass. Returns (object, session, leftovers): with `leftovers` True the caller
    must walk the object (`internals.validate_loaded(..., fix=True)`) before using it."""
    if _NDARRAY[0] is None:
        import numpy as np
        from numpy._core.multiarray import _reconstruct

        _NDARRAY[:] = [np.ndarray, stand_in(np.ndarray)]
        _STD[0] = (_NDARRAY[1], _ZERO, _B)
        _RECONSTRUCT[0] = _reconstruct
    with _LOCK:
        saved = _SESSION[0], _APPEND[0], _HOOKED[0]
        s = _SESSION[0] = Session(trust)
        _APPEND[0], _HOOKED[0] = s.proxies.append, s.hooked.append
        try:
            u = _Unpickler(file)
            obj = u.load()
            del u
            obj = s.fix(obj, None, 0)
            # the Bunches once every item is final: proxies and stand-ins swapped, items checked, class given
            finish_bunches(s.bunches, s.fix_bunch)
            left = s.finish()
        finally:
            _SESSION[0], _APPEND[0], _HOOKED[0] = saved
    return obj, s, left
