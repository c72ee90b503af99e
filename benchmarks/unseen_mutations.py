"""Mutations the mutation benchmark (`bench_mutation.py`) does not inject, tried on the checker (issue 13's
independent verification): for the sample table, the realistic pipelines and a few extra models (Normalizer,
Binarizer, TruncatedSVD, SimpleImputer, a two-layer MLP, trees fitted on missing values), seeded single mutations
of the converted ONNX artifact of other kinds:

scaler_scale / scaler_offset, imputer_fill, normalizer_norm, binarizer_threshold, binarizer_op, pca_mean,
labelencoder_value / labelencoder_default / vocabulary (a LabelEncoder key renamed), onehot_drop / onehot_zeros,
idf (a Mul weight after a text encoder), argmax_last (select_last_index), clip (a Min/Max bound), leaky_relu,
softmax_axis, post_transform, tree_missing (missing_value_tracks_true flipped), tree_mode (LEQ<->LT on one
node), tree_feature, svm_vector / svm_gamma, hidden_weight, cast_narrow (a float16/float32 round trip on the
input), knn_k, column_swap (two inputs of a Concat swapped).

A mutation is real when some row of an independent set (training rows, 20,000 uniform rows over 1.5x the
training box, missing values per column, unknown categories, rows reaching a mutated tree node with its feature
at the threshold or missing, rows on a moved Binarizer threshold) differs outside the checker's tolerance
(`benchmarks.mutations.real`: where the unmutated artifact agrees). Each real one is checked with
`portable.check(samples=1000)` for seeds 0-2.

    python -m benchmarks.unseen_mutations [name-prefix ...]   (PORTABLE_UNSEEN_PIPELINES=0: sample table only)
"""
from __future__ import annotations

import copy
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .mutations import _attr, _consumers, _tree_arrays, feeds, numeric, proven, real

SEEDS = (0, 1, 2)
UNKNOWN = "__unknown__"


# ---- the models -----------------------------------------------------------------------------------------------

def extra_models() -> list[tuple[str, Any]]:
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.decomposition import TruncatedSVD
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, MinMaxScaler, Normalizer
    from sklearn.tree import DecisionTreeRegressor

    def b(make: Any, data: str) -> Any:
        def build() -> tuple:
            if data == "iris":
                X, y = load_iris(return_X_y=True)
            elif data == "diabetes":
                X, y = load_diabetes(return_X_y=True)
            else:  # iris with 10% missing values, a regression target
                X, _ = load_iris(return_X_y=True)
                X = X.copy()
                X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
                y = load_diabetes(return_X_y=True)[1][:150] if data == "nan_reg" else load_iris(return_X_y=True)[1]
            return make().fit(X, y), X, None
        return build

    return [
        ("x_normalizer_logreg", b(lambda: make_pipeline(Normalizer(), LogisticRegression(max_iter=1000)), "iris")),
        ("x_binarizer_logreg", b(lambda: make_pipeline(Binarizer(threshold=3.0), LogisticRegression(max_iter=1000)),
                                 "iris")),
        ("x_svd_ridge", b(lambda: make_pipeline(TruncatedSVD(2, random_state=0), Ridge()), "diabetes")),
        ("x_imputer_logreg", b(lambda: make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000)), "nan_cls")),
        ("x_mlp2", b(lambda: MLPClassifier((16, 8), max_iter=500, random_state=0), "iris")),
        ("x_tree_nan", b(lambda: DecisionTreeRegressor(max_depth=8, random_state=0), "nan_reg")),
        ("x_hgb_nan", b(lambda: HistGradientBoostingRegressor(max_iter=20), "nan_reg")),
        ("x_minmax_logreg", b(lambda: make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)), "iris")),
    ]


def all_builders(prefixes: list[str]) -> list[tuple[str, Any]]:
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.sample_models import SAMPLE_MODELS

    builders = list(SAMPLE_MODELS) + extra_models()
    if os.environ.get("PORTABLE_UNSEEN_PIPELINES", "1") != "0":
        from tests.pipelines import PIPELINES

        builders += [(f"pipeline:{n}", (lambda b=b: (lambda r: (r[0], r[1], r[1]))(b()))) for n, b in PIPELINES]
    return [(n, b) for n, b in builders if not prefixes or any(n.startswith(p) or n.startswith("pipeline:" + p)
                                                               for p in prefixes)]


# ---- mutations ------------------------------------------------------------------------------------------------

def _get(a: Any) -> Any:
    from onnx import helper

    return helper.get_attribute_value(a)


def _set(node: Any, name: str, value: Any) -> None:
    from onnx import helper

    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _init(g: Any, name: str) -> Any:
    return next((i for i in g.initializer if i.name == name), None)


def _init_arr(init: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(init).copy()


def _put(init: Any, arr: np.ndarray) -> None:
    from onnx import numpy_helper

    init.CopyFrom(numpy_helper.from_array(arr, init.name))


def _rel(v: float, r: float = 1e-3) -> float:
    return v * (1 + r) if v != 0 else r


def _steps(x: float, n: int, dtype: Any = np.float32) -> float:
    y = dtype(x)
    for _ in range(abs(n)):
        y = np.nextafter(y, dtype(np.inf if n > 0 else -np.inf))
    return float(y)


def _change_one(init: Any, rng: np.random.Generator, change: Any) -> tuple[float, float]:
    """One seeded entry of initializer `init` replaced by `change(value)`; returns (old, new)."""
    arr = _init_arr(init)
    flat = arr.reshape(-1)
    j = int(rng.integers(0, flat.size))
    old = float(flat[j])
    flat[j] = change(flat[j])
    _put(init, flat.reshape(arr.shape))
    return old, float(flat[j])


def narrowed(proto: Any, src: str, to: int) -> Any:
    """`proto`, changed in place, with its input `src` rounded to the ONNX type `to` and back before any node reads
    it (a narrowing Cast slipped in)."""
    from onnx import helper

    g = proto.graph
    back = next(i for i in g.input if i.name == src).type.tensor_type.elem_type
    for n in g.node:
        for q, i in enumerate(n.input):
            if i == src:
                n.input[q] = src + "_mnar2"
    g.node.insert(0, helper.make_node("Cast", [src], [src + "_mnar1"], to=to))
    g.node.insert(1, helper.make_node("Cast", [src + "_mnar1"], [src + "_mnar2"], to=back))
    return proto


def candidates(proto: Any, rng: np.random.Generator, n_inputs: int) -> list[tuple[str, Any, dict[str, Any]]]:
    """(kind, mutated proto, info) for every unseen kind that applies, one seeded site per kind."""
    out: list[tuple[str, Any, dict[str, Any]]] = []
    g0 = proto.graph
    use = _consumers(g0)
    inits = {i.name for i in g0.initializer}
    producer = {o: n for n in g0.node for o in n.output}

    def each(pred: Any) -> list[int]:
        return [k for k, n in enumerate(g0.node) if pred(n)]

    def one(ks: list[int]) -> int | None:
        return None if not ks else ks[int(rng.integers(0, len(ks)))]

    def fresh() -> tuple[Any, Any]:
        p = copy.deepcopy(proto)
        return p, p.graph

    # Scaler scale / offset entries
    for name in ("scale", "offset"):
        k = one(each(lambda n: n.op_type == "Scaler" and _attr(n, name) is not None and len(_get(_attr(n, name)))))
        if k is not None:
            p, g = fresh()
            v = list(_get(_attr(g.node[k], name)))
            j = int(rng.integers(0, len(v)))
            v[j] = _rel(v[j])
            _set(g.node[k], name, [float(x) for x in v])
            out.append((f"scaler_{name}", p, {}))
    # Mul/Add scaling by initializers (MinMaxScaler, StandardScaler as arithmetic) also count as scaler entries
    for op, kind in (("Mul", "scale_mul"), ("Sub", "pca_mean")):
        k = one(each(lambda n: n.op_type == op and any(i in inits and _init_arr(_init(g0, i)).dtype.kind == "f"
                                                        and _init_arr(_init(g0, i)).size > 1 for i in n.input)))
        if k is not None:
            p, g = fresh()
            name = next(i for i in g.node[k].input if i in inits and _init_arr(_init(g, i)).size > 1)
            _change_one(_init(g, name), rng, _rel)
            out.append((kind, p, {}))
    # Imputer fill value: Where(IsNaN(x), fill, x)
    k = one(each(lambda n: n.op_type == "Where" and n.input[0] in producer and producer[n.input[0]].op_type == "IsNaN"
                 and n.input[1] in inits and _init_arr(_init(g0, n.input[1])).dtype.kind == "f"))
    if k is not None:
        p, g = fresh()
        _change_one(_init(g, g.node[k].input[1]), rng, lambda v: _rel(v, 1e-2))
        out.append(("imputer_fill", p, {"nan": True}))
    # Normalizer norm
    for k in each(lambda n: n.op_type == "Normalizer"):
        p, g = fresh()
        cur = _get(_attr(g.node[k], "norm")).decode()
        new = {"L1": "L2", "L2": "MAX", "MAX": "L1"}[cur]
        _set(g.node[k], "norm", new)
        out.append((f"normalizer_norm[{cur}->{new}]", p, {}))
    # Binarizer threshold / comparison op
    cmp_ops = ("Greater", "Less", "GreaterOrEqual", "LessOrEqual")
    k = one(each(lambda n: n.op_type in cmp_ops and n.input[0] in [i.name for i in g0.input]
                 and n.input[1] in inits and _init_arr(_init(g0, n.input[1])).dtype.kind == "f"))
    if k is not None:
        p, g = fresh()
        init = _init(g, g.node[k].input[1])
        kind = _init_arr(init).dtype.type
        old, new = _change_one(init, rng, lambda v: _steps(
            float(v), int(rng.integers(1, 5)) * int(rng.choice([-1, 1])), kind))
        out.append(("binarizer_threshold", p, {"values": (old, new)}))
        p, g = fresh()
        op = g.node[k].op_type
        g.node[k].op_type = {"Greater": "GreaterOrEqual", "GreaterOrEqual": "Greater", "Less": "LessOrEqual",
                             "LessOrEqual": "Less"}[op]
        out.append(("binarizer_op", p, {"values": (old, old)}))
    # LabelEncoder: a value swapped, the default changed, a key renamed
    les = each(lambda n: n.op_type == "LabelEncoder")
    k = one([k for k in les if any(_attr(g0.node[k], a) is not None and len(_get(_attr(g0.node[k], a))) > 1
                                   for a in ("values_strings", "values_int64s", "values_floats"))])
    if k is not None:
        p, g = fresh()
        a = next(a for a in ("values_strings", "values_int64s", "values_floats") if _attr(g.node[k], a) is not None)
        v = list(_get(_attr(g.node[k], a)))
        if len(set(v)) > 1:
            i1, i2 = rng.choice(len(v), 2, replace=False)
            while v[i1] == v[i2]:
                i1, i2 = rng.choice(len(v), 2, replace=False)
            v[i1], v[i2] = v[i2], v[i1]
            _set(g.node[k], a, v)
            out.append(("labelencoder_value", p, {}))
    k = one(les)
    if k is not None:
        p, g = fresh()
        n = g.node[k]
        if _attr(n, "values_strings") is not None:
            _set(n, "default_string", (_get(_attr(n, "default_string")).decode() if _attr(n, "default_string")
                                       else "_Unused") + "x")
        elif _attr(n, "values_floats") is not None:
            d = _get(_attr(n, "default_float")) if _attr(n, "default_float") else -0.0
            _set(n, "default_float", float(d + 1.0))
        else:
            d = _get(_attr(n, "default_int64")) if _attr(n, "default_int64") else -1
            _set(n, "default_int64", int(d) + 1 if d != -1 else -2)
        out.append(("labelencoder_default", p, {"unknown": True}))
    k = one([k for k in les if _attr(g0.node[k], "keys_strings") is not None])
    if k is not None:
        p, g = fresh()
        v = list(_get(_attr(g.node[k], "keys_strings")))
        j = int(rng.integers(0, len(v)))
        v[j] = v[j] + b"q"
        _set(g.node[k], "keys_strings", v)
        out.append(("vocabulary", p, {}))
    # OneHotEncoder: a category dropped (the last: the width changes), zeros=0
    k = one(each(lambda n: n.op_type == "OneHotEncoder"))
    if k is not None:
        p, g = fresh()
        n = g.node[k]
        a = "cats_strings" if _attr(n, "cats_strings") is not None else "cats_int64s"
        v = list(_get(_attr(n, a)))
        if len(v) > 1:
            j = int(rng.integers(0, len(v)))
            v[j] = v[j] + b"q" if isinstance(v[j], bytes) else v[j] + 1000
            _set(n, a, v)
            out.append(("onehot_drop", p, {}))
        p, g = fresh()
        _set(g.node[k], "zeros", 0)
        out.append(("onehot_zeros", p, {"unknown": True}))
    # idf weight: a Mul by a float initializer downstream of a LabelEncoder / ScatterElements (text)
    k = one(each(lambda n: n.op_type == "Mul" and any(i in inits and _init_arr(_init(g0, i)).size > 4 for i in n.input)
                 and any(m.op_type == "Tokenizer" for m in g0.node)))
    if k is not None:
        p, g = fresh()
        name = next(i for i in g.node[k].input if i in inits and _init_arr(_init(g, i)).size > 4)
        _change_one(_init(g, name), rng, lambda v: _rel(v, 1e-2))
        out.append(("idf", p, {}))
    # ArgMax tie rule
    for k in each(lambda n: n.op_type == "ArgMax"):
        p, g = fresh()
        _set(g.node[k], "select_last_index", 1)
        out.append(("argmax_last", p, {}))
        break
    # Clip bounds: Min/Max/Clip with a float initializer
    k = one(each(lambda n: n.op_type in ("Min", "Max", "Clip") and any(
        i in inits and _init_arr(_init(g0, i)).dtype.kind == "f" for i in n.input)))
    if k is not None:
        p, g = fresh()
        name = next(i for i in g.node[k].input if i in inits and _init_arr(_init(g, i)).dtype.kind == "f")
        _change_one(_init(g, name), rng, lambda v: _rel(v, 1e-3))
        out.append((f"clip[{g.node[k].op_type}]", p, {}))
    # ReLU -> LeakyRelu(alpha 1e-3)
    k = one(each(lambda n: n.op_type == "Relu"))
    if k is not None:
        p, g = fresh()
        g.node[k].op_type = "LeakyRelu"
        _set(g.node[k], "alpha", 1e-3)
        out.append(("leaky_relu", p, {}))
    # Softmax axis 1 -> 0
    k = one(each(lambda n: n.op_type == "Softmax"))
    if k is not None:
        p, g = fresh()
        _set(g.node[k], "axis", 0)
        out.append(("softmax_axis", p, {}))
    # Sigmoid -> the first column of a softmax over [z, 0]: sigmoid(z) = softmax([z, 0])[0] (equivalent: a
    # control), and over [z, -z] (sigmoid(2z): real)
    k = one(each(lambda n: n.op_type == "Sigmoid"))
    if k is not None:
        from onnx import helper
        p, g = fresh()
        n = g.node[k]
        x, y = n.input[0], n.output[0]
        neg = helper.make_node("Neg", [x], [x + "_mneg"])
        cat = helper.make_node("Concat", [x, x + "_mneg"], [x + "_mcat"], axis=-1)
        sm = helper.make_node("Softmax", [x + "_mcat"], [x + "_msm"], axis=-1)
        starts = helper.make_tensor(x + "_ms", 7, [1], [0])
        ends = helper.make_tensor(x + "_me", 7, [1], [1])
        axes = helper.make_tensor(x + "_ma", 7, [1], [-1])
        g.initializer.extend([starts, ends, axes])
        sl = helper.make_node("Slice", [x + "_msm", x + "_ms", x + "_me", x + "_ma"], [y])
        del g.node[k]
        for j, m in enumerate([neg, cat, sm, sl]):
            g.node.insert(k + j, m)
        out.append(("sigmoid_to_softmax", p, {}))
    # post_transform
    k = one(each(lambda n: _attr(n, "post_transform") is not None))
    if k is not None:
        p, g = fresh()
        cur = _get(_attr(g.node[k], "post_transform"))
        codes = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]  # TreeEnsemble v5 numbers them
        cur = codes[cur] if isinstance(cur, int) else cur.decode()
        new = {"NONE": "LOGISTIC", "LOGISTIC": "SOFTMAX", "SOFTMAX": "SOFTMAX_ZERO", "SOFTMAX_ZERO": "SOFTMAX",
               "PROBIT": "LOGISTIC"}[cur]
        _set(g.node[k], "post_transform", codes.index(new) if g.node[k].op_type == "TreeEnsemble" else new)
        out.append((f"post_transform[{g.node[k].op_type}:{cur}->{new}]", p, {}))
    # trees: missing direction, mode, feature
    for k in each(lambda n: n.op_type in ("TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble")):
        node = g0.node[k]
        feat, thr, modes, tch, fch = _tree_arrays(node)
        inner = [j for j in range(len(feat)) if modes[j] != 9]
        if not inner:
            continue
        j = inner[int(rng.integers(0, len(inner)))]
        # missing direction
        p, g = fresh()
        n = g.node[k]
        name = "nodes_missing_value_tracks_true"
        cur = list(_get(_attr(n, name))) if _attr(n, name) is not None else [0] * len(feat)
        cur[j] = 1 - int(cur[j])
        _set(n, name, cur)
        out.append(("tree_missing", p, {"tree": k, "split": j, "at": "nan"}))
        # mode LEQ <-> LT (GTE <-> GT)
        p, g = fresh()
        n = g.node[k]
        if node.op_type == "TreeEnsemble":
            from onnx import numpy_helper
            a = _attr(n, "nodes_modes")
            m = numpy_helper.to_array(a.t).copy()
            m[j] = {0: 1, 1: 0, 2: 3, 3: 2}.get(int(m[j]), m[j])
            a.t.CopyFrom(numpy_helper.from_array(m, a.t.name))
        else:
            ms = list(_get(_attr(n, "nodes_modes")))
            ms[j] = {b"BRANCH_LEQ": b"BRANCH_LT", b"BRANCH_LT": b"BRANCH_LEQ", b"BRANCH_GTE": b"BRANCH_GT",
                     b"BRANCH_GT": b"BRANCH_GTE"}.get(ms[j], ms[j])
            _set(n, "nodes_modes", ms)
        out.append(("tree_mode", p, {"tree": k, "split": j, "at": "thr"}))
        # feature index
        nf = max(feat) + 1
        if nf > 1:
            p, g = fresh()
            n = g.node[k]
            fs = list(_get(_attr(n, "nodes_featureids")))
            width = n_inputs if nf > n_inputs and nf <= 2 * n_inputs else nf
            block = (fs[j] // width) * width
            fs[j] = block + (fs[j] - block + 1 + int(rng.integers(0, max(width - 1, 1)))) % width
            _set(n, "nodes_featureids", fs)
            out.append(("tree_feature", p, {"tree": k, "split": j, "at": "thr"}))
        break
    # SVMClassifier / SVMRegressor vectors and gamma
    k = one(each(lambda n: n.op_type in ("SVMClassifier", "SVMRegressor")))
    if k is not None:
        p, g = fresh()
        v = list(_get(_attr(g.node[k], "support_vectors")))
        j = int(rng.integers(0, len(v)))
        v[j] = _rel(v[j], 1e-2)
        _set(g.node[k], "support_vectors", [float(x) for x in v])
        out.append(("svm_vector", p, {}))
        p, g = fresh()
        v = list(_get(_attr(g.node[k], "kernel_params")))
        v[0] = _rel(v[0], 1e-3)
        _set(g.node[k], "kernel_params", [float(x) for x in v])
        out.append(("svm_gamma", p, {}))
    # kernel as arithmetic (SVR/SVC on MatMul): gamma is a scalar Mul before Exp
    k = one(each(lambda n: n.op_type == "Mul" and any(i in inits and _init_arr(_init(g0, i)).size == 1 for i in n.input)
                 and any(m.op_type == "Exp" for m in use.get(n.output[0], []))))
    if k is not None:
        p, g = fresh()
        name = next(i for i in g.node[k].input if i in inits and _init_arr(_init(g, i)).size == 1)
        arr = _init_arr(_init(g, name))
        _put(_init(g, name), (arr * (1 + 1e-3)).astype(arr.dtype))
        out.append(("svm_gamma", p, {}))
    # hidden-layer weight: a MatMul initializer whose output goes through an activation
    k = one(each(lambda n: n.op_type == "MatMul" and n.input[1] in inits and any(
        m.op_type == "Add" and any(q.op_type in ("Relu", "Tanh", "Sigmoid") for q in use.get(m.output[0], []))
        for m in use.get(n.output[0], []))))
    if k is not None:
        p, g = fresh()
        _change_one(_init(g, g.node[k].input[1]), rng, lambda v: v * (1 + rng.choice([-1, 1]) * 1e-3))
        out.append(("hidden_weight", p, {}))
    # a narrowing cast round trip on the first float input
    fin = [i for i in g0.input if i.type.tensor_type.elem_type in (1, 11)]
    if fin:
        p, _g = fresh()
        narrow = 10 if fin[0].type.tensor_type.elem_type == 1 else 1
        narrowed(p, fin[0].name, narrow)
        out.append((f"cast_narrow[{'float16' if narrow == 10 else 'float32'}]", p, {}))
    # k-NN k: TopK's k
    k = one(each(lambda n: n.op_type == "TopK" and len(n.input) > 1 and n.input[1] in inits))
    if k is not None:
        p, g = fresh()
        init = _init(g, g.node[k].input[1])
        arr = _init_arr(init)
        if int(arr.reshape(-1)[0]) > 1:
            _put(init, (arr - 1).astype(arr.dtype))
            out.append(("knn_k", p, {}))
    # two inputs of a Concat swapped (column order)
    k = one(each(lambda n: n.op_type == "Concat" and len(n.input) >= 2 and len(set(n.input)) == len(n.input)))
    if k is not None:
        p, g = fresh()
        ins = list(g.node[k].input)
        i1, i2 = rng.choice(len(ins), 2, replace=False)
        ins[i1], ins[i2] = ins[i2], ins[i1]
        del g.node[k].input[:]
        g.node[k].input.extend(ins)
        out.append(("column_swap", p, {}))
    return out


# ---- is it real? ------------------------------------------------------------------------------------------------

def feeds_u(model: Any, rows: np.ndarray, frame_cols: Any, X: Any) -> dict[str, np.ndarray]:
    """`mutations.feeds`, with a negative code in a string column read as an unknown category."""
    return feeds(model, rows, frame_cols, X, unknown=UNKNOWN)


def _tree_rows(proto: Any, info: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Rows reaching a tree node, its feature at the threshold (and its float32 neighbours) or missing. Features
    past the inputs' width are read as the negated inputs (the Concat(x, -x) layout of the converter)."""
    feat, splits, modes, tch, fch = _tree_arrays(proto.graph.node[info["tree"]])
    d = X.shape[1]
    if max(feat) >= 2 * d:
        return np.zeros((0, d))
    parent: dict[int, tuple[int, bool]] = {}
    for i in range(len(feat)):
        if tch[i] >= 0:
            parent[tch[i]] = (i, True)
        if fch[i] >= 0:
            parent[fch[i]] = (i, False)
    lo, hi = np.full(d, -np.inf), np.full(d, np.inf)

    def bound(f: int, t: float, upper: bool) -> None:
        if f >= d:  # -x <op> t  <=>  x <op'> -t
            f, t, upper = f - d, -t, not upper
        if upper:
            hi[f] = min(hi[f], t)
        else:
            lo[f] = max(lo[f], t)

    n = info["split"]
    while n in parent:
        p, true = parent[n]
        leq = modes[p] in (0, 1)
        bound(feat[p], splits[p], upper=(true == leq))
        n = p
    base = np.nanmedian(X, axis=0)
    for f in range(d):
        if not (lo[f] < base[f] <= hi[f]):
            base[f] = (lo[f] + hi[f]) / 2 if np.isfinite(lo[f]) and np.isfinite(hi[f]) else (
                hi[f] - abs(hi[f]) * 0.1 - 1e-3 if np.isfinite(hi[f]) else lo[f] + abs(lo[f]) * 0.1 + 1e-3)
    f, t = feat[info["split"]], splits[info["split"]]
    if f >= d:
        f, t = f - d, -t
    t32 = np.float32(t)
    vals = [np.nan, t, float(t32), float(np.nextafter(t32, np.float32(-np.inf))),
            float(np.nextafter(t32, np.float32(np.inf))), np.nextafter(t, -np.inf), np.nextafter(t, np.inf)]
    rows = np.repeat(base[None, :], len(vals), axis=0)
    rows[:, f] = vals
    return rows


def verification(X: np.ndarray, frame_cols: Any, info: dict[str, Any], proto: Any,
                 rng: np.random.Generator) -> np.ndarray:
    lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * 1.5 + 1e-9
    rows = [X, mid + rng.uniform(-1, 1, (20000, X.shape[1])) * half]
    head = X[:100]
    for j in range(X.shape[1]):
        r = head.copy()
        if frame_cols is not None and frame_cols[j] is not None:
            r[:, j] = -1  # an unknown category
        else:
            r[:, j] = np.nan
        rows.append(r)
    if frame_cols is None:
        rows.append(np.full((1, X.shape[1]), np.nan))
    if "tree" in info:
        rows.append(_tree_rows(proto, info, X))
    if "values" in info:
        a, b = sorted(info["values"])
        vals = [np.nextafter(np.float32(a), np.float32(-np.inf))]
        x = np.float32(a)
        while x <= b:
            vals.append(x)
            x = np.nextafter(x, np.float32(np.inf))
        vals.append(x)
        for j in range(X.shape[1]):
            r = np.repeat(head[:5], len(vals), axis=0)
            r[:, j] = np.tile(np.asarray(vals, dtype=np.float64), 5)
            rows.append(r)
    return np.concatenate(rows).astype(np.float64)


def _real(sk: Any, m: Any, art: Any, rows: np.ndarray, frame_cols: Any, X: Any, est: Any) -> Any:
    """`real`, and True when the mutated model fails on a block of rows both the original and the unmutated
    artifact run."""
    for start in range(0, len(rows), 1000):
        block = rows[start:start + 1000]
        fed = feeds_u(sk, block, frame_cols, X)
        try:
            sk.run(fed)
            art.run(fed)
        except Exception:
            continue
        try:
            m.run(fed)
        except Exception:
            return "the mutated model fails on rows the original runs"
        if real(sk, m, block, frame_cols, X, base=art, est=est, unknown=UNKNOWN):
            return True
    return False


# ---- run --------------------------------------------------------------------------------------------------------

def run(prefixes: list[str], dtypes: tuple[str, ...] = ("float32",)) -> list[dict[str, Any]]:
    import portable

    import zlib

    results = []
    for name, build in all_builders(prefixes):
        rng = np.random.default_rng(zlib.crc32(name.encode()))  # each model's mutations, whatever else runs
        try:
            est, X, data = build()
        except Exception as exc:
            print(f"{name}: not built ({type(exc).__name__})", flush=True)
            continue
        Xn, frame_cols = numeric(X)
        sk = portable.load(est, data=data)
        for dtype in dtypes:
            try:
                art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=data)
            except Exception as exc:
                print(f"{name}/{dtype}: not converted ({type(exc).__name__})", flush=True)
                continue
            n_inputs = Xn.shape[1]
            try:
                found = candidates(art.proto, rng, n_inputs)
            except Exception as exc:
                print(f"{name}/{dtype}: no mutations ({type(exc).__name__}: {exc})", flush=True)
                continue
            for kind, proto, info in found:
                rec = {"model": f"{name}/{dtype}", "kind": kind}
                try:
                    m = portable.load(proto)
                    m.run(feeds_u(sk, Xn[:2], frame_cols, X))
                except Exception as exc:
                    rec["status"] = f"breaks ({type(exc).__name__})"
                    results.append(rec)
                    print(rec, flush=True)
                    continue
                vrows = verification(Xn, frame_cols, info, art.proto, rng)
                is_real = _real(sk, m, art, vrows, frame_cols, X, est)
                rec["real"] = is_real
                if is_real is not None:
                    verdicts = []
                    for seed in SEEDS:
                        t0 = time.perf_counter()
                        try:
                            rep = portable.check(sk, m, samples=1000, seed=seed)
                            verdicts.append("eq" if rep.equivalent else "NOT")
                        except Exception as exc:
                            verdicts.append(f"error:{type(exc).__name__}")
                        rec.setdefault("seconds", []).append(round(time.perf_counter() - t0, 2))
                        if not rep.equivalent and not is_real and proven(sk, m, rep, est):
                            is_real = rec["real"] = "shown by the checker's counterexample"
                    rec["verdicts"] = verdicts
                    rec["status"] = ("MISSED" if is_real and "eq" in verdicts else
                                     "caught" if is_real else
                                     "not real; flagged" if "NOT" in verdicts else "not real; eq")
                results.append(rec)
                print(rec, flush=True)
    return results


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    from threadpoolctl import threadpool_limits

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dtypes = ("float32", "float64") if "--both" in sys.argv else ("float32",)
    with threadpool_limits(limits=1):
        res = run(args, dtypes)
    missed = [r for r in res if r.get("status") == "MISSED"]
    print(f"\n{len(res)} mutations; real {sum(bool(r.get('real')) for r in res)}; missed {len(missed)}")
    for r in missed:
        print("MISSED", r)
