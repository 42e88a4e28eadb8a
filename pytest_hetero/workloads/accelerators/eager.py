"""Eager torch: the ``cpu``, ``nvidia-gpu`` (CUDA) and ``amd-gpu`` (ROCm) kinds.

On a GPU: ``cuda:LOCAL_RANK``, AMP bf16/fp16 (GradScaler for fp16),
channels-last, cuDNN autotune, NCCL (RCCL behind the same name on ROCm).
Gradients are averaged by one explicit all-reduce per step
(:meth:`~pytest_hetero.workloads.distributed.Collectives.all_reduce_gradients`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pytest_hetero.workloads.accelerators.base import (
    Adapter,
    AdapterSettings,
    Batch,
    LrFactor,
    OptimizerSpec,
    Trainer,
)
from pytest_hetero.workloads.distributed import DistEnv, init_distributed

__all__ = ["EagerAdapter", "EagerTrainer"]

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class EagerAdapter(Adapter):
    """Plain torch on the CPU or a CUDA/ROCm GPU, with explicit gradient all-reduce."""

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
