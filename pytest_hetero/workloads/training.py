"""The training loop, MLPerf logging and metrics that every workload shares.

One run::

    init_start   submission events, seed, [staging_start .. staging_stop],
                 data, model placed by the adapter, hyper-parameter events
    init_stop
    run_start    per epoch: epoch_start, the steps (StepTimer: data wait vs
                 compute), epoch_stop; eval_start, the score, eval_stop;
                 stop early once the quality target is reached
    run_stop     status success (target reached) or aborted

Then rank 0 prints one ``:::HETERO_METRICS`` line (names in
:data:`METRIC_UNITS`; docs/workloads.md describes each).
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pytest_hetero.workloads import data as datalib
from pytest_hetero.workloads.accelerators import Adapter, MissingSDKError, Trainer, make_adapter
from pytest_hetero.workloads.card import CARD_KEY, division, print_card, run_extra
from pytest_hetero.workloads.common import (
    ConfigValue,
    StepTimer,
    WorkloadConfigError,
    exit_config_error,
    timing_metrics,
)
from pytest_hetero.workloads.distributed import DistEnv, dist_env
from pytest_hetero.workloads.energy import EnergyMeter, open_counter
from pytest_hetero.workloads.harness import (
    Config,
    RunShape,
    WorkloadSpec,
    adapter_settings,
    checked_config,
    eval_due,
    resolve_kind,
)
from pytest_hetero.workloads.measure import flops_metrics, peak_rss_mb
from pytest_hetero.workloads.mllog import MLLogger, make_mllogger
from pytest_hetero.workloads.protocol import RUN_ID_ENV, WorkloadMetric, emit_metrics
from pytest_hetero.workloads.timesplit import attribution

__all__ = ["Run", "main", "run"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Run:
    """What a run measured, for the metrics record."""

    timer: StepTimer
    epoch_times_s: list[float] = field(default_factory=list)
    quality: float = math.nan
    loss: float = math.nan
    time_to_train_s: float = math.nan
    staging: datalib.StagingResult | None = None
    flops_per_step: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the card and provenance for the metrics record


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def _data_sources(
    spec: WorkloadSpec, config: Config, adapter: Adapter, env: DistEnv, mllog: MLLogger, run: Run
) -> tuple[Iterable[Batch], Iterable[Batch], RunShape]:
    batch = int(config["batch_size"])
    if config["data"] == "synthetic":
        return _synthetic_sources(spec, config, adapter, env)
    root = datalib.resolve_data_dir(str(config["data_dir"]), spec.dataset)
    if config["stage"]:
        mllog.start("staging_start")
        stage_root = datalib.resolve_stage_dir(str(config["stage_dir"]))
        run_id = os.environ.get(RUN_ID_ENV, str(os.getpid()))
        run.staging = datalib.stage(root, stage_root, run_id, env.local_rank == 0, adapter.collectives.barrier)
        mllog.end("staging_stop", metadata={"staging_duration": run.staging.staging_time_s})
        root = run.staging.target
    train_set, eval_set = spec.datasets(config, root, env)
    eval_batch = spec.eval_batch_size(config) if spec.eval_batch_size else batch
    train = _limited(adapter.loader(train_set, batch, train=True), int(config["train_steps"]))
    evaluation = _limited(adapter.loader(eval_set, eval_batch, train=False), int(config["eval_steps"]))
    steps, eval_set_size = len(train), len(eval_set)  # type: ignore[arg-type]
    if steps < 1:
        raise WorkloadConfigError(f"the training data on this rank is less than one batch of {batch}")
    eval_samples = min(eval_set_size, len(evaluation) * eval_batch) * env.world_size
    shape = _shape(config, adapter, env, steps, eval_samples)
    return train, evaluation, shape


class _Limited:
    """At most ``steps`` batches of ``batches`` per pass (all of them when 0)."""

    def __init__(self, batches: Any, steps: int) -> None:
        self._batches = batches
        self._steps = min(steps, len(batches)) if steps else len(batches)

    def __len__(self) -> int:
        return self._steps

    def __iter__(self) -> Iterator[Batch]:
        if self._steps == len(self._batches):
            yield from self._batches  # to the end: an SDK's executor finishes its last step
        else:
            yield from itertools.islice(self._batches, self._steps)


def _limited(batches: Iterable[Batch], steps: int) -> Any:
    limited = getattr(batches, "limited", None)  # cerebras: the executor itself runs fewer steps
    if steps and limited is not None:
        return limited(steps)
    return _Limited(batches, steps)


def _synthetic_sources(
    spec: WorkloadSpec, config: Config, adapter: Adapter, env: DistEnv
) -> tuple[Iterable[Batch], Iterable[Batch], RunShape]:
    batch = int(config["batch_size"])
    host_batch = getattr(adapter, "host_batch_size", lambda b: b)(batch)
    steps = int(config["train_steps"]) or max(1, int(config["train_samples"]) // adapter.samples_per_step(batch))
    eval_batch = spec.eval_batch_size(config) if spec.eval_batch_size else batch
    eval_steps = int(config["eval_steps"]) or max(
        1, math.ceil(int(config["eval_samples"]) / (eval_batch * env.world_size))
    )
    seed = int(config["seed"]) * 1000 + env.rank
    train = datalib.SyntheticBatches(
        lambda g, d: spec.synthetic_batch(config, host_batch, g, d),
        adapter.device,
        steps,
        seed,
        sleep_s=float(config["data_sleep_s"]),
    )
    make_eval = spec.synthetic_eval_batch or spec.synthetic_batch
    evaluation = datalib.SyntheticBatches(
        lambda g, d: make_eval(config, eval_batch, g, d), adapter.device, eval_steps, seed + 1
    )
    shape = _shape(config, adapter, env, steps, eval_steps * eval_batch * env.world_size)
    source = getattr(adapter, "source", None)  # cerebras: feed through its DataExecutor
    if source is not None:
        return source(train, steps), source(evaluation, eval_steps), shape
    return train, evaluation, shape


def _shape(config: Config, adapter: Adapter, env: DistEnv, steps: int, eval_samples: int) -> RunShape:
    batch = int(config["batch_size"])
    global_batch = adapter.samples_per_step(batch)
    return RunShape(batch, global_batch, steps, int(config["epochs"]), steps * global_batch, eval_samples, env)


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


def train_epoch(
    trainer: Trainer, batches: Iterable[Batch], timer: StepTimer, adapter: Adapter, sleep_s: float = 0.0
) -> float:
    """Run one epoch of steps under ``timer``; return the last loss."""
    iterator: Iterator[Batch] = iter(batches)
    loss = torch.tensor(math.nan)
    for _ in range(len(batches)):  # type: ignore[arg-type]
        inputs, targets = timer.fetch(iterator)
        with timer.compute():
            loss = trainer.step(inputs, targets)
            adapter.synchronize()
            if sleep_s:  # injected slowdown, counted as compute (tests)
                time.sleep(sleep_s)
    return float(loss.float().item())


def evaluate(spec: WorkloadSpec, config: Config, trainer: Trainer, batches: Iterable[Batch], adapter: Adapter) -> float:
    """The quality metric over the eval data of every rank."""
    infer = (lambda predict, inputs: spec.infer(config, predict, inputs)) if spec.infer else None  # type: ignore[misc]
    total, count = adapter.collectives.sum_floats(list(trainer.evaluate(batches, spec.score, infer)))
    trainer.train()
    return total / count if count else math.nan


def _train_to_target(
    spec: WorkloadSpec,
    config: Config,
    trainer: Trainer,
    sources: tuple[Iterable[Batch], Iterable[Batch]],
    adapter: Adapter,
    mllog: MLLogger,
    run: Run,
) -> bool:
    for epoch in range(1, int(config["epochs"]) + 1):
        meta = {"epoch_num": epoch}
        mllog.start("epoch_start", metadata=meta)
        started_s = time.perf_counter()
        run.loss = train_epoch(trainer, sources[0], run.timer, adapter, float(config["step_sleep_s"]))
        run.epoch_times_s.append(time.perf_counter() - started_s)
        mllog.end("epoch_stop", metadata=meta)
        if not eval_due(config, epoch):
            continue
        mllog.start("eval_start", metadata=meta)
        run.quality = evaluate(spec, config, trainer, sources[1], adapter)
        mllog.event(spec.quality.key, run.quality, metadata=meta)
        mllog.end("eval_stop", metadata=meta)
        if spec.quality.reached(run.quality) and config["stop_at_target"]:
            return True
    return spec.quality.reached(run.quality)


def log_submission(mllog: MLLogger, spec: WorkloadSpec, config: Config) -> None:
    """The submission_* and cache_clear events of the MLPerf rules."""
    mllog.event("submission_benchmark", spec.benchmark)
    mllog.event("submission_org", config["submission_org"])
    differences = spec.differences(config)
    mllog.event("submission_division", division(differences))  # open once a difference leaves the closed rules
    mllog.event("submission_status", config["submission_status"])
    mllog.event("submission_platform", config["submission_platform"])
    mllog.event("cache_clear", True)
    # not an MLPerf key (the checker skips unknown keys): says what differs from the reference, and why
    mllog.event("hetero_deliberate_differences", [d.id for d in differences])


def log_run_shape(mllog: MLLogger, spec: WorkloadSpec, config: Config, shape: RunShape) -> None:
    """Sizes, seed and the workload's own hyper-parameter events."""
    events: dict[str, Any] = {
        "seed": config["seed"],
        "global_batch_size": shape.global_batch_size,
        "train_samples": shape.train_samples,
        "eval_samples": shape.eval_samples,
        "gradient_accumulation_steps": 1,
    }
    if spec.usage == "hpc":
        events.update(
            number_of_nodes=shape.env.nodes,
            accelerators_per_node=shape.env.world_size // shape.env.nodes,
            gradient_accumulation_frequency=1,
        )
    events.update(spec.hyperparameters(config, shape))
    for key, value in events.items():
        mllog.event(key, value)


def run(
    spec: WorkloadSpec,
    config: Config,
    adapter: Adapter,
    env: DistEnv,
    mllog: MLLogger,
    extra: dict[str, Any] | None = None,
) -> list[WorkloadMetric]:
    """One MLPerf-style run; returns the metrics (every rank computes them) and fills ``extra`` (card, provenance)."""
    mllog.start("init_start")
    log_submission(mllog, spec, config)
    torch.manual_seed(int(config["seed"]))
    result = Run(StepTimer(int(config["warmup_steps"]), 1))
    try:
        return _prepare_and_train(spec, config, adapter, env, mllog, result)
    finally:
        if extra is not None:
            extra.update(result.extra)
        if result.staging is not None and env.local_rank == 0:
            datalib.remove_staged(result.staging)  # node-local space is not ours to keep


def _prepare_and_train(
    spec: WorkloadSpec, config: Config, adapter: Adapter, env: DistEnv, mllog: MLLogger, result: Run
) -> list[WorkloadMetric]:
    train, evaluation, shape = _data_sources(spec, config, adapter, env, mllog, result)
    _check_steady_steps(config, shape)
    log_run_shape(mllog, spec, config, shape)
    trainer = adapter.trainer(
        spec.build_model(config), spec.loss_fn(config), spec.optimizer(config, shape), spec.lr_factor(config, shape)
    )
    result.timer.samples_per_step = shape.global_batch_size
    result.extra = run_extra(spec, config, shape)
    flops_per_sample = result.extra[CARD_KEY].get("flops_per_sample")
    result.flops_per_step = None if flops_per_sample is None else flops_per_sample * shape.global_batch_size
    meter = EnergyMeter(open_counter(adapter.settings.kind, adapter.device.index or 0))
    adapter.synchronize()
    mllog.end("init_stop")
    mllog.start("run_start")
    meter.start()
    started_s, reached = time.perf_counter(), False
    try:
        reached = _train_to_target(spec, config, trainer, (train, evaluation), adapter, mllog, result)
    finally:
        mllog.end("run_stop", metadata={"status": "success" if reached else "aborted"})
    result.time_to_train_s = time.perf_counter() - started_s
    result.extra.update(attribution(result, config, adapter.collectives.comm_time_s))  # time split, storage
    return metrics(spec, config, adapter, result, meter)


def _check_steady_steps(config: Config, shape: RunShape) -> None:
    if int(config["warmup_steps"]) >= shape.total_steps:
        raise WorkloadConfigError(
            f"config key 'warmup_steps' ({config['warmup_steps']}) leaves no steady step: the run has "
            f"{shape.total_steps} steps ({shape.epochs} epochs of {shape.steps_per_epoch})"
        )


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


def metrics(
    spec: WorkloadSpec, config: Config, adapter: Adapter, result: Run, meter: EnergyMeter
) -> list[WorkloadMetric]:
    """The metrics record of a run (names and units: docs/workloads.md)."""
    summary = result.timer.summary()
    found = timing_metrics(summary)
    found += [
        WorkloadMetric("epoch_time_s", statistics.median(result.epoch_times_s), "s", False),
        WorkloadMetric("epochs", float(len(result.epoch_times_s)), "epochs", False),
        WorkloadMetric("time_to_train_s", result.time_to_train_s, "s", False),
        WorkloadMetric("comm_time_s", adapter.collectives.comm_time_s, "s", False),
        WorkloadMetric("train_loss", result.loss, "", False),
        WorkloadMetric(spec.quality.key, result.quality, "ratio", spec.quality.higher_is_better),
        WorkloadMetric("peak_rss_mb", peak_rss_mb(), "MiB", False),
    ]
    device_mb = adapter.peak_memory_mb()
    if device_mb is not None:
        found.append(WorkloadMetric("peak_device_memory_mb", device_mb, "MiB", False))
    found += _energy_metrics(meter, adapter)
    steps_per_s = summary.throughput_sps / result.timer.samples_per_step
    found += flops_metrics(result.flops_per_step, steps_per_s, str(config["precision"]), adapter.devices)
    if result.staging is not None:
        found.append(WorkloadMetric("staging_time_s", result.staging.staging_time_s, "s", False))
        found.append(WorkloadMetric("read_throughput_mbps", result.staging.read_throughput_mbps, "MB/s", True))
    return found


def _energy_metrics(meter: EnergyMeter, adapter: Adapter) -> list[WorkloadMetric]:
    reading = meter.stop()
    if reading is None:
        return []
    energy_j, elapsed_s = adapter.collectives.sum_floats([reading.energy_j, 0.0])[0], reading.elapsed_s
    return [
        WorkloadMetric("energy_j", energy_j, "J", False),
        WorkloadMetric("avg_power_w", energy_j / elapsed_s if elapsed_s > 0 else math.nan, "W", False),
    ]


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def main(
    spec: WorkloadSpec,
    defaults: dict[str, ConfigValue],
    presets: dict[str, dict[str, ConfigValue]],
    layouts: tuple[str, ...],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse the config, set up the adapter, run, print the metrics record."""
    prog = f"python -m pytest_hetero.workloads.{spec.name}"
    env = dist_env()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = checked_config(spec, defaults, presets, layouts, args, prog)
        if "--describe" in args:  # the card alone: nothing allocated, nothing run
            print_card(spec, config)
            return 0
        adapter = make_adapter(adapter_settings(config, spec.spatial_dims, resolve_kind(str(config["device"]))), env)
    except (WorkloadConfigError, ValueError, MissingSDKError) as exc:
        exit_config_error(prog, exc if isinstance(exc, WorkloadConfigError) else WorkloadConfigError(str(exc)))
    if int(config["threads"]) > 0:
        torch.set_num_threads(int(config["threads"]))
    config = {**config, "device": adapter.settings.kind}
    config["submission_platform"] = str(config["submission_platform"]) or adapter.platform_name()
    mllog = make_mllogger(str(config["mllog_file"]), enabled=env.is_main)
    extra: dict[str, Any] = {}
    try:
        found = run(spec, config, adapter, env, mllog, extra)
    except WorkloadConfigError as exc:  # the data turned out not to fit the config
        exit_config_error(prog, exc)
    finally:
        adapter.close()
    if env.is_main:
        emit_metrics(found, spec.name, config, extra=extra)
    return 0
