"""Certificates of float32 tf-idf + linear pipelines against real documents (issue 19).

For random tf-idf vectorizers (sublinear or raw tf, unigrams or bigrams) followed by a linear model (LinearSVC,
Ridge), converted to float32 by `portable.convert`, the bound `portable.certify` proves over the default domain
is never below the largest difference between scikit-learn's output and the float32 dot product of the
document's tf-idf vector, evaluated in adversarial orders (largest terms first, smallest first, random, numpy's
pairwise sum) and by onnxruntime's MatMul (the converted model itself), on documents of the domain: the data's,
many rare terms, one term repeated, and the longest documents the certificate speaks about (as many distinct
terms as its `most_terms`, the largest weights repeated).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable


def _corpus(rng: np.random.Generator, n_words: int, n_docs: int) -> tuple[list[str], list[str]]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = sorted({"".join(rng.choice(letters, int(rng.integers(3, 8)))) for _ in range(n_words)})
    p = 1.0 / np.arange(1, len(words) + 1) ** 1.1  # a Zipf-like law: common and rare terms
    p /= p.sum()
    docs = [" ".join(rng.choice(words, int(rng.integers(3, 30)), p=p)) for _ in range(n_docs)]
    return words, docs


def _adversarial(rng: np.random.Generator, vec, w: np.ndarray, most: int, docs: list[str]) -> list[str]:
    inv = {i: t for t, i in vec.vocabulary_.items()}
    idf = getattr(vec, "idf_", np.ones(len(inv)))
    out = list(docs)
    rare = np.argsort(-idf)[:most]  # many rare terms, once each
    out.append(" . ".join(inv[i] for i in rare))
    top = int(np.argmax(np.abs(w)))  # one term repeated
    out += [" ".join([inv[top]] * r) for r in (2, 17, 150)]
    for sign in (1.0, -1.0):  # the longest: `most` terms, those of the largest weights of one sign repeated
        order = np.argsort(-sign * w / idf)
        for j, reps in ((3, 40), (max(2, most // 8), 12), (max(2, most // 2), 3)):
            parts = [inv[i] for i in order[:j] for _ in range(reps)] + [inv[i] for i in order[j:most]]
            out.append(" . ".join(parts))
    for _ in range(4):  # random long ones
        k = int(rng.integers(1, most + 1))
        out.append(" ".join(rng.choice([inv[i] for i in range(len(inv))], k * 3)))
    return out


def _orders(x: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> list[float]:
    """The float32 dot product of x and w summed in several orders (float32 products, float32 additions)."""
    nz = np.flatnonzero(x)
    prods = (x[nz] * w[nz]).astype(np.float32)
    exact = prods.astype(np.float64)
    got = []
    for order in (np.argsort(-exact), np.argsort(exact), np.argsort(-np.abs(exact)), np.argsort(np.abs(exact)),
                  rng.permutation(len(nz))):
        acc = np.float32(0.0)
        for p in prods[order]:
            acc = np.float32(acc + p)
        got.append(float(acc))
    got.append(float(np.sum(prods, dtype=np.float32)))  # numpy's pairwise summation
    return got


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), sublinear=st.booleans(), bigrams=st.booleans(),
       model=st.sampled_from(["svc", "ridge"]))
def test_tfidf_linear_certificate_is_sound_on_real_documents(seed, sublinear, bigrams, model):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    _, docs = _corpus(rng, int(rng.integers(30, 120)), int(rng.integers(30, 60)))
    vec = TfidfVectorizer(sublinear_tf=sublinear, ngram_range=(1, 2) if bigrams else (1, 1))
    if model == "svc":
        y = rng.integers(0, 2, len(docs))
        y[:2] = [0, 1]
        last = LinearSVC(C=float(10 ** rng.uniform(-1, 2)))
    else:
        y = rng.normal(size=len(docs)) * 10 ** rng.uniform(-1, 2)
        last = Ridge(alpha=float(10 ** rng.uniform(-3, 0)))
    est = make_pipeline(vec, last)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(docs, y)
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=pd.DataFrame({"X": docs}))
    out = "scores" if model == "svc" else "variable"
    cert = result.certificates[out]
    assert cert.bound is not None and np.isfinite(cert.bound), (cert.status, cert.reason)
    most = int(cert.details["vectorizer_output"]["most_terms"])
    w32 = np.asarray(last.coef_, dtype=np.float32).reshape(-1)
    b = float(np.asarray(last.intercept_, dtype=np.float64).reshape(-1)[0])
    candidates = _adversarial(rng, vec, w32.astype(np.float64), most, docs)
    X64 = vec.transform(candidates).toarray()
    keep = (X64 != 0).sum(axis=1) <= most  # documents the certificate speaks about
    candidates = [d for d, k in zip(candidates, keep) if k]
    X64 = X64[keep]
    ref = np.asarray(est.decision_function(candidates) if model == "svc" else est.predict(candidates), float)
    ref = ref.reshape(len(candidates), -1)[:, 0]
    got = np.asarray(art.run({"X": np.asarray(candidates, dtype=object).reshape(-1, 1)})[out], float)
    worst = float(np.max(np.abs(got.reshape(len(candidates), -1)[:, 0] - ref)))
    X32 = X64.astype(np.float32)
    for r in range(len(candidates)):
        exact = math.fsum(X64[r] * np.asarray(last.coef_, dtype=np.float64).reshape(-1)) + b
        assert abs(exact - ref[r]) <= 1e-9 * (1 + abs(ref[r]))
        for s in _orders(X32[r], w32, rng):
            worst = max(worst, abs(float(np.float32(np.float32(s) + np.float32(b))) - ref[r]))
    assert cert.bound >= worst, (cert.status, cert.bound, worst)


def _documents_set(rng: np.random.Generator, V: int, tf: str):
    from portable.certification.documents import Documents

    idf = rng.uniform(1.0, 1.0 + rng.uniform(0.1, 6.0), V)
    C = int(rng.integers(1, 200))
    K = int(rng.integers(2, V + 1))
    total = int(rng.integers(K, K * C + 1))
    return Documents(idf=idf, tf=tf, max_count=C, max_total=total, max_terms=K)


def _document_vectors(rng: np.random.Generator, D, w: np.ndarray, k: int, n: int) -> np.ndarray:
    """Count vectors of documents of the set with k distinct terms, made to hold large partial sums: the terms of
    largest w_i / idf_i (of either sign) counted as often as the total allows, the rest of the support once (those
    of smallest idf, or random ones), plus random documents; as tf-idf rows of unit norm."""
    V = len(w)
    rows = []
    for r in range(n):
        sign = 1.0 if r % 2 else -1.0
        j = int(rng.integers(1, k + 1)) if r % 3 else max(1, k // int(rng.integers(1, 9)))
        order = np.argsort(-sign * w / D.idf)
        P = order[:j]
        others = np.setdiff1d(np.arange(V), P)
        R = others[np.argsort(D.idf[others])][:k - j] if r % 4 else rng.permutation(others)[:k - j]
        c = np.zeros(V)
        c[P], c[R] = 1, 1
        extra = D.max_total - k
        if r % 5 == 4:  # random counts
            c[P] += rng.multinomial(extra, np.ones(j) / j) if extra > 0 else 0
        elif extra > 0:
            c[P] += extra // j
        c = np.minimum(c, D.max_count)
        assert c.sum() <= D.max_total and np.count_nonzero(c) == k
        z = np.where(c > 0, D.idf * D.tf_of(np.maximum(c, 1)), 0.0)
        rows.append(z / np.linalg.norm(z))
    return np.asarray(rows)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), V=st.integers(2, 120), tf=st.sampled_from(["sublinear", "raw", "binary"]))
def test_documents_reach_is_sound(seed, V, tf):
    """`Documents.reach`: on documents of the set (adversarial ones: the largest weights counted most, the rest of
    smallest idf), no j <= reach terms sum to the threshold or more."""
    rng = np.random.default_rng(seed)
    D = _documents_set(rng, V, tf)
    w = rng.normal(size=V) * rng.uniform(0.1, 5.0)
    w[rng.random(V) < 0.1] = 0.0
    for k in sorted({1, int(rng.integers(1, D.max_terms + 1)), D.max_terms}):
        X = _document_vectors(rng, D, w, k, 40)
        T = np.array(sorted(rng.uniform(0.05, 1.0, 3) * np.linalg.norm(w)))
        for sign in (1.0, -1.0):
            reach = D.reach(sign * w, T, k)
            terms = sign * w[None, :] * X
            top = np.cumsum(-np.sort(-terms, axis=1), axis=1)  # the largest sum of j terms, j = 1..V
            for t, r in zip(T, reach):
                if r >= 1:
                    assert np.all(top[:, :r].max(axis=1) < t), (k, t, r, top[:, :r].max())


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), V=st.integers(2, 400), tf=st.sampled_from(["sublinear", "raw", "binary"]))
def test_documents_rounding_is_sound(seed, V, tf):
    """`Documents.rounding` is never below the float32 dot product's error on documents of the set, summed in
    adversarial orders, numpy's pairwise sum and onnxruntime's MatMul."""
    from portable.certification.symbolic import U32, U64

    from .test_certify_rounding import _matmul

    rng = np.random.default_rng(seed)
    D = _documents_set(rng, V, tf)
    w32 = (rng.normal(size=V) * rng.uniform(0.1, 10.0)).astype(np.float32)
    w = w32.astype(np.float64)
    bound = D.rounding(w, float(np.linalg.norm(w)), U32 + U64, np.abs(w), None)
    X = np.concatenate([_document_vectors(rng, D, w, k, 12)
                        for k in sorted({1, int(rng.integers(1, D.max_terms + 1)), D.max_terms})])
    X32 = X.astype(np.float32)
    y_ort = _matmul(V).run(None, {"x": X32, "w": w32.reshape(-1, 1)})[0][:, 0].astype(np.float64)
    worst = 0.0
    for r in range(len(X32)):
        exact = math.fsum(X32[r].astype(np.float64) * w)
        got = _orders(X32[r], w32, rng) + [float(y_ort[r])]
        worst = max(worst, max(abs(g - exact) for g in got))
    assert worst <= bound, (worst, bound)
