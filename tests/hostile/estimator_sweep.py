"""Fit every scikit-learn estimator that builds with defaults on small data, pickle it, and load it back through
portable with no --trust. Run: python -m tests.hostile.estimator_sweep
"""
from __future__ import annotations

import io
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SweepResult:
    fitted: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)
    other_errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"all_estimators(): {len(self.fitted) + len(self.skipped)} classes, {len(self.fitted)} fitted "
                 f"with defaults; {len(self.loaded)}/{len(self.fitted)} load with no --trust; "
                 f"{len(self.refused)} refused, {len(self.other_errors)} other errors"]
        lines += [f"  refused {k}: {', '.join(v)}" for k, v in sorted(self.refused.items())]
        lines += [f"  error {k}: {v}" for k, v in sorted(self.other_errors.items())]
        return "\n".join(lines)


def _data(kind: str) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(60, 4))) + 0.1  # positive: some estimators (NMF, Chi2) need it
    if kind == "classifier":
        return X, (X[:, 0] > np.median(X[:, 0])).astype(int)
    if kind == "regressor":
        return X, X @ np.array([1.0, 2.0, 0.5, 0.0])
    return X, None


def sweep(protocols: tuple[int, ...] = (5,)) -> SweepResult:
    from sklearn.utils import all_estimators

    from portable.errors import UnsafePickleError
    from portable.safety import safe_load

    import tempfile

    result = SweepResult()
    tmp = Path(tempfile.mkdtemp())
    for name, cls in all_estimators():
        kind = "classifier" if hasattr(cls, "predict_proba") or "Classifier" in name else (
            "regressor" if "Regressor" in name or "Regression" in name else "other")
        try:
            est = cls()
        except TypeError as exc:
            result.skipped[name] = f"needs arguments: {exc}"
            continue
        X, y = _data(kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est.fit(X, y) if y is not None else est.fit(X)
            except Exception as exc:
                try:
                    X, y = _data("classifier")
                    est.fit(X, y)
                except Exception:
                    result.skipped[name] = f"cannot fit with defaults: {type(exc).__name__}"
                    continue
        result.fitted.append(name)
        for protocol in protocols:
            path = tmp / f"{name}.p{protocol}.pkl"
            try:
                path.write_bytes(pickle.dumps(est, protocol=protocol))
            except Exception as exc:
                result.other_errors[name] = f"cannot be pickled: {exc}"
                break
            try:
                safe_load(path)
            except UnsafePickleError as exc:
                result.refused[name] = exc.refused
                break
            except Exception as exc:
                result.other_errors[name] = f"{type(exc).__name__}: {exc}"[:200]
                break
        else:
            result.loaded.append(name)
    return result


if __name__ == "__main__":
    print(sweep(protocols=(2, 5)).summary())
