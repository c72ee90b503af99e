"""Estimators whose predict crashes the interpreter, hangs, or eats memory: what a library bug does to an
untrusted model. Loaded only with `trust=["tests.hostile.crashy"]`, to test the worker-process isolation."""
from __future__ import annotations

import ctypes
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Misbehaves(ClassifierMixin, BaseEstimator):
    def __init__(self, how: str = "segv", after: int = 0) -> None:
        self.how = how
        self.after = after

    def fit(self, X, y):  # noqa: N803
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.shape(X)[1]
        return self

    def _misbehave(self, X):  # noqa: N803
        if len(X) > self.after:
            if self.how == "segv":
                ctypes.string_at(1)  # reads address 1: SIGSEGV
            elif self.how == "hang":
                while True:
                    time.sleep(0.05)
            elif self.how == "memory":
                blocks = []
                while True:
                    blocks.append(np.ones(1 << 27))  # 1 GiB at a time until the limit
            elif self.how == "exit":
                import os

                os._exit(3)

    def predict(self, X):  # noqa: N803
        self._misbehave(X)
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):  # noqa: N803
        self._misbehave(X)
        p = np.zeros((len(X), len(self.classes_)))
        p[:, 0] = 1.0
        return p
