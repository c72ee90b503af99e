"""Certificates for ensembles whose members need different methods (`portable.certification.members`): a soft
VotingClassifier and a StackingClassifier (final logistic regression) of a logistic regression (affine) and a
random forest (trees) behind a ColumnTransformer. The
correct float64 conversion is certified and its bound holds against scikit-learn on real rows; an artifact with
one tree leaf or one member's logistic coefficient changed is refuted with a counterexample that scikit-learn and
onnxruntime reproduce."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import portable

from .pipelines import build


@pytest.fixture(scope="module", params=["titanic_soft_voting", "titanic_stacking"])
def voting(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe, df, held = build(request.param)
        art = portable.convert(pipe, to="onnx", dtype="float64", check=False, data=df)
    return pipe, df, held, art


def _feeds(art, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    return {s.name: rows[[s.name]].to_numpy().astype(str if s.is_string else s.dtype) for s in art.signature.inputs}


def test_voting_and_stacking_of_trees_and_a_linear_model_are_certified(voting) -> None:
    pipe, df, held, art = voting
    result = portable.certify(pipe, art, data=df)
    for out, cert in result.certificates.items():
        assert cert.status == "certified" and cert.method == "members", (out, cert.reason)
    members = result.certificates["probabilities"].details["members"]
    assert sorted(m["method"] for m in members.values()) == ["affine", "trees"]
    rows = pd.concat([df, held]).dropna()
    for (name, _), col in result.domain.columns.items():
        if col.categories:
            rows = rows[rows[name].astype(str).isin([str(c) for c in col.categories])]
    assert len(rows) > 50
    got = np.asarray(art.run(_feeds(art, rows))["probabilities"], np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pipe.predict_proba(rows)
    assert np.abs(got - want).max() <= result.certificates["probabilities"].bound


def _mutated(art, what: str):
    import onnx
    from onnx import numpy_helper

    from portable.formats.onnx import OnnxModel

    m = onnx.ModelProto()
    m.CopyFrom(art.proto)
    if what == "leaf":
        node = next(n for n in m.graph.node if n.op_type.startswith("TreeEnsemble"))
        for a in node.attribute:
            if a.name in ("leaf_weights", "target_weights_as_tensor", "class_weights_as_tensor"):
                w = numpy_helper.to_array(a.t).copy()
                w[np.argmax(np.abs(w))] += 4.0
                a.t.CopyFrom(numpy_helper.from_array(w, a.t.name))
                break
            if a.name in ("target_weights", "class_weights"):
                a.floats[int(np.argmax(np.abs(a.floats)))] += 4.0
                break
        else:
            raise AssertionError("no leaf values")
    else:
        init = next(i for i in m.graph.initializer if i.name == "coef")
        w = numpy_helper.to_array(init).copy()
        w.reshape(-1)[np.argmax(np.abs(w.reshape(-1)))] *= 1.5
        init.CopyFrom(numpy_helper.from_array(w, init.name))
    return OnnxModel(m)


@pytest.mark.parametrize("what", ["leaf", "coefficient"])
def test_a_mutated_member_is_refuted_with_a_verified_counterexample(voting, what: str) -> None:
    pipe, df, _, art = voting
    bad = _mutated(art, what)
    cert = portable.certify(pipe, bad, data=df).certificates["probabilities"]
    assert cert.status == "refuted" and cert.method == "members", cert.reason
    cex = cert.counterexample
    row = pd.DataFrame({k: [np.ravel(v)[0]] for k, v in cex["inputs"].items()})[list(df.columns)]
    row = row.astype(df.dtypes.to_dict())
    got = np.asarray(bad.run(_feeds(bad, row))["probabilities"], np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pipe.predict_proba(row)
    assert np.abs(got - want).max() > cert.tolerance
