"""Make a subpackage answer calls like the public function of the same name.

DESIGN §3 names functions `portable.formats()`, `portable.converters()` and `portable.check()`, and the layout has
packages `portable/formats/`, `portable/converters/` and `portable/check/`. Importing a submodule makes Python set
the attribute `portable.<name>` to the package, replacing the function; a callable package keeps
`portable.<name>(...)` working whichever of the two the attribute holds.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(package: str, function: str) -> None:
    """Make module `package` callable, forwarding to `portable.api.<function>`."""

    class _CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module("portable.api"), function)(*args, **kwargs)

    sys.modules[package].__class__ = _CallablePackage
