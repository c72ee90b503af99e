"""Text vectorizers (portable's own graph: `portable.converters.sklearn.text`) against scikit-learn on documents
hypothesis varies: every analyzer (word, char, char_wb), n-gram ranges, stop words, binary, sublinear_tf, norms,
HashingVectorizer's MurmurHash3; white space of every kind, punctuation, digits, non-ASCII letters, empty
documents. Run with onnxruntime directly, in float32 and float64."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS = ["The quick brown fox jumps over the lazy dog", "a b c  d\te\nf", "Fox-trot: 42 dogs, 7 cats!",
          "caf\u00e9 na\u00efve stra\u00dfe", "lazy lazy dog dog dog", "x", "", "under_score snake_case  words",
          "the end of the story is the end", "Zebra QUICK quick Quick"]
# letters (ASCII and not, capitals included), digits, punctuation, and white space scikit-learn's \s knows
ALPHABET = "abcdefghijklmnopqrstuvwxyzQUICKFOX0123456789 _-.,!?'\u00e9\u00df\u00c9\u00e0\t\n\r\x0b\x0c\x1c\x85\xa0\u2003"
DOCS = st.lists(st.text(alphabet=ALPHABET, max_size=40) | st.sampled_from(CORPUS), min_size=1, max_size=6)

CONFIGS = {
    "count_word": "CountVectorizer()",
    "count_word_pairs_stop": "CountVectorizer(ngram_range=(1, 3), stop_words=['the', 'of', 'is'])",
    "count_binary_pairs": "CountVectorizer(ngram_range=(2, 2), binary=True, lowercase=False)",
    "count_pattern": "CountVectorizer(token_pattern=r'[a-z]+|\\d')",
    "tfidf_char": "TfidfVectorizer(analyzer='char', ngram_range=(1, 3), lowercase=False)",
    "tfidf_char_wb": "TfidfVectorizer(analyzer='char_wb', ngram_range=(2, 5), sublinear_tf=True, lowercase=False)",
    "tfidf_char_wb_l1": "TfidfVectorizer(analyzer='char_wb', ngram_range=(3, 4), norm='l1', lowercase=False)",
    "tfidf_word_no_idf": "TfidfVectorizer(ngram_range=(1, 2), use_idf=False, norm=None, lowercase=False)",
    "hashing": "HashingVectorizer(n_features=64, lowercase=False)",
    "hashing_char_binary": "HashingVectorizer(n_features=32, analyzer='char_wb', ngram_range=(1, 3), binary=True, "
                           "alternate_sign=True, lowercase=False)",
    "hashing_pairs_unsigned": "HashingVectorizer(n_features=16, ngram_range=(1, 2), alternate_sign=False, "
                              "norm='l1', lowercase=False)",
    # TfidfTransformer after a CountVectorizer: an empty row under norm='l1' was 0/0 = NaN in float64
    "count_then_tfidf_l1": "make_pipeline(CountVectorizer(lowercase=False), TfidfTransformer(norm='l1'))",
    "count_then_tfidf_sublinear": "make_pipeline(CountVectorizer(ngram_range=(1, 2), lowercase=False), "
                                  "TfidfTransformer(sublinear_tf=True, smooth_idf=False))",
    "binary_then_tf_only": "make_pipeline(CountVectorizer(binary=True, lowercase=False), "
                           "TfidfTransformer(use_idf=False, norm=None))",
}
_CACHE: dict = {}


def _converted(name: str, dtype: str):
    import onnxruntime as ort
    from sklearn.feature_extraction import text

    import portable

    if (name, dtype) not in _CACHE:
        from sklearn.pipeline import make_pipeline

        vec = eval(CONFIGS[name], {**vars(text), "make_pipeline": make_pipeline})  # noqa: S307  (a fixed table)
        first = vec.steps[0][1] if hasattr(vec, "steps") else vec
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # lowercase=True over non-ASCII words is refused (the C locale): those fit on the ASCII documents
            vec.fit([d for d in CORPUS if d.isascii() or not first.lowercase])
        art = portable.convert(vec, to="onnx", dtype=dtype, check=False)
        sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
        _CACHE[name, dtype] = vec, sess
    return _CACHE[name, dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=DOCS)
def test_vectorizer_matches_sklearn(name: str, dtype: str, docs: list[str]) -> None:
    vec, sess = _converted(name, dtype)
    want = vec.transform(docs)
    want = want.toarray() if hasattr(want, "toarray") else want
    got = sess.run(None, {"X": np.array(docs, dtype=object).reshape(-1, 1)})[0]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_lowercase_word_pairs_with_ascii_vocabulary() -> None:
    """lowercase=True (the default) with an ASCII vocabulary: capitals outside ASCII reach no vocabulary word
    either way, so the counts match for any text."""
    import onnxruntime as ort
    from sklearn.feature_extraction.text import TfidfVectorizer

    import portable

    corpus = [d for d in CORPUS if d.isascii()]
    vec = TfidfVectorizer(ngram_range=(1, 2)).fit(corpus)
    art = portable.convert(vec, to="onnx", dtype="float64", check=False)
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    docs = ["THE QUICK \u00c9T\u00c9 Fox", "Lazy  DOG\u2003dog", "", "\u00c0 the end"]
    got = sess.run(None, {"X": np.array(docs, dtype=object).reshape(-1, 1)})[0]
    np.testing.assert_allclose(got, vec.transform(docs).toarray(), rtol=1e-12, atol=1e-12)


def test_hashing_vectorizer_hashes_words_it_never_saw() -> None:
    """No vocabulary: a word never seen anywhere still lands in scikit-learn's column with scikit-learn's sign."""
    import onnxruntime as ort
    from sklearn.feature_extraction.text import HashingVectorizer

    import portable

    vec = HashingVectorizer(n_features=2 ** 12, norm=None)
    art = portable.convert(vec, to="onnx", dtype="float64", check=False)
    sess = ort.InferenceSession(art.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    docs = ["zygomorphic quixotry flummoxed", "supercalifragilistic 2026 words"]
    got = sess.run(None, {"X": np.array(docs, dtype=object).reshape(-1, 1)})[0]
    np.testing.assert_array_equal(got, vec.transform(docs).toarray())
