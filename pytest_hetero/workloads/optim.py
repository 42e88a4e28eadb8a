"""LARS and LAMB, the layer-wise adaptive optimisers of the MLPerf reference recipes, in plain torch.

torch ships neither. These follow the MLPerf reference implementations:

- **LARS** (ResNet-50, TF2 reference ``lars_optimizer.py``): per weight tensor
  a trust ratio ``eta·‖w‖ / (‖g‖ + wd·‖w‖ + eps)`` scales the learning rate of
  ``g + wd·w``, with heavy-ball momentum; biases and batch-norm parameters
  (1-D tensors) get plain momentum SGD without weight decay, as MLPerf's
  "LARS skips bias and batch norm" rule says.
- **LAMB** (DeepCAM, MLPerf HPC ``opt_name: LAMB``): Adam moments with bias
  correction and gradient averaging, the gradients first clipped to a global
  norm of ``max_grad_norm`` (1.0, the rules' value), decoupled weight decay in
  the update, and a per-tensor trust ratio ``‖w‖ / ‖update‖``.

Only the eager adapters (CPU, CUDA, ROCm) can build them; PopTorch and
Cerebras have their own LAMB and no LARS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["LAMB", "LARS", "OPTIMIZERS"]


def _trust(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    ok = (numerator > 0) & (denominator > 0)
    return torch.where(ok, numerator / torch.where(ok, denominator, torch.ones_like(denominator)), 1.0)


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling with momentum (MLPerf ResNet-50)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
        eps: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                lr = torch.as_tensor(group["lr"], device=param.device)
                if param.dim() > 1:  # weights: decay and trust ratio
                    w_norm, g_norm = param.norm(), grad.norm()
                    decay = group["weight_decay"]
                    trust = _trust(group["eta"] * w_norm, g_norm + decay * w_norm + group["eps"])
                    grad, lr = grad + decay * param, lr * trust
                velocity = self.state[param].setdefault("velocity", torch.zeros_like(param))
                velocity.mul_(group["momentum"]).add_(lr * grad)
                param.sub_(velocity)
        return loss


class LAMB(torch.optim.Optimizer):
    """Layer-wise adaptive moments (MLPerf HPC DeepCAM's LAMB)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
    ) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "max_grad_norm": max_grad_norm}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group["max_grad_norm"] > 0 and params:
                torch.nn.utils.clip_grad_norm_(params, group["max_grad_norm"])
            for param in params:
                self._update(param, param.grad, group)
        return loss

    def _update(self, param: torch.Tensor, grad: Any, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[param]
        step = state["step"] = state.get("step", 0) + 1
        mean = state.setdefault("exp_avg", torch.zeros_like(param))
        square = state.setdefault("exp_avg_sq", torch.zeros_like(param))
        mean.mul_(beta1).add_(grad, alpha=1 - beta1)
        square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        update = (mean / (1 - beta1**step)) / ((square / (1 - beta2**step)).sqrt() + group["eps"])
        update = update + group["weight_decay"] * param
        param.sub_(group["lr"] * _trust(param.norm(), update.norm()) * update)


#: Optimisers by the name an OptimizerSpec carries, for adapters whose SDK has none.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"lars": LARS, "lamb": LAMB}
