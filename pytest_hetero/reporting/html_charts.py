"""The HTML report's figures: matplotlib on its own canvas (no pyplot: no global state, no display).

Two kinds: bars across platforms, coloured by verdict, with each bar's
reference band as dashed lines; and a line per platform over runs, its band
dashed in the line's colour. Every colour has a legend entry, beside the
axes; titles are wrapped and the figure is cropped to what was drawn
(``bbox_inches="tight"``), so nothing is clipped. Drawing is what costs time
(about 0.1 s a figure, and 0.5 s to import matplotlib), so the report draws
few figures.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pytest_hetero.errors import HeteroError
from pytest_hetero.reporting.html_model import CLASS_COLORS, verdict_class

__all__ = ["Bar", "Charts", "ImageFormat", "Line"]

ImageFormat = Literal["png", "svg"]
_MIME = {"png": "image/png", "svg": "image/svg+xml"}
#: Beside the axes, so that it never hides a bar or a point.
_LEGEND: dict[str, Any] = {"fontsize": 8, "loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "frameon": False}
_BAND_STYLE = {"colors": "#333333", "linestyles": "dashed", "linewidth": 1.2}


class Bar(NamedTuple):
    """One platform's bar: its value, the verdict word that colours it, its band and spread."""

    label: str
    value: float | None
    word: str | None
    low: float | None
    high: float | None
    below: float = 0.0  # spread of the repeats around the value
    above: float = 0.0


class Line(NamedTuple):
    """One platform's trend: its values, the times of their runs, its band."""

    label: str
    when: Sequence[datetime]
    values: Sequence[float]
    low: float | None
    high: float | None


class Charts:
    """Draws figures and returns them as ``data:`` URIs for an ``<img>``."""

    def __init__(self, image_format: ImageFormat = "png") -> None:
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise HeteroError("the HTML report needs matplotlib: pip install 'pytest-hetero[reports]'") from exc
        self._figure = Figure
        self._format = image_format

    def bars(self, title: str, ylabel: str, bars: Sequence[Bar]) -> str:
        """Bars across platforms, coloured by verdict; dashed: each bar's reference band."""
        fig, ax = self._new(max(4.5, 0.8 * len(bars) + 1.5))
        x = range(len(bars))
        colors = [CLASS_COLORS[verdict_class(b.word or "")][0] for b in bars]
        spread = [[b.below for b in bars], [b.above for b in bars]]
        has_spread = any(b.below or b.above for b in bars)
        heights = [0.0 if b.value is None else b.value for b in bars]
        drawn = ax.bar(x, heights, color=colors, yerr=spread if has_spread else None, capsize=4)
        ax.bar_label(drawn, labels=[_short(b.value) for b in bars], fontsize=7, padding=2)
        has_band = False
        for i, b in enumerate(bars):
            for bound in (b.low, b.high):
                if bound is not None:
                    ax.hlines(bound, i - 0.45, i + 0.45, **_BAND_STYLE)
                    has_band = True
        ax.set_xticks(list(x), [textwrap.fill(b.label, 14) for b in bars], fontsize=8)
        ax.margins(y=0.15)
        self._label(ax, title, ylabel)
        ax.legend(handles=self._bar_legend(bars, has_band, has_spread), **_LEGEND)
        return self._encode(fig)

    def trend(self, title: str, ylabel: str, lines: Sequence[Line]) -> str:
        """One line per platform, one x position per run (oldest left); dashed, in its colour: its band."""
        fig, ax = self._new(6.0)
        runs = sorted({when for line in lines for when in line.when})
        x_of = {when: i for i, when in enumerate(runs)}
        banded = False
        for i, line in enumerate(lines):
            color = f"C{i % 10}"
            ax.plot([x_of[w] for w in line.when], line.values, marker="o", color=color, label=line.label)
            for bound in (line.low, line.high):
                if bound is not None:
                    ax.axhline(bound, color=color, linestyle="dashed", linewidth=1, alpha=0.7)
                    banded = True
        every = max(1, len(runs) // 8)
        ax.set_xticks(range(0, len(runs), every), [runs[i].strftime("%m-%d %H:%M") for i in range(0, len(runs), every)])
        ax.set_xlim(-0.3, len(runs) - 0.7)
        ax.margins(y=0.15)
        self._label(ax, title, ylabel)
        handles, _ = ax.get_legend_handles_labels()
        if banded:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="#666666", linestyle="dashed", label="reference band (line colour)"))
        ax.legend(handles=handles, **_LEGEND)
        fig.autofmt_xdate()
        return self._encode(fig)

    def _new(self, width_in: float) -> tuple[Any, Any]:
        fig = self._figure(figsize=(width_in, 3.2))
        return fig, fig.add_subplot()

    @staticmethod
    def _label(ax: Any, title: str, ylabel: str) -> None:
        ax.set_title("\n".join(textwrap.fill(line, 60) for line in title.splitlines()), fontsize=10)
        ax.set_ylabel(textwrap.fill(ylabel, 24), fontsize=8)
        ax.tick_params(labelsize=8)

    def _bar_legend(self, bars: Sequence[Bar], has_band: bool, has_spread: bool) -> list[Any]:
        words: dict[str, list[str]] = {}
        for b in bars:
            word = b.word or "no verdict"
            names = words.setdefault(verdict_class(b.word or ""), [])
            if word not in names:
                names.append(word)
        handles = [self._patch(CLASS_COLORS[cls][0], " / ".join(names)) for cls, names in words.items()]
        if has_band:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="#333333", linestyle="dashed", label="reference band"))
        if has_spread:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="black", marker="|", linestyle="", label="min–max of repeats"))
        return handles

    @staticmethod
    def _patch(color: str, label: str, alpha: float = 1.0) -> Any:
        from matplotlib.patches import Patch

        return Patch(color=color, label=label, alpha=alpha)

    def _encode(self, fig: Any) -> str:
        from matplotlib import rc_context

        buffer = io.BytesIO()
        metadata = {"Date": None} if self._format == "svg" else None
        with rc_context({"svg.fonttype": "none"}):  # SVG text stays text: smaller, searchable, selectable
            fig.savefig(buffer, format=self._format, dpi=90, bbox_inches="tight", metadata=metadata)
        return f"data:{_MIME[self._format]};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _short(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
