"""One module per converter edge (`source -> target`). Imported by the registry on first use.

The package is callable as `portable.converters()` (see `portable/_callable.py` for why).
"""
from .._callable import make_callable

make_callable(__name__, "converters")
