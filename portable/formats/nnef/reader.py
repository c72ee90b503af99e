"""Reading an NNEF artifact: a folder or a `.nnef.tgz` into its files, checked by the `nnef` parser."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from ..._io import sha256_file
from ...errors import InputError, NNEFError
from ...model import Origin
from .artifact import METADATA_FILE, NnefModel

MAX_FILES = 100_000


def _folder_files(path: Path) -> dict[str, bytes]:
    files = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            files[p.relative_to(path).as_posix()] = p.read_bytes()
    return files


def _archive_files(path: Path) -> dict[str, bytes]:
    """The regular files of the archive, relative to the folder holding `graph.nnef` (never outside it)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            if len(members) > MAX_FILES:
                raise InputError(f"the archive holds {len(members)} files; an NNEF model has far fewer", path=path)
            graphs = [m.name for m in members if Path(m.name).name == "graph.nnef"]
            if not graphs:
                raise InputError("the archive holds no graph.nnef", path=path)
            root = Path(min(graphs, key=len)).parent
            files = {}
            for m in members:
                rel = Path(m.name)
                try:
                    rel = rel.relative_to(root)
                except ValueError:
                    continue
                if ".." in rel.parts or rel.is_absolute():
                    raise InputError(f"the archive entry '{m.name}' points outside the model folder", path=path)
                data = tar.extractfile(m)
                if data is not None:
                    files[rel.as_posix()] = data.read()
            return files
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"not a readable .nnef.tgz archive ({type(exc).__name__}: {exc})", path=path) from None


def read(path: Path) -> NnefModel:
    """Load an NNEF artifact written by portable (or any NNEF model with a portable.json).

    Raises:
        InputError: the folder or archive is missing pieces or unreadable.
        NNEFError: graph.nnef fails the NNEF parser, or portable.json is missing or malformed.
    """
    files = _folder_files(path) if path.is_dir() else _archive_files(path)
    if "graph.nnef" not in files:
        raise InputError("no graph.nnef in the NNEF model", path=path)
    if METADATA_FILE not in files:
        raise NNEFError(f"no {METADATA_FILE} beside graph.nnef: portable runs NNEF models it wrote, whose "
                        f"{METADATA_FILE} gives the input and output names, types and class labels", path=path)
    try:
        meta: dict[str, Any] = json.loads(files[METADATA_FILE].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NNEFError(f"{METADATA_FILE} is not valid JSON: {exc}", path=path) from None
    for key in ("inputs", "outputs"):
        if not isinstance(meta.get(key), list):
            raise NNEFError(f"{METADATA_FILE} has no '{key}' list", path=path, where=key)
    sha = sha256_file(path) if path.is_file() else None
    origin = Origin("nnef", name=path.name, path=str(path), sha256=sha)
    model = NnefModel(files, meta, origin=origin, path=str(path))
    model.validate(path=path)
    model.dtype = meta.get("portable.dtype")
    return model


def read_tensor_bytes(data: bytes) -> Any:
    """A `.dat` tensor from bytes (nnef.read_tensor wants a real file when the stream is seekable)."""
    import nnef

    class _Stream:
        def __init__(self, raw: bytes) -> None:
            self._buf = io.BytesIO(raw)

        def read(self, n: int = -1) -> bytes:
            return self._buf.read(n)

        @staticmethod
        def seekable() -> bool:
            return False

    return nnef.read_tensor(_Stream(data))
