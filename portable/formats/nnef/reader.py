"""Reading an NNEF artifact: a folder or a `.nnef.tgz` into its files, checked by the `nnef` parser."""
from __future__ import annotations

import io
import json
import tarfile
import zlib
from pathlib import Path
from typing import Any

from ..._io import sha256_file
from ...errors import InputError, NNEFError, control_characters
from ...model import Origin
from .artifact import METADATA_FILE, NnefModel

def _folder_files(path: Path) -> dict[str, bytes]:
    from ...limits import read_folder_files

    return read_folder_files(path)  # symlinks out of the folder refused, sizes checked before reading


def _archive_files(path: Path) -> dict[str, bytes]:
    """The regular files of the archive, relative to the folder holding `graph.nnef` (never outside it)."""
    from ...limits import read_tar_members

    try:
        with tarfile.open(path, "r:*") as tar:
            # links, sparse members and declared sizes are refused before any member is read (portable.limits)
            members = list(read_tar_members(tar, path=path, compressed_size=path.stat().st_size))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise InputError(f"not a readable .nnef.tgz archive ({type(exc).__name__}: {exc})", path=path) from None
    graphs = [m.name for m, _ in members if Path(m.name).name == "graph.nnef"]
    if not graphs:
        raise InputError("the archive holds no graph.nnef", path=path)
    root = Path(min(graphs, key=len)).parent
    files = {}
    for m, data in members:
        rel = Path(m.name)
        try:
            rel = rel.relative_to(root)
        except ValueError:
            continue
        if ".." in rel.parts or rel.is_absolute():
            raise InputError(f"the archive entry '{m.name}' points outside the model folder", path=path)
        files[rel.as_posix()] = data
    return files


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
    from ...limits import check_nesting, load_json

    try:
        meta: dict[str, Any] = load_json(files[METADATA_FILE].decode(), path=path, what=METADATA_FILE)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NNEFError(f"{METADATA_FILE} is not valid JSON: {exc}", path=path) from None
    check_metadata(meta, path)
    try:
        check_nesting(files["graph.nnef"].decode(), path=path)  # the nnef C++ parser recurses on nesting
    except UnicodeDecodeError as exc:
        raise NNEFError(f"graph.nnef is not UTF-8 text: {exc}", path=path) from None
    sha = sha256_file(path) if path.is_file() else None
    origin = Origin("nnef", name=path.name, path=str(path), sha256=sha)
    model = NnefModel(files, meta, origin=origin, path=str(path))
    model.validate(path=path)
    model.dtype = meta.get("portable.dtype")
    return model


def check_metadata(meta: Any, path: Any) -> None:
    """portable.json's shape: inputs and outputs are lists of {name, nnef, dtype, shape[, kind, labels]}."""
    import numpy as np

    def bad(msg: str, where: str) -> NNEFError:
        return NNEFError(f"{METADATA_FILE}: {msg}", path=path, where=where)

    if not isinstance(meta, dict):
        raise bad(f"expected a JSON object, found {type(meta).__name__}", "(top)")
    for key in ("inputs", "outputs"):
        if not isinstance(meta.get(key), list):
            raise NNEFError(f"{METADATA_FILE} has no '{key}' list", path=path, where=key)
        for i, d in enumerate(meta[key]):
            here = f"{key}[{i}]"
            if not isinstance(d, dict):
                raise bad(f"each entry is an object, not {type(d).__name__}", here)
            for field in ("name", "nnef", "dtype"):
                if not isinstance(d.get(field), str):
                    raise bad(f"'{field}' must be a string", f"{here}.{field}")
                shown = control_characters(d[field])
                if shown is not None:
                    raise bad(f"'{field}' '{shown}' holds control characters (newlines, escape sequences)",
                              f"{here}.{field}")
            if d["dtype"] not in ("str", "object", "string"):
                try:
                    np.dtype(d["dtype"])
                except TypeError:
                    raise bad(f"'{d['dtype']}' is not a dtype", f"{here}.dtype") from None
            shape = d.get("shape", [None])
            if not isinstance(shape, list) or not all(x is None or (isinstance(x, int) and not isinstance(x, bool)
                                                                     and x >= 0) for x in shape):
                raise bad("'shape' must be a list of sizes (whole numbers or null)", f"{here}.shape")
            if "labels" in d and not (isinstance(d["labels"], list) and d["labels"]
                                      and all(isinstance(x, (str, int, float, bool)) for x in d["labels"])):
                raise bad("'labels' must be a non-empty list of class labels", f"{here}.labels")


def read_tensor_bytes(data: bytes) -> Any:
    """A `.dat` tensor from bytes (nnef.read_tensor wants a real file when the stream is seekable)."""
    import nnef

    from ...limits import check_nnef_tensor_header

    check_nnef_tensor_header(data)  # declared sizes against the bytes held, before numpy allocates them

    class _Stream:
        def __init__(self, raw: bytes) -> None:
            self._buf = io.BytesIO(raw)

        def read(self, n: int = -1) -> bytes:
            return self._buf.read(n)

        @staticmethod
        def seekable() -> bool:
            return False

    return nnef.read_tensor(_Stream(data))
