"""Text vectorizers written by portable: CountVectorizer, TfidfVectorizer and HashingVectorizer.

The graph follows scikit-learn's analyzer step by step, so every analyzer converts:

1. `lowercase`: `StringNormalizer` (C locale, `outputs.py`: the artifact loads without `en_US.UTF-8`);
2. tokens, with onnxruntime's `Tokenizer` (com.microsoft, RE2 regular expressions), `[N, T]` padded with "":
   - `word`: the matches of `token_pattern` (Python's Unicode `\\w`, `\\d`, `\\s` spelled as RE2 Unicode classes);
     `stop_words` are blanked and the remaining words moved together (`ScatterElements`) before pairing;
   - `char`: one character per token, a run of two or more white-space characters as one " " (scikit-learn's
     `\\s\\s+` -> " ");
   - `char_wb`: the white-space separated words, each padded with " " on both sides, split into characters
     (`[N, W, L]`); a padded word shorter than the smallest n is one n-gram, as in scikit-learn;
3. n-grams: `StringConcat` of shifted token slices (" " between words, nothing between characters), valid where
   the window's last token is;
4. features: the fitted `vocabulary_` (`LabelEncoder`, unknown = dropped), or for HashingVectorizer
   scikit-learn's signed 32-bit MurmurHash3 of the UTF-8 n-gram (onnxruntime's `MurmurHash3`, com.microsoft,
   seed 0), column `|h| mod n_features`, sign `+1` when `h >= 0` under `alternate_sign`; counted per row with
   `ScatterElements(reduction="add")`;
5. `binary`, `sublinear_tf`, `idf_`, `norm` (l1/l2; an all-zero row stays zero), in the conversion's dtype.

The com.microsoft operators (`Tokenizer`, `MurmurHash3`) are onnxruntime's: the artifacts run in onnxruntime,
not in runtimes without them (no standard ONNX operator tokenizes by a regular expression or hashes a string).

Refused, with the reason: a callable analyzer, tokenizer or preprocessor (Python code); `strip_accents`
(Unicode normalization, which no ONNX operator performs); `input` other than "content"; a `token_pattern` with a
capturing group, look-around or back-references (RE2 has neither), or one that matches the empty string;
`lowercase=True` with non-ASCII words in the vocabulary (the portable C locale lowercases ASCII letters only);
a `token_pattern` using `\\b` other than scikit-learn's default with a non-ASCII vocabulary (RE2's `\\b` is ASCII).
HashingVectorizer has no vocabulary to check: under `lowercase=True`, capital letters outside ASCII are not
lowercased (C locale), which the artifact's notes say.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from .emit import Emitter
from .registry import sklearn_converter

MS = "com.microsoft"
ML = "ai.onnx.ml"
DEFAULT_PATTERN = r"(?u)\b\w\w+\b"
# Python's str.isspace() characters (what `\s` and str.split() use), as an RE2 class body
_WS = r"\t-\r\x1c-\x1f\x85\p{Z}"
_WORD = r"\p{L}\p{N}_"  # Python's Unicode \w: str.isalnum() characters and "_"
_RE2_MISSING = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]|\(\?P=")


def re2_pattern(pattern: str) -> str:
    """A Python `re` token pattern as an RE2 pattern with the same Unicode classes."""
    if pattern == DEFAULT_PATTERN:  # maximal runs of two or more word characters: \b is implied
        return f"[{_WORD}][{_WORD}]+"
    pattern = pattern.replace("(?u)", "")
    out, i, in_class = [], 0, False
    classes = {"w": (_WORD, False), "W": (_WORD, True), "d": (r"\p{Nd}", False), "D": (r"\p{Nd}", True),
               "s": (_WS, False), "S": (_WS, True)}
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in classes:
                body, negated = classes[nxt]
                if in_class:
                    if negated:
                        raise UnsupportedModelError(f"token_pattern {pattern!r}: a negated class (\\{nxt}) inside "
                                                    "[...] has no RE2 spelling")
                    out.append(body)
                else:
                    out.append(f"[{'^' if negated else ''}{body}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class and out and out[-1] not in ("[", "[^"):
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def refusal_reasons(est: Any) -> list[str]:
    """Why onnxruntime cannot reproduce this fitted vectorizer (empty when it can)."""
    out = []
    if callable(est.analyzer):
        out.append("a callable analyzer is Python code")
    if est.tokenizer is not None or est.preprocessor is not None:
        out.append("a custom tokenizer/preprocessor is Python code")
    if est.strip_accents is not None:
        out.append(f"strip_accents={est.strip_accents!r}: no ONNX operator normalizes Unicode")
    if est.input != "content":
        out.append(f"input={est.input!r}: the ONNX input is the text itself")
    pattern = est.token_pattern
    if est.analyzer == "word" and pattern:
        if _RE2_MISSING.search(pattern):
            out.append(f"token_pattern={pattern!r} uses look-around or back-references, which RE2 lacks")
        else:
            compiled = re.compile(pattern)
            if compiled.groups:
                out.append(f"token_pattern={pattern!r} has a capturing group (scikit-learn keeps the group, "
                           "onnxruntime's Tokenizer the whole match)")
            if compiled.fullmatch(""):
                out.append(f"token_pattern={pattern!r} matches the empty string")
    vocab = getattr(est, "vocabulary_", {})
    non_ascii = any(not str(w).isascii() for w in vocab)
    if est.lowercase and non_ascii:
        out.append("lowercase=True with non-ASCII words in the vocabulary: the portable C locale lowercases "
                   "ASCII letters only")
    if est.analyzer == "word" and pattern and pattern != DEFAULT_PATTERN and "\\b" in pattern and non_ascii:
        out.append(f"token_pattern={pattern!r} uses \\b, which RE2 reads for ASCII letters only, and the "
                   "vocabulary has non-ASCII words")
    return out


def notes(estimator: Any) -> list[str]:
    """What a converted model's user should know about its text steps."""
    from ...formats.sklearn import walk

    return [f"{type(e).__name__}(lowercase=True): capital letters outside ASCII are not lowercased (the portable C "
            "locale), so words holding them hash to other columns than scikit-learn's"
            for e in walk(estimator) if type(e).__name__ == "HashingVectorizer" and e.lowercase]


def check_vectorizer(est: Any) -> None:
    reasons = refusal_reasons(est)
    if reasons:
        raise UnsupportedModelError(f"{type(est).__name__} cannot be reproduced by onnxruntime's text operators: "
                                    + "; ".join(reasons))


# -- graph pieces ---------------------------------------------------------------------------------------------

def _op(em: Emitter, op: str, inputs: list[str], hint: str, domain: str, version: int, **attrs: Any) -> str:
    from onnx import helper

    o = em.name(hint)
    em.container.nodes.append(helper.make_node(op, inputs, [o], name=em.name(op), domain=domain, **attrs))
    em.container.node_domain_version_pair_sets.add((domain, version))
    return o


def _i64(em: Emitter, v: Any) -> str:
    return em.const(np.asarray(v, dtype=np.int64), "i", dtype=np.int64)


def _tokens(em: Emitter, docs: str, pattern: str) -> str:
    from onnx import TensorProto

    tok = _op(em, "Tokenizer", [docs], "tok", MS, 1, mark=0, mincharnum=1, pad_value="", tokenexp=pattern)
    # onnx's shape inference does not know com.microsoft operators, and its LabelEncoder inference crashes (onnx
    # 1.23, segmentation fault) on an input of unknown type: the Cast states the type
    return em.node("Cast", [tok], "tokens", to=TensorProto.STRING)


def _pad_last(em: Emitter, tok: str, k: int) -> str:
    """`k` more "" at the end of the last axis (a batch of empty documents tokenizes to width 0)."""
    shape = em.node("Shape", [tok], "shape")
    lead = em.node("Slice", [shape, _i64(em, [0]), _i64(em, [-1])], "lead")
    pad_shape = em.node("Concat", [lead, _i64(em, [k])], "padshape", axis=0)
    pad = em.node("Expand", [em.const(np.array([""])), pad_shape], "pad")
    return em.node("Concat", [tok, pad], "padded", axis=-1)


def _window(em: Emitter, x: str, start: int, length: str) -> str:
    """x[..., start:start + length] (length a 1-element int64 tensor)."""
    end = em.node("Add", [length, _i64(em, [start])], "end")
    return em.node("Slice", [x, _i64(em, [start]), end, _i64(em, [-1])], "win")


def _ngrams(em: Emitter, tok: str, n_min: int, n_max: int, sep: str, whole_short: bool) -> list[tuple[str, str]]:
    """[(n-gram strings, valid mask)] for n in n_min..n_max over the last axis of `tok` ("" = no token)."""
    shape = em.node("Shape", [tok], "tshape")
    length = em.node("Slice", [shape, _i64(em, [-1]), _i64(em, [2 ** 62])], "len")
    padded = _pad_last(em, tok, n_max)
    present = em.node("Not", [em.node("Equal", [padded, em.const(np.array([""]))], "empty")], "present")
    out = []
    for n in range(n_min, n_max + 1):
        gram = _window(em, padded, 0, length)
        for k in range(1, n):
            if sep:
                gram = em.node("StringConcat", [gram, em.const(np.array([sep]))], "sep")
            gram = em.node("StringConcat", [gram, _window(em, padded, k, length)], "gram")
        valid = _window(em, present, n - 1, length)
        if whole_short and n == n_min:  # char_wb: a padded word shorter than n is one n-gram, at its start
            first = _window(em, present, 0, length)
            pos = em.node("Range", [_i64(em, 0), em.node("Squeeze", [length], "lensq"), _i64(em, 1)], "pos")
            at0 = em.node("Equal", [pos, _i64(em, 0)], "at0")
            valid = em.node("Or", [valid, em.node("And", [first, at0], "short")], "valid")
        out.append((gram, valid))
    return out


def _drop_stop_words(em: Emitter, tok: str, stop: list[str]) -> str:
    """Blank the stop words and move the remaining words together (scikit-learn pairs what is left)."""
    from onnx import TensorProto

    is_stop = em.node("Equal", [_op(em, "LabelEncoder", [tok], "stop", ML, 2, keys_strings=sorted(stop),
                                    values_int64s=[1] * len(stop), default_int64=0), _i64(em, 1)], "isstop")
    keep = em.node("And", [em.node("Not", [is_stop], "notstop"),
                           em.node("Not", [em.node("Equal", [tok, em.const(np.array([""]))], "e")], "ne")], "keep")
    keep_i = em.node("Cast", [keep], "keepi", to=TensorProto.INT64)
    pos = em.node("Sub", [em.node("CumSum", [keep_i, _i64(em, 1)], "cum"), _i64(em, 1)], "pos")
    width = em.node("Gather", [em.node("Shape", [tok], "s"), _i64(em, 1)], "width", axis=0)
    target = em.node("Where", [keep, pos, width], "target")
    blank = em.node("Where", [keep, tok, em.const(np.array([""]))], "blank")
    wide = _pad_last(em, blank, 1)
    moved = em.node("ScatterElements", [em.node("Where", [em.const(np.array([True]), dtype=bool), em.const(np.array([""])),
                                                          wide], "empty"), target, blank], "moved", axis=1)
    return _window(em, moved, 0, em.node("Unsqueeze", [width, _i64(em, [0])], "w1"))


def _analyze(em: Emitter, est: Any) -> list[tuple[str, str]]:
    """The n-grams of each document: [(strings, valid)] with shapes [N, L] (or [N, W, L] for char_wb)."""
    x = em.operator.inputs[0].full_name
    docs = em.node("Reshape", [x, _i64(em, [-1])], "docs")
    if est.lowercase:
        docs = em.node("StringNormalizer", [docs], "lower", case_change_action="LOWER", is_case_sensitive=1,
                       locale="C")
    n_min, n_max = est.ngram_range
    if est.analyzer == "word":
        tok = _tokens(em, docs, re2_pattern(est.token_pattern))
        stop = est.get_stop_words()
        if stop:
            if n_max == 1:  # single words: a stop word is simply not counted
                tok = em.node("Where", [em.node("Equal", [_op(em, "LabelEncoder", [tok], "stop", ML, 2,
                                                              keys_strings=sorted(stop),
                                                              values_int64s=[1] * len(stop), default_int64=0),
                                                          _i64(em, 1)], "isstop"), em.const(np.array([""])), tok],
                              "nostop")
            else:
                tok = _drop_stop_words(em, tok, list(stop))
        return _ngrams(em, tok, n_min, n_max, " ", False)
    if est.analyzer == "char":
        tok = _tokens(em, docs, f"[{_WS}][{_WS}]+|(?s:.)")
        runs = em.node("RegexFullMatch", [tok], "wsrun", pattern=f"[{_WS}][{_WS}]+")
        tok = em.node("Where", [runs, em.const(np.array([" "])), tok], "ws1")
        return _ngrams(em, tok, n_min, n_max, "", False)
    # str.split(); one more "" word, because the Tokenizer turns a [N, 0] batch of words into [N, 0], not [N, 0, 0]
    words = _pad_last(em, _tokens(em, docs, f"[^{_WS}]+"), 1)
    padded = em.node("StringConcat", [em.node("StringConcat", [em.const(np.array([" "])), words], "lpad"),
                                      em.const(np.array([" "]))], "wpad")
    padded = em.node("Where", [em.node("Equal", [words, em.const(np.array([""]))], "noword"),
                               em.const(np.array([""])), padded], "wpadded")
    chars = _tokens(em, padded, "(?s:.)")  # [N, W, L]
    return _ngrams(em, chars, n_min, n_max, "", True)


def _count(em: Emitter, cols: list[str], weights: list[str], width: int) -> str:
    """Per row, the sum of `weights` at columns `cols` ([N, ...] each; column -1 is dropped) -> [N, width]."""
    rows = [em.node("Reshape", [c, _i64(em, [0, -1])], "flat") for c in cols]
    vals = [em.node("Reshape", [w, _i64(em, [0, -1])], "wflat") for w in weights]
    idx = em.node("Concat", rows, "idx", axis=1) if len(rows) > 1 else rows[0]
    val = em.node("Concat", vals, "val", axis=1) if len(vals) > 1 else vals[0]
    idx = em.node("Where", [em.node("Less", [idx, _i64(em, 0)], "drop"), _i64(em, width), idx], "idxd")
    n = em.node("Slice", [em.node("Shape", [idx], "ishape"), _i64(em, [0]), _i64(em, [1])], "n")
    zeros = em.node("ConstantOfShape", [em.node("Concat", [n, _i64(em, [width + 1])], "zshape", axis=0)], "zeros",
                    value=_zero(em))
    counts = em.node("ScatterElements", [zeros, idx, val], "counts", axis=1, reduction="add")
    return em.node("Slice", [counts, _i64(em, [0]), _i64(em, [width]), _i64(em, [1])], "kept")


def _zero(em: Emitter) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.zeros(1, dtype=em.dtype))


def _normalize(em: Emitter, x: str, norm: str | None) -> str:
    if norm is None:
        return x
    if norm == "l2":
        size = em.node("Sqrt", [em.reduce("ReduceSum", em.node("Mul", [x, x], "sq"), 1, keepdims=1)], "l2")
    else:
        size = em.reduce("ReduceSum", em.node("Abs", [x], "abs"), 1, keepdims=1)
    size = em.node("Where", [em.node("Equal", [size, em.const(0.0)], "zero"), em.const(1.0), size], "size")
    return em.node("Div", [x, size], "normed")


@sklearn_converter("sklearn.feature_extraction.text.CountVectorizer",
                   "sklearn.feature_extraction.text.TfidfVectorizer", kind="transformer", replaces=True,
                   note="every analyzer (word, char, char_wb) and n-gram range, by portable")
def vectorizer(em: Emitter, est: Any) -> list[Any]:
    from onnx import TensorProto

    check_vectorizer(est)
    vocab = est.vocabulary_
    terms = sorted(vocab, key=vocab.get)
    grams = _analyze(em, est)
    to = TensorProto.DOUBLE if em.double else TensorProto.FLOAT
    cols, weights = [], []
    for gram, valid in grams:
        idx = _op(em, "LabelEncoder", [gram], "vocab", ML, 2, keys_strings=terms,
                  values_int64s=[int(vocab[t]) for t in terms], default_int64=-1)
        cols.append(em.node("Where", [valid, idx, _i64(em, -1)], "col"))
        weights.append(em.node("Cast", [valid], "one", to=to))
    tf = _count(em, cols, weights, len(terms))
    if est.binary:
        tf = em.node("Cast", [em.node("Greater", [tf, em.const(0.0)], "any")], "bin", to=to)
    if type(est).__name__ != "TfidfVectorizer":
        return [tf]
    return [_tfidf(em, tf, est)]


def _tfidf(em: Emitter, tf: str, est: Any) -> str:
    """`sublinear_tf`, `idf_` and `norm` of a TfidfVectorizer or TfidfTransformer over dense term counts."""
    if est.sublinear_tf:
        tf = em.node("Where", [em.node("Greater", [tf, em.const(0.0)], "nz"),
                               em.node("Add", [em.node("Log", [tf], "log"), em.const(1.0)], "log1"), tf], "sub")
    if est.use_idf:
        tf = em.node("Mul", [tf, em.const(np.asarray(est.idf_, dtype=np.float64)[None, :])], "tfidf")
    return _normalize(em, tf, est.norm)


@sklearn_converter("sklearn.feature_extraction.text.TfidfTransformer", kind="transformer", replaces=True,
                   note="by portable: a row of zeros stays zero under norm='l1' (skl2onnx's float64 graph divides "
                        "0 by 0)")
def tfidf_transformer(em: Emitter, est: Any) -> list[Any]:
    return [_tfidf(em, em.input(), est)]


@sklearn_converter("sklearn.feature_extraction.text.HashingVectorizer", kind="transformer",
                   note="MurmurHash3 through onnxruntime's com.microsoft operator")
def hashing_vectorizer(em: Emitter, est: Any) -> list[Any]:
    from onnx import TensorProto

    check_vectorizer(est)
    width = int(est.n_features)
    grams = _analyze(em, est)
    to = TensorProto.DOUBLE if em.double else TensorProto.FLOAT
    cols, signs, ones = [], [], []
    for gram, valid in grams:
        h = em.node("Cast", [_op(em, "MurmurHash3", [gram], "hash", MS, 1, seed=0, positive=0)], "h64",
                    to=TensorProto.INT64)
        col = em.node("Mod", [em.node("Abs", [h], "habs"), _i64(em, width)], "hmod")
        cols.append(em.node("Where", [valid, col, _i64(em, -1)], "col"))
        one = em.node("Cast", [valid], "one", to=to)
        ones.append(one)
        if est.alternate_sign:
            sign = em.node("Where", [em.node("Less", [h, _i64(em, 0)], "neg"), em.const(-1.0), em.const(1.0)],
                           "sign")
            signs.append(em.node("Mul", [one, sign], "signed"))
        else:
            signs.append(one)
    if est.binary:  # every column some n-gram hashed to is 1, even where the signs cancel (scikit-learn keeps
        # the explicit zero and fills it)
        hits = _count(em, cols, ones, width)
        out = em.node("Cast", [em.node("Greater", [hits, em.const(0.0)], "any")], "bin", to=to)
    else:
        out = _count(em, cols, signs, width)
    return [_normalize(em, out, est.norm)]
