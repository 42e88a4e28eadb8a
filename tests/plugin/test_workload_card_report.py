"""End to end: a built-in workload's card and its deliberate differences reach the JSON report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_hetero.schemas import load_schema, schema_errors

CONFIG = {"preset": "tiny", "recipe": "lars", "train_steps": 3, "warmup_steps": 1, "eval_steps": 1, "threads": 1}


def test_the_json_report_carries_the_card_the_workload_describes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_r=f"""
import pytest

@pytest.mark.hetero(workload="resnet50", config={CONFIG!r})
def test_r(hetero_result):
    pass
"""
    )
    # a subprocess: scipy (numpy) cannot be imported twice in one process, as inline runs would
    pytester.runpytest_subprocess("--hetero-json=out.json", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    report = json.loads((pytester.path / "out.json").read_text())
    assert schema_errors(report, load_schema("report")) == []
    [record] = report["results"]

    argv = [sys.executable, "-m", "pytest_hetero.workloads.resnet50", "--describe", "--config-json", json.dumps(CONFIG)]
    described = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout)
    assert record["workload"]["reported"]["card"] == described
    assert described["optimizer"]["name"] == "lars" and described["parameters"] == 25_557_032
    provenance = record["provenance"]["workload"]
    assert provenance["recipe"] == "lars" and provenance["mlperf_division"] == "closed"
    assert [d["id"] for d in provenance["deliberate_differences"]] == ["smoke-test-preset"]
