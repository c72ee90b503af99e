"""prob.dist.*, stat.*, model.*, interp.*: formulas written out by hand, or scipy/numpy where a formula is long."""
from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from .helpers import A, AA, ABSDIFF, ARECS, Err, FN, M, REC, REF, S, rtype, Approx

MV = {"mean": "double", "variance": "double"}
ARR = {"type": "array", "items": "double"}


def pois(k: int, lam: float) -> float:
    return math.exp(-lam) * lam ** k / math.factorial(k)


CASES = [
    ("prob.dist.gaussianLL", {"prob.dist.gaussianLL": [1.0, 0.0, 2.0]},
     -0.5 * math.log(2 * math.pi * 4) - 1 / 8),
    ("prob.dist.gaussianLL", {"prob.dist.gaussianLL": [1.0, REC(MV, {"mean": 0.0, "variance": 4.0})]},
     -0.5 * math.log(2 * math.pi * 4) - 1 / 8),
    ("prob.dist.gaussianLL", {"prob.dist.gaussianLL": [1.0, 0.0, -2.0]}, Err(13000)),
    ("prob.dist.gaussianCDF", {"prob.dist.gaussianCDF": [1.0, 0.0, 2.0]}, 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))),
    ("prob.dist.gaussianCDF", {"prob.dist.gaussianCDF": [{"/": [1.0, 0.0]}, 0.0, 2.0]}, Err(13011)),
    ("prob.dist.gaussianQF", {"prob.dist.gaussianQF": [0.975, 0.0, 1.0]}, Approx(1.959963984540054, 1e-12)),
    ("prob.dist.gaussianQF", {"prob.dist.gaussianQF": [1.5, 0.0, 1.0]}, Err(13021)),
    ("prob.dist.exponentialPDF", {"prob.dist.exponentialPDF": [2.0, 0.5]}, 0.5 * math.exp(-1.0)),
    ("prob.dist.exponentialPDF", {"prob.dist.exponentialPDF": [2.0, -0.5]}, Err(13030)),
    ("prob.dist.exponentialCDF", {"prob.dist.exponentialCDF": [2.0, 0.5]}, 1 - math.exp(-1.0)),
    ("prob.dist.exponentialQF", {"prob.dist.exponentialQF": [0.5, 0.5]}, math.log(2) / 0.5),
    ("prob.dist.chi2PDF", {"prob.dist.chi2PDF": [2.0, 2]}, 0.5 * math.exp(-1.0)),
    ("prob.dist.chi2CDF", {"prob.dist.chi2CDF": [2.0, 2]}, 1 - math.exp(-1.0)),
    ("prob.dist.chi2QF", {"prob.dist.chi2QF": [1 - math.exp(-1.0), 2]}, Approx(2.0, 1e-12)),
    ("prob.dist.chi2QF", {"prob.dist.chi2QF": [0.5, -1]}, Err(13080)),
    ("prob.dist.poissonPDF", {"prob.dist.poissonPDF": [3, 2.0]}, pois(3, 2.0)),
    ("prob.dist.poissonCDF", {"prob.dist.poissonCDF": [2, 2.0]}, sum(pois(k, 2.0) for k in range(3))),
    ("prob.dist.poissonQF", {"prob.dist.poissonQF": [0.5, 2.0]}, 2.0),
    ("prob.dist.poissonPDF", {"prob.dist.poissonPDF": [3, -2.0]}, Err(13090)),
    ("prob.dist.gammaPDF", {"prob.dist.gammaPDF": [2.0, 2.0, 3.0]}, 2.0 * math.exp(-2 / 3) / (math.gamma(2) * 9)),
    ("prob.dist.gammaCDF", {"prob.dist.gammaCDF": [2.0, 1.0, 3.0]}, 1 - math.exp(-2 / 3)),
    ("prob.dist.gammaQF", {"prob.dist.gammaQF": [1 - math.exp(-2 / 3), 1.0, 3.0]}, Approx(2.0, 1e-12)),
    ("prob.dist.betaPDF", {"prob.dist.betaPDF": [0.3, 2.0, 3.0]}, 0.3 * 0.7 ** 2 * 12),
    ("prob.dist.betaCDF", {"prob.dist.betaCDF": [0.3, 1.0, 1.0]}, 0.3),
    ("prob.dist.betaQF", {"prob.dist.betaQF": [0.3, 1.0, 1.0]}, 0.3),
    ("prob.dist.betaPDF", {"prob.dist.betaPDF": [0.3, 0.0, 1.0]}, Err(13150)),
    ("prob.dist.cauchyPDF", {"prob.dist.cauchyPDF": [1.0, 0.0, 2.0]}, 1 / (math.pi * 2 * (1 + 0.25))),
    ("prob.dist.cauchyCDF", {"prob.dist.cauchyCDF": [1.0, 0.0, 2.0]}, 0.5 + math.atan(0.5) / math.pi),
    ("prob.dist.cauchyQF", {"prob.dist.cauchyQF": [0.75, 0.0, 2.0]}, Approx(2.0, 1e-12)),
    ("prob.dist.fPDF", {"prob.dist.fPDF": [1.5, 3, 7]}, float(stats.f.pdf(1.5, 3, 7))),
    ("prob.dist.fCDF", {"prob.dist.fCDF": [1.5, 3, 7]}, float(special.fdtr(3, 7, 1.5))),
    ("prob.dist.fQF", {"prob.dist.fQF": [0.5, 3, 7]}, Approx(float(special.fdtri(3, 7, 0.5)), 1e-10)),
    ("prob.dist.fPDF", {"prob.dist.fPDF": [1.5, 0, 7]}, Err(13210)),
    ("prob.dist.lognormalPDF", {"prob.dist.lognormalPDF": [2.0, 0.5, 1.5]},
     math.exp(-(math.log(2) - 0.5) ** 2 / (2 * 2.25)) / (2 * 1.5 * math.sqrt(2 * math.pi))),
    ("prob.dist.lognormalCDF", {"prob.dist.lognormalCDF": [2.0, 0.5, 1.5]},
     0.5 * math.erfc(-(math.log(2) - 0.5) / (1.5 * math.sqrt(2)))),
    ("prob.dist.lognormalQF", {"prob.dist.lognormalQF": [0.5, 0.5, 1.5]}, Approx(math.exp(0.5), 1e-12)),
    ("prob.dist.tPDF", {"prob.dist.tPDF": [0.5, 1]}, 1 / (math.pi * 1.25)),
    ("prob.dist.tCDF", {"prob.dist.tCDF": [0.5, 1]}, 0.5 + math.atan(0.5) / math.pi),
    ("prob.dist.tQF", {"prob.dist.tQF": [0.75, 1]}, Approx(1.0, 1e-12)),
    ("prob.dist.tQF", {"prob.dist.tQF": [0.75, 0]}, Err(13290)),
    ("prob.dist.binomialPDF", {"prob.dist.binomialPDF": [2, 5, 0.3]}, math.comb(5, 2) * 0.3 ** 2 * 0.7 ** 3),
    ("prob.dist.binomialCDF", {"prob.dist.binomialCDF": [1.0, 5, 0.3]}, 0.7 ** 5 + 5 * 0.3 * 0.7 ** 4),
    ("prob.dist.binomialQF", {"prob.dist.binomialQF": [0.5, 5, 0.3]}, 1.0),
    ("prob.dist.binomialPDF", {"prob.dist.binomialPDF": [2, 5, 1.3]}, Err(13300)),
    ("prob.dist.uniformPDF", {"prob.dist.uniformPDF": [1.5, 1.0, 3.0]}, 0.5),
    ("prob.dist.uniformCDF", {"prob.dist.uniformCDF": [1.5, 1.0, 3.0]}, 0.25),
    ("prob.dist.uniformQF", {"prob.dist.uniformQF": [0.25, 1.0, 3.0]}, 1.5),
    ("prob.dist.uniformQF", {"prob.dist.uniformQF": [0.25, 3.0, 1.0]}, Err(13350)),
    ("prob.dist.geometricPDF", {"prob.dist.geometricPDF": [2, 0.3]}, 0.3 * 0.7 ** 2),
    ("prob.dist.geometricCDF", {"prob.dist.geometricCDF": [2.0, 0.3]}, 1 - 0.7 ** 3),
    ("prob.dist.geometricQF", {"prob.dist.geometricQF": [0.5, 0.3]}, 1.0),
    ("prob.dist.geometricPDF", {"prob.dist.geometricPDF": [2, 0.0]}, Err(13360)),
    ("prob.dist.hypergeometricPDF", {"prob.dist.hypergeometricPDF": [1, 3, 2, 2]},
     math.comb(3, 1) * math.comb(2, 1) / math.comb(5, 2)),
    ("prob.dist.hypergeometricCDF", {"prob.dist.hypergeometricCDF": [0, 3, 2, 2]}, math.comb(2, 2) / math.comb(5, 2)),
    ("prob.dist.hypergeometricQF", {"prob.dist.hypergeometricQF": [0.5, 3, 2, 2]}, 1.0),
    ("prob.dist.hypergeometricPDF", {"prob.dist.hypergeometricPDF": [1, 1, 1, 5]}, Err(13390)),
    ("prob.dist.weibullPDF", {"prob.dist.weibullPDF": [1.0, 2.0, 2.0]}, (2 / 2) * (0.5) * math.exp(-0.25)),
    ("prob.dist.weibullCDF", {"prob.dist.weibullCDF": [1.0, 2.0, 2.0]}, 1 - math.exp(-0.25)),
    ("prob.dist.weibullQF", {"prob.dist.weibullQF": [1 - math.exp(-0.25), 2.0, 2.0]}, Approx(1.0, 1e-12)),
    ("prob.dist.negativeBinomialPDF", {"prob.dist.negativeBinomialPDF": [2, 3, 0.4]},
     math.comb(4, 2) * 0.4 ** 3 * 0.6 ** 2),
    ("prob.dist.negativeBinomialCDF", {"prob.dist.negativeBinomialCDF": [1.0, 3, 0.4]},
     0.4 ** 3 + 3 * 0.4 ** 3 * 0.6),
    ("prob.dist.negativeBinomialQF", {"prob.dist.negativeBinomialQF": [0.5, 3, 0.4]},
     float(stats.nbinom.ppf(0.5, 3, 0.4))),
    ("prob.dist.negativeBinomialPDF", {"prob.dist.negativeBinomialPDF": [2, 3, 1.4]}, Err(13450)),
    # stat.sample (a weighted running mean and variance, by hand)
    ("stat.sample.update", {"stat.sample.update": [4.0, 1.0, REC({"count": "double", "mean": "double",
                                                                   "variance": "double"},
                                                                  {"count": 2.0, "mean": 1.0, "variance": 1.0})]},
     {"count": 3.0, "mean": 2.0, "variance": float(np.var([0.0, 2.0, 4.0]))}),
    ("stat.sample.updateCovariance", {"stat.sample.updateCovariance": [A([2.0, 4.0]), 1.0, REC(
        {"count": "double", "mean": ARR, "covariance": {"type": "array", "items": ARR}},
        {"count": 1.0, "mean": [0.0, 0.0], "covariance": [[0.0, 0.0], [0.0, 0.0]]})]},
     {"count": 2.0, "mean": [1.0, 2.0], "covariance": (np.cov(np.array([[0.0, 0.0], [2.0, 4.0]]).T, bias=True)
                                                        ).tolist()}),
    ("stat.sample.updateCovariance", {"stat.sample.updateCovariance": [A([2.0]), 1.0, REC(
        {"count": "double", "mean": ARR, "covariance": {"type": "array", "items": ARR}},
        {"count": 1.0, "mean": [0.0], "covariance": [[0.0]]})]}, Err(14011)),
    ("stat.sample.updateWindow", {"stat.sample.updateWindow": [
        3.0, 1.0, ARECS({"x": "double", "w": "double", "count": "double", "mean": "double"},
                        [{"x": 1.0, "w": 1.0, "count": 1.0, "mean": 1.0},
                         {"x": 2.0, "w": 1.0, "count": 2.0, "mean": 1.5}]), 2]},
     [{"x": 2.0, "w": 1.0, "count": 2.0, "mean": 1.5}, {"x": 3.0, "w": 1.0, "count": 2.0, "mean": 2.5}]),
    ("stat.sample.updateWindow", {"stat.sample.updateWindow": [3.0, 1.0, ARECS({"x": "double", "w": "double",
                                                                                "count": "double"}, []), 1]},
     Err(14020)),
    ("stat.sample.updateEWMA", {"stat.sample.updateEWMA": [3.0, 0.25, REC({"mean": "double"}, {"mean": 1.0})]},
     {"mean": 1.5}),
    ("stat.sample.updateEWMA", {"stat.sample.updateEWMA": [3.0, 1.5, REC({"mean": "double"}, {"mean": 1.0})]},
     Err(14030)),
    ("stat.sample.updateHoltWinters", {"stat.sample.updateHoltWinters": [
        10.0, 0.5, 0.5, REC({"level": "double", "trend": "double"}, {"level": 8.0, "trend": 1.0})]},
     {"level": 9.5, "trend": 0.5 * 1.5 + 0.5 * 1.0}),
    ("stat.sample.updateHoltWintersPeriodic", {"stat.sample.updateHoltWintersPeriodic": [
        10.0, 0.5, 0.5, 0.5, REC({"level": "double", "trend": "double", "cycle": ARR, "multiplicative": "boolean"},
                                 {"level": 8.0, "trend": 1.0, "cycle": [1.0, 2.0], "multiplicative": False})]},
     {"level": 0.5 * (10 - 2) + 0.5 * 9, "trend": 0.5 * (8.5 - 8) + 0.5 * 1.0,
      "cycle": [0.5 * (10 - 8.5) + 0.5 * 2.0, 1.0], "multiplicative": False}),
    ("stat.sample.forecast1HoltWinters", {"stat.sample.forecast1HoltWinters": [
        REC({"level": "double", "trend": "double"}, {"level": 8.0, "trend": 1.0})]}, 9.0),
    ("stat.sample.forecastHoltWinters", {"stat.sample.forecastHoltWinters": [
        3, REC({"level": "double", "trend": "double"}, {"level": 8.0, "trend": 1.0})]}, [9.0, 10.0, 11.0]),
    ("stat.sample.fillHistogram", {"stat.sample.fillHistogram": [
        2.5, 1.0, REC({"numbins": "int", "low": "double", "high": "double", "values": ARR, "overflow": "double"},
                      {"numbins": 3, "low": 0.0, "high": 3.0, "values": [0.0, 0.0, 0.0], "overflow": 0.0})]},
     {"numbins": 3, "low": 0.0, "high": 3.0, "values": [0.0, 0.0, 1.0], "overflow": 0.0}),
    ("stat.sample.fillHistogram", {"stat.sample.fillHistogram": [
        7.0, 1.0, REC({"numbins": "int", "low": "double", "high": "double", "values": ARR, "overflow": "double"},
                      {"numbins": 3, "low": 0.0, "high": 3.0, "values": [0.0, 0.0, 0.0], "overflow": 0.0})]},
     {"numbins": 3, "low": 0.0, "high": 3.0, "values": [0.0, 0.0, 0.0], "overflow": 1.0}),
    ("stat.sample.fillHistogram", {"stat.sample.fillHistogram": [
        2.5, 1.0, REC({"numbins": "int", "low": "double", "high": "double", "values": ARR},
                      {"numbins": 3, "low": 0.0, "high": 3.0, "values": [0.0, 0.0]})]}, Err(14080)),
    ("stat.sample.fillHistogram2d", {"stat.sample.fillHistogram2d": [
        0.5, 1.5, 2.0, REC({"xnumbins": "int", "xlow": "double", "xhigh": "double", "ynumbins": "int",
                            "ylow": "double", "yhigh": "double", "values": {"type": "array", "items": ARR}},
                           {"xnumbins": 2, "xlow": 0.0, "xhigh": 2.0, "ynumbins": 2, "ylow": 0.0, "yhigh": 2.0,
                            "values": [[0.0, 0.0], [0.0, 0.0]]})]},
     {"xnumbins": 2, "xlow": 0.0, "xhigh": 2.0, "ynumbins": 2, "ylow": 0.0, "yhigh": 2.0,
      "values": [[0.0, 2.0], [0.0, 0.0]]}),
    ("stat.sample.fillCounter", {"stat.sample.fillCounter": [S("b"), 2.0, REC(
        {"values": {"type": "map", "values": "double"}}, {"values": {"a": 1.0}})]}, {"values": {"a": 1.0, "b": 2.0}}),
    ("stat.sample.topN", {"stat.sample.topN": [3.0, A([5.0, 2.0]), 2, FN([("a", "double"), ("b", "double")],
                                                                         "boolean", {"<": ["a", "b"]})]},
     [5.0, 3.0]),
    ("stat.change.updateTrigger", {"stat.change.updateTrigger": [True, REC(
        {"numEvents": "int", "numRuns": "int", "currentRun": "int", "longestRun": "int"},
        {"numEvents": 3, "numRuns": 1, "currentRun": 0, "longestRun": 3})]},
     {"numEvents": 4, "numRuns": 2, "currentRun": 1, "longestRun": 3}),
    ("stat.change.updateTrigger", {"stat.change.updateTrigger": [True, REC(
        {"numEvents": "int", "numRuns": "int", "currentRun": "int", "longestRun": "int"},
        {"numEvents": -1, "numRuns": 1, "currentRun": 0, "longestRun": 3})]}, Err(37000)),
    ("stat.change.zValue", {"stat.change.zValue": [3.0, REC(MV, {"mean": 1.0, "variance": 4.0})]}, 1.0),
    ("stat.change.zValue", {"stat.change.zValue": [3.0, REC({"count": "double", **MV},
                                                            {"count": 5.0, "mean": 1.0, "variance": 4.0}), True]},
     math.sqrt(5 / 4)),
    ("stat.change.updateCUSUM", {"stat.change.updateCUSUM": [-2.0, 1.0, 0.0]}, 0.0),
    ("stat.change.updateCUSUM", {"stat.change.updateCUSUM": [2.0, 1.0, 0.0]}, 3.0),
    ("stat.test.kolmogorov", {"stat.test.kolmogorov": [A([1.0, 2.0]), A([1.0, 2.0])]}, 1.0),
    ("stat.test.kolmogorov", {"stat.test.kolmogorov": [A([0.1, 0.2, 0.3, 0.4]), A([5.0, 6.0, 7.0, 8.0])]},
     Approx(float(special.kolmogorov((math.sqrt(2) + 0.12 + 0.11 / math.sqrt(2)) * 1.0)), 1e-12)),
    ("stat.test.residual", {"stat.test.residual": [A([3.0, 4.0]), A([1.0, 1.0])]}, [2.0, 3.0]),
    ("stat.test.residual", {"stat.test.residual": [A([3.0, 4.0]), A([1.0])]}, Err(38010)),
    ("stat.test.pull", {"stat.test.pull": [3.0, 1.0, 0.5]}, 4.0),
    ("stat.test.mahalanobis", {"stat.test.mahalanobis": [A([1.0, 2.0]), A([0.0, 0.0]), AA([[1.0, 0.0], [0.0, 4.0]])]},
     math.sqrt(1 + 1)),
    ("stat.test.updateChi2", {"stat.test.updateChi2": [2.0, REC({"chi2": "double", "dof": "int"},
                                                                {"chi2": 1.0, "dof": 1})]}, {"chi2": 5.0, "dof": 2}),
    ("stat.test.reducedChi2", {"stat.test.reducedChi2": [REC({"chi2": "double", "dof": "int"},
                                                             {"chi2": 6.0, "dof": 3})]}, 2.0),
    ("stat.test.chi2Prob", {"stat.test.chi2Prob": [REC({"chi2": "double", "dof": "int"}, {"chi2": 2.0, "dof": 2})]},
     1 - math.exp(-1.0)),
    ("stat.test.chi2Prob", {"stat.test.chi2Prob": [REC({"chi2": "double", "dof": "int"}, {"chi2": 2.0, "dof": -1})]},
     Err(38060)),
    # model.reg
    ("model.reg.linear", {"model.reg.linear": [A([1.0, 2.0]), REC({"coeff": ARR, "const": "double"},
                                                                  {"coeff": [0.5, 0.25], "const": 1.0})]}, 2.0),
    ("model.reg.linear", {"model.reg.linear": [A([1.0, 2.0]), REC({"coeff": {"type": "array", "items": ARR},
                                                                   "const": ARR},
                                                                  {"coeff": [[1.0, 0.0], [0.0, 1.0]],
                                                                   "const": [1.0, 1.0]})]}, [2.0, 3.0]),
    ("model.reg.linear", {"model.reg.linear": [A([1.0]), REC({"coeff": ARR, "const": "double"},
                                                             {"coeff": [0.5, 0.25], "const": 1.0})]}, Err(31000)),
    ("model.reg.linearVariance", {"model.reg.linearVariance": [A([1.0, 2.0]), REC(
        {"covar": {"type": "array", "items": ARR}},
        {"covar": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]})]}, 1.0 + 4.0 + 1.0),
    # Kriging interpolates its training points (the nugget is 10 machine epsilons)
    ("model.reg.gaussianProcess", {"model.reg.gaussianProcess": [
        2.0, ARECS({"x": "double", "to": "double"}, [{"x": 0.0, "to": 0.0}, {"x": 2.0, "to": 2.0},
                                                     {"x": 5.0, "to": -1.0}]), None,
        REF("m.kernel.rbf", gamma=1.0)]}, Approx(2.0, 1e-9)),
    ("model.reg.gaussianProcess", {"model.reg.gaussianProcess": [
        A([5.0]), ARECS({"x": ARR, "to": ARR}, [{"x": [0.0], "to": [0.0, 1.0]}, {"x": [2.0], "to": [2.0, 3.0]},
                                               {"x": [5.0], "to": [-1.0, 4.0]}]), None,
        REF("m.kernel.rbf", gamma=1.0)]}, Approx([-1.0, 4.0], 1e-9)),
    ("model.reg.gaussianProcess", {"model.reg.gaussianProcess": [
        1.0, ARECS({"x": "double", "to": "double"}, []), None, REF("m.kernel.rbf", gamma=1.0)]}, Err(31080)),
    ("model.reg.residual", {"model.reg.residual": [3.0, 1.0]}, 2.0),
    ("model.reg.pull", {"model.reg.pull": [A([3.0]), A([1.0]), A([2.0])]}, [1.0]),
    ("model.reg.pull", {"model.reg.pull": [A([3.0]), A([1.0]), A([2.0, 1.0])]}, Err(31031)),
    ("model.reg.mahalanobis", {"model.reg.mahalanobis": [A([1.0]), A([0.0]), AA([[4.0]])]}, 0.5),
    ("model.reg.mahalanobis", {"model.reg.mahalanobis": [A([]), A([]), AA([])]}, Err(31040)),
    ("model.reg.updateChi2", {"model.reg.updateChi2": [A([1.0, 2.0]), REC({"chi2": "double", "DOF": "int"},
                                                                         {"chi2": 0.0, "DOF": 0})]},
     {"chi2": 5.0, "DOF": 1}),
    ("model.reg.reducedChi2", {"model.reg.reducedChi2": [REC({"chi2": "double", "DOF": "int"},
                                                             {"chi2": 6.0, "DOF": 2})]}, 3.0),
    ("model.reg.chi2Prob", {"model.reg.chi2Prob": [REC({"chi2": "double", "DOF": "int"}, {"chi2": 2.0, "DOF": 2})]},
     1 - math.exp(-1.0)),
]

# -- trees ------------------------------------------------------------------------------------------------------
DATUM_T = {"type": "record", "name": "Datum", "fields": [{"name": "x", "type": "double"},
                                                         {"name": "s", "type": ["string", "null"]}]}
FIELD_T = {"type": "enum", "name": "Fld", "symbols": ["x", "s"]}
CMP_T = {"type": "record", "name": "Cmp", "fields": [{"name": "field", "type": FIELD_T},
                                                     {"name": "operator", "type": "string"},
                                                     {"name": "value", "type": ["double", "string",
                                                                                {"type": "array",
                                                                                 "items": "string"}]}]}


def datum(x: float, s: str | None) -> dict:
    return {"type": DATUM_T, "value": {"x": x, "s": None if s is None else {"string": s}}}


def cmp_(field: str, op: str, value: object, kind: str = "double") -> dict:
    return {"type": CMP_T if kind == "double" else "Cmp",
            "value": {"field": field, "operator": op, "value": {kind: value}}}


NODE_T = {"type": "record", "name": "Node", "fields": [
    {"name": "field", "type": {"type": "enum", "name": "F2", "symbols": ["x", "s"]}},
    {"name": "operator", "type": "string"}, {"name": "value", "type": ["double", "string"]},
    {"name": "pass", "type": ["Node", "string"]}, {"name": "fail", "type": ["Node", "string"]},
    {"name": "missing", "type": ["Node", "string"]}]}
TREE = {"type": NODE_T, "value": {
    "field": "x", "operator": "<", "value": {"double": 1.0},
    "pass": {"string": "small"}, "missing": {"string": "unknown-x"},
    "fail": {"Node": {"field": "s", "operator": "==", "value": {"string": "red"}, "pass": {"string": "big-red"},
                      "fail": {"string": "big-other"}, "missing": {"string": "no-colour"}}}}}
SIMPLE_NODE_T = {"type": "record", "name": "SNode", "fields": [
    {"name": "field", "type": {"type": "enum", "name": "F3", "symbols": ["x", "s"]}},
    {"name": "operator", "type": "string"}, {"name": "value", "type": "double"},
    {"name": "pass", "type": ["SNode", "string"]}, {"name": "fail", "type": ["SNode", "string"]}]}
STREE = {"type": SIMPLE_NODE_T, "value": {"field": "x", "operator": "<=", "value": 1.0,
                                          "pass": {"string": "L"}, "fail": {"SNode": {
                                              "field": "x", "operator": ">", "value": 5.0, "pass": {"string": "RR"},
                                              "fail": {"string": "RL"}}}}}
TEST_NODE = FN([("d", "Datum"), ("t", "Node")], "boolean", {"model.tree.simpleTest": ["d", "t"]})
MISSING_NODE = FN([("d", "Datum"), ("t", "Node")], ["boolean", "null"], {"model.tree.missingTest": ["d", "t"]})
TEST_CMP = FN([("d", "Datum"), ("t", "Cmp")], "boolean", {"model.tree.simpleTest": ["d", "t"]})
MISSING_CMP = FN([("d", "Datum"), ("t", "Cmp")], ["boolean", "null"], {"model.tree.missingTest": ["d", "t"]})
CMP_ARR = {"type": {"type": "array", "items": CMP_T}, "value": [
    {"field": "x", "operator": ">", "value": {"double": 0.0}},
    {"field": "s", "operator": "in", "value": {"array": ["red", "blue"]}}]}
SURR = {"type": {"type": "array", "items": CMP_T}, "value": [
    {"field": "s", "operator": "==", "value": {"string": "red"}},
    {"field": "x", "operator": ">", "value": {"double": 0.0}}]}

CASES += [
    ("model.tree.simpleTest", {"model.tree.simpleTest": [datum(2.0, "red"), cmp_("x", "<", 3.0)]}, True),
    ("model.tree.simpleTest", {"model.tree.simpleTest": [datum(2.0, "red"), cmp_("x", "~", 3.0)]}, Err(32000)),
    ("model.tree.simpleTest", {"model.tree.simpleTest": [datum(2.0, None), cmp_("s", "isMissing", 0.0)]}, True),
    ("model.tree.missingTest", {"model.tree.missingTest": [datum(2.0, None), cmp_("s", "==", 0.0)]}, None),
    ("model.tree.missingTest", {"model.tree.missingTest": [datum(2.0, "a"), cmp_("x", ">=", 2.0)]}, True),
    ("model.tree.compoundTest", {"model.tree.compoundTest": [datum(2.0, "red"), S("and"), CMP_ARR, TEST_CMP]}, True),
    ("model.tree.compoundTest", {"model.tree.compoundTest": [datum(2.0, "green"), S("xor"), CMP_ARR, TEST_CMP]},
     True),
    ("model.tree.compoundTest", {"model.tree.compoundTest": [datum(2.0, "red"), S("nand"), CMP_ARR, TEST_CMP]},
     Err(32020)),
    ("model.tree.surrogateTest", {"model.tree.surrogateTest": [datum(2.0, None), SURR, MISSING_CMP]}, True),
    ("model.tree.simpleWalk", {"model.tree.simpleWalk": [datum(2.0, "red"), TREE, TEST_NODE]}, "big-red"),
    ("model.tree.simpleWalk", {"model.tree.simpleWalk": [datum(0.5, "red"), TREE, TEST_NODE]}, "small"),
    ("model.tree.missingWalk", {"model.tree.missingWalk": [datum(2.0, None), TREE, MISSING_NODE]}, "no-colour"),
    ("model.tree.missingWalk", {"model.tree.missingWalk": [datum(2.0, "blue"), TREE, MISSING_NODE]}, "big-other"),
    ("model.tree.simpleTree", {"model.tree.simpleTree": [datum(1.0, None), STREE]}, "L"),
    ("model.tree.simpleTree", {"model.tree.simpleTree": [datum(6.0, None), STREE]}, "RR"),
    ("model.tree.simpleTree", {"model.tree.simpleTree": [datum(3.0, None), STREE]}, "RL"),
]

# -- clusters, neighbours, naive Bayes, networks, SVM, interpolation --------------------------------------------
CL_T = {"type": "record", "name": "Cl", "fields": [{"name": "center", "type": ARR}, {"name": "id", "type": "string"}]}
CLUSTERS = {"type": {"type": "array", "items": CL_T}, "value": [{"center": [0.0, 0.0], "id": "a"},
                                                                {"center": [5.0, 5.0], "id": "b"},
                                                                {"center": [1.0, 1.0], "id": "c"}]}
CODEBOOK = AA([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0]])
TABLE = ARECS({"x": "double", "to": "double"}, [{"x": 0.0, "to": 10.0}, {"x": 1.0, "to": 20.0},
                                               {"x": 3.0, "to": 0.0}])
EUCL = FN([("a", ARR), ("b", ARR)], "double", {"metric.euclidean": [ABSDIFF, "a", "b"]})

CASES += [
    ("model.cluster.closest", {"model.cluster.closest": [A([0.8, 0.9]), CLUSTERS]},
     {"center": [1.0, 1.0], "id": "c"}),
    ("model.cluster.closest", {"model.cluster.closest": [A([4.0, 4.0]), CLUSTERS, EUCL]},
     {"center": [5.0, 5.0], "id": "b"}),
    ("model.cluster.closest", {"model.cluster.closest": [A([4.0]), {"type": {"type": "array", "items": CL_T},
                                                                    "value": []}]}, Err(29000)),
    ("model.cluster.closestN", {"model.cluster.closestN": [2, A([0.8, 0.9]), CLUSTERS]},
     [{"center": [1.0, 1.0], "id": "c"}, {"center": [0.0, 0.0], "id": "a"}]),
    ("model.cluster.closestN", {"model.cluster.closestN": [-1, A([0.8, 0.9]), CLUSTERS]}, Err(29010)),
    ("model.cluster.randomSeeds", {"model.cluster.randomSeeds": [AA([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]), 2, FN(
        [("i", "int"), ("v", ARR)], CL_T, {"new": {"center": "v", "id": {"s.int": ["i"]}}, "type": "Cl"})]},
     None),  # replaced below by a Check (the order of the seeds is random)
    ("model.cluster.randomSeeds", {"model.cluster.randomSeeds": [AA([[1.0, 1.0], [1.0, 1.0]]), 2, FN(
        [("i", "int"), ("v", ARR)], CL_T, {"new": {"center": "v", "id": {"s.int": ["i"]}}, "type": "Cl"})]},
     Err(29021)),
    ("model.cluster.kmeansIteration", {"model.cluster.kmeansIteration": [
        AA([[0.0, 0.0], [0.0, 2.0], [10.0, 10.0]]), CLUSTERS, EUCL,
        FN([("data", {"type": "array", "items": ARR}), ("c", "Cl")], "Cl",
           {"model.cluster.updateMean": ["data", "c", 0.0]})]},
     [{"center": [0.0, 0.0], "id": "a"}, {"center": [10.0, 10.0], "id": "b"}, {"center": [0.0, 2.0], "id": "c"}]),
    ("model.cluster.updateMean", {"model.cluster.updateMean": [AA([[2.0, 2.0], [4.0, 4.0]]), {
        "type": CL_T, "value": {"center": [0.0, 0.0], "id": "z"}}, 2.0]}, {"center": [1.5, 1.5], "id": "z"}),
    ("model.cluster.updateMean", {"model.cluster.updateMean": [AA([]), {
        "type": CL_T, "value": {"center": [0.0, 0.0], "id": "z"}}, 2.0]}, Err(29040)),
    ("model.neighbor.mean", {"model.neighbor.mean": [CODEBOOK]}, [2.0, 2.0]),
    ("model.neighbor.mean", {"model.neighbor.mean": [AA([])]}, Err(30000)),
    ("model.neighbor.nearestK", {"model.neighbor.nearestK": [2, A([0.8, 0.9]), CODEBOOK]}, [[1.0, 1.0], [0.0, 0.0]]),
    ("model.neighbor.nearestK", {"model.neighbor.nearestK": [-2, A([0.8, 0.9]), CODEBOOK]}, Err(30010)),
    ("model.neighbor.ballR", {"model.neighbor.ballR": [1.5, A([0.8, 0.9]), CODEBOOK]}, [[0.0, 0.0], [1.0, 1.0]]),
    ("model.naive.gaussian", {"model.naive.gaussian": [A([1.0, 2.0]), ARECS(MV, [{"mean": 0.0, "variance": 1.0},
                                                                                 {"mean": 2.0, "variance": 4.0}])]},
     float(stats.norm.logpdf(1.0, 0.0, 1.0) + stats.norm.logpdf(2.0, 2.0, 2.0))),
    ("model.naive.gaussian", {"model.naive.gaussian": [A([1.0]), ARECS(MV, [{"mean": 0.0, "variance": 0.0}])]},
     Err(10001)),
    ("model.naive.multinomial", {"model.naive.multinomial": [A([1.0, 2.0]), A([1.0, 3.0])]},
     1.0 * math.log(0.25) + 2.0 * math.log(0.75)),
    ("model.naive.multinomial", {"model.naive.multinomial": [A([1.0, 2.0]), A([0.0, 3.0])]}, Err(10011)),
    ("model.naive.bernoulli", {"model.naive.bernoulli": [A(["a"], "string"), M({"a": 0.2, "b": 0.4})]},
     math.log(0.2) + math.log(0.6)),
    ("model.naive.bernoulli", {"model.naive.bernoulli": [A(["a"], "string"), M({"a": 1.0})]}, Err(10020)),
    ("model.neural.simpleLayers", {"model.neural.simpleLayers": [A([1.0, 2.0]), ARECS(
        {"weights": {"type": "array", "items": ARR}, "bias": ARR},
        [{"weights": [[1.0, -1.0], [0.5, 0.5]], "bias": [0.0, 1.0]}, {"weights": [[1.0, 1.0]], "bias": [0.5]}]),
        REF("m.link.relu")]}, [0.0 + 2.5 + 0.5]),
    ("model.neural.simpleLayers", {"model.neural.simpleLayers": [A([1.0]), ARECS(
        {"weights": {"type": "array", "items": ARR}, "bias": ARR}, []), REF("m.link.relu")]}, Err(11000)),
    ("model.svm.score", {"model.svm.score": [A([1.0, 2.0]), REC(
        {"const": "double", "posClass": {"type": "array", "items": rtype({"supVec": ARR, "coeff": "double"})},
         "negClass": {"type": "array", "items": rtype({"supVec": ARR, "coeff": "double"})}},
        {"const": 0.5, "posClass": [{"supVec": [1.0, 0.0], "coeff": 2.0}],
         "negClass": [{"supVec": [0.0, 1.0], "coeff": -1.0}]}), REF("m.kernel.linear")]}, 0.5 + 2.0 - 2.0),
    ("interp.bin", {"interp.bin": [2.5, 5, 0.0, 10.0]}, 1), ("interp.bin", {"interp.bin": [10.0, 5, 0.0, 10.0]},
                                                              Err(22002)),
    ("interp.bin", {"interp.bin": [-2.5, 0.0, 2.0]}, -2),
    ("interp.nearest", {"interp.nearest": [1.8, TABLE]}, 20.0),
    ("interp.nearest", {"interp.nearest": [1.8, ARECS({"x": "double", "to": "double"}, [])]}, Err(22010)),
    ("interp.linear", {"interp.linear": [0.25, TABLE]}, 12.5), ("interp.linear", {"interp.linear": [4.0, TABLE]},
                                                               -10.0),
    ("interp.linearFlat", {"interp.linearFlat": [4.0, TABLE]}, 0.0),
    ("interp.linearMissing", {"interp.linearMissing": [4.0, TABLE]}, None),
    ("interp.linearMissing", {"interp.linearMissing": [2.0, TABLE]}, 10.0),
]
from .helpers import Check  # noqa: E402

CASES = [(n, e, Check("2 clusters from distinct points", lambda v: sorted(c["center"][0] for c in v) == [1.0, 2.0]))
         if n == "model.cluster.randomSeeds" and w is None else (n, e, w) for n, e, w in CASES]
