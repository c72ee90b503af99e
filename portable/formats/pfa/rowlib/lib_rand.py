"""rand.*: pseudorandom numbers from the engine's seeded generator (the document's `randseed`, or the seed given
to `PfaModel`/`reset(seed=...)`); one generator per engine, drawn in record order, so a seeded run repeats."""
from __future__ import annotations

import math
from typing import Any

from ..rows import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, f32
from . import err, factory, sized


def _rng(b: Any) -> Any:
    return b.st.rng


@factory("rand.int")
def rand_int(b: Any) -> Any:
    def run(*args: int) -> int:
        r = _rng(b)
        if not args:
            return r.randint(INT_MIN, INT_MAX)
        low, high = args
        if high <= low:
            raise err("high must be greater than low", 34000)
        return r.randint(low, high - 1)
    return run


@factory("rand.long")
def rand_long(b: Any) -> Any:
    def run(*args: int) -> int:
        r = _rng(b)
        if not args:
            return r.randint(LONG_MIN, LONG_MAX)
        low, high = args
        if high <= low:
            raise err("high must be greater than low", 34010)
        return r.randint(low, high - 1)
    return run


@factory("rand.float")
def rand_float(b: Any) -> Any:
    def run(low: float, high: float) -> float:
        if high <= low:
            raise err("high must be greater than low", 34020)
        return f32(_rng(b).uniform(low, high))
    return run


@factory("rand.double")
def rand_double(b: Any) -> Any:
    def run(low: float, high: float) -> float:
        if high <= low:
            raise err("high must be greater than low", 34030)
        return _rng(b).uniform(low, high)
    return run


@factory("rand.choice")
def rand_choice(b: Any) -> Any:
    def run(population: list) -> Any:
        if not population:
            raise err("population must not be empty", 34040)
        return population[_rng(b).randint(0, len(population) - 1)]
    return run


@factory("rand.choices")
def rand_choices(b: Any) -> Any:
    def run(size: int, population: list) -> list:
        if not population:
            raise err("population must not be empty", 34050)
        r = _rng(b)
        return [population[r.randint(0, len(population) - 1)] for _ in range(size)]
    return run


@factory("rand.sample")
def rand_sample(b: Any) -> Any:
    def run(size: int, population: list) -> list:
        if not population:
            raise err("population must not be empty", 34060)
        if len(population) < size:
            raise err("population smaller than requested subsample", 34061)
        return _rng(b).sample(population, size)
    return run


@factory("rand.histogram")
def rand_histogram(b: Any) -> Any:
    def run(distribution: list) -> Any:
        records = bool(distribution) and isinstance(distribution[0], dict)
        probs = [x["prob"] for x in distribution] if records else distribution
        cum = [0.0]
        for x in probs:
            if math.isnan(x) or math.isinf(x):
                raise err("distribution must be finite", 34071)
            if x < 0:
                raise err("distribution must be non-negative", 34072)
            cum.append(cum[-1] + x)
        total = cum[-1]
        if total == 0.0:
            raise err("distribution must be non-empty", 34070)
        pos = _rng(b).uniform(0.0, total)
        idx = len(probs) - 1
        for i, y in enumerate(cum):
            if pos < y:
                idx = i - 1
                break
        return distribution[idx] if records else idx
    return run


@factory("rand.string")
def rand_string(b: Any) -> Any:
    def run(size: int, *args: Any) -> str:
        if size <= 0:
            raise err("size must be positive", 34080)
        sized(size, "rand.string's string")  # one character a Python step: 2**31 ran for hours
        r = _rng(b)
        if not args:
            return "".join(chr(r.randint(1, 0xD800)) for _ in range(size))  # "up to and including 0xD800"
        if len(args) == 1:
            pop = args[0]
            if not pop:
                raise err("population must be non-empty", 34083)
            return "".join(pop[r.randint(0, len(pop) - 1)] for _ in range(size))
        low, high = args
        if high <= low:
            raise err("high must be greater than low", 34081)
        if low < 1 or low > 0xD800 or high < 1 or high > 0xD800:
            raise err("invalid char", 34082)
        return "".join(chr(r.randint(low, high - 1)) for _ in range(size))
    return run


@factory("rand.bytes")
def rand_bytes(b: Any) -> Any:
    def run(size: int, *args: Any) -> bytes:
        if size <= 0:
            raise err("size must be positive", 34090)
        sized(size, "rand.bytes' bytes")
        r = _rng(b)
        if not args:
            return bytes(r.randint(0, 255) for _ in range(size))
        if len(args) == 1:
            pop = args[0]
            if not pop:
                raise err("population must be non-empty", 34093)
            return bytes(pop[r.randint(0, len(pop) - 1)] for _ in range(size))
        low, high = args
        if high <= low:
            raise err("high must be greater than low", 34091)
        if low < 0 or low > 255 or high < 0 or high > 256:
            raise err("invalid byte", 34092)
        return bytes(r.randint(low, high - 1) for _ in range(size))
    return run


@factory("rand.uuid", "rand.uuid4")
def rand_uuid(b: Any) -> Any:
    def run() -> str:
        r = _rng(b)
        return "{0:08x}-{1:04x}-4{2:03x}-8{3:03x}-{4:012x}".format(
            r.getrandbits(32), r.getrandbits(16), r.getrandbits(12), r.getrandbits(12), r.getrandbits(48))
    return run


@factory("rand.gaussian")
def rand_gaussian(b: Any) -> Any:
    return lambda mu, sigma: _rng(b).gauss(mu, sigma)
