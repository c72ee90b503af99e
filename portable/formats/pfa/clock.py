"""The time a PFA routine may run: the spec's `timeout` options, and portable's own limit over them.

The spec (§ "Execution options") lets a document ask for `timeout`, `timeout.begin`, `timeout.action` and
`timeout.end` in milliseconds, and lets the PFA system impose one. portable always imposes one,
`portable.limits` `max_pfa_routine_ms` (a document's smaller timeout wins): a `while` that never ends, user
functions that call each other exponentially often or a regular expression that backtracks catastrophically
stop with "exceeded timeout of N milliseconds" instead of hanging the process. The sequential tier's loops, user
function calls and regular expressions read the clock (`tick`, `remaining`); the routine that arms it is
`rows.RowEngine`. A routine that runs out of time raises `RoutineTimeout`, a `LimitError`: the scoring run stops
(a `try` form cannot catch it, and the checker does not take it for a rejected row), exit code 1.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from ... import limits

INF = float("inf")
_now = time.monotonic
_local = threading.local()
_local.deadline = INF


class RoutineTimeout(limits.LimitError):
    """A begin/action/end routine ran longer than its timeout."""

    def __init__(self, ms: float, own: bool, where: str | None = None, path: object = None) -> None:
        self.limit = "max_pfa_routine_ms"
        self.ms = ms
        self.own = own
        if own:
            text = (f"exceeded timeout of {ms:g} milliseconds (the document's own `timeout` option); portable "
                    "stopped scoring")
        else:
            text = (f"exceeded timeout of {ms:g} milliseconds: the routine ran longer than portable allows "
                    f"(limit max_pfa_routine_ms={ms:,.0f}; raise it with PORTABLE_LIMITS=\"max_pfa_routine_ms=...\" "
                    "or `portable --limit max_pfa_routine_ms=...` if the document is trusted); portable stopped "
                    "scoring")
        limits.PortableError.__init__(self, text, path=path, where=where)


def budget(doc_options: Any, routine: str) -> tuple[float, bool]:
    """(milliseconds, whether the document's own option sets it) for `routine` ("begin", "action", "end")."""
    own = INF
    if isinstance(doc_options, dict):
        for key in (f"timeout.{routine}", "timeout"):
            v = doc_options.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                own = INF if v < 0 else float(v)
                break
    system = float(limits.LIMITS.max_pfa_routine_ms)
    return (own, True) if own <= system else (system, False)


def arm(ms: float, own: bool) -> Any:
    """Start the clock for one routine; returns what `disarm` restores."""
    saved = (_local.__dict__.get("deadline", INF), _local.__dict__.get("ms"), _local.__dict__.get("own"))
    _local.deadline = _now() + ms / 1000.0
    _local.ms = ms
    _local.own = own
    return saved


def disarm(saved: Any) -> None:
    _local.deadline, _local.ms, _local.own = saved


def local_state() -> Any:
    """This thread's clock (a hot loop may set its `deadline` directly after `arm`)."""
    return _local


now = _now


def tick() -> None:
    """Raise `RoutineTimeout` when the running routine is out of time (cheap: call it in every loop)."""
    if _now() > _local.__dict__.get("deadline", INF):
        raise RoutineTimeout(_local.ms, _local.own)


def remaining() -> float | None:
    """Seconds the running routine has left (None: no clock armed); raises when none is left."""
    deadline = _local.__dict__.get("deadline", INF)
    if deadline == INF:
        return None
    left = deadline - _now()
    if left <= 0:
        raise RoutineTimeout(_local.ms, _local.own)
    return left
