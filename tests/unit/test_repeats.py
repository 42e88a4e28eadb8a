"""Repeats as MLPerf does them: a seed each, and the aggregate the record names."""

from __future__ import annotations

import argparse
import statistics

import pytest

from pytest_hetero.arguments import aggregate
from pytest_hetero.metrics import Metric, combine_repeats
from pytest_hetero.workloads.common import WorkloadConfigError, parse_config
from pytest_hetero.workloads.protocol import SEED_ENV, WORKLOAD_CONFIG_ENV

RUNS = [40.0, 10.0, 30.0, 20.0, 100.0]


def _runs(values: list[float]) -> list[dict[str, Metric]]:
    return [{"throughput_sps": Metric("throughput_sps", v, "samples/s")} for v in values]


def test_median_is_the_default_and_named() -> None:
    metric = combine_repeats(_runs(RUNS))["throughput_sps"]

    assert metric.value == 30.0 == metric.stats["median"]  # type: ignore[index]
    assert metric.aggregate == "median"
    assert metric.as_dict()["aggregate"] == "median"


def test_mlperf_drops_the_best_and_the_worst_then_averages() -> None:
    metric = combine_repeats(_runs(RUNS), "mlperf")["throughput_sps"]

    assert metric.value == pytest.approx(statistics.fmean([20.0, 30.0, 40.0]))
    assert metric.aggregate == "trimmed_mean"
    assert metric.value == metric.stats["trimmed_mean"]  # type: ignore[index]
    assert metric.samples == tuple(RUNS)


def test_mlperf_with_fewer_than_three_samples_says_it_is_their_mean() -> None:
    runs = [*_runs([10.0, 20.0]), {}]  # the third repeat measured nothing
    metric = combine_repeats(runs, "mlperf")["throughput_sps"]

    assert (metric.value, metric.aggregate) == (15.0, "mean")


def test_a_single_run_has_no_aggregate_in_its_record() -> None:
    [single] = combine_repeats(_runs([5.0]), "mlperf").values()

    assert single.value == 5.0 and "aggregate" not in single.as_dict()


def test_the_aggregate_survives_a_boundary() -> None:
    metric = combine_repeats(_runs(RUNS), "mlperf")["throughput_sps"]

    assert Metric.from_dict("throughput_sps", metric.as_dict()) == metric


def test_unknown_aggregates_are_refused() -> None:
    with pytest.raises(ValueError, match="aggregate 'mean'"):
        combine_repeats(_runs(RUNS), "mean")
    with pytest.raises(argparse.ArgumentTypeError, match="'best': expected one of median, mlperf"):
        aggregate("best")


DEFAULTS = {"seed": 1, "batch_size": 4}


def test_the_repeat_seed_replaces_the_config_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKLOAD_CONFIG_ENV, raising=False)
    monkeypatch.setenv(SEED_ENV, "123456")

    assert parse_config(["--config-json", '{"seed": 7}'], DEFAULTS) == {"seed": 123456, "batch_size": 4}
    assert parse_config([], {"batch_size": 4}) == {"batch_size": 4}  # a workload without a seed ignores it


def test_a_malformed_repeat_seed_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SEED_ENV, "seven")

    with pytest.raises(WorkloadConfigError, match=r"\$HETERO_SEED must be an integer, got 'seven'"):
        parse_config([], DEFAULTS)
