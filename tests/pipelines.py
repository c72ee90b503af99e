"""Realistic pipelines, fitted the way tutorials and Kaggle notebooks fit them, as a reusable table.

`PIPELINES` is a list of `(name, builder)`; `builder()` returns `(fitted_pipeline, train_df, heldout_df)`.
`heldout_df` has rows the pipeline never saw: unseen categories and missing values (NaN, None, pd.NA) where
the pipeline can take them. The datasets are synthetic look-alikes (Titanic, house prices, product reviews) so
that nothing is downloaded. Other tests (the mutation benchmark, the conversion benchmark) import this table.

`build(name)` caches fitted pipelines per process. A frame whose only column is `X` holds documents for a pipeline
fitted on a sequence of texts (`documents(frame)` gives what its `predict` takes).
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

Built = tuple[Any, pd.DataFrame, pd.DataFrame]

_WORDS_POS = "great excellent love perfect happy wonderful fast recommend best amazing".split()
_WORDS_NEG = "bad terrible hate broken slow awful refund worst poor disappointed".split()
_WORDS_ANY = "the a product it is was this and very really item quality price delivery box".split()


def titanic(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "pclass": rng.choice([1, 2, 3], n, p=[0.25, 0.25, 0.5]).astype(np.int64),
        "sex": rng.choice(["male", "female"], n).astype(object),
        "age": np.round(rng.normal(30, 14, n).clip(1, 80), 1),
        "sibsp": rng.poisson(0.5, n).astype(np.int64),
        "fare": np.round(rng.lognormal(3, 1, n), 2),
        "embarked": rng.choice(["S", "C", "Q"], n, p=[0.7, 0.2, 0.1]).astype(object),
    })
    df.loc[rng.random(n) < 0.15, "age"] = np.nan
    df.loc[rng.random(n) < 0.05, "embarked"] = None
    logit = (df["sex"] == "female") * 2.0 - (df["pclass"] - 2) * 0.8 - df["age"].fillna(30) / 40 + rng.normal(0, 1, n)
    return df, (logit > 0).astype(int).to_numpy()


def titanic_heldout(seed: int = 1) -> pd.DataFrame:
    df, _ = titanic(60, seed)
    df.loc[0:3, "embarked"] = "X"  # a port never seen
    df.loc[4:6, "embarked"] = np.nan
    df.loc[7:9, "age"] = np.nan
    df.loc[10, "sex"] = None
    return df


def houses(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "area": np.round(rng.lognormal(7, 0.4, n), 0),
        "rooms": rng.integers(1, 8, n).astype(np.int64),
        "year": rng.integers(1900, 2020, n).astype(np.int64),
        "lot": np.round(rng.lognormal(8, 0.5, n), 0),
        "neighborhood": rng.choice(["north", "south", "east", "west", "center"], n).astype(object),
        "quality": rng.choice(["poor", "fair", "good", "excellent"], n).astype(object),
    })
    df.loc[rng.random(n) < 0.1, "lot"] = np.nan
    df.loc[rng.random(n) < 0.05, "quality"] = np.nan
    price = np.exp(5 + 0.8 * np.log(df["area"]) + 0.05 * df["rooms"] + (df["year"] - 1900) / 200
                   + (df["neighborhood"] == "center") * 0.3 + rng.normal(0, 0.1, n))
    return df, price.to_numpy()


def houses_heldout(seed: int = 1) -> pd.DataFrame:
    df, _ = houses(60, seed)
    df.loc[0:3, "neighborhood"] = "harbor"
    df.loc[4:6, "lot"] = np.nan
    df.loc[7:8, "quality"] = None
    return df


def reviews(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    texts = []
    for label in y:
        words = list(rng.choice(_WORDS_ANY, rng.integers(3, 9)))
        words += list(rng.choice(_WORDS_POS if label else _WORDS_NEG, rng.integers(1, 4)))
        rng.shuffle(words)
        texts.append(" ".join(w.capitalize() if rng.random() < 0.2 else w for w in words))
    df = pd.DataFrame({"review": np.array(texts, dtype=object), "rating": rng.integers(1, 6, n).astype(np.int64),
                       "price": np.round(rng.lognormal(3, 0.5, n), 2)})
    return df, y


def reviews_heldout(seed: int = 1) -> pd.DataFrame:
    df, _ = reviews(50, seed)
    df.loc[0, "review"] = "unseen words entirely zebra quantum"
    df.loc[1, "review"] = "GREAT Product, really GREAT!!"
    return df


# -- builders -----------------------------------------------------------------------------------------------

PIPELINES: list[tuple[str, Callable[[], Built]]] = []


def pipeline(func: Callable[[], Built]) -> Callable[[], Built]:
    PIPELINES.append((func.__name__, func))
    return func


NUM = ["age", "fare", "sibsp"]
CAT = ["sex", "embarked"]


def _titanic_prep(cat_encoder: Any = None, *, num_impute: Any = None, cat_impute: Any = None) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("num", make_pipeline(num_impute or SimpleImputer(strategy="median"), StandardScaler()), NUM),
        ("cat", make_pipeline(cat_impute or SimpleImputer(strategy="most_frequent"),
                              cat_encoder or OneHotEncoder(handle_unknown="ignore")), CAT)])


def _titanic(model: Any, prep: Any = None) -> Built:
    from sklearn.pipeline import make_pipeline

    df, y = titanic()
    pipe = make_pipeline(prep if prep is not None else _titanic_prep(), model) if model is not None else prep
    pipe.fit(df, y)
    return pipe, df, titanic_heldout()


@pipeline
def titanic_logistic_regression() -> Built:
    from sklearn.linear_model import LogisticRegression

    return _titanic(LogisticRegression(max_iter=500))


@pipeline
def titanic_random_forest_ordinal() -> Built:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import OrdinalEncoder

    return _titanic(RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0),
                    _titanic_prep(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)))


@pipeline
def titanic_constant_imputers() -> Built:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression

    return _titanic(LogisticRegression(max_iter=500), _titanic_prep(
        num_impute=SimpleImputer(strategy="constant", fill_value=99.0),
        cat_impute=SimpleImputer(strategy="constant", fill_value="missing")))


@pipeline
def titanic_mean_imputer_add_indicator() -> Built:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression

    return _titanic(LogisticRegression(max_iter=500),
                    _titanic_prep(num_impute=SimpleImputer(strategy="mean", add_indicator=True)))


@pipeline
def titanic_knn_imputer() -> Built:
    from sklearn.impute import KNNImputer
    from sklearn.linear_model import LogisticRegression

    return _titanic(LogisticRegression(max_iter=500), _titanic_prep(num_impute=KNNImputer(n_neighbors=5)))


@pipeline
def titanic_onehot_drop_first() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    return _titanic(LogisticRegression(max_iter=500),
                    _titanic_prep(OneHotEncoder(drop="first", handle_unknown="ignore")))


@pipeline
def titanic_onehot_min_frequency() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    return _titanic(LogisticRegression(max_iter=500),
                    _titanic_prep(OneHotEncoder(min_frequency=30, handle_unknown="infrequent_if_exist")))


@pipeline
def titanic_onehot_max_categories() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    return _titanic(LogisticRegression(max_iter=500),
                    _titanic_prep(OneHotEncoder(max_categories=2, handle_unknown="infrequent_if_exist")))


@pipeline
def titanic_onehot_infrequent_drop_first() -> Built:
    """Rare ports grouped into one "infrequent" column, the first column dropped."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    return _titanic(LogisticRegression(max_iter=500), _titanic_prep(
        OneHotEncoder(min_frequency=50, drop="first", handle_unknown="infrequent_if_exist", sparse_output=False)))


@pipeline
def titanic_target_encoder() -> Built:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.preprocessing import TargetEncoder

    return _titanic(GradientBoostingClassifier(n_estimators=30, random_state=0),
                    _titanic_prep(TargetEncoder(random_state=0)))


@pipeline
def titanic_column_selector() -> Built:
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include=np.number)),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_include=object))])
    return _titanic(LogisticRegression(max_iter=500), prep)


@pipeline
def titanic_remainder_passthrough() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    prep = ColumnTransformer([("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                    OrdinalEncoder(handle_unknown="use_encoded_value",
                                                                   unknown_value=-1)), CAT)],
                             remainder="passthrough")
    return _titanic(HistGradientBoostingClassifier(max_iter=30, random_state=0), prep)


@pipeline
def titanic_remainder_scaler() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    prep = ColumnTransformer([("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                    OneHotEncoder(handle_unknown="ignore")), CAT),
                              ("drop_class", "drop", ["pclass"])],
                             remainder=make_pipeline(SimpleImputer(), __import__("sklearn.preprocessing",
                                                     fromlist=["StandardScaler"]).StandardScaler()))
    return _titanic(LogisticRegression(max_iter=500), prep)


@pipeline
def titanic_integer_column_onehot() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "fare"]),
                              ("int", OneHotEncoder(handle_unknown="ignore"), ["pclass", "sibsp"]),
                              ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                                    OneHotEncoder(handle_unknown="ignore")), CAT)])
    return _titanic(LogisticRegression(max_iter=500), prep)


@pipeline
def titanic_set_output_pandas() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    df, y = titanic()
    pipe = make_pipeline(_titanic_prep(OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                         LogisticRegression(max_iter=500))
    pipe.set_output(transform="pandas")
    pipe.fit(df, y)
    return pipe, df, titanic_heldout()


@pipeline
def titanic_grid_search() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    df, y = titanic()
    search = GridSearchCV(make_pipeline(_titanic_prep(), LogisticRegression(max_iter=500)),
                          {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(df, y)
    return search, df, titanic_heldout()


@pipeline
def titanic_randomized_search_forest() -> Built:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    df, y = titanic()
    pipe = make_pipeline(_titanic_prep(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                         RandomForestClassifier(random_state=0))
    search = RandomizedSearchCV(pipe, {"randomforestclassifier__max_depth": [3, 5],
                                       "randomforestclassifier__n_estimators": [10, 20]},
                                n_iter=2, cv=3, random_state=0).fit(df, y)
    return search, df, titanic_heldout()


@pipeline
def titanic_soft_voting() -> Built:
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression

    return _titanic(VotingClassifier([("lr", LogisticRegression(max_iter=500)),
                                      ("rf", RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0))],
                                     voting="soft"))


@pipeline
def titanic_stacking() -> Built:
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression

    return _titanic(StackingClassifier([("rf", RandomForestClassifier(n_estimators=20, max_depth=5,
                                                                      random_state=0)),
                                        ("lr", LogisticRegression(max_iter=500))],
                                       final_estimator=LogisticRegression(), cv=3))


@pipeline
def titanic_calibrated_linear_svc() -> Built:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    return _titanic(CalibratedClassifierCV(LinearSVC(), cv=3))


@pipeline
def titanic_linear_svc() -> Built:
    from sklearn.svm import LinearSVC

    return _titanic(LinearSVC())


@pipeline
def titanic_svc_rbf() -> Built:
    from sklearn.svm import SVC

    return _titanic(SVC(break_ties=False))


@pipeline
def titanic_knn_distance() -> Built:
    from sklearn.neighbors import KNeighborsClassifier

    return _titanic(KNeighborsClassifier(n_neighbors=7, weights="distance"))


@pipeline
def titanic_gradient_boosting() -> Built:
    from sklearn.ensemble import GradientBoostingClassifier

    return _titanic(GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0))


@pipeline
def titanic_mlp() -> Built:
    from sklearn.neural_network import MLPClassifier

    return _titanic(MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0))


def _category_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in CAT:
        out[c] = out[c].astype(pd.CategoricalDtype(sorted({v for v in titanic()[0][c] if isinstance(v, str)})))
    return out


@pipeline
def titanic_hist_gradient_boosting_categories() -> Built:
    from sklearn.ensemble import HistGradientBoostingClassifier

    df, y = titanic()
    df = _category_frame(df)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=30, random_state=0)
    model.fit(df, y)
    return model, df, _category_frame(titanic_heldout())


@pipeline
def titanic_xgboost_categories() -> Built:
    import xgboost as xgb

    df, y = titanic()
    df = _category_frame(df)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, enable_categorical=True, tree_method="hist")
    model.fit(df, y)
    return model, df, _category_frame(titanic_heldout())


@pipeline
def titanic_lightgbm_categories() -> Built:
    import lightgbm as lgb

    df, y = titanic()
    df = _category_frame(df)
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=8, min_child_samples=5, verbose=-1)
    model.fit(df, y)
    return model, df, _category_frame(titanic_heldout())


@pipeline
def titanic_xgboost_onehot_pipeline() -> Built:
    import xgboost as xgb

    return _titanic(xgb.XGBClassifier(n_estimators=20, max_depth=3))


@pipeline
def titanic_lightgbm_ordinal_pipeline() -> Built:
    import lightgbm as lgb
    from sklearn.preprocessing import OrdinalEncoder

    return _titanic(lgb.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1),
                    _titanic_prep(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)))


def _two_targets(df: pd.DataFrame, y: np.ndarray, strings: bool = False) -> np.ndarray:
    """Survival and a fare band: two targets per passenger (as strings when `strings`)."""
    band = np.digitize(df["fare"].to_numpy(), [10.0, 40.0])
    if strings:
        return np.c_[np.where(y == 1, "survived", "died"), np.array(["low", "mid", "high"])[band]]
    return np.c_[y, (band == 2).astype(int)]


def _titanic_two_targets(model: Any, prep: Any = None, strings: bool = False) -> Built:
    from sklearn.pipeline import make_pipeline

    df, y = titanic()
    pipe = make_pipeline(prep if prep is not None else _titanic_prep(), model).fit(df, _two_targets(df, y, strings))
    return pipe, df, titanic_heldout()


@pipeline
def titanic_multilabel_mlp() -> Built:
    """Survived and travelled in a dear fare band, as a multilabel indicator: one label output per target."""
    from sklearn.neural_network import MLPClassifier

    return _titanic_two_targets(MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=0))


@pipeline
def titanic_multi_output_forest() -> Built:
    """A forest fitted on two string targets at once (survival, fare band)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import OrdinalEncoder

    return _titanic_two_targets(RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0),
                                _titanic_prep(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                                strings=True)


@pipeline
def titanic_multi_output_classifier() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    return _titanic_two_targets(MultiOutputClassifier(LogisticRegression(max_iter=500)), strings=True)


@pipeline
def titanic_classifier_chain() -> Built:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import ClassifierChain

    return _titanic_two_targets(ClassifierChain(LogisticRegression(max_iter=500), order=[1, 0]))


HOUSE_NUM = ["area", "rooms", "year", "lot"]
HOUSE_CAT = ["neighborhood", "quality"]


def _house_prep(cat_encoder: Any = None) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), HOUSE_NUM),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              cat_encoder or OneHotEncoder(handle_unknown="ignore")), HOUSE_CAT)])


def _house(model: Any, prep: Any = None) -> Built:
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    pipe = make_pipeline(prep if prep is not None else _house_prep(), model)
    pipe.fit(df, y)
    return pipe, df, houses_heldout()


@pipeline
def house_ridge_log_target() -> Built:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    model = TransformedTargetRegressor(make_pipeline(_house_prep(), Ridge()), func=np.log1p, inverse_func=np.expm1)
    model.fit(df, y)
    return model, df, houses_heldout()


@pipeline
def house_random_forest_log_target() -> Built:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import RandomForestRegressor

    return _house(TransformedTargetRegressor(RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0),
                                             func=np.log, inverse_func=np.exp))


@pipeline
def house_log_features_linear() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    prep = ColumnTransformer([
        ("log", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p)), ["area", "lot"]),
        ("sqrt", FunctionTransformer(np.sqrt), ["rooms"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         HOUSE_CAT)])
    return _house(LinearRegression(), prep)


@pipeline
def house_clip_function() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    prep = ColumnTransformer([("clip", make_pipeline(SimpleImputer(), FunctionTransformer(
        np.clip, kw_args={"a_min": 0, "a_max": 3000})), ["area", "lot"])])
    return _house(Ridge(), prep)


@pipeline
def house_hist_gradient_boosting() -> Built:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    return _house(HistGradientBoostingRegressor(max_iter=40, random_state=0),
                  _house_prep(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)))


@pipeline
def house_gradient_boosting() -> Built:
    from sklearn.ensemble import GradientBoostingRegressor

    return _house(GradientBoostingRegressor(n_estimators=40, random_state=0))


@pipeline
def house_xgboost() -> Built:
    import xgboost as xgb

    return _house(xgb.XGBRegressor(n_estimators=30, max_depth=4))


@pipeline
def house_lightgbm() -> Built:
    import lightgbm as lgb

    return _house(lgb.LGBMRegressor(n_estimators=30, num_leaves=8, verbose=-1))


@pipeline
def house_onehot_max_categories_integer_and_string() -> Built:
    """One encoder over an integer column and a string column, at most 4 columns each (the rest "infrequent")."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["area", "lot"]),
        ("cat", OneHotEncoder(max_categories=4, handle_unknown="infrequent_if_exist"), ["rooms", "neighborhood"])])
    df, y = houses()
    pipe = make_pipeline(prep, Ridge()).fit(df, np.log(y))
    return pipe, df, houses_heldout()


@pipeline
def house_polynomial_ridge() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    prep = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler(), PolynomialFeatures(2)),
                               HOUSE_NUM)])
    return _house(Ridge(), prep)


@pipeline
def house_knn_regressor_distance() -> Built:
    from sklearn.neighbors import KNeighborsRegressor

    return _house(KNeighborsRegressor(n_neighbors=5, weights="distance"))


@pipeline
def house_randomized_search_gbr() -> Built:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    search = RandomizedSearchCV(make_pipeline(_house_prep(), GradientBoostingRegressor(random_state=0)),
                                {"gradientboostingregressor__n_estimators": [10, 30]}, n_iter=2, cv=3,
                                random_state=0).fit(df, np.log(y))
    return search, df, houses_heldout()


@pipeline
def house_ridge_classifier_cv_multilabel() -> Built:
    """Expensive? Recent? Two yes/no questions at once with a ridge classifier."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    labels = np.c_[y > np.median(y), df["year"] > 1960].astype(int)
    pipe = make_pipeline(_house_prep(), RidgeClassifierCV()).fit(df, labels)
    return pipe, df, houses_heldout()


@pipeline
def house_lightgbm_ranker() -> Built:
    """Listings ranked within each neighborhood (LightGBM lambdarank): the output is the raw ranking score."""
    import lightgbm as lgb
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    order = np.argsort(df["neighborhood"].to_numpy(), kind="stable")
    df, y = df.iloc[order].reset_index(drop=True), y[order]
    relevance = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
    groups = df.groupby("neighborhood", sort=False).size().to_numpy()
    pipe = make_pipeline(_house_prep(), lgb.LGBMRanker(n_estimators=20, num_leaves=8, min_child_samples=5,
                                                       verbose=-1))
    pipe.fit(df, relevance, lgbmranker__group=groups)
    return pipe, df, houses_heldout()


@pipeline
def house_xgboost_ranker() -> Built:
    import xgboost as xgb
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    qid = pd.factorize(df["neighborhood"])[0]
    order = np.argsort(qid, kind="stable")
    df, y, qid = df.iloc[order].reset_index(drop=True), y[order], qid[order]
    relevance = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
    pipe = make_pipeline(_house_prep(), xgb.XGBRanker(n_estimators=20, max_depth=3))
    pipe.fit(df, relevance, xgbranker__qid=qid)
    return pipe, df, houses_heldout()


def _pseudo_huber(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = y_pred - y_true
    scale = np.sqrt(1.0 + d ** 2)
    return d / scale, 1.0 / scale ** 3


@pipeline
def house_lightgbm_custom_objective() -> Built:
    """A custom (pseudo-Huber) objective on the log price: the output is LightGBM's raw score."""
    import lightgbm as lgb
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    pipe = make_pipeline(_house_prep(), lgb.LGBMRegressor(n_estimators=30, num_leaves=8, objective=_pseudo_huber,
                                                          verbose=-1)).fit(df, np.log(y))
    return pipe, df, houses_heldout()


@pipeline
def house_xgboost_custom_objective() -> Built:
    import xgboost as xgb
    from sklearn.pipeline import make_pipeline

    df, y = houses()
    pipe = make_pipeline(_house_prep(), xgb.XGBRegressor(n_estimators=30, max_depth=3, objective=_pseudo_huber))
    pipe.fit(df, np.log(y))
    return pipe, df, houses_heldout()


def _text(model: Any, vectorizer: Any) -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    df, y = reviews()
    pipe = make_pipeline(ColumnTransformer([("text", vectorizer, "review")]), model)
    pipe.fit(df[["review"]], y)
    return pipe, df[["review"]], reviews_heldout()[["review"]]


@pipeline
def text_tfidf_logistic_regression() -> Built:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    return _text(LogisticRegression(max_iter=500), TfidfVectorizer())


@pipeline
def text_count_naive_bayes() -> Built:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    return _text(MultinomialNB(), CountVectorizer())


@pipeline
def text_tfidf_linear_svc() -> Built:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    return _text(LinearSVC(), TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))


@pipeline
def text_count_stop_words_limits() -> Built:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    return _text(LogisticRegression(max_iter=500),
                 CountVectorizer(stop_words="english", min_df=2, max_df=0.9, max_features=30, binary=True))


@pipeline
def text_count_tfidf_transformer() -> Built:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    return _text(SGDClassifier(random_state=0), make_pipeline(CountVectorizer(), TfidfTransformer(norm="l1")))


@pipeline
def text_char_wb_ngrams() -> Built:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    return _text(LogisticRegression(max_iter=500), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)))


@pipeline
def text_hashing_sgd() -> Built:
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import SGDClassifier

    return _text(SGDClassifier(random_state=0), HashingVectorizer(n_features=256))


@pipeline
def text_char_ngrams_naive_bayes() -> Built:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    return _text(MultinomialNB(), CountVectorizer(analyzer="char", ngram_range=(1, 3), max_features=400))


@pipeline
def text_word_bigrams_stop_words_beside_numbers() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df, y = reviews()
    pipe = make_pipeline(ColumnTransformer([
        ("text", TfidfVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2, sublinear_tf=True), "review"),
        ("num", StandardScaler(), ["rating", "price"])]), LogisticRegression(max_iter=500))
    pipe.fit(df, y)
    return pipe, df, reviews_heldout()


@pipeline
def text_hashing_char_wb_ridge() -> Built:
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import RidgeClassifier

    return _text(RidgeClassifier(), HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=512,
                                                      alternate_sign=False, norm="l2"))


@pipeline
def text_beside_numeric_columns() -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df, y = reviews()
    pipe = make_pipeline(ColumnTransformer([("text", TfidfVectorizer(), "review"),
                                            ("num", StandardScaler(), ["rating", "price"])]),
                         LogisticRegression(max_iter=500))
    pipe.fit(df, y)
    return pipe, df, reviews_heldout()


@pipeline
def text_tfidf_on_documents() -> Built:
    """Fitted on a list of documents (no DataFrame): the input is `X`, one document per row."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    df, y = reviews()
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2),
                         LogisticRegression(max_iter=500)).fit(list(df["review"]), y)
    return pipe, pd.DataFrame({"X": df["review"]}), pd.DataFrame({"X": reviews_heldout()["review"]})


@pipeline
def text_count_complement_nb_on_series() -> Built:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import ComplementNB
    from sklearn.pipeline import make_pipeline

    df, y = reviews()
    pipe = make_pipeline(CountVectorizer(lowercase=False, max_df=0.8), ComplementNB()).fit(df["review"], y)
    return pipe, pd.DataFrame({"X": df["review"]}), pd.DataFrame({"X": reviews_heldout()["review"]})


@functools.lru_cache(maxsize=None)
def build(name: str) -> Built:
    """The fitted pipeline `name`, its training frame and held-out frame (cached per process)."""
    func = dict(PIPELINES)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func()


NAMES = [n for n, _ in PIPELINES]


def documents(frame: pd.DataFrame) -> Any:
    """What the pipeline's predict takes: the documents of an `X`-only frame, else the frame itself."""
    return frame["X"] if list(frame.columns) == ["X"] else frame
