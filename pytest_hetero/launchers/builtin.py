"""The built-in launchers: python, torchrun, srun, mpirun.

Each turns a workload into an argv from the platform's options and the
backend's :class:`~pytest_hetero.launchers.base.LaunchContext`; none of them
knows which backend runs it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers.base import LaunchContext, Launcher, Rendezvous, interpreter_for, program_argv
from pytest_hetero.workload import Workload

__all__ = ["MpirunLauncher", "PythonLauncher", "SrunLauncher", "TorchrunLauncher"]

_EXTRA_ARGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


class PythonLauncher(Launcher):
    """One process: ``python -m module`` or the command as given."""

    name = "python"

    def command(self, workload: Workload, context: LaunchContext) -> list[str]:
        return program_argv(workload, interpreter_for(self.platform, context))


class TorchrunLauncher(Launcher):
    """torchrun with one process per accelerator: ``--standalone`` on one node; on several,
    one torchrun per node (through the backend's rendezvous) meeting at a c10d rendezvous.
    """

    name = "torchrun"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "nproc_per_node": {"type": "integer", "minimum": 1},
            "extra_args": _EXTRA_ARGS,
            "rdzv_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        },
    }

    def command(self, workload: Workload, context: LaunchContext) -> list[str]:
        python = interpreter_for(self.platform, context)
        nproc = self.options.get("nproc_per_node") or max(context.ranks_per_node, 1)
        per_node_args = [f"--nproc-per-node={nproc}", *self.options.get("extra_args", [])]
        program = program_argv(workload, python)
        # torchrun takes "-m module" or a script; the interpreter itself is its job.
        program_args = program[1:] if program[0] == python else ["--no-python", *program]
        if context.nodes == 1:
            prefix = [python, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
            return prefix + per_node_args + program_args
        return self._multi_node(context, python) + per_node_args + program_args

    def _multi_node(self, context: LaunchContext, python: str) -> list[str]:
        rdzv = context.rendezvous
        if rdzv is None:
            raise ConfigError(
                f"platform {self.platform.name!r}: torchrun on {context.nodes} nodes needs a backend that "
                f"runs a command on every node (backend {self.platform.backend.kind!r} offers none); "
                "use nodes: 1 or a backend with multi-node support"
            )
        script = _torchrun_script(rdzv, int(self.options.get("rdzv_port", 29500)))
        return [*rdzv.per_node, "bash", "-c", script, python]


def _torchrun_script(rdzv: Rendezvous, port: int) -> str:
    """Runs on each node: the node's own torchrun, meeting the others at ``host:port``."""
    return (
        f'exec "$0" -m torch.distributed.run --nnodes="{rdzv.nodes}" --rdzv-id="{rdzv.job_id}" '
        f'--rdzv-backend=c10d --rdzv-endpoint="{rdzv.host}:{port}" "$@"'
    )


class SrunLauncher(Launcher):
    """``srun`` inside a Slurm allocation: one task per allocated task slot.

    The allocation's shape (nodes, tasks per node) is the backend's business;
    srun inherits it, so the same workload runs as 1 or 16 ranks.
    """

    name = "srun"
    one_task_per_rank = True
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"extra_args": _EXTRA_ARGS},
    }

    def command(self, workload: Workload, context: LaunchContext) -> list[str]:
        prefix = ["srun", "--kill-on-bad-exit=1", *self.options.get("extra_args", [])]
        return prefix + program_argv(workload, interpreter_for(self.platform, context))


class MpirunLauncher(Launcher):
    """``mpirun``; inside an allocation it reads the allocation, elsewhere give ``np``."""

    name = "mpirun"
    one_task_per_rank = True
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"np": {"type": "integer", "minimum": 1}, "extra_args": _EXTRA_ARGS},
    }

    def command(self, workload: Workload, context: LaunchContext) -> list[str]:
        count = self.options.get("np")
        prefix = ["mpirun", *(["-np", str(count)] if count else []), *self.options.get("extra_args", [])]
        return prefix + program_argv(workload, interpreter_for(self.platform, context))
