"""What every accelerator adapter shares: the two ABCs, the settings and the optimiser spec.

:class:`Adapter` places a workload on one family of hardware and builds its
:class:`Trainer`; :class:`AdapterSettings` is the config's view of the
hardware, identical on every platform. A missing SDK raises
:class:`MissingSDKError` naming the package to install (:func:`require_sdk`).
"""

from __future__ import annotations

import importlib
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pytest_hetero.workloads.distributed import Collectives, DistEnv
from pytest_hetero.workloads.protocol import ACCELERATOR_KINDS

__all__ = [
    "KINDS",
    "PRECISIONS",
    "Adapter",
    "AdapterSettings",
    "Batch",
    "InferFn",
    "LrFactor",
    "MissingSDKError",
    "OptimizerSpec",
    "ScoreFn",
    "Trainer",
    "require_sdk",
]

KINDS = ACCELERATOR_KINDS
PRECISIONS = ("fp32", "bf16", "fp16")
Batch = tuple[torch.Tensor, torch.Tensor]
#: A learning-rate factor per step, written with torch ops so SDKs can trace it.
LrFactor = Callable[[torch.Tensor], torch.Tensor]
#: (outputs, targets) -> (sum, count) of the quality metric.
ScoreFn = Callable[[torch.Tensor, torch.Tensor], tuple[float, float]]
#: (predict, inputs) -> outputs: evaluation that calls the model several times (sliding windows).
InferFn = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]
_INSTALL_HINTS = {
    "poptorch": "install the PopTorch wheel shipped with the Graphcore Poplar SDK (it is not on PyPI) "
    "and source the SDK's enable scripts",
    "cerebras.pytorch": "pip install cerebras-pytorch (in its own virtual environment: it pins its own torch)",
}


class MissingSDKError(RuntimeError):
    """The accelerator's Python SDK cannot be imported; the message names the package."""


def require_sdk(module: str, kind: str) -> ModuleType:
    """Import ``module`` or raise MissingSDKError saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(module, f"install the package that provides {module!r}")
        raise MissingSDKError(
            f"accelerator kind {kind!r} needs the Python package {module!r}, which cannot be imported ({exc}); {hint}"
        ) from exc


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimiser by name, so each adapter can build its SDK's own class."""

    name: str  # "sgd" | "adamw" | "lars" | "lamb"
    lr: float
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, parameters: Iterable[nn.Parameter], namespace: Any = torch.optim) -> Any:
        if self.name in ("lars", "lamb"):  # torch has neither: the MLPerf reference versions, eager only
            from pytest_hetero.workloads.common import WorkloadConfigError
            from pytest_hetero.workloads.optim import OPTIMIZERS

            if namespace is not torch.optim:
                raise WorkloadConfigError(f"optimizer {self.name!r} runs on the eager adapters only (cpu, CUDA, ROCm)")
            return OPTIMIZERS[self.name](parameters, lr=self.lr, **dict(self.options))
        classes = {"sgd": namespace.SGD, "adamw": namespace.AdamW}
        return classes[self.name](parameters, lr=self.lr, **dict(self.options))


@dataclass(frozen=True)
class AdapterSettings:
    """What the config asks of the hardware; identical on every platform."""

    kind: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    spatial_dims: int = 2  # picks channels_last (2-D) or channels_last_3d (3-D)
    seed: int = 0
    loader_workers: int = 0
    dist_backend: str = "auto"  # auto | nccl | rccl | gloo | mpi
    device_iterations: int = 1  # graphcore-ipu: batches per host round trip
    replicas: int = 1  # graphcore-ipu: replication factor
    cerebras_backend: str = "CSX"  # cerebras: "CSX" (the system) or "CPU"


class Trainer(ABC):
    """A model ready to train on one kind of hardware."""

    model: nn.Module

    @abstractmethod
    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One optimiser step; returns the loss (possibly not yet synchronised)."""

    @abstractmethod
    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """Model outputs in eval mode, on the host or the device."""

    def train(self) -> None:
        """Switch to training mode (after an evaluation)."""
        self.model.train()

    def evaluate(self, batches: Iterable[Batch], score: ScoreFn, infer: InferFn | None) -> tuple[float, float]:
        """Sum and count of ``score`` over ``batches``; ``infer`` wraps ``predict`` (sliding windows)."""
        total, count = 0.0, 0.0
        for inputs, targets in batches:
            outputs = infer(self.predict, inputs) if infer else self.predict(inputs)
            score_sum, score_count = score(outputs, targets.to(outputs.device))
            total, count = total + score_sum, count + score_count
        return total, count


class Adapter(ABC):
    """Places a workload on hardware; one subclass per accelerator family (the kinds: the package's registry)."""

    def __init__(self, settings: AdapterSettings, env: DistEnv) -> None:
        self.settings = settings
        self.env = env
        self.collectives = Collectives(torch.device("cpu"), None)

    @property
    def device(self) -> torch.device:
        """Where synthetic data is made and batches go."""
        return torch.device("cpu")

    @property
    def devices(self) -> int:
        """Accelerators this run uses in total (for MFU)."""
        return self.env.world_size

    def samples_per_step(self, batch_size: int) -> int:
        """Samples one call of ``Trainer.step`` consumes across all ranks."""
        return batch_size * self.env.world_size

    @abstractmethod
    def trainer(self, model: nn.Module, loss_fn: nn.Module, optimizer: OptimizerSpec, lr_factor: LrFactor) -> Trainer:
        """Place ``model`` and build the training step."""

    def loader(self, dataset: Dataset[Any], batch_size: int, train: bool) -> Iterable[Batch]:
        """Batches of ``dataset`` for this rank, ready for ``Trainer.step`` (shuffled for training)."""
        generator = torch.Generator().manual_seed(self.settings.seed)
        workers = self.settings.loader_workers
        return DataLoader(dataset, batch_size, shuffle=train, drop_last=train, generator=generator, num_workers=workers)

    def to_device(self, batch: Batch) -> Batch:
        """Move a host batch where the step expects it."""
        return batch

    def synchronize(self) -> None:
        """Wait for queued device work, so that host timers measure it."""

    def peak_memory_mb(self) -> float | None:
        """Peak device memory of this process, where the SDK reports it."""
        return None

    def platform_name(self) -> str:
        """A ``submission_platform`` value: ``<n>x<device>``."""
        return f"{self.env.world_size}xcpu-{platform.machine() or 'unknown'}"

    def close(self) -> None:
        """Release the hardware and the process group."""
        self.collectives.shutdown()
