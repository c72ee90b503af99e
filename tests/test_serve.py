"""`portable serve` end to end: a real uvicorn server in a subprocess on a free loopback port, called over HTTP with
httpx, its predictions compared with scikit-learn's, its page loaded in headless Chromium.

Every server is started with a bounded wait for /ready and always stopped (SIGTERM, then kill).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")

import portable  # noqa: E402
from tests.sample_models import SAMPLE_MODELS  # noqa: E402

PFA_DOCS = Path(__file__).parent / "pfa_docs"
START_TIMEOUT = 90.0  # seconds for a server to load its model and answer /ready (a loaded 2-core CI machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `portable serve` subprocess; `url` is its base address."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def get(self, path: str, **kw) -> "httpx.Response":
        return httpx.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw) -> "httpx.Response":
        return httpx.post(self.url + path, timeout=60, **kw)


@contextlib.contextmanager
def serving(artifact: Path | str, tmp: Path, *args: str) -> Iterator[Server]:
    for attempt in range(3):  # a port freed by free_port() can be taken (another xdist worker) before the server binds
        port = free_port()
        log = tmp / f"server-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "portable.cli", "serve", str(artifact), "--port", str(port),
                                     *args], stdout=out, stderr=subprocess.STDOUT)
        server = Server(proc, f"http://127.0.0.1:{port}", log)
        try:
            deadline, clash = time.monotonic() + START_TIMEOUT, False
            while True:
                if proc.poll() is not None:
                    if attempt < 2 and "address already in use" in log.read_text().lower():
                        clash = True
                        break
                    pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    if httpx.get(server.url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the server was not ready within {START_TIMEOUT}s:\n{log.read_text()}")
                time.sleep(0.2)
            if clash:
                continue  # the port was taken: try another one
            yield server
            return
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


# -- artifacts ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Converted artifacts (with data profiles) and the estimators they came from."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    tmp = tmp_path_factory.mktemp("serve")
    X, y = load_breast_cancer(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(X, y)
    art = portable.convert(rf, to="onnx", data=X, samples=300)
    assert art.report.equivalent
    art.save(tmp / "rf.onnx")
    shifted = X.copy()
    shifted[:, 3] *= 1.6  # "mean area" grows: the model has not seen such tumours
    np.save(tmp / "train.npy", X)
    np.save(tmp / "shifted.npy", shifted)

    frame_est, frame, _ = dict(SAMPLE_MODELS)["column_transformer_frame"]()
    fart = portable.convert(frame_est, to="onnx", data=frame, samples=300)
    assert fart.report.equivalent
    fart.save(tmp / "frame.onnx")
    return {"tmp": tmp, "X": X, "rf": rf, "shifted": shifted, "frame_est": frame_est, "frame": frame}


@pytest.fixture(scope="module")
def rf_server(work: dict) -> Iterator[Server]:
    with serving(work["tmp"] / "rf.onnx", work["tmp"], "--window", "400", "--max-rows", "2000",
                 "--max-body-mb", "2", "--body-timeout", "2", "--no-access-log") as server:
        yield server


# -- /predict against scikit-learn -----------------------------------------------------------------------------------

def test_predict_columns_and_records_match_sklearn(work: dict, rf_server: Server) -> None:
    X, rf = work["X"], work["rf"]
    r = rf_server.post("/predict", json={"X": X[:200].tolist()})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    np.testing.assert_array_equal(out["label"], rf.predict(X[:200]))
    np.testing.assert_allclose(out["probabilities"], rf.predict_proba(X[:200]), atol=1e-5)

    r = rf_server.post("/predict", json=[{"X": row} for row in X[200:210].tolist()])
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == rf.predict(X[200:210]).tolist()
    np.testing.assert_allclose([p["probabilities"] for p in preds], rf.predict_proba(X[200:210]), atol=1e-5)


def test_string_columns_model_matches_sklearn(work: dict) -> None:
    est, frame = work["frame_est"], work["frame"]
    with serving(work["tmp"] / "frame.onnx", work["tmp"], "--no-access-log") as server:
        rows = frame.iloc[:50]
        r = server.post("/predict", json=rows.to_dict(orient="records"))
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [p["label"] for p in preds] == est.predict(rows).tolist()
        np.testing.assert_allclose([p["probabilities"] for p in preds], est.predict_proba(rows), atol=1e-5)
        # a number where the city (a string) goes: 422 naming the field and the row
        bad = rows.to_dict(orient="records")
        bad[7]["city"] = 3
        r = server.post("/predict", json=bad)
        assert r.status_code == 422
        assert {"field": "city", "row": 7} == {k: r.json()["detail"][0][k] for k in ("field", "row")}
        # an unseen category is scored (OneHotEncoder ignores it) and shows up as drift
        r = server.post("/predict", json={"age": [30.0] * 60, "income": [50.0] * 60, "city": ["oslo"] * 60})
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(r.json()["outputs"]["label"], est.predict(
            frame.iloc[:60].assign(age=30.0, income=50.0, city="oslo")))
        city = next(f for f in server.get("/drift").json()["features"] if f["input"] == "city")
        assert city["unseen_share"] > 0.5 and city["drifted"]


def test_concurrent_requests_are_not_mixed(work: dict, rf_server: Server) -> None:
    X, rf = work["X"], work["rf"]
    expected = rf.predict_proba(X)
    failures: list[str] = []

    def client(k: int) -> None:
        with httpx.Client(base_url=rf_server.url, timeout=60) as c:
            for j in range(6):
                rows = np.arange(k * 30 + j, k * 30 + j + 1 + (k % 4) * 5) % len(X)
                r = c.post("/predict", json={"X": X[rows].tolist()})
                if r.status_code != 200:
                    failures.append(f"client {k}: {r.status_code} {r.text[:200]}")
                elif not np.allclose(r.json()["outputs"]["probabilities"], expected[rows], atol=1e-5):
                    failures.append(f"client {k} request {j}: answers for other rows")
    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures[:3]


# -- bad requests: a clear 4xx, and the server keeps serving ------------------------------------------------------------

BAD_REQUESTS = [
    # (body or raw bytes, headers, status, words expected in the answer)
    (b"{not json", {}, 400, "malformed JSON"),
    (b"", {}, 400, "malformed JSON"),
    (b'"text"', {}, 422, "array of records"),
    (b"[]", {}, 422, "no rows"),
    (b'{"X": [[1, 2]]}', {}, 422, "expected shape [30]"),
    (b'{"Y": [[1]]}', {}, 422, "unknown field"),
    (b'[{"X": null}]', {}, 422, "expected an array"),
    (b'[{"Z": 1}]', {}, 422, "missing field"),
    (b'{"X": [[' + b",".join([b'"a"'] * 30) + b"]]}", {}, 422, "expected a number"),
    (b'{"X": [[' + b",".join([b"true"] * 30) + b"]]}", {}, 422, "expected a number"),
    (b'{"X": 5}', {}, 422, "must be a JSON array"),
    (b'[{"X": [' + b",".join([b"1"] * 30) + b'], "extra": 1}]', {}, 422, "unknown field"),
    (b'{"X": [[' + b",".join([b"1e999"] + [b"1"] * 29) + b"]]}", {}, 400, "malformed JSON"),
    # nested past orjson's depth limit (400, malformed) or, with the standard library's parser, parsed and refused
    (b"[" * 5000 + b"]" * 5000, {}, (400, 422), ("malformed JSON", "a record must be a JSON object")),
    (b"x=1", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
]


@pytest.mark.parametrize("body,headers,status,words", BAD_REQUESTS, ids=[str(i) for i in range(len(BAD_REQUESTS))])
def test_bad_requests_get_clear_errors(rf_server: Server, body: bytes, headers: dict, status: int, words: str
                                       ) -> None:
    r = rf_server.post("/predict", content=body, headers={"content-type": "application/json", **headers})
    statuses = status if isinstance(status, tuple) else (status,)
    alternatives = words if isinstance(words, tuple) else (words,)
    assert r.status_code in statuses, r.text
    assert any(w in r.text for w in alternatives), r.text
    assert rf_server.get("/health").status_code == 200


def test_the_error_names_the_row(work: dict, rf_server: Server) -> None:
    rows = work["X"][:5].tolist()
    rows[3][7] = "oops"
    r = rf_server.post("/predict", json={"X": rows})
    assert r.status_code == 422
    (problem,) = r.json()["detail"]
    assert problem["field"] == "X" and problem["row"] == 3 and "string" in problem["msg"]


def test_a_row_of_the_wrong_length_is_judged_by_its_length(work: dict, monkeypatch) -> None:
    """A 6 MB body holding one row of 3,000,000 values for an input of a few: the server walked every value
    (14 s of its CPU on this machine, for each such request) before saying the shape was wrong."""
    from portable.serving import inputs

    model = portable.load(work["tmp"] / "rf.onnx")
    width = model.signature.inputs[0].shape[1]
    leaves = []
    real = inputs._check_leaf
    monkeypatch.setattr(inputs, "_check_leaf", lambda v, spec: leaves.append(v) or real(v, spec))
    rows = [[0.5] * width, [0.5] * 300_000, [0.5] * width]
    with pytest.raises(inputs.RequestError) as info:
        inputs.parse({"X": rows}, model.signature, max_rows=10)
    (problem,) = info.value.problems
    assert problem["row"] == 1 and f"expected shape [{width}], got [300000]" in problem["msg"], problem
    assert len(leaves) <= 2 * width, f"{len(leaves):,} values walked"


def test_an_unknown_field_is_not_echoed_whole(work: dict) -> None:
    from portable.serving import inputs

    model = portable.load(work["tmp"] / "rf.onnx")
    with pytest.raises(inputs.RequestError) as info:
        inputs.parse({"X": work["X"][:1].tolist(), "k" * 1_000_000: 1}, model.signature, max_rows=10)
    assert len(json.dumps(info.value.to_dict())) < 2_000, "a 1 MB key was echoed in the 422"
    assert "1,000,000 characters" in json.dumps(info.value.to_dict())


def test_missing_values_are_nan_for_float_inputs(work: dict, rf_server: Server) -> None:
    row = work["X"][0].tolist()
    row[0] = None
    r = rf_server.post("/predict", json={"X": [row]})
    assert r.status_code == 200, r.text
    expected = work["rf"].predict_proba(np.array([[np.nan] + row[1:]]))  # scikit-learn's forests take NaN
    np.testing.assert_allclose(r.json()["outputs"]["probabilities"], expected, atol=1e-5)


def test_oversized_bodies_and_batches_get_413(work: dict, rf_server: Server) -> None:
    big = json.dumps({"X": np.tile(work["X"], (8, 1)).tolist()}).encode()  # ~4,500 rows, ~3 MB > 2 MiB
    r = rf_server.post("/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.text
    r = rf_server.post("/predict", json={"X": [[0.0] * 30] * 2001})  # under 2 MiB, over --max-rows 2000
    assert r.status_code == 413 and "2,000 rows" in r.text
    # a chunked body (no content-length) over the limit is cut off too
    r = rf_server.post("/predict", content=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                       headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert rf_server.get("/ready").status_code == 200


def test_a_slow_client_times_out_and_others_are_served(work: dict, rf_server: Server) -> None:
    port = int(rf_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 1000\r\n\r\n{\"X\": [")  # and then nothing
        assert rf_server.post("/predict", json={"X": work["X"][:1].tolist()}).status_code == 200
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


# -- the other endpoints -------------------------------------------------------------------------------------------

def test_metadata_health_ready_openapi(rf_server: Server) -> None:
    assert rf_server.get("/health").json() == {"status": "ok"}
    assert rf_server.get("/ready").json() == {"status": "ready"}
    meta = rf_server.get("/metadata").json()
    assert meta["format"] == "onnx"
    assert [i["name"] for i in meta["signature"]["inputs"]] == ["X"]
    assert meta["provenance"]["portable.source.format"] == "sklearn"
    assert meta["provenance"]["portable.source.library"].startswith("scikit-learn==")
    assert meta["check"]["equivalent"] is True and meta["report"]["equivalent"] is True
    assert meta["profile"]["rows"] == 569 and len(meta["profile"]["inputs"]["X"]["features"]) == 30
    schema = rf_server.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    record = schema["components"]["schemas"]["Record"]["properties"]["X"]
    assert record["minItems"] == record["maxItems"] == 30
    assert "/predict" in schema["paths"] and "post" in schema["paths"]["/predict"]
    assert rf_server.get("/nope").status_code == 404
    assert rf_server.get("/predict").status_code == 405


def test_openapi_schema_validates_a_real_request(work: dict, rf_server: Server) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = rf_server.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    jsonschema.validate({"X": work["X"][0].tolist()}, record)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"X": work["X"][0].tolist()[:3]}, record)


def _metric(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_drift_on_the_live_window_and_metrics(work: dict, rf_server: Server) -> None:
    X, shifted = work["X"], work["shifted"]
    assert rf_server.post("/predict", json={"X": X[:400].tolist()}).status_code == 200
    calm = rf_server.get("/drift").json()
    assert calm["rows"] == 400 and calm["drifted"] is False, [f for f in calm["features"] if f["drifted"]]
    text = rf_server.get("/metrics").text
    assert _metric(text, "portable_drift_detected") == 0
    assert rf_server.post("/predict", json={"X": shifted[100:500].tolist()}).status_code == 200
    moved = rf_server.get("/drift").json()
    assert moved["drifted"] is True
    assert [f["feature"] for f in moved["features"] if f["drifted"]] == ["X[3]"]
    text = rf_server.get("/metrics").text
    assert _metric(text, "portable_drift_detected") == 1
    assert _metric(text, "portable_drift_psi", input="X") >= 0.2
    assert _metric(text, "portable_drift_feature_psi", input="X", feature="X[3]") >= 0.2
    assert _metric(text, "portable_rows_scored_total") >= 800
    assert _metric(text, "portable_requests_total", endpoint="predict", status="200") >= 2
    assert _metric(text, "portable_request_latency_seconds_count", endpoint="predict") >= 2


# -- the page in a real browser ------------------------------------------------------------------------------------

def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_model_card_in_headless_chromium(work: dict, rf_server: Server, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it when run as root)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600"]
    dom = subprocess.run([*flags, "--dump-dom", rf_server.url + "/"], capture_output=True, timeout=120, text=True)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="verdict"' in dom.stdout and "Check: EQUIVALENT" in dom.stdout
    assert "portable check: EQUIVALENT" in dom.stdout  # the check report's own HTML
    assert "X[3]" in dom.stdout and "Live drift" in dom.stdout
    png = tmp_path / "card.png"
    shot = subprocess.run([*flags, f"--screenshot={png}", rf_server.url + "/"], capture_output=True, timeout=120)
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    # no OCR here: check that the screenshot is a real rendering (not blank) and has the verdict's green in it
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    assert img.std() > 10
    green = (np.abs(img - np.array([0x1a, 0x7f, 0x37])).sum(axis=2) < 60).sum()
    assert green > 200, "the verdict's green text is not in the screenshot"


# -- other formats, workers, shutdown --------------------------------------------------------------------------------

def test_nnef_artifact_through_the_executor(work: dict) -> None:
    pytest.importorskip("nnef")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=1000).fit(X, y)
    art = portable.convert(est, to="nnef", data=X, samples=200)
    assert art.report.equivalent
    path = art.save(work["tmp"] / "iris.nnef")
    stored = json.loads((path / "portable.json").read_text())
    assert stored["portable.profile"]["rows"] == 150  # the profile is an object in portable.json
    with serving(path, work["tmp"], "--no-access-log") as server:
        r = server.post("/predict", json={"X": X.tolist()})
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(r.json()["outputs"]["label"], est.predict(X))
        np.testing.assert_allclose(r.json()["outputs"]["probabilities"], est.predict_proba(X), atol=1e-5)
        assert server.get("/metadata").json()["format"] == "nnef"


def test_pfa_document_through_the_engine_with_a_reference(work: dict) -> None:
    import pandas as pd

    doc = PFA_DOCS / "missing_tree.yaml"
    model = portable.load(doc)
    ref = pd.DataFrame({"x": np.linspace(-1, 2, 200), "y": np.linspace(0, 1, 200),
                        "color": np.resize(["red", "green", "blue"], 200)})
    ref.to_csv(work["tmp"] / "ref.csv", index=False)
    rows = {"x": [0.2, None, 1.5], "y": [0.1, 0.4, None], "color": ["red", "blue", "green"]}
    expected = model.run({"x": np.array([0.2, np.nan, 1.5]), "y": np.array([0.1, 0.4, np.nan]),
                          "color": np.array(rows["color"])})["output"]
    with serving(doc, work["tmp"], "--reference", str(work["tmp"] / "ref.csv"), "--no-access-log") as server:
        r = server.post("/predict", json=rows)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"]["output"] == expected.tolist()
        assert server.get("/metadata").json()["profile"]["rows"] == 200
        assert "NOT CHECKED" in server.get("/").text


def test_two_workers_and_graceful_shutdown(work: dict) -> None:
    X, rf = work["X"], work["rf"]
    with serving(work["tmp"] / "rf.onnx", work["tmp"], "--workers", "2", "--no-access-log") as server:
        for _ in range(4):
            r = server.post("/predict", json={"X": X[:5].tolist()})
            assert r.status_code == 200
            np.testing.assert_array_equal(r.json()["outputs"]["label"], rf.predict(X[:5]))
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0
        assert "Finished server process" in server.log.read_text()


def test_a_bad_artifact_fails_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "portable.cli", "serve", str(bad), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "broken.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_the_app_uses_its_own_metrics_registry(work: dict) -> None:
    from prometheus_client import REGISTRY

    from portable.serving import create_app

    before = set(REGISTRY._names_to_collectors)  # noqa: SLF001 - the global registry must stay untouched
    create_app(work["tmp"] / "rf.onnx")
    create_app(work["tmp"] / "rf.onnx")  # a second app in the same process: no duplicate-metric error
    assert set(REGISTRY._names_to_collectors) == before  # noqa: SLF001
    assert os.environ.get("PORTABLE_SERVE_CONFIG") is None
