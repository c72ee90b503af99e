"""Certificates on pipelines built here, not taken from the sample table (issue 19, independent verification):
random ColumnTransformers (a numeric scaler, optionally PCA / TruncatedSVD / PolynomialFeatures, a one-hot or
ordinal encoder of a string column) before a linear model, converted in float32.

- soundness: a certified bound is never below the largest difference of scikit-learn and onnxruntime on dense
  rows of the domain (uniform, its corners, the categories), and a certified label never differs there outside
  the checker's near-ties;
- a wrong conversion (one coefficient of the ONNX graph changed) that the checker's `compare` shows beyond its
  tolerance on those rows is never certified, and when refuted, its counterexample, run by scikit-learn and
  onnxruntime, differs beyond the tolerance of a check of that row alone."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

import portable
from portable.certification.core import CERTIFIED, REFUTED
from portable.equivalence.compare import compare

FINALS = ["ridge", "lasso", "logistic", "linear_svc", "sgd_regressor"]


def _pipeline(seed: int, final: str, scaler: int, extra: int, onehot: bool):
    from sklearn import decomposition, linear_model, preprocessing, svm
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(seed)
    n, k = 300, int(rng.integers(2, 5))
    df = pd.DataFrame({f"x{j}": rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 10), n) for j in range(k)})
    df["c"] = rng.choice(["a", "b", "c"], n).astype(object)
    num = [f"x{j}" for j in range(k)]
    steps = [[preprocessing.StandardScaler(), preprocessing.MinMaxScaler(), preprocessing.RobustScaler(),
              preprocessing.MaxAbsScaler()][scaler]]
    if extra == 1 and k > 2:
        steps.append(decomposition.PCA(n_components=2))
    elif extra == 2 and k > 2:
        steps.append(decomposition.TruncatedSVD(n_components=2))
    elif extra == 3:
        steps.append(preprocessing.PolynomialFeatures(2))
    enc = preprocessing.OneHotEncoder(handle_unknown="ignore") if onehot else preprocessing.OrdinalEncoder()
    z = df[num].to_numpy()
    score = ((z - z.mean(0)) / z.std(0)) @ rng.normal(0, 1, k) + (df["c"] == "a")
    est = {"ridge": linear_model.Ridge(), "lasso": linear_model.Lasso(alpha=0.05),
           "logistic": linear_model.LogisticRegression(max_iter=1000), "linear_svc": svm.LinearSVC(),
           "sgd_regressor": linear_model.SGDRegressor(random_state=0)}[final]
    y = (score > 0).astype(int) if final in ("logistic", "linear_svc") else score * 10 + 3
    pipe = make_pipeline(ColumnTransformer([("num", make_pipeline(*steps), num), ("cat", enc, ["c"])]), est)
    return pipe.fit(df, y), df


def _rows(df: pd.DataFrame, rng: np.random.Generator, n: int = 1500) -> pd.DataFrame:
    out = {}
    for c in df.columns:
        if c == "c":
            out[c] = rng.choice(["a", "b", "c"], n).astype(object)
        else:
            lo, hi = df[c].min(), df[c].max()
            u = rng.random(n)
            v = np.where(u < 0.15, lo, np.where(u < 0.3, hi, rng.uniform(lo, hi, n)))
            out[c] = v.astype(np.float32).astype(np.float64)  # values the float32 artifact reads exactly
    return pd.DataFrame(out)


def _sklearn(est, rows: pd.DataFrame, outputs) -> dict[str, np.ndarray]:
    got = {}
    for name, kind in outputs:
        if kind == "label":
            got[name] = est.predict(rows)
        elif kind == "probability":
            got[name] = est.predict_proba(rows)
        elif kind == "score":
            got[name] = est.decision_function(rows).reshape(len(rows), -1)
        else:
            got[name] = est.predict(rows).reshape(len(rows), -1)
    return got


def _onnxruntime(art, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        v = rows[i.name].to_numpy()
        feeds[i.name] = (v.astype(str) if i.type == "tensor(string)" else
                         v.astype(np.float32 if i.type == "tensor(float)" else np.float64)).reshape(-1, 1)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def _mutated(art, rng: np.random.Generator):
    """One number of the graph changed by 1% + 1e-3: a float initializer's or a float attribute's (scalers'
    offsets and scales, linear operators' coefficients and intercepts)."""
    proto = copy.deepcopy(art.proto)
    sites = [("init", t) for t in proto.graph.initializer
             if t.data_type in (1, 11) and numpy_helper.to_array(t).size]
    sites += [("attr", a) for node in proto.graph.node for a in node.attribute if len(a.floats)]
    kind, obj = sites[int(rng.integers(len(sites)))]
    if kind == "init":
        a = numpy_helper.to_array(obj).copy()
        j = int(rng.integers(a.size))
        a.reshape(-1)[j] = a.reshape(-1)[j] * 1.01 + 1e-3
        obj.CopyFrom(numpy_helper.from_array(a, obj.name))
    else:
        j = int(rng.integers(len(obj.floats)))
        obj.floats[j] = obj.floats[j] * 1.01 + 1e-3
    return portable.load(proto)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.integers(0, 10_000), final=st.sampled_from(FINALS), scaler=st.integers(0, 3),
       extra=st.integers(0, 3), onehot=st.booleans())
def test_random_affine_pipelines_certificates_agree_with_scikit_learn_and_onnxruntime(seed, final, scaler, extra,
                                                                                     onehot):
    est, df = _pipeline(seed, final, scaler, extra, onehot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False, data=df)
    rng = np.random.default_rng(seed)
    rows = pd.concat([df, _rows(df, rng)], ignore_index=True)
    for converted in (art, _mutated(art, rng)):
        res = portable.certify(est, converted, data=df)
        outputs = [(name, portable.load(est).signature.output(name).kind or "value") for name in res.certificates]
        outputs = [(n, "label" if n == "label" else k) for n, k in outputs]
        a, b = _sklearn(est, rows, outputs), _onnxruntime(converted, rows)
        judged = {r.name: r for r in compare(outputs, a, {n: b[n] for n, _ in outputs}, len(rows))}
        for name, kind in outputs:
            cert = res.certificates[name]
            if cert.status == CERTIFIED:
                assert not judged[name].mismatches, (name, cert.bound, cert.tolerance)
                if kind != "label":
                    observed = float(np.max(np.abs(np.asarray(a[name], float).reshape(len(rows), -1)
                                                   - np.asarray(b[name], float).reshape(len(rows), -1))))
                    assert cert.bound >= observed, (name, cert.bound, observed)
            if cert.status == REFUTED:
                ce = cert.counterexample
                assert ce and ce["verified"]
                row = pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in ce["inputs"].items()})[df.columns]
                row["c"] = row["c"].astype(object)
                ra, rb = _sklearn(est, row, outputs), _onnxruntime(converted, row)
                again = compare(outputs, ra, {n: rb[n] for n, _ in outputs}, 1)
                assert any(r.mismatches for r in again), (name, ce)
        if any(r.mismatches for r in judged.values()):
            assert not res.certified
