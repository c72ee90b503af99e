"""Whole folders: a mixed folder converts in parallel, bad files are reported with their reason, the rest verified."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner

import portable
from portable.cli import cli

from .sample_models import SAMPLE_MODELS

PFA_EXAMPLES = Path(__file__).parent / "data" / "pfa"  # copies of shared/pfa/examples


class _Hostile:
    """Unpickling this would create the sentinel file through os.system."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def _pfa_loads() -> bool:
    try:
        portable.load(PFA_EXAMPLES / "reg_linear_vector.yaml")
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    sentinel = root.parent / "HOSTILE_RAN"
    n = 0
    for i, (name, build) in enumerate(SAMPLE_MODELS[:12]):
        est, X, data = build()
        if data is not None:  # DataFrame models need data to learn string inputs: covered elsewhere
            continue
        if i % 3 == 0:
            joblib.dump(est, root / f"{name}.joblib", compress=("zlib", 3) if i % 2 else 0)
        else:
            (root / f"{name}.pkl").write_bytes(pickle.dumps(est, protocol=2 + i % 4))
        n += 1
    docs = sorted(PFA_EXAMPLES.glob("*.yaml")) + sorted(PFA_EXAMPLES.glob("*.pfa.json"))
    if _pfa_loads():
        for doc in docs:
            shutil.copy(doc, root / doc.name)
            n += 1
    # a model saved twice under the same stem: the outputs must not collide
    est, X, _ = SAMPLE_MODELS[0][1]()
    joblib.dump(est, root / "twice.joblib")
    (root / "twice.pkl").write_bytes(pickle.dumps(est))
    n += 2
    (root / "hostile.pkl").write_bytes(pickle.dumps(_Hostile(sentinel)))
    (root / "corrupt.pkl").write_bytes(pickle.dumps(est)[:57])
    (root / "README.txt").write_text("not a model; ignored")
    return root, sentinel, n + 2


def test_folder_converts_in_parallel_and_reports_bad_files(folder, tmp_path):
    root, sentinel, total = folder
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["convert", str(root), "--to", "onnx", "-o", str(out), "--jobs", "2",
                                      "--samples", "200"])
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output  # two bad files, nothing non-equivalent
    assert not sentinel.exists(), "the hostile pickle ran"
    summary = json.loads((out / "summary.json").read_text())
    rows = {Path(r["model"]).name: r for r in summary["models"]}
    assert len(rows) == total and "README.txt" not in rows
    assert rows["hostile.pkl"]["error"] and "refused" in rows["hostile.pkl"]["error"]
    assert "system" in rows["hostile.pkl"]["error"]
    assert rows["corrupt.pkl"]["error"] and "corrupt.pkl" in rows["corrupt.pkl"]["error"]
    good = [r for n, r in rows.items() if n not in ("hostile.pkl", "corrupt.pkl")]
    assert good and all(r["verdict"] == "equivalent" and r["error"] is None for r in good), \
        [(r["model"], r["verdict"], r["error"]) for r in good if r["verdict"] != "equivalent"]
    for r in good:
        m = portable.load(r["output"])
        assert m.format == "onnx"
    assert (out / "twice.pkl.onnx").is_file() and (out / "twice.joblib.onnx").is_file()
    assert "hostile.pkl" in result.output and "corrupt.pkl" in result.output


def test_summary_is_not_overwritten_without_force(folder, tmp_path):
    root, _, _ = folder
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(next(root.glob("*.pkl")), small / "one.pkl")
    out = tmp_path / "o"
    first = CliRunner().invoke(cli, ["convert", str(small), "--to", "onnx", "-o", str(out)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["convert", str(small), "--to", "onnx", "-o", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    forced = CliRunner().invoke(cli, ["convert", str(small), "--to", "onnx", "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output


def test_empty_folder_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["convert", str(tmp_path), "--to", "onnx"])
    assert result.exit_code == 1 and "no file that portable recognises" in result.output


def test_no_progress_bar_when_not_a_terminal(folder, tmp_path):
    from portable import progress

    with progress.bar("x") as bar:
        assert bar is None  # pytest's stderr is not a terminal
    assert progress.wanted(quiet=True, stream=type("T", (), {"isatty": lambda self: True})()) is False
    assert progress.wanted(quiet=False, stream=type("T", (), {"isatty": lambda self: True})()) is True
