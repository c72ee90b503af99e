"""Mutations from the second unseen set (`benchmarks/unseen_mutations2.py`, issue 13's independent verification)
that the checker missed: each shown real with scikit-learn or onnxruntime directly on a constructed input, and
caught for seeds 0-2 once the cause was fixed."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import portable

pytest.importorskip("sklearn")


def ort_run(proto, feeds):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def _convert(est, data=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return portable.convert(est, to="onnx", dtype="float32", check=False, data=data)


def _set_attr(node, name, value):
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


@pytest.fixture(scope="module")
def extra_trees():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import ExtraTreesRegressor

    X, y = load_diabetes(return_X_y=True)
    est = ExtraTreesRegressor(8, max_depth=6, random_state=0).fit(X, y)
    return est, X, _convert(est)


def test_two_onnx_models_one_routing_missing_values_to_the_true_branch_are_told_apart(extra_trees):
    """Checking two ONNX models (`portable check a.onnx b.onnx`): one split of a forest fitted without missing
    values sends NaN to its true branch in the second (`nodes_missing_value_tracks_true` 0 -> 1). Nothing told the
    checker that the column takes NaN (scikit-learn does when it is the original; an ONNX graph only through an
    Imputer), so it never fed NaN and judged the pair equivalent on every seed; the tree's own missing-value
    routing now says so."""
    est, X, art = extra_trees
    p = copy.deepcopy(art.proto)
    node = next(n for n in p.graph.node if n.op_type == "TreeEnsembleRegressor")
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    modes = [m.decode() for m in at["nodes_modes"]]
    feats = list(at["nodes_featureids"])
    j = next(i for i, (m, f) in enumerate(zip(modes, feats)) if m != "LEAF" and at["nodes_nodeids"][i] == 0)
    tracks = list(at.get("nodes_missing_value_tracks_true", [0] * len(modes)))
    tracks[j] = 1 - int(tracks[j])
    _set_attr(node, "nodes_missing_value_tracks_true", tracks)
    # real: a row with NaN in that root split's column (onnxruntime on both graphs)
    width = int(art.proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value)
    col = feats[j] % width  # the graph reads [x, -x]
    rows = X[:50].astype(np.float32)
    rows[:, col] = np.nan
    a, b = ort_run(art.proto, {"X": rows})["variable"], ort_run(p, {"X": rows})["variable"]
    assert np.abs(a - b).max() > 1.0
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent


def _nan_wine():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = X[:, :6].copy()
    X[np.random.default_rng(1).random(X.shape) < 0.12] = np.nan
    return X, y


def test_two_onnx_models_with_imputers_written_as_where_isnan_are_fed_missing_values():
    """An imputer written as Where(IsNaN(x), fill, x) (portable's SimpleImputer), one fill value 1% off in the
    second model: the checker learned NaN and fill values only from an ONNX-ML `Imputer` node, so a check of the
    two ONNX models never fed NaN and said equivalent on every seed."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _nan_wine()
    est = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    art = _convert(est)
    p = copy.deepcopy(art.proto)
    where = next(n for n in p.graph.node if n.op_type == "Where")
    init = next(i for i in p.graph.initializer if i.name == where.input[1])
    from onnx import numpy_helper

    fill = numpy_helper.to_array(init).copy()
    fill.reshape(-1)[2] *= 1.01
    init.CopyFrom(numpy_helper.from_array(fill, init.name))
    rows = np.nan_to_num(X[:50], nan=1.0).astype(np.float32)
    rows[:, 2] = np.nan
    a, b = ort_run(art.proto, {"X": rows})["probabilities"], ort_run(p, {"X": rows})["probabilities"]
    assert np.abs(a - b).max() > 1e-3  # real: a missing third column is filled with another value
    np.testing.assert_allclose(a, est.predict_proba(rows.astype(np.float64)), atol=1e-4)
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent


def test_two_onnx_models_whose_bin_edges_differ_in_one_comparison_are_told_apart():
    """KBinsDiscretizer(encode="ordinal") as portable writes it: X unsqueezed to [N, F, 1] and compared with the
    edges [1, F, K] by GreaterOrEqual; the second model reads Greater (a value on an edge falls in the lower bin).
    The checker learned no edges from an ONNX graph, so no row lay on one and the pair was equivalent on every
    seed; the compared constants are now interesting values of their columns."""
    from onnx import numpy_helper
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import KBinsDiscretizer

    X, y = load_diabetes(return_X_y=True)
    est = make_pipeline(KBinsDiscretizer(4, encode="ordinal", strategy="quantile", quantile_method="averaged_inverted_cdf"),
                        Ridge()).fit(X, y)
    art = _convert(est)
    p = copy.deepcopy(art.proto)
    node = next(n for n in p.graph.node if n.op_type == "GreaterOrEqual")
    node.op_type = "Greater"
    edges = numpy_helper.to_array(next(i for i in art.proto.graph.initializer if i.name == node.input[1]))
    rows = np.repeat(np.median(X, 0)[None], 3, 0).astype(np.float32)
    rows[:, 0] = edges[0, 0, :3]  # the first column on its inner edges
    a, b = ort_run(art.proto, {"X": rows})["variable"], ort_run(p, {"X": rows})["variable"]
    assert np.abs(a - b).max() > 1.0  # real
    np.testing.assert_allclose(a.ravel(), est.predict(rows.astype(np.float64)), rtol=1e-4)
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent


def test_two_onnx_models_with_a_tree_behind_missing_indicators_reach_its_splits():
    """SimpleImputer(add_indicator=True) before a DecisionTreeRegressor: the tree reads Concat(filled X, Cast(
    Gather(IsNaN(X)))). The indicator part had no known columns, so the whole Concat had none and the tree's
    splits were not learned from the ONNX graph; a root split read as `<` instead of `<=` in the second model went
    unnoticed on every seed."""
    from sklearn.datasets import load_diabetes
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    X = X[:, :6].copy()
    X[np.random.default_rng(2).random(X.shape) < 0.12] = np.nan
    est = make_pipeline(SimpleImputer(strategy="most_frequent", add_indicator=True),
                        DecisionTreeRegressor(max_depth=5, random_state=0)).fit(X, y)
    art = _convert(est)
    p = copy.deepcopy(art.proto)
    node = next(n for n in p.graph.node if n.op_type == "TreeEnsembleRegressor")
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    modes = [m.decode() for m in at["nodes_modes"]]
    root = list(at["nodes_nodeids"]).index(0)
    modes[root] = {"BRANCH_LEQ": "BRANCH_LT", "BRANCH_LT": "BRANCH_LEQ", "BRANCH_GTE": "BRANCH_GT",
                   "BRANCH_GT": "BRANCH_GTE"}[modes[root]]
    _set_attr(node, "nodes_modes", modes)
    # real: rows with the root's feature on the graph's threshold (the graph reads [x, -x] of the tree's input,
    # whose first 6 columns are X's, filled)
    width = est[:-1].transform(X[:1]).shape[1]
    f, t = int(at["nodes_featureids"][root]), float(np.float32(at["nodes_values"][root]))
    col, value = (f, t) if f < width else (f - width, -t)
    assert col < 6
    rows = np.nan_to_num(X[:50], nan=0.0).astype(np.float32)
    rows[:, col] = value
    a, b = ort_run(art.proto, {"X": rows})["variable"], ort_run(p, {"X": rows})["variable"]
    assert np.abs(a - b).max() > 1.0
    np.testing.assert_allclose(a.ravel(), est.predict(rows.astype(np.float64)), rtol=1e-4)
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent


def test_a_nearest_centroid_classifier_is_checked_where_its_centroids_are():
    """NearestCentroid on wine (features from 0.1 to 1,680) checked without data: its centroids were not read
    (only k-NN training points, support vectors, cluster centres and means were), so the rows came from the
    default range [-3, 3], where every probability is saturated, and a centroid coordinate 0.1% off in the
    artifact was judged equivalent on every seed."""
    from onnx import numpy_helper
    from sklearn.datasets import load_wine
    from sklearn.neighbors import NearestCentroid

    X, y = load_wine(return_X_y=True)
    X = X[:, :6]
    est = NearestCentroid().fit(X, y)
    art = _convert(est)
    p = copy.deepcopy(art.proto)
    cent = np.asarray(est.centroids_, np.float32)
    # the centroids are stored [1, C, F] twice: in raw units (for the label) and scaled (for the probabilities):
    # the scaled first centroid's second coordinate 0.1% off
    init = next(i for i in p.graph.initializer if numpy_helper.to_array(i).shape == (1, *cent.shape)
                and not np.allclose(numpy_helper.to_array(i)[0], cent))
    arr = numpy_helper.to_array(init).copy()
    arr[0, 0, 1] *= 1.001
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    rows = X.astype(np.float32)
    a = ort_run(art.proto, {"X": rows})["probabilities"]
    np.testing.assert_allclose(a, est.predict_proba(rows.astype(np.float64)), atol=1e-5)
    assert np.abs(ort_run(p, {"X": rows})["probabilities"] - a).max() > 1e-3  # real, on the training rows
    original, mutated = portable.load(est), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, art, samples=1000, seed=0).equivalent


def test_a_power_transformer_is_checked_where_its_training_values_are():
    """PowerTransformer (Yeo-Johnson, standardized) before a Ridge on diabetes (features within +-0.2), checked
    without data: nothing was learned of its range, the rows came from [-3, 3], where the transform's output is in
    the hundreds of thousands, and the tolerance scaled by that magnitude hid a Mul read as Div inside the
    transform (wrong by 10 on training rows). Its inverse transform at -3 and +3 now gives the range."""
    from onnx import numpy_helper
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PowerTransformer

    X, y = load_diabetes(return_X_y=True)
    est = make_pipeline(PowerTransformer(), Ridge()).fit(X, y)
    art = _convert(est)
    rows = X.astype(np.float32)
    a = ort_run(art.proto, {"X": rows})["variable"].ravel()
    np.testing.assert_allclose(a, est.predict(rows.astype(np.float64)), rtol=1e-4, atol=1e-3)
    inits = {i.name for i in art.proto.graph.initializer}
    found = 0
    for k, node in enumerate(art.proto.graph.node):  # each Mul by a constant read as Div, in turn
        if node.op_type != "Mul" or not any(i in inits for i in node.input):
            continue
        p = copy.deepcopy(art.proto)
        p.graph.node[k].op_type = "Div"
        if np.abs(ort_run(p, {"X": rows})["variable"].ravel() - a).max() < 1.0:
            continue  # not real on the training rows
        found += 1
        original, mutated = portable.load(est), portable.load(p)
        for seed in (0, 1, 2):
            assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent, (k, seed)
    assert found
    assert portable.check(portable.load(est), art, samples=1000, seed=0).equivalent


def _wine6():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    return X[:, :6], y


def test_two_onnx_gaussian_naive_bayes_models_are_checked_where_their_class_means_are():
    """Checking two ONNX GaussianNB graphs (`portable check a.onnx b.onnx`) on wine (features from 0.1 to 1,680):
    nothing said where the columns live (scikit-learn's theta_ and var_ do when it is the original; the graph
    keeps them as the constants [1, C, F] the reshaped rows are measured from and divided by), so the rows came
    from [-3, 3], where every row falls in one class with probability 1, and a class label changed, or a mean
    0.1% off, was judged equivalent. The graph's centres and variances now give the range."""
    from onnx import numpy_helper
    from sklearn.naive_bayes import GaussianNB

    X, y = _wine6()
    est = GaussianNB().fit(X, y)
    art = _convert(est)
    rows = X.astype(np.float32)
    base = ort_run(art.proto, {"X": rows})
    np.testing.assert_allclose(base["probabilities"], est.predict_proba(X), atol=1e-4)
    assert (base["label"].ravel() == est.predict(X)).mean() > 0.99
    theta = np.asarray(est.theta_, np.float32)
    # one class mean 0.1% off (the constant the rows are measured from)
    p1 = copy.deepcopy(art.proto)
    init = next(i for i in p1.graph.initializer if numpy_helper.to_array(i).shape == (1, *theta.shape)
                and np.allclose(numpy_helper.to_array(i)[0], theta))
    arr = numpy_helper.to_array(init).copy()
    arr[0, 1, 0] *= 1.001
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    # a class label changed
    p2 = copy.deepcopy(art.proto)
    init = next(i for i in p2.graph.initializer if i.name == "classes" or
                (numpy_helper.to_array(i).dtype.kind == "i" and numpy_helper.to_array(i).tolist() == [0, 1, 2]))
    init.CopyFrom(numpy_helper.from_array(np.array([0, 7, 2], numpy_helper.to_array(init).dtype), init.name))
    for p in (p1, p2):
        out = ort_run(p, {"X": rows})
        assert (np.abs(out["probabilities"] - base["probabilities"]).max() > 1e-3
                or (out["label"] != base["label"]).any())  # real, on the training rows (onnxruntime)
        original, mutated = portable.load(art.proto), portable.load(p)
        for seed in (0, 1, 2):
            assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(portable.load(art.proto), portable.load(copy.deepcopy(art.proto)), samples=1000,
                          seed=0).equivalent


def test_two_onnx_nearest_centroid_models_are_checked_where_their_centroids_are():
    """The same for two ONNX NearestCentroid graphs: the centroids ([1, C, F], subtracted from the unsqueezed
    rows, in raw units for the label and scaled for the probabilities) are known points; the scaled first
    centroid's second coordinate 0.1% off was judged equivalent on rows from [-3, 3]."""
    from onnx import numpy_helper
    from sklearn.neighbors import NearestCentroid

    X, y = _wine6()
    est = NearestCentroid().fit(X, y)
    art = _convert(est)
    rows = X.astype(np.float32)
    base = ort_run(art.proto, {"X": rows})
    assert (base["label"].ravel() == est.predict(X)).all()
    np.testing.assert_allclose(base["probabilities"], est.predict_proba(X), atol=1e-5)
    cent = np.asarray(est.centroids_, np.float32)
    p = copy.deepcopy(art.proto)
    init = next(i for i in p.graph.initializer if numpy_helper.to_array(i).shape == (1, *cent.shape)
                and not np.allclose(numpy_helper.to_array(i)[0], cent))
    arr = numpy_helper.to_array(init).copy()
    arr[0, 0, 1] *= 1.001
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    # real on the training rows (onnxruntime on both graphs)
    assert np.abs(ort_run(p, {"X": rows})["probabilities"] - base["probabilities"]).max() > 1e-3
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent


def _documents(n=240, seed=5):
    rng = np.random.default_rng(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
    docs, y = [], []
    for _ in range(n):
        ws = list(rng.choice(words, int(rng.integers(2, 9))))
        docs.append(" ".join(ws))
        y.append(int("beta" in ws or "sigma" in ws))
    return docs, np.array(y)


@pytest.mark.parametrize("vectorizer", [dict(ngram_range=(1, 2), sublinear_tf=True),
                                        dict(analyzer="char", ngram_range=(2, 3), max_features=200)])
def test_two_onnx_text_models_are_checked_on_documents_of_their_vocabulary(vectorizer):
    """Checking two ONNX tf-idf graphs: the text column's vocabulary was not read from the graph (the
    `LabelEncoder` the tokens and n-grams are looked up in), so the documents were random strings that contain
    no term, every tf-idf row was zero, and an idf weight 1% off (or a class label changed) was judged equivalent.
    The vocabulary's documents (the same a scikit-learn vectorizer's vocabulary gives) now reach every term."""
    import pandas as pd
    from onnx import numpy_helper
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    docs, y = _documents()
    df = pd.DataFrame({"doc": docs})
    est = make_pipeline(ColumnTransformer([("t", TfidfVectorizer(**vectorizer), "doc")]),
                        LogisticRegression(max_iter=2000)).fit(df, y)
    art = _convert(est, data=df)
    feeds = {"doc": np.array(docs, dtype=object).reshape(-1, 1)}
    base = ort_run(art.proto, feeds)
    np.testing.assert_allclose(base["probabilities"], est.predict_proba(df), atol=1e-4)
    vec = est[0].named_transformers_["t"]
    idf = np.asarray(vec.idf_, np.float32)
    # the idf weights: the constant [V] (or [1, V]) the counts are multiplied by; the most frequent term's 1% off
    p = copy.deepcopy(art.proto)
    init = next(i for i in p.graph.initializer if numpy_helper.to_array(i).size == idf.size
                and np.allclose(numpy_helper.to_array(i).reshape(-1), idf))
    arr = numpy_helper.to_array(init).copy()
    arr.reshape(-1)[int(np.argmin(vec.idf_))] *= 1.01
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    assert np.abs(ort_run(p, feeds)["probabilities"] - base["probabilities"]).max() > 1e-4  # real (onnxruntime)
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent


def test_two_onnx_models_with_trees_behind_category_codes_reach_their_splits():
    """Checking two ONNX graphs of a HistGradientBoostingRegressor on a DataFrame with category columns: the
    codes of the categories are written with Equal/MatMul/Where, which the walk does not follow, so the Concat of
    the numeric columns with the codes was not followed either and none of the trees was read: a root split on a
    numeric column sending missing values the other way was judged equivalent. The Concat's derived columns now
    take their width from the graph's shapes, and the trees are read on the numeric columns (with their routes of
    missing values)."""
    import pandas as pd
    from onnx import numpy_helper
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"size": rng.gamma(3, 20, n), "rooms": rng.integers(1, 7, n).astype(float),
                       "zone": pd.Categorical(rng.choice(["north", "south", "east", "west", "centre"], n)),
                       "age": rng.normal(30, 15, n)})
    df.loc[rng.random(n) < 0.08, "age"] = np.nan
    y = (df["size"] / 20 + df["rooms"] + (df.zone == "centre") * 3 + np.nan_to_num(df.age, nan=30) / 15
         + rng.normal(0, 1, n)).to_numpy()
    est = HistGradientBoostingRegressor(max_iter=15, categorical_features="from_dtype").fit(df, y)
    art = _convert(est, data=df)

    def feeds(frame):
        return {c: (frame[c].astype(str).to_numpy(dtype=object) if c == "zone" else
                    frame[c].to_numpy(np.float32)).reshape(-1, 1) for c in frame.columns}

    base = ort_run(art.proto, feeds(df))["variable"].ravel()
    f32 = df.copy()  # (a float32 artifact: scikit-learn on the float32 values it is fed)
    for c in ("size", "rooms", "age"):
        f32[c] = f32[c].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(base, est.predict(f32), rtol=1e-4, atol=1e-3)
    p = copy.deepcopy(art.proto)
    node = next(nd for nd in p.graph.node if nd.op_type.startswith("TreeEnsemble"))
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    feats = list(at["nodes_featureids"])
    numeric = {0: "size", 1: "rooms", 4: "age"}  # the Concat's columns: size, rooms, zone's code, age
    roots = list(at.get("tree_roots", [0]))
    j = next(int(r) for r in roots if feats[int(r)] in numeric)
    tracks = list(at.get("nodes_missing_value_tracks_true", [0] * len(feats)))
    tracks[j] = 1 - int(tracks[j])
    _set_attr(node, "nodes_missing_value_tracks_true", tracks)
    rows = df.copy()
    rows[numeric[feats[j]]] = np.nan
    assert np.abs(ort_run(p, feeds(rows))["variable"].ravel() - ort_run(art.proto, feeds(rows))["variable"].ravel()
                  ).max() > 0.1  # real (onnxruntime on both graphs)
    original, mutated = portable.load(art.proto), portable.load(p)
    for seed in (0, 1, 2):
        assert not portable.check(original, mutated, samples=1000, seed=seed).equivalent
    assert portable.check(original, portable.load(copy.deepcopy(art.proto)), samples=1000, seed=0).equivalent
