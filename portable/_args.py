"""Argument checks for the public functions: a wrong argument is a PortableError that names it, never a raw
TypeError or ValueError from deep inside numpy or a converter."""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import PortableError
from .limits import check_size


def _bad(name: str, want: str, value: Any) -> PortableError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return PortableError(f"{name} must be {want}, not {shown} ({type(value).__name__})")


def integer(name: str, value: Any, *, minimum: int | None = None) -> int:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise _bad(name, "a whole number", value)
    value = int(value)
    if minimum is not None and value < minimum:
        raise PortableError(f"{name} must be at least {minimum}, not {value}")
    return value


def samples(value: Any, name: str = "samples") -> int:
    n = integer(name, value, minimum=1)
    check_size(n, "max_samples", name)
    return n


def seed(value: Any, name: str = "seed") -> Any:
    """A non-negative whole number (numpy's seeds), or a numpy SeedSequence/Generator passed through."""
    if type(value) is not int and type(value).__name__ in ("SeedSequence", "Generator") and \
            type(value).__module__.startswith("numpy"):
        return value
    return integer(name, value, minimum=0)


def tolerance(name: str, value: Any) -> float | None:
    """None (the checker chooses), or a finite number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(name, "a number >= 0 (or None)", value)
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise PortableError(f"{name} must be a finite number >= 0, not {value}")
    return value


def trust(value: Any, name: str = "trust") -> tuple[str, ...]:
    """An iterable of names (a single string is one name)."""
    if value is None or (type(value) is tuple and not value):
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping)):
        raise _bad(name, "a list of global names or package prefixes (strings)", value)
    out = tuple(value)
    for item in out:
        if not isinstance(item, str) or not item:
            raise _bad(f"each entry of {name}", "a non-empty string", item)
    return out


def choice(name: str, value: Any, choices: Iterable[str]) -> str:
    allowed = tuple(choices)
    if not isinstance(value, str) or value not in allowed:
        raise PortableError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def text(name: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise _bad(name, "a non-empty string", value)
    return value


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, int)) or isinstance(value, int) and value not in (0, 1):
        raise _bad(name, "True or False", value)
    return bool(value)


def data(value: Any, name: str = "data") -> Any:
    """None, an array-like of numbers/strings, a DataFrame or a {name: array} mapping; a path is read as
    `--data` would (.npy, .csv, .parquet)."""
    import os

    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        from ._io import read_data

        return read_data(value)
    import numpy as np

    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise _bad(f"the keys of {name}", "input names (strings)", k)
            _array(f"{name}[{k!r}]", v, np)
        return value
    if hasattr(value, "columns") and hasattr(value, "dtypes"):
        if len(value) == 0:
            raise PortableError(f"{name} has no rows")
        return value
    _array(name, value, np)
    return value


def _array(name: str, value: Any, np: Any) -> None:
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise PortableError(f"{name} is not an array: {type(exc).__name__}: {exc}") from None
    if arr.dtype == object and not all(isinstance(x, (str, numbers.Number)) or x is None for x in arr.flat):
        raise PortableError(f"{name} must hold numbers or strings")
    if arr.ndim == 0:
        raise PortableError(f"{name} must have one row per sample, not a scalar")
    if arr.shape[0] == 0:
        raise PortableError(f"{name} has no rows")
