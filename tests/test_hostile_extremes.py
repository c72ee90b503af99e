"""Hostile inputs and careless command lines of a third pass (issue 12, h23b): ONNX protobuf oddities, file names
that are not UTF-8, option values that click's ranges let through. Each test writes its own files, runs the real
command line in a subprocess with a timeout, and asserts the exit code, one short paragraph naming the problem,
and no traceback (the rules of `test_hostile_inputs._problems`)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .hostile.files import GOOD_PFA, Case
from .test_hostile_inputs import _problems

TIMEOUT = 300  # seconds: generous for a loaded 2-core machine; a hang fails the test, it never blocks the run


def _run(argv: list[str], cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "portable", *argv], cwd=cwd, capture_output=True, text=True,
                          errors="replace", timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return {"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "escaped": None}


def _assert_clean(name: str, argv: list[str], cwd: Path, codes: tuple[int, ...], needle: str) -> dict:
    result = _run(argv, cwd)
    problems = _problems(Case(name, argv, codes, needle), result)
    assert not problems, "\n".join(problems)
    return result


def _identity_onnx(path: Path, rank: int) -> Path:
    import onnx
    from onnx import TensorProto, helper

    shape = [None] + [1] * (rank - 1)
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)  # a valid model: only numpy cannot hold its rows
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("command", ["check", "nnef"])
def test_an_onnx_input_of_more_dimensions_than_numpy_holds(tmp_path, command):
    """An ONNX input of rank 100 (valid for onnx.checker): the checker's `reshape` raised numpy's ValueError
    ('maximum supported dimension for an ndarray is currently 64') as a traceback, from check and convert."""
    path = _identity_onnx(tmp_path / "rank100.onnx", 100)
    argv = (["check", str(path), str(path), "--samples", "20"] if command == "check" else
            ["convert", str(path), "--to", "nnef", "-o", str(tmp_path / "out.nnef"), "--samples", "20"])
    _assert_clean(f"rank 100 input, {command}", argv, tmp_path, (1,), "100 dimensions")
    assert not (tmp_path / "out.nnef").exists()


def test_an_onnx_input_of_many_dimensions_numpy_holds_still_checks(tmp_path):
    path = _identity_onnx(tmp_path / "rank9.onnx", 9)
    _assert_clean("rank 9 input", ["check", str(path), str(path), "--samples", "20"], tmp_path, (0,), "")


@pytest.mark.parametrize("to", ["onnx", "nnef"])
def test_a_source_whose_file_name_is_not_utf8_converts(tmp_path, to):
    """A PFA file named b'p\\xff.pfa' (a Latin-1 name on a UTF-8 system): its name, recorded as the artifact's
    provenance, made protobuf raise UnicodeEncodeError after the whole conversion (a traceback, no artifact)."""
    import json

    import onnx

    name = os.fsdecode(b"p\xff.pfa")
    (tmp_path / name).write_text(json.dumps(GOOD_PFA))
    out = tmp_path / f"out.{to}"
    _assert_clean(f"non-UTF-8 source name to {to}", ["convert", name, "--to", to, "-o", str(out),
                                                      "--samples", "20"], tmp_path, (0,), "")
    if to == "onnx":
        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert meta["portable.source.name"] == "p\\xff.pfa"  # the byte escaped, the rest as it was
    else:
        assert (out / "graph.nnef").is_file()


@pytest.mark.parametrize("value", ["1000000", "536870912"])
def test_a_process_memory_limit_too_small_to_import_is_a_usage_error(tmp_path, value):
    """`--limit max_process_bytes=1000000` capped the command's own address space below what its imports need:
    the dynamic loader's 'failed to map segment' came out as an ImportError traceback (or, through portable's
    optional-import helper, as 'skl2onnx is not installed')."""
    path = tmp_path / "m.pfa"
    path.write_text(__import__("json").dumps(GOOD_PFA))
    _assert_clean(f"max_process_bytes={value}", ["--limit", f"max_process_bytes={value}", "check", str(path),
                                                 str(path), "--samples", "20"], tmp_path, (2,),
                  "max_process_bytes must be at least")


@pytest.mark.parametrize("argv, option", [
    (["serve", "{onnx}", "--max-body-mb", "nan", "--port", "0"], "--max-body-mb"),  # a ValueError traceback
    (["serve", "{onnx}", "--max-body-mb", "inf", "--port", "0"], "--max-body-mb"),  # an OverflowError traceback
    (["serve", "{onnx}", "--body-timeout", "nan", "--port", "0"], "--body-timeout"),  # served, every body timed out
    (["convert", "{folder}", "--to", "onnx", "--timeout", "nan"], "--timeout"),  # exit 1, not a usage error
    (["drift", "{onnx}", "{onnx}", "--psi", "nan"], "--psi"),  # exit 1, not a usage error
])
def test_option_values_click_ranges_let_through_are_usage_errors(tmp_path, argv, option):
    """click's FloatRange admits nan (every comparison with it is false) and inf."""
    import json

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "m.pfa").write_text(json.dumps(GOOD_PFA))
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"")  # never read: the option is refused before
    argv = [a.format(onnx=onnx_path, folder=folder) for a in argv]
    _assert_clean(f"{option} {argv[-3] if option == '--max-body-mb' else argv}", argv, tmp_path, (2,), option)


@pytest.mark.parametrize("suffix", [".pkl", ".skops"])
def test_a_model_the_signature_cannot_describe_is_refused_naming_its_file(tmp_path, suffix):
    """A LogisticRegression whose classes_ is 2-D (a skops archive whose classes_ member was swapped, or a
    pickle): 'LogisticRegression is multi-output/multilabel ...' named no file, unlike every other error of a
    reader (the pickle reader located InputErrors only)."""
    import pickle

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    model.classes_ = np.array([[0, 1], [1, 0]])
    path = tmp_path / f"two_d_classes{suffix}"
    if suffix == ".skops":
        import skops.io as sio

        sio.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model))
    for argv in (["inspect", str(path)], ["convert", str(path), "--to", "onnx", "-o", str(tmp_path / "o.onnx")]):
        result = _assert_clean(f"2-D classes_ {suffix} {argv[0]}", argv, tmp_path, (1,), "multi-output")
        assert result["stderr"].startswith(f"error: {path}: "), result["stderr"]
