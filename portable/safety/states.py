"""Checks on pickled states that numpy and scikit-learn apply without validating them.

`numpy.dtype.__setstate__` (numpy 2.4) accepts a structured dtype whose field entries are not dtypes, or whose
offsets point past the item; the next operation on such a dtype reads wild memory and can crash the interpreter.
A pickle needs nothing but the allowlisted `numpy.dtype` to do this, so portable checks every dtype state before
numpy sees it: in the checked pass over the C unpickler (see `onepass.py`), and in joblib's unpickler's BUILD. The
same goes for the few scikit-learn Cython classes that index a state tuple without bounds checks.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

#: A unique key for a live object. Not `id()`: that is an audited event, and the guard's audit hook (a Python
#: function, installed for good once a file is loaded) would then run for every object a walk visits.
_ident = object.__hash__


_TYPE_CODE = re.compile(r"^[a-zA-Z?]\d{0,9}$")
_MAX_DEPTH = 32


class BadState(ValueError):
    """A pickled dtype state that numpy would accept but cannot use safely."""


class HostileState(BadState):
    """Content that is not data: a class or callable kept as a value, an attribute numpy or Python would take for
    the object's own (an array-protocol name, a hook), a Bunch whose items do that. Not a damaged file but one
    written to hand the reader a capability: the loaders report it as a refusal (UnsafePickleError), as they do
    a refused global, not as corruption."""


def code_size(code: Any) -> int:
    """The itemsize of a dtype's constructor code ('f8', 'V56', ...); BadState for anything else."""
    import numpy as np

    if not isinstance(code, str) or not _TYPE_CODE.match(code):
        raise BadState(f"a numpy dtype with the type code {code!r}")
    try:
        return np.dtype(code).itemsize
    except TypeError:
        raise BadState(f"a numpy dtype with the unknown type code {code!r}") from None


def check_state(size: int, state: Any, child_size: Callable[[Any], Any], depth: int = 0,
                code: str | None = None) -> Any:
    """Check one dtype's BUILD state against the dtype its constructor code and fields build honestly.

    `child_size(obj)` returns the (honest) numpy dtype of a nested dtype, or raises BadState when `obj` is not
    a dtype. Returns the honest dtype (or the itemsize when `code` is not known). The state's flags (object
    items, needs-init, ...), item size and alignment must be the honest dtype's: numpy applies them without
    checking, and an `O8` dtype made from a `u8` state reads raw bytes as object pointers.
    """
    import numpy as np

    if depth > _MAX_DEPTH:
        raise BadState("numpy dtypes nested too deeply")
    base = np.dtype(code) if code is not None else None
    if state is None:
        return base if base is not None else size
    if not isinstance(state, tuple) or len(state) not in (8, 9):
        raise BadState("a numpy dtype state that is not an 8- or 9-tuple")
    _version, byteorder, subarray, names, fields, elsize, alignment, flags = state[:8]
    if not isinstance(byteorder, str) or byteorder not in "<>|=" or len(byteorder) != 1 \
            or not all(type(v) is int for v in (elsize, alignment, flags, _version)):
        raise BadState("a numpy dtype state with mistyped entries")
    if elsize > 0:
        size = elsize
    honest = base
    if subarray is not None:
        if not (isinstance(subarray, tuple) and len(subarray) == 2 and isinstance(subarray[1], tuple)
                and all(type(n) is int and 0 <= n < (1 << 31) for n in subarray[1]) and len(subarray[1]) <= 32):
            raise BadState("a numpy sub-array dtype with a malformed (base, shape)")
        child = child_size(subarray[0])
        if isinstance(child, np.dtype):
            try:
                honest = np.dtype((child, subarray[1]))
            except (TypeError, ValueError) as exc:
                raise BadState(f"a numpy sub-array dtype numpy cannot build ({exc})") from None
    if (names is None) != (fields is None):
        raise BadState("a numpy dtype with names but no fields, or fields but no names")
    if names is not None:
        if not (isinstance(names, tuple) and all(isinstance(n, str) for n in names) and isinstance(fields, dict)
                and set(names) == set(fields) and len(set(names)) == len(names) and len(names) <= 4096):
            raise BadState("a structured numpy dtype whose names and fields disagree")
        formats, offsets, titles = [], [], []
        for name in names:
            entry = fields[name]
            if not (isinstance(entry, tuple) and len(entry) in (2, 3) and type(entry[1]) is int
                    and entry[1] >= 0 and (len(entry) == 2 or isinstance(entry[2], (str, type(None))))):
                raise BadState(f"a structured numpy dtype with a malformed field {name!r}")
            child = child_size(entry[0])
            child_bytes = child.itemsize if isinstance(child, np.dtype) else child
            if entry[1] + child_bytes > size:
                raise BadState(f"a structured numpy dtype whose field {name!r} lies outside its item")
            formats.append(child)
            offsets.append(entry[1])
            titles.append(entry[2] if len(entry) == 3 else None)
        if code is not None:
            spec: dict[str, Any] = {"names": list(names), "formats": formats, "offsets": offsets,
                                    "itemsize": size}
            if any(t is not None for t in titles):
                spec["titles"] = titles
            try:
                honest = np.dtype(spec, align=bool(flags & 0x80))
            except (TypeError, ValueError) as exc:
                raise BadState(f"a structured numpy dtype numpy cannot build ({exc})") from None
    if honest is None:
        return size
    if len(state) == 9 and honest.kind not in "mM" and state[8] is not None and not isinstance(state[8], dict):
        raise BadState("a numpy dtype state with metadata that is not a dict")
    if honest.kind in "mM" and not _datetime_metadata(state):  # numpy 2.4 then reads a unit that is not there
        raise BadState(f"a numpy {'datetime' if honest.kind == 'M' else 'timedelta'} dtype state without its "
                       "unit metadata (numpy writes (metadata, (unit, count, 1, 1)) as the ninth entry; without "
                       "it numpy's unpickling crashes the interpreter)")
    if flags != honest.flags or (elsize > 0 and elsize != honest.itemsize) or (
            alignment > 0 and alignment != honest.alignment):
        raise BadState(f"a numpy dtype whose state (flags {flags}, size {elsize}, alignment {alignment}) disagrees "
                       f"with its type code {code!r} (flags {honest.flags}, size {honest.itemsize}, alignment "
                       f"{honest.alignment}): numpy would read its raw bytes as something else, e.g. object "
                       "pointers")
    return honest


def _datetime_metadata(state: tuple) -> bool:
    """Whether a datetime64/timedelta64 dtype state carries the metadata numpy's `__setstate__` dereferences:
    a ninth entry `(dict or None, (unit, count, denominator, events))`; its values numpy checks itself."""
    if len(state) != 9 or type(state[8]) is not tuple or len(state[8]) != 2:
        return False
    meta, unit = state[8]
    return (meta is None or type(meta) is dict) and type(unit) is tuple and len(unit) == 4 and isinstance(
        unit[0], (str, bytes)) and all(type(v) is int for v in unit[1:])


def check_real_state(state: Any) -> None:
    """For joblib's (pure-Python) unpickler: check a state about to be applied to a real numpy.dtype."""
    import numpy as np

    def child_size(obj: Any) -> int:
        if not isinstance(obj, np.dtype):
            raise BadState("a structured numpy dtype with a field that is not a dtype")
        return obj.itemsize

    # the constructor code is not at hand here; the state's own elsize bounds the fields
    check_state(0, state, child_size)


#: scikit-learn Cython classes whose `__setstate__` indexes a state tuple with bounds checks compiled out
#: (scikit-learn 1.9 builds with boundscheck=False): a short tuple reads past its end. Minimum lengths, by the
#: name of a class in the MRO (scikit-learn's own `__getstate__` writes exactly these many entries).
_TUPLE_STATES = (("PyFuncDistance", 5), ("BinaryTree", 13), ("DistanceMetric", 3))


@functools.lru_cache(maxsize=1024)
def tuple_state_minimum(cls: Any) -> int | None:
    """How many entries the state tuple of a scikit-learn Cython class must have, or None if unchecked."""
    if not isinstance(cls, type) or not cls.__module__.startswith("sklearn."):
        return None
    names = [c.__name__ for c in cls.__mro__]
    for prefix, minimum in _TUPLE_STATES:
        if any(n.startswith(prefix) for n in names):
            return minimum
    return None


def check_tuple_state(cls: Any, state: Any) -> None:
    """Raise BadState (a corrupt state) when `state` is too short for `cls`'s unchecked `__setstate__`."""
    minimum = tuple_state_minimum(cls)
    if minimum is not None and not (isinstance(state, tuple) and len(state) >= minimum):
        got = f"{len(state)} entries" if isinstance(state, tuple) else f"a {type(state).__name__}"
        raise BadState(f"a {cls.__name__} state with {got} where scikit-learn reads {minimum} without "
                       "bounds checks")


#: Attributes numpy reads from an *instance* (not its type) to turn any object into an array. A pickle can put
#: them in any object's state (BUILD updates `__dict__`), e.g. `{"__array_interface__": {"data": (address, ...)}}`,
#: and the first `np.asarray` on that attribute then reads (or writes) the memory at an address of its choice.
ARRAY_PROTOCOL_ATTRIBUTES = frozenset({
    "__array_interface__", "__array_struct__", "__array__", "__array_function__", "__array_ufunc__",
    "__array_wrap__", "__array_finalize__", "__array_namespace__", "__dlpack__", "__dlpack_device__",
})
_MAX_OBJECTS = 5_000_000


def _check_built_dtype(dtype: Any, depth: int = 0) -> None:
    """A dtype that slipped past the BUILD checks (joblib reads object arrays with a nested unpickler)."""
    import numpy as np

    if depth > _MAX_DEPTH:
        raise BadState("numpy dtypes nested too deeply")
    fields = dtype.fields  # the stored dict itself: reading it does not touch the entries
    if fields:
        for name, entry in fields.items():
            if not (isinstance(entry, tuple) and len(entry) >= 2 and isinstance(entry[0], np.dtype)
                    and isinstance(entry[1], int) and 0 <= entry[1] <= dtype.itemsize - entry[0].itemsize):
                raise BadState(f"a structured numpy dtype whose field {name!r} is malformed")
            _check_built_dtype(entry[0], depth + 1)


def check_build_state(state: Any) -> None:
    """A BUILD state may set attributes: their names must be literal strings, and not numpy's array-protocol
    names (an instance attribute `__array_interface__` turns any object into an array over chosen memory)."""
    parts = state if type(state) is tuple and len(state) == 2 else (state,)
    for part in parts:
        if type(part) is dict:
            for key in part:
                if type(key) is not str:
                    raise HostileState("an object state whose attribute names are computed at load time")
                if key in ARRAY_PROTOCOL_ATTRIBUTES:
                    raise HostileState(f"an object whose state sets {key} (an array that would point at memory of "
                                   "the file's choosing)")


def _value_verdict(obj: Any, trust: tuple[str, ...]) -> str | None:
    """Why a class or function found as a *value* in a loaded object is not admitted (None when it is)."""
    from .allowlist import _trusted
    from .table import role_of

    if role_of(obj) in ("value", "builtin", "stored", "object"):  # `object` as a dtype selector's value
        return None
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"
    if trust and _trusted(name, trust):
        return None
    return f"the {'class' if isinstance(obj, type) else 'callable'} {name} kept as a value (only data, numpy " \
           "scalar types, numpy ufuncs and reviewed pure functions may be)"


def partial_verdict(obj: Any, trust: tuple[str, ...]) -> str | None:
    """Why a `functools.partial` found in a loaded object is not admitted (None when it is): the table's rule
    (`table.World.check_partial_state`) on the real object -- a ``partial_func`` bound with no positional
    arguments, no attributes, and keywords that are its parameters with plain values."""
    from .allowlist import _trusted
    from .table import _is_number_type, _keyword_names, role_of

    if trust and _trusted("functools.partial", trust):
        return None
    func = obj.func
    name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', getattr(func, '__name__', '?'))}"
    if role_of(func) != "partial_func":
        return f"a functools.partial of {name} (only scikit-learn's check_array with plain keywords is admitted)"
    if obj.args or getattr(obj, "__dict__", None):
        return f"a functools.partial of {name} with positional arguments or attributes"
    import numpy as np

    names = _keyword_names(func)
    for k, v in (obj.keywords or {}).items():
        if k not in names:
            return f"a functools.partial of {name} with the keyword {k!r}, which is not one of its parameters"
        for item in (v if type(v) in (list, tuple) else (v,)):
            if not (type(item) in (bool, int, float, str, type(None)) or _is_number_type(item)
                    or type(item) is np.dtype or isinstance(item, np.dtype)):
                return f"a functools.partial of {name} whose keyword {k!r} is not a plain value"
    return None


@functools.lru_cache(maxsize=1024)
def made_by_library(cls: type) -> bool:
    """Whether an instance of `cls` can only have been made by library code, not named by the file: a class
    with no role in the reconstructor table (scipy.interpolate's interp1d, which IsotonicRegression.__setstate__
    builds and which keeps one of its own methods as `_call`). The functions and classes such an object holds as
    attributes are the library's choice, not the file's (a file can only name globals that have a role), so the
    walks do not judge them as values the file kept."""
    from .table import role_of

    return isinstance(cls, type) and role_of(cls) is None


def _max_empty_items() -> int:
    from .table import MAX_EMPTY_ITEMS

    return MAX_EMPTY_ITEMS


def check_graph(root: Any, trust: tuple[str, ...] = ()) -> None:
    """Walk everything reachable from a loaded object; BadState if an instance carries an array-protocol
    attribute in its `__dict__` (no scikit-learn or numpy object does), a dtype is malformed, or a class or
    function other than the table's values is kept as a value."""
    import types

    import numpy as np

    functions = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, np.ufunc,
                 type(np.mean), types.BuiltinMethodType)

    leaves = _leaf_types()
    seen: set[int] = set()
    library: set[int] = set()  # functions and classes that are attributes of objects made by library code
    stack = [root]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        obj = pop()
        kind = type(obj)
        if kind in leaves or _ident(obj) in seen:
            continue
        seen.add(_ident(obj))
        if isinstance(obj, type) or isinstance(obj, functions):
            why = None if _ident(obj) in library else _value_verdict(obj, trust)
            if why is not None:
                raise HostileState(why)
            continue
        if kind is functools.partial:
            why = partial_verdict(obj, trust)
            if why is not None:
                raise HostileState(why)
            continue
        if kind is dict or isinstance(obj, dict):
            if kind is not dict:  # a Bunch: its items checked (`bunch.py`)
                from .bunch import dict_verdict

                why = dict_verdict(obj, trust)
                if why is not None:
                    raise HostileState(why)
            # a vocabulary of 100k words: one C-level pass over the types instead of 200k pushes and pops
            if not leaves.issuperset(map(type, obj.keys())):
                extend(obj.keys())
            if not leaves.issuperset(map(type, obj.values())):
                extend(obj.values())
        elif kind is list or kind is tuple or isinstance(obj, (list, tuple, set, frozenset)):
            if not leaves.issuperset(map(type, obj)):
                extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype.itemsize == 0 and obj.size > _max_empty_items():
                raise BadState(f"a numpy array of {obj.size} items of a zero-size dtype: it declares items the "
                               f"file does not hold (more than {_max_empty_items()})")
            push(obj.dtype)
            if obj.dtype.hasobject:
                extend(obj.ravel().tolist())
        elif isinstance(obj, np.dtype):
            _check_built_dtype(obj)
        else:
            attrs = getattr(obj, "__dict__", None)
            if type(attrs) is dict:
                if not ARRAY_PROTOCOL_ATTRIBUTES.isdisjoint(attrs):
                    bad = sorted(k for k in attrs if k in ARRAY_PROTOCOL_ATTRIBUTES)
                    raise HostileState(f"a {kind.__name__} whose state sets {', '.join(bad)} (an array that would "
                                   "point at memory of the file's choosing)")
                if made_by_library(kind):
                    library.update(_ident(v) for v in attrs.values() if isinstance(v, type) or isinstance(v, functions))
                extend(attrs.values())
        if len(seen) > _MAX_OBJECTS:
            raise BadState("more than five million objects")


@functools.lru_cache(maxsize=1)
def _leaf_types() -> frozenset[type]:
    """Values with nothing inside to check (numpy scalars included: their dtypes are builtin ones)."""
    import numpy as np

    numpy_scalars = {t for t in np.sctypeDict.values()
                     if isinstance(t, type) and not issubclass(t, (np.void, np.object_))}
    return frozenset({str, bytes, int, float, bool, complex, type(None), slice, range} | numpy_scalars)
