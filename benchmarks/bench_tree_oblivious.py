"""CatBoost's symmetric (oblivious) trees: the ONNX formulations of the same trees, timed in onnxruntime with one
thread at 1, 10, 100 and 10,000 rows against CatBoost's own predict (one thread). This is the measurement behind
the form portable writes (`portable/converters/sklearn/boosting.py`, `_oblivious`; recorded in the artifact's
metadata `portable.trees.formulation`).

A tree of depth d tests the same d splits (feature f_j, border b_j) on every path, so its leaf is the index
`sum_j 2**j * (x[f_j] > b_j)` (CatBoost's own evaluation, on binarized features). Candidates:

- *chosen*: portable's artifact as it is: an `If` on the row count; small batches (fewer than ~1,200 / trees
  rows) take the trees as one tree operator, the others the standard-op form: the rows transposed once, then
  per level j one Gather of the split features of every tree (`[trees, rows]`), Greater than the borders, Cast
  to uint8, Mul by 2**j, Add; GatherElements of a `[trees, 2**d]` leaf table per target, ReduceSum over the
  trees;
- *standard operators at every batch size*: the same without the `If` (h18g's artifact);
- *Where / BitwiseOr*: the bits made by Where(2**j, 0) in uint8 and joined by BitwiseOr (this round's first
  choice);
- *TreeEnsemble*: the trees expanded into complete binary trees in one tree operator (the previous round's
  artifact: onnxruntime walks each row down each tree with a branch per level);
- *Cast / BitShift / BitwiseOr*: the bits made by Cast to uint8 and BitShift instead of Where;
- *int32 Where / Add*: the index in int32 (Where(2**j, 0), Add);
- *shared comparisons*: every distinct (feature, border) compared once (`[distinct, rows]`), each level's bits
  then gathered from those rows (CatBoost binarizes each feature once);
- *Gather of the leaf values*: a flat leaf table read by Gather with the index plus each tree's offset, instead
  of GatherElements;
- *all levels at once*: one Gather / Greater / Cast over `[trees x levels, rows]`, a batched MatMul by the
  powers of two.

The candidates other than the artifacts are built here from CatBoost's JSON export, without missing-value
handling (the rows have none), and checked against CatBoost's raw scores. Times are the best of interleaved
rounds in thread CPU time (onnxruntime with one intra-op thread and CatBoost with `thread_count=1` compute in
the calling thread; the machine is shared, and CPU time is what a load on the other core disturbs least).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from typing import Any

import numpy as np

from ._util import table
from .bench_tree_speed import FEATURES, _models
from .bench_tree_formulations import _session  # one onnxruntime thread


def _catboost_json(est: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        est.save_model(path, format="json")
        with open(path) as fh:
            return json.load(fh)


def _candidates(model: dict[str, Any]) -> dict[str, Any]:
    """The standard-op candidates (see the module docstring), as ONNX models of X [N, FEATURES] -> raw sums."""
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper

    trees = model["oblivious_trees"]
    depth = len(trees[0]["splits"])
    if any(len(t["splits"]) != depth for t in trees):
        return {}
    n = len(trees)
    dim = len(trees[0]["leaf_values"]) // 2 ** depth
    feat = np.array([[s["float_feature_index"] for s in t["splits"]] for t in trees], np.int64)
    border = np.array([[s["border"] for s in t["splits"]] for t in trees], np.float32)
    leaves = np.stack([np.asarray(t["leaf_values"], np.float32).reshape(2 ** depth, dim) for t in trees])
    pairs = sorted(set(zip(feat.ravel().tolist(), border.ravel().tolist())))
    pos = {p: i for i, p in enumerate(pairs)}
    shared = np.array([[pos[(f, b)] for f, b in zip(fr, br)] for fr, br in zip(feat.tolist(), border.tolist())])

    def build(combine: str = "muladd", distinct: bool = False, gather: str = "elements") -> Any:
        nodes = [helper.make_node("Transpose", ["X"], ["xt"], perm=[1, 0])]
        inits = {"axis0": np.array([0], np.int64), "z8": np.array(0, np.uint8), "z32": np.array(0, np.int32)}
        if distinct:
            inits["pf"] = np.array([p[0] for p in pairs], np.int64)
            inits["pb"] = np.array([p[1] for p in pairs], np.float32)[:, None]
            nodes += [helper.make_node("Gather", ["xt", "pf"], ["gd"], axis=0),
                      helper.make_node("Greater", ["gd", "pb"], ["bd"])]
        index = ""
        for j in range(depth):
            if distinct:
                inits[f"s{j}"] = shared[:, j].astype(np.int64)
                nodes.append(helper.make_node("Gather", ["bd", f"s{j}"], [f"b{j}"], axis=0))
            else:
                inits[f"f{j}"], inits[f"t{j}"] = feat[:, j], border[:, j:j + 1]
                nodes += [helper.make_node("Gather", ["xt", f"f{j}"], [f"g{j}"], axis=0),
                          helper.make_node("Greater", [f"g{j}", f"t{j}"], [f"b{j}"])]
            if combine == "muladd":
                nodes.append(helper.make_node("Cast", [f"b{j}"], [f"u{j}" if j else "i0"], to=TP.UINT8))
                if j:
                    inits[f"p{j}"] = np.array(2 ** j, np.uint8)
                    nodes += [helper.make_node("Mul", [f"u{j}", f"p{j}"], [f"w{j}"]),
                              helper.make_node("Add", [index, f"w{j}"], [f"i{j}"])]
            elif combine == "where8":
                if j == 0:
                    nodes.append(helper.make_node("Cast", ["b0"], ["i0"], to=TP.UINT8))
                else:
                    inits[f"p{j}"] = np.array(2 ** j, np.uint8)
                    nodes += [helper.make_node("Where", [f"b{j}", f"p{j}", "z8"], [f"w{j}"]),
                              helper.make_node("BitwiseOr", [index, f"w{j}"], [f"i{j}"])]
            elif combine == "shift":
                nodes.append(helper.make_node("Cast", [f"b{j}"], [f"u{j}"], to=TP.UINT8))
                if j == 0:
                    nodes.append(helper.make_node("Identity", ["u0"], ["i0"]))
                else:
                    inits[f"p{j}"] = np.array(j, np.uint8)
                    nodes += [helper.make_node("BitShift", [f"u{j}", f"p{j}"], [f"w{j}"], direction="LEFT"),
                              helper.make_node("BitwiseOr", [index, f"w{j}"], [f"i{j}"])]
            else:  # int32
                inits[f"p{j}"] = np.array(2 ** j, np.int32)
                nodes.append(helper.make_node("Where", [f"b{j}", f"p{j}", "z32"], [f"w{j}" if j else "i0"]))
                if j:
                    nodes.append(helper.make_node("Add", [index, f"w{j}"], [f"i{j}"]))
            index = f"i{j}"
        if combine != "int32":
            nodes.append(helper.make_node("Cast", [index], ["leaf"], to=TP.INT32))
            index = "leaf"
        sums = []
        for k in range(dim):
            if gather == "elements":
                inits[f"l{k}"] = leaves[:, :, k]
                nodes.append(helper.make_node("GatherElements", [f"l{k}", index], [f"v{k}"], axis=1))
            else:
                inits[f"l{k}"] = leaves[:, :, k].reshape(-1)
                inits["off"] = (np.arange(n) * 2 ** depth).astype(np.int32)[:, None]
                nodes += [helper.make_node("Add", [index, "off"], [f"o{k}"]),
                          helper.make_node("Gather", [f"l{k}", f"o{k}"], [f"v{k}"], axis=0)]
            nodes.append(helper.make_node("ReduceSum", [f"v{k}", "axis0"], [f"r{k}"], keepdims=1))
            sums.append(f"r{k}")
        nodes += [helper.make_node("Concat", sums, ["all"], axis=0),
                  helper.make_node("Transpose", ["all"], ["Y"], perm=[1, 0])]
        return _model(nodes, inits)

    def at_once() -> Any:
        inits = {"idx": feat.T.reshape(-1), "b": border.T.reshape(-1, 1), "shp": np.array([depth, n, -1], np.int64),
                 "pw": (2.0 ** np.arange(depth)).astype(np.float32).reshape(1, 1, depth),
                 "shp2": np.array([n, -1], np.int64), "axis0": np.array([0], np.int64)}
        nodes = [helper.make_node("Transpose", ["X"], ["xt"], perm=[1, 0]),
                 helper.make_node("Gather", ["xt", "idx"], ["g"], axis=0),
                 helper.make_node("Greater", ["g", "b"], ["bits"]),
                 helper.make_node("Cast", ["bits"], ["bf"], to=TP.FLOAT),
                 helper.make_node("Reshape", ["bf", "shp"], ["b3"]),
                 helper.make_node("Transpose", ["b3"], ["bt"], perm=[1, 0, 2]),  # [trees, levels, rows]
                 helper.make_node("MatMul", ["pw", "bt"], ["l3"]),
                 helper.make_node("Reshape", ["l3", "shp2"], ["lf"]),
                 helper.make_node("Cast", ["lf"], ["leaf"], to=TP.INT32)]
        sums = []
        for k in range(dim):
            inits[f"l{k}"] = leaves[:, :, k]
            nodes += [helper.make_node("GatherElements", [f"l{k}", "leaf"], [f"v{k}"], axis=1),
                      helper.make_node("ReduceSum", [f"v{k}", "axis0"], [f"r{k}"], keepdims=1)]
            sums.append(f"r{k}")
        nodes += [helper.make_node("Concat", sums, ["all"], axis=0),
                  helper.make_node("Transpose", ["all"], ["Y"], perm=[1, 0])]
        return _model(nodes, inits)

    def _model(nodes: list[Any], inits: dict[str, np.ndarray]) -> Any:
        g = helper.make_graph(nodes, "candidate", [helper.make_tensor_value_info("X", TP.FLOAT, [None, FEATURES])],
                              [helper.make_tensor_value_info("Y", TP.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
        m.ir_version = 8
        return m

    return {"Where / BitwiseOr (this round's first choice)": build("where8"), "Cast / BitShift / BitwiseOr": build("shift"), "int32 Where / Add": build("int32"),
            "shared comparisons": build(distinct=True), "Gather of the leaf values": build(gather="flat"),
            "all levels at once": at_once()}


def run() -> str:
    import portable
    from portable.converters.sklearn import boosting

    warnings.filterwarnings("ignore")
    load0 = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    rows_out = []
    for name, est in _models():
        if not type(est).__module__.startswith("catboost"):
            continue
        from sklearn.datasets import make_classification, make_regression

        if hasattr(est, "predict_proba"):
            data = make_classification(10_000, FEATURES, n_informative=12, n_classes=3, random_state=7)[0]
            native = lambda x: est.predict_proba(x, thread_count=1)  # noqa: E731
        else:
            data = make_regression(10_000, FEATURES, noise=5.0, random_state=7)[0]
            native = lambda x: est.predict(x, thread_count=1)  # noqa: E731
        data = data.astype(np.float32)
        raw = np.asarray(est.predict(data, prediction_type="RawFormulaVal"), np.float64).reshape(len(data), -1)
        model = _catboost_json(est)
        scale, bias = model.get("scale_and_bias", [1.0, [0.0]])
        chosen = portable.convert(est, to="onnx", dtype="float32", check=False)
        keep = boosting.OBLIVIOUS_FORM, boosting.SIZE_SWITCH
        boosting.OBLIVIOUS_FORM = False
        try:
            tree_form = portable.convert(est, to="onnx", dtype="float32", check=False)
            boosting.OBLIVIOUS_FORM, boosting.SIZE_SWITCH = True, False
            standard = portable.convert(est, to="onnx", dtype="float32", check=False)
        finally:
            boosting.OBLIVIOUS_FORM, boosting.SIZE_SWITCH = keep
        cands = {f"chosen: {chosen.metadata.get('portable.trees.formulation', '?')}": chosen.proto,
                 "standard operators at every batch size (h18g's artifact)": standard.proto,
                 f"TreeEnsemble: {tree_form.metadata.get('portable.trees.formulation', '?')} "
                 "(the artifact before h18g)": tree_form.proto}
        cands.update(_candidates(model))
        sessions, notes = {}, {}
        for label, proto in cands.items():
            try:
                sessions[label] = _session(proto)
            except Exception as exc:  # a candidate onnxruntime refuses is reported, not fatal
                rows_out.append([name, label, "fails", "", "", "", "", "", "", type(exc).__name__])
                continue
            if label.startswith(("chosen", "TreeEnsemble", "standard")):
                out = dict(zip([o.name for o in sessions[label].get_outputs()],
                               sessions[label].run(None, {"X": data})))
                got = out.get("probabilities", out.get("variable"))
                want = native(data)
            else:
                got = sessions[label].run(None, {"X": data})[0] * scale + np.asarray(bias)
                want = raw
            diff = float(np.max(np.abs(np.asarray(got, np.float64).reshape(len(data), -1) -
                                       np.asarray(want, np.float64).reshape(len(data), -1))))
            notes[label] = f"max |diff| vs CatBoost {diff:.1e}"
        times: dict[str, dict[int, float]] = {k: {} for k in [*sessions, "native"]}
        for rows in (1, 10, 100, 10_000):
            x = data[:rows]
            number, rounds = {1: (400, 7), 10: (100, 7), 100: (20, 5), 10_000: (1, 7)}[rows]
            best = {k: float("inf") for k in times}
            for _ in range(rounds):
                t0 = time.thread_time()
                for _ in range(number):
                    native(x)
                best["native"] = min(best["native"], (time.thread_time() - t0) / number * 1000)
                for k, s in sessions.items():
                    t0 = time.thread_time()
                    for _ in range(number):
                        s.run(None, {"X": x})
                    best[k] = min(best[k], (time.thread_time() - t0) / number * 1000)
            for k in times:
                times[k][rows] = best[k]
        chosen_label = next(iter(sessions))
        rows_out.append([name, "CatBoost's own predict (thread_count=1)", f"{times['native'][1] * 1000:.1f}",
                         f"{times['native'][1] / times[chosen_label][1]:.2f}x",
                         f"{times['native'][10] * 1000:.1f}", f"{times['native'][100]:.3f}",
                         f"{times['native'][10_000]:.2f}",
                         f"{times['native'][10_000] / times[chosen_label][10_000]:.2f}x", "", ""])
        for k in sessions:
            rows_out.append([name, k, f"{times[k][1] * 1000:.1f}", f"{times[chosen_label][1] / times[k][1]:.2f}x",
                             f"{times[k][10] * 1000:.1f}", f"{times[k][100]:.3f}", f"{times[k][10_000]:.2f}",
                             f"{times['native'][10_000] / times[k][10_000]:.2f}x",
                             f"{times[chosen_label][10_000] / times[k][10_000]:.2f}x", notes[k]])
    load1 = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    return ("## CatBoost's oblivious trees: formulations (bench_tree_oblivious)\n\n"
            "The same float32 trees in each candidate ONNX formulation (see the script), one onnxruntime thread, "
            "against CatBoost's predict / predict_proba with `thread_count=1`, best of interleaved rounds in "
            f"thread CPU time. Load average on the 2 cores: {load0} when this run started, {load1} when it "
            "ended. *CatBoost / candidate* below 1: slower than CatBoost; *chosen / candidate* below 1: the "
            "candidate is slower than what portable chose (in CatBoost's row of the 1-row column: CatBoost / "
            "chosen, the issue's 10x target).\n\n"
            + table(["model", "formulation", "1 row, us", "chosen / candidate", "10 rows, us", "100 rows, ms",
                     "10,000 rows, ms", "CatBoost / candidate", "chosen / candidate", "note"], rows_out))
