"""Tree-ensemble inference: scikit-learn (or the boosting library) against portable's ONNX, skl2onnx's or
onnxmltools' ONNX, and portable's NNEF executor, at 1, 100 and 10,000 rows, with one thread and with all threads.
`PORTABLE_BENCH_TREE_MODELS` (comma-separated parts of model names) runs only those models (also in
bench_tree_formulations).

The reference converters run in a fresh subprocess (portable's tree converters must not be in the process that
runs skl2onnx); every artifact is then timed in this process, engines interleaved round by round so that a
load on the machine hits all of them alike. onnxruntime sessions get `intra_op_num_threads`; scikit-learn's
forests `n_jobs`; OpenMP libraries (HistGradientBoosting, XGBoost, LightGBM) are limited with threadpoolctl and
their own `n_jobs`.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._util import table

FEATURES = 20
BATCHES = (1, 100, 10_000)

_REFERENCE = textwrap.dedent("""
    import pickle, sys, warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    model = pickle.load(open(sys.argv[1], "rb"))
    kind = type(model).__module__.split(".")[0]
    if kind == "catboost":  # CatBoost writes ONNX itself (what its users pick)
        model.save_model(sys.argv[2], format="onnx")
        sys.exit(0)
    if kind in ("xgboost", "lightgbm"):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        conv = onnxmltools.convert_xgboost if kind == "xgboost" else onnxmltools.convert_lightgbm
        proto = conv(model, initial_types=[("X", FloatTensorType([None, %d]))], target_opset=15,
                     **({"zipmap": False} if kind == "lightgbm" else {}))
    else:
        import skl2onnx
        from skl2onnx.common.data_types import FloatTensorType
        opts = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
        proto = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, %d]))], options=opts,
                                         target_opset={"": 17, "ai.onnx.ml": 3})
    open(sys.argv[2], "wb").write(proto.SerializeToString())
""" % (FEATURES, FEATURES))


def _models() -> list[tuple[str, Any]]:
    from sklearn.datasets import make_classification, make_regression
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                                  HistGradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor)

    def cls(n: int, rows: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
        return make_classification(rows, FEATURES, n_informative=12, n_classes=n, random_state=n)

    Xr, yr = make_regression(20_000, FEATURES, noise=5.0, random_state=0)
    out = []
    for n in (2, 3, 10):
        out.append((f"RandomForestClassifier, {n} classes, 100 trees, depth 8",
                    RandomForestClassifier(100, max_depth=8, random_state=0).fit(*cls(n))))
    out.append(("RandomForestRegressor, 100 trees, depth 8", RandomForestRegressor(100, max_depth=8, random_state=0).fit(Xr, yr)))
    out.append(("GradientBoostingRegressor, 100 trees, depth 3", GradientBoostingRegressor(random_state=0).fit(Xr, yr)))
    out.append(("GradientBoostingClassifier, 3 classes, 50 stages", GradientBoostingClassifier(n_estimators=50, random_state=0).fit(*cls(3, 4000))))
    out.append(("HistGradientBoostingClassifier, 3 classes, 100 iterations",
                HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(*cls(3))))
    try:
        import xgboost

        out.append(("XGBClassifier, 3 classes, 100 trees, depth 6",
                    xgboost.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=1).fit(*cls(3))))
    except ImportError:
        pass
    try:
        import lightgbm

        out.append(("LGBMClassifier, 3 classes, 100 trees", lightgbm.LGBMClassifier(n_estimators=100, verbose=-1, n_jobs=1).fit(*cls(3))))
    except ImportError:
        pass
    try:
        import catboost

        out.append(("CatBoostClassifier, 3 classes, 100 trees, depth 6",
                    catboost.CatBoostClassifier(iterations=100, depth=6, verbose=0, thread_count=1,
                                                allow_writing_files=False, random_seed=0).fit(*cls(3))))
        out.append(("CatBoostRegressor, 300 trees, depth 6",
                    catboost.CatBoostRegressor(iterations=300, depth=6, verbose=0, thread_count=1,
                                               allow_writing_files=False, random_seed=0).fit(Xr, yr)))
    except ImportError:
        pass
    only = [w.strip() for w in os.environ.get("PORTABLE_BENCH_TREE_MODELS", "").split(",") if w.strip()]
    if only:  # e.g. PORTABLE_BENCH_TREE_MODELS=XGB,RandomForestRegressor: the models whose name contains one
        out = [(name, est) for name, est in out if any(w in name for w in only)]
    return out


def _split_nodes_onnx(proto: Any) -> int:
    """Split nodes of the artifact's tree operators; CatBoost's symmetric trees written with standard operators
    (`boosting._oblivious`, which stores d borders per tree) counted as their binary expansion, as read
    (`onnx_trees.without_oblivious`), like the original's; where an `If` on the row count holds the same trees
    twice (`boosting.SIZE_SWITCH`), the branch a row goes through, once (`onnx_trees.without_size_switch`)."""
    from onnx import helper

    from portable.formats.onnx_trees import without_oblivious

    total = 0
    for node in without_oblivious(proto.graph).node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "TreeEnsemble":
            total += len(attrs["nodes_featureids"])
        elif node.op_type in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"):
            total += sum(m != b"LEAF" for m in attrs["nodes_modes"])
    return total


def _split_nodes_native(est: Any) -> int | None:
    if hasattr(est, "estimators_"):
        return sum(int((t.tree_.children_left >= 0).sum()) for t in np.ravel(est.estimators_))
    if hasattr(est, "_predictors"):
        return sum(int((~p.nodes["is_leaf"].astype(bool)).sum()) for s in est._predictors for p in s)
    try:
        df = est.get_booster().trees_to_dataframe()  # xgboost
        return int((df.Feature != "Leaf").sum())
    except AttributeError:
        pass
    try:
        df = est.booster_.trees_to_dataframe()  # lightgbm
        return int(df.split_feature.notna().sum())
    except AttributeError:
        pass
    if type(est).__module__.startswith("catboost"):  # oblivious trees: depth d is 2^d - 1 binary splits
        return int(sum(2 ** len(t) - 1 for t in _catboost_depths(est)))
    return None


def _catboost_depths(est: Any) -> list[list[int]]:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        est.save_model(str(Path(tmp, "m.json")), format="json")
        model = json.loads(Path(tmp, "m.json").read_text())
    return [t["splits"] for t in model.get("oblivious_trees", [])]


def _set_threads(est: Any, n: int) -> None:
    if "n_jobs" in est.get_params():
        est.set_params(n_jobs=n)


def _predict(est: Any, threads: int) -> Any:
    """The model's own predict_proba/predict with `threads` threads (CatBoost takes them per call: its default,
    -1, is every core)."""
    fn = est.predict_proba if hasattr(est, "predict_proba") else est.predict
    if type(est).__module__.startswith("catboost"):
        return lambda x: fn(x, thread_count=threads)
    return fn


def _session(proto_bytes: bytes, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(proto_bytes, so, providers=["CPUExecutionProvider"])


def _best(fns: dict[str, Any], rows: int) -> tuple[dict[str, float], dict[str, float]]:
    """Interleaved rounds; the best wall-clock time and the best thread CPU time per engine, in ms (with one
    thread every engine computes in the calling thread, so its CPU time is the work a load on the other
    cores disturbs least)."""
    number = 200 if rows == 1 else (10 if rows == 100 else 1)
    rounds = 7 if rows < 10_000 else 5
    best = {k: float("inf") for k in fns}
    cpu = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(number):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / number * 1000)
            cpu[k] = min(cpu[k], (time.thread_time() - c0) / number * 1000)
    return best, cpu


def run() -> str:
    import portable
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore")
    load0 = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    data = rng.normal(size=(10_000, FEATURES)).astype(np.float32) * 1.5
    rows_out, size_rows = [], []
    all_threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        for name, est in _models():
            pkl, ref_path = Path(tmp, "m.pkl"), Path(tmp, "ref.onnx")
            pkl.write_bytes(pickle.dumps(est))
            proc = subprocess.run([sys.executable, "-c", _REFERENCE, str(pkl), str(ref_path)], capture_output=True,
                                  text=True, timeout=900)
            ref_bytes = ref_path.read_bytes() if proc.returncode == 0 else None
            art = portable.convert(est, to="onnx", dtype="float32", check=False)
            ours = art.proto.SerializeToString()
            art64 = portable.convert(est, to="onnx", dtype="float64", check=False)
            ours64 = art64.proto.SerializeToString()
            try:
                nnef = portable.convert(est, to="nnef", dtype="float32", check=False)
            except portable.PortableError:
                nnef = None
            import onnx

            for dt, a, b in (("float32", art, ours), ("float64", art64, ours64)):
                size_rows.append([name, dt, _split_nodes_native(est) or "?", _split_nodes_onnx(a.proto),
                                  _split_nodes_onnx(onnx.load_from_string(ref_bytes)) if ref_bytes else "fails",
                                  f"{len(b) / 2**20:.2f}", f"{len(ref_bytes) / 2**20:.2f}" if ref_bytes else "fails",
                                  a.metadata.get("portable.trees.formulation", "?")])
            # float64 (exact) artifacts: one thread only (the float32 rows give the thread scaling)
            for dtype, threads in (("float32", 1), ("float32", all_threads), ("float64", 1)):
                _set_threads(est, threads)
                s_ours = _session(ours if dtype == "float32" else ours64, threads)
                s_ref = _session(ref_bytes, threads) if ref_bytes else None
                for rows in BATCHES:
                    x = data[:rows]
                    xo = x.astype(dtype)
                    native = _predict(est, threads)
                    fns = {"native": lambda: native(x), "portable": lambda: s_ours.run(None, {"X": xo})}
                    if s_ref is not None:  # the reference artifacts are float32 (skl2onnx / onnxmltools have no
                        # exact float64 form): fed float32 rows
                        fns["reference"] = lambda: s_ref.run(None, {s_ref.get_inputs()[0].name: x})
                    if nnef is not None and threads == 1 and dtype == "float32":
                        fns["nnef"] = lambda: nnef.run({"X": x})
                    with threadpool_limits(threads):
                        t, c = _best(fns, rows)
                    one = threads == 1
                    rows_out.append([
                        name, dtype, threads, f"{rows:,}", f"{t['native']:.3f}", f"{t['portable']:.3f}",
                        f"**{t['native'] / t['portable']:.2f}x**",
                        f"{c['native'] / c['portable']:.2f}x" if one else "",
                        f"{t['reference']:.3f}" if "reference" in t else "fails",
                        f"{t['reference'] / t['portable']:.2f}x" if "reference" in t else "",
                        f"{c['reference'] / c['portable']:.2f}x" if one and "reference" in t else "",
                        f"{t['nnef']:.3f}" if "nnef" in t else
                        ("" if threads > 1 or dtype != "float32" else "refused"),
                    ])
    return ("## Tree ensembles: inference speed by formulation\n\n"
            "portable's ONNX in onnxruntime (float32, and exact float64 with one thread: *dtype*) against the "
            "model's own predict (`predict_proba` for classifiers), skl2onnx 1.20's float32 artifact (onnxmltools "
            "for XGBoost/LightGBM; ai.onnx.ml 3, ZipMap off; fed float32 rows in the float64 rows too) "
            "and portable's NNEF executor (one thread only), at 1, 100 and 10,000 rows. *native / portable* above "
            "1: portable's artifact is faster than the original; *reference / portable* above 1: faster than the "
            "other converter's. Best of interleaved rounds; ratios come from the same rounds. With one thread the "
            "ratios are also given in thread CPU time (*same, CPU time*): every engine then computes in the "
            "calling thread, and CPU time is what a shared, loaded machine disturbs least. "
            f"Load average on the 2 cores: {load0:.1f} when this run started, {os.getloadavg()[0]:.1f} when it ended"
            " (the machine was shared with other sessions' tests and benchmarks: read the one-thread CPU-time "
            "ratios; the wall-clock columns, above all with 2 threads, are disturbed).\n\n"
            + table(["model", "dtype", "threads", "rows", "native ms", "portable ONNX ms", "native / portable",
                     "same, CPU time", "skl2onnx/onnxmltools ms", "reference / portable", "same, CPU time",
                     "portable NNEF ms"], rows_out)
            + "\n\nSplit nodes and artifact sizes. The formulation is what portable chose and recorded in "
              "`portable.trees.formulation`.\n\n"
            + table(["model", "dtype", "split nodes, original", "split nodes, portable", "split nodes, reference",
                     "portable MiB", "reference MiB", "portable formulation"], size_rows))
