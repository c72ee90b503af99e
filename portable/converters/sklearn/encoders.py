"""OneHotEncoder with infrequent categories (`min_frequency`, `max_categories`, `infrequent_if_exist`).

skl2onnx 1.20 writes onnxruntime's `OneHotEncoder` node, which knows one column per category: it has no
"infrequent" column, so `min_frequency` gives wrong numbers and `max_categories` is refused; it refuses unknown
values under `handle_unknown="infrequent_if_exist"` even when no category is infrequent. Here each input
column is compared with its fitted categories (`Equal`, strings or numbers) and the hits are multiplied by a
mapping matrix `[categories, output columns]`; a value that is none of the categories gets the encoder's unknown
row (the infrequent column under `handle_unknown="infrequent_if_exist"`, zeros otherwise).

The mapping is not re-derived from scikit-learn's rules: it is read from the fitted encoder itself, by
transforming one probe row per category (and one with a value it never saw), so `drop`, `drop="if_binary"`,
infrequent grouping and unknown handling are whatever this scikit-learn version computes. The output is in the
conversion's float type. Other OneHotEncoders stay with skl2onnx's node (see `portable_handles`).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .emit import Emitter
from .registry import UseSkl2onnx, sklearn_converter


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or type(v).__name__ in ("NAType", "NaTType")


def _unseen(cats: np.ndarray) -> Any:
    if any(isinstance(c, str) for c in cats):
        token = "\x00unseen"
        while token in set(map(str, cats)):
            token += "_"
        return token
    nums = np.asarray([float(c) for c in cats if not _is_missing(c)], dtype=np.float64)
    return float(np.max(nums) + 1.5) if nums.size else 1.5


def mapping(est: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per input column: (categories, [categories, width] output rows, [width] unknown row), from scikit-learn."""
    import pandas as pd

    cats = [np.asarray(c, dtype=object) for c in est.categories_]
    base = [c[0] for c in cats]
    names = list(getattr(est, "feature_names_in_", range(len(cats))))
    blocks = []
    start = 0
    unknown_ok = est.handle_unknown != "error"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j, c in enumerate(cats):
            probes = [[*base[:j], v, *base[j + 1:]] for v in c]
            if unknown_ok:
                probes.append([*base[:j], _unseen(c), *base[j + 1:]])
            frame = pd.DataFrame(probes, columns=names, dtype=object) if hasattr(est, "feature_names_in_") \
                else np.asarray(probes, dtype=object)
            out = est.transform(frame)
            out = np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
            width = int(est._n_features_outs[j]) if hasattr(est, "_n_features_outs") else None
            if width is None:
                raise UseSkl2onnx
            block = out[:, start:start + width]
            start += width
            rows = block[:len(c)]
            unk = block[len(c)] if unknown_ok else np.zeros(width)
            blocks.append((c, rows, unk))
    return blocks


def portable_handles(est: Any) -> bool:
    """skl2onnx's node has no infrequent column, and refuses unknown values under "infrequent_if_exist" even when
    no category is infrequent (scikit-learn then gives zeros, as with "ignore"): those encoders are portable's;
    the others stay skl2onnx's `OneHotEncoder` node (which other readers of the graph, such as certification,
    understand), computed in float32. Encoders with a missing-value category are portable's too."""
    if bool(getattr(est, "_infrequent_enabled", False)) or est.handle_unknown == "infrequent_if_exist":
        return True
    # OneHotEncoder(dtype=np.int32/np.int64): skl2onnx's node then gives int64 columns, which the ColumnTransformer
    # concatenates with float ones (the graph failed onnx.checker); portable's encoder gives floats, the values
    # scikit-learn's integer columns become in the next step
    dtype = np.dtype(getattr(est, "dtype", np.float64))
    if dtype.kind in "iu" and dtype.itemsize >= 4:
        return True
    # a fitted missing-value category (a column with None/NaN in training): skl2onnx's node never matches it, so a
    # missing value was encoded as an unknown one (zeros) where scikit-learn sets the missing category's column
    return any(_is_missing(c) for cats in est.categories_ for c in np.asarray(cats, dtype=object))


@sklearn_converter("sklearn.preprocessing.OneHotEncoder", kind="transformer", replaces=True,
                   note="infrequent categories (min_frequency, max_categories) computed by portable")
def one_hot_encoder(em: Emitter, est: Any) -> list[Any]:
    if not portable_handles(est):
        raise UseSkl2onnx
    from onnx import TensorProto

    float_type = TensorProto.DOUBLE if em.double else TensorProto.FLOAT
    columns = []  # (input name, its kind, column in it), one per encoded feature: inputs may mix strings and ints
    for inp in em.operator.inputs:
        kind = type(inp.type).__name__
        name = inp.full_name
        if kind not in ("StringTensorType", "Int64TensorType", "DoubleTensorType", "FloatTensorType"):
            name = em.node("Cast", [name], "xcast", to=float_type)
            kind = "DoubleTensorType" if em.double else "FloatTensorType"
        width = inp.type.shape[1] if len(inp.type.shape) > 1 and isinstance(inp.type.shape[1], int) else 1
        columns.extend((name, kind, k) for k in range(width))
    blocks = mapping(est)
    if len(columns) != len(blocks):
        raise UseSkl2onnx
    outs = []
    for (x, kind, k), (cats, rows, unk) in zip(columns, blocks):
        strings, ints = kind == "StringTensorType", kind == "Int64TensorType"
        col = em.node("Gather", [x, em.const([k], dtype=np.int64)], "col", axis=1)  # [N, 1]
        missing = np.array([_is_missing(c) for c in cats])
        if strings:
            # a missing string is "" (portable.formats.sklearn.MISSING_STRING); a NaN/None category matches it
            keys = np.array(["" if m else str(c) for c, m in zip(cats, missing)])
            hit = em.node("Equal", [col, em.const(keys[None, :])], "hit")
        elif ints:
            keys = np.array([0 if m else int(c) for c, m in zip(cats, missing)], dtype=np.int64)
            hit = em.node("And", [em.node("Equal", [col, em.const(keys[None, :], dtype=np.int64)], "eq"),
                                  em.const(~missing[None, :], dtype=bool)], "hit")
        else:
            keys = np.array([0.0 if m else float(c) for c, m in zip(cats, missing)])
            fdt = np.float64 if kind == "DoubleTensorType" else np.float32
            hit = em.node("And", [em.node("Equal", [col, em.const(keys[None, :], dtype=fdt)], "eq"),
                                  em.const(~missing[None, :], dtype=bool)], "hitk")
            if missing.any():
                hit = em.node("Or", [hit, em.node("And", [em.node("IsNaN", [col], "nan"),
                                                          em.const(missing[None, :], dtype=bool)], "nanhit")],
                              "hit")
        hitf = em.node("Cast", [hit], "hitf", to=float_type)  # [N, C]
        block = em.node("MatMul", [hitf, em.const(rows)], "block")  # [N, W]
        if unk.any():
            found = em.reduce("ReduceMax", hitf, 1, keepdims=1)
            block = em.node("Add", [block, em.node("Mul", [em.node("Sub", [em.const(1.0), found], "notfound"),
                                                           em.const(unk[None, :])], "unk")], "blocku")
        outs.append(block)
    return [em.node("Concat", outs, "onehot", axis=1) if len(outs) > 1 else outs[0]]
