"""The reconstructor table: what a pickle's REDUCE, NEWOBJ and BUILD may do, with every argument validated.

An allowlisted *name* is not enough: a numpy ufunc reached through REDUCE over an object whose
`__array_interface__` holds an address reads and writes process memory, `np.matrix(...)` does the same, and a
dtype state whose flags disagree with its type code turns raw bytes into object pointers. So each global a file
imports gets a *role* (`role_of`), and a role says exactly what may be done with it:

=================  ====================================================================================
role               what the file may do with it
=================  ====================================================================================
``py_class``       a scikit-learn / scipy.sparse class written in Python: instantiated without running any
                   code (NEWOBJ with no arguments, or `copyreg._reconstructor(cls, object, None)`), then
                   BUILD with a dict of literal attribute names (no array-protocol names)
``ext_class``      a scikit-learn extension type (Cython): called with plain data (numbers, strings,
                   validated arrays) — `Tree(n_features, n_classes, n_outputs)`, loss objects
``dtype``          `numpy.dtype(code, align, copy)`: the code a plain type code; its BUILD state must
                   describe exactly the dtype the code and fields build honestly (flags, size, alignment),
                   once, before any array uses it
``reconstruct``    `numpy._core.multiarray._reconstruct(numpy.ndarray, shape, b'b')`, then a BUILD whose
                   raw bytes match shape x itemsize; object arrays hold a list of values
``scalar``         `numpy._core.multiarray.scalar(dtype, bytes)` with len(bytes) == itemsize
``frombuffer``     `numpy._core.numeric._frombuffer(bytes, dtype, shape, order)`, sizes matching, no objects
``encode``         `_codecs.encode(str, 'latin1')` (protocols 0-2 store bytes this way)
``reconstructor``  `copyreg._reconstructor(py_class, object, None)`
``newobj``         scikit-learn's `newObj(cls)` for its neighbour trees and distance metrics
``pyx_unpickle``   Cython's `__pyx_unpickle_X(X, checksum, state)` for the class X it was generated for
``random_*``       numpy.random's pickling helpers with a bit generator named from numpy's own table
``builtin``        builtin data types (set, frozenset, bytes, bytearray, complex, slice, OrderedDict, ...)
                   called with plain data
``partial``        `functools.partial(f)` of a ``partial_func`` only, then a BUILD (f, (), keywords, None)
                   whose keywords are parameters of f given plain values (bools, numbers, strings, None,
                   numpy scalar types, validated dtypes, lists of these)
``partial_func``   `sklearn.utils.validation.check_array`: only as the function of a ``partial``
``bunch``          `sklearn.utils._bunch.Bunch` itself: NEWOBJ or REDUCE with no arguments, or
                   `copyreg._reconstructor(Bunch, dict, a dict)`, then items (SETITEMS) and a BUILD of a dict
                   of literal names that Bunch drops; built as a plain dict and given its class once the stream
                   is read and its items are checked (no special `__name__` key, no callable value: `bunch.py`)
``stored``         numpy ufuncs (`FunctionTransformer(func=np.log1p)`, `TransformedTargetRegressor(func=np.log1p,
                   inverse_func=np.expm1)`) and `numpy.object_` (`make_column_selector(dtype_include=
                   np.object_)`): kept as values only, never called by the file (a ufunc called over an array-protocol object reads raw memory; scikit-learn calls them on
                   its own arrays at predict time)
``value``          numpy scalar types and builtin types used as values (`dtype=np.float64`), and the
                   reviewed pure functions scikit-learn keeps as parameters (`score_func=f_classif`):
                   they may be stored, never called by the file
=================  ====================================================================================

Anything else — ufuncs, `DummyArray`, `np.matrix`, `np.memmap`, any other callable — has no role and is refused
by name. The same table drives the loader's single checked pass through the C unpickler (`onepass.py`, over
stand-ins and proxies), joblib's pure-Python unpickler (over real objects), and so `portable audit`, which runs
the loader.
"""
from __future__ import annotations

import functools
import re
from typing import Any

#: A unique key for a live object. Not `id()`: that is an audited event, and the guard's audit hook (a Python
#: function, installed for good once a file is loaded) would then run for every object a walk visits.
_ident = object.__hash__


_TYPE_CODE = re.compile(r"^[a-zA-Z?]\d{0,9}$")
#: The largest array (in bytes) a pickle may declare: its bytes must be in the file anyway.
MAX_ARRAY_BYTES = 1 << 40
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


class Refused(ValueError):
    """The file asks the table for something it does not allow (a capability, or an argument out of type)."""


# -- roles of globals -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _numpy_roles() -> dict[int, str]:
    import numpy as np
    import numpy.ma as ma
    from numpy._core import multiarray, numeric
    from numpy.random import _pickle as rp

    roles: dict[int, Any] = {
        _ident(np.dtype): "dtype", _ident(np.ndarray): "ndarray", _ident(ma.MaskedArray): "masked",
        _ident(multiarray._reconstruct): "reconstruct", _ident(multiarray.scalar): "scalar",
        _ident(numeric._frombuffer): "frombuffer", _ident(ma.core._mareconstruct): "mareconstruct",
        _ident(getattr(rp, "__bit_generator_ctor")): "random_bitgen_ctor",
        _ident(getattr(rp, "__generator_ctor")): "random_ctor",
        _ident(getattr(rp, "__randomstate_ctor")): "random_ctor",
    }
    for name in _BIT_GENERATORS:
        roles[_ident(rp.BitGenerators[name])] = "bitgen_class"
    for t in set(np.sctypeDict.values()):
        if isinstance(t, type) and issubclass(t, np.generic) and t is not np.object_:
            roles[_ident(t)] = "value"
    # the abstract scalar types, kept as values by dtype selectors (make_column_selector(dtype_include=np.number),
    # select_dtypes); numpy refuses to make instances of them
    for t in (np.generic, np.number, np.integer, np.signedinteger, np.unsignedinteger, np.inexact, np.floating,
              np.complexfloating, np.flexible, np.character):
        roles[_ident(t)] = "value"
    # kept as values, never called: numpy's element-wise functions of one array (np.log1p, np.expm1: what
    # FunctionTransformer and TransformedTargetRegressor hold), and numpy's other scalar types (object_); the
    # ufuncs of two arrays (np.add) stay refused as values too
    for name in dir(np):
        obj = getattr(np, name, None)
        if (isinstance(obj, np.ufunc) and obj.nin == 1) or (isinstance(obj, type) and issubclass(obj, np.generic)
                                                            and _ident(obj) not in roles):
            roles.setdefault(_ident(obj), "stored")
    roles[_ident(np.random.RandomState)] = "value"
    roles[_ident(np.random.SeedSequence)] = "value"
    roles[_ident(np.random.Generator)] = "value"
    return roles


@functools.lru_cache(maxsize=1)
def _builtin_roles() -> dict[int, str]:
    import collections
    import copyreg
    import functools

    import _codecs

    roles = {_ident(copyreg._reconstructor): "reconstructor", _ident(_codecs.encode): "encode",
             _ident(functools.partial): "partial"}
    for t in (set, frozenset, bytes, bytearray, complex, slice, list, dict, tuple, collections.OrderedDict,
              collections.defaultdict, collections.Counter, collections.deque, int, float, str, bool):
        roles[_ident(t)] = "builtin"
    roles[_ident(object)] = "object"
    return roles


def type_name(x: Any) -> str:
    """The name of `x`'s type in a message: the class the file names, so a Bunch being read (`bunch.LoadingBunch`,
    the loader's own stand-in) is scikit-learn's Bunch."""
    t = type(x)
    if t.__module__ == "portable.safety.bunch":
        from .bunch import USER_NAME

        return USER_NAME
    return t.__name__


def role_of(obj: Any) -> str | None:
    """The role of a resolved global (see the module docstring), or None when it has none (refused); it depends
    on the object only, so it is worked out once per global (the object is kept with it, so its key stays its
    own)."""
    got = _ROLES.get(_ident(obj))
    if got is not None and got[0] is obj:
        return got[1]
    role = _role_of(obj)
    if len(_ROLES) < 65536:
        _ROLES[_ident(obj)] = (obj, role)
    return role


_ROLES: dict[int, tuple[Any, str | None]] = {}


def _role_of(obj: Any) -> str | None:
    role = _builtin_roles().get(_ident(obj)) or _numpy_roles().get(_ident(obj))
    if role is not None:
        return role
    from .allowlist import PARTIAL_FUNCTIONS, PURE_FUNCTIONS, _home_of, _is_listed

    if _is_listed(obj, PURE_FUNCTIONS):
        return "value"
    if _is_listed(obj, PARTIAL_FUNCTIONS):
        return "partial_func"
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        return None
    name = getattr(obj, "__name__", "")
    if isinstance(obj, type):
        from .allowlist import _judge_class
        from .bunch import is_bunch_class

        if is_bunch_class(obj):
            return "bunch"
        if not _judge_class(obj)[0]:
            return None
        home = _home_of(obj)
        if home not in ("sklearn", "scipy.sparse"):
            return None
        if _defines_array_protocol(obj):
            return None
        return "py_class" if _is_python_class(obj) else ("ext_class" if home == "sklearn" else None)
    if name == "newObj" and mod.startswith("sklearn."):
        return "newobj"
    if name.startswith("__pyx_unpickle_") and (mod.startswith("sklearn.") or mod.startswith("numpy.random.")):
        return "pyx_unpickle"
    return None


def _is_python_class(cls: type) -> bool:
    """A class whose instances are plain Python objects (a `__dict__`, `object.__new__`)."""
    return cls.__new__ is object.__new__ and bool(getattr(cls, "__dictoffset__", 0))


@functools.lru_cache(maxsize=4096)
def _defines_array_protocol(cls: type) -> bool:
    from .states import ARRAY_PROTOCOL_ATTRIBUTES

    return any(hasattr(cls, a) for a in ("__array_interface__", "__array_struct__")) or any(
        a in vars(c) for c in cls.__mro__ for a in ARRAY_PROTOCOL_ATTRIBUTES if c is not object)


# -- plain data --------------------------------------------------------------------------------------------------
_PLAIN = (str, bytes, bytearray, int, float, bool, complex, type(None))
_PLAIN_SET = frozenset(_PLAIN)


_SHAPE_MAX = 1 << 40
_PLAIN_KINDS = frozenset({"array", "bytes", "scalar", "dtype", "obj", "ext"})


def _shape(x: Any, what: str) -> tuple[int, ...]:
    if type(x) is not tuple or len(x) > 32:
        raise Refused(f"{what} with a shape that is not a tuple of non-negative integers")
    for n in x:
        if type(n) is not int or n < 0 or n >= _SHAPE_MAX:
            raise Refused(f"{what} with a shape that is not a tuple of non-negative integers")
    return x


def _zero_shape(x: Any) -> bool:
    """`(0,)`, the shape numpy writes for `_reconstruct` (the state brings the real one)."""
    return type(x) is tuple and len(x) == 1 and type(x[0]) is int and x[0] == 0


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


#: The most items an array of a zero-size dtype (`V0`, `S0`, `U0`, an empty structured dtype) may declare. Every
#: other array's items are bytes the file holds (shape x item size, checked), but these hold none: a 60-byte
#: state declared 2**78 of them, and numpy built it; scikit-learn and the converters then iterate or allocate
#: per item (`categories_` of 2**39 empty strings: `portable convert` ran for ever).
MAX_EMPTY_ITEMS = 1 << 16


def check_items(n: int, size: int, what: str) -> None:
    """Refuse an array of a zero-size dtype that declares more than `MAX_EMPTY_ITEMS` items."""
    if size == 0 and n > MAX_EMPTY_ITEMS:
        raise Refused(f"{what} of {n} items of a zero-size dtype: it declares items the file does not hold "
                      f"(more than {MAX_EMPTY_ITEMS})")


def check_dtype_code(code: Any) -> Any:
    if type(code) is str and code in _CODES:
        return _CODES[code]
    import numpy as np

    if not isinstance(code, str) or not _TYPE_CODE.match(code):
        raise Refused(f"numpy.dtype called with {type_name(code)} {str(code)[:40]!r}, not a plain type code")
    try:
        dt = np.dtype(code)
    except TypeError:
        raise Refused(f"numpy.dtype with the unknown type code {code!r}") from None
    if len(_CODES) < 4096:
        _CODES[code] = dt
    return dt


_CODES: dict[str, Any] = {}


class World:
    """How the validators see objects: stand-ins and proxies in the checked pass, real objects in joblib's unpickler.

    `role(x)` is the role of a global (None for a built object); `kind(x)` the kind of a built object
    ('dtype', 'array', 'bytes', 'obj', ...); `dtype_info(x)` (itemsize, hasobject) of a validated dtype;
    `bytes_len(x)` the length of a bytes-like value or None.
    """

    def role(self, x: Any) -> str | None:
        raise NotImplementedError

    def kind(self, x: Any) -> str | None:
        raise NotImplementedError

    def dtype_info(self, x: Any) -> tuple[int, bool]:
        raise NotImplementedError

    def bytes_len(self, x: Any) -> int | None:
        raise NotImplementedError

    def target(self, x: Any) -> Any:
        raise NotImplementedError

    # -- shared checks --------------------------------------------------------------------------------------
    def plain(self, x: Any, what: Any, depth: int = 0) -> None:
        """Plain data: numbers, strings, None, validated arrays, and tuples/lists of these. `what` names the
        receiver (a string, or the global whose call receives it; named only in a refusal)."""
        t = type(x)
        if t in _PLAIN:
            return
        if depth > 8:
            raise Refused(f"{self._receiver(what)} nests too deeply")
        if t is tuple or t is list:
            for item in x:
                if type(item) not in _PLAIN:
                    self.plain(item, what, depth + 1)
            return
        if self.role(x) is not None:
            raise Refused(f"{self._receiver(what)} receives the global {self.name(x)} as an argument: a pickle may "
                          "pass data, not classes or functions")
        kind = self.kind(x)
        if kind not in _PLAIN_KINDS:
            raise Refused(f"{self._receiver(what)} receives a {type_name(x) if kind in (None, 'bunch') else kind}, "
                          "not plain data")

    def _receiver(self, what: Any) -> str:
        return what if isinstance(what, str) else f"{self.name(what)}()"

    def name(self, x: Any) -> str:
        t = self.target(x)
        return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', getattr(t, '__name__', '?'))}"

    def dtype_arg(self, x: Any, what: str) -> tuple[int, bool]:
        if self.kind(x) != "dtype":
            raise Refused(f"{what} without a validated numpy dtype")
        return self.dtype_info(x)

    def raw_len(self, x: Any, what: str) -> int:
        n = self.bytes_len(x)
        if n is None:
            raise Refused(f"{what} whose data is not bytes")
        return n

    # -- calls -----------------------------------------------------------------------------------------------
    def check_call(self, func: Any, args: Any) -> str:
        """Validate REDUCE/NEWOBJ of `func` on `args`; returns the kind of object the call builds."""
        role = self.role(func)
        if role is None:
            raise Refused("a call of an object built inside the file (only listed reconstructors may be called)")
        if type(args) is not tuple:
            raise Refused(f"a call of {self.name(func)} with arguments that are not a tuple")
        # the hot paths first: these make up nearly every call in a model pickle
        if role == "encode":
            if len(args) != 2 or type(args[0]) is not str or args[1] not in ("latin1", "latin-1"):
                raise Refused("_codecs.encode with other than (str, 'latin1')")
            return "bytes"
        if role == "py_class":
            if args:
                raise Refused(f"{self.name(func)} called with arguments: a Python class may only be instantiated "
                              "empty and then given its state")
            return "obj"
        if role == "reconstruct":
            if len(args) != 3 or self.role(args[0]) != "ndarray":
                raise Refused("numpy's _reconstruct called for something other than numpy.ndarray (a subclass "
                              "such as numpy.matrix runs code over the data)")
            if not _zero_shape(args[1]):
                # numpy always writes (0,): the BUILD state brings the real shape and data. Any other shape would
                # make numpy allocate it here, before any size is checked against the file's bytes.
                raise Refused("numpy's _reconstruct with a shape other than (0,) (it would allocate that much "
                              "before the state is checked)")
            if self.bytes_len(args[2]) is None and type(args[2]) is not str:
                raise Refused("numpy's _reconstruct with a type that is not a byte string")
            return "array"
        if role == "frombuffer":
            if len(args) != 4 or args[3] not in ("C", "F", "A", "K"):
                raise Refused("numpy's _frombuffer with other than (buffer, dtype, shape, order)")
            size, hasobj = self.dtype_arg(args[1], "numpy's _frombuffer")
            if hasobj:
                raise Refused("numpy's _frombuffer over a dtype that holds objects (raw bytes as pointers)")
            check_items(_count(_shape(args[2], "_frombuffer")), size, "numpy's _frombuffer")
            n = _count(args[2]) * size
            if self.raw_len(args[0], "numpy's _frombuffer") != n:
                raise Refused(f"numpy's _frombuffer with {self.bytes_len(args[0])} bytes for {n}")
            return "array"
        if role == "trusted":
            return "trusted"
        if role == "dtype":
            if len(args) != 3 or type(args[1]) is not bool or args[2] is not True:
                raise Refused("numpy.dtype called with arguments other than (code, align, True): a dtype that is "
                              "not a fresh copy is shared by the whole process")
            check_dtype_code(args[0])
            return "dtype"
        if role in ("ext_class", "value", "builtin"):
            if role == "builtin" and self.target(func) in (bytes, bytearray) and (
                    len(args) > 1 or (args and self.bytes_len(args[0]) is None)):
                raise Refused(f"{self.name(func)}() with other than a byte string (a size would allocate memory)")
            if role == "builtin" and args and self.target(func).__name__ == "defaultdict":
                if not (args[0] is None or self.role(args[0]) in ("builtin", "value")):
                    raise Refused("a defaultdict whose factory is not a builtin type")
                args = args[1:]
            self.plain(args, func)
            return "ext" if role == "ext_class" else "value"
        if role == "wrapper_class":
            if args:
                raise Refused("joblib's array wrapper called with arguments")
            return "wrapper"
        if role == "object":
            if args:
                raise Refused("object() called with arguments")
            return "value"
        if role == "mareconstruct":
            if len(args) != 4 or self.role(args[0]) != "masked" or self.role(args[1]) != "ndarray":
                raise Refused("numpy.ma's _mareconstruct for a class other than MaskedArray over ndarray")
            if type(args[3]) is not str or args[3] != "b":
                raise Refused("numpy.ma's _mareconstruct with a type other than 'b' (the state brings the dtype)")
            if not _zero_shape(args[2]):
                raise Refused("numpy.ma's _mareconstruct with a shape other than (0,) (it would allocate that much "
                              "before the state is checked)")
            return "marray"
        if role == "scalar":
            if len(args) not in (1, 2):
                raise Refused("numpy's scalar() with other than (dtype, data)")
            size, hasobj = self.dtype_arg(args[0], "numpy's scalar()")
            if len(args) == 2:
                if hasobj:
                    self.plain(args[1], "numpy's object scalar")
                elif self.raw_len(args[1], "numpy's scalar()") != size:
                    raise Refused(f"numpy's scalar() with {self.bytes_len(args[1])} bytes for an item of {size}")
            return "scalar"
        if role == "bunch":
            if args:
                raise Refused("scikit-learn's Bunch called with arguments: it may only be built empty and then given "
                              "its items")
            return "bunch"
        if role == "stored":
            raise Refused(f"a call of {self.name(func)}, which a file may keep as a value but not call (a numpy "
                          "ufunc computes over any array-protocol object, raw process memory included)")
        if role == "reconstructor":
            if len(args) == 3 and self.role(args[0]) == "bunch":  # protocols 0-1: _reconstructor(Bunch, dict, items)
                if self.role(args[1]) != "builtin" or self.target(args[1]) is not dict or type(args[2]) is not dict:
                    raise Refused("copyreg._reconstructor of scikit-learn's Bunch other than (Bunch, dict, a dict)")
                return "bunch"
            if len(args) != 3 or self.role(args[0]) not in ("py_class", "wrapper_class") or self.role(args[1]) != "object" \
                    or args[2] is not None:
                raise Refused("copyreg._reconstructor other than (python class, object, None)")
            return "wrapper" if self.role(args[0]) == "wrapper_class" else "obj"
        if role == "newobj":
            if len(args) != 1 or self.role(args[0]) != "ext_class" or not _binary_tree_or_metric(
                    self.target(args[0])):
                raise Refused("scikit-learn's newObj for a class other than a neighbour tree or distance metric")
            return "ext"
        if role == "pyx_unpickle":
            helper = self.target(func).__name__.removeprefix("__pyx_unpickle_")
            cls = self.target(args[0]) if args and self.role(args[0]) is not None else None
            if len(args) != 3 or cls is None or getattr(cls, "__name__", None) != helper \
                    or cls.__module__ != self.target(func).__module__ or type(args[1]) is not int:
                raise Refused(f"Cython's unpickle helper {self.name(func)} for another class")
            self.plain(args[2], func)
            return "ext"
        if role == "random_bitgen_ctor":
            if len(args) > 1 or (args and not (args[0] in _BIT_GENERATORS or self.role(args[0]) == "bitgen_class")):
                raise Refused("numpy.random's bit generator helper for an unknown bit generator")
            return "bitgen"
        if role == "partial":
            if len(args) != 1 or self.role(args[0]) != "partial_func":
                raise Refused("functools.partial of something other than scikit-learn's check_array (a partial "
                              "is a callable of the file's making)")
            return "partial"
        if role == "random_ctor":
            if len(args) > 2 or (len(args) == 2 and self.role(args[1]) != "random_bitgen_ctor") or (
                    args and not (args[0] in _BIT_GENERATORS or self.kind(args[0]) == "bitgen")):
                raise Refused("numpy.random's generator helper with an unknown bit generator or constructor")
            return "value"
        raise Refused(f"{self.name(func)} ({role}) may not be called by a pickle")

    # -- BUILD -----------------------------------------------------------------------------------------------
    def check_partial_state(self, func: Any, state: Any) -> None:
        """The state of `functools.partial(func)` (`func` its real function, a ``partial_func``): (the same
        function, no positional arguments, keywords that are parameters of the function with plain values
        (`_keyword_value`), no attributes)."""
        if type(state) is not tuple or len(state) != 4:
            raise Refused("a functools.partial state that is not (function, args, keywords, attributes)")
        f, args, kwds, attrs = state
        if self.role(f) != "partial_func" or self.target(f) is not func:
            raise Refused("a functools.partial whose state names another function")
        if type(args) is not tuple or args:
            raise Refused("a functools.partial with positional arguments (only keyword arguments are admitted)")
        if not (attrs is None or (type(attrs) is dict and not attrs)):
            raise Refused("a functools.partial with attributes")
        if kwds is None:
            return
        if type(kwds) is not dict:
            raise Refused("a functools.partial whose keywords are not a dict")
        names = _keyword_names(func)
        for k, v in kwds.items():
            if type(k) is not str or k not in names:
                raise Refused(f"a functools.partial of {self.name(f)} with the keyword {str(k)[:40]!r}, which is "
                              "not one of its parameters")
            self._keyword_value(v, k, 0)

    def _keyword_value(self, v: Any, key: str, depth: int) -> None:
        """A keyword argument of an admitted partial: a bool, number, string or None, a numpy scalar type or a
        builtin number/string type (`dtype=np.float64`), a validated numpy dtype, or a list/tuple of these."""
        t = type(v)
        if t in (bool, int, float, str, type(None)):
            return
        if (t is list or t is tuple) and depth == 0:
            for item in v:
                self._keyword_value(item, key, 1)
            return
        role = self.role(v)
        if role is not None:
            if role in ("value", "builtin") and _is_number_type(self.target(v)):
                return
            raise Refused(f"a functools.partial whose keyword {key!r} is the global {self.name(v)} (only numpy "
                          "scalar types and builtin number/string types may be)")
        if self.kind(v) == "dtype":
            self.dtype_info(v)
            return
        raise Refused(f"a functools.partial whose keyword {key!r} is a {self.kind(v) or t.__name__}, not a plain "
                      "value")

    def check_array_state(self, state: Any) -> None:
        if type(state) is not tuple or len(state) not in (4, 5):
            raise Refused("a numpy array state that is not (version, shape, dtype, fortran, data)")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        n = _count(_shape(shape, "a numpy array"))
        size, hasobj = self.dtype_arg(dtype, "a numpy array")
        if type(fortran) is not bool:
            raise Refused("a numpy array state with a non-boolean order flag")
        if hasobj:
            if type(raw) is not list or len(raw) != n:
                raise Refused("a numpy object array whose items are not a list of its size")
            if not _PLAIN_SET.issuperset(map(type, raw)):  # strings and numbers (the common case): nothing to ask
                for item in raw:
                    if self.role(item) is not None and self.role(item) != "value":
                        raise Refused(f"a numpy object array holding the global {self.name(item)}")
            return
        if n * size > MAX_ARRAY_BYTES or self.raw_len(raw, "a numpy array") != n * size:
            raise Refused(f"a numpy array of {n} items of {size} bytes with {self.bytes_len(raw)} bytes of data")
        check_items(n, size, "a numpy array")

    def check_marray_state(self, state: Any) -> None:
        """numpy.ma's state: (version, shape, dtype, fortran, data, mask bytes, fill value), as
        `MaskedArray.__getstate__` writes it. The data as an array's (`check_array_state`: bytes of the right size,
        or a list of plain items for an object array); the mask one byte per item and field of the dtype (numpy.ma's
        mask dtype); the fill value plain data (a number, a string, None, a numpy scalar or a validated array)."""
        if type(state) is not tuple or len(state) != 7:
            raise Refused("a numpy masked array state that is not (version, shape, dtype, fortran, data, mask, fill)")
        version, shape, dtype, fortran, raw, mask, fill = state
        if type(version) is not int:
            raise Refused("a numpy masked array state whose version is not an integer")
        self.check_array_state((shape, dtype, fortran, raw))
        n = _count(shape) * _mask_itemsize(self.dtype_of(dtype))
        if self.bytes_len(mask) != n:
            raise Refused(f"a numpy masked array whose mask has {self.bytes_len(mask)} bytes for {n}")
        if self.kind(fill) == "array" and self.array_has_objects(fill):
            raise Refused("a numpy masked array whose fill value is an array of objects")
        self.plain(fill, "a masked array's fill value")

    def dtype_of(self, x: Any) -> Any:
        """The real numpy dtype of a validated dtype (a proxy's object in the checked pass)."""
        return x

    def array_has_objects(self, x: Any) -> bool:
        """Whether a built array (of kind 'array') holds objects."""
        return bool(x.dtype.hasobject)


@functools.lru_cache(maxsize=64)
def _keyword_names(func: Any) -> frozenset[str]:
    """The parameters of `func` that a keyword can set."""
    import inspect

    return frozenset(p.name for p in inspect.signature(func).parameters.values()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _is_number_type(t: Any) -> bool:
    """A numpy scalar type (np.float64, np.int32, np.str_, ...; not np.object_) or bool/int/float/complex/str."""
    if t in (bool, int, float, complex, str):
        return True
    import numpy as np

    return isinstance(t, type) and issubclass(t, np.generic) and not issubclass(t, (np.object_, np.void))


def _mask_itemsize(dtype: Any) -> int:
    """Bytes per item of numpy.ma's mask for `dtype` (one boolean per field, nested sub-arrays included)."""
    import numpy.ma as ma

    return ma.make_mask_descr(dtype).itemsize


@functools.lru_cache(maxsize=256)
def _binary_tree_or_metric(cls: Any) -> bool:
    return isinstance(cls, type) and any(c.__name__ in ("BinaryTree64", "BinaryTree32", "BinaryTree",
                                                        "DistanceMetric64", "DistanceMetric32", "DistanceMetric")
                                         for c in cls.__mro__)
