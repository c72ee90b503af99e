"""Restricted unpickling: only allowlisted globals are ever resolved. (Hardened by the pickle-safety issue.)"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from .errors import InputError, UnsafePickleError

ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")
ALLOWED_NAMES = {
    ("copyreg", "_reconstructor"), ("builtins", "object"), ("builtins", "slice"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "bytearray"), ("collections", "OrderedDict"),
    ("collections", "defaultdict"), ("builtins", "float"), ("builtins", "int"), ("builtins", "dict"),
    ("builtins", "list"), ("builtins", "tuple"), ("builtins", "str"), ("builtins", "bool"),
}


def _allowed(module: str, name: str, trust: tuple[str, ...]) -> bool:
    full = f"{module}.{name}"
    if (module, name) in ALLOWED_NAMES:
        return True
    if any(full == t or full.startswith(t.rstrip(".") + ".") for t in trust):
        return True
    return any(full.startswith(p) for p in ALLOWED_PREFIXES) and "." not in name


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, trust: tuple[str, ...] = ()) -> None:
        super().__init__(file)
        self.trust = trust

    def find_class(self, module: str, name: str) -> Any:
        if not _allowed(module, name, self.trust):
            raise UnsafePickleError(f"refused global {module}.{name}; pass --trust {module}.{name} to admit it",
                                    refused=[f"{module}.{name}"])
        return super().find_class(module, name)


def safe_load(path: Path, *, trust: tuple[str, ...] = ()) -> tuple[Any, list[str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}", path=path) from exc
    try:
        return RestrictedUnpickler(io.BytesIO(data), trust).load(), []
    except UnsafePickleError as exc:
        raise UnsafePickleError(exc.message, path=path, refused=exc.refused) from None
    except Exception as exc:
        raise InputError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path) from None
