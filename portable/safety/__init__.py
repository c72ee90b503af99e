"""Loading pickle, joblib and skops files without running an attacker's code, and auditing them (DESIGN §8).

`safe_load` resolves only globals on the allowlist (`allowlist.py`, judged on what a name resolves to);
`audit` lists what a file imports and calls, from its opcodes, and then runs the same restricted loader (only
allowlisted reconstructors and `__setstate__`, never the model) so that its verdict is the loader's.
"""
from __future__ import annotations

from .allowlist import Verdict, judge, trust_tuple
from .audit import AuditResult, GlobalUse, audit
from .loader import safe_load

__all__ = ["safe_load", "audit", "AuditResult", "GlobalUse", "Verdict", "judge", "trust_tuple"]
