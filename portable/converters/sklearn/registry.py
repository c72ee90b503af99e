"""The one registry of portable's scikit-learn converters, and its decorator.

Every converter portable writes for a scikit-learn-API estimator (scikit-learn itself, XGBoost, LightGBM,
CatBoost) is declared next to its code with `@sklearn_converter("sklearn.svm.SVC", kind="classifier")`. The
registry holds names and functions only (numpy imports), so `portable.coverage` can read it without importing
skl2onnx; `bridge.py` hands the converters to skl2onnx for the duration of one conversion.

Three styles of converter:
- `emitter` (the default): `func(em, est) -> [output tensor names]`, where `em` is an `emit.Emitter`; the outputs
  declared for it are the ones `SklearnModel`'s signature gives the estimator (`portable.formats.sklearn`).
- `skl2onnx`: a converter with skl2onnx's own `(scope, operator, container)` signature, put in place of
  skl2onnx's converter for that estimator (whose parser and shape calculator stay).
- `parser`: `func(scope, est, inputs, custom_parsers)` that declares what the estimator computes in terms of other
  estimators (meta-estimators: searches, self-training, target transforms); `bridge.parse` parses an inner one.
- `check`: `func(est)` run before skl2onnx on every nested estimator of that class; it raises for configurations
  skl2onnx would convert into something else (text vectorizers), and converts nothing itself.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# the modules that declare converters, one per estimator family (imported by `load_all`, numpy only)
FAMILIES = ("simple", "linear", "svm", "neighbors", "naive_bayes", "trees", "ensemble", "boosting", "impute",
            "preprocessing", "encoders", "functions", "text", "decomposition", "kernels", "manifold", "cluster",
            "gaussian_process", "multiclass", "calibration", "meta")


@dataclass(frozen=True)
class Spec:
    """One registered converter."""

    path: str  # module.Class, as the estimator's class is importable
    kind: str  # classifier | regressor | transformer | clusterer | outlier | meta
    func: Callable[..., Any]
    style: str = "emitter"  # emitter | skl2onnx | parser | check
    replaces: bool = False  # skl2onnx has a converter for it that fails or is wrong
    note: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[1]

    @property
    def library(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def family(self) -> str:
        return self.func.__module__.rsplit(".", 1)[1]

    def cls(self) -> Any:
        """The estimator class, or None when its library (or this version of it) does not have it."""
        module, name = self.path.rsplit(".", 1)
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return None


SKLEARN_CONVERTERS: dict[str, Spec] = {}  # class path -> Spec


def sklearn_converter(*paths: str, kind: str, style: str = "emitter", replaces: bool = False,
                      note: str = "") -> Callable[[Any], Any]:
    """Declare `func` the converter of the estimator classes at `paths` (`module.Class`)."""
    def deco(func: Any) -> Any:
        for p in paths:
            SKLEARN_CONVERTERS[p] = Spec(p, kind, func, style, replaces, note)
        return func
    return deco


class UseSkl2onnx(Exception):
    """Raised by a `replaces=True` converter for a configuration it leaves to skl2onnx's own converter."""


_loaded: list[bool] = []


def load_all() -> dict[str, Spec]:
    """Import every family module (registering their converters) and return the registry."""
    if not _loaded:
        for fam in FAMILIES:
            importlib.import_module(f"{__package__}.{fam}")
        _loaded.append(True)
    return SKLEARN_CONVERTERS


def spec_for(est: Any) -> Spec | None:
    """The converter registered for `est`'s class (exact class; subclasses are not assumed to compute alike)."""
    load_all()
    cls = type(est)
    spec = SKLEARN_CONVERTERS.get(f"{cls.__module__}.{cls.__name__}")
    if spec is not None:
        return spec
    for s in SKLEARN_CONVERTERS.values():  # public paths differ from __module__ (sklearn.svm._classes.SVC)
        if s.name == cls.__name__ and cls.__module__.split(".")[0] == s.library and s.cls() is cls:
            return s
    return None


def converted_names() -> set[str]:
    """Class names of the scikit-learn estimators portable converts with its own code (for the coverage table)."""
    return {s.name for s in load_all().values() if s.library == "sklearn" and s.style != "check"}
