"""The public functions of DESIGN §3: load, convert, check, list_formats, list_converters, export, audit, serve,
drift."""
from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import _args
from .errors import PortableError
from .model import Model
from .registry import REGISTRY, ConverterInfo, ConvertOptions, FormatInfo, LoadOptions

DTYPES = ("auto", "float32", "float64")


def load(source: Any, format: str | None = None, *, trust: Iterable[str] = (), runtime: str = "onnxruntime",
         data: Any = None) -> Model:
    """Load anything portable knows into a `Model`.

    Args:
        source: a path (pickle, joblib, skops, PFA, ONNX, NNEF), an estimator, a PFA dict, an onnx.ModelProto,
            or a `Model` (returned as it is).
        format: the format's name; sniffed when None.
        trust: extra globals (fully qualified names or package prefixes) a pickle may import.
        runtime: for ONNX, `onnxruntime` or `reference`.
        data: sample input; for a scikit-learn model fitted on a DataFrame it tells which columns are strings.

    Raises:
        PortableError: the input is missing, unrecognised, malformed or unsafe.
    """
    if isinstance(source, Model):
        return source
    if source is None:
        raise PortableError("source must be a model: a file path, an estimator, a PFA dict or an onnx.ModelProto, "
                            "not None")
    if isinstance(source, (str, Path)):
        from ._io import as_path

        as_path(source, "source")  # a NUL byte or a name longer than file systems allow, said as such
    _args.text("format", format, optional=True)
    trust = _args.trust(trust)
    _args.text("runtime", runtime)
    data = _args.data(data)
    info = REGISTRY.format(format) if format else REGISTRY.sniff(source)
    try:
        model = info.load(source, LoadOptions(trust=trust, runtime=runtime))
    except RecursionError:  # a safety net: the readers bound nesting first (portable.limits)
        from .limits import LimitError

        raise LimitError("the model is nested too deeply to load", "max_depth",
                         path=source if isinstance(source, (str, Path)) else None) from None
    if data is not None and hasattr(data, "columns") and model.format in ("sklearn", "pickle"):
        rebuild = getattr(model, "with_data", None)  # a pickle keeps its trust and its isolated worker
        model = rebuild(data) if rebuild else type(model)(model.estimator, origin=model.origin,  # type: ignore
                                                           data=data)
    return model


def _run_route(model: Model, route: list[ConverterInfo], options: ConvertOptions) -> Model:
    current = model
    for conv in route:
        out = conv.func(current, options)
        out.route = current.route + [conv.target]
        current = out
    if options.standard_ops and current.format == "onnx":  # ai.onnx.ml -> standard ops (also onnx -> onnx)
        from .converters.onnx_standard import lower_model

        current = lower_model(current, options)
    return current


def convert(source: Any, to: str = "onnx", dtype: str = "auto", check: bool = True, samples: int = 1000,
            seed: int = 0, data: Any = None, trust: Iterable[str] = (), options: ConvertOptions | None = None,
            progress: Any = None, *, certify: bool = False) -> Model:
    """Convert `source` to the `to` format and (by default) check that the result computes the same thing.

    Args:
        dtype: `float32`, `float64`, or `auto`: float32 first, and float64 when the check finds a disagreement
            that float64 fixes (PFA sources, whose numbers are doubles, start at float64).
        check: run the equivalence checker; the report is on `artifact.report` and in its metadata.
        certify: also certify the artifact (`portable.certify`): a `certificate` per output in the report.
        samples, seed, data: passed to the checker (`data` also tells a DataFrame's column types).
        options: further converter options; `dtype`, `trust` and `data` here win over those in it.

    Returns:
        The artifact, a `Model` of the target format, with `.save(path)` and `.report`.

    Raises:
        NoConverterError: no route leads to `to`.
        PortableError: the source could not be loaded or converted (naming the source file when it is one).
    """
    try:
        return _convert(source, to, dtype, check, samples, seed, data, trust, options, progress, certify)
    except PortableError as exc:
        if isinstance(source, (str, Path)):
            from .errors import locate

            locate(exc, source)
        raise


def _convert(source: Any, to: str, dtype: str, check: bool, samples: int, seed: int, data: Any, trust: Any,
             options: ConvertOptions | None, progress: Any, certify: bool) -> Model:
    _args.choice("dtype", dtype, DTYPES)
    _args.text("to", to)
    check = _args.flag("check", check)
    if _args.flag("certify", certify) and not check:
        raise PortableError("certify=True needs check=True (the certificates go into the check's report); "
                            "or call portable.certify(source, artifact) on the artifact")
    samples, seed = _args.samples(samples), _args.seed(seed)
    trust, data = _args.trust(trust), _args.data(data)
    if options is not None and not isinstance(options, ConvertOptions):
        raise PortableError(f"options must be a portable.ConvertOptions, not {type(options).__name__}")
    if progress is not None and not callable(progress):
        raise PortableError("progress must be a callable progress(done, total) or None")
    original = load(source, trust=trust, data=data)
    route = REGISTRY.route(original.format, to)
    base = options or ConvertOptions()
    first = dtype if dtype != "auto" else ("float64" if original.format == "pfa" else "float32")
    opts = _with(base, dtype=first, trust=tuple(trust) or base.trust, data=data)
    artifact = _run_route(original, route, opts)
    if not check:
        _record_profile(artifact, original, data)
        return artifact
    from .equivalence import check as run_check

    report = run_check(original, artifact, samples=samples, seed=seed, data=data, progress=progress)
    report.dtype = first
    if not report.equivalent and dtype == "auto" and first == "float32":
        try:
            retry = _run_route(original, route, _with(opts, dtype="float64"))
        except PortableError as exc:
            report.notes.append(f"float32 disagreed; float64 was tried but could not be converted: {exc}")
        else:
            report64 = run_check(original, retry, samples=samples, seed=seed, data=data, progress=progress)
            report64.dtype = "float64"
            if report64.equivalent:
                report64.notes.insert(0, f"switched to float64: float32 disagreed "
                                         f"({report.summary_line()})")
                artifact, report = retry, report64
            else:
                report.notes.append("float64 was tried too and also disagreed")
    if _args.flag("certify", certify):  # the final artifact, with the check's tolerances
        from .certification.driver import certify_report

        certify_report(report, original, artifact, data=data, trust=trust)
    report.notes[:0] = [n for n in original.notes if n not in report.notes]  # e.g. a pickle's version warning
    artifact.report = report
    _record_check(artifact, report)
    _record_profile(artifact, original, data)
    return artifact


def _with(options: ConvertOptions, **changes: Any) -> ConvertOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)


def _record_check(artifact: Model, report: Any) -> None:
    later = getattr(artifact, "set_metadata_later", None)
    if later is not None:  # written when the artifact is next read or saved
        later("portable.check", report.summary_json)
        later("portable.report", functools.partial(report.to_json, indent=None))
        return
    setter = getattr(artifact, "set_metadata", None)
    if setter is not None:
        setter("portable.check", report.summary_json())
        setter("portable.report", report.to_json(indent=None))  # the whole report: `portable serve` shows it


def _record_profile(artifact: Model, original: Model, data: Any) -> None:
    """Store the profile of `data` (DESIGN §9) in an artifact that has metadata, for the drift watch."""
    setter = getattr(artifact, "set_metadata", None)
    if data is None or setter is None:
        return
    from .profile import PROFILE_KEY, profile_from_data, to_json

    profile = profile_from_data(data, original, artifact.signature)
    if profile is None:
        artifact.notes.append("no data profile was stored: the data does not line up with the model's inputs "
                              f"{artifact.signature.input_names}")
        return
    setter(PROFILE_KEY, to_json(profile))


def check(original: Any, converted: Any, samples: int = 1000, seed: int = 0, data: Any = None,
          rtol: float | None = None, atol: float | None = None, trust: Iterable[str] = (), *,
          chunk_rows: int | None = None, dask: Any = None, certify: bool = False, domain: Any = None) -> Any:
    """Run both models on generated (and given) inputs and compare them; returns a `Report`.

    When `converted` is an in-memory artifact (a `Model` with metadata), the report and, with `data`, the data
    profile are recorded in it, as `convert` does; files are never modified.

    `data` may also be rows to check in chunks, every one of them (a Parquet/CSV file, folder or glob, a pyarrow
    Dataset, a Dask DataFrame, or a DataFrame with `chunk_rows`), on a Dask cluster with `dask=` (an address,
    `local[:N]` or a Client): see `portable.equivalence.streaming`. The report is then a `StreamReport`.

    With `certify=True` each output also carries a `certificate` (see `portable.certify`; `domain=` as there),
    and a refuted certificate with a verified counterexample makes the report not equivalent.
    """
    certify = _args.flag("certify", certify)
    samples, seed = _args.samples(samples), _args.seed(seed)
    rtol, atol = _args.tolerance("rtol", rtol), _args.tolerance("atol", atol)
    trust = _args.trust(trust)
    if data is not None and (chunk_rows is not None or dask is not None or _is_stream(data)):
        from .equivalence import streaming

        report = streaming.check_stream(original, converted, data, samples=samples, seed=seed, rtol=rtol,
                                        atol=atol, trust=tuple(trust), chunk_rows=chunk_rows, dask=dask)
        if certify:
            from .certification.driver import certify_report

            certify_report(report, load(original, trust=trust), load(converted, trust=trust), domain=domain,
                           trust=trust)
        if isinstance(converted, Model):
            _record_check(converted, report)
        return report
    if dask is not None:
        raise PortableError("dask= needs data= rows to check (a Parquet/CSV path, a Dataset or a DataFrame)")
    data = _args.data(data)
    orig, conv = load(original, trust=trust, data=data), load(converted, trust=trust)
    if data is None:
        orig = _input_types_from(orig, conv)
    report = _checker()(orig, conv, samples=samples, seed=seed, data=data, rtol=rtol, atol=atol)
    if certify:
        from .certification.driver import certify_report

        certify_report(report, orig, conv, data=data, domain=domain, trust=trust)
    if isinstance(converted, Model):
        _record_check(conv, report)
        _record_profile(conv, orig, data)
    return report


_TYPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # converted -> (original's ref, what it gave)


def _input_types_from(original: Model, converted: Model) -> Model:
    """A scikit-learn model given without data, whose DataFrame columns the converted model types otherwise
    (strings or integers where scikit-learn's fitted attributes alone say float64: a column no step reads, such as
    one a ColumnTransformer drops), takes the converted model's column types: the artifact learned them from data
    when it was converted. Same column names only; a column the original does read as numbers then fails there
    with scikit-learn's own message.

    Worked out once per pair of models (their signatures are fixed when they are loaded): checking the pair again
    gets the same model back, so the checker finds the pair's plan again (a model rebuilt for every check made
    every check learn the plan and the label-boundary pool again)."""
    try:
        kept = _TYPED.get(converted)
    except TypeError:  # a model that cannot be weakly referenced: worked out every time
        return _typed_original(original, converted)
    if kept is not None and kept[0]() is original:
        return original if kept[1] is None else kept[1]
    typed = _typed_original(original, converted)
    try:
        _TYPED[converted] = (weakref.ref(original), None if typed is original else typed)
    except TypeError:
        pass
    return typed


def _typed_original(original: Model, converted: Model) -> Model:
    rebuild = getattr(original, "with_data", None)
    if rebuild is None or original.format not in ("sklearn", "pickle"):
        return original
    a = {s.name: s for s in original.signature.inputs}
    b = {s.name: s for s in converted.signature.inputs}
    fitted = [str(c) for c in getattr(getattr(original, "estimator", None), "feature_names_in_", [])]
    if list(a) == ["X"] and list(b) != ["X"] and fitted == list(b):
        pass  # no column is a string to the fitted attributes alone: one matrix, where the artifact has columns
    elif len(a) < 2 or set(a) != set(b) or all(a[n].dtype == b[n].dtype or a[n].is_float == b[n].is_float and
                                               a[n].is_string == b[n].is_string for n in a):
        return original
    import pandas as pd

    frame = pd.DataFrame({n: pd.Series([""] if b[n].is_string else [0], dtype=object if b[n].is_string else
                                       ("int64" if b[n].dtype.startswith("int") else "float64")) for n in b})
    return rebuild(frame)


def _checker() -> Any:
    """`portable.equivalence.check`, imported on first use (an import statement in `check` itself costs a check
    of a small model a few percent each call)."""
    fn = _CHECKER.get("check")
    if fn is None:
        from .equivalence import check as fn

        _CHECKER["check"] = fn
    return fn


_CHECKER: dict[str, Any] = {}


def _is_stream(data: Any) -> bool:
    from .equivalence import streaming

    return streaming.is_stream(data)


def certify(original: Any, converted: Any, domain: Any = None, *, data: Any = None, rtol: float | None = None,
            atol: float | None = None, trust: Iterable[str] = ()) -> Any:
    """Prove, per output, a bound on the difference of two models over a whole input domain (issue 19).

    Args:
        original, converted: anything `load` accepts.
        domain: `{input: (lo, hi)}` (scalars or one per column), `{input: [categories]}`,
            `{(input, position): (lo, hi)}`; default: from `data`, else the models' hints, else the signature.
        data: sample input whose per-column ranges (and categories) make the domain.
        rtol, atol: override the tolerances the sampled check would use.

    Returns:
        A `portable.certification.driver.Certification`: per output a certificate (certified with a proved
        bound, refuted with a verified counterexample, or not certifiable with the reason); `.to_dict()`,
        text and HTML.
    """
    rtol, atol = _args.tolerance("rtol", rtol), _args.tolerance("atol", atol)
    trust, data = _args.trust(trust), _args.data(data)
    from .certification.driver import certify as run_certify

    orig, conv = load(original, trust=trust, data=data), load(converted, trust=trust)
    if data is None:
        orig = _input_types_from(orig, conv)
    return run_certify(orig, conv, domain, data=data, rtol=rtol, atol=atol, trust=tuple(trust))


def drift(artifact: Any, data: Any, *, reference: Any = None, thresholds: Any = None,
          trust: Iterable[str] = ()) -> dict[str, Any]:
    """Drift of `data` (array, DataFrame or {input: array}) against the data profile stored in `artifact`.

    Args:
        reference: data to profile instead of the stored profile (for an artifact converted without data).
        thresholds: a `portable.profile.DriftThresholds` (PSI 0.2, missing-rate change 0.1, unseen share 0.05).

    Returns:
        Per-feature and per-input drift; `result["drifted"]` is the verdict (None below `min_rows` rows).

    Raises:
        PortableError: no profile, or `data` does not line up with the model's inputs.
    """
    from .profile import DriftThresholds
    from .profile import drift as run_drift
    from .profile import input_arrays, profile_from_data, read_profile

    if data is None:
        raise PortableError("drift needs data: an array, a DataFrame, an {input: array} mapping or a data file")
    data, reference = _args.data(data), _args.data(reference, "reference")
    if isinstance(thresholds, Mapping):
        known = {f.name for f in dataclasses.fields(DriftThresholds)}
        if set(thresholds) - known:
            raise PortableError(f"thresholds: unknown name(s) {sorted(map(str, set(thresholds) - known))}; the "
                                f"thresholds are {sorted(known)}")
        thresholds = DriftThresholds(**thresholds)
    elif thresholds is not None and not isinstance(thresholds, DriftThresholds):
        raise PortableError(f"thresholds must be a portable.profile.DriftThresholds or a mapping of its fields, "
                            f"not {type(thresholds).__name__}")
    model = load(artifact, trust=trust)
    if reference is not None:
        profile = profile_from_data(reference, model, model.signature)
        if profile is None:
            raise PortableError(f"the reference data does not line up with the model's inputs "
                                f"{model.signature.input_names}")
    else:
        profile = read_profile(getattr(model, "metadata", None) or {}, path=getattr(model, "path", None))
        if profile is None:
            raise PortableError("the artifact stores no data profile: convert it with data= (--data), or give "
                                "reference data", path=getattr(model, "path", None))
    return run_drift(profile, input_arrays(data, model, profile), thresholds)


def list_formats() -> dict[str, FormatInfo]:
    """The registered formats by name."""
    return dict(REGISTRY.formats)


def list_converters() -> list[ConverterInfo]:
    """The registered converters (edges of the format graph)."""
    return list(REGISTRY.converters)


def export(model: Any, path: str | Path, data: Any = None, *, to: str | None = None, dtype: str = "auto",
           samples: int = 1000, seed: int = 0, force: bool = False) -> Any:
    """Notebook one-liner: convert, check, save and return the report (which renders as HTML).

    The target format comes from `path` (`.onnx`, `.nnef`, `.nnef.tgz`) unless `to` is given. A conversion that
    is not equivalent is not saved; the report says why.
    """
    from ._io import as_path, check_writable

    path = as_path(path, "path")
    _args.text("to", to, optional=True)
    force = _args.flag("force", force)
    target = to or ("nnef" if str(path).lower().endswith((".nnef", ".nnef.tgz")) else "onnx")
    check_writable(path, force, protect=(model,) if isinstance(model, (str, Path)) else (),
                   probe=True)  # before converting
    art = convert(model, to=target, dtype=dtype, samples=samples, seed=seed, data=data)
    if art.report is not None and art.report.equivalent:
        art.save(path, force=force)
    return art.report


def audit(path: str | Path, *, trust: Iterable[str] = ()) -> Any:
    """What a pickle, joblib or skops file imports and calls, and whether portable's loader admits it.

    A static scan of the opcodes, then (when every global is allowed) the restricted loader itself, as `load`
    would run it: it imports the allowlisted (or trusted) modules the file names and runs the reconstructor
    table's calls and their `__setstate__` on the file's data, then validates the fitted internals. Nothing off
    the allowlist is imported or called, and the model itself (predict, transform) never runs.

    Returns an `AuditResult` (`.safe`, `.refused`, `.to_text()`, `.to_json()`); `trust` marks names or
    package prefixes as admitted, as `load(trust=...)` would.
    """
    from ._io import as_path
    from .safety import audit as run_audit

    return run_audit(as_path(path, "path"), trust=_args.trust(trust))


def serve(artifact: Any, **kwargs: Any) -> None:
    """Serve `artifact` over HTTP (blocking): /predict, /metadata, /health, /ready, /metrics, /drift, / (DESIGN §9).

    Keyword arguments are those of `portable.serving.serve` (host, port, workers, trust, reference, max_rows, ...).
    """
    from .serving import serve as run_serve

    run_serve(artifact, **kwargs)
