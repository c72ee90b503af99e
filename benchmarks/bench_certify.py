"""Certification time against the sampled check (issue 19): `portable.certify` vs `portable.check(samples=1000)`
on the same (original, artifact) pairs, per model: every model of the sample table (tests/sample_models.py) and
three boosting-library models as float32 artifacts; realistic pipelines of tests/pipelines.py (linear, calibrated,
MLP, text, trees) and ensembles/naive Bayes models (tests/test_certify_ensembles.py) converted as
`portable.convert` ships them (float32 first, float64 when its check asks for it). Both run in this one process
after a warm-up of both on each pair (imports and the check's learned input plan are shared); each side's time is
its best of 3 in CPU time (`time.process_time`: both are one-threaded here, and the machine is shared). The
certificate column says what was proved (method and bound) or that an output is not certifiable.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ._util import table

ROOT = Path(__file__).resolve().parent.parent

PIPELINES = ("titanic_logistic_regression", "titanic_integer_column_onehot", "titanic_linear_svc",
             "titanic_calibrated_linear_svc", "titanic_mlp", "house_ridge_log_target", "house_polynomial_ridge",
             "text_tfidf_logistic_regression", "text_tfidf_linear_svc", "text_hashing_sgd",
             "text_count_stop_words_limits", "text_count_naive_bayes", "text_tfidf_on_documents",
             "titanic_random_forest_ordinal", "titanic_gradient_boosting", "house_gradient_boosting",
             "house_lightgbm", "titanic_onehot_max_categories", "house_onehot_max_categories_integer_and_string",
             "house_clip_function")
ENSEMBLES = ("calibrated_sigmoid", "soft_voting", "voting_regressor", "stacking_classifier", "stacking_regressor",
             "multinomial_nb", "complement_nb")


def _models() -> list[tuple[str, Any, Any, str]]:
    """(name, estimator, data, dtype): dtype `auto` converts as portable.convert does by default."""
    sys.path.insert(0, str(ROOT))
    from tests.sample_models import SAMPLE_MODELS

    out: list[tuple[str, Any, Any, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, build in SAMPLE_MODELS:
            est, X, data = build()
            out.append((name, est, data, "float32"))
        try:
            import lightgbm as lgb
            import xgboost as xgb
            from sklearn.datasets import load_breast_cancer, load_diabetes
            from sklearn.ensemble import HistGradientBoostingRegressor

            Xb, yb = load_breast_cancer(return_X_y=True)
            Xd, yd = load_diabetes(return_X_y=True)
            out.append(("xgboost_classifier_100", xgb.XGBClassifier(n_estimators=100, max_depth=4).fit(Xb, yb), None,
                        "float32"))
            out.append(("lightgbm_regressor_100", lgb.LGBMRegressor(n_estimators=100, num_leaves=15,
                                                                    verbose=-1).fit(Xd, yd), None, "float32"))
            out.append(("hist_gradient_boosting_100", HistGradientBoostingRegressor(max_iter=100).fit(Xd, yd),
                        None, "float32"))
        except ImportError:
            pass
        from tests import pipelines
        from tests.test_certify_ensembles import _fit

        for name in ENSEMBLES:
            est, X = _fit(name)
            out.append((name, est, X, "auto"))
        for name in PIPELINES:
            est, df, _ = pipelines.build(name)
            out.append((f"pipeline: {name}", est, df, "auto"))
    return out


def _status(result: Any) -> str:
    parts = []
    for name, c in result.certificates.items():
        if c.status == "certified":
            what = f"<= {c.bound:.2g}"
            if c.details.get("near_ties_only"):  # a label's; a k-NN output's bound holds outside distance ties
                what = f"<= {c.bound:.2g} except near-ties" if c.bound else "near-ties only"
            parts.append(f"{name}: {c.method} {what}")
        elif "floor_needed" in c.details:  # driver._explain_floor: the floor the bound needs, the smallest found
            d = c.details
            found = d.get("smallest_output_found", float("nan"))
            parts.append(f"{name}: {c.status} (bound {c.bound:.2g}; needs abs(y) >= {d['floor_needed']:.3g}, "
                         f"smallest abs(y) found {found:.3g})")
        else:
            parts.append(f"{name}: {c.status}")
    return "; ".join(parts)


def _cpu(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def run() -> str:
    import portable

    rows = []
    ratios = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    only = os.environ.get("PORTABLE_BENCH_ONLY")
    for name, est, data, dtype in _models():
        if only and only not in name:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dtype == "auto":
                art = portable.convert(est, to="onnx", data=data)
            else:
                art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=data)
            shipped = dtype
            result = portable.certify(est, art, data=data)  # warm-up, and the status shown
            portable.check(est, art, samples=1000, data=data)
            t_cert = _cpu(lambda: portable.certify(est, art, data=data))
            t_check = _cpu(lambda: portable.check(est, art, samples=1000, data=data))
        ratios.append(t_cert / t_check)
        rows.append([name, _dtype(art, shipped), f"{t_cert * 1e3:.0f} ms", f"{t_check * 1e3:.0f} ms",
                     f"{t_cert / t_check:.2f}x", _status(result)])
        print(f"  {name}: {t_cert / t_check:.2f}x {_status(result)}", file=sys.stderr, flush=True)
    n_cert = sum(1 for r in rows if "not certifiable" not in r[5] and "refuted" not in r[5])
    missing = [r[0] for r in rows if "not certifiable" in r[5] or "refuted" in r[5]]
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ordered = sorted(ratios)
    head = ("## Certification time vs the sampled check (issue 19, bench_certify)\n\n"
            "`portable.certify(original, artifact)` (a proved bound over the whole domain) against "
            "`portable.check(samples=1000)` on the same pair, CPU time (`time.process_time`), best of 3 in one "
            "process after a warm-up. Sample-table and boosting models: float32 artifacts; ensembles, naive Bayes "
            "and realistic pipelines: converted as `portable.convert` ships them (dtype column). "
            f"{n_cert} of {len(rows)} models are certified on every output; median ratio "
            f"{ordered[len(ordered) // 2]:.2f}x, largest {ordered[-1]:.2f}x. The machine was shared with other "
            f"helpers' work (2 cores; load average {load:.1f} at the start, {load_after:.1f} at the end): "
            "absolute times are noisy, the CPU-time ratios less so. Methods: `trees` (routing in the input "
            "dtype, leaf pairs, rounding of the sums), `affine`/`ibp` (exact largest coefficient difference over "
            "the box, per-operation float rounding bounds, logistic/softmax/hidden layers crossed with their "
            "slopes; calibrations, soft voting and stacking as stages of parallel blocks), `text` (everything after "
            "the vectorizer, over its outputs: the unit ball of normalised rows and the most distinct terms of the "
            "data's documents; the vectorizer itself is assumed to agree, as the sampled check tests), `neighbors` "
            "(k-NN: the same neighbours except at near-ties of distances, then the targets' or votes' rounding). "
            "Rounding: "
            "dot products by the binades of their partial sums, softmax through a max-shifted log-sum-exp by the "
            "log-sum-exp's own rounding, L1 normalisations of logistic units by relative errors. Not certified "
            f"on every output ({', '.join(missing) or 'none'}), with the reason in the certificate. For a numeric "
            "output the reason gives the floor of |output| its bound needs proved over the domain (atol is scaled only "
            "by a proved floor: a check of rows whose outputs are small scales it by 1) and the smallest |output| "
            "the original gives on 2048 rows of the domain (uniform and corners): below the floor, no range proof "
            "can certify that bound (a sharper bound near such rows is needed); above it, a tighter range proof "
            "may. SVC's multiclass Platt probabilities have no reading.\n\n")
    return head + table(["model", "dtype", "certify", "check (1000)", "certify / check", "certificate"], rows)


def _dtype(art: Any, shipped: str) -> str:
    return str((getattr(art, "metadata", None) or {}).get("portable.dtype") or shipped)
