"""Small HTML pieces the report's sections share: escaped text, numbers, bands, the colour legend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_hetero.reporting.html_model import CLASS_COLORS, Cell, verdict_class

__all__ = ["NO_VERDICT", "band_text", "esc", "legend", "num", "spread_text", "swatch", "words_of"]

#: Shown for a value that nothing judged (grey, like any word without a class).
NO_VERDICT = "no verdict"


def esc(text: object) -> str:
    from html import escape  # loaded with the first HTML written: the terminal shares this module

    return escape(str(text), quote=True)


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def band_text(verdict: Mapping[str, Any]) -> str:
    """``[370, 450]``, ``≥ 13.35``, ``≤ 0.05``, ``= 6``; empty without bounds."""
    low, high = verdict.get("lower_bound"), verdict.get("upper_bound")
    if low is None and high is None:
        return ""
    if low is None or high is None:
        return f"≥ {num(low)}" if high is None else f"≤ {num(high)}"
    return f"= {num(low)}" if low == high else f"[{num(low)}, {num(high)}]"


def spread_text(metric: Mapping[str, Any]) -> str:
    """``cv 1.2 % (n=5)`` from a repeated metric's stats; empty for a single run."""
    stats = metric.get("stats") or {}
    if (stats.get("n") or 1) < 2:
        return ""
    cv = stats.get("cv")
    return f"cv {cv * 100:.1f} % (n={stats['n']})" if cv is not None else f"n={stats['n']}"


def swatch(css_class: str) -> str:
    return f"<span class='swatch' style='background:{CLASS_COLORS[css_class][0]}'></span>"


def legend(words: Iterable[str], extra: str = "") -> str:
    """One swatch per colour used, with the verdict words it stands for."""
    by_class: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        by_class.setdefault(verdict_class(word), []).append(word)
    swatches = "".join(f"{swatch(cls)}{esc(' / '.join(names))}" for cls, names in sorted(by_class.items()))
    return f"<p class='note legend'>Colours:{swatches or ' none'}{extra}</p>"


def words_of(cells: Iterable[Cell]) -> list[str]:
    """Every verdict word of these cells, and ``no verdict`` for a cell without one."""
    return [w for cell in cells for w in cell.words or [NO_VERDICT]]
