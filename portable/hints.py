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
        graph_values: interesting values a graph's constants give (a comparison's or Min/Max's constant, an
            imputer's fill value written as Where(IsNaN(x), c, x)): used only where the other model named no value
            with the same float32 rounding (the other model's own values and their neighbours cover it then).
        graph_range: (lo, hi), where a graph's constants say the values live (the centres a distance is measured
            from, a Gaussian's means and variances): used only where neither data nor any model's hints gave the
            column a range (a check of two ONNX models; the rows of a check against scikit-learn stay what its
            own hints make them).
        categories: the known categories (strings or numbers) of an encoder reading this column.
        graph_documents: documents a graph's vocabulary gives (a text column tokenized and looked up in a
            `LabelEncoder`): used only where no model named categories for the column (a check of two ONNX
            models; against scikit-learn, its own vectorizer's documents).
        unseen_ok: True when a category outside `categories` is a valid input (the encoder ignores it), False
            when the model rejects it, None when unknown.
        nan_ok: the model accepts NaN in this column (missing values are routed or imputed).
        integer: the model's training data in this column were integers (feed integers only).
        domain: (lo, hi), the values the model is defined on (a `np.log` or `np.sqrt` of the column: outside it the
            result is NaN or infinite, which the model rejects or propagates); None when unrestricted.
        reach: (lo, hi), how far the training data may have reached by the model's statistics (a scaler's
            mean +- std * sqrt(n - 1), a MinMaxScaler's data_min_/data_max_), when that is beyond `lo`/`hi`, the
            range most values are drawn from; None when unknown.
    """

    lo: float | None = None
    hi: float | None = None
    quantiles: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    kinks: list[float] = field(default_factory=list)
    graph_values: list[float] = field(default_factory=list)
    graph_range: tuple[float, float] | None = None
    categories: list[Any] = field(default_factory=list)
    graph_documents: list[str] = field(default_factory=list)
    unseen_ok: bool | None = None
    nan_ok: bool = False
    integer: bool = False
    domain: tuple[float, float] | None = None
    reach: tuple[float, float] | None = None

    def extend(self, lo: float, hi: float) -> None:
        """Widen `reach` to [lo, hi] as well."""
        self.reach = _widened(self.reach, lo, hi)

    def graph_widen(self, lo: float, hi: float) -> None:
        """Widen `graph_range` to [lo, hi] as well."""
        self.graph_range = _widened(self.graph_range, lo, hi)

    def restrict(self, lo: float, hi: float) -> None:
        """Narrow `domain` to [lo, hi] as well."""
        if self.domain is not None:
            lo, hi = max(lo, self.domain[0]), min(hi, self.domain[1])
        self.domain = (float(lo), float(hi))

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
            `float32` means the value compared is the raw input cast to float32 (scikit-learn's trees, XGBoost,
            CatBoost, an ONNX graph that casts to float32 before its trees).
        source: what the trees were read from (for the report).
        exact: False when the arithmetic of the comparison is not known exactly (a double input compared with
            float32 thresholds by an implementation's own rule): analyses then treat each split as uncertain
            within rounding.
        graph: read from a graph whose columns were followed in part (splits on the others have no feature):
            used only when no model of the check names trees of its own (a check against the original keeps the
            rows its hints make).
        recipes: for splits read through scalers, node -> the exact operations from the raw value to the
            compared one (`(op, constant, dtype)`: `sub` `add` `mul` `div` in that dtype, `cast32`), when known;
            the split's value is then computed exactly, not only as `scale * raw + offset`.
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
    exact: bool = True
    recipes: dict[int, tuple[tuple[str, float, str], ...]] | None = None
    graph: bool = False

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
class TreeOutput:
    """One output of a `TreeEnsemble` as a function of its raw scores `raw` (`[K]`), through *score columns*
    `s[j] = a[j] * raw[k[j]] + b[j]`:

    - `columns`: output column j is `c[j] * fn[j](s[j]) + d[j]`, `fn[j]` `identity` or `logistic`;
    - `softmax`: the output is `softmax(s)`;
    - `label`: `classes[argmax(s)]` (rule `argmax`, the first maximum) or `classes[1 if s[0] > 0 else 0]`
      (rule `threshold`, the threshold folded into `b`; `>=` when not `strict`).

    `rounded`: the `columns` output is computed in float64 and rounded to float32 once at the end (a float32
    artifact whose trees sum in double between two Casts): the certificate adds that rounding, relative to the
    output's value.
    """

    kind: str
    k: np.ndarray
    a: np.ndarray
    b: np.ndarray
    fn: list[str] = field(default_factory=list)
    c: np.ndarray | None = None
    d: np.ndarray | None = None
    rule: str = "argmax"
    strict: bool = True
    classes: np.ndarray | None = None
    rounded: bool = False  # `columns` only: the output is rounded to float32 once, after all of the above

    def __post_init__(self) -> None:
        n = len(np.atleast_1d(self.k))
        self.k = np.broadcast_to(np.asarray(self.k, np.int64), (n,)).copy()
        self.a = np.broadcast_to(np.asarray(self.a, np.float64), (n,)).copy()
        self.b = np.broadcast_to(np.asarray(self.b, np.float64), (n,)).copy()
        self.fn = list(self.fn) or ["identity"] * n
        self.c = np.ones(n) if self.c is None else np.broadcast_to(np.asarray(self.c, np.float64), (n,)).copy()
        self.d = np.zeros(n) if self.d is None else np.broadcast_to(np.asarray(self.d, np.float64), (n,)).copy()

    def score_columns(self) -> list[tuple[int, float, float]]:
        return [(int(k), float(a), float(b)) for k, a, b in zip(self.k, self.a, self.b)]

    def differs_from(self, other: "TreeOutput") -> str | None:
        """How `other` computes this output differently from the scores (None when alike)."""
        if self.kind != other.kind:
            return f"{self.kind} in the original, {other.kind} in the converted model"
        if len(self.k) != len(other.k):
            return f"{len(self.k)} columns in the original, {len(other.k)} in the converted model"
        if self.kind == "columns":
            if self.fn != other.fn:
                return f"{self.fn} in the original, {other.fn} in the converted model"
            for what in ("c", "d"):
                x, y = getattr(self, what), getattr(other, what)
                if not np.array_equal(x.astype(np.float32), y.astype(np.float32)):
                    return f"constants {x.tolist()} in the original, {y.tolist()} in the converted model"
        if self.kind == "label":
            if self.rule != other.rule:
                return f"label by {self.rule} in the original, by {other.rule} in the converted model"
            ca = [str(v) for v in np.asarray(self.classes).reshape(-1)]
            cb = [str(v) for v in np.asarray(other.classes).reshape(-1)]
            if ca != cb:
                return f"classes {ca} in the original, {cb} in the converted model"
        return None


@dataclass
class TreeEnsemble:
    """How a model made of trees only computes its outputs from its leaves (for certification).

    `raw[k] = base[k] + sum over trees of trees.values[leaf, k]` (each leaf's value already multiplied by what
    the model multiplies it with: a learning rate, 1/n_trees of an average), then each output is a function of
    the raw scores (`TreeOutput`). Only a model whose outputs depend on its inputs through these trees alone has
    this view.

    Attributes:
        trees: the trees (`values` `[n_nodes, K]`, `roots` set).
        base: `[K]`.
        outputs: output name -> `TreeOutput`.
        accumulate: the dtype the sum is computed in (`float32` or `float64`).
        terms: how many further additions and multiplications make one score (for the rounding bound).
        source: what the view was read from (for the report).
    """

    trees: TreeNodes
    base: np.ndarray
    outputs: dict[str, TreeOutput] = field(default_factory=dict)
    accumulate: str = "float64"
    terms: int = 2
    source: str = "trees"

    @property
    def targets(self) -> int:
        return len(self.base)


@dataclass
class Points:
    """Known rows (training points of k-NN, support vectors, centres): `rows[k, j]` is column `columns[j]`.
    `graph`: read from a graph's constants where the model kept no such rows as such (the centres a graph measures
    distances from): used only when no model of the check names points of its own (the rows of a check against
    scikit-learn stay what its own hints make them)."""

    columns: list[Column]
    rows: np.ndarray
    source: str = "points"
    graph: bool = False


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
        ensemble: when the model's outputs depend on its inputs through trees alone, how (`TreeEnsemble`).
        points: known rows.
        shapes: per input, the per-row shape when the signature leaves dimensions free (ONNX
            `FeatureVectorizer.inputdimensions`).
        batch: a fixed batch size the model must be run with, or None.
        rows_alone: the model computes each row the same whatever the number of rows run with it: nothing in it
            branches on the row count or reads it (an ONNX graph without If/Loop/Scan/Shape/Size). The checker
            then skips its small-batch runs (`equivalence._small_batches`), which look for computations chosen by
            the row count (an `If` on the batch size).
        decision: what the label output follows, or None.
        ties: `ties(inputs, rtol)` -> per row, True where the model's own result is decided by a tie within
            relative rounding `rtol` (k-NN: the k-th and (k+1)-th neighbours equally far; a radius model: a
            training point on the radius). Two correct implementations may break such a tie differently, so a
            difference there is a near-tie, not a mismatch.
        neighbours: for a model that decides by its k nearest known points (`points`), k.
        frame_columns: for a single input fitted on a DataFrame, the column names in the model's order.
        sources: what the hints were learned from (for the report).
        notes: remarks for the report.
    """

    columns: dict[Column, ColumnHint] = field(default_factory=dict)
    trees: list[TreeNodes] = field(default_factory=list)
    ensemble: TreeEnsemble | None = None
    points: list[Points] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    batch: int | None = None
    rows_alone: bool = False
    decision: Decision | None = None
    ties: Callable[[Mapping[str, np.ndarray], float], np.ndarray] | None = None
    neighbours: int | None = None
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


def vocabulary_documents(terms: list[str], sep: str) -> list[str]:
    """Documents made of a text vectorizer's vocabulary (`terms` in column order, joined by `sep`: " " for words,
    "" for characters): each term alone and a few seeded documents of two to four terms, so that every term's
    column is reached, and long documents of 8 to 2,048 terms, where sums and their rounding grow."""
    if len(terms) > 2000:
        terms = [terms[i] for i in np.linspace(0, len(terms) - 1, 2000).astype(np.int64)]
    rng = np.random.default_rng(0)
    docs = list(terms) + [sep.join(rng.choice(terms, int(rng.integers(2, 5)))) for _ in range(64)]
    # long documents too: counts, tf-idf sums and naive Bayes' log-likelihood sums grow with the length, and
    # so does a float32 artifact's rounding (a character n-gram model agrees on 40-character documents and
    # not on 85-character ones, a word-count naive Bayes only near 500 words); lengths log-uniform from 8 to
    # 2,048 terms
    # (2**x with x uniform in [3, 11): `_detmath.exp2`, the same on every machine, unlike numpy's exp)
    from ._detmath import exp2

    lengths = exp2(rng.uniform(3.0, 11.0, 128)).astype(np.int64)
    docs += [sep.join(rng.choice(terms, int(k))) for k in lengths]
    return docs


__all__ = ["AllBut", "RAW", "Column", "ColumnHint", "Decision", "InputHints", "Points", "TreeEnsemble", "TreeNodes", "TreeOutput", "LEQ", "LT", "GTE", "GT",
           "EQ", "NEQ", "MEMBER", "MODE_NAMES", "derive_splits", "vocabulary_documents"]


#: `TreeNodes.recipes` entry of a split that compares the raw input value itself, exactly, in the dtype it is fed
#: (an encoder's own comparison before the trees, such as a KBinsDiscretizer's bin edges), whatever `dtype` says
RAW = (("raw", 0.0, ""),)


def _bin_split(edges: np.ndarray, left: Callable[[float], bool], where: int) -> tuple[int, float]:
    """(mode, threshold) on the raw value x of a split that sends left the bin codes `left` holds, the code being
    the number of `edges` <= x (ascending; a KBinsDiscretizer's inner edges): the codes sent left are a prefix
    (x < edge) or a suffix (x >= edge) of 0..len(edges), or all or none of them."""
    codes = [bool(left(float(c))) for c in range(len(edges) + 1)]
    if all(codes):
        return LEQ, np.inf
    if not any(codes):
        return LT, -np.inf
    k = codes.index(not codes[0])
    if codes[:k] == [codes[0]] * k and codes[k:] == [not codes[0]] * (len(codes) - k):
        return (LT, float(edges[k - 1])) if codes[0] else (GTE, float(edges[k - 1]))
    raise ValueError(f"split {where} sends bins {codes} left: not a prefix or a suffix of the codes")


class AllBut(frozenset):
    """The categories a `MEMBER` split sends left, given by those it does not: every category but these (the
    categories an encoder does not know take a value the split sends left, NaN where missing values go left)."""


def _unknown_left(d: tuple[Any, ...], missing: int, test: Callable[[float], bool]) -> bool:
    """Whether the categories outside an ordinal map `d` go left: their value `d[3]` (NaN: where the split sends
    a missing value, the left child only when `missing == 1`); without one, they go right."""
    if len(d) < 4 or d[3] is None:
        return False
    u = float(d[3])
    return int(missing) == 1 if np.isnan(u) else bool(test(u))


def _sent(d: tuple[Any, ...], sent: list[str], unknown_left: bool) -> Any:
    if unknown_left:
        return AllBut(str(c) for c in d[2] if str(c) not in set(sent))
    return np.asarray(sent, dtype=object)


def derive_splits(nodes: TreeNodes, feature: np.ndarray, derived: list[tuple[Any, ...]],
                  columns: list[Column]) -> TreeNodes:
    """`nodes` whose split features index *derived* columns, re-expressed on the raw columns.

    `feature[i]` indexes `derived`, whose entries say what each column the trees read is, in raw terms:
    `("num", k, a, b, recipe)`: `a * raw + b` of raw column `columns[k]` (`recipe`: the exact operations, or
    None when unknown); `("ind", k, c)`: 1 where raw column k equals
    category c (or is one of the set c), else 0 (one-hot); `("bin", k, edges)`: the number of the ascending
    `edges` at most raw column k, compared exactly (a KBinsDiscretizer's ordinal code); `("ord", k, {category: code})` or
    `("ord", k, {category: code}, unknown)`: the category's code (ordinal encoding), and `unknown` the value every
    other category takes (NaN: a missing value, routed where the split sends NaN; without it, the other categories
    go right, as before).
    Numeric splits keep their threshold with the affine map as `scale`/`offset`; splits on indicators and codes
    become `MEMBER` splits on the raw column (the categories sent left, or an `AllBut` of those not sent left when
    the categories the encoder does not know go left). Raises ValueError for anything else."""
    n = len(nodes)
    feat, scale, offset = nodes.feature.copy(), nodes.scale.copy(), nodes.offset.copy()
    mode, left, right = nodes.mode.copy(), nodes.left.copy(), nodes.right.copy()
    threshold = nodes.threshold.copy()
    members: dict[int, np.ndarray] = dict(nodes.members or {})
    recipes: dict[int, Any] = {}
    for i in np.flatnonzero(nodes.left >= 0):
        f = int(feature[i])
        if not 0 <= f < len(derived):
            raise ValueError(f"split {i} reads feature {f} of {len(derived)}")
        d = derived[f]
        if d[0] == "num":
            feat[i], scale[i], offset[i] = d[1], d[2], d[3]
            if len(d) > 4 and d[4]:
                recipes[int(i)] = d[4]
            continue
        if mode[i] == MEMBER and d[0] == "ord":  # codes in the set go left: the categories with those codes
            codes = {float(v) for v in np.asarray((nodes.members or {}).get(int(i), []), np.float64).reshape(-1)}
            feat[i], scale[i], offset[i], threshold[i] = d[1], 1.0, 0.0, np.nan
            sent = [str(c) for c, code in d[2].items() if float(code) in codes]
            members[int(i)] = _sent(d, sent, _unknown_left(d, nodes.missing[i], lambda v: v in codes))
            continue
        if mode[i] not in (LEQ, LT, GTE, GT):
            raise ValueError(f"split {i} tests an encoded category with mode {int(mode[i])}")
        t, m = float(threshold[i]), int(mode[i])

        def goes_left(v: float) -> bool:
            return bool({LEQ: v <= t, LT: v < t, GTE: v >= t, GT: v > t}[m])
        if d[0] == "bin":  # a bin code: a threshold on the raw value at one of the edges
            mode[i], threshold[i] = _bin_split(np.asarray(d[2], np.float64), goes_left, int(i))
            feat[i], scale[i], offset[i] = d[1], 1.0, 0.0
            recipes[int(i)] = RAW
            continue
        if d[0] == "ind":  # value 1 for category d[2] (or a category of the set d[2]), 0 for every other
            one, zero = goes_left(1.0), goes_left(0.0)
            group = sorted(d[2]) if isinstance(d[2], (set, frozenset)) else [d[2]]
            if one == zero:  # everyone one way: no category is "in"; the "out" child is that way
                sent, swap = [], one
            else:
                sent, swap = group, not one
        elif d[0] == "ord":
            sent, swap = [c for c, code in d[2].items() if goes_left(float(code))], False
        else:
            raise ValueError(f"split {i} reads a column of kind {d[0]}")
        feat[i], scale[i], offset[i], mode[i], threshold[i] = d[1], 1.0, 0.0, MEMBER, np.nan
        members[int(i)] = _sent(d, [str(c) for c in sent], _unknown_left(d, nodes.missing[i], goes_left)) \
            if d[0] == "ord" else np.asarray([str(c) for c in sent], dtype=object)
        if swap:
            left[i], right[i] = right[i], left[i]
    return TreeNodes(list(columns), feat, threshold, left, right, mode=mode, missing=nodes.missing.copy(),
                     scale=scale, offset=offset, zero_eps=nodes.zero_eps.copy(), members=members,
                     values=nodes.values, roots=nodes.roots, dtype=nodes.dtype, source=nodes.source,
                     exact=nodes.exact, recipes=recipes or None)


def _widened(span: tuple[float, float] | None, lo: float, hi: float) -> tuple[float, float] | None:
    """`span` widened to [lo, hi] as well (an infinite or NaN bound leaves it as it is)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return span
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    if span is not None:
        lo, hi = min(lo, span[0]), max(hi, span[1])
    return (lo, hi)
