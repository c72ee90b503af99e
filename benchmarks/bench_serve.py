"""`portable serve` against a minimal hand-written Starlette + onnxruntime service running the same ONNX file.

Both servers run at the same time as subprocesses on loopback (one uvicorn worker each, no access log), and one
asyncio httpx client drives them in turn: for each case (1 or 1,000 rows per request, 1 or 16 concurrent clients)
rounds alternate between the two servers and the median round is kept. Request bodies are encoded once, before
timing; responses are read but not decoded. Bounded: a fixed number of requests per round.
"""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._util import table

HERE = Path(__file__).resolve().parent
ROUNDS = 7
CASES = [  # rows per request, concurrent clients, requests per round
    (1, 1, 200), (1, 16, 320), (1000, 1, 12), (1000, 16, 32),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], port: int, log: Path) -> subprocess.Popen:
    import httpx

    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} was not ready in 120 s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _load(url: str, body: bytes, clients: int, requests: int) -> tuple[float, list[float]]:
    """(requests per second, latencies in seconds) of `requests` POSTs spread over `clients` connections."""
    import httpx

    latencies: list[float] = []
    left = requests
    headers = {"content-type": "application/json"}

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            r = await c.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        started = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def run() -> str:
    import httpx
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    import portable

    X, y = load_breast_cancer(return_X_y=True)
    est = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(X, y)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model = tmp / "cancer_rf.onnx"
    portable.convert(est, to="onnx", data=X, samples=300).save(model)
    ports = {"portable": _port(), "hand-written": _port()}
    cmds = {"portable": [sys.executable, "-m", "portable.cli", "serve", str(model), "--port", str(ports["portable"]),
                         "--no-access-log", "--max-rows", "5000"],
            "hand-written": [sys.executable, str(HERE / "_serve_baseline.py"), str(model),
                             str(ports["hand-written"])]}
    procs = {}
    try:
        for name, cmd in cmds.items():
            procs[name] = _start(cmd, ports[name], tmp / f"{name}.log")
        rng = np.random.default_rng(0)
        bodies = {n: json.dumps({"X": X[rng.integers(0, len(X), n)].tolist()}).encode() for n, _, _ in CASES}
        urls = {name: f"http://127.0.0.1:{p}/predict" for name, p in ports.items()}
        same = {name: httpx.post(u, content=bodies[1000], headers={"content-type": "application/json"},
                                 timeout=60).json()["outputs"]["label"] for name, u in urls.items()}
        assert same["portable"] == same["hand-written"], "the two servers disagree"
        rows = []
        for n, clients, requests in CASES:
            results: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in urls}
            for name, u in urls.items():  # warm both up
                asyncio.run(_load(u, bodies[n], clients, max(clients * 2, 20 if n == 1 else 4)))
            for i in range(ROUNDS):  # the order alternates, so a slow spell of the shared machine hits both
                for name in (list(urls) if i % 2 == 0 else list(urls)[::-1]):
                    results[name].append(asyncio.run(_load(urls[name], bodies[n], clients, requests)))
            figures = {}
            for name, rounds in results.items():
                rps = statistics.median(r[0] for r in rounds)
                lat = np.array([x for r in rounds for x in r[1]]) * 1000
                figures[name] = (rps, np.percentile(lat, 50), np.percentile(lat, 99))
            ratio = statistics.median(a[0] / b[0] for a, b in zip(results["portable"], results["hand-written"]))
            p, h = figures["portable"], figures["hand-written"]
            rows.append([f"{n:,}", clients, f"{p[0]:,.0f}", f"{h[0]:,.0f}", f"**{ratio:.2f}**",
                         f"{p[1]:.2f} / {p[2]:.2f}", f"{h[1]:.2f} / {h[2]:.2f}"])
    finally:
        for proc in procs.values():
            _stop(proc)
    return ("## Serving: `portable serve` against a hand-written Starlette + onnxruntime service\n\n"
            "The same ONNX file (RandomForestClassifier, 50 trees of depth 8, 30 features: breast cancer) behind "
            "`portable serve` and behind the service a user would write by hand (`benchmarks/_serve_baseline.py`: "
            "`await request.json()`, a default `InferenceSession`, `JSONResponse` of `.tolist()`, no validation, "
            "no metrics). One uvicorn worker each, no access log, loopback; one asyncio httpx client process "
            "drives both in "
            f"{ROUNDS} rounds of alternating order (req/s: median round; latencies pooled over the rounds), so client and servers share the machine's cores. "
            "portable's server does more per request (validation against the signature, Prometheus metrics, the "
            "drift window) and is faster because of orjson (numpy arrays written natively), scoring small "
            "batches on the event loop, and an onnxruntime session with one intra-op thread and no spinning (the "
            "default session spins its threads, which starves concurrent requests on two cores). *ratio* is "
            "the median over rounds of portable's requests/s divided by the hand-written service's in the same "
            "round (above 1: portable is faster).\n\n"
            + table(["rows per request", "clients", "portable req/s", "hand-written req/s", "ratio",
                     "portable p50 / p99 ms", "hand-written p50 / p99 ms"], rows))


if __name__ == "__main__":
    print(run())
