"""The `portable` command: argument parsing and exit codes only; the work is done by the library.

Exit codes (DESIGN §5): 0 done and equivalent; 1 the input or the conversion failed; 2 usage error;
3 checked and not equivalent (for `drift`: drift past a threshold).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from . import api
from .errors import InputError, PortableError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_EQUIVALENT = 0, 1, 2, 3


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def read_data(path: str | None) -> Any:
    """Read `--data` (see `portable._io.read_data`)."""
    from ._io import read_data as read

    return None if path is None else read(path)


def default_output(source: str, to: str) -> Path:
    from ._io import target_path

    return target_path(Path(source), to)


def _write_report(report: Any, path: str | None, force: bool, protect: tuple[Any, ...] = ()) -> None:
    if path is None or report is None:
        return
    from ._io import atomic_write_bytes

    atomic_write_bytes(path, report.to_json().encode(), force=force, protect=protect)


def _inputs(*models: str, data: str | None = None) -> tuple[str, ...]:
    """The command's input paths an output must never replace: the models, and a --data file (a --data folder or
    glob of rows is not protected as a whole)."""
    return models + ((data,) if data is not None and os.path.isfile(data) else ())


def _memory_limit(ctx: Any, param: Any, value: Any) -> int:
    from .batch import memory_limit_bytes

    try:
        return memory_limit_bytes(value, "--memory-limit")
    except PortableError as exc:
        raise click.BadParameter(exc.message) from None


def _samples(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """--samples within portable.limits.max_samples (a usage error, exit 2, beyond it)."""
    from .limits import LIMITS

    if value > LIMITS.max_samples:
        raise click.BadParameter(f"{value:,} is beyond the limit max_samples={LIMITS.max_samples:,} (raise it with "
                                 "--limit max_samples=N if you mean it)")
    return value


def _tolerance(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and (math.isnan(value) or math.isinf(value) or value < 0):
        raise click.BadParameter(f"must be a finite number >= 0, not {value}")
    return value


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A FloatRange admits nan (every comparison with it is false) and inf: refused here as usage errors."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, not {value}")
    return value


def _limits(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from .limits import LIMITS, parse_assignments

    for value in values:
        try:
            LIMITS.set(**parse_assignments(value))
        except PortableError as exc:
            raise click.BadParameter(exc.message) from None
    return values


def _print_report(report: Any, quiet: bool) -> None:
    if report is None or quiet:
        return
    text = report.to_text() if hasattr(report, "to_text") else str(report)
    _console().print(text, markup=False)


class PortableGroup(click.Group):
    """Maps PortableError (and the not-equivalent verdict) to exit codes in one place."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        import dataclasses

        from .limits import LIMITS

        saved = dataclasses.asdict(LIMITS)  # --limit holds for this command only
        try:
            return super().main(*args, **kwargs)
        finally:
            LIMITS.set(**saved)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _Exit as e:
            ctx.exit(e.code)
        except PortableError as e:
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
        except OSError as e:  # a safety net: a path the checks before did not foresee (ELOOP, EIO, EACCES, ...)
            if (ctx.obj or {}).get("debug"):
                raise
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}{e.strerror or e}", err=True)
            ctx.exit(EXIT_FAILED)
        except (MemoryError, RecursionError) as e:  # a safety net: the readers' limits are meant to come first
            if (ctx.obj or {}).get("debug"):
                raise
            if isinstance(e, MemoryError):
                from .limits import LIMITS

                click.echo(f"error: the model needed more memory than portable may use (max_process_bytes="
                           f"{LIMITS.max_process_bytes:,}; raise it with --limit max_process_bytes=... if the file "
                           "is trusted and the machine has the memory)", err=True)
            else:
                click.echo("error: the model nested too deeply while portable worked on it; portable's limits "
                           "(portable.limits, --limit NAME=VALUE) did not catch this case, so please report it",
                           err=True)
            ctx.exit(EXIT_FAILED)


@click.group(cls=PortableGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="portable-models", prog_name="portable")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--limit", "limits", multiple=True, callback=_limits, expose_value=True, is_eager=True,
              metavar="NAME=VALUE", help="Raise (or lower) a parser or checker limit of portable.limits, e.g. "
              "--limit max_depth=1000 (repeatable).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, limits: tuple[str, ...]) -> None:
    """Convert trained models to ONNX or NNEF and prove the result computes the same thing."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if _OWN_PROCESS:  # the console script's own process (not a CliRunner inside someone's): bound its memory
        from .limits import cap_process_memory

        cap_process_memory()
    if not debug:  # libraries' deprecation chatter is not the user's business; --debug shows it
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


@cli.command()
@click.argument("source", type=click.Path())
@click.option("--to", "to", type=click.Choice(["onnx", "nnef"]), required=True, help="Target format.")
@click.option("-o", "--output", type=click.Path(), help="Output path (default: SOURCE with the target's suffix).")
@click.option("--dtype", type=click.Choice(["auto", "float32", "float64"]), default="auto", show_default=True)
@click.option("--check/--no-check", default=True, show_default=True, help="Check equivalence before writing.")
@click.option("--samples", type=click.IntRange(1), default=1000, show_default=True, callback=_samples)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--data", type=click.Path(), help="Sample inputs (.npy, .csv, .parquet) for the check.")
@click.option("--report", "report_path", type=click.Path(), help="Write the equivalence report as JSON.")
@click.option("--trust", multiple=True, help="Admit a pickle global or package prefix (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--keep-failed", is_flag=True, help="Write the artifact even when the check fails.")
@click.option("--standard-ops", is_flag=True, help="Lower ai.onnx.ml operators to standard ONNX operators.")
@click.option("--certify", is_flag=True, help="Also prove a bound on the difference over the whole input domain "
              "(portable.certify); a refuted certificate fails the check.")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Parallel workers when SOURCE is a folder.")
@click.option("--dask", "dask", metavar="ADDRESS|local[:N]",
              help="Convert a folder on a Dask cluster, one task per file (a scheduler address, or local:N).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300, show_default=True, callback=_finite,
              help="Seconds one file of a folder may take before its worker is stopped.")
@click.option("--memory-limit", "memory_limit", default="8G", show_default=True, callback=_memory_limit,
              help="Address space each worker of a folder batch may use (e.g. 4G, 512M; 0: no limit); a file that "
                   "needs more fails with 'ran out of memory' and the others go on.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors; no progress bar.")
def convert(source: str, to: str, output: str | None, dtype: str, check: bool, samples: int, seed: int,
            data: str | None, report_path: str | None, trust: tuple[str, ...], force: bool, keep_failed: bool,
            standard_ops: bool, jobs: int, quiet: bool, dask: str | None = None, timeout: float = 300,
            certify: bool = False, memory_limit: int = 8 << 30) -> None:
    """Convert SOURCE (a pickle/joblib/skops file, a PFA document, an ONNX model, or a folder of them) to ONNX
    or NNEF."""
    from . import progress
    from ._io import check_writable, why_missing
    from .registry import ConvertOptions

    if not Path(source).exists():
        raise InputError(why_missing(source), path=source)
    if Path(source).is_dir() and not (Path(source) / "graph.nnef").is_file():
        if report_path is not None:
            raise click.UsageError("--report is for one model; a folder's reports go into its summary.json")
        _convert_folder(Path(source), to, Path(output) if output else Path(f"{source.rstrip('/')}-{to}"),
                        jobs=jobs, dtype=dtype, check=check, samples=samples, seed=seed, trust=trust, force=force,
                        keep_failed=keep_failed, quiet=quiet, timeout=timeout, memory_limit=memory_limit,
                        **({"dask": dask} if dask else {}))
        return
    if dask:
        raise InputError("--dask converts a folder; SOURCE is a single model", path=source)
    out = Path(output) if output else default_output(source, to)
    from .formats.nnef.writer import is_archive

    # every way to lose data is refused here, before the conversion runs (DESIGN §8): the outputs are never the
    # source or the --data file, and the report is never inside the NNEF folder that -o replaces afterwards
    inputs = _inputs(source, data=data)
    check_writable(out, force, protect=inputs, kind="file" if to == "onnx" or is_archive(out) else "folder",
                   probe=True)
    if report_path is not None:
        if Path(os.path.realpath(report_path)) == Path(os.path.realpath(out)):
            raise click.UsageError("--report and -o name the same file")
        check_writable(report_path, force, protect=inputs + (out,), kind="file", probe=True)
    started = time.perf_counter()
    with progress.bar(f"checking {Path(source).name}", quiet=quiet) as bar:
        art = api.convert(source, to=to, dtype=dtype, check=check, samples=samples, seed=seed,
                          data=read_data(data), trust=trust, options=ConvertOptions(standard_ops=standard_ops),
                          progress=bar, **({"certify": True} if certify else {}))
    report = art.report
    if report is not None:  # checked in memory; the artifact is the file written next
        report.converted = {**report.converted, "path": str(out)}
    _write_report(report, report_path, force, protect=inputs + (out,))
    _print_report(report, quiet)
    for note in art.notes:
        if not quiet:
            _console(stderr=True).print(f"note: {note}", markup=False)
    if report is not None and not report.equivalent:
        if keep_failed:
            art.save(out, force=force)
            _console(stderr=True).print(f"NOT equivalent; written anyway (--keep-failed): {out}", markup=False)
        else:
            _console(stderr=True).print(f"NOT equivalent: {out} was not written (use --keep-failed to write it).",
                                        markup=False)
        raise _Exit(EXIT_NOT_EQUIVALENT)
    art.save(out, force=force)
    if not quiet:
        verdict = "equivalent" if report is not None else "not checked"
        _console().print(f"wrote {out} ({' -> '.join(art.route)}, {art.dtype or ''}, {verdict}, "
                         f"{time.perf_counter() - started:.2f}s)", markup=False)


def _convert_folder(folder: Path, to: str, out_dir: Path, *, jobs: int, quiet: bool, timeout: float,
                    **settings: Any) -> None:
    from rich.table import Table

    from . import progress
    from .batch import convert_folder

    with progress.bar(f"converting {folder}", quiet=quiet) as bar:
        results = convert_folder(folder, to, out_dir, jobs=jobs, progress=bar, timeout=timeout, **settings)
    if not quiet:
        table = Table("model", "route", "verdict", "max error", "time (s)", title=f"{folder} -> {out_dir}")
        for r in results:
            verdict = r.verdict if r.error is None else "failed (see below)"
            table.add_row(str(Path(r.model).relative_to(folder)), r.route, verdict,
                          "" if r.max_error is None else f"{r.max_error:.2e}", f"{r.seconds:.2f}")
        con = _console()
        con.print(table)
        for r in results:
            if r.error is not None:
                con.print(f"failed: {r.error}", markup=False)
        con.print(f"summary: {out_dir / 'summary.json'}", markup=False)
    if any(r.verdict == "NOT equivalent" for r in results):
        raise _Exit(EXIT_NOT_EQUIVALENT)
    if any(r.error is not None for r in results):
        raise _Exit(EXIT_FAILED)


@cli.command()
@click.argument("original", type=click.Path())
@click.argument("converted", type=click.Path())
@click.option("--samples", type=click.IntRange(1), default=1000, show_default=True, callback=_samples)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--data", type=click.Path(), metavar="PATH|FOLDER|GLOB",
              help="Rows to check: a .npy file, or a .parquet/.csv file, folder or glob whose every row is "
                   "checked in chunks.")
@click.option("--chunk-rows", type=click.IntRange(1), default=None,
              help="Rows read and compared at a time with a Parquet/CSV --data (default 100000).")
@click.option("--dask", "dask", metavar="ADDRESS|local[:N]",
              help="Check the --data rows on a Dask cluster (a scheduler address, or local:N worker processes).")
@click.option("--rtol", type=float, default=None, callback=_tolerance,
              help="Relative tolerance for numeric outputs (a finite number >= 0).")
@click.option("--atol", type=float, default=None, callback=_tolerance,
              help="Absolute tolerance for numeric outputs (a finite number >= 0).")
@click.option("--report", "report_path", type=click.Path(), help="Write the report as JSON.")
@click.option("--trust", multiple=True, help="Admit a pickle global or package prefix (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite an existing --report file.")
@click.option("--certify", is_flag=True, help="Also prove a bound on the difference over the whole input domain "
              "(portable.certify); a refuted certificate makes the check fail (exit 3).")
@click.option("-q", "--quiet", is_flag=True)
def check(original: str, converted: str, samples: int, seed: int, data: str | None, rtol: float | None,
          atol: float | None, report_path: str | None, trust: tuple[str, ...], force: bool, quiet: bool,
          chunk_rows: int | None = None, dask: str | None = None, certify: bool = False) -> None:
    """Check that CONVERTED computes what ORIGINAL computes (any two loadable models).

    Exit codes: 0 equivalent, 3 not equivalent, 1 an error or rows of --data that could not be read (the report
    names them)."""
    streamed = data is not None and (not data.lower().endswith(".npy") or bool(chunk_rows or dask))
    if (chunk_rows or dask) and not streamed:
        raise InputError("--chunk-rows and --dask need --data rows to check")
    if report_path is not None:
        from ._io import check_writable

        check_writable(report_path, force, protect=_inputs(original, converted, data=data), kind="file", probe=True)
    report = api.check(original, converted, samples=samples, seed=seed,
                       data=data if streamed else read_data(data), rtol=rtol, atol=atol, trust=trust,
                       **({"chunk_rows": chunk_rows, "dask": dask} if streamed else {}),
                       **({"certify": True} if certify else {}))
    _write_report(report, report_path, force, protect=_inputs(original, converted, data=data))
    _print_report(report, quiet)
    if getattr(report, "complete", True) is False:
        click.echo(f"error: {report.data.get('unread_rows') or 'some'} rows of the data could not be read "
                   f"(see the report)", err=True)
        raise _Exit(EXIT_FAILED)
    if not report.equivalent:
        raise _Exit(EXIT_NOT_EQUIVALENT)


@cli.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--trust", multiple=True, help="Admit a pickle global or package prefix (repeatable).")
def inspect(file: str, as_json: bool, trust: tuple[str, ...]) -> None:
    """Show a model's format, signature, opsets, metadata and size."""
    model = api.load(file, trust=trust)
    p = Path(file)
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    info = {"file": file, "format": model.format, "size_bytes": size, "signature": model.signature.to_dict(),
            **model.info()}
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    from rich.table import Table

    con = _console()
    con.print(f"{file}: {model.format} model, {size:,} bytes", markup=False)
    table = Table("", "name", "dtype", "shape", title="signature")
    for role, specs in (("input", model.signature.inputs), ("output", model.signature.outputs)):
        for t in specs:
            table.add_row(role, t.name, t.dtype, str(["N" if d is None and i == 0 else d
                                                      for i, d in enumerate(t.shape)]))
    con.print(table)
    for key, value in model.info().items():
        if isinstance(value, dict):
            con.print(f"{key}:", markup=False)
            for k, v in value.items():
                con.print(f"  {k}: {v if not isinstance(v, dict) else json.dumps(v)}", markup=False)
        else:
            con.print(f"{key}: {value}", markup=False)


@cli.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--trust", multiple=True, help="Treat a global or package prefix as allowed (repeatable).")
def audit(file: str, as_json: bool, trust: tuple[str, ...]) -> None:
    """What a pickle/joblib/skops FILE imports and calls, and whether portable's loader admits it.

    \b
    Runs: a static scan of the file's opcodes (nothing executed); then, when every
    global it names is allowed, portable's restricted loader on it, as `convert`
    would: this imports the scikit-learn / numpy / scipy.sparse modules the file
    names (and --trust'ed packages), calls the table's reconstructors (numpy array
    and dtype rebuilding, scipy.sparse and scikit-learn classes created empty) and
    their __setstate__ on the file's data, and validates the fitted internals.
    Never runs: anything off the allowlist (no such module is even imported), nor
    the model itself (no predict/transform). Exit 1 unless the verdict is SAFE.
    """
    from .safety import audit as run_audit

    result = run_audit(Path(file), trust=trust)
    if as_json:
        click.echo(result.to_json())
    else:
        _console().print(result.to_text(), markup=False)
    if not result.safe:
        raise _Exit(EXIT_FAILED)


@cli.command()
@click.option("--estimators", "estimators", is_flag=True,
              help="List every scikit-learn estimator and whether (and how) it converts to ONNX.")
@click.option("--pfa", "pfa", is_flag=True,
              help="List every PFA library function of the spec and how portable runs it (coverage).")
def formats(estimators: bool, pfa: bool) -> None:
    """List the registry: formats and converters."""
    from rich.table import Table

    con = _console()
    if pfa:
        from .formats.pfa.coverage import library_table, summary as pfa_summary

        p = Table("function", "row by row", "vectorized / ONNX", "note", title="PFA library functions")
        for r in library_table():
            p.add_row(r.name, "yes" if r.sequential else "no", "yes" if r.vectorized else "", r.note)
        con.print(p)
        ps = pfa_summary()
        con.print(f"PFA library: {ps['implemented']} of {ps['spec']} functions implemented "
                  f"({ps['vectorized']} also vectorized and compiled to ONNX)", markup=False)
        return
    if estimators:
        from .coverage import estimator_table, summary

        rows = estimator_table()
        e = Table("estimator", "status", "converter", "reason", title="scikit-learn estimators -> ONNX")
        for r in rows:
            e.add_row(r.name, r.status, r.converter, r.reason)
        con.print(e)
        s = summary(rows)
        con.print(f"{s['converts']} of {s['inference_capable']} inference-capable estimators that take a numeric "
                  f"matrix convert in float32 and float64 ({s['portable']} through portable's own converters)",
                  markup=False)
        from .coverage import REFUSED_CONFIGURATIONS

        c = Table("configuration", "reason", title="refused configurations (a clear error, never wrong numbers)")
        for what, why in REFUSED_CONFIGURATIONS.items():
            c.add_row(what, why)
        con.print(c)
        return
    t = Table("format", "extensions", "target", "description", title="formats")
    for f in sorted(api.list_formats().values(), key=lambda f: f.name):
        t.add_row(f.name, " ".join(f.extensions) or "(in memory)", "yes" if f.is_target else "", f.description)
    con.print(t)
    c = Table("edge", "converter", "status", title="converters")
    for conv in sorted(api.list_converters(), key=lambda c: (c.source, c.target)):
        miss = conv.missing()
        c.add_row(conv.edge, f"{conv.module}.{conv.func.__name__}",
                  "ok" if not miss else f"needs {', '.join(miss)}")
    con.print(c)


@cli.command()
@click.option("-o", "--output", type=click.Path(), default="portable-demo", show_default=True,
              help="Folder for the demo's pickles and artifacts.")
@click.option("--force", is_flag=True, help="Reuse an existing demo folder.")
def demo(output: str, force: bool) -> None:
    """Train small models on scikit-learn's bundled datasets, pickle them, convert them and check them."""
    from .demo import run_demo

    ok = run_demo(Path(output), force=force, console=_console())
    if not ok:
        raise _Exit(EXIT_NOT_EQUIVALENT)


@cli.command()
@click.argument("artifact", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@click.option("--max-rows", type=click.IntRange(1), default=10_000, show_default=True, help="Rows per request.")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=32.0, show_default=True, callback=_finite,
              help="Largest request body, in MiB.")
@click.option("--body-timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True, callback=_finite,
              help="Seconds a client may take to send its request body (408 beyond).")
@click.option("--window", type=click.IntRange(1), default=10_000, show_default=True,
              help="Live rows kept for the drift watch.")
@click.option("--reference", type=click.Path(), help="Data (.npy, .csv, .parquet) to profile for drift when the "
                                                      "artifact stores no profile.")
@click.option("--trust", multiple=True, help="Admit a pickle global or package prefix (repeatable).")
@click.option("--no-access-log", is_flag=True, help="Do not log every request.")
def serve(artifact: str, host: str, port: int, workers: int, max_rows: int, max_body_mb: float,
          body_timeout: float, window: int, reference: str | None, trust: tuple[str, ...],
          no_access_log: bool) -> None:
    """Serve ARTIFACT over HTTP: POST /predict, GET /metadata /health /ready /metrics /drift /openapi.json and
    the model card at /."""
    api.serve(artifact, host=host, port=port, workers=workers, trust=trust, reference=read_data(reference),
              max_rows=max_rows, max_body=int(max_body_mb * 1024 * 1024), body_timeout=body_timeout, window=window,
              access_log=not no_access_log)


@cli.command()
@click.argument("artifact", type=click.Path())
@click.argument("data", type=click.Path())
@click.option("--reference", type=click.Path(), help="Data to profile instead of the artifact's stored profile.")
@click.option("--psi", type=click.FloatRange(min=0), default=0.2, show_default=True, callback=_finite,
              help="PSI at or above which a feature drifted.")
@click.option("--missing", type=click.FloatRange(min=0), default=0.1, show_default=True, callback=_finite,
              help="Missing-rate change at or above which a feature drifted.")
@click.option("--unseen", type=click.FloatRange(min=0), default=0.05, show_default=True, callback=_finite,
              help="Share of unseen categories at or above which a feature drifted.")
@click.option("--min-rows", type=click.IntRange(1), default=50, show_default=True,
              help="Fewer rows than this give no verdict (exit 0).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--trust", multiple=True, help="Admit a pickle global or package prefix (repeatable).")
def drift(artifact: str, data: str, reference: str | None, psi: float, missing: float, unseen: float,
          min_rows: int, as_json: bool, trust: tuple[str, ...]) -> None:
    """Drift of DATA (.npy, .csv, .parquet) against the data profile stored in ARTIFACT; exit 3 past a
    threshold."""
    from .profile import DriftThresholds, drift_text

    result = api.drift(artifact, read_data(data), reference=read_data(reference), trust=trust,
                       thresholds=DriftThresholds(psi=psi, missing=missing, unseen=unseen, min_rows=min_rows))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _console().print(drift_text(result), markup=False)
    if result["drifted"]:
        raise _Exit(EXIT_NOT_EQUIVALENT)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM becomes an exception, so that every `finally` runs (temporary files removed, workers stopped)."""
    raise SystemExit(128 + signum)


_OWN_PROCESS = False  # set by `main`, the console script: the process is portable's to bound


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import signal

    global _OWN_PROCESS
    _OWN_PROCESS = True
    import sys

    for stream in (sys.stdout, sys.stderr):  # text from a file that is not Unicode (a lone surrogate in a
        try:                                 # pickled name) is shown escaped, not a UnicodeEncodeError
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        cli.main(args=argv, prog_name="portable")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
