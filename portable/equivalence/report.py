"""The equivalence report (DESIGN §6): a dict/JSON layout, a terminal table, and HTML for notebooks."""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any


def _g(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


@dataclass
class Report:
    """What `portable.check` found. `equivalent` is the verdict; the rest says why, with numbers.

    Attributes:
        outputs: one dict per output (DESIGN §6): name, kind, dtype, max_abs_diff, max_rel_diff, atol, rtol,
            mismatches, near_ties (labels), worst_row, and error when shapes or dtypes differ.
        counterexamples: the smallest failing inputs found (the first one shrunk by hypothesis), each with
            both models' outputs on it, so `model.run(c["inputs"])` reproduces the difference.
        generation: how many compared rows came from each source (cloud, boundary, special, data).
        learned: what the input ranges were learned from.
        boundary: `split_nodes` (split nodes the two models' trees have) and `tested` (those that got
            path-aware boundary rows: all of them, or a seeded sample when there are too many).
        rejected_by_original: generated rows the original model rejected (unknown categories, no neighbour
            within a radius, ...), dropped from the comparison.
    """

    equivalent: bool
    original: dict[str, Any] = field(default_factory=dict)
    converted: dict[str, Any] = field(default_factory=dict)
    samples: int = 0
    seed: int = 0
    dtype: str | None = None
    rows: int = 0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    counterexamples: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generation: dict[str, int] = field(default_factory=dict)
    learned: list[str] = field(default_factory=list)
    boundary: dict[str, int] = field(default_factory=lambda: {"split_nodes": 0, "tested": 0})
    rejected_by_original: int = 0
    seconds: float = 0.0
    #: with `certify=True`: the certification's domain, verdict and time (each output also carries its
    #: `certificate` entry, DESIGN §6); None when the check did not certify
    certification: dict[str, Any] | None = None
    #: per numeric output, each row's error in units of its tolerance (|a - b| / (atol + rtol |a|)); kept so
    #: that the distribution is computed only when a report is shown or saved
    severities: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def error_histograms(self) -> dict[str, dict[str, list[Any]]]:
        """Per numeric output: how many rows fall in each decade of error/tolerance (1 = at the tolerance)."""
        out = {}
        for name, sev in self.severities.items():
            counts = decade_counts(sev)
            if counts is not None:
                out[name] = {"edges": HIST_LABELS, "counts": counts}
        return out

    # -- machine-readable ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"equivalent": self.equivalent, "original": self.original, "converted": self.converted,
                "samples": self.samples, "seed": self.seed, "dtype": self.dtype, "rows": self.rows,
                "generation": self.generation, "learned": self.learned, "boundary": self.boundary,
                "rejected_by_original": self.rejected_by_original, "outputs": self.outputs,
                "counterexamples": self.counterexamples, "notes": self.notes, "seconds": round(self.seconds, 4),
                "error_histograms": self.error_histograms(),
                **({"certification": self.certification} if self.certification is not None else {})}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_jsonable)

    def summary_json(self) -> str:
        """The compact summary stored in an artifact's `portable.check` metadata."""
        summary = {"equivalent": self.equivalent, "samples": self.samples, "seed": self.seed, "dtype": self.dtype,
                   "rows": self.rows,
                   "outputs": {o["name"]: {k: o[k] for k in ("max_abs_diff", "atol", "rtol", "mismatches",
                                                              "near_ties") if o.get(k) is not None}
                               for o in self.outputs}}
        if self.notes:
            summary["notes"] = self.notes
        return json.dumps(summary, separators=(",", ":"), default=_jsonable)

    # -- human-readable -------------------------------------------------------------------------------------
    @property
    def worst(self) -> dict[str, Any] | None:
        """The numeric output whose largest difference is closest to (or furthest beyond) its tolerance."""
        numeric = [o for o in self.outputs if o.get("max_abs_diff") is not None]
        if not numeric:
            return None

        def ratio(o: dict[str, Any]) -> float:
            top = o["max_abs_diff"]
            return top / max(o.get("atol") or 0.0, 1e-300)
        return max(numeric, key=ratio)

    def summary_line(self) -> str:
        """One line: the verdict and the worst difference."""
        verdict = "equivalent" if self.equivalent else "NOT equivalent"
        parts = [f"{verdict} on {self.rows:,} rows"]
        bad = [o for o in self.outputs if o.get("mismatches") or o.get("error")]
        for o in bad:
            parts.append(f"{o['name']}: {o.get('error') or str(o['mismatches']) + ' mismatching rows'}")
        w = self.worst
        if w is not None:
            parts.append(f"max abs diff {w['max_abs_diff']:.3g} on {w['name']} (atol {w['atol']:.3g}, "
                         f"rtol {w['rtol']:.3g})")
        ties = sum(o.get("near_ties") or 0 for o in self.outputs)
        if ties:
            parts.append(f"{ties} near-tie label(s)")
        return "; ".join(parts)

    def _head(self) -> list[str]:
        o, c = self.original, self.converted
        what = (f"{o.get('format', '?')} {o.get('name', '')}".strip() + " vs " +
                f"{c.get('format', '?')} {c.get('path') or '(in memory)'}")
        gen = ", ".join(f"{v:,} {k}" for k, v in self.generation.items() if v)
        lines = [f"portable check: {'EQUIVALENT' if self.equivalent else 'NOT EQUIVALENT'}  ({what}"
                 + (f", {self.dtype}" if self.dtype else "") + ")",
                 f"{self.rows:,} rows" + (f" ({gen})" if gen else "") + f"; seed {self.seed}; {self.seconds:.2f}s"]
        if self.learned:
            lines.append("input ranges from: " + ", ".join(self.learned))
        b = self.boundary or {}
        if b.get("split_nodes"):
            lines.append(f"tree boundaries: {b['tested']:,} of {b['split_nodes']:,} split nodes tested"
                         + ("" if b["tested"] == b["split_nodes"] else " (a seeded sample)"))
        if self.rejected_by_original:
            lines.append(f"{self.rejected_by_original:,} generated rows rejected by the original model were dropped")
        return lines

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["output", "kind", "max abs diff", "max rel diff", "atol", "rtol", "mismatches", "near-ties",
                  "worst row"]
        certified = any("certificate" in o for o in self.outputs)
        if certified:
            header.append("certificate")
        rows = [self._row(o) + ([_certificate(o.get("certificate"))] if certified else []) for o in self.outputs]
        return header, rows

    @staticmethod
    def _row(o: dict[str, Any]) -> list[str]:
        if o.get("error"):
            return [o["name"], o["kind"], "error: " + o["error"], "", "", "", _g(o["mismatches"]), "", ""]
        exact = o["kind"] == "label"
        return [o["name"], o["kind"], "exact" if exact else _g(o.get("max_abs_diff")),
                "" if exact else _g(o.get("max_rel_diff")), "" if exact else _g(o.get("atol")),
                "" if exact else _g(o.get("rtol")), _g(o["mismatches"]),
                _g(o.get("near_ties")) if exact else "", _g(o.get("worst_row"))]

    def to_text(self) -> str:
        """A readable table for the terminal."""
        header, rows = self._table()
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        fmt = "  ".join("{:<%d}" % w for w in widths)
        lines = self._head() + ["", fmt.format(*header).rstrip(), fmt.format(*["-" * w for w in widths])]
        lines += [fmt.format(*r).rstrip() for r in rows]
        if self.certification is not None:
            from ..certification.driver import describe

            lines.append("")
            lines.append(f"certificates (domain from {self.certification.get('domain', {}).get('source')}, "
                         f"{self.certification.get('seconds', 0):.2f}s):")
            lines += [f"  {o['name']}: {describe(o['certificate'])}" for o in self.outputs if "certificate" in o]
        for i, c in enumerate(self.counterexamples, start=1):
            lines.append("")
            lines.append(f"counterexample {i}" + (f" ({c['found_by']})" if c.get("found_by") else "") + ":")
            lines.append("  inputs:    " + _compact(c["inputs"]))
            lines.append("  original:  " + _compact(c["original"]))
            lines.append("  converted: " + _compact(c["converted"]))
        if self.notes:
            lines.append("")
            lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<portable.check.Report {self.summary_line()}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        color = "#1a7f37" if self.equivalent else "#cf222e"
        head = self._head()
        parts = [f'<div class="portable-report"><p style="color:{color};font-weight:bold">{esc(head[0])}</p>',
                 "<p>" + "<br>".join(esc(line) for line in head[1:]) + "</p>"]
        header, rows = self._table()
        parts.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
        for r, o in zip(rows, self.outputs):
            style = "" if not (o.get("mismatches") or o.get("error")) else ' style="color:#cf222e"'
            parts.append(f"<tr{style}>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
        parts.append("</tbody></table>")
        if self.certification is not None:
            from ..certification.driver import html_section

            parts.append(html_section({**self.certification, "certificates": {
                o["name"]: o["certificate"] for o in self.outputs if "certificate" in o}}))
        hists = self.error_histograms()
        if hists:
            parts.append('<p style="margin-bottom:0">error per row, in units of the tolerance '
                         '(red: beyond it)</p><div style="display:flex;gap:16px;flex-wrap:wrap">')
            parts.extend(_svg_histogram(name, h["counts"]) for name, h in hists.items())
            parts.append("</div>")
        for i, c in enumerate(self.counterexamples, start=1):
            parts.append(f"<details><summary>counterexample {i}{esc(' (' + c['found_by'] + ')') if c.get('found_by') else ''}"
                         "</summary><pre>" + esc(json.dumps({k: c[k] for k in ("inputs", "original", "converted")},
                                                            default=_jsonable)) + "</pre></details>")
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        parts.append("</div>")
        return "".join(parts)


#: decades of error/tolerance; the last two bins are beyond the tolerance
HIST_EDGES = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, float("inf")]
HIST_LABELS = ["0", "1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1", "1", "10", "inf"]
_INNER: Any = None  # HIST_EDGES[1:-1] as an array, made on first use (numpy is imported lazily)


def decade_counts(severity: Any) -> list[int] | None:
    """How many values of `severity` (errors in units of their tolerance) fall in each bin of `HIST_EDGES`,
    as `np.histogram` counts them (half-open bins, the last one closed), with NaN counted as infinite and
    negative values as 0; None for no values. One binary search per value and one count: np.histogram with
    its clipping costs five times as much, which a check of a small model pays on every call."""
    import numpy as np

    global _INNER
    sev = np.asarray(severity, dtype=np.float64).reshape(-1)
    if not sev.size:
        return None
    if _INNER is None:
        _INNER = np.array(HIST_EDGES[1:-1])
    # side="right": a value equal to an edge goes to the bin it opens; NaN sorts after +inf, into the last bin
    return np.bincount(np.searchsorted(_INNER, sev, side="right"), minlength=len(HIST_EDGES) - 1).tolist()


def _svg_histogram(name: str, counts: list[int]) -> str:
    """A small inline SVG bar chart (no plotting library needed in the notebook)."""
    w, h, pad, bar = 260, 110, 18, 26
    top = max(max(counts), 1)
    bars = []
    for i, c in enumerate(counts):
        height = 0 if c == 0 else max(2, round((h - 2 * pad) * c / top))
        x = 4 + i * (bar + 2)
        color = "#cf222e" if i >= len(counts) - 2 else "#2f81f7"
        bars.append(f'<rect x="{x}" y="{h - pad - height}" width="{bar}" height="{height}" fill="{color}">'
                    f"<title>{HIST_LABELS[i]}..{HIST_LABELS[i + 1]}: {c} rows</title></rect>")
        if c:
            bars.append(f'<text x="{x + bar / 2}" y="{h - pad - height - 3}" font-size="9" '
                        f'text-anchor="middle">{c}</text>')
    ticks = "".join(f'<text x="{4 + i * (bar + 2)}" y="{h - 4}" font-size="8">{html.escape(t)}</text>'
                    for i, t in enumerate(HIST_LABELS[:-1]) if i % 2 == 1 or i == 7)
    return (f'<svg class="portable-hist" width="{w}" height="{h}" role="img" aria-label="error distribution of '
            f'{html.escape(name)}"><text x="4" y="11" font-size="11" font-weight="bold">{html.escape(name)}</text>'
            + "".join(bars) + ticks + "</svg>")


def _certificate(c: dict[str, Any] | None) -> str:
    """A certificate in a few words for the table (the full entry is in the JSON)."""
    if not c:
        return "-"
    if c.get("status") == "certified":
        if (c.get("details") or {}).get("decision_bound") is not None:
            return f"certified ({c.get('method')}): exact but near-ties"
        return "identical" if c.get("identical") else f"certified ({c.get('method')}): <= {_g(c.get('bound'))}"
    if c.get("status") == "refuted":
        return f"REFUTED ({c.get('method')})"
    return "not certifiable"


def _compact(d: dict[str, Any]) -> str:
    text = json.dumps(d, default=_jsonable)
    return text if len(text) <= 300 else text[:297] + "..."


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
