"""Accelerator kinds: what a platform computes on, and what each backend must ask for.

One registry holds every kind the catalogue accepts as ``accelerator.kind``,
with what a scheduler needs to know of it: whether Slurm counts it as a GPU
(``--gpus-per-node``) and the Kubernetes extended resource a Pod requests.
The workload side chooses its adapter by the same names
(:data:`pytest_hetero.workloads.protocol.ACCELERATOR_KINDS`). A plugin adds a
kind with :func:`register_accelerator_kind` (from the ``pytest_hetero_register``
hook); the workload then needs an adapter for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_hetero.errors import ConfigError
from pytest_hetero.workloads.protocol import ACCELERATOR_KINDS

__all__ = [
    "AcceleratorKind",
    "accelerator_kind",
    "known_accelerator_kinds",
    "register_accelerator_kind",
    "unknown_accelerator_kind",
]


@dataclass(frozen=True)
class AcceleratorKind:
    name: str
    description: str = ""
    #: Slurm allocates it with ``--gpus-per-node`` (unless the platform gives ``gres``).
    slurm_gpu: bool = False
    #: The extended resource a Kubernetes Pod requests, one per accelerator.
    kubernetes_resource: str | None = None
    #: The workload compiles for it before it runs (minutes to an hour: CS-2, IPU), inside its process.
    compiles_ahead: bool = False


_KINDS: dict[str, AcceleratorKind] = {}


def register_accelerator_kind(kind: AcceleratorKind) -> None:
    """Register (or replace) an accelerator kind."""
    _KINDS[kind.name] = kind


def known_accelerator_kinds() -> list[str]:
    return sorted(_KINDS)


def accelerator_kind(name: str) -> AcceleratorKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigError(unknown_accelerator_kind(name)) from None


def unknown_accelerator_kind(name: object) -> str:
    return f"unknown accelerator kind {name!r}; known: {', '.join(known_accelerator_kinds())}"


_BUILTIN = {
    "cpu": AcceleratorKind("cpu", "host CPUs"),
    "nvidia-gpu": AcceleratorKind("nvidia-gpu", "NVIDIA GPUs (CUDA)", True, "nvidia.com/gpu"),
    "amd-gpu": AcceleratorKind("amd-gpu", "AMD GPUs (ROCm)", True, "amd.com/gpu"),
    "graphcore-ipu": AcceleratorKind("graphcore-ipu", "Graphcore IPUs (PopTorch)", False, "graphcore.ai/ipu", True),
    "cerebras": AcceleratorKind("cerebras", "Cerebras CS-2 systems (cerebras.pytorch)", compiles_ahead=True),
}
for _name in ACCELERATOR_KINDS:  # the workload side's list is the one list of built-in kinds
    register_accelerator_kind(_BUILTIN[_name])
