"""Sweeps: parametrize values and per-case hetero marks feed the workload config, one case each."""

from __future__ import annotations

import json
from typing import Any

import pytest

PARAMETRIZED = """
import pytest

@pytest.mark.parametrize("batch_size", [2, 8])
@pytest.mark.hetero(command=["python", "work.py"], config={"metrics": {"throughput_sps": 1.0}}, params=["batch_size"])
def test_sweep(hetero_result, batch_size):
    assert hetero_result.workload.config["batch_size"] == batch_size
"""

PER_CASE_MARKS = """
import pytest

FP32 = {"precision": "fp32", "metrics": {"throughput_sps": 1.0}}
BF16 = {"precision": "bf16", "metrics": {"throughput_sps": 2.0}}

@pytest.mark.parametrize(
    "precision",
    [
        pytest.param("fp32", marks=pytest.mark.hetero(config=FP32)),
        pytest.param("bf16", marks=pytest.mark.hetero(config=BF16)),
    ],
)
@pytest.mark.hetero(command=["python", "work.py"], config={"image_size": 32})
def test_precision(hetero_result, precision):
    assert hetero_result.workload.config["precision"] == precision
    assert hetero_result.workload.config["image_size"] == 32
"""

ONLY_CASE_MARKS = """
import pytest

@pytest.mark.parametrize(
    "size",
    [pytest.param(s, marks=pytest.mark.hetero(command=["python", "work.py"], config={"size": s})) for s in (1, 2)],
)
def test_only_cases(hetero_result, size):
    assert hetero_result.workload.config["size"] == size
"""


def _records(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    report = json.loads((pytester.path / "r.json").read_text())
    return sorted(report["results"], key=lambda r: r["nodeid"])


def test_parametrize_values_feed_the_config(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_s=PARAMETRIZED)
    result = bench_dir.runpytest("--hetero-json=r.json")
    result.assert_outcomes(passed=2)
    records = _records(bench_dir)
    assert [r["test"] for r in records] == ["test_s.py::test_sweep[2]", "test_s.py::test_sweep[8]"]
    assert [r["workload"]["config"]["batch_size"] for r in records] == [2, 8]
    assert records[0]["workload"]["config_hash"] != records[1]["workload"]["config_hash"]


def test_marks_of_a_case_merge_with_the_test_s(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_p=PER_CASE_MARKS)
    result = bench_dir.runpytest("--hetero-json=r.json")
    result.assert_outcomes(passed=2)
    records = _records(bench_dir)
    assert [r["metrics"]["throughput_sps"]["value"] for r in records] == [2.0, 1.0]  # bf16, fp32
    assert {r["test"] for r in records} == {"test_p.py::test_precision[bf16]", "test_p.py::test_precision[fp32]"}


def test_a_benchmark_declared_only_on_its_cases(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_o=ONLY_CASE_MARKS)
    result = bench_dir.runpytest("--hetero-json=r.json")
    result.assert_outcomes(passed=2)
    assert [r["workload"]["config"]["size"] for r in _records(bench_dir)] == [1, 2]


def test_params_must_name_parametrize_arguments(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_s=PARAMETRIZED.replace('params=["batch_size"]', 'params=["batch"]'))
    result = bench_dir.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*params=[[]'batch'[]] are not parametrize arguments*"])
