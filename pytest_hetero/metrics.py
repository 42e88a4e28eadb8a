"""Metrics: what a workload measured, with units and a direction.

A workload prints one ``:::HETERO_METRICS {json}`` line;
:func:`pytest_hetero.workloads.protocol.parse_metrics_line` reads and checks it
and :func:`parse_metrics_record` turns it into :class:`Metric` objects, with a
CollectError that says exactly which line is malformed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_hetero.errors import CollectError
from pytest_hetero.workloads.protocol import MetricsLineError, parse_metrics_line

__all__ = ["Metric", "MetricsRecord", "combine_repeats", "parse_metrics_record"]


@dataclass(frozen=True)
class Metric:
    """One measured figure; with ``--hetero-repeat``, ``value`` is the median of ``samples``."""

    name: str
    value: float | None
    unit: str = ""
    higher_is_better: bool = True
    samples: tuple[float, ...] = ()
    stats: Mapping[str, float | None] | None = None
    #: False for informational figures the regression gate must not judge (e.g. a single max or stddev).
    gated: bool = True

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.samples:
            del data["samples"], data["stats"]
        else:
            data["samples"], data["stats"] = list(self.samples), dict(self.stats or {})
        if self.gated:
            del data["gated"]
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
        )

    def format_value(self) -> str:
        return "n/a" if self.value is None else f"{self.value:.4g}"


@dataclass(frozen=True)
class MetricsRecord:
    """The parsed final record of one workload run."""

    metrics: Mapping[str, Metric]
    extra: Mapping[str, Any]


def combine_repeats(runs: list[Mapping[str, Metric]]) -> dict[str, Metric]:
    """One metric per name over repeated runs: median value, every sample, statistics."""
    if len(runs) == 1:
        return dict(runs[0])
    from pytest_hetero.check.statistics import summary_stats

    names = dict.fromkeys(name for run in runs for name in run)
    combined = {}
    for name in names:
        first = next(run[name] for run in runs if name in run)
        samples = tuple(v for run in runs if (v := run[name].value if name in run else None) is not None)
        stats = summary_stats(samples) if samples else None
        median = stats["median"] if stats else None
        combined[name] = Metric(name, median, first.unit, first.higher_is_better, samples, stats)
    return combined


def parse_metrics_record(text: str, source: Path | str) -> MetricsRecord:
    """Parse the last metrics line of ``text`` (the log at ``source``); CollectError says where it is wrong."""
    try:
        data = parse_metrics_line(text)
    except MetricsLineError as exc:
        where = str(source) if exc.lineno is None else f"{source}:{exc.lineno}"
        raise CollectError(f"{where}: {exc.reason}") from exc
    metrics = dict(_metric(entry) for entry in data["metrics"])
    extra = {k: v for k, v in data.items() if k != "metrics"}
    return MetricsRecord(metrics=metrics, extra=extra)


def _metric(entry: Mapping[str, Any]) -> tuple[str, Metric]:
    """A checked entry (see parse_metrics_line) as a Metric; non-finite values become missing."""
    value = entry.get("value")
    number = None if value is None or not math.isfinite(value) else float(value)
    name: str = entry["name"]
    return name, Metric(name, number, entry.get("unit", ""), entry.get("higher_is_better", True))
