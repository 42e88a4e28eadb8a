"""Working with pytest-benchmark, not beside it.

- Tests that use pytest-benchmark's ``benchmark`` fixture become records of
  their own: their statistics are metrics (with units and direction), checked
  against ``references.yaml`` and the history like any other, and reported in
  the JSON report, JUnit and the terminal table.
- :func:`benchmark_json` writes pytest-hetero's results in pytest-benchmark's
  JSON format, for ``pytest-benchmark compare`` and the tools built on it.
- Provenance reuses pytest-benchmark's machine and commit information
  (including what a conftest adds through ``pytest_benchmark_update_machine_info``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_hetero.results import ResultRecord
from pytest_benchmark import __version__ as pytest_benchmark_version
from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info
from pytest_benchmark.stats import Stats
from pytest_benchmark.utils import get_commit_info

from pytest_hetero.metrics import Metric
from pytest_hetero.workload import Workload

__all__ = ["benchmark_json", "commit_info", "fixture_metrics", "fixture_stats", "fixture_workload", "machine_info"]

#: pytest-benchmark statistic → (metric name, unit, higher is better); times are seconds per round.
_STATS = {
    "min": ("min_s", "s", False),
    "max": ("max_s", "s", False),
    "mean": ("mean_s", "s", False),
    "stddev": ("stddev_s", "s", False),
    "median": ("median_s", "s", False),
    "iqr": ("iqr_s", "s", False),
    "ops": ("ops_per_s", "1/s", True),
    "rounds": ("rounds", "rounds", True),
}
#: Judged by the gate: the median over rounds carries every round, so its comparison is statistical.
#: The others are single figures of one run (a max, a spread) and swing too much to gate on.
_GATED = {"median_s"}


def fixture_stats(item: pytest.Item) -> Any | None:
    """The statistics of the item's ``benchmark`` fixture, or None (not used, disabled, skipped)."""
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    metadata = getattr(fixture, "stats", None)
    return metadata if metadata else None


def fixture_metrics(metadata: Any) -> dict[str, Metric]:
    """pytest-benchmark's statistics as metrics; ``median_s`` carries every round as samples."""
    from pytest_hetero.check.statistics import summary_stats

    stats, data = metadata.stats, tuple(metadata.stats.data)
    metrics = {}
    for field, (name, unit, higher) in _STATS.items():
        value = float(getattr(stats, field))
        metrics[name] = Metric(name, value, unit, higher, gated=name in _GATED)
    metrics["median_s"] = Metric("median_s", float(stats.median), "s", False, data, summary_stats(data))
    return metrics


def fixture_workload(item: pytest.Item, metadata: Any) -> Workload:
    """What was timed, for the config hash: the test function, its parameters and the benchmark options."""
    options = {
        k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in metadata.options.items()
    }
    config = {"group": metadata.group, "params": _plain(metadata.params), "options": options}
    module = getattr(getattr(item, "module", None), "__name__", item.path.stem)
    return Workload(name=getattr(item, "originalname", item.name), module=module, config=config)


def _plain(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {k: repr(v) for k, v in params.items()}


def machine_info(config: pytest.Config) -> dict[str, Any]:
    """pytest-benchmark's machine information, with the conftest extensions when its plugin is active."""
    hook = config.hook
    if hasattr(hook, "pytest_benchmark_generate_machine_info"):  # its plugin is active (not -p no:benchmark)
        info: dict[str, Any] = hook.pytest_benchmark_generate_machine_info(config=config)
        hook.pytest_benchmark_update_machine_info(config=config, machine_info=info)
        return info
    generated: dict[str, Any] = pytest_benchmark_generate_machine_info()  # type: ignore[no-untyped-call]
    return generated


def commit_info() -> dict[str, Any]:
    info: dict[str, Any] = get_commit_info()  # type: ignore[no-untyped-call]
    return info


def benchmark_json(records: Sequence[ResultRecord], machine: dict[str, Any], commit: dict[str, Any]) -> dict[str, Any]:
    """pytest-hetero's results in pytest-benchmark's JSON format: one entry per test and metric."""
    entries = [_entry(record, name, metric) for record in records for name, metric in record["metrics"].items()]
    return {
        "machine_info": machine,
        "commit_info": commit,
        "benchmarks": [entry for entry in entries if entry is not None],
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "version": pytest_benchmark_version,
    }


def _entry(record: ResultRecord, name: str, metric: dict[str, Any]) -> dict[str, Any] | None:
    samples = metric.get("samples") or ([metric["value"]] if metric["value"] is not None else [])
    if not samples:
        return None
    stats = Stats()  # type: ignore[no-untyped-call]
    for value in samples:
        stats.update(float(value))  # type: ignore[no-untyped-call]
    platform = record["platform"]["name"]
    return {
        "group": f"{record['test']}[{platform}]",
        "name": f"{record['nodeid'].rsplit('::', 1)[-1]}:{name}",
        "fullname": f"{record['nodeid']}:{name}",
        "params": {"platform": platform},
        "param": platform,
        "extra_info": {
            "platform": platform,
            "metric": name,
            "unit": metric["unit"],
            "higher_is_better": metric["higher_is_better"],
            "config_hash": record["workload"]["config_hash"],
            "outcome": record["outcome"],
        },
        "options": {},
        "stats": {**stats.as_dict(), "data": list(stats.data), "iterations": 1},  # type: ignore[no-untyped-call]
    }
