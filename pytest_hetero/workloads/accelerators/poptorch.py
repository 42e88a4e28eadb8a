"""Graphcore IPUs (``graphcore-ipu``) through PopTorch.

PopTorch is imported when the adapter is created, never at module import, so
this module loads everywhere; where it is missing,
:class:`~pytest_hetero.workloads.accelerators.base.MissingSDKError` names the
package. Learning-rate schedules are functions of a step *tensor* written with
torch operations, so the same function drives PopTorch's host-side updates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pytest_hetero.workloads.accelerators.base import (
    Adapter,
    AdapterSettings,
    Batch,
    LrFactor,
    OptimizerSpec,
    Trainer,
    require_sdk,
)
from pytest_hetero.workloads.distributed import DistEnv

__all__ = ["PopTorchAdapter", "PopTorchTrainer", "WithLoss"]


class WithLoss(nn.Module):
    """Model and loss in one module: PopTorch compiles the loss into the graph."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, identity_loss: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn
        self._identity_loss = identity_loss

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._identity_loss(self.loss_fn(self.model(inputs), targets), reduction="none")


class PopTorchAdapter(Adapter):
    """``poptorch.trainingModel`` with replication and device iterations.

    One ``step`` call runs ``device_iterations`` batches on each of
    ``replicas`` IPUs: the host batch is ``batch x device_iterations x replicas``.
    fp16 converts the model with ``half()`` (PopTorch has no autocast); bf16 is refused.
    """

    def __init__(self, settings: AdapterSettings, env: DistEnv) -> None:
        super().__init__(settings, env)
        self.poptorch: Any = require_sdk("poptorch", "graphcore-ipu")
        if settings.precision == "bf16":
            raise ValueError("precision 'bf16' is not supported on graphcore-ipu; use 'fp16' or 'fp32'")
        self.options = self._options(settings.device_iterations)

    def _options(self, device_iterations: int) -> Any:
        popdist = _popdist()
        options = self.poptorch.Options() if popdist is None else popdist.poptorch.Options()
        options.deviceIterations(device_iterations)
        if popdist is None:
            options.replicationFactor(self.settings.replicas)
        else:  # started by poprun: PopDist gives this instance its share of the replicas
            self.settings = dataclasses.replace(self.settings, replicas=int(popdist.getNumLocalReplicas()))
        options.randomSeed(self.settings.seed)
        return options

    @property
    def devices(self) -> int:
        return self.settings.replicas * self.env.world_size

    def samples_per_step(self, batch_size: int) -> int:
        return batch_size * self.settings.device_iterations * self.devices

    def host_batch_size(self, batch_size: int) -> int:
        return batch_size * self.settings.device_iterations * self.settings.replicas

    def trainer(self, model: nn.Module, loss_fn: nn.Module, optimizer: OptimizerSpec, lr_factor: LrFactor) -> Trainer:
        if self.settings.precision == "fp16":
            model = model.half()
        return PopTorchTrainer(model, loss_fn, optimizer, lr_factor, self)

    def loader(self, dataset: Dataset[Any], batch_size: int, train: bool) -> Iterable[Batch]:
        loader: Iterable[Batch] = self.poptorch.DataLoader(
            self.options,
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=True,  # PopTorch compiles for one batch shape
            num_workers=self.settings.loader_workers,
        )
        return loader

    def platform_name(self) -> str:
        return f"{self.devices}xIPU"


class PopTorchTrainer(Trainer):
    """Training and inference executables that share the host copy of the weights."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: OptimizerSpec,
        lr_factor: LrFactor,
        adapter: PopTorchAdapter,
    ) -> None:
        self.model = model
        self.adapter = adapter
        self.poptorch = adapter.poptorch
        self.base_lr = optimizer.lr
        self.lr_factor = lr_factor
        self.optimizer = optimizer.build(model.parameters(), namespace=self.poptorch.optim)
        wrapped = WithLoss(model, loss_fn, self.poptorch.identity_loss)
        self.training = self.poptorch.trainingModel(wrapped, options=adapter.options, optimizer=self.optimizer)
        self._inference: Any = None
        self._step = 0

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self._attach(self.training, self._inference)
        loss: torch.Tensor = self.training(inputs, targets)
        self._step += 1
        self._set_lr(self.base_lr * float(self.lr_factor(torch.tensor(float(self._step)))))
        return loss

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.training.setOptimizer(self.optimizer)  # PopTorch copies optimiser state to the IPU

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        if self._inference is None:
            self.training.copyWeightsToHost()
            eval_options = self.adapter._options(1)
            self._inference = self.poptorch.inferenceModel(self.model.eval(), options=eval_options)
        self._attach(self._inference, self.training)
        outputs: torch.Tensor = self._inference(inputs)
        return outputs.float()

    def train(self) -> None:
        self.model.train()

    @staticmethod
    def _attach(wanted: Any, other: Any) -> None:
        if other is not None and other.isAttachedToDevice():
            other.detachFromDevice()
        if wanted.isCompiled() and not wanted.isAttachedToDevice():
            wanted.attachToDevice()


def _popdist() -> Any:
    """Graphcore's PopDist when poprun started this process (``launcher: poprun``), else None."""
    try:
        import popdist  # type: ignore[import-not-found]  # the Poplar SDK's, where poprun runs
        import popdist.poptorch  # type: ignore[import-not-found]
    except ImportError:
        return None
    return popdist if popdist.isPopdistEnvSet() else None
