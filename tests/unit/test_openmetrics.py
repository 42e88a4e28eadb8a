"""OpenMetrics output checked by the real validators (issue 14): ``promtool check metrics`` (its lint
included) and prometheus_client's OpenMetrics parser.

promtool comes from Debian's ``prometheus`` package (scripts/test.sh installs it as root).
Without it the promtool test is skipped, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fake_reports import record, report
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from pytest_hetero.reporting.openmetrics import metric_family_name, render_openmetrics

INSTALL = "apt-get install prometheus"


def parse(text: str) -> list[Metric]:
    """prometheus_client's OpenMetrics parser: raises on anything invalid (a repeated # TYPE line too)."""
    return list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]


def tricky_reports() -> list[dict[str, object]]:
    """Names that sanitise alike, abbreviated and non-base units, a metric called 'tests'."""
    first = record("test_a", "a100", {"mlperf.score": [1.5], "mlperf_score": [2.5], "step_time_ms": [12.4]}, unit="ms")
    second = record("test_b", "a100", {"time_to_train_s": [100.0], "tests": [3.0]}, unit="s")
    third = record("test_c", "mi250", {"peak_mem_mb": [512.0], "bw_gb_per_s": [3.5], "MFU": [0.4]}, unit="")
    fourth = record("test_d", "mi250", {"tokens_per_s": [90.0], "mem_bw_GB_per_s": [1.5]}, unit="GB/s")
    return [report([first, second, third, fourth])]


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which(os.environ.get("HETERO_PROMTOOL", "promtool"))
    if found is not None:
        return found
    reason = f"promtool is not installed ({INSTALL})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the OpenMetrics check must run")
    pytest.skip(reason)


def test_promtool_accepts_the_output_lint_included(promtool: str, tmp_path: Path) -> None:
    text = render_openmetrics(tricky_reports())
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), text


def test_prometheus_client_parses_every_family_once() -> None:
    text = render_openmetrics(tricky_reports())
    families = parse(text)
    names = [family.name for family in families]
    assert len(names) == len(set(names)), names
    assert text.count("# TYPE hetero_mlperf_score gauge") == 1
    scores = {s.labels["metric"]: s.value for f in families if f.name == "hetero_mlperf_score" for s in f.samples}
    assert scores == {"mlperf.score": 1.5, "mlperf_score": 2.5}


def test_units_are_spelled_out_in_base_units() -> None:
    samples = {
        (s.name, s.labels["test"]): s.value
        for family in parse(render_openmetrics(tricky_reports()))
        for s in family.samples
        if "test" in s.labels
    }
    assert samples[("hetero_step_time_seconds", "test_a")] == pytest.approx(0.0124)
    assert samples[("hetero_time_to_train_seconds", "test_b")] == 100.0
    assert samples[("hetero_peak_mem_bytes", "test_c")] == 512e6
    assert samples[("hetero_bw_bytes_per_second", "test_c")] == 3.5e9
    assert samples[("hetero_tokens_per_second", "test_d")] == 90.0
    assert samples[("hetero_tests_metric", "test_b")] == 3.0  # not the outcome family
    assert samples[("hetero_mfu", "test_c")] == 0.4


@pytest.mark.parametrize(
    ("name", "unit", "family"),
    [
        ("throughput_sps", "samples/s", "hetero_throughput_sps"),
        ("a_b", "", "hetero_a_b"),  # 'b' is not a unit here: the metric declares none
        ("latency_s", "s", "hetero_latency_seconds"),
        ("latency_us", "us", "hetero_latency_seconds"),
        ("wait_min", "", "hetero_wait_seconds"),
    ],
)
def test_family_names(name: str, unit: str, family: str) -> None:
    assert metric_family_name(name, unit) == family
