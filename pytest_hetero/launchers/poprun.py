"""Graphcore's ``poprun``: instances (host processes) and replicas over an IPU partition.

``poprun`` starts ``num_instances`` copies of the workload (through its own
MPI), each driving ``num_replicas / num_instances`` replicas of the model, each
replica on ``ipus_per_replica`` IPUs of the V-IPU partition it creates or
reuses (``vipu_partition`` on ``vipu_server_host``). PopDist then tells each
instance its share. The checks follow Graphcore's rules: replicas divide
evenly among instances, a partition holds a power of two IPUs, and the
replicas fit the IPUs the platform allocates. Only instance 0's output is kept
by default (``only_output_from_instance``), so the job's log holds one
metrics record. On several hosts (``hosts``), poprun's MPI must forward the
job's environment (``mpi_global_args: "-x PYTHONPATH -x HETERO_WORKLOAD_CONFIG ..."``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers.base import LaunchContext, Launcher, interpreter_for, program_argv
from pytest_hetero.workload import Workload

__all__ = ["PoprunLauncher"]

_COUNT = {"type": "integer", "minimum": 1}
_TEXT = {"type": "string", "minLength": 1}


class PoprunLauncher(Launcher):
    """``poprun --num-instances=I --num-replicas=R --ipus-per-replica=K [...] python -m workload``."""

    name = "poprun"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "num_instances": _COUNT,
            "num_replicas": _COUNT,
            "ipus_per_replica": _COUNT,
            "vipu_partition": _TEXT,
            "vipu_server_host": _TEXT,
            "update_partition": {"type": "boolean"},
            "hosts": {"type": "array", "items": _TEXT, "minItems": 1},
            "executable_cache_path": _TEXT,
            "numa_aware": {"type": "boolean"},
            "only_output_from_instance": {"type": "integer", "minimum": 0},
            "mpi_global_args": _TEXT,
            "extra_args": {"type": "array", "items": {"type": "string"}},
        },
    }

    def command(self, workload: Workload, context: LaunchContext) -> list[str]:
        instances, replicas, per_replica = self._shape(context)
        argv = ["poprun", f"--num-instances={instances}", f"--num-replicas={replicas}"]
        argv.append(f"--ipus-per-replica={per_replica}")
        argv += self._placement()
        if instances > 1:
            argv.append(f"--only-output-from-instance={self.options.get('only_output_from_instance', 0)}")
        argv += list(self.options.get("extra_args", []))
        return argv + program_argv(workload, interpreter_for(self.platform, context))

    def problems(self) -> list[str]:
        """Graphcore's rules against the platform's own allocation: a catalogue error, before any job."""
        problems = self._checked_shape(self.allocation())[1]
        return ["poprun: " + "; ".join(problems)] if problems else []

    def _shape(self, context: LaunchContext) -> tuple[int, int, int]:
        """(instances, replicas, IPUs per replica), checked against Graphcore's rules and the allocation."""
        shape, problems = self._checked_shape(context)
        if problems:
            raise ConfigError(f"platform {self.platform.name!r}: poprun: " + "; ".join(problems))
        return shape

    def _checked_shape(self, context: LaunchContext) -> tuple[tuple[int, int, int], list[str]]:
        ipus = max(context.nodes * context.ranks_per_node, 1)
        per_replica = int(self.options.get("ipus_per_replica", 1))
        replicas = int(self.options.get("num_replicas", max(ipus // per_replica, 1)))
        instances = int(self.options.get("num_instances", 1))
        used = replicas * per_replica
        problems = []
        if replicas % instances:
            problems.append(f"num_replicas {replicas} is not a multiple of num_instances {instances}")
        if used & (used - 1):
            problems.append(f"the partition would hold {used} IPUs, not a power of two (1, 2, 4, ... 64)")
        if used > ipus:
            problems.append(f"{replicas} replicas x {per_replica} IPUs = {used} IPUs, more than the {ipus} allocated")
        if context.nodes > 1 and len(self.options.get("hosts", [])) != context.nodes:
            problems.append(f"{context.nodes} nodes need launcher.options.hosts naming each of them")
        return (instances, replicas, per_replica), problems

    def _placement(self) -> list[str]:
        options = self.options
        flags = [
            ("--host", ",".join(options.get("hosts", []))),
            ("--vipu-server-host", options.get("vipu_server_host")),
            ("--vipu-partition", options.get("vipu_partition")),
            ("--executable-cache-path", options.get("executable_cache_path")),
            ("--mpi-global-args", options.get("mpi_global_args")),
        ]
        argv = [f"{flag}={value}" for flag, value in flags if value]
        if "update_partition" in options:
            argv.append(f"--update-partition={'yes' if options['update_partition'] else 'no'}")
        if options.get("numa_aware"):
            argv.append("--numa-aware=yes")
        return argv
