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
            self.meta[key] = json.loads(value) if key in JSON_KEYS else value
        except ValueError:
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
        self._graph = graph

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
        raw = self.executor().run(feeds)
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
