"""Restricted loading versus plain `pickle.load` / `joblib.load` on a 300-tree random forest, the parts of the
loader's time, and the cost of running the original model in an isolated worker process."""
from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path

from benchmarks._util import best_of, peak_memory, table


def _forest():
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    return RandomForestClassifier(n_estimators=300, random_state=0, n_jobs=1).fit(X, y), X


def run() -> str:
    import joblib

    from portable.safety import audit, safe_load
    from portable.safety import loader
    from portable.safety.internals import validate_model
    from portable.safety.states import check_graph

    forest, X = _forest()
    root = Path(tempfile.mkdtemp(prefix="bench_pickle_"))
    files = {
        "pickle, protocol 4 (Python 3.11's default)": (
            root / "rf4.pkl", lambda p: p.write_bytes(pickle.dumps(forest, protocol=4)),
            lambda p: pickle.loads(p.read_bytes())),
        "pickle, protocol 5": (root / "rf.pkl", lambda p: p.write_bytes(pickle.dumps(forest, protocol=5)),
                               lambda p: pickle.loads(p.read_bytes())),
        "pickle, protocol 2": (root / "rf2.pkl", lambda p: p.write_bytes(pickle.dumps(forest, protocol=2)),
                               lambda p: pickle.loads(p.read_bytes())),
        "joblib": (root / "rf.joblib", lambda p: joblib.dump(forest, p), joblib.load),
        "joblib, zlib level 3": (root / "rfz.joblib", lambda p: joblib.dump(forest, p, compress=3), joblib.load),
    }
    rows = []
    for label, (path, write, plain) in files.items():
        write(path)
        safe_load(path)  # warm the allowlist cache and imports, as a second load in a session would be
        t_plain = best_of(lambda: plain(path), repeat=7)
        t_safe = best_of(lambda: safe_load(path), repeat=7)
        _, m_plain = peak_memory(lambda: plain(path))
        _, m_safe = peak_memory(lambda: safe_load(path))
        rows.append([label, f"{path.stat().st_size / 2**20:.1f} MiB", f"{t_plain * 1e3:.1f}",
                     f"{t_safe * 1e3:.1f}", f"**{t_safe / t_plain:.2f}x**", f"{m_safe / m_plain:.2f}x"])
    path = files["pickle, protocol 5"][0]
    data = path.read_bytes()
    obj = pickle.loads(data)
    t_plain = best_of(lambda: pickle.loads(data), repeat=7)
    parts = [
        ("dry run over stubs (the reconstructor table's checks)",
         best_of(lambda: loader._DryRun(io.BytesIO(data), ()).load(), repeat=7)),
        ("the real load (`pickle.loads`)", t_plain),
        ("walk for array-protocol attributes and callables", best_of(lambda: check_graph(obj), repeat=7)),
        ("fitted internals (300 trees, batched)", best_of(lambda: validate_model(obj), repeat=7)),
    ]
    breakdown = [[what, f"{t * 1e3:.2f}", f"{t / t_plain:.2f}x"] for what, t in parts]
    t_audit = best_of(lambda: audit(path), repeat=3)
    rows.append(["`portable audit` (static scan + the loader, protocol 5) vs pickle.load", "",
                 f"{t_plain * 1e3:.1f}", f"{t_audit * 1e3:.1f}", f"{t_audit / t_plain:.2f}x", ""])

    import portable

    model = portable.load(path)
    batch = {"X": X[:1000] if len(X) >= 1000 else X}
    import time

    t0 = time.perf_counter()
    model.run(batch)  # starts the worker, which loads the file
    t_start = time.perf_counter() - t0
    t_batch = best_of(lambda: model.run(batch), repeat=7)
    t_inproc = best_of(lambda: model._predict(batch), repeat=7)
    model.close()
    iso = [["first batch (starts the worker: interpreter, imports, validated load)", f"{t_start * 1e3:.0f}", ""],
           [f"one batch of {len(batch['X'])} rows in the worker", f"{t_batch * 1e3:.1f}",
            f"{t_batch / t_inproc:.2f}x"],
           [f"the same batch in-process (scikit-learn directly)", f"{t_inproc * 1e3:.1f}", "1.00x"]]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return ("## Safe pickle loading\n\n"
            "Time to load a 300-tree `RandomForestClassifier` with portable's restricted loader against the "
            "unrestricted loader, best of 7, same process (imports warm). Target: within 2x. For plain pickles the "
            "loader parses twice: a C-speed dry run in which every global is a stub and every REDUCE/NEWOBJ/BUILD "
            "is checked against the reconstructor table (argument types, dtype states against their type codes, "
            "array sizes), then the real load; then it walks the result (array-protocol attributes, callables kept "
            "as values) and validates the fitted internals (all trees' node arrays checked together). joblib's own "
            "loader is pure Python, so the checks inside its opcodes cost little in proportion. "
            f"The machine was shared with other jobs (load average {load:.1f} on {os.cpu_count()} cores at the "
            "end of the run), so absolute times are inflated and ratios noisy.\n\n"
            + table(["file", "size", "plain load (ms)", "portable (ms)", "time ratio", "peak memory ratio"], rows)
            + "\n\nWhere the time goes (protocol 5), against `pickle.loads` of the same bytes:\n\n"
            + table(["part", "ms", "vs pickle.loads"], breakdown)
            + "\n\nRunning the original model from a file in its isolated worker process (`portable.safety."
              "isolate`), as the checker does: the worker starts once per model, then each batch is one round "
              "trip (arrays as `.npy` frames):\n\n"
            + table(["what", "ms", "ratio"], iso))


if __name__ == "__main__":
    print(run())
