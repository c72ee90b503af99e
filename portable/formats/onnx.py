"""The `onnx` format: an ONNX model, run by onnxruntime or by `onnx.reference.ReferenceEvaluator`.

Saving writes atomically with the provenance of DESIGN §7 in `metadata_props`; every model is validated by
`onnx.checker` when it is loaded and before it is saved.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, sha256_file
from ..errors import CannotRunError, ConversionError, InputError, PortableError, control_characters
from ..model import Model, Origin, Signature, TensorSpec
from ..registry import LoadOptions, register_format, require

RUNTIMES = ("onnxruntime", "reference")
#: the largest message protobuf parses (2 GiB - 1): an .onnx file beyond it cannot be a model
PROTOBUF_MAX = (2 << 30) - 1


def _kind(name: str) -> str:
    return {"label": "label", "probabilities": "probability", "scores": "score"}.get(name, "value")


def _spec(value_info: Any, onnx: Any, output: bool, path: Any = None) -> TensorSpec:
    shown = control_characters(value_info.name)
    if shown is not None:  # "Y\n\nFAKE: EQUIVALENT", ANSI escapes: a name that would print as something else
        raise InputError(f"the {'output' if output else 'input'} name '{shown}' holds control characters "
                         "(newlines, escape sequences), which portable refuses in a model's input and output names",
                         path=path, where=f"graph.{'output' if output else 'input'}")
    t = value_info.type
    if not t.HasField("tensor_type"):
        raise InputError(f"the {'output' if output else 'input'} '{value_info.name}' is not a tensor "
                         f"({t.WhichOneof('value')}); portable runs tensor inputs and outputs only (sequences of "
                         "maps such as ZipMap are not supported)", path=path)
    elem = t.tensor_type.elem_type
    dtype = "str" if elem == onnx.TensorProto.STRING else np.dtype(
        onnx.helper.tensor_dtype_to_np_dtype(elem)).name
    shape: tuple[int | None, ...] = ()
    if t.tensor_type.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim)
        if shape:
            shape = (None,) + shape[1:]
    return TensorSpec(value_info.name, dtype, shape, _kind(value_info.name) if output else "")


def check_proto(proto: Any, *, path: Any = None, produced: bool = False) -> None:
    """Run `onnx.checker` (full check with shape inference); a failure is an InputError or ConversionError."""
    onnx = require("onnx", purpose="ONNX")
    check_expansion(proto, path=path)
    from .onnx_tree_check import check_trees

    check_trees(proto, path=path, produced=produced)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx raises ValidationError, InferenceError, …
        err = ConversionError if produced else InputError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        what = "the ONNX model the conversion produced" if produced else "the ONNX model"
        raise err(f"{what} fails onnx.checker: {first}", path=path) from None


class OnnxModel(Model):
    """An ONNX model held as a ModelProto; run by onnxruntime (default) or onnx's reference evaluator."""

    format = "onnx"

    def __init__(self, proto: Any, *, origin: Origin | None = None, path: str | None = None,
                 runtime: str = "onnxruntime") -> None:
        super().__init__(origin=origin)
        if runtime not in RUNTIMES:
            raise PortableError(f"unknown ONNX runtime '{runtime}'; choose one of {', '.join(RUNTIMES)}")
        self._later: dict[str, Any] = {}  # metadata entries written into the proto when it is next read
        self.proto = proto
        self.path = path
        self.runtime = runtime
        self._session: Any = None
        self._unloadable: str | None = None  # why onnxruntime cannot make a session of it, once it has tried
        self._signature: Signature | None = None

    @property
    def signature(self) -> Signature:
        if self._signature is None:
            onnx = require("onnx", purpose="ONNX")
            init = {i.name for i in self.proto.graph.initializer}
            ins = tuple(_spec(v, onnx, False, self.path) for v in self.proto.graph.input if v.name not in init)
            outs = tuple(_spec(v, onnx, True, self.path) for v in self.proto.graph.output)
            self._signature = Signature(ins, outs)
        return self._signature

    @property
    def proto(self) -> Any:
        """The ModelProto, with the metadata given to `set_metadata_later` written into it."""
        later = self.__dict__.get("_later")
        if later:
            self._later = {}
            for key, make in later.items():
                self.set_metadata(key, make())
        return self._proto

    @proto.setter
    def proto(self, value: Any) -> None:
        self._proto = value

    @property
    def metadata(self) -> dict[str, str]:
        return {p.key: p.value for p in self.proto.metadata_props}

    def set_metadata_later(self, key: str, make: Any) -> None:
        """`set_metadata(key, make())`, made only when the proto is next read (to run a new session, save,
        inspect, or by the caller): the checker records its whole report in every in-memory artifact it
        checks, and writing that JSON costs more than checking a small model does."""
        self.__dict__.setdefault("_later", {})[key] = make

    def set_metadata(self, key: str, value: str) -> None:
        self.__dict__.get("_later", {}).pop(key, None)
        key, value = _utf8(key), _utf8(value)  # protobuf strings are UTF-8; a file name need not be
        for p in self.proto.metadata_props:
            if p.key == key:
                p.value = value
                return
        entry = self.proto.metadata_props.add()
        entry.key, entry.value = key, value

    def with_runtime(self, runtime: str) -> "OnnxModel":
        m = OnnxModel(self.proto, origin=self.origin, path=self.path, runtime=runtime)
        m.report, m.notes, m.route, m.dtype = self.report, list(self.notes), list(self.route), self.dtype
        return m

    # -- running ---------------------------------------------------------------------------------------------
    def _feeds(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        for spec in self.signature.inputs:
            x = np.asarray(inputs[spec.name])
            if len(spec.shape) == 2 and x.ndim == 1 and spec.shape[1] == 1:
                x = x.reshape(-1, 1)
            x = _missing_as_empty(x.astype(object)) if spec.is_string else x.astype(spec.dtype, copy=False)
            feeds[spec.name] = x
        return feeds

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            feeds = self._feeds(inputs)
        except (TypeError, ValueError) as exc:  # text for a numeric input, objects: numpy's cast refuses them
            from ..errors import cannot_run

            raise cannot_run(self, inputs, exc) from None
        names = self.signature.output_names
        try:
            if self.runtime == "reference":
                if self._session is None:
                    ref = require("onnx.reference", purpose="the ONNX reference runtime")
                    self._session = ref.ReferenceEvaluator(self.proto)
                results = self._session.run(names, feeds)
            else:
                if self._unloadable:
                    raise CannotRunError(self._unloadable, path=self.path)
                if self._session is None:
                    ort = require("onnxruntime", purpose="running ONNX models")
                    opts = ort.SessionOptions()
                    opts.log_severity_level = 4  # its errors reach the user once, as the PortableError below
                    # no spinning: onnxruntime's worker threads otherwise busy-wait after every run, taking a
                    # core (or its hyperthread sibling) from whatever the caller runs next -- in a check, the
                    # original model and the comparison, which ran ~1.8x slower in CPU time next to them
                    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    try:
                        self._session = ort.InferenceSession(self.proto.SerializeToString(), opts,
                                                             providers=["CPUExecutionProvider"])
                    except Exception as exc:  # no row can run: said once, not taken for rows the model rejects
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        self._unloadable = f"{self.runtime} cannot load the ONNX model: {first}"
                        raise CannotRunError(self._unloadable, path=self.path) from None
                if self._control_flow():  # (a later run than the one that made the session has no `ort` yet)
                    results = self._bounded_run(names, feeds, require("onnxruntime", purpose="running ONNX models"))
                else:
                    results = self._session.run(names, feeds)
        except PortableError:
            raise
        except Exception as exc:
            if isinstance(exc, MemoryError) or "Failed to allocate memory" in str(exc):
                # the graph asks for more than the process may have (an Expand or a Tile to billions of values):
                # a limit of this machine, not a property of these rows
                from ..limits import LimitError

                raise LimitError(f"{self.runtime} could not allocate the memory the ONNX graph asks for on "
                                 f"{_rows(feeds)} row(s)", "max_process_bytes", path=self.path) from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PortableError(f"{self.runtime} could not run the ONNX model: {first}",
                                path=self.path) from None
        out = {}
        for n, r in zip(names, results):
            r = np.asarray(r)
            out[n] = r.astype(str) if r.dtype == object else r
        return out

    def _control_flow(self) -> bool:
        """Whether the graph (its subgraphs and local functions included) has a Loop or Scan: the only nodes
        whose running time the inputs' sizes do not bound (a Loop's trip count is data)."""
        found = self.__dict__.get("_loops")
        if found is None:
            found = self.__dict__["_loops"] = _has_loops(self.proto)
        return found

    def _bounded_run(self, names: list[str], feeds: dict[str, np.ndarray], ort: Any) -> Any:
        """`session.run` stopped by onnxruntime's terminate flag after `max_onnx_loop_ms` (a graph whose Loop
        never ends would otherwise hold the process in C code, where even SIGTERM waits for it)."""
        import threading

        from ..limits import LIMITS, LimitError

        options = ort.RunOptions()
        options.log_severity_level = 4  # the stop is reported as a LimitError, not as onnxruntime's error log
        timer = threading.Timer(LIMITS.max_onnx_loop_ms / 1000.0, setattr, (options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            return self._session.run(names, feeds, options)
        except Exception:
            if options.terminate:
                raise LimitError(f"the ONNX graph's Loop/Scan ran longer than {LIMITS.max_onnx_loop_ms:,} ms and "
                                 "onnxruntime was stopped", "max_onnx_loop_ms", path=self.path) from None
            raise
        finally:
            timer.cancel()

    def input_hints(self) -> Any:
        """Tree thresholds, encoder categories, input widths, scaler offsets, kinks and a fixed batch size, read
        from the graph's initializers and attributes (`portable.formats.onnx_hints`); learned once per model."""
        hints = self.__dict__.get("_hints")
        if hints is None:
            from .onnx_hints import onnx_hints

            hints = self.__dict__["_hints"] = onnx_hints(self)
        return hints

    # -- saving and inspecting -----------------------------------------------------------------------------
    def save(self, path: str | Path, *, force: bool = False) -> Path:
        from .._io import check_writable

        check_writable(path, force, protect=(self.origin.path,), kind="file")  # before serialising anything
        check_proto(self.proto, path=path, produced=True)
        p = atomic_write_bytes(path, self.proto.SerializeToString(), force=force, protect=(self.origin.path,))
        self.path = str(p)
        return p

    def info(self) -> dict[str, Any]:
        g = self.proto.graph
        ops: dict[str, int] = {}
        for node in g.node:
            key = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
            ops[key] = ops.get(key, 0) + 1
        from ..profile import summarize_metadata

        meta = summarize_metadata(self.metadata)
        if "portable.check" in meta:
            from ..limits import load_json

            try:  # within the limits: metadata nested 100,000 deep was a RecursionError ("please report it")
                meta["portable.check"] = load_json(meta["portable.check"], what="the portable.check metadata")
            except (ValueError, PortableError):
                pass  # shown as the text it is
        return {
            "ir_version": self.proto.ir_version,
            "opsets": {(o.domain or "ai.onnx"): o.version for o in self.proto.opset_import},
            "producer": f"{self.proto.producer_name} {self.proto.producer_version}".strip(),
            "nodes": len(g.node),
            "operators": dict(sorted(ops.items())),
            "metadata": meta,
            "size_bytes": self.proto.ByteSize(),
        }


def _rows(feeds: dict[str, Any]) -> str:
    sizes = {len(v) for v in feeds.values() if getattr(v, "ndim", 0)}
    return f"{sizes.pop():,}" if len(sizes) == 1 else "the given"


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType"


_MISSING = np.frompyfunc(_is_missing, 1, 1)


def _missing_as_empty(x: np.ndarray) -> np.ndarray:
    """A string input's missing values (None, NaN, pandas.NA, as a DataFrame's object column holds them) written
    as "", the missing string of portable's artifacts (`formats.sklearn.MISSING_STRING`): onnxruntime would
    otherwise read NaN as the text "nan", an unknown category, and give another answer than scikit-learn."""
    if x.size == 0:
        return x
    try:  # elementwise in numpy's loop: NaN != NaN, None == None (ten times faster than a Python test per value)
        mask = np.not_equal(x, x) | np.equal(x, None)
    except TypeError:  # pandas.NA answers comparisons with NA, whose truth is ambiguous
        mask = _MISSING(x).astype(bool)
    if mask.any():
        x = x.copy()
        x[mask] = ""
    return x


def _utf8(text: str) -> str:
    """`text` as protobuf can store it (UTF-8): a file name that is not UTF-8, which Python holds with lone
    surrogates (b'\\xff' as '\\udcff'), is written with those bytes escaped ('\\xff'), not refused by a
    UnicodeEncodeError after the whole conversion ran."""
    for errors in ("strict", "surrogateescape"):
        try:
            return text.encode("utf-8", errors).decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            continue
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def set_provenance(model: OnnxModel, *, dtype: str, extra: dict[str, str] | None = None) -> None:
    """Record DESIGN §7's provenance keys from the model's origin."""
    from .. import __version__

    o = model.origin
    entries = {"portable.version": __version__, "portable.source.format": o.format,
               "portable.source.name": o.name, "portable.dtype": dtype}
    if o.sha256:
        entries["portable.source.sha256"] = o.sha256
    if o.library:
        entries["portable.source.library"] = o.library
    entries.update(extra or {})
    for k, v in entries.items():
        model.set_metadata(k, v)


@register_format("onnx", extensions=(".onnx",), target=True, priority=30,
                 description="an ONNX model (.onnx or onnx.ModelProto), run by onnxruntime")
class OnnxFormat:
    """An ONNX model (.onnx or onnx.ModelProto), run by onnxruntime."""

    @staticmethod
    def sniff(source: Any) -> bool:
        if isinstance(source, (str, Path)):
            return Path(source).suffix.lower() == ".onnx" and Path(source).is_file()
        return type(source).__name__ == "ModelProto" and hasattr(source, "graph")

    @staticmethod
    def load(source: Any, options: LoadOptions) -> OnnxModel:
        onnx = require("onnx", purpose="ONNX")
        if not isinstance(source, (str, Path)):
            check_proto(source)
            proto, notes = unzip_outputs(source)
            model = OnnxModel(proto, origin=Origin("onnx", name=source.graph.name), runtime=options.runtime)
            model.notes.extend(notes)
            return model
        path = Path(source)
        size = path.stat().st_size
        if size == 0:
            raise InputError("empty file (0 bytes): not an ONNX model", path=path)
        if size > PROTOBUF_MAX:  # refused before reading gigabytes that protobuf cannot parse
            raise InputError(f"the file is {size:,} bytes; an ONNX file holds at most {PROTOBUF_MAX:,} (protobuf's "
                             "limit: larger models keep their tensors in external data files), so it is not a "
                             "readable ONNX model", path=path)
        try:
            proto = onnx.load_model(str(path), load_external_data=False)
            if _external_tensors(proto):  # sizes checked before onnx reads a byte of them
                check_external_data(proto, path)
                onnx.load_external_data_for_model(proto, str(path.parent))
        except PortableError:
            raise
        except Exception as exc:
            raise InputError(f"not a readable ONNX model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})", path=path) from None
        check_proto(proto, path=path)
        origin = Origin("onnx", name=path.name, path=str(path), sha256=sha256_file(path))
        proto, notes = unzip_outputs(proto)
        model = OnnxModel(proto, origin=origin, path=str(path), runtime=options.runtime)
        model.notes.extend(notes)
        return model


def unzip_outputs(proto: Any) -> tuple[Any, list[str]]:
    """The model with each graph output made by a `ZipMap` (skl2onnx's default for classifiers' probabilities: a
    sequence of {class: probability} maps) given as the tensor the ZipMap reads, `[N, C]`, its columns in the
    ZipMap's `classlabels` order; the ZipMap becomes an Identity. A copy when anything changes (the caller's
    proto is left alone), with a note per output; the file itself is never changed."""
    onnx = require("onnx", purpose="ONNX")
    outputs = {o.name: i for i, o in enumerate(proto.graph.output)}
    zipmaps = [n for n in proto.graph.node if n.op_type == "ZipMap" and n.domain == "ai.onnx.ml"
               and n.output[0] in outputs and not proto.graph.output[outputs[n.output[0]]].type.HasField("tensor_type")]
    if not zipmaps:
        return proto, []
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    types = {v.name: v.type for v in [*copy.graph.value_info, *copy.graph.input, *copy.graph.output]}
    notes = []
    for node in copy.graph.node:
        if not (node.op_type == "ZipMap" and node.domain == "ai.onnx.ml" and node.output[0] in outputs):
            continue
        out = copy.graph.output[outputs[node.output[0]]]
        if out.type.HasField("tensor_type"):
            continue
        labels = next((list(a.ints) or [x.decode() for x in a.strings] for a in node.attribute
                       if a.name in ("classlabels_int64s", "classlabels_strings")), [])
        value = out.type.sequence_type.elem_type.map_type.value_type
        elem = value.tensor_type.elem_type if value.HasField("tensor_type") else onnx.TensorProto.FLOAT
        known = types.get(node.input[0])
        out.type.CopyFrom(known if known is not None and known.HasField("tensor_type") else
                          onnx.helper.make_tensor_type_proto(elem, [None, len(labels) or None]))
        node.op_type, node.domain = "Identity", ""
        del node.attribute[:]
        shown = ", ".join(map(str, labels[:6])) + (", ..." if len(labels) > 6 else "")
        notes.append(f"the output '{out.name}' was a ZipMap (a sequence of {{class: probability}} maps); it is "
                     f"read as the [N, {len(labels)}] tensor the ZipMap reads, its columns in class order ({shown})")
    _rename_skl2onnx_outputs(copy, notes)
    return copy, notes


#: skl2onnx's output names for a classifier with ZipMap, and the names portable gives the same outputs (DESIGN §4)
_SKL2ONNX_NAMES = {"output_label": "label", "output_probability": "probabilities"}


def with_output_names(model: OnnxModel, mapping: dict[str, str], note: str) -> OnnxModel:
    """A copy of `model` whose graph outputs are renamed by `mapping` (inner tensors of the new names moved aside);
    `model` itself when a new name is a graph input."""
    onnx = require("onnx", purpose="ONNX")
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    notes: list[str] = []
    if not _rename_outputs(proto, mapping, notes, note):
        return model
    out = OnnxModel(proto, origin=model.origin, path=model.path, runtime=model.runtime)
    out.report, out.notes, out.route, out.dtype = model.report, list(model.notes) + notes, list(model.route), \
        model.dtype
    return out


def _rename_skl2onnx_outputs(proto: Any, notes: list[str]) -> None:
    """skl2onnx names a classifier's outputs `output_label` and `output_probability` when it adds a ZipMap (and
    `label`, `probabilities` without): once the ZipMap is gone they are given the names without, so that the
    model checks against its scikit-learn original. Nothing is renamed if a new name is a graph input."""
    if sorted(o.name for o in proto.graph.output) == sorted(_SKL2ONNX_NAMES):
        _rename_outputs(proto, _SKL2ONNX_NAMES, notes, "skl2onnx's output names output_label and "
                        "output_probability are read as label and probabilities")


def _rename_outputs(proto: Any, names: dict[str, str], notes: list[str], note: str) -> bool:
    """Rename graph outputs by `names` in place (an inner tensor already called by a new name is moved aside);
    False (nothing changed) when a new name is a graph input."""
    if {i.name for i in proto.graph.input} & set(names.values()):
        return False
    taken = {v for n in proto.graph.node for v in [*n.input, *n.output]} | {i.name for i in proto.graph.initializer}
    mapping = dict(names)
    for new in names.values():  # an inner tensor of that name (skl2onnx's own 'probabilities') moves
        if new in taken and new not in names:
            k = 0
            while f"{new}_{k}" in taken:
                k += 1
            mapping[new] = f"{new}_{k}"
    for init in proto.graph.initializer:
        init.name = mapping.get(init.name, init.name)
    for o in [*proto.graph.output, *proto.graph.value_info]:
        o.name = mapping.get(o.name, o.name)
    for n in proto.graph.node:
        for i, v in enumerate(n.output):
            n.output[i] = mapping.get(v, v)
        for i, v in enumerate(n.input):
            n.input[i] = mapping.get(v, v)
    notes.append(note)
    return True


def _external_tensors(proto: Any) -> list[Any]:
    """The tensors of `proto` (initializers and attribute tensors of every graph) whose bytes live in a file."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(proto) if uses_external_data(t)]


def check_external_data(proto: Any, path: Path) -> None:
    """The bytes onnx would read for the model's external-data tensors, refused above `max_tensor_bytes` for one
    tensor or `max_archive_bytes` in all before anything reads them: a 200-byte model could name a sparse file of
    terabytes (or one region many times), which `onnx.load` read whole. A tensor without a `length` reads its file
    from `offset` to the end. Where the entries are malformed or name no readable file, onnx's own checks say so."""
    from ..limits import LIMITS, LimitError, check_size

    total = 0
    for tensor in _external_tensors(proto):
        info = {e.key: e.value for e in tensor.external_data}
        try:
            offset = int(info.get("offset") or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            continue
        if length is None:
            try:
                length = max(os.stat(path.parent / info.get("location", "")).st_size - offset, 0)
            except (OSError, ValueError):
                continue
        check_size(length, "max_tensor_bytes", f"the external data of tensor '{tensor.name}' "
                   f"({info.get('location', '')!r}) in bytes", path=path)
        total += length
        if total > LIMITS.max_archive_bytes:
            raise LimitError(f"the model's external-data tensors add up to {total:,} bytes or more",
                             "max_archive_bytes", path=path)


def _has_loops(proto: Any) -> bool:
    """A Loop or Scan anywhere in the model: the main graph, any subgraph attribute, any local function."""
    graphs = [proto.graph]
    nodes: list[Any] = [n for f in proto.functions for n in f.node]
    while graphs or nodes:
        if graphs:
            nodes.extend(graphs.pop().node)
            continue
        node = nodes.pop()
        if node.op_type in ("Loop", "Scan"):
            return True
        for a in node.attribute:
            if a.HasField("g"):
                graphs.append(a.g)
            graphs.extend(a.graphs)
    return False


def _flat_nodes(nodes: Any) -> list[Any]:
    """The nodes of a graph or function with those of every subgraph attribute (If, Loop, Scan...), at any depth,
    without recursion."""
    out: list[Any] = []
    todo = list(nodes)
    while todo:
        node = todo.pop()
        out.append(node)
        for a in node.attribute:
            if a.HasField("g"):
                todo.extend(a.g.node)
            for g in a.graphs:
                todo.extend(g.node)
    return out


def check_expansion(proto: Any, path: Any = None) -> None:
    """Refuse a model whose nodes, once its model-local functions are inlined, exceed `max_onnx_nodes`, before
    onnx.checker or onnxruntime expands them: 30 functions each calling the previous twice are 2**30 nodes in a
    2 KB file (onnx.checker ran for ever on it). Counted per function once (memoized, no recursion); a function
    that calls itself is left to onnx.checker, which names the cycle."""
    from ..limits import LIMITS, LimitError

    cap = LIMITS.max_onnx_nodes
    funcs = {(f.domain, f.name, getattr(f, "overload", "")): f for f in proto.functions}

    def callee(node: Any) -> Any:
        return (node.domain, node.op_type, getattr(node, "overload", ""))

    cost: dict[Any, int] = {}
    if funcs:
        flat = {k: _flat_nodes(f.node) for k, f in funcs.items()}
        for root in funcs:
            stack, on_stack = [root], {root}
            while stack:
                key = stack[-1]
                if key in cost:
                    stack.pop()
                    on_stack.discard(key)
                    continue
                pending = [callee(n) for n in flat[key] if callee(n) in funcs and callee(n) not in cost
                           and callee(n) not in on_stack]
                if pending:
                    stack.extend(pending)
                    on_stack.update(pending)
                    continue
                total = 0
                for n in flat[key]:
                    total = min(cap + 1, total + cost.get(callee(n), 1))  # a cycle counts 1: the checker names it
                cost[key] = total
                stack.pop()
                on_stack.discard(key)
    total = 0
    for n in _flat_nodes(proto.graph.node):
        total += cost.get(callee(n), 1)
        if total > cap:
            what = " once its model-local functions are inlined" if funcs else ""
            raise LimitError(f"the ONNX model amounts to more than {cap:,} nodes{what}", "max_onnx_nodes",
                             path=path)
