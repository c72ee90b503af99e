"""Certification method `text`: models of documents (a scikit-learn text vectorizer, then affine steps), certified
over the vectorizer's output domain.

A document is not a box: tokenization, n-grams and the vocabulary lookup are string processing no bound speaks
about. What follows the vectorizer is affine (idf weights were applied, the rows normalised, then linear models,
naive Bayes, calibrations...), so the certificate is split at the vectorizer:

- the vectorizer: its output in the converted ONNX graph is found by running both on the documents of the domain
  (the tensor of the graph that equals scikit-learn's `transform` on every one of them, the last one along the
  graph); it is *assumed* to compute the same vector for every other document (same tokens, same vocabulary
  positions, same weights) -- the sampled check is what tests that, on documents;
- everything after it: the affine/ibp analysis over the box of the vector (normalised rows: each term in [0, 1],
  or [-1, 1] with signed hashing; raw counts or unnormalised weights: [0, the largest value in the documents]),
  both models' float rounding included (the ONNX vector is float32: its rounding is part of the bound).

A refutation is verified on real documents: those of the domain, and one document per vocabulary term (the term
itself, once and repeated), run through both complete models.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .core import NOT_CERTIFIABLE, REFUTED, Certificate, Context, Domain, DomainColumn, \
    certification_method, not_certifiable, slice_after
from .symbolic import NotSymbolic

METHOD = "text"
VECTORIZERS = ("CountVectorizer", "TfidfVectorizer", "HashingVectorizer")
MAX_DOCS = 64  # documents of the domain used to find the vectorizer's output in the graph
FIND_CHUNK = 8  # of them run at once (every tensor of the graph is kept for them)
CONCATENATIONS = 256  # documents made of several of the domain's, tried to verify a refutation
ASSUMPTION = ("the text vectorizer (tokenization, n-grams, vocabulary, idf weights, row normalisation) is assumed "
              "to give the same vector in both models for every document (it did on the {n} documents of the "
              "domain tried, to {err:.2g}); the bound covers everything after it, over the box of its outputs "
              "(and the unit ball of normalised rows) for documents of at most {most} distinct terms (the most in "
              "the domain's documents)")


def _starts_with_vectorizer(est: Any) -> bool:
    name = type(est).__name__
    if name in VECTORIZERS:
        return True
    return name == "Pipeline" and _starts_with_vectorizer(est.steps[0][1])


def find_text(est: Any) -> list[tuple[Any, Any]]:
    """(transformer, column spec or None) of each text transformer: a vectorizer (or a pipeline starting with one)
    given a ColumnTransformer's text column, or the first step of a pipeline of documents."""
    name = type(est).__name__
    out: list[tuple[Any, Any]] = []
    if name in ("GridSearchCV", "RandomizedSearchCV") and hasattr(est, "best_estimator_"):
        return find_text(est.best_estimator_)
    if name == "Pipeline":
        first = est.steps[0][1]
        if type(first).__name__ in VECTORIZERS:
            return [(first, None)]
        for _, step in est.steps:
            out += find_text(step)
        return out
    if name == "ColumnTransformer":
        for _, trans, cols in est.transformers_:
            if trans in ("drop", "passthrough"):
                continue
            if _starts_with_vectorizer(trans):
                out.append((trans, cols))
            else:
                out += find_text(trans)
    return out


def _documents(domain: Domain, name: str) -> list[str]:
    col = domain.columns.get((name, 0))
    if col is None or not col.categories:
        return []
    return [str(c) for c in col.categories]


def _transform(trans: Any, cols: Any, docs: list[str]) -> np.ndarray:
    import pandas as pd

    if cols is None or isinstance(cols, str):
        X: Any = pd.Series(docs, name=cols) if isinstance(cols, str) else list(docs)
    else:
        X = pd.DataFrame({c: docs for c in cols})
    out = trans.transform(X)
    return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)


def _find_cut(proto: Any, feeds: dict[str, np.ndarray], want: np.ndarray, text_input: str
              ) -> tuple[str, float, int]:
    """The last tensor of the graph (downstream of the text input) equal to `want` on the feeds: its name, the
    largest difference, its ONNX element type."""
    import onnx
    import onnxruntime as ort

    g = proto.graph
    down = {text_input}
    order: list[str] = []
    for node in g.node:
        if any(i in down for i in node.input):
            for o in node.output:
                if o:
                    down.add(o)
                    order.append(o)
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    have = {o.name for o in m.graph.output}
    for name in order:
        if name not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    # every tensor of the graph is an output: a few documents at a time (a character n-gram graph holds tensors
    # of documents x characters x n-grams; 64 long documents at once took 4.3 GB)
    n = len(want)
    found: dict[str, tuple[float, int]] = {}  # tensor -> (largest difference so far, element type)
    for i0 in range(0, n, FIND_CHUNK):
        res = dict(zip(names, sess.run(None, {k: v[i0:i0 + FIND_CHUNK] for k, v in feeds.items()})))
        part = want[i0:i0 + FIND_CHUNK]
        for name in order:
            if i0 and name not in found:
                continue
            v = res.get(name)
            if v is None or not isinstance(v, np.ndarray) or v.dtype.kind != "f" or v.size != part.size:
                found.pop(name, None)
                continue
            kind = 11 if v.dtype == np.float64 else 1
            v = v.reshape(part.shape).astype(np.float64)
            if not np.allclose(v, part, rtol=1e-3, atol=1e-5):
                found.pop(name, None)
                continue
            e = float(np.max(np.abs(v - part), initial=0.0))
            found[name] = (max(e, found[name][0]) if name in found else e, kind)
        del res
    best, err, elem = None, np.inf, 1
    for name in order:
        if name in found:
            best, (err, elem) = name, found[name]  # the last one along the graph wins
    # ... except a Cast of it (a float32 vector widened to float64 for a wide dot product: its values are still
    # the float32 vector's, whose rounding the bound must count; the Cast belongs to what follows)
    casts = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Cast" and n.output}
    while best in casts and casts[best] in found:
        best = casts[best]
        err, elem = found[best]
    if best is None:
        raise NotSymbolic("no tensor of the converted graph equals the vectorizer's output on the documents")
    return best, err, elem


def _cut_graph(proto: Any, cut: str, width: int, elem: int) -> Any:
    """The graph from the vectorizer's output on: `cut` becomes an input [N, width]; nodes before it go."""
    import onnx
    from onnx import helper

    g = proto.graph
    keep, needed = slice_after(g, cut)
    inputs = [helper.make_tensor_value_info(cut, elem, [None, width])]
    for vi in g.input:
        if vi.name in needed:
            if vi.type.tensor_type.elem_type == 8:
                raise NotSymbolic(f"the text input {vi.name} reaches the model by another path than the vectorizer")
            inputs.append(vi)
    inits = [i for i in g.initializer if i.name in needed]
    graph = helper.make_graph(keep, g.name + "_after_vectorizer", inputs, list(g.output), inits)
    m = helper.make_model(graph, opset_imports=list(proto.opset_import))
    m.ir_version = proto.ir_version
    onnx.checker.check_model(m)
    return m


def _box(trans: Any, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box of the vectorizer's outputs: normalised rows stay in [0, 1] ([-1, 1] signed); else the documents'."""
    last = trans.steps[-1][1] if type(trans).__name__ == "Pipeline" else trans
    norm = getattr(last, "norm", None)
    signed = bool(getattr(last, "alternate_sign", False)) or bool(np.any(values < 0))
    width = values.shape[1]
    if norm in ("l1", "l2"):
        return np.full(width, -1.0 if signed else 0.0), np.ones(width)
    lo = np.minimum(values.min(axis=0), 0.0)
    return lo, np.maximum(values.max(axis=0), 0.0)


def _ball(trans: Any, values: np.ndarray, cut: str) -> tuple[str, frozenset, bool] | None:
    """The norm ball a normalised vectorizer's rows lie in (each row has norm 1, or is 0 for an empty one)."""
    last = trans.steps[-1][1] if type(trans).__name__ == "Pipeline" else trans
    norm = getattr(last, "norm", None)
    if norm not in ("l1", "l2"):
        return None
    signed = bool(getattr(last, "alternate_sign", False)) or bool(np.any(values < 0))
    return norm, frozenset((cut, j) for j in range(values.shape[1])), signed


@certification_method(METHOD, priority=15)
def certify_text(original: Any, converted: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    """Certificates for models of documents over their vectorizer's outputs (None when there is no vectorizer)."""
    if getattr(original, "format", None) not in ("sklearn", "pickle") or not hasattr(original, "estimator") \
            or getattr(converted, "format", None) != "onnx" or not hasattr(converted, "proto"):
        return None
    texts = find_text(original.estimator)
    if not texts:
        return None
    t0 = time.perf_counter()

    def all_not(reason: str) -> dict[str, Certificate]:
        return {n: not_certifiable(n, reason) for n in ctx.outputs}

    if len(texts) != 1:
        return all_not(f"{len(texts)} text vectorizers (one is read)")
    trans, cols = texts[0]
    strings = [s.name for s in original.signature.inputs if s.is_string]
    text_input = (cols if isinstance(cols, str) else (cols[0] if cols is not None and len(cols) == 1 else None)) \
        if cols is not None else (strings[0] if len(strings) == 1 else None)
    if text_input is None or text_input not in {s.name for s in converted.signature.inputs}:
        return all_not("the vectorizer's column is not one input of the converted model")
    docs = _documents(domain, text_input)
    if not docs:
        return all_not(f"no documents of the input {text_input} in the domain (give data=)")
    try:
        from . import onnx_more_ops  # noqa: F401
        from .affine import imply_labels
        from .joint import certify_programs
        from .onnx_program import read_onnx
        from .sklearn_program import read_sklearn
        from .symbolic import Space

        from ..equivalence.inputs import feed

        want = _transform(trans, cols, docs)  # every document: the box, the most terms
        pick = np.sort(np.random.default_rng(0).permutation(len(docs))[:MAX_DOCS])
        rows = np.asarray(docs, dtype=object)[pick].reshape(-1, 1)
        feeds = feed(ctx.make_feeds(rows, [(text_input, 0)]), converted)
        cut, err, elem = _find_cut(converted.proto, feeds, want[pick], text_input)
        # the vectorizer is assumed to agree beyond these documents: it must agree on them to its own rounding
        # (a float32 tensor: a few ulps of its values; float64: far less), not merely to 1e-3 (a changed
        # sublinear tf 1 + log(tf) moves the vectors by 1e-3 relative and every score after them)
        scale = max(1.0, float(np.max(np.abs(want[pick]), initial=0.0)))
        if err > (4e-6 if elem == 1 else 1e-11) * scale:
            raise NotSymbolic(f"the converted vectorizer's output ({cut}) differs from scikit-learn's by {err:.3g} "
                              "on the domain's documents, more than its rounding")
        sub_proto = _cut_graph(converted.proto, cut, want.shape[1], elem)
        lo, hi = _box(trans, want)
        cols_ = {k: v for k, v in domain.columns.items() if k[0] != text_input}
        for j in range(want.shape[1]):
            cols_[(cut, j)] = DomainColumn(lo=float(lo[j]), hi=float(hi[j]))
        sub = Domain(cols_, domain.source)
        space = Space(sub)
        ball = _ball(trans, want, cut)
        if ball is not None:
            space.balls.append(ball)
        most = int(np.max((want != 0).sum(axis=1), initial=1))
        space.nonzero.append((frozenset((cut, j) for j in range(want.shape[1])), most))
        documents = _documents_set(trans, docs, most)
        if documents is not None:
            space.documents.append(({(cut, j): j for j in range(want.shape[1])}, documents))
        if type(trans).__name__ == "CountVectorizer":  # counts (or 0/1): integers for every document
            space.integral.update((cut, j) for j in range(want.shape[1]))
        space.cuts = {id(trans): (cut, want.shape[1]), "inputs": (text_input,)}
        pa = read_sklearn(original, space, "original")
        pb = read_onnx(sub_proto, space, "converted")
        certs = certify_programs(pa, pb, original, converted, sub, ctx, METHOD, t0)
    except NotSymbolic as exc:
        # the vectorizer's output was not found (a changed vocabulary?) or what follows has no reading: the
        # models may still differ on real documents
        try:
            cand = _candidate_documents(trans, docs, ctx, text_input)
        except Exception:  # noqa: BLE001 - then there is nothing to try
            return all_not(f"no reading after the text vectorizer: {exc}")
        return {n: Certificate(n, REFUTED, method=METHOD, reason=f"no reading after the text vectorizer ({exc}); "
                               "a refutation is sought on documents", candidates=cand) for n in ctx.outputs}
    imply_labels(certs)
    note = ASSUMPTION.format(n=len(pick), err=err, most=most)
    if documents is not None:
        note += (f"; float32 dot products over the vectors are bounded over the tf-idf vectors of such documents "
                 f"({documents.describe()}, the most in the domain's documents)")
    cand = _candidate_documents(trans, docs, ctx, text_input)
    for name, cert in certs.items():
        cert.details["assumption"] = note
        cert.details["vectorizer_output"] = {"tensor": cut, "width": int(want.shape[1]), "most_terms": most,
                                            "box": (f"[{lo.min():g}, 1] per term, in the unit {ball[0]} ball"
                                                    if ball is not None else "[0, the largest value in the "
                                                    "documents] per term")}
        cert.arithmetic = (cert.arithmetic or "") + "; " + note
        cert.domain = None
        if cert.status == NOT_CERTIFIABLE:
            # a point of the vectors' box is not a document: real documents are tried (the refutation stands only
            # when one of them reproduces a difference beyond the tolerance)
            cert.status, cert.counterexample, cert.candidates = REFUTED, None, cand
            cert.reason = f"{cert.reason or 'the proved bound exceeds the tolerance'} (a refutation is sought on " \
                "documents)"
        elif cert.status == REFUTED and cert.counterexample and not cert.counterexample.get("verified"):
            cert.counterexample, cert.candidates = None, cand
    return certs


def _documents_set(trans: Any, docs: list[str], most: int) -> Any:
    """The tf-idf vectors' `documents.Documents` set (idf weights, tf, the domain's documents' largest count, total
    and number of distinct terms) for an l2-normalised TfidfVectorizer or CountVectorizer + TfidfTransformer; None
    for other vectorizers (hashing, raw counts, l1)."""
    from sklearn.feature_extraction.text import CountVectorizer

    from .documents import Documents

    steps = [s for _, s in trans.steps] if type(trans).__name__ == "Pipeline" else [trans]
    names = [type(s).__name__ for s in steps]
    if names == ["TfidfVectorizer"]:
        counter, weights = steps[0], steps[0]
    elif names == ["CountVectorizer", "TfidfTransformer"]:
        counter, weights = steps[0], steps[1]
    else:
        return None
    if getattr(weights, "norm", None) != "l2" or not getattr(counter, "vocabulary_", None):
        return None
    counts = CountVectorizer.transform(counter, docs)  # the vocabulary terms' counts (1 when binary)
    if counts.shape[0] == 0 or counts.nnz == 0:
        return None
    V = counts.shape[1]
    idf = np.asarray(weights.idf_, dtype=np.float64) if getattr(weights, "use_idf", True) else np.ones(V)
    if len(idf) != V or not np.all(idf > 0):
        return None
    tf = "binary" if getattr(counter, "binary", False) else \
        ("sublinear" if getattr(weights, "sublinear_tf", False) else "raw")
    return Documents(idf=idf, tf=tf, max_count=int(counts.max()), max_total=int(counts.sum(axis=1).max()),
                     max_terms=int(most))


def _candidate_documents(trans: Any, docs: list[str], ctx: Context, text_input: str) -> list[dict[str, np.ndarray]]:
    """Documents to verify a refutation on: the domain's, each vocabulary term alone (once and repeated), and
    concatenations of 2 to 8 of the domain's documents."""
    vec = trans.steps[0][1] if type(trans).__name__ == "Pipeline" else trans
    terms: list[str] = []
    vocab = getattr(vec, "vocabulary_", None)
    if vocab:
        terms = [str(t) for t in vocab]
    extra = terms + [" ".join([t] * 3) for t in terms]
    # longer documents made of the domain's: larger counts reach the float32 rounding of long sums
    rng = np.random.default_rng(0)
    joined = [" ".join(rng.choice(docs, int(k))) for k in rng.integers(2, 9, CONCATENATIONS)] if docs else []
    batch = list(docs) + extra + joined
    out = []
    for i in range(0, len(batch), 512):
        rows = np.asarray(batch[i:i + 512], dtype=object).reshape(-1, 1)
        out.append(ctx.make_feeds(rows, [(text_input, 0)]))
    return out
