"""Inline SVG charts for the ranking page: no images to decode, no plotting library, readable in any browser.

``scatter``: one labelled point per result on time (x) against cost (y),
the Pareto front joined by a line. ``lines``: y against x per series (the
parallel efficiency of a scaling sweep against the node count).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import NamedTuple

__all__ = ["Point", "Series", "lines", "scatter"]

WIDTH, HEIGHT = 760, 360
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 260, 20, 50
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


class Point(NamedTuple):
    label: str
    x: float
    y: float
    on_front: bool = False


class Series(NamedTuple):
    label: str
    points: Sequence[tuple[float, float]]


class _Axes:
    def __init__(
        self, xs: Sequence[float], ys: Sequence[float], y_floor: float | None = None, x_ticks: Sequence[float] = ()
    ) -> None:
        self.x0, self.x1 = _span(xs)
        self.y0, self.y1 = _span(ys if y_floor is None else [*ys, y_floor])
        self.x_ticks = list(x_ticks) or [self.x0 + (self.x1 - self.x0) * i / 4 for i in range(5)]

    def x(self, value: float) -> float:
        return _LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - _BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - _TOP - _BOTTOM)

    def frame(self, xlabel: str, ylabel: str) -> list[str]:
        bottom, right = HEIGHT - _BOTTOM, WIDTH - _RIGHT
        parts = [f'<rect x="{_LEFT}" y="{_TOP}" width="{right - _LEFT}" height="{bottom - _TOP}" class="plot"/>']
        for xv in self.x_ticks:
            parts.append(f'<text x="{self.x(xv):.1f}" y="{bottom + 16}" text-anchor="middle">{xv:.3g}</text>')
        for i in range(5):
            yv = self.y0 + (self.y1 - self.y0) * i / 4
            parts.append(f'<text x="{_LEFT - 6}" y="{self.y(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
        parts.append(f'<text x="{(_LEFT + right) / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(xlabel)}</text>')
        parts.append(
            f'<text transform="translate(16,{(_TOP + bottom) / 2}) rotate(-90)" text-anchor="middle">'
            f"{escape(ylabel)}</text>"
        )
        return parts


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    return low - pad, high + pad


def _svg(title: str, css_class: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg class="{css_class}" role="img" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{escape(title)}</title>\n{body}\n</svg>'
    )


def scatter(title: str, xlabel: str, ylabel: str, points: Sequence[Point]) -> str:
    """Points labelled beside the plot in a legend; the front's points joined in order of x."""
    axes = _Axes([p.x for p in points], [p.y for p in points])
    parts = axes.frame(xlabel, ylabel)
    front = sorted((p for p in points if p.on_front), key=lambda p: p.x)
    if len(front) > 1:
        path = " ".join(f"{axes.x(p.x):.1f},{axes.y(p.y):.1f}" for p in front)
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#333" stroke-dasharray="4 3"/>')
    for index, p in enumerate(points):
        color = _COLORS[index % len(_COLORS)]
        shape, ring = ("front-point", ' stroke="#000" stroke-width="2"') if p.on_front else ("point", "")
        parts.append(
            f'<circle class="{shape}" cx="{axes.x(p.x):.1f}" cy="{axes.y(p.y):.1f}" r="6" fill="{color}"{ring}>'
            f"<title>{escape(p.label)}: {p.x:.4g}, {p.y:.4g}</title></circle>"
        )
        parts += _legend_entry(index, color, p.label + (" *" if p.on_front else ""))
    parts.append(
        f'<text class="legend" x="{WIDTH - _RIGHT + 12}" y="{HEIGHT - _BOTTOM}">* ringed: on the Pareto front</text>'
    )
    return _svg(title, "chart pareto", parts)


def lines(title: str, xlabel: str, ylabel: str, series: Sequence[Series], y_floor: float | None = None) -> str:
    """One line with markers per series."""
    xs = [x for s in series for x, _ in s.points]
    axes = _Axes(xs, [y for s in series for _, y in s.points], y_floor, x_ticks=sorted(set(xs)))
    parts = axes.frame(xlabel, ylabel)
    for index, s in enumerate(series):
        color = _COLORS[index % len(_COLORS)]
        path = " ".join(f"{axes.x(x):.1f},{axes.y(y):.1f}" for x, y in s.points)
        parts.append(f'<polyline class="series" points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in s.points:
            parts.append(f'<circle class="point" cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="4" fill="{color}"/>')
        parts += _legend_entry(index, color, s.label)
    return _svg(title, "chart scaling", parts)


def _legend_entry(index: int, color: str, label: str) -> list[str]:
    x, y = WIDTH - _RIGHT + 12, _TOP + 8 + 18 * index
    return [
        f'<rect class="legend-key" x="{x}" y="{y}" width="10" height="10" fill="{color}"/>',
        f'<text class="legend" x="{x + 14}" y="{y + 9}">{escape(label[:40])}</text>',
    ]
