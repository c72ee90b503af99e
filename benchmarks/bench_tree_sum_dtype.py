"""Float32 tree regressors: the sum in float32 (`TreeEnsembleRegressor`, ai.onnx.ml 3) against the float64 sum
(Cast(float32 -> double), then `TreeEnsembleRegressor` with double thresholds and leaf weights, which onnxruntime
sums in double and writes as float32; `trees.sums_in_double`, issue 19), one onnxruntime thread, at 1, 100 and
10,000 rows.

Both artifacts are converted in this process (`trees.WIDEN_SUMS` off, then on) and timed round by round,
interleaved, in thread CPU time (the machine is shared); best of the rounds. The accuracy columns give each
artifact's largest difference from float32(the library's own float64 prediction) on the 10,000 rows.
"""
from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np

from ._util import table

BATCHES = (1, 100, 10_000)
FEATURES = 20


def _models() -> list[tuple[str, Any]]:
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor

    X, y = make_regression(20_000, FEATURES, noise=5.0, random_state=0)
    y = y * 3
    out = [("HistGradientBoostingRegressor, 100 iterations", HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(X, y)),
           ("GradientBoostingRegressor, 100 trees, depth 3", GradientBoostingRegressor(random_state=0).fit(X, y)),
           ("RandomForestRegressor, 100 trees, depth 8", RandomForestRegressor(100, max_depth=8, random_state=0).fit(X, y)),
           ("DecisionTreeRegressor, depth 10", DecisionTreeRegressor(max_depth=10, random_state=0).fit(X, y))]
    try:
        import lightgbm

        out.append(("LGBMRegressor, 100 trees, 31 leaves", lightgbm.LGBMRegressor(n_estimators=100, verbose=-1, n_jobs=1).fit(X, y)))
    except ImportError:
        pass
    try:
        import xgboost

        out.append(("XGBRegressor, 100 trees, depth 6", xgboost.XGBRegressor(n_estimators=100, max_depth=6, n_jobs=1).fit(X, y)))
    except ImportError:
        pass
    only = os.environ.get("PORTABLE_BENCH_ONLY")
    return [(n, m) for n, m in out if not only or only in n]


def _artifacts(est: Any) -> tuple[Any, Any]:
    import portable
    from portable.converters.sklearn import trees

    before = trees.WIDEN_SUMS
    try:
        trees.WIDEN_SUMS = False
        f32 = portable.convert(est, to="onnx", dtype="float32", check=False)
        trees.WIDEN_SUMS = True
        f64 = portable.convert(est, to="onnx", dtype="float32", check=False)
    finally:
        trees.WIDEN_SUMS = before
    return f32, f64


def run() -> str:
    import onnxruntime as ort

    rows = []
    load = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    for name, est in _models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f32, f64 = _artifacts(est)
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sess = [ort.InferenceSession(a.proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
                for a in (f32, f64)]
        inp = sess[0].get_inputs()[0].name
        X = (rng.normal(size=(10_000, FEATURES)) * 1.5).astype(np.float32)
        ref = est.predict(X).astype(np.float64)
        acc = []
        for s in sess:
            got = s.run(None, {inp: X})[0].reshape(-1).astype(np.float64)
            acc.append(float(np.abs(got - ref.astype(np.float32)).max()))
        times = {}
        for n in BATCHES:
            xb = X[:n]
            number = max(1, 2000 // n) if n < 10_000 else 3
            best = [float("inf")] * 2
            for _ in range(7):
                for k, s in enumerate(sess):
                    t0 = time.thread_time()
                    for _ in range(number):
                        s.run(None, {inp: xb})
                    best[k] = min(best[k], (time.thread_time() - t0) / number)
            times[n] = best
        fmt = lambda n, t: f"{t * 1e6:.1f} us" if n < 10_000 else f"{t * 1e3:.2f} ms"  # noqa: E731
        rows.append([name] + [f"{fmt(n, times[n][0])} / {fmt(n, times[n][1])} ({times[n][0] / times[n][1]:.2f}x)"
                              for n in BATCHES] + [f"{acc[0]:.2g} / {acc[1]:.2g}"])
        print(f"  {name}: {rows[-1][1:]}", flush=True)
    load_after = os.getloadavg()[0]
    head = ("## Float32 tree regressors: the sum in float32 or in float64 (issue 19, bench_tree_sum_dtype)\n\n"
            "One onnxruntime thread, thread CPU time, best of 7 interleaved rounds per batch size; each cell: "
            "float32 sum (`TreeEnsembleRegressor` v3, float32 thresholds and weights) / float64 sum "
            "(`Cast(float32 -> double)`, then `TreeEnsembleRegressor` v3 with double thresholds and leaf weights, "
            "which sums in double and writes float32; `trees.sums_in_double` with `trees.WIDEN_SUMS` on) "
            "(ratio above 1: the float64 sum is faster). The decision tree (one term) and XGBoost (which sums in "
            "float32 itself) are not widened: both columns are the same artifact, and their ratios show the "
            "noise. Last column: largest difference from float32(the library's float64 prediction) on the 10,000 "
            "rows (inputs ~ N(0, 1.5^2), the targets 3x make_regression's). Load average "
            f"{load:.1f} at the start, {load_after:.1f} at the end (2 cores, shared).\n\n")
    return head + table(["model", "1 row", "100 rows", "10,000 rows", "max |diff| f32 sum / f64 sum"], rows)
