"""`sklearn -> onnx` through skl2onnx, with DESIGN §4's output names and no ZipMap.

skl2onnx does the conversion; portable chooses the input types from the model's signature, turns ZipMap off on
every classifier that has it, renames the outputs to `label` / `probabilities` / `scores` / `variable`, makes
`scores` the shape of scikit-learn's `decision_function` (skl2onnx 1.20 gives `[N, 2]` for some binary
classifiers), records provenance, and validates the result with `onnx.checker`.
"""
from __future__ import annotations

from typing import Any

from ...errors import ConversionError, UnsupportedModelError
from ...formats.onnx import OnnxModel, check_proto, set_provenance
from ...formats.sklearn import SklearnModel, walk
from ...registry import ConvertOptions, converter, require


DEFAULT_OPSET = 21


def _initial_types(model: SklearnModel, dtype: str) -> list[tuple[str, Any]]:
    types = require("skl2onnx.common.data_types", purpose="scikit-learn to ONNX")
    num = types.DoubleTensorType if dtype == "float64" else types.FloatTensorType
    out = []
    for spec in model.signature.inputs:
        t = types.StringTensorType if spec.is_string else num
        out.append((spec.name, t([None, *spec.shape[1:]])))
    return out


def _options(est: Any) -> dict[int, dict[str, Any]]:
    """`zipmap=False` for every nested estimator whose skl2onnx converter knows the option."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter

    from sklearn.base import is_classifier

    opts: dict[int, dict[str, Any]] = {}
    for e in walk(est):
        if not is_classifier(e):
            continue
        alias = sklearn_operator_name_map.get(type(e))
        if alias is None:
            continue
        try:
            allowed = get_converter(alias).get_allowed_options() or {}
        except Exception:
            continue
        if "zipmap" in allowed:
            opts[id(e)] = {"zipmap": False}
    return opts


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename a tensor everywhere in `graph`, including subgraphs that may read it from the outer scope."""
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename(sub, old, new)
    for coll in (graph.output, graph.input, graph.value_info, graph.initializer):
        for item in coll:
            if item.name == old:
                item.name = new


def _flatten_rank1(proto: Any, model: SklearnModel) -> None:
    """Outputs that scikit-learn returns as `[N]` but skl2onnx as `[N, 1]` (IsolationForest's and
    GaussianMixture's labels) get a final Reshape to `[N]`."""
    onnx = require("onnx")
    h = onnx.helper
    specs = {s.name: s for s in model.signature.outputs}
    for out in proto.graph.output:
        spec = specs.get(out.name)
        dims = out.type.tensor_type.shape.dim
        if spec is None or len(spec.shape) != 1 or len(dims) != 2:
            continue
        if dims[1].HasField("dim_value") and dims[1].dim_value != 1:
            continue
        inner = f"{out.name}__2d"
        _rename(proto.graph, out.name, inner)
        out.name = spec.name
        proto.graph.initializer.append(h.make_tensor(f"{spec.name}__shape", onnx.TensorProto.INT64, [1], [-1]))
        proto.graph.node.append(h.make_node("Reshape", [inner, f"{spec.name}__shape"], [spec.name],
                                            name=f"portable_flatten_{spec.name}"))
        del dims[1]


def _normalize_outputs(proto: Any, model: SklearnModel) -> None:
    """Give the ONNX graph exactly the sklearn model's output names, and `scores` its width."""
    onnx = require("onnx")
    g = proto.graph
    wanted = model.signature.output_names
    have = [o.name for o in g.output]
    if len(have) > len(wanted) and wanted == ["label"]:
        # a hard-voting classifier has no probabilities in scikit-learn; skl2onnx still emits them
        del g.output[1:]
        have = have[:1]
    if len(have) != len(wanted):
        raise ConversionError(f"skl2onnx produced outputs {have}; portable expected {wanted}")
    # inner tensors that carry an output's name were renamed by sklearn_extra.finalize (it runs first)
    for old, new in zip(have, wanted):
        if old != new:
            _rename(g, old, f"{new}__tmp")
    for o in g.output:
        if o.name.endswith("__tmp"):
            _rename(g, o.name, o.name[:-5])
    _flatten_rank1(proto, model)
    spec = {s.name: s for s in model.signature.outputs}.get("scores")
    if spec is None or spec.shape[1] != 1:
        return
    out = next(o for o in g.output if o.name == "scores")
    dims = out.type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value == 2:
        # binary decision functions come as two columns, [-d, d] for most converters but [d, -d] for SVC:
        # keep the column that equals scikit-learn's decision_function on probe rows
        column = _decision_column(proto, model)
        _rename(g, "scores", "scores__pair")
        out.name = "scores"
        h = onnx.helper
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        if opset < 10:  # Slice took attributes until opset 10
            g.node.append(h.make_node("Slice", ["scores__pair"], ["scores"], name="portable_binary_scores",
                                      starts=[column], ends=[column + 1], axes=[1]))
        else:
            g.initializer.extend([
                h.make_tensor("scores__start", onnx.TensorProto.INT64, [1], [column]),
                h.make_tensor("scores__end", onnx.TensorProto.INT64, [1], [column + 1]),
                h.make_tensor("scores__axis", onnx.TensorProto.INT64, [1], [1]),
            ])
            g.node.append(h.make_node("Slice", ["scores__pair", "scores__start", "scores__end", "scores__axis"],
                                      ["scores"], name="portable_binary_scores"))
        dims[1].dim_value = 1


def _decision_column(proto: Any, model: SklearnModel) -> int:
    """Which of two score columns skl2onnx's graph uses for scikit-learn's binary decision_function."""
    import numpy as np

    specs = model.signature.inputs
    if len(specs) != 1 or specs[0].is_string or specs[0].shape[1] is None:
        return 1
    ort = require("onnxruntime")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, specs[0].shape[1]))
    means = getattr(model.estimator, "support_vectors_", None)
    if means is not None and len(means):
        x = means[rng.integers(0, len(means), 16)] + x * np.std(means, axis=0)
    ref = np.asarray(model.estimator.decision_function(x), dtype=np.float64).reshape(-1)
    elem = proto.graph.input[0].type.tensor_type.elem_type
    xt = x.astype(np.float64 if elem == 11 else np.float32)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    scores = np.asarray(sess.run(["scores"], {specs[0].name: xt})[0], dtype=np.float64)
    errs = [float(np.max(np.abs(scores[:, c] - ref))) for c in (0, 1)]
    return int(np.argmin(errs))


@converter("sklearn", "onnx", requires=("skl2onnx", "onnx", "onnxruntime"))
def sklearn_to_onnx(model: SklearnModel, options: ConvertOptions) -> OnnxModel:
    """scikit-learn estimator or pipeline -> ONNX, through skl2onnx."""
    skl2onnx = require("skl2onnx", purpose="scikit-learn to ONNX")
    from .extra import finalize, register_all

    register_all()  # portable's tree converters, and converters for estimators skl2onnx lacks
    est = model.estimator
    # target_opset is an upper bound: skl2onnx 1.20 still picks the lowest opset its nodes need
    kwargs: dict[str, Any] = {"target_opset": options.target_opset or DEFAULT_OPSET}
    try:
        proto = skl2onnx.convert_sklearn(est, initial_types=_initial_types(model, options.dtype),
                                         options=_options(est), **kwargs)
    except RuntimeError as exc:
        msg = str(exc).strip().splitlines()[0].rstrip(".")
        if "Unable to find a shape calculator" in msg or "No proper shape calculator" in msg or \
                "Unable to find" in msg:
            raise UnsupportedModelError(
                f"skl2onnx {skl2onnx.__version__} has no converter for a part of this model: {msg}") from None
        raise ConversionError(f"skl2onnx {skl2onnx.__version__} failed on {type(est).__name__} "
                              f"({options.dtype}): {msg}{_dtype_hint(options)}") from None
    except (UnsupportedModelError, ConversionError):
        raise
    except Exception as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        raise ConversionError(f"skl2onnx {skl2onnx.__version__} failed on {type(est).__name__} "
                              f"({options.dtype}): {type(exc).__name__}: {msg}{_dtype_hint(options)}") from None
    finalize(proto)  # ai.onnx.ml opset 5 where portable wrote TreeEnsemble
    _normalize_outputs(proto, model)
    proto.graph.name = type(est).__name__
    out = OnnxModel(proto, origin=model.origin)
    set_provenance(out, dtype=options.dtype)
    out.dtype = options.dtype
    try:
        check_proto(proto, produced=True)
    except ConversionError as exc:
        raise ConversionError(exc.message + _dtype_hint(options)) from None
    if options.dtype == "float64":
        # onnx.checker misses type errors that onnxruntime refuses in skl2onnx's float64 graphs (SVMs and
        # others); float32 graphs are what onnxruntime and skl2onnx are built and tested for. A session costs
        # memory (about 85 MB for a 300-tree forest), so it is only made where it catches something.
        _smoke_load(out)
    if options.dtype == "float64":
        narrow = [s.name for s in out.signature.outputs if s.dtype == "float32"]
        if narrow:
            out.notes.append(f"skl2onnx {skl2onnx.__version__} computes {', '.join(narrow)} of "
                             f"{type(est).__name__} in float32 even with float64 inputs")
    out.notes.extend(model.notes)
    return out


def _dtype_hint(options: ConvertOptions) -> str:
    return ". float64 is not supported for every estimator; try --dtype float32" if options.dtype == "float64" \
        else ""


def _smoke_load(model: OnnxModel) -> None:
    """onnx.checker misses type errors onnxruntime refuses (skl2onnx's float64 trees): create a session."""
    ort = require("onnxruntime")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        model._session = ort.InferenceSession(model.proto.SerializeToString(), opts,
                                              providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConversionError(f"onnxruntime cannot load what skl2onnx produced for {model.name} "
                              f"({model.dtype}): {first}"
                              + (". float64 is not supported for every estimator; try --dtype float32"
                                 if model.dtype == "float64" else "")) from None
