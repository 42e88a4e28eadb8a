"""Like with like, end to end: fingerprints in every record, the gate refusing to pair what changed; repeats
with a seed each, aggregated as asked."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.reporting.json_report import expand_report
from pytest_hetero.schemas import load_schema, schema_errors

WORKLOAD = """
import json
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "throughput_sps", "value": 400.0}]}))
"""

CATALOGUE = """
version: 1
platforms:
  - name: box
    accelerator: {kind: cpu}
    backend: {kind: local}
    environment: {env: {OMP_NUM_THREADS: "THREADS"}}
"""


def _bench(config: str = '{"batch_size": 32}') -> str:
    return f"""
import pytest

@pytest.mark.hetero(command=["python", "gated.py"], config={config})
def test_gated(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""


@pytest.fixture
def gated(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".py", gated=WORKLOAD)
    pytester.makepyfile(test_fp=_bench())
    pytester.makefile(".yaml", platforms=CATALOGUE.replace("THREADS", "2"))
    return pytester


def _run(pytester: pytest.Pytester, name: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """One run stored in the history and compared with the last comparable one; its record."""
    args = ["--platforms-file=platforms.yaml", "--platform=box", "--hetero-history=h.sqlite", "--hetero-compare=last"]
    # A subprocess: scipy (numpy) cannot be imported twice in one process, as inline runs would.
    result = pytester.runpytest_subprocess(*args, f"--hetero-json={name}.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    report = expand_report(json.loads((pytester.path / f"{name}.json").read_text()))
    assert schema_errors(report, load_schema("report")) == []
    [record] = report["results"]
    return result, record


def _note(record: dict[str, Any]) -> str:
    [comparison] = record["comparisons"]
    note: str = comparison["note"]
    return note


def test_editing_the_workload_file_changes_its_fingerprint_and_the_gate_refuses_to_pair(gated: pytest.Pytester) -> None:
    _, first = _run(gated, "first")
    _, second = _run(gated, "second")
    assert second["comparisons"][0]["verdict"] == "unchanged"  # the same program: paired
    assert second["workload"]["fingerprint"] == first["workload"]["fingerprint"]
    assert second["workload"]["code"] == {"gated.py": first["workload"]["code"]["gated.py"]}

    (gated.path / "gated.py").write_text(WORKLOAD.replace("400.0", "200.0"))  # the rate halves
    result, edited = _run(gated, "edited")

    old, new = second["workload"]["fingerprint"], edited["workload"]["fingerprint"]
    assert new != old and edited["workload"]["config_hash"] == second["workload"]["config_hash"]
    expected = (
        f"test_fp.py::test_gated on box: workload fingerprint {new} ≠ {old} in the history (run *): "
        "the program changed (gated.py); not compared"
    )
    assert edited["comparisons"][0]["verdict"] == "insufficient-data"
    assert _note(edited).startswith(expected.split("(run *)")[0])
    result.stdout.fnmatch_lines([f"pytest-hetero: {expected}"])


def test_a_changed_config_or_platform_is_named_as_such(gated: pytest.Pytester) -> None:
    _, first = _run(gated, "first")

    gated.makepyfile(test_fp=_bench('{"batch_size": 64}'))
    _, other_config = _run(gated, "config")
    assert "the config changed; not compared" in _note(other_config)
    assert f"≠ {first['workload']['config_hash']} in the history" in _note(other_config)

    gated.makepyfile(test_fp=_bench())
    gated.makefile(".yaml", platforms=CATALOGUE.replace("THREADS", "8"))
    _, other_platform = _run(gated, "platform")
    assert other_platform["platform"]["fingerprint"] != first["platform"]["fingerprint"]
    assert _note(other_platform).endswith("the platform changed (env); not compared")
    assert other_platform["workload"]["fingerprint"] == first["workload"]["fingerprint"]


def test_every_record_carries_both_fingerprints(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_t="""
import pytest

@pytest.mark.hetero(command=["python", "work.py"])
def test_t(hetero_result):
    pass
"""
    )
    bench_dir.runpytest("--hetero-json=out.json").assert_outcomes(passed=1)
    [record] = expand_report(json.loads((bench_dir.path / "out.json").read_text()))["results"]
    assert len(record["workload"]["fingerprint"]) == len(record["platform"]["fingerprint"]) == 16
    assert list(record["workload"]["code"]) == ["work.py"]
    assert set(record["platform"]["fingerprint_parts"]) >= {"backend", "launcher", "env", "image", "resources"}
    assert record["workload"]["seeds"] == [None]  # one run, no seed in the config: the workload's own


TINY = {
    "image_size": 32,
    "batch_size": 2,
    "train_steps": 3,
    "warmup_steps": 1,
    "eval_steps": 1,
    "num_classes": 10,
    "threads": 1,
    "seed": 7,
}


@pytest.mark.slow
def test_three_repeats_get_three_seeds_logged_in_mllog_and_the_mlperf_aggregate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_r=f"""
import pytest

@pytest.mark.hetero(workload="resnet50", config={TINY!r})
def test_r(hetero_result):
    pass
"""
    )
    args = ("--hetero-repeat=3", "--hetero-aggregate=mlperf", "--hetero-json=out.json", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)

    report = expand_report(json.loads((pytester.path / "out.json").read_text()))
    assert schema_errors(report, load_schema("report")) == []
    [record] = report["results"]
    logged = [_mllog_seed(Path(record["job"]["workdir"]) / f"repeat-{n}") for n in (1, 2, 3)]
    assert logged == record["workload"]["seeds"]
    assert logged[0] == 7 and len(set(logged)) == 3  # the config's seed first, then one each
    metric = record["metrics"]["throughput_sps"]
    assert metric["aggregate"] == "trimmed_mean"
    assert metric["value"] == pytest.approx(statistics.median(metric["samples"]))  # of 3: the middle one
    assert metric["value"] == pytest.approx(metric["stats"]["trimmed_mean"])


def _mllog_seed(workdir: Path) -> int:
    """The ``seed`` event of the MLLOG lines a repeat printed."""
    lines = (workdir / "stdout.log").read_text().splitlines()
    events = [json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith(":::MLLOG")]
    [seed] = [event["value"] for event in events if event["key"] == "seed"]
    return int(seed)


def test_the_aggregate_is_checked_against_the_repeats(bench_dir: pytest.Pytester) -> None:
    result = bench_dir.runpytest("--hetero-aggregate=mlperf", "--hetero-repeat=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hetero-aggregate mlperf drops the best and the worst run*not 2*"])
    wrong = bench_dir.runpytest("--hetero-aggregate=best")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
    wrong.stderr.fnmatch_lines(["*--hetero-aggregate: 'best': expected one of median, mlperf*"])


COUNTING_CONFTEST = """
import pytest_hetero.jobs as jobs

taken = []
_real = jobs.fingerprints


def counting(workload, platform, test_dir):
    taken.append(workload.config_hash)
    return _real(workload, platform, test_dir)


jobs.fingerprints = counting


def pytest_unconfigure(config):
    (config.rootpath / "taken.txt").write_text(str(len(taken)))
"""

CASES_AND_SWEEP = """
import pytest

ECHO = ["sh", "-c", 'echo \\':::HETERO_METRICS {"metrics": [{"name": "x_per_s", "value": 1}]}\\'']

@pytest.mark.hetero(command=ECHO)
@pytest.mark.parametrize("case", range(3))
def test_cases(case, hetero_result):
    assert hetero_result.metric("x_per_s") == 1

@pytest.mark.hetero(command=ECHO, params=["n"])
@pytest.mark.parametrize("n", [1, 2])
def test_sweep(n, hetero_result):
    assert hetero_result.metric("x_per_s") == 1
"""


def test_the_cases_of_a_test_take_their_fingerprints_once(pytester: pytest.Pytester) -> None:
    """Issue 15: cases running the same workload on the same platform share its fingerprints (jobs.Shared);
    a sweep's cases differ in config, so each takes its own."""
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(test_shared=CASES_AND_SWEEP)
    result = pytester.runpytest_subprocess("--hetero-json=out.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    assert (pytester.path / "taken.txt").read_text() == "3"  # test_cases once, each of the sweep's two once
    records = expand_report(json.loads((pytester.path / "out.json").read_text()))["results"]
    cases = {r["workload"]["fingerprint"] for r in records if r["test"].startswith("test_shared.py::test_cases")}
    sweep = {r["workload"]["config_hash"] for r in records if r["test"].startswith("test_shared.py::test_sweep")}
    assert len(cases) == 1 and len(sweep) == 2
