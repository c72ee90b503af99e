"""The cost of bounded parsing (portable.limits): reading a PFA document (JSON and YAML) and an NNEF archive within
the limits, against what a user would call instead (`json.loads`, `yaml.safe_load`, plain `tarfile` reading)."""
from __future__ import annotations

import io
import json
import tarfile

from benchmarks._util import best_of, peak_memory, table


def _forest_doc(trees: int = 60, depth: int = 9) -> dict:
    """A PFA random forest: `trees` complete trees of `depth` levels as nested records in cells."""
    def node(d: int, k: int) -> dict:
        if d == depth:
            return {"double": float(k % 7)}
        return {"T": {"field": f"f{k % 8}", "operator": "<", "value": 0.5 * k,
                      "pass": node(d + 1, 2 * k), "fail": node(d + 1, 2 * k + 1)}}

    fields = [{"name": f"f{i}", "type": "double"} for i in range(8)]
    tree_t = {"type": "record", "name": "T", "fields": [
        {"name": "field", "type": "string"}, {"name": "operator", "type": "string"}, {"name": "value", "type": "double"},
        {"name": "pass", "type": ["double", "T"]}, {"name": "fail", "type": ["double", "T"]}]}
    return {"input": {"type": "record", "name": "In", "fields": fields}, "output": "double",
            "cells": {"forest": {"type": {"type": "array", "items": tree_t},
                                 "init": [node(0, 1)["T"] for _ in range(trees)]}},
            "action": [{"a.mean": [{"a.map": [{"cell": "forest"}, {"params": [{"t": "T"}], "ret": "double",
                                                                   "do": [{"model.tree.simpleWalk": [
                                                                       "input", "t",
                                                                       {"fcn": "model.tree.simpleTest"}]}]}]}]}]}


def run() -> str:
    import yaml

    from portable import limits

    doc = _forest_doc(trees=20)
    text = json.dumps(doc)
    ytext = yaml.safe_dump(_forest_doc(trees=2))  # PyYAML's pure-Python loader is slow either way
    rows = []

    def bounded_json() -> object:
        data = limits.load_json(text)
        limits.check_pfa_expansion(data)
        return data

    plain = best_of(lambda: json.loads(text), repeat=3)
    ours = best_of(bounded_json, repeat=3)
    _, mem_plain = peak_memory(lambda: json.loads(text))
    _, mem_ours = peak_memory(bounded_json)
    rows.append([f"PFA forest as JSON ({len(text) / 2**20:.1f} MiB)", "json.loads", f"{plain * 1e3:.0f}",
                 f"{ours * 1e3:.0f}", f"{ours / plain:.2f}x", f"{mem_ours / mem_plain:.2f}x"])

    plain = best_of(lambda: yaml.safe_load(ytext), repeat=1)
    ours = best_of(lambda: limits.load_yaml(ytext), repeat=1)
    rows.append([f"same as YAML ({len(ytext) / 2**20:.1f} MiB)", "yaml.safe_load", f"{plain * 1e3:.0f}",
                 f"{ours * 1e3:.0f}", f"{ours / plain:.2f}x", ""])

    buf = io.BytesIO()
    payload = {f"variable{i}.dat": bytes(128) + bytes(4 << 20) for i in range(16)}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in payload.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()

    def plain_tar() -> dict:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

    def bounded_tar() -> dict:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            return {m.name: data for m, data in limits.read_tar_members(tar)}

    plain = best_of(plain_tar, repeat=3)
    ours = best_of(bounded_tar, repeat=3)
    rows.append(["NNEF archive, 16 tensors of 4 MiB (.nnef.tgz)", "tarfile + extractfile().read()",
                 f"{plain * 1e3:.0f}", f"{ours * 1e3:.0f}", f"{ours / plain:.2f}x", ""])
    header = ["input", "what a user would call", "plain (ms)", "bounded (ms)", "time ratio", "peak memory ratio"]
    return ("## Parser limits: bounded reading vs plain json / yaml / tarfile\n\n"
            "portable.limits checks depth, size, YAML aliases (while composing), PFA user-function expansion and "
            "declared tensor/member sizes before anything expands or allocates. Cost of those checks against the "
            "plain call on the same input (best of several runs, same process; the machine was shared with other "
            "jobs while measuring, so absolute times are noisy, the ratios less so):\n\n" + table(header, rows))
