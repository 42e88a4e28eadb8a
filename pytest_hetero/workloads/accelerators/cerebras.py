"""Cerebras systems (``cerebras``) through cerebras.pytorch.

cerebras.pytorch is imported when the adapter is created, never at module
import, so this module loads everywhere; where it is missing,
:class:`~pytest_hetero.workloads.accelerators.base.MissingSDKError` names the
package. The workload's learning-rate schedule, written with torch operations
on a step tensor, becomes a traced ``LambdaLR``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pytest_hetero.workloads.accelerators.base import (
    Adapter,
    AdapterSettings,
    Batch,
    InferFn,
    LrFactor,
    OptimizerSpec,
    ScoreFn,
    Trainer,
    require_sdk,
)
from pytest_hetero.workloads.distributed import DistEnv

__all__ = ["CerebrasAdapter", "CerebrasTrainer"]


class CerebrasAdapter(Adapter):
    """``cstorch.backend`` + ``compile`` + a traced step fed by a ``DataExecutor``.

    ``cerebras_backend`` "CSX" needs a Cerebras appliance: cerebras.pytorch
    reads its management address from the user node's csconfig file (put there
    by Cerebras' user-node installer). "CPU" runs the same traced program on
    the host and needs no hardware.
    Mixed precision: bf16 and fp16 set ``cstorch.amp``'s half dtype.
    """

    def __init__(self, settings: AdapterSettings, env: DistEnv) -> None:
        super().__init__(settings, env)
        self.cstorch: Any = require_sdk("cerebras.pytorch", "cerebras")
        self.backend = self.cstorch.backend(settings.cerebras_backend)
        if settings.precision != "fp32":
            self.cstorch.amp.set_half_dtype({"bf16": "bfloat16", "fp16": "float16"}[settings.precision])

    @property
    def devices(self) -> int:
        return 1  # one wafer-scale engine per run here

    def samples_per_step(self, batch_size: int) -> int:
        return batch_size

    def trainer(self, model: nn.Module, loss_fn: nn.Module, optimizer: OptimizerSpec, lr_factor: LrFactor) -> Trainer:
        return CerebrasTrainer(model, loss_fn, optimizer, lr_factor, self)

    def loader(self, dataset: Dataset[Any], batch_size: int, train: bool) -> Iterable[Batch]:
        def input_fn() -> DataLoader[Any]:
            generator = torch.Generator().manual_seed(self.settings.seed)
            return DataLoader(dataset, batch_size, shuffle=train, drop_last=True, generator=generator)  # static shapes

        return _ExecutorBatches(self.cstorch, input_fn, len(dataset) // batch_size)  # type: ignore[arg-type]

    def source(self, batches: Iterable[Batch], steps: int) -> Iterable[Batch]:
        """Feed host-made batches (synthetic data) through a DataExecutor."""
        return _ExecutorBatches(self.cstorch, lambda: batches, steps)

    def platform_name(self) -> str:
        return f"1xCerebras-{self.settings.cerebras_backend}"


class _ExecutorBatches:
    """Each iteration opens a ``DataExecutor`` for ``steps`` steps."""

    def __init__(self, cstorch: Any, input_fn: Callable[[], Iterable[Batch]], steps: int) -> None:
        self._cstorch = cstorch
        self._input_fn = input_fn
        self._steps = steps

    def __len__(self) -> int:
        return self._steps

    def limited(self, steps: int) -> _ExecutorBatches:
        """The same data for at most ``steps`` steps."""
        return _ExecutorBatches(self._cstorch, self._input_fn, min(steps, self._steps))

    def __iter__(self) -> Iterator[Batch]:
        loader = self._cstorch.utils.data.DataLoader(self._input_fn)
        executor = self._cstorch.utils.data.DataExecutor(loader, num_steps=self._steps)
        yield from executor


class CerebrasTrainer(Trainer):
    """The model compiled for the backend; losses and outputs come back in step closures."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: OptimizerSpec,
        lr_factor: LrFactor,
        adapter: CerebrasAdapter,
    ) -> None:
        cstorch = adapter.cstorch
        self.model = model
        self.compiled = cstorch.compile(model, adapter.backend)
        self.optimizer = optimizer.build(model.parameters(), namespace=cstorch.optim)
        self.scheduler = _traced_schedule(cstorch, lr_factor)(self.optimizer, optimizer.lr)
        self.last_loss = torch.tensor(float("nan"))  # filled in place by a step closure
        self._train_step = cstorch.trace(self._train_fn(loss_fn))
        self._eval_step = cstorch.trace(torch.no_grad()(self._eval_fn))
        self._record_loss = cstorch.step_closure(self._keep_loss)
        self._cstorch = cstorch

    def _train_fn(self, loss_fn: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def train_step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            loss: torch.Tensor = loss_fn(self.compiled(inputs), targets)
            torch.autograd.backward(loss)
            self.optimizer.step()
            self.optimizer.zero_grad()
            self.scheduler.step()
            return loss

        return train_step

    def _eval_fn(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs: torch.Tensor = self.compiled(inputs)
        return outputs

    def _keep_loss(self, loss: torch.Tensor) -> None:
        self.last_loss.copy_(loss.detach().float())

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.compiled.train()
        self._record_loss(self._train_step(inputs, targets))
        return self.last_loss

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("cerebras outputs arrive in step closures: use evaluate()")

    def evaluate(self, batches: Iterable[Batch], score: ScoreFn, infer: InferFn | None) -> tuple[float, float]:
        """Traced eval steps; the score is computed in a step closure as each step completes."""
        if infer is not None:
            raise ValueError("sliding-window evaluation is not supported on the cerebras adapter")
        sums = [0.0, 0.0]

        def accumulate(outputs: torch.Tensor, targets: torch.Tensor) -> None:
            score_sum, score_count = score(outputs.float(), targets)
            sums[0], sums[1] = sums[0] + score_sum, sums[1] + score_count

        closure = self._cstorch.step_closure(accumulate)
        self.compiled.eval()
        for inputs, targets in batches:
            closure(self._eval_step(inputs), targets)
        return sums[0], sums[1]


def _traced_schedule(cstorch: Any, lr_factor: LrFactor) -> Any:
    """A cstorch LambdaLR whose factor is the workload's torch-op schedule."""

    class WorkloadLR(cstorch.optim.lr_scheduler.LambdaLR):  # type: ignore[misc]
        def set_value_lambda(self) -> list[Callable[[Any], Any]]:
            return [lr_factor]

    return WorkloadLR
