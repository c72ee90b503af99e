"""Hostile and corrupt files, careless paths and bad arguments (issue 12, items 4-7): every case ends with exit code
1 (or 2), a one-paragraph message that names the problem, no traceback, no crash, nothing lost or half-written,
within a time and memory bound.

The corpus (tests/hostile/files.py) is written by the tests. It runs through the real command line in one
subprocess under RLIMIT_AS and a timeout, so a crash, a hang or a memory blow-up fails the test, not the run.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import portable
from portable.errors import PortableError

from .hostile.files import GOOD_PFA, Case, build_corpus

ROOT = Path(__file__).resolve().parents[1]
MEMORY = 3 << 30  # address space of the subprocess: enough for onnxruntime and scikit-learn, far below 64 GiB
TIMEOUT = 600


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_in_subprocess(module: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    env.pop("PORTABLE_LIMITS", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limit_memory)


def run_harness(base: Path, cases: list) -> tuple[subprocess.CompletedProcess, list, str]:
    """Run every case's CLI argv in one bounded subprocess (tests/hostile/cli_harness.py): the process, the results
    it wrote (one per case run, in order), and the case it was running when it stopped ('?' if none)."""
    spec = base / "cases.json"
    spec.write_text(json.dumps([c.argv for c in cases]))
    out = base / "results.json"
    proc = run_in_subprocess("tests.hostile.cli_harness", str(spec), str(out))
    done = json.loads(out.read_text()) if out.exists() else []
    running = Path(str(out) + ".running")
    return proc, done, running.read_text() if running.exists() else "?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    cases = build_corpus(base / "files")
    proc, results, running = run_harness(base, cases)
    assert proc.returncode == 0, (f"the harness died (exit {proc.returncode}) while running "
                                  f"{running}:\n{proc.stderr[-3000:]}")
    assert len(results) == len(cases)
    return {c.name: (c, r) for c, r in zip(cases, results)}


def assert_case_clean(results: dict, name: str) -> None:
    """One case of `harness_results`: it ran, and its outcome breaks none of `_problems`' rules."""
    case, result, crashed = results[name]
    assert result is not None, crashed or "the case did not run"
    problems = _problems(case, result)
    assert not problems, "\n".join(problems)


def harness_results(base: Path, cases: list) -> dict:
    """`run_harness` on `cases`: per case name, (case, its result or None, why the harness died or None)."""
    proc, done, running = run_harness(base, cases)
    crashed = None
    if proc.returncode != 0:
        crashed = f"the harness died (exit {proc.returncode}) while running {running}:\n{proc.stderr[-2000:]}"
    return {c.name: (c, done[i] if i < len(done) else None, crashed) for i, c in enumerate(cases)}


def _problems(case: Case, r: dict) -> list[str]:
    name = case.name
    message = (r["stderr"] + r["stdout"]).strip()
    if r["escaped"] is not None:
        return [f"{name}: an exception escaped the command:\n{r['escaped']}"]
    out = []
    if r["code"] not in case.codes:
        out.append(f"{name}: exit {r['code']}, expected {case.codes}: {message[:500]}")
    if "Traceback" in message:
        out.append(f"{name}: a traceback was printed")
    if r["code"] == 2:  # click's usage error: "Usage: ...", "Try ... --help", then one "Error: ..." line
        errors = [line for line in r["stderr"].splitlines() if line.startswith("Error:")]
        if len(errors) != 1 or case.needle.lower() not in errors[0].lower():
            out.append(f"{name}: no 'Error:' line naming '{case.needle}': {r['stderr']}")
    elif r["code"] != 0:
        if not message:
            out.append(f"{name}: no message")
        if "\n\n" in r["stderr"].strip():
            out.append(f"{name}: not one paragraph: {r['stderr']}")
        if case.needle.lower() not in message.lower():
            out.append(f"{name}: '{case.needle}' not in: {message[:500]}")
        if "onnxruntime:" in r["stderr"]:  # onnxruntime's own log lines ("[E:onnxruntime:, ...]") besides ours
            out.append(f"{name}: onnxruntime's log reached the user: {r['stderr'][:300]}")
        if len(r["stderr"]) > 2000:
            out.append(f"{name}: the message is too long: {r['stderr'][:300]}...")
    if case.after is not None:
        try:
            case.after()
        except AssertionError as exc:
            out.append(f"{name}: {exc}")
    return out


def test_the_catastrophic_pattern_of_the_corpus_really_hangs_pythons_re():
    """Control for the corpus's regular-expression case: Python's `re` (which the PFA engine used before) does not
    finish `(a|aa)+$` on 64 a's and a '!' in seconds; portable's engine stops it at the routine's timeout."""
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", "import re; re.search('(a|aa)+$', 'a' * 64 + '!')"], timeout=3)


def test_hostile_corpus(corpus):
    """Every case: the expected exit code, one short paragraph naming the problem, no traceback, files intact."""
    problems = [p for case, r in corpus.values() for p in _problems(case, r)]
    assert not problems, f"{len(problems)} of {len(corpus)} cases failed:\n" + "\n".join(problems)


# ---- the same guarantees from Python (item 7): a PortableError naming the argument ------------------------------

@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("args") / "m.onnx"
    portable.convert(GOOD_PFA, to="onnx", samples=50).save(path)
    return path


@pytest.mark.parametrize("kwargs, named", [
    ({"samples": "10"}, "samples"), ({"samples": 0}, "samples"), ({"samples": 2.5}, "samples"),
    ({"samples": True}, "samples"), ({"samples": 10 ** 12}, "max_samples"),
    ({"seed": "abc"}, "seed"), ({"seed": -5}, "seed"), ({"seed": 1.5}, "seed"),
    ({"trust": 123}, "trust"), ({"trust": [1, 2]}, "trust"),
    ({"rtol": "x"}, "rtol"), ({"atol": float("nan")}, "atol"), ({"rtol": -1.0}, "rtol"),
    ({"atol": float("inf")}, "atol"), ({"data": np.zeros((0, 2))}, "data"), ({"data": 3.0}, "data"),
])
def test_check_validates_its_arguments(onnx_model, kwargs, named):
    with pytest.raises(PortableError, match=named):
        portable.check(onnx_model, onnx_model, **kwargs)


@pytest.mark.parametrize("kwargs, named", [
    ({"samples": "10"}, "samples"), ({"seed": "abc"}, "seed"), ({"trust": 123}, "trust"),
    ({"dtype": "float16"}, "dtype"), ({"to": 3}, "to"), ({"check": "yes"}, "check"),
    ({"options": {"standard_ops": True}}, "options"), ({"progress": 5}, "progress"),
])
def test_convert_validates_its_arguments(kwargs, named):
    with pytest.raises(PortableError, match=named):
        portable.convert(GOOD_PFA, **{"to": "onnx", **kwargs})


@pytest.mark.parametrize("kwargs, named", [
    ({"data": None}, "needs data"), ({"data": 3.0}, "data"), ({"data": []}, "data"), ({"data": object()}, "data"),
    ({"data": {"x": 1}}, "data"), ({"reference": 123}, "reference"), ({"reference": np.zeros((0, 2))}, "reference"),
    ({"reference": b"\x00"}, "reference"), ({"thresholds": 1}, "thresholds"),
    ({"thresholds": {"nothing": 1}}, "nothing"), ({"thresholds": {"psi": "a"}}, "psi"),
])
def test_drift_validates_its_arguments(onnx_model, kwargs, named):
    """drift(data=123) and drift(reference=[]) were TypeError/ValueError tracebacks, thresholds=1 AttributeError."""
    args = {"data": np.ones((60, 2)), "reference": np.ones((60, 2)), **kwargs}
    with pytest.raises(PortableError, match=named):
        portable.drift(onnx_model, args.pop("data"), **args)


def test_data_near_the_largest_float64_makes_no_numpy_warning(onnx_model):
    """A check on data of +-1e308 printed four numpy RuntimeWarnings (overflow) from the ranges' width."""
    x = np.random.default_rng(0).random((40, 2))
    x[3, 0], x[4, 0], x[5, 1] = 1e308, -1e308, 1.7e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = portable.check(onnx_model, onnx_model, data={"x": x[:, 0], "y": x[:, 1]}, samples=200)
    assert report.equivalent


def test_load_run_save_export_audit_validate_their_arguments(onnx_model, tmp_path):
    with pytest.raises(PortableError, match="source"):
        portable.load(None)
    with pytest.raises(PortableError, match="trust"):
        portable.load(onnx_model, trust=123)
    with pytest.raises(PortableError, match="format"):
        portable.load(onnx_model, format=7)
    model = portable.load(onnx_model)
    with pytest.raises(PortableError, match="mapping"):
        model.run(None)
    with pytest.raises(PortableError, match="mapping"):
        model.run([1, 2, 3])
    with pytest.raises(PortableError, match="path"):
        model.save(None)
    with pytest.raises(PortableError, match="force"):
        model.save(tmp_path / "x.onnx", force="yes")
    with pytest.raises(PortableError, match="path"):
        portable.export(GOOD_PFA, None)
    with pytest.raises(PortableError, match="path"):
        portable.audit(None)
    with pytest.raises(PortableError, match="must not overwrite"):
        model.save(onnx_model, force=True)  # the model's own source
    assert portable.load(onnx_model).signature == model.signature


def test_a_python_save_never_replaces_a_folder_that_is_not_an_nnef_model(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    (m / "x.pfa").write_text(json.dumps(GOOD_PFA))
    art = portable.convert(m / "x.pfa", to="nnef", samples=50)
    with pytest.raises(PortableError, match="holds"):
        art.save(m, force=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PortableError, match="not an NNEF model"):
        art.save(other, force=True)
    assert (m / "x.pfa").is_file() and (other / "notes.txt").read_text() == "mine"
    art.save(tmp_path / "fresh.nnef")
    art.save(tmp_path / "fresh.nnef", force=True)  # an NNEF model folder may be replaced with force
    assert portable.load(tmp_path / "fresh.nnef").signature.input_names == ["x", "y"]


def test_limits_can_be_raised_from_python_and_the_environment(tmp_path):
    from portable import limits

    doc = tmp_path / "deep.json"
    expr: object = "input"
    for _ in range(150):
        expr = {"+": [expr, 1]}
    doc.write_text(json.dumps({"input": "double", "output": "double", "action": [expr]}))  # 302 levels
    with pytest.raises(limits.LimitError, match="max_depth"):
        portable.load(doc)
    with limits.override(max_depth=400):
        model = portable.load(doc)
        assert model.run({"input": np.array([1.0, 2.0])})["output"].tolist() == [151.0, 152.0]
    assert limits.LIMITS.max_depth == 256
    with pytest.raises(PortableError, match="positive whole number"):
        limits.LIMITS.set(max_depth="lots")
    proc = subprocess.run([sys.executable, "-c", "from portable.limits import LIMITS; print(LIMITS.max_depth)"],
                          env=dict(os.environ, PORTABLE_LIMITS="max_depth=1000, max_samples=1e8"),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.stdout.strip() == "1000", proc.stderr


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    """The command line turns SIGTERM into an exception, so the temporary file beside the output is removed."""
    script = f"""
import os, signal, sys
import portable._io as io_mod
real = os.fsync
def fsync_then_terminate(fd):
    real(fd)
    os.kill(os.getpid(), signal.SIGTERM)  # arrives while the temporary file exists
io_mod.os.fsync = fsync_then_terminate
from portable.cli import main
sys.argv = ["portable", "convert", {str(tmp_path / 'x.json')!r}, "--to", "onnx", "-o", {str(tmp_path / 'x.onnx')!r},
            "--samples", "50"]
main()
"""
    (tmp_path / "x.json").write_text(json.dumps(GOOD_PFA))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 128 + 15, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"], "a temporary file (or the output) was left"


# ---- joblib and skops files read by a fresh command line (nothing imported before the load) --------------------------------
@pytest.fixture(scope="module")
def joblib_files(tmp_path_factory):
    import joblib
    from sklearn.linear_model import LinearRegression

    base = tmp_path_factory.mktemp("joblib")
    rng = np.random.default_rng(0)
    model = LinearRegression().fit(rng.normal(size=(30, 3)), rng.normal(size=30))
    joblib.dump(model, base / "plain.joblib")
    joblib.dump(model, base / "zlib.joblib", compress=3)
    big = LinearRegression().fit(rng.normal(size=(30, 3)), rng.normal(size=30))
    big.extra_ = rng.normal(size=200_000)  # 1.6 MB of data after the pickle opcodes
    joblib.dump(big, base / "big.joblib")
    data = (base / "big.joblib").read_bytes()
    (base / "truncated.joblib").write_bytes(data[: len(data) // 2])
    bomb = LinearRegression().fit(rng.normal(size=(30, 3)), rng.normal(size=30))
    bomb.extra_ = np.zeros(96 << 20, dtype=np.uint8)  # 96 MiB of zeros: about 100 KB once compressed
    joblib.dump(bomb, base / "bomb.joblib", compress=("zlib", 9))
    import zipfile

    import skops.io as sio

    sio.dump(bomb, base / "bomb.skops", compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    return base


@pytest.mark.parametrize("name, code, needle", [
    ("plain.joblib", 0, "pickle model"),
    ("zlib.joblib", 0, "pickle model"),
    ("big.joblib", 0, "pickle model"),
    ("truncated.joblib", 1, "truncated or corrupt: a joblib array declares 1,600,000 bytes"),
    ("bomb.joblib", 1, "max_compression_ratio"),
    ("bomb.skops", 1, "max_compression_ratio"),
])
def test_joblib_files_from_a_fresh_command_line(joblib_files, name, code, needle):
    """`portable inspect` in a new interpreter, as a user runs it: joblib's own import-time code (it sets
    environment variables) must not be taken for the file's side effect (every joblib.dump file was refused so
    before); a truncated file and a decompression bomb are refused before joblib allocates their arrays."""
    proc = run_in_subprocess("portable", "inspect", str(joblib_files / name), timeout=300)
    message = proc.stdout + proc.stderr
    assert proc.returncode == code, message
    assert needle in message and "Traceback" not in message, message


# ---- a skops archive's schema.json: nested deeper than the parser follows, or deflating to gigabytes ---------------
def _skops_with_schema(path, write_schema) -> None:
    import zipfile

    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    good = path.with_suffix(".good.skops")
    sio.dump(LinearRegression().fit(rng.normal(size=(30, 3)), rng.normal(size=30)), good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename != "schema.json":
                out.writestr(info.filename, src.read(info.filename))
        with out.open("schema.json", "w", force_zip64=True) as f:
            write_schema(f, json.loads(src.read("schema.json")))


def _deep_schema(f, schema) -> None:
    node = '{"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": ['
    schema["content"]["content"]["coef_"] = "@@"
    f.write(json.dumps(schema).replace('"@@"', node * 5000 + "]}" * 5000).encode())


def _huge_schema(f, schema) -> None:
    f.write(b'{"doc": "')
    for _ in range(8):
        f.write(b"x" * (64 << 20))  # 512 MiB of one letter: about 500 KB deflated
    f.write(b'"}')


@pytest.mark.parametrize("command", ["inspect", "audit"])
@pytest.mark.parametrize("build, needle", [(_deep_schema, "max_depth"), (_huge_schema, "max_")])
def test_skops_schema_within_limits(tmp_path, command, build, needle):
    """A schema.json nested 5,000 deep said 'RecursionError' (loader and audit); one that deflates to 512 MiB was
    decompressed whole by `audit` (1.1 GB of memory) before its size was judged. Both are refused by a named limit,
    `audit` reading no more than the archive's declared sizes."""
    path = tmp_path / "model.skops"
    _skops_with_schema(path, build)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("PORTABLE_LIMITS", None)
    peak = ("import atexit, resource, runpy, sys; atexit.register(lambda: sys.stderr.write("
            "'\\npeak KiB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)); "
            f"sys.argv = ['portable', {command!r}, {str(path)!r}]; runpy.run_module('portable', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", peak], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=_limit_memory)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 1, message
    assert needle in message and "Traceback" not in message and "RecursionError" not in message, message
    if build is _huge_schema:  # imports take ~400 MiB for inspect; a decompressed schema.json added ~1 GiB to audit
        peak_kib = int(message.rsplit("peak KiB", 1)[1].split()[0])
        assert peak_kib < 800 * 1024, f"{peak_kib:,} KiB for a schema.json of 512 MiB: it was decompressed"


def _expand_model(path: Path, side: int) -> None:
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([side, side], dtype=np.int64), "S")
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["X"], ["s"], keepdims=1), helper.make_node("Expand", ["s", "S"], ["big"]),
         helper.make_node("ReduceMean", ["big"], ["m"], keepdims=0), helper.make_node("Add", ["X", "m"], ["y"])],
        "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_a_graph_asking_for_more_memory_than_the_process_may_have(tmp_path):
    """An ONNX graph whose Expand asks for 60,000 x 60,000 floats (14.4 GB): `portable check` ran both sides until
    the kernel killed it at 21.7 GB (signal 9) on a 24 GB machine. The command line now bounds its own address
    space (`max_process_bytes`, 80% of the machine's memory by default; lowered here so that the test needs no
    such machine) and onnxruntime's failed allocation is that limit, named, exit 1."""
    model = tmp_path / "expand.onnx"
    _expand_model(model, 60_000)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("PORTABLE_LIMITS", None)
    proc = subprocess.run([sys.executable, "-m", "portable", "--limit", "max_process_bytes=2.5e9", "check",
                           str(model), str(model), "--samples", "20"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 1, message
    assert "max_process_bytes=2,500,000,000" in message and "could not allocate" in message, message
    assert "Traceback" not in message and "bfc_arena" not in message, message


def test_the_library_never_bounds_its_hosts_memory():
    """`import portable` and the API leave the process's RLIMIT_AS alone (only the console script sets it)."""
    import resource

    from click.testing import CliRunner

    from portable.cli import cli

    before = resource.getrlimit(resource.RLIMIT_AS)
    CliRunner().invoke(cli, ["formats"])
    assert resource.getrlimit(resource.RLIMIT_AS) == before
