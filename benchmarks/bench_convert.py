"""Conversion and inference: portable against the tools a user would otherwise pick.

- Conversion: `portable.convert(..., check=False)` against raw `skl2onnx.to_onnx` on the same fitted model (time,
  and the peak of Python-level allocations during the call, which tracemalloc sees; protobuf's C++ buffers it
  does not). And the full `portable.convert` with its check, to show what the proof costs.
- Inference: latency of one row and throughput on 10,000 rows of each artifact (ONNX through onnxruntime, NNEF
  through portable's numpy executor) against the original scikit-learn model's own `predict_proba`/`predict`.
  One thread everywhere (onnxruntime intra/inter-op 1, BLAS limited through threadpoolctl when installed).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

import numpy as np

from ._util import best_of, peak_memory, table


def _models() -> list[tuple[str, Any, np.ndarray]]:
    from sklearn.datasets import make_classification, make_regression
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xc, yc = make_classification(2000, 20, n_informative=10, n_classes=3, random_state=0)
    Xr, yr = make_regression(2000, 20, noise=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            ("LogisticRegression", LogisticRegression(max_iter=2000).fit(Xc, yc), Xc),
            ("StandardScaler+PCA+LogisticRegression",
             make_pipeline(StandardScaler(), PCA(8), LogisticRegression(max_iter=2000)).fit(Xc, yc), Xc),
            ("MLPClassifier 20-64-3", MLPClassifier((64,), max_iter=200, random_state=0).fit(Xc, yc), Xc),
            ("RandomForestClassifier 100 trees, depth 8",
             RandomForestClassifier(100, max_depth=8, random_state=0, n_jobs=1).fit(Xc, yc), Xc),
            ("GradientBoostingRegressor 100 trees", GradientBoostingRegressor(random_state=0).fit(Xr, yr), Xr),
        ]


@contextlib.contextmanager
def _one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def _raw_skl2onnx(est: Any, X: np.ndarray) -> Any:
    from skl2onnx import to_onnx

    opts = {id(est): {"zipmap": False}} if hasattr(est, "predict_proba") else None
    if hasattr(est, "steps"):
        opts = {id(est.steps[-1][1]): {"zipmap": False}}
    return to_onnx(est, X[:1].astype(np.float32), options=opts, target_opset=21)


def _session(proto: Any) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run() -> str:
    import portable

    conv_rows, inf_rows = [], []
    rng = np.random.default_rng(0)
    with _one_thread():
        for name, est, X in _models():
            raw_t = best_of(lambda: _raw_skl2onnx(est, X), repeat=3)
            ours_t = best_of(lambda: portable.convert(est, to="onnx", check=False, dtype="float32"), repeat=3)
            checked_t = best_of(lambda: portable.convert(est, to="onnx", dtype="float32", samples=1000), repeat=2)
            _, raw_mem = peak_memory(lambda: _raw_skl2onnx(est, X))
            _, ours_mem = peak_memory(lambda: portable.convert(est, to="onnx", check=False, dtype="float32"))
            conv_rows.append([name, f"{raw_t * 1e3:.1f}", f"{ours_t * 1e3:.1f}", f"{ours_t / raw_t:.2f}x",
                              f"{checked_t / raw_t:.2f}x", f"{raw_mem / 2**20:.1f}", f"{ours_mem / 2**20:.1f}",
                              f"{ours_mem / max(raw_mem, 1):.2f}x"])

            art = portable.convert(est, to="onnx", check=False, dtype="float32")
            sess = _session(art.proto)
            nnef = portable.convert(est, to="nnef", check=False, dtype="float32")
            big = X[rng.integers(0, len(X), 10_000)]
            one = big[:1]
            predict = est.predict_proba if hasattr(est, "predict_proba") else est.predict
            for label, x, number in (("1 row", one, 200), ("10,000 rows", big, 3)):
                xf = x.astype(np.float32)
                sk = best_of(lambda: predict(x), repeat=5, number=number)
                ort_t = best_of(lambda: sess.run(None, {"X": xf}), repeat=5, number=number)
                nn = best_of(lambda: nnef.run({"X": xf}), repeat=5, number=number)
                inf_rows.append([name, label, f"{sk * 1e3:.3f}", f"{ort_t * 1e3:.3f}", f"{sk / ort_t:.2f}x",
                                 f"{nn * 1e3:.3f}", f"{sk / nn:.2f}x"])
    return "\n\n".join([
        "## Conversion: portable against raw skl2onnx",
        "Same fitted model, float32, best of 3. `portable` includes output renaming, provenance and `onnx.checker` "
        "(an onnxruntime load test only for float64); `with check` adds the equivalence check on 1,000 generated rows. Memory is "
        "the peak of Python-level allocations during the call (tracemalloc).",
        table(["model", "skl2onnx ms", "portable ms", "portable / skl2onnx", "with check / skl2onnx",
               "skl2onnx MiB", "portable MiB", "memory ratio"], conv_rows),
        "## Inference: artifacts against the original scikit-learn model",
        "One thread each. `speed-up` is scikit-learn's time divided by the artifact's (above 1: the artifact is "
        "faster). ONNX runs in onnxruntime; NNEF in portable's numpy executor.",
        table(["model", "batch", "scikit-learn ms", "ONNX ms", "ONNX speed-up", "NNEF ms", "NNEF speed-up"],
              inf_rows),
    ])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(run())
