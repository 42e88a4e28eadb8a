"""The regression gate: every metric of a run against its baseline, like with like.

A baseline is another report (``pytest-hetero compare NEW.json OLD.json``) or
the history store with a :class:`~pytest_hetero.history.Selection`. Only
records of the same test on the same platform with the same workload config
hash, workload fingerprint (code + config) and platform fingerprint are
compared (:mod:`pytest_hetero.fingerprint`); every record left out is named in
a note saying why: the config, the program or the platform changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_hetero.check.statistics import Comparison, ExprCheck, RegressionExpr, check_regression_expr, compare
from pytest_hetero.check.units import default_noise_floor
from pytest_hetero.fingerprint import Fingerprints, differences
from pytest_hetero.history import HistoryError, HistoryStore, Selection, Variant, metric_samples
from pytest_hetero.metrics import Metric

__all__ = [
    "Baseline",
    "GateResult",
    "HistoryBaseline",
    "MetricComparison",
    "ReportBaseline",
    "Series",
    "compare_metrics",
    "compare_record",
    "run_gate",
]


@dataclass(frozen=True)
class Series:
    """What a baseline is looked up by: a test on a platform running one workload config, code and platform."""

    test: str
    platform: str
    config_hash: str
    nodeid: str = ""
    fingerprints: Fingerprints = field(default_factory=Fingerprints)

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> Series:
        """The series of a report record (JSON)."""
        test, platform, config_hash = record["test"], record["platform"]["name"], record["workload"]["config_hash"]
        return cls(test, platform, config_hash, record["nodeid"], Fingerprints.of_record(record))

    @property
    def where(self) -> str:
        return f"{self.test} on {self.platform}"


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one record against its baseline."""

    test: str
    platform: str
    metric: str
    unit: str
    config_hash: str
    comparison: Comparison
    expr_checks: tuple[ExprCheck, ...] = ()
    note: str = ""  # why there is no baseline, when there is none

    @property
    def regressed(self) -> bool:
        return self.comparison.regressed or any(check.failed for check in self.expr_checks)

    @property
    def verdict(self) -> str:
        return "regression" if self.regressed else self.comparison.verdict

    def as_dict(self) -> dict[str, Any]:
        """For a report record (e.g. a ``comparisons`` list) or JUnit properties."""
        result = self.comparison
        return {
            "metric": self.metric,
            "verdict": self.verdict,
            "baseline_median": result.baseline_median,
            "current_median": result.current_median,
            "relative_change": result.relative_change,
            "p_value": result.p_value,
            "n_baseline": result.n_baseline,
            "n_current": result.n_current,
            "min_effect": result.min_effect,
            "noise_floor": result.noise_floor,
            "alpha": result.alpha,
            "message": self.message,
            "note": self.note,
        }

    @property
    def message(self) -> str:
        """The comparison line, the failed regression expressions, and where it ran."""
        failed = [check.message for check in self.expr_checks if check.failed]
        extra = f"; {'; '.join(failed)}" if failed else ""
        return f"{self.test} on {self.platform}: {self.comparison.message}{extra}"


@dataclass
class GateResult:
    against: str  # what the run was compared with, for the reader
    rows: list[MetricComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricComparison]:
        return [row for row in self.rows if row.regressed]

    def counts(self) -> dict[str, int]:
        counts = {"regression": 0, "improvement": 0, "unchanged": 0, "insufficient-data": 0}
        for row in self.rows:
            counts[row.verdict] += 1
        return counts


class Baseline(Protocol):
    description: str

    def lookup(self, series: Series, metric: str) -> tuple[list[float], str]:
        """The baseline samples of one metric of a series, or ``([], why not)``."""


class ReportBaseline:
    """Another JSON report: records match by node id, else by test, platform and config hash."""

    def __init__(self, report: dict[str, Any], label: str = "") -> None:
        self.description = f"{label or 'report'} (run {report['run_id']}, {report['created_at']})"
        self.by_nodeid = {r["nodeid"]: r for r in report["results"]}
        self.by_test: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in report["results"]:
            self.by_test.setdefault(_where(r), []).append(r)

    def lookup(self, series: Series, metric: str) -> tuple[list[float], str]:
        where = series.where
        found = self._match(series)
        if found is None:
            return [], f"{where}: not in the baseline run; not compared"
        theirs = Series.of_record(found)
        reasons = differences(
            series.fingerprints, series.config_hash, theirs.fingerprints, theirs.config_hash, "in the baseline"
        )
        if reasons:
            return [], f"{where}: {'; '.join(reasons)}; not compared"
        base_metric = found["metrics"].get(metric)
        if base_metric is None or not metric_samples(base_metric):
            return [], f"{where}: {metric} has no value in the baseline; not compared"
        return metric_samples(base_metric), ""

    def _match(self, series: Series) -> dict[str, Any] | None:
        same: dict[str, Any] | None = self.by_nodeid.get(series.nodeid)
        if same is not None and _where(same) == (series.test, series.platform):
            return same

        def unlike(record: dict[str, Any]) -> tuple[bool, bool]:  # like with like first, then the same config
            theirs = Series.of_record(record)
            return theirs.config_hash != series.config_hash, theirs.fingerprints != series.fingerprints

        return min(self.by_test.get((series.test, series.platform), []), key=unlike, default=None)

    def missing_from(self, report: dict[str, Any]) -> list[str]:
        """Notes for baseline records that the current run does not have."""
        current = {_where(r) for r in report["results"]}
        return [
            f"{t} on {p}: in the baseline run only; not compared"
            for t, p in sorted(self.by_test)
            if (t, p) not in current
        ]


def _where(record: dict[str, Any]) -> tuple[str, str]:
    return record["test"], record["platform"]["name"]


class HistoryBaseline:
    """The history store; ``exclude_run_id`` leaves out the current run if it is already stored."""

    def __init__(self, store: HistoryStore, selection: Selection, exclude_run_id: str | None = None) -> None:
        self.store, self.selection, self.exclude_run_id = store, selection, exclude_run_id
        self.description = f"history {store.description} ({selection})"

    def check(self) -> None:
        """Fail at session start, not after the jobs ran, when the selection names a baseline the store lacks."""
        if self.selection.kind != "baseline":
            return
        known = self.store.baselines()
        if self.selection.name not in known:
            names = ", ".join(sorted(known)) or "none saved yet"
            raise HistoryError(
                f"history store {self.store.description}: no baseline {self.selection.name!r} (known: {names})"
            )

    def lookup(self, series: Series, metric: str) -> tuple[list[float], str]:
        found = self.store.samples(
            series.test,
            series.platform,
            metric,
            series.config_hash,
            self.selection,
            exclude_run_id=self.exclude_run_id,
            workload_fingerprint=series.fingerprints.workload,
            platform_fingerprint=series.fingerprints.platform,
        )
        if found:
            return found, ""
        return [], f"{series.where}: {self._why_not(series, metric)}; not compared"

    def _why_not(self, series: Series, metric: str) -> str:
        """What the closest selectable run (the most recent of those) measured instead, or that there is none."""
        found = self.store.variants(series.test, series.platform, metric)
        variants = [v for v in found if v.run_id != self.exclude_run_id]
        if self.selection.kind == "baseline":
            variants = [v for v in variants if v.run_id == self.store.baselines().get(self.selection.name)]
        mine = series.fingerprints

        def unlike(variant: Variant) -> tuple[bool, bool, bool]:
            same = (variant.config_hash, variant.workload_fingerprint, variant.platform_fingerprint)
            return same[0] != series.config_hash, same[1] != mine.workload, same[2] != mine.platform

        if variants:
            closest = min(reversed(variants), key=unlike)
            theirs = self._fingerprints(closest)
            where = f"in the history (run {closest.run_id})"
            reasons = differences(mine, series.config_hash, theirs, closest.config_hash, where)
            if reasons:
                return "; ".join(reasons)
        return f"{metric} has no earlier run in the history ({self.selection})"

    def _fingerprints(self, variant: Variant) -> Fingerprints:
        workload, platform = variant.workload_fingerprint, variant.platform_fingerprint
        code = self.store.parts(workload) if workload else {}
        parts = self.store.parts(platform) if platform else {}
        return Fingerprints(workload, platform, tuple(sorted(code.items())), tuple(sorted(parts.items())))


def compare_metrics(
    series: Series,
    metrics: Iterable[Metric],
    baseline: Baseline,
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    exprs: Sequence[RegressionExpr] = (),
    noise_floors: Mapping[str, float] | None = None,
) -> list[MetricComparison]:
    """Compare every gated, measured metric of one series with its baseline (the plugin, per test).

    ``noise_floors``: per metric, the smallest absolute change that may count (from the references);
    the others take their unit's default (:func:`~pytest_hetero.check.units.default_noise_floor`).
    """
    floors = noise_floors or {}
    rows = []
    for metric in sorted(metrics, key=lambda m: m.name):
        current = list(metric.samples) or ([] if metric.value is None else [metric.value])
        if not current or not metric.gated:
            continue
        base, note = baseline.lookup(series, metric.name)
        higher = metric.higher_is_better
        floor = floors.get(metric.name, default_noise_floor(metric.unit))
        settings = {"min_effect": min_effect, "alpha": alpha, "noise_floor": floor}
        result = compare(current, base, higher, name=metric.name, unit=metric.unit, **settings)
        checks = tuple(check_regression_expr(e, current, base, higher) for e in exprs) if base else ()
        key = (series.test, series.platform, metric.name, metric.unit, series.config_hash)
        rows.append(MetricComparison(*key, result, checks, note))
    return rows


def compare_record(
    record: dict[str, Any],
    baseline: Baseline,
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    exprs: Sequence[RegressionExpr] = (),
) -> list[MetricComparison]:
    """Compare every measured metric of one report record (JSON, as the CLI reads it)."""
    metrics = [_metric(name, entry) for name, entry in record["metrics"].items()]
    return compare_metrics(Series.of_record(record), metrics, baseline, min_effect=min_effect, alpha=alpha, exprs=exprs)


def _metric(name: str, entry: dict[str, Any]) -> Metric:
    metric = Metric.from_dict(name, entry)  # samples as the history counts them: the value when there are none
    return dataclasses.replace(metric, samples=tuple(metric_samples(entry)))


def run_gate(
    report: dict[str, Any],
    baseline: Baseline,
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    exprs: Sequence[RegressionExpr] = (),
) -> GateResult:
    """Compare every record of ``report`` with ``baseline``."""
    result = GateResult(against=baseline.description)
    for record in report["results"]:
        result.rows.extend(compare_record(record, baseline, min_effect=min_effect, alpha=alpha, exprs=exprs))
    notes = [row.note for row in result.rows if row.note]
    if isinstance(baseline, ReportBaseline):
        notes.extend(baseline.missing_from(report))
    result.notes = list(dict.fromkeys(notes))
    return result
