"""The rounding bounds of certification (issue 19) against the arithmetic of the real runtimes.

- `sum_rounding` (a dot product's rounding, by the binades of its partial sums) is never below the error of
  float32 dot products as numpy (sequential and pairwise) and onnxruntime's MatMul compute them;
- `lse_softmax_rounding` (softmax computed as exp(z - logsumexp z), the log-sum-exp shifted by its maximum) is
  never below the error of onnxruntime's ReduceLogSumExp -> Sub -> Exp in float32 against scipy's softmax;
- float32 naive Bayes conversions (counts, and the text pipelines of the realistic table) are certified, and the
  bound is never below the difference scikit-learn and onnxruntime show on dense samples of the domain.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import portable
from portable.certification.core import CERTIFIED, REFUTED
from portable.certification.program import lse_softmax_rounding
from portable.certification.symbolic import U32, U64, gamma, sum_rounding
from portable.formats.sklearn import SklearnModel

from .test_certify_affine import sample_domain


def _session(graph_builder):
    import onnx
    import onnxruntime as ort

    model = graph_builder(onnx.helper, onnx.TensorProto)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _matmul(n: int):
    def build(h, tp):
        g = h.make_graph([h.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                         [h.make_tensor_value_info("x", tp.FLOAT, [None, n]),
                          h.make_tensor_value_info("w", tp.FLOAT, [n, 1])],
                         [h.make_tensor_value_info("y", tp.FLOAT, [None, 1])])
        return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    return _session(build)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 300), same_sign=st.booleans(), counts=st.booleans())
def test_sum_rounding_is_sound(seed, n, same_sign, counts):
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3, n)).astype(np.float32)
    if same_sign:
        w = -np.abs(w)
    rows = 64
    x = (rng.integers(0, 20, (rows, n)) if counts else rng.normal(size=(rows, n)) * 100).astype(np.float32)
    x[rng.random((rows, n)) < 0.3] = 0.0
    sess = _matmul(n)
    y_ort = sess.run(None, {"x": x, "w": w.reshape(-1, 1)})[0][:, 0].astype(np.float64)
    for r in range(rows):
        prods = x[r].astype(np.float64) * w.astype(np.float64)  # exact: float32 x float32 fits float64
        exact = math.fsum(prods)
        k = int(np.count_nonzero(prods))
        bound = float(sum_rounding(max(k, 1), np.sum(np.abs(prods)), U32 + U64, terms=np.abs(prods)))
        assert bound <= gamma(max(k, 1), U32 + U64) * np.sum(np.abs(prods)) + 1e-300 + max(k, 1) * 2.0 ** -149
        seq = np.float32(0)
        for p in (x[r] * w):  # numpy float32: the product rounded, then each addition
            seq = np.float32(seq + p)
        pairwise = np.sum(x[r] * w, dtype=np.float32)
        order = rng.permutation(n)
        shuffled = np.float32(0)
        for p in (x[r][order] * w[order]):
            shuffled = np.float32(shuffled + p)
        for got in (float(seq), float(pairwise), float(shuffled), float(y_ort[r])):
            assert abs(got - exact) <= bound, (got, exact, bound, k)


def _lse_softmax(n: int):
    def build(h, tp):
        nodes = [h.make_node("ReduceLogSumExp", ["z"], ["l"], axes=[1], keepdims=1),
                 h.make_node("Sub", ["z", "l"], ["t"]), h.make_node("Exp", ["t"], ["p"])]
        g = h.make_graph(nodes, "lse", [h.make_tensor_value_info("z", tp.FLOAT, [None, n])],
                         [h.make_tensor_value_info("p", tp.FLOAT, [None, n])])
        return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    return _session(build)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 12), scale=st.floats(0.1, 5000.0))
def test_lse_softmax_rounding_is_sound(seed, n, scale):
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    base = -rng.uniform(0, scale)
    z = (base + rng.normal(size=(256, n)) * rng.uniform(0.01, 3.0)).astype(np.float32)
    q = _lse_softmax(n).run(None, {"z": z})[0].astype(np.float64)
    p = softmax(z.astype(np.float64), axis=1)  # of the same float32 values: only the lse's rounding differs
    rel, absolute = lse_softmax_rounding(z.min(axis=0).astype(np.float64), z.max(axis=0).astype(np.float64),
                                         U32 + U64)
    assert np.all(np.abs(q - p) <= rel * p + absolute), float(np.max(np.abs(q - p) - rel * p - absolute))


def _counts_nb(kind: str, data: str):
    from sklearn.datasets import load_digits, load_iris
    from sklearn.naive_bayes import ComplementNB, MultinomialNB

    if data == "digits":
        X, y = load_digits(return_X_y=True)  # pixel counts 0..16, 64 columns, 10 classes
    else:
        X, y = load_iris(return_X_y=True)
        X = np.round(X * 2)  # counts 0..16, 4 columns
    nb = MultinomialNB() if kind == "multinomial" else ComplementNB()
    return nb.fit(X, y), X


@pytest.mark.parametrize("data", ["iris", "digits"])
@pytest.mark.parametrize("kind", ["multinomial", "complement"])
def test_float32_naive_bayes_over_counts_is_sound(kind, data):
    """Over 4 count columns the float32 conversion is certified; over 64 (log-likelihoods in the hundreds, whose
    float32 rounding moves the probabilities by more than the tolerance) it is refuted with a counterexample
    both runtimes reproduce. Either way the bound holds on dense samples."""
    est, X = _counts_nb(kind, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=X)
    cert = result.certificates["probabilities"]
    model = SklearnModel(est)
    feeds = sample_domain(model, result.domain, 3000)
    observed = float(np.max(np.abs(np.asarray(model.run(feeds)["probabilities"], float) -
                                   np.asarray(art.run(feeds)["probabilities"], float))))
    assert cert.bound is not None and cert.bound >= observed, (cert.status, cert.bound, observed)
    if data == "iris":
        assert cert.status == CERTIFIED, (cert.status, cert.bound, cert.tolerance, cert.reason)
        assert result.certificates["label"].status == CERTIFIED
    else:
        assert cert.status == REFUTED and cert.counterexample["verified"], (cert.status, cert.reason)
        ce = cert.counterexample
        x = np.asarray(ce["inputs"][model.signature.inputs[0].name], dtype=np.float64)
        gap = np.abs(est.predict_proba(x) - art.run({model.signature.inputs[0].name: x.astype(np.float32)})[
            "probabilities"])
        assert float(np.max(gap)) == pytest.approx(ce["difference"], rel=1e-3)


@pytest.mark.parametrize("name", ["text_count_naive_bayes", "text_count_complement_nb_on_series"])
def test_float32_text_naive_bayes_is_sound(name):
    """The realistic text pipelines with naive Bayes, converted in float32, over the domain of their documents
    (the data's and the long ones the hints add): certified, or refuted on a document where scikit-learn and
    onnxruntime differ beyond the tolerance; documents made of the domain's (within its box of counts) respect
    the bound."""
    import pandas as pd

    from portable.certification.text import _transform, find_text

    from . import pipelines

    est, df, _ = pipelines.build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=df)
    cert = result.certificates["probabilities"]
    col = df.columns[0]

    def run_both(docs):
        frame = pd.DataFrame({col: docs})
        pa = est.predict_proba(frame[col] if name.endswith("_series") else frame)
        pb = art.run({col: np.asarray(docs, dtype=object).reshape(-1, 1)})["probabilities"]
        return np.abs(np.asarray(pa, float) - np.asarray(pb, float)).max(axis=1)

    assert cert.status in (CERTIFIED, REFUTED), (cert.status, cert.reason)
    if cert.status == REFUTED:
        assert cert.counterexample["verified"]
        doc = [str(d) for d in np.asarray(cert.counterexample["inputs"][col], dtype=object).reshape(-1)]
        assert float(run_both(doc).max()) > cert.tolerance
    else:
        assert result.certificates["label"].status == CERTIFIED
    docs = list(df[col].astype(str))
    rng = np.random.default_rng(0)
    cands = [" ".join(rng.choice(docs, int(rng.integers(1, 4)))) for _ in range(600)]
    trans, cols = find_text(est)[0]
    seen, vec = _transform(trans, cols, docs), _transform(trans, cols, cands)
    inside = np.all(vec <= seen.max(axis=0), axis=1) & ((vec != 0).sum(axis=1) <= (seen != 0).sum(axis=1).max())
    cands = [c for c, ok in zip(cands, inside) if ok] + docs
    assert cert.bound >= float(run_both(cands).max())


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), classes=st.integers(3, 5), logistic=st.booleans())
def test_multiclass_sigmoid_calibration_bound_is_sound(seed, classes, logistic):
    """Random multiclass sigmoid calibrations (per fold: one-vs-rest logistic units normalised by their sum,
    then averaged over the folds), converted in float32: the bound (relative errors through the normalisation)
    is never below the difference scikit-learn and onnxruntime show on dense samples of the domain."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    n, f = 240, int(rng.integers(2, 6))
    centers = rng.normal(0, 1, (classes, f))
    y = np.arange(n) % classes
    X = centers[y] + rng.normal(0, 1, (n, f)) * rng.uniform(0.5, 3, f)
    base = LogisticRegression(max_iter=2000) if logistic else LinearSVC()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make_pipeline(StandardScaler(), CalibratedClassifierCV(base, cv=int(rng.integers(2, 4)))).fit(X, y)
        art = portable.convert(est, to="onnx", check=False, data=X)
        result = portable.certify(est, art, data=X)
    cert = result.certificates["probabilities"]
    assume(cert.bound is not None)  # a fold whose units may all underflow to 0 in float32 is not read
    model = SklearnModel(est)
    feeds = sample_domain(model, result.domain, 3000, seed)
    observed = float(np.max(np.abs(np.asarray(model.run(feeds)["probabilities"], float) -
                                   np.asarray(art.run(feeds)["probabilities"], float))))
    assert cert.bound >= observed, (cert.status, cert.bound, observed)


def test_float32_char_ngram_naive_bayes_is_refuted_on_a_document():
    """Char n-gram counts make log-likelihoods in the thousands: on long documents near p = 0.5 the float32
    conversion's probabilities move by more than the tolerance. The certificate is refuted, and its
    counterexample is a real document on which scikit-learn and onnxruntime differ beyond the tolerance."""
    from . import pipelines

    est, df, _ = pipelines.build("text_char_ngrams_naive_bayes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=df)
    cert = result.certificates["probabilities"]
    assert cert.status == REFUTED and cert.counterexample["verified"], (cert.status, cert.reason)
    col = df.columns[0]
    doc = np.asarray(cert.counterexample["inputs"][col], dtype=object).reshape(-1)
    import pandas as pd

    pa = est.predict_proba(pd.DataFrame({col: doc}))
    pb = art.run({col: doc.reshape(-1, 1)})["probabilities"]
    assert float(np.max(np.abs(np.asarray(pa, float) - np.asarray(pb, float)))) > cert.tolerance


def _ball_matmul_bound(w: np.ndarray, K: int) -> float:
    """The rounding bound `Program.matmul` gives a float32 dot product w . x over nonnegative x in the unit l2
    ball with at most K nonzero elements (a tf-idf row: `certification.text`'s space)."""
    from portable.certification.core import Domain, DomainColumn
    from portable.certification.onnx_program import input_value
    from portable.certification.program import Program
    from portable.certification.symbolic import Space

    n = len(w)
    cols = {("v", j): DomainColumn(lo=0.0, hi=1.0) for j in range(n)}
    space = Space(Domain(cols, "user"))
    space.balls.append(("l2", frozenset(cols), False))
    space.nonzero.append((frozenset(cols), K))
    prog = Program(space, "converted")
    s = input_value(prog, "v", n, False)
    return float(prog.matmul(s, w.astype(np.float64).reshape(-1, 1), np.float32).E[0])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 400), k_frac=st.floats(0.05, 1.0),
       mode=st.sampled_from(["spread", "aligned", "tiny"]))
def test_signed_ball_dot_product_rounding_is_sound(seed, n, k_frac, mode):
    """Over a norm ball of nonnegative variables the bound uses the positive and negative coefficients' norms of
    each partial sum's terms (`Space.partial_sums`); it holds for float32 sums in index order, in the order
    that keeps the partial sums largest (positive terms, largest first, then the rest), in a random order and in
    onnxruntime's MatMul, on rows built to make every addition round by almost half an ulp."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=n) * rng.uniform(0.1, 3.0)).astype(np.float32)
    K = max(2, int(round(k_frac * n)))
    bound = _ball_matmul_bound(w, K)
    w64 = w.astype(np.float64)
    rows = []
    for _ in range(24):
        idx = rng.permutation(n)[:K]
        x = np.zeros(n)
        if mode == "spread":
            x[idx] = rng.exponential(size=K)
        elif mode == "aligned":  # the weight's positive part: partial sums near its norm
            x[idx] = np.maximum(w64[idx], 0.0) + rng.uniform(0, 1e-3, K)
        else:  # a few large aligned terms, then terms of about half an ulp of the partial sum each
            big = idx[np.argsort(-w64[idx])][:max(1, K // 8)]
            x[big] = np.maximum(w64[big], 1e-3)
            x /= np.linalg.norm(x)
            s = float(np.dot(x, w64))
            ulp = float(np.spacing(np.float32(max(abs(s), 1e-30))))
            small = np.setdiff1d(idx, big)
            x[small] = 0.49 * ulp / np.maximum(np.abs(w64[small]), 1e-30) * rng.uniform(0.97, 1.0, len(small))
        x /= max(np.linalg.norm(x), 1e-300) * (1 + 1e-6)
        rows.append(x.astype(np.float32))
    X = np.asarray(rows)
    assert np.all(np.linalg.norm(X.astype(np.float64), axis=1) <= 1.0)
    y_ort = _matmul(n).run(None, {"x": X, "w": w.reshape(-1, 1)})[0][:, 0].astype(np.float64)
    worst = 0.0
    for r, x in enumerate(X):
        prods = x * w  # float32 products, each rounded
        exact = math.fsum(x.astype(np.float64) * w64)
        pos_first = np.argsort(-(x.astype(np.float64) * w64))
        got = [float(y_ort[r])]
        for order in (np.arange(n), pos_first, rng.permutation(n)):
            acc = np.float32(0)
            for p in prods[order]:
                acc = np.float32(acc + p)
            got.append(float(acc))
        worst = max(worst, max(abs(g - exact) for g in got))
    assert worst <= bound, (worst, bound)
    # and never above the bound without the ball's signs (the standard gamma_n times the largest sum |w x|)
    assert bound <= gamma(K, U32 + U64) * float(np.sqrt(np.sort(w64 ** 2)[::-1][:K].sum())) * 1.001 + 1e-30


def _tfidf_documents(est, docs: list[str], n: int, seed: int) -> list[str]:
    """Documents of the pipeline's vocabulary: the data's, concatenations of them, and runs of 8 to 2,048
    vocabulary terms (as the vectorizer hints' long documents, which the domain holds)."""
    vec = next(s for s in (est.steps[0][1], getattr(est.steps[0][1], "transformers_", [[None, None]])[0][1])
               if hasattr(s, "vocabulary_"))
    terms = sorted(vec.vocabulary_)
    rng = np.random.default_rng(seed)
    out = list(docs) + [" ".join(rng.choice(docs, int(k))) for k in rng.integers(2, 9, n // 2)]
    out += [" ".join(rng.choice(terms, int(k))) for k in np.exp(rng.uniform(np.log(8), np.log(2048), n // 2))]
    return out


def _certified_float32_pipeline(name: str):
    """A realistic pipeline converted to float32 and certified over its data's domain, every output certified:
    (estimator, data, artifact, certification result)."""
    from . import pipelines

    est, df, _ = pipelines.build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=df)
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED, (out, cert.bound, cert.tolerance, cert.reason)
    return est, df, art, result


def test_float32_tfidf_on_documents_is_certified_and_sound():
    """The float32 tf-idf logistic regression fitted on a list of documents is certified over its domain (the
    data's documents and the hints' long ones: every one of its 487 terms at once), through the signed ball bound
    of the dot product's partial sums; on dense documents scikit-learn and onnxruntime never differ by more."""
    est, df, art, result = _certified_float32_pipeline("text_tfidf_on_documents")
    cert = result.certificates["probabilities"]
    assert cert.details["vectorizer_output"]["most_terms"] == cert.details["vectorizer_output"]["width"]
    docs = _tfidf_documents(est, list(df["X"]), 300, 0)
    pa = est.predict_proba(docs)
    pb = art.run({"X": np.asarray(docs, dtype=object).reshape(-1, 1)})["probabilities"]
    observed = float(np.max(np.abs(np.asarray(pa, float) - np.asarray(pb, float))))
    assert cert.bound >= observed, (cert.bound, observed)


def test_float32_tfidf_linear_svc_is_certified_over_its_domain():
    """The float32 tf-idf linear SVC over its whole domain (the data's documents and the hints' long ones, up to
    741 distinct terms): the float32 artifact sums its 747-term dot product in float64 (`linear_scores`), so its
    rounding is the float32 vector's and one rounding of the scores, and both outputs are certified. (Before, the
    dot product was a float32 MatMul, whose worst order over such vectors errs by 1.6e-4: "not certifiable",
    bound 1.68e-4 against a tolerance of 1.13e-4.) On documents of the vocabulary up to 2,048 terms long,
    scikit-learn and onnxruntime never differ by more than the bound."""
    import pandas as pd

    est, df, art, result = _certified_float32_pipeline("text_tfidf_linear_svc")
    cert = result.certificates["scores"]
    assert cert.bound <= cert.tolerance
    assert cert.details["vectorizer_output"]["most_terms"] > 700
    docs = _tfidf_documents(est, [str(d) for d in df["review"]], 400, 2)
    pa = est.decision_function(pd.DataFrame({"review": docs}))
    pb = art.run({"review": np.asarray(docs, dtype=object).reshape(-1, 1)})["scores"]
    observed = float(np.max(np.abs(np.asarray(pa, float).reshape(-1) - np.asarray(pb, float).reshape(-1))))
    assert cert.bound >= observed, (cert.bound, observed)


def test_float32_tfidf_linear_svc_is_certified_over_the_data_documents():
    """Over documents of at most as many distinct terms as the data's (domain= the data's documents) the float32
    tf-idf linear SVC is certified, and the bound holds on documents made of the data's. (Over the default
    domain, which holds the hints' documents of up to 741 distinct terms, it is not certifiable: some order of
    a float32 dot product over such vectors errs by more than the tolerance.)"""
    import pandas as pd

    from . import pipelines

    est, df, _ = pipelines.build("text_tfidf_linear_svc")
    docs = [str(d) for d in df["review"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        art = portable.convert(est, to="onnx", dtype="float32", check=False)
        result = portable.certify(est, art, data=df, domain={"review": docs})
    for out, cert in result.certificates.items():
        assert cert.status == CERTIFIED, (out, cert.bound, cert.tolerance, cert.reason)
    cert = result.certificates["scores"]
    most = cert.details["vectorizer_output"]["most_terms"]
    cands = _tfidf_documents(est, docs, 600, 1)
    vec = est.steps[0][1].transformers_[0][1]
    cands = [c for c, k in zip(cands, (vec.transform(cands) != 0).sum(axis=1).A1) if k <= most]
    pa = est.decision_function(pd.DataFrame({"review": cands}))
    pb = art.run({"review": np.asarray(cands, dtype=object).reshape(-1, 1)})["scores"]
    observed = float(np.max(np.abs(np.asarray(pa, float).reshape(-1) - np.asarray(pb, float).reshape(-1))))
    assert cert.bound >= observed, (cert.bound, observed)
