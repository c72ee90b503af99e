"""False alarms on correct conversions (issue 13's verification): every model of `unseen_mutations.all_builders`
converted to ONNX (float32) and checked with `portable.check(samples=1000)` for seeds 0-9; a NOT equivalent
verdict whose counterexamples do not differ when run again on both models (`mutations.proven`) is a false alarm.

    python -m benchmarks.unseen_false_alarms [name-prefix ...]
"""
from __future__ import annotations

import sys
import time
import warnings


def main(prefixes: list[str]) -> None:
    from .unseen_mutations import all_builders

    run(all_builders(prefixes))


def run(builders) -> None:
    """The false-alarm sweep over `(name, build)` pairs (`build() -> (estimator, X, data)`): each model converted
    to float32 ONNX and checked on seeds 0-9; prints the verdicts and the alarms (also used by unseen_mutations2)."""
    import portable

    from .mutations import proven

    alarms, checks, shown = [], 0, []
    for name, build in builders:
        try:
            est, X, data = build()
            sk = portable.load(est, data=data)
            art = portable.convert(est, to="onnx", dtype="float32", check=False, data=data)
        except Exception as exc:
            print(f"{name}: skipped ({type(exc).__name__})", flush=True)
            continue
        t0 = time.perf_counter()
        flagged = []
        for seed in range(10):
            rep = portable.check(sk, art, samples=1000, seed=seed)
            checks += 1
            if not rep.equivalent:
                flagged.append(seed)
                (shown if proven(sk, art, rep, est) else alarms).append(f"{name} seed {seed}: {rep.summary_line()}")
        print(f"{name}: NOT equivalent on seeds {flagged} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n{checks} checks; false alarms {len(alarms)}; differences shown real {len(shown)}")
    for a in alarms:
        print("ALARM", a)
    for a in shown:
        print("REAL", a)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        main(sys.argv[1:])
