"""portable's benchmarks: each `bench_*.py` module has `run() -> str`, a Markdown section of ratios measured
side by side in one run. `python -m benchmarks` runs them all and writes benchmarks/RESULTS.md."""
