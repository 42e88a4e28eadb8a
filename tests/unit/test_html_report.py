"""The HTML report's structure: summary first, the matrix, headline charts only, the rest folded, no empty charts."""

from __future__ import annotations

import base64
import importlib
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fake_reports import record, report, write
from html_reports import M, four_workloads, rec

from pytest_hetero.reporting.html import render_html
from pytest_hetero.reporting.html_model import CLASS_COLORS, Cell, direction, headline_metric


class Page(HTMLParser):
    """Start tags in document order, each with its attributes and its whole text."""

    _VOID = frozenset({"br", "img", "meta", "circle", "polyline"})

    def __init__(self, text: str) -> None:
        super().__init__()
        self.html = text
        self.tags: list[tuple[str, dict[str, str], list[str]]] = []
        self.folded: list[str] = []  # tags inside <details>
        self._open: list[int] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if any(self.tags[i][0] == "details" for i in self._open):
            self.folded.append(tag)
        self.tags.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in self._VOID:
            self._open.append(len(self.tags) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self.tags[self._open.pop()][0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for i in self._open:
            self.tags[i][2].append(data)

    def index(self, tag: str, **attrs: str) -> int:
        return next(i for i, (t, a, _) in enumerate(self.tags) if t == tag and a.items() >= attrs.items())

    def all(self, tag: str, **attrs: str) -> list[tuple[dict[str, str], str]]:
        return [(a, "".join(text)) for t, a, text in self.tags if t == tag and a.items() >= attrs.items()]


class Table(HTMLParser):
    """The cells of the first ``<table>`` of a class: per row, (tag, attributes, text) of each cell."""

    def __init__(self, text: str, css: str) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, dict[str, str], str]]] = []
        self._css, self._state, self._in_cell = css, "before", False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table" and self._state == "before" and found.get("class") == self._css:
            self._state = "in"
        elif self._state == "in" and tag == "tr":
            self.rows.append([])
        elif self._state == "in" and tag in ("td", "th"):
            self.rows[-1].append((tag, found, ""))
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._state == "in":
            self._state = "after"
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self._state == "in" and self._in_cell:
            tag, attrs, text = self.rows[-1][-1]
            self.rows[-1][-1] = (tag, attrs, text + data)

    def header(self) -> list[str]:
        return [text for _, _, text in self.rows[0]]


def matrix_cells(html: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(test, platform) → (css class, text) of the summary matrix (the newest run's row wins)."""
    table = Table(html, "matrix")
    header = table.header()
    cells = {}
    for row in table.rows[1:]:
        named = dict(zip(header, row, strict=True))
        for name, (_, attrs, text) in named.items():
            if name not in ("run", "test", "headline metric"):
                cells[(named["test"][2], name)] = (attrs.get("class", ""), text)
    return cells


def decode(src: str) -> bytes:
    return base64.b64decode(src.partition(";base64,")[2])


def test_the_summary_comes_first_then_one_chart_per_workload() -> None:
    page = Page(render_html([four_workloads(slowdown=0.5)]))
    summary, matrix = page.index("section", id="summary"), page.index("table", **{"class": "matrix"})
    first_figure = page.index("figure")
    assert summary < matrix < first_figure
    assert page.index("section", id="platforms") < first_figure < page.index("section", id="details")
    figures = page.all("figure")
    assert [(a["data-kind"], a["data-metric"]) for a, _ in figures] == [("bars", "throughput_sps")] * 4
    run, _, _, status, _, verdicts = (text for _, _, text in Table(page.html, "runs").rows[1])
    assert (run, status) == ("20260501-100000-aaaaaa", "6 · performance failures only")
    assert verdicts == "fail 8pass 64"  # every verdict of the run, counted


def test_the_matrix_shows_each_headline_value_coloured_by_verdict_with_its_band() -> None:
    html = render_html([four_workloads(slowdown=0.5)])
    cells = matrix_cells(html)
    assert len(cells) == 12
    css, text = cells[("test_resnet50", "mi250")]
    assert css == "v-bad" and text.startswith("323 fail") and "band ≥ 516.8" in text
    css, text = cells[("test_resnet50", "a100")]
    assert css == "v-good" and text.startswith("912 pass")
    rows = Table(html, "matrix").rows
    assert rows[0][0][2] == "test" and rows[1][1][2] == "throughput_sps" + "samples/s, higher is better"


def test_a_missing_case_and_a_failed_stage_show_in_the_matrix() -> None:
    broken = rec("test_unet3d", "mi250")
    broken["outcome"], broken["error"] = "error", {"stage": "launch", "message": "sbatch: rejected\nmore"}
    runs = report([rec("test_unet3d", "a100", throughput_sps=M(9.0)), broken, rec("test_other", "cpu", x=M(1.0))])
    html = render_html([runs])
    cells = matrix_cells(html)
    assert cells[("test_unet3d", "mi250")] == ("v-bad", "error (launch)")
    assert cells[("test_unet3d", "a100")] == ("v-neutral", "9 no verdict")
    assert cells[("test_unet3d", "cpu")] == ("note", "–")
    assert "<li><code>benchmarks/test_bench.py::test_unet3d[mi250]</code>: launch: sbatch: rejected</li>" in html


def test_the_other_metrics_are_folded_away_and_zero_metrics_are_not_drawn() -> None:
    page = Page(render_html([four_workloads()]))
    assert "figure" not in page.folded and "img" not in page.folded
    tables = page.all("table", **{"class": "small-multiples"})
    assert len(tables) == 4
    rows = [a["data-metric"] for a, _ in page.all("tr") if "data-metric" in a]
    assert rows[:5] == ["epochs", "peak_rss_mb", "steady_steps", "step_time_ms", "time_to_train_s"]
    assert "comm_time_s" not in rows and "data_wait_fraction" not in rows
    notes = [text for a, text in page.all("p", **{"class": "note"})]
    assert notes.count("Zero or missing on every platform, not drawn: comm_time_s, data_wait_fraction.") == 4
    assert "comm_time_s" in [row[2][2] for row in Table(page.html, "results").rows[1:]]  # still listed


def test_a_headline_that_is_zero_everywhere_is_not_drawn() -> None:
    zero = report([rec("test_a", p, throughput_sps=M(0.0)) for p in ("cpu", "gpu")])
    page = Page(render_html([zero]))
    assert page.all("figure") == []
    assert any("zero or missing on every platform" in text for _, text in page.all("p"))


def test_every_colour_has_a_legend_entry() -> None:
    html = render_html([four_workloads(slowdown=0.5)], image_format="svg")
    for section in html.split("<section")[1:]:
        page = Page(section)
        used = {a["class"] for a, _ in page.all("td") if a.get("class", "").startswith("v-")}
        used |= {_class_of(a["style"]) for a, _ in page.all("div", **{"class": "bar"})}
        swatches = {_class_of(a["style"]) for a, _ in page.all("span", **{"class": "swatch"})}
        assert used <= swatches, section[:40]
    summary = Page(html).all("p", **{"class": "note legend"})[0][1]
    assert "fail" in summary and "pass" in summary and "no verdict" not in summary  # the headline has verdicts
    details = Page(html).all("p", **{"class": "note legend"})[1][1]
    assert "no verdict" in details  # time_to_train_s has none
    svg = decode(Page(html).all("img")[0][0]["src"]).decode()
    for label in ("pass", "fail", "reference band", "higher is better"):
        assert label in svg, label


def _class_of(style: str) -> str:
    """The verdict class whose strong colour a style uses."""
    return next(f"v-{cls}" for cls, (strong, _) in CLASS_COLORS.items() if strong in style)


def test_directions_counts_are_exact_or_nothing() -> None:
    def cells(metric: M) -> list[Cell]:
        found = rec("t", "p", m=metric)
        return [Cell("r", found, found["metrics"]["m"], (found["verdicts"] or [{}])[0], {})]

    assert direction(cells(M(2.0, "epochs", False, (2.0, 2.0)))) == "exact"
    assert direction(cells(M(6.0, "steps", True))) == ""
    assert direction(cells(M(6.0, "s", True, (None, 8.0)))) == "lower is better"  # the band's open side wins
    assert direction(cells(M(6.0, "s", False, (1.0, 8.0)))) == "lower is better"
    assert direction(cells(M(6.0, "TFLOP/s", True))) == "higher is better"
    page = render_html([four_workloads()])
    assert "epochs</th>" not in page and "epochs<br><span class='band'>epochs, exact</span>" in page


def test_the_headline_is_throughput_else_the_first_gated_higher_is_better_rate() -> None:
    def metric(name: str, unit: str, higher: bool, gated: bool = True) -> dict[str, Any]:
        return {"name": name, "unit": unit, "higher_is_better": higher} | ({} if gated else {"gated": False})

    found = [metric("step_time_ms", "ms", False), metric("steady_steps", "steps", True)]
    found += [metric("io_mbps", "MB/s", True, gated=False), metric("model_tflops", "TFLOP/s", True)]
    assert headline_metric(found) == "model_tflops"
    assert headline_metric([*found, metric("throughput_sps", "samples/s", True)]) == "throughput_sps"
    assert headline_metric(found[:2]) == "step_time_ms"
    assert headline_metric([]) is None


def test_unknown_verdict_words_and_extra_fields_render_neutrally() -> None:
    document = four_workloads()
    first = document["results"][0]
    first["verdicts"][0] |= {"verdict": "pass-contended", "band": "pass", "gate": None, "host_bound": True}
    first["comparisons"] = [
        {"metric": "step_time_ms", "verdict": "regression", "message": "step_time_ms: +12 %", "extra": 1},
        {"verdict": "orphan without a metric"},
    ]
    first["contention"] = {"contended": True, "future_field": [1, 2]}
    document["results"][1]["verdicts"][0]["verdict"] = "combined:fail"
    html = render_html([document])
    cells = matrix_cells(html)
    css, text = cells[(first["test"], first["platform"]["name"])]
    assert css == "v-neutral" and "pass-contended" in text and "⚑ contended" in text
    assert cells[(first["test"], document["results"][1]["platform"]["name"])][0] == "v-neutral"
    runs = Table(html, "runs").rows[1][5][2]
    assert "regression 1" in runs and "pass-contended 1" in runs


def test_several_runs_get_a_run_column_and_trends() -> None:
    old = four_workloads(run_id="run-old", created_at="2026-05-01T10:00:00Z")
    new = four_workloads(0.5, run_id="run-new", created_at="2026-05-02T10:00:00Z")
    page = Page(render_html([new, old]))
    matrix = Table(page.html, "matrix")
    assert matrix.header() == ["run", "test", "headline metric", "a100", "cpu", "mi250"]
    assert [(row[0][2], row[1][2]) for row in matrix.rows[1:3]] == [
        ("run-old", "test_cosmoflow"),
        ("run-new", "test_cosmoflow"),
    ]
    assert Table(page.html, "results").header()[0] == "run"
    assert page.index("section", id="platforms") < page.index("section", id="trends") < page.index("details")
    trends = [a for a, _ in page.all("figure") if a["data-kind"] == "trend"]
    assert len(trends) == 4
    assert json.loads(trends[0]["data-values"])["mi250"] == [pytest.approx(756.5), pytest.approx(378.25)]
    assert len(page.all("figure")) == 8  # two figures per workload at most: the rest are tables
    sparklines = [a for a, _ in page.all("td") if a.get("data-trend", "[]") != "[]"]
    assert len(sparklines) == 4 * 3 * 5  # every drawn folded metric on every platform


def test_report_html_says_where_it_wrote(tmp_path: Path) -> None:
    path = write(tmp_path / "four.json", four_workloads())
    out = tmp_path / "out" / "four.html"
    done = subprocess.run(
        [sys.executable, "-m", "pytest_hetero.cli", "report", str(path), "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote the html report of 1 run(s) to {out}\n"
    assert out.read_text().startswith("<!DOCTYPE html>")
    clash = subprocess.run(
        [sys.executable, "-m", "pytest_hetero.cli", "report", str(path), "--html", str(out), "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clash.returncode == 4 and "--html FILE writes HTML to FILE" in clash.stderr


def test_the_html_modules_export_what_they_document() -> None:
    exports = {
        "html": ["ImageFormat", "TrendPoint", "render_html"],
        "html_charts": ["Bar", "Charts", "ImageFormat", "Line"],
        "html_details": ["details_section"],
        "html_attribution": ["attribution_section"],
        "html_cells": ["NO_VERDICT", "band_text", "esc", "legend", "num", "spread_text", "swatch", "words_of"],
    }
    for name, names in exports.items():
        assert sorted(importlib.import_module(f"pytest_hetero.reporting.{name}").__all__) == sorted(names)
    model = importlib.import_module("pytest_hetero.reporting.html_model")
    assert {"Cell", "View", "TrendPoint", "build_view", "direction", "headline_metric"} <= set(model.__all__)


def test_where_the_time_went_is_a_stacked_bar_per_case_that_reported_its_split() -> None:
    from pytest_hetero.workloads.timesplit import time_split

    split = time_split(compute_steps_s=3.0, data_wait_s=5.0, communication_s=1.0, staging_s=0.0, time_to_train_s=10.0)
    slow = record("test_cosmoflow", "disk")
    slow["workload"]["reported"] = {
        "time_split": split,
        "storage": {"roots": {"cosmoflow": {"kind": "local", "source": "/dev/vda1"}}},
    }
    quiet = record("test_cosmoflow", "tmpfs")  # reported no split: no row
    html = render_html([report([slow, quiet])])

    page = Page(html)
    rows = page.all("tr", **{"data-test": "test_cosmoflow"})
    assert [(a["data-platform"], a["data-dominant"]) for a, _ in rows] == [("disk", "data_wait")]
    assert "data wait (50%)" in rows[0][1] and "cosmoflow on local (/dev/vda1)" in rows[0][1]
    segments = {a["data-part"]: a["title"] for a, _ in page.all("span", **{"class": "seg"})}
    assert segments == {
        "compute": "compute: 2 s (20%)",
        "data_wait": "data wait: 5 s (50%)",
        "communication": "communication: 1 s (10%)",
        "other": "other: 2 s (20%)",
    }
    assert page.index("section", id="time-split") < page.index("section", id="details")


def test_no_section_on_time_when_no_case_reported_its_split() -> None:
    assert "id='time-split'" not in render_html([report([record()])])
