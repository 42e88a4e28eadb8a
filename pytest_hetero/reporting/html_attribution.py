"""The HTML report's "Where the time went": per case, its time split as a stacked bar, and its data's filesystem.

The same figures as the terminal and Markdown wording (:mod:`.attribution`):
the parts of staging plus time to train the workload reported, each as a
share of the bar with its seconds in the tooltip, the dominant part named,
and the filesystem each data root lay on. Cases that reported no split (other
workloads, older reports) are left out; with none, the section is empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_hetero.reporting.attribution import data_text, dominant_text
from pytest_hetero.reporting.html_cells import esc

__all__ = ["attribution_section"]

#: Part of the time split -> bar colour (colour-blind safe, the Okabe-Ito palette).
_COLORS = {
    "compute": "#0072B2",
    "data_wait": "#E69F00",
    "staging": "#CC79A7",
    "communication": "#009E73",
    "other": "#999999",
}


def attribution_section(reports: Sequence[Mapping[str, Any]]) -> str:
    """``<section id='time-split'>`` with a row per case that reported its time split; "" when none did."""
    records = [r for report in reports for r in report.get("results", []) if dominant_text(r)]
    if not records:
        return ""
    legend = "".join(
        f"<span class='part' style='color:{c}'>&#9632; {esc(p.replace('_', ' '))}</span> " for p, c in _COLORS.items()
    )
    rows = "".join(_row(r) for r in sorted(records, key=lambda r: (r["test"], r["platform"]["name"])))
    head = "<tr><th>test</th><th>platform</th><th>time split</th><th>mostly</th><th>data</th></tr>"
    return (
        f"<section id='time-split'><h2>Where the time went</h2><p class='note'>{legend}</p>"
        f"<table class='time-split'><thead>{head}</thead><tbody>{rows}</tbody></table></section>"
    )


def _row(record: Mapping[str, Any]) -> str:
    split = record["workload"]["reported"]["time_split"]
    test, platform = record["test"], record["platform"]["name"]
    cells = f"<td>{esc(test)}</td><td>{esc(platform)}</td><td>{_bar(split)}</td>"
    cells += f"<td>{esc(dominant_text(record))}</td><td>{esc(data_text(record) or '–')}</td>"
    data = f"data-test='{esc(test)}' data-platform='{esc(platform)}' data-dominant='{esc(split['dominant'])}'"
    return f"<tr {data}>{cells}</tr>"


def _bar(split: Mapping[str, Any]) -> str:
    fractions: Mapping[str, float] = split.get("fractions") or {}
    seconds: Mapping[str, float] = split.get("seconds") or {}
    spans = []
    for part, color in _COLORS.items():
        share = float(fractions.get(part, 0.0))
        if share > 0:
            title = f"{part.replace('_', ' ')}: {float(seconds.get(part, 0.0)):.3g} s ({share:.0%})"
            spans.append(
                f"<span class='seg' data-part='{part}' title='{esc(title)}'"
                f" style='display:inline-block;height:12px;width:{share * 240:.1f}px;background:{color}'></span>"
            )
    return f"<span class='split' style='display:inline-block;white-space:nowrap'>{''.join(spans)}</span>"
