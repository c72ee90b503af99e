"""The `portable` command, driven in-process with click's CliRunner: exit codes, messages, no overwrites."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import portable
from portable.cli import cli


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture()
def pkl(tmp_path, iris):
    X, y = iris
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression(max_iter=1000).fit(X, y), protocol=5))
    return path


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_convert_pickle_to_onnx(tmp_path, pkl, iris):
    out = tmp_path / "m.onnx"
    result = run("convert", pkl, "--to", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    X, y = iris
    m = portable.load(out)
    np.testing.assert_array_equal(m.run({"X": X})["label"], LogisticRegression(max_iter=1000).fit(X, y).predict(X))


def test_default_output_name(pkl):
    result = run("convert", pkl, "--to", "onnx", "--no-check")
    assert result.exit_code == 0, result.output
    assert pkl.with_suffix(".onnx").is_file()


def test_existing_output_is_not_overwritten_without_force(tmp_path, pkl):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    result = run("convert", pkl, "--to", "onnx", "-o", out)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert out.read_bytes() == b"precious"
    result = run("convert", pkl, "--to", "onnx", "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"precious"
    portable.load(out)


def test_written_artifacts_have_the_permissions_a_new_file_gets(tmp_path, pkl):
    """Artifacts were written 0600 (ONNX, --report) and NNEF folders 0700, whatever the umask (tempfile's
    mkstemp/mkdtemp): a service running as another user could not read them. Now a new output gets what `open`
    and `mkdir` give under the umask, and a replaced one keeps its mode."""
    import os
    import stat

    old = os.umask(0o027)  # this test's own process
    try:
        run("convert", pkl, "--to", "onnx", "-o", tmp_path / "m.onnx", "--samples", "50",
            "--report", tmp_path / "r.json")
        run("convert", pkl, "--to", "nnef", "-o", tmp_path / "m_nnef", "--samples", "50")
        os.chmod(tmp_path / "r.json", 0o604)
        run("convert", pkl, "--to", "onnx", "-o", tmp_path / "m.onnx", "--samples", "50", "--force",
            "--report", tmp_path / "r.json")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(tmp_path / p).st_mode)  # noqa: E731
    assert mode("m.onnx") == 0o640, oct(mode("m.onnx"))
    assert mode("m_nnef") == 0o750, oct(mode("m_nnef"))
    assert mode("r.json") == 0o604, oct(mode("r.json"))


def test_missing_file(tmp_path):
    result = run("convert", tmp_path / "nope.pkl", "--to", "onnx")
    assert result.exit_code == 1
    assert "nope.pkl" in result.output and "no such file" in result.output


def test_text_file_named_pkl(tmp_path):
    bad = tmp_path / "notes.pkl"
    bad.write_text("these are my notes, not a model\n")
    result = run("convert", bad, "--to", "onnx")
    assert result.exit_code == 1
    assert "notes.pkl" in result.output and "pickle" in result.output
    assert not (tmp_path / "notes.onnx").exists()


def test_unfitted_estimator(tmp_path):
    path = tmp_path / "unfitted.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression()))
    result = run("convert", path, "--to", "onnx")
    assert result.exit_code == 1
    assert "not fitted" in result.output and "unfitted.pkl" in result.output


def test_unsupported_estimator(tmp_path, iris):
    from sklearn.manifold import TSNE

    path = tmp_path / "tsne.pkl"
    path.write_bytes(pickle.dumps(TSNE(n_components=2, perplexity=5, max_iter=250).fit(iris[0][:40])))
    result = run("convert", path, "--to", "onnx")
    assert result.exit_code == 1
    assert "TSNE" in result.output and "transductive" in result.output


def test_unsupported_estimator_in_python(iris):
    from sklearn.base import BaseEstimator, RegressorMixin

    class Custom(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            self.coef_ = np.ones(X.shape[1])
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X):
            return X @ self.coef_

    with pytest.raises(portable.PortableError, match="Custom"):
        portable.convert(Custom().fit(*iris), to="onnx")


def test_corrupt_onnx_is_refused(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf")
    result = run("inspect", bad)
    assert result.exit_code == 1
    assert "bad.onnx" in result.output


def test_unknown_target_is_a_usage_error(pkl):
    result = run("convert", pkl, "--to", "tflite")
    assert result.exit_code == 2


def test_inspect_shows_signature_and_provenance(tmp_path, pkl):
    out = tmp_path / "m.onnx"
    assert run("convert", pkl, "--to", "onnx", "-o", out).exit_code == 0
    result = run("inspect", out)
    assert result.exit_code == 0, result.output
    for part in ("onnx model", "probabilities", "portable.source.sha256", "portable.dtype", "opsets"):
        assert part in result.output
    info = json.loads(run("inspect", out, "--json").output)
    assert info["format"] == "onnx"
    assert info["metadata"]["portable.source.format"] == "pickle"
    assert [o["name"] for o in info["signature"]["outputs"]] == ["label", "probabilities"]


def test_inspect_pickle(pkl):
    result = run("inspect", pkl)
    assert result.exit_code == 0, result.output
    assert "pickle model" in result.output and "LogisticRegression" in result.output


def test_formats_lists_registry():
    result = run("formats")
    assert result.exit_code == 0
    for part in ("sklearn", "pickle", "pfa", "onnx", "nnef", "pickle -> sklearn", "sklearn -> onnx"):
        assert part in result.output


def test_report_file(tmp_path, pkl):
    rep = tmp_path / "r.json"
    result = run("convert", pkl, "--to", "onnx", "-o", tmp_path / "m.onnx", "--report", rep)
    assert result.exit_code == 0, result.output
    data = json.loads(rep.read_text())
    assert data["equivalent"] is True and data["outputs"]


def test_demo(tmp_path):
    result = run("demo", "-o", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    assert "equivalent" in result.output
    assert len(list((tmp_path / "demo").glob("*.onnx"))) >= 4
    again = run("demo", "-o", tmp_path / "demo")
    assert again.exit_code == 1 and "--force" in again.output


def test_console_script_is_installed():
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "portable"
    if not exe.exists():
        pytest.skip("portable is not installed as a console script in this environment")
    proc = subprocess.run([str(exe), "convert", "/nonexistent/file.pkl", "--to", "onnx"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "no such file" in proc.stderr
