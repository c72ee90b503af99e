"""Writing an NNEF artifact: its files as a folder or a `.nnef.tgz`, atomically, never over an existing output
without `force`."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

from ..._io import atomic_write_bytes, atomic_write_dir

ARCHIVE_SUFFIXES = (".nnef.tgz", ".nnef.tar.gz", ".tgz")


def is_archive(path: str | Path) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def archive_bytes(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of the files at the archive's top level (as nnef-tools' own `.tgz` output)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def write(files: dict[str, bytes], path: str | Path, *, force: bool = False, protect: tuple = ()) -> Path:
    """Write the artifact to `path`: a `.nnef.tgz` archive when the name says so, else a folder.

    Raises:
        OutputExistsError: `path` exists and `force` is False.
    """
    if is_archive(path):
        return atomic_write_bytes(path, archive_bytes(files), force=force, protect=protect)

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    return atomic_write_dir(path, fill, force=force, protect=protect)
