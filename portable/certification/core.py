"""Certified equivalence (issue 19): the shared vocabulary of every certification method. numpy only.

A *certificate* says, for one output of two models and a *domain* of inputs, either

- `certified`: for every input in the domain the outputs differ by at most `bound` (absolute, in the output's
  units; `identical` when the two compute the same function exactly, bound 0), proved by `method`, with the float
  arithmetic it accounts for written in `arithmetic`;
- `refuted`: the proved difference exceeds the tolerance and `counterexample` is an input where it is attained
  (verified by running both models: `counterexample["verified"]`). A method may return `refuted` with no
  counterexample and `candidates` (inputs where it expects the difference to be largest): `portable.certify`
  runs both models on them and keeps the refutation only when one reproduces a difference beyond the tolerance
  (else the output is `not certifiable`, saying so);
- `not certifiable`: no method applies (`reason` says why); the sampled check then stands alone.

A *method* is a function `method(original, converted, domain, ctx) -> dict[output name, Certificate] | None`,
registered with `@certification_method(name, priority)`. It returns None when it does not apply to this pair of
models, and a dict with a certificate for each output it can speak about otherwise. `portable.certify()` (in
`portable.certification`) tries the methods in order of priority; the first certificate per output wins.

A domain is a box per input column (`lo`, `hi` in raw input units, both finite) plus, for categorical columns,
the finite set of categories; integer columns take integer values only. Columns are `(input name, flat position
within one row)` as in `portable.hints`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..hints import Column

CERTIFIED, REFUTED, NOT_CERTIFIABLE = "certified", "refuted", "not certifiable"


@dataclass
class DomainColumn:
    """One input column of a domain: a closed interval `[lo, hi]`, or a finite set of `categories`."""

    lo: float | None = None
    hi: float | None = None
    categories: list[Any] | None = None
    integer: bool = False
    nan: bool = False  # NaN (missing) is part of the domain

    def to_dict(self) -> dict[str, Any]:
        if self.categories is not None:
            return {"categories": list(self.categories), "nan": self.nan}
        return {"lo": self.lo, "hi": self.hi, "integer": self.integer, "nan": self.nan}


@dataclass
class Domain:
    """The inputs a certificate speaks about: one `DomainColumn` per raw input column.

    Attributes:
        columns: `(input name, position) -> DomainColumn`, for every column of every input.
        source: where the box came from: `data` (the rows given), `hints` (scalers, training ranges the model
            keeps), `signature`, or `user` (an explicit domain).
    """

    columns: dict[Column, DomainColumn] = field(default_factory=dict)
    source: str = "hints"

    def box(self, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
        """`(lo, hi)` arrays of one numeric input with `width` columns (NaN where a column is categorical)."""
        lo, hi = np.full(width, np.nan), np.full(width, np.nan)
        for j in range(width):
            col = self.columns.get((name, j))
            if col is not None and col.categories is None and col.lo is not None and col.hi is not None:
                lo[j], hi[j] = col.lo, col.hi
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source,
                "columns": [{"input": n, "position": p, **c.to_dict()} for (n, p), c in self.columns.items()]}


@dataclass
class Certificate:
    """One output's certificate (see the module docstring). `to_dict()` is the report's `certificate` entry."""

    output: str
    status: str
    method: str | None = None
    bound: float | None = None
    identical: bool = False
    tolerance: float | None = None  # the largest difference the check's tolerances allow on this domain
    arithmetic: str | None = None
    reason: str | None = None
    counterexample: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: inputs (`{input name: array [n, ...]}` batches) where a method expects the difference to be largest;
    #: `portable.certify` runs both models on them to verify a refutation (not part of the report)
    candidates: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "method": self.method, "bound": self.bound, "identical": self.identical,
                "tolerance": self.tolerance, "arithmetic": self.arithmetic, "reason": self.reason,
                "counterexample": self.counterexample, "domain": self.domain, "details": self.details,
                "seconds": self.seconds}


@dataclass
class Context:
    """What a method may use besides the two models and the domain.

    Attributes:
        outputs: the output names to certify, with their kind (`label`, `probability`, `score`, `value`).
        atol, rtol: the tolerances the sampled check uses per output (a bound within `atol + rtol * |value|`
            over the domain certifies; above it refutes, if a counterexample is verified).
        dtype: the dtype the converted model computes in (`float32` or `float64`).
        run_original, run_converted: `run(inputs) -> outputs` of each model (to verify counterexamples).
        scale: per output, the factor `atol` is multiplied by (the sampled check's: the 90th percentile of the
            original's |output| on generated rows, at least 1; 1 when missing). A certificate uses it only down to
            what it proves about the domain: see `atol_scale`.
        inputs: per input name, the dtype the inputs are fed in (`float32`, `float64`, `str`, ...).
        hints_original, hints_converted: each model's `input_hints()` (learned once, shared by every method).
        make_feeds: `make_feeds(rows, columns)` -> model inputs: `rows[i, j]` is column `columns[j]`; every other
            column takes a value inside the domain (its box's centre, its first category).
    """

    outputs: dict[str, str]
    atol: dict[str, float]
    rtol: dict[str, float]
    dtype: str = "float32"
    run_original: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    run_converted: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    scale: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    hints_original: Any = None
    hints_converted: Any = None
    make_feeds: Callable[[np.ndarray, list[Column]], dict[str, np.ndarray]] | None = None

    def atol_scale(self, output: str, floor: float | None = None) -> float:
        """The factor `atol` is multiplied by for `output` where every row of the domain is proved to have a
        per-row magnitude (the largest |value| of its columns' 90th percentile; any lower bound) of at least `floor`.

        The sampled check scales atol by the 90th percentile of |original| over *its batch* (at least 1), a
        statistic of the rows it happens to compare: a batch of rows whose outputs are small has a small scale. A
        certificate speaks about every row of the domain, so the rows a check may compare are any rows of the
        domain, and the only scale no such batch goes below is `max(1, floor)` (the domain's scale when smaller):
        with no floor proved, 1."""
        s = self.scale.get(output, 1.0)
        if not s > 1.0:
            return 1.0
        if floor is None or not floor == floor:
            return 1.0
        return max(1.0, min(s, float(floor)))

    def allowed(self, output: str, magnitude: float = 0.0, floor: float | None = None) -> float:
        """The largest difference the check's tolerance allows for `output` where the original's |value| is
        `magnitude`: `atol * atol_scale(floor) + rtol * magnitude` (a bound at most this everywhere certifies).
        `floor`: a proven lower bound of the output's magnitude over the domain (see `atol_scale`)."""
        return self.atol.get(output, 0.0) * self.atol_scale(output, floor) + self.rtol.get(output, 0.0) * magnitude

    def row_scale(self, output: str, values: Any) -> float:
        """The atol factor of a check of one row whose original `values` (of `output`) are given: its own 90th
        percentile of |values| as the checker computes it (at least 1), or the domain's scale when smaller.
        Both are scales a sampled check uses (the row alone, or among the domain's rows), so a difference beyond
        the tolerance at this scale is one a check shows."""
        s = self.scale.get(output, 1.0)
        if not s > 1.0:
            return 1.0
        v = np.abs(np.asarray(values, dtype=np.float64).reshape(-1))
        v = v[np.isfinite(v)]
        if not v.size:
            return 1.0
        k = int(0.9 * (v.size - 1))
        return max(1.0, min(s, float(np.partition(v, k)[k])))

    def allowed_at(self, output: str, values: Any) -> np.ndarray:
        """Per value of one row of the original's `output`: the tolerance a check of that row uses
        (`atol * row_scale + rtol * |value|`)."""
        v = np.abs(np.asarray(values, dtype=np.float64))
        return self.atol.get(output, 0.0) * self.row_scale(output, values) + self.rtol.get(output, 0.0) * v


def labels_differ(a: Any, b: Any) -> np.ndarray:
    """Elementwise, whether two label arrays differ, as the sampled check compares labels: as strings when either
    side holds strings, as integers when either holds booleans (a converted model returns a boolean classifier's
    labels as int64 0/1), as values otherwise."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "OUS" or b.dtype.kind in "OUS":
        return a.astype(str) != b.astype(str)
    if a.dtype.kind == "b" or b.dtype.kind == "b":
        return a.astype(np.int64) != b.astype(np.int64)
    return np.not_equal(a, b)


def magnitude_floor(lo: Any, hi: Any) -> float:
    """The smallest |value| over the per-column ranges `[lo_j, hi_j]` (0 where a range contains 0): a lower
    bound of every row's magnitude (any quantile of a row's |values| is at least its smallest)."""
    lo, hi = np.asarray(lo, dtype=np.float64).reshape(-1), np.asarray(hi, dtype=np.float64).reshape(-1)
    if not lo.size:
        return 0.0
    m = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    m = np.where(np.isnan(m), 0.0, m)
    return float(np.min(m))


Method = Callable[[Any, Any, Domain, Context], "dict[str, Certificate] | None"]
METHODS: list[tuple[int, str, Method]] = []


def certification_method(name: str, priority: int = 50) -> Callable[[Method], Method]:
    """Register a certification method (lower priority runs first)."""

    def deco(func: Method) -> Method:
        METHODS.append((priority, name, func))
        METHODS.sort(key=lambda m: m[0])
        return func

    return deco


def not_certifiable(output: str, reason: str) -> Certificate:
    return Certificate(output=output, status=NOT_CERTIFIABLE, reason=reason)


def graph_links(graph: Any) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """An ONNX graph's tensors: the nodes that read each one, and the node that writes it."""
    consumers: dict[str, list[Any]] = {}
    producer: dict[str, Any] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
        for o in node.output:
            producer[o] = node
    return consumers, producer


def slice_after(graph: Any, cut: str) -> tuple[list[Any], set[str]]:
    """The nodes (in graph order) the graph's outputs need when `cut` is given, and the tensors they read."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i and i != cut)
    keep.reverse()
    return keep, needed


def refuted_or_not(outputs: Any, reason: str, batch: Any) -> dict[str, Certificate]:
    """Each output refuted with `batch` as candidate inputs (`portable.certify` keeps a refutation only with a
    verified counterexample, else says not certifiable for `reason`); not certifiable when there is no batch."""
    if not batch:
        return {name: not_certifiable(name, reason) for name in outputs}
    return {name: Certificate(name, REFUTED, reason=reason, candidates=[batch], details={"unreadable": True})
            for name in outputs}
