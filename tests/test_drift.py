"""Data profiles stored in artifacts, `portable drift` (offline, exit 3 past a threshold), and the validation of
request bodies that the server and the drift watch share."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import portable
from portable.cli import cli
from portable.model import Signature, TensorSpec
from portable.profile import DriftThresholds, psi
from tests.sample_models import SAMPLE_MODELS


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tmp = tmp_path_factory.mktemp("drift")
    frame, y = load_wine(return_X_y=True, as_frame=True)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame, y)
    art = portable.convert(est, to="onnx", data=frame, samples=200)
    art.save(tmp / "wine.onnx")
    plain = portable.convert(est, to="onnx", check=False)
    plain.save(tmp / "plain.onnx")
    frame.to_csv(tmp / "train.csv", index=False)
    frame.to_parquet(tmp / "train.parquet")
    shifted = frame.copy()
    shifted["alcohol"] += 1.5  # about 1.8 standard deviations
    shifted.to_parquet(tmp / "shifted.parquet")
    holes = frame.copy()
    holes.loc[::3, "magnesium"] = np.nan
    holes.to_csv(tmp / "holes.csv", index=False)
    return {"tmp": tmp, "frame": frame, "art": art}


def test_profile_is_stored_with_feature_names_and_hash(wine: dict) -> None:
    meta = portable.load(wine["tmp"] / "wine.onnx").metadata
    prof = json.loads(meta["portable.profile"])
    frame = wine["frame"]
    assert prof["rows"] == len(frame) and len(prof["sha256"]) == 64
    feats = prof["inputs"]["X"]["features"]
    assert [f["name"] for f in feats] == list(frame.columns)
    alcohol = feats[0]
    assert alcohol["quantiles"]["0.5"] == pytest.approx(np.median(frame["alcohol"]))  # numpy, not our numbers
    assert alcohol["quantiles"]["0"] == frame["alcohol"].min() and alcohol["quantiles"]["1"] == frame["alcohol"].max()
    assert sum(alcohol["fractions"]) == pytest.approx(1.0)
    assert alcohol["missing_rate"] == 0.0
    assert len(meta["portable.profile"]) < 30_000  # compact


def test_categorical_profile_and_missing_rate() -> None:
    est, frame, _ = dict(SAMPLE_MODELS)["column_transformer_frame"]()
    art = portable.convert(est, to="onnx", data=frame, samples=100)
    prof = json.loads(art.metadata["portable.profile"])
    city = prof["inputs"]["city"]["features"][0]
    assert city["kind"] == "categorical" and city["name"] == "city"
    expected = frame["city"].value_counts(normalize=True)
    assert city["frequencies"] == pytest.approx(expected.to_dict())
    moved = frame.assign(city=np.where(np.arange(len(frame)) % 4 == 0, "oslo", frame["city"]),
                         age=np.where(np.arange(len(frame)) % 5 == 0, np.nan, frame["age"]))
    result = portable.drift(art, moved)
    by = {f["feature"]: f for f in result["features"]}
    assert by["city"]["unseen_share"] == pytest.approx(0.25) and by["city"]["drifted"]
    assert by["age"]["missing_rate"]["change"] == pytest.approx(0.2) and by["age"]["drifted"]
    assert not by["income"]["drifted"]


def test_drift_cli_passes_training_data_and_flags_shift(wine: dict) -> None:
    tmp = wine["tmp"]
    ok = run("drift", tmp / "wine.onnx", tmp / "train.parquet")
    assert ok.exit_code == 0, ok.output
    assert "no drift" in ok.output
    moved = run("drift", tmp / "wine.onnx", tmp / "shifted.parquet", "--json")
    assert moved.exit_code == 3, moved.output
    result = json.loads(moved.output)
    assert result["drifted"] is True
    assert [f["feature"] for f in result["features"] if f["drifted"]] == ["alcohol"]
    holes = run("drift", tmp / "wine.onnx", tmp / "holes.csv")
    assert holes.exit_code == 3 and "magnesium" in holes.output
    # columns are picked by the profile's feature names: another order and an extra column do no harm
    frame = wine["frame"]
    frame[frame.columns[::-1]].assign(target=1).to_csv(tmp / "reordered.csv", index=False)
    assert run("drift", tmp / "wine.onnx", tmp / "reordered.csv").exit_code == 0
    # thresholds are the user's: a loose PSI threshold lets the shift pass
    assert run("drift", tmp / "wine.onnx", tmp / "shifted.parquet", "--psi", "100").exit_code == 0


def test_drift_cli_errors(wine: dict) -> None:
    tmp = wine["tmp"]
    none = run("drift", tmp / "plain.onnx", tmp / "train.csv")
    assert none.exit_code == 1 and "no data profile" in none.output
    ref = run("drift", tmp / "plain.onnx", tmp / "shifted.parquet", "--reference", tmp / "train.csv")
    assert ref.exit_code == 3
    missing = run("drift", tmp / "wine.onnx", tmp / "nope.csv")
    assert missing.exit_code == 1 and "nope.csv" in missing.output
    narrow = tmp / "narrow.npy"
    np.save(narrow, np.zeros((10, 3)))
    bad = run("drift", tmp / "wine.onnx", narrow)
    assert bad.exit_code == 1 and "feature" in bad.output and "Traceback" not in bad.output
    assert run("drift", tmp / "wine.onnx", tmp / "train.csv", "--psi", "-1").exit_code == 2


def test_too_few_rows_give_no_verdict(wine: dict) -> None:
    result = portable.drift(wine["tmp"] / "wine.onnx", wine["frame"].iloc[:10] + 100)
    assert result["drifted"] is None and result["rows"] == 10
    with pytest.raises(portable.PortableError):
        DriftThresholds(psi=float("nan"))


def test_check_stores_the_profile_in_an_in_memory_artifact(wine: dict) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    est = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    art = portable.convert(est, to="onnx", check=False)
    assert "portable.profile" not in art.metadata
    report = portable.check(est, art, data=X, samples=100)
    assert report.equivalent
    assert json.loads(art.metadata["portable.profile"])["rows"] == 150
    assert json.loads(art.metadata["portable.report"])["equivalent"] is True


def test_psi_matches_its_definition() -> None:
    e, a = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    assert psi(e, a) == pytest.approx(sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a)))
    assert psi(e, e) == 0.0


# -- request validation, with hypothesis ----------------------------------------------------------------------------

SIG = Signature((TensorSpec("X", "float32", (None, 3)), TensorSpec("city", "str", (None, 1)),
                 TensorSpec("n", "int64", (None,))), (TensorSpec("y", "float32", (None,)),))

json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                           | st.text(max_size=5), lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(body=st.one_of(json_values, st.dictionaries(st.sampled_from(["X", "city", "n", "z"]), json_values),
                      st.lists(st.dictionaries(st.sampled_from(["X", "city", "n"]), json_values), max_size=4)))
def test_any_json_body_is_scored_or_refused_clearly(body: object) -> None:
    from portable.serving.inputs import RequestError, parse

    try:
        arrays, orient = parse(body, SIG, max_rows=100)
    except RequestError as exc:
        assert exc.status in (413, 422) and exc.problems
        for p in exc.problems:
            assert p["msg"] and (p["field"] is None or p["field"] in ("X", "city", "n", "z"))
        return
    n = len(arrays["X"])
    assert arrays["X"].dtype == np.float32 and arrays["X"].shape == (n, 3)
    assert arrays["city"].shape == (n, 1) and all(isinstance(v, str) for v in arrays["city"].ravel())
    assert arrays["n"].dtype == np.int64 and arrays["n"].shape == (n,)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.lists(st.floats(-1e6, 1e6) | st.none(), min_size=3, max_size=3),
                               st.text(max_size=4), st.integers(-1000, 1000)), min_size=1, max_size=20))
def test_valid_bodies_round_trip_in_both_orientations(rows: list) -> None:
    from portable.serving.inputs import parse

    records = [{"X": x, "city": c, "n": k} for x, c, k in rows]
    columns = {"X": [r[0] for r in rows], "city": [r[1] for r in rows], "n": [r[2] for r in rows]}
    a, ra = parse(records, SIG, max_rows=100)
    b, rb = parse(columns, SIG, max_rows=100)
    assert (ra, rb) == ("records", "columns")
    expected = np.array([[np.nan if v is None else v for v in r[0]] for r in rows], dtype=np.float32)
    for arrays in (a, b):
        np.testing.assert_array_equal(arrays["X"], expected)
        assert arrays["city"].ravel().tolist() == [r[1] for r in rows]
        assert arrays["n"].tolist() == [r[2] for r in rows]


def test_a_single_record_without_its_list_is_accepted() -> None:
    from portable.serving.inputs import RequestError, parse

    arrays, orient = parse({"X": [1, 2, 3], "city": "lyon", "n": 4}, SIG, max_rows=10)
    assert orient == "records" and arrays["X"].shape == (1, 3) and arrays["n"].tolist() == [4]
    with pytest.raises(RequestError) as err:
        parse([{"X": [1, 2, 3], "city": "lyon", "n": 4, "extra": 0}], SIG, max_rows=10)
    assert err.value.problems[0]["field"] == "extra"


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=30), size=st.integers(1, 60))
def test_the_live_window_keeps_exactly_the_last_rows(sizes: list[int], size: int) -> None:
    from portable.profile import build_profile
    from portable.serving.app import Window

    total = sum(sizes)
    X = np.arange(total * 2, dtype=np.float64).reshape(total, 2)
    city = np.array([f"c{i}" for i in range(total)], dtype=object).reshape(-1, 1)
    window = Window(build_profile({"X": X, "city": city}), size)
    start = 0
    for k in sizes:
        window.add({"X": X[start:start + k], "city": city[start:start + k]})
        start += k
    kept = window.arrays()
    keep = min(size, total)
    order = np.argsort(kept["X"][:, 0])
    np.testing.assert_array_equal(kept["X"][order], X[total - keep:])
    assert kept["city"][order].ravel().tolist() == city[total - keep:].ravel().tolist()
