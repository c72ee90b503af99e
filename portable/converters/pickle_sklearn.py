"""`pickle -> sklearn`: the estimator inside a (safely loaded) pickle file, keeping the file's provenance."""
from __future__ import annotations

from ..formats.sklearn import SklearnModel
from ..registry import ConvertOptions, converter


@converter("pickle", "sklearn", cost=0.1)
def pickle_to_sklearn(model: SklearnModel, options: ConvertOptions) -> SklearnModel:
    """Unwrap the estimator a pickle/joblib/skops file holds."""
    out = SklearnModel(model.estimator, origin=model.origin, data=options.data)
    out.notes.extend(model.notes)
    return out
