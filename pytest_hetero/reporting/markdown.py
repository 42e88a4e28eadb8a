"""Markdown: a run summary and a comparison, for merge-request comments and $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pytest_hetero.check.gate import GateResult, MetricComparison
from pytest_hetero.reporting.attribution import attribution_lines

__all__ = ["band_text", "render_comparison", "render_summary", "spread_text"]

_VERDICT_ICONS = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "missing": "❌ missing",
    "xfail": "⚠️ xfail",
    "no-reference": "no reference",
    "contended": "contended (not judged)",
    "regression": "❌ regression",
    "improvement": "🚀 improvement",
    "unchanged": "unchanged",
    "insufficient-data": "insufficient data",
}


def render_summary(reports: Sequence[dict[str, Any]]) -> str:
    """One table of every metric of every report (a run column when there are several)."""
    lines = [f"## pytest-hetero: {_runs_title(reports)}", ""]
    lines.extend(f"- {_run_line(report)}" for report in reports)
    several = len(reports) > 1
    header = ["test", "platform", "metric", "value", "unit", "spread", "reference band", "verdict"]
    rows = [row for report in reports for row in _summary_rows(report, several)]
    lines += ["", *_table(["run", *header] if several else header, rows)]
    attributed = attribution_lines([r for report in reports for r in report["results"]])
    if attributed:
        lines += ["", "### Where the time went", "", *attributed]
    problems = [f"- `{r['nodeid']}`: {r['error']['message']}" for rep in reports for r in rep["results"] if r["error"]]
    if problems:
        lines += ["", "### Errors", "", *(_first_line(p) for p in problems)]
    return "\n".join(lines) + "\n"


def render_comparison(gate: GateResult) -> str:
    """The gate's verdict, every compared metric, the regressions spelled out, and what was not compared."""
    counts = gate.counts()
    regressions = gate.regressions
    status = f"❌ {len(regressions)} regression(s)" if regressions else "✅ no regression"
    tally = ", ".join(f"{n} {verdict}" for verdict, n in counts.items() if n)
    lines = [f"## pytest-hetero comparison: {status}", "", f"Compared with {gate.against}: {tally or 'nothing'}."]
    header = ["test", "platform", "metric", "baseline", "current", "change", "p", "verdict"]
    lines += ["", *_table(header, [_comparison_row(row) for row in gate.rows if not row.note])]
    if regressions:
        lines += ["", "### Regressions", "", *(f"- {row.message}" for row in regressions)]
    if gate.notes:
        lines += ["", "### Not compared", "", *(f"- {note}" for note in gate.notes)]
    return "\n".join(lines) + "\n"


def _runs_title(reports: Sequence[dict[str, Any]]) -> str:
    if len(reports) == 1:
        return f"run {reports[0]['run_id']}"
    return f"{len(reports)} runs"


def _run_line(report: dict[str, Any]) -> str:
    git = (report.get("provenance") or {}).get("git") or {}
    commit = f" · commit `{git['commit'][:10]}`" if git.get("commit") else ""
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report["summary"].items()))
    return (
        f"run `{report['run_id']}` at {report['created_at']}{commit} · exit status {report['exit_status']}"
        f" · {outcomes or 'no results'}"
    )


def _summary_rows(report: dict[str, Any], with_run: bool) -> Iterable[list[str]]:
    for record in sorted(report["results"], key=lambda r: (r["test"], r["platform"]["name"])):
        verdicts = {v["metric"]: v for v in record["verdicts"]}
        run = [report["run_id"]] if with_run else []
        if not record["metrics"]:
            yield [*run, record["test"], record["platform"]["name"], "-", "-", "", "", "", record["outcome"]]
        # Measured while other jobs shared its resource group (absent in older reports).
        mark = " (contended)" if (record.get("contention") or {}).get("contended") else ""
        for name, metric in sorted(record["metrics"].items()):
            verdict = verdicts.get(name, {})
            cells = [record["test"], record["platform"]["name"], name, _number(metric["value"]) + mark, metric["unit"]]
            yield [*run, *cells, spread_text(metric), band_text(verdict), _icon(verdict.get("verdict", "-"))]


def spread_text(metric: dict[str, Any]) -> str:
    """``cv 1.2 % (n=5)`` from a repeated metric's stats; empty for a single run."""
    stats = metric.get("stats") or {}
    if not stats or stats.get("n", 1) < 2:
        return ""
    cv = stats.get("cv")
    return f"cv {cv * 100:.1f} % (n={stats['n']})" if cv is not None else f"n={stats['n']}"


def band_text(verdict: dict[str, Any]) -> str:
    low, high = verdict.get("lower_bound"), verdict.get("upper_bound")
    if verdict.get("reference") is None:
        return ""
    return f"[{'-inf' if low is None else f'{low:.4g}'}, {'+inf' if high is None else f'{high:.4g}'}]"


def _comparison_row(row: MetricComparison) -> list[str]:
    result = row.comparison
    change = "" if result.relative_change is None else f"{result.relative_change * 100:+.1f} %"
    p_value = "n/a" if result.p_value is None else f"{result.p_value:.3g}"
    baseline = f"{_number(result.baseline_median)} (n={result.n_baseline})"
    current = f"{_number(result.current_median)} (n={result.n_current})"
    return [
        row.test,
        row.platform,
        f"{row.metric} ({row.unit})",
        baseline,
        current,
        change,
        p_value,
        _icon(row.verdict),
    ]


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _icon(verdict: str) -> str:
    return _VERDICT_ICONS.get(verdict, verdict)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
