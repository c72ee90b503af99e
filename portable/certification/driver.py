"""`portable.certify`: build the domain and the context, run the certification methods, verify refutations.

The domain is, by priority: the `domain=` the user gives (a box per input or column, categories), else the rows
of `data` (per column min/max, categories, NaN when the data has some), else what the models say about their
inputs (`Model.input_hints()`: scaler statistics, training ranges, encoder categories), else the signature (the
whole finite range of the input dtype); the domain records which, per column. Tolerances are the sampled
check's (`portable.equivalence.tolerance_for`: atol + rtol |original value|, elementwise). The check scales atol
by the 90th percentile of |original| over the rows it compares (at least 1), a statistic of its batch; a
certificate speaks about every row of the domain, so it scales atol only as far as it proves every row's outputs
that large (`Context.atol_scale`), and verifies a counterexample at the scale a check of that row uses
(`Context.row_scale`). Tolerances passed in (`check --certify` passes the check's own, already scaled) are used as
given. Each output gets the first certified or refuted certificate a method gives, else
the first reason; a refutation stands only when running both models on its counterexample reproduces a
difference beyond the tolerance.
"""
from __future__ import annotations

import html
import importlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..equivalence.report import _g, _jsonable
from ..errors import PortableError
from ..hints import Column
from .core import CERTIFIED, METHODS, NOT_CERTIFIABLE, REFUTED, Certificate, Context, Domain, DomainColumn, labels_differ

METHOD_MODULES = ("trees", "affine", "ibp", "text", "members", "neighbors")  # imported when present; each registers its methods


@dataclass
class Certification:
    """What `portable.certify` proved: one `Certificate` per output, over `domain`.

    Attributes:
        certificates: output name -> Certificate.
        domain: the inputs the certificates speak about.
        notes: remarks (what was learned, what failed).
        seconds: the time it took.
    """

    certificates: dict[str, Certificate]
    domain: Domain
    original: dict[str, Any] = field(default_factory=dict)
    converted: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def certified(self) -> bool:
        """Every output is certified."""
        return bool(self.certificates) and all(c.status == CERTIFIED for c in self.certificates.values())

    @property
    def refuted(self) -> bool:
        """Some output is refuted with a verified counterexample."""
        return any(c.status == REFUTED for c in self.certificates.values())

    @property
    def counterexamples(self) -> list[dict[str, Any]]:
        return [c.counterexample for c in self.certificates.values() if c.status == REFUTED and c.counterexample]

    def to_dict(self) -> dict[str, Any]:
        return {"certified": self.certified, "refuted": self.refuted, "original": self.original,
                "converted": self.converted, "domain": self.domain.to_dict(),
                "certificates": {k: c.to_dict() for k, c in self.certificates.items()}, "notes": list(self.notes),
                "seconds": self.seconds}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_jsonable)

    def rows(self) -> list[list[str]]:
        return [[name, c.status, c.method or "-", describe(c)] for name, c in self.certificates.items()]

    def to_text(self) -> str:
        verdict = "CERTIFIED" if self.certified else ("REFUTED" if self.refuted else "NOT FULLY CERTIFIED")
        lines = [f"certification: {verdict} over the domain from {self.domain.source} ({self.seconds:.2f}s)"]
        rows = [["output", "status", "method", "certificate"]] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            lines.append("  " + "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return html_section(self.to_dict())


def describe(c: Certificate | Mapping[str, Any]) -> str:
    """One line for a certificate (a `Certificate` or its `to_dict()`)."""
    d = c.to_dict() if isinstance(c, Certificate) else dict(c)
    status = d.get("status")
    if status == CERTIFIED:
        if d.get("identical"):
            return "identical function"
        det = d.get("details") or {}
        if "decision_bound" in det:
            return (f"labels equal wherever the decision margin exceeds {_g(det.get('exact_where_margin_exceeds'))}"
                    f" (near-ties only; tolerance {_g(d.get('tolerance'))})")
        return f"|difference| <= {_g(d.get('bound'))} (tolerance {_g(d.get('tolerance'))})"
    if status == REFUTED:
        cex = d.get("counterexample") or {}
        return (f"difference {_g(cex.get('difference'))} > tolerance {_g(d.get('tolerance'))} at a verified "
                f"counterexample ({d.get('reason') or ''})")
    return f"not certifiable: {d.get('reason')}"


def html_section(d: Mapping[str, Any]) -> str:
    """The certificates of a `Certification.to_dict()` as an HTML table (the report shows it too)."""
    colour = {CERTIFIED: "#1a7f37", REFUTED: "#cf222e", NOT_CERTIFIABLE: "#9a6700"}
    rows = []
    for name, c in (d.get("certificates") or {}).items():
        rows.append(f"<tr><td>{html.escape(name)}</td><td style='color:{colour.get(c.get('status'), '#000')}'>"
                    f"<b>{html.escape(str(c.get('status')))}</b></td><td>{html.escape(str(c.get('method') or '-'))}"
                    f"</td><td>{html.escape(describe(c))}</td><td>{html.escape(str(c.get('arithmetic') or ''))}"
                    "</td></tr>")
    dom = d.get("domain") or {}
    return ("<div class='portable-certificate'><h4>Certificate</h4>"
            f"<p>domain from {html.escape(str(dom.get('source')))}, {len(dom.get('columns') or [])} columns; "
            f"{_g(d.get('seconds'))}s</p><table><tr><th>output</th><th>status</th><th>method</th><th>certificate"
            "</th><th>arithmetic</th></tr>" + "".join(rows) + "</table></div>")


# ---- the domain --------------------------------------------------------------------------------------------

def _finite_range(dtype: np.dtype) -> tuple[float, float]:
    big = float(np.finfo(dtype).max)
    return -big, big


def build_domain(plan: Any, given: Any, arrays: Mapping[str, np.ndarray] | None) -> Domain:
    """The Domain over the plan's features (see the module docstring)."""
    if isinstance(given, Domain):
        return given
    user = _user_domain(given, plan) if given is not None else {}
    narrow = np.dtype(plan.narrow)
    cols: dict[Column, DomainColumn] = {}
    sources: dict[str, int] = {}
    for f in plan.features:
        key = (f.slot, f.position)
        if key in user:
            col, src = user[key], "user"
        elif f.is_string:
            col = DomainColumn(categories=[v for v in f.values if v != ""] or [""])
            src = "data" if arrays is not None and f.slot in arrays else "hints"
        elif f.from_data:
            col, src = DomainColumn(lo=float(f.lo), hi=float(f.hi), integer=f.integer), "data"
            arr = arrays.get(f.slot) if arrays else None
            if arr is not None:
                c = np.asarray(arr).reshape(len(arr), -1)[:, f.position]
                col.nan = bool(c.dtype.kind == "f" and np.isnan(c).any() and f.nan_ok)
        elif f.known:
            col, src = DomainColumn(lo=float(f.lo), hi=float(f.hi), integer=f.integer), "hints"
        else:
            lo, hi = _finite_range(narrow)
            col, src = DomainColumn(lo=lo, hi=hi, integer=f.integer), "signature"
        if col.categories is None and col.lo is not None:  # the box's ends as values of the input dtype
            col.lo = float(np.asarray(col.lo).astype(narrow))
            col.hi = float(np.asarray(col.hi).astype(narrow))
        cols[key] = col
        sources[src] = sources.get(src, 0) + 1
    source = ", ".join(f"{k} ({v} column{'s' if v > 1 else ''})" for k, v in sources.items()) \
        if len(sources) > 1 else next(iter(sources), "signature")
    return Domain(cols, source)


def _user_domain(given: Any, plan: Any) -> dict[Column, DomainColumn]:
    """`domain=` as DomainColumns: `{input: (lo, hi)}` (scalars or one per column), `{input: {"lo":, "hi":,
    "integer":, "nan":}}`, `{input: [categories]}`, or `{(input, position): ...}`."""
    if not isinstance(given, Mapping):
        raise PortableError(f"domain must be a mapping of input name (or (input, position)) to a (lo, hi) box or "
                            f"a list of categories, not {type(given).__name__}")
    width: dict[str, int] = {}
    for f in plan.features:
        width[f.slot] = max(width.get(f.slot, 0), f.position + 1)
    out: dict[Column, DomainColumn] = {}
    for key, spec in given.items():
        name, positions = (key[0], [int(key[1])]) if isinstance(key, tuple) else (key, None)
        if name not in width:
            raise PortableError(f"domain names input '{name}'; the models' inputs are {sorted(width)}")
        positions = positions if positions is not None else list(range(width[name]))
        for j, p in enumerate(positions):
            out[(name, p)] = _user_column(spec, j, f"domain[{key!r}]")
    return out


def _user_column(spec: Any, j: int, where: str) -> DomainColumn:
    if isinstance(spec, DomainColumn):
        return spec
    if isinstance(spec, Mapping):
        if "categories" in spec:
            return DomainColumn(categories=list(spec["categories"]), nan=bool(spec.get("nan", False)))
        lo, hi = _pick(spec.get("lo"), j, where), _pick(spec.get("hi"), j, where)
        col = DomainColumn(lo=lo, hi=hi, integer=bool(spec.get("integer", False)), nan=bool(spec.get("nan", False)))
    elif isinstance(spec, (list, np.ndarray)) and len(spec) and isinstance(np.asarray(spec).reshape(-1)[0], str):
        return DomainColumn(categories=[str(v) for v in spec])
    elif isinstance(spec, (tuple, list)) and len(spec) == 2:
        col = DomainColumn(lo=_pick(spec[0], j, where), hi=_pick(spec[1], j, where))
    else:
        raise PortableError(f"{where} must be (lo, hi), {{'lo': .., 'hi': ..}} or a list of categories, not {spec!r}")
    if not (np.isfinite(col.lo) and np.isfinite(col.hi) and col.lo <= col.hi):
        raise PortableError(f"{where}: the box [{col.lo}, {col.hi}] must be finite with lo <= hi")
    return col


def _pick(v: Any, j: int, where: str) -> float:
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        return float(arr[0])
    if j >= arr.size:
        raise PortableError(f"{where} gives {arr.size} bounds, fewer than the input's columns")
    return float(arr[j])


# ---- the entry point -----------------------------------------------------------------------------------------

def _load_methods(notes: list[str]) -> None:
    for name in METHOD_MODULES:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                notes.append(f"the {name} certification method could not be loaded: {exc}")


def certify(original: Any, converted: Any, domain: Any = None, *, data: Any = None, rtol: float | None = None,
            atol: float | None = None, trust: Any = (), tolerances: Mapping[str, tuple[float, float]] | None = None
            ) -> Certification:
    """Prove, for each output, a bound on the difference of two models over a whole input domain.

    Args:
        original, converted: `Model`s or anything `portable.load` accepts.
        domain: the inputs to speak about: `{input: (lo, hi)}` (scalars or per column), `{input: [categories]}`,
            `{(input, position): (lo, hi)}`, or a `portable.certification.Domain`. Default: from `data`, else from
            the models' hints, else the signature.
        data: sample input (array, DataFrame or {name: array}) whose per-column ranges make the domain.
        rtol, atol: override the check's tolerances (as in `portable.check`).
        tolerances: output -> (absolute atol, rtol) already scaled (what a sampled check used).

    Returns:
        A `Certification`: per output a `Certificate` (certified with a bound, refuted with a verified
        counterexample, or not certifiable with the reason).
    """
    from ..equivalence import load_model
    from ..equivalence.compare import match_outputs, scores_named, tolerance_for
    from ..equivalence.inputs import build_plan, data_arrays, model_hints

    started = time.perf_counter()
    original = load_model(original, trust=trust, data=data)
    converted = scores_named(original, load_model(converted, trust=trust, data=data))  # as check reads them
    notes: list[str] = []
    outputs = match_outputs(original, converted, notes)
    plan = build_plan(original, converted, data)
    arrays = data_arrays(data, original) if data is not None else None
    dom = build_domain(plan, domain, arrays)
    ha, hb = model_hints(original, notes), model_hints(converted, notes)
    sa, sb = original.signature, converted.signature
    ctx = Context(outputs=dict(outputs), atol={}, rtol={}, dtype=str(plan.narrow),
                  run_original=original.run, run_converted=converted.run,
                  inputs={s.name: (str(plan.narrow) if s.dtype.startswith("float") else s.dtype) for s in sa.inputs},
                  hints_original=ha, hints_converted=hb)
    ctx.make_feeds = _feeder(plan, dom, original)
    scales, seen = _scales(plan, original, converted, outputs, notes)
    if tolerances is not None or atol is not None:
        scales = {}
    for name, kind in outputs:
        # the dtypes the outputs come in when the models run (XGBoost returns float32 whatever its signature
        # says), as the sampled check compares them
        dtypes = seen.get(name) or (np.dtype(_float(sa.output(name).dtype)), np.dtype(_float(sb.output(name).dtype)))
        if tolerances and name in tolerances:
            ctx.atol[name], ctx.rtol[name] = tolerances[name]
            continue
        if kind == "label":  # the tolerance of a near-tie: the decision scores' at the compared dtype
            dtypes = (plan.narrow, np.dtype(np.float64))
        tol = tolerance_for("score" if kind == "label" else kind, dtypes, None if kind == "label" else rtol,
                            None if kind == "label" else atol)
        ctx.atol[name], ctx.rtol[name] = tol.atol, (0.0 if kind == "label" else tol.rtol)
        ctx.scale[name] = scales.get(name, 1.0) if tol.scaled and kind != "label" else 1.0
    _load_methods(notes)
    certs: dict[str, Certificate] = {}
    reasons: dict[str, Certificate] = {}
    for _, mname, method in list(METHODS):
        todo = [n for n, _ in outputs if n not in certs]
        if not todo:
            break
        t0 = time.perf_counter()
        try:
            got = method(original, converted, dom, ctx)
        except Exception as exc:  # a method's failure is a reason, not a crash
            notes.append(f"the {mname} method failed: {type(exc).__name__}: {exc}")
            continue
        for name, cert in (got or {}).items():
            if name not in todo:
                continue
            cert.method = cert.method or mname
            cert.seconds = cert.seconds or time.perf_counter() - t0
            if cert.status == REFUTED:
                cert = _verify(cert, original, converted, ctx, outputs, ha)
            if cert.status in (CERTIFIED, REFUTED):
                certs[name] = cert
            elif name not in reasons or (reasons[name].bound is None and cert.bound is not None):
                reasons[name] = cert  # the first reason, unless a later method expressed the pair (a bound)
    _cross_check(certs, original, converted, ctx, outputs, ha, dom, arrays, notes)
    for name, _ in outputs:
        if name not in certs:
            certs[name] = reasons.get(name) or Certificate(name, NOT_CERTIFIABLE, reason=(
                "no certification method applies to this pair of models (the methods: "
                + ", ".join(m for _, m, _ in METHODS) + ")"))
        certs[name].domain = {"source": dom.source}
        _explain_scale(certs[name], ctx, dict(outputs)[name])
        _explain_floor(certs[name], ctx, dict(outputs)[name], dom, original)
        if certs[name].tolerance is None and certs[name].status != NOT_CERTIFIABLE:
            certs[name].tolerance = ctx.allowed(name)
    ordered = {name: certs[name] for name, _ in outputs}
    return Certification(ordered, dom, original=_describe(original), converted=_describe(converted), notes=notes,
                         seconds=time.perf_counter() - started)


def _explain_scale(cert: Certificate, ctx: Context, kind: str) -> None:
    """Say so when a numeric output is not certified only because atol is not scaled by the outputs' magnitude
    on the domain's rows: the bound is within that scaled tolerance, but no lower bound of |output| over the
    domain as large is proved (a check of rows whose outputs are small scales atol by 1)."""
    s = ctx.scale.get(cert.output, 1.0)
    if kind == "label" or cert.status == CERTIFIED or cert.bound is None or cert.tolerance is None or not s > 1:
        return
    used = float(cert.details.get("atol_scale", 1.0))
    scaled = cert.tolerance + ctx.atol.get(cert.output, 0.0) * (s - used)
    cert.details["tolerance_at_the_domain_rows_scale"] = scaled
    if cert.bound <= scaled:
        cert.reason = (cert.reason or "") + (
            f" (the bound is within {scaled:.3g}, the tolerance with atol scaled by the 90th percentile of |output| "
            f"on rows of the domain ({s:.3g}); but the outputs are not proved to stay that large over the domain, "
            f"and a check of rows whose outputs are small scales atol by {used:.3g})")


def floor_needed(bound: float, atol: float, rtol: float, scale: float) -> float:
    """The smallest magnitude m such that a bound of `bound` is within the tolerance of every row whose |output|
    is at least m, were |output| >= m proved over the domain: `atol * max(1, min(scale, m)) + rtol * m >= bound`
    (inf when no m does: beyond the domain rows' scale, atol grows no more)."""
    if atol >= bound:
        return 0.0
    m = bound / (atol + rtol) if atol + rtol > 0 else np.inf
    if m <= 1.0:  # atol alone up to m = 1: only rtol has to make up the rest
        m = (bound - atol) / rtol if rtol > 0 else np.inf
        return float(m) if m <= 1.0 else 1.0
    if m > scale:  # atol stops at the scale: rtol alone beyond it
        m = (bound - atol * scale) / rtol if rtol > 0 else np.inf
    return float(m)


def _explain_floor(cert: Certificate, ctx: Context, kind: str, dom: Domain, original: Any, n: int = 2048) -> None:
    """For a numeric output of one value per row, not certified because its bound exceeds the tolerance: the
    smallest |output| the bound would need proved over the domain (`floor_needed`), and whether the domain has a
    row below it. The original is run on `n` rows of the domain (half uniform in the box, half its corners): a row
    whose |output| is below the floor shows that no proof of that floor exists, and that certifying needs a bound
    at most the tolerance of that row's check there (a sharper bound near it, not a range proof); none such says a
    range proof may close the gap. Figures only: the certificate's status does not change."""
    if kind == "label" or cert.status == CERTIFIED or cert.bound is None or ctx.make_feeds is None:
        return
    name = cert.output
    atol, rtol, s = ctx.atol.get(name, 0.0), ctx.rtol.get(name, 0.0), ctx.scale.get(name, 1.0)
    need = floor_needed(float(cert.bound), atol, rtol, max(s, 1.0))
    if not np.isfinite(need) or need <= 0:
        return
    try:
        from .members import _sample

        rows, cols = _sample(dom, n // 2)
        corners, _ = _sample(dom, n // 2, seed=1)
        rng = np.random.default_rng(2)
        for j, c in enumerate(cols):
            col = dom.columns[c]
            if col.categories is None:
                corners[:, j] = np.where(rng.random(len(corners)) < 0.5, col.lo, col.hi)
        rows = np.concatenate([rows, corners])
        feeds = ctx.make_feeds(rows, cols)
        out = np.abs(np.asarray(original.run(feeds)[name], dtype=np.float64)).reshape(len(rows), -1)
    except Exception:  # noqa: BLE001 - figures only
        return
    if out.shape[1] != 1:  # a row's magnitude is then a percentile of its values, not each value's: no figures
        return
    finite = np.where(np.isfinite(out), out, np.inf)
    per_row = finite.min(axis=1) if finite.size else np.zeros(0)
    if not per_row.size or not np.isfinite(per_row.min()):
        return
    k = int(np.argmin(per_row))
    m = float(per_row[k])
    cert.details["floor_needed"] = need
    cert.details["smallest_output_found"] = m
    cert.details["row_with_smallest_output"] = {k2: np.asarray(v)[k:k + 1].tolist() for k2, v in feeds.items()}
    allowed_there = atol * max(1.0, min(s, m)) + rtol * m
    if m < need:
        cert.details["tolerance_at_that_row"] = allowed_there
        cert.reason = (cert.reason or "") + (
            f"; the bound would certify only with |output| >= {need:.3g} proved over the domain, but the original "
            f"gives |output| = {m:.3g} at a row of the domain ({len(rows)} rows tried), where a check allows "
            f"{allowed_there:.3g}: no such floor exists, and certifying needs a bound at most {allowed_there:.3g} "
            f"near that row")
    else:
        cert.reason = (cert.reason or "") + (
            f"; the bound would certify with |output| >= {need:.3g} proved over the domain, and the smallest "
            f"|output| on {len(rows)} rows of the domain is {m:.3g}: a tighter proof of the output's range may "
            f"certify it")


def _float(dtype: str) -> str:
    return dtype if dtype.startswith("float") else "float64"


def _describe(model: Any) -> dict[str, Any]:
    return {"format": model.format, "name": model.name}


def _scales(plan: Any, original: Any, converted: Any, outputs: list[tuple[str, str]],
            notes: list[str]) -> tuple[dict[str, float], dict[str, tuple[np.dtype, np.dtype]]]:
    """The check's atol scale per numeric output: the 90th percentile of |original output| (at least 1) on rows
    the checker generates, as `portable.equivalence.compare` computes it on its batch; and the dtypes both
    models' outputs come in."""
    from ..equivalence.inputs import assemble, feed, generate

    from ..equivalence.inputs import Batch

    batch = generate(plan, 256, np.random.default_rng(0))
    complete = ~np.isnan(batch.num).any(axis=1) if batch.num.size else np.ones(len(batch), dtype=bool)
    tries = [batch, Batch(batch.num[complete], batch.txt[complete], batch.source[complete])]
    # without missing values when the original refuses them; else the groups of 8 rows it accepts
    tries += [Batch(batch.num[i:i + 8], batch.txt[i:i + 8], batch.source[i:i + 8]) for i in range(0, len(batch), 8)]
    outs, convs, error = [], [], None
    for k, rows in enumerate(tries):
        try:
            arrays = assemble(plan, rows)
            a = original.run(feed(arrays, original))
            fed = feed(arrays, converted)
            n = len(next(iter(fed.values()))) if fed else 0
            # a few rows at a time: a text graph's tensors grow with the documents' characters (the hints' long
            # documents through a character n-gram graph took 3.9 GB for 256 rows at once)
            parts = [converted.run({k: v[i:i + 32] for k, v in fed.items()}) for i in range(0, max(n, 1), 32)]
            b = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
        except Exception as exc:
            error = exc
            continue
        outs.append(a)
        convs.append(b)
        if k < 2:
            break
    if not outs:
        notes.append(f"tolerances were not scaled by the outputs' magnitude ({type(error).__name__}: {error})")
        return {}, {}
    out = {n: np.concatenate([np.asarray(o[n]) for o in outs]) for n in outs[0]}
    conv = {n: np.concatenate([np.asarray(o[n]) for o in convs]) for n in convs[0]}
    seen = {}
    for name, _ in outputs:
        da, db = np.asarray(out.get(name, [])).dtype, np.asarray(conv.get(name, [])).dtype
        if da.kind == "f" and db.kind == "f":
            seen[name] = (da, db)
    scales = {}
    for name, kind in outputs:
        v = np.abs(np.asarray(out.get(name, []), dtype=np.float64).reshape(-1)) if kind != "label" else None
        if v is not None and v.size:
            v = v[np.isfinite(v)]
            scales[name] = max(1.0, float(np.percentile(v, 90))) if v.size else 1.0
    return scales, seen


def _feeder(plan: Any, dom: Domain, model: Any) -> Any:
    """`make_feeds(rows, columns)` for the Context: rows of domain columns as the plan's input arrays."""
    from ..equivalence.inputs import Batch

    index = {(f.slot, f.position): i for i, f in enumerate(plan.features)}
    default_num = np.zeros(len(plan.features))
    default_txt = np.full(plan.text_width, "", dtype=object)
    for i, f in enumerate(plan.features):
        col = dom.columns.get((f.slot, f.position))
        if col is None:
            continue
        if col.categories is not None:
            if f.is_string:
                default_txt[i] = str(col.categories[0])
            else:
                default_num[i] = float(col.categories[0])
        elif col.lo is not None:
            mid = col.lo / 2 + col.hi / 2
            default_num[i] = min(max(0.0, col.lo), col.hi) if col.lo <= 0 <= col.hi else mid

    def make_feeds(rows: np.ndarray, columns: list[Column]) -> dict[str, np.ndarray]:
        from ..equivalence.inputs import assemble

        rows = np.asarray(rows)
        n = len(rows)
        num = np.tile(default_num, (n, 1))
        txt = np.tile(default_txt, (n, 1)) if plan.text_width else np.zeros((n, 0), dtype=object)
        for j, c in enumerate(columns):
            i = index.get(c)
            if i is None:
                continue
            if plan.features[i].is_string:
                txt[:, i] = rows[:, j].astype(str)
            else:
                num[:, i] = rows[:, j].astype(np.float64)
        return assemble(plan, Batch(num, txt, np.zeros(n, dtype=np.int8)))

    return make_feeds


#: how many random points of the domain (and data rows at most) `_cross_check` runs both models on
CROSS_CHECK_POINTS = 128


def _run_pair(original: Any, converted: Any, arrays: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """Both models on the same input arrays (the converted one a few rows at a time: a text graph's tensors grow
    with the documents' characters)."""
    from ..equivalence.inputs import feed

    a = original.run(feed(arrays, original))
    fed = feed(arrays, converted)
    n = len(next(iter(fed.values()))) if fed else 0
    parts = [converted.run({k: v[i:i + 32] for k, v in fed.items()}) for i in range(0, max(n, 1), 32)]
    return a, {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def _cross_check(certs: dict[str, Certificate], original: Any, converted: Any, ctx: Context,
                 outputs: list[tuple[str, str]], hints: Any, dom: Domain, arrays: Mapping[str, np.ndarray] | None,
                 notes: list[str]) -> None:
    """A certificate is a proof about the two models as a method *reads* them (a tree view of a LightGBM booster,
    the coefficients of a pipeline): when a reading is wrong, the proof is about other functions. Run both models
    on points of the domain (random points, NaN in 15% of a column's cells where the domain admits it, its two
    extreme corners, the data rows given that lie in it) and keep a certified
    bound only where no difference they show exceeds it (a label: no mismatch outside the checker's near-ties).
    A contradicted certificate is refuted with that input as a verified counterexample when the difference also
    exceeds the tolerance, and not certifiable otherwise (saying so): never returned as certified."""
    todo = [name for name, c in certs.items() if c.status == CERTIFIED]
    if not todo or ctx.make_feeds is None:
        return
    from .members import _sample

    batches = []
    try:
        rows, cols = _sample(dom, CROSS_CHECK_POINTS, seed=1)
        rng = np.random.default_rng(2)
        for j, c in enumerate(cols):  # missing values where the domain admits them (a misread default branch)
            if dom.columns[c].nan and dom.columns[c].categories is None:
                rows[rng.random(len(rows)) < 0.15, j] = np.nan
        ends = np.empty((2, len(cols)), dtype=object)
        for j, c in enumerate(cols):
            col = dom.columns[c]
            ends[:, j] = [col.categories[0], col.categories[-1]] if col.categories is not None else [col.lo, col.hi]
        batches.append(ctx.make_feeds(np.concatenate([rows, ends]), cols))
    except Exception as exc:  # noqa: BLE001 - no points: the proof stands alone, saying so
        notes.append(f"the certificates were not cross-checked on points of the domain ({type(exc).__name__}: {exc})")
    if arrays:
        # the rows as the check feeds them: float columns in the dtype the comparison runs in (a float32
        # artifact's domain is float32 values: a float64 row may fall on the other side of a split after rounding)
        narrowed = {k: (np.asarray(v).astype(ctx.inputs[k]) if np.asarray(v).dtype.kind == "f" and
                        str(ctx.inputs.get(k, "")).startswith("float") else np.asarray(v)) for k, v in arrays.items()}
        keep = np.flatnonzero(_inside(dom, narrowed))[:CROSS_CHECK_POINTS]
        if len(keep):
            batches.append({k: v[keep] for k, v in narrowed.items()})
    kinds = dict(outputs)
    for arrays_k in batches:
        try:
            a, b = _run_pair(original, converted, arrays_k)
        except Exception as exc:  # noqa: BLE001 - a model that fails on these rows: the check says so
            notes.append(f"the certificates were not cross-checked on points of the domain ({type(exc).__name__}: "
                         f"{exc})")
            continue
        n = len(next(iter(arrays_k.values())))
        for name in todo:
            cert = certs[name]
            if cert.status != CERTIFIED or name not in a or name not in b:
                continue
            kind = kinds[name]
            sev = _severity(name, kind, a, b, n, ctx, hints, arrays_k, original)
            if kind == "label":
                worst = np.flatnonzero(sev > 1.0)
                if not len(worst):
                    continue
                r, diff, shown = int(worst[0]), None, "labels that differ outside a near-tie"
            else:
                x = np.asarray(a[name], np.float64).reshape(n, -1)
                y = np.asarray(b[name], np.float64).reshape(n, -1)
                with np.errstate(invalid="ignore", over="ignore"):
                    d = np.abs(x - y)
                    d = np.where((x == y) | (np.isnan(x) & np.isnan(y)), 0.0, np.where(np.isnan(d), np.inf, d))
                    # the float64 subtraction's own rounding aside
                    over = d - (float(cert.bound or 0.0) + 4 * np.finfo(np.float64).eps * np.maximum(abs(x), abs(y)))
                over_row = over.max(axis=1) if over.size else np.zeros(n)
                if not (over_row > 0).any():
                    continue
                r = int(np.argmax(over_row))
                diff = float(d[r].max())
                shown = f"a difference of {diff:.3g}"
            cex = {"inputs": {k: np.asarray(v)[r:r + 1].tolist() for k, v in arrays_k.items()},
                   "original": {k: np.asarray(v)[r:r + 1].tolist() for k, v in a.items()},
                   "converted": {k: np.asarray(v)[r:r + 1].tolist() for k, v in b.items()},
                   "found_by": f"cross-check of the {cert.method} certificate", "verified": True, "difference": diff}
            why = (f"running both models on a point of the domain shows {shown}, beyond the bound "
                   f"{_g(cert.bound)} the {cert.method} method proved: it reads one of the models otherwise than it "
                   "computes")
            details = {**cert.details, "contradicted_bound": cert.bound}
            if sev[r] > 1.0:
                certs[name] = Certificate(name, REFUTED, method=cert.method, bound=cert.bound,
                                          tolerance=cert.tolerance, arithmetic=cert.arithmetic, reason=why,
                                          counterexample=cex, details=details, seconds=cert.seconds)
            else:
                certs[name] = Certificate(name, NOT_CERTIFIABLE, method=cert.method, tolerance=cert.tolerance,
                                          reason=why + " (within the tolerance there: the sampled check stands alone)",
                                          details={**details, "counterexample": cex}, seconds=cert.seconds)
            notes.append(f"the {cert.method} certificate of '{name}' was contradicted by running both models")


def _inside(dom: Domain, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per row of `arrays` (`{input: [n, ...]}`), whether it lies in the domain: every numeric column within its
    box (NaN only where the column admits it), every categorical one among its categories."""
    n = len(next(iter(arrays.values())))
    ok = np.ones(n, bool)
    for name, arr in arrays.items():
        flat = np.asarray(arr).reshape(n, -1)
        for p in range(flat.shape[1]):
            col = dom.columns.get((name, p))
            if col is None:
                continue
            v = flat[:, p]
            if col.categories is not None:
                ok &= np.isin(v.astype(str), np.asarray([str(c) for c in col.categories]))
            elif v.dtype.kind in "fiub":
                v = v.astype(np.float64)
                with np.errstate(invalid="ignore"):
                    ok &= ((v >= col.lo) & (v <= col.hi)) | (np.isnan(v) & col.nan)
            else:
                ok &= False
    return ok


def _verify(cert: Certificate, original: Any, converted: Any, ctx: Context, outputs: list[tuple[str, str]],
            hints: Any) -> Certificate:
    """Run both models on the refutation's counterexample (or candidates): keep it refuted only when a
    difference beyond the tolerance reproduces, else downgrade to not certifiable, saying so."""
    from ..equivalence.inputs import feed

    name = cert.output
    kind = dict(outputs)[name]
    batches = list(cert.candidates)
    if cert.counterexample and "inputs" in cert.counterexample:
        batches.insert(0, {k: np.asarray(v) for k, v in cert.counterexample["inputs"].items()})
    best: tuple[float, dict[str, np.ndarray], int, dict, dict] | None = None
    tried = 0
    for arrays in batches:
        if not arrays:
            continue
        try:
            a = original.run(feed(arrays, original))
            fed = feed(arrays, converted)
            n = len(next(iter(fed.values()))) if fed else 0
            # a few rows at a time: a text graph's tensors grow with the documents' characters (the hints' long
            # documents through a character n-gram graph took 3.9 GB for 256 rows at once)
            parts = [converted.run({k: v[i:i + 32] for k, v in fed.items()}) for i in range(0, max(n, 1), 32)]
            b = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
        except Exception as exc:
            cert.details["verification_error"] = f"{type(exc).__name__}: {exc}"
            continue
        n = len(next(iter(arrays.values())))
        tried += n
        sev = _severity(name, kind, a, b, n, ctx, hints, arrays, original)
        r = int(np.argmax(sev))
        if best is None or sev[r] > best[0]:
            best = (float(sev[r]), arrays, r, a, b)
    cert.candidates = []
    if best is not None and best[0] > 1.0:
        sev, arrays, r, a, b = best
        va = np.asarray(a[name])[r:r + 1]
        vb = np.asarray(b[name])[r:r + 1]
        diff = None if kind == "label" else float(np.max(np.abs(va.astype(np.float64) - vb.astype(np.float64))))
        cert.counterexample = {"inputs": {k: np.asarray(v)[r:r + 1].tolist() for k, v in arrays.items()},
                               "original": {k: np.asarray(v)[r:r + 1].tolist() for k, v in a.items()},
                               "converted": {k: np.asarray(v)[r:r + 1].tolist() for k, v in b.items()},
                               "found_by": f"certificate ({cert.method})", "verified": True, "difference": diff}
        if cert.reason and "no input was found" in cert.reason:  # the method's own search failed; this did not
            cert.reason = cert.reason.split(" and no input was found")[0].split(", and no input was found")[0] + \
                ": reproduced at a verified input (both models run on it)"
        return cert
    reason = cert.reason or "the proved bound exceeds the tolerance"
    if cert.details.get("unreadable"):  # nothing was proved: the candidates came from the original's reading
        return Certificate(name, NOT_CERTIFIABLE, method=cert.method, details=cert.details, seconds=cert.seconds,
                           reason=f"{reason} (none of the {tried} inputs tried, points the original's reading singles "
                           "out or random points of the domain, shows a difference beyond the tolerance)")
    return Certificate(name, NOT_CERTIFIABLE, method=cert.method, bound=cert.bound, tolerance=cert.tolerance,
                       arithmetic=cert.arithmetic, details=cert.details, seconds=cert.seconds,
                       reason=f"{reason}, but none of the {tried} inputs where the difference should be largest "
                       "reproduces a difference beyond the tolerance (the bound may be loose there, or the "
                       "difference lies within rounding of a split): the sampled check stands alone")


def _severity(name: str, kind: str, a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], n: int,
              ctx: Context, hints: Any, arrays: Mapping[str, np.ndarray], original: Any) -> np.ndarray:
    """Per row: the difference in units of the tolerance (labels: 2 where they differ outside a near-tie)."""
    va, vb = np.asarray(a[name]), np.asarray(b[name])
    if kind == "label":
        differ = labels_differ(va, vb).reshape(n, -1).any(axis=1)
        dec = getattr(hints, "decision", None)
        if differ.any() and dec is not None and dec.output == name:
            from ..equivalence.inputs import feed

            try:
                v = np.asarray(dec.compute(feed(arrays, original)), np.float64).reshape(n, -1)
                if v.shape[1] == 1:
                    gap = np.abs(v[:, 0] - dec.threshold)
                else:
                    part = np.sort(v, axis=1)
                    gap = part[:, -1] - part[:, -2]
                # atol scaled as a check of the row alone scales it (its decision values' 90th percentile)
                k = int(0.9 * (v.shape[1] - 1))
                own = np.maximum(1.0, np.partition(np.abs(v), k, axis=1)[:, k])
                differ &= gap > 2 * ctx.atol.get(name, 0.0) * own
            except Exception:
                pass
        return differ.astype(float) * 2.0
    x = va.reshape(n, -1).astype(np.float64)
    y = vb.reshape(n, -1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.abs(x - y)
        d = np.where((x == y) | (np.isnan(x) & np.isnan(y)), 0.0, np.where(np.isnan(d), np.inf, d))
        # per row, the tolerance of a check of that row: atol scaled by the row's own magnitude, or by the
        # domain's scale when smaller (`Context.row_scale`)
        s = ctx.scale.get(name, 1.0)
        if s > 1.0 and x.size:
            k = int(0.9 * (x.shape[1] - 1))
            own = np.partition(np.where(np.isfinite(x), np.abs(x), 0.0), k, axis=1)[:, k:k + 1]
            scale = np.maximum(1.0, np.minimum(s, own))
        else:
            scale = 1.0
        allowed = ctx.atol.get(name, 0.0) * scale + ctx.rtol.get(name, 0.0) * np.abs(x)
        return (d / np.maximum(allowed, 1e-300)).max(axis=1)


def certify_report(report: Any, original: Any, converted: Any, *, data: Any = None, domain: Any = None,
                   trust: Any = ()) -> Certification:
    """Certify the pair a sampled check compared and put the result in its report: a `certificate` entry per
    output (DESIGN §6), `report.certification`; a verified refutation makes the report not equivalent and joins
    its counterexamples. The check's own tolerances (already scaled) are the certificates' tolerances."""
    tolerances = {o["name"]: (float(o["atol"]), float(o["rtol"])) for o in report.outputs
                  if o.get("atol") is not None and o.get("rtol") is not None}
    result = certify(original, converted, domain, data=data, trust=trust, tolerances=tolerances)
    for o in report.outputs:
        cert = result.certificates.get(o["name"])
        if cert is not None:
            o["certificate"] = cert.to_dict()
    report.certification = {"certified": result.certified, "refuted": result.refuted,
                            "domain": result.domain.to_dict(), "seconds": round(result.seconds, 4),
                            "notes": result.notes}
    for name, cert in result.certificates.items():
        if cert.status == REFUTED and cert.counterexample:
            report.equivalent = False
            report.counterexamples.append(cert.counterexample)
            report.notes.append(f"the certificate of '{name}' is refuted: {describe(cert)}")
    return result


__all__ = ["certify", "certify_report", "Certification", "build_domain", "describe", "html_section"]
