"""Accelerator adapters: the only code that differs between platforms.

Every workload builds the same ``nn.Module``, loss and optimiser
description; the adapter places them on the hardware and runs a step:

=================  ===========================================================
kind               what the adapter does
=================  ===========================================================
``cpu``            eager torch; autocast bf16 if asked; gloo (or MPI) collectives
``nvidia-gpu``     eager torch on ``cuda:LOCAL_RANK``; AMP bf16/fp16 (GradScaler
                   for fp16), channels-last, cuDNN autotune; NCCL
``amd-gpu``        the same on a ROCm build of torch (HIP behind ``torch.cuda``); RCCL
``graphcore-ipu``  PopTorch: ``trainingModel`` around model + loss, replication,
                   device iterations, ``poptorch.DataLoader``; fp16 by ``half()``
``cerebras``       cerebras.pytorch: ``backend`` (CSX or CPU), ``compile``, its
                   optimiser, a ``@trace``-d step, ``DataExecutor``
=================  ===========================================================

A missing SDK raises :class:`MissingSDKError` naming the package to install.
The vendor adapters live in :mod:`.vendor_adapters`.
"""

from __future__ import annotations

import contextlib
import importlib
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pytest_hetero.workloads.distributed import Collectives, DistEnv, init_distributed

__all__ = [
    "KINDS",
    "PRECISIONS",
    "Adapter",
    "AdapterSettings",
    "EagerAdapter",
    "LrFactor",
    "MissingSDKError",
    "OptimizerSpec",
    "ScoreFn",
    "Trainer",
    "make_adapter",
    "require_sdk",
]

KINDS = ("cpu", "nvidia-gpu", "amd-gpu", "graphcore-ipu", "cerebras")
PRECISIONS = ("fp32", "bf16", "fp16")
Batch = tuple[torch.Tensor, torch.Tensor]
#: A learning-rate factor per step, written with torch ops so SDKs can trace it.
LrFactor = Callable[[torch.Tensor], torch.Tensor]
#: (outputs, targets) -> (sum, count) of the quality metric.
ScoreFn = Callable[[torch.Tensor, torch.Tensor], tuple[float, float]]
#: (predict, inputs) -> outputs: evaluation that calls the model several times (sliding windows).
InferFn = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
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

    name: str  # "sgd" | "adamw"
    lr: float
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, parameters: Iterable[nn.Parameter], namespace: Any = torch.optim) -> Any:
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
    """Places a workload on hardware; one subclass per accelerator family."""

    kinds: ClassVar[tuple[str, ...]]

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


# --------------------------------------------------------------------------
# Eager torch: cpu, nvidia-gpu (CUDA), amd-gpu (ROCm)
# --------------------------------------------------------------------------


class EagerAdapter(Adapter):
    """Plain torch on the CPU or a CUDA/ROCm GPU, with explicit gradient all-reduce."""

    kinds = ("cpu", "nvidia-gpu", "amd-gpu")

    def __init__(self, settings: AdapterSettings, env: DistEnv) -> None:
        super().__init__(settings, env)
        self._device = _eager_device(settings, env)
        if self._device.type == "cuda":
            torch.cuda.set_device(self._device)
            torch.backends.cudnn.benchmark = True
            torch.cuda.reset_peak_memory_stats(self._device)
        if settings.precision == "fp16" and self._device.type != "cuda":
            raise ValueError("precision 'fp16' needs a GPU; use 'bf16' or 'fp32' on a CPU")
        self.collectives = init_distributed(env, settings.dist_backend, self._device)
        self.collectives.sync = self.synchronize

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def memory_format(self) -> torch.memory_format:
        if not self.settings.channels_last:
            return torch.contiguous_format
        return torch.channels_last_3d if self.settings.spatial_dims == 3 else torch.channels_last

    def trainer(self, model: nn.Module, loss_fn: nn.Module, optimizer: OptimizerSpec, lr_factor: LrFactor) -> Trainer:
        model = model.to(self._device, memory_format=self.memory_format)  # type: ignore[call-overload]
        if self.collectives.active:  # every rank starts from rank 0's weights
            for tensor in [*model.parameters(), *model.buffers()]:
                torch.distributed.broadcast(tensor.data, src=0)
        return EagerTrainer(model, loss_fn.to(self._device), optimizer, lr_factor, self)

    def loader(self, dataset: Dataset[Any], batch_size: int, train: bool) -> Iterable[Batch]:
        loader = super().loader(dataset, batch_size, train)
        assert isinstance(loader, DataLoader)
        loader.pin_memory = self._device.type == "cuda"
        return _DeviceBatches(loader, self)

    def to_device(self, batch: Batch) -> Batch:
        inputs, targets = batch
        inputs = inputs.to(self._device, non_blocking=True)
        if inputs.dim() in (4, 5) and self.settings.channels_last:
            inputs = inputs.contiguous(memory_format=self.memory_format)
        return inputs, targets.to(self._device, non_blocking=True)

    def synchronize(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)

    def peak_memory_mb(self) -> float | None:
        if self._device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self._device) / 2**20

    def platform_name(self) -> str:
        if self._device.type != "cuda":
            return super().platform_name()
        return f"{self.env.world_size}x{torch.cuda.get_device_name(self._device)}"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = _DTYPES[self.settings.precision]
        return torch.autocast(self._device.type, dtype=dtype, enabled=dtype is not None)


def _eager_device(settings: AdapterSettings, env: DistEnv) -> torch.device:
    if settings.kind == "cpu":
        return torch.device("cpu")
    rocm = torch.version.hip is not None
    wanted_rocm = settings.kind == "amd-gpu"
    if rocm != wanted_rocm:
        build = "ROCm" if rocm else "CUDA/CPU"
        needed = "a ROCm" if wanted_rocm else "a CUDA"
        raise ValueError(f"accelerator kind {settings.kind!r} needs {needed} build of torch; this is a {build} build")
    if not torch.cuda.is_available():
        raise ValueError(
            f"accelerator kind {settings.kind!r}: torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); no GPU is visible to this process"
        )
    return torch.device("cuda", env.local_rank % torch.cuda.device_count())


class _DeviceBatches:
    """A DataLoader whose batches arrive on the device (length preserved)."""

    def __init__(self, loader: DataLoader[Any], adapter: EagerAdapter) -> None:
        self._loader = loader
        self._adapter = adapter

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self._loader:
            yield self._adapter.to_device((batch[0], batch[1]))


class EagerTrainer(Trainer):
    """zero_grad, autocast forward, (scaled) backward, all-reduce, step, schedule."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: OptimizerSpec,
        lr_factor: LrFactor,
        adapter: EagerAdapter,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.adapter = adapter
        self.optimizer = optimizer.build(model.parameters())
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: float(lr_factor(torch.tensor(float(step))))
        )
        fp16 = adapter.settings.precision == "fp16"
        self.scaler = torch.amp.GradScaler(adapter.device.type, enabled=fp16)

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with self.adapter.autocast():
            loss: torch.Tensor = self.loss_fn(self.model(inputs), targets)
        torch.autograd.backward(self.scaler.scale(loss))
        self.adapter.collectives.all_reduce_gradients(self.model.parameters())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with torch.inference_mode(), self.adapter.autocast():
            outputs: torch.Tensor = self.model(inputs)
        return outputs.float()


def make_adapter(settings: AdapterSettings, env: DistEnv) -> Adapter:
    """The adapter for ``settings.kind``; vendor SDKs are imported only when chosen."""
    if settings.kind in EagerAdapter.kinds:
        return EagerAdapter(settings, env)
    from pytest_hetero.workloads import vendor_adapters

    if settings.kind == "graphcore-ipu":
        return vendor_adapters.PopTorchAdapter(settings, env)
    if settings.kind == "cerebras":
        return vendor_adapters.CerebrasAdapter(settings, env)
    raise ValueError(f"unknown accelerator kind {settings.kind!r}; known: {', '.join(KINDS)}")
