"""Model, Signature and TensorSpec: what every format loads into. numpy only.

A `Model` is anything portable can run: `.format`, `.signature` and `.run(inputs) -> outputs`, batch-first.
The checker only ever compares two `Model`s, so every runnable format can be checked against every other.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import PortableError, SignatureMismatchError

if TYPE_CHECKING:
    from .hints import InputHints

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: numpy dtype name (`float32`, `int64`, `str`, `bool`, …) and shape.

    `None` in the shape is a free dimension; the first dimension is the batch.
    """

    name: str
    dtype: str
    shape: Shape = (None,)
    kind: str = ""  # outputs only: label | probability | score | value

    @property
    def is_string(self) -> bool:
        return self.dtype in ("str", "object", "string")

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith("float")

    def describe(self) -> str:
        dims = ", ".join("N" if i == 0 and d is None else ("?" if d is None else str(d))
                         for i, d in enumerate(self.shape))
        return f"{self.name}: {self.dtype}[{dims}]"

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.kind:
            d["kind"] = self.kind
        return d


@dataclass(frozen=True)
class Signature:
    """The named, typed inputs and outputs of a model."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        return _by_name(self.inputs, name, "input", self._index[0])

    def output(self, name: str) -> TensorSpec:
        return _by_name(self.outputs, name, "output", self._index[1])

    @cached_property
    def _index(self) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
        """Name -> spec (a record of 100k fields must not make every lookup a scan)."""
        return {t.name: t for t in reversed(self.inputs)}, {t.name: t for t in reversed(self.outputs)}

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @cached_property
    def _input_keys(self) -> tuple[tuple[str, ...], frozenset[str]]:
        """The input names in order and as a set (what `Model.run` checks a call's mapping against)."""
        names = tuple(t.name for t in self.inputs)
        return names, frozenset(names)

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def describe(self) -> str:
        ins = "; ".join(t.describe() for t in self.inputs)
        outs = "; ".join(t.describe() for t in self.outputs)
        return f"inputs: {ins}\noutputs: {outs}"

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs]}


def _by_name(specs: tuple[TensorSpec, ...], name: str, what: str, index: dict[str, TensorSpec]) -> TensorSpec:
    if name in index:
        return index[name]
    raise SignatureMismatchError(f"no {what} named '{name}'; the model has {[t.name for t in specs]}")


@dataclass(frozen=True)
class Origin:
    """Where a model came from, carried through every conversion into the artifact's provenance."""

    format: str
    name: str = ""
    path: str | None = None
    sha256: str | None = None
    library: str | None = None  # e.g. "scikit-learn==1.9.1"


class Model:
    """A loaded model of some format. Subclasses implement `signature` and `_run`.

    Attributes:
        format: the registry name of the format (`sklearn`, `onnx`, …).
        origin: where the model (or the model it was converted from) came from.
        report: the equivalence report of the conversion that produced this model, if any.
        notes: remarks collected while loading or converting (warnings a user should see).
    """

    format: str = "?"

    def __init__(self, *, origin: Origin | None = None) -> None:
        self.origin = origin or Origin(self.format)
        self.report: Any = None
        self.notes: list[str] = []
        self.route: list[str] = [self.format]
        self.dtype: str | None = None

    # -- to implement -------------------------------------------------------------------------------------
    @property
    def signature(self) -> Signature:
        raise NotImplementedError

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        raise PortableError(f"the '{self.format}' format cannot be saved; convert it to a target format first")

    def info(self) -> dict[str, Any]:
        """Format-specific details for `portable inspect` (opsets, metadata, size, …)."""
        return {}

    def input_hints(self) -> "InputHints":
        """What this model says about where its inputs live (ranges, categories, tree splits, training points,
        the quantity its label follows, a fixed batch size): see `portable.hints`. The equivalence checker
        learns from both models it compares through this method only. Formats override it; the default says
        nothing."""
        from .hints import InputHints

        return InputHints()

    # -- shared ---------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.origin.name or self.format

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the model on a batch. Inputs are named as in `signature.inputs`, batch-first.

        Raises:
            SignatureMismatchError: an input is missing or unknown.
        """
        if type(inputs) is not dict and not isinstance(inputs, Mapping):  # (a dict skips the ABC's check)
            raise PortableError(f"run() takes a mapping of input name to array (inputs {self.signature.input_names}"
                                f"), not {type(inputs).__name__}")
        expected, known = self.signature._input_keys
        if len(inputs) != len(known) or inputs.keys() != known:  # (one comparison when the names are right)
            missing = [n for n in expected if n not in inputs]
            extra = [n for n in inputs if n not in known]
            raise SignatureMismatchError(f"{self.format} model '{self.name}' expects inputs {list(expected)}; "
                                         f"missing {missing}, unexpected {extra}")
        arrays = {}
        for n in expected:
            try:
                arrays[n] = np.asarray(inputs[n])
            except Exception as exc:
                raise PortableError(f"input '{n}' is not an array: {type(exc).__name__}: {exc}") from None
        try:
            return self._run(arrays)
        except RecursionError:  # a safety net: the readers bound nesting first (portable.limits)
            raise PortableError(f"{self.format} model '{self.name}' nests too deeply to run (see "
                                "portable.limits, max_depth)") from None


    def __repr__(self) -> str:
        return f"<portable.Model format={self.format!r} name={self.name!r}\n{self.signature.describe()}>"


__all__ = ["Model", "Origin", "Signature", "TensorSpec"]
