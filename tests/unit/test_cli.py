"""The ``pytest-hetero`` command line, run as a subprocess on reports of real and generated runs."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shlex
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from fake_reports import HASH_B, record, report, write

from pytest_hetero.schemas import load_schema, schema_errors

#: A workload whose throughput drops by HETERO_TEST_SLOWDOWN (a fraction) without changing its config hash.
WORKLOAD = textwrap.dedent(
    """
    import json, os, random
    slowdown = float(os.environ.get("HETERO_TEST_SLOWDOWN", "0"))
    throughput_sps = 412.0 * (1 - slowdown) * random.uniform(0.995, 1.005)
    metrics = [
        {"name": "throughput_sps", "value": throughput_sps, "unit": "samples/s", "higher_is_better": True},
        {"name": "time_to_train_s", "value": 41200.0 / throughput_sps, "unit": "s", "higher_is_better": False},
    ]
    print(":::HETERO_METRICS " + json.dumps({"metrics": metrics}))
    """
)
BENCHMARK = """
import pytest
import yaml

@pytest.mark.hetero(command=["python", "work.py"], config={"batch_size": 32})
def test_bench(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""
REFERENCES = """
version: 1
references:
  test_bench.py::test_bench:
    "*": {throughput_sps: {value: 412.0, lower: -0.05, upper: 0.05, unit: samples/s}}
"""


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest_hetero.cli", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


class _Page(HTMLParser):
    """Figures (attributes + image), and table cells with their classes."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, str]] = []
        self.cells: list[tuple[str, str]] = []
        self.external: list[str] = []
        self._in_td: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "figure":
            self.figures.append(found)
        elif tag == "img":
            self.figures[-1]["src"] = found["src"]
        elif tag == "td":
            self._in_td = found.get("class", "")
            self.cells.append((self._in_td, ""))
        if tag in ("script", "link") or (tag == "img" and not found["src"].startswith("data:")):
            self.external.append(tag)

    def handle_data(self, data: str) -> None:
        if self._in_td is not None:
            css, text = self.cells[-1]
            self.cells[-1] = (css, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_td = None


def parse_html(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def decode_image(src: str) -> tuple[str, bytes]:
    mime, _, data = src.removeprefix("data:").partition(";base64,")
    return mime, base64.b64decode(data, validate=True)


def _plugin_run(bench_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, slowdown: float) -> Path:
    monkeypatch.setenv("HETERO_TEST_SLOWDOWN", str(slowdown))
    result = bench_dir.runpytest_subprocess("--hetero-repeat=5", f"--hetero-json={name}", "-p", "no:cacheprovider")
    assert result.ret == (0 if slowdown == 0 else 6), result.stdout.str()  # 6: only performance failed
    path = bench_dir.path / name
    assert schema_errors(json.loads(path.read_text()), load_schema("report")) == []
    return path


@pytest.mark.slow
def test_an_injected_slowdown_fails_the_gate_and_shows_in_the_html(
    bench_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench_dir.makefile(".py", work=WORKLOAD)
    bench_dir.makepyfile(test_bench=BENCHMARK)
    bench_dir.makefile(".yaml", references=REFERENCES)
    first = _plugin_run(bench_dir, monkeypatch, "first.json", 0.0)
    second = _plugin_run(bench_dir, monkeypatch, "second.json", 0.10)

    gate = cli("compare", second, first, "--format", "markdown")
    assert gate.returncode == 6, gate.stderr
    assert "## pytest-hetero comparison: ❌ 2 regression(s)" in gate.stdout
    assert re.search(
        r"throughput_sps: median \d+(\.\d+)? → \d+(\.\d+)? samples/s \(-(9|10|11)\.\d %, p=0.00794 < 0.05", gate.stdout
    )
    assert "time_to_train_s: median" in gate.stdout  # lower is better: the time went up
    assert cli("compare", first, first).returncode == 0

    html = cli("report", first, second, "--format", "html", "-o", bench_dir.path / "report.html")
    assert html.returncode == 0, html.stderr
    page = parse_html((bench_dir.path / "report.html").read_text())
    assert page.external == []  # self-contained
    trend = next(f for f in page.figures if f["data-kind"] == "trend" and f["data-metric"] == "throughput_sps")
    before, after = json.loads(trend["data-values"])["local"]
    assert after / before == pytest.approx(0.9, abs=0.015)
    assert decode_image(trend["src"])[1].startswith(b"\x89PNG\r\n\x1a\n")
    worse = [text for css, text in page.cells if css == "worse"]
    assert len(worse) == 2 and any(text.startswith("-10.") or text.startswith("-9.") for text in worse)

    store = bench_dir.path / "history.sqlite"
    assert cli("history", store, "--add", first, second).returncode == 0
    run_id = json.loads(first.read_text())["run_id"]
    assert cli("baseline", store, "golden", run_id).returncode == 0
    for against in ("last", "baseline:golden"):
        from_history = cli("compare", second, "--history", store, "--against", against)
        assert from_history.returncode == 6, from_history.stdout + from_history.stderr
        assert f"({against})" in from_history.stdout


def _reports(tmp_path: Path) -> tuple[Path, Path]:
    band = (370.0, 450.0)
    old = report(
        [
            record(platform="a100", metrics={"throughput_sps": [412.0, 410.0, 415.0, 411.0, 413.0]}, band=band),
            record(platform="mi250", metrics={"throughput_sps": [300.0]}),
            record(platform='odd "name"', metrics={"step time/ms": [12.5]}, higher_is_better=False, unit="ms"),
        ],
        run_id="run-old",
        created_at="2026-05-01T10:00:00Z",
    )
    new = report(
        [
            record(platform="a100", metrics={"throughput_sps": [371.0, 370.0, 372.0, 369.0, 373.0]}, band=band),
            record(platform="mi250", metrics={"throughput_sps": [301.0]}, config_hash=HASH_B),
            record(platform='odd "name"', metrics={"step time/ms": [12.4]}, higher_is_better=False, unit="ms"),
        ],
        run_id="run-new",
        created_at="2026-05-02T10:00:00Z",
        exit_status=6,
    )
    return write(tmp_path / "old.json", old), write(tmp_path / "new.json", new)


def test_compare_two_reports_names_config_mismatches(tmp_path: Path) -> None:
    old, new = _reports(tmp_path)
    done = cli("compare", new, old)
    assert done.returncode == 6
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == f"compared with {old} (run run-old, 2026-05-01T10:00:00Z): 1 regression, 1 unchanged, 1 insufficient-data"
    )
    assert any(line.strip().startswith("REGRESSION") and "-10.0 %, p=0.00794" in line for line in lines)
    assert f"not compared: test_resnet50 on mi250: workload config hash {HASH_B} ≠ 0123456789abcdef" in done.stdout
    loose = cli("compare", new, old, "--min-effect", "0.2")
    assert loose.returncode == 0 and "REGRESSION" not in loose.stdout


def test_bad_input_and_unreachable_stores_have_their_own_exit_codes(tmp_path: Path) -> None:
    old, new = _reports(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    invalid = write(tmp_path / "invalid.json", {**json.loads(old.read_text()), "exit_status": "zero"})
    cases = {
        ("compare", new): "needs either BASELINE.json or --history URL",
        ("compare", new, tmp_path / "missing.json"): "missing.json: cannot read the report",
        ("report", tmp_path / "broken.json"): "broken.json: cannot read the report",
        ("report", invalid): "invalid.json: not a valid pytest-hetero report (1 problem(s)):\n  $.exit_status: 'zero'",
        ("compare", new, old, "--fail-on", "avg:5%"): "regression expression 'avg:5%'",
        ("compare", new, old, "--min-effect", "5"): "'5': expected a fraction in [0, 1)",
        ("compare", new, "--history", tmp_path / "h.sqlite", "--against", "baseline:gold"): "no baseline 'gold'",
        ("baseline", tmp_path / "h.sqlite", "x", "latest"): "holds no runs yet",
        ("report", old, "--format", "pdf"): "invalid choice: 'pdf'",
    }
    for args, message in cases.items():
        done = cli(*args)
        assert (done.returncode, message in done.stderr) == (4, True), (args, done.stderr)
    unavailable = cli("history", tmp_path)  # a directory is no database
    assert unavailable.returncode == 3 and "cannot open" in unavailable.stderr


def test_markdown_csv_and_openmetrics(tmp_path: Path) -> None:
    old, new = _reports(tmp_path)
    markdown = cli("report", new).stdout
    assert "## pytest-hetero: run run-new" in markdown
    assert (
        "| test_resnet50 | a100 | throughput_sps | 371 | samples/s | cv 0.4 % (n=5) | [370, 450] | ✅ pass |"
        in markdown
    )

    rows = list(csv.DictReader(io.StringIO(cli("report", old, new, "--format", "csv").stdout)))
    assert len(rows) == 6
    a100 = [r for r in rows if r["platform"] == "a100"]
    assert [(r["run_id"], r["value"], r["n"], r["trimmed_mean"]) for r in a100] == [
        ("run-old", "412.0", "5", "412.0"),
        ("run-new", "371.0", "5", "371.0"),
    ]

    out = tmp_path / "metrics.txt"
    assert cli("report", old, new, "--format", "openmetrics", "-o", out).returncode == 0
    lines = out.read_text().splitlines()
    assert lines[-1] == "# EOF"
    assert 'hetero_throughput_sps{test="test_resnet50",platform="a100",unit="samples/s"} 371.0' in lines
    assert 'hetero_step_time_seconds{test="test_resnet50",platform="odd \\"name\\"",unit="ms"} 0.0124' in lines
    assert 'hetero_tests{outcome="passed"} 3' in lines
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\} -?[0-9.e+-]+$')
    assert all(line.startswith("#") or sample.match(line) for line in lines), lines


def test_html_svg_figures_show_the_drop(tmp_path: Path) -> None:
    old, new = _reports(tmp_path)
    out = tmp_path / "report.html"
    assert cli("report", new, old, "--format", "html", "--image-format", "svg", "-o", out).returncode == 0
    page = parse_html(out.read_text())
    kinds = sorted((f["data-kind"], f["data-metric"]) for f in page.figures)
    assert kinds == [("bars", "throughput_sps"), ("trend", "throughput_sps")]  # the headline metric is drawn
    assert "data-trend='[12.5, 12.4]'" in out.read_text()  # step time/ms: folded away, with its sparkline
    for figure in page.figures:
        mime, data = decode_image(figure["src"])
        assert mime == "image/svg+xml" and ET.fromstring(data).tag.endswith("svg")
    bars = next(f for f in page.figures if f["data-kind"] == "bars" and f["data-metric"] == "throughput_sps")
    assert json.loads(bars["data-values"]) == {"a100": 371.0, "mi250": 301.0}  # newest run per platform
    trend = next(f for f in page.figures if f["data-kind"] == "trend" and f["data-metric"] == "throughput_sps")
    assert json.loads(trend["data-values"]) == {"a100": [412.0, 371.0]}  # mi250 changed config: no trend
    assert "1 point(s) with another config hash left out" in out.read_text()
    assert ("worse", "-10.0 %") in page.cells
    assert ("better", "") not in page.cells and ("", "-0.8 %") in page.cells  # step time -0.8 %: below min effect


def test_history_listing(tmp_path: Path) -> None:
    old, new = _reports(tmp_path)
    store = f"sqlite://{tmp_path}/h.sqlite"
    added = cli("history", store, "--add", old, new)
    assert added.returncode == 0 and added.stdout.startswith("added 2 report(s)")
    assert cli("baseline", store, "release-1", "latest").stdout == "baseline 'release-1' -> run run-new\n"
    listing = cli("history", store).stdout.splitlines()
    assert listing[1].split()[0] == "run-new" and listing[1].endswith("release-1")
    assert listing[2].split()[:2] == ["run-old", "2026-05-01T10:00:00Z"]
    series = cli("history", store, "--test", "test_resnet50", "--platform", "a100", "--metric", "throughput_sps")
    assert [line.split()[2] for line in series.stdout.splitlines()[2:]] == ["412", "371"]
    assert cli("history", store, "--test", "test_resnet50").returncode == 4
    html = cli("report", new, "--format", "html", "--history", store, "-o", tmp_path / "r.html")
    assert html.returncode == 0, html.stderr
    trends = [f for f in parse_html((tmp_path / "r.html").read_text()).figures if f["data-kind"] == "trend"]
    assert json.loads(trends[-1]["data-values"]) == {"a100": [412.0, 371.0]}  # the earlier run came from the store


DOCS = Path(__file__).parents[2] / "docs"


def _documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``pytest-hetero ...`` command line in the CI docs and example pipelines, as argv."""
    found = []
    for path in [DOCS / "ci.md", DOCS / "history.md", *sorted((DOCS / "ci").iterdir())]:
        text = path.read_text()
        if path.suffix == ".md":  # only the code blocks
            text = "\n".join(block for i, block in enumerate(text.split("```")) if i % 2)
        for line in text.replace("\\\n", " ").splitlines():
            start = line.find("pytest-hetero ")
            if start < 0 or line[start + len("pytest-hetero ") :].split()[0] not in (
                "report",
                "compare",
                "history",
                "baseline",
            ):
                continue
            tokens = shlex.split(line[start:], comments=True)
            stop = next((i for i, t in enumerate(tokens) if t in ("||", ">>", ">", ";", "&&", "|")), len(tokens))
            found.append((path.name, tokens[1:stop]))
    return found


def test_documented_commands_parse_and_pipeline_files_are_valid_yaml() -> None:
    from pytest_hetero.cli import _parser

    commands = _documented_commands()
    assert {name for name, _ in commands} >= {
        "ci.md",
        "history.md",
        "gitlab-ci.yml",
        "github-actions.yml",
        "Jenkinsfile",
    }
    for name, argv in commands:
        try:
            _parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: pytest-hetero {' '.join(argv)} does not parse")
    for name in ("gitlab-ci.yml", "github-actions.yml"):
        assert isinstance(yaml.safe_load((DOCS / "ci" / name).read_text()), dict)
