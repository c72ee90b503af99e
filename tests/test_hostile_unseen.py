"""Hostile inputs beyond the first corpus (issue 12, verified on files nobody had seen): each case of
`tests/hostile/unseen.py` runs through the real command line, all of them in one subprocess under RLIMIT_AS and a
timeout, and must end with its exit code, one short paragraph naming the problem (and the file), no traceback, no
crash, nothing lost."""
from __future__ import annotations

import pytest

from .hostile.unseen import CASES, build_unseen
from .test_hostile_inputs import assert_case_clean, harness_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("unseen")
    cases = build_unseen(base / "files")
    return harness_results(base, cases)


@pytest.mark.parametrize("name", list(CASES))
def test_unseen_hostile_input(results, name):
    assert_case_clean(results, name)


@pytest.mark.parametrize("name", ["steps_text", "steps_triples", "steps_empty", "transformers_text"])
def test_a_malformed_estimator_in_memory_is_a_portable_error(name):
    """The same malformed models handed over in memory: portable.load/convert raise a PortableError, never
    scikit-learn's IndexError/ValueError."""
    import portable
    from portable.errors import PortableError

    from .hostile.unseen import malformed_models

    model = malformed_models()[name]
    for call in (lambda: portable.load(model), lambda: portable.convert(model, to="onnx", samples=20)):
        with pytest.raises(PortableError, match="cannot describe this Pipeline"):
            call()


def test_an_error_quoting_a_huge_value_stays_one_short_paragraph():
    """A PortableError's message keeps its start and its end and says how much of the middle it cut."""
    from portable.errors import MAX_MESSAGE, PortableError

    err = PortableError("could not convert '" + "a" * 10 ** 7 + "' to a number", path="rows.csv")
    text = str(err)
    assert len(text) < MAX_MESSAGE + 100 and text.startswith("rows.csv: could not convert 'aaa")
    assert text.endswith("' to a number") and "characters cut" in text
    assert str(PortableError("short")) == "short"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import portable

    base = tmp_path_factory.mktemp("api")
    X = np.random.default_rng(0).normal(size=(60, 3))
    art = portable.convert(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), to="onnx", samples=50)
    art.save(base / "m.onnx")
    portable.convert(base / "m.onnx", to="nnef", samples=50).save(base / "m.nnef")
    np.save(base / "rows.npy", X)
    (base / "rows.csv").write_text("X0,X1,X2\n1,2,3\n")
    return base


@pytest.mark.parametrize("call, named", [
    # ValueError: embedded null byte (from os.stat)
    (lambda b, portable, np: portable.load(str(b / "m\0.onnx")), "NUL byte"),
    (lambda b, portable, np: portable.check(b / "m.onnx", b / "m.onnx", data=str(b / "rows\0.npy")), "NUL byte"),
    # ValueError: invalid literal for int()
    (lambda b, portable, np: portable.check(b / "m.onnx", b / "m.onnx", data=str(b / "rows.csv"), chunk_rows="a"),
     "chunk_rows"),
    # ValueError / TypeError from onnxruntime's feed conversion and from portable's NNEF executor (numpy matmul)
    (lambda b, portable, np: portable.load(b / "m.onnx").run({"X": "abc"}), "could not run on these inputs"),
    (lambda b, portable, np: portable.load(b / "m.onnx").run({"X": np.array([[object()] * 3])}),
     "could not run on these inputs"),
    (lambda b, portable, np: portable.load(b / "m.nnef").run({"X": np.ones((2, 5))}), "could not run on these inputs"),
])
def test_python_api_bad_arguments_are_portable_errors(models, call, named):
    import numpy as np

    import portable
    from portable.errors import PortableError

    with pytest.raises(PortableError, match=named):
        call(models, portable, np)
