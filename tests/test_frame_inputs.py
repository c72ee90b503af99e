"""DataFrame pipelines as tutorials write them: column names that are not identifiers, float64 conversions."""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

import portable

rng = np.random.default_rng(0)
N = 300
ODD = ["ville é", "plan.x", "âge col", "Annual Income ($)", "x0"]
FRAME = pd.DataFrame({ODD[0]: rng.choice(list("abc"), N), ODD[1]: rng.choice(list("xy"), N),
                      ODD[2]: rng.normal(size=N), ODD[3]: rng.lognormal(size=N), ODD[4]: rng.normal(size=N)})
Y2, Y3 = rng.integers(0, 2, N), rng.integers(0, 3, N)


def _pipe(final):
    return make_pipeline(ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ODD[:2]),
                                            ("n", StandardScaler(), ODD[2:])]), final)


def _feeds(art, frame):
    return {s.name: (frame[s.name].to_numpy().astype(str) if s.is_string else
                     frame[s.name].to_numpy().astype(s.dtype)).reshape(-1, 1) for s in art.signature.inputs}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("final,y", [(LogisticRegression(), Y2), (LogisticRegression(), Y3),
                                     (SVC(probability=True, random_state=0), Y3)], ids=["lr2", "lr3", "svc3"])
def test_odd_column_names_and_float64(tmp_path, dtype, final, y):
    model = _pipe(final).fit(FRAME, y)
    art = portable.convert(model, "onnx", dtype=dtype)  # checks by default
    assert art.signature.input_names == ODD  # DESIGN section 4: the source model's input names
    assert art.report.equivalent
    out = art.run(_feeds(art, FRAME))
    assert (out["label"] == model.predict(FRAME)).all()
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(FRAME),
                               atol=1e-5 if dtype == "float32" else 1e-9)
    path = tmp_path / "m.onnx"
    art.save(path)
    again = portable.load(path)
    assert again.signature.input_names == ODD
    assert portable.check(model, again, data=FRAME).equivalent


def test_odd_names_tree_native_categories():
    frame = FRAME.assign(**{ODD[0]: FRAME[ODD[0]].astype("category"), ODD[1]: FRAME[ODD[1]].astype("category")})
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype").fit(frame, Y2)
    art = portable.convert(model, "onnx")
    assert art.signature.input_names == ODD and art.report.equivalent
