"""The loader against what people really pickle: every scikit-learn estimator that builds with defaults plus the
containers and tutorial pipelines portable converts (ensembles, ColumnTransformer over DataFrames with strings,
FeatureUnion, searches, calibration, one-vs-rest, multi-output, feature selection, target transforms...), each
saved with pickle, joblib and skops, loaded by portable with no --trust and compared with what pickle.loads /
joblib.load / skops give (predictions on the training rows).

Run: python -m tests.hostile.container_sweep [--convert]   (--convert: also `portable convert FILE --to onnx`
through the Python API, check on, for the containers and pipelines)
"""
from __future__ import annotations

import io
import pickle
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .payloads import load_unsafely

FORMATS = ("pickle", "joblib", "skops")


def _xy(kind: str) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(80, 4))) + 0.1
    if kind == "classifier":
        return X, (X[:, 0] + X[:, 1] > np.median(X[:, 0] + X[:, 1])).astype(int)
    if kind == "multiclass":
        return X, np.digitize(X[:, 0], np.quantile(X[:, 0], [0.33, 0.66]))
    if kind == "regressor":
        return X, X @ np.array([1.0, 2.0, 0.5, 0.0])
    if kind == "multioutput":
        return X, np.c_[X @ np.array([1.0, 2.0, 0.5, 0.0]), X[:, 0] - X[:, 1]]
    if kind == "multilabel":
        return X, np.c_[X[:, 0] > np.median(X[:, 0]), X[:, 1] > np.median(X[:, 1])].astype(int)
    return X, None


def _frame() -> tuple[Any, Any]:
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"age": rng.normal(40, 12, n), "fare": rng.gamma(2, 10, n),
                       "sex": rng.choice(["male", "female"], n), "embarked": rng.choice(["S", "C", "Q"], n)})
    df.loc[::7, "age"] = np.nan
    y = ((df.sex == "female") | (df.fare > 25)).astype(int).to_numpy()
    return df, y


def containers() -> list[tuple[str, Callable[[], tuple[Any, Any]]]]:
    """(name, build) -> (fitted estimator, X) for the containers and tutorial pipelines."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, BaggingRegressor,
                                  HistGradientBoostingClassifier, RandomForestClassifier, StackingClassifier,
                                  StackingRegressor, VotingClassifier, VotingRegressor)
    from sklearn.feature_selection import RFE, SelectFromModel, SelectKBest, f_classif
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier, OutputCodeClassifier
    from sklearn.multioutput import ClassifierChain, MultiOutputClassifier, MultiOutputRegressor, RegressorChain
    from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline, make_union
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    def fit(est: Any, kind: str) -> Callable[[], tuple[Any, Any]]:
        def build() -> tuple[Any, Any]:
            X, y = _xy(kind)
            return est().fit(X, y), X
        return build

    def frame_fit(est: Any) -> Callable[[], tuple[Any, Any]]:
        def build() -> tuple[Any, Any]:
            X, y = _frame()
            return est().fit(X, y), X
        return build

    clf = [("lr", LogisticRegression()), ("dt", DecisionTreeClassifier(max_depth=3, random_state=0))]
    reg = [("r", Ridge()), ("dt", DecisionTreeRegressor(max_depth=3, random_state=0))]

    def titanic() -> Any:
        num = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        cat = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
        ct = ColumnTransformer([("num", num, ["age", "fare"]), ("cat", cat, ["sex", "embarked"])])
        return Pipeline([("prep", ct), ("clf", LogisticRegression())], memory=None)

    def titanic_selector() -> Any:
        ct = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
            ("cat", OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_include=object))])
        return make_pipeline(ct, RandomForestClassifier(n_estimators=10, random_state=0))

    def hgb_ordinal() -> Any:
        ct = ColumnTransformer([("cat", OrdinalEncoder(), ["sex", "embarked"])], remainder="passthrough")
        return make_pipeline(ct, HistGradientBoostingClassifier(max_iter=10, categorical_features=[0, 1]))

    def grid() -> Any:
        return GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()),
                            {"logisticregression__C": [0.1, 1.0]}, cv=3)

    return [
        ("VotingClassifier_soft", fit(lambda: VotingClassifier(clf, voting="soft"), "classifier")),
        ("VotingClassifier_hard", fit(lambda: VotingClassifier(clf), "multiclass")),
        ("VotingRegressor", fit(lambda: VotingRegressor(reg), "regressor")),
        ("StackingClassifier", fit(lambda: StackingClassifier(clf, cv=3), "multiclass")),
        ("StackingRegressor", fit(lambda: StackingRegressor(reg, cv=3), "regressor")),
        ("StackingClassifier_passthrough", fit(lambda: StackingClassifier(clf, cv=3, passthrough=True),
                                               "classifier")),
        ("Pipeline_memory_None", fit(lambda: Pipeline([("s", StandardScaler()), ("m", SVC())], memory=None),
                                     "classifier")),
        ("ColumnTransformer_titanic", frame_fit(titanic)),
        ("ColumnTransformer_selector", frame_fit(titanic_selector)),
        ("ColumnTransformer_ordinal_hgb", frame_fit(hgb_ordinal)),
        ("FeatureUnion", fit(lambda: make_pipeline(make_union(PCA(2), SelectKBest(f_classif, k=2)), SVC()),
                             "classifier")),
        ("FeatureUnion_named", fit(lambda: make_pipeline(FeatureUnion([("pca", PCA(2)), ("id", "passthrough")]),
                                                         LogisticRegression()), "classifier")),
        ("TransformedTargetRegressor_log", fit(lambda: TransformedTargetRegressor(
            LinearRegression(), func=np.log1p, inverse_func=np.expm1), "regressor")),
        ("TransformedTargetRegressor_scaler", fit(lambda: TransformedTargetRegressor(
            LinearRegression(), transformer=StandardScaler()), "regressor")),
        ("FunctionTransformer_log1p", fit(lambda: make_pipeline(FunctionTransformer(np.log1p), Ridge()),
                                          "regressor")),
        ("CalibratedClassifierCV", fit(lambda: CalibratedClassifierCV(SVC(), cv=3), "classifier")),
        ("CalibratedClassifierCV_isotonic", fit(lambda: CalibratedClassifierCV(
            DecisionTreeClassifier(max_depth=3), cv=3, method="isotonic"), "multiclass")),
        ("OneVsRestClassifier", fit(lambda: OneVsRestClassifier(LogisticRegression()), "multiclass")),
        ("OneVsOneClassifier", fit(lambda: OneVsOneClassifier(SVC()), "multiclass")),
        ("OutputCodeClassifier", fit(lambda: OutputCodeClassifier(LogisticRegression(), random_state=0),
                                     "multiclass")),
        ("MultiOutputRegressor", fit(lambda: MultiOutputRegressor(Ridge()), "multioutput")),
        ("MultiOutputClassifier", fit(lambda: MultiOutputClassifier(LogisticRegression()), "multilabel")),
        ("ClassifierChain", fit(lambda: ClassifierChain(LogisticRegression()), "multilabel")),
        ("RegressorChain", fit(lambda: RegressorChain(Ridge()), "multioutput")),
        ("GridSearchCV", fit(grid, "classifier")),
        ("GridSearchCV_best_estimator_", lambda: (lambda g, X: (g.best_estimator_, X))(*fit(grid, "classifier")())),
        ("RandomizedSearchCV", fit(lambda: RandomizedSearchCV(DecisionTreeClassifier(random_state=0),
                                                              {"max_depth": [2, 3, 4]}, n_iter=2, cv=3,
                                                              random_state=0), "classifier")),
        ("SelectFromModel", fit(lambda: make_pipeline(SelectFromModel(RandomForestClassifier(
            n_estimators=10, random_state=0)), LogisticRegression()), "classifier")),
        ("RFE", fit(lambda: RFE(LogisticRegression(), n_features_to_select=2), "classifier")),
        ("SelectKBest_pipeline", fit(lambda: make_pipeline(StandardScaler(), SelectKBest(f_classif, k=2),
                                                           LogisticRegression()), "classifier")),
        ("BaggingClassifier", fit(lambda: BaggingClassifier(DecisionTreeClassifier(), n_estimators=5,
                                                            random_state=0), "classifier")),
        ("BaggingRegressor", fit(lambda: BaggingRegressor(n_estimators=5, random_state=0), "regressor")),
        ("AdaBoostClassifier_tree", fit(lambda: AdaBoostClassifier(DecisionTreeClassifier(max_depth=2),
                                                                   n_estimators=5), "multiclass")),
    ]


def defaults() -> list[tuple[str, Callable[[], tuple[Any, Any]]]]:
    """Every estimator of all_estimators() that builds with defaults and fits on small data."""
    from sklearn.utils import all_estimators

    out = []
    for name, cls in all_estimators():
        kind = "classifier" if hasattr(cls, "predict_proba") or "Classifier" in name else (
            "regressor" if "Regressor" in name or "Regression" in name else "other")

        def build(cls: Any = cls, kind: str = kind) -> tuple[Any, Any]:
            est = cls()
            X, y = _xy(kind)
            try:
                return (est.fit(X, y) if y is not None else est.fit(X)), X
            except Exception:
                X, y = _xy("classifier")
                return cls().fit(X, y), X
        out.append((name, build))
    return out


def _save(est: Any, how: str, path: Path) -> Path:
    if how == "pickle":
        path = path.with_suffix(".pkl")
        path.write_bytes(pickle.dumps(est, protocol=5))
    elif how == "joblib":
        import joblib

        path = path.with_suffix(".joblib")
        joblib.dump(est, path)
    else:
        import skops.io as sio

        path = path.with_suffix(".skops")
        sio.dump(est, path)
    return path


def _outputs(est: Any, X: Any) -> list[Any]:
    out = []
    for m in ("predict", "predict_proba", "decision_function", "transform"):
        f = getattr(est, m, None)
        if f is None:
            continue
        try:
            got = f(X)
            out.append((m, np.asarray(got.toarray() if hasattr(got, "toarray") else got)))
        except Exception as exc:  # noqa: BLE001
            out.append((m, type(exc).__name__))
    return out


def _same(a: list, b: list) -> bool:
    if [m for m, _ in a] != [m for m, _ in b]:
        return False
    for (_m, x), (_n, y) in zip(a, b):
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc"):
            return False
    return True


@dataclass
class Outcome:
    refused: dict[str, str] = field(default_factory=dict)  # name/format -> message
    mishandled: dict[str, str] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)
    not_saved: dict[str, str] = field(default_factory=dict)  # the library itself cannot save/load it
    skipped: dict[str, str] = field(default_factory=dict)
    converted: dict[str, str] = field(default_factory=dict)  # name/format -> 'ok' or the error

    def summary(self) -> str:
        lines = [f"{len(self.loaded)} loaded as the libraries load them; {len(self.refused)} refused; "
                 f"{len(self.mishandled)} mishandled; {len(self.not_saved)} the library itself cannot save or load; "
                 f"{len(self.skipped)} not built"]
        lines += [f"  REFUSED {k}: {v}" for k, v in sorted(self.refused.items())]
        lines += [f"  MISHANDLED {k}: {v}" for k, v in sorted(self.mishandled.items())]
        lines += [f"  (library) {k}: {v}" for k, v in sorted(self.not_saved.items())]
        bad = {k: v for k, v in self.converted.items() if v != "ok"}
        if self.converted:
            lines.append(f"convert: {len(self.converted) - len(bad)}/{len(self.converted)} converted")
            lines += [f"  CONVERT {k}: {v}" for k, v in sorted(bad.items())]
        return "\n".join(lines)


def sweep(which: str = "all", convert: bool = False, formats: tuple[str, ...] = FORMATS) -> Outcome:
    import portable
    from portable.errors import PortableError
    from portable.safety import safe_load

    out = Outcome()
    tmp = Path(tempfile.mkdtemp())
    rows = (containers() if which in ("all", "containers") else []) + (defaults() if which in ("all", "defaults")
                                                                         else [])
    for name, build in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est, X = build()
            except Exception as exc:  # noqa: BLE001
                out.skipped[name] = f"{type(exc).__name__}: {str(exc)[:80]}"
                continue
            for how in formats:
                key = f"{name}/{how}"
                try:
                    path = _save(est, how, tmp / name)
                    ref = load_unsafely(how, path)
                except Exception as exc:  # noqa: BLE001
                    out.not_saved[key] = f"{type(exc).__name__}: {str(exc)[:120]}"
                    continue
                try:
                    got, _notes = safe_load(path)
                except PortableError as exc:
                    out.refused[key] = str(exc).split(": ", 1)[-1][:400]
                    continue
                except Exception as exc:  # noqa: BLE001
                    out.mishandled[key] = f"traceback: {type(exc).__name__}: {str(exc)[:200]}"
                    continue
                if type(got) is not type(ref) or not _same(_outputs(got, X), _outputs(ref, X)):
                    out.mishandled[key] = "loads, but computes something else than the library's own load"
                    continue
                out.loaded.append(key)
                if convert and which != "defaults":
                    try:
                        portable.convert(path, to="onnx", samples=200, data=X if hasattr(X, "columns") else None)
                        out.converted[key] = "ok"
                    except PortableError as exc:
                        out.converted[key] = str(exc)[:300]
    return out


if __name__ == "__main__":
    which = "all"
    for a in sys.argv[1:]:
        if a in ("containers", "defaults"):
            which = a
    print(sweep(which, convert="--convert" in sys.argv).summary())
