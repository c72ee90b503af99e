"""The equivalence checker: no false alarms on correct conversions, real discrepancies found, the report, the CLI.

Expected values come from scikit-learn and onnxruntime themselves, never from numbers the checker produced.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import portable
from portable.equivalence import check
from portable.cli import cli
from portable.errors import SignatureMismatchError
from portable.model import Model, Signature, TensorSpec

from .sample_models import SAMPLE_IDS, SAMPLE_MODELS


# ---- helpers ---------------------------------------------------------------------------------------------------

def ort_run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an ONNX model with onnxruntime directly (not through portable)."""
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


class Edited(Model):
    """A model that runs `base` and passes its outputs through `edit(inputs, outputs)`: a deliberately wrong
    converter, for tests."""

    format = "edited"

    def __init__(self, base: Model, edit, signature: Signature | None = None) -> None:
        super().__init__()
        self.base, self.edit, self._sig = base, edit, signature

    @property
    def signature(self) -> Signature:
        return self._sig or self.base.signature

    def _run(self, inputs):
        return self.edit(inputs, self.base.run(inputs))


@pytest.fixture(scope="module")
def rf_thousands():
    """A RandomForestRegressor whose targets are in the thousands (the issue's float32 failure)."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import RandomForestRegressor

    X, y = make_regression(300, 5, noise=5, random_state=0)
    return RandomForestRegressor(30, random_state=0).fit(X, y * 20 + 5000), X


@pytest.fixture(scope="module")
def scaled_tree():
    """A MinMaxScaler before a tree: in float32 the scaled rows cross the tree's thresholds (a real
    disagreement that float64 fixes)."""
    from sklearn.datasets import load_diabetes
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    return make_pipeline(MinMaxScaler(), DecisionTreeRegressor(random_state=0)).fit(X, y * 30), X


@pytest.fixture(scope="module")
def logreg():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(X, y)
    return est, X, portable.convert(est, to="onnx", check=False, dtype="float32")


# ---- no false alarms -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,build", SAMPLE_MODELS, ids=SAMPLE_IDS)
def test_correct_conversions_pass_over_20_seeds(name, build):
    est, X, data = build()
    original = portable.load(est, data=data)
    art = portable.convert(est, to="onnx", check=False, dtype="float32", data=data)
    failed = {}
    for seed in range(20):
        rep = check(original, art, samples=150, seed=seed)
        if not rep.equivalent:
            failed[seed] = rep.summary_line()
    assert not failed, failed
    # and the report is about what scikit-learn and onnxruntime compute on the report's own worst row
    assert rep.rows >= 150 and rep.outputs


# ---- real discrepancies ----------------------------------------------------------------------------------------

def test_float32_forest_with_large_targets_fails(rf_thousands, tmp_path):
    """The issue's case: skl2onnx 1.20's own float32 forest (as a user would get it from skl2onnx alone) takes
    other branches than scikit-learn on rows near the rounded thresholds."""
    import subprocess
    import sys

    est, X = rf_thousands
    # skl2onnx as shipped, in a fresh interpreter: portable registers its own tree converters in this one
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    code = ("import pickle, sys, numpy as np, skl2onnx; m = pickle.load(open(sys.argv[1], 'rb')); "
            "open(sys.argv[2], 'wb').write(skl2onnx.to_onnx(m, np.zeros((1, 5), np.float32), "
            "target_opset=21).SerializeToString())")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.pkl"), str(tmp_path / "raw.onnx")], check=True)
    art = portable.load(tmp_path / "raw.onnx")
    rep = check(est, art, samples=300, seed=0)
    assert not rep.equivalent
    out = rep.outputs[0]
    assert out["name"] == "variable" and out["mismatches"] > 0 and out["max_abs_diff"] > out["atol"]
    # the counterexample reproduces with scikit-learn and onnxruntime themselves
    c = rep.counterexamples[0]
    x = np.asarray(c["inputs"]["X"], dtype=np.float32)
    expected = est.predict(x.astype(np.float64))
    got = ort_run(art.proto, {"X": x})["variable"].ravel()
    allowed = out["atol"] + out["rtol"] * np.abs(expected)
    assert (np.abs(got - expected) > allowed).any()


def test_correct_float32_forest_with_large_targets_passes(rf_thousands):
    """portable's float32 forest differs from scikit-learn only by float32 summation (~1e-3 on values near
    5,000): that is float32 computing correctly, not a false verdict."""
    est, _ = rf_thousands
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    rep = check(est, art, samples=300, seed=0)
    assert rep.equivalent, rep.summary_line()
    assert 0 < rep.outputs[0]["max_abs_diff"] < 1e-2


def test_auto_dtype_switches_to_float64_and_says_so():
    """A MinMaxScaler computed in float32 moves rows across the tree's thresholds; float64 fixes it."""
    from sklearn.datasets import load_diabetes
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    est = make_pipeline(MinMaxScaler(), DecisionTreeRegressor(random_state=0)).fit(X, y * 30)
    art = portable.convert(est, to="onnx", samples=300)
    assert art.report.equivalent, art.report.summary_line()
    assert art.dtype == "float64" and art.report.dtype == "float64"
    assert any("switched to float64" in n for n in art.report.notes)
    meta = json.loads({p.key: p.value for p in art.proto.metadata_props}["portable.check"])
    assert meta["equivalent"] is True and meta["dtype"] == "float64"


def test_broken_coefficient_fails_with_a_reproducing_counterexample(logreg):
    est, _, good = logreg
    proto = onnx.ModelProto()
    proto.CopyFrom(good.proto)
    coefs = [a for n in proto.graph.node if n.op_type == "LinearClassifier" for a in n.attribute
             if a.name == "coefficients"]
    assert len(coefs) == 1 and len(coefs[0].floats) == est.coef_.size  # skl2onnx 1.20's layout
    coefs[0].floats[0] += 1e-3  # one coefficient, off by 1e-3
    broken = portable.load(proto)
    assert check(est, good, samples=300).equivalent
    rep = check(est, broken, samples=300, seed=1)
    assert not rep.equivalent
    probs = next(o for o in rep.outputs if o["name"] == "probabilities")
    assert probs["mismatches"] > 0
    c = rep.counterexamples[0]
    assert c["found_by"] == "shrunk by hypothesis" and len(c["inputs"]["X"]) == 1
    x = np.asarray(c["inputs"]["X"], dtype=np.float32)
    want = est.predict_proba(x.astype(np.float64))
    got = ort_run(proto, {"X": x})["probabilities"]
    assert (np.abs(got - want) > probs["atol"] + probs["rtol"] * np.abs(want)).any()


def test_same_seed_same_report_other_seed_other_rows(logreg):
    est, _, art = logreg
    a, b, c = (check(est, art, samples=200, seed=s).to_dict() for s in (3, 3, 4))
    for d in (a, b, c):
        d.pop("seconds")
    assert a == b
    assert a["outputs"] != c["outputs"]


def test_data_rows_are_compared_and_counted(logreg):
    est, X, art = logreg
    rep = check(est, art, samples=200, data=X)
    # the generated rows, the rows of data, and boundary rows (here: both sides of the label boundary)
    assert rep.generation["data"] == len(X) and rep.rows - rep.generation["boundary"] == 200 + len(X)
    assert rep.equivalent and "data" in rep.learned
    rep = check(est, art, samples=100, data=X)  # at most `samples` rows of data, chosen by the seed
    assert rep.generation["data"] == 100


# ---- comparison rules ------------------------------------------------------------------------------------------

def test_label_flip_on_a_tie_is_a_near_tie_not_a_mismatch():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    est = KNeighborsClassifier(4).fit(X, (X[:, 0] > 0).astype(int))
    sk = portable.load(est)

    def flip_ties(inputs, out):  # break 2-2 votes the other way, as another runtime legitimately might
        p = out["probabilities"]
        tie = np.isclose(p[:, 0], p[:, 1])
        out["label"] = np.where(tie, 1 - out["label"], out["label"])
        return out

    rep = check(sk, Edited(sk, flip_ties), samples=400)
    lab = next(o for o in rep.outputs if o["name"] == "label")
    assert rep.equivalent and lab["mismatches"] == 0 and lab["near_ties"] > 0, rep.summary_line()

    def flip_all(inputs, out):
        out["label"] = 1 - out["label"]
        return out

    rep = check(sk, Edited(sk, flip_all), samples=100)
    lab = next(o for o in rep.outputs if o["name"] == "label")
    assert not rep.equivalent and lab["mismatches"] > 0


def test_shapes_compare_strictly(logreg):
    est, _, art = logreg

    def flatten(inputs, out):
        out["probabilities"] = out["probabilities"].reshape(-1)
        return out

    rep = check(est, Edited(art, flatten), samples=50)
    probs = next(o for o in rep.outputs if o["name"] == "probabilities")
    assert not rep.equivalent and "shape" in probs["error"]


def test_user_tolerances_override(rf_thousands):
    est, _ = rf_thousands
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    rep = check(est, art, samples=200, rtol=1e-5)
    assert rep.equivalent and rep.outputs[0]["rtol"] == 1e-5


def _renamed(proto: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    p = onnx.ModelProto()
    p.CopyFrom(proto)
    for node in p.graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]
    for vi in list(p.graph.input) + list(p.graph.output):
        if vi.name == old:
            vi.name = new
    return p


@pytest.mark.parametrize("old,new,words", [("X", "features", ["inputs", "X", "features"]),
                                           ("probabilities", "proba", ["outputs", "probabilities", "proba"])])
def test_signature_mismatch_is_a_clear_error(logreg, old, new, words):
    est, _, art = logreg
    other = portable.load(_renamed(art.proto, old, new))
    with pytest.raises(SignatureMismatchError) as err:
        check(est, other)
    assert all(w in str(err.value) for w in words)


def test_rank_and_width_mismatch(logreg):
    est, _, art = logreg
    sig = art.signature
    wide = Signature((TensorSpec("X", "float32", (None, 7)),), sig.outputs)
    with pytest.raises(SignatureMismatchError, match="dimension 1"):
        check(est, Edited(art, lambda i, o: o, wide))
    flat = Signature((TensorSpec("X", "float32", (None,)),), sig.outputs)
    with pytest.raises(SignatureMismatchError, match="rank"):
        check(est, Edited(art, lambda i, o: o, flat))


def test_float32_and_float64_inputs_are_compatible_and_exact(logreg):
    est, _, art = logreg
    seen = {}

    def spy(inputs, out):
        seen["X"] = np.asarray(inputs["X"])
        return out

    check(portable.load(est), Edited(art, spy), samples=100)
    x = seen["X"]
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.astype(np.float64).astype(np.float32), x)


# ---- the report --------------------------------------------------------------------------------------------

def test_report_layout_and_renderings(scaled_tree):
    est, _ = scaled_tree
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    progress = []
    rep = check(est, art, samples=200, progress=lambda d, t: progress.append((d, t)))
    d = json.loads(rep.to_json())
    for key in ("equivalent", "original", "converted", "samples", "seed", "dtype", "outputs", "counterexamples",
                "notes"):
        assert key in d
    assert d["original"]["format"] == "sklearn" and d["converted"]["format"] == "onnx"
    assert {"name", "kind", "max_abs_diff", "max_rel_diff", "mismatches", "atol", "rtol",
            "worst_row"} <= set(d["outputs"][0])
    assert progress and progress[-1][0] == progress[-1][1]
    line = rep.summary_line()
    assert "\n" not in line and "NOT equivalent" in line and "variable" in line
    summary = json.loads(rep.summary_json())
    assert summary["equivalent"] is False and "variable" in summary["outputs"]
    text = rep.to_text()
    assert "NOT EQUIVALENT" in text and "variable" in text and "counterexample 1" in text
    html = rep._repr_html_()
    assert html.startswith("<div") and "<table>" in html and "variable" in html
    rep.dtype = "float64"
    rep.notes.append("hello")
    assert json.loads(rep.to_json())["dtype"] == "float64" and "hello" in rep.to_text()


# ---- the command line ------------------------------------------------------------------------------------------

def test_cli_check_and_convert_exit_codes(tmp_path, scaled_tree, logreg):
    runner = CliRunner()
    est, _ = scaled_tree
    pkl = tmp_path / "forest.pkl"
    pkl.write_bytes(pickle.dumps(est))
    out = tmp_path / "forest.onnx"
    rep_path = tmp_path / "report.json"
    res = runner.invoke(cli, ["convert", str(pkl), "--to", "onnx", "--dtype", "float32", "--samples", "200",
                              "-o", str(out), "--report", str(rep_path)])
    assert res.exit_code == 3, res.output
    assert not out.exists() and json.loads(rep_path.read_text())["equivalent"] is False
    res = runner.invoke(cli, ["convert", str(pkl), "--to", "onnx", "--dtype", "float32", "--samples", "200",
                              "-o", str(out), "--keep-failed"])
    assert res.exit_code == 3 and out.exists()
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["portable.check"])["equivalent"] is False

    lr, _, _ = logreg
    lr_pkl = tmp_path / "lr.pkl"
    lr_pkl.write_bytes(pickle.dumps(lr))
    lr_onnx = tmp_path / "lr.onnx"
    res = runner.invoke(cli, ["convert", str(lr_pkl), "--to", "onnx", "--samples", "200", "-o", str(lr_onnx)])
    assert res.exit_code == 0, res.output
    assert json.loads({p.key: p.value for p in onnx.load(str(lr_onnx)).metadata_props}["portable.check"])[
        "equivalent"] is True
    res = runner.invoke(cli, ["check", str(lr_pkl), str(lr_onnx), "--samples", "200", "--report", str(rep_path),
                              "--force"])  # the report of the first run exists: --report obeys --force like -o
    assert res.exit_code == 0, res.output
    assert "EQUIVALENT" in res.output and json.loads(rep_path.read_text())["equivalent"] is True
    res = runner.invoke(cli, ["check", str(pkl), str(out), "--samples", "200"])
    assert res.exit_code == 3 and "NOT EQUIVALENT" in res.output


def test_boolean_labels_compare_by_value_with_a_note():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    est = LogisticRegression().fit(X, X[:, 0] > 0)  # boolean classes
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    # portable's artifact predicts booleans as scikit-learn does (tests/test_bool_labels.py)
    assert est.predict(X[:1]).dtype == bool and art.signature.output("label").dtype == "bool"
    assert check(est, art, samples=200).equivalent

    # an artifact with 0/1 labels (skl2onnx 1.20's own conversion gives int64): without portable's final Cast
    import onnx as onnx_

    from portable.formats.onnx import OnnxModel

    proto = onnx_.ModelProto()
    proto.CopyFrom(art.proto)
    cast = next(n for n in proto.graph.node if n.op_type == "Cast" and n.output[0] == "label")
    proto.graph.node.remove(cast)
    for n in proto.graph.node:
        n.output[:] = ["label" if o == cast.input[0] else o for o in n.output]
    next(o for o in proto.graph.output if o.name == "label").type.tensor_type.elem_type = onnx_.TensorProto.INT64
    as_int = OnnxModel(proto)
    assert as_int.signature.output("label").dtype == "int64"
    rep = check(est, as_int, samples=200)
    assert rep.equivalent and any("compared as 0/1" in n for n in rep.notes)

    def negate(inputs, out):
        out["label"] = 1 - np.asarray(out["label"]).astype(np.int64)
        return out

    assert not check(est, Edited(art, negate), samples=100).equivalent


def test_a_converted_model_that_fails_on_some_rows_is_not_equivalent(logreg):
    est, X, art = logreg

    def refuse_long_sepals(inputs, out):  # a runtime error on rows the original handles
        if (np.asarray(inputs["X"])[:, 0] > 7.5).any():
            raise ValueError("refused")
        return out

    rep = check(est, Edited(art, refuse_long_sepals), samples=200, data=X)
    assert not rep.equivalent and any("fails on inputs the original accepts" in n for n in rep.notes)
    c = rep.counterexamples[0]
    assert c["converted"] == {"error": "ValueError: refused"} and c["inputs"]["X"][0][0] > 7.5
    assert c["original"]["label"] == est.predict(np.asarray(c["inputs"]["X"])).tolist()


def test_float32_tolerance_scales_with_the_outputs_magnitude():
    """A correct float32 boosted regressor with targets in the hundreds: rows whose prediction is near 0 carry
    the rounding of the large leaf sums (~2e-4 here), so the absolute tolerance must follow the output's scale."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = make_regression(2000, 20, noise=1.0, random_state=0)
    est = GradientBoostingRegressor(random_state=0).fit(X, y)
    art = portable.convert(est, to="onnx", check=False, dtype="float32")
    rep = check(est, art, samples=1000, seed=0)
    assert rep.equivalent, rep.summary_line()
    out = rep.outputs[0]
    assert out["max_abs_diff"] > 1e-4 and out["atol"] > 1e-4  # beyond the unscaled floor, within the scaled one
