"""Input generation for the checker: learn where a model's inputs live, then generate rows that land there.

A `Plan` flattens every input of the compared signature into scalar *features* (one per column of `X`, one per
DataFrame column, one per element of a fixed-shape tensor). Each feature gets a range and a few interesting
values, learned from `data=` when given, else from the model itself (scaler statistics, tree thresholds, encoder
categories, training points kept by nearest-neighbour and kernel models), else a standard-normal default.

`generate` draws a seeded batch from the plan: a random cloud over the learned ranges (and around known points;
some cells beyond the ranges, out to where a scaler's statistics say training data may lie, and NaN in features
whose missing values the model handles), **tree boundary rows** (for every split node or a seeded sample: rows
that reach the node, each in a box that also fixes the leaf it reaches below either child, with the split feature
set to the threshold, its float32 rounding and their `nextafter` neighbours, so both sides of the split are taken),
and a few special rows (zeros, the range ends, far values, NaN where the model handles missing values, unseen
categories where the encoder ignores them). `rows_strategy` and `simplify_strategy` are the hypothesis strategies that
shrink a failure found in such a batch to a minimal counterexample.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import PortableError, SignatureMismatchError
from ..hints import GT, GTE, LEQ, LT, MEMBER, InputHints, TreeNodes
from ..model import Model

UNSEEN = "__portable_unseen__"
SOURCES = ("cloud", "boundary", "special", "data", "shrunk")  # where a row came from, by code
CLOUD, BOUNDARY, SPECIAL, DATA, SHRUNK = range(len(SOURCES))
MIN_NODES = 1000  # every split node is tested when there are at most max(MIN_NODES, samples) of them, ...
BOUNDARY_CELLS = 1 << 23  # ... or when their boundary rows (at most ROWS_PER_NODE each) hold at most this many
# values (8,388,608: 64 MiB of float64; a forest of 30 fully grown trees on 600 rows, 36,000 split nodes as both
# models describe them, takes 2.1 million); beyond that a seeded sample of as many as fit
ROWS_PER_PATH = 7  # boundary rows of one split node per base row (PATHS of them), for the budget above: the
# distinct candidate values of a threshold (at most 6: 3 or 4 when the rows are float32) and a NaN row
SPECIAL_SHARE = 0.05
NAN_SHARE = 0.1  # a cloud cell of a feature whose NaN the model handles is NaN this often (less when many are)
NAN_ROWS = 0.4  # ... at most this share of the cloud rows holding some NaN, in expectation
BEYOND_SHARE = 0.05  # a cloud cell of a feature with a reach is beyond its range this often (less when many are)
BEYOND_ROWS = 0.2  # ... at most this share of the cloud rows holding such a value, in expectation
ODD_ROWS = 300  # rows around known points only one of the two models has (at most 40 neighbours each)
KEEP_BOXES = 2_000_000  # a plan keeps its split nodes' boxes (3 floats each) up to this many node x feature pairs
FAR = np.array([1.5, 1.5, 10.0, 10.0])  # special rows this many ranges away from the middle of the ranges


@dataclass(frozen=True)
class InputSlot:
    """One input tensor as the checker feeds it: name, generation dtype, per-row shape."""

    name: str
    dtype: str  # float32 | float64 | int64 | bool | str: the narrower of the two models' dtypes
    row_shape: tuple[int, ...]

    @property
    def is_string(self) -> bool:
        return self.dtype == "str"

    @property
    def width(self) -> int:
        return math.prod(self.row_shape)


@dataclass
class Feature:
    """One scalar position of one input, and what is known about where its values live."""

    slot: str
    position: int  # flat index within the slot's row
    label: str
    is_string: bool = False
    lo: float = np.nan
    hi: float = np.nan
    values: list[Any] = field(default_factory=list)  # numeric interesting values, or string categories
    nan_ok: bool = False
    unseen_ok: bool = False
    integer: bool = False
    from_data: bool = False  # the range came from data=, which wins over what the model says
    categorical: bool = False  # an encoder reads it: its values are categories
    rejects_unseen: bool = False  # the original says it rejects values outside its categories
    domain: tuple[float, float] | None = None  # the values a model is defined on (InputHints: log, sqrt of it)
    reach: tuple[float, float] | None = None  # how far the training data may reach (InputHints' reach)

    def widen(self, lo: float, hi: float, *, data: bool = False) -> None:
        # (math's tests of a float: numpy's cost a microsecond each, and a plan calls them per feature and hint)
        if not (math.isfinite(lo) and math.isfinite(hi)) or (self.from_data and not data):
            return
        self.lo = lo if math.isnan(self.lo) else min(self.lo, lo)
        self.hi = hi if math.isnan(self.hi) else max(self.hi, hi)

    @property
    def known(self) -> bool:
        return not math.isnan(self.lo)

    @property
    def simple(self) -> Any:
        """The value a counterexample shrinks a feature towards: 0 when in range, else a round value in range."""
        if self.is_string:
            return self.values[0] if self.values else "a"
        if self.lo <= 0.0 <= self.hi:
            return 0.0
        mid = (self.lo + self.hi) / 2
        digits = max(0, 1 - math.floor(math.log10(max(self.hi - self.lo, 1e-300))))  # the C library's: numpy's
        # log10 differs between CPUs
        r = float(np.round(mid, digits))
        return r if self.lo <= r <= self.hi else float(mid)


@dataclass
class Trees:
    """The split nodes of the tree models in a plan, as flat arrays in raw-input terms.

    `feature[i]` is a plan feature index (or -1 for leaves and splits on derived features), `threshold[i]` the
    threshold mapped back to raw input units, `parent[i]`/`is_left[i]` the node's parent and side (-1 at roots).
    The tree itself compares `scale[i] * raw + offset[i]` (a scaler before it) with `native[i]` by `mode[i]`
    (`portable.hints` modes; the left child takes rows whose test is true); `missing[i]` says where NaN goes
    (1 left, 0 right, -1 as NaN compares); `zero_eps[i]` > 0 reads |x| <= zero_eps as 0; `f32[i]` compares in
    float32.
    """

    feature: np.ndarray
    threshold: np.ndarray
    parent: np.ndarray
    is_left: np.ndarray
    native: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    mode: np.ndarray | None = None
    missing: np.ndarray | None = None
    zero_eps: np.ndarray | None = None
    f32: np.ndarray | None = None
    cat_feature: np.ndarray | None = None  # per node: the string feature a membership split tests, or -1
    members: dict[int, frozenset] | None = None  # such a node -> the categories it sends left
    key: np.ndarray | None = None  # per leaf, a number that differs between leaves whose values differ (NaN unknown)

    def __post_init__(self) -> None:
        n = len(self.feature)
        if self.key is None:
            self.key = np.full(n, np.nan)
        if self.cat_feature is None:
            self.cat_feature = np.full(n, -1, dtype=np.int64)
        if self.members is None:
            self.members = {}
        if self.mode is None:
            self.mode = np.zeros(n, dtype=np.int64)
        if self.missing is None:
            self.missing = np.full(n, -1, dtype=np.int64)
        if self.zero_eps is None:
            self.zero_eps = np.zeros(n)
        if self.f32 is None:
            self.f32 = np.zeros(n, dtype=bool)

    @staticmethod
    def join(parts: Sequence["Trees"]) -> "Trees":
        sizes = np.cumsum([0] + [len(t.feature) for t in parts])
        parent = np.concatenate([np.where(t.parent >= 0, t.parent + off, -1) for t, off in zip(parts, sizes)])
        cat = {name: np.concatenate([getattr(t, name) for t in parts])
               for name in ("feature", "threshold", "is_left", "native", "scale", "offset", "mode", "missing",
                            "zero_eps", "f32", "cat_feature", "key")}
        members = {int(i + off): v for t, off in zip(parts, sizes) for i, v in t.members.items()}
        return Trees(parent=parent, members=members, **cat)

    @property
    def splits(self) -> np.ndarray:
        return np.flatnonzero((self.feature >= 0) | (self.cat_feature >= 0))

    @cached_property
    def children(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) child of each node, -1 at leaves."""
        n = len(self.feature)
        left, right = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
        kid = np.flatnonzero(self.parent >= 0)
        side = self.is_left[kid].astype(bool)
        left[self.parent[kid[side]]] = kid[side]
        right[self.parent[kid[~side]]] = kid[~side]
        return left, right


@dataclass
class Plan:
    """Everything `generate` needs: the input slots, their features, tree splits, known points, data rows."""

    slots: list[InputSlot]
    features: list[Feature]
    trees: Trees | None = None
    anchors: np.ndarray | None = None  # known numeric rows (training points), shape [K, n_features], NaN = any
    data: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # what the ranges were learned from
    # vectors over the features, filled by `_finish` for fast generation
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    integer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    valued: list[tuple[int, np.ndarray, float]] = field(default_factory=list)
    categories: list[tuple[int, np.ndarray]] = field(default_factory=list)
    # derived once by `_finish`, so that generating a batch does no per-feature Python work
    width: np.ndarray = field(default_factory=lambda: np.zeros(0))  # hi - lo
    mid: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (lo + hi) / 2
    ends: np.ndarray = field(default_factory=lambda: np.zeros((3, 0)))  # rows of zeros, lo, hi (narrowed)
    far: np.ndarray = field(default_factory=lambda: np.zeros((2, 4, 0)))  # the far rows below, above (narrowed)
    any_integer: bool = False
    # float32 (scale, shift) rows for the cloud's normal bump and uniform rows when the plan generates float32
    # values and the cloud writes nothing else (no known values, points or integer features), else None
    fast32: tuple[np.ndarray, np.ndarray] | None = None
    nan_feats: list[int] = field(default_factory=list)  # features whose NaN the model handles
    # (features, [2, k] low and high ends) of the numeric features with a reach (`Feature.reach`), or None
    reach: tuple[np.ndarray, np.ndarray] | None = None
    # per feature, the values both models are defined on ([lo, hi] rows, -inf/inf where unrestricted), or None
    # when no feature is restricted: generated values are clipped into it
    domain: np.ndarray | None = None
    unseen_feats: list[int] = field(default_factory=list)  # features whose unseen values the model ignores
    columns: dict[str, slice | list[int]] = field(default_factory=dict)  # each slot's features
    batches: dict[str, int] = field(default_factory=dict)  # "original"/"converted" -> a fixed batch size
    rows_alone: set[str] = field(default_factory=set)  # roles whose models compute rows alike at any row count
    decision: Any = None  # the original's `portable.hints.Decision`: what its label follows
    ties: Any = None  # the original's `InputHints.ties`: rows its own result decides by a tie
    neighbours: int | None = None  # the original's `InputHints.neighbours`: k of a k-nearest-neighbours model
    point_sets: list[np.ndarray] = field(default_factory=list)  # known points, one array per model
    odd: np.ndarray | None = None  # known points of one model that the other model does not have
    # what the pair's later checks reuse, derived once from the fields above: the domain's narrowed bounds,
    # the tree boundary rows, the label-edge pool, the generated rows of the last (seed, samples)
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def narrow(self) -> np.dtype:
        """float32 when a slot takes float32, else float64 (the slots do not change: worked out once)."""
        floats = [s.dtype for s in self.slots if s.dtype.startswith("float")]
        return np.dtype("float32" if "float32" in floats else "float64")

    @property
    def text_width(self) -> int:
        return len(self.features) if any(f.is_string for f in self.features) else 0


# ---- the batch representation ------------------------------------------------------------------------------

@dataclass
class Batch:
    """Rows as a float64 matrix (numeric features, NaN allowed) and an object matrix (string features)."""

    num: np.ndarray
    txt: np.ndarray  # [N, n_features] when some feature is a string, else [N, 0]
    source: np.ndarray  # per row: an index into SOURCES

    def __len__(self) -> int:
        return len(self.source)

    def take(self, rows: Sequence[int] | np.ndarray) -> "Batch":
        idx = np.asarray(rows, dtype=np.int64)
        return Batch(self.num[idx], self.txt[idx], self.source[idx])

    @staticmethod
    def concat(parts: Sequence["Batch"]) -> "Batch":
        return Batch(np.concatenate([p.num for p in parts]), np.concatenate([p.txt for p in parts]),
                     np.concatenate([p.source for p in parts]))


def empty_batch(plan: Plan, n: int, source: int) -> Batch:
    return Batch(np.zeros((n, len(plan.features))), np.full((n, plan.text_width), "", dtype=object),
                 np.full(n, source, dtype=np.int8))


def assemble(plan: Plan, batch: Batch) -> dict[str, np.ndarray]:
    """The batch as named input arrays, each `[N, *row_shape]` in its slot's generation dtype."""
    n = len(batch)
    out: dict[str, np.ndarray] = {}
    cols = plan.columns or _columns(plan)
    for slot in plan.slots:
        idx = cols[slot.name]
        if slot.is_string:
            arr = batch.txt[:, idx].astype(str)
        else:
            vals = batch.num[:, idx]
            if slot.dtype == "bool":
                arr = vals > 0.5
            elif slot.dtype.startswith(("int", "uint")):
                arr = np.nan_to_num(np.round(vals)).astype(slot.dtype)
            else:
                arr = vals.astype(slot.dtype)
        out[slot.name] = np.ascontiguousarray(arr.reshape((n, *slot.row_shape)))
    return out


def feed_batch(plan: Plan, batch: Batch, arrays: Mapping[str, np.ndarray], model: Model) -> dict[str, np.ndarray]:
    """`feed(arrays, model)` for `arrays = assemble(plan, batch)`, taking a float64 input's values straight from
    the batch (they are the narrow dtype's values already, so the same numbers) instead of casting them back."""
    n = len(batch)
    out, rest = {}, {}
    for name, idx, shape, direct in _feed_recipe(plan, model):
        if direct:
            out[name] = np.ascontiguousarray(batch.num[:, idx]).reshape((n, *shape))
        else:
            rest[name] = arrays[name]
    if rest:  # one call for them all: `feed` indexes the signature once (a graph of 50,000 inputs took minutes)
        out.update(feed(rest, model))
    return {name: out[name] for name, *_ in _feed_recipe(plan, model)}


def _feed_recipe(plan: Plan, model: Model) -> list[tuple[str, Any, tuple[int, ...], bool]]:
    """Per slot of the plan: (name, its feature columns, row shape, whether `model` takes it as float64 straight
    from the batch); worked out once per plan and model (a model's signature is fixed when it is loaded)."""
    recipes = plan.memo.setdefault("feed", {})
    kept = recipes.get(id(model))
    if kept is not None and kept[0] is model.signature:
        return kept[1]
    specs = {s.name: s for s in model.signature.inputs}
    cols = plan.columns or _columns(plan)
    recipe = []
    for slot in plan.slots:
        idx = cols[slot.name]
        direct = specs[slot.name].dtype == "float64" and slot.dtype.startswith("float") and isinstance(idx, slice)
        recipe.append((slot.name, idx, slot.row_shape, direct))
    recipes[id(model)] = (model.signature, recipe)
    return recipe


def _columns(plan: Plan) -> dict[str, slice | list[int]]:
    """Each slot's feature indices: a slice when they are contiguous (then a batch's columns are a view)."""
    cols: dict[str, list[int]] = {s.name: [] for s in plan.slots}  # a slot of width 0 ([N, 0]) has none
    for i, f in enumerate(plan.features):
        cols.setdefault(f.slot, []).append(i)
    return {k: slice(v[0], v[-1] + 1) if v and v == list(range(v[0], v[-1] + 1)) else slice(0, 0) if not v else v
            for k, v in cols.items()}


def feed(arrays: Mapping[str, np.ndarray], model: Model) -> dict[str, np.ndarray]:
    """The generated arrays cast to what `model` declares (float32 values are exact in float64)."""
    specs = {s.name: s for s in model.signature.inputs}
    out = {}
    for name, arr in arrays.items():
        spec = specs[name]
        if spec.is_string or arr.dtype.kind in "US":
            out[name] = arr
        else:
            out[name] = arr.astype(spec.dtype, copy=False)
    return out


# ---- building the plan from the signatures ---------------------------------------------------------------

def _gen_dtype(a: str, b: str, name: str) -> str:
    kinds = {"f": "float", "i": "int", "u": "int", "b": "bool"}

    def kind(d: str) -> str:
        if d in ("str", "object", "string"):
            return "str"
        return kinds.get(np.dtype(d).kind, d)

    ka, kb = kind(a), kind(b)
    if ka != kb:
        raise SignatureMismatchError(f"input '{name}' is {a} in the original and {b} in the converted model")
    if ka == "float":
        return "float32" if "float32" in (a, b) or "float16" in (a, b) else "float64"
    if ka == "int":
        return a if np.dtype(a).itemsize <= np.dtype(b).itemsize else b
    return "str" if ka == "str" else ka


def _row_shape(name: str, a: tuple, b: tuple, data_shape: tuple | None, notes: list[str]) -> tuple[int, ...]:
    if len(a) != len(b):
        raise SignatureMismatchError(f"input '{name}' has rank {len(a)} in the original and {len(b)} in the "
                                     f"converted model ({list(a)} vs {list(b)})")
    dims = []
    for i, (da, db) in enumerate(zip(a[1:], b[1:]), start=1):
        if da is not None and db is not None and da != db:
            raise SignatureMismatchError(f"input '{name}' has dimension {i} of {da} in the original and {db} in "
                                         "the converted model")
        d = da if da is not None else db
        if d is None and data_shape is not None and len(data_shape) == len(a):
            d = data_shape[i]
        if d is None:
            notes.append(f"input '{name}' has a free dimension {i}; the checker used 1")
            d = 1
        dims.append(int(d))
    from ..limits import check_input_width

    check_input_width(name, dims)  # [N, 2**40] is refused here, before one object per column is built
    return tuple(dims)


def match_inputs(original: Model, converted: Model, data: Mapping[str, np.ndarray] | None,
                 shapes: Mapping[str, tuple[int, ...]] | None = None) -> tuple[list[InputSlot], list[str]]:
    """The input slots both models accept; raises SignatureMismatchError naming what differs."""
    sa, sb = original.signature, converted.signature
    na, nb = sa.input_names, sb.input_names
    if set(na) != set(nb):
        raise SignatureMismatchError(
            f"the models take different inputs: the original {original.format} model takes {na}, the converted "
            f"{converted.format} model takes {nb} (only in the original: {sorted(set(na) - set(nb))}; only in "
            f"the converted: {sorted(set(nb) - set(na))})")
    if not na:  # a constant model: its outputs have no rows to line up with generated input rows
        raise PortableError(f"the {original.format} model '{original.name}' takes no inputs; the checker compares "
                            "two models row by row on the same input rows, so it needs a model with at least one "
                            "input")
    from ..limits import check_model_inputs

    check_model_inputs(len(na))
    notes: list[str] = []
    slots = []
    for name in na:
        a, b = sa.input(name), sb.input(name)
        dshape = data[name].shape if data is not None and name in data else None
        if dshape is None and shapes and name in shapes:  # a model says how wide a free input is
            dshape = (None, *shapes[name])
        slots.append(InputSlot(name, _gen_dtype(a.dtype, b.dtype, name),
                               _row_shape(name, a.shape, b.shape, dshape, notes)))
    return slots, notes


def _features(slots: list[InputSlot]) -> list[Feature]:
    feats = []
    for s in slots:
        width = s.width
        for p in range(width):
            label = s.name if width == 1 else f"{s.name}[{p}]"
            feats.append(Feature(s.name, p, label, is_string=s.is_string,
                                 integer=s.dtype.startswith(("int", "uint", "bool"))))
    return feats


def model_hints(model: Model, notes: list[str] | None = None) -> InputHints | dict[str, list[Any]]:
    """`model.input_hints()`, or empty hints (with a note) when the model cannot say."""
    try:
        hints = model.input_hints()
    except Exception as exc:  # learning is best effort: a surprise here must not break the check
        if notes is not None:
            notes.append(f"could not learn from the {model.format} model: {type(exc).__name__}: {exc}")
        return InputHints()
    return InputHints() if hints is None else hints


def build_plan(original: Model, converted: Model, data: Any = None) -> Plan:
    """Match the two signatures and learn ranges and interesting values from `data` and from both models'
    `input_hints()`."""
    notes: list[str] = []
    hint_sets: list[Any] = []
    for model in (original, converted):
        h = model_hints(model, notes)
        if not any(h is other for other in hint_sets):
            hint_sets.append(h)
    first = hint_sets[0] if isinstance(hint_sets[0], InputHints) else InputHints()
    arrays = data_arrays(data, original, first.frame_columns)
    shapes: dict[str, tuple[int, ...]] = {}
    for h in hint_sets:
        if isinstance(h, InputHints):
            for k, v in h.shapes.items():
                shapes.setdefault(k, tuple(v))
    slots, more = match_inputs(original, converted, arrays, shapes)
    plan = Plan(slots, _features(slots), notes=notes + more)
    if arrays is not None:
        _learn_data(plan, arrays)
    # what a graph's constants suggest (centres, vocabularies, trees behind derived columns, ranges) stands in for
    # an original that cannot say where its inputs live: two ONNX or NNEF models. A fitted original's own hints
    # decide its rows (a scikit-learn model's check generates the rows it did before these were read).
    from_graphs = original.format in ("onnx", "nnef")
    named = any(not p.graph for h in hint_sets if isinstance(h, InputHints) for p in h.points)
    own_trees = any(not t.graph for h in hint_sets if isinstance(h, InputHints) for t in h.trees)
    for h in hint_sets:
        if isinstance(h, InputHints):
            apply_hints(plan, h, graph_points=from_graphs and not named, graph_trees=from_graphs and not own_trees)
        elif isinstance(h, Mapping):
            _learn_values(plan, h)
    if from_graphs:
        _graph_ranges(plan, [h for h in hint_sets if isinstance(h, InputHints)])
    for role, model, h in (("original", original, model_hints(original)),
                           ("converted", converted, model_hints(converted))):
        if isinstance(h, InputHints) and h.rows_alone:
            plan.rows_alone.add(role)
        if isinstance(h, InputHints) and h.batch:
            plan.batches[role] = int(h.batch)
            plan.notes.append(f"the {role} {model.format} model takes batches of exactly {h.batch} rows: it was "
                              "run in batches of that size")
    orig = model_hints(original)
    if isinstance(orig, InputHints):
        plan.decision, plan.ties, plan.neighbours = orig.decision, orig.ties, orig.neighbours
        _rejected_unseen(plan, orig)
    _finish(plan)
    return plan


def _rejected_unseen(plan: Plan, orig: InputHints) -> None:
    """Where the original says it rejects categories it does not know (an encoder with
    handle_unknown="error"), no row takes an unseen one and the random rows draw only its categories: rows it
    rejects would be dropped from the comparison anyway, and finding them among the others costs many runs of
    the original."""
    index = {(f.slot, f.position): i for i, f in enumerate(plan.features)}
    for col, h in orig.columns.items():
        i = index.get(tuple(col))
        if i is None or h.unseen_ok is not False or not h.categories:
            continue
        f = plan.features[i]
        f.rejects_unseen = True
        if f.is_string:
            known = {str(c) for c in h.categories}
            kept = [v for v in f.values if v in known]
            if kept:
                f.values = kept


def _learn_values(plan: Plan, hints: Mapping[str, list[Any]]) -> None:
    """Values a model names per input (an older `input_hints()` form: `{input: [values]}`): strings become
    categories to draw (unseen ones stay allowed), numbers known values with their neighbours."""
    used = False
    for f in plan.features:
        vals = hints.get(f.slot)
        if not vals:
            continue
        if f.is_string:
            strs = [v for v in vals if isinstance(v, str)]
            if strs:
                # any string is a valid input here: draw an other-than-named one ("") as often as a named one
                f.values = sorted(set(f.values) | set(strs) | {""})
                f.unseen_ok = True
                used = True
            continue
        used = _add_numbers(f, [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)],
                            widen=True) or used
    if used and "model's constants" not in plan.sources:
        plan.sources.append("model's constants")


def _add_numbers(f: "Feature", vals: Sequence[float], *, widen: bool) -> bool:
    """Known values of a numeric feature, with their neighbours on both sides and their float32 rounding."""
    if not len(vals):  # (most columns name none: no array made for them)
        return False
    nums = np.asarray(vals, dtype=np.float64)
    nums = nums[np.isfinite(nums)]
    if not nums.size:
        return False
    if nums.size > 256:  # a long list (quantiles, many categories): an even subset
        nums = nums[np.linspace(0, nums.size - 1, 256).astype(np.int64)]
    # float32 neighbours of the float32 rounding too: a float32 artifact compares float32 inputs, and a value one
    # float32 step beside a threshold (a Binarizer's, an imputer's fill, a clip bound) is where a narrower cast
    # or a threshold moved by a step in the artifact shows (a float64 neighbour rounds back onto it)
    n32 = nums.astype(np.float32)
    with np.errstate(over="ignore"):
        near = np.concatenate([nums, np.nextafter(nums, np.inf), np.nextafter(nums, -np.inf), n32.astype(np.float64),
                               np.nextafter(n32, np.float32(np.inf)).astype(np.float64),
                               np.nextafter(n32, np.float32(-np.inf)).astype(np.float64)])
    if f.integer:
        near = np.unique(np.concatenate([np.floor(nums), np.ceil(nums), np.floor(nums) - 1, np.ceil(nums) + 1]))
    f.values = sorted(set(f.values) | set(near.tolist()))
    if widen:
        span = float(nums.max() - nums.min()) or max(1.0, float(np.abs(nums).max()))
        f.widen(float(nums.min()) - 0.25 * span, float(nums.max()) + 0.25 * span)
    return True


def _add_new32(f: "Feature", vals: Sequence[float]) -> bool:
    """`_add_numbers` for the values whose float32 rounding is not among the feature's values yet (`ColumnHint.
    graph_values`: a graph's constant that the other model named already adds nothing, and the rows stay what
    that model's hints make them)."""
    with np.errstate(over="ignore"):
        have = set(np.asarray(f.values, dtype=np.float64).astype(np.float32).tolist()) if f.values else set()
        new = [float(v) for v in vals if math.isfinite(v) and float(np.float32(v)) not in have]
    return _add_numbers(f, new, widen=False)


def apply_hints(plan: Plan, hints: InputHints, *, graph_points: bool = True, graph_trees: bool = True) -> None:
    """Turn a model's `InputHints` into the plan's ranges, values, categories, trees and known points
    (`graph_points`, `graph_trees`: with the points read from a graph's constants, `Points.graph`, and the trees
    read from a graph in part, `TreeNodes.graph`)."""
    mine: list[np.ndarray] = []
    index = {(f.slot, f.position): i for i, f in enumerate(plan.features)}
    for col, h in hints.columns.items():
        i = index.get(tuple(col))
        if i is None:
            continue
        f = plan.features[i]
        if h.lo is not None and h.hi is not None:
            f.widen(float(h.lo), float(h.hi))
        if h.nan_ok:
            f.nan_ok = True
        if h.reach is not None:
            f.reach = h.reach if f.reach is None else (min(h.reach[0], f.reach[0]), max(h.reach[1], f.reach[1]))
        if h.domain is not None:
            lo, hi = h.domain if f.domain is None else (max(h.domain[0], f.domain[0]), min(h.domain[1], f.domain[1]))
            f.domain = (lo, hi)
        if h.integer and not f.from_data:
            f.integer = True
        if h.unseen_ok:
            f.unseen_ok = True
        if f.is_string:
            strs = [str(c) for c in h.categories]
            if strs and h.unseen_ok:
                # any string is valid: draw other-than-named ones as often as a named one, "" and UNSEEN ("" is
                # the missing value of many string imputers, which fill it with a known category: then only
                # UNSEEN reaches the encoder's unknown-category handling)
                strs += ["", UNSEEN]
            f.values = f.values + [v for v in strs if v not in f.values]
            if strs:
                f.categorical = True
            continue
        nums = [float(c) for c in h.categories if not isinstance(c, str)]
        if nums:
            f.categorical = True
            f.values = sorted(set(f.values) | set(nums))
            f.widen(min(nums), max(nums))
        _add_numbers(f, list(h.values) + list(h.kinks), widen=False)
        if h.quantiles:
            _add_numbers(f, h.quantiles, widen=False)
        if h.graph_values:
            _add_new32(f, h.graph_values)
    parts = [_plan_trees(plan, index, t) for t in hints.trees if graph_trees or not t.graph]
    for t in hints.trees if graph_trees else []:  # a graph's trees read in part: their missing-value routes
        routed = (t.left >= 0) & (t.feature >= 0) & (t.missing == 1) if t.graph else np.zeros(0, bool)
        for k in np.unique(t.feature[routed]):
            i = index.get(tuple(t.columns[int(k)]))
            if i is not None and not plan.features[i].is_string:
                plan.features[i].nan_ok = True
    parts = [p for p in parts if p is not None]
    if parts:
        plan.trees = Trees.join(([plan.trees] if plan.trees is not None else []) + parts)
    for pts in hints.points:
        if pts.graph and not graph_points:
            continue
        rows = np.full((len(pts.rows), len(plan.features)), np.nan)
        for j, col in enumerate(pts.columns):
            i = index.get(tuple(col))
            if i is not None:
                rows[:, i] = pts.rows[:, j]
        plan.anchors = rows if plan.anchors is None else np.concatenate([plan.anchors, rows])
        mine.append(rows)
    if mine:
        plan.point_sets.append(np.concatenate(mine))
    for s in hints.sources:
        if s not in plan.sources:
            plan.sources.append(s)
    plan.notes.extend(n for n in hints.notes if n not in plan.notes)


def _graph_ranges(plan: Plan, hint_sets: list[InputHints]) -> None:
    """`ColumnHint.graph_range` (what a graph's constants say about where a column lives), of every model, on the
    features that neither data nor any model's hints gave a range; `ColumnHint.graph_documents` on the text
    features no model named categories for."""
    index = {(f.slot, f.position): i for i, f in enumerate(plan.features)}
    wider: dict[int, tuple[float, float]] = {}
    docs: dict[int, list[str]] = {}
    for hints in hint_sets:
        for col, h in hints.columns.items():
            i = index.get(tuple(col))
            if i is None:
                continue
            f = plan.features[i]
            if h.graph_documents and f.is_string and not f.values:
                docs.setdefault(i, [])
                docs[i] += [d for d in h.graph_documents if d not in docs[i]]
            if h.graph_range is None or f.known or f.is_string:
                continue
            lo, hi = h.graph_range
            if i in wider:
                lo, hi = min(lo, wider[i][0]), max(hi, wider[i][1])
            wider[i] = (lo, hi)
    for i, (lo, hi) in wider.items():
        # a graph's constants say where the model acts (its centres, its training points), not how far its inputs
        # go: the range a column nothing was learned about is drawn from stays in (a float16 rounding of the input
        # that stays within tolerance near a kernel model's training points shows farther out)
        plan.features[i].widen(min(lo, -3.0), max(hi, 3.0))
    for i, d in docs.items():  # (as a vectorizer's documents: any other string is valid too)
        f = plan.features[i]
        f.values = d + [v for v in ("", UNSEEN) if v not in d]
        f.categorical = f.unseen_ok = True
    if wider and "graph constants" not in plan.sources:
        plan.sources.append("graph constants")


def _plan_trees(plan: Plan, index: dict[tuple[str, int], int], t: TreeNodes) -> "Trees | None":
    if not len(t):
        return None
    feat_of_col = np.array([index.get(tuple(c), -1) for c in t.columns] + [-1], dtype=np.int64)
    feature = np.where(t.feature >= 0, feat_of_col[np.where(t.feature >= 0, t.feature, -1)], -1)
    # splits on string features (or categorical memberships) have no numeric box; a membership split on a
    # string feature with its categories known is kept apart (its rows take categories in and out of its set)
    str_feat = np.array([f.is_string for f in plan.features] + [False])
    known = t.members or {}
    member = (t.mode == MEMBER) & (t.left >= 0) & str_feat[feature]
    if member.any():  # (np.isin costs a good part of a first check of a forest: only where it can matter)
        member &= np.isin(np.arange(len(t)), np.fromiter(known, dtype=np.int64, count=len(known)))
    cat_feature = np.where(member, feature, -1)
    members = {int(i): frozenset(str(v) for v in known[int(i)]) for i in np.flatnonzero(member)}
    feature = np.where(str_feat[feature], -1, feature)
    parent, is_left = t.parents()
    key = None
    if t.values is not None and np.ndim(t.values) >= 1 and len(t.values) == len(t):
        # a leaf's value (a vector for classes) folded into one number: unequal numbers, unequal values
        v = np.asarray(t.values, dtype=np.float64).reshape(len(t), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            key = v @ (1.0 + np.arange(v.shape[1]) * 0.7071067811865476)
    return Trees(feature=feature, threshold=t.raw_threshold(), parent=parent, is_left=is_left, key=key,
                 native=t.threshold, scale=t.scale, offset=t.offset, mode=t.mode.astype(np.int64),
                 missing=t.missing.astype(np.int64), zero_eps=t.zero_eps,
                 f32=np.full(len(t), t.dtype == "float32"), cat_feature=cat_feature, members=members)


def data_arrays(data: Any, model: Model, frame_columns: Sequence[str] | None = None) -> dict[str, np.ndarray] | None:
    """`data` (array, DataFrame or mapping) as named input arrays of the model's signature, or None.
    `frame_columns` are the DataFrame columns a single-input model was fitted on, in its order."""
    if data is None:
        return None
    names = model.signature.input_names
    if isinstance(data, Mapping):
        return {n: np.asarray(data[n]) for n in names if n in data}
    if hasattr(data, "columns"):
        cols = [str(c) for c in data.columns]
        if all(n in cols for n in names) and names != ["X"]:
            return {n: np.asarray(data[n].to_numpy()).reshape(-1, 1)
                    if len(model.signature.input(n).shape) == 2 else np.asarray(data[n].to_numpy())
                    for n in names}
        if len(names) != 1:
            return None
        if frame_columns is None:
            hints = model_hints(model)
            frame_columns = hints.frame_columns if isinstance(hints, InputHints) else None
        fitted = list(frame_columns or [])
        if fitted and all(c in cols for c in fitted):  # the columns the model was fitted on, in its order
            return {names[0]: np.asarray(data[fitted].to_numpy())}
        return {names[0]: np.asarray(data.to_numpy())}
    if len(names) == 1:
        arr = np.asarray(data)
        if arr.ndim == 1 and len(model.signature.inputs[0].shape) == 2:
            arr = arr.reshape(-1, 1)
        return {names[0]: arr}
    return None


def _learn_data(plan: Plan, arrays: dict[str, np.ndarray]) -> None:
    widths = {s.name: s.width for s in plan.slots}
    wrong = [k for k, a in arrays.items() if a.ndim == 0 or math.prod(a.shape[1:]) != widths.get(k)]
    if wrong:
        plan.notes.append(f"data= was not used: its shape does not match input(s) {wrong} "
                          f"({', '.join(f'{k}: {list(arrays[k].shape)}' for k in wrong)})")
        return
    n = min(len(a) for a in arrays.values()) if arrays else 0
    if n == 0 or set(arrays) != {s.name for s in plan.slots}:
        plan.notes.append("data= does not provide every input; it was used for ranges only where it matched")
    batch = empty_batch(plan, n, DATA)
    for i, f in enumerate(plan.features):
        arr = arrays.get(f.slot)
        if arr is None or len(arr) < n:
            continue
        col = arr.reshape(len(arr), -1)[:n, f.position]
        if f.is_string:
            col = col.astype(str)
            batch.txt[:, i] = col
            f.values = sorted(set(f.values) | set(col.tolist()))
            continue
        try:
            col = col.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise PortableError(f"data= does not fit input {f.label}, which takes numbers: {exc}") from None
        batch.num[:, i] = col
        finite = col[np.isfinite(col)]
        if finite.size:
            f.widen(float(finite.min()), float(finite.max()), data=True)
            f.from_data = True
            # integer-valued data: the model is fed integers only in this column
            f.integer = f.integer or bool(finite.size >= 10 and np.all(finite == np.round(finite)))
        if np.isnan(col).any():
            f.nan_ok = True
    if n and set(arrays) == {s.name for s in plan.slots}:
        plan.data = (batch.num, batch.txt)
    plan.sources.append("data")

def _odd_points(plan: Plan) -> np.ndarray | None:
    """Known points of one model with no counterpart (within 1e-4 of the ranges) among the other model's."""
    if len(plan.point_sets) < 2:
        return None
    width = np.maximum(plan.hi - plan.lo, 1e-12)
    odd = []
    for k, pts in enumerate(plan.point_sets):
        others = np.concatenate([p for j, p in enumerate(plan.point_sets) if j != k])
        a, b = np.nan_to_num(pts) / width, np.nan_to_num(others) / width
        for start in range(0, len(a), 256):
            blk = a[start:start + 256]
            d = (blk * blk).sum(1)[:, None] - 2 * blk @ b.T + (b * b).sum(1)[None, :]
            far = np.sqrt(np.maximum(d.min(axis=1), 0)) > 1e-4 * math.sqrt(a.shape[1])
            odd.append(pts[start:start + 256][far])
    rows = np.concatenate(odd) if odd else np.zeros((0, len(plan.features)))
    return rows[:200] if len(rows) else None


def _finish(plan: Plan) -> None:
    """Ranges for features nothing was learned about, and a little margin around learned ones."""
    trees = plan.trees
    unknown = [i for i, f in enumerate(plan.features) if not f.known and not f.is_string]
    if trees is not None and unknown:  # thresholds span the part of a feature's range the trees care about
        ok = (trees.feature >= 0) & np.isfinite(trees.threshold)
        feat, thr = trees.feature[ok], trees.threshold[ok]
        lo, hi = np.full(len(plan.features), np.inf), np.full(len(plan.features), -np.inf)
        np.minimum.at(lo, feat, thr)
        np.maximum.at(hi, feat, thr)
        for i in unknown:
            if np.isfinite(lo[i]):
                pad = max((hi[i] - lo[i]) * 0.25, 1e-3 * max(1.0, abs(lo[i]), abs(hi[i])))
                plan.features[i].widen(float(lo[i] - pad), float(hi[i] + pad))
    defaulted = []
    for f in plan.features:
        if f.is_string:
            if not f.values:
                f.values = ["a", "b", "c"]
                defaulted.append(f.label)
            continue
        if not f.known:
            f.lo, f.hi = -3.0, 3.0
            defaulted.append(f.label)
        elif f.hi - f.lo <= 0:
            w = max(1.0, abs(f.lo)) * 0.1
            f.lo, f.hi = f.lo - w, f.hi + w
        if f.domain is not None and f.domain[0] <= f.domain[1]:  # the range inside the domain
            dlo, dhi = f.domain
            if not (f.lo < dhi and f.hi > dlo):  # no overlap: a range at the domain's nearer end
                w = max(1.0, f.hi - f.lo)
                f.lo, f.hi = (dlo, dlo + w) if f.hi <= dlo else (dhi - w, dhi)
            f.lo, f.hi = max(f.lo, dlo), min(f.hi, dhi)
        if f.integer:
            f.lo, f.hi = float(np.floor(f.lo)), float(np.ceil(f.hi))
    plan.lo = np.array([0.0 if f.is_string else f.lo for f in plan.features])
    plan.hi = np.array([0.0 if f.is_string else f.hi for f in plan.features])
    plan.integer = np.array([f.integer and not f.is_string for f in plan.features], dtype=bool)
    plan.valued = [(i, np.asarray(f.values, dtype=np.float64), 0.8 if f.integer else 0.15)
                   for i, f in enumerate(plan.features) if f.values and not f.is_string]
    plan.categories = [(i, np.asarray(f.values, dtype=object)) for i, f in enumerate(plan.features)
                       if f.is_string]
    with np.errstate(over="ignore"):  # ranges of +-1e308: their width is above float64's largest value
        plan.width, plan.mid = plan.hi - plan.lo, (plan.lo + plan.hi) / 2
    wide = ~np.isfinite(plan.width)
    if wide.any():
        plan.width[wide] = np.finfo(np.float64).max
        plan.mid[wide] = plan.lo[wide] / 2 + plan.hi[wide] / 2
    restricted = [(i, f.domain) for i, f in enumerate(plan.features)
                  if f.domain is not None and not f.is_string and f.domain[0] <= f.domain[1]]
    plan.domain = None
    if restricted:
        plan.domain = np.array([np.full(len(plan.features), -np.inf), np.full(len(plan.features), np.inf)])
        for i, (dlo, dhi) in restricted:
            plan.domain[:, i] = dlo, dhi
        plan.sources.append("function domains for " + ", ".join(plan.features[i].label for i, _ in restricted))
    # the special rows' fixed values, rounded to the narrow dtype already
    # (np.array of equal-shape float64 arrays stacks them as np.stack does, without its Python-level checks)
    plan.ends = _narrow(plan, np.array([np.zeros(len(plan.lo)), plan.lo, plan.hi]))
    with np.errstate(over="ignore", invalid="ignore"):  # far beyond +-1e308 is +-inf, as it should be
        plan.far = _narrow(plan, np.array([plan.mid + -1.0 * plan.width * FAR[:, None],
                                           plan.mid + 1.0 * plan.width * FAR[:, None]]))
    if plan.domain is not None:
        _clip_domain(plan, plan.ends)
        _clip_domain(plan, plan.far)
    plan.any_integer = bool(plan.integer.any())
    plan.fast32 = None
    if plan.narrow == np.float32 and not plan.valued and plan.anchors is None and not plan.integer.any() and \
            np.all(np.abs(plan.ends) < 1e37) and np.all(plan.width < 1e37):
        plan.fast32 = (np.array([plan.width / 4, plan.width]).astype(np.float32),
                       np.array([plan.mid, plan.lo]).astype(np.float32))
    plan.nan_feats = [i for i, f in enumerate(plan.features) if f.nan_ok]
    far = [(i, f.reach) for i, f in enumerate(plan.features) if f.reach is not None and not f.is_string]
    plan.reach = None
    if far:
        plan.reach = (np.array([i for i, _ in far], dtype=np.int64),
                      np.array([[min(r[0], plan.lo[i]) for i, r in far], [max(r[1], plan.hi[i]) for i, r in far]]))
    # unseen categories are tried wherever an encoder reads the feature (unless the original says it rejects
    # them): a model that rejects them has those rows dropped and counted
    plan.unseen_feats = [i for i, f in enumerate(plan.features)
                         if (f.unseen_ok or f.categorical) and not f.rejects_unseen]
    plan.columns = _columns(plan)
    plan.odd = _odd_points(plan)
    if defaulted:
        shown = ", ".join(defaulted[:5]) + (f" and {len(defaulted) - 5} more" if len(defaulted) > 5 else "")
        plan.sources.append(f"default ranges for {shown}")


# ---- generation ----------------------------------------------------------------------------------------------

def _narrow(plan: Plan, values: np.ndarray) -> np.ndarray:
    """Values rounded to what the narrower float dtype holds (so both models see the same number)."""
    with np.errstate(over="ignore"):
        return values.astype(plan.narrow).astype(np.float64)


def _clip_domain(plan: Plan, num: np.ndarray) -> None:
    """`num`'s values clipped in place into the features' domains (`plan.domain`; NaN stays NaN). The domain's
    ends are values the narrow dtype holds inside the domain."""
    dom = plan.memo.get("domain_narrow")
    if dom is None:
        with np.errstate(over="ignore"):
            dom = plan.domain.astype(plan.narrow).astype(np.float64)
        dom[0] = np.where(dom[0] < plan.domain[0], np.nextafter(dom[0].astype(plan.narrow), plan.narrow.type(np.inf)),
                          dom[0])
        dom[1] = np.where(dom[1] > plan.domain[1], np.nextafter(dom[1].astype(plan.narrow),
                                                                plan.narrow.type(-np.inf)), dom[1])
        plan.memo["domain_narrow"] = dom
    np.clip(num, dom[0], dom[1], out=num)


def _cloud(plan: Plan, n: int, rng: np.random.Generator) -> Batch:
    """Rows spread over the learned ranges: uniform, a normal bump in the middle, known values, known points."""
    lo, hi, width = plan.lo, plan.hi, plan.width
    n_bump = (3 * n) // 10  # rows from a normal bump in the middle of the ranges, the rest uniform
    # float32 draws are plenty for a random cloud (values are rounded to the narrow dtype anyway) and faster;
    # one draw for the whole matrix, scaled in place
    u = rng.random((n, len(lo)), dtype=np.float32)
    if plan.fast32 is not None:  # float32 models: scaled in float32, so the rows are float32 values already
        scale, shift = plan.fast32
        bump, rest = u[:n_bump], u[n_bump:]
        _normal(bump)
        bump *= scale[0]
        bump += shift[0]
        rest *= scale[1]
        rest += shift[1]
        num = u.astype(np.float64)
    else:
        num = np.empty((n, len(lo)))
        rest = num[n_bump:]
        np.multiply(u[n_bump:], width, out=rest)
        rest += lo
        bump = num[:n_bump]
        np.multiply(_normal(u[:n_bump]), width / 4, out=bump)
        bump += plan.mid
    b = Batch(num, np.full((n, len(lo)), "", dtype=object) if plan.categories else np.empty((n, 0), dtype=object),
              np.zeros(n, dtype=np.int8) if CLOUD == 0 else np.full(n, CLOUD, dtype=np.int8))
    if plan.valued or plan.categories:
        # one uniform column per valued or categorical feature: below `share` it picks a known value, and the
        # same draw (uniform again below `share`) says which one
        u = rng.random((len(plan.valued) + len(plan.categories), n))
        for j, (i, vals, share) in enumerate(plan.valued):
            pick = np.flatnonzero(u[j] < share)
            num[pick, i] = vals[np.minimum((u[j, pick] * (len(vals) / share)).astype(np.int64), len(vals) - 1)]
        for j, (i, cats) in enumerate(plan.categories, start=len(plan.valued)):
            b.txt[:, i] = cats[np.minimum((u[j] * len(cats)).astype(np.int64), len(cats) - 1)]
    if plan.anchors is not None and n:
        # a third of the cloud sits near points the model knows (training points, support vectors, centres)
        m = n // 3
        near = plan.anchors[rng.integers(0, len(plan.anchors), m)] + rng.normal(0, 0.05, (m, len(lo))) * width
        sel = np.isfinite(near)
        num[:m][sel] = near[sel]
    if plan.any_integer:
        k = plan.integer
        num[:, k] = np.clip(np.round(num[:, k]), lo[k], hi[k])
    if plan.domain is not None:  # the bump's tails and the points' noise stay where the models are defined
        _clip_domain(plan, num)
    return b


_FLOAT64 = np.dtype(np.float64)


#: cells of the table `_normal` interpolates the normal quantile in (a power of two: u * cells is exact)
_NORMAL_CELLS = 4096
_NORMAL_TABLE: tuple[np.ndarray, np.ndarray] | None = None


def _normal_table() -> tuple[np.ndarray, np.ndarray]:
    """The normal quantile at k / cells (k = 1 ... cells - 1), at 2**-24 and 1 - 2**-24 for the ends (the least
    and the largest float32 uniform draws but 0), and each cell's slope, as float32."""
    global _NORMAL_TABLE
    if _NORMAL_TABLE is None:
        from .._detmath import normal_quantile

        p = np.arange(_NORMAL_CELLS + 1, dtype=np.float64) / _NORMAL_CELLS
        p[0], p[-1] = 2.0 ** -24, 1.0 - 2.0 ** -24
        q = normal_quantile(p).astype(np.float32)
        _NORMAL_TABLE = (q[:-1].copy(), np.diff(q))
    return _NORMAL_TABLE


def _normal(u: np.ndarray) -> np.ndarray:
    """Standard normal values made from the uniform values `u` (float32 in [0, 1), any shape), written over `u`
    and returned: the normal quantile at u, interpolated linearly in a table of 4,096 cells (computed once, by
    `portable._detmath`, from additions, multiplications, divisions and square roots only). Every operation is
    exactly rounded, so the values are the same bits on every machine: numpy's `log1p`, `sin` and `cos`, which
    the Box-Muller transform took before, differ in their last bits between CPUs with and without AVX2 and
    AVX-512, and so did a check's rows. Four times cheaper than `rng.standard_normal` for a batch."""
    base, slope = _normal_table()
    u *= np.float32(_NORMAL_CELLS)  # exact: a power of two
    cell = u.astype(np.int32)
    frac = u - cell.astype(np.float32)  # exact: the fraction within the cell
    np.take(slope, cell, out=u)
    u *= frac
    u += np.take(base, cell)
    return u


def _candidates(t: np.ndarray, narrow: np.dtype) -> np.ndarray:
    """Per threshold: itself, its float32 rounding and their neighbours, as narrow-dtype values; `[M, 6]`
    with repeats within a row replaced by NaN."""
    t32 = t.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        c = np.stack([t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), t32.astype(np.float64),
                      np.nextafter(t32, np.float32(np.inf)).astype(np.float64),
                      np.nextafter(t32, np.float32(-np.inf)).astype(np.float64)], axis=1)
        c = np.sort(c.astype(narrow).astype(np.float64), axis=1)
    repeat = np.zeros(c.shape, dtype=bool)
    repeat[:, 1:] = c[:, 1:] == c[:, :-1]
    c[repeat | ~np.isfinite(c)] = np.nan
    return c


def _empty(plan: Plan) -> Batch:
    return Batch(np.zeros((0, len(plan.features))),
                 np.zeros((0, len(plan.features) if plan.categories else 0), dtype=object), np.zeros(0, dtype=np.int8))


def tested_nodes(plan: Plan, samples: int) -> tuple[int, int]:
    """(split nodes the plan knows, split nodes a batch of `samples` tests): all of them up to
    max(MIN_NODES, samples, the nodes whose boundary rows fit in BOUNDARY_CELLS values), else a seeded sample of
    that many. A single node's split changed (a threshold a step away, `<=` read as `<`) shows only on the rows
    of that node: a sample of 1,000 of a forest's 6,000 nodes missed such a change on most seeds."""
    total = int(plan.trees.splits.size) if plan.trees is not None else 0
    fit = BOUNDARY_CELLS // (ROWS_PER_PATH * PATHS * max(1, len(plan.features)))
    return total, min(total, max(MIN_NODES, int(samples), fit))


def _boundary(plan: Plan, samples: int, rng: np.random.Generator) -> Batch:
    """For each split node (or a seeded sample of them): rows that reach the node, with the split feature at the
    threshold and at its float64 and float32 neighbours on both sides (in the tree's own units when a scaler is
    before it), at +-zero_eps where the implementation reads tiny values as 0, and NaN where the node routes
    missing values."""
    trees = plan.trees
    if trees is None or samples <= 0:
        return _empty(plan)
    splits = trees.splits
    total, n_nodes = tested_nodes(plan, samples)
    if not n_nodes:
        return _empty(plan)
    if n_nodes == total:  # every split node: what does not depend on the seed is worked out once per plan
        fixed = plan.memo.get("boundary")
        if fixed is None:
            fixed = _boundary_fixed(plan, trees, splits)
            if n_nodes * len(plan.features) <= KEEP_BOXES:
                plan.memo["boundary"] = fixed
    else:
        fixed = _boundary_fixed(plan, trees, np.sort(rng.choice(splits, n_nodes, replace=False)))
    box_lo, box_hi, fix, feat, r, vals, cats = fixed
    base = _cloud(plan, len(feat), rng)
    rows = base.num
    if box_lo is not None:  # move each row inside the box its node's ancestors require, so it reaches the node
        v = _narrow(plan, rows)
        with np.errstate(invalid="ignore"):
            need = ~((v > box_lo) & (v < box_hi))
        need &= np.isfinite(fix)
        rows[need] = fix[need]
    if cats is not None:  # the categories the node's membership ancestors require
        (tj, tf, tv), (cr, cf, cv) = cats
        base.txt[tj, tf] = tv
    b = base.take(r)
    b.num[np.arange(len(r)), feat[r]] = vals
    if cats is not None and len(cr):  # a membership split: its categories in and out of its set, missing
        c = base.take(cr)
        c.txt[np.arange(len(cr)), cf] = cv
        b = Batch.concat([b, c])
    b.source[:] = BOUNDARY
    return b


def _boundary_fixed(plan: Plan, trees: Trees, nodes: np.ndarray) -> tuple[Any, ...]:
    """What the boundary rows of `nodes` take from the plan alone: each node's box from the root (low and high
    bounds per feature, and the value a row outside it is moved to, NaN where the feature is free; None when no
    node has a box), the split features, and (row, value) for each candidate value of the split feature."""
    box_lo, box_hi, fix, which = _boxes(plan, trees, nodes)
    nodes = nodes[which]  # one entry per base row from here on (`PATHS` per node)
    feat = trees.feature[nodes]
    cands = [_candidates(trees.threshold[nodes], plan.narrow)]
    a, off = trees.scale[nodes], trees.offset[nodes]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if not (np.all(a == 1.0) and np.all(off == 0.0)):
            # behind a scaler the tree compares in its own units: its neighbours of the threshold, mapped back
            mapped = (_candidates(trees.native[nodes], np.dtype(np.float64)) - off[:, None]) / a[:, None]
            cands.append(_narrow(plan, mapped))
        eps = trees.zero_eps[nodes]
        if np.any(eps > 0):  # LightGBM reads |x| <= 1e-35 as 0: both ends of that band and just outside it
            e = np.where(eps > 0, eps, np.nan)[:, None]
            band = np.concatenate([e, -e, np.nextafter(e, np.inf), np.nextafter(-e, -np.inf),
                                   np.nextafter(e, 0.0), np.nextafter(-e, 0.0), 0.0 * e], axis=1)
            cands.append(_narrow(plan, (band - off[:, None]) / a[:, None]))
    cand = np.concatenate(cands, axis=1) if len(cands) > 1 else cands[0]
    ints = plan.integer[feat]
    if ints.any():  # integer-valued columns take integers only: the integers on both sides of the threshold
        t = trees.threshold[nodes][ints]
        fl = np.floor(t)
        cand[ints] = np.nan
        cand[ints, :3] = np.stack([fl - (fl == t), fl, fl + 1], axis=1)
    cand.sort(axis=1)
    with np.errstate(invalid="ignore"):
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = np.nan
    r, k = np.nonzero(np.isfinite(cand))
    nan_nodes = np.flatnonzero((trees.missing[nodes] >= 0) & np.isin(feat, plan.nan_feats)) if plan.nan_feats \
        else np.zeros(0, dtype=np.int64)
    r = np.concatenate([r, nan_nodes])
    vals = np.concatenate([cand[r[:len(k)], k], np.full(len(nan_nodes), np.nan)])
    order = np.argsort(r, kind="stable")
    cats = _member_rows(plan, trees, nodes) if np.any(trees.cat_feature >= 0) else None
    return box_lo, box_hi, fix, feat, r[order], vals[order], cats


MAX_CATEGORIES = 8  # a membership split's rows take at most this many categories of its set, and as many outside


def _member_rows(plan: Plan, trees: Trees, nodes: np.ndarray) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """For membership splits on string features: ((row, feature, category) that put each node's row on its
    ancestors' membership sides, so that it reaches the node), and ((row, feature, category) of the extra rows
    of each membership node among `nodes`: categories in its set, outside it, missing and unseen)."""
    known = {i: [v for v in plan.features[i].values if v != ""] for i in range(len(plan.features))
             if plan.features[i].is_string}
    need: dict[tuple[int, int], tuple[set | None, set]] = {}  # (row, feature) -> (allowed or None, forbidden)
    child, parent, idx = nodes.copy(), trees.parent[nodes].copy(), np.arange(len(nodes))
    while True:
        act = np.flatnonzero(parent >= 0)
        if not act.size:
            break
        p = parent[act]
        hit = trees.cat_feature[p] >= 0
        for j, pp, ch in zip(idx[act][hit], p[hit], child[act][hit]):
            key = (int(j), int(trees.cat_feature[pp]))
            allowed, forbidden = need.get(key, (None, set()))
            sent = trees.members.get(int(pp), frozenset())
            if trees.is_left[ch]:
                allowed = set(sent) if allowed is None else allowed & sent
            else:
                forbidden = forbidden | sent
            need[key] = (allowed, forbidden)
        child[act], parent[act] = p, trees.parent[p]
    tj, tf, tv = [], [], []
    for (j, f), (allowed, forbidden) in need.items():
        opts = sorted((allowed if allowed is not None else set(known.get(f, []))) - forbidden)
        if opts:
            tj.append(j)
            tf.append(f)
            tv.append(opts[j % len(opts)])
    cr, cf, cv = [], [], []
    for j, node in enumerate(nodes):
        f = int(trees.cat_feature[node])
        if f < 0:
            continue
        sent = trees.members.get(int(node), frozenset())
        inside = sorted(sent)[:MAX_CATEGORIES]
        outside = [c for c in known.get(f, []) if c not in sent][:MAX_CATEGORIES]
        extra = [""] if plan.features[f].nan_ok or plan.features[f].unseen_ok else []
        extra += [UNSEEN] if f in plan.unseen_feats else []
        for c in inside + outside + extra:
            cr.append(j)
            cf.append(f)
            cv.append(c)
    return ((np.asarray(tj, np.int64), np.asarray(tf, np.int64), np.asarray(tv, dtype=object)),
            (np.asarray(cr, np.int64), np.asarray(cf, np.int64), np.asarray(cv, dtype=object)))


def _equidistant(plan: Plan, n: int, rng: np.random.Generator) -> Batch:
    """Rows halfway between a known point and one of its near neighbours (k-NN ties, equal kernel distances),
    and the known points themselves."""
    pts = plan.anchors
    if pts is None or len(pts) < 2 or n <= 0:
        return _empty(plan)
    fin = np.isfinite(pts)
    width = np.maximum(plan.width, 1e-12)
    i = rng.integers(0, len(pts), n)
    cand = rng.integers(0, len(pts), (n, min(32, len(pts))))
    diff = (np.nan_to_num(pts[cand]) - np.nan_to_num(pts[i])[:, None, :]) / width
    dist = np.einsum("ijk,ijk->ij", diff, diff)
    dist[(cand == i[:, None]) | (dist <= 0)] = np.inf
    j = cand[np.arange(n), np.argmin(dist, axis=1)]
    mid = (pts[i] + pts[j]) / 2
    b = _cloud(plan, n, rng)
    half = n // 2  # half the rows halfway, the other half on the points themselves
    rows = np.concatenate([mid[:n - half], pts[i[n - half:]]])
    sel = np.isfinite(rows) & fin[i]
    b.num[sel] = rows[sel]
    b.source[:] = BOUNDARY
    if plan.odd is not None and len(plan.odd):
        # points one model knows and the other does not (a training point that moved): the points, and points
        # between them and their nearest known points (halfway, three quarters, and the known points), where a
        # neighbour model's set of nearest points changes whether it holds the odd point or not
        odd = plan.odd
        a = np.nan_to_num(odd) / width
        p = np.nan_to_num(pts) / width
        d = (a * a).sum(1)[:, None] - 2 * a @ p.T + (p * p).sum(1)[None, :]
        d[d <= 1e-18] = np.inf
        k = int(np.clip(ODD_ROWS // (3 * len(odd)), 3, 40))
        near = pts[np.argsort(d, axis=1)[:, :k]]
        rows = [odd] + [(odd[:, None, :] * (1 - t) + near * t).reshape(-1, odd.shape[1]) for t in (0.5, 0.75, 1.0)]
        rows = np.concatenate(rows + _rank_rows(plan, odd, rng))
        extra = _cloud(plan, len(rows), rng)
        sel = np.isfinite(rows)
        extra.num[sel] = rows[sel]
        extra.source[:] = BOUNDARY
        b = Batch.concat([b, extra])
    return b


RANKS = 20  # `_rank_rows`: rows where an odd point is the j-th nearest known point, j = 1 ... RANKS


def _rank_rows(plan: Plan, odd: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Rows where a point only one model has (`plan.odd`: a training point that moved) is exactly the j-th
    nearest of its model's points, for j = 1 ... `RANKS` (the number of neighbours k is not known): on rays from
    the point towards random points of its set, just before the ray crosses the bisector of the point and the
    next point to come nearer (Euclidean distance in raw units, the usual metric; the rows are inside the j-th
    rank's stretch of the ray for any metric close to it). With k = j, the model that has the point counts it
    among the neighbours there and the other model counts that next point instead: where their classes or
    values differ, so do the models. Random rows almost never lie there: a k-NN classifier's training point
    moved by a tenth of a standard deviation changed its probabilities on 113 of 200,000 uniform rows, far
    from the point, where it is the fifth nearest."""
    out: list[np.ndarray] = []
    k = plan.neighbours if plan.neighbours and plan.neighbours <= 4 * RANKS else None
    ranks = np.array([k - 1]) if k else np.arange(RANKS)  # (0-based) just before the k-th crossing, when k is known
    rays = max(1, ODD_ROWS // (len(ranks) * len(odd)))
    for p in odd:
        here = np.nan_to_num(p)
        home = None
        for pts in plan.point_sets:
            same = np.all(np.nan_to_num(pts) == here, axis=1)
            if same.any():
                home = np.nan_to_num(pts[~same])
                break
        if home is None or not len(home):
            continue
        away = here - home  # [n, f]
        v = rng.normal(0.0, 1.0, (rays, len(here))) * np.maximum(plan.width, 1e-12)  # [rays, f]: any direction
        b = v @ away.T  # the ray p + t v meets the bisector of p and point i at t = -|p - x_i|^2 / (2 v.(p - x_i))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = np.where(b < 0, -(away * away).sum(1)[None, :] / (2 * b), np.inf)
        t = np.sort(t, axis=1)
        before = np.concatenate([np.zeros((len(t), 1)), t[:, :-1]], axis=1)
        if t.shape[1] <= ranks[-1]:
            continue
        at = (t - 0.01 * (t - before))[:, ranks]  # just before the j-th crossing: the point is the j-th nearest
        r, j = np.nonzero(np.isfinite(at) & (at > 0))
        if not len(r):
            continue
        rows = here + at[r, j][:, None] * v[r]
        rows[:, ~np.isfinite(p)] = np.nan
        out.append(rows)
    return out


def _ancestor_box(plan: Plan, trees: Trees, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box each node's ancestors require (row j for `nodes[j]`): low and high bounds per feature, in raw
    input units (-inf/inf where free)."""
    m, nf = len(nodes), len(plan.features)
    lo = np.full((m, nf), -np.inf)
    hi = np.full((m, nf), np.inf)
    child, parent, idx = nodes.copy(), trees.parent[nodes].copy(), np.arange(m)
    while True:
        act = np.flatnonzero(parent >= 0)
        if not act.size:
            break
        p, ch = parent[act], child[act]
        c, t, mode = trees.feature[p], trees.threshold[p], trees.mode[p]
        ok = (c >= 0) & np.isfinite(t) & (mode <= GT)
        # a true test goes left: `x <= t` / `x < t` bound the left child above, `x >= t` / `x > t` below
        # (a negative scale before the tree turns the comparison around)
        upper = (trees.is_left[ch] == ((mode == LEQ) | (mode == LT))) == (trees.scale[p] > 0)
        j, c, t, up = idx[act][ok], c[ok], t[ok], upper[ok]
        hi[j[up], c[up]] = np.minimum(hi[j[up], c[up]], t[up])
        lo[j[~up], c[~up]] = np.maximum(lo[j[~up], c[~up]], t[~up])
        child[act], parent[act] = p, trees.parent[p]
    return lo, hi


PATHS = 2  # boundary base rows per split node: each reaches a leaf on both sides of the node (see `_paths`)
TRIES = 8  # random descents per node among which `_paths` picks them
PATH_CELLS = 4_000_000  # descents x features held at once: fewer descents per node beyond this


def _paths(plan: Plan, trees: Trees, nodes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[Any, Any, Any]:
    """`PATHS` boxes per node (rows j * PATHS + q for `nodes[j]`), each inside the node's ancestors' box (`lo`,
    `hi`) and narrowed so that a row in it with the split feature at the node's threshold reaches one definite
    leaf below the left child and one below the right child. A row at the threshold goes one way in one model
    and the other way in a model whose split differs there (a threshold a step away, `<=` read as `<`): what
    it shows is the difference between those two leaves, so the boxes are picked, among `TRIES` random
    descents of both subtrees at once, for the largest difference between the two leaves' values (when the
    trees say them), then at random: one random row in the node's box reaches two equal leaves about a third of
    the time in a forest. Returns (lo, hi, node index per box)."""
    m, nf = len(nodes), len(plan.features)
    tries = int(max(PATHS, min(TRIES, PATH_CELLS // max(1, m * nf))))
    rng = np.random.default_rng(0x5EED)  # the descents depend on the plan only (kept with it for every seed)
    d = m * tries
    which = np.repeat(np.arange(m), tries)
    blo, bhi = lo[which], hi[which]
    left, right = trees.children
    node = nodes[which]
    f, t = trees.feature[node], trees.threshold[node]
    rows = np.arange(d)
    ends = []
    for start in (left[node], right[node]):
        ends.append(start.copy())
    # both subtrees walked together, one level a step, over the same box
    pos = np.stack(ends)  # [2, d]
    while True:
        moved = False
        for side in range(2):
            p = pos[side]
            act = np.flatnonzero((p >= 0) & (left[np.maximum(p, 0)] >= 0))
            if not act.size:
                continue
            moved = True
            a = p[act]
            g, s, mode = trees.feature[a], trees.threshold[a], trees.mode[a]
            numeric = (g >= 0) & np.isfinite(s) & (mode <= GT)
            upper_left = ((mode == LEQ) | (mode == LT)) == (trees.scale[a] > 0)  # the left child is below s
            go_left = rng.random(act.size) < 0.5
            gi = np.where(numeric, g, 0)
            r = rows[act]
            glo, ghi = blo[r, gi], bhi[r, gi]
            below_only = numeric & (ghi <= s)  # the box is below s: the side below it
            above_only = numeric & (glo >= s) & ~below_only
            go_left = np.where(below_only, upper_left, np.where(above_only, ~upper_left, go_left))
            same = numeric & (g == f[act])  # the node's own feature: the side the threshold takes
            if same.any():
                tt = trees.scale[a] * t[act] + trees.offset[a]
                native = trees.native[a]
                with np.errstate(invalid="ignore"):
                    test = np.select([mode == LEQ, mode == LT, mode == GTE], [tt <= native, tt < native, tt >= native],
                                     tt > native)
                go_left = np.where(same, test, go_left)
            bound = numeric & ~same
            up = bound & (go_left == upper_left)  # bounded above by s
            dn = bound & ~(go_left == upper_left)
            bhi[r[up], gi[up]] = np.minimum(bhi[r[up], gi[up]], s[up])
            blo[r[dn], gi[dn]] = np.maximum(blo[r[dn], gi[dn]], s[dn])
            pos[side, act] = np.where(go_left, left[a], trees.children[1][a])
        if not moved:
            break
    key = trees.key
    with np.errstate(invalid="ignore"):
        diff = np.abs(key[np.maximum(pos[0], 0)] - key[np.maximum(pos[1], 0)])
    diff = np.where(np.isfinite(diff) & (pos[0] >= 0) & (pos[1] >= 0), diff, 0.0)
    u = rng.random(d)
    order = np.lexsort((u, -diff, which))  # per node, the largest difference first, then at random
    pick = order.reshape(m, tries)[:, :PATHS].ravel()
    return blo[pick], bhi[pick], which[pick]


def _boxes(plan: Plan, trees: Trees, nodes: np.ndarray) -> tuple[Any, Any, Any, np.ndarray]:
    """The boxes of the boundary base rows of `nodes` (see `_paths`): low and high bounds per feature (narrow-
    dtype comparison `lo < v < hi` keeps a row), the value a row outside the box is moved to (NaN where the
    feature is free), and the node index of each box; (None, None, None, index) when no box bounds anything."""
    lo, hi = _ancestor_box(plan, trees, nodes)
    lo, hi, which = _paths(plan, trees, nodes, lo, hi)
    boxed = np.isfinite(lo) | np.isfinite(hi)
    if not boxed.any():
        return None, None, None, which
    with np.errstate(invalid="ignore"):
        width = np.maximum(plan.hi - plan.lo, 1e-6)
        fix = np.where(np.isfinite(lo) & np.isfinite(hi), (lo + hi) / 2,
                       np.where(np.isfinite(hi), hi - 0.25 * width, lo + 0.25 * width))
        if plan.any_integer:
            k = np.broadcast_to(plan.integer, fix.shape)
            fix = np.where(k, np.round(fix), fix)
        fix = _narrow(plan, fix)
        sliver = ~((fix > lo) & (fix <= hi)) & np.isfinite(hi)  # narrower than the dtype's spacing: its top
    fix[sliver] = _narrow(plan, hi[sliver])
    fix[~boxed] = np.nan
    return lo, hi, fix, which


def _special_count(plan: Plan, budget: int) -> int:
    """How many special rows `_special` makes within `budget`."""
    n_nan = len(plan.nan_feats)
    return min(budget, 7 + (1 + n_nan if n_nan else 0))


def _special(plan: Plan, budget: int, rng: np.random.Generator, base: Batch | None = None,
             signs: np.ndarray | None = None) -> Batch:
    """Zeros, NaN where the model handles it, the range ends, far values, unseen categories where ignored.

    The rows are written over `base` (cloud rows, `_special_count` of them) when given, else over a new cloud;
    `signs` are the far rows' uniform draws (`[4, n_features]`) when drawn already."""
    lo = plan.lo
    nan_feats = plan.nan_feats
    # beyond the ranges: just outside, and large (ten ranges out), with random signs
    if signs is None:
        signs = rng.random((4, len(lo)))
    far = np.where(signs < 0.5, plan.far[0], plan.far[1])
    n_nan = (1 + len(nan_feats)) if nan_feats else 0
    b = base if base is not None else _cloud(plan, _special_count(plan, budget), rng)
    num = b.num
    fixed = np.concatenate([plan.ends, far])  # zeros, the range ends, the four far rows
    start = 0
    if nan_feats:  # one row with every NaN the model takes, then one per feature, after the zeros
        num[1, nan_feats] = np.nan
        for j, i in enumerate(nan_feats[:len(num) - 2], start=2):
            num[j, i] = np.nan
        num[0] = fixed[0]
        fixed, start = fixed[1:], 1 + n_nan
    m = max(0, min(len(fixed), len(num) - start))
    num[start:start + m] = fixed[:m]
    k = plan.integer
    if plan.any_integer:
        num[:, k] = np.round(np.nan_to_num(num[:, k], nan=0.0))
    for i, cats in plan.categories:
        b.txt[0, i] = cats[0]
    for j, i in enumerate(plan.unseen_feats):
        f = plan.features[i]
        if f.is_string:
            b.txt[(j + 1) % len(num), i] = UNSEEN
        else:
            num[(j + 1) % len(num), i] = f.hi + max(1.0, f.hi - f.lo)
    b.source[:] = SPECIAL
    return b


def _beyond_cells(plan: Plan, num: np.ndarray, rng: np.random.Generator) -> None:
    """Values beyond the range of each feature with a reach (`Feature.reach`: the model's statistics say its
    training data may lie there) written over some cells of the cloud rows `num`, in place: on a random side,
    at a distance past the range's end spread evenly in its logarithm from a hundredth of the range's width to a
    quarter of it past the reach, so a change that shows only in the tails of the training data (a scale a
    little off) is tried at every scale out there."""
    if plan.reach is None or not len(num):
        return
    feats, (rlo, rhi) = plan.reach
    k = len(feats)
    share = min(BEYOND_SHARE, 1.0 - (1.0 - BEYOND_ROWS) ** (1.0 / k))
    u = rng.random((3, len(num), k))
    r, c = _cells(u[0] < share)
    if not r.size:
        return
    lo, hi = plan.lo[feats][c], plan.hi[feats][c]
    w = np.maximum(hi - lo, 1e-12)
    up = u[1, r, c] < 0.5
    room = np.where(up, rhi[c] - hi, lo - rlo[c]) + 0.25 * w
    near = 0.01 * w
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        dist = near * np.exp(u[2, r, c] * np.log(np.maximum(room / near, 1.0)))
        vals = np.where(up, hi + dist, lo - dist)
        vals = _narrow(plan, vals)
    ints = plan.integer[feats][c]
    vals[ints] = np.round(vals[ints])
    num[r, feats[c]] = vals


def _cells(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.nonzero(mask)` of a 2-D mask (rows and columns of its true cells, in row-major order), from the flat
    indices: numpy's 2-D nonzero costs twenty times more on a sparse [1000, 10] mask."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def _missing_cells(plan: Plan, num: np.ndarray, rng: np.random.Generator) -> None:
    """NaN written over some cells of the cloud rows `num` (in place), in each numeric feature whose NaN the model
    handles (an imputer fills it, a tree routes it): on every seed a difference in what replaces a missing value
    (a fill value, a tree's missing direction) shows on many rows with the other features spread, not only on the
    special rows'."""
    feats = [i for i in plan.nan_feats if not plan.features[i].is_string]
    if not feats or not len(num):
        return
    share = min(NAN_SHARE, 1.0 - (1.0 - NAN_ROWS) ** (1.0 / len(feats)))
    hit = rng.random((len(num), len(feats))) < share
    r, c = _cells(hit)
    num[r, np.asarray(feats, dtype=np.int64)[c]] = np.nan


@np.errstate(over="ignore", invalid="ignore")  # ranges near float64's largest values go past it: +-inf
def generate(plan: Plan, samples: int, rng: np.random.Generator) -> Batch:
    """`samples` generated rows (special, equidistant, cloud), the tree boundary rows of every split node (or of
    a seeded sample of them, see `tested_nodes`), then up to `samples` rows of `data`."""
    n_special = min(_special_count(plan, max(10, int(samples * SPECIAL_SHARE))), samples)
    signs = rng.random((4, len(plan.lo)))
    n_equi = min(200, max(0, samples - n_special) // 10) if plan.anchors is not None else 0
    boundary = _boundary(plan, samples, rng)
    equi = _equidistant(plan, n_equi, rng)
    if len(equi):
        boundary = Batch.concat([boundary, equi]) if len(boundary) else equi
    # one cloud for the special rows (their first rows) and the cloud rows
    # (at least the special rows' base: the equidistant rows may outnumber a small `samples`)
    cloud = _cloud(plan, max(samples - len(equi), n_special), rng)
    special = _special(plan, n_special, rng, base=Batch(cloud.num[:n_special], cloud.txt[:n_special],
                                                        cloud.source[:n_special]), signs=signs)
    _beyond_cells(plan, cloud.num[n_special:], rng)
    _missing_cells(plan, cloud.num[n_special:], rng)
    parts = [boundary] if len(boundary) else []
    if plan.data is not None:
        num, txt = plan.data
        idx = np.arange(len(num)) if len(num) <= samples else np.sort(rng.choice(len(num), samples,
                                                                                     replace=False))
        parts.append(Batch(num[idx], txt[idx], np.full(len(idx), DATA, dtype=np.int8)))
    if parts:  # special rows, boundary rows, cloud rows, data rows
        b = Batch.concat([special, *parts[:len(boundary) > 0],
                          Batch(cloud.num[n_special:], cloud.txt[n_special:], cloud.source[n_special:]),
                          *parts[len(boundary) > 0:]])
    else:  # the cloud batch already holds the special rows first
        b = cloud
    if plan.narrow != _FLOAT64:  # rounded to the narrow dtype, in place; a float32 cloud's rows are float32
        # values already, and so are the special rows' fixed values (but for unseen numeric values)
        if plan.fast32 is None or b is not cloud:
            rows = b.num
        elif any(not plan.features[i].is_string for i in plan.unseen_feats):
            rows = b.num[:n_special]
        else:
            rows = None
        if rows is not None:
            with np.errstate(over="ignore"):
                rows[...] = rows.astype(plan.narrow)
    if plan.domain is not None:
        _clip_domain(plan, b.num)
    return b


@np.errstate(over="ignore", invalid="ignore")
def cloud_rows(plan: Plan, n: int, rng: np.random.Generator) -> Batch:
    """`n` random rows over the plan's ranges, rounded to the narrow dtype (integer features integers)."""
    b = _cloud(plan, n, rng)
    b.num[...] = _narrow(plan, b.num)
    if plan.domain is not None:
        _clip_domain(plan, b.num)
    return b


def narrow_values(plan: Plan, values: np.ndarray) -> np.ndarray:
    """Values as the narrower float dtype holds them (integer features rounded), inside the features' domains
    when `values` are whole rows."""
    out = _narrow(plan, values)
    if plan.domain is not None and out.shape[-1:] == plan.domain.shape[1:]:
        _clip_domain(plan, out)
    return out


# ---- hypothesis: shrinking a failure to a minimal counterexample ---------------------------------------

def rows_strategy(failing: Batch, max_rows: int = 3) -> Any:
    """Hypothesis strategy: small batches of failing rows (by index, the worst first). A failure shrinks to
    one row, the worst one that still fails on its own."""
    from hypothesis import strategies as st

    return st.lists(st.integers(0, len(failing) - 1), min_size=1, max_size=min(max_rows, len(failing)),
                    unique=True).map(failing.take)


def simplify_strategy(plan: Plan, row: Batch) -> Any:
    """Hypothesis strategy: one failing row with some features replaced by their simple values
    (`Feature.simple`). Each feature is kept (True) or simplified (False); a failure shrinks towards
    simplifying every feature that does not matter to it."""
    from hypothesis import strategies as st

    return st.tuples(*[st.booleans() for _ in plan.features]).map(lambda keep: _simplified(plan, row, keep))


def _simplified(plan: Plan, row: Batch, keep: tuple[bool, ...]) -> Batch:
    b = row.take([0])
    b.source[:] = SHRUNK
    for i, (f, k) in enumerate(zip(plan.features, keep)):
        if k:
            continue
        if f.is_string:
            b.txt[0, i] = f.simple
        else:
            b.num[0, i] = f.simple
    fin = np.isfinite(b.num)
    b.num[fin] = _narrow(plan, b.num[fin])
    return b
