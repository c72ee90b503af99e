"""`NnefModel`: an NNEF artifact in memory (its files) with `portable.json`, run by portable's numpy executor.

`portable.json` holds DESIGN §7's provenance keys, the mapping from the source model's input and output names to
the NNEF graph's tensors, their dtypes and shapes, and for label outputs the class list: NNEF has no strings, so
labels travel as class indices and `run` maps them back, giving the same outputs as the source model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import NNEFError, PortableError
from ...limits import load_json
from ...model import Model, Origin, Signature, TensorSpec

METADATA_FILE = "portable.json"
#: metadata values that are JSON documents: stored as objects in portable.json, not as strings
JSON_KEYS = ("portable.check", "portable.report", "portable.profile")


class NnefModel(Model):
    """An NNEF model (graph.nnef + .dat tensors + portable.json), run by portable's numpy executor."""

    format = "nnef"

    def __init__(self, files: dict[str, bytes], metadata: dict[str, Any], *, origin: Origin | None = None,
                 path: str | None = None) -> None:
        super().__init__(origin=origin)
        self.files = dict(files)
        self.files.pop(METADATA_FILE, None)
        self.meta = dict(metadata)
        self.path = path
        self._executor: Any = None
        self._graph: Any = None

    # -- metadata ----------------------------------------------------------------------------------------
    @staticmethod
    def build_metadata(source: Model, *, dtype: str, nnef_inputs: list[str], nnef_outputs: list[str],
                       labels: dict[str, list[Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """portable.json for an artifact converted from `source` (whose names and dtypes it keeps)."""
        from ... import __version__

        o = source.origin
        meta: dict[str, Any] = {"portable.version": __version__, "portable.source.format": o.format,
                                "portable.source.name": o.name, "portable.dtype": dtype}
        if o.sha256:
            meta["portable.source.sha256"] = o.sha256
        if o.library:
            meta["portable.source.library"] = o.library
        sig = source.signature
        meta["inputs"] = [dict(s.to_dict(), nnef=n) for s, n in zip(sig.inputs, nnef_inputs)]
        outs = []
        for s, n in zip(sig.outputs, nnef_outputs):
            d = dict(s.to_dict(), nnef=n)
            if s.name in labels:
                d["labels"] = labels[s.name]
            outs.append(d)
        meta["outputs"] = outs
        meta.update(extra or {})
        return meta

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.meta)

    def set_metadata(self, key: str, value: str) -> None:
        try:
            self.meta[key] = load_json(value, what=f"the {key} metadata") if key in JSON_KEYS else value
        except (ValueError, PortableError):  # kept as text: malformed, or nested beyond max_depth
            self.meta[key] = value

    def all_files(self) -> dict[str, bytes]:
        """The artifact's files, portable.json included."""
        return {**self.files, METADATA_FILE: json.dumps(self.meta, indent=2, sort_keys=True).encode()}

    # -- signature -----------------------------------------------------------------------------------------
    @property
    def signature(self) -> Signature:
        def spec(d: dict[str, Any]) -> TensorSpec:
            shape = tuple(d.get("shape") or (None,))
            return TensorSpec(d["name"], d["dtype"], shape, d.get("kind", ""))

        return Signature(tuple(spec(d) for d in self.meta["inputs"]), tuple(spec(d) for d in self.meta["outputs"]))

    @property
    def text(self) -> str:
        return self.files["graph.nnef"].decode()

    # -- validation and running ------------------------------------------------------------------------------
    def validate(self, *, path: Any = None) -> None:
        """Parse graph.nnef with the `nnef` parser, infer its shapes and check every variable's tensor file.

        Raises:
            NNEFError: the graph or a tensor file is malformed or inconsistent.
        """
        import nnef

        from .executor import parse_graph
        from .reader import read_tensor_bytes

        try:
            graph = parse_graph(self.text)
            nnef.infer_shapes(graph)
        except Exception as exc:  # nnef.Error and friends
            raise NNEFError(f"graph.nnef fails the NNEF parser: {exc}", path=path or self.path) from None
        for op in graph.operations:
            if op.name != "variable":
                continue
            fname = str(op.attribs["label"]).lstrip("/") + ".dat"
            if fname not in self.files:
                raise NNEFError(f"the variable '{op.attribs['label']}' has no tensor file {fname}",
                                path=path or self.path)
            try:
                data = read_tensor_bytes(self.files[fname])
            except Exception as exc:
                raise NNEFError(f"{fname} is not a valid NNEF tensor file: {exc}", path=path or self.path) from None
            if list(data.shape) != list(op.attribs["shape"]):
                raise NNEFError(f"{fname} holds shape {list(data.shape)}, graph.nnef declares "
                                f"{list(op.attribs['shape'])}", path=path or self.path)
        names = {d["nnef"] for d in self.meta["inputs"]} | {d["nnef"] for d in self.meta["outputs"]}
        missing = names - set(graph.inputs) - set(graph.outputs)
        if missing:
            raise NNEFError(f"portable.json names tensors {sorted(missing)} that graph.nnef does not have as inputs "
                            f"or outputs ({list(graph.inputs)} -> {list(graph.outputs)})", path=path or self.path)
        self._sizes = self._tensor_sizes(graph, path or self.path)
        self._graph = graph

    def _tensor_sizes(self, graph: Any, path: Any) -> tuple[np.ndarray, np.ndarray, int] | None:
        """Each tensor's number of values as `a + b * rows` (from the shapes the parser infers at the declared
        batch and at twice it), checked against `max_tensor_bytes` at the declared shapes; `_run` checks it again
        for the rows it is given, before the executor allocates anything (a `tile` or `constant` can declare a
        tensor of any size)."""
        import nnef

        from ...limits import LIMITS, LimitError

        itemsize = 8 if self.compute_dtype == "float64" else 4
        first = {n: list(graph.tensors[n].shape or []) for n in graph.inputs}
        batch = next((s[0] for s in first.values() if s and s[0]), 0)
        names = [n for n, t in graph.tensors.items() if t.shape is not None]
        at_b = np.array([float(np.prod(graph.tensors[n].shape, dtype=np.float64)) for n in names])
        if len(at_b) and at_b.max() * itemsize > LIMITS.max_tensor_bytes:
            worst = names[int(at_b.argmax())]
            raise LimitError(f"graph.nnef's tensor '{worst}' has shape {list(graph.tensors[worst].shape)} at the "
                             f"declared input shapes ({at_b.max() * itemsize:,.0f} bytes)", "max_tensor_bytes",
                             path=path)
        if not batch:
            return None
        try:
            from .executor import parse_graph

            twice = parse_graph(self.text)
            nnef.infer_shapes(twice, external_shapes={n: [2 * batch] + s[1:] for n, s in first.items() if s})
            at_2b = np.array([float(np.prod(twice.tensors[n].shape, dtype=np.float64)) for n in names])
        except Exception:  # the graph only works at its declared batch: its sizes are those
            return None
        slope = np.maximum(at_2b - at_b, 0.0) / batch
        return at_b - slope * batch, slope, itemsize

    def _check_sizes(self, rows: int) -> None:
        sizes = self.__dict__.get("_sizes")
        if sizes is None:
            return
        from ...limits import LIMITS, LimitError

        base, slope, itemsize = sizes
        largest = float((base + slope * rows).max()) * itemsize if len(base) else 0.0
        if largest > LIMITS.max_tensor_bytes:
            raise LimitError(f"on {rows:,} rows a tensor of graph.nnef would hold {largest:,.0f} bytes",
                             "max_tensor_bytes", path=self.path)

    @property
    def compute_dtype(self) -> str:
        return str(self.meta.get("portable.dtype") or "float32")

    def executor(self) -> Any:
        if self._executor is None:
            from .executor import Executor

            self._executor = Executor.from_files(self.files, dtype=self.compute_dtype)
        return self._executor

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        for d in self.meta["inputs"]:
            x = np.asarray(inputs[d["name"]])
            shape = d.get("shape") or []
            if len(shape) == 2 and x.ndim == 1 and shape[1] == 1:
                x = x.reshape(-1, 1)
            feeds[d["nnef"]] = x
        if feeds:
            self._check_sizes(len(next(iter(feeds.values()))))
        try:
            raw = self.executor().run(feeds)
        except (TypeError, ValueError) as exc:  # the executor's numpy on inputs of the wrong width or type
            from ...errors import cannot_run

            raise cannot_run(self, inputs, exc) from None
        return self.map_outputs(raw)

    def map_outputs(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """NNEF outputs (by NNEF name) -> the source model's outputs: labels back from indices, dtypes as declared."""
        out = {}
        for d in self.meta["outputs"]:
            y = np.asarray(raw[d["nnef"]])
            shape = d.get("shape") or []
            if len(shape) == 1 and y.ndim == 2 and y.shape[1] == 1:
                y = y.reshape(-1)
            if "labels" in d:
                table = np.asarray(d["labels"], dtype=str if d["dtype"] in ("str", "object", "string")
                                   else d["dtype"])
                idx = y.astype(np.int64)
                if idx.size and (idx.min() < 0 or idx.max() >= len(table)):
                    raise PortableError(f"the NNEF model gave class index {int(idx.max())} for '{d['name']}', "
                                        f"which has {len(table)} labels", path=self.path)
                y = table[idx]
            y = y.astype(str) if d["dtype"] in ("str", "object", "string") else y.astype(d["dtype"])
            out[d["name"]] = y
        return out

    # -- saving and inspecting ---------------------------------------------------------------------------------
    def save(self, path: str | Path, *, force: bool = False) -> Path:
        from .writer import write

        p = write(self.all_files(), path, force=force, protect=(self.origin.path,))
        self.path = str(p)
        return p

    def info(self) -> dict[str, Any]:
        ops: dict[str, int] = {}
        if self._graph is None:
            self.validate()
        for op in self._graph.operations:
            ops[op.name] = ops.get(op.name, 0) + 1
        from ...profile import summarize_metadata

        meta = summarize_metadata({k: v for k, v in self.meta.items() if k not in ("inputs", "outputs")})
        return {"operators": dict(sorted(ops.items())), "files": len(self.files) + 1,
                "size_bytes": sum(len(v) for v in self.all_files().values()), "metadata": meta,
                "io": {"inputs": {d["name"]: d["nnef"] for d in self.meta["inputs"]},
                       "outputs": {d["name"]: d["nnef"] for d in self.meta["outputs"]}}}
