"""Checking every row of production-size data: chunk by chunk, with bounded memory, and one merged report.

`check_stream` accepts a Parquet, CSV or .npy file (memory-mapped), a folder or glob of them, a pyarrow Dataset, a pandas
DataFrame (with `chunk_rows`) or a Dask DataFrame. It

1. reads a bounded, stratified sample of the data (the first rows of up to `SAMPLE_PARTS` evenly spaced files)
   and runs the ordinary check (`portable.equivalence.check`) on generated rows plus that sample: the sample's
   ranges guide generation, and the tolerance of each numeric output is fixed there (its absolute value);
2. splits the data into tasks (a Parquet file's row groups, a CSV file, a Dataset fragment, a Dask partition),
   reads each task in chunks of `chunk_rows` rows, runs both models on every row and compares them with the
   fixed tolerances, keeping only counts, maxima, a histogram and the few worst rows (`Partial`);
3. merges the partial results (the merge does not depend on how the data was chunked, so streaming and Dask
   give the same counts) into a `StreamReport`.

Memory is bounded by `chunk_rows` (and, for Parquet, by a file's row-group size: pyarrow decodes a row group
at a time). Rows are numbered from 0 within their file (row 0 is the first data row; a CSV's header is not a row) or
within their Dask partition. A task that cannot be read (a corrupt file, a worker lost more often than Dask
allows) is named in `report.data["unread"]` with the rows it holds, and the verdict is then *not* equivalent:
the report never claims equivalence on fewer rows than the data holds (`report.complete` is False and the
command line exits with 1). Rows the original model itself rejects are counted and noted, not compared.

On Dask (`portable.distributed`), each worker loads both models once per check, by path through the same safe
loader (an in-memory model travels by pickle only when the caller passed the object itself).
"""
from __future__ import annotations

import glob as globlib
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PortableError, shorten
from ..limits import LimitError, check_data_columns
from ..model import Model
from . import stops_at_limits
from .compare import compare as compare_outputs
from .compare import excuse_tied, failing_rows, match_outputs, scores_named
from .inputs import InputSlot, data_arrays, feed, match_inputs
from .report import HIST_EDGES, HIST_LABELS, Report, decade_counts

CHUNK_ROWS = 100_000  # rows read, run and compared at a time (per worker)
SAMPLE_ROWS = 2_000   # rows of the data the generated-row check sees (ranges, tolerances)
SAMPLE_PARTS = 8      # the sample comes from up to this many evenly spaced files/partitions
KEEP = 3              # worst rows kept per output, and data counterexamples in the report
PROBES = 256          # model calls per chunk spent finding the rows a model rejects (bisection)
DATA_SUFFIXES = (".parquet", ".pq", ".parq", ".csv", ".npy")


# ---- where the rows are --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One file, Dataset fragment or DataFrame partition of the data."""

    index: int
    name: str
    kind: str  # parquet | csv | fragment | frame | dask
    rows: int | None  # None when unknown before reading (CSV, Dask partitions, an unreadable footer)


@dataclass(frozen=True)
class Task:
    """A unit of work: some rows of one part (row groups of a Parquet file, or all of it)."""

    part: Part
    first_row: int = 0
    rows: int | None = None
    row_groups: tuple[int, ...] | None = None

    @property
    def where(self) -> str:
        if self.rows is None:
            return self.part.name if self.first_row == 0 else f"{self.part.name} from row {self.first_row}"
        return f"{self.part.name} rows {self.first_row}-{self.first_row + self.rows - 1}"


class Source:
    """Parts of the data, how they split into tasks, how a task is read in chunks, and a sample."""

    parts: list[Part]
    description: str = ""

    def tasks(self, chunk_rows: int) -> list[Task]:
        return [Task(p, 0, p.rows) for p in self.parts]

    def read(self, task: Task, chunk_rows: int) -> Iterator[tuple[int, Any]]:  # (first row, pandas DataFrame)
        raise NotImplementedError

    def head(self, part: Part, rows: int) -> Any:
        """The first `rows` rows of a part as a pandas DataFrame."""
        for _, frame in self.read(Task(part, 0, part.rows), rows):
            return frame.iloc[:rows]
        return None

    def sample(self, rows: int) -> Any:
        """Up to `rows` rows: the first rows of up to SAMPLE_PARTS evenly spaced parts that can be read."""
        import pandas as pd

        n = len(self.parts)
        if n == 0:
            return None
        picks = sorted({round(i * (n - 1) / max(1, min(n, SAMPLE_PARTS) - 1)) for i in range(min(n, SAMPLE_PARTS))})
        per = max(1, math.ceil(rows / len(picks)))
        frames, errors = [], []
        tried = set()
        for i in picks + [i for i in range(n) if i not in picks]:
            if len(frames) >= len(picks) or len(tried) >= len(picks) + 8:
                break
            tried.add(i)
            try:
                f = self.head(self.parts[i], per)
            except LimitError:
                raise  # a limit reached names itself; it is not a part to skip
            except Exception as exc:
                errors.append(f"{self.parts[i].name}: {_error(exc)}")
                continue
            if f is not None and len(f):
                frames.append(f.reset_index(drop=True))
        if not frames:
            raise PortableError("no rows could be read from the data" + (f" ({errors[0]})" if errors else ""),
                                path=self.description or None)
        return pd.concat(frames, ignore_index=True).iloc[:rows]


class FileSource(Source):
    """Parquet and CSV files (a file, a folder searched recursively, or a glob)."""

    def __init__(self, paths: list[Path], description: str) -> None:
        self.description = description
        self.parts = []
        for i, p in enumerate(paths):
            kind = {".csv": "csv", ".npy": "npy"}.get(p.suffix.lower(), "parquet")
            rows = None
            if kind == "npy":
                try:
                    rows = int(np.load(p, mmap_mode="r", allow_pickle=False).shape[0])
                except Exception:
                    rows = None
            if kind == "parquet":
                try:
                    import pyarrow.parquet as pq

                    rows = pq.ParquetFile(p).metadata.num_rows
                except Exception:
                    rows = None  # read (and named as unread) by its task
            self.parts.append(Part(i, str(p), kind, rows))
        self._groups: dict[str, list[int]] = {}

    def tasks(self, chunk_rows: int) -> list[Task]:
        import pyarrow.parquet as pq

        out = []
        for p in self.parts:
            if p.kind != "parquet" or p.rows is None:
                out.append(Task(p, 0, p.rows))
                continue
            try:
                meta = pq.ParquetFile(p.name).metadata
                sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            except Exception:
                out.append(Task(p, 0, p.rows))
                continue
            # consecutive row groups, at least `chunk_rows` rows per task (a big file becomes several tasks)
            first, groups, count = 0, [], 0
            for g, size in enumerate(sizes):
                groups.append(g)
                count += size
                if count >= chunk_rows:
                    out.append(Task(p, first, count, tuple(groups)))
                    first += count
                    groups, count = [], 0
            if groups or not out or out[-1].part != p:
                out.append(Task(p, first, count, tuple(groups)))
        return out

    def read(self, task: Task, chunk_rows: int) -> Iterator[tuple[int, Any]]:
        path = task.part.name
        if task.part.kind == "npy":  # memory-mapped: a chunk is read when it is sliced
            import pandas as pd

            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            for start in range(0, len(arr), chunk_rows):
                yield start, pd.DataFrame(np.asarray(arr[start:start + chunk_rows]).reshape(
                    min(chunk_rows, len(arr) - start), -1))
            return
        if task.part.kind in ("csv", "parquet"):
            check_data_columns(path)
        if task.part.kind == "csv":
            import pandas as pd

            row = 0
            with pd.read_csv(path, chunksize=chunk_rows) as reader:
                for frame in reader:
                    yield row, frame
                    row += len(frame)
            return
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as f:
            row = task.first_row
            groups = list(task.row_groups) if task.row_groups is not None else None
            for batch in f.iter_batches(batch_size=chunk_rows, row_groups=groups):
                yield row, batch.to_pandas()
                row += batch.num_rows


class DatasetSource(Source):
    """A pyarrow Dataset: one part per fragment."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.description = "pyarrow dataset"
        self.fragments = list(dataset.get_fragments())
        self.parts = []
        for i, frag in enumerate(self.fragments):
            try:
                rows = frag.count_rows()
            except Exception:
                rows = None
            self.parts.append(Part(i, str(getattr(frag, "path", f"fragment {i}")), "fragment", rows))

    def read(self, task: Task, chunk_rows: int) -> Iterator[tuple[int, Any]]:
        row = 0
        for batch in self.fragments[task.part.index].to_batches(schema=self.dataset.schema, batch_size=chunk_rows):
            if batch.num_rows:
                yield row, batch.to_pandas()
                row += batch.num_rows


class FrameSource(Source):
    """An in-memory pandas DataFrame (or a pyarrow Table), read in chunks."""

    def __init__(self, frame: Any) -> None:
        if not hasattr(frame, "iloc"):
            frame = frame.to_pandas()
        self.frame = frame
        self.description = "DataFrame"
        self.parts = [Part(0, "DataFrame", "frame", len(frame))]

    def tasks(self, chunk_rows: int) -> list[Task]:  # one task per chunk (in parallel on Dask)
        part = self.parts[0]
        return [Task(part, s, min(chunk_rows, len(self.frame) - s)) for s in range(0, len(self.frame), chunk_rows)]

    def read(self, task: Task, chunk_rows: int) -> Iterator[tuple[int, Any]]:
        end = len(self.frame) if task.rows is None else task.first_row + task.rows
        for start in range(task.first_row, end, chunk_rows):
            yield start, self.frame.iloc[start:min(start + chunk_rows, end)]


class DaskSource(Source):
    """A Dask DataFrame: one part per partition (its length is known once it is computed)."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.description = "Dask DataFrame"
        self.parts = [Part(i, f"partition {i}", "dask", None) for i in range(frame.npartitions)]

    def read(self, task: Task, chunk_rows: int) -> Iterator[tuple[int, Any]]:
        whole = self.frame.get_partition(task.part.index).compute()
        for start in range(0, len(whole), chunk_rows):
            yield start, whole.iloc[start:start + chunk_rows]

    def head(self, part: Part, rows: int) -> Any:
        return self.frame.get_partition(part.index).head(rows, npartitions=1, compute=True)


def is_stream(data: Any) -> bool:
    """Whether `data` names rows to stream (a path, folder or glob; a pyarrow Dataset; a Dask DataFrame)."""
    if isinstance(data, (str, os.PathLike)):
        return True
    mod = type(data).__module__ or ""
    return mod.startswith(("pyarrow.dataset", "pyarrow._dataset", "dask.dataframe", "dask_expr"))


def open_data(data: Any) -> Source:
    """A `Source` for anything `check_stream` accepts; PortableError naming the path when it holds no data."""
    if isinstance(data, (str, os.PathLike)):
        return FileSource(_files(str(data)), str(data))
    mod = type(data).__module__ or ""
    if mod.startswith(("pyarrow.dataset", "pyarrow._dataset")):
        return DatasetSource(data)
    if mod.startswith(("dask.dataframe", "dask_expr")):
        return DaskSource(data)
    if hasattr(data, "iloc") or mod.startswith("pyarrow"):
        return FrameSource(data)
    raise PortableError(f"data= must be a Parquet/CSV path, folder or glob, a pyarrow Dataset, or a (Dask) "
                        f"DataFrame for a chunked check, not {type(data).__name__}")


def _files(spec: str) -> list[Path]:
    from .._io import check_name_lengths

    p = Path(spec)
    check_name_lengths(p)
    if p.is_file():
        if p.suffix.lower() not in DATA_SUFFIXES:
            raise PortableError("a data file for a chunked check must be .parquet, .csv or .npy", path=p)
        return [p]
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in DATA_SUFFIXES
                       and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts))
        if not found:
            raise PortableError("the folder holds no .parquet, .csv or .npy file", path=p)
        return found
    if any(c in spec for c in "*?["):
        found = sorted(Path(f) for f in globlib.glob(spec, recursive=True)
                       if Path(f).is_file() and Path(f).suffix.lower() in DATA_SUFFIXES)
        if not found:
            raise PortableError("the pattern matches no .parquet, .csv or .npy file", path=spec)
        return found
    if p.exists():  # a pipe or a device: named, never opened
        from ..limits import check_regular

        check_regular(p, folders=True)
    from .._io import why_missing

    raise PortableError(f"no such data file or folder: {why_missing(p)}" if os.path.lexists(p) else
                        "no such data file or folder", path=p)


# ---- what a task returns ------------------------------------------------------------------------------------

@dataclass
class OutputStats:
    """One output's comparison over some rows: counts, maxima, histogram and worst rows."""

    mismatches: int = 0
    near_ties: int = 0
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    hist: list[int] = field(default_factory=lambda: [0] * (len(HIST_EDGES) - 1))
    worst: list[dict[str, Any]] = field(default_factory=list)  # severity, part, row, file (+ values when bad)
    error: str | None = None

    def merge(self, o: "OutputStats") -> None:
        self.mismatches += o.mismatches
        self.near_ties += o.near_ties
        self.max_abs_diff = _max(self.max_abs_diff, o.max_abs_diff)
        self.max_rel_diff = _max(self.max_rel_diff, o.max_rel_diff)
        self.hist = [a + b for a, b in zip(self.hist, o.hist)]
        self.worst = _top(self.worst + o.worst)
        self.error = self.error or o.error


@dataclass
class Partial:
    """What checking some rows found. `merge` is associative and ignores chunk boundaries."""

    rows_read: int = 0
    rows_checked: int = 0
    original_rejects: int = 0
    converted_rejects: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)  # examples: file, row, which model, error
    outputs: dict[str, OutputStats] = field(default_factory=dict)
    unread: list[dict[str, Any]] = field(default_factory=list)  # part, first_row, rows (None: unknown), error
    parts_read: dict[int, int] = field(default_factory=dict)  # part index -> rows read
    approximate: int = 0  # rows counted as rejected without finding each one (PROBES ran out)
    loads: dict[str, int] = field(default_factory=dict)  # process -> times it loaded the models
    tasks: int = 0

    def merge(self, o: "Partial") -> "Partial":
        self.rows_read += o.rows_read
        self.rows_checked += o.rows_checked
        self.original_rejects += o.original_rejects
        self.converted_rejects += o.converted_rejects
        self.rejects = sorted(self.rejects + o.rejects, key=lambda r: (r["part"], r["row"]))[:KEEP]
        for name, stats in o.outputs.items():
            self.outputs.setdefault(name, OutputStats()).merge(stats)
        self.unread += o.unread
        for k, v in o.parts_read.items():
            self.parts_read[k] = self.parts_read.get(k, 0) + v
        self.approximate += o.approximate
        for k, v in o.loads.items():
            self.loads[k] = self.loads.get(k, 0) + v
        self.tasks += o.tasks
        return self


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return max(a, b)


def _top(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The KEEP worst entries; ties go to the earliest file and row, so the result does not depend on chunks."""
    return sorted(entries, key=lambda e: (-e["severity"], e["part"], e["row"]))[:KEEP]


# ---- running a task ------------------------------------------------------------------------------------------

@dataclass
class Spec:
    """Everything a worker needs to check a task; small, and free of loaded models (see `context`)."""

    token: str
    original: Any  # a path (loaded by the worker through portable.load) or the object the caller passed
    converted: Any
    trust: tuple[str, ...]
    head: Any  # a few sample rows: a scikit-learn model fitted on a DataFrame learns its string columns there
    outputs: list[tuple[str, str]]
    slots: list[InputSlot]
    tolerances: dict[str, tuple[float | None, float | None]]
    chunk_rows: int
    source: Source | None = None


@dataclass
class Context:
    """A spec with both models loaded, and what the original's hints say about judging its rows."""

    spec: Spec
    original: Model
    converted: Model
    sizes: dict[str, int | None] = field(default_factory=dict)  # a model's fixed batch size, by role
    decision: Any = None  # the quantity the original's label follows (`portable.hints.Decision`)
    ties: Any = None  # rows the original's own result decides by a tie (`InputHints.ties`)

    def __post_init__(self) -> None:
        from .inputs import model_hints

        for role, model in (("original", self.original), ("converted", self.converted)):
            h = model_hints(model)
            self.sizes[role] = int(h.batch) if getattr(h, "batch", None) else None
            if role == "original":
                self.decision, self.ties = getattr(h, "decision", None), getattr(h, "ties", None)

    @property
    def narrow(self) -> np.dtype:
        return np.dtype("float32" if any(s.dtype == "float32" for s in self.spec.slots) else "float64")


_CONTEXTS: dict[str, Context] = {}  # per process: the models of the latest checks, loaded once per worker
LOADS = [0]


def context(spec: Spec, original: Model | None = None, converted: Model | None = None) -> tuple[Context, bool]:
    """The spec's context in this process, loading the models the first time; (context, loaded now)."""
    ctx = _CONTEXTS.get(spec.token)
    if ctx is not None:
        return ctx, False
    from . import load_model

    a = original if original is not None else load_model(spec.original, trust=spec.trust, data=spec.head)
    b = converted if converted is not None else load_model(spec.converted, trust=spec.trust)
    ctx = Context(spec, a, b)
    while len(_CONTEXTS) >= 2:
        _CONTEXTS.pop(next(iter(_CONTEXTS)))
    _CONTEXTS[spec.token] = ctx
    LOADS[0] += 1
    return ctx, True


@stops_at_limits
def run_task(spec: Spec, task: Task, frame: Any = None) -> Partial:
    """Check the rows of `task` (read from `spec.source`, or `frame` when given: a computed Dask partition).

    Rows that cannot be read are recorded in `Partial.unread`; a failure of the models themselves raises."""
    ctx, loaded = context(spec)
    out = run_rows(ctx, task, frame)
    if loaded:
        out.loads[f"{os.uname().nodename}:{os.getpid()}"] = 1
    return out


def run_rows(ctx: Context, task: Task, frame: Any = None) -> Partial:
    spec = ctx.spec
    out = Partial(tasks=1)
    if frame is not None:
        chunks: Iterator[tuple[int, Any]] = ((s, frame.iloc[s:s + spec.chunk_rows])
                                             for s in range(0, len(frame), spec.chunk_rows))
    else:
        assert spec.source is not None
        chunks = spec.source.read(task, spec.chunk_rows)
    row = task.first_row
    while True:
        try:
            got = next(chunks, None)
        except Exception as exc:  # the file is corrupt from here on
            rest = None if task.rows is None else task.first_row + task.rows - row
            out.unread.append({"part": task.part.index, "file": task.part.name, "first_row": row, "rows": rest,
                               "error": _error(exc)})
            break
        if got is None:
            break
        row, df = got
        out.merge(check_chunk(ctx, task.part, row, df))
        row += len(df)
    if task.rows is not None and not out.unread and row < task.first_row + task.rows:
        # the file held fewer rows than its footer promised: the missing rows are named, never dropped
        out.unread.append({"part": task.part.index, "file": task.part.name, "first_row": row,
                           "rows": task.first_row + task.rows - row, "error": "the file ended early"})
    if frame is not None and task.part.kind == "dask":
        out.parts_read.setdefault(task.part.index, 0)
    return out


def check_chunk(ctx: Context, part: Part, first_row: int, df: Any) -> Partial:
    """Run both models on every row of one chunk and compare them with the spec's fixed tolerances."""
    spec = ctx.spec
    n = len(df)
    out = Partial(rows_read=n, parts_read={part.index: n})
    if n == 0:
        return out
    inputs = _inputs(ctx.original, spec.slots, df, n)
    out_a, ok_a, errs_a, approx_a = _runnable(ctx.original, inputs, n, ctx.sizes.get("original"))
    out.original_rejects = int(n - ok_a.sum())
    out.approximate += approx_a
    for r, msg in errs_a:
        out.rejects.append({"part": part.index, "file": part.name, "row": first_row + r, "model": "original",
                            "error": msg})
    idx = np.flatnonzero(ok_a)
    if not len(idx):
        return out
    sub = inputs if len(idx) == n else {k: v[idx] for k, v in inputs.items()}
    out_b, ok_b, errs_b, approx_b = _runnable(ctx.converted, sub, len(idx), ctx.sizes.get("converted"))
    out.converted_rejects = int(len(idx) - ok_b.sum())
    out.approximate += approx_b
    for r, msg in errs_b:
        out.rejects.append({"part": part.index, "file": part.name, "row": first_row + int(idx[r]),
                            "model": "converted", "error": msg})
    keep = np.flatnonzero(ok_b)
    if not len(keep):
        return out
    if len(keep) < len(idx):
        out_a = {k: v[idx[keep]] for k, v in out_a.items()}
        rows = idx[keep]
        sub = {k: v[keep] for k, v in sub.items()}
    else:
        out_a = out_a if len(idx) == n else {k: v[idx] for k, v in out_a.items()}
        rows = idx
    m = len(rows)
    out.rows_checked = m
    for name, r in _compare(ctx, sub, out_a, out_b, m).items():
        stats = OutputStats(mismatches=int(r.mismatches), near_ties=int(r.near_ties), error=r.error)
        if r.kind != "label" and not r.error:
            stats.max_abs_diff, stats.max_rel_diff = r.max_abs_diff, r.max_rel_diff
            stats.hist = decade_counts(r.severity) or [0] * (len(HIST_EDGES) - 1)
        sev = np.asarray(r.severity, dtype=np.float64)
        if sev.size:
            sev = np.where(np.isnan(sev), np.inf, sev)
            k = min(KEEP, len(sev))
            top = np.argpartition(-sev, k - 1)[:k] if len(sev) > k else np.arange(len(sev))
            top = top[np.lexsort((top, -sev[top]))]
            for i in top:
                if r.kind == "label" and not r.bad[i]:
                    continue
                entry = {"severity": float(sev[i]), "part": part.index, "file": part.name,
                         "row": first_row + int(rows[i]), "bad": bool(r.bad[i])}
                if r.bad[i] or r.error:
                    # a batch of one row, as the generated counterexamples: model.run(inputs) reproduces it
                    entry["inputs"] = {k2: np.asarray(v[i:i + 1]).tolist() for k2, v in sub.items()}
                    entry["original"] = {k2: np.asarray(v[i:i + 1]).tolist() for k2, v in out_a.items()}
                    entry["converted"] = {k2: np.asarray(v[i:i + 1]).tolist() for k2, v in out_b.items()}
                stats.worst.append(entry)
        out.outputs[name] = stats
    return out


def _inputs(original: Model, slots: list[InputSlot], df: Any, n: int) -> dict[str, np.ndarray]:
    """The chunk's rows as the input arrays both models get: in each input's generation dtype (the narrower
    of the two models' dtypes), as the generated rows are."""
    arrays = data_arrays(df, original) or {}
    out = {}
    for slot in slots:
        if slot.name not in arrays:
            raise PortableError(f"the data has no column for input '{slot.name}' (columns: "
                                f"{[str(c) for c in getattr(df, 'columns', [])][:20]})")
        arr = np.asarray(arrays[slot.name])
        if math.prod(arr.shape[1:]) != slot.width:
            raise PortableError(f"the data has no column for input '{slot.name}' of {slot.width} value(s) per row "
                                f"(columns: {[str(c) for c in getattr(df, 'columns', [])][:20]})")
        if slot.is_string:
            arr = arr.astype(str)
        else:
            try:
                vals = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise PortableError(f"the data's column for input '{slot.name}' does not fit it: the input takes "
                                    f"numbers ({shorten(str(exc), 300)})") from None
            if slot.dtype == "bool":
                arr = vals > 0.5
            elif slot.dtype.startswith(("int", "uint")):
                arr = np.nan_to_num(np.round(vals)).astype(slot.dtype)
            else:
                arr = vals.astype(slot.dtype, copy=False)
        out[slot.name] = np.ascontiguousarray(arr.reshape((n, *slot.row_shape)))
    return out


def _runnable(model: Model, inputs: dict[str, np.ndarray], n: int, size: int | None = None) -> tuple[
        dict[str, np.ndarray], np.ndarray, list[tuple[int, str]], int]:
    """`model`'s outputs on the rows it accepts, which rows those are, (row, error) examples of rejected rows,
    and how many rows were counted as rejected without being tried one by one (PROBES ran out). A model with a
    fixed batch `size` runs in batches of exactly that many rows, as in the generated-row check."""
    from . import _run

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _run(model, feed(feeds, model), size)

    try:
        return run(inputs), np.ones(n, dtype=bool), [], 0
    except Exception as exc:
        first = _error(exc)
    ok = np.ones(n, dtype=bool)
    errors: list[tuple[int, str]] = []
    budget = [PROBES]
    approx = [0]

    def tries(lo: int, hi: int) -> str | None:
        budget[0] -= 1
        try:
            run({k: v[lo:hi] for k, v in inputs.items()})
            return None
        except Exception as exc:
            return _error(exc)

    stack = [(0, n, first)]
    while stack:  # bisection: a failing block splits in two until single rows (or the budget) are reached
        lo, hi, msg = stack.pop()
        if hi - lo == 1:
            ok[lo] = False
            if len(errors) < KEEP:
                errors.append((lo, msg))
            continue
        if budget[0] <= 0:
            ok[lo:hi] = False
            approx[0] += hi - lo
            continue
        mid = (lo + hi) // 2
        for a, b in ((mid, hi), (lo, mid)):
            err = tries(a, b)
            if err is not None:
                stack.append((a, b, err))
    errors.sort()
    idx = np.flatnonzero(ok)
    if not len(idx):
        return {}, ok, errors, approx[0]
    try:
        outs = run({k: v[idx] for k, v in inputs.items()})
    except Exception as exc:  # the rows that pass one by one fail together: count them all as rejected
        ok[:] = False
        return {}, ok, errors or [(0, _error(exc))], approx[0]
    full = {}
    for k, v in outs.items():  # outputs for all n rows, rejected rows left as zeros (never compared)
        v = np.asarray(v)
        arr = np.zeros((n, *v.shape[1:]), dtype=v.dtype)
        arr[idx] = v
        full[k] = arr
    return full, ok, errors, approx[0]


def _compare(ctx: Context, inputs: dict[str, np.ndarray], a: dict[str, np.ndarray], b: dict[str, np.ndarray],
             n: int) -> dict[str, Any]:
    """`compare` with each numeric output's tolerance fixed by the sample check (absolute, so every chunk is
    held to the same numbers); labels are compared with the output that decides their near-ties, then judged
    as the generated rows are: on the quantity the original's label follows, and rows the original decides by
    a tie are near-ties."""
    spec = ctx.spec
    kinds = dict(spec.outputs)
    labels = [(k, v) for k, v in spec.outputs if v == "label"]
    numeric = [(k, v) for k, v in spec.outputs if v != "label"]
    tie = next((o for o in numeric if o[1] == "probability"), None) or next(
        (o for o in numeric if o[1] == "score"), None)
    results: dict[str, Any] = {}
    groups: list[list[tuple[str, str]]] = []
    if labels:
        groups.append(labels + ([tie] if tie else []))
    groups += [[o] for o in numeric if not (labels and o == tie)]
    for group in groups:
        tol_name = next((k for k, v in group if v != "label"), None)
        rtol, atol = spec.tolerances.get(tol_name, (None, None)) if tol_name else (None, None)
        for r in compare_outputs(group, a, b, n, rtol, atol):
            results[r.name] = r
    ordered = [results[k] for k in kinds]
    if ctx.decision is not None:
        _judge(ctx, inputs, ordered)
    if ctx.ties is not None:
        _excuse(ctx, inputs, ordered)
    return {r.name: r for r in ordered}


def _judge(ctx: Context, inputs: dict[str, np.ndarray], results: list[Any]) -> None:
    from .compare import judge_on_decision

    dec = ctx.decision
    lab = next((r for r in results if r.name == dec.output and r.kind == "label" and not r.error), None)
    if lab is None or not (lab.mismatches or lab.near_ties):
        return
    rows = np.flatnonzero(lab.differ)
    try:
        values = np.asarray(dec.compute(feed({k: v[rows] for k, v in inputs.items()}, ctx.original)),
                            dtype=np.float64)
    except Exception:
        return  # judged on the outputs, as compare did
    judge_on_decision(lab, rows, values, dec, ctx.narrow)


def _excuse(ctx: Context, inputs: dict[str, np.ndarray], results: list[Any]) -> None:
    n = len(next(iter(inputs.values())))
    rows = failing_rows(results, n)
    if not len(rows):
        return
    rtol = 1e-5 if ctx.narrow == np.float32 else 1e-9
    try:
        tied_rows = np.asarray(ctx.ties(feed({k: v[rows] for k, v in inputs.items()}, ctx.original), rtol),
                               dtype=bool)
    except Exception:
        return
    excuse_tied(results, rows, tied_rows, n)


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# ---- the check ---------------------------------------------------------------------------------------------

@dataclass
class StreamReport(Report):
    """A `Report` over every row of the data. `outputs`, `rows` and the error distribution are the data rows'
    (exact counts; `worst_row`/`worst_file` name the worst row's file and row); `generated` holds the check on
    generated rows (plus the sample), and `data` says how much of the data was read and checked."""

    data: dict[str, Any] = field(default_factory=dict)
    generated: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        """Every row of the data was read (and either compared or rejected by the original model)."""
        return not self.data.get("unread")

    def error_histograms(self) -> dict[str, dict[str, list[Any]]]:
        return {name: {"edges": HIST_LABELS, "counts": list(c)} for name, c in self.histograms.items() if sum(c)}

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["data"] = self.data
        d["generated"] = self.generated
        return d

    def summary_json(self) -> str:
        import json

        summary = json.loads(super().summary_json())
        summary["data"] = {k: self.data.get(k) for k in ("rows_in_data", "rows_checked", "unread_rows",
                                                          "original_rejects", "converted_rejects")}
        summary["generated"] = {"equivalent": self.generated.get("equivalent"), "rows": self.generated.get("rows")}
        return json.dumps(summary, separators=(",", ":"))

    def _coverage(self) -> str:
        d = self.data
        total = d.get("rows_in_data")
        of = f"{total:,}" if total is not None else f"at least {d.get('rows_read', 0):,}"
        parts = [f"{d.get('rows_checked', 0):,} of {of} data rows checked ({d.get('parts', 0)} "
                 f"{'files' if d.get('kind') == 'files' else 'parts'}, {d.get('tasks', 0)} tasks"
                 + (f", on Dask: {d['workers']} workers" if d.get("workers") else "") + ")"]
        if d.get("unread"):
            parts.append(f"{d.get('unread_rows') if d.get('unread_rows') is not None else 'some'} rows could NOT "
                         f"be read ({len(d['unread'])} chunk(s))")
        if d.get("original_rejects"):
            parts.append(f"{d['original_rejects']:,} rows the original model rejects were not compared")
        if d.get("converted_rejects"):
            parts.append(f"{d['converted_rejects']:,} rows the original accepts fail in the converted model")
        return "; ".join(parts)

    def summary_line(self) -> str:
        line = super().summary_line()
        return line + "; " + self._coverage() + (f"; generated rows: {'equivalent' if self.generated.get('equivalent') else 'NOT equivalent'}"
                                                 if self.generated else "")

    def _head(self) -> list[str]:
        lines = super()._head()
        lines[1] = self._coverage() + f"; seed {self.seed}; {self.seconds:.2f}s"
        g = self.generated
        if g:
            gen = ", ".join(f"{v:,} {k}" for k, v in g.get("generation", {}).items() if v)
            bad = [f"{o['name']}: {o.get('error') or str(o['mismatches']) + ' mismatching'}"
                   for o in g.get("outputs", []) if o.get("mismatches") or o.get("error")]
            lines.insert(2, f"generated rows: {'equivalent' if g.get('equivalent') else 'NOT equivalent'} on "
                            f"{g.get('rows', 0):,} rows ({gen})" + (f" ({'; '.join(bad)})" if bad else ""))
        for u in self.data.get("unread", [])[:KEEP]:
            lines.append(f"UNREAD: {u['file']} from row {u['first_row']}"
                         + (f" ({u['rows']:,} rows)" if u.get("rows") is not None else "") + f": {u['error']}")
        return lines

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header, rows = super()._table()
        for r, o in zip(rows, self.outputs):
            if o.get("worst_file") is not None and o.get("worst_row") is not None:
                r[-1] = f"{Path(o['worst_file']).name}:{o['worst_row']}"
        return header, rows


@stops_at_limits
def check_stream(original: Any, converted: Any, data: Any, *, samples: int = 1000, seed: int = 0,
                 rtol: float | None = None, atol: float | None = None, trust: tuple[str, ...] = (),
                 chunk_rows: int | None = None, dask: Any = None, retries: int = 2,
                 sample_rows: int | None = None, progress: Callable[[int, int], Any] | None = None) -> StreamReport:
    """Check `converted` against `original` on every row of `data` (see the module's docstring).

    Args:
        data: a Parquet/CSV/.npy file, folder or glob; a pyarrow Dataset; a pandas or Dask DataFrame.
        chunk_rows: rows read and compared at a time (bounds memory; default CHUNK_ROWS).
        dask: a `distributed.Client`, a scheduler address, or `local` / `local:N` (a LocalCluster of N worker
            processes started and closed here); None checks in this process (a Dask DataFrame then computes
            one partition at a time).
        retries: times Dask retries a task that raised (a lost worker is rescheduled by Dask itself).
        sample_rows: rows of the data the generated-row check sees (default min(chunk_rows, SAMPLE_ROWS)).

    Raises:
        PortableError: the data holds no readable row or lacks an input's column; the models do not match.
    """
    from . import check as check_rows

    started = time.perf_counter()
    from .._args import integer

    chunk_rows = CHUNK_ROWS if chunk_rows is None else integer("chunk_rows", chunk_rows, minimum=1)
    source = open_data(data)
    sample = source.sample(sample_rows or min(chunk_rows, SAMPLE_ROWS))
    from . import load_model

    a = load_model(original, trust=trust, data=sample)
    b = scores_named(a, load_model(converted, trust=trust))
    outputs = match_outputs(a, b)
    arrays = data_arrays(sample, a) or {}
    slots, _ = match_inputs(a, b, arrays)
    missing = [s.name for s in slots if s.name not in arrays]
    if missing:
        raise PortableError(f"the data has no column(s) for input(s) {missing} (columns: "
                            f"{[str(c) for c in sample.columns][:20]})", path=source.description or None)
    for s in slots:
        got = math.prod(np.asarray(arrays[s.name]).shape[1:])
        if got != s.width:
            raise PortableError(f"the data gives {got} value(s) per row for input '{s.name}', which takes "
                                f"{s.width} (columns: {[str(c) for c in sample.columns][:20]})",
                                path=source.description or None)
    # the sample guides generation: rows the original model rejects (NaN where it takes none, ...) are left out
    # of it; in the data they are counted and noted
    from .inputs import model_hints

    size = getattr(model_hints(a), "batch", None)
    try:
        first = _inputs(a, slots, sample, len(sample))
    except PortableError as exc:  # a column that does not fit: said of the data, which _inputs does not know
        from ..errors import locate

        raise locate(exc, source.description or None) from None
    _, ok, _, _ = _runnable(a, first, len(sample), int(size) if size else None)
    if not ok.all():
        sample = sample.iloc[np.flatnonzero(ok)].reset_index(drop=True)
        if not len(sample):
            raise PortableError("the original model rejects every row of the data's sample",
                                path=source.description or None)
    base = check_rows(a, b, samples=samples, seed=seed, data=sample, rtol=rtol, atol=atol)
    tolerances = {o["name"]: (o.get("rtol"), o.get("atol")) for o in base.outputs if o.get("atol") is not None}
    spec = Spec(uuid.uuid4().hex, _shippable(original, a), _shippable(converted, b), tuple(trust),
                sample.head(5), outputs, slots, tolerances, chunk_rows, source)
    tasks = source.tasks(chunk_rows)
    total = len(tasks)
    partial = Partial()
    workers = 0
    if dask is not None:
        from ..distributed import check_on_dask

        partial, workers = check_on_dask(spec, tasks, dask, retries=retries, progress=progress)
    else:
        ctx, _ = context(spec, a, b)
        try:
            for i, task in enumerate(tasks):
                try:
                    partial.merge(run_rows(ctx, task))
                except PortableError as exc:
                    if "has no column for input" in exc.message:
                        raise PortableError(exc.message, path=task.part.name) from None
                    partial.unread.append(_unread(task, exc))
                except Exception as exc:
                    partial.unread.append(_unread(task, exc))
                if progress is not None:
                    progress(i + 1, total)
        finally:
            _CONTEXTS.pop(spec.token, None)
    report = _report(base, partial, source, tasks, workers, chunk_rows)
    report.seconds = time.perf_counter() - started
    return report


def _unread(task: Task, exc: BaseException) -> dict[str, Any]:
    return {"part": task.part.index, "file": task.part.name, "first_row": task.first_row, "rows": task.rows,
            "error": _error(exc)}


def _shippable(given: Any, model: Model) -> Any:
    """What a worker loads the model from: the path the caller gave (through the safe loader), else the object
    the caller passed (pickled by Dask); a `Model` loaded from a file travels as that file's path."""
    if isinstance(given, (str, os.PathLike)):
        return str(given)
    if isinstance(given, Model):
        path = getattr(given, "path", None)
        if path and Path(path).exists():
            return str(path)
        o = given.origin
        if o.path and o.format == given.format and Path(o.path).is_file():
            return o.path
    return given


def _report(base: Report, partial: Partial, source: Source, tasks: list[Task], workers: int,
            chunk_rows: int) -> StreamReport:
    # rows in the data: known per part (Parquet footers), else what was read plus what could not be
    unread_rows: int | None = 0
    for u in partial.unread:
        unread_rows = None if unread_rows is None or u.get("rows") is None else unread_rows + u["rows"]
    known = all(p.rows is not None for p in source.parts)
    if known:
        total: int | None = sum(p.rows or 0 for p in source.parts)
    else:
        total = None if unread_rows is None else partial.rows_read + unread_rows
    outputs = []
    for name, kind in (base.outputs and [(o["name"], o["kind"]) for o in base.outputs]):
        s = partial.outputs.get(name, OutputStats())
        o = next(x for x in base.outputs if x["name"] == name)
        d: dict[str, Any] = {"name": name, "kind": kind, "dtype": o.get("dtype")}
        if kind == "label":
            d["exact"] = True
        else:
            d.update(max_abs_diff=s.max_abs_diff, max_rel_diff=s.max_rel_diff, atol=o.get("atol"),
                     rtol=o.get("rtol"))
        d["mismatches"] = s.mismatches
        if kind == "label":
            d["near_ties"] = s.near_ties
        w = s.worst[0] if s.worst else None
        d["worst_row"] = None if w is None else w["row"]
        d["worst_file"] = None if w is None else w["file"]
        d["worst_rows"] = [{k: e[k] for k in ("file", "row", "severity")} for e in s.worst]
        d["error_distribution"] = dict(zip(HIST_LABELS[1:], s.hist)) if kind != "label" else None
        if s.error:
            d["error"] = s.error
        outputs.append(d)
    # data counterexamples: the worst failing rows over all outputs, with their file and row
    bad = _top([dict(e, output=name) for name, s in partial.outputs.items() for e in s.worst if e.get("bad")])
    seen = set()
    examples = []
    for e in bad:
        if (e["part"], e["row"]) in seen or "inputs" not in e:
            continue
        seen.add((e["part"], e["row"]))
        examples.append({"inputs": e["inputs"], "original": e["original"], "converted": e["converted"],
                         "found_by": f"data: {e['file']} row {e['row']}", "file": e["file"], "row": e["row"]})
    for r in partial.rejects:
        if r["model"] == "converted" and len(examples) < 2 * KEEP:
            examples.append({"inputs": {}, "original": {}, "converted": {"error": r["error"]},
                             "found_by": f"data: {r['file']} row {r['row']}, the converted model fails",
                             "file": r["file"], "row": r["row"]})
    notes = list(base.notes)
    if partial.original_rejects:
        ex = next((r for r in partial.rejects if r["model"] == "original"), None)
        notes.append(f"{partial.original_rejects:,} data rows were not compared: the original model rejects them"
                     + (f" (first: {ex['file']} row {ex['row']}: {ex['error']})" if ex else ""))
    if partial.approximate:
        notes.append(f"{partial.approximate:,} rejected rows were counted by block, not one by one")
    for u in partial.unread:
        notes.append(f"not read: {u['file']} from row {u['first_row']}"
                     + (f" ({u['rows']:,} rows)" if u.get("rows") is not None else " (rows unknown)")
                     + f": {u['error']}")
    data_ok = (not partial.unread and partial.converted_rejects == 0
               and all(s.mismatches == 0 and not s.error for s in partial.outputs.values())
               and (partial.rows_checked > 0 or total == 0))
    if partial.rows_checked == 0 and total:
        notes.append("no data row could be compared")
    info = {"source": source.description, "kind": "files" if isinstance(source, FileSource) else "parts",
            "parts": len(source.parts), "tasks": len(tasks), "rows_in_data": total, "rows_read": partial.rows_read,
            "rows_checked": partial.rows_checked, "original_rejects": partial.original_rejects,
            "converted_rejects": partial.converted_rejects, "unread": partial.unread, "unread_rows": unread_rows,
            "complete": not partial.unread, "chunk_rows": chunk_rows, "workers": workers,
            "model_loads": sum(partial.loads.values())}
    gen = {k: v for k, v in base.to_dict().items() if k in ("equivalent", "rows", "generation", "outputs",
                                                             "counterexamples")}
    kw = {f.name: getattr(base, f.name) for f in fields(Report) if f.init}
    kw.update(equivalent=bool(base.equivalent and data_ok), rows=partial.rows_checked, outputs=outputs,
              counterexamples=examples + [dict(c, found_by="generated: " + c.get("found_by", ""))
                                          for c in base.counterexamples],
              notes=notes, severities={})
    return StreamReport(**kw, data=info, generated=gen,
                        histograms={o["name"]: partial.outputs.get(o["name"], OutputStats()).hist
                                    for o in base.outputs if o["kind"] != "label"})


__all__ = ["check_stream", "StreamReport", "Partial", "open_data", "is_stream", "CHUNK_ROWS"]
