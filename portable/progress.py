"""Progress bars for long conversions and checks: rich in a terminal, nothing otherwise or with --quiet."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ProgressFn = Callable[[int, int], None]


def wanted(quiet: bool, stream: Any = None) -> bool:
    """A bar is drawn only on an interactive terminal and without --quiet."""
    stream = stream or sys.stderr
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


@contextmanager
def bar(description: str, *, quiet: bool = False, total: int | None = None) -> Iterator[ProgressFn | None]:
    """Yield `progress(done, total)` that advances a rich bar, or None when no bar is wanted."""
    if not wanted(quiet):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            progress.update(task, completed=done, total=total_)

        yield update
