"""Launchers: *how* the workload's processes start inside an allocation.

Built in: ``python``, ``torchrun``, ``srun``, ``mpirun`` (:mod:`.builtin`), and
Graphcore's ``poprun`` (:mod:`.poprun`).
Third-party launchers register with :func:`register_launcher` (from the
``pytest_hetero_register`` hook or at import time) and are then valid as
``launcher.kind`` in platforms.yaml.
"""

from __future__ import annotations

from typing import Any

from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError, UnavailableError
from pytest_hetero.launchers.base import LaunchContext, Launcher, Rendezvous, interpreter_for, program_argv
from pytest_hetero.registry import Registry

__all__ = [
    "LAUNCHERS",
    "LaunchContext",
    "Launcher",
    "Rendezvous",
    "get_launcher",
    "get_launcher_class",
    "interpreter_for",
    "known_launchers",
    "launcher_option_schema",
    "program_argv",
    "register_launcher",
]

LAUNCHERS: Registry[Launcher] = Registry("launcher")


def register_launcher(name: str, target: type[Launcher] | str, install_hint: str = "") -> None:
    """Register (or replace) a launcher under ``name``; ``target`` is the class or ``module:Class``."""
    LAUNCHERS.register(name, target, install_hint)


def known_launchers() -> list[str]:
    return LAUNCHERS.names()


def get_launcher_class(kind: str) -> type[Launcher]:
    return LAUNCHERS.get(kind)


def get_launcher(platform: Platform) -> Launcher:
    """The platform's launcher; :class:`ConfigError` naming the platform when it is unavailable."""
    try:
        cls = LAUNCHERS.get(platform.launcher.kind)
    except UnavailableError as exc:
        raise ConfigError(f"platform {platform.name!r} ({platform.source}): {exc}") from None
    return cls(platform)


def launcher_option_schema(kind: str) -> dict[str, Any] | None:
    try:
        return LAUNCHERS.get(kind).options_schema
    except UnavailableError:
        return None


for _name, _class in (
    ("python", "PythonLauncher"),
    ("torchrun", "TorchrunLauncher"),
    ("srun", "SrunLauncher"),
    ("mpirun", "MpirunLauncher"),
):
    register_launcher(_name, f"pytest_hetero.launchers.builtin:{_class}")
register_launcher("poprun", "pytest_hetero.launchers.poprun:PoprunLauncher")
