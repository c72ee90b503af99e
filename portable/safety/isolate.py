"""Run an untrusted original model in a worker process, so that a crash or a hang in a library is reported, not
suffered (DESIGN §8).

A model loaded from a file (pickle, joblib, skops) is untrusted: even after the loader's checks, its library's
compiled code may crash (a segfault kills the interpreter) or loop for ever on inputs. `IsolatedRunner` starts
one worker (`python -m portable.safety.isolate`) per model, which loads the file itself once (through the same
restricted loader) and then answers batches. The worker has an address-space limit (`resource.setrlimit`), each
batch a wall-clock limit; a worker that dies, hangs or runs out of memory becomes a `ModelCrashedError`
("the original model crashed (SIGSEGV) on a batch of 1000 rows ..."), exit code 1, and stays failed.

Messages are length-prefixed frames: a JSON header, then arrays in `.npy` format read with `allow_pickle=False`
(object arrays travel as JSON lists of plain values), so nothing the worker sends is ever unpickled.

Limits: `PORTABLE_ORIGINAL_TIMEOUT` (seconds per batch, default 300) and `PORTABLE_ORIGINAL_MEMORY` (bytes of
address space, default 8 GiB; `0` disables). In-memory estimators a user passes directly are trusted and run
in-process.
"""
from __future__ import annotations

import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from ..errors import ModelCrashedError, PortableError

DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY = 8 << 30
#: A worker with no request for this many seconds exits (code 0); the parent restarts it on the next batch.
DEFAULT_IDLE = 30.0
_MAX_FRAME = 1 << 34
_PLAIN = (str, int, float, bool, type(None))


def _limits() -> tuple[float, int]:
    try:
        timeout = float(os.environ.get("PORTABLE_ORIGINAL_TIMEOUT", DEFAULT_TIMEOUT))
        memory = int(float(os.environ.get("PORTABLE_ORIGINAL_MEMORY", DEFAULT_MEMORY)))
    except ValueError:
        raise PortableError("PORTABLE_ORIGINAL_TIMEOUT and PORTABLE_ORIGINAL_MEMORY must be numbers") from None
    if not timeout > 0:
        raise PortableError("PORTABLE_ORIGINAL_TIMEOUT must be a positive number of seconds")
    return timeout, max(memory, 0)


# -- framing ------------------------------------------------------------------------------------------------------
def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """A frame: JSON header (with the array names and how each travels) followed by the arrays."""
    blobs: list[bytes] = []
    specs = []
    for name, arr in (arrays or {}).items():
        arr = np.asarray(arr)
        if arr.dtype.hasobject:
            values = arr.ravel().tolist()
            if not all(isinstance(v, _PLAIN) for v in values):
                raise PortableError(f"cannot send {name!r} to the worker: it holds values other than text and "
                                    "numbers")
            blob = json.dumps({"shape": list(arr.shape), "values": values}).encode()
            specs.append([name, "json"])
        else:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            blob = buf.getvalue()
            specs.append([name, "npy"])
        blobs.append(blob)
    head = json.dumps(dict(header, arrays=specs)).encode()
    parts = [head, *blobs]
    return struct.pack("<I", len(parts)) + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def decode(parts: list[bytes]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    header = json.loads(parts[0])
    if not isinstance(header, dict) or len(header.get("arrays", [])) != len(parts) - 1:
        raise ValueError("a malformed frame")
    arrays = {}
    for (name, how), blob in zip(header["arrays"], parts[1:]):
        if how == "json":
            obj = json.loads(blob)
            values = obj["values"]
            if not all(isinstance(v, _PLAIN) for v in values):
                raise ValueError("a malformed object array")
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            arrays[name] = arr.reshape([int(n) for n in obj["shape"]])
        else:
            arrays[name] = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
    return header, arrays


def _read_frame(fd: int, deadline: float | None) -> list[bytes]:
    def exact(n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise TimeoutError
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    count = struct.unpack("<I", exact(4))[0]
    if count > 10000:
        raise ValueError("a malformed frame")
    parts = []
    for _ in range(count):
        size = struct.unpack("<Q", exact(8))[0]
        if size > _MAX_FRAME:
            raise ValueError("a malformed frame")
        parts.append(exact(size))
    return parts


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- the parent's side -------------------------------------------------------------------------------------------
def _set_limits(memory: int) -> Any:
    def apply() -> None:  # pragma: no cover - runs in the child before exec
        import resource

        if memory:
            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()  # its own process group: killing it kills its threads' helpers too

    return apply


class IsolatedRunner:
    """A worker process that loads `path` once and runs batches for a model with `signature`."""

    def __init__(self, path: str, trust: tuple[str, ...], signature: dict[str, Any], name: str) -> None:
        self.path, self.trust, self.signature, self.name = path, tuple(trust), signature, name
        self.proc: subprocess.Popen | None = None
        self.failed: PortableError | None = None  # a crash, or the worker's own load failing
        self._stderr: Any = None

    def _start(self) -> None:
        timeout, memory = _limits()
        self._stderr = tempfile.TemporaryFile()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONWARNINGS="ignore",
                   PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "portable.safety.isolate"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr,
                                         preexec_fn=_set_limits(memory), env=env, close_fds=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PortableError(f"could not start the worker process that runs the original model: {exc}",
                                path=self.path) from None
        # loading (imports included) gets the same limit as one batch, plus time to import the libraries
        try:
            self._call({"op": "load", "path": self.path, "trust": list(self.trust), "signature": self.signature},
                       None, timeout + 120, "while loading the model")
        except PortableError as exc:
            # the worker could not load the file (changed since, or refused there): stop it and keep the reason
            # for every later batch; left running with no model, it answered each batch 'unknown request'
            self.close()
            if self.failed is None:
                self.failed = exc
            raise

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.failed is not None:
            raise self.failed
        if self.proc is not None and self.proc.poll() == 0:  # it exited after being idle: start another
            self.close()
        if self.proc is None:
            self._start()
        rows = len(next(iter(inputs.values()))) if inputs else 0
        timeout, _ = _limits()
        _header, arrays = self._call({"op": "run"}, inputs, timeout, f"on a batch of {rows} row(s)")
        return arrays

    def ask(self, op: str, inputs: dict[str, np.ndarray], **extra: Any) -> dict[str, np.ndarray]:
        """Another question about a batch (`decision`: the quantity `predict` follows; `ties`: neighbour ties),
        answered by the worker under the same limits as `run`."""
        if self.failed is not None:
            raise self.failed
        if self.proc is not None and self.proc.poll() == 0:
            self.close()
        if self.proc is None:
            self._start()
        rows = len(next(iter(inputs.values()))) if inputs else 0
        timeout, _ = _limits()
        _header, arrays = self._call({"op": op, **extra}, inputs, timeout, f"on a batch of {rows} row(s)")
        return arrays

    def _call(self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None, timeout: float,
              what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            _write_all(proc.stdin.fileno(), encode(header, arrays))
            parts = _read_frame(proc.stdout.fileno(), time.monotonic() + timeout)
            reply, out = decode(parts)
        except TimeoutError:
            self._fail(f"the original model hung {what}: no answer within {timeout:g} s (the limit is "
                       "PORTABLE_ORIGINAL_TIMEOUT); its worker process was stopped")
        except (EOFError, BrokenPipeError, OSError, ValueError, KeyError, TypeError, struct.error):
            self._fail(self._death(what))
        if "error" in reply:
            kind = reply.get("kind", "")
            if kind == "MemoryError":
                self._fail(f"the original model ran out of memory {what} (its worker is limited to "
                           f"{_limits()[1] / 2**30:g} GiB of address space: PORTABLE_ORIGINAL_MEMORY)")
            raise _error_class(kind)(str(reply["error"]), path=self.path)
        return reply, out

    def _death(self, what: str) -> str:
        proc = self.proc
        assert proc is not None
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:].decode(errors="replace").strip().splitlines()
            tail = text[-1] if text else ""
        if code is not None and code < 0:
            try:
                sig = signal.Signals(-code).name
            except ValueError:
                sig = f"signal {-code}"
            how = f"crashed ({sig})"
        else:
            how = f"crashed (its worker exited with code {code})" if code is not None else "stopped answering"
        hint = " (it ran out of memory?)" if "MemoryError" in tail or code == -9 else ""
        return (f"the original model {how} {what}{hint}; a library's compiled code failed on this model, so it "
                "cannot be checked or trusted")

    def _fail(self, message: str) -> None:
        self.close()
        self.failed = ModelCrashedError(message, path=self.path)
        raise self.failed

    def close(self) -> None:
        from .guard import paused

        # may run from __del__ at any moment, even while another file is being unpickled under the guard:
        # stopping our own worker is not that file's doing
        with paused():
            self._close()

    def _close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _error_class(kind: str) -> type[PortableError]:
    from .. import errors

    cls = getattr(errors, kind, None)
    return cls if isinstance(cls, type) and issubclass(cls, PortableError) else PortableError


# -- the worker's side -------------------------------------------------------------------------------------------
def _signature_from(d: dict[str, Any]) -> Any:
    from ..model import Signature, TensorSpec

    def spec(t: dict[str, Any]) -> TensorSpec:
        return TensorSpec(str(t["name"]), str(t["dtype"]), tuple(t["shape"]), str(t.get("kind", "")))

    return Signature(tuple(spec(t) for t in d["inputs"]), tuple(spec(t) for t in d["outputs"]))


def _serve() -> None:  # pragma: no cover - exercised through subprocesses
    import warnings

    warnings.simplefilter("ignore")
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the frames
    model: Any = None
    idle = float(os.environ.get("PORTABLE_ORIGINAL_IDLE", DEFAULT_IDLE))
    while True:
        if model is not None and not select.select([stdin], [], [], idle)[0]:
            return  # idle: exit cleanly (code 0); the parent starts a new worker if it needs one again
        try:
            parts = _read_frame(stdin, None)
        except EOFError:
            return
        try:
            header, arrays = decode(parts)
            if header["op"] == "load":
                model = _load(header)
                reply = encode({"ok": True})
            elif header["op"] == "run" and model is not None:
                reply = encode({"ok": True}, _predict(model, arrays))
            elif header["op"] == "decision" and model is not None and model.input_hints().decision is not None:
                q = np.asarray(model.input_hints().decision.compute(arrays), dtype=np.float64)
                reply = encode({"ok": True}, {"q": q})
            elif header["op"] == "ties" and model is not None and model.input_hints().ties is not None:
                t = np.asarray(model.input_hints().ties(arrays, float(header["rtol"])), dtype=bool)
                reply = encode({"ok": True}, {"t": t})
            else:
                reply = encode({"error": "unknown request", "kind": "PortableError"})
        except PortableError as exc:
            reply = encode({"error": exc.message, "kind": type(exc).__name__})
        except MemoryError:
            reply = encode({"error": "out of memory", "kind": "MemoryError"})
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a model failure
            reply = encode({"error": f"{type(exc).__name__}: {exc}", "kind": "PortableError"})
        _write_all(stdout, reply)


def _predict(model: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`SklearnModel._run`, except that running out of memory is reported as such (the worker's limit)."""
    try:
        return model._predict(arrays)
    except (PortableError, MemoryError):
        raise
    except Exception as exc:  # scikit-learn refusing the input: the same message as in-process
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PortableError(f"scikit-learn could not run {type(model.estimator).__name__} on this input: "
                            f"{type(exc).__name__}: {first}") from None


def _load(header: dict[str, Any]) -> Any:
    from pathlib import Path

    from ..formats.pickle import PickleModel, load_estimator, not_a_model
    from ..formats.sklearn import is_estimator
    from ..model import Origin

    path = Path(header["path"])
    obj, _notes = load_estimator(path, tuple(header.get("trust", ())))
    if not is_estimator(obj):
        raise not_a_model(obj, path)
    model = PickleModel(obj, origin=Origin("pickle", name=path.name, path=str(path)), isolate=False)
    model._signature = _signature_from(header["signature"])
    return model


if __name__ == "__main__":  # pragma: no cover
    _serve()
