"""Whole folders: convert every model a folder holds, in parallel, check each, and summarise.

Each file runs in a worker process (a spawned pool, so that onnxruntime's threads never cross a fork); a model that
fails is reported with its reason and the others go on.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from .errors import PortableError



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
    for p in sorted(folder.rglob("*")):
        if exclude is not None and (p == exclude or exclude in p.parents):
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
    except PortableError as exc:
        result.error = str(exc)
    except Exception as exc:  # one broken model must not stop the batch; say what happened
        result.error = f"unexpected {type(exc).__name__}: {exc}"
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def convert_folder(folder: Path, to: str, out_dir: Path, *, jobs: int = 1, dtype: str = "auto",
                   check: bool = True, samples: int = 1000, seed: int = 0, trust: tuple[str, ...] = (),
                   force: bool = False, keep_failed: bool = False, progress: Any = None,
                   dask: Any = None) -> list[BatchResult]:
    """Convert every recognised model below `folder` into `out_dir`; write `out_dir/summary.json`.

    `dask` (a scheduler address, `local[:N]` or a Client) runs one Dask task per file instead of a local pool
    (`portable.distributed.convert_on_dask`).

    Raises:
        PortableError: the folder is missing or holds no model; the summary exists and `force` is not set.
    """
    if not folder.is_dir():
        raise PortableError("not a folder", path=folder)
    files = discover(folder, exclude=out_dir.resolve() if out_dir.resolve().is_relative_to(folder.resolve())
                     else None)
    if not files:
        raise PortableError("no file that portable recognises in this folder", path=folder)
    summary = out_dir / "summary.json"
    if summary.exists() and not force:
        raise PortableError("the output folder already holds a summary.json; pass --force to convert again",
                            path=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = dict(dtype=dtype, check=check, samples=samples, seed=seed, trust=list(trust), force=force,
                    keep_failed=keep_failed)
    tasks = [(str(f), str(o)) for f, o in zip(files, outputs_for(files, folder, out_dir, to))]
    results: dict[str, BatchResult] = {}
    if dask is not None:
        from .distributed import convert_on_dask

        results = convert_on_dask(tasks, to, settings, dask, progress=progress)
    elif jobs <= 1:
        for i, (src, out) in enumerate(tasks):
            results[src] = convert_one(src, out, to, settings)
            if progress:
                progress(i + 1, len(tasks))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(convert_one, src, out, to, settings): src for src, out in tasks}
            for i, fut in enumerate(as_completed(futures)):
                src = futures[fut]
                try:
                    results[src] = fut.result()
                except Exception as exc:  # a worker died (e.g. a native crash): report it, keep going
                    results[src] = BatchResult(model=src, output=None, error=f"worker failed: {exc}")
                if progress:
                    progress(i + 1, len(tasks))
    ordered = [results[src] for src, _ in tasks]
    from ._io import atomic_write_bytes

    payload = {"source": str(folder), "target": to, "models": [asdict(r) for r in ordered],
               "counts": counts(ordered)}
    atomic_write_bytes(summary, json.dumps(payload, indent=2).encode(), force=True)
    return ordered


def counts(results: list[BatchResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        key = r.verdict if r.error is None else "failed"
        out[key] = out.get(key, 0) + 1
    return out
