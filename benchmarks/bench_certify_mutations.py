"""Certified equivalence against the mutation benchmark (issue 19): is every real mutation that a certificate can
express refuted with a verified counterexample, and is no real mutation certified?

This runs `benchmarks/bench_mutation.py` with its certify pass (`PORTABLE_MUTATION_CERTIFY=1` does the same inside
`python -m benchmarks mutation`, appending this section to its own). For every conversion the mutation
benchmark keeps as correct and every real mutation of it (kept only when the benchmark's independent
verification rows show a difference outside the checker's tolerance), `portable.certify(original, artifact,
data=training rows)` is called and each output's certificate is classified:

- refuted: a verified counterexample (both models run on it, the difference beyond the tolerance);
- certified: a proved bound. For a mutation this is checked against the verification rows inside the
  certificate's domain (`Certification.domain`: the training rows' box, integer values only in a column whose
  training values are all integers, NaN where the training rows have it, the categories seen): a row differing
  by more than the bound (or a label differing where the decision margin exceeds the certificate's) makes it
  **certified wrongly**, a soundness failure;
- unverified: a method expresses the pair and its bound exceeds the tolerance, but no candidate input it proposes
  reproduces the difference (the certificate then says not certifiable);
- not certifiable: no method can express the model.

A mutation counts as *expressible* unless every output is "not certifiable" (no method); a mutation whose every
output is certified within its bound counts as *certified within the bound* (its difference lies outside the
domain, or within the certificate's tolerance, which scales atol by the outputs' magnitude as the sampled check
does). The unmutated conversions must be certified or not certifiable, never refuted.

Environment: as bench_mutation (PORTABLE_MUTATION_FITS, PER_KIND, ONLY, PIPELINES, BUDGET), and
PORTABLE_CERTIFY_KEEP=folder (save the unverified mutations there, with their model and data); run alone
(`python -m benchmarks certify_mutations`) it defaults to FITS=1, PER_KIND=1 and the models of `DEFAULT_ONLY`.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

from ._util import table

#: the sample table, and realistic pipelines covering trees, affine (linear, calibrated, one-hot, polynomial)
#: and text pipelines (house_log_features_linear is left out: 26 s CPU per check, see bench_mutation)
DEFAULT_ONLY = ("logreg_", "random_forest_", "gradient_boosting_", "svc_", "svr", "knn_", "mlp_", "scaler_pca",
                "column_transformer", "pipeline:titanic_logistic_regression", "pipeline:titanic_random_forest_ordinal",
                "pipeline:titanic_onehot_max_categories", "pipeline:titanic_integer_column_onehot",
                "pipeline:titanic_linear_svc", "pipeline:titanic_calibrated_linear_svc", "pipeline:titanic_mlp",
                "pipeline:titanic_gradient_boosting", "pipeline:titanic_soft_voting", "pipeline:titanic_stacking",
                "pipeline:titanic_multi_output_classifier", "pipeline:titanic_classifier_chain",
                "pipeline:titanic_xgboost_categories", "pipeline:titanic_lightgbm_categories",
                "pipeline:house_ridge_log_target", "pipeline:house_polynomial_ridge", "pipeline:house_clip_function",
                "pipeline:house_gradient_boosting", "pipeline:house_lightgbm", "pipeline:house_xgboost",
                "pipeline:house_onehot_max_categories_integer_and_string", "pipeline:text_")

REFUTED, CERTIFIED, WRONG, UNVERIFIED, WITHIN, NOT_CERTIFIABLE, OUTSIDE = (
    "refuted", "certified", "certified wrongly", "unverified", "certified within the bound", "not certifiable",
    "real only outside the domain")


class CertifyPass:
    """Collects the certificates of the unmutated conversions and of the real mutations (see the docstring)."""

    def __init__(self) -> None:
        self.kinds: dict[str, dict[str, int]] = {}
        self.unmutated: dict[str, int] = {}
        self.wrong: list[str] = []
        self.unverified: list[str] = []
        self.within: list[str] = []
        self.outside: list[str] = []
        self.refuted_unmutated: list[str] = []
        self.not_expressible: dict[str, list[str]] = {}
        self.seconds: list[float] = []
        self.started = time.perf_counter()

    # ---- one pair ----------------------------------------------------------------------------------------------

    def _certify(self, sk: Any, other: Any, X: Any, data: Any) -> Any:
        import portable

        t0 = time.process_time()
        try:
            return portable.certify(sk, other, data=data if data is not None else X)
        except Exception as exc:  # a crash of certify is a finding too: recorded as not certifiable
            return exc
        finally:
            self.seconds.append(time.process_time() - t0)

    def conversion(self, name: str, sk: Any, art: Any, X: Any, data: Any) -> None:
        """The unmutated conversion the benchmark keeps as correct (its check said equivalent)."""
        res = self._certify(sk, art, X, data)
        if isinstance(res, Exception):
            status = f"crash ({type(res).__name__})"
        elif res.refuted:
            status = REFUTED
            self.refuted_unmutated.append(f"{name}: {_summary(res)}")
        elif res.certified:
            status = CERTIFIED
        else:
            status = "partly certified" if any(c.status == "certified" for c in res.certificates.values()) \
                else NOT_CERTIFIABLE
        self.unmutated[status] = self.unmutated.get(status, 0) + 1
        print(f"    {name}: unmutated certificate {status}", file=sys.stderr, flush=True)

    def mutation(self, name: str, kind: str, sk: Any, mutated: Any, X: Any, data: Any, rows: np.ndarray,
                 frame_cols: Any, est: Any, info: dict[str, Any], base: Any = None) -> str:
        """A real mutation: certify it and classify the outcome (see the module docstring)."""
        counts = self.kinds.setdefault(kind, {"real": 0, "expressible": 0, REFUTED: 0, WRONG: 0, UNVERIFIED: 0,
                                              WITHIN: 0, OUTSIDE: 0})
        counts["real"] += 1
        res = self._certify(sk, mutated, X, data)
        what = f"{name} {kind} {_shown(info)}"
        if isinstance(res, Exception):
            self.not_expressible.setdefault(f"certify raised {type(res).__name__}: {res}"[:160], []).append(what)
            return NOT_CERTIFIABLE
        certs = res.certificates
        method_less = [c for c in certs.values() if c.status == "not certifiable" and c.bound is None]
        if len(method_less) == len(certs):
            reason = "; ".join(sorted({(c.reason or "")[:120] for c in method_less}))
            self.not_expressible.setdefault(reason, []).append(what)
            return NOT_CERTIFIABLE
        counts["expressible"] += 1
        if res.refuted:
            counts[REFUTED] += 1
            return REFUTED
        broken = _exceeded(sk, mutated, res, rows, frame_cols, X)
        if broken:
            counts[WRONG] += 1
            self.wrong.append(f"{what}: {broken}")
            return WRONG
        from .mutations import real

        inside = _inside(rows, X, res.domain, sk, frame_cols)
        if not real(sk, mutated, inside, frame_cols, X, base=base, est=est):
            # the benchmark's own test, on its verification rows inside the certificate's domain: no difference
            # beyond the check's tolerance there (the mutation shows only on its rows outside the domain)
            counts[OUTSIDE] += 1
            self.outside.append(f"{what}: " + "; ".join(f"{c.output} {c.status}" for c in certs.values()))
            return OUTSIDE
        unverified = [c for c in certs.values() if c.status == "not certifiable" and c.bound is not None]
        if unverified and os.environ.get("PORTABLE_CERTIFY_KEEP"):  # a folder: keep them to study
            import joblib

            out = os.path.join(os.environ["PORTABLE_CERTIFY_KEEP"], f"{len(self.unverified):03d}")
            os.makedirs(out, exist_ok=True)
            joblib.dump((name, kind, est, X, data, mutated.proto.SerializeToString()), os.path.join(out, "pair.joblib"))
        if unverified:
            counts[UNVERIFIED] += 1
            self.unverified.append(f"{what}: " + "; ".join(f"{c.output}: {(c.reason or '')[:160]}" for c in unverified))
            return UNVERIFIED
        counts[WITHIN] += 1
        self.within.append(f"{what}: " + "; ".join(f"{c.output} {c.status} bound {_g(c.bound)} tolerance "
                                                   f"{_g(c.tolerance)}" for c in certs.values()))
        return WITHIN

    # ---- the section -------------------------------------------------------------------------------------------

    def section(self, context: str = "") -> str:
        rows = []
        tot = {k: 0 for k in ("real", "expressible", OUTSIDE, REFUTED, WRONG, UNVERIFIED, WITHIN)}
        for kind, c in self.kinds.items():
            inside = c["expressible"] - c[OUTSIDE]
            rows.append([kind, c["real"], c["expressible"], c[OUTSIDE], c[REFUTED],
                         f"{100 * c[REFUTED] / inside:.1f}%" if inside else "-", c[UNVERIFIED], c[WITHIN], c[WRONG]])
            for k in tot:
                tot[k] += c[k]
        inside = tot["expressible"] - tot[OUTSIDE]
        rows.append(["**all**", tot["real"], tot["expressible"], tot[OUTSIDE], tot[REFUTED],
                     f"**{100 * tot[REFUTED] / inside:.1f}%**" if inside else "-",
                     tot[UNVERIFIED], tot[WITHIN], f"**{tot[WRONG]}**"])
        un = ", ".join(f"{v} {k}" for k, v in sorted(self.unmutated.items()))
        text = [
            "## Certificates of the mutation benchmark's mutations (issue 19, bench_certify_mutations)",
            "",
            "Every real mutation of `benchmarks/bench_mutation.py` (one seeded single mutation per artifact and "
            "kind, kept only when the benchmark's independent verification rows show a difference outside the "
            "checker's tolerance) certified with `portable.certify(original, mutated, data=training rows)`. "
            "*Expressible*: some output has a certification method (not every output 'not certifiable'); "
            "*refuted*: a verified counterexample (both models run on it); *unverified*: a method's bound exceeds "
            "the tolerance but none of its candidate inputs reproduces; *certified within the bound*: every "
            "output certified and no verification row inside the domain differs by more than the bound; "
            "*certified wrongly*: a verification row inside the domain differs by more than a certified bound "
            "(a soundness failure); *real only outside the domain*: not refuted, and none of the benchmark's "
            "verification rows inside the certificate's domain (the training rows' box, integer values in the "
            "columns whose training values are all integers, the categories seen) differs beyond the "
            "check's tolerance: the mutation shows only on its rows outside it (up to 1.5x the box). " + context,
            "",
            table(["mutation", "real", "expressible", "real only outside the domain", "refuted (verified)",
                   "share refuted (of the expressible ones real inside the domain)", "unverified",
                   "certified within the bound", "certified wrongly"], rows),
            "",
            f"- Unmutated conversions (their sampled check says equivalent): {un or 'none'}; refuted: "
            f"**{len(self.refuted_unmutated)}**.",
            f"- Certify CPU time per pair: median {np.median(self.seconds) * 1000:.0f} ms, max "
            f"{max(self.seconds):.1f} s ({len(self.seconds)} certifications); wall time "
            f"{time.perf_counter() - self.started:.0f} s, load average at the end {_load()} ({os.cpu_count()} "
            "cores shared with other work)." if self.seconds else "- no pair",
        ]
        if self.wrong:
            text += ["", "Certified wrongly:", ""] + [f"- {w}" for w in self.wrong]
        if self.refuted_unmutated:
            text += ["", "Unmutated conversions refuted:", ""] + [f"- {w}" for w in self.refuted_unmutated]
        if self.unverified:
            text += ["", "Expressible but not refuted (unverified):", ""] + [f"- {w}" for w in self.unverified[:40]]
        if self.within:
            text += ["", "Certified within the bound (the mutation's difference lies outside the domain or within "
                     "the certificate's tolerance):", ""] + [f"- {w}" for w in self.within[:40]]
        if self.outside:
            text += ["", "Real only outside the domain (not refuted, rightly: no difference inside it):", ""] + [
                f"- {w}" for w in self.outside[:40]]
        if self.not_expressible:
            text += ["", "Not expressible (no method), by reason:", ""]
            text += [f"- {len(v)}: {k} (e.g. {v[0]})" for k, v in sorted(self.not_expressible.items(),
                                                                         key=lambda kv: -len(kv[1]))]
        return "\n".join(text)


def _load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}"


def _shown(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k in ("steps", "split", "leaf", "node")}


def _summary(res: Any) -> str:
    from portable.certification.driver import describe

    return "; ".join(f"{n}: {c.status} ({describe(c)[:160]})" for n, c in res.certificates.items())


def _inside(rows: np.ndarray, X: Any, domain: Any = None, sk: Any = None, frame_cols: Any = None) -> np.ndarray:
    """The rows inside the certificate's `domain` (`Certification.domain`), judged on the inputs the rows are fed
    as: each numeric column within `[lo, hi]`, an integer value where the domain's column is integer (a column
    whose training values are all integers: the certificate says nothing about 2.5 there), NaN only where the
    domain admits it, a category among the domain's. Without a domain: the training rows' box (NaN anywhere)."""
    from .mutations import feeds, numeric

    if domain is None or sk is None:
        Xn, _ = numeric(X)
        lo, hi = np.nanmin(Xn, axis=0), np.nanmax(Xn, axis=0)
        with np.errstate(invalid="ignore"):
            return rows[(np.isnan(rows) | ((rows >= lo) & (rows <= hi))).all(axis=1)]
    keep = np.zeros(len(rows), dtype=bool)
    for start in range(0, len(rows), 2000):
        fed = feeds(sk, rows[start:start + 2000], frame_cols, X)
        keep[start:start + 2000] = _fed_inside(fed, domain)
    return rows[keep]


def _fed_inside(fed: dict[str, np.ndarray], domain: Any) -> np.ndarray:
    """Per row of the inputs `fed`: whether every column lies in `domain` (a column it does not list: any value)."""
    n = len(next(iter(fed.values())))
    ok = np.ones(n, dtype=bool)
    for name, arr in fed.items():
        a = np.asarray(arr).reshape(n, -1)
        for p in range(a.shape[1]):
            col = domain.columns.get((name, p))
            if col is None:
                continue
            v = a[:, p]
            if col.categories is not None:
                cats = {str(c) for c in col.categories}
                missing = np.array([x is None or (isinstance(x, float) and x != x) for x in v.tolist()], bool)
                ok &= np.array([str(x) in cats for x in v.tolist()], bool) | (missing & bool(col.nan))
                continue
            x = v.astype(np.float64)
            nan = np.isnan(x)
            with np.errstate(invalid="ignore"):
                inside = (x >= col.lo) & (x <= col.hi)
                if col.integer:
                    inside &= x == np.round(x)
            ok &= np.where(nan, bool(col.nan), inside)
    return ok


def _clear_of_distance_ties(sk: Any, fed: dict[str, Any], certified: dict[str, Any], n: int) -> Any:
    """For a k-NN certificate (`neighbors`: it holds except where the (k+1)-th and k-th smallest squared distances
    are within `distance_tie_margin`), the rows outside such near-ties, by scikit-learn's own distances (None when no
    certificate has that exception)."""
    margins = [c.details.get("distance_tie_margin") for c in certified.values() if c.details]
    margins = [m for m in margins if m is not None]
    est = getattr(sk, "estimator", None)
    if not margins or est is None or not hasattr(est, "kneighbors") or len(fed) != 1:
        return None
    x = np.asarray(next(iter(fed.values())), dtype=np.float64).reshape(n, -1)
    k = int(est.n_neighbors)
    d, _ = est.kneighbors(x, n_neighbors=k + 1)
    # scikit-learn's distances, squared again, are within ~1e-15 relative of its squared distances: far inside 0.1%
    return (d[:, k] ** 2 - d[:, k - 1] ** 2) > 1.001 * max(margins)


def _exceeded(sk: Any, mutated: Any, res: Any, rows: np.ndarray, frame_cols: Any, X: Any) -> str:
    """Where a certified output of `res` is contradicted by a verification row inside its domain (`res.domain`,
    see `_inside`): '' when none is."""
    from .mutations import feeds

    rows = _inside(rows, X, res.domain, sk, frame_cols)
    certified = {n: c for n, c in res.certificates.items() if c.status == "certified"}
    if not certified or not len(rows):
        return ""
    dec = None
    try:
        dec = getattr(sk.input_hints(), "decision", None)
    except Exception:
        pass
    for start in range(0, len(rows), 2000):
        fed = feeds(sk, rows[start:start + 2000], frame_cols, X)
        try:
            a, b = sk.run(fed), mutated.run(fed)
        except Exception:
            continue
        n = len(rows[start:start + 2000])
        clear = _clear_of_distance_ties(sk, fed, certified, n)
        for name, c in certified.items():
            va, vb = np.asarray(a[name]), np.asarray(b[name])
            if clear is not None and (c.details or {}).get("distance_tie_margin") is not None:
                va, vb = va.reshape(n, -1)[clear], vb.reshape(n, -1)[clear]
                n_c = int(clear.sum())
            else:
                n_c = n
            if va.dtype.kind in "fc" and vb.dtype.kind in "fc":
                d = np.abs(va.astype(np.float64) - vb.astype(np.float64)).reshape(n_c, -1).max(axis=1)
                bound = c.bound if c.bound is not None else 0.0
                if np.nanmax(d, initial=0.0) > bound * (1 + 1e-9) + 1e-300:
                    return f"{name}: certified |difference| <= {_g(bound)}, a row inside the domain differs by " \
                           f"{_g(float(np.nanmax(d)))}"
            else:
                differ = (va.astype(str) != vb.astype(str)).reshape(n_c, -1).any(axis=1)
                if not differ.any():
                    continue
                margin = (c.details or {}).get("exact_where_margin_exceeds")
                if dec is None or margin is None or dec.output != name:
                    return f"{name}: certified labels, {int(differ.sum())} rows inside the domain differ"
                v = np.asarray(dec.compute(fed), np.float64).reshape(n, -1)
                gap = np.abs(v[:, 0] - dec.threshold) if v.shape[1] == 1 else np.diff(np.sort(v, axis=1)[:, -2:])[:, 0]
                if (differ & (gap > float(margin))).any():
                    return f"{name}: labels equal where the margin exceeds {_g(margin)} was certified, but " \
                           f"{int((differ & (gap > float(margin))).sum())} rows inside the domain differ there"
    return ""


def run() -> str:
    from . import bench_mutation

    env = {"PORTABLE_MUTATION_FITS": "1", "PORTABLE_MUTATION_PER_KIND": "1",
           "PORTABLE_MUTATION_ONLY": ",".join(DEFAULT_ONLY)}
    for k, v in env.items():
        os.environ.setdefault(k, v)
    cp = CertifyPass()
    bench_mutation.run(cp)
    return cp.section(f"FITS={os.environ['PORTABLE_MUTATION_FITS']}, PER_KIND="
                      f"{os.environ['PORTABLE_MUTATION_PER_KIND']}, models: "
                      f"{os.environ['PORTABLE_MUTATION_ONLY'].replace(',', ', ')}.")
