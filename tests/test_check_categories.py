"""The checker reaches what only some categories reach (issue 13, the mutation benchmark's misses).

Each test converts a realistic pipeline (tests/pipelines.py) with portable, mutates the ONNX artifact the way the
mutation benchmark does, decides independently whether the mutation is real (scikit-learn / XGBoost against
onnxruntime on every training row under every combination of the categories, and for thresholds on every float32
value between the old and the new one), and requires `portable.check(samples=1000)` to flag every real one:

- boosting models that encode pandas `category` columns themselves (HistGradientBoosting with
  categorical_features="from_dtype", XGBoost with enable_categorical): the categories and the category split sets
  were not learned, so a mutation only one category reaches (a code of the artifact's category mapping, a
  threshold below a membership split) was never tried;
- a one-hot coefficient behind `TransformedTargetRegressor`: nothing was learned behind it (no categories);
- text pipelines: a vectorizer's vocabulary was not learned, so documents with its words were never written.
"""
from __future__ import annotations

import copy
import itertools
import warnings

import numpy as np
import pytest

import portable
from tests import pipelines

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def _one_thread():
    """HistGradientBoosting predicts with OpenMP threads: for the few rows of a shrinking step their start-up
    dominates on a loaded machine (one thread, as the mutation benchmark runs)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _built(name: str):
    est, X, _ = dict(pipelines.PIPELINES)[name]()
    art = portable.convert(est, to="onnx", dtype="float64", check=False, data=X)
    return est, X, portable.load(est, data=X), art


def _feeds(model, frame) -> dict[str, np.ndarray]:
    out = {}
    for s in model.signature.inputs:
        v = frame[s.name]
        if s.is_string:
            v = v.astype(object).where(v.notna(), "").to_numpy().astype(str)
        else:
            v = v.to_numpy(dtype=np.float64)
        out[s.name] = v.reshape(-1, 1)
    return out


def _every_category(model, X, cats: dict[str, list[str]]):
    """The training rows under every combination of the categories of the string inputs (and missing)."""
    import pandas as pd

    names = [s.name for s in model.signature.inputs if s.is_string]
    parts = []
    for combo in itertools.product(*[list(cats[n]) + [None] for n in names]):
        f = X.copy()
        for n, v in zip(names, combo):
            f[n] = pd.Series([v] * len(f), index=f.index, dtype=object)
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


def _differs(sk, mutated, feeds, a=None) -> bool:
    a = sk.run(feeds) if a is None else a
    b = mutated.run(feeds)
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.dtype.kind in "fc":
            if not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-5, atol=1e-7):
                return True
        elif not np.array_equal(x.reshape(-1), y.reshape(-1)):
            return True
    return False


def _categories(X) -> dict[str, list[str]]:
    return {c: sorted({v for v in X[c].astype(object) if isinstance(v, str)}) for c in X.columns
            if not np.issubdtype(np.asarray(X[c]).dtype, np.number)}


def _matmul_weights(proto):
    users = {}
    for n in proto.graph.node:
        for i in n.input:
            users.setdefault(i, set()).add(n.op_type)
    return [k for k, init in enumerate(proto.graph.initializer)
            if init.data_type in (1, 11) and "MatMul" in users.get(init.name, set()) and len(init.dims) == 2]


def _scaled(proto, k: int, j: int, factor: float):
    from onnx import numpy_helper

    p = copy.deepcopy(proto)
    init = p.graph.initializer[k]
    arr = numpy_helper.to_array(init).copy()
    arr.reshape(-1)[j] *= factor
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    return p


def _mutants_caught(sk, art, X, mutants) -> tuple[int, list[str]]:
    return _caught(sk, mutants, _feeds(sk, _every_category(sk, X, _categories(X))))


def _caught(sk, mutants, rows) -> tuple[int, list[str]]:
    """How many mutants really differ from the original on `rows`, and which of those the check misses."""
    want = sk.run(rows)
    real, missed = 0, []
    for what, proto in mutants:
        m = portable.load(proto)
        if not _differs(sk, m, rows, want):
            continue
        real += 1
        if portable.check(sk, m, samples=1000, seed=0).equivalent:
            missed.append(what)
    return real, missed


@pytest.mark.parametrize("name", ["titanic_hist_gradient_boosting_categories", "titanic_xgboost_categories"])
def test_category_dtype_boosting_category_mapping_mutants_are_caught(name):
    """A category's code in the artifact's category mapping (the constants its Equal encoder multiplies by) times
    1 +- 1e-3: only rows with that category show it."""
    est, X, sk, art = _built(name)
    mutants = []
    for k in _matmul_weights(art.proto):
        size = int(np.prod(art.proto.graph.initializer[k].dims))
        for j in range(size):
            for factor in (1 + 1e-3, 1 - 1e-3):
                mutants.append((f"initializer {k}[{j}] x {factor}", _scaled(art.proto, k, j, factor)))
    real, missed = _mutants_caught(sk, art, X, mutants)
    assert real >= 2, f"only {real} real mutations: the test no longer tests anything"
    assert not missed, f"{len(missed)} of {real} real mutations missed: {missed}"
    # a real one checked ONNX against ONNX: the categories come from the artifacts' Equal encoders
    rows = _feeds(sk, _every_category(sk, X, _categories(X)))
    want = sk.run(rows)
    for what, proto in mutants:
        m = portable.load(proto)
        if _differs(sk, m, rows, want):
            assert not portable.check(art, m, samples=1000, seed=0).equivalent, what
            break


def _v5_tree(proto):
    from onnx import helper

    for k, node in enumerate(proto.graph.node):
        if node.op_type == "TreeEnsemble":
            return k, {a.name: helper.get_attribute_value(a) for a in node.attribute}
    raise AssertionError("no TreeEnsemble in the artifact")


def test_hgb_thresholds_below_category_splits_are_caught():
    """A numeric split below a membership split of a HistGradientBoosting model on category columns, moved 3
    float32 steps: only rows with the categories that lead there reach it."""
    import pandas as pd
    from onnx import numpy_helper

    est, X, sk, art = _built("titanic_hist_gradient_boosting_categories")
    k, at = _v5_tree(art.proto)
    modes = numpy_helper.to_array(at["nodes_modes"]).reshape(-1)
    tid, fid = list(at["nodes_truenodeids"]), list(at["nodes_falsenodeids"])
    tl, fl = list(at["nodes_trueleafs"]), list(at["nodes_falseleafs"])
    parent = {}
    for i in range(len(modes)):
        if not tl[i]:
            parent[tid[i]] = i
        if not fl[i]:
            parent[fid[i]] = i

    def below_member(i: int) -> bool:
        while i in parent:
            i = parent[i]
            if modes[i] == 6:
                return True
        return False
    nodes = [i for i in range(len(modes)) if modes[i] <= 3 and below_member(i)]
    assert nodes, "no numeric split below a membership split: the test no longer tests anything"
    nodes = nodes[::max(1, len(nodes) // 4)][:4]
    splits = numpy_helper.to_array(at["nodes_splits"]).astype(np.float64)
    feats = list(at["nodes_featureids"])
    names = [s.name for s in art.signature.inputs]  # the artifact's trees read the inputs in this order
    every = _every_category(sk, X.iloc[::4], _categories(X))  # a quarter of the training rows
    mutants, rows = [], []
    for i in nodes:
        for steps in (3, -3):
            new = np.float32(splits[i])
            for _ in range(abs(steps)):
                new = np.nextafter(new, np.float32(np.inf if steps > 0 else -np.inf))
            p = copy.deepcopy(art.proto)
            attr = next(a for a in p.graph.node[k].attribute if a.name == "nodes_splits")
            v = numpy_helper.to_array(attr.t).copy()
            v[i] = new
            attr.t.CopyFrom(numpy_helper.from_array(v, attr.t.name))
            mutants.append((f"node {i} {steps:+d} steps", p))
            # the independent rows: every training row and category, the split feature on each float32 value
            # between the old threshold and the new one (both included, one step beyond)
            lo, hi = sorted((np.float32(splits[i]), new))
            vals, x = [np.nextafter(lo, np.float32(-np.inf))], lo
            while x <= hi:
                vals.append(x)
                x = np.nextafter(x, np.float32(np.inf))
            f = pd.concat([every.assign(**{names[feats[i]]: float(val)}) for val in vals + [x]], ignore_index=True)
            rows.append(_feeds(sk, f))
    real, missed = 0, []
    for (what, proto), feeds in zip(mutants, rows):
        m = portable.load(proto)
        if not _differs(sk, m, feeds):
            continue
        real += 1
        if portable.check(sk, m, samples=1000, seed=0).equivalent:
            missed.append(what)
    assert real >= 1, "no real mutation: the test no longer tests anything"
    assert not missed, f"{len(missed)} of {real} real mutations missed: {missed}"


def test_ridge_behind_log_target_category_coefficients_are_caught():
    """Each coefficient of a Ridge behind TransformedTargetRegressor(log1p) times 1 + 1e-3: the one-hot ones
    only show with their category."""
    est, X, sk, art = _built("house_ridge_log_target")
    mutants = []
    for k in _matmul_weights(art.proto):
        size = int(np.prod(art.proto.graph.initializer[k].dims))
        mutants += [(f"initializer {k}[{j}]", _scaled(art.proto, k, j, 1 + 1e-3)) for j in range(size)]
    real, missed = _mutants_caught(sk, art, X, mutants)
    assert real >= 5, f"only {real} real mutations: the test no longer tests anything"
    assert not missed, f"{len(missed)} of {real} real mutations missed: {missed}"


def test_category_hints_are_learned():
    """What the hints say, against the libraries' own fitted attributes."""
    est, X, sk, art = _built("titanic_hist_gradient_boosting_categories")
    hints = sk.input_hints()
    enc = est._preprocessor.named_transformers_["encoder"]
    for k, name in enumerate(np.asarray(est.feature_names_in_)[est.is_categorical_]):
        want = [c for c in enc.categories_[k] if isinstance(c, str)]
        assert hints.columns[(str(name), 0)].categories == want
        assert hints.columns[(str(name), 0)].unseen_ok
        onnx_cats = art.input_hints().columns[(str(name), 0)].categories
        assert set(want) <= set(onnx_cats)
    # the trees read the preprocessor's columns (categorical first): each numeric split names the raw column
    # whose values the scikit-learn predictor compares
    trees = hints.trees[0]
    order = np.r_[est._preprocessor._transformer_to_input_indices["encoder"],
                  est._preprocessor._transformer_to_input_indices["numerical"]]
    nodes = np.concatenate([p.nodes for it in est._predictors for p in it])
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    raw = [trees.columns[c][0] for c in trees.feature[inner]]
    assert raw == [str(est.feature_names_in_[order[f]]) for f in nodes["feature_idx"][inner]]
    members = [i for i in inner if nodes["is_categorical"][i]]
    assert members and all(i in trees.members for i in members)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ridge = dict(pipelines.PIPELINES)["house_ridge_log_target"]()
    h = portable.load(ridge[0], data=ridge[1]).input_hints()
    assert h.columns[("neighborhood", 0)].categories


def test_text_vocabulary_swaps_and_word_coefficients_are_caught():
    """Two vocabulary entries of the artifact swapped, or one word's coefficient times 1 + 1e-3: only documents
    with those words show it (the checker now draws documents made of the vectorizer's vocabulary)."""
    est, X, sk, art = _built("text_tfidf_on_documents")
    vec = est.steps[0][1]
    docs = np.asarray(sorted(vec.vocabulary_), dtype=str).reshape(-1, 1)  # each term alone
    feeds = {sk.signature.inputs[0].name: docs}
    mutants = []
    for k, node in enumerate(art.proto.graph.node):
        for a in node.attribute:
            if a.name == "keys_strings" and len(a.strings) > 3:
                for i1, i2 in ((0, 1), (1, len(a.strings) - 1)):
                    p = copy.deepcopy(art.proto)
                    b = next(x for x in p.graph.node[k].attribute if x.name == "keys_strings")
                    vals = list(b.strings)
                    vals[i1], vals[i2] = vals[i2], vals[i1]
                    del b.strings[:]
                    b.strings.extend(vals)
                    mutants.append((f"node {k} keys {i1}<->{i2}", p))
    for k in _matmul_weights(art.proto)[:1]:
        mutants += [(f"initializer {k}[{j}]", _scaled(art.proto, k, j, 1 + 1e-3)) for j in (0, 5)]
    real, missed = _caught(sk, mutants, feeds)
    assert real >= 2, f"only {real} real mutations: the test no longer tests anything"
    assert not missed, f"{len(missed)} of {real} real mutations missed: {missed}"
