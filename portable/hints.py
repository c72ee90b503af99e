"""What a model says about where its inputs live: `InputHints`, returned by `Model.input_hints()`. numpy only.

The equivalence checker knows no format. Each format reads its own model (a scikit-learn estimator's scalers,
trees and encoders, an ONNX graph's initializers and attributes, a PFA document's tree cells) and describes it in
these format-neutral terms; the checker turns them into inputs that reach the places where two implementations
of the same model can part ways (split thresholds, category lists, kinks, training points, ties).

Columns are addressed as `(input name, flat position within one row)`: `("X", 3)` is the fourth column of `X`,
`("city", 0)` the one value of a per-column input `city` `[N, 1]`.

Trees are flat node arrays (`TreeNodes`) in the layout of ONNX `TreeEnsemble` v5 / scikit-learn `tree_`:
node `i` is a split when `left[i] >= 0`; the split sends a row to `left[i]` when its test is true
(`mode[i]`: `<=` `<` `>=` `>` `==` `!=` or membership, compared in the split's own units), to `right[i]` when it
is false, and a missing value (NaN) to `left[i]` when `missing[i] == 1`, to `right[i]` when `0`, and as NaN
compares when `-1`. The split's own units are `scale * raw + offset` of the raw input column (a scaler before the
tree); `zero_eps[i] > 0` says the implementation reads `|x| <= zero_eps` as 0 (LightGBM's 1e-35 rule). The same
structure serves the checker's path-aware boundary rows and any later structural analysis (certification).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Column = tuple[str, int]

# split modes: the ONNX TreeEnsemble v5 codes (BRANCH_LEQ ... BRANCH_MEMBER)
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER = 0, 1, 2, 3, 4, 5, 6
MODE_NAMES = {"BRANCH_LEQ": LEQ, "BRANCH_LT": LT, "BRANCH_GTE": GTE, "BRANCH_GT": GT, "BRANCH_EQ": EQ,
              "BRANCH_NEQ": NEQ, "BRANCH_MEMBER": MEMBER, "<=": LEQ, "<": LT, ">=": GTE, ">": GT, "==": EQ,
              "!=": NEQ, "in": MEMBER}


@dataclass
class ColumnHint:
    """What is known about one input column. Numbers are in the column's raw units.

    Attributes:
        lo, hi: where the model's values live (a range the checker draws from); None when unknown.
        quantiles: known quantiles of the training distribution (ascending), when the model keeps them.
        values: interesting values: fill values, bin edges, kinks of piecewise-linear steps, Clip bounds, ...
        kinks: values where the model's output bends (ReLU/hinge/clip after an affine step), a subset of the
            interesting values, kept apart for analyses that care.
        categories: the known categories (strings or numbers) of an encoder reading this column.
        unseen_ok: True when a category outside `categories` is a valid input (the encoder ignores it), False
            when the model rejects it, None when unknown.
        nan_ok: the model accepts NaN in this column (missing values are routed or imputed).
        integer: the model's training data in this column were integers (feed integers only).
    """

    lo: float | None = None
    hi: float | None = None
    quantiles: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    kinks: list[float] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)
    unseen_ok: bool | None = None
    nan_ok: bool = False
    integer: bool = False

    def widen(self, lo: float, hi: float) -> None:
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return
        lo, hi = float(min(lo, hi)), float(max(lo, hi))
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)


@dataclass
class TreeNodes:
    """One or more trees as flat node arrays (see the module docstring for the conventions).

    Attributes:
        columns: the raw input column of each feature index used in `feature`.
        feature: per node, an index into `columns`, or -1 for leaves and splits on derived (non-raw) values.
        threshold: per node, the split value in the split's own units (NaN for leaves).
        left, right: children (-1 for leaves).
        mode: per node, a split mode (`LEQ` ...; see `MODE_NAMES`).
        missing: per node, where NaN goes: 1 left, 0 right, -1 compared as NaN compares (usually: false).
        scale, offset: per node, the split compares `scale * raw + offset` with `threshold`.
        zero_eps: per node, values with `|x| <= zero_eps` are read as 0 (0: no such rule).
        members: for `MEMBER` nodes, node -> the set of values sent left.
        values: leaf values `[n_nodes, k]` (rows of split nodes unused), or None.
        roots: the first node of each tree.
        dtype: the dtype the implementation compares in (`float32` for XGBoost and CatBoost), or None.
        source: what the trees were read from (for the report).
    """

    columns: list[Column]
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    mode: np.ndarray | None = None
    missing: np.ndarray | None = None
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None
    zero_eps: np.ndarray | None = None
    members: dict[int, np.ndarray] | None = None
    values: np.ndarray | None = None
    roots: np.ndarray | None = None
    dtype: str | None = None
    source: str = "trees"

    def __post_init__(self) -> None:
        n = len(self.feature)
        self.feature = np.asarray(self.feature, dtype=np.int64)
        self.threshold = np.asarray(self.threshold, dtype=np.float64)
        self.left = np.asarray(self.left, dtype=np.int64)
        self.right = np.asarray(self.right, dtype=np.int64)
        self.mode = np.zeros(n, np.uint8) if self.mode is None else np.asarray(self.mode, np.uint8)
        self.missing = np.full(n, -1, np.int8) if self.missing is None else np.asarray(self.missing, np.int8)
        self.scale = np.ones(n) if self.scale is None else np.asarray(self.scale, np.float64)
        self.offset = np.zeros(n) if self.offset is None else np.asarray(self.offset, np.float64)
        self.zero_eps = np.zeros(n) if self.zero_eps is None else np.asarray(self.zero_eps, np.float64)
        if self.roots is None:
            has_parent = np.zeros(n, dtype=bool)
            has_parent[self.left[self.left >= 0]] = True
            has_parent[self.right[self.right >= 0]] = True
            self.roots = np.flatnonzero(~has_parent)
        self.feature = np.where(self.left >= 0, self.feature, -1)

    def __len__(self) -> int:
        return len(self.feature)

    @property
    def splits(self) -> np.ndarray:
        return np.flatnonzero(self.left >= 0)

    def parents(self) -> tuple[np.ndarray, np.ndarray]:
        """(parent, is_left) per node; -1 at roots."""
        n = len(self)
        parent = np.full(n, -1, dtype=np.int64)
        is_left = np.zeros(n, dtype=bool)
        nodes = np.arange(n)
        lm, rm = self.left >= 0, self.right >= 0
        parent[self.left[lm]] = nodes[lm]
        is_left[self.left[lm]] = True
        parent[self.right[rm]] = nodes[rm]
        return parent, is_left

    def raw_threshold(self) -> np.ndarray:
        """The thresholds in raw input units (`(threshold - offset) / scale`)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.threshold - self.offset) / self.scale


@dataclass
class Points:
    """Known rows (training points of k-NN, support vectors, centres): `rows[k, j]` is column `columns[j]`."""

    columns: list[Column]
    rows: np.ndarray
    source: str = "points"


@dataclass
class Decision:
    """The quantity the model's `label` follows (scikit-learn: `predict` is the argmax of `decision_function`
    for linear models and boosting, of `predict_proba` for forests and k-NN, ...).

    `compute(inputs)` returns it `[N, C]` (or `[N]`/`[N, 1]` for a binary score thresholded at `threshold`);
    `classes` are the labels in column order. A label mismatch on a row where this quantity's top two (or the
    score and the threshold) are within tolerance is a near-tie; elsewhere it is a mismatch.
    """

    output: str
    method: str
    compute: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    classes: np.ndarray
    kind: str = "score"  # score | probability: the tolerance the gap is judged with
    threshold: float = 0.0


@dataclass
class InputHints:
    """Everything a model says about its inputs (see the module docstring). Empty by default.

    Attributes:
        columns: per raw column, a `ColumnHint`.
        trees: tree structures reading the raw columns.
        points: known rows.
        shapes: per input, the per-row shape when the signature leaves dimensions free (ONNX
            `FeatureVectorizer.inputdimensions`).
        batch: a fixed batch size the model must be run with, or None.
        decision: what the label output follows, or None.
        ties: `ties(inputs, rtol)` -> per row, True where the model's own result is decided by a tie within
            relative rounding `rtol` (k-NN: the k-th and (k+1)-th neighbours equally far; a radius model: a
            training point on the radius). Two correct implementations may break such a tie differently, so a
            difference there is a near-tie, not a mismatch.
        frame_columns: for a single input fitted on a DataFrame, the column names in the model's order.
        sources: what the hints were learned from (for the report).
        notes: remarks for the report.
    """

    columns: dict[Column, ColumnHint] = field(default_factory=dict)
    trees: list[TreeNodes] = field(default_factory=list)
    points: list[Points] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    batch: int | None = None
    decision: Decision | None = None
    ties: Callable[[Mapping[str, np.ndarray], float], np.ndarray] | None = None
    frame_columns: list[str] | None = None
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def column(self, col: Column) -> ColumnHint:
        hint = self.columns.get(col)
        if hint is None:
            hint = self.columns[col] = ColumnHint()
        return hint

    def learned(self, source: str) -> None:
        if source not in self.sources:
            self.sources.append(source)

    def add_values(self, col: Column, values: Iterable[Any], *, widen: bool = True) -> None:
        """Interesting values of a column (numbers: values to generate around; strings: categories)."""
        hint = self.column(col)
        nums = []
        for v in values:
            if isinstance(v, str):
                if v not in hint.categories:
                    hint.categories.append(v)
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                nums.append(float(v))
        nums = [v for v in nums if np.isfinite(v)]
        if nums:
            hint.values = sorted(set(hint.values) | set(nums))
            if widen:
                span = (max(nums) - min(nums)) or max(1.0, abs(max(nums)))
                hint.widen(min(nums) - 0.25 * span, max(nums) + 0.25 * span)

    @property
    def empty(self) -> bool:
        return not (self.columns or self.trees or self.points or self.shapes or self.batch or self.decision)


__all__ = ["Column", "ColumnHint", "Decision", "InputHints", "Points", "TreeNodes", "LEQ", "LT", "GTE", "GT",
           "EQ", "NEQ", "MEMBER", "MODE_NAMES"]
