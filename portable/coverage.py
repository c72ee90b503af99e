"""Which scikit-learn estimators portable converts to ONNX, as data.

Every estimator in `sklearn.utils.all_estimators()` that can predict or transform new data either converts
(through skl2onnx, or through portable's own converters registered with `@sklearn_converter` in
`portable.converters.sklearn`) and agrees with scikit-learn in float32 and float64, or is listed here with
the reason it does not. `tests/test_coverage.py` proves the table both ways (a listed failure that starts to
pass fails the test), and `portable formats --estimators` prints it.
"""
from __future__ import annotations

from dataclasses import dataclass

INFERENCE_METHODS = ("predict", "transform", "predict_proba", "decision_function")

# Not a numeric matrix in: portable's scikit-learn signature is a matrix `X` (or DataFrame columns); these take
# text, dicts, label vectors or images. They still convert inside a pipeline that feeds them what they expect
# where skl2onnx supports them (CountVectorizer, TfidfVectorizer, DictVectorizer...).
NOT_A_MATRIX: dict[str, str] = {
    "CountVectorizer": "takes raw text documents, not a numeric matrix",
    "TfidfVectorizer": "takes raw text documents, not a numeric matrix",
    "HashingVectorizer": "takes raw text documents, not a numeric matrix",
    "DictVectorizer": "takes a list of dicts, not a numeric matrix",
    "FeatureHasher": "takes dicts or strings, not a numeric matrix",
    "LabelEncoder": "transforms target labels y, not features",
    "LabelBinarizer": "transforms target labels y, not features",
    "MultiLabelBinarizer": "transforms target label sets y, not features",
    "PatchExtractor": "takes a batch of images [N, H, W(, C)], not a matrix",
}

# Their transform of one row depends on the other rows of the batch (a stopping criterion shared by the whole
# batch: NMF(3).fit(X).transform(X)[:5] differs from the rows transformed one at a time by 2.7e-7, MiniBatchNMF by
# 7e-4), so the output is not a function of the input row that any converted model could compute.
BATCH_DEPENDENT: dict[str, str] = {
    "NMF": "transform of one row depends on the rest of the batch (shared convergence test of its solver)",
    "MiniBatchNMF": "transform of one row depends on the rest of the batch (shared convergence test of its solver)",
}

# Inference-capable, but no conversion that agrees with scikit-learn in both dtypes (yet): the reason for each.
EXPECTED_FAILURES: dict[str, str] = {
    "DictionaryLearning": "transform solves a sparse-coding problem (OMP/LARS) per sample: no closed form",
    "MiniBatchDictionaryLearning": "transform solves a sparse-coding problem (OMP/LARS) per sample",
    "SparseCoder": "transform solves a sparse-coding problem (OMP/LARS) per sample",
}


# Configurations of estimators that otherwise convert, refused with a clear error (the reason is the message's
# gist); tests/test_pipelines.py, tests/test_why_estimators.py and tests/test_boosting_options.py hold them to it.
REFUSED_CONFIGURATIONS: dict[str, str] = {
    "CountVectorizer/TfidfVectorizer/HashingVectorizer(analyzer=callable, tokenizer=..., preprocessor=...)":
        "Python code",
    "CountVectorizer/TfidfVectorizer/HashingVectorizer(strip_accents=...)":
        "Unicode normalization, which no ONNX operator performs",
    "CountVectorizer/TfidfVectorizer/HashingVectorizer(token_pattern with a group, look-around, back-reference)":
        "onnxruntime's Tokenizer (RE2) returns whole matches and has no look-around or back-references",
    "CountVectorizer/TfidfVectorizer(lowercase=True) over non-ASCII words":
        "the portable C locale lowercases ASCII letters only",
    "FunctionTransformer / TransformedTargetRegressor with a Python function":
        "arbitrary Python; numpy element-wise functions and np.clip convert, others can be registered",
    "an estimator fitted directly on object (string) DataFrame columns":
        "no encoder to read; pandas `category` columns (HistGradientBoosting from_dtype, LightGBM, XGBoost "
        "enable_categorical) and a ColumnTransformer with an encoder convert",
    "CatBoost with cat_features": "CatBoost's ordered target statistics of categories are not exported",
    "multi-output classifiers other than trees/forests, MLP, RidgeClassifier[CV], MultiOutputClassifier, "
    "ClassifierChain": "one label output per model; those listed give one output per target",
    "LGBMClassifier(objective=callable)": "LightGBM's predict/predict_proba return raw scores, not labels",
    "SimpleImputer(add_indicator=True) on string columns": "strings and indicator numbers in one ONNX tensor",
}


@dataclass(frozen=True)
class Row:
    """One estimator: how (or why not) it converts."""

    name: str
    module: str
    status: str  # converts | fails | not a matrix | batch-dependent | no inference
    converter: str  # portable | skl2onnx | ""
    reason: str = ""


def portable_converted() -> set[str]:
    """Names of the estimators converted by portable's own converters (numpy-only imports)."""
    from .converters.sklearn.registry import converted_names

    return converted_names()


def estimator_table() -> list[Row]:
    """A row for every estimator in `sklearn.utils.all_estimators()`, sorted by name."""
    import importlib

    from sklearn.utils import all_estimators

    for flag in ("enable_iterative_imputer", "enable_halving_search_cv"):  # list the experimental ones too
        try:
            importlib.import_module(f"sklearn.experimental.{flag}")
        except ImportError:
            pass
    ours = portable_converted()
    rows = []
    for name, cls in sorted(all_estimators()):
        module = cls.__module__
        if not any(hasattr(cls, m) for m in INFERENCE_METHODS):
            rows.append(Row(name, module, "no inference", "",
                            "no predict or transform for new data (transductive or a fitted statistic only)"))
        elif name in NOT_A_MATRIX:
            rows.append(Row(name, module, "not a matrix", "", NOT_A_MATRIX[name]))
        elif name in BATCH_DEPENDENT:
            rows.append(Row(name, module, "batch-dependent", "", BATCH_DEPENDENT[name]))
        elif name in EXPECTED_FAILURES:
            rows.append(Row(name, module, "fails", "portable" if name in ours else "skl2onnx",
                            EXPECTED_FAILURES[name]))
        else:
            rows.append(Row(name, module, "converts", "portable" if name in ours else "skl2onnx"))
    return rows


def summary(rows: list[Row] | None = None) -> dict[str, int]:
    """Counts: converting estimators, the inference-capable ones on a numeric matrix, and all of them."""
    rows = estimator_table() if rows is None else rows
    capable = [r for r in rows if r.status in ("converts", "fails")]
    return {"converts": sum(r.status == "converts" for r in rows), "inference_capable": len(capable),
            "inference_capable_any_input": len(capable) + sum(r.status in ("not a matrix", "batch-dependent")
                                                              for r in rows),
            "portable": sum(r.status == "converts" and r.converter == "portable" for r in rows),
            "all": len(rows)}
