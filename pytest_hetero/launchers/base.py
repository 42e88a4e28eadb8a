"""The launcher contract: *how* the workload's processes start inside an allocation.

A launcher turns a :class:`~pytest_hetero.workload.Workload` into an argv, given
the platform and the :class:`LaunchContext` its backend supplies (nodes, ranks
per node, the interpreter, and how to reach every node and meet at a
rendezvous). It never asks which backend it runs under: a new backend that
supplies a context works with every launcher.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pytest_hetero.config.models import Platform
from pytest_hetero.workload import Workload

__all__ = ["LaunchContext", "Launcher", "Rendezvous", "interpreter_for", "program_argv"]


@dataclass(frozen=True)
class Rendezvous:
    """How a multi-node allocation reaches each node, and where its ranks meet.

    ``nodes``, ``job_id`` and ``host`` are shell text, expanded on each node inside
    double quotes (``$SLURM_JOB_ID``, ``$(scontrol show hostnames ... | head -n 1)``),
    because a batch scheduler names the nodes only once the job runs.
    """

    #: argv prefix that runs a command once on every node (``srun --ntasks-per-node=1``);
    #: empty when the backend itself starts the command on every node (one Pod per node).
    per_node: tuple[str, ...]
    nodes: str
    job_id: str
    host: str


@dataclass(frozen=True)
class LaunchContext:
    """What the backend's allocation offers the launcher (see ``Backend.launch_context``)."""

    nodes: int = 1
    #: Processes a per-accelerator launcher starts on each node (at least 1).
    ranks_per_node: int = 1
    #: The interpreter on the compute nodes when the platform names none.
    python: str = "python3"
    #: None: the backend cannot fan a command out over several nodes.
    rendezvous: Rendezvous | None = None


def interpreter_for(platform: Platform, context: LaunchContext) -> str:
    """The Python that starts workloads: explicit ``python``, a venv, or the backend's default."""
    env = platform.environment
    if env.python:
        return env.python
    if env.venv:
        return str(Path(env.venv) / "bin" / "python")
    return context.python


def program_argv(workload: Workload, python: str) -> list[str]:
    """The workload's own argv, without any launcher prefix."""
    if workload.module:
        return [python, "-m", workload.module, "--config-json", workload.config_json]
    command = list(workload.command)
    if command[0] in ("python", "python3"):  # "python" means the platform's interpreter
        return [python, *command[1:]]
    return [python, *command] if command[0].endswith(".py") else command


class Launcher(ABC):
    """How the workload starts; one instance per platform. Register subclasses by name."""

    name: ClassVar[str]
    #: JSON Schema of ``launcher.options`` in platforms.yaml.
    options_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    #: The launcher starts one rank per task of the allocation (srun, mpirun), so a batch
    #: backend should allocate one task per accelerator rather than one per node.
    one_task_per_rank: ClassVar[bool] = False

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.options = platform.launcher.options

    def problems(self) -> list[str]:
        """What is wrong with ``launcher.options`` on this platform, found when the catalogue loads (none)."""
        return []

    def allocation(self) -> LaunchContext:
        """The context a backend gives this platform's allocation (nodes, one rank per accelerator)."""
        platform = self.platform
        return LaunchContext(nodes=platform.resources.nodes, ranks_per_node=max(platform.accelerators_per_node, 1))

    @abstractmethod
    def command(self, workload: Workload, context: LaunchContext) -> list[str]:
        """The argv that starts ``workload`` on this platform, in the backend's ``context``."""
