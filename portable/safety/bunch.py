"""scikit-learn's `Bunch` admitted as data (VotingClassifier/VotingRegressor/StackingClassifier/StackingRegressor
keep their fitted members in `named_estimators_`, a Bunch).

A Bunch is a dict whose items double as attributes (`Bunch.__getattr__` returns `self[name]`), which is what makes
it dangerous in a hostile file: an item `'__array_interface__': {'data': (address, False), ...}` turns the object
into an array over memory of the file's choosing for the first `np.asarray` that meets it (numpy looks the
protocol up on the instance, and the lookup falls through to the items), and an item that is a callable answers
for any method the class lacks (`hasattr(obj, 'transform')` then calls it).

So a file's Bunch is never built as a Bunch while the file is read. The loaders build a `LoadingBunch` instead -- a
plain dict subclass: no `__getattr__`, so its items are only items -- and fill it with items the unpickler built
through the reconstructor table like any other value. Once the stream is read (every item is then final), each
one is checked (`bunch_verdict`: no special `__name__` key, no callable value) and only then given scikit-learn's
class, in place (`finish`), so every reference the file made to it sees the Bunch. Its state (BUILD) is checked
and dropped, as `Bunch.__setstate__` itself drops it. Only `sklearn.utils._bunch.Bunch` itself is admitted (by
identity): a subclass, or any other dict whose items double as attributes, stays refused by the allowlist.
"""
from __future__ import annotations

import sys
from typing import Any

from .states import ARRAY_PROTOCOL_ATTRIBUTES
from .table import Refused

#: What the allowlist and `portable audit` say about `sklearn.utils._bunch.Bunch`.
BUNCH_REASON = ("scikit-learn's Bunch (built as a plain dict while the file is read; given its class only when no "
                "item has a special __name__ and none is callable)")
_BUILT = "__portable_bunch_state_set__"  # the marker of a LoadingBunch whose state was set (removed by `finish`)


def bunch_class() -> Any:
    """`sklearn.utils._bunch.Bunch` when scikit-learn is imported and its Bunch is the class reviewed here (a
    direct dict subclass with an instance `__dict__` and no slots, whose layout a `LoadingBunch` shares); else
    None."""
    mod = sys.modules.get("sklearn.utils._bunch")
    cls = getattr(mod, "Bunch", None) if mod is not None else None
    if not isinstance(cls, type) or cls.__mro__ != (cls, dict, object) or "__slots__" in vars(cls):
        return None
    return cls


def is_bunch_class(obj: Any) -> bool:
    """Whether `obj` is scikit-learn's Bunch class itself (not a subclass)."""
    cls = bunch_class()
    return cls is not None and obj is cls


class LoadingBunch(dict):
    """A file's Bunch while the file is read: a plain dict subclass (no `__getattr__`: its items are not
    attributes). `finish` checks its items and gives it scikit-learn's class."""

    def __setstate__(self, state: Any) -> None:
        # Bunch.__setstate__ drops the state (scikit-learn writes its `_deprecated_key_to_warnings`); a state is
        # checked all the same: a dict of literal attribute names, none of numpy's array-protocol names, once
        d = self.__dict__
        if _BUILT in d:
            raise Refused("an object whose state is set twice")
        check_bunch_state(state)
        d[_BUILT] = True


# What Python and the unpickler call a LoadingBunch in their own messages (a corrupt file that appends to it, calls
# it, uses it as a key...): the class the user's file names. Its module stays this one, so nothing that identifies
# classes by module takes it for scikit-learn's; `table.type_name` gives the full name in portable's messages.
LoadingBunch.__name__ = LoadingBunch.__qualname__ = "Bunch"
#: The name portable's own messages give a LoadingBunch's type.
USER_NAME = "sklearn.utils.Bunch"


def check_bunch_state(state: Any) -> None:
    """A Bunch's BUILD state: None or a dict of literal attribute names (no array-protocol name, no hook)."""
    if state is None:
        return
    if type(state) is not dict:
        raise Refused("a scikit-learn Bunch whose state is not a dict of attributes (scikit-learn writes a dict, "
                      "which Bunch ignores)")
    for key in state:
        if type(key) is not str:
            raise Refused("a scikit-learn Bunch state whose attribute names are computed at load time")
        if key in ARRAY_PROTOCOL_ATTRIBUTES or key == "__setstate__" or key == "__class__" or key == _BUILT:
            raise Refused(f"a scikit-learn Bunch whose state sets {key} (an array that would point at memory of "
                          "the file's choosing, or a hook)")


def _special(key: Any) -> bool:
    return type(key) is str and len(key) > 4 and key.startswith("__") and key.endswith("__")


def _name(obj: Any) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    got = getattr(obj, "__qualname__", None) if isinstance(obj, type) or callable(obj) else None
    mod = getattr(obj, "__module__", None) or t.__module__
    return f"{mod}.{got or t.__qualname__}"


def bunch_verdict(bunch: Any) -> str | None:
    """Why the items of a Bunch (or a LoadingBunch about to become one) are not admitted, or None.

    Its items double as attributes: a key spelled like a special name (`__array_interface__`, `__array__`,
    `__deepcopy__`, ...) would be found by numpy or Python as the object's own, and a callable value would answer
    for a method the class lacks. scikit-learn's Bunches hold estimators, arrays, numbers and strings under names
    that cannot contain '__' (estimator names are checked for it)."""
    for key, value in dict.items(bunch):
        if _special(key):
            return (f"a scikit-learn Bunch with the item {key[:60]!r}: its items double as attributes, so numpy or "
                    "Python would take it for one of the object's own special attributes (an '__array_interface__' "
                    "item makes numpy read memory at an address of the file's choosing)")
        if callable(value):
            return (f"a scikit-learn Bunch holding the callable {_name(value)} under {str(key)[:60]!r}: its items "
                    "double as attributes, so code asking the object for a method would call it")
    return None


def finish(bunches: list[Any], swap: Any = None) -> None:
    """Once the stream is read: for every LoadingBunch built, `swap(bunch)` (the checked pass swaps its proxies and
    stand-ins for the real objects), check its items (`bunch_verdict`) and give it scikit-learn's class. Refused
    for the first bunch that fails: none is a Bunch then."""
    if not bunches:
        return
    cls = bunch_class()
    if cls is None:
        raise Refused("a scikit-learn Bunch, but this scikit-learn's Bunch is not the class portable reviewed")
    for b in bunches:
        if type(b) is not LoadingBunch:
            raise Refused("a scikit-learn Bunch that changed class while the file was read")
        if swap is not None:
            swap(b)
        why = bunch_verdict(b)
        if why is not None:
            raise Refused(why)
    for b in bunches:
        b.__dict__.clear()  # as unpickling a Bunch leaves it: Bunch.__setstate__ drops the state
        b.__class__ = cls
    bunches.clear()


def dict_verdict(obj: Any, trust: tuple[str, ...] = ()) -> str | None:
    """For the walks of loaded objects (`internals._walk`, `states.check_graph`): why a dict subclass met is not
    admitted, or None. scikit-learn's Bunch with its items checked (`bunch_verdict`); any other dict whose items
    double as attributes (or a LoadingBunch left over) refused unless trusted; other dicts (OrderedDict, Counter,
    defaultdict) are plain containers."""
    t = type(obj)
    if is_bunch_class(t):
        return bunch_verdict(obj)
    if t is LoadingBunch:
        return "a scikit-learn Bunch left half-built by the loader"
    if "__getattr__" in {k for c in t.__mro__ for k in vars(c)} or "__getattribute__" in {
            k for c in t.__mro__[:-2] for k in vars(c)}:
        from .allowlist import _trusted

        name = f"{t.__module__}.{t.__qualname__}"
        if trust and _trusted(name, trust):
            return None
        return f"a {name}, a dict whose items double as attributes (numpy would read array-protocol items)"
    return None
