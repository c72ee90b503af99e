"""The cost of float64 sums in float32 linear heads over many inputs (issue 19, `linear_scores` /
`widen_linear_heads`): onnxruntime's time per call on 1 row and on 10,000 rows, and the artifact's size, of the
float32 artifact as portable now writes it (Cast to double, MatMul + Add in double, Cast back) against the same
conversion with the plain float32 MatMul / LinearClassifier (the converter's threshold `WIDE_DOT` raised for that
one conversion; for the dense models the float64 head, which portable writes only behind a text vectorizer, is
switched on for the other). Models: the two realistic tf-idf pipelines whose heads are wide (tests/pipelines.py) and dense
linear models of 384 and 2,048 columns, where the head is all the model computes (the worst case for the cost).
Both artifacts run in one process, interleaved, one thread each; each figure is the best of 7 rounds.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._util import table

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7


def _models() -> list[tuple[str, Any, Any, Any]]:
    """(name, fitted estimator, data for convert, feed builder(n) -> {input: array})."""
    sys.path.insert(0, str(ROOT))
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    from tests import pipelines

    out: list[tuple[str, Any, Any, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("text_tfidf_linear_svc", "text_tfidf_on_documents"):
            est, df, _ = pipelines.build(name)
            col = df.columns[0]
            docs = np.asarray([str(d) for d in df[col]], dtype=object)

            def feed(n: int, docs: np.ndarray = docs, col: str = col) -> dict[str, np.ndarray]:
                return {col: np.resize(docs, n).reshape(-1, 1)}
            out.append((f"pipeline: {name}", est, df, feed))
        rng = np.random.default_rng(0)
        for width in (384, 2048):
            X = rng.normal(size=(2000, width))
            y = (X[:, :10].sum(axis=1) > 0).astype(int)

            def feed(n: int, X: np.ndarray = X) -> dict[str, np.ndarray]:
                return {"X": np.resize(X.astype(np.float32), (n, X.shape[1]))}
            out.append((f"LinearSVC, {width} columns", LinearSVC(max_iter=2000).fit(X, y), None, feed))
            out.append((f"LogisticRegression, {width} columns", LogisticRegression(max_iter=2000).fit(X, y), None,
                        feed))
    return out


def _session(proto: Any) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _convert(est: Any, data: Any, wide: bool) -> Any:
    import portable
    from portable.converters.sklearn import common

    saved, reads = common.WIDE_DOT, common.reads_text
    if wide:
        common.reads_text = lambda est: True  # this conversion only: dense models too get the float64 head
    else:
        common.WIDE_DOT = 1 << 62  # this conversion only: the plain float32 head
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return portable.convert(est, to="onnx", dtype="float32", check=False, data=data)
    finally:
        common.WIDE_DOT, common.reads_text = saved, reads


def run() -> str:
    load = os.getloadavg()[0]
    rows = []
    for name, est, data, feed in _models():
        arts = {w: _convert(est, data, w) for w in (True, False)}
        sess = {w: _session(a.proto) for w, a in arts.items()}
        # the outputs' input name as the graph has it
        feeds = {}
        for n in (1, 10_000):
            f = feed(n)
            names = [i.name for i in sess[True].get_inputs()]
            feeds[n] = {k: v for k, v in zip(names, f.values())}
        best = {(w, n): float("inf") for w in (True, False) for n in feeds}
        for _ in range(ROUNDS):
            for n, f in feeds.items():
                reps = 200 if n == 1 else 3
                for w in (False, True):
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        sess[w].run(None, f)
                    best[(w, n)] = min(best[(w, n)], (time.perf_counter() - t0) / reps)
        size = {w: a.proto.ByteSize() for w, a in arts.items()}
        rows.append([name, f"{best[(False, 1)] * 1e6:.0f} us", f"{best[(True, 1)] * 1e6:.0f} us",
                     f"{best[(True, 1)] / best[(False, 1)]:.2f}x",
                     f"{best[(False, 10_000)] * 1e3:.1f} ms", f"{best[(True, 10_000)] * 1e3:.1f} ms",
                     f"{best[(True, 10_000)] / best[(False, 10_000)]:.2f}x",
                     f"{size[False]:,} B", f"{size[True]:,} B"])
        print(f"  {name}: {rows[-1]}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()[0]
    head = ("## Float64 sums in wide float32 linear heads (issue 19, bench_wide_dot)\n\n"
            "onnxruntime (1 thread) on the float32 artifact with the head's dot product in float64 (`wide`: "
            "Cast, MatMul + Add in double, Cast back; portable's default from 128 inputs) against the same "
            "conversion with a float32 head (`float32`), interleaved in one process, best of "
            f"{ROUNDS} rounds; load average {load:.1f} at the start, {load_after:.1f} at the end (2 shared "
            "cores: ratios are what counts). What the float64 head buys: the artifact's scores are scikit-learn's "
            "on the float32 inputs rounded once (a float32 sum of n terms errs by up to (n - 1) 2^-24 of the sum of "
            "|terms|, depending on onnxruntime's order), and a certificate can prove it (tests/test_wide_linear_heads"
            ".py, tests/test_certify_rounding.py). What it costs: on a text pipeline the vectorizer's string work "
            "dominates, and the head adds little; on a dense model, where the head is everything, onnxruntime's "
            "Cast of the [rows, columns] input to double (a copy of twice its size) costs more than the float32 "
            "product itself, so many-row batches of wide dense linear models run several times slower, one-row calls barely.\n\n")
    return head + table(["model", "1 row float32", "1 row wide", "ratio", "10,000 rows float32",
                         "10,000 rows wide", "ratio", "size float32", "size wide"], rows)
