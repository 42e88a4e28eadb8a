"""The terminal summary: one roll-up line per test and platform, then its metrics with their bands.

::

    test                    platform  metric          value  unit       band     verdict
    test_resnet50.py::tiny  local     -                                          passed: 1 no-reference, 6 pass
    test_resnet50.py::tiny  local     throughput_sps  62.28  samples/s  ≥ 19.86  pass
    ...
    why test_x[a100] failed: throughput_sps = 100 samples/s ... below the band

Metrics without a reference (``no-reference``) are counted in the roll-up and
listed only with ``-v``, except each case's headline metric (its throughput).
A value measured while other jobs of the run shared its resource group
carries :data:`CONTENDED_MARK`, explained once under the table. Under it, each
failed case's full reasons, one per line, so the short test summary's first
line is never the only place to read them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_hetero.reporting.attribution import dominant_text
from pytest_hetero.reporting.html_cells import band_text  # plain text: the same band words as the HTML report
from pytest_hetero.reporting.html_model import headline_metric

if TYPE_CHECKING:
    from pytest_hetero.results import ResultRecord

__all__ = ["CONTENDED_MARK", "failure_lines", "summary_lines"]

CONTENDED_MARK = "*"
_LEGEND = f"{CONTENDED_MARK} measured while other jobs shared its resource group (contention in the JSON report)"
_HEADER = ("test", "platform", "metric", "value", "unit", "band", "verdict")
_QUIET_VERDICTS = {"no-reference"}


def summary_lines(records: Sequence[ResultRecord], *, verbose: bool = False) -> list[str]:
    rows: list[tuple[str, ...]] = [_HEADER]
    hidden = 0
    for record in sorted(records, key=lambda r: (r["test"], r["platform"]["name"])):
        metric_rows = _metric_rows(record)
        headline = headline_metric(record["metrics"].values())
        shown = [row for row in metric_rows if verbose or row[-1] not in _QUIET_VERDICTS or row[2] == headline]
        hidden += len(metric_rows) - len(shown)
        rows.append(_rollup(record, metric_rows))
        rows.extend(shown)
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if hidden:
        lines.append(f"({hidden} metric(s) without a reference not listed; -v lists them)")
    if any(_contended(r) and r["metrics"] for r in records):
        lines.append(_LEGEND)
    return lines + failure_lines(records)


def failure_lines(records: Sequence[ResultRecord]) -> list[str]:
    """Every reason each failed case failed for, in full."""
    lines = []
    for record in sorted(records, key=lambda r: r["nodeid"]):
        if record["outcome"] not in ("failed", "error"):
            continue
        where = record["nodeid"].rsplit("::", 1)[-1]
        reasons = [v["message"] for v in record["verdicts"] if v["verdict"] in ("fail", "missing", "regression")]
        reasons += [c["message"] for c in record["comparisons"] if c["verdict"] == "regression"]
        error = record["error"]
        if error is not None:
            reasons.append(error["message"].splitlines()[0])
        lines += [f"why {where} failed: {reason}" for reason in dict.fromkeys(reasons)]
    return lines


def _contended(record: ResultRecord) -> bool:
    contention = record.get("contention")  # absent in records of older reports
    return bool(contention and contention["contended"])


def _rollup(record: ResultRecord, metric_rows: list[tuple[str, ...]]) -> tuple[str, ...]:
    counts = Counter(row[-1] for row in metric_rows)
    error = record["error"]
    outcome = record["outcome"] + (f" ({error['stage']})" if error and error["stage"] else "")
    tally = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    verdict = (f"{outcome}: {tally}" if tally else outcome) + _time_note(record)
    return (record["test"], record["platform"]["name"], "-", "", "", "", verdict)


def _time_note(record: ResultRecord) -> str:
    """Where the workload's time went (workloads/timesplit.py), when it said: its dominant part."""
    dominant = dominant_text(record)
    return f"; time mostly {dominant}" if dominant else ""


def _metric_rows(record: ResultRecord) -> list[tuple[str, ...]]:
    verdicts = {v["metric"]: v for v in record["verdicts"]}
    mark = CONTENDED_MARK if _contended(record) else ""
    return [
        (
            record["test"],
            record["platform"]["name"],
            name,
            _fmt(m["value"]) + mark,
            m["unit"],
            band_text(verdicts[name]) or "-" if name in verdicts else "-",
            verdicts[name]["verdict"] if name in verdicts else "-",
        )
        for name, m in sorted(record["metrics"].items())
    ]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
