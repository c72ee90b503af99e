"""Hostile and corrupt inputs found by a second pass over portable (issue 12, "verified on hostile files nobody
here has seen"), beyond `files.py`'s corpus. Every file is written by these functions.

`CASES` maps a case's name to a function `build(base) -> Case` that writes the case's files below `base` and
returns the command line to run, the exit codes allowed, a phrase the one-paragraph message must hold, and a check
of the files afterwards. `test_hostile_unseen` runs them all through `cli_harness` in one subprocess under a time
and memory bound (a segfault fails the test that was running, named in the harness's `.running` file).
"""
from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .files import GOOD_PFA, Case, _unchanged, build_cases, registrar

CASES: dict[str, Callable[[Path], Case]] = {}
case = registrar(CASES)


def _save(model, path: Path, ir_version: int = 8) -> Path:
    model.ir_version = ir_version
    path.write_bytes(model.SerializeToString())
    return path


def _relu_onnx(path: Path, x, y) -> Path:
    from onnx import helper as h

    return _save(h.make_model(h.make_graph([h.make_node("Relu", ["X"], ["Y"])], "g", [x], [y]),
                              opset_imports=[h.make_opsetid("", 17)]), path)


def build_unseen(base: Path, names: list[str] | None = None) -> list[Case]:
    """Write the cases (all, or those named) below `base` and return them, each named."""
    return build_cases(CASES, base, names)


# ---- ONNX inputs the checker generates rows for ----------------------------------------------------------------

@case("an ONNX input of width 0 ([N, 0]) is checked, not a KeyError")
def _zero_width(base: Path) -> Case:
    from onnx import TensorProto as TP
    from onnx import helper as h

    path = _relu_onnx(base / "zero_width.onnx", h.make_tensor_value_info("X", TP.FLOAT, [None, 0]),
                      h.make_tensor_value_info("Y", TP.FLOAT, [None, 0]))
    return Case("", ["check", str(path), str(path), "--samples", "20"], codes=(0,))


@case("an ONNX model without inputs is refused by the check, not reported NOT equivalent to itself")
def _no_inputs(base: Path) -> Case:
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    y = h.make_tensor_value_info("Y", TP.FLOAT, [None, 2])
    node = h.make_node("Constant", [], ["Y"], value=nh.from_array(np.ones((1, 2), np.float32)))
    path = _save(h.make_model(h.make_graph([node], "g", [], [y]), opset_imports=[h.make_opsetid("", 17)]),
                 base / "constant.onnx")
    return Case("", ["check", str(path), str(path), "--samples", "20"], needle="takes no inputs")


# ---- ONNX files: what a reader is told, and what it reads ------------------------------------------------------

@case("an ONNX input that is a sequence is refused naming the file")
def _sequence_input(base: Path) -> Case:
    from onnx import TensorProto as TP
    from onnx import helper as h

    s = h.make_tensor_sequence_value_info("S", TP.FLOAT, [None, 2])
    y = h.make_tensor_value_info("Y", TP.FLOAT, [None, 2])
    path = _save(h.make_model(h.make_graph([h.make_node("ConcatFromSequence", ["S"], ["Y"], axis=0)], "g", [s], [y]),
                              opset_imports=[h.make_opsetid("", 17)]), base / "sequence_in.onnx")
    return Case("", ["inspect", str(path)], needle="sequence_in.onnx: the input 'S' is not a tensor")


def _external(path: Path, entries: list[tuple[str, int, int | None]], dims: int) -> Path:
    """An ONNX model whose initializers W0, W1... (float, `dims` values each) live in external files: (location,
    offset, length or None) per initializer, all added to X."""
    from onnx import TensorProto
    from onnx import helper as h

    inits, nodes, prev = [], [], "X"
    for i, (location, offset, length) in enumerate(entries):
        w = TensorProto()
        w.name, w.data_type, w.data_location = f"W{i}", TensorProto.FLOAT, TensorProto.EXTERNAL
        w.dims.extend([dims])
        for key, value in (("location", location), ("offset", offset), ("length", length)):
            if value is not None:
                entry = w.external_data.add()
                entry.key, entry.value = key, str(value)
        inits.append(w)
        out = "Y" if i == len(entries) - 1 else f"t{i}"
        nodes.append(h.make_node("Add", [prev, w.name], [out]))
        prev = out
    x = h.make_tensor_value_info("X", TensorProto.FLOAT, [None, dims])
    y = h.make_tensor_value_info("Y", TensorProto.FLOAT, [None, dims])
    model = h.make_model(h.make_graph(nodes, "ext", [x], [y], initializer=inits),
                         opset_imports=[h.make_opsetid("", 17)])
    return _save(model, path)


@case("ONNX external data of a sparse 5 GiB file is refused before onnx reads it")
def _external_sparse(base: Path) -> Case:
    folder = base / "ext_sparse"
    folder.mkdir()
    with open(folder / "weights.bin", "wb") as f:
        f.truncate(5 << 30)  # sparse: no disk space, but `onnx.load` read all 5 GiB into memory
    path = _external(folder / "model.onnx", [("weights.bin", 0, None)], 4)
    return Case("", ["inspect", str(path)], needle="max_tensor_bytes")


@case("ONNX external data naming one region many times adds up against max_archive_bytes")
def _external_many(base: Path) -> Case:
    folder = base / "ext_many"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(np.ones(1 << 16, np.float32).tobytes())  # 256 KiB
    path = _external(folder / "model.onnx", [("weights.bin", 0, 1 << 18)] * 64, 1 << 16)  # 16 MiB read
    return Case("", ["--limit", "max_archive_bytes=4000000", "inspect", str(path)], needle="max_archive_bytes")


@case("ONNX external data within the limits still loads")
def _external_fine(base: Path) -> Case:
    folder = base / "ext_fine"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(np.arange(8, dtype=np.float32).tobytes())
    path = _external(folder / "model.onnx", [("weights.bin", 0, 16), ("weights.bin", 16, None)], 4)
    return Case("", ["check", str(path), str(path), "--samples", "20"], codes=(0,))


@case("an .onnx file larger than protobuf can parse is refused before it is read")
def _onnx_too_big(base: Path) -> Case:
    path = base / "huge.onnx"
    with open(path, "wb") as f:
        f.truncate(3 << 30)  # sparse
    return Case("", ["inspect", str(path)], needle="protobuf")


# ---- pickles: the place named in the message --------------------------------------------------------------------

def _pickle_case(name: str, data: bytes, needle: str) -> Callable[[Path], Case]:
    def build(base: Path) -> Case:
        path = base / f"{name}.pkl"
        path.write_bytes(data)
        return Case("", ["inspect", str(path)], needle=needle)
    return build


for _name, _data, _needle in [
        # a known opcode whose argument is cut short or malformed is not "the first byte is not a pickle opcode"
        ("proto_only", b"\x80", "truncated pickle: the data ends at byte 0"),
        ("long4_cut", b"\x80\x02" + pickle.LONG4 + struct.pack("<i", 2 ** 31 - 1) + b"\x01.",
         "truncated pickle: the data ends at byte 2"),
        ("int_not_a_number", b"I99x\n.", "invalid literal for int()"),
        ("long4_negative", b"\x80\x02" + pickle.LONG4 + struct.pack("<i", -5) + b".", "corrupt pickle at byte 2"),
        ("bad_utf8", b"\x80\x04X\x02\x00\x00\x00\xff\xfe.", "corrupt pickle at byte 2: UnicodeDecodeError"),
        ("stop_on_empty_stack", b"\x80\x02.", "corrupt pickle at byte 2: STOP with nothing on the stack"),
        ("setitem_without_dict", b"\x80\x02K\x01K\x02s.", "corrupt pickle at byte 6: stack underflow"),
        ("not_an_opcode", b"\xfe\x01\x02", "the first byte b'\\xfe' is not a pickle opcode")]:
    case(f"pickle: {_name.replace('_', ' ')}")(_pickle_case(_name, _data, _needle))


# ---- datetime64 dtypes whose state lacks its unit: numpy's __setstate__ crashed the interpreter -------------------

class _Dtype:
    def __init__(self, code: str, state: tuple) -> None:
        self.code, self.state = code, state

    def __reduce__(self) -> tuple:
        return np.dtype, (self.code, False, True), self.state


class _Array:
    def __init__(self, dtype: _Dtype, data: bytes) -> None:
        self.dtype, self.data = dtype, data

    def __reduce__(self) -> tuple:
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), self.dtype, False, self.data)


def _fitted():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    return LinearRegression().fit(rng.normal(size=(30, 3)), rng.normal(size=30))


def datetime_without_unit(code: str) -> bytes:
    """A fitted model holding an array whose `code` ('M8' or 'm8') dtype has an 8-entry state (no unit)."""
    model = _fitted()
    model.when_ = _Array(_Dtype(code, (3, "<", None, None, None, -1, -1, 0)), b"\x01" * 8)
    return pickle.dumps(model, protocol=4)


def joblib_datetime_without_unit(path: Path) -> None:
    """joblib.dump of a float model whose array wrapper's dtype is turned into 'M8' (same length: the frame holds)
    with numpy.dtype's 8-entry state."""
    import joblib

    model = _fitted()
    joblib.dump(model, path)
    data = path.read_bytes()
    honest = b"\x8c\x02f8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<"
    assert data.count(honest) == 1, "joblib wrote the coefficients' dtype differently"
    path.write_bytes(data.replace(honest, honest.replace(b"f8", b"M8"), 1))


def _dtype_case(code: str) -> Callable[[Path], Case]:
    def build(base: Path) -> Case:
        path = base / f"dtype_{code}_no_unit.pkl"
        path.write_bytes(datetime_without_unit(code))
        return Case("", ["inspect", str(path)], needle="without its unit metadata")
    return build


for _code in ("M8", "m8"):
    CASES[f"a pickled {_code} dtype without its unit (a segfault)"] = _dtype_case(_code)


@case("a joblib array whose dtype is M8 without its unit (a segfault)")
def _joblib_datetime(base: Path) -> Case:
    path = base / "datetime.joblib"
    joblib_datetime_without_unit(path)
    return Case("", ["inspect", str(path)], needle="without its unit metadata")


@case("a pickled model with honest datetime64 and timedelta64 arrays still loads")
def _datetime_fine(base: Path) -> Case:
    model = _fitted()
    model.when_ = np.array(["2020-01-01", "NaT"], dtype="M8[D]")
    model.gap_ = np.array([5], dtype="m8[ms]")
    model.rec_ = np.zeros(2, dtype=[("a", "M8[s]"), ("b", "f8")])
    path = base / "datetime_fine.pkl"
    path.write_bytes(pickle.dumps(model, protocol=4))
    return Case("", ["inspect", str(path)], codes=(0,))


# ---- careless paths: the --data file and the -o folder --------------------------------------------------------

def _model_and_data(base: Path, name: str) -> tuple[Path, Path]:
    import json

    folder = base / name
    folder.mkdir()
    (folder / "x.json").write_text(json.dumps(GOOD_PFA))
    data = folder / "rows.npy"
    np.save(data, np.random.default_rng(0).normal(size=(20, 2)))
    return folder / "x.json", data


@case("-o the --data file with --force (ONNX) leaves the data intact")
def _output_onto_data(base: Path) -> Case:
    source, data = _model_and_data(base, "o_data_onnx")
    return Case("", ["convert", str(source), "--to", "onnx", "-o", str(data), "--data", str(data), "--force",
                     "--samples", "20"], needle="must not overwrite", after=_unchanged(data))


@case("-o the --data file with --force (NNEF: a folder would replace the file) leaves the data intact")
def _nnef_onto_data(base: Path) -> Case:
    source, data = _model_and_data(base, "o_data_nnef")
    return Case("", ["convert", str(source), "--to", "nnef", "-o", str(data), "--data", str(data), "--force",
                     "--samples", "20"], needle="must not overwrite", after=_unchanged(data))


@case("check --report onto the --data file with --force leaves the data intact")
def _report_onto_data(base: Path) -> Case:
    source, data = _model_and_data(base, "report_data")
    return Case("", ["check", str(source), str(source), "--data", str(data), "--report", str(data), "--force",
                     "--samples", "20"], needle="must not overwrite", after=_unchanged(data))


@case("--report inside the NNEF folder that -o --force replaces (the report was lost, exit 0)")
def _report_inside_output(base: Path) -> Case:
    from .files import write_good_nnef

    source, _ = _model_and_data(base, "report_inside")
    out = base / "report_inside" / "out.nnef"
    write_good_nnef(out)
    return Case("", ["convert", str(source), "--to", "nnef", "-o", str(out), "--force", "--report",
                     str(out / "report.json"), "--samples", "20"], needle="inside", after=_unchanged(out))


# ---- scikit-learn models whose fitted structure is malformed -------------------------------------------------

def _pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, (X[:, 0] > 0).astype(int))


def _column_transformer():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "c": rng.choice(["x", "y"], 40)})
    ct = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])])
    return make_pipeline(ct, LogisticRegression()).fit(df, (df.a > 0).astype(int))


def malformed_models() -> dict[str, object]:
    """Fitted models whose structure scikit-learn's own introspection (tags, is-fitted, named steps) fails on."""
    steps_text, steps_triples, steps_empty, ct = _pipeline(), _pipeline(), _pipeline(), _column_transformer()
    steps_text.steps = "abc"
    steps_triples.steps = [(name, est, 0) for name, est in steps_triples.steps]
    steps_empty.steps = []
    ct.steps[0][1].transformers_ = "abc"
    return {"steps_text": steps_text, "steps_triples": steps_triples, "steps_empty": steps_empty,
            "transformers_text": ct}


for _name in ("steps_text", "steps_triples", "steps_empty", "transformers_text"):
    def _build(base: Path, name: str = _name) -> Case:
        path = base / f"malformed_{name}.pkl"
        path.write_bytes(pickle.dumps(malformed_models()[name], protocol=5))
        return Case("", ["convert", str(path), "--to", "onnx", "--samples", "20"],
                    needle=f"malformed_{name}.pkl: scikit-learn cannot describe this Pipeline")
    CASES[f"a pickled Pipeline whose {_name.replace('_', ' ')} (a traceback from scikit-learn's tags)"] = _build


@case("a converter's failure on a corrupt pickle names the file")
def _converter_failure_named(base: Path) -> Case:
    model = _pipeline()
    model.steps[1][1].intercept_ = None  # skl2onnx: AttributeError ... 'astype'; said without the file's name
    path = base / "no_intercept.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    return Case("", ["convert", str(path), "--to", "onnx", "--samples", "20"], needle="no_intercept.pkl: skl2onnx")


# ---- data files ---------------------------------------------------------------------------------------------

@case("a CSV --data whose field is 50 MB of text: one short message naming the file (it printed 50 MB)")
def _csv_huge_field(base: Path) -> Case:
    from .files import write_good_onnx

    model = base / "for_data.onnx"
    if not model.exists():
        write_good_onnx(model)
    path = base / "huge_field.csv"
    with open(path, "w") as f:
        f.write('x,y\n"' + "a" * (50 << 20) + '",2\n1,2\n')
    return Case("", ["check", str(model), str(model), "--data", str(path), "--samples", "20"],
                needle="huge_field.csv: the data's column for input 'x' does not fit it")


@case("a CSV --data with a NUL byte in a number names the file")
def _csv_nul(base: Path) -> Case:
    from .files import write_good_onnx

    model = base / "for_data.onnx"
    if not model.exists():
        write_good_onnx(model)
    path = base / "nul.csv"
    path.write_bytes(b"x,y\n1,2\x00\n3,4\n")
    return Case("", ["check", str(model), str(model), "--data", str(path), "--samples", "20"],
                needle="nul.csv: the data's column")


# ---- PFA: built-in functions whose cost an argument sets, and emit documents ---------------------------------

def _pfa_case(name: str, doc: dict, needle: str, codes: tuple[int, ...] = (1,),
              limits: tuple[str, ...] = ("--limit", "max_pfa_routine_ms=2000")) -> Callable[[Path], Case]:
    def build(base: Path) -> Case:
        import json

        path = base / f"{name}.json"
        path.write_text(json.dumps(doc))
        return Case("", [*limits, "check", str(path), str(path), "--samples", "20"], codes=codes, needle=needle)
    return build


for _name, _doc, _needle in [
        # each built 2 billion characters one Python step at a time: hours, past every timeout
        ("rand_string_huge", {"input": "int", "output": "int",
                              "action": [{"s.len": [{"rand.string": [2000000000]}]}]}, "rand.string's string"),
        ("rand_bytes_huge", {"input": "int", "output": "int",
                             "action": [{"s.len": [{"rand.bytes": [2000000000]}]}]}, "rand.bytes' bytes"),
        # format() builds the padded or precise string in one C call: a MemoryError, or minutes
        ("number_width_huge", {"input": "double", "output": "int",
                               "action": [{"s.len": [{"s.number": ["input", {"int": 2000000000}, {"int": 3}]}]}]},
         "s.number's string"),
        ("number_precision_huge", {"input": "double", "output": "int",
                                   "action": [{"s.len": [{"s.number": ["input", None, 2000000000]}]}]},
         "s.number's string"),
        # the regex library compiles one copy per repeat (2 s a million) before a match's timeout applies
        ("regex_counted_repeat", {"input": "string", "output": "boolean",
                                  "action": [{"re.contains": ["input", {"string": "a{1000000000}"}]}]},
         "max_pfa_regex_size"),
        ("regex_nested_repeats", {"input": "string", "output": "boolean",
                                  "action": [{"re.contains": ["input", {"string": "((a{1000}){1000}){1000}"}]}]},
         "max_pfa_regex_size")]:
    CASES[f"PFA {_name.replace('_', ' ')}"] = _pfa_case(_name, _doc, _needle)

CASES["PFA a regular expression with a modest counted repeat still runs"] = _pfa_case(
    "regex_fine", {"input": "string", "output": "boolean",
                   "action": [{"re.contains": ["input", {"string": "^(ab){2,5}[0-9]{3}$"}]}]}, "", codes=(0,))
# each record emits a list: the checker's label search compared lists with numpy and raised ValueError
CASES["PFA emit document checked against itself"] = _pfa_case(
    "emit_twice", {"input": "double", "output": "double", "method": "emit",
                   "action": [{"emit": ["input"]}, {"if": {">": ["input", 0]}, "then": [{"emit": ["input"]}]}]},
    "", codes=(0,))


@case("a PFA document whose JSON holds a lone surrogate (\\ud800) is refused as not Unicode, not a UnicodeEncodeError")
def _pfa_surrogate(base: Path) -> Case:
    path = base / "surrogate.json"
    path.write_text('{"input": "double", "output": "double", "action": ["input"], "name": "x\\ud800"}')
    return Case("", ["inspect", str(path)], needle="surrogate.json: the PFA document holds text that is not valid")


# ---- NNEF folders -------------------------------------------------------------------------------------------

def _nnef_with_fifo(name: str) -> Callable[[Path], Case]:
    def build(base: Path) -> Case:
        from .files import write_good_nnef

        folder = base / f"fifo_{name.split('.')[0]}.nnef"
        write_good_nnef(folder)
        (folder / name).unlink()
        os.mkfifo(folder / name)
        return Case("", ["inspect", str(folder)], needle=f"{name}: is a named pipe")
    return build


for _file in ("portable.json", "variable1.dat"):  # said 'no portable.json' / 'has no tensor file'
    CASES[f"an NNEF folder whose {_file} is a named pipe says so"] = _nnef_with_fifo(_file)


@case("an empty zip archive named .skops is said to be one (it was 'corrupt pickle at byte 0')")
def _empty_zip(base: Path) -> Case:
    import zipfile

    path = base / "empty.skops"
    with zipfile.ZipFile(path, "w"):
        pass
    return Case("", ["inspect", str(path)], needle="empty zip archive")
