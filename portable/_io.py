"""Small file helpers shared by formats: atomic writes, hashing, refusing to overwrite."""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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
#: one suffix each: an NNEF archive, a tarball, and a pickle compressed by joblib.dump (`model.pkl.gz`: the
#: formats/pickle.py names, spelled here without importing the format)
_DOUBLE_SUFFIXES = (".nnef.tgz", ".tar.gz") + tuple(
    base + ext for base in (".pkl", ".pickle", ".joblib") for ext in (".z", ".gz", ".bz2", ".lzma", ".xz", ".lz4"))


def stem(path: Path) -> Path:
    """`path` without its suffix, treating `.nnef.tgz`, `.tar.gz` and `.pkl.gz` (and the other compressed pickle
    names) as one suffix."""
    name = path.name
    for suffix in _DOUBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path.with_name(path.stem)


def target_path(source: Path, to: str) -> Path:
    """Where `portable convert SOURCE --to TO` writes by default: the source's stem with the target's suffix."""
    return Path(f"{stem(source)}{TARGET_SUFFIX.get(to, '.' + to)}")


def as_path(value: Any, name: str = "path") -> Path:
    """`value` as a Path, or a PortableError naming the argument (None, a number, an empty string, a name longer
    than file systems allow...)."""
    if isinstance(value, Path):
        p = value
    elif isinstance(value, str) and value.strip():
        p = Path(value)
    elif isinstance(value, os.PathLike):
        p = Path(os.fspath(value))
    else:
        raise PortableError(f"{name} must be a file path (str or pathlib.Path), not {value!r}")
    check_name_lengths(p)
    return p


#: the longest file or folder name (in bytes) of common file systems (ext4, XFS, APFS, NTFS in UTF-16 units)
NAME_MAX = 255
#: how much of an output's name goes into its temporary file's name (beside it, until it is renamed into place)
_TMP_NAME = 100


def temp_prefix(p: Path) -> str:
    """The start of the names of the temporary files written beside output `p` (short enough for any name)."""
    return f".{p.name[:_TMP_NAME]}."


def remove_leftovers(out: Any) -> None:
    """Temporary files a stopped conversion may have left beside its output `out` (`atomic_write_bytes`/`_dir`)."""
    p = Path(out)
    if p.parent.is_dir():
        for tmp in p.parent.glob(f"{glob.escape(temp_prefix(p))}*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def why_missing(path: Any) -> str:
    """Why `path` cannot be opened, said plainly: no such file, a symbolic link to nothing or in a loop, a part of
    the path that is a file, no permission (`Path.exists` says False for all of them)."""
    import errno

    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that leads back to itself (a loop of symbolic links)"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"a symbolic link to '{os.readlink(path)}', which does not exist"
        if exc.errno == errno.ENOTDIR:
            return "a part of the path before the last one is a file, not a folder"
        if exc.errno == errno.ENOENT:
            return "no such file or folder"
        return f"cannot be read ({exc.strerror or exc})"
    return "no such file or folder"


def check_name_lengths(p: Path) -> None:
    """A path none of whose names is longer than NAME_MAX bytes: the OS would otherwise refuse it with
    ENAMETOOLONG deep inside whatever first touches it (`Path.is_dir` raises that error, unlike a missing file)."""
    if "\0" in str(p):
        raise PortableError("a path cannot contain a NUL byte ('\\0')", path=repr(str(p)))
    for part in p.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise PortableError(f"the name '{part[:40]}...' is {size:,} bytes long, more than file systems allow "
                                f"({NAME_MAX})", path=p)


def _holds(folder: Path, inner: Path) -> bool:
    return inner == folder or folder in inner.parents


def check_writable(path: Any, force: bool, *, protect: Iterable[Any] = (), kind: str | None = None,
                   probe: bool = False) -> Path:
    """Refuse an output that cannot be written without losing data, before anything is converted.

    - an existing output (a dangling symlink counts) without `force`;
    - the output is one of the `protect`ed paths (the source, a model being checked), a folder holding one, or
      a path inside a protected folder (an NNEF model folder);
    - `kind="file"` and the output is an existing folder (`-o existing_dir --force` for ONNX);
    - the folder to write into is missing, is not a folder, or (with `probe`) cannot be written into.
    """
    p = as_path(path, "the output path")
    if not isinstance(force, bool):
        raise PortableError(f"force must be True or False, not {force!r}")
    real = Path(os.path.realpath(p))
    for src in protect:
        if src is None:
            continue
        s = Path(os.path.realpath(src))
        if _holds(real, s):
            what = "is" if real == s else "is a folder that holds"
            raise PortableError(f"the output {what} {src}, which portable must not overwrite; choose another "
                                "output", path=p)
        if s.is_dir() and _holds(s, real):
            raise PortableError(f"the output is inside the model folder {src}, which portable must not modify; "
                                "choose another output", path=p)
    exists = os.path.lexists(p)
    if exists and not force:
        what = "is a symlink (dangling)" if p.is_symlink() and not p.exists() else "exists"
        raise OutputExistsError(f"the output already {what}; pass --force (force=True) to overwrite it", path=p)
    if kind == "file" and p.is_dir():
        raise PortableError("the output is a folder; this artifact is one file, so give a file name", path=p)
    if exists and os.path.exists(p) and not (p.is_file() or p.is_dir()):  # even with --force
        import stat

        mode = os.stat(p).st_mode
        what = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise PortableError(f"the output is {what}; portable replaces only regular files and NNEF model folders "
                            "(writing would replace it with a file), so give a file name", path=p)
    if kind == "folder" and p.is_dir() and any(p.iterdir()) and not (p / "graph.nnef").is_file():
        raise PortableError("the output is a folder that is not an NNEF model; portable replaces only an NNEF "
                            "model folder, so give a new name", path=p)
    parent = p.parent
    if not parent.exists():
        raise PortableError("the folder to write into does not exist", path=parent)
    if not parent.is_dir():
        raise PortableError("the path to write into is not a folder", path=parent)
    if probe:
        try:
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(p), suffix=".probe", dir=parent)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise PortableError(f"cannot write into this folder ({exc.strerror or exc})", path=parent) from None
    return p


def _write_error(p: Path, exc: OSError) -> PortableError:
    return PortableError(f"could not write the output ({exc.strerror or type(exc).__name__})", path=p)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask can only be read by setting it, which would
    change the host process's state for a moment): Linux reports it in /proc/self/status."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _mode(p: Path, full: int) -> int:
    """The permissions of the output: those of the file or folder it replaces, else what `open`/`mkdir` would
    give a new one (`full` less the umask)."""
    try:
        st = os.stat(p)
        return st.st_mode & 0o7777
    except OSError:
        return full & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes, *, force: bool = False, protect: Iterable[Any] = ()) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it into place (the temporary file is removed on
    every exit path, a signal included once the command line turned it into an exception)."""
    p = check_writable(path, force, protect=protect, kind="file")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(p), suffix=".tmp", dir=p.parent)
        os.fchmod(fd, _mode(p, 0o666))  # mkstemp makes it 0600: the artifact gets what a new file would get
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        tmp = None
    except OSError as exc:
        raise _write_error(p, exc) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return p


def atomic_write_dir(path: str | Path, fill: Callable[[Path], None], *, force: bool = False,
                     protect: Iterable[Any] = ()) -> Path:
    """Fill a temporary folder beside `path` with `fill(tmpdir)`, then move it into place. An existing output is
    replaced only when it is a file or an NNEF model folder (never an arbitrary folder, never the source's)."""
    p = check_writable(path, force, protect=protect, kind="folder")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(p), suffix=".tmp", dir=p.parent))
    except OSError as exc:
        raise _write_error(p, exc) from None
    try:
        os.chmod(tmp, _mode(p, 0o777))  # mkdtemp makes it 0700
        fill(tmp)
        if os.path.lexists(p):
            old = p.with_name(f"{temp_prefix(p)}{os.getpid()}.old")
            if os.path.lexists(old):
                shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
            os.replace(p, old)
            os.replace(tmp, p)
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
        else:
            os.replace(tmp, p)
    except OSError as exc:
        raise _write_error(p, exc) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return p


def _read_npy(p: Path) -> Any:
    """An `.npy` file whose header is read and checked first: no object dtype, and no more bytes declared than
    the file holds (a 200-byte header can declare terabytes, which `np.load` would try to allocate)."""
    import numpy as np
    from numpy.lib import format as npy

    size = p.stat().st_size
    with open(p, "rb") as f:
        try:
            version = npy.read_magic(f)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read_header(f, max_header_size=10_000)
        except ValueError as exc:
            raise PortableError(f"not a valid .npy file ({str(exc).strip().splitlines()[0]})", path=p) from None
        if dtype.hasobject:
            raise PortableError(f"the .npy file holds {dtype} values (Python objects, read only by unpickling); "
                                "portable reads numbers or strings", path=p)
        count = 1
        for n in shape:
            count *= int(n)
        declared, held = count * dtype.itemsize, size - f.tell()
        if declared > held:
            raise PortableError(f"the .npy header declares an array of shape {tuple(shape)} and dtype {dtype} "
                                f"({declared:,} bytes) but the file holds {held:,} bytes after its header", path=p)
    return np.load(p, allow_pickle=False)


def read_data(path: Any) -> Any:
    """Read sample input for a check: `.npy` (no pickles), `.csv` or `.parquet` (as a DataFrame).

    Raises:
        PortableError: the file is missing, unreadable, empty, of another kind, or holds no numbers or strings.
    """
    p = as_path(path, "data")
    if not p.exists():
        raise PortableError(f"no data file: {why_missing(p)}", path=p)
    from .limits import check_data_columns, check_regular

    check_regular(p)  # a pipe or a device is refused before anything opens it
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv", ".parquet"):
        raise PortableError("--data takes a .npy, .csv or .parquet file", path=p)
    if p.stat().st_size == 0:
        raise PortableError("the data file is empty", path=p)
    check_data_columns(p)
    try:
        if suffix == ".npy":
            out = _read_npy(p)
        else:
            import pandas as pd

            out = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
    except PortableError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PortableError(f"cannot read the data file: {type(exc).__name__}: {first}", path=p) from None
    if getattr(out, "ndim", 1) == 0 or len(out) == 0:
        raise PortableError("the data file holds no rows", path=p)
    kind = getattr(getattr(out, "dtype", None), "kind", None)
    if kind is not None and kind not in "biufUS":
        raise PortableError(f"the data file holds {out.dtype} values; portable reads numbers or strings", path=p)
    return out
