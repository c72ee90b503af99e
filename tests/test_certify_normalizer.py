"""Normalizer (x / ||x||) after scalers (issue 19, an unseen model): converted, checked and certified.

x / ||x|| is discontinuous at 0, and a centring scaler maps rows of the data's box to (nearly) 0. A float32
artifact that computes the scalers in float32 (skl2onnx's Scaler) gives such a row any direction: it differed from
scikit-learn by up to 491 (l1). portable computes the scalers and the normaliser in float64, as scikit-learn does
(`preprocessing.ScaledNormalizer`): the artifact then agrees on rows next to the centre (onnxruntime against
scikit-learn, dense rows), and the certificate proves it (read at the normaliser's output, after checking that the
graph computes scikit-learn's float64 operations with its constants). An artifact computed step by step in float32,
or with a changed constant, is still refuted with a counterexample both real libraries reproduce."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import portable
from portable.certification.core import CERTIFIED, REFUTED


def _fit(norm: str, centred: bool):
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, Normalizer, RobustScaler, StandardScaler

    X, y = make_regression(600, 8, noise=3, random_state=5)
    if not centred:
        X = np.abs(X) + 1.0  # positive rows: ||x|| >= 1 over the box
    steps = [StandardScaler(with_mean=False), MaxAbsScaler()] + ([RobustScaler(quantile_range=(10, 90))]
                                                                  if centred else [])
    return make_pipeline(*steps, Normalizer(norm=norm), Ridge()).fit(X, y), X


def _onnx_run(art, inputs):
    import onnxruntime as ort

    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    spec = sess.get_inputs()[0]
    x = np.asarray(inputs[spec.name], dtype=np.float32 if spec.type == "tensor(float)" else np.float64)
    return np.asarray(sess.run(None, {spec.name: x})[0], float).reshape(-1)


def _dense_rows(est, X, dtype=np.float32, n=2000):
    """Rows of the data's box next to the centring scaler's centre (relative steps 0 to 1e-2) and uniform rows, in
    the artifact's input dtype."""
    raw = np.ones(X.shape[1])
    for s in est[:-2]:  # the raw row the scalers map to 0 (or to their offset)
        if hasattr(s, "center_"):
            raw = s.center_ * raw
    for s in reversed(est[:-2]):
        if not hasattr(s, "center_"):
            raw = raw * s.scale_
    rng = np.random.default_rng(1)
    parts = [raw * (1 + e * rng.standard_normal((n, len(raw)))) for e in (0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-3, 1e-2)]
    parts.append(rng.uniform(X.min(0), X.max(0), (10 * n, X.shape[1])))
    rows = np.clip(np.vstack(parts), X.min(0), X.max(0))
    return rows.astype(dtype).astype(np.float64)


def _largest_difference(est, art, rows):
    return float(np.max(np.abs(est.predict(rows) - _onnx_run(art, {"X": rows}))))


def _step_by_step(est, X):
    """The artifact portable shipped before: the scalers converted on their own (float32), then the rest."""
    import onnx.compose
    from sklearn.pipeline import Pipeline

    k = len(est.steps) - 2
    a = portable.convert(Pipeline(est.steps[:k]), to="onnx", dtype="float32", check=False, data=X).proto
    b = portable.convert(Pipeline(est.steps[k:]), to="onnx", dtype="float32", check=False,
                         data=Pipeline(est.steps[:k]).transform(X)).proto
    for m in (a, b):
        del m.metadata_props[:]
    merged = onnx.compose.merge_models(a, b, io_map=[(a.graph.output[0].name, "X")], prefix1="s_", prefix2="n_")
    merged.graph.input[0].name = "X"
    for node in merged.graph.node:
        node.input[:] = ["X" if i == "s_X" else i for i in node.input]
    merged.graph.output[0].name = "variable"
    for node in merged.graph.node:
        node.output[:] = ["variable" if o == "n_variable" else o for o in node.output]
    return portable.load(merged)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_the_float32_artifact_agrees_next_to_the_scalers_centre(norm):
    """Before: differences of 290-490 on these rows (the scalers in float32); now the float32 Ridge's rounding."""
    warnings.filterwarnings("ignore")
    est, X = _fit(norm, centred=True)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    assert _largest_difference(est, art, _dense_rows(est, X)) < 1e-3


def test_the_sampled_check_finds_it_equivalent_for_many_seeds():
    warnings.filterwarnings("ignore")
    est, X = _fit("l1", centred=True)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    for seed in range(6):
        assert portable.check(est, art, data=X, seed=seed).equivalent


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_certified_within_the_checks_tolerance_and_sound(norm):
    """float32: the certificate within the sampled check's own tolerances (its atol scaled by the outputs' size:
    near output 0, atol = 1e-4 is below the float32 Ridge's own rounding bound); never below the largest
    difference of dense rows."""
    warnings.filterwarnings("ignore")
    est, X = _fit(norm, centred=True)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    rep = portable.check(est, art, data=X, certify=True)
    assert rep.equivalent
    cert = next(o["certificate"] for o in rep.outputs if o["name"] == "variable")
    assert cert["status"] == CERTIFIED, cert
    assert cert["bound"] >= _largest_difference(est, art, _dense_rows(est, X))


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_float64_certified_and_sound(norm):
    warnings.filterwarnings("ignore")
    est, X = _fit(norm, centred=True)
    art = portable.convert(est, to="onnx", dtype="float64", check=False, data=X)
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == CERTIFIED, cert
    assert cert.bound >= _largest_difference(est, art, _dense_rows(est, X, np.float64, n=500))


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_a_step_by_step_float32_artifact_is_refuted_where_its_input_vanishes(norm):
    warnings.filterwarnings("ignore")
    est, X = _fit(norm, centred=True)
    art = _step_by_step(est, X)
    assert _largest_difference(est, art, _dense_rows(est, X)) > 1.0  # what portable shipped before
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == REFUTED, cert
    ce = cert.counterexample
    assert ce and ce["verified"]
    row = np.asarray(ce["inputs"]["X"], dtype=np.float64)
    assert np.all((row >= X.min(axis=0)) & (row <= X.max(axis=0)))  # a row of the domain (the data's box)
    ya = est.predict(row)
    yb = _onnx_run(art, {"X": row})
    assert np.max(np.abs(ya - yb)) > 1e-4 + 1e-5 * np.max(np.abs(ya)), (ya, yb)  # real, beyond the tolerance


def test_a_changed_centre_is_refuted():
    """The graph's centre moved by 1e-3 of the scale: not scikit-learn's operations, so not read at the
    normaliser's output; the rows next to the centre show the difference."""
    import onnx
    from onnx import numpy_helper

    warnings.filterwarnings("ignore")
    est, X = _fit("l2", centred=True)
    proto = onnx.ModelProto()
    proto.CopyFrom(portable.convert(est, to="onnx", dtype="float64", check=False, data=X).proto)
    sub = next(n for n in proto.graph.node if n.op_type == "Sub")
    init = next(i for i in proto.graph.initializer if i.name == sub.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 1e-3, init.name))
    cert = portable.certify(est, portable.load(proto), data=X).certificates["variable"]
    assert cert.status == REFUTED, cert
    assert cert.counterexample and cert.counterexample["verified"]


def test_a_normalizer_away_from_zero_is_certified_and_sound():
    warnings.filterwarnings("ignore")
    est, X = _fit("l2", centred=False)
    art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
    cert = portable.certify(est, art, data=X).certificates["variable"]
    assert cert.status == CERTIFIED, cert
    rng = np.random.default_rng(2)
    rows = rng.uniform(X.min(0), X.max(0), (50000, X.shape[1])).astype(np.float32).astype(np.float64)
    assert cert.bound >= _largest_difference(est, art, rows)


def test_a_float32_normalizer_divides_rows_of_small_norm_as_scikit_learn():
    """scikit-learn leaves a row unnormalised only below 10 eps64 (2.2e-15); the float32 artifact used 10 eps32
    (1.2e-6) and left rows of norm 1e-7 as they were."""
    from sklearn.preprocessing import Normalizer

    warnings.filterwarnings("ignore")
    X = np.random.default_rng(0).normal(size=(50, 4))
    for norm in ("l1", "l2", "max"):
        est = Normalizer(norm=norm).fit(X)
        art = portable.convert(est, to="onnx", dtype="float32", check=False, data=X)
        rows = (X[:10] * 1e-8).astype(np.float32).astype(np.float64)
        import onnxruntime as ort

        sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: rows.astype(np.float32)})[0]
        np.testing.assert_allclose(got, est.transform(rows), rtol=1e-6, atol=1e-7)


def test_least_nonzero_against_every_float32_of_a_window():
    from portable.certification.normalizer import _ops, _replay, least_nonzero
    from sklearn.preprocessing import RobustScaler, StandardScaler

    rng = np.random.default_rng(3)
    X = rng.normal(3.0, 2.0, (200, 3))
    steps = [StandardScaler().fit(X)]
    steps.append(RobustScaler().fit(steps[0].transform(X)))
    chain = [p for s in steps for p in _ops(s)]
    centre = steps[0].mean_ + steps[1].center_ * steps[0].scale_
    lo, hi = centre - 1e-4, centre + 1e-4  # a window of ~1,000 float32 values around each column's zero
    got = least_nonzero(chain, lo, hi, np.float32)
    for j in range(3):
        vals = [np.float32(lo[j])]
        while vals[-1] < hi[j]:
            vals.append(np.nextafter(vals[-1], np.float32(np.inf)))
        vals = np.array([v for v in vals if lo[j] <= v <= hi[j]], dtype=np.float64)
        row = np.tile(centre, (len(vals), 1))
        row[:, j] = vals
        v = np.abs(_replay(chain, row)[:, j])
        assert got[j] == np.min(v[v > 0]), (j, got[j], np.min(v[v > 0]))


@pytest.mark.parametrize("seed", range(4))
def test_random_scaler_chains_certified_or_not_and_never_below_sampled(seed):
    """Random chains of the four scalers (clips included) before a random norm and a Ridge, float32 and float64:
    the artifact agrees next to the zeros of the normaliser's input, and it is certified within the check's
    tolerance with a bound never below the largest difference of dense rows (rows whose l1/l2 norm is within
    rounding of scikit-learn's 2.2e-15 threshold excepted, when the domain has such rows)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(seed)
    X = rng.normal(rng.uniform(-3, 3, 5), rng.uniform(0.1, 4, 5), (400, 5))
    y = X @ rng.normal(size=5) + rng.normal(size=400)
    pool = [lambda: StandardScaler(), lambda: RobustScaler(), lambda: MaxAbsScaler(clip=bool(rng.integers(2))),
            lambda: MinMaxScaler((-1, 1), clip=bool(rng.integers(2))), lambda: StandardScaler(with_mean=False)]
    steps = [pool[i]() for i in rng.choice(len(pool), int(rng.integers(1, 4)))]
    est = make_pipeline(*steps, Normalizer(norm=["l1", "l2", "max"][seed % 3]), Ridge()).fit(X, y)
    # rows whose scaled values are near 0: the raw values each scaler chain maps to 0, per column, found by bisection
    lo, hi = X.min(0), X.max(0)
    from sklearn.pipeline import Pipeline

    pre = Pipeline(est.steps[:-2])
    a, b = lo.copy(), hi.copy()
    sa = np.sign(pre.transform(a[None])[0])
    for _ in range(60):
        m = (a + b) / 2
        s = np.sign(pre.transform(m[None])[0])
        a, b = np.where(s == sa, m, a), np.where(s == sa, b, m)
    zero = (a + b) / 2
    for dtype in ("float32", "float64"):
        dt = np.float32 if dtype == "float32" else np.float64
        rows = np.vstack([zero * (1 + e * rng.standard_normal((500, 5))) for e in (0, 1e-9, 1e-7, 1e-5, 1e-3)]
                         + [rng.uniform(lo, hi, (5000, 5))])
        rows = np.clip(rows, lo, hi).astype(dt).astype(np.float64)
        art = portable.convert(est, to="onnx", dtype=dtype, check=False, data=X)
        worst = _largest_difference(est, art, rows)
        assert worst < 1e-3 * max(1.0, float(np.max(np.abs(est.predict(rows))))), (dtype, worst)
        rep = portable.check(est, art, data=X, certify=True)
        cert = next(o["certificate"] for o in rep.outputs if o["name"] == "variable")
        assert cert["status"] == CERTIFIED, (dtype, cert)
        assert cert["bound"] >= worst, (dtype, cert["bound"], worst)
