"""What kind of file this is (pickle, joblib-compressed pickle, skops archive, or something else), by content.

The extension is not trusted: joblib files are often named `.pkl`, and a `.pkl` may hold anything.
"""
from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import InputError, MissingDependencyError

#: Magic numbers of files people mistake for pickles, for the "not a pickle" message.
_OTHER_FORMATS = (
    (b"\x93NUMPY", "a NumPy .npy array file"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5 model?)"),
    (b"GGUF", "a GGUF model file"),
    (b"ONNX", "an ONNX file"),
    (b"{", "JSON text (a PFA document? use a .pfa or .json name)"),
    (b"%YAML", "YAML text"),
    (b"\x7fELF", "an executable"),
    (b"PK\x05\x06", "an empty zip archive (no members, so no schema.json: not a skops file)"),
    (b"PK\x07\x08", "a spanned zip archive (skops files are single zip archives)"),
)
_ZIP = b"PK\x03\x04"
_JOBLIB_COMPAT = b"ZF"


@dataclass(frozen=True)
class Container:
    """`kind` is `pickle` or `skops`; `compression` names joblib's compressor (zlib, gzip, bz2, xz, lzma, lz4)."""

    kind: str
    compression: str | None = None

    def describe(self) -> str:
        if self.kind == "skops":
            return "skops archive"
        return f"pickle, {self.compression}-compressed (joblib)" if self.compression else "pickle"


_PICKLE = Container("pickle")


def read_bytes(path: Path) -> bytes:
    with open_file(path) as file:
        try:
            data = file.read()
        except OSError as exc:  # a folder opened on some systems, an I/O error
            if isinstance(exc, IsADirectoryError):
                raise InputError("is a directory, not a pickle file", path=path) from None
            raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    if not data:
        raise InputError("the file is empty (0 bytes), not a pickle", path=path)
    return data


def open_file(path: Path, buffering: int = -1) -> IO[bytes]:
    """The file opened for reading, with read_bytes' messages when it cannot be (a pipe or a device is refused
    before it is read: reading /dev/zero never ends). The file is opened without blocking (opening a FIFO would
    wait for a writer) and its own status is checked: one open and one fstat, as for any open file."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        from ..limits import check_regular

        check_regular(path)  # its message for a missing file, a dangling symlink or a socket
        if isinstance(exc, IsADirectoryError):
            raise InputError("is a directory, not a pickle file", path=path) from None
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    try:
        if not _S_ISREG(os.fstat(fd).st_mode):
            _not_regular(path, fd)
        # O_NONBLOCK changes nothing for a regular file's reads
        file = open(fd, "rb", buffering=buffering)
        getattr(file, "raw", file).name = path  # what open(path) names it (messages, joblib)
        return file
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError) and not isinstance(exc, InputError):
            raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
        raise


def open_head(path: Path) -> tuple[IO[bytes], bytes]:
    """The file opened for loading and its first bytes (at least one: InputError for an empty or unreadable file),
    checked as `open_file` checks it. A file of at most `HEAD` bytes (a small model) is read whole with one read and
    served from memory (`io.BytesIO`), its descriptor closed at once: what a buffered reader of `HEAD` bytes would
    hold, without its set-up (the buffered reader's `open` of the descriptor, a second status call and a seek cost
    a small model's load 6-10 us, a fifth of `pickle.load`'s). A larger file: `open_file` with a `HEAD` buffer."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        file = open_file(path, HEAD)  # its messages (a missing file, a folder, a socket...)
        return file, peek_head(path, file)
    try:
        st = os.fstat(fd)
        if not _S_ISREG(st.st_mode):
            _not_regular(path, fd)
        if st.st_size <= HEAD:
            # a regular file reads whole unless it grew since fstat: then its start is kept, and the rest is read
            # through a buffered reader like any large file
            data = os.read(fd, HEAD + 1)
            if len(data) <= HEAD:
                if len(data) < st.st_size:  # a short read (a signal, a shrinking file): read on to the end
                    chunks = [data]
                    while len(data) <= HEAD and (chunk := os.read(fd, HEAD + 1 - len(data))):
                        chunks.append(chunk)
                        data = b"".join(chunks)
                if len(data) <= HEAD:
                    os.close(fd)
                    fd = -1
                    if not data:
                        raise InputError("the file is empty (0 bytes), not a pickle", path=path)
                    return io.BytesIO(data), data
            os.lseek(fd, 0, os.SEEK_SET)
        file = open(fd, "rb", buffering=HEAD)
        fd = -1  # the file owns it now
        getattr(file, "raw", file).name = path
    except InputError:
        raise
    except OSError as exc:
        if isinstance(exc, IsADirectoryError):
            raise InputError("is a directory, not a pickle file", path=path) from None
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        return file, peek_head(path, file)
    except BaseException:
        file.close()
        raise


def _not_regular(path: Path, fd: int) -> None:
    """Refuse an opened path that is not a regular file: a folder, or a pipe or a device with its kind."""
    from ..limits import check_regular

    if stat.S_ISDIR(os.fstat(fd).st_mode):
        raise InputError("is a directory, not a pickle file", path=path)
    check_regular(path)  # a pipe or a device: refused with its kind
    raise InputError("is not a regular file: portable reads only regular files", path=path)


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FLAGS = os.O_RDONLY | _NONBLOCK | _CLOEXEC
_S_ISREG = stat.S_ISREG


#: The buffer the loader opens files with: `peek_head` sees this much of the file with one read.
HEAD = 1 << 16


def peek_head(path: Path, file: IO[bytes]) -> bytes:
    """The first bytes of an open file (its first buffer: `HEAD` bytes when opened with that buffering, enough to
    tell its kind and whether joblib.dump wrote it), without moving its position:
    the unpickler then reads from the buffer, with no seek and no second read of the same bytes. InputError for
    an empty or unreadable file."""
    try:
        head = file.peek(1)  # type: ignore[attr-defined]
    except OSError as exc:  # a directory on some systems, a device that fails
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    if not head:
        raise InputError("the file is empty (0 bytes), not a pickle", path=path)
    return head


def read_head(path: Path, file: IO[bytes], n: int = 64) -> bytes:
    """The first `n` bytes of an open file (enough to tell its kind); InputError for an empty or unreadable one."""
    try:
        head = file.read(n)
    except OSError as exc:  # a directory on some systems, a device that fails
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    if not head:
        raise InputError("the file is empty (0 bytes), not a pickle", path=path)
    return head


def _compressors() -> dict[str, object]:
    from joblib import compressor  # joblib's registry: zlib, gzip, bz2, lzma, xz, and lz4 when installed

    return dict(compressor._COMPRESSORS)


_PREFIXES: list[tuple[str, bytes]] = []


def _prefixes() -> list[tuple[str, bytes]]:
    """joblib's compressors' magic prefixes (asked once: the registry does not change once joblib is imported)."""
    if not _PREFIXES:
        _PREFIXES.extend((name, p) for name, comp in _compressors().items()
                         if isinstance(p := getattr(comp, "prefix", None), bytes) and p)
    return _PREFIXES


def compressor_prefix(extension: str) -> bytes | None:
    """The magic bytes of the joblib compressor that `joblib.dump` picks for a file name ending in `extension`
    (`.gz` -> gzip's), or None when no compressor has that extension."""
    for comp in _compressors().values():
        if getattr(comp, "extension", None) == extension:
            prefix = getattr(comp, "prefix", None)
            return prefix if isinstance(prefix, bytes) and prefix else None
    return None


def sniff(path: Path, data: bytes) -> Container:
    """Classify `data` (the bytes of `path`); raises InputError for files that cannot hold a pickle."""
    if data[:1] == b"\x80":  # pickle's PROTO opcode: no compressor's or other format's magic starts with it
        return _PICKLE
    if data.startswith(_ZIP):
        import zipfile

        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputError(f"a damaged zip archive ({exc}); skops files are zip archives", path=path) from None
        if "schema.json" in names:
            return Container("skops")
        raise InputError("a zip archive without schema.json: not a skops file and not a pickle (a PyTorch or "
                         ".npz archive?)", path=path)
    if data.startswith(_JOBLIB_COMPAT):
        raise InputError("written by joblib older than 0.10 (with arrays in companion files); that format is not "
                         "supported: re-save it with a recent joblib", path=path)
    for name, prefix in _prefixes():
        if data.startswith(prefix):
            return Container("pickle", compression=name)
    for magic, what in _OTHER_FORMATS:
        if data.startswith(magic):
            raise InputError(f"not a pickle: the file starts like {what}", path=path)
    return Container("pickle")


def open_stream(path: Path, data: bytes, container: Container) -> IO[bytes]:
    """A readable stream of the (decompressed) pickle bytes."""
    return open_file_stream(path, io.BytesIO(data), container)


def open_file_stream(path: Path, raw: IO[bytes], container: Container) -> IO[bytes]:
    """A readable stream of the (decompressed) pickle bytes of an open file (read as joblib.load reads it)."""
    if not container.compression:
        return raw
    comp = _compressors()[container.compression]
    try:
        return io.BufferedReader(_Bounded(comp.decompressor_file(raw), _size(raw), path))  # type: ignore[attr-defined]
    except ValueError as exc:
        if "lz4" in str(exc).lower():
            raise MissingDependencyError("the file is lz4-compressed by joblib; install lz4 to read it "
                                         "(pip install lz4)") from None
        raise InputError(f"cannot open the {container.compression} stream: {exc}", path=path) from None


def _size(raw: IO[bytes]) -> int:
    at = raw.tell()
    end = raw.seek(0, io.SEEK_END)
    raw.seek(at)
    return end


class _Bounded(io.RawIOBase):
    """A decompressing stream that stops at `max_compression_ratio` times the compressed file's size (at least
    64 MiB): a few megabytes of zlib can declare gigabytes of zeros, which joblib would allocate and fill. The
    decompressed position (reads and forward seeks alike) is what is bounded."""

    def __init__(self, inner: IO[bytes], compressed: int, path: Path) -> None:
        from ..limits import LIMITS, MiB

        self.inner = inner
        self.path = path
        self.cap = max(64 * MiB, LIMITS.max_compression_ratio * compressed)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.inner.seekable()

    def tell(self) -> int:
        return self.inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET and offset > self.cap or whence == io.SEEK_CUR and self.inner.tell() + offset > \
                self.cap:
            self._stop()
        return self._within(self.inner.seek(offset, whence))

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        n = self.inner.readinto(buffer)
        if n:
            self._within(self.inner.tell())
        return n

    def _within(self, position: int) -> int:
        if position > self.cap:
            self._stop()
        return position

    def _stop(self) -> None:
        from ..limits import LIMITS, LimitError

        raise LimitError(f"the compressed file decompresses to more than {LIMITS.max_compression_ratio} times its "
                         "size (a decompression bomb)", "max_compression_ratio", path=self.path)

    def close(self) -> None:
        self.inner.close()
        super().close()


def declared_bytes_fit(stream: IO[bytes], nbytes: int) -> str | None:
    """Whether an array of `nbytes` that a joblib file declares can follow in `stream` (checked before joblib
    allocates it): a compressed stream within its `max_compression_ratio` budget (a LimitError otherwise), a plain
    file within the bytes it has left. Returns why not for a plain file, None when it fits."""
    raw = getattr(stream, "raw", None)
    if isinstance(raw, _Bounded):
        if nbytes > raw.cap - stream.tell():
            from ..limits import LIMITS, LimitError

            raise LimitError(f"the compressed file declares an array of {nbytes:,} bytes, more than "
                             f"{LIMITS.max_compression_ratio} times its size (a decompression bomb)",
                             "max_compression_ratio", path=raw.path)
        return None
    try:
        at = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(at)
    except (OSError, ValueError, AttributeError):
        return None
    if nbytes > end - at:
        return f"a joblib array declares {nbytes:,} bytes, but only {end - at:,} bytes of the file remain"
    return None
