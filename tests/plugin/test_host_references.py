"""References that travel: another host's speed bands are not applied; broken references stop the run first."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.host_fingerprint import host_fingerprint
from pytest_hetero.schemas import load_schema, schema_errors

BENCHMARK = """
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={"metrics": {"throughput_sps": 100.0, "steps": 6.0}})
def test_bench(hetero_result):
    pass
"""

ELSEWHERE = "{cpu_model: Imaginary CPU 9000, cpu_count: 512, memory_gib: 4096, torch: 0.0.1}"


def _references(host: str, steps: int = 6) -> str:
    # The trivial workload reports every metric in samples/s: 'steps' is made an invariant by the override.
    return f"""\
version: 1
references:
  test_b.py::test_bench:
    local:
      host: {host}
      throughput_sps: {{value: 1000000.0, lower: -0.1, upper: 0.1, unit: samples/s}}  # far from 100
      steps: {{value: {steps}, lower: 0, upper: 0, host_bound: false}}
"""


def _this_host() -> str:
    return json.dumps(host_fingerprint().as_dict())


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    assert schema_errors(report, load_schema("report")) == []
    return report


def test_another_hosts_references_leave_speed_unjudged_and_say_why(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    bench_dir.makefile(".yaml", references=_references(ELSEWHERE))
    result = bench_dir.runpytest("--hetero-json=out.json")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "pytest-hetero: host-bound figures not judged, measured on another host: "
            "cpu_model 'Imaginary CPU 9000' there, * here; cpu_count 512 there, * here;*"
            ": test_b.py::test_bench on local (throughput_sps)",
        ]
    )
    verdicts = {v["metric"]: v for v in _report(bench_dir.path / "out.json")["results"][0]["verdicts"]}
    assert verdicts["throughput_sps"]["verdict"] == "no-reference"
    assert verdicts["throughput_sps"]["reason"].startswith("measured on another host: cpu_model")
    assert verdicts["steps"]["verdict"] == "pass"


def test_another_hosts_references_still_check_invariants(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    bench_dir.makefile(".yaml", references=_references(ELSEWHERE, steps=7))
    result = bench_dir.runpytest()
    result.assert_outcomes(failed=1)
    assert result.ret == 6
    result.stdout.fnmatch_lines(["*performance check failed: steps = 6 samples/s on platform 'local', reference 7*"])


def test_this_hosts_references_still_gate(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    bench_dir.makefile(".yaml", references=_references(_this_host()))
    result = bench_dir.runpytest()
    result.assert_outcomes(failed=1)
    assert result.ret == 6
    result.stdout.fnmatch_lines(["*throughput_sps = 100 samples/s on platform 'local', reference 1e+06 band*below*"])
    assert "not judged" not in result.stdout.str()


def test_update_records_this_host_and_keeps_the_comments(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    bench_dir.makefile(".yaml", references=_references(ELSEWHERE))
    bench_dir.runpytest("--hetero-update-references").assert_outcomes(passed=1)
    text = (bench_dir.path / "references.yaml").read_text()
    assert "# far from 100" in text and "host_bound: false" in text
    assert f"cpu_count: {host_fingerprint().cpu_count}," in text
    assert "throughput_sps: {value: 100.0, lower: -0.1, upper: 0.1, unit: samples/s}" in text
    bench_dir.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_broken_references_are_a_usage_error_before_any_job(bench_dir: pytest.Pytester, xdist: tuple[str, ...]) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    bench_dir.makefile(".yaml", references="version: 1\nreferences:\n  test_bench:\n    local: {steps: {value: six}}\n")
    result = bench_dir.runpytest_subprocess(*xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *references.yaml: invalid references (1 problem(s)):", "*$.references.test_bench.local.steps.value: *"]
    )
    assert not (bench_dir.path / ".hetero" / "runs").exists(), "no job was planned or submitted"


def test_non_utf8_references_are_a_clear_usage_error(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    (bench_dir.path / "references.yaml").write_bytes(b"version: 1\n# r\xe9f\xe9rences\nreferences: {}\n")
    result = bench_dir.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *references.yaml:2: references must be UTF-8 text: byte 0xe9 *"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_unknown_baseline_and_broken_history_are_usage_errors(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=BENCHMARK)
    unknown = bench_dir.runpytest("--hetero-history=h.sqlite", "--hetero-compare=baseline:golden")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["ERROR: history store *h.sqlite: no baseline 'golden' (known: none saved yet)"])
    (bench_dir.path / "junk.sqlite").write_bytes(b"\xff\xfe not a database " * 8)
    junk = bench_dir.runpytest("--hetero-history=junk.sqlite")
    assert junk.ret == pytest.ExitCode.USAGE_ERROR
    junk.stderr.fnmatch_lines(["ERROR: history store *junk.sqlite: file is not a database*"])
    assert not (bench_dir.path / ".hetero" / "runs").exists()


SLOWING = """
import json, os
value = 400.0 * (1 - float(os.environ.get("HETERO_TEST_SLOWDOWN", "0")))
wait = 4.1e-05 * (1 + float(os.environ.get("HETERO_TEST_SLOWDOWN", "0")))
metrics = [{"name": "throughput_sps", "value": value, "unit": "samples/s"},
           {"name": "data_wait_s", "value": wait, "unit": "s", "higher_is_better": False}]
print(":::HETERO_METRICS " + json.dumps({"metrics": metrics}))
"""


def test_a_regression_inside_its_band_is_the_verdict_shown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".py", slowing=SLOWING)
    pytester.makepyfile(
        test_s="""
import pytest

@pytest.mark.hetero(command=["python", "slowing.py"])
def test_slowing(hetero_result):
    pass
"""
    )
    pytester.makefile(
        ".yaml", references="version: 1\nreferences:\n  test_slowing:\n    local: {throughput_sps: [400, -0.9, null]}\n"
    )
    args = ("--hetero-repeat=3", "--hetero-history=h.sqlite", "--hetero-compare=last", "--hetero-json=out.json")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    monkeypatch.setenv("HETERO_TEST_SLOWDOWN", "0.66")
    slow = pytester.runpytest_subprocess(*args)
    slow.assert_outcomes(failed=1)
    assert slow.ret == 6
    slow.stdout.fnmatch_lines(["test_s.py::test_slowing  local *throughput_sps *136 *samples/s *regression"])
    verdicts = {v["metric"]: v for v in _report(pytester.path / "out.json")["results"][0]["verdicts"]}
    assert (verdicts["throughput_sps"]["band"], verdicts["throughput_sps"]["gate"]) == ("pass", "regression")
    assert verdicts["data_wait_s"]["gate"] == "unchanged", "+66 % of 41 us is below the noise floor of 1 ms"


CONTENDED = BENCHMARK.replace('"steps": 6.0}}', '"steps": 6.0}, "sleep_s": 0.3}')


def test_contended_measurements_are_not_judged_as_slowdowns(
    bench_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(bench_dir.path))  # the group's host-wide locks stay in this test's directory
    group = f"pair-{uuid.uuid4().hex[:8]}"
    bench_dir.makefile(
        ".yaml",
        platforms=f"""
version: 1
platforms:
  - {{name: pa, accelerator: {{kind: cpu}}, backend: {{kind: local}}, resource_group: {{name: {group}, max_jobs: 2}}}}
  - {{name: pb, accelerator: {{kind: cpu}}, backend: {{kind: local}}, resource_group: {{name: {group}, max_jobs: 2}}}}
""",
    )
    assert "sleep_s" in CONTENDED
    bench_dir.makepyfile(test_b=CONTENDED)
    bench_dir.makefile(".yaml", references=_references(_this_host()).replace("    local:", '    "p*":'))
    # Submitted ahead in one pass, both jobs start before either can be seen ending: each is contended.
    result = bench_dir.runpytest_subprocess(
        "--platforms-file=platforms.yaml", "--platform=pa,pb", "--hetero-json=o.json"
    )
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    for record in _report(bench_dir.path / "o.json")["results"]:
        assert record["contention"]["contended"]
        verdicts = {v["metric"]: v for v in record["verdicts"]}
        assert (verdicts["throughput_sps"]["verdict"], verdicts["throughput_sps"]["band"]) == ("contended", "fail")
        assert verdicts["steps"]["verdict"] == "pass", "an invariant is judged under contention too"
    result.stdout.fnmatch_lines(
        ["pytest-hetero: host-bound figures not judged, measured while another job shared the resource: *"]
    )
