"""The equivalence checker: run the original and the converted model on the same inputs and compare, with numbers.

`check` matches the two signatures, builds a plan of where the inputs live (`inputs.build_plan`), generates a
seeded batch (random cloud, tree boundaries, special values, `data` rows), runs both models once on it, compares
the outputs by kind (`compare`), and when rows disagree lets hypothesis shrink them to a minimal counterexample.
Only `Model.run` is called: the checker itself imports numpy (and hypothesis when shrinking), nothing heavier.
"""
from __future__ import annotations

import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import CannotRunError, PortableError
from ..model import Model
from .compare import OutputResult, Tolerance, match_outputs, tolerance_for
from .compare import compare as compare_outputs
from .inputs import (SHRUNK, SOURCES, SPECIAL, Batch, Plan, assemble, build_plan, feed, feed_batch, generate,
                     rows_strategy, simplify_strategy)
from .report import Report

__all__ = ["check", "Report", "Tolerance", "tolerance_for"]

SHRINK_EXAMPLES = 40   # hypothesis examples tried to find a failing small batch
SHRINK_CALLS = 150     # model evaluations allowed while shrinking (each runs both models on <= 3 rows)
POOL = 20              # failing rows hypothesis starts from (the worst ones)
KEEP = 3               # counterexamples kept in the report

# The input plan of a pair of models is learned once: build_plan walks the estimators (every tree of a forest),
# and checking the same pair again (more seeds, more samples) needs the same plan. A `Model` is a snapshot (its
# signature is fixed when it is loaded), so the plan is kept for each converted model and its latest original,
# as long as both live. Plans learned with `data=` are not kept: data can change between calls.
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # converted -> (original ref, outputs, plan, notes)


def check(original: Any, converted: Any, *, samples: int = 1000, seed: int = 0, data: Any = None,
          rtol: float | None = None, atol: float | None = None,
          progress: Callable[[int, int], Any] | None = None) -> Report:
    """Run both models on generated (and given) inputs and compare their outputs.

    Args:
        original, converted: `Model`s (anything `portable.load` accepts is loaded first).
        samples: generated rows (rows of `data` come in addition, up to as many again).
        seed: makes the generated rows, and the shrinking of a failure, reproducible.
        data: real sample input (array, DataFrame or {name: array}); its rows are compared too and its ranges
            guide generation.
        rtol, atol: override the tolerances chosen by dtype and output kind (numeric outputs).
        progress: called as `progress(done, total)` after each stage.

    Returns:
        A `Report`; `report.equivalent` is the verdict.

    Raises:
        SignatureMismatchError: the models' inputs or outputs differ in names, kinds or ranks.
        PortableError: the original model cannot run on the inputs its own signature describes.
    """
    started = time.perf_counter()
    if samples < 1:
        raise PortableError(f"samples must be at least 1, not {samples}")
    original, converted = _as_model(original), _as_model(converted)
    total = 4
    tick = _ticker(progress, total)
    outputs, plan, notes = _plan(original, converted, data)
    batch = generate(plan, samples, _rng(seed))
    tick()
    notes += plan.notes
    out_a, out_b, batch, failures = _run_both(original, converted, plan, batch, notes, tick)
    if out_b is None:  # the converted model ran on no row at all
        results = [OutputResult(name, kind, ("", ""), ((), ()), error="the converted model fails on every row")
                   for name, kind in outputs]
    else:
        results = compare_outputs(outputs, out_a, out_b, len(batch), rtol, atol)
    tick()
    any_bad = any(r.mismatches for r in results)  # r.mismatches counts r.bad
    counterexamples: list[dict[str, Any]] = list(failures)
    if any_bad:
        bad = np.zeros(len(batch), dtype=bool)
        for r in results:
            bad |= r.bad
        counterexamples += _counterexamples(plan, outputs, original, converted, batch, results, bad, out_a,
                                            out_b, rtol, atol, seed)
    tick()
    counts = np.bincount(batch.source, minlength=len(SOURCES)).tolist()
    report = Report(
        equivalent=not any_bad and not failures and out_b is not None,
        original=_describe(original), converted=_describe(converted), samples=samples, seed=seed,
        dtype=getattr(converted, "dtype", None) or str(plan.narrow), rows=len(batch),
        outputs=[r.to_dict() for r in results], counterexamples=counterexamples, notes=notes,
        generation=dict(zip(SOURCES[:4], counts)),
        learned=list(plan.sources))
    report.seconds = time.perf_counter() - started
    report.severities = {r.name: r.severity for r in results if r.kind != "label" and r.severity.size}
    return report


def _plan(original: Model, converted: Model, data: Any) -> tuple[list[tuple[str, str]], Plan, list[str]]:
    """The matched outputs, `build_plan(original, converted, data)` and the notes matching made (a new list),
    learned once per pair of models when there is no `data`."""
    if data is not None:
        notes: list[str] = []
        return match_outputs(original, converted, notes), build_plan(original, converted, data), notes
    try:
        kept = _PLANS.get(converted)
    except TypeError:  # a model that cannot be weakly referenced: learned every time
        kept = None
    if kept is None or kept[0]() is not original:
        notes = []
        outputs = match_outputs(original, converted, notes)
        kept = (_ref(original), outputs, build_plan(original, converted), notes)
        try:
            _PLANS[converted] = kept
        except TypeError:
            pass
    return list(kept[1]), kept[2], list(kept[3])


def _ref(model: Model) -> Callable[[], Model | None]:
    try:
        return weakref.ref(model)
    except TypeError:  # no weak references: never matches again
        return lambda: None


_RNGS = threading.local()  # per thread: seed -> (generator, its initial state)


def _rng(seed: int) -> np.random.Generator:
    """`np.random.default_rng(seed)`, in the same state, without hashing the seed again for a seed seen before."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):  # a SeedSequence, a Generator, ...
        return np.random.default_rng(seed)
    kept = getattr(_RNGS, "kept", None)
    if kept is None or len(kept) > 64:
        kept = _RNGS.kept = {}
    seed = int(seed)
    if seed not in kept:
        gen = np.random.default_rng(seed)
        kept[seed] = (gen, gen.bit_generator.state)
        return gen
    gen, state = kept[seed]
    gen.bit_generator.state = state
    return gen


def _as_model(source: Any) -> Model:
    if isinstance(source, Model):
        return source
    from ..api import load

    return load(source)


def _ticker(progress: Callable[[int, int], Any] | None, total: int) -> Callable[[], None]:
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total)
    return tick


def _describe(model: Model) -> dict[str, Any]:
    return {"format": model.format, "name": model.name,
            "path": getattr(model, "path", None) or model.origin.path}


def _error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _run_both(original: Model, converted: Model, plan: Plan, batch: Batch, notes: list[str],
              tick: Callable[[], None]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Batch,
                                                 list[dict[str, Any]]]:
    """Both models' outputs on the batch, and counterexamples for rows only the converted model rejects.

    Special rows the original rejects are dropped (with a note). Rows the original accepts and the converted
    model does not are left out of the comparison and make the check fail (with a note and counterexamples)."""
    arrays = assemble(plan, batch)
    try:
        out_a = original.run(feed_batch(plan, batch, arrays, original))
    except Exception as exc:
        special = batch.source == SPECIAL
        if not special.any():
            raise PortableError(f"the original {original.format} model '{original.name}' failed on generated "
                                f"inputs: {_error(exc)}") from exc
        notes.append(f"special rows (NaN, unseen categories, far values) were dropped: the original model "
                     f"rejects them ({_error(exc)})")
        batch = batch.take(np.flatnonzero(~special))
        return _run_both(original, converted, plan, batch, notes, tick)
    tick()
    try:
        return out_a, converted.run(feed_batch(plan, batch, arrays, converted)), batch, []
    except CannotRunError:  # the runtime's limit, not a disagreement: reported as it is
        raise
    except Exception as exc:
        first = _error(exc)
    ok, errors = _runnable_rows(converted, plan, batch)
    notes.append(f"the converted model fails on inputs the original accepts ({first}): "
                 f"{len(batch) - len(ok)} of {len(batch)} rows were left out of the comparison")
    examples = [_example(plan, batch.take([r]), {k: v[r:r + 1] for k, v in out_a.items()}, {"error": msg},
                         f"{SOURCES[batch.source[r]]} row {r}, the converted model fails")
                for r, msg in errors[:KEEP]]
    if not len(ok):
        return {k: v[:0] for k, v in out_a.items()}, None, batch.take(ok), examples  # type: ignore[return-value]
    kept = batch.take(ok)
    out_b = converted.run(feed(assemble(plan, kept), converted))
    return {k: v[ok] for k, v in out_a.items()}, out_b, kept, examples


def _runnable_rows(model: Model, plan: Plan, batch: Batch, chunk: int = 64,
                   probe: int = 4) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Rows `model` runs on, found chunk by chunk, and (row, error) for rows of the first failing chunks."""
    ok: list[np.ndarray] = []
    errors: list[tuple[int, str]] = []
    failing_chunks = 0
    for start in range(0, len(batch), chunk):
        rows = np.arange(start, min(start + chunk, len(batch)))
        try:
            model.run(feed(assemble(plan, batch.take(rows)), model))
            ok.append(rows)
            continue
        except Exception:
            failing_chunks += 1
        if failing_chunks > probe:
            continue  # enough examples: count the rest of this chunk as failing without trying each row
        for r in rows:
            try:
                model.run(feed(assemble(plan, batch.take([r])), model))
                ok.append(np.array([r]))
            except Exception as exc:
                errors.append((int(r), _error(exc)))
    return (np.concatenate(ok) if ok else np.zeros(0, dtype=np.int64)), errors


def _counterexamples(plan: Plan, outputs: list[tuple[str, str]], original: Model, converted: Model,
                     batch: Batch, results: list[OutputResult], bad: np.ndarray, out_a: dict[str, np.ndarray],
                     out_b: dict[str, np.ndarray], rtol: float | None, atol: float | None,
                     seed: int) -> list[dict[str, Any]]:
    severity = np.zeros(len(batch))
    for r in results:
        severity = np.maximum(severity, np.where(r.bad, r.severity, 0.0))
    order = np.flatnonzero(bad)[np.argsort(-severity[bad], kind="stable")]
    kept: list[dict[str, Any]] = []
    shrunk = _shrink(plan, outputs, original, converted, batch.take(order[:POOL]), rtol, atol, seed)
    if shrunk is not None:
        b, a_out, c_out = shrunk
        kept.append(_example(plan, b, a_out, c_out, "shrunk by hypothesis"))
    for row in order[:KEEP - len(kept)]:
        one = batch.take([row])
        kept.append(_example(plan, one, {k: v[row:row + 1] for k, v in out_a.items()},
                             {k: v[row:row + 1] for k, v in out_b.items()}, f"{SOURCES[batch.source[row]]} row {row}"))
    return kept


def _example(plan: Plan, b: Batch, out_a: dict[str, np.ndarray], out_b: dict[str, np.ndarray],
             found_by: str) -> dict[str, Any]:
    inputs = {k: v.tolist() for k, v in assemble(plan, b).items()}
    return {"inputs": inputs, "original": {k: np.asarray(v).tolist() for k, v in out_a.items()},
            "converted": {k: np.asarray(v).tolist() for k, v in out_b.items()}, "found_by": found_by}


def _shrink(plan: Plan, outputs: list[tuple[str, str]], original: Model, converted: Model, failing: Batch,
            rtol: float | None, atol: float | None, seed: int) -> tuple[Batch, dict, dict] | None:
    """Let hypothesis (seeded) find the fewest failing rows, then the simplest version of a single failing row."""
    try:
        from hypothesis import HealthCheck, Phase, find, settings
        from hypothesis.errors import NoSuchExample
    except ImportError:
        return None
    calls = [0]

    def run(b: Batch) -> tuple[dict, dict, list[OutputResult]] | None:
        arrays = assemble(plan, b)
        try:
            a = original.run(feed(arrays, original))
            c = converted.run(feed(arrays, converted))
        except Exception:
            return None
        return a, c, compare_outputs(outputs, a, c, len(b), rtol, atol)

    def fails(b: Batch) -> bool:
        if calls[0] >= SHRINK_CALLS:
            return False  # out of budget: nothing smaller counts as failing, so shrinking stops here
        calls[0] += 1
        got = run(b)
        return got is not None and any(r.bad.any() for r in got[2])

    opts = settings(max_examples=SHRINK_EXAMPLES, database=None, deadline=None,
                    phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    try:
        found = find(rows_strategy(failing), fails, settings=opts, random=random.Random(seed))
    except NoSuchExample:
        return None
    # rows of the batch that pass on their own may survive hypothesis's shrinking: drop them one at a time
    r = 0
    while len(found) > 1 and r < len(found):
        rest = found.take([i for i in range(len(found)) if i != r])
        if fails(rest):
            found = rest
        else:
            r += 1
    if len(found) == 1:
        try:
            found = find(simplify_strategy(plan, found), fails, settings=opts, random=random.Random(seed))
        except NoSuchExample:
            pass  # every simplification passes: the row is already minimal
    got = run(found)
    if got is None:
        return None
    found.source[:] = SHRUNK
    return found, got[0], got[1]
