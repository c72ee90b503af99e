"""The ASGI application of `portable serve`: Starlette routes around one loaded `Model`.

Starlette (not FastAPI) because the request schema is not known until an artifact is loaded: FastAPI's value is
validation from pydantic models declared in code, and pydantic would validate a 1,000-row batch value by value,
where numpy does it column by column. Starlette is the well-kept toolkit FastAPI itself is built on; uvicorn
serves it. JSON goes through orjson (numpy arrays written natively) and small batches are scored on the event
loop (onnxruntime needs no thread hop for one row); large ones in the thread pool, so the loop keeps serving.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..errors import PFARuntimeError, PortableError
from ..limits import load_json
from ..model import Model
from ..profile import DriftThresholds, drift, read_profile
from . import inputs as io
from .page import model_card
from .schema import openapi

log = logging.getLogger("portable.serve")

if hasattr(asyncio, "timeout"):  # Python >= 3.11: a deadline on the current task, no task of its own
    _timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.10
    import anyio

    def _timeout(seconds: float) -> Any:
        return anyio.fail_after(seconds)

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

    _loads: Callable[[bytes], Any] = orjson.loads
    _DecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # orjson is in the `serve` extra; the standard library is the slower fallback
    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, default=lambda a: a.tolist()).encode()

    _loads = json.loads
    _DecodeError = ValueError


@dataclass(frozen=True)
class ServeConfig:
    """What a server accepts and keeps.

    Attributes:
        max_rows: rows per request (413 beyond).
        max_body: bytes per request body (413 beyond).
        body_timeout: seconds a client may take to send its body (408 beyond): slow clients do not hold a slot.
        window: live rows kept for drift.
        thresholds: when a feature counts as drifted.
        inline_rows: batches up to this size are scored on the event loop (ONNX only), larger in a thread.
        threads: onnxruntime intra-op threads per request (concurrency comes from concurrent requests).
        refresh: seconds between reloads of the model card page (0: none).
    """

    max_rows: int = 10_000
    max_body: int = 32 * 1024 * 1024
    body_timeout: float = 30.0
    window: int = 10_000
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    inline_rows: int = 64
    threads: int = 1
    refresh: int = 0

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_body", "window", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PortableError(f"{name} must be an integer >= 1, not {v!r}")
        if not (isinstance(self.body_timeout, (int, float)) and self.body_timeout > 0):
            raise PortableError(f"body_timeout must be a number > 0, not {self.body_timeout!r}")


# -- running the model -------------------------------------------------------------------------------------------

class Runner:
    """Scores validated arrays. ONNX gets its own onnxruntime session tuned for serving (thread-safe, no lock);
    other formats go through `Model.run` one request at a time (their executors are not known to be
    thread-safe)."""

    def __init__(self, model: Model, threads: int) -> None:
        self.model = model
        self.outputs = model.signature.output_names
        self.session: Any = None
        self.lock = threading.Lock()
        if model.format == "onnx" and getattr(model, "runtime", "") == "onnxruntime":
            from ..registry import require

            ort = require("onnxruntime", purpose="serving ONNX models")
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(model.proto.SerializeToString(), opts,  # type: ignore[attr-defined]
                                                providers=["CPUExecutionProvider"])

    @property
    def thread_safe(self) -> bool:
        return self.session is not None

    def run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.session is None:
            with self.lock:
                return self.model.run(arrays)
        results = self.session.run(self.outputs, arrays)
        return {n: (r.astype(str) if r.dtype == object else r) for n, r in zip(self.outputs, results)}


# -- the live window ---------------------------------------------------------------------------------------------

class Window:
    """The last `size` rows of every profiled input, in ring buffers (numbers as float64, text as objects).

    `add` only queues the request's arrays (a request pays about a microsecond); they are folded into the ring
    buffers when the window is read, or when the queue holds a window's worth of rows.
    """

    def __init__(self, profile: Mapping[str, Any], size: int) -> None:
        self.size = size
        self.names = list(profile["inputs"])
        self.buffers: dict[str, np.ndarray] = {}
        self.count = 0
        self.pending: list[Mapping[str, np.ndarray]] = []
        self.pending_rows = 0
        self.lock = threading.Lock()

    def add(self, arrays: Mapping[str, np.ndarray]) -> None:
        with self.lock:
            self.pending.append(arrays)
            self.pending_rows += len(next(iter(arrays.values())))
            if self.pending_rows >= self.size:
                self._fold()

    def _fold(self) -> None:
        if len(self.pending) > 1:  # one write of the queued rows, not one per request
            self.pending = [{n: np.concatenate([a[n].reshape(len(a[n]), -1) for a in self.pending])
                             for n in self.names}]
        for arrays in self.pending:
            self._write(arrays)
        self.pending, self.pending_rows = [], 0

    def _write(self, arrays: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(arrays.values())))
        k = min(n, self.size)
        idx = (self.count % self.size + np.arange(k)) % self.size
        for name in self.names:
            a = arrays[name]
            flat = a.reshape(n, -1)[n - k:]
            buf = self.buffers.get(name)
            if buf is None:
                dtype = object if a.dtype.kind in "OUS" else np.float64
                buf = self.buffers[name] = np.empty((self.size, flat.shape[1]), dtype=dtype)
            buf[idx] = flat
        self.count += k

    def arrays(self) -> dict[str, np.ndarray]:
        with self.lock:
            self._fold()
            filled = min(self.count, self.size)
            return {n: self.buffers[n][:filled].copy() if n in self.buffers else np.zeros((0, 1))
                    for n in self.names}


# -- metrics -----------------------------------------------------------------------------------------------------

class Metrics:
    """Prometheus metrics in a registry of this app's own (never the process-wide default registry)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self.requests = Counter("portable_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                                registry=r)
        self.errors = Counter("portable_errors", "Requests answered with a 4xx or 5xx status",
                              ["endpoint", "status"], registry=r)
        self.latency = Histogram("portable_request_latency_seconds", "Time to answer a request", ["endpoint"],
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                                 registry=r)
        self.rows = Counter("portable_rows_scored", "Rows scored by /predict", registry=r)
        self.window_rows = Gauge("portable_drift_window_rows", "Live rows in the drift window", registry=r)
        self.drifted = Gauge("portable_drift_detected", "1 drift, 0 none, -1 no verdict (too few rows or no profile)",
                             registry=r)
        self.psi = Gauge("portable_drift_psi", "Largest PSI of an input's features against the profile", ["input"],
                         registry=r)
        self.feature_psi = Gauge("portable_drift_feature_psi", "PSI of one feature against the profile",
                                 ["input", "feature"], registry=r)
        self.missing = Gauge("portable_drift_missing_rate_change", "Largest missing-rate change of an input",
                             ["input"], registry=r)
        self.unseen = Gauge("portable_drift_unseen_share", "Largest share of unseen categories of an input",
                            ["input"], registry=r)

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per (endpoint, status)
            s = str(status)
            children = self._children[key] = (self.requests.labels(endpoint, s),
                                              self.errors.labels(endpoint, s) if status >= 400 else None,
                                              self.latency.labels(endpoint))
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        children[2].observe(seconds)

    def set_drift(self, result: dict[str, Any] | None) -> None:
        if result is None:
            self.drifted.set(-1)
            return
        self.window_rows.set(result["rows"])
        self.drifted.set(-1 if result["drifted"] is None else int(result["drifted"]))
        for name, d in result["inputs"].items():
            self.psi.labels(name).set(d["psi"])
            self.missing.labels(name).set(d["missing_rate_change"])
            self.unseen.labels(name).set(d["unseen_share"])
        for f in result["features"]:
            self.feature_psi.labels(f["input"], f["feature"]).set(f["psi"])


# -- the service -------------------------------------------------------------------------------------------------

def provenance(model: Model) -> dict[str, Any]:
    """The artifact's `portable.*` metadata (the profile and reports aside), or its origin when it has none."""
    meta = getattr(model, "metadata", None) or {}
    prov = {k: v for k, v in meta.items()
            if k.startswith("portable.") and k not in ("portable.profile", "portable.report", "portable.check")}
    o = model.origin
    for key, value in (("portable.source.format", o.format), ("portable.source.name", o.name),
                       ("portable.source.sha256", o.sha256)):
        if value and key not in prov:
            prov[key] = value
    return prov


def _json_meta(model: Model, key: str) -> dict[str, Any] | None:
    raw = (getattr(model, "metadata", None) or {}).get(key)
    if raw is None:
        return None
    try:
        value = load_json(raw, what=f"the {key} metadata") if isinstance(raw, str) else raw
    except (ValueError, PortableError):  # malformed, or nested beyond max_depth (a RecursionError otherwise)
        return None
    return value if isinstance(value, dict) else None


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


class Service:
    """One served model: its runner, metrics, drift window and the request handlers."""

    def __init__(self, model: Model, config: ServeConfig, profile: dict[str, Any] | None = None) -> None:
        self.model = model
        self.config = config
        self.signature = model.signature
        self.runner = Runner(model, config.threads)
        self.profile = profile if profile is not None else read_profile(getattr(model, "metadata", None) or {},
                                                                          path=getattr(model, "path", None))
        if self.profile is not None:
            missing = [n for n in self.profile["inputs"] if n not in self.signature.input_names]
            if missing:
                raise PortableError(f"the data profile describes inputs {missing} that the model does not have "
                                    f"(its inputs are {self.signature.input_names})")
        self.window = Window(self.profile, config.window) if self.profile else None
        self.metrics = Metrics()
        self.summary = _json_meta(model, "portable.check")
        self.report = _json_meta(model, "portable.report")
        self.title = model.origin.name or model.name
        self.ready = False
        self.openapi = openapi(self.signature, title=f"portable: {self.title}", version=__version__,
                               max_rows=config.max_rows,
                               description=f"{model.format} model served by portable {__version__}")
        self._json_headers = {"content-type": "application/json"}

    # -- lifecycle -------------------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Score one row (typical values from the profile when there is one) so the first request is not slow."""
        try:
            self.runner.run(self._typical_row())
        except Exception as exc:  # a model that refuses the made-up row still serves real ones
            log.warning("warm-up row was refused (%s); serving anyway", exc)
        self.ready = True

    def _typical_row(self) -> dict[str, np.ndarray]:
        row = {}
        for spec in self.signature.inputs:
            shape = tuple(1 if d is None else d for d in spec.shape) or (1,)
            feats = (self.profile or {}).get("inputs", {}).get(spec.name, {}).get("features", [])
            values = [(f.get("quantiles") or {}).get("0.5") if f["kind"] == "numeric"
                      else next(iter(f["frequencies"]), "") for f in feats]
            if spec.is_string:
                a = np.array([v if isinstance(v, str) else "" for v in values] or [""], dtype=object)
            else:
                a = np.array([v if isinstance(v, (int, float)) else 0 for v in values] or [0], dtype=spec.dtype)
            row[spec.name] = np.resize(a, shape)
        return row

    # -- handlers -------------------------------------------------------------------------------------------
    def endpoint(self, name: str, handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """Wrap a handler: errors become JSON 4xx/5xx, and every request is counted and timed."""
        from starlette.responses import Response

        async def wrapped(request: Any) -> Any:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except io.RequestError as exc:
                response = Response(_dumps(exc.to_dict()), status_code=exc.status, headers=self._json_headers)
            except Exception as exc:  # the server keeps serving; the client learns what failed
                log.exception("error while answering %s", name)
                response = Response(_dumps({"error": f"internal error: {type(exc).__name__}: {exc}"}),
                                    status_code=500, headers=self._json_headers)
            self.metrics.record(name, response.status_code, time.perf_counter() - started)
            return response
        return wrapped

    # -- /predict, straight on ASGI: the hot path skips Starlette's request, routing and response objects ------
    async def asgi_predict(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer one POST /predict; every failure is a JSON 4xx/5xx, counted and timed like the other endpoints."""
        started = time.perf_counter()
        try:
            if scope["method"] != "POST":
                raise io.RequestError(405, "use POST to score rows")
            payload, status = await self._score(scope, receive), 200
        except io.RequestError as exc:
            payload, status = _dumps(exc.to_dict()), exc.status
        except _Disconnected:
            self.metrics.record("predict", 499, time.perf_counter() - started)  # nginx's "client closed request"
            return
        except Exception as exc:  # the server keeps serving; the client learns what failed
            log.exception("error while scoring")
            payload, status = _dumps({"error": f"internal error: {type(exc).__name__}: {exc}"}), 500
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if status == 405:
            headers.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        self.metrics.record("predict", status, time.perf_counter() - started)

    async def _score(self, scope: dict[str, Any], receive: Any) -> bytes:
        raw = await self._body(scope, receive)
        try:
            body = _loads(raw)
        except (_DecodeError, RecursionError) as exc:  # orjson stops at depth 1024; the stdlib recurses
            raise io.RequestError(400, f"malformed JSON: {exc or 'nested too deeply'}") from None
        arrays, orient = io.parse(body, self.signature, max_rows=self.config.max_rows)
        n = len(next(iter(arrays.values())))
        try:
            if self.runner.thread_safe and n <= self.config.inline_rows:
                outputs = self.runner.run(arrays)
            else:
                from starlette.concurrency import run_in_threadpool

                outputs = await run_in_threadpool(self.runner.run, arrays)
        except PFARuntimeError as exc:
            raise io.RequestError(422, f"the model refused the input: {exc}") from None
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise io.RequestError(500, f"the model failed on this batch: {first}") from None
        self.metrics.rows.inc(n)
        if self.window is not None:
            self.window.add(arrays)
        return _dumps(io.outputs_json(outputs, orient))

    async def _body(self, scope: dict[str, Any], receive: Any) -> bytes:
        """The request body, within the size limit and the time limit."""
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        if ctype and "json" not in ctype.lower():
            raise io.RequestError(415, f"send application/json, not {ctype}")
        limit = self.config.max_body
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise io.RequestError(413, f"a body of {int(declared):,} bytes is over the limit of {limit:,} bytes")
        chunks, size = [], 0
        try:
            async with _timeout(self.config.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise io.RequestError(413, f"the body is over the limit of {limit:,} bytes")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise io.RequestError(408, f"the body did not arrive within {self.config.body_timeout:g} s") from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _drift_off_loop(self) -> tuple[dict[str, Any] | None, str]:
        """`drift_now` in the thread pool: a wide window takes milliseconds the event loop should not wait."""
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.drift_now)

    def drift_now(self) -> tuple[dict[str, Any] | None, str]:
        """(drift of the live window, or None, and why not)."""
        if self.profile is None or self.window is None:
            return None, ("the artifact has no data profile: convert or check it with data= (--data), or serve it "
                          "with --reference DATA")
        return drift(self.profile, self.window.arrays(), self.config.thresholds), ""

    async def drift(self, request: Any) -> Any:
        from starlette.responses import Response

        result, reason = await self._drift_off_loop()
        body = result if result is not None else {"drifted": None, "reason": reason}
        return Response(_dumps(body), headers=self._json_headers)

    async def metadata(self, request: Any) -> Any:
        from starlette.responses import Response

        c = self.config
        body = {"name": self.title, "format": self.model.format, "signature": self.signature.to_dict(),
                "provenance": provenance(self.model), "check": self.summary, "report": self.report,
                "profile": self.profile,
                "limits": {"max_rows": c.max_rows, "max_body_bytes": c.max_body, "body_timeout_s": c.body_timeout},
                "drift": {"window": c.window, "thresholds": dataclasses.asdict(c.thresholds)},
                "server": {"portable": __version__}}
        return Response(_dumps(body), headers=self._json_headers)

    async def health(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(b'{"status":"ok"}', headers=self._json_headers)

    async def ready_check(self, request: Any) -> Any:
        from starlette.responses import Response

        if self.ready:
            return Response(b'{"status":"ready"}', headers=self._json_headers)
        return Response(b'{"status":"not ready"}', status_code=503, headers=self._json_headers)

    async def metrics_text(self, request: Any) -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response

        self.metrics.set_drift((await self._drift_off_loop())[0])
        return Response(generate_latest(self.metrics.registry), headers={"content-type": CONTENT_TYPE_LATEST})

    async def openapi_json(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(_dumps(self.openapi), headers=self._json_headers)

    async def page(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse

        result, reason = await self._drift_off_loop()
        return HTMLResponse(model_card(title=self.title, fmt=self.model.format, signature=self.signature,
                                       provenance=provenance(self.model), summary=self.summary or self.report,
                                       report_html=self._report_html(), drift=result, drift_reason=reason,
                                       refresh=self.config.refresh))

    def _report_html(self) -> str | None:
        if not self.report:
            return None
        from ..equivalence.report import Report

        names = {f.name for f in dataclasses.fields(Report)}
        try:
            return Report(**{k: v for k, v in self.report.items() if k in names})._repr_html_()
        except Exception:  # a report written by another version: fall back to the JSON summary
            return None


def build_app(service: Service) -> Any:
    """The Starlette application of a `Service`."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Route

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        service.warm_up()
        yield
        service.ready = False

    s, e = service, service.endpoint
    routes = [Route("/metadata", e("metadata", s.metadata)),
              Route("/drift", e("drift", s.drift)),
              Route("/health", e("health", s.health)),
              Route("/ready", e("ready", s.ready_check)),
              Route("/metrics", e("metrics", s.metrics_text)),
              Route("/openapi.json", e("openapi", s.openapi_json)),
              Route("/", e("page", s.page))]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    return PortableApp(app, service)


class PortableApp:
    """The ASGI application: POST /predict answered directly, everything else (lifespan included) by Starlette."""

    def __init__(self, starlette: Any, service: Service) -> None:
        self.starlette = starlette
        self.service = service
        self.state = starlette.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            await self.service.asgi_predict(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


__all__ = ["ServeConfig", "Service", "PortableApp", "build_app", "Runner", "Window"]
