"""Tree ensembles: converting a 300-tree forest, and how fast the result runs against scikit-learn.

Conversion is measured in fresh subprocesses (one for portable, one for skl2onnx 1.20 as shipped, since
portable replaces skl2onnx's tree converters in its own process): wall time and the growth of peak RSS over the
process after its imports and the unpickled model. Latency is one thread everywhere: onnxruntime with
intra/inter-op threads 1, scikit-learn with `n_jobs=1`.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._util import table

TREES, DEPTH, FEATURES, ROWS = 300, 12, 20, 10_000

_CONVERT = textwrap.dedent("""
    import json, pickle, resource, sys, time
    import numpy as np, onnx, onnxruntime, skl2onnx
    from skl2onnx.common.data_types import FloatTensorType
    import portable
    model = pickle.load(open(sys.argv[1], "rb"))
    which, out = sys.argv[2], sys.argv[3]

    def convert():
        if which == "portable":
            return portable.convert(model, to="onnx", check=False, dtype="float32").proto
        if which == "portable-converter":  # the converter's own work: no onnx.checker, no onnxruntime session
            from portable.converters.sklearn.bridge import installed
            from portable.converters.sklearn.outputs import finalize
            with installed():
                proto = skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 20]))],
                                                 options={id(model): {"zipmap": False}}, target_opset=21)
            finalize(proto)
            return proto
        return skl2onnx.convert_sklearn(model, initial_types=[("X", FloatTensorType([None, model.n_features_in_]))],
                                        options={id(model): {"zipmap": False}}, target_opset=21)

    def status(key):  # kB, from /proc/self/status
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])

    # ru_maxrss is inherited from the parent across fork/exec (a large benchmark parent hides the child's
    # peak); /proc/self/clear_refs "5" resets this process's own peak (VmHWM) to its current RSS instead
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS")
    # CPU time of this (single-threaded) process: what a load on the other cores disturbs least
    t0 = time.process_time(); proto = convert(); first = time.process_time() - t0
    grown = status("VmHWM") - before
    times = []
    for _ in range(1 if which == "skl2onnx" else 2):
        t0 = time.process_time(); proto = convert(); times.append(time.process_time() - t0)
    open(out, "wb").write(proto.SerializeToString())
    print(json.dumps({"first": first, "best": min(times), "rss_mb": grown / 1024, "bytes": proto.ByteSize()}))
""")


def _forest() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(12_000, FEATURES, n_informative=12, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rf = RandomForestClassifier(TREES, max_depth=DEPTH, random_state=0, n_jobs=2).fit(X, y)
    rf.n_jobs = 1
    rows = np.random.default_rng(1).normal(size=(ROWS, FEATURES)) * X.std(axis=0)
    return rf, rows


def _convert_in_subprocess(pkl: Path, which: str, out: Path) -> dict[str, float]:
    res = subprocess.run([sys.executable, "-c", _CONVERT, str(pkl), which, str(out)], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _session(path: Path, *, optimized: bool = True) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not optimized:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _formulation(path: Path) -> str:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return meta.get("portable.trees.formulation", "?")


def run() -> str:
    import portable

    load0 = os.getloadavg()[0]
    rf, rows = _forest()
    out_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pkl = Path(tmp) / "forest.pkl"
        pkl.write_bytes(pickle.dumps(rf))
        ours_path, theirs_path = Path(tmp) / "portable.onnx", Path(tmp) / "skl2onnx.onnx"
        ours = _convert_in_subprocess(pkl, "portable", ours_path)
        conv = _convert_in_subprocess(pkl, "portable-converter", Path(tmp) / "converter.onnx")
        theirs = _convert_in_subprocess(pkl, "skl2onnx", theirs_path)
        size = pkl.stat().st_size / 1e6
        for label, m in (("portable converter alone (skl2onnx + portable's tree converter)", conv),
                         ("portable.convert(check=False): + onnx.checker (and, for float64 only, an onnxruntime load test)", ours)):
            out_rows.append([f"convert, warm: {label}", f"{m['best']:.2f} s", f"{theirs['best']:.2f} s (skl2onnx)",
                             f"{m['best'] / theirs['best']:.2f}"])
            out_rows.append([f"convert, peak RSS growth: {label}", f"{m['rss_mb']:.0f} MB",
                             f"{theirs['rss_mb']:.0f} MB (skl2onnx)", f"{m['rss_mb'] / max(theirs['rss_mb'], 1):.2f}"])
        out_rows.append(["convert, first call in a process (imports included): portable.convert",
                         f"{ours['first']:.2f} s", f"{theirs['first']:.2f} s (skl2onnx)",
                         f"{ours['first'] / theirs['first']:.2f}"])
        f64_path = Path(tmp) / "portable64.onnx"
        portable.convert(rf, to="onnx", check=False, dtype="float64").save(f64_path)

        x32, x64 = rows.astype(np.float32), rows.astype(np.float64)
        formulations = {"float32": _formulation(ours_path), "float64": _formulation(f64_path)}
        sessions = {"portable, float32": (_session(ours_path), x32),
                    "portable, float64": (_session(f64_path), x64),
                    "portable, float32, graph optimizations off":
                        (_session(ours_path, optimized=False), x32),
                    "skl2onnx TreeEnsembleClassifier (ai.onnx.ml 3), float32": (_session(theirs_path), x32)}
        for n, batch, repeat in ((ROWS, slice(None), 5), (1, slice(0, 1), 200)):
            # round-robin, keeping each candidate's best: the machine's load changes between rounds
            best = {name: float("inf") for name in ["scikit-learn", *sessions]}
            for _ in range(repeat):
                best["scikit-learn"] = min(best["scikit-learn"], _cpu(lambda: rf.predict_proba(x64[batch])))
                for name, (sess, x) in sessions.items():
                    feed = {sess.get_inputs()[0].name: x[batch]}
                    best[name] = min(best[name], _cpu(lambda: sess.run(None, feed)))
            sk = best.pop("scikit-learn")
            for name, t in best.items():
                out_rows.append([f"{n:,} row{'s' if n > 1 else ''}: {name}", _ms(t), f"{_ms(sk)} (scikit-learn)",
                                 f"{t / sk:.3f}"])
        out_rows.append(["artifact size", f"{ours['bytes'] / 1e6:.1f} MB", f"{theirs['bytes'] / 1e6:.1f} MB",
                         f"{ours['bytes'] / theirs['bytes']:.2f}"])
    return ("## Tree ensembles\n\n"
            f"RandomForestClassifier, {TREES} trees of depth {DEPTH}, {FEATURES} features, binary, "
            f"{size:.0f} MB pickled: conversion by "
            "portable against skl2onnx 1.20 as shipped, each in a fresh process; prediction "
            "latency (predict_proba) in onnxruntime against scikit-learn, one thread each. Times are CPU time "
            "(the conversion process's, the calling thread's for prediction), best of the rounds. Ratio < 1: portable "
            "(or onnxruntime) is faster/smaller. portable's formulations (`portable.trees.formulation`): float32 "
            f"{formulations['float32']}; float64 {formulations['float64']}. Load average on the "
            f"{os.cpu_count()} cores: {load0:.1f} when this run started, {os.getloadavg()[0]:.1f} when it ended "
            "(the machine was shared with other sessions' work when the load is above 1; CPU time is what that "
            "disturbs least).\n\n"
            + table(["measurement", "portable / onnxruntime", "reference", "ratio"], out_rows) + "\n")


def _cpu(fn: Any) -> float:
    """Thread CPU time of one call, in seconds (one thread everywhere: every engine computes in this thread)."""
    import time

    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


if __name__ == "__main__":
    print(run())
