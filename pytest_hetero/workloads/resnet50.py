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
convolution (v1.5). Two recipes (``recipe``), both with linear warm-up,
polynomial (power 2) decay to 1e-4 and label smoothing 0.1: ``sgd`` (the
default: SGD with momentum, NVIDIA's MLPerf recipe) and ``lars``, the
reference's (LARS, 5 warm-up epochs, weight decay 2e-4, base learning rate
8.5 at global batch 2048 and 10.0 at 4096, scaled linearly from 2048 at
other batches). Evaluation every 4 epochs as the reference in ``standard``
(``eval_start_epoch`` 4, ``eval_every_epochs`` 4).

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
from pytest_hetero.workloads.harness import (
    COMMON_DEFAULTS,
    Config,
    Difference,
    Quality,
    RunShape,
    WorkloadSpec,
    smoke_test,
)

__all__ = ["DEFAULTS", "LARS_REFERENCE_LR", "MLPERF_RULESET", "PRESETS", "RECIPES", "SPEC", "ResNet50", "main"]

MLPERF_RULESET = "4.0.0"  # the newest training ruleset with a resnet benchmark
END_LEARNING_RATE = 1e-4  # fixed by the MLPerf rules for SGD and LARS
LR_DECAY_POLY_POWER = 2
LAYOUTS = ("image", "npy")
#: global batch -> LARS base learning rate of the reference's documented runs (README_tensorflow2.md)
LARS_REFERENCE_LR = {2048: 8.5, 4096: 10.0}
REFERENCE_EVAL_EVERY = 4  # epochs; the first evaluation after 1 to 4 epochs

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
    "lr_warmup_epochs": 0.0,  # > 0: the warm-up in epochs, in place of lr_warmup_steps
    "recipe": "sgd",
    "momentum": 0.9,
    "weight_decay": 5e-5,
    "label_smoothing": 0.1,
}

#: ``recipe`` -> its keys; ``lars`` with ``lr`` 0 takes the reference's rate for the global batch.
RECIPES: dict[str, dict[str, ConfigValue]] = {
    "sgd": {},
    "lars": {"lr": 0.0, "lr_warmup_steps": 0, "lr_warmup_epochs": 5.0, "weight_decay": 0.0002},
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
        "eval_start_epoch": REFERENCE_EVAL_EVERY,
        "eval_every_epochs": REFERENCE_EVAL_EVERY,
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
    for key in ("lr_warmup_steps", "lr_warmup_epochs", "lr", "momentum", "weight_decay", "label_smoothing"):
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


def base_lr(config: Config, shape: RunShape) -> float:
    """``lr``, or with LARS and ``lr`` 0 the reference's rate for the global batch."""
    if float(config["lr"]) > 0 or config["recipe"] != "lars":
        return float(config["lr"])
    batch = shape.global_batch_size
    return LARS_REFERENCE_LR.get(batch, LARS_REFERENCE_LR[2048] * batch / 2048)


def warmup_steps(config: Config, shape: RunShape) -> int:
    epochs = float(config["lr_warmup_epochs"])
    return round(epochs * shape.steps_per_epoch) if epochs > 0 else int(config["lr_warmup_steps"])


def optimizer(config: Config, shape: RunShape) -> OptimizerSpec:
    options = {"momentum": float(config["momentum"]), "weight_decay": float(config["weight_decay"])}
    return OptimizerSpec(str(config["recipe"]), base_lr(config, shape), options)


def lr_factor(config: Config, shape: RunShape) -> LrFactor:
    """Linear warm-up, then poly(2) decay to END_LEARNING_RATE (torch ops: traceable)."""
    lr = base_lr(config, shape)
    warmup = float(warmup_steps(config, shape))
    decay_steps = float(shape.total_steps) - warmup
    end_factor = END_LEARNING_RATE / lr if lr > 0 else 0.0

    def factor(step: torch.Tensor) -> torch.Tensor:
        remaining = torch.clamp(1 - (step - warmup) / decay_steps, min=0.0)
        decay = (1 - end_factor) * remaining**LR_DECAY_POLY_POWER + end_factor
        return torch.where(step < warmup, (step + 1) / max(warmup, 1.0), decay)

    return factor


def hyperparameters(config: Config, shape: RunShape) -> dict[str, Any]:
    """The keys the rules require for resnet with opt_name sgd or lars."""
    warmup, prefix, lr = warmup_steps(config, shape), str(config["recipe"]), base_lr(config, shape)
    found: dict[str, Any] = {
        "model_bn_span": shape.batch_size,
        "opt_name": prefix,
        "opt_base_learning_rate": lr,
        f"{prefix}_opt_base_learning_rate": lr,
        f"{prefix}_opt_end_learning_rate": END_LEARNING_RATE,
        f"{prefix}_opt_learning_rate_decay_poly_power": LR_DECAY_POLY_POWER,
        f"{prefix}_opt_learning_rate_decay_steps": shape.total_steps - warmup,
        f"{prefix}_opt_weight_decay": config["weight_decay"],
        f"{prefix}_opt_momentum": config["momentum"],
        "opt_learning_rate_warmup_epochs": warmup / shape.steps_per_epoch,
    }
    if prefix == "lars":
        found.update(lars_epsilon=0.0, lars_opt_learning_rate_warmup_epochs=warmup / shape.steps_per_epoch)
    return found


def differences(config: Config) -> list[Difference]:
    """What this config does differently from the MLPerf reference."""
    found = []
    if config["recipe"] == "sgd":
        found.append(Difference("optimizer-sgd", "SGD instead of the reference's LARS (closed allows both)", True))
    start, every = int(config["eval_start_epoch"]), int(config["eval_every_epochs"])
    if config["preset"] == "standard" and (every != REFERENCE_EVAL_EVERY or not 1 <= start <= REFERENCE_EVAL_EVERY):
        found.append(Difference("eval-schedule", f"evaluation from epoch {start} every {every}, not every 4"))
    return found + smoke_test(config)


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
    differences=differences,
    reference_recipe="lars",
    recipes=RECIPES,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return training.main(SPEC, DEFAULTS, PRESETS, LAYOUTS, argv)


if __name__ == "__main__":
    sys.exit(main())
