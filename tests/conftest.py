"""Settings for the whole test session.

The suite runs in pytest-xdist workers (pyproject's addopts: `-n auto`, one worker per core, and `--dist loadfile`:
each test file stays in one worker, so a module-scoped fixture — the ONNX node sweep, the Dask cluster, a served
model — is built once, as in a serial run). Each worker's native thread pools (OpenMP: HistGradientBoosting,
LightGBM, XGBoost, torch; BLAS) get the worker's share of the cores, so N workers on N cores do not oversubscribe
them (OpenMP's spinning threads would otherwise take the other worker's core). The variables are set before any
test module imports numpy, in this process only (and the subprocesses its tests start); a variable already set by
the caller is kept. Without xdist (`-p no:xdist` or `-n 0`) nothing changes.
"""
from __future__ import annotations

import os


def _worker_threads() -> int | None:
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not os.environ.get("PYTEST_XDIST_WORKER") or not workers:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(workers)))


_THREADS = _worker_threads()
if _THREADS is not None:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_THREADS))



def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per CPU this process may run on (xdist would count psutil's physical cores, which
    ignores the CPU affinity and counts one core of a 2-vCPU hyperthreaded machine). PYTEST_XDIST_AUTO_NUM_WORKERS
    still decides when it is set."""
    env = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

# The files whose tests took longest (the full suite's --durations in 2 workers, 2026-12-06), most first. They are
# started first so that no long file is left for the end while the other worker idles (xdist's own order, most
# tests first, put the one-test subprocess files — deterministic builds, the loader fuzz — last). A file not listed
# follows, most tests first; the list only orders the run, it selects nothing.
_SLOW_FILES = (
    "test_stream.py", "test_batch_isolation.py", "test_hostile_inputs.py", "test_batch.py", "test_readme.py",
    "test_safety_internals.py", "test_isolation.py", "test_check_categories.py", "test_nnef_node_cases.py",
    "test_serve.py", "test_deterministic.py", "test_safety_memory.py", "test_notebooks.py", "test_check_findings.py",
    "test_cli.py", "test_skl2onnx_isolation.py", "test_safety.py", "test_safety_fuzz.py",
)


def pytest_collection_modifyitems(session, config, items) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a serial run keeps pytest's order
    files = [item.nodeid.split("::", 1)[0] for item in items]
    counts: dict[str, int] = {}
    for f in files:
        counts[f] = counts.get(f, 0) + 1

    def key(f: str) -> tuple:
        name = f.rsplit("/", 1)[-1]
        return (0, _SLOW_FILES.index(name), f) if name in _SLOW_FILES else (1, -counts[f], f)

    order = sorted(range(len(items)), key=lambda i: key(files[i]))  # stable: a file's tests keep their order
    items[:] = [items[i] for i in order]
