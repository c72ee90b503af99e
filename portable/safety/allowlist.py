"""The allowlist: which globals a pickle (or a skops file) may import, judged on what each name resolves to.

A global is allowed when the object its name resolves to is
  - a class defined in scikit-learn, numpy or scipy.sparse (not a metaclass, not a file-backed array, and with
    only such classes, builtins and abstract bases in its MRO), or a builtin container/number type;
  - one of the reconstructor functions that those libraries' pickles really call (numpy's `_reconstruct`,
    `scalar`, `_frombuffer`, the `numpy.random` constructors, `copyreg._reconstructor`, Cython's
    `__pyx_unpickle_*` helpers, scikit-learn's `newObj`, ...);
  - a numpy ufunc (pure arithmetic, used by `FunctionTransformer(func=np.log1p)`);
  - or named by the caller's `trust` (a fully qualified name or a package prefix).

Names are never judged by their spelling: `sklearn.base` + `os.system` walks through the module `os` and is
refused; `numpy.load` and `sklearn.datasets.fetch_openml` are functions, so they are refused. A module outside
the allowed packages is never imported just to judge a name (importing runs its code).
"""
from __future__ import annotations

import _compat_pickle
import functools
import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any

#: Packages whose classes make up fitted models (DESIGN §8).
CLASS_HOMES = ("sklearn", "numpy", "scipy.sparse")
#: Modules that may be imported to resolve a name (besides CLASS_HOMES).
_STDLIB_MODULES = ("builtins", "copyreg", "_codecs", "collections", "functools")
#: Module path segments never imported nor trusted by default: test suites, file and network I/O, entry points,
#: vendored third-party code.
DENIED_SEGMENTS = frozenset({
    "tests", "testing", "_testing", "conftest", "__main__", "f2py", "distutils", "_pyinstaller", "ctypeslib",
    "_build_utils", "datasets", "_npyio_impl", "npyio", "_datasource", "_iotools", "externals", "_mocking",
    "_format_impl", "format", "_show_versions",
})
#: Builtin and stdlib types that pickles of models use: plain data only (no `type`). `bytearray` is plain data
#: too (xgboost's pickles keep their booster in one), no more dangerous than `bytes`.
_SAFE_STDLIB_TYPES = {
    ("builtins", n) for n in ("object", "bool", "int", "float", "complex", "str", "bytes", "bytearray", "list",
                              "tuple", "dict", "set", "frozenset", "slice")
} | {("collections", n) for n in ("OrderedDict", "defaultdict", "Counter", "deque")}
#: Reconstructor functions, by their canonical location; a name is allowed when it resolves to one of these.
RECONSTRUCTORS = frozenset({
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),  # protocols 0-2 store bytes as _codecs.encode(str, 'latin1')
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.ma.core", "_mareconstruct"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("sklearn.neighbors._kd_tree", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    ("sklearn.metrics._dist_metrics", "newObj"),
})
#: Pure computations that fitted scikit-learn models keep as parameters (`SelectKBest(score_func=f_classif)`,
#: `FeatureAgglomeration(pooling_func=np.mean)`, KMeans' inner loops). Reviewed one by one: they compute on
#: their arguments and touch nothing else. Matched by identity like the reconstructors.
PURE_FUNCTIONS = frozenset({
    ("numpy", "mean"), ("numpy", "median"), ("numpy", "sum"), ("numpy", "max"), ("numpy", "min"),
    ("numpy", "std"), ("numpy", "var"), ("numpy", "amax"), ("numpy", "amin"),
    ("sklearn.feature_selection._univariate_selection", "f_classif"),
    ("sklearn.feature_selection._univariate_selection", "f_regression"),
    ("sklearn.feature_selection._univariate_selection", "r_regression"),
    ("sklearn.feature_selection._univariate_selection", "chi2"),
    ("sklearn.feature_selection._mutual_info", "mutual_info_classif"),
    ("sklearn.feature_selection._mutual_info", "mutual_info_regression"),
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"),
    ("sklearn.cluster._kmeans", "_kmeans_single_elkan"),
})
#: Functions scikit-learn binds with `functools.partial` inside fitted models, admitted only there: a partial of
#: one of these with plain keyword arguments (`table.World.check_partial_state`), never called by the file nor kept
#: as a value. HistGradientBoosting with `categorical_features` keeps `partial(check_array, dtype=[np.float64],
#: ensure_all_finite=False)` in its preprocessor's FunctionTransformer.
PARTIAL_FUNCTIONS = frozenset({
    ("sklearn.utils.validation", "check_array"),
})
#: Abstract bases and builtins that may appear in an allowed class's MRO.
_NEUTRAL_BASE_MODULES = frozenset({"builtins", "abc", "_abc", "enum", "typing", "collections", "collections.abc",
                                   "numbers", "dataclasses"})
#: Abstract bases outside the homes that allowed classes inherit from (checked by identity of the name).
_NEUTRAL_BASES = frozenset({("scipy._lib._sparse", "SparseABC")})


@dataclass(frozen=True)
class Verdict:
    """How one global was judged."""

    name: str          # module.name as the file spells it (Python 2 names mapped to Python 3)
    allowed: bool
    reason: str
    trusted: bool = False

    @property
    def trustable(self) -> bool:
        """False for names no `trust` can admit (a dotted walk through a module, an unresolvable name)."""
        return not self.allowed and not self.reason.startswith(_UNTRUSTABLE)


def canonical(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names (`__builtin__`, `copy_reg`) as the unpickler does for protocols 0-2."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _under(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


def _trusted(full: str, trust: tuple[str, ...]) -> bool:
    return any(_under(full, t) for t in trust if t)


def _importable_by_default(module: str) -> bool:
    if module in _STDLIB_MODULES:
        return True
    if not any(_under(module, home) for home in CLASS_HOMES):
        return False
    return not (set(module.split(".")) & DENIED_SEGMENTS)


_UNTRUSTABLE = ("the name walks through", "empty module", "'")


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def resolve(module: str, name: str, trust: tuple[str, ...] = ()) -> Any:
    """Import `module` (only when allowed or trusted) and walk `name` through its attributes.

    Raises _Refused when the module may not be imported, does not exist, or the walk passes through a module.
    """
    full = f"{module}.{name}"
    if not (_importable_by_default(module) or _trusted(full, trust) or _trusted(module, trust)):
        raise _Refused(f"module {module} is outside the allowlist (not imported)")
    if not module or not name:
        raise _Refused("empty module or name")
    from .guard import paused

    # The module is allowlisted or trusted: its import-time code and its module __getattr__ (lazy loading)
    # are the library's, not the file's, so they run with the side-effect guard paused.
    with paused():
        try:
            obj: Any = sys.modules.get(module) or importlib.import_module(module)
        except Exception as exc:  # ImportError, or anything the module's own code raised
            raise _Refused(f"module {module} cannot be imported ({type(exc).__name__})") from None
        for part in name.split("."):
            if not part or part == "<locals>":
                raise _Refused(f"'{name}' is not an attribute path")
            try:
                obj = getattr(obj, part)
            except Exception:
                raise _Refused(f"{module} has no attribute {name}") from None
            if isinstance(obj, types.ModuleType):
                raise _Refused(f"the name walks through the module {obj.__name__}")
    return obj


def _home_of(obj: Any) -> str | None:
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        return None
    for home in CLASS_HOMES:
        if _under(mod, home):
            return None if set(mod.split(".")) & DENIED_SEGMENTS else home
    return None


def _judge_class(cls: type) -> tuple[bool, str]:
    if issubclass(cls, type):
        return False, "a metaclass"
    key = (cls.__module__, cls.__qualname__)
    if key in _SAFE_STDLIB_TYPES:
        return True, "a builtin data type"
    home = _home_of(cls)
    if home is None:
        return False, f"a class defined in {cls.__module__}, outside {', '.join(CLASS_HOMES)}"
    import numpy as np

    if issubclass(cls, np.memmap):
        return False, "a file-backed array class (opens files)"
    if issubclass(cls, dict) and "__getattr__" in {k for c in cls.__mro__ for k in vars(c)}:
        from .bunch import BUNCH_REASON, is_bunch_class

        # scikit-learn's Bunch itself is admitted as data: the loaders build it as a plain dict and give it its
        # class only once its items are checked (`bunch.py`). Any other dict whose items double as attributes (a
        # Bunch subclass included) is refused: a stored '__array_interface__' item would make numpy read memory
        # at an address of the file's choosing
        if is_bunch_class(cls):
            return True, BUNCH_REASON
        return False, "a dict whose items double as attributes (numpy would read array-protocol items)"
    for base in cls.__mro__[1:]:
        if (base.__module__ not in _NEUTRAL_BASE_MODULES and _home_of(base) is None
                and (base.__module__, base.__qualname__) not in _NEUTRAL_BASES):
            return False, f"a class that inherits from {base.__module__}.{base.__qualname__}"
    return True, f"a class defined in {home}"


def _is_listed(obj: Any, listed: frozenset[tuple[str, str]]) -> bool:
    """`obj` is the very object found at one of the `listed` canonical (module, name) locations."""
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", getattr(obj, "__name__", None))
    if not isinstance(mod, str) or not isinstance(qual, str) or (mod, qual) not in listed:
        return False
    home = sys.modules.get(mod)
    return home is not None and getattr(home, qual, None) is obj


def _is_reconstructor(obj: Any) -> bool:
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", getattr(obj, "__name__", None))
    if not isinstance(mod, str) or not isinstance(qual, str):
        return False
    if (mod, qual) in RECONSTRUCTORS:
        home = sys.modules.get(mod)
        return home is not None and getattr(home, qual, None) is obj
    # Cython's generated unpickle helpers: they rebuild an instance of a class the stream names (itself judged)
    name = getattr(obj, "__name__", "")
    if name.startswith("__pyx_unpickle_") and _home_of(obj) is not None and "." not in qual:
        home = sys.modules.get(mod)
        return home is not None and getattr(home, name, None) is obj
    return False


_ROLE_REASONS = {
    "py_class": "a model class (instantiated empty, then given a checked state)",
    "ext_class": "a scikit-learn extension type (called with plain data only)",
    "dtype": "numpy.dtype (type code and state checked against each other)",
    "ndarray": "numpy.ndarray (rebuilt only through _reconstruct)",
    "masked": "numpy.ma.MaskedArray (rebuilt only through _mareconstruct)",
    "reconstruct": "numpy's array reconstructor (sizes checked)",
    "mareconstruct": "numpy.ma's masked array reconstructor (sizes checked)",
    "scalar": "numpy's scalar reconstructor (sizes checked)",
    "frombuffer": "numpy's array-from-bytes reconstructor (sizes checked)",
    "encode": "_codecs.encode(str, 'latin1'): bytes in protocols 0-2",
    "reconstructor": "copyreg._reconstructor(class, object, None)",
    "newobj": "scikit-learn's newObj for neighbour trees and distance metrics",
    "pyx_unpickle": "a Cython unpickle helper (for its own class only)",
    "random_bitgen_ctor": "numpy.random's bit generator helper (numpy's own generators only)",
    "random_ctor": "numpy.random's generator helper (numpy's own generators only)",
    "bitgen_class": "a numpy.random bit generator class",
    "builtin": "a builtin data type (called with plain data only)",
    "object": "builtins.object (as copyreg's base)",
    "value": "a type or reviewed pure function kept as a parameter value; never called by the file",
    "stored": "a numpy ufunc (or numpy.object_), kept as a parameter value only: the loader refuses any call of "
              "it by the file",
    "partial": "functools.partial, only of scikit-learn's check_array with plain keyword arguments",
    "partial_func": "a scikit-learn function admitted only inside functools.partial with plain keyword arguments; "
                    "never called by the file nor kept as a value",
}


def judge_object(obj: Any) -> tuple[bool, str]:
    """Whether a resolved object has a role in the reconstructor table (`table.py`), and why (or why not)."""
    from .table import role_of

    role = role_of(obj)
    if role is not None:
        if role == "bunch":
            from .bunch import BUNCH_REASON

            return True, BUNCH_REASON
        return True, _ROLE_REASONS.get(role, role)
    if isinstance(obj, type):
        ok, reason = _judge_class(obj)
        if not ok:
            return False, reason
        if _home_of(obj) == "numpy":
            return False, ("a numpy class outside the reconstructor table: classes such as DummyArray, matrix or "
                           "memmap run code over raw memory or files")
        return False, "a class that defines numpy's array protocol (it could point numpy at raw memory)"
    import numpy as np

    if isinstance(obj, np.ufunc):
        return False, ("a numpy ufunc: a pickle that calls it computes over any array-protocol object, raw process "
                       "memory included")
    if isinstance(obj, types.ModuleType):
        return False, "a module object"
    if isinstance(obj, types.BuiltinFunctionType) and getattr(obj, "__module__", None) == "builtins":
        return False, "a builtin function: it can run code or reach any object"
    if callable(obj):
        where = getattr(obj, "__module__", None) or type(obj).__module__
        return False, f"a function in {where}, not a model class: functions can touch files and the network"
    return False, f"a {type(obj).__name__} object, not a class"


@functools.lru_cache(maxsize=4096)
def load_global(module: str, name: str, trust: tuple[str, ...] = ()) -> tuple[Verdict, Any]:
    """Judge the global `module.name` (as spelled in the file) and return the object when it is allowed.

    Returns (verdict, object or None); cached per name and trust, so a file naming a class a thousand times
    resolves it once.
    """
    module, name = canonical(module, name)
    full = f"{module}.{name}"
    try:
        obj = resolve(module, name, trust)
    except _Refused as exc:
        return Verdict(full, False, exc.reason), None
    if _trusted(full, trust):
        return Verdict(full, True, "trusted by the caller", trusted=True), obj
    ok, reason = judge_object(obj)
    return Verdict(full, ok, reason), (obj if ok else None)


def judge(module: str, name: str, trust: tuple[str, ...] = ()) -> Verdict:
    """How the global `module.name` is judged (see `load_global`)."""
    return load_global(module, name, trust)[0]


def trust_tuple(trust: Any) -> tuple[str, ...]:
    """Normalise a `trust` argument (a string or an iterable of strings) to a sorted tuple."""
    if isinstance(trust, str):
        trust = (trust,)
    return tuple(sorted({str(t).strip() for t in trust if str(t).strip()}))
