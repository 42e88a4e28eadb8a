"""Unit tests of pytest_hetero.workloads.common (stdlib helpers of the workloads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workload_runs import strict_json

import pytest_hetero
from pytest_hetero.workloads import common
from pytest_hetero.workloads.common import StepTimer, WorkloadConfigError, parse_config
from pytest_hetero.workloads.protocol import PEAK_TFLOPS_ENV, WORKLOAD_CONFIG_ENV

REPO_ROOT = Path(pytest_hetero.__file__).resolve().parents[1]
DEFAULTS: dict[str, common.ConfigValue] = {
    "batch_size": 4,
    "lr": 0.1,
    "channels_last": False,
    "precision": "fp32",
}


# --------------------------------------------------------------------------
# parse_config
# --------------------------------------------------------------------------


@pytest.fixture
def no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKLOAD_CONFIG_ENV, raising=False)


@pytest.mark.usefixtures("no_env_config")
def test_defaults_without_any_source() -> None:
    assert parse_config([], DEFAULTS) == DEFAULTS


def test_precedence_defaults_env_file_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKLOAD_CONFIG_ENV, json.dumps({"batch_size": 8, "lr": 0.2}))
    assert parse_config([], DEFAULTS) == {**DEFAULTS, "batch_size": 8, "lr": 0.2}

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"batch_size": 16, "precision": "bf16"}))
    from_file = parse_config(["--config", str(path)], DEFAULTS)
    # the environment is only read when no flag is given
    assert from_file == {**DEFAULTS, "batch_size": 16, "precision": "bf16"}

    both = parse_config(["--config", str(path), "--config-json", '{"batch_size": 32}'], DEFAULTS)
    assert both == {**DEFAULTS, "batch_size": 32, "precision": "bf16"}


@pytest.mark.usefixtures("no_env_config")
def test_unknown_key_names_key_and_valid_keys() -> None:
    with pytest.raises(WorkloadConfigError) as info:
        parse_config(["--config-json", '{"batch_sise": 8}'], DEFAULTS)

    message = str(info.value)
    assert "'batch_sise'" in message
    assert "did you mean 'batch_size'" in message
    assert "valid keys: batch_size, channels_last, lr, precision" in message


def test_unknown_key_in_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKLOAD_CONFIG_ENV, '{"nope": 1}')
    with pytest.raises(WorkloadConfigError, match=r"'nope'.*\$HETERO_WORKLOAD_CONFIG"):
        parse_config([], DEFAULTS)


@pytest.mark.usefixtures("no_env_config")
@pytest.mark.parametrize(
    ("override", "expected_type"),
    [
        ({"batch_size": "4"}, "int"),
        ({"batch_size": 4.0}, "int"),
        ({"batch_size": True}, "int"),  # bool is an int subclass, but not a count
        ({"channels_last": 1}, "bool"),
        ({"lr": "0.1"}, "float"),
        ({"precision": None}, "str"),
    ],
)
def test_wrong_type_is_rejected(override: dict[str, Any], expected_type: str) -> None:
    key = next(iter(override))
    with pytest.raises(WorkloadConfigError, match=f"'{key}'.* must be {expected_type}"):
        parse_config(["--config-json", json.dumps(override)], DEFAULTS)


@pytest.mark.usefixtures("no_env_config")
def test_int_is_accepted_for_float() -> None:
    config = parse_config(["--config-json", '{"lr": 1}'], DEFAULTS)

    assert config["lr"] == 1.0
    assert type(config["lr"]) is float


@pytest.mark.usefixtures("no_env_config")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config-json", "[1, 2]"], "must be a JSON object"),
        (["--config-json", "{bad"], "not valid JSON"),
        (["--config", "/nonexistent/config.json"], "cannot read --config"),
    ],
)
def test_unreadable_config(argv: list[str], message: str) -> None:
    with pytest.raises(WorkloadConfigError, match=message):
        parse_config(argv, DEFAULTS)


@pytest.mark.usefixtures("no_env_config")
def test_config_or_exit_prints_error_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        common.config_or_exit(["--config-json", '{"x": 1}'], DEFAULTS, prog="toy")

    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("toy: config error: unknown config key 'x'")


def test_check_choice_and_min() -> None:
    common.check_choice(DEFAULTS, "precision", ["fp32", "bf16"])
    common.check_min(DEFAULTS, "batch_size", 1)
    with pytest.raises(WorkloadConfigError, match="'precision' must be one of bf16, fp16"):
        common.check_choice(DEFAULTS, "precision", ["bf16", "fp16"])
    with pytest.raises(WorkloadConfigError, match="'batch_size' must be >= 8"):
        common.check_min(DEFAULTS, "batch_size", 8)


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------


class FakeClock:
    """A clock that advances only when told to."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _run_steps(timer: StepTimer, clock: FakeClock, steps: list[tuple[float, float]]) -> None:
    def batches() -> Iterator[int]:
        for wait_s, _ in steps:
            clock.now_s += wait_s
            yield 0

    iterator = batches()
    for _, compute_s in steps:
        timer.fetch(iterator)
        with timer.compute():
            clock.now_s += compute_s


def test_step_timer_excludes_warmup_and_separates_data_wait() -> None:
    clock = FakeClock()
    timer = StepTimer(warmup_steps=2, samples_per_step=8, clock=clock)
    # (data wait, compute) per step; the two warm-up steps are slow
    _run_steps(timer, clock, [(1.0, 5.0), (0.0, 3.0), (0.5, 1.5), (0.0, 1.0), (0.0, 3.0)])

    summary = timer.summary()

    assert summary.total_steps == 5
    assert summary.steady_steps == 3
    assert summary.throughput_sps == pytest.approx(3 * 8 / 6.0)
    assert summary.step_time_ms == pytest.approx(2000.0)  # median of 2, 1, 3 s
    assert summary.loop_time_s == pytest.approx(15.0)
    assert summary.data_wait_s == pytest.approx(1.5)
    assert summary.data_wait_fraction == pytest.approx(0.1)


def test_step_timer_without_steady_steps_raises() -> None:
    clock = FakeClock()
    timer = StepTimer(warmup_steps=2, samples_per_step=1, clock=clock)
    _run_steps(timer, clock, [(0.0, 1.0), (0.0, 1.0)])

    with pytest.raises(ValueError, match="no steady steps"):
        timer.summary()


def test_timing_metrics_names_units_and_directions() -> None:
    clock = FakeClock()
    timer = StepTimer(warmup_steps=0, samples_per_step=1, clock=clock)
    _run_steps(timer, clock, [(0.0, 1.0)])

    metrics = {m.name: m for m in common.timing_metrics(timer.summary())}

    assert {n: (m.unit, m.higher_is_better) for n, m in metrics.items()} == {
        "throughput_sps": ("samples/s", True),
        "step_time_ms": ("ms", False),
        "data_wait_s": ("s", False),
        "data_wait_fraction": ("ratio", False),
        "steady_steps": ("steps", True),
    }


def test_peak_rss_is_plausible() -> None:
    peak_mb = common.peak_rss_mb()

    assert peak_mb is not None
    assert 1 < peak_mb < 1024 * 1024


# --------------------------------------------------------------------------
# MLLOG emitters
# --------------------------------------------------------------------------


def test_stdlib_mllogger_line_format(capsys: pytest.CaptureFixture[str]) -> None:
    mllog = common.make_mllogger(use_mlperf_logging=False)
    mllog.event("eval_accuracy", 0.5, metadata={"epoch_num": 1})
    line_no = sys._getframe().f_lineno - 1

    line = capsys.readouterr().out.strip()
    assert line.startswith(common.MLLOG_PREFIX)
    record = strict_json(line[len(common.MLLOG_PREFIX) :])
    assert list(record) == ["namespace", "time_ms", "event_type", "key", "value", "metadata"]
    assert record["event_type"] == "POINT_IN_TIME"
    assert record["metadata"] == {"file": __file__, "lineno": line_no, "epoch_num": 1}


_BOTH_EMITTERS = """
import sys
from pytest_hetero.workloads.common import make_mllogger
for use in (True, False):
    logger = make_mllogger(sys.argv[1] if use else sys.argv[2], use_mlperf_logging=use)
    logger.start("epoch_start", None, {"epoch_num": 1})
"""


def test_stdlib_mllogger_matches_mlperf_logging(tmp_path: Path) -> None:
    pytest.importorskip("mlperf_logging")
    files = [tmp_path / "mlperf.log", tmp_path / "stdlib.log"]
    result = subprocess.run(
        [sys.executable, "-c", _BOTH_EMITTERS, *map(str, files)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    stdout_records = [_mllog_record(line) for line in result.stdout.splitlines()]
    file_records = [_mllog_record(path.read_text().strip()) for path in files]
    assert len(stdout_records) == 2
    assert stdout_records[0] == stdout_records[1]
    assert file_records == stdout_records
    assert stdout_records[0]["metadata"] == {"file": "<string>", "lineno": 6, "epoch_num": 1}


def _mllog_record(line: str) -> dict[str, Any]:
    assert line.startswith(common.MLLOG_PREFIX)
    record: dict[str, Any] = strict_json(line[len(common.MLLOG_PREFIX) :])
    del record["time_ms"]
    return record


# --------------------------------------------------------------------------
# presets, model FLOPs and MFU
# --------------------------------------------------------------------------


def test_preset_picks_defaults_and_explicit_keys_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKLOAD_CONFIG_ENV, raising=False)
    defaults: dict[str, common.ConfigValue] = {"preset": "tiny", "size": 32, "epochs": 1}
    presets: dict[str, dict[str, common.ConfigValue]] = {"tiny": {}, "standard": {"size": 128, "epochs": 9}}

    config = common.parse_preset_config(["--config-json", '{"preset": "standard", "epochs": 2}'], defaults, presets)

    assert config == {"preset": "standard", "size": 128, "epochs": 2}
    with pytest.raises(WorkloadConfigError, match="'preset' must be one of tiny, standard; got 'huge'"):
        common.parse_preset_config(["--config-json", '{"preset": "huge"}'], defaults, presets)


def test_train_flops_of_a_linear_layer_are_counted_on_meta() -> None:
    import torch

    from pytest_hetero.workloads.measure import count_train_flops

    flops = count_train_flops(
        lambda: torch.nn.Linear(16, 8, bias=False),
        lambda: (torch.empty(4, 16), torch.empty(4, 8)),
        torch.nn.MSELoss(),
    )

    assert flops == 2 * (2 * 4 * 16 * 8)  # forward and the weight gradient; inputs need no gradient


def test_peak_and_mfu() -> None:
    from pytest_hetero.workloads.measure import mfu, peak_tflops

    env = {PEAK_TFLOPS_ENV: '{"bf16": 312, "fp32": 19.5}'}

    assert peak_tflops("bf16", env) == 312
    assert peak_tflops("fp16", env) is None
    assert peak_tflops("bf16", {PEAK_TFLOPS_ENV: "not json"}) is None
    assert mfu(1e12, 100.0, 312.0, 2) == pytest.approx(100e12 / 624e12)
    assert mfu(None, 100.0, 312.0, 1) is None
