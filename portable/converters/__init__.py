"""One module per converter edge (`source -> target`). Imported by the registry on first use.

`portable.converters()` is also the public function of DESIGN §3; see `portable/formats/__init__.py` for why
this package is callable.
"""
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self):  # type: ignore[no-untyped-def]
        from ..api import converters

        return converters()


sys.modules[__name__].__class__ = _CallablePackage
