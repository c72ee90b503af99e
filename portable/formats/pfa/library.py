"""The table of PFA library functions portable supports: name -> `impl(ev, args, where) -> Val`.

Functions register themselves with `@pfa_function("name", ...)` in the `lib_*` modules, which are imported
here; `LIBRARY` is the one inventory of what is supported (`portable inspect` and the docs read it).
"""
from __future__ import annotations

from typing import Any, Callable

LIBRARY: dict[str, Callable[..., Any]] = {}


def pfa_function(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            LIBRARY[n] = fn
        return fn
    return deco


def arity(ev: Any, args: list[Any], n: int | tuple[int, ...], name: str, where: str) -> None:
    ok = (n,) if isinstance(n, int) else n
    if len(args) not in ok:
        want = " or ".join(str(k) for k in ok)
        raise ev.error(f"{name} takes {want} argument(s), got {len(args)}", where)


from . import lib_core, lib_math, lib_array, lib_model, lib_tree  # noqa: E402,F401  (registration)
