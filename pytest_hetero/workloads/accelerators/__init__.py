"""Accelerator adapters: the only code that differs between platforms.

Every workload builds the same ``nn.Module``, loss and optimiser
description; the adapter places them on the hardware and runs a step:

=================  ===========================================================
kind               what the adapter does (module)
=================  ===========================================================
``cpu``            eager torch; autocast bf16 if asked; gloo (or MPI) collectives
                   (:mod:`.eager`)
``nvidia-gpu``     eager torch on ``cuda:LOCAL_RANK``; AMP bf16/fp16 (GradScaler
                   for fp16), channels-last, cuDNN autotune; NCCL (:mod:`.eager`)
``amd-gpu``        the same on a ROCm build of torch (HIP behind ``torch.cuda``); RCCL
``graphcore-ipu``  PopTorch: ``trainingModel`` around model + loss, replication,
                   device iterations, ``poptorch.DataLoader``; fp16 by ``half()``
                   (:mod:`.poptorch`)
``cerebras``       cerebras.pytorch: ``backend`` (CSX or CPU), ``compile``, its
                   optimiser, a ``@trace``-d step, ``DataExecutor`` (:mod:`.cerebras`)
=================  ===========================================================

:data:`ADAPTERS` names each kind's class as ``"module:Class"``; only the
chosen one is imported, and a vendor SDK only when its adapter is created.
The kinds are :data:`pytest_hetero.workloads.protocol.ACCELERATOR_KINDS`.
A missing SDK raises :class:`MissingSDKError` naming the package to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from pytest_hetero.workloads.accelerators.base import (
    KINDS,
    PRECISIONS,
    Adapter,
    AdapterSettings,
    LrFactor,
    MissingSDKError,
    OptimizerSpec,
    ScoreFn,
    Trainer,
    require_sdk,
)
from pytest_hetero.workloads.distributed import DistEnv

__all__ = [
    "ADAPTERS",
    "KINDS",
    "PRECISIONS",
    "Adapter",
    "AdapterSettings",
    "LrFactor",
    "MissingSDKError",
    "OptimizerSpec",
    "ScoreFn",
    "Trainer",
    "adapter_class",
    "make_adapter",
    "require_sdk",
]

_EAGER = "pytest_hetero.workloads.accelerators.eager:EagerAdapter"
#: Accelerator kind -> ``"module:Class"`` of its adapter, imported on first use.
ADAPTERS: Mapping[str, str] = MappingProxyType(
    {
        "cpu": _EAGER,
        "nvidia-gpu": _EAGER,
        "amd-gpu": _EAGER,
        "graphcore-ipu": "pytest_hetero.workloads.accelerators.poptorch:PopTorchAdapter",
        "cerebras": "pytest_hetero.workloads.accelerators.cerebras:CerebrasAdapter",
    }
)


def adapter_class(kind: str) -> type[Adapter]:
    """The adapter class for ``kind``, importing its module; ValueError for an unknown kind."""
    target = ADAPTERS.get(kind)
    if target is None:
        raise ValueError(f"unknown accelerator kind {kind!r}; known: {', '.join(KINDS)}")
    module, _, name = target.partition(":")
    found: type[Adapter] = getattr(importlib.import_module(module), name)
    return found


def make_adapter(settings: AdapterSettings, env: DistEnv) -> Adapter:
    """The adapter for ``settings.kind``; vendor SDKs are imported only when chosen."""
    return adapter_class(settings.kind)(settings, env)
