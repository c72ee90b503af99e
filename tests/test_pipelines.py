"""The realistic pipelines of `tests/pipelines.py`, converted with `portable.convert(pipe, data=df)` and run
with onnxruntime directly against scikit-learn on held-out rows (unseen categories, missing values), in float32
and float64. A pipeline that portable refuses must be refused with a message, and be listed in `REFUSED` with
the reason (expected failures as data)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tests.pipelines import NAMES, build

# pipelines portable refuses today: name -> the reason (the test checks they are refused, and fails when one
# starts to convert so that the table stays true)
REFUSED: dict[str, str] = {}


def feed(session, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """onnxruntime inputs from a DataFrame: one `[N, 1]` input per column, typed as the artifact says; a missing
    string is the empty string, a missing number NaN."""
    out = {}
    for inp in session.get_inputs():
        if inp.name not in frame.columns:
            raise KeyError(inp.name)
        col = frame[inp.name]
        if inp.type == "tensor(string)":
            v = np.array(["" if pd.isna(x) else str(x) for x in col.astype(object)], dtype=object)
        elif inp.type == "tensor(int64)":
            v = col.to_numpy(dtype=np.int64)
        elif inp.type == "tensor(bool)":
            v = col.to_numpy(dtype=bool)
        else:
            v = pd.to_numeric(col.astype(object), errors="coerce").to_numpy(
                dtype=np.float64 if inp.type == "tensor(double)" else np.float32)
        shape = inp.shape
        out[inp.name] = v.reshape(-1, 1) if len(shape) == 2 else v
    return out


def expected(pipe, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"label_or_value": np.asarray(pipe.predict(frame))}
        if hasattr(pipe, "predict_proba"):
            out["probabilities"] = np.asarray(pipe.predict_proba(frame), dtype=np.float64)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_pipeline_matches_sklearn_in_onnxruntime(name: str, dtype: str) -> None:
    import onnxruntime as ort

    import portable

    pipe, train, held = build(name)
    if name in REFUSED:
        with pytest.raises(portable.PortableError):
            portable.convert(pipe, to="onnx", dtype=dtype, data=train, check=False)
        return
    art = portable.convert(pipe, to="onnx", dtype=dtype, data=train, check=False)
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed(sess, held))))
    want = expected(pipe, held)
    first = got.get("label", got.get("variable"))
    ref = want["label_or_value"]
    if "label" in got:
        np.testing.assert_array_equal(np.asarray(first).ravel().astype(str), ref.ravel().astype(str))
    else:
        tol = 1e-4 if dtype == "float32" else 1e-9
        np.testing.assert_allclose(np.asarray(first, dtype=np.float64).ravel(), ref.astype(np.float64).ravel(),
                                   rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))
    if "probabilities" in want and "probabilities" in got:
        tol = 1e-4 if dtype == "float32" else 1e-9
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=tol, atol=tol)
