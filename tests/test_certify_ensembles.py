"""Certificates for ensembles of readable models and for models of documents (issue 19): calibrated classifiers
(sigmoid), soft voting and stacking of linear models, naive Bayes, text pipelines over their vectorizer's outputs.

Each kind: the correct conversion is certified and the bound is never below the difference scikit-learn and
onnxruntime show on dense samples of the domain; the mutation benchmark's coefficient and intercept mutations of
the artifact are refuted with a counterexample both runtimes reproduce, or certified with a bound the dense
samples respect. Property tests (hypothesis): random voting/stacking regressors over random boxes (soundness, and
tightness within 10x for mutated ones), random text pipelines (soundness over random documents).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable
from portable.certification.core import CERTIFIED, NOT_CERTIFIABLE, REFUTED
from portable.equivalence.compare import tolerance_for
from portable.formats.sklearn import SklearnModel

from .mutants import benchmark_mutations
from .test_certify_affine import sample_domain


def _fit(kind: str):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.naive_bayes import ComplementNB, MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    Xi, yi = load_iris(return_X_y=True)
    Xd, yd = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "calibrated_sigmoid":
            return make_pipeline(StandardScaler(), CalibratedClassifierCV(LinearSVC(), cv=3)).fit(Xi, (yi == 2).astype(int)), Xi
        if kind == "soft_voting":
            return VotingClassifier([("lr", LogisticRegression(max_iter=2000)),
                                     ("lr2", LogisticRegression(C=0.1, max_iter=2000))], voting="soft",
                                    weights=np.array([2.0, 1.0])).fit(Xi, yi), Xi
        if kind == "voting_regressor":
            return VotingRegressor([("ridge", Ridge()), ("ols", LinearRegression())]).fit(Xd, yd), Xd
        if kind == "stacking_classifier":
            return StackingClassifier([("lr", LogisticRegression(max_iter=2000)), ("svc", LinearSVC())],
                                      final_estimator=LogisticRegression(max_iter=2000)).fit(Xi, yi), Xi
        if kind == "stacking_regressor":
            return StackingRegressor([("ridge", Ridge()), ("ols", LinearRegression())],
                                     final_estimator=Ridge()).fit(Xd, yd), Xd
        if kind in ("multinomial_nb", "complement_nb"):
            X = np.round(Xi * 2)
            nb = MultinomialNB() if kind == "multinomial_nb" else ComplementNB()
            return nb.fit(X, yi), X
    raise AssertionError(kind)


KINDS = ["calibrated_sigmoid", "soft_voting", "voting_regressor", "stacking_classifier", "stacking_regressor",
         "multinomial_nb", "complement_nb"]


def _beyond_tolerance(model, mutated, out, feeds) -> np.ndarray:
    """Rows where the outputs differ beyond the sampled check's float32 tolerance (atol scaled as it scales it,
    plus rtol times the original's value)."""
    a, b = np.asarray(model.run(feeds)[out], float), np.asarray(mutated.run(feeds)[out], float)
    kind = next(o.kind for o in model.signature.outputs if o.name == out)
    t = tolerance_for(kind, (np.dtype("float64"), np.dtype("float32")))
    scale = max(1.0, float(np.percentile(np.abs(a), 90))) if t.scaled and kind != "probability" else 1.0
    d = np.abs(a - b) - (t.atol * scale + t.rtol * np.abs(a))
    return d.reshape(len(a), -1).max(axis=1) > 1e-12


def _reproduces(model, other, cert) -> bool:
    """Both runtimes, run again on the counterexample, differ beyond the check's float32 tolerance there (labels:
    differ)."""
    ce = cert.counterexample
    specs = {s.name: s for s in model.signature.inputs}
    feeds = {k: (np.asarray(v).astype(str) if specs[k].is_string else np.asarray(v, dtype=specs[k].dtype))
             for k, v in ce["inputs"].items()}
    a = model.run(feeds)[cert.output]
    if np.asarray(a).dtype.kind in "fc":
        return bool(np.any(_beyond_tolerance(model, other, cert.output, feeds)))
    return bool(np.any(np.asarray(a).astype(str) != np.asarray(other.run(feeds)[cert.output]).astype(str)))


def certify_as_checked(est, art, data):
    """`portable.certify` with the tolerances a sampled check of `data` used (as `check --certify` does)."""
    from portable.certification.driver import certify_report

    return certify_report(portable.check(est, art, data=data, samples=300), est, art, data=data)


@pytest.mark.parametrize("kind", KINDS)
def test_correct_conversion_is_certified(kind):
    est, X = _fit(kind)
    art = portable.convert(est, to="onnx", dtype="float64" if kind.endswith("_nb") else "float32", check=False)
    # within the tolerances the sampled check of X uses (regressors: atol scaled by the outputs' magnitude on its
    # rows; `portable.certify` alone scales it only as far as it proves the outputs large over the domain)
    result = certify_as_checked(est, art, X)
    model = SklearnModel(est)
    feeds = sample_domain(model, result.domain, 2000)
    a, b = model.run(feeds), art.run(feeds)
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED, (out, cert.status, cert.bound, cert.tolerance, cert.reason)
        assert cert.method in ("affine", "ibp")
        if out != "label":
            observed = float(np.max(np.abs(np.asarray(a[out], float) - np.asarray(b[out], float))))
            assert cert.bound >= observed, (out, cert.bound, observed)


@pytest.mark.parametrize("kind", KINDS)
def test_benchmark_mutations_are_refuted(kind):
    """The mutation benchmark's coefficient and intercept mutations: a difference beyond the tolerance on dense
    rows is refuted with a counterexample both runtimes reproduce; a certified output never differs beyond it."""
    est, X = _fit(kind)
    art = portable.convert(est, to="onnx", dtype="float64" if kind.endswith("_nb") else "float32", check=False)
    model = SklearnModel(est)
    muts = benchmark_mutations(art, ("coefficient", "intercept"), 2, seed=5)
    assert muts
    refuted = 0
    for mkind, proto in muts:
        mutated = portable.load(proto)
        result = portable.certify(est, mutated, data=X)
        feeds = sample_domain(model, result.domain, 1000)
        for out, cert in result.certificates.items():
            if cert.status == REFUTED:
                refuted += 1
                assert cert.counterexample["verified"] and _reproduces(model, mutated, cert), (mkind, out)
                continue
            if out == "label":
                continue  # near-ties (the check excuses them) are not counted here
            differs = _beyond_tolerance(model, mutated, out, feeds)
            assert not np.any(differs), (mkind, out, cert.status, cert.reason)
    assert refuted, [(k, {o: c.status for o, c in portable.certify(est, portable.load(p), data=X)
                          .certificates.items()}) for k, p in muts]


def test_calibrated_label_is_certified_with_its_probabilities():
    """A label certificate is given wherever the probabilities are certified (the label is their argmax)."""
    est, X = _fit("calibrated_sigmoid")
    art = portable.convert(est, to="onnx", check=False)
    result = portable.certify(est, art, data=X)
    assert result.certificates["probabilities"].status == CERTIFIED
    assert result.certificates["label"].status == CERTIFIED


def test_hard_voting_and_isotonic_say_why():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_iris
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hard = VotingClassifier([("a", LogisticRegression(max_iter=2000)),
                                 ("b", LogisticRegression(C=0.1, max_iter=2000))], voting="hard").fit(X, y)
        iso = CalibratedClassifierCV(LogisticRegression(max_iter=2000), method="isotonic", cv=3).fit(X, y)
    for est, why in ((hard, "majority"), (iso, "isotonic")):
        result = portable.certify(est, portable.convert(est, to="onnx", check=False), data=X)
        for cert in result.certificates.values():
            assert cert.status == NOT_CERTIFIABLE and why in cert.reason, cert.reason


# -- properties ----------------------------------------------------------------------------------------------------
def _random_ensemble(seed: int):
    from sklearn.ensemble import StackingRegressor, VotingRegressor
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge

    rng = np.random.default_rng(seed)
    n, f = 120, int(rng.integers(2, 6))
    X = rng.normal(0, 1, (n, f)) * rng.uniform(0.1, 50, f) + rng.uniform(-20, 20, f)
    y = X @ rng.normal(size=f) + rng.normal(size=n)
    members = [("ridge", Ridge(alpha=float(rng.uniform(0.1, 10)))), ("ols", LinearRegression()),
               ("lasso", Lasso(alpha=0.1)), ("enet", ElasticNet(alpha=0.1))]
    pick = [members[i] for i in sorted(rng.choice(4, 2, replace=False))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if seed % 2:
            est = VotingRegressor(pick, weights=rng.uniform(0.5, 2, 2)).fit(X, y)
        else:
            est = StackingRegressor(pick, final_estimator=Ridge(), passthrough=bool(seed % 4 == 0)).fit(X, y)
    return est, X


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), mutate=st.booleans())
def test_ensemble_bound_is_sound_and_tight(seed, mutate):
    est, X = _random_ensemble(seed)
    art = portable.convert(est, to="onnx", check=False)
    if mutate:
        muts = benchmark_mutations(art, ("coefficient",), 1, seed=seed)
        if muts:
            art = portable.load(muts[0][1])
    result = portable.certify(est, art, data=X)
    cert = result.certificates["variable"]
    assert cert.bound is not None and cert.method == "affine", (cert.status, cert.reason)
    model = SklearnModel(est)
    feeds = sample_domain(model, result.domain, 4000, seed)
    observed = float(np.max(np.abs(model.run(feeds)["variable"].astype(float) -
                                   art.run(feeds)["variable"].astype(float))))
    assert cert.bound >= observed, (cert.bound, observed)  # soundness
    if mutate and observed > 1e-3:
        assert cert.bound <= 10 * observed, (cert.bound, observed)  # tightness (affine)


# -- text pipelines --------------------------------------------------------------------------------------------------
def _documents(vocab: list[str], n: int, rng) -> list[str]:
    """Random documents of the vocabulary's terms (a few to many, repeated), and some unknown words."""
    docs = []
    for _ in range(n):
        k = int(rng.integers(1, 12))
        words = list(rng.choice(vocab, k)) + (["zzunknown"] if rng.random() < 0.2 else [])
        docs.append(" ".join(words))
    return docs


def _text_pipeline(seed: int, kind: str):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(int(rng.integers(8, 40)))]
    docs = _documents(vocab, 200, rng)
    y = np.array([("w1" in d.split()) or ("w2" in d.split()) for d in docs]).astype(int)
    y[:2] = [0, 1]
    vec = TfidfVectorizer(sublinear_tf=bool(seed % 2)) if kind != "counts" else CountVectorizer()
    model = [LogisticRegression(max_iter=1000), LinearSVC(), RidgeClassifier()][seed % 3]
    frame = pd.DataFrame({"review": docs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(ColumnTransformer([("text", vec, "review")]), model).fit(frame, y)
    return pipe, frame, vocab


def test_text_pipeline_is_certified_and_a_mutation_refuted_on_a_document():
    from . import pipelines

    est, df, _ = pipelines.build("text_tfidf_logistic_regression")
    art = portable.convert(est, to="onnx", check=False, data=df)
    result = portable.certify(est, art, data=df)
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED and cert.method == "text", (out, cert.reason)
        assert "assumed" in cert.details["assumption"] and "tokenization" in cert.details["assumption"]
    muts = benchmark_mutations(art, ("coefficient",), 3, seed=1)
    model = SklearnModel(est, data=df)
    refuted = 0
    for _, proto in muts:
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=df)
        for cert in res.certificates.values():
            if cert.status == REFUTED:
                refuted += 1
                assert isinstance(cert.counterexample["inputs"]["review"][0][0], str)  # a document
                assert _reproduces(model, mutated, cert)
    assert refuted


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["tfidf", "counts"]), mutate=st.booleans())
def test_text_bound_is_sound_over_documents(seed, kind, mutate):
    """Over random documents of at most as many distinct terms as the data's, both runtimes never differ by
    more than the certified bound (the ball and sparsity bounds of the vectorizer's outputs are sound)."""
    import pandas as pd

    est, frame, vocab = _text_pipeline(seed, kind)
    art = portable.convert(est, to="onnx", check=False, data=frame)
    if mutate:
        muts = benchmark_mutations(art, ("coefficient",), 1, seed=seed)
        if muts:
            art = portable.load(muts[0][1])
    result = portable.certify(est, art, data=frame)
    model = SklearnModel(est, data=frame)
    rng = np.random.default_rng(seed + 1)
    docs = list(frame["review"]) + _documents(vocab, 1500, rng) + [" ".join([v] * 5) for v in vocab]
    feeds = {"review": np.asarray(docs, dtype=object).reshape(-1, 1).astype(str)}
    a, b = model.run(feeds), art.run(feeds)
    for out, cert in result.certificates.items():
        if out == "label" or cert.bound is None or cert.method != "text":
            continue
        # the domain: documents of at most `most` distinct known terms whose vectors lie in the box of the data's
        # (raw counts: each at most its largest count in the data; normalised rows: always)
        most = cert.details["vectorizer_output"]["most_terms"]
        vec = est[0].transformers_[0][1]
        v_all, v_data = vec.transform(docs).toarray(), vec.transform(list(frame["review"])).toarray()
        keep = ((v_all != 0).sum(axis=1) <= most) & np.all(v_all <= np.maximum(v_data.max(axis=0), 1.0), axis=1)
        observed = float(np.max(np.abs(np.asarray(a[out], float) - np.asarray(b[out], float))[keep]))
        assert cert.bound >= observed, (out, cert.bound, observed)


# -- column functions (log, sqrt), multilabel outputs ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["house_log_features_linear", "house_ridge_classifier_cv_multilabel",
                                  "titanic_multilabel_mlp"])
def test_realistic_pipeline_is_certified_and_mutations_refuted(name):
    """The realistic pipeline is certified as portable ships it; each coefficient/intercept mutation of the
    mutation benchmark beyond the tolerance on dense rows is refuted with a counterexample both runtimes
    reproduce."""
    from . import pipelines

    est, df, _ = pipelines.build(name)
    art = portable.convert(est, to="onnx", data=df)
    result = certify_as_checked(est, art, df)
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED, (out, cert.status, cert.reason)
    model = SklearnModel(est, data=df)
    refuted = 0
    for mkind, proto in benchmark_mutations(art, ("coefficient", "intercept"), 2, seed=2):
        mutated = portable.load(proto)
        res = portable.certify(est, mutated, data=df)
        feeds = sample_domain(model, res.domain, 500)
        for out, cert in res.certificates.items():
            if cert.status == REFUTED:
                refuted += 1
                assert cert.counterexample["verified"] and _reproduces(model, mutated, cert), (mkind, out)
            elif out.startswith("label"):
                continue
            else:
                assert not np.any(_beyond_tolerance(model, mutated, out, feeds)), (mkind, out, cert.reason)
    assert refuted


def _log_pipeline(seed: int):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(seed)
    n, f = 100, int(rng.integers(1, 4))
    X = rng.uniform(0.5, 1, (n, f)) * rng.uniform(1, 1000, f)
    y = np.log1p(X) @ rng.normal(size=f) + rng.normal(size=n) * 0.1
    func = [np.log1p, np.sqrt, np.log][seed % 3]
    return make_pipeline(FunctionTransformer(func), StandardScaler(), Ridge()).fit(X, y), X


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), mutate=st.booleans())
def test_column_function_bound_is_sound_and_tight(seed, mutate):
    est, X = _log_pipeline(seed)
    art = portable.convert(est, to="onnx", check=False)
    if mutate:
        muts = benchmark_mutations(art, ("coefficient",), 1, seed=seed)
        if muts:
            art = portable.load(muts[0][1])
    result = portable.certify(est, art, data=X)
    cert = result.certificates["variable"]
    assert cert.bound is not None and cert.method == "affine", (cert.status, cert.reason)
    model = SklearnModel(est)
    feeds = sample_domain(model, result.domain, 4000, seed)
    observed = float(np.max(np.abs(model.run(feeds)["variable"].astype(float) -
                                   art.run(feeds)["variable"].astype(float))))
    assert cert.bound >= observed, (cert.bound, observed)
    if mutate and observed > 1e-3:
        assert cert.bound <= 10 * observed, (cert.bound, observed)
