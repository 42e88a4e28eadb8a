"""The report's folded part: per test, its metrics other than the headline one; then every value in one table.

Per test, one small-multiples table rather than a figure per metric (drawing
figures is what made the report slow): a row per metric, a cell per platform
with a bar as long as the value relative to the row's largest, coloured by
verdict, its band, and, where the series has two comparable runs, a
sparkline of its values over runs and the change since the previous run.
A metric that is zero or missing on every platform gets no row; it is named
under the table. Cells carry ``data-platform``, ``data-value`` and
``data-trend`` (JSON) for tools and tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pytest_hetero.reporting.html_cells import NO_VERDICT, band_text, esc, legend, num, spread_text, words_of
from pytest_hetero.reporting.html_model import (
    CLASS_COLORS,
    Cell,
    SeriesKey,
    View,
    change,
    direction,
    is_empty,
    verdict_class,
    worst_word,
)

__all__ = ["details_section"]

_KEY = (
    "; bar: the value relative to the largest of its row; line: the value over runs with the same config hash,"
    " then the change since the previous run (bold red: worse by at least the minimum effect)"
)


def details_section(view: View, min_effect: float) -> str:
    """``<section id='details'>``: a ``<details>`` per test with other metrics, and one with every value."""
    parts = ["<section id='details'><h2>All metrics</h2>"]
    parts.append(legend(words_of(view.latest.values()), _KEY))
    for test in view.tests:
        others = [m for m in view.metrics(test) if m != view.headlines[test]]
        if others:
            summary = f"{esc(test)}: {len(others)} more metric(s)"
            parts.append(f"<details><summary>{summary}</summary>{_small_multiples(view, test, others, min_effect)}")
            parts.append("</details>")
    parts.append(f"<details><summary>Every value ({len(view.latest)})</summary>{_values(view, min_effect)}</details>")
    return "".join(parts) + "</section>"


def _small_multiples(view: View, test: str, metrics: list[str], min_effect: float) -> str:
    platforms = [p for p in view.platforms if any((test, p, m) in view.latest for m in metrics)]
    drawn = [m for m in metrics if not is_empty(c.value for c in view.cells(test, m).values())]
    head = "".join(f"<th>{esc(h)}</th>" for h in ["metric", *platforms])
    rows = "".join(_row(view, test, metric, platforms, min_effect) for metric in drawn)
    table = f"<table class='small-multiples' data-test='{esc(test)}'><thead><tr>{head}</tr></thead>"
    table += f"<tbody>{rows}</tbody></table>"
    empty = [m for m in metrics if m not in drawn]
    if empty:
        table += f"<p class='note'>Zero or missing on every platform, not drawn: {esc(', '.join(empty))}.</p>"
    return table


def _row(view: View, test: str, metric: str, platforms: list[str], min_effect: float) -> str:
    group = view.cells(test, metric)
    widest = max(abs(c.value or 0.0) for c in group.values())
    better = direction(group.values())
    unit = next(iter(group.values())).metric["unit"]
    notes = ", ".join(n for n in (unit, better) if n)
    th = f"<th>{esc(metric)}<br><span class='band'>{esc(notes)}</span></th>"
    tds = "".join(_cell_td(view, (test, p, metric), widest, better, min_effect) for p in platforms)
    return f"<tr data-metric='{esc(metric)}'>{th}{tds}</tr>"


def _cell_td(view: View, key: SeriesKey, widest: float, better: str, min_effect: float) -> str:
    cell = view.latest.get(key)
    if cell is None:
        return "<td class='note'>–</td>"
    word = worst_word(cell.words) or ""
    color = CLASS_COLORS[verdict_class(word)][0]
    width = 100.0 * abs(cell.value or 0.0) / widest if widest else 0.0
    bar = f"<div class='bar' style='width:{width:.0f}%;background:{color}'></div>"
    lines = [f"{num(cell.value)} <span class='word'>{esc(' · '.join(cell.words) or NO_VERDICT)}</span>"]
    band = band_text(cell.verdict)
    lines += [f"<span class='band'>band {band}</span>"] * bool(band)
    points, _ = view.comparable(key)
    values = [float(p.value) for p in points if p.value is not None]
    if len(values) >= 2:
        shift = change(values)
        css = _change_class(shift, better, min_effect)
        shown = "" if shift is None else f"{shift * 100:+.1f} %"
        lines.append(f"{_sparkline(values)} <span class='{css}'>{shown}</span>")
    attrs = f"data-platform='{esc(key[1])}' data-value='{json.dumps(cell.value)}' data-trend='{json.dumps(values)}'"
    return f"<td {attrs} title='{esc(cell.verdict.get('message', ''))}'>{bar}{'<br>'.join(lines)}</td>"


def _sparkline(values: Sequence[float], width: int = 80, height: int = 18) -> str:
    low, high = min(values), max(values)
    span = high - low
    if not span:  # a flat line, in the middle
        low, span = low - 1.0, 2.0
    step = (width - 4) / (len(values) - 1)
    xy = [(2 + i * step, height - 2 - (v - low) / span * (height - 4)) for i, v in enumerate(values)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    last_x, last_y = xy[-1]
    return (
        f"<svg class='spark' width='{width}' height='{height}' role='img' aria-label='values over runs'>"
        f"<polyline points='{points}' fill='none' stroke='#555' stroke-width='1.2'/>"
        f"<circle cx='{last_x:.1f}' cy='{last_y:.1f}' r='2' fill='#222'/></svg>"
    )


def _change_class(shift: float | None, better: str, min_effect: float) -> str:
    """``better``, ``worse`` or empty: below the minimum effect, or a metric with no good direction."""
    if shift is None or abs(shift) < min_effect or better not in ("higher is better", "lower is better"):
        return ""
    return "better" if (shift > 0) == (better == "higher is better") else "worse"


def _values(view: View, min_effect: float) -> str:
    several = len(view.runs) > 1
    header = ["run"] * several + ["test", "platform", "metric", "value", "unit", "better", "spread", "band"]
    head = "".join(f"<th>{h}</th>" for h in [*header, "verdict", "vs previous run"])
    rows = "".join(_values_row(view, key, several, min_effect) for key in sorted(view.latest))
    return f"<table class='results'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _values_row(view: View, key: SeriesKey, several: bool, min_effect: float) -> str:
    cell: Cell = view.latest[key]
    points, _ = view.comparable(key)
    shift = change([float(p.value) for p in points if p.value is not None])
    better = direction(view.cells(key[0], key[2]).values())
    texts = [cell.run_id] * several + [*key, num(cell.value), cell.metric["unit"], better]
    texts += [spread_text(cell.metric), band_text(cell.verdict)]
    tds = "".join(f"<td>{esc(t)}</td>" for t in texts)
    verdict = (
        f"<td class='v-{verdict_class(worst_word(cell.words) or '')}'>{esc(' · '.join(cell.words) or NO_VERDICT)}</td>"
    )
    shown = "" if shift is None else f"{shift * 100:+.1f} %"
    return f"<tr>{tds}{verdict}<td class='{_change_class(shift, better, min_effect)}'>{shown}</td></tr>"
