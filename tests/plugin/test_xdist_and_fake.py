"""pytest-xdist: records of every worker land in one report, written once. The public fake backend."""

from __future__ import annotations

import json

import pytest

CATALOGUE = """
version: 1
platforms:
  - {name: p1, accelerator: {kind: cpu}, backend: {kind: local}}
  - {name: p2, accelerator: {kind: cpu}, backend: {kind: local}}
  - name: dgx-sim
    accelerator: {kind: nvidia-gpu, model: H100, count_per_node: 8}
    backend:
      kind: fake
      options: {metrics: {throughput_sps: {value: 2400.0, unit: samples/s}}}
"""

TESTS = """
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={"metrics": {"throughput_sps": 50.0}})
def test_one(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0

@pytest.mark.hetero(command=["python", "work.py"], config={"metrics": {"throughput_sps": 60.0}})
def test_two(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""


def test_xdist_report_has_every_worker_record(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_x=TESTS)
    result = bench_dir.runpytest_subprocess(
        "-n", "2", "--platforms-file=platforms.yaml", "--platform=all", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=6)
    report = json.loads((bench_dir.path / "out.json").read_text())
    seen = sorted((r["nodeid"], r["metrics"]["throughput_sps"]["value"]) for r in report["results"])
    assert seen == [
        ("test_x.py::test_one[dgx-sim]", 2400.0),
        ("test_x.py::test_one[p1]", 50.0),
        ("test_x.py::test_one[p2]", 50.0),
        ("test_x.py::test_two[dgx-sim]", 2400.0),
        ("test_x.py::test_two[p1]", 60.0),
        ("test_x.py::test_two[p2]", 60.0),
    ]
    run_dirs = [d.name for d in (bench_dir.path / ".hetero" / "runs").iterdir()]
    assert run_dirs == [report["run_id"]], "workers must share the controller's run id and directory"


def test_fake_backend_from_a_conftest_hook(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makeconftest(
        """
from pytest_hetero.backends.fake import FakeBackend, FakeResult

def pytest_hetero_make_backend(platform, config):
    if platform.name == "dgx-sim":
        def handler(spec):
            return FakeResult(metrics={"throughput_sps": 10.0 * len(spec.argv)}, stdout="fake ran")
        return FakeBackend(platform, handler=handler)
"""
    )
    bench_dir.makepyfile(
        test_f="""
import pytest

@pytest.mark.hetero(command=["a", "b", "c"])
def test_f(hetero_result, hetero_platform):
    assert hetero_platform.name == "dgx-sim"
    assert hetero_result.metric("throughput_sps") == 30.0
"""
    )
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=dgx-sim")
    result.assert_outcomes(passed=1)


def test_fixture_without_marker_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(hetero_result):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the hetero_result fixture needs @pytest.mark.hetero(...) on the test*"])


def test_bad_marker_is_a_usage_error_naming_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.hetero(workload="resnet51", acclerators=["cpu"])
def test_typo():
    pass
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*::test_typo: unknown @pytest.mark.hetero argument(s) [[]'acclerators'[]]; valid: *"])
    assert "During handling" not in result.stdout.str() + result.stderr.str()


def test_jobspec_and_record_hooks(bench_dir: pytest.Pytester) -> None:
    bench_dir.makeconftest(
        """
import dataclasses

def pytest_hetero_modify_jobspec(spec, item):
    return dataclasses.replace(spec, env={**spec.env, "FROM_HOOK": "42"})

def pytest_hetero_result_record(record, item):
    record.setdefault("extra", {})["ticket"] = "PERF-123"
"""
    )
    bench_dir.makefile(
        ".py",
        envmetric="""
import json, os
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "x", "value": float(os.environ["FROM_HOOK"])}]}))
""",
    )
    bench_dir.makepyfile(
        test_h="""
import pytest

@pytest.mark.hetero(command=["python", "envmetric.py"])
def test_h(hetero_result):
    assert hetero_result.metric("x") == 42
"""
    )
    result = bench_dir.runpytest("--hetero-json=out.json")
    result.assert_outcomes(passed=1)
    record = json.loads((bench_dir.path / "out.json").read_text())["results"][0]
    assert record["extra"] == {"ticket": "PERF-123"}
