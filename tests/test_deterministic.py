"""The same source converts to the same bytes in every process (reproducible artifacts, cacheable in CI).

Each run is its own subprocess, two of them with the same PYTHONHASHSEED and one with another: set iteration
order and random names are the usual ways a converter's output changes from one run to the next.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    import hashlib, pathlib, sys, tempfile, warnings
    warnings.simplefilter("ignore")
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import portable
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from tests import pipelines

    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    text, tdf, _ = dict(pipelines.PIPELINES)["text_beside_numeric_columns"]()
    titanic, df, _ = dict(pipelines.PIPELINES)["titanic_gradient_boosting"]()
    jobs = [
        ("rf", RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y), "onnx", None),
        ("gbc64", GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y), "onnx", "float64"),
        ("text", text, "onnx", None),
        ("titanic", titanic, "onnx", None),
        ("pfa", sys.argv[2], "onnx", None),
        ("mlp-nnef", MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0).fit(X, y), "nnef", None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, source, to, dtype in jobs:
            kw = {"dtype": dtype} if dtype else {}
            if name in ("text", "titanic"):
                kw["data"] = df if name == "titanic" else tdf
            art = portable.convert(source, to=to, check=False, **kw)
            path = art.save(pathlib.Path(tmp) / (name + (".onnx" if to == "onnx" else ".nnef")))
            files = sorted(p for p in pathlib.Path(path).rglob("*") if p.is_file()) if pathlib.Path(path).is_dir() \\
                else [pathlib.Path(path)]
            digest = hashlib.sha256()
            for f in files:
                digest.update(f.name.encode() + f.read_bytes())
            print(name, digest.hexdigest())
""")


def _run(seed: str) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    doc = os.path.join(root, "tests", "pfa_docs", "compound_tree.yaml")
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, root, doc], capture_output=True, text=True,
                         timeout=300, env=env, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_conversions_are_byte_identical_across_processes() -> None:
    first, second, third = _run("1"), _run("2"), _run("1")
    assert first.count("\n") == 6
    assert first == second == third
