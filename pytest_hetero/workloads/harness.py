"""What every training workload declares (:class:`WorkloadSpec`) and its shared config keys.

A workload module defines its model, loss, data, eval score, optimiser and
MLPerf hyper-parameter events, and hands them to
:func:`pytest_hetero.workloads.training.main`, which owns the loop, the
MLPerf logging, the timings and the metrics. So every workload reports the
same metrics, measured the same way, on every accelerator.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pytest_hetero.workloads.accelerators import KINDS, PRECISIONS, AdapterSettings, LrFactor, OptimizerSpec
from pytest_hetero.workloads.common import (
    ConfigValue,
    WorkloadConfigError,
    check_choice,
    check_min,
    parse_preset_config,
)
from pytest_hetero.workloads.distributed import BACKENDS, DistEnv
from pytest_hetero.workloads.protocol import ACCELERATOR_KIND_ENV

__all__ = [
    "COMMON_DEFAULTS",
    "Config",
    "Difference",
    "Quality",
    "RunShape",
    "WorkloadSpec",
    "adapter_settings",
    "checked_config",
    "eval_due",
    "smoke_test",
    "validate_common",
]

Config = Mapping[str, ConfigValue]
Batch = tuple[torch.Tensor, torch.Tensor]
DEVICES = ("auto", "cuda", *KINDS)
SUBMISSION_STATUSES = ("cloud", "onprem", "preview", "research")

#: Keys every training workload accepts; a workload adds its own and its presets.
COMMON_DEFAULTS: dict[str, ConfigValue] = {
    "preset": "tiny",
    "epochs": 1,
    "train_samples": 8,  # synthetic: samples per epoch; real data: at most this many (0: all)
    "eval_samples": 2,
    "train_steps": 0,  # steps per epoch; 0: from train_samples (synthetic) or the data (real, capped)
    "eval_steps": 0,  # eval batches; 0: from eval_samples
    "warmup_steps": 1,  # first steps left out of the steady-state throughput
    "stop_at_target": True,  # stop when the quality target is reached (else run every epoch)
    "eval_start_epoch": 1,  # first epoch that ends with an evaluation (the last epoch always does)
    "eval_every_epochs": 1,  # then every this many epochs
    "precision": "fp32",
    "channels_last": False,
    "device": "auto",  # auto: $HETERO_ACCELERATOR_KIND, else cuda when available, else cpu
    "dist_backend": "auto",
    "cerebras_backend": "CSX",
    "ipu_device_iterations": 1,
    "ipu_replicas": 1,
    "seed": 1,
    "threads": 0,
    "data": "synthetic",  # synthetic | real
    "data_dir": "",  # real data: else $HETERO_DATA_<DATASET>
    "data_layout": "auto",
    "stage": False,  # copy the dataset to node-local storage first
    "stage_dir": "",  # else $HETERO_DATA_NODE_LOCAL, else $TMPDIR
    "loader_workers": 0,
    "data_sleep_s": 0.0,  # synthetic data: injected delay per batch (tests)
    "step_sleep_s": 0.0,  # injected delay per step, counted as compute (tests)
    "mllog_file": "",
    "submission_org": "pytest-hetero",
    "submission_platform": "",
    "submission_status": "research",
}


@dataclass(frozen=True)
class Quality:
    """The MLPerf quality metric and its target."""

    key: str  # the MLLOG key and the metric name: eval_accuracy, eval_error
    target: float
    higher_is_better: bool

    def reached(self, value: float) -> bool:
        return value >= self.target if self.higher_is_better else value <= self.target


@dataclass(frozen=True)
class Difference:
    """A deliberate difference from the MLPerf reference, named in the card, MLLOG and provenance.

    ``closed_ok``: the MLPerf closed-division rules allow it (e.g. SGD instead of
    LARS for ResNet-50), so the run still logs ``submission_division: closed``.
    """

    id: str
    text: str
    closed_ok: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "closed_ok": self.closed_ok}


@dataclass(frozen=True)
class RunShape:
    """Sizes of one run, known once the data is."""

    batch_size: int  # per rank (per replica on IPUs)
    global_batch_size: int
    steps_per_epoch: int
    epochs: int
    train_samples: int
    eval_samples: int
    env: DistEnv

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


@dataclass(frozen=True)
class WorkloadSpec:
    """Everything model-specific about a workload; the harness does the rest."""

    name: str  # the metrics record's "workload"
    benchmark: str  # MLPerf submission_benchmark
    usage: str  # compliance checker --usage: training | hpc
    ruleset: str
    dataset: str  # data root name: $HETERO_DATA_<DATASET>
    spatial_dims: int
    quality: Quality
    build_model: Callable[[Config], nn.Module]
    loss_fn: Callable[[Config], nn.Module]
    synthetic_batch: Callable[[Config, int, torch.Generator, torch.device], Batch]
    datasets: Callable[[Config, Path, DistEnv], tuple[Dataset[Any], Dataset[Any]]]
    score: Callable[[torch.Tensor, torch.Tensor], tuple[float, float]]  # (sum, count) of the quality metric
    optimizer: Callable[[Config, RunShape], OptimizerSpec]
    lr_factor: Callable[[Config, RunShape], LrFactor]
    hyperparameters: Callable[[Config, RunShape], dict[str, Any]]  # MLLOG events
    validate: Callable[[Config], None] = lambda _config: None
    infer: Callable[[Config, Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor] | None = None
    eval_batch_size: Callable[[Config], int] | None = None  # default: the training batch size
    synthetic_eval_batch: Callable[[Config, int, torch.Generator, torch.device], Batch] | None = None
    differences: Callable[[Config], list[Difference]] = lambda _config: []
    reference_recipe: str = ""  # the config's ``recipe`` that follows the MLPerf reference
    #: ``recipe`` name -> the config keys it sets (over the preset's, under explicit keys)
    recipes: Mapping[str, Mapping[str, ConfigValue]] = field(default_factory=dict)


def smoke_test(config: Config) -> list[Difference]:
    """The difference every preset but ``standard`` makes: MLPerf's sizes, epochs and schedule scaled down."""
    if config["preset"] == "standard":
        return []
    text = f"preset {config['preset']!r} is a smoke test: sizes, epochs and evaluation schedule scaled down"
    return [Difference("smoke-test-preset", text, closed_ok=True)]


def eval_due(config: Config, epoch: int) -> bool:
    """Whether ``epoch`` (1-based) ends with an evaluation: the reference's start and interval, and the last."""
    start, every = int(config["eval_start_epoch"]), int(config["eval_every_epochs"])
    return epoch == int(config["epochs"]) or (epoch >= start and (epoch - start) % every == 0)


def validate_common(config: Config, layouts: tuple[str, ...]) -> None:
    """Choices and ranges of :data:`COMMON_DEFAULTS`; WorkloadConfigError naming the key."""
    check_choice(config, "precision", PRECISIONS)
    check_choice(config, "device", DEVICES)
    check_choice(config, "dist_backend", BACKENDS)
    check_choice(config, "cerebras_backend", ("CSX", "CPU"))
    check_choice(config, "data", ("synthetic", "real"))
    check_choice(config, "data_layout", ("auto", *layouts))
    check_choice(config, "submission_status", SUBMISSION_STATUSES)
    positive = ("epochs", "batch_size", "eval_samples", "ipu_device_iterations", "ipu_replicas")
    for key in (*positive, "eval_start_epoch", "eval_every_epochs"):
        check_min(config, key, 1)
    for key in ("train_samples", "train_steps", "eval_steps", "warmup_steps", "threads", "loader_workers"):
        check_min(config, key, 0)
    check_min(config, "data_sleep_s", 0)
    check_min(config, "step_sleep_s", 0)
    if int(config["train_steps"]) and int(config["warmup_steps"]) >= int(config["train_steps"]) * int(config["epochs"]):
        raise WorkloadConfigError("config key 'warmup_steps' must be < 'train_steps' x 'epochs'")
    synthetic_by_samples = config["data"] == "synthetic" and not int(config["train_steps"])
    if synthetic_by_samples and int(config["train_samples"]) < int(config["batch_size"]):
        raise WorkloadConfigError("config key 'train_samples' must be >= 'batch_size' with synthetic data")


def checked_config(
    spec: WorkloadSpec,
    defaults: Mapping[str, ConfigValue],
    presets: Mapping[str, Mapping[str, ConfigValue]],
    layouts: tuple[str, ...],
    argv: Sequence[str],
    prog: str | None = None,
) -> Config:
    """The config of ``argv`` (``--config-json``), preset and recipe applied, with every check the workload makes.

    Raises WorkloadConfigError (or ValueError); the workload's entry point and the plugin's check at
    collection (:mod:`pytest_hetero.workload_check`) both go through here.
    """
    config = parse_preset_config(argv, defaults, presets, prog, spec.recipes)
    validate_common(config, layouts)
    spec.validate(config)
    return config


def resolve_kind(requested: str, environ: Mapping[str, str] | None = None) -> str:
    """The accelerator kind: explicit, else the platform's, else what torch sees."""
    env = os.environ if environ is None else environ
    if requested == "auto":
        requested = env.get(ACCELERATOR_KIND_ENV, "") or ("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda":
        return "amd-gpu" if torch.version.hip is not None else "nvidia-gpu"
    return requested


def adapter_settings(config: Config, spatial_dims: int, kind: str) -> AdapterSettings:
    """The adapter's view of the config."""
    return AdapterSettings(
        kind=kind,
        precision=str(config["precision"]),
        channels_last=bool(config["channels_last"]),
        spatial_dims=spatial_dims,
        seed=int(config["seed"]),
        loader_workers=int(config["loader_workers"]),
        dist_backend=str(config["dist_backend"]),
        device_iterations=int(config["ipu_device_iterations"]),
        replicas=int(config["ipu_replicas"]),
        cerebras_backend=str(config["cerebras_backend"]),
    )
