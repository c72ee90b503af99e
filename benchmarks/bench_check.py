"""The equivalence checker's cost per 1,000 samples next to the cost of simply running both models on them."""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from ._util import best_of, peak_memory, table

SAMPLES = 1000
MIN_ROUNDS, MAX_ROUNDS, BUDGET_S = 7, 200, 1.5  # timing rounds per model: at least 7, more while under 1.5 s


def _models() -> list[tuple[str, Any, Any, Any]]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification, make_regression
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC

    Xc, yc = make_classification(500, 10, n_informative=5, n_classes=3, random_state=0)
    Xr, yr = make_regression(500, 10, random_state=0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(5, 2, 500),
                          "city": rng.choice(["paris", "lyon", "nice"], 500)})
    yf = ((frame.a + (frame.city == "nice")) > 0.5).astype(int)
    return [
        ("LogisticRegression, 10 features", LogisticRegression(max_iter=500), Xc, yc),
        ("StandardScaler + PCA + LogisticRegression", make_pipeline(StandardScaler(), PCA(5),
                                                                     LogisticRegression(max_iter=500)), Xc, yc),
        ("ColumnTransformer on a DataFrame + LogisticRegression", make_pipeline(
            ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["city"])]),
            LogisticRegression()), frame, yf),
        ("MLPRegressor (32,)", MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, random_state=0), Xr, yr / 100),
        ("SVC(probability=True)", SVC(probability=True, random_state=0), Xc, yc),
        ("KNeighborsClassifier(5)", KNeighborsClassifier(5), Xc, yc),
        ("GradientBoostingRegressor, 100 trees", GradientBoostingRegressor(random_state=0), Xr, yr / 100),
        ("RandomForestClassifier, 100 trees", RandomForestClassifier(100, random_state=0), Xc, yc),
    ]


def run() -> str:
    from threadpoolctl import threadpool_limits

    # one BLAS/OpenMP thread for both measurements (onnxruntime keeps its own session threads in both)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _run()


def _run() -> str:
    import portable
    from portable.equivalence import _PLANS, _label_edges, _original_rows, _plan, check
    from portable.equivalence.inputs import Batch, assemble, feed, generate

    rows = []
    for name, est, X, y in _models():
        est.fit(X, y)
        data = X if hasattr(X, "columns") else None
        original = portable.load(est, data=data)
        art = portable.convert(est, to="onnx", check=False, dtype="float32", data=data)
        outputs, plan, _ = _plan(original, art, None)
        # the rows a check with seed 0 generates (label-boundary rows included), fed as the check feeds them
        rng = np.random.default_rng(0)
        batch = generate(plan, SAMPLES, rng)
        edge = _label_edges(plan, original, art, outputs, SAMPLES, rng)
        if edge is not None and len(edge):
            batch = Batch.concat([batch, edge])
        try:
            original.run(feed(assemble(plan, batch), original))
        except Exception:  # generated rows the original rejects (an unknown category): the check drops them
            batch = batch.take(_original_rows(original, plan, batch)[0])
        arrays = assemble(plan, batch)
        a_in, b_in = feed(arrays, original), feed(arrays, art)

        def both() -> None:
            original.run(a_in)
            art.run(b_in)

        inside = [0.0]  # time spent in the models' runs during one check

        def timed(run: Any) -> Any:
            def wrapper(inputs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return run(inputs)
                finally:
                    inside[0] += time.perf_counter() - t0
            return wrapper

        def checked() -> Any:
            inside[0] = 0.0
            return check(original, art, samples=SAMPLES, seed=0)

        report = checked()  # warms both models' sessions, and learns the plan of this pair

        def first() -> Any:  # a pair's first check: it learns the input plan and the label-boundary pool too
            _PLANS.pop(art, None)
            return check(original, art, samples=SAMPLES, seed=0)

        t_first = best_of(first, repeat=5)
        checked()
        original.run, art.run = timed(original.run), timed(art.run)  # type: ignore[method-assign]
        t_run = t_check = t_own = float("inf")
        spent, rounds = 0.0, 0
        while rounds < MIN_ROUNDS or (spent < BUDGET_S and rounds < MAX_ROUNDS):
            # interleaved, so a busy machine slows both sides alike; fast models get more rounds
            one_run, one_check = best_of(both, repeat=1), best_of(checked, repeat=1)
            t_run, t_check = min(t_run, one_run), min(t_check, one_check)
            t_own = min(t_own, one_check - inside[0])
            spent, rounds = spent + one_run + one_check, rounds + 1
        _, mem_run = peak_memory(both)
        _, mem_check = peak_memory(checked)
        ratio = t_check / t_run
        rows.append([name, f"{t_run * 1e3:.2f}", f"{t_check * 1e3:.2f}", f"{t_own * 1e3:.2f}",
                     f"{t_own / t_run:.0%}", f"**{ratio:.2f}x**" if ratio >= 1.5 else f"{ratio:.2f}x",
                     f"{t_first * 1e3:.2f}", f"{t_first / t_run:.1f}x",
                     f"{mem_check / max(mem_run, 1):.1f}x", "yes" if report.equivalent else "NO"])
    header = ["model (float32 ONNX)", "run both, ms", "check, ms", "checker's own, ms", "own / run both",
              "check / run both (target < 1.5x)", "first check of the pair, ms", "first check / run both",
              "peak memory, check / run both", "equivalent"]
    return ("## Equivalence checker: cost per 1,000 samples\n\n"
            f"`portable.check(original, converted, samples={SAMPLES})` next to running the scikit-learn model and "
            "its ONNX conversion (onnxruntime) once each on the same 1,000 generated rows (the rows of seed 0, fed "
            "as the check feeds them), best of 7 to 200 interleaved rounds, with one BLAS/OpenMP thread for both. "
            "*Checker's own* is a check's time minus the time of the two model runs inside that same check "
            "(generating inputs, comparing, building the report), so noise in the model runs cancels; the next "
            "ratio compares whole times and carries that noise (bold: at or above the 1.5x target of issue 18). "
            "The input plan (ranges, tree splits and their boxes) and the pool of rows on the label boundary are "
            "learned by a pair's first check and kept for the next ones; *first check* is a check that learns "
            "them again (best of 5; both models' own hints are kept by the models). The machine was shared with "
            "other sessions' tests and benchmarks during the run (load average above 10 on 2 cores): absolute "
            "times are inflated, ratios of best-of-many less so. No check below fails, so no shrinking is "
            "timed.\n\n"
            + table(header, rows))


if __name__ == "__main__":
    print(run())
