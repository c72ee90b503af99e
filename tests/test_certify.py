"""Certified equivalence (issue 19): `portable.certify`, `check(certify=True)`, `--certify`, the tree method.

Bounds are checked against the real libraries: scikit-learn's predictions and onnxruntime's on dense rows (every
float32 value next to every threshold, and random rows), never against numbers of our own.
"""
from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

import portable
from portable.errors import PortableError

from .mutants import benchmark_mutations
from .sample_models import SAMPLE_MODELS

TREE_IDS = [name for name, _ in SAMPLE_MODELS if "forest" in name or "boosting" in name]
_BUILT: dict[str, tuple] = {}


def _built(name: str) -> tuple:
    if name not in _BUILT:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _BUILT[name] = dict(SAMPLE_MODELS)[name]()
    return _BUILT[name]


def _dense_rows(est_X: np.ndarray, art: portable.Model, n_random: int = 2000, seed: int = 0) -> np.ndarray:
    """Rows on both sides of every threshold of the artifact (the neighbouring float32 values) plus random rows
    over 1.5x the data's box: where a tree ensemble's difference can be."""
    rng = np.random.default_rng(seed)
    X = np.asarray(est_X, np.float64)
    lo, hi = X.min(0), X.max(0)
    mid, half = (lo + hi) / 2, (hi - lo) * 0.75 + 1e-9
    rows = [mid + rng.uniform(-1, 1, (n_random, X.shape[1])) * half, X]
    for trees in art.input_hints().trees:
        for i in trees.splits:
            c = trees.columns[trees.feature[i]]
            if c[0] != "X":
                continue
            t = np.float32(trees.raw_threshold()[i])
            near = [np.nextafter(t, np.float32(-np.inf)), t, np.nextafter(t, np.float32(np.inf))]
            base = X[rng.integers(0, len(X), 3)].copy()
            for v in near:
                r = base.copy()
                r[:, c[1]] = v
                rows.append(r)
    return np.concatenate(rows).astype(np.float32)


def _max_diff(est: object, art: portable.Model, rows: np.ndarray) -> dict[str, float]:
    """Largest |scikit-learn - onnxruntime| per numeric output on `rows` (labels: 1.0 where any differs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = art.run({"X": rows})
        ref = {"label": est.predict(rows)} if "probabilities" in got else {"variable": est.predict(rows)}
        if "probabilities" in got:
            ref["probabilities"] = est.predict_proba(rows)
    out = {}
    for name, want in ref.items():
        have = np.asarray(got[name]).reshape(np.shape(want))
        if name == "label":
            out[name] = float(np.any(have != want))
        else:
            out[name] = float(np.max(np.abs(have.astype(np.float64) - np.asarray(want, np.float64))))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", TREE_IDS)
def test_sample_tree_models_are_certified(name: str, dtype: str) -> None:
    est, X, _ = _built(name)
    art = portable.convert(est, to="onnx", dtype=dtype, check=False)
    result = portable.certify(est, art)
    for out, cert in result.certificates.items():
        assert cert.status == "certified", (out, cert.reason)
        assert cert.method == "trees"
        assert cert.bound is not None and cert.bound <= cert.tolerance
    # soundness against the real libraries: no row differs by more than the proved bound
    for out, diff in _max_diff(est, art, _dense_rows(X, art)).items():
        cert = result.certificates[out]
        if out == "label":
            assert diff == 0.0 or cert.details.get("near_ties_only")
        else:
            assert diff <= cert.bound, (out, diff, cert.bound)
    text, d = str(result), result.to_dict()
    assert "CERTIFIED" in text and d["certified"] is True
    assert "Certificate" in result._repr_html_()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["random_forest_classifier", "gradient_boosting_regressor",
                                  "gradient_boosting_classifier"])
def test_mutations_are_refuted_with_verified_counterexamples(name: str, dtype: str) -> None:
    est, X, _ = _built(name)
    art = portable.convert(est, to="onnx", dtype=dtype, check=False)
    refuted = 0
    for kind, proto in benchmark_mutations(art, ("threshold", "leaf", "intercept", "label"), 2, seed=1):
        mutated = portable.load(proto)
        result = portable.certify(est, mutated)
        real = _max_diff(est, mutated, _dense_rows(X, mutated))
        for out, cert in result.certificates.items():
            if cert.status == "refuted":
                refuted += 1
                cex = cert.counterexample
                assert cex["verified"] is True
                # the counterexample reproduces with the real libraries
                row = np.asarray(cex["inputs"]["X"], np.float32)
                again = _max_diff(est, mutated, row)[out]
                assert again > 0 and (out == "label" or again > cert.tolerance), (kind, out, again)
            elif cert.status == "certified":  # then no row may differ beyond the bound
                assert real[out] <= (cert.bound or 0.0) or out == "label", (kind, out, real[out], cert.bound)
        if max(v for k, v in real.items() if k != "label") > 1e-3:
            assert result.refuted, (kind, real, {k: c.reason for k, c in result.certificates.items()})
    assert refuted


def test_check_certify_report_json_and_html(tmp_path: Path) -> None:
    est, X, _ = _built("gradient_boosting_classifier")
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    report = portable.check(est, art, samples=200, certify=True)
    assert report.equivalent
    d = json.loads(report.to_json())
    assert d["certification"]["certified"] is True
    for o in d["outputs"]:
        assert o["certificate"]["status"] == "certified" and o["certificate"]["method"] == "trees"
    assert "certificate" in report.to_text() and "Certificate" in report._repr_html_()
    # a mutated artifact: the refutation's counterexample joins the report and the check fails
    (_, proto), = benchmark_mutations(art, ("label",), 1, seed=0)
    bad = portable.check(est, portable.load(proto), samples=50, certify=True)
    assert not bad.equivalent
    assert any(c.get("found_by", "").startswith("certificate") for c in bad.counterexamples)


def test_cli_check_certify(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from portable.cli import cli

    est, X, _ = _built("random_forest_regressor")
    src = tmp_path / "model.pkl"
    src.write_bytes(pickle.dumps(est))
    onnx_path = tmp_path / "model.onnx"
    runner = CliRunner()
    res = runner.invoke(cli, ["convert", str(src), "--to", "onnx", "-o", str(onnx_path), "--certify", "-q"])
    assert res.exit_code == 0, res.output
    rep = tmp_path / "r.json"
    res = runner.invoke(cli, ["check", str(src), str(onnx_path), "--certify", "--samples", "100", "--report",
                              str(rep)])
    assert res.exit_code == 0, res.output
    assert "certified (trees)" in res.output
    assert json.loads(rep.read_text())["outputs"][0]["certificate"]["status"] == "certified"
    art = portable.load(str(onnx_path))
    (_, proto), = benchmark_mutations(art, ("leaf",), 1, seed=3)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(proto.SerializeToString())
    res = runner.invoke(cli, ["check", str(src), str(bad), "--certify", "--samples", "20"])
    assert res.exit_code == 3, res.output
    assert "REFUTED" in res.output


def test_domain_from_user_and_data() -> None:
    est, X, _ = _built("random_forest_regressor")
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    r = portable.certify(est, art, domain={"X": (-1.0, 1.0)})
    assert r.domain.source == "user" and r.certified
    r = portable.certify(est, art, data=X[:50])
    assert r.domain.source == "data"
    col = r.domain.columns[("X", 0)]
    assert col.lo == pytest.approx(float(np.float32(X[:50, 0].min())))
    with pytest.raises(PortableError, match="domain names input 'nope'"):
        portable.certify(est, art, domain={"nope": (0, 1)})
    with pytest.raises(PortableError, match="lo <= hi"):
        portable.certify(est, art, domain={"X": (1.0, 0.0)})


def test_not_a_tree_model_is_not_certifiable_with_a_reason() -> None:
    est, X, _ = _built("svc_probability")  # multiclass Platt probabilities: no method reads them (k-NN now has one)
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    r = portable.certify(est, art)
    cert = r.certificates["probabilities"]
    assert cert.status == "not certifiable" and cert.reason


def _random_model(kind: str, seed: int) -> tuple[object, np.ndarray]:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(80, 3)) * rng.choice([1e-3, 1.0, 1e3]), 2)  # ties and repeated values
    y = X[:, 0] * rng.normal() + np.sin(X[:, 1]) * 50 + rng.normal(size=80)
    depth = int(rng.integers(1, 6))
    if kind == "tree":
        est = DecisionTreeRegressor(max_depth=depth, random_state=seed)
    elif kind == "forest":
        est, y = RandomForestClassifier(4, max_depth=depth, random_state=seed), (y > np.median(y)).astype(int)
    elif kind == "gb_reg":
        est = GradientBoostingRegressor(n_estimators=5, max_depth=depth, random_state=seed)
    elif kind == "xgb":  # sums in float32: its rounding is part of the bound
        import xgboost as xgb

        est = xgb.XGBRegressor(n_estimators=8, max_depth=depth, random_state=seed)
    else:
        est, y = GradientBoostingClassifier(n_estimators=4, max_depth=depth, random_state=seed), np.digitize(
            y, np.quantile(y, [0.33, 0.66]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y), X


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["tree", "forest", "gb_reg", "gb_clf", "xgb"]),
       dtype=st.sampled_from(["float32", "float64"]), mutate=st.sampled_from([None, "threshold", "leaf"]))
def test_bound_is_never_below_the_largest_sampled_difference(seed: int, kind: str, dtype: str,
                                                              mutate: str | None) -> None:
    """Soundness: on random trees (correct or mutated), the proved bound is at least the largest difference
    scikit-learn and onnxruntime show on dense rows (every float32 value next to every threshold, random rows)."""
    est, X = _random_model(kind, seed)
    art = portable.convert(est, to="onnx", dtype=dtype, check=False)
    if mutate:
        muts = benchmark_mutations(art, (mutate,), 1, seed)
        if muts:
            art = portable.load(muts[0][1])
    result = portable.certify(est, art)
    real = _max_diff(est, art, _dense_rows(X, art, n_random=3000, seed=seed))
    for out, cert in result.certificates.items():
        if out == "label" or cert.bound is None:
            continue
        assert real[out] <= cert.bound, (out, real[out], cert.bound, cert.status)
        if cert.status == "certified":
            assert real[out] <= cert.tolerance


TREE_PIPELINES = ["titanic_random_forest_ordinal", "titanic_gradient_boosting", "titanic_lightgbm_ordinal_pipeline",
                  "house_gradient_boosting", "house_hist_gradient_boosting", "house_lightgbm"]


@pytest.mark.parametrize("name", TREE_PIPELINES)
def test_tree_pipelines_are_certified_through_their_encoders(name: str) -> None:
    """Pipelines of imputers, scalers and one-hot/ordinal encoders before trees, converted in float64: both
    sides are read as tree ensembles over the raw columns (categories as membership splits, scalers by their
    exact arithmetic) and certified; the bound holds on the training rows with the real libraries."""
    import pandas as pd

    from .pipelines import build

    pipe, df, held = build(name)
    art = portable.convert(pipe, to="onnx", dtype="float64", check=False, data=df)
    result = portable.certify(pipe, art, data=df)
    assert any(c.categories for c in result.domain.columns.values())
    rows = pd.concat([df, held]).dropna()  # the domain holds no missing values (imputers are outside it)
    for (name_, _), col in result.domain.columns.items():
        if col.categories:
            rows = rows[rows[name_].astype(str).isin([str(c) for c in col.categories])]
    assert len(rows) > 50
    feeds = {s.name: rows[[s.name]].to_numpy().astype(str if s.is_string else s.dtype)
             for s in art.signature.inputs}
    got = art.run(feeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = {"label": pipe.predict(rows)} if "label" in got else {"variable": pipe.predict(rows)}
        if "probabilities" in got:
            want["probabilities"] = pipe.predict_proba(rows)
    for out, cert in result.certificates.items():
        assert cert.method == "trees" and cert.status == "certified", (out, cert.reason)
        if out != "label":
            diff = np.abs(np.asarray(got[out], np.float64).reshape(np.shape(want[out])) - want[out]).max()
            assert diff <= cert.bound


def test_xgboost_pipeline_certificate_agrees_with_the_sampled_check() -> None:
    """XGBoost sums in float32 (its rounding is in the bound): a float64 artifact of an XGBoost pipeline is
    certified exactly when the sampled check finds it equivalent, and a refutation's counterexample reproduces
    with XGBoost itself."""
    import pandas as pd

    from .pipelines import build

    pipe, df, _ = build("house_xgboost")
    art = portable.convert(pipe, to="onnx", dtype="float64", check=False, data=df)
    # the certificate within the tolerances of the check it is compared with (as `check --certify` makes it)
    from portable.certification.driver import certify_report

    report = portable.check(pipe, art, data=df, samples=200)
    equivalent = report.equivalent
    cert = certify_report(report, pipe, art, data=df).certificates["variable"]
    if cert.status == "refuted":
        cex = cert.counterexample
        row = pd.DataFrame({k: [v[0][0]] for k, v in cex["inputs"].items()})[list(df.columns)]
        row = row.astype(df.dtypes.to_dict())
        feeds = {s.name: np.asarray(cex["inputs"][s.name]).astype(str if s.is_string else s.dtype)
                 for s in art.signature.inputs}
        assert abs(float(np.ravel(art.run(feeds)["variable"])[0]) - float(pipe.predict(row)[0])) > cert.tolerance
        assert not equivalent
    else:
        assert cert.status == "certified" and equivalent


def test_convert_certify_needs_the_check() -> None:
    est, X, _ = _built("random_forest_regressor")
    with pytest.raises(PortableError, match="certify=True needs check=True"):
        portable.convert(est, to="onnx", check=False, certify=True)
