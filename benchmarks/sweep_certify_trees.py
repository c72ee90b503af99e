"""Issue 19 sweep: every tree model of the sample table and of the realistic pipelines (tests/pipelines.py),
converted with `portable.convert` in float32 and float64 and certified with `portable.certify`.

Lists, per (model, dtype), which outputs are certified, which are "not certifiable" and why. Run it with
`python -m benchmarks.sweep_certify_trees` (prints a table) or through tests/test_certify_sweep.py
(PORTABLE_SLOW=1), which asserts that every conversion is certified.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TREE_CLASSES = ("Tree", "Forest", "Boosting", "XGB", "LGBM", "CatBoost", "IsolationForest", "Booster")


def has_trees(est: Any) -> bool:
    """The estimator (or something inside it: a pipeline step, a column transformer, an ensemble member) is a
    tree model."""
    seen: set[int] = set()

    def walk(o: Any, depth: int = 0) -> bool:
        if o is None or id(o) in seen or depth > 8:
            return False
        seen.add(id(o))
        name = type(o).__name__
        if any(k in name for k in TREE_CLASSES):
            return True
        if isinstance(o, (list, tuple)):
            return any(walk(x, depth + 1) for x in o)
        if not hasattr(o, "get_params"):
            return False
        for attr in ("steps", "transformers_", "estimators_", "estimator", "best_estimator_", "estimators",
                     "final_estimator_", "calibrated_classifiers_", "base_estimator", "regressor_"):
            v = getattr(o, attr, None)
            if v is not None and walk(v, depth + 1):
                return True
        return False

    return walk(est)


def models() -> list[tuple[str, str, Any, Any]]:
    """(family, name, fitted estimator, data) for every tree model of the sample table and of the pipelines."""
    sys.path.insert(0, str(ROOT))
    from tests import pipelines
    from tests.sample_models import SAMPLE_MODELS

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, build in SAMPLE_MODELS:
            est, X, data = build()
            if has_trees(est):
                out.append(("sample", name, est, data))
        for name, _ in pipelines.PIPELINES:
            est, df, _held = pipelines.build(name)
            if has_trees(est):
                out.append(("pipeline", name, est, df))
    return out


def sweep(dtypes: tuple[str, ...] = ("float32", "float64"), only: str | None = None) -> list[dict[str, Any]]:
    import portable

    rows = []
    for family, name, est, data in models():
        if only and only not in name:
            continue
        for dtype in dtypes:
            row: dict[str, Any] = {"family": family, "model": name, "dtype": dtype}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=data)
                except Exception as exc:  # a conversion that fails is listed, not certified
                    row.update(status="conversion failed", why=f"{type(exc).__name__}: {exc}"[:200])
                    rows.append(row)
                    continue
                t0 = time.perf_counter()
                try:
                    res = portable.certify(est, art, data=data)
                except Exception as exc:
                    row.update(status="error", why=f"{type(exc).__name__}: {exc}"[:200])
                    rows.append(row)
                    continue
                row["certify_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                try:
                    rep = portable.check(est, art, data=data, samples=1000)
                    row["check_s"] = time.perf_counter() - t0
                    row["check"] = "equivalent" if rep.equivalent else "NOT equivalent"
                except Exception:
                    row["check_s"] = float("nan")
            row["status"] = "certified" if res.certified else ("REFUTED" if res.refuted else "not certifiable")
            row["outputs"] = {k: (c.status, c.method, c.bound, c.reason) for k, c in res.certificates.items()}
            row["why"] = "; ".join(f"{k}: {c.reason}" for k, c in res.certificates.items() if c.status != "certified")
            rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    only = argv[0] if argv else None
    rows = sweep(only=only)
    for r in rows:
        times = (f"{r.get('certify_s', float('nan')):.2f}s/{r.get('check_s', float('nan')):.2f}s"
                 if "certify_s" in r else "")
        print(f"{r['family']:8} {r['model']:45} {r['dtype']:7} {r['status']:16} {times:14} "
              f"check: {r.get('check', '-'):15} {r.get('why', '')[:300]}")
    fams: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        f = fams.setdefault((r["family"], r["dtype"]), [0, 0, 0, 0, 0])
        f[0] += r["status"] == "certified"
        f[1] += 1
        ok = r.get("check") == "equivalent"
        f[2] += ok
        f[3] += ok and r["status"] == "certified"
        f[4] += not ok and r["status"] == "REFUTED"
    for (fam, dt), (c, n, ok, okc, bad_ref) in sorted(fams.items()):
        print(f"{fam} {dt}: {c}/{n} certified; of the {ok} the sampled check passes, {okc} certified; of the "
              f"{n - ok} it fails, {bad_ref} refuted with a verified counterexample")
    ratios = sorted(r["certify_s"] / r["check_s"] for r in rows if r.get("check_s", 0) > 0 and "certify_s" in r)
    cs = sorted(r["certify_s"] for r in rows if "certify_s" in r)
    if ratios:
        print(f"median certify {cs[len(cs) // 2]:.2f}s; median certify/check {ratios[len(ratios) // 2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
