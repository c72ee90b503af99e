"""The hostile corpus: pickles, joblib files and skops archives that create a sentinel file when loaded unsafely.

Each `Payload.build(sentinel, scratch)` returns the file's bytes and suffix. `sentinel` lives in an otherwise
empty folder; a payload "went off" when that folder is not empty afterwards. `control` says how the payload is
proven live without portable (plain `pickle.loads`, `joblib.load`, or skops with everything trusted); `None`
when the payload only fires later, when the model is used. `expect` is a substring of a global that must be
named as refused.
"""
from __future__ import annotations

import io
import os
import pickle
import shlex
import shutil
import subprocess
import timeit
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class Call:
    """Pickles as `func(*args)`: the way a hostile pickle calls any importable function."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args

    def __call__(self, *args: Any) -> Any:  # pickle wants a callable in a reduce tuple, even a nested Call
        raise NotImplementedError


class SetstateWriter:
    """An object whose `__setstate__` writes a file: what a malicious class in a skops archive looks like."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __setstate__(self, state: dict) -> None:
        Path(state["path"]).write_text("pwned")


def _touch(sentinel: Path) -> str:
    return f"touch {shlex.quote(str(sentinel))}"


def _write_code(sentinel: Path) -> str:
    return f"open({str(sentinel)!r}, 'w').close()"


def _u0(text: str) -> bytes:
    """A protocol-0 UNICODE string argument."""
    for a, b in (("\\", "\\u005c"), ("\n", "\\u000a"), ("\r", "\\u000d")):
        text = text.replace(a, b)
    return b"V" + text.encode("raw_unicode_escape") + b"\n"


def _u4(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _stack_global_call(module: str, name: str, arg: str) -> bytes:
    """Protocol 4: STACK_GLOBAL module name; call it with one string."""
    return b"\x80\x04" + _u4(module) + _u4(name) + b"\x93" + _u4(arg) + b"\x85R."


def _fitted_pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.arange(40, dtype=float).reshape(20, 2)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, np.arange(20) % 2)


def _pipeline_with(hostile: Any) -> Any:
    pipe = _fitted_pipeline()
    pipe.steps[0][1].mean_ = hostile  # hidden inside an otherwise valid estimator's state
    return pipe


def _joblib_bytes(obj: Any, compress: Any) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=compress)
    return buf.getvalue()


def _skops_bytes(obj: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(obj)


@dataclass(frozen=True)
class Payload:
    id: str
    build: Callable[[Path, Path], tuple[bytes, str]]
    expect: str
    control: str | None = "pickle"


def _p(obj: Any, protocol: int = 4) -> Callable[[Path, Path], tuple[bytes, str]]:
    return lambda s, t: (pickle.dumps(obj(s, t), protocol=protocol), ".pkl")


def _scratch_file(t: Path) -> Path:
    src = t / "source.txt"
    src.write_text("data")
    return src


def _inner_pickle(s: Path, t: Path) -> str:
    inner = t / "inner.pkl"
    inner.write_bytes(pickle.dumps(Call(os.system, _touch(s))))
    return str(inner)


def _joblib_payloads() -> list[Payload]:
    from joblib.compressor import _COMPRESSORS

    out = [Payload("pipeline_nested_joblib_plain",
                   lambda s, t: (_joblib_bytes(_pipeline_with(Call(os.system, _touch(s))), 0), ".joblib"),
                   "system", "joblib")]
    for name in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4"):
        if name == "lz4":
            try:
                import lz4  # noqa: F401
            except ImportError:
                continue
        if name in _COMPRESSORS:
            out.append(Payload(f"pipeline_nested_joblib_{name}",
                               lambda s, t, n=name: (_joblib_bytes(_pipeline_with(Call(os.system, _touch(s))),
                                                                   (n, 3)), ".joblib"),
                               "system", "joblib"))
    return out


def _skops_function_node(s: Path, t: Path) -> tuple[bytes, str]:
    from sklearn.preprocessing import FunctionTransformer

    return _skops_bytes(FunctionTransformer(func=os.system).fit(np.zeros((2, 1)))), ".skops"


def payloads() -> list[Payload]:
    """The corpus (lz4 variants only when lz4 is installed)."""
    from numpy.random import _pickle as np_random_pickle
    from sklearn import datasets

    return [
        Payload("os_system", _p(lambda s, t: Call(os.system, _touch(s)), 2), "system"),
        Payload("subprocess_popen", _p(lambda s, t: Call(subprocess.Popen, ["touch", str(s)])), "Popen"),
        Payload("builtins_eval", _p(lambda s, t: Call(eval, _write_code(s)), 3), "eval"),
        Payload("builtins_exec", _p(lambda s, t: Call(exec, _write_code(s)), 5), "exec"),
        Payload("getattr_import_chain",
                _p(lambda s, t: Call(Call(getattr, Call(__import__, "os"), "system"), _touch(s))), "getattr"),
        Payload("builtins_import", _p(lambda s, t: Call(Call(getattr, Call(__import__, "os"), "system"),
                                                        _touch(s))), "__import__"),
        Payload("builtins_open", _p(lambda s, t: Call(open, str(s), "w"), 2), "open"),
        Payload("shutil_copyfile", _p(lambda s, t: Call(shutil.copyfile, str(_scratch_file(t)), str(s))),
                "copyfile"),
        Payload("pathlib_write_text", _p(lambda s, t: Call(Path.write_text, Path(s), "x")), "write_text"),
        Payload("urllib_urlretrieve",
                _p(lambda s, t: Call(urllib.request.urlretrieve, _scratch_file(t).as_uri(), str(s))),
                "urlretrieve"),
        Payload("timeit_exec", _p(lambda s, t: Call(timeit.timeit, _write_code(s), "pass", timeit.default_timer,
                                                    1)), "timeit"),
        Payload("nested_pickle_loads",
                _p(lambda s, t: Call(pickle.loads, pickle.dumps(Call(os.system, _touch(s))))), "loads"),
        Payload("pandas_read_pickle", _p(lambda s, t: Call(__import__("pandas").read_pickle, _inner_pickle(s, t))),
                "read_pickle"),
        # dotted names that walk from an allowed module into `os` (sklearn and numpy import os)
        Payload("dotted_sklearn_os_system",
                lambda s, t: (_stack_global_call("sklearn._config", "os.system", _touch(s)), ".pkl"), "os.system"),
        Payload("dotted_numpy_os_system",
                lambda s, t: (_stack_global_call("numpy._core._methods", "os.system", _touch(s)), ".pkl"),
                "os.system"),
        # protocol 0: INST and OBJ call a global without REDUCE; Python 2 module names are mapped on load
        Payload("proto0_inst", lambda s, t: (b"(" + _u0(_touch(s)) + b"ios\nsystem\n.", ".pkl"), "os.system"),
        Payload("proto0_obj", lambda s, t: (b"(cos\nsystem\n" + _u0(_touch(s)) + b"o.", ".pkl"), "os.system"),
        Payload("proto0_py2_builtin_eval",
                lambda s, t: (b"c__builtin__\neval\n(" + _u0(_write_code(s)) + b"tR.", ".pkl"), "builtins.eval"),
        # callables inside numpy and scikit-learn that write files
        Payload("numpy_save", _p(lambda s, t: Call(np.save, str(s), [1])), "numpy.save"),
        Payload("numpy_savetxt", _p(lambda s, t: Call(np.savetxt, str(s), [1.0])), "savetxt"),
        Payload("numpy_memmap_class", _p(lambda s, t: Call(np.memmap, str(s), "uint8", "w+", 0, (1,))),
                "memmap"),
        Payload("numpy_ndarray_tofile", _p(lambda s, t: Call(np.ndarray.tofile, np.zeros(1), str(s))),
                "getattr"),
        Payload("sklearn_get_data_home", _p(lambda s, t: Call(datasets.get_data_home, str(s))),
                "get_data_home"),
        Payload("sklearn_dump_svmlight",
                _p(lambda s, t: Call(datasets.dump_svmlight_file, [[1.0]], [1.0], str(s))), "dump_svmlight"),
        # an allowed reconstructor handed a refused callable
        Payload("randomstate_ctor_calls_system",
                _p(lambda s, t: Call(np_random_pickle.__randomstate_ctor, _touch(s), os.system)), "system"),
        Payload("pipeline_nested_pickle", _p(lambda s, t: _pipeline_with(Call(os.system, _touch(s))), 5),
                "system"),
        *_joblib_payloads(),
        Payload("skops_setstate_class",
                lambda s, t: (_skops_bytes(_pipeline_with(SetstateWriter(str(s)))), ".skops"),
                "SetstateWriter", "skops"),
        # fires only when the model is used (transform calls os.system), so there is no load-time control
        Payload("skops_function_os_system", _skops_function_node, "system", None),
    ]


def load_unsafely(control: str, path: Path) -> Any:
    """The control: load the way portable must not (plain pickle, joblib.load, skops trusting everything)."""
    if control == "pickle":
        return pickle.loads(path.read_bytes())
    if control == "joblib":
        import joblib

        return joblib.load(path)
    import skops.io as sio

    data = path.read_bytes()
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


class BadDtype:
    """Pickles as a numpy structured dtype whose BUILD state numpy accepts unchecked (the interpreter crashes
    on the first comparison): a field whose 'dtype' is a float, or a field outside the item."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __reduce__(self) -> tuple:
        if self.kind == "not_a_dtype":
            fields = {"a": (104.0, 0), "b": (np.dtype("i4"), 8)}
        else:
            fields = {"a": (np.dtype("f8"), 4096), "b": (np.dtype("i4"), 8)}
        return np.dtype, ("V12", False, True), (3, "|", None, ("a", "b"), fields, 12, 1, 16)


class ShortTreeState:
    """Pickles as a KDTree rebuilt from a 2-entry state; scikit-learn's __setstate__ reads 13 entries unchecked."""

    def __reduce__(self) -> tuple:
        from sklearn.neighbors import KDTree
        from sklearn.neighbors._kd_tree import newObj

        return newObj, (KDTree,), (np.zeros((3, 2)), np.arange(3))


class ArrayInterfaceState:
    """Pickles as a StandardScaler whose state gives it an `__array_interface__` pointing at address 8: numpy
    turns it into an array over that memory the first time anything calls np.asarray on it."""

    def __reduce__(self) -> tuple:
        from sklearn.preprocessing import StandardScaler

        interface = {"data": (8, False), "shape": (4,), "typestr": "<f8", "version": 3}
        return StandardScaler, (), {"__array_interface__": interface, "with_mean": True}


class ComputedArrayInterface:
    """Like ArrayInterfaceState, but the attribute name is computed at load time (rot13 through the allowlisted
    `_codecs.encode`), so it never appears in the file as text."""

    def __reduce__(self) -> tuple:
        from sklearn.preprocessing import StandardScaler

        interface = {"data": (8, False), "shape": (4,), "typestr": "<f8", "version": 3}
        return StandardScaler, (), {Call(__import__("_codecs").encode, "__neenl_vagresnpr__", "rot13"): interface}
