"""Fuzzing the loader (issue 12): hypothesis mutates valid pickles and joblib files (bytes flipped, ranges cut
or repeated, 8-byte words inside the arrays overwritten with hostile integers, streams truncated), and every
mutant either loads — and then predicts without crashing, in-process — or is refused with a PortableError.

The whole hypothesis run happens in a subprocess with a memory and time bound, so a crash (a segfault in
numpy or scikit-learn) fails this test instead of killing the test run; the subprocess names the file it was
on. More examples: PORTABLE_FUZZ_EXAMPLES=2000.
"""
from __future__ import annotations

import os
from pathlib import Path

from .hostile.run import run_python

_FUZZ = r"""
import io, os, pickle, sys, warnings, zlib
from pathlib import Path
warnings.simplefilter("ignore")
import numpy as np
import joblib
from hypothesis import HealthCheck, given, settings, strategies as st
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.linear_model import LogisticRegression
from portable.errors import PortableError
from portable.safety import safe_load

X, y = load_iris(return_X_y=True)
models = {
    "forest": RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, y),
    "hgb": HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y),
    "kdtree": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
    "balltree": KNeighborsClassifier(algorithm="ball_tree").fit(X, y),
    "sparse_knn": KNeighborsClassifier(algorithm="brute").fit(sp.csr_matrix(X), y),
    "svc": SVC().fit(X, y),
    "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y),
}
seeds = []
for name, est in models.items():
    for proto in (2, 5):
        seeds.append((f"{name}-p{proto}", pickle.dumps(est, protocol=proto), None))
    buf = io.BytesIO(); joblib.dump(est, buf); seeds.append((f"{name}-joblib", buf.getvalue(), None))
    buf = io.BytesIO(); joblib.dump(est, buf, compress=("zlib", 1))
    seeds.append((f"{name}-joblib-zlib", zlib.decompress(buf.getvalue()), "zlib"))
HOSTILE = [-1, -2, -7, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -(2**63), 10**9, 1, 0, 3]
work = Path(sys.argv[1])
counts = {"loaded": 0, "refused": 0}

@st.composite
def mutant(draw):
    name, data, comp = draw(st.sampled_from(seeds))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "byte", "word", "word", "cut", "dup", "truncate"]))
        n = len(data)
        if n < 16:
            break
        at = draw(st.integers(0, n - 9))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.integers(0, 255))
        elif kind == "word":
            at -= at % 8
            data[at:at + 8] = (draw(st.sampled_from(HOSTILE)) % 2**64).to_bytes(8, "little")
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "dup":
            span = bytes(data[at:at + draw(st.integers(1, 64))])
            data[at:at] = span
        else:
            del data[at:]
    out = bytes(data)
    return name, (zlib.compress(out) if comp else out)

@settings(max_examples=int(sys.argv[2]), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(mutant())
def fuzz(case):
    name, data = case
    path = work / f"{name}.pkl"
    path.write_bytes(data)
    print("start", name, len(data), flush=True)
    (work / "last.bin").write_bytes(data)
    try:
        obj, _ = safe_load(path)
    except PortableError:
        counts["refused"] += 1
        return
    counts["loaded"] += 1
    if hasattr(obj, "predict"):
        try:
            obj.predict(sp.csr_matrix(X) if name.startswith("sparse") else X)
        except Exception:
            pass  # scikit-learn refusing a mutated model is fine; crashing is not

fuzz()
print("done", counts, flush=True)
"""


def test_mutated_pickles_and_joblib_files_load_or_are_refused_never_crash(tmp_path):
    examples = os.environ.get("PORTABLE_FUZZ_EXAMPLES", "300")
    run = run_python(_FUZZ, str(tmp_path), examples, timeout=900, cwd=Path(__file__).resolve().parents[1])
    last = [ln for ln in run.stdout.splitlines() if ln.startswith("start")][-1:]
    assert run.returncode == 0, (run.returncode, last, run.output[-3000:])
    assert "done" in run.stdout, run.output[-3000:]
