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
