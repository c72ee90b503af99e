"""`sklearn -> onnx`: all of portable's scikit-learn-to-ONNX code, in one package.

- `registry.py`: the one registry of portable's converters and its decorator `@sklearn_converter(...)`, read by
  `portable.coverage`;
- one module per estimator family (`linear`, `svm`, `neighbors`, `trees`, `boosting`, `naive_bayes`, `impute`,
  `preprocessing`, `text`, `functions`, `decomposition`, `kernels`, `manifold`, `cluster`, `ensemble`,
  `gaussian_process`, `meta`, `simple`), with shared pieces in `common.py` and `emit.py`;
- `bridge.py`: the only importer of skl2onnx; it installs portable's converters for one conversion and restores
  skl2onnx's own afterwards;
- `outputs.py`: the graph's outputs named and shaped as `SklearnModel.signature` says.

skl2onnx drives the conversion (pipelines, column transformers, the estimators it converts well); portable
chooses the input types from the model's signature, turns ZipMap off, records provenance, and validates the
result with `onnx.checker` (and onnxruntime, for float64).
"""
from __future__ import annotations

from ...errors import ConversionError, UnsupportedModelError
from ...formats.onnx import OnnxModel, check_proto, set_provenance
from ...formats.sklearn import SklearnModel
from ...registry import ConvertOptions, converter, require
from .outputs import boolean_labels, declared_as_computed, finalize, normalize_inputs, normalize_outputs
from .registry import sklearn_converter  # noqa: F401  (the decorator, for plugins)


DEFAULT_OPSET = 21


@converter("sklearn", "onnx", requires=("skl2onnx", "onnx", "onnxruntime"))
def sklearn_to_onnx(model: SklearnModel, options: ConvertOptions) -> OnnxModel:
    """scikit-learn estimator or pipeline -> ONNX, through skl2onnx."""
    require("skl2onnx", purpose="scikit-learn to ONNX")
    from . import bridge

    skl2onnx_version = bridge.version()
    est = model.estimator
    from .common import WIDE_SUMS, reads_text, widen_linear_heads

    wide = options.dtype == "float32" and reads_text(est)  # linear heads over a vectorizer sum in float64
    token = WIDE_SUMS.set(wide)
    try:
        # target_opset is an upper bound: skl2onnx 1.20 still picks the lowest opset its nodes need
        proto = bridge.convert(model, options.dtype, options.target_opset or DEFAULT_OPSET)
    except RuntimeError as exc:
        msg = str(exc).strip().splitlines()[0].rstrip(".")
        if "Unable to find a shape calculator" in msg or "No proper shape calculator" in msg or \
                "Unable to find" in msg:
            raise UnsupportedModelError(
                f"skl2onnx {skl2onnx_version} has no converter for a part of this model: {msg}") from None
        raise ConversionError(f"skl2onnx {skl2onnx_version} failed on {type(est).__name__} "
                              f"({options.dtype}): {msg}{_dtype_hint(options)}") from None
    except (UnsupportedModelError, ConversionError):
        raise
    except Exception as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        raise ConversionError(f"skl2onnx {skl2onnx_version} failed on {type(est).__name__} "
                              f"({options.dtype}): {type(exc).__name__}: {msg}{_dtype_hint(options)}") from None
    finally:
        WIDE_SUMS.reset(token)
    if wide:
        widen_linear_heads(proto)  # skl2onnx's wide linear heads sum in float64, as portable's (linear_scores)
    finalize(proto)  # ai.onnx.ml opset 5 where portable wrote TreeEnsemble
    normalize_outputs(proto, model)
    normalize_inputs(proto, model)
    declared_as_computed(proto)
    boolean_labels(proto, model)
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
            out.notes.append(f"skl2onnx {skl2onnx_version} computes {', '.join(narrow)} of "
                             f"{type(est).__name__} in float32 even with float64 inputs")
    out.notes.extend(model.notes)
    from .boosting import notes as boosting_notes
    from .text import notes as text_notes

    out.notes.extend(text_notes(est) + boosting_notes(est))
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
