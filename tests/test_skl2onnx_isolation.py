"""portable changes skl2onnx only for the duration of one conversion (DESIGN §2).

A process that converted with portable gets from `skl2onnx.to_onnx` exactly the graph a fresh process gets;
the comparison runs each side in its own subprocess and compares the serialized models byte for byte, after
sorting the opset imports (skl2onnx emits them in set order, which changes with Python's string hashing from one
process to the next; both sides also get the same PYTHONHASHSEED).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent("""
    import hashlib, sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.impute import SimpleImputer
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    models = [RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y),
              make_pipeline(SimpleImputer(), StandardScaler(), SVC()).fit(X, y)]
    if sys.argv[1] == "after-portable":
        import portable
        for m in models:
            portable.convert(m, to="onnx", check=False)
            portable.convert(m, to="onnx", check=False, dtype="float64")
    import skl2onnx
    for m in models:
        proto = skl2onnx.to_onnx(m, X[:1].astype(np.float32), target_opset=17)
        # skl2onnx lists opset imports in set order (varies with string hashing): sort them first
        opsets = sorted((o.domain, o.version) for o in proto.opset_import)
        del proto.opset_import[:]
        for domain, version in opsets:
            proto.opset_import.add(domain=domain, version=version)
        print(type(m).__name__, hashlib.sha256(proto.SerializeToString()).hexdigest())
""")


def _run(mode: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_skl2onnx_after_portable_equals_fresh_process() -> None:
    fresh, after = _run("fresh"), _run("after-portable")
    assert fresh.count("\n") == 2
    assert after == fresh


def test_conversion_restores_skl2onnx_registries() -> None:
    pytest.importorskip("skl2onnx")
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    import portable
    from portable.converters.sklearn import bridge

    before = bridge._snapshot()
    X = np.random.default_rng(0).normal(size=(40, 3))
    portable.convert(RandomForestRegressor(n_estimators=3, random_state=0).fit(X, X[:, 0]), to="onnx", check=False)
    after = bridge._snapshot()
    for old, new in zip(before[:-1], after[:-1]):
        assert old == new
    assert before[-1] is after[-1]
