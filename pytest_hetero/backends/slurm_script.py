"""Render a benchmark job as a Slurm batch script: pure, no Slurm needed.

:func:`sbatch_parameters` translates the platform's generic resources and its
``backend.options`` (typed as :class:`SlurmOptions`) into submitit's Slurm
parameters (one table, below);
:func:`render_batch_script` hands them to submitit's sbatch renderer. The same
text is kept in the job's work directory, submitted, and printed by
``--hetero-dry-run``.

==========================================  ==================================
platforms.yaml                              batch script
==========================================  ==================================
resources.nodes                             ``--nodes``
resources.time_limit_min / marker timeout   ``--time`` (whole minutes, rounded up)
resources.cpus_per_task                     ``--cpus-per-task``
resources.mem_gb                            ``--mem``
accelerators per node (NVIDIA/AMD GPUs)     ``--gpus-per-node`` unless ``gres`` is given
options.gres (``gpu:4``, ``cs:1``)          ``--gres``
options.tasks_per_node                      ``--ntasks-per-node`` (default: accelerators
                                            per node for launchers that start one rank
                                            per task (srun, mpirun), else 1)
options.partition/account/qos/constraint/   the flag of the same name
reservation/exclusive/gpus_per_node/signal
options.sbatch_extra (``["--licenses=x"]``) one ``#SBATCH`` line each
environment.env + the job's own variables   ``export`` lines; secrets (marked, secret-looking
                                            names, values holding a password) are passed
                                            through sbatch's environment instead
environment.setup                           shell lines before the workload (a line holding
                                            a secret: ``eval "$HETERO_SECRET_SETUP_<i>"``)
==========================================  ==================================

Always: ``--no-requeue`` (a benchmark is not silently rerun after a node
failure), ``--chdir`` and the logs in the job's work directory, which must be
on a filesystem the compute nodes share.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from submitit.slurm.slurm import _make_sbatch_string

from pytest_hetero.accelerators import accelerator_kind
from pytest_hetero.backends.base import BackendOptions, JobSpec, check_options
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers import get_launcher_class
from pytest_hetero.redact import is_secret, scrub

__all__ = [
    "EXIT_FILE",
    "OPTIONS_SCHEMA",
    "SlurmOptions",
    "exported_env",
    "read_exit",
    "render_batch_script",
    "sbatch_parameters",
    "time_limit_min",
]

_STRING = {"type": "string", "minLength": 1}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "partition": _STRING,
        "account": _STRING,
        "qos": _STRING,
        "constraint": _STRING,
        "reservation": _STRING,
        "exclusive": {"type": "boolean"},
        "gres": {"type": "string", "pattern": r"^[A-Za-z0-9_.:,/-]+$"},
        "gpus_per_node": {"type": "integer", "minimum": 0},
        "tasks_per_node": {"type": "integer", "minimum": 1},
        "signal": {"type": "string", "pattern": r"^(B:)?[A-Z0-9]+(@[0-9]+)?$"},
        "sbatch_extra": {"type": "array", "items": {"type": "string", "pattern": r"^--[a-z][a-z0-9-]*(=.+)?$"}},
        "command_timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "queue_timeout_min": {"type": "number", "exclusiveMinimum": 0},
        "unreachable_grace_s": {"type": "number", "minimum": 0},
    },
}


@dataclass(frozen=True)
class SlurmOptions(BackendOptions):
    """``backend.options`` of the slurm backend (:data:`OPTIONS_SCHEMA`), with defaults."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    reservation: str | None = None
    exclusive: bool = False
    gres: str | None = None
    #: None: from the accelerators per node, unless ``gres`` is given; 0: none.
    gpus_per_node: int | None = None
    #: None: one per accelerator for launchers that start one rank per task, else 1.
    tasks_per_node: int | None = None
    signal: str | None = None
    sbatch_extra: tuple[str, ...] = ()
    #: Bound on every Slurm command (sbatch, sacct, scancel).
    command_timeout_s: float = 30.0
    #: How long a job may wait in the queue before it is cancelled.
    queue_timeout_min: float = 1440.0
    #: How long sacct may fail before the job is failed.
    unreachable_grace_s: float = 120.0

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SlurmOptions:
        """``raw`` checked against :data:`OPTIONS_SCHEMA` and typed; :class:`ConfigError` if invalid.

        A control character (a newline above all) would end an ``#SBATCH`` line and start another.
        """
        problems = list(_control_characters(check_options(OPTIONS_SCHEMA, raw)))
        if problems:
            raise ConfigError("; ".join(problems))
        return cls.from_mapping(raw)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _control_characters(raw: Mapping[str, Any]) -> Iterator[str]:
    for key, value in raw.items():
        values = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in values:
            found = _CONTROL.search(item) if isinstance(item, str) else None
            if found:
                where = f"backend.options.{key}" + ("" if index is None else f"[{index}]")
                yield f"{where}: {item!r} holds the control character {found.group()!r} (it would end the #SBATCH line)"


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# submitit always asks for USR2 90 s before the limit, for its own checkpointing (a
# benchmark does not handle it and would die early: at once under a 1-minute limit),
# and for wckey "submitit" (rejected where wckeys are enforced). Either stays if asked for.
_SUBMITIT_DEFAULTS = {
    "signal": re.compile(r"^#SBATCH --signal=USR2@90\n", re.MULTILINE),
    "wckey": re.compile(r"^#SBATCH --wckey=submitit\n", re.MULTILINE),
}


def sbatch_parameters(spec: JobSpec, options: SlurmOptions | None = None) -> dict[str, Any]:
    """submitit ``SlurmExecutor`` parameters for ``spec`` (see the table above).

    ``options`` are the platform's ``backend.options``, typed (read from ``spec.platform`` if not given).
    """
    platform = spec.platform
    options = SlurmOptions.parse(platform.backend.options) if options is None else options
    tasks_per_node = options.tasks_per_node
    params: dict[str, Any] = {
        "job_name": spec.name,
        "time": time_limit_min(spec.timeout_s),
        "nodes": platform.resources.nodes,
        "ntasks_per_node": _default_tasks_per_node(platform) if tasks_per_node is None else tasks_per_node,
        "cpus_per_task": platform.resources.cpus_per_task,
        "gpus_per_node": _gpus_per_node(platform, options),
        "mem": _mem(platform.resources.mem_gb),
        "exclusive": True if options.exclusive else None,
        "use_srun": False,  # the launcher decides how processes start
        "partition": options.partition,
        "account": options.account,
        "qos": options.qos,
        "constraint": options.constraint,
        "gres": options.gres,
        "additional_parameters": _additional(spec, options),
    }
    return {key: value for key, value in params.items() if value is not None}


def time_limit_min(timeout_s: float) -> int:
    """Slurm counts time limits in whole minutes."""
    return max(1, math.ceil(timeout_s / 60.0))


def _default_tasks_per_node(platform: Platform) -> int:
    if get_launcher_class(platform.launcher.kind).one_task_per_rank and platform.accelerator.kind != "cpu":
        return max(platform.accelerators_per_node, 1)  # one rank per accelerator
    return 1


def _gpus_per_node(platform: Platform, options: SlurmOptions) -> int | None:
    if options.gpus_per_node is not None:
        return options.gpus_per_node or None
    if options.gres is not None or not accelerator_kind(platform.accelerator.kind).slurm_gpu:
        return None
    return platform.accelerators_per_node or None


def _mem(mem_gb: float | None) -> str | None:
    if mem_gb is None:
        return None
    return f"{int(mem_gb)}GB" if mem_gb == int(mem_gb) else f"{math.ceil(mem_gb * 1024)}MB"


def _additional(spec: JobSpec, options: SlurmOptions) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "output": str(spec.stdout_path),
        "error": str(spec.stderr_path),
        "chdir": str(spec.workdir),
        "no_requeue": True,
    }
    if options.reservation is not None:
        extra["reservation"] = options.reservation
    if options.signal is not None:
        extra["signal"] = options.signal
    extra.update(_parse_flag(line) for line in options.sbatch_extra)
    return extra


def _parse_flag(line: str) -> tuple[str, Any]:
    name, has_value, value = line.removeprefix("--").partition("=")
    return name, value if has_value else True


def _hidden(spec: JobSpec, name: str, value: str) -> bool:
    """Kept out of the script: marked secret, secret-looking by name, or holding a secret (URL password, ...)."""
    return name in spec.platform.environment.secrets or is_secret(name, value) or scrub(value) != value


def exported_env(spec: JobSpec) -> tuple[dict[str, str], dict[str, str]]:
    """(written into the script, passed through sbatch's environment).

    The second part also carries the command-line arguments and setup lines that hold a secret
    (``HETERO_SECRET_ARG_<i>``, ``HETERO_SECRET_SETUP_<i>``): the script refers to them by name.
    """
    merged = {"PYTHONUNBUFFERED": "1", **spec.platform.environment.env, **spec.env}
    bad = sorted(name for name in merged if not _ENV_NAME.match(name))
    if bad:
        raise ConfigError(f"platform {spec.platform.name!r}: invalid environment variable name(s): {bad}")
    public = {k: v for k, v in merged.items() if not _hidden(spec, k, v)}
    hidden = {k: v for k, v in merged.items() if k not in public}
    hidden.update((f"{_ARG_VAR}{i}", arg) for i, arg in enumerate(spec.argv) if scrub(arg) != arg)
    setup = spec.platform.environment.setup
    hidden.update((f"{_SETUP_VAR}{i}", line) for i, line in enumerate(setup) if scrub(line) != line)
    return public, hidden


_ARG_VAR = "HETERO_SECRET_ARG_"
_SETUP_VAR = "HETERO_SECRET_SETUP_"


def _command(spec: JobSpec) -> str:
    """The workload's command line; an argument holding a secret is read from the environment instead."""
    return " ".join(f'"${_ARG_VAR}{i}"' if scrub(arg) != arg else shlex.quote(arg) for i, arg in enumerate(spec.argv))


#: Written by the batch script when its command has succeeded: "0 <start> <end>" (epoch seconds), so the
#: end of a job is seen as soon as its work directory shows it, before accounting (sacct) does. A failed
#: command ends the script first (``set -e``), as does a signal (time limit, scancel): no file, sacct says how.
EXIT_FILE = "exit_status"
_START_LINE = "HETERO_T0=$(date +%s.%N)"


def _done_line(spec: JobSpec) -> str:
    final, partial = (shlex.quote(str(spec.workdir / name)) for name in (EXIT_FILE, f".{EXIT_FILE}.tmp"))
    return f'echo "0 $HETERO_T0 $(date +%s.%N)" > {partial} && mv -f {partial} {final}'


def read_exit(workdir: Path) -> tuple[int, float] | None:
    """(exit status, seconds run) of a batch script that has exited; None before, or unreadable."""
    try:
        code, start, end = (workdir / EXIT_FILE).read_text().split()
        return int(code), max(0.0, float(end) - float(start))
    except (OSError, ValueError):
        return None


def _setup_lines(spec: JobSpec) -> list[str]:
    public, hidden = exported_env(spec)
    lines = ["set -e", _START_LINE]
    if hidden:
        lines.append(f"# passed through sbatch's environment, not written here: {' '.join(sorted(hidden))}")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(public.items())]
    setup = spec.platform.environment.setup
    lines += [f'eval "${_SETUP_VAR}{i}"' if scrub(line) != line else line for i, line in enumerate(setup)]
    return lines + [f"unset {name}" for name in sorted(hidden) if name.startswith(_SETUP_VAR)]


def render_batch_script(spec: JobSpec, options: SlurmOptions | None = None) -> str:
    """The batch script that runs ``spec.argv`` in an allocation shaped by the platform and ``options``."""
    params = sbatch_parameters(spec, options)
    command = f"{_command(spec)}\n{_done_line(spec)}"
    text: str = _make_sbatch_string(command=command, folder=spec.workdir, setup=_setup_lines(spec), **params)
    for key, default_line in _SUBMITIT_DEFAULTS.items():
        if key not in params["additional_parameters"]:
            text = default_line.sub("", text)
    return text
