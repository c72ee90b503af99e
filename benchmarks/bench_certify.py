"""Certification time against the sampled check (issue 19): `portable.certify` vs `portable.check(samples=1000)`
on the same (original, artifact) pairs: every model of the sample table and a few boosting-library models as
float32 artifacts, and realistic tree pipelines (tests/pipelines.py) as float64 artifacts. Both run in this one
process, after a warm-up of both on each pair (imports and the check's learned input plan are shared; each
side's time is its best of 3 runs). The status column says what
the certificate proved (method and bound) or why there is none.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from ._util import best_of, table

ROOT = Path(__file__).resolve().parent.parent


def _models() -> list[tuple[str, Any, Any, str]]:
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
        from tests import pipelines  # realistic affine pipelines and an MLP on DataFrames (r19b's methods)

        for name in ("titanic_logistic_regression", "titanic_integer_column_onehot", "titanic_linear_svc",
                     "titanic_mlp", "house_ridge_log_target", "house_polynomial_ridge"):
            est, df, _ = pipelines.build(name)
            out.append((name, est, df, "float32"))
        try:  # realistic tree pipelines (imputers, scalers, encoders), in float64 as portable ships them
            from tests.pipelines import build

            for name in ("titanic_random_forest_ordinal", "titanic_gradient_boosting", "house_gradient_boosting",
                         "house_lightgbm"):
                pipe, df, _ = build(name)
                out.append((f"pipeline: {name}", pipe, df, "float64"))
        except ImportError:
            pass
    return out


def _status(result: Any) -> str:
    parts = []
    for name, c in result.certificates.items():
        if c.status == "certified":
            what = "near-ties only" if c.details.get("near_ties_only") else f"<= {c.bound:.2g}"
            parts.append(f"{name}: {c.method} {what}")
        else:
            parts.append(f"{name}: {c.status}")
    return "; ".join(parts)


def run() -> str:
    import portable

    rows = []
    ratios = []
    for name, est, data, dtype in _models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=data)
            result = portable.certify(est, art, data=data)  # warm-up, and the status shown
            portable.check(est, art, samples=1000, data=data)
            t_cert = best_of(lambda: portable.certify(est, art, data=data), repeat=3)
            t_check = best_of(lambda: portable.check(est, art, samples=1000, data=data), repeat=3)
        ratios.append(t_cert / t_check)
        rows.append([name, f"{t_cert * 1e3:.0f} ms", f"{t_check * 1e3:.0f} ms", f"{t_cert / t_check:.2f}x",
                     _status(result)])
    n_cert = sum(1 for r in rows if "not certifiable" not in r[4] and "refuted" not in r[4])
    head = ("## Certification time vs the sampled check (issue 19, bench_certify)\n\n"
            "`portable.certify(original, artifact)` (a proved bound over the whole domain) against "
            "`portable.check(samples=1000)` on the same pair, float32 artifacts (the realistic pipelines: "
            "float64, as portable ships them), best of 3 in one process after a "
            f"warm-up. {n_cert} of {len(rows)} models are certified on every output; median ratio "
            f"{sorted(ratios)[len(ratios) // 2]:.2f}x. The machine was shared with other helpers' work (2 cores): "
            "absolute times are noisy, the ratios less so. Tree models are certified by the tree method "
            "(routing in the input dtype, leaf pairs, rounding of the sums), linear and network models by "
            "the affine and interval (ibp) methods: exact largest coefficient difference over the box, per-operation "
            "float32 rounding bounds, logistic/softmax/hidden layers crossed with their slopes. The RBF SVMs are read "
            "but the worst-case float32 bound over hundreds of support vectors exceeds the tolerance (not "
            "certifiable, never refuted).\n\n")
    return head + table(["model", "certify", "check (1000)", "certify / check", "certificate"], rows)
