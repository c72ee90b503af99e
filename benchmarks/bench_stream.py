"""The chunked check over Parquet against loading the whole dataset with pandas, and the check on Dask.

Every side runs in a fresh Python process, so that its peak resident memory (VmHWM from /proc/self/status) is
its own: portable's streaming check (`portable.check(pkl, onnx, data=folder)`), the pandas way a user would do it
without portable (`pd.read_parquet(folder)`, `predict` with scikit-learn, the ONNX model with onnxruntime,
compare), and the check on a LocalCluster of 1 and 2 worker processes (for Dask the driver's peak is given, and
the largest worker's). The dataset grows 10x to show that the streaming check's memory does not.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks._util import table

FILE_ROWS = 100_000
SIZES = (5, 50)  # files of FILE_ROWS rows: 500,000 and 5,000,000 rows
FEATURES = 8

SIDE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    kind, pkl, onnx_path, data, workers = sys.argv[1:6]

    def hwm():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
        return 0

    started = time.perf_counter()
    worker_peak = None
    if kind == "pandas":
        import pickle
        import numpy as np, pandas as pd, onnxruntime as ort
        est = pickle.loads(Path(pkl).read_bytes())
        frame = pd.read_parquet(data)
        X = frame.to_numpy(dtype=np.float32)
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        a = est.predict(X.astype(np.float64))
        b = sess.run(None, {sess.get_inputs()[0].name: X})[0].reshape(len(X))
        bad = int((np.abs(a - b) > 1e-4 * max(1.0, float(np.percentile(np.abs(a), 90))) + 1e-5 * np.abs(a)).sum())
        rows, verdict = len(X), bad == 0
    else:
        import portable
        if kind == "stream":
            rep = portable.check(pkl, onnx_path, data=data)
        else:
            from distributed import Client, LocalCluster
            with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster, Client(cluster) as client:
                started = time.perf_counter()  # the cluster's start-up is not the check's
                rep = portable.check(pkl, onnx_path, data=data, dask=client)
                peaks = client.run(hwm)
                worker_peak = max(peaks.values())
        rows, verdict = rep.data["rows_checked"], rep.equivalent
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak": hwm(), "worker_peak": worker_peak,
                      "equivalent": verdict}))
""")


def _side(kind: str, pkl: Path, onnx_path: Path, data: Path, workers: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", SIDE, kind, str(pkl), str(onnx_path), str(data), str(workers)],
                         capture_output=True, text=True, timeout=1800, cwd=str(Path(__file__).resolve().parents[1]))
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _data(root: Path, files: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / f"data-{files}"
    folder.mkdir()
    rng = np.random.default_rng(files)
    for i in range(files):
        X = rng.normal(size=(FILE_ROWS, FEATURES))
        pq.write_table(pa.table({f"x{j}": X[:, j] for j in range(FEATURES)}), folder / f"part-{i:03d}.parquet")
    return folder


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def run() -> str:
    import numpy as np
    from sklearn.ensemble import GradientBoostingRegressor

    import portable

    load_before = _load()
    root = Path(tempfile.mkdtemp(prefix="bench_stream_"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, FEATURES))
    est = GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=0).fit(X, X[:, 0] * 3 + X[:, 1] ** 2)
    pkl = root / "model.pkl"
    pkl.write_bytes(pickle.dumps(est))
    onnx_path = root / "model.onnx"
    portable.convert(str(pkl), to="onnx").save(onnx_path)
    rows = []
    results = {}
    for files in SIZES:
        data = _data(root, files)
        sides = [("portable streaming check", "stream", 0), ("pandas: read whole, run both, compare", "pandas", 0)]
        if files == SIZES[-1]:
            sides += [("portable check on Dask, 1 worker", "dask", 1), ("portable check on Dask, 2 workers", "dask", 2)]
        for label, kind, workers in sides:
            r = _side(kind, pkl, onnx_path, data, workers)
            results[(files, kind, workers)] = r
            rows.append([f"{files * FILE_ROWS:,}", label, f"{r['rows'] / r['seconds']:,.0f}", f"{r['seconds']:.1f}",
                         f"{r['peak'] / 2**20:,.0f}" + (f" (worker {r['worker_peak'] / 2**20:,.0f})"
                                                        if r.get("worker_peak") else ""),
                         "yes" if r["equivalent"] else "no"])
        for f in data.iterdir():
            f.unlink()
        data.rmdir()
    small, large = SIZES
    s0, s1 = results[(small, "stream", 0)], results[(large, "stream", 0)]
    p1 = results[(large, "pandas", 0)]
    d1, d2 = results[(large, "dask", 1)], results[(large, "dask", 2)]
    ratios = [
        ["streaming peak memory, 10x the rows", f"**{s1['peak'] / s0['peak']:.2f}x**"],
        ["pandas peak memory, 10x the rows",
         f"{results[(large, 'pandas', 0)]['peak'] / results[(small, 'pandas', 0)]['peak']:.2f}x"],
        [f"streaming vs pandas peak memory ({large * FILE_ROWS:,} rows)", f"**{s1['peak'] / p1['peak']:.2f}x**"],
        [f"streaming vs pandas rows/s ({large * FILE_ROWS:,} rows)",
         f"{(s1['rows'] / s1['seconds']) / (p1['rows'] / p1['seconds']):.2f}x"],
        ["Dask 2 workers vs 1 worker rows/s", f"{(d2['rows'] / d2['seconds']) / (d1['rows'] / d1['seconds']):.2f}x"],
    ]
    return ("## Streaming check over Parquet, and on Dask\n\n"
            f"A 50-tree `GradientBoostingRegressor` ({FEATURES} features) and its float32 ONNX conversion, checked on "
            f"every row of a Parquet folder ({FILE_ROWS:,} rows per file). Each line is a fresh process; peak "
            "memory is its VmHWM (for Dask: the driver, and the largest worker process). The pandas line is what a "
            "user would write without portable: `pd.read_parquet(folder)`, `est.predict`, onnxruntime, compare "
            "(no generated rows, no report). The portable lines include loading the models, the generated-row "
            "check (1,000 rows plus a 2,000-row sample of the data) and the report; Dask lines exclude the "
            "cluster's start-up. Default `chunk_rows` (100,000). "
            f"Load average (1 min) on the machine: {load_before} at the start of this run, {_load()} at its end "
            "(the 2 cores were shared with other work: absolute rates are depressed, and 2 Dask workers cannot "
            "beat 1 when the cores are already busy).\n\n"
            + table(["rows", "side", "rows/s", "seconds", "peak MiB", "equivalent"], rows) + "\n\n"
            + table(["ratio", "value"], ratios))


if __name__ == "__main__":
    print(run())
