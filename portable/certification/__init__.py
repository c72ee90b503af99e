"""Certified equivalence: a proved bound on the difference of two models over a whole input domain (issue 19).

See `core` for the vocabulary (Domain, Certificate, methods). `portable.certify(original, converted, domain=None)`
is the entry point; the methods live in their own modules (trees, affine, interval bound propagation) and register
themselves with `core.certification_method`. The package is not named `certify`: no package shares its name with a
public function of portable (DESIGN §2), as `equivalence/` does not with `portable.check`.
"""
from __future__ import annotations

from .core import CERTIFIED, NOT_CERTIFIABLE, REFUTED, Certificate, Context, Domain, DomainColumn

__all__ = ["CERTIFIED", "NOT_CERTIFIABLE", "REFUTED", "Certificate", "Context", "Domain", "DomainColumn"]
