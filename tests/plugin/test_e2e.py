"""End to end through pytester: catalogue → parametrised test → local process → metrics → references → reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.reporting.json_report import expand_report
from pytest_hetero.schemas import load_schema, schema_errors

CATALOGUE = """
version: 1
platforms:
  - name: cpu-a
    accelerator: {kind: cpu, model: host}
    backend: {kind: local}
    tags: [cpu]
  - name: cpu-b
    accelerator: {kind: cpu, model: host}
    backend: {kind: local}
    environment: {env: {API_TOKEN: hunter2-secret, PLAIN: visible}}
    tags: [cpu]
  - name: gpu-sim
    accelerator: {kind: nvidia-gpu, model: A100, count_per_node: 4, memory_gb: 80}
    backend: {kind: local}
    tags: [gpu]
"""


def _test_file(metrics: str = '{"throughput_sps": 100.0}', extra: str = "") -> str:
    return f"""
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={{"metrics": {metrics}{extra}}}, accelerators=["cpu"])
def test_bench(hetero_result):
    assert hetero_result.metric("throughput_sps") is not None
"""


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    assert schema_errors(report, load_schema("report")) == []  # as written: paths relative, parts said once
    return expand_report(report)


def test_parametrised_over_selected_platforms_with_readable_ids(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=all", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["test_b.py::test_bench[cpu-a]", "test_b.py::test_bench[cpu-b]", "test_b.py::test_bench[gpu-sim]", "*3 tests*"]
    )


def test_incompatible_platform_is_skipped_with_reason(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=cpu-a,gpu-*", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs accelerator kind cpu, platform 'gpu-sim' has nvidia-gpu*"])


def test_globs_tags_and_default_selection(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    by_tag = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=tag:cpu", "--collect-only", "-q")
    by_tag.stdout.fnmatch_lines(["*[[]cpu-a[]]", "*[[]cpu-b[]]", "*2 tests collected*"])
    default = bench_dir.runpytest("--collect-only", "-q")
    default.stdout.fnmatch_lines(["test_b.py::test_bench[[]local[]]", "*1 test collected*"])


def test_unknown_platform_lists_the_known_ones(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=cerebras")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--platform 'cerebras' matches no platform*known platforms: cpu-a, cpu-b, gpu-sim, local*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_broken_catalogue_reports_every_problem_with_its_path(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(
        ".yaml",
        platforms="""
version: 1
platforms:
  - name: ok
    accelerator: {kind: cpu}
    backend: {kind: local}
  - name: bad
    accelerator: {kind: tpu}
    backend: {kind: slurmm}
    resources: {nodes: 0}
  - name: ok
    accelerator: {kind: cpu}
    backend: {kind: local, options: {kill_grace: 3}}
""",
    )
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*platforms.yaml: invalid platform catalogue (5 problem(s)):",
            "*$.platforms[[]1[]].accelerator.kind: unknown accelerator kind 'tpu'; known: amd-gpu, cerebras, cpu*",
            "*$.platforms[[]1[]].backend.kind: unknown backend 'slurmm'; known: fake, kubernetes, local, slurm",
            "*$.platforms[[]1[]].resources.nodes: 0 is less than the minimum of 1*",
            "*$.platforms[[]2[]].name: 'ok' is already used by $.platforms[[]0[]]",
            "*$.platforms[[]2[]].backend.options: Additional properties are not allowed ('kill_grace' was unexpected)",
        ]
    )
    assert "Traceback" not in result.stderr.str()


def test_yaml_syntax_error_names_file_and_line(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms="version: 1\nplatforms: [\n  - name: x\n")
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*platforms.yaml:*:*: platform catalogue: not valid YAML: *"])


def test_out_of_band_metric_fails_exactly_that_test(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    bench_dir.makefile(
        ".yaml",
        references="""
version: 1
references:
  test_b.py::test_bench:
    cpu-a: {throughput_sps: {value: 100, lower: -0.1, upper: 0.1, unit: samples/s}}
    cpu-b: {throughput_sps: [200, -0.1, 0.1, samples/s]}
""",
    )
    result = bench_dir.runpytest(
        "--platforms-file=platforms.yaml", "--platform=cpu-*", "--hetero-json=out.json", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 6, "only performance failures: the documented exit status 6"
    result.stdout.fnmatch_lines(
        [
            "*performance check failed: throughput_sps = 100 samples/s on platform 'cpu-b', "
            "reference 200 band [[]180, 220[]]: below the band (worse than the reference)",
        ]
    )
    report = _report(bench_dir.path / "out.json")
    verdicts = {r["platform"]["name"]: r["verdicts"][0]["verdict"] for r in report["results"]}
    assert verdicts == {"cpu-a": "pass", "cpu-b": "fail"}
    assert report["summary"] == {"passed": 1, "failed": 1}
    cases = ET.parse(bench_dir.path / "junit.xml").getroot().iter("testcase")
    props = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    assert props["test_bench[cpu-b]"]["hetero.metric.throughput_sps"] == "100.0"
    assert props["test_bench[cpu-b]"]["hetero.verdict.throughput_sps"] == "fail"
    assert props["test_bench[cpu-b]"]["hetero.band.throughput_sps"] == "[180, 220]"
    assert props["test_bench[cpu-a]"]["hetero.platform"] == "cpu-a"


def test_xfail_reference_and_require_references(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=_test_file('{"throughput_sps": 100.0, "latency_ms": 3.0}'))
    bench_dir.makefile(
        ".yaml",
        references="""
version: 1
references:
  test_bench:
    "*": {throughput_sps: {value: 500, lower: -0.1, upper: null, xfail: "known slow on this host"}}
""",
    )
    result = bench_dir.runpytest("-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*known slow on this host*"])
    strict = bench_dir.runpytest("--hetero-require-references")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*latency_ms = 3 on platform 'local' has no reference (--hetero-require-references)*"])


def test_workload_failure_names_stage_and_shows_log_tail(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=_test_file(extra=', "exit_code": 3'))
    result = bench_dir.runpytest("--hetero-json=out.json")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*wait: the workload exited with status 3 after * s (job local-*)*", "*boom: simulated crash*"]
    )
    assert "Traceback" not in result.stdout.str()
    record = _report(bench_dir.path / "out.json")["results"][0]
    assert record["error"]["stage"] == "wait"
    assert record["job"]["exit_code"] == 3


def test_malformed_metrics_line_is_a_collect_error(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_b="""
import pytest

@pytest.mark.hetero(command=["python", "-c", "print(':::HETERO_METRICS {not json')"])
def test_bench():
    pass
"""
    )
    result = bench_dir.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*collect: *stdout.log:1: malformed metrics record: *"])


def test_json_report_is_complete_and_redacts_secrets(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=cpu-b", "--hetero-json=out.json")
    result.assert_outcomes(passed=1)
    record = _report(bench_dir.path / "out.json")["results"][0]
    assert record["job"]["env"]["API_TOKEN"] == "***"
    assert record["job"]["env"]["HETERO_PLATFORM"] == "cpu-b"
    assert "hunter2-secret" not in (bench_dir.path / "out.json").read_text()
    assert record["metrics"]["throughput_sps"] == {
        "name": "throughput_sps",
        "value": 100.0,
        "unit": "samples/s",
        "higher_is_better": True,
    }
    assert set(record["stage_timings_s"]) == {"provision", "launch", "wait", "collect", "check"}
    assert record["job"]["id"].startswith("local-")
    assert Path(record["job"]["logs"]["stdout"]).read_text().startswith("starting on cpu-b")
    report = _report(bench_dir.path / "out.json")  # provenance once per report; records refer to it
    assert record["provenance"] == {"ref": "#/provenance"}
    assert report["provenance"]["python"] and report["provenance"]["cpu_model"]
    assert len(record["workload"]["config_hash"]) == 16


def test_update_references_writes_measured_values(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=_test_file('{"throughput_sps": 123.0}'))
    result = bench_dir.runpytest("--hetero-update-references")
    result.assert_outcomes(passed=1)
    refs = (bench_dir.path / "references.yaml").read_text()
    assert "test_b.py::test_bench" in refs and "value: 123.0" in refs
    rerun = bench_dir.runpytest("--hetero-require-references")
    rerun.assert_outcomes(passed=1)


def test_broken_references_file_is_a_clear_error(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=_test_file())
    bench_dir.makefile(
        ".yaml", references="version: 1\nreferences:\n  test_bench:\n    local:\n      throughput_sps: {value: fast}\n"
    )
    result = bench_dir.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, "checked at session start, before any job"
    result.stderr.fnmatch_lines(["*references.yaml: invalid references (1 problem(s)):*", "*.value: 'fast' is not*"])


def test_dry_run_submits_nothing(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=_test_file('{"throughput_sps": 1.0}', extra=', "marker_file": "ran"'))
    result = bench_dir.runpytest("--hetero-dry-run")
    result.assert_outcomes(passed=1)  # rendered: not the word of an incompatibility skip
    result.stdout.fnmatch_lines(["*dry run: test_b.py::test_bench[[]local[]]*", "*work.py*"])
    assert not (bench_dir.path / ".hetero" / "runs").exists()


def test_dry_run_renders_only_what_would_run_and_lists_the_rest_once(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=all", "--hetero-dry-run")
    result.assert_outcomes(passed=2, skipped=1)
    text = result.stdout.str()
    assert "dry run: test_b.py::test_bench[cpu-a]" in text and "dry run: test_b.py::test_bench[cpu-b]" in text
    assert "dry run: test_b.py::test_bench[gpu-sim]" not in text
    result.stdout.fnmatch_lines(
        [
            "*dry run: 1 case(s) not rendered (skipped)*",
            "test_b.py::test_bench[[]gpu-sim[]]: needs accelerator kind cpu, platform 'gpu-sim' has nvidia-gpu",
        ]
    )
    assert text.count("has nvidia-gpu") == 1


def test_dry_run_fails_a_case_whose_job_cannot_be_rendered(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(test_b=_test_file())
    bench_dir.makeconftest(
        """
def pytest_hetero_modify_jobspec(spec, item):
    raise __import__("pytest_hetero.errors").errors.ConfigError("no such queue 'gpu-night'")
"""
    )
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=cpu-a", "--hetero-dry-run")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot render the job: no such queue 'gpu-night'*"])


def test_secret_values_are_scrubbed_from_failure_output(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(
        test_s="""
import pytest

@pytest.mark.hetero(command=["python", "-c", "import os, sys; print(os.environ['API_TOKEN']); sys.exit(1)"])
def test_leaky():
    pass
"""
    )
    result = bench_dir.runpytest("--platforms-file=platforms.yaml", "--platform=cpu-b")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*wait: the workload exited with status 1*", "[[]stdout.log[]]", "[*][*][*]"])
    assert "hunter2-secret" not in result.stdout.str()


def test_hetero_run_escape_hatch(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_h="""
import pytest
from pytest_hetero.workload import Workload

@pytest.mark.hetero(command=["python", "work.py"], config={"metrics": {"throughput_sps": 5.0}})
def test_two_phases(hetero_result, hetero_run, hetero_platform):
    extra = hetero_run(Workload(name="again", command=("python", "work.py"), config={"metrics": {"x_per_s": 7.0}}))
    assert extra.error is None
    assert extra.metric("x_per_s") == 7.0
    assert extra.platform is hetero_platform
    assert hetero_result.metric("throughput_sps") == 5.0
"""
    )
    result = bench_dir.runpytest()
    result.assert_outcomes(passed=1)


def test_repeat_reports_median_samples_and_spread(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(
        ".py",
        counting="""
import json
from pathlib import Path
runs = Path("runs.txt")
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
value = {1: 10.0, 2: 30.0, 3: 20.0}[len(runs.read_text())]
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "throughput_sps", "value": value}]}))
""",
    )
    bench_dir.makepyfile(
        test_r="""
import pytest

@pytest.mark.hetero(command=["python", "counting.py"])
def test_r(hetero_result):
    assert hetero_result.metric("throughput_sps") == 20.0
"""
    )
    result = bench_dir.runpytest("--hetero-repeat=3", "--hetero-json=out.json")
    result.assert_outcomes(passed=1)
    record = _report(bench_dir.path / "out.json")["results"][0]
    metric = record["metrics"]["throughput_sps"]
    assert metric["samples"] == [10.0, 30.0, 20.0]
    assert metric["stats"]["n"] == 3
    assert metric["stats"]["min"] == 10.0
    assert len(record["job"]["ids"]) == 3
    assert [Path(p).name for p in sorted(Path(record["job"]["workdir"]).iterdir())] == [
        "repeat-1",
        "repeat-2",
        "repeat-3",
    ]


def test_repeat_rejects_nonsense(bench_dir: pytest.Pytester) -> None:
    result = bench_dir.runpytest("--hetero-repeat=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hetero-repeat '0': expected a whole number from 1 to 1000*"])


def test_exit_status_tells_performance_from_other_failures(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_b=_test_file('{"throughput_sps": 100.0}'))
    bench_dir.makefile(
        ".yaml", references="version: 1\nreferences:\n  test_bench:\n    local: {throughput_sps: [500, -0.1, null]}\n"
    )
    assert bench_dir.runpytest().ret == 6
    bench_dir.makepyfile(test_other="def test_plain():\n    assert False\n")
    assert bench_dir.runpytest().ret == pytest.ExitCode.TESTS_FAILED
