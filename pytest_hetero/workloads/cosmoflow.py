"""CosmoFlow (MLPerf HPC): a 3D CNN regressing 4 cosmological parameters.

Run it as::

    python -m pytest_hetero.workloads.cosmoflow --config-json '{"preset": "tiny"}'

The model is the MLPerf HPC reference (``cosmoflow/models/cosmoflow.py``)
in plain torch: five blocks of Conv3d (kernel 3 as the reference since June
2021, ``kernel_size``; "same" padding, 32·2^i filters), LeakyReLU(0.3), MaxPool3d(2); then dense 128 and 64 with
dropout 0.5, and 4 outputs ``1.2·tanh``. Loss MSE, quality metric the mean
absolute error (``eval_error``, target 0.124). SGD with momentum 0.9, base
learning rate 0.001 per 64 samples scaled linearly with the global batch,
linear warm-up over ``lr_warmup_epochs``, decay ×0.25 at epoch 32 and
×0.125 at epoch 64.

Presets: ``tiny`` (32³×4 volumes, CI), ``standard`` (128³×4, the MLPerf
dataset sizes and epochs), ``subset`` (128³×4, 2048 samples, 2 epochs).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pytest_hetero.workloads import data as datalib
from pytest_hetero.workloads import training
from pytest_hetero.workloads.accelerators import LrFactor, OptimizerSpec
from pytest_hetero.workloads.common import ConfigValue, WorkloadConfigError, check_min
from pytest_hetero.workloads.datasets import CosmoFlowDataset, split_dir
from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.harness import (
    COMMON_DEFAULTS,
    Config,
    Difference,
    Quality,
    RunShape,
    WorkloadSpec,
    smoke_test,
)

__all__ = ["DEFAULTS", "MLPERF_RULESET", "PRESETS", "SPEC", "CosmoFlow", "main"]

MLPERF_RULESET = "3.0.0"  # HPC
TARGETS = 4
CONV_LAYERS = 5
LR_DECAY_EPOCHS = (32, 64)
LR_DECAY_FACTORS = (0.25, 0.125)
LAYOUTS = ("hdf5", "numpy")
REFERENCE_KERNEL_SIZE = 3

DEFAULTS: dict[str, ConfigValue] = {
    **COMMON_DEFAULTS,
    "volume_size": 32,
    "batch_size": 2,
    "conv_size": 32,
    "kernel_size": 3,  # the reference since June 2021 (v0.7 used 2)
    "dropout": 0.5,
    "lr_base": 0.001,
    "lr_base_batch_size": 64,
    "lr_warmup_epochs": 4,
    "momentum": 0.9,
    "weight_decay": 0.0,
}

PRESETS: dict[str, dict[str, ConfigValue]] = {
    "tiny": {"volume_size": 32, "batch_size": 2, "train_samples": 8, "eval_samples": 4, "epochs": 2},
    "standard": {
        "volume_size": 128,
        "batch_size": 4,
        "train_samples": 524288,
        "eval_samples": 65536,
        "epochs": 128,
        "warmup_steps": 20,
    },
    "subset": {
        "volume_size": 128,
        "batch_size": 4,
        "train_samples": 2048,
        "eval_samples": 256,
        "epochs": 2,
        "warmup_steps": 20,
        "stop_at_target": False,
    },
}


class CosmoFlow(nn.Module):
    """The MLPerf HPC CosmoFlow network for ``volume_size``³ × 4 inputs."""

    def __init__(self, volume_size: int = 128, conv_size: int = 32, dropout: float = 0.5, kernel_size: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 4
        for index in range(CONV_LAYERS):
            width = conv_size * 2**index
            layers += [nn.Conv3d(channels, width, kernel_size, padding="same"), nn.LeakyReLU(0.3), nn.MaxPool3d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        flat = channels * (volume_size // 2**CONV_LAYERS) ** 3
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 128),
            nn.LeakyReLU(0.3),
            nn.Dropout(dropout),
            nn.Linear(128, 64),
            nn.LeakyReLU(0.3),
            nn.Dropout(dropout),
            nn.Linear(64, TARGETS),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.head(self.features(x)) * 1.2
        return result


def validate(config: Config) -> None:
    size = int(config["volume_size"])
    if size < 2**CONV_LAYERS or size & (size - 1):
        raise WorkloadConfigError(f"config key 'volume_size' must be a power of 2 >= {2**CONV_LAYERS}; got {size}")
    check_min(config, "kernel_size", 1)
    if not 0 <= float(config["dropout"]) < 1:
        raise WorkloadConfigError("config key 'dropout' must be in [0, 1)")


def build_model(config: Config) -> nn.Module:
    return CosmoFlow(
        int(config["volume_size"]), int(config["conv_size"]), float(config["dropout"]), int(config["kernel_size"])
    )


def synthetic_batch(
    config: Config, batch: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    size = int(config["volume_size"])
    volumes = datalib.rand((batch, 4, size, size, size), generator, device) * 3  # log(1 + counts) scale
    return volumes, datalib.rand((batch, TARGETS), generator, device) * 2 - 1


def datasets(config: Config, root: Path, env: DistEnv) -> tuple[Dataset[Any], Dataset[Any]]:
    layout, limit = str(config["data_layout"]), int(config["train_samples"])
    train = CosmoFlowDataset(split_dir(root, "train"), layout, env, limit)
    evaluation = CosmoFlowDataset(split_dir(root, "validation"), layout, env, int(config["eval_samples"]))
    return train, evaluation


def differences(config: Config) -> list[Difference]:
    """What this config does differently from the MLPerf HPC reference."""
    found = []
    if int(config["kernel_size"]) != REFERENCE_KERNEL_SIZE:
        found.append(Difference("kernel-size", f"Conv3d kernel {config['kernel_size']}, not the reference's 3"))
    return found + smoke_test(config)


def score(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Sum of absolute errors and their count: the mean is ``eval_error``."""
    return float((outputs - targets).abs().sum()), float(targets.numel())


def _scale(config: Config, shape: RunShape) -> float:
    return shape.global_batch_size / int(config["lr_base_batch_size"])


def optimizer(config: Config, shape: RunShape) -> OptimizerSpec:
    options = {"momentum": float(config["momentum"]), "weight_decay": float(config["weight_decay"])}
    return OptimizerSpec("sgd", float(config["lr_base"]) * _scale(config, shape), options)


def lr_factor(config: Config, shape: RunShape) -> LrFactor:
    """Warm-up from the base to the scaled rate, then step decays (torch ops: traceable)."""
    start = 1.0 / _scale(config, shape)
    warmup_epochs = float(config["lr_warmup_epochs"])
    steps_per_epoch = float(shape.steps_per_epoch)

    def factor(step: torch.Tensor) -> torch.Tensor:
        epoch = step / steps_per_epoch
        ramp = torch.clamp(epoch / warmup_epochs, max=1.0) if warmup_epochs > 0 else torch.ones_like(epoch)
        decay = torch.where(epoch >= LR_DECAY_EPOCHS[1], LR_DECAY_FACTORS[1], 1.0)
        decay = torch.where((epoch >= LR_DECAY_EPOCHS[0]) & (epoch < LR_DECAY_EPOCHS[1]), LR_DECAY_FACTORS[0], decay)
        return (start + (1.0 - start) * ramp) * decay

    return factor


def hyperparameters(config: Config, shape: RunShape) -> dict[str, Any]:
    return {
        "opt_name": "sgd",
        "opt_base_learning_rate": float(config["lr_base"]) * _scale(config, shape),
        "opt_learning_rate_warmup_epochs": config["lr_warmup_epochs"],
        "opt_learning_rate_warmup_factor": _scale(config, shape),
        "opt_learning_rate_decay_boundary_epochs": list(LR_DECAY_EPOCHS),
        "opt_learning_rate_decay_factor": LR_DECAY_FACTORS[0],
        "dropout": config["dropout"],
        "opt_weight_decay": config["weight_decay"],
    }


SPEC = WorkloadSpec(
    name="cosmoflow",
    benchmark="cosmoflow",
    usage="hpc",
    ruleset=MLPERF_RULESET,
    dataset="cosmoflow",
    spatial_dims=3,
    quality=Quality("eval_error", 0.124, higher_is_better=False),
    build_model=build_model,
    loss_fn=lambda _config: nn.MSELoss(),
    synthetic_batch=synthetic_batch,
    datasets=datasets,
    score=score,
    optimizer=optimizer,
    lr_factor=lr_factor,
    hyperparameters=hyperparameters,
    validate=validate,
    differences=differences,
    reference_recipe="reference",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return training.main(SPEC, DEFAULTS, PRESETS, LAYOUTS, argv)


if __name__ == "__main__":
    sys.exit(main())
