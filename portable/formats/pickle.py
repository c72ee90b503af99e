"""The `pickle` format: pickle, joblib and skops files holding a fitted scikit-learn model.

Loading never unpickles a global outside the allowlist (see `portable.safety`). The loaded model runs through
scikit-learn; the `pickle -> sklearn` converter unwraps it so that routes continue from the estimator.
"""
from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .._io import sha256_file
from ..errors import InputError, PortableError, locate
from ..model import Origin
from ..registry import LoadOptions, register_format
from .sklearn import SklearnModel, is_estimator, library_version

#: The extensions joblib.dump compresses by (`joblib.compressor`'s `extension` of zlib, gzip, bz2, lzma, xz, lz4):
#: `joblib.dump(model, "model.pkl.gz")` writes a gzip stream whatever `compress=` says.
COMPRESSED = (".z", ".gz", ".bz2", ".lzma", ".xz", ".lz4")
#: Pickle files by name: plain, and each compressed by joblib (`model.pkl.gz`, `model.joblib.xz`, ...).
EXTENSIONS = (".pkl", ".pickle", ".joblib", ".skops") + tuple(
    base + ext for base in (".pkl", ".pickle", ".joblib") for ext in COMPRESSED)


class PickleModel(SklearnModel):
    """A model loaded (safely) from a pickle, joblib or skops file; runs through scikit-learn.

    A file is untrusted, so `run` goes to a worker process that loads the same file once and answers batches
    (`portable.safety.isolate`): a segfault, a hang or a memory blow-up in a library becomes a
    `ModelCrashedError` instead of taking the caller down. `isolate=False` runs in-process (the worker itself).
    """

    format = "pickle"

    def __init__(self, estimator: Any, *, origin: Origin | None = None, data: Any = None, trust: Any = (),
                 isolate: bool = True) -> None:
        super().__init__(estimator, origin=origin, data=data)
        self.trust = tuple(trust)
        self.isolate = bool(isolate and self.origin.path)
        self._runner: Any = None

    def _run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if not self.isolate:
            return super()._run(inputs)
        return self._worker().run(inputs)

    def _worker(self) -> Any:
        if self._runner is None:
            from ..safety.isolate import IsolatedRunner

            self._runner = IsolatedRunner(str(self.origin.path), self.trust, self.signature.to_dict(), self.name)
        return self._runner

    def remote_hints(self, hints: Any) -> None:
        """The hints that run the estimator (the quantity `predict` follows, neighbour ties) computed by the isolated
        worker, as `run` is: the file's code never runs in this process. Without them a pickled model's near-ties
        were judged on its outputs (a k-NN row whose neighbours all tie, or an SGD classifier's saturated
        probabilities, was a mismatch where the in-memory estimator's check excused it, or the other way)."""
        import dataclasses

        if hints.decision is not None:
            def compute(inputs: Any) -> np.ndarray:
                return self._worker().ask("decision", dict(inputs))["q"]

            hints.decision = dataclasses.replace(hints.decision, compute=compute)
        if hints.ties is not None:
            def ties(inputs: Any, rtol: float) -> np.ndarray:
                return self._worker().ask("ties", dict(inputs), rtol=float(rtol))["t"].astype(bool)

            hints.ties = ties

    def with_data(self, data: Any) -> PickleModel:
        new = type(self)(self.estimator, origin=self.origin, data=data, trust=self.trust, isolate=self.isolate)
        new.notes = list(self.notes)
        return new

    def close(self) -> None:
        """Stop the worker process (it also stops when the model is garbage-collected)."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None


def _compressed_pickle(path: Path) -> bool:
    """Whether `path`, named like a compressed file (`model.gz`: joblib.dump compresses by the extension alone),
    starts with the magic bytes of the joblib compressor its extension names, and its name does not say it is
    something else compressed (`data.csv.gz`, `model.onnx.gz`: another format's or a data file's extension)."""
    inner = Path(path.stem).suffix.lower()
    if inner in _NOT_PICKLES or not path.is_file():
        return False
    from ..safety.container import compressor_prefix

    want = compressor_prefix(path.suffix.lower())
    if want is None:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(len(want)) == want
    except OSError:
        return False


#: Inner extensions of compressed names that are not pickles (`x.csv.gz`, `x.onnx.gz`, `x.tar.gz`...).
_NOT_PICKLES = frozenset({".onnx", ".nnef", ".pfa", ".json", ".yaml", ".yml", ".csv", ".tsv", ".txt", ".npy",
                          ".npz", ".parquet", ".tar", ".h5", ".pt", ".pth", ".bin"})


def load_estimator(path: Path, trust: tuple[str, ...]) -> tuple[Any, list[str]]:
    """Unpickle `path` through the restricted loader; returns the object and notes (e.g. version warnings)."""
    from ..safety import safe_load

    return safe_load(path, trust=trust)


#: How many items of a list or dict that is not a model `not_a_model` looks into for a model.
_LOOK_AT = 1000


def not_a_model(obj: Any, path: Path) -> InputError:
    """The error for a file that holds something other than a model, pointing at a model nested inside."""
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}".removeprefix("builtins.")
    inner: list[str] = []
    # the first items only: a file can hold a list of tens of millions of items (a few bytes each), and a look
    # at each took longer than loading them
    if isinstance(obj, dict):
        inner = [f"[{k!r}]" for k, v in islice(obj.items(), _LOOK_AT) if is_estimator(v)]
    elif isinstance(obj, (list, tuple)):
        inner = [f"[{i}]" for i, v in enumerate(islice(obj, _LOOK_AT)) if is_estimator(v)]
    hint = (f"; it holds a model at {', '.join(inner[:3])}: save that object on its own (joblib.dump(obj"
            f"{inner[0]}, ...))" if inner else "")
    return InputError(f"the file holds a {kind}, not a model (expected a fitted scikit-learn estimator or "
                      f"pipeline){hint}", path=path)


@register_format("pickle", extensions=EXTENSIONS, priority=20,
                 description="a pickle, joblib or skops file holding a fitted scikit-learn model")
class PickleFormat:
    """A pickle, joblib or skops file holding a fitted scikit-learn model."""

    @staticmethod
    def sniff(source: Any) -> bool:
        if not isinstance(source, (str, Path)):
            return False
        name = Path(source).name.lower()
        if name.endswith(EXTENSIONS):
            return Path(source).is_file()
        return name.endswith(COMPRESSED) and _compressed_pickle(Path(source))

    @staticmethod
    def load(source: Any, options: LoadOptions) -> PickleModel:
        path = Path(source)
        obj, notes = load_estimator(path, options.trust)
        if not is_estimator(obj):
            raise not_a_model(obj, path)
        origin = Origin("pickle", name=path.name, path=str(path), sha256=sha256_file(path),
                        library=library_version(obj))
        try:
            model = PickleModel(obj, origin=origin, trust=options.trust)
        except PortableError as exc:  # malformed internals, or a model the signature cannot describe (a classifier
            raise locate(exc, path)   # whose classes_ is 2-D): the message names the file, like every reader's
        model.notes.extend(notes)
        return model
