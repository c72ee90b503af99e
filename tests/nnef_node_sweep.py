"""ONNX's backend node test cases through portable's ONNX -> NNEF route and its NNEF executor.

Each case of `onnx.backend.test.case.node.collect_testcases()` (generated from the installed onnx) is converted
with `portable.convert(model, to="nnef", check=False)`, run by portable's executor on the case's inputs and
compared with the case's expected outputs (onnx's own numbers, at the case's rtol/atol). An outcome is
`correct`, `wrong`, or `refused: <reason>` (a PortableError). Anything else (a crash) counts as wrong.

`python -m tests.nnef_node_sweep` runs the full sweep in a process pool and prints the counts by reason.
"""
from __future__ import annotations

import os
import signal
import sys
import warnings
from collections import Counter
from typing import Any

import numpy as np

CASE_TIMEOUT = 60


def cases() -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import onnx.backend.test.case.node as node

        return sorted(node.collect_testcases(), key=lambda c: c.name)


def _reason(exc: BaseException) -> str:
    msg = str(getattr(exc, "message", exc))
    return f"{type(exc).__name__}: {msg.splitlines()[0][:120] if msg else ''}"


def _close(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> bool:
    want = np.asarray(want)
    got = np.asarray(got)
    if want.dtype == object or got.dtype == object:
        return got.shape == want.shape and bool(np.all(got.astype(str) == want.astype(str)))
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "biu" or want.dtype == np.bool_:
        return bool(np.array_equal(got, want))
    g, w = got.astype(np.float64), want.astype(np.float64)
    if want.dtype == np.float32 or want.dtype == np.float16:
        rtol, atol = max(rtol, 1e-4), max(atol, 1e-5)
    return bool(np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True))


def constant_variant(case: Any) -> Any | None:
    """The case with every graph input but the first baked into the graph as an initializer (the data of its
    first data set): the parameters exporters write as constants (Resize scales, Pad pads, Slice starts, Reduce
    axes, ...) that ONNX's node tests pass as inputs. None when there is nothing to bake."""
    import copy
    import dataclasses

    import onnx

    graph = case.model.graph
    init_names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if len(inputs) < 2 or len(case.data_sets) != 1:
        return None
    values = case.data_sets[0][0]
    if len(values) != len(inputs) or any(not isinstance(v, np.ndarray) for v in values):
        return None
    model = copy.deepcopy(case.model)
    g = model.graph
    keep = [vi for vi in g.input if vi.name == inputs[0].name or vi.name in init_names]
    for vi, v in zip(inputs[1:], values[1:]):
        if v.dtype == object:
            return None
        g.initializer.append(onnx.numpy_helper.from_array(v, vi.name))
    del g.input[:]
    g.input.extend(keep)
    if model.ir_version < 4:
        model.ir_version = 4
    return dataclasses.replace(case, name=case.name + "__const", model=model,
                               data_sets=[([values[0]], case.data_sets[0][1])])


def run_case(case: Any) -> tuple[str, str]:
    """(case name, outcome): `correct`, `wrong: why` or `refused: reason`."""
    import portable
    from portable.errors import PortableError

    def alarm(*_: Any) -> None:
        raise TimeoutError(f"took over {CASE_TIMEOUT}s")

    old = signal.signal(signal.SIGALRM, alarm) if hasattr(signal, "SIGALRM") else None
    if old is not None:
        signal.alarm(CASE_TIMEOUT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                art = portable.convert(case.model, to="nnef", check=False)
            except PortableError as exc:
                return case.name, "refused: " + _reason(exc)
            graph = case.model.graph
            init_names = {i.name for i in graph.initializer}
            in_names = [i.name for i in graph.input if i.name not in init_names]
            out_names = [o.name for o in graph.output]
            for inputs, outputs in case.data_sets:
                feeds = {n: np.asarray(v) for n, v in zip(in_names, inputs)}
                try:
                    got = art.run(feeds)
                except PortableError as exc:
                    return case.name, "refused: " + _reason(exc)
                for n, want in zip(out_names, outputs):
                    if n not in got:
                        return case.name, f"wrong: no output {n}"
                    if not _close(got[n], want, case.rtol, case.atol):
                        return case.name, f"wrong: {n} differs"
            return case.name, "correct"
    except Exception as exc:  # a crash is a wrong outcome, never a pass
        return case.name, f"wrong: crash {_reason(exc)}"
    finally:
        if old is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def _run_index(i: int) -> tuple[str, str]:
    return run_case(cases()[i])


def _run_variant(i: int) -> tuple[str, str] | None:
    v = constant_variant(cases()[i])
    return None if v is None else run_case(v)


def _pool(processes: int):
    """Worker processes started fresh ("spawn"), not forked: a forked child inherits the parent's onnxruntime
    sessions and thread pools mid-use, and freeing one of them in the child (any garbage collection) can wait for
    ever on a condition variable copied in a locked state (seen as a hung CI run)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


def variant_sweep(processes: int = 2) -> dict[str, str]:
    with _pool(processes) as pool:
        return dict(r for r in pool.map(_run_variant, range(len(cases())), chunksize=8) if r is not None)


def sweep(indices: list[int] | None = None, processes: int = 2) -> dict[str, str]:
    n = len(cases())
    idx = list(range(n)) if indices is None else indices
    with _pool(processes) as pool:
        return dict(pool.map(_run_index, idx, chunksize=8))


def summarize(results: dict[str, str]) -> Counter:
    c: Counter = Counter()
    for outcome in results.values():
        c[outcome.split(":")[0]] += 1
    return c


if __name__ == "__main__":
    if os.environ.get("SWEEP_VARIANTS"):
        res = variant_sweep(processes=int(os.environ.get("SWEEP_PROCS", "2")))
    else:
        res = sweep(processes=int(os.environ.get("SWEEP_PROCS", "2")))
    print(dict(summarize(res)))
    by: Counter = Counter(o.split(":")[1].strip() if ":" in o else o for o in res.values()
                          if not o.startswith("correct"))
    for name, outcome in sorted(res.items()):
        if not outcome.startswith("correct"):
            print(name, "|", outcome)
    if len(sys.argv) > 1:
        import json
        with open(sys.argv[1], "w") as f:
            json.dump(res, f, indent=0, sort_keys=True)
