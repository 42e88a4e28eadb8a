"""One verdict per metric: the reference band and the regression gate combined.

::

    band \\ gate        not compared, unchanged,      regression
                       improvement, insufficient
    pass               pass                          regression (fails)
    no-reference       no-reference                  regression (fails)
    xfail              xfail                         regression (fails)
    fail, missing      fail, missing                 fail, missing (both messages)
    contended          contended                     contended (not judged)

``contended``: a host-bound metric measured while another job shared the
resource is judged neither by its band nor by the gate. The combined verdict
is what the record's ``verdicts[].verdict``, the terminal summary and the
JUnit properties show; ``band`` and ``gate`` keep each part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_hetero.check.references import Verdict, VerdictKind
from pytest_hetero.check.units import is_host_bound

if TYPE_CHECKING:  # the gate and its history store load only when a run compares (--hetero-compare)
    from pytest_hetero.check.gate import MetricComparison

__all__ = ["combine", "not_judged_notes"]


def combine(verdicts: Sequence[Verdict], comparisons: Sequence[MetricComparison], contended: bool) -> list[Verdict]:
    """The band verdicts with the gate's comparisons folded in; a compared metric without one gets one."""
    by_metric = {row.metric: row for row in comparisons}
    combined = [_combine(verdict, by_metric.pop(verdict.metric, None)) for verdict in verdicts]
    return combined + [_gate_only(row, contended) for row in by_metric.values()]


def _combine(verdict: Verdict, row: MetricComparison | None) -> Verdict:
    if row is None:
        return verdict
    judged = dataclasses.replace(verdict, gate=row.verdict)
    if not row.regressed:
        return judged
    if verdict.kind is VerdictKind.CONTENDED:
        return dataclasses.replace(judged, message=f"{verdict.message}; the gate's {row.verdict} not judged either")
    if verdict.failed:
        return dataclasses.replace(judged, message=f"{verdict.message}; {row.message}")
    return dataclasses.replace(judged, kind=VerdictKind.REGRESSION, message=row.message)


def _gate_only(row: MetricComparison, contended: bool) -> Verdict:
    """A compared metric that was not checked against references (e.g. while they are being rewritten)."""
    value = row.comparison.current_median
    bound = is_host_bound(row.unit)
    kind = VerdictKind.REGRESSION if row.regressed else VerdictKind.NO_REFERENCE
    if contended and bound:
        kind = VerdictKind.CONTENDED
    return Verdict(row.metric, kind, value, None, row.message, gate=row.verdict, host_bound=bound)


def not_judged_notes(records: Iterable[Any]) -> list[str]:
    """One line per reason why bands were not applied (another host, contention), naming the benchmarks.

    ``records`` are report records (``ResultRecord`` or their JSON form).
    """
    by_reason: dict[str, dict[str, list[str]]] = {}
    for record in records:
        where = f"{record['test']} on {record['platform']['name']}"
        for verdict in record["verdicts"]:
            reason = verdict.get("reason")
            if reason:
                by_reason.setdefault(reason, {}).setdefault(where, []).append(verdict["metric"])
    lines = []
    for reason, benchmarks in by_reason.items():
        listed = "; ".join(f"{where} ({', '.join(metrics)})" for where, metrics in benchmarks.items())
        lines.append(f"pytest-hetero: host-bound figures not judged, {reason}: {listed}")
    return lines
