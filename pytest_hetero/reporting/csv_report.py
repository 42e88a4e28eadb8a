"""CSV: one row per run × record × metric, for spreadsheets and pandas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["CSV_COLUMNS", "render_csv"]

_STATS = ("n", "median", "mean", "stdev", "cv", "min", "max", "trimmed_mean")

CSV_COLUMNS = (
    "run_id",
    "created_at",
    "test",
    "nodeid",
    "platform",
    "accelerator",
    "outcome",
    "metric",
    "value",
    "unit",
    "higher_is_better",
    *_STATS,
    "verdict",
    "lower_bound",
    "upper_bound",
    "config_hash",
    "git_commit",
    "contended",
)


def render_csv(reports: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerows(_rows(report))
    return buffer.getvalue()


def _rows(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    git = (report.get("provenance") or {}).get("git") or {}
    run = {"run_id": report["run_id"], "created_at": report["created_at"], "git_commit": git.get("commit", "")}
    for record in report["results"]:
        verdicts = {v["metric"]: v for v in record["verdicts"]}
        for name, metric in sorted(record["metrics"].items()):
            yield {**run, **_record_cells(record), **_metric_cells(name, metric, verdicts.get(name, {}))}


def _record_cells(record: dict[str, Any]) -> dict[str, Any]:
    accelerator = record["platform"]["accelerator"]
    return {
        "test": record["test"],
        "nodeid": record["nodeid"],
        "platform": record["platform"]["name"],
        "accelerator": f"{accelerator['kind']}:{accelerator['model']}",
        "outcome": record["outcome"],
        "config_hash": record["workload"]["config_hash"],
        # Empty in reports written before resource groups.
        "contended": str(record["contention"]["contended"]).lower() if "contention" in record else "",
    }


def _metric_cells(name: str, metric: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    stats = metric.get("stats") or {}
    return {
        "metric": name,
        "value": _blank(metric["value"]),
        "unit": metric["unit"],
        "higher_is_better": str(metric["higher_is_better"]).lower(),
        **{key: _blank(stats.get(key)) for key in _STATS},
        "verdict": verdict.get("verdict", ""),
        "lower_bound": _blank(verdict.get("lower_bound")),
        "upper_bound": _blank(verdict.get("upper_bound")),
    }


def _blank(value: Any) -> Any:
    return "" if value is None else value
