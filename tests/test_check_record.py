"""`portable.check` records its report in an in-memory ONNX artifact: whenever the artifact is read (its proto,
its metadata, a saved file), it holds the latest check's summary and whole report."""
import json

import onnx
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import portable


@pytest.fixture(scope="module")
def pair():
    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=500).fit(X, y)
    return est, portable.convert(est, to="onnx", check=False, dtype="float32")


def _meta(props) -> dict:
    return {p.key: p.value for p in props}


def test_latest_report_is_in_the_proto_the_metadata_and_the_file(pair, tmp_path):
    est, art = pair
    portable.check(est, art, samples=200, seed=1)
    second = portable.check(est, art, samples=300, seed=2)
    meta = _meta(art.proto.metadata_props)
    assert json.loads(meta["portable.check"]) == json.loads(second.summary_json())
    assert json.loads(meta["portable.report"]) == json.loads(second.to_json())
    assert json.loads(art.metadata["portable.check"])["seed"] == 2
    third = portable.check(est, art, samples=100, seed=3)
    saved = onnx.load(str(art.save(tmp_path / "m.onnx")))
    assert json.loads(_meta(saved.metadata_props)["portable.report"])["seed"] == third.seed == 3


def test_a_value_set_after_a_check_is_not_overwritten(pair):
    est, art = pair
    portable.check(est, art, samples=100, seed=4)
    art.set_metadata("portable.check", '{"mine": 1}')
    meta = _meta(art.proto.metadata_props)
    assert json.loads(meta["portable.check"]) == {"mine": 1}
    assert json.loads(meta["portable.report"])["seed"] == 4
