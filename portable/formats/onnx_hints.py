"""`OnnxModel.input_hints()`: what an ONNX graph's initializers and attributes say about its inputs.

The graph is walked in order, following each tensor's columns back to the graph inputs through elementwise
affine steps (`Scaler`, `Sub`/`Add`/`Mul`/`Div` by constants, `Cast`, `Identity`) and column plumbing
(`FeatureVectorizer`, `Concat`, `Gather`/`ArrayFeatureExtractor` with constant indices). Recorded, in raw input
units: tree ensembles (`TreeEnsembleRegressor`/`TreeEnsembleClassifier` v1/v3 and `TreeEnsemble` v5) as
`portable.hints.TreeNodes`, category lists of `LabelEncoder`, `OneHotEncoder` and `CategoryMapper`
(and whether unknown categories are accepted), imputer fill values, scaler offsets (a range around them),
`Binarizer` thresholds and `Clip` bounds and ReLU zero points (kinks), the per-row width of free inputs from
`FeatureVectorizer.inputdimensions`, and a fixed batch size declared by the graph inputs. Rows measured against
constant rows (`[N, 1, F] - [1, K, F]`: class means, centroids) give known points and, with the variances the
squared deviations are divided by, a range (`ColumnHint.graph_range`). A string column followed through its
tokenizing to a `LabelEncoder` with string keys has that vocabulary's documents (`ColumnHint.graph_documents`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hints import GT, GTE, LEQ, LT, MEMBER, MODE_NAMES, Column, InputHints, TreeNodes

_PASS = {"Identity", "Cast", "CastLike"}
_ARITH = {"Add", "Sub", "Mul", "Div"}
_COMPARE = {"Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Min", "Max"}
# what is read on a tensor whose columns were followed in part (`_Space.partial`)
_FOLLOW_PARTIAL = {"Concat", "Gather", "ArrayFeatureExtractor", "Neg", "TreeEnsembleRegressor",
                   "TreeEnsembleClassifier", "TreeEnsemble"} | _ARITH


class _Space:
    """A tensor's columns: column k is `a[k] * raw + b[k]` of raw column `cols[k]` (or derived, -1)."""

    def __init__(self, cols: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None,
                 partial: bool = False) -> None:
        self.cols = np.asarray(cols, dtype=np.int64)
        n = len(self.cols)
        self.a = np.ones(n) if a is None else np.asarray(a, dtype=np.float64)
        self.b = np.zeros(n) if b is None else np.asarray(b, dtype=np.float64)
        # partial: some columns were not followed, only their count is known (from the graph's shapes)
        self.partial = partial

    def __len__(self) -> int:
        return len(self.cols)

    def sub(self, idx: Any) -> "_Space":
        idx = np.asarray(idx, dtype=np.int64)
        return _Space(self.cols[idx], self.a[idx], self.b[idx], self.partial)

    def then(self, scale: Any, offset: Any) -> "_Space":
        n = len(self)
        scale = np.broadcast_to(np.asarray(scale, np.float64).reshape(-1), (n,)) if np.size(scale) in (1, n) else None
        offset = np.broadcast_to(np.asarray(offset, np.float64).reshape(-1), (n,)) if np.size(offset) in (1, n) \
            else None
        if scale is None or offset is None:
            return _Space(np.full(n, -1), partial=self.partial)
        return _Space(self.cols, self.a * scale, self.b * scale + offset, self.partial)

    def to_raw(self, k: Any, v: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.asarray(v, np.float64) - self.b[k]) / self.a[k]

    @staticmethod
    def cat(parts: list["_Space"]) -> "_Space":
        return _Space(np.concatenate([p.cols for p in parts]), np.concatenate([p.a for p in parts]),
                      np.concatenate([p.b for p in parts]), any(p.partial for p in parts))


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _array(value: Any) -> np.ndarray:
    from onnx import numpy_helper

    if hasattr(value, "data_type"):  # a TensorProto
        return numpy_helper.to_array(value)
    return np.asarray(value)


# operators that branch on the row count or read it; with none of them (and only the standard and ai.onnx.ml
# domains, whose other operators compute rows alike whatever their number), a graph's result for a row cannot be
# chosen by how many rows are run with it
_BY_ROW_COUNT = frozenset({"If", "Loop", "Scan", "Shape", "Size", "SequenceMap"})


def _rows_alone(proto: Any) -> bool:
    from .onnx import _flat_nodes

    nodes = _flat_nodes(proto.graph.node)
    for f in proto.functions:
        nodes += _flat_nodes(f.node)
    local = {(f.domain, f.name) for f in proto.functions}
    return not any(n.op_type in _BY_ROW_COUNT or (n.domain not in ("", "ai.onnx", "ai.onnx.ml")
                                                  and (n.domain, n.op_type) not in local) for n in nodes)


def onnx_hints(model: Any) -> InputHints:
    """The hints of an `OnnxModel` (see the module docstring)."""
    from .onnx_trees import without_row_order

    graph = without_row_order(model.proto.graph)  # rows ordered for speed around a forest: the same function
    hints = InputHints()
    hints.rows_alone = _rows_alone(model.proto)
    init_names = {i.name for i in graph.initializer}
    consts: dict[str, Any] = {i.name: i for i in graph.initializer}
    columns: list[Column] = []
    spaces: dict[str, _Space] = {}
    free: dict[str, int] = {}  # graph inputs whose row width is free -> their rank
    for vi in graph.input:
        if vi.name in init_names:
            continue
        dims = vi.type.tensor_type.shape.dim if vi.type.tensor_type.HasField("shape") else []
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            hints.batch = int(dims[0].dim_value) if hints.batch is None else hints.batch
        rest = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        if len(rest) > 1 or any(d is None for d in rest):
            free[vi.name] = len(dims)
            if rest == [None]:
                spaces[vi.name] = _Space(np.zeros(0))  # width learned from a FeatureVectorizer, if any
            continue
        width = rest[0] if rest else 1
        start = len(columns)
        columns += [(vi.name, j) for j in range(width)]
        spaces[vi.name] = _Space(np.arange(start, start + width))
    walker = _Walker(hints, columns, spaces, consts, free)
    walker.model_proto = model.proto
    for vi in graph.input:  # a string column read as text: followed through its tokenizing (`_Walker._text`)
        sp = spaces.get(vi.name)
        if vi.type.tensor_type.elem_type == 8 and sp is not None and len(sp) == 1:
            walker.text[vi.name] = (int(sp.cols[0]), False)
    for node in graph.node:
        try:
            walker.node(node)
        except Exception as exc:  # best effort: one odd node must not hide the rest
            hints.notes.append(f"could not learn from ONNX node {node.op_type} '{node.name}': "
                               f"{type(exc).__name__}")
    walker.finish()
    try:
        from .onnx_trees import tree_ensemble

        hints.ensemble = tree_ensemble(graph, walker.tree_of, consts, walker.columns)
    except Exception as exc:  # best effort: the view is for certification only
        hints.notes.append(f"could not read the ONNX graph as a tree ensemble: {type(exc).__name__}: {exc}")
    return hints


class _Walker:
    def __init__(self, hints: InputHints, columns: list[Column], spaces: dict[str, _Space],
                 consts: dict[str, Any], free: dict[str, int]) -> None:
        self.hints, self.columns, self.spaces, self.consts, self.free = hints, columns, spaces, consts, free
        self.model_proto: Any = None  # the model (its graph's shapes are inferred on demand, `width`)
        self.shapes: dict[str, int] | None = None
        self.trees: list[TreeNodes] = []
        self.tree_of: dict[str, TreeNodes] = {}  # tree ensemble node (first output) -> its trees
        self.isnan_of: dict[str, str] = {}  # IsNaN output -> the tensor it tests
        self.stacked: dict[str, _Space] = {}  # a tensor [N, F] unsqueezed to [N, F, 1] -> its columns
        self.spread: dict[str, _Space] = {}  # a tensor [N, F] unsqueezed or reshaped to [N, 1, F] -> its columns
        self.deviations: dict[str, tuple[_Space, np.ndarray]] = {}  # [N, K, F] rows minus K centres [K, F]
        self.squared: dict[str, tuple[_Space, np.ndarray]] = {}  # those deviations squared
        self.text: dict[str, tuple[int, bool]] = {}  # tensor -> (its string column, tokenized yet)
        self.joins: dict[int, set[str]] = {}  # string column -> separators its n-grams are joined with
        self.vocab: dict[int, list[str]] = {}  # string column -> a vocabulary its tokens are looked up in

    def const(self, name: str) -> np.ndarray | None:
        v = self.consts.get(name)
        if v is None:
            return None
        if not isinstance(v, np.ndarray):
            v = self.consts[name] = _array(v)
        return v

    def width(self, name: str) -> int | None:
        """The per-row width of a rank-2 tensor, from the graph's shapes (ONNX shape inference, once)."""
        if self.shapes is None:
            self.shapes = {}
            try:
                from onnx import shape_inference

                inferred = shape_inference.infer_shapes(self.model_proto)
                for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + \
                        list(inferred.graph.output):
                    dims = vi.type.tensor_type.shape.dim if vi.type.tensor_type.HasField("shape") else []
                    if len(dims) == 2 and dims[1].HasField("dim_value"):
                        self.shapes[vi.name] = int(dims[1].dim_value)
            except Exception:  # best effort: without shapes, such a Concat is not followed
                pass
        return self.shapes.get(name)

    def col(self, k: int) -> Column:
        return self.columns[k]

    def finish(self) -> None:
        self.hints.trees.extend(self.trees)
        from ..hints import vocabulary_documents

        for c, terms in self.vocab.items():
            joins = self.joins.get(c, set())
            consts = sorted(j for j in joins if j)
            # n-grams joined with a separator: words; joined as they are, or single characters: characters
            sep = consts[0] if consts else "" if joins or all(len(t) == 1 for t in terms) else " "
            h = self.hints.column(self.col(c))
            seen = set(h.graph_documents)
            h.graph_documents += [d for d in vocabulary_documents(terms, sep) if d not in seen and not seen.add(d)]
            self.hints.learned("ONNX vocabulary")

    # -- the walk ----------------------------------------------------------------------------------------------
    def node(self, node: Any) -> None:
        op = node.op_type
        ins = list(node.input)
        if op == "Constant":
            at = _attrs(node)
            val = at.get("value")
            if val is not None:
                self.consts[node.output[0]] = _array(val)
            return
        if self.text and any(i in self.text for i in ins) and self._text(node, op, ins):
            return
        space = self.spaces.get(ins[0]) if ins else None
        if op == "IsNaN" and space is not None and not space.partial:
            self.isnan_of[node.output[0]] = ins[0]
            self.spaces[node.output[0]] = _Space(np.full(len(space), -1))  # derived 0/1 columns, as wide
            return
        if op == "Where" and len(ins) == 3 and ins[2] in self.spaces and self.isnan_of.get(ins[0]) == ins[2]:
            # fills the missing values of a tensor only (an imputer): its columns take NaN, the fill values are
            # interesting values
            sp = self.spaces[node.output[0]] = self.spaces[ins[2]]
            for k in range(len(sp)):
                if sp.cols[k] >= 0:
                    self.hints.column(self.col(sp.cols[k])).nan_ok = True
            fill = self.const(ins[1])
            if fill is not None and fill.dtype.kind == "f" and fill.size in (1, len(sp)):
                self._values(sp, fill.astype(np.float64).reshape(-1), "imputer fill values", kink=False,
                             graph=True)
            return
        if op in _COMPARE and len(ins) == 2 and ins[0] in self.stacked and self.const(ins[1]) is not None:
            # [N, F, 1] compared with constants [1, F, K] (bin edges, knots): column k's K values
            sp, c = self.stacked[ins[0]], self.const(ins[1])
            if c.dtype.kind == "f" and c.ndim == 3 and c.shape[0] == 1 and c.shape[1] == len(sp):
                for k in range(len(sp)):
                    self._values(sp.sub([k]), c[0, k].astype(np.float64), "ONNX compared values", kink=False,
                                 graph=True)
            return
        if self._centres(node, op, ins):
            return
        if op in _PASS:
            if space is not None:
                self.spaces[node.output[0]] = space
            return
        if op == "FeatureVectorizer":
            self._vectorizer(node)
            return
        if space is None and op not in ("Concat",):
            return
        if space is not None and space.partial and op not in _FOLLOW_PARTIAL:
            return  # (columns followed in part: only trees are read on them, as `TreeNodes.graph`)
        at = _attrs(node)
        if op == "Scaler":
            offset = np.asarray(at.get("offset", [0.0]), np.float64)
            scale = np.asarray(at.get("scale", [1.0]), np.float64)
            with np.errstate(divide="ignore"):
                self._range(space, offset - 3 / np.abs(scale), offset + 3 / np.abs(scale), "scaler offsets")
            self.spaces[node.output[0]] = space.then(scale, -offset * scale)
        elif op in _ARITH and len(ins) == 2 and ins[0] in self.spaces and self.const(ins[1]) is not None:
            c = self.const(ins[1]).astype(np.float64)
            if c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1):
                c = c.reshape(-1)
                one, zero = np.ones_like(c), np.zeros_like(c)
                scale, offset = {"Add": (one, c), "Sub": (one, -c), "Mul": (c, zero),
                                 "Div": (1 / np.where(c == 0, np.nan, c), zero)}[op]
                self.spaces[node.output[0]] = space.then(scale, offset)
        elif op == "Neg":
            self.spaces[node.output[0]] = space.then(-1.0, 0.0)
        elif op == "Concat":
            parts = [self.spaces.get(i) for i in ins]
            if all(p is not None and len(p) for p in parts) and at.get("axis", 1) in (1, -1):
                self.spaces[node.output[0]] = _Space.cat(parts)  # type: ignore[arg-type]
            elif any(p is not None and len(p) for p in parts) and at.get("axis", 1) in (1, -1):
                # columns derived on the way (an encoder's codes written with Equal/MatMul/Where) beside followed
                # ones: their count from the graph's shapes, the followed columns kept (a tree after it is read
                # on them; `partial`)
                widths = [len(p) if p is not None and len(p) else self.width(i) for p, i in zip(parts, ins)]
                if all(w is not None for w in widths):
                    self.spaces[node.output[0]] = _Space.cat([
                        p if p is not None and len(p) else _Space(np.full(w, -1), partial=True)
                        for p, w in zip(parts, widths)])
        elif op in ("Gather", "ArrayFeatureExtractor") and len(ins) == 2 and self.const(ins[1]) is not None:
            if op == "ArrayFeatureExtractor" or at.get("axis", 0) in (1, -1):
                idx = self.const(ins[1]).reshape(-1).astype(np.int64)
                if len(space) and np.all((idx >= 0) & (idx < len(space))):
                    self.spaces[node.output[0]] = space.sub(idx)
        elif op in ("TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble"):
            before = len(self.trees)
            self._trees_v3(space, at, op) if op != "TreeEnsemble" else self._trees_v5(space, at)
            if len(self.trees) > before and space.partial:
                self.trees[-1].graph = True  # (read in part: for the checker's rows only, not certification)
            elif len(self.trees) > before:
                self.tree_of[node.output[0]] = self.trees[-1]
        elif op in ("LabelEncoder", "CategoryMapper", "OneHotEncoder"):
            self._categories(space, at, op)
        elif op == "Equal" and len(ins) == 2 and self.const(ins[1]) is not None and len(space) == 1:
            # a column compared with constant values (an encoder written with Equal: one-hot or ordinal codes
            # of a string column): the values are its categories
            c = self.const(ins[1]).reshape(-1)
            if c.dtype.kind in "OUS" and space.cols[0] >= 0:
                h = self.hints.column(self.col(space.cols[0]))
                vals = [v.decode() if isinstance(v, bytes) else str(v) for v in c.tolist()]
                h.categories = h.categories + [v for v in vals if v not in h.categories]
                self.hints.learned("ONNX compared categories")
            elif c.dtype.kind in "fiu":
                self._values(space, c.astype(np.float64), "ONNX compared values", kink=False)
        elif op == "Imputer":
            for k in range(len(space)):
                if space.cols[k] >= 0:
                    self.hints.column(self.col(space.cols[k])).nan_ok = True
            fill = at.get("imputed_value_floats")
            if fill:
                self._values(space, np.asarray(fill, np.float64), "imputer fill values", kink=False)
        elif op == "Unsqueeze" and len(space):
            axes = self.const(ins[1]) if len(ins) > 1 else np.asarray(at.get("axes", []))
            if axes is not None and axes.size == 1 and int(axes.reshape(-1)[0]) in (2, -1):
                self.stacked[node.output[0]] = space  # [N, F, 1]: each column against constants of its own
            elif axes is not None and axes.size == 1 and int(axes.reshape(-1)[0]) in (1, -2):
                self.spread[node.output[0]] = space  # [N, 1, F]: the rows against K constant rows [1, K, F]
        elif op == "Reshape" and len(space) and len(ins) == 2 and self.const(ins[1]) is not None:
            shape = self.const(ins[1]).reshape(-1).tolist()
            if len(shape) == 3 and shape[0] in (-1, 0) and shape[1] == 1 and shape[2] == len(space):
                self.spread[node.output[0]] = space
        elif op in _COMPARE and len(ins) == 2 and ins[0] in self.spaces and self.const(ins[1]) is not None:
            # a column compared with a constant (bin edges, a threshold, a clip bound): its value and neighbours
            c = self.const(ins[1])
            if c.dtype.kind == "f" and c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1) and c.size in (1, len(space)):
                self._values(space, c.astype(np.float64).reshape(-1), "ONNX compared values", kink=op in ("Min", "Max"),
                             graph=True)
        elif op == "Binarizer":
            self._values(space, np.asarray([at.get("threshold", 0.0)], np.float64), "kinks", kink=True)
        elif op == "Clip":
            bounds = [self.const(i) for i in ins[1:3] if i]
            vals = [float(b) for b in bounds if b is not None and b.size == 1]
            if vals:
                self._values(space, np.asarray(vals), "kinks", kink=True)
        elif op in ("Relu", "LeakyRelu", "PRelu"):
            self._values(space, np.asarray([0.0]), "kinks", kink=True)
        if op in ("SVMClassifier", "SVMRegressor") and "support_vectors" in at and len(space):
            sv = np.asarray(at["support_vectors"], np.float64)
            if sv.size % len(space) == 0:
                self._points(space, sv.reshape(-1, len(space)), "ONNX support vectors")
        elif space is not None and len(space) and op not in ("MatMul", "Gemm"):
            # a constant [K, F] next to a tensor of F raw columns (k-NN training points in a Scan, a CDist, a
            # Sub): known points
            for name in ins[1:]:
                c = self.const(name)
                if c is not None and c.dtype.kind == "f" and c.ndim == 2 and c.shape[0] >= 2 and \
                        c.shape[1] == len(space):
                    self._points(space, c.astype(np.float64), "ONNX training points")

    _TEXT_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Cast", "StringNormalizer", "Tokenizer",
                 "Where", "Concat", "Slice", "StringConcat", "Expand", "Pad", "Gather", "StringSplit"}

    def _text(self, node: Any, op: str, ins: list[str]) -> bool:
        """A string column followed through its tokenizing (`Tokenizer`, n-gram windows `Slice`d and joined by
        `StringConcat`) to a `LabelEncoder` with string keys: the keys (in the order of their codes) are a
        vocabulary, and documents made of them reach every term's column (`ColumnHint.graph_documents`). True when
        the node was read here (its other inputs are then no numeric columns)."""
        col, tokenized = next(self.text[i] for i in ins if i in self.text)
        if op == "LabelEncoder":
            at = _attrs(node)
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in at.get("keys_strings", [])]
            if not tokenized or not keys:
                return False
            codes = list(at.get("values_int64s", range(len(keys))))
            terms = [k for _, k in sorted(zip(codes, keys), key=lambda kc: kc[0])] if len(codes) == len(keys) \
                else keys
            have = self.vocab.setdefault(col, [])
            if not have:
                have += terms
            return True
        if op not in self._TEXT_OPS:
            return False
        if op == "StringConcat":
            for i in ins:
                c = self.const(i)
                if i not in self.text and c is not None and c.size == 1:
                    v = c.reshape(-1)[0]
                    self.joins.setdefault(col, set()).add(v.decode() if isinstance(v, bytes) else str(v))
                elif i in self.text:
                    self.joins.setdefault(col, set()).add("")
        for o in node.output:
            self.text[o] = (col, tokenized or op in ("Tokenizer", "StringSplit"))
        return op not in ("Reshape", "Squeeze", "Flatten", "Identity", "Cast", "Unsqueeze", "Gather", "Concat")

    def _centres(self, node: Any, op: str, ins: list[str]) -> bool:
        """Rows measured against constant rows (a nearest-centroid's or a Gaussian naive Bayes' class means, a
        k-means' centres: `[N, 1, F] - [1, K, F]`): those rows are known points and say where the columns live
        (`graph_range`); deviations squared and divided by constants `[1, K, F]` (a Gaussian's variances) widen
        that to three standard deviations around each centre. True when the node was read here."""
        out = node.output[0] if node.output else ""
        if op in ("Sub", "Add") and len(ins) == 2 and (ins[0] in self.spread or ins[1] in self.spread):
            var, cst = (ins[0], ins[1]) if ins[0] in self.spread else (ins[1], ins[0])
            sp, c = self.spread[var], self.const(cst)
            if c is None or c.dtype.kind != "f" or c.ndim not in (2, 3) or c.shape[-1] != len(sp) or \
                    (c.ndim == 3 and c.shape[0] != 1):
                return False
            pts = c.reshape(-1, len(sp)).astype(np.float64)
            pts = -pts if op == "Add" else pts
            self._points(sp, pts, "ONNX centres", graph=True)
            self.deviations[out] = (sp, pts)
            return True
        if op == "Pow" and len(ins) == 2 and ins[0] in self.deviations:
            e = self.const(ins[1])
            if e is not None and e.size == 1 and float(e.reshape(-1)[0]) == 2.0:
                self.squared[out] = self.deviations[ins[0]]
            return True
        if op == "Mul" and len(ins) == 2 and ins[0] == ins[1] and ins[0] in self.deviations:
            self.squared[out] = self.deviations[ins[0]]
            return True
        if op == "Div" and len(ins) == 2 and ins[0] in self.squared:
            sp, pts = self.squared[ins[0]]
            v = self.const(ins[1])
            if v is not None and v.dtype.kind == "f" and v.size in (len(sp), pts.size):
                var = np.broadcast_to(v.reshape(-1, len(sp)), pts.shape).astype(np.float64)
                if np.all(var > 0):
                    sd = 3 * np.sqrt(var)
                    self._graph_range(sp, (pts - sd).min(0), (pts + sd).max(0), "ONNX variances")
            return True
        return False

    def _graph_range(self, space: _Space, lo: np.ndarray, hi: np.ndarray, source: str) -> None:
        for k in range(len(space)):
            c = space.cols[k]
            if c >= 0:
                a, b = space.to_raw(k, lo[k]), space.to_raw(k, hi[k])
                self.hints.column(self.col(c)).graph_widen(float(a), float(b))
        self.hints.learned(source)

    def _vectorizer(self, node: Any) -> None:
        at = _attrs(node)
        dims = [int(d) for d in at.get("inputdimensions", [])]
        parts = []
        for name, d in zip(node.input, dims):
            sp = self.spaces.get(name)
            if name in self.free and self.free[name] == 2 and (sp is None or not len(sp)):
                # a free-width graph input: FeatureVectorizer says how wide it is
                self.hints.shapes[name] = (d,)
                start = len(self.columns)
                self.columns += [(name, j) for j in range(d)]
                sp = self.spaces[name] = _Space(np.arange(start, start + d))
                self.hints.learned("FeatureVectorizer input dimensions")
            if sp is None or not len(sp):
                sp = _Space(np.full(d, -1))
            elif len(sp) < d:  # FeatureVectorizer pads a narrower input with zeros
                sp = _Space.cat([sp, _Space(np.full(d - len(sp), -1))])
            else:
                sp = sp.sub(np.arange(d))
            parts.append(sp)
        if parts:
            self.spaces[node.output[0]] = _Space.cat(parts)

    # -- recorders -------------------------------------------------------------------------------------------
    def _range(self, space: _Space, lo: np.ndarray, hi: np.ndarray, source: str) -> None:
        n = len(space)
        lo, hi = np.broadcast_to(lo, (n,)), np.broadcast_to(hi, (n,))
        for k in range(n):
            c = space.cols[k]
            if c >= 0:
                self.hints.column(self.col(c)).widen(float(space.to_raw(k, lo[k])), float(space.to_raw(k, hi[k])))
        self.hints.learned(source)

    def _values(self, space: _Space, vals: np.ndarray, source: str, *, kink: bool, graph: bool = False) -> None:
        for k in range(len(space)):
            c = space.cols[k]
            if c < 0:
                continue
            v = vals[k:k + 1] if len(vals) == len(space) and len(vals) > 1 else vals
            raw = [float(x) for x in space.to_raw(k, v) if np.isfinite(x)]
            if not raw:
                continue
            if graph:  # (`ColumnHint.graph_values`: only where the other model named no such value)
                h = self.hints.column(self.col(c))
                h.graph_values = sorted(set(h.graph_values) | set(raw))
                continue
            self.hints.add_values(self.col(c), raw, widen=False)
            if kink:
                h = self.hints.column(self.col(c))
                h.kinks = sorted(set(h.kinks) | set(raw))
        self.hints.learned(source)

    def _categories(self, space: _Space, at: dict[str, Any], op: str) -> None:
        cats: list[Any] = []
        for key in ("keys_strings", "cats_strings"):
            cats += [v.decode() if isinstance(v, bytes) else str(v) for v in at.get(key, [])]
        for key in ("keys_int64s", "cats_int64s", "keys_floats"):
            cats += [float(v) for v in at.get(key, [])]
        if "keys_tensor" in at:
            arr = _array(at["keys_tensor"]).reshape(-1)
            cats += [v.decode() if isinstance(v, bytes) else (str(v) if arr.dtype.kind in "OUS" else float(v))
                     for v in arr]
        if not cats:
            return
        unseen = None
        if op == "OneHotEncoder":
            unseen = bool(at.get("zeros", 1))
        for k in range(len(space)):
            c = space.cols[k]
            if c < 0:
                continue
            h = self.hints.column(self.col(c))
            for v in cats:
                if isinstance(v, str):
                    if v not in h.categories:
                        h.categories.append(v)
                elif space.a[k] == 1.0 and space.b[k] == 0.0 and v not in h.categories:
                    h.categories.append(v)
            if unseen is not None:
                h.unseen_ok = bool(h.unseen_ok) or unseen
            elif op != "OneHotEncoder":
                h.unseen_ok = True if h.unseen_ok is None else h.unseen_ok  # mapped to a default value
        self.hints.learned("ONNX encoder categories")

    def _points(self, space: _Space, pts: np.ndarray, source: str, *, graph: bool = False) -> None:
        from ..hints import Points

        ok = space.cols >= 0
        if not ok.any():
            return
        k = np.arange(len(space))
        raw = space.to_raw(k[None, :], pts)
        if len(raw) > 2000:
            raw = raw[np.random.default_rng(0).choice(len(raw), 2000, replace=False)]
        cols = [self.col(c) for c in space.cols[ok]]
        self.hints.points.append(Points(cols, raw[:, ok], source, graph=graph))
        self._graph_range(space, pts.min(0), pts.max(0), source)

    # -- trees -----------------------------------------------------------------------------------------------
    def _add(self, space: _Space, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray,
             right: np.ndarray, mode: np.ndarray, missing: np.ndarray, roots: np.ndarray, dtype: str | None,
             source: str, values: np.ndarray | None = None) -> None:
        feature = np.asarray(feature, np.int64)
        split = (np.asarray(left) >= 0) & (feature >= 0) & (feature < len(space)) & (mode != MEMBER)
        fk = np.where(split, feature, 0)
        cols = np.where(split, space.cols[fk] if len(space) else -1, -1)
        # a split that sends missing values to its true branch (`nodes_missing_value_tracks_true`) routes NaN on
        # purpose: its raw column takes NaN (a check of two ONNX models learns it from them; no other hint says)
        for c in np.unique(cols[split & (np.asarray(missing) == 1)]) if not space.partial else []:
            if c >= 0:
                self.hints.column(self.col(int(c))).nan_ok = True
        scale = np.where(split, space.a[fk] if len(space) else 1.0, 1.0)
        offset = np.where(split, space.b[fk] if len(space) else 0.0, 0.0)
        # a split on a negated column (portable's trees read [x, -x] instead of tracking missing values):
        # `-x <= t -> A, else B` is exactly `x < -t -> B, else A`: written as that plain split on x
        neg = split & (scale == -1.0) & (offset == 0.0) & np.isin(mode, [LEQ, LT, GTE, GT])
        if neg.any():
            from .onnx_trees import turn_negated

            mode, threshold, missing = turn_negated(neg, mode, threshold, missing)
            left, right = np.where(neg, right, left), np.where(neg, left, right)
            scale = np.where(neg, 1.0, scale)
        self.trees.append(TreeNodes(list(self.columns), cols, threshold, left, right, mode=mode, missing=missing,
                                    scale=scale, offset=offset,
                                    roots=roots, dtype=dtype, source=source, values=values))
        self.hints.learned("ONNX tree thresholds")

    def _trees_v3(self, space: _Space, at: dict[str, Any], op: str) -> None:
        tree = np.asarray(at.get("nodes_treeids", []), np.int64)
        if not len(tree):
            return
        nid = np.asarray(at["nodes_nodeids"], np.int64)
        feat = np.asarray(at["nodes_featureids"], np.int64)
        modes = [m.decode() if isinstance(m, bytes) else str(m) for m in at["nodes_modes"]]
        if "nodes_values_as_tensor" in at:
            thr, dtype = _array(at["nodes_values_as_tensor"]).astype(np.float64), None
        else:
            thr, dtype = np.asarray(at.get("nodes_values", np.zeros(len(tree))), np.float64), "float32"
        pos = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree, nid))}
        true_ = np.asarray(at.get("nodes_truenodeids", np.zeros(len(tree))), np.int64)
        false_ = np.asarray(at.get("nodes_falsenodeids", np.zeros(len(tree))), np.int64)
        leaf = np.array([m == "LEAF" for m in modes])
        left = np.array([-1 if lf else pos.get((int(t), int(c)), -1) for lf, t, c in zip(leaf, tree, true_)])
        right = np.array([-1 if lf else pos.get((int(t), int(c)), -1) for lf, t, c in zip(leaf, tree, false_)])
        mode = np.array([MODE_NAMES.get(m, LEQ) for m in modes], np.uint8)
        tracks = np.asarray(at.get("nodes_missing_value_tracks_true", np.zeros(len(tree))), np.int64)
        missing = np.where(tracks > 0, 1, -1).astype(np.int8)
        first = np.flatnonzero(np.r_[True, tree[1:] != tree[:-1]])
        self._add(space, np.where(leaf, -1, feat), np.where(leaf, np.nan, thr), left, right, mode, missing,
                  first, dtype, op)

    def _trees_v5(self, space: _Space, at: dict[str, Any]) -> None:
        feat = np.asarray(at["nodes_featureids"], np.int64)
        n_inner = len(feat)
        mode = _array(at["nodes_modes"]).astype(np.uint8).reshape(-1)
        splits_t = at["nodes_splits"]
        splits = _array(splits_t).astype(np.float64).reshape(-1)
        dtype = "float32" if _array(splits_t).dtype == np.float32 else None
        tid = np.asarray(at["nodes_truenodeids"], np.int64)
        tl = np.asarray(at.get("nodes_trueleafs", np.zeros(n_inner)), np.int64).astype(bool)
        fid = np.asarray(at["nodes_falsenodeids"], np.int64)
        fl = np.asarray(at.get("nodes_falseleafs", np.zeros(n_inner)), np.int64).astype(bool)
        miss = np.asarray(at.get("nodes_missing_value_tracks_true", np.zeros(n_inner)), np.int64)
        weights = _array(at["leaf_weights"]).astype(np.float64).reshape(-1) if "leaf_weights" in at else None
        n_leaf = len(weights) if weights is not None else int(max(tid[tl].max(initial=-1), fid[fl].max(initial=-1))) + 1
        left = np.r_[np.where(tl, n_inner + tid, tid), np.full(n_leaf, -1)]
        right = np.r_[np.where(fl, n_inner + fid, fid), np.full(n_leaf, -1)]
        values = None
        if weights is not None:
            values = np.zeros((n_inner + n_leaf, 1))
            values[n_inner:, 0] = weights
        roots = np.asarray(at.get("tree_roots", [0]), np.int64)
        members = mode == MEMBER
        if members.any() and "membership_values" in at:  # category values tested by membership splits
            mv = _array(at["membership_values"]).astype(np.float64).reshape(-1)
            cats = mv[np.isfinite(mv)]
            for f in np.unique(feat[members]):
                if 0 <= f < len(space) and space.cols[f] >= 0:
                    self.hints.add_values(self.col(space.cols[f]), space.to_raw(f, cats).tolist(), widen=False)
        self._add(space, np.r_[feat, np.full(n_leaf, -1)], np.r_[splits, np.full(n_leaf, np.nan)], left, right,
                  np.r_[mode, np.zeros(n_leaf, np.uint8)], np.r_[np.where(miss > 0, 1, -1), np.full(n_leaf, -1)],
                  roots, dtype, "TreeEnsemble", values)


__all__ = ["onnx_hints"]
