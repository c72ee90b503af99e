"""Whole folders: convert every model a folder holds, in parallel, check each, and summarise.

Each file runs in a worker process (a spawned pool, so that onnxruntime's threads never cross a fork); a model that
fails is reported with its reason and the others go on.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from .errors import PortableError

DEFAULT_TIMEOUT = 300.0  # seconds one file may take before its worker is stopped
STARTUP_ALLOWANCE = 300.0  # seconds a fresh worker may take to import portable before its file's clock starts
#: Address space one worker may use (`--memory-limit`, `memory_limit=`; 0 = no limit). A worker that needs more
#: fails its file with "ran out of memory" and is replaced; the other files go on. A worker needs about 1 GiB
#: for its libraries alone (scikit-learn, onnxruntime, ...), so limits below `MIN_MEMORY_LIMIT` are refused.
DEFAULT_MEMORY_LIMIT = 8 << 30
MIN_MEMORY_LIMIT = 512 << 20
_OOM = "ran out of memory"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def memory_limit_bytes(value: Any, name: str = "memory_limit") -> int:
    """`8G`, `512M`, `1.5GiB`, a number of bytes, or 0 (no limit) -> bytes; PortableError naming `name` otherwise.
    Units are binary (1G = 2**30 bytes)."""
    import re

    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)) and value == value and value not in (float("inf"), float("-inf")):
        n = value
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)) \
            and m.group(2).lower() in _UNITS:
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise PortableError(f"{name} must be a size such as 8G, 512M or a number of bytes (0: no limit), not "
                            f"{value!r}")
    n = int(n)
    if n < 0 or (0 < n < MIN_MEMORY_LIMIT):
        raise PortableError(f"{name} must be 0 (no limit) or at least {MIN_MEMORY_LIMIT >> 20} MiB (a worker needs "
                            f"about 1 GiB for its libraries), not {value!r}")
    return n


def _size(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"



@dataclass
class BatchResult:
    """One row of the summary."""

    model: str
    output: str | None
    route: str = ""
    verdict: str = "failed"  # equivalent | NOT equivalent | not checked | failed
    max_error: float | None = None
    seconds: float = 0.0
    error: str | None = None


def discover(folder: Path, *, exclude: Path | None = None) -> list[Path]:
    """Files and NNEF folders below `folder` that some format's extension claims (sorted)."""
    from .registry import REGISTRY

    exts = sorted({e for f in REGISTRY.formats.values() for e in f.extensions}, key=len, reverse=True)
    found: list[Path] = []
    skip = [Path(os.path.realpath(exclude))] if exclude is not None else []
    for p in sorted(folder.rglob("*")):
        real = Path(os.path.realpath(p))
        if any(real == x or x in real.parents for x in skip):
            continue  # the batch's own output folder (however it is spelled), or an earlier batch's
        if p.is_dir() and (p / "summary.json").is_file() and _is_summary(p / "summary.json"):
            skip.append(real)
            continue
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if p.is_dir():
            if (p / "graph.nnef").is_file():
                found.append(p)
            continue
        if any(parent in found for parent in p.parents):
            continue
        if p.name == "summary.json":
            continue
        if any(p.name.lower().endswith(e) for e in exts):
            found.append(p)
    return found


def _is_summary(path: Path) -> bool:
    """A summary.json that a folder batch wrote (its folder holds converted files, not sources)."""
    try:
        if path.stat().st_size > 1 << 26:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"source", "target", "models"} <= set(data)


def outputs_for(files: list[Path], folder: Path, out_dir: Path, to: str) -> list[Path]:
    """`out/<relative stem><target suffix>`; where two sources share a stem (a.pkl, a.joblib) the source's
    extension stays in the name (a.pkl.onnx, a.joblib.onnx)."""
    from ._io import TARGET_SUFFIX, target_path

    rels = [f.relative_to(folder) for f in files]
    plain = [target_path(r, to) for r in rels]
    return [out_dir / (Path(f"{r}{TARGET_SUFFIX.get(to, '.' + to)}") if plain.count(t) > 1 else t)
            for r, t in zip(rels, plain)]


def convert_one(src: str, out: str, to: str, settings: dict[str, Any]) -> BatchResult:
    """Convert one file (runs in a worker process)."""
    from . import api

    started = time.perf_counter()
    result = BatchResult(model=src, output=None)
    try:
        art = api.convert(src, to=to, dtype=settings["dtype"], check=settings["check"],
                          samples=settings["samples"], seed=settings["seed"], trust=tuple(settings["trust"]))
        result.route = " -> ".join(art.route)
        rep = art.report
        if rep is None:
            result.verdict = "not checked"
        else:
            result.verdict = "equivalent" if rep.equivalent else "NOT equivalent"
            diffs = [o.get("max_abs_diff") for o in rep.to_dict().get("outputs", [])]
            nums = [d for d in diffs if isinstance(d, (int, float))]
            result.max_error = max(nums) if nums else None
        if rep is None or rep.equivalent or settings["keep_failed"]:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            art.save(out, force=settings["force"])
            result.output = out
    except MemoryError:
        result.error = _out_of_memory(settings)
    except PortableError as exc:
        result.error = _out_of_memory(settings) + f" ({exc})" if _memory_failure(exc) else str(exc)
    except Exception as exc:  # one broken model must not stop the batch; say what happened
        result.error = f"unexpected {type(exc).__name__}: {exc}"
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _memory_failure(exc: BaseException) -> bool:
    """A PortableError that wraps an allocation failure (the loader's, onnxruntime's, ...)."""
    text = str(exc)
    return "MemoryError" in text or "bad_alloc" in text or "Failed to allocate memory" in text \
        or "Unable to allocate" in text


def _out_of_memory(settings: dict[str, Any]) -> str:
    limit = settings.get("memory_limit") or 0
    where = (f"the worker converting this file is limited to {_size(limit)} of address space (--memory-limit)"
             if limit else "the machine has no more memory for this file")
    return f"{_OOM}: {where}; its worker was replaced and the other files were not affected"


def convert_folder(folder: Path, to: str, out_dir: Path, *, jobs: int = 1, dtype: str = "auto",
                   check: bool = True, samples: int = 1000, seed: int = 0, trust: tuple[str, ...] = (),
                   force: bool = False, keep_failed: bool = False, progress: Any = None,
                   dask: Any = None, timeout: float = DEFAULT_TIMEOUT,
                   memory_limit: Any = DEFAULT_MEMORY_LIMIT) -> list[BatchResult]:
    """Convert every recognised model below `folder` into `out_dir`; write `out_dir/summary.json`.

    Each file is converted in a worker process (`jobs` of them, reused from file to file): a file whose
    conversion crashes the interpreter (a segfault in a library) or runs longer than `timeout` seconds has its
    worker stopped and replaced, is reported as failed with the reason, and never fails another file. Each
    worker's address space is limited to `memory_limit` (bytes, or a size such as "4G"; 0: no limit; default
    `DEFAULT_MEMORY_LIMIT`, 8 GiB): a file that needs more fails with "ran out of memory" and its worker is
    replaced. The worker that runs an original pickle for the check gets the same limit.
    `summary.json` is written on every exit path (an interrupted batch lists the files it did not reach).

    `dask` (a scheduler address, `local[:N]` or a Client) runs one Dask task per file instead of the local
    workers (`portable.distributed.convert_on_dask`).

    Raises:
        PortableError: the folder is missing or holds no model; the summary exists and `force` is not set; the
            output folder is the source folder.
    """
    from . import _args

    folder, out_dir = Path(folder), Path(out_dir)
    jobs = _args.integer("jobs", jobs, minimum=1)
    samples, seed, trust = _args.samples(samples), _args.seed(seed), _args.trust(trust)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise PortableError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    memory_limit = memory_limit_bytes(memory_limit)
    if not folder.is_dir():
        raise PortableError("not a folder", path=folder)
    if out_dir.resolve() == folder.resolve():
        raise PortableError("the output folder is the source folder; converted files would mix with (and could "
                            "overwrite) the sources, so choose another -o", path=out_dir)
    if out_dir.is_file():
        raise PortableError("the output for a folder must be a folder, and this is a file", path=out_dir)
    files = discover(folder, exclude=out_dir)
    if not files:
        raise PortableError("no file that portable recognises in this folder", path=folder)
    summary = out_dir / "summary.json"
    if os.path.lexists(summary) and not force:
        raise PortableError("the output folder already holds a summary.json; pass --force to convert again",
                            path=out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PortableError(f"cannot create the output folder ({exc.strerror or exc})", path=out_dir) from None
    settings = dict(dtype=dtype, check=check, samples=samples, seed=seed, trust=list(trust), force=force,
                    keep_failed=keep_failed, memory_limit=memory_limit)
    outs = outputs_for(files, folder, out_dir, to)
    sources = {f.resolve() for f in files}
    tasks = [(str(f), str(o)) for f, o in zip(files, outs)]
    results: dict[str, BatchResult] = {}
    for f, o in zip(files, outs):  # an output that would replace a source (possible with -o pointing at sources)
        if o.resolve() in sources:
            results[str(f)] = BatchResult(model=str(f), output=None,
                                          error=f"{o}: the output would overwrite a source file; not converted")
    todo = [t for t in tasks if t[0] not in results]
    try:
        if dask is not None:
            from .distributed import convert_on_dask

            results.update(convert_on_dask(todo, to, settings, dask, timeout=timeout, progress=progress))
        else:
            _run_pool(todo, to, settings, jobs, timeout, results, progress, len(tasks))
    finally:
        ordered = [results.get(src) or BatchResult(model=src, output=None,
                                                    error="not converted: the batch was interrupted")
                   for src, _ in tasks]
        from ._io import atomic_write_bytes

        payload = {"source": str(folder), "target": to, "models": [asdict(r) for r in ordered],
                   "counts": counts(ordered)}
        atomic_write_bytes(summary, json.dumps(payload, indent=2).encode(), force=True)
    return ordered



def _limit_memory(limit: int) -> None:
    """Limit this process's address space to `limit` bytes (soft limit; the hard limit stays, so the worker that
    runs an original pickle sets its own); the original model's worker gets the same limit unless the user set
    PORTABLE_ORIGINAL_MEMORY."""
    if not limit:
        return
    os.environ.setdefault("PORTABLE_ORIGINAL_MEMORY", str(limit))
    try:
        import resource
    except ImportError:  # not on this platform: the limit cannot be applied
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def _worker_main(conn: Any, limits: dict[str, int], memory_limit: int = 0) -> None:
    """A worker process: converts the files it is sent, one at a time, until told to stop."""
    import signal

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM while unwinding ends the process quietly
        raise SystemExit(128 + signum)  # so that a stopped worker removes its temporary files

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        _worker_loop(conn, limits, memory_limit)
    finally:
        # however the worker ends (told to stop, a SIGTERM, an error), a SIGTERM during the interpreter's exit
        # must not raise SystemExit inside an atexit callback (logging's shutdown printed a traceback)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _worker_loop(conn: Any, limits: dict[str, int], memory_limit: int) -> None:
    _limit_memory(memory_limit)
    from .limits import LIMITS

    LIMITS.set(**limits)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from . import api

    # the registry (with plugins) and the libraries of the usual routes load before the first file's clock
    # starts: --timeout measures a file's conversion, not a worker's start-up
    api.list_formats()
    import importlib

    for name in ("sklearn", "onnx", "onnxruntime", "skl2onnx"):
        try:
            importlib.import_module(name)
        except Exception:  # an optional library: the conversion that needs it says so
            pass
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            task = None
        if task is None:  # no file in progress: told to stop
            return
        src, out, to, settings = task
        conn.send("started")
        result = convert_one(src, out, to, settings)
        conn.send(result)
        if result.error is not None and result.error.startswith(_OOM):
            return  # a process that ran out of memory may be left in a bad state: the batch starts a new one


class _Worker:
    def __init__(self, ctx: Any, limits: dict[str, int], memory_limit: int = 0) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, limits, memory_limit), daemon=True)
        self.proc.start()
        child.close()
        self.task: tuple[str, str] | None = None
        self.deadline = 0.0
        self.started = 0.0

    def send(self, task: tuple[str, str], to: str, settings: dict[str, Any], timeout: float) -> None:
        self.task = task
        self.started = time.monotonic()
        self.deadline = self.started + timeout + STARTUP_ALLOWANCE  # until the worker says it started the file
        self.conn.send((task[0], task[1], to, settings))

    def stop(self, grace: float = 2.0, asked: bool = False) -> None:
        if asked:  # told to stop (None sent): it is exiting, let it finish before any signal
            self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.terminate()  # SIGTERM first: the worker removes its temporary files
            self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(grace)
        self.conn.close()


def _died(code: int | None, memory_limit: int = 0) -> str:
    import signal

    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = {"SIGSEGV": "a segmentation fault", "SIGBUS": "a bus error", "SIGABRT": "an abort",
                "SIGKILL": "SIGKILL (out of memory?)", "SIGFPE": "a floating-point exception",
                "SIGILL": "an illegal instruction"}.get(name, name)
        oom = (f"; a library that cannot allocate memory may also abort like this (the worker is limited to "
               f"{_size(memory_limit)}, --memory-limit)" if memory_limit and name in ("SIGABRT", "SIGSEGV", "SIGKILL")
               else "")
        return f"the conversion crashed the worker process ({what}, {name}); portable's own code never does that, " \
               f"so a library crashed on this model{oom} (other files were not affected)"
    return f"the worker process converting this file exited unexpectedly (exit code {code}); other files were " \
           "not affected"


def _run_pool(tasks: list[tuple[str, str]], to: str, settings: dict[str, Any], jobs: int, timeout: float,
              results: dict[str, BatchResult], progress: Any, total: int) -> None:
    import dataclasses
    from collections import deque
    from multiprocessing.connection import wait

    from .limits import LIMITS

    ctx = get_context("spawn")  # never fork: onnxruntime's threads must not cross a fork
    limits = dataclasses.asdict(LIMITS)
    pending = deque(tasks)
    idle: list[_Worker] = []
    busy: list[_Worker] = []

    def finish(w: _Worker, result: BatchResult) -> None:
        assert w.task is not None
        results[w.task[0]] = result
        w.task = None
        busy.remove(w)
        if progress:
            progress(len(results), total)

    try:
        while pending or busy:
            while pending and len(busy) < jobs:
                while idle and not idle[-1].proc.is_alive():  # it ran out of memory and exited: replace it
                    idle.pop().stop()
                w = idle.pop() if idle else _Worker(ctx, limits, settings.get("memory_limit") or 0)
                w.send(pending.popleft(), to, settings, timeout)
                busy.append(w)
            now = time.monotonic()
            wait_for = max(0.0, min(w.deadline for w in busy) - now) if busy else 0.0
            wait([x for w in busy for x in (w.conn, w.proc.sentinel)], timeout=min(wait_for, 5.0) + 0.01)
            for w in list(busy):
                src, out = w.task  # type: ignore[misc]
                if w.conn.poll():
                    try:
                        result = w.conn.recv()
                        if result == "started":  # the file's own clock starts now (imports are not its time)
                            w.started = time.monotonic()
                            w.deadline = w.started + timeout
                            if not w.conn.poll():
                                continue
                            result = w.conn.recv()
                    except (EOFError, OSError):
                        w.proc.join(5)
                        result = BatchResult(model=src, output=None, error=_died(w.proc.exitcode, settings.get("memory_limit") or 0),
                                             seconds=round(time.monotonic() - w.started, 3))
                        finish(w, result)
                        w.stop()
                        continue
                    finish(w, result)
                    if isinstance(result, BatchResult) and (result.error or "").startswith(_OOM):
                        w.stop()  # it exits after running out of memory; the next file gets a fresh worker
                    else:
                        idle.append(w)
                elif not w.proc.is_alive():
                    result = BatchResult(model=src, output=None, error=_died(w.proc.exitcode, settings.get("memory_limit") or 0),
                                         seconds=round(time.monotonic() - w.started, 3))
                    finish(w, result)
                    w.stop()
                elif time.monotonic() > w.deadline:
                    w.stop()
                    from ._io import remove_leftovers

                    remove_leftovers(out)
                    finish(w, BatchResult(model=src, output=None, seconds=round(time.monotonic() - w.started, 3),
                                          error=f"timed out after {timeout:g} s (--timeout); the worker was "
                                                "stopped and the other files went on"))
    finally:
        for w in idle + busy:
            asked = False
            try:
                if w.proc.is_alive() and not w.conn.closed:
                    w.conn.send(None)
                    asked = w in idle
            except (OSError, ValueError):
                pass
            w.stop(grace=5.0 if w in idle else 2.0, asked=asked)


def counts(results: list[BatchResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        key = r.verdict if r.error is None else "failed"
        out[key] = out.get(key, 0) + 1
    return out
