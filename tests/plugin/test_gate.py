"""The regression gate inside the pytest run: history store, --hetero-compare, baselines, exit status."""

from __future__ import annotations

import json

import pytest

from pytest_hetero.schemas import load_schema, schema_errors

WORKLOAD = """
import json, os, random
slowdown = float(os.environ.get("HETERO_TEST_SLOWDOWN", "0"))
value = 400.0 * (1 - slowdown) * random.uniform(0.995, 1.005)
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "throughput_sps", "value": value, "unit": "samples/s"}]}))
"""

BENCHMARK = """
import pytest

@pytest.mark.hetero(command=["python", "gated.py"], config={"batch_size": 32})
def test_gated(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0

def test_plain():
    pass
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, slowdown: float, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("HETERO_TEST_SLOWDOWN", str(slowdown))
    # A subprocess: scipy (numpy) cannot be imported twice in one process, as inline runs would.
    return pytester.runpytest_subprocess("--hetero-repeat=5", "--hetero-history=history.sqlite", *args)


@pytest.fixture
def gated(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".py", gated=WORKLOAD)
    pytester.makepyfile(test_gated_bench=BENCHMARK)
    return pytester


def test_injected_slowdown_fails_only_that_test_with_exit_status_6(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(gated, monkeypatch, 0.0, "--hetero-compare=last", "--hetero-save-baseline=golden")
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["*added to the history*saved as baseline 'golden'*"])
    steady = _run(gated, monkeypatch, 0.0, "--hetero-compare=last")
    steady.assert_outcomes(passed=2)
    slow = _run(gated, monkeypatch, 0.10, "--hetero-compare=baseline:golden", "--hetero-json=out.json")
    slow.assert_outcomes(passed=1, failed=1)
    assert slow.ret == 6
    slow.stdout.fnmatch_lines(
        [
            "*performance check failed: test_gated_bench.py::test_gated on local: "
            "throughput_sps: median * → * samples/s (-* %, p=0.00794 < 0.05, min effect 5 %): regression*"
        ]
    )
    report = json.loads((gated.path / "out.json").read_text())
    assert schema_errors(report, load_schema("report")) == []
    [record] = [r for r in report["results"] if r["test"] == "test_gated_bench.py::test_gated"]
    assert record["comparisons"][0]["verdict"] == "regression"
    assert record["comparisons"][0]["relative_change"] == pytest.approx(-0.10, abs=0.02)


def test_first_run_has_nothing_to_compare_with(gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(gated, monkeypatch, 0.0, "--hetero-compare=last", "--hetero-json=out.json")
    result.assert_outcomes(passed=2)
    [record] = [r for r in json.loads((gated.path / "out.json").read_text())["results"] if r["comparisons"]]
    assert record["comparisons"][0]["verdict"] == "insufficient-data"
    assert "no earlier run in the history" in record["comparisons"][0]["note"]


def test_gate_options_are_checked(gated: pytest.Pytester) -> None:
    no_store = gated.runpytest("--hetero-compare=last")
    assert no_store.ret == pytest.ExitCode.USAGE_ERROR
    no_store.stderr.fnmatch_lines(["*--hetero-compare and --hetero-save-baseline need --hetero-history*"])
    bad = gated.runpytest("--hetero-history=h.sqlite", "--hetero-compare=yesterday")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad_expr = gated.runpytest("--hetero-history=h.sqlite", "--hetero-compare=last", "--hetero-compare-fail=mean:lots")
    assert bad_expr.ret == pytest.ExitCode.USAGE_ERROR
    (gated.path / "a-file").write_text("")
    unreachable = gated.runpytest("--hetero-history=a-file/h.sqlite")
    assert unreachable.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in unreachable.stderr.str()
