"""The equivalence checker (placeholder until the checker issue lands): runs both models and compares."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Report:
    equivalent: bool
    outputs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dtype: str | None = None
    samples: int = 0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"equivalent": self.equivalent, "samples": self.samples, "seed": self.seed, "dtype": self.dtype,
                "outputs": self.outputs, "counterexamples": [], "notes": self.notes}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def summary_line(self) -> str:
        worst = max((o["max_abs_diff"] for o in self.outputs), default=0.0)
        return f"{'equivalent' if self.equivalent else 'NOT equivalent'}, max abs diff {worst:.3g}"

    def summary_json(self) -> str:
        return json.dumps({"equivalent": self.equivalent, "samples": self.samples, "seed": self.seed})

    def __str__(self) -> str:
        return self.summary_line()


def check(original: Any, converted: Any, *, samples: int = 1000, seed: int = 0, data: Any = None,
          rtol: float | None = None, atol: float | None = None, progress: Any = None) -> Report:
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in converted.signature.inputs:
        if spec.is_string:
            inputs[spec.name] = np.array(["a"] * samples).reshape(samples, 1)
        else:
            width = spec.shape[1:] if len(spec.shape) > 1 else ()
            inputs[spec.name] = rng.normal(size=(samples, *[w or 1 for w in width])).astype(spec.dtype)
    a, b = original.run(inputs), converted.run(inputs)
    outs, ok = [], True
    for name, va in a.items():
        vb = b[name]
        if va.dtype.kind in "OUSb" or name == "label":
            diff = float(np.mean(va.astype(str) != vb.astype(str)))
            good = diff == 0
        else:
            diff = float(np.max(np.abs(va - vb))) if va.size else 0.0
            good = np.allclose(va, vb, rtol=1e-4, atol=1e-4)
        ok = ok and bool(good)
        outs.append({"name": name, "max_abs_diff": diff, "mismatches": 0 if good else 1})
    return Report(ok, outs, samples=samples, seed=seed)
