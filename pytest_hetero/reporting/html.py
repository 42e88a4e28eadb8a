"""One self-contained HTML file: figures (matplotlib, embedded as base64 PNG or SVG) and a table.

Per workload (test) and metric: a bar chart across platforms (newest value of
each platform, min–max of the repeats as error bars, the reference band as
dashed lines) and, once there are two runs, a trend over runs per platform
with its reference band shaded. Each ``<figure>`` carries the plotted numbers
in ``data-values`` (JSON), so tools and tests can read what the picture shows.
The table gives every value with its change since the previous run.

Trends only join runs whose workload config hash equals the newest one's;
the caption says how many points were left out for another hash.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

from pytest_hetero.errors import HeteroError
from pytest_hetero.reporting.markdown import band_text, spread_text

__all__ = ["ImageFormat", "TrendPoint", "render_html"]

ImageFormat = Literal["png", "svg"]
SeriesKey = tuple[str, str, str]  # test, platform, metric
_MIME = {"png": "image/png", "svg": "image/svg+xml"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}td.worse{color:#b00020;font-weight:bold}td.better{color:#1b7f3b}
.fail,.missing,.regression{color:#b00020}.pass{color:#1b7f3b}
"""


class TrendPoint(NamedTuple):
    """One run's value of one series (from a report or the history store)."""

    run_id: str
    created_at: str
    value: float | None
    config_hash: str


def render_html(
    reports: Sequence[dict[str, Any]],
    history: Mapping[SeriesKey, Sequence[TrendPoint]] | None = None,
    *,
    image_format: ImageFormat = "png",
    min_effect: float = 0.05,
) -> str:
    """The report of ``reports`` (any number of runs), trends extended by ``history`` points."""
    figure_cls = _figure_class()
    latest = _latest_records(reports)
    trends = _trends(reports, history or {})
    body = [f"<h1>pytest-hetero report</h1><p>{_runs_text(reports)}</p>"]
    for test in sorted({key[0] for key in latest}):
        body.append(f"<h2>{_e(test)}</h2>")
        for metric in sorted({key[2] for key in latest if key[0] == test}):
            group = {k[1]: latest[k] for k in latest if k[0] == test and k[2] == metric}
            body.append(_bars(figure_cls, test, metric, group, image_format))
            body.append(_trend(figure_cls, test, metric, group, trends, image_format))
    body.append(_table(latest, trends, min_effect))
    head = f"<meta charset='utf-8'><title>pytest-hetero report</title><style>{_STYLE}</style>"
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    except ImportError as exc:
        raise HeteroError("the HTML report needs matplotlib: pip install 'pytest-hetero[reports]'") from exc
    return Figure


class _Entry(NamedTuple):
    record: dict[str, Any]
    metric: dict[str, Any]
    verdict: dict[str, Any]


def _latest_records(reports: Sequence[dict[str, Any]]) -> dict[SeriesKey, _Entry]:
    """The newest value of every (test, platform, metric) across the reports."""
    latest: dict[SeriesKey, _Entry] = {}
    for report in sorted(reports, key=lambda r: r["created_at"]):
        for record in report["results"]:
            verdicts = {v["metric"]: v for v in record["verdicts"]}
            for name, metric in record["metrics"].items():
                key = (record["test"], record["platform"]["name"], name)
                latest[key] = _Entry(record, metric, verdicts.get(name, {}))
    return latest


def _trends(
    reports: Sequence[dict[str, Any]], history: Mapping[SeriesKey, Sequence[TrendPoint]]
) -> dict[SeriesKey, list[TrendPoint]]:
    points: dict[SeriesKey, dict[str, TrendPoint]] = defaultdict(dict)
    for key, found in history.items():
        points[key].update((p.run_id, p) for p in found)
    for report in reports:
        for record in report["results"]:
            for name, metric in record["metrics"].items():
                point = TrendPoint(
                    report["run_id"], report["created_at"], metric["value"], record["workload"]["config_hash"]
                )
                points[(record["test"], record["platform"]["name"], name)][report["run_id"]] = point
    return {key: sorted(by_run.values(), key=lambda p: p.created_at) for key, by_run in points.items()}


def _bars(figure_cls: Any, test: str, metric: str, group: dict[str, _Entry], fmt: ImageFormat) -> str:
    platforms = sorted(group)
    values = [group[p].metric["value"] for p in platforms]
    fig = figure_cls(figsize=(max(4.0, 0.9 * len(platforms) + 2), 3.4), layout="constrained")
    ax = fig.add_subplot()
    colors = [_verdict_color(group[p].verdict.get("verdict")) for p in platforms]
    heights = [0.0 if v is None else v for v in values]
    ax.bar(range(len(platforms)), heights, color=colors, yerr=_spreads(group, platforms), capsize=4)
    for i, p in enumerate(platforms):
        for bound in (group[p].verdict.get("lower_bound"), group[p].verdict.get("upper_bound")):
            if bound is not None:
                ax.hlines(bound, i - 0.45, i + 0.45, colors="#444", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(platforms)), platforms, rotation=30, ha="right")
    first = next(iter(group.values())).metric
    ax.set_ylabel(f"{metric} ({first['unit']})" if first["unit"] else metric)
    ax.set_title(f"{test}: {metric}\nby platform ({_direction(first)} is better)", fontsize=10)
    caption = "newest value per platform; error bars: min–max of the repeats; dashed: reference band"
    data = dict(zip(platforms, values, strict=True))
    return _figure(fig, fmt, "bars", test, metric, data, caption)


def _spreads(group: dict[str, _Entry], platforms: list[str]) -> list[list[float]] | None:
    below, above = [], []
    for p in platforms:
        stats, value = group[p].metric.get("stats") or {}, group[p].metric["value"]
        low, high = stats.get("min"), stats.get("max")
        ok = value is not None and low is not None and high is not None
        below.append(max(value - low, 0.0) if ok else 0.0)
        above.append(max(high - value, 0.0) if ok else 0.0)
    return [below, above] if any(below) or any(above) else None


def _trend(
    figure_cls: Any,
    test: str,
    metric: str,
    group: dict[str, _Entry],
    trends: dict[SeriesKey, list[TrendPoint]],
    fmt: ImageFormat,
) -> str:
    series, dropped = {}, 0
    for platform, entry in sorted(group.items()):
        found = trends.get((test, platform, metric), [])
        same = [p for p in found if p.config_hash == entry.record["workload"]["config_hash"] and p.value is not None]
        dropped += len(found) - len(same)
        if len(same) >= 2:
            series[platform] = same
    if not series:
        return ""
    fig = figure_cls(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    _plot_trends(ax, series, group)
    ax.set_ylabel(f"{metric} ({next(iter(group.values())).metric['unit']})")
    ax.set_title(f"{test}: {metric} over runs", fontsize=10)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    caption = "shaded: each platform's reference band" + (
        f"; {dropped} point(s) with another config hash left out" if dropped else ""
    )
    data = {platform: [p.value for p in points] for platform, points in series.items()}
    return _figure(fig, fmt, "trend", test, metric, data, caption)


def _plot_trends(ax: Any, series: dict[str, list[TrendPoint]], group: dict[str, _Entry]) -> None:
    finite: list[float] = []
    for i, (platform, points) in enumerate(series.items()):
        values = [float(p.value) for p in points if p.value is not None]
        change = _change(values)
        label = platform + ("" if change is None else f" ({change * 100:+.1f} % last run)")
        ax.plot([_when(p.created_at) for p in points], values, marker="o", color=f"C{i % 10}", label=label)
        bounds = (group[platform].verdict.get("lower_bound"), group[platform].verdict.get("upper_bound"))
        finite += values + [b for b in bounds if b is not None]
    span = (max(finite) - min(finite)) or abs(max(finite)) or 1.0
    low_y, high_y = min(finite) - 0.1 * span, max(finite) + 0.1 * span
    ax.set_ylim(low_y, high_y)
    for i, platform in enumerate(series):
        low, high = group[platform].verdict.get("lower_bound"), group[platform].verdict.get("upper_bound")
        if low is not None or high is not None:
            ax.axhspan(low_y if low is None else low, high_y if high is None else high, color=f"C{i % 10}", alpha=0.12)


def _figure(fig: Any, fmt: ImageFormat, kind: str, test: str, metric: str, data: object, caption: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=100, metadata={"Date": None} if fmt == "svg" else None)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    attrs = f"data-kind='{kind}' data-test='{_e(test)}' data-metric='{_e(metric)}' data-values='{_e(json.dumps(data))}'"
    alt = f"{kind} of {metric} for {test}"
    return (
        f"<figure {attrs}><img alt='{_e(alt)}' src='data:{_MIME[fmt]};base64,{encoded}'>"
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(latest: dict[SeriesKey, _Entry], trends: dict[SeriesKey, list[TrendPoint]], min_effect: float) -> str:
    header = ["test", "platform", "metric", "value", "unit", "spread", "reference band", "verdict", "vs previous run"]
    rows = [_table_row(key, latest[key], trends.get(key, []), min_effect) for key in sorted(latest)]
    head = "".join(f"<th>{h}</th>" for h in header)
    return f"<h2>Results</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _table_row(key: SeriesKey, entry: _Entry, points: list[TrendPoint], min_effect: float) -> str:
    metric, verdict = entry.metric, entry.verdict.get("verdict", "")
    same = [p.value for p in points if p.config_hash == entry.record["workload"]["config_hash"] and p.value is not None]
    change = _change([float(v) for v in same])
    css = ""
    if change is not None and abs(change) >= min_effect:
        css = "better" if (change > 0) == metric["higher_is_better"] else "worse"
    cells = [*key[:3], _num(metric["value"]), metric["unit"], spread_text(metric), band_text(entry.verdict)]
    tds = "".join(f"<td>{_e(c)}</td>" for c in cells)
    change_text = "" if change is None else f"{change * 100:+.1f} %"
    return f"<tr>{tds}<td class='{_e(verdict)}'>{_e(verdict)}</td><td class='{css}'>{change_text}</td></tr>"


def _change(values: Sequence[float]) -> float | None:
    if len(values) < 2 or values[-2] == 0:
        return None
    return (values[-1] - values[-2]) / abs(values[-2])


def _runs_text(reports: Iterable[dict[str, Any]]) -> str:
    runs = sorted(reports, key=lambda r: r["created_at"])
    return "Runs: " + ", ".join(f"{_e(r['run_id'])} ({_e(r['created_at'])})" for r in runs)


def _when(created_at: str) -> datetime:
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, tz=timezone.utc)


def _direction(metric: dict[str, Any]) -> str:
    return "higher" if metric["higher_is_better"] else "lower"


def _verdict_color(verdict: str | None) -> str:
    return {"pass": "#4c9a5f", "fail": "#c0392b", "missing": "#c0392b", "xfail": "#e0a030"}.get(
        verdict or "", "#5b7db1"
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
