"""The model card served at `GET /`: signature, provenance, the check report's HTML and live drift, as one page
of plain HTML (no script, no external resource: it renders the same in a browser, a screenshot or a DOM dump)."""
from __future__ import annotations

import html
import json
from typing import Any

from ..model import Signature

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#1f2328}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;
font-size:14px}th{background:#f6f8fa}.ok{color:#1a7f37}.bad{color:#cf222e}.muted{color:#656d76}
h1{margin-bottom:4px}.verdict{font-size:28px;font-weight:bold}"""


def verdict_text(report: dict[str, Any] | None) -> tuple[str, str]:
    """("EQUIVALENT" | "NOT EQUIVALENT" | "NOT CHECKED", css class) from the stored check summary."""
    if not report or "equivalent" not in report:
        return "NOT CHECKED", "muted"
    return ("EQUIVALENT", "ok") if report["equivalent"] else ("NOT EQUIVALENT", "bad")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def _drift_html(result: dict[str, Any] | None, reason: str) -> str:
    if result is None:
        return f'<p class="muted">{html.escape(reason)}</p>'
    v = result["drifted"]
    label, cls = (("DRIFT", "bad") if v else ("no drift", "ok") if v is False
                  else (f"no verdict yet: {result['rows']} of {result['thresholds']['min_rows']} rows", "muted"))
    rows = [[f["input"], f["feature"], f"{f['psi']:.3f}", f"{f['missing_rate']['change']:+.3f}",
             f"{f.get('unseen_share', 0.0):.3f}", "yes" if f["drifted"] else ""]
            for f in sorted(result["features"], key=lambda f: -f["psi"])[:30]]
    return (f'<p class="{cls}" id="drift-verdict"><b>{html.escape(label)}</b> over the last {result["rows"]:,} '
            f'rows (profile of {result.get("profile_rows") or "?"} rows)</p>'
            + _table(["input", "feature", "PSI", "missing-rate change", "unseen share", "drifted"], rows))


def model_card(*, title: str, fmt: str, signature: Signature, provenance: dict[str, Any],
               summary: dict[str, Any] | None, report_html: str | None, drift: dict[str, Any] | None,
               drift_reason: str, refresh: int = 0) -> str:
    """The whole page as a string."""
    esc = html.escape
    verdict, cls = verdict_text(summary)
    sig_rows = [[role, t.name, t.dtype, "[" + ", ".join("N" if i == 0 and d is None else "?" if d is None else str(d)
                                                         for i, d in enumerate(t.shape)) + "]", t.kind]
                for role, specs in (("input", signature.inputs), ("output", signature.outputs)) for t in specs]
    prov = [[k, v if isinstance(v, str) else json.dumps(v)] for k, v in sorted(provenance.items())]
    if report_html:
        check = report_html
    elif summary:
        check = f"<pre>{esc(json.dumps(summary, indent=2))}</pre>"
    else:
        check = '<p class="muted">The artifact carries no check report (it was converted with check=False).</p>'
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{esc(title)} — portable'
            f'</title><style>{STYLE}</style></head><body>'
            f"<h1>{esc(title)}</h1><p class='muted'>{esc(fmt)} model served by portable · "
            '<a href="/metadata">metadata</a> · <a href="/drift">drift</a> · <a href="/metrics">metrics</a> · '
            '<a href="/openapi.json">OpenAPI</a></p>'
            f'<p class="verdict {cls}" id="verdict">Check: {verdict}</p>'
            "<h2>Signature</h2>" + _table(["", "name", "dtype", "shape", "kind"], sig_rows)
            + "<h2>Provenance</h2>" + _table(["key", "value"], prov)
            + "<h2>Check report</h2>" + check
            + "<h2>Live drift</h2>" + _drift_html(drift, drift_reason)
            + "</body></html>")
