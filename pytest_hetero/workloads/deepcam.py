"""DeepCAM (MLPerf HPC): DeepLabv3+ segmentation of extreme-weather patterns.

Run it as::

    python -m pytest_hetero.workloads.deepcam --config-json '{"preset": "tiny"}'

The model is the MLPerf HPC reference (``deepcam/src/deepCam/architecture``)
in plain torch, built in :mod:`.deeplab`: a modified aligned Xception
encoder (output stride 16), ASPP with rates 1/6/12/18 and a global-pool
branch, and the deconvolution decoder, 16 input channels, 3 classes. Loss:
cross-entropy with the reference's class weights (frequency^-0.125), the plain
mean of the weighted per-pixel terms as the reference's ``utils/losses.py``.
Quality: the mean intersection-over-union per sample (``eval_accuracy``,
target 0.82). Recipes (``recipe``): ``lamb``, the reference's (LAMB, lr
0.0055, 400 warm-up steps, ×0.1 at step 800 after it, weight decay 0.01) and
``adamw`` (the default: AdamW, eps 1e-6, lr 0.001; also allowed in MLPerf's
closed division). The reference's step counts are sized for a global batch of
2048 (``lr_schedule_batch_size``): warm-up and milestone scale by 2048 over the
run's global batch, so a schedule spans the same number of samples.

The decoder concatenates 1/4-resolution features with the 1/16 ones upsampled
4×, so height and width must be multiples of 16: ``tiny`` uses 64×96 (the
2:3 shape of the real 768×1152 images), ``standard`` 768×1152 and the
MLPerf dataset sizes, ``subset`` 768×1152 with 512 samples and 2 epochs.
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
from pytest_hetero.workloads.datasets import DeepCamDataset
from pytest_hetero.workloads.deeplab import DeepLabV3Plus
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

__all__ = ["CLASS_WEIGHTS", "DEFAULTS", "MLPERF_RULESET", "PRESETS", "RECIPES", "SPEC", "main"]

MLPERF_RULESET = "3.0.0"  # HPC
CHANNELS = 16
CLASSES = 3
# the reference's "magic numbers": class frequencies to the power -0.125
CLASS_WEIGHTS = tuple(f**-0.125 for f in (0.986267818390377, 0.0004578708870701058, 0.01327431072255291))
LAYOUTS = ("hdf5", "numpy")

DEFAULTS: dict[str, ConfigValue] = {
    **COMMON_DEFAULTS,
    "height": 64,
    "width": 96,
    "batch_size": 2,
    "train_samples": 4,
    "eval_samples": 2,
    "lr": 0.001,
    "weight_decay": 0.01,
    "lr_warmup_steps": 0,
    "lr_warmup_factor": 1.0,
    "lr_milestone_step": 800,
    "lr_decay_rate": 0.1,
    "lr_schedule_batch_size": 2048,  # the global batch the step counts above are sized for
    "recipe": "adamw",
}

#: ``recipe`` -> its keys. ``lamb`` is the MLPerf HPC reference's at global batch 2048.
RECIPES: dict[str, dict[str, ConfigValue]] = {
    "adamw": {},
    "lamb": {"lr": 0.0055, "lr_warmup_steps": 400, "lr_milestone_step": 800, "weight_decay": 0.01},
}
LAMB_MAX_GRAD_NORM = 1.0  # fixed by the HPC rules

PRESETS: dict[str, dict[str, ConfigValue]] = {
    "tiny": {"height": 64, "width": 96, "batch_size": 2, "train_samples": 4, "eval_samples": 2, "epochs": 2},
    "standard": {
        "height": 768,
        "width": 1152,
        "batch_size": 2,
        "train_samples": 121266,
        "eval_samples": 15158,
        "epochs": 35,
        "warmup_steps": 20,
        "lr_warmup_steps": 400,
    },
    "subset": {
        "height": 768,
        "width": 1152,
        "batch_size": 2,
        "train_samples": 512,
        "eval_samples": 64,
        "epochs": 2,
        "warmup_steps": 5,
        "lr_warmup_steps": 16,
        "lr_schedule_batch_size": 2,  # 16 warm-up steps of this short run, not scaled
        "stop_at_target": False,
    },
}


def validate(config: Config) -> None:
    for key in ("height", "width"):
        check_min(config, key, 32)
        if int(config[key]) % 16:
            raise WorkloadConfigError(f"config key {key!r} must be a multiple of 16 (output stride 16)")
    check_min(config, "lr_warmup_factor", 1.0)
    check_min(config, "lr_warmup_steps", 0)
    check_min(config, "lr_schedule_batch_size", 1)


class WeightedCrossEntropy(nn.Module):
    """Cross-entropy per pixel with the reference's class weights."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.tensor(CLASS_WEIGHTS))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = self.get_buffer("weight").to(logits.device)
        # the plain mean of the weighted terms (reduction "mean" would divide by the summed weights)
        return nn.functional.cross_entropy(logits.float(), labels, weight=weight, reduction="none").mean()


def score(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Sum over samples of the mean IoU over classes (an absent class counts as perfect)."""
    prediction = logits.argmax(dim=1).view(labels.shape[0], -1)
    truth = labels.view(labels.shape[0], -1)
    iou = torch.zeros(labels.shape[0], device=labels.device)
    for cls in range(CLASSES):
        predicted, actual = prediction == cls, truth == cls
        true_positive = (predicted & actual).sum(1).float()
        union = (predicted | actual).sum(1).float()
        iou += torch.where(union > 0, true_positive / union.clamp_min(1), torch.ones_like(union))
    return float((iou / CLASSES).sum()), float(labels.shape[0])


def synthetic_batch(
    config: Config, batch: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = int(config["height"]), int(config["width"])
    images = datalib.rand((batch, CHANNELS, height, width), generator, device)  # min-max scaled
    return images, datalib.randint(CLASSES, (batch, height, width), generator, device)


def datasets(config: Config, root: Path, env: DistEnv) -> tuple[Dataset[Any], Dataset[Any]]:
    layout = str(config["data_layout"])
    train = DeepCamDataset(root, "train", layout, env, int(config["train_samples"]))
    evaluation = DeepCamDataset(root, "validation", layout, env, int(config["eval_samples"]))
    return train, evaluation


def optimizer(config: Config, shape: RunShape) -> OptimizerSpec:
    options: dict[str, Any] = {"betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": float(config["weight_decay"])}
    if config["recipe"] == "lamb":
        return OptimizerSpec("lamb", float(config["lr"]), {**options, "max_grad_norm": LAMB_MAX_GRAD_NORM})
    return OptimizerSpec("adamw", float(config["lr"]), options)


def schedule_steps(config: Config, shape: RunShape) -> tuple[int, int]:
    """Warm-up steps and milestone (steps after the warm-up), scaled from ``lr_schedule_batch_size``."""
    scale = int(config["lr_schedule_batch_size"]) / shape.global_batch_size
    return round(int(config["lr_warmup_steps"]) * scale), round(int(config["lr_milestone_step"]) * scale)


def lr_factor(config: Config, shape: RunShape) -> LrFactor:
    """GradualWarmup (to ``lr × lr_warmup_factor``), then ×decay at the milestone."""
    warmup_steps, milestone_step = schedule_steps(config, shape)
    warmup, milestone = float(warmup_steps), float(milestone_step)
    peak, rate = float(config["lr_warmup_factor"]), float(config["lr_decay_rate"])

    def factor(step: torch.Tensor) -> torch.Tensor:
        if warmup > 0:
            fraction = torch.clamp(step / warmup, max=1.0)
            ramp = fraction * peak if peak == 1.0 else 1.0 + (peak - 1.0) * fraction
        else:
            ramp = torch.full_like(step, peak)
        return ramp * torch.where(step - warmup >= milestone, rate, 1.0)

    return factor


def hyperparameters(config: Config, shape: RunShape) -> dict[str, Any]:
    warmup, milestone = schedule_steps(config, shape)
    found: dict[str, Any] = {
        "batchnorm_group_size": 1,
        "opt_name": "LAMB" if config["recipe"] == "lamb" else "AdamW",
        "opt_lr": config["lr"],
        "opt_betas": [0.9, 0.999],
        "opt_eps": 1e-6,
        "opt_weight_decay": config["weight_decay"],
        "scheduler_type": "multistep",
        "scheduler_milestones": [milestone],
        "scheduler_decay_rate": config["lr_decay_rate"],
        "scheduler_lr_warmup_steps": warmup,
        "scheduler_lr_warmup_factor": config["lr_warmup_factor"],
    }
    if config["recipe"] == "lamb":
        found.update(opt_bias_correction=True, opt_grad_averaging=True, opt_max_grad_norm=LAMB_MAX_GRAD_NORM)
    return found


def differences(config: Config) -> list[Difference]:
    """What this config does differently from the MLPerf HPC reference."""
    found = []
    if config["recipe"] == "adamw":
        found.append(Difference("optimizer-adamw", "AdamW instead of the reference's LAMB (closed allows both)", True))
    if int(config["lr_schedule_batch_size"]) != 2048:
        found.append(
            Difference("schedule-unscaled", "warm-up and milestone steps not sized for global batch 2048", True)
        )
    return found + smoke_test(config)


SPEC = WorkloadSpec(
    name="deepcam",
    benchmark="deepcam",
    usage="hpc",
    ruleset=MLPERF_RULESET,
    dataset="deepcam",
    spatial_dims=2,
    quality=Quality("eval_accuracy", 0.82, higher_is_better=True),
    build_model=lambda _config: DeepLabV3Plus(CHANNELS, CLASSES),
    loss_fn=lambda _config: WeightedCrossEntropy(),
    synthetic_batch=synthetic_batch,
    datasets=datasets,
    score=score,
    optimizer=optimizer,
    lr_factor=lr_factor,
    hyperparameters=hyperparameters,
    validate=validate,
    differences=differences,
    reference_recipe="lamb",
    recipes=RECIPES,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return training.main(SPEC, DEFAULTS, PRESETS, LAYOUTS, argv)


if __name__ == "__main__":
    sys.exit(main())
