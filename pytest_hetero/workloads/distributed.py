"""Distributed set-up from the launcher's environment, and timed collectives.

The rank layout comes from whichever launcher started the process, checked
in this order: torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``), Slurm's srun
(``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``), Open MPI's mpirun
(``OMPI_COMM_WORLD_*``) and MPICH/Intel MPI (``PMI_RANK``/``PMI_SIZE``). One
process and no such variables means no process group at all.

Gradients are averaged by :meth:`Collectives.all_reduce_gradients`, one
flat all-reduce per step after the backward pass, timed with the device
synchronised on both sides: ``comm_time_s`` is the communication time the
step really waited for (DDP would overlap it with the backward pass and hide
it). Backends: ``nccl`` (CUDA; on ROCm builds the same name drives RCCL),
``gloo`` (CPU), ``mpi`` (a torch built with MPI).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = [
    "BACKENDS",
    "Collectives",
    "DistEnv",
    "backend_label",
    "dist_env",
    "init_distributed",
    "resolve_backend",
]

BACKENDS = ("auto", "nccl", "rccl", "gloo", "mpi")
DEFAULT_PORT = 29500
_LAYOUTS = (
    ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"),
    ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("mpich", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: rank, world size, local rank, and who said so."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    source: str = "single"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))


def dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Read the rank layout from the first launcher whose variables are set."""
    env = os.environ if environ is None else environ
    for source, rank_key, size_key, local_key in _LAYOUTS:
        if rank_key in env and size_key in env:
            world_size = int(env[size_key])
            local_size = _local_world_size(env, world_size)
            return DistEnv(int(env[rank_key]), world_size, int(env.get(local_key, "0")), local_size, source)
    return DistEnv()


def _local_world_size(env: Mapping[str, str], world_size: int) -> int:
    for key in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"):
        value = env.get(key, "")
        if value.isdigit():  # SLURM_NTASKS_PER_NODE can read "4(x2)": then unknown
            return int(value)
    return world_size


def first_slurm_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``gpu[003-004,007],x`` -> ``gpu003``."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if match is None:
        raise ValueError(f"cannot read a host from the Slurm node list {nodelist!r}")
    prefix, ranges = match.group(1), match.group(2)
    return prefix + ranges.split(",")[0].split("-")[0] if ranges else prefix


def rendezvous_env(env: Mapping[str, str], source: str) -> dict[str, str]:
    """MASTER_ADDR/MASTER_PORT for ``env://``; torchrun sets them itself."""
    extra: dict[str, str] = {}
    if "MASTER_ADDR" not in env:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
        extra["MASTER_ADDR"] = first_slurm_host(nodelist) if source == "slurm" and nodelist else "127.0.0.1"
    if "MASTER_PORT" not in env:
        job_id = env.get("SLURM_JOB_ID", "0")
        extra["MASTER_PORT"] = str(DEFAULT_PORT + int(job_id) % 1000 if job_id.isdigit() else DEFAULT_PORT)
    return extra


def resolve_backend(requested: str, device: torch.device) -> str:
    """The torch backend name for ``requested`` (``auto``: nccl on GPUs, gloo on CPUs)."""
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if requested == "rccl":
        if torch.version.hip is None:
            raise ValueError("dist_backend 'rccl' needs a ROCm build of torch; this one is CUDA/CPU (use 'nccl')")
        return "nccl"  # torch's ROCm builds drive RCCL through the nccl backend
    if requested == "mpi" and not dist.is_mpi_available():
        raise ValueError("dist_backend 'mpi': this torch was built without MPI; use 'gloo' or 'nccl'")
    return requested


def backend_label(backend: str) -> str:
    """``nccl`` reads ``rccl`` on ROCm builds, as the library actually used."""
    return "rccl" if backend == "nccl" and torch.version.hip is not None else backend


def init_distributed(env: DistEnv, requested: str, device: torch.device) -> Collectives:
    """Create the process group when there is more than one process."""
    if not env.distributed:
        return Collectives(device, None)
    backend = resolve_backend(requested, device)
    os.environ.update({**rendezvous_env(os.environ, env.source), "RANK": str(env.rank)})
    os.environ["WORLD_SIZE"] = str(env.world_size)
    dist.init_process_group(backend, init_method="env://", rank=env.rank, world_size=env.world_size)
    return Collectives(device, backend)


@dataclass
class Collectives:
    """Collectives that add their time to ``comm_time_s``; no-ops on one process."""

    device: torch.device
    backend: str | None
    comm_time_s: float = 0.0
    sync: Callable[[], None] = field(default=lambda: None)

    @property
    def active(self) -> bool:
        return self.backend is not None

    def all_reduce_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients over all ranks with one flat all-reduce."""
        if not self.active:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self._timed_all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def sum_floats(self, values: list[float]) -> list[float]:
        """Sum each value over the ranks (identity on one process); not timed."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def shutdown(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def _timed_all_reduce(self, tensor: torch.Tensor) -> None:
        self.sync()  # the backward pass must finish first, or its time counts as communication
        started_s = time.perf_counter()
        dist.all_reduce(tensor)
        self.sync()
        self.comm_time_s += time.perf_counter() - started_s
