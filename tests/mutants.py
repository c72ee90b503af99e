"""The mutation benchmark's generator (benchmarks/mutations.py), for tests that need seeded mutated artifacts."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def generator() -> Any:
    """benchmarks/mutations.py (the test is skipped where the benchmarks folder is not there)."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import mutations as gen
    except ImportError as exc:  # a plain install without the benchmarks folder
        pytest.skip(f"the mutation generator is not importable: {exc}")
    finally:
        sys.path.remove(str(ROOT))
    return gen


def benchmark_mutations(art: Any, kinds: tuple[str, ...], per_kind: int, seed: int) -> list[tuple[str, Any]]:
    """Seeded mutations of `art` (a converted ONNX `Model`): `(kind, mutated proto)` pairs."""
    gen = generator()
    rng = np.random.default_rng(seed)
    out = []
    for kind in kinds:
        for site in gen.pick_sites(art.proto, kind, gen.sites(art.proto, kind, None), rng, per_kind):
            out.append((kind, gen.mutate(art.proto, kind, site, rng)[0]))
    return out
