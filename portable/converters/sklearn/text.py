"""Text vectorizers: what onnxruntime's tokenizer can reproduce, and a clear refusal for what it cannot.

skl2onnx converts CountVectorizer / TfidfVectorizer / TfidfTransformer to StringNormalizer + Tokenizer +
TfIdfVectorizer nodes (word analyzer, token pattern as an RE2 regex, lowercase, n-grams, stop words, min_df /
max_df / max_features through the fitted vocabulary, binary, sublinear_tf, norm). portable writes the
StringNormalizer in the C locale (`outputs.py`), so artifacts load on machines without `en_US.UTF-8`.

Refused, with the reason (these are `check` converters: they run before skl2onnx and convert nothing):
- `analyzer="char"` / `"char_wb"` or a callable analyzer: onnxruntime's Tokenizer produces word tokens only;
- a custom `tokenizer` or `preprocessor`, `strip_accents`, `input` other than "content": Python code or Unicode
  normalization that no ONNX operator performs;
- `lowercase=True` with a non-ASCII vocabulary: the C locale lowercases ASCII letters only;
- a `token_pattern` with look-around or back-references: RE2 (onnxruntime's regex engine) has neither;
- word n-grams (`ngram_range` above 1) with `stop_words`: scikit-learn pairs the words left after removing the
  stop words; onnxruntime's StringNormalizer only filters 1-d tensors, not a tokenized batch;
- HashingVectorizer: MurmurHash3 of tokens has no ONNX operator.
"""
from __future__ import annotations

import re
from typing import Any

from ...errors import UnsupportedModelError
from .registry import sklearn_converter

_RE2_MISSING = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=")


def refusal_reasons(est: Any) -> list[str]:
    """Why onnxruntime cannot reproduce this fitted vectorizer (empty when it can)."""
    out = []
    if est.ngram_range[1] > 1 and est.stop_words is not None:
        out.append("word n-grams with stop_words: scikit-learn joins the words left after removing stop words, "
                   "and onnxruntime's StringNormalizer cannot remove words from a tokenized batch")
    if callable(est.analyzer) or est.analyzer != "word":
        out.append(f"analyzer={est.analyzer!r}: onnxruntime's Tokenizer makes word tokens only")
    if est.tokenizer is not None or est.preprocessor is not None:
        out.append("a custom tokenizer/preprocessor is Python code")
    if est.strip_accents is not None:
        out.append(f"strip_accents={est.strip_accents!r}: no ONNX operator normalizes Unicode")
    if est.input != "content":
        out.append(f"input={est.input!r}: the ONNX input is the text itself")
    if est.token_pattern and _RE2_MISSING.search(est.token_pattern):
        out.append(f"token_pattern={est.token_pattern!r} uses look-around or back-references, which RE2 lacks")
    vocab = getattr(est, "vocabulary_", {})
    if est.lowercase and any(not str(w).isascii() for w in vocab):
        out.append("lowercase=True with non-ASCII words in the vocabulary: the portable C locale lowercases "
                   "ASCII letters only")
    return out


def check_vectorizer(est: Any) -> None:
    reasons = refusal_reasons(est)
    if reasons:
        raise UnsupportedModelError(f"{type(est).__name__} cannot be reproduced by onnxruntime's text operators: "
                                    + "; ".join(reasons))


@sklearn_converter("sklearn.feature_extraction.text.CountVectorizer",
                   "sklearn.feature_extraction.text.TfidfVectorizer", kind="transformer", style="check")
def check_ngrams(est: Any) -> None:
    """skl2onnx's converter as it is (wrapping it makes skl2onnx 1.20's conversion loop forever), so word
    n-grams are refused: skl2onnx's tokenizer keeps the one-letter words scikit-learn's default pattern drops."""
    check_vectorizer(est)
    if est.ngram_range[1] > 1:
        raise UnsupportedModelError(f"{type(est).__name__} with word n-grams (ngram_range above 1) cannot be "
                                    "reproduced: skl2onnx 1.20's tokenizer keeps the one-letter words "
                                    "scikit-learn drops, so the word pairs differ")


@sklearn_converter("sklearn.feature_extraction.text.HashingVectorizer", kind="transformer", style="check")
def check_hashing(est: Any) -> None:
    raise UnsupportedModelError("HashingVectorizer hashes tokens with MurmurHash3, which no ONNX operator "
                                "computes; use CountVectorizer or TfidfVectorizer (a fitted vocabulary)")
