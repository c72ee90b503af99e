"""A folder batch survives files that crash or hang the process converting them (issue 12): each file runs in a
worker process; a crash (SIGSEGV) or a hang (`--timeout`) costs that file only, every good file is converted,
`summary.json` is always written and names each bad file with its reason.

The crashing, hanging and memory-eating files are of a format registered by a third-party plugin (entry point
`portable.converters`, as any plugin would be) whose loader calls `ctypes.string_at(0)` (a real segmentation
fault, in a library portable does not control), sleeps for ever, or allocates memory until there is none. portable's own loaders are hardened against
the hostile files of tests/test_hostile_inputs.py, so a plugin is the honest way to get a library that crashes.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier

import portable
from portable.cli import cli

from .hostile.files import GOOD_PFA

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
import ctypes
import time
from pathlib import Path

from portable.registry import register_format


@register_format("fragile", extensions=(".crash", ".hang", ".hog"),
                 description="a format whose library crashes, hangs or eats memory")
class Fragile:
    @staticmethod
    def sniff(source):
        return Path(str(source)).suffix in (".crash", ".hang", ".hog")

    @staticmethod
    def load(source, options):
        if str(source).endswith(".crash"):
            ctypes.string_at(0)  # SIGSEGV in the library
        if str(source).endswith(".hog"):
            import numpy as np

            hog = []
            while True:  # the library allocates (and fills) 32 MiB after 32 MiB, for ever
                hog.append(np.ones(32 << 20, np.uint8))
        time.sleep(10 ** 6)  # the library never returns
'''


def _plugin(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    dist = site / "fragile_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fragile_plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[portable.converters]\nfragile = fragile_plugin\n")
    (site / "fragile_plugin.py").write_text(textwrap.dedent(PLUGIN))
    return site


@pytest.fixture(scope="module")
def good_models():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, {"logreg.pkl": LogisticRegression().fit(X, y), "tree.pkl": DecisionTreeClassifier(max_depth=4).fit(X, y),
               "ridge.pkl": Ridge().fit(X, X @ np.array([1.0, -2.0, 0.5, 0.0]))}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_crashing_and_a_hanging_file_do_not_sink_the_folder(tmp_path, good_models, jobs):
    """With one worker the files run one after the other through the same (replaced) worker; with two, in
    parallel. (The hanging file costs --timeout seconds: it runs in the two-worker case only.)"""
    X, models = good_models
    hang = jobs == "2"
    src = tmp_path / "models"
    (src / "sub").mkdir(parents=True)
    for name, est in models.items():
        (src / name).write_bytes(pickle.dumps(est))
    (src / "sub" / "linear.json").write_text(json.dumps(GOOD_PFA))
    (src / "boom.crash").write_bytes(b"model")
    if hang:
        (src / "sub" / "stuck.hang").write_bytes(b"model")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_plugin(tmp_path)), str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "portable", "convert", str(src), "--to", "onnx", "-o", str(out),
                           "--jobs", jobs, "--timeout", "30", "--samples", "100", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some files failed, none was not equivalent
    summary = json.loads((out / "summary.json").read_text())
    rows = {Path(r["model"]).name: r for r in summary["models"]}
    assert set(rows) == {"logreg.pkl", "tree.pkl", "ridge.pkl", "linear.json", "boom.crash"} | (
        {"stuck.hang"} if hang else set())
    for name in ("logreg.pkl", "tree.pkl", "ridge.pkl", "linear.json"):
        assert rows[name]["error"] is None and rows[name]["verdict"] == "equivalent", rows[name]
        assert Path(rows[name]["output"]).is_file()
    assert "crashed" in rows["boom.crash"]["error"] and "SIGSEGV" in rows["boom.crash"]["error"]
    if hang:
        assert "timed out" in rows["stuck.hang"]["error"] and "--timeout" in rows["stuck.hang"]["error"]
    assert summary["counts"] == {"equivalent": 4, "failed": 2 if hang else 1}
    # the converted files compute what scikit-learn computes
    for name, est in models.items():
        got = portable.load(out / name.replace(".pkl", ".onnx")).run({"X": X.astype(np.float32)})
        if hasattr(est, "predict_proba"):
            np.testing.assert_array_equal(got["label"], est.predict(X))
        else:
            np.testing.assert_allclose(got["variable"].ravel(), est.predict(X), rtol=1e-4, atol=1e-4)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_folder_run_skips_its_own_output_folder(tmp_path, good_models):
    X, models = good_models
    src = tmp_path / "D"
    src.mkdir()
    (src / "logreg.pkl").write_bytes(pickle.dumps(models["logreg.pkl"]))
    runner = CliRunner()
    for _ in range(2):
        r = runner.invoke(cli, ["convert", str(src), "--to", "onnx", "-o", str(src / "out"), "--force", "--quiet",
                                "--samples", "100"])
        assert r.exit_code == 0, r.output
        summary = json.loads((src / "out" / "summary.json").read_text())
        assert [Path(m["model"]).name for m in summary["models"]] == ["logreg.pkl"]
    assert not (src / "out" / "out").exists()
    from portable.batch import discover

    # spelled another way (through a symlink) the output folder is still recognised
    os.symlink(src / "out", tmp_path / "alias")
    assert [p.name for p in discover(src, exclude=tmp_path / "alias")] == ["logreg.pkl"]
    # an earlier batch's output folder (it holds a summary.json) is not a folder of sources either
    assert [p.name for p in discover(src, exclude=tmp_path / "elsewhere")] == ["logreg.pkl"]
    r = runner.invoke(cli, ["convert", str(src), "--to", "onnx", "-o", str(src), "--force", "--quiet"])
    assert r.exit_code == 1 and "source folder" in r.output


def test_a_file_that_exhausts_memory_does_not_sink_the_folder(tmp_path, good_models):
    """`--memory-limit`: the worker converting the memory-eating file hits its address-space limit; that file
    fails with "ran out of memory", its worker is replaced, and every good file (after it, in the same single
    worker slot) still converts; summary.json is written."""
    X, models = good_models
    src = tmp_path / "models"
    src.mkdir()
    for name, est in models.items():
        (src / name).write_bytes(pickle.dumps(est))
    (src / "greedy.hog").write_bytes(b"model")  # sorted first: the good files run after it, in a new worker
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_plugin(tmp_path)), str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "portable", "convert", str(src), "--to", "onnx", "-o", str(out),
                           "--jobs", "1", "--memory-limit", "1536M", "--samples", "100", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    rows = {Path(r["model"]).name: r for r in summary["models"]}
    assert "ran out of memory" in rows["greedy.hog"]["error"] and "1.5 GiB" in rows["greedy.hog"]["error"]
    assert "--memory-limit" in rows["greedy.hog"]["error"]
    for name in models:
        assert rows[name]["error"] is None and rows[name]["verdict"] == "equivalent", rows[name]
        assert Path(rows[name]["output"]).is_file()
    assert summary["counts"] == {"equivalent": 3, "failed": 1}


@pytest.mark.parametrize("value", ["lots", "-1G", "100M", "1e400", "nan"])
def test_memory_limit_is_validated(tmp_path, value):
    r = CliRunner().invoke(cli, ["convert", str(tmp_path), "--to", "onnx", "--memory-limit", value])
    assert r.exit_code == 2 and "--memory-limit" in r.output, r.output
    from portable.batch import memory_limit_bytes

    assert memory_limit_bytes("1.5G") == 3 << 29 and memory_limit_bytes(0) == 0 and memory_limit_bytes("8GiB") == 8 << 30
    with pytest.raises(portable.PortableError, match="memory_limit"):
        portable.batch.convert_folder(tmp_path, "onnx", tmp_path / "o", memory_limit=[1])


@pytest.mark.parametrize("ending", ["stop", "error", "sigterm"])
def test_a_worker_that_ends_leaves_sigterm_to_the_system(ending):
    """However a folder worker ends, a SIGTERM during the interpreter's exit must not raise SystemExit inside an
    atexit callback: a CI run printed 'Exception ignored in atexit callback ... SystemExit: 143' from logging's
    shutdown when the parent stopped a worker that was already exiting (the handler stayed installed on every
    path but the plain stop)."""
    code = textwrap.dedent(f"""
        import os, signal
        from portable import batch

        class Conn:
            def recv(self):
                if {ending!r} == "stop":
                    return None
                if {ending!r} == "sigterm":
                    os.kill(os.getpid(), signal.SIGTERM)
                raise RuntimeError("the pipe broke")

        try:
            batch._worker_main(Conn(), {{}})
        except (RuntimeError, SystemExit) as exc:
            print("ended by", type(exc).__name__)
        print("default" if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else "handler still installed")
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "default", proc.stdout
