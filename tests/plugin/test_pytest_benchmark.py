"""pytest-benchmark and pytest-hetero in one run, one report, one gate."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pytest_hetero.schemas import load_schema, schema_errors

MIXED = """
import os, time
import pytest

def preprocess(n):
    time.sleep(float(os.environ.get("HETERO_TEST_DELAY_S", "0")))
    return sorted(range(n, 0, -1))

def test_preprocess(benchmark):
    result = benchmark.pedantic(preprocess, args=(2000,), rounds=7, iterations=1)
    assert result[0] == 1

@pytest.mark.hetero(command=["python", "work.py"])
def test_accelerated(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""


@pytest.fixture
def mixed(bench_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # When this suite itself runs under xdist, pytest-benchmark would see the inherited
    # worker variable in the inner run and switch itself off.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    bench_dir.makepyfile(test_mixed=MIXED)
    bench_dir.makeconftest(
        "def pytest_benchmark_update_machine_info(config, machine_info):\n    machine_info['rack'] = 'B7'\n"
    )
    return bench_dir


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # A subprocess: scipy (numpy) must not be imported twice in one process, as inline runs would.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_one_run_one_report(mixed: pytest.Pytester) -> None:
    result = _run(mixed, "--hetero-json=out.json", "--junitxml=junit.xml", "--hetero-benchmark-json=pb.json", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_mixed.py::test_preprocess*local*median_s*s*no-reference*"])  # listed under -v
    report = json.loads((mixed.path / "out.json").read_text())
    assert schema_errors(report, load_schema("report")) == []
    records = {r["test"]: r for r in report["results"]}
    timed = records["test_mixed.py::test_preprocess"]
    assert timed["metrics"]["rounds"]["value"] == 7
    assert len(timed["metrics"]["median_s"]["samples"]) == 7
    assert timed["metrics"]["ops_per_s"]["higher_is_better"] is True
    assert timed["metrics"]["mean_s"]["higher_is_better"] is False
    assert timed["provenance"]["ref"] == "#/provenance"  # once per report
    assert report["provenance"]["machine_info"]["rack"] == "B7"  # pytest-benchmark's hook, reused
    assert report["provenance"]["machine_info"]["python_version"]
    props = {
        p.get("name"): p.get("value")
        for case in ET.parse(mixed.path / "junit.xml").getroot().iter("testcase")
        if case.get("name") == "test_preprocess"
        for p in case.iter("property")
    }
    assert float(props["hetero.metric.median_s"] or "nan") > 0

    exported = json.loads((mixed.path / "pb.json").read_text())
    names = sorted(b["fullname"] for b in exported["benchmarks"])
    assert "test_mixed.py::test_accelerated[local]:throughput_sps" in names
    assert "test_mixed.py::test_preprocess:median_s" in names
    entry = next(b for b in exported["benchmarks"] if b["fullname"].endswith("test_accelerated[local]:throughput_sps"))
    assert entry["extra_info"]["unit"] == "samples/s"
    assert entry["extra_info"]["higher_is_better"] is True
    assert entry["stats"]["rounds"] == 1


def test_pytest_benchmark_compare_reads_the_export(mixed: pytest.Pytester) -> None:
    _run(mixed, "--hetero-benchmark-json=first.json").assert_outcomes(passed=2)
    _run(mixed, "--hetero-benchmark-json=second.json").assert_outcomes(passed=2)
    compared = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", "first.json", "second.json", "--group-by=name"],
        cwd=mixed.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compared.returncode == 0, compared.stderr
    assert "test_accelerated[local]:throughput_sps" in compared.stdout


def test_references_apply_to_benchmark_fixture_statistics(
    mixed: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed.makefile(
        ".yaml",
        references="version: 1\nreferences:\n  test_preprocess:\n    local: {median_s: [0.000001, null, 0.1, s]}\n",
    )
    monkeypatch.setenv("HETERO_TEST_DELAY_S", "0.02")
    result = _run(mixed)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 6
    result.stdout.fnmatch_lines(["*performance check failed: median_s = *above the band (worse than the reference)*"])


def test_regression_expression_against_history(mixed: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--hetero-history=h.sqlite", "--hetero-compare=last", "--hetero-compare-fail=mean:5%")
    monkeypatch.setenv("HETERO_TEST_DELAY_S", "0.01")
    _run(mixed, *args).assert_outcomes(passed=2)
    monkeypatch.setenv("HETERO_TEST_DELAY_S", "0.03")
    slower = _run(mixed, *args)
    slower.assert_outcomes(passed=1, failed=1)
    assert slower.ret == 6
    slower.stdout.fnmatch_lines(["*test_preprocess on local: median_s*mean*worse by*"])


def test_under_xdist_hetero_benchmarks_keep_reporting(mixed: pytest.Pytester) -> None:
    result = _run(mixed, "-n", "2", "--hetero-json=out.json")
    result.assert_outcomes(passed=2)
    records = json.loads((mixed.path / "out.json").read_text())["results"]
    assert [r["test"] for r in records] == ["test_mixed.py::test_accelerated"]
