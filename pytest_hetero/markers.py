"""The ``hetero`` marker: what a benchmark test runs and what it needs.

::

    @pytest.mark.hetero(
        workload="resnet50",                 # built-in name, or module=..., or command=[...]
        config={"batch_size": 4},            # same on every platform
        accelerators=["cpu", "nvidia-gpu"],  # kinds it can run on (default: any)
        min_accelerators=1,                  # per job, all nodes together
        min_memory_gb=8,                     # device memory (host memory on CPUs)
        timeout_min=10,                      # at most the platform's time limit
    )
    def test_resnet50(hetero_result): ...

Sweeps: ``params=["batch_size"]`` copies those ``@pytest.mark.parametrize``
arguments into the config, and a ``pytest.param(..., marks=pytest.mark.hetero(
config={...}))`` adds to it; the marks of a case merge, the closest winning
(``config`` key by key). Each case is its own reference key and history series.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_hetero.accelerators import known_accelerator_kinds
from pytest_hetero.config.models import Platform
from pytest_hetero.decide.scaling import Scale, read_scale
from pytest_hetero.errors import ConfigError
from pytest_hetero.workload import Workload

__all__ = [
    "MARKER",
    "Declaration",
    "check_json_config",
    "incompatibility",
    "merged_kwargs",
    "read_declaration",
    "read_marker",
    "read_marks",
]

MARKER = "hetero"
MARKER_HELP = (
    "hetero(workload=NAME | module=MODULE | command=[ARGV], config={...}, accelerators=[KINDS], "
    "min_accelerators=N, min_memory_gb=X, timeout_min=M, params=[ARGNAMES], scale={'nodes': [1, 2]}): "
    "a benchmark run on every selected platform"
)
_KEYS = {
    "workload",
    "module",
    "command",
    "config",
    "accelerators",
    "min_accelerators",
    "min_memory_gb",
    "timeout_min",
    "params",
    "scale",
}


@dataclass(frozen=True)
class Declaration:
    workload: Workload
    accelerators: tuple[str, ...] = ()
    min_accelerators: int = 0
    min_memory_gb: float | None = None
    timeout_min: float | None = None
    #: ``@pytest.mark.parametrize`` arguments that go into the workload's config.
    params: tuple[str, ...] = ()
    #: A scaling sweep: one case per count of a platform resource (pytest_hetero.decide.scaling).
    scale: Scale | None = None


def merged_kwargs(marks: Sequence[pytest.Mark]) -> dict[str, Any]:
    """The arguments of a case's ``hetero`` marks (closest first): closer ones win, ``config`` key by key."""
    kwargs: dict[str, Any] = {}
    for mark in reversed(marks):
        config = {**kwargs.get("config", {}), **(mark.kwargs.get("config") or {})}
        kwargs.update(mark.kwargs)
        if config:
            kwargs["config"] = config
    return kwargs


def read_marker(marker: pytest.Mark, where: str) -> Declaration:
    """Validate the marker's arguments; errors name the test."""
    if marker.args:
        raise ConfigError(f"{where}: @pytest.mark.hetero takes keyword arguments only ({MARKER_HELP})")
    return read_declaration(marker.kwargs, where)


def read_marks(marks: Sequence[pytest.Mark], where: str) -> Declaration:
    """The declaration of a case from all its ``hetero`` marks (closest first)."""
    if any(mark.args for mark in marks):
        raise ConfigError(f"{where}: @pytest.mark.hetero takes keyword arguments only ({MARKER_HELP})")
    return read_declaration(merged_kwargs(marks), where)


def read_declaration(arguments: Mapping[str, Any], where: str) -> Declaration:
    """Validate ``hetero`` arguments; errors name the test."""
    kwargs = dict(arguments)
    unknown = sorted(set(kwargs) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown @pytest.mark.hetero argument(s) {unknown}; valid: {sorted(_KEYS)}")
    try:
        return Declaration(
            workload=_workload(kwargs, where),
            accelerators=_kinds(kwargs.get("accelerators", ()), where),
            min_accelerators=_count(kwargs.get("min_accelerators", 0), "min_accelerators", where),
            min_memory_gb=_optional_positive(kwargs.get("min_memory_gb"), "min_memory_gb", where),
            timeout_min=_optional_positive(kwargs.get("timeout_min"), "timeout_min", where),
            params=_names(kwargs.get("params", ()), where),
            scale=read_scale(kwargs.get("scale"), where),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad @pytest.mark.hetero argument: {exc}") from exc


def _kinds(value: Any, where: str) -> tuple[str, ...]:
    valid = known_accelerator_kinds()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: @pytest.mark.hetero accelerators= must be a list of kinds, e.g. ['cpu']")
    unknown = [kind for kind in value if kind not in valid]
    if unknown:
        raise ConfigError(f"{where}: unknown accelerator kind(s) {unknown}; valid: {list(valid)}")
    return tuple(value)


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: @pytest.mark.hetero params= must be a list of parametrize argument names")
    return tuple(value)


#: Bound on minutes and gigabytes: beyond it a value is a typo (and overflows Slurm's fields).
_MAX_NUMBER = 1e6


def _optional_positive(value: Any, name: str, where: str) -> float | None:
    """A finite number above 0 (``nan``, ``inf``, ``-1`` and ``True`` are refused), or None."""
    if value is None:
        return None
    number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(number) and 0 < number <= _MAX_NUMBER):
        expected = f"expected a number > 0 and <= {_MAX_NUMBER:g}"
        raise ConfigError(f"{where}: @pytest.mark.hetero {name}={value!r}: {expected}")
    return number


def _count(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: @pytest.mark.hetero {name}={value!r}: expected a whole number >= 0")
    return value


def check_json_config(config: Mapping[str, Any], where: str) -> None:
    """The config reaches the workload as JSON: a value JSON cannot carry is an error, not its str()."""
    for key, value in config.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ConfigError(
                f"{where}: @pytest.mark.hetero config[{key!r}] = {repr(value)[:80]}: not JSON data ({exc}); "
                "use str, int, float (finite), bool, None, lists and dicts with str keys"
            ) from None


def _workload(kwargs: dict[str, Any], where: str) -> Workload:
    config = kwargs.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: @pytest.mark.hetero config= must be a dict, not {type(config).__name__}")
    check_json_config(config, where)
    given = [k for k in ("workload", "module", "command") if kwargs.get(k)]
    if len(given) != 1:
        raise ConfigError(f"{where}: @pytest.mark.hetero needs exactly one of workload=, module=, command=")
    name = where.rsplit("::", 1)[-1]
    try:
        if isinstance(kwargs.get("workload"), Workload):
            return kwargs["workload"]  # type: ignore[no-any-return]
        if kwargs.get("workload"):
            return Workload.builtin(str(kwargs["workload"]), config)
        if kwargs.get("module"):
            return Workload(name=name, module=str(kwargs["module"]), config=dict(config))
        command = kwargs["command"]
        argv = tuple(command.split() if isinstance(command, str) else (str(a) for a in command))
        return Workload(name=name, command=argv, config=dict(config))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def incompatibility(decl: Declaration, platform: Platform) -> str | None:
    """Why ``platform`` cannot run the benchmark, or None when it can."""
    acc = platform.accelerator
    if decl.accelerators and acc.kind not in decl.accelerators:
        return f"needs accelerator kind {' or '.join(decl.accelerators)}, platform {platform.name!r} has {acc.kind}"
    if platform.total_accelerators < decl.min_accelerators:
        return (
            f"needs at least {decl.min_accelerators} accelerators, "
            f"platform {platform.name!r} gives {platform.total_accelerators}"
        )
    memory_gb = platform.resources.mem_gb if acc.kind == "cpu" else acc.memory_gb
    if decl.min_memory_gb is not None and memory_gb is not None and memory_gb < decl.min_memory_gb:
        return f"needs {decl.min_memory_gb:g} GB of memory, platform {platform.name!r} has {memory_gb:g} GB"
    return None
