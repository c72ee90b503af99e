"""Realistic pipelines (`tests/pipelines.py`): portable against skl2onnx, each side in a fresh process.

For every pipeline of the table: conversion time and artifact size, and whether the artifact computes what
scikit-learn computes on held-out rows (labels or values, through onnxruntime). skl2onnx is called the way a user
calls it on a DataFrame (`skl2onnx.to_onnx(pipe, X=frame)`, ZipMap off); portable with
`portable.convert(pipe, to="onnx", data=frame, check=False)` (the check is timed in bench_check). The ratio is
over the pipelines both convert correctly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ._util import table

ROOT = Path(__file__).resolve().parent.parent

_SIDE = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    sys.path.insert(0, sys.argv[2])
    import numpy as np
    import onnxruntime as ort
    from tests.pipelines import NAMES, build
    from tests.test_pipelines import expected, feed
    side = sys.argv[1]
    if side == "portable":
        import portable
        def convert(pipe, train):
            return portable.convert(pipe, to="onnx", data=train, check=False, dtype="float32").proto
    else:
        import skl2onnx
        from sklearn.base import is_classifier
        def convert(pipe, train):
            opts = {id(pipe): {"zipmap": False}} if is_classifier(pipe) else None
            return skl2onnx.to_onnx(pipe, X=train.head(1), options=opts, target_opset=21)
    built = {n: build(n) for n in NAMES}
    try:  # warm-up: imports and first-call costs are not the pipeline's
        convert(*built[NAMES[0]][:2])
    except Exception:
        pass
    for name in NAMES:
        pipe, train, held = built[name]
        row = {"name": name, "converts": False, "correct": False, "seconds": None, "bytes": None, "error": ""}
        try:
            t0 = time.perf_counter()
            proto = convert(pipe, train)
            row["seconds"] = time.perf_counter() - t0
            data = proto.SerializeToString()
            row["bytes"] = len(data)
            row["converts"] = True
            sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            outs = sess.run(None, feed(sess, held))
            ref = expected(pipe, held)["label_or_value"]
            got = np.asarray(outs[0])
            if got.dtype.kind in "OUSib":
                row["correct"] = bool((got.ravel().astype(str) == ref.ravel().astype(str)).all())
            else:
                row["correct"] = bool(np.allclose(got.astype(float).ravel(), ref.astype(float).ravel(),
                                                  rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max()))))
        except Exception as exc:
            row["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        print(json.dumps(row), flush=True)
""")


def _side(side: str) -> dict[str, dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _SIDE, side, str(ROOT)], capture_output=True, text=True,
                         timeout=1800, env=env, cwd=ROOT)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {r["name"]: r for r in rows}


def run() -> str:
    ours, theirs = _side("portable"), _side("skl2onnx")
    names = list(ours)
    both = [n for n in names if ours[n]["correct"] and theirs.get(n, {}).get("correct")]
    rows = []
    for n in names:
        o, t = ours[n], theirs.get(n, {})

        def cell(r: dict) -> str:
            if not r.get("converts"):
                return "fails"
            return f"{r['seconds'] * 1000:.0f} ms, {r['bytes'] / 1024:.0f} KiB" + ("" if r["correct"] else ", WRONG")
        rows.append([n, cell(o), cell(t)])
    t_ratio = sum(ours[n]["seconds"] for n in both) / max(1e-9, sum(theirs[n]["seconds"] for n in both))
    s_ratio = sum(ours[n]["bytes"] for n in both) / max(1, sum(theirs[n]["bytes"] for n in both))
    n_ours = sum(r["correct"] for r in ours.values())
    n_theirs = sum(r.get("correct", False) for r in theirs.values())
    return ("## Realistic pipelines: portable vs skl2onnx (bench_pipelines)\n\n"
            f"{len(names)} pipelines of `tests/pipelines.py` (DataFrames with missing values and unseen "
            "categories, text, boosting libraries), float32, one fresh process per side, one thread. "
            "\"correct\" = onnxruntime gives scikit-learn's labels/values on the held-out rows.\n\n"
            f"- converts correctly: **portable {n_ours}/{len(names)}**, skl2onnx {n_theirs}/{len(names)}\n"
            f"- over the {len(both)} pipelines both convert correctly: conversion time portable/skl2onnx = "
            f"**{t_ratio:.2f}x**, artifact size portable/skl2onnx = **{s_ratio:.2f}x**\n\n"
            + table(["pipeline", "portable", "skl2onnx"], rows))
