"""Launchers: *how* the workload's processes start inside an allocation.

A launcher turns a :class:`~pytest_hetero.workload.Workload` and a platform into
an argv. It is orthogonal to the backend: a torchrun workload runs in a local
process, a Slurm job or a Pod alike.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.workload import Workload

__all__ = [
    "Launcher",
    "MpirunLauncher",
    "PythonLauncher",
    "SlurmTorchrunLauncher",
    "SrunLauncher",
    "TorchrunLauncher",
    "get_launcher",
    "interpreter_for",
]


def interpreter_for(platform: Platform) -> str:
    """The Python that starts workloads: explicit ``python``, a venv, or this one."""
    env = platform.environment
    if env.python:
        return env.python
    if env.venv:
        return str(Path(env.venv) / "bin" / "python")
    if platform.backend.kind == "local" and not env.container_image:
        return sys.executable
    return "python3"


def program_argv(workload: Workload, python: str) -> list[str]:
    """The workload's own argv, without any launcher prefix."""
    if workload.module:
        return [python, "-m", workload.module, "--config-json", workload.config_json]
    command = list(workload.command)
    if command[0] in ("python", "python3"):  # "python" means the platform's interpreter
        return [python, *command[1:]]
    return [python, *command] if command[0].endswith(".py") else command


class Launcher(ABC):
    name: ClassVar[str]
    options_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.options = platform.launcher.options

    @abstractmethod
    def command(self, workload: Workload) -> list[str]:
        """The argv that starts ``workload`` on this platform."""


class PythonLauncher(Launcher):
    """One process: ``python -m module`` or the command as given."""

    name = "python"

    def command(self, workload: Workload) -> list[str]:
        return program_argv(workload, interpreter_for(self.platform))


class TorchrunLauncher(Launcher):
    """Single-node ``torchrun --standalone`` with one process per accelerator."""

    name = "torchrun"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "nproc_per_node": {"type": "integer", "minimum": 1},
            "extra_args": {"type": "array", "items": {"type": "string"}},
        },
    }

    def command(self, workload: Workload) -> list[str]:
        python = interpreter_for(self.platform)
        nproc = self.options.get("nproc_per_node") or max(self.platform.accelerators_per_node, 1)
        prefix = [python, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc-per-node={nproc}"]
        prefix += list(self.options.get("extra_args", []))
        program = program_argv(workload, python)
        # torchrun takes "-m module" or a script; the interpreter itself is its job.
        return prefix + (program[1:] if program[0] == python else ["--no-python", *program])


_EXTRA_ARGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


class SrunLauncher(Launcher):
    """``srun`` inside a Slurm allocation: one task per allocated task slot.

    The allocation's shape (nodes, tasks per node) is the backend's business;
    srun inherits it, so the same workload runs as 1 or 16 ranks.
    """

    name = "srun"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"extra_args": _EXTRA_ARGS},
    }

    def command(self, workload: Workload) -> list[str]:
        prefix = ["srun", "--kill-on-bad-exit=1", *self.options.get("extra_args", [])]
        return prefix + program_argv(workload, interpreter_for(self.platform))


class MpirunLauncher(Launcher):
    """``mpirun``; inside Slurm it reads the allocation, elsewhere give ``np``."""

    name = "mpirun"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"np": {"type": "integer", "minimum": 1}, "extra_args": _EXTRA_ARGS},
    }

    def command(self, workload: Workload) -> list[str]:
        count = self.options.get("np")
        prefix = ["mpirun", *(["-np", str(count)] if count else []), *self.options.get("extra_args", [])]
        return prefix + program_argv(workload, interpreter_for(self.platform))


# Runs in each node's task: the rendezvous host is the allocation's first node.
_SLURM_TORCHRUN = (
    'exec "$0" -m torch.distributed.run --nnodes="$SLURM_JOB_NUM_NODES" --rdzv-id="$SLURM_JOB_ID" '
    '--rdzv-backend=c10d --rdzv-endpoint="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):{port}" '
    '"$@"'
)


class SlurmTorchrunLauncher(TorchrunLauncher):
    """torchrun on one node as before; on several Slurm nodes, one torchrun per node.

    The rendezvous (c10d, on the allocation's first node) comes from the Slurm
    environment of each node's task, so nothing is known before the job starts.
    """

    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **TorchrunLauncher.options_schema["properties"],
            "rdzv_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        },
    }

    def command(self, workload: Workload) -> list[str]:
        if self.platform.resources.nodes == 1 or self.platform.backend.kind != "slurm":
            return super().command(workload)
        python = interpreter_for(self.platform)
        nproc = self.options.get("nproc_per_node") or max(self.platform.accelerators_per_node, 1)
        script = _SLURM_TORCHRUN.format(port=self.options.get("rdzv_port", 29500))
        srun = ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash", "-c", script, python]
        program = program_argv(workload, python)
        torchrun_args = [f"--nproc-per-node={nproc}", *self.options.get("extra_args", [])]
        return srun + torchrun_args + (program[1:] if program[0] == python else ["--no-python", *program])


_LAUNCHERS: dict[str, type[Launcher]] = {
    cls.name: cls for cls in (PythonLauncher, SlurmTorchrunLauncher, SrunLauncher, MpirunLauncher)
}


def get_launcher(platform: Platform) -> Launcher:
    kind = platform.launcher.kind
    try:
        cls = _LAUNCHERS[kind]
    except KeyError:
        raise ConfigError(
            f"platform {platform.name!r} ({platform.source}): launcher {kind!r} is not available in this "
            f"version of pytest-hetero (available: {', '.join(sorted(_LAUNCHERS))})"
        ) from None
    return cls(platform)


def launcher_option_schema(kind: str) -> dict[str, Any] | None:
    cls = _LAUNCHERS.get(kind)
    return cls.options_schema if cls else None
