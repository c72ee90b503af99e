"""Classifiers fitted on boolean targets predict booleans: the artifact's label is bool, as predict's."""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

import portable

X, y = make_classification(300, 6, random_state=0)


@pytest.mark.parametrize("model", [DecisionTreeClassifier(max_depth=3, random_state=0), LogisticRegression(),
                                   RandomForestClassifier(5, max_depth=3, random_state=0)],
                         ids=["tree", "logreg", "forest"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bool_targets_give_bool_labels(model, dtype):
    model.fit(X, y == 1)
    art = portable.convert(model, "onnx", dtype=dtype)
    assert art.report.equivalent
    label = art.run({"X": X.astype(dtype)})["label"]
    want = model.predict(X)
    assert want.dtype == bool and label.dtype == bool
    assert (label == want).mean() > 0.99


def test_bool_target_dataframe_pipeline_and_nnef():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(list("abc"), 200), "age": rng.normal(40, 10, 200)})
    churn = (frame.age > 40) ^ (frame.city == "b")  # a boolean column, as read from a table
    model = make_pipeline(ColumnTransformer([("c", OneHotEncoder(), ["city"])], remainder="passthrough"),
                          DecisionTreeClassifier(max_depth=4, random_state=0)).fit(frame, churn)
    art = portable.convert(model, "onnx", dtype="float64")
    out = art.run({"city": frame[["city"]].to_numpy().astype(str), "age": frame[["age"]].to_numpy()})
    assert out["label"].dtype == bool and (out["label"] == model.predict(frame)).all()
    numeric = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y == 1)
    nnef = portable.convert(portable.convert(numeric, "onnx", check=False), "nnef")
    assert nnef.report.equivalent
    assert nnef.run({"X": X.astype(np.float32)})["label"].dtype == bool


@pytest.mark.parametrize("model", [DecisionTreeClassifier(max_depth=3, random_state=0), LogisticRegression(),
                                   RandomForestClassifier(5, max_depth=3, random_state=0)],
                         ids=["tree", "logreg", "forest"])
def test_bool_labels_are_certified(model):
    model.fit(X, y == 1)
    cert = portable.certify(model, portable.convert(model, "onnx", check=False), data=X)
    assert cert.certificates["label"].status == "certified", cert.certificates["label"].reason
    # classes swapped in the artifact's table: the certificate does not certify it
    import onnx

    art = portable.convert(model, "onnx", check=False)
    proto = onnx.ModelProto()
    proto.CopyFrom(art.proto)
    for n in proto.graph.node:
        if n.op_type == "Cast" and n.output[0] == "label":
            n.op_type = "Not"
            del n.attribute[:]
            inner = n.input[0]
            cast = onnx.helper.make_node("Cast", [inner], [inner + "_b"], to=onnx.TensorProto.BOOL)
            n.input[0] = inner + "_b"
            proto.graph.node.insert(list(proto.graph.node).index(n), cast)
            break
    from portable.formats.onnx import OnnxModel

    swapped = portable.certify(model, OnnxModel(proto), data=X)
    assert swapped.certificates["label"].status != "certified"
