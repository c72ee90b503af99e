"""The rows a check generates are a function of the pair and the seed alone, and stay what they were.

The mutation benchmark's figures rest on the generated rows (issue 13): making the checker faster must not move
a single bit of them, and neither must the machine: the rows were different bits on an AMD EPYC (AVX2) and on an
Intel Xeon (AVX-512) until the normal bump stopped using numpy's `log1p`, `sin` and `cos`, whose implementation
numpy picks by CPU. The hashes below are for models whose fitted parameters are exact on every machine (hand-set
coefficients, a tree fitted on integers); the last test computes them again with numpy's AVX-512 and AVX2 code
paths switched off (`NPY_DISABLE_CPU_FEATURES`), as on an older or another CPU.
A warm check (the pair's plan and rows kept), a check with the plan learned again and a check after other seeds
give the same report, number for number.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")

import portable  # noqa: E402
from portable.equivalence import _PLANS, _plan  # noqa: E402

# (model, samples, seed) -> sha256 of the generated batch (values, strings, sources), first 16 hex digits
PINNED = {
    ("logistic", 1000, 0): "dc5b66bfae694b47",
    ("logistic", 1000, 7): "262aff20c0f83e7b",
    ("logistic", 50, 12345): "08b38df42fa17a80",
    ("tree", 1000, 0): "da1bb3058cc30796",
    ("tree", 300, 3): "01e5fb91c3548fd9",
    ("mlp", 1000, 0): "81e5d69d9578f60a",
    ("mlp", 200, 99): "975d104be107fe90",
}


def _models() -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPRegressor
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    lr = LogisticRegression()
    lr.fit(rng.normal(size=(30, 10)), np.arange(30) % 3)
    lr.coef_ = np.round(rng.normal(size=(3, 10)), 2)  # exact, machine-independent parameters
    lr.intercept_ = np.array([0.25, -0.5, 0.125])
    X = rng.integers(0, 20, (200, 5)).astype(np.float64)
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, X[:, 0] + 2 * X[:, 1])
    mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=1).fit(rng.normal(size=(20, 6)), np.zeros(20))
    mlp.coefs_ = [np.round(rng.normal(size=c.shape), 2) for c in mlp.coefs_]
    mlp.intercepts_ = [np.round(rng.normal(size=c.shape), 2) for c in mlp.intercepts_]
    return {"logistic": lr, "tree": tree, "mlp": mlp}


def _digest(batch) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(batch.num).tobytes())
    h.update(repr(batch.txt.tolist()).encode())
    h.update(np.ascontiguousarray(batch.source).tobytes())
    return h.hexdigest()[:16]


def _report(original, art, samples, seed) -> dict:
    d = portable.check(original, art, samples=samples, seed=seed).to_dict()
    d.pop("seconds")
    return d


@pytest.fixture(scope="module")
def pairs():
    import warnings

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est in _models().items():
            original = portable.load(est)
            out[name] = (original, portable.convert(est, to="onnx", check=False, dtype="float32"))
    return out


@pytest.mark.parametrize("name,samples,seed", sorted(PINNED))
def test_generated_rows_are_pinned_and_every_check_reports_the_same(pairs, name, samples, seed):
    original, art = pairs[name]
    _PLANS.pop(art, None)
    first = _report(original, art, samples, seed)  # learns the plan and the label-boundary pool
    _, plan, _ = _plan(original, art, None)
    kept = plan.memo["generated"]
    assert kept[0] == (seed, samples)
    assert _digest(kept[1]) == PINNED[(name, samples, seed)]
    assert _report(original, art, samples, seed) == first  # warm: the kept rows
    _report(original, art, samples, seed + 1)  # another seed: rows generated again, then this seed's again
    assert _report(original, art, samples, seed) == first


def _digests() -> dict[str, str]:
    """The generated rows' digests of every pinned case, computed in this process."""
    import warnings

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = _models()
        for (name, samples, seed) in sorted(PINNED):
            original = portable.load(models[name])
            art = portable.convert(models[name], to="onnx", check=False, dtype="float32")
            portable.check(original, art, samples=samples, seed=seed)
            _, plan, _ = _plan(original, art, None)
            out[f"{name}/{samples}/{seed}"] = _digest(plan.memo["generated"][1])
    return out


def test_generated_rows_are_the_same_bits_whatever_numpy_code_paths_the_cpu_takes():
    """numpy's float32 log1p is SVML's with AVX-512 and the C library's without; its float32 sin/cos its own with
    AVX2 and the C library's without: with each level switched off in turn, the rows stay the pinned ones."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from numpy._core import _multiarray_umath as umath

    dispatch = set(getattr(umath, "__cpu_dispatch__", []))
    wide = [f for f in ("AVX512_SPR", "AVX512_ICL", "X86_V4", "AVX512_SKX", "AVX512F") if f in dispatch]
    older = wide + [f for f in ("X86_V3", "AVX2", "FMA3") if f in dispatch]
    levels = [lv for lv in (wide, older) if lv]
    if not levels:
        pytest.skip(f"numpy dispatches no x86 SIMD level here ({sorted(dispatch)})")
    want = {f"{n}/{s}/{seed}": v for (n, s, seed), v in PINNED.items()}
    root = Path(__file__).resolve().parents[1]
    for level in levels:
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(level), "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", "import json, tests.test_check_rows_pinned as t; "
                               "print(json.dumps(t._digests()))"], cwd=root, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == want, f"with {level} switched off"
