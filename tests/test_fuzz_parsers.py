"""Fuzzing the parsers (issue 12): hypothesis mutates valid PFA documents (JSON and YAML), NNEF archives and ONNX
files, and portable, loading and running each mutant in a subprocess (time and memory bounded, so that a crash
fails the test rather than the run), must answer with success or a PortableError, never anything else.

More examples with PORTABLE_SLOW=1.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .hostile.files import GOOD_PFA, write_good_nnef, write_good_onnx
from .test_hostile_inputs import run_in_subprocess

SLOW = os.environ.get("PORTABLE_SLOW") == "1"
PER_FORMAT = 8  # mutants of each seed file per example

TREE_PFA = {
    "input": {"type": "record", "name": "In", "fields": [{"name": "a", "type": "double"},
                                                         {"name": "b", "type": "double"}]},
    "output": "string",
    "cells": {"tree": {"type": {"type": "record", "name": "T", "fields": [
        {"name": "field", "type": {"type": "enum", "name": "F", "symbols": ["a", "b"]}},
        {"name": "operator", "type": "string"}, {"name": "value", "type": "double"},
        {"name": "pass", "type": ["string", "T"]}, {"name": "fail", "type": ["string", "T"]}]},
        "init": {"field": "a", "operator": "<", "value": 1.5,
                 "pass": {"string": "yes"},
                 "fail": {"T": {"field": "b", "operator": "<=", "value": -2, "pass": {"string": "no"},
                                "fail": {"string": "maybe"}}}}}},
    "action": [{"model.tree.simpleWalk": ["input", {"cell": "tree"},
                                          {"fcn": "model.tree.simpleTest"}]}],
}
FCN_PFA = {"input": "double", "output": "double",
           "fcns": {"sq": {"params": [{"x": "double"}], "ret": "double", "do": [{"*": ["x", "x"]}]}},
           "action": [{"let": {"y": {"u.sq": ["input"]}}}, {"+": ["y", {"m.sqrt": {"u.sq": [2]}}]}]}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    import yaml

    base = tmp_path_factory.mktemp("seeds")
    write_good_nnef(base / "m.nnef")
    files = {p.name: p.read_bytes() for p in sorted((base / "m.nnef").iterdir())}
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    write_good_onnx(base / "m.onnx")
    return {"linear.json": json.dumps(GOOD_PFA).encode(), "tree.json": json.dumps(TREE_PFA).encode(),
            "fcn.yaml": yaml.safe_dump(FCN_PFA).encode(), "tar": tar.getvalue(),
            "onnx": (base / "m.onnx").read_bytes()}


def _mutate(data: bytes, ops: list[tuple[int, int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, pos, length, blob in ops:
        if not out:
            out = bytearray(blob)
            continue
        i = pos % len(out)
        if kind == 0:  # flip bits of one byte
            out[i] ^= blob[0] if blob and blob[0] else 0xFF
        elif kind == 1:  # truncate
            del out[i:]
        elif kind == 2:  # insert
            out[i:i] = blob
        elif kind == 3:  # delete a run
            del out[i:i + length]
        elif kind == 4:  # duplicate a run (repeated structure: deeper nesting, more members)
            out[i:i] = out[i:i + length] * (1 + length % 7)
        else:  # overwrite with an interesting value
            value = [b"-1", b"1e400", b"4294967295", b"18446744073709551616", b"\xff\xff\xff\xff", b"NaN", b"[[[[",
                     b"null", b"{}", b"&a", b"*a"][length % 11]
            out[i:i + len(value)] = value
    return bytes(out)


OPS = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1 << 20), st.integers(1, 64), st.binary(min_size=1, max_size=16)),
               min_size=1, max_size=4)


@settings(max_examples=12 if SLOW else 2, deadline=None, derandomize=not SLOW,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(mutations=st.lists(OPS, min_size=PER_FORMAT * 5, max_size=PER_FORMAT * 5))
def test_mutated_files_are_loaded_or_refused_never_crash(seeds, tmp_path_factory, mutations):
    folder = tmp_path_factory.mktemp("mutants")
    it = iter(mutations)
    for k in range(PER_FORMAT):
        for name in ("linear.json", "tree.json", "fcn.yaml"):
            (folder / f"{k}-{name}").write_bytes(_mutate(seeds[name], next(it)))
        # the archive: mutate the tar itself (not its gzip stream, whose CRC would catch nearly everything)
        (folder / f"{k}-m.nnef.tgz").write_bytes(gzip.compress(_mutate(seeds["tar"], next(it))))
        (folder / f"{k}-m.onnx").write_bytes(_mutate(seeds["onnx"], next(it)))
    results = folder.parent / (folder.name + ".json")
    proc = run_in_subprocess("tests.hostile.fuzz_harness", str(folder), str(results), timeout=900)
    running = Path(str(results) + ".running")
    assert proc.returncode == 0, (f"the harness died (exit {proc.returncode}) on "
                                  f"{running.read_text() if running.exists() else '?'}:\n{proc.stderr[-3000:]}")
    outcome = json.loads(results.read_text())
    bad = {k: v for k, v in outcome.items() if v.startswith("BAD")}
    assert not bad, "\n\n".join(f"{k}: {v}" for k, v in bad.items())
    assert len(outcome) == PER_FORMAT * 5
