"""Defence in depth while a file is being unpickled: a `sys.addaudithook` hook that refuses side effects.

The allowlist is what keeps an attacker's code from running; this guard is the second wall. While a load is in
progress on the current thread, the audited events that start processes, open sockets, load native code or
write, delete or rename files raise `GuardTripped` instead of happening. Reading files (imports need it) is
left alone. Python cannot remove an audit hook, so the hook is installed once and is a no-op outside a load.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_BLOCKED_PREFIXES = ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty", "os.kill",
                     "os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.symlink", "os.link", "os.truncate",
                     "os.chmod", "os.chown", "os.utime", "os.startfile", "os.putenv", "os.unsetenv",
                     "subprocess.", "socket.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.",
                     "ctypes.", "shutil.", "tempfile.", "mmap.", "pty.", "winreg.")
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND

_state = threading.local()
_installed = False
_lock = threading.Lock()


class GuardTripped(PermissionError):
    """A side effect was attempted while a file was being unpickled.

    A PermissionError, so that the import system's own best-effort writes (bytecode caches) skip quietly.
    """

    def __init__(self, event: str) -> None:
        super().__init__(f"blocked '{event}' while unpickling")
        self.event = event


def _writes(args: tuple[Any, ...]) -> bool:
    mode, flags = (args + (None, None, None))[1:3]
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not getattr(_state, "active", 0):
        return
    if event.startswith(_BLOCKED_PREFIXES) or (event == "open" and _writes(args)):
        if event.startswith(getattr(_state, "allow", ())):
            return
        _state.tripped = event
        raise GuardTripped(event)


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


class guarded:  # noqa: N801 - used as `with guard.guarded(...)`, like the context manager it was
    """Refuse process, network, native-code and file-writing events on this thread while the block runs.

    Args:
        allow: event prefixes let through anyway. A user who trusts a package (`--trust xgboost`) trusts its
            native code: xgboost's `__setstate__` hands its booster to its C library through ctypes.
    """

    __slots__ = ("_allow", "_saved")

    def __init__(self, allow: tuple[str, ...] = ()) -> None:
        self._allow = tuple(allow)

    def __enter__(self) -> None:
        if not _installed:
            _install()
        _state.active = getattr(_state, "active", 0) + 1
        _state.tripped = None
        self._saved = getattr(_state, "allow", ())
        _state.allow = self._allow

    def __exit__(self, *exc: Any) -> None:
        _state.active -= 1
        _state.allow = self._saved


@contextmanager
def paused() -> Iterator[None]:
    """Lift the guard on this thread for a block of library code the file does not control.

    Importing an allowlisted module (scikit-learn sets environment variables, joblib probes CPUs) is not the
    file's doing, so the resolver imports with the guard paused.
    """
    saved = getattr(_state, "active", 0)
    _state.active = 0
    try:
        yield
    finally:
        _state.active = saved


def tripped() -> str | None:
    """The event the guard blocked during the last guarded block on this thread, if any."""
    return getattr(_state, "tripped", None)
