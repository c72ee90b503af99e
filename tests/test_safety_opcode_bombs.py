"""Opcode bombs: a small pickle made of millions of cheap opcodes (MARK/EMPTY_LIST/APPENDS, a run of BININT,
NONE/POP) is refused with the limit `max_pickle_opcodes` named, exit 1, in bounded time, by `audit`, `inspect`
and `convert`, plain or joblib-compressed.

Before the limit, each opcode cost portable's Python-level readers (the audit's static scan, joblib's
unpickler for compressed files, the pass's swaps over a list of millions of lists, the "not a model" message's
look at every item) microseconds: a 64 MiB file took `audit` and `inspect` minutes. The files are written by the
tests; the limit is lowered through PORTABLE_LIMITS so that each file is far past it while staying a few MB,
and every run is bounded by the subprocess timeout (no timed assertions).
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zlib

import pytest

import portable
from portable.limits import LIMITS, LimitError, override

#: Opcodes each test file holds, and the limit the runs are given: the files are 20 times past it.
OPS = 2_000_000
LIMIT = 100_000

_PROTO = b"\x80\x04"
#: (name, bytes) of bombs of cheap opcodes, each a valid pickle that the stdlib unpickler loads.
BOMBS = {
    # a list filled with empty lists by MARK EMPTY_LIST APPENDS, three bytes each
    "mark_empty_list_appends": _PROTO + b"]" + b"(]e" * (OPS // 3) + b".",
    # a long run of BININT pushed after a MARK, then one LIST
    "binint_run": _PROTO + b"(" + b"J\x01\x00\x00\x00" * (OPS // 1) + b"l.",
    # NONE POP, one byte each: nothing is ever built
    "none_pop": _PROTO + b"N0" * (OPS // 2) + b"N.",
    # one list appended to itself through the memo
    "memo_get_append": _PROTO + b"]\x94" + b"h\x00a" * (OPS // 2) + b".",
}


def _run(args: list[str], limit: int | None = LIMIT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if limit is not None:
        env["PORTABLE_LIMITS"] = f"max_pickle_opcodes={limit}"
    return subprocess.run([sys.executable, "-m", "portable", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_the_bombs_are_valid_pickles():
    """Control: each file is an ordinary pickle the stdlib loads (in well under the test's timeouts)."""
    for data in BOMBS.values():
        pickle.loads(data)


#: (command, bomb): `audit` scans every file's opcodes in Python; `inspect` and `convert` load a plain pickle with
#: the C unpickler (the file's size bounds that work: NONE/POP and a BININT run load at C speed and are then refused
#: as "not a model"), and the limit stops the Python-level swaps over the lists it built.
CASES = [("audit", name) for name in sorted(BOMBS)] + [
    (command, name) for command in ("inspect", "convert") for name in ("mark_empty_list_appends", "memo_get_append")]


@pytest.mark.parametrize(("command", "name"), CASES)
def test_opcode_bomb_is_refused_with_the_limit_named(tmp_path, name, command):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(BOMBS[name])
    args = {"audit": ["audit", str(path)], "inspect": ["inspect", str(path)],
            "convert": ["convert", str(path), "--to", "onnx", "-o", str(tmp_path / "out.onnx")]}[command]
    run = _run(args)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback" not in out
    assert "beyond the limit max_pickle_opcodes=100,000" in out, out
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("name", ["none_pop", "binint_run"])
def test_compressed_opcode_bomb_through_joblibs_unpickler(tmp_path, name):
    """A compressed pickle is read by joblib's pure-Python unpickler: the same limit stops it (the stream is far
    below max_compression_ratio's 64 MiB floor, so only the opcode count can)."""
    path = tmp_path / f"{name}.joblib"  # what joblib.dump(..., compress=...) writes: a zlib stream
    path.write_bytes(zlib.compress(BOMBS[name], 9))
    for args in (["inspect", str(path)], ["audit", str(path)]):
        run = _run(args)
        out = run.stdout + run.stderr
        assert run.returncode == 1 and "Traceback" not in out, out
        assert "beyond the limit max_pickle_opcodes=100,000" in out, out


def test_the_limit_is_a_documented_default_and_overridable(tmp_path):
    """From Python: LimitError naming the limit; raised above the file's count, the same file loads (and is then
    refused only for not being a model)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "`max_pickle_opcodes` | 10,000,000 |" in readme
    assert LIMITS.max_pickle_opcodes == 10_000_000
    path = tmp_path / "list.pkl"
    path.write_bytes(BOMBS["mark_empty_list_appends"])
    with override(max_pickle_opcodes=LIMIT):
        with pytest.raises(LimitError) as err:
            portable.load(path)
        assert err.value.limit == "max_pickle_opcodes" and str(path) in str(err.value)
        assert not portable.audit(path).safe
    with override(max_pickle_opcodes=OPS * 2):
        with pytest.raises(portable.PortableError, match="not a model"):
            portable.load(path)
        assert portable.audit(path).safe  # a list of lists: nothing refused


def test_a_model_far_below_the_limit_still_loads(tmp_path):
    """A real model under a lowered limit: its opcodes are a few hundred."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    est = LogisticRegression().fit(X, y)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(est))
    import joblib

    joblib.dump(est, tmp_path / "m.pkl.gz")
    for p in (path, tmp_path / "m.pkl.gz"):
        with override(max_pickle_opcodes=5_000):
            assert portable.audit(p).safe
            assert (portable.load(p).estimator.predict_proba(X) == est.predict_proba(X)).all()
