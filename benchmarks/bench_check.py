"""The equivalence checker's cost per 1,000 samples next to the cost of simply running both models on them."""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ._util import peak_memory, table

SAMPLES = 1000
MIN_ROUNDS, MAX_ROUNDS, BUDGET_S = 9, 400, 3.0  # timing rounds per model: at least 9, more while under 3 s
FIRST_ROUNDS, FIRST_BUDGET_S = 5, 1.0  # first checks timed per model: at least 5, up to 50 within 1 s


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


def _cpu(fn: Callable[[], Any]) -> float:
    """CPU time of the calling thread during one call, in seconds. Not the process's: onnxruntime's worker
    threads (sessions made without `allow_spinning=0`, as a user's default session is) would charge their
    spinning to whatever runs next."""
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def _user_calls(est: Any, outputs: list[str]) -> list[Callable[[Any], Any]]:
    """The estimator's methods that give `outputs` (label and values: predict or transform; probabilities:
    predict_proba; scores: decision_function)."""
    calls = []
    if any(n not in ("probabilities", "scores") for n in outputs):
        calls.append(est.predict if hasattr(est, "predict") else est.transform)
    if "probabilities" in outputs:
        calls.append(est.predict_proba)
    if "scores" in outputs:
        calls.append(est.decision_function)
    return calls


PROCESS_ROUNDS = 3  # fresh processes per side for the first check in a new process

_CHECK_SIDE = """
import sys, time
import portable
report = portable.check(sys.argv[1], sys.argv[2], samples=int(sys.argv[3]))
assert report.equivalent, report.summary_line()
print(time.process_time())
"""
_RUN_SIDE = """
import pickle, sys, time
import numpy as np
import onnxruntime as ort
with open(sys.argv[1], "rb") as f:
    est = pickle.load(f)
with open(sys.argv[3], "rb") as f:
    user_x, feeds, methods = pickle.load(f)
for m in methods:
    getattr(est, m)(user_x)
ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"]).run(None, feeds)
print(time.process_time())
"""


def _first_in_process(est: Any, user_x: Any, art: Any, methods: list[str], feeds: dict[str, Any]) -> tuple[
        float, float]:
    """CPU time of a new Python process that runs `portable.check(model.pkl, model.onnx)` (the CLI's work:
    imports, loading both files, the check) over that of a new process that does what a user would instead
    (imports, `pickle.load`, an onnxruntime session on the file, the estimator's methods and the session run
    once on the rows the check compares); the median of `PROCESS_ROUNDS` interleaved pairs of processes, one
    BLAS thread each, and the median CPU seconds of the user's side. NaN when either side fails."""
    import os
    import pickle
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    ratios, user_side = [], []
    with tempfile.TemporaryDirectory() as tmp:
        pkl, onx, rows = (os.path.join(tmp, n) for n in ("model.pkl", "model.onnx", "rows.pkl"))
        with open(pkl, "wb") as f:
            pickle.dump(est, f)
        art.save(onx)
        with open(rows, "wb") as f:
            pickle.dump((user_x, feeds, methods), f)
        for _ in range(PROCESS_ROUNDS):
            try:
                sides = [float(subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                                              env=env, timeout=600, check=True).stdout.split()[-1])
                         for code, args in ((_CHECK_SIDE, (pkl, onx, str(SAMPLES))), (_RUN_SIDE, (pkl, onx, rows)))]
            except (subprocess.SubprocessError, ValueError, IndexError):
                return float("nan"), float("nan")
            ratios.append(sides[0] / sides[1])
            user_side.append(sides[1])
    return float(np.median(ratios)), float(np.median(user_side))


def _seeding(both: Callable[[], Any], rounds: int = 25) -> tuple[float, float]:
    """CPU seconds of `np.random.default_rng(seed)` for a seed not used before (what a check with a new seed
    makes first): the median in a loop, and the median just after `both()` (as in a check, whose code runs after
    the models' runs of the rounds before it)."""
    seeds = iter(range(1 << 40, (1 << 40) + 4 * rounds))
    loop = [_cpu(lambda: np.random.default_rng(next(seeds))) for _ in range(rounds)]
    cold = []
    for _ in range(rounds):
        both()
        cold.append(_cpu(lambda: np.random.default_rng(next(seeds))))
    return float(np.median(loop)), float(np.median(cold))


def _onnx_import_cpu() -> float:
    """CPU seconds a new process spends importing `onnx` after scikit-learn and onnxruntime (what loading an
    .onnx file adds to the user's imports: portable validates the file with `onnx.checker`); the median of
    `PROCESS_ROUNDS` processes, NaN when it fails."""
    import subprocess
    import sys

    code = ("import time, sklearn.base, sklearn.linear_model, onnxruntime; t = time.process_time(); import onnx; "
            "print(time.process_time() - t)")
    got = []
    for _ in range(PROCESS_ROUNDS):
        try:
            got.append(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            timeout=600, check=True).stdout.split()[-1]))
        except (subprocess.SubprocessError, ValueError, IndexError):
            return float("nan")
    return float(np.median(got))


def _run() -> str:
    import os

    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())

    import portable
    from portable.equivalence import _PLANS, _edge_pool, _label_edges, _original_rows, _plan
    from portable.equivalence.inputs import Batch, assemble, build_plan, feed, generate

    rows: list[list[Any]] = []
    summary: list[tuple[str, float, float, float, float]] = []
    user_processes: list[float] = []
    learning: list[tuple[float, float]] = []  # per model: CPU seconds of build_plan and of the edge pool
    seeding: list[tuple[float, float]] = []  # per model: CPU seconds of default_rng(new seed), in a loop and cold
    new_firsts: list[float] = []  # per model: a new artifact's first check / a first run of both with a new session
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
        # what a user runs instead: the estimator's own methods on the array or DataFrame it takes, and an
        # onnxruntime session on inputs already in the graph's dtypes
        user_x = original.to_frame_or_array(a_in)
        user_calls = _user_calls(est, original.signature.output_names)
        art.run(b_in)
        sess = art._session  # the artifact's own session (one more would add its thread pool to the process)
        user_feeds = art._feeds(b_in)

        def both() -> None:
            for call in user_calls:
                call(user_x)
            sess.run(None, user_feeds)

        def both_models() -> None:  # the same through portable's Model.run (as the check runs them)
            original.run(a_in)
            art.run(b_in)

        inside = [0.0]  # CPU time spent in the models' runs during one check

        def timed(run: Any) -> Any:
            def wrapper(inputs: Any) -> Any:
                t0 = time.thread_time()
                try:
                    return run(inputs)
                finally:
                    inside[0] += time.thread_time() - t0
            return wrapper

        def checked() -> Any:  # what a user calls (the public function: arguments, check, report recorded)
            inside[0] = 0.0
            return portable.check(original, art, samples=SAMPLES)

        report = checked()  # warms both models' sessions, and learns the plan of this pair

        def first() -> Any:  # a pair's first check: it learns the input plan and the label-boundary pool too
            _PLANS.pop(art, None)
            return portable.check(original, art, samples=SAMPLES)

        firsts, spent = [], 0.0
        while len(firsts) < FIRST_ROUNDS or (spent < FIRST_BUDGET_S and len(firsts) < 10 * FIRST_ROUNDS):
            one_first, one_run = _cpu(first), _cpu(both)
            firsts.append(one_first / one_run)
            spent += one_first + one_run
        # like for like: a first check of a new artifact object (its onnxruntime session made inside the check, as
        # after `convert(check=False)` or `load`) against a user's first run of both, which makes a session too
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as portable's own sessions
        fresh_firsts, spent = [], 0.0
        while len(fresh_firsts) < FIRST_ROUNDS or (spent < FIRST_BUDGET_S and
                                                   len(fresh_firsts) < 10 * FIRST_ROUNDS):
            copy = type(art.proto)()
            copy.CopyFrom(art.proto)
            new_art = type(art)(copy)

            def first_new() -> Any:
                return portable.check(original, new_art, samples=SAMPLES)

            def both_new() -> None:
                s = ort.InferenceSession(art.proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
                for call in user_calls:
                    call(user_x)
                s.run(None, user_feeds)

            one_first, one_run = _cpu(first_new), _cpu(both_new)
            fresh_firsts.append(one_first / one_run)
            spent += one_first + one_run
            del new_art, copy
        checked()
        runs, checks, owns, ratios, wrapped, fresh = [], [], [], [], [], []
        spent = 0.0
        while len(runs) < MIN_ROUNDS or (spent < BUDGET_S and len(runs) < MAX_ROUNDS):
            # interleaved, so a busy machine slows both sides alike; fast models get more rounds
            one_run, one_check = _cpu(both), _cpu(checked)
            wrapped.append(_cpu(both_models))
            # the checker's own work, in one more check whose model runs are timed (not the check timed above:
            # the timing, two clock reads per run, would count as the check's)
            original.run, art.run = timed(original.run), timed(art.run)  # type: ignore[method-assign]
            one_timed = _cpu(checked)
            del original.run, art.run  # the instance attributes go: the class's methods again
            runs.append(one_run)
            checks.append(one_check)
            owns.append(one_timed - inside[0])
            ratios.append(one_check / one_run)
            spent += one_run + one_check + one_timed
        spent = 0.0
        while len(fresh) < MIN_ROUNDS or (spent < BUDGET_S / 2 and len(fresh) < MAX_ROUNDS):
            k = len(fresh) + 1  # a seed no check of this pair used: its rows are generated again
            one_run = _cpu(both)
            one_check = _cpu(lambda: portable.check(original, art, samples=SAMPLES, seed=k))
            fresh.append(one_check / one_run)
            spent += one_run + one_check
        # what a pair's first check learns: the plan (build_plan) and, for a classifier, the label-boundary pool
        labels = [n for n, k in outputs if k == "label"]
        t_plan = float(np.median([_cpu(lambda: build_plan(original, art)) for _ in range(MIN_ROUNDS)]))
        t_pool = float(np.median([_cpu(lambda: _edge_pool(plan, original, art, labels[0])) for _ in range(3)])) \
            if labels else float("nan")
        learning.append((t_plan, t_pool))
        gens = []  # what a new seed adds: generating its rows (the label-boundary sample included)
        for k in range(MIN_ROUNDS):
            gen_rng = np.random.default_rng(SAMPLES + k)
            gens.append(_cpu(lambda: (generate(plan, SAMPLES, gen_rng),
                                      _label_edges(plan, original, art, outputs, SAMPLES, gen_rng))))
        t_gen = float(np.median(gens))
        seeding.append(_seeding(both))
        _, mem_run = peak_memory(both)
        _, mem_check = peak_memory(checked)
        t_run, t_check, t_own, t_wrapped = (float(np.median(v)) for v in (runs, checks, owns, wrapped))
        ratio, ratio_min = float(np.median(ratios)), min(checks) / min(runs)
        first_ratio = float(np.median(firsts))
        new_first_ratio = float(np.median(fresh_firsts))
        fresh_ratio = float(np.median(fresh))
        process_ratio, user_process = _first_in_process(est, user_x, art, [c.__name__ for c in user_calls],
                                                         user_feeds)
        user_processes.append(user_process)
        summary.append((name, t_run, t_own, ratio, first_ratio, t_gen, fresh_ratio, process_ratio))
        new_firsts.append(new_first_ratio)
        rows.append([name, f"{t_run * 1e3:.2f}", f"{t_wrapped * 1e3:.2f}", f"{t_check * 1e3:.2f}",
                     f"{t_own * 1e3:.2f}", f"{t_own / t_run:.0%}",
                     f"**{ratio:.2f}x**" if ratio >= 1.5 else f"{ratio:.2f}x", f"{ratio_min:.2f}x",
                     f"{t_gen * 1e3:.2f}",
                     f"**{fresh_ratio:.2f}x**" if fresh_ratio >= 1.5 else f"{fresh_ratio:.2f}x",
                     f"**{process_ratio:.2f}x**" if process_ratio >= 1.5 else f"{process_ratio:.2f}x",
                     f"**{new_first_ratio:.2f}x**" if new_first_ratio >= 1.5 else f"{new_first_ratio:.2f}x",
                     f"{first_ratio:.1f}x", f"{mem_check / max(mem_run, 1):.1f}x",
                     len(runs), "yes" if report.equivalent else "NO"])
    header = ["model (float32 ONNX)", "run both, ms", "run both through Model.run, ms", "check, ms",
              "checker's own, ms", "own / run both", "check / run both (target < 1.5x)", "best check / best run both",
              "a new seed's rows: generating them, ms", "check with a new seed / run both", "first check in a new process / running both in one",
              "first check of a new artifact / first run of both (new session)",
              "first check, session kept / warm run of both", "peak memory, check / run both", "rounds", "equivalent"]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    over = [f"{n} ({r:.2f}x: both models run in {t * 1e3:.2f} ms, the checker's own work takes {o * 1e3:.2f} ms)"
            for n, t, o, r, *_ in summary if r >= 1.5]
    firsts = [f"{n} {f:.1f}x (plan {pl * 1e3:.2f} ms" + (f", label-boundary pool {po * 1e3:.2f} ms" if po == po else "")
              + f"; a run of both {t * 1e3:.2f} ms)" for (n, t, _, _, f, *_), (pl, po) in zip(summary, learning)
              if f >= 1.5]
    seeds = [f"{n} {f:.2f}x (generating its rows: {g * 1e3:.2f} ms, {g / t:.0%} of a run of both; a new seed adds "
             f"{max(f - r, 0.0) * t * 1e3:.2f} ms to a warm check)" for n, t, _, r, _, g, f, _ in summary if f >= 1.5]
    shares = [g / max((f - r) * t, 1e-12) for n, t, _, r, _, g, f, _ in summary if f >= 1.5] or [float("nan")]
    cold = [c for (*_, f, _), c in zip(summary, seeding) if f >= 1.5] or [(float("nan"), float("nan"))]
    procs = [f"{n} {p:.2f}x" for n, *_, p in summary if p >= 1.5]
    verdict = ("Every model is within the 1.5x target. " if not over else
               "**Above the 1.5x target: " + "; ".join(over) + ".** ")
    verdict += ("With a new seed every round (no generated rows kept) every model is within it too. " if not seeds
                else "With a new seed every round (rows generated again): " + "; ".join(seeds) + ": the seeded "
                "uniform draws of the random cloud, its normal bump (Box-Muller), the special rows and, for a "
                "classifier, the seeded sample of the label-boundary pool, which the rows compared fix (bit for "
                "bit: the mutation benchmark's figures rest on them, and tests/test_check_rows_pinned.py pins "
                f"them), so their cost stays. Generating them in a loop (the column) is {min(shares):.0%} to "
                f"{max(shares):.0%} of what a new seed adds: the rest is the check's own steps on a new batch (its "
                "arrays for each model, its counts by source), the same steps run cold (right after both models' "
                "runs a Python-level numpy call costs several times what it costs in a loop: seeding a new seed's "
                f"generator, `default_rng`, takes {np.median([c[0] for c in cold]) * 1e6:.0f} us in a loop and "
                f"{np.median([c[1] for c in cold]) * 1e6:.0f} us just after a run of both, the median over these "
                "models), and both models running on rows they have not seen, where the run of both it is "
                "compared with reuses one set of rows every round. A check with a seed used before reuses the "
                "rows. ")
    onnx_s = _onnx_import_cpu() if procs else float("nan")
    verdict += ("A first check in a new process is within it for every model. " if not procs else
                "A first check in a new process exceeds it for " + ", ".join(procs) + f": importing `onnx` (which "
                f"loading the .onnx file needs, to validate it with `onnx.checker`; the user's process does not "
                f"import it) alone takes {onnx_s:.2f} s of CPU after scikit-learn and onnxruntime, against "
                f"{np.nanmedian(user_processes):.2f} s for the user's whole process (median over the models): "
                + ("most of it is ml_dtypes registering its numpy loops (`PyUFunc_AddLoop` compares each new "
                   "loop with every loop registered before; ml_dtypes < 0.7 takes milliseconds). " if onnx_s > 0.5
                   else "the rest is loading both files, learning the pair's plan and the check. "))
    news = [f"{n} {r:.2f}x" for (n, *_), r in zip(summary, new_firsts) if r >= 1.5]
    verdict += ("A first check of a new artifact (its session made inside the check) is within it too, next to a "
                "user's first run of both (a session made too). " if not news else
                "A first check of a new artifact exceeds it against a user's first run of both (a new session "
                "too) for " + ", ".join(news) + ". ")
    verdict += ("A first check of a pair whose session is already made (*first check, session kept*: the plan "
                "learned again, over a warm run of both, which does not compare like with like: the check pays "
                "learning, the run nothing) is within it too." if not firsts else
                "A first check of a pair whose session is already made, over a warm run of both (*first check, "
                "session kept*: not like with like, the check pays learning and the run nothing), is above it for "
                + "; ".join(firsts) + ": it builds the input plan and, for a "
                "classifier, bisects towards its label boundary (ten more runs of the faster model, on 128 rows, "
                "after labelling 256 random rows: 1,536 rows in all, more than the check compares, so a model whose "
                "time grows with its rows (k-NN's ONNX graph) pays about a run of both again, and a "
                "sub-millisecond model pays the calls' fixed cost eleven times); neither the plan nor the pool "
                "depends on the seed, and both are kept for the pair's next checks. The original is timed on the "
                "random rows only when the converted model takes over 2 ms on them, and then on 8 of them first: "
                "when those take as long as the converted model on all 256, it is not run on them all.")
    return ("## Equivalence checker: cost per 1,000 samples\n\n"
            f"`portable.check(original, converted, samples={SAMPLES})` (the public function, as a user calls it: "
            "arguments checked, the check, its report recorded in the in-memory artifact, whose metadata JSON is "
            "written when the artifact is next read or saved) next to "
            "running the scikit-learn model and its ONNX conversion once each on the same rows the check compares "
            "(1,000 generated rows plus the label-boundary rows of seed 0), as a user would instead: the "
            "estimator's own methods for the outputs compared (`predict`, and `predict_proba` for a classifier) "
            "on the array or DataFrame, and the artifact's onnxruntime session on inputs already cast to the "
            "graph's dtypes; "
            "*run both through Model.run* is the same through portable's `Model.run`, as the check runs them "
            "(portable's input checks and output conversion; its extra time counts as the checker's). One "
            "BLAS/OpenMP thread for both. Times are CPU time of the calling thread (onnxruntime's worker threads, "
            "whose spinning, where a session allows it, would be charged to whatever runs next, are left out on both "
            "sides; portable's own sessions are made with `allow_spinning=0`), "
            f"the median over {MIN_ROUNDS} to {MAX_ROUNDS} interleaved rounds (a round: run "
            "both, then check); *check / run both* is the median of the rounds' ratios (bold: at or above the "
            "1.5x target of issue 13), *best check / best run both* the ratio of the fastest of each. *Checker's "
            "own* is a check's time minus the time of the two model runs inside that same check (generating "
            "inputs, comparing, building and recording the report), measured in one more check per round whose "
            "model runs are timed (the checks of the ratio are not instrumented). The input plan (ranges, tree splits and "
            "their boxes) and the pool of rows on the label boundary are learned by a pair's first check and "
            "kept for the next ones. *First check of a new artifact* is the check of a new in-memory artifact "
            "(a copy of the converted ONNX model, with no onnxruntime session yet: as after `convert(check=False)` "
            "or `load`), which learns the plan and the pool and makes the session, over what a user does instead "
            "the first time: an onnxruntime session made from the model's bytes and both models run once (the "
            f"median of {FIRST_ROUNDS} to {10 * FIRST_ROUNDS} interleaved pairs; the estimator's own hints are kept "
            "by the original `Model`); *first check, session kept* is a check that learns the plan and pool again "
            "with the artifact's session already made, over a warm run of both (the figure the previous runs gave "
            "as *first check of the pair*). A check keeps the rows it generated on the pair's plan "
            "(read only), so the warm check above (seed 0 each round) compares the models on them again instead "
            "of generating them again; *check with "
            "a new seed* is a check whose seed no check of the pair used (the median over as many rounds of its "
            "ratio to a run of both just before it), which generates its rows; *a new seed's rows* is the CPU time of "
            f"generating them alone (the median of {MIN_ROUNDS} seeds). *First check in a new process* is "
            "the CPU time of a new Python process that runs `portable.check(model.pkl, model.onnx)` (imports, both "
            "files loaded, the check), over that of a new process that imports scikit-learn and onnxruntime, "
            "`pickle.load`s the model, makes an onnxruntime session on the file and runs both once on the check's "
            f"rows (median of {PROCESS_ROUNDS} interleaved pairs of processes, one BLAS thread each). "
            "No check below fails, so no shrinking is timed. The "
            "machine was shared with "
            f"other sessions' work (load average {load_start} at the start and {load} at the end of the run, over "
            f"1 / 5 / 15 minutes, on "
            f"{os.cpu_count()} cores): CPU times are inflated by the sharing, ratios of interleaved rounds less "
            "so.\n\n" + verdict + "\n\n"
            + table(header, rows))


if __name__ == "__main__":
    print(run())
