"""One self-contained HTML file that reads top-down: the summary first, then the charts, then the details.

1. **Summary** (the first screen): per run its id, time, commit, exit status,
   outcomes and verdict counts; then a test × platform matrix of each test's
   headline metric (``throughput_sps``, else its first gated higher-is-better
   rate), each cell coloured by its verdict, with its reference band; a run
   column when several runs are shown.
2. **Across platforms**: one bar chart per test, of its headline metric.
3. **Trends**: the headline metric over runs, where a platform has two
   comparable points (from the given reports and the history store).
4. **All metrics**, folded away (``<details>``): per test, small multiples
   of its other metrics, and every value in one table
   (:mod:`pytest_hetero.reporting.html_details`).

Only the headline metrics are drawn with matplotlib (at most two figures per
test): drawing is what costs time. A chart whose values are all zero or
missing is not drawn. Verdict words and colours:
:mod:`pytest_hetero.reporting.html_model`. Every
``<figure>`` carries the plotted numbers in ``data-values`` (JSON), so tools
and tests can read what the picture shows. Trends only join runs whose
workload config hash equals the newest one's; the caption says how many
points were left out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pytest_hetero.decide.html import decide_section
from pytest_hetero.reporting.html_attribution import attribution_section
from pytest_hetero.reporting.html_cells import NO_VERDICT, band_text, esc, legend, num, words_of
from pytest_hetero.reporting.html_charts import Bar, Charts, ImageFormat, Line
from pytest_hetero.reporting.html_details import details_section
from pytest_hetero.reporting.html_model import (
    CLASS_COLORS,
    Cell,
    SeriesKey,
    TrendPoint,
    View,
    build_view,
    change,
    direction,
    is_empty,
    run_cells,
    verdict_class,
    worst_word,
)

__all__ = ["ImageFormat", "TrendPoint", "render_html"]

_EXIT_STATUS = {
    0: "all passed",
    1: "tests failed",
    2: "interrupted",
    3: "internal error or an output missing",
    4: "usage error",
    5: "no tests collected",
    6: "performance failures only",
}
_CONTENDED = "; ⚑ contended: another job shared its resource while it was measured"
_OUTCOME_WORDS = {"failed": "error", "error": "error", "interrupted": "error", "xfailed": "xfail"}
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.2em 2em;color:#222;max-width:1400px}"
    "h1{font-size:1.4em;margin:.2em 0 .5em}h2{font-size:1.15em;margin:1.2em 0 .4em}h3{font-size:1em}"
    "table{border-collapse:collapse;font-size:.85em;margin-bottom:.6em}"
    "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
    "td.num{text-align:right}td.worse{color:#b00020;font-weight:bold}td.better{color:#1b7f3b}"
    ".band,.note{color:#555;font-size:.85em}.word{font-weight:600}"
    ".chip{display:inline-block;padding:0 .45em;margin:0 .3em .2em 0;border-radius:.6em;border:1px solid}"
    ".swatch{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:-.1em}"
    "figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}figcaption{font-size:.8em;color:#555}"
    "details{margin:.4em 0}summary{cursor:pointer;font-weight:600}"
    ".bar{height:.5em;border-radius:2px;margin:.15em 0}.small-multiples td{min-width:10em}"
    ".matrix td{min-width:8em}svg.spark{vertical-align:middle}"
    + "".join(f".v-{cls}{{background:{tint};border-color:{strong}}}" for cls, (strong, tint) in CLASS_COLORS.items())
)


def render_html(
    reports: Sequence[dict[str, Any]],
    history: Mapping[SeriesKey, Sequence[TrendPoint]] | None = None,
    *,
    image_format: ImageFormat = "png",
    min_effect: float = 0.05,
) -> str:
    """The report of ``reports`` (any number of runs), trends extended by ``history`` points."""
    view = build_view(reports, history or {})
    charts = Charts(image_format)
    body = [_summary(view), _across_platforms(view, charts), _trends(view, charts), decide_section(reports)]
    body += [attribution_section(reports), details_section(view, min_effect)]
    head = f"<meta charset='utf-8'><title>pytest-hetero report</title><style>{_STYLE}</style>"
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"


# -- 1. summary ------------------------------------------------------------------------------------


def _summary(view: View) -> str:
    metrics = [(test, metric) for test, metric in view.headlines.items() if metric]
    words = words_of(c for report in view.runs for (t, _, m), c in run_cells(report).items() if (t, m) in metrics)
    contended = any(cell.contended for cell in view.latest.values())
    marks = (_CONTENDED if contended else "") + "; hover a cell for its message"
    parts = [
        "<section id='summary'><h1>pytest-hetero report</h1>",
        _runs_table(view.runs),
        "<h2>Headline metric per test and platform</h2>",
        _matrix(view),
        legend(words + [_outcome_word(r) for rep in view.runs for r in rep["results"] if not r["metrics"]], marks),
        _errors(view.runs),
        "</section>",
    ]
    return "".join(parts)


def _runs_table(runs: list[dict[str, Any]]) -> str:
    header = "".join(f"<th>{h}</th>" for h in ("run", "created", "commit", "exit status", "tests", "verdicts"))
    rows = []
    for report in runs:
        git = (report.get("provenance") or {}).get("git") or {}
        status = report["exit_status"]
        status_cls = "good" if status == 0 else "warn" if status in (2, 5) else "bad"
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(report["summary"].items())) or "no results"
        counts = Counter(w for cell in run_cells(report).values() for w in cell.words)
        chips = "".join(
            f"<span class='chip v-{verdict_class(w)}'>{esc(w)} {n}</span>" for w, n in sorted(counts.items())
        )
        cells = [esc(report["run_id"]), esc(report["created_at"]), esc((git.get("commit") or "–")[:10])]
        cells += [f"<span class='chip v-{status_cls}'>{status} · {_EXIT_STATUS.get(status, 'exit status')}</span>"]
        cells += [esc(outcomes), chips or "<span class='note'>no verdicts</span>"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class='runs'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _matrix(view: View) -> str:
    several = len(view.runs) > 1
    header = ["run"] * several + ["test", "headline metric"] + view.platforms
    rows = []
    for test in view.tests:
        metric = view.headlines[test]
        for report in [r for r in view.runs if any(rec["test"] == test for rec in r["results"])]:
            cells = run_cells(report)
            records = {rec["platform"]["name"]: rec for rec in report["results"] if rec["test"] == test}
            tds = [f"<td>{esc(report['run_id'])}</td>"] * several + [f"<td>{esc(test)}</td>", _metric_td(view, test)]
            tds += [_matrix_td(cells.get((test, p, metric or "")), records.get(p)) for p in view.platforms]
            rows.append(f"<tr>{''.join(tds)}</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table class='matrix'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _metric_td(view: View, test: str) -> str:
    metric = view.headlines[test]
    if metric is None:
        return "<td><span class='note'>no metrics</span></td>"
    cells = list(view.cells(test, metric).values())
    unit = cells[0].metric["unit"] if cells else ""
    notes = ", ".join(n for n in (unit, direction(cells)) if n)
    return f"<td>{esc(metric)}<br><span class='band'>{esc(notes)}</span></td>"


def _matrix_td(cell: Cell | None, record: dict[str, Any] | None) -> str:
    if cell is not None:
        return _verdict_td(cell)
    if record is None:
        return "<td class='note'>–</td>"
    return _outcome_td(record)


def _verdict_td(cell: Cell) -> str:
    """The value, its verdict words, its band: coloured by the worst word."""
    shown = " · ".join(cell.words) or NO_VERDICT
    band = band_text(cell.verdict)
    lines = [f"<span class='num'>{num(cell.value)}</span> <span class='word'>{esc(shown)}</span>"]
    lines += [f"<span class='band'>band {band}</span>"] * bool(band)
    lines += ["<span class='band'>⚑ contended</span>"] * cell.contended
    title = " | ".join(m for m in (cell.verdict.get("message"), cell.comparison.get("message")) if m)
    css = verdict_class(worst_word(cell.words) or "")
    return f"<td class='v-{css}' title='{esc(title)}'>{'<br>'.join(lines)}</td>"


def _outcome_td(record: dict[str, Any]) -> str:
    """A record without the headline metric: its outcome, and the stage that failed."""
    word = _outcome_word(record)
    error = record.get("error") or {}
    shown = word + (f" ({error['stage']})" if error else "")
    title = error.get("message", "") or record.get("skip_reason", "")
    return f"<td class='v-{verdict_class(word)}' title='{esc(title)}'><span class='word'>{esc(shown)}</span></td>"


def _outcome_word(record: dict[str, Any]) -> str:
    outcome = str(record["outcome"])
    return _OUTCOME_WORDS.get(outcome, outcome)


def _errors(runs: list[dict[str, Any]]) -> str:
    found = [(r["nodeid"], r["error"]) for rep in runs for r in rep["results"] if r.get("error")]
    if not found:
        return ""
    items = "".join(f"<li><code>{esc(node)}</code>: {esc(_first_line(err))}</li>" for node, err in found)
    return f"<h2>Errors</h2><ul>{items}</ul>"


# -- 2. and 3. charts of the headline metrics ------------------------------------------------------


def _across_platforms(view: View, charts: Charts) -> str:
    figures = [_bars(view, charts, test, metric) for test, metric in view.headlines.items() if metric]
    return f"<section id='platforms'><h2>Across platforms</h2>{''.join(figures)}</section>"


def _trends(view: View, charts: Charts) -> str:
    figures = [_trend(view, charts, test, metric) for test, metric in view.headlines.items() if metric]
    if not any(figures):
        return ""
    return f"<section id='trends'><h2>Trends</h2>{''.join(figures)}</section>"


def _bars(view: View, charts: Charts, test: str, metric: str) -> str:
    group = view.cells(test, metric)
    data = {platform: cell.value for platform, cell in group.items()}
    if is_empty(data.values()):
        return f"<p class='note'>{esc(test)}: {esc(metric)} is zero or missing on every platform: not drawn.</p>"
    bars = [_bar(platform, cell) for platform, cell in group.items()]
    title = f"{test}: {metric}" + (f"\n({direction(group.values())})" if direction(group.values()) else "")
    src = charts.bars(title, _ylabel(metric, group), bars)
    caption = "newest value per platform, coloured by verdict; dashed: reference band"
    return _figure("bars", test, metric, data, src, caption)


def _bar(platform: str, cell: Cell) -> Bar:
    stats, value = cell.metric.get("stats") or {}, cell.value
    low, high = stats.get("min"), stats.get("max")
    bounds = cell.verdict.get("lower_bound"), cell.verdict.get("upper_bound")
    bar = Bar(platform, value, worst_word(cell.words), *bounds)
    if value is None or low is None or high is None:
        return bar
    return bar._replace(below=max(value - low, 0.0), above=max(high - value, 0.0))


def _trend(view: View, charts: Charts, test: str, metric: str) -> str:
    group = view.cells(test, metric)
    lines, data, dropped = [], {}, 0
    for platform, cell in group.items():
        points, left_out = view.comparable((test, platform, metric))
        dropped += left_out
        values = [float(p.value) for p in points if p.value is not None]
        if len(values) >= 2:
            shift = change(values)
            label = platform + ("" if shift is None else f" ({shift * 100:+.1f} % last run)")
            bounds = cell.verdict.get("lower_bound"), cell.verdict.get("upper_bound")
            lines.append(Line(label, [_when(p.created_at) for p in points], values, *bounds))
            data[platform] = values
    if not lines or is_empty(v for line in lines for v in line.values):
        return ""
    src = charts.trend(f"{test}: {metric} over runs", _ylabel(metric, group), lines)
    caption = "one point per run; dashed: each platform's reference band" + (
        f"; {dropped} point(s) with another config hash left out" if dropped else ""
    )
    return _figure("trend", test, metric, data, src, caption)


def _figure(kind: str, test: str, metric: str, data: object, src: str, caption: str) -> str:
    attrs = (
        f"data-kind='{kind}' data-test='{esc(test)}' data-metric='{esc(metric)}' data-values='{esc(json.dumps(data))}'"
    )
    alt = f"{kind} of {metric} for {test}"
    return f"<figure {attrs}><img alt='{esc(alt)}' src='{src}'><figcaption>{esc(caption)}</figcaption></figure>"


def _ylabel(metric: str, group: Mapping[str, Cell]) -> str:
    unit = next(iter(group.values())).metric["unit"] if group else ""
    return f"{metric} ({unit})" if unit else metric


def _first_line(error: Mapping[str, Any]) -> str:
    lines = str(error.get("message", "")).splitlines()
    return f"{error.get('stage', '?')}: {lines[0] if lines else ''}"


def _when(created_at: str) -> datetime:
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, tz=timezone.utc)
