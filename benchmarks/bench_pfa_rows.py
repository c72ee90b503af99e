"""PFA's sequential (row-by-row) tier: its rate on stateful documents and against the vectorized tier on the shared
examples (the documents and the timing live in bench_pfa.sequential)."""
from __future__ import annotations

from .bench_pfa import sequential


def run() -> str:
    return sequential()


if __name__ == "__main__":
    print(run())
