"""The hostile and corrupt corpus for parsers and paths: PFA/YAML/JSON documents, NNEF folders and archives, ONNX
files and careless output paths, all written by these functions (no opaque blobs are checked in).

`build_corpus(base)` writes every case below `base` and returns the `Case`s: the command line to run, the exit
codes allowed, a phrase the one-paragraph message must hold, and a check of the files afterwards (nothing lost,
nothing half-written). `cli_harness` runs them in one subprocess under a time and memory limit.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GOOD_PFA = {"input": {"type": "record", "name": "In", "fields": [{"name": "x", "type": "double"},
                                                                   {"name": "y", "type": "double"}]},
            "output": "double", "action": [{"+": [{"*": ["input.x", 2.0]}, "input.y"]}]}


@dataclass
class Case:
    name: str
    argv: list[str]
    codes: tuple[int, ...] = (1,)
    needle: str = ""  # a phrase the message holds (case-insensitive)
    after: Callable[[], None] | None = field(default=None, repr=False)


def write_good_nnef(folder: Path) -> None:
    """A small NNEF model with tensor files, written by portable itself (a logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    import portable

    X = np.random.default_rng(0).normal(size=(60, 3))
    art = portable.convert(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), to="nnef", samples=50)
    art.save(folder)


def _write_endless_loop_onnx(path: Path) -> None:
    """A valid ONNX model whose Loop adds 1 to its input 10**15 times (onnx's checker accepts it)."""
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    body = h.make_graph(
        [h.make_node("Add", ["v_in", "one"], ["v_out"]), h.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [h.make_tensor_value_info("i", TP.INT64, []), h.make_tensor_value_info("cond_in", TP.BOOL, []),
         h.make_tensor_value_info("v_in", TP.FLOAT, [None, 1])],
        [h.make_tensor_value_info("cond_out", TP.BOOL, []), h.make_tensor_value_info("v_out", TP.FLOAT, [None, 1])],
        [nh.from_array(np.ones((1,), np.float32), "one")])
    graph = h.make_graph([h.make_node("Loop", ["M", "c", "X"], ["Y"], body=body)], "endless",
                         [h.make_tensor_value_info("X", TP.FLOAT, [None, 1])],
                         [h.make_tensor_value_info("Y", TP.FLOAT, [None, 1])],
                         [nh.from_array(np.array(10 ** 15, np.int64), "M"), nh.from_array(np.array(True), "c")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def write_good_onnx(path: Path) -> None:
    import portable

    portable.convert(GOOD_PFA, to="onnx", samples=50).save(path)


def nnef_tensor(shape: list[int], bits: int = 32, data: bytes | None = None, length: int | None = None) -> bytes:
    """An NNEF `.dat` file: the 128-byte header (magic, version 1.0, data length, rank, extents, bits, float code)
    and `data` (by default the bytes the shape implies)."""
    count = int(np.prod(shape, dtype=object)) if shape else 1
    nbytes = count * bits // 8
    if data is None:
        data = b"\0" * nbytes
    header = bytearray(128)
    header[0:4] = bytes([0x4E, 0xEF, 1, 0])
    struct.pack_into("<II", header, 4, (nbytes if length is None else length) & 0xFFFFFFFF, len(shape))
    struct.pack_into("<8I", header, 12, *(list(shape) + [0] * (8 - len(shape))))
    struct.pack_into("<II", header, 44, bits, 0)
    return bytes(header) + data


def _octal(n: int, width: int) -> bytes:
    if n >= 8 ** (width - 1):  # GNU base-256 for numbers octal cannot hold
        return b"\x80" + n.to_bytes(width - 1, "big")
    return ("%0*o" % (width - 1, n)).encode() + b"\0"


def gnu_sparse_member(name: str, realsize: int, stored: bytes = b"x" * 512) -> bytes:
    """A GNU sparse ('S') tar member that stores `stored` and declares `realsize` bytes (old GNU sparse map)."""
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = _octal(0o644, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(len(stored), 12)
    h[136:148] = _octal(0, 12)
    h[156:157] = b"S"
    h[257:265] = b"ustar  \0"
    h[386:398] = _octal(realsize - len(stored), 12)
    h[398:410] = _octal(len(stored), 12)
    h[483:495] = _octal(realsize, 12)
    h[148:156] = b" " * 8
    h[148:156] = ("%06o" % sum(h)).encode() + b"\0 "
    return bytes(h) + stored + b"\0" * (-len(stored) % 512)


def tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _unchanged(path: Path) -> Callable[[], None]:
    before = path.read_bytes() if path.is_file() else _files_of(path)

    def check() -> None:
        now = path.read_bytes() if path.is_file() else _files_of(path)
        assert now == before, f"{path} changed"
    return check


def _no_temporaries(folder: Path) -> Callable[[], None]:
    def check() -> None:
        left = [p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".probe")) or p.name.endswith(".old")]
        assert not left, f"temporary files left in {folder}: {left}"
    return check


def _both(*checks: Callable[[], None]) -> Callable[[], None]:
    def check() -> None:
        for c in checks:
            c()
    return check


def build_corpus(base: Path) -> list[Case]:
    base.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    p = lambda name: base / name  # noqa: E731

    # ---- PFA, YAML, JSON -------------------------------------------------------------------------------------
    head = "input: double\noutput: double\naction: [input]\n"
    laughs = ["  l0: &l0 [1.5, 2.5]"] + [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 12)]
    p("bomb.yaml").write_text(head + "doc:\n" + "\n".join(laughs) + "\n")
    cases.append(Case("yaml alias bomb", ["inspect", str(p("bomb.yaml"))], needle="max_nodes"))
    p("bomb_cell.yaml").write_text("input: double\noutput: double\naction: [input]\ncells:\n  c:\n"
                                   "    type: {type: array, items: {type: array, items: double}}\n"
                                   "    init: &a [[1.0], *a]\n")
    cases.append(Case("yaml alias to itself in a cell", ["convert", str(p("bomb_cell.yaml")), "--to", "onnx"],
                      needle="refers to its own anchor"))
    p("self_tree.yaml").write_text(
        "input: {type: record, name: In, fields: [{name: x, type: double}]}\noutput: double\n"
        "cells:\n  tree:\n    type: {type: record, name: T, fields: [{name: field, type: string}, "
        "{name: value, type: double}, {name: pass, type: [double, T]}, {name: fail, type: [double, T]}]}\n"
        "    init: &t {field: x, value: 1.0, pass: {T: *t}, fail: {double: 2.0}}\n"
        "action: [{cell: tree, path: [[value]]}]\n")
    cases.append(Case("tree cell whose alias points at itself", ["inspect", str(p("self_tree.yaml"))],
                      needle="own anchor"))
    p("deep.json").write_text('{"input": "double", "output": "double", "action": ["input"], "doc": '
                              + "[" * 20000 + "]" * 20000 + "}")
    cases.append(Case("JSON nested 20,000 deep", ["inspect", str(p("deep.json"))], needle="max_depth"))
    p("deep_flow.yaml").write_text(head + "doc: " + "[" * 20000 + "]" * 20000 + "\n")
    cases.append(Case("YAML flow nested 20,000 deep", ["inspect", str(p("deep_flow.yaml"))], needle="max_depth"))
    p("deep_block.yaml").write_text(head + "doc:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)) + "  " * 3000
                                    + "- 1\n")
    cases.append(Case("YAML block nested 3,000 deep", ["inspect", str(p("deep_block.yaml"))], needle="max_depth"))
    # a loop that never ends: each generated record used to fail on its own after ten million iterations, and the
    # check's bisection ran them one by one (20 records: 90 s; the default 1,000: hours)
    p("endless.json").write_text(json.dumps({"input": "double", "output": "double", "action": [
        {"while": True, "do": [{"let": {"z": 1}}]}, "input"]}))
    cases.append(Case("a PFA while loop that never ends, checked", ["--limit", "max_pfa_loop_iterations=100000",
                                                                   "check", str(p("endless.json")),
                                                                   str(p("endless.json")), "--samples", "1000"],
                      needle="max_pfa_loop_iterations"))
    p("deep_expr.json").write_text('{"input": "double", "output": "double", "action": ['
                                   + '{"+": [' * 5000 + '"input"' + ', 1]}' * 5000 + "]}")
    cases.append(Case("PFA expression nested 5,000 deep", ["convert", str(p("deep_expr.json")), "--to", "onnx"],
                      needle="max_depth"))
    fcns = {"f0": {"params": [{"x": "double"}], "ret": "double", "do": [{"+": ["x", 1]}]}}
    for i in range(1, 40):
        fcns[f"f{i}"] = {"params": [{"x": "double"}], "ret": "double",
                         "do": [{"+": [{f"u.f{i - 1}": ["x"]}, {f"u.f{i - 1}": ["x"]}]}]}
    p("fcn40.json").write_text(json.dumps({"input": "double", "output": "double", "action": [{"u.f39": ["input"]}],
                                           "fcns": fcns}))
    cases.append(Case("40 user functions each calling the previous twice",
                      ["convert", str(p("fcn40.json")), "--to", "onnx"], needle="max_pfa_expansion"))
    p("rec200k.json").write_text(json.dumps(
        {"input": {"type": "record", "name": "R", "fields": [{"name": f"f{i}", "type": "double"}
                                                             for i in range(200_000)]},
         "output": "double", "action": ["input.f0"]}))
    cases.append(Case("record with 200k fields", ["convert", str(p("rec200k.json")), "--to", "onnx"],
                      needle="max_record_fields"))
    p("bigint_long.json").write_text('{"input": "long", "output": "long", "action": [{"+": ["input", '
                                     + str(10 ** 26) + "]}]}")
    cases.append(Case("integer literal 10**26 where a long is expected",
                      ["convert", str(p("bigint_long.json")), "--to", "onnx"], needle="long"))
    p("bigint_double.json").write_text('{"input": "double", "output": "double", "action": [{"+": ["input", '
                                       + str(10 ** 26) + "]}]}")
    cases.append(Case("integer literal 10**26 in a double expression converts",
                      ["convert", str(p("bigint_double.json")), "--to", "onnx", "--samples", "50"], codes=(0,)))
    p("digits.json").write_text('{"input": "double", "output": "double", "action": [{"+": ["input", '
                                + "9" * 6000 + "]}]}")
    cases.append(Case("integer literal of 6,000 digits", ["inspect", str(p("digits.json"))], needle="digits"))
    p("big.json").write_text(json.dumps(dict(GOOD_PFA, doc="x" * 5000)))
    cases.append(Case("document above a lowered max_document_bytes",
                      ["--limit", "max_document_bytes=4096", "inspect", str(p("big.json"))],
                      needle="max_document_bytes"))
    cases.append(Case("unknown limit is a usage error", ["--limit", "max_nothing=3", "inspect", str(p("big.json"))],
                      codes=(2,), needle="unknown limit"))
    # documents that would run for ever: the spec's timeout, imposed by portable (max_pfa_routine_ms) or asked
    # for by the document; the check stops at the first record that runs out of time (it is not a rejected row
    # to bisect: 200 rows at 0.3 s each would take minutes)
    loop = {"input": "double", "output": "double",
            "action": [{"let": {"i": 0}}, {"while": True, "do": [{"set": {"i": {"+": ["i", 1]}}}]}, "input"]}
    p("loop.json").write_text(json.dumps(loop))
    cases.append(Case("PFA action whose while never ends",
                      ["--limit", "max_pfa_routine_ms=300", "check", str(p("loop.json")), str(p("loop.json")),
                       "--samples", "200"],
                      needle="loop.json: at action (record 0): exceeded timeout of 300 milliseconds"))
    p("loop_own.json").write_text(json.dumps(dict(loop, options={"timeout": 200})))
    cases.append(Case("PFA action whose while never ends, with the document's own timeout",
                      ["check", str(p("loop_own.json")), str(p("loop_own.json")), "--samples", "200"],
                      needle="exceeded timeout of 200 milliseconds (the document's own"))
    nested = {"input": "double", "output": "double",
              "action": [{"let": {"n": 0}},
                         {"for": {"i": 0}, "while": {"<": ["i", 100000]}, "step": {"i": {"+": ["i", 1]}},
                          "do": [{"for": {"j": 0}, "while": {"<": ["j", 100000]}, "step": {"j": {"+": ["j", 1]}},
                                  "do": [{"set": {"n": {"+": ["n", 1]}}}]}]},
                         "input"]}
    p("nested_loops.json").write_text(json.dumps(nested))
    cases.append(Case("PFA loops nested to 10**10 iterations, each within portable's loop guard",
                      ["--limit", "max_pfa_routine_ms=300", "check", str(p("nested_loops.json")),
                       str(p("nested_loops.json")), "--samples", "50"], needle="exceeded timeout of 300"))
    redos = {"input": "string", "output": "boolean",
             "action": [{"re.contains": [{"s.concat": [{"s.repeat": [{"string": "a"}, 64]}, {"string": "!"}]},
                                         {"string": "(a|aa)+$"}]}]}
    p("redos.json").write_text(json.dumps(redos))
    cases.append(Case("PFA regular expression that backtracks catastrophically",
                      ["--limit", "max_pfa_routine_ms=300", "check", str(p("redos.json")), str(p("redos.json")),
                       "--samples", "50"], needle="exceeded timeout of 300"))
    p("wrong_output.json").write_text(json.dumps(
        {"input": "string", "output": "int", "action": [{"re.index": ["input", {"string": "a+"}]}]}))
    cases.append(Case("PFA action returning an array where the output is an int",
                      ["check", str(p("wrong_output.json")), str(p("wrong_output.json"))],
                      needle="the action returns array<int>, but the document's output is declared int"))
    # values a library function builds: one call asks for gigabytes, or a loop doubles a string 60 times (it
    # reached 14 GB and was killed before the routine's clock was next read)
    doubling = [{"let": {"s": "input"}},
                {"for": {"i": 0}, "while": {"<": ["i", 60]}, "step": {"i": {"+": ["i", 1]}},
                 "do": [{"set": {"s": {"s.concat": ["s", "s"]}}}]},
                {"s.len": ["s"]}]
    forty = {"value": list(range(40)), "type": {"type": "array", "items": "int"}}
    for name, doc, needle in [
            ("repeat", {"input": "string", "output": "int",
                        "action": [{"s.len": [{"s.repeat": ["input", 2000000000]}]}]}, "s.repeat's string"),
            ("doubling", {"input": "string", "output": "int", "action": doubling}, "s.concat's string"),
            ("combinations", {"input": "int", "output": "int",
                              "action": [{"a.len": [{"a.combinations": [forty, 20]}]}]}, "a.combinations"),
            ("width", {"input": "int", "output": "int",
                       "action": [{"s.len": [{"s.int": ["input", 2000000000, False]}]}]}, "padded to its width")]:
        p(f"big_{name}.json").write_text(json.dumps(doc))
        cases.append(Case(f"PFA value of gigabytes ({name})", ["check", str(p(f"big_{name}.json")),
                                                                str(p(f"big_{name}.json")), "--samples", "20"],
                          needle=needle))
    p("notjson.pfa").write_bytes(b"\xff\xfe{{{\x00")
    cases.append(Case("binary garbage as PFA", ["inspect", str(p("notjson.pfa"))], needle="PFA"))

    # ---- NNEF -------------------------------------------------------------------------------------------------
    good = p("good.nnef")
    write_good_nnef(good)
    files = _files_of(good)
    variables = sorted(n for n in files if n.endswith(".dat"))

    graph_text = files["graph.nnef"].decode()
    for name, extra, needle in [
        ("constant_bomb.nnef", "    c = constant<scalar>(shape = [100000, 1000000], value = [0.0]);\n"
                               "    s = sum_reduce(c, axes = [0, 1]);\n", "tensor 'c' has shape [100000, 1000000]"),
        ("tile_bomb.nnef", "    t = tile(sigmoid1, repeats = [1, 100000]);\n"
                           "    s = slice(t, axes = [1], begin = [0], end = [2]);\n", "max_tensor_bytes")]:
        bomb = p(name)
        bomb.mkdir()
        for n, b in files.items():
            (bomb / n).write_bytes(b)
        assert "    label = " in graph_text and "sigmoid1 = " in graph_text, graph_text
        (bomb / "graph.nnef").write_text(graph_text.replace("    label = ", extra + "    label = ", 1))
        # the tile is 800 kB a row: within a lowered max_tensor_bytes (100 MB) at the declared batch, beyond it on
        # the check's 1,000 rows
        cases.append(Case(f"NNEF graph whose {name.split('_')[0]} declares gigabytes",
                          ["--limit", "max_tensor_bytes=100000000", "check", str(bomb), str(bomb), "--samples",
                           "1000"], needle=needle))

    deep = p("deep_graph.nnef")
    deep.mkdir()
    for n, b in files.items():
        (deep / n).write_bytes(b)
    graph = files["graph.nnef"].decode()
    (deep / "graph.nnef").write_text(graph.replace("graph ", "# " + "(" * 10 + "\ngraph ", 1).rstrip()[:-1]
                                     + "  deep = " + "(" * 20000 + "1.0" + ")" * 20000 + ";\n}\n")
    cases.append(Case("graph.nnef nested 20,000 parentheses deep", ["inspect", str(deep)], needle="max_depth"))

    # fragments the nnef parser expands in C++: one that calls itself (it recursed until a segfault, exit 139) and
    # 40 that each call the previous twice (2**40 operations: it ran for minutes and took gigabytes)
    head = "version 1.0;\nextension KHR_enable_fragment_definitions, KHR_enable_operator_expressions;\n\n"
    recursive = "fragment g( x: tensor<scalar> ) -> ( y: tensor<scalar> ) { z = g(x); y = add(z, x); }\n"
    doubling = "fragment f0( x: tensor<scalar> ) -> ( y: tensor<scalar> ) { y = add(x, x); }\n" + "".join(
        f"fragment f{k}( x: tensor<scalar> ) -> ( y: tensor<scalar> ) {{ a = f{k - 1}(x); y = f{k - 1}(a); }}\n"
        for k in range(1, 40))
    for name, fragments, call, argv, needle in [
            ("recursive_fragment.nnef", recursive, "g", [], "'g' calls itself (g -> g)"),
            ("doubling_fragments.nnef", doubling, "f39", ["--limit", "max_nnef_lowering_ms=3000"],
             "max_nnef_lowering_ms=3,000")]:
        folder = p(name)
        folder.mkdir()
        for n, b in files.items():
            (folder / n).write_bytes(b)
        text = graph_text.replace("version 1.0;\n", head + fragments, 1)
        first = text.index("sigmoid1 = ")
        end = text.index(";", first)
        (folder / "graph.nnef").write_text(text[:end] + ";\n    unused = " + call + "(sigmoid1)" + text[end:])
        cases.append(Case(f"NNEF {name.split('.')[0].replace('_', ' ')}",
                          argv + ["check", str(folder), str(folder), "--samples", "20"], needle=needle))

    sparse = gzip.compress(gnu_sparse_member("model/graph.nnef", 64 << 30) + b"\0" * 1024)
    p("sparse.nnef.tgz").write_bytes(sparse)
    cases.append(Case("GNU sparse tar member declaring 64 GiB", ["inspect", str(p("sparse.nnef.tgz"))],
                      needle="sparse"))

    def info(name: str, **kw: object) -> tarfile.TarInfo:
        t = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(t, k, v)
        return t

    regular = [(info(n), b) for n, b in files.items()]
    p("symlink.nnef.tgz").write_bytes(tgz([(info("graph.nnef", type=tarfile.SYMTYPE, linkname="/etc/passwd"), None)]
                                          + [m for m in regular if m[0].name != "graph.nnef"]))
    cases.append(Case("archive member that is a symlink", ["inspect", str(p("symlink.nnef.tgz"))], needle="link"))
    p("hardlink.nnef.tgz").write_bytes(tgz(regular + [(info(variables[0] + "2", type=tarfile.LNKTYPE,
                                                            linkname="/etc/shadow"), None)]))
    cases.append(Case("archive member that is a hard link", ["inspect", str(p("hardlink.nnef.tgz"))], needle="link"))
    huge_member = gzip.compress(_big_header("graph.nnef", 60 << 30) + b"x" * 1024)
    p("huge_member.nnef.tgz").write_bytes(huge_member)
    cases.append(Case("archive member declaring 60 GiB", ["inspect", str(p("huge_member.nnef.tgz"))],
                      needle="max_tensor_bytes"))
    bomb_members = [(info(n), b) for n, b in files.items() if n != variables[0]]
    bomb_members.append((info(variables[0]), nnef_tensor([(100 << 20) // 4])))  # 100 MiB of zeros
    p("gzip_bomb.nnef.tgz").write_bytes(tgz(bomb_members))
    cases.append(Case("archive of a few hundred KiB declaring 100 MiB (gzip bomb)",
                      ["inspect", str(p("gzip_bomb.nnef.tgz"))], needle="max_compression_ratio"))
    p("truncated.nnef.tgz").write_bytes(tgz(regular)[:300])
    cases.append(Case("truncated archive", ["inspect", str(p("truncated.nnef.tgz"))], needle="archive"))

    outside = p("secret.dat")
    outside.write_bytes(files[variables[0]])
    link = p("link_out.nnef")
    link.mkdir()
    for n, b in files.items():
        (link / n).write_bytes(b)
    (link / variables[0]).unlink()
    os.symlink(outside, link / variables[0])
    cases.append(Case("NNEF folder with a symlink that leaves it", ["inspect", str(link)], needle="outside"))
    cases.append(Case("NNEF folder with a symlink out is not copied into a new artifact",
                      ["convert", str(link), "--to", "onnx", "-o", str(p("from_link.onnx"))], needle="outside",
                      after=lambda: _assert_missing(p("from_link.onnx"))))

    hugedat = p("huge_dat.nnef")
    hugedat.mkdir()
    for n, b in files.items():
        (hugedat / n).write_bytes(b)
    (hugedat / variables[0]).write_bytes(nnef_tensor([1 << 20, 1 << 20], data=b"\0" * 64))
    cases.append(Case("NNEF tensor header declaring 4 TiB", ["inspect", str(hugedat)], needle="max_tensor_bytes"))
    liar = p("liar_dat.nnef")
    liar.mkdir()
    for n, b in files.items():
        (liar / n).write_bytes(b)
    (liar / variables[0]).write_bytes(nnef_tensor([4, 4], data=b"\0" * 8))
    cases.append(Case("NNEF tensor shorter than its header says", ["inspect", str(liar)], needle="tensor"))

    for label, meta in [("not an object", "[1, 2]"), ("inputs not a list", '{"inputs": 3, "outputs": []}'),
                        ("entry without a name", '{"inputs": [{"dtype": "float32"}], "outputs": []}'),
                        ("bogus dtype", None), ("bad shape", None)]:
        folder = p("meta_" + label.replace(" ", "_") + ".nnef")
        folder.mkdir()
        for n, b in files.items():
            (folder / n).write_bytes(b)
        if meta is None:
            m = json.loads(files["portable.json"])
            if label == "bogus dtype":
                m["inputs"][0]["dtype"] = "float33"
            else:
                m["outputs"][0]["shape"] = "NxN"
            meta = json.dumps(m)
        (folder / "portable.json").write_text(meta)
        cases.append(Case(f"portable.json {label}", ["inspect", str(folder)], needle="portable.json"))

    # ---- ONNX -------------------------------------------------------------------------------------------------
    good_onnx = p("good.onnx")
    write_good_onnx(good_onnx)
    from onnx import TensorProto, helper

    many = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, ["N", 1]) for i in range(500)]
    wide = helper.make_model(helper.make_graph(
        [helper.make_node("Concat", [v.name for v in many], ["c"], axis=1),
         helper.make_node("ReduceSum", ["c"], ["y"], keepdims=1)], "g", many,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])]),
        opset_imports=[helper.make_opsetid("", 17)])
    wide.ir_version = 8
    p("many_inputs.onnx").write_bytes(wide.SerializeToString())
    # 50,000 inputs made onnxruntime's feed validation take minutes per run (quadratic): the checker refuses
    # more than max_model_inputs (lowered here so that the file stays small)
    cases.append(Case("an ONNX graph with more named inputs than max_model_inputs, checked",
                      ["--limit", "max_model_inputs=100", "check", str(p("many_inputs.onnx")),
                       str(p("many_inputs.onnx"))], needle="max_model_inputs"))
    p("empty.onnx").write_bytes(b"")
    cases.append(Case("0-byte .onnx", ["inspect", str(p("empty.onnx"))], needle="empty file"))
    p("truncated.onnx").write_bytes(good_onnx.read_bytes()[: good_onnx.stat().st_size // 2])
    cases.append(Case("truncated .onnx", ["inspect", str(p("truncated.onnx"))], needle="onnx"))
    p("garbage.onnx").write_bytes(os.urandom(4096))
    cases.append(Case("random bytes as .onnx", ["inspect", str(p("garbage.onnx"))], needle="onnx"))
    wide = p("wide.onnx")
    _write_identity_onnx(wide, [None, 2 ** 40])
    cases.append(Case("ONNX input declared [N, 2**40] in a check", ["check", str(wide), str(wide)],
                      needle="max_input_width"))
    _write_endless_loop_onnx(p("loop.onnx"))
    cases.append(Case("ONNX Loop whose trip count is 10**15", ["--limit", "max_onnx_loop_ms=500", "check",
                                                               str(p("loop.onnx")), str(p("loop.onnx"))],
                      needle="max_onnx_loop_ms=500"))
    secret = p("onnx_secret.bin")
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    (base / "onnx_ext").mkdir()
    os.symlink(secret, base / "onnx_ext" / "link.bin")
    for label, location in [("an absolute path", str(secret)), ("a path out of its folder", "../onnx_secret.bin"),
                            ("a symlink out of its folder", "link.bin")]:
        path = base / "onnx_ext" / f"ext_{len(cases)}.onnx"
        _write_external_onnx(path, location)
        cases.append(Case(f"ONNX external data at {label}", ["inspect", str(path)], needle="onnx"))
    _write_deep_onnx(p("deep.onnx"), 5000)
    cases.append(Case("ONNX subgraphs nested 5,000 deep", ["check", str(p("deep.onnx")), str(p("deep.onnx"))],
                      needle="not a readable onnx model"))
    _write_graph_onnx(p("custom_op.onnx"), [("Evil", ["X"], ["Y"], "com.evil")], extra_opsets={"com.evil": 1})
    cases.append(Case("ONNX node of an unregistered domain", ["check", str(p("custom_op.onnx")),
                                                               str(p("custom_op.onnx")), "--samples", "20"],
                      needle="com.evil:Evil"))
    _write_graph_onnx(p("cycle.onnx"), [("Add", ["X", "Z"], ["Y"], ""), ("Add", ["X", "Y"], ["Z"], "")])
    cases.append(Case("ONNX nodes in a cycle", ["inspect", str(p("cycle.onnx"))], needle="topologically"))
    _write_graph_onnx(p("short_init.onnx"), [("MatMul", ["X", "W"], ["Y"], "")], short_initializer=True)
    cases.append(Case("ONNX initializer declaring more than its bytes", ["inspect", str(p("short_init.onnx"))],
                      needle="too small"))
    _write_graph_onnx(p("bad_gather.onnx"), [("Gather", ["X", "I"], ["Y"], "")], gather_past_the_end=True)
    cases.append(Case("ONNX Gather past the end (onnxruntime fails in every run)",
                      ["check", str(p("bad_gather.onnx")), str(p("bad_gather.onnx")), "--samples", "20"],
                      needle="Gather"))
    cases.append(Case("--samples 1,000,000,000", ["check", str(good_onnx), str(good_onnx), "--samples",
                                                   "1000000000"], codes=(2,), needle="max_samples"))

    # ---- tolerances -------------------------------------------------------------------------------------------
    for opt, value in [("--atol", "nan"), ("--rtol", "nan"), ("--atol", "inf"), ("--atol", "-1"), ("--rtol", "-0.5")]:
        cases.append(Case(f"{opt} {value} is a usage error", ["check", str(good_onnx), str(good_onnx), opt, value],
                          codes=(2,), needle="finite"))
    cases.append(Case("--seed -5 is a usage error", ["check", str(good_onnx), str(good_onnx), "--seed", "-5"],
                      codes=(2,), needle="seed"))

    # ---- data files -------------------------------------------------------------------------------------------
    np.save(p("strings.npy"), np.array(["a", "b", "c"]))
    cases.append(Case("a string .npy as --data (does not fit: a note, or an error)",
                      ["check", str(good_onnx), str(good_onnx), "--data", str(p("strings.npy"))], codes=(0, 1)))
    np.save(p("empty.npy"), np.zeros((0, 2)))
    cases.append(Case("an empty .npy as --data", ["check", str(good_onnx), str(good_onnx), "--data",
                                                  str(p("empty.npy"))], needle="no rows"))
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 3), }"
    header += " " * (118 - len(header)) + "\n"
    p("huge_header.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
                                     + bytes(64))
    cases.append(Case("a 200-byte .npy whose header declares 24 TiB, as --data",
                      ["check", str(good_onnx), str(good_onnx), "--data", str(p("huge_header.npy"))],
                      needle="header declares"))
    p("truncated.npy").write_bytes(p("empty.npy").read_bytes().replace(b"(0, 2)", b"(9, 2)"))
    cases.append(Case("a truncated .npy as --data", ["check", str(good_onnx), str(good_onnx), "--data",
                                                     str(p("truncated.npy"))], needle="header declares"))
    np.save(p("objects.npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases.append(Case("an object .npy (a pickle inside) as --data", ["check", str(good_onnx), str(good_onnx),
                                                                     "--data", str(p("objects.npy"))],
                      needle="unpickling"))
    p("not_npy.npy").write_bytes(b"hello, world")
    cases.append(Case("a text file named .npy as --data", ["check", str(good_onnx), str(good_onnx), "--data",
                                                           str(p("not_npy.npy"))], needle="not a valid .npy"))
    p("strings.csv").write_text("x,y\nfoo,bar\nbaz,qux\n")
    cases.append(Case("a string CSV as --data", ["check", str(good_onnx), str(good_onnx), "--data",
                                                 str(p("strings.csv"))], needle="numbers"))
    p("empty.csv").write_text("")
    cases.append(Case("an empty CSV as --data", ["check", str(good_onnx), str(good_onnx), "--data",
                                                 str(p("empty.csv"))], needle="empty"))
    # pandas took 85 s and 0.8 GB to build the 300,000 columns of three rows before the check said they do not fit
    p("wide.csv").write_text(",".join(f"c{i}" for i in range(300_000)) + "\n" + ",".join(["1.5"] * 300_000) + "\n")
    cases.append(Case("a CSV of 300,000 columns as --data", ["check", str(good_onnx), str(good_onnx), "--data",
                                                             str(p("wide.csv"))], needle="max_data_columns"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({f"c{i}": [1.5] for i in range(20_000)}), p("wide.parquet"))
    cases.append(Case("a Parquet file of 20,000 columns as --data", ["check", str(good_onnx), str(good_onnx),
                                                                     "--data", str(p("wide.parquet"))],
                      needle="max_data_columns"))
    os.symlink("loop_b.onnx", p("loop_a.onnx"))  # said "no such file or folder", which the user could not see why
    os.symlink("loop_a.onnx", p("loop_b.onnx"))
    os.symlink("gone.onnx", p("to_nothing.onnx"))
    for argv, needle in ((["inspect", str(p("loop_a.onnx"))], "loop of symbolic links"),
                         (["convert", str(p("loop_a.onnx")), "--to", "nnef"], "loop of symbolic links"),
                         (["check", str(good_onnx), str(p("to_nothing.onnx"))], "symbolic link to 'gone.onnx'"),
                         (["check", str(good_onnx), str(good_onnx), "--data", str(p("loop_b.onnx"))], "loop")):
        cases.append(Case(f"a symbolic link to nothing or in a loop: portable {argv[0]}"
                          + (" --data" if "--data" in argv else ""), argv, needle=needle))

    # ---- pipes and devices under a model's or a data file's name -------------------------------------------------
    # opening a FIFO waits for a writer; /dev/zero and /dev/urandom say size 0 and never end (a PFA document, a
    # pickle for `audit`, a YAML file: 24 GB of memory, then the kernel's OOM kill)
    os.mkfifo(p("pipe.onnx"))
    os.mkfifo(p("pipe.pkl"))
    for name, target in [("zero.json", "/dev/zero"), ("random.yaml", "/dev/urandom"), ("zero.pkl", "/dev/zero"),
                         ("zero.csv", "/dev/zero"), ("zero.npy", "/dev/zero")]:
        os.symlink(target, p(name))
    for argv, needle in [(["inspect", str(p("pipe.onnx"))], "named pipe"),
                         (["inspect", str(p("zero.json"))], "character device"),
                         (["convert", str(p("random.yaml")), "--to", "onnx"], "character device"),
                         (["audit", str(p("zero.pkl"))], "character device"),
                         (["audit", str(p("pipe.pkl"))], "named pipe"),
                         (["check", str(good_onnx), str(p("pipe.onnx"))], "named pipe"),
                         (["check", str(good_onnx), str(good_onnx), "--data", str(p("zero.csv"))], "character device"),
                         (["check", str(good_onnx), str(good_onnx), "--data", str(p("zero.npy"))], "character device"),
                         (["check", str(good_onnx), str(good_onnx), "--data", str(p("pipe.pkl"))], "named pipe")]:
        cases.append(Case(f"a pipe or a device: portable {argv[0]} {Path(argv[-1] if argv[-1] != 'onnx' else argv[1]).name}"
                          + (" as --data" if "--data" in argv else ""), argv, needle=needle))

    # ---- careless paths ---------------------------------------------------------------------------------------
    m = p("m")
    m.mkdir()
    (m / "x.pfa").write_text(json.dumps(GOOD_PFA))
    cases.append(Case("-o the folder that holds the source, with --force",
                      ["convert", str(m / "x.pfa"), "--to", "nnef", "-o", str(m), "--force"], needle="holds",
                      after=_unchanged(m)))
    long_name, ok_name = "n" * 270 + ".onnx", "k" * 245 + ".onnx"  # a name's limit is 255 bytes
    for argv in (["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(p(long_name))], ["inspect", str(p(long_name))],
                 ["check", str(good_onnx), str(good_onnx), "--data", str(p(long_name[:-5] + ".csv"))]):
        cases.append(Case(f"a name of 270 characters: portable {argv[0]}" + (" --data" if "--data" in argv else ""),
                          argv, needle="more than file systems allow"))
    cases.append(Case("-o a name of 250 characters (its temporary file's name must fit too)",
                      ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(p(ok_name))], codes=(0,),
                      after=lambda: portable_loads(p(ok_name))))
    nnef_name = "q" * 255  # replacing it moved the old folder to '.{name}.old', 260 bytes: ENAMETOOLONG
    write_good_nnef(p(nnef_name))
    cases.append(Case("-o an existing NNEF folder whose name is 255 characters, with --force",
                      ["convert", str(m / "x.pfa"), "--to", "nnef", "-o", str(p(nnef_name)), "--force"], codes=(0,),
                      after=_both(lambda: portable_loads(p(nnef_name)), _no_temporaries(base))))
    os.mkfifo(p("out_fifo.onnx"))  # as root, `-o /dev/null --force` replaced the system's /dev/null by a file
    cases.append(Case("-o a named pipe, with --force", ["convert", str(m / "x.pfa"), "--to", "onnx", "-o",
                                                        str(p("out_fifo.onnx")), "--force"], needle="named pipe",
                      after=lambda: _assert_fifo(p("out_fifo.onnx"))))
    cases.append(Case("--report onto a named pipe, with --force",
                      ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(p("r_fifo.onnx")), "--force",
                       "--report", str(p("out_fifo.onnx"))], needle="named pipe",
                      after=lambda: (_assert_fifo(p("out_fifo.onnx")), _assert_missing(p("r_fifo.onnx")))))
    cases.append(Case("-o the source itself", ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(m / "x.pfa"),
                                                "--force"], needle="must not overwrite", after=_unchanged(m)))
    cases.append(Case("--report onto the source without --force",
                      ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(p("r1.onnx")), "--report",
                       str(m / "x.pfa")], needle="overwrite", after=_both(_unchanged(m),
                                                                               lambda: _assert_missing(p("r1.onnx")))))
    cases.append(Case("--report onto the source with --force",
                      ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(p("r2.onnx")), "--report",
                       str(m / "x.pfa"), "--force"], needle="must not overwrite", after=_unchanged(m)))
    cases.append(Case("check --report onto ORIGINAL with --force",
                      ["check", str(good_onnx), str(p("good.nnef")), "--report", str(good_onnx), "--force"],
                      needle="must not overwrite", after=_unchanged(good_onnx)))
    cases.append(Case("check --report into the CONVERTED folder",
                      ["check", str(good_onnx), str(good), "--report", str(good / "r.json"), "--force"],
                      needle="inside the model folder", after=_unchanged(good)))
    precious = p("precious.json")
    precious.write_text("{}")
    cases.append(Case("check --report over an existing file without --force",
                      ["check", str(good_onnx), str(good_onnx), "--report", str(precious)], needle="already exists",
                      after=_unchanged(precious)))
    dangling = p("dangling.onnx")
    os.symlink(p("nowhere/at/all.onnx"), dangling)
    cases.append(Case("-o a dangling symlink without --force",
                      ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(dangling)], needle="symlink",
                      after=lambda: _assert_dangling(dangling)))
    existing_dir = p("existing_dir")
    existing_dir.mkdir()
    (existing_dir / "keep.txt").write_text("keep")
    cases.append(Case("-o an existing folder with --force for ONNX",
                      ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", str(existing_dir), "--force"],
                      needle="folder", after=_unchanged(existing_dir)))
    cases.append(Case("-o an existing non-NNEF folder with --force for NNEF",
                      ["convert", str(m / "x.pfa"), "--to", "nnef", "-o", str(existing_dir), "--force"],
                      needle="not an NNEF model", after=_unchanged(existing_dir)))
    cases.append(Case("-o /proc/x", ["convert", str(m / "x.pfa"), "--to", "onnx", "-o", "/proc/portable-x.onnx"],
                      needle="cannot write"))
    cases.append(Case("-o into a missing folder", ["convert", str(m / "x.pfa"), "--to", "onnx", "-o",
                                                   str(p("missing/sub/x.onnx"))], needle="does not exist"))
    cases.append(Case("-o a file used as a folder", ["convert", str(m / "x.pfa"), "--to", "onnx", "-o",
                                                     str(precious / "x.onnx")], needle="not a folder",
                      after=_unchanged(precious)))
    cases.append(Case("no temporary file left by any of the above", ["formats"], codes=(0,),
                      after=_both(_no_temporaries(base), _no_temporaries(m))))
    return cases


def _big_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def portable_loads(path: Path) -> None:
    import portable

    portable.load(path)


def _assert_fifo(path: Path) -> None:
    import stat

    assert stat.S_ISFIFO(os.lstat(path).st_mode), f"{path} was replaced"


def _assert_missing(path: Path) -> None:
    assert not os.path.lexists(path), f"{path} was written"


def _assert_dangling(path: Path) -> None:
    assert path.is_symlink() and not path.exists(), f"{path} was replaced"


def _write_deep_onnx(path: Path, depth: int) -> None:
    """The protobuf bytes of a model whose If nodes nest their then-branches `depth` deep, written field by field
    (onnx's own builders cannot make it: protobuf refuses to parse nesting beyond 100 levels)."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            low, n = n & 0x7F, n >> 7
            if not n:
                return out + bytes([low])
            out += bytes([low | 0x80])

    def field_bytes(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    graph = b""
    for _ in range(depth):  # GraphProto.node(1) -> NodeProto.attribute(5) -> AttributeProto.g(6) -> GraphProto
        attribute = field_bytes(1, b"then_branch") + b"\x20" + varint(5) + field_bytes(6, graph)
        graph = field_bytes(1, field_bytes(4, b"If") + field_bytes(5, attribute))
    opset = field_bytes(1, b"") + b"\x10" + varint(17)
    path.write_bytes(b"\x08" + varint(8) + field_bytes(7, graph) + field_bytes(8, opset))


def _write_graph_onnx(path: Path, nodes: list[tuple[str, list[str], list[str], str]], *,
                      extra_opsets: dict[str, int] | None = None, short_initializer: bool = False,
                      gather_past_the_end: bool = False) -> None:
    """A float [N, 2] -> [N, 2] graph of the given nodes, saved without onnx's checker (the cases are models it or
    onnxruntime refuses)."""
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    X = h.make_tensor_value_info("X", TP.FLOAT, [None, 2])
    Y = h.make_tensor_value_info("Y", TP.FLOAT, [None, 2])
    made = [h.make_node(op, inputs, outputs, domain=domain or None, **({"axis": 1} if op == "Gather" else {}))
            for op, inputs, outputs, domain in nodes]
    initializers = [nh.from_array(np.array([5, 6], np.int64), "I")] if gather_past_the_end else []
    if short_initializer:
        w = nh.from_array(np.ones((2, 2), np.float32), "W")
        w.dims[:] = [2, 2 ** 40]
        initializers.append(w)
    opsets = [h.make_opsetid("", 17)] + [h.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = h.make_model(h.make_graph(made, "g", [X], [Y], initializers), opset_imports=opsets)
    path.write_bytes(model.SerializeToString())


def _write_identity_onnx(path: Path, shape: list[int | None]) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("variable", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["variable"])], "wide", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _write_external_onnx(path: Path, location: str) -> None:
    """An ONNX model whose initializer's bytes live in an external file at `location` (read by onnx.load)."""
    import onnx
    from onnx import TensorProto, helper

    w = TensorProto()
    w.name, w.data_type = "W", TensorProto.FLOAT
    w.dims.extend([4])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Add", ["X", "W"], ["variable"])], "ext", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def registrar(cases: dict) -> Callable[[str], Callable[[Callable[[Path], Any]], Callable[[Path], Any]]]:
    """The `@case(name)` decorator of a `CASES` table: it records `build(base)` under `name`."""
    def case(name: str) -> Callable[[Callable[[Path], Any]], Callable[[Path], Any]]:
        def register(build: Callable[[Path], Any]) -> Callable[[Path], Any]:
            cases[name] = build
            return build
        return register
    return case


def build_cases(cases: dict, base: Path, names: list[str] | None = None) -> list[Case]:
    """Write the cases of a `CASES` table (all, or those named) below `base` and return them, each named."""
    base.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in cases.items():
        if names is not None and name not in names:
            continue
        c = build(base)
        c.name = name
        out.append(c)
    return out
