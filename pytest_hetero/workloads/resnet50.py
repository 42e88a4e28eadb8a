"""ResNet-50 v1.5 training workload (MLPerf Training "resnet"), plain torch.

Run it as::

    python -m pytest_hetero.workloads.resnet50 --config-json '{"batch_size": 4}'
    python -m pytest_hetero.workloads.resnet50 --config run.json
    HETERO_WORKLOAD_CONFIG='{"threads": 2}' python -m pytest_hetero.workloads.resnet50

``DEFAULTS`` lists every config key; the defaults are a tiny CPU run that
takes seconds. The synthetic training set is ``train_steps * batch_size``
samples, so the run is one epoch. stdout carries MLPerf ``:::MLLOG`` events
(ruleset ``MLPERF_RULESET``) and, last, one ``:::HETERO_METRICS`` line.

The model is defined here, not taken from torchvision, so every platform
trains the identical network: bottlenecks [3, 4, 6, 3], stride on the 3x3
convolution (v1.5).
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pytest_hetero.workloads.common import (
    ConfigError,
    ConfigValue,
    MLLogger,
    StepTimer,
    WorkloadMetric,
    check_choice,
    check_min,
    config_or_exit,
    emit_metrics,
    exit_config_error,
    make_mllogger,
    peak_rss_mb,
    timing_metrics,
)

__all__ = ["DEFAULTS", "MLPERF_RULESET", "ResNet50", "main", "run"]

WORKLOAD = "resnet50"
PROG = "python -m pytest_hetero.workloads.resnet50"
MLPERF_RULESET = "4.0.0"  # the newest training ruleset with a resnet benchmark
QUALITY_TARGET_ACCURACY = 0.759  # MLPerf top-1 target; run_stop says "success" at it
END_LEARNING_RATE = 1e-4  # fixed by the MLPerf rules for SGD and LARS
LR_DECAY_POLY_POWER = 2
SYNTHETIC_POOL_BATCHES = 2  # distinct synthetic batches, cycled

DEFAULTS: dict[str, ConfigValue] = {
    "image_size": 32,
    "batch_size": 4,
    "train_steps": 6,
    "warmup_steps": 2,
    "eval_steps": 2,
    "num_classes": 1000,
    "precision": "fp32",
    "device": "auto",
    "channels_last": False,
    "zero_init_residual": False,
    "lr": 0.01,  # batch 4; MLPerf-style runs scale it with the batch size
    "lr_warmup_steps": 0,
    "momentum": 0.9,
    "weight_decay": 5e-5,
    "label_smoothing": 0.1,
    "seed": 0,
    "threads": 0,
    "data": "synthetic",
    "step_sleep_s": 0.0,
    "data_sleep_s": 0.0,
    "mllog_file": "",
    "submission_org": "pytest-hetero",
    "submission_platform": "",
    "submission_status": "research",
}

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
SUBMISSION_STATUSES = ("cloud", "onprem", "preview", "research")


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
# Config and runtime
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """What the config resolves to on this machine."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    memory_format: torch.memory_format


def validate(config: Mapping[str, ConfigValue]) -> None:
    """Check value ranges and choices; raise ConfigError naming the key."""
    check_choice(config, "precision", PRECISIONS)
    check_choice(config, "device", DEVICES)
    check_choice(config, "submission_status", SUBMISSION_STATUSES)
    for key in ("batch_size", "train_steps", "eval_steps", "num_classes"):
        check_min(config, key, 1)
    for key in ("warmup_steps", "lr_warmup_steps", "threads", "seed", "lr", "momentum"):
        check_min(config, key, 0)
    for key in ("weight_decay", "label_smoothing", "step_sleep_s", "data_sleep_s"):
        check_min(config, key, 0)
    check_min(config, "image_size", 32)  # five stride-2 stages need 32 px to leave 1x1
    if int(config["warmup_steps"]) >= int(config["train_steps"]):
        raise ConfigError("config key 'warmup_steps' must be < 'train_steps'")
    if int(config["lr_warmup_steps"]) >= int(config["train_steps"]):
        raise ConfigError("config key 'lr_warmup_steps' must be < 'train_steps'")
    if config["data"] != "synthetic":
        raise ConfigError(
            f"config key 'data': real datasets ({config['data']!r}) are not supported "
            "by this workload yet; use 'synthetic'"
        )


def resolve_runtime(config: Mapping[str, ConfigValue]) -> Runtime:
    """Pick device, autocast dtype and memory format; ConfigError if impossible."""
    device = _resolve_device(str(config["device"]))
    precision = str(config["precision"])
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("config key 'precision': fp16 needs a CUDA device; use bf16 or fp32 on cpu")
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    memory_format = torch.channels_last if config["channels_last"] else torch.contiguous_format
    return Runtime(device, dtypes[precision], memory_format)


def _resolve_device(name: str) -> torch.device:
    cuda_ok = torch.cuda.is_available()
    if name == "cuda" and not cuda_ok:
        raise ConfigError(
            "config key 'device': 'cuda' requested but torch.cuda.is_available() is "
            f"False (torch {torch.__version__}); use 'cpu' or 'auto'"
        )
    if name == "auto":
        return torch.device("cuda" if cuda_ok else "cpu")
    return torch.device(name)


def effective_config(config: Mapping[str, ConfigValue], runtime: Runtime) -> dict[str, ConfigValue]:
    """The config as run: ``device`` and ``submission_platform`` resolved."""
    resolved = dict(config)
    resolved["device"] = runtime.device.type
    resolved["submission_platform"] = str(config["submission_platform"]) or _platform_name(runtime.device)
    return resolved


def _platform_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"1x{torch.cuda.get_device_name(device)}"
    return f"1xcpu-{platform.machine() or 'unknown'}"


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


class SyntheticBatches:
    """A dataloader-like iterable over fixed random batches made on the device."""

    def __init__(self, config: Mapping[str, ConfigValue], runtime: Runtime, steps: int, seed: int) -> None:
        generator = torch.Generator(device=runtime.device).manual_seed(seed)
        self._pool = [_random_batch(config, runtime, generator) for _ in range(min(steps, SYNTHETIC_POOL_BATCHES))]
        self._steps = steps
        self._sleep_s = float(config["data_sleep_s"])

    def __len__(self) -> int:
        return self._steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(self._steps):
            if self._sleep_s:  # simulates a slow input pipeline in tests
                time.sleep(self._sleep_s)
            yield self._pool[step % len(self._pool)]


def _random_batch(
    config: Mapping[str, ConfigValue], runtime: Runtime, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, size = int(config["batch_size"]), int(config["image_size"])
    images = torch.randn((batch, 3, size, size), generator=generator, device=runtime.device).contiguous(
        memory_format=runtime.memory_format
    )
    labels = torch.randint(
        0,
        int(config["num_classes"]),
        (batch,),
        generator=generator,
        device=runtime.device,
    )
    return images, labels


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


@dataclass
class Trainer:
    """Model, optimiser and schedule for one run."""

    model: ResNet50
    optimizer: torch.optim.SGD
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss_fn: nn.CrossEntropyLoss
    runtime: Runtime
    step_sleep_s: float

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One optimiser step; returns the loss (not yet synchronised)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss: torch.Tensor = self.loss_fn(self.model(images), labels)
        torch.autograd.backward(self.scaler.scale(loss))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.step_sleep_s:  # injected slowdown, counted as compute
            time.sleep(self.step_sleep_s)
        return loss.detach()

    def autocast(self) -> torch.autocast:
        """Autocast context for the configured precision (off for fp32)."""
        dtype = self.runtime.autocast_dtype
        return torch.autocast(self.runtime.device.type, dtype=dtype, enabled=dtype is not None)


def build_trainer(config: Mapping[str, ConfigValue], runtime: Runtime) -> Trainer:
    """Create the model and the MLPerf SGD set-up (poly decay, linear warm-up)."""
    model = ResNet50(int(config["num_classes"]), bool(config["zero_init_residual"]))
    model = model.to(runtime.device)
    if runtime.memory_format == torch.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=float(config["lr"]),
        momentum=float(config["momentum"]),
        weight_decay=float(config["weight_decay"]),
    )
    schedule = _poly_schedule(config)
    return Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, schedule),
        scaler=torch.amp.GradScaler(runtime.device.type, enabled=runtime.autocast_dtype == torch.float16),
        loss_fn=nn.CrossEntropyLoss(label_smoothing=float(config["label_smoothing"])),
        runtime=runtime,
        step_sleep_s=float(config["step_sleep_s"]),
    )


def _poly_schedule(config: Mapping[str, ConfigValue]) -> Callable[[int], float]:
    """LR factor per step: linear warm-up, then poly(2) decay to END_LEARNING_RATE."""
    base_lr = float(config["lr"])
    warmup = int(config["lr_warmup_steps"])
    decay_steps = int(config["train_steps"]) - warmup
    end_factor = END_LEARNING_RATE / base_lr if base_lr > 0 else 0.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        remaining = max(0.0, 1 - (step - warmup) / decay_steps)
        return (1 - end_factor) * remaining**LR_DECAY_POLY_POWER + end_factor

    return factor


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so that host timers measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(trainer: Trainer, batches: SyntheticBatches, timer: StepTimer) -> float:
    """Run every training step under ``timer``; return the final loss."""
    trainer.model.train()
    iterator = iter(batches)
    loss = torch.tensor(math.nan)
    for _ in range(len(batches)):
        images, labels = timer.fetch(iterator)
        with timer.compute():
            loss = trainer.train_step(images, labels)
            synchronize(trainer.runtime.device)
    return float(loss.item())


def evaluate(trainer: Trainer, batches: SyntheticBatches) -> float:
    """Top-1 accuracy over the eval batches."""
    trainer.model.eval()
    correct, total = 0, 0
    with torch.inference_mode(), trainer.autocast():
        for images, labels in batches:
            predictions = trainer.model(images).argmax(dim=1)
            correct += int((predictions == labels).sum().item())
            total += labels.numel()
    return correct / total


# --------------------------------------------------------------------------
# MLPerf logging
# --------------------------------------------------------------------------


def log_submission(mllog: MLLogger, config: Mapping[str, ConfigValue]) -> None:
    """The submission_* and cache_clear events of the MLPerf rules."""
    mllog.event("submission_benchmark", "resnet")
    mllog.event("submission_org", config["submission_org"])
    mllog.event("submission_division", "closed")
    mllog.event("submission_status", config["submission_status"])
    mllog.event("submission_platform", config["submission_platform"])
    mllog.event("cache_clear", True)


def log_hyperparameters(mllog: MLLogger, config: Mapping[str, ConfigValue]) -> None:
    """Batch, data-size and SGD keys required for resnet with opt_name sgd."""
    batch_size, train_steps = int(config["batch_size"]), int(config["train_steps"])
    lr_warmup_steps = int(config["lr_warmup_steps"])
    hyperparameters: dict[str, Any] = {
        "seed": config["seed"],
        "global_batch_size": batch_size,  # one process: global == local
        "gradient_accumulation_steps": 1,
        "train_samples": train_steps * batch_size,
        "eval_samples": int(config["eval_steps"]) * batch_size,
        "model_bn_span": batch_size,
        "opt_name": "sgd",
        "opt_base_learning_rate": config["lr"],
        "sgd_opt_base_learning_rate": config["lr"],
        "sgd_opt_end_learning_rate": END_LEARNING_RATE,
        "sgd_opt_learning_rate_decay_poly_power": LR_DECAY_POLY_POWER,
        "sgd_opt_learning_rate_decay_steps": train_steps - lr_warmup_steps,
        "sgd_opt_weight_decay": config["weight_decay"],
        "sgd_opt_momentum": config["momentum"],
        "opt_learning_rate_warmup_epochs": lr_warmup_steps / train_steps,
    }
    for key, value in hyperparameters.items():
        mllog.event(key, value)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def run(config: Mapping[str, ConfigValue], runtime: Runtime, mllog: MLLogger) -> list[WorkloadMetric]:
    """Initialise, train one epoch, evaluate; log MLPerf events; return metrics."""
    mllog.start("init_start")
    log_submission(mllog, config)
    log_hyperparameters(mllog, config)
    torch.manual_seed(int(config["seed"]))
    trainer = build_trainer(config, runtime)
    train_data = SyntheticBatches(config, runtime, int(config["train_steps"]), int(config["seed"]) + 1)
    eval_data = SyntheticBatches(config, runtime, int(config["eval_steps"]), int(config["seed"]) + 2)
    timer = StepTimer(int(config["warmup_steps"]), int(config["batch_size"]))
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    synchronize(runtime.device)
    mllog.end("init_stop")

    mllog.start("run_start")
    run_start_s = time.perf_counter()
    status = "aborted"
    try:
        loss, accuracy = _train_and_evaluate(trainer, train_data, eval_data, timer, mllog)
        status = "success" if accuracy >= QUALITY_TARGET_ACCURACY else "aborted"
    finally:
        mllog.end("run_stop", metadata={"status": status})
    time_to_train_s = time.perf_counter() - run_start_s
    return _metrics(timer, time_to_train_s, loss, accuracy, runtime)


def _train_and_evaluate(
    trainer: Trainer,
    train_data: SyntheticBatches,
    eval_data: SyntheticBatches,
    timer: StepTimer,
    mllog: MLLogger,
) -> tuple[float, float]:
    epoch = {"epoch_num": 1}
    mllog.start("epoch_start", metadata=epoch)
    loss = train_epoch(trainer, train_data, timer)
    mllog.end("epoch_stop", metadata=epoch)
    mllog.start("eval_start", metadata=epoch)
    accuracy = evaluate(trainer, eval_data)
    mllog.event("eval_accuracy", accuracy, metadata=epoch)
    mllog.end("eval_stop", metadata=epoch)
    return loss, accuracy


def _metrics(
    timer: StepTimer,
    time_to_train_s: float,
    loss: float,
    accuracy: float,
    runtime: Runtime,
) -> list[WorkloadMetric]:
    metrics = timing_metrics(timer.summary())
    metrics += [
        WorkloadMetric("time_to_train_s", time_to_train_s, "s", False),
        WorkloadMetric("train_loss", loss, "", False),
        WorkloadMetric("eval_accuracy", accuracy, "ratio", True),
        WorkloadMetric("peak_rss_mb", peak_rss_mb(), "MiB", False),
    ]
    if runtime.device.type == "cuda":
        peak_bytes = torch.cuda.max_memory_allocated(runtime.device)
        metrics.append(WorkloadMetric("peak_device_memory_mb", peak_bytes / 2**20, "MiB", False))
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    config = config_or_exit(sys.argv[1:] if argv is None else argv, DEFAULTS, PROG)
    try:
        validate(config)
        runtime = resolve_runtime(config)
    except ConfigError as exc:
        exit_config_error(PROG, exc)
    config = effective_config(config, runtime)
    if int(config["threads"]) > 0:
        torch.set_num_threads(int(config["threads"]))
    mllog = make_mllogger(str(config["mllog_file"]))
    metrics = run(config, runtime, mllog)
    emit_metrics(metrics, WORKLOAD, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
