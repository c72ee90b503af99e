"""`container.open_head`: a file of at most `HEAD` bytes is read whole and loaded from memory, a larger one through
a buffered reader; either way the loaded model is what `pickle.load` gives, and the file checks stay (an empty
file, a folder, a missing file are refused with their messages)."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from portable.errors import InputError
from portable.safety import safe_load
from portable.safety.container import HEAD, open_head


def _pickle_of_size(size: int) -> bytes:
    """A protocol-4 pickle of a dict holding a uint8 array, padded with a short string to exactly `size` bytes."""
    arr = np.arange(size - 250, dtype=np.uint8)
    base = len(pickle.dumps({"a": arr, "pad": ""}, protocol=4))
    data = pickle.dumps({"a": arr, "pad": "x" * (size - base)}, protocol=4)  # a short string: 1 byte per char
    assert len(data) == size
    return data


@pytest.mark.parametrize("size", [HEAD - 1, HEAD, HEAD + 1, 3 * HEAD])
def test_small_and_large_files_load_as_pickle_loads_them(size, tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(_pickle_of_size(size))
    assert path.stat().st_size == size
    file, head = open_head(path)
    try:
        assert (type(file) is io.BytesIO) == (size <= HEAD)  # in memory only up to HEAD bytes
        assert head == path.read_bytes()[: len(head)] and head
        assert file.read() == path.read_bytes()  # the whole file, from its start
    finally:
        file.close()
    with open(path, "rb") as f:
        want = pickle.load(f)
    got, _notes = safe_load(path)
    assert sorted(got) == sorted(want) and got["pad"] == want["pad"]
    np.testing.assert_array_equal(got["a"], want["a"])
    assert got["a"].dtype == want["a"].dtype and got["a"].flags.writeable == want["a"].flags.writeable


def test_files_that_cannot_be_loaded_keep_their_messages(tmp_path):
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        safe_load(empty)
    with pytest.raises(InputError, match="directory"):
        safe_load(tmp_path)
    with pytest.raises(InputError):
        safe_load(tmp_path / "missing.pkl")
