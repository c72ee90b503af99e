"""Hostile variants of scikit-learn's Bunch (a dict whose items double as attributes), written by the tests.

Each builder returns the file's bytes. `plain_bunch` builds a real Bunch without `Bunch.__setattr__` (which writes
items) and without `Bunch.__init__`, so that any key, including special names, can be put in it.
"""
from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .payloads import Call

#: numpy turns an object with this attribute into an array over the memory at address 8 (a read of unmapped memory:
#: the interpreter dies of a signal).
INTERFACE = {"data": (8, False), "shape": (4,), "typestr": "<f8", "version": 3}


def plain_bunch(**items: Any) -> Any:
    from sklearn.utils import Bunch

    b = dict.__new__(Bunch)
    for k, v in items.items():
        dict.__setitem__(b, k, v)
    return b


def _bunch_cls(self: Any) -> type:
    from sklearn.utils import Bunch

    return Bunch


class BunchWithState:
    """Pickles as a Bunch (NEWOBJ, no arguments) with the given items and BUILD state."""

    __class__ = property(_bunch_cls)  # what pickle compares with the class it is told to call

    def __init__(self, items: dict, state: Any) -> None:
        self.items, self.state = items, state

    def __reduce__(self) -> tuple:
        import copyreg

        from sklearn.utils import Bunch

        return copyreg.__newobj__, (Bunch,), self.state, None, iter(self.items.items())


class BunchReconstructed:
    """Pickles as protocol 0-1 do: copyreg._reconstructor(Bunch, dict, items)."""

    def __init__(self, items: dict) -> None:
        self.items = items

    def __reduce__(self) -> tuple:
        import copyreg

        from sklearn.utils import Bunch

        return copyreg._reconstructor, (Bunch, dict, self.items)


class BunchCalled:
    """Pickles as NEWOBJ of Bunch with a positional argument."""

    __class__ = property(_bunch_cls)

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __reduce__(self) -> tuple:
        import copyreg

        from sklearn.utils import Bunch

        return copyreg.__newobj__, (Bunch, *self.args)


#: A Bunch whose BUILD runs twice (protocol 2: GLOBAL, NEWOBJ, BUILD {}, BUILD {'__array_interface__': 8}).
STATE_TWICE = (b"\x80\x02csklearn.utils._bunch\nBunch\n)\x81}b}X\x13\x00\x00\x00__array_interface__K\x08sb.")


def _cycle_filled_after_use() -> Any:
    """A Bunch placed in a StandardScaler's state before its items are added (the scaler is its first item, and
    holds it): the hostile key comes after the scaler's BUILD."""
    from sklearn.preprocessing import StandardScaler

    b = plain_bunch()
    s = StandardScaler()
    s.b = b
    dict.__setitem__(b, "scaler", s)
    dict.__setitem__(b, "__array_interface__", INTERFACE)
    return s


def _voting_with(bad_item: tuple[str, Any]) -> Any:
    """A fitted VotingClassifier whose `named_estimators_` Bunch also holds `bad_item`."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X = np.arange(40, dtype=float).reshape(20, 2)
    v = VotingClassifier([("lr", LogisticRegression()), ("dt", DecisionTreeClassifier(max_depth=2))]).fit(
        X, np.arange(20) % 2)
    dict.__setitem__(v.named_estimators_, *bad_item)
    return v


class _BunchSubclassRef:
    """Pickles as the global sklearn.utils._bunch.EvilBunch (a test puts a Bunch subclass there), called empty."""

    __class__ = property(lambda self: __import__("sklearn.utils._bunch").utils._bunch.EvilBunch)

    def __reduce__(self) -> tuple:
        import copyreg

        import sklearn.utils._bunch as m

        return copyreg.__newobj__, (m.EvilBunch,)


@dataclass(frozen=True)
class Hostile:
    id: str
    build: Callable[[], Any]  # the object to save
    expect: str  # in the refusal
    formats: tuple[str, ...] = ("pickle2", "pickle5", "joblib")


def _skops(obj: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(obj)


def _joblib(obj: Any) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def save(obj: Any, how: str) -> tuple[bytes, str]:
    if how == "pickle2":
        return pickle.dumps(obj, protocol=2), ".pkl"
    if how == "pickle1":
        return pickle.dumps(obj, protocol=1), ".pkl"
    if how == "pickle5":
        return pickle.dumps(obj, protocol=5), ".pkl"
    if how == "joblib":
        return _joblib(obj), ".joblib"
    if how == "skops":
        return _skops(obj), ".skops"
    raise ValueError(how)


def corpus() -> list[Hostile]:
    from sklearn.utils.validation import check_array

    # '__array_interface__' computed at load time: str(bytes, 'ascii'), a builtin called with plain data
    computed = Call(str, b"__array_interface__", "ascii")
    all_ = ("pickle1", "pickle2", "pickle5", "joblib", "skops")
    return [
        # DummyArray-like: the Bunch is an array over address 8 for the first np.asarray
        Hostile("array_interface_item", lambda: plain_bunch(__array_interface__=INTERFACE), "__array_interface__",
                all_),
        Hostile("array_struct_item", lambda: plain_bunch(__array_struct__=b"\x00" * 8), "__array_struct__", all_),
        Hostile("array_method_item", lambda: plain_bunch(__array__=np.mean), "__array__", all_),
        Hostile("deepcopy_item", lambda: plain_bunch(__deepcopy__=np.mean), "__deepcopy__", all_),
        Hostile("interface_key_computed_at_load",
                lambda: {"b": BunchWithState({computed: INTERFACE}, None)}, "__array_interface__",
                ("pickle2", "pickle5", "joblib")),
        Hostile("interface_in_voting", lambda: _voting_with(("__array_interface__", INTERFACE)),
                "__array_interface__", all_),
        Hostile("interface_in_nested_bunch", lambda: plain_bunch(inner=plain_bunch(__array_interface__=INTERFACE)),
                "__array_interface__", all_),
        Hostile("interface_added_after_use", _cycle_filled_after_use, "__array_interface__",
                ("pickle2", "pickle5", "joblib")),
        # callables answer for any method the class lacks: bunch.transform(X) would call them
        Hostile("callable_pure_function", lambda: plain_bunch(transform=np.mean), "callable", all_),
        Hostile("callable_in_voting", lambda: _voting_with(("predict", np.mean)), "callable", all_),
        Hostile("callable_type", lambda: plain_bunch(fit=np.float64), "callable", all_),
        Hostile("callable_builtin_type", lambda: plain_bunch(fit=dict), "callable", all_),
        Hostile("callable_partial",
                lambda: plain_bunch(transform=functools.partial(check_array, ensure_all_finite=False)),
                "callable", all_),
        # BUILD tricks (Bunch drops its state; the loader refuses any but a dict of literal names)
        Hostile("state_array_interface", lambda: BunchWithState({"a": 1}, {"__array_interface__": INTERFACE}),
                "__array_interface__"),
        Hostile("state_with_slots", lambda: BunchWithState({"a": 1}, ({}, {"__array_interface__": INTERFACE})),
                "not a dict"),
        Hostile("state_sets_setstate", lambda: BunchWithState({"a": 1}, {"__setstate__": 1}), "__setstate__"),
        Hostile("state_sets_class", lambda: BunchWithState({"a": 1}, {"__class__": 1}), "__class__"),
        Hostile("state_computed_name", lambda: BunchWithState({"a": 1}, {computed: INTERFACE}), "__array_interface__"),
        # other ways to build one
        Hostile("called_with_argument", lambda: BunchCalled({"__array_interface__": INTERFACE}), "arguments"),
        Hostile("reconstructor_interface", lambda: BunchReconstructed({"__array_interface__": INTERFACE}),
                "__array_interface__", ("pickle1", "pickle2", "pickle5")),
        Hostile("bunch_as_argument", lambda: Call(np.dtype, plain_bunch(a=1), False, True), "Bunch"),
        Hostile("bunch_class_as_value", lambda: {"cls": type(plain_bunch())}, "kept as a value"),
        Hostile("bunch_subclass", _BunchSubclassRef, "items double as attributes"),
    ]


