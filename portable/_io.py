"""Small file helpers shared by formats: atomic writes, hashing, refusing to overwrite."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OutputExistsError, PortableError


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: the file suffix of each target format's artifacts (`nnef` is a folder; `.nnef.tgz` is chosen explicitly)
TARGET_SUFFIX = {"onnx": ".onnx", "nnef": ".nnef"}
_DOUBLE_SUFFIXES = (".nnef.tgz", ".tar.gz")


def stem(path: Path) -> Path:
    """`path` without its suffix, treating `.nnef.tgz` and `.tar.gz` as one suffix."""
    name = path.name
    for suffix in _DOUBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path.with_name(path.stem)


def target_path(source: Path, to: str) -> Path:
    """Where `portable convert SOURCE --to TO` writes by default: the source's stem with the target's suffix."""
    return Path(f"{stem(source)}{TARGET_SUFFIX.get(to, '.' + to)}")


def check_writable(path: str | Path, force: bool) -> Path:
    """Refuse an existing output unless `force`; make sure the parent folder exists."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError("the output already exists; pass --force (force=True) to overwrite it", path=p)
    if not p.parent.exists():
        raise PortableError("the folder to write into does not exist", path=p.parent)
    return p


def atomic_write_bytes(path: str | Path, data: bytes, *, force: bool = False) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    p = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def atomic_write_dir(path: str | Path, fill: Callable[[Path], None], *, force: bool = False) -> Path:
    """Fill a temporary folder beside `path` with `fill(tmpdir)`, then move it into place."""
    p = check_writable(path, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent))
    try:
        fill(tmp)
        if p.exists():
            old = p.with_name(f".{p.name}.old")
            if old.exists():
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            os.replace(p, old)
            os.replace(tmp, p)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(tmp, p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return p
