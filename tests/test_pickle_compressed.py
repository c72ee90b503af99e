"""Pickles compressed by joblib.dump, named as joblib picks the compression (`model.pkl.gz`, `model.joblib.xz`,
`model.z`...): `load`, `convert`, `inspect` and `audit` all read them, and agree on a decompression bomb.

joblib.dump compresses by the file name's extension alone (`joblib.compressor`'s `extension` of each compressor),
so a user who writes `joblib.dump(model, "model.pkl.gz")` gets a gzip stream. `portable audit` read such files
(it classifies by content) while `load`/`convert`/`inspect` refused them by name ("not a format portable
recognises"). Every prediction is compared with scikit-learn's own model.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pickle
import subprocess
import sys
import zlib

import numpy as np
import pytest

import portable
from portable.errors import UnknownFormatError
from portable.limits import LimitError

#: The compressions joblib.dump picks by extension, with the module that recognises each stream's magic bytes.
EXTENSIONS = [".z", ".gz", ".bz2", ".lzma", ".xz", ".lz4"]
#: Each compressor's own decompression, to show that joblib really wrote that compression.
DECOMPRESS = {".z": zlib.decompress, ".gz": gzip.decompress, ".bz2": bz2.decompress,
              ".lzma": lambda b: lzma.decompress(b, format=lzma.FORMAT_ALONE), ".xz": lzma.decompress}


@pytest.fixture(scope="module")
def fitted():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    est = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0))
    return est.fit(X, y), X


def _needs(ext: str) -> None:
    if ext == ".lz4":
        pytest.importorskip("lz4")


@pytest.mark.parametrize("stem", ["model.pkl", "model.joblib", "model.pickle", "model"])
@pytest.mark.parametrize("ext", EXTENSIONS)
def test_joblib_compressed_by_name_loads_converts_and_audits(tmp_path, fitted, stem, ext):
    _needs(ext)
    import joblib

    est, X = fitted
    path = tmp_path / f"{stem}{ext}"
    joblib.dump(est, path)  # the extension alone picks the compression
    if ext in DECOMPRESS:
        raw = DECOMPRESS[ext](path.read_bytes())  # really compressed with that compressor
        assert raw[:1] == b"\x80"
    assert portable.audit(path).safe
    model = portable.load(path)
    assert model.format == "pickle"
    np.testing.assert_array_equal(model.estimator.predict_proba(X), est.predict_proba(X))
    art = portable.convert(path, to="onnx", check=False)
    assert art.format == "onnx"
    import onnxruntime as ort

    sess = ort.InferenceSession(str(art.save(tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {name: X.astype(np.float32)})))
    label = next(v for k, v in outs.items() if "label" in k)
    np.testing.assert_array_equal(np.asarray(label).ravel(), est.predict(X))


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_explicit_compress_argument_with_a_compressed_name(tmp_path, fitted, ext):
    """`compress=(name, level)` with a compressed name: the tuple wins over the name in joblib.dump."""
    _needs(ext)
    import joblib

    est, X = fitted
    path = tmp_path / f"m.joblib{ext}"
    joblib.dump(est, path, compress=("zlib", 3))
    np.testing.assert_array_equal(portable.load(path).estimator.predict_proba(X), est.predict_proba(X))


def test_cli_inspect_and_convert_a_pkl_gz(tmp_path, fitted):
    import joblib

    est, _X = fitted
    path = tmp_path / "model.pkl.gz"
    joblib.dump(est, path)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for args in (["inspect", str(path)], ["audit", str(path)],
                 ["convert", str(path), "--to", "onnx", "--no-check"]):
        run = subprocess.run([sys.executable, "-m", "portable", *args], capture_output=True, text=True,
                             timeout=300, env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
    assert (tmp_path / "model.onnx").is_file()  # `.pkl.gz` is one suffix: model.onnx, not model.pkl.onnx


def test_other_compressed_files_are_not_claimed(tmp_path):
    """A compressed data file or another format compressed is not a pickle by its name."""
    for name in ("data.csv.gz", "model.onnx.gz", "notes.txt.xz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
        with pytest.raises(UnknownFormatError):
            portable.load(path)
    fake = tmp_path / "fake.gz"  # named like joblib's gzip but not gzip inside
    fake.write_bytes(b"just text")
    with pytest.raises(UnknownFormatError):
        portable.load(fake)


#: A pickle of 70 MiB of zero bytes: past the 64 MiB floor of `max_compression_ratio`, and each compressor makes it
#: far more than 200 times smaller.
_BOMB = 70 << 20


@pytest.fixture(scope="module")
def bomb_payload() -> bytes:
    return pickle.dumps(bytes(_BOMB), protocol=4)


_COMPRESS = {".z": lambda b: zlib.compress(b, 1), ".gz": lambda b: gzip.compress(b, 1),
             ".bz2": lambda b: bz2.compress(b, 1),
             ".lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE, preset=0),
             ".xz": lambda b: lzma.compress(b, preset=0)}


@pytest.mark.parametrize("ext", sorted(_COMPRESS))
def test_decompression_bomb_is_refused_alike_by_load_and_audit(tmp_path, bomb_payload, ext):
    path = tmp_path / f"bomb.pkl{ext}"
    path.write_bytes(_COMPRESS[ext](bomb_payload))
    assert path.stat().st_size * 200 < _BOMB
    with pytest.raises(LimitError) as err:
        portable.load(path)
    assert err.value.limit == "max_compression_ratio" and "bomb.pkl" in str(err.value)
    result = portable.audit(path)
    assert not result.safe
    assert "max_compression_ratio" in result.verdict and "Error" not in result.verdict
    run = subprocess.run([sys.executable, "-m", "portable", "inspect", str(path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1 and "max_compression_ratio" in run.stderr and "Traceback" not in run.stderr
