"""Certification method `ibp`: interval bound propagation through two neural networks (MLPs) jointly.

Both models are read as layers (`program`: affine maps between ReLU/tanh/logistic/softmax stages). The first
layer's difference over the box is exact (as in `affine`); each activation carries a per-unit difference bound
through its slope on the units' interval; each next layer's difference is its coefficient difference maximised over
the units' intervals plus |W| times the carried difference, and both models' float rounding is added at every
operation. Sound, and looser with depth. RBF-kernel SVMs (SVR, binary SVC scores and labels) are read the same way:
one unit per support vector, exp of a separable quadratic (exact over the box); with hundreds of support vectors
the worst-case float32 dot-product bound (n u) is usually above the tolerance, so they refute mutations but rarely
certify. Polynomial/sigmoid kernels, multiclass (one-vs-one votes) and Platt probabilities are not read.
"""
from __future__ import annotations

import time
from typing import Any

from .affine import certify_by_splitting, forget
from .core import Certificate, Context, Domain, certification_method
from .symbolic import NotSymbolic

METHOD = "ibp"


@certification_method(METHOD, priority=30)
def certify_ibp(original: Any, converted: Any, domain: Domain, ctx: Context) -> dict[str, Certificate] | None:
    """Certificates for networks with hidden nonlinear layers (None when either model is not one)."""
    try:
        return certify_by_splitting(original, converted, domain, ctx, METHOD, True, time.perf_counter())
    except NotSymbolic:
        return None
    finally:
        forget()  # the last method to read this pair
