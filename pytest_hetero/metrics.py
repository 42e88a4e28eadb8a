"""Metrics: what a workload measured, with units and a direction.

A workload prints one ``:::HETERO_METRICS {json}`` line (see
:mod:`pytest_hetero.workloads.common`); :func:`parse_metrics_record` turns the
log into :class:`Metric` objects and says exactly which line is malformed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_hetero.errors import CollectError
from pytest_hetero.workloads.common import METRICS_PREFIX

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
    """Parse the last metrics line of ``text`` (the log at ``source``)."""
    found = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.startswith(METRICS_PREFIX)]
    if not found:
        raise CollectError(f"{source}: the workload printed no '{METRICS_PREFIX.strip()}' line")
    lineno, line = found[-1]
    where = f"{source}:{lineno}"
    try:
        data = json.loads(line[len(METRICS_PREFIX) :])
    except json.JSONDecodeError as exc:
        raise CollectError(f"{where}: malformed metrics record: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
        raise CollectError(f"{where}: the metrics record must be an object with a 'metrics' list")
    metrics = dict(_metric(entry, f"{where}: metrics[{i}]") for i, entry in enumerate(data["metrics"]))
    extra = {k: v for k, v in data.items() if k != "metrics"}
    return MetricsRecord(metrics=metrics, extra=extra)


def _metric(entry: object, where: str) -> tuple[str, Metric]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise CollectError(f"{where}: each metric needs a string 'name'")
    value = entry.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise CollectError(f"{where}: metric {entry['name']!r} has non-numeric value {value!r}")
    number = None if value is None or not math.isfinite(value) else float(value)
    unit = entry.get("unit", "")
    higher = entry.get("higher_is_better", True)
    if not isinstance(unit, str) or not isinstance(higher, bool):
        raise CollectError(f"{where}: metric {entry['name']!r}: 'unit' must be a string, 'higher_is_better' a bool")
    return entry["name"], Metric(entry["name"], number, unit, higher)
