"""Statistics of repeated measurements, and the comparison of two sets of them.

:func:`compare` decides whether ``current`` got worse than ``baseline``. A
verdict needs two things: the change of the medians is at least
``min_effect`` (a fraction, in the metric's bad direction for a regression),
and, when the samples allow a test, the change is significant::

    samples per side                 decision
    0 on either side                 insufficient-data
    >= 3 each and the test can       two-sided Mann–Whitney U (scipy) p < alpha
      reach alpha (e.g. 4 vs 4,        and |change of medians| >= min_effect
      5 vs 5; not 3 vs 3, whose
      smallest possible p is 0.1)
    fewer (1 vs 1, 2 vs 5, 3 vs 3)   no test (p = None): the ranges must not
                                       overlap (every current value beyond every
                                       baseline value) and |change| >= min_effect

So with single runs the minimum effect alone decides: pick it above the
run-to-run noise of the platform (its ``cv`` under ``--hetero-repeat``).

A noise floor (``noise_floor``, an absolute amount in the metric's unit; see
:func:`pytest_hetero.check.units.default_noise_floor`) comes on top: a change of
the medians smaller than it is ``unchanged`` however significant, so
microseconds of a data wait never fail a test.

:func:`parse_regression_expr` reads pytest-benchmark's ``--benchmark-compare-fail``
expressions (``mean:5%``, ``min:0.001``): fail when the statistic got worse
by more than the threshold, a percentage of the baseline or an absolute
amount in the metric's unit. pytest-benchmark measures times, so "worse"
there means larger; here it follows the metric's direction, and for the
spread statistics (``stddev``, ``iqr``, ``cv``) larger is always worse.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pytest_hetero.errors import ConfigError

__all__ = [
    "Comparison",
    "ComparisonVerdict",
    "ExprCheck",
    "RegressionExpr",
    "check_regression_expr",
    "compare",
    "parse_regression_expr",
    "summary_stats",
    "trimmed_mean",
]

ComparisonVerdict = Literal["regression", "improvement", "unchanged", "insufficient-data"]

#: Below this many samples per side no significance test is run.
MIN_SAMPLES_FOR_TEST = 3


def trimmed_mean(values: Sequence[float]) -> float:
    """MLPerf's score: drop the best and the worst run, average the rest (needs >= 3 values)."""
    if len(values) < 3:
        raise ValueError(f"trimmed_mean needs at least 3 values, got {len(values)}")
    return statistics.fmean(sorted(values)[1:-1])


def summary_stats(values: Sequence[float]) -> dict[str, float | None]:
    """n, median, mean, stdev, cv, min, max, trimmed_mean of repeated measurements.

    ``stdev`` is the sample standard deviation (None below 2 values); ``cv`` is
    stdev / |mean| (None when undefined); ``trimmed_mean`` is None below 3 values.
    """
    if not values:
        raise ValueError("summary_stats needs at least one value")
    values = [float(v) for v in values]
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else None
    return {
        "n": len(values),
        "median": statistics.median(values),
        "mean": mean,
        "stdev": stdev,
        "cv": None if stdev is None or mean == 0 else stdev / abs(mean),
        "min": min(values),
        "max": max(values),
        "trimmed_mean": trimmed_mean(values) if len(values) >= 3 else None,
    }


@dataclass(frozen=True)
class Comparison:
    """The decision on one metric; :attr:`message` renders it as one readable line."""

    verdict: ComparisonVerdict
    current_median: float | None
    baseline_median: float | None
    relative_change: float | None  # (current - baseline) / |baseline| of the medians
    p_value: float | None  # None: no test was run (see the module docstring)
    n_current: int
    n_baseline: int
    min_effect: float
    alpha: float
    name: str = "value"
    unit: str = ""
    reason: str = ""  # why the data are insufficient
    noise_floor: float = 0.0  # the smallest absolute change of the medians that counts, in ``unit``

    @property
    def regressed(self) -> bool:
        return self.verdict == "regression"

    @property
    def message(self) -> str:
        """One line, e.g.::

        throughput_sps: median 412 → 371 samples/s (-10.0 %, p=0.00794 < 0.05, min effect 5 %): regression
        """
        if self.relative_change is None or self.current_median is None or self.baseline_median is None:
            return f"{self.name}: {self.reason}: {self.verdict}"
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.name}: median {self.baseline_median:.4g} → {self.current_median:.4g}{unit} "
            f"({self.relative_change * 100:+.1f} %, {self._test_text()}, min effect {self.min_effect * 100:g} %"
            f"{self._floor_text()}): {self.verdict}"
        )

    def _floor_text(self) -> str:
        if not self.noise_floor:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        return f", noise floor {self.noise_floor:g}{unit}"

    def _test_text(self) -> str:
        if self.p_value is None:
            return f"n={self.n_current} vs {self.n_baseline}, too few for a test"
        return f"p={self.p_value:.3g} {'<' if self.p_value < self.alpha else '>='} {self.alpha:g}"


def compare(
    current: Sequence[float],
    baseline: Sequence[float],
    higher_is_better: bool,
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    name: str = "value",
    unit: str = "",
    noise_floor: float = 0.0,
) -> Comparison:
    """Compare two sets of samples of one metric (see the module docstring); None and NaN are ignored."""
    cur, base = _finite(current), _finite(baseline)
    cur_median = statistics.median(cur) if cur else None
    base_median = statistics.median(base) if base else None
    result = Comparison(
        "insufficient-data",
        cur_median,
        base_median,
        None,
        None,
        len(cur),
        len(base),
        min_effect,
        alpha,
        name,
        unit,
        noise_floor=noise_floor,
    )
    if cur_median is None or base_median is None:
        return replace(result, reason=f"no {'current' if not cur else 'baseline'} samples")
    if base_median == 0:
        return replace(result, reason="baseline median is 0, no relative change")
    change = (cur_median - base_median) / abs(base_median)
    p_value = _p_value(cur, base, alpha)
    evidence = p_value < alpha if p_value is not None else _separated(cur, base)
    large = abs(change) >= min_effect and abs(cur_median - base_median) >= noise_floor
    verdict = _verdict(change, higher_is_better, large, evidence)
    return replace(result, verdict=verdict, relative_change=change, p_value=p_value)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _p_value(cur: list[float], base: list[float], alpha: float) -> float | None:
    """Two-sided Mann–Whitney U, or None when the sizes cannot reach ``alpha``."""
    if min(len(cur), len(base)) < MIN_SAMPLES_FOR_TEST or _smallest_p(len(cur), len(base)) >= alpha:
        return None
    if len(set(cur) | set(base)) == 1:
        return 1.0  # every value equal: scipy would warn and return nan
    # Imported here: scipy is an optional dependency (extra 'reports'); stubs may or may not be installed.
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped,unused-ignore]

    return float(mannwhitneyu(cur, base, alternative="two-sided").pvalue)


def _smallest_p(n_current: int, n_baseline: int) -> float:
    """The smallest two-sided exact p-value these sample sizes can give (fully separated samples)."""
    return 2 / math.comb(n_current + n_baseline, n_current)


def _separated(cur: list[float], base: list[float]) -> bool:
    return min(cur) > max(base) or max(cur) < min(base)


def _verdict(change: float, higher_is_better: bool, large: bool, evidence: bool) -> ComparisonVerdict:
    if not evidence or not large:
        return "unchanged"
    better = (change > 0) == higher_is_better
    return "improvement" if better else "regression"


# --- pytest-benchmark regression expressions -------------------------------------------------------------------

_EXPR = re.compile(
    r"^(?P<stat>min|max|mean|median|stddev|stdev|iqr|cv|trimmed_mean):"
    r"(?:(?P<percent>[0-9]*\.?[0-9]+)%|(?P<absolute>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))$"
)
_SPREAD_STATS = frozenset({"stdev", "iqr", "cv"})


@dataclass(frozen=True)
class RegressionExpr:
    """``stat:threshold``; relative thresholds are percentages of the baseline statistic."""

    stat: str  # a key of summary_stats(), or "iqr"
    threshold: float
    relative: bool
    text: str


@dataclass(frozen=True)
class ExprCheck:
    failed: bool
    worse_by: float  # percent when relative, else in the metric's unit; negative = better
    message: str


def parse_regression_expr(text: str) -> RegressionExpr:
    """Parse ``mean:5%`` / ``min:0.001`` (pytest-benchmark's ``--benchmark-compare-fail`` syntax)."""
    found = _EXPR.match(text.strip())
    if found is None:
        raise ConfigError(
            f"regression expression {text!r}: expected STAT:PERCENT% or STAT:AMOUNT with STAT one of "
            "min, max, mean, median, stddev, iqr, cv, trimmed_mean (e.g. 'mean:5%', 'min:0.001')"
        )
    stat = "stdev" if found["stat"] == "stddev" else found["stat"]
    relative = found["percent"] is not None
    return RegressionExpr(stat, float(found["percent"] if relative else found["absolute"]), relative, text.strip())


def check_regression_expr(
    expr: RegressionExpr, current: Sequence[float], baseline: Sequence[float], higher_is_better: bool
) -> ExprCheck:
    """Fail when ``expr.stat`` of ``current`` is worse than that of ``baseline`` by more than the threshold."""
    cur, base = _statistic(current, expr.stat), _statistic(baseline, expr.stat)
    if cur is None or base is None:
        return ExprCheck(False, 0.0, f"{expr.text}: not enough samples for {expr.stat}, not checked")
    larger_is_worse = expr.stat in _SPREAD_STATS or not higher_is_better
    worse = cur - base if larger_is_worse else base - cur
    if expr.relative:
        worse = worse / abs(base) * 100 if base else (math.inf if worse > 0 else 0.0)
    unit = "%" if expr.relative else ""
    failed = worse > expr.threshold
    relation = ">" if failed else "<="
    change = f"{expr.stat} {base:.4g} → {cur:.4g}"
    return ExprCheck(
        failed, worse, f"{expr.text}: {change}, worse by {worse:.4g}{unit} {relation} {expr.threshold:g}{unit}"
    )


def _statistic(values: Sequence[float], stat: str) -> float | None:
    finite = _finite(values)
    if not finite:
        return None
    if stat == "iqr":
        if len(finite) < 2:
            return None
        quartiles = statistics.quantiles(finite, n=4)
        return quartiles[2] - quartiles[0]
    value = summary_stats(finite)[stat]
    return None if value is None else float(value)
