"""One module per format: sniff, load, save (for targets) and run. Imported by the registry on first use.

`portable.formats()` is also the public function of DESIGN §3. Importing a submodule makes Python set the
attribute `portable.formats` to this package, so the package itself is made callable and answers like the
function; `portable.formats()` works whichever of the two the attribute holds.
"""
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self):  # type: ignore[no-untyped-def]
        from ..api import formats

        return formats()


sys.modules[__name__].__class__ = _CallablePackage
