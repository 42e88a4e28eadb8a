"""The ranking as one self-contained HTML page: tables, the Pareto chart of time against cost, scaling plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_hetero.decide.rank import WorkloadRanking, rank
from pytest_hetero.decide.render import COLUMNS, rows
from pytest_hetero.decide.svg import Point, Series, lines, scatter

__all__ = ["decide_section", "render_rank_html"]

#: The page's rules, scoped to the section when it is part of the run report.
_STYLE_SCOPED = (
    "#decide .estimated{color:#8a5a00;font-style:italic}#decide .answer{font-weight:600;background:#eef3fb;"
    "padding:.5em}#decide .refused{color:#a00}#decide svg.chart{border:1px solid #ddd;margin:.5em 0;font-size:11px}"
    "#decide svg .plot{fill:#fafafa;stroke:#999}#decide tr.first td{background:#e6f4e6}"
)
_SCALING_CAPTION = (
    "Parallel efficiency = speed-up (throughput against the smallest count) / ratio of accelerators used "
    "(nodes x per node); 1 is perfect."
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
td.text, th { text-align: left; }
tr.first td { background: #e6f4e6; }
.estimated { color: #8a5a00; font-style: italic; }
.answer { font-weight: 600; background: #eef3fb; padding: 0.5em; }
.refused { color: #a00; }
svg.chart { border: 1px solid #ddd; margin: 0.5em 0; font-size: 11px; }
svg .plot { fill: #fafafa; stroke: #999; }
"""


def render_rank_html(rankings: Sequence[WorkloadRanking]) -> str:
    body = [f'<section class="workload" id="w{i}">{_section(r)}</section>' for i, r in enumerate(rankings)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>pytest-hetero ranking</title>'
        f"<style>{_STYLE}</style></head><body><h1>Platform ranking</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def decide_section(reports: Sequence[Mapping[str, Any]]) -> str:
    """For the run report's HTML: the ranking by cost of records that carry ``extra.decide`` (``--hetero-costs``).

    Empty when no record does.
    """
    if not any((r.get("extra") or {}).get("decide") for rep in reports for r in rep.get("results", [])):
        return ""
    rankings = rank([(str(rep.get("run_id", i)), rep) for i, rep in enumerate(reports)], None, "cost")
    body = "".join(f'<section class="workload">{_section(r, level=3)}</section>' for r in rankings)
    return f'<div id="decide"><style>{_STYLE_SCOPED}</style><h2>Cost and energy</h2>{body}</div>'


def _section(ranking: WorkloadRanking, level: int = 2) -> str:
    parts = [
        f"<h{level}>{escape(ranking.test)}</h{level}>",
        f"<p>Objective: <b>{ranking.objective}</b>; workload fingerprint <code>{escape(ranking.fingerprint)}</code>. "
        "Only results of this fingerprint are ranked; energy in <span class=estimated>italics</span> is estimated "
        "(nominal power x time), the rest measured.</p>",
        f'<p class="answer">{escape(ranking.answer)}</p>',
        _table(ranking),
        _pareto(ranking),
        _scaling(ranking),
    ]
    if ranking.refused:
        items = "".join(
            f"<li><b>{escape(r.platform)}</b> ({escape(r.report)}): {escape(r.reason)}</li>" for r in ranking.refused
        )
        parts.append(f'<p><b>Refused</b></p><ul class="refused">{items}</ul>')
    return "\n".join(parts)


def _table(ranking: WorkloadRanking) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = []
    for cells in rows(ranking):
        tds = []
        for column in COLUMNS:
            css = "text" if column in ("platform", "energy", "currency", "note") else ""
            if column in ("energy_j", "energy") and cells["energy"] == "estimated":
                css += " estimated"
            tds.append(f'<td class="{css.strip()}">{escape(cells[column])}</td>')
        body.append(f'<tr class="{"first" if cells["rank"] == "1" else ""}">{"".join(tds)}</tr>')
    return f'<table class="ranking"><tr>{head}</tr>{"".join(body)}</table>'


def _pareto(ranking: WorkloadRanking) -> str:
    front = {id(c) for c in ranking.front}
    points = [
        Point(c.label, c.figures.time_s, c.figures.cost, id(c) in front)
        for c in ranking.candidates
        if c.figures.time_s is not None and c.figures.cost is not None
    ]
    if not points:
        return "<p>No Pareto chart: no result has both a time and a cost (give --costs FILE).</p>"
    currency = ranking.candidates[0].figures.currency or ""
    chart = scatter(f"{ranking.test}: time against cost", "time per run (s)", f"cost per run ({currency})", points)
    caption = "The Pareto front (ringed, dashed): no other result is both faster and cheaper."
    return f'<figure class="pareto">{chart}<figcaption>{caption}</figcaption></figure>'


def _scaling(ranking: WorkloadRanking) -> str:
    if not ranking.scaling:
        return ""
    series = [
        Series(
            platform, [(p.nodes * p.accelerators_per_node, p.efficiency) for p in points if p.efficiency is not None]
        )
        for platform, points in ranking.scaling.items()
    ]
    series = [s for s in series if s.points]
    if not series:
        return ""
    chart = lines(
        f"{ranking.test}: parallel efficiency",
        "accelerators (nodes x per node)",
        "parallel efficiency",
        series,
        y_floor=0.0,
    )
    return f'<figure class="scaling">{chart}<figcaption>{_SCALING_CAPTION}</figcaption></figure>'
