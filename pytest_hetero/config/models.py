"""Frozen dataclasses for the platform catalogue (validated input only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Accelerator:
    kind: str  # a registered accelerator kind (pytest_hetero.accelerators)
    model: str = ""
    count_per_node: int = 1
    memory_gb: float | None = None
    peak_tflops: Mapping[str, float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class BackendConfig:
    kind: str  # a registered backend (pytest_hetero.backends.registry)
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class LauncherConfig:
    kind: str = "python"  # a registered launcher (pytest_hetero.launchers)
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class Resources:
    nodes: int = 1
    accelerators_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time_limit_min: float = 60.0


@dataclass(frozen=True)
class Environment:
    #: Resolved values (``from_env`` references read when the catalogue was loaded).
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    #: Names in ``env`` whose values are secret: never written to an output or a script.
    secrets: frozenset[str] = frozenset()
    #: ``from_env`` references whose variable was not set: name -> variable (an error once selected).
    missing: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    container_image: str | None = None
    python: str | None = None
    venv: str | None = None
    setup: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceGroup:
    """Platforms that share a physical resource: at most ``max_jobs`` of their jobs run at once.

    The limit holds across pytest-xdist workers and across pytest runs on one host
    (:mod:`pytest_hetero.isolation`).
    """

    name: str
    max_jobs: int = 1


@dataclass(frozen=True)
class Platform:
    """One entry of the catalogue: where and on what a benchmark runs."""

    name: str
    accelerator: Accelerator
    backend: BackendConfig
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    resources: Resources = field(default_factory=Resources)
    environment: Environment = field(default_factory=Environment)
    data_roots: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    tags: tuple[str, ...] = ()
    max_jobs: int = 1
    #: Declared in the catalogue; ``None``: the backend's default (``Backend.resource_group``).
    resource_group: ResourceGroup | None = None
    description: str = ""
    source: str = "<built-in>"

    @property
    def accelerators_per_node(self) -> int:
        """Accelerators one job asks for on each node."""
        requested = self.resources.accelerators_per_node
        return self.accelerator.count_per_node if requested is None else requested

    @property
    def total_accelerators(self) -> int:
        return self.resources.nodes * self.accelerators_per_node

    @property
    def time_limit_s(self) -> float:
        return self.resources.time_limit_min * 60.0


@dataclass(frozen=True)
class Catalogue:
    """All platforms of one file (or the built-in default)."""

    platforms: tuple[Platform, ...]
    source: str

    def names(self) -> list[str]:
        return [p.name for p in self.platforms]

    def get(self, name: str) -> Platform:
        for platform in self.platforms:
            if platform.name == name:
                return platform
        raise KeyError(name)
