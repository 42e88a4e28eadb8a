"""Metrics: what a workload measured, with units and a direction.

A workload prints one ``:::HETERO_METRICS {json}`` line;
:func:`pytest_hetero.workloads.protocol.parse_metrics_line` reads and checks it
and :func:`parse_metrics_record` turns it into :class:`Metric` objects, with a
CollectError that says exactly which line is malformed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_hetero.errors import CollectError
from pytest_hetero.workloads.protocol import METRICS_PREFIX, MetricsLineError, parse_metrics_line

__all__ = ["AGGREGATES", "Metric", "MetricsRecord", "combine_repeats", "parse_metrics_record"]


#: ``--hetero-aggregate``: how repeats become one value, and the statistic that names it.
AGGREGATES: Mapping[str, str] = MappingProxyType({"median": "median", "mlperf": "trimmed_mean"})


@dataclass(frozen=True)
class Metric:
    """One measured figure; with ``--hetero-repeat``, ``value`` is ``stats[aggregate]`` over ``samples``."""

    name: str
    value: float | None
    unit: str = ""
    higher_is_better: bool = True
    samples: tuple[float, ...] = ()
    stats: Mapping[str, float | None] | None = None
    #: False for informational figures the regression gate must not judge (e.g. a single max or stddev).
    gated: bool = True
    #: The statistic of ``samples`` that ``value`` is, the one references judge: a key of ``stats``.
    aggregate: str = "median"

    def as_dict(self) -> dict[str, Any]:
        """Its fields (``dataclasses.asdict`` deep-copies: several times slower, once per metric of a record)."""
        data: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
        }
        if self.samples:
            data["samples"], data["stats"] = list(self.samples), dict(self.stats or {})
        if not self.gated:
            data["gated"] = False
        if self.samples:
            data["aggregate"] = self.aggregate
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Metric:
        """The inverse of :meth:`as_dict`, for records that crossed a boundary (xdist, JSON)."""
        stats = data.get("stats")
        return cls(
            name=name,
            value=data.get("value"),
            unit=data.get("unit", ""),
            higher_is_better=bool(data.get("higher_is_better", True)),
            samples=tuple(data.get("samples", ())),
            stats=dict(stats) if stats is not None else None,
            gated=bool(data.get("gated", True)),
            aggregate=str(data.get("aggregate", "median")),
        )

    def format_value(self) -> str:
        return "n/a" if self.value is None else f"{self.value:.4g}"


@dataclass(frozen=True)
class MetricsRecord:
    """The parsed final record of one workload run."""

    metrics: Mapping[str, Metric]
    extra: Mapping[str, Any]


def combine_repeats(runs: Sequence[Mapping[str, Metric]], aggregate: str = "median") -> dict[str, Metric]:
    """One metric per name over repeated runs: every sample, statistics, and the value ``aggregate`` names.

    ``median`` (the default) or ``mlperf``: MLPerf's score, the mean after dropping the best and
    the worst run (:func:`~pytest_hetero.check.statistics.trimmed_mean`); with fewer than 3
    samples (a repeat failed) nothing can be dropped and it is their mean. Each metric names
    the statistic its value is in ``aggregate``.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate {aggregate!r}: expected one of {', '.join(AGGREGATES)}")
    if len(runs) == 1:
        return dict(runs[0])
    from pytest_hetero.check.statistics import summary_stats

    names = dict.fromkeys(name for run in runs for name in run)
    combined = {}
    for name in names:
        first = next(run[name] for run in runs if name in run)
        samples = tuple(v for run in runs if (v := run[name].value if name in run else None) is not None)
        stats = summary_stats(samples) if samples else None
        statistic = AGGREGATES[aggregate] if len(samples) >= 3 or aggregate == "median" else "mean"
        value = stats[statistic] if stats else None
        combined[name] = Metric(
            name, value, first.unit, first.higher_is_better, samples, stats, first.gated, aggregate=statistic
        )
    return combined


def parse_metrics_record(text: str, source: Path | str) -> MetricsRecord:
    """Parse the last metrics line of ``text`` (the log at ``source``); CollectError says where it is wrong."""
    try:
        data = parse_metrics_line(text)
    except MetricsLineError as exc:
        where = str(source) if exc.lineno is None else f"{source}:{exc.lineno}"
        raise CollectError(f"{where}: {exc.reason}") from exc
    where = f"{source}:{_record_line(text)}"
    metrics: dict[str, Metric] = {}
    first: dict[str, int] = {}
    for index, entry in enumerate(data["metrics"]):
        name = entry["name"]
        if name in first:  # not last-one-wins: which of the two was meant is the workload's bug
            raise CollectError(f"{where}: metric {name!r} is given twice: metrics[{first[name]}] and metrics[{index}]")
        first[name] = index
        metrics[name] = _metric(entry, f"{where}: metrics[{index}]")
    extra = {k: v for k, v in data.items() if k != "metrics"}
    return MetricsRecord(metrics=metrics, extra=extra)


def _record_line(text: str) -> int:
    """The line number of the metrics line parse_metrics_line read: the last one."""
    return max(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(METRICS_PREFIX))


def _metric(entry: Mapping[str, Any], where: str) -> Metric:
    """A checked entry (see parse_metrics_line) as a Metric; NaN and infinities are errors, null is 'not measured'."""
    value = entry.get("value")
    name: str = entry["name"]
    if value is not None and not math.isfinite(value):
        raise CollectError(
            f"{where}: metric {name!r} has the non-finite value {value} (the measurement went wrong); "
            "a metric not measured is null"
        )
    number = None if value is None else float(value)
    return Metric(name, number, entry.get("unit", ""), entry.get("higher_is_better", True))
