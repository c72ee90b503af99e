"""Tree certificates over a category column whose domain holds a category the encoder does not know (issue 19).

HistGradientBoosting on a pandas `category` column encodes it itself (an OrdinalEncoder whose unknown categories
become NaN, routed where each split sends a missing value); portable's ONNX graph maps them to NaN before the trees
(`Where(found, code, NaN)`). Both readings used to send such a category to the right child of every membership
split, whatever the split does with NaN: trees whose categorical splits send NaN left paired leaves that no input
reaches together, and the bound (1.6 on the decision scores of the unseen model `hgb_from_dtype`) was not
certifiable. Now an ordinal map carries the value of the categories outside it (`portable.hints.derive_splits`).

Everything is compared with the real libraries: scikit-learn's predict_proba on a pandas frame (an unseen category
is NaN in its categorical dtype) against onnxruntime on the artifact.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

from .mutants import benchmark_mutations

UNSEEN = "__portable_unseen__"


def _frame(seed: int, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.normal(40, 12, n).round(), "score": rng.normal(0, 1, n),
                       "grp": pd.Series(rng.choice(["u", "v", "w"], n)).astype("category")})
    y = ((df.age > 40) ^ (df.grp == "v") ^ (df.score > 0.5)).astype(int).to_numpy()
    return df, y


def _fit(seed: int, iters: int = 30):
    from sklearn.ensemble import HistGradientBoostingClassifier

    df, y = _frame(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=iters,
                                             random_state=seed).fit(df, y)
        art = portable.convert(est, "onnx", data=df, check=False)
    return est, art, df


def _dense(dom, like: pd.DataFrame, n: int, seed: int, unseen: bool = True) -> pd.DataFrame:
    """Rows all over the certificate's domain: every category it names (the unseen one too, unless not
    `unseen`), numbers inside the box, and the box's corners and edges."""
    rng = np.random.default_rng(seed)
    cols = {name: c for (name, _), c in dom.columns.items()}
    out = {}
    for name in like.columns:
        c = cols[name]
        if c.categories is not None:
            out[name] = rng.choice([str(v) for v in c.categories if unseen or str(v) != "__portable_unseen__"], n)
        else:
            v = rng.uniform(c.lo, c.hi, n)
            v[: n // 8] = rng.choice([c.lo, c.hi], n // 8)
            out[name] = np.round(v) if c.integer else v
    return pd.DataFrame(out)


def _sklearn(est, rows: pd.DataFrame, like: pd.DataFrame) -> np.ndarray:
    x = rows.copy()
    for c in like.columns:
        if isinstance(like[c].dtype, pd.CategoricalDtype):  # an unknown category becomes NaN, as in any frame
            x[c] = pd.Categorical(x[c], categories=like[c].cat.categories)
        else:
            x[c] = x[c].astype(like[c].dtype)
    return np.asarray(est.predict_proba(x), np.float64)


def _onnx(art, rows: pd.DataFrame) -> np.ndarray:
    feeds = {s.name: (rows[[s.name]].astype(str).to_numpy() if s.is_string else
                      rows[[s.name]].to_numpy().astype(s.dtype)) for s in art.signature.inputs}
    return np.asarray(art.run(feeds)["probabilities"], np.float64)


def test_hgb_category_column_with_unseen_category_certified_and_bound_holds() -> None:
    est, art, df = _fit(21)
    res = portable.certify(est, art, data=df)
    grp = next(c for (name, _), c in res.domain.columns.items() if name == "grp")
    assert UNSEEN in [str(v) for v in grp.categories]  # the domain speaks about categories it has not seen
    for out, cert in res.certificates.items():
        assert cert.status == "certified" and cert.method == "trees", (out, cert.reason)
    rows = _dense(res.domain, df, 20_000, 0)
    diff = np.abs(_sklearn(est, rows, df) - _onnx(art, rows)).max()
    assert diff <= res.certificates["probabilities"].bound
    # some trees do send a missing value left at a categorical split (else this test shows nothing)
    assert (est._predictors[0][0].nodes["missing_go_to_left"] == 1).any() or any(
        ((p.nodes["is_categorical"] == 1) & (p.nodes["missing_go_to_left"] == 1)).any()
        for it in est._predictors for p in it)


def _flip_member_missing(proto):
    """The artifact with the first membership split that sends NaN right sending it left instead: only a category
    the encoder does not know (or a missing one) goes another way."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    node = next(n for n in m.graph.node if n.op_type == "TreeEnsemble")
    at = {a.name: a for a in node.attribute}
    modes = numpy_helper.to_array(at["nodes_modes"].t).reshape(-1)
    track = list(at["nodes_missing_value_tracks_true"].ints)
    i = next(k for k in range(len(modes)) if modes[k] == 6 and track[k] == 0)
    track[i] = 1
    node.attribute.remove(at["nodes_missing_value_tracks_true"])
    node.attribute.append(helper.make_attribute("nodes_missing_value_tracks_true", track))
    return m


def test_hgb_unseen_category_routing_mutation_refuted_at_the_unseen_category() -> None:
    est, art, df = _fit(21)
    mutated = portable.load(_flip_member_missing(art.proto))
    res = portable.certify(est, mutated, data=df)
    cert = res.certificates["probabilities"]
    assert cert.status == "refuted", cert.reason
    cex = cert.counterexample
    assert cex["verified"] is True
    assert str(np.ravel(cex["inputs"]["grp"])[0]) == UNSEEN
    row = pd.DataFrame({k: [np.ravel(v)[0]] for k, v in cex["inputs"].items()})[list(df.columns)]
    assert np.abs(_sklearn(est, row, df) - _onnx(mutated, row)).max() > cert.tolerance
    # before the fix this mutation was not even seen: the certificate of the correct artifact was refused, and
    # the sampled check never feeds a category outside the training ones to a model that reads them as missing
    # alone (here it does: the unseen category is one of the domain's)


def test_hgb_category_column_threshold_and_leaf_mutations_refuted() -> None:
    """A changed leaf is refuted at a row where scikit-learn and onnxruntime differ; a moved threshold is refuted
    the same way or certified, and then no row of the domain differs beyond the bound (a threshold moved between
    two integers of an integer column changes nothing)."""
    est, art, df = _fit(21)
    refuted = {}
    for kind, proto in benchmark_mutations(art, ("threshold", "leaf"), 4, seed=3):
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=df)
        cert = res.certificates["probabilities"]
        if cert.status == "refuted":
            refuted[kind] = refuted.get(kind, 0) + 1
            row = pd.DataFrame({k: [np.ravel(v)[0]] for k, v in cert.counterexample["inputs"].items()})[
                list(df.columns)]
            assert np.abs(_sklearn(est, row, df) - _onnx(mutated, row)).max() > cert.tolerance, kind
        else:
            assert cert.status == "certified", (kind, cert.reason)
            rows = _dense(res.domain, df, 5_000, 1)
            assert np.abs(_sklearn(est, rows, df) - _onnx(mutated, rows)).max() <= cert.bound, kind
    assert refuted.get("leaf") == 4, refuted
    # the benchmark's moved thresholds here all sit on the integer column between two integers: one moved on the
    # numeric column `score` instead
    mutated = portable.load(_move_score_threshold(art.proto, 0.4))
    res = portable.certify(est, mutated, data=df)
    cert = res.certificates["probabilities"]
    assert cert.status == "refuted" and cert.counterexample["verified"] is True, cert.reason
    row = pd.DataFrame({k: [np.ravel(v)[0]] for k, v in cert.counterexample["inputs"].items()})[list(df.columns)]
    assert np.abs(_sklearn(est, row, df) - _onnx(mutated, row)).max() > cert.tolerance


def _move_score_threshold(proto, by: float):
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    node = next(n for n in m.graph.node if n.op_type == "TreeEnsemble")
    at = {a.name: a for a in node.attribute}
    feats = list(at["nodes_featureids"].ints)
    modes = numpy_helper.to_array(at["nodes_modes"].t).reshape(-1)
    splits = numpy_helper.to_array(at["nodes_splits"].t).copy()
    i = next(k for k in range(len(feats)) if feats[k] == 1 and modes[k] == 0)  # the frame's `score` column
    splits[i] += by
    node.attribute.remove(at["nodes_splits"])
    node.attribute.append(helper.make_attribute("nodes_splits", numpy_helper.from_array(splits)))
    return m


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), iters=st.integers(3, 25))
def test_hgb_category_certificate_sound_against_dense_sampling(seed: int, iters: int) -> None:
    est, art, df = _fit(seed, iters)
    res = portable.certify(est, art, data=df)
    cert = res.certificates["probabilities"]
    assert cert.bound is not None, cert.reason
    rows = _dense(res.domain, df, 5_000, seed)
    diff = np.abs(_sklearn(est, rows, df) - _onnx(art, rows)).max()
    assert diff <= cert.bound
    assert cert.status == "certified", cert.reason


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
