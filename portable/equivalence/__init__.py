"""The equivalence checker: run the original and the converted model on the same inputs and compare, with numbers.

`check` matches the two signatures, builds a plan of where the inputs live (`inputs.build_plan`, from `data`
and from both models' `Model.input_hints()`), generates a seeded batch (random cloud, path-aware tree boundary
rows for every split node, equidistant points, special values, `data` rows), runs both models once on it
(in batches of a model's fixed batch size when it has one), compares the outputs by kind (`compare`; labels
judged on the quantity the original's label follows), runs a few of the rows again in the converted model alone
and in small batches (`_small_batches`: an artifact may compute differently by batch size), and when rows
disagree lets hypothesis shrink them to a minimal counterexample. Generated rows the original model rejects
(an unknown category, no neighbour within a radius) are found by bisection, dropped and counted; the check is
refused only when the original rejects rows of `data` or nearly all generated rows. Only `Model.run` and
`Model.input_hints` are called: the checker knows no format and imports numpy (and hypothesis when shrinking),
nothing heavier.
"""
from __future__ import annotations

import functools
import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import CannotRunError, PortableError
from ..limits import LimitError, check_samples
from ..model import Model
from .compare import (OutputResult, Tolerance, excuse_tied, failing_rows, judge_on_decision, match_outputs,
                      scores_named, tolerance_for)
from .compare import compare as compare_outputs
from .inputs import (BOUNDARY, DATA, SHRUNK, SOURCES, SPECIAL, Batch, Plan, assemble, build_plan, cloud_rows, feed,
                     feed_batch, generate, narrow_values, rows_strategy, simplify_strategy, tested_nodes)
from .report import Report

__all__ = ["check", "load_model", "Report", "Tolerance", "tolerance_for"]

SHRINK_EXAMPLES = 40   # hypothesis examples tried to find a failing small batch
SHRINK_CALLS = 150     # model evaluations allowed while shrinking (each runs both models on <= 3 rows)
POOL = 20              # failing rows hypothesis starts from (the worst ones)
KEEP = 3               # counterexamples kept in the report
MOSTLY_REJECTED = 0.9  # the check is refused when the original rejects more than this share of generated rows

# The input plan of a pair of models is learned once: build_plan walks the estimators (every tree of a forest),
# and checking the same pair again (more seeds, more samples) needs the same plan. A `Model` is a snapshot (its
# signature is fixed when it is loaded), so the plan is kept for each converted model and its latest original,
# as long as both live. Plans learned with `data=` are not kept: data can change between calls.
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # converted -> (original ref, outputs, plan, notes)


class LimitReached(BaseException):
    """A model run reached one of portable's limits (`LimitError`, e.g. a PFA routine's timeout): the check stops
    with that error. It is a BaseException only on its way out of the checker, so that the bisections that look
    for rejected rows (`except Exception`) do not take it for one and run the model again; `stops_at_limits`
    turns it back into the `LimitError` at the checker's entry points."""

    def __init__(self, error: LimitError) -> None:
        super().__init__(str(error))
        self.error = error


def stops_at_limits(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An entry point of the checker that raises the `LimitError` a model run reached."""
    @functools.wraps(fn)
    def entry(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LimitReached as stop:
            raise stop.error from None
    return entry


@stops_at_limits
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
    converted = scores_named(original, converted)
    total = 4
    tick = _ticker(progress, total)
    outputs, plan, notes = _plan(original, converted, data)
    check_samples(samples, len(plan.features))  # samples x values per row, before anything is generated
    batch = _generated(plan, samples, seed, lambda r: _edges(plan, original, converted, outputs, samples, r))
    tick()
    notes += plan.notes
    generated = len(batch)
    out_a, out_b, batch, failures = _run_both(original, converted, plan, batch, notes, tick)
    rejected = generated - len(batch) - _failed_rows(failures)
    if out_b is None:  # the converted model ran on no row at all
        results = [OutputResult(name, kind, ("", ""), ((), ()), error="the converted model fails on every row")
                   for name, kind in outputs]
    else:
        results = compare_outputs(outputs, out_a, out_b, len(batch), rtol, atol)
        if plan.decision is not None:
            _judge_labels(plan, original, batch, results, notes)
        if plan.ties is not None:
            _excuse_ties(plan, original, batch, results, notes)
    tick()
    any_bad = any(r.mismatches for r in results)  # r.mismatches counts r.bad
    counterexamples: list[dict[str, Any]] = list(failures)
    small = [] if any_bad or failures or out_b is None else \
        _small_batches(plan, outputs, original, converted, batch, out_a, results, notes)
    counterexamples += small
    if any_bad:
        bad = np.zeros(len(batch), dtype=bool)
        for r in results:
            bad |= r.bad
        counterexamples += _counterexamples(plan, outputs, original, converted, batch, results, bad, out_a,
                                            out_b, rtol, atol, seed)
    tick()
    total, tested = _tested(plan, samples)
    report = Report(
        equivalent=not any_bad and not failures and not small and out_b is not None,
        original=_describe(original), converted=_describe(converted), samples=samples, seed=seed,
        dtype=getattr(converted, "dtype", None) or str(plan.narrow), rows=len(batch),
        outputs=[r.to_dict() for r in results], counterexamples=counterexamples, notes=notes,
        generation=_generation(plan, batch),
        learned=list(plan.sources), boundary={"split_nodes": total, "tested": tested},
        rejected_by_original=rejected)
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


KEEP_GENERATED = 1 << 22  # bytes: the largest generated batch kept for the pair's next check with the same seed


def _generated(plan: Plan, samples: int, seed: Any,
               more: Callable[[np.random.Generator], Batch | None] | None = None) -> Batch:
    """`generate(plan, samples, rng)` followed by the rows `more(rng)` adds (the label-boundary rows), with `rng`
    seeded by `seed`; or the (read-only) batch the pair's previous check made when it had the same (whole-number)
    seed and samples: the rows depend on nothing else (the edge pool `more` samples from is learned once per pair
    and kept on the plan too), and making them costs more than running a small model (the generator is not even
    seeded then: nothing after this uses it). Kept on the plan (so only for pairs whose plan is kept: no
    `data=`), one batch per pair, up to `KEEP_GENERATED` bytes."""
    key = (int(seed), samples) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None
    kept = plan.memo.get("generated")
    if key is not None and kept is not None and kept[0] == key:
        return kept[1]  # read only: `_run_both` runs the models on a copy if they do not take it
    rng = _rng(seed)
    batch = generate(plan, samples, rng)
    if more is not None:
        extra = more(rng)
        if extra is not None and len(extra):
            batch = Batch.concat([batch, extra])
    if key is not None and batch.num.nbytes + 8 * batch.txt.size <= KEEP_GENERATED:
        # kept as it is, read only (nothing after this writes into a batch: rows a model rejects are taken out
        # of a copy), so this check runs on the kept batch too and its arrays are made once
        for a in (batch.num, batch.txt, batch.source):
            a.flags.writeable = False
        plan.memo["generated"] = (key, batch)
    return batch


def _assembled(plan: Plan, batch: Batch) -> dict[str, np.ndarray]:
    """`assemble(plan, batch)`; for the pair's kept batch (`_generated`), its arrays made once and kept with it,
    read only like the batch (a model that writes into its input fails on them and is run on a copy)."""
    kept = plan.memo.get("generated")
    if kept is None or kept[1] is not batch:
        return assemble(plan, batch)
    if len(kept) < 3:
        arrays = assemble(plan, batch)  # new arrays: nothing else holds them
        for a in arrays.values():
            a.flags.writeable = False
        kept = plan.memo["generated"] = (*kept[:2], arrays)
    return kept[2]


def _fed(plan: Plan, batch: Batch, arrays: dict[str, np.ndarray], model: Model) -> dict[str, np.ndarray]:
    """`feed_batch(plan, batch, arrays, model)`; for the pair's kept batch, made once per model and kept (read
    only) with the batch's arrays."""
    kept = plan.memo.get("generated")
    if kept is None or kept[1] is not batch or len(kept) < 3 or kept[2] is not arrays:
        return feed_batch(plan, batch, arrays, model)
    fed = plan.memo.get("fed")
    if fed is None or fed[0] is not batch:
        fed = plan.memo["fed"] = (batch, {})
    mine = fed[1].get(id(model))
    if mine is None or mine[0] is not model.signature:  # (a signature is fixed when its model is loaded)
        feeds = feed_batch(plan, batch, arrays, model)
        for a in feeds.values():
            a.flags.writeable = False  # views of the batch or its arrays, or new arrays nothing else holds
        mine = fed[1][id(model)] = (model.signature, feeds)
    return dict(mine[1])


def _generation(plan: Plan, batch: Batch) -> dict[str, int]:
    """How many of the batch's rows came from each source; counted once for the pair's kept batch."""
    kept = plan.memo.get("generated")
    if kept is not None and kept[1] is batch:
        counts = plan.memo.get("generation")
        if counts is None or counts[0] is not batch:
            counts = plan.memo["generation"] = (batch, _count_sources(batch))
        return dict(counts[1])
    return _count_sources(batch)


def _count_sources(batch: Batch) -> dict[str, int]:
    return dict(zip(SOURCES[:4], np.bincount(batch.source, minlength=len(SOURCES)).tolist()))


def _tested(plan: Plan, samples: int) -> tuple[int, int]:
    """`tested_nodes(plan, samples)`, worked out once per pair and number of samples."""
    kept = plan.memo.get("tested")
    if kept is None or kept[0] != samples:
        kept = plan.memo["tested"] = (samples, tested_nodes(plan, samples))
    return kept[1]


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
    got = kept.get(seed)
    if got is None:  # a seed not seen before: its initial state is read only if it comes again
        kept[seed] = ()
        return np.random.default_rng(seed)
    if not got:
        gen = np.random.default_rng(seed)
        kept[seed] = (gen, gen.bit_generator.state)
        return gen
    gen, state = got
    gen.bit_generator.state = state
    return gen


def _as_model(source: Any) -> Model:
    return load_model(source)


def load_model(source: Any, *, trust: Any = (), data: Any = None) -> Model:
    """`source` as a Model: loaded through the registry (format sniffed) when it is not one already; a model
    that learns its input types from sample data (`with_data`, e.g. a scikit-learn model fitted on a DataFrame
    with string columns) is given `data` when it is a DataFrame. The checker's own loader: it does not import
    `portable.api`."""
    if isinstance(source, Model):
        return source
    from ..registry import REGISTRY, LoadOptions

    model = REGISTRY.sniff(source).load(source, LoadOptions(trust=tuple(trust)))
    if data is not None and hasattr(data, "columns") and callable(getattr(model, "with_data", None)):
        model = model.with_data(data)
    return model


def _no_tick() -> None:
    pass


def _ticker(progress: Callable[[int, int], Any] | None, total: int) -> Callable[[], None]:
    if progress is None:
        return _no_tick
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total)
    return tick


def _describe(model: Model) -> dict[str, Any]:
    """Format, name and file of one side; an artifact converted in memory has no file yet (its origin's path is
    the source's, not its own)."""
    own = model.origin.path if model.origin.format == model.format else None
    return {"format": model.format, "name": model.name, "path": getattr(model, "path", None) or own}


def _error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _run(model: Model, feeds: dict[str, np.ndarray], size: int | None) -> dict[str, np.ndarray]:
    """`model.run(feeds)`, in batches of exactly `size` rows when the model has a fixed batch size (the last
    batch padded with copies of its last row, whose outputs are dropped). A limit reached stops the check."""
    try:
        return _run_batches(model, feeds, size)
    except LimitError as exc:
        raise LimitReached(exc) from None


TEXT_CHUNK = 500_000  # rows x their longest text, per model run: runtimes lay tokens out densely ([rows, words,
# characters] strings for char n-grams), so 1,049 documents of up to 5,099 characters made onnxruntime peak at 7.5 GB


def _text_chunks(feeds: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """Consecutive row ranges whose row count times their longest text input is at most TEXT_CHUNK (at least one
    row each), or None when the whole batch is within it (no text input, or short texts)."""
    longest = None
    for v in feeds.values():
        if isinstance(v, np.ndarray) and v.dtype.kind in "OU" and v.size:
            if v.dtype.kind == "U" and len(v) * (v.itemsize // 4) <= TEXT_CHUNK:
                continue  # the fixed width bounds every text of it
            flat = v.reshape(len(v), -1)
            lengths = np.char.str_len(flat) if v.dtype.kind == "U" else \
                np.fromiter((len(x) if isinstance(x, (str, bytes)) else 0 for x in flat.ravel()), np.int64,
                            flat.size).reshape(flat.shape)
            row = lengths.max(axis=1)
            longest = row if longest is None else np.maximum(longest, row)
    if longest is None or len(longest) * max(int(longest.max()), 1) <= TEXT_CHUNK:
        return None
    chunks, start, widest = [], 0, 1
    for i, n in enumerate(longest.tolist()):
        widest = max(widest, n)
        if i > start and (i - start + 1) * widest > TEXT_CHUNK:
            chunks.append(np.arange(start, i))
            start, widest = i, max(n, 1)
    chunks.append(np.arange(start, len(longest)))
    return chunks


#: formats whose models tokenise each document on its own (scikit-learn's vectorizers, in memory or pickled): their
#: memory does not grow with rows x longest text, and each run pays a pipeline's fixed cost (a check of 1,000
#: generated reviews, some of 12,000 characters, ran a text pipeline in 24 chunks)
WHOLE_TEXT_FORMATS = ("sklearn", "pickle")


def _run_batches(model: Model, feeds: dict[str, np.ndarray], size: int | None) -> dict[str, np.ndarray]:
    if not size:
        chunks = None if model.format in WHOLE_TEXT_FORMATS else _text_chunks(feeds)
        if chunks is None:
            return model.run(feeds)
        parts = [model.run({k: v[rows] for k, v in feeds.items()}) for rows in chunks]
        return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    n = len(next(iter(feeds.values()))) if feeds else 0
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, max(n, 1), size):
        idx = np.minimum(np.arange(start, start + size), max(n - 1, 0))
        out = model.run({k: v[idx] for k, v in feeds.items()})
        keep = min(size, n - start)
        parts.append({k: np.asarray(v)[:keep] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _runner(plan: Plan, role: str) -> Callable[[Model, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    size = plan.batches.get(role)
    return lambda model, feeds: _run(model, feeds, size)


def _failed_rows(failures: list[dict[str, Any]]) -> int:
    return int(failures[0].get("rows", 0)) if failures else 0


def _accepted(run: Callable[[Batch], Any], batch: Batch, rows: np.ndarray, min_chunk: int = 1) -> tuple[
        list[np.ndarray], list[tuple[int, str]]]:
    """The rows of `rows` that `run` accepts, found by bisection (a rejected chunk is halved until single rows),
    and (row, error) for the first rejected rows."""
    ok: list[np.ndarray] = []
    bad: list[tuple[int, str]] = []
    stack = [rows]
    while stack:
        part = stack.pop()
        try:
            run(batch.take(part))
            ok.append(part)
            continue
        except Exception as exc:
            if len(part) <= min_chunk:
                if len(bad) < KEEP:
                    bad.extend((int(r), _error(exc)) for r in part[:KEEP - len(bad)])
                continue
        half = len(part) // 2
        stack += [part[half:], part[:half]]
    return ok, bad


def _original_rows(original: Model, plan: Plan, batch: Batch) -> tuple[np.ndarray, str]:
    """The rows of `batch` the original model accepts, and the first rejection's error ("" when none).

    The special rows are tried one by one, the others by bisection in chunks of 64."""
    run_a = _runner(plan, "original")

    def run(b: Batch) -> Any:
        return run_a(original, feed(assemble(plan, b), original))

    special = batch.source == SPECIAL
    ok: list[np.ndarray] = []
    first = ""
    singles, errors = _accepted(run, batch, np.flatnonzero(special))
    ok += singles
    if errors:
        first = errors[0][1]
    rest = np.flatnonzero(~special)
    for start in range(0, len(rest), 64):
        part, errors = _accepted(run, batch, rest[start:start + 64])
        ok += part
        if errors and not first:
            first = errors[0][1]
    rows = np.sort(np.concatenate(ok)) if ok else np.zeros(0, dtype=np.int64)
    return rows, first



REJECTS_KEPT = 64  # values a pair remembers as rejected by the original (see `_run_original`)


def _run_original(original: Model, plan: Plan, batch: Batch, arrays: dict[str, np.ndarray]) -> tuple[
        dict[str, np.ndarray] | None, np.ndarray | None, str, Exception | None]:
    """The original's outputs on `batch`, or on the rows of it that it accepts: (outputs, None, "", None) when it
    runs them all; else (outputs on `rows` or None, `rows` it accepts, the first rejection's error, the error of
    the whole batch or None).

    The rows it rejects are found by bisection (`_original_rows`: some hundred runs of the original on a batch of
    1,000 rows with a few rejected, each paying a pipeline's fixed cost). A pair whose original rejected rows
    before remembers the values only those rows held (`_learn_rejects`: the empty string a text vectorizer reads
    as a missing document, a category an encoder does not know); a new batch's rows holding one of them are
    predicted rejected: the original runs once on the others, and the predicted rows are bisected on their own.
    Rows are accepted or rejected one by one, so the rows found are those the bisection of the whole batch finds,
    and so are the outputs; when the others fail too, the whole batch is bisected as before."""
    run_a = _runner(plan, "original")
    predicted = _predicted_rejects(plan, batch)
    if predicted is not None:
        rest = np.flatnonzero(~predicted)
        try:
            out_rest = run_a(original, feed(assemble(plan, batch.take(rest)), original))
        except CannotRunError:
            raise
        except Exception:
            pass  # other rows are rejected too: the whole batch is bisected below
        else:
            def run(b: Batch) -> Any:
                return run_a(original, feed(assemble(plan, b), original))

            found = _nan_rejects(original, plan, batch)
            if found is not None:
                _learn_rejects(plan, batch, found[0])
                return None, found[0], found[1], None
            ok, errors = _accepted(run, batch, np.flatnonzero(predicted))
            first = errors[0][1] if errors else ""
            if not ok:  # every predicted row is rejected: the outputs on the others are the outputs
                _learn_rejects(plan, batch, rest)
                return out_rest, rest, first, None
            rows = np.sort(np.concatenate([rest, *ok]))
            _learn_rejects(plan, batch, rows)
            return None, rows, first, None
    try:
        return run_a(original, feed_batch(plan, batch, arrays, original)), None, "", None
    except CannotRunError:  # no row can run (e.g. its runtime cannot load it): not rows it rejects
        raise
    except Exception as exc:
        found = _nan_rejects(original, plan, batch)
        rows, first = found if found is not None else _original_rows(original, plan, batch)
        _learn_rejects(plan, batch, rows)
        return None, rows, first, exc


def _nan_rejects(original: Model, plan: Plan, batch: Batch) -> tuple[np.ndarray, str] | None:
    """When NaN in some columns is what the original rejects (a scikit-learn model without an imputer there, fed
    the NaN cells the converted model's hints ask for): the rows it accepts and the rejection's error, found with
    one probe per column instead of a bisection (which costs about two runs per rejected row: ~9,600 runs of a
    VotingRegressor when a fifth of the rows hold NaN). A probe is a row of the batch without NaN, with that
    column's cell set to NaN: the column's NaN is rejected when the probe is. The rows holding NaN in no rejected
    column must then run as one batch; when they do not (something else is rejected too), or no probe is
    rejected, None: the caller bisects."""
    cols = [i for i, f in enumerate(plan.features) if not f.is_string]
    if not cols or len(batch) < 2:
        return None
    nan = np.isnan(batch.num[:, cols])
    has = nan.any(axis=0)
    clean = np.flatnonzero(~nan.any(axis=1))
    if not has.any() or not len(clean):
        return None
    run_a = _runner(plan, "original")

    def run(b: Batch) -> Any:
        return run_a(original, feed(assemble(plan, b), original))

    rejected: list[int] = []
    first = ""
    for k in np.flatnonzero(has):
        probe = batch.take(clean[:1])
        probe.num[0, cols[k]] = np.nan
        try:
            run(probe)
        except CannotRunError:
            raise
        except Exception as exc:
            rejected.append(int(k))
            first = first or _error(exc)
    if not rejected:
        return None
    rows = np.flatnonzero(~nan[:, rejected].any(axis=1))
    try:
        run(batch.take(rows))
    except CannotRunError:
        raise
    except Exception:
        return None
    return rows, first


def _row_values(plan: Plan, batch: Batch, rows: np.ndarray) -> set[tuple[int, Any]]:
    """(feature, value) pairs the rows hold that a rejection may follow: string values, and NaN (as None) in
    numeric features."""
    got: set[tuple[int, Any]] = set()
    for i, f in enumerate(plan.features):
        if f.is_string:
            got.update((i, v) for v in batch.txt[rows, i].tolist())
        elif np.isnan(batch.num[rows, i]).any():
            got.add((i, None))
    return got


def _learn_rejects(plan: Plan, batch: Batch, accepted: np.ndarray) -> None:
    """Remember, on the pair's plan, the values held by rows the original rejected and by no row it accepted
    since (an accepted row holding one makes it forgotten for good; values no rejected row held are not kept).
    Nothing is predicted any more once more than `REJECTS_KEPT` values are remembered (rejections that follow no
    single value)."""
    rejected = np.setdiff1d(np.arange(len(batch)), accepted)
    if not len(rejected):
        return
    memo = plan.memo.setdefault("rejects", {"bad": set(), "ok": set()})
    if memo["bad"] is None:
        return
    candidates = memo["bad"] | _row_values(plan, batch, rejected)
    memo["ok"] |= candidates & _row_values(plan, batch, accepted)  # only values that were candidates: bounded
    bad = candidates - memo["ok"]
    memo["bad"] = bad if len(bad) <= REJECTS_KEPT and len(memo["ok"]) <= 64 * REJECTS_KEPT else None


def _predicted_rejects(plan: Plan, batch: Batch) -> np.ndarray | None:
    """Rows holding a value the pair's original rejected before (`_learn_rejects`), as a mask; None when there
    are none, or every row is one."""
    memo = plan.memo.get("rejects")
    if not memo or not memo["bad"]:
        return None
    hit = np.zeros(len(batch), dtype=bool)
    for i, v in memo["bad"]:
        if v is None:
            hit |= np.isnan(batch.num[:, i])
        else:
            hit |= batch.txt[:, i] == v
    return hit if hit.any() and not hit.all() else None


def _run_both(original: Model, converted: Model, plan: Plan, batch: Batch, notes: list[str],
              tick: Callable[[], None]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Batch,
                                                 list[dict[str, Any]]]:
    """Both models' outputs on the batch, and counterexamples for rows only the converted model rejects.

    Generated rows the original rejects are dropped (counted, with a note); rows of `data` it rejects, or
    nearly every generated row, make the check impossible (PortableError). Rows the original accepts and the
    converted model does not are left out of the comparison and make the check fail (with a note and
    counterexamples)."""
    arrays = _assembled(plan, batch)
    if not batch.num.flags.writeable:  # the pair's kept batch, shared between checks
        try:
            out_a = _run(original, _fed(plan, batch, arrays, original), plan.batches.get("original"))
            out_b = _run(converted, _fed(plan, batch, arrays, converted), plan.batches.get("converted"))
        except CannotRunError:
            raise
        except Exception:  # a model that rejects rows, or writes into its input: all again on a copy below
            batch = Batch(batch.num.copy(), batch.txt.copy(), batch.source.copy())
            arrays = assemble(plan, batch)
        else:
            tick()
            return out_a, out_b, batch, []
    run_a, run_b = _runner(plan, "original"), _runner(plan, "converted")
    out_a, rows, first, exc = _run_original(original, plan, batch, arrays)
    if rows is not None:  # the original rejects some rows
        whole = _error(exc) if exc is not None else first
        dropped = np.setdiff1d(np.arange(len(batch)), rows)
        data_dropped = int((batch.source[dropped] == DATA).sum())
        if data_dropped:
            raise PortableError(f"the original {original.format} model '{original.name}' rejects {data_dropped} "
                                f"of the rows of data= given to the check: {first or whole}") from exc
        if not len(rows) or len(dropped) > MOSTLY_REJECTED * len(batch):
            raise PortableError(f"the original {original.format} model '{original.name}' failed on generated "
                                f"inputs ({len(dropped)} of {len(batch)} rows rejected): {first or whole}; pass "
                                "data= with inputs it accepts") from exc
        notes.append(f"the original model rejects {len(dropped)} of {len(batch)} generated rows "
                     f"({first or whole}): they were dropped from the comparison")
        batch = batch.take(rows)
        arrays = assemble(plan, batch)
        if out_a is None:
            out_a = run_a(original, feed_batch(plan, batch, arrays, original))
    tick()
    try:
        return out_a, run_b(converted, feed_batch(plan, batch, arrays, converted)), batch, []
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
    if examples:
        examples[0]["rows"] = len(batch) - len(ok)
    if not len(ok):
        return {k: v[:0] for k, v in out_a.items()}, None, batch.take(ok), examples  # type: ignore[return-value]
    kept = batch.take(ok)
    out_b = run_b(converted, feed(assemble(plan, kept), converted))
    return {k: v[ok] for k, v in out_a.items()}, out_b, kept, examples


SMALL_BATCHES = (2, 5, 13, 34)  # sizes of the small batches some rows are run in again
SMALL_SINGLES = (4, 32)  # rows run again one by one: one per 1,024 rows of the batch, within these bounds
SMALL_SEED = 0xBA7C5  # which rows: the same positions whatever the check's seed (the rows differ by seed)


def _small_batches(plan: Plan, outputs: list[tuple[str, str]], original: Model, converted: Model, batch: Batch,
                   out_a: dict[str, np.ndarray], results: list[OutputResult],
                   notes: list[str]) -> list[dict[str, Any]]:
    """Counterexamples where the converted model's result depends on the batch size: a few rows of the batch
    (on which the whole batch agreed) run again by the converted model, one by one (`SMALL_SINGLES`) and in
    batches of a few rows (`SMALL_BATCHES`), compared with the original's outputs on the same rows with the
    tolerances the whole batch was compared with. An artifact may choose its computation by the row count (an
    `If` on the batch size: CatBoost's trees as one tree operator below a few rows, boosting.SIZE_SWITCH), and
    the whole batch exercises only its large batches' computation. Empty when they agree; otherwise the
    mismatches are added to `results` and a note says so. A small batch the converted model fails on is a
    counterexample too when the original runs it. Rows are picked by a fixed seed: the same under any load.
    Not for a model with a fixed batch size (every run is padded to it), nor for one whose hints say it computes
    rows alike at any row count (`InputHints.rows_alone`: an ONNX graph that neither branches on nor reads it)."""
    n = len(batch)
    if n < 2 or plan.batches.get("converted") or "converted" in plan.rows_alone:
        return []
    sizes, pick = _small_pick(n)
    sub, pieces = _small_feeds(plan, batch, converted, sizes, pick)
    ends = np.cumsum(sizes)
    parts: list[dict[str, np.ndarray]] = []
    kept: list[np.ndarray] = []
    examples: list[dict[str, Any]] = []
    failed = 0
    tails = [(name, np.shape(out_a[name])[1:]) for name, _ in outputs]  # each output's row shape, the original's
    for end, size, piece in zip(ends.tolist(), sizes, pieces):
        rows = np.arange(end - size, end)
        try:
            got = _run(converted, dict(piece), None)
            wrong = _shape_error(tails, got, size)
        except CannotRunError:
            raise
        except Exception as exc:
            try:  # a batch the original rejects on its own says nothing about the converted model
                _run(original, feed(assemble(plan, sub.take(rows)), original), plan.batches.get("original"))
            except CannotRunError:
                raise
            except Exception:
                continue
            wrong = _error(exc)
        else:
            if wrong is None:
                parts.append(got)
                kept.append(rows)
                continue
        failed += 1
        if len(examples) < KEEP:
            examples.append(_example(plan, sub.take(rows), {k: np.asarray(v)[pick[rows]] for k, v in out_a.items()},
                                     {"error": wrong},
                                     f"{SOURCES[batch.source[pick[end - size]]]} row {int(pick[end - size])} "
                                     f"run in a batch of {size} row(s): the converted model fails"))
    if not kept:
        if failed:
            notes.append(f"the converted model fails on {failed} small batch(es) of rows the whole batch ran: its "
                         "result depends on the batch size")
        return examples
    at = np.concatenate(kept)
    out_s = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    out_o = {k: np.asarray(v)[pick[at]] for k, v in out_a.items()}
    small = compare_outputs(outputs, out_o, out_s, len(at),
                            tolerances={r.name: r.tolerance for r in results if r.tolerance is not None})
    part = sub.take(at)
    if plan.decision is not None:
        _judge_labels(plan, original, part, small, [])
    if plan.ties is not None:
        _excuse_ties(plan, original, part, small, [])
    bad = np.zeros(len(at), dtype=bool)
    for r in small:
        bad |= r.bad
    if not bad.any():
        if failed:
            notes.append(f"the converted model fails on {failed} small batch(es) of rows the whole batch ran: its "
                         "result depends on the batch size")
        return examples
    for r, s in zip(results, small):  # the report's counts and largest differences include these rows
        r.mismatches += s.mismatches
        if s.error and not r.error:
            r.error = f"{s.error} (in batches of a few rows)"
        for key in ("max_abs_diff", "max_rel_diff"):
            mine, theirs = getattr(r, key), getattr(s, key)
            if theirs is not None and (mine is None or not theirs <= mine):
                setattr(r, key, theirs)
    starts = np.repeat(ends - np.array(sizes), sizes)  # each picked row's batch: [start, start + size)
    lengths = np.repeat(np.array(sizes), sizes)
    for j in np.flatnonzero(bad)[:KEEP - len(examples)]:
        i = int(at[j])
        rows = np.arange(starts[i], starts[i] + lengths[i])
        got = {k: v[np.searchsorted(at, rows)] for k, v in out_s.items()}
        examples.append(_example(plan, sub.take(rows), {k: np.asarray(v)[pick[rows]] for k, v in out_a.items()}, got,
                                 f"{SOURCES[batch.source[pick[i]]]} row {int(pick[i])} run in a batch of "
                                 f"{int(lengths[i])} row(s)"))
    notes.append(f"the converted model's result depends on the batch size: {int(bad.sum())} of {len(at)} rows run "
                 f"again alone or in batches of up to {max(sizes)} rows disagree with the "
                 "original, where the whole batch agreed")
    return examples


@functools.lru_cache(maxsize=64)
def _small_pick(n: int) -> tuple[list[int], np.ndarray]:
    """The sizes of the small batches for a batch of `n` rows (`SMALL_SINGLES` ones, then `SMALL_BATCHES`, as many
    as `n` rows hold) and the positions of the rows they take (seeded by `SMALL_SEED`): they depend on `n` only,
    so they are drawn once per `n` (seeding a generator and drawing without replacement cost more than running a
    small model) and kept read only."""
    sizes = [1] * min(max(n // 1024, SMALL_SINGLES[0]), SMALL_SINGLES[1]) + [s for s in SMALL_BATCHES if s < n]
    while sum(sizes) > n:
        sizes.pop()
    pick = np.random.default_rng(SMALL_SEED).choice(n, sum(sizes), replace=False)
    pick.flags.writeable = False
    return sizes, pick


def _small_feeds(plan: Plan, batch: Batch, converted: Model, sizes: list[int],
                 pick: np.ndarray) -> tuple[Batch, list[dict[str, np.ndarray]]]:
    """The picked rows of `batch` and, for each small batch in turn, the converted model's inputs on its rows
    (views of one feed of the picked rows). For the pair's kept batch (`_generated`: read only, and the converted
    model has just run on its read-only feeds), made once per model and kept with the batch, read only."""
    kept = plan.memo.get("generated")
    mine = kept is not None and kept[1] is batch and not batch.num.flags.writeable
    if mine:
        small = plan.memo.get("small")
        if small is not None and small[0] is batch and small[1] == id(converted) \
                and small[2] is converted.signature and small[3] is pick:
            return small[4], small[5]
    sub = batch.take(pick)
    feeds = feed(assemble(plan, sub), converted)
    pieces, start = [], 0
    for size in sizes:
        pieces.append({k: v[start:start + size] for k, v in feeds.items()})
        start += size
    if mine:
        for a in (*feeds.values(), sub.num, sub.txt, sub.source):
            a.flags.writeable = False
        plan.memo["small"] = (batch, id(converted), converted.signature, pick, sub, pieces)
    return sub, pieces


def _shape_error(tails: list[tuple[str, tuple[int, ...]]], got: dict[str, np.ndarray], rows: int) -> str | None:
    """What is wrong with the shapes of the converted model's outputs `got` on `rows` rows, given each output's
    row shape in the original's outputs on the whole batch (`tails`: (name, shape without the batch dimension));
    None when each output has `rows` rows of the original's shape."""
    for name, tail in tails:
        if name not in got:
            return f"no output '{name}'"
        want = (rows, *tail)
        have = np.shape(got[name])
        if have != want:
            return f"output '{name}' of shape {list(have)} for {rows} row(s), not {list(want)}"
    return None


def _runnable_rows(model: Model, plan: Plan, batch: Batch, chunk: int = 64,
                   probe: int = 4) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Rows `model` runs on, found chunk by chunk, and (row, error) for rows of the first failing chunks."""
    run_b = _runner(plan, "converted")
    ok: list[np.ndarray] = []
    errors: list[tuple[int, str]] = []
    failing_chunks = 0
    for start in range(0, len(batch), chunk):
        rows = np.arange(start, min(start + chunk, len(batch)))
        try:
            run_b(model, feed(assemble(plan, batch.take(rows)), model))
            ok.append(rows)
            continue
        except Exception:
            failing_chunks += 1
        if failing_chunks > probe:
            continue  # enough examples: count the rest of this chunk as failing without trying each row
        for r in rows:
            try:
                run_b(model, feed(assemble(plan, batch.take([r])), model))
                ok.append(np.array([r]))
            except Exception as exc:
                errors.append((int(r), _error(exc)))
    return (np.sort(np.concatenate(ok)) if ok else np.zeros(0, dtype=np.int64)), errors


EDGE_STEPS = 10  # bisection steps towards the label boundary
EDGE_POOL = 128  # pairs of rows straddling the label boundary learned once per pair of models
EDGE_SEED = 0x5EED  # the pool is the same whichever seed learns it


def _label_edges(plan: Plan, original: Model, converted: Model, outputs: list[tuple[str, str]], samples: int,
                 rng: np.random.Generator) -> Batch | None:
    """Rows on both sides of the label boundary, where the probabilities and scores are most sensitive (a
    classifier's random rows mostly sit where its probabilities saturate): a seeded sample of `2 * m` rows
    (m pairs) of the pair's edge pool (`_edge_pool`, learned once per pair of models like the plan). None for
    models without a label output, or when no pool could be learned."""
    labels = [name for name, kind in outputs if kind == "label"]
    if not labels or not any(not f.is_string for f in plan.features):
        return None
    pool = plan.memo.get("edges")
    if pool is None:
        pool = _edge_pool(plan, original, converted, labels[0])
        if isinstance(pool, tuple):  # kept as one batch, lower rows first, so a check takes its rows at once
            lo, hi = pool
            pool = (len(lo), Batch.concat([lo, hi]))
            pool[1].source[:] = BOUNDARY
        plan.memo["edges"] = pool
    if not isinstance(pool, tuple):
        return None
    half, both = pool
    m = min(half, 64, max(8, samples // 16))
    if m >= half:
        return both.take(np.arange(2 * half))
    pick = np.sort(rng.choice(half, m, replace=False))
    return both.take(np.concatenate([pick, pick + half]))


def _edge_pool(plan: Plan, original: Model, converted: Model, label: str) -> tuple[Batch, Batch] | bool:
    """`EDGE_POOL` pairs of rows on both sides of the label boundary: pairs of random rows with different labels,
    bisected `EDGE_STEPS` times along the segment between them. Where the two models agree their boundaries
    coincide, and where they do not the rows straddle one of them, so the bisection runs on one model only: the
    converted one (usually an artifact whose one runtime call costs far less than a library's input validation),
    or the original when the converted model fails on the random rows. The choice depends on nothing but the
    models (not on timing: the rows of a check must be the same under any load). False when neither model runs
    the rows."""
    rng = _edge_rng()
    m = EDGE_POOL
    runners = {"original": (original, _runner(plan, "original")), "converted": (converted, _runner(plan, "converted"))}

    def label_of(role: str, b: Batch) -> np.ndarray:
        model, run = runners[role]
        out = np.asarray(run(model, feed(assemble(plan, b), model))[label]).reshape(len(b), -1)
        if out.dtype.kind == "O":  # rows that hold lists (a PFA emit document's output): one key per row
            return np.array([hash(repr(r)) for r in out.tolist()])
        return np.array([hash(r.tobytes()) for r in out]) if out.shape[1] > 1 else out[:, 0]

    base = cloud_rows(plan, 2 * m, rng)
    role, lab = "", None
    for role in ("converted", "original"):
        try:
            lab = label_of(role, base)
            break
        except Exception:
            continue
    if lab is None:
        return False
    one_label = len(np.unique(lab)) < 2
    if one_label:
        # one label over the whole learned range (nothing said where the model's data live): along rays from
        # the middle of the ranges through the random rows, the first of the doubling distances where the label
        # changes; the rays that cross nearest, where the fewest large terms cancel in the model's sums
        found = _rays(plan, base, lambda b: label_of(role, b), lab[0])
        if found is None:
            return False
        lo, hi = found
    else:
        # each row of the first half with a random row of the second half that has another label (the draws
        # are those of one `rng.integers(0, len(others))` per row that has others, in row order)
        second = np.arange(m, 2 * m)
        labels_seen, group = np.unique(lab[:m], return_inverse=True)
        others = [second[lab[second] != u] for u in labels_seen]
        count = np.array([len(o) for o in others])[group.reshape(-1)]
        partner = np.full(m, -1)
        has = np.flatnonzero(count > 0)
        if len(has):
            k = rng.integers(0, count[has])
            for g, o in enumerate(others):
                sel = group.reshape(-1)[has] == g
                partner[has[sel]] = o[k[sel]]
        keep = np.flatnonzero(partner >= 0)
        if not len(keep):
            return False
        lo, hi = base.take(keep), base.take(partner[keep])
    lo_label = lab[0] if one_label else lab[keep]
    num = np.array([not f.is_string for f in plan.features])
    every = bool(num.all())
    try:
        for _ in range(EDGE_STEPS):
            # the midpoints; string features keep the lower rows' values (mid shares lo's strings and sources,
            # which the loop does not change)
            if every:
                half = lo.num + hi.num
                half /= 2
                mid = Batch(narrow_values(plan, half), lo.txt, lo.source)
            else:
                mid = Batch(lo.num.copy(), lo.txt, lo.source)
                mid.num[:, num] = narrow_values(plan, (lo.num[:, num] + hi.num[:, num]) / 2)
            if plan.any_integer:
                mid.num[:, plan.integer] = np.round(mid.num[:, plan.integer])
            same = (label_of(role, mid) == lo_label)[:, None]
            np.copyto(lo.num, mid.num, where=same)
            np.copyto(hi.num, mid.num, where=~same)
    except Exception:
        return False
    return lo, hi


def _edge_rng() -> np.random.Generator:
    """`np.random.default_rng(EDGE_SEED)` in its initial state: one generator per thread, put back in that state
    for each use (seeding a new generator costs several times more). Not `_rng`'s: that may hand the same seed's
    generator to the check that learns the pool."""
    kept = getattr(_RNGS, "edge", None)
    if kept is None:
        gen = np.random.default_rng(EDGE_SEED)
        _RNGS.edge = (gen, gen.bit_generator.state)
        return gen
    gen, state = kept
    gen.bit_generator.state = state
    return gen


def _edges(plan: Plan, original: Model, converted: Model, outputs: list[tuple[str, str]], samples: int,
           rng: np.random.Generator) -> Batch | None:
    """The rows a check adds after `generate`'s: the label-boundary rows (`_label_edges`) of a model with a
    label, else the rows beside the jumps of a neighbour model's outputs (`_jump_edges`)."""
    if any(kind == "label" for _, kind in outputs):
        return _label_edges(plan, original, converted, outputs, samples, rng)
    return _jump_edges(plan, original, converted, outputs, samples, rng)


JUMP_STEPS = 40  # bisection steps towards a jump of a neighbour model's outputs (fewer once every pair is down to
# adjacent values of the narrow dtype)
JUMP_OCTAVES = (4.0, 24.0)  # the rows beside a jump are 2**-u segment lengths away from it, u uniform in this range


def _jump_edges(plan: Plan, original: Model, converted: Model, outputs: list[tuple[str, str]], samples: int,
                rng: np.random.Generator) -> Batch | None:
    """Rows beside the places where a neighbour model's outputs jump (its set of nearest training points changes:
    `InputHints.ties` says the original decides by neighbours), for models without a label (a k-NN regressor).
    A row a tiny step from such a place is where an input rounded on its way in (an input cast to float16 in the
    artifact) takes the other set of neighbours, and random rows almost never lie that near one; a row *on* it
    is a tie, which two correct implementations may break differently (excused as a near-tie). So the rows are
    at distances spread evenly in their logarithm, from a sixteenth of the segment the jump was found on down to
    the narrow dtype's resolution (`JUMP_OCTAVES`), on both sides: a seeded sample of `m` of the pair's jumps
    (`_jump_pool`, learned once per pair like the plan), two rows each. None for other models."""
    if plan.ties is None or not any(not f.is_string for f in plan.features):
        return None
    pool = plan.memo.get("jumps")
    if pool is None:
        pool = plan.memo["jumps"] = _jump_pool(plan, original, converted, [name for name, _ in outputs])
    if not isinstance(pool, tuple):
        return None
    lo, hi, step = pool
    half = len(lo)
    m = min(half, 64, max(8, samples // 16))
    pick = np.arange(half) if m >= half else np.sort(rng.choice(half, m, replace=False))
    u = rng.uniform(JUMP_OCTAVES[0], JUMP_OCTAVES[1], (2, len(pick)))
    out = Batch.concat([lo.take(pick), hi.take(pick)])
    num = np.array([not f.is_string for f in plan.features])
    away = np.concatenate([-np.exp2(-u[0]), np.exp2(-u[1])])[:, None] * step[np.concatenate([pick, pick])]
    with np.errstate(over="ignore", invalid="ignore"):
        out.num[:, num] = narrow_values(plan, out.num[:, num] + away[:, num])
    if plan.any_integer:
        out.num[:, plan.integer] = np.round(out.num[:, plan.integer])
    if plan.domain is not None:
        out.num[...] = narrow_values(plan, out.num)
    out.source[:] = BOUNDARY
    return out


def _jump_pool(plan: Plan, original: Model, converted: Model,
               names: list[str]) -> tuple[Batch, Batch, np.ndarray] | bool:
    """`EDGE_POOL` pairs of rows (lower, upper) on both sides of a jump of the outputs `names` (their values
    differ), each found by bisecting the segment between two random rows whose outputs differ until the pair is
    two adjacent values of the narrow dtype apart, and each segment's vector (upper minus lower row at the
    start). Run on one model, as `_edge_pool`; False when neither model runs the rows or no two rows differ."""
    rng = np.random.default_rng(EDGE_SEED)
    m = EDGE_POOL
    runners = {"original": (original, _runner(plan, "original")), "converted": (converted, _runner(plan, "converted"))}

    def key_of(role: str, b: Batch) -> np.ndarray:
        model, run = runners[role]
        got = run(model, feed(assemble(plan, b), model))
        parts = [np.asarray(got[n]).reshape(len(b), -1) for n in names]
        if any(p.dtype.kind == "O" for p in parts):
            return np.array([hash(repr([p[i].tolist() for p in parts])) for i in range(len(b))])
        return np.array([hash(b"".join(p[i].tobytes() for p in parts)) for i in range(len(b))])

    base = cloud_rows(plan, 2 * m, rng)
    role, key = "", None
    for role in ("converted", "original"):
        try:
            key = key_of(role, base)
            break
        except Exception:
            continue
    if key is None:
        return False
    keep = np.flatnonzero(key[:m] != key[m:])
    if not len(keep):
        return False
    lo, hi = base.take(keep), base.take(keep + m)
    lo_key = key[keep]
    num = np.array([not f.is_string for f in plan.features])
    step = np.where(num, hi.num - lo.num, 0.0)
    try:
        for _ in range(JUMP_STEPS):
            mid = Batch(lo.num.copy(), lo.txt, lo.source)
            mid.num[:, num] = narrow_values(plan, (lo.num[:, num] + hi.num[:, num]) / 2)
            if plan.any_integer:
                mid.num[:, plan.integer] = np.round(mid.num[:, plan.integer])
            moving = ~(np.all(mid.num == lo.num, axis=1) | np.all(mid.num == hi.num, axis=1))
            if not moving.any():
                break
            same = np.zeros(len(lo), dtype=bool)
            at = np.flatnonzero(moving)
            same[at] = key_of(role, mid.take(at)) == lo_key[at]
            np.copyto(lo.num, mid.num, where=(same & moving)[:, None])
            np.copyto(hi.num, mid.num, where=(~same & moving)[:, None])
    except Exception:
        return False
    return lo, hi, step


RAY_SCALES = 2.0 ** np.arange(1, 13)  # the doubling distances `_rays` tries, in ranges from the middle


def _rays(plan: Plan, base: Batch, label_of: Callable[[Batch], np.ndarray], label: Any) -> tuple[Batch, Batch] | None:
    """Pairs of rows (inside, outside) around the first label change along rays from the middle of the ranges
    through `base`'s rows, at doubling distances (one run of the model for all of them); the quarter of the
    rays that cross nearest. None when no ray crosses."""
    num = np.array([not f.is_string for f in plan.features])
    d = base.num[:, num] - plan.mid[num]
    far = []
    for s in RAY_SCALES:
        w = base.take(np.arange(len(base)))
        with np.errstate(over="ignore", invalid="ignore"):
            w.num[:, num] = narrow_values(plan, plan.mid[num] + d * s)
        if plan.any_integer:
            w.num[:, plan.integer] = np.round(w.num[:, plan.integer])
        far.append(w)
    try:
        labs = label_of(Batch.concat(far)).reshape(len(RAY_SCALES), len(base))
    except Exception:
        return None
    changed = labs != label
    crosses = np.flatnonzero(changed.any(axis=0))
    if not len(crosses):
        return None
    at = np.argmax(changed[:, crosses], axis=0)  # the first distance where each ray's label changed
    order = np.argsort(at, kind="stable")[:max(1, len(crosses) // 4)]
    rays, at = crosses[order], at[order]
    inside = base.take(rays)
    outside = base.take(rays)
    for j, (r, k) in enumerate(zip(rays, at)):
        outside.num[j] = far[k].num[r]
        if k:
            inside.num[j] = far[k - 1].num[r]
    return inside, outside


def _excuse_ties(plan: Plan, original: Model, batch: Batch, results: list[OutputResult],
                 notes: list[str]) -> None:
    """Differences on rows where the original's own result is decided by a tie (`InputHints.ties`: k-NN
    neighbours equally far within rounding) are near-ties, not mismatches."""
    rows = failing_rows(results, len(batch))
    if not len(rows):
        return
    rtol = 1e-5 if plan.narrow == np.float32 else 1e-9
    try:
        tied_rows = np.asarray(plan.ties(feed(assemble(plan, batch.take(rows)), original), rtol), dtype=bool)
    except Exception as exc:
        notes.append(f"ties of the original could not be told apart ({_error(exc)})")
        return
    tied, changed = excuse_tied(results, rows, tied_rows, len(batch))
    if not tied.any():
        return
    for r in changed:
        if r.kind == "label":
            r.worst_row = int(np.argmax(r.bad)) if r.mismatches else None
    notes.append(f"{int(tied.sum())} rows where the original's result is decided by a tie (nearest training "
                 "points equally far, or a one-vs-one vote within rounding of 0: a tie two correct implementations "
                 "may break differently) were counted as near-ties")


def _judge_labels(plan: Plan, original: Model, batch: Batch, results: list[OutputResult],
                  notes: list[str]) -> None:
    """Label mismatches judged on the quantity the original's label follows (`plan.decision`): a near-tie only
    where that quantity's top two are within tolerance, a mismatch elsewhere (even where the probabilities tie)."""
    dec = plan.decision
    lab = next((r for r in results if r.name == dec.output and r.kind == "label" and not r.error), None)
    if lab is None or not (lab.mismatches or lab.near_ties):
        return
    rows = np.flatnonzero(lab.differ)
    try:
        values = np.asarray(dec.compute(feed(assemble(plan, batch.take(rows)), original)), dtype=np.float64)
    except Exception as exc:
        notes.append(f"label near-ties were judged on the outputs: the original's {dec.method} failed "
                     f"({_error(exc)})")
        return
    judge_on_decision(lab, rows, values, dec, plan.narrow)
    if lab.mismatches:
        notes.append(f"labels were judged on the original's {dec.method}, which its label follows")


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
        from hypothesis.errors import Flaky, NoSuchExample
    except ImportError:
        return None
    calls = [0]
    # the smallest failing batch seen: what is kept when hypothesis gives up on a predicate that did not answer
    # the same twice (a float32 row's result can depend on the batch around it: onnxruntime's kernels block
    # by batch size; and the call budget turns "fails" into "passes" once spent)
    best = [failing]

    run_a, run_b = _runner(plan, "original"), _runner(plan, "converted")

    def run(b: Batch) -> tuple[dict, dict, list[OutputResult]] | None:
        arrays = assemble(plan, b)
        try:
            a = run_a(original, feed(arrays, original))
            c = run_b(converted, feed(arrays, converted))
        except Exception:
            return None
        results = compare_outputs(outputs, a, c, len(b), rtol, atol)
        if plan.decision is not None:
            _judge_labels(plan, original, b, results, [])
        if plan.ties is not None:
            _excuse_ties(plan, original, b, results, [])
        return a, c, results

    def fails(b: Batch) -> bool:
        if calls[0] >= SHRINK_CALLS:
            return False  # out of budget: nothing smaller counts as failing, so shrinking stops here
        calls[0] += 1
        got = run(b)
        bad = got is not None and any(r.bad.any() for r in got[2])
        if bad and len(b) < len(best[0]):
            best[0] = b
        return bad

    opts = settings(max_examples=SHRINK_EXAMPLES, database=None, deadline=None,
                    phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    try:
        found = find(rows_strategy(failing), fails, settings=opts, random=random.Random(seed))
    except NoSuchExample:
        return None
    except Flaky:
        found = best[0]
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
        except Flaky:
            pass  # a simplification failed once and not again: keep the row as it is
    got = run(found)
    if got is None or not any(r.bad.any() for r in got[2]):
        return None  # it did not fail again on its own: the batch's own failing rows are the counterexamples
    found.source[:] = SHRUNK
    return found, got[0], got[1]
