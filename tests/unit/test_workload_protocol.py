"""Unit tests of pytest_hetero.workloads.protocol: the job environment and the metrics line."""

from __future__ import annotations

import ast
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from workload_runs import strict_json

import pytest_hetero
from pytest_hetero.workloads import protocol
from pytest_hetero.workloads.protocol import (
    DATA_NODE_LOCAL_ENV,
    METRICS_PREFIX,
    REPEAT_ENV,
    SEED_ENV,
    MetricsLineError,
    WorkloadMetric,
    data_env_name,
    emit_metrics,
    job_environment,
    parse_metrics_line,
    repeat_seed,
)

WORKLOADS = Path(pytest_hetero.__file__).resolve().parent / "workloads"


def _emitted(metrics: list[WorkloadMetric], config: dict[str, Any]) -> str:
    stream = io.StringIO()
    emit_metrics(metrics, "toy", config, stream=stream)
    return stream.getvalue()


def test_public_names_are_pinned() -> None:
    assert sorted(protocol.__all__) == sorted(
        [
            "ACCELERATORS_PER_NODE_ENV",
            "ACCELERATOR_KINDS",
            "ACCELERATOR_KIND_ENV",
            "DATA_ENV_PREFIX",
            "DATA_NODE_LOCAL_ENV",
            "METRICS_PREFIX",
            "PEAK_TFLOPS_ENV",
            "PLATFORM_ENV",
            "RAPL_ROOT_ENV",
            "REPEAT_ENV",
            "RUN_ID_ENV",
            "SEED_ENV",
            "WORKLOAD_CONFIG_ENV",
            "MetricsLineError",
            "WorkloadMetric",
            "data_env_name",
            "emit_metrics",
            "format_metrics_line",
            "job_environment",
            "parse_metrics_line",
            "repeat_seed",
        ]
    )


def test_no_workload_module_spells_a_hetero_variable() -> None:
    spelled = [
        f"{path.relative_to(WORKLOADS)}: {node.value}"
        for path in sorted(WORKLOADS.rglob("*.py"))
        if path.name != "protocol.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("HETERO_")
    ]

    assert spelled == []


# --------------------------------------------------------------------------
# the job environment
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "variable"),
    [
        ("imagenet", "HETERO_DATA_IMAGENET"),
        ("node_local", DATA_NODE_LOCAL_ENV),
        ("kits-19.v2", "HETERO_DATA_KITS-19.V2"),
        ("my data/set", "HETERO_DATA_MY_DATA_SET"),
        ("  ~odd~  ", "HETERO_DATA_ODD"),
        ("x" * 130, "HETERO_DATA_" + "X" * 120),
    ],
)
def test_data_env_name(root: str, variable: str) -> None:
    assert data_env_name(root) == variable


def test_job_environment() -> None:
    env = job_environment(
        config_json='{"preset": "tiny"}',
        platform="a100",
        accelerator_kind="nvidia-gpu",
        accelerators_per_node=8,
        run_id="20250101-000000-abcdef",
        peak_tflops={"bf16": 312.0, "fp32": 19.5},
        data_roots={"imagenet": "/data/imagenet", "node_local": "/scratch"},
    )

    assert env == {
        "HETERO_WORKLOAD_CONFIG": '{"preset": "tiny"}',
        "HETERO_PLATFORM": "a100",
        "HETERO_ACCELERATOR_KIND": "nvidia-gpu",
        "HETERO_ACCELERATORS_PER_NODE": "8",
        "HETERO_RUN_ID": "20250101-000000-abcdef",
        "HETERO_PEAK_TFLOPS_JSON": '{"bf16": 312.0, "fp32": 19.5}',
        "HETERO_DATA_IMAGENET": "/data/imagenet",
        "HETERO_DATA_NODE_LOCAL": "/scratch",
    }


def test_job_environment_of_a_repeat_carries_its_seed() -> None:
    common: dict[str, Any] = {
        "config_json": "{}",
        "platform": "cpu",
        "accelerator_kind": "cpu",
        "accelerators_per_node": 1,
        "run_id": "r",
        "peak_tflops": {},
        "data_roots": {},
    }

    second = job_environment(**common, repeat=2, seed=repeat_seed(7, 1))
    first_without_seed = job_environment(**common, repeat=1, seed=repeat_seed(None, 0))

    assert second[REPEAT_ENV] == "2" and second[SEED_ENV] == str(repeat_seed(7, 1))
    assert first_without_seed[REPEAT_ENV] == "1" and SEED_ENV not in first_without_seed


def test_repeat_seeds_keep_the_first_and_differ_for_the_others() -> None:
    seeds = [repeat_seed(42, index) for index in range(10)]

    assert seeds[0] == 42
    assert len(set(seeds)) == 10
    assert all(seed is not None and 0 <= seed < 2**31 for seed in seeds)
    assert seeds == [repeat_seed(42, index) for index in range(10)]  # the same in every session
    assert repeat_seed(None, 0) is None
    assert repeat_seed(None, 1) != repeat_seed(0, 1) != repeat_seed(1, 1)


# --------------------------------------------------------------------------
# writing the metrics line
# --------------------------------------------------------------------------


def test_record_is_one_prefixed_json_line() -> None:
    text = _emitted([WorkloadMetric("throughput_sps", 12.5, "samples/s", True)], {"a": 1})

    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert text.startswith(METRICS_PREFIX)
    record = strict_json(text[len(METRICS_PREFIX) :])
    assert record == {
        "metrics": [{"name": "throughput_sps", "value": 12.5, "unit": "samples/s", "higher_is_better": True}],
        "workload": "toy",
        "config": {"a": 1},
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_become_null(bad: float) -> None:
    text = _emitted([WorkloadMetric("train_loss", bad, "", False)], {"lr": bad, "xs": [bad]})

    record = strict_json(text[len(METRICS_PREFIX) :])
    assert record["metrics"][0]["value"] is None
    assert record["config"] == {"lr": None, "xs": [None]}


# --------------------------------------------------------------------------
# reading it
# --------------------------------------------------------------------------


def test_parse_metrics_line_takes_last_prefixed_line() -> None:
    first = _emitted([WorkloadMetric("m", 1.0, "s", False)], {})
    last = _emitted([WorkloadMetric("m", 2.0, "s", False)], {})
    stdout = ":::MLLOG {}\n" + first + "noise\n" + last

    assert parse_metrics_line(stdout)["metrics"][0]["value"] == 2.0


def test_parse_metrics_line_without_record_raises() -> None:
    with pytest.raises(ValueError, match="HETERO_METRICS") as info:
        parse_metrics_line(":::MLLOG {}\n")

    assert isinstance(info.value, MetricsLineError)
    assert info.value.lineno is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{bad", "malformed metrics record: Expecting property name enclosed in double quotes at column 2"),
        ("[1]", "the metrics record must be an object with a 'metrics' list"),
        ('{"metrics": 3}', "the metrics record must be an object with a 'metrics' list"),
        ('{"metrics": [{"value": 1}]}', "metrics[0]: each metric needs a string 'name'"),
        ('{"metrics": [{"name": "a"}, 7]}', "metrics[1]: each metric needs a string 'name'"),
        ('{"metrics": [{"name": "x", "value": "fast"}]}', "metrics[0]: metric 'x' has non-numeric value 'fast'"),
        ('{"metrics": [{"name": "x", "value": true}]}', "metrics[0]: metric 'x' has non-numeric value True"),
        (
            '{"metrics": [{"name": "x", "value": 1, "unit": 3}]}',
            "metrics[0]: metric 'x': 'unit' must be a string, 'higher_is_better' a bool",
        ),
        (
            '{"metrics": [{"name": "x", "value": 1, "higher_is_better": "yes"}]}',
            "metrics[0]: metric 'x': 'unit' must be a string, 'higher_is_better' a bool",
        ),
    ],
)
def test_malformed_lines_say_where_and_why(record: str, reason: str) -> None:
    with pytest.raises(MetricsLineError) as info:
        parse_metrics_line(f"first\n{METRICS_PREFIX}{record}\nlast")

    assert (info.value.lineno, info.value.reason) == (2, reason)
    assert str(info.value) == f"line 2: {reason}"


def test_minimal_entries_and_extra_keys_are_accepted() -> None:
    record = {"metrics": [{"name": "t", "value": None}, {"name": "n", "value": 3}], "workload": "w", "x": [1]}

    assert parse_metrics_line(METRICS_PREFIX + json.dumps(record)) == record
