"""`portable demo`: train small models on scikit-learn's bundled datasets, pickle them, convert and check them."""
from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from .errors import PortableError


def demo_models() -> list[tuple[str, Any, Any, Any]]:
    """(name, estimator, X, y) for a handful of models on bundled datasets (no download)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    iris, wine, cancer, diabetes = (load_iris(return_X_y=True), load_wine(return_X_y=True),
                                    load_breast_cancer(return_X_y=True), load_diabetes(return_X_y=True))
    return [
        ("iris_logreg", LogisticRegression(max_iter=1000), *iris),
        ("wine_scaler_pca_logreg", make_pipeline(StandardScaler(), PCA(5), LogisticRegression(max_iter=1000)),
         *wine),
        ("cancer_random_forest", RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0), *cancer),
        ("diabetes_gradient_boosting", GradientBoostingRegressor(n_estimators=50, random_state=0), *diabetes),
        ("iris_knn", KNeighborsClassifier(5), *iris),
    ]


def run_demo(folder: Path, *, force: bool = False, console: Any = None) -> bool:
    """Run the demo in `folder`; returns True when every conversion was equivalent."""
    from rich.table import Table

    from . import api

    if folder.exists() and any(folder.iterdir()) and not force:
        raise PortableError("the demo folder exists and is not empty; pass --force to reuse it", path=folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = Table("model", "route", "dtype", "verdict", "max abs diff", "s", title="portable demo")
    all_ok = True
    for name, est, X, y in demo_models():
        est.fit(X, y)
        pkl = folder / f"{name}.pkl"
        pkl.write_bytes(pickle.dumps(est, protocol=5))
        started = time.perf_counter()
        art = api.convert(str(pkl), to="onnx", data=X)
        art.save(folder / f"{name}.onnx", force=True)
        rep = art.report
        ok = rep is not None and rep.equivalent
        all_ok &= ok
        worst = max((o["max_abs_diff"] for o in rep.to_dict()["outputs"]
                     if isinstance(o.get("max_abs_diff"), (int, float))), default=0.0)
        table.add_row(name, "→".join(art.route), art.dtype or "", "equivalent" if ok else "NOT equivalent",
                      f"{worst:.2e}", f"{time.perf_counter() - started:.2f}")
    if console is not None:
        console.print(table)
        console.print(f"Pickles and ONNX artifacts are in {folder}/. Try: portable inspect {folder}/iris_logreg.onnx",
                      markup=False)
        console.print(f"Serve one as a web service: portable serve {folder}/cancer_random_forest.onnx, then open "
                      "http://127.0.0.1:8000/ for its model card (check report, live drift); POST rows to /predict.",
                      markup=False)
    return all_ok
