"""3D U-Net (MLPerf Training "unet3d"): KiTS19 kidney and tumour segmentation.

Run it as::

    python -m pytest_hetero.workloads.unet3d --config-json '{"preset": "tiny"}'

The model is the MLPerf reference (``image_segmentation/pytorch/model``):
filters 32, 64, 128, 256, 320; an input block, four stride-2 downsampling
blocks and a bottleneck, each two 3³ convolutions with instance norm and
ReLU; transposed-convolution upsampling with skip connections; a 1³ output
convolution to 3 classes. Loss: (Dice + cross-entropy) / 2 without the
background class. Quality: the mean Dice of kidney and tumour
(``eval_accuracy``, target 0.908), by sliding-window inference over whole
cases as the reference's ``runtime/inference.py``: overlap 0.5, each case
padded symmetrically with -2.2 to a whole number of strides, windows weighted
by the cube root of a Gaussian (sigma 0.125 × patch) normalised to 1. SGD with
Nesterov momentum 0.9, learning rate warmed up linearly from ``lr_initial`` to
``lr`` over ``lr_warmup_epochs``. The reference evaluates from epoch 1000,
every 20 epochs (``eval_start_epoch``, ``eval_every_epochs``: the ``standard``
preset's values; the short presets evaluate every epoch).

Five stride-2 stages need patches of at least 64³ (instance norm needs more
than one voxel at the bottleneck), so the ``tiny`` preset uses 64³ patches;
``standard`` uses the MLPerf 128³ patches and dataset sizes (168 training and
42 evaluation cases), ``subset`` 128³ patches, 16 cases and 2 epochs.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from pytest_hetero.workloads import data as datalib
from pytest_hetero.workloads import training
from pytest_hetero.workloads.accelerators import LrFactor, OptimizerSpec
from pytest_hetero.workloads.common import ConfigValue, WorkloadConfigError, check_min
from pytest_hetero.workloads.datasets import Kits19Dataset, split_dir
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

__all__ = ["DEFAULTS", "MLPERF_RULESET", "PRESETS", "SPEC", "UNet3D", "gaussian_window", "main", "sliding_window"]

MLPERF_RULESET = "4.0.0"  # the newest training ruleset with unet3d
FILTERS = (32, 64, 128, 256, 320)
CLASSES = 3
MIN_PATCH = 64
PADDING_VALUE = -2.2  # the reference's padding of cases for sliding-window inference
REFERENCE_EVAL = (1000, 20)  # start epoch, interval
LAYOUTS = ("numpy",)

DEFAULTS: dict[str, ConfigValue] = {
    **COMMON_DEFAULTS,
    "patch_size": 64,
    "eval_volume_size": 64,  # synthetic evaluation cases are this size cubed
    "batch_size": 1,
    "train_samples": 2,
    "eval_samples": 1,
    "lr": 0.8,
    "lr_initial": 1e-4,
    "lr_warmup_epochs": 200,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "oversampling": 0.4,
    "overlap": 0.5,
}

PRESETS: dict[str, dict[str, ConfigValue]] = {
    "tiny": {"patch_size": 64, "eval_volume_size": 64, "batch_size": 1, "train_samples": 2, "eval_samples": 1},
    "standard": {
        "patch_size": 128,
        "eval_volume_size": 192,
        "batch_size": 2,
        "train_samples": 168,
        "eval_samples": 42,
        "epochs": 4000,
        "warmup_steps": 20,
        "eval_start_epoch": REFERENCE_EVAL[0],
        "eval_every_epochs": REFERENCE_EVAL[1],
    },
    "subset": {
        "patch_size": 128,
        "eval_volume_size": 192,
        "batch_size": 2,
        "train_samples": 16,
        "eval_samples": 4,
        "epochs": 2,
        "warmup_steps": 2,
        "stop_at_target": False,
    },
}


def _conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.InstanceNorm3d(out_channels, affine=True),
        nn.ReLU(),
    )


class _Down(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(_conv_block(in_channels, out_channels, stride), _conv_block(out_channels, out_channels))


class _Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2)
        self.convs = _Down(2 * out_channels, out_channels, stride=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.convs(torch.cat((self.upsample(x), skip), dim=1))
        return result


class UNet3D(nn.Module):
    """The MLPerf 3D U-Net: 1 input channel, 3 classes."""

    def __init__(self, in_channels: int = 1, classes: int = CLASSES) -> None:
        super().__init__()
        self.input_block = _Down(in_channels, FILTERS[0], stride=1)
        self.downsample = nn.ModuleList(_Down(i, o, 2) for i, o in itertools.pairwise(FILTERS))
        self.bottleneck = _Down(FILTERS[-1], FILTERS[-1], 2)
        ups = [_Up(FILTERS[-1], FILTERS[-1])]
        ups += [_Up(i, o) for i, o in zip(reversed(FILTERS[1:]), reversed(FILTERS[:-1]), strict=True)]
        self.upsample = nn.ModuleList(ups)
        self.output = nn.Conv3d(FILTERS[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_block(x)
        skips = [x]
        for block in self.downsample:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        for block, skip in zip(self.upsample, reversed(skips), strict=True):
            x = block(x, skip)
        result: torch.Tensor = self.output(x)
        return result


def _one_hot(labels: torch.Tensor) -> torch.Tensor:
    return F.one_hot(labels.squeeze(1).long(), CLASSES).permute(0, 4, 1, 2, 3).float()


def dice(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-class Dice of the foreground classes (background left out)."""
    target = _one_hot(labels)[:, 1:]
    prediction = probabilities[:, 1:]
    axes = list(range(2, prediction.dim()))
    intersection = (target * prediction).sum(axes)
    total = target.sum(axes) + prediction.sum(axes)
    return (2.0 * intersection + 1e-6) / (total + 1e-6)


class DiceCELoss(nn.Module):
    """(1 - mean Dice of softmax outputs + cross-entropy) / 2, as the reference."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cross_entropy = F.cross_entropy(logits, labels.squeeze(1).long())
        dice_loss = torch.mean(1.0 - dice(torch.softmax(logits.float(), dim=1), labels))
        return (dice_loss + cross_entropy) / 2


def score(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Sum over cases of the mean (kidney, tumour) Dice of the argmax prediction."""
    prediction = _one_hot(logits.argmax(dim=1, keepdim=True))
    per_case = dice(prediction, labels).mean(dim=1)
    return float(per_case.sum()), float(per_case.numel())


def gaussian_window(roi: int, device: torch.device) -> torch.Tensor:
    """The reference's weights: cube root of a 3-D Gaussian (sigma 0.125 roi), maximum 1."""
    axis = torch.arange(roi, device=device, dtype=torch.float64) - (roi - 1) / 2
    curve = torch.exp(-0.5 * (axis / (0.125 * roi)) ** 2)
    cube = (curve[:, None, None] * curve[None, :, None] * curve[None, None, :]) ** (1 / 3)
    return (cube / cube.max()).float()


def _pads(size: int, roi: int, stride: int) -> tuple[int, int]:
    """(before, after): to a whole number of strides, at least one window."""
    total = (stride - size % stride) % stride
    total += stride if size + total < roi else 0
    return total // 2, total - total // 2


def sliding_window(
    config: Config, predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor
) -> torch.Tensor:
    """Logits for whole cases from overlapping patches, Gaussian-weighted, as the reference."""
    roi = int(config["patch_size"])
    stride = int(roi * (1 - float(config["overlap"])))
    shape = image.shape[2:]
    pads = [_pads(n, roi, stride) for n in shape]
    padded = F.pad(image, [p for pair in reversed(pads) for p in pair], value=PADDING_VALUE)
    weights = gaussian_window(roi, image.device)
    logits = torch.zeros((image.shape[0], CLASSES, *padded.shape[2:]), device=image.device)
    norm = torch.zeros(padded.shape[2:], device=image.device)
    starts = [range(0, n - roi + 1, stride) for n in padded.shape[2:]]
    for z, y, x in itertools.product(*starts):
        window = (slice(None), slice(None), slice(z, z + roi), slice(y, y + roi), slice(x, x + roi))
        logits[window] += predict(padded[window]).to(logits.device) * weights
        norm[window[2:]] += weights
    crop = [slice(None), slice(None), *(slice(before, before + n) for (before, _), n in zip(pads, shape, strict=True))]
    return (logits / norm)[tuple(crop)]


def validate(config: Config) -> None:
    for key in ("patch_size", "eval_volume_size"):
        check_min(config, key, MIN_PATCH)
        if int(config[key]) % 32:
            raise WorkloadConfigError(f"config key {key!r} must be a multiple of 32 (five stride-2 stages)")
    if not 0 <= float(config["overlap"]) < 1:
        raise WorkloadConfigError("config key 'overlap' must be in [0, 1)")
    if int(int(config["patch_size"]) * (1 - float(config["overlap"]))) < 1:
        raise WorkloadConfigError("config key 'overlap' leaves a sliding-window stride under one voxel")


def synthetic_batch(
    config: Config, batch: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    size = int(config["patch_size"])
    images = datalib.randn((batch, 1, size, size, size), generator, device)
    return images, datalib.randint(CLASSES, (batch, 1, size, size, size), generator, device).to(torch.uint8)


def synthetic_eval_batch(
    config: Config, batch: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic_batch({**config, "patch_size": config["eval_volume_size"]}, batch, generator, device)


def datasets(config: Config, root: Path, env: DistEnv) -> tuple[Dataset[Any], Dataset[Any]]:
    patch, seed = int(config["patch_size"]), int(config["seed"])
    train = Kits19Dataset(
        split_dir(root, "train"), env, patch, float(config["oversampling"]), seed, int(config["train_samples"])
    )
    evaluation = Kits19Dataset(split_dir(root, "validation"), env, 0, 0.0, seed, int(config["eval_samples"]))
    return train, evaluation


def optimizer(config: Config, shape: RunShape) -> OptimizerSpec:
    options = {"momentum": float(config["momentum"]), "weight_decay": float(config["weight_decay"]), "nesterov": True}
    return OptimizerSpec("sgd", float(config["lr"]), options)


def lr_factor(config: Config, shape: RunShape) -> LrFactor:
    start = float(config["lr_initial"]) / float(config["lr"])
    warmup_steps = float(config["lr_warmup_epochs"]) * shape.steps_per_epoch

    def factor(step: torch.Tensor) -> torch.Tensor:
        ramp = torch.clamp(step / warmup_steps, max=1.0) if warmup_steps > 0 else torch.ones_like(step)
        return start + (1.0 - start) * ramp

    return factor


def hyperparameters(config: Config, shape: RunShape) -> dict[str, Any]:
    patch = [int(config["patch_size"])] * 3
    return {
        "opt_name": "sgd",
        "opt_base_learning_rate": config["lr"],
        "opt_learning_rate_warmup_epochs": config["lr_warmup_epochs"],
        "opt_initial_learning_rate": config["lr_initial"],
        "opt_learning_rate_decay_boundary_epochs": [],
        "opt_learning_rate_decay_factor": 1.0,
        "opt_weight_decay": config["weight_decay"],
        "opt_momentum": config["momentum"],
        "oversampling": config["oversampling"],
        "training_input_shape": patch,
        "validation_input_shape": patch,
        "validation_overlap": config["overlap"],
    }


def differences(config: Config) -> list[Difference]:
    """What this config does differently from the MLPerf reference."""
    found = []
    eval_schedule = (int(config["eval_start_epoch"]), int(config["eval_every_epochs"]))
    if config["preset"] == "standard" and eval_schedule != REFERENCE_EVAL:
        text = f"evaluation from epoch {eval_schedule[0]} every {eval_schedule[1]}, not 1000 every 20"
        found.append(Difference("eval-schedule", text))
    if config["data"] == "real":
        text = "sliding window keeps the border voxels the reference crops from image and labels (remainder < stride/2)"
        found.append(Difference("sliding-window-border", text, closed_ok=True))
    return found + smoke_test(config)


SPEC = WorkloadSpec(
    name="unet3d",
    benchmark="unet3d",
    usage="training",
    ruleset=MLPERF_RULESET,
    dataset="kits19",
    spatial_dims=3,
    quality=Quality("eval_accuracy", 0.908, higher_is_better=True),
    build_model=lambda _config: UNet3D(),
    loss_fn=lambda _config: DiceCELoss(),
    synthetic_batch=synthetic_batch,
    synthetic_eval_batch=synthetic_eval_batch,
    datasets=datasets,
    score=score,
    optimizer=optimizer,
    lr_factor=lr_factor,
    hyperparameters=hyperparameters,
    validate=validate,
    infer=sliding_window,
    eval_batch_size=lambda _config: 1,
    differences=differences,
    reference_recipe="reference",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return training.main(SPEC, DEFAULTS, PRESETS, LAYOUTS, argv)


if __name__ == "__main__":
    sys.exit(main())
