"""What the HTML report shows, read from JSON reports: cells, headline metrics, verdict classes, directions.

Verdict words come from the records (``verdicts``: the reference check,
``comparisons``: the history gate). Each word falls in one class, which picks
its colour; a word this module does not know (a kind added later) is
``neutral``, never an error:

====================  =======  ==============================================
words                 class    colour
====================  =======  ==============================================
pass, improvement     good     green
fail, missing,        bad      red
regression, error
xfail, xpassed,       warn     amber
contended
anything else         neutral  grey (no-reference, unchanged, insufficient-data, ...)
====================  =======  ==============================================
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "CLASS_COLORS",
    "Cell",
    "SeriesKey",
    "TrendPoint",
    "View",
    "build_view",
    "change",
    "direction",
    "headline_metric",
    "is_empty",
    "latest_cells",
    "run_cells",
    "trends",
    "verdict_class",
    "worst_word",
]

SeriesKey = tuple[str, str, str]  # test, platform, metric

_CLASSES = {
    "pass": "good",
    "improvement": "good",
    "fail": "bad",
    "missing": "bad",
    "regression": "bad",
    "error": "bad",
    "failed": "bad",
    "xfail": "warn",
    "xpassed": "warn",
    "contended": "warn",  # measured while another job shared its resource: not judged
}
_SEVERITY = {"bad": 3, "warn": 2, "good": 1, "neutral": 0}
#: class → (strong colour for charts and swatches, light tint for table cells)
CLASS_COLORS = {
    "good": ("#3d8b4f", "#e2f3e5"),
    "bad": ("#c0392b", "#fbe1dd"),
    "warn": ("#d68910", "#fcefd6"),
    "neutral": ("#8a8f98", "#f0f1f3"),
}
#: Units that count things: neither higher nor lower is better, the reference pins them ("exact").
_COUNT_UNITS = frozenset({"steps", "step", "epochs", "epoch", "samples", "count", "iterations", "tokens", "batches"})


class TrendPoint(NamedTuple):
    """One run's value of one series (from a report or the history store)."""

    run_id: str
    created_at: str
    value: float | None
    config_hash: str


class Cell(NamedTuple):
    """One metric of one record in one run, with its verdicts (empty dicts when there are none)."""

    run_id: str
    record: dict[str, Any]
    metric: dict[str, Any]
    verdict: dict[str, Any]
    comparison: dict[str, Any]

    @property
    def value(self) -> float | None:
        value: float | None = self.metric.get("value")
        return value

    @property
    def words(self) -> list[str]:
        """The verdict words, reference check first."""
        return [str(w) for w in (self.verdict.get("verdict"), self.comparison.get("verdict")) if w]

    @property
    def contended(self) -> bool:
        return bool((self.record.get("contention") or {}).get("contended"))


class View(NamedTuple):
    """Everything the page shows, read once from the reports."""

    runs: list[dict[str, Any]]  # oldest first
    latest: dict[SeriesKey, Cell]  # the newest value of each series
    trends: dict[SeriesKey, list[TrendPoint]]
    tests: list[str]
    platforms: list[str]
    headlines: dict[str, str | None]  # test → its headline metric

    def cells(self, test: str, metric: str) -> dict[str, Cell]:
        """The newest cell of each platform."""
        return {p: c for (t, p, m), c in sorted(self.latest.items()) if t == test and m == metric}

    def metrics(self, test: str) -> list[str]:
        return sorted({m for (t, _, m) in self.latest if t == test})

    def comparable(self, key: SeriesKey) -> tuple[list[TrendPoint], int]:
        """The series' measured points with the newest value's config hash, and how many others were left out."""
        config_hash = self.latest[key].record["workload"]["config_hash"]
        found = self.trends.get(key, [])
        same = [p for p in found if p.config_hash == config_hash and p.value is not None]
        return same, len(found) - len(same)


def build_view(reports: Sequence[dict[str, Any]], history: Mapping[SeriesKey, Sequence[TrendPoint]]) -> View:
    runs = sorted(reports, key=lambda r: r["created_at"])
    records = [rec for report in runs for rec in report["results"]]
    tests = sorted({rec["test"] for rec in records})
    headlines = {
        test: headline_metric(m for rec in records if rec["test"] == test for m in rec["metrics"].values())
        for test in tests
    }
    platforms = sorted({rec["platform"]["name"] for rec in records})
    return View(runs, latest_cells(runs), trends(runs, history), tests, platforms, headlines)


def verdict_class(word: str) -> str:
    """good, bad, warn or neutral (unknown words)."""
    return _CLASSES.get(word, "neutral")


def worst_word(words: Iterable[str]) -> str | None:
    """The word whose class is the most severe (the first of equals); None when there is none."""
    found = list(words)
    return max(found, key=lambda w: _SEVERITY[verdict_class(w)]) if found else None


def run_cells(report: dict[str, Any]) -> dict[SeriesKey, Cell]:
    """Every metric of one report, keyed by test, platform and metric."""
    cells: dict[SeriesKey, Cell] = {}
    for record in report["results"]:
        verdicts = _by_metric(record.get("verdicts"))
        comparisons = _by_metric(record.get("comparisons"))
        for name, metric in record["metrics"].items():
            key = (record["test"], record["platform"]["name"], name)
            cells[key] = Cell(report["run_id"], record, metric, verdicts.get(name, {}), comparisons.get(name, {}))
    return cells


def _by_metric(entries: Iterable[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {e["metric"]: e for e in entries or () if isinstance(e, dict) and "metric" in e}


def latest_cells(runs: Sequence[dict[str, Any]]) -> dict[SeriesKey, Cell]:
    """The newest value of every (test, platform, metric) across runs ordered oldest first."""
    latest: dict[SeriesKey, Cell] = {}
    for report in runs:
        latest.update(run_cells(report))
    return latest


def headline_metric(metrics: Iterable[dict[str, Any]]) -> str | None:
    """``throughput_sps`` when present, else the first gated higher-is-better rate, else the first metric."""
    first: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        first.setdefault(metric["name"], metric)
    if "throughput_sps" in first:
        return "throughput_sps"
    for name, metric in first.items():
        if metric.get("gated", True) and metric["higher_is_better"] and not _is_count(metric):
            return name
    return next(iter(first), None)


def direction(cells: Iterable[Cell]) -> str:
    """ "higher is better", "lower is better", "exact" (a pinned count) or "" (a count without a band).

    A reference band open on one side says which side is good; otherwise the
    metric's ``higher_is_better`` does, except for counts (steps, epochs),
    where neither is.
    """
    found = list(cells)
    if not found:
        return ""
    bands = [_bounds(c.verdict) for c in found if _bounds(c.verdict) != (None, None)]
    if bands and all(low is not None and low == high for low, high in bands):
        return "exact"
    if _is_count(found[0].metric):
        return ""
    if bands and all(high is None for _, high in bands):
        return "higher is better"
    if bands and all(low is None for low, _ in bands):
        return "lower is better"
    return "higher is better" if found[0].metric["higher_is_better"] else "lower is better"


def _bounds(verdict: Mapping[str, Any]) -> tuple[float | None, float | None]:
    return verdict.get("lower_bound"), verdict.get("upper_bound")


def _is_count(metric: Mapping[str, Any]) -> bool:
    return str(metric.get("unit", "")).strip() in _COUNT_UNITS


def change(values: Sequence[float]) -> float | None:
    """The last value relative to the one before; None without two values or from zero."""
    if len(values) < 2 or values[-2] == 0:
        return None
    return (values[-1] - values[-2]) / abs(values[-2])


def is_empty(values: Iterable[float | None]) -> bool:
    """Nothing to draw: every value is missing or zero."""
    return all(not v for v in values)


def trends(
    runs: Sequence[dict[str, Any]], history: Mapping[SeriesKey, Sequence[TrendPoint]]
) -> dict[SeriesKey, list[TrendPoint]]:
    """Every series' points from the history and the runs, oldest first; a run id counts once."""
    points: dict[SeriesKey, dict[str, TrendPoint]] = defaultdict(dict)
    for key, found in history.items():
        points[key].update((p.run_id, p) for p in found)
    for report in runs:
        for key, cell in run_cells(report).items():
            config_hash = cell.record["workload"]["config_hash"]
            points[key][report["run_id"]] = TrendPoint(report["run_id"], report["created_at"], cell.value, config_hash)
    return {key: sorted(by_run.values(), key=lambda p: p.created_at) for key, by_run in points.items()}
