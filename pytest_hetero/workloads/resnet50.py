"""ResNet-50 v1.5 training workload (MLPerf Training "resnet"), plain torch.

Run it as::

    python -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size": 4}'
    python -m pytest_hetero.workloads.resnet50 --config run.json
    HETERO_WORKLOAD_CONFIG='{"threads": 2}' python -m pytest_hetero.workloads.resnet50

``DEFAULTS`` lists every config key; the defaults are a tiny CPU run that
takes seconds: one epoch of ``train_steps`` steps. stdout carries MLPerf
``:::MLLOG`` events (ruleset ``MLPERF_RULESET``) and, last, one
``:::HETERO_METRICS`` line. The loop, adapters and metrics are the shared
ones of :mod:`.training`.

The model is defined here, not taken from torchvision, so every platform
trains the identical network: bottlenecks [3, 4, 6, 3], stride on the 3x3
convolution (v1.5). SGD with momentum, linear warm-up and polynomial (power 2)
decay to 1e-4, label smoothing 0.1: the MLPerf SGD recipe.

Real data: ImageNet as an image folder (``train/<class>/*.JPEG`` and
``val/<class>/*``, decoded with Pillow), or the same tree with one
``.npy`` (H, W, 3) uint8 array per image where Pillow is not installed
(``data_layout: npy``).

Presets: ``tiny`` (32 px, CI), ``standard`` (224 px, batch 256, the full
1,281,167-image training set, 37 epochs), ``subset`` (224 px, 100 steps of
batch 64 per epoch, 2 epochs).
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
from pytest_hetero.workloads.datasets import ImageFolderDataset, split_dir
from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.harness import COMMON_DEFAULTS, Config, Quality, RunShape, WorkloadSpec

__all__ = ["DEFAULTS", "MLPERF_RULESET", "PRESETS", "SPEC", "ResNet50", "main"]

MLPERF_RULESET = "4.0.0"  # the newest training ruleset with a resnet benchmark
END_LEARNING_RATE = 1e-4  # fixed by the MLPerf rules for SGD and LARS
LR_DECAY_POLY_POWER = 2
LAYOUTS = ("image", "npy")

DEFAULTS: dict[str, ConfigValue] = {
    **COMMON_DEFAULTS,
    "image_size": 32,
    "batch_size": 4,
    "train_steps": 6,
    "warmup_steps": 2,
    "eval_steps": 2,
    "seed": 0,
    "num_classes": 1000,
    "zero_init_residual": False,
    "lr": 0.01,  # batch 4; MLPerf-style runs scale it with the batch size
    "lr_warmup_steps": 0,
    "momentum": 0.9,
    "weight_decay": 5e-5,
    "label_smoothing": 0.1,
}

PRESETS: dict[str, dict[str, ConfigValue]] = {
    "tiny": {},
    "standard": {
        "image_size": 224,
        "batch_size": 256,
        "train_steps": 0,
        "eval_steps": 0,
        "train_samples": 1281167,
        "eval_samples": 50000,
        "epochs": 37,
        "warmup_steps": 20,
        "lr": 0.256,  # 0.001 per sample of the batch, as NVIDIA's SGD recipe
        "lr_warmup_steps": 2 * 5005,
    },
    "subset": {
        "image_size": 224,
        "batch_size": 64,
        "train_steps": 100,
        "eval_steps": 10,
        "epochs": 2,
        "warmup_steps": 10,
        "lr": 0.064,
        "lr_warmup_steps": 20,
        "stop_at_target": False,
    },
}


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride: v1.5), 1x1 expand, residual add."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.relu(out + self.downsample(x))
        return result


class ResNet50(nn.Module):
    """ResNet-50 v1.5 for ``num_classes`` classes."""

    stage_blocks = (3, 4, 6, 3)
    stage_widths = (64, 128, 256, 512)

    def __init__(self, num_classes: int = 1000, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.stages = nn.Sequential(*self._stages())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.stage_widths[-1] * Bottleneck.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _stages(self) -> list[nn.Sequential]:
        stages, in_channels = [], 64
        for index, (blocks, width) in enumerate(zip(self.stage_blocks, self.stage_widths, strict=True)):
            first_stride = 1 if index == 0 else 2
            layers = []
            for block in range(blocks):
                layers.append(Bottleneck(in_channels, width, first_stride if block == 0 else 1))
                in_channels = width * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        return stages

    def _init_weights(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:  # each block then starts as the identity
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.zeros_(module.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(x)))
        logits: torch.Tensor = self.fc(torch.flatten(features, 1))
        return logits


# --------------------------------------------------------------------------
# The workload
# --------------------------------------------------------------------------


def validate(config: Config) -> None:
    """ResNet's own ranges; WorkloadConfigError naming the key."""
    check_min(config, "image_size", 32)  # five stride-2 stages need 32 px to leave 1x1
    check_min(config, "num_classes", 1)
    for key in ("lr_warmup_steps", "lr", "momentum", "weight_decay", "label_smoothing"):
        check_min(config, key, 0)
    steps = int(config["train_steps"])
    if steps and int(config["lr_warmup_steps"]) >= steps * int(config["epochs"]):
        raise WorkloadConfigError("config key 'lr_warmup_steps' must be < 'train_steps'")


def build_model(config: Config) -> nn.Module:
    return ResNet50(int(config["num_classes"]), bool(config["zero_init_residual"]))


def synthetic_batch(
    config: Config, batch: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    size = int(config["image_size"])
    images = datalib.randn((batch, 3, size, size), generator, device)
    return images, datalib.randint(int(config["num_classes"]), (batch,), generator, device)


def datasets(config: Config, root: Path, env: DistEnv) -> tuple[Dataset[Any], Dataset[Any]]:
    layout, size, seed = str(config["data_layout"]), int(config["image_size"]), int(config["seed"])
    train = ImageFolderDataset(split_dir(root, "train"), layout, size, True, env, seed)
    evaluation = ImageFolderDataset(split_dir(root, "validation"), layout, size, False, env, seed)
    return train, evaluation


def score(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Correct top-1 predictions and the number of samples."""
    return float((logits.argmax(dim=1) == labels).sum()), float(labels.numel())


def optimizer(config: Config, shape: RunShape) -> OptimizerSpec:
    options = {"momentum": float(config["momentum"]), "weight_decay": float(config["weight_decay"])}
    return OptimizerSpec("sgd", float(config["lr"]), options)


def lr_factor(config: Config, shape: RunShape) -> LrFactor:
    """Linear warm-up, then poly(2) decay to END_LEARNING_RATE (torch ops: traceable)."""
    base_lr = float(config["lr"])
    warmup = float(config["lr_warmup_steps"])
    decay_steps = float(shape.total_steps) - warmup
    end_factor = END_LEARNING_RATE / base_lr if base_lr > 0 else 0.0

    def factor(step: torch.Tensor) -> torch.Tensor:
        remaining = torch.clamp(1 - (step - warmup) / decay_steps, min=0.0)
        decay = (1 - end_factor) * remaining**LR_DECAY_POLY_POWER + end_factor
        return torch.where(step < warmup, (step + 1) / max(warmup, 1.0), decay)

    return factor


def hyperparameters(config: Config, shape: RunShape) -> dict[str, Any]:
    """The SGD keys required for resnet with opt_name sgd."""
    warmup = int(config["lr_warmup_steps"])
    return {
        "model_bn_span": shape.batch_size,
        "opt_name": "sgd",
        "opt_base_learning_rate": config["lr"],
        "sgd_opt_base_learning_rate": config["lr"],
        "sgd_opt_end_learning_rate": END_LEARNING_RATE,
        "sgd_opt_learning_rate_decay_poly_power": LR_DECAY_POLY_POWER,
        "sgd_opt_learning_rate_decay_steps": shape.total_steps - warmup,
        "sgd_opt_weight_decay": config["weight_decay"],
        "sgd_opt_momentum": config["momentum"],
        "opt_learning_rate_warmup_epochs": warmup / shape.steps_per_epoch,
    }


SPEC = WorkloadSpec(
    name="resnet50",
    benchmark="resnet",
    usage="training",
    ruleset=MLPERF_RULESET,
    dataset="imagenet",
    spatial_dims=2,
    quality=Quality("eval_accuracy", 0.759, higher_is_better=True),
    build_model=build_model,
    loss_fn=lambda config: nn.CrossEntropyLoss(label_smoothing=float(config["label_smoothing"])),
    synthetic_batch=synthetic_batch,
    datasets=datasets,
    score=score,
    optimizer=optimizer,
    lr_factor=lr_factor,
    hyperparameters=hyperparameters,
    validate=validate,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return training.main(SPEC, DEFAULTS, PRESETS, LAYOUTS, argv)


if __name__ == "__main__":
    sys.exit(main())
