"""Render a benchmark job as a Slurm batch script: pure, no Slurm needed.

:func:`sbatch_parameters` translates the platform's generic resources and its
``backend.options`` into submitit's Slurm parameters (one table, below);
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
environment.env + the job's own variables   ``export`` lines (secret-looking names are
                                            passed through sbatch's environment instead)
environment.setup                           shell lines before the workload
==========================================  ==================================

Always: ``--no-requeue`` (a benchmark is not silently rerun after a node
failure), ``--chdir`` and the logs in the job's work directory, which must be
on a filesystem the compute nodes share.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from submitit.slurm.slurm import _make_sbatch_string

from pytest_hetero.accelerators import accelerator_kind
from pytest_hetero.backends.base import JobSpec
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers import get_launcher_class
from pytest_hetero.redact import is_secret_name

__all__ = [
    "OPTIONS_SCHEMA",
    "check_platform",
    "exported_env",
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

_PASSED_THROUGH = ("partition", "account", "qos", "constraint", "gres")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# submitit always asks for USR2 90 s before the limit, for its own checkpointing (a
# benchmark does not handle it and would die early: at once under a 1-minute limit),
# and for wckey "submitit" (rejected where wckeys are enforced). Either stays if asked for.
_SUBMITIT_DEFAULTS = {
    "signal": re.compile(r"^#SBATCH --signal=USR2@90\n", re.MULTILINE),
    "wckey": re.compile(r"^#SBATCH --wckey=submitit\n", re.MULTILINE),
}


def sbatch_parameters(spec: JobSpec) -> dict[str, Any]:
    """submitit ``SlurmExecutor`` parameters for ``spec`` (see the table above)."""
    platform = spec.platform
    options = platform.backend.options
    params: dict[str, Any] = {
        "job_name": spec.name,
        "time": time_limit_min(spec.timeout_s),
        "nodes": platform.resources.nodes,
        "ntasks_per_node": options.get("tasks_per_node", _default_tasks_per_node(platform)),
        "cpus_per_task": platform.resources.cpus_per_task,
        "gpus_per_node": _gpus_per_node(platform),
        "mem": _mem(platform.resources.mem_gb),
        "exclusive": True if options.get("exclusive") else None,
        "use_srun": False,  # the launcher decides how processes start
        **{key: options[key] for key in _PASSED_THROUGH if key in options},
        "additional_parameters": _additional(spec),
    }
    return {key: value for key, value in params.items() if value is not None}


def time_limit_min(timeout_s: float) -> int:
    """Slurm counts time limits in whole minutes."""
    return max(1, math.ceil(timeout_s / 60.0))


def _default_tasks_per_node(platform: Platform) -> int:
    if get_launcher_class(platform.launcher.kind).one_task_per_rank and platform.accelerator.kind != "cpu":
        return max(platform.accelerators_per_node, 1)  # one rank per accelerator
    return 1


def _gpus_per_node(platform: Platform) -> int | None:
    options = platform.backend.options
    if "gpus_per_node" in options:
        return int(options["gpus_per_node"]) or None
    if "gres" in options or not accelerator_kind(platform.accelerator.kind).slurm_gpu:
        return None
    return platform.accelerators_per_node or None


def _mem(mem_gb: float | None) -> str | None:
    if mem_gb is None:
        return None
    return f"{int(mem_gb)}GB" if mem_gb == int(mem_gb) else f"{math.ceil(mem_gb * 1024)}MB"


def _additional(spec: JobSpec) -> dict[str, Any]:
    options = spec.platform.backend.options
    extra: dict[str, Any] = {
        "output": str(spec.stdout_path),
        "error": str(spec.stderr_path),
        "chdir": str(spec.workdir),
        "no_requeue": True,
    }
    for key in ("reservation", "signal"):
        if key in options:
            extra[key] = options[key]
    extra.update(_parse_flag(line) for line in options.get("sbatch_extra", ()))
    return extra


def _parse_flag(line: str) -> tuple[str, Any]:
    name, has_value, value = line.removeprefix("--").partition("=")
    return name, value if has_value else True


def exported_env(spec: JobSpec) -> tuple[dict[str, str], dict[str, str]]:
    """(written into the script, passed through sbatch's environment)."""
    merged = {"PYTHONUNBUFFERED": "1", **spec.platform.environment.env, **spec.env}
    bad = sorted(name for name in merged if not _ENV_NAME.match(name))
    if bad:
        raise ConfigError(f"platform {spec.platform.name!r}: invalid environment variable name(s): {bad}")
    public = {k: v for k, v in merged.items() if not is_secret_name(k)}
    return public, {k: v for k, v in merged.items() if is_secret_name(k)}


def _setup_lines(spec: JobSpec) -> list[str]:
    public, secret = exported_env(spec)
    lines = ["set -e"]
    if secret:
        lines.append(f"# passed through sbatch's environment, not written here: {' '.join(sorted(secret))}")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(public.items())]
    return lines + list(spec.platform.environment.setup)


def render_batch_script(spec: JobSpec) -> str:
    """The batch script that runs ``spec.argv`` in an allocation shaped by the platform."""
    check_platform(spec.platform)
    params = sbatch_parameters(spec)
    text: str = _make_sbatch_string(
        command=shlex.join(spec.argv), folder=spec.workdir, setup=_setup_lines(spec), **params
    )
    for key, default_line in _SUBMITIT_DEFAULTS.items():
        if key not in params["additional_parameters"]:
            text = default_line.sub("", text)
    return text


def check_platform(platform: Platform) -> None:
    """Refuse platform settings the slurm backend cannot honour."""
    if platform.environment.container_image:
        raise ConfigError(
            f"platform {platform.name!r}: the slurm backend does not start containers itself; drop "
            "environment.container_image and pass your site's flags instead (e.g. pyxis: launcher srun "
            "with extra_args: ['--container-image=...'])"
        )
