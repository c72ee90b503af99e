"""One module per format: sniff, load, save (for targets) and run. Imported by the registry on first use.

The package is callable as `portable.formats()` (see `portable/_callable.py` for why).
"""
from .._callable import make_callable

make_callable(__name__, "formats")
