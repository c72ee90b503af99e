"""Mutation score of the equivalence checker: how many real, seeded single mutations of converted artifacts it
catches at samples=1000, how long it takes, and whether it ever raises a false alarm on correct conversions.

For each model of the sample table (tests/sample_models.py, each fitted a few times on bootstrap resamples, and
converted in float32 and float64 where the converter allows) and of the realistic pipelines
(tests/pipelines.py, when present), the ONNX artifact is mutated once per mutation, seeded:

- coefficient: one element of a weight tensor (initializer or `coefficients` attribute) times (1 +- 1e-3);
- threshold: one tree split moved 1-4 float32 steps up or down, at a random depth;
- leaf: one leaf value changed by 10% of the leaf values' spread;
- label: two class labels swapped;
- category: two categories of an encoder swapped;
- intercept: one intercept / bias / base value changed by 1e-3 relative (1e-3 absolute when it is 0);
- knn_point: one training point of a k-NN model moved by 10% of each feature's spread.

A mutation is kept only when its effect is real: some row of an independent verification set differs outside
the checker's tolerance between scikit-learn and the mutated artifact run by onnxruntime. The verification set
is built without the checker: the training rows, 20,000 uniform rows over 1.5x the training box, and rows
constructed for the mutation (a row that reaches the mutated tree node with the split feature on every float32
value between the old and the new threshold; the moved training point's old and new positions and the
midpoints to its neighbours). Each kept mutation is then checked with `portable.check(samples=1000)` with seed
`i % 10`; the unmutated artifacts are checked with seeds 0-9 (false alarms). The check's cost is compared with
running both models once on as many rows as the check compared.

Environment: PORTABLE_MUTATION_FITS (fits per sample model, default 4), PORTABLE_MUTATION_PER_KIND (mutations per
artifact and kind, default 2), PORTABLE_MUTATION_PIPELINES=0 (leave the realistic pipelines out), PORTABLE_MUTATION_ONLY=name,... (only the
models whose names start so), PORTABLE_MUTATION_KEEP=folder (save the missed mutations there),
PORTABLE_MUTATION_BUDGET=seconds (examine no new conversion after that long; the report says how many were left),
PORTABLE_MUTATION_SEEDS (seeds of the false-alarm checks per correct conversion, default 10: fewer for a quick
certify pass), PORTABLE_MUTATION_CERTIFY=1 (also certify every correct conversion and real mutation with `portable.certify` and
append the section of `benchmarks/bench_certify_mutations.py`).
"""
from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._util import table
from .mutations import KINDS, feeds, mutate, numeric, pick_sites, proven, real, sites, verification_rows

SAMPLES = 1000


# ---- the models -----------------------------------------------------------------------------------------------

def _artifacts() -> tuple[list[tuple[str, Any, Any, Any, Any]], list[str]]:
    """(name, estimator, X, data, artifact) for every conversion, and notes."""
    import portable

    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.sample_models import SAMPLE_MODELS

    fits = int(os.environ.get("PORTABLE_MUTATION_FITS", "4"))
    builders: list[tuple[str, Any]] = list(SAMPLE_MODELS)
    notes = []
    try:
        if os.environ.get("PORTABLE_MUTATION_PIPELINES", "1") == "0":
            raise ImportError
        from tests import pipelines  # the realistic pipelines (issue 11), when they have landed

        found = getattr(pipelines, "PIPELINES", None)
        if found:
            # builder() -> (fitted pipeline, train_df, heldout_df): the training frame is X and data
            builders += [(f"pipeline:{n}", (lambda b=b: (lambda r: (r[0], r[1], r[1]))(b()))) for n, b in found]
            notes.append(f"realistic pipelines: {len(found)} from tests/pipelines.py")
        else:
            notes.append("tests/pipelines.py has no PIPELINES table: realistic pipelines not included")
    except ImportError:
        notes.append("tests/pipelines.py has not landed: realistic pipelines not included")
    only = [n for n in os.environ.get("PORTABLE_MUTATION_ONLY", "").split(",") if n]
    builders = [(n, b) for n, b in builders if not only or any(n.startswith(o) for o in only)]
    out = []
    for name, build in builders:
        try:
            est0, X, data = build()
        except Exception as exc:
            notes.append(f"{name} could not be built ({type(exc).__name__})")
            continue
        for fit in range(fits if not name.startswith("pipeline:") else 1):
            est = est0
            if fit:  # the same model fitted on a bootstrap resample
                from sklearn.base import clone

                rng = np.random.default_rng(fit)
                idx = rng.integers(0, len(X), len(X))
                Xb = X.iloc[idx] if hasattr(X, "iloc") else X[idx]
                try:
                    y = est0.predict(X)
                    yb = y[idx]
                    est = clone(est0).fit(Xb, yb)
                except Exception:
                    continue
            for dtype in ("float32", "float64"):
                try:
                    art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=data)
                except Exception:
                    continue
                out.append((f"{name}#{fit}/{dtype}", est, X, data, art))
    return out, notes


# ---- the benchmark ---------------------------------------------------------------------------------------------

def run(certify: Any = None) -> str:
    """The section; `certify` (a `bench_certify_mutations.CertifyPass`, made here when PORTABLE_MUTATION_CERTIFY=1)
    is also given every correct conversion and real mutation, and its section is appended."""
    from threadpoolctl import threadpool_limits

    own = certify is None and os.environ.get("PORTABLE_MUTATION_CERTIFY") == "1"
    if own:
        from .bench_certify_mutations import CertifyPass

        certify = CertifyPass()
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = _run(certify)
        return text + "\n\n" + certify.section() if own else text


def _run(certify: Any = None) -> str:
    import portable

    started = time.perf_counter()
    per_kind = int(os.environ.get("PORTABLE_MUTATION_PER_KIND", "2"))
    arts, notes = _artifacts()
    rng = np.random.default_rng(0)
    kinds = {k: [0, 0, 0] for k in KINDS}  # candidates, real, caught
    missed: list[str] = []
    times: list[float] = []
    ratios: list[float] = []
    rows_ratios: list[float] = []  # the same checks over a run of both on the rows each check compared
    alarms: list[str] = []
    n_checks = 0
    incorrect: list[str] = []
    per_model: dict[str, tuple[float, float]] = {}
    n_correct = 0
    keep = os.environ.get("PORTABLE_MUTATION_KEEP")  # a folder for the missed mutations (to study them)
    budget = float(os.environ.get("PORTABLE_MUTATION_BUDGET", "inf"))  # seconds; then report what was done
    skipped = 0
    parts: dict[str, list[int]] = {}  # table -> [correct conversions, real, caught, false alarms]
    for name, est, X, data, art in arts:
        if time.perf_counter() - started > budget:
            skipped += 1
            continue
        sk = portable.load(est, data=data)
        Xn, frame_cols = numeric(X)
        # a correct conversion: the independent verification set shows no difference outside tolerance
        try:
            wrong = real(sk, art, verification_rows(Xn, {"kind": "none"}, art.proto, rng), frame_cols, X, est=est)
        except Exception as exc:
            incorrect.append(f"{name}: the verification rows cannot be run ({type(exc).__name__})")
            continue
        if wrong:
            rep0 = portable.check(sk, art, samples=SAMPLES, seed=0)
            incorrect.append(f"{name}: differs on the verification rows; the checker says "
                             f"{'equivalent (MISSED)' if rep0.equivalent else 'NOT equivalent'}")
            continue
        # false alarms: the unmutated artifact, seeds 0-9; cost against running both models on as many rows
        # (each seed's check next to one run of both models on as many training rows: best of the ten each)
        t_checks, t_both, t_rows, flagged = [], [], [], []
        for seed in range(int(os.environ.get("PORTABLE_MUTATION_SEEDS", "10"))):
            t0 = time.perf_counter()
            rep = portable.check(sk, art, samples=SAMPLES, seed=seed)
            t_checks.append(time.perf_counter() - t0)
            if not rep.equivalent:
                flagged.append((seed, rep))
            fed = feeds(sk, Xn[np.random.default_rng(seed).integers(0, len(Xn), rep.rows)], frame_cols, X)
            t0 = time.perf_counter()
            sk.run(fed)
            art.run(fed)
            t_both.append(time.perf_counter() - t0)
            both_rows = _both_on_checked_rows(sk, art)
            if both_rows is not None:
                t0 = time.perf_counter()
                both_rows()
                t_rows.append(time.perf_counter() - t0)
        if flagged and any(proven(sk, art, r, est) for _, r in flagged):
            # the checker's counterexamples, run again on both models, differ: an incorrect conversion that the
            # verification rows did not show (not a false alarm, and not a base for mutations)
            incorrect.append(f"{name}: the checker's counterexamples (seeds {[s for s, _ in flagged]}) differ when "
                             f"run again: {flagged[0][1].summary_line()}")
            continue
        n_correct += 1
        n_checks += len(t_checks)
        if certify is not None:
            certify.conversion(name, sk, art, X, data)
        alarms += [f"{name} seed {seed}: {r.summary_line()}" for seed, r in flagged]
        part = parts.setdefault(_table(name), [0, 0, 0, 0])
        part[0] += 1
        part[3] += len(flagged)
        # seed 0 learns the pair's input plan and label-boundary pool (kept for the next checks of the pair)
        steady, both = min(t_checks[1:] or t_checks), min(t_both)
        times.append(steady)
        ratios.append(steady / both)
        # like for like: each check next to a run of both on the very rows it compared (seed 0's check also
        # learns the plan; its rows' run is the first of the list)
        on_rows = min(t_rows[1:] or t_rows) if t_rows else float("nan")
        rows_ratios.append(steady / on_rows)
        per_model[name] = (steady / both, t_checks[0] / both, steady / on_rows,
                           t_checks[0] / t_rows[0] if t_rows else float("nan"))
        n_train = len(getattr(_final(est), "_fit_X", [])) or None
        for kind in KINDS:
            found = sites(art.proto, kind, n_train)
            for site in pick_sites(art.proto, kind, found, rng, per_kind):
                mutated, info = mutate(art.proto, kind, site, rng)
                kinds[kind][0] += 1
                try:
                    m = portable.load(mutated)
                    m.run(feeds(sk, Xn[:2], frame_cols, X))
                except Exception:
                    continue  # the mutation breaks the model outright: not a subtle one
                vrows = verification_rows(Xn, info, mutated, rng)
                if not real(sk, m, vrows, frame_cols, X, base=art, est=est):
                    continue
                kinds[kind][1] += 1
                part[1] += 1
                if certify is not None:
                    outcome = certify.mutation(name, kind, sk, m, X, data, vrows, frame_cols, est, info, base=art)
                    print(f"    {name} {kind}: certificate {outcome}", file=sys.stderr, flush=True)
                seed = kinds[kind][1] % 10
                rep = portable.check(sk, m, samples=SAMPLES, seed=seed)
                if not rep.equivalent:
                    kinds[kind][2] += 1
                    part[2] += 1
                else:
                    shown = {k: v for k, v in info.items() if k in ("steps", "split", "leaf")}
                    missed.append(f"{name} {kind} {site[:3]} {shown} seed {seed}")
                    if keep:
                        _keep(keep, len(missed), name, est, mutated, kind, site, seed)
        print(f"  {name}: done ({time.perf_counter() - started:.0f} s, {sum(v[1] for v in kinds.values())} "
              f"real, {len(missed)} missed, {len(alarms)} alarms)", file=sys.stderr, flush=True)
    total_real = sum(v[1] for v in kinds.values())
    total_caught = sum(v[2] for v in kinds.values())
    rows = [[k, v[0], v[1], v[2], f"{100 * v[2] / v[1]:.1f}%" if v[1] else "-"] for k, v in kinds.items()]
    rows.append(["**all**", sum(v[0] for v in kinds.values()), total_real, total_caught,
                 f"**{100 * total_caught / max(total_real, 1):.1f}%**"])
    text = [
        "## Mutation score of the checker (issue 13)",
        "",
        f"`python -m benchmarks mutation`: {n_correct} correct conversions (of {len(arts)} made) (the sample table, each model fitted "
        f"{os.environ.get('PORTABLE_MUTATION_FITS', '4')} times on bootstrap resamples, float32 and float64 where "
        "the converter allows); single seeded mutations of the ONNX artifacts, kept only when an independent "
        "verification set (training rows, 20,000 uniform rows, rows constructed for the mutation) shows a "
        "difference outside tolerance; each kept mutation checked once with `portable.check(samples=1000)`. "
        + " ".join(notes) + "."
        + (f" **Stopped by PORTABLE_MUTATION_BUDGET: {skipped} conversions not examined.**" if skipped else ""),
        "",
        table(["mutation", "tried", "real", "caught", "share caught"], rows),
        "",
        table(["table", "correct conversions", "real mutations", "caught", "share caught",
               "false alarms (seeds 0-9)"],
              [[k, v[0], v[1], v[2], f"{100 * v[2] / v[1]:.1f}%" if v[1] else "-", f"{v[3]} of {10 * v[0]} checks"]
               for k, v in parts.items()]),
        "",
        f"- False alarms on the unmutated artifacts: **{len(alarms)}** of {n_checks} checks "
        f"({n_correct} correct conversions x seeds 0-9).",
        f"- Median check time at samples=1000 (seeds 1-9, the pair's plan already learned): "
        f"{statistics.median(times) * 1000:.0f} ms (max {max(times) * 1000:.0f} ms).",
        f"- Check cost / running both models once on the rows the check compared (its generated rows but those "
        f"the original rejects, run as the check runs them: best of seeds 1-9, each check over a run of both on "
        f"its own rows; like with like): median {np.nanmedian(rows_ratios):.2f}x, 90th percentile "
        f"{np.nanpercentile(rows_ratios, 90):.2f}x; {sum(r >= 1.5 for r in rows_ratios)} of {len(rows_ratios)} "
        "conversions at 1.5x or more (per model below).",
        f"- The same checks over a run of both on as many *training* rows (best of ten; the measure of the runs "
        f"before, which is not like with like where the generated rows cost a model more than its training "
        f"rows, as long generated documents do): median {statistics.median(ratios):.2f}x, 90th percentile "
        f"{np.percentile(ratios, 90):.2f}x; {sum(r >= 1.5 for r in ratios)} of {len(ratios)} conversions at "
        "1.5x or more.",
        f"- Benchmark wall time {time.perf_counter() - started:.0f} s; load average at the end "
        f"{_load()} ({os.cpu_count()} cores, shared with other work): single timings are noisy, ratios of "
        "best-of-ten less so.",
    ]
    by_model: dict[str, list[tuple[float, ...]]] = {}
    for k, v in per_model.items():
        by_model.setdefault(k.split("#")[0], []).append(v)

    def med(v: list[tuple[float, ...]], i: int) -> str:
        return f"{float(np.nanmedian([x[i] for x in v])):.2f}x"

    cost = [[k, len(v), med(v, 2), f"{float(np.nanmax([x[2] for x in v])):.2f}x", med(v, 3), med(v, 0), med(v, 1)]
            for k, v in by_model.items()]
    text += ["", "Check cost per model (float32 and float64 artifacts, every fit): a check with the plan learned "
             "(seeds 1-9), and the first check of a pair (seed 0: it also learns the input plan and the "
             "label-boundary pool), each over one run of both models on the rows that check compared, and (as "
             "before) on as many training rows (the artifact's session was made before either, by the "
             "verification rows):", "",
             table(["model", "conversions", "check / run both on its rows, median", "max",
                    "first check / run both on its rows, median", "check / run both on training rows, median",
                    "first check / run both on training rows, median"], cost)]
    if incorrect:
        text += ["", "Conversions left out as incorrect (the verification rows show a difference outside "
                 "tolerance, or the checker's counterexamples do when run again on both models, so a NOT "
                 "equivalent verdict is right):", ""] + [f"- {m}" for m in incorrect[:40]]
    if missed:
        text += ["", "Missed mutations:", ""] + [f"- {m}" for m in missed[:30]]
    if alarms:
        text += ["", "False alarms:", ""] + [f"- {a}" for a in alarms[:30]]
    return "\n".join(text)


def _both_on_checked_rows(sk: Any, art: Any) -> Any:
    """A function that runs both models once on the rows the pair's latest check compared (the batch the check
    kept for its seed, without the rows the original rejects), as the check runs them (`equivalence._run`: in
    batches of a fixed batch size, long texts in chunks where the runtime needs them); None when the check kept
    no batch (a batch over `equivalence.KEEP_GENERATED` bytes)."""
    from portable import equivalence as E
    from portable.equivalence.compare import scores_named
    from portable.equivalence.inputs import Batch, assemble, feed

    conv = scores_named(sk, art)
    kept = E._PLANS.get(conv)
    orig = kept[0]() if kept is not None else None
    gen = kept[2].memo.get("generated") if kept is not None else None
    if orig is None or gen is None:
        return None
    plan, batch = kept[2], gen[1]
    batch = Batch(batch.num.copy(), batch.txt.copy(), batch.source.copy())
    _, rows, _, _ = E._run_original(orig, plan, batch, assemble(plan, batch))
    if rows is not None:
        batch = batch.take(rows)
    arrays = assemble(plan, batch)
    fa, fb = feed(arrays, orig), feed(arrays, conv)
    sa, sb = plan.batches.get("original"), plan.batches.get("converted")
    return lambda: (E._run(orig, fa, sa), E._run(conv, fb, sb))


def _keep(folder: str, i: int, name: str, est: Any, mutated: Any, kind: str, site: Any, seed: int) -> None:
    """Save a missed mutation (the ONNX model, the estimator, what it is) to study it."""
    import json

    import joblib

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{i:03d}.onnx").write_bytes(mutated.SerializeToString())
    joblib.dump(est, out / f"{i:03d}.joblib")
    (out / f"{i:03d}.json").write_text(json.dumps({"name": name, "kind": kind, "site": [str(x) for x in site],
                                                   "seed": seed}))


def _table(name: str) -> str:
    return "realistic pipelines" if name.startswith("pipeline:") else "sample table"


def _load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _final(est: Any) -> Any:
    while hasattr(est, "steps"):
        est = est.steps[-1][1]
    return est


if __name__ == "__main__":
    print(run())
