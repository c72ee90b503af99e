"""The report as a notebook shows it: verdict first, per-output errors, counterexamples, error distribution plot."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import portable


@pytest.fixture(scope="module")
def model_and_artifacts():
    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(X, y)
    good = portable.convert(est, to="onnx", dtype="float32", check=False)
    broken = onnx.ModelProto()
    broken.CopyFrom(good.proto)
    for node in broken.graph.node:  # one coefficient of the linear classifier changed by 1e-2
        for attr in node.attribute:
            if attr.name == "coefficients":
                attr.floats[0] += 1e-2
    return est, good, portable.load(broken)


def test_html_of_a_failed_check_has_every_part(model_and_artifacts):
    est, _, broken = model_and_artifacts
    report = portable.check(est, broken, samples=500, seed=1)
    assert not report.equivalent
    page = report._repr_html_()
    verdict = page.upper().find("NOT EQUIVALENT")
    table = page.find("<table")
    assert 0 <= verdict < table, "the verdict comes first"
    for name in ("probabilities", "label"):
        assert name in page[table:]
    assert "counterexample 1" in page and "<details>" in page
    svgs = re.findall(r'<svg class="portable-hist"[^>]*aria-label="error distribution of (\w+)"', page)
    assert svgs == ["probabilities"]  # one plot per numeric output; labels compare exactly
    assert "#cf222e" in page.split('<svg class="portable-hist"', 1)[1]  # bars beyond the tolerance in red
    hist = report.to_dict()["error_histograms"]["probabilities"]
    assert sum(hist["counts"]) == report.rows
    assert sum(hist["counts"][-2:]) == next(o["mismatches"] for o in report.outputs if o["name"] == "probabilities")


def test_html_of_a_passing_check(model_and_artifacts):
    est, good, _ = model_and_artifacts
    report = portable.check(est, good, samples=300)
    assert report.equivalent
    page = report._repr_html_()
    assert page.startswith('<div class="portable-report">')
    assert "EQUIVALENT" in page[:300].upper() and "NOT EQUIVALENT" not in page.upper()
    assert "counterexample" not in page
    hist = report.error_histograms()["probabilities"]
    assert sum(hist["counts"][-2:]) == 0 and sum(hist["counts"]) == report.rows


def test_export_returns_the_report_and_saves_only_when_equivalent(model_and_artifacts, tmp_path):
    est, _, _ = model_and_artifacts
    X, _ = load_iris(return_X_y=True)
    report = portable.export(est, tmp_path / "m.onnx", data=X)
    assert report.equivalent and (tmp_path / "m.onnx").is_file()
    assert "<svg" in report._repr_html_()
    np.testing.assert_array_equal(portable.load(tmp_path / "m.onnx").run({"X": X})["label"], est.predict(X))
