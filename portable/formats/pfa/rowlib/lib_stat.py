"""stat.sample.*, stat.change.*, stat.test.kolmogorov: running statistics whose state records a document keeps in
cells or pools (e.g. `{"cell": "s", "to": {"fcn": "stat.sample.update", ...}}`); the record's fields decide what is
updated (count; count and mean; count, mean and variance)."""
from __future__ import annotations

import math
from typing import Any

from .. import types as T
from . import err, factory, fn


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


@fn("stat.sample.update")
def update(x: float, w: float, state: dict) -> dict:
    original = state["count"]
    count = original + w
    if "mean" not in state:
        return dict(state, count=count)
    mean = state["mean"]
    delta = x - mean
    shift = _div(delta * w, count)
    mean = mean + shift
    if "variance" not in state:
        return dict(state, count=count, mean=mean)
    vtc = state["variance"] * original + original * delta * shift
    return dict(state, count=count, mean=mean, variance=_div(vtc, count))


@fn("stat.sample.updateCovariance")
def update_covariance(x: Any, w: float, state: dict) -> dict:
    if len(x) < 2:
        raise err("too few components", 14011)
    if isinstance(x, dict):
        oc, om, ov = state["count"], state["mean"], state["covariance"]
        keys = set(x) | set(oc) | {j for r in oc.values() for j in r} | set(ov) | {j for r in ov.values() for j in r}
        nc = {i: {j: oc.get(i, {}).get(j, 0.0) + (w if i in x and j in x else 0.0) for j in keys} for i in keys}
        nm = {i: om.get(i, 0.0) + (_div((x[i] - om.get(i, 0.0)) * w, nc[i][i]) if i in x else 0.0) for i in keys}
        nv = {}
        for i in keys:
            row = {}
            for j in keys:
                old = ov.get(i, {}).get(j, 0.0)
                if i in x and j in x:
                    c = oc.get(i, {}).get(j, 0.0)
                    row[j] = _div(old * c + _div((x[i] - om.get(i, 0.0)) * (x[j] - om.get(j, 0.0)) * w * c,
                                                 nc[i][j]), nc[i][j])
                else:
                    row[j] = old
            nv[i] = row
        return dict(state, count=nc, mean=nm, covariance=nv)
    n = len(x)
    oc, om, ov = state["count"], state["mean"], state["covariance"]
    if n != len(om) or n != len(ov) or any(n != len(r) for r in ov):
        raise err("unequal length arrays", 14012)
    nc = oc + w
    nm = [m + _div((x[i] - m) * w, nc) for i, m in enumerate(om)]
    nv = [[_div(ov[i][j] * oc + _div((x[i] - om[i]) * (x[j] - om[j]) * w * oc, nc), nc) for j in range(n)]
          for i in range(n)]
    return dict(state, count=nc, mean=nm, covariance=nv)


@factory("stat.sample.updateWindow")
def update_window(b: Any) -> Any:
    t = b.t(2)
    rec = t.items if isinstance(t, T.Array) else None

    def run(x: float, w: float, state: list, window: int) -> list:
        if window < 2:
            raise err("windowSize must be at least 2", 14020)
        if not state:
            fields = list(rec.fields) if isinstance(rec, T.Record) else ["x", "w", "count"]
            init = {"x": x, "w": w, "count": w, "mean": x, "variance": 0.0}
            if any(f not in init for f in fields):
                raise err("cannot initialize unrecognized fields", 14021)
            return [{f: init[f] for f in fields}]
        record = state[-1]
        original = record["count"]
        count = original + w
        has_mean, has_var = "mean" in record, "variance" in record
        if len(state) >= window:
            split = len(state) - window + 1
            removed, keep = state[:split], state[split:]
            count2 = count - sum(r["w"] for r in removed)
            if not has_mean:
                return keep + [dict(record, x=x, w=w, count=count2)]
            mean = record["mean"]
            delta = x - mean
            shift = _div(delta * w, count)
            mean += shift
            acc = count
            correction = 0.0
            for r in removed:
                ow = -r["w"]
                acc += ow
                d2 = r["x"] - mean
                s2 = _div(d2 * ow, acc)
                mean += s2
                correction += (acc - ow) * d2 * s2
            if not has_var:
                return keep + [dict(record, x=x, w=w, count=count2, mean=mean)]
            vtc = record["variance"] * original + original * delta * shift + correction
            return keep + [dict(record, x=x, w=w, count=count2, mean=mean, variance=_div(vtc, count2))]
        if not has_mean:
            return state + [dict(record, x=x, w=w, count=count)]
        mean = record["mean"]
        delta = x - mean
        shift = _div(delta * w, count)
        mean += shift
        if not has_var:
            return state + [dict(record, x=x, w=w, count=count, mean=mean)]
        vtc = record["variance"] * original + original * delta * shift
        return state + [dict(record, x=x, w=w, count=count, mean=mean, variance=_div(vtc, count))]
    return run


@fn("stat.sample.updateEWMA")
def update_ewma(x: float, alpha: float, state: dict) -> dict:
    if alpha < 0 or alpha > 1:
        raise err("alpha out of range", 14030)
    mean = state["mean"]
    diff = x - mean
    incr = alpha * diff
    if "variance" in state:
        return dict(state, mean=mean + incr, variance=(1.0 - alpha) * (state["variance"] + diff * incr))
    return dict(state, mean=mean + incr)


@fn("stat.sample.updateHoltWinters")
def update_holt_winters(x: float, alpha: float, beta: float, state: dict) -> dict:
    if alpha < 0 or alpha > 1:
        raise err("alpha out of range", 14040)
    if beta < 0 or beta > 1:
        raise err("beta out of range", 14041)
    lp, tp = state["level"], state["trend"]
    level = alpha * x + (1.0 - alpha) * (lp + tp)
    trend = beta * (level - lp) + (1.0 - beta) * tp
    return dict(state, level=level, trend=trend)


@fn("stat.sample.updateHoltWintersPeriodic")
def update_holt_winters_periodic(x: float, alpha: float, beta: float, gamma: float, state: dict) -> dict:
    for v, name, code in ((alpha, "alpha", 14050), (beta, "beta", 14051), (gamma, "gamma", 14052)):
        if v < 0 or v > 1:
            raise err(f"{name} out of range", code)
    lp, tp, cyc = state["level"], state["trend"], state["cycle"]
    if not cyc:
        raise err("empty cycle", 14053)
    rotated = cyc[1:] + [cyc[0]]
    cp = rotated[0]
    if state["multiplicative"]:
        level = _div(alpha * x, cp) + (1.0 - alpha) * (lp + tp)
        trend = beta * (level - lp) + (1.0 - beta) * tp
        c = _div(gamma * x, level) + (1.0 - gamma) * cp
    else:
        level = alpha * (x - cp) + (1.0 - alpha) * (lp + tp)
        trend = beta * (level - lp) + (1.0 - beta) * tp
        c = gamma * (x - level) + (1.0 - gamma) * cp
    return dict(state, level=level, trend=trend, cycle=[c] + rotated[1:])


@fn("stat.sample.forecast1HoltWinters")
def forecast1(state: dict) -> float:
    level, trend = state["level"], state["trend"]
    if "cycle" not in state:
        return level + trend
    cyc = state["cycle"]
    if not cyc:
        raise err("empty cycle", 14060)
    c = cyc[1 % len(cyc)]
    return (level + trend) * c if state["multiplicative"] else level + trend + c


@fn("stat.sample.forecastHoltWinters")
def forecast(n: int, state: dict) -> list:
    level, trend = state["level"], state["trend"]
    if "cycle" not in state:
        return [level + i * trend for i in range(1, n + 1)]
    cyc = state["cycle"]
    if not cyc:
        raise err("empty cycle", 14070)
    L = len(cyc)
    if state["multiplicative"]:
        return [(level + i * trend) * cyc[i % L] for i in range(1, n + 1)]
    return [level + i * trend + cyc[i % L] for i in range(1, n + 1)]


def _flows(h: dict, w: float, under: bool, over: bool, nan: bool, inf: bool, values: list) -> dict:
    out = dict(h, values=values)
    for name, hit in (("underflow", under), ("overflow", over), ("nanflow", nan), ("infflow", inf)):
        if name in h:
            out[name] = h[name] + (w if hit else 0.0)
    return out


def _bad_range(lo: float, hi: float) -> bool:
    return lo >= hi or any(math.isnan(v) or math.isinf(v) for v in (lo, hi))


@fn("stat.sample.fillHistogram")
def fill_histogram(x: float, w: float, h: dict) -> dict:
    values = h["values"]
    has_inf = "infflow" in h
    if "numbins" in h:
        numbins, low, high = h["numbins"], h["low"], h["high"]
        if numbins < 1:
            raise err("bad histogram scale", 14082)
        if len(values) != numbins:
            raise err("wrong histogram size", 14080)
        if _bad_range(low, high):
            raise err("bad histogram range", 14081)
        inf, nan = has_inf and math.isinf(x), math.isnan(x)
        over = not inf and not nan and x >= high
        under = not inf and not nan and not over and x < low
        if not (inf or nan or over or under):
            idx = int(math.floor((x - low) / (high - low) * numbins))
            values = list(values)
            values[idx] += w
        return _flows(h, w, under, over, nan, inf, values)
    if "binsize" in h:
        low, size = h["low"], h["binsize"]
        if size <= 0 or math.isnan(size) or math.isinf(size):
            raise err("bad histogram scale", 14082)
        inf, nan = has_inf and math.isinf(x), math.isnan(x)
        over = not inf and not nan and math.isinf(x) and x > 0
        under = not inf and not nan and not over and x < low
        if not (inf or nan or over or under):
            idx = int(math.floor((x - low) / size))
            if idx < len(values):
                values = list(values)
                values[idx] += w
            else:
                values = list(values) + [0.0] * (idx - len(values)) + [w]
        return _flows(h, w, under, over, nan, inf, values)
    ranges = h["ranges"]
    if len(values) != len(ranges):
        raise err("wrong histogram size", 14080)
    if any(len(r) != 2 or r[0] > r[1] or _bad_range(r[0], r[0] + 1) or _bad_range(r[1], r[1] + 1) for r in ranges):
        raise err("bad histogram ranges", 14083)
    values = list(values)
    hit = False
    if not math.isinf(x) and not math.isnan(x):
        for i, (lo, hi) in enumerate(ranges):
            if (lo == hi and x == lo) or lo <= x < hi:
                values[i] += w
                hit = True
    inf = has_inf and math.isinf(x)
    nan = not inf and math.isnan(x)
    under = not inf and not nan and not hit
    return _flows(h, w, under, False, nan, inf, values)


@fn("stat.sample.fillHistogram2d")
def fill_histogram2d(x: float, y: float, w: float, h: dict) -> dict:
    values = h["values"]
    xn, xlo, xhi, yn, ylo, yhi = (h[k] for k in ("xnumbins", "xlow", "xhigh", "ynumbins", "ylow", "yhigh"))
    if xn < 1 or yn < 1:
        raise err("bad histogram scale", 14092)
    if len(values) != xn or any(len(r) != yn for r in values):
        raise err("wrong histogram size", 14090)
    if _bad_range(xlo, xhi) or _bad_range(ylo, yhi):
        raise err("bad histogram range", 14091)
    flags = {k: False for k in ("underunderflow", "undermidflow", "underoverflow", "midunderflow", "midoverflow",
                                "overunderflow", "overmidflow", "overoverflow", "nanflow", "infflow")}
    if math.isnan(x) or math.isnan(y):
        flags["nanflow"] = True
    elif "infflow" in h and (math.isinf(x) or math.isinf(y)):
        flags["infflow"] = True
    else:
        xs = "under" if x < xlo else ("over" if x >= xhi else "mid")
        ys = "under" if y < ylo else ("over" if y >= yhi else "mid")
        if xs != "mid" or ys != "mid":
            flags[f"{xs}{ys}flow"] = True
    out = dict(h)
    if not any(flags.values()):
        xi = int(math.floor((x - xlo) / (xhi - xlo) * xn))
        yi = int(math.floor((y - ylo) / (yhi - ylo) * yn))
        values = [list(r) for r in values]
        values[xi][yi] += w
    out["values"] = values
    for k, hit in flags.items():
        if k in h:
            out[k] = h[k] + (w if hit else 0.0)
    return out


@fn("stat.sample.fillCounter")
def fill_counter(x: str, w: float, counter: dict) -> dict:
    old = counter["values"]
    return dict(counter, values={**old, x: old.get(x, 0.0) + w})


@fn("stat.sample.topN")
def top_n(x: Any, top: list, n: int, less_than: Any) -> list:
    if n <= 0:
        return []
    index = 0
    for best in top:
        if less_than(best, x):
            break
        index += 1
    return (top[:index] + [x] + top[index:])[:n]


@fn("stat.change.updateTrigger")
def update_trigger(predicate: bool, history: dict) -> dict:
    ne, nr, cr, lr = (history[k] for k in ("numEvents", "numRuns", "currentRun", "longestRun"))
    if ne < 0 or nr < 0 or cr < 0 or lr < 0:
        raise err("counter out of range", 37000)
    if predicate:
        ne += 1
        if cr == 0:
            nr += 1
        cr += 1
        lr = max(lr, cr)
    else:
        cr = 0
    return dict(history, numEvents=ne, numRuns=nr, currentRun=cr, longestRun=lr)


@fn("stat.change.zValue")
def z_value(x: float, mv: dict, unbiased: bool | None = None) -> float:
    var = mv["variance"]
    sigma = math.sqrt(var) if var >= 0 else math.nan
    z = _div(x - mv["mean"], sigma)
    if unbiased:
        count = mv["count"]
        ratio = _div(count, count - 1.0)
        z *= math.sqrt(ratio) if ratio >= 0 else math.nan
    return z


fn("stat.change.updateCUSUM")(lambda llr, last, reset: llr + last if llr + last > reset else reset)


@fn("stat.test.kolmogorov")
def kolmogorov(x: list, y: list) -> float:
    xs = sorted(v for v in x if not math.isnan(v))
    ys = sorted(v for v in y if not math.isnan(v))
    if xs == ys:
        return 1.0
    if not xs or not ys:
        return 0.0
    n1, n2 = len(xs), len(ys)
    j1 = j2 = 0
    f1 = f2 = d = 0.0
    while j1 < n1 and j2 < n2:
        d1, d2 = xs[j1], ys[j2]
        if d1 <= d2:
            j1 += 1
            f1 = j1 / n1
        if d2 <= d1:
            j2 += 1
            f2 = j2 / n2
        d = max(d, abs(f2 - f1))
    en = math.sqrt(n1 * n2 / (n1 + n2))
    from scipy import special

    return float(special.kolmogorov((en + 0.12 + 0.11 / en) * d))
