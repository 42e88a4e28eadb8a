"""The terminal summary: platform × workload × metric × verdict.

A value measured while other jobs of the run shared its resource group carries
:data:`CONTENDED_MARK`, explained once under the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_hetero.results import ResultRecord

__all__ = ["CONTENDED_MARK", "summary_lines"]

CONTENDED_MARK = "*"
_LEGEND = f"{CONTENDED_MARK} measured while other jobs shared its resource group (contention in the JSON report)"


def summary_lines(records: Sequence[ResultRecord]) -> list[str]:
    rows: list[tuple[str, ...]] = [("test", "platform", "metric", "value", "unit", "verdict")]
    for record in sorted(records, key=lambda r: (r["test"], r["platform"]["name"])):
        rows.extend(_rows(record))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines + ([_LEGEND] if any(_contended(r) and r["metrics"] for r in records) else [])


def _contended(record: ResultRecord) -> bool:
    contention = record.get("contention")  # absent in records of older reports
    return bool(contention and contention["contended"])


def _rows(record: ResultRecord) -> list[tuple[str, ...]]:
    test, platform = record["test"], record["platform"]["name"]
    if not record["metrics"]:
        error = record["error"]
        stage = error["stage"] if error else None
        note = record["outcome"] + (f" ({stage})" if stage else "")
        return [(test, platform, "-", "-", "", note)]
    verdicts = {v["metric"]: v["verdict"] for v in record["verdicts"]}
    mark = CONTENDED_MARK if _contended(record) else ""
    return [
        (test, platform, name, _fmt(m["value"]) + mark, m["unit"], verdicts.get(name, "-"))
        for name, m in sorted(record["metrics"].items())
    ]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
