"""Isolation end to end: job windows in the JSON report never overlap unless the catalogue allows it.

Assertions are on the order of the windows the report records, never on durations,
so they hold on a loaded machine.
"""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.reporting.json_report import expand_report
from pytest_hetero.schemas import load_schema, schema_errors

TESTS = """
import pytest

@pytest.mark.parametrize("n", range({count}))
@pytest.mark.hetero(command=["python", "work.py"], config={{"sleep_s": {sleep_s}}})
def test_sleep(hetero_result, n):
    assert hetero_result.metric("throughput_sps") == 100.0
"""


def _run(bench_dir: pytest.Pytester, catalogue: str, *args: str, count: int = 2, sleep_s: float = 0.3) -> Any:
    bench_dir.makefile(".yaml", platforms=catalogue)
    bench_dir.makepyfile(test_iso=TESTS.format(count=count, sleep_s=sleep_s))
    result = bench_dir.runpytest_subprocess("--platforms-file=platforms.yaml", "--hetero-json=out.json", *args)
    report = expand_report(json.loads((bench_dir.path / "out.json").read_text()))
    assert schema_errors(report, load_schema("report")) == []
    return result, report


def _windows(report: dict[str, Any], platforms: set[str] | None = None) -> list[dict[str, Any]]:
    records = [r for r in report["results"] if platforms is None or r["platform"]["name"] in platforms]
    return [window for record in records for window in record["contention"]["windows"]]


def _disjoint(windows: list[dict[str, Any]]) -> bool:
    spans = sorted((w["start_unix_s"], w["end_unix_s"]) for w in windows)
    return all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


def _unique(name: str) -> str:
    """A group name no other run on this host uses (groups lock host-wide)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def private_locks(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Host-wide locks of the run under test in its own $TMPDIR: no lock directories left in /tmp."""
    tmp = pytester.path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))


@pytest.mark.usefixtures("private_locks")
def test_max_jobs_holds_across_xdist_workers(bench_dir: pytest.Pytester) -> None:
    # A group that admits 4: only the platform's max_jobs keeps these jobs apart.
    catalogue = f"""
version: 1
platforms:
  - name: solo
    accelerator: {{kind: cpu}}
    backend: {{kind: local}}
    max_jobs: 1
    resource_group: {{name: {_unique("wide")}, max_jobs: 4}}
"""
    result, report = _run(bench_dir, catalogue, "-n", "2", "--platform=solo", count=4)
    result.assert_outcomes(passed=4)
    windows = _windows(report)
    assert len(windows) == 4 and all(w["end_unix_s"] is not None for w in windows)
    assert _disjoint(windows), windows
    assert not any(r["contention"]["contended"] for r in report["results"])
    run_dir = _run_dir(bench_dir)
    assert (run_dir / "windows.jsonl").is_file() and (run_dir / "slots").is_dir(), "the workers share them on disk"


TWO_LOCAL = """
version: 1
platforms:
  - {name: here-a, accelerator: {kind: cpu}, backend: {kind: local}, max_jobs: 2}
  - {name: here-b, accelerator: {kind: cpu}, backend: {kind: local}, max_jobs: 2}
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["submit-ahead", "xdist"])
def test_local_platforms_never_overlap(bench_dir: pytest.Pytester, xdist: list[str]) -> None:
    result, report = _run(bench_dir, TWO_LOCAL, "--platform=here-a,here-b", *xdist)
    result.assert_outcomes(passed=4)
    groups = {r["contention"]["resource_group"] for r in report["results"]}
    assert len(groups) == 1 and groups.pop().startswith("host:"), "local platforms share the host's group"
    windows = _windows(report)
    assert len(windows) == 4 and _disjoint(windows), windows
    assert all(w["load_avg_start"] is not None and w["load_avg_end"] is not None for w in windows)
    assert not any(r["contention"]["beside"] for r in report["results"])


@pytest.mark.usefixtures("private_locks")
def test_a_group_that_allows_overlap_marks_the_samples(bench_dir: pytest.Pytester) -> None:
    group = _unique("pair")
    catalogue = f"""
version: 1
platforms:
  - {{name: pa, accelerator: {{kind: cpu}}, backend: {{kind: local}}, resource_group: {{name: {group}, max_jobs: 2}}}}
  - {{name: pb, accelerator: {{kind: cpu}}, backend: {{kind: local}}, resource_group: {{name: {group}, max_jobs: 2}}}}
"""
    # Submitted ahead in one pass, both jobs start before either can be seen ending: they overlap.
    result, report = _run(bench_dir, catalogue, "--platform=pa,pb", "--junitxml=junit.xml", "-v", count=1)
    result.assert_outcomes(passed=2)
    records = {r["platform"]["name"]: r for r in report["results"]}
    assert {name: r["contention"]["contended"] for name, r in records.items()} == {"pa": True, "pb": True}
    assert [w["platform"] for w in records["pa"]["contention"]["beside"]] == ["pb"]
    assert records["pa"]["contention"]["beside"][0]["id"] == records["pb"]["contention"]["windows"][0]["id"]
    assert records["pa"]["contention"]["group_max_jobs"] == 2
    result.stdout.fnmatch_lines(["*pa*throughput_sps*100[*]*", "[*] measured while other jobs shared its resource*"])
    assert 'name="hetero.contended" value="true"' in (bench_dir.path / "junit.xml").read_text()
    run_dir = _run_dir(bench_dir)  # one process: its windows in memory, max_jobs its own count
    assert not (run_dir / "windows.jsonl").exists() and not (run_dir / "slots").exists(), sorted(run_dir.iterdir())


def _run_dir(bench_dir: pytest.Pytester) -> Path:
    (run_dir,) = (bench_dir.path / ".hetero" / "runs").iterdir()
    return run_dir


def test_one_group_needs_one_max_jobs(bench_dir: pytest.Pytester) -> None:
    catalogue = """
version: 1
platforms:
  - {name: pa, accelerator: {kind: cpu}, backend: {kind: local}, resource_group: shared}
  - {name: pb, accelerator: {kind: cpu}, backend: {kind: local}, resource_group: {name: shared, max_jobs: 2}}
"""
    bench_dir.makefile(".yaml", platforms=catalogue)
    bench_dir.makepyfile(test_iso=TESTS.format(count=1, sleep_s=0))
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=pa,pb")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*resource group 'shared' has max_jobs 1 on platform 'pa' but 2 on platform 'pb'*"])
