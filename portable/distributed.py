"""Running portable's work on a Dask cluster: the chunked check (`check_on_dask`) and folder conversion
(`convert_on_dask`). portable grows no cluster code of its own; this module only maps tasks onto Dask.

`--dask ADDRESS` names a running scheduler (`tcp://host:8786`); `--dask local` or `local:N` starts a
`LocalCluster` of N worker processes (one thread each, on the loopback interface) for the duration of the call.
Workers must see the same files as the caller (the data's paths, the models' paths, the output folder).

Failure handling: a worker lost while running a task is replaced and its task rescheduled by Dask (up to the
scheduler's `distributed.scheduler.allowed-failures`); a task that raises is retried `retries` times. A task
that still fails is named in the result (the check's `data["unread"]`, a failed row of the folder summary),
never dropped.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import PortableError

CONNECT_TIMEOUT = "20s"


@contextmanager
def client_for(address: Any) -> Iterator[Any]:
    """A `distributed.Client` for `address`: a Client (used as it is), `local[:N]`, or a scheduler address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise PortableError("--dask needs the 'distributed' package: pip install 'portable-models[dask]'") \
            from None
    if hasattr(address, "submit") and hasattr(address, "map"):
        yield address
        return
    text = str(address).strip()
    if text == "local" or text.startswith("local:"):
        n_text = text.partition(":")[2]
        try:
            n = int(n_text) if n_text else max(1, os.cpu_count() or 1)
        except ValueError:
            raise PortableError(f"--dask local:N takes a number of workers, not '{n_text}'") from None
        if n < 1:
            raise PortableError(f"--dask local:N needs at least 1 worker, not {n}")
        import logging

        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the cluster's start-up chatter is not the user's business
        try:
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
        except Exception as exc:
            quiet.setLevel(level)
            raise PortableError(f"cannot start a local Dask cluster: {type(exc).__name__}: {exc}") from None
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
            quiet.setLevel(level)
        return
    try:
        client = Client(text, timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        raise PortableError(f"cannot connect to the Dask scheduler at '{text}': {type(exc).__name__}: {exc}") \
            from None
    try:
        yield client
    finally:
        client.close()


def _results(client: Any, futures: list[Any], keys: list[Any],
             progress: Callable[[int, int], Any] | None) -> Iterator[tuple[Any, Any, BaseException | None]]:
    """(key, result, None) or (key, None, error) for each future as it finishes; each is released once read."""
    from distributed import as_completed

    index = {f.key: k for f, k in zip(futures, keys)}
    done = 0
    for fut in as_completed(futures):
        key = index[fut.key]
        try:
            yield key, fut.result(), None
        except Exception as exc:  # the task raised after its retries, or its worker died too often
            yield key, None, exc
        fut.release()
        done += 1
        if progress is not None:
            progress(done, len(futures))


def check_on_dask(spec: Any, tasks: list[Any], address: Any, *, retries: int = 2,
                  progress: Callable[[int, int], Any] | None = None) -> tuple[Any, int]:
    """Run the chunked check's tasks on Dask and merge their partial results: (Partial, number of workers)."""
    from .equivalence.streaming import DaskSource, Partial, _unread, run_task

    partial = Partial()
    with client_for(address) as client:
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {})) if _takes_n(client) else \
            len(client.scheduler_info().get("workers", {}))
        source = spec.source
        if isinstance(source, DaskSource):
            import dask

            from dataclasses import replace

            light = replace(spec, source=None)
            shipped = client.scatter(light, broadcast=True, hash=False)
            parts = source.frame.to_delayed()
            lazy = [dask.delayed(run_task)(shipped, t, p, dask_key_name=f"portable-check-{spec.token}-{i}")
                    for i, (t, p) in enumerate(zip(tasks, parts))]
            futures = client.compute(lazy, retries=retries)
        else:
            shipped = client.scatter(spec, broadcast=True, hash=False)
            futures = client.map(run_task, [shipped] * len(tasks), tasks, retries=retries, pure=False,
                                 key=[f"portable-check-{spec.token}-{i}" for i in range(len(tasks))])
        for task, result, error in _results(client, futures, tasks, progress):
            if error is None:
                partial.merge(result)
            else:
                if isinstance(error, PortableError) and "has no column for input" in error.message:
                    raise PortableError(error.message, path=task.part.name) from None
                partial.unread.append(_unread(task, error))
        client.cancel(futures)
    return partial, workers


def _takes_n(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


FILE_TIMEOUT = 300.0  # seconds one file's conversion may take on a worker (`--timeout`) before it is stopped
_RESULT = "PORTABLE-RESULT "


def convert_on_dask(tasks: list[tuple[str, str]], to: str, settings: dict[str, Any], address: Any, *,
                    timeout: float = FILE_TIMEOUT, retries: int = 1,
                    progress: Callable[[int, int], Any] | None = None) -> dict[str, Any]:
    """Convert each (source, output) pair as one Dask task; {source: BatchResult}.

    Each file is isolated on its worker (`convert_isolated`): it is converted in a child process, so a file
    that crashes the interpreter (a segfault in a library) or runs past `timeout` seconds is reported as failed
    and neither the worker nor the other files are affected; a worker lost for another reason is replaced and
    its task rescheduled by Dask."""
    from .batch import BatchResult

    results: dict[str, Any] = {}
    with client_for(address) as client:
        futures = [client.submit(convert_isolated, src, out, to, settings, timeout, retries=retries, pure=False,
                                 key=f"portable-convert-{i}-{os.path.basename(src)}")
                   for i, (src, out) in enumerate(tasks)]
        for src, result, error in _results(client, futures, [s for s, _ in tasks], progress):
            if error is None:
                results[src] = result
            else:
                results[src] = BatchResult(model=src, output=None,
                                           error=f"worker failed: {type(error).__name__}: {error}")
    return results


def convert_isolated(src: str, out: str, to: str, settings: dict[str, Any], timeout: float = FILE_TIMEOUT) -> Any:
    """`batch.convert_one` in a child Python process (a plain subprocess: Dask's worker processes are daemons,
    which multiprocessing does not let have children), stopped after `timeout` seconds."""
    import json
    import subprocess
    import sys
    import time

    from .batch import BatchResult

    started = time.perf_counter()
    payload = json.dumps({"src": src, "out": out, "to": to, "settings": settings})
    proc = subprocess.Popen([sys.executable, "-c", "from portable.distributed import _child; _child()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        from ._io import remove_leftovers

        remove_leftovers(out)
        return BatchResult(model=src, output=None, seconds=round(time.perf_counter() - started, 3),
                           error=f"timed out after {timeout:g} s; its process was stopped and the other files "
                                 "went on")
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith(_RESULT)), None)
    if proc.returncode != 0 or line is None:
        code = proc.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        last = (stderr.strip().splitlines() or [""])[-1][:300]
        return BatchResult(model=src, output=None, seconds=round(time.perf_counter() - started, 3),
                           error=f"the conversion crashed its process ({how}){': ' + last if last else ''}; "
                                 "the other files were not affected")
    return BatchResult(**json.loads(line[len(_RESULT):]))


def _child() -> None:
    """The child process of `convert_isolated`: one file, its BatchResult as a JSON line on stdout."""
    import json
    import sys
    import warnings
    from dataclasses import asdict

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from .batch import convert_one

    task = json.loads(sys.stdin.read())
    from .batch import _limit_memory

    _limit_memory(task["settings"].get("memory_limit") or 0)  # --memory-limit, as the local workers have it
    result = convert_one(task["src"], task["out"], task["to"], task["settings"])
    sys.stdout.write("\n" + _RESULT + json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()
