"""The chunked check over Parquet/CSV data (every row, bounded memory) and the same check on a Dask cluster.

The models are a scikit-learn tree and its ONNX conversion, and a tampered copy of that ONNX file whose leaf for a
far-out region is changed. Which data rows disagree is computed here with scikit-learn and onnxruntime directly;
the checker must report exactly those rows, with their file and row number, however the data is chunked or
distributed. The Dask tests start a LocalCluster (2 worker processes, loopback) and close it, with time limits.
"""
from __future__ import annotations

import concurrent.futures
import os
import pickle
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import portable
from portable.cli import cli
from portable.errors import PortableError
from portable.model import Model

FILES, ROWS = 20, 100_000  # 2 million rows
PLANT_FILE, PLANT_ROW = 7, 12_345
FAR = 1000.0  # the far-out region the tree isolates (and the tampered ONNX gets wrong)
LIMIT = 300  # seconds any cluster operation may take in a test


def ort_predict(path: Path, X: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    dtype = np.float32 if "float)" in sess.get_inputs()[0].type else np.float64
    return sess.run(None, {name: X.astype(dtype)})[0].reshape(len(X))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("models"))


def make_models(d: Path):
    """A scikit-learn tree (pickled), its ONNX conversion, and the ONNX with the far-out leaves changed."""
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = 2 * X[:, 0] + X[:, 1]
    X[:5, 0], y[:5] = FAR, 50.0
    est = DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, y)
    (d / "tree.pkl").write_bytes(pickle.dumps(est))
    portable.convert(str(d / "tree.pkl"), to="onnx").save(d / "tree.onnx")
    proto = onnx.load(d / "tree.onnx")
    changed = 0
    for node in proto.graph.node:
        for att in node.attribute:
            if att.name in ("leaf_weights", "target_weights", "target_weights_as_tensor"):
                vals = (onnx.numpy_helper.to_array(att.t) if att.type == onnx.AttributeProto.TENSOR
                        else np.asarray(att.floats))
                vals = vals.copy()
                hit = np.isclose(vals, 50.0)
                changed += int(hit.sum())
                vals[hit] = 51.0
                if att.type == onnx.AttributeProto.TENSOR:
                    att.t.CopyFrom(onnx.numpy_helper.from_array(vals.astype(vals.dtype)))
                else:
                    del att.floats[:]
                    att.floats.extend(vals.tolist())
    assert changed >= 1, "the far-out leaves were not found in the ONNX tree"
    onnx.save(proto, d / "tampered.onnx")
    return est, d / "tree.pkl", d / "tree.onnx", d / "tampered.onnx"


def write_dataset(folder: Path, files: int, rows: int, plants: dict[int, list[int]], seed: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(files):
        X = rng.normal(size=(rows, 4))
        for r in plants.get(i, []):
            X[r, 0] = FAR
        pq.write_table(pa.table({f"x{j}": X[:, j] for j in range(4)}), folder / f"part-{i:02d}.parquet",
                       row_group_size=rows // 2 if rows >= 1000 else rows)
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("big") / "data", FILES, ROWS, {PLANT_FILE: [PLANT_ROW]})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("small") / "data", 3, 3000, {0: [5], 2: [0, 2999, 1500]})


def truth(models, folder: Path) -> dict[tuple[str, int], float]:
    """(file name, row) of every data row where the tampered ONNX differs from scikit-learn, by the libraries."""
    est, _, _, tampered = models
    found = {}
    for f in sorted(folder.glob("*.parquet")):
        X = pq.read_table(f).to_pandas().to_numpy()
        X32 = X.astype(np.float32).astype(np.float64)  # the checker feeds both models the float32 values
        diff = np.abs(est.predict(X32) - ort_predict(tampered, X32))
        for r in np.flatnonzero(diff > 1e-3):
            found[(f.name, int(r))] = float(diff[r])
    return found


def within(limit, fn, *args, **kwargs):
    """Run fn in a thread and fail (rather than hang) when it takes longer than `limit` seconds."""
    ex = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return ex.submit(fn, *args, **kwargs).result(timeout=limit)
    finally:
        ex.shutdown(wait=False)  # on a timeout the test fails now instead of waiting for the call


# ---- streaming --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def streamed(models, big):
    """The streaming check of the tampered model over the 2-million-row dataset (compared with Dask below)."""
    _, pkl, _, tampered = models
    return portable.check(str(pkl), str(tampered), data=str(big), chunk_rows=40_000)


def test_every_row_of_two_million_is_checked_and_the_planted_row_is_found(models, big, streamed):
    _, pkl, good, tampered = models
    expected = truth(models, big)
    assert list(expected) == [(f"part-{PLANT_FILE:02d}.parquet", PLANT_ROW)]
    ok = portable.check(str(pkl), str(good), data=str(big), chunk_rows=40_000)
    assert ok.equivalent and ok.complete
    assert ok.data["rows_in_data"] == ok.data["rows_checked"] == ok.rows == FILES * ROWS
    bad = streamed
    assert not bad.equivalent and bad.complete
    assert bad.data["rows_checked"] == FILES * ROWS
    out = bad.outputs[0]
    assert out["mismatches"] == 1
    assert (Path(out["worst_file"]).name, out["worst_row"]) == (f"part-{PLANT_FILE:02d}.parquet", PLANT_ROW)
    assert out["max_abs_diff"] == pytest.approx(expected[(f"part-{PLANT_FILE:02d}.parquet", PLANT_ROW)])
    ex = next(c for c in bad.counterexamples if c.get("file"))
    assert (Path(ex["file"]).name, ex["row"]) == (f"part-{PLANT_FILE:02d}.parquet", PLANT_ROW)
    assert ex["inputs"]["X"][0][0] == FAR
    # the counterexample reproduces with the libraries themselves
    X = np.asarray(ex["inputs"]["X"])
    assert abs(models[0].predict(X)[0] - ort_predict(tampered, X)[0]) > 0.5
    # the error distribution covers every row exactly once
    assert sum(bad.error_histograms()[out["name"]]["counts"]) == FILES * ROWS
    text = bad.to_text()
    assert f"part-{PLANT_FILE:02d}.parquet:{PLANT_ROW}" in text and "2,000,000 of 2,000,000" in text


# chunks smaller than, equal to, one off and larger than a file (3,000 rows) and its row groups (1,500)
@pytest.mark.parametrize("chunk", [97, 1499, 1500, 2999, 3000, 4001])
def test_counts_do_not_depend_on_chunking(models, small, chunk):
    _, pkl, _, tampered = models
    expected = truth(models, small)
    rep = portable.check(str(pkl), str(tampered), data=str(small), chunk_rows=chunk)
    out = rep.outputs[0]
    assert out["mismatches"] == len(expected) == 4
    assert rep.data["rows_checked"] == 9000
    worst = {(Path(w["file"]).name, w["row"]) for w in out["worst_rows"]}
    assert worst <= set(expected) and len(worst) == 3
    assert out["max_abs_diff"] == pytest.approx(max(expected.values()))


def test_csv_glob_and_dataset_give_the_same_counts(models, small, tmp_path):
    import pyarrow.dataset as ds

    _, pkl, _, tampered = models
    for f in sorted(small.glob("*.parquet")):
        pq.read_table(f).to_pandas().to_csv(tmp_path / (f.stem + ".csv"), index=False)
    runs = [portable.check(str(pkl), str(tampered), data=str(tmp_path / "*.csv"), chunk_rows=1000),
            portable.check(str(pkl), str(tampered), data=ds.dataset(str(small), format="parquet"),
                           chunk_rows=1000),
            portable.check(str(pkl), str(tampered), data=str(small / "part-02.parquet"))]
    np.save(tmp_path / "part-02.npy", pq.read_table(small / "part-02.parquet").to_pandas().to_numpy())
    runs.append(portable.check(str(pkl), str(tampered), data=str(tmp_path / "part-02.npy"), chunk_rows=1000))
    frame = pa.concat_tables([pq.read_table(f) for f in sorted(small.glob("*.parquet"))]).to_pandas()
    runs.append(portable.check(str(pkl), str(tampered), data=frame, chunk_rows=700))
    assert [r.outputs[0]["mismatches"] for r in runs] == [4, 4, 3, 3, 4]
    assert [r.data["rows_checked"] for r in runs] == [9000, 9000, 3000, 3000, 9000]
    assert {w["row"] for w in runs[-1].outputs[0]["worst_rows"]} <= {5, 6000, 7500, 8999}
    assert runs[0].data["rows_in_data"] == 9000
    assert {(Path(w["file"]).name, w["row"]) for w in runs[0].outputs[0]["worst_rows"]} <= \
        {("part-00.csv", 5), ("part-02.csv", 0), ("part-02.csv", 1500), ("part-02.csv", 2999)}


class Counting(Model):
    """Runs a scikit-learn model and remembers the largest batch it was given."""

    format = "counting"

    def __init__(self, inner: Model) -> None:
        super().__init__()
        self.inner, self.largest = inner, 0

    @property
    def signature(self):
        return self.inner.signature

    def _run(self, inputs):
        self.largest = max(self.largest, max(len(v) for v in inputs.values()))
        return self.inner.run(inputs)


def test_models_never_see_more_than_chunk_rows(models, small):
    est, _, good, _ = models
    counting = Counting(portable.load(est))
    rep = portable.check(counting, str(good), data=str(small), chunk_rows=700, samples=200)
    assert rep.data["rows_checked"] == 9000
    assert counting.largest <= 700 + 2 * 200  # the sample check: generated rows plus sample rows


class Refuses(Model):
    """The tree's ONNX conversion, refusing any batch that holds a far-out row (as a runtime that rejects some
    inputs would)."""

    format = "refuses"

    def __init__(self, inner: Model) -> None:
        super().__init__()
        self.inner = inner

    @property
    def signature(self):
        return self.inner.signature

    def _run(self, inputs):
        if (np.asarray(inputs["X"])[:, 0] > FAR / 2).any():
            raise RuntimeError("input out of the supported range")
        return self.inner.run(inputs)


def test_rows_a_model_rejects_are_counted_by_file_and_row(models, small, tmp_path):
    from sklearn.linear_model import LinearRegression

    est, _, good, _ = models
    # the converted model rejects the 4 far-out rows: not equivalent, each counted, the first ones named
    rep = portable.check(est, Refuses(portable.load(str(good))), data=str(small), chunk_rows=1000)
    assert not rep.equivalent and rep.complete
    assert rep.data["converted_rejects"] == 4 and rep.data["rows_checked"] == 9000 - 4
    named = {(Path(c["file"]).name, c["row"]) for c in rep.counterexamples if c.get("file") and "fails" in c["found_by"]}
    assert named <= {("part-00.parquet", 5), ("part-02.parquet", 0), ("part-02.parquet", 1500),
                     ("part-02.parquet", 2999)} and len(named) == 3
    # the original rejects rows with NaN (scikit-learn's LinearRegression does): counted and noted, not compared
    data = tmp_path / "nan"
    data.mkdir()
    X = np.random.default_rng(5).normal(size=(5000, 4))
    X[[10, 4000], 2] = np.nan
    pq.write_table(pa.table({f"x{j}": X[:, j] for j in range(4)}), data / "a.parquet")
    lin = LinearRegression().fit(np.nan_to_num(X), np.nan_to_num(X) @ [1.0, 2.0, 3.0, 4.0])
    (tmp_path / "lin.pkl").write_bytes(pickle.dumps(lin))
    portable.convert(str(tmp_path / "lin.pkl"), to="onnx", data=np.nan_to_num(X[:200])).save(tmp_path / "lin.onnx")
    rep = portable.check(str(tmp_path / "lin.pkl"), str(tmp_path / "lin.onnx"), data=str(data), chunk_rows=700)
    assert rep.data["original_rejects"] == 2 and rep.data["rows_checked"] == 4998
    assert rep.complete and rep.equivalent
    assert any("a.parquet row 10" in n for n in rep.notes)


def test_label_flips_at_the_decision_boundary_are_near_ties_as_in_the_generated_check(tmp_path):
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6))
    est = LinearSVC().fit(X, (X @ np.arange(1, 7) > 0.3).astype(int))
    (tmp_path / "svc.pkl").write_bytes(pickle.dumps(est))
    portable.convert(str(tmp_path / "svc.pkl"), to="onnx").save(tmp_path / "svc.onnx")
    Z = rng.normal(size=(20_000, 6))
    w, b = est.coef_[0], est.intercept_[0]
    Z[:5000] -= np.outer((Z[:5000] @ w + b) / (w @ w), w)  # onto the decision boundary ...
    Z[:5000] += np.outer(rng.normal(size=5000) * 1e-7, w)  # ... and just off it, on either side
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({f"x{j}": Z[:, j] for j in range(6)}), tmp_path / "data" / "a.parquet")
    Z32 = Z.astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "svc.onnx"), providers=["CPUExecutionProvider"])
    flips = int((sess.run(None, {sess.get_inputs()[0].name: Z32})[0] != est.predict(Z32.astype(np.float64))).sum())
    assert flips > 0  # float32 decides some boundary rows the other way
    rep = portable.check(str(tmp_path / "svc.pkl"), str(tmp_path / "svc.onnx"), data=str(tmp_path / "data"),
                         chunk_rows=3000)
    label = next(o for o in rep.outputs if o["kind"] == "label")
    assert (label["mismatches"], label["near_ties"]) == (0, flips)
    assert rep.equivalent


def test_an_unreadable_file_is_named_and_the_verdict_is_not_equivalent(models, small, tmp_path):
    _, pkl, good, _ = models
    data = tmp_path / "data"
    data.mkdir()
    for f in small.glob("*.parquet"):
        (data / f.name).write_bytes(f.read_bytes())
    (data / "part-99.parquet").write_bytes(b"PAR1 this is not a parquet file")
    rep = portable.check(str(pkl), str(good), data=str(data))
    assert not rep.equivalent and not rep.complete
    assert [Path(u["file"]).name for u in rep.data["unread"]] == ["part-99.parquet"]
    assert rep.data["rows_checked"] == 9000 and rep.data["rows_in_data"] is None  # its rows are unknown
    assert "part-99.parquet" in rep.to_text()
    res = CliRunner().invoke(cli, ["check", str(pkl), str(good), "--data", str(data), "-q"])
    assert res.exit_code == 1, res.output
    assert "could not be read" in res.output


def test_bad_data_arguments_are_clear_errors(models, small, tmp_path):
    _, pkl, good, _ = models
    (tmp_path / "empty").mkdir()
    for data, words in [(str(tmp_path / "missing"), "no such data"), (str(tmp_path / "empty"), "no .parquet"),
                        (str(tmp_path / "nothing-*.parquet"), "matches no")]:
        with pytest.raises(PortableError, match=words):
            portable.check(str(pkl), str(good), data=data)
    pq.write_table(pa.table({"a": [1.0, 2.0]}), tmp_path / "narrow.parquet")
    with pytest.raises(PortableError, match="narrow.parquet"):
        portable.check(str(pkl), str(good), data=str(tmp_path / "narrow.parquet"))
    res = CliRunner().invoke(cli, ["check", str(pkl), str(good), "--data", str(tmp_path / "missing")])
    assert res.exit_code == 1 and "no such data" in res.output
    res = CliRunner().invoke(cli, ["check", str(pkl), str(good), "--data", str(small), "--chunk-rows", "0"])
    assert res.exit_code == 2


def test_cli_streams_parquet_folder(models, small, tmp_path):
    _, pkl, good, tampered = models
    res = CliRunner().invoke(cli, ["check", str(pkl), str(good), "--data", str(small), "--chunk-rows", "500"])
    assert res.exit_code == 0, res.output
    assert "9,000 of 9,000 data rows checked" in res.output
    res = CliRunner().invoke(cli, ["check", str(pkl), str(tampered), "--data", str(small / "*.parquet"),
                                   "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 3, res.output
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["outputs"][0]["mismatches"] == 4 and rep["data"]["rows_checked"] == 9000


# ---- Dask ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    lc = within(120, LocalCluster, n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None)
    client = Client(lc, timeout=60)
    yield client
    within(120, client.close)
    within(120, lc.close)


def test_dask_check_matches_streaming(models, big, small, cluster, streamed):
    _, pkl, good, tampered = models
    stream = streamed
    on_dask = within(LIMIT, portable.check, str(pkl), str(tampered), data=str(big), chunk_rows=40_000,
                     dask=cluster)
    assert on_dask.equivalent == stream.equivalent is False
    assert on_dask.data["rows_checked"] == stream.data["rows_checked"] == FILES * ROWS
    assert on_dask.data["tasks"] == stream.data["tasks"] > 1
    for key in ("mismatches", "max_abs_diff", "max_rel_diff", "worst_row", "worst_file", "worst_rows"):
        assert on_dask.outputs[0][key] == stream.outputs[0][key], key
    assert on_dask.error_histograms() == stream.error_histograms()
    assert (Path(on_dask.outputs[0]["worst_file"]).name, on_dask.outputs[0]["worst_row"]) == \
        (f"part-{PLANT_FILE:02d}.parquet", PLANT_ROW)
    # each worker loaded the models once, not once per task
    assert on_dask.data["workers"] == 2 and 1 <= on_dask.data["model_loads"] <= 2
    ok = within(LIMIT, portable.check, str(pkl), str(good), data=str(small), dask=cluster)
    assert ok.equivalent and ok.complete and ok.data["rows_checked"] == 9000


def test_dask_dataframe(models, small, cluster):
    import dask.dataframe as dd

    _, pkl, _, tampered = models
    frame = dd.read_parquet(str(small))
    rep = within(LIMIT, portable.check, str(pkl), str(tampered), data=frame, dask=cluster)
    assert rep.outputs[0]["mismatches"] == 4 and rep.data["rows_checked"] == 9000
    assert rep.data["rows_in_data"] == 9000
    local = portable.check(str(pkl), str(tampered), data=frame)  # no cluster: one partition at a time
    assert local.outputs[0]["mismatches"] == 4 and local.data["rows_checked"] == 9000


class DiesOnce(Model):
    """A model object (shipped to the workers by pickle, as the caller passed it) that kills the first worker
    process that runs it, once: Dask must reschedule the task and the check must still cover every row."""

    format = "dies-once"

    def __init__(self, est, flag: str) -> None:
        super().__init__()
        self.est, self.flag, self.home = est, flag, os.getpid()

    @property
    def signature(self):
        return portable.load(self.est).signature

    def _run(self, inputs):
        if os.getpid() != self.home:
            try:
                fd = os.open(self.flag, os.O_CREAT | os.O_EXCL)
                os.close(fd)
                os._exit(1)  # the worker process is lost mid-task
            except FileExistsError:
                pass
        return portable.load(self.est).run(inputs)


def test_a_lost_worker_is_retried_and_no_row_is_lost(models, small, cluster, tmp_path):
    import cloudpickle

    import tests.test_stream as me

    est, _, good, _ = models
    cloudpickle.register_pickle_by_value(me)
    try:
        rep = within(LIMIT, portable.check, DiesOnce(est, str(tmp_path / "died")), str(good), data=str(small),
                     chunk_rows=1000, dask=cluster)
    finally:
        cloudpickle.unregister_pickle_by_value(me)
    assert (tmp_path / "died").exists()  # a worker did die
    assert rep.complete and rep.equivalent
    assert rep.data["rows_checked"] == rep.data["rows_in_data"] == 9000
    within(120, cluster.wait_for_workers, 2)


def test_folder_converts_on_the_cluster(models, cluster, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from portable.batch import convert_folder

    est, pkl, _, _ = models
    src = tmp_path / "models"
    src.mkdir()
    (src / "tree.pkl").write_bytes(pkl.read_bytes())
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    logit = LogisticRegression().fit(X, X[:, 0] > 0)
    (src / "logit.pkl").write_bytes(pickle.dumps(logit))
    out = tmp_path / "out"
    results = within(LIMIT, convert_folder, src, "onnx", out, dask=cluster)
    by = {Path(r.model).name: r for r in results}
    assert by["tree.pkl"].verdict == by["logit.pkl"].verdict == "equivalent"
    assert (out / "summary.json").is_file()
    Xt = rng.normal(size=(50, 4))
    np.testing.assert_allclose(ort_predict(out / "tree.onnx", Xt), est.predict(Xt.astype(np.float32)), rtol=1e-5,
                               atol=1e-4)
    sess = ort.InferenceSession(str(out / "logit.onnx"), providers=["CPUExecutionProvider"])
    X3 = rng.normal(size=(50, 3))
    labels = sess.run(None, {sess.get_inputs()[0].name: X3.astype(np.float32)})[0]
    np.testing.assert_array_equal(labels.astype(bool), logit.predict(X3))
    # the command line, against the test cluster's scheduler: a file that fails is a failed row (exit 1)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "broken.pkl").write_bytes(b"not a pickle at all")
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "one"), "--to", "onnx", "-o", str(tmp_path / "cli-out"),
                                   "-q", "--dask", cluster.scheduler.address])
    assert res.exit_code == 1, res.output
    import json

    summary = json.loads((tmp_path / "cli-out" / "summary.json").read_text())
    assert summary["counts"] == {"failed": 1}


def test_a_file_that_runs_too_long_is_stopped_and_reported(models, tmp_path):
    from portable.distributed import convert_isolated

    _, pkl, _, _ = models
    settings = dict(dtype="auto", check=True, samples=200, seed=0, trust=[], force=False, keep_failed=False)
    slow = convert_isolated(str(pkl), str(tmp_path / "slow.onnx"), "onnx", settings, timeout=0.05)
    assert slow.error and "timed out" in slow.error and slow.output is None
    assert not (tmp_path / "slow.onnx").exists() and not list(tmp_path.glob(".*.tmp"))
    done = convert_isolated(str(pkl), str(tmp_path / "ok.onnx"), "onnx", settings, timeout=LIMIT)
    assert done.error is None and done.verdict == "equivalent" and (tmp_path / "ok.onnx").is_file()


def test_cli_check_on_dask_address(models, small, cluster):
    _, pkl, _, tampered = models
    res = within(LIMIT, CliRunner().invoke, cli, ["check", str(pkl), str(tampered), "--data", str(small),
                                                  "--dask", cluster.scheduler.address])
    assert res.exit_code == 3, res.output
    assert "9,000 of 9,000 data rows checked" in res.output
    res = CliRunner().invoke(cli, ["check", str(pkl), str(tampered), "--data", str(small), "--dask", "local:x"])
    assert res.exit_code == 1 and "local:N takes a number" in res.output


def test_streaming_check_reads_skl2onnx_probabilities_as_scores(tmp_path):
    """skl2onnx names a RidgeClassifier's decision scores 'probabilities'; portable's scikit-learn side calls them
    'scores'. The sampled check compared them as scores, the streaming check stopped at "the models have different
    outputs": both match outputs the same way now. The scores are compared against scikit-learn's own."""
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.linear_model import RidgeClassifier

    X = np.random.default_rng(0).random((400, 3)).astype(np.float32)
    model = RidgeClassifier().fit(X, (X[:, 0] * 3).astype(int))
    onx = to_onnx(model, X[:1])
    assert {o.name for o in onx.graph.output} == {"label", "probabilities"}
    got = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["probabilities"], {"X": X})[0]
    np.testing.assert_allclose(got, model.decision_function(X), atol=1e-4)  # they are the decision scores
    path = tmp_path / "m.onnx"
    onnx.save(onx, str(path))
    frame = pd.DataFrame(X.astype(np.float64), columns=["x0", "x1", "x2"])
    frame.to_parquet(tmp_path / "rows.parquet")
    report = portable.check(model, str(path), data=str(tmp_path / "rows.parquet"), samples=50)
    assert report.equivalent, report.summary_line()
    assert {o["name"] for o in report.outputs} == {"label", "scores"}
