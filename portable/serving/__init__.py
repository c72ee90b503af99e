"""`portable serve`: any artifact portable can load, behind a real ASGI server (Starlette on uvicorn).

The package is `serving`, not `serve`, so that `portable.serve` stays a plain function (DESIGN §2: no package
shares its name with a public function; importing a `portable.serve` package would replace the function).

`create_app` builds the application (for tests, or to mount in a larger ASGI app); `serve` runs it with uvicorn
and blocks. Importing this package is light: Starlette, uvicorn, prometheus_client and the model's runtime load
when an app is built.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, PortableError

CONFIG_ENV = "PORTABLE_SERVE_CONFIG"
_NEEDS = ("starlette", "uvicorn", "prometheus_client")


def _require_stack() -> None:
    import importlib.util

    missing = [m for m in _NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(f"serving needs {', '.join(missing)}: pip install 'portable-models[serve]'")


def create_app(artifact: Any, *, trust: Iterable[str] = (), reference: Any = None, **settings: Any) -> Any:
    """The ASGI application serving `artifact` (a path or anything `portable.load` accepts).

    Args:
        reference: data to profile for drift when the artifact stores no profile (or to replace it).
        settings: fields of `ServeConfig` (max_rows, max_body, body_timeout, window, thresholds, inline_rows,
            threads, refresh).

    Raises:
        PortableError: the artifact cannot be loaded, or a setting is invalid.
    """
    _require_stack()
    from .. import api
    from ..profile import DriftThresholds, profile_from_data
    from .app import ServeConfig, Service, build_app

    if isinstance(settings.get("thresholds"), dict):
        settings["thresholds"] = DriftThresholds(**settings["thresholds"])
    unknown = set(settings) - {f for f in ServeConfig.__dataclass_fields__}
    if unknown:
        raise PortableError(f"unknown serve setting(s) {sorted(unknown)}; "
                            f"known: {sorted(ServeConfig.__dataclass_fields__)}")
    config = ServeConfig(**settings)
    model = api.load(artifact, trust=trust)
    profile = None
    if isinstance(reference, dict) and reference.get("version") and "inputs" in reference:
        profile = reference  # an already-built profile (how `serve` hands it to its workers)
    elif reference is not None:
        profile = profile_from_data(reference, model, model.signature)
        if profile is None:
            raise PortableError(f"the reference data does not match the model's inputs {model.signature.input_names}")
    return build_app(Service(model, config, profile))


def app_from_env() -> Any:
    """uvicorn's app factory for `--workers N`: each worker process reads the settings `serve` wrote."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise PortableError(f"{CONFIG_ENV} is not set; start workers through `portable serve`")
    cfg = json.loads(Path(path).read_text())
    return create_app(cfg["artifact"], trust=cfg["trust"], reference=cfg["profile"], **cfg["settings"])


def serve(artifact: Any, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, trust: Iterable[str] = (),
          reference: Any = None, log_level: str = "info", access_log: bool = True, keep_alive: int = 5,
          graceful_timeout: int = 10, limit_concurrency: int | None = 1000, **settings: Any) -> None:
    """Serve `artifact` over HTTP until interrupted (blocking). See `create_app` for the settings.

    Args:
        workers: uvicorn worker processes (each loads the model and keeps its own metrics and drift window);
            more than one needs `artifact` to be a path.
        keep_alive: seconds an idle keep-alive connection stays open (uvicorn's timeout_keep_alive).
        graceful_timeout: seconds in-flight requests get to finish after SIGTERM/SIGINT.
        limit_concurrency: concurrent connections before new ones get 503 (None: no limit).

    Raises:
        PortableError: the artifact cannot be loaded, or an argument is invalid.
    """
    import uvicorn  # noqa: F401 - fails early with the install hint below

    if not isinstance(workers, int) or workers < 1:
        raise PortableError(f"workers must be an integer >= 1, not {workers!r}")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise PortableError(f"port must be an integer between 0 and 65535, not {port!r}")
    app = create_app(artifact, trust=trust, reference=reference, **settings)  # loads and validates, once
    common = dict(host=host, port=port, log_level=log_level, access_log=access_log, timeout_keep_alive=keep_alive,
                  timeout_graceful_shutdown=graceful_timeout, limit_concurrency=limit_concurrency)
    if workers == 1:
        uvicorn.run(app, **common)
        return
    if not isinstance(artifact, (str, Path)):
        raise PortableError("serving with more than one worker needs the artifact as a path")
    service = app.state.service
    cfg = {"artifact": str(Path(artifact).resolve()), "trust": list(trust), "profile": service.profile,
           "settings": {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in settings.items()}}
    fd, cfg_path = tempfile.mkstemp(prefix="portable-serve-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        os.environ[CONFIG_ENV] = cfg_path
        # a worker loads the model before it answers the supervisor's health check: give it time on a busy host
        uvicorn.run("portable.serving:app_from_env", factory=True, workers=workers, timeout_worker_healthcheck=120,
                    **common)
    finally:
        os.environ.pop(CONFIG_ENV, None)
        os.unlink(cfg_path)


__all__ = ["create_app", "serve", "app_from_env"]
