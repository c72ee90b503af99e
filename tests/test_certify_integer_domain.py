"""Certificates over integer columns (issue 19): the mutation benchmark's certify pass reported "certified
wrongly" for a threshold mutation of the float64 XGBoost / LightGBM titanic pipelines with categories. The split
moved (a few float32 steps, e.g. `pclass < 3.0` to `pclass < 2.9999990`) reads `pclass`, whose training values are
all integers: the certificate's domain says so (`integer: True`), and on every integer value the mutated artifact
routes as the original does, so the certified bound holds there. The benchmark's verification counted rows with
`pclass = 2.9999995` as inside the domain (it checked the training box only); it now judges rows against the
certificate's own domain. Checked here against XGBoost / LightGBM's own predictions and onnxruntime."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_certify_mutations import OUTSIDE, CertifyPass, _exceeded, _inside  # noqa: E402
from benchmarks.mutations import _tree_arrays, mutate, numeric, real, sites, verification_rows  # noqa: E402
from benchmarks.mutations import feeds as bench_feeds  # noqa: E402

from . import pipelines  # noqa: E402

NAMES = ["titanic_xgboost_categories", "titanic_lightgbm_categories"]
_CACHE: dict[str, tuple] = {}


class _Steps:
    """The benchmark's threshold mutation with a chosen move (float32 steps) instead of a random one."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def integers(self, a: int, b: int) -> int:
        return abs(self.steps)

    def choice(self, xs: list) -> int:
        return 1 if self.steps > 0 else -1


def _feeds(rows, X) -> dict[str, np.ndarray]:
    """The artifact's inputs for the frame `rows` (categories as their strings, numbers as float64)."""
    return {c: (rows[c].astype(str).to_numpy() if X[c].dtype.kind not in "if" else
                rows[c].to_numpy(np.float64)).reshape(-1, 1) for c in X.columns}


def _goes_low(x: float, t: float, mode: int) -> bool:
    return {0: x <= t, 1: x < t, 2: x >= t, 3: x > t}[mode]


def _integer_column_mutation(name: str):
    """(estimator, X, original model, artifact, mutated model, info, certification): the first threshold
    mutation of the float64 artifact (4 float32 steps either way) on a split of an integer column that routes
    every integer as before, and which the benchmark keeps as real (some other value routes differently)."""
    if name in _CACHE:
        return _CACHE[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est, X, _ = pipelines.build(name)
        art = portable.convert(est, to="onnx", dtype="float64", check=False, data=X)
        sk = portable.load(est, data=X)
        columns = list(X.columns)
        integer = {j for j, c in enumerate(columns) if X[c].dtype.kind == "i"}
        for site in sites(art.proto, "threshold", None):
            for steps in (-4, 4):
                feat, thr, modes, _, _ = _tree_arrays(art.proto.graph.node[site[1]])
                j = site[3]
                if feat[j] not in integer or modes[j] > 3:
                    continue
                mutated, info = mutate(art.proto, "threshold", site, _Steps(steps))  # type: ignore[arg-type]
                old, new, mode = info["old"], info["new"], modes[j]
                ks = range(int(np.floor(min(old, new))) - 1, int(np.ceil(max(old, new))) + 2)
                if any(_goes_low(k, old, mode) != _goes_low(k, new, mode) for k in ks):
                    continue  # the move changes an integer's route: a mutation inside the domain
                m = portable.load(mutated)
                Xn, frame_cols = numeric(X)
                vrows = verification_rows(Xn, info, mutated, np.random.default_rng(0))
                if not real(sk, m, vrows, frame_cols, X, base=art, est=est):
                    continue  # the benchmark would not keep it (the node is not reached, say)
                res = portable.certify(sk, m, data=X)
                _CACHE[name] = (est, X, sk, art, m, info, res, columns[feat[j]])
                return _CACHE[name]
    pytest.skip(f"{name}: no split of an integer column")


@pytest.mark.parametrize("name", NAMES)
def test_threshold_moved_between_integers_is_certified_and_holds_on_every_integer(name: str) -> None:
    est, X, sk, art, m, info, res, column = _integer_column_mutation(name)
    dom = {c["input"]: c for c in res.domain.to_dict()["columns"]}
    assert dom[column]["integer"] is True
    probs = res.certificates["probabilities"]
    assert probs.status == "certified", probs.reason
    # every integer value of the column, with every training row: the library and onnxruntime within the bound
    lo, hi = int(dom[column]["lo"]), int(dom[column]["hi"])
    rows = X.loc[X.index.repeat(hi - lo + 1)].reset_index(drop=True)
    rows[column] = np.tile(np.arange(lo, hi + 1), len(X)).astype(X[column].dtype)
    ours = m.run(_feeds(rows, X))["probabilities"]
    native = est.predict_proba(rows)
    assert np.abs(ours - native).max() <= probs.bound * (1 + 1e-9) + 1e-300
    # between the integers the mutation is real: on the benchmark's rows reaching the node with a non-integer
    # value, the library and the mutated artifact differ
    Xn, frame_cols = numeric(X)
    vrows = verification_rows(Xn, info, m.proto, np.random.default_rng(0))
    j = list(X.columns).index(column)
    vrows = vrows[vrows[:, j] != np.round(vrows[:, j])]
    fed = bench_feeds(sk, vrows, frame_cols, X)
    native = est.predict_proba(sk.to_frame_or_array(fed))
    assert np.abs(m.run(fed)["probabilities"] - native).max() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_verification_judges_rows_against_the_certificates_domain(name: str) -> None:
    est, X, sk, art, m, info, res, column = _integer_column_mutation(name)
    Xn, frame_cols = numeric(X)
    vrows = verification_rows(Xn, info, m.proto, np.random.default_rng(0))
    assert real(sk, m, vrows, frame_cols, X, base=art, est=est)  # the benchmark keeps it as a real mutation
    assert _exceeded(sk, m, res, vrows, frame_cols, X) == ""
    assert CertifyPass().mutation(name, "threshold", sk, m, X, X, vrows, frame_cols, est, info, base=art) == OUTSIDE
    inside = _inside(vrows, X, res.domain, sk, frame_cols)
    j = list(X.columns).index(column)
    assert len(inside) and (inside[:, j] == np.round(inside[:, j])).all()
    assert len(_inside(Xn, X, res.domain, sk, frame_cols)) == len(Xn)  # every training row is inside


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_certified_bound_holds_against_the_library_on_random_domain_rows(name: str, seed: int) -> None:
    est, X, sk, art, m, info, res, column = _integer_column_mutation(name)
    rng = np.random.default_rng(seed)
    n = 300
    rows = X.iloc[rng.integers(0, len(X), n)].reset_index(drop=True)
    for c in res.domain.to_dict()["columns"]:
        if "lo" in c:
            v = rng.uniform(c["lo"], c["hi"], n)
            if c["integer"]:
                v = np.round(v)
            if c["nan"]:
                v[rng.random(n) < 0.1] = np.nan
            rows[c["input"]] = v.astype(np.float64)
    probs = res.certificates["probabilities"]
    diff = np.abs(m.run(_feeds(rows, X))["probabilities"] - est.predict_proba(rows)).max()
    assert diff <= probs.bound * (1 + 1e-9) + 1e-300
