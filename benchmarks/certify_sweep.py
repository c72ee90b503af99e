"""Certification sweep (issue 19): every model of the sample table (tests/sample_models.py) and of the realistic
pipelines (tests/pipelines.py), converted with `portable.convert` as a user would (float32 first, float64 when the
check asks for it), then `portable.certify(original, artifact, data=...)`: per model and output, certified (method,
bound) or not certifiable (the reason).

    python -m benchmarks.certify_sweep            # the non-tree models (affine, networks, kernels, k-NN, text)
    python -m benchmarks.certify_sweep --all      # trees too
    python -m benchmarks.certify_sweep NAME ...   # only these
    python -m benchmarks.certify_sweep --mutations [NAME ...]   # the mutation benchmark's mutations of each

`sweep()` is what `tests/test_certify_sweep.py` (PORTABLE_SLOW=1) runs.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TREE_WORDS = ("forest", "boosting", "xgboost", "lightgbm", "catboost", "tree")


def is_tree(name: str) -> bool:
    return any(w in name for w in TREE_WORDS)


def models(include_trees: bool = False, only: list[str] | None = None) -> Iterator[tuple[str, Any, Any]]:
    """(name, estimator, data) for the sample table's models and the realistic pipelines."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import pipelines
    from tests.sample_models import SAMPLE_MODELS

    for name, build in SAMPLE_MODELS:
        if (only and name not in only) or (not only and not include_trees and is_tree(name)):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est, X, data = build()
        yield name, est, (data if data is not None else X)
    for name in pipelines.NAMES:
        if (only and name not in only) or (not only and not include_trees and is_tree(name)):
            continue
        est, df, _ = pipelines.build(name)
        yield name, est, df


def certify_one(name: str, est: Any, data: Any) -> dict[str, Any]:
    import portable

    row: dict[str, Any] = {"name": name}
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            art = portable.convert(est, to="onnx", data=data)
    except Exception as exc:  # noqa: BLE001 - a sweep reports every failure
        row.update(status="conversion failed", detail=f"{type(exc).__name__}: {exc}", outputs={})
        return row
    row["dtype"] = art.metadata.get("dtype") if hasattr(art, "metadata") else None
    row["equivalent"] = bool(getattr(art.report, "equivalent", False))
    row["convert_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = portable.certify(est, art, data=data)
    except Exception as exc:  # noqa: BLE001
        row.update(status="certify failed", detail=f"{type(exc).__name__}: {exc}", outputs={})
        return row
    row["certify_s"] = time.perf_counter() - t0
    row["outputs"] = {k: {"status": c.status, "method": c.method, "bound": c.bound, "tolerance": c.tolerance,
                          "reason": c.reason, "near_ties_only": bool(c.details.get("near_ties_only"))}
                      for k, c in result.certificates.items()}
    row["status"] = ("certified" if result.certified else "refuted" if result.refuted else "not certifiable")
    row["notes"] = list(result.notes)
    return row


def sweep(include_trees: bool = False, only: list[str] | None = None, echo: bool = False) -> list[dict[str, Any]]:
    rows = []
    for name, est, data in models(include_trees, only):
        row = certify_one(name, est, data)
        rows.append(row)
        if echo:
            print(line(row), flush=True)
    return rows


def line(row: dict[str, Any]) -> str:
    parts = []
    for out, c in (row.get("outputs") or {}).items():
        if c["status"] == "certified":
            what = "near-ties only" if c["near_ties_only"] else f"<= {c['bound']:.2g} (tol {c['tolerance']:.2g})"
            parts.append(f"{out}: {c['method']} {what}")
        else:
            parts.append(f"{out}: {c['status']} ({c['reason']})")
    t = f"{row.get('certify_s', 0):.2f}s"
    return f"{row['name']:48s} {row['status']:16s} {t:>7s}  " + ("; ".join(parts) or row.get("detail", ""))


def mutations(name: str, est: Any, data: Any, per_kind: int = 1, seed: int = 3) -> list[dict[str, Any]]:
    """The mutation benchmark's mutations of the artifact (coefficient, intercept, label, category), each certified
    and checked (`portable.check`, 1000 samples): whether the check catches it, the certificate's verdict, and
    whether a refutation's counterexample was verified."""
    import portable

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import mutations as gen

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", data=data)
    rng = np.random.default_rng(seed)
    rows = []
    for kind in ("coefficient", "intercept", "label", "category"):
        for site in gen.pick_sites(art.proto, kind, gen.sites(art.proto, kind, None), rng, per_kind):
            mutated = portable.load(gen.mutate(art.proto, kind, site, rng)[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                caught = not portable.check(est, mutated, data=data, samples=1000).equivalent
                result = portable.certify(est, mutated, data=data)
            rows.append({"model": name, "kind": kind, "caught_by_check": caught,
                         "refuted": result.refuted,
                         "verified": all(c.get("verified") for c in result.counterexamples),
                         "certified": result.certified})
    return rows


def main(argv: list[str]) -> int:
    if "--mutations" in argv:
        only = [a for a in argv if not a.startswith("--")] or None
        all_rows = []
        for name, est, data in models("--all" in argv, only):
            for r in mutations(name, est, data):
                all_rows.append(r)
                print(f"{r['model']:44s} {r['kind']:12s} check {'caught' if r['caught_by_check'] else 'passed':7s} "
                      f"certificate {'refuted' if r['refuted'] else 'certified' if r['certified'] else 'open':9s}"
                      f" verified={r['verified']}", flush=True)
        caught = [r for r in all_rows if r["caught_by_check"]]
        print(f"\n{len(all_rows)} mutations; the check caught {len(caught)}; the certificate refuted "
              f"{sum(r['refuted'] for r in caught)} of those (verified: "
              f"{sum(r['refuted'] and r['verified'] for r in caught)}), and {sum(r['refuted'] for r in all_rows) - sum(r['refuted'] for r in caught)} "
              f"the check passed; certified while the check caught it: {sum(r['certified'] for r in caught)}")
        return 0
    include = "--all" in argv
    only = [a for a in argv if not a.startswith("--")] or None
    rows = sweep(include, only, echo=True)
    n = len(rows)
    cert = sum(r["status"] == "certified" for r in rows)
    print(f"\n{cert} of {n} models certified on every output; "
          f"{sum(r['status'] == 'refuted' for r in rows)} refuted; "
          f"{sum(r['status'] not in ('certified', 'refuted') for r in rows)} not (fully) certifiable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
